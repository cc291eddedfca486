//! How a committed batch travels between a cluster's nodes (issue 16): one
//! JSON object per bus message, encoded once by the node that committed it
//! and decoded by every other.
//!
//! The batch carries its events, not rendered frames: each node decides
//! for its own connections who hears what (`deliver.rs`), as it does for
//! its own commits. It carries the position of the batch before it
//! ([`Linked::after`]), so a node can tell from one batch whether it missed
//! any (`feed_order.rs`). A format version goes first: a node that reads a
//! batch of a version it does not know refuses it, and reads that position
//! back from storage, rather than misread it.
//!
//! JSON because every type in a batch already has its serde form (the
//! protocol's `Message`, names, request ids) and a batch is encoded once per
//! commit, not per recipient.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::event::{Batch, Event, Seq};

/// The most batches one read-back of the feed table returns; a reader asks
/// again when it got that many.
pub const READ_BACK_LIMIT: u32 = 512;

/// A batch as a shared database's feed table holds it: encoded, linked.
pub type StoredBatch = Linked<Vec<u8>>;

/// Where a node reads a shared database's feed table back by position:
/// storage answers (`store::SharedFeed`), fan-out asks
/// (`fanout/cluster_feed.rs`); this trait is all they share of it.
pub trait FeedTable: Clone + Send + Sync + 'static {
    /// The batches after position `after`, oldest first, at most
    /// [`READ_BACK_LIMIT`]; the error says why not, for a person.
    fn after(&self, after: Seq) -> impl Future<Output = Result<Vec<StoredBatch>, String>> + Send;
}

/// The format this build writes and reads. 2: events of protocol version
/// 2 (claims and transfers as `Assigned`, `Resolved`). 3: messages may be
/// notes (`"note":true`): a node of format 2 would ignore the field and
/// show a note to its user, so it must refuse the batch instead.
pub const FEED_FORMAT: u32 = 3;

/// Why a bus message is not a batch this node can apply.
#[derive(Debug, Error)]
pub enum FeedWireError {
    #[error("a feed batch is not valid ({0}); its position will be read from storage")]
    Invalid(#[from] serde_json::Error),
    #[error(
        "a feed batch is format {found}, this node reads format {FEED_FORMAT}: \
         every node of a cluster must run the same release"
    )]
    Format { found: u32 },
}

/// A batch with the position of the one committed before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Linked<T> {
    /// The position of the batch committed just before this one (the
    /// position a snapshot reports just before this commit).
    pub after: Seq,
    pub seq: Seq,
    pub item: T,
}

#[derive(Serialize)]
struct Outgoing<'a> {
    format: u32,
    after: Seq,
    seq: Seq,
    events: &'a [&'a Event],
}

#[derive(Deserialize)]
struct Incoming {
    format: u32,
    after: Seq,
    seq: Seq,
    events: Vec<Event>,
}

/// One batch, as the bus carries it.
pub fn encode(after: Seq, batch: &Batch) -> Vec<u8> {
    encode_events(after, batch.seq, batch.events.iter())
}

/// One batch from its events by reference: the writer encodes a batch
/// before it commits (to store it in the feed table in the same
/// transaction), while its events still sit in the requests' outcomes.
pub fn encode_events<'a>(after: Seq, seq: Seq, events: impl Iterator<Item = &'a Event>) -> Vec<u8> {
    let events: Vec<&Event> = events.collect();
    let outgoing = Outgoing {
        format: FEED_FORMAT,
        after,
        seq,
        events: &events,
    };
    serde_json::to_vec(&outgoing).expect("a batch always serialises")
}

/// A batch from the bus.
pub fn decode(bytes: &[u8]) -> Result<Linked<Batch>, FeedWireError> {
    let incoming: Incoming = serde_json::from_slice(bytes)?;
    if incoming.format != FEED_FORMAT {
        return Err(FeedWireError::Format {
            found: incoming.format,
        });
    }
    Ok(Linked {
        after: incoming.after,
        seq: incoming.seq,
        item: Batch {
            seq: incoming.seq,
            events: incoming.events,
        },
    })
}

#[cfg(test)]
mod tests {
    use switchboard_protocol::{Message, Name, Priority, ReleaseReason, RequestId, Timestamp};

    use super::*;
    use crate::event::{NodeId, Origin};

    fn name(text: &str) -> Name {
        Name::parse(text).expect("a valid name")
    }

    fn batch() -> Batch {
        let origin = Origin {
            node: NodeId(2),
            conn: 7,
            request: Some(RequestId::Str("s1".into())),
        };
        let message = Message {
            id: 41,
            ts: Timestamp::now(),
            user: name("ana"),
            from: switchboard_protocol::Role::Agent,
            agent: Some(name("alice")),
            body: switchboard_protocol::Body::parse("hello ✓", 4096).expect("a valid body"),
            priority: Priority::Urgent,
            // A note: the flag must cross the bus, or a node shows it to
            // its user.
            note: true,
        };
        Batch {
            seq: Seq(42),
            events: vec![
                Event::Sent {
                    origin: origin.clone(),
                    message,
                    taken_by: Some(name("alice")),
                },
                Event::Released {
                    origin: None,
                    user: name("ben"),
                    agent: name("bob"),
                    by: None,
                    reason: Some(ReleaseReason::AgentOffline),
                },
                Event::Assigned {
                    origin: Some(origin.clone()),
                    user: name("cy"),
                    agent: name("bob"),
                    by: Some(name("alice")),
                },
                Event::Resolved {
                    origin: None,
                    user: name("dee"),
                    agent: name("alice"),
                },
            ],
        }
    }

    #[test]
    fn a_batch_reads_back_as_it_was_written_with_its_link() {
        let batch = batch();
        let linked = decode(&encode(Seq(40), &batch)).expect("decodes");
        assert_eq!(linked.after, Seq(40));
        assert_eq!(linked.seq, Seq(42));
        assert_eq!(linked.item, batch);
    }

    #[test]
    fn another_format_or_garbage_is_refused_not_misread() {
        let mut text = String::from_utf8(encode(Seq(0), &batch())).expect("JSON is UTF-8");
        let next = FEED_FORMAT + 1;
        text = text.replacen(
            &format!("\"format\":{FEED_FORMAT}"),
            &format!("\"format\":{next}"),
            1,
        );
        let error = decode(text.as_bytes()).expect_err("the next format");
        assert!(
            matches!(error, FeedWireError::Format { found } if found == next),
            "{error}"
        );
        assert!(error.to_string().contains("same release"), "{error}");
        let error = decode(b"{\"format\":2}").expect_err("no positions");
        assert!(matches!(error, FeedWireError::Invalid(_)), "{error}");
    }
}
