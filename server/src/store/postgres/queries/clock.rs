//! The sequencer row, `sb_clock` (see the backend's module docs): locked
//! first by every write transaction, it hands out message ids and counts
//! releases, so positions rise in commit order.

use switchboard_protocol::Timestamp;

use super::super::conn::Conn;
use super::super::schema::CURRENT_VERSION;
use super::super::{PostgresError, Result};
use super::{get, sql_id};
use crate::event::Seq;
use crate::store::backend::SharedClock;

/// Starts a write transaction and takes the sequencer row, held until
/// commit, reading in the same round trip what the writer continues from
/// (the row, and the database's clock) and the schema version: a server
/// must not write its layout into a database upgraded under it.
pub(in crate::store::postgres) fn begin_locked(conn: &mut Conn) -> Result<SharedClock> {
    let row = conn.simple_row(
        "BEGIN;
         SELECT s.version, c.last_message_id, c.releases, c.last_ts_us,
                (extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT
         FROM sb_clock c, switchboard_schema s FOR UPDATE OF c",
    );
    let row = match row {
        Ok(row) => row,
        Err(error) => {
            // `BEGIN` may have run: leave nothing open (a lost connection
            // has nothing open anyway).
            let _ = conn.batch("ROLLBACK");
            return Err(error);
        }
    };
    let number = |index: usize| {
        row.get(index)
            .and_then(|value| value.as_deref())
            .and_then(|value| value.parse::<i64>().ok())
    };
    match number(0) {
        Some(CURRENT_VERSION) => {}
        found => {
            // Not ours to write: leave nothing open.
            let _ = conn.batch("ROLLBACK");
            return Err(PostgresError::SchemaChanged {
                found: found.unwrap_or(0),
            });
        }
    }
    match (number(1), number(2), number(3), number(4)) {
        (Some(last_message_id), Some(releases), Some(last_ts), Some(now)) => Ok(SharedClock {
            last_message_id: last_message_id as u64,
            releases: releases as u64,
            last_ts: Timestamp::from_micros(last_ts),
            now: Timestamp::from_micros(now),
        }),
        _ => {
            let _ = conn.batch("ROLLBACK");
            Err(PostgresError::Corrupt(
                "the sequencer row sb_clock is not readable".into(),
            ))
        }
    }
}

/// The newest message id (0 with none) and the releases ever committed.
pub(in crate::store::postgres) fn position_parts(conn: &mut Conn) -> Result<(u64, u64)> {
    let row = conn.query_one("SELECT last_message_id, releases FROM sb_clock", &[])?;
    Ok((get::<i64>(&row, 0)? as u64, get::<i64>(&row, 1)? as u64))
}

/// Where the snapshot `conn` reads sits in the stream of commits: the
/// newest message id plus the releases made, one row read.
pub(in crate::store::postgres) fn position(conn: &mut Conn) -> Result<Seq> {
    let (last_message_id, releases) = position_parts(conn)?;
    Ok(Seq(last_message_id + releases))
}

/// Counts `released` more releases, in the transaction that makes them.
pub(in crate::store::postgres) fn add_releases(conn: &mut Conn, released: u64) -> Result<()> {
    conn.execute(
        "UPDATE sb_clock SET releases = releases + $1",
        &[&sql_id(released)],
    )?;
    Ok(())
}

/// The latest time stamp stored, `None` before the first message.
pub(in crate::store::postgres) fn last_timestamp(conn: &mut Conn) -> Result<Option<Timestamp>> {
    let row = conn.query_one(
        "SELECT CASE WHEN last_message_id > 0 THEN last_ts_us END FROM sb_clock",
        &[],
    )?;
    Ok(get::<Option<i64>>(&row, 0)?.map(Timestamp::from_micros))
}
