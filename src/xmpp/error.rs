//! Errors of the XMPP edge. Each says what failed, as whom or towards whom,
//! and what to check; none ever contains the password.

use std::time::Duration;

use thiserror::Error;

/// Errors from the XMPP edge.
#[derive(Debug, Error)]
pub enum XmppError {
    /// The `[account]` settings cannot be used to log in.
    #[error("[account] settings: {0}")]
    Account(String),

    /// The first login failed; the agent does not retry a wrong password.
    #[error("login as {jid} failed: {reason}")]
    Login { jid: String, reason: String },

    /// An IQ request the agent sent got no answer in time.
    #[error("{to} did not answer within {} s", after.as_secs_f32())]
    IqTimeout { to: String, after: Duration },

    /// The stream was re-established without its state (no XEP-0198
    /// resumption), so an answer to this request can no longer arrive.
    #[error("the connection was reset before {to} answered; send the request again")]
    ConnectionReset { to: String },

    /// The session has been closed or its connection worker stopped.
    #[error("the XMPP session has ended")]
    Closed,
}
