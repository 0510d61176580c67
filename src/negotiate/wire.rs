//! The wire format of `docs/protocol.md`: typed requests and replies, read
//! from and written to XML elements. Pure; knows nothing of the XMPP
//! session (stanza ids, addressing) or of policies.
//!
//! Everything read here came from another agent: every attribute is
//! validated, every size is bounded, and every failure is a [`WireError`]
//! that maps to the stanza error the protocol prescribes.

use chrono::{DateTime, Duration, Utc};
use xmpp_parsers::minidom::Element;
use xmpp_parsers::minidom::rxml::{NcName, xml_ncname};

use crate::domain::{BusyInterval, BusyStatus, TimeRange};
use crate::policy::{DisclosedEvent, Disclosure, Level};

/// The protocol's namespace and disco feature.
pub const NS: &str = "urn:x-attache:agent:0";

/// Limits of §8.
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024;
pub const MAX_WINDOW_DAYS: i64 = 366;
pub const MAX_SLOTS: usize = 50;
pub const MAX_DEPTH: usize = 4;
pub const MAX_REPLY_INTERVALS: usize = 2_000;

/// Why a payload cannot be answered; each maps to one stanza error (§6).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Malformed: `bad-request` + `<invalid-payload/>`.
    #[error("{0}")]
    Invalid(String),
    /// Over a limit: `not-acceptable` + `<too-large/>`.
    #[error("{0}")]
    TooLarge(String),
    /// An element of this namespace this version does not know: `feature-not-implemented`.
    #[error("{0}")]
    Unsupported(String),
}

/// A request id (§4.1): 1–64 characters from `[A-Za-z0-9._:-]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(String);

impl RequestId {
    pub fn parse(text: &str) -> Result<Self, WireError> {
        let ok = !text.is_empty()
            && text.len() <= 64
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
        if ok {
            Ok(Self(text.to_string()))
        } else {
            Err(WireError::Invalid(format!(
                "request-id must be 1 to 64 characters from A-Z a-z 0-9 . _ : - (got {} characters)",
                text.chars().count()
            )))
        }
    }

    /// A fresh id: time-ordered, unique within this process and across restarts.
    pub fn generate(now: DateTime<Utc>) -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        Self(format!(
            "{:013x}{:05x}{:08x}",
            now.timestamp_millis().max(0),
            std::process::id() & 0xFFFFF,
            n & 0xFFFF_FFFF
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A free/busy question (§5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreebusyQuery {
    pub request_id: RequestId,
    pub window: Option<TimeRange>,
    pub duration: Option<Duration>,
    pub level: Option<Level>,
    pub slots: Vec<TimeRange>,
}

/// Any request a peer can make in this version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerRequest {
    Freebusy(FreebusyQuery),
}

impl PeerRequest {
    pub fn request_id(&self) -> &RequestId {
        match self {
            PeerRequest::Freebusy(q) => &q.request_id,
        }
    }
}

/// The yes/no answer of §5.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotAnswer {
    Free,
    Busy,
    Undisclosed,
}

impl SlotAnswer {
    fn name(self) -> &'static str {
        match self {
            SlotAnswer::Free => "free",
            SlotAnswer::Busy => "busy",
            SlotAnswer::Undisclosed => "undisclosed",
        }
    }
}

/// One `<event>` of a `details` reply: a non-private event's title and place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDetails {
    pub interval: BusyInterval,
    pub summary: Option<String>,
    pub location: Option<String>,
}

/// A free/busy answer (§5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreebusyReply {
    pub request_id: RequestId,
    pub level: Level,
    pub window: Option<TimeRange>,
    pub shown: Vec<TimeRange>,
    pub busy: Vec<BusyInterval>,
    pub events: Vec<EventDetails>,
    pub free: Vec<TimeRange>,
    pub answer: Option<(TimeRange, SlotAnswer)>,
}

impl FreebusyReply {
    /// The reply that carries exactly `disclosure` at `level`.
    pub fn from_disclosure(request_id: RequestId, level: Level, disclosure: &Disclosure) -> Self {
        let mut reply = FreebusyReply {
            request_id,
            level,
            window: None,
            shown: Vec::new(),
            busy: Vec::new(),
            events: Vec::new(),
            free: Vec::new(),
            answer: None,
        };
        match disclosure {
            Disclosure::Nothing => {}
            Disclosure::YesNo { slot, answer } => {
                reply.window = *slot;
                reply.answer = slot.map(|s| {
                    (
                        s,
                        match answer {
                            Some(true) => SlotAnswer::Free,
                            Some(false) => SlotAnswer::Busy,
                            None => SlotAnswer::Undisclosed,
                        },
                    )
                });
            }
            Disclosure::Slots {
                window,
                shown,
                slots,
            } => {
                reply.window = *window;
                reply.shown = shown.clone();
                reply.free = slots.clone();
            }
            Disclosure::Busy {
                window,
                shown,
                busy,
            } => {
                reply.window = *window;
                reply.shown = shown.clone();
                reply.busy = busy.clone();
            }
            Disclosure::Details {
                window,
                shown,
                busy,
                events,
            } => {
                reply.window = *window;
                reply.shown = shown.clone();
                reply.busy = busy.clone();
                reply.events = events
                    .iter()
                    .map(|e| EventDetails {
                        interval: BusyInterval {
                            start: e.start,
                            end: e.end,
                            status: e.status,
                        },
                        summary: e.summary.clone(),
                        location: e.location.clone(),
                    })
                    .collect();
            }
        }
        reply
    }
}

impl FreebusyReply {
    /// What the reply disclosed, in the form the owner's reply renderer reads.
    pub fn to_disclosure(&self) -> Disclosure {
        match self.level {
            Level::None => Disclosure::Nothing,
            Level::YesNo => Disclosure::YesNo {
                slot: self.answer.map(|(s, _)| s),
                answer: self.answer.and_then(|(_, a)| match a {
                    SlotAnswer::Free => Some(true),
                    SlotAnswer::Busy => Some(false),
                    SlotAnswer::Undisclosed => None,
                }),
            },
            Level::Slots => Disclosure::Slots {
                window: self.window,
                shown: self.shown.clone(),
                slots: self.free.clone(),
            },
            Level::Busy => Disclosure::Busy {
                window: self.window,
                shown: self.shown.clone(),
                busy: self.busy.clone(),
            },
            Level::Details => Disclosure::Details {
                window: self.window,
                shown: self.shown.clone(),
                busy: self.busy.clone(),
                events: self
                    .events
                    .iter()
                    .map(|b| DisclosedEvent {
                        start: b.interval.start,
                        end: b.interval.end,
                        status: b.interval.status,
                        summary: b.summary.clone(),
                        location: b.location.clone(),
                    })
                    .collect(),
            },
        }
    }
}

// ---------------------------------------------------------------------------
// Reading

pub(crate) fn attr_time(el: &Element, name: &str) -> Result<Option<DateTime<Utc>>, WireError> {
    match el.attr(name) {
        None => Ok(None),
        Some(v) => parse_time(v).map(Some).ok_or_else(|| {
            WireError::Invalid(format!(
                "{name}='{}' is not a UTC time like 2026-01-13T10:00:00Z",
                clip(v)
            ))
        }),
    }
}

/// RFC 3339 in UTC with `Z`, to the second (§4.2).
pub fn parse_time(v: &str) -> Option<DateTime<Utc>> {
    if v.len() != 20 || !v.ends_with('Z') {
        return None;
    }
    DateTime::parse_from_rfc3339(v)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// An RFC 5545 DURATION of exact time (`PT30M`, `PT1H30M`, `P1D`, `P1W`); days count 24 h.
pub fn parse_duration(v: &str) -> Option<Duration> {
    let rest = v.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut total = Duration::zero();
    let mut any = false;
    let mut take = |part: &str, units: &[(char, i64)]| -> Option<()> {
        let mut num = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            let size = units.iter().find(|(u, _)| *u == c)?.1;
            let n: i64 = num.parse().ok()?;
            num.clear();
            total = total.checked_add(&Duration::try_seconds(n.checked_mul(size)?)?)?;
            any = true;
        }
        num.is_empty().then_some(())
    };
    take(date, &[('W', 604_800), ('D', 86_400)])?;
    if let Some(t) = time {
        if t.is_empty() {
            return None;
        }
        take(t, &[('H', 3_600), ('M', 60), ('S', 1)])?;
    }
    any.then_some(total)
}

pub fn format_duration(d: Duration) -> String {
    let mut s = d.num_seconds().max(0);
    if s == 0 {
        return "PT0S".into();
    }
    let days = s / 86_400;
    s %= 86_400;
    let mut out = String::from("P");
    if days > 0 {
        out.push_str(&format!("{days}D"));
    }
    if s > 0 {
        out.push('T');
        for (unit, size) in [('H', 3_600), ('M', 60), ('S', 1)] {
            if s >= size {
                out.push_str(&format!("{}{unit}", s / size));
                s %= size;
            }
        }
    }
    out
}

/// A peer's error text cut to 200 characters: it ends up in the owner's chat.
fn clip_long(v: &str) -> String {
    let mut s: String = v.chars().filter(|c| !c.is_control()).take(200).collect();
    if v.chars().count() > 200 {
        s.push('…');
    }
    s
}

/// `v` cut to 40 characters, for error messages that quote a peer's input.
pub(crate) fn clip(v: &str) -> String {
    let mut s: String = v.chars().take(40).collect();
    if v.chars().count() > 40 {
        s.push('…');
    }
    s
}

pub(crate) fn range(el: &Element) -> Result<TimeRange, WireError> {
    let start = attr_time(el, "start")?;
    let end = attr_time(el, "end")?;
    match (start, end) {
        (Some(s), Some(e)) if s < e => Ok(TimeRange { start: s, end: e }),
        (Some(_), Some(_)) => Err(WireError::Invalid(format!(
            "<{}>: end must be after start",
            el.name()
        ))),
        _ => Err(WireError::Invalid(format!(
            "<{}> needs start and end",
            el.name()
        ))),
    }
}

/// Whether `el` nests deeper than `max` levels. Stops descending at `max`, so a
/// hostile, very deep tree costs no more stack than a legal one.
pub(crate) fn nests_deeper_than(el: &Element, max: usize) -> bool {
    if max == 0 {
        return true;
    }
    el.children().any(|c| nests_deeper_than(c, max - 1))
}

/// The serialized size of `el`, counted without allocating the whole text twice.
pub fn serialized_len(el: &Element) -> usize {
    let mut buf = Vec::new();
    match el.write_to(&mut buf) {
        Ok(()) => buf.len(),
        Err(_) => usize::MAX,
    }
}

/// The checks every payload passes before its own fields are read (§8):
/// our namespace, at most [`MAX_DEPTH`] levels, at most [`MAX_PAYLOAD_BYTES`].
pub(crate) fn check_payload(el: &Element) -> Result<(), WireError> {
    if el.ns() != NS {
        return Err(WireError::Unsupported(format!(
            "namespace {} is not {NS}",
            clip(&el.ns())
        )));
    }
    if nests_deeper_than(el, MAX_DEPTH) {
        return Err(WireError::Invalid(format!(
            "the payload nests deeper than {MAX_DEPTH} levels"
        )));
    }
    let size = serialized_len(el);
    if size > MAX_PAYLOAD_BYTES {
        return Err(WireError::TooLarge(format!(
            "the payload is {size} bytes, over the {MAX_PAYLOAD_BYTES}-byte limit"
        )));
    }
    Ok(())
}

/// Reads the one child of an IQ `get`/`set` in [`NS`].
pub fn parse_request(el: &Element) -> Result<PeerRequest, WireError> {
    check_payload(el)?;
    match el.name() {
        "freebusy" => parse_freebusy(el).map(PeerRequest::Freebusy),
        other => Err(WireError::Unsupported(format!(
            "<{}/> is not part of version 0 of the attache protocol",
            clip(other)
        ))),
    }
}

fn parse_freebusy(el: &Element) -> Result<FreebusyQuery, WireError> {
    let request_id = RequestId::parse(
        el.attr("request-id")
            .ok_or_else(|| WireError::Invalid("request-id is missing".into()))?,
    )?;
    let start = attr_time(el, "start")?;
    let end = attr_time(el, "end")?;
    let window = match (start, end) {
        (Some(s), Some(e)) => {
            if e <= s {
                return Err(WireError::Invalid("end must be after start".into()));
            }
            if e - s > Duration::days(MAX_WINDOW_DAYS) {
                return Err(WireError::TooLarge(format!(
                    "the window is {} days long, over the {MAX_WINDOW_DAYS}-day limit",
                    (e - s).num_days()
                )));
            }
            Some(TimeRange { start: s, end: e })
        }
        (None, None) => None,
        _ => {
            return Err(WireError::Invalid(
                "give both start and end, or neither".into(),
            ));
        }
    };
    let duration = match el.attr("duration") {
        None => None,
        Some(v) => match parse_duration(v) {
            Some(d) if d > Duration::zero() && d <= Duration::days(MAX_WINDOW_DAYS) => Some(d),
            _ => {
                return Err(WireError::Invalid(format!(
                    "duration='{}' is not a positive RFC 5545 duration like PT30M or PT1H30M",
                    clip(v)
                )));
            }
        },
    };
    let level = match el.attr("level") {
        None => None,
        Some(v) => Some(Level::from_name(v).ok_or_else(|| {
            WireError::Invalid(format!(
                "level='{}' is not one of none, yes-no, slots, busy, details",
                clip(v)
            ))
        })?),
    };
    let mut slots = Vec::new();
    for child in el.children() {
        if child.ns() != NS {
            continue; // foreign extensions are ignored (§10)
        }
        match child.name() {
            "slot" => {
                if slots.len() == MAX_SLOTS {
                    return Err(WireError::TooLarge(format!(
                        "more than {MAX_SLOTS} <slot> elements"
                    )));
                }
                let start = attr_time(child, "start")?
                    .ok_or_else(|| WireError::Invalid("<slot> needs start".into()))?;
                let end = match attr_time(child, "end")? {
                    Some(e) => e,
                    None => start + duration.unwrap_or(Duration::minutes(30)),
                };
                if end <= start {
                    return Err(WireError::Invalid("<slot>: end must be after start".into()));
                }
                slots.push(TimeRange { start, end });
            }
            other => {
                return Err(WireError::Unsupported(format!(
                    "<{}/> is not part of a version 0 <freebusy/> request",
                    clip(other)
                )));
            }
        }
    }
    Ok(FreebusyQuery {
        request_id,
        window,
        duration,
        level,
        slots,
    })
}

/// Reads a `<freebusy>` result (the requester's side).
pub fn parse_reply(el: &Element) -> Result<FreebusyReply, WireError> {
    if !el.is("freebusy", NS) {
        return Err(WireError::Unsupported(format!(
            "expected <freebusy xmlns='{NS}'/>"
        )));
    }
    let request_id = RequestId::parse(el.attr("request-id").unwrap_or(""))?;
    let level = el
        .attr("level")
        .and_then(Level::from_name)
        .ok_or_else(|| WireError::Invalid("the reply has no valid level".into()))?;
    let window = match (attr_time(el, "start")?, attr_time(el, "end")?) {
        (Some(s), Some(e)) if s < e => Some(TimeRange { start: s, end: e }),
        _ => None,
    };
    let mut reply = FreebusyReply {
        request_id,
        level,
        window,
        shown: Vec::new(),
        busy: Vec::new(),
        events: Vec::new(),
        free: Vec::new(),
        answer: None,
    };
    let mut count = 0;
    for child in el.children() {
        count += 1;
        if count > MAX_REPLY_INTERVALS * 2 {
            return Err(WireError::TooLarge(
                "the reply has too many elements".into(),
            ));
        }
        match child.name() {
            "shown" => reply.shown.push(range(child)?),
            "free" => reply.free.push(range(child)?),
            "busy" | "event" => {
                let r = range(child)?;
                let interval = BusyInterval {
                    start: r.start,
                    end: r.end,
                    status: match child.attr("fbtype") {
                        Some("BUSY-TENTATIVE") => BusyStatus::Tentative,
                        _ => BusyStatus::Busy,
                    },
                };
                if child.name() == "busy" {
                    reply.busy.push(interval);
                } else {
                    let text = |name: &str| {
                        child
                            .children()
                            .find(|c| c.name() == name)
                            .map(|c| c.text())
                    };
                    reply.events.push(EventDetails {
                        interval,
                        summary: text("summary"),
                        location: text("location"),
                    });
                }
            }
            "answer" => {
                let r = range(child)?;
                let a = match child.text().trim() {
                    "free" => SlotAnswer::Free,
                    "busy" => SlotAnswer::Busy,
                    _ => SlotAnswer::Undisclosed,
                };
                reply.answer = Some((r, a));
            }
            _ => {}
        }
    }
    Ok(reply)
}

// ---------------------------------------------------------------------------
// Writing

pub(crate) fn with_range(mut el: Element, r: &TimeRange) -> Element {
    set(
        &mut el,
        xml_ncname!("start").to_ncname(),
        format_time(r.start),
    );
    set(&mut el, xml_ncname!("end").to_ncname(), format_time(r.end));
    el
}

pub(crate) fn set(el: &mut Element, name: NcName, value: String) {
    el.set_attr(xmpp_parsers::minidom::rxml::Namespace::NONE, name, value);
}

pub(crate) fn range_element(name: &str, r: &TimeRange) -> Element {
    with_range(Element::builder(name, NS).build(), r)
}

fn interval_element(name: &str, b: &BusyInterval) -> Element {
    let mut el = range_element(
        name,
        &TimeRange {
            start: b.start,
            end: b.end,
        },
    );
    let fbtype = match b.status {
        BusyStatus::Busy => "BUSY",
        BusyStatus::Tentative => "BUSY-TENTATIVE",
    };
    set(
        &mut el,
        xml_ncname!("fbtype").to_ncname(),
        fbtype.to_string(),
    );
    el
}

/// The request element of §5.1.
pub fn request_element(q: &FreebusyQuery) -> Element {
    let mut el = Element::builder("freebusy", NS).build();
    set(
        &mut el,
        xml_ncname!("request-id").to_ncname(),
        q.request_id.to_string(),
    );
    if let Some(w) = &q.window {
        el = with_range(el, w);
    }
    if let Some(d) = q.duration {
        set(
            &mut el,
            xml_ncname!("duration").to_ncname(),
            format_duration(d),
        );
    }
    if let Some(l) = q.level {
        set(
            &mut el,
            xml_ncname!("level").to_ncname(),
            l.name().to_string(),
        );
    }
    for s in &q.slots {
        el.append_child(range_element("slot", s));
    }
    el
}

/// The result element of §5.2.
pub fn reply_element(r: &FreebusyReply) -> Element {
    let mut el = Element::builder("freebusy", NS).build();
    set(
        &mut el,
        xml_ncname!("request-id").to_ncname(),
        r.request_id.to_string(),
    );
    set(
        &mut el,
        xml_ncname!("level").to_ncname(),
        r.level.name().to_string(),
    );
    if let Some(w) = &r.window {
        el = with_range(el, w);
    }
    for s in &r.shown {
        el.append_child(range_element("shown", s));
    }
    for b in r.busy.iter().take(MAX_REPLY_INTERVALS) {
        el.append_child(interval_element("busy", b));
    }
    for e in r.events.iter().take(MAX_REPLY_INTERVALS) {
        let mut event = interval_element("event", &e.interval);
        if let Some(s) = &e.summary {
            event.append_child(Element::builder("summary", NS).append(s.as_str()).build());
        }
        if let Some(l) = &e.location {
            event.append_child(Element::builder("location", NS).append(l.as_str()).build());
        }
        el.append_child(event);
    }
    for f in r.free.iter().take(MAX_REPLY_INTERVALS) {
        el.append_child(range_element("free", f));
    }
    if let Some((slot, answer)) = &r.answer {
        let mut a = range_element("answer", slot);
        a.append_text(answer.name());
        el.append_child(a);
    }
    el
}

/// `<pending>` of §5.3.
pub fn pending_element(request_id: &RequestId, expires: DateTime<Utc>) -> Element {
    let mut el = Element::builder("pending", NS).build();
    set(
        &mut el,
        xml_ncname!("request-id").to_ncname(),
        request_id.to_string(),
    );
    set(
        &mut el,
        xml_ncname!("expires").to_ncname(),
        format_time(expires),
    );
    el
}

/// The protocol's own error conditions (§6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    NotPermitted,
    RateLimited {
        retry_after: Duration,
    },
    Invalid(String),
    TooLarge(String),
    RequestIdReused,
    Unsupported(String),
    /// `<confirm>` came after the hold lapsed and the slot was taken meanwhile (§12.3).
    HoldExpired,
    /// A hold, confirm or cancel with a lower `sequence` than the meeting booked here (§12.6).
    StaleSequence,
    /// A cancel or decline of a meeting this agent does not know (§12.5, §12.7).
    UnknownMeeting,
    /// A status, answer or cancel of a task this agent does not know (§13).
    UnknownTask,
    /// A task offer whose delegation chain already contains the receiving agent (§13.4).
    DelegationLoop,
}

impl From<WireError> for ProtocolError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Invalid(m) => ProtocolError::Invalid(m),
            WireError::TooLarge(m) => ProtocolError::TooLarge(m),
            WireError::Unsupported(m) => ProtocolError::Unsupported(m),
        }
    }
}

impl ProtocolError {
    /// Reads an error back from the stanza's defined condition, its text and
    /// the application condition in [`NS`], as a `<reply>` (§14) or an IQ
    /// error carries it. `None` when the pair matches no row of §6.
    pub fn from_parts(defined: &str, text: &str, app: Option<&Element>) -> Option<Self> {
        let text = clip_long(text);
        let app_name = app.filter(|a| a.ns() == NS).map(|a| a.name());
        Some(match (defined, app_name) {
            ("forbidden", Some("not-permitted")) => ProtocolError::NotPermitted,
            ("resource-constraint", Some("rate-limited")) => {
                let seconds = app
                    .and_then(|a| a.attr("retry-after"))
                    .filter(|v| {
                        !v.is_empty() && v.len() <= 9 && v.bytes().all(|b| b.is_ascii_digit())
                    })
                    .and_then(|v| v.parse::<i64>().ok())?;
                ProtocolError::RateLimited {
                    retry_after: Duration::seconds(seconds),
                }
            }
            ("bad-request", Some("invalid-payload")) => ProtocolError::Invalid(text),
            ("not-acceptable", Some("too-large")) => ProtocolError::TooLarge(text),
            ("conflict", Some("request-id-reused")) => ProtocolError::RequestIdReused,
            ("conflict", Some("hold-expired")) => ProtocolError::HoldExpired,
            ("conflict", Some("stale-sequence")) => ProtocolError::StaleSequence,
            ("conflict", Some("delegation-loop")) => ProtocolError::DelegationLoop,
            ("item-not-found", Some("unknown-meeting")) => ProtocolError::UnknownMeeting,
            ("item-not-found", Some("unknown-task")) => ProtocolError::UnknownTask,
            ("feature-not-implemented", None) => ProtocolError::Unsupported(text),
            _ => return None,
        })
    }

    /// `(error type, defined condition, human text, application condition)` as §6 lists them.
    pub fn parts(&self) -> (&'static str, &'static str, String, Option<Element>) {
        let app = |name: &str| Some(Element::builder(name, NS).build());
        match self {
            ProtocolError::NotPermitted => (
                "auth",
                "forbidden",
                "not permitted".into(),
                app("not-permitted"),
            ),
            ProtocolError::RateLimited { retry_after } => {
                let mut el = Element::builder("rate-limited", NS).build();
                set(
                    &mut el,
                    xml_ncname!("retry-after").to_ncname(),
                    retry_after.num_seconds().max(1).to_string(),
                );
                (
                    "wait",
                    "resource-constraint",
                    "rate limit reached, try later".into(),
                    Some(el),
                )
            }
            ProtocolError::Invalid(m) => {
                ("modify", "bad-request", m.clone(), app("invalid-payload"))
            }
            ProtocolError::TooLarge(m) => ("modify", "not-acceptable", m.clone(), app("too-large")),
            ProtocolError::RequestIdReused => (
                "cancel",
                "conflict",
                "this request-id was used for a different request".into(),
                app("request-id-reused"),
            ),
            ProtocolError::Unsupported(m) => ("cancel", "feature-not-implemented", m.clone(), None),
            ProtocolError::HoldExpired => (
                "cancel",
                "conflict",
                "the hold expired and the slot is no longer free".into(),
                app("hold-expired"),
            ),
            ProtocolError::StaleSequence => (
                "cancel",
                "conflict",
                "a newer sequence of this meeting is already booked".into(),
                app("stale-sequence"),
            ),
            ProtocolError::UnknownMeeting => (
                "cancel",
                "item-not-found",
                "no such meeting here".into(),
                app("unknown-meeting"),
            ),
            ProtocolError::UnknownTask => (
                "cancel",
                "item-not-found",
                "no such task here".into(),
                app("unknown-task"),
            ),
            ProtocolError::DelegationLoop => (
                "cancel",
                "conflict",
                "this agent already appears in the task's delegation chain".into(),
                app("delegation-loop"),
            ),
        }
    }
}
