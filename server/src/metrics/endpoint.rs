//! The HTTP side of the operator port: a minimal HTTP/1.1 responder for
//! `GET /metrics`, `GET /healthz`, and 404 for anything else.
//!
//! One request per connection (`Connection: close`): a scraper or a load
//! balancer's probe asks one thing and goes. Hand-written over tokio rather
//! than a web framework, because that is all it does; the request head is
//! parsed by `httparse` (hyper's parser), so malformed requests are refused
//! by a parser that is fuzzed and widely used, not by string slicing here.
//!
//! It is an operator port, yet it must not be a way to hurt the node, so
//! everything a client can make it hold is bounded: [`MAX_CONNECTIONS`] at
//! once (more are closed at once), [`MAX_CONNECTIONS_PER_ADDRESS`] of them
//! from one client address, [`MAX_REQUEST_BYTES`] of request head (past it,
//! 431), [`HEAD_TIMEOUT`] to send that head and [`EXCHANGE_TIMEOUT`] for the
//! whole exchange (a silent or slow client is dropped). So one outsider
//! holding silent connections cannot crowd out the load balancer's
//! `/healthz` and get a healthy node pulled out of service. A body is never
//! read: GET has none.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::prometheus_text::CONTENT_TYPE as METRICS_CONTENT_TYPE;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::Exporter;
use crate::per_address::{self, AddressSlots};

/// Exchanges served at once: scrapers and a load balancer's probes; more
/// are closed unanswered, so a flood holds sixteen sockets (8 KiB each).
pub const MAX_CONNECTIONS: usize = 16;
/// Exchanges one client address (`per_address::client`) may hold at once:
/// a scraper and a probe from one host, with room for an exchange that has
/// just ended and not yet given its slot back, never more than a quarter.
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 4;
/// From accept to a whole request head: a scraper or a probe sends its head
/// in one segment, so a client silent this long is not one.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(1);
/// The longest request head (request line and headers): a scraper sends a
/// few hundred bytes.
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// Headers in one request; more is 431, as a head too long is.
const MAX_HEADERS: usize = 64;
/// One whole exchange, from accept to the last byte written: a client that
/// sends nothing or reads nothing is dropped after it.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(5);
/// After refusing a bad request, what of it is read and dropped before
/// closing, so the client reads the refusal instead of a reset.
const DRAIN_BYTES: usize = 64 * 1024;
/// After a failed `accept` (out of file descriptors), wait this long
/// instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The running endpoint; it stops when this is dropped.
pub struct Endpoint {
    _stop: DropGuard,
}

/// Listens on `address` and serves `exporter` until the returned
/// [`Endpoint`] is dropped. Logs the bound address (port 0 picks one).
pub async fn start(address: &str, exporter: Exporter) -> io::Result<(SocketAddr, Endpoint)> {
    let listener = TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    tracing::info!("metrics on http://{bound} (GET /metrics, GET /healthz)");
    let stop = CancellationToken::new();
    tokio::spawn(serve(listener, Arc::new(exporter), stop.clone()));
    Ok((
        bound,
        Endpoint {
            _stop: stop.drop_guard(),
        },
    ))
}

async fn serve(listener: TcpListener, exporter: Arc<Exporter>, stop: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let per_address = AddressSlots::new(MAX_CONNECTIONS_PER_ADDRESS);
    loop {
        let (stream, peer) = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "metrics: accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let Some(address_slot) = per_address.try_take(per_address::client(peer.ip())) else {
            tracing::debug!(
                "metrics: an address holds {MAX_CONNECTIONS_PER_ADDRESS} exchanges; closing a connection"
            );
            continue; // dropping the stream closes it
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!("metrics: {MAX_CONNECTIONS} exchanges under way; closing a connection");
            continue;
        };
        let exporter = Arc::clone(&exporter);
        let stop = stop.clone();
        tokio::spawn(async move {
            let _slots = (slot, address_slot);
            let exchange = tokio::time::timeout(EXCHANGE_TIMEOUT, exchange(stream, &exporter));
            if let Some(Ok(Err(error))) = stop.run_until_cancelled(exchange).await {
                tracing::debug!(%error, "metrics: exchange failed");
            }
        });
    }
}

/// Reads one request, answers it, closes.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    exporter: &Exporter,
) -> io::Result<()> {
    let Ok(head) = tokio::time::timeout(HEAD_TIMEOUT, read_request(&mut stream)).await else {
        return Ok(()); // too slow to be a scraper or a probe
    };
    let Some(request) = head? else {
        return Ok(()); // closed before a whole request: nobody to answer
    };
    let response = respond(&request, exporter);
    let with_body = !matches!(
        request,
        Request::Get {
            head_only: true,
            ..
        }
    );
    stream.write_all(&response.to_bytes(with_body)).await?;
    stream.shutdown().await?;
    if !matches!(request, Request::Get { .. }) {
        // The client may still be sending what was refused: closing with
        // unread bytes would reset the connection and lose the answer.
        let mut sink = tokio::io::sink();
        tokio::io::copy(&mut (&mut stream).take(DRAIN_BYTES as u64), &mut sink).await?;
    }
    Ok(())
}

/// A request head, as far as the endpoint cares.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Request {
    /// A GET of this path (the query, if any, left out), or a HEAD: the
    /// same answer without its body (some load balancers' health checks
    /// send HEAD).
    Get { path: String, head_only: bool },
    /// Another method.
    Method(String),
    /// Not HTTP/1.x.
    Malformed,
    /// A head longer than [`MAX_REQUEST_BYTES`] or with too many headers.
    TooLarge,
}

/// Reads up to a whole request head; `None` if the client closed first.
async fn read_request<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<Option<Request>> {
    let mut buf = vec![0; MAX_REQUEST_BYTES];
    let mut len = 0;
    loop {
        if len == buf.len() {
            return Ok(Some(Request::TooLarge));
        }
        let read = stream.read(&mut buf[len..]).await?;
        if read == 0 {
            return Ok(None);
        }
        len += read;
        if let Some(request) = parse(&buf[..len]) {
            return Ok(Some(request));
        }
    }
}

/// The request in `head`, or `None` if it is not whole yet.
fn parse(head: &[u8]) -> Option<Request> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(head) {
        Ok(httparse::Status::Partial) => None,
        Ok(httparse::Status::Complete(_)) => Some(match (request.method, request.path) {
            (Some(method @ ("GET" | "HEAD")), Some(target)) => Request::Get {
                path: target.split('?').next().unwrap_or_default().to_owned(),
                head_only: method == "HEAD",
            },
            (Some(method), _) => Request::Method(method.to_owned()),
            (None, _) => Request::Malformed,
        }),
        Err(httparse::Error::TooManyHeaders) => Some(Request::TooLarge),
        Err(_) => Some(Request::Malformed),
    }
}

/// An answer, always closing the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Response {
    status: u16,
    reason: &'static str,
    content_type: &'static str,
    body: String,
}

const TEXT: &str = "text/plain; charset=utf-8";

impl Response {
    fn text(status: u16, reason: &'static str, body: impl Into<String>) -> Self {
        let mut body = body.into();
        body.push('\n');
        Self {
            status,
            reason,
            content_type: TEXT,
            body,
        }
    }

    /// The answer as sent; without its body for a HEAD (the head still
    /// gives the body's length, as HTTP says).
    fn to_bytes(&self, with_body: bool) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            self.reason,
            self.content_type,
            self.body.len()
        );
        if self.status == 405 {
            head.push_str("Allow: GET, HEAD\r\n");
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        if with_body {
            bytes.extend_from_slice(self.body.as_bytes());
        }
        bytes
    }
}

fn respond(request: &Request, exporter: &Exporter) -> Response {
    match request {
        Request::Get { path, .. } => match path.as_str() {
            "/metrics" => match exporter.metrics() {
                Ok(body) => Response {
                    status: 200,
                    reason: "OK",
                    content_type: METRICS_CONTENT_TYPE,
                    body,
                },
                Err(_) => Response::text(500, "Internal Server Error", "cannot encode the metrics"),
            },
            "/healthz" => match exporter.health() {
                Ok(()) => Response::text(200, "OK", "ok"),
                Err(reason) => Response::text(503, "Service Unavailable", reason),
            },
            _ => Response::text(
                404,
                "Not Found",
                "not found; try GET /metrics or GET /healthz",
            ),
        },
        Request::Method(_) => Response::text(
            405,
            "Method Not Allowed",
            "only GET (or HEAD): GET /metrics or GET /healthz",
        ),
        Request::Malformed => Response::text(400, "Bad Request", "not an HTTP/1.x request"),
        Request::TooLarge => Response::text(
            431,
            "Request Header Fields Too Large",
            format!("the request head is over {MAX_REQUEST_BYTES} bytes or {MAX_HEADERS} headers"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::node::Node;
    use crate::priority::PriorityRules;
    use crate::store::Durability;

    #[test]
    fn a_request_head_is_parsed_once_whole() {
        let get = b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(parse(&get[..20]), None, "partial");
        assert_eq!(
            parse(get),
            Some(Request::Get {
                path: "/metrics".into(),
                head_only: false
            })
        );
        assert_eq!(
            parse(b"HEAD /healthz HTTP/1.1\r\n\r\n"),
            Some(Request::Get {
                path: "/healthz".into(),
                head_only: true
            })
        );
        assert_eq!(
            parse(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Some(Request::Method("POST".into()))
        );
        assert_eq!(
            parse(b"\x16\x03\x01 hello\r\n\r\n"),
            Some(Request::Malformed)
        );
        let many: String = (0..=MAX_HEADERS).map(|i| format!("h{i}: v\r\n")).collect();
        let head = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(parse(head.as_bytes()), Some(Request::TooLarge));
    }

    /// One exchange over an in-memory pipe: the whole answer as text.
    async fn ask(exporter: &Exporter, request: &[u8]) -> String {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let asking = async {
            client.write_all(request).await.expect("writes");
            client.shutdown().await.expect("closes its side");
            let mut answer = Vec::new();
            client.read_to_end(&mut answer).await.expect("reads");
            answer
        };
        let (served, answer) = tokio::join!(exchange(server, exporter), asking);
        served.expect("served");
        String::from_utf8(answer).expect("text")
    }

    /// A real node (inside the test's runtime) to observe.
    fn node() -> (tempfile::TempDir, Node) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let node = Node::start(
            &crate::store::Location::Sqlite(dir.path().join("metrics.db")),
            Durability::Normal,
            Config::default(),
            PriorityRules::default(),
        )
        .expect("starts");
        (dir, node)
    }

    #[tokio::test]
    async fn it_answers_metrics_health_and_refuses_the_rest() {
        let (_dir, node) = node();
        let exporter = Exporter::new(node.observed());
        let metrics = ask(&exporter, b"GET /metrics HTTP/1.1\r\n\r\n").await;
        assert!(metrics.starts_with("HTTP/1.1 200 OK\r\n"), "{metrics}");
        assert!(metrics.contains(&format!("Content-Type: {METRICS_CONTENT_TYPE}\r\n")));
        for line in [
            "# TYPE switchboard_connections gauge",
            "switchboard_connections{role=\"anonymous\"} 0",
            "switchboard_messages_stored_total 0",
            "switchboard_commit_duration_seconds_bucket{le=\"+Inf\"} ",
            "switchboard_refusals_total{code=\"rate_limited\"} 0",
            "switchboard_healthy 1",
        ] {
            assert!(metrics.contains(line), "no {line:?} in:\n{metrics}");
        }
        let health = ask(&exporter, b"GET /healthz HTTP/1.0\r\n\r\n").await;
        assert!(health.starts_with("HTTP/1.1 200 OK\r\n"), "{health}");
        assert!(health.ends_with("\r\n\r\nok\n"), "{health}");
        let missing = ask(&exporter, b"GET /admin HTTP/1.1\r\n\r\n").await;
        assert!(
            missing.starts_with("HTTP/1.1 404 Not Found\r\n"),
            "{missing}"
        );
        let post = ask(&exporter, b"POST /healthz HTTP/1.1\r\n\r\n").await;
        assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
        assert!(post.contains("Allow: GET, HEAD\r\n"), "{post}");
        let garbage = ask(&exporter, b"\x00\x01\x02 nonsense\r\n\r\n").await;
        assert!(
            garbage.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{garbage}"
        );
        let long = format!(
            "GET /{} HTTP/1.1\r\n\r\n",
            "a".repeat(3 * MAX_REQUEST_BYTES)
        );
        let huge = ask(&exporter, long.as_bytes()).await;
        assert!(huge.starts_with("HTTP/1.1 431 "), "{huge}");
        // A client that closes before a whole request is not answered.
        assert_eq!(ask(&exporter, b"GET /metr").await, "");
        node.stop(true).await;
    }

    #[tokio::test]
    async fn a_failing_node_answers_503_with_the_reason_in_one_line() {
        let (_dir, node) = node();
        let mut observed = node.observed();
        observed.failure = Box::new(|| Some("the storage writer stopped"));
        let exporter = Exporter::new(observed);
        let health = ask(&exporter, b"GET /healthz HTTP/1.1\r\n\r\n").await;
        assert!(
            health.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{health}"
        );
        let body = health.split("\r\n\r\n").nth(1).expect("a body");
        assert_eq!(body, "the storage writer stopped; the server is stopping\n");
        let metrics = ask(&exporter, b"GET /metrics HTTP/1.1\r\n\r\n").await;
        assert!(metrics.contains("switchboard_healthy 0\n"), "{metrics}");
        node.stop(true).await;
    }
}
