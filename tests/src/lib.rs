//! End-to-end harness: start the real `switchboard` binary and speak the wire
//! protocol (`PROTOCOL.md`, read as `docs/protocol.md`, "How switchboard reads the open points" says) over TCP.
//!
//! - [`TestServer`]: one server process on `127.0.0.1:0` with its own database in
//!   a temporary directory; killed when dropped, so tests can run in parallel.
//! - [`TestClient`]: one TCP connection that sends JSON lines and receives frames
//!   with a timeout, so a missing frame fails the test instead of hanging it.
//! - [`user`] / [`agent`]: a connection that is already greeted, identified and
//!   subscribed, for tests that are about something else.
//! - [`assert_message`] and friends: the shape every stored message must have.
//!
//! Nothing here sleeps to wait for the server: a test that needs to know that
//! no other event is on its way uses [`TestClient::barrier`] (interpretation 16).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader as AsyncBufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// How long a client waits for a frame before the test fails. Generous: only a
/// broken server ever reaches it.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the server may take to print its `listening on` line, or to exit
/// after SIGTERM.
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(10);

/// How many of the server's last stderr lines are kept, to print when a test fails.
const LOG_LINES_KEPT: usize = 200;

/// The exact first frame of every connection.
pub fn greeting() -> Value {
    json!({"type":"greeting","server":"switchboard","version":"0.1.0","protocol":1})
}

/// The `switchboard` binary: `$SWITCHBOARD_BIN`, else `target/<profile>/switchboard`
/// next to the `deps/` directory holding this test executable. Tests never run
/// cargo themselves.
pub fn switchboard_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("SWITCHBOARD_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test executable has a path");
    let deps = exe
        .parent()
        .expect("the test executable lives in a directory");
    let path = deps.join("..").join("switchboard");
    assert!(
        path.exists(),
        "no switchboard binary at {}: run `cargo build --bin switchboard` first \
         (`cargo test --workspace` builds it), or set SWITCHBOARD_BIN",
        path.display()
    );
    path
}

/// The server's recent stderr, shared with the thread that drains the pipe.
type Log = Arc<Mutex<VecDeque<String>>>;

/// A running `switchboard serve`, with its own temporary database.
pub struct TestServer {
    /// Holds the database; removed when the server is dropped.
    dir: tempfile::TempDir,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    /// The open-file limit the server starts with (`prlimit`), if set.
    open_files: Option<u64>,
    child: Option<Child>,
    addr: SocketAddr,
    log: Log,
}

impl TestServer {
    /// A server with the default limits.
    pub fn start() -> TestServer {
        TestServer::start_with(&[])
    }

    /// A server with extra `serve` flags, e.g. `&["--max-body", "10"]`.
    pub fn start_with(args: &[&str]) -> TestServer {
        TestServer::start_with_env(args, &[])
    }

    /// A server with extra flags and environment variables. When `envs` sets
    /// `SWITCHBOARD_DB` or `SWITCHBOARD_LISTEN`, the matching flag is left out so
    /// that the value really comes from the environment.
    pub fn start_with_env(args: &[&str], envs: &[(&str, &str)]) -> TestServer {
        TestServer::start_limited(args, envs, None)
    }

    /// A server started with a soft and hard open-file limit of `files`
    /// (through `prlimit`, from util-linux).
    pub fn start_with_open_files(files: u64, args: &[&str]) -> TestServer {
        TestServer::start_limited(args, &[], Some(files))
    }

    fn start_limited(args: &[&str], envs: &[(&str, &str)], open_files: Option<u64>) -> TestServer {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
        let envs: Vec<(String, String)> = envs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let db = dir.path().join("switchboard.db");
        let (child, addr, log) = spawn_server(&db, &args, &envs, open_files);
        TestServer {
            dir,
            args,
            envs,
            open_files,
            child: Some(child),
            addr,
            log,
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The database file (shared by the server and the `agent` CLI).
    pub fn db(&self) -> PathBuf {
        self.dir.path().join("switchboard.db")
    }

    /// The temporary directory that holds the database; tests may put other
    /// files (priority rules) there.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Opens a connection and checks the greeting.
    pub async fn connect(&self) -> TestClient {
        TestClient::connect(self.addr).await
    }

    /// Runs `switchboard <args> --db <this server's db>` and returns its output.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(switchboard_bin())
            .args(args)
            .arg("--db")
            .arg(self.db())
            .stdin(Stdio::null())
            .output()
            .expect("run the switchboard CLI")
    }

    /// Provisions an agent with `switchboard agent add NAME` and returns its token.
    pub fn add_agent(&self, name: &str) -> String {
        let output = self.cli(&["agent", "add", name]);
        assert!(
            output.status.success(),
            "`switchboard agent add {name}` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let token = String::from_utf8(output.stdout).expect("the token is UTF-8");
        let token = token.trim().to_string();
        assert!(!token.is_empty(), "`agent add` printed no token");
        token
    }

    /// Graceful restart: SIGTERM, wait for exit code 0, then start again on the
    /// same database and flags (on a new port: use [`TestServer::addr`] again).
    pub fn restart(&mut self) {
        let status = self.terminate();
        assert!(
            status.success(),
            "server exited with {status} after SIGTERM"
        );
        self.respawn();
    }

    /// Crash and restart: SIGKILL (no chance to flush anything), then start again
    /// on the same database. What was acknowledged must survive.
    pub fn kill9_and_restart(&mut self) {
        let mut child = self.child.take().expect("the server is running");
        child.kill().expect("SIGKILL the server");
        child.wait().expect("reap the killed server");
        self.respawn();
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal_and_wait("TERM")
    }

    /// Sends `kill -<signal>` (e.g. `"INT"`) and waits for the process to exit.
    pub fn signal_and_wait(&mut self, signal: &str) -> ExitStatus {
        let mut child = self.child.take().expect("the server is running");
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
        // Polling `try_wait` against a deadline: std has no wait with a timeout,
        // and a server that never exits must fail the test, not hang it.
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("wait for the server") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "server still running {PROCESS_TIMEOUT:?} after SIG{signal}; stderr:\n{}",
                    self.recent_log()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The last lines the server wrote to stderr.
    pub fn recent_log(&self) -> String {
        let log = self
            .log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        log.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// The first line of the server's recent stderr that contains `needle`,
    /// waiting up to 5 s for it: another thread drains the pipe, so a line
    /// the server just wrote may not be there yet.
    pub fn log_line(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let log = self.recent_log();
            if let Some(line) = log.lines().find(|line| line.contains(needle)) {
                return line.to_owned();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no line with {needle:?} in the log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts the server again on the same database and flags after
    /// [`TestServer::terminate`] (on a new port).
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the server is still running");
        self.respawn();
    }

    fn respawn(&mut self) {
        let (child, addr, log) = spawn_server(&self.db(), &self.args, &self.envs, self.open_files);
        self.child = Some(child);
        self.addr = addr;
        self.log = log;
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- last lines of switchboard's stderr ---\n{}",
                self.recent_log()
            );
        }
    }
}

/// Starts `switchboard serve` and reads its stderr until `listening on ADDR`.
/// A thread keeps draining stderr afterwards so the pipe never fills up and
/// blocks the server.
fn spawn_server(
    db: &Path,
    args: &[String],
    envs: &[(String, String)],
    open_files: Option<u64>,
) -> (Child, SocketAddr, Log) {
    let from_env = |key: &str| envs.iter().any(|(k, _)| k == key);
    let mut command = match open_files {
        Some(files) => {
            let mut prlimit = Command::new("prlimit");
            prlimit
                .arg(format!("--nofile={files}:{files}"))
                .arg("--")
                .arg(switchboard_bin());
            prlimit
        }
        None => Command::new(switchboard_bin()),
    };
    command.arg("serve");
    if !from_env("SWITCHBOARD_LISTEN") {
        command.args(["--listen", "127.0.0.1:0"]);
    }
    if !from_env("SWITCHBOARD_DB") {
        command.arg("--db").arg(db);
    }
    command
        .args(args)
        .envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("start switchboard serve");
    let stderr = child.stderr.take().expect("stderr is piped");

    let log: Log = Arc::new(Mutex::new(VecDeque::new()));
    let (found, listening) = mpsc::channel();
    let thread_log = Arc::clone(&log);
    std::thread::spawn(move || {
        let mut found = Some(found);
        for line in BufReader::new(stderr).split(b'\n') {
            let Ok(line) = line else { break };
            let line = strip_ansi(&String::from_utf8_lossy(&line));
            if let Some(addr) = parse_listening(&line)
                && let Some(found) = found.take()
            {
                let _ = found.send(addr);
            }
            let mut log = thread_log
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if log.len() == LOG_LINES_KEPT {
                log.pop_front();
            }
            log.push_back(line);
        }
    });

    match listening.recv_timeout(PROCESS_TIMEOUT) {
        Ok(addr) => (child, addr, log),
        Err(reason) => {
            let _ = child.kill();
            let status = child.wait().ok();
            // Let the drain thread see the end of the pipe before printing.
            let log = log.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            panic!(
                "switchboard serve did not log `listening on 127.0.0.1:PORT` ({reason:?}, \
                 exit status {status:?}); stderr:\n{}",
                log.iter().cloned().collect::<Vec<_>>().join("\n")
            );
        }
    }
}

/// The address in a `... listening on 127.0.0.1:PORT ...` log line.
fn parse_listening(line: &str) -> Option<SocketAddr> {
    let after = &line[line.find("listening on")?..];
    let start = after.find("127.0.0.1:")?;
    let rest = &after[start + "127.0.0.1:".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    format!("127.0.0.1:{digits}").parse().ok()
}

/// Removes terminal colour codes, in case the log is coloured anyway.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ parameters final-letter
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// One TCP connection to the server, speaking newline-delimited JSON.
pub struct TestClient {
    reader: AsyncBufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    /// Names the connection in failure messages (e.g. `ana`, `alice#2`).
    label: String,
    /// Numbers request ids made up by the helpers, so replies can be matched.
    next_request: u64,
}

impl TestClient {
    /// Connects and checks that the server speaks first with the exact greeting.
    pub async fn connect(addr: SocketAddr) -> TestClient {
        let mut client = TestClient::connect_raw(addr).await;
        let first = client.recv().await;
        assert_eq!(first, greeting(), "the first frame must be the greeting");
        client
    }

    /// Connects without reading anything (for tests about the greeting or
    /// about a server that refuses the connection).
    pub async fn connect_raw(addr: SocketAddr) -> TestClient {
        let stream = TcpStream::connect(addr)
            .await
            .expect("connect to switchboard");
        TestClient::from_stream(stream)
    }

    /// Wraps an already connected stream (e.g. one with a small receive buffer).
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

    pub fn from_stream(stream: TcpStream) -> TestClient {
        stream.set_nodelay(true).expect("set TCP_NODELAY");
        let (read, write) = stream.into_split();
        TestClient {
            reader: AsyncBufReader::new(read),
            writer: write,
            label: "client".to_string(),
            next_request: 0,
        }
    }

    /// Names this connection in failure messages.
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

    /// A user's `send` of every body in one write (pipelined); asserts that
    /// each gets `sent` and returns the messages in commit order (by id).
    pub async fn send_messages(&mut self, bodies: &[String]) -> Vec<Value> {
        let requests: Vec<Value> = bodies
            .iter()
            .map(|body| json!({"type":"send","id":self.request_id(),"body":body}))
            .collect();
        let replies = self.pipeline(&requests).await;
        let mut messages: Vec<Value> = replies
            .into_iter()
            .map(|reply| {
                assert_eq!(reply["type"], "sent", "{}: {reply}", self.label);
                reply["message"].clone()
            })
            .collect();
        messages.sort_by_key(id_of);
        messages
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
    pub async fn next_frame_within(&mut self, timeout: Duration) -> Option<Option<Value>> {
        let mut line = Vec::new();
        let read = tokio::time::timeout(timeout, self.reader.read_until(b'\n', &mut line));
        match read.await {
            Err(_) => None,
            Ok(Err(error)) if error.kind() == std::io::ErrorKind::ConnectionReset => Some(None),
            Ok(Err(error)) => panic!("{}: read failed: {error}", self.label),
            Ok(Ok(0)) => Some(None),
            Ok(Ok(_)) => Some(Some(self.parse_line(line))),
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
                Ok(Ok(_)) => frames.push(self.parse_line(line)),
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

    /// `hello` as a user never seen before: asserts `welcome` with a token and
    /// returns it (with the whole welcome frame).
    pub async fn hello_new_user(&mut self, name: &str) -> (String, Value) {
        let welcome = self
            .request(json!({"type":"hello","role":"user","name":name}))
            .await;
        assert_eq!(welcome["type"], "welcome", "{}: {welcome}", self.label);
        assert_eq!(welcome["role"], "user");
        assert_eq!(welcome["name"], name);
        let token = welcome["token"]
            .as_str()
            .expect("a new user's welcome carries a token");
        (token.to_string(), welcome)
    }

    /// `hello` as a returning user; asserts `welcome` and returns it.
    pub async fn hello_user(&mut self, name: &str, token: &str) -> Value {
        let hello = json!({"type":"hello","role":"user","name":name,"token":token});
        let welcome = self.request(hello).await;
        assert_eq!(welcome["type"], "welcome", "{}: {welcome}", self.label);
        assert_eq!(welcome["role"], "user");
        assert_eq!(welcome["name"], name);
        welcome
    }

    /// `hello` as an agent; asserts `welcome` and returns it.
    pub async fn hello_agent(&mut self, name: &str, token: &str) -> Value {
        let hello = json!({"type":"hello","role":"agent","name":name,"token":token});
        let welcome = self.request(hello).await;
        assert_eq!(welcome["type"], "welcome", "{}: {welcome}", self.label);
        assert_eq!(welcome["role"], "agent");
        assert_eq!(welcome["name"], name);
        welcome
    }

    /// Sends `subscribe` (plus the fields in `extra`, e.g. `{"since": 4}`) and
    /// returns the frames that came before `subscribed`, and `subscribed` itself.
    pub async fn subscribe_with(&mut self, extra: Value) -> (Vec<Value>, Value) {
        let id = self.request_id();
        let mut frame = json!({"type":"subscribe","id":id});
        for (key, value) in extra.as_object().expect("extra fields are an object") {
            frame[key] = value.clone();
        }
        self.send(&frame).await;
        let mut before = Vec::new();
        loop {
            let frame = self.recv().await;
            if frame["type"] == "subscribed" {
                assert_eq!(
                    frame["id"], id,
                    "{}: `subscribed` echoes the id",
                    self.label
                );
                return (before, frame);
            }
            assert_ne!(
                frame["type"], "error",
                "{}: subscribe failed: {frame}",
                self.label
            );
            before.push(frame);
        }
    }

    /// `subscribe` with no options.
    pub async fn subscribe(&mut self) -> (Vec<Value>, Value) {
        self.subscribe_with(json!({})).await
    }

    /// A user's `send`: asserts `sent` echoing the id and returns the message.
    pub async fn send_message(&mut self, body: &str) -> Value {
        let sent = self.request(json!({"type":"send","body":body})).await;
        assert_eq!(sent["type"], "sent", "{}: {sent}", self.label);
        sent["message"].clone()
    }

    /// An agent's `send` to a user: asserts `sent` and returns the message.
    pub async fn send_to(&mut self, user: &str, body: &str) -> Value {
        let sent = self
            .request(json!({"type":"send","to":user,"body":body}))
            .await;
        assert_eq!(sent["type"], "sent", "{}: {sent}", self.label);
        sent["message"].clone()
    }

    /// An agent's first `send` to an unassigned user on a *subscribed*
    /// connection: the agent takes the user, so `assigned` arrives before
    /// `sent` (interpretation 2). Returns the message.
    pub async fn send_to_assigning(&mut self, user: &str, body: &str) -> Value {
        let id = self.request_id();
        self.send(&json!({"type":"send","id":id,"to":user,"body":body}))
            .await;
        let event = self.recv_type("assigned").await;
        assert_eq!(event["user"], user, "{}: {event}", self.label);
        assert!(
            event.get("id").is_none_or(Value::is_null),
            "events carry no id: {event}"
        );
        let sent = self.recv_type("sent").await;
        assert_eq!(
            sent["id"], id,
            "{}: `sent` echoes the id: {sent}",
            self.label
        );
        assert_eq!(
            event["agent"], sent["message"]["agent"],
            "the sender is assigned: {event}"
        );
        sent["message"].clone()
    }

    /// `history` (with `user` when given, plus the fields in `extra`); asserts
    /// the reply and returns its messages.
    pub async fn history(&mut self, user: Option<&str>, extra: Value) -> Vec<Value> {
        let mut frame = json!({"type":"history"});
        if let Some(user) = user {
            frame["user"] = json!(user);
        }
        for (key, value) in extra.as_object().expect("extra fields are an object") {
            frame[key] = value.clone();
        }
        let reply = self.request(frame).await;
        assert_eq!(reply["type"], "history", "{}: {reply}", self.label);
        reply["messages"]
            .as_array()
            .expect("history has a messages array")
            .clone()
    }

    /// Says `bye` and waits for the server to close the connection.
    pub async fn bye(mut self) {
        self.send(&json!({"type":"bye"})).await;
        self.expect_closed().await;
    }
}

/// A new user `name`: connected, identified (the user is created) and
/// subscribed, with everything up to `subscribed` consumed. Returns the token.
pub async fn user(server: &TestServer, name: &str) -> (TestClient, String) {
    let mut client = server.connect().await.labelled(name);
    let (token, _) = client.hello_new_user(name).await;
    client.subscribe().await;
    (client, token)
}

/// Another subscribed connection of an existing user, with everything up to
/// `subscribed` consumed.
pub async fn user_again(server: &TestServer, name: &str, token: &str) -> TestClient {
    let mut client = server.connect().await.labelled(name);
    client.hello_user(name, token).await;
    client.subscribe().await;
    client
}

/// A subscribed connection of a provisioned agent, with the backlog and state
/// events up to `subscribed` consumed.
pub async fn agent(server: &TestServer, name: &str, token: &str) -> TestClient {
    let mut client = server.connect().await.labelled(name);
    client.hello_agent(name, token).await;
    client.subscribe().await;
    client
}

/// An identified connection that did not subscribe: it gets only replies
/// (interpretation 3).
pub async fn unsubscribed_user(server: &TestServer, name: &str) -> (TestClient, String) {
    let mut client = server.connect().await.labelled(name);
    let (token, _) = client.hello_new_user(name).await;
    (client, token)
}

/// The event a subscribed agent gets when a user's first connection subscribes
/// (`true`) or the last one closes (`false`).
pub fn presence(name: &str, online: bool) -> Value {
    json!({"type":"presence","role":"user","name":name,"online":online})
}

/// The event announcing that `agent` now holds `user`'s conversation.
pub fn assigned(user: &str, agent: &str) -> Value {
    json!({"type":"assigned","user":user,"agent":agent})
}

/// The event announcing that `agent` released `user`'s conversation.
pub fn released(user: &str, agent: &str) -> Value {
    json!({"type":"released","user":user,"agent":agent})
}

/// Asserts an error frame: `type`, the echoed `id` (or null), the `code` and a
/// human-readable `message`.
pub fn assert_error(frame: &Value, id: Value, code: &str) {
    assert_eq!(frame["type"], "error", "expected an error, got {frame}");
    assert_eq!(frame["code"], code, "wrong error code in {frame}");
    assert_eq!(
        frame.get("id"),
        Some(&id),
        "the error must echo the id (or say null): {frame}"
    );
    assert!(
        frame["message"].is_string(),
        "an error carries a message for people: {frame}"
    );
}

/// Asserts the shape of a stored message and its content.
pub fn assert_message(
    message: &Value,
    user: &str,
    agent: Option<&str>,
    body: &str,
    priority: &str,
) {
    assert!(
        message["id"].is_u64(),
        "message id must be an integer: {message}"
    );
    assert_timestamp(&message["ts"]);
    assert_eq!(message["user"], user, "{message}");
    let from = if agent.is_some() { "agent" } else { "user" };
    assert_eq!(message["from"], from, "{message}");
    assert_eq!(message.get("agent"), Some(&json!(agent)), "{message}");
    assert_eq!(message["body"], body, "{message}");
    assert_eq!(message["priority"], priority, "{message}");
}

/// Asserts `YYYY-MM-DDTHH:MM:SS.ffffffZ`: RFC 3339, UTC, microseconds, fixed width.
pub fn assert_timestamp(ts: &Value) {
    let ts = ts
        .as_str()
        .unwrap_or_else(|| panic!("ts must be a string: {ts}"));
    let shape = "dddd-dd-ddTdd:dd:dd.ddddddZ";
    let matches = ts.len() == shape.len()
        && ts.bytes().zip(shape.bytes()).all(|(c, s)| match s {
            b'd' => c.is_ascii_digit(),
            s => c == s,
        });
    assert!(
        matches,
        "ts {ts:?} is not fixed-width RFC 3339 UTC with microseconds"
    );
}

/// The `id` of a message, as an integer.
pub fn id_of(message: &Value) -> u64 {
    message["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("message without integer id: {message}"))
}

/// The messages among frames (the `message` events of a backlog), in order.
pub fn messages_in(frames: &[Value]) -> Vec<Value> {
    frames
        .iter()
        .filter(|frame| frame["type"] == "message")
        .map(|frame| frame["message"].clone())
        .collect()
}

/// The ids of messages, in order.
pub fn ids(messages: &[Value]) -> Vec<u64> {
    messages.iter().map(id_of).collect()
}

/// `count` numbered bodies: `prefix0`, `prefix1`, …
pub fn numbered(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}{i}")).collect()
}

/// The bodies of messages, in order.
pub fn bodies(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m["body"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The `switchboard-tui` binary: `$SWITCHBOARD_TUI_BIN`, else
/// `target/<profile>/switchboard-tui` next to the `deps/` directory holding
/// this test executable (the same lookup as [`switchboard_bin`]).
pub fn tui_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("SWITCHBOARD_TUI_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test executable has a path");
    let deps = exe
        .parent()
        .expect("the test executable lives in a directory");
    let path = deps.join("..").join("switchboard-tui");
    assert!(
        path.exists(),
        "no switchboard-tui binary at {}: run `cargo build --bin switchboard-tui` first, \
         or set SWITCHBOARD_TUI_BIN",
        path.display()
    );
    path
}

/// Writes a self-signed certificate for `127.0.0.1` and `localhost` as
/// `cert.pem` and `key.pem` in `dir`, for `serve --tls-cert --tls-key`, and
/// returns the certificate (DER) for a client to trust.
pub fn write_self_signed_certificate(dir: &Path) -> Vec<u8> {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let certified = rcgen::generate_simple_self_signed(names).expect("rcgen makes a certificate");
    std::fs::write(dir.join("cert.pem"), certified.cert.pem()).expect("write cert.pem");
    std::fs::write(dir.join("key.pem"), certified.signing_key.serialize_pem())
        .expect("write key.pem");
    certified.cert.der().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_port_in_a_log_line() {
        let line = "2026-11-24T11:16:27Z  INFO switchboard: listening on 127.0.0.1:40123";
        assert_eq!(
            parse_listening(line),
            Some("127.0.0.1:40123".parse().unwrap())
        );
        let line = "INFO listening on addr=127.0.0.1:7 more";
        assert_eq!(parse_listening(line), Some("127.0.0.1:7".parse().unwrap()));
        assert_eq!(parse_listening("INFO starting"), None);
    }

    #[test]
    fn strips_colours() {
        assert_eq!(
            strip_ansi("\u{1b}[32mINFO\u{1b}[0m listening"),
            "INFO listening"
        );
    }

    #[test]
    fn checks_timestamps() {
        assert_timestamp(&json!("2026-11-24T11:16:27.123456Z"));
        let bad = [
            "2026-11-24T11:16:27.123Z",
            "2026-11-24T11:16:27.123456+00:00",
            "x",
        ];
        for ts in bad {
            assert!(
                std::panic::catch_unwind(|| assert_timestamp(&json!(ts))).is_err(),
                "{ts}"
            );
        }
    }
}
