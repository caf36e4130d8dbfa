#!/usr/bin/env bash
# The project's test command (README: "Run the tests").
# Installs what the tests need, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

# The CLI tests compare digests with coreutils (md5sum, sha*sum).
for tool in md5sum sha1sum sha256sum sha512sum; do
    command -v "$tool" >/dev/null || { echo "scripts/test.sh: $tool is required" >&2; exit 1; }
done

# External archivers the decompress tests drive (RAR/ACE/ARJ through unar or
# 7-Zip); without them those tests say so and skip. Debian packages, on a
# machine where we may install them.
if ! command -v unar >/dev/null || ! command -v 7z >/dev/null; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        echo "scripts/test.sh: installing unar and p7zip-full" >&2
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq unar p7zip-full) >&2 \
            || echo "scripts/test.sh: could not install unar/p7zip-full; those tests will skip" >&2
    fi
fi

# Independent reference tools for comparison tests, in a private virtual
# environment (never the system Python), pinned to the versions that
# computed shared/corpus/EXPECTED.json. Tests that need them read
# $STOQ_TEST_PYTHON and skip the live comparison (saying so) when it is
# unset; they still compare with the expected answers kept in testdata/.
venv=target/pyenv
stamp="$venv/.stoq-tools-v2"
if [ ! -f "$stamp" ] && command -v python3 >/dev/null; then
    echo "scripts/test.sh: installing the Python reference tools into $venv" >&2
    if python3 -m venv "$venv" >/dev/null 2>&1 \
        && "$venv/bin/pip" install -q --disable-pip-version-check \
            pefile==2024.8.26 olefile==0.47 oletools==0.60.2 pypdf==7.1.0 \
            msoffcrypto-tool==6.1.0 >&2; then
        touch "$stamp"
    else
        echo "scripts/test.sh: could not install the Python tools; live comparisons will be skipped" >&2
    fi
fi
if [ -f "$stamp" ]; then
    STOQ_TEST_PYTHON="$(pwd)/$venv/bin/python"
    export STOQ_TEST_PYTHON
fi

# Servers the broker/storage tests run against (Redis, RabbitMQ, S3, search),
# installed and started on 127.0.0.1 by scripts/services.sh and stopped by
# PID when the tests end. Tests that need one skip, saying so, without it.
if [ -x scripts/services.sh ]; then
    scripts/services.sh start >&2 || echo "scripts/test.sh: some test services did not start" >&2
    trap 'scripts/services.sh stop >&2 || true' EXIT
    if [ -f target/services/env ]; then
        set -a
        # shellcheck disable=SC1091
        . target/services/env
        set +a
    fi
fi

cargo test --workspace "$@"
