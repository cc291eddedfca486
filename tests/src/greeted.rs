//! Connecting as every client must (issue 15, finding 9): give up on a
//! connection whose greeting does not come within [`GREETING_TIMEOUT`] and
//! try again after a jittered, growing wait, a bounded number of times.
//!
//! When a burst of connects overflows the server's listen queue, Linux
//! drops the handshake's last ACK: the client's `connect` succeeds, the
//! server never hears of it, and a client that waits for the greeting
//! waits in silence. [`TestClient::connect`] goes through here, so a test
//! that opens many connections at once is not failed by that.
//!
//! The rule is the one in `switchboard_protocol::backoff`, spelled out
//! again: this crate stays a black box that does not link the server's
//! crates (see the crate doc).

use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;

use crate::client::TestClient;
use crate::frames::greeting;

/// How long, from the start of `connect`, an attempt waits for the greeting.
pub const GREETING_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts before the test fails: with the waits, about 40 s in all, far
/// longer than any listen queue stays full.
pub const CONNECT_ATTEMPTS: u32 = 6;
/// The first wait between attempts; each next one doubles, up to
/// [`MAX_RETRY_WAIT`]; each is drawn between half of that and all of it.
const FIRST_RETRY_WAIT: Duration = Duration::from_millis(200);
const MAX_RETRY_WAIT: Duration = Duration::from_secs(3);

/// Why [`TestClient::connect_greeted`] gave up.
#[derive(Debug)]
pub struct NoGreeting {
    pub addr: SocketAddr,
    pub attempts: u32,
    pub last: String,
}

impl std::fmt::Display for NoGreeting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "no greeting from {} in {} attempts ({} each; last: {}): the server is \
             not accepting connections (its listen queue full, or it is stuck)",
            self.addr,
            self.attempts,
            humantime(GREETING_TIMEOUT),
            self.last
        )
    }
}

fn humantime(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}

impl TestClient {
    /// Connects and checks that the server speaks first with the exact
    /// greeting, retrying a connection that stays silent (see the module
    /// doc). Fails the test after [`CONNECT_ATTEMPTS`].
    pub async fn connect(addr: SocketAddr) -> TestClient {
        match TestClient::connect_greeted(addr, GREETING_TIMEOUT, CONNECT_ATTEMPTS).await {
            Ok((client, _)) => client,
            Err(error) => panic!("{error}"),
        }
    }

    /// [`TestClient::connect`] with its timeout and attempts chosen:
    /// the greeted client and the attempts it took, or why it gave up.
    /// A first frame other than the greeting fails the test at once.
    pub async fn connect_greeted(
        addr: SocketAddr,
        greeting_timeout: Duration,
        attempts: u32,
    ) -> Result<(TestClient, u32), NoGreeting> {
        let mut step = FIRST_RETRY_WAIT;
        let mut last = String::new();
        for attempt in 1..=attempts {
            match tokio::time::timeout(greeting_timeout, first_frame(addr)).await {
                Ok(Ok((client, first))) => {
                    assert_eq!(first, greeting(), "the first frame must be the greeting");
                    return Ok((client, attempt));
                }
                Ok(Err(error)) => last = error,
                Err(_) => last = format!("nothing within {}", humantime(greeting_timeout)),
            }
            if attempt < attempts {
                tokio::time::sleep(jittered(step)).await;
                step = (step * 2).min(MAX_RETRY_WAIT);
            }
        }
        Err(NoGreeting {
            addr,
            attempts,
            last,
        })
    }
}

/// Connects and reads the first frame, with no timeout of its own.
async fn first_frame(addr: SocketAddr) -> Result<(TestClient, serde_json::Value), String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|error| format!("connect failed: {error}"))?;
    let mut client = TestClient::from_stream(stream);
    match client.next_frame_within(Duration::MAX).await {
        Some(Some(first)) => Ok((client, first)),
        _ => Err("closed before the greeting".to_owned()),
    }
}

/// A wait between half of `step` and all of it, so that clients cut off
/// together do not come back together.
fn jittered(step: Duration) -> Duration {
    let random = RandomState::new().hash_one(std::time::Instant::now());
    let half = step / 2;
    let spread_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX) + 1;
    half + Duration::from_millis(random % spread_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jittered_waits_lie_within_their_step_and_differ() {
        let step = Duration::from_secs(2);
        let waits: std::collections::HashSet<Duration> = (0..50).map(|_| jittered(step)).collect();
        assert!(waits.iter().all(|w| (step / 2..=step).contains(w)));
        assert!(waits.len() > 10, "{waits:?}");
    }

    /// A listener that nobody accepts on holds a handful of completed
    /// connections; past those, `connect` may succeed and the greeting never
    /// comes. The harness gives up with an error instead of hanging.
    #[tokio::test]
    async fn a_server_that_never_greets_is_given_up_on_with_a_reason() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
        let addr = listener.local_addr().expect("an address");
        let short = Duration::from_millis(200);
        let error = TestClient::connect_greeted(addr, short, 3)
            .await
            .err()
            .expect("no greeting from a silent listener");
        assert_eq!(error.attempts, 3);
        let text = error.to_string();
        assert!(text.contains("no greeting from"), "{text}");
        assert!(text.contains("nothing within 0.2 s"), "{text}");
    }
}
