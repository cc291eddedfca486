//! [`TestClient`]: one TCP connection that sends JSON lines and receives
//! frames with a timeout, so a missing frame fails the test instead of hanging
//! it. This is the transport only (bytes, lines, ids, replies, the close);
//! the protocol's requests (`hello`, `subscribe`, `send`, …) are in
//! [`crate::session`], and connecting with the greeting awaited and retried
//! ([`TestClient::connect`]) in [`crate::greeted`].

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader as AsyncBufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::assert::assert_error;

/// How long a client waits for a frame before the test fails. Generous: only a
/// broken server ever reaches it.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(5);

/// One TCP connection to the server, speaking newline-delimited JSON.
pub struct TestClient {
    reader: AsyncBufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    /// Names the connection in failure messages (e.g. `ana`, `alice#2`);
    /// the session helpers put it in theirs too.
    pub(crate) label: String,
    /// Numbers request ids made up by the helpers, so replies can be matched.
    next_request: u64,
    /// Whether reads return agents' `presence` events (protocol version 2).
    /// Off by default: every agent hears every other agent come and go, and
    /// a test about something else would have to read past them; the tests
    /// of agent presence turn it on ([`TestClient::seeing_agent_presence`]).
    sees_agent_presence: bool,
}

impl TestClient {
    /// Connects without reading anything (for tests about the greeting or
    /// about a server that refuses the connection).
    pub async fn connect_raw(addr: SocketAddr) -> TestClient {
        let stream = TcpStream::connect(addr)
            .await
            .expect("connect to switchboard");
        TestClient::from_stream(stream)
    }

    /// A raw connection from 127.0.0.2: another client address on the same
    /// loopback, for the limits the server keeps per address.
    pub async fn connect_from_another_address(addr: SocketAddr) -> TestClient {
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket
            .bind("127.0.0.2:0".parse().expect("an address"))
            .expect("127.0.0.2 is loopback too");
        let stream = socket.connect(addr).await.expect("connect to switchboard");
        TestClient::from_stream(stream)
    }

    /// Wraps an already connected stream (e.g. one with a small receive buffer).
    pub fn from_stream(stream: TcpStream) -> TestClient {
        stream.set_nodelay(true).expect("set TCP_NODELAY");
        let (read, write) = stream.into_split();
        TestClient {
            reader: AsyncBufReader::new(read),
            writer: write,
            label: "client".to_string(),
            next_request: 0,
            sees_agent_presence: false,
        }
    }

    /// Names this connection in failure messages.
    /// What failures call this connection.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Reads return agents' `presence` events too.
    pub fn seeing_agent_presence(mut self) -> TestClient {
        self.sees_agent_presence = true;
        self
    }

    pub fn labelled(mut self, label: &str) -> TestClient {
        self.label = label.to_string();
        self
    }

    /// Sends one frame as one JSON line.
    pub async fn send(&mut self, frame: &Value) {
        let mut line = serde_json::to_vec(frame).expect("serialize a frame");
        line.push(b'\n');
        self.send_raw(&line).await;
    }

    /// Sends several frames in a single write, so the server receives them
    /// together (pipelining).
    pub async fn send_many(&mut self, frames: &[Value]) {
        let mut bytes = Vec::new();
        for frame in frames {
            bytes.extend(serde_json::to_vec(frame).expect("serialize a frame"));
            bytes.push(b'\n');
        }
        self.send_raw(&bytes).await;
    }

    /// Sends every request in one write and returns their replies in request
    /// order. Replies are matched by `id`, which PROTOCOL.md guarantees; the
    /// server also keeps request order (docs/protocol.md, point 19), which
    /// `framing.rs` tests on its own. The requests must carry distinct ids,
    /// and no event may arrive meanwhile.
    pub async fn pipeline(&mut self, requests: &[Value]) -> Vec<Value> {
        self.send_many(requests).await;
        self.collect_replies(requests).await
    }

    /// Receives one reply for each of `requests` (already sent), matched by
    /// `id`, and returns them in request order.
    pub async fn collect_replies(&mut self, requests: &[Value]) -> Vec<Value> {
        let mut replies: Vec<Option<Value>> = vec![None; requests.len()];
        for _ in requests {
            let reply = self.recv().await;
            let index = requests
                .iter()
                .position(|request| request["id"] == reply["id"]);
            let Some(index) = index else {
                panic!(
                    "{}: a frame that answers none of the requests: {reply}",
                    self.label
                )
            };
            assert!(
                replies[index].is_none(),
                "{}: a second reply: {reply}",
                self.label
            );
            replies[index] = Some(reply);
        }
        replies.into_iter().flatten().collect()
    }

    /// Sends bytes as they are (no newline added).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        if let Err(error) = self.try_send_raw(bytes).await {
            panic!("{}: write failed: {error}", self.label);
        }
    }

    /// Sends bytes, reporting a write error instead of failing (for connections
    /// the server may already have closed).
    pub async fn try_send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes).await?;
        self.writer.flush().await
    }

    /// The next frame; fails the test on timeout, end of stream or invalid JSON.
    pub async fn recv(&mut self) -> Value {
        match self.next_frame().await {
            Some(frame) => frame,
            None => panic!(
                "{}: connection closed while a frame was expected",
                self.label
            ),
        }
    }

    /// The next frame, asserting its type.
    pub async fn recv_type(&mut self, frame_type: &str) -> Value {
        let frame = self.recv().await;
        assert_eq!(
            frame["type"], frame_type,
            "{}: expected a `{frame_type}` frame, got {frame}",
            self.label
        );
        frame
    }

    /// The next frame, asserting it is an error with this `id` (`Value::Null`
    /// for none) and `code`, and that it has a human-readable `message`.
    pub async fn recv_error(&mut self, id: Value, code: &str) -> Value {
        let frame = self.recv_type("error").await;
        assert_error(&frame, id, code);
        frame
    }

    /// The next frame, asserting it is a `message` event (no `id`), and
    /// returning the message inside.
    pub async fn recv_message(&mut self) -> Value {
        let frame = self.recv_type("message").await;
        assert!(
            frame.get("id").is_none_or(Value::is_null),
            "events carry no id: {frame}"
        );
        frame["message"].clone()
    }

    /// The next frame or `None` at end of stream (a reset counts as the end).
    /// Fails the test after [`RECV_TIMEOUT`].
    pub async fn next_frame(&mut self) -> Option<Value> {
        match self.next_frame_within(RECV_TIMEOUT).await {
            Some(frame) => frame,
            None => panic!("{}: no frame within {RECV_TIMEOUT:?}", self.label),
        }
    }

    /// Like [`TestClient::next_frame`] with a chosen timeout: `None` if nothing
    /// arrived in time, `Some(None)` at end of stream.
    /// Agents' `presence` events are passed over unless
    /// [`TestClient::seeing_agent_presence`].
    pub async fn next_frame_within(&mut self, timeout: Duration) -> Option<Option<Value>> {
        // A timeout too long to add to now (`Duration::MAX`: wait forever)
        // is as good as a year.
        let deadline = tokio::time::Instant::now()
            .checked_add(timeout)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(365 * 86_400));
        loop {
            let mut line = Vec::new();
            let read = tokio::time::timeout_at(deadline, self.reader.read_until(b'\n', &mut line));
            let frame = match read.await {
                Err(_) => return None,
                Ok(Err(error)) if error.kind() == std::io::ErrorKind::ConnectionReset => {
                    return Some(None);
                }
                Ok(Err(error)) => panic!("{}: read failed: {error}", self.label),
                Ok(Ok(0)) => return Some(None),
                Ok(Ok(_)) => self.parse_line(line),
            };
            let agent_presence = frame["type"] == "presence" && frame["role"] == "agent";
            if self.sees_agent_presence || !agent_presence {
                return Some(Some(frame));
            }
        }
    }

    fn parse_line(&self, mut line: Vec<u8>) -> Value {
        assert_eq!(
            line.pop(),
            Some(b'\n'),
            "{}: frame cut off by end of stream",
            self.label
        );
        match serde_json::from_slice(&line) {
            Ok(frame) => frame,
            Err(error) => panic!(
                "{}: server sent a line that is not JSON ({error}): {:?}",
                self.label,
                String::from_utf8_lossy(&line)
            ),
        }
    }

    /// Reads to the end of the stream: the complete frames, and the bytes of
    /// a last line the close cut short (empty if none).
    pub async fn read_until_closed(&mut self) -> (Vec<Value>, Vec<u8>) {
        let mut frames = Vec::new();
        loop {
            let mut line = Vec::new();
            let read = tokio::time::timeout(RECV_TIMEOUT, self.reader.read_until(b'\n', &mut line));
            match read.await {
                Err(_) => panic!("{}: not closed within {RECV_TIMEOUT:?}", self.label),
                Ok(Err(error)) if error.kind() == std::io::ErrorKind::ConnectionReset => {
                    return (frames, Vec::new());
                }
                Ok(Err(error)) => panic!("{}: read failed: {error}", self.label),
                Ok(Ok(0)) => return (frames, Vec::new()),
                Ok(Ok(_)) if line.last() != Some(&b'\n') => return (frames, line),
                Ok(Ok(_)) => {
                    let frame = self.parse_line(line);
                    let agent_presence = frame["type"] == "presence" && frame["role"] == "agent";
                    if self.sees_agent_presence || !agent_presence {
                        frames.push(frame);
                    }
                }
            }
        }
    }

    /// Asserts that the server closes the connection without sending anything
    /// more. Receive the frames that should come first before calling this.
    pub async fn expect_closed(&mut self) {
        if let Some(frame) = self.next_frame().await {
            panic!(
                "{}: expected the connection to close, got {frame}",
                self.label
            );
        }
    }

    /// Drains frames whose type is one of `allowed` until the server closes the
    /// connection, and returns them; any other frame fails the test.
    pub async fn expect_closed_after(&mut self, allowed: &[&str]) -> Vec<Value> {
        let mut drained = Vec::new();
        while let Some(frame) = self.next_frame().await {
            let expected = allowed
                .iter()
                .any(|frame_type| frame["type"] == *frame_type);
            assert!(
                expected,
                "{}: expected only {allowed:?} before the close, got {frame}",
                self.label
            );
            drained.push(frame);
        }
        drained
    }

    /// Sends `ping` with a fresh id and asserts that the very next frame is its
    /// `pong`. Per interpretation 16, the pong comes only after every event
    /// already caused for this connection, so this proves nothing else is owed.
    pub async fn barrier(&mut self) {
        self.next_request += 1;
        let id = format!("barrier-{}", self.next_request);
        self.send(&json!({"type":"ping","id":id})).await;
        let frame = self.recv().await;
        assert_eq!(
            frame,
            json!({"type":"pong","id":id}),
            "{}: an unexpected frame arrived before the barrier's pong",
            self.label
        );
    }

    /// A fresh request id, for helpers and tests that do not care which.
    pub fn request_id(&mut self) -> String {
        self.next_request += 1;
        format!("req-{}", self.next_request)
    }

    /// Sends a request and returns the next frame, checking that it echoes the id.
    pub async fn request(&mut self, mut frame: Value) -> Value {
        let id = match frame.get("id") {
            Some(id) => id.clone(),
            None => {
                let id = json!(self.request_id());
                frame["id"] = id.clone();
                id
            }
        };
        self.send(&frame).await;
        let reply = self.recv().await;
        assert_eq!(
            reply["id"], id,
            "{}: the reply must echo the id: {reply}",
            self.label
        );
        reply
    }
}
