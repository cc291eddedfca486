//! How a request line becomes a [`ClientFrame`], whatever an ignored field
//! holds (issue 15, finding 10).
//!
//! serde's derive for an internally tagged enum (`"type"` inside the
//! object) buffers every field, unknown ones included, into a tree of its
//! own before it knows the variant, and that tree is built recursively
//! under serde_json's nesting limit of 128: a valid frame with an ignored
//! field nested 127 deep was refused as `bad_json`. Here the line is read
//! once into [`Fields`]: the fields some request has are kept as raw JSON
//! text (a borrowed slice of the line), and every other field is skipped by
//! serde_json's `IgnoredAny`, which walks a value of any depth in a loop,
//! without recursion and without building anything. Only then, knowing the
//! `type`, are the fields that variant needs parsed from their text, each
//! small. Depth is then bounded by the line limit alone, and the stack by
//! nothing a client sends.
//!
//! It reads JSON text only (`serde_json::from_str` / `from_slice`, as the
//! codec does): the raw slices borrow from it.

use std::borrow::Cow;
use std::fmt;

use serde::de::{
    Deserialize, DeserializeOwned, Deserializer, Error, IgnoredAny, MapAccess, SeqAccess,
    Unexpected, Visitor,
};
use serde_json::value::RawValue;

use crate::frame::ClientFrame;
use crate::message::{Key, MAX_ID_CHARS, RequestId};

/// The `"type"` of a request.
enum Kind {
    Hello,
    Subscribe,
    Send,
    Release,
    Claim,
    Resolve,
    Transfer,
    History,
    Ping,
    Bye,
}

/// Every field any request has: the text fields read at once ([`Text`]),
/// the others kept as their JSON text; other fields are skipped without
/// being kept. `null` reads as absent, as for the optional fields of the
/// derived form.
#[derive(serde::Deserialize)]
struct Fields<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Text<'a>>,
    #[serde(borrow, default)]
    id: Option<Text<'a>>,
    #[serde(borrow, default)]
    role: Option<&'a RawValue>,
    #[serde(borrow, default)]
    name: Option<Text<'a>>,
    #[serde(borrow, default)]
    token: Option<&'a RawValue>,
    #[serde(borrow, default)]
    since: Option<Text<'a>>,
    #[serde(borrow, default)]
    limit: Option<Text<'a>>,
    #[serde(borrow, default)]
    to: Option<Text<'a>>,
    #[serde(borrow, default)]
    body: Option<Text<'a>>,
    #[serde(borrow, default)]
    key: Option<Text<'a>>,
    #[serde(borrow, default)]
    user: Option<Text<'a>>,
    #[serde(borrow, default)]
    before: Option<Text<'a>>,
    #[serde(borrow, default)]
    note: Option<&'a RawValue>,
}

impl<'de> Deserialize<'de> for ClientFrame {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let fields = Fields::deserialize(deserializer)?;
        let kind = kind(fields.kind)?;
        let id = request_id(fields.id)?;
        Ok(match kind {
            Kind::Hello => ClientFrame::Hello {
                id,
                role: required(fields.role, "role")?,
                name: required_text(fields.name, "name")?,
                token: optional(fields.token)?,
            },
            Kind::Subscribe => ClientFrame::Subscribe {
                id,
                since: number(fields.since)?,
                limit: number(fields.limit)?,
            },
            Kind::Send => ClientFrame::Send {
                id,
                to: optional_text(fields.to)?,
                body: required_text(fields.body, "body")?,
                key: optional_text(fields.key)?
                    .map(|key| {
                        Key::new(key).ok_or_else(|| {
                            D::Error::custom(format_args!(
                                "`key` is at most {MAX_ID_CHARS} characters"
                            ))
                        })
                    })
                    .transpose()?,
                note: optional::<bool, _>(fields.note)?.unwrap_or(false),
            },
            Kind::Release => ClientFrame::Release {
                id,
                user: required_text(fields.user, "user")?,
            },
            Kind::Claim => ClientFrame::Claim {
                id,
                user: required_text(fields.user, "user")?,
            },
            Kind::Resolve => ClientFrame::Resolve {
                id,
                user: required_text(fields.user, "user")?,
            },
            Kind::Transfer => ClientFrame::Transfer {
                id,
                user: required_text(fields.user, "user")?,
                to: required_text(fields.to, "to")?,
            },
            Kind::History => ClientFrame::History {
                id,
                user: optional_text(fields.user)?,
                before: number(fields.before)?,
                limit: number(fields.limit)?,
            },
            Kind::Ping => ClientFrame::Ping { id },
            Kind::Bye => ClientFrame::Bye { id },
        })
    }
}

/// A field that is a string in every request that has one (`name`, `to`,
/// `body`, `user`): read in the first pass, so a long body is scanned once,
/// and borrowed from the line when it has no escapes. Any other value is
/// skipped (a field of another request is ignored, whatever it holds) and
/// remembered only as what it was, for the error if this request needs it.
/// `type`, `since`, `limit` and `before` too: the same single pass, and no
/// second parser for the fields every request has.
enum Text<'a> {
    Str(Cow<'a, str>),
    Number(u64),
    /// Negative: only an `id` may be.
    Signed(i64),
    Float(f64),
    Not(String),
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: Error>(self, text: &'de str) -> Result<Text<'de>, E> {
        Ok(Text::Str(Cow::Borrowed(text)))
    }

    fn visit_str<E: Error>(self, text: &str) -> Result<Text<'de>, E> {
        Ok(Text::Str(Cow::Owned(text.to_owned())))
    }

    fn visit_string<E: Error>(self, text: String) -> Result<Text<'de>, E> {
        Ok(Text::Str(Cow::Owned(text)))
    }

    fn visit_bool<E: Error>(self, value: bool) -> Result<Text<'de>, E> {
        Ok(Text::Not(Unexpected::Bool(value).to_string()))
    }

    fn visit_i64<E: Error>(self, value: i64) -> Result<Text<'de>, E> {
        Ok(Text::Signed(value))
    }

    fn visit_u64<E: Error>(self, value: u64) -> Result<Text<'de>, E> {
        Ok(Text::Number(value))
    }

    fn visit_f64<E: Error>(self, value: f64) -> Result<Text<'de>, E> {
        Ok(Text::Float(value))
    }

    fn visit_unit<E: Error>(self) -> Result<Text<'de>, E> {
        Ok(Text::Not(Unexpected::Unit.to_string()))
    }

    /// Skipped element by element; each element is skipped in a loop
    /// (`IgnoredAny`), so its depth costs no stack.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Text<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Text::Not(Unexpected::Seq.to_string()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Text<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Text::Not(Unexpected::Map.to_string()))
    }
}

impl Text<'_> {
    /// What the value was, for an error.
    fn unexpected(&self) -> String {
        match self {
            Text::Str(text) => Unexpected::Str(text).to_string(),
            Text::Number(n) => Unexpected::Unsigned(*n).to_string(),
            Text::Signed(n) => Unexpected::Signed(*n).to_string(),
            Text::Float(n) => Unexpected::Float(*n).to_string(),
            Text::Not(what) => what.clone(),
        }
    }
}

const KINDS: &[&str] = &[
    "hello",
    "subscribe",
    "send",
    "release",
    "claim",
    "resolve",
    "transfer",
    "history",
    "ping",
    "bye",
];

fn kind<E: Error>(text: Option<Text<'_>>) -> Result<Kind, E> {
    let Some(text) = text else {
        return Err(E::missing_field("type"));
    };
    let Text::Str(name) = &text else {
        return Err(E::custom(format_args!(
            "invalid type: {}, expected a frame type",
            text.unexpected()
        )));
    };
    Ok(match name.as_ref() {
        "hello" => Kind::Hello,
        "subscribe" => Kind::Subscribe,
        "send" => Kind::Send,
        "release" => Kind::Release,
        "claim" => Kind::Claim,
        "resolve" => Kind::Resolve,
        "transfer" => Kind::Transfer,
        "history" => Kind::History,
        "ping" => Kind::Ping,
        "bye" => Kind::Bye,
        other => return Err(E::unknown_variant(other, KINDS)),
    })
}

/// The request's `id`, by [`RequestId`]'s rules (its `Deserialize`, read
/// from the one pass): a string of at most 64 characters, or an integer
/// that fits in 64 bits signed.
fn request_id<E: Error>(text: Option<Text<'_>>) -> Result<Option<RequestId>, E> {
    let not_an_id = || E::custom("`id` must be a string or an integer");
    let too_large =
        || E::custom("an integer `id` must fit in 64 bits signed; send a longer one as a string");
    let Some(text) = text else {
        return Ok(None);
    };
    Ok(Some(match text {
        Text::Str(text) if text.chars().count() <= MAX_ID_CHARS => {
            RequestId::Str(text.into_owned())
        }
        Text::Str(_) => {
            return Err(E::custom(format_args!(
                "`id` is at most {MAX_ID_CHARS} characters"
            )));
        }
        Text::Signed(n) => RequestId::Int(n),
        Text::Number(n) => RequestId::Int(i64::try_from(n).map_err(|_| too_large())?),
        Text::Float(n) if n.fract() == 0.0 && n.abs() >= 2f64.powi(63) => return Err(too_large()),
        Text::Float(_) | Text::Not(_) => return Err(not_an_id()),
    }))
}

/// A whole number that fits `T` (`u64` or `u32`), or absent.
fn number<T: TryFrom<u64>, E: Error>(text: Option<Text<'_>>) -> Result<Option<T>, E> {
    match text {
        None => Ok(None),
        Some(Text::Number(n)) => T::try_from(n)
            .map(Some)
            .map_err(|_| E::invalid_value(Unexpected::Unsigned(n), &"a smaller whole number")),
        Some(other) => Err(E::custom(format_args!(
            "invalid type: {}, expected a whole number",
            other.unexpected()
        ))),
    }
}

fn required_text<E: Error>(text: Option<Text<'_>>, field: &'static str) -> Result<String, E> {
    match text {
        Some(Text::Str(text)) => Ok(text.into_owned()),
        Some(other) => Err(E::custom(format_args!(
            "invalid type: {}, expected a string",
            other.unexpected()
        ))),
        None => Err(E::missing_field(field)),
    }
}

fn optional_text<E: Error>(text: Option<Text<'_>>) -> Result<Option<String>, E> {
    text.map(|text| required_text(Some(text), "")).transpose()
}

fn required<T: DeserializeOwned, E: Error>(
    raw: Option<&RawValue>,
    field: &'static str,
) -> Result<T, E> {
    match raw {
        Some(raw) => parse(raw),
        None => Err(E::missing_field(field)),
    }
}

fn optional<T: DeserializeOwned, E: Error>(raw: Option<&RawValue>) -> Result<Option<T>, E> {
    raw.map(parse).transpose()
}

/// One field's value from its text. Its error reads as the derived form's
/// did; the position within the field's text means nothing on the line.
fn parse<T: DeserializeOwned, E: Error>(raw: &RawValue) -> Result<T, E> {
    serde_json::from_str(raw.get()).map_err(|error| {
        let text = error.to_string();
        E::custom(match text.rfind(" at line ") {
            Some(at) => &text[..at],
            None => &text,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Role, Token};

    fn parse_frame(json: &str) -> Result<ClientFrame, String> {
        serde_json::from_str(json).map_err(|error| error.to_string())
    }

    fn nested(depth: usize) -> String {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn every_request_reads_as_before() {
        assert_eq!(
            parse_frame(r#"{"name":"ana","type":"hello","role":"user","token":"t","id":1}"#),
            Ok(ClientFrame::Hello {
                id: Some(RequestId::Int(1)),
                role: Role::User,
                name: "ana".into(),
                token: Some(Token::new("t")),
            })
        );
        assert_eq!(
            parse_frame(r#"{"type":"send","to":null,"body":"hi","key":"k"}"#),
            Ok(ClientFrame::Send {
                id: None,
                to: None,
                body: "hi".into(),
                key: Key::new("k"),
                note: false,
            })
        );
        assert_eq!(
            parse_frame(r#"{"type":"history","user":"ana","before":9,"limit":5,"id":"h"}"#),
            Ok(ClientFrame::History {
                id: Some(RequestId::Str("h".into())),
                user: Some("ana".into()),
                before: Some(9),
                limit: Some(5),
            })
        );
    }

    #[test]
    fn a_note_is_a_boolean_and_absent_means_false() {
        let note = |json: &str| match parse_frame(json)? {
            ClientFrame::Send { note, .. } => Ok(note),
            other => Err(format!("{other:?}")),
        };
        assert_eq!(note(r#"{"type":"send","body":"b","note":true}"#), Ok(true));
        for absent in [
            r#"{"type":"send","body":"b"}"#,
            r#"{"type":"send","body":"b","note":false}"#,
            r#"{"type":"send","body":"b","note":null}"#,
        ] {
            assert_eq!(note(absent), Ok(false), "{absent}");
        }
        let refused = note(r#"{"type":"send","body":"b","note":"yes"}"#).expect_err("a string");
        assert!(refused.contains("expected a boolean"), "{refused}");
        // Another request's `note` is ignored like any unknown field.
        assert_eq!(
            parse_frame(r#"{"type":"ping","note":"x"}"#),
            Ok(ClientFrame::Ping { id: None })
        );
    }

    #[test]
    fn errors_name_the_field_and_the_frame_type() {
        let missing = parse_frame(r#"{"type":"send","id":"r1"}"#).expect_err("no body");
        assert!(missing.starts_with("missing field `body`"), "{missing}");
        let unknown = parse_frame(r#"{"type":"dance"}"#).expect_err("unknown type");
        assert!(unknown.contains("unknown variant `dance`"), "{unknown}");
        let bad = parse_frame(r#"{"type":"send","body":3}"#).expect_err("not a string");
        assert_eq!(
            bad, "invalid type: integer `3`, expected a string",
            "no position: the field's own would mislead"
        );
        assert!(parse_frame(r#"{"id":1}"#).is_err());
    }

    #[test]
    fn fields_of_other_requests_are_ignored_like_unknown_ones() {
        assert_eq!(
            parse_frame(r#"{"type":"ping","body":3,"role":"admin","x":{"y":[1]}}"#),
            Ok(ClientFrame::Ping { id: None })
        );
    }

    #[test]
    fn an_ignored_field_of_any_depth_is_ignored() {
        for depth in [127, 128, 1_000, 100_000] {
            let json = format!(r#"{{"type":"ping","id":7,"x":{}}}"#, nested(depth));
            assert_eq!(
                parse_frame(&json),
                Ok(ClientFrame::Ping {
                    id: Some(RequestId::Int(7))
                }),
                "{depth} deep"
            );
        }
        let in_a_text_field = format!(r#"{{"type":"ping","body":{}}}"#, nested(100_000));
        assert_eq!(
            parse_frame(&in_a_text_field),
            Ok(ClientFrame::Ping { id: None })
        );
        let objects = format!(
            r#"{{"type":"ping","x":{}1{}}}"#,
            r#"{"a":"#.repeat(10_000),
            "}".repeat(10_000)
        );
        assert_eq!(parse_frame(&objects), Ok(ClientFrame::Ping { id: None }));
    }

    #[test]
    fn a_deep_value_in_a_known_field_is_a_type_error_not_a_stack_overflow() {
        let json = format!(r#"{{"type":"send","body":{}}}"#, nested(100_000));
        let error = parse_frame(&json).expect_err("a body is a string");
        assert_eq!(error, "invalid type: sequence, expected a string");
        let escaped = parse_frame(r#"{"type":"send","body":"a\"b\u00e9"}"#);
        assert_eq!(
            escaped,
            Ok(ClientFrame::Send {
                id: None,
                to: None,
                body: "a\"bé".into(),
                key: None,
                note: false,
            })
        );
        let unclosed = format!(r#"{{"type":"ping","x":{}"#, "[".repeat(100_000));
        assert!(parse_frame(&unclosed).is_err());
    }
}
