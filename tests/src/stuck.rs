//! [`stuck_reader`]: a connection the server is writing a long reply to and
//! that reads nothing more, for tests of what such a client cannot hold up
//! (a shutdown's drain, the operator port's health meanwhile).

use serde_json::{Value, json};

use crate::client::TestClient;
use crate::server::TestServer;
use crate::session::unsubscribed_user;

/// Messages in the stuck reader's conversation: two replies of this many
/// messages of 4,000 characters (about 8 MB) are far more than the kernel
/// buffers between the server and a client reading nothing.
const MESSAGES: usize = 1_000;

/// A user (`ana`) with a long conversation, and a second connection of hers
/// with a small receive buffer that asked for it twice (`subscribe since=0`
/// and `history`) and read one message: the server is writing to it, and it
/// reads nothing more. The server must run with every send limit off. On a
/// cluster it is on the first node, the one `pid` and `metrics_addr` name.
pub async fn stuck_reader(server: &TestServer) -> TestClient {
    let (mut ana, token) = unsubscribed_user(server, "ana").await;
    let body = "x".repeat(4_000);
    for chunk in (0..MESSAGES).collect::<Vec<_>>().chunks(100) {
        let sends: Vec<Value> = chunk
            .iter()
            .map(|i| json!({"type":"send","id":i,"body":body}))
            .collect();
        for reply in ana.pipeline(&sends).await {
            assert_eq!(reply["type"], "sent", "{reply}");
        }
    }
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket.set_recv_buffer_size(4_096).expect("a small buffer");
    let stream = socket
        .connect(server.node(0).addr())
        .await
        .expect("connects");
    let mut stuck = TestClient::from_stream(stream).labelled("stuck");
    assert_eq!(stuck.recv().await, crate::frames::greeting());
    stuck.hello_user("ana", &token).await;
    stuck
        .send_many(&[
            json!({"type":"subscribe","id":"s","since":0}),
            json!({"type":"history","id":"h","limit":MESSAGES}),
        ])
        .await;
    // Its first backlog message shows the server is writing to it.
    assert_eq!(stuck.recv_message().await["body"], body);
    stuck
}
