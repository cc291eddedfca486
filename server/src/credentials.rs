//! Token revocation across processes: the watcher.
//!
//! `switchboard agent rotate` and `agent remove` change the database from
//! another process, so the server would not otherwise notice that a
//! connection signed in with a token that no longer works. This task reads
//! every agent's token hash once a period and hands them all to the router,
//! which closes the connections that signed in with another token (the rule
//! is in `fanout::credentials`).
//!
//! `agent remove` also leaves the removed agent's conversations marked with
//! it (they already count as unassigned); on the same tick this task has the
//! writer release them, so every subscribed agent and each of those users
//! hears `released`.
//!
//! It reads storage and tells fan-out, so it lives beside the node that
//! wires the two, in neither.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::fanout::Router;
use crate::store::Store;

/// How often agent tokens are re-read: a revoked token stops working for
/// new sign-ins at once, and for open connections within this time.
pub const CREDENTIALS_POLL: Duration = Duration::from_secs(1);

/// Watches agent tokens until `stop` is cancelled. Level-triggered: the
/// router gets the whole picture every time, so a connection that signed in
/// with an old token just as it changed is caught on the next read too.
pub async fn watch(store: Store, router: Router, stop: CancellationToken) {
    let mut ticks = tokio::time::interval(CREDENTIALS_POLL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = ticks.tick() => {}
        }
        let read_at = std::time::Instant::now();
        match store.agent_credentials().await {
            Ok(rows) => {
                router
                    .credentials(rows.into_iter().collect(), read_at)
                    .await
            }
            Err(error) => tracing::warn!(%error, "cannot read agent tokens; will retry"),
        }
        match store.removed_agents_hold_conversations().await {
            Ok(false) => {}
            Ok(true) => {
                if let Err(error) = store.release_removed_agents().await {
                    tracing::warn!(%error, "cannot release a removed agent's conversations; will retry");
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot look for removed agents' conversations; will retry")
            }
        }
    }
}
