//! Long replies, read from storage a chunk at a time as they are written.
//!
//! A `history` page arrives as the ids of its messages
//! ([`crate::cmd::history::Page`]), a user's backlog as its first chunk and
//! the ids of the rest ([`Payload::Backlog`](crate::fanout::outbox::Payload)).
//! The session reads the next chunk ([`crate::store::REPLY_CHUNK`]) only
//! once the previous one is written to the socket (or the writer's batch):
//! a client that reads slowly makes the session hold one chunk, not a page of
//! a thousand 16 KB messages. Each message is dropped once written.
//!
//! A long `history` takes a share of the server's reply budget
//! ([`crate::reply_budget`]) before its first byte, and is refused
//! (`rate_limited`, connection open) when none comes in time; a page that fits
//! in one chunk takes nothing. The rest of a backlog was promised when the
//! router queued it (live events wait behind it), so it takes a share if one
//! is free and goes on either way: it holds one chunk all the same.

use std::io;

use bytes::BytesMut;
use switchboard_protocol::codec::{HistoryLine, encode_into};
use switchboard_protocol::{Message, ServerFrame};
use tokio::io::{AsyncRead, AsyncWrite};

use super::Session;
use crate::cmd::history::Page;
use crate::identity::Identity;

/// An encoded message is written piece by piece; most fit this.
const PIECE_BYTES: usize = 512;

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    /// A `history` reply: one line, its messages read a chunk at a time.
    pub(super) async fn write_history(
        &mut self,
        page: Page,
        identity: &Identity,
    ) -> io::Result<()> {
        let Page { id, user, ids } = page;
        let first = if ids.is_empty() {
            Vec::new()
        } else {
            match self.services.store.chunk(&ids).await {
                Ok(first) => first,
                Err(error) => return self.reply_error(id, &error.into()).await,
            }
        };
        // Kept until the last byte is written.
        let _share = if first.len() < ids.len() {
            match self.services.replies.take(identity).await {
                Ok(share) => Some(share),
                Err(error) => return self.reply_error(id, &error).await,
            }
        } else {
            None
        };
        let mut line = HistoryLine::new(id, user)?;
        self.writer.write(line.head()).await?;
        // The store reads at most what it is asked for.
        let rest = &ids[first.len().min(ids.len())..];
        self.write_messages(first, rest, |message, piece| line.push(&message, piece))
            .await?;
        self.writer.write(HistoryLine::TAIL).await?;
        self.writer.flush().await
    }

    /// A backlog's messages: `first`, then those `rest` names, read a chunk
    /// at a time, each as a `message` frame.
    pub(super) async fn write_backlog(
        &mut self,
        first: Vec<Message>,
        rest: &[u64],
    ) -> io::Result<()> {
        let _share = if rest.is_empty() {
            None
        } else {
            self.services.replies.try_take()
        };
        self.write_messages(first, rest, |message, piece| {
            encode_into(&ServerFrame::Message { message }, piece)
        })
        .await
    }

    /// Writes `first`, then the messages `rest` names, read a chunk at a
    /// time once the previous chunk is written.
    async fn write_messages(
        &mut self,
        first: Vec<Message>,
        mut rest: &[u64],
        mut encode: impl FnMut(Message, &mut BytesMut) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut piece = BytesMut::with_capacity(PIECE_BYTES);
        let mut chunk = first;
        loop {
            for message in chunk {
                piece.clear();
                encode(message, &mut piece)?;
                self.writer.write(&piece).await?;
            }
            if rest.is_empty() {
                return Ok(());
            }
            // Part of the reply is out: a failed read cannot be answered
            // with an error inside it, so the connection ends.
            chunk = self.services.store.chunk(rest).await.map_err(|error| {
                tracing::error!(conn = self.conn, %error, "reading a long reply failed");
                io::Error::other(error)
            })?;
            if chunk.is_empty() {
                return Err(io::Error::other("a planned message could not be read"));
            }
            rest = &rest[chunk.len().min(rest.len())..];
        }
    }
}
