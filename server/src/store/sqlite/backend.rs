//! [`Backend`] and [`Transaction`] for SQLite: the writer's connection and
//! its `BEGIN IMMEDIATE` transactions.

use rusqlite::{Connection, TransactionBehavior};
use switchboard_protocol::Timestamp;
use thiserror::Error;

use super::tables::HotStatements;
use super::{queries, schema, tx};
use crate::store::backend::{Backend, Transaction};

/// Why SQLite could not write, beside its own errors.
#[derive(Debug, Error)]
pub(in crate::store) enum SqliteError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "the database schema is now version {found}, not {}: a newer switchboard \
         upgraded it; stop this server",
        schema::CURRENT_VERSION
    )]
    SchemaChanged { found: i32 },
}

impl Backend for Connection {
    type Error = SqliteError;
    type Tx<'a> = rusqlite::Transaction<'a>;

    fn begin(&mut self) -> Result<rusqlite::Transaction<'_>, SqliteError> {
        let tx = self.transaction_with_behavior(TransactionBehavior::Immediate)?;
        same_schema(&tx)?;
        Ok(tx)
    }

    fn last_timestamp(&mut self) -> Result<Option<Timestamp>, SqliteError> {
        Ok(queries::last_timestamp(self)?)
    }

    fn position_parts(&mut self) -> Result<(u64, u64), SqliteError> {
        Ok((
            queries::last_message_id(self)?,
            queries::release_count(self)?,
        ))
    }
}

/// Refuses to write if another process upgraded the schema under this
/// server: it would keep writing the old layout into the new one.
fn same_schema(conn: &Connection) -> Result<(), SqliteError> {
    let found = schema::version(conn)?;
    if found == schema::CURRENT_VERSION {
        return Ok(());
    }
    Err(SqliteError::SchemaChanged { found })
}

impl Transaction for rusqlite::Transaction<'_> {
    type Error = SqliteError;
    type TablesError = rusqlite::Error;
    type Tables<'t>
        = HotStatements<'t>
    where
        Self: 't;

    fn tables(&self) -> Result<HotStatements<'_>, SqliteError> {
        Ok(HotStatements::new(self)?)
    }

    fn add_releases(&self, released: u64) -> Result<(), SqliteError> {
        Ok(queries::add_releases(self, released)?)
    }

    fn savepoint(&self) -> Result<(), SqliteError> {
        Ok(tx::savepoint(self)?)
    }

    fn release_savepoint(&self) -> Result<(), SqliteError> {
        Ok(tx::release_savepoint(self)?)
    }

    fn rollback_to_savepoint(&self) -> Result<(), SqliteError> {
        Ok(tx::rollback_savepoint(self)?)
    }

    fn commit(self) -> Result<(), SqliteError> {
        Ok(rusqlite::Transaction::commit(self)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_stop_once_another_process_changed_the_schema() {
        let mut conn = Connection::open_in_memory().expect("opens");
        schema::migrate(&mut conn).expect("migrates");
        assert!(same_schema(&conn).is_ok());
        conn.pragma_update(None, "user_version", schema::CURRENT_VERSION + 1)
            .expect("sets");
        let error = same_schema(&conn).expect_err("a newer schema");
        assert!(matches!(error, SqliteError::SchemaChanged { .. }));
        assert!(error.to_string().contains("stop this server"), "{error}");
    }
}
