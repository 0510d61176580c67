//! Value types (RFC 5545 §3.3): DATE, DATE-TIME, DURATION, PERIOD and
//! UTC-OFFSET, read from and written to their text forms.
//!
//! Owns the syntax of single values only; time zone names are resolved by
//! `tz`, and which property takes which value is decided by `parse`.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};

use crate::domain::{IcalDuration, IcalTime};

/// `YYYYMMDD`.
pub(crate) fn parse_date(s: &str) -> Option<NaiveDate> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year = s.get(0..4)?.parse().ok()?;
    let month = s.get(4..6)?.parse().ok()?;
    let day = s.get(6..8)?.parse().ok()?;
    NaiveDate::from_ymd_opt(year, month, day)
}

/// `YYYYMMDDTHHMMSS` with an optional `Z`; returns the wall-clock time and
/// whether it is UTC. A leap second (`60`) is read as `59`, which chrono can hold.
pub(crate) fn parse_date_time(s: &str) -> Option<(NaiveDateTime, bool)> {
    let (body, utc) = match s.strip_suffix(['Z', 'z']) {
        Some(body) => (body, true),
        None => (s, false),
    };
    if body.len() != 15 || !body.is_ascii() || !matches!(&body[8..9], "T" | "t") {
        return None;
    }
    let date = parse_date(&body[..8])?;
    let time = &body[9..];
    if !time.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hour = time.get(0..2)?.parse().ok()?;
    let minute = time.get(2..4)?.parse().ok()?;
    let second: u32 = time.get(4..6)?.parse().ok()?;
    let time = NaiveTime::from_hms_opt(hour, minute, second.min(59))?;
    Some((date.and_time(time), utc))
}

/// RFC 5545 §3.3.6: `[+-]P(nW | nD[T…] | T[nH][nM][nS])`. Weeks and days are
/// nominal and go to `days`; hours, minutes and seconds go to `seconds`. Weeks
/// combined with other units (RFC 2445 style) are accepted too.
pub(crate) fn parse_duration(s: &str) -> Option<IcalDuration> {
    let (negative, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let rest = rest.strip_prefix(['P', 'p'])?;
    let mut days: i64 = 0;
    let mut seconds: i64 = 0;
    let mut in_time = false;
    let mut number: Option<i64> = None;
    let mut units = 0;
    for c in rest.chars() {
        match c.to_ascii_uppercase() {
            'T' if !in_time && number.is_none() => in_time = true,
            d @ '0'..='9' => {
                let digit = i64::from(d as u8 - b'0');
                number = Some(number.unwrap_or(0).checked_mul(10)?.checked_add(digit)?);
            }
            unit => {
                let n = number.take()?;
                let (target, factor) = match (unit, in_time) {
                    ('W', false) => (&mut days, 7),
                    ('D', false) => (&mut days, 1),
                    ('H', true) => (&mut seconds, 3600),
                    ('M', true) => (&mut seconds, 60),
                    ('S', true) => (&mut seconds, 1),
                    _ => return None,
                };
                *target = target.checked_add(n.checked_mul(factor)?)?;
                units += 1;
            }
        }
    }
    if number.is_some() || units == 0 {
        return None;
    }
    if negative {
        days = -days;
        seconds = -seconds;
    }
    Some(IcalDuration { days, seconds })
}

/// `+HHMM` or `+HHMMSS` (RFC 5545 §3.3.14), in seconds east of UTC.
pub(crate) fn parse_utc_offset(s: &str) -> Option<i32> {
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits = &s[1..];
    if !(digits.len() == 4 || digits.len() == 6) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i32 = digits[0..2].parse().ok()?;
    let minutes: i32 = digits[2..4].parse().ok()?;
    let secs: i32 = digits.get(4..6).map_or(Ok(0), str::parse).ok()?;
    if minutes > 59 || secs > 59 {
        return None;
    }
    Some(sign * (hours * 3600 + minutes * 60 + secs))
}

pub(crate) fn format_date(d: NaiveDate) -> String {
    d.format("%Y%m%d").to_string()
}

pub(crate) fn format_local(t: NaiveDateTime) -> String {
    t.format("%Y%m%dT%H%M%S").to_string()
}

pub(crate) fn format_utc(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// The parameters and value that write `t`: `VALUE=DATE`, `TZID=…`, or none.
pub(crate) fn time_parts(t: &IcalTime) -> (Option<(&'static str, String)>, String) {
    match t {
        IcalTime::Date(d) => (Some(("VALUE", "DATE".to_owned())), format_date(*d)),
        IcalTime::Floating(n) => (None, format_local(*n)),
        IcalTime::Utc(u) => (None, format_utc(*u)),
        IcalTime::Zoned { local, tz } => {
            (Some(("TZID", tz.name().to_owned())), format_local(*local))
        }
    }
}

/// Writes a duration so that `parse_duration` gives it back. Mixed signs
/// cannot be written in RFC 5545; the days are then folded into seconds.
pub(crate) fn format_duration(d: IcalDuration) -> String {
    let (negative, days, seconds) = if d.days >= 0 && d.seconds >= 0 {
        (false, d.days, d.seconds)
    } else if d.days <= 0 && d.seconds <= 0 {
        (true, -d.days, -d.seconds)
    } else {
        let total = d.days.saturating_mul(86_400).saturating_add(d.seconds);
        (total < 0, 0, total.saturating_abs())
    };
    let mut out = String::from(if negative { "-P" } else { "P" });
    if days > 0 {
        out.push_str(&format!("{days}D"));
    }
    if seconds > 0 || days == 0 {
        out.push('T');
        let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
        if h > 0 {
            out.push_str(&format!("{h}H"));
        }
        if m > 0 {
            out.push_str(&format!("{m}M"));
        }
        if s > 0 || (h == 0 && m == 0) {
            out.push_str(&format!("{s}S"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dur(days: i64, seconds: i64) -> Option<IcalDuration> {
        Some(IcalDuration { days, seconds })
    }

    #[test]
    fn durations_split_nominal_days_from_exact_seconds() {
        assert_eq!(parse_duration("P1W"), dur(7, 0));
        assert_eq!(parse_duration("P1D"), dur(1, 0));
        assert_eq!(parse_duration("PT1H30M"), dur(0, 5400));
        assert_eq!(parse_duration("-PT15M"), dur(0, -900));
        assert_eq!(parse_duration("P1DT2H"), dur(1, 7200));
        assert_eq!(parse_duration("+P2W3D"), dur(17, 0));
        assert_eq!(parse_duration("PT0S"), dur(0, 0));
    }

    #[test]
    fn malformed_durations_are_refused() {
        for bad in [
            "",
            "P",
            "PT",
            "1H",
            "P1H",
            "PT1D",
            "P1",
            "PT1H1",
            "P99999999999999999999D",
            "PTT1H",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn durations_are_written_back_to_the_same_value() {
        for d in [
            dur(0, 0),
            dur(1, 0),
            dur(0, 5400),
            dur(1, 7261),
            dur(0, -900),
            dur(-2, -1),
        ] {
            let d = d.unwrap_or_default();
            assert_eq!(parse_duration(&format_duration(d)), Some(d), "{d:?}");
        }
    }

    #[test]
    fn date_times_check_every_field() {
        assert!(parse_date_time("20260105T103000Z").is_some_and(|(_, utc)| utc));
        assert!(parse_date_time("20260105T103000").is_some_and(|(_, utc)| !utc));
        assert_eq!(parse_date_time("2026-13-45"), None);
        assert_eq!(parse_date_time("20261345T000000"), None);
        assert_eq!(parse_date_time("20260105T250000"), None);
        assert_eq!(parse_date_time("20260105"), None);
        assert_eq!(parse_date("20260229"), None);
        assert!(parse_date("20280229").is_some());
    }

    #[test]
    fn utc_offsets_read_hours_minutes_and_seconds() {
        assert_eq!(parse_utc_offset("+0100"), Some(3600));
        assert_eq!(parse_utc_offset("-0530"), Some(-19800));
        assert_eq!(parse_utc_offset("+001730"), Some(1050));
        assert_eq!(parse_utc_offset("0100"), None);
        assert_eq!(parse_utc_offset("+01"), None);
    }
}
