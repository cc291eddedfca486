//! Crash safety under load (issue 4, point 1): customers keep sending with
//! idempotency keys and two agents compete for one conversation while the
//! server is `kill -9`ed several times with requests in flight. After each
//! restart every client reconnects and resends what was not acknowledged,
//! with the same key, as PROTOCOL.md says a client should. In the end:
//! every message is stored exactly once, every acknowledgement matches what
//! is stored, ids and time stamps still strictly increase, and only one agent
//! ever wrote into the contested conversation.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_tests::*;

const CUSTOMERS: usize = 6;
const CRASHES: usize = 4;
/// New messages each customer pipelines in each round: enough that a crash
/// catches many in flight.
const PER_ROUND: usize = 150;

struct Customer {
    name: String,
    token: String,
    /// Every body this customer ever sent, indexed by key number.
    bodies: Vec<String>,
    /// Key number → the message its `sent` carried.
    acked: BTreeMap<usize, Value>,
}

impl Customer {
    fn pending(&self) -> Vec<Value> {
        (0..self.bodies.len())
            .filter(|key| !self.acked.contains_key(key))
            .map(|key| {
                json!({"type":"send","id":key,"key":format!("k{key}"),"body":self.bodies[key]})
            })
            .collect()
    }

    /// Records a `sent`; a repeated one (a resend) must carry the same message.
    fn record(&mut self, frame: &Value) {
        assert_eq!(frame["type"], "sent", "{}: {frame}", self.name);
        let key = frame["id"].as_u64().expect("numeric request id") as usize;
        let message = frame["message"].clone();
        assert_eq!(message["body"], self.bodies[key].as_str());
        if let Some(earlier) = self.acked.insert(key, message.clone()) {
            assert_eq!(earlier, message, "a resend answered with another message");
        }
    }
}

/// Reads until the connection closes (crash) or, with `until_done`, until
/// every message is acknowledged. Agents' replies are errors or `sent`.
async fn collect(customer: &mut Customer, client: &mut TestClient, until_done: bool) {
    while !(until_done && customer.acked.len() == customer.bodies.len()) {
        match client.next_frame_within(Duration::from_secs(10)).await {
            Some(Some(frame)) => customer.record(&frame),
            Some(None) => break,
            None => panic!("{}: no reply within 10 s", customer.name),
        }
    }
}

/// An agent's attempt to answer `user`: `Some(true)` stored, `Some(false)`
/// refused as assigned to the other agent, `None` cut off by the crash.
async fn answer(client: &mut TestClient, user: &str, key: &str) -> Option<bool> {
    client
        .send(&json!({"type":"send","id":key,"to":user,"body":key,"key":key}))
        .await;
    let frame = client.next_frame_within(Duration::from_secs(10)).await??;
    match frame["type"].as_str() {
        Some("sent") => Some(true),
        Some("assigned") => {
            let sent = client.next_frame_within(Duration::from_secs(10)).await??;
            assert_eq!(sent["type"], "sent", "{sent}");
            Some(true)
        }
        _ => {
            assert_eq!(frame["code"], "assigned_to_other", "{frame}");
            Some(false)
        }
    }
}

/// Every message of a conversation, oldest first, paging back with `before`.
async fn whole_conversation(client: &mut TestClient, user: &str) -> Vec<Value> {
    let mut all: Vec<Value> = Vec::new();
    loop {
        let mut page = json!({"limit": 1000});
        if let Some(oldest) = all.first() {
            page["before"] = json!(id_of(oldest));
        }
        let older = client.history(Some(user), page).await;
        if older.is_empty() {
            return all;
        }
        all.splice(0..0, older);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_nothing_and_doubles_nothing() {
    crash_repeatedly(CRASHES).await;
}

/// The long run behind `scripts/crash-test.sh`: `CRASH_TEST_KILLS` crashes
/// (default 50). Prints its figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: run with scripts/crash-test.sh"]
async fn kill_9_many_times_under_load() {
    let kills = std::env::var("CRASH_TEST_KILLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50);
    crash_repeatedly(kills).await;
}

async fn crash_repeatedly(crashes: usize) {
    let mut server = TestServer::start_with(NO_SEND_LIMITS);
    let tokens = [server.add_agent("alice"), server.add_agent("bob")];
    let mut customers = Vec::new();
    for i in 0..CUSTOMERS {
        let name = format!("u{i}");
        let (_, token) = unsubscribed_user(&server, &name).await;
        customers.push(Customer {
            name,
            token,
            bodies: Vec::new(),
            acked: BTreeMap::new(),
        });
    }

    let mut resent = 0;
    for round in 0..=crashes {
        let last_round = round == crashes;
        // Both agents try to answer the contested user u0.
        let mut agents = Vec::new();
        for (name, token) in ["alice", "bob"].iter().zip(&tokens) {
            let mut client = server.connect().await;
            client.hello_agent(name, token).await;
            agents.push(client);
        }
        let mut outcomes = Vec::new();
        for (agent, name) in agents.iter_mut().zip(["alice", "bob"]) {
            outcomes.push(answer(agent, "u0", &format!("{name}-r{round}")).await);
        }
        // Every customer reconnects and pipelines its unacknowledged messages
        // (same keys) plus new ones.
        let unacknowledged: usize = customers
            .iter()
            .map(|c| c.bodies.len() - c.acked.len())
            .sum();
        resent += unacknowledged;
        eprintln!("round {round}: resending {unacknowledged} unacknowledged messages");
        let mut clients = Vec::new();
        for customer in &mut customers {
            let mut client = server.connect().await;
            client.hello_user(&customer.name, &customer.token).await;
            for _ in 0..PER_ROUND {
                let key = customer.bodies.len();
                customer.bodies.push(format!("{} m{key}", customer.name));
            }
            client.send_many(&customer.pending()).await;
            clients.push(client);
        }
        if !last_round {
            // Crash once the first customer has 100 replies back: the others
            // have requests in every state (queued, committed, answered).
            for _ in 0..100 {
                let reply = clients[0].next_frame().await;
                customers[0].record(&reply.expect("a reply before the crash"));
            }
            server.kill9_and_restart();
        } else {
            assert!(
                outcomes.contains(&Some(true)) && outcomes.contains(&Some(false)),
                "with no crash one agent holds u0 and the other is refused: {outcomes:?}"
            );
        }
        for (customer, client) in customers.iter_mut().zip(&mut clients) {
            collect(customer, client, last_round).await;
        }
    }

    assert!(
        resent > 0,
        "no crash caught a message in flight: the test proved nothing"
    );

    // Every customer's conversation holds exactly what they sent, once each,
    // and every acknowledgement is what is stored.
    let mut client = server.connect().await;
    let token = &tokens[0];
    client.hello_agent("alice", token).await;
    let mut everything: Vec<Value> = Vec::new();
    for customer in &customers {
        assert_eq!(customer.acked.len(), customer.bodies.len());
        let history = whole_conversation(&mut client, &customer.name).await;
        let from_customer: Vec<&Value> = history.iter().filter(|m| m["from"] == "user").collect();
        let mut stored: Vec<&str> = from_customer
            .iter()
            .filter_map(|m| m["body"].as_str())
            .collect();
        stored.sort_unstable();
        let mut expected: Vec<&str> = customer.bodies.iter().map(String::as_str).collect();
        expected.sort_unstable();
        assert_eq!(
            stored, expected,
            "{}: lost or doubled messages",
            customer.name
        );
        for message in customer.acked.values() {
            assert!(
                history.contains(message),
                "acknowledged but not stored: {message}"
            );
        }
        // Only one agent ever wrote into this conversation.
        let writers: HashSet<&str> = history.iter().filter_map(|m| m["agent"].as_str()).collect();
        assert!(
            writers.len() <= 1,
            "{}: held by two agents: {writers:?}",
            customer.name
        );
        everything.extend(history);
    }

    // Across restarts, ids and time stamps still strictly increase together,
    // over every conversation at once.
    everything.sort_by_key(id_of);
    let total: usize = customers.iter().map(|c| c.bodies.len()).sum();
    assert!(everything.len() >= total);
    for pair in everything.windows(2) {
        assert!(id_of(&pair[0]) < id_of(&pair[1]), "ids are unique");
        assert!(
            pair[0]["ts"].as_str() < pair[1]["ts"].as_str(),
            "time stamps increase with ids: {} then {}",
            pair[0],
            pair[1]
        );
    }
    let acked: usize = customers.iter().map(|c| c.acked.len()).sum();
    eprintln!(
        "crash test: {crashes} kills survived, {acked} messages acknowledged, \
         {resent} resends after crashes, lost 0, duplicated 0"
    );
}
