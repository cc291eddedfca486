//! Who runs the client: a customer or an agent. Its own module because the
//! model (`app`), the screen split (`layout`), the keys (`keymap`) and the
//! panes (`ui`) all branch on it, and none of them should import another
//! just for this.

use switchboard_protocol::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    User,
    Agent,
}

impl Mode {
    pub fn role(self) -> Role {
        match self {
            Mode::User => Role::User,
            Mode::Agent => Role::Agent,
        }
    }
}
