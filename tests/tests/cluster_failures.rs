//! A cluster under failure (issue 16): a node killed under load, a
//! reconnect storm onto the survivors. The bus stopping and a node frozen
//! past its lease are in `cluster.rs`.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_tests::*;

/// How long a client waits for its reply across a node's death: the
/// reconnect, a new sign-in, a commit, with room for a loaded machine.
const REPLY_WITHIN: Duration = Duration::from_secs(15);

/// A user that sends `count` messages, each with a key, one at a time;
/// when its connection dies it signs in on the next address and sends the
/// unanswered one again, with the same key; one answered `internal` it
/// sends again too. Returns the ids acknowledged, and how many times it
/// had to connect again.
async fn keyed_sender(
    name: String,
    token: String,
    mut addrs: Vec<SocketAddr>,
    count: usize,
) -> (Vec<u64>, usize) {
    let mut client = signed_in(&name, &token, addrs[0]).await;
    let mut acked = Vec::new();
    let mut reconnects = 0;
    while acked.len() < count {
        let index = acked.len();
        let frame = json!({"type":"send","id":index,"key":format!("k{index}"),"body":format!("{name} {index}")});
        let mut line = serde_json::to_vec(&frame).expect("a frame");
        line.push(b'\n');
        let answered = match client.try_send_raw(&line).await {
            Ok(()) => reply(&mut client, index).await,
            Err(_) => None,
        };
        match answered {
            Some(reply) if reply["type"] == "sent" => acked.push(number(&reply["message"], "id")),
            // Not stored (the database down): the same key again, soon.
            Some(reply) if reply["code"] == "internal" => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Some(reply) => panic!("{name}: {reply}"),
            None => {
                // The node is gone: the next one, the same key.
                addrs.rotate_left(1);
                reconnects += 1;
                client = signed_in(&name, &token, addrs[0]).await;
            }
        }
    }
    (acked, reconnects)
}

async fn signed_in(name: &str, token: &str, addr: SocketAddr) -> TestClient {
    let mut client = TestClient::connect(addr).await.labelled(name);
    client.hello_user(name, token).await;
    client
}

/// The reply to request `index`, passing over events; `None` once the
/// connection is closed.
async fn reply(client: &mut TestClient, index: usize) -> Option<Value> {
    loop {
        match client.next_frame_within(REPLY_WITHIN).await {
            Some(Some(frame)) if frame["id"] == json!(index) => return Some(frame),
            Some(Some(_)) => {}
            Some(None) => return None,
            None => panic!("no reply to request {index} within {REPLY_WITHIN:?}"),
        }
    }
}

/// An agent that records every message id it is sent, live or in a
/// backlog, until it has `total`; when its connection dies it signs in on
/// the next address and resumes with `since` its last id.
async fn resuming_agent(
    name: &str,
    token: &str,
    mut addrs: Vec<SocketAddr>,
    total: usize,
) -> Vec<u64> {
    let mut seen = Vec::new();
    let mut client = agent_at(name, token, addrs[0], None, &mut seen).await;
    while seen.len() < total {
        match client.next_frame_within(REPLY_WITHIN).await {
            Some(Some(frame)) if frame["type"] == "message" => {
                seen.push(number(&frame["message"], "id"));
            }
            Some(Some(_)) => {}
            Some(None) => {
                addrs.rotate_left(1);
                let since = seen.last().copied();
                client = agent_at(name, token, addrs[0], since, &mut seen).await;
            }
            None => panic!("{name}: {} of {total} messages, then nothing", seen.len()),
        }
    }
    seen
}

async fn agent_at(
    name: &str,
    token: &str,
    addr: SocketAddr,
    since: Option<u64>,
    seen: &mut Vec<u64>,
) -> TestClient {
    let mut client = TestClient::connect(addr).await.labelled(name);
    client.hello_agent(name, token).await;
    let extra = since.map_or(json!({}), |since| json!({ "since": since }));
    let (backlog, _) = client.subscribe_with(extra).await;
    seen.extend(messages_in(&backlog).iter().map(|m| number(m, "id")));
    client
}

/// `kill -9` of a node while its users send: they sign in on another node
/// and resend what was not answered, with its key; an agent on the dead
/// node resumes elsewhere with `since`. Nothing acknowledged is lost,
/// nothing is stored twice, and each agent sees every message once, ids
/// strictly rising.
#[tokio::test]
async fn a_node_killed_under_load_loses_nothing_and_stores_nothing_twice() {
    let Some(nats) = bus() else { return };
    let Some(cluster) = Cluster::start(3, Some(&nats)) else {
        return;
    };
    const USERS: usize = 6;
    const EACH: usize = 150;
    let total = USERS * EACH;
    let addr = |index: usize| cluster.node(index).addr();
    let survivors = vec![addr(0), addr(1)];
    let alice_token = cluster.node(0).add_agent("alice");
    let bob_token = cluster.node(0).add_agent("bob");
    let alice = tokio::spawn({
        let addrs = survivors.clone();
        async move { resuming_agent("alice", &alice_token, addrs, total).await }
    });
    let bob = tokio::spawn({
        let addrs = vec![addr(2), addr(1), addr(0)];
        async move { resuming_agent("bob", &bob_token, addrs, total).await }
    });
    let mut senders = tokio::task::JoinSet::new();
    for index in 0..USERS {
        let name = format!("user{index}");
        let (client, token) = user(cluster.node(2), &name).await;
        drop(client);
        // Two of three users are on the node that dies.
        let first = if index % 3 == 0 { addr(1) } else { addr(2) };
        let addrs = vec![first, addr(0), addr(1)];
        senders.spawn(keyed_sender(name, token, addrs, EACH));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    cluster.node(2).signal("KILL");
    let acked: Vec<u64> = senders
        .join_all()
        .await
        .into_iter()
        .flat_map(|(acked, _)| acked)
        .collect();
    assert_eq!(acked.len(), total);
    let acked: BTreeSet<u64> = acked.into_iter().collect();
    assert_eq!(acked.len(), total, "no id acknowledged twice");
    for (name, seen) in [
        ("alice", alice.await.expect("alice")),
        ("bob", bob.await.expect("bob")),
    ] {
        assert!(
            seen.windows(2).all(|pair| pair[0] < pair[1]),
            "{name}: every message once, ids rising: {seen:?}"
        );
        // A message stored twice (a resend without its key taking) would
        // be an id seen here and never acknowledged.
        let seen: BTreeSet<u64> = seen.into_iter().collect();
        assert_eq!(seen, acked, "{name} saw exactly what was acknowledged");
    }
}

/// A node holding hundreds of clients dies; they all reconnect to the
/// survivors at once, backing off with jitter. Every one gets its greeting
/// and signs in, and a client already on a survivor keeps being answered.
#[tokio::test]
async fn a_reconnect_storm_onto_the_survivors_serves_every_client() {
    let Some(nats) = bus() else { return };
    // Every client here comes from 127.0.0.1, where a real storm comes
    // from as many addresses as clients: the per-address caps are lifted.
    let per_address_caps_off = [
        "--signups-per-minute",
        "0",
        "--signups-per-minute-total",
        "0",
        "--max-connections-per-address",
        "0",
        "--connections-per-second-per-address",
        "100000",
        "--connection-burst-per-address",
        "100000",
    ];
    let Some(cluster) = Cluster::start_with(3, Some(&nats), &per_address_caps_off) else {
        return;
    };
    const CLIENTS: usize = 300;
    let dying = cluster.node(2).addr();
    let survivors = [cluster.node(0).addr(), cluster.node(1).addr()];
    let mut tokens = Vec::new();
    let mut held = Vec::new();
    for index in 0..CLIENTS {
        let name = format!("u{index}");
        let mut client = TestClient::connect(dying).await;
        let (token, _) = client.hello_new_user(&name).await;
        tokens.push((name, token));
        held.push(client);
    }
    let (mut steady, _) = user(cluster.node(0), "steady").await;
    cluster.node(2).signal("KILL");
    let mut storm = tokio::task::JoinSet::new();
    for (index, (name, token)) in tokens.into_iter().enumerate() {
        let addr = survivors[index % 2];
        storm.spawn(async move {
            let mut client = TestClient::connect(addr).await;
            client.hello_user(&name, &token).await;
            client
        });
    }
    // Meanwhile the steady client is answered.
    for index in 0..20 {
        let sent = reply_to(
            &mut steady,
            json!({"type":"send","body":format!("s{index}")}),
        )
        .await;
        assert_eq!(sent["type"], "sent", "{sent}");
    }
    let reconnected = storm.join_all().await;
    assert_eq!(reconnected.len(), CLIENTS, "every client signed in again");
    drop(held);
}

/// PostgreSQL stops under a loaded cluster for longer than a lease: sends
/// are answered `internal` (nothing is acknowledged that was not
/// committed), every connection stays open, no node sweeps another when
/// it is back, and the nodes carry on without a restart with everything
/// acknowledged there, once, in every agent's stream.
#[tokio::test]
async fn postgres_stopped_under_load_loses_nothing_and_closes_nothing() {
    let Some(nats) = bus() else { return };
    let Some(mut postgres) = TestPostgres::start() else {
        return;
    };
    postgres.create_database("desk");
    let url = postgres.database_url("desk");
    let mut args: Vec<&str> = NO_SEND_LIMITS.to_vec();
    let nats_url = nats.url();
    args.extend(["--nats", &nats_url]);
    let nodes = [
        TestServer::start_on_database(&args, &url),
        TestServer::start_on_database(&args, &url),
    ];
    const USERS: usize = 4;
    const EACH: usize = 60;
    let token = nodes[0].add_agent("alice");
    let alice = tokio::spawn({
        let addrs = vec![nodes[0].addr()];
        async move { resuming_agent("alice", &token, addrs, USERS * EACH).await }
    });
    let mut senders = tokio::task::JoinSet::new();
    for index in 0..USERS {
        let name = format!("user{index}");
        let (client, token) = user(&nodes[1], &name).await;
        drop(client);
        let addrs = vec![nodes[index % 2].addr()];
        senders.spawn(keyed_sender(name, token, addrs, EACH));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    postgres.stop();
    // Past a lease (5 s): every node's lease has run out when it is back.
    tokio::time::sleep(Duration::from_secs(6)).await;
    postgres.start_again();
    let results = senders.join_all().await;
    let reconnects: usize = results.iter().map(|(_, reconnects)| reconnects).sum();
    assert_eq!(reconnects, 0, "no connection was closed");
    let acked: BTreeSet<u64> = results.into_iter().flat_map(|(acked, _)| acked).collect();
    assert_eq!(acked.len(), USERS * EACH);
    let seen = alice.await.expect("alice");
    assert!(seen.windows(2).all(|pair| pair[0] < pair[1]), "{seen:?}");
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), acked);
    for node in &nodes {
        assert!(
            !node.recent_log().contains("lost its lease"),
            "no node was swept"
        );
    }
}

/// Auto-release (protocol version 2) across a node's death: the holder's
/// only connection was on the node that dies, and its conversation is not
/// released early: the agent counts as present until the node's lease
/// runs out and any survivor sweeps its connections; only then does the
/// `--release-after` clock start. The survivors then release it, once.
#[tokio::test]
async fn a_dead_nodes_agent_keeps_its_conversations_until_the_lease_and_the_limit_are_out() {
    /// The node's lease (`shared_feed::LEASE`).
    const LEASE: Duration = Duration::from_secs(5);
    let Some(nats) = bus() else { return };
    let Some(cluster) = Cluster::start_with(2, Some(&nats), &["--release-after", "1"]) else {
        return;
    };
    let alice_token = cluster.node(0).add_agent("alice");
    let bob_token = cluster.node(0).add_agent("bob");
    let mut seen = Vec::new();
    let mut bob = agent_at("bob", &bob_token, cluster.node(0).addr(), None, &mut seen).await;
    let mut alice = agent_at(
        "alice",
        &alice_token,
        cluster.node(1).addr(),
        None,
        &mut seen,
    )
    .await;
    let (mut ana, _) = user(cluster.node(0), "ana").await;
    ana.send_message("hello?").await;
    let claimed = reply_to(&mut alice, json!({"type":"claim","user":"ana"})).await;
    assert_eq!(claimed["type"], "assigned", "{claimed}");
    assert_eq!(next_of(&mut bob, "assigned").await["agent"], "alice");
    let killed = std::time::Instant::now();
    cluster.node(1).signal("KILL");
    drop(alice);
    let released = next_of_within(&mut bob, "released", Duration::from_secs(40)).await;
    assert_eq!(
        released,
        json!({"type":"released","user":"ana","agent":"alice","reason":"agent_offline"})
    );
    assert!(
        killed.elapsed() >= LEASE,
        "released {:?} after the node died, within its lease",
        killed.elapsed()
    );
    assert_eq!(next_of(&mut ana, "released").await, released);
    bob.barrier().await;
}
