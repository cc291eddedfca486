//! `ping`: a liveness check, and a barrier. Because a session writes out
//! everything already queued for it before it reads the next request, a
//! `pong` also tells the client that no event it was due is still on its
//! way; in a cluster the node first catches up with every commit the
//! database holds (`Services::catch_up`), whichever node made it.

use switchboard_protocol::ServerFrame;

use super::{Caller, Reply};
use crate::error::RequestError;

pub async fn apply(caller: Caller<'_>) -> Result<Reply, RequestError> {
    caller.services.catch_up().await?;
    Ok(Reply::Now(ServerFrame::Pong { id: caller.request }))
}
