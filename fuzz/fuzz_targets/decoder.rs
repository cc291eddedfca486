//! The frame decoder: arbitrary bytes, cut into arbitrary reads, must never
//! panic, must make progress, and must never hold more than one line (plus
//! one read) of buffer.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use switchboard_protocol::ServerCodec;
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the line limit and the read size, so short and
    // long limits and tiny and large reads are all explored.
    let Some((&knobs, input)) = data.split_first() else {
        return;
    };
    let max_line = 1 + usize::from(knobs & 0x3f) * 4;
    let read_size = 1 + usize::from(knobs >> 6) * 37;
    let mut codec = ServerCodec::new(max_line);
    let mut buf = BytesMut::new();
    for read in input.chunks(read_size) {
        buf.extend_from_slice(read);
        while let Some(_item) = codec.decode(&mut buf).expect("the decoder never fails on bytes") {}
        assert!(buf.len() <= max_line + 1, "the buffer stays bounded");
    }
    while let Some(_item) = codec.decode_eof(&mut buf).expect("the decoder never fails on bytes") {}
});
