#!/usr/bin/env bash
# Office plugins throughput: parse_ole, find_vba (olevba/mraptor) and
# parse_rtf over testdata/office/, decryption of encrypted documents and
# the cost of one Agile password attempt; in process, release build.
#
# Not a test: it prints figures and judges nothing.
#
#   bash bench/office.sh
#
# Settings (environment):
#   BENCH_ROUNDS  times each file is parsed (default 200)
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
cargo test --release -q -p stoq-plugins-office --test bench -- --ignored --nocapture 2>&1 \
    | grep -E '^(ole|olevba|rtf|encrypted|agile)[ -]'
