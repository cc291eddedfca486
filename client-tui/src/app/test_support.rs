//! Steps the tests of the app and of its views share.

use super::*;
use switchboard_protocol::{Priority, ServerFrame};

/// The connection comes up and the subscription completes.
pub fn go_online(app: &mut App, agents_online: Option<u32>) {
    update(
        app,
        Msg::Net(NetEvent::Connected {
            node: "127.0.0.1:7878".into(),
            agents_online,
        }),
    );
    update(
        app,
        Msg::Net(NetEvent::Frame(ServerFrame::Subscribed {
            id: None,
            backlog: 0,
            truncated: false,
        })),
    );
}

/// The connection drops and comes back; returns what the app sends.
pub fn reconnect(app: &mut App) -> Vec<Effect> {
    update(
        app,
        Msg::Net(NetEvent::Disconnected {
            attempt: 1,
            reason: "reset".into(),
            next: "127.0.0.1:7878".into(),
        }),
    );
    update(
        app,
        Msg::Net(NetEvent::Connected {
            node: "127.0.0.1:7878".into(),
            agents_online: None,
        }),
    )
}

pub fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        update(app, Msg::Action(Action::Insert(c)));
    }
}

pub fn name(text: &str) -> Name {
    Name::parse(text).expect("valid name")
}

/// A time stamp `seconds` into a fixed day.
pub fn ts(seconds: i64) -> Timestamp {
    Timestamp::from_micros(1_800_000_000_000_000 + seconds * 1_000_000)
}

/// A stored message: the user's when `agent` is `None`.
pub fn message_from(
    id: u64,
    user: &str,
    agent: Option<&str>,
    body: &str,
    priority: Priority,
) -> Message {
    Message {
        id,
        ts: ts(id as i64),
        user: name(user),
        from: if agent.is_some() {
            Role::Agent
        } else {
            Role::User
        },
        agent: agent.map(name),
        body: switchboard_protocol::Body::parse(body, usize::MAX).expect("valid body"),
        priority,
        note: false,
    }
}
