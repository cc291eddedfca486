//! The nodes, `sb_nodes`, and their connections, `sb_connections` (schema
//! 2): each node that starts on the database takes a new id and a lease it
//! renews; each subscribed connection is a row under its node, which every
//! node counts for presence. A node whose lease runs out (by the
//! database's clock, so no node's own clock matters) is swept by any other,
//! connections and all, inside a write transaction: the offline events go
//! through the ordered feed like every other event.

use std::time::Duration;

use switchboard_protocol::Role;

use super::super::Result;
use super::super::conn::Conn;
use super::{get, parse_name, role_to_sql};
use crate::event::{ConnId, Member, NodeId, Seq};
use crate::store::shared_feed::Renewal;

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// A new node id, never handed out before on this database, holding a
/// lease of `lease`.
pub(in crate::store::postgres) fn register(conn: &mut Conn, lease: Duration) -> Result<u32> {
    let row = conn.query_one(
        concat!(
            "INSERT INTO sb_nodes (started_us, lease_until_us) SELECT now_us, now_us + $1 FROM (SELECT ",
            now_us!(),
            " AS now_us) clock RETURNING id"
        ),
        &[&micros(lease)],
    )?;
    Ok(get::<i32>(&row, 0)? as u32)
}

/// Renews `node`'s lease, if it still holds one, and says whether another
/// node's has run out.
pub(in crate::store::postgres) fn renew(
    conn: &mut Conn,
    node: NodeId,
    lease: Duration,
) -> Result<Renewal> {
    let row = conn.query_one(
        concat!(
            "WITH clock AS (SELECT ",
            now_us!(),
            " AS now_us),
             renewed AS (
                UPDATE sb_nodes SET lease_until_us = (SELECT now_us FROM clock) + $2
                WHERE id = $1 RETURNING id)
             SELECT EXISTS (SELECT 1 FROM renewed),
                    EXISTS (SELECT 1 FROM sb_nodes, clock
                            WHERE id <> $1 AND lease_until_us < clock.now_us)"
        ),
        &[&(node.0 as i32), &micros(lease)],
    )?;
    Ok(Renewal {
        held: get(&row, 0)?,
        others_expired: get(&row, 1)?,
    })
}

/// Takes `node`'s id again, with a fresh lease, after it was swept.
pub(in crate::store::postgres) fn rejoin(
    conn: &mut Conn,
    node: NodeId,
    lease: Duration,
) -> Result<()> {
    conn.execute(
        concat!(
            "INSERT INTO sb_nodes (id, started_us, lease_until_us) OVERRIDING SYSTEM VALUE
             SELECT $1, now_us, now_us + $2 FROM (SELECT ",
            now_us!(),
            " AS now_us) clock
             ON CONFLICT (id) DO UPDATE SET lease_until_us = EXCLUDED.lease_until_us"
        ),
        &[&(node.0 as i32), &micros(lease)],
    )?;
    Ok(())
}

/// This help desk's id (`sb_cluster`), made when its schema was.
pub(in crate::store::postgres) fn cluster_id(conn: &mut Conn) -> Result<String> {
    let row = conn.query_one("SELECT id FROM sb_cluster", &[])?;
    get(&row, 0)
}

/// Records a subscribed connection, unless its node has lost its lease
/// (then it is as good as closed); whether it was recorded.
pub(in crate::store::postgres) fn open_member(conn: &mut Conn, member: &Member) -> Result<bool> {
    let inserted = conn.execute(
        "INSERT INTO sb_connections (node, conn, role, name)
         SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM sb_nodes WHERE id = $1)
         ON CONFLICT DO NOTHING",
        &[
            &(member.node.0 as i32),
            &(member.conn as i64),
            &role_to_sql(member.role),
            &member.name.as_str(),
        ],
    )?;
    Ok(inserted > 0)
}

/// Forgets a connection; whether it was recorded.
pub(in crate::store::postgres) fn close_member(conn: &mut Conn, member: &Member) -> Result<bool> {
    let deleted = conn.execute(
        "DELETE FROM sb_connections WHERE node = $1 AND conn = $2",
        &[&(member.node.0 as i32), &(member.conn as i64)],
    )?;
    Ok(deleted > 0)
}

/// Forgets `node`'s records but those of `live` connections: the records
/// forgotten.
pub(in crate::store::postgres) fn forget_members(
    conn: &mut Conn,
    node: NodeId,
    live: &[ConnId],
) -> Result<Vec<Member>> {
    let live: Vec<i64> = live.iter().map(|&conn| conn as i64).collect();
    let rows = conn.query(
        "DELETE FROM sb_connections WHERE node = $1 AND NOT (conn = ANY($2))
         RETURNING node, conn, role, name",
        &[&(node.0 as i32), &live],
    )?;
    rows.iter().map(member_from_row).collect()
}

/// Forgets the nodes but `sweeper` whose lease ran out and every
/// connection of a node that is gone: the connections forgotten.
pub(in crate::store::postgres) fn sweep_expired(
    conn: &mut Conn,
    sweeper: NodeId,
) -> Result<Vec<Member>> {
    let rows = conn.query(
        concat!(
            "WITH expired AS (
                DELETE FROM sb_nodes WHERE id <> $1 AND lease_until_us < ",
            now_us!(),
            " RETURNING id)
             DELETE FROM sb_connections c
             WHERE c.node IN (SELECT id FROM expired)
                OR NOT EXISTS (SELECT 1 FROM sb_nodes n WHERE n.id = c.node)
             RETURNING node, conn, role, name"
        ),
        &[&(sweeper.0 as i32)],
    )?;
    rows.iter().map(member_from_row).collect()
}

/// Forgets `node` itself, lease and connections, as it stops cleanly: the
/// connections forgotten. From then on the node counts for nothing, the
/// cluster's start included (`presence.rs`), so a whole cluster stopped
/// and started again starts its clocks again, as one node does.
pub(in crate::store::postgres) fn retire(conn: &mut Conn, node: NodeId) -> Result<Vec<Member>> {
    let rows = conn.query(
        "WITH gone AS (DELETE FROM sb_nodes WHERE id = $1)
         DELETE FROM sb_connections WHERE node = $1
         RETURNING node, conn, role, name",
        &[&(node.0 as i32)],
    )?;
    rows.iter().map(member_from_row).collect()
}

/// Every recorded connection and the position, read in one snapshot: what
/// a starting node counts, and where its feed starts.
pub(in crate::store::postgres) fn members_at(conn: &mut Conn) -> Result<(Vec<Member>, Seq)> {
    conn.batch("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")?;
    let read = (|| {
        let position = super::clock::position(conn)?;
        let rows = conn.query("SELECT node, conn, role, name FROM sb_connections", &[])?;
        let members = rows.iter().map(member_from_row).collect::<Result<_>>()?;
        Ok((members, position))
    })();
    // Read only: nothing to keep either way.
    let _ = conn.batch("COMMIT");
    read
}

fn member_from_row(row: &postgres::Row) -> Result<Member> {
    Ok(Member {
        node: NodeId(get::<i32>(row, 0)? as u32),
        conn: get::<i64>(row, 1)? as u64,
        role: if get::<i64>(row, 2)? == role_to_sql(Role::Agent) {
            Role::Agent
        } else {
            Role::User
        },
        name: parse_name(get(row, 3)?)?,
    })
}
