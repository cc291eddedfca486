//! Storage behind one handle.
//!
//! [`Store`] is a cloneable handle; the database belongs to threads:
//! - one **writer** ([`writer`]) owns the only writing connection. Requests
//!   queue on a channel; it takes everything queued, runs it in one
//!   transaction, commits once, and only then hands the results, in commit
//!   order, to a [`CommitSink`] (the router, wired in `lib.rs`) — so nobody
//!   hears of a message before it is durable, and everyone hears of
//!   messages in the order they were stored. Storage never imports fan-out:
//!   they share only [`crate::event`].
//! - a few **readers** ([`reader`]) answer sign-ins, `history` and
//!   `subscribe` backlogs from their own connections, so reads never wait
//!   for a commit, never hold up a commit, and never block the async
//!   runtime. A backlog comes with the position ([`crate::event::Seq`]) of the snapshot
//!   it was read from: how it meets the live stream without a gap or a repeat.
//!
//! What each write and read means (who takes a conversation, idempotent
//! replays, the waiting queue, releases; who may sign in, what a backlog
//! holds, "a removed agent holds nothing") is in `rules`, written against
//! the `rules::Tables` and `rules::Reads` traits rather than SQL; their docs
//! are the contract, rules and concurrency, that a backend keeps, and
//! `contract/` tests it. The writer and readers run over `backend::Backend`
//! and `backend::ReadBackend`. Everything SQLite's is in `sqlite/`: opening
//! the file, the SQL (one file per table), the writer's prepared statements
//! behind `Tables`, the layout and migrations, the `agent` commands'
//! `Admin`. Everything PostgreSQL's is in `postgres/`, the same parts again,
//! plus the sequencer row that orders every write transaction (see its
//! module docs). [`Location`] says which, [`Admin`] serves the `agent`
//! commands on either. The writer logs what its commits cost (`commit_stats`),
//! and reports its health and figures to the metrics endpoint
//! ([`WriterHealth`], `health.rs`: "can this node commit?").
//! `copy/` moves a help desk from a SQLite file into an empty PostgreSQL
//! database ([`copy_to_postgres`], `switchboard copy`).

mod backend;
mod cluster;
mod commit_stats;
#[cfg(test)]
mod contract;
mod copy;
mod health;
mod outcome;
mod paging;
mod position;
mod postgres;
mod reader;
mod rules;
pub mod shared_feed;
mod sqlite;
mod startup;
mod stored_priority;
#[cfg(test)]
mod test_support;
mod threads;
mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

mod admin;
mod location;

pub use self::postgres::url::{BadPostgresUrl, CONNECT_TIMEOUT, PostgresUrl};
pub use admin::Admin;
pub use cluster::SharedDatabase;
pub use copy::{CopyError, CopyProgress, CopySummary, Counts, Kind, copy_to_postgres};
pub use health::{WriterFigures, WriterHealth};
pub use location::Location;
pub use rules::{Lifecycle, Notes};
pub use shared_feed::SharedFeed;
pub use sqlite::Durability;
pub use sqlite::admin::NameTaken;
use sqlite::server_lock::ServerLock;
pub use threads::StoreThreads;
use threads::start_threads;

/// What `benches/storage.rs` needs to fill a database through the writer's
/// own statements: SQLite's internals, for that bench alone (it turns the
/// feature on through a dev-dependency on this crate).
#[cfg(feature = "bench-internals")]
#[doc(hidden)]
pub mod bench_internals {
    pub use super::rules::NewMessage;
    pub use super::sqlite::open_database;
    pub use super::sqlite::queries;
    pub use super::sqlite::tables::HotStatements;
}
use sqlite::{cannot_open, connect, open_database};

use switchboard_protocol::{Body, Key, Name, Priority, Role, Token};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

pub use crate::event::Backlog;
use crate::event::{CommitSink, ConnId, Member, NodeId, Origin};
use crate::identity::Identity;
use reader::ReadJob;

/// Write requests waiting for the writer. Senders wait when it is full,
/// which slows clients down instead of growing memory.
const WRITE_QUEUE: usize = 8192;
/// Read requests waiting for a reader.
const READ_QUEUE: usize = 1024;
/// Reader threads: reads are short indexed lookups; two keep one busy
/// `history` from delaying sign-ins on a two-core machine.
const READERS: usize = 2;
/// The most a `since` resume returns: 10,000 messages (PROTOCOL.md), and
/// fewer if their bodies pass 8 MiB (docs/protocol.md, open point 5), so
/// that one resume neither holds the writer for long nor fills memory.
pub(crate) const RESUME_CAP: rules::ResumeCap = rules::ResumeCap {
    messages: 10_000,
    body_bytes: 8 << 20,
};
/// A long reply (a `history` page, a user's backlog) is read and held at
/// most this much at a time (`paging`): 64 messages, or fewer once their
/// bodies reach 256 KiB (16 of the longest). Small enough that a hundred
/// slow readers hold tens of MiB, not gigabytes; large enough that a page of
/// short messages is one read.
pub(crate) const REPLY_CHUNK: rules::ReplyChunk = rules::ReplyChunk {
    messages: 64,
    body_bytes: 256 << 10,
};

#[derive(Debug, Error)]
pub enum StoreError {
    /// The backend failed; its own error, boxed so that the handle's API
    /// names no backend's types.
    #[error("database: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
    #[error("the storage threads have stopped")]
    Stopped,
    /// The request's group could not be started or committed; the writer
    /// logged why.
    #[error("the write was not committed")]
    NotCommitted,
}

impl StoreError {
    /// A backend's own error, boxed (see [`StoreError::Backend`]).
    fn backend<E: std::error::Error + Send + Sync + 'static>(error: E) -> StoreError {
        StoreError::Backend(Box::new(error))
    }
}

// The underlying error is part of each message (`reason`), not a `source`:
// `main` prints the whole chain, which would say it twice. It is the
// backend's error as text, so that no backend's types reach the handle.
#[derive(Debug, Error)]
pub enum OpenError {
    #[error("cannot open the database {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    /// Not switchboard's, or a schema this build cannot use.
    #[error("{path}: {reason}")]
    Schema { path: PathBuf, reason: String },
    #[error(
        "cannot write to the database {path}: {reason}; switchboard stores every \
         message in it, so the file and its file system must be writable by this user"
    )]
    NotWritable {
        path: PathBuf,
        reason: std::io::Error,
    },
    #[error("cannot start a storage thread: {0}")]
    Thread(std::io::Error),
    /// Another server is serving this file (see `sqlite::server_lock`).
    #[error(
        "another switchboard is serving {db} (it holds {lock}); stop it first, or \
         give this server a database of its own with --db: two servers on one \
         SQLite file would each deliver only their own messages"
    )]
    InUse { db: PathBuf, lock: PathBuf },
    #[error("cannot lock {path}: {reason}")]
    Lock {
        path: PathBuf,
        reason: std::io::Error,
    },
    /// `url` is [`PostgresUrl`]'s `Display`, without the password; the
    /// client's reason never holds it.
    #[error(
        "cannot connect to PostgreSQL at {url}: {reason}; check that PostgreSQL is \
         running and reachable from here, and that --postgres (or SWITCHBOARD_POSTGRES) \
         names the right host, port, user, password and database"
    )]
    PostgresUnreachable { url: String, reason: String },
    /// `switchboard copy` is filling this database (see `postgres::open_store`).
    #[error(
        "`switchboard copy` is writing into the PostgreSQL database {url}; start the \
         server once the copy has finished"
    )]
    PostgresInUse { url: String },
    /// Not switchboard's, or a schema this build cannot use.
    #[error("PostgreSQL database {url}: {reason}")]
    PostgresSchema { url: String, reason: String },
}

/// An agent and its current token hash (`None` once removed).
pub type AgentCredential = (Name, Option<Vec<u8>>);

/// What a signed-in connection is, beyond its role: what `welcome` tells
/// an agent. Its rights are read again in each request's commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// An agent who may release, resolve and transfer any conversation.
    pub supervisor: bool,
}

/// An active agent as `agent list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentListing {
    pub name: Name,
    /// Conversations it holds.
    pub holds: u64,
    pub supervisor: bool,
}

/// The outcome of a user's first `hello`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    /// The name was new: here is its token, to show once.
    Created { token: Token },
    /// The name belongs to someone already.
    Taken,
}

/// A message to store, already validated and prioritised.
#[derive(Debug, Clone)]
pub struct SendRequest {
    pub origin: Origin,
    /// With the credential it signed in with, checked in the commit.
    pub from: Identity,
    /// The conversation: the user's own name when a user sends.
    pub user: Name,
    pub body: Body,
    pub priority: Priority,
    pub key: Option<Key>,
    /// An agent's private note (protocol version 2): stored in the
    /// conversation, delivered to agents only, holder and queue untouched.
    pub note: bool,
}

enum WriteJob {
    RegisterUser {
        name: Name,
        reply: oneshot::Sender<Result<Registration, StoreError>>,
    },
    Send(SendRequest),
    /// `claim`, `release`, `resolve` or `transfer` (protocol version 2).
    Lifecycle {
        origin: Origin,
        agent: Identity, // its credential is checked in the commit
        user: Name,
        action: Lifecycle,
    },
    /// Lets go of the conversations removed agents still mark.
    ReleaseRemovedAgents,
    /// Auto-release: lets go of the conversations whose holder has had no
    /// subscribed connection for `after` (protocol version 2).
    ReleaseOfflineHolders {
        after: Duration,
    },
    /// A commit that changes nothing, to learn whether the writer can
    /// commit again after a failure (`health.rs`).
    Probe,
    /// A cluster node's connection opened or closed (presence across
    /// nodes); `reply`, when given, hears whether it was committed.
    Member {
        member: Member,
        open: bool,
        reply: Option<oneshot::Sender<Result<(), StoreError>>>,
    },
    /// Forgets `node`'s records but those of the connections `live` lists
    /// when the writer gets to it (a session lists its connection before it
    /// queues its record, so none queued earlier is forgotten).
    ReconcileMembers {
        node: NodeId,
        live: LiveConnections,
    },
    /// Forgets the nodes whose lease ran out, and their connections.
    SweepExpiredNodes {
        /// The node sweeping, never swept by its own job (it may have sat
        /// in a slow queue).
        sweeper: NodeId,
    },
    /// Forgets `node`, stopping cleanly, and its connections.
    RetireNode {
        node: NodeId,
    },
}

/// The connections of a cluster node whose sessions hold a record, read
/// when a reconciliation runs.
pub type LiveConnections = Box<dyn Fn() -> Vec<ConnId> + Send + Sync>;

/// The handle every session holds.
#[derive(Clone)]
pub struct Store {
    writes: mpsc::Sender<WriteJob>,
    reads: mpsc::Sender<ReadJob>,
    health: WriterHealth,
}

impl Store {
    /// Opens (creating and migrating if needed) the database at
    /// `location` and starts the storage threads. Each commit goes to
    /// `sink`, in order. `durability` is SQLite's; PostgreSQL's is its own
    /// `synchronous_commit`.
    ///
    /// On PostgreSQL, which other nodes may share, it also says what this
    /// node needs to hear their commits: [`SharedDatabase`].
    pub fn open_at(
        location: &Location,
        durability: Durability,
        sink: impl CommitSink,
    ) -> Result<(Store, StoreThreads, Option<SharedDatabase>), OpenError> {
        match location {
            Location::Sqlite(path) => {
                let (store, threads) = Store::open(path, durability, sink)?;
                Ok((store, threads, None))
            }
            Location::Postgres(url) => {
                let (store, threads, shared) = Store::open_postgres(url, sink)?;
                Ok((store, threads, Some(shared)))
            }
        }
    }

    /// Opens (creating and migrating if needed) the database at `path` and
    /// starts the storage threads. Each commit goes to `sink`, in order.
    pub fn open(
        path: &Path,
        durability: Durability,
        sink: impl CommitSink,
    ) -> Result<(Store, StoreThreads), OpenError> {
        // A file this user may not write is refused with that reason first:
        // its lock file could not be made either.
        sqlite::check_writable(path)?;
        let lock = ServerLock::take(path)?;
        let mut conn = open_database(path)?;
        startup::release_removed_agents(&mut conn).map_err(cannot_open(path))?;
        // Nobody is connected yet: every agent's auto-release clock starts
        // with the server.
        sqlite::queries::restart_presence_clocks(&conn, switchboard_protocol::Timestamp::now())
            .map_err(cannot_open(path))?;
        durability.apply(&conn).map_err(cannot_open(path))?;
        let writer = writer::Writer::new(conn, Box::new(sink)).map_err(cannot_open(path))?;
        let readers = (0..READERS)
            .map(|_| connect(path))
            .collect::<Result<Vec<_>, _>>()?;
        start_threads(writer, readers, Some(lock))
    }

    /// The writer's health and figures (`health.rs`), for the metrics
    /// endpoint; it holds no handle that would keep the writer running.
    pub fn writer_health(&self) -> WriterHealth {
        self.health.clone()
    }

    async fn write(&self, job: WriteJob) -> Result<(), StoreError> {
        self.writes.send(job).await.map_err(|_| StoreError::Stopped)
    }

    async fn read<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> ReadJob,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.reads
            .send(make(reply))
            .await
            .map_err(|_| StoreError::Stopped)?;
        answer.await.map_err(|_| StoreError::Stopped)?
    }

    /// Registers a new user name, or says it is taken.
    pub async fn register_user(&self, name: Name) -> Result<Registration, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.write(WriteJob::RegisterUser { name, reply }).await?;
        answer.await.map_err(|_| StoreError::Stopped)?
    }

    /// Whether `token` belongs to the user or (active) agent `name`.
    pub async fn authenticate(
        &self,
        role: Role,
        name: Name,
        token: Token,
    ) -> Result<Option<Standing>, StoreError> {
        self.read(|reply| ReadJob::Authenticate {
            role,
            name,
            token,
            reply,
        })
        .await
    }

    /// Queues a message; the result reaches the router after the commit.
    pub async fn send(&self, request: SendRequest) -> Result<(), StoreError> {
        self.write(WriteJob::Send(request)).await
    }

    /// Queues `by`'s `claim`, `release`, `resolve` or `transfer` of
    /// `user`'s conversation (refused if its token changed); answered after
    /// the commit.
    pub async fn lifecycle(
        &self,
        origin: Origin,
        by: Identity,
        user: Name,
        action: Lifecycle,
    ) -> Result<(), StoreError> {
        self.write(WriteJob::Lifecycle {
            origin,
            agent: by,
            user,
            action,
        })
        .await
    }

    /// A subscriber's backlog (or everything after `since`), read on a
    /// reader from one snapshot, with that snapshot's position.
    pub async fn backlog(
        &self,
        identity: Identity,
        since: Option<u64>,
        limit: u32,
    ) -> Result<Backlog, StoreError> {
        self.read(|reply| ReadJob::Backlog {
            identity,
            since,
            limit,
            reply,
        })
        .await
    }

    /// Every agent's current token hash (`None` once removed).
    pub async fn agent_credentials(&self) -> Result<Vec<AgentCredential>, StoreError> {
        self.read(|reply| ReadJob::AgentCredentials { reply }).await
    }

    /// Whether a removed agent still marks a conversation that the server
    /// has yet to release.
    pub async fn removed_agents_hold_conversations(&self) -> Result<bool, StoreError> {
        self.read(|reply| ReadJob::RemovedAgentsHold { reply })
            .await
    }

    /// Queues the release of every conversation a removed agent still
    /// marks; each reaches the router as a `released` for everyone.
    pub async fn release_removed_agents(&self) -> Result<(), StoreError> {
        self.write(WriteJob::ReleaseRemovedAgents).await
    }

    /// Whether a conversation's holder has had no subscribed connection
    /// for `after` (auto-release is due).
    pub async fn offline_holders_due(&self, after: Duration) -> Result<bool, StoreError> {
        self.read(|reply| ReadJob::OfflineHoldersDue { after, reply })
            .await
    }

    /// Queues the release of every conversation whose holder has had no
    /// subscribed connection for `after` (auto-release); each reaches the
    /// router as a `released` with its reason.
    pub async fn release_offline_holders(&self, after: Duration) -> Result<(), StoreError> {
        self.write(WriteJob::ReleaseOfflineHolders { after }).await
    }
}
