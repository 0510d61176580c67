//! The small words of the chat grammar: `<when>`, `<dur>`, `<who>` and `<id>`.
//!
//! Owns how a day, a duration, a list of people and a short id are written
//! in a chat message and what they resolve to, given today's date and the
//! owner's wall clock (both passed in). Must not resolve names against the
//! address book (that happens after parsing) and must not read the clock.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Weekday};
use chrono_tz::Tz;

use super::parse::ParseError;
use super::render::sanitize;
use crate::domain::TimeRange;
use crate::domain::time::local_to_utc;

/// The longest stretch of days one `<when>` may cover: more is surely a typo
/// and would make the agent expand a calendar for years.
const MAX_DAYS: i64 = 366;

/// The longest `<dur>`: a meeting or a free slot longer than a day is a typo.
const MAX_DURATION_HOURS: i64 = 24;

/// A `<when>` resolved to days in the owner's zone: `[first, last]`, both
/// included, and optionally a wall-clock time on `first` (only for a single
/// day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct When {
    pub first: NaiveDate,
    pub last: NaiveDate,
    pub time: Option<NaiveTime>,
}

impl When {
    /// One whole day.
    pub fn day(day: NaiveDate) -> Self {
        Self {
            first: day,
            last: day,
            time: None,
        }
    }

    /// Whether this names one day (a time may only be given then).
    pub fn is_single_day(&self) -> bool {
        self.first == self.last
    }

    /// From the first day's midnight to the midnight after the last day, in
    /// `tz`, as UTC: 23 or 25 hours on the days clocks change.
    pub fn to_utc_range(&self, tz: Tz) -> TimeRange {
        let start = local_to_utc(self.first.and_time(NaiveTime::MIN), tz);
        let after = self.last.succ_opt().unwrap_or(self.last);
        let end = local_to_utc(after.and_time(NaiveTime::MIN), tz);
        TimeRange {
            start,
            end: end.max(start),
        }
    }

    /// The wall-clock start, when a time was given.
    pub fn local_start(&self) -> Option<NaiveDateTime> {
        self.time.map(|t| self.first.and_time(t))
    }

    /// The slot `[time, time + duration)` when a time was given. The length
    /// is exact (a 1h meeting lasts one hour even across a DST change).
    pub fn slot(&self, duration: Duration, tz: Tz) -> Option<TimeRange> {
        let start = local_to_utc(self.local_start()?, tz);
        let end = start.checked_add_signed(duration)?;
        TimeRange::new(start, end)
    }
}

/// A short stable id as the owner typed it (`3`, `m3`, `t12`; a leading `#`
/// is dropped). Whether it names anything is for the store to say.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ItemId(pub String);

impl ItemId {
    /// The number in the id, if it is digits after an optional letter
    /// prefix: `t12` → 12, `12` → 12.
    pub fn number(&self) -> Option<i64> {
        let digits = self.0.trim_start_matches(|c: char| c.is_ascii_alphabetic());
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ItemId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads an `<id>`: 1–16 letters, digits, `-` or `_`, with at least one digit
/// or letter; `example` is the command shown in the error.
pub(crate) fn parse_id(word: Option<&str>, example: &str) -> Result<ItemId, ParseError> {
    let Some(word) = word else {
        return Err(ParseError::invalid(format!(
            "Which one? Give its id: {example}"
        )));
    };
    let id = word.strip_prefix('#').unwrap_or(word);
    let ok = !id.is_empty()
        && id.chars().count() <= 16
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && id.chars().any(|c| c.is_ascii_alphanumeric());
    if !ok {
        return Err(ParseError::invalid(format!(
            "\"{}\" is not an id; ids look like 3 or m3: {example}",
            sanitize(word)
        )));
    }
    Ok(ItemId(id.to_string()))
}

/// Whether `w` is the keyword `kw`, ignoring ASCII case.
pub(crate) fn is(w: &str, kw: &str) -> bool {
    w.eq_ignore_ascii_case(kw)
}

fn weekday(word: &str) -> Option<Weekday> {
    Some(match word.to_ascii_lowercase().as_str() {
        "mon" | "monday" => Weekday::Mon,
        "tue" | "tues" | "tuesday" => Weekday::Tue,
        "wed" | "weds" | "wednesday" => Weekday::Wed,
        "thu" | "thur" | "thurs" | "thursday" => Weekday::Thu,
        "fri" | "friday" => Weekday::Fri,
        "sat" | "saturday" => Weekday::Sat,
        "sun" | "sunday" => Weekday::Sun,
        _ => return None,
    })
}

fn looks_like_date(w: &str) -> bool {
    let b = w.as_bytes();
    b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-'
}

fn looks_like_time(w: &str) -> bool {
    let lower = w.to_ascii_lowercase();
    let core = lower
        .strip_suffix("am")
        .or_else(|| lower.strip_suffix("pm"))
        .unwrap_or(&lower);
    let has_colon = core.contains(':');
    let digits_and_colon =
        !core.is_empty() && core.bytes().all(|b| b.is_ascii_digit() || b == b':');
    let b = core.as_bytes();
    // `10:00`, `9:30`, `10am`, `2:30pm`; a bare number is not a time.
    digits_and_colon
        && b.first().is_some_and(u8::is_ascii_digit)
        && (has_colon || core.len() < lower.len())
}

/// `10:00`, `9:30`, `10am`, `2:30pm`.
fn parse_clock(w: &str) -> Option<NaiveTime> {
    let lower = w.to_ascii_lowercase();
    let (core, pm) = match (lower.strip_suffix("am"), lower.strip_suffix("pm")) {
        (Some(c), _) => (c, Some(false)),
        (_, Some(c)) => (c, Some(true)),
        _ => (lower.as_str(), None),
    };
    let (h, m) = match core.split_once(':') {
        Some((h, m)) if m.len() == 2 => (h, m),
        Some(_) => return None,
        None if pm.is_some() => (core, "00"),
        None => return None,
    };
    if h.is_empty() || h.len() > 2 {
        return None;
    }
    let mut hour: u32 = h.parse().ok()?;
    let minute: u32 = m.parse().ok()?;
    match pm {
        Some(is_pm) => {
            if !(1..=12).contains(&hour) {
                return None;
            }
            hour %= 12;
            if is_pm {
                hour += 12;
            }
        }
        None if hour > 23 => return None,
        None => {}
    }
    NaiveTime::from_hms_opt(hour, minute, 0)
}

fn parse_date(w: &str) -> Result<NaiveDate, ParseError> {
    NaiveDate::parse_from_str(w, "%Y-%m-%d").map_err(|_| {
        ParseError::invalid(format!(
            "\"{}\" is not a date; write YYYY-MM-DD, e.g. agenda 2026-01-13",
            sanitize(w)
        ))
    })
}

/// Whether a `<when>` starts at `words[0]`: clause boundaries in commands
/// like `free bob next week` are found with this.
pub(crate) fn starts_when(words: &[&str]) -> bool {
    let Some(&w) = words.first() else {
        return false;
    };
    let next = words.get(1).copied().unwrap_or("");
    is(w, "today")
        || is(w, "tomorrow")
        || is(w, "tmrw")
        || is(w, "tmr")
        || weekday(w).is_some()
        || ((is(w, "this") || is(w, "next")) && is(next, "week"))
        || looks_like_date(w)
        || looks_like_time(w)
        || (is(w, "at") && looks_like_time(next))
}

/// Reads a `<when>` at the start of `words`; returns it and how many words
/// it took, or `None` when no `<when>` starts there.
///
/// A weekday is the next such day, today included — unless a time is given
/// that has already passed today, then it is next week's. A time alone
/// means today.
pub(crate) fn parse_when(
    words: &[&str],
    today: NaiveDate,
    now_local: NaiveDateTime,
) -> Result<Option<(When, usize)>, ParseError> {
    if !starts_when(words) {
        return Ok(None);
    }
    let w = words[0];
    let mut used = 1;
    let mut day_of_week = None;
    let days = if is(w, "today") {
        Some((today, today))
    } else if is(w, "tomorrow") || is(w, "tmrw") || is(w, "tmr") {
        let d = next_day(today)?;
        Some((d, d))
    } else if let Some(wd) = weekday(w) {
        day_of_week = Some(wd);
        let ahead = (7 + wd.num_days_from_monday() - today.weekday().num_days_from_monday()) % 7;
        let d = add_days(today, i64::from(ahead))?;
        Some((d, d))
    } else if is(w, "this") {
        used = 2;
        let sunday = add_days(today, i64::from(6 - today.weekday().num_days_from_monday()))?;
        Some((today, sunday))
    } else if is(w, "next") {
        used = 2;
        let monday = add_days(today, i64::from(7 - today.weekday().num_days_from_monday()))?;
        Some((monday, add_days(monday, 6)?))
    } else if looks_like_date(w) {
        Some(date_or_range(words, &mut used)?)
    } else {
        // A time alone (`10:00`, `at 10:00`): today, read below.
        used = 0;
        None
    };
    let mut time = None;
    let mut rest = words.get(used..).unwrap_or_default();
    if rest.first().is_some_and(|w| is(w, "at")) && rest.get(1).is_some_and(|t| looks_like_time(t))
    {
        used += 1;
        rest = &rest[1..];
    }
    if let Some(&t) = rest.first().filter(|t| looks_like_time(t)) {
        time = Some(parse_clock(t).ok_or_else(|| {
            ParseError::invalid(format!(
                "\"{}\" is not a time of day; write HH:MM, e.g. free bob tue 10:00 for 1h",
                sanitize(t)
            ))
        })?);
        used += 1;
    }
    let (mut first, mut last) = days.unwrap_or((today, today));
    if let (Some(wd), Some(t)) = (day_of_week, time) {
        // "tue 10:00" said on a Tuesday at 11:00 means next Tuesday.
        if first == today && today.weekday() == wd && t <= now_local.time() {
            first = add_days(today, 7)?;
            last = first;
        }
    }
    if time.is_some() && first != last {
        return Err(ParseError::invalid(
            "A time needs one day, not a range: free bob tue 10:00 for 1h",
        ));
    }
    Ok(Some((When { first, last, time }, used)))
}

/// `YYYY-MM-DD`, `YYYY-MM-DD..YYYY-MM-DD` or `YYYY-MM-DD .. YYYY-MM-DD`.
fn date_or_range(words: &[&str], used: &mut usize) -> Result<(NaiveDate, NaiveDate), ParseError> {
    let w = words[0];
    let (first, last) = if let Some((a, b)) = w.split_once("..") {
        if b.is_empty() {
            *used = 2;
            let b = words.get(1).copied().unwrap_or("");
            (parse_date(a)?, parse_date(b)?)
        } else {
            (parse_date(a)?, parse_date(b)?)
        }
    } else if words.get(1).is_some_and(|s| *s == "..") {
        *used = 3;
        let b = words.get(2).copied().unwrap_or("");
        (parse_date(w)?, parse_date(b)?)
    } else {
        let d = parse_date(w)?;
        (d, d)
    };
    if last < first {
        return Err(ParseError::invalid(format!(
            "{first}..{last} ends before it starts; write the earlier day first, e.g. agenda 2026-01-12..2026-01-16"
        )));
    }
    if (last - first).num_days() >= MAX_DAYS {
        return Err(ParseError::invalid(format!(
            "{first}..{last} is too long; ask about at most a year, e.g. agenda 2026-01-12..2026-01-16"
        )));
    }
    Ok((first, last))
}

fn add_days(d: NaiveDate, n: i64) -> Result<NaiveDate, ParseError> {
    d.checked_add_signed(Duration::days(n))
        .ok_or_else(|| ParseError::invalid("That day is out of the calendar's range."))
}

fn next_day(d: NaiveDate) -> Result<NaiveDate, ParseError> {
    add_days(d, 1)
}

/// Reads a `<dur>` at the start of `words` (`30m`, `1h`, `1h30m`, `90m`, and
/// also `30 min`, `1hr`, `2 hours`); returns it and how many words it took.
/// `example` ends the error sentence.
pub(crate) fn parse_dur(words: &[&str], example: &str) -> Result<(Duration, usize), ParseError> {
    let bad = || {
        ParseError::invalid(format!(
            "\"for\" needs a duration like 30m, 1h or 1h30m: {example}"
        ))
    };
    let Some(&first) = words.first() else {
        return Err(bad());
    };
    let mut text = first.to_ascii_lowercase();
    let mut used = 1;
    if text.bytes().all(|b| b.is_ascii_digit()) {
        match words.get(1).map(|w| unit(&w.to_ascii_lowercase())) {
            Some(Some(u)) => {
                text.push_str(u);
                used = 2;
            }
            _ => return Err(bad()),
        }
    }
    let d = parse_hm(&text).ok_or_else(bad)?;
    if d <= Duration::zero() {
        return Err(bad());
    }
    if d > Duration::hours(MAX_DURATION_HOURS) {
        return Err(ParseError::invalid(format!(
            "{} is longer than a day; ask for at most 24h: {example}",
            sanitize(first)
        )));
    }
    Ok((d, used))
}

/// Whether `w` could be a `<dur>` (used to end free text before `for 1h`).
pub(crate) fn is_dur(words: &[&str]) -> bool {
    parse_dur(words, "").is_ok()
}

fn unit(w: &str) -> Option<&'static str> {
    match w {
        "m" | "min" | "mins" | "minute" | "minutes" => Some("m"),
        "h" | "hr" | "hrs" | "hour" | "hours" => Some("h"),
        _ => None,
    }
}

/// `1h30m`-style text with long unit names allowed (`1hr30min`); hours and
/// minutes only, each number at most 4 digits (bounded, never overflows).
fn parse_hm(text: &str) -> Option<Duration> {
    let mut total = Duration::zero();
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 4 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let part = match unit(&rest[..letters])? {
            "h" => Duration::hours(n),
            _ => Duration::minutes(n),
        };
        rest = &rest[letters..];
        total += part;
    }
    Some(total)
}

/// Straight and typographic double quotes, as phone keyboards type them.
const QUOTES: &[char] = &['"', '\u{201C}', '\u{201D}'];

/// For each word, whether it lies inside a quoted name (`"Sun Li"`): such
/// words never start a clause, so a contact may be called like a weekday.
pub(crate) fn quoted(words: &[&str]) -> Vec<bool> {
    let mut inside = false;
    words
        .iter()
        .map(|w| {
            let w = w.trim_end_matches(',');
            let opens = w.starts_with(QUOTES);
            // A lone quote mark opens; `"Li"` or `Li",` closes.
            let closes = w.ends_with(QUOTES) && (!opens || w.chars().count() > 1);
            let this = inside || opens;
            if opens && !closes {
                inside = true;
            } else if closes {
                inside = false;
            }
            this
        })
        .collect()
}

/// Splits `<who>` words into names: commas (attached or alone), `and` and
/// `&` separate; words in between make one name (`Bob Smith`). Keeps the
/// original spelling; at most 50 names.
pub(crate) fn parse_who(words: &[&str], example: &str) -> Result<Vec<String>, ParseError> {
    let mut names = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    let flush = |current: &mut Vec<&str>, names: &mut Vec<String>| {
        if !current.is_empty() {
            names.push(current.join(" "));
            current.clear();
        }
    };
    for &w in words {
        if is(w, "and") || w == "&" {
            flush(&mut current, &mut names);
            continue;
        }
        let w = w.trim_matches(QUOTES);
        let mut parts = w.split(',').peekable();
        while let Some(part) = parts.next() {
            let part = part.trim_matches(QUOTES);
            if !part.is_empty() {
                current.push(part);
            }
            if parts.peek().is_some() {
                flush(&mut current, &mut names);
            }
        }
    }
    flush(&mut current, &mut names);
    if names.is_empty() {
        return Err(ParseError::invalid(format!(
            "Who? Give a contact's name or JID: {example}"
        )));
    }
    if names.len() > 50 {
        return Err(ParseError::invalid(format!(
            "That is {} people; name at most 50 (or use a group): {example}",
            names.len()
        )));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
    }

    /// Tuesday 13 January 2026, 09:00.
    fn tue() -> (NaiveDate, NaiveDateTime) {
        let d = date(2026, 1, 13);
        (d, d.and_hms_opt(9, 0, 0).unwrap_or_default())
    }

    fn when(text: &str, today: NaiveDate, now: NaiveDateTime) -> When {
        let words: Vec<&str> = text.split_whitespace().collect();
        match parse_when(&words, today, now) {
            Ok(Some((w, used))) => {
                assert_eq!(used, words.len(), "{text} left words over");
                w
            }
            other => panic!("{text}: {other:?}"),
        }
    }

    fn days(first: NaiveDate, last: NaiveDate) -> When {
        When {
            first,
            last,
            time: None,
        }
    }

    #[test]
    fn today_and_tomorrow_are_single_days() {
        let (today, now) = tue();
        assert_eq!(when("today", today, now), When::day(today));
        assert_eq!(when("Tomorrow", today, now), When::day(date(2026, 1, 14)));
        assert_eq!(when("tmrw", today, now), When::day(date(2026, 1, 14)));
    }

    #[test]
    fn a_weekday_is_the_next_one_with_today_included() {
        let (today, now) = tue();
        assert_eq!(when("tue", today, now), When::day(today));
        assert_eq!(when("Tuesday", today, now), When::day(today));
        assert_eq!(when("wed", today, now), When::day(date(2026, 1, 14)));
        assert_eq!(when("mon", today, now), When::day(date(2026, 1, 19)));
        assert_eq!(when("SUNDAY", today, now), When::day(date(2026, 1, 18)));
        assert_eq!(when("thurs", today, now), When::day(date(2026, 1, 15)));
    }

    #[test]
    fn a_weekday_with_a_time_already_passed_today_is_next_weeks() {
        let (today, now) = tue();
        let later = when("tue 10:00", today, now);
        assert_eq!(later.first, today);
        let passed = when("tue 08:30", today, now);
        assert_eq!(passed.first, date(2026, 1, 20));
        // "today" stays today, whatever the time.
        assert_eq!(when("today 08:30", today, now).first, today);
    }

    #[test]
    fn this_week_runs_from_today_to_sunday_and_next_week_is_monday_to_sunday() {
        let (today, now) = tue();
        assert_eq!(
            when("this week", today, now),
            days(today, date(2026, 1, 18))
        );
        assert_eq!(
            when("next week", today, now),
            days(date(2026, 1, 19), date(2026, 1, 25))
        );
    }

    #[test]
    fn next_week_said_on_a_sunday_starts_tomorrow() {
        let sunday = date(2026, 1, 18);
        let now = sunday.and_hms_opt(20, 0, 0).unwrap_or_default();
        assert_eq!(
            when("next week", sunday, now),
            days(date(2026, 1, 19), date(2026, 1, 25))
        );
        assert_eq!(when("this week", sunday, now), days(sunday, sunday));
        assert_eq!(when("sun", sunday, now), When::day(sunday));
    }

    #[test]
    fn dates_and_date_ranges_read_as_written() {
        let (today, now) = tue();
        assert_eq!(when("2026-02-03", today, now), When::day(date(2026, 2, 3)));
        assert_eq!(
            when("2026-02-03..2026-02-05", today, now),
            days(date(2026, 2, 3), date(2026, 2, 5))
        );
        assert_eq!(
            when("2026-02-03 .. 2026-02-05", today, now),
            days(date(2026, 2, 3), date(2026, 2, 5))
        );
    }

    #[test]
    fn a_time_may_follow_any_single_day() {
        let (today, now) = tue();
        let ten = NaiveTime::from_hms_opt(10, 0, 0);
        assert_eq!(when("2026-02-03 10:00", today, now).time, ten);
        assert_eq!(when("tomorrow at 10:00", today, now).time, ten);
        assert_eq!(when("wed 10am", today, now).time, ten);
        assert_eq!(
            when("wed 2:30pm", today, now).time,
            NaiveTime::from_hms_opt(14, 30, 0)
        );
        assert_eq!(
            when("10:00", today, now),
            When {
                first: today,
                last: today,
                time: ten
            }
        );
    }

    #[test]
    fn malformed_days_and_times_say_how_to_write_them() {
        let (today, now) = tue();
        let err = |t: &str| {
            let words: Vec<&str> = t.split_whitespace().collect();
            parse_when(&words, today, now)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(err("2026-13-01").contains("YYYY-MM-DD"));
        assert!(err("tue 25:00").contains("HH:MM"));
        assert!(err("2026-02-05..2026-02-03").contains("ends before it starts"));
        assert!(err("2026-01-01..2028-01-01").contains("at most a year"));
        assert!(err("next week 10:00").contains("one day"));
    }

    #[test]
    fn durations_read_in_the_grammar_forms_and_a_few_spoken_ones() {
        let dur = |t: &str| {
            let words: Vec<&str> = t.split_whitespace().collect();
            parse_dur(&words, "free bob tue 10:00 for 1h").map(|(d, used)| (d.num_minutes(), used))
        };
        assert_eq!(dur("30m"), Ok((30, 1)));
        assert_eq!(dur("1h"), Ok((60, 1)));
        assert_eq!(dur("1h30m"), Ok((90, 1)));
        assert_eq!(dur("90m"), Ok((90, 1)));
        assert_eq!(dur("1H30M"), Ok((90, 1)));
        assert_eq!(dur("30 min"), Ok((30, 2)));
        assert_eq!(dur("2 hours"), Ok((120, 2)));
        assert_eq!(dur("1hr"), Ok((60, 1)));
        for bad in ["", "30", "0m", "1x", "h", "25h", "99999999999m", "1d"] {
            assert!(dur(bad).is_err(), "{bad}");
        }
        assert!(
            dur("30")
                .err()
                .is_some_and(|e| e.to_string().contains("30m, 1h or 1h30m"))
        );
    }

    #[test]
    fn who_lists_split_on_commas_and_keep_the_spelling() {
        let who = |t: &str| {
            let words: Vec<&str> = t.split_whitespace().collect();
            parse_who(&words, "free bob").unwrap_or_default()
        };
        assert_eq!(who("bob, carol"), ["bob", "carol"]);
        assert_eq!(
            who("Bob,Carol ,dave@example.org"),
            ["Bob", "Carol", "dave@example.org"]
        );
        assert_eq!(who("Bob Smith and carol"), ["Bob Smith", "carol"]);
        assert_eq!(who("\"Sun Li\", \u{201C}Tue\u{201D}"), ["Sun Li", "Tue"]);
        assert!(parse_who(&[","], "free bob").is_err());
    }

    #[test]
    fn quoted_words_are_marked_so_they_never_start_a_clause() {
        let words = [
            "\"Sun",
            "Li\"",
            "tomorrow",
            "\"Tue\"",
            "\u{201C}Mon",
            "x\u{201D}",
            "wed",
        ];
        assert_eq!(quoted(&words), [true, true, false, true, true, true, false]);
    }

    #[test]
    fn ids_keep_their_text_and_expose_their_number() {
        let id = |t: &str| parse_id(Some(t), "done 3");
        assert_eq!(id("3").map(|i| i.number()), Ok(Some(3)));
        assert_eq!(id("m3").map(|i| i.0), Ok("m3".to_string()));
        assert_eq!(id("#t12").map(|i| i.number()), Ok(Some(12)));
        assert!(id("bob;drop").is_err());
        assert!(id("12345678901234567").is_err());
        assert!(parse_id(None, "done 3").is_err_and(|e| e.to_string().contains("done 3")));
    }

    #[test]
    fn day_ranges_follow_the_zone_across_dst_in_berlin() {
        let tz = chrono_tz::Europe::Berlin;
        // Clocks go forward on Sunday 29 March 2026: that day has 23 hours.
        let spring = When::day(date(2026, 3, 29)).to_utc_range(tz);
        assert_eq!(spring.start.to_rfc3339(), "2026-03-28T23:00:00+00:00");
        assert_eq!(spring.end.to_rfc3339(), "2026-03-29T22:00:00+00:00");
        assert_eq!(spring.duration(), Duration::hours(23));
        // And back on Sunday 25 October: 25 hours.
        let autumn = When::day(date(2026, 10, 25)).to_utc_range(tz);
        assert_eq!(autumn.duration(), Duration::hours(25));
        // A week across the change: Monday 23 March to Sunday 29 March.
        let week = days(date(2026, 3, 23), date(2026, 3, 29)).to_utc_range(tz);
        assert_eq!(week.start.to_rfc3339(), "2026-03-22T23:00:00+00:00");
        assert_eq!(week.end.to_rfc3339(), "2026-03-29T22:00:00+00:00");
    }

    #[test]
    fn a_slot_starts_at_the_local_time_and_lasts_exactly_the_duration() {
        let tz = chrono_tz::Europe::Berlin;
        let w = When {
            first: date(2026, 1, 13),
            last: date(2026, 1, 13),
            time: NaiveTime::from_hms_opt(10, 0, 0),
        };
        let slot = w.slot(Duration::hours(1), tz);
        assert_eq!(
            slot.map(|s| (s.start.to_rfc3339(), s.end.to_rfc3339())),
            Some((
                "2026-01-13T09:00:00+00:00".to_string(),
                "2026-01-13T10:00:00+00:00".to_string()
            ))
        );
        assert_eq!(
            When::day(date(2026, 1, 13)).slot(Duration::hours(1), tz),
            None
        );
    }
}
