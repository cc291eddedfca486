//! The connection task: one TCP connection at a time, framed with the
//! protocol's [`ClientCodec`]. Server frames become [`NetEvent`]s for the
//! app, and so do lines that are not frames it can read; [`ClientFrame`]s
//! from the app are written out. When the connection drops it reports
//! `Disconnected`, waits with exponential backoff and signs in again; the
//! app then re-subscribes with `since` and resends what is pending (see
//! `app::update`). Frames the app sends while there is no connection are
//! dropped: the app keeps what matters (pending messages) and sends it again
//! on `Connected`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use switchboard_protocol::{
    ClientCodec, ClientFrame, ErrorCode, Name, RequestId, Role, ServerFrame, Token,
};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_util::codec::Framed;

use crate::app::{Msg, NetEvent};

/// How long connecting and signing in may take before we call the server unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// First wait before reconnecting; doubled on each failure.
pub const BACKOFF_START: Duration = Duration::from_millis(250);
/// The longest wait between reconnection attempts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(8);

/// When to check that a quiet connection is still alive, and how long to
/// wait for the answer.
///
/// A connection whose other end vanished (a laptop's lid closed, a NAT or
/// firewall that forgot the flow, a server machine that lost power) can
/// stay "open" here for many minutes while nothing gets through. Without a
/// check, an agent would sit in front of a queue that no longer moves.
#[derive(Debug, Clone, Copy)]
pub struct Heartbeat {
    /// After this long without a frame from the server, send a `ping`.
    pub after: Duration,
    /// Then, after this long still without a frame, give the connection up
    /// and reconnect.
    pub timeout: Duration,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self {
            after: Duration::from_secs(20),
            timeout: Duration::from_secs(10),
        }
    }
}

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
/// ([`NetEvent::Unreadable`]) and skipped, and the connection goes on.
pub const MAX_SERVER_LINE_BYTES: usize = 32 * 1024 * 1024;

/// The id of the heartbeat's `ping`: the app numbers its own requests, so
/// a string cannot collide, and its `pong` is not passed on.
const HEARTBEAT_ID: &str = "heartbeat";

/// A byte stream to the server: plain TCP or TLS over it.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Transport for T {}

pub type Connection = Framed<Box<dyn Transport>, ClientCodec>;

/// Where the server is and how to reach it.
#[derive(Clone)]
pub struct Endpoint {
    /// `host:port`.
    pub addr: String,
    /// `Some` to speak TLS (`--tls`), checking the server's certificate.
    pub tls: Option<TlsConnector>,
}

impl Endpoint {
    pub fn plain(addr: impl Into<String>) -> Self {
        Self {
            addr: addr.into(),
            tls: None,
        }
    }

    /// TLS trusting the PEM certificates in `ca`, or the usual public
    /// authorities (compiled in, so no system store is needed) without it.
    pub fn tls(addr: impl Into<String>, ca: Option<&Path>) -> Result<Self, ConnectError> {
        let mut roots = rustls::RootCertStore::empty();
        match ca {
            Some(path) => {
                let bad_ca = |e: rustls::pki_types::pem::Error| ConnectError::Ca {
                    path: path.to_owned(),
                    reason: e.to_string(),
                };
                for cert in CertificateDer::pem_file_iter(path).map_err(bad_ca)? {
                    roots
                        .add(cert.map_err(bad_ca)?)
                        .map_err(|e| ConnectError::Ca {
                            path: path.to_owned(),
                            reason: e.to_string(),
                        })?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ConnectError::Protocol(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            addr: addr.into(),
            tls: Some(TlsConnector::from(Arc::new(config))),
        })
    }

    /// The name the certificate must carry: the host part of `addr`.
    fn server_name(&self) -> Result<ServerName<'static>, ConnectError> {
        let host = self
            .addr
            .rsplit_once(':')
            .map_or(self.addr.as_str(), |(host, _port)| host);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        ServerName::try_from(host.to_owned())
            .map_err(|_| ConnectError::Protocol(format!("{host:?} is not a host name for TLS")))
    }
}

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
    #[error("cannot reach the switchboard server at {addr}")]
    Unreachable {
        addr: String,
        source: std::io::Error,
    },
    /// No greeting (or TLS handshake) in time; `tls` is whether the client
    /// spoke TLS.
    #[error(
        "the server at {addr} did not answer within {CONNECT_TIMEOUT:?}{}",
        timeout_hint(*.tls)
    )]
    Timeout { addr: String, tls: bool },
    #[error("the server refused to sign in {name}: {message} ({})", code.as_str())]
    Refused {
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
}

/// A TLS server waits for the client's hello and never greets a plaintext
/// client, so a plaintext client that hears nothing may be talking to one.
fn timeout_hint(tls: bool) -> &'static str {
    if tls {
        ""
    } else {
        " (if it serves TLS, add --tls)"
    }
}

/// A plaintext server greets first; a TLS client reads that line as a
/// record of no known type, and says only "received corrupt message".
fn tls_hint(error: &std::io::Error) -> &'static str {
    let cause = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>());
    match cause {
        Some(rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)) => {
            " (if the server does not serve TLS, leave out --tls)"
        }
        _ => "",
    }
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

/// Connects, reads the greeting and signs in.
pub async fn connect(
    endpoint: &Endpoint,
    identity: &Identity,
) -> Result<(Connection, Welcome), ConnectError> {
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
) -> Result<(Connection, Welcome), ConnectError> {
    let addr = endpoint.addr.as_str();
    let unreachable = |source| ConnectError::Unreachable {
        addr: addr.to_owned(),
        source,
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
fn framed(transport: Box<dyn Transport>) -> Connection {
    Framed::new(transport, ClientCodec::new(MAX_SERVER_LINE_BYTES))
}

async fn next_frame(conn: &mut Connection) -> Result<ServerFrame, ConnectError> {
    match conn.next().await {
        Some(Ok(Ok(frame))) => Ok(frame),
        Some(Ok(Err(bad))) => Err(ConnectError::Protocol(bad.to_string())),
        Some(Err(e)) => Err(ConnectError::Io(e)),
        None => Err(ConnectError::Closed),
    }
}

/// Runs until the app goes away (its sender is dropped): then says `bye`.
pub async fn run(
    endpoint: Endpoint,
    identity: Identity,
    first: (Connection, Welcome),
    mut outgoing: mpsc::Receiver<ClientFrame>,
    events: mpsc::Sender<Msg>,
    heartbeat: Heartbeat,
) {
    let (mut conn, mut welcome) = first;
    loop {
        let connected = NetEvent::Connected {
            agents_online: welcome.agents_online,
        };
        if events.send(Msg::Net(connected)).await.is_err() {
            return;
        }
        let Some(mut reason) = session(&mut conn, &mut outgoing, &events, heartbeat).await else {
            return;
        };
        let mut backoff = BACKOFF_START;
        let mut attempt = 1;
        (conn, welcome) = loop {
            let lost = NetEvent::Disconnected { attempt, reason };
            if events.send(Msg::Net(lost)).await.is_err() {
                return;
            }
            if !discard_for(backoff, &mut outgoing).await {
                return;
            }
            match connect(&endpoint, &identity).await {
                Ok(next) => break next,
                Err(e) if e.is_permanent() => {
                    let _ = events.send(Msg::Net(NetEvent::Fatal(e.to_string()))).await;
                    return;
                }
                Err(e) => reason = e.to_string(),
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
            attempt += 1;
        };
        // Frames queued for the lost connection are stale; the app resends
        // what still matters when it hears `Connected`.
        while outgoing.try_recv().is_ok() {}
    }
}

/// Moves frames both ways until the connection ends (`Some(reason)`) or the
/// app is gone (`None`). Any frame from the server shows the connection is
/// alive; after `heartbeat.after` without one it sends a `ping`, and gives
/// the connection up if nothing comes back within `heartbeat.timeout`.
async fn session(
    conn: &mut Connection,
    outgoing: &mut mpsc::Receiver<ClientFrame>,
    events: &mpsc::Sender<Msg>,
    heartbeat: Heartbeat,
) -> Option<String> {
    let mut heard = Instant::now();
    let mut pinged = false;
    loop {
        let check = if pinged {
            heard + heartbeat.after + heartbeat.timeout
        } else {
            heard + heartbeat.after
        };
        tokio::select! {
            () = tokio::time::sleep_until(check) => {
                if pinged {
                    let silent = heartbeat.after + heartbeat.timeout;
                    return Some(format!("no answer from the server for {} s", silent.as_secs()));
                }
                let ping = ClientFrame::Ping { id: Some(RequestId::Str(HEARTBEAT_ID.into())) };
                if let Err(e) = conn.send(ping).await {
                    return Some(e.to_string());
                }
                pinged = true;
            }
            frame = conn.next() => {
                // Any line, even one we cannot read, shows the server is there.
                if let Some(Ok(_)) = &frame {
                    heard = Instant::now();
                    pinged = false;
                }
                match frame {
                    Some(Ok(Ok(frame))) => {
                        if is_heartbeat(&frame) {
                            continue;
                        }
                        let bye = matches!(frame, ServerFrame::Bye { .. });
                        events.send(Msg::Net(NetEvent::Frame(frame))).await.ok()?;
                        if bye {
                            return Some("the server said bye".to_owned());
                        }
                    }
                    // A line the client could not read (the server's protocol is
                    // newer, or broken): the codec has skipped it and the
                    // connection goes on, but the app hears of it, as it may
                    // have been the reply that a request waits for.
                    Some(Ok(Err(bad))) => {
                        events.send(Msg::Net(NetEvent::Unreadable(bad))).await.ok()?;
                    }
                    Some(Err(e)) => return Some(e.to_string()),
                    None => return Some("the server closed the connection".to_owned()),
                }
            }
            frame = outgoing.recv() => match frame {
                Some(frame) => {
                    if let Err(e) = conn.send(frame).await {
                        return Some(e.to_string());
                    }
                }
                None => {
                    // Best effort: we are leaving either way.
                    let _ = conn.send(ClientFrame::Bye { id: None }).await;
                    return None;
                }
            },
        }
    }
}

fn is_heartbeat(frame: &ServerFrame) -> bool {
    matches!(frame, ServerFrame::Pong { id: Some(RequestId::Str(id)) } if id == HEARTBEAT_ID)
}

/// Waits `wait`, dropping frames the app sends meanwhile; `false` if the app is gone.
async fn discard_for(wait: Duration, outgoing: &mut mpsc::Receiver<ClientFrame>) -> bool {
    let sleep = tokio::time::sleep(wait);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            () = &mut sleep => return true,
            frame = outgoing.recv() => if frame.is_none() { return false },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_protocol::codec::encode_into;
    use switchboard_protocol::{FrameError, Message, Priority};
    use tokio::io::{DuplexStream, duplex};
    use tokio::task::JoinHandle;
    use tokio_util::bytes::BytesMut;
    use tokio_util::codec::LinesCodec;

    use crate::app::HISTORY_PAGE;
    use crate::app::test_support::name;

    fn message(id: u64, user: &str, agent: Option<&str>, body: &str) -> Message {
        crate::app::test_support::message_from(id, user, agent, body, Priority::Urgent)
    }

    const BEAT: Heartbeat = Heartbeat {
        after: Duration::from_secs(20),
        timeout: Duration::from_secs(10),
    };
    const PING: &str = r#"{"type":"ping","id":"heartbeat"}"#;
    const PONG: &str = r#"{"type":"pong","id":"heartbeat"}"#;

    /// A signed-in session over an in-memory stream: the server's end (as
    /// lines), what the app receives, the app's sender (kept, or the session
    /// ends), and the session's outcome.
    struct Rig {
        server: Framed<DuplexStream, LinesCodec>,
        app: mpsc::Receiver<Msg>,
        _to_net: mpsc::Sender<ClientFrame>,
        session: JoinHandle<Option<String>>,
    }

    fn rig() -> Rig {
        let (client, server) = duplex(4096);
        let mut conn = framed(Box::new(client));
        let (to_net, mut outgoing) = mpsc::channel(4);
        let (events, app) = mpsc::channel(4);
        let session =
            tokio::spawn(async move { session(&mut conn, &mut outgoing, &events, BEAT).await });
        Rig {
            server: Framed::new(server, LinesCodec::new()),
            app,
            _to_net: to_net,
            session,
        }
    }

    /// Time is paused: a line that never comes fails here, after two
    /// minutes of virtual time, instead of hanging the test.
    const PATIENCE: Duration = Duration::from_secs(120);

    async fn next_line(server: &mut Framed<DuplexStream, LinesCodec>) -> String {
        tokio::time::timeout(PATIENCE, server.next())
            .await
            .expect("a line within two minutes")
            .expect("the client is connected")
            .expect("a line")
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_connection_is_pinged_and_kept_while_the_server_answers() {
        let mut rig = rig();
        let start = Instant::now();
        for beat in 1..=3 {
            assert_eq!(next_line(&mut rig.server).await, PING);
            assert_eq!(start.elapsed(), BEAT.after * beat);
            rig.server.send(PONG).await.expect("answers");
        }
        assert!(!rig.session.is_finished());
        assert!(rig.app.try_recv().is_err(), "the app hears nothing of it");
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_that_stops_answering_is_given_up() {
        let mut rig = rig();
        let start = Instant::now();
        assert_eq!(next_line(&mut rig.server).await, PING);
        let reason = tokio::time::timeout(PATIENCE, rig.session)
            .await
            .expect("ends within two minutes")
            .expect("runs")
            .expect("the connection is given up");
        assert_eq!(start.elapsed(), BEAT.after + BEAT.timeout);
        assert!(
            reason.contains("no answer from the server for 30 s"),
            "{reason}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn any_frame_from_the_server_puts_the_ping_off() {
        let mut rig = rig();
        let start = Instant::now();
        tokio::time::sleep(Duration::from_secs(15)).await;
        rig.server
            .send(r#"{"type":"agents","online":2}"#)
            .await
            .expect("sends");
        match rig.app.recv().await {
            Some(Msg::Net(NetEvent::Frame(ServerFrame::Agents { online: 2 }))) => {}
            _ => panic!("the event reaches the app"),
        }
        assert_eq!(next_line(&mut rig.server).await, PING);
        assert_eq!(start.elapsed(), Duration::from_secs(15) + BEAT.after);
    }

    /// `frame` as the server writes it, without the newline.
    fn line_of(frame: &ServerFrame) -> String {
        let mut line = BytesMut::new();
        encode_into(frame, &mut line).expect("encodes");
        let line = String::from_utf8(line.to_vec()).expect("UTF-8");
        line.trim_end().to_owned()
    }

    /// What the app hears next.
    async fn next_event(app: &mut mpsc::Receiver<Msg>) -> NetEvent {
        match tokio::time::timeout(PATIENCE, app.recv()).await {
            Ok(Some(Msg::Net(event))) => event,
            Ok(other) => panic!("expected a network event, got {other:?}"),
            Err(_) => panic!("nothing reached the app within two minutes"),
        }
    }

    /// The app asks for [`HISTORY_PAGE`] messages at a time; a page of long
    /// messages is one line well over the protocol's default 64 KiB.
    #[tokio::test(start_paused = true)]
    async fn a_history_reply_over_64_kib_reaches_the_app() {
        let mut rig = rig();
        let body = "a long message ".repeat(47);
        let reply = ServerFrame::History {
            id: Some(RequestId::Int(7)),
            user: name("ana"),
            messages: (1..=u64::from(HISTORY_PAGE))
                .map(|id| message(id, "ana", None, &body))
                .collect(),
        };
        let line = line_of(&reply);
        assert!(line.len() > 65_536, "only {} bytes", line.len());
        rig.server.send(line).await.expect("sends");
        assert_eq!(next_event(&mut rig.app).await, NetEvent::Frame(reply));
    }

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
                protocol: 1,
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

    /// Skipped lines used to vanish; a conversation waiting on one stayed
    /// "loading" for ever.
    #[tokio::test(start_paused = true)]
    async fn a_line_the_client_cannot_read_is_reported_and_the_connection_kept() {
        let mut rig = rig();
        rig.server
            .send(r#"{"type":"from_the_future","id":3}"#)
            .await
            .expect("sends");
        match next_event(&mut rig.app).await {
            NetEvent::Unreadable(FrameError::BadFrame { .. }) => {}
            other => panic!("expected Unreadable(BadFrame), got {other:?}"),
        }
        rig.server
            .send(r#"{"type":"agents","online":2}"#)
            .await
            .expect("sends");
        assert_eq!(
            next_event(&mut rig.app).await,
            NetEvent::Frame(ServerFrame::Agents { online: 2 })
        );
    }
}
