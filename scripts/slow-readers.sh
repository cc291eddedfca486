#!/usr/bin/env bash
# Issue 15, finding 2: how much memory slow readers of long replies make a
# server hold. Seeds one user's conversation of 1,000 messages of 16 KB,
# then opens 100 connections that ask for all of it in one `history` and
# read nothing, and prints the server's RSS over its baseline (the most
# while they wait, and once they left).
#
# It is the ignored test `hundred_slow_history_readers` in
# tests/tests/abuse_replies.rs, run against the binary given (default: this
# checkout's debug build, built first).
#
# Usage: scripts/slow-readers.sh [path/to/switchboard]
# Example: scripts/slow-readers.sh /work/before/switchboard

set -euo pipefail
cd "$(dirname "$0")/.."

if (($# > 0)); then
    export SWITCHBOARD_BIN=$1
else
    cargo build --bin switchboard
fi
cargo test -p switchboard-tests --test abuse_replies -- \
    --ignored --exact hundred_slow_history_readers --nocapture 2>&1 |
    grep -E 'slow readers|test result|panicked'
