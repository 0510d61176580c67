//! TZID resolution: from whatever a calendar program wrote as a time zone name
//! (IANA, vendor-prefixed IANA, Windows, Windows display name, `UTC+1`) or
//! defined in a VTIMEZONE, to a `chrono_tz::Tz`.
//!
//! Owns the Windows table lookup and VTIMEZONE rule matching. Must not touch
//! content lines or domain types: callers hand it names and observances.

use std::collections::HashMap;
use std::sync::OnceLock;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Offset, TimeZone, Weekday};
use chrono_tz::{TZ_VARIANTS, Tz};

use super::values::{parse_date, parse_date_time};
use super::windows_zones::WINDOWS_ZONES;

/// VTIMEZONE rules are compared with IANA zones over these years: recent and
/// near-future rules are what matter for a calendar, and a fixed window keeps
/// the answer independent of the clock.
const WINDOW_YEARS: std::ops::Range<i32> = 2020..2030;

/// Zones preferred, in this order, when several IANA zones share the rules of
/// a VTIMEZONE (Berlin, Paris and Budapest all match a CET definition).
const WELL_KNOWN: &[&str] = &[
    "Etc/UTC",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Paris",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Phoenix",
    "America/Sao_Paulo",
    "Asia/Tokyo",
    "Asia/Shanghai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Dubai",
    "Australia/Sydney",
    "Pacific/Auckland",
];

/// How a TZID was turned into a zone, for the warning that tells the owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolution {
    /// The VTIMEZONE's `X-LIC-LOCATION`.
    Location,
    /// An IANA zone with the same offsets and changes over the comparison window.
    Rules,
    /// The closest IANA zone: offsets differ on a few days of the window.
    Approximate,
    /// A single fixed offset, read as `Etc/GMT±N`.
    FixedOffset,
}

/// One STANDARD or DAYLIGHT observance of a VTIMEZONE.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Observance {
    /// Local time of the first onset (in the offset before it).
    pub(crate) start: NaiveDateTime,
    pub(crate) offset_from: i32,
    pub(crate) offset_to: i32,
    pub(crate) rrule: Option<String>,
    pub(crate) rdates: Vec<NaiveDateTime>,
}

/// What the matcher needs from a VTIMEZONE.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct ZoneDefinition {
    pub(crate) tzid: String,
    pub(crate) location: Option<String>,
    pub(crate) observances: Vec<Observance>,
}

fn iana_by_lowercase() -> &'static HashMap<String, Tz> {
    static MAP: OnceLock<HashMap<String, Tz>> = OnceLock::new();
    MAP.get_or_init(|| {
        TZ_VARIANTS
            .iter()
            .map(|tz| (tz.name().to_ascii_lowercase(), *tz))
            .collect()
    })
}

fn iana(name: &str) -> Option<Tz> {
    iana_by_lowercase().get(&name.to_ascii_lowercase()).copied()
}

/// Resolves a time zone name without any VTIMEZONE: an IANA name (any case,
/// spaces for underscores), one behind a vendor prefix
/// (`/mozilla.org/20070129_1/Europe/Berlin`), a Windows name (`W. Europe
/// Standard Time`) or display name (`(UTC+01:00) Amsterdam, Berlin, …`), or
/// a whole-hour `UTC+1`/`GMT-05:00`.
pub fn resolve_tz_name(name: &str) -> Option<Tz> {
    let name = name.trim().trim_matches('"').trim();
    if name.is_empty() {
        return None;
    }
    if let Some(tz) = iana(name).or_else(|| iana(&name.replace(' ', "_"))) {
        return Some(tz);
    }
    if let Some(tz) = windows(name) {
        return Some(tz);
    }
    if name.contains('/') {
        let parts: Vec<&str> = name.split('/').filter(|p| !p.is_empty()).collect();
        // The longest suffix that is a zone: `America/Argentina/Buenos_Aires`
        // must win over `Buenos_Aires`-like tails.
        for i in 0..parts.len() {
            if let Some(tz) = iana(&parts[i..].join("/")) {
                return Some(tz);
            }
        }
    }
    fixed_offset_name(name)
}

fn windows(name: &str) -> Option<Tz> {
    let display = name
        .strip_prefix('(')
        .and_then(|rest| rest.split_once(')'))
        .map(|(_, rest)| rest.trim())
        .unwrap_or(name);
    WINDOWS_ZONES
        .iter()
        .find(|(windows, shown, _)| {
            windows.eq_ignore_ascii_case(name) || shown.eq_ignore_ascii_case(display)
        })
        .and_then(|(_, _, zone)| iana(zone))
}

/// `UTC+1`, `GMT-05:00`, `UTC+0100` → `Etc/GMT∓N` (whole hours only: the
/// `Etc` zones have no others).
fn fixed_offset_name(name: &str) -> Option<Tz> {
    let upper = name.to_ascii_uppercase();
    let rest = upper
        .strip_prefix("UTC")
        .or_else(|| upper.strip_prefix("GMT"))?;
    if rest.is_empty() {
        return iana("Etc/UTC");
    }
    let (sign, digits) = match rest.as_bytes().first()? {
        b'+' => (1, &rest[1..]),
        b'-' => (-1, &rest[1..]),
        _ => return None,
    };
    let digits: String = digits.chars().filter(|c| *c != ':').collect();
    if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (hours, minutes) = match digits.len() {
        1 | 2 => (digits.parse::<i32>().ok()?, 0),
        3 => (digits[..1].parse().ok()?, digits[1..].parse::<i32>().ok()?),
        _ => (digits[..2].parse().ok()?, digits[2..].parse::<i32>().ok()?),
    };
    if minutes != 0 {
        return None;
    }
    etc_zone(sign * hours * 3600)
}

/// The `Etc/GMT±N` zone for a whole-hour offset east of UTC (note the POSIX
/// sign inversion: UTC+1 is `Etc/GMT-1`).
fn etc_zone(offset: i32) -> Option<Tz> {
    if offset % 3600 != 0 {
        return None;
    }
    match offset / 3600 {
        0 => iana("Etc/UTC"),
        h if h > 0 => iana(&format!("Etc/GMT-{h}")),
        h => iana(&format!("Etc/GMT+{}", -h)),
    }
}

/// Resolves a VTIMEZONE whose TZID is not a known name: by its
/// `X-LIC-LOCATION`, else by finding the IANA zone with the same offsets and
/// changes over 2020–2029, else (one fixed whole-hour offset) `Etc/GMT±N`.
pub(crate) fn resolve_definition(def: &ZoneDefinition) -> Option<(Tz, Resolution)> {
    if let Some(tz) = def.location.as_deref().and_then(resolve_tz_name) {
        return Some((tz, Resolution::Location));
    }
    let transitions = transitions(def)?;
    let samples = sample_instants(&transitions);
    let expected: Vec<i32> = samples
        .iter()
        .map(|t| offset_at(&transitions, *t))
        .collect::<Option<_>>()?;
    let fixed = expected.windows(2).all(|w| w[0] == w[1]);
    let hint = words(&def.tzid);

    let quick: Vec<i64> = WINDOW_YEARS
        .step_by(3)
        .flat_map(|y| [(y, 1, 15), (y, 7, 15)])
        .filter_map(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d))
        .map(|d| {
            d.and_hms_opt(12, 0, 0)
                .unwrap_or_default()
                .and_utc()
                .timestamp()
        })
        .collect();
    let mut best: Option<(usize, (u8, usize, &'static str), Tz)> = None;
    // Mismatches tolerated for an approximate answer: about a month a decade.
    let tolerance = samples.len() / 100;
    for tz in TZ_VARIANTS.iter().copied() {
        let name = tz.name();
        if !name.contains('/') || name.starts_with("Etc/") {
            continue;
        }
        let quick_ok = quick
            .iter()
            .all(|&t| Some(zone_offset(tz, t)) == offset_at(&transitions, t));
        if !quick_ok {
            continue;
        }
        let mut mismatches = 0;
        for (t, want) in samples.iter().zip(&expected) {
            if zone_offset(tz, *t) != *want {
                mismatches += 1;
                if mismatches > tolerance {
                    break;
                }
            }
        }
        if mismatches > tolerance {
            continue;
        }
        let key = (mismatches, preference(tz, &hint), tz);
        if best.as_ref().is_none_or(|b| (key.0, key.1) < (b.0, b.1)) {
            best = Some(key);
        }
    }
    let city_named = best.as_ref().is_some_and(|b| b.1.0 == 0);
    let etc = expected.first().and_then(|o| etc_zone(*o));
    if let Some(tz) = etc.filter(|_| fixed && !city_named) {
        return Some((tz, Resolution::FixedOffset));
    }
    best.map(|(mismatches, _, tz)| {
        let how = if mismatches == 0 {
            Resolution::Rules
        } else {
            Resolution::Approximate
        };
        (tz, how)
    })
}

/// Lower is better: a zone whose city the TZID names, then well-known zones,
/// then the Windows table's zones, then the rest alphabetically.
fn preference(tz: Tz, hint: &str) -> (u8, usize, &'static str) {
    let name = tz.name();
    let city = words(name.rsplit('/').next().unwrap_or(name));
    // Whole words only: "Rome" must not match "Romance Standard Time".
    if city.len() > 4 && hint.contains(&city) {
        return (0, 0, name);
    }
    if let Some(i) = WELL_KNOWN.iter().position(|w| *w == name) {
        return (1, i, name);
    }
    if let Some(i) = WINDOWS_ZONES.iter().position(|(_, _, z)| *z == name) {
        return (2, i, name);
    }
    (3, 0, name)
}

/// `" new york "` for `New_York`, `"New York"` or `"new-york"`: lower-case
/// words between single spaces, padded so that `contains` matches whole words.
fn words(s: &str) -> String {
    let mut out = String::from(" ");
    for word in s
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        out.push_str(&word.to_lowercase());
        out.push(' ');
    }
    out
}

fn zone_offset(tz: Tz, t: i64) -> i32 {
    match DateTime::from_timestamp(t, 0) {
        Some(utc) => tz
            .offset_from_utc_datetime(&utc.naive_utc())
            .fix()
            .local_minus_utc(),
        None => 0,
    }
}

/// One change of offset: `(UTC instant, offset before, offset after)`.
type Transition = (i64, i32, i32);

/// Every onset of every observance from a year before the window to its end,
/// sorted; `None` when a rule is beyond the yearly patterns VTIMEZONEs use.
fn transitions(def: &ZoneDefinition) -> Option<Vec<Transition>> {
    let mut out = Vec::new();
    for obs in &def.observances {
        let mut onsets = vec![obs.start];
        onsets.extend(obs.rdates.iter().copied());
        if let Some(rule) = &obs.rrule {
            onsets.extend(expand_yearly(rule, obs)?);
        }
        for onset in onsets {
            let utc = onset.and_utc().timestamp() - i64::from(obs.offset_from);
            out.push((utc, obs.offset_from, obs.offset_to));
        }
    }
    if out.is_empty() {
        return None;
    }
    out.sort_unstable();
    out.dedup_by_key(|t| t.0);
    Some(out)
}

fn offset_at(transitions: &[Transition], t: i64) -> Option<i32> {
    let after = transitions.partition_point(|tr| tr.0 <= t);
    match after {
        0 => transitions.first().map(|tr| tr.1),
        n => transitions.get(n - 1).map(|tr| tr.2),
    }
}

/// A minute either side of each of the definition's changes (catches a zone
/// that changes on another day or hour), and every third day at noon UTC
/// (catches a zone that changes when the definition does not).
fn sample_instants(transitions: &[Transition]) -> Vec<i64> {
    let start = year_start(WINDOW_YEARS.start);
    let end = year_start(WINDOW_YEARS.end);
    let mut samples: Vec<i64> = (0..)
        .map(|i| start + 12 * 3600 + i * 3 * 86_400)
        .take_while(|t| *t < end)
        .collect();
    for (t, _, _) in transitions.iter().filter(|tr| tr.0 >= start && tr.0 < end) {
        samples.push(t - 60);
        samples.push(t + 60);
    }
    samples
}

fn year_start(year: i32) -> i64 {
    NaiveDate::from_ymd_opt(year, 1, 1)
        .map(|d| {
            d.and_hms_opt(0, 0, 0)
                .unwrap_or_default()
                .and_utc()
                .timestamp()
        })
        .unwrap_or_default()
}

/// Expands the yearly rules VTIMEZONEs use (`FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU`,
/// with `BYMONTHDAY`, `UNTIL`, `COUNT`, `INTERVAL`) over the comparison window.
fn expand_yearly(rule: &str, obs: &Observance) -> Option<Vec<NaiveDateTime>> {
    let mut month = obs.start.month();
    let mut by_day: Option<(i32, Weekday)> = None;
    let mut month_days: Vec<i32> = Vec::new();
    let mut until: Option<NaiveDateTime> = None;
    let mut count: Option<i32> = None;
    let mut interval = 1;
    for part in rule.split(';').filter(|p| !p.is_empty()) {
        let (key, value) = part.split_once('=')?;
        match key.to_ascii_uppercase().as_str() {
            "FREQ" if value.eq_ignore_ascii_case("YEARLY") => {}
            "BYMONTH" => month = value.parse().ok().filter(|m| (1..=12).contains(m))?,
            "BYDAY" => by_day = Some(parse_by_day(value)?),
            "BYMONTHDAY" => {
                month_days = value
                    .split(',')
                    .map(|d| d.parse().ok())
                    .collect::<Option<_>>()?;
            }
            "UNTIL" => {
                until = Some(match parse_date_time(value) {
                    // A UTC UNTIL compared in local time: off by the offset at
                    // most, never across a whole year.
                    Some((t, _)) => t,
                    None => parse_date(value)?.and_hms_opt(23, 59, 59)?,
                });
            }
            "COUNT" => count = Some(value.parse().ok()?),
            "INTERVAL" => interval = value.parse().ok().filter(|i: &i32| *i > 0)?,
            "WKST" => {}
            _ => return None,
        }
    }
    let first_year = obs.start.year();
    let mut out = Vec::new();
    for year in (WINDOW_YEARS.start - 1).max(first_year)..WINDOW_YEARS.end {
        let index = year - first_year;
        if index % interval != 0 || count.is_some_and(|c| index / interval >= c) {
            continue;
        }
        let Some(day) = day_in_month(year, month, by_day, &month_days, obs.start.day()) else {
            continue;
        };
        let onset = day.and_time(obs.start.time());
        if onset < obs.start || until.is_some_and(|u| onset > u) {
            continue;
        }
        out.push(onset);
    }
    Some(out)
}

fn parse_by_day(value: &str) -> Option<(i32, Weekday)> {
    if value.contains(',') || value.len() < 2 || !value.is_ascii() {
        return None;
    }
    let (ordinal, day) = value.split_at(value.len() - 2);
    let ordinal = if ordinal.is_empty() {
        0
    } else {
        ordinal
            .parse()
            .ok()
            .filter(|n: &i32| (-5..=5).contains(n))?
    };
    let day = match day.to_ascii_uppercase().as_str() {
        "MO" => Weekday::Mon,
        "TU" => Weekday::Tue,
        "WE" => Weekday::Wed,
        "TH" => Weekday::Thu,
        "FR" => Weekday::Fri,
        "SA" => Weekday::Sat,
        "SU" => Weekday::Sun,
        _ => return None,
    };
    Some((ordinal, day))
}

fn day_in_month(
    year: i32,
    month: u32,
    by_day: Option<(i32, Weekday)>,
    month_days: &[i32],
    default_day: u32,
) -> Option<NaiveDate> {
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)?
    };
    let last = next - Duration::days(1);
    let resolve = |d: i32| -> Option<NaiveDate> {
        if d > 0 {
            NaiveDate::from_ymd_opt(year, month, u32::try_from(d).ok()?)
        } else {
            last.checked_sub_signed(Duration::days(i64::from(-d - 1)))
                .filter(|x| x.month() == month)
        }
    };
    match by_day {
        Some((0, weekday)) => month_days
            .iter()
            .filter_map(|d| resolve(*d))
            .find(|d| d.weekday() == weekday),
        Some((n, weekday)) if n > 0 => {
            let shift =
                (7 + weekday.num_days_from_monday() - first.weekday().num_days_from_monday()) % 7;
            let day = first + Duration::days(i64::from(shift) + 7 * i64::from(n - 1));
            (day.month() == month).then_some(day)
        }
        Some((n, weekday)) => {
            let shift =
                (7 + last.weekday().num_days_from_monday() - weekday.num_days_from_monday()) % 7;
            let day = last - Duration::days(i64::from(shift) + 7 * i64::from(-n - 1));
            (day.month() == month).then_some(day)
        }
        None => match month_days.first() {
            Some(d) => resolve(*d),
            None => NaiveDate::from_ymd_opt(year, month, default_day),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(tz: Option<Tz>) -> Option<&'static str> {
        tz.map(|t| t.name())
    }

    fn at(s: &str) -> NaiveDateTime {
        parse_date_time(s).map(|(t, _)| t).unwrap_or_default()
    }

    fn observance(start: &str, from: i32, to: i32, rrule: Option<&str>) -> Observance {
        Observance {
            start: at(start),
            offset_from: from,
            offset_to: to,
            rrule: rrule.map(str::to_owned),
            rdates: Vec::new(),
        }
    }

    #[test]
    fn iana_names_resolve_in_any_case_and_quoted() {
        assert_eq!(
            name(resolve_tz_name("Europe/Berlin")),
            Some("Europe/Berlin")
        );
        assert_eq!(
            name(resolve_tz_name("europe/berlin")),
            Some("Europe/Berlin")
        );
        assert_eq!(
            name(resolve_tz_name("\"America/New_York\"")),
            Some("America/New_York")
        );
        assert_eq!(
            name(resolve_tz_name("America/New York")),
            Some("America/New_York")
        );
    }

    #[test]
    fn vendor_prefixed_tzids_resolve_to_their_iana_suffix() {
        assert_eq!(
            name(resolve_tz_name("/mozilla.org/20070129_1/Europe/Berlin")),
            Some("Europe/Berlin")
        );
        assert_eq!(
            name(resolve_tz_name(
                "/freeassociation.sourceforge.net/Tzfile/Europe/London"
            )),
            Some("Europe/London")
        );
        assert_eq!(
            name(resolve_tz_name(
                "/softwarestudio.org/Olson_20011030_5/America/Argentina/Buenos_Aires"
            )),
            Some("America/Argentina/Buenos_Aires")
        );
    }

    #[test]
    fn windows_zone_names_resolve_through_the_cldr_table() {
        for (windows, iana) in [
            ("W. Europe Standard Time", "Europe/Berlin"),
            ("Eastern Standard Time", "America/New_York"),
            ("GMT Standard Time", "Europe/London"),
            ("Romance Standard Time", "Europe/Paris"),
            ("Pacific Standard Time", "America/Los_Angeles"),
            ("India Standard Time", "Asia/Kolkata"),
            ("Tokyo Standard Time", "Asia/Tokyo"),
            ("AUS Eastern Standard Time", "Australia/Sydney"),
            ("w. europe standard time", "Europe/Berlin"),
            (
                "(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna",
                "Europe/Berlin",
            ),
        ] {
            assert_eq!(name(resolve_tz_name(windows)), Some(iana), "{windows}");
        }
    }

    #[test]
    fn every_windows_table_entry_names_a_zone_chrono_tz_knows() {
        assert!(WINDOWS_ZONES.len() >= 139);
        for (windows, _, zone) in WINDOWS_ZONES {
            assert!(iana(zone).is_some(), "{windows} → {zone}");
        }
    }

    #[test]
    fn whole_hour_utc_offsets_become_etc_zones() {
        assert_eq!(name(resolve_tz_name("UTC+1")), Some("Etc/GMT-1"));
        assert_eq!(name(resolve_tz_name("GMT-05:00")), Some("Etc/GMT+5"));
        assert_eq!(name(resolve_tz_name("UTC")), Some("UTC"));
        assert_eq!(name(resolve_tz_name("UTC+01:00")), Some("Etc/GMT-1"));
        assert_eq!(resolve_tz_name("UTC+05:30"), None);
        assert_eq!(resolve_tz_name("Mars/Olympus"), None);
        assert_eq!(resolve_tz_name(""), None);
    }

    #[test]
    fn an_exchange_customized_zone_with_eu_rules_matches_europe_berlin() {
        let def = ZoneDefinition {
            tzid: "Customized Time Zone".into(),
            location: None,
            observances: vec![
                observance(
                    "16010101T030000",
                    7200,
                    3600,
                    Some("FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10"),
                ),
                observance(
                    "16010101T020000",
                    3600,
                    7200,
                    Some("FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3"),
                ),
            ],
        };
        assert_eq!(
            resolve_definition(&def).map(|(tz, how)| (tz.name(), how)),
            Some(("Europe/Berlin", Resolution::Rules))
        );
    }

    #[test]
    fn a_city_in_the_tzid_picks_among_zones_with_the_same_rules() {
        let def = ZoneDefinition {
            tzid: "(UTC+01:00) Brussels, Copenhagen, Madrid, Paris (custom)".into(),
            location: None,
            observances: vec![
                observance(
                    "19701025T030000",
                    7200,
                    3600,
                    Some("FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU"),
                ),
                observance(
                    "19700329T020000",
                    3600,
                    7200,
                    Some("FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU"),
                ),
            ],
        };
        let tz = resolve_definition(&def).map(|(tz, _)| tz.name());
        assert!(
            matches!(
                tz,
                Some("Europe/Brussels" | "Europe/Copenhagen" | "Europe/Madrid" | "Europe/Paris")
            ),
            "{tz:?}"
        );
    }

    #[test]
    fn city_hints_match_whole_words_only() {
        assert!(words("(UTC+01:00) Brussels, Copenhagen").contains(&words("Brussels")));
        assert!(!words("Romance Standard Time").contains(&words("Rome")));
        assert!(words("(UTC-05:00) New York custom").contains(&words("New_York")));
    }

    #[test]
    fn us_rules_match_new_york_not_a_european_zone() {
        let def = ZoneDefinition {
            tzid: "Custom".into(),
            location: None,
            observances: vec![
                observance(
                    "20071104T020000",
                    -14400,
                    -18000,
                    Some("FREQ=YEARLY;BYMONTH=11;BYDAY=1SU"),
                ),
                observance(
                    "20070311T020000",
                    -18000,
                    -14400,
                    Some("FREQ=YEARLY;BYMONTH=3;BYDAY=2SU"),
                ),
            ],
        };
        assert_eq!(
            resolve_definition(&def).map(|(tz, _)| tz.name()),
            Some("America/New_York")
        );
    }

    #[test]
    fn one_fixed_whole_hour_observance_becomes_an_etc_zone() {
        let def = ZoneDefinition {
            tzid: "Some Fixed Zone".into(),
            location: None,
            observances: vec![observance("16010101T000000", 10800, 10800, None)],
        };
        assert_eq!(
            resolve_definition(&def).map(|(tz, how)| (tz.name(), how)),
            Some(("Etc/GMT-3", Resolution::FixedOffset))
        );
    }

    #[test]
    fn x_lic_location_wins_over_offset_matching() {
        let def = ZoneDefinition {
            tzid: "Something".into(),
            location: Some("Europe/Vienna".into()),
            observances: vec![],
        };
        assert_eq!(
            resolve_definition(&def).map(|(tz, how)| (tz.name(), how)),
            Some(("Europe/Vienna", Resolution::Location))
        );
    }

    #[test]
    fn nth_weekday_rules_expand_to_the_right_days() {
        let obs = observance(
            "16010101T020000",
            3600,
            7200,
            Some("FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3"),
        );
        let days = expand_yearly("FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3", &obs).unwrap_or_default();
        assert!(days.contains(&at("20260329T020000")), "{days:?}");
        let obs = observance("20070311T020000", -18000, -14400, None);
        let days = expand_yearly("FREQ=YEARLY;BYMONTH=3;BYDAY=2SU", &obs).unwrap_or_default();
        assert!(days.contains(&at("20260308T020000")), "{days:?}");
        let days = expand_yearly(
            "FREQ=YEARLY;BYMONTH=3;BYDAY=SU;BYMONTHDAY=8,9,10,11,12,13,14",
            &obs,
        )
        .unwrap_or_default();
        assert!(days.contains(&at("20260308T020000")), "{days:?}");
    }
}
