#!/usr/bin/env bash
# Benchmarks of the `mimetype` and `entropy` workers through the `stoq` CLI.
# Not a test: it prints figures, it does not judge them.
#
#   bash bench/types.sh
#
# 1. per file: wall time of `stoq scan FILE -s mimetype entropy` for every
#    file of BENCH_TYPES_DIR (default testdata/types, or the shared corpus
#    when BENCH_TYPES_DIR points at it), next to `stoq scan FILE -s hash`
#    (the start-up plus a cheap worker) and libmagic's `file --mime-type
#    FILE` when `file` is installed;
# 2. size: `stoq scan big.bin -s mimetype` and `-s entropy` on
#    BENCH_BIG_MIB MiB of pseudo-random bytes (detection reads a bounded
#    part of the payload, entropy all of it).
#
# Uses hyperfine when installed (else a loop timed with $EPOCHREALTIME).
# Builds the release binary first (BENCH_NO_BUILD=1 skips that;
# STOQ_BIN=/path/to/stoq uses another binary).
#
# Settings (environment): BENCH_RUNS (10), BENCH_BIG_MIB (256),
# BENCH_TYPES_DIR (testdata/types).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${BENCH_RUNS:-10}
BIG_MIB=${BENCH_BIG_MIB:-256}
DIR=${BENCH_TYPES_DIR:-$ROOT/testdata/types}

die() {
    echo "bench: $*" >&2
    exit 1
}

[ -d "$DIR" ] || die "$DIR not found"

if [ -n "${STOQ_BIN:-}" ]; then
    STOQ=$STOQ_BIN
else
    STOQ=$ROOT/target/release/stoq
    if [ "${BENCH_NO_BUILD:-0}" != 1 ] || [ ! -x "$STOQ" ]; then
        echo "Building the release binary (cargo build --release -p stoq-cli) ..." >&2
        (cd "$ROOT" && cargo build --release -p stoq-cli >&2)
    fi
fi
[ -x "$STOQ" ] || die "$STOQ is not executable"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/stoq-bench-types.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM
export STOQ_HOME=$WORK/home
mkdir "$STOQ_HOME"
unset RUST_LOG

# median_ns CMD...: median wall time of CMD in nanoseconds.
median_ns() {
    if command -v hyperfine >/dev/null; then
        local json=$WORK/h.json
        hyperfine -N --style none --runs "$RUNS" --warmup 2 --export-json "$json" \
            -- "$(printf '%q ' "$@")" >/dev/null 2>&1 || die "failed: $*"
        sed -n 's/.*"median": *\([0-9.eE+-]*\).*/\1/p' "$json" | head -n 1 |
            awk '{ printf "%.0f\n", $1 * 1e9 }'
        return
    fi
    local i a t
    local -a ts=()
    for ((i = 0; i < RUNS; i++)); do
        t=${EPOCHREALTIME//[.,]/}
        a=$((10#$t))
        "$@" </dev/null >/dev/null 2>&1 || die "failed: $*"
        t=${EPOCHREALTIME//[.,]/}
        ts+=($(((10#$t - a) * 1000)))
    done
    printf '%s\n' "${ts[@]}" | sort -n | awk '{ v[NR] = $1 } END { printf "%.0f\n", v[int((NR + 1) / 2)] }'
}
ms() { awk -v n="$1" 'BEGIN { printf "%.2f", n / 1e6 }'; }

echo "== stoq types benchmark"
echo "date:   $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "stoq:   $("$STOQ" --version) ($STOQ)"
echo "cpu:    $(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || echo unknown)"
echo "timer:  $(command -v hyperfine >/dev/null && hyperfine --version || echo 'bash loop'), $RUNS runs, median"
echo

have_file=0
command -v file >/dev/null && have_file=1
echo "== 1. per file ($DIR)"
printf '%-55s %8s %12s %12s %12s\n' file bytes "mime+entropy" "hash" \
    "$([ $have_file = 1 ] && echo 'file(1)' || echo '-')"
tot_types=0 tot_hash=0 tot_file=0 n=0
while IFS= read -r f; do
    rel=${f#"$DIR"/}
    a=$(median_ns "$STOQ" scan "$f" -s mimetype entropy)
    b=$(median_ns "$STOQ" scan "$f" -s hash)
    c=0
    [ $have_file = 1 ] && c=$(median_ns file --mime-type "$f")
    printf '%-55s %8s %9s ms %9s ms %9s ms\n' "$rel" "$(wc -c <"$f" | tr -d ' ')" \
        "$(ms "$a")" "$(ms "$b")" "$([ $have_file = 1 ] && ms "$c" || echo -)"
    tot_types=$((tot_types + a)) tot_hash=$((tot_hash + b)) tot_file=$((tot_file + c)) n=$((n + 1))
done < <(find "$DIR" -type f ! -name '*.md' ! -name '*.json' ! -name '*.py' | sort)
[ "$n" -gt 0 ] || die "no files in $DIR"
printf '%-55s %8s %9s ms %9s ms %9s ms\n' "mean of $n files" "" "$(ms $((tot_types / n)))" \
    "$(ms $((tot_hash / n)))" "$([ $have_file = 1 ] && ms $((tot_file / n)) || echo -)"
echo

big=$WORK/big.bin
echo "== 2. size: $BIG_MIB MiB of /dev/urandom (page cache)"
head -c $((BIG_MIB * 1024 * 1024)) /dev/urandom >"$big"
cat "$big" >/dev/null
t_m=$(median_ns "$STOQ" scan "$big" -s mimetype)
t_e=$(median_ns "$STOQ" scan "$big" -s entropy)
t_c=$(median_ns cat "$big")
printf '%-40s %9s ms\n' "stoq scan big.bin -s mimetype" "$(ms "$t_m")"
printf '%-40s %9s ms  (%s MB/s incl. reading the file)\n' "stoq scan big.bin -s entropy" "$(ms "$t_e")" \
    "$(awk -v b=$((BIG_MIB * 1024 * 1024)) -v n="$t_e" 'BEGIN { printf "%.0f", b / (n / 1e9) / 1e6 }')"
printf '%-40s %9s ms\n' "cat big.bin (baseline)" "$(ms "$t_c")"
