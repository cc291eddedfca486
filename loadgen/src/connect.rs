//! Opening the run's connections: agent tokens (given or provisioned), the
//! agents that never read, and users, in a sliding window of at most
//! [`CONNECT_CONCURRENCY`] handshakes at once rather than all together: a
//! burst of thousands of connects overflows the server's listen backlog and
//! measures its accept loop instead of what the run is about.

use futures::{StreamExt, TryStreamExt};
use switchboard_protocol::Role;
use tokio::time::{Instant, timeout_at};

use crate::args::{Args, Plan};
use crate::conn::{Conn, Identity};
use crate::error::LoadError;
use crate::provision;

/// Connections being opened at once: enough to set up thousands in seconds,
/// few enough to stay inside the server's listen backlog.
const CONNECT_CONCURRENCY: usize = 64;

/// Agent tokens for `count` agents named `{tag}{kind}{index}`: the ones on
/// the command line for the run's agents (`kind` `a`), else provisioned.
pub async fn agent_tokens(
    args: &Args,
    tag: &str,
    kind: char,
    count: u32,
) -> Result<Vec<(String, String)>, LoadError> {
    if kind == 'a' && !args.agent_tokens.is_empty() {
        return Ok(args.agent_tokens.clone());
    }
    let Some(db) = &args.db else {
        return Ok(Vec::new());
    };
    let switchboard = provision::switchboard_binary(args.switchboard.as_deref());
    let mut tokens = Vec::with_capacity(count as usize);
    for index in 0..count {
        let name = format!("{tag}{kind}{index}");
        let token = provision::add_agent(&switchboard, db, &name).await?;
        tokens.push((name, token));
    }
    Ok(tokens)
}

/// Agents that subscribe and then never read: their sockets, held unread.
pub async fn connect_stuck_agents(
    args: &Args,
    tag: &str,
    plan: &Plan,
) -> Result<Vec<tokio::net::TcpStream>, LoadError> {
    let mut streams = Vec::new();
    let tokens = agent_tokens(args, tag, 's', plan.stuck_agents).await?;
    for (index, (name, token)) in (0..).zip(tokens) {
        let who = Identity {
            role: Role::Agent,
            name: &name,
            token: Some(&token),
        };
        if let Some(stream) = Conn::open(plan.node(index), who).await?.into_stream() {
            streams.push(stream);
        }
    }
    Ok(streams)
}

/// How many stuck agents the server has closed: reading what each was sent
/// reaches the end of the stream within a moment if it was cut off.
pub async fn count_cut_off(stuck: Vec<tokio::net::TcpStream>) -> u32 {
    use tokio::io::AsyncReadExt;
    /// Long enough to read what the kernel buffered (a few MB), short enough
    /// not to hold up the report when the server kept the agent.
    const DRAIN: std::time::Duration = std::time::Duration::from_secs(3);
    let mut cut_off = 0;
    for mut stream in stuck {
        let mut sink = Vec::new();
        if let Ok(Ok(_)) = tokio::time::timeout(DRAIN, stream.read_to_end(&mut sink)).await {
            cut_off += 1;
        }
    }
    cut_off
}

/// `count` new users named `{tag}{kind}{index}`, subscribed, in index order,
/// each on the node [`Plan::node`] gives it, passed through `keep` as soon
/// as it is ready.
pub async fn connect_users<T>(
    plan: &Plan,
    tag: &str,
    kind: char,
    count: u32,
    deadline: Instant,
    keep: fn(Conn) -> Option<T>,
) -> Result<Vec<T>, LoadError> {
    let opening = futures::stream::iter(0..count)
        .map(|index| async move {
            let server = plan.node(index);
            let name = format!("{tag}{kind}{index}");
            let who = Identity {
                role: Role::User,
                name: &name,
                token: None,
            };
            let conn = Conn::open(server, who).await?;
            keep(conn)
                .map(|kept| (index, kept))
                .ok_or_else(|| LoadError::Handshake {
                    what: format!("user {name}"),
                    reason: "the connection could not be kept open".into(),
                })
        })
        .buffer_unordered(CONNECT_CONCURRENCY)
        .try_collect::<Vec<_>>();
    let mut conns = timeout_at(deadline, opening)
        .await
        .map_err(|_| LoadError::SetupTimeout)??;
    conns.sort_by_key(|(index, _)| *index);
    Ok(conns.into_iter().map(|(_, conn)| conn).collect())
}
