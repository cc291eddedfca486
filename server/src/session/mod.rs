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
//! A session ends on `bye`, end of input, a broken socket, a full outbox
//! (`slow_consumer`), a missing `hello`, three failed `hello`s, or server
//! shutdown; [`End`] decides what it still writes before closing.

mod batched_writer;

use std::collections::VecDeque;
use std::io;
use std::net::IpAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use switchboard_protocol::codec::{HistoryLine, encode_into};
use switchboard_protocol::{ClientFrame, Message, Name, RequestId, Role, ServerCodec, ServerFrame};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use crate::cmd::hello::{Hello, SignedIn};
use crate::cmd::history::History;
use crate::cmd::release::Release;
use crate::cmd::send::Send;
use crate::cmd::subscribe::Subscribe;
use crate::cmd::{Caller, Reply, ping};
use crate::error::RequestError;
use crate::event::ConnId;
use crate::fanout::Router;
use crate::fanout::outbox::{OutboxReceiver, Outgoing, Payload, outbox};
use crate::identity::Identity;
use crate::rate_limit::TokenBucket;
use crate::services::SharedServices;
use batched_writer::BatchedWriter;

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

/// Why a session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The client said `bye`.
    Bye,
    /// The client closed its side; it may still read what it is owed.
    PeerClosed,
    Shutdown,
    /// The router let go of this connection without a last frame: its
    /// outbox overflowed.
    SlowConsumer,
    /// The router sent this connection its last frame (its token was revoked).
    Dismissed,
    HelloTimeout,
    TooManyHellos,
    /// The socket failed; nothing more can be written.
    Broken,
}

/// Tells the router a connection is gone, however the session ends (even by
/// panic).
struct Registered {
    router: Router,
    conn: ConnId,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.router.disconnect(self.conn);
    }
}

/// A session over any byte stream: TCP in the server, an in-memory pipe in
/// the fuzz target and tests.
pub struct Session<R = OwnedReadHalf, W = OwnedWriteHalf> {
    conn: ConnId,
    /// The client's address, if it has one (new names are limited per
    /// address).
    peer: Option<IpAddr>,
    services: SharedServices,
    reader: FramedRead<R, ServerCodec>,
    writer: BatchedWriter<W>,
    state: State,
    /// Frames the router queued for this connection (after `hello`).
    outbox: Option<OutboxReceiver>,
    registered: Option<Registered>,
    /// Requests handed to storage, and how many of their replies are written.
    issued: u64,
    answered: u64,
    /// Immediate replies waiting for earlier replies: (requests that must be
    /// answered first, the reply).
    held: VecDeque<(u64, Bytes)>,
    /// The router's last frame for this connection has been written.
    dismissed: bool,
    sends: TokenBucket,
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
            peer: None,
            reader: FramedRead::with_capacity(
                read,
                ServerCodec::new(config.max_line_bytes),
                READ_BUFFER_BYTES,
            ),
            writer: BatchedWriter::new(write),
            state: State::Anonymous { failed_hellos: 0 },
            outbox: None,
            registered: None,
            issued: 0,
            answered: 0,
            held: VecDeque::new(),
            dismissed: false,
            sends: TokenBucket::new(config.send_rate, config.send_burst),
            services,
        }
    }

    /// The client's address (a TLS session's, known before its handshake).
    pub fn with_peer(mut self, peer: Option<IpAddr>) -> Self {
        self.peer = peer;
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

    /// The router closed this connection's outbox with no last frame: it
    /// was too slow, unless the router itself has stopped (the server is
    /// failing and about to stop: that is no client's fault).
    fn cut_off(&self) -> End {
        if self.services.router.has_stopped() {
            End::Shutdown
        } else {
            End::SlowConsumer
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
        if self.held.len() >= MAX_HELD_REPLIES {
            self.pay_what_is_owed().await?;
        }
        let identity = match &self.state {
            State::SignedIn(identity) => identity.clone(),
            State::Anonymous { .. } => return self.handle_anonymous(frame).await,
        };
        let request = frame.id().cloned();
        // A handle of its own, so commands can borrow it while the session
        // writes.
        let services = std::sync::Arc::clone(&self.services);
        let services = &*services;
        let caller = Caller {
            conn: self.conn,
            request: request.clone(),
            identity: &identity,
            services,
        };
        // A subscribe is answered with a whole backlog: one at a time per
        // connection, so pipelining them cannot pile backlogs up in memory.
        let mut one_at_a_time = false;
        let result = match frame {
            ClientFrame::Bye { .. } => return Ok(Some(End::Bye)),
            ClientFrame::Hello { .. } => Err(RequestError::AlreadyAuthenticated),
            ClientFrame::Ping { .. } => Ok(ping::apply(request.clone())),
            ClientFrame::Subscribe { since, limit, .. } => {
                one_at_a_time = true;
                // Its own earlier writes are committed before its backlog is
                // read, so the backlog has them.
                self.pay_what_is_owed().await?;
                Subscribe::parse(identity.role, since, limit)
                    .apply(caller)
                    .await
            }
            ClientFrame::Send { to, body, key, .. } => {
                if self.sends.try_take() {
                    match Send::parse(&identity, to, &body, key, services) {
                        Ok(send) => send.apply(caller).await,
                        Err(error) => Err(error),
                    }
                } else {
                    Err(RequestError::RateLimited)
                }
            }
            ClientFrame::Release { user, .. } => match Release::parse(&identity, &user) {
                Ok(release) => release.apply(caller).await,
                Err(error) => Err(error),
            },
            ClientFrame::History {
                user,
                before,
                limit,
                ..
            } => match History::parse(&identity, user, before, limit) {
                Ok(history) => {
                    // Read your own writes: a history asked for after a send
                    // includes it.
                    self.pay_what_is_owed().await?;
                    history.apply(caller).await
                }
                Err(error) => Err(error),
            },
        };
        match result {
            // Nothing is owed before a history (it paid first): written now,
            // encoded as it goes.
            Ok(Reply::Now(ServerFrame::History { id, user, messages }))
                if self.answered == self.issued =>
            {
                self.write_history(id, user, messages).await?;
            }
            Ok(Reply::Now(frame)) => self.reply(&frame).await?,
            Ok(Reply::Later) => self.issued += 1,
            Err(error) => self.reply_error(request, &error).await?,
        }
        if one_at_a_time {
            self.pay_what_is_owed().await?;
        }
        Ok(None)
    }

    async fn handle_anonymous(&mut self, frame: ClientFrame) -> io::Result<Option<End>> {
        let ClientFrame::Hello {
            id,
            role,
            name,
            token,
        } = frame
        else {
            if matches!(frame, ClientFrame::Bye { .. }) {
                return Ok(Some(End::Bye));
            }
            self.reply_error(frame.id().cloned(), &RequestError::NotAuthenticated)
                .await?;
            return Ok(None);
        };
        let signed_in = match Hello::parse(role, &name, token) {
            Ok(hello) => hello.apply(&self.services, self.peer).await,
            Err(error) => Err(error),
        };
        let error = match signed_in {
            Ok(signed_in) => match self.sign_in(id.clone(), signed_in).await? {
                Ok(()) => return Ok(None),
                Err(error) => error,
            },
            Err(error) => error,
        };
        // An operator can see who is being guessed at. The name only if it
        // is one (names are plain ASCII, safe in a log); never the token.
        tracing::warn!(
            conn = self.conn,
            %role,
            name = Name::parse(&name).ok().as_ref().map(Name::as_str),
            code = error.code().as_str(),
            "hello refused"
        );
        self.reply_error(id, &error).await?;
        if let State::Anonymous { failed_hellos } = &mut self.state {
            *failed_hellos += 1;
            if *failed_hellos >= MAX_FAILED_HELLOS {
                return Ok(Some(End::TooManyHellos));
            }
        }
        Ok(None)
    }

    /// Registers the connection with the router and says `welcome`.
    async fn sign_in(
        &mut self,
        id: Option<RequestId>,
        signed_in: SignedIn,
    ) -> io::Result<Result<(), RequestError>> {
        let SignedIn {
            identity,
            new_token,
            credential,
        } = signed_in;
        let config = &self.services.config;
        let (outbox, queued) = outbox(config.outbox_frames, config.outbox_bytes);
        let router = &self.services.router;
        let Some(agents_online) = router
            .connect(self.conn, identity.clone(), credential, outbox)
            .await
        else {
            return Ok(Err(RequestError::Internal));
        };
        self.registered = Some(Registered {
            router: router.clone(),
            conn: self.conn,
        });
        self.outbox = Some(queued);
        tracing::info!(conn = self.conn, role = %identity.role, name = %identity.name, "signed in");
        let welcome = ServerFrame::Welcome {
            id,
            role: identity.role,
            name: identity.name.clone(),
            token: new_token,
            agents_online: (identity.role == Role::User).then_some(agents_online),
        };
        self.state = State::SignedIn(identity);
        self.write_frame(&welcome).await?;
        Ok(Ok(()))
    }

    /// Writes what the session still owes, and a last word, then closes.
    async fn close(&mut self, end: End) {
        let result = match end {
            End::Bye | End::PeerClosed => self.pay_what_is_owed().await,
            End::Shutdown => {
                let bye = ServerFrame::Bye {
                    reason: Some("server shutting down".into()),
                };
                match self.pay_what_is_owed().await {
                    Ok(()) => self.write_frame(&bye).await,
                    Err(error) => Err(error),
                }
            }
            End::SlowConsumer => self.write_error(None, &RequestError::SlowConsumer).await,
            End::HelloTimeout => {
                let seconds = self.services.config.hello_timeout.as_secs();
                self.write_error(None, &RequestError::HelloTimeout(seconds))
                    .await
            }
            End::TooManyHellos | End::Dismissed => Ok(()),
            // Nothing more may be written: part of a frame may be out already.
            End::Broken => Err(io::Error::other("the connection is broken")),
        };
        if result.is_ok() {
            let _ = self.writer.shutdown().await;
        }
        // Dropping `registered` tells the router this connection is gone.
        self.registered = None;
    }

    async fn pay_what_is_owed(&mut self) -> io::Result<()> {
        while self.answered < self.issued {
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
            Payload::Backlog { messages, then } => {
                self.write_backlog(messages).await?;
                self.writer.write(&then).await?;
            }
        }
        self.dismissed = out.last;
        if out.answers_request {
            self.answered += 1;
            // Immediate replies that were waiting for this one follow it.
            while let Some((after, _)) = self.held.front()
                && *after <= self.answered
            {
                if let Some((_, reply)) = self.held.pop_front() {
                    self.writer.write(&reply).await?;
                }
            }
        }
        Ok(())
    }

    /// Answers the request being handled: now, or after the replies to
    /// earlier requests if some are still being committed.
    async fn reply(&mut self, frame: &ServerFrame) -> io::Result<()> {
        let bytes = encode(frame)?;
        if self.answered < self.issued {
            self.held.push_back((self.issued, bytes));
            Ok(())
        } else {
            self.writer.write(&bytes).await?;
            self.writer.flush().await
        }
    }

    async fn reply_error(&mut self, id: Option<RequestId>, error: &RequestError) -> io::Result<()> {
        tracing::debug!(conn = self.conn, code = %error.code(), "request refused");
        self.reply(&error.to_frame(id)).await
    }

    /// Encodes a backlog one message at a time into the batched writer: the
    /// encoded backlog is never whole in memory.
    async fn write_backlog(&mut self, messages: Vec<Message>) -> io::Result<()> {
        let mut frame = BytesMut::with_capacity(512);
        for message in messages {
            frame.clear();
            encode_into(&ServerFrame::Message { message }, &mut frame)?;
            self.writer.write(&frame).await?;
        }
        Ok(())
    }

    /// A `history` reply, encoded a message at a time as it is written: a
    /// page of a thousand long messages (up to 16 MB) is never in memory
    /// twice, as messages and as bytes.
    async fn write_history(
        &mut self,
        id: Option<RequestId>,
        user: Name,
        messages: Vec<Message>,
    ) -> io::Result<()> {
        let mut line = HistoryLine::new(id, user)?;
        self.writer.write(line.head()).await?;
        let mut piece = BytesMut::with_capacity(512);
        for message in messages {
            piece.clear();
            line.push(&message, &mut piece)?;
            self.writer.write(&piece).await?;
        }
        self.writer.write(HistoryLine::TAIL).await?;
        self.writer.flush().await
    }

    /// Writes a frame that is not a reply (greeting, welcome, last words).
    async fn write_frame(&mut self, frame: &ServerFrame) -> io::Result<()> {
        let bytes = encode(frame)?;
        self.writer.write(&bytes).await?;
        self.writer.flush().await
    }

    async fn write_error(&mut self, id: Option<RequestId>, error: &RequestError) -> io::Result<()> {
        tracing::debug!(conn = self.conn, code = %error.code(), "request refused");
        self.write_frame(&error.to_frame(id)).await
    }
}

fn encode(frame: &ServerFrame) -> io::Result<Bytes> {
    let mut buf = BytesMut::with_capacity(256);
    encode_into(frame, &mut buf)?;
    Ok(buf.freeze())
}

/// The next queued frame; never resolves before sign-in. `None` means the
/// router dropped this connection.
async fn next_outgoing(outbox: &mut Option<OutboxReceiver>) -> Option<Outgoing> {
    match outbox {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
