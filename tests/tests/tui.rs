//! The terminal client end to end: the real server and two real
//! `switchboard-tui` processes (a customer and an agent) in tmux, driven with
//! `send-keys` and read back with `capture-pane`.
//!
//! The tmux harness is [`Tmux`] (`tests/src/tmux.rs`); a missing tmux fails
//! these tests with the line that installs it.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use switchboard_tests::{NO_SEND_LIMITS, TestServer, Tmux, tui_bin, write_self_signed_certificate};

#[test]
fn a_customer_and_an_agent_talk_through_the_terminal_client() {
    let server = TestServer::start_with(NO_SEND_LIMITS);
    let token = server.add_agent("alice");
    let home = tempfile::tempdir().expect("temporary directory");
    let config = home.path().join("config");
    let Some(tmux) = Tmux::new(home.path()) else {
        return;
    };
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
    let Some(tmux) = Tmux::new(home.path()) else {
        return;
    };
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
    // What to do next, not only what happened (issue 17, first hour).
    assert!(
        stderr.contains("`switchboard agent rotate alice`"),
        "{stderr}"
    );
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
    assert!(
        stderr.contains("is `switchboard serve` running there?"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing drawn: {:?}", out.stdout);
}

/// `--server localhost`, no port: the error says the form it takes.
#[test]
fn a_server_address_without_a_port_is_explained() {
    let config = tempfile::tempdir().expect("temporary directory");
    let out = Command::new(tui_bin())
        .args(["user", "ana", "--server", "localhost"])
        .env("XDG_CONFIG_HOME", config.path())
        .output()
        .expect("run switchboard-tui");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("\"localhost\" is not host:port (e.g. 127.0.0.1:7878"),
        "{stderr}"
    );
}

/// An agent started without a token is told where it comes from and how to
/// give it, the environment first (first-hour findings: clap's "required
/// argument --token" never mentioned SWITCHBOARD_TOKEN).
#[test]
fn an_agent_without_a_token_is_told_how_to_give_one() {
    let out = Command::new(tui_bin())
        .args(["agent", "alice"])
        .env_remove("SWITCHBOARD_TOKEN")
        .output()
        .expect("run switchboard-tui");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for hint in [
        "SWITCHBOARD_TOKEN",
        "`switchboard agent add alice` printed",
        "--token",
    ] {
        assert!(stderr.contains(hint), "no {hint:?} in {stderr}");
    }
    assert!(out.stdout.is_empty(), "nothing drawn: {:?}", out.stdout);
}

/// The help names each flag's environment variable without a dangling
/// `=` (first-hour findings: `[env: SWITCHBOARD_SERVER=]`).
#[test]
fn the_help_names_environment_variables_plainly() {
    for mode in ["user", "agent"] {
        let out = Command::new(tui_bin())
            .args([mode, "--help"])
            .output()
            .expect("run switchboard-tui");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("[env: SWITCHBOARD_SERVER]"), "{help}");
        assert!(!help.contains("=]"), "a dangling `=`: {help}");
    }
}

/// `--tls --ca FILE`: the customer's client reaches a TLS server that uses a
/// self-signed certificate, trusting exactly that certificate.
#[test]
fn the_terminal_client_speaks_tls() {
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
    let Some(tmux) = Tmux::new(home.path()) else {
        return;
    };
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
    let server = TestServer::start_with(NO_SEND_LIMITS);
    let home = tempfile::tempdir().expect("temporary directory");
    let Some(tmux) = Tmux::new(home.path()) else {
        return;
    };
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

/// A customer's token is found however the server's address is spelled
/// (`localhost` or `127.0.0.1`): first-hour findings, where the other
/// spelling was refused "this name is taken" with no hint of the token.
#[test]
fn a_customer_signs_in_again_however_the_server_is_spelled() {
    let server = TestServer::start();
    let port = server.addr().port();
    let config = tempfile::tempdir().expect("temporary directory");
    let run = |addr: &str| {
        Command::new(tui_bin())
            .args(["user", "ana", "--server", addr])
            .env("XDG_CONFIG_HOME", config.path())
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run switchboard-tui")
    };
    // No terminal here: each run stops after signing in (and saving a new
    // token), at the full screen.
    let first = run(&format!("127.0.0.1:{port}"));
    let first_said = String::from_utf8_lossy(&first.stderr);
    assert!(first_said.contains("terminal"), "{first_said}");
    let second = run(&format!("localhost:{port}"));
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(!said.contains("refused"), "signed in again: {said}");
    assert!(said.contains("terminal"), "{said}");
}
