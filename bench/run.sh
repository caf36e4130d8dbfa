#!/usr/bin/env bash
# Foundation benchmarks of the `stoq` CLI (issue 2). Not a test: it prints
# figures, it does not judge them. Record them in docs/BENCHMARKS.md.
#
#   bash bench/run.sh
#
# 1. start-up: wall time of `stoq scan <small file> -s hash` (median of
#    BENCH_RUNS runs, $STOQ_HOME an empty temp dir), next to `sha256sum` on
#    the same file as the process start-up baseline;
# 2. throughput: `stoq scan big.bin -s hash` (all four digests) on
#    BENCH_BIG_MIB MiB of pseudo-random bytes against md5sum, sha1sum,
#    sha256sum and sha512sum on the same file, one after the other and each
#    alone, in the same run.
#
# Uses hyperfine for the timings when it is installed (BENCH_NO_HYPERFINE=1
# forces the built-in loop), else a loop timed with bash's $EPOCHREALTIME
# (or `date +%s%N`). Builds the release binary first
# (`cargo build --release -p stoq-cli`; BENCH_NO_BUILD=1 skips that, and
# STOQ_BIN=/path/to/stoq uses another binary). Temp files go to a fresh
# directory under ${TMPDIR:-/tmp} and are removed on exit.
#
# Settings (environment): BENCH_RUNS (30), BENCH_BIG_RUNS (5),
# BENCH_BIG_MIB (256), BENCH_SMALL_FILE (testdata/pe/cli-32.exe).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${BENCH_RUNS:-30}
BIG_RUNS=${BENCH_BIG_RUNS:-5}
BIG_MIB=${BENCH_BIG_MIB:-256}
SMALL=${BENCH_SMALL_FILE:-$ROOT/testdata/pe/cli-32.exe}

die() {
    echo "bench: $*" >&2
    exit 1
}

for tool in md5sum sha1sum sha256sum sha512sum head sort awk; do
    command -v "$tool" >/dev/null || die "$tool is required"
done
[ -f "$SMALL" ] || die "small file $SMALL not found"

# --- the binary ---------------------------------------------------------------
if [ -n "${STOQ_BIN:-}" ]; then
    STOQ=$STOQ_BIN
else
    STOQ=$ROOT/target/release/stoq
    if [ "${BENCH_NO_BUILD:-0}" != 1 ] || [ ! -x "$STOQ" ]; then
        command -v cargo >/dev/null || die "cargo not found and $STOQ missing"
        echo "Building the release binary (cargo build --release -p stoq-cli) ..." >&2
        (cd "$ROOT" && cargo build --release -p stoq-cli >&2)
    fi
fi
[ -x "$STOQ" ] || die "$STOQ is not executable"

# --- temp dir -----------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/stoq-bench.XXXXXX")
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
export STOQ_HOME=$WORK/home
mkdir "$STOQ_HOME"
unset RUST_LOG

if [ "${BENCH_NO_HYPERFINE:-0}" != 1 ] && command -v hyperfine >/dev/null; then
    TIMER=hyperfine
else
    TIMER=loop
fi

# --- timing -------------------------------------------------------------------
# Nanoseconds since the epoch in $_NS, without forking when bash has
# $EPOCHREALTIME (5.0+).
stamp() {
    if [ -n "${EPOCHREALTIME:-}" ]; then
        local t=${EPOCHREALTIME//[.,]/}
        _NS=$((10#$t * 1000))
    else
        _NS=$(date +%s%N)
    fi
}

# measure RUNS WARMUP CMD...: "MEDIAN MIN" wall times of CMD in nanoseconds
# (stdin /dev/null, stdout and stderr discarded). Fails if CMD fails.
measure() {
    local runs=$1 warmup=$2
    shift 2
    if [ "$TIMER" = hyperfine ]; then
        local cmdline json=$WORK/hyperfine.json
        cmdline=$(printf '%q ' "$@")
        # Its notes (e.g. "the first run was slower") go to a file; shown
        # only if it fails.
        hyperfine -N --style none --runs "$runs" --warmup "$warmup" \
            --export-json "$json" -- "$cmdline" >/dev/null 2>"$WORK/hyperfine.err" || {
            cat "$WORK/hyperfine.err" >&2
            die "hyperfine failed on: $cmdline"
        }
        # "median": <seconds>, "min": <seconds>
        local med min
        med=$(sed -n 's/.*"median": *\([0-9.eE+-]*\).*/\1/p' "$json" | head -n 1)
        min=$(sed -n 's/.*"min": *\([0-9.eE+-]*\).*/\1/p' "$json" | head -n 1)
        awk -v a="$med" -v b="$min" 'BEGIN { printf "%.0f %.0f\n", a * 1e9, b * 1e9 }'
        return
    fi
    local i a
    local -a ts=()
    for ((i = 0; i < warmup; i++)); do
        "$@" </dev/null >/dev/null 2>&1 || die "command failed: $*"
    done
    for ((i = 0; i < runs; i++)); do
        stamp
        a=$_NS
        "$@" </dev/null >/dev/null 2>&1 || die "command failed: $*"
        stamp
        ts+=($((_NS - a)))
    done
    # (awk's %d is 32-bit in mawk: print integers with %.0f.)
    printf '%s\n' "${ts[@]}" | sort -n | awk '
        { v[NR] = $1 }
        END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.0f %.0f\n", m, v[1] }'
}

med() { echo "${1% *}"; }
best() { echo "${1#* }"; }
ms() { awk -v n="$1" 'BEGIN { printf "%.2f", n / 1e6 }'; }
secs() { awk -v n="$1" 'BEGIN { printf "%.3f", n / 1e9 }'; }
mbps() { awk -v b="$1" -v n="$2" 'BEGIN { printf "%.0f", b / (n / 1e9) / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# --- machine ------------------------------------------------------------------
cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
if grep -qw sha_ni /proc/cpuinfo 2>/dev/null; then sha_ni=yes; else sha_ni=no; fi
if grep -qw avx2 /proc/cpuinfo 2>/dev/null; then avx2=yes; else avx2=no; fi
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    commit="$commit (with uncommitted changes)"
fi

# Share of CPU time idle over one second (other load skews every figure).
cpu_idle() {
    [ -r /proc/stat ] || { echo "?"; return; }
    local a b
    a=$(awk '/^cpu / { print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
    sleep 1
    b=$(awk '/^cpu / { print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ");
        d = y[2] - x[2]; printf "%.0f", (d > 0 ? 100 * (y[1] - x[1]) / d : 0) }'
}
idle=$(cpu_idle)

echo "== stoq foundation benchmark"
echo "date:        $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "commit:      $commit"
echo "stoq:        $("$STOQ" --version) ($STOQ)"
echo "rustc:       $(rustc --version 2>/dev/null || echo unknown)"
echo "coreutils:   $(sha256sum --version | head -n 1)"
echo "kernel:      $(uname -sr)"
echo "nproc:       $(nproc)"
echo "cpu:         ${cpu_model:-unknown}"
echo "sha_ni:      $sha_ni   avx2: $avx2"
echo "timer:       $TIMER$([ "$TIMER" = hyperfine ] && echo " ($(hyperfine --version))")"
echo "STOQ_HOME:   empty temp dir"
echo "cpu idle:    ${idle}% over the second before the run"
case $idle in
    '?') ;;
    *) [ "$idle" -ge 90 ] || echo "WARNING: the machine is busy; the figures will be skewed" ;;
esac
echo

# --- 1. start-up --------------------------------------------------------------
small_size=$(wc -c <"$SMALL" | tr -d ' ')
echo "== 1. start-up: one small file ($(basename "$SMALL"), $small_size bytes), $RUNS runs"
# Sanity: the scan works and agrees with sha256sum.
want=$(sha256sum "$SMALL" | awk '{ print $1 }')
got=$("$STOQ" scan "$SMALL" -s hash </dev/null 2>/dev/null | sed -n 's/.*"sha256": "\([0-9a-f]*\)".*/\1/p')
[ "$got" = "$want" ] || die "stoq's sha256 of $SMALL ($got) differs from sha256sum's ($want)"

t_stoq_small=$(measure "$RUNS" 3 "$STOQ" scan "$SMALL" -s hash)
t_list=$(measure "$RUNS" 3 "$STOQ" list)
t_sum_small=$(measure "$RUNS" 3 sha256sum "$SMALL")
printf '%-40s %9s %9s\n' "" "median" "min"
srow() { printf '%-40s %6s ms %6s ms\n' "$1" "$(ms "$(med "$2")")" "$(ms "$(best "$2")")"; }
srow "stoq scan FILE -s hash" "$t_stoq_small"
srow "stoq list" "$t_list"
srow "sha256sum FILE (baseline)" "$t_sum_small"
printf '%-40s %6s ms\n' "stoq scan - baseline (medians)" \
    "$(ms $(($(med "$t_stoq_small") - $(med "$t_sum_small"))))"
echo

# --- 2. throughput ------------------------------------------------------------
bytes=$((BIG_MIB * 1024 * 1024))
big=$WORK/big.bin
echo "== 2. throughput: $BIG_MIB MiB ($bytes bytes) of /dev/urandom, file in the page cache, $BIG_RUNS runs"
head -c "$bytes" /dev/urandom >"$big"
cat "$big" >/dev/null

# Sanity: stoq's four digests equal the coreutils ones.
"$STOQ" scan "$big" -s hash </dev/null >"$WORK/big.json" 2>/dev/null
for alg in md5 sha1 sha256 sha512; do
    want=$("${alg}sum" "$big" | awk '{ print $1 }')
    got=$(sed -n "s/.*\"$alg\": \"\\([0-9a-f]*\\)\".*/\\1/p" "$WORK/big.json")
    [ "$got" = "$want" ] || die "stoq's $alg of big.bin ($got) differs from ${alg}sum's ($want)"
done
echo "(stoq's md5/sha1/sha256/sha512 of big.bin equal the coreutils digests)"

cat >"$WORK/coreutils4.sh" <<'EOF'
md5sum "$1" && sha1sum "$1" && sha256sum "$1" && sha512sum "$1"
EOF

t_stoq=$(measure "$BIG_RUNS" 1 "$STOQ" scan "$big" -s hash)
# No worker: reading the file, the engine's SHA-256 (dedup) and the JSON.
t_stoq_base=$(measure "$BIG_RUNS" 1 "$STOQ" scan "$big")
t_chain=$(measure "$BIG_RUNS" 1 bash "$WORK/coreutils4.sh" "$big")
t_md5=$(measure "$BIG_RUNS" 1 md5sum "$big")
t_sha1=$(measure "$BIG_RUNS" 1 sha1sum "$big")
t_sha256=$(measure "$BIG_RUNS" 1 sha256sum "$big")
t_sha512=$(measure "$BIG_RUNS" 1 sha512sum "$big")
t_sum4="$(($(med "$t_md5") + $(med "$t_sha1") + $(med "$t_sha256") + $(med "$t_sha512"))) $(($(best "$t_md5") + $(best "$t_sha1") + $(best "$t_sha256") + $(best "$t_sha512")))"

printf '%-52s %18s %18s\n' "" "median" "min"
row() {
    printf '%-52s %7s s %5s MB/s %7s s %5s MB/s\n' "$1" \
        "$(secs "$(med "$2")")" "$(mbps "$bytes" "$(med "$2")")" \
        "$(secs "$(best "$2")")" "$(mbps "$bytes" "$(best "$2")")"
}
row "stoq scan big.bin -s hash (4 digests)" "$t_stoq"
row "stoq scan big.bin (no worker: read + dedup SHA-256)" "$t_stoq_base"
row "md5sum; sha1sum; sha256sum; sha512sum (in a row)" "$t_chain"
row "md5sum" "$t_md5"
row "sha1sum" "$t_sha1"
row "sha256sum" "$t_sha256"
row "sha512sum" "$t_sha512"
row "sum of the four alone" "$t_sum4"
echo "(MB/s = 10^6 bytes of input per second; for the 4-digest rows every byte is hashed four times)"
echo
echo "                                      median   min"
echo "ratio stoq / coreutils in a row:      $(ratio "$(med "$t_stoq")" "$(med "$t_chain")")     $(ratio "$(best "$t_stoq")" "$(best "$t_chain")")"
echo "ratio stoq / sum of the four alone:   $(ratio "$(med "$t_stoq")" "$(med "$t_sum4")")     $(ratio "$(best "$t_stoq")" "$(best "$t_sum4")")"
echo "speed-up coreutils in a row / stoq:   $(ratio "$(med "$t_chain")" "$(med "$t_stoq")")x    $(ratio "$(best "$t_chain")" "$(best "$t_stoq")")x"
if [ -x /usr/bin/time ]; then
    echo
    echo "CPU time of one run (GNU time: user + sys, peak RSS):"
    cpu_row() {
        local label=$1
        shift
        /usr/bin/time -f '%U %S %M' -o "$WORK/time" "$@" </dev/null >/dev/null 2>&1 ||
            die "command failed: $*"
        awk -v l="$label" '{ printf "  %-50s %5.2f s user %5.2f s sys %6.0f MiB\n", l, $1, $2, $3 / 1024 }' \
            "$WORK/time"
    }
    cpu_row "stoq scan big.bin -s hash" "$STOQ" scan "$big" -s hash
    cpu_row "stoq scan big.bin (no worker)" "$STOQ" scan "$big"
    cpu_row "md5sum; sha1sum; sha256sum; sha512sum" bash "$WORK/coreutils4.sh" "$big"
fi
