//! Frames: one JSON object per line, tagged by `"type"`.
//!
//! One variant per request ([`ClientFrame`]) and per reply or event
//! ([`ServerFrame`]). Optional fields are left out when empty, except the
//! `id` of an `error`, which the protocol shows as `null`.

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::message::{Key, Message, Name, RequestId, Role, Token};

/// A request from a client. Read by hand (`request.rs`), not derived, so
/// that an ignored field of any depth is skipped rather than buffered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Sign in; a user's first `hello` (no token) registers the name.
    Hello {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        role: Role,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<Token>,
    },
    /// Become a live subscription: backlog (or everything after `since`),
    /// then `subscribed`, then live events.
    Subscribe {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    /// Send a message: users into their own conversation, agents `to` a user.
    Send {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
        body: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<Key>,
        /// An agent's private note for colleagues (version 2): never
        /// delivered to the user. On the wire only when true.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        note: bool,
    },
    /// The holder (version 2: or a supervisor) puts a conversation back in
    /// the queue; its waiting messages stay waiting.
    Release {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        user: String,
    },
    /// Version 2: an agent takes an unheld conversation without writing.
    Claim {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        user: String,
    },
    /// Version 2: the conversation is done: no holder, nothing waiting.
    Resolve {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        user: String,
    },
    /// Version 2: the holder hands the conversation to agent `to`.
    Transfer {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        user: String,
        to: String,
    },
    /// A page of one conversation, older than `before`.
    History {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    Ping {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// End the session: the server sends what it owes, then closes.
    Bye {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
}

impl ClientFrame {
    /// The request's `id`, echoed by its reply.
    pub fn id(&self) -> Option<&RequestId> {
        match self {
            ClientFrame::Hello { id, .. }
            | ClientFrame::Subscribe { id, .. }
            | ClientFrame::Send { id, .. }
            | ClientFrame::Release { id, .. }
            | ClientFrame::Claim { id, .. }
            | ClientFrame::Resolve { id, .. }
            | ClientFrame::Transfer { id, .. }
            | ClientFrame::History { id, .. }
            | ClientFrame::Ping { id }
            | ClientFrame::Bye { id } => id.as_ref(),
        }
    }
}

/// Why the server let go of a conversation that nobody released
/// (version 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseReason {
    /// Its holder had no subscribed connection for `--release-after`.
    AgentOffline,
}

/// A reply or an event from the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// The server speaks first.
    Greeting {
        server: String,
        version: String,
        protocol: u32,
    },
    Welcome {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        role: Role,
        name: Name,
        /// Only on a user's first `hello`: shown once, kept by the client.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<Token>,
        /// Users only: how many agents are online.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agents_online: Option<u32>,
        /// Agents only (protocol version 2): whether it may release,
        /// resolve and transfer any conversation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        supervisor: Option<bool>,
    },
    Subscribed {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        /// How many `message` frames the backlog held.
        backlog: u32,
        /// A `since` resume had more than fit; the oldest were left out.
        #[serde(default)]
        truncated: bool,
    },
    Sent {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        message: Message,
    },
    /// The reply to `release` (with `id`) and the event others get (without).
    Released {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        user: Name,
        /// Who held it.
        agent: Name,
        /// Who released it, when not the holder (a supervisor).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<Name>,
        /// Why the server released it on its own (version 2), when nobody
        /// asked.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<ReleaseReason>,
    },
    /// Version 2: the reply to `resolve` (with `id`) and the event others
    /// get (without).
    Resolved {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        user: Name,
        /// Who resolved it.
        agent: Name,
    },
    History {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        user: Name,
        messages: Vec<Message>,
    },
    Pong {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    Error {
        /// The failed request's `id`, or `null`.
        #[serde(default)]
        id: Option<RequestId>,
        code: ErrorCode,
        /// For people; clients act on `code`.
        message: String,
    },
    /// A message someone else sent that this connection may see.
    Message { message: Message },
    /// Who holds a conversation now: an answer took it (no `id`), or the
    /// reply to `claim` and `transfer` (with `id`) and the event others get.
    Assigned {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        user: Name,
        /// The holder now.
        agent: Name,
        /// Who acted, when not the new holder (a transfer's giver).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<Name>,
    },
    Presence {
        role: Role,
        name: Name,
        online: bool,
    },
    /// How many agents are online, sent to users when it changes.
    Agents { online: u32 },
    /// The server is closing this connection (shutdown).
    Bye {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

impl ServerFrame {
    pub fn error(id: Option<RequestId>, code: ErrorCode, message: impl Into<String>) -> Self {
        ServerFrame::Error {
            id,
            code,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Body, Priority};
    use crate::timestamp::Timestamp;

    fn name(text: &str) -> Name {
        Name::parse(text).expect("valid name")
    }

    /// Exact JSON for every frame shape the protocol document shows.
    /// A frame logged whole (`{:?}`) must not carry a secret.
    #[test]
    fn tokens_never_show_in_debug_output() {
        let hello: ClientFrame = serde_json::from_str(
            r#"{"type":"hello","role":"agent","name":"alice","token":"s3cret"}"#,
        )
        .expect("parses");
        let shown = format!("{hello:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        let Some(token) = (match hello {
            ClientFrame::Hello { token, .. } => token,
            _ => None,
        }) else {
            panic!("a token")
        };
        assert_eq!(token.expose(), "s3cret", "the wire still carries it");
    }

    #[test]
    fn client_frames_read_the_documented_json() {
        let cases: Vec<(&str, ClientFrame)> = vec![
            (
                r#"{"type":"hello","role":"user","name":"ana"}"#,
                ClientFrame::Hello {
                    id: None,
                    role: Role::User,
                    name: "ana".into(),
                    token: None,
                },
            ),
            (
                r#"{"type":"hello","role":"agent","name":"alice","token":"s3cret"}"#,
                ClientFrame::Hello {
                    id: None,
                    role: Role::Agent,
                    name: "alice".into(),
                    token: Some(Token::new("s3cret")),
                },
            ),
            (
                r#"{"type":"send","id":"r1","body":"My card was charged twice"}"#,
                ClientFrame::Send {
                    id: Some(RequestId::Str("r1".into())),
                    to: None,
                    body: "My card was charged twice".into(),
                    key: None,
                    note: false,
                },
            ),
            (
                r#"{"type":"send","id":"r2","to":"ana","body":"Looking into it","key":"k1"}"#,
                ClientFrame::Send {
                    id: Some(RequestId::Str("r2".into())),
                    to: Some("ana".into()),
                    body: "Looking into it".into(),
                    key: Key::new("k1"),
                    note: false,
                },
            ),
            (
                r#"{"type":"release","id":"r3","user":"ana"}"#,
                ClientFrame::Release {
                    id: Some(RequestId::Str("r3".into())),
                    user: "ana".into(),
                },
            ),
            (
                r#"{"type":"history","id":"r4","user":"ana","before":42,"limit":50}"#,
                ClientFrame::History {
                    id: Some(RequestId::Str("r4".into())),
                    user: Some("ana".into()),
                    before: Some(42),
                    limit: Some(50),
                },
            ),
            (
                r#"{"type":"subscribe","since":41}"#,
                ClientFrame::Subscribe {
                    id: None,
                    since: Some(41),
                    limit: None,
                },
            ),
            (
                r#"{"type":"ping","id":1}"#,
                ClientFrame::Ping {
                    id: Some(RequestId::Int(1)),
                },
            ),
            (r#"{"type":"bye"}"#, ClientFrame::Bye { id: None }),
        ];
        for (json, frame) in cases {
            let parsed: ClientFrame = serde_json::from_str(json).expect(json);
            assert_eq!(parsed, frame, "{json}");
            assert_eq!(serde_json::to_string(&frame).expect("serialises"), json);
        }
    }

    #[test]
    fn unknown_fields_are_ignored_and_null_id_is_no_id() {
        let parsed: ClientFrame =
            serde_json::from_str(r#"{"type":"ping","id":null,"extra":[1,2]}"#).expect("parses");
        assert_eq!(parsed, ClientFrame::Ping { id: None });
    }

    #[test]
    fn server_frames_write_the_documented_json() {
        let message = Message {
            id: 42,
            ts: Timestamp::parse("2026-11-24T11:16:27.123456Z").expect("valid"),
            user: name("ana"),
            from: Role::User,
            agent: None,
            body: Body::parse("hi", 10).expect("valid"),
            priority: Priority::Normal,
            note: false,
        };
        let cases: Vec<(ServerFrame, &str)> = vec![
            (
                ServerFrame::Greeting {
                    server: "switchboard".into(),
                    version: "0.1.0".into(),
                    protocol: 2,
                },
                r#"{"type":"greeting","server":"switchboard","version":"0.1.0","protocol":2}"#,
            ),
            (
                ServerFrame::Welcome {
                    id: None,
                    role: Role::User,
                    name: name("ana"),
                    token: Some(Token::new("t0k")),
                    agents_online: Some(2),
                    supervisor: None,
                },
                r#"{"type":"welcome","role":"user","name":"ana","token":"t0k","agents_online":2}"#,
            ),
            (
                ServerFrame::Welcome {
                    id: Some(RequestId::Int(1)),
                    role: Role::Agent,
                    name: name("sam"),
                    token: None,
                    agents_online: None,
                    supervisor: Some(true),
                },
                r#"{"type":"welcome","id":1,"role":"agent","name":"sam","supervisor":true}"#,
            ),
            (
                ServerFrame::Subscribed {
                    id: Some(RequestId::Int(3)),
                    backlog: 2,
                    truncated: false,
                },
                r#"{"type":"subscribed","id":3,"backlog":2,"truncated":false}"#,
            ),
            (
                ServerFrame::Message {
                    message: message.clone(),
                },
                r#"{"type":"message","message":{"id":42,"ts":"2026-11-24T11:16:27.123456Z","user":"ana","from":"user","agent":null,"body":"hi","priority":"normal"}}"#,
            ),
            (
                ServerFrame::error(
                    Some(RequestId::Str("r2".into())),
                    ErrorCode::AssignedToOther,
                    "ana is assigned to bob",
                ),
                r#"{"type":"error","id":"r2","code":"assigned_to_other","message":"ana is assigned to bob"}"#,
            ),
            (
                ServerFrame::error(None, ErrorCode::BadJson, "x"),
                r#"{"type":"error","id":null,"code":"bad_json","message":"x"}"#,
            ),
            (
                ServerFrame::Assigned {
                    id: None,
                    user: name("ana"),
                    agent: name("alice"),
                    by: None,
                },
                r#"{"type":"assigned","user":"ana","agent":"alice"}"#,
            ),
            (
                ServerFrame::Assigned {
                    id: Some(RequestId::Str("c1".into())),
                    user: name("ana"),
                    agent: name("alice"),
                    by: None,
                },
                r#"{"type":"assigned","id":"c1","user":"ana","agent":"alice"}"#,
            ),
            (
                ServerFrame::Assigned {
                    id: None,
                    user: name("ana"),
                    agent: name("bob"),
                    by: Some(name("alice")),
                },
                r#"{"type":"assigned","user":"ana","agent":"bob","by":"alice"}"#,
            ),
            (
                ServerFrame::Released {
                    id: None,
                    user: name("ana"),
                    agent: name("alice"),
                    by: None,
                    reason: None,
                },
                r#"{"type":"released","user":"ana","agent":"alice"}"#,
            ),
            (
                ServerFrame::Released {
                    id: None,
                    user: name("ana"),
                    agent: name("alice"),
                    by: None,
                    reason: Some(ReleaseReason::AgentOffline),
                },
                r#"{"type":"released","user":"ana","agent":"alice","reason":"agent_offline"}"#,
            ),
            (
                ServerFrame::Resolved {
                    id: Some(RequestId::Str("s1".into())),
                    user: name("ana"),
                    agent: name("alice"),
                },
                r#"{"type":"resolved","id":"s1","user":"ana","agent":"alice"}"#,
            ),
            (
                ServerFrame::Presence {
                    role: Role::User,
                    name: name("ana"),
                    online: true,
                },
                r#"{"type":"presence","role":"user","name":"ana","online":true}"#,
            ),
            (
                ServerFrame::Agents { online: 3 },
                r#"{"type":"agents","online":3}"#,
            ),
            (
                ServerFrame::Pong {
                    id: Some(RequestId::Int(1)),
                },
                r#"{"type":"pong","id":1}"#,
            ),
        ];
        for (frame, json) in cases {
            assert_eq!(serde_json::to_string(&frame).expect("serialises"), json);
            let back: ServerFrame = serde_json::from_str(json).expect(json);
            assert_eq!(back, frame);
        }
    }
}
