//! iCalendar (RFC 5545) import and export: bytes in, domain values and the
//! components' raw text out; raw texts in, a complete calendar file out.
//!
//! Owns the whole iCalendar syntax: content lines (`lines`), values
//! (`values`), TZID resolution (`tz`, with the Windows table in
//! `windows_zones`), components → domain (`parse`) and writing (`export`).
//! Pure: no files, no database, no clock (callers pass `dtstamp`). It must
//! not touch the store or decide recurrence semantics: RRULEs are kept as
//! written and expanded by `calendar::expand`.
//!
//! Documented limits and fallbacks:
//! - a content line may be at most [`MAX_LINE_BYTES`] (256 KiB) unfolded;
//! - the file must be UTF-8 (a BOM is skipped); control characters other than
//!   tab, vertical tab, form feed and CR are refused as binary data; LF, CRLF
//!   and CR line ends are accepted, and blank lines are skipped;
//! - components may nest at most [`MAX_NESTING`] deep, and at most
//!   [`MAX_MATCHED_ZONES`] distinct VTIMEZONEs per file are matched by rules;
//! - a TZID is resolved by name first (IANA in any case, vendor-prefixed IANA,
//!   Windows name or display name, `UTC+1`), then through its VTIMEZONE
//!   (`X-LIC-LOCATION`, then rules compared over 2020–2029, then a fixed
//!   `Etc/GMT±N`); a VTIMEZONE is only consulted when the name is unknown;
//! - a VTIMEZONE redefined differently in a later VCALENDAR of the same file
//!   is dropped (with a warning): the first definition is the one exported;
//! - a VEVENT or VTODO without UID gets a stable generated one
//!   (`attache-<hash of its unfolded text>@import`, with a warning), written
//!   into its raw text so that it survives export;
//! - DTEND before DTSTART (or a negative DURATION) is read as no end at all
//!   (zero length, or one day for a DATE start), with a warning;
//! - a VEVENT without DTSTART is an error, except in a calendar with METHOD
//!   (iTIP), where it is skipped with a warning;
//! - DTSTART without `VALUE=DATE` but written as a bare date is read as a DATE.

mod export;
mod lines;
mod parse;
mod tz;
mod values;
mod windows_zones;

use serde::{Deserialize, Serialize};

use crate::domain::{EventComponent, Task};
use crate::error::IcsError;

pub use export::{event_to_ics, export_calendar, itip_calendar, todo_to_ics, todo_to_ics_at};
pub use lines::MAX_LINE_BYTES;
pub use parse::{MAX_MATCHED_ZONES, MAX_NESTING};
pub use tz::resolve_tz_name;

/// Something the importer accepted but changed or guessed; shown to the owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IcsWarning {
    /// 1-based line of the file as written.
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for IcsWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// One VEVENT: what attache understands of it, and its full text (alarms,
/// attendees, X- properties included) to write back out unchanged.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedEvent {
    pub component: EventComponent,
    /// `BEGIN:VEVENT`…`END:VEVENT`, folded at 75 octets, CRLF line ends.
    pub raw: String,
    /// The line of its `BEGIN:VEVENT`.
    pub line: usize,
}

/// One VTODO, like [`ParsedEvent`].
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedTodo {
    pub task: Task,
    pub raw: String,
    pub line: usize,
}

/// One VTIMEZONE, kept so that exported events keep their TZIDs meaningful.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedTimezone {
    pub tzid: String,
    pub raw: String,
}

/// Everything read from one file (several VCALENDARs are merged).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParsedCalendar {
    pub events: Vec<ParsedEvent>,
    pub todos: Vec<ParsedTodo>,
    pub timezones: Vec<ParsedTimezone>,
    pub warnings: Vec<IcsWarning>,
}

/// Reads an iCalendar file. Errors name the 1-based line as written (before
/// unfolding) and say what to fix; add the file name with [`IcsError::in_file`].
pub fn parse_calendar(bytes: &[u8]) -> Result<ParsedCalendar, IcsError> {
    parse::parse(bytes)
}
