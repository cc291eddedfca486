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
//! end, with backoff): a cluster without its bus is slower, not wrong. And
//! a node never waits on its bus: a publish waits at most [`SEND_WAIT`], and
//! none is tried while the bus is down.
//!
//! What an operator must give the bus, before it is wired in (issue 16):
//! NATS with credentials (and TLS off loopback), because a node delivers the
//! batches it hears as committed, and anyone who can publish on
//! the feed's subject could otherwise forge them; and a `max_payload` above the
//! largest batch (a group of up to 1,024 sends of up to `--max-body`
//! characters can pass nats-server's default 1 MB), or batches split below
//! it. A batch NATS refuses is read back by the other nodes, so neither
//! loses a message; both cost delivery latency.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_nats::ConnectErrorKind;
use bytes::Bytes;
use futures::StreamExt;
use thiserror::Error;
use tokio::sync::watch;

/// The subjects the nodes publish their batches on and listen to: one per
/// help desk, [`FEED_SUBJECT`] followed by its database's cluster id
/// (`sb_cluster`), so that help desks sharing one NATS never hear each
/// other's batches.
pub const FEED_SUBJECT: &str = "switchboard.feed";

/// The feed subject of the help desk whose database has `cluster` as its id.
pub fn feed_subject(cluster: &str) -> String {
    format!("{FEED_SUBJECT}.{cluster}")
}

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

/// Batches the client may hold for sending. While NATS is down the client
/// stops sending them (it is reconnecting), so this is also what an outage
/// can make a node hold: small, because a batch the bus does not carry is
/// read back from the database by every other node anyway.
const SEND_CAPACITY: usize = 256;

/// How long a publish or a flush may wait for room or an answer. Past it
/// the batch is left to the read-back: a node never waits on its bus.
const SEND_WAIT: Duration = Duration::from_millis(100);

/// How often, at most, a slow-consumer report is logged: NATS reports one
/// per message it drops, exactly when a node is already behind.
const SLOW_CONSUMER_LOG_EVERY: Duration = Duration::from_secs(10);

/// Why the bus could not be used.
#[derive(Debug, Error)]
pub enum BusError {
    #[error(
        "the NATS address {url} is not valid ({reason}); give --nats as \
         nats://host:port"
    )]
    Address { url: String, reason: String },
    #[error("cannot use NATS at {url}: {reason}; check its credentials and TLS settings")]
    Connect { url: String, reason: String },
    #[error("cannot subscribe to the cluster's feed on NATS: {0}")]
    Subscribe(String),
    #[error("NATS did not take a batch ({0}); the other nodes will read it from the database")]
    Publish(String),
    #[error(
        "NATS is down, or took longer than {SEND_WAIT:?} to take a batch; the other \
         nodes will read it from the database"
    )]
    Stalled,
}

/// One node's connection to the bus.
#[derive(Clone)]
pub struct NatsBus {
    client: async_nats::Client,
    up: watch::Receiver<bool>,
    /// This help desk's subject ([`feed_subject`]).
    subject: String,
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
    pub async fn connect(
        url: &str,
        node: &str,
        subject: String,
    ) -> Result<(NatsBus, NatsFeed), BusError> {
        let (up_sender, up) = watch::channel(false);
        let shown = without_credentials(url);
        let reporter = Arc::new(EventReport {
            url: shown.clone(),
            up: up_sender,
            slow_consumer_logged: Mutex::new(None),
        });
        let client = async_nats::ConnectOptions::new()
            .name(node)
            .ping_interval(PING_INTERVAL)
            .connection_timeout(CONNECT_TIMEOUT)
            .subscription_capacity(RECEIVE_CAPACITY)
            .client_capacity(SEND_CAPACITY)
            .retry_on_initial_connect()
            .max_reconnects(None)
            .event_callback(move |event| {
                let reporter = Arc::clone(&reporter);
                async move { reporter.on_event(&event) }
            })
            .connect(url)
            .await
            .map_err(|error| {
                let reason = error.to_string();
                match error.kind() {
                    ConnectErrorKind::ServerParse => BusError::Address { url: shown, reason },
                    _ => BusError::Connect { url: shown, reason },
                }
            })?;
        let subscriber = client
            .subscribe(subject.clone())
            .await
            .map_err(|error| BusError::Subscribe(error.to_string()))?;
        Ok((
            NatsBus {
                client,
                up,
                subject,
            },
            NatsFeed(subscriber),
        ))
    }

    /// Publishes one batch (`feed_wire::encode`). Waits at most
    /// [`SEND_WAIT`] for room in the client's queue, which stops draining
    /// while NATS is down: then the batch is refused ([`BusError::Stalled`])
    /// and lost to the bus, never to the cluster (every other node reads it
    /// back from the database). Batches queued before an outage are sent
    /// when NATS is back, or dropped with the client.
    ///
    /// While the bus is known to be down it is not tried at all: a node
    /// that waited [`SEND_WAIT`] per commit through an outage would commit
    /// ten times a second.
    pub async fn publish(&self, batch: Bytes) -> Result<(), BusError> {
        if !*self.up.borrow() {
            return Err(BusError::Stalled);
        }
        tokio::time::timeout(SEND_WAIT, self.client.publish(self.subject.clone(), batch))
            .await
            .map_err(|_| BusError::Stalled)?
            .map_err(|error| BusError::Publish(error.to_string()))
    }

    /// Whether the bus is connected now, and a way to wait for a change.
    pub fn up(&self) -> watch::Receiver<bool> {
        self.up.clone()
    }

    /// Sends whatever the client still holds and waits for NATS to answer,
    /// at most [`SEND_WAIT`]: for a clean shutdown, which must not hang on a
    /// dead bus.
    pub async fn flush(&self) -> Result<(), BusError> {
        tokio::time::timeout(SEND_WAIT, self.client.flush())
            .await
            .map_err(|_| BusError::Stalled)?
            .map_err(|error| BusError::Publish(error.to_string()))
    }
}

/// What the client reports about its connection: logged, and kept in `up`.
struct EventReport {
    url: String,
    up: watch::Sender<bool>,
    /// When a slow consumer was last logged.
    slow_consumer_logged: Mutex<Option<Instant>>,
}

impl EventReport {
    fn on_event(&self, event: &async_nats::Event) {
        let url = &self.url;
        match event {
            async_nats::Event::Connected => {
                tracing::info!(%url, "connected to the bus");
                self.up.send_replace(true);
            }
            // Reconnects are unlimited (`max_reconnects(None)`): the client
            // closes only when this node lets go of it, as it stops.
            async_nats::Event::Closed => {
                tracing::info!(%url, "closed the connection to the bus");
                self.up.send_replace(false);
            }
            async_nats::Event::Disconnected => {
                tracing::warn!(
                    %url,
                    "lost the bus: other nodes' messages now come from the database, more \
                     slowly; reconnecting"
                );
                self.up.send_replace(false);
            }
            async_nats::Event::SlowConsumer(_) => {
                let now = Instant::now();
                let mut logged = self
                    .slow_consumer_logged
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if logged.is_none_or(|at| now.duration_since(at) >= SLOW_CONSUMER_LOG_EVERY) {
                    *logged = Some(now);
                    tracing::warn!(
                        %url,
                        "this node fell behind the bus and NATS dropped batches for it; they \
                         are read back from the database (logged at most every {:?})",
                        SLOW_CONSUMER_LOG_EVERY
                    );
                }
            }
            other => tracing::warn!(%url, "bus: {other}"),
        }
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
