//! Sessions in memory, for the fuzz target and property tests: the real
//! session, router and store, with a pipe instead of a socket.
//!
//! [`InMemoryServer::exchange`] plays one client: it writes the given bytes,
//! closes its side, and returns everything the server wrote back. Callers
//! then check that every line is a well-formed frame ([`check_output`]).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use switchboard_protocol::ServerFrame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::node::Node;
use crate::priority::PriorityRules;
use crate::session::Session;
use crate::store::{Durability, Location, OpenError};

/// Bytes buffered in each direction of the pipe.
const PIPE_BYTES: usize = 64 * 1024;
/// One exchange taking longer than this is a hang: a bug.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct InMemoryServer {
    node: Node,
    next_conn: AtomicU64,
}

impl InMemoryServer {
    /// A server whose database lives in `dir` (a tmpfs keeps it in memory).
    /// Durability is relaxed: a fuzz run is not about power loss.
    pub fn start(dir: &Path, config: Config) -> Result<Self, OpenError> {
        let node = Node::start(
            &Location::Sqlite(dir.join("fuzz.db")),
            Durability::Normal,
            config,
            PriorityRules::default(),
        )?;
        Ok(Self {
            node,
            next_conn: AtomicU64::new(1),
        })
    }

    /// One client's whole session: sends `input`, closes, returns the reply
    /// bytes. `Err` if the session hangs or panics.
    pub async fn exchange(&self, input: &[u8]) -> Result<Vec<u8>, String> {
        let (mut client, server_side) = tokio::io::duplex(PIPE_BYTES);
        let (read, write) = tokio::io::split(server_side);
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let session = Session::over(conn, read, write, self.node.services());
        let running = tokio::spawn(session.run(CancellationToken::new()));
        let input = input.to_vec();
        let exchange = async move {
            let (mut from_server, mut to_server) = tokio::io::split(&mut client);
            let writing = async {
                // The session may close first (three failed hellos): fine.
                let _ = to_server.write_all(&input).await;
                let _ = to_server.shutdown().await;
            };
            let mut output = Vec::new();
            let reading = from_server.read_to_end(&mut output);
            let ((), read) = tokio::join!(writing, reading);
            read.map(|_| output).map_err(|e| e.to_string())
        };
        let output = tokio::time::timeout(EXCHANGE_TIMEOUT, exchange)
            .await
            .map_err(|_| "the session hung".to_owned())??;
        running
            .await
            .map_err(|e| format!("the session panicked: {e}"))?;
        Ok(output)
    }
}

/// Every line the server wrote must be one whole, well-formed frame, and
/// the first must be the greeting.
pub fn check_output(output: &[u8]) -> Result<usize, String> {
    if !output.is_empty() && !output.ends_with(b"\n") {
        return Err("the output ends in the middle of a line (a half-written frame)".into());
    }
    let mut frames = 0;
    for line in output
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
    {
        let frame: ServerFrame = serde_json::from_slice(line)
            .map_err(|e| format!("not a frame ({e}): {}", String::from_utf8_lossy(line)))?;
        if frames == 0 && !matches!(frame, ServerFrame::Greeting { .. }) {
            return Err(format!("the first frame is not the greeting: {frame:?}"));
        }
        frames += 1;
    }
    Ok(frames)
}

/// An [`InMemoryServer`] with its own single-threaded runtime, for callers
/// that are not async: a fuzz target, a property test.
pub struct BlockingServer {
    runtime: tokio::runtime::Runtime,
    server: InMemoryServer,
}

impl BlockingServer {
    pub fn start(
        dir: &Path,
        config: Config,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        // The router task is spawned on this runtime.
        let server = runtime.block_on(async { InMemoryServer::start(dir, config) })?;
        Ok(Self { runtime, server })
    }

    /// [`InMemoryServer::exchange`], waited for.
    pub fn exchange(&self, input: &[u8]) -> Result<Vec<u8>, String> {
        self.runtime.block_on(self.server.exchange(input))
    }
}
