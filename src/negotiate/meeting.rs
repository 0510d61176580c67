//! The organizer's side of a meeting negotiation (docs/protocol.md §12) as a
//! pure state machine: [`Negotiation::new`] and [`Negotiation::on`] take
//! values (including `now`) and return [`Effect`]s for the runtime to carry
//! out. The state is serde-serializable so the runtime can persist it after
//! every step and resume after a crash with the same subsequent effects.
//!
//! Owns: candidate ranking from the organizer's calendar and the attendees'
//! disclosed availability, the hold / confirm / release rounds, counters,
//! timeouts, quorum and the reason a negotiation gives up. Must not touch
//! the store, the network or the clock; the attendee side (the atomic hold)
//! lives in the store.
//!
//! # Protocol with the runtime
//! 1. `new` asks each attendee with an agent for availability
//!    ([`Effect::AskAvailability`]); answers come back as
//!    [`Event::Availability`].
//! 2. Each round starts with [`Effect::HoldOwn`]; the runtime places the
//!    organizer's own hold atomically and reports [`Event::OwnHold`]. Only a
//!    successful own hold sends [`Effect::SendHold`] / [`Effect::ChatProposal`]
//!    to the attendees, so a slot another negotiation of ours holds is skipped
//!    without bothering anyone.
//! 3. When every required attendee held and the quorum is met,
//!    [`Effect::SendConfirm`] goes to every attendee who held; once every
//!    confirm is answered the organizer books its own calendar
//!    ([`Effect::BookOwn`]) and reports [`Effect::Notify`]. Booking our own
//!    calendar last means a failed confirm never leaves a booking to undo on
//!    our side (our hold covers the slot meanwhile).
//! 4. The runtime calls `on(Event::Tick, now)` at [`Negotiation::next_wakeup`]
//!    (or later): unanswered requests time out there.
//!
//! # Message bound
//! With N attendees and R rounds the negotiation sends at most
//! `N + 3·N·R` messages ([`message_bound`]): one availability query per
//! attendee, and per round and attendee at most one proposal (hold or chat
//! proposal), one confirm (or chat confirmation) and one release (or chat
//! release, or — once, at the end — a cancel of a booking left by a round
//! whose confirm failed elsewhere; such an attendee got no release in that
//! round). R never exceeds `max_rounds`.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::calendar::availability::{MAX_SEARCH, SlotOptions, WorkingHours, align_up, free_slots};
use crate::domain::{BusyInterval, TimeRange};
use crate::policy::Level;

use super::wire::FreebusyReply;

/// Rounds tried before giving up when the plan does not say (`meet … rounds`).
pub const DEFAULT_MAX_ROUNDS: u32 = 5;

/// How long holds and answers are waited for when the plan does not say.
pub const DEFAULT_HOLD_TTL: TimeDelta = TimeDelta::minutes(5);

/// Ranked candidates kept in the persisted state; rounds are few, so a
/// short list suffices and keeps the state small.
const KEPT_CANDIDATES: usize = 64;

/// Grid slots enumerated before ranking; bounds the work for wide windows.
const MAX_ENUMERATED: usize = 4000;

/// The most messages a negotiation with `attendees` attendees and `rounds`
/// rounds sends (see the module documentation): availability once, then
/// proposal, confirm and release at most once per attendee and round.
pub fn message_bound(attendees: usize, rounds: usize) -> usize {
    attendees.saturating_add(attendees.saturating_mul(rounds).saturating_mul(3))
}

// ---------------------------------------------------------------------------
// Plan

/// One person invited to the meeting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attendee {
    /// The person's bare JID (the contact); the key every event and effect uses.
    pub person: String,
    /// The name the owner knows them by, for messages.
    pub name: String,
    /// Their agent's bare JID; `None` for a person without an agent, who is
    /// asked by chat and answers yes or no.
    pub agent: Option<String>,
    /// A required attendee's "no" moves the negotiation to another slot; an
    /// optional attendee never blocks.
    pub required: bool,
}

/// The organizer's slot rules (the serializable part of [`SlotOptions`]
/// that candidate search needs; duration and horizon come from the plan).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotRules {
    /// Candidate starts sit on this grid of the organizer's wall-clock time.
    #[serde(with = "secs")]
    pub granularity: TimeDelta,
    /// Free time the organizer keeps before its other commitments.
    #[serde(with = "secs")]
    pub buffer_before: TimeDelta,
    /// Free time the organizer keeps after its other commitments.
    #[serde(with = "secs")]
    pub buffer_after: TimeDelta,
    /// No candidate starts sooner than this after the ranking.
    #[serde(with = "secs")]
    pub min_notice: TimeDelta,
}

impl Default for SlotRules {
    fn default() -> Self {
        SlotRules::from(&SlotOptions::default())
    }
}

impl From<&SlotOptions> for SlotRules {
    fn from(o: &SlotOptions) -> Self {
        SlotRules {
            granularity: o.granularity,
            buffer_before: o.buffer_before,
            buffer_after: o.buffer_after,
            min_notice: o.min_notice,
        }
    }
}

/// Everything the organizer decided before negotiating (`meet …`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The iCalendar UID of the meeting (§12).
    pub meeting: String,
    pub summary: String,
    /// The iCalendar SEQUENCE to start at: 0 for a new meeting, the booked
    /// sequence + 1 for a reschedule.
    pub sequence: u32,
    #[serde(with = "secs")]
    pub duration: TimeDelta,
    /// Where to look for a time (`next week`).
    pub window: TimeRange,
    /// The organizer's own busy time in (at least) the window.
    pub own_busy: Vec<BusyInterval>,
    pub hours: WorkingHours,
    /// The organizer's zone: working hours and the grid are read in it.
    pub tz: Tz,
    pub rules: SlotRules,
    pub attendees: Vec<Attendee>,
    /// The fewest attendees who must accept, required ones included
    /// (`quorum 3 of 5`). With a quorum, unreachable attendees — even
    /// required ones — are left out instead of failing the meeting.
    pub quorum: Option<usize>,
    pub max_rounds: u32,
    /// How long each request is waited for, and how long holds last.
    #[serde(with = "secs")]
    pub hold_ttl: TimeDelta,
    /// After this the negotiation gives up whatever state it is in.
    pub deadline: DateTime<Utc>,
}

// ---------------------------------------------------------------------------
// Events and effects

/// Why a peer refused a request (§6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Refusal {
    NotPermitted,
    RateLimited,
}

/// What an attendee's agent disclosed in answer to the availability query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AvailabilityAnswer {
    /// Levels `busy` and `details`: everything inside `shown` that is not
    /// in `busy` is free.
    Busy {
        shown: Vec<TimeRange>,
        busy: Vec<TimeRange>,
    },
    /// Level `slots`: a few free slots; nothing is known about other times.
    Slots {
        shown: Vec<TimeRange>,
        free: Vec<TimeRange>,
    },
    /// Level `yes-no`: only a proposed slot can be asked about; the hold does that.
    YesNoOnly,
    Refused(Refusal),
    /// Offline, or no answer in time.
    Unreachable,
}

impl AvailabilityAnswer {
    /// Reads a free/busy reply (§5.2). Tentative time counts as busy, as it
    /// does for the attendee's own hold check.
    pub fn from_reply(reply: &FreebusyReply) -> Self {
        match reply.level {
            Level::None => AvailabilityAnswer::Refused(Refusal::NotPermitted),
            Level::YesNo => AvailabilityAnswer::YesNoOnly,
            Level::Slots => AvailabilityAnswer::Slots {
                shown: reply.shown.clone(),
                free: reply.free.clone(),
            },
            Level::Busy | Level::Details => AvailabilityAnswer::Busy {
                shown: reply.shown.clone(),
                busy: reply
                    .busy
                    .iter()
                    .map(|b| TimeRange {
                        start: b.start,
                        end: b.end,
                    })
                    .collect(),
            },
        }
    }
}

/// An attendee agent's answer to `<hold>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HoldAnswer {
    Held {
        expires: DateTime<Utc>,
    },
    /// Busy or the owner said no; `counter` is the attendee's earliest free
    /// slot of the same length (iTIP COUNTER), when its policy shows slots.
    Declined {
        counter: Option<TimeRange>,
    },
    /// The attendee's owner is being asked; the real answer follows as
    /// another `HoldAnswer` and is waited for until the plan's deadline.
    Pending,
    Refused(Refusal),
    Unreachable,
}

/// Why a `<confirm>` did not book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConfirmFailure {
    /// `conflict` + `<hold-expired/>`: the slot was taken meanwhile.
    SlotTaken,
    Refused,
    /// Offline or no answer: the attendee may or may not have booked.
    Unreachable,
}

/// Something that happened, fed to [`Negotiation::on`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Event {
    Availability {
        attendee: String,
        answer: AvailabilityAnswer,
    },
    /// The result of [`Effect::HoldOwn`]: `held` is false when our own
    /// calendar no longer has the slot free (e.g. another negotiation holds it).
    OwnHold {
        slot: TimeRange,
        held: bool,
    },
    /// `slot` is the slot the hold was sent for; answers for earlier rounds are ignored.
    HoldAnswer {
        attendee: String,
        slot: TimeRange,
        answer: HoldAnswer,
    },
    /// A person without an agent answered the current chat proposal.
    ChatAnswer {
        attendee: String,
        yes: bool,
    },
    Confirmed {
        attendee: String,
        slot: TimeRange,
    },
    ConfirmFailed {
        attendee: String,
        slot: TimeRange,
        reason: ConfirmFailure,
    },
    /// Time passed: requests unanswered by their time count as unreachable.
    Tick,
    /// The owner called the negotiation off.
    Cancel,
}

/// Something for the runtime to do. `attendee` is always the person's bare
/// JID ([`Attendee::person`]); `agent` is where the message goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Effect {
    /// Send the §5 free/busy query.
    AskAvailability {
        attendee: String,
        agent: String,
        window: TimeRange,
        #[serde(with = "secs")]
        duration: TimeDelta,
    },
    /// Hold `slot` in our own calendar atomically until `expires`; report [`Event::OwnHold`].
    HoldOwn {
        slot: TimeRange,
        expires: DateTime<Utc>,
    },
    ReleaseOwn {
        slot: TimeRange,
    },
    /// Turn our own hold into the booked event (same UID and SEQUENCE).
    BookOwn {
        slot: TimeRange,
        sequence: u32,
    },
    SendHold {
        attendee: String,
        agent: String,
        slot: TimeRange,
        sequence: u32,
        expires: DateTime<Utc>,
    },
    SendConfirm {
        attendee: String,
        agent: String,
        slot: TimeRange,
        sequence: u32,
    },
    SendRelease {
        attendee: String,
        agent: String,
        slot: TimeRange,
        sequence: u32,
    },
    /// iTIP CANCEL of a booking an attendee made for `slot` in a round whose
    /// confirm then failed elsewhere, when the negotiation ends elsewhere.
    SendCancel {
        attendee: String,
        agent: String,
        slot: TimeRange,
        sequence: u32,
    },
    /// "Alice's agent proposes Tue 10:00 for Sync. Reply yes or no."
    ChatProposal {
        attendee: String,
        slot: TimeRange,
    },
    /// "Sync is booked for Tue 10:00."
    ChatConfirm {
        attendee: String,
        slot: TimeRange,
    },
    /// "Tue 10:00 for Sync is off; no need to answer."
    ChatRelease {
        attendee: String,
        slot: TimeRange,
    },
    /// Tell the owner how it ended (once).
    Notify(Outcome),
}

/// An attendee as an outcome names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    pub person: String,
    pub name: String,
}

/// How a negotiation ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Booked {
        slot: TimeRange,
        sequence: u32,
        accepted: Vec<Party>,
        /// Optional attendees who declined or could not confirm.
        declined: Vec<Party>,
        /// Attendees who never answered or were unreachable.
        missing: Vec<Party>,
    },
    Failed {
        reason: FailureReason,
    },
}

/// Why a negotiation gave up, as data; the chat renderer turns it into text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureReason {
    /// No slot in working hours suits everyone (or every such slot was
    /// declined). `earliest_outside` is the earliest slot in the window that
    /// works for the organizer and is not known-busy for any required
    /// attendee if working hours are ignored.
    NoCommonTime {
        earliest_outside: Option<TimeRange>,
    },
    /// A required attendee's agent is offline or did not answer.
    AttendeeUnreachable {
        person: String,
        name: String,
    },
    /// A required attendee's owner was asked and did not answer in time.
    NoAnswer {
        person: String,
        name: String,
    },
    /// A required attendee's policy does not let us propose meetings (or rate-limits us).
    Refused {
        person: String,
        name: String,
        why: Refusal,
    },
    /// Not enough attendees can still be reached to meet the quorum.
    QuorumImpossible {
        needed: usize,
        reachable: usize,
    },
    /// `max_rounds` slots were tried; `tried` lists them in order.
    RoundsExhausted {
        tried: Vec<TimeRange>,
    },
    DeadlinePassed,
    Cancelled,
}

// ---------------------------------------------------------------------------
// State

/// What we know about an attendee's calendar from phase 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Knowledge {
    Unknown,
    Busy {
        shown: Vec<TimeRange>,
        busy: Vec<TimeRange>,
    },
    Slots {
        free: Vec<TimeRange>,
    },
}

impl Knowledge {
    fn known_free(&self, slot: &TimeRange) -> bool {
        match self {
            Knowledge::Unknown => false,
            Knowledge::Busy { shown, busy } => {
                shown
                    .iter()
                    .any(|s| s.start <= slot.start && slot.end <= s.end)
                    && !busy.iter().any(|b| b.overlaps(slot))
            }
            Knowledge::Slots { free } => free
                .iter()
                .any(|f| f.start <= slot.start && slot.end <= f.end),
        }
    }

    fn known_busy(&self, slot: &TimeRange) -> bool {
        match self {
            Knowledge::Busy { busy, .. } => busy.iter().any(|b| b.overlaps(slot)),
            _ => false,
        }
    }

    /// Whether ranking may propose `slot` to a required attendee: unknown
    /// calendars pass (the hold answers), known ones must show it free.
    fn admits(&self, slot: &TimeRange) -> bool {
        matches!(self, Knowledge::Unknown) || self.known_free(slot)
    }
}

/// Why an attendee takes no further part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Out {
    Unreachable,
    NoAnswer,
    Refused(Refusal),
}

/// An attendee's answer in the current round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Answer {
    /// Not asked this round (out, or no round yet).
    NotAsked,
    Awaiting,
    /// The attendee's owner is being asked (or a person is reading the chat).
    Pending,
    Held,
    Declined,
    /// Timed out, unreachable or refused this round (see `out`).
    Gone,
    Confirming,
    Confirmed,
    ConfirmFailed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct AttendeeState {
    knowledge: Knowledge,
    out: Option<Out>,
    answer: Answer,
    /// When the current request counts as unanswered.
    answer_by: Option<DateTime<Utc>>,
    /// Whether the phase-1 query was answered.
    answered_availability: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Phase {
    Availability {
        until: DateTime<Utc>,
    },
    OwnHold {
        slot: TimeRange,
    },
    /// `patient` until `started + hold_ttl`: optional attendees' answers
    /// are waited for that long once the required ones held.
    Holding {
        slot: TimeRange,
        started: DateTime<Utc>,
        patient: bool,
    },
    Confirming {
        slot: TimeRange,
    },
    /// Between rounds (only ever seen inside one call).
    Idle,
    Done,
}

/// The organizer's negotiation of one meeting. Serialize it after every
/// call to [`Negotiation::on`]; deserializing it resumes exactly there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Negotiation {
    plan: Plan,
    sequence: u32,
    phase: Phase,
    attendees: Vec<AttendeeState>,
    /// Ranked, untried candidates.
    candidates: Vec<TimeRange>,
    tried: Vec<TimeRange>,
    /// Slots our own calendar no longer had free when their round began
    /// (another negotiation took them): skipped without asking anyone, so
    /// they do not use up a round.
    #[serde(default)]
    skipped: Vec<TimeRange>,
    /// Counters received this round, in arrival order.
    counters: Vec<TimeRange>,
    /// Attendees that booked a slot of an abandoned round (to cancel unless
    /// a later confirm replaces that booking), with the slot.
    stale_bookings: Vec<(String, TimeRange)>,
    outcome: Option<Outcome>,
}

impl Negotiation {
    /// Starts negotiating `plan`: asks every attendee agent for availability
    /// (or, with nobody to ask, starts the first round at once).
    pub fn new(plan: Plan, now: DateTime<Utc>) -> (Negotiation, Vec<Effect>) {
        let attendees = plan
            .attendees
            .iter()
            .map(|_| AttendeeState {
                knowledge: Knowledge::Unknown,
                out: None,
                answer: Answer::NotAsked,
                answer_by: None,
                answered_availability: false,
            })
            .collect();
        let until = add(now, plan.hold_ttl);
        let mut n = Negotiation {
            sequence: plan.sequence,
            plan,
            phase: Phase::Availability { until },
            attendees,
            candidates: Vec::new(),
            tried: Vec::new(),
            skipped: Vec::new(),
            counters: Vec::new(),
            stale_bookings: Vec::new(),
            outcome: None,
        };
        let mut fx = Vec::new();
        if let Some(q) = n.plan.quorum
            && q > n.plan.attendees.len()
        {
            n.fail(
                FailureReason::QuorumImpossible {
                    needed: q,
                    reachable: n.plan.attendees.len(),
                },
                &mut fx,
            );
            return (n, fx);
        }
        for a in &n.plan.attendees {
            if let Some(agent) = &a.agent {
                fx.push(Effect::AskAvailability {
                    attendee: a.person.clone(),
                    agent: agent.clone(),
                    window: n.plan.window,
                    duration: n.plan.duration,
                });
            }
        }
        if fx.is_empty() {
            n.after_availability(now, &mut fx);
        }
        (n, fx)
    }

    /// Feeds one event; returns what to do next. Events that do not fit the
    /// current state (late answers for earlier rounds, unknown attendees,
    /// anything after the end) change nothing and return no effects.
    pub fn on(&mut self, event: Event, now: DateTime<Utc>) -> Vec<Effect> {
        let mut fx = Vec::new();
        if self.is_done() {
            return fx;
        }
        // A confirm phase under way is allowed to finish (its own timeouts
        // bound it): failing now would undo bookings about to complete.
        let confirming = matches!(self.phase, Phase::Confirming { .. });
        if now >= self.plan.deadline && !confirming && !matches!(event, Event::Cancel) {
            let reason = self.deadline_reason();
            self.fail(reason, &mut fx);
            return fx;
        }
        match event {
            Event::Availability { attendee, answer } => {
                self.on_availability(&attendee, answer, now, &mut fx)
            }
            Event::OwnHold { slot, held } => self.on_own_hold(slot, held, now, &mut fx),
            Event::HoldAnswer {
                attendee,
                slot,
                answer,
            } => self.on_hold_answer(&attendee, slot, answer, now, &mut fx),
            Event::ChatAnswer { attendee, yes } => {
                if let Phase::Holding { slot, .. } = self.phase
                    && let Some(i) = self.index(&attendee)
                    && self.plan.attendees[i].agent.is_none()
                {
                    let answer = if yes {
                        HoldAnswer::Held {
                            expires: self.plan.deadline,
                        }
                    } else {
                        HoldAnswer::Declined { counter: None }
                    };
                    self.on_hold_answer(&attendee, slot, answer, now, &mut fx);
                }
            }
            Event::Confirmed { attendee, slot } => {
                self.on_confirm_answer(&attendee, slot, None, now, &mut fx)
            }
            Event::ConfirmFailed {
                attendee,
                slot,
                reason,
            } => self.on_confirm_answer(&attendee, slot, Some(reason), now, &mut fx),
            Event::Tick => self.on_tick(now, &mut fx),
            Event::Cancel => self.fail(FailureReason::Cancelled, &mut fx),
        }
        fx
    }

    /// The plan negotiated (attendee names for rendering, the meeting UID for the store).
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The iCalendar SEQUENCE now in use (it rises when a round's confirm
    /// failed after some attendees booked).
    pub fn sequence(&self) -> u32 {
        self.sequence
    }

    /// True once the outcome was notified; later events are ignored.
    pub fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }

    /// How it ended, once it has (the same value [`Effect::Notify`] carried).
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// The slots proposed so far, in order (one per round).
    pub fn tried(&self) -> &[TimeRange] {
        &self.tried
    }

    /// The slot of the round in progress, if any.
    pub fn current_slot(&self) -> Option<TimeRange> {
        match self.phase {
            Phase::OwnHold { slot } | Phase::Holding { slot, .. } | Phase::Confirming { slot } => {
                Some(slot)
            }
            Phase::Availability { .. } | Phase::Idle | Phase::Done => None,
        }
    }

    /// After a restart: the requests whose answers died with the old
    /// process, sent again (same slot, same sequence; every one of them is
    /// idempotent at the attendee). Without this a negotiation resumed in its
    /// availability phase would wait out the whole phase for answers that
    /// can no longer arrive.
    pub fn resumed(&mut self, now: DateTime<Utc>) -> Vec<Effect> {
        let mut fx = Vec::new();
        let by = add(now, self.plan.hold_ttl);
        let phase = self.phase.clone();
        for (a, s) in self.plan.attendees.iter().zip(self.attendees.iter_mut()) {
            let Some(agent) = &a.agent else { continue };
            if s.out.is_some() {
                continue;
            }
            match &phase {
                Phase::Availability { .. } if !s.answered_availability => {
                    fx.push(Effect::AskAvailability {
                        attendee: a.person.clone(),
                        agent: agent.clone(),
                        window: self.plan.window,
                        duration: self.plan.duration,
                    });
                }
                Phase::Holding { slot, .. } if s.answer == Answer::Awaiting => {
                    s.answer_by = Some(by);
                    fx.push(Effect::SendHold {
                        attendee: a.person.clone(),
                        agent: agent.clone(),
                        slot: *slot,
                        sequence: self.sequence,
                        expires: by,
                    });
                }
                Phase::Confirming { slot } if s.answer == Answer::Confirming => {
                    s.answer_by = Some(by);
                    fx.push(Effect::SendConfirm {
                        attendee: a.person.clone(),
                        agent: agent.clone(),
                        slot: *slot,
                        sequence: self.sequence,
                    });
                }
                _ => {}
            }
        }
        if let Phase::OwnHold { slot } = phase {
            fx.push(Effect::HoldOwn { slot, expires: by });
        }
        fx
    }

    /// When the runtime should next send [`Event::Tick`]: the earliest
    /// time an outstanding request times out (or the deadline); `None` when done.
    pub fn next_wakeup(&self) -> Option<DateTime<Utc>> {
        // Confirms are waited for past the deadline (see `on`).
        let mut t = match self.phase {
            Phase::Confirming { .. } => DateTime::<Utc>::MAX_UTC,
            _ => self.plan.deadline,
        };
        match self.phase {
            Phase::Done => return None,
            Phase::Availability { until } => t = t.min(until),
            Phase::Holding {
                started, patient, ..
            } => {
                if patient && self.attendees.iter().any(|a| is_waiting(a.answer)) {
                    t = t.min(add(started, self.plan.hold_ttl));
                }
            }
            Phase::OwnHold { .. } | Phase::Confirming { .. } | Phase::Idle => {}
        }
        for a in &self.attendees {
            if (is_waiting(a.answer) || a.answer == Answer::Confirming)
                && let Some(by) = a.answer_by
            {
                t = t.min(by);
            }
        }
        Some(t)
    }

    // -- phase 1 -----------------------------------------------------------

    fn on_availability(
        &mut self,
        person: &str,
        answer: AvailabilityAnswer,
        now: DateTime<Utc>,
        fx: &mut Vec<Effect>,
    ) {
        if !matches!(self.phase, Phase::Availability { .. }) {
            return;
        }
        let Some(i) = self.index(person) else { return };
        let st = &mut self.attendees[i];
        if st.answered_availability || self.plan.attendees[i].agent.is_none() {
            return;
        }
        st.answered_availability = true;
        match answer {
            AvailabilityAnswer::Busy { shown, busy } => {
                st.knowledge = Knowledge::Busy { shown, busy }
            }
            AvailabilityAnswer::Slots { free, .. } => st.knowledge = Knowledge::Slots { free },
            // A refused free/busy query says nothing about `propose-meeting`
            // (a different action); the hold asks that.
            AvailabilityAnswer::YesNoOnly | AvailabilityAnswer::Refused(_) => {}
            AvailabilityAnswer::Unreachable => st.out = Some(Out::Unreachable),
        }
        let all = self
            .plan
            .attendees
            .iter()
            .zip(&self.attendees)
            .all(|(a, s)| a.agent.is_none() || s.answered_availability);
        if all {
            self.after_availability(now, fx);
        }
    }

    fn after_availability(&mut self, now: DateTime<Utc>, fx: &mut Vec<Effect>) {
        if self.check_blocking_out(fx) {
            return;
        }
        self.candidates = self.rank(now);
        self.start_round(now, fx);
    }

    /// Fails the meeting when a required attendee is out and no quorum
    /// allows leaving them out, or when the quorum can no longer be met.
    fn check_blocking_out(&mut self, fx: &mut Vec<Effect>) -> bool {
        if self.plan.quorum.is_none() {
            let hit = self
                .plan
                .attendees
                .iter()
                .zip(&self.attendees)
                .find_map(|(a, s)| match (a.required, s.out) {
                    (true, Some(out)) => Some((a.clone(), out)),
                    _ => None,
                });
            if let Some((a, out)) = hit {
                let (person, name) = (a.person, a.name);
                let reason = match out {
                    Out::Unreachable => FailureReason::AttendeeUnreachable { person, name },
                    Out::NoAnswer => FailureReason::NoAnswer { person, name },
                    Out::Refused(why) => FailureReason::Refused { person, name, why },
                };
                self.fail(reason, fx);
                return true;
            }
        }
        if let Some(q) = self.plan.quorum {
            let reachable = self.attendees.iter().filter(|s| s.out.is_none()).count();
            if reachable < q {
                self.fail(
                    FailureReason::QuorumImpossible {
                        needed: q,
                        reachable,
                    },
                    fx,
                );
                return true;
            }
        }
        false
    }

    // -- ranking -----------------------------------------------------------

    fn options(&self) -> SlotOptions {
        SlotOptions {
            duration: self.plan.duration,
            granularity: self.plan.rules.granularity,
            buffer_before: self.plan.rules.buffer_before,
            buffer_after: self.plan.rules.buffer_after,
            min_notice: self.plan.rules.min_notice,
            horizon: MAX_SEARCH,
        }
    }

    /// The organizer's free ranges in the window under `hours`.
    fn own_free(&self, hours: &WorkingHours, now: DateTime<Utc>) -> Vec<TimeRange> {
        free_slots(
            &self.plan.own_busy,
            self.plan.window,
            hours,
            self.plan.tz,
            &self.options(),
            now,
        )
    }

    /// Attendees whose calendar must admit a candidate: the required ones
    /// still taking part.
    fn filtering(&self) -> impl Iterator<Item = &AttendeeState> {
        self.plan
            .attendees
            .iter()
            .zip(&self.attendees)
            .filter(|(a, s)| a.required && s.out.is_none())
            .map(|(_, s)| s)
    }

    /// Candidates in working hours: the organizer's free grid slots that
    /// every required attendee's disclosed calendar admits, those known free
    /// for more of the other attendees first, then earliest first.
    fn rank(&self, now: DateTime<Utc>) -> Vec<TimeRange> {
        let free = self.own_free(&self.plan.hours, now);
        let mut scored: Vec<(usize, TimeRange)> = grid_slots(
            &free,
            self.plan.duration,
            self.plan.rules.granularity,
            self.plan.tz,
        )
        .into_iter()
        .filter(|s| self.filtering().all(|k| k.knowledge.admits(s)))
        .map(|s| {
            let score = self
                .plan
                .attendees
                .iter()
                .zip(&self.attendees)
                .filter(|(a, st)| !a.required && st.out.is_none() && st.knowledge.known_free(&s))
                .count();
            (score, s)
        })
        .collect();
        scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        scored.truncate(KEPT_CANDIDATES);
        scored.into_iter().map(|(_, s)| s).collect()
    }

    /// The earliest slot that would work if working hours were ignored:
    /// one between 07:00 and 22:00 in the owner's zone when there is one,
    /// so that the suggestion is not 00:00 for a window that has evenings.
    fn earliest_outside_hours(&self, now: DateTime<Utc>) -> Option<TimeRange> {
        [daily_hours(WAKING_HOURS), daily_hours("00:00-24:00")]
            .into_iter()
            .flatten()
            .find_map(|hours| {
                let free = self.own_free(&hours, now);
                grid_slots(
                    &free,
                    self.plan.duration,
                    self.plan.rules.granularity,
                    self.plan.tz,
                )
                .into_iter()
                .find(|s| {
                    !self.tried.contains(s) && !self.filtering().any(|k| k.knowledge.known_busy(s))
                })
            })
    }

    /// Whether a counter-proposal can be the next candidate: the meeting's
    /// length, in the window, untried, free for the organizer (working
    /// hours and buffers included) and not known-busy for anyone taking part.
    fn counter_fits(&self, c: &TimeRange, now: DateTime<Utc>) -> bool {
        c.duration() == self.plan.duration
            && self.plan.window.start <= c.start
            && c.end <= self.plan.window.end
            && !self.tried.contains(c)
            && !self.skipped.contains(c)
            && self
                .own_free(&self.plan.hours, now)
                .iter()
                .any(|f| f.start <= c.start && c.end <= f.end)
            && !self
                .attendees
                .iter()
                .any(|s| s.out.is_none() && s.knowledge.known_busy(c))
    }

    // -- rounds ------------------------------------------------------------

    fn start_round(&mut self, now: DateTime<Utc>, fx: &mut Vec<Effect>) {
        if now >= self.plan.deadline {
            self.fail(FailureReason::DeadlinePassed, fx);
            return;
        }
        if self.tried.len() >= self.plan.max_rounds as usize {
            let tried = self.tried.clone();
            self.fail(FailureReason::RoundsExhausted { tried }, fx);
            return;
        }
        let counters = std::mem::take(&mut self.counters);
        let next = counters
            .into_iter()
            .find(|c| self.counter_fits(c, now))
            .or_else(|| {
                let i = self
                    .candidates
                    .iter()
                    .position(|c| !self.tried.contains(c))?;
                let c = self.candidates[i];
                self.candidates.drain(..=i);
                Some(c)
            });
        let Some(slot) = next else {
            let earliest_outside = self.earliest_outside_hours(now);
            self.fail(FailureReason::NoCommonTime { earliest_outside }, fx);
            return;
        };
        self.tried.push(slot);
        for s in &mut self.attendees {
            s.answer = Answer::NotAsked;
            s.answer_by = None;
        }
        self.phase = Phase::OwnHold { slot };
        fx.push(Effect::HoldOwn {
            slot,
            expires: add(now, self.plan.hold_ttl),
        });
    }

    fn on_own_hold(
        &mut self,
        slot: TimeRange,
        held: bool,
        now: DateTime<Utc>,
        fx: &mut Vec<Effect>,
    ) {
        if self.phase != (Phase::OwnHold { slot }) {
            return;
        }
        if !held {
            // Nobody was asked: not a round. Candidates are finite, so this
            // ends (in `NoCommonTime` at worst) without a message.
            if let Some(slot) = self.tried.pop() {
                self.skipped.push(slot);
            }
            self.phase = Phase::Idle;
            self.start_round(now, fx);
            return;
        }
        let by = add(now, self.plan.hold_ttl);
        for (a, s) in self.plan.attendees.iter().zip(self.attendees.iter_mut()) {
            if s.out.is_some() {
                continue;
            }
            match &a.agent {
                Some(agent) => {
                    s.answer = Answer::Awaiting;
                    s.answer_by = Some(by);
                    fx.push(Effect::SendHold {
                        attendee: a.person.clone(),
                        agent: agent.clone(),
                        slot,
                        sequence: self.sequence,
                        expires: by,
                    });
                }
                None => {
                    // People read chat when they read it: wait until the deadline.
                    s.answer = Answer::Pending;
                    s.answer_by = Some(self.plan.deadline);
                    fx.push(Effect::ChatProposal {
                        attendee: a.person.clone(),
                        slot,
                    });
                }
            }
        }
        self.phase = Phase::Holding {
            slot,
            started: now,
            patient: true,
        };
        self.evaluate_round(now, fx);
    }

    fn on_hold_answer(
        &mut self,
        person: &str,
        slot: TimeRange,
        answer: HoldAnswer,
        now: DateTime<Utc>,
        fx: &mut Vec<Effect>,
    ) {
        let Phase::Holding { slot: current, .. } = self.phase else {
            return;
        };
        let Some(i) = self.index(person) else { return };
        let st = &mut self.attendees[i];
        if slot != current || !is_waiting(st.answer) {
            return;
        }
        match answer {
            HoldAnswer::Held { .. } => st.answer = Answer::Held,
            HoldAnswer::Declined { counter } => {
                st.answer = Answer::Declined;
                if let Some(c) = counter {
                    self.counters.push(c);
                }
            }
            HoldAnswer::Pending => {
                st.answer = Answer::Pending;
                st.answer_by = Some(self.plan.deadline);
            }
            HoldAnswer::Refused(why) => {
                st.answer = Answer::Gone;
                st.out = Some(Out::Refused(why));
            }
            HoldAnswer::Unreachable => {
                st.answer = Answer::Gone;
                st.out = Some(Out::Unreachable);
            }
        }
        self.evaluate_round(now, fx);
    }

    /// Decides a holding round: fail, abandon for the next slot, confirm, or wait.
    fn evaluate_round(&mut self, now: DateTime<Utc>, fx: &mut Vec<Effect>) {
        let Phase::Holding { slot, started, .. } = self.phase else {
            return;
        };
        if self.check_blocking_out(fx) {
            return;
        }
        let pairs = || self.plan.attendees.iter().zip(&self.attendees);
        let required_declined = pairs().any(|(a, s)| a.required && s.answer == Answer::Declined);
        if required_declined {
            self.abandon_round(slot, now, fx);
            return;
        }
        let held = pairs().filter(|(_, s)| s.answer == Answer::Held).count();
        let waiting = pairs().filter(|(_, s)| is_waiting(s.answer)).count();
        let quorum = self.plan.quorum.unwrap_or(0);
        if held + waiting < quorum {
            self.abandon_round(slot, now, fx);
            return;
        }
        let required_held = pairs()
            .filter(|(a, s)| a.required && s.out.is_none())
            .all(|(_, s)| s.answer == Answer::Held);
        let ready = required_held && held >= quorum;
        let patience_over = now >= add(started, self.plan.hold_ttl);
        if ready && (waiting == 0 || patience_over) {
            self.confirm(slot, now, fx);
        } else if waiting == 0 {
            self.abandon_round(slot, now, fx);
        }
    }

    fn confirm(&mut self, slot: TimeRange, now: DateTime<Utc>, fx: &mut Vec<Effect>) {
        let by = add(now, self.plan.hold_ttl);
        for (a, s) in self.plan.attendees.iter().zip(self.attendees.iter_mut()) {
            if s.answer != Answer::Held {
                continue;
            }
            match &a.agent {
                Some(agent) => {
                    s.answer = Answer::Confirming;
                    s.answer_by = Some(by);
                    fx.push(Effect::SendConfirm {
                        attendee: a.person.clone(),
                        agent: agent.clone(),
                        slot,
                        sequence: self.sequence,
                    });
                }
                None => {
                    s.answer = Answer::Confirmed;
                    fx.push(Effect::ChatConfirm {
                        attendee: a.person.clone(),
                        slot,
                    });
                }
            }
        }
        self.phase = Phase::Confirming { slot };
        self.evaluate_confirm(slot, now, fx);
    }

    fn on_confirm_answer(
        &mut self,
        person: &str,
        slot: TimeRange,
        failure: Option<ConfirmFailure>,
        now: DateTime<Utc>,
        fx: &mut Vec<Effect>,
    ) {
        if self.phase != (Phase::Confirming { slot }) {
            return;
        }
        let Some(i) = self.index(person) else { return };
        let st = &mut self.attendees[i];
        if st.answer != Answer::Confirming {
            return;
        }
        match failure {
            None => st.answer = Answer::Confirmed,
            Some(ConfirmFailure::SlotTaken) => st.answer = Answer::ConfirmFailed,
            Some(ConfirmFailure::Refused) => {
                st.answer = Answer::ConfirmFailed;
                st.out = Some(Out::Refused(Refusal::NotPermitted));
            }
            Some(ConfirmFailure::Unreachable) => self.confirm_lost(i, slot),
        }
        self.evaluate_confirm(slot, now, fx);
    }

    /// A confirm whose fate is unknown: the attendee may have booked, so a
    /// cancel is owed unless a later confirm replaces the booking.
    fn confirm_lost(&mut self, i: usize, slot: TimeRange) {
        let st = &mut self.attendees[i];
        st.answer = Answer::ConfirmFailed;
        st.out = Some(Out::Unreachable);
        let person = self.plan.attendees[i].person.clone();
        self.stale_bookings.retain(|(p, _)| *p != person);
        self.stale_bookings.push((person, slot));
    }

    fn evaluate_confirm(&mut self, slot: TimeRange, now: DateTime<Utc>, fx: &mut Vec<Effect>) {
        if self
            .attendees
            .iter()
            .any(|s| s.answer == Answer::Confirming)
        {
            return;
        }
        let pairs = || self.plan.attendees.iter().zip(&self.attendees);
        let confirmed = pairs()
            .filter(|(_, s)| s.answer == Answer::Confirmed)
            .count();
        let required_ok = pairs()
            .filter(|(a, s)| a.required && (s.out.is_none() || self.plan.quorum.is_none()))
            .all(|(_, s)| s.answer == Answer::Confirmed);
        if required_ok && confirmed >= self.plan.quorum.unwrap_or(0) {
            self.book(slot, fx);
            return;
        }
        self.unwind_confirming(slot, fx);
        if self.check_blocking_out(fx) {
            return;
        }
        self.start_round(now, fx);
    }

    /// Undoes a confirming round that will not book: attendees who booked
    /// (or may have) owe a cancel unless a later confirm with a higher
    /// sequence replaces their booking; people told by chat hear it is off;
    /// late holds are released; our own hold goes.
    fn unwind_confirming(&mut self, slot: TimeRange, fx: &mut Vec<Effect>) {
        let mut booked = false;
        for (a, s) in self.plan.attendees.iter().zip(self.attendees.iter_mut()) {
            match (s.answer, &a.agent) {
                (Answer::Confirming | Answer::Confirmed, Some(_)) => {
                    self.stale_bookings.retain(|(p, _)| *p != a.person);
                    self.stale_bookings.push((a.person.clone(), slot));
                    booked = true;
                }
                (Answer::Confirmed, None) | (Answer::Awaiting | Answer::Pending, None) => {
                    fx.push(Effect::ChatRelease {
                        attendee: a.person.clone(),
                        slot,
                    })
                }
                (Answer::Awaiting | Answer::Pending, Some(agent)) => fx.push(Effect::SendRelease {
                    attendee: a.person.clone(),
                    agent: agent.clone(),
                    slot,
                    sequence: self.sequence,
                }),
                _ => {}
            }
            s.answer = Answer::NotAsked;
            s.answer_by = None;
        }
        if booked || self.stale_bookings.iter().any(|(_, s)| *s == slot) {
            self.sequence = self.sequence.saturating_add(1);
        }
        fx.push(Effect::ReleaseOwn { slot });
        self.phase = Phase::Idle;
    }

    fn book(&mut self, slot: TimeRange, fx: &mut Vec<Effect>) {
        fx.push(Effect::BookOwn {
            slot,
            sequence: self.sequence,
        });
        let mut accepted = Vec::new();
        let mut declined = Vec::new();
        let mut missing = Vec::new();
        for (a, s) in self.plan.attendees.iter().zip(&self.attendees) {
            let party = Party {
                person: a.person.clone(),
                name: a.name.clone(),
            };
            match (s.answer, s.out) {
                (Answer::Confirmed, _) => accepted.push(party),
                (_, Some(Out::Unreachable | Out::NoAnswer)) => missing.push(party),
                (Answer::Awaiting | Answer::Pending | Answer::NotAsked, None) => {
                    missing.push(party)
                }
                _ => declined.push(party),
            }
        }
        // Optional attendees still deciding: a late hold would block their
        // calendar for nothing.
        for (a, s) in self.plan.attendees.iter().zip(&self.attendees) {
            if is_waiting(s.answer) {
                fx.push(match &a.agent {
                    Some(agent) => Effect::SendRelease {
                        attendee: a.person.clone(),
                        agent: agent.clone(),
                        slot,
                        sequence: self.sequence,
                    },
                    None => Effect::ChatRelease {
                        attendee: a.person.clone(),
                        slot,
                    },
                });
            }
        }
        let confirmed: BTreeSet<String> = accepted.iter().map(|p| p.person.clone()).collect();
        self.push_cancels(|p| !confirmed.contains(p), fx);
        let outcome = Outcome::Booked {
            slot,
            sequence: self.sequence,
            accepted,
            declined,
            missing,
        };
        self.finish(outcome, fx);
    }

    /// Cancels the stale bookings of attendees `keep_out` selects.
    fn push_cancels(&mut self, cancel: impl Fn(&str) -> bool, fx: &mut Vec<Effect>) {
        for (person, slot) in std::mem::take(&mut self.stale_bookings) {
            if !cancel(&person) {
                continue;
            }
            if let Some(agent) = self
                .plan
                .attendees
                .iter()
                .find(|a| a.person == person)
                .and_then(|a| a.agent.clone())
            {
                fx.push(Effect::SendCancel {
                    attendee: person,
                    agent,
                    slot,
                    sequence: self.sequence,
                });
            }
        }
    }

    /// Releases everything the holding round placed.
    fn release_round(&mut self, slot: TimeRange, fx: &mut Vec<Effect>) {
        for (a, s) in self.plan.attendees.iter().zip(self.attendees.iter_mut()) {
            // Declines and refusals hold nothing; a timed-out or unreachable
            // request may have arrived and placed a hold, so it is released.
            let asked = !matches!(s.answer, Answer::NotAsked | Answer::Declined)
                && !matches!(s.out, Some(Out::Refused(_)));
            if asked {
                match &a.agent {
                    Some(agent) => fx.push(Effect::SendRelease {
                        attendee: a.person.clone(),
                        agent: agent.clone(),
                        slot,
                        sequence: self.sequence,
                    }),
                    None => fx.push(Effect::ChatRelease {
                        attendee: a.person.clone(),
                        slot,
                    }),
                }
            }
            s.answer = Answer::NotAsked;
            s.answer_by = None;
        }
        fx.push(Effect::ReleaseOwn { slot });
        self.phase = Phase::Idle;
    }

    fn abandon_round(&mut self, slot: TimeRange, now: DateTime<Utc>, fx: &mut Vec<Effect>) {
        self.release_round(slot, fx);
        self.start_round(now, fx);
    }

    fn on_tick(&mut self, now: DateTime<Utc>, fx: &mut Vec<Effect>) {
        match self.phase {
            Phase::Availability { until } if now >= until => {
                for (a, s) in self.plan.attendees.iter().zip(self.attendees.iter_mut()) {
                    if a.agent.is_some() && !s.answered_availability {
                        s.answered_availability = true;
                        s.out = Some(Out::Unreachable);
                    }
                }
                self.after_availability(now, fx);
            }
            Phase::Holding {
                slot,
                started,
                patient: true,
            } if now >= add(started, self.plan.hold_ttl) => {
                self.phase = Phase::Holding {
                    slot,
                    started,
                    patient: false,
                };
                self.on_tick(now, fx);
            }
            Phase::Holding { .. } => {
                for (a, s) in self.plan.attendees.iter().zip(self.attendees.iter_mut()) {
                    if is_waiting(s.answer) && s.answer_by.is_some_and(|by| now >= by) {
                        s.out = Some(if s.answer == Answer::Pending || a.agent.is_none() {
                            Out::NoAnswer
                        } else {
                            Out::Unreachable
                        });
                        s.answer = Answer::Gone;
                    }
                }
                self.evaluate_round(now, fx);
            }
            Phase::Confirming { slot } => {
                let late: Vec<usize> = (0..self.attendees.len())
                    .filter(|&i| {
                        let s = &self.attendees[i];
                        s.answer == Answer::Confirming && s.answer_by.is_some_and(|by| now >= by)
                    })
                    .collect();
                for &i in &late {
                    self.confirm_lost(i, slot);
                }
                if !late.is_empty() {
                    self.evaluate_confirm(slot, now, fx);
                }
            }
            _ => {}
        }
    }

    // -- the end -----------------------------------------------------------

    /// Gives up: releases whatever the current round placed, cancels stale
    /// bookings and tells the owner why.
    fn fail(&mut self, reason: FailureReason, fx: &mut Vec<Effect>) {
        match self.phase {
            Phase::OwnHold { slot } => fx.push(Effect::ReleaseOwn { slot }),
            Phase::Holding { slot, .. } => self.release_round(slot, fx),
            Phase::Confirming { slot } => self.unwind_confirming(slot, fx),
            Phase::Availability { .. } | Phase::Idle | Phase::Done => {}
        }
        self.push_cancels(|_| true, fx);
        self.finish(Outcome::Failed { reason }, fx);
    }

    fn finish(&mut self, outcome: Outcome, fx: &mut Vec<Effect>) {
        self.phase = Phase::Done;
        self.outcome = Some(outcome.clone());
        fx.push(Effect::Notify(outcome));
    }

    /// At the deadline: a required attendee whose owner (or who, asked by
    /// chat) never answered is the reason; otherwise the deadline itself.
    fn deadline_reason(&self) -> FailureReason {
        if let Phase::Holding { .. } = self.phase {
            let waiting = self
                .plan
                .attendees
                .iter()
                .zip(&self.attendees)
                .find(|(a, s)| a.required && s.answer == Answer::Pending);
            if let Some((a, _)) = waiting {
                return FailureReason::NoAnswer {
                    person: a.person.clone(),
                    name: a.name.clone(),
                };
            }
        }
        FailureReason::DeadlinePassed
    }

    fn index(&self, person: &str) -> Option<usize> {
        self.plan.attendees.iter().position(|a| a.person == person)
    }
}

fn is_waiting(a: Answer) -> bool {
    matches!(a, Answer::Awaiting | Answer::Pending)
}

fn add(t: DateTime<Utc>, d: TimeDelta) -> DateTime<Utc> {
    t.checked_add_signed(d).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// When a suggestion outside working hours should preferably fall.
const WAKING_HOURS: &str = "07:00-22:00";

/// The same hours (`"HH:MM-HH:MM"`) every day of the week.
fn daily_hours(spec: &str) -> Option<WorkingHours> {
    let days = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];
    let specs: Vec<(Weekday, &str)> = days.iter().map(|d| (*d, spec)).collect();
    WorkingHours::from_weekday_specs(&specs).ok()
}

/// Every slot of `duration` starting on the grid inside `free`, earliest
/// first (overlapping starts included: 10:00 and 10:30 for an hour), at
/// most [`MAX_ENUMERATED`].
fn grid_slots(
    free: &[TimeRange],
    duration: TimeDelta,
    granularity: TimeDelta,
    tz: Tz,
) -> Vec<TimeRange> {
    let mut out = Vec::new();
    if duration <= TimeDelta::zero() {
        return out;
    }
    let step = if granularity > TimeDelta::zero() {
        granularity
    } else {
        duration
    };
    for r in free {
        let mut next = align_up(r.start, granularity, tz);
        while let Some(start) = next {
            if out.len() >= MAX_ENUMERATED {
                return out;
            }
            let Some(end) = start.checked_add_signed(duration) else {
                break;
            };
            if end > r.end {
                break;
            }
            out.push(TimeRange { start, end });
            next = start
                .checked_add_signed(step)
                .and_then(|t| align_up(t, granularity, tz))
                .filter(|t| *t > start);
        }
    }
    out
}

/// `TimeDelta` as whole seconds (chrono has no serde for it).
mod secs {
    use chrono::TimeDelta;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &TimeDelta, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(d.num_seconds())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<TimeDelta, D::Error> {
        let n = i64::deserialize(d)?;
        TimeDelta::try_seconds(n)
            .ok_or_else(|| serde::de::Error::custom(format!("{n} seconds is out of range")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, VecDeque};

    fn utc(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, d, h, m, 0)
            .single()
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    fn slot(d: u32, h: u32, m: u32) -> TimeRange {
        let start = utc(d, h, m);
        TimeRange {
            start,
            end: start + TimeDelta::hours(1),
        }
    }

    /// Friday 16 January 2026, noon: planning next week (Mon 19 – Fri 23).
    fn now() -> DateTime<Utc> {
        utc(16, 12, 0)
    }

    fn person(name: &str) -> String {
        format!("{}@example.org", name.to_lowercase())
    }

    fn att(name: &str, required: bool, has_agent: bool) -> Attendee {
        Attendee {
            person: person(name),
            name: name.to_string(),
            agent: has_agent.then(|| format!("{}-agent@example.org", name.to_lowercase())),
            required,
        }
    }

    fn plan(attendees: Vec<Attendee>) -> Plan {
        Plan {
            meeting: "01JH0000TEST@attache".into(),
            summary: "Sync".into(),
            sequence: 0,
            duration: TimeDelta::hours(1),
            window: TimeRange {
                start: utc(19, 0, 0),
                end: utc(24, 0, 0),
            },
            own_busy: Vec::new(),
            hours: WorkingHours::default(),
            tz: Tz::UTC,
            rules: SlotRules::default(),
            attendees,
            quorum: None,
            max_rounds: DEFAULT_MAX_ROUNDS,
            hold_ttl: DEFAULT_HOLD_TTL,
            deadline: utc(17, 12, 0),
        }
    }

    fn is_message(e: &Effect) -> bool {
        !matches!(
            e,
            Effect::HoldOwn { .. }
                | Effect::ReleaseOwn { .. }
                | Effect::BookOwn { .. }
                | Effect::Notify(_)
        )
    }

    /// Runs a negotiation against a simulated world: `respond` turns each
    /// effect into the events it causes (none = silence, answered by
    /// timeouts). Returns the final state and every effect, in order.
    fn simulate(
        plan: Plan,
        mut respond: impl FnMut(&Effect) -> Vec<Event>,
    ) -> (Negotiation, Vec<Effect>) {
        let mut t = now();
        let (mut n, first) = Negotiation::new(plan, t);
        let mut log = Vec::new();
        let mut queue = VecDeque::new();
        let mut absorb = |fx: Vec<Effect>, log: &mut Vec<Effect>, q: &mut VecDeque<Event>| {
            for e in fx {
                q.extend(respond(&e));
                log.push(e);
            }
        };
        absorb(first, &mut log, &mut queue);
        for _ in 0..10_000 {
            if let Some(ev) = queue.pop_front() {
                let fx = n.on(ev, t);
                absorb(fx, &mut log, &mut queue);
            } else if n.is_done() {
                break;
            } else {
                let Some(wake) = n.next_wakeup() else { break };
                t = t.max(wake);
                let fx = n.on(Event::Tick, t);
                absorb(fx, &mut log, &mut queue);
            }
        }
        (n, log)
    }

    /// A world where every attendee is free except at the listed slots, and
    /// counters with the given slot when declining.
    fn world(
        busy: BTreeMap<String, Vec<TimeRange>>,
        counters: BTreeMap<String, TimeRange>,
    ) -> impl FnMut(&Effect) -> Vec<Event> {
        move |e| match e {
            Effect::AskAvailability { attendee, .. } => vec![Event::Availability {
                attendee: attendee.clone(),
                answer: AvailabilityAnswer::YesNoOnly,
            }],
            Effect::HoldOwn { slot, .. } => vec![Event::OwnHold {
                slot: *slot,
                held: true,
            }],
            Effect::SendHold { attendee, slot, .. } => {
                let taken = busy
                    .get(attendee)
                    .is_some_and(|b| b.iter().any(|x| x.overlaps(slot)));
                let answer = if taken {
                    HoldAnswer::Declined {
                        counter: counters.get(attendee).copied(),
                    }
                } else {
                    HoldAnswer::Held {
                        expires: slot.start,
                    }
                };
                vec![Event::HoldAnswer {
                    attendee: attendee.clone(),
                    slot: *slot,
                    answer,
                }]
            }
            Effect::SendConfirm { attendee, slot, .. } => vec![Event::Confirmed {
                attendee: attendee.clone(),
                slot: *slot,
            }],
            _ => Vec::new(),
        }
    }

    fn booked(log: &[Effect]) -> Option<(TimeRange, usize, usize)> {
        log.iter().find_map(|e| match e {
            Effect::Notify(Outcome::Booked {
                slot,
                accepted,
                missing,
                ..
            }) => Some((*slot, accepted.len(), missing.len())),
            _ => None,
        })
    }

    fn failure(log: &[Effect]) -> Option<FailureReason> {
        log.iter().find_map(|e| match e {
            Effect::Notify(Outcome::Failed { reason }) => Some(reason.clone()),
            _ => None,
        })
    }

    fn messages(log: &[Effect]) -> usize {
        log.iter().filter(|e| is_message(e)).count()
    }

    fn three() -> Vec<Attendee> {
        vec![
            att("Bob", true, true),
            att("Carol", true, true),
            att("Dave", true, true),
        ]
    }

    #[test]
    fn three_attendees_who_all_hold_are_booked_at_the_earliest_slot() {
        let (n, log) = simulate(plan(three()), world(BTreeMap::new(), BTreeMap::new()));
        assert_eq!(booked(&log), Some((slot(19, 9, 0), 3, 0)));
        assert!(log.contains(&Effect::BookOwn {
            slot: slot(19, 9, 0),
            sequence: 0
        }));
        // 3 queries + 3 holds + 3 confirms, nothing released.
        assert_eq!(messages(&log), 9);
        assert!(messages(&log) <= message_bound(3, n.tried().len()));
        assert_eq!(n.tried(), &[slot(19, 9, 0)]);
    }

    #[test]
    fn a_decline_with_a_counter_that_suits_the_others_books_the_counter() {
        let busy = BTreeMap::from([(person("Bob"), vec![slot(19, 9, 0)])]);
        let counters = BTreeMap::from([(person("Bob"), slot(20, 14, 0))]);
        let (n, log) = simulate(plan(three()), world(busy, counters));
        assert_eq!(booked(&log), Some((slot(20, 14, 0), 3, 0)));
        assert_eq!(n.tried(), &[slot(19, 9, 0), slot(20, 14, 0)]);
        // Carol and Dave held the first slot and were released.
        let released = log
            .iter()
            .filter(|e| matches!(e, Effect::SendRelease { slot: s, .. } if *s == slot(19, 9, 0)))
            .count();
        assert_eq!(released, 2);
        assert!(log.contains(&Effect::ReleaseOwn {
            slot: slot(19, 9, 0)
        }));
    }

    #[test]
    fn a_counter_known_busy_for_another_attendee_is_passed_over() {
        let busy = BTreeMap::from([(person("Bob"), vec![slot(19, 9, 0)])]);
        let counters = BTreeMap::from([(person("Bob"), slot(20, 14, 0))]);
        let mut respond = world(busy, counters);
        let (_, log) = simulate(plan(three()), move |e| match e {
            Effect::AskAvailability { attendee, .. } if *attendee == person("Carol") => {
                vec![Event::Availability {
                    attendee: attendee.clone(),
                    answer: AvailabilityAnswer::Busy {
                        shown: vec![TimeRange {
                            start: utc(19, 0, 0),
                            end: utc(24, 0, 0),
                        }],
                        busy: vec![slot(20, 14, 0)],
                    },
                }]
            }
            other => respond(other),
        });
        // The next ranked slot Bob can make instead of his counter.
        assert_eq!(booked(&log), Some((slot(19, 10, 0), 3, 0)));
        assert!(
            !log.iter()
                .any(|e| matches!(e, Effect::HoldOwn { slot: s, .. } if *s == slot(20, 14, 0)))
        );
    }

    #[test]
    fn a_required_attendee_offline_fails_at_once_naming_them() {
        let mut respond = world(BTreeMap::new(), BTreeMap::new());
        let (_, log) = simulate(plan(three()), move |e| match e {
            Effect::AskAvailability { attendee, .. } if *attendee == person("Carol") => {
                vec![Event::Availability {
                    attendee: attendee.clone(),
                    answer: AvailabilityAnswer::Unreachable,
                }]
            }
            other => respond(other),
        });
        assert_eq!(
            failure(&log),
            Some(FailureReason::AttendeeUnreachable {
                person: person("Carol"),
                name: "Carol".into()
            })
        );
        assert!(!log.iter().any(|e| matches!(e, Effect::SendHold { .. })));
    }

    #[test]
    fn silence_in_phase_one_counts_as_unreachable_after_the_hold_ttl() {
        let mut respond = world(BTreeMap::new(), BTreeMap::new());
        let (_, log) = simulate(plan(three()), move |e| match e {
            Effect::AskAvailability { attendee, .. } if *attendee == person("Dave") => vec![],
            other => respond(other),
        });
        assert!(matches!(
            failure(&log),
            Some(FailureReason::AttendeeUnreachable { name, .. }) if name == "Dave"
        ));
    }

    #[test]
    fn an_optional_attendee_offline_does_not_block() {
        let mut respond = world(BTreeMap::new(), BTreeMap::new());
        let mut people = three();
        people.push(att("Erin", false, true));
        let (_, log) = simulate(plan(people), move |e| match e {
            Effect::AskAvailability { attendee, .. } if *attendee == person("Erin") => vec![],
            other => respond(other),
        });
        assert_eq!(booked(&log), Some((slot(19, 9, 0), 3, 1)));
    }

    #[test]
    fn quorum_three_of_five_with_one_offline_is_booked() {
        let mut respond = world(BTreeMap::new(), BTreeMap::new());
        let mut people = three();
        people.push(att("Erin", true, true));
        people.push(att("Frank", true, true));
        let mut p = plan(people);
        p.quorum = Some(3);
        let (n, log) = simulate(p, move |e| match e {
            Effect::AskAvailability { attendee, .. } if *attendee == person("Frank") => {
                vec![Event::Availability {
                    attendee: attendee.clone(),
                    answer: AvailabilityAnswer::Unreachable,
                }]
            }
            other => respond(other),
        });
        assert_eq!(booked(&log), Some((slot(19, 9, 0), 4, 1)));
        assert!(!log.iter().any(
            |e| matches!(e, Effect::SendHold { attendee, .. } if *attendee == person("Frank"))
        ));
        assert!(messages(&log) <= message_bound(5, n.tried().len()));
    }

    #[test]
    fn quorum_that_cannot_be_reached_fails_with_the_numbers() {
        let mut respond = world(BTreeMap::new(), BTreeMap::new());
        let mut p = plan(three());
        p.quorum = Some(3);
        let (_, log) = simulate(p, move |e| match e {
            Effect::AskAvailability { attendee, .. } if *attendee == person("Bob") => vec![],
            other => respond(other),
        });
        assert_eq!(
            failure(&log),
            Some(FailureReason::QuorumImpossible {
                needed: 3,
                reachable: 2
            })
        );
    }

    /// The three-person plan where Bob shows the whole week and is busy
    /// every day from `from` to `to` hours (24 for midnight).
    fn bob_busy_every_day(from: i64, to: i64) -> (Negotiation, Vec<Effect>) {
        let mut respond = world(BTreeMap::new(), BTreeMap::new());
        let bob_busy: Vec<TimeRange> = (19..24)
            .map(|d| TimeRange {
                start: utc(d, 0, 0) + TimeDelta::hours(from),
                end: utc(d, 0, 0) + TimeDelta::hours(to),
            })
            .collect();
        simulate(plan(three()), move |e| match e {
            Effect::AskAvailability { attendee, .. } if *attendee == person("Bob") => {
                vec![Event::Availability {
                    attendee: attendee.clone(),
                    answer: AvailabilityAnswer::Busy {
                        shown: vec![TimeRange {
                            start: utc(19, 0, 0),
                            end: utc(24, 0, 0),
                        }],
                        busy: bob_busy.clone(),
                    },
                }]
            }
            other => respond(other),
        })
    }

    #[test]
    fn no_common_time_in_working_hours_names_the_earliest_time_outside_them() {
        let (n, log) = bob_busy_every_day(0, 17);
        assert_eq!(
            failure(&log),
            Some(FailureReason::NoCommonTime {
                earliest_outside: Some(slot(19, 17, 0))
            })
        );
        assert!(n.tried().is_empty());
        assert_eq!(messages(&log), 3);
    }

    #[test]
    fn the_time_named_outside_working_hours_is_a_waking_one_when_there_is_one() {
        // Busy 09:00–23:00: the earliest free hour is 00:00, but 07:00 is
        // the one worth naming. Busy 02:00–24:00: only the night is left.
        for (from, to, named) in [(9, 23, slot(19, 7, 0)), (2, 24, slot(19, 0, 0))] {
            let (_, log) = bob_busy_every_day(from, to);
            assert_eq!(
                failure(&log),
                Some(FailureReason::NoCommonTime {
                    earliest_outside: Some(named)
                }),
                "Bob busy {from}:00–{to}:00"
            );
        }
    }

    #[test]
    fn slots_level_answers_restrict_candidates_to_the_offered_slots() {
        let mut respond = world(BTreeMap::new(), BTreeMap::new());
        let (_, log) = simulate(plan(three()), move |e| match e {
            Effect::AskAvailability { attendee, .. } if *attendee == person("Carol") => {
                vec![Event::Availability {
                    attendee: attendee.clone(),
                    answer: AvailabilityAnswer::Slots {
                        shown: Vec::new(),
                        free: vec![slot(21, 15, 0), slot(22, 10, 0)],
                    },
                }]
            }
            other => respond(other),
        });
        assert_eq!(booked(&log), Some((slot(21, 15, 0), 3, 0)));
    }

    #[test]
    fn slots_known_free_for_more_optional_attendees_come_first() {
        let mut respond = world(BTreeMap::new(), BTreeMap::new());
        let mut people = three();
        people.push(att("Erin", false, true));
        let (_, log) = simulate(plan(people), move |e| match e {
            Effect::AskAvailability { attendee, .. } if *attendee == person("Erin") => {
                vec![Event::Availability {
                    attendee: attendee.clone(),
                    answer: AvailabilityAnswer::Slots {
                        shown: Vec::new(),
                        free: vec![slot(22, 11, 0)],
                    },
                }]
            }
            other => respond(other),
        });
        assert_eq!(booked(&log), Some((slot(22, 11, 0), 4, 0)));
    }

    #[test]
    fn rounds_run_out_after_max_rounds_with_the_slots_tried() {
        let always: Vec<TimeRange> = vec![TimeRange {
            start: utc(19, 0, 0),
            end: utc(24, 0, 0),
        }];
        let busy = BTreeMap::from([(person("Bob"), always)]);
        let mut p = plan(three());
        p.max_rounds = 2;
        let (_, log) = simulate(p, world(busy, BTreeMap::new()));
        assert_eq!(
            failure(&log),
            Some(FailureReason::RoundsExhausted {
                tried: vec![slot(19, 9, 0), slot(19, 9, 30)]
            })
        );
        assert!(messages(&log) <= message_bound(3, 2));
        // Every own hold was released.
        assert_eq!(
            log.iter()
                .filter(|e| matches!(e, Effect::ReleaseOwn { .. }))
                .count(),
            2
        );
    }

    #[test]
    fn a_failed_confirm_moves_on_with_a_higher_sequence_and_replaces_bookings() {
        let mut respond = world(BTreeMap::new(), BTreeMap::new());
        let (n, log) = simulate(plan(three()), move |e| match e {
            Effect::SendConfirm {
                attendee, slot: s, ..
            } if *attendee == person("Carol") && *s == slot(19, 9, 0) => {
                vec![Event::ConfirmFailed {
                    attendee: attendee.clone(),
                    slot: *s,
                    reason: ConfirmFailure::SlotTaken,
                }]
            }
            other => respond(other),
        });
        assert_eq!(booked(&log), Some((slot(19, 9, 30), 3, 0)));
        assert_eq!(n.sequence(), 1);
        assert!(log.contains(&Effect::BookOwn {
            slot: slot(19, 9, 30),
            sequence: 1
        }));
        assert!(log.iter().any(|e| matches!(
            e,
            Effect::SendHold { slot: s, sequence: 1, .. } if *s == slot(19, 9, 30)
        )));
        // Bob and Dave re-confirmed with sequence 1, which replaces their
        // booking of 09:00: no cancel is owed.
        assert!(!log.iter().any(|e| matches!(e, Effect::SendCancel { .. })));
        assert!(messages(&log) <= message_bound(3, n.tried().len()));
    }

    #[test]
    fn bookings_left_by_a_failed_confirm_are_cancelled_when_the_meeting_fails() {
        let mut respond = world(BTreeMap::new(), BTreeMap::new());
        let mut p = plan(three());
        p.max_rounds = 1;
        let (_, log) = simulate(p, move |e| match e {
            Effect::SendConfirm {
                attendee, slot: s, ..
            } if *attendee == person("Carol") => {
                vec![Event::ConfirmFailed {
                    attendee: attendee.clone(),
                    slot: *s,
                    reason: ConfirmFailure::SlotTaken,
                }]
            }
            other => respond(other),
        });
        assert!(matches!(
            failure(&log),
            Some(FailureReason::RoundsExhausted { .. })
        ));
        let cancelled: Vec<&str> = log
            .iter()
            .filter_map(|e| match e {
                Effect::SendCancel { attendee, .. } => Some(attendee.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(cancelled, vec![person("Bob"), person("Dave")]);
        assert!(messages(&log) <= message_bound(3, 1));
    }

    #[test]
    fn a_refusal_names_the_attendee() {
        let mut respond = world(BTreeMap::new(), BTreeMap::new());
        let (_, log) = simulate(plan(three()), move |e| match e {
            Effect::SendHold { attendee, slot, .. } if *attendee == person("Dave") => {
                vec![Event::HoldAnswer {
                    attendee: attendee.clone(),
                    slot: *slot,
                    answer: HoldAnswer::Refused(Refusal::NotPermitted),
                }]
            }
            other => respond(other),
        });
        assert!(matches!(
            failure(&log),
            Some(FailureReason::Refused { name, why: Refusal::NotPermitted, .. }) if name == "Dave"
        ));
        // Bob and Carol held and are released; Dave holds nothing.
        let released: Vec<&str> = log
            .iter()
            .filter_map(|e| match e {
                Effect::SendRelease { attendee, .. } => Some(attendee.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(released, vec![person("Bob"), person("Carol")]);
    }

    #[test]
    fn a_person_without_an_agent_is_asked_by_chat() {
        let mut respond = world(BTreeMap::new(), BTreeMap::new());
        let mut people = three();
        people.push(att("Gran", true, false));
        let mut asked = 0;
        let (_, log) = simulate(plan(people), move |e| match e {
            Effect::ChatProposal { attendee, .. } => {
                asked += 1;
                // No to the first proposal, yes to the second.
                vec![Event::ChatAnswer {
                    attendee: attendee.clone(),
                    yes: asked > 1,
                }]
            }
            other => respond(other),
        });
        assert_eq!(booked(&log), Some((slot(19, 9, 30), 4, 0)));
        assert!(log.contains(&Effect::ChatConfirm {
            attendee: person("Gran"),
            slot: slot(19, 9, 30)
        }));
        assert!(!log.iter().any(
            |e| matches!(e, Effect::AskAvailability { attendee, .. } if *attendee == person("Gran"))
        ));
    }

    #[test]
    fn a_pending_answer_waits_for_the_owner_and_no_answer_names_them() {
        let mut respond = world(BTreeMap::new(), BTreeMap::new());
        let (n, log) = simulate(plan(three()), move |e| match e {
            Effect::SendHold { attendee, slot, .. } if *attendee == person("Bob") => {
                vec![Event::HoldAnswer {
                    attendee: attendee.clone(),
                    slot: *slot,
                    answer: HoldAnswer::Pending,
                }]
            }
            other => respond(other),
        });
        assert!(matches!(
            failure(&log),
            Some(FailureReason::NoAnswer { name, .. }) if name == "Bob"
        ));
        assert!(n.is_done());
    }

    #[test]
    fn the_deadline_gives_up_and_releases() {
        let mut respond = world(BTreeMap::new(), BTreeMap::new());
        let mut p = plan(three());
        p.deadline = now() + TimeDelta::minutes(2);
        let (_, log) = simulate(p, move |e| match e {
            Effect::SendHold { .. } => vec![],
            other => respond(other),
        });
        assert_eq!(failure(&log), Some(FailureReason::DeadlinePassed));
        assert!(log.contains(&Effect::ReleaseOwn {
            slot: slot(19, 9, 0)
        }));
    }

    #[test]
    fn confirms_under_way_at_the_deadline_still_book() {
        let mut p = plan(three());
        p.deadline = now() + TimeDelta::minutes(1);
        let (mut n, _) = Negotiation::new(p, now());
        for a in three() {
            n.on(
                Event::Availability {
                    attendee: a.person,
                    answer: AvailabilityAnswer::YesNoOnly,
                },
                now(),
            );
        }
        let s = slot(19, 9, 0);
        n.on(
            Event::OwnHold {
                slot: s,
                held: true,
            },
            now(),
        );
        let mut confirms = 0;
        for a in three() {
            let fx = n.on(
                Event::HoldAnswer {
                    attendee: a.person,
                    slot: s,
                    answer: HoldAnswer::Held { expires: now() },
                },
                now(),
            );
            confirms += fx
                .iter()
                .filter(|e| matches!(e, Effect::SendConfirm { .. }))
                .count();
        }
        assert_eq!(confirms, 3);
        let late = now() + TimeDelta::minutes(2);
        assert!(n.next_wakeup().is_some_and(|t| t > n.plan().deadline));
        assert!(n.on(Event::Tick, late).is_empty());
        for a in three() {
            n.on(
                Event::Confirmed {
                    attendee: a.person,
                    slot: s,
                },
                late,
            );
        }
        assert!(matches!(n.outcome(), Some(Outcome::Booked { slot, .. }) if *slot == s));
    }

    #[test]
    fn cancel_releases_everything_held() {
        let (mut n, _) = Negotiation::new(plan(three()), now());
        for a in three() {
            n.on(
                Event::Availability {
                    attendee: a.person,
                    answer: AvailabilityAnswer::YesNoOnly,
                },
                now(),
            );
        }
        n.on(
            Event::OwnHold {
                slot: slot(19, 9, 0),
                held: true,
            },
            now(),
        );
        n.on(
            Event::HoldAnswer {
                attendee: person("Bob"),
                slot: slot(19, 9, 0),
                answer: HoldAnswer::Held { expires: now() },
            },
            now(),
        );
        let fx = n.on(Event::Cancel, now());
        assert_eq!(
            fx.iter()
                .filter(|e| matches!(e, Effect::SendRelease { .. }))
                .count(),
            3
        );
        assert!(fx.contains(&Effect::ReleaseOwn {
            slot: slot(19, 9, 0)
        }));
        assert_eq!(
            n.outcome(),
            Some(&Outcome::Failed {
                reason: FailureReason::Cancelled
            })
        );
        assert!(n.on(Event::Tick, now()).is_empty());
    }

    #[test]
    fn our_own_slot_taken_skips_to_the_next_without_messages() {
        let mut respond = world(BTreeMap::new(), BTreeMap::new());
        let (_, log) = simulate(plan(three()), move |e| match e {
            Effect::HoldOwn { slot: s, .. } if *s == slot(19, 9, 0) => vec![Event::OwnHold {
                slot: *s,
                held: false,
            }],
            other => respond(other),
        });
        assert_eq!(booked(&log), Some((slot(19, 9, 30), 3, 0)));
        assert!(
            !log.iter()
                .any(|e| matches!(e, Effect::SendHold { slot: s, .. } if *s == slot(19, 9, 0)))
        );
    }

    /// Slots another negotiation took from our own calendar cost no round:
    /// with one round allowed, the first free slot is still booked.
    #[test]
    fn slots_taken_from_our_own_calendar_do_not_use_up_rounds() {
        let mut respond = world(BTreeMap::new(), BTreeMap::new());
        let mut p = plan(three());
        p.max_rounds = 1;
        let (_, log) = simulate(p, move |e| match e {
            Effect::HoldOwn { slot: s, .. } if *s == slot(19, 9, 0) || *s == slot(19, 9, 30) => {
                vec![Event::OwnHold {
                    slot: *s,
                    held: false,
                }]
            }
            other => respond(other),
        });
        assert_eq!(booked(&log), Some((slot(19, 10, 0), 3, 0)));
    }

    /// A negotiation restored while waiting for availability asks again
    /// whoever had not answered, and only them.
    #[test]
    fn a_resumed_negotiation_asks_again_whoever_had_not_answered() {
        let (mut n, _) = Negotiation::new(plan(three()), now());
        let first = three().remove(0).person;
        n.on(
            Event::Availability {
                attendee: first.clone(),
                answer: AvailabilityAnswer::YesNoOnly,
            },
            now(),
        );
        let json = serde_json::to_string(&n).unwrap_or_default();
        let mut back: Negotiation = serde_json::from_str(&json).unwrap_or_else(|_| n.clone());
        let again = back.resumed(now() + TimeDelta::minutes(1));
        let asked: Vec<&String> = again
            .iter()
            .filter_map(|e| match e {
                Effect::AskAvailability { attendee, .. } => Some(attendee),
                _ => None,
            })
            .collect();
        assert_eq!(asked.len(), 2, "{again:?}");
        assert!(!asked.contains(&&first));
    }

    #[test]
    fn a_state_restored_mid_negotiation_produces_the_same_effects() {
        let (mut n, _) = Negotiation::new(plan(three()), now());
        for a in three() {
            n.on(
                Event::Availability {
                    attendee: a.person,
                    answer: AvailabilityAnswer::YesNoOnly,
                },
                now(),
            );
        }
        n.on(
            Event::OwnHold {
                slot: slot(19, 9, 0),
                held: true,
            },
            now(),
        );
        n.on(
            Event::HoldAnswer {
                attendee: person("Bob"),
                slot: slot(19, 9, 0),
                answer: HoldAnswer::Declined {
                    counter: Some(slot(21, 13, 0)),
                },
            },
            now(),
        );
        let json = serde_json::to_string(&n).unwrap_or_default();
        let restored: Result<Negotiation, _> = serde_json::from_str(&json);
        let Ok(mut restored) = restored else {
            panic!("the state does not deserialize: {json}");
        };
        assert_eq!(restored, n);
        let later = now() + TimeDelta::minutes(1);
        let rest = [
            Event::OwnHold {
                slot: slot(21, 13, 0),
                held: true,
            },
            Event::HoldAnswer {
                attendee: person("Bob"),
                slot: slot(21, 13, 0),
                answer: HoldAnswer::Held { expires: later },
            },
            Event::HoldAnswer {
                attendee: person("Carol"),
                slot: slot(21, 13, 0),
                answer: HoldAnswer::Held { expires: later },
            },
            Event::Tick,
        ];
        let mut a = Vec::new();
        let mut b = Vec::new();
        for (i, ev) in rest.into_iter().enumerate() {
            let t = later + TimeDelta::minutes(3 * i as i64);
            a.extend(n.on(ev.clone(), t));
            b.extend(restored.on(ev, t));
        }
        assert!(!a.is_empty());
        assert_eq!(a, b);
        assert_eq!(n, restored);
    }

    #[test]
    fn availability_is_read_from_a_freebusy_reply() {
        use crate::domain::BusyStatus;
        use crate::negotiate::wire::RequestId;
        let Ok(id) = RequestId::parse("r1") else {
            panic!("a valid request id was refused");
        };
        let reply = FreebusyReply {
            request_id: id,
            level: Level::Busy,
            window: Some(slot(19, 0, 0)),
            shown: vec![slot(19, 9, 0)],
            busy: vec![BusyInterval {
                start: utc(19, 9, 0),
                end: utc(19, 9, 30),
                status: BusyStatus::Tentative,
            }],
            events: Vec::new(),
            free: Vec::new(),
            answer: None,
        };
        assert_eq!(
            AvailabilityAnswer::from_reply(&reply),
            AvailabilityAnswer::Busy {
                shown: vec![slot(19, 9, 0)],
                busy: vec![TimeRange {
                    start: utc(19, 9, 0),
                    end: utc(19, 9, 30)
                }],
            }
        );
    }

    // -- the bounds, over random worlds ------------------------------------

    #[derive(Debug, Clone)]
    struct RandomCase {
        people: Vec<(bool, bool)>,
        quorum: Option<usize>,
        max_rounds: u32,
        choices: Vec<u8>,
    }

    fn arb_case() -> impl Strategy<Value = RandomCase> {
        (
            proptest::collection::vec((any::<bool>(), prop::bool::weighted(0.8)), 1..7),
            proptest::option::of(1usize..7),
            1u32..7,
            proptest::collection::vec(any::<u8>(), 0..200),
        )
            .prop_map(|(people, quorum, max_rounds, choices)| RandomCase {
                quorum: quorum.filter(|q| *q <= people.len()),
                people,
                max_rounds,
                choices,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]
        #[test]
        fn random_answers_stay_within_the_message_bound_and_never_confirm_unheld_slots(
            case in arb_case()
        ) {
            let people: Vec<Attendee> = case
                .people
                .iter()
                .enumerate()
                .map(|(i, (required, agent))| att(&format!("P{i}"), *required, *agent))
                .collect();
            let required: Vec<String> = people
                .iter()
                .filter(|a| a.required)
                .map(|a| a.person.clone())
                .collect();
            let mut p = plan(people.clone());
            p.quorum = case.quorum;
            p.max_rounds = case.max_rounds;
            let mut choices = case.choices.iter().copied().cycle().chain(std::iter::repeat(0));
            let mut held: BTreeSet<(String, TimeRange)> = BTreeSet::new();
            let mut held_log = Vec::new();
            let (n, log) = simulate(p, |e| {
                let c = choices.next().unwrap_or(0);
                match e {
                    Effect::AskAvailability { attendee, .. } => {
                        let answer = match c % 10 {
                            0..=3 => AvailabilityAnswer::YesNoOnly,
                            4 => AvailabilityAnswer::Unreachable,
                            5 => AvailabilityAnswer::Refused(Refusal::RateLimited),
                            6..=8 => AvailabilityAnswer::Busy {
                                shown: vec![TimeRange { start: utc(19, 0, 0), end: utc(24, 0, 0) }],
                                busy: vec![slot(19 + u32::from(c % 3), 9, 0)],
                            },
                            _ => return vec![],
                        };
                        vec![Event::Availability { attendee: attendee.clone(), answer }]
                    }
                    Effect::HoldOwn { slot, .. } => vec![Event::OwnHold { slot: *slot, held: c % 7 != 0 }],
                    Effect::SendHold { attendee, slot, .. } => {
                        let ev = |answer| Event::HoldAnswer { attendee: attendee.clone(), slot: *slot, answer };
                        match c % 8 {
                            0..=2 => {
                                held_log.push((attendee.clone(), *slot));
                                vec![ev(HoldAnswer::Held { expires: slot.start })]
                            }
                            3 => vec![ev(HoldAnswer::Declined { counter: None })],
                            4 => vec![ev(HoldAnswer::Declined { counter: Some(TimeRange {
                                start: slot.start + TimeDelta::days(1),
                                end: slot.end + TimeDelta::days(1),
                            }) })],
                            5 => vec![ev(HoldAnswer::Unreachable)],
                            6 => {
                                held_log.push((attendee.clone(), *slot));
                                vec![ev(HoldAnswer::Pending), ev(HoldAnswer::Held { expires: slot.start })]
                            }
                            _ => vec![],
                        }
                    }
                    Effect::ChatProposal { attendee, slot } => match c % 3 {
                        0 => {
                            held_log.push((attendee.clone(), *slot));
                            vec![Event::ChatAnswer { attendee: attendee.clone(), yes: true }]
                        }
                        1 => vec![Event::ChatAnswer { attendee: attendee.clone(), yes: false }],
                        _ => vec![],
                    },
                    Effect::SendConfirm { attendee, slot, .. } => match c % 4 {
                        0 | 1 => vec![Event::Confirmed { attendee: attendee.clone(), slot: *slot }],
                        2 => vec![Event::ConfirmFailed { attendee: attendee.clone(), slot: *slot, reason: ConfirmFailure::SlotTaken }],
                        _ => vec![],
                    },
                    _ => vec![],
                }
            });
            held.extend(held_log);
            let attendees = case.people.len();
            let rounds = n.tried().len();
            prop_assert!(n.is_done(), "did not terminate: {:?}", log.last());
            prop_assert!(rounds <= case.max_rounds as usize);
            prop_assert!(messages(&log) <= message_bound(attendees, rounds),
                "{} messages for {} attendees and {} rounds", messages(&log), attendees, rounds);
            prop_assert_eq!(log.iter().filter(|e| matches!(e, Effect::Notify(_))).count(), 1);
            for e in &log {
                match e {
                    Effect::SendConfirm { attendee, slot, .. } | Effect::ChatConfirm { attendee, slot } => {
                        prop_assert!(held.contains(&(attendee.clone(), *slot)), "confirmed {} without a hold", attendee);
                    }
                    Effect::BookOwn { slot, .. } => {
                        match case.quorum {
                            None => for r in &required {
                                prop_assert!(held.contains(&(r.clone(), *slot)), "booked without required {}", r);
                            },
                            Some(q) => {
                                let count = people.iter().filter(|a| held.contains(&(a.person.clone(), *slot))).count();
                                prop_assert!(count >= q);
                            }
                        }
                    }
                    _ => {}
                }
            }
            // No attendee is left holding: every hold placed is confirmed or released.
            for (who, s) in &held {
                let settled = log.iter().any(|e| matches!(e,
                    Effect::SendConfirm { attendee, slot, .. }
                    | Effect::SendRelease { attendee, slot, .. }
                    | Effect::ChatConfirm { attendee, slot }
                    | Effect::ChatRelease { attendee, slot } if attendee == who && slot == s));
                prop_assert!(settled, "{} still holds {:?}", who, s);
            }
            // Every own hold placed is released or booked, exactly once.
            let placed: Vec<TimeRange> = n.tried().to_vec();
            for s in placed {
                let ends = log.iter().filter(|e| matches!(e,
                    Effect::ReleaseOwn { slot } | Effect::BookOwn { slot, .. } if *slot == s)).count();
                prop_assert!(ends <= 1, "own hold of {:?} ended {} times", s, ends);
            }
        }
    }
}
