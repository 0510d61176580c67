//! attache — a personal information agent on XMPP.
//!
//! Module map (I/O lives at the edges; the cores are pure):
//!
//! - [`domain`]: contacts, events, tasks, time ranges — plain types, no I/O.
//! - [`calendar`]: iCalendar import/export and the availability engine
//!   (recurrence expansion, busy intervals, free slots, occurrence index).
//! - [`policy`]: sharing-policy files, their checks, the pure evaluator that
//!   decides and cuts down what a peer learns, and `explain`.
//! - [`store`]: the SQLite store; the only user of `sqlx`.
//! - [`config`]: layered settings: defaults → `DATA_DIR/config.toml` → `ATTACHE_*`.
//! - [`cli`]: one file per subcommand.
//! - [`chat`]: the owner's chat commands, parsed into typed commands, and the replies, rendered; pure.
//! - [`xmpp`]: the XMPP edge, the only user of tokio-xmpp: login, reconnection,
//!   ping/disco/version answers, stanzas ↔ typed `Incoming`/`Outgoing`.
//! - [`agent`]: where a peer's request meets the store and the policies
//!   (decide, cut down, log).
//! - [`audit`]: the hash-chained disclosure log (entries, hashing, verification).
//! - [`negotiate`]: the agent protocol's wire format (and, later, its state machines) — pure.
//! - [`error`]: one error type per layer.
#![deny(unreachable_pub)]

pub mod agent;
pub mod audit;
pub mod calendar;
pub mod chat;
pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod negotiate;
pub mod policy;
pub mod store;
pub mod xmpp;
