//! Whatever a client sends, the server answers with whole, well-formed
//! frames, never panics and never hangs: a property test over the real
//! session, router and store (in memory, see `switchboard_server::testing`).
//! The cargo-fuzz target `fuzz/fuzz_targets/session.rs` explores the same
//! surface for as long as it is given.

use std::sync::OnceLock;

use proptest::prelude::*;
use switchboard_server::Config;
use switchboard_server::testing::{BlockingServer, check_output};

fn server() -> &'static BlockingServer {
    static SERVER: OnceLock<(BlockingServer, tempfile::TempDir)> = OnceLock::new();
    let (server, _dir) = SERVER.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temp dir");
        let config = Config {
            send_rate: 0.0,
            ..Config::default()
        };
        let server = BlockingServer::start(dir.path(), config).expect("the store opens");
        (server, dir)
    });
    server
}

/// Lines that reach every part of the protocol, mixed with garbage.
fn arb_line() -> impl Strategy<Value = Vec<u8>> {
    let name = prop_oneof![
        Just("ana".to_owned()),
        Just("bo".to_owned()),
        "[a-z]{1,3}",
        "\\PC{0,8}"
    ];
    let body = prop_oneof![
        Just("refund please".to_owned()),
        "\\PC{0,30}",
        Just(String::new())
    ];
    let valid = prop_oneof![
        name.clone()
            .prop_map(|n| format!(r#"{{"type":"hello","role":"user","name":{n:?}}}"#)),
        name.clone()
            .prop_map(|n| format!(r#"{{"type":"hello","role":"agent","name":{n:?},"token":"x"}}"#)),
        (any::<Option<u16>>(), any::<Option<u16>>()).prop_map(|(since, limit)| {
            match (since, limit) {
                (Some(s), _) => format!(r#"{{"type":"subscribe","id":1,"since":{s}}}"#),
                (None, Some(l)) => format!(r#"{{"type":"subscribe","limit":{l}}}"#),
                (None, None) => r#"{"type":"subscribe"}"#.to_owned(),
            }
        }),
        (body.clone(), proptest::option::of("[a-z]{1,4}")).prop_map(|(b, key)| match key {
            Some(k) => format!(r#"{{"type":"send","id":"s","body":{b:?},"key":{k:?}}}"#),
            None => format!(r#"{{"type":"send","body":{b:?}}}"#),
        }),
        (name.clone(), body)
            .prop_map(|(n, b)| format!(r#"{{"type":"send","to":{n:?},"body":{b:?}}}"#)),
        name.clone()
            .prop_map(|n| format!(r#"{{"type":"release","id":"r","user":{n:?}}}"#)),
        (proptest::option::of(name), any::<Option<u16>>()).prop_map(|(n, before)| {
            let mut frame = String::from(r#"{"type":"history","id":"h""#);
            if let Some(n) = n {
                frame.push_str(&format!(r#","user":{n:?}"#));
            }
            if let Some(b) = before {
                frame.push_str(&format!(r#","before":{b}"#));
            }
            frame.push('}');
            frame
        }),
        Just(r#"{"type":"ping","id":7}"#.to_owned()),
        Just(r#"{"type":"bye"}"#.to_owned()),
    ];
    prop_oneof![
        8 => valid.prop_map(String::into_bytes),
        1 => proptest::collection::vec(any::<u8>(), 0..40),
        1 => "\\PC{0,40}".prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn any_input_gets_whole_well_formed_frames_back(
        lines in proptest::collection::vec(arb_line(), 0..12),
        crlf in any::<bool>(),
        final_newline in any::<bool>(),
    ) {
        let mut input = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            input.extend_from_slice(line);
            if i + 1 < lines.len() || final_newline {
                input.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
            }
        }
        let output = server().exchange(&input).map_err(TestCaseError::fail)?;
        let frames = check_output(&output).map_err(TestCaseError::fail)?;
        prop_assert!(frames >= 1, "at least the greeting");
    }
}
