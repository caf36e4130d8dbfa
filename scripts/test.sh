#!/usr/bin/env bash
# The project's test command (README: "Run the tests").
# Installs what the tests need, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

# The CLI tests compare digests with coreutils (md5sum, sha*sum), present on
# any Debian-like machine; nothing else is needed yet.
for tool in md5sum sha1sum sha256sum sha512sum; do
    command -v "$tool" >/dev/null || { echo "scripts/test.sh: $tool is required" >&2; exit 1; }
done

exec cargo test --workspace "$@"
