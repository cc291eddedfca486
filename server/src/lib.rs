//! The switchboard server.
//!
//! Bytes become frames in `switchboard_protocol`; here they become commands
//! and are carried out:
//!
//! - [`server`]: the accept loop, the connection cap, graceful shutdown;
//!   [`open_files`]: the cap fitted to the open-file limit.
//! - [`session`]: one connection: `hello`, then requests, then close.
//! - [`cmd`]: one request per file (`hello`, `subscribe`, `send`, `release`,
//!   `history`, `ping`): validate, then apply.
//! - [`store`]: SQLite behind the [`store::Store`] handle: one writer thread
//!   committing in groups, reader threads for sign-ins and history.
//! - [`router`]: who is online and who gets which frame, behind the
//!   [`router::Router`] handle; [`outbox`]: the bounded queue from the router
//!   to each session.
//! - [`assignment`], [`priority`], [`rate_limit`], [`token`]: pure rules.
//! - [`credentials`]: closes connections whose agent token was rotated or
//!   removed by the `agent` commands.
//! - [`error`]: every refusal, mapped to its protocol error code.
//! - [`admin`]: the `switchboard agent …` commands; [`tls`]: optional TLS.
//! - [`testing`]: the real session over an in-memory pipe, for the fuzz
//!   target and property tests.

pub mod admin;
pub mod assignment;
pub mod cmd;
pub mod config;
pub mod credentials;
pub mod error;
pub mod identity;
pub mod open_files;
pub mod outbox;
pub mod per_address;
pub mod priority;
pub mod rate_limit;
pub mod router;
pub mod server;
pub mod services;
pub mod session;
pub mod signups;
pub mod store;
pub mod testing;
pub mod tls;
pub mod token;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use config::Config;
use priority::PriorityRules;
use router::Router;
use services::Services;
use store::{Durability, Store};

/// Everything `switchboard serve` needs.
pub struct ServeOptions {
    pub listen: String,
    pub db: PathBuf,
    pub durability: Durability,
    pub config: Config,
    pub rules: PriorityRules,
    /// `--tls-cert` and `--tls-key`, when TLS is on.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// Opens the database, listens, serves until `shutdown`, then stops
/// cleanly: every queued write is committed before this returns.
pub async fn run(options: ServeOptions, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let tls = match &options.tls {
        Some((cert, key)) => Some(tls::acceptor(cert, key)?),
        None => None,
    };
    let router = Router::spawn();
    let (store, store_threads) = Store::open(&options.db, options.durability, router.clone())?;
    let listener = TcpListener::bind(&options.listen)
        .await
        .map_err(|error| anyhow::anyhow!("cannot listen on {}: {error}", options.listen))?;
    let address = listener.local_addr()?;
    let transport = if tls.is_some() { "TLS" } else { "plaintext" };
    tracing::info!(db = %options.db.display(), transport, "listening on {address}");
    let services = Arc::new(Services::new(store, router, options.config, options.rules));
    let stop_watching = tokio_util::sync::CancellationToken::new();
    let watcher = tokio::spawn(credentials::watch(
        services.store.clone(),
        services.router.clone(),
        stop_watching.clone(),
    ));
    let finished = server::serve(listener, Arc::clone(&services), tls, shutdown).await;
    stop_watching.cancel();
    let _ = watcher.await;
    drop(services);
    if finished {
        // The writer stops once the last Store handle is gone and its queue is
        // empty; waiting for it is waiting for the last commit.
        tokio::task::spawn_blocking(move || store_threads.join()).await?;
        tracing::info!("stopped; every queued write is committed");
    }
    Ok(())
}
