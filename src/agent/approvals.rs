//! Approvals on the responder's side (docs/protocol.md §5.3, §14): a peer's
//! request a rule routed to `ask` waits in the store as a pending item until
//! the owner says `approve N` or `deny N`, or until it expires; the final
//! answer then goes to the requester as an IQ set `<reply>` wrapping what a
//! result would have carried, or an `<error>`.
//!
//! Sending needs the session (outbox and who is online), so the runtime
//! calls [`resolve`] and [`expire`] and sends what they return with
//! [`send_reply`], which keeps a reply in the outbox until the requester
//! is there to take it; the owner's `pending` list needs only the store
//! ([`list`]).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::json;
use tracing::{debug, info, warn};
use xmpp_parsers::minidom::Element;

use super::kept::{Delivery, send_kept};
use super::meetings::{Presence, hold};
use super::peer::{PeerReply, element_text};
use super::runtime::Services;
use crate::audit::{AuditEntry, AuditOutcome};
use crate::chat::render;
use crate::domain::TimeRange;
use crate::error::AgentError;
use crate::negotiate::messages::{
    DeclineReason, Declined, DeferredAnswer, DeferredReply, NegotiationReply, NegotiationRequest,
    deferred_reply_element, parse_negotiation, parse_negotiation_reply,
};
use crate::negotiate::wire::{FreebusyReply, PeerRequest, ProtocolError, RequestId, parse_request};
use crate::policy::{
    Action, Level, Outcome, Request, allowed_window, disclose, evaluate, resolve_peer,
};
use crate::store::{NewPending, OutboxItem, PendingItem, PendingState, ResolveOutcome, Store};
use crate::xmpp::{FullJid, Outbox};

/// A `<reply>` to send to the agent that asked.
#[derive(Debug, Clone)]
pub struct Deferred {
    /// The requester's bare JID.
    pub peer: String,
    /// The whole `<reply>` element.
    pub reply: Element,
}

/// What the owner's `approve N` / `deny N` comes to.
#[derive(Debug, Clone)]
pub struct Resolution {
    /// One line for the owner.
    pub text: String,
    /// The final answer for the requester, when there is one to send.
    pub deferred: Option<Deferred>,
}

/// The owner's `pending`: what waits, oldest first, with when it expires in
/// the owner's zone.
pub async fn list(store: &Store, tz: Tz, now: DateTime<Utc>) -> Result<String, AgentError> {
    let items = store.pending_waiting(now).await?;
    if items.is_empty() {
        return Ok("Nothing waits for your approval.".into());
    }
    let mut lines = vec![format!("Waiting for you ({}):", items.len())];
    for item in &items {
        lines.push(format!(
            "{}. {} (expires {})",
            item.id,
            render::sanitize(&item.description),
            render::instant(item.expires, tz)
        ));
    }
    lines.push("approve N / deny N".into());
    Ok(lines.join("\n"))
}

/// Puts a free/busy question a rule routed to `ask` before the owner, once
/// per (peer, request-id): returns the line to tell the owner, or `None`
/// when the question was already noted (a retry) or already decided.
pub async fn note_freebusy_ask(
    s: &Services,
    peer: &str,
    payload: &Element,
    expires: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<String>, AgentError> {
    let Ok(PeerRequest::Freebusy(q)) = parse_request(payload) else {
        return Ok(None);
    };
    let request_id = q.request_id.to_string();
    let seen = s
        .store
        .pending_waiting(now)
        .await?
        .iter()
        .any(|p| p.peer.eq_ignore_ascii_case(peer) && p.request_id == request_id);
    if seen {
        return Ok(None);
    }
    let tz = s.live.owner_tz();
    let what = match q.window.or_else(|| q.slots.first().copied()) {
        Some(w) => render::time_range(&w, tz),
        None => "the coming days".into(),
    };
    let description = format!(
        "{}'s agent asks when you are free, {what}",
        peer_name(s, peer)
    );
    let n = s
        .store
        .add_pending(
            &NewPending {
                peer: peer.to_string(),
                request_id,
                action: Action::Freebusy.name().into(),
                payload: element_text(payload),
                description: description.clone(),
                expires,
            },
            now,
        )
        .await?;
    // A request already decided comes back with its old number: say nothing.
    match s.store.pending_item(n).await? {
        Some(item) if item.state == PendingState::Waiting => {
            Ok(Some(format!("{description}. approve {n} / deny {n}")))
        }
        _ => Ok(None),
    }
}

/// The owner's `approve N` (`approve` true) or `deny N`: records the answer
/// once, performs an approved request as if the policy had allowed it, and
/// returns the `<reply>` for the requester.
pub async fn resolve(
    s: &Services,
    n: i64,
    approve: bool,
    counter: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Resolution, AgentError> {
    // `approve N due …` counters a task offer; nothing else has a due date.
    if counter.is_some()
        && let Some(item) = s.store.pending_item(n).await?
        && item.action != Action::OfferTask.name()
    {
        return Ok(Resolution {
            text: format!(
                "`due` only answers a task offer with another date; `approve {n}` approves this one."
            ),
            deferred: None,
        });
    }
    match s.store.resolve_pending(n, approve, now).await? {
        ResolveOutcome::Unknown => Ok(Resolution {
            text: format!("There is no request {n} waiting; `pending` lists them."),
            deferred: None,
        }),
        ResolveOutcome::AlreadyClosed(item) => Ok(Resolution {
            text: format!(
                "Request {n} was already {}: {}",
                state_word(item.state),
                render::sanitize(&item.description)
            ),
            deferred: None,
        }),
        ResolveOutcome::Expired(item) => Ok(Resolution {
            text: format!(
                "Too late: request {n} expired; they were told there was no answer ({}).",
                render::sanitize(&item.description)
            ),
            deferred: expired_reply(&item),
        }),
        ResolveOutcome::Resolved(item) if item.state == PendingState::Denied => Ok(Resolution {
            text: format!("Denied {n}: {}", render::sanitize(&item.description)),
            deferred: error_reply(&item, ProtocolError::NotPermitted),
        }),
        ResolveOutcome::Resolved(item) => match counter {
            Some(due) => counter_offer(&item, due, s.live.owner_tz()),
            None => perform(s, &item, now).await,
        },
    }
}

/// `approve N due …` on a task offer: the task is not taken; the offerer
/// hears COUNTER with the date the owner would accept (§13.1), and may offer
/// it again with that date.
fn counter_offer(item: &PendingItem, due: DateTime<Utc>, tz: Tz) -> Result<Resolution, AgentError> {
    let n = item.id;
    let Ok(NegotiationRequest::TaskOffer(offer)) = item
        .payload
        .parse::<Element>()
        .map_err(|_| ())
        .and_then(|el| parse_negotiation(&el).map_err(|_| ()))
    else {
        return Ok(Resolution {
            text: format!("I could not read request {n} again; they were told no."),
            deferred: error_reply(item, ProtocolError::NotPermitted),
        });
    };
    let answer = crate::negotiate::messages::TaskAnswer {
        request_id: offer.request_id.clone(),
        task: offer.task.clone(),
        partstat: crate::negotiate::messages::TaskAnswerPartstat::Counter,
        due: Some(due),
        delegated_to: None,
        reason: None,
    };
    Ok(Resolution {
        text: format!(
            "Countered {n}: {}; you would take it due {}. It is not on your list unless they offer it again.",
            render::sanitize(&item.description),
            render::instant(due, tz)
        ),
        deferred: reply_for(
            item,
            DeferredAnswer::Negotiation(NegotiationReply::TaskAnswer(answer)),
        ),
    })
}

/// When a task is due, from the owner's `due <when>`: that time, or the end
/// of that day in the owner's zone.
pub fn due_instant(w: &crate::chat::When, tz: Tz) -> DateTime<Utc> {
    let range = w.to_utc_range(tz);
    match w.local_start() {
        Some(local) => crate::domain::time::local_to_utc(local, tz),
        None => range.end,
    }
}

/// Marks what ran out by `now` as expired: the "no answer" replies to send
/// and one line per item for the owner.
pub async fn expire(
    store: &Store,
    now: DateTime<Utc>,
) -> Result<Vec<(Option<Deferred>, String)>, AgentError> {
    Ok(store
        .expire_pending(now)
        .await?
        .into_iter()
        .map(|item| {
            let text = format!("Expired: {}", render::sanitize(&item.description));
            (expired_reply(&item), text)
        })
        .collect())
}

/// How long a deferred `<reply>` waits for a requester that is away: the
/// longest a pending item waits for the owner (`ask` expiry).
const REPLY_PATIENCE: chrono::Duration = chrono::Duration::hours(4);

/// What the outbox remembers about a deferred `<reply>` it keeps.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct ReplyPurpose {
    /// The request-id the reply answers.
    reply_to: String,
}

/// Whether an outbox entry is a deferred `<reply>` (see [`send_reply`]).
pub(crate) fn is_reply_item(item: &OutboxItem) -> bool {
    serde_json::from_str::<ReplyPurpose>(&item.purpose).is_ok()
}

/// Sends a `<reply>` to the requester, in the background. It is kept in
/// the outbox first: when the requester is away (or the stream is new and
/// its presence still on the way) it goes out when the requester's
/// presence appears ([`resend_reply`]), for up to [`REPLY_PATIENCE`]. Only
/// that path sends it then, so it is sent once.
pub fn send_reply(s: &Services, outbox: &Outbox, presence: &Presence, d: Deferred) {
    let (s, outbox, presence) = (s.clone(), outbox.clone(), presence.clone());
    tokio::spawn(async move {
        let now = Utc::now();
        let reply_to = d.reply.attr("request-id").unwrap_or_default().to_string();
        let purpose = serde_json::to_string(&ReplyPurpose {
            reply_to: reply_to.clone(),
        })
        .unwrap_or_default();
        let item = OutboxItem::waiting(
            format!("reply:{}:{reply_to}", d.peer),
            d.peer.clone(),
            element_text(&d.reply),
            purpose,
            now,
            now + REPLY_PATIENCE,
        );
        let kept = match s.store.enqueue(&item).await {
            Ok(()) => true,
            Err(e) => {
                warn!(peer = %d.peer, "could not keep a deferred reply for later: {e}");
                false
            }
        };
        // A kept reply goes out when the requester's presence appears (the
        // runtime sends it then); only one that could not be kept waits here
        // for a presence still on its way after a fresh stream.
        let to = match presence.resource_of(&d.peer) {
            Some(full) => Some(full),
            None if kept => None,
            None => presence.settled_resource_of(&d.peer).await,
        };
        match to {
            Some(full) => deliver_reply(&s, &outbox, &item, full, kept).await,
            None if kept => debug!(peer = %d.peer, "the requester is away; its reply waits"),
            None => {
                warn!(peer = %d.peer, "the requester is offline; its deferred reply is dropped")
            }
        }
    });
}

/// Sends a kept `<reply>` again, now that `to` is online.
pub(crate) fn resend_reply(s: &Services, outbox: &Outbox, item: OutboxItem, to: FullJid) {
    let (s, outbox) = (s.clone(), outbox.clone());
    tokio::spawn(async move { deliver_reply(&s, &outbox, &item, to, true).await });
}

/// One sending of a deferred `<reply>` (see [`send_kept`]).
async fn deliver_reply(s: &Services, outbox: &Outbox, item: &OutboxItem, to: FullJid, kept: bool) {
    match send_kept(s, outbox, item, to, kept).await {
        Delivery::Taken | Delivery::Duplicate => {
            debug!(peer = %item.peer, "deferred reply delivered")
        }
        Delivery::Refused => info!(peer = %item.peer, "the requester refused our deferred reply"),
        Delivery::Away => debug!(peer = %item.peer, "the requester is away; its reply waits"),
        Delivery::Lost => {}
    }
}

/// Carries out an approved request and builds its `<reply>`.
async fn perform(
    s: &Services,
    item: &PendingItem,
    now: DateTime<Utc>,
) -> Result<Resolution, AgentError> {
    let n = item.id;
    let description = render::sanitize(&item.description);
    let Ok(payload) = item.payload.parse::<Element>() else {
        warn!(pending = n, "unreadable stored request");
        return Ok(Resolution {
            text: format!(
                "Approved {n}, but I could not read the stored request; they were told no."
            ),
            deferred: error_reply(item, ProtocolError::NotPermitted),
        });
    };
    if item.action == Action::Freebusy.name() {
        return approve_freebusy(s, item, &payload, now).await;
    }
    if item.action == Action::ProposeMeeting.name()
        && let Ok(NegotiationRequest::Hold(h)) = parse_negotiation(&payload)
    {
        // The same path as an allowed hold; the turn's decision carries what
        // a counter-proposal discloses into the log.
        let request = Request {
            peer: item.peer.clone(),
            action: Action::ProposeMeeting,
            window: Some(h.slot),
            duration: Some(h.slot.duration()),
            proposed: vec![h.slot],
            requested_level: None,
        };
        let mut turn = s.gate.turn().await;
        let mut decided = turn.decide(&request, now).await?;
        let (reply, _) = hold(s, &mut turn, &mut decided, &item.peer, &h, now).await?;
        turn.record(decided, None).await?;
        let placed = matches!(&reply, PeerReply::Result(el) if el.name() == "held");
        let what = if placed {
            "hold placed"
        } else {
            "hold not placed"
        };
        log_approved(s, item, Action::ProposeMeeting, None, what, now).await;
        let (answer, text) = match reply {
            PeerReply::Result(el) => match parse_negotiation_reply(&el) {
                Ok(r @ NegotiationReply::Held(_)) => (
                    DeferredAnswer::Negotiation(r),
                    format!("Approved {n}: {description}. The time is held for them."),
                ),
                Ok(r) => (
                    DeferredAnswer::Negotiation(r),
                    format!(
                        "Approved {n}, but that time is no longer free; I told them ({description})."
                    ),
                ),
                Err(e) => {
                    warn!(pending = n, "unreadable hold answer: {e}");
                    (
                        DeferredAnswer::Error(ProtocolError::NotPermitted),
                        format!("Approved {n}, but something went wrong placing it."),
                    )
                }
            },
            PeerReply::Ack => (
                DeferredAnswer::Error(ProtocolError::NotPermitted),
                format!("Approved {n}, but something went wrong placing it."),
            ),
            PeerReply::Error(e) => (
                DeferredAnswer::Error(e),
                format!("Approved {n}, but the hold could not be placed (it had run out)."),
            ),
        };
        return Ok(Resolution {
            text,
            deferred: reply_for(item, answer),
        });
    }
    if item.action == Action::OfferTask.name()
        && let Ok(NegotiationRequest::TaskOffer(offer)) = parse_negotiation(&payload)
    {
        let (answer, _) = super::handoffs::accept_offer(s, &item.peer, &offer, now).await?;
        log_approved(s, item, Action::OfferTask, None, "task accepted", now).await;
        return Ok(Resolution {
            text: format!("Approved {n}: {description}. It is on your task list."),
            deferred: reply_for(
                item,
                DeferredAnswer::Negotiation(NegotiationReply::TaskAnswer(answer)),
            ),
        });
    }
    Ok(Resolution {
        text: format!(
            "Approved {n}, but I cannot carry out a {} request yet; they were told no.",
            render::sanitize(&item.action)
        ),
        deferred: error_reply(item, ProtocolError::NotPermitted),
    })
}

/// A free/busy question approved: answered at the level the rule that asked
/// grants, under the policies in force now, and logged as allowed with the
/// owner's approval. When the policy no longer asks about (nor allows) it,
/// the refusal is sent: the owner's yes cannot widen a rule that is gone.
async fn approve_freebusy(
    s: &Services,
    item: &PendingItem,
    payload: &Element,
    now: DateTime<Utc>,
) -> Result<Resolution, AgentError> {
    let n = item.id;
    let description = render::sanitize(&item.description);
    let q = match parse_request(payload) {
        Ok(PeerRequest::Freebusy(q)) => q,
        Err(e) => {
            warn!(pending = n, "unreadable stored request: {e}");
            return Ok(Resolution {
                text: format!("Approved {n}, but I could not read the stored request."),
                deferred: error_reply(item, ProtocolError::NotPermitted),
            });
        }
    };
    let request = Request {
        peer: item.peer.clone(),
        action: Action::Freebusy,
        window: q.window,
        duration: q.duration,
        proposed: q.slots.clone(),
        requested_level: q.level,
    };
    let set = s.gate.policies();
    let snapshot = s.live.snapshot();
    // The rate was counted when the question came in; it is not counted again.
    let decision = evaluate(&set, &snapshot.contacts, &request, now, &|_| 0);
    if !matches!(decision.outcome, Outcome::Ask { .. } | Outcome::Allow) {
        return Ok(Resolution {
            text: format!(
                "Request {n}: your policy no longer lets them see anything, so they were told no ({description})."
            ),
            deferred: error_reply(item, ProtocolError::NotPermitted),
        });
    }
    let decision = decision.approved();
    let settings = s.gate.settings();
    let disclosure = match allowed_window(&decision, &request, now) {
        Some(window) => {
            let busy = snapshot.index.busy(window)?;
            let instances = if decision.level == Level::Details {
                snapshot.index.instances(window)?
            } else {
                Vec::new()
            };
            let view = crate::policy::CalendarView {
                busy: &busy,
                instances: &instances,
                working_hours: &settings.working_hours,
                owner_tz: settings.owner_tz,
                slot_options: crate::calendar::availability::SlotOptions {
                    duration: request.duration.unwrap_or(settings.slot_options.duration),
                    ..settings.slot_options
                },
            };
            disclose(&decision, &request, &view, now)
        }
        None => crate::policy::Disclosure::Nothing,
    };
    let reply = FreebusyReply::from_disclosure(q.request_id.clone(), decision.level, &disclosure);
    let rule = decision.rule.as_ref().map(|r| r.name.clone());
    let entry = AuditEntry {
        at: now,
        peer: item.peer.to_lowercase(),
        peer_key: resolve_peer(&item.peer, &snapshot.contacts)
            .map(|c| c.jid.clone())
            .unwrap_or_else(|| item.peer.to_lowercase()),
        action: Action::Freebusy.name().into(),
        params: params(&request),
        outcome: AuditOutcome::Allow,
        rule: Some(format!(
            "{} (approved by owner)",
            rule.as_deref().unwrap_or("no rule")
        )),
        level: Some(decision.level.name().to_string()),
        disclosed: disclosure.summary(),
    };
    // Nothing is sent before it is logged (the disclosure log's promise).
    s.store.append_audit(&entry).await?;
    Ok(Resolution {
        text: format!(
            "Approved {n}: {description}. They see it at level {}.",
            decision.level.name()
        ),
        deferred: reply_for(item, DeferredAnswer::Freebusy(reply)),
    })
}

/// Logs an approved non-disclosing action (a hold) as allowed by the owner.
async fn log_approved(
    s: &Services,
    item: &PendingItem,
    action: Action,
    level: Option<Level>,
    disclosed: &str,
    now: DateTime<Utc>,
) {
    let snapshot = s.live.snapshot();
    let set = s.gate.policies();
    let rule = evaluate(
        &set,
        &snapshot.contacts,
        &Request::new(item.peer.clone(), action),
        now,
        &|_| 0,
    )
    .rule
    .map(|r| r.name);
    let entry = AuditEntry {
        at: now,
        peer: item.peer.to_lowercase(),
        peer_key: resolve_peer(&item.peer, &snapshot.contacts)
            .map(|c| c.jid.clone())
            .unwrap_or_else(|| item.peer.to_lowercase()),
        action: action.name().into(),
        params: json!({ "pending": item.id, "request_id": item.request_id }).to_string(),
        outcome: AuditOutcome::Allow,
        rule: Some(format!(
            "{} (approved by owner)",
            rule.as_deref().unwrap_or("no rule")
        )),
        level: level.map(|l| l.name().to_string()),
        disclosed: disclosed.into(),
    };
    if let Err(e) = s.store.append_audit(&entry).await {
        warn!(pending = item.id, "could not log an approval: {e}");
    }
}

/// The request's parameters for the log, as JSON (times in UTC), as the
/// gatekeeper writes them.
fn params(r: &Request) -> String {
    let range = |t: &TimeRange| json!([t.start.to_rfc3339(), t.end.to_rfc3339()]);
    json!({
        "window": r.window.as_ref().map(range),
        "duration": r.duration.map(|d| d.num_seconds()),
        "proposed": r.proposed.iter().map(range).collect::<Vec<_>>(),
        "requested_level": r.requested_level.map(|l| l.name()),
        "approved_by_owner": true,
    })
    .to_string()
}

/// The "no answer" reply of §14: `<declined reason='no-answer'>` for a hold,
/// `<task-answer partstat='DECLINED' reason='no-answer'>` for a task offer,
/// the denial's error for anything else.
fn expired_reply(item: &PendingItem) -> Option<Deferred> {
    if let Ok(NegotiationRequest::TaskOffer(offer)) = item
        .payload
        .parse::<Element>()
        .map_err(|_| ())
        .and_then(|p| parse_negotiation(&p).map_err(|_| ()))
    {
        let answer = super::handoffs::no_answer(&offer);
        return reply_for(
            item,
            DeferredAnswer::Negotiation(NegotiationReply::TaskAnswer(answer)),
        );
    }
    let hold = item
        .payload
        .parse::<Element>()
        .ok()
        .and_then(|p| match parse_negotiation(&p) {
            Ok(NegotiationRequest::Hold(h)) => Some(h),
            _ => None,
        });
    match hold {
        Some(h) => {
            let declined = Declined {
                request_id: h.request_id.clone(),
                meeting: h.meeting.clone(),
                sequence: h.sequence,
                reason: DeclineReason::NoAnswer,
                counter: None,
            };
            reply_for(
                item,
                DeferredAnswer::Negotiation(NegotiationReply::Declined(declined)),
            )
        }
        None => error_reply(item, ProtocolError::NotPermitted),
    }
}

fn error_reply(item: &PendingItem, e: ProtocolError) -> Option<Deferred> {
    reply_for(item, DeferredAnswer::Error(e))
}

fn reply_for(item: &PendingItem, answer: DeferredAnswer) -> Option<Deferred> {
    let request_id = RequestId::parse(&item.request_id).ok()?;
    Some(Deferred {
        peer: item.peer.clone(),
        reply: deferred_reply_element(&DeferredReply { request_id, answer }),
    })
}

fn state_word(state: PendingState) -> &'static str {
    match state {
        PendingState::Waiting => "waiting",
        PendingState::Approved => "approved",
        PendingState::Denied => "denied",
        PendingState::Expired => "expired (no answer was sent in time)",
    }
}

/// How the owner calls the peer agent's owner (or its JID).
fn peer_name(s: &Services, peer: &str) -> String {
    let snapshot = s.live.snapshot();
    resolve_peer(peer, &snapshot.contacts)
        .map(|c| render::sanitize(&c.name))
        .unwrap_or_else(|| render::sanitize(peer))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::negotiate::messages::parse_deferred_reply;
    use crate::negotiate::wire::NS;

    fn item(action: &str, payload: &str) -> PendingItem {
        let at = Utc
            .with_ymd_and_hms(2026, 3, 2, 8, 0, 0)
            .single()
            .unwrap_or_default();
        PendingItem {
            id: 3,
            peer: "alice.agent@example.org".into(),
            request_id: "r1".into(),
            action: action.into(),
            payload: payload.into(),
            description: "Alice's agent proposes Sync".into(),
            created: at,
            expires: at,
            state: PendingState::Expired,
            resolved: Some(at),
        }
    }

    fn answer(d: Option<Deferred>) -> DeferredAnswer {
        let Some(d) = d else {
            panic!("no reply built");
        };
        assert_eq!(d.peer, "alice.agent@example.org");
        match parse_deferred_reply(&d.reply) {
            Ok(r) => {
                assert_eq!(r.request_id.as_str(), "r1");
                r.answer
            }
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn kept_replies_are_told_apart_from_the_other_outbox_entries() {
        let item = |purpose: &str| {
            OutboxItem::waiting(
                "reply:alice.agent@x:r1",
                "alice.agent@x",
                "<reply/>".into(),
                purpose.into(),
                Utc::now(),
                Utc::now(),
            )
        };
        let reply = item(r#"{"reply_to":"r1"}"#);
        assert!(is_reply_item(&reply));
        assert!(!super::super::meetings::is_notice_item(&reply));
        assert!(!super::super::handoffs::is_task_item(&reply));
        for other in [
            r#"{"name":"Bob"}"#,
            r#"{"name":"Bob","meeting":"m1","notice":"release"}"#,
            r#"{"name":"Bob","task":{"id":3,"summary":"Slides","kind":"task-offer"}}"#,
            "not json",
        ] {
            assert!(!is_reply_item(&item(other)), "{other}");
        }
    }

    #[test]
    fn an_expired_hold_is_declined_for_no_answer() {
        let hold = format!(
            "<hold xmlns='{NS}' request-id='r1' meeting='m1@test' sequence='2' \
             start='2026-03-03T09:00:00Z' end='2026-03-03T09:30:00Z' expires='2026-03-02T09:00:00Z'/>"
        );
        match answer(expired_reply(&item("propose-meeting", &hold))) {
            DeferredAnswer::Negotiation(NegotiationReply::Declined(d)) => {
                assert_eq!(d.reason, DeclineReason::NoAnswer);
                assert_eq!((d.meeting.as_str(), d.sequence), ("m1@test", 2));
                assert!(d.counter.is_none());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_expired_question_gets_the_denial() {
        let q = format!("<freebusy xmlns='{NS}' request-id='r1'/>");
        assert_eq!(
            answer(expired_reply(&item("freebusy", &q))),
            DeferredAnswer::Error(ProtocolError::NotPermitted)
        );
        // Even a stored request that no longer reads is answered.
        assert_eq!(
            answer(expired_reply(&item("propose-meeting", "<broken"))),
            DeferredAnswer::Error(ProtocolError::NotPermitted)
        );
    }
}
