//! The binary's command line, without a terminal. Having an integration test
//! here also makes `cargo test --workspace` build the `switchboard-tui`
//! binary, which the tmux test in `tests/tests/tui.rs` drives (cargo builds a
//! package's binaries only for its own integration tests).

use std::process::{Command, Output, Stdio};

fn tui(args: &[&str], config_home: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard-tui"))
        .args(args)
        .env("XDG_CONFIG_HOME", config_home)
        .env_remove("SWITCHBOARD_TOKEN")
        .stdin(Stdio::null())
        .output()
        .expect("switchboard-tui runs")
}

#[test]
fn help_names_both_modes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = tui(&["--help"], dir.path());
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("user"), "{help}");
    assert!(help.contains("agent"), "{help}");
}

/// The error comes before the alternate screen: one plain line on stderr,
/// no escape sequences anywhere, and a failing exit code.
#[test]
fn an_unreachable_server_is_one_plain_line_before_any_screen() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Port 1 on loopback: nothing listens there.
    let output = tui(&["user", "ana", "--server", "127.0.0.1:1"], dir.path());
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot reach"), "{stderr}");
    assert!(stderr.contains("127.0.0.1:1"), "{stderr}");
    for stream in [&output.stdout, &output.stderr] {
        assert!(!stream.contains(&0x1b), "no terminal escape sequences");
    }
}

#[test]
fn an_agent_needs_a_token() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = tui(&["agent", "alice", "--server", "127.0.0.1:1"], dir.path());
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.to_lowercase().contains("token"), "{stderr}");
}
