//! Long replies in flight: a server-wide budget of bytes, and a cap a user.
//!
//! A long reply (a `history` page, a user's backlog) is streamed from storage
//! a chunk at a time ([`crate::store::REPLY_CHUNK`]), so each holds one chunk
//! while its client reads. The budget bounds how many do at once: a reply
//! takes one chunk's worth when it starts and keeps it until its last byte
//! is written, so a reply in progress never waits and no reading client is
//! harmed. Past the budget a new long `history` waits [`BUDGET_WAIT`], then
//! is refused (`rate_limited`, the connection stays). A small reply (one
//! chunk) takes nothing and never waits.
//!
//! The cap a user ([`crate::Config::replies_per_user`]) keeps one customer
//! from taking the whole budget with many connections. Agents, provisioned
//! and trusted, count against the budget only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use switchboard_protocol::{Name, Role};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::timeout;

use crate::error::RequestError;
use crate::identity::Identity;
use crate::store::REPLY_CHUNK;

/// How long a new long reply waits for the budget before it is refused:
/// long enough to ride out a burst of pages, short enough that the client
/// hears why rather than wondering.
pub const BUDGET_WAIT: Duration = Duration::from_secs(2);
/// The budget is counted in KiB (a semaphore's permits).
const KIB: usize = 1024;
/// What one long reply takes from the budget: one chunk of bodies.
const CHUNK_KIB: usize = REPLY_CHUNK.body_bytes.div_ceil(KIB);

/// Long replies in flight; one for the server, in [`crate::services::Services`].
#[derive(Debug)]
pub struct ReplyBudget {
    /// KiB of replies in flight; `None`: no budget.
    kib: Option<Arc<Semaphore>>,
    /// Long replies a user may have in flight; 0: no limit.
    per_user: usize,
    users: Arc<Mutex<HashMap<Name, usize>>>,
    /// How long a new long reply waits for room: [`BUDGET_WAIT`].
    wait: Duration,
}

/// A long reply's share, given back when dropped (its last byte written).
#[derive(Debug)]
pub struct ReplyPermit {
    _kib: Option<OwnedSemaphorePermit>,
    _user: Option<UserSlot>,
}

/// One of a user's long replies in flight.
#[derive(Debug)]
struct UserSlot {
    users: Arc<Mutex<HashMap<Name, usize>>>,
    name: Name,
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = users.get_mut(&self.name) {
            *count -= 1;
            if *count == 0 {
                users.remove(&self.name);
            }
        }
    }
}

impl ReplyBudget {
    /// A budget of `bytes` (0: none; else at least one reply's worth) and
    /// `per_user` long replies a user (0: no limit).
    pub fn new(bytes: usize, per_user: usize) -> Self {
        let kib = (bytes > 0).then(|| Arc::new(Semaphore::new((bytes / KIB).max(CHUNK_KIB))));
        Self {
            kib,
            per_user,
            users: Arc::default(),
            wait: BUDGET_WAIT,
        }
    }

    /// The same budget with a shorter wait, for tests.
    #[cfg(test)]
    fn waiting(self, wait: Duration) -> Self {
        Self { wait, ..self }
    }

    /// A share for a new long reply of `identity`'s: at once if the budget
    /// has room, else after up to [`BUDGET_WAIT`], else refused.
    pub async fn take(&self, identity: &Identity) -> Result<ReplyPermit, RequestError> {
        // The user's own cap first: a user at it does not queue for the budget.
        let user = match identity.role {
            Role::User if self.per_user > 0 => Some(self.take_user_slot(&identity.name)?),
            _ => None,
        };
        let kib = match &self.kib {
            None => None,
            Some(kib) => {
                let waited = timeout(self.wait, Arc::clone(kib).acquire_many_owned(chunk_kib()));
                match waited.await {
                    Ok(Ok(permit)) => Some(permit),
                    // Timed out, or (never: it is not closed) closed.
                    _ => return Err(RequestError::RepliesBusy),
                }
            }
        };
        Ok(ReplyPermit {
            _kib: kib,
            _user: user,
        })
    }

    /// A share for a reply that must go on whatever the budget says (the
    /// rest of a backlog already promised): taken if there is room, so that
    /// new `history` pages feel it; `None` if not, and the reply goes on.
    pub fn try_take(&self) -> Option<ReplyPermit> {
        let kib = Arc::clone(self.kib.as_ref()?)
            .try_acquire_many_owned(chunk_kib())
            .ok()?;
        Some(ReplyPermit {
            _kib: Some(kib),
            _user: None,
        })
    }

    fn take_user_slot(&self, name: &Name) -> Result<UserSlot, RequestError> {
        let mut users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        let count = users.entry(name.clone()).or_insert(0);
        if *count >= self.per_user {
            return Err(RequestError::UserRepliesBusy);
        }
        *count += 1;
        Ok(UserSlot {
            users: Arc::clone(&self.users),
            name: name.clone(),
        })
    }
}

/// [`CHUNK_KIB`] as a semaphore counts.
fn chunk_kib() -> u32 {
    u32::try_from(CHUNK_KIB).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> Identity {
        Identity {
            role: Role::User,
            name: Name::parse(name).expect("valid"),
            credential: crate::identity::Credential::new(b"t"),
        }
    }

    fn agent(name: &str) -> Identity {
        Identity {
            role: Role::Agent,
            ..user(name)
        }
    }

    const SHORT: Duration = Duration::from_millis(50);

    #[tokio::test]
    async fn past_the_budget_a_new_reply_waits_then_is_refused() {
        let budget = ReplyBudget::new(2 * REPLY_CHUNK.body_bytes, 0).waiting(SHORT);
        let first = budget.take(&user("ana")).await.expect("room");
        let _second = budget.take(&user("bo")).await.expect("room");
        let refused = budget.take(&user("cy")).await;
        assert!(matches!(refused, Err(RequestError::RepliesBusy)));
        assert!(budget.try_take().is_none());
        drop(first);
        assert!(budget.take(&agent("alice")).await.is_ok(), "room again");
    }

    #[tokio::test]
    async fn a_waiting_reply_gets_the_share_given_back_meanwhile() {
        let budget = Arc::new(ReplyBudget::new(REPLY_CHUNK.body_bytes, 0).waiting(10 * SHORT));
        let first = budget.take(&user("ana")).await.expect("room");
        let waiting = tokio::spawn({
            let budget = Arc::clone(&budget);
            async move { budget.take(&user("bo")).await.is_ok() }
        });
        tokio::time::sleep(SHORT).await;
        drop(first);
        assert!(waiting.await.expect("runs"));
    }

    #[tokio::test]
    async fn a_user_has_at_most_its_cap_in_flight_agents_are_not_capped() {
        let budget = ReplyBudget::new(0, 2);
        let one = budget.take(&user("ana")).await.expect("1");
        let _two = budget.take(&user("ana")).await.expect("2");
        assert!(matches!(
            budget.take(&user("ana")).await,
            Err(RequestError::UserRepliesBusy)
        ));
        assert!(budget.take(&user("bo")).await.is_ok(), "others are not");
        for _ in 0..5 {
            std::mem::forget(budget.take(&agent("alice")).await.expect("agents"));
        }
        drop(one);
        assert!(budget.take(&user("ana")).await.is_ok(), "one given back");
    }

    #[test]
    fn no_budget_takes_nothing() {
        assert!(ReplyBudget::new(0, 0).try_take().is_none());
    }
}
