//! Cutting the owner's calendar down to what a decision allows.
//!
//! Owns the disclosure levels' meaning: everything is clipped to
//! `[now, now + window)` ∩ the requested window ∩ the rule's hours (in the
//! owner's zone, across DST); busy blocks are rounded outward to the rule's
//! grid so they never shrink; private and confidential events block time but
//! never show a title or place. Pure: takes busy time the caller already
//! computed (so nothing is expanded twice) and returns values. Must not
//! decide who may see what (that is [`evaluate`](mod@super::evaluate)) nor write the
//! disclosure log (the caller logs [`Disclosure::summary`]).

use chrono::{DateTime, Duration, NaiveTime, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::evaluate::{Decision, Limits, Outcome, Request};
use super::{Action, Hours, Level};
use crate::calendar::availability::{
    SlotOptions, WorkingHours, align_up, candidate_slots, free_slots, merge_busy_ranges,
};
use crate::domain::time::local_to_utc;
use crate::domain::{BusyInterval, BusyStatus, Instance, TimeRange};

/// What the owner's calendar looks like, as far as a disclosure needs it.
#[derive(Debug, Clone, Copy)]
pub struct CalendarView<'a> {
    /// Merged busy and tentative time (as `OccurrenceIndex::busy` returns
    /// it), covering at least [`allowed_window`].
    pub busy: &'a [BusyInterval],
    /// The instances over the same window; read only at the `details` level
    /// (pass `&[]` otherwise).
    pub instances: &'a [Instance],
    pub working_hours: &'a WorkingHours,
    pub owner_tz: Tz,
    /// The owner's slot settings (grid, buffers, notice) for the `slots` level.
    pub slot_options: SlotOptions,
}

/// A public event as the `details` level shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisclosedEvent {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub status: BusyStatus,
    pub summary: Option<String>,
    pub location: Option<String>,
}

/// Exactly what a peer is told about the owner's time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "level")]
pub enum Disclosure {
    /// Denied, rate-limited, waiting for the owner, level `none`, or not a free/busy request.
    Nothing,
    /// Whether `slot` (the first proposed one) works: `Some(true)` free,
    /// `Some(false)` busy, `None` not disclosed (outside what the rule shows).
    YesNo {
        slot: Option<TimeRange>,
        answer: Option<bool>,
    },
    /// Free slots of the requested length inside `shown`.
    Slots {
        window: Option<TimeRange>,
        shown: Vec<TimeRange>,
        slots: Vec<TimeRange>,
    },
    /// Busy and tentative time inside `shown`; outside `shown` nothing is said.
    Busy {
        window: Option<TimeRange>,
        shown: Vec<TimeRange>,
        busy: Vec<BusyInterval>,
    },
    /// As `Busy`, plus titles and places of the public events.
    Details {
        window: Option<TimeRange>,
        shown: Vec<TimeRange>,
        busy: Vec<BusyInterval>,
        events: Vec<DisclosedEvent>,
    },
}

impl Disclosure {
    /// A one-line account for the disclosure log: counts and the window, never titles.
    pub fn summary(&self) -> String {
        let window = |w: &Option<TimeRange>| match w {
            Some(w) => format!("{}..{}", short(w.start), short(w.end)),
            None => "no time".into(),
        };
        let plural = |n: usize, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
        match self {
            Disclosure::Nothing => "nothing".into(),
            Disclosure::YesNo { slot: None, .. } => "yes-no: no slot proposed".into(),
            Disclosure::YesNo {
                slot: Some(s),
                answer,
            } => format!(
                "yes-no: {} for {}",
                match answer {
                    Some(true) => "yes",
                    Some(false) => "no",
                    None => "not disclosed",
                },
                window(&Some(*s))
            ),
            Disclosure::Slots {
                window: w, slots, ..
            } => {
                format!("slots: {} in {}", plural(slots.len(), "slot"), window(w))
            }
            Disclosure::Busy {
                window: w, busy, ..
            } => {
                format!("busy: {} in {}", plural(busy.len(), "interval"), window(w))
            }
            Disclosure::Details {
                window: w,
                busy,
                events,
                ..
            } => format!(
                "details: {} and {} in {}",
                plural(busy.len(), "interval"),
                plural(events.len(), "titled event"),
                window(w)
            ),
        }
    }

    pub fn level(&self) -> Level {
        match self {
            Disclosure::Nothing => Level::None,
            Disclosure::YesNo { .. } => Level::YesNo,
            Disclosure::Slots { .. } => Level::Slots,
            Disclosure::Busy { .. } => Level::Busy,
            Disclosure::Details { .. } => Level::Details,
        }
    }
}

fn short(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%MZ").to_string()
}

/// The stretch of time a decision lets the peer learn about:
/// `[now, now + window)` ∩ the requested window; `None` when nothing is
/// allowed. Query busy time for this window before calling [`disclose`].
pub fn allowed_window(
    decision: &Decision,
    request: &Request,
    now: DateTime<Utc>,
) -> Option<TimeRange> {
    let limits = decision.limits.as_ref()?;
    window_of(limits, request, now)
}

fn window_of(limits: &Limits, request: &Request, now: DateTime<Utc>) -> Option<TimeRange> {
    let end = limits
        .window
        .and_then(|w| now.checked_add_signed(w))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    let rule_window = TimeRange::new(now, end)?;
    match request.window {
        Some(w) => w.intersect(&rule_window),
        None => (!rule_window.is_empty()).then_some(rule_window),
    }
}

/// The window cut to the rule's hours: the stretches the peer may learn
/// about (or book in, for meetings), sorted and disjoint.
pub fn allowed_ranges(
    decision: &Decision,
    request: &Request,
    working_hours: &WorkingHours,
    owner_tz: Tz,
    now: DateTime<Utc>,
) -> Vec<TimeRange> {
    match decision.limits.as_ref() {
        Some(limits) => match window_of(limits, request, now) {
            Some(w) => hours_within(&limits.hours, w, working_hours, owner_tz),
            None => Vec::new(),
        },
        None => Vec::new(),
    }
}

/// Whether a meeting at `slot` lies inside what an allowing decision admits
/// (window and hours); the negotiation refuses or counters otherwise.
pub fn meeting_fits(
    decision: &Decision,
    slot: TimeRange,
    working_hours: &WorkingHours,
    owner_tz: Tz,
    now: DateTime<Utc>,
) -> bool {
    let request = Request {
        window: Some(slot),
        ..Request::new("", Action::ProposeMeeting)
    };
    decision.allows()
        && allowed_ranges(decision, &request, working_hours, owner_tz, now)
            .iter()
            .any(|r| r.start <= slot.start && slot.end <= r.end)
}

fn hours_within(
    hours: &Hours,
    window: TimeRange,
    working: &WorkingHours,
    tz: Tz,
) -> Vec<TimeRange> {
    match hours {
        Hours::Any => vec![window],
        Hours::Working => working.intervals(window, tz),
        Hours::Daily(h) => h.intervals(window, tz),
    }
}

/// What the peer is told for `request` under `decision`: nothing unless the
/// decision allows free/busy at some level.
pub fn disclose(
    decision: &Decision,
    request: &Request,
    view: &CalendarView<'_>,
    now: DateTime<Utc>,
) -> Disclosure {
    let Some(limits) = decision.limits.as_ref() else {
        return Disclosure::Nothing;
    };
    if decision.outcome != Outcome::Allow
        || request.action != Action::Freebusy
        || decision.level == Level::None
    {
        return Disclosure::Nothing;
    }
    let window = window_of(limits, request, now);
    let shown = match window {
        Some(w) => hours_within(&limits.hours, w, view.working_hours, view.owner_tz),
        None => Vec::new(),
    };
    match decision.level {
        Level::None => Disclosure::Nothing,
        Level::YesNo => {
            let slot = request.proposed.first().copied();
            let answer = slot.and_then(|s| yes_no(s, &shown, view.busy));
            Disclosure::YesNo { slot, answer }
        }
        Level::Slots => {
            let busy = match window {
                Some(w) => rounded_busy(view.busy, w, limits.granularity, view.owner_tz),
                None => Vec::new(),
            };
            let slots = slots(limits, request, view, window, &busy, now);
            Disclosure::Slots {
                window,
                shown,
                slots,
            }
        }
        Level::Busy | Level::Details => {
            let busy = match window {
                Some(w) => clip_busy(
                    &rounded_busy(view.busy, w, limits.granularity, view.owner_tz),
                    &shown,
                ),
                None => Vec::new(),
            };
            if decision.level == Level::Busy {
                return Disclosure::Busy {
                    window,
                    shown,
                    busy,
                };
            }
            let events = match window {
                Some(w) => details(view, w, &shown, limits.granularity),
                None => Vec::new(),
            };
            Disclosure::Details {
                window,
                shown,
                busy,
                events,
            }
        }
    }
}

/// `Some(false)` when the slot meets busy time the peer may learn about,
/// `Some(true)` when it lies wholly inside what is shown and meets none,
/// otherwise `None`: an answer must never speak for time outside the rule.
fn yes_no(slot: TimeRange, shown: &[TimeRange], busy: &[BusyInterval]) -> Option<bool> {
    if slot.is_empty() {
        return None;
    }
    let meets_busy = shown.iter().filter_map(|s| s.intersect(&slot)).any(|part| {
        busy.iter().any(|b| {
            TimeRange {
                start: b.start,
                end: b.end,
            }
            .overlaps(&part)
        })
    });
    if meets_busy {
        return Some(false);
    }
    shown
        .iter()
        .any(|s| s.start <= slot.start && slot.end <= s.end)
        .then_some(true)
}

fn slots(
    limits: &Limits,
    request: &Request,
    view: &CalendarView<'_>,
    window: Option<TimeRange>,
    busy: &[BusyInterval],
    now: DateTime<Utc>,
) -> Vec<TimeRange> {
    let Some(window) = window else {
        return Vec::new();
    };
    let duration = request
        .duration
        .filter(|d| *d > Duration::zero())
        .unwrap_or(Duration::minutes(30));
    let granularity = limits.granularity.unwrap_or(view.slot_options.granularity);
    let opts = SlotOptions {
        duration,
        granularity,
        ..view.slot_options
    };
    let all_day;
    let hours = match &limits.hours {
        Hours::Working => view.working_hours,
        Hours::Daily(h) => h.as_ref(),
        Hours::Any => {
            all_day = whole_days();
            &all_day
        }
    };
    let free = free_slots(busy, window, hours, view.owner_tz, &opts, now);
    candidate_slots(
        &free,
        duration,
        granularity,
        view.owner_tz,
        limits.max_slots,
    )
}

fn whole_days() -> WorkingHours {
    let mut h = WorkingHours::none();
    for day in [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ] {
        // 00:00-24:00 is always a valid span.
        let _ = h.set_day(day, vec![(NaiveTime::MIN, NaiveTime::MIN)]);
    }
    h
}

/// Busy time clipped to `window`, each block widened outward to the grid
/// and merged again, so that blocks never shrink and never show finer
/// boundaries than the grid.
fn rounded_busy(
    busy: &[BusyInterval],
    window: TimeRange,
    granularity: Option<Duration>,
    tz: Tz,
) -> Vec<BusyInterval> {
    let overlapping = busy
        .iter()
        .filter(|b| b.start < window.end && window.start < b.end);
    let Some(g) = granularity.filter(|g| *g > Duration::zero()) else {
        return overlapping
            .filter_map(|b| {
                let r = TimeRange::new(b.start.max(window.start), b.end.min(window.end))?;
                (!r.is_empty()).then_some(BusyInterval {
                    start: r.start,
                    end: r.end,
                    status: b.status,
                })
            })
            .collect();
    };
    let grid = Grid::new(g, tz);
    let items: Vec<(TimeRange, BusyStatus)> = overlapping
        .map(|b| {
            // Rounding the clipped block keeps whatever lies just outside the
            // window from showing up inside it.
            let start = b.start.max(window.start);
            let end = b.end.min(window.end);
            let range = TimeRange {
                start: grid.down(start),
                end: grid.up(end),
            };
            (range, b.status)
        })
        .collect();
    merge_busy_ranges(items, window)
}

/// Busy intervals (sorted by start) cut to `shown` (sorted, disjoint).
fn clip_busy(busy: &[BusyInterval], shown: &[TimeRange]) -> Vec<BusyInterval> {
    let mut out = Vec::with_capacity(busy.len());
    let mut j = 0;
    for b in busy {
        while j < shown.len() && shown[j].end <= b.start {
            j += 1;
        }
        let mut k = j;
        while k < shown.len() && shown[k].start < b.end {
            let start = b.start.max(shown[k].start);
            let end = b.end.min(shown[k].end);
            if start < end {
                out.push(BusyInterval {
                    start,
                    end,
                    status: b.status,
                });
            }
            k += 1;
        }
    }
    out
}

fn details(
    view: &CalendarView<'_>,
    window: TimeRange,
    shown: &[TimeRange],
    granularity: Option<Duration>,
) -> Vec<DisclosedEvent> {
    let grid = granularity
        .filter(|g| *g > Duration::zero())
        .map(|g| Grid::new(g, view.owner_tz));
    let mut out = Vec::new();
    for i in view.instances {
        let Some(status) = i.busy_status() else {
            continue;
        };
        if i.details.class.hides_details() {
            continue;
        }
        let Some(r) = i.range.intersect(&window) else {
            continue;
        };
        let r = match grid.as_ref() {
            Some(g) => TimeRange {
                start: g.down(r.start).max(window.start),
                end: g.up(r.end).min(window.end),
            },
            None => r,
        };
        for s in shown {
            if let Some(part) = r.intersect(s) {
                out.push(DisclosedEvent {
                    start: part.start,
                    end: part.end,
                    status,
                    summary: i.details.summary.clone(),
                    location: i.details.location.clone(),
                });
            }
        }
    }
    out.sort_by_key(|a| (a.start, a.end));
    out
}

/// A wall-clock grid in the owner's zone: multiples of `step` from each
/// local midnight, as `align_up` reads it.
struct Grid {
    step: i64,
    tz: Tz,
}

impl Grid {
    fn new(step: Duration, tz: Tz) -> Self {
        Self {
            step: step.num_seconds().max(1),
            tz,
        }
    }

    /// The last grid point at or before `t` (or `t` itself where a DST
    /// change leaves no such point on that day, which only rounds less).
    fn down(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        use chrono::{LocalResult, TimeZone};
        let local = t.with_timezone(&self.tz).naive_local();
        let secs = i64::from(local.time().num_seconds_from_midnight());
        let floored = secs - secs % self.step;
        if floored == secs && local.nanosecond() == 0 {
            return t;
        }
        let grid_point = local.date().and_time(NaiveTime::MIN) + Duration::seconds(floored);
        let candidate = match self.tz.from_local_datetime(&grid_point) {
            LocalResult::Single(c) => c.with_timezone(&Utc),
            // In the repeated hour take the later reading that is not after
            // `t`, so that the block grows by as little as the grid allows.
            LocalResult::Ambiguous(a, b) => {
                let (a, b) = (a.with_timezone(&Utc), b.with_timezone(&Utc));
                if a.max(b) <= t { a.max(b) } else { a.min(b) }
            }
            LocalResult::None => local_to_utc(grid_point, self.tz),
        };
        if candidate <= t { candidate } else { t }
    }

    fn up(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        align_up(t, Duration::seconds(self.step), self.tz).unwrap_or(t)
    }
}

#[cfg(test)]
#[allow(dead_code, unreachable_pub)]
#[path = "../../benches/support/calendar_gen.rs"]
mod calendar_gen;

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::TimeZone;

    use super::*;
    use crate::domain::{Classification, EventStatus, InstanceDetails, Transparency};
    use crate::policy::evaluate::evaluate;
    use crate::policy::{PolicySet, parse_files};

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    fn range(a: DateTime<Utc>, b: DateTime<Utc>) -> TimeRange {
        TimeRange { start: a, end: b }
    }

    pub(crate) fn instance(
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        summary: &str,
        class: Classification,
        status: EventStatus,
    ) -> Instance {
        Instance {
            range: range(start, end),
            status,
            transparency: Transparency::Opaque,
            all_day: false,
            recurrence_id: start,
            details: Arc::new(InstanceDetails {
                uid: format!("{summary}@test"),
                summary: Some(summary.into()),
                location: Some(format!("{summary} room")),
                class,
            }),
        }
    }

    fn policy(rule_body: &str) -> PolicySet {
        let text = format!(
            "[[rule]]\nname = \"r\"\nwho = \"anyone\"\naction = \"freebusy\"\ndecision = \"allow\"\n{rule_body}\n"
        );
        match parse_files(&[("t.toml".into(), text)], Tz::UTC) {
            Ok(s) => s,
            Err(e) => panic!("{e:?}"),
        }
    }

    struct Owner {
        instances: Vec<Instance>,
        busy: Vec<BusyInterval>,
        hours: WorkingHours,
        tz: Tz,
    }

    impl Owner {
        fn new(tz: Tz, instances: Vec<Instance>) -> Self {
            let all = range(at(2000, 1, 1, 0, 0), at(2100, 1, 1, 0, 0));
            let busy = crate::calendar::availability::merge_busy(&instances, all);
            Self {
                instances,
                busy,
                hours: WorkingHours::default(),
                tz,
            }
        }

        fn view(&self) -> CalendarView<'_> {
            CalendarView {
                busy: &self.busy,
                instances: &self.instances,
                working_hours: &self.hours,
                owner_tz: self.tz,
                slot_options: SlotOptions::default(),
            }
        }

        fn tell(&self, set: &PolicySet, request: &Request, now: DateTime<Utc>) -> Disclosure {
            let d = evaluate(set, &[], request, now, &|_| 0);
            disclose(&d, request, &self.view(), now)
        }
    }

    // Monday 2026-01-12, UTC owner.
    fn monday(h: u32, m: u32) -> DateTime<Utc> {
        at(2026, 1, 12, h, m)
    }

    fn busy_of(d: &Disclosure) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        match d {
            Disclosure::Busy { busy, .. } | Disclosure::Details { busy, .. } => {
                busy.iter().map(|b| (b.start, b.end)).collect()
            }
            _ => Vec::new(),
        }
    }

    #[test]
    fn busy_level_shows_blocks_inside_working_hours_rounded_outward() {
        let owner = Owner::new(
            Tz::UTC,
            vec![
                instance(
                    monday(10, 10),
                    monday(10, 50),
                    "Dentist",
                    Classification::Public,
                    EventStatus::Confirmed,
                ),
                instance(
                    monday(16, 45),
                    monday(18, 0),
                    "Late",
                    Classification::Public,
                    EventStatus::Confirmed,
                ),
                instance(
                    monday(7, 0),
                    monday(8, 0),
                    "Early",
                    Classification::Public,
                    EventStatus::Confirmed,
                ),
            ],
        );
        let set =
            policy("level = \"busy\"\nwindow = \"1d\"\nhours = \"working\"\ngranularity = \"30m\"");
        let d = owner.tell(
            &set,
            &Request::new("x@y.example", Action::Freebusy),
            monday(6, 0),
        );
        assert_eq!(
            busy_of(&d),
            vec![
                (monday(10, 0), monday(11, 0)),
                (monday(16, 30), monday(17, 0))
            ]
        );
        assert_eq!(
            d.summary(),
            "busy: 2 intervals in 2026-01-12T06:00Z..2026-01-13T06:00Z"
        );
        let Disclosure::Busy { shown, .. } = &d else {
            panic!("{d:?}")
        };
        assert_eq!(shown, &vec![range(monday(9, 0), monday(17, 0))]);
    }

    #[test]
    fn nothing_is_shown_before_now_nor_past_the_window_nor_outside_the_request() {
        let owner = Owner::new(
            Tz::UTC,
            vec![instance(
                monday(9, 0),
                at(2026, 1, 20, 0, 0),
                "Trip",
                Classification::Public,
                EventStatus::Confirmed,
            )],
        );
        let set = policy("level = \"busy\"\nwindow = \"2d\"");
        let mut r = Request::new("x@y.example", Action::Freebusy);
        let d = owner.tell(&set, &r, monday(12, 7));
        assert_eq!(busy_of(&d), vec![(monday(12, 7), at(2026, 1, 14, 12, 7))]);
        r.window = Some(range(at(2026, 1, 13, 0, 0), at(2026, 1, 13, 1, 0)));
        assert_eq!(
            busy_of(&owner.tell(&set, &r, monday(12, 7))),
            vec![(at(2026, 1, 13, 0, 0), at(2026, 1, 13, 1, 0))]
        );
        r.window = Some(range(at(2026, 2, 1, 0, 0), at(2026, 2, 2, 0, 0)));
        assert_eq!(busy_of(&owner.tell(&set, &r, monday(12, 7))), vec![]);
    }

    #[test]
    fn details_show_titles_of_public_events_only_and_private_ones_still_block() {
        let owner = Owner::new(
            Tz::UTC,
            vec![
                instance(
                    monday(10, 0),
                    monday(11, 0),
                    "Standup",
                    Classification::Public,
                    EventStatus::Confirmed,
                ),
                instance(
                    monday(12, 0),
                    monday(13, 0),
                    "Therapy",
                    Classification::Private,
                    EventStatus::Confirmed,
                ),
                instance(
                    monday(14, 0),
                    monday(15, 0),
                    "Board",
                    Classification::Confidential,
                    EventStatus::Tentative,
                ),
            ],
        );
        let set = policy("level = \"details\"\nwindow = \"1d\"");
        let d = owner.tell(
            &set,
            &Request::new("x@y.example", Action::Freebusy),
            monday(8, 0),
        );
        let Disclosure::Details { busy, events, .. } = &d else {
            panic!("{d:?}")
        };
        assert_eq!(busy.len(), 3);
        assert_eq!(busy[2].status, BusyStatus::Tentative);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].summary.as_deref(), Some("Standup"));
        let json = serde_json::to_string(&d).unwrap_or_default();
        assert!(
            !json.contains("Therapy") && !json.contains("Board"),
            "{json}"
        );
        assert!(!d.summary().contains("Standup"));
    }

    #[test]
    fn busy_level_never_reveals_titles() {
        let owner = Owner::new(
            Tz::UTC,
            vec![instance(
                monday(10, 0),
                monday(11, 0),
                "Standup",
                Classification::Public,
                EventStatus::Confirmed,
            )],
        );
        let set = policy("level = \"busy\"");
        let d = owner.tell(
            &set,
            &Request::new("x@y.example", Action::Freebusy),
            monday(8, 0),
        );
        let json = serde_json::to_string(&d).unwrap_or_default();
        assert!(!json.contains("Standup"), "{json}");
    }

    #[test]
    fn yes_no_answers_only_the_first_proposed_slot() {
        let owner = Owner::new(
            Tz::UTC,
            vec![instance(
                monday(10, 0),
                monday(11, 0),
                "X",
                Classification::Public,
                EventStatus::Tentative,
            )],
        );
        let set = policy("level = \"yes-no\"\nhours = \"working\"");
        let ask = |slots: Vec<TimeRange>| {
            let mut r = Request::new("x@y.example", Action::Freebusy);
            r.proposed = slots;
            match owner.tell(&set, &r, monday(8, 0)) {
                Disclosure::YesNo { answer, .. } => answer,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(
            ask(vec![range(monday(10, 30), monday(11, 30))]),
            Some(false)
        );
        assert_eq!(
            ask(vec![
                range(monday(11, 0), monday(11, 30)),
                range(monday(10, 0), monday(11, 0))
            ]),
            Some(true)
        );
        // Outside working hours: not disclosed either way.
        assert_eq!(ask(vec![range(monday(17, 0), monday(17, 30))]), None);
        assert_eq!(ask(vec![range(monday(16, 30), monday(17, 30))]), None);
        // Before now.
        assert_eq!(ask(vec![range(monday(7, 0), monday(7, 30))]), None);
        assert_eq!(ask(vec![]), None);
    }

    #[test]
    fn slots_are_grid_aligned_free_and_at_most_max_slots() {
        let owner = Owner::new(
            Tz::UTC,
            vec![instance(
                monday(9, 0),
                monday(10, 10),
                "X",
                Classification::Public,
                EventStatus::Confirmed,
            )],
        );
        let set = policy("level = \"slots\"\nhours = \"working\"\ngranularity = \"30m\"");
        let mut r = Request::new("x@y.example", Action::Freebusy);
        r.duration = Some(Duration::hours(1));
        let Disclosure::Slots { slots, .. } = owner.tell(&set, &r, monday(8, 0)) else {
            panic!("slots")
        };
        assert_eq!(
            slots,
            vec![
                range(monday(10, 30), monday(11, 30)),
                range(monday(11, 30), monday(12, 30)),
                range(monday(12, 30), monday(13, 30)),
            ]
        );
        let set = policy("level = \"slots\"\nmax_slots = 1");
        let Disclosure::Slots { slots, .. } = owner.tell(&set, &r, monday(8, 0)) else {
            panic!("slots")
        };
        assert_eq!(slots, vec![range(monday(8, 0), monday(9, 0))]);
    }

    #[test]
    fn hours_follow_the_owners_wall_clock_across_dst() {
        // Berlin: clocks go forward on Sunday 2026-03-29. 09:00 local is
        // 08:00Z on Friday the 27th and 07:00Z on Monday the 30th.
        let tz = chrono_tz::Europe::Berlin;
        let owner = Owner::new(
            tz,
            vec![
                instance(
                    at(2026, 3, 27, 7, 50),
                    at(2026, 3, 27, 8, 10),
                    "Fri",
                    Classification::Public,
                    EventStatus::Confirmed,
                ),
                instance(
                    at(2026, 3, 30, 6, 50),
                    at(2026, 3, 30, 7, 10),
                    "Mon",
                    Classification::Public,
                    EventStatus::Confirmed,
                ),
            ],
        );
        let set =
            policy("level = \"busy\"\nhours = \"working\"\ngranularity = \"1h\"\nwindow = \"7d\"");
        let d = owner.tell(
            &set,
            &Request::new("x@y.example", Action::Freebusy),
            at(2026, 3, 26, 0, 0),
        );
        assert_eq!(
            busy_of(&d),
            vec![
                (at(2026, 3, 27, 8, 0), at(2026, 3, 27, 9, 0)),
                (at(2026, 3, 30, 7, 0), at(2026, 3, 30, 8, 0)),
            ]
        );
    }

    #[test]
    fn in_the_repeated_autumn_hour_blocks_round_to_the_nearer_grid_point() {
        // Berlin 2026-10-25: 02:00-03:00 happens twice; 00:40Z is 02:40
        // CEST, 01:40Z is 02:40 CET. Rounding down to 02:30 must stay within
        // the same reading: 00:30Z and 01:30Z.
        let grid = Grid::new(Duration::minutes(30), chrono_tz::Europe::Berlin);
        assert_eq!(grid.down(at(2026, 10, 25, 0, 40)), at(2026, 10, 25, 0, 30));
        assert_eq!(grid.down(at(2026, 10, 25, 1, 40)), at(2026, 10, 25, 1, 30));
        assert_eq!(grid.up(at(2026, 10, 25, 1, 40)), at(2026, 10, 25, 2, 0));
    }

    #[test]
    fn the_grid_is_the_owners_local_grid() {
        // Kolkata is UTC+05:30: a 1h grid there falls on :30 UTC.
        let tz = chrono_tz::Asia::Kolkata;
        let owner = Owner::new(
            tz,
            vec![instance(
                monday(5, 40),
                monday(5, 50),
                "X",
                Classification::Public,
                EventStatus::Confirmed,
            )],
        );
        let set = policy("level = \"busy\"\ngranularity = \"1h\"");
        let d = owner.tell(
            &set,
            &Request::new("x@y.example", Action::Freebusy),
            monday(0, 0),
        );
        assert_eq!(busy_of(&d), vec![(monday(5, 30), monday(6, 30))]);
    }

    #[test]
    fn denied_asked_and_other_actions_disclose_nothing() {
        let owner = Owner::new(Tz::UTC, vec![]);
        let set = policy("level = \"busy\"");
        let now = monday(8, 0);
        let view = owner.view();
        let none = evaluate(
            &PolicySet::default(),
            &[],
            &Request::new("x@y.example", Action::Freebusy),
            now,
            &|_| 0,
        );
        assert_eq!(
            disclose(
                &none,
                &Request::new("x@y.example", Action::Freebusy),
                &view,
                now
            ),
            Disclosure::Nothing
        );
        let limited = evaluate(
            &set,
            &[],
            &Request::new("x@y.example", Action::Freebusy),
            now,
            &|_| 99,
        );
        assert_eq!(
            disclose(
                &limited,
                &Request::new("x@y.example", Action::Freebusy),
                &view,
                now
            ),
            Disclosure::Nothing
        );
        let level_none = policy("level = \"none\"");
        let d = evaluate(
            &level_none,
            &[],
            &Request::new("x@y.example", Action::Freebusy),
            now,
            &|_| 0,
        );
        assert_eq!(
            disclose(
                &d,
                &Request::new("x@y.example", Action::Freebusy),
                &view,
                now
            ),
            Disclosure::Nothing
        );
        assert_eq!(Disclosure::Nothing.summary(), "nothing");
    }

    #[test]
    fn a_meeting_fits_only_inside_the_rules_hours_and_window() {
        let text = "[[rule]]\nname = \"m\"\nwho = \"anyone\"\naction = \"propose-meeting\"\ndecision = \"allow\"\nhours = \"working\"\nwindow = \"7d\"\n";
        let set = parse_files(&[("t.toml".into(), text.into())], Tz::UTC).unwrap_or_default();
        let now = monday(8, 0);
        let d = evaluate(
            &set,
            &[],
            &Request::new("x@y.example", Action::ProposeMeeting),
            now,
            &|_| 0,
        );
        let hours = WorkingHours::default();
        assert!(meeting_fits(
            &d,
            range(monday(9, 0), monday(10, 0)),
            &hours,
            Tz::UTC,
            now
        ));
        assert!(!meeting_fits(
            &d,
            range(monday(16, 30), monday(17, 30)),
            &hours,
            Tz::UTC,
            now
        ));
        assert!(!meeting_fits(
            &d,
            range(at(2026, 1, 20, 9, 0), at(2026, 1, 20, 10, 0)),
            &hours,
            Tz::UTC,
            now
        ));
    }

    // -- properties ---------------------------------------------------------

    use proptest::prelude::*;

    fn zones() -> impl Strategy<Value = Tz> {
        prop_oneof![
            Just(Tz::UTC),
            Just(chrono_tz::Europe::Berlin),
            Just(chrono_tz::America::New_York),
            Just(chrono_tz::Asia::Kolkata),
        ]
    }

    /// Around the March DST changes in Europe and North America.
    fn base() -> DateTime<Utc> {
        at(2026, 3, 20, 0, 0)
    }

    fn calendar() -> impl Strategy<Value = Vec<Instance>> {
        prop::collection::vec((0i64..20 * 1440, 1i64..600, any::<bool>(), 0u8..5), 0..40).prop_map(
            |events| {
                events
                    .into_iter()
                    .map(|(start, len, tentative, kind)| {
                        let s = base() + Duration::minutes(start);
                        let status = if tentative {
                            EventStatus::Tentative
                        } else {
                            EventStatus::Confirmed
                        };
                        let class = if kind == 1 {
                            Classification::Private
                        } else {
                            Classification::Public
                        };
                        let mut i = instance(s, s + Duration::minutes(len), "E", class, status);
                        if kind == 0 {
                            i.transparency = Transparency::Transparent;
                        }
                        i
                    })
                    .collect()
            },
        )
    }

    fn rule_text(level: &str, window_days: u32, hours: u8, grid: u8) -> String {
        let hours = ["working", "any", "08:00-20:00", "22:00-24:00"][usize::from(hours % 4)];
        let grid = [
            "",
            "granularity = \"15m\"",
            "granularity = \"30m\"",
            "granularity = \"1h\"",
            "granularity = \"2h\"",
        ][usize::from(grid % 5)];
        format!("level = \"{level}\"\nwindow = \"{window_days}d\"\nhours = \"{hours}\"\n{grid}")
    }

    fn ranges_of(busy: &[BusyInterval]) -> Vec<TimeRange> {
        busy.iter().map(|b| range(b.start, b.end)).collect()
    }

    /// Whether every instant of `x` lies in the union of `set` (sorted by start).
    fn covered(x: TimeRange, set: &[TimeRange]) -> bool {
        let mut t = x.start;
        for s in set {
            if t >= x.end {
                break;
            }
            if s.start <= t && s.end > t {
                t = s.end;
            }
        }
        t >= x.end
    }

    fn request_with(window: Option<(i64, i64)>) -> Request {
        let mut r = Request::new("x@y.example", Action::Freebusy);
        r.window = window.map(|(s, len)| {
            let s = base() + Duration::minutes(s);
            range(s, s + Duration::minutes(len))
        });
        r
    }

    proptest! {
        #[test]
        fn busy_level_covers_every_busy_minute_in_the_allowed_time_and_nothing_outside(
            tz in zones(),
            instances in calendar(),
            now_offset in 0i64..3 * 1440,
            window_days in 1u32..15,
            hours in 0u8..4,
            grid in 0u8..5,
            asked in proptest::option::of((0i64..20 * 1440, 1i64..5 * 1440)),
        ) {
            let owner = Owner::new(tz, instances);
            let set = policy(&rule_text("busy", window_days, hours, grid));
            let now = base() + Duration::minutes(now_offset);
            let r = request_with(asked);
            let d = evaluate(&set, &[], &r, now, &|_| 0);
            let allowed = allowed_ranges(&d, &r, &owner.hours, tz, now);
            let shown = busy_of(&disclose(&d, &r, &owner.view(), now));
            let shown: Vec<TimeRange> = shown.iter().map(|(a, b)| range(*a, *b)).collect();
            for real in ranges_of(&owner.busy) {
                for a in &allowed {
                    if let Some(part) = real.intersect(a) {
                        prop_assert!(covered(part, &shown), "busy {part:?} not shown in {shown:?}");
                    }
                }
            }
            for s in &shown {
                prop_assert!(covered(*s, &allowed), "{s:?} shown outside {allowed:?}");
            }
        }

        #[test]
        fn yes_no_and_slots_never_contradict_the_calendar(
            tz in zones(),
            instances in calendar(),
            now_offset in 0i64..3 * 1440,
            window_days in 1u32..15,
            hours in 0u8..4,
            grid in 0u8..5,
            slot in (0i64..20 * 1440, 1i64..240),
        ) {
            let owner = Owner::new(tz, instances);
            let real = ranges_of(&owner.busy);
            let now = base() + Duration::minutes(now_offset);
            let set = policy(&rule_text("yes-no", window_days, hours, grid));
            let mut r = request_with(None);
            let s = base() + Duration::minutes(slot.0);
            let proposed = range(s, s + Duration::minutes(slot.1));
            r.proposed = vec![proposed];
            let d = evaluate(&set, &[], &r, now, &|_| 0);
            let allowed = allowed_ranges(&d, &r, &owner.hours, tz, now);
            match disclose(&d, &r, &owner.view(), now) {
                Disclosure::YesNo { answer: Some(true), .. } => {
                    prop_assert!(real.iter().all(|b| !b.overlaps(&proposed)));
                    prop_assert!(covered(proposed, &allowed));
                }
                Disclosure::YesNo { answer: Some(false), .. } => {
                    prop_assert!(real.iter().any(|b| b.overlaps(&proposed)));
                }
                Disclosure::YesNo { answer: None, .. } => {}
                other => prop_assert!(false, "{other:?}"),
            }

            let set = policy(&rule_text("slots", window_days, hours, grid));
            let mut r = request_with(None);
            r.duration = Some(Duration::minutes(slot.1));
            let d = evaluate(&set, &[], &r, now, &|_| 0);
            let allowed = allowed_ranges(&d, &r, &owner.hours, tz, now);
            let Disclosure::Slots { slots, .. } = disclose(&d, &r, &owner.view(), now) else {
                return Err(TestCaseError::fail("expected slots"));
            };
            prop_assert!(slots.len() <= 3);
            for offered in slots {
                prop_assert_eq!(offered.duration(), Duration::minutes(slot.1));
                prop_assert!(real.iter().all(|b| !b.overlaps(&offered)), "{offered:?} overlaps {real:?}");
                prop_assert!(covered(offered, &allowed));
            }
        }

        #[test]
        fn probing_with_yes_no_learns_at_most_the_rate_limit_of_answers(
            instances in calendar(),
            limit in 1u32..10,
            probes in prop::collection::vec((0i64..14 * 1440, 15i64..120), 0..40),
        ) {
            let owner = Owner::new(Tz::UTC, instances);
            let set = policy(&format!("level = \"yes-no\"\nrate = \"{limit}/hour\""));
            let now = base();
            let mut answered = 0u32;
            let mut learned = std::collections::HashSet::new();
            for (start, len) in probes {
                let mut r = request_with(None);
                let s = base() + Duration::minutes(start);
                r.proposed = vec![range(s, s + Duration::minutes(len)), range(s, s + Duration::hours(1))];
                let d = evaluate(&set, &[], &r, now, &|_| answered);
                if d.outcome == Outcome::Allow {
                    answered += 1;
                }
                if let Disclosure::YesNo { slot: Some(slot), answer: Some(_) } = disclose(&d, &r, &owner.view(), now) {
                    learned.insert(slot);
                }
            }
            prop_assert!(learned.len() <= limit as usize);
        }
    }

    /// The spec's budget: deciding and cutting down a 14-day busy query over a
    /// 10,000-event calendar costs at most half again the plain query.
    /// Timing is meaningful only optimised:
    /// `cargo test --release --lib disclosure_costs -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing; run with --release"]
    fn disclosure_costs_at_most_half_again_the_busy_query() {
        use crate::calendar::index::OccurrenceIndex;
        use crate::domain::EventSeries;
        use std::collections::BTreeMap;
        use std::time::Instant;

        let now = at(2026, 1, 12, 7, 13);
        let text = super::calendar_gen::generate(now, 9_500, 500, 42);
        let parsed =
            crate::calendar::ics::parse_calendar(text.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let mut by_uid: BTreeMap<String, EventSeries> = BTreeMap::new();
        for e in parsed.events {
            let c = e.component;
            let s = by_uid.entry(c.uid.clone()).or_insert_with(|| EventSeries {
                uid: c.uid.clone(),
                master: None,
                overrides: Vec::new(),
            });
            if c.recurrence_id.is_some() {
                s.overrides.push(c);
            } else {
                s.master = Some(c);
            }
        }
        let tz = chrono_tz::Europe::Berlin;
        let horizon = range(now - Duration::days(90), now + Duration::days(400));
        let index = OccurrenceIndex::new(by_uid.into_values().collect(), horizon, tz)
            .unwrap_or_else(|e| panic!("{e}"));
        let set = match parse_files(
            &[(
                "default.toml".into(),
                include_str!("../../policies/default.toml").into(),
            )],
            Tz::UTC,
        ) {
            Ok(s) => s,
            Err(e) => panic!("{e:?}"),
        };
        let contacts = vec![crate::domain::Contact {
            name: "Bob".into(),
            jid: "bob@example.org".into(),
            agent_jid: None,
            groups: vec!["team".into()],
        }];
        let hours = WorkingHours::default();
        let request = Request::new("bob@example.org", Action::Freebusy);
        let window = range(now, now + Duration::days(14));

        let runs = 2_000;
        let median = |mut v: Vec<std::time::Duration>| {
            v.sort();
            v[v.len() / 2]
        };
        let mut plain = Vec::with_capacity(runs);
        let mut full = Vec::with_capacity(runs);
        let mut intervals = 0;
        for _ in 0..runs {
            let t = Instant::now();
            let busy = index.busy(window).unwrap_or_default();
            plain.push(t.elapsed());
            std::hint::black_box(&busy);

            let t = Instant::now();
            let d = evaluate(&set, &contacts, &request, now, &|_| 0);
            let w = allowed_window(&d, &request, now).unwrap_or(window);
            let busy = index.busy(w).unwrap_or_default();
            let view = CalendarView {
                busy: &busy,
                instances: &[],
                working_hours: &hours,
                owner_tz: tz,
                slot_options: SlotOptions::default(),
            };
            let out = disclose(&d, &request, &view, now);
            full.push(t.elapsed());
            intervals = busy.len();
            std::hint::black_box(out);
        }
        let (plain, full) = (median(plain), median(full));
        let ratio = full.as_secs_f64() / plain.as_secs_f64();
        println!(
            "busy query {plain:?} ({intervals} intervals); decided and cut down {full:?}; ratio {ratio:.2}"
        );
        assert!(ratio <= 1.5, "ratio {ratio:.2}");
    }
}
