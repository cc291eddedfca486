//! PROTOCOL.md "Identity" and "Lifecycle": `hello` for users and agents,
//! tokens, names, failed hellos, and what is refused before `hello`.

use serde_json::{Value, json};
use switchboard_tests::*;

/// Sends one `hello` on a fresh connection and asserts the error it gets.
async fn hello_fails(server: &TestServer, hello: Value, code: &str) -> TestClient {
    let mut client = server.connect().await;
    let mut hello = hello;
    hello["id"] = json!("h");
    client.send(&hello).await;
    client.recv_error(json!("h"), code).await;
    client
}

#[tokio::test]
async fn new_user_is_created_and_gets_a_token_once() {
    let server = TestServer::start();
    let mut client = server.connect().await;
    client
        .send(&json!({"type":"hello","id":"h1","role":"user","name":"ana"}))
        .await;
    let welcome = client.recv().await;
    let token = welcome["token"]
        .as_str()
        .expect("a new user gets a token")
        .to_string();
    assert_eq!(
        welcome,
        json!({"type":"welcome","id":"h1","role":"user","name":"ana","token":token,"agents_online":0})
    );
    // At least 128 random bits, whatever the encoding (hex: 32, base64: 22).
    assert!(token.len() >= 22, "token too short: {token:?}");
    assert!(!token.chars().any(char::is_whitespace), "{token:?}");

    // Another user gets another token.
    let (other, _) = server.connect().await.hello_new_user("ben").await;
    assert_ne!(other, token);
}

#[tokio::test]
async fn returning_user_with_the_right_token_gets_a_welcome_without_token() {
    let server = TestServer::start();
    let (_, token) = unsubscribed_user(&server, "ana").await;
    let mut client = server.connect().await;
    let hello = json!({"type":"hello","id":"h2","role":"user","name":"ana","token":token});
    client.send(&hello).await;
    assert_eq!(
        client.recv().await,
        json!({"type":"welcome","id":"h2","role":"user","name":"ana","agents_online":0})
    );
    // Both connections are ana: what one sends, the other's history shows.
    let message = client.send_message("same person").await;
    let mut again = server.connect().await;
    again.hello_user("ana", &token).await;
    assert_eq!(again.history(None, json!({})).await, vec![message]);
}

#[tokio::test]
async fn user_with_a_wrong_or_missing_token_is_unauthorized() {
    let server = TestServer::start();
    let (_, ana_token) = unsubscribed_user(&server, "ana").await;
    let (_, ben_token) = unsubscribed_user(&server, "ben").await;
    let hellos = [
        json!({"type":"hello","role":"user","name":"ana","token":"wrong"}),
        json!({"type":"hello","role":"user","name":"ana","token":ben_token}),
        json!({"type":"hello","role":"user","name":"ana","token":""}),
        // An existing name without a token is not a new user.
        json!({"type":"hello","role":"user","name":"ana"}),
    ];
    for hello in hellos {
        hello_fails(&server, hello, "unauthorized").await;
    }
    // A failed hello leaves the connection usable for a correct one.
    let mut client = hello_fails(
        &server,
        json!({"type":"hello","role":"user","name":"ana"}),
        "unauthorized",
    )
    .await;
    client.hello_user("ana", &ana_token).await;
}

#[tokio::test]
async fn agent_with_its_token_is_welcomed() {
    let server = TestServer::start();
    let token = server.add_agent("alice");
    let mut client = server.connect().await;
    let hello = json!({"type":"hello","id":"a1","role":"agent","name":"alice","token":token});
    client.send(&hello).await;
    let welcome = client.recv_type("welcome").await;
    assert_eq!(welcome["id"], "a1");
    assert_eq!(welcome["role"], "agent");
    assert_eq!(welcome["name"], "alice");
    assert!(
        welcome.get("token").is_none(),
        "agents get no token in welcome: {welcome}"
    );
}

#[tokio::test]
async fn agent_with_a_wrong_token_or_unknown_name_is_unauthorized() {
    let server = TestServer::start();
    let alice = server.add_agent("alice");
    let bob = server.add_agent("bob");
    let (_, user_token) = unsubscribed_user(&server, "cat").await;
    let hellos = [
        json!({"type":"hello","role":"agent","name":"alice","token":"wrong"}),
        json!({"type":"hello","role":"agent","name":"alice","token":bob}),
        json!({"type":"hello","role":"agent","name":"alice"}),
        json!({"type":"hello","role":"agent","name":"nobody","token":alice}),
        // A user's name and token do not make an agent.
        json!({"type":"hello","role":"agent","name":"cat","token":user_token}),
        // Nor does an agent's token make it a user (a token for a name never
        // seen matches nothing).
        json!({"type":"hello","role":"user","name":"alice","token":alice}),
    ];
    for hello in hellos {
        hello_fails(&server, hello, "unauthorized").await;
    }
}

#[tokio::test]
async fn invalid_names_are_refused() {
    let server = TestServer::start();
    let names = [
        "",
        &"a".repeat(33),
        "a b",
        "ané",
        "a/b",
        "tab\t",
        "émile",
        "semi;colon",
    ];
    for name in names {
        hello_fails(
            &server,
            json!({"type":"hello","role":"user","name":name}),
            "invalid_name",
        )
        .await;
    }
    // Agents' names follow the same rule.
    let hello = json!({"type":"hello","role":"agent","name":"a b","token":"x"});
    hello_fails(&server, hello, "invalid_name").await;
    // The whole alphabet, at the longest allowed length, is fine.
    let longest = "Az09_.-Az09_.-Az09_.-Az09_.-Az09";
    assert_eq!(longest.len(), 32);
    server.connect().await.hello_new_user(longest).await;
    server.connect().await.hello_new_user("x").await;
}

#[tokio::test]
async fn three_failed_hellos_close_the_connection() {
    let server = TestServer::start();
    unsubscribed_user(&server, "ana").await;
    let mut client = server.connect().await;
    let hellos = [
        json!({"type":"hello","id":1,"role":"user","name":"ana","token":"wrong"}),
        json!({"type":"hello","id":2,"role":"user","name":"not valid"}),
        json!({"type":"hello","id":3,"role":"user","name":"ana"}),
    ];
    client.send(&hellos[0]).await;
    client.recv_error(json!(1), "unauthorized").await;
    client.send(&hellos[1]).await;
    client.recv_error(json!(2), "invalid_name").await;
    client.send(&hellos[2]).await;
    let last = client.recv_error(json!(3), "unauthorized").await;
    // The last says so, and what to do.
    assert!(
        last["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("this connection closes now, connect again to retry")),
        "{last}"
    );
    client.expect_closed().await;
}

#[tokio::test]
async fn two_failed_hellos_then_a_good_one_keep_the_connection() {
    let server = TestServer::start();
    let (_, token) = unsubscribed_user(&server, "ana").await;
    let mut client = server.connect().await;
    for id in 1..=2 {
        client
            .send(&json!({"type":"hello","id":id,"role":"user","name":"ana","token":"x"}))
            .await;
        client.recv_error(json!(id), "unauthorized").await;
    }
    client.hello_user("ana", &token).await;
    client.barrier().await;
}

#[tokio::test]
async fn second_hello_is_already_authenticated_and_changes_nothing() {
    let server = TestServer::start();
    let (mut client, _) = unsubscribed_user(&server, "ana").await;
    client
        .send(&json!({"type":"hello","id":"again","role":"user","name":"ben"}))
        .await;
    client
        .recv_error(json!("again"), "already_authenticated")
        .await;
    // Still ana, and ben was not created.
    let message = client.send_message("still ana").await;
    assert_eq!(message["user"], "ana");
    client
        .send(&json!({"type":"history","id":"h","user":"ben"}))
        .await;
    client.recv_error(json!("h"), "forbidden").await;
    server.connect().await.hello_new_user("ben").await;
}

#[tokio::test]
async fn requests_before_hello_are_not_authenticated() {
    let server = TestServer::start();
    let mut client = server.connect().await;
    let requests = [
        json!({"type":"subscribe","id":"r1"}),
        json!({"type":"send","id":"r2","body":"hi"}),
        json!({"type":"history","id":"r3"}),
        json!({"type":"release","id":"r4","user":"ana"}),
        json!({"type":"ping","id":"r5"}),
    ];
    for request in &requests {
        client.send(request).await;
        client
            .recv_error(request["id"].clone(), "not_authenticated")
            .await;
    }
    // Still refused after a failed hello.
    client
        .send(&json!({"type":"hello","id":"bad","role":"user","name":"no such"}))
        .await;
    client.recv_error(json!("bad"), "invalid_name").await;
    client.send(&json!({"type":"subscribe","id":"r6"})).await;
    client.recv_error(json!("r6"), "not_authenticated").await;
    // Not failed hellos: the connection is still open and can identify.
    let (token, _) = client.hello_new_user("ana").await;
    assert!(!token.is_empty());
    client.barrier().await;
}

#[tokio::test]
async fn bye_before_hello_closes_the_connection() {
    let server = TestServer::start();
    let mut client = server.connect().await;
    client.send(&json!({"type":"bye"})).await;
    client.expect_closed().await;
}

/// Interpretation 21: a `hello` with a missing `role` or `name`, or a role
/// that is neither `user` nor `agent`, is `bad_frame` (echoing its id), and
/// a `bad_frame` `hello` is not a failed `hello`. Two real failures and five
/// malformed hellos leave the connection open (a server counting the
/// malformed ones would close it at the third); it is still not signed in
/// (a `ping` gets `not_authenticated`), and a proper `hello` then succeeds.
#[tokio::test]
async fn malformed_hello_is_bad_frame_and_not_a_failed_hello() {
    let server = TestServer::start();
    let (_, token) = unsubscribed_user(&server, "ana").await;
    let mut client = server.connect().await;
    client
        .send(&json!({"type":"hello","id":"f1","role":"user","name":"ana","token":"wrong"}))
        .await;
    client.recv_error(json!("f1"), "unauthorized").await;
    let malformed = [
        json!({"type":"hello","id":"m1","role":"admin","name":"ana","token":token}),
        json!({"type":"hello","id":"m2","name":"ana","token":token}),
        json!({"type":"hello","id":"m3","role":"user","token":token}),
        json!({"type":"hello","id":"m4","role":"admin","name":"root"}),
        json!({"type":"hello","id":"m5"}),
    ];
    for hello in &malformed[..3] {
        client.send(hello).await;
        client.recv_error(hello["id"].clone(), "bad_frame").await;
    }
    client
        .send(&json!({"type":"hello","id":"f2","role":"user","name":"ana","token":"wrong"}))
        .await;
    client.recv_error(json!("f2"), "unauthorized").await;
    for hello in &malformed[3..] {
        client.send(hello).await;
        client.recv_error(hello["id"].clone(), "bad_frame").await;
    }
    client.send(&json!({"type":"ping","id":"p"})).await;
    client.recv_error(json!("p"), "not_authenticated").await;
    client.hello_user("ana", &token).await;
    client.barrier().await;
}

/// A refused `hello` is logged with its role, name and code, so an operator
/// can see someone guessing at an agent's token; the token itself never is.
/// A server that logs nothing, or logs the guess, fails here.
#[tokio::test]
async fn a_refused_hello_is_logged_without_its_token() {
    let server = TestServer::start();
    server.add_agent("alice");
    let mut client = server.connect().await;
    let guess = "guessed-0123456789abcdef";
    client
        .send(&json!({"type":"hello","id":"h","role":"agent","name":"alice","token":guess}))
        .await;
    client.recv_error(json!("h"), "unauthorized").await;
    let line = server.log_line("hello refused");
    assert!(
        line.contains("alice") && line.contains("unauthorized"),
        "{line}"
    );
    assert!(
        !server.recent_log().contains(guess),
        "the guess reached the log"
    );
}

/// Interpretation 28: one address registers at most `--signups-per-minute`
/// new names a minute (here 2). The next new name's `hello` is
/// `rate_limited` (a failed `hello`; the connection stays), while signing
/// in with a token and registering from another address still work.
#[tokio::test]
async fn new_names_are_limited_per_address() {
    // What one node counts for itself (docs/protocol.md, point 36):
    // every client of this test reaches the same node.
    let server = TestServer::start_with(&["--signups-per-minute", "2"]);
    let (ana_token, _) = server.connect_to(0).await.hello_new_user("ana").await;
    server.connect_to(0).await.hello_new_user("bo").await;
    let mut third = server.connect_to(0).await;
    let refused = third
        .request(json!({"type":"hello","id":"h","role":"user","name":"cy"}))
        .await;
    assert_error(&refused, json!("h"), "rate_limited");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|text| text.contains("your address")),
        "{refused}"
    );
    // The same connection can still sign in as someone who exists.
    third.hello_user("ana", &ana_token).await;

    let mut elsewhere = TestClient::connect_from_another_address(server.node(0).addr()).await;
    assert_eq!(elsewhere.recv().await, greeting());
    elsewhere.hello_new_user("cy").await;
}
