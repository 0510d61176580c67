//! The XMPP edge: the only user of tokio-xmpp and xmpp-parsers. Stanzas are
//! turned into typed [`Incoming`] events here, and typed [`Outgoing`]
//! commands into stanzas; nothing further in sees XML beyond the opaque
//! payload of a claimed IQ.
//!
//! Owns the connection (TCP_NODELAY, STARTTLS, SASL, reconnection, XEP-0198
//! through tokio-xmpp), presence with XEP-0115 caps, the answers every
//! client owes the network (XEP-0199 ping, XEP-0030 disco#info, XEP-0092
//! version, an error for any other IQ), and IQ request timeouts. Must not
//! touch the store, the policies or the chat grammar: those are the
//! handler's, which reads [`Session::next`] and writes through an [`Outbox`].
//!
//! - `account`: settings + password → a validated [`Account`]; [`Secret`].
//! - `connect`: the `ServerConnector` (explicit `host:port` or DNS SRV,
//!   TCP_NODELAY, STARTTLS unless loopback plaintext) and the login.
//! - `session`: [`Session`], [`Outbox`], reconnection, pending IQs.
//! - `lanes`: the queues to the handler; the owner first, a share per sender.
//! - `builtin`: what the agent answers by itself; [`FEATURE_NS`].
//! - `events`: [`Incoming`], [`Outgoing`] and their stanza translation.
//! - `commands`: XEP-0050 ad-hoc commands and XEP-0004 forms as typed values.

mod account;
mod builtin;
mod commands;
mod connect;
mod error;
mod events;
pub(crate) mod guard;
mod lanes;
mod session;

pub use account::{Account, Secret, ServerAddress, is_loopback_host, parse_server};
pub use builtin::{
    CAPS_NODE, Capabilities, FEATURE_NS, IDENTITY_CATEGORY, IDENTITY_TYPE, SOFTWARE_NAME,
};
pub use commands::{
    COMMANDS_NS, CommandAction, CommandError, CommandList, CommandNode, CommandRequest,
    CommandResponse, CommandStatus, FieldKind, Form, FormField, NoteKind, Submission,
};
pub use error::XmppError;
pub use events::{Incoming, IqAnswer, IqKind, Outgoing, PresenceKind, RosterItem, Subscription};
pub use session::{Handler, Outbox, Session, SessionOptions};

/// XML payloads of claimed IQs, and the JID types, as the rest of the crate sees them.
pub use jid::{BareJid, FullJid, Jid};
pub use xmpp_parsers::minidom::Element;
/// Conditions for [`Outgoing::IqError`].
pub use xmpp_parsers::stanza_error::DefinedCondition;
