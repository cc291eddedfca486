//! Whole sessions: arbitrary bytes from one client through the real session,
//! router and store (database on a temp dir). Every reply must be a whole,
//! well-formed frame, and no session may hang or panic. State accumulates
//! across inputs (users registered, messages stored), as on a real server.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use switchboard_server::Config;
use switchboard_server::testing::{InMemoryServer, check_output};

struct Shared {
    runtime: tokio::runtime::Runtime,
    server: InMemoryServer,
    _dir: tempfile::TempDir,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
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
        let server = runtime
            .block_on(async { InMemoryServer::start(dir.path(), config) })
            .expect("the store opens");
        Shared { runtime, server, _dir: dir }
    })
}

fuzz_target!(|data: &[u8]| {
    let shared = shared();
    let output = shared
        .runtime
        .block_on(shared.server.exchange(data))
        .expect("the session neither hangs nor panics");
    check_output(&output).expect("every reply is a whole, well-formed frame");
});
