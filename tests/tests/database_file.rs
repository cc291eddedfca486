//! The database file and who may use it: one server per file, and the
//! `agent` commands beside a server that is committing flat out (issue 15,
//! findings 4 and 5).

use std::process::{Command, Stdio};

use switchboard_tests::*;

/// Two servers on one SQLite file would each deliver only their own
/// commits (issue 15, finding 4): the second refuses to start, says why and
/// what to do, and the first goes on serving.
#[tokio::test]
async fn a_second_server_on_the_same_database_refuses_to_start() {
    let server = TestServer::start_on_sqlite(&[]);
    let mut second = Command::new(switchboard_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(server.db())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a second server");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = second.try_wait().expect("wait for it") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = second.kill();
            panic!("a second server on the same database kept running");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().expect("piped"), &mut stderr)
        .expect("stderr");
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("another switchboard is serving"),
        "{stderr}"
    );
    assert!(stderr.contains(".lock"), "{stderr}");
    // The first one is untouched.
    let mut ana = server.connect().await;
    ana.hello_new_user("ana").await;
}

/// `agent add`, `rotate` and `remove` succeed while the server commits flat
/// out (issue 15, finding 5: a deferred transaction that read, then wrote,
/// failed with "database is locked" 12 times in 20 under load).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_commands_succeed_while_the_server_commits_flat_out() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    let server = TestServer::start_with(NO_SEND_LIMITS);
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for i in 0..4 {
        let mut user = server.connect().await;
        user.hello_new_user(&format!("load{i}")).await;
        let (stop, acked) = (Arc::clone(&stop), Arc::clone(&acked));
        writers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let sent = user.send_messages(&numbered("m", 32)).await;
                acked.fetch_add(sent.len(), Ordering::Relaxed);
            }
        }));
    }
    while acked.load(Ordering::Relaxed) < 500 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let during = acked.load(Ordering::Relaxed);
    tokio::task::block_in_place(|| {
        for round in 0..30 {
            let name = format!("agent{round}");
            for args in [
                &["agent", "add", name.as_str()][..],
                &["agent", "rotate", name.as_str()][..],
                &["agent", "remove", name.as_str()][..],
            ] {
                let output = server.cli(args);
                assert!(
                    output.status.success(),
                    "round {round}, {args:?}: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
        }
    });
    assert!(
        acked.load(Ordering::Relaxed) > during,
        "the load kept committing meanwhile"
    );
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.expect("the load ran");
    }
}
