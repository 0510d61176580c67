//! The one place where a peer's request becomes a decision, a disclosure and
//! a disclosure-log entry — in that order, under one lock (a [`Turn`]), so
//! that two concurrent requests from one peer cannot both slip under its
//! rate limit, and a repeated request cannot be decided twice.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::json;
use tokio::sync::{Mutex, MutexGuard, watch};

use super::Live;
use super::books::{RateBook, ReplayIndex};
use super::peer::REPLAY_MEMORY;
use crate::audit::{AuditEntry, AuditOutcome};
use crate::calendar::availability::{SlotOptions, WorkingHours};
use crate::domain::TimeRange;
use crate::error::AgentError;
use crate::policy::{
    Action, CalendarView, Decision, Disclosure, Level, Outcome, PolicySet, Request, allowed_window,
    disclose, evaluate, resolve_peer,
};
use crate::store::{ReplayRecord, Store};

/// The owner's calendar settings a disclosure needs.
#[derive(Debug, Clone)]
pub struct CalendarSettings {
    pub owner_tz: Tz,
    pub working_hours: WorkingHours,
    pub slot_options: SlotOptions,
}

/// What the peer is answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub decision: Decision,
    pub disclosure: Disclosure,
    /// The disclosure log entry number.
    pub logged_as: i64,
}

/// Decides peers' requests under the live policy set and logs every decision.
pub struct Gatekeeper {
    store: Store,
    live: Arc<Live>,
    policies: watch::Receiver<Arc<PolicySet>>,
    settings: CalendarSettings,
    /// Held from looking up a request and reading the peer's rate count to
    /// logging the decision: one request at a time is decided.
    books: Mutex<Books>,
}

/// The in-memory caches of the store the hot path reads (see `books`).
#[derive(Default)]
struct Books {
    rates: RateBook,
    /// Loaded on first use.
    replay: Option<ReplayIndex>,
    /// Replies decided but perhaps not yet committed, by (peer, request id):
    /// the turn ends before the commit (so that decisions made meanwhile are
    /// committed together), and a replay that arrives in between must get
    /// this reply once it is committed — not a second decision.
    in_flight: HashMap<(String, String), InFlight>,
}

struct InFlight {
    digest: String,
    reply: String,
    /// `Some(true)` once committed, `Some(false)` if the write failed.
    committed: watch::Receiver<Option<bool>>,
}

/// One request's turn at the gatekeeper: while it lives, no other request
/// is looked up, decided or logged.
pub struct Turn<'a> {
    gate: &'a Gatekeeper,
    books: MutexGuard<'a, Books>,
}

/// A decision not yet logged: [`Turn::record`] logs it.
pub struct Decided {
    pub decision: Decision,
    pub disclosure: Disclosure,
    entry: AuditEntry,
}

impl Decided {
    /// Adds `what` to what the log says was disclosed, for answers that tell
    /// the peer more than the decision's own disclosure (a meeting's
    /// counter-proposal, §12.2): the log must account for every slot shown.
    pub fn also_disclosed(&mut self, what: &str) {
        if self.entry.disclosed == Disclosure::Nothing.summary() {
            self.entry.disclosed = what.to_string();
        } else {
            self.entry.disclosed = format!("{}; {what}", self.entry.disclosed);
        }
    }
}

impl Gatekeeper {
    pub fn new(
        store: Store,
        live: Arc<Live>,
        policies: watch::Receiver<Arc<PolicySet>>,
        settings: CalendarSettings,
    ) -> Self {
        Self {
            store,
            live,
            policies,
            settings,
            books: Mutex::new(Books::default()),
        }
    }

    /// Waits for this request's turn.
    pub async fn turn(&self) -> Turn<'_> {
        Turn {
            gate: self,
            books: self.books.lock().await,
        }
    }

    /// Answers a free/busy (or any other) request at `now`: decides it under
    /// the current policies and the peer's rate count, computes exactly what
    /// may be disclosed, and appends the decision to the log.
    pub async fn answer(
        &self,
        request: &Request,
        now: DateTime<Utc>,
    ) -> Result<Answer, AgentError> {
        let mut turn = self.turn().await;
        let decided = turn.decide(request, now).await?;
        turn.record(decided, None).await
    }

    /// Forgets replay keys older than `before` (the store's replies are
    /// forgotten by the caller).
    pub async fn forget_replays(&self, before: DateTime<Utc>) {
        if let Some(index) = self.books.lock().await.replay.as_mut() {
            index.forget(before);
        }
    }
}

impl Turn<'_> {
    /// The reply remembered for `(peer, request_id)` as `(digest, reply)`.
    /// Costs no database read when nothing is remembered (the usual case).
    pub async fn recall(
        &mut self,
        peer: &str,
        request_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(String, String)>, AgentError> {
        let store = &self.gate.store;
        let key = (peer.to_owned(), request_id.to_owned());
        if let Some(f) = self.books.in_flight.get(&key) {
            let (digest, reply) = (f.digest.clone(), f.reply.clone());
            let mut committed = f.committed.clone();
            // The first copy is being written right now: wait for it (a
            // batch write, milliseconds) rather than decide it again.
            let ok = match committed.wait_for(Option::is_some).await {
                Ok(state) => *state == Some(true),
                Err(_) => false,
            };
            if ok {
                return Ok(Some((digest, reply)));
            }
            // Never written: the first asker got an error; decide afresh.
            self.books.in_flight.remove(&key);
            return Ok(None);
        }
        if self.books.replay.is_none() {
            let index = ReplayIndex::load(store, now - REPLAY_MEMORY).await?;
            self.books.replay = Some(index);
        }
        let maybe = self
            .books
            .replay
            .as_ref()
            .is_some_and(|i| i.may_contain(peer, request_id));
        if !maybe {
            return Ok(None);
        }
        Ok(store.recall_reply(peer, request_id).await?)
    }

    /// Decides `request` at `now` under the current policies and the peer's
    /// rate count, and computes exactly what may be disclosed. Logs nothing
    /// yet: nothing may be sent before [`Turn::record`].
    pub async fn decide(
        &mut self,
        request: &Request,
        now: DateTime<Utc>,
    ) -> Result<Decided, AgentError> {
        let gate = self.gate;
        let set = gate.policies.borrow().clone();
        let snapshot = gate.live.snapshot();
        let contacts = &snapshot.contacts;
        let peer_key = resolve_peer(&request.peer, contacts)
            .map(|c| c.jid.clone())
            .unwrap_or_else(|| request.peer.trim().to_lowercase());

        // Which rule decides does not depend on the rate count; count the
        // peer's requests only over that rule's period.
        let first = evaluate(&set, contacts, request, now, &|_| 0);
        let decision = match first.rule.as_ref().and_then(|r| set.rule(&r.name)) {
            Some(rule) => {
                let (_, period) = rule.rate();
                let answered = self
                    .books
                    .rates
                    .count(&gate.store, &peer_key, now - period)
                    .await?;
                evaluate(&set, contacts, request, now, &|_| answered)
            }
            None => first,
        };

        let disclosure = match allowed_window(&decision, request, now) {
            Some(window) if decision.outcome == Outcome::Allow => {
                let (busy, instances) = calendar_in(&snapshot, window, decision.level)?;
                let view = gate.view(&busy, &instances, request);
                disclose(&decision, request, &view, now)
            }
            _ => Disclosure::Nothing,
        };

        let entry = AuditEntry {
            at: now,
            peer: request.peer.trim().to_lowercase(),
            peer_key,
            action: request.action.name().to_string(),
            params: request_params(request),
            outcome: match decision.outcome {
                Outcome::Allow => AuditOutcome::Allow,
                Outcome::Deny => AuditOutcome::Deny,
                Outcome::Ask { .. } => AuditOutcome::Ask,
                Outcome::RateLimited => AuditOutcome::RateLimited,
            },
            rule: decision.rule.as_ref().map(|r| r.name.clone()),
            // Levels are free/busy's; other actions have none to report.
            level: (decision.outcome == Outcome::Allow && request.action == Action::Freebusy)
                .then(|| decision.level.name().to_string()),
            disclosed: disclosure.summary(),
        };
        Ok(Decided {
            decision,
            disclosure,
            entry,
        })
    }

    /// Logs the decision and, when given, remembers the reply for replay —
    /// in one write — and ends the turn. The turn ends when the decision is
    /// queued for the log, so the next request is decided while this one is
    /// written; this call returns only once it is committed: nothing may be
    /// sent before.
    pub async fn record(
        self,
        decided: Decided,
        replay: Option<ReplayRecord<'_>>,
    ) -> Result<Answer, AgentError> {
        let Turn { gate, mut books } = self;
        let committed = gate.store.submit_decision(&decided.entry, replay).await;
        // Counted from now on: a decision being written already counts
        // against the rate (if the write fails, the count errs on the strict side).
        if decided.entry.outcome != AuditOutcome::RateLimited {
            books.rates.note(&decided.entry.peer_key, decided.entry.at);
        }
        let mut done = None;
        if let Some(r) = replay {
            if let Some(index) = books.replay.as_mut() {
                index.insert(r.peer, r.request_id, decided.entry.at);
            }
            books
                .in_flight
                .retain(|_, f| f.committed.borrow().is_none());
            let (tx, rx) = watch::channel(None);
            books.in_flight.insert(
                (r.peer.to_owned(), r.request_id.to_owned()),
                InFlight {
                    digest: r.digest.to_owned(),
                    reply: r.reply.to_owned(),
                    committed: rx,
                },
            );
            done = Some(tx);
        }
        drop(books);
        let logged = committed.wait().await;
        if let Some(done) = done {
            let _ = done.send(Some(logged.is_ok()));
        }
        Ok(Answer {
            decision: decided.decision,
            disclosure: decided.disclosure,
            logged_as: logged?,
        })
    }
}

/// The request's parameters for the log, as JSON (times in UTC).
fn request_params(r: &Request) -> String {
    let range = |t: &TimeRange| json!([t.start.to_rfc3339(), t.end.to_rfc3339()]);
    json!({
        "window": r.window.as_ref().map(range),
        "duration": r.duration.map(|d| d.num_seconds()),
        "proposed": r.proposed.iter().map(range).collect::<Vec<_>>(),
        "requested_level": r.requested_level.map(|l| l.name()),
    })
    .to_string()
}

impl Gatekeeper {
    /// Which rule would decide `action` from `peer` now, and exactly what it
    /// would disclose (the owner's `why`). Decides nothing and logs nothing.
    pub async fn explain(
        &self,
        peer: &str,
        action: crate::policy::Action,
        now: DateTime<Utc>,
    ) -> Result<crate::policy::Explanation, AgentError> {
        let set = self.policies.borrow().clone();
        let snapshot = self.live.snapshot();
        let contacts = &snapshot.contacts;
        let request = Request::new(peer, action);
        let key = resolve_peer(peer, contacts)
            .map(|c| c.jid.clone())
            .unwrap_or_else(|| peer.trim().to_lowercase());
        let first = evaluate(&set, contacts, &request, now, &|_| 0);
        let answered = match first.rule.as_ref().and_then(|r| set.rule(&r.name)) {
            Some(rule) => self.store.answered_since(&key, now - rule.rate().1).await?,
            None => 0,
        };
        let history = |_| answered;
        let plain = crate::policy::explain(&request, &set, contacts, now, &history, None);
        let Some(window) = allowed_window(&plain.decision, &request, now) else {
            return Ok(plain);
        };
        let (busy, instances) = calendar_in(&snapshot, window, plain.decision.level)?;
        let view = self.view(&busy, &instances, &request);
        Ok(crate::policy::explain(
            &request,
            &set,
            contacts,
            now,
            &history,
            Some(&view),
        ))
    }

    /// What a disclosure may read of the calendar, with the request's meeting length.
    fn view<'a>(
        &'a self,
        busy: &'a [crate::domain::BusyInterval],
        instances: &'a [crate::domain::Instance],
        request: &Request,
    ) -> CalendarView<'a> {
        CalendarView {
            busy,
            instances,
            working_hours: &self.settings.working_hours,
            owner_tz: self.settings.owner_tz,
            slot_options: SlotOptions {
                duration: request
                    .duration
                    .unwrap_or(self.settings.slot_options.duration),
                ..self.settings.slot_options
            },
        }
    }

    /// The owner's calendar settings (zone, working hours, slot rules).
    pub fn settings(&self) -> &CalendarSettings {
        &self.settings
    }

    /// The policy set in force.
    pub fn policies(&self) -> Arc<PolicySet> {
        self.policies.borrow().clone()
    }
}

/// Busy time in `window`, and the instances too when titles may be shown.
fn calendar_in(
    snapshot: &super::Snapshot,
    window: TimeRange,
    level: Level,
) -> Result<
    (
        Vec<crate::domain::BusyInterval>,
        Vec<crate::domain::Instance>,
    ),
    AgentError,
> {
    let busy = snapshot.index.busy(window)?;
    let instances = if level == Level::Details {
        snapshot.index.instances(window)?
    } else {
        Vec::new()
    };
    Ok((busy, instances))
}
