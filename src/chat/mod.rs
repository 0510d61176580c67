//! The owner's chat commands: reading a message into a typed [`Command`]
//! and rendering replies as short text in the owner's zone.
//!
//! Owns the command grammar of SPEC "Chat commands" (`<when>`, `<dur>`,
//! `<who>`, `<id>` and every command), its error sentences, the help texts,
//! and how replies read, including [`sanitize`] for every value that came
//! from outside. Pure: no store, no network, no clock (callers pass today's
//! date and the wall clock). Must not resolve names against the address
//! book, decide what a peer may see, or send anything: the caller does that
//! with the typed command and hands the results back for rendering.

mod grammar;
mod help;
mod parse;
pub mod render;

pub use grammar::{ItemId, When};
pub use help::{COMMANDS, CommandHelp, PLACEHOLDERS};
pub use parse::{Command, FreeQuery, MAX_INPUT, MeetRequest, ParseError, parse, parse_at};
pub use render::{
    agenda, awaiting_owner, contacts, days, declined, free_busy, instant, log, rate_limited,
    sanitize, tasks, time_range, when,
};

/// Every command with one example each (the reply to `help`).
pub fn help() -> String {
    help::overview()
}

/// One command's grammar and examples (the reply to `help <command>`);
/// the overview when `topic` names nothing.
pub fn help_topic(topic: &str) -> String {
    help::topic(topic)
}
