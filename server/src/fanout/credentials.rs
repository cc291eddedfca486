//! Token revocation: the rule by which the registry closes the connections
//! of agents whose token was rotated or removed.
//!
//! The watcher that reads every agent's token once a period
//! (`crate::credentials`, wired by the node: it reads storage and tells the
//! router, so it belongs to neither) hands the whole picture here. The
//! registry closes the connections that signed in with another token, and
//! leaves alone any that already use the new one. A revoked agent hears why
//! (`unauthorized`, as its last frame) even when its outbox is full.

use std::collections::HashMap;
use std::time::Instant;

use switchboard_protocol::{Name, Role};

use super::deliver::encode;
use super::registry::{Peer, Registry};
use crate::error::RequestError;
use crate::event::ConnId;

/// Agent name → the hash of its current token (`None`: removed).
pub type AgentTokens = HashMap<Name, Option<Vec<u8>>>;

impl Registry {
    /// Records every agent's current token and closes the agent
    /// connections that signed in with another one.
    pub fn credentials(&mut self, tokens: AgentTokens, read_at: Instant) {
        self.agent_tokens = Some((tokens, read_at));
        let stale: Vec<ConnId> = self
            .peers
            .iter()
            .filter(|(_, peer)| self.is_stale(peer))
            .map(|(conn, _)| *conn)
            .collect();
        for conn in stale {
            self.dismiss(conn);
        }
        self.settle();
    }

    /// An agent connection whose token is no longer the agent's.
    fn is_stale(&self, peer: &Peer) -> bool {
        let Some((tokens, read_at)) = &self.agent_tokens else {
            return false; // not read yet
        };
        // Signed in after the snapshot was read: its check may be newer.
        peer.registered <= *read_at
            && peer.identity.role == Role::Agent
            && tokens
                .get(&peer.identity.name)
                .is_some_and(|current| current.as_deref() != Some(peer.credential.as_slice()))
    }

    /// Tells a connection why, as its last frame, and forgets it.
    fn dismiss(&mut self, conn: ConnId) {
        let Some(peer) = self.peers.get(&conn) else {
            return;
        };
        tracing::info!(conn, agent = %peer.identity.name, "token rotated or removed: closing the connection");
        let last = encode(&RequestError::Revoked.to_frame(None));
        peer.outbox.say_last(last);
        self.remove(conn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::fanout::outbox::outbox;
    use crate::fanout::test_support::*;
    use crate::identity::{Credential, Identity};
    use switchboard_protocol::ServerFrame;

    /// A sign-in can race a rotation (verified with the old token, registered
    /// after the change was seen): the next snapshot still closes it. A
    /// sign-in with the new token registering before any snapshot shows it
    /// is left alone: the database it was checked against is newer.
    #[test]
    fn token_snapshots_close_stale_connections_whenever_they_registered() {
        let mut registry = Registry::default();
        let alice = Identity {
            role: Role::Agent,
            name: name("alice"),
            credential: Credential::new(b"t"),
        };
        registry.credentials(
            HashMap::from([(name("alice"), Some(b"old".to_vec()))]),
            Instant::now(),
        );
        // Rotated to "new" in the database; the snapshot still says "old".
        let (tx, _fresh) = outbox(16, usize::MAX);
        registry.connect(1, alice.clone(), b"new".to_vec(), tx);
        assert!(
            registry.peers.contains_key(&1),
            "not judged by an old snapshot"
        );
        let (tx, mut late) = outbox(16, usize::MAX);
        registry.connect(2, alice, b"old".to_vec(), tx);
        registry.credentials(
            HashMap::from([(name("alice"), Some(b"new".to_vec()))]),
            Instant::now(),
        );
        assert!(registry.peers.contains_key(&1), "the new token is fine");
        assert!(
            !registry.peers.contains_key(&2),
            "the late old-token sign-in is closed"
        );
        let last = late.try_recv().expect("told why");
        assert!(last.last);
        assert!(String::from_utf8_lossy(&last.to_bytes()).contains("unauthorized"));
        // The watcher read the tokens, a sign-in registered, then the (older)
        // snapshot arrived: it does not judge that sign-in.
        let read_before = Instant::now() - std::time::Duration::from_millis(1);
        let (tx, _newer) = outbox(16, usize::MAX);
        let alice = Identity {
            role: Role::Agent,
            name: name("alice"),
            credential: Credential::new(b"t"),
        };
        registry.connect(3, alice, b"newer".to_vec(), tx);
        registry.credentials(
            HashMap::from([(name("alice"), Some(b"new".to_vec()))]),
            read_before,
        );
        assert!(
            registry.peers.contains_key(&3),
            "judged by the next snapshot, not an older one"
        );
        registry.credentials(HashMap::from([(name("alice"), None)]), Instant::now());
        assert!(
            !registry.peers.contains_key(&1),
            "removed agents are closed"
        );
    }

    /// A revoked agent is told why even when its outbox is full: not
    /// `slow_consumer`, which its session would otherwise assume.
    #[tokio::test]
    async fn a_revoked_agent_with_a_full_outbox_still_hears_why() {
        let mut registry = Registry::default();
        // Room for ana's presence and two messages: full, not yet cut off.
        let mut alice = join(&mut registry, 1, Role::Agent, "alice", 3);
        let _ana = join(&mut registry, 2, Role::User, "ana", 64);
        for id in 1..=2 {
            registry.committed(commit(Event::Sent {
                origin: origin(2, None),
                message: message(id, "ana", None),
                taken_by: None,
            }));
        }
        assert!(registry.peers.contains_key(&1), "full, not cut off");
        registry.credentials(HashMap::from([(name("alice"), None)]), Instant::now());
        assert!(!registry.peers.contains_key(&1));
        let mut kinds = Vec::new();
        while let Some(out) = alice.rx.recv().await {
            let frame: ServerFrame = serde_json::from_slice(&out.to_bytes()).expect("a frame");
            let kind = match frame {
                ServerFrame::Error { code, .. } => code.as_str(),
                frame => types(&[frame])[0],
            };
            kinds.push((kind, out.last));
        }
        assert_eq!(
            kinds,
            [
                ("presence", false),
                ("message", false),
                ("message", false),
                ("unauthorized", true)
            ]
        );
    }
}
