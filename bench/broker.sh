#!/usr/bin/env bash
# Broker throughput: payloads through Redis -> hash -> Redis with 1 and 2
# `stoq run` workers, next to the same scans fed by filedir (the broker
# round-trip overhead per payload).
#
# Not a test: it prints figures and judges nothing.
#
#   bash bench/broker.sh
#
# Settings (environment):
#   BENCH_PAYLOADS    payloads per run (default 5000; 1-4 KiB each)
#   BENCH_NO_BUILD=1  do not build target/release/stoq
#   STOQ_BIN          the stoq binary to use (default target/release/stoq)
#
# Starts a private redis-server (Debian's) on a free 127.0.0.1 port with
# its data in a temp dir, and stops it at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

STOQ=${STOQ_BIN:-target/release/stoq}
if [ -z "${BENCH_NO_BUILD:-}" ]; then
    cargo build --release -q -p stoq-cli
fi
[ -x "$STOQ" ] || { echo "no stoq binary at $STOQ" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "redis-server is needed (apt-get install redis-server)" >&2; exit 1; }
N=${BENCH_PAYLOADS:-5000}

work=$(mktemp -d)
redis_pid=
cleanup() {
    [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/home" "$work/in" "$work/redis"
export STOQ_HOME="$work/home"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --bind 127.0.0.1 --port "$port" --dir "$work/redis" --save "" --appendonly no \
    --logfile "" >/dev/null 2>&1 &
redis_pid=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
URL="redis://127.0.0.1:$port/"

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== stoq: $STOQ ($("$STOQ" --version 2>/dev/null || echo '?'))"
echo "== redis: $(redis-server --version | cut -d' ' -f3)"
echo "== $N payloads of 1-4 KiB"
python3 - "$work/in" "$N" <<'PY'
import os, random, sys
d, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(6)
for i in range(n):
    with open(os.path.join(d, "p%06d" % i), "wb") as f:
        f.write(rnd.randbytes(rnd.randint(1024, 4096)))
PY

# load STREAM: XADD every payload file (raw content field), pipelined.
load() {
    python3 - "$work/in" "$1" "$port" <<'PY'
import os, socket, sys
d, stream, port = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3])
def cmd(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out
buf = bytearray()
names = sorted(os.listdir(d))
for name in names:
    with open(os.path.join(d, name), "rb") as f:
        buf += cmd(b"XADD", stream, b"*", b"content", f.read(),
                   b"extra_data", b'{"filename": "%s"}' % name.encode())
s = socket.create_connection(("127.0.0.1", port))
s.sendall(buf)
f = s.makefile("rb")
for _ in names:
    line = f.readline()
    if line.startswith(b"$"):
        f.readline()
    elif line.startswith(b"-"):
        sys.exit("redis error: %r" % line)
PY
}

xlen() {
    python3 - "$port" "$1" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
k = sys.argv[2].encode()
s.sendall(b"*2\r\n$4\r\nXLEN\r\n$%d\r\n%s\r\n" % (len(k), k))
print(s.makefile("rb").readline().strip()[1:].decode())
PY
}

now() { date +%s.%N; }
rate() { python3 -c "import sys; n,t=float(sys.argv[1]),float(sys.argv[2]); print('%.0f payloads/s (%.3f ms each, %.2f s)' % (n/t, 1000*t/n, t))" "$@"; }

worker() { # stream results consumer
    "$STOQ" run -P redis-queue -C redis-queue -a hash --plugin-opts \
        "redis-queue:redis_url=$URL" "redis-queue:redis_queue=$1" \
        "redis-queue:results_stream=$2" "redis-queue:redis_consumer=$3" \
        redis-queue:exit_when_empty=true redis-queue:read_block=0.05 \
        redis-queue:max_in_flight=32 2>"$work/$3.log"
}

# Round 0 warms the page cache and the binary.
"$STOQ" run -P filedir -C filedir -a hash --plugin-opts "filedir:source_dir=$work/in" \
    "filedir:results_dir=$work/warm" filedir:jsonl=true 2>/dev/null

echo
echo "== filedir -> hash -> filedir (jsonl), 1 process"
t0=$(now)
"$STOQ" run -P filedir -C filedir -a hash --plugin-opts "filedir:source_dir=$work/in" \
    "filedir:results_dir=$work/fd" filedir:jsonl=true 2>/dev/null
t_fd=$(python3 -c "print($(now) - $t0)")
echo "filedir: $(rate "$N" "$t_fd")"

for workers in 1 2; do
    stream="in$workers"; out="out$workers"
    load "$stream"
    echo
    echo "== redis stream -> hash -> redis stream, $workers worker(s)"
    t0=$(now)
    pids=()
    for w in $(seq "$workers"); do
        worker "$stream" "$out" "w$workers-$w" &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    t=$(python3 -c "print($(now) - $t0)")
    got=$(xlen "$out")
    echo "redis, $workers worker(s): $(rate "$N" "$t"); $got results"
    [ "$workers" = 1 ] && t_r1=$t
done

echo
python3 -c "import sys; n,a,b=float(sys.argv[1]),float(sys.argv[2]),float(sys.argv[3]); print('broker round-trip overhead (1 worker vs filedir): %.3f ms per payload' % (1000*(b-a)/n))" "$N" "$t_fd" "$t_r1"
