#!/usr/bin/env bash
# Servers for the broker/storage tests, on 127.0.0.1 only, on non-default
# ports, with their data under target/services/.
#
#   scripts/services.sh start            install what is missing (as root, with
#                                        apt-get / pip), start everything, write
#                                        target/services/env
#   scripts/services.sh stop             stop exactly the processes started here
#   scripts/services.sh restart NAME     stop and start one (redis, rabbitmq)
#   scripts/services.sh status
#
# Servers:
#   redis     Debian redis-server                       STOQ_TEST_REDIS_URL
#   rabbitmq  Debian rabbitmq-server                    STOQ_TEST_AMQP_URL
#   s3        moto[server] (PyPI) in target/services/s3venv   STOQ_TEST_S3_ENDPOINT
#   search    crates/stoq-plugins-broker/tests/support/search_server.py, a small
#             Elasticsearch-compatible _bulk stand-in (no real Elasticsearch or
#             OpenSearch installs from the registries we can reach)
#                                                       STOQ_TEST_ES_URL
# A server that cannot be installed or started is left out of the env file;
# the tests that need it skip and say so.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DIR="$ROOT/target/services"
ENV_FILE="$DIR/env"

REDIS_PORT=${STOQ_REDIS_PORT:-16379}
AMQP_PORT=${STOQ_AMQP_PORT:-35672}
AMQP_DIST_PORT=$((AMQP_PORT + 10))
EPMD_PORT=${STOQ_EPMD_PORT:-34369}
S3_PORT=${STOQ_S3_PORT:-19000}
ES_PORT=${STOQ_ES_PORT:-19200}
MOTO_VERSION=5.2.5

log() { echo "services.sh: $*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_port PORT SECONDS PIDFILE: wait until PORT accepts connections, while
# the process recorded in PIDFILE is alive.
wait_port() {
    local port=$1 limit=$2 pidfile=$3 i=0
    while [ "$i" -lt $((limit * 10)) ]; do
        port_open "$port" && return 0
        if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            return 1
        fi
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

apt_updated=0
apt_install() {
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        log "cannot install $* (not root, or no apt-get)"
        return 1
    fi
    if [ "$apt_updated" = 0 ]; then
        apt-get update -qq >&2 || true
        apt_updated=1
    fi
    log "installing $*"
    # Do not let the packages start their own system-wide servers.
    local policy=/usr/sbin/policy-rc.d created=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
    local rc=$?
    [ "$created" = 1 ] && rm -f "$policy"
    return $rc
}

# start_bg NAME CMD...: start CMD in its own session, PID in $DIR/NAME.pid.
start_bg() {
    local name=$1
    shift
    setsid "$@" >"$DIR/$name.log" 2>&1 </dev/null &
    echo $! >"$DIR/$name.pid"
}

stop_pidfile() {
    local f=$1 pid
    [ -f "$f" ] || return 0
    pid=$(cat "$f")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$f"
}

# --- redis -----------------------------------------------------------------
start_redis() {
    command -v redis-server >/dev/null || apt_install redis-server || return 1
    port_open "$REDIS_PORT" && { log "port $REDIS_PORT is taken"; return 1; }
    mkdir -p "$DIR/redis"
    start_bg redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$DIR/redis" \
        --appendonly yes --appendfsync everysec --save "" --daemonize no \
        --protected-mode yes --logfile ""
    wait_port "$REDIS_PORT" 20 "$DIR/redis.pid" || { log "redis did not start"; return 1; }
    echo "STOQ_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/" >>"$ENV_FILE.new"
    echo "STOQ_TEST_REDIS_SERVER=$(command -v redis-server)" >>"$ENV_FILE.new"
}

# --- rabbitmq --------------------------------------------------------------
rabbit_env() {
    local d="$DIR/rabbitmq"
    export HOME="$d" RABBITMQ_NODENAME="stoqtest@localhost" \
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$AMQP_PORT" \
        RABBITMQ_DIST_PORT="$AMQP_DIST_PORT" ERL_EPMD_PORT="$EPMD_PORT" \
        ERL_EPMD_ADDRESS=127.0.0.1 RABBITMQ_MNESIA_BASE="$d/mnesia" \
        RABBITMQ_LOG_BASE="$d/log" RABBITMQ_CONFIG_FILE="$d/rabbitmq" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$d/enabled_plugins" \
        RABBITMQ_PID_FILE="$d/beam.pid" RABBITMQ_CONF_ENV_FILE="$d/rabbitmq-env.conf" \
        RABBITMQ_ADVANCED_CONFIG_FILE="$d/advanced.config"
}

start_rabbitmq() {
    local server=/usr/lib/rabbitmq/bin/rabbitmq-server
    [ -x "$server" ] || apt_install rabbitmq-server || return 1
    port_open "$AMQP_PORT" && { log "port $AMQP_PORT is taken"; return 1; }
    local d="$DIR/rabbitmq"
    mkdir -p "$d/log" "$d/mnesia"
    : >"$d/rabbitmq-env.conf"
    echo "[]." >"$d/enabled_plugins"
    echo "[]." >"$d/advanced.config"
    cat >"$d/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$AMQP_PORT
disk_free_limit.absolute = 50MB
log.console = true
log.file = false
EOF
    (
        rabbit_env
        if ! port_open "$EPMD_PORT"; then
            start_bg epmd epmd -address 127.0.0.1 -port "$EPMD_PORT"
            wait_port "$EPMD_PORT" 10 "$DIR/epmd.pid" || exit 1
        fi
        start_bg rabbitmq "$server"
    ) || { log "epmd did not start"; return 1; }
    if ! wait_port "$AMQP_PORT" 90 "$DIR/rabbitmq.pid"; then
        log "rabbitmq did not start (see $DIR/rabbitmq.log)"
        return 1
    fi
    cp "$d/beam.pid" "$DIR/rabbitmq-beam.pid" 2>/dev/null || true
    echo "STOQ_TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:$AMQP_PORT/%2f" >>"$ENV_FILE.new"
}

stop_rabbitmq() {
    # The VM first (it shuts down cleanly on SIGTERM), then its start script.
    stop_pidfile "$DIR/rabbitmq-beam.pid"
    stop_pidfile "$DIR/rabbitmq.pid"
}

# --- s3 (moto) -------------------------------------------------------------
start_s3() {
    local venv="$DIR/s3venv"
    if [ ! -f "$venv/.moto-$MOTO_VERSION" ]; then
        log "installing moto[server]==$MOTO_VERSION into $venv"
        python3 -m venv "$venv" >&2 && "$venv/bin/pip" install -q --disable-pip-version-check \
            "moto[server]==$MOTO_VERSION" >&2 && touch "$venv/.moto-$MOTO_VERSION" \
            || { log "cannot install moto"; return 1; }
    fi
    port_open "$S3_PORT" && { log "port $S3_PORT is taken"; return 1; }
    start_bg s3 "$venv/bin/moto_server" -H 127.0.0.1 -p "$S3_PORT"
    wait_port "$S3_PORT" 30 "$DIR/s3.pid" || { log "moto did not start"; return 1; }
    echo "STOQ_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT" >>"$ENV_FILE.new"
}

# --- search stand-in -------------------------------------------------------
start_search() {
    port_open "$ES_PORT" && { log "port $ES_PORT is taken"; return 1; }
    start_bg search python3 "$ROOT/crates/stoq-plugins-broker/tests/support/search_server.py" "$ES_PORT"
    wait_port "$ES_PORT" 20 "$DIR/search.pid" || { log "the search stand-in did not start"; return 1; }
    echo "STOQ_TEST_ES_URL=http://127.0.0.1:$ES_PORT" >>"$ENV_FILE.new"
}

stop_all() {
    stop_pidfile "$DIR/search.pid"
    stop_pidfile "$DIR/s3.pid"
    stop_rabbitmq
    stop_pidfile "$DIR/epmd.pid"
    stop_pidfile "$DIR/redis.pid"
    rm -f "$ENV_FILE"
}

case "${1:-}" in
start)
    mkdir -p "$DIR"
    stop_all
    rm -rf "$DIR/redis" "$DIR/rabbitmq"
    : >"$ENV_FILE.new"
    echo "STOQ_TEST_SERVICES=$DIR" >>"$ENV_FILE.new"
    missing=()
    command -v redis-server >/dev/null || missing+=(redis-server)
    [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || missing+=(rabbitmq-server)
    [ "${#missing[@]}" = 0 ] || apt_install "${missing[@]}" || true
    # RabbitMQ takes longest: start it in the background of this script.
    start_rabbitmq >"$DIR/rabbit-start.out" 2>&1 &
    rabbit_job=$!
    start_redis || true
    start_s3 || true
    start_search || true
    wait "$rabbit_job" || true
    cat "$DIR/rabbit-start.out" >&2
    mv "$ENV_FILE.new" "$ENV_FILE"
    log "ready: $(grep -o '^STOQ_TEST_[A-Z0-9_]*' "$ENV_FILE" | tr '\n' ' ')"
    ;;
stop)
    stop_all
    ;;
restart)
    case "${2:-}" in
    redis)
        stop_pidfile "$DIR/redis.pid"
        start_bg redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$DIR/redis" \
            --appendonly yes --appendfsync everysec --save "" --daemonize no --logfile ""
        wait_port "$REDIS_PORT" 20 "$DIR/redis.pid"
        ;;
    rabbitmq)
        stop_rabbitmq
        : >"$ENV_FILE.new"
        start_rabbitmq
        rm -f "$ENV_FILE.new"
        ;;
    *) echo "usage: $0 restart redis|rabbitmq" >&2; exit 2 ;;
    esac
    ;;
status)
    for f in "$DIR"/*.pid; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        if kill -0 "$pid" 2>/dev/null; then s=running; else s=dead; fi
        echo "$(basename "$f" .pid) $pid $s"
    done
    [ -f "$ENV_FILE" ] && cat "$ENV_FILE"
    ;;
*)
    echo "usage: $0 start|stop|restart NAME|status" >&2
    exit 2
    ;;
esac
