//! `hello`: sign in, or register a new user name.

use std::net::IpAddr;

use switchboard_protocol::{Name, Role, Token};

use crate::error::RequestError;
use crate::identity::Identity;
use crate::services::Services;
use crate::store::Registration;
use crate::token;

#[derive(Debug)]
pub struct Hello {
    role: Role,
    name: Name,
    token: Option<Token>,
}

/// A signed-in identity, and the token to show if the name was just registered.
#[derive(Debug)]
pub struct SignedIn {
    pub identity: Identity,
    pub new_token: Option<Token>,
    /// The hash of the token used, so the connection can be closed if that
    /// token is revoked.
    pub credential: Vec<u8>,
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
        let identity = Identity {
            role: self.role,
            name: self.name.clone(),
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
                    identity,
                    credential: token::hash(&token),
                    new_token: Some(token),
                }),
                Registration::Taken => Err(RequestError::Unauthorized(
                    "this name is taken: sign in with its token",
                )),
            },
            (Role::Agent, None) => Err(RequestError::Unauthorized(
                "agents sign in with the token from `switchboard agent add`",
            )),
            (role, Some(token)) => {
                let credential = token::hash(&token);
                if services.store.authenticate(role, self.name, token).await? {
                    Ok(SignedIn {
                        identity,
                        new_token: None,
                        credential,
                    })
                } else {
                    Err(RequestError::Unauthorized(WRONG_CREDENTIALS))
                }
            }
        }
    }
}
