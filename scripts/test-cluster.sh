#!/usr/bin/env bash
# The end-to-end suite against a 3-node cluster (issue 16): every test that
# starts a plain TestServer gets three `switchboard serve` nodes on one fresh
# database of a throwaway PostgreSQL, each with `--nats` pointing at one
# throwaway nats-server (SWITCHBOARD_TEST_STORE=cluster; see
# tests/src/store.rs). A test's connections take turns over the nodes.
#
# scripts/test.sh (and CI) runs this pass third; this script runs it alone,
# building the binaries first. Needs PostgreSQL and nats-server
# (`apt-get install postgresql nats-server`). Extra arguments go to cargo
# test (e.g. `--test sending`, or a filter).
#
# The harness runs the binaries cargo built and never builds them itself
# (tests/src/bins.rs), and `cargo test -p switchboard-tests` alone does not
# build them: hence the build first.

set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> cargo build --bin switchboard --bin switchboard-tui"
cargo build --bin switchboard --bin switchboard-tui

echo "==> the end-to-end suite on a 3-node cluster (SWITCHBOARD_TEST_STORE=cluster)"
SWITCHBOARD_TEST_STORE=cluster cargo test -p switchboard-tests "$@"
