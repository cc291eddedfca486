//! `ping`: a liveness check. Because a session writes out everything already
//! queued for it before it reads the next request, a `pong` also tells the
//! client that no event it was due is still on its way.

use switchboard_protocol::{RequestId, ServerFrame};

use super::Reply;

pub fn apply(request: Option<RequestId>) -> Reply {
    Reply::Now(ServerFrame::Pong { id: request })
}
