//! Auto-release (protocol version 2): once a second a reader looks, and if
//! any is due, the writer lets go of every conversation whose holder has
//! had no subscribed connection, on any node, for `--release-after` (the rule and the clock:
//! `store/rules/connections.rs`). Everyone concerned hears `released` with
//! `"reason":"agent_offline"`; the waiting messages stay waiting, so
//! another agent can take the conversation.
//!
//! Every node of a cluster asks; the rule decides in the writer's
//! transaction on the shared database, so a conversation is released once
//! whichever node asks first, and the others find nothing due.
//!
//! It tells storage on a timer, so it lives beside the node that starts
//! it, like the credential watcher.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::Store;

/// How often the writer looks for conversations due: a release comes at
/// most this long after `--release-after`.
pub const AUTO_RELEASE_POLL: Duration = Duration::from_secs(1);

/// Asks for the release of due conversations until `stop` is cancelled;
/// does nothing with `after` zero (auto-release off).
pub async fn watch(store: Store, after: Duration, stop: CancellationToken) {
    if after.is_zero() {
        return;
    }
    let mut ticks = tokio::time::interval(AUTO_RELEASE_POLL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = ticks.tick() => {}
        }
        // Asked of a reader first: an idle server commits nothing.
        let released = match store.offline_holders_due(after).await {
            Ok(false) => Ok(()),
            Ok(true) => store.release_offline_holders(after).await,
            Err(error) => Err(error),
        };
        if let Err(error) = released {
            tracing::warn!(%error, "cannot release offline agents' conversations; will retry");
        }
    }
}
