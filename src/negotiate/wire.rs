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

/// The protocol's namespace and disco feature. Version 1: the period lists
/// of §5.2 replaced version 0's one element per interval (§10), which peers
/// of version 0 would misread, hence the new number.
pub const NS: &str = "urn:x-attache:agent:1";

/// Limits of §8.
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024;
pub const MAX_WINDOW_DAYS: i64 = 366;
pub const MAX_SLOTS: usize = 50;
pub const MAX_DEPTH: usize = 4;
/// Periods per kind of list in a reply (`<shown>`, `<busy>`, `<free>`, each
/// counted over all its elements), and `<event>`s: bounds what a requester
/// reads from a peer, and what a responder writes.
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
            "<{}/> is not part of version 1 of the attache protocol",
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
                    "<{}/> is not part of a version 1 <freebusy/> request",
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
    let mut children = 0;
    for child in el.children() {
        children += 1;
        if children > MAX_REPLY_INTERVALS * 2 {
            return Err(WireError::TooLarge(format!(
                "the reply has more than {} child elements",
                MAX_REPLY_INTERVALS * 2
            )));
        }
        match child.name() {
            "shown" => read_periods(child, &mut reply.shown)?,
            "free" => read_periods(child, &mut reply.free)?,
            "busy" => {
                let status = fbtype_status(child);
                let mut periods = Vec::new();
                read_periods_counted(child, &mut periods, reply.busy.len())?;
                reply.busy.extend(periods.into_iter().map(|p| BusyInterval {
                    start: p.start,
                    end: p.end,
                    status,
                }));
            }
            "event" => {
                if reply.events.len() == MAX_REPLY_INTERVALS {
                    return Err(WireError::TooLarge(format!(
                        "the reply has more than {MAX_REPLY_INTERVALS} <event> elements"
                    )));
                }
                let r = range(child)?;
                let text = |name: &str| {
                    child
                        .children()
                        .find(|c| c.name() == name)
                        .map(|c| c.text())
                };
                reply.events.push(EventDetails {
                    interval: BusyInterval {
                        start: r.start,
                        end: r.end,
                        status: fbtype_status(child),
                    },
                    summary: text("summary"),
                    location: text("location"),
                });
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
    // Several elements of one kind (two FBTYPEs of `<busy>`, or a peer that
    // splits a list) are one list: in time order, as the sender promises.
    reply.shown.sort_by_key(|p| (p.start, p.end));
    reply.free.sort_by_key(|p| (p.start, p.end));
    reply.busy.sort_by_key(|b| (b.start, b.end));
    Ok(reply)
}

/// The FBTYPE of a `<busy>` or `<event>`: RFC 5545 §3.2.9 says a value the
/// reader does not know counts as `BUSY`, as does a missing one.
fn fbtype_status(el: &Element) -> BusyStatus {
    match el.attr("fbtype") {
        Some("BUSY-TENTATIVE") => BusyStatus::Tentative,
        _ => BusyStatus::Busy,
    }
}

/// Appends the period list of `el` (§5.2) to `out`, which already holds the
/// periods of earlier elements of the same kind.
fn read_periods(el: &Element, out: &mut Vec<TimeRange>) -> Result<(), WireError> {
    let already = out.len();
    read_periods_counted(el, out, already)
}

/// Appends the period list of `el` to `out`, refusing it once `already`
/// periods of this kind plus its own exceed [`MAX_REPLY_INTERVALS`].
fn read_periods_counted(
    el: &Element,
    out: &mut Vec<TimeRange>,
    already: usize,
) -> Result<(), WireError> {
    let room = MAX_REPLY_INTERVALS.saturating_sub(already);
    let periods = parse_period_list(&el.text(), room).map_err(|e| match e {
        WireError::TooLarge(_) => WireError::TooLarge(format!(
            "the reply lists more than {MAX_REPLY_INTERVALS} periods in <{}>",
            el.name()
        )),
        WireError::Invalid(m) => WireError::Invalid(format!("<{}>: {m}", el.name())),
        other => other,
    })?;
    out.extend(periods);
    Ok(())
}

/// Reads a period list of §5.2: `START/END` periods (RFC 5545 PERIOD in its
/// explicit form, both ends instants of §4.2) separated by commas, with any
/// whitespace around them. At least one period, at most `max`, each ending
/// after it starts; the order is the sender's.
pub fn parse_period_list(text: &str, max: usize) -> Result<Vec<TimeRange>, WireError> {
    if text.trim().is_empty() {
        return Err(WireError::Invalid(
            "no periods: expected START/END,… such as 2026-01-12T09:00:00Z/2026-01-12T10:30:00Z"
                .into(),
        ));
    }
    let mut out = Vec::new();
    for (n, item) in text.split(',').enumerate() {
        if out.len() == max {
            return Err(WireError::TooLarge(format!("more than {max} periods")));
        }
        let item = item.trim();
        if item.is_empty() {
            return Err(WireError::Invalid(format!(
                "period {} is empty (two commas in a row, or a comma first or last)",
                n + 1
            )));
        }
        let Some((start, end)) = item.split_once('/') else {
            return Err(WireError::Invalid(format!(
                "'{}' is not a period START/END such as 2026-01-12T09:00:00Z/2026-01-12T10:30:00Z",
                clip(item)
            )));
        };
        let instant = |v: &str| {
            let v = v.trim();
            parse_time(v).ok_or_else(|| {
                WireError::Invalid(format!(
                    "'{}' in period {} is not a UTC time like 2026-01-13T10:00:00Z",
                    clip(v),
                    n + 1
                ))
            })
        };
        let (start, end) = (instant(start)?, instant(end)?);
        if end <= start {
            return Err(WireError::Invalid(format!(
                "period '{}' does not end after it starts",
                clip(item)
            )));
        }
        out.push(TimeRange { start, end });
    }
    Ok(out)
}

/// Writes a period list of §5.2: `START/END,START/END…`.
pub fn format_period_list<'a>(periods: impl IntoIterator<Item = &'a TimeRange>) -> String {
    let mut out = String::new();
    for p in periods {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(&format_time(p.start));
        out.push('/');
        out.push_str(&format_time(p.end));
    }
    out
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

/// `r` ended early enough that its `<shown>` and `<busy>` lists fit in
/// [`MAX_REPLY_INTERVALS`] periods each (§8); `None` when they already fit.
/// Cutting only the busy list would make the time after it look free, so
/// the shown stretches and the window end where the first left-out period
/// starts.
fn fit_reply(r: &FreebusyReply) -> Option<FreebusyReply> {
    let cutoff = [
        r.shown.get(MAX_REPLY_INTERVALS).map(|p| p.start),
        r.busy.get(MAX_REPLY_INTERVALS).map(|b| b.start),
    ]
    .into_iter()
    .flatten()
    .min()?;
    let mut out = r.clone();
    out.shown = r
        .shown
        .iter()
        .filter(|p| p.start < cutoff)
        .map(|p| TimeRange {
            start: p.start,
            end: p.end.min(cutoff),
        })
        .collect();
    out.busy.retain(|b| b.start < cutoff);
    for b in &mut out.busy {
        b.end = b.end.min(cutoff);
    }
    out.events.retain(|e| e.interval.start < cutoff);
    out.free.retain(|f| f.end <= cutoff);
    out.window = r
        .window
        .map(|w| TimeRange {
            start: w.start,
            end: w.end.min(cutoff),
        })
        .filter(|w| w.start < w.end);
    Some(out)
}

/// `<name>` carrying the first [`MAX_REPLY_INTERVALS`] of `periods` as a
/// period list; `None` when there are none (§5.2 omits empty lists).
fn period_list_element<'a>(
    name: &str,
    periods: impl Iterator<Item = &'a TimeRange>,
) -> Option<Element> {
    let text = format_period_list(periods.take(MAX_REPLY_INTERVALS));
    (!text.is_empty()).then(|| Element::builder(name, NS).append(text).build())
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
    let fitted;
    let r = match fit_reply(r) {
        Some(f) => {
            fitted = f;
            &fitted
        }
        None => r,
    };
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
    if let Some(shown) = period_list_element("shown", r.shown.iter()) {
        el.append_child(shown);
    }
    // One `<busy>` per FBTYPE present, as RFC 5545 FREEBUSY groups periods.
    for (status, fbtype) in [
        (BusyStatus::Busy, "BUSY"),
        (BusyStatus::Tentative, "BUSY-TENTATIVE"),
    ] {
        let periods: Vec<TimeRange> = r
            .busy
            .iter()
            .take(MAX_REPLY_INTERVALS)
            .filter(|b| b.status == status)
            .map(|b| TimeRange {
                start: b.start,
                end: b.end,
            })
            .collect();
        if let Some(mut busy) = period_list_element("busy", periods.iter()) {
            set(
                &mut busy,
                xml_ncname!("fbtype").to_ncname(),
                fbtype.to_string(),
            );
            el.append_child(busy);
        }
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
    if let Some(free) = period_list_element("free", r.free.iter()) {
        el.append_child(free);
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn at(day: u32, h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, day, h, m, 0)
            .single()
            .unwrap_or_default()
    }

    fn period(day: u32, (h1, m1): (u32, u32), (h2, m2): (u32, u32)) -> TimeRange {
        TimeRange {
            start: at(day, h1, m1),
            end: at(day, h2, m2),
        }
    }

    fn busy(p: TimeRange, status: BusyStatus) -> BusyInterval {
        BusyInterval {
            start: p.start,
            end: p.end,
            status,
        }
    }

    fn rid() -> RequestId {
        RequestId::parse("r1").unwrap_or_else(|e| panic!("{e}"))
    }

    fn empty(level: Level) -> FreebusyReply {
        FreebusyReply {
            request_id: rid(),
            level,
            window: Some(TimeRange {
                start: at(12, 0, 0),
                end: at(26, 0, 0),
            }),
            shown: Vec::new(),
            busy: Vec::new(),
            events: Vec::new(),
            free: Vec::new(),
            answer: None,
        }
    }

    /// Serializes and reads back, as the wire does.
    fn reparse(el: &Element) -> Element {
        let mut buf = Vec::new();
        if let Err(e) = el.write_to(&mut buf) {
            panic!("{e}");
        }
        let text = String::from_utf8(buf).unwrap_or_else(|e| panic!("{e}"));
        text.parse().unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    fn reply_xml(children: &str) -> Element {
        format!(
            "<freebusy xmlns='{NS}' request-id='r1' level='busy' \
             start='2026-01-12T00:00:00Z' end='2026-01-26T00:00:00Z'>{children}</freebusy>"
        )
        .parse()
        .unwrap_or_else(|e| panic!("{e}: {children}"))
    }

    fn list(ps: &[TimeRange]) -> String {
        format_period_list(ps.iter())
    }

    /// A busy reply over 14 days of 08:00–16:00: one `<shown>` a day and ten
    /// busy blocks (eight BUSY, two tentative), the benchmark's shape.
    fn fortnight() -> FreebusyReply {
        let mut r = empty(Level::Busy);
        r.shown = (12..26).map(|d| period(d, (8, 0), (16, 0))).collect();
        r.busy = (12..22)
            .map(|d| {
                let status = if d % 5 == 0 {
                    BusyStatus::Tentative
                } else {
                    BusyStatus::Busy
                };
                busy(period(d, (9, 0), (10, 30)), status)
            })
            .collect();
        r
    }

    /// How version 0 wrote the same reply: one element per interval.
    fn version_0_element(r: &FreebusyReply) -> Element {
        let mut el = Element::builder("freebusy", "urn:x-attache:agent:0").build();
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
            el.append_child(with_range(
                Element::builder("shown", "urn:x-attache:agent:0").build(),
                s,
            ));
        }
        for b in &r.busy {
            let mut c = with_range(
                Element::builder("busy", "urn:x-attache:agent:0").build(),
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
                &mut c,
                xml_ncname!("fbtype").to_ncname(),
                fbtype.to_string(),
            );
            el.append_child(c);
        }
        el
    }

    #[test]
    fn a_busy_reply_is_one_list_per_kind() {
        let mut r = empty(Level::Busy);
        r.shown = vec![period(12, (8, 0), (16, 0)), period(13, (8, 0), (16, 0))];
        r.busy = vec![
            busy(period(12, (9, 0), (10, 30)), BusyStatus::Busy),
            busy(period(12, (11, 0), (12, 0)), BusyStatus::Tentative),
            busy(period(13, (13, 0), (14, 0)), BusyStatus::Busy),
        ];
        let el = reply_element(&r);
        let kids: Vec<(String, Option<&str>, String)> = el
            .children()
            .map(|c| (c.name().to_string(), c.attr("fbtype"), c.text()))
            .collect();
        assert_eq!(
            kids,
            vec![
                (
                    "shown".to_string(),
                    None,
                    "2026-01-12T08:00:00Z/2026-01-12T16:00:00Z,\
                     2026-01-13T08:00:00Z/2026-01-13T16:00:00Z"
                        .to_string()
                ),
                (
                    "busy".to_string(),
                    Some("BUSY"),
                    "2026-01-12T09:00:00Z/2026-01-12T10:30:00Z,\
                     2026-01-13T13:00:00Z/2026-01-13T14:00:00Z"
                        .to_string()
                ),
                (
                    "busy".to_string(),
                    Some("BUSY-TENTATIVE"),
                    "2026-01-12T11:00:00Z/2026-01-12T12:00:00Z".to_string()
                ),
            ]
        );
        // The two FBTYPEs come back as one timeline, in time order.
        assert_eq!(parse_reply(&reparse(&el)), Ok(r));
    }

    #[test]
    fn empty_lists_are_left_out_and_slots_use_free() {
        let el = reply_element(&empty(Level::Busy));
        assert_eq!(el.children().count(), 0, "{}", String::from(&el));
        let mut r = empty(Level::Slots);
        r.shown = vec![period(12, (8, 0), (16, 0))];
        r.free = vec![period(12, (8, 0), (9, 0)), period(12, (10, 30), (11, 30))];
        let el = reply_element(&r);
        let free: Vec<String> = el
            .children()
            .filter(|c| c.is("free", NS))
            .map(|c| c.text())
            .collect();
        assert_eq!(
            free,
            vec![
                "2026-01-12T08:00:00Z/2026-01-12T09:00:00Z,2026-01-12T10:30:00Z/2026-01-12T11:30:00Z"
            ]
        );
        assert_eq!(parse_reply(&reparse(&el)), Ok(r));
    }

    #[test]
    fn events_and_answers_keep_their_elements() {
        let mut r = empty(Level::Details);
        let p = period(12, (9, 0), (10, 0));
        r.shown = vec![period(12, (0, 0), (23, 0))];
        r.busy = vec![busy(p, BusyStatus::Busy)];
        r.events = vec![EventDetails {
            interval: busy(p, BusyStatus::Tentative),
            summary: Some("Design review".into()),
            location: Some("Room 4".into()),
        }];
        let el = reply_element(&r);
        let event = el
            .children()
            .find(|c| c.is("event", NS))
            .unwrap_or_else(|| panic!("no <event>"));
        assert_eq!(event.attr("start"), Some("2026-01-12T09:00:00Z"));
        assert_eq!(event.attr("fbtype"), Some("BUSY-TENTATIVE"));
        assert_eq!(parse_reply(&reparse(&el)), Ok(r));

        let mut r = empty(Level::YesNo);
        r.window = Some(p);
        r.answer = Some((p, SlotAnswer::Busy));
        let el = reply_element(&r);
        assert!(el.children().all(|c| c.is("answer", NS)));
        assert_eq!(parse_reply(&reparse(&el)), Ok(r));
    }

    #[test]
    fn receivers_accept_whitespace_and_several_elements_of_a_kind() {
        let el = reply_xml(
            "<shown>\n  2026-01-13T08:00:00Z/2026-01-13T16:00:00Z ,\n\t2026-01-14T08:00:00Z / 2026-01-14T16:00:00Z\n</shown>\
             <shown>2026-01-12T08:00:00Z/2026-01-12T16:00:00Z</shown>\
             <busy fbtype='BUSY-TENTATIVE'> 2026-01-12T11:00:00Z/2026-01-12T12:00:00Z </busy>\
             <busy fbtype='BUSY'>2026-01-13T09:00:00Z/2026-01-13T10:00:00Z</busy>\
             <busy>2026-01-12T09:00:00Z/2026-01-12T10:00:00Z</busy>\
             <busy fbtype='BUSY-UNAVAILABLE'>2026-01-14T09:00:00Z/2026-01-14T10:00:00Z</busy>",
        );
        let r = parse_reply(&el).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            r.shown,
            vec![
                period(12, (8, 0), (16, 0)),
                period(13, (8, 0), (16, 0)),
                period(14, (8, 0), (16, 0)),
            ]
        );
        // No or unknown FBTYPE counts as BUSY (RFC 5545 §3.2.9).
        assert_eq!(
            r.busy,
            vec![
                busy(period(12, (9, 0), (10, 0)), BusyStatus::Busy),
                busy(period(12, (11, 0), (12, 0)), BusyStatus::Tentative),
                busy(period(13, (9, 0), (10, 0)), BusyStatus::Busy),
                busy(period(14, (9, 0), (10, 0)), BusyStatus::Busy),
            ]
        );
    }

    /// The malformed lists a receiver must refuse, with what its message says.
    const MALFORMED: &[(&str, &str)] = &[
        ("2026-01-12T09:00:00Z", "not a period START/END"),
        (
            "2026-01-12T09:00:00Z-2026-01-12T10:00:00Z",
            "not a period START/END",
        ),
        (
            "2026-01-12T10:00:00Z/2026-01-12T09:00:00Z",
            "does not end after it starts",
        ),
        (
            "2026-01-12T10:00:00Z/2026-01-12T10:00:00Z",
            "does not end after it starts",
        ),
        (
            "2026-01-12T09:00:00+00:00/2026-01-12T10:00:00Z",
            "is not a UTC time",
        ),
        (
            "2026-01-12T09:00:00Z/2026-01-12T10:00:00",
            "is not a UTC time",
        ),
        (
            "2026-01-12T09:00:00.5Z/2026-01-12T10:00:00Z",
            "is not a UTC time",
        ),
        ("2026-01-12T09:00:00Z/PT1H", "is not a UTC time"),
        (
            "2026-01-12T09:00:00Z/2026-01-12T10:00:00Z/2026-01-12T11:00:00Z",
            "is not a UTC time",
        ),
        (
            "2026-01-12T09:00:00Z/2026-01-12T10:00:00Z,,2026-01-12T11:00:00Z/2026-01-12T12:00:00Z",
            "period 2 is empty",
        ),
        (
            "2026-01-12T09:00:00Z/2026-01-12T10:00:00Z,",
            "period 2 is empty",
        ),
        (
            ",2026-01-12T09:00:00Z/2026-01-12T10:00:00Z",
            "period 1 is empty",
        ),
        (" , ", "period 1 is empty"),
        ("", "no periods"),
        ("  \n ", "no periods"),
    ];

    #[test]
    fn malformed_lists_are_refused_with_a_clear_message() {
        for kind in ["shown", "free", "busy"] {
            for (text, want) in MALFORMED {
                let el = reply_xml(&format!("<{kind}>{text}</{kind}>"));
                match parse_reply(&el) {
                    Err(WireError::Invalid(m)) => {
                        assert!(m.starts_with(&format!("<{kind}>: ")), "{m}");
                        assert!(m.contains(want), "{text:?}: {m:?} lacks {want:?}");
                    }
                    other => panic!("{kind} {text:?}: {other:?}"),
                }
            }
        }
        // Version 0's attributes carry no list: refused, not read as empty.
        let old = reply_xml(
            "<busy start='2026-01-12T09:00:00Z' end='2026-01-12T10:00:00Z' fbtype='BUSY'/>",
        );
        assert!(
            matches!(parse_reply(&old), Err(WireError::Invalid(m)) if m.contains("no periods"))
        );
        // The error maps to bad-request + <invalid-payload/> (§6).
        let Err(e) = parse_reply(&reply_xml("<free>x</free>")) else {
            panic!("accepted");
        };
        assert_eq!(ProtocolError::from(e).parts().1, "bad-request");
    }

    #[test]
    fn too_many_periods_are_refused_per_kind_over_all_its_elements() {
        let p = |i: usize| TimeRange {
            start: at(12, 0, 0) + Duration::minutes(i as i64 * 2),
            end: at(12, 0, 0) + Duration::minutes(i as i64 * 2 + 1),
        };
        let many: Vec<TimeRange> = (0..=MAX_REPLY_INTERVALS).map(p).collect();
        let exactly = list(&many[..MAX_REPLY_INTERVALS]);
        let ok = reply_xml(&format!("<busy>{exactly}</busy><shown>{exactly}</shown>"));
        let r = parse_reply(&ok).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.busy.len(), MAX_REPLY_INTERVALS);
        assert_eq!(r.shown.len(), MAX_REPLY_INTERVALS);

        let one_list = reply_xml(&format!("<free>{}</free>", list(&many)));
        let split = reply_xml(&format!(
            "<busy fbtype='BUSY'>{}</busy><busy fbtype='BUSY-TENTATIVE'>{}</busy>",
            list(&many[..1_500]),
            list(&many[1_500..])
        ));
        for (el, kind) in [(one_list, "free"), (split, "busy")] {
            match parse_reply(&el) {
                Err(WireError::TooLarge(m)) => {
                    assert_eq!(
                        m,
                        format!(
                            "the reply lists more than {MAX_REPLY_INTERVALS} periods in <{kind}>"
                        )
                    );
                }
                other => panic!("{kind}: {other:?}"),
            }
        }

        // The writer keeps to the limit, so its own replies always read back.
        let mut r = empty(Level::Busy);
        r.shown = many.clone();
        r.busy = many.iter().map(|&q| busy(q, BusyStatus::Busy)).collect();
        let back = parse_reply(&reparse(&reply_element(&r))).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.shown, many[..MAX_REPLY_INTERVALS]);
        assert_eq!(back.busy, r.busy[..MAX_REPLY_INTERVALS]);

        // Four days shown, busy every other minute: the busy list is cut, and
        // the shown stretch and the window end where it was cut, so the
        // reply never makes the rest of the day look free.
        let mut r = empty(Level::Busy);
        r.shown = vec![TimeRange {
            start: at(12, 0, 0),
            end: at(16, 0, 0),
        }];
        r.busy = many.iter().map(|&q| busy(q, BusyStatus::Busy)).collect();
        let cut = many[MAX_REPLY_INTERVALS].start;
        let back = parse_reply(&reparse(&reply_element(&r))).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.busy, r.busy[..MAX_REPLY_INTERVALS]);
        assert_eq!(
            back.shown,
            vec![TimeRange {
                start: at(12, 0, 0),
                end: cut
            }]
        );
        assert_eq!(back.window.map(|w| w.end), Some(cut));
    }

    #[test]
    fn a_fortnight_of_busy_is_three_elements_and_smaller_than_in_version_0() {
        let r = fortnight();
        let new = reply_element(&r);
        let old = version_0_element(&r);
        assert_eq!(new.children().count(), 3);
        assert_eq!(old.children().count(), 24);
        let (new_len, old_len) = (serialized_len(&new), serialized_len(&old));
        eprintln!(
            "14-day busy reply: version 0 {old_len} bytes in 24 children, version 1 {new_len} bytes in 3"
        );
        assert!(new_len * 10 < old_len * 7, "{new_len} vs {old_len}");
        assert_eq!(parse_reply(&reparse(&new)), Ok(r));
    }

    /// Sorted, disjoint (touching allowed) periods from gaps and lengths in minutes.
    fn periods(max: usize) -> impl Strategy<Value = Vec<TimeRange>> {
        prop::collection::vec((0i64..3_000, 1i64..3_000), 0..max).prop_map(|steps| {
            let mut t = at(12, 0, 0);
            steps
                .into_iter()
                .map(|(gap, len)| {
                    let start = t + Duration::minutes(gap);
                    t = start + Duration::minutes(len);
                    TimeRange { start, end: t }
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn any_disjoint_periods_round_trip(
            shown in periods(40),
            busy_periods in periods(40),
            tentative in prop::collection::vec(any::<bool>(), 40),
            free in periods(10),
        ) {
            let mut r = empty(Level::Busy);
            r.shown = shown;
            r.busy = busy_periods
                .iter()
                .zip(tentative)
                .map(|(&p, t)| busy(p, if t { BusyStatus::Tentative } else { BusyStatus::Busy }))
                .collect();
            let el = reparse(&reply_element(&r));
            prop_assert!(el.children().filter(|c| c.is("busy", NS)).count() <= 2);
            prop_assert_eq!(parse_reply(&el), Ok(r.clone()));

            let mut s = empty(Level::Slots);
            s.shown = r.shown.clone();
            s.free = free;
            prop_assert_eq!(parse_reply(&reparse(&reply_element(&s))), Ok(s));
        }

        #[test]
        fn a_list_with_one_bad_period_is_refused(
            good in periods(8),
            at_index in 0usize..9,
            bad in prop::sample::select(MALFORMED.iter().map(|m| m.0).filter(|t| !t.trim().is_empty()).collect::<Vec<_>>()),
        ) {
            let mut items: Vec<String> = good
                .iter()
                .map(|p| format_period_list(std::iter::once(p)))
                .collect();
            items.insert(at_index.min(items.len()), bad.to_string());
            let text = items.join(",");
            prop_assert!(matches!(
                parse_period_list(&text, MAX_REPLY_INTERVALS),
                Err(WireError::Invalid(_))
            ), "{}", text);
        }

        #[test]
        fn period_lists_never_panic(text in any::<String>(), max in 0usize..5) {
            if let Ok(ps) = parse_period_list(&text, max) {
                prop_assert!(!ps.is_empty() && ps.len() <= max);
                prop_assert!(ps.iter().all(|p| p.start < p.end));
            }
        }
    }
}
