//! The occurrence index: instances materialized over a horizon, so that a
//! busy or agenda query is a binary search and a short scan instead of an
//! expansion of every series.
//!
//! Owns the in-memory cache of expanded instances and keeps it in step with
//! the series it was built from. Must not interpret recurrence itself —
//! every instance comes from `expand::expand_series`, the single source of
//! truth — and must not touch storage or the clock.

use std::collections::{BTreeMap, HashSet};

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
            let mut items = Vec::new();
            self.visit_indexed(window, |i| {
                if let Some(s) = i.busy_status() {
                    items.push((i.range, s));
                }
            });
            return Ok(merge_busy_ranges(items, window));
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
