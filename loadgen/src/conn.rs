//! One connection to the server, greeted, identified and subscribed.

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use switchboard_protocol::{
    Backoff, ClientFrame, ErrorCode, GREETING_TIMEOUT, Role, ServerFrame, Token,
    codec::DEFAULT_MAX_LINE_BYTES,
};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::timeout;
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::codec::LoadCodec;
use crate::error::LoadError;
use crate::wire::Incoming;

/// Waits between attempts at a greeting: 0.2 s doubling to 3 s, five
/// retries; with the greeting timeouts, about 40 s before the run gives up.
const GREETING_RETRY: Backoff =
    Backoff::new(Duration::from_millis(200), Duration::from_secs(3)).with_retries(5);

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
            what: format!("{} {} on {server}", who.role, who.name),
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
        // The node too: with several, which one failed matters.
        let what = format!("{} {} on {server}", who.role, who.name);
        let mut conn = Conn::greeted(server, &what, max_line_bytes).await?;
        let handshake = |reason: String| LoadError::Handshake {
            what: what.clone(),
            reason,
        };
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

    /// Connects and reads the greeting, giving up on a connection that
    /// stays silent for [`GREETING_TIMEOUT`] and trying again after a
    /// jittered wait ([`GREETING_RETRY`]): a run opens connections by the
    /// thousand, and a handshake lost to a full listen queue is silent.
    async fn greeted(
        server: SocketAddr,
        what: &str,
        max_line_bytes: usize,
    ) -> Result<Conn, LoadError> {
        let mut backoff = GREETING_RETRY;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let attempt = Conn::connect_and_greet(server, what, max_line_bytes);
            if let Ok(greeted) = timeout(GREETING_TIMEOUT, attempt).await {
                return greeted;
            }
            match backoff.next_wait(random()) {
                Some(wait) => tokio::time::sleep(wait).await,
                None => {
                    return Err(LoadError::NoGreeting {
                        what: what.to_owned(),
                        attempts,
                    });
                }
            }
        }
    }

    async fn connect_and_greet(
        server: SocketAddr,
        what: &str,
        max_line_bytes: usize,
    ) -> Result<Conn, LoadError> {
        let connect_failed = |source| LoadError::Connect {
            what: what.to_owned(),
            source,
        };
        let stream = TcpStream::connect(server).await.map_err(connect_failed)?;
        // Requests are small and latency is what we measure.
        stream.set_nodelay(true).map_err(connect_failed)?;
        let (read, write) = stream.into_split();
        let mut conn = Conn {
            reader: FramedRead::new(read, LoadCodec::new(max_line_bytes)),
            writer: FramedWrite::new(write, LoadCodec::new(max_line_bytes)),
        };
        let handshake = |reason: String| LoadError::Handshake {
            what: what.to_owned(),
            reason,
        };
        match conn.next_frame().await.map_err(handshake)? {
            Incoming::Other(ServerFrame::Greeting { .. }) => Ok(conn),
            Incoming::Other(ServerFrame::Error { code, message, .. }) => Err(handshake(format!(
                "refused: {code}: {message}{}",
                per_address_hint(code)
            ))),
            other => Err(handshake(format!("expected a greeting, got {other:?}"))),
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

/// Any number: it only spreads the retry waits (the clock if the system
/// has no randomness to give).
fn random() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.subsec_nanos().into())
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A listener nobody accepts on: the kernel completes connections, and
    /// no greeting ever comes, as after a handshake lost to a full queue.
    #[tokio::test(start_paused = true)]
    async fn a_server_that_never_greets_is_retried_then_reported() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
        let server = listener.local_addr().expect("has an address");
        let started = tokio::time::Instant::now();
        let result = Conn::greeted(server, "user ana", DEFAULT_MAX_LINE_BYTES).await;
        let Err(error @ LoadError::NoGreeting { attempts: 6, .. }) = result else {
            panic!("expected NoGreeting after 6 attempts");
        };
        let waited = started.elapsed();
        let longest = GREETING_TIMEOUT * 6
            + GREETING_RETRY
                .longest_total()
                .expect("the retries are bounded");
        assert!(
            waited >= GREETING_TIMEOUT * 6 && waited <= longest,
            "{waited:?}"
        );
        let text = error.to_string();
        assert!(
            text.starts_with("user ana: no greeting from the server in 6 attempts of 5 s each"),
            "{text}"
        );
        assert!(text.contains("--listen-backlog"), "{text}");
    }
}
