//! The node's figures as Prometheus metric families, read at each scrape
//! from the atomics the components keep (`counts.rs`, the store's
//! [`WriterHealth`](crate::store::WriterHealth)). The text format itself is
//! prometheus-client's: this file only names the families and hands over
//! their values.

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use switchboard_protocol::ErrorCode;

use super::Observed;

/// Reads [`Observed`] on every scrape.
#[derive(Debug)]
pub(super) struct NodeCollector(pub(super) Arc<Observed>);

impl Collector for NodeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let observed = &self.0;
        let healthy = observed.health().is_ok();
        gauge(
            &mut encoder,
            "healthy",
            "1 while this node can commit (what GET /healthz answers 200 for), else 0",
            i64::from(healthy),
        )?;

        connections(&mut encoder, observed)?;
        cluster(&mut encoder, observed)?;

        let writer = observed.writer.figures();
        counter(
            &mut encoder,
            "messages_stored",
            "Messages committed to storage (a resent key's replay is not counted)",
            writer.messages,
        )?;
        counter(
            &mut encoder,
            "deliveries",
            "Frames queued to connections: events, replies and presence, one per recipient",
            observed.fanout.delivered_total(),
        )?;
        counter(
            &mut encoder,
            "commits",
            "Group commits that succeeded (one transaction and one fsync for every request queued)",
            writer.committed,
        )?;
        counter(
            &mut encoder,
            "commit_failures",
            "Group commits that failed to start or commit; their requests were answered internal",
            writer.failed,
        )?;
        let durations = &writer.durations;
        encoder
            .encode_descriptor(
                "commit_duration_seconds",
                "Time to run and commit one group, failed ones included: the floor of every sent's latency",
                None,
                MetricType::Histogram,
            )?
            .encode_histogram::<NoLabelSet>(
                durations.sum_seconds,
                durations.count,
                &durations.buckets,
                None,
            )?;

        let mut refusals = encoder.encode_descriptor(
            "refusals",
            "Refusals by protocol error code (docs/protocol.md); server_busy at the door counted even when it could not be written",
            None,
            MetricType::Counter,
        )?;
        for code in ErrorCode::ALL {
            let total = observed.sessions.refusals.get(code) + observed.fanout.refusals.get(code);
            ConstCounter::new(total).encode(refusals.encode_family(&[("code", code.as_str())])?)?;
        }
        Ok(())
    }
}

/// Open connections, by role.
fn connections(encoder: &mut DescriptorEncoder, observed: &Observed) -> fmt::Result {
    let now = observed.sessions.connections.now();
    let mut family = encoder.encode_descriptor(
        "connections",
        "Connections open: signed in as a user or an agent, or not signed in yet (anonymous)",
        None,
        MetricType::Gauge,
    )?;
    for (role, open) in [
        ("user", now.users),
        ("agent", now.agents),
        ("anonymous", now.anonymous),
    ] {
        ConstGauge::new(open).encode(family.encode_family(&[("role", role)])?)?;
    }
    Ok(())
}

/// A cluster node's families (none on one node).
fn cluster(encoder: &mut DescriptorEncoder, observed: &Observed) -> fmt::Result {
    let Some(cluster) = &observed.cluster else {
        return Ok(());
    };
    let figures = cluster.figures(std::time::Instant::now());
    gauge(
        encoder,
        "cluster_feed_behind",
        "Positions between the newest commit this node knows of and the last it delivered",
        i64::try_from(figures.behind).unwrap_or(i64::MAX),
    )?;
    if let Some(connected) = figures.bus_connected {
        gauge(
            encoder,
            "cluster_bus_connected",
            "1 while this node is connected to NATS, else 0 (it then reads other nodes' commits \
             from PostgreSQL)",
            i64::from(connected),
        )?;
    }
    if let Some(age) = figures.lease_age {
        let metric = ConstGauge::new(age.as_secs_f64());
        metric.encode(encoder.encode_descriptor(
            "cluster_lease_age_seconds",
            "Seconds since this node last renewed its lease (a lease lasts 5 s)",
            None,
            metric.metric_type(),
        )?)?;
    }
    Ok(())
}

fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64) -> fmt::Result {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}
