//! `send`: a message into a conversation.

use switchboard_protocol::{Body, Key, Name, Priority, Role};

use super::{Caller, Reply, named_user};
use crate::error::RequestError;
use crate::identity::Identity;
use crate::services::Services;
use crate::store::SendRequest;

#[derive(Debug)]
pub struct SendMessage {
    user: Name,
    body: Body,
    priority: Priority,
    key: Option<Key>,
    note: bool,
}

impl SendMessage {
    /// Whether the sender may write this kind of message: only agents
    /// write notes (protocol version 2).
    pub fn may_write(identity: &Identity, note: bool) -> Result<(), RequestError> {
        if note && identity.role == Role::User {
            return Err(RequestError::Forbidden(
                "only agents write notes: send without \"note\" to write to the agents",
            ));
        }
        Ok(())
    }

    /// A user writes into their own conversation (`to` is ignored); an agent
    /// must name the user. The server, not the client, sets the priority.
    /// Only agents write notes (protocol version 2).
    pub fn parse(
        identity: &Identity,
        to: Option<String>,
        body: &str,
        key: Option<Key>,
        note: bool,
        services: &Services,
    ) -> Result<Self, RequestError> {
        Self::may_write(identity, note)?;
        let user = match identity.role {
            Role::User => identity.name.clone(),
            Role::Agent => {
                let to = to.ok_or(RequestError::UserRequired(
                    "an agent's send needs \"to\": the user to answer",
                ))?;
                named_user(&to)?
            }
        };
        let body = Body::parse(body, services.config.max_body_chars)?;
        let priority = match identity.role {
            Role::User => services.rules.classify(body.as_str()),
            Role::Agent => Priority::Normal,
        };
        Ok(Self {
            user,
            body,
            priority,
            key,
            note,
        })
    }

    pub async fn apply(self, caller: Caller<'_>) -> Result<Reply, RequestError> {
        let request = SendRequest {
            origin: caller.origin(),
            from: caller.identity.clone(),
            user: self.user,
            body: self.body,
            priority: self.priority,
            key: self.key,
            note: self.note,
        };
        caller.services.store.send(request).await?;
        Ok(Reply::Later)
    }
}
