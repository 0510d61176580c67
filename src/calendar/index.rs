//! The occurrence index: instances materialized over a horizon, so that a
//! busy or agenda query is a binary search and a short scan instead of an
//! expansion of every series.
//!
//! Owns the in-memory cache of expanded instances and keeps it in step with
//! the series it was built from. Must not interpret recurrence itself —
//! every instance comes from `expand::expand_series`, the single source of
//! truth — and must not touch storage or the clock.

use std::collections::{BTreeMap, HashSet};
use std::sync::OnceLock;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;

use super::availability::merge_busy_ranges;
use super::expand::{expand_series, instance_order, overlaps_window};
use crate::domain::{BusyInterval, EventSeries, Instance, TimeRange};
use crate::error::RecurrenceError;

/// Instances longer than this are kept apart and scanned whole, so that one
/// month-long event does not make every query scan a month of instances.
/// 26 hours keeps all-day events (25 hours on a DST day) in the fast path.
const LONG_INSTANCE: TimeDelta = TimeDelta::hours(26);

/// Every instance of a set of series over a horizon, sorted by start.
#[derive(Debug, Clone)]
pub struct OccurrenceIndex {
    owner_tz: Tz,
    horizon: TimeRange,
    series: BTreeMap<String, EventSeries>,
    /// Instances overlapping the horizon lasting at most [`LONG_INSTANCE`],
    /// sorted by [`instance_order`].
    short: Vec<Instance>,
    /// The longest duration in `short`: how far before a window to look.
    max_short: TimeDelta,
    /// The longer instances overlapping the horizon, sorted by [`instance_order`].
    long: Vec<Instance>,
    /// The merged busy time over the whole horizon, computed on first use
    /// and dropped whenever the instances change: a busy query inside the
    /// horizon is then a binary search and a clip, not a merge (it is on
    /// the path of every free/busy answer).
    merged: OnceLock<Vec<BusyInterval>>,
}

impl OccurrenceIndex {
    /// Expands every series over `horizon`. Fails on the first series whose
    /// rules cannot be read (so later queries cannot fail on that account).
    pub fn new(
        series: Vec<EventSeries>,
        horizon: TimeRange,
        owner_tz: Tz,
    ) -> Result<Self, RecurrenceError> {
        let mut index = Self {
            owner_tz,
            horizon,
            series: BTreeMap::new(),
            short: Vec::new(),
            max_short: TimeDelta::zero(),
            long: Vec::new(),
            merged: OnceLock::new(),
        };
        // A UID given twice keeps its last series.
        for s in series {
            index.series.insert(s.uid.clone(), s);
        }
        let mut all = Vec::new();
        for s in index.series.values() {
            all.extend(expand_series(s, horizon, owner_tz)?);
        }
        all.sort_by(instance_order);
        index.insert_sorted(all);
        Ok(index)
    }

    /// The range over which instances are materialized.
    pub fn horizon(&self) -> TimeRange {
        self.horizon
    }

    pub fn owner_tz(&self) -> Tz {
        self.owner_tz
    }

    /// How many instances are materialized.
    pub fn len(&self) -> usize {
        self.short.len() + self.long.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn series(&self, uid: &str) -> Option<&EventSeries> {
        self.series.get(uid)
    }

    /// Every instance overlapping `window` (as [`expand_series`] defines
    /// overlap), sorted by [`instance_order`]. Parts of the window outside
    /// the horizon are expanded on demand, which is slower and is the only
    /// way this can fail (a runaway rule over a huge window).
    pub fn instances(&self, window: TimeRange) -> Result<Vec<Instance>, RecurrenceError> {
        let mut out = Vec::new();
        self.visit_indexed(window, |i| out.push(i.clone()));
        let outside = self.outside_parts(window);
        if outside.is_empty() {
            if self.long.iter().any(|i| overlaps_window(&i.range, &window)) {
                out.sort_by(instance_order);
            }
            return Ok(out);
        }
        self.add_outside(&mut out, &outside)?;
        out.sort_by(instance_order);
        Ok(out)
    }

    /// The merged busy time in `window`, as
    /// [`merge_busy_ranges`](super::availability::merge_busy_ranges) computes it.
    pub fn busy(&self, window: TimeRange) -> Result<Vec<BusyInterval>, RecurrenceError> {
        let outside = self.outside_parts(window);
        if outside.is_empty() {
            // Merging then clipping to the window equals clipping then
            // merging: union, "busy wins" and intersection commute.
            let merged = self.merged_horizon();
            let first = merged.partition_point(|b| b.end <= window.start);
            return Ok(merged[first..]
                .iter()
                .take_while(|b| b.start < window.end)
                .filter_map(|b| {
                    let r = TimeRange {
                        start: b.start,
                        end: b.end,
                    }
                    .intersect(&window)?;
                    Some(BusyInterval {
                        start: r.start,
                        end: r.end,
                        status: b.status,
                    })
                })
                .collect());
        }
        let instances = self.instances(window)?;
        Ok(merge_busy_ranges(
            instances
                .iter()
                .filter_map(|i| i.busy_status().map(|s| (i.range, s))),
            window,
        ))
    }

    /// Adds or replaces the series with `series.uid`, re-expanding it over
    /// the horizon. On error the index is left unchanged.
    pub fn update_series(&mut self, series: EventSeries) -> Result<(), RecurrenceError> {
        let mut fresh = expand_series(&series, self.horizon, self.owner_tz)?;
        self.drop_instances_of(&series.uid);
        self.series.insert(series.uid.clone(), series);
        fresh.sort_by(instance_order);
        self.insert_sorted(fresh);
        Ok(())
    }

    /// Forgets the series with `uid` and its instances; returns it if it was known.
    pub fn remove_series(&mut self, uid: &str) -> Option<EventSeries> {
        let removed = self.series.remove(uid)?;
        self.drop_instances_of(uid);
        Some(removed)
    }

    // -- internals ----------------------------------------------------------

    fn merged_horizon(&self) -> &[BusyInterval] {
        self.merged.get_or_init(|| {
            let mut items = Vec::new();
            self.visit_indexed(self.horizon, |i| {
                if let Some(s) = i.busy_status() {
                    items.push((i.range, s));
                }
            });
            merge_busy_ranges(items, self.horizon)
        })
    }

    /// Calls `f` on every materialized instance overlapping `window`, short
    /// ones in order, then long ones.
    fn visit_indexed(&self, window: TimeRange, mut f: impl FnMut(&Instance)) {
        let Some(inner) = clip_to(window, self.horizon) else {
            return;
        };
        let from = inner
            .start
            .checked_sub_signed(self.max_short)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let first = self.short.partition_point(|i| i.range.start < from);
        for i in &self.short[first..] {
            if i.range.start > window.end {
                break;
            }
            if overlaps_window(&i.range, &window) {
                f(i);
            }
        }
        for i in &self.long {
            if overlaps_window(&i.range, &window) {
                f(i);
            }
        }
    }

    /// The pieces of `window` the horizon does not cover (none, one or two).
    fn outside_parts(&self, window: TimeRange) -> Vec<TimeRange> {
        let h = self.horizon;
        if window.is_empty() {
            // An empty window at `t` is answered by the index when `t` lies in the horizon.
            return if h.contains(window.start) {
                Vec::new()
            } else {
                vec![window]
            };
        }
        let mut parts = Vec::new();
        if window.start < h.start {
            parts.push(TimeRange {
                start: window.start,
                end: window.end.min(h.start),
            });
        }
        if window.end > h.end {
            parts.push(TimeRange {
                start: window.start.max(h.end),
                end: window.end,
            });
        }
        parts.retain(|p| !p.is_empty());
        parts
    }

    /// Expands every series over the `outside` parts and adds the instances
    /// `out` does not already hold.
    fn add_outside(
        &self,
        out: &mut Vec<Instance>,
        outside: &[TimeRange],
    ) -> Result<(), RecurrenceError> {
        let mut seen: HashSet<(String, DateTime<Utc>)> = out
            .iter()
            .map(|i| (i.details.uid.clone(), i.recurrence_id))
            .collect();
        for part in outside {
            for s in self.series.values() {
                for i in expand_series(s, *part, self.owner_tz)? {
                    if seen.insert((i.details.uid.clone(), i.recurrence_id)) {
                        out.push(i);
                    }
                }
            }
        }
        Ok(())
    }

    fn drop_instances_of(&mut self, uid: &str) {
        self.merged = OnceLock::new();
        self.short.retain(|i| i.details.uid != uid);
        self.long.retain(|i| i.details.uid != uid);
        self.max_short = self
            .short
            .iter()
            .map(|i| i.range.duration())
            .max()
            .unwrap_or_else(TimeDelta::zero);
    }

    /// Merges `fresh` (sorted by [`instance_order`]) into the index.
    fn insert_sorted(&mut self, fresh: Vec<Instance>) {
        self.merged = OnceLock::new();
        let (long, short): (Vec<Instance>, Vec<Instance>) = fresh
            .into_iter()
            .partition(|i| i.range.duration() > LONG_INSTANCE);
        for i in &short {
            self.max_short = self.max_short.max(i.range.duration());
        }
        self.short = merge_sorted(std::mem::take(&mut self.short), short);
        self.long = merge_sorted(std::mem::take(&mut self.long), long);
    }
}

fn clip_to(window: TimeRange, horizon: TimeRange) -> Option<TimeRange> {
    if window.is_empty() {
        return horizon.contains(window.start).then_some(window);
    }
    window.intersect(&horizon)
}

fn merge_sorted(a: Vec<Instance>, b: Vec<Instance>) -> Vec<Instance> {
    if a.is_empty() {
        return b;
    }
    if b.is_empty() {
        return a;
    }
    let mut out = Vec::with_capacity(a.len() + b.len());
    let mut a = a.into_iter().peekable();
    let mut b = b.into_iter().peekable();
    loop {
        let take_a = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => instance_order(x, y).is_le(),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next = if take_a { a.next() } else { b.next() };
        out.extend(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::availability::merge_busy;
    use crate::calendar::expand::expand_all;
    use crate::domain::{
        Classification, EventComponent, EventEnd, EventStatus, IcalDuration, IcalTime,
        RecurrenceId, Transparency,
    };
    use chrono::NaiveDate;
    use chrono_tz::Europe::Berlin;
    use proptest::prelude::*;

    fn utc(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|d| d.and_hms_opt(h, 0, 0))
            .expect("valid test time")
            .and_utc()
    }

    fn win(a: DateTime<Utc>, b: DateTime<Utc>) -> TimeRange {
        TimeRange::new(a, b).expect("ordered test window")
    }

    fn component(uid: &str, start: DateTime<Utc>, secs: i64, rule: Option<&str>) -> EventComponent {
        EventComponent {
            uid: uid.into(),
            recurrence_id: None,
            start: IcalTime::Zoned {
                local: start.with_timezone(&Berlin).naive_local(),
                tz: Berlin,
            },
            end: EventEnd::Duration(IcalDuration {
                days: 0,
                seconds: secs,
            }),
            rrules: rule.map(|r| vec![r.to_string()]).unwrap_or_default(),
            rdates: Vec::new(),
            exdates: Vec::new(),
            status: EventStatus::Confirmed,
            transparency: Transparency::Opaque,
            class: Classification::Public,
            sequence: 0,
            summary: Some(uid.into()),
            location: None,
        }
    }

    fn single(uid: &str, start: DateTime<Utc>, secs: i64, rule: Option<&str>) -> EventSeries {
        EventSeries {
            uid: uid.into(),
            master: Some(component(uid, start, secs, rule)),
            overrides: Vec::new(),
        }
    }

    fn calendar() -> Vec<EventSeries> {
        let mut moved = single(
            "weekly",
            utc(2020, 1, 6, 9),
            3600,
            Some("FREQ=WEEKLY;BYDAY=MO,TH"),
        );
        let mut o = component("weekly", utc(2026, 6, 9, 13), 1800, None);
        o.recurrence_id = Some(RecurrenceId {
            time: IcalTime::Utc(utc(2026, 6, 8, 7)),
            this_and_future: false,
        });
        moved.overrides.push(o);
        let mut tentative = single("tentative", utc(2026, 6, 3, 8), 4 * 3600, None);
        if let Some(m) = tentative.master.as_mut() {
            m.status = EventStatus::Tentative;
        }
        vec![
            single("daily", utc(2016, 3, 1, 7), 1800, Some("FREQ=DAILY")),
            moved,
            tentative,
            single("conference", utc(2026, 5, 25, 6), 10 * 86_400, None),
            single(
                "monthly",
                utc(2018, 1, 31, 15),
                5400,
                Some("FREQ=MONTHLY;BYMONTHDAY=-1"),
            ),
            single("zero", utc(2026, 6, 2, 10), 0, None),
        ]
    }

    fn horizon() -> TimeRange {
        win(utc(2026, 5, 1, 0), utc(2026, 8, 1, 0))
    }

    #[test]
    fn index_queries_match_direct_expansion_inside_and_around_the_horizon() {
        let cal = calendar();
        let index = OccurrenceIndex::new(cal.clone(), horizon(), Berlin).expect("index");
        for w in [
            win(utc(2026, 6, 1, 0), utc(2026, 7, 1, 0)),
            win(utc(2026, 4, 20, 0), utc(2026, 5, 10, 0)),
            win(utc(2026, 7, 25, 0), utc(2026, 8, 10, 0)),
            win(utc(2026, 4, 1, 0), utc(2026, 9, 1, 0)),
            win(utc(2030, 1, 1, 0), utc(2030, 2, 1, 0)),
            win(utc(2026, 6, 2, 10), utc(2026, 6, 2, 10)),
        ] {
            let direct = expand_all(&cal, w, Berlin).expect("expand");
            assert_eq!(index.instances(w).expect("instances"), direct, "{w:?}");
            assert_eq!(
                index.busy(w).expect("busy"),
                merge_busy(&direct, w),
                "{w:?}"
            );
        }
    }

    #[test]
    fn a_long_event_starting_long_before_the_window_is_found() {
        let index = OccurrenceIndex::new(calendar(), horizon(), Berlin).expect("index");
        let got = index
            .instances(win(utc(2026, 6, 3, 20), utc(2026, 6, 3, 21)))
            .expect("instances");
        assert!(got.iter().any(|i| i.details.uid == "conference"));
    }

    #[test]
    fn updating_and_removing_a_series_refreshes_its_instances() {
        let mut index = OccurrenceIndex::new(calendar(), horizon(), Berlin).expect("index");
        let w = win(utc(2026, 6, 1, 0), utc(2026, 6, 8, 0));
        let before = index.instances(w).expect("instances").len();
        index
            .update_series(single(
                "daily",
                utc(2016, 3, 1, 7),
                1800,
                Some("FREQ=DAILY;INTERVAL=7"),
            ))
            .expect("update");
        let mut cal = calendar();
        cal[0] = single(
            "daily",
            utc(2016, 3, 1, 7),
            1800,
            Some("FREQ=DAILY;INTERVAL=7"),
        );
        assert_eq!(
            index.instances(w).expect("instances"),
            expand_all(&cal, w, Berlin).expect("expand")
        );
        assert!(index.instances(w).expect("instances").len() < before);
        assert!(index.remove_series("daily").is_some());
        assert!(
            index
                .instances(w)
                .expect("instances")
                .iter()
                .all(|i| i.details.uid != "daily")
        );
        index
            .update_series(single("new", utc(2026, 6, 4, 9), 3600, None))
            .expect("insert");
        assert!(
            index
                .instances(w)
                .expect("instances")
                .iter()
                .any(|i| i.details.uid == "new")
        );
        let broken = single("broken", utc(2026, 6, 4, 9), 3600, Some("FREQ=NEVER"));
        let count = index.len();
        assert!(index.update_series(broken).is_err());
        assert_eq!(index.len(), count);
    }

    #[test]
    #[ignore = "timing; run with --release --ignored"]
    fn thirty_day_busy_over_ten_thousand_events_is_fast() {
        let mut cal = Vec::new();
        for n in 0..9_500i64 {
            let start = utc(2025, 1, 1, 0) + TimeDelta::minutes(n * 97 % (700 * 24 * 60));
            cal.push(single(&format!("e{n}"), start, 3600, None));
        }
        for n in 0..500i64 {
            let start = utc(2016, 1, 4, 6) + TimeDelta::minutes(n * 13);
            let rule = [
                "FREQ=DAILY",
                "FREQ=WEEKLY;BYDAY=MO,WE,FR",
                "FREQ=MONTHLY;BYDAY=2TU",
            ][(n % 3) as usize];
            cal.push(single(&format!("r{n}"), start, 1800, Some(rule)));
        }
        let t = std::time::Instant::now();
        let index = OccurrenceIndex::new(cal, win(utc(2026, 1, 1, 0), utc(2027, 1, 1, 0)), Berlin)
            .expect("index");
        let build = t.elapsed();
        let w = win(utc(2026, 6, 1, 0), utc(2026, 7, 1, 0));
        let t = std::time::Instant::now();
        let runs = 200;
        for _ in 0..runs {
            std::hint::black_box(index.busy(w).expect("busy"));
        }
        let per = t.elapsed() / runs;
        eprintln!("build {build:?}, busy {per:?}, {} instances", index.len());
        assert!(
            per < std::time::Duration::from_millis(1),
            "busy took {per:?}"
        );
    }

    fn arb_calendar() -> impl Strategy<Value = Vec<EventSeries>> {
        let rule = prop_oneof![
            Just(None),
            Just(Some("FREQ=DAILY")),
            Just(Some("FREQ=WEEKLY;BYDAY=TU,TH")),
            Just(Some("FREQ=MONTHLY;BYDAY=-1FR")),
            Just(Some("FREQ=DAILY;COUNT=20")),
        ];
        proptest::collection::vec(
            (
                0i64..(3 * 365 * 24),
                prop_oneof![Just(0i64), Just(1800), Just(5 * 86_400)],
                rule,
            ),
            1..8,
        )
        .prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(n, (h, secs, rule))| {
                    single(
                        &format!("s{n}"),
                        utc(2024, 1, 1, 0) + TimeDelta::hours(h),
                        secs,
                        rule,
                    )
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn index_queries_equal_direct_expansion_for_random_windows(
            cal in arb_calendar(),
            a in 0i64..(3 * 365 * 24),
            len in 0i64..(40 * 24),
        ) {
            let h = win(utc(2025, 3, 1, 0), utc(2025, 9, 1, 0));
            let index = OccurrenceIndex::new(cal.clone(), h, Berlin).expect("index");
            let start = utc(2024, 6, 1, 0) + TimeDelta::hours(a);
            let w = win(start, start + TimeDelta::hours(len));
            let direct = expand_all(&cal, w, Berlin).expect("expand");
            prop_assert_eq!(index.instances(w).expect("instances"), direct.clone());
            prop_assert_eq!(index.busy(w).expect("busy"), merge_busy(&direct, w));
        }
    }
}
