//! The stored message and the small validated values frames are made of.
//!
//! Values that the server must refuse with a specific error code (`Name` →
//! `invalid_name`, `Body` → `invalid_body`) are parsed by the server from the
//! frame's plain strings, because a frame that carries them is still a
//! well-formed frame. Values whose only failure is a malformed frame
//! (`RequestId`, `Key`) validate while decoding, so a bad one is `bad_frame`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use thiserror::Error;

pub use crate::body::{Body, BodyError};
use crate::timestamp::Timestamp;

/// The longest request id and idempotency key, in characters.
pub const MAX_ID_CHARS: usize = 64;
/// The longest user or agent name, in characters.
pub const MAX_NAME_CHARS: usize = 32;

/// Who is speaking: a customer or a support agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Agent,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::User => "user",
            Role::Agent => "agent",
        })
    }
}

/// How soon a message needs an answer. Ordered: `Low < Normal < High < Urgent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}

impl Priority {
    /// Every priority, most urgent first: the order agents see waiting messages in.
    pub const MOST_URGENT_FIRST: [Priority; 4] = [
        Priority::Urgent,
        Priority::High,
        Priority::Normal,
        Priority::Low,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::MOST_URGENT_FIRST
            .into_iter()
            .find(|p| p.as_str() == text)
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A user or agent name: 1 to 32 characters of `A-Z a-z 0-9 _ . -`.
///
/// The alphabet keeps names safe to print in logs, terminals and file names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Name(String);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    #[error("a name cannot be empty")]
    Empty,
    #[error("a name is at most {MAX_NAME_CHARS} characters")]
    TooLong,
    #[error("a name may only use letters A-Z a-z, digits, '_', '.' and '-'")]
    BadCharacter,
}

impl Name {
    pub fn parse(text: &str) -> Result<Self, NameError> {
        if text.is_empty() {
            Err(NameError::Empty)
        } else if text.len() > MAX_NAME_CHARS {
            // Allowed characters are ASCII, so bytes are characters here; a
            // longer string is either too long or has a bad character anyway.
            if text.bytes().all(is_name_byte) {
                Err(NameError::TooLong)
            } else {
                Err(NameError::BadCharacter)
            }
        } else if !text.bytes().all(is_name_byte) {
            Err(NameError::BadCharacter)
        } else {
            Ok(Self(text.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Name::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The `id` a client puts on a request so it can match the reply: a string of
/// at most 64 characters, or an integer that fits in 64 bits signed. A larger
/// integer is refused rather than echoed wrong: JSON readers (serde_json's
/// among them) take such numbers as floating point.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum RequestId {
    Int(i64),
    Str(String),
}

impl<'de> Deserialize<'de> for RequestId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Int(i64),
            Str(String),
            /// Too large for `Int`, or not whole.
            Number(f64),
        }
        match Wire::deserialize(deserializer)
            .map_err(|_| serde::de::Error::custom("`id` must be a string or an integer"))?
        {
            Wire::Int(n) => Ok(RequestId::Int(n)),
            Wire::Str(s) if s.chars().count() <= MAX_ID_CHARS => Ok(RequestId::Str(s)),
            Wire::Str(_) => Err(serde::de::Error::custom(format!(
                "`id` is at most {MAX_ID_CHARS} characters"
            ))),
            // Whole but beyond i64 is too large; 1.5, or 1.0 and 1e3 (numbers
            // written as floats), are not integers.
            Wire::Number(n) if n.fract() == 0.0 && n.abs() >= 2f64.powi(63) => {
                Err(serde::de::Error::custom(
                    "an integer `id` must fit in 64 bits signed; send a longer one as a string",
                ))
            }
            Wire::Number(_) => Err(serde::de::Error::custom(
                "`id` must be a string or an integer",
            )),
        }
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestId::Int(n) => write!(f, "{n}"),
            RequestId::Str(s) => f.write_str(s),
        }
    }
}

/// A client-chosen idempotency key for `send`: at most 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Key(String);

impl Key {
    pub fn new(text: impl Into<String>) -> Option<Self> {
        let text = text.into();
        (text.chars().count() <= MAX_ID_CHARS).then_some(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Key::new(text).ok_or_else(|| {
            serde::de::Error::custom(format!("`key` is at most {MAX_ID_CHARS} characters"))
        })
    }
}

/// A secret that signs a user or an agent in. Its `Debug` never shows it,
/// so a frame or a request logged whole cannot leak it; only
/// [`Token::expose`] gives the text, for the wire, hashing and the file a
/// client keeps it in.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Token(String);

impl Token {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The secret itself. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// A stored message, as the server shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Strictly increasing in commit order.
    pub id: u64,
    /// Strictly increasing with `id`.
    pub ts: Timestamp,
    /// The customer whose conversation this is.
    pub user: Name,
    /// Who wrote it.
    pub from: Role,
    /// The sending agent, `None` (`null`) for a user's message.
    pub agent: Option<Name>,
    pub body: Body,
    pub priority: Priority,
    /// A private note for the agents (protocol version 2): stored in the
    /// user's conversation, never shown to the user. On the wire only when
    /// true (`"note":true`); absent on every other message.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub note: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_alphabet_and_length() {
        for good in ["a", "ana", "Ana_B.c-9", &"x".repeat(32)] {
            assert!(Name::parse(good).is_ok(), "{good:?}");
        }
        assert_eq!(Name::parse(""), Err(NameError::Empty));
        assert_eq!(Name::parse(&"x".repeat(33)), Err(NameError::TooLong));
        for bad in ["a b", "a/b", "é", "ana\n", "a;b", "../x", "a\u{0}"] {
            assert_eq!(Name::parse(bad), Err(NameError::BadCharacter), "{bad:?}");
        }
    }

    #[test]
    fn request_ids_are_strings_or_integers_up_to_64_chars() {
        let parse = |json: &str| serde_json::from_str::<RequestId>(json);
        assert_eq!(parse("7").ok(), Some(RequestId::Int(7)));
        assert_eq!(parse("\"r1\"").ok(), Some(RequestId::Str("r1".into())));
        assert!(parse(&format!("\"{}\"", "x".repeat(64))).is_ok());
        assert!(parse(&format!("\"{}\"", "x".repeat(65))).is_err());
        assert!(parse("1.5").is_err());
        assert!(parse("[1]").is_err());
        assert_eq!(
            parse("-9223372036854775808").ok(),
            Some(RequestId::Int(i64::MIN))
        );
        assert_eq!(
            parse("9223372036854775807").ok(),
            Some(RequestId::Int(i64::MAX))
        );
        for too_large in ["9223372036854775808", "123456789012345678901234567890"] {
            let refused = parse(too_large).expect_err("beyond 64 bits").to_string();
            assert!(refused.contains("64 bits"), "{too_large}: {refused}");
        }
        for not_integer in ["1.5", "1.0", "1e3"] {
            let refused = parse(not_integer).expect_err("not an integer").to_string();
            assert!(
                refused.contains("string or an integer"),
                "{not_integer}: {refused}"
            );
        }
    }

    #[test]
    fn message_has_the_documented_json_shape() {
        let message = Message {
            id: 42,
            ts: Timestamp::parse("2026-11-24T11:16:27.123456Z").expect("valid"),
            user: Name::parse("ana").expect("valid"),
            from: Role::Agent,
            agent: Some(Name::parse("alice").expect("valid")),
            body: Body::parse("Hello Ana, how can I help?", 4096).expect("valid"),
            priority: Priority::Normal,
            note: false,
        };
        let json = serde_json::to_string(&message).expect("serialises");
        assert_eq!(
            json,
            r#"{"id":42,"ts":"2026-11-24T11:16:27.123456Z","user":"ana","from":"agent","agent":"alice","body":"Hello Ana, how can I help?","priority":"normal"}"#
        );
        let back: Message = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, message);
        // A note says so; no other message carries the field.
        let note = Message {
            note: true,
            ..message
        };
        let json = serde_json::to_string(&note).expect("serialises");
        assert!(
            json.ends_with(r#""priority":"normal","note":true}"#),
            "{json}"
        );
        let back: Message = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, note);
    }
}
