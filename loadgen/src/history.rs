//! The check that every acked message is stored, read back over the wire:
//! after the run, one agent connection pages through each sending user's
//! conversation with `history` (newest page first, then `before` the oldest
//! id seen) and compares it with what the user was told was committed.
//!
//! Why over the wire and not from the server's database file: the load
//! generator then works against any server that speaks the protocol (another
//! build, another storage backend, a cluster), and it checks what a client
//! can actually read back, not how one backend lays out its rows.

use std::net::SocketAddr;

use switchboard_protocol::{ClientFrame, RequestId};
use tokio::time::{Instant, timeout_at};

use crate::check::Check;
use crate::conn::{Conn, Identity};
use crate::error::LoadError;
use crate::fast_hash::FastMap;
use crate::user::Ack;
use crate::wire::{Incoming, Seen};

/// Messages asked for per `history` request: the protocol's maximum, so
/// that a page shorter than this is the conversation's first.
const HISTORY_PAGE_MESSAGES: u32 = 1_000;

/// The longest line read on the checking connection, in bytes: a page of a
/// thousand messages with bodies up to the server's default limit (4,096
/// characters of up to 4 bytes, plus their JSON) fits.
const HISTORY_MAX_LINE_BYTES: usize = 32 * 1024 * 1024;

/// What one user was told was committed: an [`Ack`] for each `sent`. The
/// bodies are made again from them one conversation at a time, so a long
/// run's bodies are never all in memory at once.
pub struct Conversation<'a> {
    pub user: String,
    /// The user's index in the run, as its bodies carry it.
    pub index: u32,
    pub acks: &'a [Ack],
}

/// Reads every conversation in `conversations` as agent `who` and checks
/// each acked message is stored there once, with the body that was sent
/// (run `tag`), and that ids increase along the conversation.
pub async fn check_stored(
    server: SocketAddr,
    who: Identity<'_>,
    tag: &str,
    conversations: &[Conversation<'_>],
    deadline: Instant,
) -> Result<Check, LoadError> {
    let reading = async {
        let mut conn = Conn::sign_in(server, &who, HISTORY_MAX_LINE_BYTES).await?;
        let mut tally = Tally::default();
        let mut request: i64 = 0;
        for conversation in conversations {
            if conversation.acks.is_empty() {
                continue;
            }
            let stored = read_conversation(&mut conn, &conversation.user, &mut request).await?;
            let acked: Vec<(u64, String)> = conversation
                .acks
                .iter()
                .map(|ack| (ack.id, ack.body(conversation.index, tag)))
                .collect();
            tally.add(&compare(&acked, &stored));
        }
        Ok::<_, LoadError>(tally)
    };
    let tally = timeout_at(deadline, reading)
        .await
        .map_err(|_| LoadError::CheckTimeout)??;
    let checked = conversations.iter().map(|c| c.acks.len() as u64).sum();
    Ok(tally.check(checked))
}

/// The whole conversation of `user`, oldest first, page by page.
async fn read_conversation(
    conn: &mut Conn,
    user: &str,
    request: &mut i64,
) -> Result<Vec<Seen>, LoadError> {
    let failed = |reason: String| LoadError::Handshake {
        what: format!("reading the history of {user}"),
        reason,
    };
    let mut pages: Vec<Vec<Seen>> = Vec::new();
    let mut before: Option<u64> = None;
    loop {
        *request += 1;
        conn.send(ClientFrame::History {
            id: Some(RequestId::Int(*request)),
            user: Some(user.to_string()),
            before,
            limit: Some(HISTORY_PAGE_MESSAGES),
        })
        .await
        .map_err(failed)?;
        let page = loop {
            match conn.next_frame().await.map_err(failed)? {
                Incoming::History {
                    request: Some(id),
                    messages,
                } if id == *request => break messages,
                Incoming::Other(switchboard_protocol::ServerFrame::Error {
                    code, message, ..
                }) => return Err(failed(format!("refused: {code}: {message}"))),
                // Not subscribed: nothing else should come, and nothing
                // else matters here.
                _ => {}
            }
        };
        let full = page.len() == HISTORY_PAGE_MESSAGES as usize;
        let oldest = page.first().map(|message| message.id);
        pages.push(page);
        // A page that does not reach further back would repeat forever.
        match oldest {
            Some(oldest) if full && before.is_none_or(|before| oldest < before) => {
                before = Some(oldest);
            }
            _ => break,
        }
    }
    Ok(pages.into_iter().rev().flatten().collect())
}

/// Problems found, by kind, over every conversation.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    missing: u64,
    duplicate: u64,
    wrong_body: u64,
    out_of_order: u64,
}

impl Tally {
    fn check(&self, checked: u64) -> Check {
        Check::new(
            checked,
            &[
                ("missing", self.missing),
                ("duplicate", self.duplicate),
                ("wrong_body", self.wrong_body),
                ("stored_out_of_order", self.out_of_order),
            ],
        )
    }

    fn add(&mut self, other: &Tally) {
        self.missing += other.missing;
        self.duplicate += other.duplicate;
        self.wrong_body += other.wrong_body;
        self.out_of_order += other.out_of_order;
    }
}

/// One conversation: each acked `(id, body)` must be stored once under that
/// id with that body (a body stored twice under two ids is a duplicate too:
/// every load body is unique), and ids must increase along `stored`.
fn compare(acked: &[(u64, String)], stored: &[Seen]) -> Tally {
    let mut by_id: FastMap<u64, (&[u8], u32)> =
        FastMap::with_capacity_and_hasher(stored.len(), Default::default());
    let mut by_body: FastMap<&[u8], u32> =
        FastMap::with_capacity_and_hasher(stored.len(), Default::default());
    for message in stored {
        by_id
            .entry(message.id)
            .and_modify(|(_, count)| *count += 1)
            .or_insert((message.body.as_bytes(), 1));
        *by_body.entry(message.body.as_bytes()).or_default() += 1;
    }
    let mut tally = Tally {
        out_of_order: stored.windows(2).filter(|w| w[1].id <= w[0].id).count() as u64,
        ..Tally::default()
    };
    for (id, body) in acked {
        match by_id.get(id) {
            None => tally.missing += 1,
            Some((stored, _)) if *stored != body.as_bytes() => tally.wrong_body += 1,
            Some((_, count))
                if *count > 1 || by_body.get(body.as_bytes()).is_some_and(|n| *n > 1) =>
            {
                tally.duplicate += 1;
            }
            Some(_) => {}
        }
    }
    tally
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Status;
    use crate::wire::Body;
    use switchboard_protocol::Role;

    fn seen(id: u64, body: &str) -> Seen {
        Seen {
            id,
            from: Role::User,
            body: Body::new(body),
        }
    }

    fn acked(pairs: &[(u64, &str)]) -> Vec<(u64, String)> {
        pairs
            .iter()
            .map(|(id, body)| (*id, body.to_string()))
            .collect()
    }

    /// Was `check::tests` against a database table; the same cases, read
    /// back as a `history` would give them.
    #[test]
    fn acked_messages_must_be_stored_with_their_body() {
        let stored = [seen(1, "a"), seen(2, "b"), seen(3, "c")];
        let good = compare(&acked(&[(1, "a"), (3, "c")]), &stored).check(2);
        assert_eq!(good.status, Status::Passed);
        let bad = compare(&acked(&[(1, "a"), (2, "x"), (4, "d")]), &stored).check(3);
        assert_eq!(bad.problems, [("missing", 1), ("wrong_body", 1)].into());
    }

    #[test]
    fn a_message_stored_twice_or_out_of_order_is_caught() {
        // The same body committed under two ids, and a repeated id.
        let twice = [seen(1, "a"), seen(2, "a"), seen(3, "b"), seen(3, "b")];
        let tally = compare(&acked(&[(1, "a"), (3, "b")]), &twice);
        assert_eq!(tally.duplicate, 2);
        assert_eq!(tally.out_of_order, 1);
        let backwards = [seen(2, "b"), seen(1, "a")];
        assert_eq!(
            compare(&acked(&[(1, "a"), (2, "b")]), &backwards).out_of_order,
            1
        );
    }
}
