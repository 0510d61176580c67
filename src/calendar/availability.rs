//! Availability: merged busy time, working hours and free slots.
//!
//! Owns the arithmetic that turns expanded instances into busy intervals and
//! busy intervals into free ranges and candidate slots, in the owner's zone
//! and across DST changes. Must not touch recurrence rules (that is
//! `expand`), storage, policies or the clock: callers pass `now`.

use chrono::{DateTime, Days, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::domain::time::local_to_utc;
use crate::domain::{BusyInterval, BusyStatus, Instance, TimeRange};

// ---------------------------------------------------------------------------
// Busy time

/// The blocking instances among `instances`, clipped to `window`, merged.
/// See [`merge_busy_ranges`].
pub fn merge_busy(instances: &[Instance], window: TimeRange) -> Vec<BusyInterval> {
    merge_busy_ranges(
        instances
            .iter()
            .filter_map(|i| i.busy_status().map(|s| (i.range, s))),
        window,
    )
}

/// Clips each `(range, status)` to `window` and merges them into sorted,
/// disjoint, non-empty intervals. Intervals of the same status that touch or
/// overlap are joined; where busy and tentative overlap, busy wins and the
/// tentative interval is cut around it.
pub fn merge_busy_ranges(
    items: impl IntoIterator<Item = (TimeRange, BusyStatus)>,
    window: TimeRange,
) -> Vec<BusyInterval> {
    let mut busy = Vec::new();
    let mut tentative = Vec::new();
    for (range, status) in items {
        if let Some(r) = range.intersect(&window) {
            match status {
                BusyStatus::Busy => busy.push(r),
                BusyStatus::Tentative => tentative.push(r),
            }
        }
    }
    let busy = union(busy);
    let tentative = subtract(&union(tentative), &busy);
    let mut out: Vec<BusyInterval> = busy
        .into_iter()
        .map(|r| (r, BusyStatus::Busy))
        .chain(tentative.into_iter().map(|r| (r, BusyStatus::Tentative)))
        .map(|(r, status)| BusyInterval {
            start: r.start,
            end: r.end,
            status,
        })
        .collect();
    out.sort();
    out
}

/// Sorted, disjoint, non-empty union of `ranges` (touching ranges are joined).
fn union(mut ranges: Vec<TimeRange>) -> Vec<TimeRange> {
    ranges.retain(|r| !r.is_empty());
    ranges.sort_unstable();
    let mut out: Vec<TimeRange> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// `from` minus `cut`; both sorted and disjoint, and so is the result.
fn subtract(from: &[TimeRange], cut: &[TimeRange]) -> Vec<TimeRange> {
    let mut out = Vec::new();
    let mut j = 0;
    for r in from {
        let mut start = r.start;
        while j < cut.len() && cut[j].end <= start {
            j += 1;
        }
        let mut k = j;
        while k < cut.len() && cut[k].start < r.end {
            if cut[k].start > start {
                out.push(TimeRange {
                    start,
                    end: cut[k].start,
                });
            }
            start = start.max(cut[k].end);
            k += 1;
        }
        if start < r.end {
            out.push(TimeRange { start, end: r.end });
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Working hours

/// The owner's working hours: for each weekday, local wall-clock spans
/// (possibly none). A span ending at 00:00 ends at midnight, the end of the day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "WorkingHoursSpec", into = "WorkingHoursSpec")]
pub struct WorkingHours {
    /// Indexed by `Weekday::num_days_from_monday`; each list sorted and disjoint.
    days: [Vec<(NaiveTime, NaiveTime)>; 7],
}

impl Default for WorkingHours {
    /// Monday to Friday, 09:00–17:00 (the spec's default).
    fn default() -> Self {
        let nine_to_five = vec![(hm(9, 0), hm(17, 0))];
        let mut days: [Vec<(NaiveTime, NaiveTime)>; 7] = Default::default();
        for d in days.iter_mut().take(5) {
            *d = nine_to_five.clone();
        }
        Self { days }
    }
}

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN)
}

const WEEKDAYS: [Weekday; 7] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
    Weekday::Sat,
    Weekday::Sun,
];

impl WorkingHours {
    /// No working hours on any day.
    pub fn none() -> Self {
        Self {
            days: Default::default(),
        }
    }

    /// Builds working hours from per-weekday specs such as `"09:00-17:00"` or
    /// `"09:00-12:00,13:00-17:00"` (an empty string means a day off; `24:00`
    /// is accepted as an end). Weekdays not listed have no working hours.
    pub fn from_weekday_specs(specs: &[(Weekday, &str)]) -> Result<Self, String> {
        let mut out = Self::none();
        for (day, spec) in specs {
            out.days[day.num_days_from_monday() as usize] = parse_day_spec(spec)
                .map_err(|e| format!("working hours for {}: {e}", weekday_name(*day)))?;
        }
        Ok(out)
    }

    /// Replaces one weekday's spans; they are checked like [`Self::from_weekday_specs`] checks.
    pub fn set_day(&mut self, day: Weekday, spans: Vec<(NaiveTime, NaiveTime)>) -> Result<(), String> {
        let spans = normalise_spans(spans)
            .map_err(|e| format!("working hours for {}: {e}", weekday_name(day)))?;
        self.days[day.num_days_from_monday() as usize] = spans;
        Ok(())
    }

    /// The spans of one weekday, sorted.
    pub fn day(&self, day: Weekday) -> &[(NaiveTime, NaiveTime)] {
        &self.days[day.num_days_from_monday() as usize]
    }

    /// The spec string of one weekday, as [`Self::from_weekday_specs`] reads it.
    pub fn day_spec(&self, day: Weekday) -> String {
        self.day(day)
            .iter()
            .map(|(s, e)| {
                let end = if *e == NaiveTime::MIN {
                    "24:00".to_string()
                } else {
                    e.format("%H:%M").to_string()
                };
                format!("{}-{end}", s.format("%H:%M"))
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The working intervals, as instants, that overlap `range`, clipped to
    /// it, sorted and joined where they touch (e.g. across midnight).
    pub fn intervals(&self, range: TimeRange, tz: Tz) -> Vec<TimeRange> {
        if range.is_empty() {
            return Vec::new();
        }
        let first = range.start.with_timezone(&tz).date_naive();
        let last = range.end.with_timezone(&tz).date_naive();
        let mut out = Vec::new();
        let mut day = first.pred_opt().unwrap_or(first);
        let stop = last.succ_opt().unwrap_or(last);
        while day <= stop {
            for &(s, e) in self.day(day_weekday(day)) {
                let start = local_to_utc(day.and_time(s), tz);
                let end_local = if e == NaiveTime::MIN {
                    day.succ_opt().map(|d| d.and_time(NaiveTime::MIN))
                } else {
                    Some(day.and_time(e))
                };
                let Some(end_local) = end_local else { continue };
                let end = local_to_utc(end_local, tz);
                if let Some(r) = TimeRange::new(start, end).and_then(|r| r.intersect(&range)) {
                    out.push(r);
                }
            }
            match day.succ_opt() {
                Some(d) => day = d,
                None => break,
            }
        }
        union(out)
    }
}

fn day_weekday(d: NaiveDate) -> Weekday {
    chrono::Datelike::weekday(&d)
}

fn weekday_name(d: Weekday) -> &'static str {
    match d {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

fn parse_time(text: &str, is_end: bool) -> Result<NaiveTime, String> {
    let t = text.trim();
    if is_end && t == "24:00" {
        return Ok(NaiveTime::MIN);
    }
    NaiveTime::parse_from_str(t, "%H:%M")
        .map_err(|_| format!("{t:?} is not a time of day; write it as HH:MM, e.g. 09:00"))
}

fn parse_day_spec(spec: &str) -> Result<Vec<(NaiveTime, NaiveTime)>, String> {
    let mut spans = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (s, e) = part.split_once('-').ok_or_else(|| {
            format!("{part:?} is not a span; write it as HH:MM-HH:MM, e.g. 09:00-17:00")
        })?;
        spans.push((parse_time(s, false)?, parse_time(e, true)?));
    }
    normalise_spans(spans)
}

fn normalise_spans(
    mut spans: Vec<(NaiveTime, NaiveTime)>,
) -> Result<Vec<(NaiveTime, NaiveTime)>, String> {
    let end_secs = |e: NaiveTime| {
        if e == NaiveTime::MIN {
            86_400
        } else {
            e.num_seconds_from_midnight()
        }
    };
    for &(s, e) in &spans {
        if s.num_seconds_from_midnight() >= end_secs(e) {
            return Err(format!(
                "{}-{} ends before it starts; a span must stay within one day",
                s.format("%H:%M"),
                e.format("%H:%M")
            ));
        }
    }
    spans.sort();
    for pair in spans.windows(2) {
        if pair[1].0.num_seconds_from_midnight() < end_secs(pair[0].1) {
            return Err(format!(
                "{}-{} overlaps {}-{}",
                pair[0].0.format("%H:%M"),
                pair[0].1.format("%H:%M"),
                pair[1].0.format("%H:%M"),
                pair[1].1.format("%H:%M")
            ));
        }
    }
    Ok(spans)
}

/// Working hours as the configuration file writes them: one spec string per
/// weekday (`mon = "09:00-17:00"`); an absent or empty day is a day off.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkingHoursSpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mon: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tue: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub wed: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub thu: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fri: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sat: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sun: String,
}

impl TryFrom<WorkingHoursSpec> for WorkingHours {
    type Error = String;

    fn try_from(s: WorkingHoursSpec) -> Result<Self, String> {
        WorkingHours::from_weekday_specs(&[
            (Weekday::Mon, &s.mon),
            (Weekday::Tue, &s.tue),
            (Weekday::Wed, &s.wed),
            (Weekday::Thu, &s.thu),
            (Weekday::Fri, &s.fri),
            (Weekday::Sat, &s.sat),
            (Weekday::Sun, &s.sun),
        ])
    }
}

impl From<WorkingHours> for WorkingHoursSpec {
    fn from(w: WorkingHours) -> Self {
        let [mon, tue, wed, thu, fri, sat, sun] = WEEKDAYS.map(|d| w.day_spec(d));
        Self {
            mon,
            tue,
            wed,
            thu,
            fri,
            sat,
            sun,
        }
    }
}

// ---------------------------------------------------------------------------
// Free slots

/// What a free-slot search looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotOptions {
    /// The length of the meeting sought.
    pub duration: TimeDelta,
    /// Starts are aligned to this grid in the owner's wall-clock time, counted from local midnight.
    pub granularity: TimeDelta,
    /// Free time kept before every busy or tentative interval.
    pub buffer_before: TimeDelta,
    /// Free time kept after every busy or tentative interval.
    pub buffer_after: TimeDelta,
    /// Nothing starts before `now + min_notice`.
    pub min_notice: TimeDelta,
    /// Nothing extends past `now + horizon`.
    pub horizon: TimeDelta,
}

impl Default for SlotOptions {
    /// The spec's defaults: 30-minute grid, no buffers, no notice; 30-minute
    /// meetings; at most 60 days ahead.
    fn default() -> Self {
        Self {
            duration: TimeDelta::minutes(30),
            granularity: TimeDelta::minutes(30),
            buffer_before: TimeDelta::zero(),
            buffer_after: TimeDelta::zero(),
            min_notice: TimeDelta::zero(),
            horizon: TimeDelta::days(60),
        }
    }
}

/// The maximal free ranges inside `window` and the working hours, at least
/// `opts.duration` long, each starting on the granularity grid.
///
/// Busy and tentative intervals both block, widened by the buffers; nothing
/// starts before `now + min_notice` nor extends past `now + horizon`.
pub fn free_slots(
    busy: &[BusyInterval],
    window: TimeRange,
    hours: &WorkingHours,
    owner_tz: Tz,
    opts: &SlotOptions,
    now: DateTime<Utc>,
) -> Vec<TimeRange> {
    let earliest = now
        .checked_add_signed(opts.min_notice.max(TimeDelta::zero()))
        .unwrap_or(now);
    let latest = now.checked_add_signed(opts.horizon).unwrap_or(DateTime::<Utc>::MAX_UTC);
    let Some(bounds) = TimeRange::new(window.start.max(earliest), window.end.min(latest)) else {
        return Vec::new();
    };
    let blocked = union(
        busy.iter()
            .map(|b| TimeRange {
                start: b
                    .start
                    .checked_sub_signed(opts.buffer_before.max(TimeDelta::zero()))
                    .unwrap_or(DateTime::<Utc>::MIN_UTC),
                end: b
                    .end
                    .checked_add_signed(opts.buffer_after.max(TimeDelta::zero()))
                    .unwrap_or(DateTime::<Utc>::MAX_UTC),
            })
            .collect(),
    );
    let free = subtract(&hours.intervals(bounds, owner_tz), &blocked);
    let duration = opts.duration.max(TimeDelta::zero());
    free.into_iter()
        .filter_map(|r| {
            let start = align_up(r.start, opts.granularity, owner_tz)?;
            (start < r.end && r.end - start >= duration).then_some(TimeRange { start, end: r.end })
        })
        .collect()
}

/// The first `k` slots of exactly `duration`, earliest first, that fit in
/// `free` and start on the granularity grid (used for the `slots` level).
pub fn candidate_slots(
    free: &[TimeRange],
    duration: TimeDelta,
    granularity: TimeDelta,
    owner_tz: Tz,
    k: usize,
) -> Vec<TimeRange> {
    let mut out = Vec::new();
    if duration <= TimeDelta::zero() {
        return out;
    }
    for r in free {
        let mut next = align_up(r.start, granularity, owner_tz);
        while let Some(start) = next {
            if out.len() >= k {
                return out;
            }
            let Some(end) = start.checked_add_signed(duration) else { break };
            if end > r.end {
                break;
            }
            out.push(TimeRange { start, end });
            next = start
                .checked_add_signed(TimeDelta::seconds(1))
                .and_then(|t| align_up(t, granularity, owner_tz));
        }
    }
    out
}

/// The first grid point at or after `t`, the grid being multiples of
/// `granularity` of wall-clock time from each local midnight in `tz`. Where
/// a grid time is skipped or repeated by a DST change it is read as RFC 5545
/// §3.3.5 reads local times, and grid points before `t` are passed over.
/// A non-positive granularity means no grid.
pub fn align_up(t: DateTime<Utc>, granularity: TimeDelta, tz: Tz) -> Option<DateTime<Utc>> {
    let g = granularity.num_seconds();
    if g <= 0 {
        return Some(t);
    }
    let local: NaiveDateTime = t.with_timezone(&tz).naive_local();
    let mut day = local.date();
    let since_midnight = i64::from(local.time().num_seconds_from_midnight())
        + i64::from(local.time().nanosecond() > 0);
    let mut n = (since_midnight + g - 1) / g;
    // A handful of steps cover any DST irregularity.
    for _ in 0..8 {
        let offset = n.checked_mul(g)?;
        if offset >= 86_400 {
            day = day.checked_add_days(Days::new(1))?;
            n = 0;
            continue;
        }
        let candidate = local_to_utc(day.and_time(NaiveTime::MIN) + TimeDelta::seconds(offset), tz);
        if candidate >= t {
            return Some(candidate);
        }
        n += 1;
    }
    None
}
