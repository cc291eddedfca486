//! A plain HTTP/1.1 client for the operator port (`--metrics-listen`):
//! one request per connection, the whole answer read to its close. The
//! oracle's own, written out so that the tests pin what goes on the wire.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long one exchange may take before the test fails. Generous: only a
/// broken server reaches it.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// An answer: its status code and body.
#[derive(Debug, Clone)]
pub struct HttpReply {
    pub status: u16,
    /// The header lines, as sent.
    pub head: String,
    pub body: String,
}

/// `GET path` on `addr`.
pub async fn http_get(addr: SocketAddr, path: &str) -> HttpReply {
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: switchboard-tests\r\n\r\n");
    http_exchange(addr, request.as_bytes()).await
}

/// Sends `request` as it is, then reads the answer until the server closes.
pub async fn http_exchange(addr: SocketAddr, request: &[u8]) -> HttpReply {
    let exchange = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .expect("connect to the metrics port");
        stream.write_all(request).await.expect("send the request");
        let mut answer = Vec::new();
        stream
            .read_to_end(&mut answer)
            .await
            .expect("read the answer");
        answer
    };
    let answer = tokio::time::timeout(HTTP_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| panic!("no answer from {addr} within {HTTP_TIMEOUT:?}"));
    parse_reply(&String::from_utf8(answer).expect("a text answer"))
}

/// The status, head and body of a whole HTTP answer.
pub fn parse_reply(answer: &str) -> HttpReply {
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {answer:?}"));
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"));
    HttpReply {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

impl HttpReply {
    /// The value of the sample `name` (with its labels, e.g.
    /// `switchboard_connections{role="user"}`) in a `/metrics` body.
    pub fn sample(&self, name: &str) -> f64 {
        self.body
            .lines()
            .filter(|line| !line.starts_with('#'))
            .find_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                (series == name).then(|| value.parse().ok()).flatten()
            })
            .unwrap_or_else(|| panic!("no sample {name} in:\n{}", self.body))
    }
}
