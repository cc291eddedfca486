//! A connection's outbox: the bounded queue between the router and the
//! session that writes to the socket, counted in frames and in bytes.
//!
//! Frames alone would bound the count but not the memory (a frame can hold a
//! 4,096-character body, or a whole backlog). Bytes alone would let a flood of
//! tiny frames pile up. The router refuses a push that would pass either
//! bound, and cuts the connection off as a slow consumer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use switchboard_protocol::Message;
use tokio::sync::mpsc;

/// One frame (or a run of frames) on its way to a connection.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub payload: Payload,
    /// This completes a request the connection made (a reply), so the
    /// session knows when it owes nothing more.
    pub answers_request: bool,
    /// The router is done with this connection: close after writing this.
    pub last: bool,
}

/// What an [`Outgoing`] carries.
#[derive(Debug, Clone)]
pub enum Payload {
    /// Frames already encoded: an event's bytes are shared by every
    /// connection it goes to.
    Encoded(Bytes),
    /// A subscription's backlog, still as messages, then the frames that
    /// follow it (state, `subscribed`), already encoded. The session encodes
    /// the messages as it writes them: the router, one task for every
    /// connection, never spends the time a long backlog takes to encode (an
    /// 8 MiB resume would hold up everyone's events meanwhile), and the
    /// backlog is never in memory twice, as messages and as bytes. A user's
    /// long backlog carries only its first chunk as messages: the session
    /// reads the `rest` (ids fixed by the backlog's snapshot) from storage a
    /// chunk at a time as it writes, so it never holds more than one chunk.
    Backlog {
        messages: Vec<Message>,
        rest: Vec<u64>,
        then: Bytes,
    },
}

impl Outgoing {
    /// Frames already encoded.
    pub fn encoded(bytes: Bytes, answers_request: bool) -> Self {
        Self {
            payload: Payload::Encoded(bytes),
            answers_request,
            last: false,
        }
    }

    /// A reply of any payload (a backlog).
    pub fn reply(payload: Payload) -> Self {
        Self {
            payload,
            answers_request: true,
            last: false,
        }
    }

    /// The bytes this frame counts against the outbox's bound: an event's
    /// length, nothing for a reply (see [`outbox`]). Only replies carry a
    /// backlog.
    fn counted_len(&self) -> usize {
        match (&self.payload, self.answers_request) {
            (Payload::Encoded(bytes), false) => bytes.len(),
            _ => 0,
        }
    }

    /// Everything this carries, encoded in one buffer (for tests).
    #[cfg(test)]
    pub fn to_bytes(&self) -> Bytes {
        match &self.payload {
            Payload::Encoded(bytes) => bytes.clone(),
            Payload::Backlog {
                messages,
                rest,
                then,
            } => {
                assert!(
                    rest.is_empty(),
                    "the rest of a backlog is read by the session"
                );
                let mut buf = bytes::BytesMut::new();
                for message in messages {
                    let frame = switchboard_protocol::ServerFrame::Message {
                        message: message.clone(),
                    };
                    switchboard_protocol::codec::encode_into(&frame, &mut buf)
                        .expect("server frames always serialise");
                }
                buf.extend_from_slice(then);
                buf.freeze()
            }
        }
    }
}

/// Why a push was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The connection is too far behind: a slow consumer.
    Full,
    /// The session is gone.
    Closed,
}

/// The router's end.
#[derive(Debug)]
pub struct OutboxSender {
    frames: mpsc::Sender<Outgoing>,
    shared: Arc<Shared>,
    max_bytes: usize,
}

/// The session's end.
#[derive(Debug)]
pub struct OutboxReceiver {
    frames: mpsc::Receiver<Outgoing>,
    shared: Arc<Shared>,
}

/// What both ends keep beside the channel.
#[derive(Debug, Default)]
struct Shared {
    /// Bytes of events queued.
    queued_bytes: AtomicUsize,
    /// A last frame that did not fit in a full outbox, handed over beside
    /// it: a connection closed for a reason of its own (its token revoked)
    /// must not read that it was slow just because its outbox was full.
    last_word: Mutex<Option<Bytes>>,
}

/// An outbox holding at most `max_frames` frames and `max_bytes` bytes of
/// events. Replies are neither refused for their size nor counted against
/// the events: each answers a request this connection made, it has few
/// outstanding (one `subscribe` at a time), and a long backlog must reach a
/// client that is reading even while events are queued behind it. (Counted,
/// a 5 MB backlog not yet taken off the queue made the next event "too
/// much", and cut off a client that was reading as fast as it could.)
pub fn outbox(max_frames: usize, max_bytes: usize) -> (OutboxSender, OutboxReceiver) {
    let (tx, rx) = mpsc::channel(max_frames.max(1));
    let shared = Arc::new(Shared::default());
    (
        OutboxSender {
            frames: tx,
            shared: Arc::clone(&shared),
            max_bytes,
        },
        OutboxReceiver { frames: rx, shared },
    )
}

impl OutboxSender {
    /// The most frames this outbox holds.
    pub fn max_frames(&self) -> usize {
        self.frames.max_capacity()
    }

    /// The most bytes of events this outbox holds.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    pub fn try_push(&self, out: Outgoing) -> Result<(), PushError> {
        let len = out.counted_len();
        // Count first, so the receiver never takes away bytes not yet added.
        let before = self.shared.queued_bytes.fetch_add(len, Ordering::AcqRel);
        if before + len > self.max_bytes {
            self.shared.queued_bytes.fetch_sub(len, Ordering::AcqRel);
            return Err(PushError::Full);
        }
        self.frames.try_send(out).map_err(|error| {
            self.shared.queued_bytes.fetch_sub(len, Ordering::AcqRel);
            match error {
                mpsc::error::TrySendError::Full(_) => PushError::Full,
                mpsc::error::TrySendError::Closed(_) => PushError::Closed,
            }
        })
    }

    /// The router's last frame for this connection; the router drops this
    /// sender next. It goes out after what is queued, even when the outbox
    /// is full.
    pub fn say_last(&self, bytes: Bytes) {
        let last = Outgoing {
            payload: Payload::Encoded(bytes.clone()),
            answers_request: false,
            last: true,
        };
        if let Err(PushError::Full) = self.try_push(last) {
            *self
                .shared
                .last_word
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(bytes);
        }
    }
}

impl OutboxReceiver {
    /// The next frame; `None` once the router has dropped this connection
    /// and everything it queued (and its last word, if it had one) is taken.
    pub async fn recv(&mut self) -> Option<Outgoing> {
        let Some(out) = self.frames.recv().await else {
            return self.last_word();
        };
        self.shared
            .queued_bytes
            .fetch_sub(out.counted_len(), Ordering::AcqRel);
        Some(out)
    }

    /// The router's last frame, if it left one beside the outbox: it
    /// comes after everything queued, from either way of receiving.
    fn last_word(&self) -> Option<Outgoing> {
        let bytes = self
            .shared
            .last_word
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()?;
        Some(Outgoing {
            payload: Payload::Encoded(bytes),
            answers_request: false,
            last: true,
        })
    }

    /// Whether the router has let go of this connection.
    #[cfg(test)]
    pub fn is_closed(&self) -> bool {
        self.frames.is_closed()
    }

    /// The next frame if one is queued now.
    pub fn try_recv(&mut self) -> Option<Outgoing> {
        let out = match self.frames.try_recv() {
            Ok(out) => out,
            Err(mpsc::error::TryRecvError::Empty) => return None,
            Err(mpsc::error::TryRecvError::Disconnected) => return self.last_word(),
        };
        self.shared
            .queued_bytes
            .fetch_sub(out.counted_len(), Ordering::AcqRel);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: usize) -> Outgoing {
        Outgoing {
            payload: Payload::Encoded(Bytes::from(vec![b'x'; len])),
            answers_request: false,
            last: false,
        }
    }

    #[test]
    fn bounded_by_frames() {
        let (tx, mut rx) = outbox(2, 1_000);
        assert_eq!(tx.try_push(frame(1)), Ok(()));
        assert_eq!(tx.try_push(frame(1)), Ok(()));
        assert_eq!(tx.try_push(frame(1)), Err(PushError::Full));
        assert!(rx.try_recv().is_some());
        assert_eq!(tx.try_push(frame(1)), Ok(()));
    }

    fn reply(len: usize) -> Outgoing {
        Outgoing {
            answers_request: true,
            ..frame(len)
        }
    }

    #[test]
    fn events_are_bounded_by_bytes_replies_are_not() {
        let (tx, mut rx) = outbox(100, 10);
        assert_eq!(tx.try_push(frame(6)), Ok(()));
        assert_eq!(tx.try_push(frame(4)), Ok(()));
        assert_eq!(tx.try_push(frame(1)), Err(PushError::Full));
        assert_eq!(
            tx.try_push(reply(50)),
            Ok(()),
            "a backlog larger than the bound"
        );
        assert_eq!(tx.try_push(frame(1)), Err(PushError::Full));
        while rx.try_recv().is_some() {}
        assert_eq!(tx.try_push(frame(10)), Ok(()), "room again once read");
    }

    /// A backlog still queued leaves the events their whole bound: a client
    /// reading it is not a slow consumer for the first event behind it.
    #[tokio::test]
    async fn a_queued_backlog_does_not_count_against_the_events_behind_it() {
        let (tx, mut rx) = outbox(100, 10);
        assert_eq!(tx.try_push(reply(50)), Ok(()));
        assert_eq!(tx.try_push(frame(10)), Ok(()), "the event bound is whole");
        assert_eq!(tx.try_push(frame(1)), Err(PushError::Full));
        assert!(rx.recv().await.is_some_and(|out| out.answers_request));
        assert_eq!(
            tx.try_push(frame(1)),
            Err(PushError::Full),
            "taking the reply frees no event room"
        );
        assert_eq!(rx.recv().await.map(|out| out.to_bytes().len()), Some(10));
        assert_eq!(tx.try_push(frame(10)), Ok(()));
    }

    /// A connection dismissed while its outbox is full still gets the
    /// router's last frame, after what was queued, and then the end.
    #[tokio::test]
    async fn the_last_word_gets_through_a_full_outbox() {
        let (tx, mut rx) = outbox(2, 1_000);
        assert_eq!(tx.try_push(frame(1)), Ok(()));
        assert_eq!(tx.try_push(frame(1)), Ok(()));
        assert_eq!(tx.try_push(frame(1)), Err(PushError::Full));
        tx.say_last(Bytes::from_static(b"bye"));
        drop(tx); // as the router does next
        for _ in 0..2 {
            assert!(rx.recv().await.is_some_and(|out| !out.last));
        }
        let last = rx.recv().await.expect("the last word");
        assert!(last.last);
        assert_eq!(&last.to_bytes()[..], b"bye");
        assert!(rx.recv().await.is_none(), "then the end");
    }

    /// The session drains its outbox with `try_recv` before each request:
    /// the last word must come out that way too, or a revoked connection
    /// would go on being served.
    #[test]
    fn the_last_word_comes_out_of_try_recv_too() {
        let (tx, mut rx) = outbox(2, 1_000);
        assert_eq!(tx.try_push(frame(1)), Ok(()));
        assert_eq!(tx.try_push(frame(1)), Ok(()));
        tx.say_last(Bytes::from_static(b"bye"));
        drop(tx);
        let lasts: Vec<bool> = std::iter::from_fn(|| rx.try_recv().map(|out| out.last)).collect();
        assert_eq!(lasts, [false, false, true]);
    }

    #[tokio::test]
    async fn a_last_word_that_fits_is_queued_like_any_frame() {
        let (tx, mut rx) = outbox(2, 1_000);
        tx.say_last(Bytes::from_static(b"bye"));
        drop(tx);
        assert!(rx.recv().await.is_some_and(|out| out.last));
        assert!(rx.recv().await.is_none());
    }

    #[test]
    fn a_dropped_receiver_is_closed_not_full() {
        let (tx, rx) = outbox(4, 100);
        drop(rx);
        assert_eq!(tx.try_push(frame(1)), Err(PushError::Closed));
    }
}
