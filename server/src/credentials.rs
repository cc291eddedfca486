//! Token revocation across processes.
//!
//! `switchboard agent rotate` and `agent remove` change the database from
//! another process, so the server would not otherwise notice that a
//! connection signed in with a token that no longer works. This task reads
//! every agent's token hash once a period and tells the router about the
//! ones that changed; the router closes the connections that signed in with
//! the old token (and leaves alone any that already use the new one).

use std::collections::HashMap;
use std::time::Duration;

use switchboard_protocol::Name;
use tokio_util::sync::CancellationToken;

use crate::router::Router;
use crate::store::Store;

/// How often agent tokens are re-read: a revoked token stops working for
/// new sign-ins at once, and for open connections within this time.
pub const CREDENTIALS_POLL: Duration = Duration::from_secs(1);

/// Watches agent tokens until `stop` is cancelled.
pub async fn watch(store: Store, router: Router, stop: CancellationToken) {
    let mut known: Option<HashMap<Name, Option<Vec<u8>>>> = None;
    let mut ticks = tokio::time::interval(CREDENTIALS_POLL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = ticks.tick() => {}
        }
        let current: HashMap<_, _> = match store.agent_credentials().await {
            Ok(rows) => rows.into_iter().collect(),
            Err(error) => {
                tracing::warn!(%error, "cannot read agent tokens; will retry");
                continue;
            }
        };
        if let Some(known) = &known {
            for (agent, hash) in &current {
                if known.get(agent) != Some(hash) {
                    router.revoke(agent.clone(), hash.clone()).await;
                }
            }
        }
        known = Some(current);
    }
}
