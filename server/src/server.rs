//! The accept loop: a connection cap (for the server and for each client
//! address), a rate of new connections per address, one task per
//! connection, and a graceful stop whose drain is bounded: sessions get
//! `--shutdown-grace` to send what they owe and `bye`, then those still busy
//! (a peer that does not read) are dropped, so one stuck client cannot hold
//! the process (issue 15, finding 10).

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use switchboard_protocol::ErrorCode;
use switchboard_protocol::codec::encode_into;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::address_rate::AddressRate;
use crate::error::RequestError;
use crate::event::ConnId;
use crate::per_address::{AddressSlot, AddressSlots};
use crate::services::SharedServices;
use crate::session::Session;

/// After a failed `accept` (out of file descriptors, say), wait this long
/// instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How long a refused connection gets to read its `server_busy`.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);
/// Refusals (`server_busy`) being written at once; past this, connections
/// over the limit are closed without a word, so a flood cannot pile up tasks.
pub const MAX_REFUSALS: usize = 64;
/// How long a client may take to complete a TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// After the grace, how long dropping the sessions left may take: each
/// ends at its next await, so this is only a bound against a bug.
const DROP_TIMEOUT: Duration = Duration::from_secs(1);

/// How the sessions ended after the shutdown signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drain {
    /// Every session sent what it owed and `bye` within the grace.
    Complete,
    /// This many sessions were still busy when the grace ran out (their
    /// peers were not reading) and were dropped: their sockets are closed.
    Dropped(usize),
    /// This many sessions did not end even when dropped (a bug): they may
    /// still hold the store, so the caller must not wait for its writer.
    Stuck(usize),
}

/// Serves connections until `shutdown` resolves, then stops accepting, lets
/// every session send what it owes and a `bye`, and returns once they are
/// done, or once the grace is over and the sessions left are dropped.
pub async fn serve(
    listener: TcpListener,
    services: SharedServices,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) -> Drain {
    let grace = services.config.shutdown_grace;
    let slots = Arc::new(Semaphore::new(services.config.max_connections));
    let address_slots = AddressSlots::new(services.config.max_connections_per_address);
    let new_connections = AddressRate::new(
        f64::from(services.config.connections_per_second_per_address),
        services.config.connection_burst_per_address,
    );
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS));
    let sessions = TaskTracker::new();
    let stop = CancellationToken::new();
    // Cancelled when the grace is over: the sessions still running end.
    let drop_now = CancellationToken::new();
    let mut next_conn: ConnId = 0;
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        // Chat frames are small and latency matters more than packet count.
        let _ = stream.set_nodelay(true);
        next_conn += 1;
        match admit(&slots, &address_slots, &new_connections, peer.ip()) {
            Ok(slot) => {
                let (conn, services, stop) = (next_conn, Arc::clone(&services), stop.clone());
                let drop_now = drop_now.clone();
                match tls.clone() {
                    None => {
                        sessions.spawn(async move {
                            let session = Session::new(conn, stream, peer.ip(), services);
                            drop_now.run_until_cancelled(session.run(stop)).await;
                            drop(slot);
                        });
                    }
                    Some(acceptor) => {
                        sessions.spawn(async move {
                            drop_now
                                .run_until_cancelled(async {
                                    if let Some(stream) = handshake(&acceptor, stream).await {
                                        let (read, write) = tokio::io::split(stream);
                                        Session::over(conn, read, write, services)
                                            .with_peer(Some(peer.ip()))
                                            .run(stop)
                                            .await;
                                    }
                                })
                                .await;
                            drop(slot);
                        });
                    }
                }
            }
            Err(why) => {
                services.counts.refusals.count(why.code());
                let Ok(refusal) = Arc::clone(&refusals).try_acquire_owned() else {
                    continue; // dropping the stream closes it
                };
                let tls = tls.clone();
                sessions.spawn(async move {
                    let _refusal = refusal;
                    match tls {
                        None => refuse_busy(stream, &why).await,
                        Some(acceptor) => {
                            if let Some(stream) = handshake(&acceptor, stream).await {
                                refuse_busy(stream, &why).await;
                            }
                        }
                    }
                });
            }
        }
    }
    tracing::info!(
        grace_s = grace.as_secs_f64(),
        "shutting down: no new connections; finishing sessions"
    );
    drop(listener);
    stop.cancel();
    sessions.close();
    drain(&sessions, grace, &drop_now).await
}

/// Waits up to `grace` for the sessions to finish, then drops those left.
async fn drain(sessions: &TaskTracker, grace: Duration, drop_now: &CancellationToken) -> Drain {
    if tokio::time::timeout(grace, sessions.wait()).await.is_ok() {
        return Drain::Complete;
    }
    let left = sessions.len();
    tracing::warn!(
        sessions = left,
        grace_s = grace.as_secs_f64(),
        "sessions still busy after the shutdown grace (peers not reading what they are owed): \
         dropping them"
    );
    drop_now.cancel();
    if tokio::time::timeout(DROP_TIMEOUT, sessions.wait())
        .await
        .is_ok()
    {
        Drain::Dropped(left)
    } else {
        Drain::Stuck(sessions.len())
    }
}

/// A place for a new connection from `address`: one of the server's slots
/// and one of its address's, held until the session ends; or why not. The
/// address's rate of new connections is checked first: a host flapping
/// connections (each one a `hello` to check, a backlog to read, presence to
/// announce) is refused before it costs a slot.
fn admit(
    slots: &Arc<Semaphore>,
    address_slots: &AddressSlots,
    new_connections: &AddressRate,
    address: IpAddr,
) -> Result<(OwnedSemaphorePermit, AddressSlot), RequestError> {
    if !new_connections.try_take(address) {
        tracing::debug!(%address, "new connections per address over their rate: refusing a connection");
        return Err(RequestError::ConnectionsLimited);
    }
    let Ok(slot) = Arc::clone(slots).try_acquire_owned() else {
        tracing::warn!("connection limit reached: refusing a connection");
        return Err(RequestError::ServerBusy);
    };
    let Some(address_slot) = address_slots.try_take(address) else {
        tracing::warn!(%address, "connection limit per address reached: refusing a connection");
        return Err(RequestError::AddressBusy);
    };
    Ok((slot, address_slot))
}

/// A TLS handshake bounded in time, so a silent peer cannot hold a slot.
async fn handshake(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(error)) => {
            tracing::debug!(%error, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out");
            None
        }
    }
}

/// Tells a connection over a limit why (`server_busy`), then closes it.
async fn refuse_busy(mut stream: impl AsyncWrite + Unpin, error: &RequestError) {
    debug_assert_eq!(error.code(), ErrorCode::ServerBusy);
    let mut buf = BytesMut::new();
    if encode_into(&error.to_frame(None), &mut buf).is_ok() {
        let _ = tokio::time::timeout(REFUSAL_TIMEOUT, async {
            stream.write_all(&buf).await?;
            stream.shutdown().await
        })
        .await;
    }
}
