//! How a session ends, and what it still writes before it closes.
//!
//! A session ends on `bye`, end of input, a broken socket, a full outbox
//! (`slow_consumer`), a missing `hello`, three failed `hello`s, a signed-in
//! connection left idle ([`super::idle`]), or server shutdown. A client that is owed replies gets them first, where it can
//! still read; a client cut off hears why.

use std::io;

use switchboard_protocol::ServerFrame;
use tokio::io::{AsyncRead, AsyncWrite};

use super::Session;
use crate::error::RequestError;

/// Why a session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
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
    /// Signed in, not subscribed, and nothing sent for `--idle-timeout`.
    Idle,
    TooManyHellos,
    /// The socket failed; nothing more can be written.
    Broken,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    /// The router closed this connection's outbox with no last frame: it
    /// was too slow, unless the router itself has stopped (the server is
    /// failing and about to stop: that is no client's fault).
    pub(super) fn cut_off(&self) -> End {
        if self.services.router.has_stopped() {
            End::Shutdown
        } else {
            End::SlowConsumer
        }
    }

    /// Writes what the session still owes, and a last word, then closes.
    pub(super) async fn close(&mut self, end: End) {
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
            End::Idle => {
                let seconds = self.idle.timeout().map_or(0, |timeout| timeout.as_secs());
                let bye = ServerFrame::Bye {
                    reason: Some(format!(
                        "idle for {seconds} s without subscribing or sending; connect again when you need to"
                    )),
                };
                match self.pay_what_is_owed().await {
                    Ok(()) => self.write_frame(&bye).await,
                    Err(error) => Err(error),
                }
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
}
