//! Why a run could not start or finish (as opposed to errors the server
//! answered, which are counted in the report).

use std::io;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum LoadError {
    #[error("{0}")]
    Usage(String),
    #[error("provisioning agent {name}: {reason}")]
    Provision { name: String, reason: String },
    #[error("connecting to {what}: {source}")]
    Connect {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "{what}: no greeting from the server in {attempts} attempts of {} s each: its listen \
         queue is full or it is overloaded (raise the server's --listen-backlog and \
         net.core.somaxconn, or open fewer connections at once)",
        switchboard_protocol::GREETING_TIMEOUT.as_secs()
    )]
    NoGreeting { what: String, attempts: u32 },
    #[error("{what}: {reason}")]
    Handshake { what: String, reason: String },
    #[error("setting up took longer than --timeout")]
    SetupTimeout,
    #[error("reading the conversations back took longer than --timeout")]
    CheckTimeout,
    #[error("a worker task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}
