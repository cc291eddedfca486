//! Connecting and signing in: TCP (and TLS), the server's greeting, `hello`
//! and its `welcome`, within [`CONNECT_TIMEOUT`]; and [`ConnectError`], which
//! says which failures are worth retrying.

use std::path::PathBuf;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use switchboard_protocol::{
    ClientCodec, ClientFrame, ErrorCode, GREETING_TIMEOUT, Name, Role, ServerFrame, Token,
};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use super::Endpoint;
use super::endpoint::{timeout_hint, tls_hint};

/// How long connecting and signing in may take before the attempt is given
/// up: the protocol's [`GREETING_TIMEOUT`], which also covers `hello`. A
/// server that is up greets within milliseconds; a handshake lost to a
/// full listen queue never does (see `retry`).
pub const CONNECT_TIMEOUT: Duration = GREETING_TIMEOUT;

/// The longest line this client reads from the server, in bytes.
///
/// The protocol's default (64 KiB) is the server's limit on what clients
/// send; what a server sends can be far longer, because a `history` reply
/// is one line holding a whole page of messages. The largest legitimate
/// one is a page of 1,000 messages (the protocol's maximum `limit`), each
/// with a body of 4,096 characters (the server's default `--max-body`) of
/// up to 4 bytes each in UTF-8. JSON escaping does not make a body longer
/// than that: the only characters a body may hold that get escaped are `"`,
/// `\`, newline and tab, one byte each and two once escaped (other control
/// characters, six bytes escaped, are refused in bodies). So a body is
/// at most 16,384 bytes, a message with the longest names, id and
/// timestamp about 16,600, and the page about 16.6 MB (a test holds the
/// limit to that arithmetic). 32 MiB leaves twice that, for a server
/// allowing longer bodies; a line beyond it is reported to the app
/// ([`NetEvent::Unreadable`](crate::app::NetEvent::Unreadable)) and skipped, and the connection goes on.
pub const MAX_SERVER_LINE_BYTES: usize = 32 * 1024 * 1024;

/// A byte stream to the server: plain TCP or TLS over it.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Transport for T {}

/// One signed-in connection to the server, framed with the client's codec.
/// (Not `Connection`: that is [`crate::app::Connection`], the state the
/// header shows.)
pub type Link = Framed<Box<dyn Transport>, ClientCodec>;

/// Who signs in.
#[derive(Debug, Clone)]
pub struct Identity {
    pub role: Role,
    pub name: Name,
    pub token: Option<Token>,
}

/// What `welcome` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    /// A new user's token, shown once.
    pub token: Option<Token>,
    pub agents_online: Option<u32>,
}

#[derive(Debug, Error)]
pub enum ConnectError {
    /// The cause is in the message with what to do about it, not a
    /// `source` (which would be printed a second time).
    #[error(
        "cannot reach the switchboard server at {addr}: {reason}{}",
        unreachable_hint(reason)
    )]
    Unreachable {
        addr: String,
        reason: std::io::Error,
    },
    /// No greeting (or TLS handshake) in time; `tls` is whether the client
    /// spoke TLS.
    #[error(
        "the server at {addr} did not answer within {CONNECT_TIMEOUT:?}{}",
        timeout_hint(*.tls)
    )]
    Timeout { addr: String, tls: bool },
    #[error(
        "the server refused to sign in {name}: {message} ({}){}",
        code.as_str(),
        refused_hint(*role, *code, name)
    )]
    Refused {
        role: Role,
        name: Name,
        code: ErrorCode,
        message: String,
    },
    #[error("the connection failed while signing in")]
    Io(#[source] std::io::Error),
    #[error("the server closed the connection while signing in")]
    Closed,
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
    /// The handshake's error is part of the message, not its `source()`:
    /// as both, `main`'s `{:#}` printed it twice, and the hint must come
    /// after it.
    #[error("the TLS handshake with {addr} failed: {error}{}", tls_hint(.error))]
    Tls { addr: String, error: std::io::Error },
    #[error("cannot use the CA certificates in {path}: {reason}")]
    Ca { path: PathBuf, reason: String },
    /// Several nodes were given and each failed in this round, for the
    /// reasons listed in the order they were tried.
    #[error("no server of the {} given let {name} sign in: {}", .failures.len(), each_failure(.failures))]
    EveryNode {
        name: Name,
        failures: Vec<(String, ConnectError)>,
    },
    /// The first sign-in failed this often in ways a moment could change
    /// (see `retry::connect_retrying`).
    #[error(
        "{last} (gave up after {attempts} attempts: the server is overloaded or not accepting \
         connections; try again in a minute, and tell its operator if it goes on)"
    )]
    GaveUp {
        attempts: u32,
        last: Box<ConnectError>,
    },
}

/// `a:7878: why; b:7878: why`, each with its causes (as `main`'s `{:#}`
/// prints one error), without naming an address twice.
fn each_failure(failures: &[(String, ConnectError)]) -> String {
    let said: Vec<String> = failures
        .iter()
        .map(|(addr, error)| {
            let mut text = error.to_string();
            let mut cause = std::error::Error::source(error);
            while let Some(source) = cause {
                text = format!("{text}: {source}");
                cause = source.source();
            }
            if text.contains(addr.as_str()) {
                text
            } else {
                format!("{addr}: {text}")
            }
        })
        .collect();
    said.join("; ")
}

impl ConnectError {
    /// Trying again cannot help: the credentials are wrong.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            ConnectError::Refused { code, .. }
                if matches!(code, ErrorCode::Unauthorized | ErrorCode::InvalidName | ErrorCode::Forbidden)
        )
    }
}

/// What to do when no connection could be made: the two usual mistakes.
fn unreachable_hint(reason: &std::io::Error) -> &'static str {
    match reason.kind() {
        std::io::ErrorKind::ConnectionRefused => {
            " (is `switchboard serve` running there? --server HOST:PORT picks another)"
        }
        std::io::ErrorKind::InvalidInput => " (--server takes HOST:PORT, e.g. 127.0.0.1:7878)",
        _ => "",
    }
}

/// What to do when the server would not sign us in.
fn refused_hint(role: Role, code: ErrorCode, name: &Name) -> String {
    match (role, code) {
        (Role::Agent, ErrorCode::Unauthorized) => format!(
            ": give the token `switchboard agent add {name}` printed, or a new one from \
             `switchboard agent rotate {name}` (a rotated or removed agent's old token stops \
             working)"
        ),
        // The server's message says to sign in with the token or choose
        // another name; this says how to give the token here.
        (Role::User, ErrorCode::Unauthorized) => "; give a token with --token TOKEN".to_owned(),
        _ => String::new(),
    }
}

/// Connects, reads the greeting and signs in.
pub async fn connect(
    endpoint: &Endpoint,
    identity: &Identity,
) -> Result<(Link, Welcome), ConnectError> {
    tokio::time::timeout(CONNECT_TIMEOUT, connect_inner(endpoint, identity))
        .await
        .map_err(|_| ConnectError::Timeout {
            addr: endpoint.addr.clone(),
            tls: endpoint.tls.is_some(),
        })?
}

async fn connect_inner(
    endpoint: &Endpoint,
    identity: &Identity,
) -> Result<(Link, Welcome), ConnectError> {
    let addr = endpoint.addr.as_str();
    let unreachable = |reason| ConnectError::Unreachable {
        addr: addr.to_owned(),
        reason,
    };
    let stream = TcpStream::connect(addr).await.map_err(unreachable)?;
    stream.set_nodelay(true).map_err(unreachable)?;
    let transport: Box<dyn Transport> = match &endpoint.tls {
        None => Box::new(stream),
        Some(connector) => Box::new(
            connector
                .connect(endpoint.server_name()?, stream)
                .await
                .map_err(|error| ConnectError::Tls {
                    addr: addr.to_owned(),
                    error,
                })?,
        ),
    };
    let mut conn = framed(transport);
    match next_frame(&mut conn).await? {
        ServerFrame::Greeting { .. } => {}
        ServerFrame::Error { code, message, .. } => {
            return Err(ConnectError::Refused {
                role: identity.role,
                name: identity.name.clone(),
                code,
                message,
            });
        }
        other => return Err(ConnectError::Protocol(format!("{other:?}"))),
    }
    conn.send(ClientFrame::Hello {
        id: None,
        role: identity.role,
        name: identity.name.to_string(),
        token: identity.token.clone(),
    })
    .await
    .map_err(unreachable)?;
    loop {
        match next_frame(&mut conn).await? {
            ServerFrame::Welcome {
                token,
                agents_online,
                ..
            } => {
                return Ok((
                    conn,
                    Welcome {
                        token,
                        agents_online,
                    },
                ));
            }
            ServerFrame::Error { code, message, .. } => {
                return Err(ConnectError::Refused {
                    role: identity.role,
                    name: identity.name.clone(),
                    code,
                    message,
                });
            }
            // Nothing else is due before `welcome`; tolerate it anyway.
            _ => {}
        }
    }
}

/// Frames `transport` with the client's codec, reading lines of up to
/// [`MAX_SERVER_LINE_BYTES`].
pub(super) fn framed(transport: Box<dyn Transport>) -> Link {
    Framed::new(transport, ClientCodec::new(MAX_SERVER_LINE_BYTES))
}

async fn next_frame(conn: &mut Link) -> Result<ServerFrame, ConnectError> {
    match conn.next().await {
        Some(Ok(Ok(frame))) => Ok(frame),
        Some(Ok(Err(bad))) => Err(ConnectError::Protocol(bad.to_string())),
        Some(Err(e)) => Err(ConnectError::Io(e)),
        None => Err(ConnectError::Closed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_protocol::{Message, RequestId};
    use tokio::io::duplex;
    use tokio_rustls::rustls;
    use tokio_util::codec::LinesCodec;

    use crate::app::test_support::name;
    use crate::net::tests::{line_of, message};

    /// The largest line a server sends legitimately is a `history` reply of
    /// 1,000 messages, each of the longest body in the widest characters.
    #[test]
    fn the_line_limit_fits_the_largest_history_reply() {
        let longest = message(
            u64::MAX,
            &"u".repeat(32),
            Some(&"a".repeat(32)),
            &"\u{1F600}".repeat(4_096),
        );
        let page = |messages: Vec<Message>| {
            line_of(&ServerFrame::History {
                id: Some(RequestId::Str("i".repeat(64))),
                user: longest.user.clone(),
                messages,
            })
            .len()
        };
        let empty = page(vec![]);
        let one = page(vec![longest.clone()]);
        // Every further message adds itself and a comma.
        let largest = one + 999 * (one - empty + 1);
        let limit = framed(Box::new(duplex(1).0)).codec().max_line_bytes();
        assert!(largest <= limit, "{largest} bytes > {limit}");
    }

    fn ana() -> Identity {
        Identity {
            role: Role::User,
            name: name("ana"),
            token: None,
        }
    }

    /// A server on loopback that takes connections and says nothing, as a
    /// TLS server does while it waits for the client's hello. The kernel
    /// completes the connections; nobody accepts them.
    fn silent_server() -> (std::net::TcpListener, String) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
        let addr = listener.local_addr().expect("has an address").to_string();
        (listener, addr)
    }

    /// The cause used to be both in the message and its `source()`, so
    /// `main`'s `{:#}` printed it twice on one line.
    #[test]
    fn a_failed_tls_handshake_names_its_cause_once() {
        let cause = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let error = ConnectError::Tls {
            addr: "127.0.0.1:7878".into(),
            error: std::io::Error::new(std::io::ErrorKind::InvalidData, cause.clone()),
        };
        let cause = cause.to_string();
        let alone = error.to_string();
        let chain = format!("{:#}", anyhow::Error::from(error));
        for text in [alone, chain] {
            assert!(
                text.starts_with("the TLS handshake with 127.0.0.1:7878 failed: "),
                "{text}"
            );
            assert_eq!(text.matches(&cause).count(), 1, "{text}");
        }
    }

    /// A TLS server waits for the client's hello and never greets a
    /// plaintext client, which only sees a timeout.
    #[tokio::test(start_paused = true)]
    async fn a_plaintext_client_that_gets_no_greeting_is_told_to_try_tls() {
        let (_listener, addr) = silent_server();
        let plain = connect(&Endpoint::plain(addr.clone()), &ana()).await;
        let Err(error) = plain else {
            panic!("signed in to a silent server");
        };
        assert_eq!(
            error.to_string(),
            format!("the server at {addr} did not answer within 5s (if it serves TLS, add --tls)")
        );
        // Already speaking TLS: the hint would mislead.
        let tls = Endpoint::tls(addr.clone(), None).expect("TLS client");
        let Err(error) = connect(&tls, &ana()).await else {
            panic!("signed in to a silent server");
        };
        assert_eq!(
            error.to_string(),
            format!("the server at {addr} did not answer within 5s")
        );
    }

    /// A plaintext server greets first; a TLS client reads that line as a
    /// broken TLS record.
    #[tokio::test]
    async fn a_tls_client_greeted_in_plaintext_is_told_to_drop_tls() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let addr = listener.local_addr().expect("has an address").to_string();
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.expect("accepts");
            let mut lines = Framed::new(stream, LinesCodec::new());
            let greeting = ServerFrame::Greeting {
                server: "switchboard".into(),
                version: "0.1.0".into(),
                protocol: 2,
            };
            lines.send(line_of(&greeting)).await.expect("greets");
            // Hold the connection until the client hangs up.
            while let Some(Ok(_)) = lines.next().await {}
        });
        let tls = Endpoint::tls(addr.clone(), None).expect("TLS client");
        let Err(error) = connect(&tls, &ana()).await else {
            panic!("signed in over TLS to a plaintext server");
        };
        let text = format!("{:#}", anyhow::Error::from(error));
        assert!(
            text.starts_with(&format!("the TLS handshake with {addr} failed: ")),
            "{text}"
        );
        assert!(
            text.ends_with(" (if the server does not serve TLS, leave out --tls)"),
            "{text}"
        );
        server.abort();
    }
}
