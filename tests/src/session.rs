//! The protocol's requests as one call each (`hello`, `subscribe`, `send`,
//! `history`, `bye`), asserting the reply a well-behaved server gives, and
//! [`user`] / [`agent`]: connections that are already greeted, identified and
//! subscribed, for tests that are about something else. They take any
//! [`Deployment`], so the same test can run on one node or on a cluster.

use serde_json::{Value, json};

use crate::client::TestClient;
use crate::deployment::Deployment;
use crate::messages::id_of;

impl TestClient {
    /// `hello` as a user never seen before: asserts `welcome` with a token and
    /// returns it (with the whole welcome frame).
    pub async fn hello_new_user(&mut self, name: &str) -> (String, Value) {
        let welcome = self
            .request(json!({"type":"hello","role":"user","name":name}))
            .await;
        assert_eq!(welcome["type"], "welcome", "{}: {welcome}", self.label);
        assert_eq!(welcome["role"], "user");
        assert_eq!(welcome["name"], name);
        let token = welcome["token"]
            .as_str()
            .expect("a new user's welcome carries a token");
        (token.to_string(), welcome)
    }

    /// `hello` as a returning user; asserts `welcome` and returns it.
    pub async fn hello_user(&mut self, name: &str, token: &str) -> Value {
        let hello = json!({"type":"hello","role":"user","name":name,"token":token});
        let welcome = self.request(hello).await;
        assert_eq!(welcome["type"], "welcome", "{}: {welcome}", self.label);
        assert_eq!(welcome["role"], "user");
        assert_eq!(welcome["name"], name);
        welcome
    }

    /// `hello` as an agent; asserts `welcome` and returns it.
    pub async fn hello_agent(&mut self, name: &str, token: &str) -> Value {
        let hello = json!({"type":"hello","role":"agent","name":name,"token":token});
        let welcome = self.request(hello).await;
        assert_eq!(welcome["type"], "welcome", "{}: {welcome}", self.label);
        assert_eq!(welcome["role"], "agent");
        assert_eq!(welcome["name"], name);
        welcome
    }

    /// Sends `subscribe` (plus the fields in `extra`, e.g. `{"since": 4}`) and
    /// returns the frames that came before `subscribed`, and `subscribed` itself.
    pub async fn subscribe_with(&mut self, extra: Value) -> (Vec<Value>, Value) {
        let id = self.request_id();
        let mut frame = json!({"type":"subscribe","id":id});
        for (key, value) in extra.as_object().expect("extra fields are an object") {
            frame[key] = value.clone();
        }
        self.send(&frame).await;
        let mut before = Vec::new();
        loop {
            let frame = self.recv().await;
            if frame["type"] == "subscribed" {
                assert_eq!(
                    frame["id"], id,
                    "{}: `subscribed` echoes the id",
                    self.label
                );
                return (before, frame);
            }
            assert_ne!(
                frame["type"], "error",
                "{}: subscribe failed: {frame}",
                self.label
            );
            before.push(frame);
        }
    }

    /// `subscribe` with no options.
    pub async fn subscribe(&mut self) -> (Vec<Value>, Value) {
        self.subscribe_with(json!({})).await
    }

    /// A user's `send`: asserts `sent` echoing the id and returns the message.
    pub async fn send_message(&mut self, body: &str) -> Value {
        let sent = self.request(json!({"type":"send","body":body})).await;
        assert_eq!(sent["type"], "sent", "{}: {sent}", self.label);
        sent["message"].clone()
    }

    /// A user's `send` of every body in one write (pipelined); asserts that
    /// each gets `sent` and returns the messages in commit order (by id).
    pub async fn send_messages(&mut self, bodies: &[String]) -> Vec<Value> {
        let requests: Vec<Value> = bodies
            .iter()
            .map(|body| json!({"type":"send","id":self.request_id(),"body":body}))
            .collect();
        let replies = self.pipeline(&requests).await;
        let mut messages: Vec<Value> = replies
            .into_iter()
            .map(|reply| {
                assert_eq!(reply["type"], "sent", "{}: {reply}", self.label);
                reply["message"].clone()
            })
            .collect();
        messages.sort_by_key(id_of);
        messages
    }

    /// An agent's `send` to a user: asserts `sent` and returns the message.
    pub async fn send_to(&mut self, user: &str, body: &str) -> Value {
        let sent = self
            .request(json!({"type":"send","to":user,"body":body}))
            .await;
        assert_eq!(sent["type"], "sent", "{}: {sent}", self.label);
        sent["message"].clone()
    }

    /// An agent's first `send` to an unassigned user on a *subscribed*
    /// connection: the agent takes the user, so `assigned` arrives before
    /// `sent` (interpretation 2). Returns the message.
    pub async fn send_to_assigning(&mut self, user: &str, body: &str) -> Value {
        let id = self.request_id();
        self.send(&json!({"type":"send","id":id,"to":user,"body":body}))
            .await;
        let event = self.recv_type("assigned").await;
        assert_eq!(event["user"], user, "{}: {event}", self.label);
        assert!(
            event.get("id").is_none_or(Value::is_null),
            "events carry no id: {event}"
        );
        let sent = self.recv_type("sent").await;
        assert_eq!(
            sent["id"], id,
            "{}: `sent` echoes the id: {sent}",
            self.label
        );
        assert_eq!(
            event["agent"], sent["message"]["agent"],
            "the sender is assigned: {event}"
        );
        sent["message"].clone()
    }

    /// `history` (with `user` when given, plus the fields in `extra`); asserts
    /// the reply and returns its messages.
    pub async fn history(&mut self, user: Option<&str>, extra: Value) -> Vec<Value> {
        let mut frame = json!({"type":"history"});
        if let Some(user) = user {
            frame["user"] = json!(user);
        }
        for (key, value) in extra.as_object().expect("extra fields are an object") {
            frame[key] = value.clone();
        }
        let reply = self.request(frame).await;
        assert_eq!(reply["type"], "history", "{}: {reply}", self.label);
        reply["messages"]
            .as_array()
            .expect("history has a messages array")
            .clone()
    }

    /// Says `bye` and waits for the server to close the connection.
    pub async fn bye(mut self) {
        self.send(&json!({"type":"bye"})).await;
        self.expect_closed().await;
    }
}

/// A new user `name`: connected, identified (the user is created) and
/// subscribed, with everything up to `subscribed` consumed. Returns the token.
pub async fn user(server: &impl Deployment, name: &str) -> (TestClient, String) {
    let mut client = server.connect().await.labelled(name);
    let (token, _) = client.hello_new_user(name).await;
    client.subscribe().await;
    (client, token)
}

/// Another subscribed connection of an existing user, with everything up to
/// `subscribed` consumed.
pub async fn user_again(server: &impl Deployment, name: &str, token: &str) -> TestClient {
    let mut client = server.connect().await.labelled(name);
    client.hello_user(name, token).await;
    client.subscribe().await;
    client
}

/// A subscribed connection of a provisioned agent, with the backlog and state
/// events up to `subscribed` consumed.
pub async fn agent(server: &impl Deployment, name: &str, token: &str) -> TestClient {
    let mut client = server.connect().await.labelled(name);
    client.hello_agent(name, token).await;
    client.subscribe().await;
    client
}

/// An identified connection that did not subscribe: it gets only replies
/// (interpretation 3).
pub async fn unsubscribed_user(server: &impl Deployment, name: &str) -> (TestClient, String) {
    let mut client = server.connect().await.labelled(name);
    let (token, _) = client.hello_new_user(name).await;
    (client, token)
}

/// What the desk looks like to a fresh subscribe of agent `name`: the
/// waiting messages, and the `assigned` frames (who holds what). Sign in
/// as an agent already online, so that nobody hears a new agent arrive
/// (users would get a new `agents` count).
pub async fn agent_snapshot(
    server: &impl Deployment,
    name: &str,
    token: &str,
) -> (Vec<Value>, Vec<Value>) {
    let mut watcher = server.connect().await.labelled("snapshot");
    watcher.hello_agent(name, token).await;
    let (frames, _) = watcher.subscribe().await;
    let assigned = frames
        .iter()
        .filter(|frame| frame["type"] == "assigned")
        .cloned()
        .collect();
    (crate::messages::messages_in(&frames), assigned)
}
