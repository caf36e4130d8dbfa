#!/usr/bin/env bash
# peinfo throughput over the corpus' PE files (and pecarve's carving rate).
#
# Not a test: it prints figures and judges nothing.
#
#   bash bench/peinfo.sh
#
# 1. In process (release build, no engine, no I/O): the ignored test
#    `bench_peinfo_files_per_second` loops `peinfo::analyse` over every PE
#    file of the directory BENCH_ROUNDS times and prints files/s, MB/s and
#    the time per file; it also times `pecarve::carve` over all of them
#    embedded in one buffer.
# 2. Through the CLI: `stoq scan FILE -s peinfo` once per file, BENCH_RUNS
#    times. Dominated by process start-up; compare with bench/run.sh's
#    start-up figure.
#
# Settings (environment):
#   BENCH_PE_DIR       directory of PE files (default /work/shared/corpus/pe,
#                      else testdata/pe); non-PE files are skipped
#   BENCH_ROUNDS       in-process rounds (default 200)
#   BENCH_RUNS         CLI passes over the files (default 5)
#   BENCH_CARGO_FLAGS  extra cargo flags for the in-process test build (e.g.
#                      --no-default-features --features hash,peinfo,pecarve)
#   BENCH_NO_BUILD=1   do not build target/release/stoq
#   STOQ_BIN           the stoq binary to use
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=${BENCH_PE_DIR:-/work/shared/corpus/pe}
[ -d "$DIR" ] || DIR=testdata/pe
DIR=$(realpath "$DIR")
ROUNDS=${BENCH_ROUNDS:-200}
RUNS=${BENCH_RUNS:-5}
read -r -a FLAGS <<<"${BENCH_CARGO_FLAGS:-}"
STOQ=${STOQ_BIN:-target/release/stoq}

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== files: $DIR"

echo "== in process (cargo test --release, $ROUNDS rounds)"
BENCH_PE_DIR=$DIR BENCH_ROUNDS=$ROUNDS \
    cargo test --release -q -p stoq-plugins "${FLAGS[@]}" --test peinfo -- \
    --ignored --nocapture --exact bench_peinfo_files_per_second 2>&1 |
    grep -E '^(peinfo|pecarve|  )' || true

if [ -z "${BENCH_NO_BUILD:-}" ] && [ -z "${STOQ_BIN:-}" ]; then
    cargo build --release -q -p stoq-cli
fi
if [ ! -x "$STOQ" ]; then
    echo "== CLI: no stoq binary at $STOQ, skipped"
    exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export STOQ_HOME=$work/home
mkdir -p "$STOQ_HOME"
unset RUST_LOG

mapfile -t files < <(find "$DIR" -maxdepth 1 -type f | sort)
echo "== CLI: stoq scan FILE -s peinfo, ${#files[@]} files x $RUNS passes"
start=$(date +%s%N)
for ((i = 0; i < RUNS; i++)); do
    for f in "${files[@]}"; do
        "$STOQ" scan "$f" -s peinfo >/dev/null 2>&1 </dev/null || {
            echo "stoq scan failed on $f" >&2
            exit 1
        }
    done
done
end=$(date +%s%N)
n=$((RUNS * ${#files[@]}))
awk -v n="$n" -v ns="$((end - start))" 'BEGIN {
    printf "   %d scans in %.2f s: %.1f files/s, %.1f ms per process\n", n, ns / 1e9, n / (ns / 1e9), ns / 1e6 / n }'
