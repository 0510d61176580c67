//! Time values as iCalendar writes them, and half-open UTC ranges.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// A half-open interval `[start, end)` in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TimeRange {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl TimeRange {
    /// A range; `None` when `end < start`. An empty range (`start == end`) is allowed.
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Option<Self> {
        (start <= end).then_some(Self { start, end })
    }

    pub fn is_empty(&self) -> bool {
        self.start >= self.end
    }

    pub fn duration(&self) -> chrono::Duration {
        self.end - self.start
    }

    /// True when the two ranges share at least one instant.
    pub fn overlaps(&self, other: &TimeRange) -> bool {
        self.start < other.end && other.start < self.end
    }

    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }

    /// The common part, if any instant is shared.
    pub fn intersect(&self, other: &TimeRange) -> Option<TimeRange> {
        let start = self.start.max(other.start);
        let end = self.end.min(other.end);
        (start < end).then_some(TimeRange { start, end })
    }
}

/// A DATE or DATE-TIME value in one of the forms RFC 5545 §3.3.4/§3.3.5 allows.
///
/// `Date` and `Floating` values carry no zone: the availability engine reads
/// them in the owner's zone, never in the process's local zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IcalTime {
    /// `VALUE=DATE`, e.g. `20260105`.
    Date(NaiveDate),
    /// A DATE-TIME without `Z` and without `TZID`.
    Floating(NaiveDateTime),
    /// A DATE-TIME with a trailing `Z`.
    Utc(DateTime<Utc>),
    /// A DATE-TIME with a `TZID` that resolved to an IANA zone.
    Zoned { local: NaiveDateTime, tz: Tz },
}

impl IcalTime {
    pub fn is_date(&self) -> bool {
        matches!(self, IcalTime::Date(_))
    }

    /// The wall-clock reading of this value (midnight for a DATE).
    pub fn naive_local(&self) -> NaiveDateTime {
        match *self {
            IcalTime::Date(d) => d.and_time(chrono::NaiveTime::MIN),
            IcalTime::Floating(n) => n,
            IcalTime::Utc(u) => u.naive_utc(),
            IcalTime::Zoned { local, .. } => local,
        }
    }

    /// The zone this value is read in: its own, UTC, or the owner's for DATE and floating values.
    pub fn zone(&self, owner_tz: Tz) -> Tz {
        match *self {
            IcalTime::Date(_) | IcalTime::Floating(_) => owner_tz,
            IcalTime::Utc(_) => Tz::UTC,
            IcalTime::Zoned { tz, .. } => tz,
        }
    }

    /// The instant this value denotes, reading DATE and floating values in `owner_tz`.
    pub fn to_utc(&self, owner_tz: Tz) -> DateTime<Utc> {
        match *self {
            IcalTime::Utc(u) => u,
            other => local_to_utc(other.naive_local(), other.zone(owner_tz)),
        }
    }
}

/// Resolves a wall-clock time in `tz` to an instant the way RFC 5545 §3.3.5 asks:
/// an ambiguous time (the repeated hour when clocks go back) is the first
/// occurrence; a non-existent time (the skipped hour when clocks go forward)
/// is read with the offset from before the gap, which moves it forward by the
/// length of the gap.
pub fn local_to_utc(local: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    use chrono::LocalResult;
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        LocalResult::None => {
            // Inside a gap: take the offset in force just before it.
            let before = local - chrono::Duration::hours(3);
            let offset = match tz.from_local_datetime(&before) {
                LocalResult::Single(t) => t.offset().fix(),
                LocalResult::Ambiguous(t, _) => t.offset().fix(),
                LocalResult::None => Utc.fix(),
            };
            (local - chrono::Duration::seconds(i64::from(offset.local_minus_utc()))).and_utc()
        }
    }
}

use chrono::Offset;
