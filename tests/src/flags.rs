//! `serve` flags tests share.

/// Every limit on sending off (`--no-send-limits`: per connection, per user
/// and per address). For tests that send many messages quickly and are
/// about something else; combine with other flags as
/// `&[NO_SEND_LIMITS, &["--outbox-frames", "8"]].concat()`.
pub const NO_SEND_LIMITS: &[&str] = &["--no-send-limits"];
