//! The tests of `update`, one file per area of behaviour; the helpers here
//! feed it frames and read back what it sent.

use super::test_support::{go_online, message_from, name, reconnect, ts, type_text};
use super::*;
use switchboard_protocol::{
    ClientFrame, ErrorCode, FrameError, Message, Priority, RequestId, ServerFrame,
};

mod history;
mod lifecycle;
mod queue;
mod reconnect;
mod scroll;
mod sending;

fn user_msg(id: u64, user: &str, body: &str, priority: Priority) -> Message {
    message_from(id, user, None, body, priority)
}

fn agent_msg(id: u64, user: &str, agent: &str, body: &str) -> Message {
    message_from(id, user, Some(agent), body, Priority::Normal)
}

fn frame(app: &mut App, frame: ServerFrame) -> Vec<Effect> {
    update(app, Msg::Net(NetEvent::Frame(frame)))
}

fn message(app: &mut App, m: Message) -> Vec<Effect> {
    frame(app, ServerFrame::Message { message: m })
}

fn connected(mode: Mode, me: &str) -> App {
    let mut app = App::new(mode, name(me), "test:1".into(), "k".into(), ts(1000));
    go_online(&mut app, None);
    app
}

fn sends(effects: &[Effect]) -> Vec<&ClientFrame> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send(f) => Some(f),
            _ => None,
        })
        .collect()
}

fn ids(app: &App, user: &str) -> Vec<u64> {
    app.conversations[&name(user)]
        .messages
        .iter()
        .map(|m| m.id)
        .collect()
}
