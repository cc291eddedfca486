//! The writer's group commit on PostgreSQL, where a group's messages,
//! queue rows and keys are held back and written in one statement
//! (`postgres/held_back.rs`): a key sent twice in one group is stored once,
//! and a row the database refuses fails its own request alone, with the
//! ids after it still consecutive (positions are counted from them).

use postgres::Client;
use switchboard_protocol::{Body, Key, Priority, Role, Timestamp};

use super::{Outcome, run_group};
use crate::event::{Answer, ConnId, Event, NodeId, Origin};
use crate::identity::{Credential, Identity};
use crate::store::position::Position;
use crate::store::postgres::contract_tests::fresh_writer;
use crate::store::rules::{Clock, Written};
use crate::store::test_support::name;
use crate::store::{SendRequest, WriteJob};

fn send(conn: ConnId, body: &str, key: Option<&str>) -> WriteJob {
    WriteJob::Send(SendRequest {
        origin: Origin {
            node: NodeId::LOCAL,
            conn,
            request: None,
        },
        from: Identity {
            role: Role::User,
            name: name("ann"),
            credential: Credential::new(b"h"),
        },
        user: name("ann"),
        body: Body::parse(body, 100).expect("valid"),
        priority: Priority::Normal,
        key: key.map(|key| Key::new(key).expect("a valid key")),
        note: false,
    })
}

/// Each outcome as the id and body stored, or the error code.
fn summary(outcomes: &[Outcome]) -> Vec<String> {
    outcomes
        .iter()
        .map(|outcome| match outcome {
            Outcome::Written(Written::Event(Event::Sent { message, .. })) => {
                format!("{} {}", message.id, message.body.as_str())
            }
            Outcome::Written(Written::Answer(Answer::Replayed { message, .. })) => {
                format!("replayed {} {}", message.id, message.body.as_str())
            }
            Outcome::Written(Written::Answer(Answer::Refused { refusal, .. })) => {
                crate::error::RequestError::from(refusal.clone())
                    .code()
                    .to_string()
            }
            _ => "other".into(),
        })
        .collect()
}

fn with_ann(client: &mut Client) {
    client
        .execute(
            "INSERT INTO users (name, token_hash, created_us) VALUES ('ann', '\\x68', 0)",
            &[],
        )
        .expect("adds ann");
}

/// Stored messages as "id body", and how many wait.
fn stored(client: &mut Client) -> (Vec<String>, i64) {
    let messages = client
        .query("SELECT id, body FROM messages ORDER BY id", &[])
        .expect("reads")
        .iter()
        .map(|row| format!("{} {}", row.get::<_, i64>(0), row.get::<_, String>(1)))
        .collect();
    let waiting = client
        .query_one("SELECT count(*) FROM waiting", &[])
        .expect("counts")
        .get(0);
    (messages, waiting)
}

fn group(
    writer: &mut crate::store::postgres::backend::PostgresWriter,
    jobs: &[WriteJob],
) -> Vec<Outcome> {
    let mut clock = Clock::after(Timestamp::from_micros(0));
    run_group(writer, &mut clock, &mut Position::at(0, 0), jobs, false).outcomes
}

#[test]
fn a_key_sent_twice_in_one_group_is_stored_once() {
    let Some((mut writer, mut client)) = fresh_writer() else {
        return;
    };
    with_ann(&mut client);
    let outcomes = group(
        &mut writer,
        &[send(1, "one", Some("k1")), send(2, "again", Some("k1"))],
    );
    assert_eq!(summary(&outcomes), ["1 one", "replayed 1 one"]);
    assert_eq!(stored(&mut client), (vec!["1 one".to_owned()], 1));
    // And in a later group, from the database.
    let outcomes = group(&mut writer, &[send(3, "later", Some("k1"))]);
    assert_eq!(summary(&outcomes), ["replayed 1 one"]);
}

#[test]
fn a_refused_row_fails_its_request_alone_and_ids_stay_consecutive() {
    let Some((mut writer, mut client)) = fresh_writer() else {
        return;
    };
    with_ann(&mut client);
    client
        .batch_execute(
            "CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF NEW.body = 'boom' THEN RAISE EXCEPTION 'injected failure'; END IF;
                 RETURN NEW;
             END $$;
             CREATE TRIGGER refuse_boom BEFORE INSERT ON messages
             FOR EACH ROW EXECUTE FUNCTION refuse_boom();",
        )
        .expect("trigger");
    let outcomes = group(
        &mut writer,
        &[
            send(1, "before", Some("k1")),
            send(2, "boom", Some("k2")),
            send(3, "after", Some("k3")),
        ],
    );
    assert_eq!(summary(&outcomes), ["1 before", "internal", "2 after"]);
    assert_eq!(
        stored(&mut client),
        (vec!["1 before".to_owned(), "2 after".to_owned()], 2)
    );
    let keys: Vec<String> = client
        .query("SELECT key FROM send_keys ORDER BY key", &[])
        .expect("reads")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(keys, ["k1", "k3"], "the failed request's key is gone too");
    let (last, ts): (i64, i64) = {
        let row = client
            .query_one("SELECT last_message_id, last_ts_us FROM sb_clock", &[])
            .expect("reads");
        (row.get(0), row.get(1))
    };
    assert_eq!(last, 2, "the sequencer row is at the last id stored");
    assert!(ts > 0);
}
