//! Starting the storage threads (one writer, a few readers) over any
//! backend, and [`StoreThreads`], what `Node` waits for on shutdown.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::health::WriterHealth;
use super::sqlite::server_lock::ServerLock;
use super::{OpenError, READ_QUEUE, Store, WRITE_QUEUE, backend, reader, writer};

/// The storage threads, to wait for on shutdown once every [`Store`] handle
/// is gone (the writer commits what is queued before it stops).
pub struct StoreThreads {
    threads: Vec<JoinHandle<()>>,
    /// Cancelled when the writer thread ends, however it ends.
    writer_stopped: CancellationToken,
    /// This server's hold on its SQLite file, let go once the threads
    /// are gone (see `sqlite::server_lock`). None on PostgreSQL, which
    /// several nodes may share (cluster mode).
    _lock: Option<ServerLock>,
}

/// Starts the writer thread and one reader thread per backend in
/// `readers`.
pub(super) fn start_threads<B, R>(
    writer: writer::Writer<B>,
    readers: Vec<R>,
    lock: Option<ServerLock>,
) -> Result<(Store, StoreThreads), OpenError>
where
    B: backend::Backend + Send + 'static,
    R: backend::ReadBackend,
{
    let (writes, write_jobs) = mpsc::channel(WRITE_QUEUE);
    let (reads, read_jobs) = mpsc::channel(READ_QUEUE);
    let health = WriterHealth::new(writer.record(), writes.downgrade());
    let writer_stopped = CancellationToken::new();
    let on_exit = writer_stopped.clone().drop_guard();
    let mut threads = vec![
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                let _on_exit = on_exit;
                writer.run(write_jobs);
            })
            .map_err(OpenError::Thread)?,
    ];
    let read_jobs = Arc::new(Mutex::new(read_jobs));
    for (index, backend) in readers.into_iter().enumerate() {
        let jobs = Arc::clone(&read_jobs);
        threads.push(
            std::thread::Builder::new()
                .name(format!("store-reader-{index}"))
                .spawn(move || reader::run(backend, jobs))
                .map_err(OpenError::Thread)?,
        );
    }
    let threads = StoreThreads {
        threads,
        writer_stopped,
        _lock: lock,
    };
    Ok((
        Store {
            writes,
            reads,
            health,
        },
        threads,
    ))
}

impl StoreThreads {
    /// Cancelled once the writer has stopped: after the last handle is
    /// gone, or early if it panicked (the node's supervisor watches this).
    pub fn writer_stopped(&self) -> CancellationToken {
        self.writer_stopped.clone()
    }

    pub fn join(self) {
        for thread in self.threads {
            if thread.join().is_err() {
                tracing::error!("a storage thread panicked");
            }
        }
    }
}
