//! Protocol version 2 in the terminal client, end to end: the real server,
//! a customer and two agents as real `switchboard-tui` processes in tmux.
//! alice claims ana, writes a private note, and transfers her to bob,
//! while ana watches: ana sees who holds her conversation at each step,
//! never the note, then bob's answer and the resolve.
//!
//! The tmux harness is [`Tmux`] (`tests/src/tmux.rs`); a missing tmux fails
//! this test with the line that installs it.

use switchboard_tests::{NO_SEND_LIMITS, TestServer, Tmux, tui_bin};

#[test]
fn an_agent_transfers_a_customer_to_another_while_the_customer_watches() {
    let server = TestServer::start_with(NO_SEND_LIMITS);
    let alice_token = server.add_agent("alice");
    let bob_token = server.add_agent("bob");
    let home = tempfile::tempdir().expect("temporary directory");
    let config = home.path().join("config");
    let Some(tmux) = Tmux::new(home.path()) else {
        return;
    };
    let tui = tui_bin();
    let addr = server.addr().to_string();
    let agent = |name: &str, token: &str| {
        format!(
            "env SWITCHBOARD_TOKEN='{token}' XDG_CONFIG_HOME='{}' '{}' agent {name} --server {addr}",
            config.display(),
            tui.display()
        )
    };
    tmux.start(
        "ana",
        &format!(
            "env XDG_CONFIG_HOME='{}' '{}' user ana --server {addr}",
            config.display(),
            tui.display()
        ),
    );
    tmux.start("alice", &agent("alice", &alice_token));
    tmux.start("bob", &agent("bob", &bob_token));
    tmux.wait_for("ana", &["ana", "online", "waiting for an agent"], &server);
    tmux.wait_for(
        "alice",
        &["alice (agent)", "online", "agents: bob"],
        &server,
    );
    tmux.wait_for("bob", &["bob (agent)", "online", "agents: alice"], &server);

    tmux.type_line("ana", "My card was charged twice");
    tmux.wait_for(
        "alice",
        &["● ana", "My card was charged twice", "to ana ›"],
        &server,
    );

    // alice claims her: everyone hears it, ana sees who has her.
    tmux.keys("alice", "M-c");
    tmux.wait_for("alice", &["ana is now yours", "yours"], &server);
    tmux.wait_for(
        "ana",
        &["agent: alice", "alice is handling your conversation"],
        &server,
    );

    // A private note, in note mode: alice and bob see it, ana never does.
    tmux.keys("alice", "M-n");
    tmux.wait_for("alice", &["note ana ›"], &server);
    tmux.type_line("alice", "VIP customer, refund approved");
    tmux.wait_for(
        "alice",
        &["private note", "VIP customer, refund approved"],
        &server,
    );
    tmux.keys("alice", "M-n");
    tmux.wait_for("alice", &["to ana ›"], &server);

    // alice hands ana to bob through the picker: bob, online, is first.
    tmux.keys("alice", "M-t");
    tmux.wait_for("alice", &["transfer ana to", "● bob"], &server);
    tmux.keys("alice", "Enter");
    tmux.wait_for("alice", &["transferred ana to bob"], &server);
    let bob_screen = tmux.wait_for(
        "bob",
        &[
            "alice transferred ana to you",
            "ana",
            "VIP customer, refund approved",
        ],
        &server,
    );
    assert!(bob_screen.contains("private note"), "{bob_screen}");
    tmux.wait_for(
        "ana",
        &["agent: bob", "alice handed your conversation to bob"],
        &server,
    );

    // bob answers and resolves (asked first); ana sees both.
    tmux.type_line("bob", "Hi Ana, bob here: the refund is on its way");
    tmux.wait_for("ana", &["bob (agent)", "the refund is on its way"], &server);
    tmux.keys("bob", "M-d");
    tmux.wait_for(
        "bob",
        &["resolve ana: done, nothing left waiting? y: yes"],
        &server,
    );
    tmux.keys("bob", "y");
    let ana_screen = tmux.wait_for(
        "ana",
        &["resolved", "bob marked your conversation resolved"],
        &server,
    );
    // The screens as they are now (`-- --nocapture` shows them).
    println!("bob's screen:\n{}", tmux.screen("bob"));
    println!("ana's screen:\n{ana_screen}");
    assert!(
        !ana_screen.contains("VIP"),
        "a note on ana's screen:\n{ana_screen}"
    );
    assert!(!ana_screen.contains("private note"), "{ana_screen}");
}
