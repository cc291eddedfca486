//! PROTOCOL.md "Messages", `priority`: the server's default rules on whole
//! words, case-insensitive; a rules file replacing them; agents' messages.

use serde_json::json;
use switchboard_tests::*;

/// Sends each body as `ana` and asserts the priority the server gave it.
async fn assert_priorities(server: &TestServer, cases: &[(&str, &str)]) {
    let (mut ana, _) = unsubscribed_user(server, "ana").await;
    for (body, priority) in cases {
        let message = ana.send_message(body).await;
        assert_eq!(
            message["priority"], *priority,
            "priority of {body:?}: {message}"
        );
    }
}

#[tokio::test]
async fn default_rules_match_whole_words_case_insensitively() {
    let server = TestServer::start_with(NO_SEND_LIMITS);
    assert_priorities(
        &server,
        &[
            ("URGENT!", "urgent"),
            ("this is urgent", "urgent"),
            ("urgently, please", "normal"),
            ("Emergency", "urgent"),
            ("possible fraud here", "urgent"),
            ("I think I was HACKED.", "urgent"),
            ("my bike was stolen", "urgent"),
            ("I want a refund", "high"),
            ("payment failed", "high"),
            ("My card was charged twice", "high"),
            ("charged", "high"),
            ("account Locked", "high"),
            ("please cancel", "high"),
            ("cancelled my order", "normal"),
            ("refunds", "normal"),
            ("prepayment", "normal"),
            ("hello there", "normal"),
            ("refund, and also fraud", "urgent"),
            ("(charged)", "high"),
            ("urgent\nfraud", "urgent"),
        ],
    )
    .await;
}

#[tokio::test]
async fn agent_messages_are_normal() {
    let server = TestServer::start();
    let token = server.add_agent("alice");
    unsubscribed_user(&server, "ana").await;
    let mut alice = server.connect().await;
    alice.hello_agent("alice", &token).await;
    let message = alice
        .send_to("ana", "URGENT: fraud refund, payment charged, hacked")
        .await;
    assert_message(
        &message,
        "ana",
        Some("alice"),
        "URGENT: fraud refund, payment charged, hacked",
        "normal",
    );
}

#[tokio::test]
async fn a_rules_file_replaces_the_default_rules() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.json");
    let json = json!({"urgent":["fire"],"high":["late"],"low":["thanks"]});
    std::fs::write(&rules, json.to_string()).unwrap();
    let rules_flag = ["--priority-rules", rules.to_str().unwrap()];
    let server = TestServer::start_with(&[NO_SEND_LIMITS, &rules_flag].concat());
    assert_priorities(
        &server,
        &[
            ("FIRE!", "urgent"),
            ("there is a fire", "urgent"),
            ("fireman", "normal"),
            ("you are late", "high"),
            ("thanks a lot", "low"),
            ("Thanks", "low"),
            ("thanks, but fire", "urgent"),
            ("late, thanks", "high"),
            // The default words mean nothing now.
            ("urgent fraud", "normal"),
            ("refund", "normal"),
        ],
    )
    .await;
}
