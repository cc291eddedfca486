//! `release`: the agent holding a conversation lets it go.

use switchboard_protocol::{Name, Role};

use super::{Caller, Reply, named_user};
use crate::error::RequestError;
use crate::identity::Identity;

#[derive(Debug)]
pub struct Release {
    user: Name,
}

impl Release {
    pub fn parse(identity: &Identity, user: &str) -> Result<Self, RequestError> {
        if identity.role == Role::User {
            return Err(RequestError::Forbidden(
                "only the agent holding a conversation can release it",
            ));
        }
        let user = named_user(user)?;
        Ok(Self { user })
    }

    pub async fn apply(self, caller: Caller<'_>) -> Result<Reply, RequestError> {
        caller
            .services
            .store
            .release(caller.origin(), caller.identity.clone(), self.user)
            .await?;
        Ok(Reply::Later)
    }
}
