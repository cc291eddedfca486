//! A client may pipeline requests: send many before reading any reply.
//! The server then stops reading from it once it owes half as many
//! replies as the connection's outbox holds, so the client is slowed down
//! through TCP and gets every reply in order once it reads; it is never cut
//! off as a `slow_consumer` for replies it asked for. (Found by a black-box check:
//! on the cluster, where replies come back in larger groups, a client that
//! pipelined past `--outbox-frames` was cut off, while one SQLite node let
//! it through.) On one node and on the 3-node cluster.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_tests::*;

#[tokio::test]
async fn a_client_pipelining_past_its_outbox_is_slowed_down_not_cut_off() {
    const SENDS: usize = 400;
    let server = TestServer::start_with(&["--no-send-limits", "--outbox-frames", "8"]);
    let (mut ana, _) = unsubscribed_user(&server, "ana").await;
    let sends: Vec<Value> = (0..SENDS)
        .map(|i| json!({"type":"send","id":i,"body":format!("question {i}")}))
        .collect();
    ana.send_many(&sends).await;
    // Not reading for a while: the replies written fill the socket, and
    // the server, owing its bound, leaves the rest of the requests unread.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut last = 0;
    for i in 0..SENDS {
        let sent = ana.recv().await;
        assert_eq!(sent["type"], "sent", "reply {i}: {sent}");
        assert_eq!(sent["id"], i, "{sent}");
        let id = sent["message"]["id"].as_u64().expect("a message id");
        assert!(id > last, "ids rise: {id} after {last}");
        last = id;
    }
    ana.barrier().await;
}
