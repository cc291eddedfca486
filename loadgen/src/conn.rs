//! One connection to the server, greeted, identified and subscribed.

use std::net::SocketAddr;

use futures::{SinkExt, StreamExt};
use switchboard_protocol::Role;
use switchboard_protocol::{
    ClientFrame, ErrorCode, ServerFrame, Token, codec::DEFAULT_MAX_LINE_BYTES,
};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::codec::LoadCodec;
use crate::error::LoadError;
use crate::wire::Incoming;

pub type Reader = FramedRead<OwnedReadHalf, LoadCodec>;
pub type Writer = FramedWrite<OwnedWriteHalf, LoadCodec>;

/// A subscribed connection, split so that one task can write while it waits
/// to read.
pub struct Conn {
    pub reader: Reader,
    pub writer: Writer,
}

/// Who a connection signs in as.
pub struct Identity<'a> {
    pub role: Role,
    pub name: &'a str,
    pub token: Option<&'a str>,
}

impl Conn {
    /// Connects, reads the greeting, says `hello` and subscribes with an empty
    /// backlog (`limit: 0`): the run only counts what arrives live.
    pub async fn open(server: SocketAddr, who: Identity<'_>) -> Result<Conn, LoadError> {
        let mut conn = Conn::sign_in(server, &who, DEFAULT_MAX_LINE_BYTES).await?;
        let handshake = |reason: String| LoadError::Handshake {
            what: format!("{} {}", who.role, who.name),
            reason,
        };
        conn.send(ClientFrame::Subscribe {
            id: None,
            since: None,
            limit: Some(0),
        })
        .await
        .map_err(handshake)?;
        loop {
            match conn.next_frame().await.map_err(handshake)? {
                Incoming::Other(ServerFrame::Subscribed { .. }) => return Ok(conn),
                Incoming::Other(ServerFrame::Error { code, message, .. }) => {
                    return Err(handshake(format!("subscribe refused: {code}: {message}")));
                }
                // An agent's `presence`/`assigned` state, `agents` counts.
                _ => {}
            }
        }
    }

    /// Connects, reads the greeting and says `hello`, without subscribing:
    /// such a connection gets only the replies to its own requests. Lines up
    /// to `max_line_bytes` are read (a `history` page is longer than any
    /// frame of the run).
    pub async fn sign_in(
        server: SocketAddr,
        who: &Identity<'_>,
        max_line_bytes: usize,
    ) -> Result<Conn, LoadError> {
        let what = format!("{} {}", who.role, who.name);
        let stream = TcpStream::connect(server)
            .await
            .map_err(|source| LoadError::Connect {
                what: what.clone(),
                source,
            })?;
        // Requests are small and latency is what we measure.
        stream
            .set_nodelay(true)
            .map_err(|source| LoadError::Connect {
                what: what.clone(),
                source,
            })?;
        let (read, write) = stream.into_split();
        let mut conn = Conn {
            reader: FramedRead::new(read, LoadCodec::new(max_line_bytes)),
            writer: FramedWrite::new(write, LoadCodec::new(max_line_bytes)),
        };
        let handshake = |reason: String| LoadError::Handshake {
            what: what.clone(),
            reason,
        };
        match conn.next_frame().await.map_err(handshake)? {
            Incoming::Other(ServerFrame::Greeting { .. }) => {}
            Incoming::Other(ServerFrame::Error { code, message, .. }) => {
                return Err(handshake(format!(
                    "refused: {code}: {message}{}",
                    per_address_hint(code)
                )));
            }
            other => return Err(handshake(format!("expected a greeting, got {other:?}"))),
        }
        conn.send(ClientFrame::Hello {
            id: None,
            role: who.role,
            name: who.name.to_string(),
            token: who.token.map(Token::new),
        })
        .await
        .map_err(handshake)?;
        loop {
            match conn.next_frame().await.map_err(handshake)? {
                Incoming::Other(ServerFrame::Welcome { .. }) => return Ok(conn),
                Incoming::Other(ServerFrame::Error { code, message, .. }) => {
                    return Err(handshake(format!(
                        "hello refused: {code}: {message}{}",
                        per_address_hint(code)
                    )));
                }
                _ => {}
            }
        }
    }

    pub async fn send(&mut self, frame: ClientFrame) -> Result<(), String> {
        self.writer
            .send(frame)
            .await
            .map_err(|error| format!("write failed: {error}"))
    }

    pub async fn next_frame(&mut self) -> Result<Incoming, String> {
        next_frame(&mut self.reader).await
    }

    /// The bare socket, for a connection that only needs to stay open: no
    /// codec buffers kept for it.
    pub fn into_stream(self) -> Option<TcpStream> {
        self.reader
            .into_inner()
            .reunite(self.writer.into_inner())
            .ok()
    }
}

/// The next frame, or why there is none.
pub async fn next_frame(reader: &mut Reader) -> Result<Incoming, String> {
    match reader.next().await {
        Some(Ok(Ok(frame))) => Ok(frame),
        Some(Ok(Err(error))) => Err(format!("the server sent a bad line: {error}")),
        Some(Err(error)) => Err(format!("read failed: {error}")),
        None => Err("the server closed the connection".into()),
    }
}

/// Every load connection comes from one address, which the server limits by
/// default: say how to lift that when it is what stopped the run.
fn per_address_hint(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::RateLimited | ErrorCode::ServerBusy => {
            " (a load test comes from one address: start the server with \
             --signups-per-minute 0 --max-connections-per-address 0 \
             --connections-per-second-per-address 0)"
        }
        _ => "",
    }
}
