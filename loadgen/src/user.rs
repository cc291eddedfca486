//! One sending user: the closed loop (a window of sends in flight) or the
//! open loop (sends on a fixed schedule, whatever the replies do).

use std::collections::VecDeque;
use std::sync::Arc;

use futures::{FutureExt, SinkExt, StreamExt};
use switchboard_protocol::{RequestId, ServerFrame};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until, timeout_at};

use crate::codec::ProbeSend;
use crate::conn::Conn;
use crate::probe::{Clock, Probe};
use crate::stats::{ErrorCounts, Latency};
use crate::wire::Incoming;

/// How a user decides when to send its next message.
#[derive(Debug, Clone, Copy)]
pub enum Schedule {
    /// Keep `window` sends in flight until `messages` are sent.
    Closed { window: u32, messages: u32 },
    /// Message `g` of the run (counting over all users, round robin) is due
    /// `g / rate` seconds after `start_us`; this user sends every
    /// `users`-th of the `total`, starting at its own index. The [`pace`]
    /// thread says when each is due.
    Open {
        rate: f64,
        users: u32,
        total: u64,
        start_us: u64,
    },
}

impl Schedule {
    /// How many messages user `index` sends.
    pub fn count(&self, index: u32) -> u64 {
        match *self {
            Schedule::Closed { messages, .. } => u64::from(messages),
            Schedule::Open { users, total, .. } => {
                let index = u64::from(index);
                if total > index {
                    (total - 1 - index) / u64::from(users) + 1
                } else {
                    0
                }
            }
        }
    }

    /// When this user's `seq`-th message is due, in the open loop.
    fn due_us(&self, index: u32, seq: u64) -> Option<u64> {
        match *self {
            Schedule::Closed { .. } => None,
            Schedule::Open { users, .. } => {
                self.global_due_us(seq * u64::from(users) + u64::from(index))
            }
        }
    }

    /// When message `global` of the whole run is due, in the open loop.
    fn global_due_us(&self, global: u64) -> Option<u64> {
        match *self {
            Schedule::Closed { .. } => None,
            Schedule::Open { rate, start_us, .. } => {
                Some(start_us + (global as f64 * 1e6 / rate) as u64)
            }
        }
    }
}

/// Wakes each open-loop user when its next message is due, from a thread of
/// its own: tokio's timers tick in whole milliseconds, which would add up to
/// a millisecond of the generator's own lateness to every latency measured
/// from the schedule. Stops after the last message or at `deadline`.
///
/// The channels are unbounded because the schedule bounds them: one tick per
/// message of the run, and a user that lags sends everything due at once.
pub fn pace(
    schedule: Schedule,
    clock: Clock,
    deadline: std::time::Instant,
    users: Vec<mpsc::UnboundedSender<()>>,
) {
    let Schedule::Open { total, .. } = schedule else {
        return;
    };
    for global in 0..total {
        let Some(due_us) = schedule.global_due_us(global) else {
            return;
        };
        let now_us = clock.now_us();
        if due_us > now_us {
            std::thread::sleep(std::time::Duration::from_micros(due_us - now_us));
        }
        if std::time::Instant::now() > deadline {
            return;
        }
        let user = (global % users.len().max(1) as u64) as usize;
        if let Some(user) = users.get(user) {
            // A user that has gone (its connection broke) needs no ticks.
            let _ = user.send(());
        }
    }
}

/// What one user needs to run.
pub struct UserPlan {
    pub index: u32,
    pub tag: Arc<str>,
    pub clock: Clock,
    pub deadline: Instant,
    pub schedule: Schedule,
    /// Open loop: a tick when a message is due (see [`pace`]).
    pub ticks: Option<mpsc::UnboundedReceiver<()>>,
}

/// A message the server acknowledged with `sent`: its id, and what makes
/// its body (with the user's index and the run's tag, see [`Ack::body`]),
/// kept compact rather than as a `String` per message.
#[derive(Debug, Clone, Copy)]
pub struct Ack {
    pub id: u64,
    pub seq: u64,
    pub sent_us: u64,
}

impl Ack {
    /// The body user `user` sent.
    pub fn body(&self, user: u32, tag: &str) -> String {
        Probe {
            user,
            seq: self.seq,
            sent_us: self.sent_us,
        }
        .body(tag)
    }
}

/// What one user saw.
#[derive(Debug, Default)]
pub struct UserOutcome {
    /// In the order the replies came.
    pub acks: Vec<Ack>,
    pub ack_latency: Latency,
    /// Open loop: how late after its scheduled time each send was written.
    pub send_lag: Latency,
    pub errors: ErrorCounts,
    pub last_ack_us: u64,
}

/// A send waiting for its reply. Its request id is its sequence number, so
/// with the user's index and `sent_us` it is the whole body.
struct InFlight {
    request: i64,
    sent_us: u64,
}

pub async fn run(conn: Conn, mut plan: UserPlan) -> UserOutcome {
    let Conn {
        mut reader,
        mut writer,
    } = conn;
    let mut outcome = UserOutcome::default();
    let count = plan.schedule.count(plan.index);
    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
    let mut next: u64 = 0;
    // One timer for the whole run, not one per frame.
    let give_up = sleep_until(plan.deadline);
    tokio::pin!(give_up);
    // One clock reading per wake-up, shared by the replies that woke it and
    // the sends they make due.
    let mut now_us = plan.clock.now_us();
    loop {
        // Send everything that is due now.
        let mut wrote = false;
        let mut broken = false;
        while next < count {
            let sent_us = match (plan.schedule, plan.schedule.due_us(plan.index, next)) {
                (Schedule::Closed { window, .. }, _) if in_flight.len() < window as usize => now_us,
                (Schedule::Open { .. }, Some(due)) if due <= now_us => {
                    outcome.send_lag.record(now_us - due);
                    due
                }
                _ => break,
            };
            let send = ProbeSend {
                request: next,
                tag: &plan.tag,
                probe: Probe {
                    user: plan.index,
                    seq: next,
                    sent_us,
                },
            };
            if writer.feed(send).await.is_err() {
                broken = true;
                break;
            }
            in_flight.push_back(InFlight {
                request: i64::try_from(next).unwrap_or(i64::MAX),
                sent_us,
            });
            next += 1;
            wrote = true;
        }
        if wrote && !broken {
            let flushed = timeout_at(plan.deadline, SinkExt::<ProbeSend>::flush(&mut writer));
            broken = !matches!(flushed.await, Ok(Ok(())));
        }
        if broken {
            outcome
                .errors
                .add("connection_lost", in_flight.len() as u64);
            outcome.errors.add("not_sent", count - next);
            break;
        }
        if next == count && in_flight.is_empty() {
            break;
        }
        // Without the pacer's ticks (it stopped early), a timer will do.
        let wake = plan
            .schedule
            .due_us(plan.index, next)
            .filter(|_| next < count && plan.ticks.is_none())
            .map(|due| plan.clock.at(due).into());
        let ticking = next < count && plan.ticks.is_some();
        tokio::select! {
            // Replies first: they free the window.
            biased;
            frame = reader.next() => {
                now_us = plan.clock.now_us();
                let mut frame = Some(frame);
                // Then every reply that came in the same read, at the same
                // time, without another round of this select.
                let mut open = true;
                while let Some(next_frame) = frame.take() {
                    if !take_frame(next_frame, now_us, &plan, &mut in_flight, &mut outcome) {
                        open = false;
                        break;
                    }
                    frame = reader.next().now_or_never();
                }
                if !open {
                    outcome.errors.add("connection_lost", in_flight.len() as u64);
                    outcome.errors.add("not_sent", count - next);
                    break;
                }
            }
            tick = next_tick(&mut plan.ticks), if ticking => {
                now_us = plan.clock.now_us();
                if tick.is_none() {
                    plan.ticks = None;
                }
            }
            () = sleep_until(wake.unwrap_or(plan.deadline)), if wake.is_some() => {
                now_us = plan.clock.now_us();
            }
            () = &mut give_up => {
                outcome.errors.add("timeout", in_flight.len() as u64);
                outcome.errors.add("not_sent", count - next);
                break;
            }
        }
    }
    outcome
}

/// Takes what the reader gave; `false` when the connection is over.
fn take_frame(
    frame: Option<Result<Result<Incoming, switchboard_protocol::FrameError>, std::io::Error>>,
    now_us: u64,
    plan: &UserPlan,
    in_flight: &mut VecDeque<InFlight>,
    outcome: &mut UserOutcome,
) -> bool {
    match frame {
        Some(Ok(Ok(frame))) => handle(frame, now_us, plan, in_flight, outcome),
        Some(Ok(Err(_))) => {
            outcome.errors.add("bad_line_from_server", 1);
            true
        }
        Some(Err(_)) | None => false,
    }
}

async fn next_tick(ticks: &mut Option<mpsc::UnboundedReceiver<()>>) -> Option<()> {
    match ticks {
        Some(ticks) => ticks.recv().await,
        None => None,
    }
}

/// Takes one frame, read at `now_us`; `false` when the connection is over.
fn handle(
    frame: Incoming,
    now_us: u64,
    plan: &UserPlan,
    in_flight: &mut VecDeque<InFlight>,
    outcome: &mut UserOutcome,
) -> bool {
    match frame {
        Incoming::Sent {
            request: Some(request),
            message,
        } => {
            let Some(sent) = take(in_flight, request, &mut outcome.errors) else {
                return true;
            };
            let seq = u64::try_from(sent.request).unwrap_or_default();
            let expected = Probe {
                user: plan.index,
                seq,
                sent_us: sent.sent_us,
            };
            // A strict parse: equal probes mean equal bodies.
            if Probe::parse(message.body.as_bytes(), &plan.tag) != Some(expected) {
                outcome.errors.add("unexpected_reply", 1);
                return true;
            }
            outcome
                .ack_latency
                .record(now_us.saturating_sub(sent.sent_us));
            outcome.last_ack_us = now_us;
            outcome.acks.push(Ack {
                id: message.id,
                seq,
                sent_us: sent.sent_us,
            });
            true
        }
        Incoming::Other(ServerFrame::Error { id, code, .. }) => {
            outcome.errors.add(code.as_str(), 1);
            if let Some(RequestId::Int(request)) = id {
                // Already counted under its code.
                take(in_flight, request, &mut ErrorCounts::default());
            }
            !code.closes_connection()
        }
        Incoming::Other(ServerFrame::Bye { .. }) => false,
        Incoming::Sent { .. } => {
            outcome.errors.add("unexpected_reply", 1);
            true
        }
        // `agents` counts and the like: not what this run measures.
        _ => true,
    }
}

/// Removes the send a reply answers. Replies come in request order, so it is
/// the oldest; anything else is counted as `reply_out_of_order`.
fn take(
    in_flight: &mut VecDeque<InFlight>,
    request: i64,
    errors: &mut ErrorCounts,
) -> Option<InFlight> {
    if in_flight.front().is_some_and(|f| f.request == request) {
        return in_flight.pop_front();
    }
    let at = in_flight.iter().position(|f| f.request == request);
    errors.add(
        if at.is_some() {
            "reply_out_of_order"
        } else {
            "unexpected_reply"
        },
        1,
    );
    at.and_then(|at| in_flight.remove(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_loop_spreads_the_total_round_robin() {
        let schedule = Schedule::Open {
            rate: 1000.0,
            users: 3,
            total: 10,
            start_us: 500,
        };
        let counts: Vec<u64> = (0..3).map(|u| schedule.count(u)).collect();
        assert_eq!(counts, vec![4, 3, 3]);
        // Global message 3k+u is due at (3k+u) ms.
        assert_eq!(schedule.due_us(0, 0), Some(500));
        assert_eq!(schedule.due_us(2, 0), Some(2_500));
        assert_eq!(schedule.due_us(1, 2), Some(7_500));
        let few = Schedule::Open {
            rate: 1.0,
            users: 5,
            total: 2,
            start_us: 0,
        };
        assert_eq!(few.count(4), 0);
    }

    #[test]
    fn replies_are_matched_oldest_first() {
        let mut in_flight: VecDeque<InFlight> = (0..3)
            .map(|request| InFlight {
                request,
                sent_us: 0,
            })
            .collect();
        let mut errors = ErrorCounts::default();
        assert_eq!(
            take(&mut in_flight, 0, &mut errors).map(|f| f.request),
            Some(0)
        );
        assert_eq!(errors.total(), 0);
        assert_eq!(
            take(&mut in_flight, 2, &mut errors).map(|f| f.request),
            Some(2)
        );
        assert!(take(&mut in_flight, 9, &mut errors).is_none());
        assert_eq!(
            errors.iter().collect::<Vec<_>>(),
            vec![("reply_out_of_order", 1), ("unexpected_reply", 1)]
        );
    }
}
