//! The accept loop: a connection cap, one task per connection, and a
//! graceful stop.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use switchboard_protocol::codec::encode_into;
use switchboard_protocol::{ErrorCode, ServerFrame};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::RequestError;
use crate::identity::ConnId;
use crate::services::SharedServices;
use crate::session::Session;

/// After a failed `accept` (out of file descriptors, say), wait this long
/// instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How long a refused connection gets to read its `server_busy`.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);
/// How long sessions get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves connections until `shutdown` resolves, then stops accepting, lets
/// every session send what it owes and a `bye`, and returns once they are
/// done (or the grace period is over: then `false`).
pub async fn serve(
    listener: TcpListener,
    services: SharedServices,
    shutdown: impl Future<Output = ()>,
) -> bool {
    let slots = Arc::new(Semaphore::new(services.config.max_connections));
    let sessions = TaskTracker::new();
    let stop = CancellationToken::new();
    let mut next_conn: ConnId = 0;
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
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
        match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => {
                let session = Session::new(next_conn, stream, Arc::clone(&services));
                let stop = stop.clone();
                sessions.spawn(async move {
                    session.run(stop).await;
                    drop(slot);
                });
            }
            Err(_) => {
                tracing::warn!("connection limit reached: refusing a connection");
                sessions.spawn(refuse_busy(stream));
            }
        }
    }
    tracing::info!("shutting down: no new connections; finishing sessions");
    drop(listener);
    stop.cancel();
    sessions.close();
    let finished = tokio::time::timeout(SHUTDOWN_GRACE, sessions.wait())
        .await
        .is_ok();
    if !finished {
        tracing::warn!("some sessions did not finish within the grace period");
    }
    finished
}

async fn refuse_busy(mut stream: TcpStream) {
    let error = RequestError::ServerBusy;
    debug_assert_eq!(error.code(), ErrorCode::ServerBusy);
    let mut buf = BytesMut::new();
    if encode_into(
        &ServerFrame::error(None, error.code(), error.to_string()),
        &mut buf,
    )
    .is_ok()
    {
        let _ = tokio::time::timeout(REFUSAL_TIMEOUT, async {
            stream.write_all(&buf).await?;
            stream.shutdown().await
        })
        .await;
    }
}
