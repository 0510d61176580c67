//! Availability: merged busy time, working hours and free slots.
//!
//! Owns the arithmetic that turns expanded instances into busy intervals and
//! busy intervals into free ranges and candidate slots, in the owner's zone
//! and across DST changes. Must not touch recurrence rules (that is
//! `expand`), storage, policies or the clock: callers pass `now`.

use chrono::{
    DateTime, Days, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Timelike, Utc, Weekday,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::expand::{local_in, resolve};
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
    pub fn set_day(
        &mut self,
        day: Weekday,
        spans: Vec<(NaiveTime, NaiveTime)>,
    ) -> Result<(), String> {
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
        let first = local_in(range.start, tz).date();
        let last = local_in(range.end, tz).date();
        let mut out = Vec::new();
        let mut day = first.pred_opt().unwrap_or(first);
        let stop = last.succ_opt().unwrap_or(last);
        while day <= stop {
            for &(s, e) in self.day(day_weekday(day)) {
                let start = resolve(day.and_time(s), tz);
                let end_local = if e == NaiveTime::MIN {
                    day.succ_opt().map(|d| d.and_time(NaiveTime::MIN))
                } else {
                    Some(day.and_time(e))
                };
                let Some(end_local) = end_local else { continue };
                let end = resolve(end_local, tz);
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

/// The furthest [`free_slots`] looks past its start.
pub const MAX_SEARCH: TimeDelta = TimeDelta::days(3653);

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
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    let latest = now
        .checked_add_signed(opts.horizon)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    let start = window.start.max(earliest);
    // Working hours are laid out day by day; a decade bounds that work
    // whatever window and horizon a caller passes.
    let far = start
        .checked_add_signed(MAX_SEARCH)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    let Some(bounds) = TimeRange::new(start, window.end.min(latest).min(far)) else {
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
/// The slots do not overlap: each offer is a distinct choice, so `k` offers
/// show `k` different times rather than one time shifted by the grid.
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
            let Some(end) = start.checked_add_signed(duration) else {
                break;
            };
            if end > r.end {
                break;
            }
            out.push(TimeRange { start, end });
            // The next offer starts where this one ends, on the grid.
            next = if granularity <= TimeDelta::zero() {
                Some(end)
            } else {
                align_up(end, granularity, owner_tz)
            };
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
    let local: NaiveDateTime = local_in(t, tz);
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
        let candidate = resolve(
            day.and_time(NaiveTime::MIN) + TimeDelta::seconds(offset),
            tz,
        );
        if candidate >= t {
            return Some(candidate);
        }
        n += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use chrono_tz::Europe::Berlin;
    use proptest::prelude::*;

    fn utc(y: i32, m: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|d| d.and_hms_opt(h, mi, 0))
            .expect("valid test time")
            .and_utc()
    }

    fn r(a: DateTime<Utc>, b: DateTime<Utc>) -> TimeRange {
        TimeRange::new(a, b).expect("ordered test range")
    }

    fn bi(a: DateTime<Utc>, b: DateTime<Utc>, status: BusyStatus) -> BusyInterval {
        BusyInterval {
            start: a,
            end: b,
            status,
        }
    }

    const BUSY: BusyStatus = BusyStatus::Busy;
    const TENT: BusyStatus = BusyStatus::Tentative;

    #[test]
    fn tentative_time_is_cut_around_busy_time() {
        let w = r(utc(2026, 6, 1, 0, 0), utc(2026, 6, 2, 0, 0));
        let got = merge_busy_ranges(
            [
                (r(utc(2026, 6, 1, 9, 0), utc(2026, 6, 1, 12, 0)), TENT),
                (r(utc(2026, 6, 1, 10, 0), utc(2026, 6, 1, 11, 0)), BUSY),
            ],
            w,
        );
        assert_eq!(
            got,
            [
                bi(utc(2026, 6, 1, 9, 0), utc(2026, 6, 1, 10, 0), TENT),
                bi(utc(2026, 6, 1, 10, 0), utc(2026, 6, 1, 11, 0), BUSY),
                bi(utc(2026, 6, 1, 11, 0), utc(2026, 6, 1, 12, 0), TENT),
            ]
        );
    }

    #[test]
    fn touching_intervals_of_one_status_merge_and_everything_is_clipped() {
        let w = r(utc(2026, 6, 1, 8, 0), utc(2026, 6, 1, 18, 0));
        let got = merge_busy_ranges(
            [
                (r(utc(2026, 6, 1, 7, 0), utc(2026, 6, 1, 9, 0)), BUSY),
                (r(utc(2026, 6, 1, 9, 0), utc(2026, 6, 1, 10, 0)), BUSY),
                (r(utc(2026, 6, 1, 9, 30), utc(2026, 6, 1, 9, 45)), BUSY),
                (r(utc(2026, 6, 1, 17, 0), utc(2026, 6, 1, 20, 0)), TENT),
                (r(utc(2026, 6, 1, 20, 0), utc(2026, 6, 1, 21, 0)), BUSY),
                (r(utc(2026, 6, 1, 12, 0), utc(2026, 6, 1, 12, 0)), BUSY),
            ],
            w,
        );
        assert_eq!(
            got,
            [
                bi(utc(2026, 6, 1, 8, 0), utc(2026, 6, 1, 10, 0), BUSY),
                bi(utc(2026, 6, 1, 17, 0), utc(2026, 6, 1, 18, 0), TENT),
            ]
        );
    }

    #[test]
    fn default_working_hours_are_weekdays_nine_to_five() {
        let h = WorkingHours::default();
        assert_eq!(h.day_spec(Weekday::Mon), "09:00-17:00");
        assert_eq!(h.day_spec(Weekday::Fri), "09:00-17:00");
        assert!(h.day(Weekday::Sat).is_empty() && h.day(Weekday::Sun).is_empty());
    }

    #[test]
    fn working_hours_specs_parse_and_report_mistakes_clearly() {
        let h = WorkingHours::from_weekday_specs(&[
            (Weekday::Mon, "09:00-12:00, 13:00-17:00"),
            (Weekday::Sat, "10:00-24:00"),
            (Weekday::Sun, ""),
        ])
        .expect("valid specs");
        assert_eq!(h.day_spec(Weekday::Mon), "09:00-12:00,13:00-17:00");
        assert_eq!(h.day_spec(Weekday::Sat), "10:00-24:00");
        assert!(h.day(Weekday::Tue).is_empty());
        let err = |spec| WorkingHours::from_weekday_specs(&[(Weekday::Wed, spec)]).unwrap_err();
        assert!(err("9-5").contains("Wednesday"));
        assert!(err("17:00-09:00").contains("ends before it starts"));
        assert!(err("09:00-12:00,11:00-13:00").contains("overlaps"));
        assert!(err("nine").contains("HH:MM-HH:MM"));
    }

    #[test]
    fn working_hours_round_trip_through_serde() {
        let h = WorkingHours::from_weekday_specs(&[(Weekday::Tue, "08:00-12:00")]).expect("valid");
        let json = serde_json::to_string(&h).expect("serialises");
        assert_eq!(json, r#"{"tue":"08:00-12:00"}"#);
        let back: WorkingHours = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, h);
        assert!(serde_json::from_str::<WorkingHours>(r#"{"mon":"25:00-26:00"}"#).is_err());
    }

    #[test]
    fn working_hours_follow_local_time_across_dst() {
        let h = WorkingHours::from_weekday_specs(&[
            (Weekday::Fri, "09:00-17:00"),
            (Weekday::Mon, "09:00-17:00"),
        ])
        .expect("valid");
        // Fri 27 March 2026 is CET, Mon 30 March is CEST.
        let got = h.intervals(r(utc(2026, 3, 27, 0, 0), utc(2026, 3, 31, 0, 0)), Berlin);
        assert_eq!(
            got,
            [
                r(utc(2026, 3, 27, 8, 0), utc(2026, 3, 27, 16, 0)),
                r(utc(2026, 3, 30, 7, 0), utc(2026, 3, 30, 15, 0)),
            ]
        );
    }

    #[test]
    fn free_slots_respect_hours_busy_time_buffers_and_grid() {
        // Monday 1 June 2026, Berlin (UTC+2): working 07:00Z-15:00Z.
        let w = r(utc(2026, 6, 1, 0, 0), utc(2026, 6, 2, 0, 0));
        let busy = [
            bi(utc(2026, 6, 1, 8, 0), utc(2026, 6, 1, 9, 10), BUSY),
            bi(utc(2026, 6, 1, 12, 0), utc(2026, 6, 1, 12, 30), TENT),
        ];
        let opts = SlotOptions {
            duration: TimeDelta::minutes(60),
            buffer_after: TimeDelta::minutes(15),
            ..SlotOptions::default()
        };
        let now = utc(2026, 5, 1, 0, 0);
        let got = free_slots(&busy, w, &WorkingHours::default(), Berlin, &opts, now);
        assert_eq!(
            got,
            [
                r(utc(2026, 6, 1, 7, 0), utc(2026, 6, 1, 8, 0)),
                // Busy until 09:10, +15 min buffer = 09:25, aligned up to 09:30.
                r(utc(2026, 6, 1, 9, 30), utc(2026, 6, 1, 12, 0)),
                // Tentative until 12:30, +15 min = 12:45, aligned up to 13:00.
                r(utc(2026, 6, 1, 13, 0), utc(2026, 6, 1, 15, 0)),
            ]
        );
        let slots = candidate_slots(
            &got,
            TimeDelta::minutes(60),
            TimeDelta::minutes(30),
            Berlin,
            3,
        );
        assert_eq!(
            slots,
            [
                r(utc(2026, 6, 1, 7, 0), utc(2026, 6, 1, 8, 0)),
                r(utc(2026, 6, 1, 9, 30), utc(2026, 6, 1, 10, 30)),
                // Offers do not overlap: the next one starts where this one ends.
                r(utc(2026, 6, 1, 10, 30), utc(2026, 6, 1, 11, 30)),
            ]
        );
    }

    #[test]
    fn free_slots_honour_notice_and_horizon() {
        let w = r(utc(2026, 6, 1, 0, 0), utc(2026, 6, 6, 0, 0));
        let now = utc(2026, 6, 1, 7, 10);
        let opts = SlotOptions {
            min_notice: TimeDelta::hours(2),
            horizon: TimeDelta::days(1),
            ..SlotOptions::default()
        };
        let got = free_slots(&[], w, &WorkingHours::default(), Berlin, &opts, now);
        assert_eq!(
            got,
            [
                // Not before 09:10Z, aligned to 09:30Z (11:30 local).
                r(utc(2026, 6, 1, 9, 30), utc(2026, 6, 1, 15, 0)),
                // Not past now + 1 day.
                r(utc(2026, 6, 2, 7, 0), utc(2026, 6, 2, 7, 10)),
            ]
            .into_iter()
            .filter(|x| x.duration() >= opts.duration)
            .collect::<Vec<_>>()
        );
    }

    #[test]
    fn the_grid_is_local_time_even_in_a_half_hour_zone() {
        let tz: Tz = chrono_tz::Asia::Kolkata; // UTC+05:30
        // 03:40Z is 09:10 local; the next :00/:30 local is 09:30 = 04:00Z.
        assert_eq!(
            align_up(utc(2026, 6, 1, 3, 40), TimeDelta::minutes(30), tz),
            Some(utc(2026, 6, 1, 4, 0))
        );
        let hourly = align_up(utc(2026, 6, 1, 3, 40), TimeDelta::hours(1), tz);
        assert_eq!(hourly, Some(utc(2026, 6, 1, 4, 30)));
    }

    #[test]
    fn extreme_windows_and_options_neither_panic_nor_hang() {
        let everything = TimeRange {
            start: DateTime::<Utc>::MIN_UTC,
            end: DateTime::<Utc>::MAX_UTC,
        };
        let now = utc(2026, 6, 1, 0, 0);
        let wild = SlotOptions {
            duration: TimeDelta::MAX,
            granularity: TimeDelta::MAX,
            buffer_before: TimeDelta::MAX,
            buffer_after: TimeDelta::MIN,
            min_notice: TimeDelta::MIN,
            horizon: TimeDelta::MAX,
        };
        let busy = [bi(utc(2026, 6, 2, 0, 0), utc(2026, 6, 3, 0, 0), BUSY)];
        for tz in [
            Berlin,
            chrono_tz::Pacific::Kiritimati,
            chrono_tz::Etc::GMTPlus12,
        ] {
            let _ = free_slots(&busy, everything, &WorkingHours::default(), tz, &wild, now);
            let free = free_slots(
                &[],
                everything,
                &WorkingHours::default(),
                tz,
                &SlotOptions {
                    horizon: TimeDelta::MAX,
                    ..SlotOptions::default()
                },
                now,
            );
            assert!(!free.is_empty());
            let _ = candidate_slots(&free, TimeDelta::MAX, TimeDelta::MIN, tz, usize::MAX);
            let _ = align_up(DateTime::<Utc>::MAX_UTC, TimeDelta::minutes(30), tz);
            let _ = align_up(DateTime::<Utc>::MIN_UTC, TimeDelta::minutes(30), tz);
            let _ = merge_busy_ranges([(everything, BUSY)], everything);
        }
        assert!(
            free_slots(
                &[],
                everything,
                &WorkingHours::default(),
                Berlin,
                &SlotOptions {
                    min_notice: TimeDelta::MAX,
                    ..SlotOptions::default()
                },
                now
            )
            .is_empty()
        );
    }

    fn arb_busy() -> impl Strategy<Value = Vec<BusyInterval>> {
        proptest::collection::vec((0i64..(7 * 24 * 4), 0i64..24, any::<bool>()), 0..25).prop_map(
            |v| {
                v.into_iter()
                    .map(|(q, len, tent)| {
                        let start = utc(2026, 3, 23, 0, 0) + TimeDelta::minutes(15 * q);
                        BusyInterval {
                            start,
                            end: start + TimeDelta::minutes(15 * len),
                            status: if tent { TENT } else { BUSY },
                        }
                    })
                    .collect()
            },
        )
    }

    proptest! {
        #[test]
        fn merged_intervals_are_sorted_disjoint_non_empty_and_inside_the_window(
            busy in arb_busy(),
            a in 0i64..(5 * 24 * 4),
            len in 0i64..(4 * 24 * 4),
        ) {
            let w = r(utc(2026, 3, 23, 0, 0) + TimeDelta::minutes(15 * a),
                      utc(2026, 3, 23, 0, 0) + TimeDelta::minutes(15 * (a + len)));
            let merged = merge_busy_ranges(busy.iter().map(|b| (TimeRange { start: b.start, end: b.end }, b.status)), w);
            for m in &merged {
                prop_assert!(m.start < m.end);
                prop_assert!(w.start <= m.start && m.end <= w.end);
            }
            for p in merged.windows(2) {
                prop_assert!(p[0].end <= p[1].start);
                if p[0].status == p[1].status {
                    prop_assert!(p[0].end < p[1].start, "same-status neighbours must be merged");
                }
            }
            // Every busy input instant inside the window is reported busy.
            for b in busy.iter().filter(|b| b.status == BUSY) {
                if let Some(c) = (TimeRange { start: b.start, end: b.end }).intersect(&w) {
                    prop_assert!(merged.iter().any(|m| m.status == BUSY && m.start <= c.start && c.end <= m.end));
                }
            }
        }

        #[test]
        fn free_slots_avoid_buffered_busy_time_and_stay_in_working_hours(
            busy in arb_busy(),
            before in 0i64..4,
            after in 0i64..4,
            dur in 1i64..5,
            gran in prop_oneof![Just(15i64), Just(30), Just(60)],
            now_q in 0i64..(7 * 24 * 4),
        ) {
            let w = r(utc(2026, 3, 23, 0, 0), utc(2026, 3, 31, 0, 0));
            let now = utc(2026, 3, 20, 0, 0) + TimeDelta::minutes(15 * now_q);
            let opts = SlotOptions {
                duration: TimeDelta::minutes(15 * dur),
                granularity: TimeDelta::minutes(gran),
                buffer_before: TimeDelta::minutes(15 * before),
                buffer_after: TimeDelta::minutes(15 * after),
                min_notice: TimeDelta::minutes(90),
                horizon: TimeDelta::days(6),
            };
            let hours = WorkingHours::default();
            let free = free_slots(&busy, w, &hours, Berlin, &opts, now);
            let working = hours.intervals(w, Berlin);
            for f in &free {
                prop_assert!(f.duration() >= opts.duration);
                prop_assert!(f.start >= now + opts.min_notice && f.end <= now + opts.horizon);
                prop_assert!(working.iter().any(|h| h.start <= f.start && f.end <= h.end));
                let local = f.start.with_timezone(&Berlin);
                prop_assert_eq!(i64::from(local.minute()) % gran.min(60), 0);
                for b in &busy {
                    let widened = TimeRange { start: b.start - opts.buffer_before, end: b.end + opts.buffer_after };
                    prop_assert!(widened.intersect(f).is_none(), "{:?} overlaps {:?}", f, widened);
                }
            }
            prop_assert!(free.windows(2).all(|p| p[0].end < p[1].start));
            for s in candidate_slots(&free, opts.duration, opts.granularity, Berlin, 5) {
                prop_assert_eq!(s.duration(), opts.duration);
                prop_assert!(free.iter().any(|f| f.start <= s.start && s.end <= f.end));
            }
        }
    }
}
