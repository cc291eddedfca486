//! Names ignoring case (issue 15, finding 10). Names are ASCII (`Name`),
//! so `lower()` is exactly "the same name ignoring case", and the
//! `lower(name)` indexes make each side one b-tree descent.

use switchboard_protocol::{Name, Role};

use super::super::Result;
use super::super::conn::Conn;
use super::{get, name_at, role_to_sql};

/// Every user and agent (a removed agent too: it may be added back) whose
/// name equals `name` ignoring case, as stored. Racing registrations of
/// one name are ordered by the sequencer row every write transaction holds.
pub(in crate::store::postgres) fn names_like(
    conn: &mut Conn,
    name: &Name,
) -> Result<Vec<(Role, Name)>> {
    let user = role_to_sql(Role::User);
    conn.query(
        "SELECT $2::BIGINT, name FROM users WHERE lower(name) = lower($1)
         UNION ALL
         SELECT $3::BIGINT, name FROM agents WHERE lower(name) = lower($1)",
        &[&name.as_str(), &user, &role_to_sql(Role::Agent)],
    )?
    .iter()
    .map(|row| {
        let role = if get::<i64>(row, 0)? == user {
            Role::User
        } else {
            Role::Agent
        };
        Ok((role, name_at(row, 1)?))
    })
    .collect()
}
