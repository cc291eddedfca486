//! `history`: a page of one conversation, oldest first. It is answered as
//! a plan, the ids of the page's messages: the session reads the messages a
//! chunk at a time as it writes them (`session::replying`), so a page of a
//! thousand long messages is never held whole.

use switchboard_protocol::{Name, RequestId, Role};

use super::{Caller, Reply, named_user};
use crate::error::RequestError;
use crate::identity::Identity;
use crate::store::Notes;

const LIMIT_DEFAULT: u32 = 50;
const LIMIT_MAX: u32 = 1_000;

/// A `history` reply to write: its messages' ids, oldest first.
#[derive(Debug)]
pub struct Page {
    pub id: Option<RequestId>,
    pub user: Name,
    pub ids: Vec<u64>,
}

#[derive(Debug)]
pub struct History {
    user: Name,
    before: Option<u64>,
    limit: u32,
}

impl History {
    /// Users read only their own conversation; agents must say whose.
    pub fn parse(
        identity: &Identity,
        user: Option<String>,
        before: Option<u64>,
        limit: Option<u32>,
    ) -> Result<Self, RequestError> {
        let user = match (identity.role, user) {
            (Role::User, None) => identity.name.clone(),
            (Role::User, Some(user)) if user == identity.name.as_str() => identity.name.clone(),
            (Role::User, Some(_)) => {
                return Err(RequestError::Forbidden(
                    "users can only read their own conversation",
                ));
            }
            (Role::Agent, None) => {
                return Err(RequestError::UserRequired(
                    "an agent's history needs \"user\": whose conversation",
                ));
            }
            (Role::Agent, Some(user)) => named_user(&user)?,
        };
        Ok(Self {
            user,
            before,
            limit: limit.unwrap_or(LIMIT_DEFAULT).min(LIMIT_MAX),
        })
    }

    pub async fn apply(self, caller: Caller<'_>) -> Result<Reply, RequestError> {
        let ids = caller
            .services
            .store
            .history(
                self.user.clone(),
                self.before,
                self.limit,
                Notes::seen_by(caller.identity.role),
            )
            .await?
            .ok_or_else(|| RequestError::unknown_user(self.user.as_str()))?;
        Ok(Reply::Page(Page {
            id: caller.request,
            user: self.user,
            ids,
        }))
    }
}
