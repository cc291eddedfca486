//! [`Conn`]: one connection to PostgreSQL with its prepared statements, as
//! the store's threads use it (the writer has one, each reader one).
//!
//! Each statement is prepared once per connection, the first time it runs,
//! and kept by the address of its SQL text (every statement is a `'static`
//! literal): no hashing of the text on the hot path. A connection that was
//! lost (PostgreSQL restarted) is opened again before the next transaction
//! or plain read, never in the middle of a transaction, with its
//! statements prepared afresh.

use std::collections::HashMap;

use postgres::types::ToSql;
use postgres::{Client, NoTls, Row, SimpleQueryMessage, Statement};

use super::Result;
use super::url::PostgresUrl;

/// Query parameters, as the client takes them.
pub(super) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

pub(in crate::store) struct Conn {
    client: Client,
    url: PostgresUrl,
    /// Prepared statements by the address and length of their SQL.
    statements: HashMap<(usize, usize), Statement>,
}

/// A new session, with PostgreSQL's JIT compiler off. Every statement
/// here touches a handful of rows, yet on a fresh database, before
/// autovacuum's first ANALYZE, the planner's guesses for the sequencer row
/// (`clock::begin_locked`) pass `jit_above_cost`, and compiling it took
/// 3.5 ms of every group commit for the first minute (session 12: perf
/// showed LLVM in the writer's backend; delivery p50 at 50 × 1 went from
/// 13 ms to 4 ms once ANALYZE ran).
fn connect(url: &PostgresUrl) -> std::result::Result<Client, postgres::Error> {
    let mut client = url.config().connect(NoTls)?;
    client.batch_execute("SET jit = off")?;
    Ok(client)
}

impl Conn {
    /// Connects; the error is the client's, which never holds the URL.
    pub(in crate::store) fn open(url: &PostgresUrl) -> std::result::Result<Conn, postgres::Error> {
        Ok(Conn {
            client: connect(url)?,
            url: url.clone(),
            statements: HashMap::new(),
        })
    }

    /// Where this connection goes, shown without its password.
    pub(in crate::store) fn url(&self) -> &PostgresUrl {
        &self.url
    }

    /// Opens the connection again if it was lost. Call only between
    /// transactions. A failure leaves it closed: the next statement fails
    /// with "connection closed", and the next call tries again.
    pub(super) fn reconnect_if_closed(&mut self) {
        if !self.client.is_closed() {
            return;
        }
        match connect(&self.url) {
            Ok(client) => {
                tracing::info!(url = %self.url, "connected to PostgreSQL again");
                self.client = client;
                self.statements.clear();
            }
            Err(error) => {
                tracing::warn!(url = %self.url, %error, "PostgreSQL is still unreachable");
            }
        }
    }

    /// Runs `op`, and if it failed because the connection was lost (the
    /// client reports it closed since), opens the connection again and runs
    /// `op` once more. Only for an operation that starts a transaction or
    /// stands alone: after PostgreSQL restarted, a connection left idle
    /// learns it was cut only when it next sends, so the first statement
    /// of the next transaction would fail for nothing.
    pub(super) fn retrying_if_lost<T>(&mut self, op: impl Fn(&mut Conn) -> Result<T>) -> Result<T> {
        match op(self) {
            Err(error) if self.client.is_closed() => {
                self.reconnect_if_closed();
                if self.client.is_closed() {
                    return Err(error);
                }
                op(self)
            }
            done => done,
        }
    }

    fn statement(&mut self, sql: &'static str) -> Result<Statement> {
        let key = (sql.as_ptr() as usize, sql.len());
        if let Some(statement) = self.statements.get(&key) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        self.statements.insert(key, statement.clone());
        Ok(statement)
    }

    pub(super) fn query(&mut self, sql: &'static str, params: Params<'_>) -> Result<Vec<Row>> {
        let statement = self.statement(sql)?;
        Ok(self.client.query(&statement, params)?)
    }

    pub(super) fn query_opt(
        &mut self,
        sql: &'static str,
        params: Params<'_>,
    ) -> Result<Option<Row>> {
        let statement = self.statement(sql)?;
        Ok(self.client.query_opt(&statement, params)?)
    }

    pub(super) fn query_one(&mut self, sql: &'static str, params: Params<'_>) -> Result<Row> {
        let statement = self.statement(sql)?;
        Ok(self.client.query_one(&statement, params)?)
    }

    /// Runs a statement; the number of rows it changed.
    pub(super) fn execute(&mut self, sql: &'static str, params: Params<'_>) -> Result<u64> {
        let statement = self.statement(sql)?;
        Ok(self.client.execute(&statement, params)?)
    }

    /// Statements without parameters, in one round trip (transaction
    /// control, migrations).
    pub(super) fn batch(&mut self, sql: &str) -> Result<()> {
        Ok(self.client.batch_execute(sql)?)
    }

    /// Statements without parameters in one round trip, and every column
    /// of the first row they return, as text (none: no row).
    pub(super) fn simple_row(&mut self, sql: &str) -> Result<Vec<Option<String>>> {
        let messages = self.client.simple_query(sql)?;
        Ok(messages
            .iter()
            .find_map(|message| match message {
                SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|index| row.get(index).map(str::to_owned))
                        .collect(),
                ),
                _ => None,
            })
            .unwrap_or_default())
    }
}
