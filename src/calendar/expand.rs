//! Recurrence expansion: turns an [`EventSeries`] (master plus overrides)
//! into the concrete [`Instance`]s that overlap a window.
//!
//! Owns the reading of RFC 5545 recurrence — RRULE, RDATE, EXDATE,
//! RECURRENCE-ID and RANGE=THISANDFUTURE — and is the single source of truth
//! for it: the occurrence index and the store both call [`expand_series`].
//! Must not touch I/O or the clock, and must never let the `rrule` crate see
//! the process's local zone: all rule arithmetic runs on wall-clock times
//! dressed up as UTC, and this module resolves them in the event's zone.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::{
    DateTime, Datelike, Days, Months, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta,
    TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;
use rrule::{Frequency, RRule, RRuleSet, Unvalidated};

use crate::domain::time::local_to_utc;
use crate::domain::{
    EventComponent, EventEnd, EventSeries, EventStatus, IcalTime, Instance, InstanceDetails,
    TimeRange,
};
use crate::error::RecurrenceError;

/// More instances than this from one series in one call is treated as a
/// runaway rule (e.g. `FREQ=SECONDLY`) rather than silently truncated, since a
/// truncated expansion would report busy time as free.
pub const MAX_INSTANCES_PER_SERIES: usize = 200_000;

/// Every non-cancelled instance of `series` that overlaps `window`, sorted by
/// [`instance_order`].
///
/// Overlap is CalDAV's time-range test (RFC 4791 §9.9) on half-open ranges:
/// `start < window.end && end > window.start`; a zero-length instance at `t`
/// counts when `window.start <= t < window.end`. DATE and floating values are
/// read in `owner_tz`.
pub fn expand_series(
    series: &EventSeries,
    window: TimeRange,
    owner_tz: Tz,
) -> Result<Vec<Instance>, RecurrenceError> {
    let plan = SeriesPlan::new(series, owner_tz)?;
    let mut out = plan.expand(window)?;
    out.sort_by(instance_order);
    Ok(out)
}

/// [`expand_series`] over many series, merged and sorted by [`instance_order`].
/// Stops at the first series whose rules cannot be read.
pub fn expand_all<'a>(
    series: impl IntoIterator<Item = &'a EventSeries>,
    window: TimeRange,
    owner_tz: Tz,
) -> Result<Vec<Instance>, RecurrenceError> {
    let mut out = Vec::new();
    for s in series {
        let plan = SeriesPlan::new(s, owner_tz)?;
        out.extend(plan.expand(window)?);
    }
    out.sort_by(instance_order);
    Ok(out)
}

/// Checks that every rule of `series` can be read, without expanding it, so
/// an importer can reject a broken event up front.
pub fn validate_series(series: &EventSeries, owner_tz: Tz) -> Result<(), RecurrenceError> {
    SeriesPlan::new(series, owner_tz).map(|_| ())
}

/// The order every expansion result is returned in: by start, then end, then
/// UID and original slot, so that equal inputs always give equal outputs.
pub fn instance_order(a: &Instance, b: &Instance) -> Ordering {
    a.range
        .start
        .cmp(&b.range.start)
        .then(a.range.end.cmp(&b.range.end))
        .then_with(|| a.details.uid.cmp(&b.details.uid))
        .then(a.recurrence_id.cmp(&b.recurrence_id))
}

/// An upper bound of how long any instance of `series` can last, so that a
/// caller holding instances sorted by start knows how far before a window
/// to look. Nominal days are counted as 25 hours to cover DST changes.
pub fn max_instance_duration(series: &EventSeries, owner_tz: Tz) -> TimeDelta {
    let mut max = TimeDelta::zero();
    for c in series.master.iter().chain(series.overrides.iter()) {
        max = max.max(Span::of(c, owner_tz).upper_bound());
    }
    if let Some(m) = &series.master {
        for r in &m.rdates {
            if let Some(end) = r.end {
                max = max.max(instant_of(&end, owner_tz) - instant_of(&r.start, owner_tz));
            }
        }
    }
    max
}

/// True when an instance occupying `r` belongs to a query over `window`
/// (zero-length instances count at their start, half-open elsewhere).
pub fn overlaps_window(r: &TimeRange, window: &TimeRange) -> bool {
    match (r.start == r.end, window.start == window.end) {
        (true, true) => r.start == window.start,
        (true, false) => window.start <= r.start && r.start < window.end,
        (false, true) => r.start <= window.start && window.start < r.end,
        (false, false) => r.start < window.end && window.start < r.end,
    }
}

// ---------------------------------------------------------------------------
// Lengths

/// How long an instance lasts as RFC 5545 §3.3.6 measures it: `days` are
/// nominal (calendar days in the event's zone, 23 or 25 hours across a DST
/// change), `seconds` exact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Span {
    days: i64,
    seconds: i64,
}

impl Span {
    /// RFC 5545 §3.8.5.3: a DTEND gives every instance the same *exact*
    /// duration; a DURATION gives the same *nominal* one. Between two DATEs
    /// the length is a number of whole days, which is nominal too.
    fn of(c: &EventComponent, owner_tz: Tz) -> Span {
        match c.end {
            EventEnd::Unspecified if c.start.is_date() => Span {
                days: 1,
                seconds: 0,
            },
            EventEnd::Unspecified => Span::default(),
            EventEnd::Duration(d) => Span {
                days: d.days,
                seconds: d.seconds,
            },
            EventEnd::End(end) => match (c.start, end) {
                (IcalTime::Date(s), IcalTime::Date(e)) => Span {
                    days: (e - s).num_days(),
                    seconds: 0,
                },
                _ => Span {
                    days: 0,
                    seconds: (instant_of(&end, owner_tz) - instant_of(&c.start, owner_tz))
                        .num_seconds(),
                },
            },
        }
    }

    /// The end of an instance that starts at wall-clock `local` in `zone`
    /// (the instant `start`). A negative or overflowing length gives a
    /// zero-length instance: RFC 5545 requires DTEND after DTSTART.
    fn end_from(self, local: NaiveDateTime, start: DateTime<Utc>, zone: Tz) -> DateTime<Utc> {
        let base = if self.days == 0 {
            Some(start)
        } else {
            add_days(local, self.days).map(|l| resolve(l, zone))
        };
        match base.and_then(|b| add_seconds(b, self.seconds)) {
            Some(end) if end > start => end,
            _ => start,
        }
    }

    fn upper_bound(self) -> TimeDelta {
        let hours = self.days.saturating_mul(25);
        let secs = hours.saturating_mul(3600).saturating_add(self.seconds);
        TimeDelta::try_seconds(secs.max(0)).unwrap_or(TimeDelta::MAX)
    }
}

/// [`local_to_utc`], saturating instead of overflowing for wall-clock times
/// within days of chrono's range limits (reachable only through absurd
/// values such as `DURATION:-P95000000D`).
pub(crate) fn resolve(local: NaiveDateTime, zone: Tz) -> DateTime<Utc> {
    let margin = TimeDelta::days(2);
    if NaiveDateTime::MIN
        .checked_add_signed(margin)
        .is_none_or(|low| local < low)
    {
        return DateTime::<Utc>::MIN_UTC;
    }
    if NaiveDateTime::MAX
        .checked_sub_signed(margin)
        .is_none_or(|high| local > high)
    {
        return DateTime::<Utc>::MAX_UTC;
    }
    local_to_utc(local, zone)
}

/// The wall-clock reading of `instant` in `zone`, saturating at chrono's
/// range limits where `with_timezone(..).naive_local()` would panic.
pub(crate) fn local_in(instant: DateTime<Utc>, zone: Tz) -> NaiveDateTime {
    let utc = instant.naive_utc();
    let offset = zone.offset_from_utc_datetime(&utc).fix();
    utc.checked_add_offset(offset)
        .unwrap_or(if offset.local_minus_utc() < 0 {
            NaiveDateTime::MIN
        } else {
            NaiveDateTime::MAX
        })
}

/// [`IcalTime::to_utc`] through [`resolve`], so that no value can panic.
fn instant_of(t: &IcalTime, owner_tz: Tz) -> DateTime<Utc> {
    match *t {
        IcalTime::Utc(u) => u,
        other => resolve(other.naive_local(), other.zone(owner_tz)),
    }
}

fn add_days(t: NaiveDateTime, days: i64) -> Option<NaiveDateTime> {
    if days >= 0 {
        t.checked_add_days(Days::new(days.unsigned_abs()))
    } else {
        t.checked_sub_days(Days::new(days.unsigned_abs()))
    }
}

fn add_seconds(t: DateTime<Utc>, seconds: i64) -> Option<DateTime<Utc>> {
    t.checked_add_signed(TimeDelta::try_seconds(seconds)?)
}

fn naive_add(t: NaiveDateTime, d: TimeDelta) -> NaiveDateTime {
    t.checked_add_signed(d).unwrap_or(if d < TimeDelta::zero() {
        NaiveDateTime::MIN
    } else {
        NaiveDateTime::MAX
    })
}

fn naive_sub(t: NaiveDateTime, d: TimeDelta) -> NaiveDateTime {
    t.checked_sub_signed(d).unwrap_or(if d < TimeDelta::zero() {
        NaiveDateTime::MAX
    } else {
        NaiveDateTime::MIN
    })
}

// ---------------------------------------------------------------------------
// The frame a series is computed in

/// The zone a series' slots are laid out in: DTSTART's own zone, UTC for a
/// `Z` start, the owner's for DATE and floating starts.
#[derive(Debug, Clone, Copy)]
struct Frame {
    zone: Tz,
}

impl Frame {
    /// The wall-clock reading of `t` in this frame. A floating or DATE value
    /// attached to a series (RDATE, EXDATE, RECURRENCE-ID) is read as the
    /// series' own wall clock, as recurring-ical-events reads it; for a
    /// floating or all-day series that is the owner's zone anyway.
    fn local_of(&self, t: &IcalTime) -> NaiveDateTime {
        match *t {
            IcalTime::Date(_) | IcalTime::Floating(_) => t.naive_local(),
            IcalTime::Utc(u) => self.local_at(u),
            IcalTime::Zoned { local, tz } if tz == self.zone => local,
            IcalTime::Zoned { local, tz } => self.local_at(resolve(local, tz)),
        }
    }

    /// The instant `t` denotes when read as part of this series (see [`Self::local_of`]).
    fn instant_of(&self, t: &IcalTime) -> DateTime<Utc> {
        match *t {
            IcalTime::Utc(u) => u,
            IcalTime::Zoned { local, tz } => resolve(local, tz),
            IcalTime::Date(_) | IcalTime::Floating(_) => self.instant(t.naive_local()),
        }
    }

    fn local_at(&self, instant: DateTime<Utc>) -> NaiveDateTime {
        local_in(instant, self.zone)
    }

    fn instant(&self, local: NaiveDateTime) -> DateTime<Utc> {
        resolve(local, self.zone)
    }
}

// ---------------------------------------------------------------------------
// Rules

/// A parsed `UNTIL`, normalised the way RFC 5545 §3.3.10 intends it. The rule
/// crate insists on UNTIL being UTC when DTSTART is zoned; real calendars
/// also write it floating or as a DATE, so this module applies it itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Until {
    /// Instances starting at or before this instant.
    Instant(DateTime<Utc>),
    /// Instances whose local start date (in the series' zone) is on or before this day.
    Date(NaiveDate),
}

impl Until {
    fn allows(self, local: NaiveDateTime, instant: DateTime<Utc>) -> bool {
        match self {
            Until::Instant(u) => instant <= u,
            Until::Date(d) => local.date() <= d,
        }
    }

    /// A wall-clock time after which no allowed instance can start (with a
    /// day of slack for an ambiguous hour).
    fn local_upper_bound(self, frame: &Frame) -> NaiveDateTime {
        match self {
            Until::Instant(u) => naive_add(frame.local_at(u), TimeDelta::days(1)),
            Until::Date(d) => d
                .succ_opt()
                .map(|n| n.and_time(NaiveTime::MIN))
                .unwrap_or(NaiveDateTime::MAX),
        }
    }
}

#[derive(Debug, Clone)]
struct ParsedRule {
    /// The rule without UNTIL, its BYxxx defaults filled in from DTSTART.
    rule: RRule<Unvalidated>,
    until: Option<Until>,
    count: Option<u32>,
    /// The rule can produce nothing (e.g. February 30th); see [`never_matches`].
    never: bool,
    /// The rule as written, for error messages.
    raw: String,
    freq: Frequency,
    interval: u16,
    week_start: Weekday,
}

const RULE_PARTS: &[&str] = &[
    "FREQ",
    "COUNT",
    "INTERVAL",
    "BYSECOND",
    "BYMINUTE",
    "BYHOUR",
    "BYDAY",
    "BYMONTHDAY",
    "BYYEARDAY",
    "BYWEEKNO",
    "BYMONTH",
    "BYSETPOS",
    "WKST",
];

fn bad_rule(uid: &str, raw: &str, reason: impl Into<String>) -> RecurrenceError {
    // Keep error messages short even for a hostile, megabyte-long RRULE.
    let rule: String = raw.chars().take(200).collect();
    RecurrenceError::BadRule {
        uid: uid.chars().take(200).collect(),
        rule,
        reason: reason.into(),
    }
}

fn parse_rule(
    raw: &str,
    uid: &str,
    frame: &Frame,
    date_based: bool,
) -> Result<ParsedRule, RecurrenceError> {
    let mut text = raw.trim();
    if text
        .get(..6)
        .is_some_and(|p| p.eq_ignore_ascii_case("RRULE:"))
    {
        text = text.get(6..).unwrap_or_default();
    }
    let mut kept = Vec::new();
    let mut until_raw = None;
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| bad_rule(uid, raw, format!("rule part {part:?} has no '='")))?;
        let key = key.trim().to_ascii_uppercase();
        let value = value.trim();
        match key.as_str() {
            "UNTIL" => until_raw = Some(value),
            // recurring-ical-events drops a negative COUNT (its issue 128):
            // the rule is then unbounded, which is what its author meant.
            "COUNT" if value.starts_with('-') => {}
            k if RULE_PARTS.contains(&k) => {
                kept.push(format!("{key}={}", value.to_ascii_uppercase()));
            }
            // RFC 5545 §3.3.10: x-name rule parts are ignored by those who
            // do not understand them; BYEASTER is such an extension.
            _ => {}
        }
    }
    let rule: RRule<Unvalidated> = kept
        .join(";")
        .parse()
        .map_err(|e: rrule::RRuleError| bad_rule(uid, raw, e.to_string()))?;
    let until = until_raw
        .map(|v| parse_until(v, frame, date_based))
        .transpose()
        .map_err(|reason| bad_rule(uid, raw, reason))?;
    Ok(ParsedRule {
        count: rule.get_count(),
        never: never_matches(&rule),
        raw: raw.chars().take(200).collect(),
        freq: rule.get_freq(),
        interval: rule.get_interval(),
        week_start: rule.get_week_start(),
        rule,
        until,
    })
}

/// True when BYMONTHDAY names no day that exists in any month the rule
/// allows, e.g. `BYMONTH=2;BYMONTHDAY=30`. BYxxx parts only ever narrow or
/// expand within their own unit, so such a rule never produces anything;
/// spotting it here spares the rule crate's search, which only gives up
/// after 100,000 empty periods (or at year 10,000).
fn never_matches(rule: &RRule<Unvalidated>) -> bool {
    const LONGEST: [i8; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let days = rule.get_by_month_day();
    if days.is_empty() {
        return false;
    }
    let months: Vec<u8> = match rule.get_by_month() {
        [] => (1..=12).collect(),
        m => m.to_vec(),
    };
    !months.iter().any(|&m| {
        let longest = LONGEST
            .get(usize::from(m).wrapping_sub(1))
            .copied()
            .unwrap_or(31);
        days.iter()
            .any(|&d| d != 0 && d.unsigned_abs() <= longest.unsigned_abs())
    })
}

/// Reads an UNTIL value in whatever form it was written (RFC 5545 §3.3.10:
/// UNTIL is inclusive, and has the value type of DTSTART).
fn parse_until(value: &str, frame: &Frame, date_based: bool) -> Result<Until, String> {
    let (digits, is_utc) = match value.strip_suffix(['Z', 'z']) {
        Some(rest) => (rest, true),
        None => (value, false),
    };
    let bad = || format!("UNTIL={value} is neither a DATE nor a DATE-TIME");
    if digits.len() == 8 {
        let d = NaiveDate::parse_from_str(digits, "%Y%m%d").map_err(|_| bad())?;
        // A DATE UNTIL on a DATE-TIME series means "through the end of that
        // day" in the series' zone.
        return Ok(Until::Date(d));
    }
    let t = NaiveDateTime::parse_from_str(&digits.to_ascii_uppercase(), "%Y%m%dT%H%M%S")
        .map_err(|_| bad())?;
    if date_based {
        // An all-day series bounded by a DATE-TIME (some clients write
        // `UNTIL=…T000000Z`) is bounded by that date as written, as
        // recurring-ical-events reads it.
        return Ok(Until::Date(t.date()));
    }
    Ok(if is_utc {
        Until::Instant(t.and_utc())
    } else {
        Until::Instant(frame.instant(t))
    })
}

/// Wall-clock times dressed as UTC, so the rule crate does calendar
/// arithmetic without ever touching a real zone (and never the process's
/// local zone).
fn as_rule_time(t: NaiveDateTime) -> DateTime<rrule::Tz> {
    rrule::Tz::UTC.from_utc_datetime(&t)
}

/// A later DTSTART on the rule's own lattice, at or before `lo`, from which
/// iteration gives exactly the instances the original DTSTART gives from
/// `lo` on. Used so that a window years after DTSTART costs only the
/// instances near it. The rule must already carry the BYxxx defaults derived
/// from the original DTSTART (the rule crate fills them in on validation),
/// and must have no COUNT (which counts from the original start).
fn skip_ahead(
    freq: Frequency,
    interval: u16,
    week_start: Weekday,
    start: NaiveDateTime,
    lo: NaiveDateTime,
) -> NaiveDateTime {
    if lo <= start {
        return start;
    }
    let n = i64::from(interval.max(1));
    let periods = |elapsed: i64| (elapsed - 1).max(0) / n * n;
    let shifted =
        match freq {
            Frequency::Yearly => {
                let k = periods(i64::from(lo.year()) - i64::from(start.year()));
                i32::try_from(k)
                    .ok()
                    .and_then(|k| start.year().checked_add(k))
                    .and_then(|y| NaiveDate::from_ymd_opt(y, 1, 1))
                    .map(|d| d.and_time(NaiveTime::MIN))
            }
            Frequency::Monthly => {
                let months = (i64::from(lo.year()) - i64::from(start.year())) * 12
                    + i64::from(lo.month0())
                    - i64::from(start.month0());
                let k = periods(months);
                let first = start.date().with_day(1);
                u32::try_from(k)
                    .ok()
                    .and_then(|k| first?.checked_add_months(Months::new(k)))
                    .map(|d| d.and_time(NaiveTime::MIN))
            }
            Frequency::Weekly => {
                let back = (start.weekday().num_days_from_monday() + 7
                    - week_start.num_days_from_monday())
                    % 7;
                let week0 = start.date() - Days::new(u64::from(back));
                let k = periods((lo.date() - week0).num_days() / 7);
                u64::try_from(k * 7)
                    .ok()
                    .and_then(|d| week0.checked_add_days(Days::new(d)))
                    .map(|d| d.and_time(NaiveTime::MIN))
            }
            Frequency::Daily => {
                let k = periods((lo.date() - start.date()).num_days());
                u64::try_from(k)
                    .ok()
                    .and_then(|d| start.date().checked_add_days(Days::new(d)))
                    .map(|d| d.and_time(NaiveTime::MIN))
            }
            Frequency::Hourly => {
                TimeDelta::try_hours(periods((lo - start).num_hours())).map(|d| naive_add(start, d))
            }
            Frequency::Minutely => TimeDelta::try_minutes(periods((lo - start).num_minutes()))
                .map(|d| naive_add(start, d)),
            Frequency::Secondly => TimeDelta::try_seconds(periods((lo - start).num_seconds()))
                .map(|d| naive_add(start, d)),
        };
    match shifted {
        Some(s) if s >= start && s <= lo => s,
        _ => start,
    }
}

/// The wall-clock starts `rule` generates in `[lo, hi]`, honouring COUNT and
/// UNTIL (DTSTART itself is added by the caller).
fn rule_starts(
    rule: &ParsedRule,
    dtstart: NaiveDateTime,
    lo: NaiveDateTime,
    hi: NaiveDateTime,
    frame: &Frame,
    uid: &str,
) -> Result<Vec<NaiveDateTime>, RecurrenceError> {
    let stop = match rule.until {
        Some(u) => hi.min(u.local_upper_bound(frame)),
        None => hi,
    };
    if rule.never || stop < dtstart || stop < lo {
        return Ok(Vec::new());
    }
    // The crate gets a coarse UNTIL so it stops on its own; the exact,
    // zone-aware UNTIL is applied below.
    let validated = rule
        .rule
        .clone()
        .until(as_rule_time(stop))
        .validate(as_rule_time(dtstart))
        .map_err(|e| bad_rule(uid, &rule.raw, e.to_string()))?;
    let begin = match rule.count {
        Some(_) => dtstart,
        None => skip_ahead(rule.freq, rule.interval, rule.week_start, dtstart, lo),
    };
    // `limit` arms the crate's guard against rules that never match (e.g.
    // Feb 30): iteration then ends instead of spinning.
    let set = RRuleSet::new(as_rule_time(begin)).rrule(validated).limit();
    // RFC 5545 §3.8.5.3: DTSTART always counts as the first occurrence, so a
    // DTSTART the rule does not itself produce uses up one of COUNT.
    let mut remaining = rule.count.map(i64::from);
    let mut first = true;
    let mut out = Vec::new();
    for t in &set {
        let local = t.naive_utc();
        if let Some(r) = remaining.as_mut() {
            if first && local != dtstart {
                *r -= 1;
            }
            if *r <= 0 {
                break;
            }
            *r -= 1;
        }
        first = false;
        if local > stop {
            break;
        }
        if local >= lo {
            if out.len() >= MAX_INSTANCES_PER_SERIES {
                return Err(RecurrenceError::TooManyInstances {
                    uid: uid.chars().take(200).collect(),
                    limit: MAX_INSTANCES_PER_SERIES,
                });
            }
            out.push(local);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// The plan for one series

/// One slot of the master's recurrence set, before overrides are applied.
#[derive(Debug, Clone, Copy)]
struct Slot {
    local: NaiveDateTime,
    start: DateTime<Utc>,
    /// The exact length given by an RDATE PERIOD.
    period: Option<TimeDelta>,
}

#[derive(Debug)]
struct MasterPlan<'a> {
    comp: &'a EventComponent,
    frame: Frame,
    dtstart: NaiveDateTime,
    span: Span,
    rules: Vec<ParsedRule>,
    include_dtstart: bool,
    rdates: Vec<Slot>,
    ex_instants: HashSet<DateTime<Utc>>,
    ex_dates: HashSet<NaiveDate>,
    details: Arc<InstanceDetails>,
}

#[derive(Debug)]
struct OverridePlan<'a> {
    comp: &'a EventComponent,
    rid: DateTime<Utc>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    span: Span,
    this_and_future: bool,
    /// For THISANDFUTURE: how far later slots move, in wall-clock time of the series' frame.
    shift: TimeDelta,
    details: Arc<InstanceDetails>,
}

#[derive(Debug)]
struct SeriesPlan<'a> {
    master: Option<MasterPlan<'a>>,
    /// By RECURRENCE-ID instant; the highest SEQUENCE wins among duplicates.
    overrides: BTreeMap<DateTime<Utc>, OverridePlan<'a>>,
}

fn details_of(c: &EventComponent) -> Arc<InstanceDetails> {
    Arc::new(InstanceDetails {
        uid: c.uid.clone(),
        summary: c.summary.clone(),
        location: c.location.clone(),
        class: c.class,
    })
}

impl<'a> SeriesPlan<'a> {
    fn new(series: &'a EventSeries, owner_tz: Tz) -> Result<Self, RecurrenceError> {
        let master = series
            .master
            .as_ref()
            .map(|m| MasterPlan::new(m, &series.uid, owner_tz))
            .transpose()?;
        let frame = master.as_ref().map(|m| m.frame);
        let mut overrides: BTreeMap<DateTime<Utc>, OverridePlan<'a>> = BTreeMap::new();
        for c in &series.overrides {
            // A component without RECURRENCE-ID among the overrides is not
            // an override; the importer is expected to have made it the master.
            let Some(rid) = c.recurrence_id else { continue };
            let rid_instant = match frame {
                Some(f) => f.instant_of(&rid.time),
                None => instant_of(&rid.time, owner_tz),
            };
            if overrides
                .get(&rid_instant)
                .is_some_and(|o| o.comp.sequence > c.sequence)
            {
                continue;
            }
            let own = Frame {
                zone: c.start.zone(owner_tz),
            };
            let start = instant_of(&c.start, owner_tz);
            let span = Span::of(c, owner_tz);
            let end = span.end_from(own.local_of(&c.start), start, own.zone);
            let shift = match frame {
                Some(f) => f.local_of(&c.start) - f.local_of(&rid.time),
                None => start - rid_instant,
            };
            overrides.insert(
                rid_instant,
                OverridePlan {
                    comp: c,
                    rid: rid_instant,
                    start,
                    end,
                    span,
                    this_and_future: rid.this_and_future,
                    shift,
                    details: details_of(c),
                },
            );
        }
        Ok(SeriesPlan { master, overrides })
    }

    fn expand(&self, window: TimeRange) -> Result<Vec<Instance>, RecurrenceError> {
        let mut out = Vec::new();
        let excluded = |rid: DateTime<Utc>, local: NaiveDateTime| {
            self.master
                .as_ref()
                .is_some_and(|m| m.ex_instants.contains(&rid) || m.ex_dates.contains(&local.date()))
        };
        // Overrides are instances in their own right (RFC 5545 §3.8.4.4 lets
        // a RECURRENCE-ID name a slot the rule does not produce), so they are
        // scanned directly: a move into or out of the window needs no search.
        for o in self.overrides.values() {
            if o.comp.status == EventStatus::Cancelled {
                continue;
            }
            let rid_local = match &self.master {
                Some(m) => m.frame.local_at(o.rid),
                None => o.rid.naive_utc(),
            };
            if excluded(o.rid, rid_local) {
                continue;
            }
            let range = TimeRange {
                start: o.start,
                end: o.end,
            };
            if overlaps_window(&range, &window) {
                out.push(Instance {
                    range,
                    status: o.comp.status,
                    transparency: o.comp.transparency,
                    all_day: o.comp.start.is_date(),
                    recurrence_id: o.rid,
                    details: Arc::clone(&o.details),
                });
            }
        }
        let Some(m) = &self.master else {
            return Ok(out);
        };
        if m.comp.status == EventStatus::Cancelled {
            return Ok(out);
        }
        let futures: Vec<&OverridePlan<'_>> = self
            .overrides
            .values()
            .filter(|o| o.this_and_future)
            .collect();

        // Widen the slot search so that instances starting before the window
        // but lasting into it, and slots moved into it by THISANDFUTURE, are found.
        let mut longest = m.span.upper_bound();
        let mut max_shift = TimeDelta::zero();
        let mut min_shift = TimeDelta::zero();
        for o in &futures {
            longest = longest.max(o.span.upper_bound());
            max_shift = max_shift.max(o.shift);
            min_shift = min_shift.min(o.shift);
        }
        for s in &m.rdates {
            if let Some(p) = s.period {
                longest = longest.max(p);
            }
        }
        let slack = TimeDelta::days(1);
        let lo = naive_sub(
            naive_sub(
                naive_sub(m.frame.local_at(window.start), longest),
                max_shift,
            ),
            slack,
        );
        let hi = naive_add(naive_sub(m.frame.local_at(window.end), min_shift), slack);

        let mut slots: BTreeMap<DateTime<Utc>, Slot> = BTreeMap::new();
        let add = |slots: &mut BTreeMap<DateTime<Utc>, Slot>,
                   local: NaiveDateTime,
                   period: Option<TimeDelta>| {
            let start = m.frame.instant(local);
            slots.entry(start).or_insert(Slot {
                local,
                start,
                period,
            });
        };
        // RDATE PERIODs come first so their explicit end wins over a rule
        // producing the same slot.
        for s in &m.rdates {
            if s.local >= lo && s.local <= hi {
                add(&mut slots, s.local, s.period);
            }
        }
        if m.include_dtstart && m.dtstart >= lo && m.dtstart <= hi {
            add(&mut slots, m.dtstart, None);
        }
        for rule in &m.rules {
            let starts = rule_starts(rule, m.dtstart, lo, hi, &m.frame, &m.comp.uid)?;
            for local in starts {
                let instant = m.frame.instant(local);
                if rule.until.is_none_or(|u| u.allows(local, instant)) {
                    add(&mut slots, local, None);
                }
            }
            if slots.len() > MAX_INSTANCES_PER_SERIES {
                return Err(RecurrenceError::TooManyInstances {
                    uid: m.comp.uid.chars().take(200).collect(),
                    limit: MAX_INSTANCES_PER_SERIES,
                });
            }
        }

        for slot in slots.values() {
            if excluded(slot.start, slot.local) || self.overrides.contains_key(&slot.start) {
                continue;
            }
            // The latest THISANDFUTURE override strictly before this slot
            // governs it (its own slot is replaced like any override).
            let governing = futures.iter().rev().find(|o| o.rid < slot.start);
            let instance = match governing {
                Some(o) if o.comp.status == EventStatus::Cancelled => continue,
                Some(o) => {
                    let local = naive_add(slot.local, o.shift);
                    let start = m.frame.instant(local);
                    let end = match slot.period {
                        Some(p) => start.checked_add_signed(p).unwrap_or(start),
                        None => o.span.end_from(local, start, m.frame.zone),
                    };
                    Instance {
                        range: TimeRange { start, end },
                        status: o.comp.status,
                        transparency: o.comp.transparency,
                        all_day: o.comp.start.is_date(),
                        recurrence_id: slot.start,
                        details: Arc::clone(&o.details),
                    }
                }
                None => {
                    let end = match slot.period {
                        Some(p) => slot.start.checked_add_signed(p).unwrap_or(slot.start),
                        None => m.span.end_from(slot.local, slot.start, m.frame.zone),
                    };
                    Instance {
                        range: TimeRange {
                            start: slot.start,
                            end,
                        },
                        status: m.comp.status,
                        transparency: m.comp.transparency,
                        all_day: m.comp.start.is_date(),
                        recurrence_id: slot.start,
                        details: Arc::clone(&m.details),
                    }
                }
            };
            if overlaps_window(&instance.range, &window) {
                out.push(instance);
            }
        }
        Ok(out)
    }
}

impl<'a> MasterPlan<'a> {
    fn new(comp: &'a EventComponent, uid: &str, owner_tz: Tz) -> Result<Self, RecurrenceError> {
        let frame = Frame {
            zone: comp.start.zone(owner_tz),
        };
        let date_based = comp.start.is_date();
        let dtstart = comp.start.naive_local();
        let rules = comp
            .rrules
            .iter()
            .map(|raw| parse_rule(raw, uid, &frame, date_based))
            .collect::<Result<Vec<_>, _>>()?;
        // Fail on a broken rule now, whatever window is asked for later.
        for (rule, raw) in rules.iter().zip(&comp.rrules) {
            rule.rule
                .clone()
                .validate(as_rule_time(dtstart))
                .map_err(|e| bad_rule(uid, raw, e.to_string()))?;
        }
        // DTSTART is the first instance (RFC 5545 §3.8.5.3) unless every rule
        // ends before it; recurring-ical-events drops it in that case too.
        let start_instant = frame.instant(dtstart);
        let include_dtstart = rules.is_empty()
            || rules
                .iter()
                .any(|r| r.until.is_none_or(|u| u.allows(dtstart, start_instant)));
        let rdates = comp
            .rdates
            .iter()
            .map(|r| {
                let local = frame.local_of(&r.start);
                let start = frame.instant(local);
                let period = r
                    .end
                    .map(|e| (frame.instant_of(&e) - start).max(TimeDelta::zero()));
                Slot {
                    local,
                    start,
                    period,
                }
            })
            .collect();
        let mut ex_instants = HashSet::new();
        let mut ex_dates = HashSet::new();
        for ex in &comp.exdates {
            match ex {
                // A DATE EXDATE removes every slot on that local day; on an
                // all-day series that is exactly the slot of that date.
                IcalTime::Date(d) => {
                    ex_dates.insert(*d);
                }
                other => {
                    ex_instants.insert(frame.instant_of(other));
                }
            }
        }
        Ok(MasterPlan {
            comp,
            frame,
            dtstart,
            span: Span::of(comp, owner_tz),
            rules,
            include_dtstart,
            rdates,
            ex_instants,
            ex_dates,
            details: details_of(comp),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Classification, IcalDuration, RDate, RecurrenceId, Transparency};
    use chrono::NaiveDate;
    use chrono_tz::America::New_York;
    use chrono_tz::Europe::Berlin;

    fn nd(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid test date")
    }

    fn ndt(y: i32, m: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
        nd(y, m, d).and_hms_opt(h, mi, 0).expect("valid test time")
    }

    fn utc(y: i32, m: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        ndt(y, m, d, h, mi).and_utc()
    }

    fn zoned(tz: Tz, y: i32, m: u32, d: u32, h: u32, mi: u32) -> IcalTime {
        IcalTime::Zoned {
            local: ndt(y, m, d, h, mi),
            tz,
        }
    }

    fn win(a: DateTime<Utc>, b: DateTime<Utc>) -> TimeRange {
        TimeRange::new(a, b).expect("ordered test window")
    }

    fn event(start: IcalTime, end: EventEnd) -> EventComponent {
        EventComponent {
            uid: "ev@test".into(),
            recurrence_id: None,
            start,
            end,
            rrules: Vec::new(),
            rdates: Vec::new(),
            exdates: Vec::new(),
            status: EventStatus::Confirmed,
            transparency: Transparency::Opaque,
            class: Classification::Public,
            sequence: 0,
            summary: Some("Master".into()),
            location: None,
        }
    }

    fn hour_long(start: IcalTime) -> EventComponent {
        event(
            start,
            EventEnd::Duration(IcalDuration {
                days: 0,
                seconds: 3600,
            }),
        )
    }

    fn with_rule(mut c: EventComponent, rule: &str) -> EventComponent {
        c.rrules.push(rule.into());
        c
    }

    fn override_of(rid: IcalTime, start: IcalTime, secs: i64) -> EventComponent {
        let mut c = event(
            start,
            EventEnd::Duration(IcalDuration {
                days: 0,
                seconds: secs,
            }),
        );
        c.recurrence_id = Some(RecurrenceId {
            time: rid,
            this_and_future: false,
        });
        c.summary = Some("Override".into());
        c
    }

    fn series(master: Option<EventComponent>, overrides: Vec<EventComponent>) -> EventSeries {
        EventSeries {
            uid: "ev@test".into(),
            master,
            overrides,
        }
    }

    fn expand(s: &EventSeries, w: TimeRange, tz: Tz) -> Vec<Instance> {
        expand_series(s, w, tz).expect("expandable test series")
    }

    /// Starts as local wall-clock strings, for readable assertions.
    fn local_starts(instances: &[Instance], tz: Tz) -> Vec<String> {
        instances
            .iter()
            .map(|i| {
                i.range
                    .start
                    .with_timezone(&tz)
                    .format("%Y-%m-%d %H:%M")
                    .to_string()
            })
            .collect()
    }

    fn year_2026() -> TimeRange {
        win(utc(2026, 1, 1, 0, 0), utc(2027, 1, 1, 0, 0))
    }

    #[test]
    fn weekly_berlin_meeting_stays_at_ten_local_across_dst() {
        let m = with_rule(hour_long(zoned(Berlin, 2026, 3, 16, 10, 0)), "FREQ=WEEKLY");
        let s = series(Some(m), vec![]);
        let got = expand(
            &s,
            win(utc(2026, 3, 16, 0, 0), utc(2026, 4, 6, 0, 0)),
            Berlin,
        );
        assert_eq!(
            local_starts(&got, Berlin),
            ["2026-03-16 10:00", "2026-03-23 10:00", "2026-03-30 10:00"]
        );
        // 09:00Z before the change (CET), 08:00Z after it (CEST).
        assert_eq!(got[1].range.start, utc(2026, 3, 23, 9, 0));
        assert_eq!(got[2].range.start, utc(2026, 3, 30, 8, 0));
        let autumn = expand(
            &s,
            win(utc(2026, 10, 19, 0, 0), utc(2026, 11, 3, 0, 0)),
            Berlin,
        );
        assert_eq!(
            local_starts(&autumn, Berlin),
            ["2026-10-19 10:00", "2026-10-26 10:00", "2026-11-02 10:00"]
        );
        assert_eq!(autumn[0].range.start, utc(2026, 10, 19, 8, 0));
        assert_eq!(autumn[1].range.start, utc(2026, 10, 26, 9, 0));
    }

    #[test]
    fn new_york_daily_standup_keeps_local_time_in_both_directions() {
        let m = with_rule(hour_long(zoned(New_York, 2026, 3, 6, 9, 30)), "FREQ=DAILY");
        let s = series(Some(m), vec![]);
        let spring = expand(
            &s,
            win(utc(2026, 3, 7, 0, 0), utc(2026, 3, 10, 0, 0)),
            Berlin,
        );
        assert_eq!(
            local_starts(&spring, New_York),
            ["2026-03-07 09:30", "2026-03-08 09:30", "2026-03-09 09:30"]
        );
        assert_eq!(spring[0].range.start, utc(2026, 3, 7, 14, 30));
        assert_eq!(spring[1].range.start, utc(2026, 3, 8, 13, 30));
        let autumn = expand(
            &s,
            win(utc(2026, 10, 31, 0, 0), utc(2026, 11, 3, 0, 0)),
            Berlin,
        );
        assert_eq!(
            local_starts(&autumn, New_York),
            ["2026-10-31 09:30", "2026-11-01 09:30", "2026-11-02 09:30"]
        );
        assert_eq!(autumn[2].range.start, utc(2026, 11, 2, 14, 30));
    }

    #[test]
    fn a_start_in_the_spring_gap_moves_forward_by_the_gap() {
        let m = with_rule(
            hour_long(zoned(Berlin, 2026, 3, 28, 2, 30)),
            "FREQ=DAILY;COUNT=3",
        );
        let got = expand(&series(Some(m), vec![]), year_2026(), Berlin);
        assert_eq!(
            local_starts(&got, Berlin),
            ["2026-03-28 02:30", "2026-03-29 03:30", "2026-03-30 02:30"]
        );
    }

    #[test]
    fn dtend_gives_every_instance_the_same_exact_duration_across_dst() {
        let start = zoned(Berlin, 2026, 3, 28, 0, 30);
        let m = with_rule(
            event(start, EventEnd::End(zoned(Berlin, 2026, 3, 28, 3, 30))),
            "FREQ=DAILY;COUNT=2",
        );
        let got = expand(&series(Some(m), vec![]), year_2026(), Berlin);
        assert_eq!(got[1].range.duration(), TimeDelta::hours(3));
        // 00:30 CET + 3 h crosses the gap and ends at 04:30 CEST.
        assert_eq!(got[1].range.end, utc(2026, 3, 29, 2, 30));
    }

    #[test]
    fn duration_days_are_nominal_across_dst() {
        let m = event(
            zoned(Berlin, 2026, 3, 28, 12, 0),
            EventEnd::Duration(IcalDuration {
                days: 1,
                seconds: 1800,
            }),
        );
        let got = expand(&series(Some(m), vec![]), year_2026(), Berlin);
        // Sat 12:00 CET to Sun 12:30 CEST: one calendar day (23 h) plus 30 exact minutes.
        assert_eq!(got[0].range.end, utc(2026, 3, 29, 10, 30));
        assert_eq!(got[0].range.duration(), TimeDelta::minutes(23 * 60 + 30));
    }

    #[test]
    fn multi_day_all_day_event_spans_whole_local_days_across_dst() {
        let m = event(
            IcalTime::Date(nd(2026, 3, 28)),
            EventEnd::End(IcalTime::Date(nd(2026, 3, 30))),
        );
        let got = expand(&series(Some(m), vec![]), year_2026(), Berlin);
        assert_eq!(got.len(), 1);
        assert!(got[0].all_day);
        assert_eq!(got[0].range.start, utc(2026, 3, 27, 23, 0));
        assert_eq!(got[0].range.end, utc(2026, 3, 29, 22, 0));
    }

    #[test]
    fn date_and_floating_values_are_read_in_the_owners_zone() {
        let day = event(IcalTime::Date(nd(2026, 5, 4)), EventEnd::Unspecified);
        let got = expand(&series(Some(day), vec![]), year_2026(), New_York);
        assert_eq!(got[0].range.start, utc(2026, 5, 4, 4, 0));
        assert_eq!(got[0].range.duration(), TimeDelta::days(1));
        let floating = with_rule(
            hour_long(IcalTime::Floating(ndt(2026, 3, 6, 9, 0))),
            "FREQ=DAILY;COUNT=3",
        );
        let got = expand(&series(Some(floating), vec![]), year_2026(), New_York);
        assert_eq!(
            local_starts(&got, New_York),
            ["2026-03-06 09:00", "2026-03-07 09:00", "2026-03-08 09:00"]
        );
        assert_eq!(got[2].range.start, utc(2026, 3, 8, 13, 0));
    }

    #[test]
    fn missing_end_means_one_day_for_dates_and_zero_length_for_times() {
        let m = event(zoned(Berlin, 2026, 6, 1, 10, 0), EventEnd::Unspecified);
        let s = series(Some(m), vec![]);
        let at = utc(2026, 6, 1, 8, 0);
        let got = expand(&s, win(at, utc(2026, 6, 2, 0, 0)), Berlin);
        assert_eq!(got.len(), 1);
        assert!(got[0].range.is_empty());
        assert_eq!(got[0].busy_status(), None);
        // A zero-length instance belongs to the window that starts at it, not the one ending there.
        assert!(expand(&s, win(utc(2026, 6, 1, 0, 0), at), Berlin).is_empty());
    }

    #[test]
    fn every_frequency_expands() {
        let cases = [
            (
                "FREQ=YEARLY;COUNT=3",
                vec!["2026-02-10 10:00", "2027-02-10 10:00", "2028-02-10 10:00"],
            ),
            (
                "FREQ=MONTHLY;COUNT=3",
                vec!["2026-02-10 10:00", "2026-03-10 10:00", "2026-04-10 10:00"],
            ),
            (
                "FREQ=WEEKLY;INTERVAL=2;COUNT=3",
                vec!["2026-02-10 10:00", "2026-02-24 10:00", "2026-03-10 10:00"],
            ),
            (
                "FREQ=DAILY;INTERVAL=3;COUNT=3",
                vec!["2026-02-10 10:00", "2026-02-13 10:00", "2026-02-16 10:00"],
            ),
            (
                "FREQ=HOURLY;INTERVAL=5;COUNT=3",
                vec!["2026-02-10 10:00", "2026-02-10 15:00", "2026-02-10 20:00"],
            ),
            (
                "FREQ=MINUTELY;INTERVAL=20;COUNT=3",
                vec!["2026-02-10 10:00", "2026-02-10 10:20", "2026-02-10 10:40"],
            ),
            (
                "FREQ=SECONDLY;INTERVAL=60;COUNT=2",
                vec!["2026-02-10 10:00", "2026-02-10 10:01"],
            ),
        ];
        let wide = win(utc(2026, 1, 1, 0, 0), utc(2030, 1, 1, 0, 0));
        for (rule, want) in cases {
            let m = with_rule(
                event(zoned(Berlin, 2026, 2, 10, 10, 0), EventEnd::Unspecified),
                rule,
            );
            let got = expand(&series(Some(m), vec![]), wide, Berlin);
            assert_eq!(local_starts(&got, Berlin), want, "{rule}");
        }
    }

    #[test]
    fn byday_ordinals_pick_the_second_tuesday_and_last_friday() {
        let m = with_rule(
            hour_long(zoned(Berlin, 2026, 1, 13, 10, 0)),
            "FREQ=MONTHLY;BYDAY=2TU;COUNT=3",
        );
        let got = expand(&series(Some(m), vec![]), year_2026(), Berlin);
        assert_eq!(
            local_starts(&got, Berlin),
            ["2026-01-13 10:00", "2026-02-10 10:00", "2026-03-10 10:00"]
        );
        let m = with_rule(
            hour_long(zoned(Berlin, 2026, 1, 30, 16, 0)),
            "FREQ=MONTHLY;BYDAY=-1FR;COUNT=3",
        );
        let got = expand(&series(Some(m), vec![]), year_2026(), Berlin);
        assert_eq!(
            local_starts(&got, Berlin),
            ["2026-01-30 16:00", "2026-02-27 16:00", "2026-03-27 16:00"]
        );
    }

    #[test]
    fn bysetpos_gives_the_last_workday_of_each_month() {
        let m = with_rule(
            hour_long(zoned(Berlin, 2026, 1, 30, 15, 0)),
            "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;COUNT=4",
        );
        let got = expand(&series(Some(m), vec![]), year_2026(), Berlin);
        assert_eq!(
            local_starts(&got, Berlin),
            [
                "2026-01-30 15:00",
                "2026-02-27 15:00",
                "2026-03-31 15:00",
                "2026-04-30 15:00"
            ]
        );
    }

    #[test]
    fn negative_bymonthday_counts_from_the_month_end() {
        let m = with_rule(
            hour_long(IcalTime::Floating(ndt(2026, 1, 31, 9, 0))),
            "FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=3",
        );
        let got = expand(&series(Some(m), vec![]), year_2026(), Berlin);
        assert_eq!(
            local_starts(&got, Berlin),
            ["2026-01-31 09:00", "2026-02-28 09:00", "2026-03-31 09:00"]
        );
    }

    #[test]
    fn byyearday_byweekno_and_bymonth_select_days_of_the_year() {
        let wide = win(utc(2026, 1, 1, 0, 0), utc(2029, 1, 1, 0, 0));
        let yd = with_rule(
            event(IcalTime::Date(nd(2026, 4, 10)), EventEnd::Unspecified),
            "FREQ=YEARLY;BYYEARDAY=100;COUNT=2",
        );
        let got = expand(&series(Some(yd), vec![]), wide, Berlin);
        assert_eq!(
            local_starts(&got, Berlin),
            ["2026-04-10 00:00", "2027-04-10 00:00"]
        );
        let wk = with_rule(
            event(IcalTime::Date(nd(2026, 5, 11)), EventEnd::Unspecified),
            "FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO;COUNT=2",
        );
        let got = expand(&series(Some(wk), vec![]), wide, Berlin);
        assert_eq!(
            local_starts(&got, Berlin),
            ["2026-05-11 00:00", "2027-05-17 00:00"]
        );
        let bm = with_rule(
            event(IcalTime::Date(nd(2026, 1, 1)), EventEnd::Unspecified),
            "FREQ=YEARLY;BYMONTH=1,7;BYMONTHDAY=1;COUNT=3",
        );
        let got = expand(&series(Some(bm), vec![]), wide, Berlin);
        assert_eq!(
            local_starts(&got, Berlin),
            ["2026-01-01 00:00", "2026-07-01 00:00", "2027-01-01 00:00"]
        );
    }

    #[test]
    fn wkst_changes_biweekly_expansion_as_in_rfc_5545() {
        let start = IcalTime::Floating(ndt(1997, 8, 5, 9, 0));
        let w = win(utc(1997, 1, 1, 0, 0), utc(1998, 1, 1, 0, 0));
        let mo = with_rule(
            hour_long(start),
            "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=MO",
        );
        let su = with_rule(
            hour_long(start),
            "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=SU",
        );
        let days = |c| -> Vec<String> {
            expand(&series(Some(c), vec![]), w, Tz::UTC)
                .iter()
                .map(|i| i.range.start.format("%m-%d").to_string())
                .collect()
        };
        assert_eq!(days(mo), ["08-05", "08-10", "08-19", "08-24"]);
        assert_eq!(days(su), ["08-05", "08-17", "08-19", "08-31"]);
    }

    #[test]
    fn until_is_inclusive_in_every_form() {
        let start = zoned(Berlin, 2026, 6, 1, 10, 0);
        let count = |rule: &str| {
            expand(
                &series(Some(with_rule(hour_long(start), rule)), vec![]),
                year_2026(),
                Berlin,
            )
            .len()
        };
        // 2026-06-03 10:00 CEST is 08:00Z.
        assert_eq!(count("FREQ=DAILY;UNTIL=20260603T080000Z"), 3);
        assert_eq!(count("FREQ=DAILY;UNTIL=20260603T075959Z"), 2);
        // A floating UNTIL on a zoned series is read in the series' zone.
        assert_eq!(count("FREQ=DAILY;UNTIL=20260603T100000"), 3);
        // A DATE UNTIL on a DATE-TIME series runs through the end of that day.
        assert_eq!(count("FREQ=DAILY;UNTIL=20260603"), 3);
        assert_eq!(count("FREQ=DAILY;COUNT=5"), 5);
    }

    #[test]
    fn all_day_series_with_datetime_until_is_bounded_by_that_date() {
        let m = with_rule(
            event(IcalTime::Date(nd(2026, 3, 2)), EventEnd::Unspecified),
            "FREQ=WEEKLY;UNTIL=20260316T000000Z",
        );
        let got = expand(&series(Some(m), vec![]), year_2026(), New_York);
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn dtstart_off_the_rule_is_the_first_instance_and_counts_towards_count() {
        // DTSTART is a Wednesday, the rule says Mondays.
        let m = with_rule(
            hour_long(zoned(Berlin, 2026, 6, 3, 10, 0)),
            "FREQ=WEEKLY;BYDAY=MO;COUNT=3",
        );
        let got = expand(&series(Some(m), vec![]), year_2026(), Berlin);
        assert_eq!(
            local_starts(&got, Berlin),
            ["2026-06-03 10:00", "2026-06-08 10:00", "2026-06-15 10:00"]
        );
    }

    #[test]
    fn until_before_dtstart_leaves_no_instances() {
        let m = with_rule(
            hour_long(zoned(Berlin, 2026, 6, 3, 10, 0)),
            "FREQ=DAILY;UNTIL=20260501T000000Z",
        );
        assert!(expand(&series(Some(m), vec![]), year_2026(), Berlin).is_empty());
    }

    #[test]
    fn rdate_adds_instances_and_a_period_keeps_its_own_end() {
        let mut m = with_rule(
            hour_long(zoned(Berlin, 2026, 6, 1, 10, 0)),
            "FREQ=DAILY;COUNT=2",
        );
        m.rdates = vec![
            RDate {
                start: zoned(Berlin, 2026, 6, 10, 15, 0),
                end: None,
            },
            RDate {
                start: IcalTime::Utc(utc(2026, 6, 11, 12, 0)),
                end: Some(IcalTime::Utc(utc(2026, 6, 11, 12, 15))),
            },
            // Same slot as a rule instance: one instance, not two.
            RDate {
                start: zoned(Berlin, 2026, 6, 2, 10, 0),
                end: None,
            },
        ];
        let got = expand(&series(Some(m), vec![]), year_2026(), Berlin);
        assert_eq!(
            local_starts(&got, Berlin),
            [
                "2026-06-01 10:00",
                "2026-06-02 10:00",
                "2026-06-10 15:00",
                "2026-06-11 14:00"
            ]
        );
        assert_eq!(got[2].range.duration(), TimeDelta::hours(1));
        assert_eq!(got[3].range.duration(), TimeDelta::minutes(15));
    }

    #[test]
    fn rdate_with_date_value_on_an_all_day_series() {
        let mut m = with_rule(
            event(IcalTime::Date(nd(2026, 6, 1)), EventEnd::Unspecified),
            "FREQ=YEARLY;COUNT=1",
        );
        m.rdates = vec![RDate {
            start: IcalTime::Date(nd(2026, 7, 4)),
            end: None,
        }];
        let got = expand(&series(Some(m), vec![]), year_2026(), Berlin);
        assert_eq!(
            local_starts(&got, Berlin),
            ["2026-06-01 00:00", "2026-07-04 00:00"]
        );
        assert!(got.iter().all(|i| i.all_day));
    }

    #[test]
    fn exdate_removes_by_instant_and_a_date_exdate_removes_that_local_day() {
        let mut m = with_rule(
            hour_long(zoned(Berlin, 2026, 6, 1, 10, 0)),
            "FREQ=DAILY;COUNT=4",
        );
        m.exdates = vec![
            IcalTime::Utc(utc(2026, 6, 2, 8, 0)),
            IcalTime::Date(nd(2026, 6, 4)),
        ];
        let got = expand(&series(Some(m), vec![]), year_2026(), Berlin);
        assert_eq!(
            local_starts(&got, Berlin),
            ["2026-06-01 10:00", "2026-06-03 10:00"]
        );
    }

    #[test]
    fn floating_exdate_and_recurrence_id_on_a_zoned_series_use_its_wall_clock() {
        let mut m = with_rule(
            hour_long(zoned(Berlin, 2026, 6, 1, 10, 0)),
            "FREQ=DAILY;COUNT=3",
        );
        m.exdates = vec![IcalTime::Floating(ndt(2026, 6, 2, 10, 0))];
        let o = override_of(
            IcalTime::Floating(ndt(2026, 6, 3, 10, 0)),
            zoned(Berlin, 2026, 6, 3, 15, 0),
            3600,
        );
        // The owner lives elsewhere: the floating values still mean Berlin wall-clock here.
        let got = expand(&series(Some(m), vec![o]), year_2026(), New_York);
        assert_eq!(
            local_starts(&got, Berlin),
            ["2026-06-01 10:00", "2026-06-03 15:00"]
        );
    }

    #[test]
    fn an_all_day_series_is_overridden_by_a_date_recurrence_id() {
        let m = with_rule(
            event(IcalTime::Date(nd(2026, 6, 1)), EventEnd::Unspecified),
            "FREQ=WEEKLY;COUNT=3",
        );
        let mut o = event(IcalTime::Date(nd(2026, 6, 9)), EventEnd::Unspecified);
        o.recurrence_id = Some(RecurrenceId {
            time: IcalTime::Date(nd(2026, 6, 8)),
            this_and_future: false,
        });
        let got = expand(&series(Some(m), vec![o]), year_2026(), New_York);
        assert_eq!(
            local_starts(&got, New_York),
            ["2026-06-01 00:00", "2026-06-09 00:00", "2026-06-15 00:00"]
        );
        assert!(got.iter().all(|i| i.all_day));
    }

    fn weekly_with_moved_and_cancelled() -> EventSeries {
        let m = with_rule(
            hour_long(zoned(Berlin, 2026, 6, 1, 10, 0)),
            "FREQ=WEEKLY;COUNT=4",
        );
        // Week 2 moves to Tuesday 14:00 for 30 minutes; week 3 is cancelled.
        let moved = override_of(
            zoned(Berlin, 2026, 6, 8, 10, 0),
            zoned(Berlin, 2026, 6, 9, 14, 0),
            1800,
        );
        let mut cancelled = override_of(
            zoned(Berlin, 2026, 6, 15, 10, 0),
            zoned(Berlin, 2026, 6, 15, 10, 0),
            3600,
        );
        cancelled.status = EventStatus::Cancelled;
        series(Some(m), vec![moved, cancelled])
    }

    #[test]
    fn weekly_series_with_one_occurrence_moved_and_one_cancelled() {
        let got = expand(&weekly_with_moved_and_cancelled(), year_2026(), Berlin);
        assert_eq!(
            local_starts(&got, Berlin),
            ["2026-06-01 10:00", "2026-06-09 14:00", "2026-06-22 10:00"]
        );
        assert_eq!(got[1].range.duration(), TimeDelta::minutes(30));
        assert_eq!(got[1].details.summary.as_deref(), Some("Override"));
        assert_eq!(got[1].recurrence_id, utc(2026, 6, 8, 8, 0));
        assert!(Arc::ptr_eq(&got[0].details, &got[2].details));
    }

    #[test]
    fn a_moved_occurrence_is_found_from_its_new_time_not_its_slot() {
        let s = weekly_with_moved_and_cancelled();
        // Window holds the new time (Tuesday) but not the original slot (Monday).
        let tue = expand(
            &s,
            win(utc(2026, 6, 9, 0, 0), utc(2026, 6, 10, 0, 0)),
            Berlin,
        );
        assert_eq!(local_starts(&tue, Berlin), ["2026-06-09 14:00"]);
        // Window holds the original slot only: nothing there any more.
        let mon = expand(
            &s,
            win(utc(2026, 6, 8, 0, 0), utc(2026, 6, 9, 0, 0)),
            Berlin,
        );
        assert!(mon.is_empty());
    }

    #[test]
    fn an_instance_starting_before_the_window_but_overlapping_it_is_included() {
        let m = with_rule(
            event(
                zoned(Berlin, 2026, 6, 1, 22, 0),
                EventEnd::End(zoned(Berlin, 2026, 6, 2, 2, 0)),
            ),
            "FREQ=DAILY",
        );
        let got = expand(
            &series(Some(m), vec![]),
            win(utc(2026, 6, 10, 22, 0), utc(2026, 6, 10, 23, 0)),
            Berlin,
        );
        assert_eq!(local_starts(&got, Berlin), ["2026-06-10 22:00"]);
    }

    fn this_and_future(rid: IcalTime, start: IcalTime, secs: i64, summary: &str) -> EventComponent {
        let mut c = override_of(rid, start, secs);
        c.recurrence_id = Some(RecurrenceId {
            time: rid,
            this_and_future: true,
        });
        c.summary = Some(summary.into());
        c
    }

    #[test]
    fn thisandfuture_shifts_later_instances_and_changes_their_duration() {
        let m = with_rule(
            hour_long(zoned(Berlin, 2026, 6, 1, 10, 0)),
            "FREQ=WEEKLY;COUNT=5",
        );
        let tf = this_and_future(
            zoned(Berlin, 2026, 6, 15, 10, 0),
            zoned(Berlin, 2026, 6, 15, 11, 0),
            1800,
            "Later",
        );
        // A single override after the THISANDFUTURE still replaces its own slot.
        let single = override_of(
            zoned(Berlin, 2026, 6, 29, 10, 0),
            zoned(Berlin, 2026, 6, 30, 9, 0),
            3600,
        );
        let got = expand(&series(Some(m), vec![tf, single]), year_2026(), Berlin);
        assert_eq!(
            local_starts(&got, Berlin),
            [
                "2026-06-01 10:00",
                "2026-06-08 10:00",
                "2026-06-15 11:00",
                "2026-06-22 11:00",
                "2026-06-30 09:00"
            ]
        );
        assert_eq!(got[3].range.duration(), TimeDelta::minutes(30));
        assert_eq!(got[3].details.summary.as_deref(), Some("Later"));
        assert_eq!(got[3].recurrence_id, utc(2026, 6, 22, 8, 0));
        assert_eq!(got[1].details.summary.as_deref(), Some("Master"));
    }

    #[test]
    fn thisandfuture_shift_is_found_from_a_window_that_holds_only_the_new_times() {
        let m = with_rule(hour_long(zoned(Berlin, 2026, 6, 1, 10, 0)), "FREQ=WEEKLY");
        // From June 15 on, the meeting moves three days later.
        let tf = this_and_future(
            zoned(Berlin, 2026, 6, 15, 10, 0),
            zoned(Berlin, 2026, 6, 18, 10, 0),
            3600,
            "Thursdays",
        );
        let s = series(Some(m), vec![tf]);
        let thu = expand(
            &s,
            win(utc(2026, 6, 25, 0, 0), utc(2026, 6, 26, 0, 0)),
            Berlin,
        );
        assert_eq!(local_starts(&thu, Berlin), ["2026-06-25 10:00"]);
        let mon = expand(
            &s,
            win(utc(2026, 6, 22, 0, 0), utc(2026, 6, 23, 0, 0)),
            Berlin,
        );
        assert!(mon.is_empty());
    }

    #[test]
    fn cancelled_thisandfuture_ends_the_series() {
        let m = with_rule(hour_long(zoned(Berlin, 2026, 6, 1, 10, 0)), "FREQ=WEEKLY");
        let mut tf = this_and_future(
            zoned(Berlin, 2026, 6, 15, 10, 0),
            zoned(Berlin, 2026, 6, 15, 10, 0),
            3600,
            "Gone",
        );
        tf.status = EventStatus::Cancelled;
        let got = expand(&series(Some(m), vec![tf]), year_2026(), Berlin);
        assert_eq!(
            local_starts(&got, Berlin),
            ["2026-06-01 10:00", "2026-06-08 10:00"]
        );
    }

    #[test]
    fn the_latest_thisandfuture_before_an_instance_wins() {
        let m = with_rule(
            hour_long(zoned(Berlin, 2026, 6, 1, 10, 0)),
            "FREQ=WEEKLY;COUNT=6",
        );
        let a = this_and_future(
            zoned(Berlin, 2026, 6, 8, 10, 0),
            zoned(Berlin, 2026, 6, 8, 11, 0),
            3600,
            "A",
        );
        let b = this_and_future(
            zoned(Berlin, 2026, 6, 22, 10, 0),
            zoned(Berlin, 2026, 6, 22, 12, 0),
            3600,
            "B",
        );
        let got = expand(&series(Some(m), vec![b, a]), year_2026(), Berlin);
        let summaries: Vec<_> = got
            .iter()
            .map(|i| i.details.summary.clone().unwrap_or_default())
            .collect();
        assert_eq!(summaries, ["Master", "A", "A", "B", "B", "B"]);
        assert_eq!(
            local_starts(&got, Berlin)[2..],
            [
                "2026-06-15 11:00",
                "2026-06-22 12:00",
                "2026-06-29 12:00",
                "2026-07-06 12:00"
            ]
        );
    }

    #[test]
    fn a_series_without_master_yields_just_its_overrides() {
        let o = override_of(
            zoned(Berlin, 2026, 6, 8, 10, 0),
            zoned(Berlin, 2026, 6, 9, 14, 0),
            1800,
        );
        let got = expand(&series(None, vec![o]), year_2026(), Berlin);
        assert_eq!(local_starts(&got, Berlin), ["2026-06-09 14:00"]);
    }

    #[test]
    fn an_override_for_a_slot_the_rule_never_produces_is_still_an_instance() {
        let m = with_rule(
            hour_long(zoned(Berlin, 2026, 6, 1, 10, 0)),
            "FREQ=WEEKLY;COUNT=2",
        );
        let o = override_of(
            zoned(Berlin, 2026, 6, 3, 10, 0),
            zoned(Berlin, 2026, 6, 3, 12, 0),
            1800,
        );
        let got = expand(&series(Some(m), vec![o]), year_2026(), Berlin);
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn the_override_with_the_highest_sequence_wins() {
        let m = with_rule(
            hour_long(zoned(Berlin, 2026, 6, 1, 10, 0)),
            "FREQ=WEEKLY;COUNT=2",
        );
        let rid = zoned(Berlin, 2026, 6, 8, 10, 0);
        let mut newer = override_of(rid, zoned(Berlin, 2026, 6, 8, 16, 0), 1800);
        newer.sequence = 2;
        let older = override_of(rid, zoned(Berlin, 2026, 6, 8, 12, 0), 1800);
        let got = expand(&series(Some(m), vec![newer, older]), year_2026(), Berlin);
        assert_eq!(
            local_starts(&got, Berlin),
            ["2026-06-01 10:00", "2026-06-08 16:00"]
        );
    }

    #[test]
    fn transparent_and_tentative_instances_are_kept_with_their_status() {
        let mut m = with_rule(
            hour_long(zoned(Berlin, 2026, 6, 1, 10, 0)),
            "FREQ=DAILY;COUNT=2",
        );
        m.transparency = Transparency::Transparent;
        let got = expand(&series(Some(m.clone()), vec![]), year_2026(), Berlin);
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|i| i.busy_status().is_none()));
        m.transparency = Transparency::Opaque;
        m.status = EventStatus::Tentative;
        let got = expand(&series(Some(m.clone()), vec![]), year_2026(), Berlin);
        assert_eq!(
            got[0].busy_status(),
            Some(crate::domain::BusyStatus::Tentative)
        );
        m.status = EventStatus::Cancelled;
        assert!(expand(&series(Some(m), vec![]), year_2026(), Berlin).is_empty());
    }

    #[test]
    fn several_rrules_are_united_without_duplicates() {
        let mut m = hour_long(zoned(Berlin, 2026, 6, 1, 10, 0));
        m.rrules = vec![
            "FREQ=WEEKLY;BYDAY=MO;COUNT=2".into(),
            "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=3".into(),
        ];
        let got = expand(&series(Some(m), vec![]), year_2026(), Berlin);
        assert_eq!(
            local_starts(&got, Berlin),
            ["2026-06-01 10:00", "2026-06-03 10:00", "2026-06-08 10:00"]
        );
    }

    #[test]
    fn a_never_matching_yearly_rule_returns_promptly_with_only_dtstart() {
        let m = with_rule(
            hour_long(zoned(Berlin, 2026, 2, 1, 10, 0)),
            "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
        );
        let s = series(Some(m), vec![]);
        let t0 = std::time::Instant::now();
        let got = expand(
            &s,
            win(utc(2020, 1, 1, 0, 0), utc(2100, 1, 1, 0, 0)),
            Berlin,
        );
        assert_eq!(local_starts(&got, Berlin), ["2026-02-01 10:00"]);
        let monthly = with_rule(
            hour_long(zoned(Berlin, 2026, 2, 1, 10, 0)),
            "FREQ=MONTHLY;BYMONTH=4;BYMONTHDAY=31",
        );
        let got = expand(&series(Some(monthly), vec![]), year_2026(), Berlin);
        assert_eq!(got.len(), 1);
        // Not recognisable up front: the fifth Monday is never the 1st; the
        // rule crate's own iteration limit ends the search.
        let fifth_monday = with_rule(
            hour_long(zoned(Berlin, 2026, 2, 1, 10, 0)),
            "FREQ=MONTHLY;BYDAY=5MO;BYMONTHDAY=1",
        );
        let got = expand(&series(Some(fifth_monday), vec![]), year_2026(), Berlin);
        assert_eq!(got.len(), 1);
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(5),
            "took {:?}",
            t0.elapsed()
        );
    }

    #[test]
    fn a_window_years_after_dtstart_costs_only_the_nearby_instances() {
        let m = with_rule(hour_long(zoned(Berlin, 2000, 1, 3, 9, 0)), "FREQ=DAILY");
        let s = series(Some(m), vec![]);
        let w = win(utc(2036, 3, 1, 0, 0), utc(2036, 3, 31, 0, 0));
        let t0 = std::time::Instant::now();
        let got = expand(&s, w, Berlin);
        let took = t0.elapsed();
        assert_eq!(got.len(), 30);
        assert_eq!(local_starts(&got, Berlin)[29], "2036-03-30 09:00");
        // 36 years of daily instances from DTSTART would be ~13,000; a 30-day window must be far cheaper.
        assert!(took < std::time::Duration::from_millis(50), "took {took:?}");
    }

    #[test]
    fn skip_ahead_lands_on_the_rule_lattice_before_the_window() {
        let start = ndt(2000, 1, 5, 9, 0); // a Wednesday
        let lo = ndt(2026, 6, 10, 0, 0);
        let w = skip_ahead(Frequency::Weekly, 3, Weekday::Mon, start, lo);
        assert!(w <= lo && lo - w <= TimeDelta::weeks(7));
        assert_eq!(chrono::Datelike::weekday(&w), Weekday::Mon);
        assert_eq!((w.date() - nd(2000, 1, 3)).num_days() % 21, 0);
        let m = skip_ahead(Frequency::Monthly, 5, Weekday::Mon, start, lo);
        assert_eq!(chrono::Datelike::day(&m), 1);
        let months = (m.year() - 2000) * 12 + i32::try_from(m.month0()).unwrap_or(0);
        assert_eq!(months % 5, 0);
        assert!(m <= lo);
        let d = skip_ahead(Frequency::Daily, 1, Weekday::Mon, start, start);
        assert_eq!(d, start);
    }

    #[test]
    fn broken_rules_are_reported_with_the_event_and_rule() {
        let m = with_rule(
            hour_long(zoned(Berlin, 2026, 6, 1, 10, 0)),
            "FREQ=FORTNIGHTLY",
        );
        let err = expand_series(&series(Some(m), vec![]), year_2026(), Berlin);
        assert!(matches!(err, Err(RecurrenceError::BadRule { ref uid, .. }) if uid == "ev@test"));
        let m = with_rule(
            hour_long(zoned(Berlin, 2026, 6, 1, 10, 0)),
            "FREQ=DAILY;UNTIL=tomorrow",
        );
        assert!(validate_series(&series(Some(m), vec![]), Berlin).is_err());
    }

    #[test]
    fn lenient_rule_forms_are_accepted() {
        let m = with_rule(
            hour_long(zoned(Berlin, 2026, 6, 1, 10, 0)),
            "RRULE:freq=daily;count=2;X-FOO=bar;",
        );
        assert_eq!(
            expand(&series(Some(m), vec![]), year_2026(), Berlin).len(),
            2
        );
    }

    #[test]
    fn hostile_values_do_not_panic() {
        let everything = TimeRange {
            start: DateTime::<Utc>::MIN_UTC,
            end: DateTime::<Utc>::MAX_UTC,
        };
        let mut m = with_rule(
            event(
                zoned(Berlin, 2026, 6, 1, 10, 0),
                EventEnd::Duration(IcalDuration {
                    days: i64::MAX,
                    seconds: i64::MIN,
                }),
            ),
            "FREQ=YEARLY;COUNT=3",
        );
        m.rdates.push(RDate {
            start: IcalTime::Date(NaiveDate::MAX),
            end: Some(IcalTime::Date(NaiveDate::MIN)),
        });
        m.exdates.push(IcalTime::Floating(NaiveDateTime::MAX));
        let o = override_of(
            IcalTime::Date(NaiveDate::MIN),
            IcalTime::Floating(NaiveDateTime::MAX),
            i64::MAX,
        );
        let s = series(Some(m), vec![o]);
        for tz in [
            Berlin,
            New_York,
            chrono_tz::Pacific::Kiritimati,
            chrono_tz::Etc::GMTPlus12,
        ] {
            let _ = expand_series(&s, everything, tz);
            let _ = max_instance_duration(&s, tz);
        }
        for rule in [
            "ÄÄÄÄÄÄÄ",
            "RRULE:",
            "FREQ=DAILY;UNTIL=99999999",
            "FREQ=DAILY;INTERVAL=0",
            "FREQ=DAILY;COUNT=-5;UNTIL=2026",
        ] {
            let m = with_rule(hour_long(zoned(Berlin, 2026, 6, 1, 10, 0)), rule);
            let _ = expand_series(&series(Some(m), vec![]), year_2026(), Berlin);
        }
    }

    #[test]
    fn runaway_rules_are_refused_rather_than_truncated() {
        let m = with_rule(hour_long(zoned(Berlin, 2026, 6, 1, 10, 0)), "FREQ=SECONDLY");
        let err = expand_series(&series(Some(m), vec![]), year_2026(), Berlin);
        assert!(matches!(err, Err(RecurrenceError::TooManyInstances { .. })));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn arb_series() -> impl Strategy<Value = EventSeries> {
            let tz = prop_oneof![Just(Berlin), Just(New_York), Just(Tz::UTC)];
            let freq = prop_oneof![
                Just("DAILY"),
                Just("WEEKLY"),
                Just("MONTHLY"),
                Just("YEARLY"),
                Just("HOURLY")
            ];
            let extra = prop_oneof![
                Just(""),
                Just(";BYDAY=MO,WE,FR"),
                Just(";BYDAY=-1FR"),
                Just(";BYMONTHDAY=1,15,-1"),
                Just(";BYMONTH=3,10"),
                Just(";BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1"),
            ];
            let bound = prop_oneof![
                Just(String::new()),
                (1u32..40).prop_map(|c| format!(";COUNT={c}")),
                Just(";UNTIL=20270315T120000Z".to_string()),
                Just(";UNTIL=20261101".to_string()),
            ];
            (
                tz,
                freq,
                extra,
                bound,
                1u16..4,
                0i64..(6 * 365),
                0u32..24,
                prop_oneof![Just(0i64), Just(1800), Just(3600 * 3), Just(86_400 * 2)],
                any::<bool>(),
                proptest::collection::vec(
                    (0usize..60, 0i64..(3 * 24), any::<bool>(), any::<bool>()),
                    0..3,
                ),
            )
                .prop_map(
                    |(tz, freq, extra, bound, interval, day, hour, secs, all_day, ovs)| {
                        let date = nd(2021, 1, 1) + TimeDelta::days(day);
                        let start = if all_day {
                            IcalTime::Date(date)
                        } else {
                            IcalTime::Zoned {
                                local: date.and_hms_opt(hour, 30, 0).unwrap_or_default(),
                                tz,
                            }
                        };
                        // Combinations RFC 5545 forbids (BYMONTHDAY with WEEKLY) are left out.
                        let extra = match freq {
                            "HOURLY" if extra.contains("BYSETPOS") => "",
                            "WEEKLY" if extra.contains("BYMONTHDAY") => "",
                            _ => extra,
                        };
                        let mut m = event(
                            start,
                            EventEnd::Duration(IcalDuration {
                                days: 0,
                                seconds: secs,
                            }),
                        );
                        m.rrules = vec![format!("FREQ={freq};INTERVAL={interval}{extra}{bound}")];
                        let mut s = series(Some(m.clone()), vec![]);
                        // Overrides of instances picked from a wide expansion.
                        if let Ok(all) = expand_series(
                            &s,
                            win(utc(2020, 1, 1, 0, 0), utc(2028, 1, 1, 0, 0)),
                            Berlin,
                        ) {
                            for (pick, move_h, tf, cancel) in ovs {
                                if let Some(i) = all.get(pick * 7 % all.len().max(1)) {
                                    let rid = IcalTime::Utc(i.recurrence_id);
                                    let to =
                                        IcalTime::Utc(i.range.start + TimeDelta::hours(move_h));
                                    let mut o = override_of(rid, to, 2700);
                                    o.recurrence_id = Some(RecurrenceId {
                                        time: rid,
                                        this_and_future: tf,
                                    });
                                    if cancel {
                                        o.status = EventStatus::Cancelled;
                                    }
                                    s.overrides.push(o);
                                }
                            }
                        }
                        s
                    },
                )
        }

        fn key(i: &Instance) -> (DateTime<Utc>, DateTime<Utc>, DateTime<Utc>) {
            (i.recurrence_id, i.range.start, i.range.end)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(96))]

            #[test]
            fn splitting_a_window_gives_the_same_instances(
                s in arb_series(),
                a in 0i64..(8 * 365 * 24),
                l1 in 0i64..(60 * 24),
                l2 in 0i64..(60 * 24),
            ) {
                let a = utc(2020, 6, 1, 0, 0) + TimeDelta::hours(a);
                let b = a + TimeDelta::hours(l1);
                let c = b + TimeDelta::hours(l2);
                let whole = expand(&s, win(a, c), Berlin);
                let mut parts: Vec<_> = expand(&s, win(a, b), Berlin);
                parts.extend(expand(&s, win(b, c), Berlin));
                let mut parts: Vec<_> = parts.iter().map(key).collect();
                parts.sort();
                parts.dedup();
                let mut whole_keys: Vec<_> = whole.iter().map(key).collect();
                whole_keys.sort();
                prop_assert_eq!(whole_keys, parts);
            }

            #[test]
            fn a_late_window_equals_filtering_an_expansion_from_dtstart(
                s in arb_series(),
                a in 0i64..(7 * 365 * 24),
                len in 1i64..(45 * 24),
            ) {
                let a = utc(2020, 6, 1, 0, 0) + TimeDelta::hours(a);
                let w = win(a, a + TimeDelta::hours(len));
                let got: Vec<_> = expand(&s, w, Berlin).iter().map(key).collect();
                let everything = expand(&s, win(utc(2019, 1, 1, 0, 0), w.end + TimeDelta::days(30)), Berlin);
                let want: Vec<_> = everything
                    .iter()
                    .filter(|i| overlaps_window(&i.range, &w))
                    .map(key)
                    .collect();
                prop_assert_eq!(got, want);
            }

            #[test]
            fn instances_are_sorted_and_overlap_the_window(
                s in arb_series(),
                a in 0i64..(7 * 365 * 24),
                len in 0i64..(45 * 24),
            ) {
                let a = utc(2020, 6, 1, 0, 0) + TimeDelta::hours(a);
                let w = win(a, a + TimeDelta::hours(len));
                let got = expand(&s, w, New_York);
                prop_assert!(got.windows(2).all(|p| instance_order(&p[0], &p[1]).is_le()));
                prop_assert!(got.iter().all(|i| overlaps_window(&i.range, &w)));
                prop_assert!(got.iter().all(|i| i.status != EventStatus::Cancelled));
            }
        }
    }
}
