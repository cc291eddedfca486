//! The connection task: one TCP connection at a time, to one of the help
//! desk's nodes ([`Nodes`]), framed with the protocol's
//! [`ClientCodec`](switchboard_protocol::ClientCodec). Server frames become
//! [`NetEvent`]s for the app, and so do lines that are not frames it can
//! read; [`ClientFrame`]s from the app are written out. When the connection
//! drops it reports `Disconnected` and signs in again, on the next node
//! first, cycling through them with exponential backoff between rounds; the
//! app then re-subscribes with `since` and resends what is pending with the
//! same keys (see `app::update`), which works the same on any node of the
//! help desk. Frames the app sends while there is no connection are
//! dropped: the app keeps what matters (pending messages) and sends it
//! again on `Connected`.
//!
//! - `endpoint`: where the server is, TLS roots, hints for TLS mistakes.
//! - `nodes`: the help desk's nodes, which one the client is on, and in
//!   which order the others are tried.
//! - `connect`: one connection and sign-in, and why it failed.
//! - `retry`: the jittered backoff between attempts, and the first
//!   sign-in's few tries when the server stays silent.
//! - here: the task itself (`run`), one connection's `session` and its
//!   heartbeat.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use switchboard_protocol::{ClientFrame, RequestId, ServerFrame};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::app::{Msg, NetEvent};

mod connect;
mod endpoint;
mod nodes;
mod retry;

pub use connect::{
    CONNECT_TIMEOUT, ConnectError, Identity, Link, MAX_SERVER_LINE_BYTES, Transport, Welcome,
    connect,
};
pub use endpoint::Endpoint;
pub use nodes::Nodes;
pub use retry::{BACKOFF_MAX, BACKOFF_START, FIRST_SIGN_IN_ATTEMPTS, Retrying, connect_retrying};

/// When to check that a quiet connection is still alive, and how long to
/// wait for the answer.
///
/// A connection whose other end vanished (a laptop's lid closed, a NAT or
/// firewall that forgot the flow, a server machine that lost power) can
/// stay "open" here for many minutes while nothing gets through. Without a
/// check, an agent would sit in front of a queue that no longer moves.
#[derive(Debug, Clone, Copy)]
pub struct Heartbeat {
    /// After this long without a frame from the server, send a `ping`.
    pub after: Duration,
    /// Then, after this long still without a frame, give the connection up
    /// and reconnect.
    pub timeout: Duration,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self {
            after: Duration::from_secs(20),
            timeout: Duration::from_secs(10),
        }
    }
}

/// The id of the heartbeat's `ping`: the app numbers its own requests, so
/// a string cannot collide, and its `pong` is not passed on.
const HEARTBEAT_ID: &str = "heartbeat";

/// Runs until the app goes away (its sender is dropped): then says `bye`.
///
/// When the connection is lost it tries the other nodes, the next one
/// first ([`Nodes::round_after_current`]): a round of all of them, then a
/// jittered wait ([`reconnect_backoff`](retry::reconnect_backoff)), which
/// also comes before the first try so that the clients of a node that died
/// do not all arrive at the next one at once. The app hears of each try
/// and the node it goes to.
pub async fn run(
    mut nodes: Nodes,
    identity: Identity,
    first: (Link, Welcome),
    mut outgoing: mpsc::Receiver<ClientFrame>,
    events: mpsc::Sender<Msg>,
    heartbeat: Heartbeat,
) {
    let (mut conn, mut welcome) = first;
    loop {
        let connected = NetEvent::Connected {
            node: nodes.current().addr.clone(),
            agents_online: welcome.agents_online,
        };
        if events.send(Msg::Net(connected)).await.is_err() {
            return;
        }
        let Some(mut reason) = session(&mut conn, &mut outgoing, &events, heartbeat).await else {
            return;
        };
        let mut backoff = retry::reconnect_backoff();
        let mut attempt = 1;
        (conn, welcome) = 'reconnect: loop {
            let round_wait = backoff.next_wait(retry::random()).unwrap_or(BACKOFF_MAX);
            for (step, index) in nodes.round_after_current().enumerate() {
                let wait = if step == 0 {
                    round_wait
                } else {
                    Duration::ZERO
                };
                let next = nodes.endpoint(index).addr.clone();
                let lost = NetEvent::Disconnected {
                    attempt,
                    reason: format!("{reason}; trying {next} {}", in_so_long(wait)),
                    next,
                };
                if events.send(Msg::Net(lost)).await.is_err() {
                    return;
                }
                if !discard_for(wait, &mut outgoing).await {
                    return;
                }
                match connect(nodes.endpoint(index), &identity).await {
                    Ok(signed_in) => {
                        nodes.settle_on(index);
                        break 'reconnect signed_in;
                    }
                    Err(e) if e.is_permanent() => {
                        let _ = events.send(Msg::Net(NetEvent::Fatal(e.to_string()))).await;
                        return;
                    }
                    Err(e) => reason = e.to_string(),
                }
                attempt += 1;
            }
        };
        // Frames queued for the lost connection are stale; the app resends
        // what still matters when it hears `Connected`.
        while outgoing.try_recv().is_ok() {}
    }
}

/// `in 0.2 s`, or `now` for the next node of a round.
fn in_so_long(wait: Duration) -> String {
    if wait.is_zero() {
        "now".to_owned()
    } else {
        format!("in {:.1} s", wait.as_secs_f64())
    }
}

/// Moves frames both ways until the connection ends (`Some(reason)`) or the
/// app is gone (`None`). Any frame from the server shows the connection is
/// alive; after `heartbeat.after` without one it sends a `ping`, and gives
/// the connection up if nothing comes back within `heartbeat.timeout`.
async fn session(
    conn: &mut Link,
    outgoing: &mut mpsc::Receiver<ClientFrame>,
    events: &mpsc::Sender<Msg>,
    heartbeat: Heartbeat,
) -> Option<String> {
    let mut heard = Instant::now();
    let mut pinged = false;
    loop {
        let check = if pinged {
            heard + heartbeat.after + heartbeat.timeout
        } else {
            heard + heartbeat.after
        };
        tokio::select! {
            () = tokio::time::sleep_until(check) => {
                if pinged {
                    let silent = heartbeat.after + heartbeat.timeout;
                    return Some(format!("no answer from the server for {} s", silent.as_secs()));
                }
                let ping = ClientFrame::Ping { id: Some(RequestId::Str(HEARTBEAT_ID.into())) };
                if let Err(e) = conn.send(ping).await {
                    return Some(e.to_string());
                }
                pinged = true;
            }
            frame = conn.next() => {
                // Any line, even one we cannot read, shows the server is there.
                if let Some(Ok(_)) = &frame {
                    heard = Instant::now();
                    pinged = false;
                }
                match frame {
                    Some(Ok(Ok(frame))) => {
                        if is_heartbeat(&frame) {
                            continue;
                        }
                        let bye = matches!(frame, ServerFrame::Bye { .. });
                        events.send(Msg::Net(NetEvent::Frame(frame))).await.ok()?;
                        if bye {
                            return Some("the server said bye".to_owned());
                        }
                    }
                    // A line the client could not read (the server's protocol is
                    // newer, or broken): the codec has skipped it and the
                    // connection goes on, but the app hears of it, as it may
                    // have been the reply that a request waits for.
                    Some(Ok(Err(bad))) => {
                        events.send(Msg::Net(NetEvent::Unreadable(bad))).await.ok()?;
                    }
                    Some(Err(e)) => return Some(e.to_string()),
                    None => return Some("the server closed the connection".to_owned()),
                }
            }
            frame = outgoing.recv() => match frame {
                Some(frame) => {
                    if let Err(e) = conn.send(frame).await {
                        return Some(e.to_string());
                    }
                }
                None => {
                    // Best effort: we are leaving either way.
                    let _ = conn.send(ClientFrame::Bye { id: None }).await;
                    return None;
                }
            },
        }
    }
}

fn is_heartbeat(frame: &ServerFrame) -> bool {
    matches!(frame, ServerFrame::Pong { id: Some(RequestId::Str(id)) } if id == HEARTBEAT_ID)
}

/// Waits `wait`, dropping frames the app sends meanwhile; `false` if the app is gone.
async fn discard_for(wait: Duration, outgoing: &mut mpsc::Receiver<ClientFrame>) -> bool {
    let sleep = tokio::time::sleep(wait);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            () = &mut sleep => return true,
            frame = outgoing.recv() => if frame.is_none() { return false },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_protocol::codec::encode_into;
    use switchboard_protocol::{FrameError, Message, Priority};
    use tokio::io::{DuplexStream, duplex};
    use tokio::task::JoinHandle;
    use tokio_util::bytes::BytesMut;
    use tokio_util::codec::LinesCodec;

    use crate::app::HISTORY_PAGE;
    use crate::app::test_support::name;
    use tokio_util::codec::Framed;

    use super::connect::framed;

    pub(super) fn message(id: u64, user: &str, agent: Option<&str>, body: &str) -> Message {
        crate::app::test_support::message_from(id, user, agent, body, Priority::Urgent)
    }

    const BEAT: Heartbeat = Heartbeat {
        after: Duration::from_secs(20),
        timeout: Duration::from_secs(10),
    };

    const PING: &str = r#"{"type":"ping","id":"heartbeat"}"#;

    const PONG: &str = r#"{"type":"pong","id":"heartbeat"}"#;

    /// A signed-in session over an in-memory stream: the server's end (as
    /// lines), what the app receives, the app's sender (kept, or the session
    /// ends), and the session's outcome.
    struct Rig {
        server: Framed<DuplexStream, LinesCodec>,
        app: mpsc::Receiver<Msg>,
        _to_net: mpsc::Sender<ClientFrame>,
        session: JoinHandle<Option<String>>,
    }

    fn rig() -> Rig {
        let (client, server) = duplex(4096);
        let mut conn = framed(Box::new(client));
        let (to_net, mut outgoing) = mpsc::channel(4);
        let (events, app) = mpsc::channel(4);
        let session =
            tokio::spawn(async move { session(&mut conn, &mut outgoing, &events, BEAT).await });
        Rig {
            server: Framed::new(server, LinesCodec::new()),
            app,
            _to_net: to_net,
            session,
        }
    }

    /// Time is paused: a line that never comes fails here, after two
    /// minutes of virtual time, instead of hanging the test.
    const PATIENCE: Duration = Duration::from_secs(120);

    async fn next_line(server: &mut Framed<DuplexStream, LinesCodec>) -> String {
        tokio::time::timeout(PATIENCE, server.next())
            .await
            .expect("a line within two minutes")
            .expect("the client is connected")
            .expect("a line")
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_connection_is_pinged_and_kept_while_the_server_answers() {
        let mut rig = rig();
        let start = Instant::now();
        for beat in 1..=3 {
            assert_eq!(next_line(&mut rig.server).await, PING);
            assert_eq!(start.elapsed(), BEAT.after * beat);
            rig.server.send(PONG).await.expect("answers");
        }
        assert!(!rig.session.is_finished());
        assert!(rig.app.try_recv().is_err(), "the app hears nothing of it");
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_that_stops_answering_is_given_up() {
        let mut rig = rig();
        let start = Instant::now();
        assert_eq!(next_line(&mut rig.server).await, PING);
        let reason = tokio::time::timeout(PATIENCE, rig.session)
            .await
            .expect("ends within two minutes")
            .expect("runs")
            .expect("the connection is given up");
        assert_eq!(start.elapsed(), BEAT.after + BEAT.timeout);
        assert!(
            reason.contains("no answer from the server for 30 s"),
            "{reason}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn any_frame_from_the_server_puts_the_ping_off() {
        let mut rig = rig();
        let start = Instant::now();
        tokio::time::sleep(Duration::from_secs(15)).await;
        rig.server
            .send(r#"{"type":"agents","online":2}"#)
            .await
            .expect("sends");
        match rig.app.recv().await {
            Some(Msg::Net(NetEvent::Frame(ServerFrame::Agents { online: 2 }))) => {}
            _ => panic!("the event reaches the app"),
        }
        assert_eq!(next_line(&mut rig.server).await, PING);
        assert_eq!(start.elapsed(), Duration::from_secs(15) + BEAT.after);
    }

    /// The node the client is on drops it: the task says which node it
    /// tries next, signs in there, and tells the app it is on that node.
    #[tokio::test]
    async fn a_lost_node_is_left_for_the_next_one() {
        let (alive, server) = welcoming_server().await;
        let (client, first_node) = duplex(4096);
        let nodes = Nodes::new(vec![
            Endpoint::plain("127.0.0.1:1"),
            Endpoint::plain(&alive),
        ])
        .expect("not empty");
        let identity = Identity {
            role: switchboard_protocol::Role::User,
            name: name("ana"),
            token: None,
        };
        let welcome = Welcome {
            token: None,
            agents_online: None,
        };
        let (_to_net, outgoing) = mpsc::channel(4);
        let (events, mut app) = mpsc::channel(16);
        let task = tokio::spawn(run(
            nodes,
            identity,
            (framed(Box::new(client)), welcome),
            outgoing,
            events,
            BEAT,
        ));
        let on = |event| match event {
            NetEvent::Connected { node, .. } => node,
            other => panic!("expected Connected, got {other:?}"),
        };
        assert_eq!(on(next_event(&mut app).await), "127.0.0.1:1");
        drop(first_node);
        match next_event(&mut app).await {
            NetEvent::Disconnected {
                attempt: 1,
                reason,
                next,
            } => {
                assert_eq!(next, alive);
                assert!(
                    reason.starts_with(&format!(
                        "the server closed the connection; trying {alive} in "
                    )),
                    "{reason}"
                );
            }
            other => panic!("expected Disconnected, got {other:?}"),
        }
        assert_eq!(on(next_event(&mut app).await), alive);
        task.abort();
        server.abort();
    }

    /// A server that greets and welcomes whoever says hello, once.
    pub(super) async fn welcoming_server() -> (String, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let addr = listener.local_addr().expect("has an address").to_string();
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.expect("accepts");
            let mut lines = Framed::new(stream, LinesCodec::new());
            lines
                .send(
                    r#"{"type":"greeting","server":"switchboard","version":"0.1.0","protocol":2}"#,
                )
                .await
                .expect("greets");
            let _hello = lines.next().await;
            lines
                .send(r#"{"type":"welcome","role":"user","name":"ana","agents_online":1}"#)
                .await
                .expect("welcomes");
            while let Some(Ok(_)) = lines.next().await {}
        });
        (addr, server)
    }

    /// `frame` as the server writes it, without the newline.
    pub(super) fn line_of(frame: &ServerFrame) -> String {
        let mut line = BytesMut::new();
        encode_into(frame, &mut line).expect("encodes");
        let line = String::from_utf8(line.to_vec()).expect("UTF-8");
        line.trim_end().to_owned()
    }

    /// What the app hears next.
    async fn next_event(app: &mut mpsc::Receiver<Msg>) -> NetEvent {
        match tokio::time::timeout(PATIENCE, app.recv()).await {
            Ok(Some(Msg::Net(event))) => event,
            Ok(other) => panic!("expected a network event, got {other:?}"),
            Err(_) => panic!("nothing reached the app within two minutes"),
        }
    }

    /// The app asks for [`HISTORY_PAGE`] messages at a time; a page of long
    /// messages is one line well over the protocol's default 64 KiB.
    #[tokio::test(start_paused = true)]
    async fn a_history_reply_over_64_kib_reaches_the_app() {
        let mut rig = rig();
        let body = "a long message ".repeat(47);
        let reply = ServerFrame::History {
            id: Some(RequestId::Int(7)),
            user: name("ana"),
            messages: (1..=u64::from(HISTORY_PAGE))
                .map(|id| message(id, "ana", None, &body))
                .collect(),
        };
        let line = line_of(&reply);
        assert!(line.len() > 65_536, "only {} bytes", line.len());
        rig.server.send(line).await.expect("sends");
        assert_eq!(next_event(&mut rig.app).await, NetEvent::Frame(reply));
    }

    /// Skipped lines used to vanish; a conversation waiting on one stayed
    /// "loading" for ever.
    #[tokio::test(start_paused = true)]
    async fn a_line_the_client_cannot_read_is_reported_and_the_connection_kept() {
        let mut rig = rig();
        rig.server
            .send(r#"{"type":"from_the_future","id":3}"#)
            .await
            .expect("sends");
        match next_event(&mut rig.app).await {
            NetEvent::Unreadable(FrameError::BadFrame { .. }) => {}
            other => panic!("expected Unreadable(BadFrame), got {other:?}"),
        }
        rig.server
            .send(r#"{"type":"agents","online":2}"#)
            .await
            .expect("sends");
        assert_eq!(
            next_event(&mut rig.app).await,
            NetEvent::Frame(ServerFrame::Agents { online: 2 })
        );
    }
}
