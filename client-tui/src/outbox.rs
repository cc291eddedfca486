//! Frames from the app to the network task: in order, and none dropped.
//!
//! The event loop must never wait on the network (the screen would freeze),
//! and the channel to the network task is bounded. A bare `try_send` loses
//! the frame when the channel is full, and losing a `subscribe` or a
//! `history` leaves the app "Syncing" or "Loading" for ever. After a
//! reconnect with many pending messages, the burst (two `subscribe`s, a
//! `history`, every resend) can be larger than the channel. So a frame that
//! does not fit waits here, behind the ones before it, and the event loop
//! moves the waiting frames over ([`Outbox::flush`]) as the network task
//! takes them.

use std::collections::VecDeque;

use switchboard_protocol::ClientFrame;
use thiserror::Error;
use tokio::sync::mpsc;

/// The app's end of the channel to the network task, with room for the
/// frames that do not fit yet.
pub struct Outbox {
    to_net: mpsc::Sender<ClientFrame>,
    /// Oldest first; they go before any newer frame.
    waiting: VecDeque<ClientFrame>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum OutboxError {
    /// The network task has ended (it gave up, or the app is quitting):
    /// nothing can be delivered any more.
    #[error("the network task has stopped")]
    Closed,
}

impl Outbox {
    pub fn new(to_net: mpsc::Sender<ClientFrame>) -> Self {
        Self {
            to_net,
            waiting: VecDeque::new(),
        }
    }

    /// Hands `frame` to the network task, or keeps it behind the frames
    /// already waiting. Never waits, never drops (unless the network task is
    /// gone).
    pub fn send(&mut self, frame: ClientFrame) -> Result<(), OutboxError> {
        self.waiting.push_back(frame);
        self.move_what_fits()
    }

    /// Frames wait for room in the channel: the event loop should
    /// [`flush`](Self::flush).
    pub fn is_backed_up(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// Waits until the network task has room, then moves waiting frames
    /// over, oldest first. Cancel-safe, so it can be a `select!` branch: a
    /// frame leaves the queue only once it is in the channel.
    pub async fn flush(&mut self) -> Result<(), OutboxError> {
        if self.waiting.is_empty() {
            return Ok(());
        }
        {
            // Field by field: the permit borrows the channel, not the queue.
            let Ok(permit) = self.to_net.reserve().await else {
                self.waiting.clear();
                return Err(OutboxError::Closed);
            };
            if let Some(frame) = self.waiting.pop_front() {
                permit.send(frame);
            }
        }
        self.move_what_fits()
    }

    /// The connection was lost: frames meant for it are stale. (The network
    /// task drops those it holds too; the app sends again what still matters
    /// when it hears `Connected`.)
    pub fn forget(&mut self) {
        self.waiting.clear();
    }

    fn move_what_fits(&mut self) -> Result<(), OutboxError> {
        while let Some(frame) = self.waiting.pop_front() {
            match self.to_net.try_send(frame) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(frame)) => {
                    self.waiting.push_front(frame);
                    return Ok(());
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    // Nothing will take the waiting frames: holding them
                    // would only make the event loop flush again and again.
                    self.waiting.clear();
                    return Err(OutboxError::Closed);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_protocol::RequestId;

    fn ping(n: i64) -> ClientFrame {
        ClientFrame::Ping {
            id: Some(RequestId::Int(n)),
        }
    }

    /// What the network task has been handed so far, without waiting.
    fn received(rx: &mut mpsc::Receiver<ClientFrame>) -> Vec<ClientFrame> {
        std::iter::from_fn(|| rx.try_recv().ok()).collect()
    }

    /// A reconnect's burst: the two subscribes, a history and many resends.
    #[tokio::test]
    async fn frames_that_do_not_fit_wait_in_order_instead_of_being_dropped() {
        let (to_net, mut rx) = mpsc::channel(2);
        let mut outbox = Outbox::new(to_net);
        let burst: Vec<ClientFrame> = (1..=7).map(ping).collect();
        for frame in burst.clone() {
            outbox.send(frame).expect("the network task is there");
        }
        let mut got = received(&mut rx);
        assert_eq!(got, burst[..2], "what fits goes at once");
        assert!(outbox.is_backed_up());
        while outbox.is_backed_up() {
            outbox.flush().await.expect("the network task is there");
            got.extend(received(&mut rx));
        }
        assert_eq!(got, burst);
    }

    #[tokio::test]
    async fn a_new_frame_waits_behind_older_ones_even_when_there_is_room() {
        let (to_net, mut rx) = mpsc::channel(1);
        let mut outbox = Outbox::new(to_net);
        outbox.send(ping(1)).expect("sends");
        outbox.send(ping(2)).expect("sends");
        assert_eq!(received(&mut rx), [ping(1)]);
        outbox.send(ping(3)).expect("sends");
        let mut got = received(&mut rx);
        while outbox.is_backed_up() {
            outbox.flush().await.expect("sends");
            got.extend(received(&mut rx));
        }
        assert_eq!(got, [ping(2), ping(3)]);
    }

    /// The network task drops what was queued for a lost connection; the app
    /// sends what still matters again on `Connected`.
    #[tokio::test]
    async fn a_lost_connection_forgets_the_waiting_frames() {
        let (to_net, mut rx) = mpsc::channel(1);
        let mut outbox = Outbox::new(to_net);
        for n in 1..=3 {
            outbox.send(ping(n)).expect("sends");
        }
        assert!(outbox.is_backed_up());
        outbox.forget();
        assert!(!outbox.is_backed_up());
        assert_eq!(received(&mut rx), [ping(1)]);
    }

    /// Nothing can be delivered any more: say so, and hold nothing that the
    /// event loop would keep trying to flush.
    #[tokio::test]
    async fn a_stopped_network_task_is_reported_and_not_waited_on() {
        let (to_net, rx) = mpsc::channel(1);
        let mut outbox = Outbox::new(to_net);
        outbox.send(ping(1)).expect("sends");
        outbox.send(ping(2)).expect("waits");
        drop(rx);
        assert_eq!(outbox.flush().await, Err(OutboxError::Closed));
        assert!(!outbox.is_backed_up());
        assert_eq!(outbox.send(ping(3)), Err(OutboxError::Closed));
    }
}
