//! The database layout and its migrations.
//!
//! `PRAGMA user_version` says which migrations have run; `application_id`
//! marks the file as switchboard's, so the server refuses to write its tables
//! into someone else's database.
//!
//! Every structure a message's insert touches only appends, so a commit of
//! many messages from many users writes a handful of pages, not one page per
//! user per index:
//! - a user's conversation is a chain: each message has `prev_id`, the one
//!   before it in the same conversation, and `conversations` holds the
//!   newest. Reading a conversation newest first walks the chain by primary
//!   key (one small table updated per message instead of an index keyed by
//!   user that every insert scattered into);
//! - a page of a conversation older than an id from elsewhere starts from
//!   the nearest mark: every 256th message of a conversation is listed in
//!   `conversation_marks` (one small insert per 256 messages), so the walk
//!   down the chain to that id is at most 256 steps, however long the
//!   conversation;
//! - held conversations are found through an index of users by agent, not
//!   by reading every user;
//! - the waiting queue by priority then age: a small `waiting` table (a row
//!   per unanswered user message, deleted when answered) whose key is
//!   `(urgency DESC, message_id)`, so it is its own index. A user's waiting
//!   messages are always the newest of their conversation, so answering
//!   walks the chain back to find them (each by its priority and id),
//!   without an index by user.
//!
//! Ids and time stamps are integers (time in microseconds); text is only for
//! what people read.

use rusqlite::Connection;
use thiserror::Error;

/// "SWBD": written into the database header by the first migration.
pub const APPLICATION_ID: i32 = 0x5357_4244;

/// Each entry moves the schema from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE agents (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        token_hash  BLOB,             -- NULL once the agent is removed
        created_us  INTEGER NOT NULL
     );
     CREATE TABLE users (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        token_hash  BLOB NOT NULL,
        created_us  INTEGER NOT NULL,
        assigned_agent_id INTEGER REFERENCES agents(id)
     );
     CREATE TABLE messages (
        id          INTEGER PRIMARY KEY,
        ts_us       INTEGER NOT NULL,
        user_id     INTEGER NOT NULL REFERENCES users(id),
        agent_id    INTEGER REFERENCES agents(id), -- NULL: written by the user
        body        TEXT NOT NULL,
        priority    INTEGER NOT NULL  -- 0 low, 1 normal, 2 high, 3 urgent
     );
     CREATE INDEX messages_by_conversation ON messages(user_id, id);
     CREATE TABLE waiting (
        message_id  INTEGER PRIMARY KEY REFERENCES messages(id),
        user_id     INTEGER NOT NULL,
        urgency     INTEGER NOT NULL
     );
     CREATE INDEX waiting_by_priority ON waiting(urgency DESC, message_id);
     CREATE INDEX waiting_by_user ON waiting(user_id);
     -- Idempotency keys: a sender is (role, id), role 0 user, 1 agent.
     CREATE TABLE send_keys (
        sender_role INTEGER NOT NULL,
        sender_id   INTEGER NOT NULL,
        key         TEXT NOT NULL,
        message_id  INTEGER NOT NULL,
        PRIMARY KEY (sender_role, sender_id, key)
     ) WITHOUT ROWID;",
    // 2: conversations as chains (see the module documentation). Links the
    // existing messages while the old index is still there to find them.
    "ALTER TABLE messages ADD COLUMN prev_id INTEGER;
     CREATE TABLE conversations (
        user_id          INTEGER PRIMARY KEY,
        last_message_id  INTEGER NOT NULL
     );
     UPDATE messages SET prev_id = (
        SELECT max(p.id) FROM messages p
        WHERE p.user_id = messages.user_id AND p.id < messages.id
     );
     INSERT INTO conversations (user_id, last_message_id)
        SELECT user_id, max(id) FROM messages GROUP BY user_id;
     DROP INDEX messages_by_conversation;
     DROP INDEX waiting_by_user;",
    // 3: `agent remove` leaves the removed agent's conversations marked with
    // it, for the server to release and announce (`released`); this index
    // finds held conversations without reading every user. A version of its
    // own, too, so that a server from before it (which would take those
    // marks for live assignments) stops writing to a database upgraded
    // under it.
    //
    // Not a partial index (`WHERE assigned_agent_id IS NOT NULL`): with one,
    // SQLite re-prepares every statement on `users` with a bound value, the
    // writer's hot `find_user` among them.
    "CREATE INDEX users_by_assigned_agent ON users(assigned_agent_id);",
    // 4: the waiting queue as one b-tree keyed the way agents read it,
    // `(urgency DESC, message_id)`, instead of a table by message id plus an
    // index by priority: a user's message inserts one entry, not two, and a
    // commit dirties a page fewer (the index was 6.6% of the server's
    // instructions per message, callgrind). Answering finds a waiting message
    // by its own priority and id. Urgency is taken from the messages
    // themselves, so every entry agrees with the message it queues.
    "CREATE TABLE waiting_v4 (
        urgency     INTEGER NOT NULL,
        message_id  INTEGER NOT NULL REFERENCES messages(id),
        user_id     INTEGER NOT NULL,
        PRIMARY KEY (urgency DESC, message_id)
     ) WITHOUT ROWID;
     INSERT INTO waiting_v4 (urgency, message_id, user_id)
        SELECT m.priority, w.message_id, w.user_id
        FROM waiting w JOIN messages m ON m.id = w.message_id;
     DROP TABLE waiting;
     ALTER TABLE waiting_v4 RENAME TO waiting;",
    // 5: marks along each conversation's chain, so that a page `before` an
    // id from another conversation starts near it instead of walking the
    // whole chain down to it (see `queries::MARK_EVERY`). A conversation
    // counts its messages; every 256th is marked. Existing conversations are
    // counted and marked in one sorted pass over the messages.
    "ALTER TABLE conversations ADD COLUMN length INTEGER NOT NULL DEFAULT 0;
     CREATE TABLE conversation_marks (
        user_id     INTEGER NOT NULL,
        message_id  INTEGER NOT NULL,
        PRIMARY KEY (user_id, message_id)
     ) WITHOUT ROWID;
     CREATE TEMP TABLE numbered AS
        SELECT user_id, id, row_number() OVER (PARTITION BY user_id ORDER BY id) AS n
        FROM messages;
     INSERT INTO conversation_marks (user_id, message_id)
        SELECT user_id, id FROM numbered WHERE n % 256 = 0;
     UPDATE conversations SET length = counted.n
        FROM (SELECT user_id, max(n) AS n FROM numbered GROUP BY user_id) AS counted
        WHERE counted.user_id = conversations.user_id;
     DROP TABLE numbered;",
    // 6: conversations still held by a removed agent when it was added
    // again, before a server announced their release. Adding the agent
    // clears them (it starts with none) and leaves the announcement due
    // here, so a running server still tells everyone (`released`) however
    // quickly the agent came back.
    "CREATE TABLE releases_due (
        user_id     INTEGER PRIMARY KEY REFERENCES users(id),
        agent_id    INTEGER NOT NULL REFERENCES agents(id)
     );",
    // 7: how many releases were ever committed. A commit's position in the
    // stream of events (`event::Seq`) is the newest message id plus this
    // count: every commit with events raises one or the other, so a reader
    // learns from its own snapshot where that snapshot sits, and a
    // `subscribe` read on a reader joins the live stream right after it. One
    // row, written only by commits that release something.
    "CREATE TABLE release_count (releases INTEGER NOT NULL);
     INSERT INTO release_count (releases) VALUES (0);",
    // 8: names are unique ignoring case, and users and agents share one
    // space of names (issue 15, finding 10: `Ana` could pass for `ana`, a
    // user for an agent). The rules check it on every new name
    // (`Tables::names_like`); these make that check an index lookup. Not
    // UNIQUE: a database from before may hold names that differ only in
    // case, and those keep working (`migrate` warns about them, and the
    // README's "Names ignoring case" says how to retire them).
    "CREATE INDEX users_by_name_nocase ON users(name COLLATE NOCASE);
     CREATE INDEX agents_by_name_nocase ON agents(name COLLATE NOCASE);",
    // 9: supervisors (protocol version 2): an agent who may release,
    // resolve and transfer any conversation. Every agent from before is not
    // one; `agent promote NAME` makes one.
    "ALTER TABLE agents ADD COLUMN supervisor INTEGER NOT NULL DEFAULT 0;",
    // 10: private notes (protocol version 2): an agent's message for
    // colleagues, kept in the user's chain like any other (agents read the
    // conversation with its notes in place) and skipped by every walk made
    // for the user and by the waiting queue's (`queries::messages`,
    // `queries::waiting`). Every message from before is not one.
    "ALTER TABLE messages ADD COLUMN note INTEGER NOT NULL DEFAULT 0;",
    // 11: auto-release (protocol version 2). A conversation is let go once
    // its holder has had no subscribed connection for `--release-after`,
    // counted from the later of the holder going offline
    // (`agents.offline_since_us`, NULL while it has a connection in
    // `agent_connections`) and its taking the conversation
    // (`users.held_since_us`). The server's start clears the connections
    // and starts every agent's clock (`startup.rs`).
    "ALTER TABLE agents ADD COLUMN offline_since_us INTEGER;
     ALTER TABLE users ADD COLUMN held_since_us INTEGER NOT NULL DEFAULT 0;
     CREATE TABLE agent_connections (
        conn        INTEGER PRIMARY KEY,
        agent       TEXT NOT NULL
     );
     CREATE INDEX agent_connections_by_agent ON agent_connections(agent);",
];

/// The schema version from which new names are checked ignoring case.
const CASE_INSENSITIVE_NAMES: i32 = 8;

/// The schema version this build writes.
pub const CURRENT_VERSION: i32 = MIGRATIONS.len() as i32;

#[derive(Debug, Error)]
pub enum SchemaError {
    #[error(
        "this database is not switchboard's (application_id {found:#x}); \
         refusing to touch it: give --db a new file or a switchboard database"
    )]
    NotOurs { found: i32 },
    #[error(
        "this database has schema version {found}, newer than this switchboard \
         understands ({CURRENT_VERSION}); run a newer switchboard"
    )]
    TooNew { found: i32 },
    #[error(
        "this database has schema version {found}, older than this switchboard's \
         ({CURRENT_VERSION}); stop the old server, start `switchboard serve` on it \
         once to upgrade it, then run this again"
    )]
    TooOld { found: i32 },
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

/// Pragmas every connection needs.
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    // Another process (the `agent` CLI) may hold the write lock briefly.
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(())
}

/// Checks the file is ours and brings its schema up to date.
pub fn migrate(conn: &mut Connection) -> Result<(), SchemaError> {
    let before = version(conn)?;
    migrate_to(conn, CURRENT_VERSION)?;
    if (1..CASE_INSENSITIVE_NAMES).contains(&before) {
        warn_about_case_duplicates(conn)?;
    }
    Ok(())
}

/// Upgrading a database from before schema 8: names that differ only in
/// case were allowed, and are kept (each still signs in with its exact
/// name and token), but an operator should know of them.
fn warn_about_case_duplicates(conn: &Connection) -> rusqlite::Result<()> {
    let duplicates = super::queries::case_duplicates(conn)?;
    if !duplicates.is_empty() {
        let names: Vec<&str> = duplicates.iter().map(|name| name.as_str()).collect();
        tracing::warn!(
            names = names.join(" "),
            "names that differ only in case (or a user and an agent of one name) are kept \
             from before; new ones are refused. See the README, \"Names ignoring case\""
        );
    }
    Ok(())
}

/// [`migrate`], stopping at schema version `target` (tests build old
/// databases with it).
fn migrate_to(conn: &mut Connection, target: i32) -> Result<(), SchemaError> {
    let app_id: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    let version: i32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let has_tables: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table')",
        [],
        |r| r.get(0),
    )?;
    if app_id != APPLICATION_ID && (app_id != 0 || has_tables) {
        return Err(SchemaError::NotOurs { found: app_id });
    }
    if version > CURRENT_VERSION {
        return Err(SchemaError::TooNew { found: version });
    }
    // WAL: readers never block the writer. Set once; it is persistent.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    let pending = MIGRATIONS.iter().enumerate().take(target as usize);
    for (index, sql) in pending.skip(version as usize) {
        if version > 0 {
            // Upgrades of a database with data can take a while (migration 2
            // links about a million messages in 3 s): say why start is slow.
            tracing::info!(
                from = index,
                to = index + 1,
                "migrating the database schema"
            );
        }
        // IMMEDIATE, then read the version again: another process (the
        // `agent` CLI, a second server) may have run this step meanwhile.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let now: i32 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if now > index as i32 {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        tx.pragma_update(None, "user_version", index as i32 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// For the `agent` commands: creates the schema in a new database, but
/// leaves upgrading an existing one to `switchboard serve`. A server of the
/// previous version may still be running on it, and must not keep writing
/// the old way into a new layout.
pub fn check_or_create(conn: &mut Connection) -> Result<(), SchemaError> {
    let version: i32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > 0 && version < CURRENT_VERSION {
        return Err(SchemaError::TooOld { found: version });
    }
    migrate(conn)
}

/// The schema version of the open database.
pub fn version(conn: &Connection) -> rusqlite::Result<i32> {
    conn.prepare_cached("PRAGMA user_version")?
        .query_row([], |r| r.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_a_new_database_and_is_idempotent() {
        let mut conn = Connection::open_in_memory().expect("opens");
        migrate(&mut conn).expect("first run");
        migrate(&mut conn).expect("second run is a no-op");
        let version: i32 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("reads");
        assert_eq!(version, CURRENT_VERSION);
    }

    #[test]
    fn migration_2_links_existing_conversations_into_chains() {
        use crate::store::sqlite::queries;
        use switchboard_protocol::{Body, Priority, Timestamp};
        let mut conn = Connection::open_in_memory().expect("opens");
        migrate_to(&mut conn, 1).expect("version 1");
        // Two conversations interleaved, as version 1 stored them: ana's
        // first message was answered, her last two and bo's one still wait.
        conn.execute_batch(
            "INSERT INTO agents (id, name, token_hash, created_us) VALUES (1, 'alice', x'00', 0);
             INSERT INTO users (id, name, token_hash, created_us) VALUES
                (1, 'ana', x'00', 0), (2, 'bo', x'00', 0), (3, 'cy', x'00', 0);
             INSERT INTO messages (id, ts_us, user_id, agent_id, body, priority) VALUES
                (1, 1, 1, NULL, 'a1', 1), (2, 2, 2, NULL, 'b1', 1), (3, 3, 1, 1, 'answer', 1),
                (4, 4, 1, NULL, 'a2', 1), (5, 5, 2, NULL, 'b2', 3), (6, 6, 1, NULL, 'a3', 1);
             INSERT INTO waiting (message_id, user_id, urgency) VALUES
                (2, 2, 1), (4, 1, 1), (5, 2, 3), (6, 1, 1);",
        )
        .expect("fills version 1");
        migrate(&mut conn).expect("migrates to the current version");

        let ids = |messages: Vec<switchboard_protocol::Message>| {
            messages.iter().map(|m| m.id).collect::<Vec<_>>()
        };
        assert_eq!(
            ids(queries::conversation(&conn, 1, None, 10).expect("reads")),
            [1, 3, 4, 6]
        );
        assert_eq!(
            ids(queries::conversation(&conn, 2, None, 10).expect("reads")),
            [2, 5]
        );
        assert!(
            queries::conversation(&conn, 3, None, 10)
                .expect("reads")
                .is_empty()
        );
        // New messages continue the migrated chains.
        let body = Body::parse("a4", 100).expect("valid");
        let new = queries::insert_message(
            &conn,
            Timestamp::from_micros(7),
            1,
            None,
            &body,
            Priority::Normal,
        )
        .expect("inserts");
        queries::add_waiting(&conn, new, 1, Priority::Normal).expect("waits");
        assert_eq!(
            ids(queries::conversation(&conn, 1, Some(new), 2).expect("reads")),
            [4, 6]
        );
        // Answering ana clears her waiting messages and only hers.
        queries::clear_waiting(&conn, 1).expect("clears");
        assert_eq!(
            ids(queries::waiting_queue(&conn, 10).expect("reads")),
            [5, 2]
        );
        let indexes: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name")
            .expect("prepares")
            .query_map([], |r| r.get(0))
            .expect("queries")
            .collect::<Result<_, _>>()
            .expect("reads");
        assert_eq!(
            indexes,
            [
                "agent_connections_by_agent",
                "agents_by_name_nocase",
                "users_by_assigned_agent",
                "users_by_name_nocase"
            ]
        );
    }

    /// Schema 8 (issue 15, finding 10): names that differ only in case, and
    /// a user with an agent's name, from before are kept and still found by
    /// their exact names; every spelling of them is taken for new names.
    #[test]
    fn migration_8_keeps_names_that_differ_only_in_case_and_finds_them_all() {
        use crate::store::sqlite::queries;
        use switchboard_protocol::{Name, Role};
        let name = |text: &str| Name::parse(text).expect("valid");
        let mut conn = Connection::open_in_memory().expect("opens");
        migrate_to(&mut conn, 7).expect("version 7");
        conn.execute_batch(
            "INSERT INTO users (name, token_hash, created_us) VALUES
                ('ana', x'00', 0), ('Ana', x'01', 0), ('alice', x'02', 0), ('bo', x'03', 0);
             INSERT INTO agents (name, token_hash, created_us) VALUES ('alice', x'04', 0);",
        )
        .expect("fills version 7");
        migrate(&mut conn).expect("migrates, duplicates and all");
        assert_eq!(
            queries::case_duplicates(&conn).expect("reads"),
            [name("alice"), name("alice"), name("Ana"), name("ana")]
        );
        assert!(
            queries::find_user(&conn, &name("Ana"))
                .expect("reads")
                .is_some()
        );
        assert_eq!(
            queries::names_like(&conn, &name("ANA"))
                .expect("reads")
                .len(),
            2
        );
        assert_eq!(
            queries::names_like(&conn, &name("ALICE")).expect("reads"),
            [(Role::User, name("alice")), (Role::Agent, name("alice"))]
        );
        assert!(
            queries::names_like(&conn, &name("cy"))
                .expect("reads")
                .is_empty()
        );
    }

    #[test]
    fn migration_5_counts_and_marks_existing_conversations() {
        use crate::store::sqlite::queries;
        use switchboard_protocol::{Body, Priority, Timestamp};
        let mut conn = Connection::open_in_memory().expect("opens");
        migrate_to(&mut conn, 4).expect("version 4");
        // ana's 600 messages, every third id bo's, chained as version 4 does.
        conn.execute_batch(
            "INSERT INTO users (id, name, token_hash, created_us) VALUES
                (1, 'ana', x'00', 0), (2, 'bo', x'00', 0), (3, 'cy', x'00', 0);
             WITH RECURSIVE n(id) AS (SELECT 1 UNION ALL SELECT id + 1 FROM n WHERE id < 900)
             INSERT INTO messages (id, ts_us, user_id, agent_id, body, priority)
                SELECT id, id, CASE id % 3 WHEN 0 THEN 2 ELSE 1 END, NULL, 'x', 1 FROM n;
             UPDATE messages SET prev_id = (
                SELECT max(p.id) FROM messages p
                WHERE p.user_id = messages.user_id AND p.id < messages.id
             );
             INSERT INTO conversations (user_id, last_message_id)
                SELECT user_id, max(id) FROM messages GROUP BY user_id;",
        )
        .expect("fills version 4");
        migrate(&mut conn).expect("migrates to the current version");

        let lengths: Vec<(i64, i64)> = conn
            .prepare("SELECT user_id, length FROM conversations ORDER BY user_id")
            .expect("prepares")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("queries")
            .collect::<Result<_, _>>()
            .expect("reads");
        assert_eq!(lengths, [(1, 600), (2, 300)]);
        let marks = |user: i64| -> Vec<i64> {
            conn.prepare("SELECT message_id FROM conversation_marks WHERE user_id = ?1 ORDER BY 1")
                .expect("prepares")
                .query_map([user], |r| r.get(0))
                .expect("queries")
                .collect::<Result<_, _>>()
                .expect("reads")
        };
        // ana's 256th and 512th messages, bo's 256th.
        assert_eq!(marks(1), [383, 767]);
        assert_eq!(marks(2), [768]);
        // New messages go on counting where the migration left off: ana's
        // 768th message is marked.
        let body = Body::parse("y", 100).expect("valid");
        let mut newest = 0;
        for ts in 0..168 {
            newest = queries::insert_message(
                &conn,
                Timestamp::from_micros(1_000 + ts),
                1,
                None,
                &body,
                Priority::Normal,
            )
            .expect("inserts");
        }
        assert_eq!(marks(1), [383, 767, newest as i64]);
        let page = queries::conversation(&conn, 1, Some(600), 2).expect("reads");
        assert_eq!(page.iter().map(|m| m.id).collect::<Vec<_>>(), [598, 599]);
    }

    #[test]
    fn the_agent_commands_create_a_schema_but_leave_upgrades_to_the_server() {
        let mut fresh = Connection::open_in_memory().expect("opens");
        check_or_create(&mut fresh).expect("creates a new schema");
        assert_eq!(version(&fresh).expect("reads"), CURRENT_VERSION);
        let mut old = Connection::open_in_memory().expect("opens");
        migrate_to(&mut old, 1).expect("version 1");
        assert!(matches!(
            check_or_create(&mut old),
            Err(SchemaError::TooOld { found: 1 })
        ));
        assert_eq!(version(&old).expect("reads"), 1, "left as it was");
    }

    #[test]
    fn refuses_a_foreign_database() {
        let mut conn = Connection::open_in_memory().expect("opens");
        conn.execute_batch("CREATE TABLE invoices (id INTEGER)")
            .expect("creates");
        assert!(matches!(
            migrate(&mut conn),
            Err(SchemaError::NotOurs { found: 0 })
        ));
    }

    #[test]
    fn refuses_a_newer_schema() {
        let mut conn = Connection::open_in_memory().expect("opens");
        migrate(&mut conn).expect("migrates");
        conn.pragma_update(None, "user_version", CURRENT_VERSION + 1)
            .expect("sets");
        assert!(matches!(
            migrate(&mut conn),
            Err(SchemaError::TooNew { .. })
        ));
    }
}
