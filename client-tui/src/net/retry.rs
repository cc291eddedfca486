//! Waiting between attempts to connect: the jittered backoff of
//! [`switchboard_protocol::Backoff`] for reconnecting (for ever, while the
//! app runs), and [`connect_retrying`], the first sign-in, which tries each
//! node in turn, a few rounds when they stay silent, and then says what
//! happened.
//!
//! A server swamped by a burst of connects can lose a handshake in
//! silence: the connection looks open and no greeting comes (issue 15,
//! finding 9). [`CONNECT_TIMEOUT`](super::CONNECT_TIMEOUT) gives such an attempt up; trying again
//! after a random part of a growing wait spreads the clients that failed
//! together, so they do not all come back at once.

use std::fmt;
use std::time::Duration;

use switchboard_protocol::{Backoff, ErrorCode};

use super::connect::{ConnectError, Identity, Link, Welcome, connect};
use super::nodes::Nodes;

/// First wait before reconnecting; each next step doubles.
pub const BACKOFF_START: Duration = Duration::from_millis(250);

/// The longest step between reconnection attempts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(8);

/// Attempts at the first sign-in before the client gives up: with the
/// waits, under half a minute, long enough for a burst to pass.
pub const FIRST_SIGN_IN_ATTEMPTS: u32 = 4;

/// Reconnecting while the app runs: for ever, the app shows each attempt.
pub fn reconnect_backoff() -> Backoff {
    Backoff::new(BACKOFF_START, BACKOFF_MAX)
}

fn first_sign_in_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(500), Duration::from_secs(4))
        .with_retries(FIRST_SIGN_IN_ATTEMPTS - 1)
}

/// Any number, to spread the waits (the clock if the system has no
/// randomness to give).
pub fn random() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.subsec_nanos().into())
    })
}

/// A failure worth another attempt at the first sign-in: the server stayed
/// silent (or dropped the connection, or was full), which a moment can
/// change. A wrong address or a refused name fails at once. With several
/// nodes: another round is worth it if any node failed that way.
fn worth_retrying(error: &ConnectError) -> bool {
    match error {
        ConnectError::Timeout { .. } | ConnectError::Closed => true,
        ConnectError::Refused { code, .. } => *code == ErrorCode::ServerBusy,
        ConnectError::EveryNode { failures, .. } => {
            failures.iter().any(|(_, error)| worth_retrying(error))
        }
        _ => false,
    }
}

/// One failed attempt, and when the next comes: what the client prints.
#[derive(Debug)]
pub struct Retrying<'a> {
    pub error: &'a ConnectError,
    /// The attempt that comes next (2 for the first retry).
    pub next_attempt: u32,
    pub attempts: u32,
    pub wait: Duration,
}

impl fmt::Display for Retrying<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}; trying again in {:.1} s (attempt {} of {})",
            self.error,
            self.wait.as_secs_f64(),
            self.next_attempt,
            self.attempts
        )
    }
}

/// [`connect`] to each node in turn, from the first listed, until one
/// signs in (`nodes` then says which). A node that fails is passed over for
/// the next; a refusal of who signs in (a wrong token) ends it at once, as
/// every node of the help desk would say the same. When a whole round
/// fails, it is tried again, up to [`FIRST_SIGN_IN_ATTEMPTS`] rounds, while
/// some node stayed silent; `on_retry` hears of each wait. The last error,
/// if all fail, says how often it was tried and what to do.
pub async fn connect_retrying(
    nodes: &mut Nodes,
    identity: &Identity,
    mut on_retry: impl FnMut(&Retrying<'_>),
) -> Result<(Link, Welcome), ConnectError> {
    let mut backoff = first_sign_in_backoff();
    let mut attempt = 1;
    loop {
        let mut failures = Vec::new();
        for index in nodes.first_round() {
            let endpoint = nodes.endpoint(index);
            match connect(endpoint, identity).await {
                Ok(signed_in) => {
                    nodes.settle_on(index);
                    return Ok(signed_in);
                }
                Err(error) if error.is_permanent() => return Err(error),
                Err(error) => failures.push((endpoint.addr.clone(), error)),
            }
        }
        let error = round_failed(identity, failures);
        if !worth_retrying(&error) {
            return Err(error);
        }
        let Some(wait) = backoff.next_wait(random()) else {
            return Err(ConnectError::GaveUp {
                attempts: attempt,
                last: Box::new(error),
            });
        };
        attempt += 1;
        on_retry(&Retrying {
            error: &error,
            next_attempt: attempt,
            attempts: FIRST_SIGN_IN_ATTEMPTS,
            wait,
        });
        tokio::time::sleep(wait).await;
    }
}

/// Why a round failed: one node's error as it is, several nodes' together.
fn round_failed(identity: &Identity, mut failures: Vec<(String, ConnectError)>) -> ConnectError {
    match failures.pop() {
        Some((_, only)) if failures.is_empty() => only,
        Some(last) => {
            failures.push(last);
            ConnectError::EveryNode {
                name: identity.name.clone(),
                failures,
            }
        }
        None => ConnectError::Protocol("no server address to connect to".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::test_support::name;
    use crate::net::tests::welcoming_server;
    use crate::net::{CONNECT_TIMEOUT, Endpoint};
    use switchboard_protocol::Role;

    fn one_node(addr: &str) -> Nodes {
        nodes(&[addr])
    }

    fn nodes(addrs: &[&str]) -> Nodes {
        Nodes::new(addrs.iter().map(|a| Endpoint::plain(*a)).collect()).expect("not empty")
    }

    /// A port nothing listens on: bound, then released.
    fn dead_address() -> String {
        std::net::TcpListener::bind("127.0.0.1:0")
            .expect("binds")
            .local_addr()
            .expect("has an address")
            .to_string()
    }

    fn ana() -> Identity {
        Identity {
            role: Role::User,
            name: name("ana"),
            token: None,
        }
    }

    /// A listener nobody accepts on: connections complete in the kernel
    /// and no greeting comes, as after a handshake lost to a full queue.
    #[tokio::test(start_paused = true)]
    async fn a_silent_server_is_tried_a_few_times_then_explained() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
        let addr = listener.local_addr().expect("has an address").to_string();
        let mut said = Vec::new();
        let started = tokio::time::Instant::now();
        let mut nodes = one_node(&addr);
        let result = connect_retrying(&mut nodes, &ana(), |retrying| {
            said.push(retrying.to_string());
        })
        .await;
        let Err(error) = result else {
            panic!("signed in to a silent server");
        };
        assert_eq!(said.len(), 3, "{said:?}");
        assert!(
            said[0].starts_with(&format!(
                "the server at {addr} did not answer within 5s (if it serves TLS, add --tls); \
                 trying again in "
            )),
            "{}",
            said[0]
        );
        assert!(said[2].ends_with("(attempt 4 of 4)"), "{}", said[2]);
        let longest =
            CONNECT_TIMEOUT * 4 + first_sign_in_backoff().longest_total().expect("bounded");
        assert!(started.elapsed() <= longest, "{:?}", started.elapsed());
        let text = error.to_string();
        assert!(text.contains("gave up after 4 attempts"), "{text}");
        assert!(text.contains("try again in a minute"), "{text}");
    }

    #[tokio::test]
    async fn a_server_that_is_not_there_is_reported_at_once() {
        // Bound, then closed: nothing listens on the port any more.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("binds")
            .local_addr()
            .expect("has an address")
            .to_string();
        let mut retries = 0;
        let result = connect_retrying(&mut one_node(&addr), &ana(), |_| retries += 1).await;
        assert!(matches!(result, Err(ConnectError::Unreachable { .. })));
        assert_eq!(retries, 0);
    }

    #[tokio::test]
    async fn a_dead_first_node_is_passed_over_for_the_next() {
        let dead = dead_address();
        let (alive, server) = welcoming_server().await;
        let mut nodes = nodes(&[&dead, &alive]);
        let mut retries = 0;
        let (_link, welcome) = connect_retrying(&mut nodes, &ana(), |_| retries += 1)
            .await
            .expect("signs in on the second node");
        assert_eq!(welcome.agents_online, Some(1));
        assert_eq!(nodes.current().addr, alive);
        assert_eq!(retries, 0, "no wait: the next node is tried at once");
        server.abort();
    }

    /// Every node fails: the error names each and why, in the order tried;
    /// a silent one makes the rounds repeat, as with one node.
    #[tokio::test(start_paused = true)]
    async fn when_every_node_fails_each_is_named() {
        let dead = dead_address();
        let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
        let silent_addr = silent.local_addr().expect("has an address").to_string();
        let mut rounds = 0;
        let result = connect_retrying(&mut nodes(&[&dead, &silent_addr]), &ana(), |_| {
            rounds += 1;
        })
        .await;
        let Err(error) = result else {
            panic!("signed in with no server up");
        };
        assert_eq!(rounds, 3);
        let text = error.to_string();
        assert!(
            text.starts_with(&format!(
                "no server of the 2 given let ana sign in: cannot reach the switchboard server \
                 at {dead}: "
            )) && text.contains(&format!(
                "; the server at {silent_addr} did not answer within 5s"
            )),
            "{text}"
        );
        assert!(text.contains("gave up after 4 attempts"), "{text}");
        // Only dead nodes: nothing a moment could change, so no retry.
        let mut rounds = 0;
        let result = connect_retrying(&mut nodes(&[&dead, &dead_address()]), &ana(), |_| {
            rounds += 1;
        })
        .await;
        assert!(matches!(result, Err(ConnectError::EveryNode { .. })));
        assert_eq!(rounds, 0);
    }
}
