#!/usr/bin/env bash
# Counts the instructions the server (or the load generator) executes per
# message, with valgrind's callgrind: unlike any timing on this machine, the
# count repeats to within a percent whatever else is running, so it shows a
# 3% change that wall-clock runs bury in noise.
#
# It starts a release `switchboard serve` under callgrind (or the load
# generator under callgrind against a plain server), runs a small closed loop,
# and prints the total and the total divided by the messages acked. Startup
# and connection set-up are included, so compare counts taken with the same
# arguments. For the load generator it also prints the part spent in its
# user and agent tasks, i.e. while the clock runs (the rest is set-up and
# the checks after the run). The profile is kept for
# `callgrind_annotate --inclusive=yes`.
#
# Usage: scripts/instructions.sh [server|load] [LOAD-ARGS...]
#   default: server, --users 50 --agents 4 --window 1 --messages 100
# Needs valgrind (apt-get install valgrind). Builds in release first.

set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/server.sh

WHO=server
if [[ ${1:-} == server || ${1:-} == load ]]; then
    WHO=$1
    shift
fi
LOAD_ARGS=("$@")
((${#LOAD_ARGS[@]})) || LOAD_ARGS=(--users 50 --agents 4 --window 1 --messages 100)
command -v valgrind >/dev/null || { echo "instructions: needs valgrind" >&2; exit 1; }

cargo build --release -p switchboard-server -p switchboard-load --quiet
BIN=${CARGO_TARGET_DIR:-target}/release
WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-instructions.XXXXXX")
PROFILE="$WORK/callgrind.out"
SERVER_PID=""
cleanup() {
    if [[ -n $SERVER_PID ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT

# Users send flat out: every send limit off (the variables are ignored by
# builds that predate them).
export SWITCHBOARD_NO_SEND_LIMITS=true
SERVER=("$BIN/switchboard" serve --listen 127.0.0.1:0 --db "$WORK/s.db" --rate 0)
LOAD=("$BIN/switchboard-load")
CALLGRIND=(valgrind --quiet --log-file="$WORK/valgrind.log" --tool=callgrind --callgrind-out-file="$PROFILE")
if [[ $WHO == server ]]; then
    SERVER=("${CALLGRIND[@]}" "${SERVER[@]}")
else
    LOAD=("${CALLGRIND[@]}" "${LOAD[@]}")
fi
SWITCHBOARD_LOG=warn,switchboard_server=info "${SERVER[@]}" 2>"$WORK/server.log" &
SERVER_PID=$!
ADDRESS=$(listening_address "$WORK/server.log" 600) || { cat "$WORK/server.log" >&2; exit 1; }
"${LOAD[@]}" --server "$ADDRESS" --db "$WORK/s.db" --switchboard "$BIN/switchboard" \
    --timeout 600 --json "${LOAD_ARGS[@]}" >"$WORK/report.json"
# SIGINT: the server shuts down cleanly and callgrind writes its profile.
kill -INT "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=""

python3 - "$WORK/report.json" "$PROFILE" "$WHO" <<'PY'
import json, re, sys
report = json.load(open(sys.argv[1]))
total = None
for line in open(sys.argv[2]):
    match = re.match(r"(?:summary|totals): (\d+)", line)
    if match:
        total = int(match.group(1))
acked = report["acked"]
print(f"{sys.argv[3]}: {total:,} instructions for {acked:,} acked messages: "
      f"{total / acked:,.0f} per message (checks {'pass' if report['passed'] else 'FAIL'})")
PY
if [[ $WHO == load ]] && command -v callgrind_annotate >/dev/null; then
    # Inclusive counts of the two task bodies, each listed once with its
    # binary. Run from /: inside the repository callgrind_annotate shortens
    # the source paths and then splits a function's inclusive count over
    # several entries (half of it went missing).
    (cd / && callgrind_annotate --inclusive=yes "$PROFILE" 2>/dev/null) | python3 -c '
import json, re, sys
acked = json.load(open(sys.argv[1]))["acked"]
hot = 0
for line in sys.stdin:
    if re.search(r"switchboard_load::(user|agent)::run::\{\{closure\}\} \[", line):
        hot += int(line.split()[0].replace(",", ""))
print(f"load: {hot:,} of them in the user and agent tasks: {hot / acked:,.0f} per message")
' "$WORK/report.json"
fi
echo "profile: $PROFILE"
