//! One agent connection: records every message of this run it is given,
//! until told to finish; then a `ping` barrier makes sure nothing is still on
//! its way (protocol interpretation 16).

use std::sync::Arc;

use futures::{FutureExt, SinkExt, StreamExt};
use switchboard_protocol::{ClientFrame, FrameError, RequestId, Role, ServerFrame};
use tokio::sync::oneshot;
use tokio::time::{Instant, sleep_until};

use crate::conn::Conn;
use crate::probe::{Clock, Probe};
use crate::stats::{ErrorCounts, Latency};
use crate::wire::Incoming;

/// The `id` of the closing `ping`.
const FINISH_REQUEST: &str = "finish";

pub struct AgentPlan {
    pub tag: Arc<str>,
    pub clock: Clock,
    pub deadline: Instant,
}

/// What one agent saw.
#[derive(Debug, Default)]
pub struct AgentOutcome {
    /// Ids of this run's messages, in the order they arrived.
    pub delivered: Vec<u64>,
    pub latency: Latency,
    pub errors: ErrorCounts,
    pub last_delivery_us: u64,
}

/// Runs until `finish` fires (or its sender is dropped) and the barrier
/// `pong` is back, or until the deadline.
pub async fn run(conn: Conn, plan: AgentPlan, mut finish: oneshot::Receiver<()>) -> AgentOutcome {
    let Conn {
        mut reader,
        mut writer,
    } = conn;
    let mut outcome = AgentOutcome::default();
    let mut finishing = false;
    // One timer for the whole run, not one per frame.
    let give_up = sleep_until(plan.deadline);
    tokio::pin!(give_up);
    loop {
        tokio::select! {
            // Deliveries first: a reader that lags is cut off. (Under a flood
            // tokio's cooperative budget still lets the other branches in.)
            biased;
            frame = reader.next() => {
                // One clock reading for the frame that woke this task and
                // every frame that came with it in the same read.
                let now_us = plan.clock.now_us();
                let mut frame = Some(frame);
                let mut done = false;
                while let Some(next) = frame.take() {
                    if take(next, now_us, finishing, &plan, &mut outcome) == Flow::Stop {
                        done = true;
                        break;
                    }
                    frame = reader.next().now_or_never();
                }
                if done {
                    break;
                }
            }
            _ = &mut finish, if !finishing => {
                finishing = true;
                let ping = ClientFrame::Ping { id: Some(RequestId::Str(FINISH_REQUEST.into())) };
                if writer.send(ping).await.is_err() {
                    outcome.errors.add("connection_lost", 1);
                    break;
                }
            }
            () = &mut give_up => {
                outcome.errors.add("timeout", 1);
                break;
            }
        }
    }
    outcome
}

#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Go,
    Stop,
}

/// Takes what the reader gave, read at `now_us`.
fn take(
    frame: Option<Result<Result<Incoming, FrameError>, std::io::Error>>,
    now_us: u64,
    finishing: bool,
    plan: &AgentPlan,
    outcome: &mut AgentOutcome,
) -> Flow {
    match frame {
        Some(Ok(Ok(Incoming::Message(message)))) => {
            if message.from != Role::User {
                return Flow::Go;
            }
            if let Some(probe) = Probe::parse(message.body.as_bytes(), &plan.tag) {
                outcome.delivered.push(message.id);
                outcome.latency.record(now_us.saturating_sub(probe.sent_us));
                outcome.last_delivery_us = now_us;
            }
        }
        Some(Ok(Ok(Incoming::Other(ServerFrame::Pong {
            id: Some(RequestId::Str(id)),
        }))))
            if finishing && id == FINISH_REQUEST =>
        {
            return Flow::Stop;
        }
        Some(Ok(Ok(Incoming::Other(ServerFrame::Error { code, .. })))) => {
            outcome.errors.add(code.as_str(), 1);
            if code.closes_connection() {
                return Flow::Stop;
            }
        }
        Some(Ok(Ok(Incoming::Other(ServerFrame::Bye { .. })))) | Some(Err(_)) | None => {
            outcome.errors.add("connection_lost", 1);
            return Flow::Stop;
        }
        Some(Ok(Err(_))) => outcome.errors.add("bad_line_from_server", 1),
        // presence, assigned, …: the queue's state, not measured here.
        Some(Ok(Ok(_))) => {}
    }
    Flow::Go
}
