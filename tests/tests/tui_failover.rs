//! The terminal client given several nodes (`--server a,b,c`, issue 16):
//! it signs in on the first that answers, and when the node it is on dies
//! it moves to the next, resumes and resends there.
//!
//! A cluster of nodes on one store is not built yet, so the second node
//! here is a single server started on a copy of the first one's database,
//! taken after the first was killed: it knows the same agent and user with
//! the same tokens and holds every message the first acknowledged, as a
//! node of the same help desk would. What these tests check is the
//! client's failover, not the shared state a cluster keeps.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use switchboard_tests::{NO_SEND_LIMITS, TestServer, Tmux, tui_bin};

/// A loopback address nothing listens on a moment later: bound, released.
fn free_address() -> String {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .to_string()
}

/// `switchboard-tui user ana` on `servers`, keeping its token under `config`;
/// `--in-order`, so that it tries them in the order listed (the first
/// sign-in otherwise starts at a random node).
fn user_command(config: &Path, servers: &str) -> String {
    format!(
        "env XDG_CONFIG_HOME='{}' '{}' user ana --in-order --server {servers}",
        config.display(),
        tui_bin().display()
    )
}

/// A consistent copy of a server's SQLite database at `to` (WAL included).
fn copy_database(from: &Path, to: &Path) {
    let db = rusqlite::Connection::open(from).expect("opens the first node's database");
    db.execute("VACUUM INTO ?1", [to.to_str().expect("utf-8 path")])
        .expect("copies the database");
}

/// The first address refuses: the client goes on to the next at once,
/// says in its header which node it is on, and keeps the new user's token
/// for every address of the list.
#[test]
fn a_dead_first_node_is_passed_over_for_the_next() {
    let server = TestServer::start_with(NO_SEND_LIMITS);
    let home = tempfile::tempdir().expect("temporary directory");
    let config = home.path().join("config");
    let Some(tmux) = Tmux::new(home.path()) else {
        return;
    };
    let dead = free_address();
    let alive = server.addr().to_string();
    tmux.start("user", &user_command(&config, &format!("{dead},{alive}")));
    tmux.wait_for(
        "user",
        &[&format!("switchboard {alive} · ana · ● online")],
        &server,
    );
    tmux.type_line("user", "hello from the second address");
    tmux.wait_for_without(
        "user",
        &["ana (you)", "hello from the second address"],
        &["sending…"],
        &server,
    );

    // One token, kept for each address, owner-only.
    let tokens: Vec<String> = [&dead, &alive]
        .iter()
        .map(|addr| {
            let file = config
                .join("switchboard")
                .join(format!("{}_ana.token", addr.replace(':', "_")));
            let mode = std::fs::metadata(&file)
                .unwrap_or_else(|e| panic!("no token file at {}: {e}", file.display()))
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{}", file.display());
            std::fs::read_to_string(&file).expect("readable")
        })
        .collect();
    assert_eq!(tokens[0], tokens[1]);

    // Signing in again finds the token whatever the order of the list.
    tmux.keys("user", "C-c");
    tmux.wait_for("user", &["[exited with 0]"], &server);
    tmux.start("again", &user_command(&config, &format!("{alive},{dead}")));
    tmux.wait_for(
        "again",
        &["hello from the second address", "● online"],
        &server,
    );
}

/// The node both clients are on is killed. They say which node they try
/// next, move there, resume with `since` and resend the message typed in
/// between with its key: the agent sees it once, the customer sees it
/// stored, and each message shows once.
#[test]
fn clients_move_to_the_next_node_when_theirs_is_killed() {
    // The second node starts on a copy of the first's SQLite file.
    let mut first = TestServer::start_on_sqlite(NO_SEND_LIMITS);
    let token = first.add_agent("alice");
    let home = tempfile::tempdir().expect("temporary directory");
    let config = home.path().join("config");
    let Some(tmux) = Tmux::new(home.path()) else {
        return;
    };
    let on_first = first.addr().to_string();
    // The second node's port, taken when it starts.
    let second_addr = free_address();
    let dead = free_address();
    tmux.start(
        "user",
        &user_command(&config, &format!("{on_first},{second_addr},{dead}")),
    );
    tmux.start(
        "agent",
        &format!(
            "env SWITCHBOARD_TOKEN='{token}' '{}' agent alice --in-order --server {on_first},{second_addr}",
            tui_bin().display()
        ),
    );
    tmux.wait_for("user", &[&format!("{on_first} · ana · ● online")], &first);
    tmux.wait_for("agent", &[&format!("{on_first} · alice")], &first);
    tmux.type_line("user", "before the failover");
    tmux.wait_for("agent", &["before the failover"], &first);

    let status = first.signal_and_wait("KILL");
    assert!(!status.success(), "killed: {status:?}");
    let next = format!("reconnecting to {second_addr}");
    tmux.wait_for("user", &[&next], &first);
    tmux.wait_for("agent", &[&next], &first);
    tmux.type_line("user", "typed between the nodes");
    tmux.wait_for("user", &["sending…", "typed between the nodes"], &first);

    let copy = home.path().join("second.db");
    copy_database(&first.db(), &copy);
    let second = TestServer::start_with_env(
        NO_SEND_LIMITS,
        &[
            ("SWITCHBOARD_LISTEN", second_addr.as_str()),
            ("SWITCHBOARD_DB", copy.to_str().expect("utf-8 path")),
        ],
    );
    let agent = tmux.wait_for(
        "agent",
        &[
            &format!("{second_addr} · alice"),
            "● online",
            "typed between the nodes",
        ],
        &second,
    );
    let user = tmux.wait_for_without(
        "user",
        &[
            &format!("{second_addr} · ana · ● online"),
            "typed between the nodes",
        ],
        &["sending…"],
        &second,
    );
    for (who, screen) in [("user", &user), ("agent", &agent)] {
        for line in ["before the failover", "typed between the nodes"] {
            assert_eq!(
                screen.matches(line).count(),
                1,
                "{who} shows {line:?} once:\n{screen}"
            );
        }
    }

    // And it goes on: the agent answers on the new node.
    tmux.type_line("agent", "answered on the second node");
    tmux.wait_for_without(
        "user",
        &["alice (agent)", "answered on the second node"],
        &[],
        &second,
    );
}
