//! The PostgreSQL layout and its versioned migrations.
//!
//! `switchboard_schema` holds the version: how many [`MIGRATIONS`] have run.
//! Its presence marks the database as switchboard's; a database that has
//! other tables but not this one is refused, not written into. Migrations
//! run in one transaction under a transaction-scoped advisory lock, so two
//! processes starting at once (a server and `agent add`, or two nodes) run
//! each step once, and a step that fails leaves nothing half done
//! (PostgreSQL's DDL is transactional).
//!
//! Unlike SQLite's layout, conversations are read through an index by
//! (user, id) rather than chains: PostgreSQL's b-trees keep that cheap.
//! Names are `COLLATE "C"` (byte order, as SQLite sorts them) and indexed by
//! `lower(name)` for "the same name ignoring case" (names are ASCII).

use thiserror::Error;

use super::PostgresError;
use super::conn::Conn;

/// Taken (transaction-scoped) while migrating: "SWBD".
const MIGRATION_LOCK: i64 = 0x5357_4244;

/// Each entry moves the schema from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema, with everything SQLite's version 8 holds.
    r#"CREATE TABLE sb_clock (
        only_row         BOOLEAN PRIMARY KEY DEFAULT true CHECK (only_row),
        -- The newest message id: the next message gets last_message_id + 1.
        last_message_id  BIGINT NOT NULL,
        -- Releases ever committed; a position is last_message_id + releases.
        releases         BIGINT NOT NULL,
        -- The newest message's time stamp (µs), for a clock that went back.
        last_ts_us       BIGINT NOT NULL
     );
     INSERT INTO sb_clock (last_message_id, releases, last_ts_us) VALUES (0, 0, 0);
     CREATE TABLE agents (
        id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name        TEXT COLLATE "C" NOT NULL UNIQUE,
        token_hash  BYTEA,            -- NULL once the agent is removed
        created_us  BIGINT NOT NULL
     );
     CREATE INDEX agents_by_name_nocase ON agents (lower(name));
     CREATE TABLE users (
        id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name        TEXT COLLATE "C" NOT NULL UNIQUE,
        token_hash  BYTEA NOT NULL,
        created_us  BIGINT NOT NULL,
        assigned_agent_id BIGINT REFERENCES agents(id)
     );
     CREATE INDEX users_by_name_nocase ON users (lower(name));
     CREATE INDEX users_by_assigned_agent ON users (assigned_agent_id)
        WHERE assigned_agent_id IS NOT NULL;
     -- Ids come from sb_clock, never from a sequence (see the module docs).
     CREATE TABLE messages (
        id          BIGINT PRIMARY KEY,
        ts_us       BIGINT NOT NULL,
        user_id     BIGINT NOT NULL REFERENCES users(id),
        agent_id    BIGINT REFERENCES agents(id), -- NULL: written by the user
        body        TEXT NOT NULL,
        priority    BIGINT NOT NULL   -- 0 low, 1 normal, 2 high, 3 urgent
     );
     CREATE INDEX messages_by_conversation ON messages (user_id, id);
     -- The agents' queue: a row per unanswered user message.
     CREATE TABLE waiting (
        message_id  BIGINT PRIMARY KEY REFERENCES messages(id),
        user_id     BIGINT NOT NULL,
        urgency     BIGINT NOT NULL
     );
     CREATE INDEX waiting_by_priority ON waiting (urgency DESC, message_id);
     CREATE INDEX waiting_by_user ON waiting (user_id);
     -- Idempotency keys: a sender is (role, id), role 0 user, 1 agent.
     CREATE TABLE send_keys (
        sender_role BIGINT NOT NULL,
        sender_id   BIGINT NOT NULL,
        key         TEXT COLLATE "C" NOT NULL,
        message_id  BIGINT NOT NULL REFERENCES messages(id),
        PRIMARY KEY (sender_role, sender_id, key)
     );
     -- Conversations a removed agent held when it was added again, whose
     -- release a server has still to announce.
     CREATE TABLE releases_due (
        user_id     BIGINT PRIMARY KEY REFERENCES users(id),
        agent_id    BIGINT NOT NULL REFERENCES agents(id)
     );"#,
    // 2: cluster mode (issue 16). The feed: every committed batch with
    // events, as the bus carries it, so a node reads back by position what
    // the bus lost; written in the batch's own transaction, pruned after
    // `shared_feed::RETENTION`. The nodes: each running node's id and the
    // lease it renews. The cluster: the help desk's id, which keeps its bus
    // subject apart from another's. The connections: each node's
    // subscribed ones, which every node counts for presence.
    r#"CREATE TABLE sb_feed (
        seq         BIGINT PRIMARY KEY,
        -- The position of the batch committed just before this one.
        after       BIGINT NOT NULL,
        -- The batch, encoded as on the bus (fanout/feed_wire.rs).
        batch       BYTEA NOT NULL,
        at_us       BIGINT NOT NULL
     );
     CREATE INDEX sb_feed_by_time ON sb_feed (at_us);
     CREATE TABLE sb_nodes (
        id          INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        started_us  BIGINT NOT NULL,
        -- By the database's clock: past it, any node may sweep this one.
        lease_until_us BIGINT NOT NULL
     );
     -- This help desk's id: its nodes' subject on a shared NATS.
     CREATE TABLE sb_cluster (id TEXT NOT NULL);
     INSERT INTO sb_cluster (id) SELECT md5(random()::text || clock_timestamp()::text);
     CREATE TABLE sb_connections (
        node        INTEGER NOT NULL,
        conn        BIGINT NOT NULL,
        role        BIGINT NOT NULL,   -- 0 user, 1 agent
        name        TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (node, conn)
     );"#,
    // 3: supervisors (protocol version 2; SQLite's version 9).
    "ALTER TABLE agents ADD COLUMN supervisor BOOLEAN NOT NULL DEFAULT false;",
    // 4: private notes (protocol version 2; SQLite's version 10). A
    // constant default: PostgreSQL adds the column without rewriting the
    // table.
    "ALTER TABLE messages ADD COLUMN note BOOLEAN NOT NULL DEFAULT false;",
    // 5: auto-release (protocol version 2; SQLite's version 11). An agent's
    // clock (`offline_since_us`, NULL while it has a row in
    // `sb_connections`) is kept in the transactions that open and close
    // connection rows, so every node, one joining too, reads the same one;
    // a conversation's (`held_since_us`) in the one that gives it a holder.
    // Every agent with no connection recorded is offline from the upgrade
    // on (the cluster's start bounds the clock too: `queries/presence.rs`).
    "ALTER TABLE agents ADD COLUMN offline_since_us BIGINT;
     ALTER TABLE users ADD COLUMN held_since_us BIGINT NOT NULL DEFAULT 0;
     CREATE INDEX sb_connections_by_name ON sb_connections (role, name);
     UPDATE agents a SET offline_since_us = (extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT
     WHERE NOT EXISTS (SELECT 1 FROM sb_connections c WHERE c.role = 1 AND c.name = a.name);",
];

/// The schema version this build writes.
pub const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

#[derive(Debug, Error)]
pub(in crate::store) enum SchemaError {
    #[error(
        "this database has tables but none of switchboard's; refusing to touch it: \
         give --postgres an empty database (createdb) or a switchboard one"
    )]
    NotOurs,
    #[error(
        "this database has schema version {found}, newer than this switchboard \
         understands ({CURRENT_VERSION}); run a newer switchboard"
    )]
    TooNew { found: i64 },
    #[error(
        "this database has schema version {found}, older than this switchboard's \
         ({CURRENT_VERSION}); start `switchboard serve --postgres` on it once to \
         upgrade it, then run this again"
    )]
    TooOld { found: i64 },
    #[error(
        "this database holds no switchboard data yet; `switchboard serve --postgres` \
         and `switchboard agent add --postgres` create it"
    )]
    Empty,
    #[error(transparent)]
    Postgres(#[from] PostgresError),
}

impl From<postgres::Error> for SchemaError {
    fn from(error: postgres::Error) -> Self {
        SchemaError::Postgres(error.into())
    }
}

/// What a caller lets happen to the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::store) enum Settle {
    /// `serve`: create or upgrade.
    Migrate,
    /// `agent add`: create a new schema, but leave upgrades to `serve` (a
    /// server of the previous version may still be writing).
    CreateOnly,
    /// The other `agent` commands: the schema must be there, current.
    Existing,
}

/// Brings the schema to where `settle` allows, or says why not.
pub(in crate::store) fn settle(conn: &mut Conn, settle: Settle) -> Result<(), SchemaError> {
    conn.batch("BEGIN")?;
    let settled = settle_in_transaction(conn, settle);
    match settled {
        Ok(()) => conn.batch("COMMIT")?,
        Err(_) => {
            // The error says why; a failed rollback only means the
            // connection is gone, which rolls back too.
            let _ = conn.batch("ROLLBACK");
        }
    }
    settled
}

fn settle_in_transaction(conn: &mut Conn, settle: Settle) -> Result<(), SchemaError> {
    conn.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    let version = match version(conn)? {
        Some(version) => version,
        None if has_tables(conn)? => return Err(SchemaError::NotOurs),
        None if settle == Settle::Existing => return Err(SchemaError::Empty),
        None => {
            conn.batch(
                "CREATE TABLE switchboard_schema (version BIGINT NOT NULL);
                        INSERT INTO switchboard_schema (version) VALUES (0);",
            )?;
            0
        }
    };
    if version > CURRENT_VERSION {
        return Err(SchemaError::TooNew { found: version });
    }
    if version > 0 && version < CURRENT_VERSION && settle != Settle::Migrate {
        return Err(SchemaError::TooOld { found: version });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tracing::info!(
            from = index,
            to = index + 1,
            "upgrading the PostgreSQL schema"
        );
        conn.batch(sql)?;
        conn.execute(
            "UPDATE switchboard_schema SET version = $1",
            &[&(index as i64 + 1)],
        )?;
    }
    Ok(())
}

/// The schema version, `None` when the database is not switchboard's (yet).
pub(in crate::store) fn version(conn: &mut Conn) -> Result<Option<i64>, SchemaError> {
    let marked = conn
        .query_one("SELECT to_regclass('switchboard_schema') IS NOT NULL", &[])?
        .try_get::<_, bool>(0)
        .map_err(PostgresError::from)?;
    if !marked {
        return Ok(None);
    }
    let row = conn.query_one("SELECT version FROM switchboard_schema", &[])?;
    Ok(Some(row.try_get(0).map_err(PostgresError::from)?))
}

/// Whether the current schema (`public`, usually) has any table.
fn has_tables(conn: &mut Conn) -> Result<bool, SchemaError> {
    let row = conn.query_one(
        "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = current_schema())",
        &[],
    )?;
    Ok(row.try_get(0).map_err(PostgresError::from)?)
}
