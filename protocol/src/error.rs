//! The protocol's error codes (the table in `docs/protocol.md`) and the ways a
//! line can fail to be a frame.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::message::RequestId;

/// Every `code` an `error` frame can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadJson,
    BadFrame,
    LineTooLong,
    NotAuthenticated,
    Unauthorized,
    AlreadyAuthenticated,
    InvalidName,
    Forbidden,
    InvalidBody,
    UnknownUser,
    AssignedToOther,
    NotAssigned,
    /// Version 2: `transfer` to a name that is no provisioned agent.
    UnknownAgent,
    RateLimited,
    SlowConsumer,
    ServerBusy,
    Internal,
}

impl ErrorCode {
    /// Every code, in the order of the protocol's table.
    pub const ALL: [ErrorCode; 17] = [
        ErrorCode::BadJson,
        ErrorCode::BadFrame,
        ErrorCode::LineTooLong,
        ErrorCode::NotAuthenticated,
        ErrorCode::Unauthorized,
        ErrorCode::AlreadyAuthenticated,
        ErrorCode::InvalidName,
        ErrorCode::Forbidden,
        ErrorCode::InvalidBody,
        ErrorCode::UnknownUser,
        ErrorCode::AssignedToOther,
        ErrorCode::NotAssigned,
        ErrorCode::UnknownAgent,
        ErrorCode::RateLimited,
        ErrorCode::SlowConsumer,
        ErrorCode::ServerBusy,
        ErrorCode::Internal,
    ];

    /// Whether the server closes the connection after sending this error.
    /// (Failed `hello`s close it too, but only the third one: that is the
    /// session's count, not a property of the code.)
    pub fn closes_connection(self) -> bool {
        matches!(self, ErrorCode::SlowConsumer | ErrorCode::ServerBusy)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "bad_json",
            ErrorCode::BadFrame => "bad_frame",
            ErrorCode::LineTooLong => "line_too_long",
            ErrorCode::NotAuthenticated => "not_authenticated",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::AlreadyAuthenticated => "already_authenticated",
            ErrorCode::InvalidName => "invalid_name",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::InvalidBody => "invalid_body",
            ErrorCode::UnknownUser => "unknown_user",
            ErrorCode::AssignedToOther => "assigned_to_other",
            ErrorCode::NotAssigned => "not_assigned",
            ErrorCode::UnknownAgent => "unknown_agent",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::SlowConsumer => "slow_consumer",
            ErrorCode::ServerBusy => "server_busy",
            ErrorCode::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A line that did not become a frame. The connection stays usable: the codec
/// has already skipped past the line.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("line longer than {max} bytes")]
    LineTooLong { max: usize },
    #[error("invalid JSON: {reason}; send one JSON object per line, e.g. {{\"type\":\"ping\"}}")]
    BadJson { reason: String },
    #[error("{reason}")]
    BadFrame {
        /// The request's `id`, when the line had a usable one, so the error
        /// can echo it.
        id: Option<RequestId>,
        reason: String,
    },
}

impl FrameError {
    pub fn code(&self) -> ErrorCode {
        match self {
            FrameError::LineTooLong { .. } => ErrorCode::LineTooLong,
            FrameError::BadJson { .. } => ErrorCode::BadJson,
            FrameError::BadFrame { .. } => ErrorCode::BadFrame,
        }
    }

    /// The `id` to echo in the error reply.
    pub fn request_id(&self) -> Option<&RequestId> {
        match self {
            FrameError::BadFrame { id, .. } => id.as_ref(),
            FrameError::LineTooLong { .. } | FrameError::BadJson { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialise_as_in_the_protocol_table() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).expect("serialises");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            let back: ErrorCode = serde_json::from_str(&json).expect("deserialises");
            assert_eq!(back, code);
        }
    }

    #[test]
    fn only_slow_consumer_and_server_busy_close() {
        let closing: Vec<_> = ErrorCode::ALL
            .into_iter()
            .filter(|c| c.closes_connection())
            .collect();
        assert_eq!(closing, [ErrorCode::SlowConsumer, ErrorCode::ServerBusy]);
    }
}
