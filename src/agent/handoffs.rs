//! Task handoff between agents (docs/protocol.md §13), both sides:
//!
//! - as the **offerer**, the owner's `handoff`, `takeback` and `done` become
//!   [`TaskMessage`]s the runtime hands to [`dispatch`]; answers and pushed
//!   statuses are checked with the pure `negotiate::handoff` machine before
//!   the store takes them, and the owner hears one short line when a task is
//!   accepted, declined or completed;
//! - as the **assignee**, [`answer_task`] answers `<task-offer>`,
//!   `<task-status>` (from our own delegatee) and `<task-cancel>`, under the
//!   owner's `offer-task` policy, and forwards statuses up and cancels down
//!   a delegation chain.
//!
//! Sending needs the session, which the peer-facing path does not carry:
//! the runtime [`register`]s its outbox and presence map once per agent.
//! Every task message is persisted in the store's outbox before it is sent
//! (§7): at once when the peer is online, else when its presence appears
//! ([`resend`]), always with the same request id, until [`TASK_DEADLINE`]
//! ([`gave_up`]).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};
use xmpp_parsers::minidom::Element;

use super::meetings::{Presence, peer_name, rate_limited, remember_and_record};
use super::peer::{PeerReply, element_text};
use super::runtime::{IQ_TIMEOUT, Services, tell_owner};
use super::{Decided, Turn};
use crate::chat::render;
use crate::domain::{Contact, TaskPartStat, TaskStatus};
use crate::error::AgentError;
use crate::negotiate::handoff::{
    Handoff, HandoffError, HandoffState, OwnerNotice, ReportedStatus, StatusReport,
};
use crate::negotiate::messages::{
    self, DeclineReason, DeferredAnswer, NegotiationReply, TaskAnswer, TaskAnswerPartstat,
    TaskCancel, TaskOffer, TaskPartstat, Uid, parse_deferred_reply, parse_negotiation_reply,
};
use crate::negotiate::wire::{ProtocolError, RequestId};
use crate::policy::{Action, Outcome, Request};
use crate::store::{NewPending, OutboxItem, Store, StoredTask, TaskHandoff};
use crate::xmpp::{BareJid, FullJid, IqAnswer, IqKind, Jid, Outbox, XmppError};

type Delivery = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// How long a task message keeps waiting for a peer that is offline.
pub const TASK_DEADLINE: Duration = Duration::days(3);
/// Attempts at one message while the peer is online but does not answer.
const ATTEMPTS: usize = 3;

/// A message about a task for another agent, made by the owner's command.
#[derive(Debug, Clone)]
pub enum TaskMessage {
    /// Offer the owner's task `id` to `agent` (`handoff`). The chain still
    /// lacks this agent, which [`dispatch`] adds when it is not empty.
    Offer {
        id: i64,
        agent: String,
        offer: TaskOffer,
    },
    /// A `<task-status>` or `<task-cancel>` about task `id`, whose answer
    /// changes nothing here.
    Tell {
        id: i64,
        agent: String,
        payload: Element,
    },
}

/// What the outbox remembers about a task message; `name` is what the
/// runtime's own outbox entries carry too.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Purpose {
    /// How the owner calls the peer.
    name: String,
    task: Sent,
}

/// Which task a message was about.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sent {
    /// Our task's short id.
    id: i64,
    summary: String,
    /// The element sent: `task-offer`, `task-status` or `task-cancel`.
    kind: String,
}

/// What an agent sends with: its session and who is online.
#[derive(Clone)]
struct Courier {
    outbox: Outbox,
    presence: Presence,
}

fn couriers() -> &'static Mutex<HashMap<String, Courier>> {
    static COURIERS: OnceLock<Mutex<HashMap<String, Courier>>> = OnceLock::new();
    COURIERS.get_or_init(|| Mutex::new(HashMap::new()))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Makes the session of agent `me` available to task messages; called by
/// the runtime when its chores start (again after a reconnect).
pub fn register(me: &BareJid, outbox: Outbox, presence: Presence) {
    lock(couriers()).insert(me.to_string(), Courier { outbox, presence });
}

fn courier(s: &Services) -> Option<Courier> {
    lock(couriers()).get(&s.me.to_string()).cloned()
}

fn online(c: &Courier, agent: &str) -> Option<FullJid> {
    c.presence.resource_of(agent)
}

fn purpose_of(item: &OutboxItem) -> Option<Purpose> {
    serde_json::from_str(&item.purpose).ok()
}

/// Whether an outbox entry is a task message (sent by this module, not by
/// the runtime's free/busy path).
pub fn is_task_item(item: &OutboxItem) -> bool {
    purpose_of(item).is_some()
}

/// Persists a task message, then sends it if the peer is online. Returns
/// whether it went out now.
async fn send(
    s: &Services,
    agent: String,
    payload: Element,
    id: i64,
    summary: String,
    now: DateTime<Utc>,
) -> Result<bool, AgentError> {
    let purpose = Purpose {
        name: peer_name(s, &agent),
        task: Sent {
            id,
            summary,
            kind: payload.name().to_string(),
        },
    };
    let item = OutboxItem::waiting(
        payload.attr("request-id").unwrap_or_default(),
        agent,
        element_text(&payload),
        serde_json::to_string(&purpose).unwrap_or_default(),
        now,
        now + TASK_DEADLINE,
    );
    s.store.enqueue(&item).await?;
    let Some(c) = courier(s) else {
        return Ok(false);
    };
    if online(&c, &item.peer).is_none() {
        return Ok(false);
    }
    tokio::spawn(deliver(s.clone(), c, item));
    Ok(true)
}

/// Sends a waiting task message again, now that its peer is online.
pub fn resend(s: &Services, item: OutboxItem) {
    if let Some(c) = courier(s) {
        tokio::spawn(deliver(s.clone(), c, item));
    }
}

/// One sending of an outbox entry; an answer is acted on once (the store's
/// `complete` says whether it is the first).
/// (Boxed: answering an offer may send a message of its own, which is
/// delivered by this same function.)
fn deliver(s: Services, c: Courier, item: OutboxItem) -> Delivery {
    Box::pin(async move {
        let (Ok(payload), Some(purpose)) = (item.payload.parse::<Element>(), purpose_of(&item))
        else {
            warn!(request = %item.request_id, "unreadable task message in the outbox");
            return;
        };
        let mut answer = None;
        for _ in 0..ATTEMPTS {
            let Some(full) = online(&c, &item.peer) else {
                return;
            };
            if let Err(e) = s.store.mark_attempt(&item.request_id).await {
                warn!("outbox: {e}");
            }
            match c
                .outbox
                .query(
                    Some(Jid::from(full)),
                    IqKind::Set,
                    payload.clone(),
                    IQ_TIMEOUT,
                )
                .await
            {
                // The server says the peer is gone: not delivered, so it
                // waits for the peer's next presence.
                Ok(IqAnswer::Error(e)) if undelivered(&e) => {
                    debug!(request = %item.request_id, "the peer went offline");
                    return;
                }
                Ok(a) => {
                    answer = Some(a);
                    break;
                }
                Err(XmppError::IqTimeout { .. }) => {
                    debug!(request = %item.request_id, "no answer to a task message yet");
                }
                Err(e) => {
                    debug!(request = %item.request_id, "task message not sent: {e}");
                    return;
                }
            }
        }
        // Still waiting: sent again when the peer's presence next appears.
        let Some(answer) = answer else { return };
        let record = match &answer {
            IqAnswer::Result(Some(el)) => element_text(el),
            IqAnswer::Result(None) => String::new(),
            IqAnswer::Error(_) => "error".into(),
        };
        if !matches!(s.store.complete(&item.request_id, &record).await, Ok(true)) {
            return;
        }
        if purpose.task.kind != "task-offer" {
            match answer {
                IqAnswer::Error(e) => info!(peer = %item.peer, "a task message was refused: {e:?}"),
                IqAnswer::Result(_) => debug!(peer = %item.peer, "task message delivered"),
            }
            return;
        }
        let name = render::sanitize(&purpose.name);
        let answer = match answer {
            IqAnswer::Result(Some(el)) => match parse_negotiation_reply(&el) {
                Ok(NegotiationReply::TaskAnswer(a)) => Ok(a),
                Ok(NegotiationReply::Pending { expires, .. }) => {
                    let text = format!(
                        "{name} is asked about task {} ({}) and has until {} to say yes.",
                        purpose.task.id,
                        render::sanitize(&purpose.task.summary),
                        render::instant(expires, s.live.owner_tz())
                    );
                    tell_owner(&c.outbox, &s.owner, text).await;
                    return;
                }
                _ => Err(ProtocolError::Invalid("an unreadable answer".into())),
            },
            IqAnswer::Result(None) => Err(ProtocolError::Invalid("an empty answer".into())),
            IqAnswer::Error(e) => Err(peer_error(&e)),
        };
        match on_answer(&s, &item.peer, &purpose, answer, Utc::now()).await {
            Ok(Some(text)) => tell_owner(&c.outbox, &s.owner, text).await,
            Ok(None) => {}
            Err(e) => warn!(
                task = purpose.task.id,
                "could not record a task answer: {e}"
            ),
        }
    })
}

/// Persists and sends what the owner's command produced; the owner hears
/// about answers as they come, and at once when the peer is offline.
pub async fn dispatch(s: &Services, message: TaskMessage) {
    let now = Utc::now();
    let (agent, payload, id, summary) = match message {
        TaskMessage::Tell { id, agent, payload } => {
            let summary = match s.store.task_with_handoff(id).await {
                Ok(Some((t, _))) => t.task.summary,
                _ => String::new(),
            };
            (agent, payload, id, summary)
        }
        TaskMessage::Offer {
            id,
            agent,
            mut offer,
        } => {
            if !offer.chain.is_empty() && !offer.chain.contains(&s.me) {
                offer.chain.push(s.me.clone());
            }
            let summary = offer.summary.clone();
            (agent, messages::task_offer_element(&offer), id, summary)
        }
    };
    let offer = payload.name() == "task-offer";
    let name = peer_name(s, &agent);
    let text = match send(s, agent, payload, id, summary.clone(), now).await {
        Ok(true) => None,
        Ok(false) if offer => Some(format!(
            "{name}'s agent is offline; I'll offer task {id} ({}) when it is back.",
            render::sanitize(&summary)
        )),
        Ok(false) => None,
        Err(e) => {
            warn!(task = id, "could not queue a task message: {e}");
            Some(format!("I could not send that to {name}'s agent: {e}"))
        }
    };
    if let (Some(text), Some(c)) = (text, courier(s)) {
        tell_owner(&c.outbox, &s.owner, text).await;
    }
}

/// A task message whose peer stayed offline past [`TASK_DEADLINE`]: an
/// offer falls back to the owner; the line to tell the owner, if any.
pub async fn gave_up(s: &Services, item: &OutboxItem) -> Option<String> {
    let purpose = purpose_of(item)?;
    let name = render::sanitize(&purpose.name);
    let n = purpose.task.id;
    let title = render::sanitize(&purpose.task.summary);
    if purpose.task.kind == "task-offer" {
        let answer = Err(ProtocolError::Unsupported("no answer".into()));
        return match on_answer(s, &item.peer, &purpose, answer, Utc::now()).await {
            Ok(text) => text,
            Err(e) => {
                warn!(task = n, "could not take task {n} back: {e}");
                None
            }
        };
    }
    Some(format!(
        "{name}'s agent stayed offline, so it never heard the news about task {n}{}.",
        if title.is_empty() {
            String::new()
        } else {
            format!(" ({title})")
        }
    ))
}

/// An error the server sends for a recipient that is not there (rather
/// than the peer's own answer, which carries no such condition).
fn undelivered(e: &xmpp_parsers::stanza_error::StanzaError) -> bool {
    use crate::xmpp::DefinedCondition as D;
    e.other.is_none()
        && matches!(
            e.defined_condition,
            D::ServiceUnavailable | D::RecipientUnavailable | D::RemoteServerNotFound
        )
}

fn peer_error(e: &xmpp_parsers::stanza_error::StanzaError) -> ProtocolError {
    let defined = format!("{:?}", e.defined_condition);
    let app = e
        .other
        .as_ref()
        .filter(|o| o.ns() == crate::negotiate::wire::NS);
    match app.map(|a| a.name()) {
        Some("delegation-loop") => ProtocolError::DelegationLoop,
        Some("not-permitted") => ProtocolError::NotPermitted,
        Some("unknown-task") => ProtocolError::UnknownTask,
        _ if e.defined_condition == crate::xmpp::DefinedCondition::Forbidden => {
            ProtocolError::NotPermitted
        }
        _ => ProtocolError::Invalid(defined),
    }
}

/// A `<reply>` (§14) from a peer: `None` when it is not about a task
/// message of ours (the runtime's business), else the line for the owner,
/// if any. Only the first answer to an offer counts.
pub async fn take_deferred(s: &Services, from: &str, payload: &Element) -> Option<Option<String>> {
    let request_id = payload.attr("request-id")?;
    let item = s.store.outbox_item(request_id).await.ok()??;
    let purpose = purpose_of(&item)?;
    if !item.peer.eq_ignore_ascii_case(from) || purpose.task.kind != "task-offer" {
        return Some(None);
    }
    let answer = match parse_deferred_reply(payload) {
        Ok(r) => match r.answer {
            DeferredAnswer::Negotiation(NegotiationReply::TaskAnswer(a)) => Ok(a),
            DeferredAnswer::Error(e) => Err(e),
            _ => Err(ProtocolError::Invalid(
                "an answer that is not about a task".into(),
            )),
        },
        Err(e) => Err(ProtocolError::from(e)),
    };
    // The reply may overtake the <pending> result: close the entry either way.
    let _ = s.store.complete(request_id, "deferred").await;
    match on_answer(s, &item.peer, &purpose, answer, Utc::now()).await {
        Ok(text) => Some(text),
        Err(e) => {
            warn!(
                task = purpose.task.id,
                "could not record a task answer: {e}"
            );
            Some(None)
        }
    }
}

/// Records the answer to our offer and says what it means to the owner.
async fn on_answer(
    s: &Services,
    agent: &str,
    purpose: &Purpose,
    answer: Result<TaskAnswer, ProtocolError>,
    now: DateTime<Utc>,
) -> Result<Option<String>, AgentError> {
    let name = render::sanitize(&purpose.name);
    let title = render::sanitize(&purpose.task.summary);
    let n = purpose.task.id;
    let Some((task, handoff)) = s.store.task_with_handoff(n).await? else {
        return Ok(None);
    };
    // Only the first answer to the offer in force counts.
    let current = handoff
        .assignee_agent
        .as_deref()
        .is_some_and(|a| a.eq_ignore_ascii_case(agent));
    if !current || machine_of(&task, &handoff).state != HandoffState::Offered {
        debug!(task = n, "a late or repeated answer to an offer");
        return Ok(None);
    }
    let report = |status| StatusReport {
        from: agent.to_lowercase(),
        status,
    };
    let a = match answer {
        Ok(a) => a,
        Err(e) => {
            let why = match e {
                ProtocolError::NotPermitted => {
                    format!("{name}'s agent declined task {n} ({title})")
                }
                ProtocolError::DelegationLoop => format!(
                    "{name}'s agent already passed task {n} ({title}) along: it would go in a circle"
                ),
                ProtocolError::Unsupported(m) if m == "no answer" => {
                    format!("{name}'s agent did not answer (offline?) about task {n} ({title})")
                }
                other => format!(
                    "{name}'s agent could not take task {n} ({title}): {}",
                    other.parts().2
                ),
            };
            fall_back(s, &task, agent, now).await?;
            return Ok(Some(format!("{why}; it stays with you.")));
        }
    };
    let status = match a.partstat {
        TaskAnswerPartstat::Accepted => ReportedStatus::Accepted,
        TaskAnswerPartstat::Declined => ReportedStatus::Declined,
        TaskAnswerPartstat::Delegated => ReportedStatus::Delegated {
            to: a
                .delegated_to
                .as_ref()
                .map(|j| j.to_string())
                .unwrap_or_default(),
        },
        TaskAnswerPartstat::Counter => {
            let due = a.due.map(|d| render::instant(d, s.live.owner_tz()));
            fall_back(s, &task, agent, now).await?;
            return Ok(Some(format!(
                "{name} would take task {n} ({title}) if it were due {}; it stays with you until you hand it over again.",
                due.unwrap_or_else(|| "later".into())
            )));
        }
    };
    let mut machine = machine_of(&task, &handoff);
    if let Err(e) = machine.apply(&report(status)) {
        warn!(task = n, "an answer that does not fit: {e}");
        return Ok(None);
    }
    match a.partstat {
        TaskAnswerPartstat::Declined => {
            fall_back(s, &task, agent, now).await?;
            Ok(Some(match a.reason {
                Some(DeclineReason::NoAnswer) => {
                    format!("No answer from {name}: task {n} ({title}) stays with you.")
                }
                _ => format!("{name} declined task {n} ({title}); it stays with you."),
            }))
        }
        _ => {
            s.store
                .record_task_status(
                    &task.task.uid,
                    agent,
                    TaskPartStat::Accepted,
                    None,
                    None,
                    now,
                )
                .await?;
            // A task we got from someone else moved on: tell them (§13.4).
            if let (Some(origin), Some(uid)) = (&handoff.origin_agent, &handoff.origin_uid) {
                match Uid::parse(uid) {
                    Ok(shared) => {
                        let status = messages::TaskStatus {
                            request_id: RequestId::generate(now),
                            task: shared,
                            partstat: TaskPartstat::Delegated,
                            percent: None,
                            due: None,
                            delegated_to: BareJid::new(agent).ok(),
                        };
                        let payload = messages::task_status_element(&status);
                        let summary = task.task.summary.clone();
                        send(s, origin.clone(), payload, n, summary, now).await?;
                    }
                    Err(e) => warn!(task = n, "the origin's task id is unusable: {e}"),
                }
            }
            Ok(Some(format!("{name}'s agent accepted task {n}: {title}.")))
        }
    }
}

/// The offer fell through: the task is the owner's again.
async fn fall_back(
    s: &Services,
    task: &StoredTask,
    agent: &str,
    now: DateTime<Utc>,
) -> Result<(), AgentError> {
    s.store
        .record_task_status(
            &task.task.uid,
            agent,
            TaskPartStat::Declined,
            None,
            None,
            now,
        )
        .await?;
    let mut t = task.task.clone();
    t.delegated_to = None;
    s.store.add_task(&t, now).await?;
    Ok(())
}

/// The offerer-side machine of a stored task.
fn machine_of(task: &StoredTask, h: &TaskHandoff) -> Handoff {
    let assignee = h.assignee_agent.clone().unwrap_or_default();
    let state = match h.remote_partstat {
        None | Some(TaskPartStat::NeedsAction) => HandoffState::Offered,
        Some(TaskPartStat::Accepted) => HandoffState::Accepted,
        Some(TaskPartStat::Declined) => HandoffState::Declined,
        Some(TaskPartStat::InProcess) => HandoffState::InProcess {
            percent: h.remote_percent.unwrap_or(0),
        },
        Some(TaskPartStat::Completed) => HandoffState::Completed,
        Some(TaskPartStat::Delegated) => HandoffState::Delegated {
            to: h.delegatee_agent.clone().unwrap_or_default(),
        },
        Some(TaskPartStat::Cancelled) => HandoffState::Cancelled,
    };
    let mut m = Handoff::offered(task.task.uid.clone(), assignee, None);
    m.delegatee = h.delegatee_agent.clone();
    m.state = state;
    m
}

// ---------------------------------------------------------------------------
// The owner's commands

/// What a task command comes to: the reply now, messages to send.
pub type Command = (String, Vec<TaskMessage>);

fn shared_uid(task: &StoredTask, h: &TaskHandoff) -> String {
    h.origin_uid
        .clone()
        .unwrap_or_else(|| task.task.uid.clone())
}

/// `handoff <id> to <who> [note …]`: offers the task to the contact's agent.
pub async fn handoff(
    store: &Store,
    contacts: &[Contact],
    tz: chrono_tz::Tz,
    n: i64,
    who: &str,
    note: Option<String>,
    now: DateTime<Utc>,
) -> Result<Command, AgentError> {
    let Some(contact) = super::owner::find(contacts, who) else {
        return Ok((
            format!(
                "I don't know '{}': `contacts` lists who I know.",
                render::sanitize(who)
            ),
            Vec::new(),
        ));
    };
    let name = render::sanitize(&contact.name);
    let Some(agent) = contact.agent_jid.clone() else {
        return Ok((
            format!("{name} has no agent I know of, so I cannot hand them a task."),
            Vec::new(),
        ));
    };
    let Some((task, h)) = store.task_with_handoff(n).await? else {
        return Ok((format!("No task {n}: `tasks` lists them."), Vec::new()));
    };
    if !task.task.status.is_open() {
        return Ok((format!("Task {n} is already closed."), Vec::new()));
    }
    if let Some(current) = &h.assignee_agent {
        let m = machine_of(&task, &h);
        if !m.state.is_final() && task.task.delegated_to.is_some() {
            return Ok((
                format!(
                    "Task {n} is already with {}'s agent; `takeback {n}` first.",
                    render::sanitize(
                        super::owner::find(contacts, current)
                            .map(|c| c.name.as_str())
                            .unwrap_or(current)
                    )
                ),
                Vec::new(),
            ));
        }
    }
    let mut chain: Vec<BareJid> = h
        .origin_chain
        .iter()
        .filter_map(|j| BareJid::new(j).ok())
        .collect();
    if let Some(origin) = h.origin_agent.as_deref().and_then(|o| BareJid::new(o).ok())
        && !chain.contains(&origin)
    {
        chain.push(origin);
    }
    let Ok(agent_jid) = BareJid::new(&agent) else {
        return Ok((format!("{name}'s agent address is not valid."), Vec::new()));
    };
    if chain.contains(&agent_jid) {
        return Ok((
            format!(
                "Task {n} came to you through {name}'s agent; handing it back would go in a circle."
            ),
            Vec::new(),
        ));
    }
    let uid = match Uid::parse(&shared_uid(&task, &h)) {
        Ok(u) => u,
        Err(e) => return Ok((format!("Task {n} cannot be handed over: {e}"), Vec::new())),
    };
    let summary: String = task
        .task
        .summary
        .chars()
        .filter(|c| !c.is_control())
        .take(messages::MAX_SUMMARY_CHARS)
        .collect();
    let note = note
        .map(|t| {
            t.chars()
                .filter(|c| !c.is_control())
                .take(messages::MAX_NOTE_CHARS)
                .collect::<String>()
        })
        .filter(|t| !t.trim().is_empty());
    let offer = TaskOffer {
        request_id: RequestId::generate(now),
        task: uid,
        due: task.task.due.map(|d| d.to_utc(tz)),
        summary: if summary.trim().is_empty() {
            "A task".into()
        } else {
            summary
        },
        note,
        chain,
    };
    store.offer_task_to(n, &agent, now).await?;
    Ok((
        String::new(),
        vec![TaskMessage::Offer {
            id: n,
            agent,
            offer,
        }],
    ))
}

/// `takeback <id>`: cancels the handoff and tells the assignee.
pub async fn takeback(
    store: &Store,
    contacts: &[Contact],
    n: i64,
    now: DateTime<Utc>,
) -> Result<Command, AgentError> {
    let Some((task, h)) = store.task_with_handoff(n).await? else {
        return Ok((format!("No task {n}: `tasks` lists them."), Vec::new()));
    };
    let title = render::sanitize(&task.task.summary);
    let Some(assignee) = h.assignee_agent.clone() else {
        return Ok((format!("Task {n} is not handed to anyone."), Vec::new()));
    };
    let uid = match Uid::parse(&shared_uid(&task, &h)) {
        Ok(u) => u,
        Err(e) => return Ok((format!("Task {n} cannot be taken back: {e}"), Vec::new())),
    };
    let mut m = machine_of(&task, &h);
    let to = match m.take_back() {
        Ok(Some(to)) => to,
        Ok(None) => return Ok((format!("Task {n} was already taken back."), Vec::new())),
        Err(HandoffError::Impossible {
            from: "DECLINED", ..
        }) => {
            return Ok((
                format!("Task {n} ({title}) was declined; it is with you already."),
                Vec::new(),
            ));
        }
        Err(_) => {
            return Ok((
                format!("Task {n} ({title}) is already completed; nothing to take back."),
                Vec::new(),
            ));
        }
    };
    store
        .record_task_status(
            &task.task.uid,
            &assignee,
            TaskPartStat::Cancelled,
            None,
            None,
            now,
        )
        .await?;
    let mut t = task.task.clone();
    t.delegated_to = None;
    store.add_task(&t, now).await?;
    let cancel = TaskCancel {
        request_id: RequestId::generate(now),
        task: uid,
    };
    Ok((
        format!(
            "Took back task {n}: {title}. I am telling {}'s agent.",
            render::sanitize(
                super::owner::find(contacts, &to)
                    .map(|c| c.name.as_str())
                    .unwrap_or(&to)
            )
        ),
        vec![TaskMessage::Tell {
            id: n,
            agent: to,
            payload: messages::task_cancel_element(&cancel),
        }],
    ))
}

/// After `done N`: a task handed to us by another agent reports COMPLETED
/// to that agent (§13.2).
pub async fn completed(
    store: &Store,
    n: i64,
    now: DateTime<Utc>,
) -> Result<Vec<TaskMessage>, AgentError> {
    report(store, n, TaskPartstat::Completed, Some(100), now).await
}

/// After `progress N P`: a task handed to us reports IN-PROCESS and how far
/// it is to the agent that offered it (§13.2). Nothing for our own tasks.
pub async fn progressed(
    store: &Store,
    n: i64,
    percent: u8,
    now: DateTime<Utc>,
) -> Result<Vec<TaskMessage>, AgentError> {
    report(store, n, TaskPartstat::InProcess, Some(percent), now).await
}

async fn report(
    store: &Store,
    n: i64,
    partstat: TaskPartstat,
    percent: Option<u8>,
    now: DateTime<Utc>,
) -> Result<Vec<TaskMessage>, AgentError> {
    let Some((_, h)) = store.task_with_handoff(n).await? else {
        return Ok(Vec::new());
    };
    let (Some(origin), Some(uid)) = (h.origin_agent, h.origin_uid) else {
        return Ok(Vec::new());
    };
    let Ok(task) = Uid::parse(&uid) else {
        return Ok(Vec::new());
    };
    let status = messages::TaskStatus {
        request_id: RequestId::generate(now),
        task,
        partstat,
        percent,
        due: None,
        delegated_to: None,
    };
    Ok(vec![TaskMessage::Tell {
        id: n,
        agent: origin,
        payload: messages::task_status_element(&status),
    }])
}

// ---------------------------------------------------------------------------
// Assignee side

/// What the owner should be told after answering a peer (at most one line).
pub type Notice = Option<String>;

/// Answers a `<task-offer>`, `<task-status>` or `<task-cancel>` from `peer`
/// (already parsed, replay already checked by the caller).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn answer_task(
    s: &Services,
    mut turn: Turn<'_>,
    peer: &str,
    id: &RequestId,
    digest: &str,
    payload: &Element,
    request: messages::NegotiationRequest,
    now: DateTime<Utc>,
) -> Result<(PeerReply, Notice), AgentError> {
    use messages::NegotiationRequest as R;
    match request {
        R::TaskOffer(offer) => {
            if let Err(e) = offer.check_not_in_chain(&s.me) {
                return Ok((PeerReply::Error(e), None));
            }
            let decided = turn
                .decide(&Request::new(peer, Action::OfferTask), now)
                .await?;
            let (reply, notice) = decide_offer(s, &decided, peer, payload, &offer, now).await?;
            remember_and_record(turn, decided, peer, id, digest, &reply).await?;
            Ok((reply, notice))
        }
        R::TaskStatus(st) => {
            drop(turn);
            status_from_delegatee(s, peer, &st, now).await
        }
        R::TaskCancel(c) => {
            drop(turn);
            cancel_from_origin(s, peer, &c, now).await
        }
        _ => Ok((
            PeerReply::Error(ProtocolError::Unsupported("not a task message".into())),
            None,
        )),
    }
}

async fn decide_offer(
    s: &Services,
    decided: &Decided,
    peer: &str,
    payload: &Element,
    offer: &TaskOffer,
    now: DateTime<Utc>,
) -> Result<(PeerReply, Notice), AgentError> {
    let name = peer_name(s, peer);
    Ok(match decided.decision.outcome {
        Outcome::Allow => {
            let (answer, text) = accept_offer(s, peer, offer, now).await?;
            (
                PeerReply::Result(messages::task_answer_element(&answer)),
                text,
            )
        }
        Outcome::Ask { expires } => {
            let description = format!(
                "{name}'s agent offers you a task: {}{}",
                render::sanitize(&offer.summary),
                offer
                    .note
                    .as_deref()
                    .map(|n| format!(" (note: {})", render::sanitize(n)))
                    .unwrap_or_default()
            );
            let n = s
                .store
                .add_pending(
                    &NewPending {
                        peer: peer.to_string(),
                        request_id: offer.request_id.to_string(),
                        action: Action::OfferTask.name().into(),
                        payload: element_text(payload),
                        description: description.clone(),
                        expires,
                    },
                    now,
                )
                .await?;
            let reply = NegotiationReply::Pending {
                request_id: offer.request_id.clone(),
                expires,
            };
            (
                PeerReply::Result(messages::negotiation_reply_element(&reply)),
                Some(format!("{description}. approve {n} / deny {n}")),
            )
        }
        Outcome::Deny => (PeerReply::Error(ProtocolError::NotPermitted), None),
        Outcome::RateLimited => (PeerReply::Error(rate_limited(decided)), None),
    })
}

/// Puts an offered task on the owner's list (allowed, or approved by the
/// owner): the ACCEPTED answer and, the first time, a line for the owner.
pub(crate) async fn accept_offer(
    s: &Services,
    peer: &str,
    offer: &TaskOffer,
    now: DateTime<Utc>,
) -> Result<(TaskAnswer, Notice), AgentError> {
    let stored = crate::store::TaskOffer {
        origin_agent: peer.to_lowercase(),
        origin_uid: offer.task.to_string(),
        summary: offer.summary.clone(),
        note: offer.note.clone(),
        due: offer.due,
        chain: offer.chain.iter().map(|j| j.to_string()).collect(),
    };
    let (mut task, made) = s.store.task_from_offer(&stored, now).await?;
    // Taken back earlier and offered again: it is open again.
    let reopened = !made && task.task.status == TaskStatus::Cancelled;
    if reopened {
        task = s
            .store
            .set_task_progress(task.id, TaskStatus::NeedsAction, None, now)
            .await?;
    }
    let answer = TaskAnswer {
        request_id: offer.request_id.clone(),
        task: offer.task.clone(),
        partstat: TaskAnswerPartstat::Accepted,
        due: None,
        delegated_to: None,
        reason: None,
    };
    let text = (made || reopened).then(|| {
        format!(
            "{} task {} from {}: {}",
            if made { "New" } else { "Back again:" },
            task.id,
            peer_name(s, peer),
            render::sanitize(&task.task.summary)
        )
    });
    Ok((answer, text))
}

/// The DECLINED answer of an offer the owner let expire (§14).
pub(crate) fn no_answer(offer: &TaskOffer) -> TaskAnswer {
    TaskAnswer {
        request_id: offer.request_id.clone(),
        task: offer.task.clone(),
        partstat: TaskAnswerPartstat::Declined,
        due: None,
        delegated_to: None,
        reason: Some(DeclineReason::NoAnswer),
    }
}

/// Our task (one we made, or one we got and passed on) that `peer` holds,
/// by the UID shared along the chain.
async fn offered_to(
    store: &Store,
    peer: &str,
    uid: &str,
) -> Result<Option<(StoredTask, TaskHandoff)>, AgentError> {
    let holds = |h: &TaskHandoff| {
        h.assignee_agent
            .as_deref()
            .is_some_and(|a| a.eq_ignore_ascii_case(peer))
    };
    if let Some((t, h)) = store.task_by_uid(uid).await?
        && h.origin_uid.is_none()
    {
        return Ok(Some((t, h)));
    }
    for t in store.tasks(true).await? {
        if let Some((t, h)) = store.task_with_handoff(t.id).await?
            && h.origin_uid.as_deref() == Some(uid)
            && holds(&h)
        {
            return Ok(Some((t, h)));
        }
    }
    Ok(None)
}

/// A status about a task we handed to `peer` (§13.2): checked against the
/// handoff machine, stored, forwarded up the chain, and told to the owner
/// when it completes or falls through.
async fn status_from_delegatee(
    s: &Services,
    peer: &str,
    st: &messages::TaskStatus,
    now: DateTime<Utc>,
) -> Result<(PeerReply, Notice), AgentError> {
    let Some((task, h)) = offered_to(&s.store, peer, st.task.as_str())
        .await?
        .filter(|(_, h)| h.assignee_agent.is_some())
    else {
        return Ok((PeerReply::Error(ProtocolError::UnknownTask), None));
    };
    let delegated_to = st.delegated_to.as_ref().map(|j| j.to_string());
    let status = match ReportedStatus::from_wire(
        st.partstat.name(),
        st.percent,
        st.due,
        delegated_to.as_deref(),
    ) {
        Ok(r) => r,
        Err(e) => {
            return Ok((
                PeerReply::Error(ProtocolError::Invalid(e.to_string())),
                None,
            ));
        }
    };
    let mut machine = machine_of(&task, &h);
    let before = machine.state.clone();
    let notice = match machine.apply(&StatusReport {
        from: peer.to_lowercase(),
        status,
    }) {
        Ok(n) => n,
        Err(HandoffError::NotAssignee { .. }) => {
            return Ok((PeerReply::Error(ProtocolError::NotPermitted), None));
        }
        Err(e) => {
            return Ok((
                PeerReply::Error(ProtocolError::Invalid(e.to_string())),
                None,
            ));
        }
    };
    if machine.state == before {
        // A retry: already recorded and passed on.
        return Ok((PeerReply::Ack, None));
    }
    let Some(partstat) = TaskPartStat::from_ical(st.partstat.name()) else {
        return Ok((
            PeerReply::Error(ProtocolError::Invalid("partstat".into())),
            None,
        ));
    };
    s.store
        .record_task_status(
            &task.task.uid,
            peer,
            partstat,
            st.percent,
            delegated_to.as_deref(),
            now,
        )
        .await?;
    // Passed on to us: the agent we got it from hears it too, from us.
    if let (Some(origin), Some(_)) = (&h.origin_agent, &h.origin_uid)
        && !matches!(
            st.partstat,
            TaskPartstat::Declined | TaskPartstat::NeedsAction
        )
    {
        let up = messages::TaskStatus {
            request_id: RequestId::generate(now),
            ..st.clone()
        };
        let payload = messages::task_status_element(&up);
        let summary = task.task.summary.clone();
        send(s, origin.clone(), payload, task.id, summary, now).await?;
    }
    let title = render::sanitize(&task.task.summary);
    let text = notice.map(|n| match n {
        OwnerNotice::Completed { by, .. } => format!("{} completed: {title}", peer_name(s, &by)),
        OwnerNotice::Declined { by, .. } => format!(
            "{} gave back task {} ({title}); it is with you again.",
            peer_name(s, &by),
            task.id
        ),
        OwnerNotice::Countered { by, due, .. } => format!(
            "{} would do task {} ({title}) by {}.",
            peer_name(s, &by),
            task.id,
            render::instant(due, s.live.owner_tz())
        ),
    });
    Ok((PeerReply::Ack, text))
}

/// The agent that gave us a task takes it back (§13.3).
async fn cancel_from_origin(
    s: &Services,
    peer: &str,
    c: &TaskCancel,
    now: DateTime<Utc>,
) -> Result<(PeerReply, Notice), AgentError> {
    let Some((task, h)) = s
        .store
        .task_by_origin(&peer.to_lowercase(), c.task.as_str())
        .await?
    else {
        return Ok((PeerReply::Error(ProtocolError::UnknownTask), None));
    };
    if task.task.status == TaskStatus::Cancelled {
        return Ok((PeerReply::Ack, None));
    }
    s.store
        .set_task_progress(task.id, TaskStatus::Cancelled, None, now)
        .await?;
    // Passed on: the cancel travels on, hop by hop.
    if let Some(next) = &h.assignee_agent {
        let mut m = machine_of(&task, &h);
        if let Ok(Some(to)) = m.take_back() {
            s.store
                .record_task_status(
                    &task.task.uid,
                    next,
                    TaskPartStat::Cancelled,
                    None,
                    None,
                    now,
                )
                .await?;
            let on = TaskCancel {
                request_id: RequestId::generate(now),
                task: c.task.clone(),
            };
            let payload = messages::task_cancel_element(&on);
            let summary = task.task.summary.clone();
            send(s, to, payload, task.id, summary, now).await?;
        }
    }
    let text = format!(
        "{} took back task {}: {}",
        peer_name(s, peer),
        task.id,
        render::sanitize(&task.task.summary)
    );
    Ok((PeerReply::Ack, Some(text)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Task;

    fn stored() -> StoredTask {
        StoredTask {
            id: 3,
            task: Task::new("Send slides", None, Utc::now()),
        }
    }

    #[test]
    fn the_machine_starts_where_the_store_left_the_handoff() {
        let all = [
            TaskPartStat::NeedsAction,
            TaskPartStat::Accepted,
            TaskPartStat::Declined,
            TaskPartStat::InProcess,
            TaskPartStat::Completed,
            TaskPartStat::Delegated,
            TaskPartStat::Cancelled,
        ];
        for p in all {
            let h = TaskHandoff {
                assignee_agent: Some("dana.agent@example.org".into()),
                remote_partstat: Some(p),
                remote_percent: Some(40),
                delegatee_agent: Some("erin.agent@example.org".into()),
                ..TaskHandoff::default()
            };
            let m = machine_of(&stored(), &h);
            assert_eq!(m.state.name(), p.as_ical());
            assert_eq!(m.assignee, "dana.agent@example.org");
            assert_eq!(m.delegatee.as_deref(), Some("erin.agent@example.org"));
        }
        let fresh = machine_of(&stored(), &TaskHandoff::default());
        assert_eq!(fresh.state, HandoffState::Offered);
        // Nobody was offered the task: nobody may report on it.
        let mut fresh = fresh;
        let report = StatusReport {
            from: "mallory.agent@example.org".into(),
            status: ReportedStatus::Completed,
        };
        assert!(matches!(
            fresh.apply(&report),
            Err(HandoffError::NotAssignee { .. })
        ));
    }

    #[test]
    fn only_task_messages_are_task_items() {
        let item = |purpose: &str| OutboxItem {
            request_id: "r1".into(),
            peer: "dana.agent@example.org".into(),
            payload: "<task-status/>".into(),
            purpose: purpose.into(),
            created: Utc::now(),
            deadline: Utc::now(),
            attempts: 0,
            state: "waiting".into(),
            reply: None,
        };
        // What the runtime writes for a free/busy question.
        assert!(!is_task_item(&item(r#"{"name":"Dana"}"#)));
        assert!(!is_task_item(&item("not json")));
        let purpose = Purpose {
            name: "Dana".into(),
            task: Sent {
                id: 3,
                summary: "Send slides".into(),
                kind: "task-offer".into(),
            },
        };
        let text = serde_json::to_string(&purpose).unwrap_or_default();
        assert!(is_task_item(&item(&text)));
        // The runtime still finds the name it shows.
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(v["name"], "Dana");
    }
}
