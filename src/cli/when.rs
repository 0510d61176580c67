//! Reading day words (`today`, `tomorrow`, `week`, `2026-01-13`) into local
//! day ranges in the owner's zone.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::domain::TimeRange;
use crate::domain::time::local_to_utc;

/// `[start of day, start of the day after n days)` in the owner's zone, as UTC.
pub(crate) fn local_days(first: NaiveDate, days: i64, tz: Tz) -> TimeRange {
    let start = local_to_utc(first.and_time(chrono::NaiveTime::MIN), tz);
    let end = local_to_utc(
        (first + Duration::days(days)).and_time(chrono::NaiveTime::MIN),
        tz,
    );
    TimeRange { start, end }
}

/// Reads `today`, `tomorrow`, `week` (today and the next 6 days), `next week`
/// (Monday to Sunday after this one) or `YYYY-MM-DD`.
pub(crate) fn parse_day_word(word: &str, now: DateTime<Utc>, tz: Tz) -> Result<TimeRange, String> {
    let today = now.with_timezone(&tz).date_naive();
    match word.trim().to_ascii_lowercase().as_str() {
        "" | "today" => Ok(local_days(today, 1, tz)),
        "tomorrow" => Ok(local_days(today + Duration::days(1), 1, tz)),
        "week" | "this week" => Ok(local_days(today, 7, tz)),
        "next week" | "next-week" => {
            let monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()))
                + Duration::days(7);
            Ok(local_days(monday, 7, tz))
        }
        other => NaiveDate::parse_from_str(other, "%Y-%m-%d")
            .map(|d| local_days(d, 1, tz))
            .map_err(|_| {
                format!("'{word}' is not a day: use today, tomorrow, week, next week or YYYY-MM-DD")
            }),
    }
}

/// `Tue 13 Jan 10:00–11:00`, or with both dates when it spans days.
pub(crate) fn range_text(r: &TimeRange, tz: Tz) -> String {
    let s = r.start.with_timezone(&tz);
    let e = r.end.with_timezone(&tz);
    if s.date_naive() == e.date_naive() {
        format!("{}–{}", s.format("%a %d %b %H:%M"), e.format("%H:%M"))
    } else {
        format!(
            "{} – {}",
            s.format("%a %d %b %H:%M"),
            e.format("%a %d %b %H:%M")
        )
    }
}
