//! Newline-delimited JSON framing with a maximum line length.
//!
//! The decoder's item is `Result<frame, FrameError>`, not an `Err` of the
//! stream: `Framed` ends a stream after its decoder fails, and one oversize
//! or malformed line must not cost the client its connection. Only real I/O
//! errors end the stream.
//!
//! A line longer than the limit is reported as soon as the limit is passed
//! (so a peer cannot make the server buffer a line without end) and the rest
//! of it is skipped up to its newline.

use std::io;
use std::marker::PhantomData;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio_util::codec::{Decoder, Encoder};

use crate::error::FrameError;
use crate::frame::{ClientFrame, ServerFrame};
use crate::message::{Message, Name, RequestId};

/// The default longest line, in bytes, without its line ending.
pub const DEFAULT_MAX_LINE_BYTES: usize = 65_536;

/// Reads `In` frames and writes `Out` frames, one JSON object per line.
#[derive(Debug)]
pub struct FrameCodec<In, Out> {
    max_line_bytes: usize,
    /// How far the buffer has already been searched for a newline.
    searched: usize,
    /// Skipping the rest of a line that was too long.
    discarding: bool,
    frames: PhantomData<fn(Out) -> In>,
}

/// The server's side: reads requests, writes replies and events.
pub type ServerCodec = FrameCodec<ClientFrame, ServerFrame>;
/// A client's side: reads replies and events, writes requests.
pub type ClientCodec = FrameCodec<ServerFrame, ClientFrame>;

impl<In, Out> FrameCodec<In, Out> {
    pub fn new(max_line_bytes: usize) -> Self {
        Self {
            max_line_bytes,
            searched: 0,
            discarding: false,
            frames: PhantomData,
        }
    }

    pub fn max_line_bytes(&self) -> usize {
        self.max_line_bytes
    }
}

impl<In, Out> Default for FrameCodec<In, Out> {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_LINE_BYTES)
    }
}

/// How one line becomes a frame. serde does it for the protocol's frame
/// types; a reader that needs only a few fields of its busiest frames (the
/// load generator) may read those itself and hand every other line to
/// [`parse_line`].
pub trait FromLine: Sized {
    /// `line` is one line without its line ending, not blank.
    fn from_line(line: &[u8]) -> Result<Self, FrameError>;
}

impl FromLine for ClientFrame {
    fn from_line(line: &[u8]) -> Result<Self, FrameError> {
        parse_line(line)
    }
}

impl FromLine for ServerFrame {
    fn from_line(line: &[u8]) -> Result<Self, FrameError> {
        parse_line(line)
    }
}

impl<In: FromLine, Out> Decoder for FrameCodec<In, Out> {
    type Item = Result<In, FrameError>;
    type Error = io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> io::Result<Option<Self::Item>> {
        loop {
            let newline = memchr::memchr(b'\n', &buf[self.searched..]).map(|at| at + self.searched);
            match newline {
                Some(at) if self.discarding => {
                    buf.advance(at + 1);
                    self.searched = 0;
                    self.discarding = false;
                }
                None if self.discarding => {
                    buf.clear();
                    self.searched = 0;
                    return Ok(None);
                }
                Some(at) => {
                    let line = buf.split_to(at + 1);
                    self.searched = 0;
                    let content = strip_line_ending(&line);
                    if content.len() > self.max_line_bytes {
                        return Ok(Some(Err(self.too_long())));
                    }
                    if content.iter().all(u8::is_ascii_whitespace) {
                        continue; // blank lines are for people at netcat
                    }
                    return Ok(Some(In::from_line(content)));
                }
                None => {
                    // One extra byte: a full-length line may be waiting for
                    // the `\n` after its `\r`.
                    if buf.len() > self.max_line_bytes + 1 {
                        buf.clear();
                        self.searched = 0;
                        self.discarding = true;
                        return Ok(Some(Err(self.too_long())));
                    }
                    self.searched = buf.len();
                    return Ok(None);
                }
            }
        }
    }

    /// At end of stream, a last line without its newline still counts.
    fn decode_eof(&mut self, buf: &mut BytesMut) -> io::Result<Option<Self::Item>> {
        if let Some(item) = self.decode(buf)? {
            return Ok(Some(item));
        }
        if buf.is_empty() || self.discarding {
            buf.clear();
            return Ok(None);
        }
        buf.put_u8(b'\n');
        self.decode(buf)
    }
}

impl<In, Out> FrameCodec<In, Out> {
    fn too_long(&self) -> FrameError {
        FrameError::LineTooLong {
            max: self.max_line_bytes,
        }
    }
}

impl<In, Out: Serialize> Encoder<Out> for FrameCodec<In, Out> {
    type Error = io::Error;

    fn encode(&mut self, frame: Out, buf: &mut BytesMut) -> io::Result<()> {
        encode_into(&frame, buf)
    }
}

impl<In, Out: Serialize> Encoder<&Out> for FrameCodec<In, Out> {
    type Error = io::Error;

    fn encode(&mut self, frame: &Out, buf: &mut BytesMut) -> io::Result<()> {
        encode_into(frame, buf)
    }
}

/// Appends `frame` as one JSON line. Public so a server can encode an event
/// once and share the bytes among every recipient.
pub fn encode_into<T: Serialize>(frame: &T, buf: &mut BytesMut) -> io::Result<()> {
    serde_json::to_writer(buf.writer(), frame)?;
    buf.put_u8(b'\n');
    Ok(())
}

/// A stored message encoded once for the two frames that carry it: the
/// `message` event its other recipients get and the `sent` reply its sender
/// gets. Serialising a message is most of the cost of either frame, and a
/// server sends both for every message; the lines are byte for byte what
/// [`encode_into`] writes for [`ServerFrame::Message`] and
/// [`ServerFrame::Sent`] (a test holds them to it).
pub struct EncodedMessage {
    json: Vec<u8>,
}

impl EncodedMessage {
    pub fn new(message: &Message) -> io::Result<Self> {
        let mut json = Vec::with_capacity(256);
        serde_json::to_writer(&mut json, message)?;
        Ok(Self { json })
    }

    /// `{"type":"message","message":…}` and its newline.
    pub fn event(&self) -> Bytes {
        const HEAD: &[u8] = br#"{"type":"message","message":"#;
        let mut line = self.line(HEAD.len());
        line.put_slice(HEAD);
        self.finish(line)
    }

    /// `{"type":"sent","id":…,"message":…}` and its newline; no `id` when
    /// the request had none. Written straight into the line: the id is
    /// short, and a buffer of its own cost an allocation and a copy.
    pub fn sent(&self, id: Option<&RequestId>) -> io::Result<Bytes> {
        const HEAD: &[u8] = br#"{"type":"sent","#;
        const ID: &[u8] = br#""id":"#;
        const MESSAGE: &[u8] = br#""message":"#;
        // Room for an integer id or a short string one; longer ones grow it.
        let mut line = self.line(HEAD.len() + ID.len() + 24 + MESSAGE.len());
        line.put_slice(HEAD);
        if let Some(id) = id {
            line.put_slice(ID);
            serde_json::to_writer((&mut line).writer(), id)?;
            line.put_u8(b',');
        }
        line.put_slice(MESSAGE);
        Ok(self.finish(line))
    }

    /// An empty line with room for `head` bytes, the message, and the end.
    fn line(&self, head: usize) -> BytesMut {
        BytesMut::with_capacity(head + self.json.len() + 2)
    }

    /// The message, then the frame's closing brace and newline.
    fn finish(&self, mut line: BytesMut) -> Bytes {
        line.put_slice(&self.json);
        line.put_slice(b"}\n");
        line.freeze()
    }
}

/// A `history` reply written piece by piece: [`HistoryLine::head`], each
/// message with [`HistoryLine::push`], then [`HistoryLine::TAIL`]. The bytes
/// are those [`encode_into`] writes for the whole [`ServerFrame::History`] (a
/// test holds them to it), but a page of a thousand long messages never has
/// to be in memory encoded all at once.
pub struct HistoryLine {
    head: Bytes,
    first: bool,
}

impl HistoryLine {
    /// What closes the reply, after the last message.
    pub const TAIL: &'static [u8] = b"]}\n";

    pub fn new(id: Option<RequestId>, user: Name) -> io::Result<Self> {
        // The frame with no messages, cut where they go: serde writes the
        // fields in declaration order, and `messages` is the last.
        let mut envelope = BytesMut::new();
        encode_into(
            &ServerFrame::History {
                id,
                user,
                messages: Vec::new(),
            },
            &mut envelope,
        )?;
        let Some(head_len) = envelope.strip_suffix(b"[]}\n").map(|head| head.len() + 1) else {
            return Err(io::Error::other(
                "a history frame no longer ends with its messages",
            ));
        };
        envelope.truncate(head_len);
        Ok(Self {
            head: envelope.freeze(),
            first: true,
        })
    }

    /// Everything before the first message.
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// Appends the next message (and the comma before it) to `buf`.
    pub fn push(&mut self, message: &Message, buf: &mut BytesMut) -> io::Result<()> {
        if !std::mem::take(&mut self.first) {
            buf.put_u8(b',');
        }
        serde_json::to_writer(buf.writer(), message)?;
        Ok(())
    }
}

fn strip_line_ending(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Turns one line into a frame with serde, or says precisely why it is not
/// one.
pub fn parse_line<In: DeserializeOwned>(line: &[u8]) -> Result<In, FrameError> {
    // The common case parses once; only a failure pays for the diagnosis.
    serde_json::from_slice(line).map_err(|typed_error| diagnose(line, typed_error))
}

fn diagnose(line: &[u8], typed_error: serde_json::Error) -> FrameError {
    if let Err(utf8) = std::str::from_utf8(line) {
        return FrameError::BadJson {
            reason: format!("the line is not UTF-8 (byte {})", utf8.valid_up_to()),
        };
    }
    // Syntax first, skipping values of any depth in a loop (no tree is
    // built, so nesting costs neither stack nor a refusal: `request.rs`).
    if let Err(syntax) = serde_json::from_slice::<IgnoredAny>(line) {
        return FrameError::BadJson {
            reason: syntax.to_string(),
        };
    }
    if line.trim_ascii_start().first() != Some(&b'{') {
        return FrameError::BadFrame {
            id: None,
            reason: "a frame must be a JSON object".into(),
        };
    }
    /// The two fields a diagnosis needs, as their text.
    #[derive(Deserialize)]
    struct Probe<'a> {
        #[serde(borrow, default)]
        id: Option<&'a RawValue>,
        #[serde(rename = "type", borrow, default)]
        kind: Option<&'a RawValue>,
    }
    let probe = serde_json::from_slice::<Probe>(line).ok();
    let id = probe
        .as_ref()
        .and_then(|probe| probe.id)
        .and_then(|id| serde_json::from_str::<RequestId>(id.get()).ok());
    let kind = probe.as_ref().and_then(|probe| probe.kind);
    let reason = match kind.map(|kind| serde_json::from_str::<String>(kind.get())) {
        None => "the frame has no \"type\"".to_owned(),
        // Only the tag itself being unknown makes an unknown frame type; an
        // unknown value inside (a role, say) is a bad field of a known frame.
        Some(Ok(kind))
            if typed_error
                .to_string()
                .contains(&format!("unknown variant `{kind}`")) =>
        {
            format!("unknown frame type \"{}\"", kind.escape_debug())
        }
        Some(Ok(kind)) => {
            format!(
                "bad \"{}\" frame: {}",
                kind.escape_debug(),
                strip_position(&typed_error)
            )
        }
        Some(Err(_)) => "\"type\" must be a string".to_owned(),
    };
    FrameError::BadFrame { id, reason }
}

/// serde_json appends "at line 1 column N", which says nothing on a one-line
/// frame.
fn strip_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::message::{Body, Key, Message, Name, Priority, Role, Token};
    use crate::timestamp::Timestamp;
    use proptest::prelude::*;

    fn decode_all(codec: &mut ServerCodec, input: &[u8]) -> Vec<Result<ClientFrame, FrameError>> {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(item) = codec.decode(&mut buf).expect("no I/O error") {
            out.push(item);
        }
        out
    }

    fn codes(items: &[Result<ClientFrame, FrameError>]) -> Vec<Option<ErrorCode>> {
        items
            .iter()
            .map(|i| i.as_ref().err().map(FrameError::code))
            .collect()
    }

    fn encoded(frame: &ServerFrame) -> Bytes {
        let mut buf = BytesMut::new();
        encode_into(frame, &mut buf).expect("encodes");
        buf.freeze()
    }

    proptest! {
        #[test]
        fn a_message_encoded_once_makes_the_same_lines(
            body in "\\PC{1,60}".prop_filter("a body the protocol accepts", |body| {
                Body::parse(body, usize::MAX).is_ok()
            }),
            id in 1u64..u64::MAX,
            agent in proptest::option::of("[a-z]{1,8}"),
            note in any::<bool>(),
            request in proptest::option::of(prop_oneof![
                any::<i64>().prop_map(RequestId::Int),
                "[ -~]{0,20}".prop_map(RequestId::Str),
            ]),
        ) {
            // Only an agent writes notes.
            let note = note && agent.is_some();
            let message = Message {
                id,
                ts: Timestamp::from_micros(1_764_000_000_123_456),
                user: Name::parse("ana").expect("valid"),
                from: if agent.is_some() { Role::Agent } else { Role::User },
                agent: agent.map(|name| Name::parse(&name).expect("valid")),
                body: Body::parse(&body, usize::MAX).expect("valid"),
                priority: Priority::Urgent,
                note,
            };
            let once = EncodedMessage::new(&message).expect("encodes");
            prop_assert_eq!(
                once.event(),
                encoded(&ServerFrame::Message { message: message.clone() })
            );
            prop_assert_eq!(
                once.sent(request.as_ref()).expect("encodes"),
                encoded(&ServerFrame::Sent { id: request, message })
            );
        }
    }

    #[test]
    fn a_history_line_written_in_pieces_is_the_whole_frame() {
        let message = |id: u64, body: &str| Message {
            id,
            ts: Timestamp::from_micros(1_764_000_000_123_456),
            user: Name::parse("ana").expect("valid"),
            from: Role::User,
            agent: None,
            body: Body::parse(body, usize::MAX).expect("valid"),
            priority: Priority::Normal,
            note: false,
        };
        let pages = [
            vec![],
            vec![message(1, "one")],
            vec![message(1, "a \"quote\"\nand a line"), message(7, "ünï")],
        ];
        for id in [
            None,
            Some(RequestId::Int(-3)),
            Some(RequestId::Str("h\"1".into())),
        ] {
            for messages in &pages {
                let mut line = HistoryLine::new(id.clone(), Name::parse("ana").expect("valid"))
                    .expect("encodes");
                let mut pieces = BytesMut::from(line.head());
                for message in messages {
                    line.push(message, &mut pieces).expect("encodes");
                }
                pieces.extend_from_slice(HistoryLine::TAIL);
                let whole = encoded(&ServerFrame::History {
                    id: id.clone(),
                    user: Name::parse("ana").expect("valid"),
                    messages: messages.clone(),
                });
                assert_eq!(pieces.freeze(), whole);
            }
        }
    }

    #[test]
    fn splits_lines_and_accepts_crlf_and_blank_lines() {
        let mut codec = ServerCodec::new(100);
        let items = decode_all(
            &mut codec,
            b"{\"type\":\"ping\",\"id\":1}\r\n\r\n   \n{\"type\":\"bye\"}\n",
        );
        assert_eq!(
            items,
            vec![
                Ok(ClientFrame::Ping {
                    id: Some(RequestId::Int(1))
                }),
                Ok(ClientFrame::Bye { id: None })
            ]
        );
    }

    #[test]
    fn a_frame_split_across_reads_is_put_back_together() {
        let mut codec = ServerCodec::new(100);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for byte in b"{\"type\":\"ping\"}\n" {
            buf.put_u8(*byte);
            if let Some(item) = codec.decode(&mut buf).expect("no I/O error") {
                out.push(item);
            }
        }
        assert_eq!(out, vec![Ok(ClientFrame::Ping { id: None })]);
    }

    #[test]
    fn an_oversize_line_is_reported_once_and_the_next_line_still_works() {
        let mut codec = ServerCodec::new(16);
        let mut buf = BytesMut::from(&b"{\"type\":\"ping\",\"pad\":\""[..]);
        assert_eq!(
            codec
                .decode(&mut buf)
                .expect("ok")
                .map(|i| i.map_err(|e| e.code())),
            Some(Err(ErrorCode::LineTooLong))
        );
        // More of the same line: skipped silently.
        buf.extend_from_slice(&[b'x'; 1000]);
        assert!(codec.decode(&mut buf).expect("ok").is_none());
        assert!(buf.is_empty(), "discarded bytes are not kept");
        buf.extend_from_slice(b"\"}\n{\"type\":\"ping\"}\n");
        assert_eq!(
            codec.decode(&mut buf).expect("ok"),
            Some(Ok(ClientFrame::Ping { id: None }))
        );
    }

    #[test]
    fn an_oversize_line_that_arrives_whole_is_reported() {
        let mut codec = ServerCodec::new(8);
        let items = decode_all(&mut codec, b"{\"type\":\"ping\"}\n{}\n");
        assert_eq!(
            codes(&items),
            vec![Some(ErrorCode::LineTooLong), Some(ErrorCode::BadFrame)]
        );
    }

    #[test]
    fn the_limit_counts_bytes_without_the_line_ending() {
        let line = b"{\"type\":\"ping\"}";
        let mut codec = ServerCodec::new(line.len());
        let mut input = line.to_vec();
        input.extend_from_slice(b"\r\n");
        assert_eq!(
            decode_all(&mut codec, &input),
            vec![Ok(ClientFrame::Ping { id: None })]
        );
    }

    #[test]
    fn bad_lines_are_classified_and_echo_a_usable_id() {
        let mut codec = ServerCodec::new(1000);
        let items = decode_all(
            &mut codec,
            b"{nope\n[1,2]\n{\"id\":5}\n{\"type\":\"dance\",\"id\":\"r9\"}\n{\"type\":7}\n\
              {\"type\":\"send\",\"id\":\"r1\",\"body\":3}\n\xff\xfe\n{\"type\":\"ping\",\"id\":1.5}\n",
        );
        assert_eq!(
            codes(&items),
            vec![
                Some(ErrorCode::BadJson),
                Some(ErrorCode::BadFrame),
                Some(ErrorCode::BadFrame),
                Some(ErrorCode::BadFrame),
                Some(ErrorCode::BadFrame),
                Some(ErrorCode::BadFrame),
                Some(ErrorCode::BadJson),
                Some(ErrorCode::BadFrame),
            ]
        );
        let ids: Vec<_> = items
            .iter()
            .map(|i| i.as_ref().err().and_then(|e| e.request_id().cloned()))
            .collect();
        assert_eq!(ids[2], Some(RequestId::Int(5)));
        assert_eq!(ids[3], Some(RequestId::Str("r9".into())));
        assert_eq!(ids[5], Some(RequestId::Str("r1".into())));
        assert_eq!(ids[7], None, "an id of the wrong kind cannot be echoed");
        let unknown = items[3].as_ref().err().map(ToString::to_string);
        assert_eq!(unknown.as_deref(), Some("unknown frame type \"dance\""));
        let mut bad_role = decode_all(
            &mut codec,
            b"{\"type\":\"hello\",\"role\":\"admin\",\"name\":\"x\"}\n",
        );
        let text = bad_role
            .pop()
            .and_then(|item| item.err())
            .map(|e| e.to_string());
        assert!(
            text.as_deref()
                .is_some_and(|t| t.starts_with("bad \"hello\" frame")),
            "an unknown role is a bad hello, not an unknown frame type: {text:?}"
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let mut codec = ServerCodec::new(1 << 20);
        let mut line = b"{\"type\":\"ping\",\"x\":".to_vec();
        line.extend(std::iter::repeat_n(b'[', 100_000));
        line.push(b'\n');
        let items = decode_all(&mut codec, &line);
        assert_eq!(codes(&items), vec![Some(ErrorCode::BadJson)]);
    }

    /// Issue 15, finding 10: unknown fields are ignored, however deep, as
    /// long as the line fits. A default-size line of brackets is 32K deep.
    #[test]
    fn an_ignored_field_nested_as_deep_as_the_line_allows_is_ignored() {
        let mut codec = ServerCodec::new(DEFAULT_MAX_LINE_BYTES);
        let head = b"{\"type\":\"ping\",\"id\":1,\"x\":";
        let depth = (DEFAULT_MAX_LINE_BYTES - head.len() - 1) / 2;
        let mut line = head.to_vec();
        line.extend(std::iter::repeat_n(b'[', depth));
        line.extend(std::iter::repeat_n(b']', depth));
        line.extend_from_slice(b"}\n");
        assert!(line.len() - 1 <= DEFAULT_MAX_LINE_BYTES && depth > 32_000);
        assert_eq!(
            decode_all(&mut codec, &line),
            vec![Ok(ClientFrame::Ping {
                id: Some(RequestId::Int(1))
            })]
        );
        // 127 deep, the attack test's figure, and a bad frame that deep is
        // still diagnosed as a bad frame, with its id.
        let deep = format!("{}{}", "[".repeat(127), "]".repeat(127));
        let items = decode_all(
            &mut codec,
            format!(
                "{{\"type\":\"ping\",\"x\":{deep}}}\n{{\"type\":\"send\",\"id\":4,\"x\":{deep}}}\n"
            )
            .as_bytes(),
        );
        assert_eq!(items[0], Ok(ClientFrame::Ping { id: None }));
        assert_eq!(
            items[1]
                .as_ref()
                .err()
                .map(|e| (e.code(), e.request_id().cloned())),
            Some((ErrorCode::BadFrame, Some(RequestId::Int(4))))
        );
    }

    #[test]
    fn the_last_line_without_a_newline_counts_at_eof() {
        let mut codec = ServerCodec::new(100);
        let mut buf = BytesMut::from(&b"{\"type\":\"ping\"}"[..]);
        assert!(codec.decode(&mut buf).expect("ok").is_none());
        assert_eq!(
            codec.decode_eof(&mut buf).expect("ok"),
            Some(Ok(ClientFrame::Ping { id: None }))
        );
        assert!(codec.decode_eof(&mut buf).expect("ok").is_none());
    }

    fn arb_id() -> impl Strategy<Value = Option<RequestId>> {
        prop_oneof![
            Just(None),
            any::<i64>().prop_map(|n| Some(RequestId::Int(n))),
            "\\PC{0,64}".prop_map(|s| Some(RequestId::Str(s))),
        ]
    }

    fn arb_client_frame() -> impl Strategy<Value = ClientFrame> {
        let text = "\\PC{0,40}";
        prop_oneof![
            (arb_id(), any::<bool>(), text, proptest::option::of(text)).prop_map(
                |(id, agent, name, token)| ClientFrame::Hello {
                    id,
                    role: if agent { Role::Agent } else { Role::User },
                    name,
                    token: token.map(Token::new)
                }
            ),
            (
                arb_id(),
                proptest::option::of(any::<u64>()),
                proptest::option::of(any::<u32>())
            )
                .prop_map(|(id, since, limit)| ClientFrame::Subscribe {
                    id,
                    since,
                    limit
                }),
            (
                arb_id(),
                proptest::option::of(text),
                text,
                proptest::option::of("\\PC{0,64}"),
                any::<bool>()
            )
                .prop_map(|(id, to, body, key, note)| ClientFrame::Send {
                    id,
                    to,
                    body,
                    key: key.and_then(Key::new),
                    note
                }),
            (arb_id(), text).prop_map(|(id, user)| ClientFrame::Release { id, user }),
            (
                arb_id(),
                proptest::option::of(text),
                proptest::option::of(any::<u64>()),
                proptest::option::of(any::<u32>())
            )
                .prop_map(|(id, user, before, limit)| ClientFrame::History {
                    id,
                    user,
                    before,
                    limit
                }),
            arb_id().prop_map(|id| ClientFrame::Ping { id }),
            arb_id().prop_map(|id| ClientFrame::Bye { id }),
        ]
    }

    fn arb_message() -> impl Strategy<Value = Message> {
        (
            any::<u64>(),
            0i64..253_402_300_799_999_999,
            "[a-z0-9_.-]{1,32}",
            proptest::option::of("[A-Z]{1,32}"),
            "\\PC{0,20}[a-z]",
            0usize..4,
            any::<bool>(),
        )
            .prop_map(|(id, micros, user, agent, body, p, note)| Message {
                // Only an agent writes notes.
                note: note && agent.is_some(),
                id,
                ts: Timestamp::from_micros(micros),
                user: Name::parse(&user).expect("strategy makes valid names"),
                from: if agent.is_some() {
                    Role::Agent
                } else {
                    Role::User
                },
                agent: agent.map(|a| Name::parse(&a).expect("valid")),
                body: Body::parse(&body, 4096).expect("strategy makes valid bodies"),
                priority: Priority::MOST_URGENT_FIRST[p],
            })
    }

    fn arb_name() -> impl Strategy<Value = Name> {
        "[A-Za-z0-9_.-]{1,32}".prop_map(|n| Name::parse(&n).expect("strategy makes valid names"))
    }

    fn arb_role() -> impl Strategy<Value = Role> {
        prop_oneof![Just(Role::User), Just(Role::Agent)]
    }

    fn arb_server_frame() -> impl Strategy<Value = ServerFrame> {
        let text = "\\PC{0,40}";
        prop_oneof![
            (text, text, any::<u32>()).prop_map(|(server, version, protocol)| {
                ServerFrame::Greeting {
                    server,
                    version,
                    protocol,
                }
            }),
            (
                arb_id(),
                arb_role(),
                arb_name(),
                proptest::option::of(text),
                proptest::option::of(any::<u32>()),
                proptest::option::of(any::<bool>())
            )
                .prop_map(|(id, role, name, token, agents_online, supervisor)| {
                    ServerFrame::Welcome {
                        id,
                        role,
                        name,
                        token: token.map(Token::new),
                        agents_online,
                        supervisor,
                    }
                }),
            (arb_id(), any::<u32>(), any::<bool>()).prop_map(|(id, backlog, truncated)| {
                ServerFrame::Subscribed {
                    id,
                    backlog,
                    truncated,
                }
            }),
            (arb_id(), arb_message()).prop_map(|(id, message)| ServerFrame::Sent { id, message }),
            (
                arb_id(),
                arb_name(),
                arb_name(),
                proptest::option::of(arb_name()),
                any::<bool>()
            )
                .prop_map(|(id, user, agent, by, offline)| ServerFrame::Released {
                    id,
                    user,
                    agent,
                    by,
                    reason: offline.then_some(crate::frame::ReleaseReason::AgentOffline)
                }),
            (arb_id(), arb_name(), arb_name())
                .prop_map(|(id, user, agent)| ServerFrame::Resolved { id, user, agent }),
            (
                arb_id(),
                arb_name(),
                proptest::collection::vec(arb_message(), 0..4)
            )
                .prop_map(|(id, user, messages)| ServerFrame::History {
                    id,
                    user,
                    messages
                }),
            arb_id().prop_map(|id| ServerFrame::Pong { id }),
            (arb_id(), 0usize..ErrorCode::ALL.len(), text).prop_map(|(id, code, message)| {
                ServerFrame::Error {
                    id,
                    code: ErrorCode::ALL[code],
                    message,
                }
            }),
            arb_message().prop_map(|message| ServerFrame::Message { message }),
            (
                arb_id(),
                arb_name(),
                arb_name(),
                proptest::option::of(arb_name())
            )
                .prop_map(|(id, user, agent, by)| ServerFrame::Assigned {
                    id,
                    user,
                    agent,
                    by
                }),
            (arb_role(), arb_name(), any::<bool>())
                .prop_map(|(role, name, online)| ServerFrame::Presence { role, name, online }),
            any::<u32>().prop_map(|online| ServerFrame::Agents { online }),
            proptest::option::of(text).prop_map(|reason| ServerFrame::Bye { reason }),
        ]
    }

    proptest! {
        #[test]
        fn any_server_frame_round_trips(frame in arb_server_frame()) {
            let mut buf = BytesMut::new();
            let mut server = ServerCodec::new(usize::MAX);
            server.encode(&frame, &mut buf).expect("encodes");
            let mut client = ClientCodec::new(usize::MAX);
            prop_assert_eq!(client.decode(&mut buf).expect("no I/O error"), Some(Ok(frame)));
            prop_assert!(buf.is_empty());
        }

        #[test]
        fn any_client_frame_round_trips(frame in arb_client_frame()) {
            let mut buf = BytesMut::new();
            let mut client = ClientCodec::new(usize::MAX);
            client.encode(&frame, &mut buf).expect("encodes");
            let mut server = ServerCodec::new(usize::MAX);
            prop_assert_eq!(server.decode(&mut buf).expect("no I/O error"), Some(Ok(frame)));
            prop_assert!(buf.is_empty());
        }

        /// Whatever arrives, in whatever pieces: no panic, bounded memory,
        /// and the stream keeps going.
        #[test]
        fn arbitrary_bytes_never_panic_or_grow_the_buffer(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..20),
            max in 1usize..64,
        ) {
            let mut codec = ServerCodec::new(max);
            let mut buf = BytesMut::new();
            for chunk in chunks {
                buf.extend_from_slice(&chunk);
                while codec.decode(&mut buf).expect("no I/O error").is_some() {}
                prop_assert!(buf.len() <= max + 1);
            }
            let _ = codec.decode_eof(&mut buf).expect("no I/O error");
        }
    }
}
