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

/// A `--server` list is checked before anything connects: the entry that is
/// wrong and what to write instead.
#[test]
fn a_bad_server_list_is_refused_at_start_with_the_entry_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (list, says) in [
        (
            "127.0.0.1:1,,127.0.0.1:2",
            "entry 2 of \"127.0.0.1:1,,127.0.0.1:2\" is empty",
        ),
        ("127.0.0.1:1,", "entry 2 of \"127.0.0.1:1,\" is empty"),
        ("127.0.0.1:1,localhost", "\"localhost\" is not host:port"),
        (
            "127.0.0.1:1,127.0.0.1:99999",
            "the port must be a number from 1 to 65535",
        ),
        ("a:1,a:1", "\"a:1\" is listed twice"),
    ] {
        let output = tui(&["user", "ana", "--server", list], dir.path());
        assert_eq!(output.status.code(), Some(2), "a usage error: {list}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{list}: {stderr}");
        assert!(stderr.contains("--server"), "{list}: {stderr}");
    }
}

/// Every node of the list is tried before the client gives up, and the
/// error names each with its reason (in the order tried: `--in-order`, as
/// the first sign-in otherwise starts at a random node).
#[test]
fn when_no_node_answers_each_is_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = tui(
        &[
            "user",
            "ana",
            "--in-order",
            "--server",
            "127.0.0.1:1,127.0.0.1:2",
        ],
        dir.path(),
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let (first, second) = stderr
        .split_once("; ")
        .unwrap_or_else(|| panic!("two reasons: {stderr}"));
    assert!(
        first.contains(
            "no server of the 2 given let ana sign in: cannot reach the switchboard server at \
             127.0.0.1:1: "
        ),
        "{stderr}"
    );
    assert!(
        second.starts_with("cannot reach the switchboard server at 127.0.0.1:2: "),
        "{stderr}"
    );
}
