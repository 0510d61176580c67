//! The owner's chat commands, executed: parse with `chat`, act on the store
//! and the live view, and answer in one short message. Questions that need
//! another agent come back as [`PeerQuestion`]s for the runtime to send.

use chrono::{DateTime, Duration, Utc};

use super::meetings::MeetingOrder;
use super::{Gatekeeper, Live};
use crate::chat::{self, Command, ParseError, render};
use crate::domain::contact::parse_bare_jid;
use crate::domain::{Contact, IcalTime, Task, TaskStatus};
use crate::error::AgentError;
use crate::negotiate::wire::{FreebusyQuery, RequestId};
use crate::store::Store;

/// How long the agent keeps trying to reach a peer for the owner's question.
pub const ASK_DEADLINE: Duration = Duration::minutes(2);

/// A free/busy question for a contact's agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerQuestion {
    /// How the owner calls the contact.
    pub name: String,
    /// The contact's agent, bare JID.
    pub agent: String,
    pub query: FreebusyQuery,
}

/// What a command does.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Said to the owner at once (may be empty when only questions follow).
    pub reply: String,
    /// Asked of other agents; their answers reach the owner later.
    pub questions: Vec<PeerQuestion>,
    /// Agents whose presence to ask for (a contact just added).
    pub subscribe: Vec<String>,
    /// A meeting to negotiate (`meet …`).
    pub meeting: Option<MeetingOrder>,
    /// A change to a meeting (`cancel`, `move`, `decline`), for the negotiator.
    pub change: Option<super::meetings::MeetingChange>,
    /// Task offers, statuses and cancels for other agents (§13).
    pub task_messages: Vec<super::handoffs::TaskMessage>,
}

impl Outcome {
    fn say(text: impl Into<String>) -> Self {
        Outcome {
            reply: text.into(),
            ..Outcome::default()
        }
    }
}

/// Everything a command may touch.
pub struct Desk<'a> {
    pub store: &'a Store,
    pub live: &'a Live,
    pub gate: &'a Gatekeeper,
}

impl Desk<'_> {
    /// Runs one message from the owner at `now`.
    pub async fn execute(&self, text: &str, now: DateTime<Utc>) -> Result<Outcome, AgentError> {
        let tz = self.live.owner_tz();
        let command = match chat::parse_at(text, now, tz) {
            Ok(c) => c,
            Err(e @ ParseError::Empty) | Err(e) => return Ok(Outcome::say(e.to_string())),
        };
        let snapshot = self.live.snapshot();
        Ok(match command {
            Command::Help { topic: None } => Outcome::say(chat::help()),
            Command::Help { topic: Some(t) } => Outcome::say(chat::help_topic(t)),
            Command::Agenda { when } => {
                let range = match when {
                    Some(w) => w.to_utc_range(tz),
                    None => chat::When::day(now.with_timezone(&tz).date_naive()).to_utc_range(tz),
                };
                let instances = snapshot.index.instances(range)?;
                Outcome::say(render::agenda(&instances, range, tz))
            }
            Command::Free(q) => {
                let mut reply = Vec::new();
                let mut questions = Vec::new();
                for who in &q.who {
                    match find(&snapshot.contacts, who) {
                        None => reply.push(unknown_contact(who, &snapshot.contacts)),
                        Some(c) => match &c.agent_jid {
                            None => reply.push(format!(
                                "{} has no agent I know of: add it with `contact add {} as {} agent AGENT_JID`.",
                                render::sanitize(&c.name),
                                c.jid,
                                render::sanitize(&c.name)
                            )),
                            Some(agent) => {
                                let slot = q.slot(Duration::minutes(30), tz);
                                let window = match (&slot, &q.when) {
                                    (Some(s), _) => Some(*s),
                                    (None, Some(w)) => Some(w.to_utc_range(tz)),
                                    (None, None) => None,
                                };
                                questions.push(PeerQuestion {
                                    name: c.name.clone(),
                                    agent: agent.clone(),
                                    query: FreebusyQuery {
                                        request_id: RequestId::generate(now),
                                        window,
                                        duration: q.duration,
                                        level: None,
                                        slots: slot.into_iter().collect(),
                                    },
                                });
                            }
                        },
                    }
                }
                Outcome {
                    reply: reply.join("\n"),
                    questions,
                    ..Outcome::default()
                }
            }
            Command::Contacts => Outcome::say(render::contacts(&snapshot.contacts)),
            Command::ContactAdd {
                jid,
                name,
                agent,
                group,
            } => {
                let contact = Contact {
                    name: name.trim().to_string(),
                    jid: match parse_bare_jid(&jid) {
                        Ok(j) => j,
                        Err(e) => return Ok(Outcome::say(e)),
                    },
                    agent_jid: match agent.as_deref().map(parse_bare_jid).transpose() {
                        Ok(a) => a,
                        Err(e) => return Ok(Outcome::say(e)),
                    },
                    groups: group.map(|g| g.trim().to_lowercase()).into_iter().collect(),
                };
                match self.store.add_contact(&contact, now).await {
                    Ok(()) => {
                        self.live.refresh(now).await?;
                        Outcome {
                            reply: format!(
                                "Added {}.",
                                render::contacts(std::slice::from_ref(&contact))
                            ),
                            subscribe: contact.agent_jid.into_iter().collect(),
                            ..Outcome::default()
                        }
                    }
                    Err(crate::error::StoreError::Conflict(m)) => Outcome::say(m),
                    Err(e) => return Err(e.into()),
                }
            }
            Command::Log { who } => {
                let key = who.as_deref().map(|w| match find(&snapshot.contacts, w) {
                    Some(c) => c.jid.clone(),
                    None => w.trim().to_lowercase(),
                });
                let entries = self.store.audit_entries(key.as_deref()).await?;
                Outcome::say(render::log(&entries, who.as_deref(), tz))
            }
            Command::Why { who, action } => {
                let peer = match find(&snapshot.contacts, &who) {
                    Some(c) => c.agent_jid.clone().unwrap_or_else(|| c.jid.clone()),
                    None => match parse_bare_jid(&who) {
                        Ok(j) => j,
                        Err(_) => {
                            return Ok(Outcome::say(unknown_contact(&who, &snapshot.contacts)));
                        }
                    },
                };
                Outcome::say(self.gate.explain(&peer, action, now).await?.to_string())
            }
            Command::Tasks => Outcome::say(render::tasks(&self.store.tasks(false).await?, tz)),
            Command::TaskAdd { text, due } => {
                let due = due.map(|w| match w.local_start() {
                    Some(local) if w.time.is_some() => IcalTime::Zoned { local, tz },
                    _ => IcalTime::Date(w.first),
                });
                let task = Task::new(text.trim(), due, now);
                let id = self.store.add_task(&task, now).await?;
                Outcome::say(format!(
                    "Added task {id}: {}",
                    render::sanitize(&task.summary)
                ))
            }
            Command::Done { id } => match id.number() {
                None => Outcome::say(format!(
                    "'{}' is not a task id: `tasks` lists them.",
                    render::sanitize(&id.0)
                )),
                Some(n) => match self.store.complete_task(n, now).await {
                    Ok(t) => Outcome {
                        reply: format!("Done: {} {}", t.id, render::sanitize(&t.task.summary)),
                        // A task from another agent: its agent hears it (§13.2).
                        task_messages: super::handoffs::completed(self.store, n, now).await?,
                        ..Outcome::default()
                    },
                    Err(crate::error::StoreError::NotFound(m)) => Outcome::say(m),
                    Err(e) => return Err(e.into()),
                },
            },
            Command::Progress { id, percent } => match id.number() {
                None => Outcome::say(format!(
                    "'{}' is not a task id: `tasks` lists them.",
                    render::sanitize(&id.0)
                )),
                Some(n) => match self
                    .store
                    .set_task_progress(n, TaskStatus::InProcess, Some(percent), now)
                    .await
                {
                    Ok(t) => Outcome {
                        reply: format!(
                            "Task {}: {percent}% done ({})",
                            t.id,
                            render::sanitize(&t.task.summary)
                        ),
                        // A task from another agent: its agent hears it (§13.2).
                        task_messages: super::handoffs::progressed(self.store, n, percent, now)
                            .await?,
                        ..Outcome::default()
                    },
                    Err(crate::error::StoreError::NotFound(m)) => Outcome::say(m),
                    Err(e) => return Err(e.into()),
                },
            },
            Command::Handoff { id, to, note } => match id.number() {
                None => Outcome::say(format!(
                    "'{}' is not a task id: `tasks` lists them.",
                    render::sanitize(&id.0)
                )),
                Some(n) => {
                    let (reply, task_messages) = super::handoffs::handoff(
                        self.store,
                        &snapshot.contacts,
                        tz,
                        n,
                        &to,
                        note,
                        now,
                    )
                    .await?;
                    Outcome {
                        reply,
                        task_messages,
                        ..Outcome::default()
                    }
                }
            },
            Command::Takeback { id } => match id.number() {
                None => Outcome::say(format!(
                    "'{}' is not a task id: `tasks` lists them.",
                    render::sanitize(&id.0)
                )),
                Some(n) => {
                    let (reply, task_messages) =
                        super::handoffs::takeback(self.store, &snapshot.contacts, n, now).await?;
                    Outcome {
                        reply,
                        task_messages,
                        ..Outcome::default()
                    }
                }
            },
            Command::Meet(m) => {
                match super::orders::meeting_order(&m, &snapshot.contacts, now, tz) {
                    Ok(order) => Outcome {
                        meeting: Some(order),
                        ..Outcome::default()
                    },
                    Err(why) => Outcome::say(why),
                }
            }
            Command::Pending => Outcome::say(super::approvals::list(self.store, tz, now).await?),
            // The running agent answers `approve`/`deny` itself (it must send
            // the requester's `<reply>`, which needs the connection); this
            // arm is reached only before it is connected.
            Command::Approve { .. } | Command::Deny { .. } => Outcome::say(
                "I am not connected yet, so I cannot send your answer; try again in a moment.",
            ),
            Command::Meetings => Outcome::say(self.meeting_list(&snapshot.contacts, now).await?),
            Command::Cancel { id } => meeting_change(&id, |short_id| {
                super::meetings::MeetingChange::Cancel { short_id }
            }),
            Command::Move { id, to } => meeting_change(&id, |short_id| {
                super::meetings::MeetingChange::Move { short_id, to }
            }),
            Command::Decline { id } => meeting_change(&id, |short_id| {
                super::meetings::MeetingChange::Decline { short_id }
            }),
        })
    }
}

/// A `cancel`/`move`/`decline` for the negotiator, or why `id` names no meeting.
fn meeting_change(
    id: &chat::ItemId,
    change: impl FnOnce(i64) -> super::meetings::MeetingChange,
) -> Outcome {
    match id.number() {
        None => Outcome::say(format!(
            "'{}' is not a meeting id: `meetings` lists them.",
            render::sanitize(&id.0)
        )),
        Some(n) => Outcome {
            change: Some(change(n)),
            ..Outcome::default()
        },
    }
}

impl Desk<'_> {
    /// `meetings`: the ones being negotiated and the booked ones still ahead,
    /// with the people in them as the owner calls them.
    async fn meeting_list(
        &self,
        contacts: &[Contact],
        now: DateTime<Utc>,
    ) -> Result<String, AgentError> {
        let tz = self.live.owner_tz();
        let name_of = |jid: &str| {
            contacts
                .iter()
                .find(|c| c.is_known_as(jid))
                .map(|c| c.name.clone())
        };
        let mut items = Vec::new();
        for meeting in self.store.meetings(now).await? {
            let organizer = (meeting.role == crate::domain::MeetingRole::Attendee)
                .then(|| name_of(&meeting.organizer).unwrap_or_else(|| meeting.organizer.clone()));
            // An attendee's copy lists everyone by JID, the owner and the
            // organizer included: the organizer's name says enough.
            let with = if organizer.is_some() {
                Vec::new()
            } else {
                self.store
                    .meeting_attendees(&meeting.uid)
                    .await?
                    .into_iter()
                    .map(|a| {
                        let name = a
                            .name
                            .clone()
                            .or_else(|| name_of(&a.person))
                            .unwrap_or_else(|| a.person.clone());
                        (name, a.partstat)
                    })
                    .collect()
            };
            items.push(render::MeetingListing {
                meeting,
                with,
                organizer,
            });
        }
        Ok(render::meetings(&items, tz))
    }
}

/// The contact `who` names: by name (case-insensitive), or by their or their agent's JID.
pub fn find<'c>(contacts: &'c [Contact], who: &str) -> Option<&'c Contact> {
    let who = who.trim();
    contacts
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case(who) || c.is_known_as(who))
}

/// What the owner hears for a name that is no contact: the names they have.
pub(crate) fn unknown_contact(who: &str, contacts: &[Contact]) -> String {
    let names: Vec<String> = contacts
        .iter()
        .take(10)
        .map(|c| render::sanitize(&c.name))
        .collect();
    if names.is_empty() {
        format!(
            "I don't know '{}'. Add them first: contact add bob@example.org as Bob agent bob.agent@example.org",
            render::sanitize(who)
        )
    } else {
        format!(
            "I don't know '{}'. Your contacts: {}.",
            render::sanitize(who),
            names.join(", ")
        )
    }
}
