#!/usr/bin/env bash
# Run-mode throughput: filedir -> hash, mimetype -> filedir connector, for
# many small files and for a few large ones, with 1 and 2 provider
# consumers, next to `find ... -exec sha256sum` on the same files.
#
# Not a test: it prints figures and judges nothing.
#
#   bash bench/run_mode.sh
#
# Settings (environment):
#   BENCH_SMALL_FILES  number of small files (default 10000; 1-64 KiB each)
#   BENCH_LARGE_FILES  number of large files (default 50; 10-100 MB each)
#   BENCH_WORKERS      workers to run (default "hash mimetype")
#   BENCH_NO_BUILD=1   do not build target/release/stoq
#   STOQ_BIN           the stoq binary to use
set -euo pipefail
cd "$(dirname "$0")/.."

STOQ=${STOQ_BIN:-target/release/stoq}
if [ -z "${BENCH_NO_BUILD:-}" ]; then
    cargo build --release -q -p stoq-cli
fi
[ -x "$STOQ" ] || { echo "no stoq binary at $STOQ" >&2; exit 1; }
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "GNU time is needed (apt-get install time)" >&2; exit 1; }

N_SMALL=${BENCH_SMALL_FILES:-10000}
N_LARGE=${BENCH_LARGE_FILES:-50}
WORKERS=${BENCH_WORKERS:-hash mimetype}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/home" "$work/small" "$work/large"

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== stoq: $("$STOQ" --version)"
echo "== generating $N_SMALL small files (1-64 KiB) and $N_LARGE large files (10-100 MB) in $work"
python3 - "$work/small" "$N_SMALL" <<'PY'
import os, random, sys
d, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(42)
for i in range(n):
    size = rnd.randint(1024, 64 * 1024)
    # Half random (incompressible), half text-like.
    data = os.urandom(size) if i % 2 else (b"line %d of a text file\n" % i) * (size // 24 + 1)
    with open(os.path.join(d, "f%05d.bin" % i), "wb") as f:
        f.write(data[:size])
PY
for i in $(seq 0 $((N_LARGE - 1))); do
    if [ "$N_LARGE" -gt 1 ]; then
        mb=$((10 + i * 90 / (N_LARGE - 1)))
    else
        mb=10
    fi
    head -c $((mb * 1048576)) /dev/urandom > "$work/large/big$(printf %03d "$i").bin"
done
bytes() { du -sb "$1" | cut -f1; }
echo "   small: $(bytes "$work/small") bytes, large: $(bytes "$work/large") bytes"

# Read everything once so every measurement reads from the page cache.
cat "$work"/small/* "$work"/large/* > /dev/null

# run_stoq SET CONSUMERS -> prints "seconds peak_kib"
run_stoq() {
    local set=$1 consumers=$2 res="$work/results-$1-$2"
    rm -rf "$res"
    printf '[core]\nprovider_consumers = %s\nmax_queue = 100\nlog_dir =\n' "$consumers" > "$work/home/stoq.cfg"
    # shellcheck disable=SC2086
    STOQ_HOME="$work/home" "$TIME" -f "%e %M" -o "$work/time.txt" \
        "$STOQ" run -P filedir -C filedir -a $WORKERS --log-level error \
        --plugin-opts "filedir:source_dir=$work/$set" "filedir:results_dir=$res" filedir:skip_done=false
    local n
    n=$(find "$res" -maxdepth 1 -type f ! -name '.*' | wc -l)
    cat "$work/time.txt" | tr '\n' ' '
    echo "$n"
}

report() {
    local label=$1 set=$2 n=$3 secs=$4 kib=${5:-} results=${6:-}
    local b
    b=$(bytes "$work/$set")
    awk -v l="$label" -v n="$n" -v s="$secs" -v b="$b" -v k="$kib" -v r="$results" 'BEGIN {
        printf "   %-38s %8.2f s %10.1f files/s %8.1f MB/s", l, s, n / s, b / s / 1e6
        if (k != "") printf "  peak RSS %7.1f MiB", k / 1024
        if (r != "") printf "  (%d results)", r
        printf "\n"
    }'
}

for set in small large; do
    if [ "$set" = small ]; then n=$N_SMALL; else n=$N_LARGE; fi
    echo "== $set files ($n)"
    start=$(date +%s.%N)
    find "$work/$set" -type f -exec sha256sum {} + > /dev/null
    end=$(date +%s.%N)
    report "find -exec sha256sum {} +" "$set" "$n" "$(echo "$end - $start" | bc)"
    for consumers in 1 2; do
        read -r secs kib results < <(run_stoq "$set" "$consumers")
        report "stoq run ($WORKERS), consumers=$consumers" "$set" "$n" "$secs" "$kib" "$results"
    done
done
