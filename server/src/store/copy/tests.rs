//! `switchboard copy` against a real SQLite file and a fresh database of
//! the throwaway PostgreSQL this test binary shares: every row lands, ids,
//! time stamps and positions continue above the copied ones, and every
//! refusal and failure leaves PostgreSQL empty. The end-to-end test over
//! TCP is `tests/tests/copy.rs`.
//!
//! One file because every test needs the same fixture (a filled SQLite file,
//! a fresh PostgreSQL database, and reading both back through each backend's
//! own reads); the refusals are a handful of short cases beside the main one.

use std::path::{Path, PathBuf};

use switchboard_protocol::{Body, Name, Priority, Role, Timestamp};

use super::batch::BatchLimits;
use super::*;
use crate::store::backend::{Backend, ReadBackend, Transaction};
use crate::store::postgres::import::Target;
use crate::store::postgres::schema;
use crate::store::rules::{NewMessage, Reads, Tables};
use crate::store::sqlite::server_lock::ServerLock;
use crate::store::sqlite::{connect, open_database};
use crate::store::{Location, RESUME_CAP};

/// Two rows a batch: every kind with more than two rows spans batches.
const TINY: BatchLimits = BatchLimits {
    rows: 2,
    bytes: 1 << 20,
};

/// A help desk written as the server stores one: alice holds ana; carl was
/// removed and added again while he held cy, whose release is due; bo's
/// urgent question and ana's last wait; keys from ana and alice; three
/// releases committed. Ids leave gaps where a user and an agent were
/// never made, so kept ids are told apart from renumbered ones.
const HELP_DESK: &str = "
    INSERT INTO agents (id, name, token_hash, created_us) VALUES
        (1, 'alice', x'a1', 10), (3, 'carl', x'c3', 11), (4, 'dora', NULL, 12);
    INSERT INTO users (id, name, token_hash, created_us, assigned_agent_id) VALUES
        (1, 'ana', x'01', 20, 1), (2, 'bo', x'02', 21, NULL), (5, 'cy', x'05', 22, NULL);
    INSERT INTO messages (id, ts_us, user_id, agent_id, body, priority) VALUES
        (1, 1000, 1, NULL, 'refund?', 2),
        (2, 1001, 5, NULL, 'hello', 1),
        (3, 1005, 1, 1, 'on it', 2),
        (4, 1006, 2, NULL, 'outage!', 3),
        (5, 1010, 5, 3, 'hi cy', 1),
        (6, 1020, 1, NULL, 'thanks\ttab\nline \\ backslash é', 0),
        (9, 1030, 2, NULL, 'still down', 1);
    INSERT INTO waiting (urgency, message_id, user_id) VALUES (3, 4, 2), (1, 9, 2), (0, 6, 1);
    INSERT INTO send_keys (sender_role, sender_id, key, message_id) VALUES
        (0, 1, 'q1', 1), (1, 1, 'a1', 3), (0, 2, 'k', 4);
    INSERT INTO releases_due (user_id, agent_id) VALUES (5, 3);
    UPDATE release_count SET releases = 3;";

/// A SQLite help desk in a temporary directory.
fn sqlite_desk(dir: &Path) -> PathBuf {
    let path = dir.join("desk.db");
    let conn = open_database(&path).expect("creates the database");
    conn.execute_batch(HELP_DESK).expect("fills it");
    path
}

/// A fresh, empty PostgreSQL database; `None` when PostgreSQL is missing
/// and the tests may skip (already said on stderr).
fn fresh_url() -> Option<PostgresUrl> {
    Some(
        switchboard_tests::fresh_database()?
            .parse()
            .expect("the harness gives a valid URL"),
    )
}

/// How long [`copy`] waits for a file lock this process let go of.
const LOCK_LET_GO: std::time::Duration = std::time::Duration::from_secs(5);

/// A copy in [`TINY`] batches, with its progress lines.
///
/// A file whose lock this process just let go of (an earlier copy's) may
/// still be locked for a moment: `flock` belongs to the open file, which a
/// child that another test is spawning holds a duplicate of until its
/// `exec`. So [`CopyError::SourceInUse`] is tried again for a while here;
/// `switchboard copy` runs in a process of its own and never meets this.
fn copy(db: &Path, url: &PostgresUrl) -> Result<(CopySummary, Vec<CopyProgress>), CopyError> {
    let deadline = std::time::Instant::now() + LOCK_LET_GO;
    loop {
        let mut lines = Vec::new();
        match copy_in_batches(db, url, TINY, &mut |line| lines.push(line)) {
            Err(CopyError::SourceInUse { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            copied => return copied.map(|summary| (summary, lines)),
        }
    }
}

/// One copy attempt, for the test that expects the file to be in use.
fn copy_once(db: &Path, url: &PostgresUrl) -> Result<CopySummary, CopyError> {
    copy_in_batches(db, url, TINY, &mut |_| {})
}

/// What the PostgreSQL database holds, as the copy's own check says it
/// (`None`: no user, agent or message).
fn target_holds(url: &PostgresUrl) -> Option<String> {
    let mut target = Target::open(url).expect("opens");
    match target.begin() {
        Ok(()) => {
            target.rollback();
            None
        }
        Err(CopyError::TargetNotEmpty { holds, .. }) => Some(holds),
        Err(other) => panic!("cannot tell: {other}"),
    }
}

/// Every message in the PostgreSQL database, as a server reads them.
fn target_messages(url: &PostgresUrl) -> usize {
    let mut readers = crate::store::postgres::open_store(url, 1)
        .expect("opens")
        .readers;
    let (messages, _) = readers[0]
        .reads()
        .messages_since(0, RESUME_CAP)
        .expect("reads");
    messages.len()
}

/// Whether the PostgreSQL database has switchboard's schema at all.
fn has_schema(url: &PostgresUrl) -> bool {
    let mut conn = crate::store::postgres::connect(url).expect("connects");
    schema::version(&mut conn).expect("reads").is_some()
}

fn name(text: &str) -> Name {
    Name::parse(text).expect("valid")
}

#[test]
fn every_row_lands_and_ids_stamps_and_positions_continue_above_them() {
    let Some(url) = fresh_url() else { return };
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = sqlite_desk(dir.path());
    let (summary, lines) = copy(&db, &url).expect("copies");

    assert_eq!(
        summary.counts.to_string(),
        "3 agents, 3 users, 7 messages, 3 waiting messages, 3 idempotency keys, \
         1 releases due"
    );
    assert_eq!(summary.next_message_id, 10);
    assert_eq!(lines.first(), Some(&CopyProgress::Found(summary.counts)));
    assert!(
        lines.contains(&CopyProgress::Copying {
            kind: Kind::Messages,
            done: 7,
            of: 7
        }),
        "the last line of each kind: {lines:?}"
    );
    assert_eq!(lines.last(), Some(&CopyProgress::Committing));

    // What every reader of either backend sees is the same.
    let mut sqlite = connect(&db).expect("opens");
    let opened = crate::store::postgres::open_store(&url, 1).expect("a server can open the copy");
    let (mut writer, mut readers) = (opened.writer, opened.readers);
    let postgres = &mut readers[0];
    let (from_sqlite, _) = sqlite.reads().messages_since(0, RESUME_CAP).expect("reads");
    let (from_postgres, _) = postgres
        .reads()
        .messages_since(0, RESUME_CAP)
        .expect("reads");
    assert_eq!(from_postgres, from_sqlite, "ids, ts, authors, bodies");
    assert_eq!(from_postgres.len(), 7);
    let queue = |messages: Vec<switchboard_protocol::Message>| -> Vec<u64> {
        messages.iter().map(|message| message.id).collect()
    };
    assert_eq!(
        queue(postgres.reads().waiting_queue(10).expect("reads")),
        [4, 9, 6],
        "most urgent first, then oldest"
    );
    assert_eq!(
        queue(postgres.reads().waiting_queue(10).expect("reads")),
        queue(sqlite.reads().waiting_queue(10).expect("reads"))
    );
    assert_eq!(
        postgres.reads().assignments().expect("reads"),
        [(name("ana"), name("alice"))]
    );
    assert_eq!(
        postgres.reads().position().expect("reads"),
        sqlite.reads().position().expect("reads"),
        "positions continue where SQLite's were: 9 + 3 releases"
    );
    let ana = postgres
        .reads()
        .find_user(&name("ana"))
        .expect("reads")
        .expect("ana was copied");
    assert_eq!((ana.id, ana.token_hash), (1, vec![0x01]));
    let dora = postgres
        .reads()
        .find_agent(&name("dora"))
        .expect("reads")
        .expect("dora was copied");
    assert_eq!((dora.id, dora.token_hash), (4, None), "still removed");

    // The writer continues above everything copied.
    assert_eq!(writer.position_parts().expect("reads"), (9, 3));
    assert_eq!(
        writer.last_timestamp().expect("reads"),
        Some(Timestamp::from_micros(1030))
    );
    let tx = writer.begin().expect("begins");
    let mut tables = tx.tables().expect("tables");
    assert_eq!(
        tables.find_key(Role::User, 1, "q1").expect("reads"),
        Some(1)
    );
    assert_eq!(
        tables.find_key(Role::Agent, 1, "a1").expect("reads"),
        Some(3)
    );
    let due = tables.take_releases_due().expect("reads");
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].user.as_str(), due[0].agent.as_str()),
        ("cy", "carl")
    );
    tables
        .insert_user(&name("eve"), &[0xee], Timestamp::from_micros(2000))
        .expect("a new user");
    let eve = tables.user_id(&name("eve")).expect("reads").expect("made");
    assert!(eve > 5, "a new user's id ({eve}) is above every copied one");
    let body = Body::parse("new", 100).expect("valid");
    let id = tables
        .insert_message(NewMessage {
            ts: Timestamp::from_micros(2001),
            user_id: eve,
            agent_id: None,
            body: &body,
            priority: Priority::Normal,
            note: false,
        })
        .expect("a new message");
    assert_eq!(id, 10, "the next id after the newest copied");
    tx.commit().expect("commits");
    drop((writer, readers));
    crate::admin::add_agent(&Location::Postgres(url.clone()), "zoe", false).expect("a new agent");
    let mut readers = crate::store::postgres::open_store(&url, 1)
        .expect("opens")
        .readers;
    let next_agent = readers[0]
        .reads()
        .find_agent(&name("zoe"))
        .expect("reads")
        .expect("added")
        .id;
    assert!(
        next_agent > 4,
        "a new agent's id ({next_agent}) is above every copied one"
    );
}

#[test]
fn a_failure_in_the_middle_leaves_postgres_empty_and_the_copy_can_run_again() {
    let Some(url) = fresh_url() else { return };
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = sqlite_desk(dir.path());
    // A key naming a message that is not there: SQLite never checked it,
    // PostgreSQL's foreign key refuses it, after every user, agent and
    // message was written.
    connect(&db)
        .expect("opens")
        .execute_batch(
            "INSERT INTO send_keys (sender_role, sender_id, key, message_id) VALUES (0, 2, 'x', 77)",
        )
        .expect("an orphan key");
    let error = copy(&db, &url).expect_err("PostgreSQL refuses the orphan key");
    assert!(
        matches!(
            error,
            CopyError::Write {
                kind: Kind::Keys,
                ..
            }
        ),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(text.contains("rolled back"), "{text}");
    assert!(text.contains("foreign key"), "PostgreSQL says why: {text}");
    assert!(text.contains("run `switchboard copy` again"), "{text}");
    assert_eq!(target_holds(&url), None, "nothing of it was kept");

    connect(&db)
        .expect("opens")
        .execute_batch("DELETE FROM send_keys WHERE message_id = 77")
        .expect("fixed");
    let (summary, _) = copy(&db, &url).expect("copies once fixed");
    assert_eq!(summary.counts.get(Kind::Keys), 3);
    assert_eq!(target_messages(&url), 7, "left as it was");
}

#[test]
fn a_database_that_is_not_empty_is_refused_and_left_as_it_was() {
    let Some(url) = fresh_url() else { return };
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = sqlite_desk(dir.path());
    copy(&db, &url).expect("the first copy");
    let error = copy(&db, &url).expect_err("the second is refused");
    let text = error.to_string();
    assert!(
        matches!(error, CopyError::TargetNotEmpty { .. }),
        "{error:?}"
    );
    assert!(
        text.contains("not empty: it holds users and agents and messages"),
        "{text}"
    );
    assert!(text.contains("createdb"), "{text}");
    assert_eq!(target_messages(&url), 7, "left as it was");
}

#[test]
fn a_file_a_server_holds_is_refused() {
    let Some(url) = fresh_url() else { return };
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = sqlite_desk(dir.path());
    let server = ServerLock::take(&db).expect("a server holds the file");
    let error = copy_once(&db, &url).expect_err("refused");
    assert!(matches!(error, CopyError::SourceInUse { .. }), "{error:?}");
    assert!(error.to_string().contains("stop it first"), "{error}");
    drop(server);
    copy(&db, &url).expect("copies once the server has stopped");
}

#[test]
fn a_database_a_server_uses_is_refused() {
    let Some(url) = fresh_url() else { return };
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = sqlite_desk(dir.path());
    let server = crate::store::postgres::open_store(&url, 0).expect("a server on it");
    let error = copy(&db, &url).expect_err("refused");
    assert!(matches!(error, CopyError::TargetInUse { .. }), "{error:?}");
    drop(server);
    assert_eq!(target_holds(&url), None);
}

#[test]
fn an_older_schema_is_upgraded_first_and_a_newer_one_refused() {
    let Some(url) = fresh_url() else { return };
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = sqlite_desk(dir.path());
    // Schema 7 is schema 11 without its two indexes of names, the agents'
    // supervisor and presence clock columns, the messages' note column,
    // the users' holding clock and the agents' connections.
    connect(&db)
        .expect("opens")
        .execute_batch(
            "DROP INDEX users_by_name_nocase; DROP INDEX agents_by_name_nocase;
             ALTER TABLE agents DROP COLUMN supervisor;
             ALTER TABLE agents DROP COLUMN offline_since_us;
             ALTER TABLE users DROP COLUMN held_since_us;
             DROP TABLE agent_connections;
             ALTER TABLE messages DROP COLUMN note;
             PRAGMA user_version = 7;",
        )
        .expect("back to schema 7");
    let (_, lines) = copy(&db, &url).expect("copies");
    assert_eq!(
        lines.first(),
        Some(&CopyProgress::Upgraded {
            from: 7,
            to: crate::store::sqlite::schema::CURRENT_VERSION
        })
    );
    assert_eq!(
        crate::store::sqlite::schema::version(&connect(&db).expect("opens")).expect("reads"),
        crate::store::sqlite::schema::CURRENT_VERSION
    );

    let Some(url) = fresh_url() else { return };
    connect(&db)
        .expect("opens")
        .pragma_update(
            None,
            "user_version",
            crate::store::sqlite::schema::CURRENT_VERSION + 1,
        )
        .expect("from the future");
    let error = copy(&db, &url).expect_err("refused");
    assert!(matches!(error, CopyError::Source(_)), "{error:?}");
    assert!(
        error.to_string().contains("run a newer switchboard"),
        "{error}"
    );
    assert!(
        !has_schema(&url),
        "refused before PostgreSQL was written to"
    );
}

#[test]
fn a_missing_or_foreign_file_is_refused_and_not_created() {
    let Some(url) = fresh_url() else { return };
    let dir = tempfile::tempdir().expect("temporary directory");
    let missing = dir.path().join("typo.db");
    let error = copy(&missing, &url).expect_err("refused");
    assert!(matches!(error, CopyError::NoSource { .. }), "{error:?}");
    assert!(!missing.exists(), "no file was made");

    let foreign = dir.path().join("invoices.db");
    connect(&foreign)
        .expect("creates")
        .execute_batch("CREATE TABLE invoices (id INTEGER)")
        .expect("someone else's");
    let error = copy(&foreign, &url).expect_err("refused");
    assert!(matches!(error, CopyError::NotADesk { .. }), "{error:?}");
}
