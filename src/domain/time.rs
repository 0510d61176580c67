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
            // Checked arithmetic: chrono's extreme dates must not panic.
            let offset = match local
                .checked_sub_signed(chrono::Duration::hours(3))
                .map(|before| tz.from_local_datetime(&before))
            {
                Some(LocalResult::Single(t)) | Some(LocalResult::Ambiguous(t, _)) => {
                    t.offset().fix()
                }
                _ => Utc.fix(),
            };
            local
                .checked_sub_signed(chrono::Duration::seconds(i64::from(
                    offset.local_minus_utc(),
                )))
                .unwrap_or(local)
                .and_utc()
        }
    }
}

use chrono::Offset;

/// Parses a human duration: `30m`, `1h`, `1h30m`, `90m`, `2d`, `45s`, `1w`
/// (units may repeat in any order, at least one is required; `0` is zero).
pub fn parse_duration(text: &str) -> Result<chrono::Duration, String> {
    let s = text.trim().to_ascii_lowercase();
    if s == "0" {
        return Ok(chrono::Duration::zero());
    }
    let mut total = chrono::Duration::zero();
    let mut number = String::new();
    let mut seen_unit = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: i64 = number.parse().map_err(|_| {
            format!("'{text}' is not a duration: a number must come before '{c}' (e.g. 30m, 1h30m)")
        })?;
        number.clear();
        let part = match c {
            'w' => chrono::Duration::try_weeks(n),
            'd' => chrono::Duration::try_days(n),
            'h' => chrono::Duration::try_hours(n),
            'm' => chrono::Duration::try_minutes(n),
            's' => chrono::Duration::try_seconds(n),
            _ => return Err(format!("'{text}' is not a duration: unknown unit '{c}' (use w, d, h, m or s, e.g. 1h30m)")),
        }
        .ok_or_else(|| format!("'{text}' is too long a duration"))?;
        total = total
            .checked_add(&part)
            .ok_or_else(|| format!("'{text}' is too long a duration"))?;
        seen_unit = true;
    }
    if !number.is_empty() || !seen_unit {
        return Err(format!(
            "'{text}' is not a duration: end it with a unit (e.g. 30m, 1h, 1h30m)"
        ));
    }
    Ok(total)
}

/// Formats a duration the way [`parse_duration`] reads it (`1h30m`).
pub fn format_duration(d: chrono::Duration) -> String {
    let mut secs = d.num_seconds();
    if secs == 0 {
        return "0m".into();
    }
    let mut out = String::new();
    if secs < 0 {
        out.push('-');
        secs = -secs;
    }
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_the_chat_grammar_writes_them() {
        assert_eq!(parse_duration("30m"), Ok(chrono::Duration::minutes(30)));
        assert_eq!(parse_duration("1h30m"), Ok(chrono::Duration::minutes(90)));
        assert_eq!(parse_duration("90m"), Ok(chrono::Duration::minutes(90)));
        assert_eq!(parse_duration("2d"), Ok(chrono::Duration::days(2)));
        assert!(parse_duration("1x").is_err());
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("h").is_err());
        assert_eq!(format_duration(chrono::Duration::minutes(90)), "1h30m");
    }

    #[test]
    fn a_time_in_the_spring_gap_moves_forward_by_the_gap() {
        let tz: Tz = chrono_tz::Europe::Berlin;
        let local = NaiveDate::from_ymd_opt(2026, 3, 29)
            .and_then(|d| d.and_hms_opt(2, 30, 0))
            .unwrap_or_default();
        // 02:30 does not exist; read with +01:00 it is 01:30Z, i.e. 03:30 CEST.
        assert_eq!(
            local_to_utc(local, tz).to_rfc3339(),
            "2026-03-29T01:30:00+00:00"
        );
    }

    #[test]
    fn an_ambiguous_time_is_the_first_occurrence() {
        let tz: Tz = chrono_tz::Europe::Berlin;
        let local = NaiveDate::from_ymd_opt(2026, 10, 25)
            .and_then(|d| d.and_hms_opt(2, 30, 0))
            .unwrap_or_default();
        assert_eq!(
            local_to_utc(local, tz).to_rfc3339(),
            "2026-10-25T00:30:00+00:00"
        );
    }
}
