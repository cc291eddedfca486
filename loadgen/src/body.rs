//! A message body as the load generator keeps it: inline when short, so
//! reading a load message (about 40 bytes) allocates nothing.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// Bytes a [`Body`] holds without a heap allocation: a load body is about
/// 40 (`sbload L0123abcd u=199 n=1499 t=12345678`).
const BODY_INLINE_BYTES: usize = 62;

/// A message body: inline when short, so reading a load message allocates
/// nothing. Always valid UTF-8.
#[derive(Clone, PartialEq, Eq)]
pub enum Body {
    Inline {
        len: u8,
        bytes: [u8; BODY_INLINE_BYTES],
    },
    Heap(String),
}

impl Body {
    pub fn new(text: &str) -> Body {
        let mut bytes = [0u8; BODY_INLINE_BYTES];
        match (bytes.get_mut(..text.len()), u8::try_from(text.len())) {
            (Some(inline), Ok(len)) => {
                inline.copy_from_slice(text.as_bytes());
                Body::Inline { len, bytes }
            }
            _ => Body::Heap(text.to_owned()),
        }
    }

    /// `bytes` if they are ASCII (so UTF-8 without a UTF-8 check): a load
    /// body always is.
    pub fn from_ascii(bytes: &[u8]) -> Option<Body> {
        if !bytes.is_ascii() {
            return None;
        }
        let mut inline = [0u8; BODY_INLINE_BYTES];
        match (inline.get_mut(..bytes.len()), u8::try_from(bytes.len())) {
            (Some(prefix), Ok(len)) => {
                prefix.copy_from_slice(bytes);
                Some(Body::Inline { len, bytes: inline })
            }
            _ => std::str::from_utf8(bytes).ok().map(Body::new),
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Body::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Body::Heap(text) => text.as_bytes(),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Body::Inline { .. } => std::str::from_utf8(self.as_bytes())
                .expect("a Body is made from a str, so its bytes are UTF-8"),
            Body::Heap(text) => text,
        }
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(if text.len() <= BODY_INLINE_BYTES {
            Body::new(&text)
        } else {
            Body::Heap(text)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_bodies_stay_inline_and_long_ones_do_not() {
        let short = Body::new("sbload L0a1b2c3d u=1 n=2 t=3");
        assert!(matches!(short, Body::Inline { .. }));
        assert_eq!(short.as_str(), "sbload L0a1b2c3d u=1 n=2 t=3");
        let long = "x".repeat(BODY_INLINE_BYTES + 1);
        assert!(matches!(Body::new(&long), Body::Heap(_)));
        assert_eq!(Body::new(&long).as_bytes(), long.as_bytes());
        assert_eq!(Body::from_ascii(b"plain"), Some(Body::new("plain")));
        assert_eq!(Body::from_ascii("ça".as_bytes()), None);
        let read: Body = serde_json::from_str(r#""hi \"there\"""#).expect("a string");
        assert_eq!(read.as_str(), "hi \"there\"");
    }
}
