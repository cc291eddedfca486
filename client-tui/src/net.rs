//! The connection task: one TCP connection at a time, framed with the
//! protocol's [`ClientCodec`]. Server frames become [`NetEvent`]s for the
//! app; [`ClientFrame`]s from the app are written out. When the connection
//! drops it reports `Disconnected`, waits with exponential backoff and signs
//! in again; the app then re-subscribes with `since` and resends what is
//! pending (see `app::update`). Frames the app sends while there is no
//! connection are dropped: the app keeps what matters (pending messages) and
//! sends it again on `Connected`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use switchboard_protocol::{ClientCodec, ClientFrame, ErrorCode, Name, Role, ServerFrame};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
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
    pub token: Option<String>,
}

/// What `welcome` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    /// A new user's token, shown once.
    pub token: Option<String>,
    pub agents_online: Option<u32>,
}

#[derive(Debug, Error)]
pub enum ConnectError {
    #[error("cannot reach the switchboard server at {addr}")]
    Unreachable {
        addr: String,
        source: std::io::Error,
    },
    #[error("the server at {0} did not answer within {CONNECT_TIMEOUT:?}")]
    Timeout(String),
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
    #[error("the TLS handshake with {addr} failed: {source}")]
    Tls {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot use the CA certificates in {path}: {reason}")]
    Ca { path: PathBuf, reason: String },
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
        .map_err(|_| ConnectError::Timeout(endpoint.addr.clone()))?
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
                .map_err(|source| ConnectError::Tls {
                    addr: addr.to_owned(),
                    source,
                })?,
        ),
    };
    let mut conn = Framed::new(transport, ClientCodec::default());
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
) {
    let (mut conn, mut welcome) = first;
    loop {
        let connected = NetEvent::Connected {
            agents_online: welcome.agents_online,
        };
        if events.send(Msg::Net(connected)).await.is_err() {
            return;
        }
        let Some(mut reason) = session(&mut conn, &mut outgoing, &events).await else {
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
/// app is gone (`None`).
async fn session(
    conn: &mut Connection,
    outgoing: &mut mpsc::Receiver<ClientFrame>,
    events: &mpsc::Sender<Msg>,
) -> Option<String> {
    loop {
        tokio::select! {
            frame = conn.next() => match frame {
                Some(Ok(Ok(frame))) => {
                    let bye = matches!(frame, ServerFrame::Bye { .. });
                    events.send(Msg::Net(NetEvent::Frame(frame))).await.ok()?;
                    if bye {
                        return Some("the server said bye".to_owned());
                    }
                }
                // A line the client could not read: the server's protocol is
                // newer or broken; skip it and keep the connection.
                Some(Ok(Err(_bad))) => {}
                Some(Err(e)) => return Some(e.to_string()),
                None => return Some("the server closed the connection".to_owned()),
            },
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
