//! PROTOCOL.md "Framing": one JSON object per line, ids, and how malformed
//! input is answered without dropping the connection.

use serde_json::{Value, json};
use switchboard_tests::*;

/// A connection that said `hello` (as a new user), so any request is allowed.
async fn identified(server: &TestServer) -> TestClient {
    unsubscribed_user(server, "ana").await.0
}

#[tokio::test]
async fn greeting_comes_first_with_exactly_these_fields() {
    let server = TestServer::start();
    let mut client = TestClient::connect_raw(server.addr()).await;
    assert_eq!(
        client.recv().await,
        json!({"type":"greeting","server":"switchboard","version":"0.1.0","protocol":2})
    );
}

#[tokio::test]
async fn ping_echoes_string_and_integer_ids() {
    let server = TestServer::start();
    let mut client = identified(&server).await;
    let longest = "i".repeat(64);
    for id in [
        json!("abc"),
        json!(1),
        json!(0),
        json!(9_007_199_254_740_993_u64),
        json!(longest),
    ] {
        client.send(&json!({"type":"ping","id":id})).await;
        assert_eq!(client.recv().await, json!({"type":"pong","id":id}));
    }
}

#[tokio::test]
async fn request_without_id_is_still_answered() {
    let server = TestServer::start();
    let mut client = identified(&server).await;
    client.send(&json!({"type":"ping"})).await;
    let pong = client.recv_type("pong").await;
    assert!(
        pong.get("id").is_none_or(Value::is_null),
        "no id to echo: {pong}"
    );
    client.barrier().await;
}

#[tokio::test]
async fn blank_lines_are_ignored() {
    let server = TestServer::start();
    let mut client = identified(&server).await;
    client.send_raw(b"\n\r\n\n\n").await;
    client.barrier().await;
}

#[tokio::test]
async fn crlf_line_endings_are_accepted() {
    let server = TestServer::start();
    let mut client = identified(&server).await;
    client
        .send_raw(b"{\"type\":\"ping\",\"id\":\"crlf\"}\r\n")
        .await;
    assert_eq!(client.recv().await, json!({"type":"pong","id":"crlf"}));
    let message = client
        .request(json!({"type":"send","id":"s","body":"ends with crlf"}))
        .await;
    assert_eq!(message["message"]["body"], "ends with crlf");
}

#[tokio::test]
async fn frame_split_across_many_tiny_writes_is_reassembled() {
    let server = TestServer::start();
    let mut client = identified(&server).await;
    let line = b"{\"type\":\"send\",\"id\":\"split\",\"body\":\"one byte at a time\"}\n";
    for byte in line {
        client.send_raw(&[*byte]).await;
    }
    let sent = client.recv_type("sent").await;
    assert_eq!(sent["id"], "split");
    assert_eq!(sent["message"]["body"], "one byte at a time");
    client.barrier().await;
}

#[tokio::test]
async fn many_frames_in_one_write_are_all_answered() {
    let server = TestServer::start();
    let mut client = identified(&server).await;
    let mut requests: Vec<Value> = (0..100).map(|i| json!({"type":"ping","id":i})).collect();
    requests.extend((0..20).map(|i| json!({"type":"send","id":format!("s{i}"),"body":"hi"})));
    for (request, reply) in requests.iter().zip(client.pipeline(&requests).await) {
        let expected = if request["type"] == "ping" {
            "pong"
        } else {
            "sent"
        };
        assert_eq!(reply["type"], expected, "{request} -> {reply}");
    }
    client.barrier().await;
}

#[tokio::test]
async fn malformed_json_is_bad_json_and_the_connection_stays() {
    let server = TestServer::start();
    let mut client = identified(&server).await;
    for line in [
        &b"{\"type\":\"ping\",\"id\":\"x\"\n"[..],
        b"not json at all\n",
        b"{\"type\":\"ping\",\"id\":\"x\",}\n",
        b"{'type':'ping'}\n",
    ] {
        client.send_raw(line).await;
        client.recv_error(Value::Null, "bad_json").await;
    }
    client.barrier().await;
}

#[tokio::test]
async fn invalid_utf8_is_bad_json() {
    let server = TestServer::start();
    let mut client = identified(&server).await;
    client
        .send_raw(b"{\"type\":\"ping\",\"id\":\"\xff\xfe\"}\n")
        .await;
    client.recv_error(Value::Null, "bad_json").await;
    client.barrier().await;
}

#[tokio::test]
async fn json_that_is_not_an_object_is_bad_frame() {
    let server = TestServer::start();
    let mut client = identified(&server).await;
    for line in ["[1,2]", "\"ping\"", "42", "null", "true"] {
        client.send_raw(format!("{line}\n").as_bytes()).await;
        client.recv_error(Value::Null, "bad_frame").await;
    }
    client.barrier().await;
}

#[tokio::test]
async fn missing_or_unknown_type_is_bad_frame_and_echoes_the_id() {
    let server = TestServer::start();
    let mut client = identified(&server).await;
    client.send(&json!({"id":"m1"})).await;
    client.recv_error(json!("m1"), "bad_frame").await;
    client.send(&json!({"type":"dance","id":7})).await;
    client.recv_error(json!(7), "bad_frame").await;
    client.send(&json!({"type":5,"id":"t"})).await;
    client.recv_error(json!("t"), "bad_frame").await;
    client.send(&json!({"type":"PING","id":"case"})).await;
    client.recv_error(json!("case"), "bad_frame").await;
    client.barrier().await;
}

#[tokio::test]
async fn field_of_the_wrong_kind_is_bad_frame() {
    let server = TestServer::start();
    let mut client = identified(&server).await;
    let frames = [
        json!({"type":"send","id":"w1","body":5}),
        json!({"type":"send","id":"w2","body":"hi","key":7}),
        json!({"type":"history","id":"w3","limit":"ten"}),
        json!({"type":"subscribe","id":"w4","since":"yesterday"}),
        json!({"type":"subscribe","id":"w5","limit":[1]}),
    ];
    for frame in frames {
        client.send(&frame).await;
        client.recv_error(frame["id"].clone(), "bad_frame").await;
    }
    // An id of the wrong kind cannot be echoed.
    for id in [json!(true), json!(1.5), json!({"a":1}), json!(["x"])] {
        client.send(&json!({"type":"ping","id":id})).await;
        client.recv_error(Value::Null, "bad_frame").await;
    }
    client.barrier().await;
    // Nothing was stored by the bad sends.
    assert_eq!(client.history(None, json!({})).await, Vec::<Value>::new());
}

#[tokio::test]
async fn id_longer_than_64_characters_is_bad_frame_with_null_id() {
    let server = TestServer::start();
    let mut client = identified(&server).await;
    client
        .send(&json!({"type":"ping","id":"i".repeat(65)}))
        .await;
    client.recv_error(Value::Null, "bad_frame").await;
    client
        .send(&json!({"type":"send","id":"s".repeat(65),"body":"never stored"}))
        .await;
    client.recv_error(Value::Null, "bad_frame").await;
    client.barrier().await;
    assert_eq!(client.history(None, json!({})).await, Vec::<Value>::new());
}

#[tokio::test]
async fn key_longer_than_64_characters_is_bad_frame() {
    let server = TestServer::start();
    let mut client = identified(&server).await;
    let frame = json!({"type":"send","id":"k","body":"never stored","key":"k".repeat(65)});
    client.send(&frame).await;
    client.recv_error(json!("k"), "bad_frame").await;
    assert_eq!(client.history(None, json!({})).await, Vec::<Value>::new());
    // 64 characters is fine.
    let frame = json!({"type":"send","id":"k64","body":"stored","key":"k".repeat(64)});
    assert_eq!(client.request(frame).await["type"], "sent");
}

#[tokio::test]
async fn unknown_fields_are_ignored() {
    let server = TestServer::start();
    let mut client = identified(&server).await;
    client
        .send(&json!({"type":"ping","id":"u","extra":{"nested":[1,2]},"x":null}))
        .await;
    assert_eq!(client.recv().await, json!({"type":"pong","id":"u"}));
    // Including a priority a client would like to choose: the server decides.
    let frame = json!({"type":"send","id":"p","body":"just saying hi","priority":"urgent"});
    let sent = client.request(frame).await;
    assert_eq!(sent["type"], "sent");
    assert_eq!(sent["message"]["priority"], "normal");
}

#[tokio::test]
async fn line_over_the_default_limit_is_line_too_long_and_the_connection_stays() {
    let server = TestServer::start();
    let mut client = identified(&server).await;
    let mut line = format!("{{\"type\":\"ping\",\"id\":\"{}\"}}", "x".repeat(70_000)).into_bytes();
    line.push(b'\n');
    client.send_raw(&line).await;
    client.recv_error(Value::Null, "line_too_long").await;
    client.barrier().await;
    // A long line under the default 65,536 bytes is fine.
    let body = "y".repeat(4_000);
    let line = format!(
        "{{\"type\":\"ping\",\"id\":\"ok\",\"pad\":\"{}\"}}\n",
        "z".repeat(60_000)
    );
    client.send_raw(line.as_bytes()).await;
    assert_eq!(client.recv().await, json!({"type":"pong","id":"ok"}));
    assert_eq!(client.send_message(&body).await["body"], body);
}

/// Someone pasting several lines into netcat reads the answers in the order
/// they typed them: an immediate reply (`pong`, `history`, an error) never
/// overtakes the `sent` of an earlier, still-committing `send`.
#[tokio::test]
async fn pipelined_requests_are_answered_in_request_order() {
    let server = TestServer::start_with(NO_SEND_LIMITS);
    let mut client = identified(&server).await;
    let mut batch = String::new();
    let mut expected = Vec::new();
    for i in 0..40 {
        batch.push_str(&format!(
            "{{\"type\":\"send\",\"id\":\"s{i}\",\"body\":\"m{i}\"}}\n\
             {{\"type\":\"ping\",\"id\":\"p{i}\"}}\n\
             {{\"type\":\"history\",\"id\":\"h{i}\",\"limit\":1}}\n\
             {{\"type\":\"send\",\"id\":\"e{i}\",\"body\":\"\"}}\n"
        ));
        expected.extend([
            (format!("s{i}"), "sent"),
            (format!("p{i}"), "pong"),
            (format!("h{i}"), "history"),
            (format!("e{i}"), "error"),
        ]);
    }
    client.send_raw(batch.as_bytes()).await;
    for (i, (id, kind)) in expected.iter().enumerate() {
        let frame = client.recv().await;
        assert_eq!(
            (frame["id"].as_str(), frame["type"].as_str()),
            (Some(id.as_str()), Some(*kind)),
            "reply {i}: {frame}"
        );
        if *kind == "history" {
            // Each history sees the send just before it: it was committed first.
            let send_id = id.replacen('h', "m", 1);
            assert_eq!(frame["messages"][0]["body"], send_id.as_str());
        }
    }
}

/// A `ping` line of exactly `len` bytes (without the newline): the padding is
/// an unknown string field, which the server ignores.
fn padded_ping(id: &str, len: usize) -> Vec<u8> {
    let head = format!("{{\"type\":\"ping\",\"id\":\"{id}\",\"pad\":\"");
    let mut line = head.into_bytes();
    line.resize(len - 2, b'z');
    line.extend(b"\"}");
    assert_eq!(line.len(), len);
    line
}

/// The default `--max-line` is exactly 65,536 bytes, counted without the line
/// ending (PROTOCOL.md "Framing", interpretation 11): a line of 65,536 bytes
/// is answered normally, with `\n` or `\r\n`, and one of 65,537 gets
/// `line_too_long` with a null id, after which the connection still works
/// and nothing of the long line is answered again. A default one byte
/// smaller, or a limit that counts the `\r`, refuses a 65,536-byte line; one
/// byte larger answers the 65,537-byte line with `pong` instead of the error.
#[tokio::test]
async fn default_max_line_is_65536_bytes_without_the_line_ending() {
    let server = TestServer::start();
    let mut client = identified(&server).await;
    let mut exact = padded_ping("exact", 65_536);
    exact.push(b'\n');
    client.send_raw(&exact).await;
    assert_eq!(client.recv().await, json!({"type":"pong","id":"exact"}));
    let mut exact_crlf = padded_ping("crlf", 65_536);
    exact_crlf.extend(b"\r\n");
    client.send_raw(&exact_crlf).await;
    assert_eq!(client.recv().await, json!({"type":"pong","id":"crlf"}));

    let mut over = padded_ping("over", 65_537);
    over.push(b'\n');
    client.send_raw(&over).await;
    client.recv_error(Value::Null, "line_too_long").await;
    client.barrier().await;
    assert_eq!(
        client.send_message("still usable").await["body"],
        "still usable"
    );
}

/// Interpretation 21: a missing required field is `bad_frame`, like a field
/// of the wrong kind, and the request is not carried out: `send` without
/// `body` (from a user, or from an agent naming a user with `to`) and
/// `release` without `user`. A server that read a missing `body` as empty
/// would answer `invalid_body`; one that read it as anything else would
/// store a message, which the empty history would show; a `release` without
/// `user` answered `unknown_user`, `not_assigned` or `forbidden` fails too.
#[tokio::test]
async fn missing_required_field_is_bad_frame() {
    let server = TestServer::start();
    let token = server.add_agent("alice");
    let mut ana = identified(&server).await;
    let mut alice = server.connect().await.labelled("alice");
    alice.hello_agent("alice", &token).await;
    alice.send_to("ana", "hello ana").await;

    let frames = [
        json!({"type":"send","id":"u1"}),
        json!({"type":"send","id":"u2","key":"k1"}),
        json!({"type":"release","id":"u3"}),
    ];
    for frame in frames {
        ana.send(&frame).await;
        ana.recv_error(frame["id"].clone(), "bad_frame").await;
    }
    let frames = [
        json!({"type":"send","id":"a1","to":"ana"}),
        json!({"type":"release","id":"a2"}),
    ];
    for frame in frames {
        alice.send(&frame).await;
        alice.recv_error(frame["id"].clone(), "bad_frame").await;
    }
    ana.barrier().await;
    alice.barrier().await;
    // Nothing was stored, and alice still holds ana: her release works.
    assert_eq!(bodies(&ana.history(None, json!({})).await), ["hello ana"]);
    let reply = alice.request(json!({"type":"release","user":"ana"})).await;
    assert_eq!(reply["type"], "released", "{reply}");
}
