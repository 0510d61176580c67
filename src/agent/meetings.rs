//! Meetings between agents (docs/protocol.md §12), both sides:
//!
//! - as an **attendee**, [`answer_meeting`] answers another agent's
//!   `<hold>`, `<confirm>`, `<release>`, `<cancel>` and `<decline>` under the
//!   owner's `propose-meeting` policy, placing and booking holds atomically
//!   in the store so that two negotiations can never both get a slot;
//! - as the **organizer**, [`Negotiator`] runs the owner's `meet` requests:
//!   it feeds what peers answer into the pure state machine of
//!   `negotiate::meeting` and carries out its effects (questions, holds,
//!   confirms, releases, the booking, and one message to the owner),
//!   persisting the machine after every step.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};
use xmpp_parsers::minidom::Element;

use super::kept::{Delivery, peer_gone, send_kept};
use super::peer::{PeerReply, Stored, digest, element_text, replay};
use super::presence::SETTLE;
use super::runtime::Services;
use crate::chat::render;
use crate::domain::{Attendee as StoredAttendee, MeetingStatus, PartStat, TimeRange};
use crate::error::AgentError;
use crate::negotiate::meeting::{
    Attendee, AvailabilityAnswer, ConfirmFailure, DEFAULT_HOLD_TTL, DEFAULT_MAX_ROUNDS, Effect,
    Event, FailureReason, HoldAnswer, Negotiation, Outcome as MeetingOutcome, Party, Plan, Refusal,
    SlotRules,
};
use crate::negotiate::messages::{
    self, DeclineReason, Declined, DeferredAnswer, DeferredReply, Held, Hold, MeetingAck,
    MeetingRef, NegotiationReply, NegotiationRequest, Uid, parse_negotiation,
    parse_negotiation_reply,
};
use crate::negotiate::wire::{
    FreebusyQuery, NS, ProtocolError, RequestId, parse_reply, request_element,
};
use crate::policy::{Action, Disclosure, Level, Outcome, Request};
use crate::store::{
    BookOutcome, CancelOutcome, HoldOutcome, HoldRequest, NewMeeting, NewPending, OutboxItem,
};
use crate::xmpp::{
    BareJid, DefinedCondition, FullJid, IqAnswer, IqKind, Jid, Outbox, Outgoing, XmppError,
};

/// The longest an attendee keeps a slot for an organizer, whatever it asks.
pub const MAX_HOLD: Duration = Duration::minutes(10);
/// How long an organizer's negotiation may take before it gives up.
pub const NEGOTIATION_DEADLINE: Duration = Duration::minutes(15);
/// How long one request to a peer waits for its answer.
const PEER_TIMEOUT: StdDuration = StdDuration::from_secs(10);

/// What the owner should be told after answering a peer (at most one line).
pub type Notice = Option<String>;

// ---------------------------------------------------------------------------
// Attendee side

/// Answers one meeting request from `peer` (bare JID) at `now`: the reply
/// for the peer and, when something changed in the calendar, a line for the
/// owner. A repeated request gets the remembered reply (§7) and no notice.
pub async fn answer_meeting(
    s: &Services,
    peer: &str,
    payload: &Element,
    now: DateTime<Utc>,
) -> Result<(PeerReply, Notice), AgentError> {
    let request = match parse_negotiation(payload) {
        Ok(r) => r,
        Err(e) => return Ok((PeerReply::Error(e.into()), None)),
    };
    let id = request.request_id().clone();
    let digest = digest(payload);
    let mut turn = s.gate.turn().await;
    if let Some((seen, stored)) = turn.recall(peer, id.as_str(), now).await? {
        if seen != digest {
            return Ok((PeerReply::Error(ProtocolError::RequestIdReused), None));
        }
        if let Some(reply) = replay(&stored) {
            return Ok((reply, None));
        }
    }
    let tz = s.live.owner_tz();
    let name = peer_name(s, peer);
    match request {
        NegotiationRequest::Hold(h) => {
            let mut decided = turn.decide(&meeting_request(peer, h.slot), now).await?;
            let outcome = decided.decision.outcome;
            let (reply, notice) = match outcome {
                Outcome::Allow => hold(s, &mut turn, &mut decided, peer, &h, now).await?,
                Outcome::Ask { expires } => {
                    let description = format!(
                        "{name}'s agent proposes {}, {}",
                        summary_text(h.summary.as_deref()),
                        render::time_range(&h.slot, tz)
                    );
                    let n = s
                        .store
                        .add_pending(
                            &NewPending {
                                peer: peer.to_string(),
                                request_id: id.to_string(),
                                action: Action::ProposeMeeting.name().into(),
                                payload: element_text(payload),
                                description: description.clone(),
                                expires,
                            },
                            now,
                        )
                        .await?;
                    let reply = NegotiationReply::Pending {
                        request_id: id.clone(),
                        expires,
                    };
                    (
                        PeerReply::Result(messages::negotiation_reply_element(&reply)),
                        Some(format!("{description}. approve {n} / deny {n}")),
                    )
                }
                Outcome::Deny => (PeerReply::Error(ProtocolError::NotPermitted), None),
                Outcome::RateLimited => (PeerReply::Error(rate_limited(&decided)), None),
            };
            remember_and_record(turn, decided, peer, &id, &digest, &reply).await?;
            Ok((reply, notice))
        }
        NegotiationRequest::Confirm(c) => {
            let held = s.store.hold(c.meeting.as_str(), peer).await?;
            let Some(slot) = held.as_ref().map(|h| h.range) else {
                // A replayed confirm of something booked earlier is fine.
                if let Some(m) = s.store.meeting(c.meeting.as_str()).await?
                    && m.organizer.eq_ignore_ascii_case(peer)
                    && m.status == MeetingStatus::Booked
                    && m.sequence == i64::from(c.sequence)
                {
                    return Ok((confirmed(&c), None));
                }
                return Ok((PeerReply::Error(ProtocolError::HoldExpired), None));
            };
            let mut decided = turn.decide(&meeting_request(peer, slot), now).await?;
            let (reply, notice) = match decided.decision.outcome {
                // Under `ask` the hold itself was the owner's approval (§14):
                // confirming it asks nothing new.
                Outcome::Allow | Outcome::Ask { .. } => {
                    decided.also_disclosed(&format!("confirm: {}", span(slot)));
                    match s
                        .store
                        .book_meeting(c.meeting.as_str(), peer, i64::from(c.sequence), tz, now)
                        .await?
                    {
                        BookOutcome::Booked { range, moved } => {
                            // The next request (ours or a peer's) must see it.
                            s.live.refresh(now).await?;
                            let title = held
                                .as_ref()
                                .and_then(|h| h.summary.clone())
                                .unwrap_or_else(|| "Meeting".into());
                            let verb = if moved { "Moved" } else { "Booked" };
                            let text = format!(
                                "{verb}: {}, {} (organized by {name}'s agent)",
                                render::sanitize(&title),
                                render::time_range(&range, tz)
                            );
                            (confirmed(&c), Some(text))
                        }
                        BookOutcome::AlreadyBooked { .. } => (confirmed(&c), None),
                        BookOutcome::StaleSequence { .. } => {
                            (PeerReply::Error(ProtocolError::StaleSequence), None)
                        }
                        BookOutcome::NoHold | BookOutcome::SlotTaken | BookOutcome::UidInUse => {
                            (PeerReply::Error(ProtocolError::HoldExpired), None)
                        }
                    }
                }
                Outcome::Deny => (PeerReply::Error(ProtocolError::NotPermitted), None),
                Outcome::RateLimited => (PeerReply::Error(rate_limited(&decided)), None),
            };
            remember_and_record(turn, decided, peer, &id, &digest, &reply).await?;
            Ok((reply, notice))
        }
        NegotiationRequest::Release(r) => {
            drop(turn);
            // Releasing gives nothing away and takes nothing: always fine.
            // With a slot, only that hold goes: a release overtaken by the
            // next round's hold must not drop it.
            s.store
                .release_hold_of(r.meeting.as_str(), peer, r.slot)
                .await?;
            let ack = MeetingAck {
                request_id: r.request_id.clone(),
                meeting: r.meeting.clone(),
            };
            Ok((PeerReply::Result(messages::released_element(&ack)), None))
        }
        NegotiationRequest::Cancel(c) => {
            drop(turn);
            let meeting = s.store.meeting(c.meeting.as_str()).await?;
            match s
                .store
                .cancel_meeting(c.meeting.as_str(), peer, i64::from(c.sequence), tz, now)
                .await?
            {
                CancelOutcome::Cancelled => {
                    let ack = MeetingAck {
                        request_id: c.request_id.clone(),
                        meeting: c.meeting.clone(),
                    };
                    let text = meeting.map(|m| {
                        format!(
                            "Cancelled by {name}'s agent: {}{}",
                            render::sanitize(&m.summary),
                            m.range
                                .map(|r| format!(", {}", render::time_range(&r, tz)))
                                .unwrap_or_default()
                        )
                    });
                    Ok((PeerReply::Result(messages::cancelled_element(&ack)), text))
                }
                CancelOutcome::AlreadyCancelled => {
                    let ack = MeetingAck {
                        request_id: c.request_id.clone(),
                        meeting: c.meeting.clone(),
                    };
                    Ok((PeerReply::Result(messages::cancelled_element(&ack)), None))
                }
                CancelOutcome::StaleSequence { .. } => {
                    Ok((PeerReply::Error(ProtocolError::StaleSequence), None))
                }
                CancelOutcome::Unknown => {
                    Ok((PeerReply::Error(ProtocolError::UnknownMeeting), None))
                }
            }
        }
        NegotiationRequest::Decline(d) => {
            drop(turn);
            // An attendee's owner declines a meeting we organized.
            let Some(m) = s.store.meeting(d.meeting.as_str()).await? else {
                return Ok((PeerReply::Error(ProtocolError::UnknownMeeting), None));
            };
            let attendees = s.store.meeting_attendees(&m.uid).await?;
            let Some(who) = attendees.iter().find(|a| {
                a.agent
                    .as_deref()
                    .is_some_and(|x| x.eq_ignore_ascii_case(peer))
            }) else {
                return Ok((PeerReply::Error(ProtocolError::NotPermitted), None));
            };
            s.store
                .set_attendee_partstat(&m.uid, &who.person, PartStat::Declined, tz, now)
                .await?;
            let text = format!(
                "{} declined {}.",
                render::sanitize(who.name.as_deref().unwrap_or(&who.person)),
                render::sanitize(&m.summary)
            );
            Ok((PeerReply::Ack, Some(text)))
        }
        task @ (NegotiationRequest::TaskOffer(_)
        | NegotiationRequest::TaskStatus(_)
        | NegotiationRequest::TaskCancel(_)) => {
            super::handoffs::answer_task(s, turn, peer, &id, &digest, payload, task, now).await
        }
    }
}

/// Places the hold of an allowed `<hold>`, or declines it as busy — with a
/// counter-proposal when the peer may see free slots (noted in `decided`,
/// so the disclosure log accounts for it).
pub(crate) async fn hold(
    s: &Services,
    turn: &mut super::Turn<'_>,
    decided: &mut super::Decided,
    peer: &str,
    h: &Hold,
    now: DateTime<Utc>,
) -> Result<(PeerReply, Notice), AgentError> {
    let tz = s.live.owner_tz();
    let request = HoldRequest {
        meeting: h.meeting.to_string(),
        organizer: peer.to_string(),
        organizer_address: Some(format!("xmpp:{peer}")),
        sequence: i64::from(h.sequence),
        range: h.slot,
        expires: h.expires.min(now + MAX_HOLD),
        summary: h.summary.clone(),
        attendees: h
            .attendees
            .iter()
            .map(|a| StoredAttendee {
                person: a.jid.to_string(),
                agent: None,
                name: None,
                required: a.role == messages::AttendeeRole::Required,
                partstat: PartStat::NeedsAction,
            })
            .collect(),
    };
    if request.expires <= now {
        return Ok((PeerReply::Error(ProtocolError::HoldExpired), None));
    }
    Ok(match s.store.try_hold(&request, tz, now).await? {
        HoldOutcome::Held { expires } => {
            let held = Held {
                request_id: h.request_id.clone(),
                meeting: h.meeting.clone(),
                sequence: h.sequence,
                expires,
            };
            // A hold tells the organizer the slot is free: log it as shown.
            decided.also_disclosed(&format!("held (free): {}", span(h.slot)));
            (PeerReply::Result(messages::held_element(&held)), None)
        }
        HoldOutcome::Busy => {
            decided.also_disclosed(&format!("declined (busy): {}", span(h.slot)));
            // The counter is searched in the live view: bring it up to date
            // with the store (holds placed a moment ago, a fresh import).
            s.live.refresh(now).await?;
            let counter = counter_proposal(turn, peer, h.slot, now).await?;
            if let Some(c) = counter {
                decided.also_disclosed(&format!("counter: {}", span(c)));
            }
            let declined = Declined {
                request_id: h.request_id.clone(),
                meeting: h.meeting.clone(),
                sequence: h.sequence,
                reason: DeclineReason::Busy,
                counter,
            };
            (
                PeerReply::Result(messages::declined_element(&declined)),
                None,
            )
        }
        HoldOutcome::StaleSequence { .. } => (PeerReply::Error(ProtocolError::StaleSequence), None),
    })
}

/// The counter-proposal (iTIP COUNTER, §12.2) for a busy `slot`: the
/// earliest slot of the same length, starting at or after the asked one, that
/// a `<freebusy>` from `peer` at level `slots` would show right now — so a
/// counter never discloses more than the peer's free/busy rule (its window,
/// hours and granularity). `None` when that rule does not allow `slots` or
/// more (yes-no, denied, asks the owner, over its rate) or nothing is free.
/// Decides the free/busy question without logging it: the caller logs the
/// counter with the meeting's decision.
async fn counter_proposal(
    turn: &mut super::Turn<'_>,
    peer: &str,
    slot: TimeRange,
    now: DateTime<Utc>,
) -> Result<Option<TimeRange>, AgentError> {
    let length = slot.duration();
    // Searching from the asked start keeps the counter near what the
    // organizer is looking for (usually inside its search window).
    let from = slot.start.max(now);
    let Some(window) = from
        .checked_add_signed(Duration::days(crate::negotiate::wire::MAX_WINDOW_DAYS))
        .and_then(|end| TimeRange::new(from, end))
    else {
        return Ok(None);
    };
    let request = Request {
        peer: peer.to_string(),
        action: Action::Freebusy,
        window: Some(window),
        duration: Some(length),
        proposed: Vec::new(),
        requested_level: Some(Level::Slots),
    };
    let decided = turn.decide(&request, now).await?;
    if decided.decision.outcome != Outcome::Allow || decided.decision.level < Level::Slots {
        return Ok(None);
    }
    Ok(match decided.disclosure {
        Disclosure::Slots { slots, .. } => slots
            .into_iter()
            .filter(|c| c.duration() == length && *c != slot)
            .min_by_key(|c| c.start),
        _ => None,
    })
}

/// A slot as the disclosure log writes it (UTC, to the minute).
fn span(r: TimeRange) -> String {
    format!(
        "{}..{}",
        r.start.format("%Y-%m-%dT%H:%MZ"),
        r.end.format("%Y-%m-%dT%H:%MZ")
    )
}

fn confirmed(c: &MeetingRef) -> PeerReply {
    PeerReply::Result(messages::confirmed_element(c))
}

/// The policy question a meeting request asks: may `peer` put `slot` in the calendar?
fn meeting_request(peer: &str, slot: TimeRange) -> Request {
    Request {
        peer: peer.to_string(),
        action: Action::ProposeMeeting,
        window: Some(slot),
        duration: Some(slot.duration()),
        proposed: vec![slot],
        requested_level: None,
    }
}

pub(crate) fn rate_limited(decided: &super::Decided) -> ProtocolError {
    ProtocolError::RateLimited {
        retry_after: decided
            .decision
            .limits
            .as_ref()
            .map(|l| l.rate.period)
            .unwrap_or(Duration::hours(1)),
    }
}

/// Logs the decision and remembers a successful reply for replay, in one write.
pub(crate) async fn remember_and_record(
    turn: super::Turn<'_>,
    decided: super::Decided,
    peer: &str,
    id: &RequestId,
    digest: &str,
    reply: &PeerReply,
) -> Result<(), AgentError> {
    let stored = match reply {
        PeerReply::Result(el) => Some(Stored::Result {
            xml: element_text(el),
        }),
        PeerReply::Error(ProtocolError::NotPermitted) => Some(Stored::NotPermitted),
        // Other errors changed nothing: a retry is simply looked at again.
        _ => None,
    };
    let json = stored.and_then(|s| serde_json::to_string(&s).ok());
    let record = json.as_deref().map(|reply| crate::store::ReplayRecord {
        peer,
        request_id: id.as_str(),
        digest,
        reply,
    });
    turn.record(decided, record).await?;
    Ok(())
}

fn summary_text(summary: Option<&str>) -> String {
    render::sanitize(summary.unwrap_or("a meeting"))
}

/// How the owner calls the peer agent's owner (or its JID).
pub(crate) fn peer_name(s: &Services, peer: &str) -> String {
    let snapshot = s.live.snapshot();
    crate::policy::resolve_peer(peer, &snapshot.contacts)
        .map(|c| render::sanitize(&c.name))
        .unwrap_or_else(|| render::sanitize(peer))
}

// ---------------------------------------------------------------------------
// Organizer side

/// What the owner asked for, resolved against the address book.
#[derive(Debug, Clone)]
pub struct MeetingOrder {
    pub summary: String,
    pub duration: Duration,
    pub window: TimeRange,
    pub attendees: Vec<Attendee>,
    pub quorum: Option<usize>,
}

enum Msg {
    Start {
        order: MeetingOrder,
        now: DateTime<Utc>,
        reply: tokio::sync::oneshot::Sender<Result<i64, String>>,
    },
    Event {
        uid: String,
        event: Event,
    },
    Tick,
    /// The owner's `cancel`, `move` or `decline` (see [`MeetingChange`]).
    Change {
        change: MeetingChange,
        now: DateTime<Utc>,
        reply: tokio::sync::oneshot::Sender<String>,
    },
    /// A chat message from a person with an open proposal (§15).
    Chat {
        person: String,
        body: String,
    },
    /// A deferred `<reply>` (§14) from an attendee agent.
    Late {
        agent: String,
        reply: DeferredReply,
    },
}

pub use super::presence::Presence;

/// Runs the owner's meeting negotiations; cheap to clone.
#[derive(Clone)]
pub struct Negotiator {
    tx: mpsc::Sender<Msg>,
    /// Who has a chat proposal open, shared with the worker so that the
    /// runtime can tell at once whether a stranger's message is an answer.
    chats: Chats,
}

impl Negotiator {
    /// Starts the negotiator's task. Negotiations left unfinished by an
    /// earlier run (a crash, a restart) are resumed from their saved state.
    pub fn spawn(s: Services, outbox: Outbox, presence: Presence) -> Self {
        let (tx, rx) = mpsc::channel(256);
        let chats = Chats::default();
        let me = Self {
            tx: tx.clone(),
            chats: chats.clone(),
        };
        let worker = Worker {
            s,
            outbox,
            presence,
            tx,
            live: HashMap::new(),
            moves: HashMap::new(),
            chats,
            asked_holds: HashMap::new(),
        };
        tokio::spawn(worker.run(rx));
        me
    }

    /// Starts negotiating `order`; returns the meeting's short id.
    pub async fn start(&self, order: MeetingOrder, now: DateTime<Utc>) -> Result<i64, String> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.tx
            .send(Msg::Start { order, now, reply })
            .await
            .map_err(|_| "the negotiator stopped".to_string())?;
        answer
            .await
            .map_err(|_| "the negotiator stopped".to_string())?
    }

    /// Lets the negotiations notice time passing.
    pub async fn tick(&self) {
        let _ = self.tx.send(Msg::Tick).await;
    }

    /// Takes a chat message from `person` (a bare JID that is not the
    /// owner) when it may answer one of our proposals (§15): true when the
    /// person has a proposal open, so the message is theirs to answer and
    /// must not be refused; false when it is none of the negotiator's business.
    pub async fn chat_reply(&self, person: &BareJid, body: &str) -> bool {
        let key = person.as_str().to_ascii_lowercase();
        let open = lock(&self.chats.0)
            .get(&key)
            .is_some_and(|c| c.open.is_some());
        if !open {
            return false;
        }
        let msg = Msg::Chat {
            person: key,
            body: body.to_string(),
        };
        self.tx.send(msg).await.is_ok()
    }

    /// Hands over an attendee agent's deferred answer to one of our holds
    /// (§14: its owner approved, denied or let the question expire). The
    /// negotiation it belongs to is found by the hold's request-id, or by the
    /// meeting and sequence it names; answers for finished negotiations or
    /// earlier rounds change nothing.
    pub async fn late_answer(&self, agent: &BareJid, reply: DeferredReply) {
        let msg = Msg::Late {
            agent: agent.as_str().to_ascii_lowercase(),
            reply,
        };
        let _ = self.tx.send(msg).await;
    }
}

// ---------------------------------------------------------------------------
// People without an agent (§15)

/// Chat proposals by person (lower-cased bare JID).
#[derive(Clone, Default)]
struct Chats(Arc<Mutex<HashMap<String, PersonChats>>>);

/// One person's proposals: at most one open at a time, the rest wait.
#[derive(Default)]
struct PersonChats {
    open: Option<ChatProposal>,
    queued: VecDeque<ChatProposal>,
    /// Meetings (uid) whose proposal this person saw and answered yes to,
    /// or saw without answering: a release or confirm is worth telling them.
    told: BTreeSet<String>,
}

#[derive(Clone)]
struct ChatProposal {
    uid: String,
    /// The attendee key the negotiation uses ([`Attendee::person`]).
    attendee: String,
    slot: TimeRange,
    /// Unclear answers so far: one gets a clarification, two count as no.
    unclear: u8,
}

/// What a person's chat answer means (§15): leading and trailing
/// whitespace and a trailing `.` or `!` ignored, case-insensitive.
fn read_yes_no(body: &str) -> Option<bool> {
    let t = body
        .trim()
        .trim_end_matches(['.', '!'])
        .trim()
        .to_lowercase();
    match t.as_str() {
        "yes" | "y" | "ok" => Some(true),
        "no" | "n" => Some(false),
        _ => None,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct Worker {
    s: Services,
    outbox: Outbox,
    presence: Presence,
    tx: mpsc::Sender<Msg>,
    live: HashMap<String, Negotiation>,
    /// Meetings being moved (uid → the booked time they keep if it fails).
    moves: HashMap<String, TimeRange>,
    chats: Chats,
    /// Holds sent, by request-id → (meeting, attendee, slot): a deferred
    /// answer (§14) names only the request-id when it is an error. In
    /// memory: after a restart answers are matched by the meeting they name
    /// or, for errors, by the one negotiation the agent takes part in.
    asked_holds: HashMap<String, (String, String, TimeRange)>,
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        self.resume().await;
        while let Some(msg) = rx.recv().await {
            let now = Utc::now();
            match msg {
                Msg::Start { order, now, reply } => {
                    let result = self.start(order, now).await;
                    let _ = reply.send(result);
                }
                Msg::Event { uid, event } => self.step(&uid, event, now).await,
                Msg::Change { change, now, reply } => {
                    let text = self.change(change, now).await;
                    let _ = reply.send(text);
                }
                Msg::Tick => {
                    let due: Vec<String> = self
                        .live
                        .iter()
                        .filter(|(_, n)| n.next_wakeup().is_some_and(|t| t <= now))
                        .map(|(uid, _)| uid.clone())
                        .collect();
                    for uid in due {
                        self.step(&uid, Event::Tick, now).await;
                    }
                }
                Msg::Chat { person, body } => self.on_chat(&person, &body, now).await,
                Msg::Late { agent, reply } => self.on_late_answer(&agent, reply, now).await,
            }
        }
    }

    /// Picks up negotiations a previous run left open.
    async fn resume(&mut self) {
        let now = Utc::now();
        let open = match self.s.store.meetings(now).await {
            Ok(m) => m,
            Err(e) => {
                warn!("could not read open negotiations: {e}");
                return;
            }
        };
        for m in open {
            // A booked meeting may be being moved (§12.6): its booking stays
            // while a negotiation with a higher sequence runs.
            if !matches!(m.status, MeetingStatus::Negotiating | MeetingStatus::Booked)
                || m.role != crate::domain::MeetingRole::Organizer
            {
                continue;
            }
            let Some(state) = m.state_json.as_deref() else {
                continue;
            };
            match serde_json::from_str::<Negotiation>(state) {
                Ok(n)
                    if m.status == MeetingStatus::Booked && (n.is_done() || n.sequence() == 0) => {}
                Ok(n) => {
                    if m.status == MeetingStatus::Booked
                        && let Some(range) = m.range
                    {
                        info!(meeting = %m.uid, "resuming a move after a restart");
                        self.moves.insert(m.uid.clone(), range);
                    }
                    info!(meeting = %m.uid, "resuming a negotiation after a restart");
                    self.reopen_chats(&m.uid, &n);
                    let mut n = n;
                    // Whatever was in flight died with the old process: ask
                    // again, then let time decide what still does not come.
                    let again = n.resumed(now);
                    self.live.insert(m.uid.clone(), n);
                    self.carry_out(&m.uid, again, now).await;
                    self.step(&m.uid, Event::Tick, now).await;
                }
                Err(e) => warn!(meeting = %m.uid, "unreadable negotiation state: {e}"),
            }
        }
    }

    async fn start(&mut self, order: MeetingOrder, now: DateTime<Utc>) -> Result<i64, String> {
        let s = &self.s;
        // Plan with what the store holds now, not the last 500 ms tick's view.
        s.live.refresh(now).await.map_err(|e| e.to_string())?;
        let settings = s.gate.settings();
        let own_busy = s
            .live
            .snapshot()
            .index
            .busy(order.window)
            .map_err(|e| e.to_string())?;
        let uid = format!("{}@attache", RequestId::generate(now));
        let plan = Plan {
            meeting: uid.clone(),
            summary: order.summary.clone(),
            sequence: 0,
            duration: order.duration,
            window: order.window,
            own_busy,
            hours: settings.working_hours.clone(),
            tz: settings.owner_tz,
            rules: SlotRules::from(&settings.slot_options),
            attendees: order.attendees.clone(),
            quorum: order.quorum,
            max_rounds: DEFAULT_MAX_ROUNDS,
            hold_ttl: DEFAULT_HOLD_TTL,
            deadline: now + NEGOTIATION_DEADLINE,
        };
        let (negotiation, effects) = Negotiation::new(plan, now);
        let state = serde_json::to_string(&negotiation).map_err(|e| e.to_string())?;
        let short = s
            .store
            .create_meeting(
                &NewMeeting {
                    uid: uid.clone(),
                    organizer: self.s.me.to_string(),
                    organizer_address: Some(format!("xmpp:{}", s.owner)),
                    summary: order.summary.clone(),
                    sequence: 0,
                    state_json: Some(state),
                    attendees: order
                        .attendees
                        .iter()
                        .map(|a| StoredAttendee {
                            person: a.person.clone(),
                            agent: a.agent.clone(),
                            name: Some(a.name.clone()),
                            required: a.required,
                            partstat: PartStat::NeedsAction,
                        })
                        .collect(),
                },
                now,
            )
            .await
            .map_err(|e| e.to_string())?;
        self.live.insert(uid.clone(), negotiation);
        self.carry_out(&uid, effects, now).await;
        Ok(short)
    }

    /// Feeds one event to a negotiation, carries out what follows, saves it.
    async fn step(&mut self, uid: &str, event: Event, now: DateTime<Utc>) {
        let Some(n) = self.live.get_mut(uid) else {
            debug!(meeting = uid, "an answer for a finished negotiation");
            return;
        };
        let effects = n.on(event, now);
        self.carry_out(uid, effects, now).await;
    }

    /// Carries out effects; those answered locally (our own hold) feed the
    /// machine at once, the rest answer later through the channel.
    async fn carry_out(&mut self, uid: &str, effects: Vec<Effect>, now: DateTime<Utc>) {
        let mut queue = effects;
        while !queue.is_empty() {
            let mut next = Vec::new();
            for effect in queue {
                if let Some(event) = self.effect(uid, effect, now).await
                    && let Some(n) = self.live.get_mut(uid)
                {
                    next.extend(n.on(event, now));
                }
            }
            queue = next;
        }
        self.save(uid, now).await;
    }

    async fn save(&mut self, uid: &str, now: DateTime<Utc>) {
        let Some(n) = self.live.get(uid) else { return };
        match serde_json::to_string(n) {
            Ok(state) => {
                if let Err(e) = self.s.store.save_meeting_state(uid, &state, now).await {
                    warn!(meeting = uid, "could not save the negotiation: {e}");
                }
            }
            Err(e) => warn!(meeting = uid, "could not serialize the negotiation: {e}"),
        }
        if n.is_done() {
            self.live.remove(uid);
            self.asked_holds.retain(|_, (u, _, _)| u != uid);
            for person in self.forget_chats(uid) {
                self.next_chat(&person).await;
            }
        }
    }

    /// Carries out one effect; returns an event when it was answered at once.
    async fn effect(&mut self, uid: &str, effect: Effect, now: DateTime<Utc>) -> Option<Event> {
        let s = self.s.clone();
        let tz = s.live.owner_tz();
        let summary = self.live.get(uid).map(|n| n.plan().summary.clone());
        match effect {
            Effect::AskAvailability {
                attendee,
                agent,
                window,
                duration,
            } => {
                let query = FreebusyQuery {
                    request_id: RequestId::generate(now),
                    window: Some(window),
                    duration: Some(duration),
                    level: None,
                    slots: Vec::new(),
                };
                let payload = request_element(&query);
                self.ask(uid, agent, IqKind::Get, payload, move |answer| {
                    Event::Availability {
                        attendee,
                        answer: availability(answer),
                    }
                });
                None
            }
            Effect::HoldOwn { slot, expires } => {
                let request = HoldRequest {
                    meeting: uid.to_string(),
                    organizer: s.me.to_string(),
                    organizer_address: Some(format!("xmpp:{}", s.owner)),
                    sequence: self
                        .live
                        .get(uid)
                        .map(|n| i64::from(n.sequence()))
                        .unwrap_or(0),
                    range: slot,
                    expires,
                    summary: summary.clone(),
                    attendees: Vec::new(),
                };
                let held = match s.store.try_hold(&request, tz, now).await {
                    Ok(HoldOutcome::Held { .. }) => true,
                    Ok(_) => false,
                    Err(e) => {
                        warn!(meeting = uid, "could not hold our own time: {e}");
                        false
                    }
                };
                Some(Event::OwnHold { slot, held })
            }
            Effect::ReleaseOwn { slot } => {
                if let Err(e) = s
                    .store
                    .release_hold_of(uid, s.me.as_str(), Some(slot))
                    .await
                {
                    warn!(meeting = uid, "could not release our own hold: {e}");
                }
                None
            }
            Effect::BookOwn { sequence, .. } => {
                match s
                    .store
                    .book_meeting(uid, s.me.as_str(), i64::from(sequence), tz, now)
                    .await
                {
                    Ok(BookOutcome::Booked { .. } | BookOutcome::AlreadyBooked { .. }) => {
                        // The next `meet` plans with this booking in view.
                        if let Err(e) = s.live.refresh(now).await {
                            warn!(meeting = uid, "could not refresh the calendar view: {e}");
                        }
                    }
                    Ok(other) => warn!(meeting = uid, "our own booking failed: {other:?}"),
                    Err(e) => warn!(meeting = uid, "our own booking failed: {e}"),
                }
                None
            }
            Effect::SendHold {
                attendee,
                agent,
                slot,
                sequence,
                expires,
            } => {
                let hold = Hold {
                    request_id: RequestId::generate(now),
                    meeting: uid_of(uid)?,
                    sequence,
                    slot,
                    expires,
                    summary: summary.clone(),
                    attendees: self.wire_attendees(uid),
                };
                self.asked_holds.insert(
                    hold.request_id.to_string(),
                    (uid.to_string(), attendee.clone(), slot),
                );
                let payload = messages::hold_element(&hold);
                self.ask(uid, agent, IqKind::Set, payload, move |answer| {
                    Event::HoldAnswer {
                        attendee,
                        slot,
                        answer: hold_answer(answer),
                    }
                });
                None
            }
            Effect::SendConfirm {
                attendee,
                agent,
                slot,
                sequence,
            } => {
                let confirm = MeetingRef {
                    request_id: RequestId::generate(now),
                    meeting: uid_of(uid)?,
                    sequence,
                };
                let payload = messages::confirm_element(&confirm);
                self.ask(
                    uid,
                    agent,
                    IqKind::Set,
                    payload,
                    move |answer| match confirm_answer(answer) {
                        Ok(()) => Event::Confirmed { attendee, slot },
                        Err(reason) => Event::ConfirmFailed {
                            attendee,
                            slot,
                            reason,
                        },
                    },
                );
                None
            }
            Effect::SendRelease {
                agent,
                sequence,
                slot,
                ..
            } => {
                let release = messages::Release {
                    request_id: RequestId::generate(now),
                    meeting: uid_of(uid)?,
                    sequence,
                    slot: Some(slot),
                };
                self.tell(uid, agent, messages::release_element(&release), now);
                None
            }
            Effect::SendCancel {
                agent, sequence, ..
            } => {
                let cancel = MeetingRef {
                    request_id: RequestId::generate(now),
                    meeting: uid_of(uid)?,
                    sequence,
                };
                self.tell(uid, agent, messages::cancel_element(&cancel), now);
                None
            }
            Effect::ChatProposal { attendee, slot } => {
                self.propose_by_chat(uid, attendee, slot).await;
                None
            }
            Effect::ChatConfirm { attendee, slot } => {
                self.close_chat(uid, &attendee, slot, true).await;
                None
            }
            Effect::ChatRelease { attendee, slot } => {
                self.close_chat(uid, &attendee, slot, false).await;
                None
            }
            Effect::Notify(outcome) => {
                // A move that ends keeps the meeting booked either way.
                if let Some(from) = self.moves.remove(uid) {
                    self.finish_move(uid, from, &outcome).await;
                    return None;
                }
                let status = match &outcome {
                    MeetingOutcome::Booked { .. } => MeetingStatus::Booked,
                    MeetingOutcome::Failed { .. } => MeetingStatus::Failed,
                };
                let text = outcome_text(summary.as_deref().unwrap_or("Meeting"), &outcome, tz);
                // The organizer's copy says who confirmed and who did not
                // (PARTSTAT in its event and in `attache meet --json`).
                if let MeetingOutcome::Booked {
                    accepted, declined, ..
                } = &outcome
                {
                    let answers = accepted
                        .iter()
                        .map(|p| (p, PartStat::Accepted))
                        .chain(declined.iter().map(|p| (p, PartStat::Declined)));
                    for (party, partstat) in answers {
                        if let Err(e) = s
                            .store
                            .set_attendee_partstat(uid, &party.person, partstat, tz, now)
                            .await
                        {
                            warn!(meeting = uid, "could not record an attendee's answer: {e}");
                        }
                    }
                }
                // Kept before the status changes, so that whoever follows the
                // meeting in the store (`attache meet`) finds the reason with it.
                let end = crate::store::NegotiationEnd {
                    line: Some(text.clone()),
                    failure_reason: match &outcome {
                        MeetingOutcome::Failed { reason } => Some(failure_text(reason, tz)),
                        MeetingOutcome::Booked { .. } => None,
                    },
                };
                if let Err(e) = s.store.record_negotiation_end(uid, &end, now).await {
                    warn!(
                        meeting = uid,
                        "could not record why the negotiation ended: {e}"
                    );
                }
                if let Err(e) = s.store.set_meeting_status(uid, status, now).await {
                    warn!(
                        meeting = uid,
                        "could not record how the negotiation ended: {e}"
                    );
                }
                super::runtime::tell_owner(&self.outbox, &s.owner, text).await;
                None
            }
        }
    }

    /// The attendee list a hold carries (owners' bare JIDs).
    fn wire_attendees(&self, uid: &str) -> Vec<messages::Attendee> {
        let Some(n) = self.live.get(uid) else {
            return Vec::new();
        };
        n.plan()
            .attendees
            .iter()
            .filter_map(|a| {
                Some(messages::Attendee {
                    jid: BareJid::new(&a.person).ok()?,
                    role: if a.required {
                        messages::AttendeeRole::Required
                    } else {
                        messages::AttendeeRole::Optional
                    },
                })
            })
            .chain(
                BareJid::new(self.s.owner.as_str())
                    .ok()
                    .map(|jid| messages::Attendee {
                        jid,
                        role: messages::AttendeeRole::Required,
                    }),
            )
            .collect()
    }

    /// Sends a request to `agent` in the background; its answer (or its
    /// absence) comes back as the event `to_event` makes of it.
    fn ask<F>(&self, uid: &str, agent: String, kind: IqKind, payload: Element, to_event: F)
    where
        F: FnOnce(Answer) -> Event + Send + 'static,
    {
        let to = self.online_resource(&agent);
        let (outbox, presence) = (self.outbox.clone(), self.presence.clone());
        let tx = self.tx.clone();
        let uid = uid.to_string();
        tokio::spawn(async move {
            let mut to = match to {
                Some(full) => Some(full),
                // Right after a (re)start nobody's presence is in yet.
                None => presence.settled_resource_of(&agent).await,
            };
            // A request lost to a fresh stream is asked once more (same
            // request-id: the peer's replay memory keeps it one request).
            let mut retried = false;
            let answer = loop {
                let Some(full) = to.take() else {
                    break Answer::Unreachable;
                };
                let stream = presence.stream();
                match outbox
                    .query(Some(Jid::from(full)), kind, payload.clone(), PEER_TIMEOUT)
                    .await
                {
                    Ok(IqAnswer::Result(el)) => break Answer::Result(el),
                    // The server's word that the agent is offline.
                    Ok(IqAnswer::Error(e)) if peer_gone(&e) => break Answer::Unreachable,
                    Ok(IqAnswer::Error(e)) => break Answer::Error(PeerError::from(&e)),
                    Err(XmppError::ConnectionReset { .. }) if !retried => {
                        debug!("a request to {agent} was lost to a new stream; asking again");
                        retried = true;
                        // Who is online is known again only once the new
                        // stream's presence comes in: wait for it.
                        presence.next_stream(stream, SETTLE).await;
                        to = presence.settled_resource_of(&agent).await;
                    }
                    Err(e) => {
                        debug!("a request to {agent} got no answer: {e}");
                        break Answer::Unreachable;
                    }
                }
            };
            let _ = tx
                .send(Msg::Event {
                    uid,
                    event: to_event(answer),
                })
                .await;
        });
    }

    /// Sends a release or a stale-booking cancel, in the background (see
    /// [`Worker::notice`]), until the hold it frees would have expired anyway:
    /// otherwise the attendee's slot stays blocked for the whole hold time.
    fn tell(&self, uid: &str, agent: String, payload: Element, now: DateTime<Utc>) {
        let keep_for = if payload.name() == "cancel" {
            NOTICE_PATIENCE
        } else {
            MAX_HOLD
        };
        tokio::spawn(self.notice(uid, agent, payload, now + keep_for, None, now));
    }

    /// Sends a request whose answer changes nothing for us (release,
    /// cancel, decline) but which must reach the agent even if it is away
    /// now (say, while the server restarts). It is written to the outbox
    /// first, so neither an absent agent nor a crash loses it; sent; and
    /// closed there once the agent answered. While the agent is away it is
    /// sent again each time its presence appears ([`resend_notice`]), until
    /// `keep_until`. With `owner_title`, the owner hears when a kept notice
    /// finally goes through or lapses.
    ///
    /// The returned future says how the first attempt went; it does not
    /// hold the worker.
    fn notice(
        &self,
        uid: &str,
        agent: String,
        payload: Element,
        keep_until: DateTime<Utc>,
        owner_title: Option<String>,
        now: DateTime<Utc>,
    ) -> impl std::future::Future<Output = Delivery> + Send + 'static {
        let purpose = NoticePurpose {
            name: peer_name(&self.s, &agent),
            meeting: uid.to_string(),
            notice: payload.name().to_string(),
            owner_title,
        };
        let item = OutboxItem::waiting(
            payload.attr("request-id").unwrap_or_default(),
            agent,
            element_text(&payload),
            serde_json::to_string(&purpose).unwrap_or_default(),
            now,
            keep_until,
        );
        let to = self.online_resource(&item.peer);
        let (s, outbox, presence) = (self.s.clone(), self.outbox.clone(), self.presence.clone());
        async move {
            let kept = match s.store.enqueue(&item).await {
                Ok(()) => true,
                Err(e) => {
                    warn!(request = %item.request_id, "could not keep a {} for later: {e}", purpose.notice);
                    false
                }
            };
            let to = match to.or_else(|| presence.resource_of(&item.peer)) {
                // Its presence may have appeared before the entry above was
                // written, when nobody could find the entry to send it.
                Some(full) => Some(full),
                // Kept: sent when its presence appears (after a fresh stream
                // it may still be on the way), by the runtime, once.
                None if kept => None,
                None => presence.settled_resource_of(&item.peer).await,
            };
            if let Some(full) = to {
                match send_kept(&s, &outbox, &item, full, kept).await {
                    Delivery::Away => {}
                    answered => return answered,
                }
            }
            if !kept {
                return Delivery::Lost;
            }
            debug!(request = %item.request_id, "{} is away; the {} waits for it", item.peer, purpose.notice);
            Delivery::Away
        }
    }

    fn online_resource(&self, agent: &str) -> Option<FullJid> {
        self.presence.resource_of(agent)
    }
}

/// The organizer's side of §15 (people asked by chat) and of §14 (answers
/// that come later), kept apart from the effect loop above.
impl Worker {
    /// Proposes `slot` to a person by chat, or queues it behind the
    /// proposal they have open (one at a time, §15).
    async fn propose_by_chat(&mut self, uid: &str, attendee: String, slot: TimeRange) {
        let key = attendee.to_ascii_lowercase();
        let proposal = ChatProposal {
            uid: uid.to_string(),
            attendee,
            slot,
            unclear: 0,
        };
        let send_now = {
            let mut chats = lock(&self.chats.0);
            let person = chats.entry(key.clone()).or_default();
            // A new round of the same meeting replaces its earlier proposal.
            person.queued.retain(|p| p.uid != uid);
            match &person.open {
                Some(open) if open.uid != uid => {
                    person.queued.push_back(proposal.clone());
                    false
                }
                _ => {
                    person.open = Some(proposal.clone());
                    person.told.insert(uid.to_string());
                    true
                }
            }
        };
        if send_now {
            let text = self.proposal_text(&proposal);
            self.chat(&key, text).await;
        } else {
            debug!(meeting = uid, "a chat proposal waits for {key}'s open one");
        }
    }

    /// A person's answer to their open proposal.
    async fn on_chat(&mut self, person: &str, body: &str, now: DateTime<Utc>) {
        let answer = read_yes_no(body);
        let (proposal, clarify) = {
            let mut chats = lock(&self.chats.0);
            let Some(p) = chats.get_mut(person).and_then(|c| c.open.as_mut()) else {
                return;
            };
            match answer {
                None if p.unclear == 0 => {
                    p.unclear = 1;
                    (p.clone(), true)
                }
                _ => (p.clone(), false),
            }
        };
        if clarify {
            let text = format!(
                "Sorry, I only understand yes or no. {}, {} — yes or no?",
                chat_summary(self.summary_of(&proposal.uid).as_deref()),
                render::time_range(&proposal.slot, self.s.live.owner_tz())
            );
            self.chat(person, text).await;
            return;
        }
        // A second unclear answer counts as no (§15).
        let yes = answer.unwrap_or(false);
        {
            let mut chats = lock(&self.chats.0);
            if let Some(c) = chats.get_mut(person) {
                c.open = None;
                if !yes {
                    c.told.remove(&proposal.uid);
                }
            }
        }
        info!(meeting = %proposal.uid, person, yes, "a person answered by chat");
        self.step(
            &proposal.uid,
            Event::ChatAnswer {
                attendee: proposal.attendee.clone(),
                yes,
            },
            now,
        )
        .await;
        self.next_chat(person).await;
    }

    /// Ends a person's proposal for meeting `uid`: `booked` says so, else
    /// the time is off. Only people who saw the proposal hear about it.
    async fn close_chat(&mut self, uid: &str, attendee: &str, slot: TimeRange, booked: bool) {
        let key = attendee.to_ascii_lowercase();
        let (told, was_open) = {
            let mut chats = lock(&self.chats.0);
            let Some(c) = chats.get_mut(&key) else {
                return;
            };
            c.queued.retain(|p| p.uid != uid);
            let was_open = c.open.as_ref().is_some_and(|p| p.uid == uid);
            if was_open {
                c.open = None;
            }
            (c.told.remove(uid), was_open)
        };
        if told || booked {
            let tz = self.s.live.owner_tz();
            let what = format!(
                "{}, {}",
                chat_summary(self.summary_of(uid).as_deref()),
                chat_time(&slot, tz)
            );
            let text = if booked {
                format!("Booked: {what}.")
            } else {
                format!("Never mind: {what} is off; no need to answer.")
            };
            self.chat(&key, text).await;
        }
        if was_open {
            self.next_chat(&key).await;
        }
    }

    /// Opens the next proposal waiting for `person`, if any.
    async fn next_chat(&mut self, person: &str) {
        let next = {
            let mut chats = lock(&self.chats.0);
            let Some(c) = chats.get_mut(person) else {
                return;
            };
            if c.open.is_some() {
                return;
            }
            let next = c.queued.pop_front();
            match &next {
                Some(p) => {
                    c.open = Some(p.clone());
                    c.told.insert(p.uid.clone());
                }
                None if c.told.is_empty() => {
                    chats.remove(person);
                }
                None => {}
            }
            next
        };
        if let Some(p) = next {
            let text = self.proposal_text(&p);
            self.chat(person, text).await;
        }
    }

    /// After a restart: a round in progress may be waiting for people's
    /// chat answers. Their proposals are taken as open again (without
    /// sending them twice) so that an answer still reaches the negotiation,
    /// which ignores answers it no longer waits for.
    fn reopen_chats(&mut self, uid: &str, n: &Negotiation) {
        let Some(slot) = n.current_slot() else {
            return;
        };
        let mut chats = lock(&self.chats.0);
        for a in n.plan().attendees.iter().filter(|a| a.agent.is_none()) {
            let person = chats.entry(a.person.to_ascii_lowercase()).or_default();
            let proposal = ChatProposal {
                uid: uid.to_string(),
                attendee: a.person.clone(),
                slot,
                unclear: 0,
            };
            person.told.insert(uid.to_string());
            if person.open.is_none() {
                person.open = Some(proposal);
            } else {
                person.queued.push_back(proposal);
            }
        }
    }

    /// Drops whatever chat state a finished negotiation left; returns the
    /// people whose open proposal it was (their next one may go out).
    fn forget_chats(&mut self, uid: &str) -> Vec<String> {
        let mut chats = lock(&self.chats.0);
        let mut freed = Vec::new();
        for (person, c) in chats.iter_mut() {
            c.queued.retain(|p| p.uid != uid);
            c.told.remove(uid);
            if c.open.as_ref().is_some_and(|p| p.uid == uid) {
                c.open = None;
                freed.push(person.clone());
            }
        }
        chats.retain(|_, c| c.open.is_some() || !c.queued.is_empty() || !c.told.is_empty());
        freed
    }

    /// A deferred answer (§14) to one of our holds, fed to its negotiation
    /// as the hold answer it stands for.
    async fn on_late_answer(&mut self, agent: &str, reply: DeferredReply, now: DateTime<Utc>) {
        let by_id = self.asked_holds.get(reply.request_id.as_str()).cloned();
        let asked_slot = by_id.as_ref().map(|(_, _, slot)| *slot);
        let target = match (&reply.answer, by_id) {
            (_, Some((uid, attendee, slot))) => {
                let from_agent = self
                    .live
                    .get(&uid)
                    .and_then(|n| n.plan().attendees.iter().find(|a| a.person == attendee))
                    .and_then(|a| a.agent.as_deref())
                    .is_some_and(|a| a.eq_ignore_ascii_case(agent));
                from_agent.then_some((uid, attendee, slot))
            }
            (DeferredAnswer::Negotiation(r), None) => {
                let (meeting, sequence) = match r {
                    NegotiationReply::Held(h) => (h.meeting.to_string(), h.sequence),
                    NegotiationReply::Declined(d) => (d.meeting.to_string(), d.sequence),
                    _ => return,
                };
                self.live.get(&meeting).and_then(|n| {
                    let slot = n.current_slot().filter(|_| n.sequence() == sequence)?;
                    let a = n.plan().attendees.iter().find(|a| {
                        a.agent
                            .as_deref()
                            .is_some_and(|x| x.eq_ignore_ascii_case(agent))
                    })?;
                    Some((meeting.clone(), a.person.clone(), slot))
                })
            }
            // An error names no meeting. After a restart its request-id is
            // unknown; when exactly one negotiation in a round has this
            // agent among its attendees, it is that one's (the machine
            // ignores it unless it still waits for that attendee).
            (DeferredAnswer::Error(_), None) => {
                let mut rounds = self.live.iter().filter_map(|(uid, n)| {
                    let slot = n.current_slot()?;
                    let a = n.plan().attendees.iter().find(|a| {
                        a.agent
                            .as_deref()
                            .is_some_and(|x| x.eq_ignore_ascii_case(agent))
                    })?;
                    Some((uid.clone(), a.person.clone(), slot))
                });
                match (rounds.next(), rounds.next()) {
                    (Some(only), None) => Some(only),
                    _ => None,
                }
            }
            (DeferredAnswer::Freebusy(_), None) => None,
        };
        let Some((uid, attendee, slot)) = target else {
            debug!(%agent, "a deferred answer for no negotiation of ours in progress");
            self.release_late_hold(agent, &reply, asked_slot, now).await;
            return;
        };
        let answer = match reply.answer {
            DeferredAnswer::Negotiation(NegotiationReply::Held(h)) => {
                HoldAnswer::Held { expires: h.expires }
            }
            DeferredAnswer::Negotiation(NegotiationReply::Declined(d)) => {
                HoldAnswer::Declined { counter: d.counter }
            }
            DeferredAnswer::Error(ProtocolError::NotPermitted) => {
                HoldAnswer::Refused(Refusal::NotPermitted)
            }
            DeferredAnswer::Error(ProtocolError::RateLimited { .. }) => {
                HoldAnswer::Refused(Refusal::RateLimited)
            }
            DeferredAnswer::Error(_) => HoldAnswer::Declined { counter: None },
            DeferredAnswer::Negotiation(_) | DeferredAnswer::Freebusy(_) => return,
        };
        self.asked_holds.remove(reply.request_id.as_str());
        info!(meeting = %uid, %agent, "a deferred hold answer arrived");
        self.step(
            &uid,
            Event::HoldAnswer {
                attendee,
                slot,
                answer,
            },
            now,
        )
        .await;
    }

    /// An attendee's owner approved our hold after the negotiation ended
    /// (it failed, or was called off, while they decided): nobody would
    /// confirm or release that hold, so it is released now instead of
    /// blocking their time until it expires. Only for a meeting we organize
    /// with this agent invited, so a peer cannot make us send releases at
    /// will; a negotiation still under way decides for itself.
    async fn release_late_hold(
        &mut self,
        agent: &str,
        reply: &DeferredReply,
        slot: Option<TimeRange>,
        now: DateTime<Utc>,
    ) {
        let DeferredAnswer::Negotiation(NegotiationReply::Held(held)) = &reply.answer else {
            return;
        };
        let uid = held.meeting.to_string();
        if self.live.contains_key(&uid) {
            return;
        }
        let ours = matches!(
            self.s.store.meeting(&uid).await,
            Ok(Some(m)) if m.role == crate::domain::MeetingRole::Organizer
        );
        let invited = ours
            && self.s.store.meeting_attendees(&uid).await.is_ok_and(|all| {
                all.iter().any(|a| {
                    a.agent
                        .as_deref()
                        .is_some_and(|x| x.eq_ignore_ascii_case(agent))
                })
            });
        if !invited {
            return;
        }
        info!(meeting = %uid, %agent, "releasing a hold granted after the negotiation ended");
        let release = messages::Release {
            request_id: RequestId::generate(now),
            meeting: held.meeting.clone(),
            sequence: held.sequence,
            slot,
        };
        self.tell(
            &uid,
            agent.to_string(),
            messages::release_element(&release),
            now,
        );
    }

    fn summary_of(&self, uid: &str) -> Option<String> {
        self.live.get(uid).map(|n| n.plan().summary.clone())
    }

    /// "Alice's agent proposes Sync, Tue 13 Jan 11:00–11:30 Europe/Berlin
    /// (your time: Tue 13 Jan 10:00–10:30 UTC). Reply yes or no." (§15; a
    /// contact record has no zone, so the person's time is UTC.)
    fn proposal_text(&self, p: &ChatProposal) -> String {
        format!(
            "{}'s agent proposes {}, {}. Reply yes or no.",
            self.owner_name(),
            chat_summary(self.summary_of(&p.uid).as_deref()),
            chat_time(&p.slot, self.s.live.owner_tz())
        )
    }

    /// The owner as contacts know them, else their JID's local part.
    fn owner_name(&self) -> String {
        let owner = self.s.owner.as_str();
        let snapshot = self.s.live.snapshot();
        crate::policy::resolve_peer(owner, &snapshot.contacts)
            .map(|c| render::sanitize(&c.name))
            .unwrap_or_else(|| render::sanitize(owner.split('@').next().unwrap_or(owner)))
    }

    /// Sends a person (their bare JID) a chat message.
    async fn chat(&self, person: &str, body: String) {
        let Ok(to) = BareJid::new(person) else {
            warn!(person, "not a JID; the chat message is not sent");
            return;
        };
        let out = Outgoing::Chat {
            to: Jid::from(to),
            body,
            thread: None,
        };
        if let Err(e) = self.outbox.send(out).await {
            warn!(person, "could not send a chat message: {e}");
        }
    }
}

/// A meeting's summary as a person's chat shows it (cut to 60 characters, §15).
fn chat_summary(summary: Option<&str>) -> String {
    render::sanitize_to(summary.unwrap_or("a meeting"), 60)
}

/// A slot in the owner's zone, named, with the person's time in UTC.
fn chat_time(slot: &TimeRange, tz: chrono_tz::Tz) -> String {
    let utc = render::time_range(slot, chrono_tz::UTC);
    if tz == chrono_tz::UTC {
        format!("{utc} UTC")
    } else {
        format!(
            "{} {} (your time: {utc} UTC)",
            render::time_range(slot, tz),
            tz.name()
        )
    }
}

// ---------------------------------------------------------------------------
// Changes to meetings already under way (`cancel`, `move`, `decline`)

/// A change the owner asks for to a meeting by its short id (chat §12.5–12.7).
#[derive(Debug, Clone)]
pub enum MeetingChange {
    /// `cancel N`: the organizer calls the meeting off for everyone.
    Cancel { short_id: i64 },
    /// `move N to WHEN`: the organizer looks for a new time with everyone,
    /// under the same UID and SEQUENCE + 1; the old time stays until then.
    Move {
        short_id: i64,
        to: crate::chat::When,
    },
    /// `decline N`: an attendee's owner will not come.
    Decline { short_id: i64 },
}

impl MeetingChange {
    fn short_id(&self) -> i64 {
        match self {
            MeetingChange::Cancel { short_id }
            | MeetingChange::Move { short_id, .. }
            | MeetingChange::Decline { short_id } => *short_id,
        }
    }
}

impl Negotiator {
    /// Carries out `change`; returns what to tell the owner now (empty when
    /// the one line follows later, once the other agents answered).
    pub async fn change(
        &self,
        change: MeetingChange,
        now: DateTime<Utc>,
    ) -> Result<String, String> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.tx
            .send(Msg::Change { change, now, reply })
            .await
            .map_err(|_| "the negotiator stopped".to_string())?;
        answer
            .await
            .map_err(|_| "the negotiator stopped".to_string())
    }
}

impl Worker {
    async fn change(&mut self, change: MeetingChange, now: DateTime<Utc>) -> String {
        let short = change.short_id();
        let m = match self.s.store.meeting_by_short_id(short).await {
            Ok(Some(m)) => m,
            Ok(None) => return format!("There is no meeting {short}: `meetings` lists them."),
            Err(e) => return format!("I could not read meeting {short}: {e}"),
        };
        let result = match change {
            MeetingChange::Cancel { .. } => self.cancel(m, now).await,
            MeetingChange::Move { to, .. } => self.reschedule(m, &to, now).await,
            MeetingChange::Decline { .. } => self.decline(m, now).await,
        };
        result.unwrap_or_else(|e| format!("Something went wrong on my side: {e}"))
    }

    /// `cancel`: calls off a negotiation under way (releasing every hold)
    /// and cancels the booking everywhere (§12.5).
    async fn cancel(
        &mut self,
        m: crate::domain::Meeting,
        now: DateTime<Utc>,
    ) -> Result<String, AgentError> {
        let title = render::sanitize(&m.summary);
        if m.role != crate::domain::MeetingRole::Organizer {
            return Ok(format!(
                "{} organizes {title}, so only they can cancel it; `decline {}` tells them you won't come.",
                peer_name(&self.s, &m.organizer),
                m.short_id
            ));
        }
        match m.status {
            MeetingStatus::Cancelled => return Ok(format!("{title} is already cancelled.")),
            MeetingStatus::Failed => {
                return Ok(format!(
                    "{title} was never booked; there is nothing to cancel."
                ));
            }
            MeetingStatus::Negotiating | MeetingStatus::Booked => {}
        }
        let tz = self.s.live.owner_tz();
        let mut sequence = m.sequence;
        // A negotiation under way (a new meeting, or a move) is called off:
        // its holds are released; the owner hears about the cancel only.
        if let Some(n) = self.live.get_mut(&m.uid) {
            sequence = sequence.max(i64::from(n.sequence()));
            let effects = n.on(Event::Cancel, now);
            for effect in effects {
                if !matches!(effect, Effect::Notify(_)) {
                    let _ = self.effect(&m.uid, effect, now).await;
                }
            }
            self.moves.remove(&m.uid);
            self.save(&m.uid, now).await;
        }
        if m.status == MeetingStatus::Negotiating {
            self.s
                .store
                .cancel_meeting(&m.uid, self.s.me.as_str(), sequence, tz, now)
                .await?;
            return Ok(format!(
                "Called off: {title}. I was still looking for a time; nobody was booked."
            ));
        }
        let Ok(wire_uid) = Uid::parse(&m.uid) else {
            return Ok(format!(
                "{title} has an identifier other agents would not accept; I changed nothing."
            ));
        };
        // iTIP CANCEL carries a SEQUENCE above the booked one.
        let sequence = sequence + 1;
        self.s
            .store
            .cancel_meeting(&m.uid, self.s.me.as_str(), sequence, tz, now)
            .await?;
        let when = m
            .range
            .map(|r| format!(", {}", render::time_range(&r, tz)))
            .unwrap_or_default();
        let attendees = self.s.store.meeting_attendees(&m.uid).await?;
        // Kept for an agent that is away until the meeting would be over.
        let keep_until = m.range.map_or(now, |r| r.end).max(now + NOTICE_PATIENCE);
        let mut sent = Vec::new();
        for a in attendees
            .iter()
            .filter(|a| a.partstat != PartStat::Declined)
        {
            let name = render::sanitize(&a.name.clone().unwrap_or_else(|| a.person.clone()));
            let Some(agent) = a.agent.clone() else {
                continue;
            };
            let cancel = MeetingRef {
                request_id: RequestId::generate(now),
                meeting: wire_uid.clone(),
                sequence: u32::try_from(sequence).unwrap_or(u32::MAX),
            };
            let delivery = self.notice(
                &m.uid,
                agent,
                messages::cancel_element(&cancel),
                keep_until,
                Some(title.clone()),
                now,
            );
            sent.push((name, delivery));
        }
        let outbox = self.outbox.clone();
        let owner = self.s.owner.clone();
        tokio::spawn(async move {
            let (mut told, mut away, mut refused, mut lost) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            // Each attendee's agent is told at once, not one after another.
            let (names, deliveries): (Vec<String>, Vec<_>) = sent.into_iter().unzip();
            let fates = futures_util::future::join_all(deliveries).await;
            for (name, fate) in names.into_iter().zip(fates) {
                match fate {
                    Delivery::Taken | Delivery::Duplicate => told.push(name),
                    Delivery::Away => away.push(name),
                    Delivery::Refused => refused.push(name),
                    Delivery::Lost => lost.push(name),
                }
            }
            let mut text = format!("Cancelled: {title}{when}.");
            if !told.is_empty() {
                text.push_str(&format!(" Told {}.", told.join(", ")));
            }
            if !away.is_empty() {
                text.push_str(&format!(
                    " The agent of {} is away: I will tell it when it is back.",
                    away.join(", ")
                ));
            }
            if !refused.is_empty() {
                text.push_str(&format!(
                    " The agent of {} did not take the cancel: their calendar may still show it.",
                    refused.join(", ")
                ));
            }
            if !lost.is_empty() {
                text.push_str(&format!(
                    " Could not reach the agent of {}: their calendar still shows it.",
                    lost.join(", ")
                ));
            }
            super::runtime::tell_owner(&outbox, &owner, text).await;
        });
        Ok(String::new())
    }

    /// `move`: negotiates a new time with the same UID and SEQUENCE + 1
    /// (§12.6); the booked time stays until the new one is confirmed.
    async fn reschedule(
        &mut self,
        m: crate::domain::Meeting,
        to: &crate::chat::When,
        now: DateTime<Utc>,
    ) -> Result<String, AgentError> {
        let title = render::sanitize(&m.summary);
        if m.role != crate::domain::MeetingRole::Organizer {
            return Ok(format!(
                "{} organizes {title}, so only they can move it; `decline {}` tells them you won't come.",
                peer_name(&self.s, &m.organizer),
                m.short_id
            ));
        }
        let range = match (m.status, m.range) {
            (MeetingStatus::Booked, Some(r)) => r,
            (MeetingStatus::Negotiating, _) => {
                return Ok(format!(
                    "{title} has no time yet: I am still looking for one. `cancel {}` and meet again to change the window.",
                    m.short_id
                ));
            }
            (MeetingStatus::Cancelled, _) => return Ok(format!("{title} is cancelled.")),
            _ => {
                return Ok(format!(
                    "{title} was never booked; there is nothing to move."
                ));
            }
        };
        if self.live.contains_key(&m.uid) {
            return Ok(format!(
                "I am already looking for a new time for {title}; wait for that, or `cancel {}`.",
                m.short_id
            ));
        }
        let s = self.s.clone();
        let tz = s.live.owner_tz();
        let duration = range.duration();
        let asked = match to.slot(duration, tz).filter(|_| to.time.is_some()) {
            Some(slot) => slot,
            None => to.to_utc_range(tz),
        };
        let Some(window) =
            TimeRange::new(asked.start.max(now), asked.end).filter(|w| w.duration() >= duration)
        else {
            return Ok("That time is already past; pick a later one.".into());
        };
        if window == range {
            return Ok(format!("{title} is already at that time."));
        }
        let attendees: Vec<Attendee> = s
            .store
            .meeting_attendees(&m.uid)
            .await?
            .into_iter()
            .filter(|a| a.partstat != PartStat::Declined)
            .map(|a| Attendee {
                name: a.name.clone().unwrap_or_else(|| a.person.clone()),
                person: a.person,
                agent: a.agent,
                required: a.required,
            })
            .collect();
        if attendees.is_empty() {
            return Ok(format!(
                "Everyone declined {title}; there is nobody to move it with. `cancel {}` removes it.",
                m.short_id
            ));
        }
        let Ok(sequence) = u32::try_from(m.sequence + 1) else {
            return Ok(format!("{title} has been changed too often to move again."));
        };
        // The quorum the owner asked for the first time still holds.
        let quorum = m
            .state_json
            .as_deref()
            .and_then(|j| serde_json::from_str::<Negotiation>(j).ok())
            .and_then(|n| n.plan().quorum)
            .filter(|q| *q <= attendees.len());
        // Our own booking of this meeting does not block its new time.
        let instances = s.live.snapshot().index.instances(window)?;
        let own_busy = crate::calendar::availability::merge_busy_ranges(
            instances
                .iter()
                .filter(|i| i.details.uid != m.uid)
                .filter_map(|i| i.busy_status().map(|b| (i.range, b))),
            window,
        );
        let settings = s.gate.settings();
        let plan = Plan {
            meeting: m.uid.clone(),
            summary: m.summary.clone(),
            sequence,
            duration,
            window,
            own_busy,
            hours: settings.working_hours.clone(),
            tz: settings.owner_tz,
            rules: SlotRules::from(&settings.slot_options),
            attendees,
            quorum,
            max_rounds: DEFAULT_MAX_ROUNDS,
            hold_ttl: DEFAULT_HOLD_TTL,
            deadline: now + NEGOTIATION_DEADLINE,
        };
        let (negotiation, effects) = Negotiation::new(plan, now);
        self.live.insert(m.uid.clone(), negotiation);
        self.moves.insert(m.uid.clone(), range);
        self.carry_out(&m.uid, effects, now).await;
        Ok(format!(
            "Looking for a new time for {title} ({}); it stays at {} until everyone agrees.",
            render::days(&window, tz),
            render::time_range(&range, tz)
        ))
    }

    /// The owner's one line when a move ends: the meeting is at its new
    /// time, or still at its old one and why.
    async fn finish_move(&mut self, uid: &str, from: TimeRange, outcome: &MeetingOutcome) {
        let tz = self.s.live.owner_tz();
        let summary = self
            .live
            .get(uid)
            .map(|n| n.plan().summary.clone())
            .unwrap_or_else(|| "Meeting".into());
        let title = render::sanitize(&summary);
        let text = match outcome {
            MeetingOutcome::Booked {
                slot,
                declined,
                missing,
                ..
            } => {
                let mut text = format!(
                    "Moved: {title} from {} to {}.",
                    render::time_range(&from, tz),
                    render::time_range(slot, tz)
                );
                let names = |p: &[Party]| {
                    p.iter()
                        .map(|p| render::sanitize(&p.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                if !declined.is_empty() {
                    text.push_str(&format!(" Declined: {}.", names(declined)));
                }
                if !missing.is_empty() {
                    text.push_str(&format!(" No answer: {}.", names(missing)));
                }
                text
            }
            MeetingOutcome::Failed { reason } => format!(
                "Could not move {title}: {}. It stays at {}.",
                failure_text(reason, tz),
                render::time_range(&from, tz)
            ),
        };
        super::runtime::tell_owner(&self.outbox, &self.s.owner, text).await;
    }

    /// `decline`: our owner will not come to a meeting someone else
    /// organizes (§12.7): the booking is cancelled here and the organizer's
    /// agent told.
    async fn decline(
        &mut self,
        m: crate::domain::Meeting,
        now: DateTime<Utc>,
    ) -> Result<String, AgentError> {
        let title = render::sanitize(&m.summary);
        if m.role == crate::domain::MeetingRole::Organizer {
            return Ok(format!(
                "You organize {title}: `cancel {}` calls it off for everyone.",
                m.short_id
            ));
        }
        match m.status {
            MeetingStatus::Booked => {}
            MeetingStatus::Cancelled => {
                return Ok(format!("{title} is already cancelled or declined."));
            }
            MeetingStatus::Negotiating | MeetingStatus::Failed => {
                return Ok(format!(
                    "{title} is not booked; there is nothing to decline."
                ));
            }
        }
        let Ok(wire_uid) = Uid::parse(&m.uid) else {
            return Ok(format!(
                "{title} has an identifier other agents would not accept; I changed nothing."
            ));
        };
        let tz = self.s.live.owner_tz();
        self.s
            .store
            .cancel_meeting(&m.uid, &m.organizer, m.sequence, tz, now)
            .await?;
        let decline = MeetingRef {
            request_id: RequestId::generate(now),
            meeting: wire_uid,
            sequence: u32::try_from(m.sequence).unwrap_or(u32::MAX),
        };
        let organizer = peer_name(&self.s, &m.organizer);
        let keep_until = m.range.map_or(now, |r| r.end).max(now + NOTICE_PATIENCE);
        let delivery = self.notice(
            &m.uid,
            m.organizer.clone(),
            messages::decline_element(&decline),
            keep_until,
            Some(title.clone()),
            now,
        );
        let when = m
            .range
            .map(|r| format!(", {}", render::time_range(&r, tz)))
            .unwrap_or_default();
        let outbox = self.outbox.clone();
        let owner = self.s.owner.clone();
        tokio::spawn(async move {
            let told = match delivery.await {
                Delivery::Taken | Delivery::Duplicate => format!("{organizer}'s agent was told."),
                Delivery::Away => {
                    format!("{organizer}'s agent is away: I will tell it when it is back.")
                }
                Delivery::Refused => format!(
                    "{organizer}'s agent did not take the answer; tell {organizer} yourself."
                ),
                Delivery::Lost => format!(
                    "{organizer}'s agent is offline and was not told; tell {organizer} yourself."
                ),
            };
            let text = format!("Declined: {title}{when}; removed from your calendar. {told}");
            super::runtime::tell_owner(&outbox, &owner, text).await;
        });
        Ok(String::new())
    }
}

/// How long a cancel of a stale booking waits in the outbox for an
/// attendee agent that is away; a release waits [`MAX_HOLD`], after which
/// the attendee's hold has expired by itself.
const NOTICE_PATIENCE: Duration = Duration::days(1);

/// What the outbox remembers about a release or cancel it keeps for an
/// attendee agent that was away (see [`Worker::tell`]).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct NoticePurpose {
    /// How the owner calls the peer.
    name: String,
    /// The meeting's uid.
    meeting: String,
    /// The element kept: `release`, `cancel` or `decline`.
    notice: String,
    /// The meeting's title, when the owner asked for this (`cancel N`,
    /// `decline N`) and is to hear whether it finally went through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner_title: Option<String>,
}

impl NoticePurpose {
    /// What the owner hears when a notice they asked for finally went
    /// through (`Taken`, `Refused`) or lapsed (`Away`); nothing otherwise.
    fn owner_note(&self, fate: Delivery) -> Option<String> {
        let title = self.owner_title.as_deref()?;
        let name = &self.name;
        let decline = self.notice == "decline";
        Some(match (fate, decline) {
            (Delivery::Taken, false) => format!("Told {name}'s agent that {title} is cancelled."),
            (Delivery::Taken, true) => format!("Told {name}'s agent that you declined {title}."),
            (Delivery::Refused, false) => format!(
                "{name}'s agent did not take the cancel of {title}: their calendar may still show it."
            ),
            (Delivery::Refused, true) => format!(
                "{name}'s agent did not take your decline of {title}; tell {name} yourself."
            ),
            (Delivery::Away | Delivery::Lost | Delivery::Duplicate, false) => format!(
                "Could not tell {name}'s agent that {title} is cancelled: it stayed away until the meeting was over."
            ),
            (Delivery::Away | Delivery::Lost | Delivery::Duplicate, true) => format!(
                "Could not tell {name}'s agent that you declined {title}: it stayed away until the meeting was over."
            ),
        })
    }
}

/// What the owner hears when a notice they asked for lapsed in the outbox
/// (see [`NoticePurpose::owner_note`]).
pub(crate) fn lapsed_note(item: &OutboxItem) -> Option<String> {
    serde_json::from_str::<NoticePurpose>(&item.purpose)
        .ok()?
        .owner_note(Delivery::Away)
}

/// Whether an outbox entry is a kept release or cancel (not a free/busy
/// question or a task message), so that the runtime hands it back here.
pub(crate) fn is_notice_item(item: &OutboxItem) -> bool {
    serde_json::from_str::<NoticePurpose>(&item.purpose).is_ok()
}

/// Sends a kept notice again, now that `to` is online; the owner hears
/// when one they asked for goes through. A release or stale-booking cancel
/// that lapses is moot (an attendee's hold expires on its own side);
/// for the owner's own, see [`lapsed_note`].
pub(crate) fn resend_notice(s: &Services, outbox: &Outbox, item: OutboxItem, to: FullJid) {
    let (s, outbox) = (s.clone(), outbox.clone());
    tokio::spawn(async move {
        let fate = send_kept(&s, &outbox, &item, to, true).await;
        let note = serde_json::from_str::<NoticePurpose>(&item.purpose)
            .ok()
            .filter(|_| matches!(fate, Delivery::Taken | Delivery::Refused))
            .and_then(|p| p.owner_note(fate));
        if let Some(note) = note {
            super::runtime::tell_owner(&outbox, &s.owner, note).await;
        }
    });
}

fn uid_of(uid: &str) -> Option<Uid> {
    Uid::parse(uid).ok()
}

/// What came back from a peer.
enum Answer {
    Result(Option<Element>),
    Error(PeerError),
    Unreachable,
}

/// A peer's error reply, reduced to what the negotiation cares about.
enum PeerError {
    NotPermitted,
    RateLimited,
    HoldExpired,
    Other,
}

impl From<&xmpp_parsers::stanza_error::StanzaError> for PeerError {
    fn from(e: &xmpp_parsers::stanza_error::StanzaError) -> Self {
        let app = e
            .other
            .as_ref()
            .filter(|o| o.ns() == NS)
            .map(|o| o.name().to_string());
        match app.as_deref() {
            Some("rate-limited") => PeerError::RateLimited,
            Some("hold-expired") | Some("stale-sequence") => PeerError::HoldExpired,
            _ if e.defined_condition == DefinedCondition::Forbidden => PeerError::NotPermitted,
            _ => PeerError::Other,
        }
    }
}

fn availability(answer: Answer) -> AvailabilityAnswer {
    match answer {
        Answer::Result(Some(el)) if el.is("freebusy", NS) => match parse_reply(&el) {
            Ok(reply) => AvailabilityAnswer::from_reply(&reply),
            Err(_) => AvailabilityAnswer::YesNoOnly,
        },
        // Pending (the owner is asked) or something else: we know nothing;
        // the hold will find out.
        Answer::Result(_) => AvailabilityAnswer::YesNoOnly,
        Answer::Error(PeerError::NotPermitted) => {
            AvailabilityAnswer::Refused(Refusal::NotPermitted)
        }
        Answer::Error(PeerError::RateLimited) => AvailabilityAnswer::Refused(Refusal::RateLimited),
        Answer::Error(_) => AvailabilityAnswer::YesNoOnly,
        Answer::Unreachable => AvailabilityAnswer::Unreachable,
    }
}

fn hold_answer(answer: Answer) -> HoldAnswer {
    match answer {
        Answer::Result(Some(el)) => match parse_negotiation_reply(&el) {
            Ok(NegotiationReply::Held(h)) => HoldAnswer::Held { expires: h.expires },
            Ok(NegotiationReply::Declined(d)) => HoldAnswer::Declined { counter: d.counter },
            Ok(NegotiationReply::Pending { .. }) => HoldAnswer::Pending,
            _ => HoldAnswer::Declined { counter: None },
        },
        Answer::Result(None) => HoldAnswer::Declined { counter: None },
        Answer::Error(PeerError::NotPermitted) => HoldAnswer::Refused(Refusal::NotPermitted),
        Answer::Error(PeerError::RateLimited) => HoldAnswer::Refused(Refusal::RateLimited),
        Answer::Error(_) => HoldAnswer::Declined { counter: None },
        Answer::Unreachable => HoldAnswer::Unreachable,
    }
}

fn confirm_answer(answer: Answer) -> Result<(), ConfirmFailure> {
    match answer {
        Answer::Result(Some(el)) => match parse_negotiation_reply(&el) {
            Ok(NegotiationReply::Confirmed(_)) => Ok(()),
            _ => Err(ConfirmFailure::SlotTaken),
        },
        Answer::Result(None) => Err(ConfirmFailure::SlotTaken),
        Answer::Error(PeerError::HoldExpired) | Answer::Error(PeerError::Other) => {
            Err(ConfirmFailure::SlotTaken)
        }
        Answer::Error(PeerError::NotPermitted) | Answer::Error(PeerError::RateLimited) => {
            Err(ConfirmFailure::Refused)
        }
        Answer::Unreachable => Err(ConfirmFailure::Unreachable),
    }
}

/// The one message the owner gets when a negotiation ends.
pub fn outcome_text(summary: &str, outcome: &MeetingOutcome, tz: chrono_tz::Tz) -> String {
    let title = render::sanitize(summary);
    let names = |parties: &[Party]| {
        parties
            .iter()
            .map(|p| render::sanitize(&p.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match outcome {
        MeetingOutcome::Booked {
            slot,
            accepted,
            declined,
            missing,
            ..
        } => {
            let mut text = format!(
                "Booked: {title}, {} with {}.",
                render::time_range(slot, tz),
                names(accepted)
            );
            if !declined.is_empty() {
                text.push_str(&format!(" Declined: {}.", names(declined)));
            }
            if !missing.is_empty() {
                text.push_str(&format!(" No answer: {}.", names(missing)));
            }
            text
        }
        MeetingOutcome::Failed { reason } => {
            format!("Could not book {title}: {}.", failure_text(reason, tz))
        }
    }
}

/// Why a negotiation ended without a booking, as the owner reads it.
fn failure_text(reason: &FailureReason, tz: chrono_tz::Tz) -> String {
    match reason {
        FailureReason::NoCommonTime {
            earliest_outside: Some(slot),
        } => format!(
            "no common time in working hours; earliest outside them is {}",
            render::time_range(slot, tz)
        ),
        FailureReason::NoCommonTime {
            earliest_outside: None,
        } => "no common time in the window I searched".into(),
        FailureReason::AttendeeUnreachable { name, .. } => {
            format!("{}'s agent is offline", render::sanitize(name))
        }
        FailureReason::NoAnswer { name, .. } => {
            format!("{} did not answer in time", render::sanitize(name))
        }
        FailureReason::Refused { name, why, .. } => match why {
            Refusal::NotPermitted => format!(
                "{}'s agent does not take meeting proposals from you",
                render::sanitize(name)
            ),
            Refusal::RateLimited => format!(
                "{}'s agent has had too many requests from you; try later",
                render::sanitize(name)
            ),
        },
        FailureReason::QuorumImpossible { needed, reachable } => {
            format!("only {reachable} attendees can be reached and the quorum is {needed}")
        }
        FailureReason::RoundsExhausted { tried } => {
            format!("{} times tried, none suited everyone", tried.len())
        }
        FailureReason::DeadlinePassed => "it took too long".into(),
        FailureReason::Cancelled => "you called it off".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const TZ: chrono_tz::Tz = chrono_tz::Europe::Berlin;

    #[test]
    fn kept_releases_are_told_apart_from_questions_and_task_messages() {
        let item = |purpose: &str| OutboxItem {
            request_id: "r1".into(),
            peer: "bob.agent@example.org".into(),
            payload: "<release/>".into(),
            purpose: purpose.into(),
            created: Utc::now(),
            deadline: Utc::now(),
            attempts: 0,
            state: "waiting".into(),
            reply: None,
        };
        let kept = NoticePurpose {
            name: "Bob".into(),
            meeting: "m1@example.org".into(),
            notice: "release".into(),
            owner_title: None,
        };
        let kept = serde_json::to_string(&kept).unwrap_or_default();
        assert!(is_notice_item(&item(&kept)));
        assert!(!super::super::handoffs::is_task_item(&item(&kept)));
        // A free/busy question and a task message are someone else's.
        assert!(!is_notice_item(&item(r#"{"name":"Bob"}"#)));
        let task = r#"{"name":"Bob","task":{"id":3,"summary":"Slides","kind":"task-offer"}}"#;
        assert!(!is_notice_item(&item(task)));
        assert!(!is_notice_item(&item("not json")));
    }

    #[test]
    fn the_owner_hears_of_their_own_notices_only() {
        let purpose = |notice: &str, title: Option<&str>| NoticePurpose {
            name: "Carol".into(),
            meeting: "m1@example.org".into(),
            notice: notice.into(),
            owner_title: title.map(str::to_string),
        };
        // Releases and stale-booking cancels are the agent's business.
        assert_eq!(purpose("release", None).owner_note(Delivery::Taken), None);
        assert_eq!(purpose("cancel", None).owner_note(Delivery::Away), None);
        let cancel = purpose("cancel", Some("Sync"));
        assert_eq!(
            cancel.owner_note(Delivery::Taken).as_deref(),
            Some("Told Carol's agent that Sync is cancelled.")
        );
        assert_eq!(
            cancel.owner_note(Delivery::Away).as_deref(),
            Some(
                "Could not tell Carol's agent that Sync is cancelled: it stayed away until the meeting was over."
            )
        );
        let decline = purpose("decline", Some("Sync"));
        assert_eq!(
            decline.owner_note(Delivery::Refused).as_deref(),
            Some("Carol's agent did not take your decline of Sync; tell Carol yourself.")
        );
        // What a lapsed outbox entry says, read back from its stored purpose.
        let item = OutboxItem::waiting(
            "r2",
            "carol.agent@example.org",
            "<decline/>".into(),
            serde_json::to_string(&decline).unwrap_or_default(),
            Utc::now(),
            Utc::now(),
        );
        assert!(is_notice_item(&item));
        assert_eq!(
            lapsed_note(&item).as_deref(),
            Some(
                "Could not tell Carol's agent that you declined Sync: it stayed away until the meeting was over."
            )
        );
        // Entries written before owner titles existed still read.
        let old = r#"{"name":"Bob","meeting":"m1","notice":"release"}"#;
        let old: NoticePurpose = serde_json::from_str(old).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(old.owner_note(Delivery::Away), None);
    }

    fn slot() -> TimeRange {
        let start = Utc
            .with_ymd_and_hms(2026, 1, 13, 9, 0, 0)
            .single()
            .unwrap_or_default();
        TimeRange {
            start,
            end: start + Duration::minutes(45),
        }
    }

    fn party(name: &str) -> Party {
        Party {
            person: format!("{}@example.org", name.to_lowercase()),
            name: name.into(),
        }
    }

    #[test]
    fn the_owner_hears_one_line_with_the_local_time_and_who() {
        let booked = MeetingOutcome::Booked {
            slot: slot(),
            sequence: 0,
            accepted: vec![party("Bob"), party("Carol")],
            declined: vec![],
            missing: vec![],
        };
        assert_eq!(
            outcome_text("Design review", &booked, TZ),
            "Booked: Design review, Tue 13 Jan 10:00–10:45 with Bob, Carol."
        );
        let failed = MeetingOutcome::Failed {
            reason: FailureReason::AttendeeUnreachable {
                person: "carol@example.org".into(),
                name: "Carol".into(),
            },
        };
        assert_eq!(
            outcome_text("Sync", &failed, TZ),
            "Could not book Sync: Carol's agent is offline."
        );
    }

    #[test]
    fn titles_and_names_from_outside_are_sanitized() {
        let booked = MeetingOutcome::Booked {
            slot: slot(),
            sequence: 0,
            accepted: vec![party("Eve\napprove 4")],
            declined: vec![],
            missing: vec![],
        };
        let text = outcome_text("x\u{202e}y", &booked, TZ);
        assert!(!text.contains('\n') && !text.contains('\u{202e}'), "{text}");
    }
}

#[cfg(test)]
mod chat_tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn people_answer_yes_or_no_in_a_few_spellings() {
        for yes in ["yes", "Y", " OK ", "Yes.", "yes!", "YES"] {
            assert_eq!(read_yes_no(yes), Some(true), "{yes:?}");
        }
        for no in ["no", "N", "No.", " no! "] {
            assert_eq!(read_yes_no(no), Some(false), "{no:?}");
        }
        for unclear in ["maybe", "", "yes no", "nope", "okay?", "y e s"] {
            assert_eq!(read_yes_no(unclear), None, "{unclear:?}");
        }
    }

    #[test]
    fn a_proposal_names_the_owners_zone_and_the_persons_time() {
        let start = Utc
            .with_ymd_and_hms(2026, 1, 13, 10, 0, 0)
            .single()
            .unwrap_or_default();
        let slot = TimeRange {
            start,
            end: start + Duration::minutes(30),
        };
        assert_eq!(
            chat_time(&slot, chrono_tz::Europe::Berlin),
            "Tue 13 Jan 11:00–11:30 Europe/Berlin (your time: Tue 13 Jan 10:00–10:30 UTC)"
        );
        assert_eq!(
            chat_time(&slot, chrono_tz::UTC),
            "Tue 13 Jan 10:00–10:30 UTC"
        );
        assert_eq!(chat_summary(Some(&"x".repeat(100))).chars().count(), 60);
    }
}
