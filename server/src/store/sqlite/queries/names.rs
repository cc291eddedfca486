//! Names ignoring case: who already has a name that differs from another
//! only in case (issue 15, finding 10).
//!
//! Names are ASCII (`Name`), so SQLite's `NOCASE` collation (ASCII case
//! folding) is exactly "the same name ignoring case"; the indexes of schema
//! 8 make each side one b-tree descent.

use rusqlite::{Connection, params};
use switchboard_protocol::{Name, Role};

use super::keys::role_to_sql;
use super::{Result, name_at};

/// Every user and agent (a removed agent too: it may be added back) whose
/// name equals `name` ignoring case, as stored.
pub fn names_like(conn: &Connection, name: &Name) -> Result<Vec<(Role, Name)>> {
    let mut statement = conn.prepare_cached(
        "SELECT ?2, name FROM users WHERE name = ?1 COLLATE NOCASE
         UNION ALL
         SELECT ?3, name FROM agents WHERE name = ?1 COLLATE NOCASE",
    )?;
    let user = role_to_sql(Role::User);
    let rows = statement.query_map(
        params![name.as_str(), user, role_to_sql(Role::Agent)],
        |row| {
            let role = if row.get::<_, i64>(0)? == user {
                Role::User
            } else {
                Role::Agent
            };
            Ok((role, name_at(row, 1)?))
        },
    )?;
    rows.collect()
}

/// Names that differ only in case from another name, users' and agents'
/// together, as stored: what a database from before schema 8 may hold. They
/// keep working (each signs in with its own exact name and token); the
/// server warns about them at start.
pub fn case_duplicates(conn: &Connection) -> Result<Vec<Name>> {
    let mut statement = conn.prepare(
        "WITH everyone(name) AS (SELECT name FROM users UNION ALL SELECT name FROM agents)
         SELECT name FROM everyone
         WHERE lower(name) IN (SELECT lower(name) FROM everyone
                               GROUP BY lower(name) HAVING count(*) > 1)
         ORDER BY lower(name), name",
    )?;
    let rows = statement.query_map([], |row| name_at(row, 0))?;
    rows.collect()
}
