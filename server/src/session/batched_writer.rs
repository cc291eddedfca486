//! Writes to a connection's socket: small frames batched into one write,
//! large ones (a backlog) written straight from their bytes, and a peer that
//! stops reading given up on after [`WRITE_TIMEOUT`] without progress.

use std::io;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::timeout;

/// A write that cannot finish in this long means the peer stopped reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Queued frames are copied into one buffer and written together up to this
/// size; larger ones (a backlog) are written straight from their own bytes.
const BATCH_BYTES: usize = 16 * 1024;
/// After a burst, a write buffer larger than this is given back.
const KEEP_BUFFER_BYTES: usize = 64 * 1024;

async fn timed<T>(write: impl Future<Output = io::Result<T>>) -> io::Result<T> {
    timeout(WRITE_TIMEOUT, write)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "peer stopped reading"))?
}

/// Writes all of `bytes`, failing only if a single write makes no progress
/// for [`WRITE_TIMEOUT`]: a slow but steady reader gets a long backlog whole.
async fn write_all_steadily<W: AsyncWrite + Unpin>(
    writer: &mut W,
    mut bytes: &[u8],
) -> io::Result<()> {
    while !bytes.is_empty() {
        let written = timed(writer.write(bytes)).await?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        bytes = &bytes[written..];
    }
    Ok(())
}

/// Batches small writes into one, like `BufWriter`, but holds no memory while
/// idle and gives back what a burst made it grow to.
///
/// After any failed or timed-out write it writes nothing more: part of a
/// frame may have gone out, and sending the rest, or the batch again, would
/// corrupt the stream or repeat messages.
pub(super) struct BatchedWriter<W> {
    inner: W,
    pending: BytesMut,
    broken: bool,
}

impl<W: AsyncWrite + Unpin> BatchedWriter<W> {
    pub(super) fn new(inner: W) -> Self {
        Self {
            inner,
            pending: BytesMut::new(),
            broken: false,
        }
    }

    fn check(&self) -> io::Result<()> {
        if self.broken {
            Err(io::Error::other("an earlier write failed"))
        } else {
            Ok(())
        }
    }

    /// Runs a write; any failure breaks the writer for good.
    fn poison_on_error(&mut self, result: io::Result<()>) -> io::Result<()> {
        if result.is_err() {
            self.broken = true;
            self.pending = BytesMut::new();
        }
        result
    }

    pub(super) async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.check()?;
        if bytes.len() >= BATCH_BYTES {
            self.flush().await?;
            let result = write_all_steadily(&mut self.inner, bytes).await;
            return self.poison_on_error(result);
        }
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= BATCH_BYTES {
            self.flush().await?;
        }
        Ok(())
    }

    pub(super) async fn flush(&mut self) -> io::Result<()> {
        self.check()?;
        if !self.pending.is_empty() {
            let result = write_all_steadily(&mut self.inner, &self.pending).await;
            self.poison_on_error(result)?;
            self.pending.clear();
        }
        if self.pending.capacity() > KEEP_BUFFER_BYTES {
            self.pending = BytesMut::new();
        }
        let result = timed(self.inner.flush()).await;
        self.poison_on_error(result)
    }

    pub(super) async fn shutdown(&mut self) -> io::Result<()> {
        self.flush().await?;
        self.inner.shutdown().await
    }
}
