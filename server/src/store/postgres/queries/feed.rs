//! The feed, `sb_feed` (schema 2): every committed batch with events, as
//! the bus carries it, keyed by its position. A node reads back from here
//! what the bus lost, by position (`fanout/cluster_feed.rs`); rows older
//! than the retention are pruned.

use std::time::Duration;

use switchboard_protocol::Timestamp;

use super::super::Result;
use super::super::conn::Conn;
use super::{get, sql_id};
use crate::event::Seq;
use crate::feed_wire::Linked;

/// Appends one batch in the transaction that commits it (the sequencer row
/// is held, so rows are appended in position order).
pub(in crate::store::postgres) fn append(
    conn: &mut Conn,
    after: Seq,
    seq: Seq,
    encoded: &[u8],
    now: Timestamp,
) -> Result<()> {
    conn.execute(
        "INSERT INTO sb_feed (seq, after, batch, at_us) VALUES ($1, $2, $3, $4)",
        &[&sql_id(seq.0), &sql_id(after.0), &encoded, &now.as_micros()],
    )?;
    Ok(())
}

/// The batches after position `after`, oldest first, at most `limit`.
/// Every snapshot holds a prefix of the commits (the sequencer row), so
/// what this returns has no hole: the first row follows `after` unless
/// that row was pruned.
pub(in crate::store::postgres) fn after(
    conn: &mut Conn,
    after: Seq,
    limit: u32,
) -> Result<Vec<Linked<Vec<u8>>>> {
    let rows = conn.query(
        "SELECT after, seq, batch FROM sb_feed WHERE seq > $1 ORDER BY seq LIMIT $2",
        &[&sql_id(after.0), &i64::from(limit)],
    )?;
    rows.iter()
        .map(|row| {
            Ok(Linked {
                after: Seq(get::<i64>(row, 0)? as u64),
                seq: Seq(get::<i64>(row, 1)? as u64),
                item: get::<Vec<u8>>(row, 2)?,
            })
        })
        .collect()
}

/// Deletes up to `limit` of the batches appended longer than `kept` ago
/// by the database's clock (the clock `at_us` was stamped with), oldest
/// first, through the index by time; how many. Bounded, so that it never
/// holds up the lease renewals that share its connection.
pub(in crate::store::postgres) fn prune(
    conn: &mut Conn,
    kept: Duration,
    limit: u32,
) -> Result<u64> {
    conn.execute(
        "DELETE FROM sb_feed WHERE seq IN (
            SELECT seq FROM sb_feed
            WHERE at_us < (extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT - $1
            ORDER BY at_us LIMIT $2)",
        &[
            &i64::try_from(kept.as_micros()).unwrap_or(i64::MAX),
            &i64::from(limit),
        ],
    )
}
