//! The cluster's bus on the wire (issue 16): core NATS publish and
//! subscribe, carrying each node's committed batches to every node. Not
//! wired into a node yet; `bus.rs` says where it goes.
//!
//! NATS is never the truth: core NATS delivers at most once and stores
//! nothing, so a node reads what the bus lost back from the database
//! (`feed_order.rs` names the range). What a node needs from this file is
//! therefore small: publish a batch without waiting on the bus, receive
//! every node's batches, and know whether the bus is up, so that it can
//! poll the database while it is not and probe it once the bus is back
//! (a batch published while a node was cut off never reaches it).
//!
//! A node starts even while NATS is down (the client keeps trying, without
//! end, with backoff): a cluster without its bus is slower, not wrong.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use thiserror::Error;
use tokio::sync::watch;

/// The subject every node publishes its batches on and listens to.
pub const FEED_SUBJECT: &str = "switchboard.feed";

/// How often the client pings the server: a frozen NATS (SIGSTOP, a stuck
/// host) keeps its TCP connection open and is noticed only by unanswered
/// pings, and until then batches published to it are lost to every node.
/// Measured: a frozen NATS is noticed after 3 s (`server/tests/nats_bus.rs`).
const PING_INTERVAL: Duration = Duration::from_secs(1);

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Batches received and not yet taken by the node, per subscription. Past
/// it the client drops them (NATS reports a slow consumer) and the node
/// reads them back from the database: a bound, not a loss.
const RECEIVE_CAPACITY: usize = 16_384;

/// Why the bus could not be used.
#[derive(Debug, Error)]
pub enum BusError {
    #[error(
        "the NATS address {url} is not valid ({reason}); give --nats as \
         nats://host:port"
    )]
    Address { url: String, reason: String },
    #[error("cannot subscribe to the cluster's feed on NATS: {0}")]
    Subscribe(String),
    #[error("NATS did not take a batch ({0}); the other nodes will read it from the database")]
    Publish(String),
}

/// One node's connection to the bus.
#[derive(Clone)]
pub struct NatsBus {
    client: async_nats::Client,
    up: watch::Receiver<bool>,
}

/// The batches every node (this one too) publishes, as they arrive.
pub struct NatsFeed(async_nats::Subscriber);

impl NatsFeed {
    /// The next batch's bytes; `None` once the bus is closed for good.
    pub async fn next(&mut self) -> Option<Bytes> {
        self.0.next().await.map(|message| message.payload)
    }
}

impl NatsBus {
    /// Connects as `node` (the name NATS shows for this client) and
    /// subscribes to the feed. Returns at once when NATS is down: the
    /// client keeps trying in the background, and [`NatsBus::up`] says
    /// when it is through.
    pub async fn connect(url: &str, node: &str) -> Result<(NatsBus, NatsFeed), BusError> {
        let (up_sender, up) = watch::channel(false);
        let shown = without_credentials(url);
        let events_url = shown.clone();
        let client = async_nats::ConnectOptions::new()
            .name(node)
            .ping_interval(PING_INTERVAL)
            .connection_timeout(CONNECT_TIMEOUT)
            .subscription_capacity(RECEIVE_CAPACITY)
            .retry_on_initial_connect()
            .max_reconnects(None)
            .event_callback(move |event| {
                let up_sender = up_sender.clone();
                let url = events_url.clone();
                async move { on_event(&event, &url, &up_sender) }
            })
            .connect(url)
            .await
            .map_err(|error| BusError::Address {
                url: shown,
                reason: error.to_string(),
            })?;
        let subscriber = client
            .subscribe(FEED_SUBJECT)
            .await
            .map_err(|error| BusError::Subscribe(error.to_string()))?;
        Ok((NatsBus { client, up }, NatsFeed(subscriber)))
    }

    /// Publishes one batch (`feed_wire::encode`). Waits only while the
    /// client's own queue is full; a batch published while NATS is down is
    /// lost to the bus, never to the cluster.
    pub async fn publish(&self, batch: Bytes) -> Result<(), BusError> {
        self.client
            .publish(FEED_SUBJECT, batch)
            .await
            .map_err(|error| BusError::Publish(error.to_string()))
    }

    /// Whether the bus is connected now, and a way to wait for a change.
    pub fn up(&self) -> watch::Receiver<bool> {
        self.up.clone()
    }

    /// Sends whatever the client still holds; for a clean shutdown.
    pub async fn flush(&self) -> Result<(), BusError> {
        self.client
            .flush()
            .await
            .map_err(|error| BusError::Publish(error.to_string()))
    }
}

/// What the client reports about its connection, logged once and kept in
/// `up`.
fn on_event(event: &async_nats::Event, url: &str, up: &watch::Sender<bool>) {
    match event {
        async_nats::Event::Connected => {
            tracing::info!(%url, "connected to the bus");
            up.send_replace(true);
        }
        async_nats::Event::Disconnected | async_nats::Event::Closed => {
            tracing::warn!(
                %url,
                "lost the bus: other nodes' messages now come from the database, more slowly; \
                 reconnecting"
            );
            up.send_replace(false);
        }
        other => tracing::warn!(%url, "bus: {other}"),
    }
}

/// `url` without a user name or password, for logs and errors.
fn without_credentials(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://{}", &url[..scheme], &url[at + 1..])
        }
        (None, Some(at)) => url[at + 1..].to_owned(),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_reach_a_log_line() {
        assert_eq!(
            without_credentials("nats://sb:s3cret@10.0.0.5:4222"),
            "nats://10.0.0.5:4222"
        );
        assert_eq!(without_credentials("tok@host:4222"), "host:4222");
        assert_eq!(
            without_credentials("nats://127.0.0.1:4222"),
            "nats://127.0.0.1:4222"
        );
    }
}
