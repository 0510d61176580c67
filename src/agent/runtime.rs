//! The running agent: turns XMPP events into work and work into stanzas.
//!
//! Owns the event loop's decisions: who may command (the owner's bare JID
//! only), how peers' requests are answered (through [`answer_peer`]), how
//! the owner's questions reach other agents (persisted in the outbox first,
//! re-sent when the peer's presence appears, given up at a deadline), and
//! whose presence subscriptions are approved (only contacts the policy
//! allows something). It never parses stanzas itself (`xmpp` does) nor
//! decides disclosure (`policy` does).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use super::adhoc::{self, AdHoc, Sessions};
use super::approvals;
use super::meetings::{Negotiator, answer_meeting};
use super::owner::{ASK_DEADLINE, Desk, PeerQuestion};
use super::peer::{PeerReply, answer_peer};
use super::presence::Presence;
use super::{Gatekeeper, Live};
use crate::audit::{AuditEntry, AuditOutcome};
use crate::chat::{self, Command, render};
use crate::negotiate::messages::{DeferredAnswer, parse_deferred_reply};
use crate::negotiate::wire::{NS, ProtocolError, parse_reply, parse_time, request_element};
use crate::policy::{Action, Outcome, Request, evaluate};
use crate::store::{OutboxItem, Store};
use crate::xmpp::{
    BareJid, DefinedCondition, Element, FullJid, Handler, Incoming, IqAnswer, IqKind, Jid, Outbox,
    Outgoing, PresenceKind, XmppError,
};
use crate::xmpp::{
    CommandAction, CommandError, CommandRequest, CommandResponse, CommandStatus, NoteKind,
};

/// How long one attempt at a peer waits for its answer.
pub const IQ_TIMEOUT: StdDuration = StdDuration::from_secs(10);

/// A stranger hears the refusal once per this period, then silence:
/// answering every message would make the agent a reflector.
const REFUSAL_PERIOD: StdDuration = StdDuration::from_secs(3600);

/// How long finished outbox entries, decided approvals and started meeting
/// orders are kept (for late answers and for the CLI) before they go.
const FINISHED_MEMORY: chrono::Duration = chrono::Duration::days(7);

/// What anyone but the owner hears, at most once an hour.
pub const REFUSAL: &str = "Sorry, I am a personal agent and only take commands from my owner.";

/// What the outbox remembers about why a request was sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Purpose {
    /// The contact's name, for the owner's reply.
    name: String,
}

/// Everything the agent's tasks share.
#[derive(Clone)]
pub struct Services {
    pub store: Store,
    pub live: Arc<Live>,
    pub gate: Arc<Gatekeeper>,
    pub owner: BareJid,
    /// The agent's own account.
    pub me: BareJid,
    /// How long disclosure-log entries are kept.
    pub retention: chrono::Duration,
}

/// The [`Handler`] of `attache run`.
pub struct AgentRuntime {
    services: Services,
    me: Option<BareJid>,
    presence: Presence,
    refused: HashMap<BareJid, Instant>,
    /// Runs the owner's meeting negotiations; started with the chores.
    negotiator: Option<Negotiator>,
    /// Ad-hoc command forms waiting for the owner's submission.
    adhoc: Sessions,
}

impl AgentRuntime {
    pub fn new(services: Services) -> Self {
        Self {
            services,
            me: None,
            presence: Presence::default(),
            refused: HashMap::new(),
            negotiator: None,
            adhoc: Sessions::default(),
        }
    }

    /// True when `jid` should hear the refusal now (and notes that it did).
    fn refuse_now(&mut self, jid: BareJid, now: Instant) -> bool {
        self.refused
            .retain(|_, at| now.duration_since(*at) < REFUSAL_PERIOD);
        if self.refused.contains_key(&jid) {
            return false;
        }
        self.refused.insert(jid, now);
        true
    }

    /// Starts the background chores: follow store changes, give up on
    /// overdue questions, forget old replies. Ends with the session.
    pub fn spawn_chores(&mut self, outbox: Outbox) -> tokio::task::JoinHandle<()> {
        let s = self.services.clone();
        let negotiator = Negotiator::spawn(s.clone(), outbox.clone(), self.presence.clone());
        super::handoffs::register(&s.me, outbox.clone(), self.presence.clone());
        self.negotiator = Some(negotiator.clone());
        let presence = self.presence.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(StdDuration::from_millis(500));
            let mut n: u64 = 0;
            loop {
                tick.tick().await;
                n += 1;
                let now = Utc::now();
                if let Err(e) = s.live.refresh(now).await {
                    warn!("could not refresh the calendar view: {e}");
                }
                negotiator.tick().await;
                // `attache meet` waits for this: orders the CLI left.
                if let Err(e) = super::orders::pick_up(&s.store, &negotiator, now).await {
                    warn!("could not pick up meeting orders: {e}");
                }
                if n.is_multiple_of(2)
                    && let Err(e) = s.store.expire_holds(now).await
                {
                    warn!("could not expire holds: {e}");
                }
                if n.is_multiple_of(4) {
                    match approvals::expire(&s.store, now).await {
                        Ok(items) => {
                            for (deferred, text) in items {
                                if let Some(d) = deferred {
                                    approvals::send_reply(&s, &outbox, &presence, d);
                                }
                                tell_owner(&outbox, &s.owner, text).await;
                            }
                        }
                        Err(e) => warn!("could not expire pending approvals: {e}"),
                    }
                    match s.store.expire_due(now).await {
                        Ok(items) => {
                            for item in items {
                                if super::handoffs::is_task_item(&item) {
                                    if let Some(text) = super::handoffs::gave_up(&s, &item).await {
                                        tell_owner(&outbox, &s.owner, text).await;
                                    }
                                    continue;
                                }
                                if approvals::is_reply_item(&item) {
                                    // The requester stayed away past its own
                                    // deadline: the reply means nothing now.
                                    continue;
                                }
                                if super::meetings::is_notice_item(&item) {
                                    // A notice that lapsed: the owner hears of
                                    // their own cancels and declines only.
                                    if let Some(text) = super::meetings::lapsed_note(&item) {
                                        tell_owner(&outbox, &s.owner, text).await;
                                    }
                                    continue;
                                }
                                let name = purpose_name(&item);
                                let text = format!(
                                    "{name}'s agent did not answer (offline?); I stopped asking. Try again later."
                                );
                                tell_owner(&outbox, &s.owner, text).await;
                            }
                        }
                        Err(e) => warn!("could not check the outbox: {e}"),
                    }
                }
                if n.is_multiple_of(7200) {
                    let before = now - super::peer::REPLAY_MEMORY;
                    s.gate.forget_replays(before).await;
                    if let Err(e) = s.store.forget_replies(before).await {
                        warn!("could not forget old replies: {e}");
                    }
                    if let Err(e) = s.store.forget_finished(now - FINISHED_MEMORY).await {
                        warn!("could not forget finished requests: {e}");
                    }
                }
            }
        })
    }

    fn online_resource(&self, agent: &str) -> Option<FullJid> {
        self.presence.resource_of(agent)
    }

    /// Runs one owner command, typed in chat or submitted as a form; its
    /// immediate answers go to `replies`, later ones arrive as chat.
    async fn on_owner_message(&mut self, body: String, replies: &mut Replies, outbox: &Outbox) {
        let now = Utc::now();
        // `approve N` / `deny N` send the requester its final answer (§14).
        let tz = self.services.live.owner_tz();
        let decision = match chat::parse_at(&body, now, tz) {
            Ok(Command::Approve { id, due }) => id
                .number()
                .map(|n| (n, true, due.map(|w| approvals::due_instant(&w, tz)))),
            Ok(Command::Deny { id }) => id.number().map(|n| (n, false, None)),
            _ => None,
        };
        if let Some((n, approve, counter)) = decision {
            let text = match approvals::resolve(&self.services, n, approve, counter, now).await {
                Ok(r) => {
                    if let Some(d) = r.deferred {
                        approvals::send_reply(&self.services, outbox, &self.presence, d);
                    }
                    r.text
                }
                Err(e) => {
                    warn!("approval {n} failed: {e}");
                    format!("Something went wrong on my side: {e}")
                }
            };
            replies.say(outbox, text).await;
            return;
        }
        let desk = Desk {
            store: &self.services.store,
            live: &self.services.live,
            gate: &self.services.gate,
        };
        let outcome = match desk.execute(&body, now).await {
            Ok(o) => o,
            Err(e) => {
                warn!("command failed: {e}");
                super::owner::Outcome {
                    reply: format!("Something went wrong on my side: {e}"),
                    ..Default::default()
                }
            }
        };
        if !outcome.reply.is_empty() {
            replies.say(outbox, outcome.reply).await;
        }
        for agent in outcome.subscribe {
            if let Ok(to) = BareJid::new(&agent) {
                send(
                    outbox,
                    Outgoing::Presence {
                        to,
                        kind: PresenceKind::Subscribe,
                    },
                )
                .await;
            }
        }
        for question in outcome.questions {
            self.ask(question, outbox, now).await;
        }
        for message in outcome.task_messages {
            super::handoffs::dispatch(&self.services, message).await;
        }
        if let Some(order) = outcome.meeting {
            let text = match &self.negotiator {
                Some(n) => {
                    let who = order
                        .attendees
                        .iter()
                        .map(|a| render::sanitize(&a.name))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let title = render::sanitize(&order.summary);
                    match n.start(order, now).await {
                        Ok(short) => format!(
                            "Looking for a time for {title} with {who} (meeting {short}); I'll tell you when it's booked."
                        ),
                        Err(e) => format!("I could not start negotiating: {e}"),
                    }
                }
                None => "I am not connected yet; try again in a moment.".into(),
            };
            replies.say(outbox, text).await;
        }
        if let Some(change) = outcome.change {
            let text = match &self.negotiator {
                Some(n) => n
                    .change(change, now)
                    .await
                    .unwrap_or_else(|e| format!("I could not do that: {e}")),
                None => "I am not connected yet; try again in a moment.".into(),
            };
            if !text.is_empty() {
                replies.say(outbox, text).await;
            }
        }
    }

    /// One step of an ad-hoc command (XEP-0050): hand out its form, or
    /// turn the submitted form into the chat command it stands for and run
    /// that like a chat message, completing with the replies as a note.
    async fn on_command(
        &mut self,
        from: &Jid,
        id: String,
        request: CommandRequest,
        outbox: &Outbox,
    ) -> Outgoing {
        let Some(command) = AdHoc::from_node(&request.node) else {
            return CommandError::UnknownNode.to_outgoing(from.clone(), id);
        };
        let requester = from.to_string();
        let now = Utc::now();
        let answer = |session: String, status: CommandStatus, note: Option<(NoteKind, String)>| {
            Outgoing::CommandResult {
                to: from.clone(),
                id: id.clone(),
                response: CommandResponse {
                    node: request.node.clone(),
                    session,
                    status,
                    note,
                },
            }
        };
        let Some(session) = request.session.clone() else {
            if request.action == CommandAction::Cancel || request.submitted.is_some() {
                return CommandError::BadSession.to_outgoing(from.clone(), id);
            }
            let choices = match adhoc::choices(&self.services, now).await {
                Ok(c) => c,
                Err(e) => {
                    warn!("could not prepare the {} form: {e}", command.node());
                    return answer(
                        format!("{}-none", command.node()),
                        CommandStatus::Completed,
                        Some((
                            NoteKind::Error,
                            format!("Something went wrong on my side: {e}"),
                        )),
                    );
                }
            };
            return match adhoc::form(command, &choices) {
                Ok(form) => {
                    let session =
                        self.adhoc
                            .open(command, &requester, form.clone(), Instant::now());
                    answer(session, CommandStatus::Executing(form), None)
                }
                Err(note) => answer(
                    format!("{}-none", command.node()),
                    CommandStatus::Completed,
                    Some((NoteKind::Info, note)),
                ),
            };
        };
        let Some(form) = self
            .adhoc
            .form(&session, command, &requester, Instant::now())
        else {
            return CommandError::BadSession.to_outgoing(from.clone(), id);
        };
        match request.action {
            CommandAction::Cancel => {
                self.adhoc.close(&session);
                return answer(session, CommandStatus::Canceled, None);
            }
            CommandAction::Prev => return CommandError::BadAction.to_outgoing(from.clone(), id),
            CommandAction::Execute | CommandAction::Next | CommandAction::Complete => {}
        }
        let Some(submitted) = &request.submitted else {
            let note = "Fill in the form and submit it.".to_string();
            return answer(
                session,
                CommandStatus::Executing(form),
                Some((NoteKind::Warn, note)),
            );
        };
        let tz = self.services.live.owner_tz();
        let text = match adhoc::chat_text(command, &form, submitted, now, tz) {
            Ok(text) => text,
            Err(problem) => {
                return answer(
                    session,
                    CommandStatus::Executing(form),
                    Some((NoteKind::Error, problem)),
                );
            }
        };
        self.adhoc.close(&session);
        info!("running the {} form as: {text}", command.node());
        let mut replies = Replies::Collect(Vec::new());
        self.on_owner_message(text, &mut replies, outbox).await;
        let said = match replies {
            Replies::Collect(said) if !said.is_empty() => said.join("\n"),
            // Questions went out; their answers arrive as chat messages.
            _ => "Done; any answer will arrive as a chat message.".to_string(),
        };
        answer(
            session,
            CommandStatus::Completed,
            Some((NoteKind::Info, said)),
        )
    }

    /// Persists the question, then sends it if the peer is online, or says
    /// it will when the peer appears.
    async fn ask(&mut self, q: PeerQuestion, outbox: &Outbox, now: DateTime<Utc>) {
        let s = &self.services;
        let payload = element_text(&request_element(&q.query));
        let purpose = serde_json::to_string(&Purpose {
            name: q.name.clone(),
        })
        .unwrap_or_default();
        let item = OutboxItem::waiting(
            q.query.request_id.to_string(),
            q.agent.clone(),
            payload,
            purpose,
            now,
            now + ASK_DEADLINE,
        );
        if let Err(e) = s.store.enqueue(&item).await {
            tell_owner(
                outbox,
                &s.owner,
                format!("I could not note your question for {}: {e}", q.name),
            )
            .await;
            return;
        }
        match self.online_resource(&q.agent) {
            Some(full) => {
                tokio::spawn(send_waiting(s.clone(), outbox.clone(), item, full));
            }
            None => {
                let until = render::instant(item.deadline, s.live.owner_tz());
                tell_owner(
                    outbox,
                    &s.owner,
                    format!(
                        "{}'s agent is offline; I'll ask as soon as it is back (until {until}).",
                        render::sanitize(&q.name)
                    ),
                )
                .await;
            }
        }
    }

    async fn on_presence(&mut self, from: Jid, kind: PresenceKind, outbox: &Outbox) {
        let bare = from.to_bare();
        match kind {
            PresenceKind::Available => {
                if let Ok(full) = from.clone().try_into_full() {
                    if !self.presence.appeared(full.clone()) {
                        // A presence update of a resource we already see
                        // (servers send several on login): nothing to resend.
                        return;
                    }
                    // Questions that waited for this peer go out now.
                    match self.services.store.waiting_for(&bare.to_string()).await {
                        Ok(items) => {
                            for item in items {
                                if super::handoffs::is_task_item(&item) {
                                    super::handoffs::resend(&self.services, item);
                                    continue;
                                }
                                if super::approvals::is_reply_item(&item) {
                                    super::approvals::resend_reply(
                                        &self.services,
                                        outbox,
                                        item,
                                        full.clone(),
                                    );
                                    continue;
                                }
                                if super::meetings::is_notice_item(&item) {
                                    let to = full.clone();
                                    super::meetings::resend_notice(
                                        &self.services,
                                        outbox,
                                        item,
                                        to,
                                    );
                                    continue;
                                }
                                tokio::spawn(send_waiting(
                                    self.services.clone(),
                                    outbox.clone(),
                                    item,
                                    full.clone(),
                                ));
                            }
                        }
                        Err(e) => warn!("could not read the outbox: {e}"),
                    }
                }
            }
            PresenceKind::Unavailable => match from.try_into_full() {
                Ok(full) => self.presence.left(&full),
                Err(_) => self.presence.gone(&bare),
            },
            PresenceKind::Subscribe => {
                let approve =
                    bare == self.services.owner || self.peer_may_see_presence(&bare).await;
                let answer = if approve {
                    PresenceKind::Subscribed
                } else {
                    PresenceKind::Unsubscribed
                };
                info!(peer = %bare, approved = approve, "presence subscription request");
                send(
                    outbox,
                    Outgoing::Presence {
                        to: bare.clone(),
                        kind: answer,
                    },
                )
                .await;
                if approve {
                    send(
                        outbox,
                        Outgoing::Presence {
                            to: bare,
                            kind: PresenceKind::Subscribe,
                        },
                    )
                    .await;
                }
            }
            PresenceKind::Subscribed | PresenceKind::Unsubscribe | PresenceKind::Unsubscribed => {}
        }
    }

    /// A peer may see the agent's presence when the policy allows (or
    /// would ask about) at least one action for it; the decision is logged
    /// like any other disclosure.
    async fn peer_may_see_presence(&self, peer: &BareJid) -> bool {
        let s = &self.services;
        let now = Utc::now();
        let set = s.gate.policies();
        let snapshot = s.live.snapshot();
        let peer_text = peer.to_string();
        let allowing = Action::ALL.iter().find_map(|action| {
            let d = evaluate(
                &set,
                &snapshot.contacts,
                &Request::new(peer_text.clone(), *action),
                now,
                &|_| 0,
            );
            matches!(d.outcome, Outcome::Allow | Outcome::Ask { .. }).then_some(d)
        });
        let entry = AuditEntry {
            at: now,
            peer: peer_text.clone(),
            peer_key: crate::policy::resolve_peer(&peer_text, &snapshot.contacts)
                .map(|c| c.jid.clone())
                .unwrap_or_else(|| peer_text.clone()),
            action: "presence".into(),
            params: "{}".into(),
            outcome: if allowing.is_some() {
                AuditOutcome::Allow
            } else {
                AuditOutcome::Deny
            },
            rule: allowing
                .as_ref()
                .and_then(|d| d.rule.as_ref().map(|r| r.name.clone())),
            level: None,
            disclosed: if allowing.is_some() {
                "presence subscription approved".into()
            } else {
                "nothing".into()
            },
        };
        if let Err(e) = s.store.append_audit(&entry).await {
            warn!("could not log a presence decision: {e}");
        }
        allowing.is_some()
    }
}

impl Handler for AgentRuntime {
    async fn handle(&mut self, event: Incoming, outbox: &Outbox) {
        match event {
            Incoming::Online { jid, resumed } => {
                self.me = Some(jid.to_bare());
                if !resumed {
                    info!("online as {jid}; owner is {}", self.services.owner);
                    // A fresh stream: the server forgot who was online.
                    self.presence.clear();
                }
            }
            Incoming::Offline => {}
            Incoming::Roster(items) => {
                // See the owner's and every contact agent's presence.
                let mut wanted = vec![self.services.owner.clone()];
                for c in self.services.live.snapshot().contacts.iter() {
                    if let Some(agent) = c.agent_jid.as_deref().and_then(|a| BareJid::new(a).ok()) {
                        wanted.push(agent);
                    }
                }
                for jid in wanted {
                    if !items.iter().any(|i| i.jid == jid && i.sees_or_asked()) {
                        send(
                            outbox,
                            Outgoing::Presence {
                                to: jid,
                                kind: PresenceKind::Subscribe,
                            },
                        )
                        .await;
                    }
                }
            }
            Incoming::Message {
                from, body, thread, ..
            } => {
                let sender = from.to_bare();
                if sender.node().is_none() || self.me.as_ref() == Some(&sender) {
                    // Server notices and our own echoes: nobody to answer.
                } else if sender == self.services.owner {
                    let mut replies = Replies::Chat { to: from, thread };
                    self.on_owner_message(body, &mut replies, outbox).await;
                } else if let Some(n) = &self.negotiator
                    && n.chat_reply(&sender, &body).await
                {
                    // A person without an agent answering our proposal (§15).
                } else if self.refuse_now(sender.clone(), Instant::now()) {
                    info!("refusing a message from {sender}: not the owner");
                    send(
                        outbox,
                        Outgoing::Chat {
                            to: from,
                            body: REFUSAL.into(),
                            thread,
                        },
                    )
                    .await;
                }
            }
            Incoming::Presence { from, kind } => self.on_presence(from, kind, outbox).await,
            Incoming::Command { from, id, request } => {
                // The edge lets only the owner's commands through; checked
                // again here because commanding is this module's to decide.
                let out = if from.to_bare() == self.services.owner {
                    self.on_command(&from, id, request, outbox).await
                } else {
                    CommandError::Forbidden.to_outgoing(from, id)
                };
                send(outbox, out).await;
            }
            Incoming::Iq {
                from,
                id,
                kind,
                payload,
            } => {
                let s = self.services.clone();
                let outbox = outbox.clone();
                let negotiator = self.negotiator.clone();
                tokio::spawn(async move {
                    let out = answer_iq(
                        &s,
                        &from,
                        id,
                        kind,
                        &payload,
                        Some(&outbox),
                        negotiator.as_ref(),
                    )
                    .await;
                    send(&outbox, out).await;
                });
            }
        }
    }
}

/// The answer to one IQ in our namespace.
async fn answer_iq(
    s: &Services,
    from: &Jid,
    id: String,
    kind: IqKind,
    payload: &Element,
    outbox: Option<&Outbox>,
    negotiator: Option<&Negotiator>,
) -> Outgoing {
    let now = Utc::now();
    let peer = from.to_bare().to_string();
    if kind == IqKind::Set && payload.is("reply", NS) {
        return take_late_reply(s, from, id, payload, outbox, negotiator).await;
    }
    let answered = if kind == IqKind::Set {
        match answer_meeting(s, &peer, payload, now).await {
            Ok((reply, notice)) => {
                if let (Some(text), Some(outbox)) = (notice, outbox) {
                    tell_owner(outbox, &s.owner, text).await;
                }
                Ok(reply)
            }
            Err(e) => Err(e),
        }
    } else {
        let answered = answer_peer(&s.gate, &peer, payload, now).await;
        // A question the policy routed to `ask` goes before the owner (§5.3).
        if let Ok(PeerReply::Result(el)) = &answered
            && el.is("pending", NS)
            && let Some(expires) = el.attr("expires").and_then(parse_time)
        {
            match approvals::note_freebusy_ask(s, &peer, payload, expires, now).await {
                Ok(Some(text)) => {
                    if let Some(outbox) = outbox {
                        tell_owner(outbox, &s.owner, text).await;
                    }
                }
                Ok(None) => {}
                Err(e) => warn!(%peer, "could not put a question before the owner: {e}"),
            }
        }
        answered
    };
    match answered {
        Ok(PeerReply::Result(el)) => Outgoing::IqResult {
            to: from.clone(),
            id,
            payload: Some(el),
        },
        Ok(PeerReply::Ack) => Outgoing::IqResult {
            to: from.clone(),
            id,
            payload: None,
        },
        Ok(PeerReply::Error(e)) => protocol_error(from, id, &e),
        Err(e) => {
            warn!(%peer, "could not answer a peer: {e}");
            Outgoing::IqError {
                to: from.clone(),
                id,
                condition: DefinedCondition::InternalServerError,
                text: None,
                app: None,
            }
        }
    }
}

/// A `<reply>` set by a peer whose owner approved an earlier question of
/// ours (§5.3, §14): free/busy answers close the outbox question; answers to
/// our holds go to the negotiator.
async fn take_late_reply(
    s: &Services,
    from: &Jid,
    id: String,
    payload: &Element,
    outbox: Option<&Outbox>,
    negotiator: Option<&Negotiator>,
) -> Outgoing {
    let ack = Outgoing::IqResult {
        to: from.clone(),
        id: id.clone(),
        payload: None,
    };
    let Some(request_id) = payload.attr("request-id") else {
        return protocol_error(
            from,
            id,
            &ProtocolError::Invalid("<reply/> needs a request-id".into()),
        );
    };
    // An answer to one of our task offers (§13, §14).
    if let Some(text) =
        super::handoffs::take_deferred(s, &from.to_bare().to_string(), payload).await
    {
        if let (Some(text), Some(outbox)) = (text, outbox) {
            tell_owner(outbox, &s.owner, text).await;
        }
        return ack;
    }
    let item = match s.store.outbox_item(request_id).await {
        Ok(Some(item)) if item.peer.eq_ignore_ascii_case(&from.to_bare().to_string()) => item,
        Ok(None) => {
            // Not a question of our outbox: perhaps the answer to a hold,
            // which the negotiator matches to its meeting (or drops).
            if let (Some(n), Ok(reply)) = (negotiator, parse_deferred_reply(payload))
                && matches!(
                    reply.answer,
                    DeferredAnswer::Negotiation(_) | DeferredAnswer::Error(_)
                )
            {
                n.late_answer(&from.to_bare(), reply).await;
            }
            return ack;
        }
        // Not from whom we asked, or unreadable: acknowledge and drop (§7).
        _ => return ack,
    };
    let name = render::sanitize(&purpose_name(&item));
    let text = match parse_deferred_reply(payload) {
        Ok(r) => match r.answer {
            DeferredAnswer::Freebusy(_) => {
                match payload.children().find(|c| c.is("freebusy", NS)) {
                    Some(inner) => deliver(s, &item, inner).await,
                    None => None,
                }
            }
            // §14: a denial and an expiry look the same to us.
            DeferredAnswer::Error(ProtocolError::NotPermitted) => {
                complete_with(
                    s,
                    &item,
                    format!(
                        "{name} did not approve your question (declined, or no answer in time)."
                    ),
                )
                .await
            }
            DeferredAnswer::Error(e) => {
                let (_, _, why, _) = e.parts();
                complete_with(
                    s,
                    &item,
                    format!("{name}'s agent could not answer ({why})."),
                )
                .await
            }
            // Meeting answers belong to the negotiator; our outbox only holds
            // free/busy questions.
            DeferredAnswer::Negotiation(_) => None,
        },
        Err(e) => {
            complete_with(
                s,
                &item,
                format!("{name}'s agent answered something I could not read ({e})."),
            )
            .await
        }
    };
    if let (Some(text), Some(outbox)) = (text, outbox) {
        tell_owner(outbox, &s.owner, text).await;
    }
    ack
}

/// Closes an outbox question with `text` for the owner, once.
async fn complete_with(s: &Services, item: &OutboxItem, text: String) -> Option<String> {
    match s.store.complete(&item.request_id, "error").await {
        Ok(true) => Some(text),
        _ => None,
    }
}

/// Records a peer's free/busy answer and tells the owner, once.
async fn deliver(s: &Services, item: &OutboxItem, reply: &Element) -> Option<String> {
    let name = purpose_name(item);
    let text = match parse_reply(reply) {
        Ok(r) if r.request_id.as_str() == item.request_id => render::free_busy(
            &render::sanitize(&name),
            r.level,
            &r.to_disclosure(),
            s.live.owner_tz(),
        ),
        Ok(_) => return None,
        Err(e) => format!("{name}'s agent answered something I could not read ({e})."),
    };
    match s
        .store
        .complete(&item.request_id, &element_text(reply))
        .await
    {
        Ok(true) => Some(text),
        _ => None,
    }
}

/// Sends one waiting question to `to` and reports the outcome to the owner.
async fn send_waiting(s: Services, outbox: Outbox, item: OutboxItem, to: FullJid) {
    let Ok(payload) = item.payload.parse::<Element>() else {
        warn!(request = %item.request_id, "unreadable outbox entry");
        return;
    };
    if let Err(e) = s.store.mark_attempt(&item.request_id).await {
        warn!("outbox: {e}");
    }
    let name = render::sanitize(&purpose_name(&item));
    let text = match outbox
        .query(Some(Jid::from(to)), IqKind::Get, payload, IQ_TIMEOUT)
        .await
    {
        Ok(IqAnswer::Result(Some(el))) if el.is("freebusy", NS) => deliver(&s, &item, &el).await,
        Ok(IqAnswer::Result(Some(el))) if el.is("pending", NS) => {
            // The final answer arrives later as a <reply/>; extend nothing, just tell.
            Some(render::awaiting_owner(&name))
        }
        Ok(IqAnswer::Result(_)) => Some(format!(
            "{name}'s agent answered with nothing I understand."
        )),
        Ok(IqAnswer::Error(e)) => {
            let app = e
                .other
                .as_ref()
                .filter(|o| o.ns() == NS)
                .map(|o| o.name().to_string());
            let text = match app.as_deref() {
                Some("rate-limited") => {
                    let after = e
                        .other
                        .as_ref()
                        .and_then(|o| o.attr("retry-after"))
                        .and_then(|v| v.parse::<i64>().ok())
                        .map(chrono::Duration::seconds);
                    render::rate_limited(&name, after)
                }
                _ if e.defined_condition == DefinedCondition::Forbidden => {
                    render::declined(&name, "not permitted")
                }
                _ => format!(
                    "{name}'s agent could not answer ({:?}).",
                    e.defined_condition
                ),
            };
            match s.store.complete(&item.request_id, "error").await {
                Ok(true) => Some(text),
                _ => None,
            }
        }
        Err(XmppError::IqTimeout { .. }) => {
            debug!(request = %item.request_id, "no answer yet; will retry when the peer reappears");
            None
        }
        Err(e) => {
            debug!(request = %item.request_id, "not sent: {e}");
            None
        }
    };
    if let Some(text) = text {
        tell_owner(&outbox, &s.owner, text).await;
    }
}

fn purpose_name(item: &OutboxItem) -> String {
    serde_json::from_str::<Purpose>(&item.purpose)
        .map(|p| p.name)
        .unwrap_or_else(|_| item.peer.clone())
}

fn protocol_error(to: &Jid, id: String, e: &ProtocolError) -> Outgoing {
    let (_, defined, text, app) = e.parts();
    let condition = match defined {
        "forbidden" => DefinedCondition::Forbidden,
        "resource-constraint" => DefinedCondition::ResourceConstraint,
        "bad-request" => DefinedCondition::BadRequest,
        "not-acceptable" => DefinedCondition::NotAcceptable,
        "conflict" => DefinedCondition::Conflict,
        "item-not-found" => DefinedCondition::ItemNotFound,
        _ => DefinedCondition::FeatureNotImplemented,
    };
    Outgoing::IqError {
        to: to.clone(),
        id,
        condition,
        text: Some(text),
        app,
    }
}

/// Where the immediate answers to an owner command go: the chat it came
/// from, or the note that completes its ad-hoc command.
enum Replies {
    Chat { to: Jid, thread: Option<String> },
    Collect(Vec<String>),
}

impl Replies {
    async fn say(&mut self, outbox: &Outbox, text: String) {
        match self {
            Replies::Chat { to, thread } => {
                send(
                    outbox,
                    Outgoing::Chat {
                        to: to.clone(),
                        body: text,
                        thread: thread.clone(),
                    },
                )
                .await;
            }
            Replies::Collect(said) => said.push(text),
        }
    }
}

pub(crate) async fn tell_owner(outbox: &Outbox, owner: &BareJid, body: String) {
    send(
        outbox,
        Outgoing::Chat {
            to: Jid::from(owner.clone()),
            body,
            thread: None,
        },
    )
    .await;
}

async fn send(outbox: &Outbox, out: Outgoing) {
    if let Err(e) = outbox.send(out).await {
        warn!("could not send: {e}");
    }
}

fn element_text(el: &Element) -> String {
    let mut buf = Vec::new();
    let _ = el.write_to(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}
