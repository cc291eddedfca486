//! `hello`: sign in, or register a new user name.

use std::net::IpAddr;

use switchboard_protocol::{Name, Role, Token};

use crate::error::RequestError;
use crate::identity::{Credential, Identity};
use crate::services::Services;
use crate::store::Registration;
use crate::token;

#[derive(Debug)]
pub struct Hello {
    role: Role,
    name: Name,
    token: Option<Token>,
}

/// A signed-in identity (with the hash of the token used, so the connection
/// can be closed, and its writes refused, once that token is revoked), and
/// the token to show if the name was just registered.
#[derive(Debug)]
pub struct SignedIn {
    pub identity: Identity,
    pub new_token: Option<Token>,
    /// An agent who may release, resolve and transfer any conversation, as
    /// `welcome` says.
    pub supervisor: bool,
}

const WRONG_CREDENTIALS: &str = "wrong name or token";

impl Hello {
    pub fn parse(role: Role, name: &str, token: Option<Token>) -> Result<Self, RequestError> {
        Ok(Self {
            role,
            name: Name::parse(name)?,
            token,
        })
    }

    /// `peer`: the client's address, whose new names are limited (`None`: an
    /// in-memory session, not limited).
    pub async fn apply(
        self,
        services: &Services,
        peer: Option<IpAddr>,
    ) -> Result<SignedIn, RequestError> {
        let (role, name) = (self.role, self.name.clone());
        let identity = |token: &Token| Identity {
            role,
            name: name.clone(),
            credential: Credential::new(&token::hash(token)),
        };
        // A new name, from an address: counted (a refusal costs nothing).
        if self.role == Role::User
            && self.token.is_none()
            && let Some(peer) = peer
        {
            services.signups.try_take(peer)?;
        }
        match (self.role, self.token) {
            (Role::User, None) => match services.store.register_user(self.name).await? {
                Registration::Created { token } => Ok(SignedIn {
                    identity: identity(&token),
                    new_token: Some(token),
                    supervisor: false,
                }),
                // Names are unique ignoring case, and agents' names are
                // reserved; one message for all, spelled as the name is.
                Registration::Taken => Err(RequestError::Unauthorized(
                    "this name is taken (names are unique whatever their case, and agents' \
                     names are reserved): sign in with its token, or choose another",
                )),
            },
            (Role::Agent, None) => Err(RequestError::Unauthorized(
                "agents sign in with the token from `switchboard agent add`",
            )),
            (role, Some(token)) => {
                let identity = identity(&token);
                match services.store.authenticate(role, self.name, token).await? {
                    Some(standing) => Ok(SignedIn {
                        identity,
                        new_token: None,
                        supervisor: standing.supervisor,
                    }),
                    None => Err(RequestError::Unauthorized(WRONG_CREDENTIALS)),
                }
            }
        }
    }
}
