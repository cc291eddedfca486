//! How long the server's codec takes to turn one request line into a
//! [`ClientFrame`]: a micro-benchmark of the decode every request pays.
//!
//! `cargo run --release -p switchboard-protocol --example decode_bench`
//! prints nanoseconds a frame for the frames a busy server sees most (`send`
//! with a short and a 1 KiB body, `ping`, `subscribe`) and for a frame with
//! an ignored field nested deep. Best of several rounds, so a machine shared
//! with other work shows its quietest moment.

use std::hint::black_box;
use std::time::Instant;

use bytes::BytesMut;
use switchboard_protocol::ServerCodec;
use tokio_util::codec::Decoder;

/// Frames decoded a round, and rounds (the best is reported).
const FRAMES_PER_ROUND: usize = 200_000;
const ROUNDS: usize = 5;

fn main() {
    let long_body = "x".repeat(1024);
    let deep = format!(
        "{{\"type\":\"ping\",\"id\":1,\"x\":{}{}}}",
        "[".repeat(1000),
        "]".repeat(1000)
    );
    let cases = [
        (
            "send, short body",
            r#"{"type":"send","id":"r12","body":"Hello, I cannot log in to my account","key":"k-12"}"#
                .to_owned(),
        ),
        (
            "send, 1 KiB body",
            format!(r#"{{"type":"send","id":17,"to":"ana","body":"{long_body}"}}"#),
        ),
        ("ping", r#"{"type":"ping","id":3}"#.to_owned()),
        (
            "subscribe",
            r#"{"type":"subscribe","id":"s","since":41,"limit":100}"#.to_owned(),
        ),
        ("ping, ignored field 1000 deep", deep),
    ];
    for (label, line) in cases {
        let mut input = line.into_bytes();
        input.push(b'\n');
        let mut codec = ServerCodec::new(1 << 20);
        let mut best = f64::MAX;
        for _ in 0..ROUNDS {
            let mut buf = BytesMut::with_capacity(input.len() * FRAMES_PER_ROUND);
            for _ in 0..FRAMES_PER_ROUND {
                buf.extend_from_slice(&input);
            }
            let started = Instant::now();
            let mut ok = 0usize;
            while let Some(item) = codec.decode(&mut buf).expect("no I/O error") {
                ok += usize::from(black_box(item).is_ok());
            }
            let nanos = started.elapsed().as_nanos() as f64 / FRAMES_PER_ROUND as f64;
            best = best.min(nanos);
            assert!(ok == FRAMES_PER_ROUND || ok == 0);
            if ok == 0 {
                best = f64::NAN;
            }
        }
        println!("{label:32} {best:8.1} ns a frame");
    }
}
