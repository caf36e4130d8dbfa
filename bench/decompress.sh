#!/usr/bin/env bash
# Benchmark of the `decompress` worker (issue 4, item 10). Not a test: it
# prints figures, it does not judge them.
#
#   bash bench/decompress.sh
#
# Builds a ~100 MB zip with Python's zipfile (deflate, level 6) over data
# of mixed compressibility (random bytes, generated text, sparse records),
# then times, in the same run and on the same file (in the page cache):
#
#   stoq scan big.zip -s decompress          (release build, output discarded)
#   unzip -p big.zip > /dev/null             (Info-ZIP, the baseline)
#
# `stoq scan` does more than inflate: it reads the file, hashes every
# extracted member once (deduplication) and prints the JSON response.
# A sanity check first compares stoq's member list and sizes with
# `unzip -Z1` / `unzip -l`.
#
# Needs python3 and unzip (`apt-get install unzip` if it is missing; the
# script says so and stops). Uses hyperfine when installed
# (BENCH_NO_HYPERFINE=1 forces the built-in loop). Builds the release
# binary first (`cargo build --release -p stoq-cli`; BENCH_NO_BUILD=1
# skips that, STOQ_BIN=/path/to/stoq uses another binary). Temp files go
# to a fresh directory under ${TMPDIR:-/tmp}, removed on exit.
#
# Settings (environment): BENCH_RUNS (5), BENCH_ZIP_MIB (target zip size,
# 100), BENCH_MEMBERS (40).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${BENCH_RUNS:-5}
ZIP_MIB=${BENCH_ZIP_MIB:-100}
MEMBERS=${BENCH_MEMBERS:-40}

die() {
    echo "bench: $*" >&2
    exit 1
}

command -v python3 >/dev/null || die "python3 is required (it writes the test zip)"
command -v unzip >/dev/null || die "unzip is required as the baseline: apt-get install unzip"
for tool in sort awk sed; do
    command -v "$tool" >/dev/null || die "$tool is required"
done

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
WORK=$(mktemp -d "${TMPDIR:-/tmp}/stoq-bench-decompress.XXXXXX")
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

stamp() {
    if [ -n "${EPOCHREALTIME:-}" ]; then
        local t=${EPOCHREALTIME//[.,]/}
        _NS=$((10#$t * 1000))
    else
        _NS=$(date +%s%N)
    fi
}

# measure RUNS WARMUP OUTFILE CMD...: "MEDIAN MIN" wall times in ns; the
# command's stdout goes to OUTFILE (/dev/null for the timings).
measure() {
    local runs=$1 warmup=$2 outfile=$3
    shift 3
    if [ "$TIMER" = hyperfine ]; then
        local cmdline json=$WORK/hyperfine.json
        cmdline="$(printf '%q ' "$@") > $outfile"
        hyperfine --style none --runs "$runs" --warmup "$warmup" \
            --export-json "$json" -- "$cmdline" >/dev/null 2>"$WORK/hyperfine.err" || {
            cat "$WORK/hyperfine.err" >&2
            die "hyperfine failed on: $cmdline"
        }
        local med min
        med=$(sed -n 's/.*"median": *\([0-9.eE+-]*\).*/\1/p' "$json" | head -n 1)
        min=$(sed -n 's/.*"min": *\([0-9.eE+-]*\).*/\1/p' "$json" | head -n 1)
        awk -v a="$med" -v b="$min" 'BEGIN { printf "%.0f %.0f\n", a * 1e9, b * 1e9 }'
        return
    fi
    local i a
    local -a ts=()
    for ((i = 0; i < warmup; i++)); do
        "$@" </dev/null >"$outfile" 2>/dev/null || die "command failed: $*"
    done
    for ((i = 0; i < runs; i++)); do
        stamp
        a=$_NS
        "$@" </dev/null >"$outfile" 2>/dev/null || die "command failed: $*"
        stamp
        ts+=($((_NS - a)))
    done
    printf '%s\n' "${ts[@]}" | sort -n | awk '
        { v[NR] = $1 }
        END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.0f %.0f\n", m, v[1] }'
}

med() { echo "${1% *}"; }
best() { echo "${1#* }"; }
secs() { awk -v n="$1" 'BEGIN { printf "%.3f", n / 1e9 }'; }
mbps() { awk -v b="$1" -v n="$2" 'BEGIN { printf "%.0f", b / (n / 1e9) / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# --- the zip ------------------------------------------------------------------
BIG=$WORK/big.zip
python3 - "$BIG" "$ZIP_MIB" "$MEMBERS" <<'PY'
import random, sys, zipfile
path, target_mib, members = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(20201)
words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
         for _ in range(5000)]
# In turn: random bytes (incompressible, 1.8 units), generated text (about
# 2.5:1, 2.4 units), sparse records (about 20:1, 3.2 units); a unit is the
# target zip size over the member count. Every member stays below the
# plugin's default maximum_size (50 MB), the total below max_total_size.
unit = target_mib * 1024 * 1024 // members
with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as z:
    for i in range(members):
        kind = i % 3
        if kind == 0:
            data = rng.randbytes(unit * 18 // 10)
        elif kind == 1:
            size = unit * 24 // 10
            out, n = [], 0
            while n < size:
                w = rng.choice(words)
                out.append(w)
                n += len(w) + 1
            data = b" ".join(out)[:size]
        else:
            rec = bytearray(unit * 32 // 10)
            for off in range(0, len(rec), 512):
                rec[off:off + 16] = rng.randbytes(16)
            data = bytes(rec)
        z.writestr(f"member-{i:03d}-{('random', 'text', 'sparse')[kind]}.bin", data)
PY
zip_bytes=$(wc -c <"$BIG" | tr -d ' ')
cat "$BIG" >/dev/null
total=$(unzip -l "$BIG" | tail -n 1 | awk '{ print $1 }')
count=$(unzip -Z1 "$BIG" | wc -l | tr -d ' ')

# Sanity: stoq extracts the same members with the same sizes as unzip.
"$STOQ" scan "$BIG" -s decompress </dev/null >"$WORK/out.json" 2>/dev/null
python3 - "$WORK/out.json" "$BIG" <<'PY' || die "stoq's extraction differs from unzip's listing"
import json, subprocess, sys, zipfile
resp = json.load(open(sys.argv[1]))
got = sorted((r["payload_meta"]["extra_data"]["path"], r["size"])
             for r in resp["results"] if r["extracted_by"] == ["decompress"])
want = sorted((i.filename, i.file_size) for i in zipfile.ZipFile(sys.argv[2]).infolist())
assert not resp["errors"], resp["errors"]
assert got == want, (got[:3], want[:3])
PY

echo "== decompress benchmark"
echo "date:        $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "commit:      $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "stoq:        $("$STOQ" --version) ($STOQ)"
echo "unzip:       $(unzip -v | head -n 1)"
echo "nproc:       $(nproc)"
echo "cpu:         $(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || echo unknown)"
echo "timer:       $TIMER, $RUNS runs (+1 warm-up)"
echo "zip:         $zip_bytes bytes, $count members, $total bytes uncompressed (deflate, Python zipfile level 6)"
echo

t_stoq=$(measure "$RUNS" 1 /dev/null "$STOQ" scan "$BIG" -s decompress)
t_unzip=$(measure "$RUNS" 1 /dev/null unzip -p "$BIG")

printf '%-42s %9s %9s %11s\n' "" "median" "min" "MB/s (out)"
row() { printf '%-42s %7s s %7s s %11s\n' "$1" "$(secs "$(med "$2")")" "$(secs "$(best "$2")")" "$(mbps "$total" "$(med "$2")")"; }
row "stoq scan big.zip -s decompress" "$t_stoq"
row "unzip -p big.zip > /dev/null (baseline)" "$t_unzip"
echo "stoq / unzip (medians): $(ratio "$(med "$t_stoq")" "$(med "$t_unzip")")"
