//! Picking messages out of frames, and making bodies to send: the small
//! conversions that let a test compare what came back with what went in.

use serde_json::Value;

/// The `id` of a message, as an integer.
pub fn id_of(message: &Value) -> u64 {
    message["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("message without integer id: {message}"))
}

/// The messages among frames (the `message` events of a backlog), in order.
pub fn messages_in(frames: &[Value]) -> Vec<Value> {
    frames
        .iter()
        .filter(|frame| frame["type"] == "message")
        .map(|frame| frame["message"].clone())
        .collect()
}

/// The ids of messages, in order.
pub fn ids(messages: &[Value]) -> Vec<u64> {
    messages.iter().map(id_of).collect()
}

/// `count` numbered bodies: `prefix0`, `prefix1`, …
pub fn numbered(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}{i}")).collect()
}

/// The bodies of messages, in order.
pub fn bodies(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m["body"].as_str().unwrap_or_default().to_string())
        .collect()
}
