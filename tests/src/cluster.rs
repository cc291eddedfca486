//! Several nodes on one PostgreSQL database, for the cluster tests (issue
//! 16), and the client helpers those tests share: in a cluster, events from
//! other nodes (presence, the agent count) arrive whenever their batch
//! does, so these helpers pass over what a test does not wait for.

use std::time::Duration;

use serde_json::{Value, json};

use crate::client::{RECV_TIMEOUT, TestClient};
use crate::flags::NO_SEND_LIMITS;
use crate::nats::TestNats;
use crate::server::TestServer;
use crate::shared_postgres::fresh_database;

/// A help desk of `nodes` nodes on one fresh database, on `nats` when given.
pub struct Cluster {
    pub nodes: Vec<TestServer>,
}

impl Cluster {
    /// `None` only when PostgreSQL is missing and the cluster tests may
    /// be skipped.
    pub fn start(nodes: usize, nats: Option<&TestNats>) -> Option<Cluster> {
        Cluster::start_with(nodes, nats, &[])
    }

    /// [`Cluster::start`] with extra `serve` flags on every node.
    pub fn start_with(nodes: usize, nats: Option<&TestNats>, extra: &[&str]) -> Option<Cluster> {
        let url = fresh_database()?;
        let nats_url = nats.map(TestNats::url);
        let mut args: Vec<&str> = NO_SEND_LIMITS.to_vec();
        args.extend(extra);
        if let Some(nats_url) = &nats_url {
            args.extend(["--nats", nats_url]);
        }
        let nodes = (0..nodes)
            .map(|_| TestServer::start_on_database(&args, &url))
            .collect();
        Some(Cluster { nodes })
    }

    /// Node `index`, counted round the cluster.
    pub fn node(&self, index: usize) -> &TestServer {
        &self.nodes[index % self.nodes.len()]
    }
}

/// The bus for a test, or `None` when nats-server is missing and the
/// cluster tests may be skipped.
pub fn bus() -> Option<TestNats> {
    TestNats::start()
}

/// Every way a test runs: with the bus, and without it.
pub async fn with_and_without_bus<F, Fut>(nodes: usize, test: F)
where
    F: Fn(Cluster) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Some(nats) = bus() else { return };
    let Some(cluster) = Cluster::start(nodes, Some(&nats)) else {
        return;
    };
    test(cluster).await;
    let Some(cluster) = Cluster::start(nodes, None) else {
        return;
    };
    test(cluster).await;
}

/// Sends `frame` with a new id and returns its reply, passing over the
/// events that arrive first (presence, other messages).
pub async fn reply_to(client: &mut TestClient, mut frame: Value) -> Value {
    let id = json!(client.request_id());
    frame["id"] = id.clone();
    client.send(&frame).await;
    loop {
        let next = client.recv().await;
        if next["id"] == id {
            return next;
        }
    }
}

/// The next `message` event's message, passing over other events.
pub async fn next_message(client: &mut TestClient) -> Value {
    loop {
        let next = client.recv().await;
        if next["type"] == "message" {
            return next["message"].clone();
        }
    }
}

pub fn number(frame: &Value, field: &str) -> u64 {
    frame[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no {field} in {frame}"))
}

/// The next frame of `kind`, passing over others.
pub async fn next_of(client: &mut TestClient, kind: &str) -> Value {
    next_of_within(client, kind, RECV_TIMEOUT).await
}

/// The next frame of `kind` within `wait`, passing over others.
pub async fn next_of_within(client: &mut TestClient, kind: &str, wait: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match client.next_frame_within(left).await {
            Some(Some(next)) if next["type"] == kind => return next,
            Some(Some(_)) => {}
            Some(None) => panic!("the connection closed before a {kind} frame"),
            None => panic!("no {kind} frame within {wait:?}"),
        }
    }
}
