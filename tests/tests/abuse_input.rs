//! Issue 15, finding 10 (input): what a customer types cannot hide from or
//! mislead the agent who reads it, and what the protocol promises to ignore
//! is ignored however it is shaped. Bodies that show nothing, or that would
//! display reordered, are refused with `invalid_body`; an unknown field
//! nested deep is ignored like any other, up to the line limit, without a
//! stack overflow.

use serde_json::{Value, json};
use switchboard_tests::*;

/// Sends `body` as a `send` with `id` and returns the error it must get.
async fn refused_body(client: &mut TestClient, id: &str, body: &str) -> Value {
    client
        .send(&json!({"type":"send","id":id,"body":body}))
        .await;
    client.recv_error(json!(id), "invalid_body").await
}

#[tokio::test]
async fn bodies_of_invisible_characters_or_with_bidi_overrides_are_refused() {
    let server = TestServer::start();
    let (mut ana, _) = unsubscribed_user(&server, "ana").await;
    let token = server.add_agent("alice");
    let mut alice = agent(&server, "alice", &token).await;
    for (n, invisible) in [
        "\u{200B}",
        "\u{200B}\u{200C}\u{200D}\u{2060}",
        " \u{FEFF} \u{200B} ",
        "\u{3164}\u{E0041}",
    ]
    .into_iter()
    .enumerate()
    {
        let error = refused_body(&mut ana, &format!("i{n}"), invisible).await;
        let text = error["message"].as_str().unwrap_or_default();
        assert!(text.contains("nothing visible"), "{error}");
    }
    for (n, bidi) in ["\u{202E}", "\u{202A}", "\u{2066}", "\u{2069}"]
        .into_iter()
        .enumerate()
    {
        let body = format!("refund {bidi}0001{bidi} EUR");
        let error = refused_body(&mut ana, &format!("b{n}"), &body).await;
        let text = error["message"].as_str().unwrap_or_default();
        assert!(text.contains("bidirectional"), "{error}");
    }
    // An agent's answer is held to the same rules.
    alice
        .send(&json!({"type":"send","id":"a","to":"ana","body":"\u{202E}ok"}))
        .await;
    alice.recv_error(json!("a"), "invalid_body").await;
    // Nothing was stored or delivered; visible text with a joiner is fine.
    let fine = ana.send_message("👩\u{200D}💻 hi").await;
    assert_eq!(alice.recv_message().await, fine);
    alice.barrier().await;
    assert_eq!(
        bodies(&ana.history(None, json!({})).await),
        ["👩\u{200D}💻 hi"]
    );
}

/// An unknown field is ignored, at any depth the line limit allows: 127
/// deep (the attack test's figure, once `bad_json`), and a default-size line
/// (64 KiB) of brackets, 32K deep, which a recursive parser would either
/// refuse or overflow its stack on. The connection then goes on as usual.
#[tokio::test]
async fn an_ignored_field_nested_deep_is_ignored() {
    let server = TestServer::start();
    let (mut ana, _) = unsubscribed_user(&server, "ana").await;
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    ana.send_raw(format!("{{\"type\":\"ping\",\"id\":\"p\",\"x\":{}}}\n", nested(127)).as_bytes())
        .await;
    assert_eq!(ana.recv().await, json!({"type":"pong","id":"p"}));
    let head = r#"{"type":"send","id":"s","body":"still here","x":"#;
    let depth = (65_536 - head.len() - 1) / 2;
    let line = format!("{head}{}}}\n", nested(depth));
    assert!(line.len() - 1 <= 65_536 && depth > 32_000);
    ana.send_raw(line.as_bytes()).await;
    let sent = ana.recv_type("sent").await;
    assert_eq!(sent["id"], "s");
    assert_eq!(sent["message"]["body"], "still here");
    ana.barrier().await;
}
