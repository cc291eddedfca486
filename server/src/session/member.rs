//! A session's record of its connection: written when the connection
//! first subscribes, committed before its `subscribed` is sent, and
//! removed when the session goes, however it goes (`Drop`). In a cluster
//! (issue 16) every connection is recorded in the shared database
//! (`sb_connections`), so that every node counts it in presence and
//! `agents_online` from a position below anything that follows; a node
//! that dies leaves its records to the lease sweep (`crate::lease`). Agents'
//! connections are recorded on one node too: their presence is the clock
//! of auto-release (protocol version 2, `store/rules/connections.rs`),
//! which the writer reads in its transaction.

use switchboard_protocol::Role;
use tokio::io::{AsyncRead, AsyncWrite};

use super::Session;
use crate::cmd::Command;
use std::sync::Arc;

use crate::error::RequestError;
use crate::event::{ConnId, Member};
use crate::identity::Identity;
use crate::lease::OwnRecords;
use crate::services::Services;
use crate::store::Store;

/// This connection, recorded; removed again when dropped.
pub(super) struct MemberRecord {
    store: Store,
    member: Member,
    /// This node's list of recorded connections, which `lease.rs` keeps
    /// the database's records true to.
    records: Arc<OwnRecords>,
}

impl MemberRecord {
    /// Records the connection and waits for the commit.
    pub(super) async fn open(
        services: &Services,
        conn: ConnId,
        identity: &Identity,
    ) -> Result<MemberRecord, RequestError> {
        let member = Member {
            node: services.router.node(),
            conn,
            role: identity.role,
            name: identity.name.clone(),
        };
        // Listed before the write: whatever becomes of it, the record is
        // this session's until it is dropped (then removed, or reconciled).
        services.records.insert(conn);
        let record = MemberRecord {
            store: services.store.clone(),
            member,
            records: Arc::clone(&services.records),
        };
        services
            .store
            .record_member_open(record.member.clone())
            .await
            .map_err(|error| {
                tracing::error!(%error, "recording a connection for the cluster failed");
                RequestError::Internal
            })?;
        Ok(record)
    }
}

impl Drop for MemberRecord {
    fn drop(&mut self) {
        self.records.remove(self.member.conn);
        if !self.store.record_member_closed(self.member.clone()) {
            tracing::warn!(
                conn = self.member.conn,
                "could not queue the removal of a closed connection's record; the next \
                 reconciliation removes it"
            );
        }
    }
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    /// In a cluster, a connection's first `subscribe` records it for every
    /// node's presence first; an agent's, on any server, for auto-release
    /// (`member.rs`).
    pub(super) async fn record_membership(
        &mut self,
        command: &Command,
        identity: &Identity,
    ) -> Result<(), RequestError> {
        if matches!(command, Command::Subscribe(_))
            && self.member.is_none()
            && (self.services.router.in_cluster() || identity.role == Role::Agent)
        {
            self.member = Some(MemberRecord::open(&self.services, self.conn, identity).await?);
        }
        Ok(())
    }
}
