//! Assertions on frames whose content a test cannot write out in full (ids and
//! timestamps the server chooses): the shape every error and every stored
//! message must have, checked the same way in every test.

use serde_json::{Value, json};

/// Asserts an error frame: `type`, the echoed `id` (or null), the `code` and a
/// human-readable `message`.
pub fn assert_error(frame: &Value, id: Value, code: &str) {
    assert_eq!(frame["type"], "error", "expected an error, got {frame}");
    assert_eq!(frame["code"], code, "wrong error code in {frame}");
    assert_eq!(
        frame.get("id"),
        Some(&id),
        "the error must echo the id (or say null): {frame}"
    );
    assert!(
        frame["message"].is_string(),
        "an error carries a message for people: {frame}"
    );
}

/// Asserts the shape of a stored message and its content.
pub fn assert_message(
    message: &Value,
    user: &str,
    agent: Option<&str>,
    body: &str,
    priority: &str,
) {
    assert!(
        message["id"].is_u64(),
        "message id must be an integer: {message}"
    );
    assert_timestamp(&message["ts"]);
    assert_eq!(message["user"], user, "{message}");
    let from = if agent.is_some() { "agent" } else { "user" };
    assert_eq!(message["from"], from, "{message}");
    assert_eq!(message.get("agent"), Some(&json!(agent)), "{message}");
    assert_eq!(message["body"], body, "{message}");
    assert_eq!(message["priority"], priority, "{message}");
}

/// Asserts `YYYY-MM-DDTHH:MM:SS.ffffffZ`: RFC 3339, UTC, microseconds, fixed width.
pub fn assert_timestamp(ts: &Value) {
    let ts = ts
        .as_str()
        .unwrap_or_else(|| panic!("ts must be a string: {ts}"));
    let shape = "dddd-dd-ddTdd:dd:dd.ddddddZ";
    let matches = ts.len() == shape.len()
        && ts.bytes().zip(shape.bytes()).all(|(c, s)| match s {
            b'd' => c.is_ascii_digit(),
            s => c == s,
        });
    assert!(
        matches,
        "ts {ts:?} is not fixed-width RFC 3339 UTC with microseconds"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_timestamps() {
        assert_timestamp(&json!("2026-11-24T11:16:27.123456Z"));
        let bad = [
            "2026-11-24T11:16:27.123Z",
            "2026-11-24T11:16:27.123456+00:00",
            "x",
        ];
        for ts in bad {
            assert!(
                std::panic::catch_unwind(|| assert_timestamp(&json!(ts))).is_err(),
                "{ts}"
            );
        }
    }
}
