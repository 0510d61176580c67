//! The agent-to-agent protocol (`docs/protocol.md`): its wire format and,
//! later, the negotiation state machines. Pure: message in → effects out; no
//! network, no store, no clock.

pub mod handoff;
pub mod meeting;
pub mod messages;
pub mod wire;

pub use wire::{
    FreebusyQuery, FreebusyReply, NS, PeerRequest, ProtocolError, RequestId, SlotAnswer, WireError,
};
