//! [`SqliteWriteLock`]: another process holding a server's SQLite file
//! (`BEGIN EXCLUSIVE`), so that the server's next commit fails after its
//! busy timeout and the request is answered `internal`. For tests of what a
//! node does when storage cannot commit (start their server with
//! [`crate::TestServer::start_on_sqlite`]).

use std::time::Duration;

use serde_json::{Value, json};

use crate::client::TestClient;
use crate::server::TestServer;

/// Past the server's busy timeout (5 s), with room on a loaded machine.
const LOCKED_REPLY_WITHIN: Duration = Duration::from_secs(20);

/// The write lock on a server's database, held until [`release`]d.
///
/// [`release`]: SqliteWriteLock::release
pub struct SqliteWriteLock(rusqlite::Connection);

impl SqliteWriteLock {
    /// Takes the write lock on `server`'s SQLite file.
    pub fn take(server: &TestServer) -> SqliteWriteLock {
        let locker = rusqlite::Connection::open(server.db()).expect("opens the db");
        locker
            .execute_batch("BEGIN EXCLUSIVE")
            .expect("takes the lock");
        SqliteWriteLock(locker)
    }

    /// `client` sends a message (request id `locked`) while the lock is
    /// held; returns the reply, which comes once the server's busy timeout
    /// has passed. The connection must stay open.
    pub async fn send_during(&self, client: &mut TestClient) -> Value {
        client
            .send(&json!({"type":"send","id":"locked","body":"during the lock"}))
            .await;
        client
            .next_frame_within(LOCKED_REPLY_WITHIN)
            .await
            .unwrap_or_else(|| panic!("a reply within {LOCKED_REPLY_WITHIN:?}"))
            .expect("the connection stays open")
    }

    /// Lets the server commit again.
    pub fn release(self) {
        self.0.execute_batch("ROLLBACK").expect("releases the lock");
    }
}
