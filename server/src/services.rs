//! What every session shares: storage, fan-out, limits and rules.

use std::sync::Arc;

use crate::config::Config;
use crate::error::RequestError;
use crate::fanout::Router;
use crate::inflow::InflowLimits;
use crate::lease::OwnRecords;
use crate::metrics::counts::SessionCounts;
use crate::priority::PriorityRules;
use crate::reply_budget::ReplyBudget;
use crate::signups::SignupLimiter;
use crate::store::Store;

pub struct Services {
    pub store: Store,
    pub router: Router,
    pub config: Config,
    pub rules: PriorityRules,
    /// New user names per client address.
    pub signups: SignupLimiter,
    /// What users send, by user and by address.
    pub inflow: InflowLimits,
    /// Long replies in flight, server-wide and per user.
    pub replies: ReplyBudget,
    /// Connections open and refusals, for the metrics endpoint.
    pub counts: Arc<SessionCounts>,
    /// In a cluster, the connections whose sessions hold a record
    /// (`session/member.rs`, `lease.rs`).
    pub records: Arc<OwnRecords>,
}

impl Services {
    pub fn new(store: Store, router: Router, config: Config, rules: PriorityRules) -> Self {
        Self {
            store,
            router,
            signups: SignupLimiter::new(config.signups_per_minute, config.signups_per_minute_total),
            inflow: InflowLimits::new(config.per_user, config.per_address),
            replies: ReplyBudget::new(config.reply_budget_bytes, config.replies_per_user),
            counts: Arc::default(),
            records: Arc::default(),
            config,
            rules,
        }
    }
}

/// How long the cluster's barrier waits for this node to catch up: far
/// longer than a batch takes to arrive by the slowest path (a 25 ms poll),
/// short enough that a node cut off from the feed answers rather than
/// hangs.
const CATCH_UP_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl Services {
    /// The cluster's barrier: waits until this node's router has applied
    /// every commit the database holds now, whichever node made it, so that
    /// what follows (a `pong`, a `welcome`'s count) comes after their
    /// events (docs/protocol.md, points 16 and 36). Nothing to wait for on
    /// one node, whose router hears every commit before anyone is answered.
    pub async fn catch_up(&self) -> Result<(), RequestError> {
        if !self.router.in_cluster() {
            return Ok(());
        }
        let newest = self.store.position().await.map_err(|error| {
            tracing::error!(%error, "reading the cluster's position failed");
            RequestError::Internal
        })?;
        match tokio::time::timeout(CATCH_UP_WAIT, self.router.applied(newest)).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(RequestError::Internal),
            Err(_) => {
                tracing::warn!(
                    position = newest.0,
                    "this node did not catch up with the cluster's feed in time; answering internal"
                );
                Err(RequestError::Internal)
            }
        }
    }
}

pub type SharedServices = Arc<Services>;
