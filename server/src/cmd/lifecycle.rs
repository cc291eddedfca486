//! `claim`, `release`, `resolve`, `transfer` (protocol version 2,
//! "Conversation state"): an agent changes who holds a conversation, or
//! closes it, without writing to it. Decided in the writer's commit
//! (`store::rules::lifecycle`), answered through the router after it.

use switchboard_protocol::{Name, Role};

use super::{Caller, Reply, named_user};
use crate::error::RequestError;
use crate::identity::Identity;
use crate::store::Lifecycle;

#[derive(Debug)]
pub struct ChangeConversation {
    user: Name,
    action: Lifecycle,
}

impl ChangeConversation {
    /// Anything but a transfer ([`ChangeConversation::transfer`]).
    pub fn parse(identity: &Identity, user: &str, action: Lifecycle) -> Result<Self, RequestError> {
        if identity.role == Role::User {
            return Err(RequestError::Forbidden(
                "only agents claim, release, resolve or transfer conversations",
            ));
        }
        let user = named_user(user)?;
        Ok(Self { user, action })
    }

    /// A `transfer` to `to`: the caller and the user checked first, as
    /// the protocol orders the checks; a name no agent could have is
    /// `unknown_agent`, like a name no agent has (decided in the commit).
    pub fn transfer(identity: &Identity, user: &str, to: &str) -> Result<Self, RequestError> {
        let placeholder = Self::parse(identity, user, Lifecycle::Claim)?;
        let to = Name::parse(to).map_err(|_| RequestError::unknown_agent(to))?;
        Ok(Self {
            action: Lifecycle::Transfer { to },
            ..placeholder
        })
    }

    pub async fn apply(self, caller: Caller<'_>) -> Result<Reply, RequestError> {
        caller
            .services
            .store
            .lifecycle(
                caller.origin(),
                caller.identity.clone(),
                self.user,
                self.action,
            )
            .await?;
        Ok(Reply::Later)
    }
}
