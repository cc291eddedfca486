//! [`Tmux`]: a private tmux server in which a test runs the real
//! `switchboard-tui`, types with `send-keys` and reads the screen back with
//! `capture-pane`.
//!
//! Waiting polls the screen until the expected text shows up or a deadline
//! passes: the screen is the only thing a user can observe, so there is no
//! event to wait on instead.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::server::TestServer;

/// The environment variable that lets a developer without tmux skip the
/// tests that need it. CI never sets it.
pub const SKIP_TMUX_TESTS_ENV: &str = "SWITCHBOARD_SKIP_TMUX_TESTS";

/// How long a screen may take to show what the test waits for.
const SCREEN_TIMEOUT: Duration = Duration::from_secs(15);
/// How often the screen is read while waiting.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// A private tmux server (its own socket), killed when dropped.
pub struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    /// A tmux server whose socket is in `dir`, or `None` when tmux is
    /// missing and [`SKIP_TMUX_TESTS_ENV`] is set (the skip is printed).
    /// Without that variable a missing tmux fails the test with the line
    /// that installs it: CI installs tmux (`.ci/run`), so a missing one is a
    /// broken machine, not a reason to pass.
    pub fn new(dir: &Path) -> Option<Tmux> {
        let installed = Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|out| out.status.success());
        if !installed {
            return crate::missing::skip_or_fail(
                "tmux, which is not installed",
                "run `apt-get install tmux`",
                SKIP_TMUX_TESTS_ENV,
            );
        }
        Some(Tmux {
            socket: dir.join("tmux.sock"),
        })
    }

    pub fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux")
    }

    /// Starts `command` (a shell line) in a detached 100×30 session.
    pub fn start(&self, session: &str, command: &str) {
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

    pub fn screen(&self, session: &str) -> String {
        let out = self.run(&["capture-pane", "-p", "-t", session]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types `text` literally, then presses Enter.
    pub fn type_line(&self, session: &str, text: &str) {
        let out = self.run(&["send-keys", "-t", session, "-l", text]);
        assert!(out.status.success(), "send-keys: {out:?}");
        let out = self.run(&["send-keys", "-t", session, "Enter"]);
        assert!(out.status.success(), "send-keys Enter: {out:?}");
    }

    pub fn keys(&self, session: &str, keys: &str) {
        let out = self.run(&["send-keys", "-t", session, keys]);
        assert!(out.status.success(), "send-keys: {out:?}");
    }

    /// Turns the mouse wheel over the pane `times` notches, as a terminal
    /// reports it to a program that asked for the mouse (SGR encoding:
    /// button 64 is up, 65 down).
    pub fn wheel(&self, session: &str, up: bool, times: usize) {
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
    pub fn wait_for(&self, session: &str, needles: &[&str], server: &TestServer) -> String {
        self.wait_for_without(session, needles, &[], server)
    }

    /// Waits until every one of `needles` and none of `gone` is on one
    /// screen; returns it. For a state that follows another (a message
    /// shown as pending, then as stored), so the test does not race the
    /// server's reply.
    pub fn wait_for_without(
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
