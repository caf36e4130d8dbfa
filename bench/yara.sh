#!/usr/bin/env bash
# yara scan throughput: the `yara` plugin through `stoq scan`, the yara-x
# command-line tool `yr` on the same rules and data when it is installed,
# and the raw yara-x rate (RuleSet::scan, no engine, no I/O) measured by an
# ignored test, so the plugin's overhead can be read either way.
#
# Not a test: it prints figures and judges nothing.
#
#   bash bench/yara.sh
#
# Settings (environment):
#   BENCH_MB          size of the scanned file in MiB (default 256)
#   BENCH_RULES       rule file or directory (default testdata/yara/stoq-dispatcher.yar:
#                     10 routing rules with hex strings, an xor(0x01-0xFF) string and
#                     regexps)
#   BENCH_RUNS        timed runs of each tool (default 3; the best is reported)
#   BENCH_NO_BUILD=1  do not build target/release/stoq
#   STOQ_BIN          the stoq binary to use
#   YR_BIN            the yara-x CLI (default: `yr` on PATH; install it with
#                     `cargo install --locked yara-x-cli`)
set -euo pipefail
cd "$(dirname "$0")/.."

STOQ=${STOQ_BIN:-target/release/stoq}
MB=${BENCH_MB:-256}
RULES=$(realpath "${BENCH_RULES:-testdata/yara/stoq-dispatcher.yar}")
RUNS=${BENCH_RUNS:-3}
YR=${YR_BIN:-$(command -v yr || true)}

if [ -z "${BENCH_NO_BUILD:-}" ]; then
    cargo build --release -q -p stoq-cli
fi
[ -x "$STOQ" ] || { echo "no stoq binary at $STOQ" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/home" "$work/cache"

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== stoq: $("$STOQ" --version)"
echo "== rules: $RULES"
echo "== generating $MB MiB of pseudo-random data with text sprinkled in"
python3 - "$work/big.bin" "$MB" <<'PY'
import random, sys
path, mb = sys.argv[1], int(sys.argv[2])
rng = random.Random(1)
chunk = bytearray(rng.randbytes(1 << 20))
# Some strings the dispatcher rules look for, so matching work happens too.
for i, s in enumerate([b"This program cannot be run in DOS mode", b"\nFrom: a\nDate: b\n\n", b"xdp:xdp"]):
    chunk[4096 * (i + 1):4096 * (i + 1) + len(s)] = s
with open(path, "wb") as f:
    for _ in range(mb):
        f.write(chunk)
PY

# Wall-clock seconds of the fastest of $RUNS runs of "$@".
best() {
    local best_s=""
    for _ in $(seq "$RUNS"); do
        local t0 t1 s
        t0=$(date +%s.%N)
        "$@" > /dev/null
        t1=$(date +%s.%N)
        s=$(echo "$t1 - $t0" | bc -l)
        if [ -z "$best_s" ] || [ "$(echo "$s < $best_s" | bc -l)" = 1 ]; then best_s=$s; fi
    done
    echo "$best_s"
}
rate() { echo "scale=1; $MB / $1" | bc -l; }

stoq_scan() {
    STOQ_HOME="$work/home" "$STOQ" scan "$work/big.bin" -s yara --log-level error \
        --plugin-opts "yara:worker_rules=$RULES" "yara:cache_dir=$work/cache"
}
# Warm-up: compiles the rules once and fills the cache; the timed runs load
# them from it.
stoq_scan > "$work/stoq.json"
python3 - "$work/stoq.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
y = r["results"][0]["workers"].get("yara", {})
print("== plugin matches:", [m["rule"] for m in y.get("matches", [])], "errors:", r["errors"])
PY
s=$(best stoq_scan)
echo "stoq scan -s yara        : ${s}s for $MB MiB = $(rate "$s") MiB/s (whole process: start-up, read, scan, JSON)"

if [ -n "$YR" ] && [ -x "$YR" ]; then
    echo "== yr: $("$YR" --version)"
    "$YR" scan "$RULES" "$work/big.bin" || true
    s=$(best "$YR" scan "$RULES" "$work/big.bin")
    echo "yr scan                  : ${s}s for $MB MiB = $(rate "$s") MiB/s (compiles the rules on every run)"
else
    echo "yr (yara-x CLI) not found: set YR_BIN or 'cargo install --locked yara-x-cli'"
fi

echo "== raw yara-x scan rate inside this build (ignored test 'throughput', release profile)"
YARA_BENCH_RULES="$RULES" YARA_BENCH_FILE="$work/big.bin" \
    cargo test --release -q -p stoq-plugins --test yara -- --ignored --nocapture throughput 2>&1 |
    grep -E "yara throughput|yara-x API|panicked" || true
