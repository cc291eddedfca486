//! The exact frames the server sends that a test can write out in full: the
//! greeting and the state events. Built from `json!` literals rather than the
//! server's types, so a change to the wire format shows up as a failing test.

use serde_json::{Value, json};

/// The exact first frame of every connection.
pub fn greeting() -> Value {
    json!({"type":"greeting","server":"switchboard","version":"0.1.0","protocol":2})
}

/// The event a subscribed agent gets when a user's first connection subscribes
/// (`true`) or the last one closes (`false`).
pub fn presence(name: &str, online: bool) -> Value {
    json!({"type":"presence","role":"user","name":name,"online":online})
}

/// The event announcing that `agent` now holds `user`'s conversation.
pub fn assigned(user: &str, agent: &str) -> Value {
    json!({"type":"assigned","user":user,"agent":agent})
}

/// The event announcing that `agent` released `user`'s conversation.
pub fn released(user: &str, agent: &str) -> Value {
    json!({"type":"released","user":user,"agent":agent})
}

/// The event announcing that `by` handed `user`'s conversation to `agent`
/// (protocol version 2, `transfer`).
pub fn transferred(user: &str, agent: &str, by: &str) -> Value {
    json!({"type":"assigned","user":user,"agent":agent,"by":by})
}

/// The event announcing that `agent` resolved `user`'s conversation
/// (protocol version 2).
pub fn resolved(user: &str, agent: &str) -> Value {
    json!({"type":"resolved","user":user,"agent":agent})
}
