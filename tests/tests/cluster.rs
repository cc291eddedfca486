//! Several nodes on one PostgreSQL database (issue 16): the contract of
//! docs/protocol.md holds whichever node each client is on, with the NATS
//! bus between the nodes and without it (the nodes then read each other's
//! commits from the database), and while the bus is down.
//!
//! Each test starts its own nodes on a fresh database of the shared
//! throwaway PostgreSQL, with a throwaway `nats-server` when it needs one.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_tests::*;

/// Every node takes its own node id, and says it joined the cluster.
#[tokio::test]
async fn each_node_joins_with_an_id_of_its_own() {
    let Some(cluster) = Cluster::start(2, None) else {
        return;
    };
    let first = cluster.node(0).log_line("joined the cluster");
    let second = cluster.node(1).log_line("joined the cluster");
    assert_ne!(first, second, "two nodes, two ids");
}

/// A user on one node, an agent on another: the message, the answer, the
/// `assigned` and the `sent` each reach whom they must.
#[tokio::test]
async fn a_conversation_spans_nodes() {
    with_and_without_bus(2, |cluster| async move {
        let token = cluster.node(0).add_agent("alice");
        let mut alice = agent(cluster.node(0), "alice", &token).await;
        let (mut ana, _) = user(cluster.node(1), "ana").await;
        let question = reply_to(&mut ana, json!({"type":"send","body":"where is my order?"})).await;
        assert_eq!(next_message(&mut alice).await, question["message"]);
        let answer = reply_to(
            &mut alice,
            json!({"type":"send","to":"ana","body":"on its way"}),
        )
        .await;
        assert_eq!(answer["type"], "sent", "{answer}");
        assert_eq!(
            next_of(&mut ana, "assigned").await,
            assigned("ana", "alice")
        );
        assert_eq!(next_message(&mut ana).await, answer["message"]);
    })
    .await;
}

/// Users on three nodes send at once; an agent on each node sees every
/// message once, ids strictly rising, time stamps rising with them.
#[tokio::test]
async fn ids_and_time_stamps_rise_in_commit_order_across_nodes() {
    with_and_without_bus(3, |cluster| async move {
        let tokens: Vec<String> = (0..3)
            .map(|index| cluster.node(0).add_agent(&format!("agent{index}")))
            .collect();
        let mut agents = Vec::new();
        for (index, token) in tokens.iter().enumerate() {
            agents.push(agent(cluster.node(index), &format!("agent{index}"), token).await);
        }
        let mut senders = Vec::new();
        for index in 0..3 {
            let (client, _) = user(cluster.node(index), &format!("user{index}")).await;
            senders.push(client);
        }
        const EACH: usize = 30;
        let mut sending = tokio::task::JoinSet::new();
        for mut client in senders {
            sending.spawn(async move {
                for body in numbered("m", EACH) {
                    let sent = reply_to(&mut client, json!({"type":"send","body":body})).await;
                    assert_eq!(sent["type"], "sent", "{sent}");
                }
            });
        }
        sending.join_all().await;
        for watcher in &mut agents {
            let mut seen = Vec::new();
            while seen.len() < 3 * EACH {
                let frame = watcher.recv().await;
                if frame["type"] == "message" {
                    seen.push(frame["message"].clone());
                }
            }
            let ids: Vec<u64> = seen.iter().map(|message| number(message, "id")).collect();
            assert!(
                ids.windows(2).all(|pair| pair[0] < pair[1]),
                "ids rise: {ids:?}"
            );
            let stamps: Vec<&str> = seen
                .iter()
                .map(|message| message["ts"].as_str().expect("a ts"))
                .collect();
            assert!(
                stamps.windows(2).all(|pair| pair[0] < pair[1]),
                "time stamps rise with ids: {stamps:?}"
            );
        }
    })
    .await;
}

/// A key sent to one node and resent to another is stored once, and the
/// second node answers with the original message.
#[tokio::test]
async fn a_key_resent_to_another_node_is_stored_once() {
    with_and_without_bus(2, |cluster| async move {
        let (mut first, token) = user(cluster.node(0), "ana").await;
        let original = reply_to(&mut first, json!({"type":"send","key":"k1","body":"hello"})).await;
        assert_eq!(original["type"], "sent", "{original}");
        drop(first);
        let mut second = user_again(cluster.node(1), "ana", &token).await;
        let again = reply_to(
            &mut second,
            json!({"type":"send","key":"k1","body":"hello"}),
        )
        .await;
        assert_eq!(again["message"], original["message"]);
        let history = second.history(None, json!({})).await;
        assert_eq!(history.len(), 1, "stored once: {history:?}");
    })
    .await;
}

/// Two agents on two nodes answer one unheld user at once, many times over:
/// each time exactly one wins, and the other is refused.
#[tokio::test]
async fn racing_agents_on_two_nodes_exactly_one_wins() {
    with_and_without_bus(2, |cluster| async move {
        let alice_token = cluster.node(0).add_agent("alice");
        let bob_token = cluster.node(0).add_agent("bob");
        let mut alice = agent(cluster.node(0), "alice", &alice_token).await;
        let mut bob = agent(cluster.node(1), "bob", &bob_token).await;
        for round in 0..10 {
            let name = format!("user{round}");
            let (mut customer, _) = user(cluster.node(round), &name).await;
            reply_to(&mut customer, json!({"type":"send","body":"help"})).await;
            let ask = |name: &str| json!({"type":"send","to":name,"body":"mine"});
            let (a, b) = tokio::join!(
                reply_to(&mut alice, ask(&name)),
                reply_to(&mut bob, ask(&name))
            );
            let won: Vec<&Value> = [&a, &b]
                .into_iter()
                .filter(|reply| reply["type"] == "sent")
                .collect();
            assert_eq!(won.len(), 1, "one winner: {a} / {b}");
            let lost = if a["type"] == "sent" { &b } else { &a };
            assert_eq!(lost["code"], "assigned_to_other", "{lost}");
        }
    })
    .await;
}

/// A `since` resume on another node misses nothing and repeats nothing.
#[tokio::test]
async fn subscribe_since_on_another_node_misses_nothing() {
    with_and_without_bus(2, |cluster| async move {
        let token = cluster.node(0).add_agent("alice");
        let mut alice = agent(cluster.node(0), "alice", &token).await;
        let (mut ana, _) = user(cluster.node(0), "ana").await;
        let first = reply_to(&mut ana, json!({"type":"send","body":"one"})).await;
        let first = first["message"].clone();
        assert_eq!(next_message(&mut alice).await, first);
        let last_seen = number(&first, "id");
        drop(alice);
        // Ana hears alice go; `reply_to` passes over that.
        let send = json!({"type":"send","body":"two"});
        reply_to(&mut ana, send).await;
        let send = json!({"type":"send","body":"three"});
        reply_to(&mut ana, send).await;
        let mut again = TestClient::connect(cluster.node(1).addr()).await;
        again.hello_agent("alice", &token).await;
        let (backlog, _) = again.subscribe_with(json!({"since": last_seen})).await;
        assert_eq!(bodies(&messages_in(&backlog)), ["two", "three"]);
        let four = reply_to(&mut ana, json!({"type":"send","body":"four"})).await;
        assert_eq!(next_message(&mut again).await, four["message"]);
    })
    .await;
}

/// How the bus fails in a test.
#[derive(Clone, Copy, Debug)]
enum BusFailure {
    /// Killed: connections drop at once.
    Stopped,
    /// SIGSTOP: connections stay open and nothing is answered, until the
    /// pings go unanswered.
    Frozen,
}

/// The bus fails under a running cluster and comes back: nothing is lost,
/// delivery goes on through the database meanwhile, and no node restarts.
async fn delivery_survives_the_bus(failure: BusFailure) {
    let Some(mut nats) = bus() else { return };
    let Some(cluster) = Cluster::start(2, Some(&nats)) else {
        return;
    };
    let token = cluster.node(0).add_agent("alice");
    let mut alice = agent(cluster.node(0), "alice", &token).await;
    let (mut ana, _) = user(cluster.node(1), "ana").await;
    let mut expected = HashSet::new();
    let send = async |ana: &mut TestClient, body: &str| {
        let sent = reply_to(ana, json!({"type":"send","body":body})).await;
        number(&sent["message"], "id")
    };
    expected.insert(send(&mut ana, "before").await);
    match failure {
        BusFailure::Stopped => nats.stop(),
        BusFailure::Frozen => nats.freeze(),
    }
    for index in 0..5 {
        expected.insert(send(&mut ana, &format!("down {index}")).await);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    match failure {
        BusFailure::Stopped => nats.start_again(),
        BusFailure::Frozen => nats.thaw(),
    }
    for index in 0..5 {
        expected.insert(send(&mut ana, &format!("back {index}")).await);
    }
    let mut got = Vec::new();
    while got.len() < expected.len() {
        got.push(number(&next_message(&mut alice).await, "id"));
    }
    assert!(
        got.windows(2).all(|pair| pair[0] < pair[1]),
        "{failure:?}: {got:?}"
    );
    assert_eq!(
        got.into_iter().collect::<HashSet<_>>(),
        expected,
        "{failure:?}"
    );
}

#[tokio::test]
async fn delivery_goes_on_while_the_bus_is_down_and_after_it_is_back() {
    delivery_survives_the_bus(BusFailure::Stopped).await;
}

#[tokio::test]
async fn delivery_goes_on_while_the_bus_is_frozen_and_after_it_thaws() {
    delivery_survives_the_bus(BusFailure::Frozen).await;
}

/// How long a swept node's users take to go offline elsewhere, at most:
/// the lease (5 s), a renewal (1 s), the sweep through the feed, the
/// presence grace (2 s), with room for a loaded machine.
const SWEPT_WITHIN: Duration = Duration::from_secs(20);

/// Presence and `agents_online` count every node's connections: an agent
/// hears a user on another node come and go, and a user hears agents
/// online on other nodes.
#[tokio::test]
async fn presence_and_agents_online_count_every_node() {
    with_and_without_bus(2, |cluster| async move {
        let token = cluster.node(0).add_agent("alice");
        let mut alice = agent(cluster.node(0), "alice", &token).await;
        let mut ana = TestClient::connect(cluster.node(1).addr()).await;
        let (_, welcome) = ana.hello_new_user("ana").await;
        ana.subscribe().await;
        assert_eq!(next_of(&mut alice, "presence").await, presence("ana", true));
        // Alice is online on the other node: counted as soon as her record
        // reaches this one through the feed.
        if welcome["agents_online"] != 1 {
            assert_eq!(
                next_of(&mut ana, "agents").await,
                json!({"type":"agents","online":1})
            );
        }
        let mut ben = TestClient::connect(cluster.node(1).addr()).await;
        let (_, welcome) = ben.hello_new_user("ben").await;
        assert_eq!(welcome["agents_online"], 1, "{welcome}");
        ben.subscribe().await;
        assert_eq!(next_of(&mut alice, "presence").await, presence("ben", true));
        ana.bye().await;
        assert_eq!(
            next_of(&mut alice, "presence").await,
            presence("ana", false)
        );
        drop(alice);
        assert_eq!(
            next_of(&mut ben, "agents").await,
            json!({"type":"agents","online":0})
        );
    })
    .await;
}

/// A node frozen past its lease (SIGSTOP) is swept: its users go offline
/// on every other node. Woken, it does not serve what may be stale: it
/// closes its connections, saying why, and serves new ones.
#[tokio::test]
async fn a_node_frozen_past_its_lease_is_swept_and_closes_its_clients_on_waking() {
    let Some(nats) = bus() else { return };
    let Some(cluster) = Cluster::start(2, Some(&nats)) else {
        return;
    };
    let token = cluster.node(0).add_agent("alice");
    let mut alice = agent(cluster.node(0), "alice", &token).await;
    let (mut ana, ana_token) = user(cluster.node(1), "ana").await;
    assert_eq!(next_of(&mut alice, "presence").await, presence("ana", true));
    cluster.node(1).signal("STOP");
    // The lease (5 s) runs out, a renewal of the other node sees it, and
    // the sweep goes through the feed; then the grace (2 s).
    assert_eq!(
        next_of_within(&mut alice, "presence", SWEPT_WITHIN).await,
        presence("ana", false)
    );
    cluster.node(1).signal("CONT");
    let bye = next_of(&mut ana, "bye").await;
    assert!(
        bye["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("lost its place")),
        "{bye}"
    );
    let mut again = user_again(cluster.node(1), "ana", &ana_token).await;
    assert_eq!(next_of(&mut alice, "presence").await, presence("ana", true));
    let hello = reply_to(&mut again, json!({"type":"send","body":"back"})).await;
    assert_eq!(next_message(&mut alice).await, hello["message"]);
}

/// Scrapes node `index`'s `/metrics` until `holds` is true of it, within
/// [`SWEPT_WITHIN`] (the bus's loss is noticed by the NATS client's pings).
async fn scrape_until(
    cluster: &Cluster,
    index: usize,
    holds: impl Fn(&HttpReply) -> bool,
) -> HttpReply {
    let addr = cluster.node(index).metrics_addr();
    let deadline = tokio::time::Instant::now() + SWEPT_WITHIN;
    loop {
        let scrape = http_get(addr, "/metrics").await;
        if holds(&scrape) {
            return scrape;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never held:\n{}",
            scrape.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Each node reports its place in the cluster: how far its feed is behind,
/// whether its bus is connected, its lease's age; the bus's loss shows.
#[tokio::test]
async fn each_node_reports_its_feed_its_bus_and_its_lease() {
    let Some(mut nats) = bus() else { return };
    let metrics = ["--metrics-listen", "127.0.0.1:0"];
    let Some(cluster) = Cluster::start_with(2, Some(&nats), &metrics) else {
        return;
    };
    let (mut ana, _) = user(cluster.node(1), "ana").await;
    reply_to(&mut ana, json!({"type":"send","body":"hello"})).await;
    let scrape = scrape_until(&cluster, 0, |scrape| {
        scrape.sample("switchboard_cluster_bus_connected") == 1.0
            && scrape.sample("switchboard_cluster_lease_age_seconds") < 5.0
            && scrape.sample("switchboard_cluster_feed_behind") == 0.0
    })
    .await;
    assert_eq!(scrape.sample("switchboard_healthy"), 1.0);
    nats.stop();
    scrape_until(&cluster, 0, |scrape| {
        scrape.sample("switchboard_cluster_bus_connected") == 0.0
    })
    .await;
}
