#!/usr/bin/env bash
# Full-tree time of a phishing e-mail carrying macro documents (issue 4):
#
#   stoq scan testdata/email/phish-macro.eml -R filetype -a hash
#
# Not a test: it prints figures and judges nothing.
#
#   bash bench/phish.sh
#
# The message (built by testdata/email/tools/make_phish.py, 40 KB) holds a
# .docm with VBA and a zip with an .xls carrying an Excel 4 macro sheet; the
# default routing takes it apart into 53 payloads (smtp with its IOC text
# for iocextract, decompress, ole, pecarve, olevba and mraptor where routed;
# mimetype and hash on every payload).
# Printed:
#   1. the payload count and error count of one scan;
#   2. wall time of the whole command, fresh process each run, median and
#      spread over BENCH_RUNS runs (hyperfine when installed, else a loop),
#      next to `stoq scan <the same .eml> -a hash` (start-up, reading,
#      one payload hashed, JSON out) as the baseline;
#   3. the time split of one `--log-level debug` run: process start to
#      "Content received" (start-up, plugin loading) and from there to the
#      last plugin log line (the scan itself).
#
# Settings (environment):
#   BENCH_RUNS        runs per command (default 30, at least 20 for a median)
#   BENCH_NO_BUILD=1  do not build target/release/stoq when it is missing or
#                     older than the sources
#   STOQ_BIN          the stoq binary to use (never built by this script)
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${BENCH_RUNS:-30}
EML=testdata/email/phish-macro.eml
STOQ=${STOQ_BIN:-target/release/stoq}

if [ -z "${STOQ_BIN:-}" ] && [ -z "${BENCH_NO_BUILD:-}" ]; then
    stale=""
    if [ -x "$STOQ" ]; then
        stale=$(find crates Cargo.toml Cargo.lock -newer "$STOQ" \
            \( -name '*.rs' -o -name Cargo.toml -o -name Cargo.lock \) -print -quit)
    fi
    if [ ! -x "$STOQ" ] || [ -n "$stale" ]; then
        echo "== building the release CLI (cargo build --release -p stoq-cli --bin stoq) ..."
        cargo build --release -q -p stoq-cli --bin stoq
    fi
fi
[ -x "$STOQ" ] || { echo "bench/phish.sh: no binary at $STOQ" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export STOQ_HOME="$work/home"
mkdir -p "$STOQ_HOME"

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== binary: $STOQ ($(stat -c %y "$STOQ" | cut -d. -f1))"

FULL="$STOQ scan $EML -R filetype -a hash"
BASE="$STOQ scan $EML -a hash"

$FULL > "$work/result.json" 2> /dev/null
payloads=$(grep -c '"payload_id"' "$work/result.json" || true)
errors=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["errors"]))' \
    "$work/result.json" 2> /dev/null || echo "?")
echo "== $EML: $(stat -c %s "$EML") bytes, $payloads payloads in the tree, $errors errors"

median_loop() {  # median_loop LABEL CMD...: wall times of RUNS fresh processes
    local label=$1; shift
    local i t0 t1
    for i in 1 2 3; do "$@" > /dev/null 2>&1; done
    : > "$work/times"
    for ((i = 0; i < RUNS; i++)); do
        t0=$(date +%s%N); "$@" > /dev/null 2>&1; t1=$(date +%s%N)
        echo $(( (t1 - t0) / 1000 )) >> "$work/times"
    done
    sort -n "$work/times" | awk -v label="$label" '
        { t[NR] = $1 / 1000 }
        END { m = (NR % 2) ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2
              printf "   %-44s median %7.1f ms  min %7.1f  max %7.1f  (%d runs)\n", label, m, t[1], t[NR], NR }'
}

echo "== wall time, $RUNS runs each"
if command -v hyperfine > /dev/null; then
    hyperfine -N --warmup 3 --runs "$RUNS" --style basic --export-json "$work/h.json" \
        -n "full tree (-R filetype -a hash)" "$FULL" \
        -n "baseline (-a hash, root only)" "$BASE" > "$work/hyperfine.txt" 2>&1 \
        || { cat "$work/hyperfine.txt"; exit 1; }
    python3 - "$work/h.json" <<'PY'
import json, statistics, sys
for r in json.load(open(sys.argv[1]))["results"]:
    t = sorted(x * 1000 for x in r["times"])
    q = statistics.quantiles(t, n=4)
    print("   %-34s median %7.1f ms  p25 %6.1f  p75 %6.1f  min %6.1f  max %6.1f  mean %6.1f ± %4.1f  (%d runs)"
          % (r["command"], statistics.median(t), q[0], q[2], t[0], t[-1], statistics.mean(t),
             statistics.stdev(t), len(t)))
PY
else
    median_loop "full tree (-R filetype -a hash)" $FULL
    median_loop "baseline (-a hash, root only)" $BASE
fi

echo "== time split of one run (--log-level debug timestamps)"
t0=$(date +%s%N)
$FULL --log-level debug > /dev/null 2> "$work/debug.log"
t1=$(date +%s%N)
python3 - "$work/debug.log" "$t0" "$t1" <<'PY'
import datetime, re, sys
start, end = int(sys.argv[2]) / 1e9, int(sys.argv[3]) / 1e9
stamps = []
for line in open(sys.argv[1], errors="replace"):
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z\s+\w+\s+(\S+)", line)
    if m:
        t = datetime.datetime.fromisoformat(m.group(1)).replace(tzinfo=datetime.timezone.utc).timestamp()
        stamps.append((t, m.group(2), line))
recv = next(t for t, _, l in stamps if "Content received" in l)
last = max(t for t, target, _ in stamps if target.startswith("stoq_plugins"))
print("   process start -> content received (start-up, plugins): %6.1f ms" % ((recv - start) * 1000))
print("   content received -> last plugin log line (the scan):    %6.1f ms" % ((last - recv) * 1000))
print("   last plugin log line -> exit (results, JSON out):      %6.1f ms" % ((end - last) * 1000))
print("   whole run (with debug logging):                        %6.1f ms" % ((end - start) * 1000))
PY
echo "== load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
