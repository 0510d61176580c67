//! The owner's XEP-0050 ad-hoc commands (`meet`, `handoff`, `pending`,
//! `free`) for clients that render data forms: the form each command
//! shows, and the submitted form turned into the plain-text chat command
//! it stands for. The runtime then runs that text exactly as if the owner
//! had typed it, so the two ways in cannot behave differently.
//!
//! Pure apart from [`choices`] (which reads the contacts, open tasks and
//! pending requests a form offers): forms in, chat text out, `now` and the
//! owner's zone injected. Must not execute anything itself; the chat
//! grammar stays the one definition of what a command means, and every
//! text built here is read back with [`chat::parse_at`] before it is used.

use std::collections::HashMap;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::runtime::Services;
use crate::chat::{self, Command, render};
use crate::error::AgentError;
use crate::xmpp::{CommandNode, FieldKind, Form, FormField, Submission};

/// How long a form may wait for its submission.
pub const SESSION_TTL: StdDuration = StdDuration::from_secs(15 * 60);

/// Forms open at once; the oldest is forgotten beyond this.
const MAX_OPEN: usize = 16;

/// Longest `when`, `title` and `note` accepted from a form, in characters.
const MAX_WHEN: usize = 100;
const MAX_TITLE: usize = 200;
const MAX_NOTE: usize = 500;

/// Choices offered in a list, at most (the rest are reachable by chat).
const MAX_CHOICES: usize = 100;

/// The durations a form offers, as the chat grammar spells them.
const DURATIONS: [(&str, &str); 7] = [
    ("15m", "15 minutes"),
    ("30m", "30 minutes"),
    ("45m", "45 minutes"),
    ("1h", "1 hour"),
    ("1h30m", "1½ hours"),
    ("2h", "2 hours"),
    ("3h", "3 hours"),
];

const WHEN_HELP: &str = "today, tomorrow, a weekday, this week, next week or YYYY-MM-DD, optionally with a time (tue 10:00)";

/// One of the commands offered as a form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdHoc {
    Meet,
    Handoff,
    Pending,
    Free,
}

impl AdHoc {
    pub const ALL: [AdHoc; 4] = [AdHoc::Meet, AdHoc::Handoff, AdHoc::Pending, AdHoc::Free];

    /// The XEP-0050 node: the chat command's name, so both read alike.
    pub fn node(self) -> &'static str {
        match self {
            AdHoc::Meet => "meet",
            AdHoc::Handoff => "handoff",
            AdHoc::Pending => "pending",
            AdHoc::Free => "free",
        }
    }

    /// The name a client shows in its command menu.
    pub fn name(self) -> &'static str {
        match self {
            AdHoc::Meet => "Meet: find a time and book it",
            AdHoc::Handoff => "Hand off a task",
            AdHoc::Pending => "Pending requests: approve or deny",
            AdHoc::Free => "Free: ask when someone is free",
        }
    }

    pub fn from_node(node: &str) -> Option<AdHoc> {
        AdHoc::ALL.into_iter().find(|c| c.node() == node)
    }
}

/// The command list the XMPP edge advertises to the owner.
pub fn command_nodes() -> Vec<CommandNode> {
    AdHoc::ALL
        .into_iter()
        .map(|c| CommandNode {
            node: c.node().into(),
            name: c.name().into(),
        })
        .collect()
}

/// A value a list field offers and how it is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub value: String,
    pub label: String,
}

/// What the forms offer to pick from, read when a command starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Choices {
    /// Contacts by bare JID (names may hold commas or `and`, JIDs cannot).
    pub contacts: Vec<Choice>,
    /// Open tasks by number.
    pub tasks: Vec<Choice>,
    /// Requests waiting for the owner, by number.
    pub pending: Vec<Choice>,
}

/// Reads the [`Choices`] from the store and the live view at `now`.
pub async fn choices(s: &Services, now: DateTime<Utc>) -> Result<Choices, AgentError> {
    let tz = s.live.owner_tz();
    let contacts = s
        .live
        .snapshot()
        .contacts
        .iter()
        .take(MAX_CHOICES)
        .map(|c| Choice {
            value: c.jid.clone(),
            label: format!("{} ({})", render::sanitize(&c.name), c.jid),
        })
        .collect();
    let tasks = s
        .store
        .tasks(false)
        .await?
        .into_iter()
        .take(MAX_CHOICES)
        .map(|t| Choice {
            value: t.id.to_string(),
            label: format!("{}. {}", t.id, render::sanitize(&t.task.summary)),
        })
        .collect();
    let pending = s
        .store
        .pending_waiting(now)
        .await?
        .into_iter()
        .take(MAX_CHOICES)
        .map(|p| Choice {
            value: p.id.to_string(),
            label: format!(
                "{}. {} (expires {})",
                p.id,
                render::sanitize(&p.description),
                render::instant(p.expires, tz)
            ),
        })
        .collect();
    Ok(Choices {
        contacts,
        tasks,
        pending,
    })
}

/// The form `command` shows, or (`Err`) the note to complete it with at
/// once when there is nothing to choose from.
pub fn form(command: AdHoc, choices: &Choices) -> Result<Form, String> {
    let people = |var: &str, label: &str, required: bool| FormField {
        var: var.into(),
        kind: FieldKind::ListMulti,
        label: label.into(),
        required,
        options: options(&choices.contacts),
        values: vec![],
    };
    let when = |label: &str| FormField {
        var: "when".into(),
        kind: FieldKind::TextSingle,
        label: label.into(),
        required: false,
        options: vec![],
        values: vec![],
    };
    let text = |var: &str, label: &str| FormField {
        var: var.into(),
        kind: FieldKind::TextSingle,
        label: label.into(),
        required: false,
        options: vec![],
        values: vec![],
    };
    let duration = |default: Option<&str>| FormField {
        var: "duration".into(),
        kind: FieldKind::ListSingle,
        label: "How long".into(),
        required: default.is_some(),
        options: DURATIONS
            .iter()
            .map(|(v, l)| (l.to_string(), v.to_string()))
            .collect(),
        values: default.map(String::from).into_iter().collect(),
    };
    let no_contacts = "You have no contacts yet; add one in chat: contact add bob@example.org as Bob agent bob.agent@example.org";
    match command {
        AdHoc::Meet => {
            if choices.contacts.is_empty() {
                return Err(no_contacts.into());
            }
            Ok(Form {
                title: "Meet".into(),
                instructions: Some(format!(
                    "I negotiate a time with their agents and tell you in chat when it is booked. When: {WHEN_HELP}; empty means as soon as possible."
                )),
                fields: vec![
                    people("who", "With whom", true),
                    duration(Some("30m")),
                    when("When"),
                    text("title", "Title"),
                    people("optional", "Optional attendees", false),
                    text("quorum", "How many must accept (empty: all required)"),
                ],
            })
        }
        AdHoc::Free => {
            if choices.contacts.is_empty() {
                return Err(no_contacts.into());
            }
            Ok(Form {
                title: "Free".into(),
                instructions: Some(format!(
                    "I ask their agents; the answers arrive in chat. When: {WHEN_HELP}; empty means whatever they show."
                )),
                fields: vec![people("who", "Whom", true), when("When"), duration(None)],
            })
        }
        AdHoc::Handoff => {
            if choices.tasks.is_empty() {
                return Err("You have no open tasks to hand off.".into());
            }
            if choices.contacts.is_empty() {
                return Err(no_contacts.into());
            }
            Ok(Form {
                title: "Hand off a task".into(),
                instructions: Some(
                    "Their agent offers the task; I tell you in chat when they accept or decline."
                        .into(),
                ),
                fields: vec![
                    FormField {
                        var: "task".into(),
                        kind: FieldKind::ListSingle,
                        label: "Task".into(),
                        required: true,
                        options: options(&choices.tasks),
                        values: vec![],
                    },
                    FormField {
                        var: "to".into(),
                        kind: FieldKind::ListSingle,
                        label: "To".into(),
                        required: true,
                        options: options(&choices.contacts),
                        values: vec![],
                    },
                    text("note", "Note for them"),
                ],
            })
        }
        AdHoc::Pending => {
            if choices.pending.is_empty() {
                return Err("Nothing waits for your approval.".into());
            }
            Ok(Form {
                title: "Pending requests".into(),
                instructions: Some(format!(
                    "{} request(s) wait for you. Pick one and approve or deny it.",
                    choices.pending.len()
                )),
                fields: vec![
                    FormField {
                        var: "item".into(),
                        kind: FieldKind::ListSingle,
                        label: "Request".into(),
                        required: true,
                        options: options(&choices.pending),
                        values: choices
                            .pending
                            .first()
                            .map(|p| p.value.clone())
                            .into_iter()
                            .collect(),
                    },
                    FormField {
                        var: "decision".into(),
                        kind: FieldKind::ListSingle,
                        label: "Answer".into(),
                        required: true,
                        options: vec![
                            ("Approve".into(), "approve".into()),
                            ("Deny".into(), "deny".into()),
                        ],
                        values: vec![],
                    },
                ],
            })
        }
    }
}

fn options(choices: &[Choice]) -> Vec<(String, String)> {
    choices
        .iter()
        .map(|c| (c.label.clone(), c.value.clone()))
        .collect()
}

/// The chat command a submitted form stands for, checked by reading it
/// back with the chat parser; `Err` is the note to show on the form.
/// `form` is the form that was presented: list values must be among its
/// options. Unknown fields are ignored.
pub fn chat_text(
    command: AdHoc,
    form: &Form,
    submitted: &Submission,
    now: DateTime<Utc>,
    tz: Tz,
) -> Result<String, String> {
    let read = Reader {
        form,
        submitted,
        now,
        tz,
    };
    match command {
        AdHoc::Meet => {
            let who = read.picked("who", "With whom")?;
            let optional = read.picked("optional", "Optional attendees")?;
            let duration = read.one("duration", "How long")?;
            let when = read.when()?;
            let title = read.free_text("title", "The title", MAX_TITLE)?;
            let quorum = match read.text("quorum")?.as_deref() {
                None => None,
                Some(q) => Some(
                    q.parse::<u32>()
                        .ok()
                        .filter(|n| (1..=1_000).contains(n))
                        .ok_or("How many must accept: give a number from 1, or leave it empty.")?,
                ),
            };
            let mut text = format!("meet {}", who.join(", "));
            if let Some(d) = &duration {
                text.push_str(&format!(" for {d}"));
            }
            if let Some(w) = &when {
                text.push_str(&format!(" {w}"));
            }
            if !optional.is_empty() {
                text.push_str(&format!(" optional {}", optional.join(", ")));
            }
            if let Some(q) = quorum {
                text.push_str(&format!(" quorum {q}"));
            }
            if let Some(t) = &title {
                text.push_str(&format!(" about {t}"));
            }
            match read.parse(&text)? {
                Command::Meet(m)
                    if m.who == who
                        && m.optional == optional
                        && m.duration.is_some() == duration.is_some()
                        && m.when.is_some() == when.is_some()
                        && m.title == title
                        && m.quorum == quorum =>
                {
                    Ok(text)
                }
                _ => Err(misread("title")),
            }
        }
        AdHoc::Free => {
            let who = read.picked("who", "Whom")?;
            if who.is_empty() {
                return Err("Whom: pick at least one person.".into());
            }
            let when = read.when()?;
            let duration = read.one("duration", "How long")?;
            let mut text = format!("free {}", who.join(", "));
            if let Some(w) = &when {
                text.push_str(&format!(" {w}"));
            }
            if let Some(d) = &duration {
                text.push_str(&format!(" for {d}"));
            }
            match read.parse(&text)? {
                Command::Free(q)
                    if q.who == who
                        && q.when.is_some() == when.is_some()
                        && q.duration.is_some() == duration.is_some() =>
                {
                    Ok(text)
                }
                _ => Err(misread("when")),
            }
        }
        AdHoc::Handoff => {
            let task = read.one("task", "Task")?.ok_or("Task: pick one.")?;
            let to = read.one("to", "To")?.ok_or("To: pick one.")?;
            let note = read.free_text("note", "The note", MAX_NOTE)?;
            let mut text = format!("handoff {task} to {to}");
            if let Some(n) = &note {
                text.push_str(&format!(" note {n}"));
            }
            match read.parse(&text)? {
                Command::Handoff {
                    id,
                    to: parsed_to,
                    note: parsed_note,
                } if id.0 == task && parsed_to == to && parsed_note == note => Ok(text),
                _ => Err(misread("note")),
            }
        }
        AdHoc::Pending => {
            let item = read.one("item", "Request")?.ok_or("Request: pick one.")?;
            let decision = read.one("decision", "Answer")?.ok_or("Answer: pick one.")?;
            let text = format!("{decision} {item}");
            match read.parse(&text)? {
                Command::Approve { id, due: None } | Command::Deny { id } if id.0 == item => {
                    Ok(text)
                }
                _ => Err(misread("request")),
            }
        }
    }
}

fn misread(field: &str) -> String {
    format!(
        "I would not read this form back as you meant it (the {field} holds words the chat command treats as its own); please rephrase it."
    )
}

/// Reads one submitted form against the form presented.
struct Reader<'a> {
    form: &'a Form,
    submitted: &'a Submission,
    now: DateTime<Utc>,
    tz: Tz,
}

impl Reader<'_> {
    fn field(&self, var: &str) -> Option<&FormField> {
        self.form.fields.iter().find(|f| f.var == var)
    }

    /// The non-empty values of `var`.
    fn values(&self, var: &str) -> Vec<&str> {
        self.submitted
            .values(var)
            .iter()
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// Values of a list field, each one of the offered options, in order,
    /// without repeats; an error when a required field is empty.
    fn picked(&self, var: &str, label: &str) -> Result<Vec<String>, String> {
        let Some(field) = self.field(var) else {
            return Ok(vec![]);
        };
        let mut out: Vec<String> = Vec::new();
        for v in self.values(var) {
            if !field.options.iter().any(|(_, o)| o == v) {
                return Err(format!(
                    "{label}: \"{}\" is not one of the choices.",
                    render::sanitize(v)
                ));
            }
            if !out.iter().any(|o| o == v) {
                out.push(v.to_string());
            }
        }
        if field.required && out.is_empty() {
            return Err(match field.kind {
                FieldKind::ListSingle => format!("{label}: pick one."),
                _ => format!("{label}: pick at least one."),
            });
        }
        Ok(out)
    }

    /// The single value of a list field, if any.
    fn one(&self, var: &str, label: &str) -> Result<Option<String>, String> {
        let mut picked = self.picked(var, label)?;
        if picked.len() > 1 {
            return Err(format!("{label}: pick only one."));
        }
        Ok(picked.pop())
    }

    /// A text field's single value, words separated by single spaces.
    fn text(&self, var: &str) -> Result<Option<String>, String> {
        let values = self.values(var);
        if values.len() > 1 {
            return Err(format!("{var}: give one line only."));
        }
        Ok(values.first().map(|v| words(v)).filter(|v| !v.is_empty()))
    }

    /// Free text that ends the chat command, read as the chat parser
    /// would: trailing `.`, `?` and `!` dropped.
    fn free_text(&self, var: &str, what: &str, max: usize) -> Result<Option<String>, String> {
        let Some(text) = self.text(var)? else {
            return Ok(None);
        };
        if text.chars().count() > max {
            return Err(format!("{what} is too long (at most {max} characters)."));
        }
        let text = text.trim_end_matches(['.', '?', '!', ' ']).to_string();
        Ok((!text.is_empty()).then_some(text))
    }

    /// The `when` field, which must be a whole chat `<when>` by itself.
    fn when(&self) -> Result<Option<String>, String> {
        let Some(when) = self.text("when")? else {
            return Ok(None);
        };
        if when.chars().count() > MAX_WHEN {
            return Err(format!("When is too long (at most {MAX_WHEN} characters)."));
        }
        match chat::parse_at(&format!("agenda {when}"), self.now, self.tz) {
            Ok(Command::Agenda { when: Some(_) }) => Ok(Some(when)),
            _ => Err(format!(
                "When: \"{}\" is not a time I understand; use {WHEN_HELP}.",
                render::sanitize(&when)
            )),
        }
    }

    fn parse(&self, text: &str) -> Result<Command, String> {
        chat::parse_at(text, self.now, self.tz).map_err(|e| e.to_string())
    }
}

/// Control characters and runs of spaces become one space, as in chat.
fn words(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The forms handed out and not yet submitted or cancelled (XEP-0050
/// sessions), each bound to the full JID that asked.
#[derive(Debug, Default)]
pub struct Sessions {
    open: HashMap<String, OpenForm>,
    issued: u64,
}

#[derive(Debug)]
struct OpenForm {
    command: AdHoc,
    requester: String,
    form: Form,
    at: Instant,
}

impl Sessions {
    /// Remembers `form`, shown to `requester` at `now`; returns its session id.
    pub fn open(&mut self, command: AdHoc, requester: &str, form: Form, now: Instant) -> String {
        self.expire(now);
        if self.open.len() >= MAX_OPEN
            && let Some(oldest) = self
                .open
                .iter()
                .min_by_key(|(_, f)| f.at)
                .map(|(id, _)| id.clone())
        {
            self.open.remove(&oldest);
        }
        self.issued += 1;
        let id = format!("{}-{}", command.node(), self.issued);
        self.open.insert(
            id.clone(),
            OpenForm {
                command,
                requester: requester.into(),
                form,
                at: now,
            },
        );
        id
    }

    /// The form of session `id`, if it is open, not expired, and was
    /// shown to `requester` for `command`.
    pub fn form(
        &mut self,
        id: &str,
        command: AdHoc,
        requester: &str,
        now: Instant,
    ) -> Option<Form> {
        self.expire(now);
        self.open
            .get(id)
            .filter(|f| f.command == command && f.requester == requester)
            .map(|f| f.form.clone())
    }

    /// Forgets session `id` (submitted or cancelled).
    pub fn close(&mut self, id: &str) {
        self.open.remove(id);
    }

    fn expire(&mut self, now: Instant) {
        self.open
            .retain(|_, f| now.saturating_duration_since(f.at) < SESSION_TTL);
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn now() -> DateTime<Utc> {
        // A Monday morning in Berlin.
        Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0)
            .single()
            .unwrap_or_else(|| panic!("a valid instant"))
    }

    const TZ: Tz = chrono_tz::Europe::Berlin;

    fn choices() -> Choices {
        let c = |value: &str, label: &str| Choice {
            value: value.into(),
            label: label.into(),
        };
        Choices {
            contacts: vec![
                c("bob@example.org", "Bob"),
                c("carol@example.org", "Carol"),
                c("dana@example.org", "Dana"),
            ],
            tasks: vec![c("3", "3. slides")],
            pending: vec![c("4", "4. Bob asks for free/busy"), c("7", "7. Carol")],
        }
    }

    fn submit(fields: &[(&str, &[&str])]) -> Submission {
        Submission {
            fields: fields
                .iter()
                .map(|(var, values)| {
                    (
                        var.to_string(),
                        values.iter().map(|v| v.to_string()).collect(),
                    )
                })
                .collect(),
        }
    }

    fn text(command: AdHoc, fields: &[(&str, &[&str])]) -> Result<String, String> {
        let form = form(command, &choices()).unwrap_or_else(|e| panic!("no form: {e}"));
        chat_text(command, &form, &submit(fields), now(), TZ)
    }

    fn parsed(text: &str) -> Command {
        chat::parse_at(text, now(), TZ).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn a_full_meet_form_becomes_the_meet_command_with_every_clause() {
        let t = text(
            AdHoc::Meet,
            &[
                ("who", &["bob@example.org", "carol@example.org"]),
                ("duration", &["45m"]),
                ("when", &["next  week"]),
                ("title", &["plans for today, and optional extras?"]),
                ("optional", &["dana@example.org"]),
                ("quorum", &["2"]),
                ("unknown-field", &["ignored"]),
            ],
        );
        // "optional" inside the title would be read as the clause: refused.
        assert!(t.is_err(), "{t:?}");
        let t = text(
            AdHoc::Meet,
            &[
                ("who", &["bob@example.org", "carol@example.org"]),
                ("duration", &["45m"]),
                ("when", &["next  week"]),
                ("title", &["plans for today?"]),
                ("optional", &["dana@example.org"]),
                ("quorum", &["2"]),
                ("unknown-field", &["ignored"]),
            ],
        )
        .expect("a meet command");
        assert_eq!(
            t,
            "meet bob@example.org, carol@example.org for 45m next week optional dana@example.org quorum 2 about plans for today"
        );
        let Command::Meet(m) = parsed(&t) else {
            panic!("not a meet: {t}");
        };
        assert_eq!(m.who, ["bob@example.org", "carol@example.org"]);
        assert_eq!(m.optional, ["dana@example.org"]);
        assert_eq!(m.duration, Some(chrono::Duration::minutes(45)));
        assert!(m.when.is_some_and(|w| !w.is_single_day()));
        assert_eq!(m.title.as_deref(), Some("plans for today"));
        assert_eq!(m.quorum, Some(2));
    }

    #[test]
    fn every_offered_duration_is_one_the_chat_grammar_reads() {
        for (value, _) in DURATIONS {
            let t = text(
                AdHoc::Meet,
                &[("who", &["bob@example.org"]), ("duration", &[value])],
            )
            .unwrap_or_else(|e| panic!("{value}: {e}"));
            assert!(
                matches!(parsed(&t), Command::Meet(m) if m.duration.is_some()),
                "{t}"
            );
        }
    }

    #[test]
    fn a_meet_form_needs_someone_and_reads_only_offered_people() {
        let none = text(AdHoc::Meet, &[("duration", &["30m"])]);
        assert_eq!(none, Err("With whom: pick at least one.".into()));
        let stranger = text(AdHoc::Meet, &[("who", &["eve@example.org"])]);
        assert!(stranger.is_err_and(|e| e.contains("not one of the choices")));
        let bad_quorum = text(
            AdHoc::Meet,
            &[("who", &["bob@example.org"]), ("quorum", &["lots"])],
        );
        assert!(bad_quorum.is_err());
        let bad_when = text(
            AdHoc::Meet,
            &[
                ("who", &["bob@example.org"]),
                ("duration", &["30m"]),
                ("when", &["tomorrow about x"]),
            ],
        );
        assert!(bad_when.is_err_and(|e| e.starts_with("When:")));
    }

    #[test]
    fn a_free_form_becomes_the_free_command() {
        let t = text(
            AdHoc::Free,
            &[
                ("who", &["bob@example.org"]),
                ("when", &["tomorrow 10:00"]),
                ("duration", &["1h"]),
            ],
        )
        .expect("a free command");
        assert_eq!(t, "free bob@example.org tomorrow 10:00 for 1h");
        let Command::Free(q) = parsed(&t) else {
            panic!("not free: {t}");
        };
        assert_eq!(q.who, ["bob@example.org"]);
        assert!(q.when.is_some_and(|w| w.time.is_some()));
        assert_eq!(q.duration, Some(chrono::Duration::hours(1)));
        assert_eq!(
            text(AdHoc::Free, &[("who", &["bob@example.org"])]),
            Ok("free bob@example.org".into())
        );
    }

    #[test]
    fn a_handoff_form_becomes_the_handoff_command_with_its_note() {
        let t = text(
            AdHoc::Handoff,
            &[
                ("task", &["3"]),
                ("to", &["dana@example.org"]),
                ("note", &["slides are in\nthe shared folder."]),
            ],
        )
        .expect("a handoff");
        assert_eq!(
            t,
            "handoff 3 to dana@example.org note slides are in the shared folder"
        );
        assert_eq!(
            parsed(&t),
            Command::Handoff {
                id: chat::ItemId("3".into()),
                to: "dana@example.org".into(),
                note: Some("slides are in the shared folder".into()),
            }
        );
        let two = text(
            AdHoc::Handoff,
            &[
                ("task", &["3"]),
                ("to", &["dana@example.org", "bob@example.org"]),
            ],
        );
        assert_eq!(two, Err("To: pick only one.".into()));
        let unknown_task = text(
            AdHoc::Handoff,
            &[("task", &["9"]), ("to", &["dana@example.org"])],
        );
        assert!(unknown_task.is_err());
    }

    #[test]
    fn a_pending_form_becomes_approve_or_deny() {
        let t = text(AdHoc::Pending, &[("item", &["7"]), ("decision", &["deny"])]);
        assert_eq!(t, Ok("deny 7".into()));
        assert_eq!(
            parsed("deny 7"),
            Command::Deny {
                id: chat::ItemId("7".into())
            }
        );
        let t = text(
            AdHoc::Pending,
            &[("item", &["4"]), ("decision", &["approve"])],
        );
        assert_eq!(t, Ok("approve 4".into()));
        let missing = text(AdHoc::Pending, &[("item", &["4"])]);
        assert_eq!(missing, Err("Answer: pick one.".into()));
        let forged = text(
            AdHoc::Pending,
            &[("item", &["4"]), ("decision", &["approve 5"])],
        );
        assert!(forged.is_err());
    }

    #[test]
    fn nothing_to_choose_from_completes_with_a_note() {
        let empty = Choices::default();
        assert_eq!(
            form(AdHoc::Pending, &empty),
            Err("Nothing waits for your approval.".into())
        );
        assert!(form(AdHoc::Handoff, &empty).is_err());
        assert!(form(AdHoc::Meet, &empty).is_err());
    }

    #[test]
    fn nodes_are_the_chat_command_names() {
        for c in AdHoc::ALL {
            assert_eq!(AdHoc::from_node(c.node()), Some(c));
            assert!(chat::COMMANDS.iter().any(|h| h.name == c.node()), "{c:?}");
        }
        assert_eq!(AdHoc::from_node("agenda"), None);
    }

    #[test]
    fn sessions_belong_to_one_requester_and_expire() {
        let mut s = Sessions::default();
        let t0 = Instant::now();
        let f = form(AdHoc::Free, &choices()).expect("a form");
        let id = s.open(AdHoc::Free, "owner@x/a", f.clone(), t0);
        assert_eq!(s.form(&id, AdHoc::Free, "owner@x/a", t0), Some(f));
        assert_eq!(s.form(&id, AdHoc::Free, "owner@x/b", t0), None);
        assert_eq!(s.form(&id, AdHoc::Meet, "owner@x/a", t0), None);
        assert_eq!(
            s.form(&id, AdHoc::Free, "owner@x/a", t0 + SESSION_TTL),
            None
        );
        let f = form(AdHoc::Free, &choices()).expect("a form");
        let id = s.open(AdHoc::Free, "owner@x/a", f, t0);
        s.close(&id);
        assert_eq!(s.form(&id, AdHoc::Free, "owner@x/a", t0), None);
        for _ in 0..(MAX_OPEN + 5) {
            let f = form(AdHoc::Free, &choices()).expect("a form");
            s.open(AdHoc::Free, "owner@x/a", f, t0);
        }
        assert!(s.open.len() <= MAX_OPEN);
    }
}
