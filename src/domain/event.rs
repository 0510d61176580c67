//! Calendar events as stored (components) and as expanded (instances).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::time::{IcalTime, TimeRange};

/// `STATUS` of a VEVENT (RFC 5545 §3.8.1.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    #[default]
    Confirmed,
    Tentative,
    Cancelled,
}

/// `TRANSP` of a VEVENT (RFC 5545 §3.8.2.7): transparent events do not block time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Transparency {
    #[default]
    Opaque,
    Transparent,
}

/// `CLASS` of a component (RFC 5545 §3.8.1.3). Private and confidential
/// events block time but their details never leave the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Classification {
    #[default]
    Public,
    Private,
    Confidential,
}

impl Classification {
    /// Whether titles and locations may ever be shown to anyone but the owner.
    pub fn hides_details(self) -> bool {
        !matches!(self, Classification::Public)
    }
}

/// How a VEVENT says when it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventEnd {
    /// Neither DTEND nor DURATION: zero length for a DATE-TIME start, one day for a DATE start.
    Unspecified,
    /// `DTEND`.
    End(IcalTime),
    /// `DURATION`, in seconds (nominal days of a DURATION are converted by the importer
    /// to `Days`, which keep wall-clock length across DST changes).
    Duration(IcalDuration),
}

/// A DURATION value split as RFC 5545 §3.3.6 reads it: days and weeks are
/// nominal (a day is a calendar day, 23 or 25 hours across a DST change),
/// hours/minutes/seconds are exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct IcalDuration {
    pub days: i64,
    pub seconds: i64,
}

/// `RECURRENCE-ID` of an overriding component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RecurrenceId {
    pub time: IcalTime,
    /// `RANGE=THISANDFUTURE`: the override applies to this and every later instance.
    pub this_and_future: bool,
}

/// One `RDATE` value: a start, or a PERIOD with its own end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RDate {
    pub start: IcalTime,
    /// Present for `VALUE=PERIOD` values: the explicit end of that instance.
    pub end: Option<IcalTime>,
}

/// One VEVENT as written in a calendar: either a series master (or a single
/// event), or an override of one instance of a series (`recurrence_id` set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventComponent {
    pub uid: String,
    pub recurrence_id: Option<RecurrenceId>,
    pub start: IcalTime,
    pub end: EventEnd,
    /// The raw `RRULE` value, e.g. `FREQ=WEEKLY;BYDAY=MO,WE`. Several RRULEs are
    /// allowed by RFC 5545 but deprecated; all are kept.
    pub rrules: Vec<String>,
    pub rdates: Vec<RDate>,
    pub exdates: Vec<IcalTime>,
    pub status: EventStatus,
    pub transparency: Transparency,
    pub class: Classification,
    pub sequence: i64,
    pub summary: Option<String>,
    pub location: Option<String>,
}

/// Everything the calendar knows about one UID: the master (absent when a
/// file only carries overrides, as iTIP allows) and its overrides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventSeries {
    pub uid: String,
    pub master: Option<EventComponent>,
    pub overrides: Vec<EventComponent>,
}

impl EventSeries {
    /// Groups components into series by UID (a master and its overrides),
    /// in the order each UID first appears.
    pub fn group(components: impl IntoIterator<Item = EventComponent>) -> Vec<EventSeries> {
        let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        let mut out: Vec<EventSeries> = Vec::new();
        for c in components {
            let i = *index.entry(c.uid.clone()).or_insert_with(|| {
                out.push(EventSeries {
                    uid: c.uid.clone(),
                    master: None,
                    overrides: Vec::new(),
                });
                out.len() - 1
            });
            if c.recurrence_id.is_some() {
                out[i].overrides.push(c);
            } else {
                out[i].master = Some(c);
            }
        }
        out
    }
}

/// Whether an instance blocks time, and how firmly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BusyStatus {
    /// `STATUS:TENTATIVE`: blocks, but weaker than busy where both overlap.
    Tentative,
    Busy,
}

/// What an instance shows at the `details` level; shared by all instances of a series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InstanceDetails {
    pub uid: String,
    pub summary: Option<String>,
    pub location: Option<String>,
    pub class: Classification,
}

/// One concrete occurrence of an event, in UTC, after recurrence, exceptions
/// and overrides have been applied. Cancelled occurrences are never produced;
/// transparent ones are (the agenda shows them) but do not block time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Instance {
    pub range: TimeRange,
    /// `Confirmed` or `Tentative` (cancelled instances are dropped by the engine).
    pub status: EventStatus,
    pub transparency: Transparency,
    /// True for DATE (all-day) events.
    pub all_day: bool,
    /// The instant of the series slot this instance fills (its RECURRENCE-ID), for
    /// recurring events; the start for single events.
    pub recurrence_id: DateTime<Utc>,
    pub details: Arc<InstanceDetails>,
}

impl Instance {
    /// How this instance blocks time: `None` for transparent, cancelled or zero-length ones.
    pub fn busy_status(&self) -> Option<BusyStatus> {
        if self.transparency == Transparency::Transparent || self.range.is_empty() {
            return None;
        }
        match self.status {
            EventStatus::Confirmed => Some(BusyStatus::Busy),
            EventStatus::Tentative => Some(BusyStatus::Tentative),
            EventStatus::Cancelled => None,
        }
    }
}

/// A merged stretch of blocked time, as `attache busy` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BusyInterval {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub status: BusyStatus,
}
