#!/usr/bin/env bash
# The cluster's performance rows (issue 16), measured on this machine in one
# run: one node on SQLite (the default, for comparison), one node on
# PostgreSQL, and three nodes on PostgreSQL and NATS, each driven by
# switchboard-load with users and agents spread over the nodes round-robin
# (which also checks that every acked message reached every agent once, in
# order, and is stored). Run it with the machine to itself: the nodes,
# PostgreSQL, nats-server and the load generator share its cores.
#
# It starts its own throwaway PostgreSQL (initdb and pg_ctl from the newest
# /usr/lib/postgresql/*/bin, as the `postgres` user when run as root) and
# nats-server on free loopback ports, a fresh database per row, and stops
# everything at the end. Needs `apt-get install postgresql nats-server jq`.
#
#   AGENTS=4               agents subscribed in every row
#   SMALL_USERS=50         closed loop, window 1
#   SMALL_MESSAGES=500
#   BIG_USERS=200          closed loop, window 16
#   BIG_MESSAGES=250
#   OPEN_RATE=2000         open loop: messages/s offered, for OPEN_DURATION s
#   OPEN_USERS=500
#   OPEN_DURATION=5
#   RUN_TIMEOUT=120        seconds any one load run may take
#
# Usage: scripts/bench-cluster.sh

set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/server.sh

AGENTS=${AGENTS:-4}
SMALL_USERS=${SMALL_USERS:-50}
SMALL_MESSAGES=${SMALL_MESSAGES:-500}
BIG_USERS=${BIG_USERS:-200}
BIG_MESSAGES=${BIG_MESSAGES:-250}
OPEN_RATE=${OPEN_RATE:-2000}
OPEN_USERS=${OPEN_USERS:-500}
OPEN_DURATION=${OPEN_DURATION:-5}
RUN_TIMEOUT=${RUN_TIMEOUT:-120}

for tool in jq nats-server; do
    command -v "$tool" >/dev/null || { echo "bench-cluster: $tool is missing (apt-get install $tool)" >&2; exit 2; }
done
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[[ -x $PGBIN/initdb ]] || { echo "bench-cluster: PostgreSQL is missing (apt-get install postgresql)" >&2; exit 2; }

echo "bench-cluster: building (release)..." >&2
cargo build --release -p switchboard-server -p switchboard-load --quiet
TARGET_DIR=${CARGO_TARGET_DIR:-target}
SWITCHBOARD="$TARGET_DIR/release/switchboard"
LOAD="$TARGET_DIR/release/switchboard-load"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-bench-cluster.XXXXXX")
chmod 755 "$WORK"
NODE_PIDS=()
NATS_PID=""
as_postgres() {
    if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}
stop_nodes() {
    local pid
    for pid in "${NODE_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    NODE_PIDS=()
}
cleanup() {
    stop_nodes
    [[ -n $NATS_PID ]] && { kill "$NATS_PID" 2>/dev/null || true; wait "$NATS_PID" 2>/dev/null || true; }
    as_postgres "$PGBIN/pg_ctl" -D "$WORK/pg" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

PG_PORT=$(free_port)
mkdir -p "$WORK/pg"
[[ $(id -u) == 0 ]] && chown postgres "$WORK/pg"
as_postgres "$PGBIN/initdb" -D "$WORK/pg" -A trust -U postgres >"$WORK/initdb.log" 2>&1
as_postgres "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg/log" -w \
    -o "-p $PG_PORT -k $WORK/pg -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
NATS_PORT=$(free_port)
nats-server -a 127.0.0.1 -p "$NATS_PORT" >"$WORK/nats.log" 2>&1 &
NATS_PID=$!

ROWS="$WORK/rows.tsv"
: >"$ROWS"
DATABASES=0

# start_nodes COUNT STORE: a fresh database and COUNT nodes on it (STORE:
# sqlite, postgres, or nats: PostgreSQL with --nats); sets ADDRS and PIDS
# (comma lists) and TOKENS.
start_nodes() {
    local count=$1 store=$2 index
    DATABASES=$((DATABASES + 1))
    local db="bench$DATABASES" where
    if [[ $store == sqlite ]]; then
        where=(--db "$WORK/$db.sqlite")
    else
        as_postgres "$PGBIN/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "CREATE DATABASE $db" >/dev/null
        where=(--postgres "postgres://postgres@127.0.0.1:$PG_PORT/$db")
    fi
    TOKENS=""
    for index in $(seq "$AGENTS"); do
        TOKENS+="${TOKENS:+,}agent$index=$("$SWITCHBOARD" agent add "agent$index" "${where[@]}" 2>>"$WORK/agents.log")"
    done
    local nats=()
    [[ $store == nats ]] && nats=(--nats "nats://127.0.0.1:$NATS_PORT")
    ADDRS="" PIDS=""
    for index in $(seq "$count"); do
        local log="$WORK/$db-node$index.log"
        SWITCHBOARD_MAX_CONNECTIONS_PER_ADDRESS=0 SWITCHBOARD_SIGNUPS_PER_MINUTE=0 \
        SWITCHBOARD_SIGNUPS_PER_MINUTE_TOTAL=0 SWITCHBOARD_CONNECTIONS_PER_SECOND_PER_ADDRESS=0 \
        SWITCHBOARD_LOG=warn,switchboard_server=info \
            "$SWITCHBOARD" serve --listen 127.0.0.1:0 "${where[@]}" "${nats[@]}" \
            --no-send-limits 2>"$log" &
        NODE_PIDS+=($!)
        local addr
        addr=$(listening_address "$log") || { echo "bench-cluster: a node did not start:" >&2; cat "$log" >&2; exit 1; }
        ADDRS+="${ADDRS:+,}$addr"
        PIDS+="${PIDS:+,}$!"
    done
}

# row NAME NODES STORE LOAD-ARGS...
row() {
    local name=$1 nodes=$2 store=$3
    shift 3
    echo "bench-cluster: $name..." >&2
    start_nodes "$nodes" "$store"
    local report="$WORK/row$DATABASES.json" status=0
    "$LOAD" --server "$ADDRS" --agent-tokens "$TOKENS" --agents "$AGENTS" --server-pid "$PIDS" \
        --timeout "$RUN_TIMEOUT" --json "$@" >"$report" || status=$?
    stop_nodes
    if [[ ! -s $report ]]; then
        printf '%s\tfailed to run (status %s)\n' "$name" "$status" >>"$ROWS"
        return 0
    fi
    jq -r --arg name "$name" '
        def ms: . * 100 | round / 100 | tostring;
        def us: if . == null then "?" else (. * 10 | round / 10 | tostring) end;
        def lat: "\(.p50_ms|ms) / \(.p99_ms|ms)";
        [ $name,
          (.acked_per_s | round | tostring),
          (.deliveries_per_s | round | tostring),
          (.ack_latency | lat),
          (.delivery_latency | lat),
          "\(.cpu.load_generator_us_per_message | us) µs",
          (if (.errors | length) == 0 then "none" else (.errors | to_entries | map("\(.key)=\(.value)") | join(" ")) end),
          (if .passed then "pass" else "FAIL" end)
        ] | @tsv' "$report" >>"$ROWS"
}

for shape in "1 sqlite 1 node, SQLite" "1 postgres 1 node, PostgreSQL" "3 nats 3 nodes, PostgreSQL + NATS"; do
    read -r nodes store label <<<"$shape"
    row "$label: closed ${SMALL_USERS}x1" "$nodes" "$store" \
        --users "$SMALL_USERS" --window 1 --messages "$SMALL_MESSAGES"
    row "$label: closed ${BIG_USERS}x16" "$nodes" "$store" \
        --users "$BIG_USERS" --window 16 --messages "$BIG_MESSAGES"
    row "$label: open ${OPEN_RATE}/s" "$nodes" "$store" \
        --users "$OPEN_USERS" --rate "$OPEN_RATE" --duration "$OPEN_DURATION"
done

echo
echo "| row | acked/s | deliveries/s | ack p50 / p99 ms | delivery p50 / p99 ms | load gen CPU/msg | errors | checks |"
echo "|---|---|---|---|---|---|---|---|"
while IFS=$'\t' read -r -a cells; do
    printf '| %s |\n' "$(IFS='|'; echo "${cells[*]}" | sed 's/|/ | /g')"
done <"$ROWS"
echo
echo "$(nproc) cores, $(uname -r); PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'), $(nats-server --version)"
