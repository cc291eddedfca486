//! One connection, from greeting to close.
//!
//! A session reads requests, answers the ones it can at once, hands the
//! others to storage, and writes out whatever the router queued for it. One
//! task does all of it, so a connection's writes never interleave.
//!
//! Two ordering promises live here:
//! - replies come in request order: an immediate reply (`pong`, `history`, an
//!   error) waits behind the replies of earlier requests still being
//!   committed, so a person pasting several lines into netcat reads the
//!   answers in the order they typed;
//! - before it handles each request the session writes out everything
//!   already queued for it, which makes `ping` a barrier: its `pong` comes
//!   after every event that was due first.
//!
//! Writing to the socket (batched, and given up on a peer that stops
//! reading) is [`batched_writer`]'s job.
//!
//! - [`replies`]: the book of replies owed, which keeps them in request order;
//! - [`replying`]: long replies (`history`, a user's backlog) read from
//!   storage a chunk at a time as they are written;
//! - [`crate::cmd::Command`]: what each request means (the session only
//!   does I/O and keeps that order);
//! - [`sign_in`]: the anonymous connection's `hello`;
//! - [`member`]: in a cluster, the connection's record for every node's
//!   presence, written at its first `subscribe` and removed as it goes;
//! - [`end`]: why a session ends and what it still writes before closing.

mod batched_writer;
mod end;
mod idle;
mod member;
mod replies;
mod replying;
mod sign_in;

use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use switchboard_protocol::codec::encode_into;
use switchboard_protocol::{ClientFrame, RequestId, ServerCodec, ServerFrame};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use crate::cmd::{Caller, Command, PerConnection, Reply};
use crate::error::RequestError;
use crate::event::ConnId;
use crate::fanout::outbox::{OutboxReceiver, Outgoing, Payload};
use crate::identity::Identity;
use crate::metrics::counts::Counted;
use crate::rate_limit::TokenBucket;
use crate::services::SharedServices;
use batched_writer::BatchedWriter;
use end::End;
use idle::IdleClock;
use member::MemberRecord;
use replies::Replies;
use sign_in::Registered;

/// How long a closing session may spend sending what it still owes.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection's read buffer starts this small and grows only for long
/// lines: most connections sit idle, and 8 KiB each adds up over thousands.
const READ_BUFFER_BYTES: usize = 512;
/// Failed `hello`s before the connection is closed (PROTOCOL.md).
const MAX_FAILED_HELLOS: u8 = 3;
/// Immediate replies held back behind uncommitted ones; past this the
/// session stops reading until storage catches up, so a client pipelining
/// cheap requests cannot grow the queue without bound.
const MAX_HELD_REPLIES: usize = 1_024;

enum State {
    Anonymous { failed_hellos: u8 },
    SignedIn(Identity),
}

/// A session over any byte stream: TCP in the server, an in-memory pipe in
/// the fuzz target and tests.
pub struct Session<R = OwnedReadHalf, W = OwnedWriteHalf> {
    conn: ConnId,
    services: SharedServices,
    reader: FramedRead<R, ServerCodec>,
    writer: BatchedWriter<W>,
    state: State,
    /// Frames the router queued for this connection (after `hello`).
    outbox: Option<OutboxReceiver>,
    registered: Option<Registered>,
    replies: Replies,
    /// The router's last frame for this connection has been written.
    dismissed: bool,
    per_connection: PerConnection,
    /// When a signed-in connection that does nothing is closed.
    idle: IdleClock,
    /// This connection in the metrics: anonymous, then its role, until dropped.
    counted: Counted,
    /// In a cluster, this connection's record, once it has subscribed.
    member: Option<MemberRecord>,
}

impl Session {
    /// A session on a TCP connection (split without a lock between halves).
    /// `peer`: the client's address, as `accept` gave it.
    pub fn new(conn: ConnId, stream: TcpStream, peer: IpAddr, services: SharedServices) -> Self {
        let (read, write) = stream.into_split();
        Session::over(conn, read, write, services).with_peer(Some(peer))
    }
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    /// A session reading requests from `read` and writing to `write`.
    pub fn over(conn: ConnId, read: R, write: W, services: SharedServices) -> Self {
        let config = &services.config;
        Self {
            conn,
            reader: FramedRead::with_capacity(
                read,
                ServerCodec::new(config.max_line_bytes),
                READ_BUFFER_BYTES,
            ),
            writer: BatchedWriter::new(write),
            state: State::Anonymous { failed_hellos: 0 },
            outbox: None,
            registered: None,
            replies: Replies::default(),
            dismissed: false,
            idle: IdleClock::new(config.idle_timeout),
            per_connection: PerConnection {
                sends: TokenBucket::new(config.send_rate, config.send_burst),
                peer: None,
            },
            counted: Counted::new(Arc::clone(&services.counts)),
            member: None,
            services,
        }
    }

    /// The client's address (a TLS session's, known before its handshake).
    /// Its new names and its users' messages are counted by address.
    pub fn with_peer(mut self, peer: Option<IpAddr>) -> Self {
        self.per_connection.peer = peer;
        self
    }

    pub async fn run(mut self, shutdown: CancellationToken) {
        let end = self.serve(&shutdown).await;
        tracing::debug!(conn = self.conn, ?end, "session ending");
        if timeout(CLOSE_TIMEOUT, self.close(end)).await.is_err() {
            tracing::debug!(conn = self.conn, "peer too slow to take its last frames");
        }
    }

    async fn serve(&mut self, shutdown: &CancellationToken) -> End {
        let greeting = ServerFrame::Greeting {
            server: switchboard_protocol::SERVER_NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            protocol: switchboard_protocol::PROTOCOL_VERSION,
        };
        if self.write_frame(&greeting).await.is_err() {
            return End::Broken;
        }
        let hello_deadline = Instant::now() + self.services.config.hello_timeout;
        // One waiter for the whole session, not a new one per loop turn.
        let shutting_down = shutdown.cancelled();
        tokio::pin!(shutting_down);
        loop {
            if self.dismissed {
                return End::Dismissed;
            }
            let anonymous = matches!(self.state, State::Anonymous { .. });
            tokio::select! {
                () = &mut shutting_down => return End::Shutdown,
                () = sleep_until(hello_deadline), if anonymous => return End::HelloTimeout,
                () = sleep_until_some(self.idle.deadline()), if !anonymous => return End::Idle,
                queued = next_outgoing(&mut self.outbox) => match queued {
                    Some(out) => {
                        if self.write_outgoing(out).await.is_err() {
                            return End::Broken;
                        }
                    }
                    None => return self.cut_off(),
                },
                item = self.reader.next() => {
                    let outcome = match item {
                        None => return End::PeerClosed,
                        Some(Err(error)) => {
                            tracing::debug!(conn = self.conn, %error, "read failed");
                            return End::Broken;
                        }
                        Some(Ok(Err(bad_line))) => {
                            let id = bad_line.request_id().cloned();
                            self.reply_error(id, &RequestError::Frame(bad_line)).await.map(|()| None)
                        }
                        Some(Ok(Ok(frame))) => self.handle(frame).await,
                    };
                    match outcome {
                        Ok(None) => {}
                        Ok(Some(end)) => return end,
                        Err(_) => return End::Broken,
                    }
                }
            }
        }
    }

    /// Answers one request; `Some(end)` when the session should end.
    async fn handle(&mut self, frame: ClientFrame) -> io::Result<Option<End>> {
        // The barrier: what was queued before this request goes out first.
        self.write_queued().await?;
        if self.dismissed {
            // The router's last frame went out: carry out nothing more.
            return Ok(Some(End::Dismissed));
        }
        if self.replies.held() >= MAX_HELD_REPLIES {
            self.pay_what_is_owed().await?;
        }
        let identity = match &self.state {
            State::SignedIn(identity) => identity.clone(),
            State::Anonymous { .. } => return self.handle_anonymous(frame).await,
        };
        let request = frame.id().cloned();
        // A handle of its own, so commands can borrow it while the session
        // writes.
        let services = Arc::clone(&self.services);
        let services = &*services;
        let command = Command::from_frame(frame, &identity, services, &mut self.per_connection);
        let mut one_at_a_time = false;
        let result = match command {
            Ok(command) => {
                self.idle.saw(&command, Instant::now());
                one_at_a_time = command.one_at_a_time();
                if command.reads_own_writes() {
                    self.pay_what_is_owed().await?;
                }
                let recorded = self.record_membership(&command, &identity).await;
                let caller = Caller {
                    conn: self.conn,
                    request: request.clone(),
                    identity: &identity,
                    services,
                };
                match recorded {
                    Ok(()) => command.apply(caller).await,
                    Err(error) => Err(error),
                }
            }
            Err(error) => Err(error),
        };
        match result {
            // Nothing is owed before a history (it paid first): written now,
            // read and encoded as it goes.
            Ok(Reply::Page(page)) => self.write_history(page, &identity).await?,
            Ok(Reply::Now(frame)) => {
                // Events queued while it ran go first (a cluster's `ping`
                // waits for other nodes' commits: they are its barrier).
                self.write_queued().await?;
                self.reply(&frame).await?
            }
            Ok(Reply::Later) => self.replies.expect_later(),
            Ok(Reply::Close) => return Ok(Some(End::Bye)),
            Err(error) => self.reply_error(request, &error).await?,
        }
        if one_at_a_time || self.replies.owed_count() >= self.max_owed() {
            self.pay_what_is_owed().await?;
        }
        Ok(None)
    }

    /// Replies owed through the router past which the session reads no
    /// more requests until they are written: half the outbox, so that they
    /// and the events queued beside them fit in it. A client pipelining
    /// requests without reading is slowed down through TCP, never cut off
    /// as a slow consumer for replies it asked for (`tests/pipelining.rs`).
    fn max_owed(&self) -> u64 {
        (self.services.config.outbox_frames / 2).max(1) as u64
    }

    async fn pay_what_is_owed(&mut self) -> io::Result<()> {
        while self.replies.owed() {
            match next_outgoing(&mut self.outbox).await {
                Some(out) => self.write_outgoing(out).await?,
                None => break,
            }
        }
        Ok(())
    }

    async fn write_outgoing(&mut self, first: Outgoing) -> io::Result<()> {
        self.put(first).await?;
        self.write_queued().await?;
        self.writer.flush().await
    }

    /// Writes out everything the router has queued so far.
    async fn write_queued(&mut self) -> io::Result<()> {
        let mut wrote = false;
        while let Some(out) = self.outbox.as_mut().and_then(OutboxReceiver::try_recv) {
            self.put(out).await?;
            wrote = true;
        }
        if wrote {
            self.writer.flush().await?;
        }
        Ok(())
    }

    async fn put(&mut self, out: Outgoing) -> io::Result<()> {
        if self.dismissed {
            return Ok(());
        }
        match out.payload {
            Payload::Encoded(bytes) => self.writer.write(&bytes).await?,
            Payload::Backlog {
                messages,
                rest,
                then,
            } => {
                self.write_backlog(messages, &rest).await?;
                self.writer.write(&then).await?;
            }
        }
        self.dismissed = out.last;
        if out.answers_request {
            self.replies.answered();
            // Immediate replies that were waiting for this one follow it.
            while let Some(reply) = self.replies.next_due() {
                self.writer.write(&reply).await?;
            }
        }
        Ok(())
    }

    /// Answers the request being handled: now, or after the replies to
    /// earlier requests if some are still being committed.
    async fn reply(&mut self, frame: &ServerFrame) -> io::Result<()> {
        match self.replies.immediate(encode(frame)?) {
            None => Ok(()),
            Some(bytes) => {
                self.writer.write(&bytes).await?;
                self.writer.flush().await
            }
        }
    }

    async fn reply_error(&mut self, id: Option<RequestId>, error: &RequestError) -> io::Result<()> {
        tracing::debug!(conn = self.conn, code = %error.code(), "request refused");
        self.services.counts.refusals.count(error.code());
        self.reply(&error.to_frame(id)).await
    }

    /// Writes a frame that is not a reply (greeting, welcome, last words).
    async fn write_frame(&mut self, frame: &ServerFrame) -> io::Result<()> {
        let bytes = encode(frame)?;
        self.writer.write(&bytes).await?;
        self.writer.flush().await
    }

    async fn write_error(&mut self, id: Option<RequestId>, error: &RequestError) -> io::Result<()> {
        tracing::debug!(conn = self.conn, code = %error.code(), "request refused");
        self.services.counts.refusals.count(error.code());
        self.write_frame(&error.to_frame(id)).await
    }
}

fn encode(frame: &ServerFrame) -> io::Result<Bytes> {
    let mut buf = BytesMut::with_capacity(256);
    encode_into(frame, &mut buf)?;
    Ok(buf.freeze())
}

/// Sleeps until `deadline`; for ever if there is none.
async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The next queued frame; never resolves before sign-in. `None` means the
/// router dropped this connection.
async fn next_outgoing(outbox: &mut Option<OutboxReceiver>) -> Option<Outgoing> {
    match outbox {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
