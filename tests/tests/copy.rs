//! `switchboard copy --db FILE --postgres URL` (issue 16): a help desk run
//! on SQLite, stopped, copied into an empty PostgreSQL database and served
//! from there looks to every client exactly as it did: the same tokens,
//! histories, ids and time stamps, the same waiting queue, keys that still
//! answer with the original message, assignments that still hold, and new
//! ids above every copied one. And the refusals: a database that is not
//! empty, a SQLite file a server is serving. Each test runs the real binary
//! on a fresh database of the shared throwaway PostgreSQL.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};
use switchboard_tests::*;

/// Carried in the URL and never shown: the throwaway PostgreSQL trusts
/// loopback connections, so it is never checked either.
const PASSWORD: &str = "s3cret-never-shown";

/// `url` with [`PASSWORD`] in it.
fn with_password(url: &str) -> String {
    let with = url.replacen(
        "postgres://postgres@",
        &format!("postgres://postgres:{PASSWORD}@"),
        1,
    );
    assert_ne!(
        with, url,
        "the harness's URL names the postgres user: {url}"
    );
    with
}

/// `switchboard ARGS` with no store from the environment, and its output.
fn switchboard(args: &[&str]) -> Output {
    Command::new(switchboard_bin())
        .args(args)
        .env_remove("SWITCHBOARD_DB")
        .env_remove("SWITCHBOARD_POSTGRES")
        .stdin(Stdio::null())
        .output()
        .expect("run switchboard")
}

fn copy(db: &Path, url: &str) -> Output {
    let db = db.to_str().expect("a UTF-8 temporary path");
    switchboard(&["copy", "--db", db, "--postgres", url])
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The message of a `sent` reply.
fn sent(reply: Value) -> Value {
    assert_eq!(reply["type"], "sent", "{reply}");
    reply["message"].clone()
}

/// A help desk as its clients see it.
#[derive(Debug, PartialEq)]
struct Seen {
    /// Each user's history, signed in with the user's token.
    histories: Vec<Vec<Value>>,
    /// The agents' waiting queue, in the order the backlog gives it.
    queue: Vec<Value>,
    /// The `assigned` events an agent's backlog ends with.
    assigned: Vec<Value>,
    /// Every message, resumed with `since: 0`.
    everything: Vec<Value>,
}

async fn look(server: &TestServer, users: &[(&str, &str)], agent: (&str, &str)) -> Seen {
    let mut histories = Vec::new();
    for (name, token) in users {
        let mut client = server.connect().await.labelled(name);
        client.hello_user(name, token).await;
        histories.push(client.history(None, json!({"limit": 1000})).await);
    }
    let mut watcher = server.connect().await.labelled(agent.0);
    watcher.hello_agent(agent.0, agent.1).await;
    let (frames, _) = watcher.subscribe().await;
    let assigned = frames
        .iter()
        .filter(|frame| frame["type"] == "assigned")
        .cloned()
        .collect();
    let (resumed, subscribed) = watcher.subscribe_with(json!({"since": 0})).await;
    assert_eq!(subscribed["truncated"], false, "{subscribed}");
    Seen {
        histories,
        queue: messages_in(&frames),
        assigned,
        everything: messages_in(&resumed),
    }
}

#[tokio::test]
async fn a_help_desk_copied_from_sqlite_serves_from_postgres_as_it_was() {
    let Some(url) = fresh_database() else {
        return;
    };
    let mut sqlite = TestServer::start_on_sqlite(NO_SEND_LIMITS);
    let alice_token = sqlite.add_agent("alice");
    let bob_token = sqlite.add_agent("bob");
    let carl_token = sqlite.add_agent("carl");
    let (mut ana, ana_token) = unsubscribed_user(&sqlite, "ana").await;
    let (mut bo, bo_token) = unsubscribed_user(&sqlite, "bo").await;
    let (mut cy, cy_token) = unsubscribed_user(&sqlite, "cy").await;
    let (mut dee, dee_token) = unsubscribed_user(&sqlite, "dee").await;
    let mut alice = sqlite.connect().await.labelled("alice");
    alice.hello_agent("alice", &alice_token).await;
    let mut bob = sqlite.connect().await.labelled("bob");
    bob.hello_agent("bob", &bob_token).await;

    // ana asks (with a key), alice answers (with a key) and so holds her;
    // ana's thanks waits. bo's urgent and normal messages wait. bob takes
    // cy by answering, then lets go (a release). dee's question waits.
    let question = sent(
        ana.request(json!({"type":"send","key":"q1","body":"refund please"}))
            .await,
    );
    let answer = sent(
        alice
            .request(json!({"type":"send","to":"ana","key":"a1","body":"on it"}))
            .await,
    );
    let thanks = ana.send_message("thanks").await;
    let hacked = sent(
        bo.request(json!({"type":"send","key":"b1","body":"my account was hacked"}))
            .await,
    );
    let hello = bo.send_message("hello?").await;
    cy.send_message("payment failed").await;
    bob.send_to("cy", "fixed, try again").await;
    let released = bob.request(json!({"type":"release","user":"cy"})).await;
    assert_eq!(released["type"], "released", "{released}");
    let refund = dee.send_message("where is my refund").await;
    let removed = sqlite.cli(&["agent", "remove", "carl"]);
    assert!(removed.status.success(), "{removed:?}");
    drop((ana, bo, cy, dee, alice, bob));

    let users = [
        ("ana", ana_token.as_str()),
        ("bo", bo_token.as_str()),
        ("cy", cy_token.as_str()),
        ("dee", dee_token.as_str()),
    ];
    let before = look(&sqlite, &users, ("alice", &alice_token)).await;
    assert_eq!(
        before.queue,
        vec![hacked.clone(), refund, thanks, hello],
        "urgent, then high, then normal oldest first"
    );
    assert_eq!(before.assigned, vec![assigned("ana", "alice")]);
    assert_eq!(before.everything.len(), 8);
    let status = sqlite.terminate();
    assert!(status.success(), "the SQLite server stopped: {status}");

    let copied = copy(&sqlite.db(), &with_password(&url));
    let (out, err) = (stdout(&copied), stderr(&copied));
    assert!(copied.status.success(), "copy failed:\n{out}\n{err}");
    assert!(
        out.contains(
            "found 3 agents, 4 users, 8 messages, 4 waiting messages, 3 idempotency keys, \
             0 releases due"
        ),
        "{out}"
    );
    assert!(out.contains("messages: 8 of 8 (100%)"), "{out}");
    assert!(out.contains("new messages continue from id 9"), "{out}");
    assert!(
        !out.contains(PASSWORD) && !err.contains(PASSWORD),
        "{out}\n{err}"
    );
    assert!(out.contains("to postgres://postgres@127.0.0.1:"), "{out}");

    let postgres = TestServer::start_on_database(NO_SEND_LIMITS, &url);
    let after = look(&postgres, &users, ("alice", &alice_token)).await;
    assert_eq!(
        after, before,
        "tokens, histories, ids, ts, the queue, holders"
    );

    let mut bob = postgres.connect().await.labelled("bob");
    bob.hello_agent("bob", &bob_token).await;
    let mut carl = postgres.connect().await.labelled("carl");
    let refused = carl
        .request(json!({"type":"hello","role":"agent","name":"carl","token":carl_token}))
        .await;
    assert_eq!(
        refused["code"], "unauthorized",
        "carl stays removed: {refused}"
    );
    // Keys resent answer with the messages they stored before the copy.
    let mut ana = postgres.connect().await.labelled("ana");
    ana.hello_user("ana", &ana_token).await;
    let again = ana
        .request(json!({"type":"send","key":"q1","body":"refund please"}))
        .await;
    assert_eq!(sent(again), question);
    let mut alice = postgres.connect().await.labelled("alice");
    alice.hello_agent("alice", &alice_token).await;
    let again = alice
        .request(json!({"type":"send","to":"ana","key":"a1","body":"on it"}))
        .await;
    assert_eq!(sent(again), answer);
    // alice still holds ana.
    let taken = bob
        .request(json!({"type":"send","to":"ana","body":"bob here"}))
        .await;
    assert_eq!(taken["code"], "assigned_to_other", "{taken}");
    // New ids and time stamps continue above every copied one.
    let mut bo = postgres.connect().await.labelled("bo");
    bo.hello_user("bo", &bo_token).await;
    let newest = before.everything.last().expect("messages").clone();
    let new = bo.send_message("still locked out").await;
    assert_eq!(id_of(&new), id_of(&newest) + 1, "{new}");
    assert!(
        new["ts"].as_str() > newest["ts"].as_str(),
        "{new} / {newest}"
    );
    let again = bo
        .request(json!({"type":"send","key":"b1","body":"my account was hacked"}))
        .await;
    assert_eq!(sent(again), hacked);
    // A new user registers beside the copied ones.
    let (mut eve, _) = unsubscribed_user(&postgres, "eve").await;
    let first = eve.send_message("hi").await;
    assert!(id_of(&first) > id_of(&new));
}

#[tokio::test]
async fn copy_refuses_a_database_that_is_not_empty_and_leaves_it_as_it_was() {
    let Some(url) = fresh_database() else {
        return;
    };
    let mut sqlite = TestServer::start_on_sqlite(&[]);
    sqlite.add_agent("alice");
    let (mut ana, _) = unsubscribed_user(&sqlite, "ana").await;
    ana.send_message("hello").await;
    drop(ana);
    assert!(sqlite.terminate().success());
    let added = switchboard(&["agent", "add", "zed", "--postgres", &url]);
    assert!(added.status.success(), "{added:?}");

    let refused = copy(&sqlite.db(), &url);
    let (out, err) = (stdout(&refused), stderr(&refused));
    assert!(!refused.status.success(), "refused:\n{out}\n{err}");
    assert!(err.contains("is not empty: it holds agents"), "{err}");
    assert!(err.contains("createdb"), "says what to do: {err}");
    assert!(!out.contains("copied "), "no summary: {out}");
    let listed = switchboard(&["agent", "list", "--postgres", &url]);
    assert!(listed.status.success(), "{listed:?}");
    assert_eq!(
        stdout(&listed),
        "zed\t0 conversation(s)\n",
        "left as it was"
    );
}

#[tokio::test]
async fn copy_refuses_a_sqlite_file_a_server_is_serving_and_writes_nothing() {
    let Some(url) = fresh_database() else {
        return;
    };
    let mut sqlite = TestServer::start_on_sqlite(&[]);
    sqlite.add_agent("alice");
    let refused = copy(&sqlite.db(), &url);
    let err = stderr(&refused);
    assert!(!refused.status.success(), "refused: {err}");
    assert!(err.contains("a switchboard server is serving"), "{err}");
    assert!(err.contains("stop it first"), "says what to do: {err}");

    // Nothing was written: once the server stops, the same database takes
    // the copy (a database with anything in it would be refused).
    assert!(sqlite.terminate().success());
    let copied = copy(&sqlite.db(), &url);
    assert!(copied.status.success(), "{}", stderr(&copied));
    assert!(
        stdout(&copied).contains("found 1 agents, 0 users"),
        "{}",
        stdout(&copied)
    );
}

#[test]
fn an_unreachable_database_is_named_without_its_password() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = dir.path().join("desk.db");
    // A SQLite help desk with nothing in it yet: `agent add` makes one.
    let added = switchboard(&["agent", "add", "alice", "--db", db.to_str().expect("UTF-8")]);
    assert!(added.status.success(), "{added:?}");
    // Port 1 on loopback: nothing listens there.
    let url = format!("postgres://sb:{PASSWORD}@127.0.0.1:1/desk");
    let failed = copy(&db, &url);
    let (out, err) = (stdout(&failed), stderr(&failed));
    assert!(!failed.status.success());
    assert!(
        err.contains("cannot connect to PostgreSQL at postgres://sb@127.0.0.1:1/desk"),
        "{err}"
    );
    assert!(
        !out.contains(PASSWORD) && !err.contains(PASSWORD),
        "{out}\n{err}"
    );
}
