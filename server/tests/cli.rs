//! The binary's command line. Besides checking `--help`, having an
//! integration test here makes `cargo test --workspace` build the
//! `switchboard` binary before any test runs, which the end-to-end suite in
//! `tests/` relies on (cargo builds a package's binaries only for its own
//! integration tests).

use std::process::Command;

fn switchboard(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .output()
        .expect("the switchboard binary runs")
}

#[test]
fn version_names_the_crate_version() {
    let output = switchboard(&["--version"]);
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout.trim(),
        format!("switchboard {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn serve_help_lists_every_flag_with_its_environment_variable() {
    let output = switchboard(&["serve", "--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for (flag, env) in [
        ("--listen", "SWITCHBOARD_LISTEN"),
        ("--db", "SWITCHBOARD_DB"),
        ("--max-line", "SWITCHBOARD_MAX_LINE"),
        ("--max-body", "SWITCHBOARD_MAX_BODY"),
        ("--max-connections", "SWITCHBOARD_MAX_CONNECTIONS"),
        ("--priority-rules", "SWITCHBOARD_PRIORITY_RULES"),
        ("--rate", "SWITCHBOARD_RATE"),
        ("--burst", "SWITCHBOARD_BURST"),
        ("--user-rate", "SWITCHBOARD_USER_RATE"),
        ("--user-burst", "SWITCHBOARD_USER_BURST"),
        ("--user-bytes", "SWITCHBOARD_USER_BYTES"),
        ("--address-rate", "SWITCHBOARD_ADDRESS_RATE"),
        ("--address-burst", "SWITCHBOARD_ADDRESS_BURST"),
        ("--address-bytes", "SWITCHBOARD_ADDRESS_BYTES"),
        ("--no-send-limits", "SWITCHBOARD_NO_SEND_LIMITS"),
        ("--hello-timeout", "SWITCHBOARD_HELLO_TIMEOUT"),
        ("--idle-timeout", "SWITCHBOARD_IDLE_TIMEOUT"),
        (
            "--signups-per-minute-total",
            "SWITCHBOARD_SIGNUPS_PER_MINUTE_TOTAL",
        ),
        ("--outbox-frames", "SWITCHBOARD_OUTBOX_FRAMES"),
        ("--outbox-bytes", "SWITCHBOARD_OUTBOX_BYTES"),
        ("--durability", "SWITCHBOARD_DURABILITY"),
        ("--tls-cert", "SWITCHBOARD_TLS_CERT"),
        ("--tls-key", "SWITCHBOARD_TLS_KEY"),
    ] {
        assert!(help.contains(flag), "{flag} missing from serve --help");
        assert!(help.contains(env), "{env} missing from serve --help");
    }
}

#[test]
fn a_bad_priority_rules_file_stops_the_server_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = dir.path().join("rules.json");
    std::fs::write(&rules, r#"{"critical":["x"]}"#).expect("writes");
    let db = dir.path().join("t.db");
    let output = switchboard(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--db",
        db.to_str().expect("utf-8 path"),
        "--priority-rules",
        rules.to_str().expect("utf-8 path"),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown priority \"critical\""), "{stderr}");
}

#[test]
fn a_database_that_is_not_switchboards_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("other.db");
    let conn = rusqlite::Connection::open(&db).expect("opens");
    conn.execute_batch("CREATE TABLE invoices (id INTEGER)")
        .expect("creates");
    drop(conn);
    let output = switchboard(&["agent", "list", "--db", db.to_str().expect("utf-8 path")]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not switchboard's"), "{stderr}");
}
