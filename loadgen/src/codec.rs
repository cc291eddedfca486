//! The generator's codec: newline-delimited lines in, [`Incoming`] frames
//! out; [`ClientFrame`]s and, on the hot path, [`ProbeSend`]s out.
//!
//! Why not the protocol crate's `FrameCodec`: it splits each line off the
//! read buffer into a buffer of its own (reference counts, and a fresh
//! allocation when the read buffer grows again) and writes every `send`
//! through serde. Here a line is parsed where it lies and then dropped from
//! the buffer, and a `send` is written byte by byte: the generator does this
//! five times per message on the cores the server it measures runs on. The
//! line rules are the protocol codec's: a line too long is an error item and
//! the rest of it is skipped, blank lines are skipped, `\r\n` is accepted,
//! and a last line without its newline still counts.

use std::io;

use bytes::{Buf, BufMut, BytesMut};
use switchboard_protocol::codec::encode_into;
use switchboard_protocol::{ClientFrame, FrameError, FromLine, RequestId};
use tokio_util::codec::{Decoder, Encoder};

use crate::probe::{Probe, write_decimal};
use crate::wire::Incoming;

pub struct LoadCodec {
    max_line_bytes: usize,
    /// How much of the buffer is known to hold no newline.
    searched: usize,
    /// Skipping the rest of a line that was too long.
    discarding: bool,
}

impl LoadCodec {
    pub fn new(max_line_bytes: usize) -> Self {
        Self {
            max_line_bytes,
            searched: 0,
            discarding: false,
        }
    }

    fn too_long(&self) -> FrameError {
        FrameError::LineTooLong {
            max: self.max_line_bytes,
        }
    }
}

impl Decoder for LoadCodec {
    type Item = Result<Incoming, FrameError>;
    type Error = io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> io::Result<Option<Self::Item>> {
        loop {
            let newline = memchr::memchr(b'\n', &buf[self.searched..]).map(|at| at + self.searched);
            self.searched = 0;
            let Some(at) = newline else {
                if self.discarding {
                    buf.clear();
                    return Ok(None);
                }
                // One extra byte: a full-length line may be waiting for the
                // `\n` after its `\r`.
                if buf.len() > self.max_line_bytes + 1 {
                    buf.clear();
                    self.discarding = true;
                    return Ok(Some(Err(self.too_long())));
                }
                self.searched = buf.len();
                return Ok(None);
            };
            if std::mem::take(&mut self.discarding) {
                buf.advance(at + 1);
                continue;
            }
            let line = &buf[..at];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let item = if line.len() > self.max_line_bytes {
                Some(Err(self.too_long()))
            } else if line.iter().all(u8::is_ascii_whitespace) {
                None // blank lines are for people at netcat
            } else {
                Some(Incoming::from_line(line))
            };
            buf.advance(at + 1);
            if item.is_some() {
                return Ok(item);
            }
        }
    }

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

impl Encoder<ClientFrame> for LoadCodec {
    type Error = io::Error;

    fn encode(&mut self, frame: ClientFrame, buf: &mut BytesMut) -> io::Result<()> {
        encode_into(&frame, buf)
    }
}

/// A `send` whose body is a [`Probe`]: what every message of the run is.
pub struct ProbeSend<'a> {
    pub request: u64,
    pub tag: &'a str,
    pub probe: Probe,
}

impl Encoder<ProbeSend<'_>> for LoadCodec {
    type Error = io::Error;

    /// `{"type":"send","id":N,"body":"sbload …"}`: the body is ASCII letters,
    /// digits, `=` and spaces, nothing JSON escapes, as long as the tag is
    /// too (run tags are); any other tag goes through serde.
    fn encode(&mut self, send: ProbeSend<'_>, buf: &mut BytesMut) -> io::Result<()> {
        let plain = |b: &u8| b.is_ascii_graphic() && *b != b'"' && *b != b'\\';
        if !send.tag.bytes().all(|b| plain(&b)) {
            let request = i64::try_from(send.request).unwrap_or(i64::MAX);
            let frame = ClientFrame::Send {
                id: Some(RequestId::Int(request)),
                to: None,
                body: send.probe.body(send.tag),
                key: None,
                note: false,
            };
            return encode_into(&frame, buf);
        }
        buf.put_slice(br#"{"type":"send","id":"#);
        write_decimal(send.request, buf);
        buf.put_slice(br#","body":""#);
        send.probe.write_body(send.tag, buf);
        buf.put_slice(b"\"}\n");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_protocol::ServerFrame;

    fn decode_all(codec: &mut LoadCodec, input: &[u8]) -> Vec<Result<Incoming, FrameError>> {
        let mut buf = BytesMut::from(input);
        let mut items = Vec::new();
        while let Some(item) = codec.decode_eof(&mut buf).expect("no I/O error") {
            items.push(item);
        }
        items
    }

    #[test]
    fn lines_follow_the_protocol_codecs_rules() {
        let mut codec = LoadCodec::new(40);
        let long = format!(r#"{{"type":"pong","id":"{}"}}"#, "x".repeat(40));
        let input = format!(
            "{{\"type\":\"pong\",\"id\":1}}\r\n\n  \n{long}\n{{\"type\":\"pong\",\"id\":2}}"
        );
        let items = decode_all(&mut codec, input.as_bytes());
        let ids: Vec<String> = items
            .iter()
            .map(|item| match item {
                Ok(Incoming::Other(ServerFrame::Pong { id: Some(id) })) => id.to_string(),
                Err(FrameError::LineTooLong { max }) => format!("too long {max}"),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(ids, ["1", "too long 40", "2"]);
    }

    #[test]
    fn a_line_split_across_reads_is_read_once_whole() {
        let mut codec = LoadCodec::new(1_000);
        let mut buf = BytesMut::from(&br#"{"type":"pong","#[..]);
        assert!(codec.decode(&mut buf).expect("no I/O error").is_none());
        buf.put_slice(b"\"id\":3}\n");
        match codec.decode(&mut buf).expect("no I/O error") {
            Some(Ok(Incoming::Other(ServerFrame::Pong { id }))) => {
                assert_eq!(id, Some(RequestId::Int(3)));
            }
            other => panic!("{other:?}"),
        }
        assert!(buf.is_empty());
    }

    #[test]
    fn a_probe_send_is_the_send_serde_would_write() {
        let probe = Probe {
            user: 3,
            seq: 17,
            sent_us: 123_456,
        };
        for tag in ["L0a1b2c3d", "odd \"tag\""] {
            let mut buf = BytesMut::new();
            LoadCodec::new(1_000)
                .encode(
                    ProbeSend {
                        request: 17,
                        tag,
                        probe,
                    },
                    &mut buf,
                )
                .expect("encodes");
            assert!(buf.ends_with(b"\n"));
            let sent: ClientFrame = serde_json::from_slice(&buf).expect("valid JSON");
            assert_eq!(
                sent,
                ClientFrame::Send {
                    id: Some(RequestId::Int(17)),
                    to: None,
                    body: probe.body(tag),
                    key: None,
                    note: false,
                }
            );
        }
    }
}
