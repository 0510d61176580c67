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
    DateTime, Datelike, Days, Months, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone,
    Utc, Weekday,
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
/// Overlap follows RFC 5545 §3.6.5's free/busy reading of half-open ranges:
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
                max = max.max(end.to_utc(owner_tz) - r.start.to_utc(owner_tz));
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
                    seconds: (end.to_utc(owner_tz) - c.start.to_utc(owner_tz)).num_seconds(),
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
            add_days(local, self.days).map(|l| local_to_utc(l, zone))
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
    owner_tz: Tz,
}

impl Frame {
    /// The wall-clock reading of `t` in this frame.
    fn local_of(&self, t: &IcalTime) -> NaiveDateTime {
        if t.zone(self.owner_tz) == self.zone {
            t.naive_local()
        } else {
            self.local_at(t.to_utc(self.owner_tz))
        }
    }

    fn local_at(&self, instant: DateTime<Utc>) -> NaiveDateTime {
        instant.with_timezone(&self.zone).naive_local()
    }

    fn instant(&self, local: NaiveDateTime) -> DateTime<Utc> {
        local_to_utc(local, self.zone)
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
    if text.len() >= 6 && text[..6].eq_ignore_ascii_case("RRULE:") {
        text = &text[6..];
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
        freq: rule.get_freq(),
        interval: rule.get_interval(),
        week_start: rule.get_week_start(),
        rule,
        until,
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
    ctx: (&str, &str),
) -> Result<Vec<NaiveDateTime>, RecurrenceError> {
    let stop = match rule.until {
        Some(u) => hi.min(u.local_upper_bound(frame)),
        None => hi,
    };
    if stop < dtstart || stop < lo {
        return Ok(Vec::new());
    }
    // The crate gets a coarse UNTIL so it stops on its own; the exact,
    // zone-aware UNTIL is applied below.
    let validated = rule
        .rule
        .clone()
        .until(as_rule_time(stop))
        .validate(as_rule_time(dtstart))
        .map_err(|e| bad_rule(ctx.0, ctx.1, e.to_string()))?;
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
                    uid: ctx.0.chars().take(200).collect(),
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
            let rid_instant = rid.time.to_utc(owner_tz);
            if overrides
                .get(&rid_instant)
                .is_some_and(|o| o.comp.sequence > c.sequence)
            {
                continue;
            }
            let own = Frame {
                zone: c.start.zone(owner_tz),
                owner_tz,
            };
            let start = c.start.to_utc(owner_tz);
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
            let starts = rule_starts(
                rule,
                m.dtstart,
                lo,
                hi,
                &m.frame,
                (&m.comp.uid, &m.comp.rrules.join(" ")),
            )?;
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
            owner_tz,
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
                    .map(|e| (e.to_utc(owner_tz) - start).max(TimeDelta::zero()));
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
                    ex_instants.insert(other.to_utc(owner_tz));
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
