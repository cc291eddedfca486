#!/usr/bin/env bash
# Reproduces the performance table of issue 5 ("Targets") on this machine and
# prints it, with the Redis XADD reference measured in the same run.
#
# Each row starts a throwaway `switchboard serve` on a free loopback port with
# a fresh database in a temporary directory, drives it with switchboard-load
# (which also checks that every acked message reached every agent once, in
# order, and is stored, reading it back with `history`), and stops it. The
# Redis row installs redis-server from the distribution if it is missing,
# starts a throwaway instance with `appendfsync always`, runs
# redis-benchmark against it, and stops it.
#
# Everything is bounded: each run has --timeout, the whole script takes a few
# minutes with the defaults. Sizes come from the environment:
#
#   AGENTS=4                    agents subscribed in every row
#   CLOSED_SMALL_USERS=50       row 1: users × window 1
#   CLOSED_SMALL_MESSAGES=1000  row 1: messages per user
#   CLOSED_BIG_USERS=200        row 2: users
#   CLOSED_BIG_WINDOW=16        row 2: window
#   CLOSED_BIG_MESSAGES=500     row 2: messages per user
#   OPEN_RATE=10000             rows 3-4: messages/s offered
#   OPEN_USERS=1000             rows 3-4: users
#   OPEN_DURATION=5             rows 3-4: seconds
#   OPEN_RUNS=3                 rows 3-4: runs each; the table shows the median
#   IDLE=15000                  row 4: idle subscribed connections
#   DURABILITY=full             server --durability (full | normal)
#   REDIS_CLIENTS=50 REDIS_REQUESTS=200000   the Redis row (SKIP_REDIS=1 to leave it out)
#   SKIP_STORAGE=1              leave out the 1M-message database rows
#   SKIP_CLUSTER=1              leave out the cluster rows (scripts/bench-cluster.sh:
#                               one node on SQLite, one on PostgreSQL, three on
#                               PostgreSQL + NATS, each at 50x1, 200x16 and an
#                               open loop at 2,000/s; run after the rows above)
#   RUN_TIMEOUT=120             seconds any one load run may take
#
# "server RSS/conn" is (RSS once everyone is connected - RSS before) / connections,
# shown for the idle row only: with a few dozen connections it mostly measures
# the server warming up. "CPU s" is the CPU time the server and the load
# generator used while messages flowed, and the generator's per acked
# message: on 2 shared cores, whether a slow row is the server's doing. "commit p50 / p99" is the server's own view of its
# group commits (first statement to fsync returned), from the line it logs
# when it stops: every ack waits for one, so it is the storage share of the
# ack latency. The two rows of the targets about a 1M-message database (agent
# subscribe, server start) come from `cargo bench --bench storage`, printed
# below the table.
#
# Usage: scripts/bench.sh            (from anywhere; builds in release first)

set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/server.sh

AGENTS=${AGENTS:-4}
CLOSED_SMALL_USERS=${CLOSED_SMALL_USERS:-50}
CLOSED_SMALL_MESSAGES=${CLOSED_SMALL_MESSAGES:-1000}
CLOSED_BIG_USERS=${CLOSED_BIG_USERS:-200}
CLOSED_BIG_WINDOW=${CLOSED_BIG_WINDOW:-16}
CLOSED_BIG_MESSAGES=${CLOSED_BIG_MESSAGES:-500}
OPEN_RATE=${OPEN_RATE:-10000}
OPEN_USERS=${OPEN_USERS:-1000}
OPEN_DURATION=${OPEN_DURATION:-5}
OPEN_RUNS=${OPEN_RUNS:-3}
IDLE=${IDLE:-15000}
DURABILITY=${DURABILITY:-full}
REDIS_CLIENTS=${REDIS_CLIENTS:-50}
REDIS_REQUESTS=${REDIS_REQUESTS:-200000}
SKIP_REDIS=${SKIP_REDIS:-0}
SKIP_STORAGE=${SKIP_STORAGE:-0}
RUN_TIMEOUT=${RUN_TIMEOUT:-120}

# Both processes hold one descriptor per connection; this machine allows
# 20,000 per process.
FILES_WANTED=20000
hard=$(ulimit -Hn)
if [[ $hard == unlimited || $hard -gt $FILES_WANTED ]]; then
    ulimit -n "$FILES_WANTED"
else
    ulimit -n "$hard"
fi
files=$(ulimit -n)
connections=$((IDLE + OPEN_USERS + AGENTS))
if ((connections + 200 > files)); then
    IDLE=$((files - OPEN_USERS - AGENTS - 200))
    ((IDLE < 0)) && IDLE=0
    echo "bench: only $files open files allowed; IDLE lowered to $IDLE" >&2
fi
MAX_CONNECTIONS=$((IDLE + OPEN_USERS + AGENTS + 100))

echo "bench: building (release)..." >&2
cargo build --release -p switchboard-server -p switchboard-load --quiet
TARGET_DIR=${CARGO_TARGET_DIR:-target}
SWITCHBOARD="$TARGET_DIR/release/switchboard"
LOAD="$TARGET_DIR/release/switchboard-load"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-bench.XXXXXX")
SERVER_PID=""
REDIS_PID=""
FAILED=0
cleanup() {
    if [[ -n $SERVER_PID ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    if [[ -n $REDIS_PID ]]; then kill "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true; fi
    if ((FAILED)); then
        echo "bench: a row failed; its server log and report are kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

# start_server DIR: sets SERVER_PID, SERVER_ADDR, SERVER_DB.
start_server() {
    local dir="$WORK/$1"
    mkdir -p "$dir"
    SERVER_DB="$dir/switchboard.db"
    # Every load connection comes from 127.0.0.1 and each user sends flat
    # out: no per-address caps or connection rates, no per-user or per-address send counts (set
    # by variable, which an older build ignores).
    SWITCHBOARD_MAX_CONNECTIONS_PER_ADDRESS=0 SWITCHBOARD_SIGNUPS_PER_MINUTE=0 SWITCHBOARD_SIGNUPS_PER_MINUTE_TOTAL=0 \
    SWITCHBOARD_NO_SEND_LIMITS=true SWITCHBOARD_CONNECTIONS_PER_SECOND_PER_ADDRESS=0 \
    SWITCHBOARD_REPLY_BUDGET=0 SWITCHBOARD_REPLIES_PER_USER=0 \
    SWITCHBOARD_LOG=warn,switchboard_server=info "$SWITCHBOARD" serve --listen 127.0.0.1:0 --db "$SERVER_DB" \
        --rate 0 --durability "$DURABILITY" --max-connections "$MAX_CONNECTIONS" 2>"$dir/server.log" &
    SERVER_PID=$!
    SERVER_ADDR=$(listening_address "$dir/server.log") && return 0
    echo "bench: the server did not start:" >&2
    cat "$dir/server.log" >&2
    exit 1
}

stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

ROWS="$WORK/rows.tsv"
: >"$ROWS"
COMMANDS="$WORK/commands.txt"
: >"$COMMANDS"
NOTES="$WORK/notes.txt"
: >"$NOTES"

# run_once DIR LOAD-ARGS...: one throwaway server, one load run. Leaves the
# load generator's JSON report in $WORK/DIR/report.json and the server's own
# commit figures (its "storage: group commits" log line, written when it
# stops) in $WORK/DIR/commits.txt.
run_once() {
    local dir=$1
    shift
    start_server "$dir"
    local report="$WORK/$dir/report.json" status=0
    "$LOAD" --server "$SERVER_ADDR" --db "$SERVER_DB" --switchboard "$SWITCHBOARD" \
        --server-pid "$SERVER_PID" --timeout "$RUN_TIMEOUT" --json "$@" >"$report" || status=$?
    stop_server
    ((status == 0)) || FAILED=1
    local line
    line=$(grep 'storage: group commits' "$WORK/$dir/server.log" | tail -1) || true
    field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$line"; }
    if [[ -n $line ]]; then
        echo "$(field commit_p50_ms) / $(field commit_p99_ms) ($(field per_group)/group)" >"$WORK/$dir/commits.txt"
    else
        echo "?" >"$WORK/$dir/commits.txt"
    fi
    return 0
}

# row NAME TARGET RUNS LOAD-ARGS...: RUNS load runs, each against its own
# throwaway server; the table shows the run with the median ack p99 (the
# higher of the middle two for an even count), and
# NOTES lists every run's, because on a shared host one run can be far off.
row() {
    local name=$1 target=$2 runs=$3
    shift 3
    local base=${name//[^A-Za-z0-9]/_} run dirs=()
    echo "switchboard-load --server 127.0.0.1:PORT --db DB $* --server-pid PID --json" >>"$COMMANDS"
    for run in $(seq "$runs"); do
        echo "bench: $name (run $run of $runs)..." >&2
        run_once "${base}_$run" "$@"
        dirs+=("${base}_$run")
    done
    # The runs that produced a report, ordered by ack p99.
    local ranked=() dir
    for dir in "${dirs[@]}"; do
        local p99
        p99=$(jq -r '.ack_latency.p99_ms // empty' "$WORK/$dir/report.json" 2>/dev/null) || true
        [[ -n $p99 ]] && ranked+=("$p99 $dir")
    done
    if ((${#ranked[@]} == 0)); then
        printf '%s\t%s\tfailed to run\t\t\t\t\t\t\t\t\n' "$name" "$target" >>"$ROWS"
        return 0
    fi
    mapfile -t ranked < <(printf '%s\n' "${ranked[@]}" | sort -n)
    local median=${ranked[$((${#ranked[@]} / 2))]#* }
    if ((runs > 1)); then
        echo "$name: ack p99 of each run (ms): $(printf '%s\n' "${ranked[@]}" | cut -d' ' -f1 | xargs printf '%.2f ' | sed 's/ $//'); the table shows the median" >>"$NOTES"
    fi
    jq -r --arg name "$name" --arg target "$target" --arg commits "$(cat "$WORK/$median/commits.txt")" '
        def ms: . * 100 | round / 100 | tostring;
        def sec: if . == null then "?" else (. * 100 | round / 100 | tostring) end;
        def us: if . == null then "?" else (. * 10 | round / 10 | tostring) end;
        def lat: "\(.p50_ms|ms) / \(.p99_ms|ms) / \(.p99_9_ms|ms) / \(.max_ms|ms)";
        [ $name, $target,
          (.acked_per_s | round | tostring),
          (.deliveries_per_s | round | tostring),
          (.ack_latency | lat),
          (.delivery_latency | lat),
          $commits,
          (if .idle > 0 and .server_rss.per_connection_bytes then (.server_rss.per_connection_bytes | round | tostring) + " B" else "-" end),
          "\(.cpu.server_s | sec) / \(.cpu.load_generator_s | sec) (\(.cpu.load_generator_us_per_message | us) µs/msg)",
          (if (.errors | length) == 0 then "none" else (.errors | to_entries | map("\(.key)=\(.value)") | join(" ")) end),
          (if .passed then "pass" else "FAIL" end)
        ] | @tsv' "$WORK/$median/report.json" >>"$ROWS"
}

row "closed ${CLOSED_SMALL_USERS}x1" "≥ Redis XADD" 1 \
    --users "$CLOSED_SMALL_USERS" --agents "$AGENTS" --window 1 --messages "$CLOSED_SMALL_MESSAGES"
row "closed ${CLOSED_BIG_USERS}x${CLOSED_BIG_WINDOW}" "≥ 50,000/s (≥ 200,000 deliv/s)" 1 \
    --users "$CLOSED_BIG_USERS" --agents "$AGENTS" --window "$CLOSED_BIG_WINDOW" --messages "$CLOSED_BIG_MESSAGES"
row "open ${OPEN_RATE}/s" "ack p99 ≤ 2 ms, deliv p99 ≤ 5 ms" "$OPEN_RUNS" \
    --users "$OPEN_USERS" --agents "$AGENTS" --rate "$OPEN_RATE" --duration "$OPEN_DURATION"
row "open ${OPEN_RATE}/s + ${IDLE} idle" "≤ 8 KiB/conn, same latency" "$OPEN_RUNS" \
    --users "$OPEN_USERS" --agents "$AGENTS" --rate "$OPEN_RATE" --duration "$OPEN_DURATION" --idle "$IDLE"

# The reference: Redis XADD with every write fsynced, driven like row 1.
redis_row() {
    if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
        echo "bench: installing redis-server..." >&2
        if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; } >"$WORK/apt.log" 2>&1; then
            printf 'redis XADD\treference\tnot installed (see apt-get)\t\t\t\t\t\t\t\t\n' >>"$ROWS"
            return 0
        fi
    fi
    local dir="$WORK/redis" port
    mkdir -p "$dir"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --appendonly yes --appendfsync always \
        --save '' --daemonize no --logfile "$dir/redis.log" &
    REDIS_PID=$!
    for _ in $(seq 100); do
        [[ $(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) == PONG ]] && break
        sleep 0.1
    done
    echo "bench: redis XADD..." >&2
    local command="redis-benchmark -h 127.0.0.1 -p PORT -c $REDIS_CLIENTS -P 1 -n $REDIS_REQUESTS --csv XADD mystream '*' field value"
    echo "$command" >>"$COMMANDS"
    local csv
    csv=$(timeout "$RUN_TIMEOUT" redis-benchmark -h 127.0.0.1 -p "$port" -c "$REDIS_CLIENTS" -P 1 \
        -n "$REDIS_REQUESTS" --csv XADD mystream '*' field value | tail -1) || true
    kill "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
    REDIS_PID=""
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    echo "$csv" | tr -d '"' | awk -F, -v clients="$REDIS_CLIENTS" '{
        printf "redis XADD c%s\treference (appendfsync always)\t%d\t-\t%s / %s / - / %s\t-\t-\t-\t-\t-\t-\n", clients, $2, $5, $7, $8
    }' >>"$ROWS"
}
[[ $SKIP_REDIS == 1 ]] || redis_row

# The rows about a 1M-message database: the storage bench builds it with the
# writer's own SQL, then times the real binary starting on it and an agent's
# subscribe over TCP.
STORAGE="$WORK/storage.txt"
if ((SKIP_STORAGE)); then
    : >"$STORAGE"
else
    echo "bench: 1M-message database (cargo bench --bench storage)..." >&2
    cargo bench -p switchboard-server --bench storage --quiet 2>/dev/null >"$STORAGE"
    echo "cargo bench -p switchboard-server --bench storage" >>"$COMMANDS"
fi

echo
echo "switchboard $(git rev-parse --short HEAD 2>/dev/null || echo '?'), durability=$DURABILITY, $(nproc) cores, load generator on the same machine"
{
    printf 'row\ttarget\tacked/s\tdeliveries/s\tack p50 / p99 / p99.9 / max (ms)\tdelivery p50 / p99 / p99.9 / max (ms)\tcommit p50 / p99 (ms)\tserver RSS/conn\tCPU s server / load (load µs/msg)\terrors\tchecks\n'
    cat "$ROWS"
} | column -t -s $'\t'
echo
if [[ -s $STORAGE ]]; then
    echo "database targets (agent subscribe ≤ 100 ms, server start listening ≤ 1 s):"
    sed 's/^/  /' "$STORAGE"
    echo
fi
if [[ -s $NOTES ]]; then
    cat "$NOTES"
    echo
fi
echo "commands (DB, PID: the throwaway server's; every server: switchboard serve --listen 127.0.0.1:0 --rate 0 --durability $DURABILITY --max-connections $MAX_CONNECTIONS --max-connections-per-address 0 --signups-per-minute 0 --signups-per-minute-total 0 --no-send-limits):"
sed 's/^/  /' "$COMMANDS"

if ((${SKIP_CLUSTER:-0})); then
    echo "cluster rows left out (SKIP_CLUSTER=1)"
else
    echo
    echo "cluster rows (scripts/bench-cluster.sh):"
    scripts/bench-cluster.sh
fi
