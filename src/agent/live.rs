//! The owner's calendar and contacts as the running agent sees them: an
//! in-memory occurrence index and contact list, kept in step with the store.
//!
//! Free/busy answers are on the hot path of every peer request, so they are
//! computed from memory (a binary search in the index) rather than from
//! SQLite. The CLI may change the store while the agent runs; the agent polls
//! the store's change counters (one tiny query) and rebuilds what changed.
//!
//! Live meeting holds (§12) count as BUSY-TENTATIVE here, so free/busy
//! answers and slot finding do not offer time another negotiation holds.
//! They are kept beside the index, not in it: a hold placed or dropped only
//! reloads the (few) live holds, never re-expands the calendar.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use crate::calendar::availability::merge_busy_ranges;
use crate::calendar::index::OccurrenceIndex;
use crate::domain::{BusyInterval, BusyStatus, Contact, Hold, Instance, TimeRange};
use crate::error::{AgentError, RecurrenceError};
use crate::store::{Store, Versions};

/// How far back and ahead the in-memory index reaches; queries outside are
/// still answered (expanded on demand), just slower. 120 days covers the
/// policy windows people use (the shipped ones are 14–30 days) and keeps an
/// idle agent with a 10,000-event calendar under 30 MB (27 MB measured;
/// 31 MB with 400 days).
const PAST: Duration = Duration::days(1);
const AHEAD: Duration = Duration::days(120);
/// The index is rebuilt when the clock has moved this far since it was built.
const REBUILD_AFTER: Duration = Duration::hours(12);

/// The owner's calendar as the agent answers from it: the events' occurrence
/// index plus the meeting holds live when the view was built.
#[derive(Debug)]
pub struct CalendarView {
    events: Arc<OccurrenceIndex>,
    /// Live holds, by start.
    holds: Vec<Hold>,
}

impl CalendarView {
    /// A view of `events` with `holds` blocking as tentative.
    pub fn new(events: Arc<OccurrenceIndex>, mut holds: Vec<Hold>) -> Self {
        holds.sort_by_key(|h| h.range);
        Self { events, holds }
    }

    /// The events alone.
    pub fn events(&self) -> &OccurrenceIndex {
        &self.events
    }

    /// The holds this view counts as tentative, by start.
    pub fn holds(&self) -> &[Hold] {
        &self.holds
    }

    /// Merged busy time in `window`: the events' busy time, with live holds
    /// added as tentative (a busy event over a hold stays busy).
    pub fn busy(&self, window: TimeRange) -> Result<Vec<BusyInterval>, RecurrenceError> {
        let busy = self.events.busy(window)?;
        let mut holds = self
            .holds
            .iter()
            .filter(|h| h.range.overlaps(&window))
            .peekable();
        if holds.peek().is_none() {
            return Ok(busy);
        }
        // Merging the merged intervals again with the holds gives the same
        // result as merging everything at once: union and "busy wins" are
        // associative.
        let items: Vec<(TimeRange, BusyStatus)> = busy
            .iter()
            .map(|b| {
                (
                    TimeRange {
                        start: b.start,
                        end: b.end,
                    },
                    b.status,
                )
            })
            .chain(holds.map(|h| (h.range, BusyStatus::Tentative)))
            .collect();
        Ok(merge_busy_ranges(items, window))
    }

    /// The event instances overlapping `window` (holds are not events: they
    /// have no title a peer may see).
    pub fn instances(&self, window: TimeRange) -> Result<Vec<Instance>, RecurrenceError> {
        self.events.instances(window)
    }

    /// When the first of the view's holds lapses.
    fn next_expiry(&self) -> Option<DateTime<Utc>> {
        self.holds.iter().map(|h| h.expires).min()
    }
}

/// One consistent view of the store.
#[derive(Debug)]
pub struct Snapshot {
    pub versions: Versions,
    /// Events and live holds (named `index` since it replaced the bare index).
    pub index: Arc<CalendarView>,
    pub contacts: Arc<Vec<Contact>>,
    pub built_at: DateTime<Utc>,
}

/// The live view; cheap to read from many tasks.
#[derive(Debug)]
pub struct Live {
    store: Store,
    owner_tz: Tz,
    current: RwLock<Arc<Snapshot>>,
}

impl Live {
    /// Loads everything from the store.
    pub async fn load(store: Store, owner_tz: Tz, now: DateTime<Utc>) -> Result<Self, AgentError> {
        let versions = store.versions().await?;
        let index = build_index(&store, owner_tz, now).await?;
        let holds = store.active_holds(now).await?;
        let contacts = store.contacts().await?;
        Ok(Self {
            store,
            owner_tz,
            current: RwLock::new(Arc::new(Snapshot {
                versions,
                index: Arc::new(CalendarView::new(Arc::new(index), holds)),
                contacts: Arc::new(contacts),
                built_at: now,
            })),
        })
    }

    /// The current view.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        match self.current.read() {
            Ok(s) => s.clone(),
            // A writer panicked mid-swap; the Arc inside is still whole.
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn owner_tz(&self) -> Tz {
        self.owner_tz
    }

    /// Rebuilds whatever changed in the store since the last look (or the
    /// index, when the clock moved on). Returns whether anything was rebuilt.
    pub async fn refresh(&self, now: DateTime<Utc>) -> Result<bool, AgentError> {
        let old = self.snapshot();
        let versions = self.store.versions().await?;
        let calendar_stale =
            versions.calendar != old.versions.calendar || now - old.built_at > REBUILD_AFTER;
        let contacts_stale = versions.contacts != old.versions.contacts;
        let holds_stale = calendar_stale
            || versions.holds != old.versions.holds
            || old.index.next_expiry().is_some_and(|t| t <= now);
        if !calendar_stale && !contacts_stale && !holds_stale {
            return Ok(false);
        }
        let index = if calendar_stale || holds_stale {
            let events = if calendar_stale {
                Arc::new(build_index(&self.store, self.owner_tz, now).await?)
            } else {
                old.index.events.clone()
            };
            let holds = self.store.active_holds(now).await?;
            Arc::new(CalendarView::new(events, holds))
        } else {
            old.index.clone()
        };
        let contacts = if contacts_stale {
            Arc::new(self.store.contacts().await?)
        } else {
            old.contacts.clone()
        };
        let fresh = Arc::new(Snapshot {
            versions,
            index,
            contacts,
            built_at: if calendar_stale { now } else { old.built_at },
        });
        match self.current.write() {
            Ok(mut s) => *s = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        tracing::debug!(
            calendar = calendar_stale,
            holds = holds_stale,
            contacts = contacts_stale,
            "live view refreshed"
        );
        Ok(true)
    }
}

async fn build_index(
    store: &Store,
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<OccurrenceIndex, AgentError> {
    let series = store.all_series().await?;
    let horizon = TimeRange {
        start: now - PAST,
        end: now + AHEAD,
    };
    let index = OccurrenceIndex::new(series, horizon, tz)?;
    // Merge the horizon's busy time now, not in the first peer's request.
    index.busy(horizon)?;
    Ok(index)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::store::{HoldOutcome, HoldRequest};

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, h, m, 0)
            .single()
            .unwrap_or_default()
    }

    fn hold(meeting: &str, start: u32, end: u32, expires: DateTime<Utc>) -> HoldRequest {
        HoldRequest {
            meeting: meeting.into(),
            organizer: "bob-agent@example.org".into(),
            organizer_address: None,
            sequence: 0,
            range: TimeRange {
                start: at(start, 0),
                end: at(end, 0),
            },
            expires,
            summary: Some("secret title".into()),
            attendees: Vec::new(),
        }
    }

    fn statuses(view: &CalendarView, window: TimeRange) -> Vec<(u32, u32, BusyStatus)> {
        use chrono::Timelike;
        match view.busy(window) {
            Ok(b) => b
                .into_iter()
                .map(|b| (b.start.hour(), b.end.hour(), b.status))
                .collect(),
            Err(e) => panic!("{e}"),
        }
    }

    #[tokio::test]
    async fn live_holds_show_as_tentative_and_leave_when_released_or_expired() {
        let tz = Tz::UTC;
        let now = at(8, 0);
        let store = match Store::open_in_memory().await {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        let placed = store
            .try_hold(&hold("m1", 10, 11, now + Duration::minutes(10)), tz, now)
            .await;
        assert!(matches!(placed, Ok(HoldOutcome::Held { .. })));
        let live = match Live::load(store.clone(), tz, now).await {
            Ok(l) => l,
            Err(e) => panic!("{e}"),
        };
        let window = TimeRange {
            start: at(9, 0),
            end: at(13, 0),
        };
        assert_eq!(
            statuses(&live.snapshot().index, window),
            vec![(10, 11, BusyStatus::Tentative)]
        );
        // Holds have no title to show.
        assert!(matches!(live.snapshot().index.instances(window), Ok(i) if i.is_empty()));

        // A new hold is seen after a refresh, without rebuilding the event index.
        let events_before = Arc::as_ptr(&live.snapshot().index.events);
        let placed = store
            .try_hold(&hold("m2", 12, 13, now + Duration::hours(1)), tz, now)
            .await;
        assert!(matches!(placed, Ok(HoldOutcome::Held { .. })));
        assert!(matches!(live.refresh(now).await, Ok(true)));
        let snapshot = live.snapshot();
        assert_eq!(Arc::as_ptr(&snapshot.index.events), events_before);
        assert_eq!(
            statuses(&snapshot.index, window),
            vec![
                (10, 11, BusyStatus::Tentative),
                (12, 13, BusyStatus::Tentative)
            ]
        );
        assert!(matches!(live.refresh(now).await, Ok(false)));

        // The first hold lapses: the next refresh drops it though nothing was written.
        let later = now + Duration::minutes(11);
        assert!(matches!(live.refresh(later).await, Ok(true)));
        assert_eq!(
            statuses(&live.snapshot().index, window),
            vec![(12, 13, BusyStatus::Tentative)]
        );
        // Released: gone too.
        assert!(matches!(
            store.release_hold("m2", "bob-agent@example.org").await,
            Ok(true)
        ));
        assert!(matches!(live.refresh(later).await, Ok(true)));
        assert!(statuses(&live.snapshot().index, window).is_empty());
    }

    #[test]
    fn a_busy_event_over_a_hold_stays_busy() {
        use crate::domain::{
            Classification, EventComponent, EventEnd, EventSeries, EventStatus, IcalTime,
            Transparency,
        };
        let event = EventComponent {
            uid: "e1".into(),
            recurrence_id: None,
            start: IcalTime::Utc(at(10, 0)),
            end: EventEnd::End(IcalTime::Utc(at(11, 0))),
            rrules: Vec::new(),
            rdates: Vec::new(),
            exdates: Vec::new(),
            status: EventStatus::Confirmed,
            transparency: Transparency::Opaque,
            class: Classification::Public,
            sequence: 0,
            summary: None,
            location: None,
        };
        let horizon = TimeRange {
            start: at(0, 0),
            end: at(23, 0),
        };
        let index = match OccurrenceIndex::new(EventSeries::group([event]), horizon, Tz::UTC) {
            Ok(i) => i,
            Err(e) => panic!("{e}"),
        };
        let h = Hold {
            meeting: "m".into(),
            organizer: "o@example.org".into(),
            organizer_address: None,
            sequence: 0,
            range: TimeRange {
                start: at(9, 0),
                end: at(12, 0),
            },
            expires: at(23, 0),
            summary: None,
            attendees: Vec::new(),
        };
        let view = CalendarView::new(Arc::new(index), vec![h]);
        assert_eq!(
            statuses(&view, horizon),
            vec![
                (9, 10, BusyStatus::Tentative),
                (10, 11, BusyStatus::Busy),
                (11, 12, BusyStatus::Tentative)
            ]
        );
    }
}
