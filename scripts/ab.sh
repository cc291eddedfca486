#!/usr/bin/env bash
# Compares two builds of the switchboard server on one load, interleaved:
# A, B, A, B, …
#
# This machine's timings swing by ±15% from minute to minute, so a figure
# means something only beside another taken in the same minutes. Each round
# starts a throwaway server of each build with a fresh database and runs the
# load against it; the summary gives each build's runs, sorted, and their
# median. Only the server differs between A and B: both sides are driven by
# one and the same switchboard-load (DIR_B's, or $SWITCHBOARD_LOAD), which
# speaks the protocol and never reads the server's files, so an older server
# build (e.g. one of 685994c) is measured by today's load generator.
#
# Usage: scripts/ab.sh DIR_A DIR_B [ROUNDS] [-- LOAD-ARGS...]
#   DIR_A, DIR_B: directories holding `switchboard` (DIR_B also
#                 `switchboard-load`; copy target/release somewhere before
#                 changing the code)
#   ROUNDS:       runs of each (default 5)
#   LOAD-ARGS:    default: the 50×1 row (--users 50 --agents 4 --window 1
#                 --messages 1500)
#   SWITCHBOARD_LOAD=path: the load generator for both sides
#                 (default: DIR_B/switchboard-load)
# Example: cp -r target/release /tmp/before; (change, build);
#          scripts/ab.sh /tmp/before target/release 8

set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/server.sh

if (($# < 2)); then
    sed -n '2,24p' "$0" >&2
    exit 2
fi
A=$1 B=$2
shift 2
ROUNDS=5
if (($# > 0)) && [[ $1 != -- ]]; then
    ROUNDS=$1
    shift
fi
[[ ${1:-} == -- ]] && shift
LOAD_ARGS=("$@")
((${#LOAD_ARGS[@]})) || LOAD_ARGS=(--users 50 --agents 4 --window 1 --messages 1500)
LOAD=${SWITCHBOARD_LOAD:-$B/switchboard-load}
[[ -x $LOAD ]] || { echo "ab: no load generator at $LOAD (set SWITCHBOARD_LOAD)" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-ab.XXXXXX")
SERVER_PID=""
cleanup() {
    if [[ -n $SERVER_PID ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
ulimit -n 20000 2>/dev/null || true

# run BUILD_DIR: prints "acked/s ack-p99-ms load-cpu-us-per-message" for one run.
run() {
    local bin=$1 dir
    dir=$(mktemp -d "$WORK/run.XXXXXX")
    # All load comes from 127.0.0.1 and each user sends flat out: no
    # per-address caps, no per-user or per-address send counts (variables,
    # which an older build ignores).
    SWITCHBOARD_MAX_CONNECTIONS_PER_ADDRESS=0 SWITCHBOARD_SIGNUPS_PER_MINUTE=0 SWITCHBOARD_SIGNUPS_PER_MINUTE_TOTAL=0 \
    SWITCHBOARD_NO_SEND_LIMITS=true SWITCHBOARD_CONNECTIONS_PER_SECOND_PER_ADDRESS=0 \
    SWITCHBOARD_REPLY_BUDGET=0 SWITCHBOARD_REPLIES_PER_USER=0 \
    SWITCHBOARD_LOG=warn,switchboard_server=info "$bin/switchboard" serve --listen 127.0.0.1:0 \
        --db "$dir/s.db" --rate 0 --max-connections 20000 2>"$dir/server.log" &
    SERVER_PID=$!
    local address
    address=$(listening_address "$dir/server.log") || { cat "$dir/server.log" >&2; exit 1; }
    # --db and --switchboard only provision the agents, with this build's CLI.
    "$LOAD" --server "$address" --db "$dir/s.db" --switchboard "$bin/switchboard" \
        --timeout 120 --json "${LOAD_ARGS[@]}" >"$dir/report.json"
    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); us=r["cpu"].get("load_generator_us_per_message"); print(round(r["acked_per_s"]), r["ack_latency"]["p99_ms"], "?" if us is None else round(us, 1))' "$dir/report.json"
}

declare -a RATES_A RATES_B
echo "load: $LOAD ${LOAD_ARGS[*]}"
for round in $(seq "$ROUNDS"); do
    read -r rate p99 cpu < <(run "$A")
    RATES_A+=("$rate")
    echo "round $round  A $rate/s (ack p99 $p99 ms, load generator $cpu µs CPU/msg)"
    read -r rate p99 cpu < <(run "$B")
    RATES_B+=("$rate")
    echo "round $round  B $rate/s (ack p99 $p99 ms, load generator $cpu µs CPU/msg)"
done
summary() {
    printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1; line=line $1 " "} END {printf "%smedian %d/s\n", line, v[int((NR+1)/2)]}'
}
echo "A ($A): $(summary "${RATES_A[@]}")"
echo "B ($B): $(summary "${RATES_B[@]}")"
