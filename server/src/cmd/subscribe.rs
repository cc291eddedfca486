//! `subscribe`: backlog (or everything after `since`), state, `subscribed`,
//! then live events.

use switchboard_protocol::Role;

use super::{Caller, Reply};
use crate::error::RequestError;
use crate::services::Services;

/// A user's backlog: their latest messages.
const USER_BACKLOG_DEFAULT: u32 = 100;
const USER_BACKLOG_MAX: u32 = 1_000;
/// An agent's backlog: the waiting queue.
const AGENT_BACKLOG_DEFAULT: u32 = 1_000;
const AGENT_BACKLOG_MAX: u32 = 1_000;

#[derive(Debug)]
pub struct Subscribe {
    since: Option<u64>,
    limit: u32,
}

impl Subscribe {
    /// A `limit` above the maximum is clamped, not refused.
    pub fn parse(role: Role, since: Option<u64>, limit: Option<u32>) -> Self {
        let (default, max) = match role {
            Role::User => (USER_BACKLOG_DEFAULT, USER_BACKLOG_MAX),
            Role::Agent => (AGENT_BACKLOG_DEFAULT, AGENT_BACKLOG_MAX),
        };
        Self {
            since,
            limit: limit.unwrap_or(default).min(max),
        }
    }

    /// Reads the backlog on a reader and hands it to the router, which
    /// writes it and then the live events of later commits. The caller has
    /// its earlier writes answered first, so they are in the backlog.
    pub async fn apply(self, caller: Caller<'_>) -> Result<Reply, RequestError> {
        let Services { router, store, .. } = caller.services;
        if !router.subscribing(caller.conn).await {
            return Err(RequestError::Internal);
        }
        let backlog = store
            .backlog(caller.identity.clone(), self.since, self.limit)
            .await
            .inspect_err(|error| tracing::error!(%error, "reading a backlog failed"))
            .ok();
        router
            .subscribed(
                caller.origin(),
                caller.identity.clone(),
                self.since,
                backlog,
            )
            .await;
        Ok(Reply::Later)
    }
}
