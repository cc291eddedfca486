//! The terminal client end to end: the real server and two real
//! `switchboard-tui` processes (a customer and an agent) in tmux, driven with
//! `send-keys` and read back with `capture-pane`.
//!
//! Waiting polls the screen until the expected text shows up or a deadline
//! passes: the screen is the only thing a user can observe, so there is no
//! event to wait on instead. Skipped (with a message) if tmux is missing.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use switchboard_tests::{NO_SEND_LIMITS, TestServer, tui_bin, write_self_signed_certificate};

/// How long a screen may take to show what the test waits for.
const SCREEN_TIMEOUT: Duration = Duration::from_secs(15);
/// How often the screen is read while waiting.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// A private tmux server (its own socket), killed when dropped.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    fn new(dir: &Path) -> Tmux {
        Tmux {
            socket: dir.join("tmux.sock"),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux")
    }

    /// Starts `command` (a shell line) in a detached 100×30 session.
    fn start(&self, session: &str, command: &str) {
        // Keep the pane after the client exits, so a crash shows its message.
        let line = format!("{command}; echo \"[exited with $?]\"; sleep 600");
        let out = self.run(&[
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            "100",
            "-y",
            "30",
            &line,
        ]);
        assert!(out.status.success(), "tmux new-session: {out:?}");
    }

    fn screen(&self, session: &str) -> String {
        let out = self.run(&["capture-pane", "-p", "-t", session]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types `text` literally, then presses Enter.
    fn type_line(&self, session: &str, text: &str) {
        let out = self.run(&["send-keys", "-t", session, "-l", text]);
        assert!(out.status.success(), "send-keys: {out:?}");
        let out = self.run(&["send-keys", "-t", session, "Enter"]);
        assert!(out.status.success(), "send-keys Enter: {out:?}");
    }

    fn keys(&self, session: &str, keys: &str) {
        let out = self.run(&["send-keys", "-t", session, keys]);
        assert!(out.status.success(), "send-keys: {out:?}");
    }

    /// Turns the mouse wheel over the pane `times` notches, as a terminal
    /// reports it to a program that asked for the mouse (SGR encoding:
    /// button 64 is up, 65 down).
    fn wheel(&self, session: &str, up: bool, times: usize) {
        let report = format!("\x1b[<{};10;10M", if up { 64 } else { 65 });
        let bytes: Vec<String> = report.bytes().map(|b| format!("{b:02x}")).collect();
        for _ in 0..times {
            let mut args = vec!["send-keys", "-t", session, "-H"];
            args.extend(bytes.iter().map(String::as_str));
            let out = self.run(&args);
            assert!(out.status.success(), "send-keys -H: {out:?}");
        }
    }

    /// Waits until every one of `needles` is on one screen; returns it.
    fn wait_for(&self, session: &str, needles: &[&str], server: &TestServer) -> String {
        self.wait_for_without(session, needles, &[], server)
    }

    /// Waits until every one of `needles` and none of `gone` is on one
    /// screen; returns it. For a state that follows another (a message
    /// shown as pending, then as stored), so the test does not race the
    /// server's reply.
    fn wait_for_without(
        &self,
        session: &str,
        needles: &[&str],
        gone: &[&str],
        server: &TestServer,
    ) -> String {
        let deadline = Instant::now() + SCREEN_TIMEOUT;
        loop {
            let screen = self.screen(session);
            if needles.iter().all(|n| screen.contains(n))
                && !gone.iter().any(|g| screen.contains(g))
            {
                return screen;
            }
            if Instant::now() > deadline {
                panic!(
                    "{session}: {needles:?} without {gone:?} not on screen after \
                     {SCREEN_TIMEOUT:?}:\n{screen}\n--- server log ---\n{}",
                    server.recent_log()
                );
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// Whether tmux is here; says the test is skipped if not.
fn tmux_available() -> bool {
    let installed = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|out| out.status.success());
    if !installed {
        eprintln!("SKIPPED: tmux is not installed (the CI image installs it: .ci/run)");
    }
    installed
}

#[test]
fn a_customer_and_an_agent_talk_through_the_terminal_client() {
    if !tmux_available() {
        return;
    }
    let server = TestServer::start_with(NO_SEND_LIMITS);
    let token = server.add_agent("alice");
    let home = tempfile::tempdir().expect("temporary directory");
    let config = home.path().join("config");
    let tmux = Tmux::new(home.path());
    let tui = tui_bin();
    let addr = server.addr().to_string();

    tmux.start(
        "user",
        &format!(
            "env XDG_CONFIG_HOME='{}' '{}' user ana --server {addr}",
            config.display(),
            tui.display()
        ),
    );
    tmux.start(
        "agent",
        &format!(
            "env SWITCHBOARD_TOKEN='{token}' XDG_CONFIG_HOME='{}' '{}' agent alice --server {addr}",
            config.display(),
            tui.display()
        ),
    );
    tmux.wait_for("user", &["ana", "online", "waiting for an agent"], &server);
    tmux.wait_for("agent", &["alice (agent)", "online", "Queue"], &server);

    // The first run registered ana and kept her token, owner-only.
    let token_file = config
        .join("switchboard")
        .join(format!("{}_ana.token", addr.replace(':', "_")));
    let mode = std::fs::metadata(&token_file)
        .unwrap_or_else(|e| panic!("no token file at {}: {e}", token_file.display()))
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    tmux.type_line("user", "My card was charged twice");
    tmux.wait_for("user", &["ana (you)", "My card was charged twice"], &server);
    // In the agent's queue (a `refund`/`charged` word makes it high priority),
    // selected, with the prompt naming her.
    let agent_screen = tmux.wait_for(
        "agent",
        &["● ana", "HIGH", "My card was charged twice", "to ana ›"],
        &server,
    );
    assert!(agent_screen.contains("Queue (1)"), "{agent_screen}");

    tmux.type_line("agent", "Sorry about that, refunding one now");
    tmux.wait_for("agent", &["alice (you)", "Sorry about that"], &server);
    let user_screen = tmux.wait_for(
        "user",
        &[
            "alice (agent)",
            "Sorry about that, refunding one now",
            "agent: alice",
        ],
        &server,
    );
    assert!(
        user_screen.find("My card").unwrap_or(usize::MAX)
            < user_screen.find("Sorry about").unwrap_or(0),
        "oldest first:\n{user_screen}"
    );

    // Ctrl-C quits cleanly (exit status 0), leaving the normal screen.
    tmux.keys("user", "C-c");
    tmux.wait_for("user", &["[exited with 0]"], &server);
    tmux.keys("agent", "C-c");
    tmux.wait_for("agent", &["[exited with 0]"], &server);
}

/// The server goes away and comes back on the same port: both clients show
/// "reconnecting…", resume with `since`, and a message typed while the server
/// was down is delivered once, not lost and not doubled.
#[test]
fn clients_reconnect_and_nothing_is_lost_or_doubled() {
    if !tmux_available() {
        return;
    }
    // A fixed port, so that the restarted server is where the clients look.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut server =
        TestServer::start_with_env(NO_SEND_LIMITS, &[("SWITCHBOARD_LISTEN", listen.as_str())]);
    let token = server.add_agent("alice");
    let home = tempfile::tempdir().expect("temporary directory");
    let config = home.path().join("config");
    let tmux = Tmux::new(home.path());
    let tui = tui_bin();
    tmux.start(
        "user",
        &format!(
            "env XDG_CONFIG_HOME='{}' '{}' user ana --server {listen}",
            config.display(),
            tui.display()
        ),
    );
    tmux.start(
        "agent",
        &format!(
            "env SWITCHBOARD_TOKEN='{token}' '{}' agent alice --server {listen}",
            tui.display()
        ),
    );
    tmux.wait_for("user", &["● online"], &server);
    tmux.wait_for("agent", &["● online"], &server);
    tmux.type_line("user", "before the restart");
    tmux.wait_for("agent", &["before the restart"], &server);

    let status = server.terminate();
    assert!(status.success(), "server exit: {status:?}");
    tmux.wait_for("user", &["reconnecting"], &server);
    tmux.wait_for("agent", &["reconnecting"], &server);
    tmux.type_line("user", "typed while the server was down");
    tmux.wait_for(
        "user",
        &["sending…", "typed while the server was down"],
        &server,
    );

    server.start_again();
    let agent = tmux.wait_for(
        "agent",
        &["● online", "typed while the server was down"],
        &server,
    );
    // Confirmed after the resend: no longer shown as pending.
    let user = tmux.wait_for_without(
        "user",
        &["● online", "typed while the server was down"],
        &["sending…"],
        &server,
    );
    for (who, screen) in [("user", &user), ("agent", &agent)] {
        for line in ["before the restart", "typed while the server was down"] {
            assert_eq!(
                screen.matches(line).count(),
                1,
                "{who} shows {line:?} once:\n{screen}"
            );
        }
    }
}

#[test]
fn a_wrong_agent_token_is_a_plain_error_before_the_full_screen() {
    let server = TestServer::start();
    let out = Command::new(tui_bin())
        .args(["agent", "alice", "--server", &server.addr().to_string()])
        .env("SWITCHBOARD_TOKEN", "not-a-token")
        .output()
        .expect("run switchboard-tui");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unauthorized"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing drawn: {:?}", out.stdout);
}

#[test]
fn an_unreachable_server_is_a_plain_error() {
    // A port nothing listens on: bound, then released.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let config = tempfile::tempdir().expect("temporary directory");
    let out = Command::new(tui_bin())
        .args(["user", "ana", "--server", &addr.to_string()])
        .env("XDG_CONFIG_HOME", config.path())
        .output()
        .expect("run switchboard-tui");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot reach the switchboard server"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing drawn: {:?}", out.stdout);
}

/// `--tls --ca FILE`: the customer's client reaches a TLS server that uses a
/// self-signed certificate, trusting exactly that certificate.
#[test]
fn the_terminal_client_speaks_tls() {
    if !tmux_available() {
        return;
    }
    let certs = tempfile::tempdir().expect("temporary directory");
    write_self_signed_certificate(certs.path());
    let cert = certs.path().join("cert.pem");
    let key = certs.path().join("key.pem");
    let server = TestServer::start_with(&[
        "--tls-cert",
        cert.to_str().expect("utf-8"),
        "--tls-key",
        key.to_str().expect("utf-8"),
    ]);
    let home = tempfile::tempdir().expect("temporary directory");
    let tmux = Tmux::new(home.path());
    tmux.start(
        "user",
        &format!(
            "env XDG_CONFIG_HOME='{}' '{}' user ana --server {} --tls --ca '{}'",
            home.path().join("config").display(),
            tui_bin().display(),
            server.addr(),
            cert.display()
        ),
    );
    tmux.wait_for("user", &["ana", "online", "waiting for an agent"], &server);
    tmux.type_line("user", "hello over TLS");
    // Stored, not pending.
    tmux.wait_for_without(
        "user",
        &["ana (you)", "hello over TLS"],
        &["sending…"],
        &server,
    );
    tmux.keys("user", "C-c");
    tmux.wait_for("user", &["[exited with 0]"], &server);
}

/// The mouse wheel scrolls the conversation a few lines a notch, up into
/// what scrolled away and back down to the newest.
#[test]
fn the_mouse_wheel_scrolls_the_conversation() {
    if !tmux_available() {
        return;
    }
    let server = TestServer::start_with(NO_SEND_LIMITS);
    let home = tempfile::tempdir().expect("temporary directory");
    let tmux = Tmux::new(home.path());
    tmux.start(
        "user",
        &format!(
            "env XDG_CONFIG_HOME='{}' '{}' user ana --server {}",
            home.path().join("config").display(),
            tui_bin().display(),
            server.addr()
        ),
    );
    tmux.wait_for("user", &["ana", "online"], &server);
    // Two lines a message on a 30-line screen: the first ones scroll away.
    for i in 1..=25 {
        tmux.type_line("user", &format!("line{i:02}"));
    }
    tmux.wait_for_without("user", &["line25"], &["line01", "sending"], &server);
    tmux.wheel("user", true, 12);
    tmux.wait_for_without("user", &["line01"], &["line25"], &server);
    tmux.wheel("user", false, 12);
    tmux.wait_for_without("user", &["line25"], &["line01"], &server);
}
