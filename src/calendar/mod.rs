//! The calendar: iCalendar import/export and the availability engine.
//!
//! Owns everything that knows RFC 5545: it is the only user of the
//! `icalendar` and `rrule` crates. Pure: no database, no network, no clock —
//! callers pass the owner's zone and `now`.

pub mod availability;
pub mod expand;
pub mod ics;
pub mod index;
