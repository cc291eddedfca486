#!/usr/bin/env bash
# Every test, in every storage mode: the README's test command, and what CI
# (.ci/run) runs.
#
# 1. `cargo test --workspace`: unit, property and end-to-end tests, the
#    end-to-end suite on one node on SQLite (the default).
# 2. The end-to-end suite again on one node on PostgreSQL
#    (SWITCHBOARD_TEST_STORE=postgres: every TestServer starts on a fresh
#    database of a throwaway PostgreSQL the harness starts itself). Tests
#    about the SQLite file itself stay on SQLite (TestServer::start_on_sqlite).
# 3. The end-to-end suite against a 3-node cluster
#    (SWITCHBOARD_TEST_STORE=cluster: every TestServer is three nodes on one
#    fresh database with a throwaway nats-server, clients spread over them).
#
# Needs what the tests need (README, "The two commands"); PostgreSQL and
# nats-server missing fail the tests that need them, with the line that
# installs them. Extra arguments go to every cargo test run (e.g. a filter).

set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> cargo test --workspace (end to end on SQLite)"
cargo test --workspace "$@"

echo "==> the end-to-end suite on PostgreSQL (SWITCHBOARD_TEST_STORE=postgres)"
SWITCHBOARD_TEST_STORE=postgres cargo test -p switchboard-tests "$@"

echo "==> the end-to-end suite on a 3-node cluster (SWITCHBOARD_TEST_STORE=cluster)"
SWITCHBOARD_TEST_STORE=cluster cargo test -p switchboard-tests "$@"
