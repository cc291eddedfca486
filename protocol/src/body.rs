//! A message body: what the server accepts, and what it stored before.
//!
//! A body is shown to people in terminals, so the rules keep out what could
//! rewrite a screen (control characters), what shows as nothing (a body of
//! zero-width spaces, joiners, byte-order marks and other format
//! characters), and what makes text display in another order than it is
//! stored (bidirectional overrides and isolates, the "Trojan Source" trick:
//! an agent would read a customer's text reordered). The last two are
//! issue 15, finding 10.

use serde::{Deserialize, Deserializer, Serialize};
use thiserror::Error;

/// A message body as stored: trimmed, non-empty, bounded, free of control
/// characters other than newline and tab, with something visible in it and
/// no bidirectional override or isolate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Body(String);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BodyError {
    #[error("the message is empty")]
    Empty,
    #[error("the message is longer than {max} characters")]
    TooLong { max: usize },
    #[error("the message contains a control character (only newline and tab are allowed)")]
    ControlCharacter,
    #[error(
        "the message has nothing visible: only spaces and invisible characters \
         (zero-width spaces or joiners, byte-order marks, other format characters)"
    )]
    Invisible,
    #[error(
        "the message contains a bidirectional override or isolate (U+{0:04X}), \
         which would show the text in another order than it was written"
    )]
    BidiControl(u32),
}

impl Body {
    /// Trims `text` and checks it against the rules; `max_chars` is the
    /// server's `--max-body`. What a client sends goes through this.
    pub fn parse(text: &str, max_chars: usize) -> Result<Self, BodyError> {
        let body = Self::parse_stored(text, max_chars)?;
        if let Some(bidi) = body.0.chars().find(|&c| is_bidi_control(c)) {
            return Err(BodyError::BidiControl(u32::from(bidi)));
        }
        if body.0.chars().all(|c| c.is_whitespace() || is_invisible(c)) {
            return Err(BodyError::Invisible);
        }
        Ok(body)
    }

    /// The rules a body had to meet before the invisible and bidirectional
    /// ones: for bodies read back (from the database, or from the server by
    /// a client), which older servers may have stored. Refusing them there
    /// would make a conversation unreadable instead of one request refused.
    pub fn parse_stored(text: &str, max_chars: usize) -> Result<Self, BodyError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(BodyError::Empty);
        }
        if trimmed.chars().nth(max_chars).is_some() {
            return Err(BodyError::TooLong { max: max_chars });
        }
        if trimmed
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(BodyError::ControlCharacter);
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl<'de> Deserialize<'de> for Body {
    /// Bodies that arrive from the server were validated there; a client only
    /// checks the shape (no length limit, which is the server's to choose,
    /// and the rules older servers stored bodies under).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Body::parse_stored(&text, usize::MAX).map_err(serde::de::Error::custom)
    }
}

/// U+202A–U+202E (embeddings and overrides) and U+2066–U+2069 (isolates).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters that draw nothing: Unicode's format characters (category Cf:
/// zero-width space and joiners, directional marks, word joiner, invisible
/// operators, the byte-order mark, interlinear annotation, tags…), plus the
/// fillers and selectors that render as blank (Hangul fillers, variation
/// selectors, the combining grapheme joiner, the Mongolian vowel
/// separator). A table rather than a Unicode crate: it changes rarely, and
/// a body with one visible character is accepted whatever else it holds.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
            | '\u{E0100}'..='\u{E01EF}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_trimmed_and_bounded_in_characters() {
        assert_eq!(Body::parse("  hi \n", 10).map(|b| b.0), Ok("hi".into()));
        assert_eq!(Body::parse(" \n\t ", 10), Err(BodyError::Empty));
        assert_eq!(Body::parse("", 10), Err(BodyError::Empty));
        assert!(
            Body::parse(&"é".repeat(10), 10).is_ok(),
            "10 chars, 20 bytes"
        );
        assert_eq!(
            Body::parse(&"é".repeat(11), 10),
            Err(BodyError::TooLong { max: 10 })
        );
        assert!(Body::parse("line\nnext\tcol", 100).is_ok());
        for bad in ["a\u{7}b", "a\rb", "a\u{1b}[2Jb", "a\u{0}b", "a\u{9b}b"] {
            assert_eq!(Body::parse(bad, 100), Err(BodyError::ControlCharacter));
        }
    }

    #[test]
    fn a_body_of_only_invisible_characters_is_refused() {
        for invisible in [
            "\u{200B}",
            "\u{200B}\u{200C}\u{200D}",
            " \u{FEFF} ",
            "\u{2060}\n\u{200B}\t\u{00AD}",
            "\u{3164}",
            "\u{E0041}\u{E0042}",
            "\u{FE0F}\u{034F}",
        ] {
            assert_eq!(
                Body::parse(invisible, 100),
                Err(BodyError::Invisible),
                "{invisible:?}"
            );
        }
        let refused = Body::parse("\u{200B}", 100).expect_err("invisible");
        assert!(refused.to_string().contains("nothing visible"), "{refused}");
    }

    #[test]
    fn invisible_characters_beside_visible_ones_are_kept() {
        // Joiners make emoji sequences and some scripts; a soft hyphen is a
        // hint. With something visible, the body is the client's business.
        for fine in [
            "👩\u{200D}💻",
            "a\u{200B}b",
            "\u{FEFF}hi",
            "ok\u{FE0F}",
            "·",
        ] {
            assert!(Body::parse(fine, 100).is_ok(), "{fine:?}");
        }
    }

    #[test]
    fn bidirectional_overrides_and_isolates_are_refused_anywhere() {
        for c in ('\u{202A}'..='\u{202E}').chain('\u{2066}'..='\u{2069}') {
            let body = format!("pay {c}0001 EUR{c} now");
            assert_eq!(
                Body::parse(&body, 100),
                Err(BodyError::BidiControl(u32::from(c))),
                "{c:?}"
            );
        }
        let refused = Body::parse("a\u{202E}b", 100).expect_err("an override");
        assert!(refused.to_string().contains("U+202E"), "{refused}");
        // Marks (U+200E, U+200F) only nudge neutral characters: kept.
        assert!(Body::parse("שלום\u{200F} ok", 100).is_ok());
    }

    #[test]
    fn bodies_stored_before_these_rules_still_read_back() {
        for old in ["\u{200B}", "a\u{202E}b"] {
            assert!(Body::parse_stored(old, 100).is_ok(), "{old:?}");
            let json = serde_json::to_string(old).expect("serialises");
            assert!(serde_json::from_str::<Body>(&json).is_ok(), "{old:?}");
        }
        assert_eq!(
            Body::parse_stored("a\u{7}b", 100),
            Err(BodyError::ControlCharacter)
        );
    }
}
