//! The switchboard server.
//!
//! Bytes become frames in `switchboard_protocol`; here they become commands
//! and are carried out:
//!
//! - [`server`]: the accept loop, the connection cap, graceful shutdown
//!   with a bounded drain; [`listener`]: the listening socket and its
//!   backlog; [`open_files`]: the cap fitted to the open-file limit.
//! - [`session`]: one connection: `hello`, then requests, then close.
//! - [`cmd`]: one request per file (`hello`, `subscribe`, `send`, `release`,
//!   `history`, `ping`): validate, then apply.
//! - [`store`]: storage behind the [`store::Store`] handle: one writer thread
//!   committing in groups, reader threads for sign-ins, history and backlogs;
//!   the rules of reads and writes over small traits, SQLite in `store/sqlite/`
//!   (no `rusqlite` type outside it); [`store::Admin`] for the `agent` commands;
//!   [`store::copy_to_postgres`] for `switchboard copy`.
//! - [`fanout`]: who is online and who gets which frame, behind the
//!   [`fanout::Router`] handle: the registry, the delivery rules, the
//!   [`fanout::outbox`] (the bounded queue from the router to each session)
//!   and [`fanout::credentials`] (closes connections whose agent token was
//!   rotated or removed by the `agent` commands); [`credentials`] is the
//!   watcher that re-reads the tokens and tells the router.
//! - [`node`]: wires storage to fan-out (they share only [`event`], and a
//!   cluster's [`feed_wire`]) and supervises them. docs/architecture.md is the whole map.
//! - [`assignment`], [`priority`], [`rate_limit`], [`token`]: pure rules.
//! - [`inflow`], [`signups`], [`per_address`]: what untrusted clients may
//!   send, register and hold, counted across their connections.
//! - [`address_rate`]: a token bucket per client address (new names, new
//!   connections); [`buckets_by`]: the bounded map of buckets by key they
//!   and [`inflow`] share.
//! - [`reply_budget`]: long replies in flight, server-wide and per user.
//! - [`error`]: every refusal, mapped to its protocol error code.
//! - [`admin`]: the `switchboard agent …` commands; [`tls`]: optional TLS.
//! - [`lease`]: a cluster node's lease.
//! - [`metrics`]: the operator port (`--metrics-listen`): Prometheus
//!   metrics and a health check over HTTP, and the counters behind them.
//! - `testing` (cargo feature `testing`): the real session over an
//!   in-memory pipe, for the fuzz target and property tests.

pub mod address_rate;
pub mod admin;
pub mod assignment;
pub mod auto_release;
pub mod buckets_by;
pub mod cmd;
pub mod config;
pub mod credentials;
pub mod error;
pub mod event;
pub mod fanout;
pub mod feed_wire;
pub mod identity;
pub mod inflow;
pub mod lease;
pub mod listener;
pub mod metrics;
pub mod node;
pub mod open_files;
pub mod per_address;
pub mod priority;
pub mod rate_limit;
pub mod reply_budget;
pub mod server;
pub mod services;
pub mod session;
pub mod signups;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;
pub mod token;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use thiserror::Error;

pub use config::Config;
use node::Node;
use priority::PriorityRules;
use server::Drain;
use store::{Durability, Location};

/// How long sessions get to say `bye` once the node is failing: enough for
/// a last frame, short enough that the process is gone within a second.
const FAILURE_GRACE: Duration = Duration::from_millis(500);

/// Everything `switchboard serve` needs.
pub struct ServeOptions {
    pub listen: String,
    /// The SQLite file (`--db`) or PostgreSQL database (`--postgres`).
    pub db: Location,
    /// `--nats`: the cluster's bus (with PostgreSQL only).
    pub nats: Option<String>,
    pub durability: Durability,
    pub config: Config,
    pub rules: PriorityRules,
    /// `--tls-cert` and `--tls-key`, when TLS is on.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// `--metrics-listen`: where to serve `/metrics` and `/healthz`, if anywhere.
    pub metrics_listen: Option<String>,
}

/// Why `switchboard serve` could not start, or stopped on its own.
#[derive(Debug, Error)]
pub enum ServeError {
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Start(#[from] node::StartError),
    /// The cause is in the message, with what to do about it; not also
    /// a `source`, which `main` would print a second time.
    #[error("cannot listen on {address}: {reason}{}", listen_hint(reason))]
    Listen {
        address: String,
        reason: std::io::Error,
    },
    #[error(
        "cannot listen for metrics on {address} (--metrics-listen): {source}; \
         give another address, or leave the flag out to serve no metrics"
    )]
    MetricsListen {
        address: String,
        source: std::io::Error,
    },
    #[error("{0}; the server stopped (see the log above for why)")]
    Failed(&'static str),
}

/// What to do when `--listen` fails: the usual two mistakes named.
fn listen_hint(reason: &std::io::Error) -> &'static str {
    match reason.kind() {
        std::io::ErrorKind::AddrInUse => {
            "; another server (perhaps another switchboard) has that port: stop it, \
             or give this one another with --listen HOST:PORT"
        }
        std::io::ErrorKind::InvalidInput => "; --listen takes HOST:PORT, e.g. 127.0.0.1:7878",
        std::io::ErrorKind::PermissionDenied => {
            "; ports below 1024 need privileges: pick a port above 1023"
        }
        _ => "",
    }
}

/// Opens the database, listens, serves until `shutdown`, then stops
/// cleanly: sessions drain (within the shutdown grace) and the writer
/// finishes its queue before this returns. If the router or the writer dies
/// meanwhile, it stops at once with [`ServeError::Failed`].
pub async fn run(
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let tls = match &options.tls {
        Some((cert, key)) => Some(tls::acceptor(cert, key)?),
        None => None,
    };
    let backlog = listener::backlog_for(options.config.listen_backlog);
    // Bound first: a port already taken stops the server before it opens,
    // or creates, any database (issue 17, first-hour findings). Nothing is
    // accepted until the node is up; a client that connects meanwhile
    // waits in the backlog for its greeting.
    let listener = listener::bind(&options.listen, backlog)
        .await
        .map_err(|reason| ServeError::Listen {
            address: options.listen.clone(),
            reason,
        })?;
    let new_database = options.db.is_new_sqlite_file();
    let node = Node::start_with_bus(
        &options.db,
        options.nats.as_deref(),
        options.durability,
        options.config,
        options.rules,
    )
    .await?;
    node.settle_removed_agents().await;
    // Bound before the server announces itself and accepts: one that
    // cannot serve its operator port never does. `draining` turns /healthz
    // to 503 from the shutdown signal on.
    let draining = CancellationToken::new();
    let mut observed = node.observed();
    observed.draining = draining.clone();
    // Dropped when `run` returns: the operator port lives as long as serving.
    let _metrics = match &options.metrics_listen {
        Some(address) => Some(
            metrics::endpoint::start(address, metrics::Exporter::new(observed))
                .await
                .map_err(|source| ServeError::MetricsListen {
                    address: address.clone(),
                    source,
                })?,
        ),
        None => None,
    };
    let address = listener.local_addr().map_err(|reason| ServeError::Listen {
        address: options.listen.clone(),
        reason,
    })?;
    let transport = if tls.is_some() { "TLS" } else { "plaintext" };
    if tls.is_none() && !address.ip().is_loopback() {
        // First-hour findings: reachable from other machines, in the clear.
        tracing::warn!(
            "serving plaintext on {address}: anyone on the network path can read tokens and \
             messages; give --tls-cert and --tls-key, or keep this port on a private network"
        );
    }
    let db = options.db.for_log();
    if new_database {
        tracing::warn!(
            "created a new, empty database at {db}: no agents yet (`switchboard agent add NAME`); \
             if you meant an existing one, stop and give its file with --db"
        );
    }
    tracing::info!(db = %db, transport, backlog, "listening on {address}");
    let stop_serving = async {
        tokio::select! {
            () = shutdown => {}
            _ = node.failed() => {}
        }
        draining.cancel();
    };
    let serving = server::serve(listener, node.services(), tls, stop_serving);
    let drain = tokio::select! {
        drain = serving => drain,
        reason = async {
            let reason = node.failed().await;
            tokio::time::sleep(FAILURE_GRACE).await;
            reason
        } => return Err(ServeError::Failed(reason)),
    };
    if let Some(reason) = node.failure() {
        return Err(ServeError::Failed(reason));
    }
    // The writer stops once the last Store handle is gone and its queue is
    // empty; waiting for it is waiting for the last commit. A session that
    // did not end may hold a handle: then the writer is not waited for.
    let sessions_ended = !matches!(drain, Drain::Stuck(_));
    node.stop(sessions_ended).await;
    log_stopped(drain);
    Ok(())
}

/// The last line of a clean stop, saying only what is true. The writer has
/// gone through its queue, but some writes in it may have failed (a full
/// or read-only disk: they were answered `internal` and logged), so the
/// promise is about acknowledged writes: a `sent` is written only after
/// its commit.
fn log_stopped(drain: Drain) {
    const COMMITTED: &str = "the storage writer finished its queue: every acknowledged write is \
                             committed (writes that failed were answered `internal`, see above)";
    match drain {
        Drain::Complete => tracing::info!("stopped; every session drained; {COMMITTED}"),
        Drain::Dropped(sessions) => tracing::info!(
            sessions,
            "stopped; sessions that were not reading were dropped after the grace; {COMMITTED}"
        ),
        Drain::Stuck(sessions) => tracing::warn!(
            sessions,
            "stopped without waiting for storage: sessions did not end; writes not yet \
             acknowledged may not be committed"
        ),
    }
}
