//! The operator port, `--metrics-listen ADDR`: `GET /metrics` in the
//! Prometheus text format and `GET /healthz`, on a listener of its own,
//! apart from the protocol's port.
//!
//! - [`counts`], [`histogram`]: what the components count about
//!   themselves, in atomics (a relaxed addition where it happens, no lock
//!   on any message's path): sessions and the accept loop (connections by
//!   role, refusals), the router (frames queued), and through the store's
//!   [`WriterHealth`] the writer (commits, their time, messages stored, its
//!   health).
//! - `collector.rs`: those figures as metric families, read at each scrape;
//!   prometheus-client writes the format.
//! - [`endpoint`]: the tiny HTTP/1.1 responder, bounded in connections,
//!   request size and time, so the port cannot be used to hurt the node.
//!
//! [`Observed`] is everything the port reads, handed over by
//! [`crate::node::Node::observed`]. A single node has no bus and no lease:
//! the cluster mode (issue 16) adds its feed lag, whether its bus is
//! connected and its lease age to `Observed`, and the lease to [`Observed::health`].

pub mod cluster;
mod collector;
pub mod counts;
pub mod endpoint;
pub mod histogram;

use std::fmt;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::registry::Registry;

use crate::store::WriterHealth;
use collector::NodeCollector;
use counts::{FanoutCounts, SessionCounts};

/// Every family's name starts with this, then `_`.
const PREFIX: &str = "switchboard";

/// What the operator port reads of a running node. Reading never waits on
/// the node: atomics, and the writer's health as the store reports it.
pub struct Observed {
    pub sessions: Arc<SessionCounts>,
    pub fanout: Arc<FanoutCounts>,
    pub writer: WriterHealth,
    /// Why the node is failing (its router or writer stopped), if it is.
    pub failure: Box<dyn Fn() -> Option<&'static str> + Send + Sync>,
    /// Cancelled once the server was told to stop: from then on it takes
    /// no new connections, and a load balancer must send them elsewhere.
    pub draining: CancellationToken,
    /// A cluster node's place in the cluster; `None` on one node.
    pub cluster: Option<cluster::ClusterObserved>,
}

impl fmt::Debug for Observed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Observed").finish_non_exhaustive()
    }
}

impl Observed {
    /// `Ok` while the node can commit; otherwise why not, in one line.
    /// While the writer's last commit stands failed, asking queues a probe
    /// commit (one at a time; see `store/health.rs`).
    pub fn health(&self) -> Result<(), String> {
        if self.draining.is_cancelled() {
            return Err(DRAINING.to_owned());
        }
        verdict((self.failure)(), || {
            self.writer.check()?;
            match &self.cluster {
                Some(cluster) => cluster.check(std::time::Instant::now()),
                None => Ok(()),
            }
        })
    }
}

/// `/healthz` from the moment the server is told to stop until it exits
/// (sessions drain for up to `--shutdown-grace`, the writer finishes its
/// queue): it accepts nobody new meanwhile.
const DRAINING: &str = "the server is shutting down and accepts no new connections; \
                        connect to another node";

/// The node's health from its parts: a failing node is stopping, whatever
/// its writer says; otherwise the writer's word.
fn verdict(
    failure: Option<&str>,
    writer: impl FnOnce() -> Result<(), String>,
) -> Result<(), String> {
    match failure {
        Some(reason) => Err(format!("{reason}; the server is stopping")),
        None => writer(),
    }
}

/// What `/metrics` and `/healthz` answer from.
#[derive(Debug)]
pub struct Exporter {
    registry: Registry,
    observed: Arc<Observed>,
}

impl Exporter {
    pub fn new(observed: Observed) -> Self {
        let observed = Arc::new(observed);
        let mut registry = Registry::with_prefix(PREFIX);
        registry.register_collector(Box::new(NodeCollector(Arc::clone(&observed))));
        Self { registry, observed }
    }

    /// Every metric, in the Prometheus text format (version 0.0.4).
    pub fn metrics(&self) -> Result<String, fmt::Error> {
        let mut text = String::new();
        prometheus_text::encode(&mut text, &self.registry)?;
        Ok(text)
    }

    /// See [`Observed::health`].
    pub fn health(&self) -> Result<(), String> {
        self.observed.health()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_node_is_unhealthy_whatever_its_writer_says() {
        assert_eq!(verdict(None, || Ok(())), Ok(()));
        assert_eq!(
            verdict(None, || Err("the last commit failed".into())),
            Err("the last commit failed".into())
        );
        let failing = verdict(Some("the router panicked"), || Ok(())).expect_err("failing");
        assert_eq!(failing, "the router panicked; the server is stopping");
    }
}
