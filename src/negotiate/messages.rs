//! The meeting, task and approval messages of `docs/protocol.md` §12–14:
//! typed values, read from and written to XML elements.
//!
//! Same contract as [`super::wire`]: pure, no session, no policy, no clock.
//! Everything read here came from another agent, so every attribute is
//! validated, every size bounded (§8), and every failure is a [`WireError`]
//! that maps to the stanza error §6 prescribes. Attributes this version does
//! not know are ignored and children in other namespaces are skipped (§10);
//! an unknown child in [`NS`] is `Unsupported`.

use chrono::{DateTime, Duration, Utc};
use jid::BareJid;
use xmpp_parsers::minidom::Element;
use xmpp_parsers::minidom::rxml::NcName;

use super::wire::{
    FreebusyReply, MAX_WINDOW_DAYS, NS, ProtocolError, RequestId, WireError, attr_time,
    check_payload, clip, format_time, parse_reply, range, range_element, set, with_range,
};
use crate::domain::TimeRange;

/// Limits of §8 for the messages of §12–13.
pub const MAX_SUMMARY_CHARS: usize = 200;
pub const MAX_NOTE_CHARS: usize = 1000;
pub const MAX_ATTENDEES: usize = 50;
pub const MAX_CHAIN: usize = 10;
pub const MAX_UID_CHARS: usize = 255;
/// iCalendar SEQUENCE is an RFC 5545 INTEGER: at most 2^31 − 1.
pub const MAX_SEQUENCE: u32 = i32::MAX as u32;

// ---------------------------------------------------------------------------
// Values

/// An iCalendar UID naming a meeting or a task across agents (§12): chosen
/// by the organizer or offerer, 1–255 printable ASCII characters without
/// spaces, so it can go into a VEVENT/VTODO and a log line unescaped.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uid(String);

impl Uid {
    pub fn parse(text: &str) -> Result<Self, WireError> {
        let ok = !text.is_empty()
            && text.len() <= MAX_UID_CHARS
            && text.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(Self(text.to_string()))
        } else {
            Err(WireError::Invalid(format!(
                "a meeting or task uid must be 1 to {MAX_UID_CHARS} printable ASCII characters without spaces (got '{}')",
                clip(text)
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Uid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// iCalendar ROLE of an attendee (RFC 5545 §3.2.16): whether the meeting
/// needs them to happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttendeeRole {
    Required,
    Optional,
}

impl AttendeeRole {
    pub fn name(self) -> &'static str {
        match self {
            AttendeeRole::Required => "REQ-PARTICIPANT",
            AttendeeRole::Optional => "OPT-PARTICIPANT",
        }
    }

    fn from_name(v: &str) -> Option<Self> {
        match v {
            "REQ-PARTICIPANT" => Some(AttendeeRole::Required),
            "OPT-PARTICIPANT" => Some(AttendeeRole::Optional),
            _ => None,
        }
    }
}

/// One `<attendee>` of a hold: a person (their own bare JID, not their
/// agent's), so each attendee's agent can show its owner who else is invited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attendee {
    pub jid: BareJid,
    pub role: AttendeeRole,
}

/// Why an attendee agent did not hold a slot (§12.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeclineReason {
    /// The slot is not free (an event, a booking or another live hold).
    Busy,
    /// The owner was asked (§14) and let the question expire.
    NoAnswer,
    /// The owner was asked and said no.
    Declined,
}

impl DeclineReason {
    pub fn name(self) -> &'static str {
        match self {
            DeclineReason::Busy => "busy",
            DeclineReason::NoAnswer => "no-answer",
            DeclineReason::Declined => "declined",
        }
    }

    fn from_name(v: &str) -> Option<Self> {
        match v {
            "busy" => Some(DeclineReason::Busy),
            "no-answer" => Some(DeclineReason::NoAnswer),
            "declined" => Some(DeclineReason::Declined),
            _ => None,
        }
    }
}

/// The assignee's answer to a task offer (§13.1): iTIP REPLY PARTSTAT for a
/// VTODO, with COUNTER for "yes, but with another due date".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskAnswerPartstat {
    Accepted,
    Declined,
    Delegated,
    Counter,
}

impl TaskAnswerPartstat {
    pub fn name(self) -> &'static str {
        match self {
            TaskAnswerPartstat::Accepted => "ACCEPTED",
            TaskAnswerPartstat::Declined => "DECLINED",
            TaskAnswerPartstat::Delegated => "DELEGATED",
            TaskAnswerPartstat::Counter => "COUNTER",
        }
    }

    fn from_name(v: &str) -> Option<Self> {
        match v {
            "ACCEPTED" => Some(TaskAnswerPartstat::Accepted),
            "DECLINED" => Some(TaskAnswerPartstat::Declined),
            "DELEGATED" => Some(TaskAnswerPartstat::Delegated),
            "COUNTER" => Some(TaskAnswerPartstat::Counter),
            _ => None,
        }
    }
}

/// A task's state as the assignee reports it back (§13.2): VTODO PARTSTAT,
/// plus CANCELLED (VTODO STATUS) for "my owner dropped it".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskPartstat {
    NeedsAction,
    Accepted,
    Declined,
    InProcess,
    Completed,
    Delegated,
    Cancelled,
}

impl TaskPartstat {
    pub fn name(self) -> &'static str {
        match self {
            TaskPartstat::NeedsAction => "NEEDS-ACTION",
            TaskPartstat::Accepted => "ACCEPTED",
            TaskPartstat::Declined => "DECLINED",
            TaskPartstat::InProcess => "IN-PROCESS",
            TaskPartstat::Completed => "COMPLETED",
            TaskPartstat::Delegated => "DELEGATED",
            TaskPartstat::Cancelled => "CANCELLED",
        }
    }

    fn from_name(v: &str) -> Option<Self> {
        match v {
            "NEEDS-ACTION" => Some(TaskPartstat::NeedsAction),
            "ACCEPTED" => Some(TaskPartstat::Accepted),
            "DECLINED" => Some(TaskPartstat::Declined),
            "IN-PROCESS" => Some(TaskPartstat::InProcess),
            "COMPLETED" => Some(TaskPartstat::Completed),
            "DELEGATED" => Some(TaskPartstat::Delegated),
            "CANCELLED" => Some(TaskPartstat::Cancelled),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------
// Messages

/// `<hold>` (§12.2, iTIP REQUEST): "keep [start, end) free for this meeting
/// until `expires`".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub request_id: RequestId,
    pub meeting: Uid,
    pub sequence: u32,
    pub slot: TimeRange,
    /// The expiry the organizer asks for; the attendee may shorten it.
    pub expires: DateTime<Utc>,
    pub summary: Option<String>,
    pub attendees: Vec<Attendee>,
}

/// `<held>` result (§12.2): the slot is held until `expires` (the actual expiry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub request_id: RequestId,
    pub meeting: Uid,
    pub sequence: u32,
    pub expires: DateTime<Utc>,
}

/// `<declined>` result (§12.2, iTIP REPLY DECLINED, with `counter` iTIP COUNTER).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declined {
    pub request_id: RequestId,
    pub meeting: Uid,
    pub sequence: u32,
    pub reason: DeclineReason,
    /// The earliest free slot of the same length, only with [`DeclineReason::Busy`].
    pub counter: Option<TimeRange>,
}

/// The `request-id meeting sequence` triple that `<confirm>`, `<confirmed>`,
/// `<release>`, `<cancel>` and `<decline>` carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetingRef {
    pub request_id: RequestId,
    pub meeting: Uid,
    pub sequence: u32,
}

/// `<confirm>` (§12.3, iTIP REQUEST with STATUS:CONFIRMED): book the held slot.
pub type Confirm = MeetingRef;
/// `<confirmed>` result (§12.3, iTIP REPLY ACCEPTED).
pub type Confirmed = MeetingRef;
/// `<release>` (§12.4): drop the hold, nothing was booked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub request_id: RequestId,
    pub meeting: Uid,
    pub sequence: u32,
    /// The held slot being released (`start`/`end`, optional): when given,
    /// only a hold of exactly that slot goes, so a release that arrives
    /// after the next round's hold cannot drop it.
    pub slot: Option<TimeRange>,
}
/// `<cancel>` (§12.5, iTIP CANCEL): the organizer cancels a booked meeting.
pub type Cancel = MeetingRef;
/// `<decline>` (§12.7, iTIP REPLY PARTSTAT=DECLINED): an attendee's owner
/// declines a booked meeting. Answered with an empty result.
pub type Decline = MeetingRef;

/// `<released>` and `<cancelled>` results: `request-id meeting`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetingAck {
    pub request_id: RequestId,
    pub meeting: Uid,
}

/// `<released>` result (§12.4).
pub type Released = MeetingAck;
/// `<cancelled>` result (§12.5).
pub type Cancelled = MeetingAck;

/// `<task-offer>` (§13.1, iTIP REQUEST of a VTODO).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskOffer {
    pub request_id: RequestId,
    pub task: Uid,
    pub due: Option<DateTime<Utc>>,
    pub summary: String,
    pub note: Option<String>,
    /// The agents that delegated the task so far, oldest first.
    pub chain: Vec<BareJid>,
}

impl TaskOffer {
    /// An agent never accepts a task it already delegated: the offer would
    /// go round in a circle (§13.4).
    pub fn check_not_in_chain(&self, me: &BareJid) -> Result<(), ProtocolError> {
        if self.chain.contains(me) {
            Err(ProtocolError::DelegationLoop)
        } else {
            Ok(())
        }
    }
}

/// `<task-answer>` result (§13.1, iTIP REPLY / COUNTER of a VTODO).
/// `due` goes with COUNTER only, `delegated_to` with DELEGATED only, and
/// `reason` (`declined` or `no-answer`) with DECLINED only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskAnswer {
    pub request_id: RequestId,
    pub task: Uid,
    pub partstat: TaskAnswerPartstat,
    pub due: Option<DateTime<Utc>>,
    pub delegated_to: Option<BareJid>,
    pub reason: Option<DeclineReason>,
}

/// `<task-status>` (§13.2, iTIP REPLY of a VTODO): the assignee pushes a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskStatus {
    pub request_id: RequestId,
    pub task: Uid,
    pub partstat: TaskPartstat,
    /// VTODO PERCENT-COMPLETE, 0–100.
    pub percent: Option<u8>,
    pub due: Option<DateTime<Utc>>,
    /// With DELEGATED only: the agent now doing the task.
    pub delegated_to: Option<BareJid>,
}

/// `<task-cancel>` (§13.3, iTIP CANCEL of a VTODO): the offerer takes a task back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskCancel {
    pub request_id: RequestId,
    pub task: Uid,
}

/// Every IQ `set` of §12–13 an agent may receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NegotiationRequest {
    Hold(Hold),
    Confirm(Confirm),
    Release(Release),
    Cancel(Cancel),
    Decline(Decline),
    TaskOffer(TaskOffer),
    TaskStatus(TaskStatus),
    TaskCancel(TaskCancel),
}

impl NegotiationRequest {
    pub fn request_id(&self) -> &RequestId {
        match self {
            NegotiationRequest::Hold(m) => &m.request_id,
            NegotiationRequest::Release(m) => &m.request_id,
            NegotiationRequest::Confirm(m)
            | NegotiationRequest::Cancel(m)
            | NegotiationRequest::Decline(m) => &m.request_id,
            NegotiationRequest::TaskOffer(m) => &m.request_id,
            NegotiationRequest::TaskStatus(m) => &m.request_id,
            NegotiationRequest::TaskCancel(m) => &m.request_id,
        }
    }

    /// The element's name, which is also the idempotency record's kind.
    pub fn name(&self) -> &'static str {
        match self {
            NegotiationRequest::Hold(_) => "hold",
            NegotiationRequest::Confirm(_) => "confirm",
            NegotiationRequest::Release(_) => "release",
            NegotiationRequest::Cancel(_) => "cancel",
            NegotiationRequest::Decline(_) => "decline",
            NegotiationRequest::TaskOffer(_) => "task-offer",
            NegotiationRequest::TaskStatus(_) => "task-status",
            NegotiationRequest::TaskCancel(_) => "task-cancel",
        }
    }
}

/// Every non-empty result payload of §12–13, plus `<pending>` (§5.3), which
/// answers a hold or task offer the owner is asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NegotiationReply {
    Pending {
        request_id: RequestId,
        expires: DateTime<Utc>,
    },
    Held(Held),
    Declined(Declined),
    Confirmed(Confirmed),
    Released(Released),
    Cancelled(Cancelled),
    TaskAnswer(TaskAnswer),
}

impl NegotiationReply {
    pub fn request_id(&self) -> &RequestId {
        match self {
            NegotiationReply::Pending { request_id, .. } => request_id,
            NegotiationReply::Held(m) => &m.request_id,
            NegotiationReply::Declined(m) => &m.request_id,
            NegotiationReply::Confirmed(m) => &m.request_id,
            NegotiationReply::Released(m) | NegotiationReply::Cancelled(m) => &m.request_id,
            NegotiationReply::TaskAnswer(m) => &m.request_id,
        }
    }
}

/// What a deferred `<reply>` (§5.3, §14) carries: the answer a result would
/// have carried, or an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeferredAnswer {
    Freebusy(FreebusyReply),
    Negotiation(NegotiationReply),
    Error(ProtocolError),
}

/// `<reply request-id>` (§14): the final answer to a request that got `<pending>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeferredReply {
    pub request_id: RequestId,
    pub answer: DeferredAnswer,
}

// ---------------------------------------------------------------------------
// Reading

fn required<'a>(el: &'a Element, name: &'a str) -> Result<&'a str, WireError> {
    el.attr(name)
        .ok_or_else(|| WireError::Invalid(format!("<{}> needs {name}", el.name())))
}

fn request_id(el: &Element) -> Result<RequestId, WireError> {
    RequestId::parse(required(el, "request-id")?)
}

fn uid(el: &Element, name: &str) -> Result<Uid, WireError> {
    Uid::parse(required(el, name)?)
}

fn required_time(el: &Element, name: &str) -> Result<DateTime<Utc>, WireError> {
    attr_time(el, name)?.ok_or_else(|| WireError::Invalid(format!("<{}> needs {name}", el.name())))
}

/// A decimal without sign or leading zeros, so each number has one spelling
/// and a replay digest cannot be dodged with `007`.
fn decimal(el: &Element, name: &str, max: u32) -> Result<Option<u32>, WireError> {
    let Some(v) = el.attr(name) else {
        return Ok(None);
    };
    let canonical = !v.is_empty()
        && v.len() <= 10
        && v.bytes().all(|b| b.is_ascii_digit())
        && (v == "0" || !v.starts_with('0'));
    match v.parse::<u32>() {
        Ok(n) if canonical && n <= max => Ok(Some(n)),
        _ => Err(WireError::Invalid(format!(
            "<{}>: {name}='{}' is not a whole number from 0 to {max}",
            el.name(),
            clip(v)
        ))),
    }
}

fn sequence(el: &Element) -> Result<u32, WireError> {
    decimal(el, "sequence", MAX_SEQUENCE)?
        .ok_or_else(|| WireError::Invalid(format!("<{}> needs sequence", el.name())))
}

fn bare_jid(el: &Element, name: &str) -> Result<Option<BareJid>, WireError> {
    let Some(v) = el.attr(name) else {
        return Ok(None);
    };
    BareJid::new(v).map(Some).map_err(|e| {
        WireError::Invalid(format!(
            "<{}>: {name}='{}' is not a bare JID ({e})",
            el.name(),
            clip(v)
        ))
    })
}

/// The children of `el` in [`NS`]; other namespaces are extensions (§10).
fn own_children(el: &Element) -> impl Iterator<Item = &Element> {
    el.children().filter(|c| c.ns() == NS)
}

fn unsupported_child(parent: &Element, child: &Element) -> WireError {
    WireError::Unsupported(format!(
        "<{}/> is not part of a version 1 <{}/>",
        clip(child.name()),
        parent.name()
    ))
}

fn no_children(el: &Element) -> Result<(), WireError> {
    match own_children(el).next() {
        Some(c) => Err(unsupported_child(el, c)),
        None => Ok(()),
    }
}

/// A plain-text child (`<summary>`, `<note>`): 1 to `max` characters, no
/// markup, no control characters (they would reach the owner's chat and the
/// exported calendar verbatim).
fn plain_text(el: &Element, max: usize) -> Result<String, WireError> {
    if el.children().next().is_some() {
        return Err(WireError::Invalid(format!(
            "<{}> is plain text; it may not contain elements",
            el.name()
        )));
    }
    let text = el.text();
    if text.chars().any(char::is_control) {
        return Err(WireError::Invalid(format!(
            "<{}> may not contain control characters (tabs, line breaks, …)",
            el.name()
        )));
    }
    if text.trim().is_empty() {
        return Err(WireError::Invalid(format!(
            "<{}> may not be empty",
            el.name()
        )));
    }
    let n = text.chars().count();
    if n > max {
        return Err(WireError::TooLarge(format!(
            "<{}> is {n} characters long, over the {max}-character limit",
            el.name()
        )));
    }
    Ok(text)
}

fn once<T>(slot: &mut Option<T>, value: T, parent: &Element, name: &str) -> Result<(), WireError> {
    if slot.is_some() {
        return Err(WireError::Invalid(format!(
            "<{}> has more than one <{name}>",
            parent.name()
        )));
    }
    *slot = Some(value);
    Ok(())
}

fn slot_range(el: &Element) -> Result<TimeRange, WireError> {
    let r = range(el)?;
    if r.end - r.start > Duration::days(MAX_WINDOW_DAYS) {
        return Err(WireError::TooLarge(format!(
            "<{}> is {} days long, over the {MAX_WINDOW_DAYS}-day limit",
            el.name(),
            (r.end - r.start).num_days()
        )));
    }
    Ok(r)
}

fn meeting_ref(el: &Element) -> Result<MeetingRef, WireError> {
    let r = MeetingRef {
        request_id: request_id(el)?,
        meeting: uid(el, "meeting")?,
        sequence: sequence(el)?,
    };
    no_children(el)?;
    Ok(r)
}

fn parse_release(el: &Element) -> Result<Release, WireError> {
    let r = meeting_ref(el)?;
    let slot = if el.attr("start").is_some() || el.attr("end").is_some() {
        Some(slot_range(el)?)
    } else {
        None
    };
    Ok(Release {
        request_id: r.request_id,
        meeting: r.meeting,
        sequence: r.sequence,
        slot,
    })
}

fn meeting_ack(el: &Element) -> Result<MeetingAck, WireError> {
    let r = MeetingAck {
        request_id: request_id(el)?,
        meeting: uid(el, "meeting")?,
    };
    no_children(el)?;
    Ok(r)
}

fn parse_hold(el: &Element) -> Result<Hold, WireError> {
    let request_id = request_id(el)?;
    let meeting = uid(el, "meeting")?;
    let sequence = sequence(el)?;
    let slot = slot_range(el)?;
    let expires = required_time(el, "expires")?;
    let mut summary = None;
    let mut attendees: Vec<Attendee> = Vec::new();
    for child in own_children(el) {
        match child.name() {
            "summary" => once(
                &mut summary,
                plain_text(child, MAX_SUMMARY_CHARS)?,
                el,
                "summary",
            )?,
            "attendee" => {
                if attendees.len() == MAX_ATTENDEES {
                    return Err(WireError::TooLarge(format!(
                        "more than {MAX_ATTENDEES} <attendee> elements"
                    )));
                }
                no_children(child)?;
                let jid = bare_jid(child, "jid")?
                    .ok_or_else(|| WireError::Invalid("<attendee> needs jid".into()))?;
                let role = match child.attr("role") {
                    None => AttendeeRole::Required,
                    Some(v) => AttendeeRole::from_name(v).ok_or_else(|| {
                        WireError::Invalid(format!(
                            "<attendee>: role='{}' is not REQ-PARTICIPANT or OPT-PARTICIPANT",
                            clip(v)
                        ))
                    })?,
                };
                if attendees.iter().any(|a| a.jid == jid) {
                    return Err(WireError::Invalid(format!(
                        "<attendee jid='{jid}'> appears twice"
                    )));
                }
                attendees.push(Attendee { jid, role });
            }
            _ => return Err(unsupported_child(el, child)),
        }
    }
    Ok(Hold {
        request_id,
        meeting,
        sequence,
        slot,
        expires,
        summary,
        attendees,
    })
}

fn parse_held(el: &Element) -> Result<Held, WireError> {
    let held = Held {
        request_id: request_id(el)?,
        meeting: uid(el, "meeting")?,
        sequence: sequence(el)?,
        expires: required_time(el, "expires")?,
    };
    no_children(el)?;
    Ok(held)
}

fn parse_declined(el: &Element) -> Result<Declined, WireError> {
    let request_id = request_id(el)?;
    let meeting = uid(el, "meeting")?;
    let sequence = sequence(el)?;
    let reason = required(el, "reason").and_then(|v| {
        DeclineReason::from_name(v).ok_or_else(|| {
            WireError::Invalid(format!(
                "<declined>: reason='{}' is not busy, no-answer or declined",
                clip(v)
            ))
        })
    })?;
    let mut counter = None;
    for child in own_children(el) {
        match child.name() {
            "counter" => {
                no_children(child)?;
                once(&mut counter, slot_range(child)?, el, "counter")?;
            }
            _ => return Err(unsupported_child(el, child)),
        }
    }
    if counter.is_some() && reason != DeclineReason::Busy {
        return Err(WireError::Invalid(
            "<declined>: only reason='busy' may carry a <counter>".into(),
        ));
    }
    Ok(Declined {
        request_id,
        meeting,
        sequence,
        reason,
        counter,
    })
}

fn parse_task_offer(el: &Element) -> Result<TaskOffer, WireError> {
    let request_id = request_id(el)?;
    let task = uid(el, "task")?;
    let due = attr_time(el, "due")?;
    let mut summary = None;
    let mut note = None;
    let mut chain: Option<Vec<BareJid>> = None;
    for child in own_children(el) {
        match child.name() {
            "summary" => once(
                &mut summary,
                plain_text(child, MAX_SUMMARY_CHARS)?,
                el,
                "summary",
            )?,
            "note" => once(&mut note, plain_text(child, MAX_NOTE_CHARS)?, el, "note")?,
            "chain" => {
                let mut agents = Vec::new();
                for agent in own_children(child) {
                    if agent.name() != "agent" {
                        return Err(unsupported_child(child, agent));
                    }
                    if agents.len() == MAX_CHAIN {
                        return Err(WireError::TooLarge(format!(
                            "the delegation chain is longer than {MAX_CHAIN} agents"
                        )));
                    }
                    no_children(agent)?;
                    let jid = bare_jid(agent, "jid")?
                        .ok_or_else(|| WireError::Invalid("<agent> needs jid".into()))?;
                    if agents.contains(&jid) {
                        return Err(WireError::Invalid(format!(
                            "the delegation chain names {jid} twice"
                        )));
                    }
                    agents.push(jid);
                }
                once(&mut chain, agents, el, "chain")?;
            }
            _ => return Err(unsupported_child(el, child)),
        }
    }
    Ok(TaskOffer {
        request_id,
        task,
        due,
        summary: summary
            .ok_or_else(|| WireError::Invalid("<task-offer> needs a <summary>".into()))?,
        note,
        chain: chain.unwrap_or_default(),
    })
}

fn parse_task_answer(el: &Element) -> Result<TaskAnswer, WireError> {
    let request_id = request_id(el)?;
    let task = uid(el, "task")?;
    let partstat = required(el, "partstat").and_then(|v| {
        TaskAnswerPartstat::from_name(v).ok_or_else(|| {
            WireError::Invalid(format!(
                "<task-answer>: partstat='{}' is not ACCEPTED, DECLINED, DELEGATED or COUNTER",
                clip(v)
            ))
        })
    })?;
    let due = attr_time(el, "due")?;
    let delegated_to = bare_jid(el, "delegated-to")?;
    let reason = match el.attr("reason") {
        None => None,
        Some(v) => match DeclineReason::from_name(v) {
            Some(r @ (DeclineReason::Declined | DeclineReason::NoAnswer)) => Some(r),
            _ => {
                return Err(WireError::Invalid(format!(
                    "<task-answer>: reason='{}' is not declined or no-answer",
                    clip(v)
                )));
            }
        },
    };
    no_children(el)?;
    let is = |p| partstat == p;
    if is(TaskAnswerPartstat::Counter) != due.is_some() {
        return Err(WireError::Invalid(
            "<task-answer>: due goes with partstat='COUNTER', and COUNTER needs due".into(),
        ));
    }
    if is(TaskAnswerPartstat::Delegated) != delegated_to.is_some() {
        return Err(WireError::Invalid(
            "<task-answer>: delegated-to goes with partstat='DELEGATED', and DELEGATED needs delegated-to".into(),
        ));
    }
    if reason.is_some() && !is(TaskAnswerPartstat::Declined) {
        return Err(WireError::Invalid(
            "<task-answer>: reason goes with partstat='DECLINED' only".into(),
        ));
    }
    Ok(TaskAnswer {
        request_id,
        task,
        partstat,
        due,
        delegated_to,
        reason,
    })
}

fn parse_task_status(el: &Element) -> Result<TaskStatus, WireError> {
    let request_id = request_id(el)?;
    let task = uid(el, "task")?;
    let partstat = required(el, "partstat").and_then(|v| {
        TaskPartstat::from_name(v).ok_or_else(|| {
            WireError::Invalid(format!(
                "<task-status>: partstat='{}' is not NEEDS-ACTION, ACCEPTED, DECLINED, IN-PROCESS, COMPLETED, DELEGATED or CANCELLED",
                clip(v)
            ))
        })
    })?;
    let percent = decimal(el, "percent", 100)?.and_then(|p| u8::try_from(p).ok());
    let due = attr_time(el, "due")?;
    let delegated_to = bare_jid(el, "delegated-to")?;
    no_children(el)?;
    if (partstat == TaskPartstat::Delegated) != delegated_to.is_some() {
        return Err(WireError::Invalid(
            "<task-status>: delegated-to goes with partstat='DELEGATED', and DELEGATED needs delegated-to".into(),
        ));
    }
    Ok(TaskStatus {
        request_id,
        task,
        partstat,
        percent,
        due,
        delegated_to,
    })
}

fn parse_task_cancel(el: &Element) -> Result<TaskCancel, WireError> {
    let r = TaskCancel {
        request_id: request_id(el)?,
        task: uid(el, "task")?,
    };
    no_children(el)?;
    Ok(r)
}

/// Reads the one child of an IQ `set` of §12–13. Elements this module does
/// not know (`freebusy`, `reply`, anything newer) are `Unsupported`, so the
/// caller can try [`super::wire::parse_request`] or answer
/// `feature-not-implemented`.
pub fn parse_negotiation(el: &Element) -> Result<NegotiationRequest, WireError> {
    check_payload(el)?;
    Ok(match el.name() {
        "hold" => NegotiationRequest::Hold(parse_hold(el)?),
        "confirm" => NegotiationRequest::Confirm(meeting_ref(el)?),
        "release" => NegotiationRequest::Release(parse_release(el)?),
        "cancel" => NegotiationRequest::Cancel(meeting_ref(el)?),
        "decline" => NegotiationRequest::Decline(meeting_ref(el)?),
        "task-offer" => NegotiationRequest::TaskOffer(parse_task_offer(el)?),
        "task-status" => NegotiationRequest::TaskStatus(parse_task_status(el)?),
        "task-cancel" => NegotiationRequest::TaskCancel(parse_task_cancel(el)?),
        other => {
            return Err(WireError::Unsupported(format!(
                "<{}/> is not a version 1 meeting or task request",
                clip(other)
            )));
        }
    })
}

/// Reads the payload of an IQ result to a §12–13 request (the requester's
/// side). Empty results (to `<decline>`, `<task-status>`, `<task-cancel>`)
/// have no payload and never reach this function.
pub fn parse_negotiation_reply(el: &Element) -> Result<NegotiationReply, WireError> {
    check_payload(el)?;
    Ok(match el.name() {
        "pending" => {
            let r = NegotiationReply::Pending {
                request_id: request_id(el)?,
                expires: required_time(el, "expires")?,
            };
            no_children(el)?;
            r
        }
        "held" => NegotiationReply::Held(parse_held(el)?),
        "declined" => NegotiationReply::Declined(parse_declined(el)?),
        "confirmed" => NegotiationReply::Confirmed(meeting_ref(el)?),
        "released" => NegotiationReply::Released(meeting_ack(el)?),
        "cancelled" => NegotiationReply::Cancelled(meeting_ack(el)?),
        "task-answer" => NegotiationReply::TaskAnswer(parse_task_answer(el)?),
        other => {
            return Err(WireError::Unsupported(format!(
                "<{}/> is not a version 1 meeting or task result",
                clip(other)
            )));
        }
    })
}

/// Reads a `<reply>` (§5.3, §14): exactly one wrapped answer — a
/// `<freebusy>`, a §12–13 result or an `<error>` — whose `request-id`
/// matches the wrapper's.
pub fn parse_deferred_reply(el: &Element) -> Result<DeferredReply, WireError> {
    // No size check on the wrapper: a wrapped `<freebusy>` may legitimately
    // exceed the request limit; each answer bounds itself.
    if !el.is("reply", NS) {
        return Err(WireError::Unsupported(format!(
            "expected <reply xmlns='{NS}'/>, got <{}/>",
            clip(el.name())
        )));
    }
    let request_id = request_id(el)?;
    let mut inner = el.children();
    let (Some(answer), None) = (inner.next(), inner.next()) else {
        return Err(WireError::Invalid(
            "<reply> wraps exactly one answer".into(),
        ));
    };
    let answer = if answer.name() == "error" {
        DeferredAnswer::Error(parse_error(answer)?)
    } else if answer.is("freebusy", NS) {
        DeferredAnswer::Freebusy(parse_reply(answer)?)
    } else {
        match parse_negotiation_reply(answer)? {
            NegotiationReply::Pending { .. } => {
                return Err(WireError::Invalid(
                    "a <reply> carries the final answer, never <pending>".into(),
                ));
            }
            final_answer => DeferredAnswer::Negotiation(final_answer),
        }
    };
    let inner_id = match &answer {
        DeferredAnswer::Freebusy(r) => Some(&r.request_id),
        DeferredAnswer::Negotiation(r) => Some(r.request_id()),
        DeferredAnswer::Error(_) => None,
    };
    if inner_id.is_some_and(|id| *id != request_id) {
        return Err(WireError::Invalid(
            "the answer inside <reply> names another request-id".into(),
        ));
    }
    Ok(DeferredReply { request_id, answer })
}

const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

fn parse_error(el: &Element) -> Result<ProtocolError, WireError> {
    let defined = el
        .children()
        .find(|c| c.ns() == STANZAS && c.name() != "text")
        .map(|c| c.name().to_string())
        .ok_or_else(|| WireError::Invalid("<error> needs a defined condition".into()))?;
    let text = el
        .children()
        .find(|c| c.is("text", STANZAS))
        .map(|c| c.text())
        .unwrap_or_default();
    let app = el.children().find(|c| c.ns() == NS);
    ProtocolError::from_parts(&defined, &text, app).ok_or_else(|| {
        WireError::Invalid(format!(
            "<error> with condition {} is not one §6 lists",
            clip(&defined)
        ))
    })
}

// ---------------------------------------------------------------------------
// Writing

fn attr(el: &mut Element, name: &str, value: String) {
    match NcName::try_from(name) {
        Ok(n) => set(el, n, value),
        // Every name passed here is a literal of this module.
        Err(_) => debug_assert!(false, "{name} is not an XML name"),
    }
}

fn base(name: &str, request_id: &RequestId) -> Element {
    let mut el = Element::builder(name, NS).build();
    attr(&mut el, "request-id", request_id.to_string());
    el
}

fn text_element(name: &str, text: &str) -> Element {
    Element::builder(name, NS).append(text).build()
}

fn meeting_ref_element(name: &str, r: &MeetingRef) -> Element {
    let mut el = base(name, &r.request_id);
    attr(&mut el, "meeting", r.meeting.to_string());
    attr(&mut el, "sequence", r.sequence.to_string());
    el
}

fn meeting_ack_element(name: &str, r: &MeetingAck) -> Element {
    let mut el = base(name, &r.request_id);
    attr(&mut el, "meeting", r.meeting.to_string());
    el
}

pub fn hold_element(h: &Hold) -> Element {
    let mut el = with_range(
        meeting_ref_element(
            "hold",
            &MeetingRef {
                request_id: h.request_id.clone(),
                meeting: h.meeting.clone(),
                sequence: h.sequence,
            },
        ),
        &h.slot,
    );
    attr(&mut el, "expires", format_time(h.expires));
    if let Some(s) = &h.summary {
        el.append_child(text_element("summary", s));
    }
    for a in &h.attendees {
        let mut child = Element::builder("attendee", NS).build();
        attr(&mut child, "jid", a.jid.to_string());
        attr(&mut child, "role", a.role.name().to_string());
        el.append_child(child);
    }
    el
}

pub fn held_element(h: &Held) -> Element {
    let mut el = meeting_ref_element(
        "held",
        &MeetingRef {
            request_id: h.request_id.clone(),
            meeting: h.meeting.clone(),
            sequence: h.sequence,
        },
    );
    attr(&mut el, "expires", format_time(h.expires));
    el
}

pub fn declined_element(d: &Declined) -> Element {
    let mut el = meeting_ref_element(
        "declined",
        &MeetingRef {
            request_id: d.request_id.clone(),
            meeting: d.meeting.clone(),
            sequence: d.sequence,
        },
    );
    attr(&mut el, "reason", d.reason.name().to_string());
    if let Some(c) = &d.counter {
        el.append_child(range_element("counter", c));
    }
    el
}

pub fn confirm_element(r: &Confirm) -> Element {
    meeting_ref_element("confirm", r)
}

pub fn confirmed_element(r: &Confirmed) -> Element {
    meeting_ref_element("confirmed", r)
}

pub fn release_element(r: &Release) -> Element {
    let el = meeting_ref_element(
        "release",
        &MeetingRef {
            request_id: r.request_id.clone(),
            meeting: r.meeting.clone(),
            sequence: r.sequence,
        },
    );
    match &r.slot {
        Some(slot) => with_range(el, slot),
        None => el,
    }
}

pub fn released_element(r: &Released) -> Element {
    meeting_ack_element("released", r)
}

pub fn cancel_element(r: &Cancel) -> Element {
    meeting_ref_element("cancel", r)
}

pub fn cancelled_element(r: &Cancelled) -> Element {
    meeting_ack_element("cancelled", r)
}

pub fn decline_element(r: &Decline) -> Element {
    meeting_ref_element("decline", r)
}

pub fn task_offer_element(t: &TaskOffer) -> Element {
    let mut el = base("task-offer", &t.request_id);
    attr(&mut el, "task", t.task.to_string());
    if let Some(d) = t.due {
        attr(&mut el, "due", format_time(d));
    }
    el.append_child(text_element("summary", &t.summary));
    if let Some(n) = &t.note {
        el.append_child(text_element("note", n));
    }
    if !t.chain.is_empty() {
        let mut chain = Element::builder("chain", NS).build();
        for jid in &t.chain {
            let mut agent = Element::builder("agent", NS).build();
            attr(&mut agent, "jid", jid.to_string());
            chain.append_child(agent);
        }
        el.append_child(chain);
    }
    el
}

pub fn task_answer_element(a: &TaskAnswer) -> Element {
    let mut el = base("task-answer", &a.request_id);
    attr(&mut el, "task", a.task.to_string());
    attr(&mut el, "partstat", a.partstat.name().to_string());
    if let Some(d) = a.due {
        attr(&mut el, "due", format_time(d));
    }
    if let Some(j) = &a.delegated_to {
        attr(&mut el, "delegated-to", j.to_string());
    }
    if let Some(r) = a.reason {
        attr(&mut el, "reason", r.name().to_string());
    }
    el
}

pub fn task_status_element(s: &TaskStatus) -> Element {
    let mut el = base("task-status", &s.request_id);
    attr(&mut el, "task", s.task.to_string());
    attr(&mut el, "partstat", s.partstat.name().to_string());
    if let Some(p) = s.percent {
        attr(&mut el, "percent", p.to_string());
    }
    if let Some(d) = s.due {
        attr(&mut el, "due", format_time(d));
    }
    if let Some(j) = &s.delegated_to {
        attr(&mut el, "delegated-to", j.to_string());
    }
    el
}

pub fn task_cancel_element(c: &TaskCancel) -> Element {
    let mut el = base("task-cancel", &c.request_id);
    attr(&mut el, "task", c.task.to_string());
    el
}

/// The element of any §12–13 request, for the requester's outbox.
pub fn negotiation_element(r: &NegotiationRequest) -> Element {
    match r {
        NegotiationRequest::Hold(m) => hold_element(m),
        NegotiationRequest::Confirm(m) => confirm_element(m),
        NegotiationRequest::Release(m) => release_element(m),
        NegotiationRequest::Cancel(m) => cancel_element(m),
        NegotiationRequest::Decline(m) => decline_element(m),
        NegotiationRequest::TaskOffer(m) => task_offer_element(m),
        NegotiationRequest::TaskStatus(m) => task_status_element(m),
        NegotiationRequest::TaskCancel(m) => task_cancel_element(m),
    }
}

/// The element of any §12–13 result (and `<pending>`).
pub fn negotiation_reply_element(r: &NegotiationReply) -> Element {
    match r {
        NegotiationReply::Pending {
            request_id,
            expires,
        } => super::wire::pending_element(request_id, *expires),
        NegotiationReply::Held(m) => held_element(m),
        NegotiationReply::Declined(m) => declined_element(m),
        NegotiationReply::Confirmed(m) => confirmed_element(m),
        NegotiationReply::Released(m) => released_element(m),
        NegotiationReply::Cancelled(m) => cancelled_element(m),
        NegotiationReply::TaskAnswer(m) => task_answer_element(m),
    }
}

/// The `<error>` element of §6 for `e`, as a `<reply>` wraps it.
pub fn error_element(e: &ProtocolError) -> Element {
    let (etype, defined, text, app) = e.parts();
    let mut el = Element::builder("error", NS).build();
    attr(&mut el, "type", etype.to_string());
    el.append_child(Element::builder(defined, STANZAS).build());
    el.append_child(text_element_ns("text", STANZAS, &text));
    if let Some(a) = app {
        el.append_child(a);
    }
    el
}

fn text_element_ns(name: &str, ns: &str, text: &str) -> Element {
    Element::builder(name, ns).append(text).build()
}

/// `<reply>` of §14: the deferred answer to a request that got `<pending>`.
pub fn deferred_reply_element(r: &DeferredReply) -> Element {
    let mut el = base("reply", &r.request_id);
    el.append_child(match &r.answer {
        DeferredAnswer::Freebusy(f) => super::wire::reply_element(f),
        DeferredAnswer::Negotiation(n) => negotiation_reply_element(n),
        DeferredAnswer::Error(e) => error_element(e),
    });
    el
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(text: &str) -> DateTime<Utc> {
        super::super::wire::parse_time(text).expect("valid test time")
    }

    fn rid(text: &str) -> RequestId {
        RequestId::parse(text).expect("valid test request id")
    }

    fn jid(text: &str) -> BareJid {
        BareJid::new(text).expect("valid test jid")
    }

    fn meeting() -> Uid {
        Uid::parse("01JH6M00000000000000000000@attache").expect("valid test uid")
    }

    fn xml(text: &str) -> Element {
        text.replace("NS", NS)
            .parse()
            .expect("well-formed test xml")
    }

    fn hold() -> Hold {
        Hold {
            request_id: rid("h1"),
            meeting: meeting(),
            sequence: 0,
            slot: TimeRange {
                start: t("2026-01-13T10:00:00Z"),
                end: t("2026-01-13T10:30:00Z"),
            },
            expires: t("2026-01-12T09:05:00Z"),
            summary: Some("Sync — Q1 plan".into()),
            attendees: vec![
                Attendee {
                    jid: jid("bob@example.org"),
                    role: AttendeeRole::Required,
                },
                Attendee {
                    jid: jid("carol@example.org"),
                    role: AttendeeRole::Optional,
                },
            ],
        }
    }

    fn mref(n: u32) -> MeetingRef {
        MeetingRef {
            request_id: rid("m1"),
            meeting: meeting(),
            sequence: n,
        }
    }

    fn offer() -> TaskOffer {
        TaskOffer {
            request_id: rid("t1"),
            task: Uid::parse("task-7@attache").expect("uid"),
            due: Some(t("2026-01-20T17:00:00Z")),
            summary: "Write the Q1 report".into(),
            note: Some("Numbers are in the shared folder.".into()),
            chain: vec![jid("alice.agent@example.org")],
        }
    }

    fn all_requests() -> Vec<NegotiationRequest> {
        let mut bare_offer = offer();
        bare_offer.due = None;
        bare_offer.note = None;
        bare_offer.chain.clear();
        let mut bare_hold = hold();
        bare_hold.summary = None;
        bare_hold.attendees.clear();
        vec![
            NegotiationRequest::Hold(hold()),
            NegotiationRequest::Hold(bare_hold),
            NegotiationRequest::Confirm(mref(1)),
            NegotiationRequest::Release(Release {
                request_id: mref(0).request_id,
                meeting: mref(0).meeting,
                sequence: 0,
                slot: None,
            }),
            NegotiationRequest::Release(Release {
                slot: Some(TimeRange {
                    start: t("2026-01-13T10:00:00Z"),
                    end: t("2026-01-13T10:30:00Z"),
                }),
                ..Release {
                    request_id: mref(0).request_id,
                    meeting: mref(0).meeting,
                    sequence: 1,
                    slot: None,
                }
            }),
            NegotiationRequest::Cancel(mref(2)),
            NegotiationRequest::Decline(mref(MAX_SEQUENCE)),
            NegotiationRequest::TaskOffer(offer()),
            NegotiationRequest::TaskOffer(bare_offer),
            NegotiationRequest::TaskStatus(TaskStatus {
                request_id: rid("s1"),
                task: offer().task,
                partstat: TaskPartstat::InProcess,
                percent: Some(40),
                due: None,
                delegated_to: None,
            }),
            NegotiationRequest::TaskStatus(TaskStatus {
                request_id: rid("s2"),
                task: offer().task,
                partstat: TaskPartstat::Delegated,
                percent: None,
                due: Some(t("2026-01-21T12:00:00Z")),
                delegated_to: Some(jid("dana.agent@example.org")),
            }),
            NegotiationRequest::TaskCancel(TaskCancel {
                request_id: rid("c1"),
                task: offer().task,
            }),
        ]
    }

    fn all_replies() -> Vec<NegotiationReply> {
        let answer = |partstat, due, delegated_to, reason| {
            NegotiationReply::TaskAnswer(TaskAnswer {
                request_id: rid("t1"),
                task: offer().task,
                partstat,
                due,
                delegated_to,
                reason,
            })
        };
        vec![
            NegotiationReply::Pending {
                request_id: rid("h1"),
                expires: t("2026-01-12T13:00:00Z"),
            },
            NegotiationReply::Held(Held {
                request_id: rid("h1"),
                meeting: meeting(),
                sequence: 3,
                expires: t("2026-01-12T09:05:00Z"),
            }),
            NegotiationReply::Declined(Declined {
                request_id: rid("h1"),
                meeting: meeting(),
                sequence: 0,
                reason: DeclineReason::Busy,
                counter: Some(TimeRange {
                    start: t("2026-01-13T11:00:00Z"),
                    end: t("2026-01-13T11:30:00Z"),
                }),
            }),
            NegotiationReply::Declined(Declined {
                request_id: rid("h1"),
                meeting: meeting(),
                sequence: 0,
                reason: DeclineReason::NoAnswer,
                counter: None,
            }),
            NegotiationReply::Confirmed(mref(1)),
            NegotiationReply::Released(MeetingAck {
                request_id: rid("r1"),
                meeting: meeting(),
            }),
            NegotiationReply::Cancelled(MeetingAck {
                request_id: rid("x1"),
                meeting: meeting(),
            }),
            answer(TaskAnswerPartstat::Accepted, None, None, None),
            answer(
                TaskAnswerPartstat::Declined,
                None,
                None,
                Some(DeclineReason::NoAnswer),
            ),
            answer(
                TaskAnswerPartstat::Counter,
                Some(t("2026-01-22T17:00:00Z")),
                None,
                None,
            ),
            answer(
                TaskAnswerPartstat::Delegated,
                None,
                Some(jid("dana.agent@example.org")),
                None,
            ),
        ]
    }

    /// Serializes and reads back, as the wire does: a writer that produced
    /// something only its own in-memory tree accepts would pass otherwise.
    fn reparse(el: &Element) -> Element {
        let mut buf = Vec::new();
        el.write_to(&mut buf).expect("serializes");
        String::from_utf8(buf)
            .expect("utf-8")
            .parse()
            .expect("our own output parses")
    }

    #[test]
    fn every_request_round_trips_through_its_element() {
        for r in all_requests() {
            let el = reparse(&negotiation_element(&r));
            assert_eq!(el.name(), r.name());
            assert_eq!(parse_negotiation(&el).as_ref(), Ok(&r), "{el:?}");
        }
    }

    #[test]
    fn every_reply_round_trips_through_its_element() {
        for r in all_replies() {
            let el = reparse(&negotiation_reply_element(&r));
            assert_eq!(parse_negotiation_reply(&el).as_ref(), Ok(&r), "{el:?}");
        }
    }

    #[test]
    fn deferred_replies_round_trip_with_answers_and_errors() {
        let answers = all_replies()
            .into_iter()
            .filter(|r| !matches!(r, NegotiationReply::Pending { .. }))
            .map(DeferredAnswer::Negotiation)
            .chain([
                DeferredAnswer::Error(ProtocolError::NotPermitted),
                DeferredAnswer::Error(ProtocolError::HoldExpired),
                DeferredAnswer::Error(ProtocolError::StaleSequence),
                DeferredAnswer::Error(ProtocolError::UnknownMeeting),
                DeferredAnswer::Error(ProtocolError::UnknownTask),
                DeferredAnswer::Error(ProtocolError::DelegationLoop),
                DeferredAnswer::Error(ProtocolError::RateLimited {
                    retry_after: Duration::seconds(60),
                }),
                DeferredAnswer::Error(ProtocolError::Invalid("end must be after start".into())),
            ]);
        for answer in answers {
            let request_id = match &answer {
                DeferredAnswer::Negotiation(n) => n.request_id().clone(),
                _ => rid("h1"),
            };
            let r = DeferredReply { request_id, answer };
            let el = reparse(&deferred_reply_element(&r));
            assert_eq!(parse_deferred_reply(&el).as_ref(), Ok(&r), "{el:?}");
        }
    }

    #[test]
    fn a_reply_must_name_the_request_it_answers() {
        let el = xml(
            "<reply xmlns='NS' request-id='a'><held request-id='b' meeting='m' sequence='0' expires='2026-01-12T09:05:00Z'/></reply>",
        );
        let err = parse_deferred_reply(&el).expect_err("mismatched ids");
        assert!(err.to_string().contains("another request-id"), "{err}");
        let two = xml(
            "<reply xmlns='NS' request-id='a'><released request-id='a' meeting='m'/><released request-id='a' meeting='m'/></reply>",
        );
        assert!(parse_deferred_reply(&two).is_err());
        let still_pending = xml(
            "<reply xmlns='NS' request-id='a'><pending request-id='a' expires='2026-01-12T13:00:00Z'/></reply>",
        );
        let err = parse_deferred_reply(&still_pending).expect_err("pending is not final");
        assert!(err.to_string().contains("never <pending>"), "{err}");
        let unknown = xml("<reply xmlns='NS' request-id='a'><held-maybe request-id='a'/></reply>");
        assert!(matches!(
            parse_deferred_reply(&unknown),
            Err(WireError::Unsupported(_))
        ));
    }

    #[test]
    fn the_delegation_chain_refuses_an_agent_already_in_it() {
        let o = offer();
        assert_eq!(
            o.check_not_in_chain(&jid("alice.agent@example.org")),
            Err(ProtocolError::DelegationLoop)
        );
        assert_eq!(o.check_not_in_chain(&jid("bob.agent@example.org")), Ok(()));
    }

    /// Reads `el` as a request, or as a result when it is not a request's name.
    fn parse_any(el: &Element) -> Result<(), WireError> {
        match parse_negotiation(el) {
            Err(WireError::Unsupported(_)) => parse_negotiation_reply(el).map(drop),
            other => other.map(drop),
        }
    }

    fn invalid(text: &str, want: &str) {
        match parse_any(&xml(text)) {
            Err(WireError::Invalid(m)) => assert!(m.contains(want), "{text}: {m}"),
            other => panic!("{text}: expected Invalid containing {want:?}, got {other:?}"),
        }
    }

    fn too_large(text: &str, want: &str) {
        match parse_negotiation(&xml(text)) {
            Err(WireError::TooLarge(m)) => assert!(m.contains(want), "{m}"),
            other => panic!("expected TooLarge containing {want:?}, got {other:?}"),
        }
    }

    fn unsupported(text: &str) {
        let el = xml(text);
        let request = parse_negotiation(&el);
        let reply = parse_negotiation_reply(&el);
        assert!(
            matches!(request, Err(WireError::Unsupported(_)))
                && matches!(reply, Err(WireError::Unsupported(_))),
            "{text}: {request:?} / {reply:?}"
        );
    }

    const HOLD: &str = "request-id='h1' meeting='m@x' sequence='0' start='2026-01-13T10:00:00Z' end='2026-01-13T10:30:00Z' expires='2026-01-12T09:05:00Z'";

    #[test]
    fn bad_meeting_attributes_are_invalid() {
        invalid(
            "<confirm xmlns='NS' meeting='m' sequence='0'/>",
            "request-id",
        );
        invalid(
            "<confirm xmlns='NS' request-id='a b' meeting='m' sequence='0'/>",
            "request-id",
        );
        invalid(
            "<confirm xmlns='NS' request-id='a' sequence='0'/>",
            "needs meeting",
        );
        invalid(
            "<confirm xmlns='NS' request-id='a' meeting='' sequence='0'/>",
            "uid",
        );
        invalid(
            "<confirm xmlns='NS' request-id='a' meeting='has space' sequence='0'/>",
            "uid",
        );
        invalid(
            "<confirm xmlns='NS' request-id='a' meeting='caf\u{e9}' sequence='0'/>",
            "uid",
        );
        invalid(
            "<confirm xmlns='NS' request-id='a' meeting='m'/>",
            "needs sequence",
        );
        for bad in [
            "-1",
            "+1",
            "01",
            "1.0",
            "",
            "2147483648",
            "99999999999",
            "x",
        ] {
            invalid(
                &format!("<cancel xmlns='NS' request-id='a' meeting='m' sequence='{bad}'/>"),
                "sequence",
            );
        }
        invalid(
            "<hold xmlns='NS' request-id='h' meeting='m' sequence='0' start='2026-01-13T10:00:00Z' end='2026-01-13T10:30:00Z'/>",
            "needs expires",
        );
        invalid(
            "<hold xmlns='NS' request-id='h' meeting='m' sequence='0' start='2026-01-13T10:30:00Z' end='2026-01-13T10:00:00Z' expires='2026-01-12T09:05:00Z'/>",
            "end must be after start",
        );
        invalid(
            "<hold xmlns='NS' request-id='h' meeting='m' sequence='0' start='2026-01-13T10:00:00+01:00' end='2026-01-13T10:30:00Z' expires='2026-01-12T09:05:00Z'/>",
            "UTC time",
        );
        invalid(
            &format!(
                "<hold xmlns='NS' {HOLD}><attendee jid='bob@example.org' role='CHAIR'/></hold>"
            ),
            "role",
        );
        invalid(
            &format!("<hold xmlns='NS' {HOLD}><attendee jid='bob@example.org/phone'/></hold>"),
            "bare JID",
        );
        invalid(
            &format!("<hold xmlns='NS' {HOLD}><attendee/></hold>"),
            "needs jid",
        );
        invalid(
            &format!(
                "<hold xmlns='NS' {HOLD}><attendee jid='bob@example.org'/><attendee jid='Bob@Example.org'/></hold>"
            ),
            "twice",
        );
        invalid(
            &format!("<hold xmlns='NS' {HOLD}><summary>a</summary><summary>b</summary></hold>"),
            "more than one <summary>",
        );
        invalid(
            "<declined xmlns='NS' request-id='h' meeting='m' sequence='0' reason='sick'/>",
            "reason",
        );
        invalid(
            "<declined xmlns='NS' request-id='h' meeting='m' sequence='0' reason='no-answer'><counter start='2026-01-13T11:00:00Z' end='2026-01-13T11:30:00Z'/></declined>",
            "only reason='busy'",
        );
        invalid(
            "<declined xmlns='NS' request-id='h' meeting='m' sequence='0' reason='busy'><counter start='2026-01-13T11:00:00Z'/></declined>",
            "needs start and end",
        );
        invalid(
            "<held xmlns='NS' request-id='h' meeting='m' sequence='0'/>",
            "needs expires",
        );
    }

    #[test]
    fn text_children_are_plain_bounded_text() {
        invalid(
            &format!("<hold xmlns='NS' {HOLD}><summary>Sync <b>now</b></summary></hold>"),
            "plain text",
        );
        invalid(
            &format!("<hold xmlns='NS' {HOLD}><summary>Sync&#10;now</summary></hold>"),
            "control characters",
        );
        invalid(
            &format!("<hold xmlns='NS' {HOLD}><summary>Sync&#9;now</summary></hold>"),
            "control characters",
        );
        invalid(
            &format!("<hold xmlns='NS' {HOLD}><summary>  </summary></hold>"),
            "empty",
        );
        too_large(
            &format!(
                "<hold xmlns='NS' {HOLD}><summary>{}</summary></hold>",
                "é".repeat(201)
            ),
            "200-character",
        );
        let ok = xml(&format!(
            "<hold xmlns='NS' {HOLD}><summary>{}</summary></hold>",
            "é".repeat(200)
        ));
        assert!(parse_negotiation(&ok).is_ok());
        too_large(
            &format!(
                "<task-offer xmlns='NS' request-id='t' task='t'><summary>s</summary><note>{}</note></task-offer>",
                "n".repeat(1001)
            ),
            "1000-character",
        );
        invalid(
            "<task-offer xmlns='NS' request-id='t' task='t'/>",
            "needs a <summary>",
        );
    }

    #[test]
    fn lists_over_their_limit_are_too_large() {
        let attendees: String = (0..51)
            .map(|i| format!("<attendee jid='p{i}@example.org'/>"))
            .collect();
        too_large(
            &format!("<hold xmlns='NS' {HOLD}>{attendees}</hold>"),
            "more than 50",
        );
        let chain: String = (0..11)
            .map(|i| format!("<agent jid='a{i}@example.org'/>"))
            .collect();
        too_large(
            &format!(
                "<task-offer xmlns='NS' request-id='t' task='t'><summary>s</summary><chain>{chain}</chain></task-offer>"
            ),
            "longer than 10",
        );
        too_large(
            "<hold xmlns='NS' request-id='h1' meeting='m' sequence='0' start='2026-01-01T00:00:00Z' end='2027-06-01T00:00:00Z' expires='2026-01-12T09:05:00Z'/>",
            "366-day",
        );
        let uid = "u".repeat(256);
        invalid(
            &format!("<task-cancel xmlns='NS' request-id='t' task='{uid}'/>"),
            "uid",
        );
        let padded = format!(
            "<hold xmlns='NS' {HOLD}>{}</hold>",
            "<x xmlns='urn:example:other'/>".repeat(600)
        );
        too_large(&padded, "byte limit");
    }

    #[test]
    fn task_attributes_must_agree_with_partstat() {
        invalid(
            "<task-answer xmlns='NS' request-id='t' task='t' partstat='COUNTER'/>",
            "COUNTER needs due",
        );
        invalid(
            "<task-answer xmlns='NS' request-id='t' task='t' partstat='ACCEPTED' due='2026-01-20T17:00:00Z'/>",
            "due goes with",
        );
        invalid(
            "<task-answer xmlns='NS' request-id='t' task='t' partstat='DELEGATED'/>",
            "DELEGATED needs delegated-to",
        );
        invalid(
            "<task-answer xmlns='NS' request-id='t' task='t' partstat='ACCEPTED' reason='no-answer'/>",
            "reason goes with",
        );
        invalid(
            "<task-answer xmlns='NS' request-id='t' task='t' partstat='DECLINED' reason='busy'/>",
            "reason",
        );
        invalid(
            "<task-answer xmlns='NS' request-id='t' task='t' partstat='TENTATIVE'/>",
            "partstat",
        );
        invalid(
            "<task-status xmlns='NS' request-id='t' task='t' partstat='COMPLETED' percent='101'/>",
            "percent",
        );
        invalid(
            "<task-status xmlns='NS' request-id='t' task='t' partstat='DONE'/>",
            "partstat",
        );
        invalid(
            "<task-status xmlns='NS' request-id='t' task='t' partstat='IN-PROCESS' delegated-to='d@example.org'/>",
            "delegated-to goes with",
        );
        invalid(
            "<task-offer xmlns='NS' request-id='t' task='t' due='tomorrow'><summary>s</summary></task-offer>",
            "UTC time",
        );
        invalid(
            "<task-offer xmlns='NS' request-id='t' task='t'><summary>s</summary><chain><agent jid='a@x'/><agent jid='a@x'/></chain></task-offer>",
            "twice",
        );
        invalid(
            "<task-offer xmlns='NS' request-id='t' task='t'><summary>s</summary><chain><agent/></chain></task-offer>",
            "needs jid",
        );
    }

    #[test]
    fn unknown_elements_are_unsupported_and_foreign_ones_ignored() {
        unsupported("<book-everything xmlns='NS' request-id='a'/>");
        unsupported("<freebusy xmlns='NS' request-id='a'/>");
        unsupported("<confirm xmlns='urn:example:other' request-id='a' meeting='m' sequence='0'/>");
        assert!(matches!(
            parse_negotiation(&xml(&format!("<hold xmlns='NS' {HOLD}><priority/></hold>"))),
            Err(WireError::Unsupported(_))
        ));
        assert!(matches!(
            parse_negotiation(&xml(
                "<task-offer xmlns='NS' request-id='t' task='t'><summary>s</summary><chain><boss jid='a@x'/></chain></task-offer>"
            )),
            Err(WireError::Unsupported(_))
        ));
        assert!(matches!(
            parse_negotiation(&xml(
                "<confirm xmlns='NS' request-id='a' meeting='m' sequence='0'><x/></confirm>"
            )),
            Err(WireError::Unsupported(_))
        ));
        let extended = xml(&format!(
            "<hold xmlns='NS' {HOLD} colour='blue'><x xmlns='urn:example:other'/></hold>"
        ));
        assert!(parse_negotiation(&extended).is_ok());
        invalid(
            "<confirm xmlns='NS' request-id='a' meeting='m' sequence='0'><a><b><c><d/></c></b></a></confirm>",
            "nests",
        );
    }

    fn arbitrary_element() -> impl Strategy<Value = Element> {
        const NAMES: &[&str] = &[
            "hold",
            "held",
            "declined",
            "confirm",
            "confirmed",
            "release",
            "released",
            "cancel",
            "cancelled",
            "decline",
            "task-offer",
            "task-answer",
            "task-status",
            "task-cancel",
            "pending",
            "reply",
            "freebusy",
            "summary",
            "note",
            "attendee",
            "chain",
            "agent",
            "counter",
            "error",
            "x",
        ];
        const ATTRS: &[&str] = &[
            "request-id",
            "meeting",
            "sequence",
            "start",
            "end",
            "expires",
            "reason",
            "task",
            "due",
            "partstat",
            "percent",
            "delegated-to",
            "jid",
            "role",
            "level",
            "type",
        ];
        let value = prop_oneof![
            any::<String>(),
            prop::sample::select(vec![
                "0",
                "1",
                "100",
                "101",
                "-1",
                "01",
                "2147483647",
                "4294967296",
                "a",
                "a b",
                "m@x",
                "bob@example.org",
                "bob@example.org/r",
                "@",
                "busy",
                "no-answer",
                "COUNTER",
                "DELEGATED",
                "ACCEPTED",
                "IN-PROCESS",
                "REQ-PARTICIPANT",
                "2026-01-13T10:00:00Z",
                "2026-01-13T10:30:00Z",
                "2026-01-13T10:00:00+01:00",
                "9999-12-31T23:59:59Z",
                "0000-01-01T00:00:00Z",
            ])
            .prop_map(str::to_string),
        ];
        let leaf = (
            prop::sample::select(NAMES),
            prop::bool::ANY,
            prop::collection::vec((prop::sample::select(ATTRS), value), 0..8),
            prop::option::of(any::<String>()),
        )
            .prop_map(|(name, ours, attrs, text)| {
                let ns = if ours { NS } else { "urn:example:other" };
                let mut el = Element::builder(name, ns).build();
                for (a, v) in attrs {
                    attr(&mut el, a, v);
                }
                if let Some(t) = text {
                    el.append_text(t);
                }
                el
            });
        leaf.prop_recursive(5, 64, 8, |inner| {
            (inner.clone(), prop::collection::vec(inner, 0..8)).prop_map(|(mut parent, kids)| {
                for k in kids {
                    parent.append_child(k);
                }
                parent
            })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn parsers_never_panic_on_any_tree(el in arbitrary_element()) {
            let _ = parse_negotiation(&el);
            let _ = parse_negotiation_reply(&el);
            let _ = parse_deferred_reply(&el);
            // The free/busy decoders (§5) read the same hostile input.
            let _ = crate::negotiate::wire::parse_request(&el);
            let _ = crate::negotiate::wire::parse_reply(&el);
        }

        #[test]
        fn any_summary_and_note_round_trip_or_are_refused_cleanly(
            summary in any::<String>(),
            note in any::<String>(),
        ) {
            let mut o = offer();
            o.summary = summary.clone();
            o.note = Some(note.clone());
            let el = reparse(&task_offer_element(&o));
            let clean = |s: &str, max: usize| {
                !s.trim().is_empty() && !s.chars().any(char::is_control) && s.chars().count() <= max
            };
            match parse_negotiation(&el) {
                Ok(NegotiationRequest::TaskOffer(back)) => {
                    prop_assert!(clean(&summary, MAX_SUMMARY_CHARS) && clean(&note, MAX_NOTE_CHARS));
                    prop_assert_eq!(back, o);
                }
                Ok(other) => prop_assert!(false, "read as {:?}", other),
                Err(e) => {
                    prop_assert!(!(clean(&summary, MAX_SUMMARY_CHARS) && clean(&note, MAX_NOTE_CHARS)), "{}", e);
                }
            }
        }
    }
}
