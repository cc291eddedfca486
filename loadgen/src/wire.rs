//! What the load generator reads: the two frames every message brings (`sent`
//! to its user, `message` to each agent) go straight into the few fields the
//! run checks, with no allocation (a load body fits a [`Body`] inline);
//! everything else becomes a full [`ServerFrame`].
//!
//! Why: the generator reads five such frames per message, on the same two
//! cores as the server it measures, so its own cost shows in the figures.
//! Two levels:
//! - a line exactly as the server writes it (fields in order, no escapes in
//!   its strings) is read straight from its bytes. When the whole line is
//!   printable ASCII (every load message is), one pass over it stands for
//!   the per-string UTF-8 and control-character checks, and the fields the
//!   run does not check (`ts`, `user`, `agent`, `priority`) are only skipped;
//!   about a fifth of serde's instructions before that (callgrind);
//! - any other line goes through serde, reading `type` first when it comes
//!   first. serde reads an internally tagged enum such as `ServerFrame` by
//!   buffering every field of the object, then reading the variant from that
//!   buffer: 1.1 µs for a `message` frame against 0.3 µs for a plain struct
//!   (measured, release build).
//!
//! Both levels agree on every line (a property test); the first only says
//! "not mine" to what it does not recognise.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use switchboard_protocol::codec::parse_line;
use switchboard_protocol::{FrameError, FromLine, RequestId, Role, ServerFrame};

pub use crate::body::Body;

/// One frame from the server.
#[derive(Debug)]
pub enum Incoming {
    /// The reply to a `send`: its request id (when a number) and the message.
    Sent {
        request: Option<i64>,
        message: Seen,
    },
    /// A message someone sent.
    Message(Seen),
    /// A page of one conversation (read after the run, to check what is
    /// stored): its request id (when a number) and the messages, oldest first.
    History {
        request: Option<i64>,
        messages: Vec<Seen>,
    },
    Other(ServerFrame),
}

/// The fields of a stored message the run checks.
#[derive(Debug, Deserialize)]
pub struct Seen {
    pub id: u64,
    pub from: Role,
    pub body: Body,
}

impl FromLine for Incoming {
    fn from_line(line: &[u8]) -> Result<Self, FrameError> {
        match read_exact_shape(line) {
            Some(frame) => Ok(frame),
            None => parse_line(line),
        }
    }
}

/// A `message`, `sent` or `history` frame byte for byte as the server
/// writes it, or `None`: then serde reads the line, and decides whether it
/// is valid.
fn read_exact_shape(line: &[u8]) -> Option<Incoming> {
    let clean = printable_ascii(line);
    if let Some(rest) = line.strip_prefix(br#"{"type":"message","message":"#) {
        let (message, rest) = read_seen(rest, clean)?;
        return (rest == b"}").then_some(Incoming::Message(message));
    }
    if let Some(rest) = line.strip_prefix(br#"{"type":"history","id":"#) {
        return read_history_shape(rest, clean);
    }
    let rest = line.strip_prefix(br#"{"type":"sent","id":"#)?;
    let (request, rest) = read_number(rest)?;
    let rest = rest.strip_prefix(br#","message":"#)?;
    let (message, rest) = read_seen(rest, clean)?;
    let request = i64::try_from(request).ok()?;
    (rest == b"}").then_some(Incoming::Sent {
        request: Some(request),
        message,
    })
}

/// The rest of a `history` page after `"id":`, in the server's field order:
/// read after the run, but it is every message of the run once more.
fn read_history_shape(bytes: &[u8], clean: bool) -> Option<Incoming> {
    let (request, rest) = read_number(bytes)?;
    let request = i64::try_from(request).ok()?;
    let (_user, rest) = read_plain_string(rest.strip_prefix(br#","user":"#)?, clean)?;
    let mut rest = rest.strip_prefix(br#","messages":["#)?;
    let mut messages = Vec::new();
    if let Some(after) = rest.strip_prefix(b"]") {
        rest = after;
    } else {
        loop {
            let (seen, after) = read_seen(rest, clean)?;
            messages.push(seen);
            match after.split_first()? {
                (b',', more) => rest = more,
                (b']', more) => {
                    rest = more;
                    break;
                }
                _ => return None,
            }
        }
    }
    (rest == b"}").then_some(Incoming::History {
        request: Some(request),
        messages,
    })
}

/// Every byte printable ASCII: then no string in the line needs a UTF-8
/// or control-character check. One branch-free pass, which the compiler
/// vectorises.
fn printable_ascii(line: &[u8]) -> bool {
    !line
        .iter()
        .fold(false, |odd, &b| odd | !(0x20..0x7f).contains(&b))
}

/// A message object in the server's field order; returns what follows it.
/// `clean`: the line is [`printable_ascii`].
fn read_seen(bytes: &[u8], clean: bool) -> Option<(Seen, &[u8])> {
    let rest = bytes.strip_prefix(br#"{"id":"#)?;
    let (id, rest) = read_number(rest)?;
    let (_ts, rest) = read_plain_string(rest.strip_prefix(br#","ts":"#)?, clean)?;
    let (_user, rest) = read_plain_string(rest.strip_prefix(br#","user":"#)?, clean)?;
    let (from, rest) = read_plain_string(rest.strip_prefix(br#","from":"#)?, clean)?;
    let from = match from {
        b"user" => Role::User,
        b"agent" => Role::Agent,
        _ => return None,
    };
    let rest = rest.strip_prefix(br#","agent":"#)?;
    let rest = match rest.strip_prefix(b"null") {
        Some(rest) => rest,
        None => read_plain_string(rest, clean)?.1,
    };
    let (body, rest) = read_plain_string(rest.strip_prefix(br#","body":"#)?, clean)?;
    let (_priority, rest) = read_plain_string(rest.strip_prefix(br#","priority":"#)?, clean)?;
    let rest = rest.strip_prefix(b"}")?;
    let seen = Seen {
        id,
        from,
        // A clean line is ASCII; otherwise the string was checked as UTF-8.
        body: if clean {
            Body::from_ascii(body)?
        } else {
            Body::new(std::str::from_utf8(body).ok()?)
        },
    };
    Some((seen, rest))
}

/// A JSON number that is a plain non-negative integer: digits, no leading
/// zero, no overflow.
fn read_number(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || (digits > 1 && bytes[0] == b'0') {
        return None;
    }
    let mut value: u64 = 0;
    for digit in &bytes[..digits] {
        value = value
            .checked_mul(10)?
            .checked_add(u64::from(digit - b'0'))?;
    }
    Some((value, &bytes[digits..]))
}

/// A JSON string with no escapes and no control characters, whose text is
/// then exactly its bytes (valid UTF-8). `clean`: the line is known to be
/// [`printable_ascii`], so only the closing quote is looked for.
fn read_plain_string(bytes: &[u8], clean: bool) -> Option<(&[u8], &[u8])> {
    let rest = bytes.strip_prefix(b"\"")?;
    // The first quote or backslash, found with SIMD; a backslash means an
    // escape, left to serde.
    let end = memchr::memchr2(b'"', b'\\', rest)?;
    let (text, rest) = (&rest[..end], &rest[end..]);
    if rest[0] != b'"' {
        return None;
    }
    if !clean && (text.iter().any(|&b| b < 0x20) || std::str::from_utf8(text).is_err()) {
        return None;
    }
    Some((text, &rest[1..]))
}

impl<'de> Deserialize<'de> for Incoming {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(IncomingVisitor)
    }
}

struct IncomingVisitor;

impl<'de> Visitor<'de> for IncomingVisitor {
    type Value = Incoming;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a frame object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Incoming, A::Error> {
        let mut buffered = serde_json::Map::new();
        match map.next_key::<String>()? {
            Some(key) if key == "type" => {
                let kind: String = map.next_value()?;
                match kind.as_str() {
                    "message" => return read_message(map),
                    "sent" => return read_sent(map),
                    "history" => return read_history(map),
                    _ => {
                        buffered.insert(key, serde_json::Value::String(kind));
                    }
                }
            }
            Some(key) => {
                let value: serde_json::Value = map.next_value()?;
                buffered.insert(key, value);
            }
            None => {}
        }
        while let Some((key, value)) = map.next_entry::<String, serde_json::Value>()? {
            buffered.insert(key, value);
        }
        ServerFrame::deserialize(serde_json::Value::Object(buffered))
            .map(Incoming::from)
            .map_err(de::Error::custom)
    }
}

impl From<ServerFrame> for Incoming {
    fn from(frame: ServerFrame) -> Self {
        let seen = |message: switchboard_protocol::Message| Seen {
            id: message.id,
            from: message.from,
            body: Body::new(message.body.as_str()),
        };
        match frame {
            ServerFrame::Message { message } => Incoming::Message(seen(message)),
            ServerFrame::History { id, messages, .. } => Incoming::History {
                request: int_request(id),
                messages: messages.into_iter().map(seen).collect(),
            },
            ServerFrame::Sent { id, message } => Incoming::Sent {
                request: int_request(id),
                message: seen(message),
            },
            other => Incoming::Other(other),
        }
    }
}

fn read_message<'de, A: MapAccess<'de>>(mut map: A) -> Result<Incoming, A::Error> {
    let mut message = None;
    while let Some(key) = map.next_key::<String>()? {
        if key == "message" {
            message = Some(map.next_value::<Seen>()?);
        } else {
            map.next_value::<IgnoredAny>()?;
        }
    }
    message
        .map(Incoming::Message)
        .ok_or_else(|| de::Error::missing_field("message"))
}

fn read_sent<'de, A: MapAccess<'de>>(mut map: A) -> Result<Incoming, A::Error> {
    let mut request = None;
    let mut message = None;
    while let Some(key) = map.next_key::<String>()? {
        match key.as_str() {
            "id" => request = map.next_value::<Option<RequestId>>()?,
            "message" => message = Some(map.next_value::<Seen>()?),
            _ => {
                map.next_value::<IgnoredAny>()?;
            }
        }
    }
    let message = message.ok_or_else(|| de::Error::missing_field("message"))?;
    Ok(Incoming::Sent {
        request: int_request(request),
        message,
    })
}

/// A `history` page read straight into [`Seen`]s: after a run it holds up to
/// a thousand messages, which the buffered path would copy into a tree first.
fn read_history<'de, A: MapAccess<'de>>(mut map: A) -> Result<Incoming, A::Error> {
    let mut request = None;
    let mut messages = None;
    let mut user = false;
    while let Some(key) = map.next_key::<String>()? {
        match key.as_str() {
            "id" => request = map.next_value::<Option<RequestId>>()?,
            "messages" => messages = Some(map.next_value::<Vec<Seen>>()?),
            "user" => {
                map.next_value::<IgnoredAny>()?;
                user = true;
            }
            _ => {
                map.next_value::<IgnoredAny>()?;
            }
        }
    }
    if !user {
        return Err(de::Error::missing_field("user"));
    }
    let messages = messages.ok_or_else(|| de::Error::missing_field("messages"))?;
    Ok(Incoming::History {
        request: int_request(request),
        messages,
    })
}

/// The request id when it is a number: the only kind this tool sends.
fn int_request(id: Option<RequestId>) -> Option<i64> {
    match id {
        Some(RequestId::Int(request)) => Some(request),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> Incoming {
        serde_json::from_str(json).expect(json)
    }

    const MESSAGE: &str = r#"{"id":42,"ts":"2026-11-24T11:16:27.123456Z","user":"ana","from":"user","agent":null,"body":"hi \"there\"","priority":"normal"}"#;

    #[test]
    fn the_hot_frames_are_read_into_their_fields() {
        match read(&format!(r#"{{"type":"message","message":{MESSAGE}}}"#)) {
            Incoming::Message(seen) => {
                assert_eq!(
                    (seen.id, seen.from, seen.body.as_str()),
                    (42, Role::User, "hi \"there\"")
                );
            }
            other => panic!("{other:?}"),
        }
        match read(&format!(r#"{{"type":"sent","id":7,"message":{MESSAGE}}}"#)) {
            Incoming::Sent { request, message } => {
                assert_eq!((request, message.id), (Some(7), 42));
            }
            other => panic!("{other:?}"),
        }
        match read(&format!(
            r#"{{"type":"sent","id":"r1","message":{MESSAGE}}}"#
        )) {
            Incoming::Sent { request, .. } => assert_eq!(request, None),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_history_page_is_read_into_its_messages() {
        let json =
            format!(r#"{{"type":"history","id":4,"user":"ana","messages":[{MESSAGE},{MESSAGE}]}}"#);
        match read(&json) {
            Incoming::History { request, messages } => {
                assert_eq!(request, Some(4));
                let ids: Vec<u64> = messages.iter().map(|m| m.id).collect();
                assert_eq!(ids, [42, 42]);
                assert_eq!(messages[0].body.as_str(), "hi \"there\"");
            }
            other => panic!("{other:?}"),
        }
        // `type` not first: the same, through the buffered path.
        match read(r#"{"user":"ana","type":"history","messages":[]}"#) {
            Incoming::History { request, messages } => {
                assert_eq!((request, messages.len()), (None, 0));
            }
            other => panic!("{other:?}"),
        }
        assert!(serde_json::from_str::<Incoming>(r#"{"type":"history","messages":[]}"#).is_err());
    }

    #[test]
    fn every_other_frame_and_any_field_order_reads_as_the_protocol_does() {
        for json in [
            r#"{"type":"pong","id":"finish"}"#,
            r#"{"type":"error","id":3,"code":"rate_limited","message":"slow down"}"#,
            r#"{"id":3,"type":"error","code":"rate_limited","message":"slow down"}"#,
            r#"{"type":"agents","online":2}"#,
        ] {
            let expected: ServerFrame = serde_json::from_str(json).expect(json);
            match read(json) {
                Incoming::Other(frame) => assert_eq!(frame, expected, "{json}"),
                other => panic!("{json}: {other:?}"),
            }
        }
        // `type` not first: still a message, through the buffered path.
        match read(&format!(r#"{{"message":{MESSAGE},"type":"message"}}"#)) {
            Incoming::Message(seen) => assert_eq!(seen.id, 42),
            other => panic!("{other:?}"),
        }
    }

    fn line(frame: &ServerFrame) -> Vec<u8> {
        let mut buf = bytes::BytesMut::new();
        switchboard_protocol::codec::encode_into(frame, &mut buf).expect("encodes");
        buf.truncate(buf.len() - 1); // the newline
        buf.to_vec()
    }

    fn message(id: u64, agent: Option<&str>, body: &str) -> switchboard_protocol::Message {
        switchboard_protocol::Message {
            id,
            ts: switchboard_protocol::Timestamp::from_micros(1_764_000_000_000_000),
            user: switchboard_protocol::Name::parse("ana").expect("valid"),
            from: if agent.is_some() {
                Role::Agent
            } else {
                Role::User
            },
            agent: agent.map(|name| switchboard_protocol::Name::parse(name).expect("valid")),
            body: switchboard_protocol::Body::parse(body, usize::MAX).expect("valid"),
            priority: switchboard_protocol::Priority::High,
            note: false,
        }
    }

    /// What a frame says, to compare the two ways of reading it.
    fn said(frame: &Incoming) -> (Option<i64>, u64, Role, &str) {
        match frame {
            Incoming::Message(seen) => (None, seen.id, seen.from, seen.body.as_str()),
            Incoming::Sent { request, message } => {
                (*request, message.id, message.from, message.body.as_str())
            }
            other => panic!("not a hot frame: {other:?}"),
        }
    }

    #[test]
    fn the_servers_own_lines_take_the_short_way() {
        let frames = [
            ServerFrame::Message {
                message: message(7, None, "sbload t u=1 n=2 t=3"),
            },
            ServerFrame::Message {
                message: message(8, Some("bob"), "ça va ? 👋"),
            },
            ServerFrame::Sent {
                id: Some(RequestId::Int(12)),
                message: message(9, None, "hi"),
            },
        ];
        for frame in &frames {
            let line = line(frame);
            let short = read_exact_shape(&line).expect("the server's own shape");
            let long: Incoming = serde_json::from_slice(&line).expect("valid");
            assert_eq!(said(&short), said(&long));
        }
    }

    #[test]
    fn the_servers_history_pages_take_the_short_way() {
        let page = |messages| {
            line(&ServerFrame::History {
                id: Some(RequestId::Int(5)),
                user: switchboard_protocol::Name::parse("ana").expect("valid"),
                messages,
            })
        };
        let full = page(vec![
            message(1, None, "sbload t u=1 n=2 t=3"),
            message(2, Some("bob"), "ça va ? 👋"),
            message(3, None, "say \"hi\""),
        ]);
        let ids_and_bodies = |frame: &Incoming| match frame {
            Incoming::History { request, messages } => (
                *request,
                messages
                    .iter()
                    .map(|m| (m.id, m.from, m.body.as_str().to_owned()))
                    .collect::<Vec<_>>(),
            ),
            other => panic!("{other:?}"),
        };
        let long: Incoming = serde_json::from_slice(&full).expect("valid");
        // An escaped body: the whole page goes to serde.
        assert!(read_exact_shape(&full).is_none());
        let plain = page(vec![
            message(1, None, "sbload t u=1 n=2 t=3"),
            message(2, Some("bob"), "ça va ? 👋"),
        ]);
        let short = read_exact_shape(&plain).expect("the server's own shape");
        let long_plain: Incoming = serde_json::from_slice(&plain).expect("valid");
        assert_eq!(ids_and_bodies(&short), ids_and_bodies(&long_plain));
        assert_eq!(ids_and_bodies(&long).1.len(), 3);
        let empty = read_exact_shape(&page(Vec::new())).expect("the server's own shape");
        assert_eq!(ids_and_bodies(&empty), (Some(5), Vec::new()));
    }

    #[test]
    fn anything_unusual_is_left_to_serde() {
        let escaped = line(&ServerFrame::Message {
            message: message(1, None, "say \"hi\"\n"),
        });
        let string_id = line(&ServerFrame::Sent {
            id: Some(RequestId::Str("r1".into())),
            message: message(1, None, "x"),
        });
        let no_id = line(&ServerFrame::Sent {
            id: None,
            message: message(1, None, "x"),
        });
        for line in [
            escaped,
            string_id,
            no_id,
            br#"{"message":{"id":1},"type":"message"}"#.to_vec(),
            br#"{"type":"message","message":{"id":01,"ts":"x","user":"a","from":"user","agent":null,"body":"b","priority":"low"}}"#.to_vec(),
            br#"{"type":"message","message":{"id":1,"ts":"x","user":"a","from":"bot","agent":null,"body":"b","priority":"low"}}"#.to_vec(),
            br#"{"type":"message","message":{"id":1,"ts":"x","user":"a","from":"user","agent":null,"body":"b","priority":"low"},"extra":1}"#.to_vec(),
            br#"{"type":"message","message":{"id":99999999999999999999,"ts":"x","user":"a","from":"user","agent":null,"body":"b","priority":"low"}}"#.to_vec(),
        ] {
            assert!(
                read_exact_shape(&line).is_none(),
                "{}",
                String::from_utf8_lossy(&line)
            );
        }
    }

    use proptest::strategy::Strategy;

    proptest::proptest! {
        /// Whatever the body, the short way reads what serde reads, and
        /// takes every line without escapes.
        #[test]
        fn both_ways_agree(
            body in "\\PC{1,40}|[ -~]{1,40}".prop_filter("a body the protocol accepts", |body| {
                switchboard_protocol::Body::parse(body, usize::MAX).is_ok()
            }),
            id in 1u64..u64::MAX,
            request in 0i64..i64::MAX,
        ) {
            for frame in [
                ServerFrame::Message { message: message(id, None, &body) },
                ServerFrame::Sent { id: Some(RequestId::Int(request)), message: message(id, Some("bob"), &body) },
            ] {
                let line = line(&frame);
                let long: Incoming = serde_json::from_slice(&line).expect("valid");
                match read_exact_shape(&line) {
                    Some(short) => proptest::prop_assert_eq!(said(&short), said(&long)),
                    None => proptest::prop_assert!(
                        line.contains(&b'\\'),
                        "a line without escapes took the long way: {}",
                        String::from_utf8_lossy(&line)
                    ),
                }
            }
        }
    }

    #[test]
    fn a_broken_frame_is_an_error_not_a_guess() {
        assert!(serde_json::from_str::<Incoming>(r#"{"type":"message"}"#).is_err());
        assert!(serde_json::from_str::<Incoming>(r#"{"type":"nonsense"}"#).is_err());
        assert!(serde_json::from_str::<Incoming>("[1]").is_err());
    }
}
