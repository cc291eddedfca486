//! Whole sessions: arbitrary bytes from one client through the real session,
//! router and store (database on a temp dir). Every reply must be a whole,
//! well-formed frame, and no session may hang or panic. State accumulates
//! across inputs (users registered, messages stored), as on a real server.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use switchboard_server::Config;
use switchboard_server::testing::{BlockingServer, check_output};

fn server() -> &'static BlockingServer {
    static SERVER: OnceLock<(BlockingServer, tempfile::TempDir)> = OnceLock::new();
    let (server, _dir) = SERVER.get_or_init(|| {
        // /dev/shm keeps the database in memory where there is one.
        let dir = tempfile::Builder::new()
            .tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .expect("a temp dir");
        let config = Config {
            send_rate: 0.0,
            max_body_chars: 64,
            ..Config::default()
        };
        let server = BlockingServer::start(dir.path(), config).expect("the store opens");
        (server, dir)
    });
    server
}

fuzz_target!(|data: &[u8]| {
    let output = server()
        .exchange(data)
        .expect("the session neither hangs nor panics");
    check_output(&output).expect("every reply is a whole, well-formed frame");
});
