//! The SQLite side of `switchboard copy` (`store/copy`): the file opened
//! the way `serve` opens it, under the same one-server lock, and read in
//! one snapshot, table by table, in batches.
//!
//! [`Source::open`] refuses a file a running server holds (the lock of
//! `server_lock`, kept until the copy ends, so no server can start on the
//! file meanwhile either), a file that is not switchboard's, and a schema
//! newer than this build; an older schema is upgraded in place first,
//! exactly as `serve` would on its next start (see `store/copy` for why).
//! [`Source::snapshot`] is a `BEGIN IMMEDIATE` transaction: every table is
//! read from one snapshot, and an `agent` command run on the file during
//! the copy waits for it (then fails, "database is locked") instead of
//! writing something the copy would miss.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, Row, Transaction, TransactionBehavior};

use super::server_lock::ServerLock;
use super::{check_writable, connect, open_database, schema};
use crate::store::OpenError;
use crate::store::copy::batch::{BatchLimits, Batcher};
use crate::store::copy::error::CopyError;
use crate::store::copy::progress::Counts;
use crate::store::copy::records::{
    AgentRecord, KeyRecord, Kind, MessageRecord, Record, ReleaseDueRecord, Sequencer, UserRecord,
    WaitingRecord,
};

/// A record as read from its SQLite table.
pub(in crate::store) trait Export: Record {
    /// Every row of the table; by id where there is one, so the target's
    /// indexes are filled in order.
    const SELECT: &'static str;
    const COUNT: &'static str;

    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self>;
}

/// A SQLite file opened for copying, locked against a server.
pub(in crate::store) struct Source {
    path: PathBuf,
    conn: Connection,
    /// Schema versions (before, after) when the file was upgraded.
    upgraded: Option<(i32, i32)>,
    /// Held until the copy ends: no server serves the file meanwhile.
    _lock: ServerLock,
}

impl Source {
    pub(in crate::store) fn open(path: &Path) -> Result<Source, CopyError> {
        // SQLite would create a missing file, and the lock a file beside it.
        if !path.is_file() {
            return Err(CopyError::NoSource {
                path: path.to_owned(),
            });
        }
        check_writable(path).map_err(CopyError::Source)?;
        let lock = ServerLock::take(path).map_err(|error| match error {
            OpenError::InUse { db, lock } => CopyError::SourceInUse { db, lock },
            other => CopyError::Source(other),
        })?;
        let before = connect(path)
            .and_then(|conn| {
                schema::version(&conn).map_err(|reason| OpenError::Open {
                    path: path.to_owned(),
                    reason: reason.to_string(),
                })
            })
            .map_err(CopyError::Source)?;
        if before == 0 {
            // Not one: opening it as a help desk would write a schema into it.
            return Err(CopyError::NotADesk {
                path: path.to_owned(),
            });
        }
        let conn = open_database(path).map_err(CopyError::Source)?;
        let upgraded =
            (before < schema::CURRENT_VERSION).then_some((before, schema::CURRENT_VERSION));
        Ok(Source {
            path: path.to_owned(),
            conn,
            upgraded,
            _lock: lock,
        })
    }

    /// `Some((from, to))` when [`Source::open`] upgraded the schema.
    pub(in crate::store) fn upgraded(&self) -> Option<(i32, i32)> {
        self.upgraded
    }

    /// Begins the one snapshot every table is read from.
    pub(in crate::store) fn snapshot(&mut self) -> Result<Snapshot<'_>, CopyError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(read_error(&self.path))?;
        Ok(Snapshot {
            tx,
            path: &self.path,
        })
    }
}

/// The file as of one moment, read but never written (dropped, the
/// transaction rolls back).
pub(in crate::store) struct Snapshot<'a> {
    tx: Transaction<'a>,
    path: &'a Path,
}

impl Snapshot<'_> {
    /// How many rows of each kind the snapshot holds.
    pub(in crate::store) fn counts(&self) -> Result<Counts, CopyError> {
        let mut counts = Counts::default();
        for (kind, sql) in [
            (Kind::Agents, AgentRecord::COUNT),
            (Kind::Users, UserRecord::COUNT),
            (Kind::Messages, MessageRecord::COUNT),
            (Kind::Waiting, WaitingRecord::COUNT),
            (Kind::Keys, KeyRecord::COUNT),
            (Kind::ReleasesDue, ReleaseDueRecord::COUNT),
        ] {
            let rows: i64 = self
                .tx
                .query_row(sql, [], |row| row.get(0))
                .map_err(read_error(self.path))?;
            counts.set(kind, rows as u64);
        }
        Ok(counts)
    }

    /// The newest message id and time stamp, and the releases committed
    /// (`release_count`, schema 7).
    pub(in crate::store) fn sequencer(&self) -> Result<Sequencer, CopyError> {
        self.tx
            .query_row(
                "SELECT (SELECT coalesce(max(id), 0) FROM messages),
                        (SELECT releases FROM release_count),
                        (SELECT coalesce(max(ts_us), 0) FROM messages)",
                [],
                |row| {
                    Ok(Sequencer {
                        last_message_id: row.get(0)?,
                        releases: row.get(1)?,
                        last_ts_us: row.get(2)?,
                    })
                },
            )
            .map_err(read_error(self.path))
    }

    /// Reads every row of `R`'s table, handing `sink` a batch at a time;
    /// the rows read.
    pub(in crate::store) fn stream<R: Export>(
        &self,
        limits: BatchLimits,
        mut sink: impl FnMut(Vec<R>) -> Result<(), CopyError>,
    ) -> Result<u64, CopyError> {
        let failed = read_error(self.path);
        let mut statement = self.tx.prepare(R::SELECT).map_err(&failed)?;
        let mut rows = statement.query([]).map_err(&failed)?;
        let mut batcher = Batcher::new(limits);
        let mut read = 0;
        while let Some(row) = rows.next().map_err(&failed)? {
            read += 1;
            if let Some(batch) = batcher.push(R::from_row(row).map_err(&failed)?) {
                sink(batch)?;
            }
        }
        if let Some(batch) = batcher.finish() {
            sink(batch)?;
        }
        Ok(read)
    }
}

/// For `map_err`: a [`CopyError::Read`] naming `path`.
fn read_error(path: &Path) -> impl Fn(rusqlite::Error) -> CopyError + '_ {
    move |error| CopyError::Read {
        path: path.to_owned(),
        reason: error.to_string(),
    }
}

impl Export for AgentRecord {
    const SELECT: &'static str =
        "SELECT id, name, token_hash, created_us, supervisor FROM agents ORDER BY id";
    const COUNT: &'static str = "SELECT count(*) FROM agents";

    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(AgentRecord {
            id: row.get(0)?,
            name: row.get(1)?,
            token_hash: row.get(2)?,
            created_us: row.get(3)?,
            supervisor: row.get(4)?,
        })
    }
}

impl Export for UserRecord {
    const SELECT: &'static str =
        "SELECT id, name, token_hash, created_us, assigned_agent_id FROM users ORDER BY id";
    const COUNT: &'static str = "SELECT count(*) FROM users";

    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(UserRecord {
            id: row.get(0)?,
            name: row.get(1)?,
            token_hash: row.get(2)?,
            created_us: row.get(3)?,
            assigned_agent_id: row.get(4)?,
        })
    }
}

impl Export for MessageRecord {
    const SELECT: &'static str =
        "SELECT id, ts_us, user_id, agent_id, body, priority, note FROM messages ORDER BY id";
    const COUNT: &'static str = "SELECT count(*) FROM messages";

    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(MessageRecord {
            id: row.get(0)?,
            ts_us: row.get(1)?,
            user_id: row.get(2)?,
            agent_id: row.get(3)?,
            body: row.get(4)?,
            priority: row.get(5)?,
            note: row.get(6)?,
        })
    }
}

impl Export for WaitingRecord {
    // In the table's own order (urgency, then id): no sort needed.
    const SELECT: &'static str = "SELECT message_id, user_id, urgency FROM waiting";
    const COUNT: &'static str = "SELECT count(*) FROM waiting";

    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(WaitingRecord {
            message_id: row.get(0)?,
            user_id: row.get(1)?,
            urgency: row.get(2)?,
        })
    }
}

impl Export for KeyRecord {
    const SELECT: &'static str = "SELECT sender_role, sender_id, key, message_id FROM send_keys";
    const COUNT: &'static str = "SELECT count(*) FROM send_keys";

    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(KeyRecord {
            sender_role: row.get(0)?,
            sender_id: row.get(1)?,
            key: row.get(2)?,
            message_id: row.get(3)?,
        })
    }
}

impl Export for ReleaseDueRecord {
    const SELECT: &'static str = "SELECT user_id, agent_id FROM releases_due ORDER BY user_id";
    const COUNT: &'static str = "SELECT count(*) FROM releases_due";

    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(ReleaseDueRecord {
            user_id: row.get(0)?,
            agent_id: row.get(1)?,
        })
    }
}
