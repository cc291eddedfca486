//! End-to-end harness: start the real `switchboard` binary and speak the wire
//! protocol (`PROTOCOL.md`, read as `docs/protocol.md`, "How switchboard reads the open points" says) over TCP.
//!
//! # A black-box oracle
//!
//! The harness writes frames with `json!` and reads replies as
//! `serde_json::Value`; this crate does not depend on the server or on
//! `switchboard-protocol`. That is the point, not a shortcut: a test that
//! shared the server's types would change with them, so a renamed field, a
//! changed enum tag or a new serde attribute would pass every test and break
//! every real client. Spelling the JSON out here pins the wire format that
//! the protocol document promises. (The style rule "no `Value` past the
//! codec" is about the server; here `Value` is the oracle's own language.)
//!
//! # Map
//!
//! - [`server`]: [`TestServer`], one server process on `127.0.0.1:0` with its
//!   own database in a temporary directory (in cluster mode, three on one
//!   database and one bus); killed when dropped, so tests can run in
//!   parallel. Restarts, signals and its log.
//! - [`nodes`]: the processes behind one [`TestServer`]: connections take
//!   turns over them, and a restart or a signal reaches every one.
//! - [`process`]: one `switchboard serve` child: command line, the thread
//!   that drains stderr, the `listening on` line.
//! - [`deployment`]: [`Deployment`], what a test needs from the system under
//!   test (connect, provision an agent), so a cluster can stand in for one node.
//! - [`client`]: [`TestClient`], one TCP connection that sends JSON lines and
//!   receives frames with a timeout, so a missing frame fails the test instead
//!   of hanging it.
//! - [`cluster`]: [`Cluster`], several nodes on one fresh PostgreSQL
//!   database (and a bus), and the helpers cluster tests share.
//! - [`greeted`]: [`TestClient::connect`], which waits for the greeting a
//!   bounded time and retries with jittered backoff, as every client must
//!   (a burst of connects can lose handshakes in silence).
//! - [`session`]: the protocol's requests as one call each, and [`user`] /
//!   [`agent`]: a connection that is already greeted, identified and
//!   subscribed, for tests that are about something else.
//! - [`sqlite_lock`]: [`SqliteWriteLock`], another process holding a
//!   server's SQLite file, so its commits fail (`internal`) until released.
//! - [`stuck`]: [`stuck_reader`], a connection the server is writing a long
//!   reply to and that reads nothing more.
//! - [`frames`]: the exact frames a test can write out in full (greeting,
//!   presence, assigned, released).
//! - [`assert`](mod@assert): [`assert_message`] and friends, the shape every error and
//!   stored message must have.
//! - [`messages`]: ids, bodies and messages picked out of frames.
//! - [`flags`]: `serve` flags tests share ([`flags::NO_SEND_LIMITS`]).
//! - [`bins`]: where the built `switchboard` and `switchboard-tui` binaries are.
//! - [`tls`]: a self-signed certificate made on the spot.
//! - [`tmux`]: [`Tmux`], a private tmux server that runs the terminal
//!   client, types into it and reads its screen.
//! - [`http`]: a plain HTTP client for the operator port (`/metrics`,
//!   `/healthz`), and [`TestServer::metrics_addr`] finds that port.
//! - [`postgres`], [`nats`]: [`TestPostgres`] and [`TestNats`], throwaway
//!   PostgreSQL and `nats-server` on free loopback ports for the cluster
//!   tests (issue 16), which stop, restart and freeze them; [`throwaway`]:
//!   what they share, including the one variable that may skip a test whose
//!   server is missing ([`SKIP_CLUSTER_TESTS_ENV`]); [`shared_postgres`]: one
//!   such PostgreSQL per test process and a fresh database per test, for the
//!   server's own PostgreSQL tests and the suite on PostgreSQL;
//!   [`shared_nats`](mod@shared_nats): one such `nats-server` per test
//!   process, the bus of every cluster in cluster mode; [`store`]: which
//!   store a [`TestServer`] uses ([`TEST_STORE_ENV`]`=postgres` runs the whole suite on one
//!   PostgreSQL node, `=cluster` on [`CLUSTER_NODES`] nodes sharing a
//!   database and a bus).
//!
//! Test files say `use switchboard_tests::*;` (or `::prelude::*`): every item
//! above is re-exported here through [`prelude`].
//!
//! Nothing here sleeps to wait for the server: a test that needs to know that
//! no other event is on its way uses [`TestClient::barrier`] (interpretation 16).

pub mod assert;
pub mod bins;
pub mod client;
pub mod cluster;
pub mod deployment;
pub mod flags;
pub mod frames;
pub mod greeted;
pub mod http;
pub mod messages;
pub mod missing;
pub mod nats;
pub mod nodes;
pub mod postgres;
pub mod process;
pub mod server;
pub mod session;
pub mod shared_nats;
pub mod shared_postgres;
pub mod sqlite_lock;
pub mod store;
pub mod stuck;
pub mod throwaway;
pub mod tls;
pub mod tmux;

/// Everything a test file uses, for one glob import.
pub mod prelude {
    pub use crate::assert::{assert_error, assert_message, assert_timestamp};
    pub use crate::bins::{switchboard_bin, tui_bin};
    pub use crate::client::{RECV_TIMEOUT, TestClient};
    pub use crate::cluster::{
        Cluster, bus, next_message, next_of, next_of_within, number, reply_to, with_and_without_bus,
    };
    pub use crate::deployment::Deployment;
    pub use crate::flags::NO_SEND_LIMITS;
    pub use crate::frames::{assigned, greeting, presence, released, resolved, transferred};
    pub use crate::greeted::{CONNECT_ATTEMPTS, GREETING_TIMEOUT, NoGreeting};
    pub use crate::http::{HTTP_TIMEOUT, HttpReply, http_exchange, http_get};
    pub use crate::messages::{bodies, id_of, ids, messages_in, numbered};
    pub use crate::nats::TestNats;
    pub use crate::postgres::TestPostgres;
    pub use crate::process::PROCESS_TIMEOUT;
    pub use crate::server::TestServer;
    pub use crate::session::{agent, agent_snapshot, unsubscribed_user, user, user_again};
    pub use crate::shared_nats::shared_nats;
    pub use crate::shared_postgres::{fresh_database, shared_postgres};
    pub use crate::sqlite_lock::SqliteWriteLock;
    pub use crate::store::{CLUSTER_NODES, SuiteStore, TEST_STORE_ENV, TestStore};
    pub use crate::stuck::stuck_reader;
    pub use crate::throwaway::{SKIP_CLUSTER_TESTS_ENV, STARTUP_TIMEOUT};
    pub use crate::tls::write_self_signed_certificate;
    pub use crate::tmux::{SKIP_TMUX_TESTS_ENV, Tmux};
}

pub use prelude::*;
