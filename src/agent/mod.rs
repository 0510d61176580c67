//! The agent's services: where a peer's request meets the owner's store and
//! policies. Owns the I/O-bound orchestration (read the store, decide with
//! the pure evaluator, cut down, log); it must not parse stanzas (that is
//! `xmpp`) nor decide anything itself (that is `policy`).

pub mod adhoc;
pub mod approvals;
pub mod books;
pub mod gatekeeper;
pub mod handoffs;
mod kept;
pub mod live;
pub mod meetings;
pub mod orders;
pub mod owner;
pub mod peer;
pub mod presence;
pub mod runtime;

pub use gatekeeper::{Answer, CalendarSettings, Decided, Gatekeeper, Turn};
pub use live::{Live, Snapshot};
