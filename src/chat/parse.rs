//! Reading one chat message from the owner into a typed [`Command`].
//!
//! Owns the command grammar of SPEC "Chat commands" (synonyms may be added,
//! nothing removed) and its error sentences, each with an example. Pure:
//! today's date and the owner's wall clock are parameters. Must not resolve
//! names or ids against the store, and must not render replies beyond the
//! error sentence.
//!
//! Hostile input is bounded: at most [`MAX_INPUT`] characters, one pass to
//! split words, and every clause scan moves forward, so the work is linear
//! (quadratic at worst for `task add … due …`, on 2,000 characters).

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;

use super::grammar::{
    ItemId, When, is, is_dur, parse_dur, parse_id, parse_when, parse_who, quoted, starts_when,
};
use super::help::{self, COMMANDS};
use super::render::{sanitize, sanitize_to};
use crate::domain::contact::parse_bare_jid;
use crate::policy::Action;

/// The longest message read, in characters.
pub const MAX_INPUT: usize = 2_000;

/// One owner command, with days resolved and names kept as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `help [command]`: `topic` is a canonical name from the help table.
    Help {
        topic: Option<&'static str>,
    },
    /// `agenda [<when>]`; `None`: today.
    Agenda {
        when: Option<When>,
    },
    /// `free <who> [<when>] [for <dur>]`.
    Free(FreeQuery),
    /// `meet <who> for <dur> [<when>] [about <title>] [optional <who>] [quorum N]`.
    Meet(MeetRequest),
    Meetings,
    Cancel {
        id: ItemId,
    },
    Move {
        id: ItemId,
        to: When,
    },
    Decline {
        id: ItemId,
    },
    Tasks,
    /// `task add <text> [due <when>]`.
    TaskAdd {
        text: String,
        due: Option<When>,
    },
    Done {
        id: ItemId,
    },
    /// `progress <id> <percent>[%]`: the task is under way.
    Progress {
        id: ItemId,
        percent: u8,
    },
    /// `handoff <id> to <who> [note <text>]`.
    Handoff {
        id: ItemId,
        to: String,
        note: Option<String>,
    },
    Takeback {
        id: ItemId,
    },
    Pending,
    /// `approve <id> [due <when>]`: `due` counters a task offer with
    /// another due date (iTIP COUNTER) instead of accepting it.
    Approve {
        id: ItemId,
        due: Option<When>,
    },
    Deny {
        id: ItemId,
    },
    Contacts,
    /// `contact add <jid> as <name> [agent <agent-jid>] [in <group>]`; JIDs
    /// are normalized bare JIDs.
    ContactAdd {
        jid: String,
        name: String,
        agent: Option<String>,
        group: Option<String>,
    },
    /// `log [<who>]`.
    Log {
        who: Option<String>,
    },
    /// `why <who> <action>`.
    Why {
        who: String,
        action: Action,
    },
}

impl Command {
    /// The command's canonical name, as `help` lists it (for logs and replies).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Help { .. } => "help",
            Command::Agenda { .. } => "agenda",
            Command::Free(_) => "free",
            Command::Meet(_) => "meet",
            Command::Meetings => "meetings",
            Command::Cancel { .. } => "cancel",
            Command::Move { .. } => "move",
            Command::Decline { .. } => "decline",
            Command::Tasks => "tasks",
            Command::TaskAdd { .. } => "task add",
            Command::Done { .. } => "done",
            Command::Progress { .. } => "progress",
            Command::Handoff { .. } => "handoff",
            Command::Takeback { .. } => "takeback",
            Command::Pending => "pending",
            Command::Approve { .. } => "approve",
            Command::Deny { .. } => "deny",
            Command::Contacts => "contacts",
            Command::ContactAdd { .. } => "contact add",
            Command::Log { .. } => "log",
            Command::Why { .. } => "why",
        }
    }
}

/// `free <who> [<when>] [for <dur>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreeQuery {
    /// As typed; at least one.
    pub who: Vec<String>,
    /// `None`: everything their agent will show.
    pub when: Option<When>,
    /// `None`: the caller's default (the slot grid, 30 minutes).
    pub duration: Option<Duration>,
}

impl FreeQuery {
    /// The one slot asked about when a time was given (`free bob tue 10:00
    /// for 1h`), with `default` as the length when none was.
    pub fn slot(&self, default: Duration, tz: chrono_tz::Tz) -> Option<crate::domain::TimeRange> {
        self.when?.slot(self.duration.unwrap_or(default), tz)
    }
}

/// `meet <who> for <dur> [<when>] [about <title>] [optional <who>] [quorum N]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetRequest {
    /// Required attendees (names, JIDs or groups) as typed; at least one.
    pub who: Vec<String>,
    pub optional: Vec<String>,
    /// `None`: the caller's default (30 minutes).
    pub duration: Option<Duration>,
    /// `None`: as soon as possible within what the policies allow.
    pub when: Option<When>,
    pub title: Option<String>,
    /// How many attendees must accept; `None`: all required ones.
    pub quorum: Option<u32>,
}

/// Why a message is not a command; its `Display` is the reply to send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("That message was empty. Send \"help\" for all commands.")]
    Empty,
    #[error(
        "That message is too long ({chars} characters; at most {MAX_INPUT}). Send one command per message, e.g. agenda tomorrow"
    )]
    TooLong { chars: usize },
    #[error("{}", unknown_text(.word, *.suggestion))]
    UnknownCommand {
        word: String,
        /// The closest command's name, if one is close.
        suggestion: Option<&'static str>,
    },
    #[error("{0}")]
    Invalid(String),
}

impl ParseError {
    pub(crate) fn invalid(text: impl Into<String>) -> Self {
        ParseError::Invalid(text.into())
    }
}

fn unknown_text(word: &str, suggestion: Option<&str>) -> String {
    match suggestion {
        Some(s) => format!(
            "Unknown command \"{word}\". Did you mean \"{s}\"? Send \"help\" for all commands."
        ),
        None => format!("Unknown command \"{word}\". Send \"help\" for all commands."),
    }
}

/// Reads one message. `today` is the owner's local date and `now_local` the
/// owner's wall clock (the same moment; the time decides whether `tue
/// 10:00` said on a Tuesday afternoon means next week).
pub fn parse(
    text: &str,
    today: NaiveDate,
    now_local: NaiveDateTime,
) -> Result<Command, ParseError> {
    let chars = text.chars().count();
    if chars > MAX_INPUT {
        return Err(ParseError::TooLong { chars });
    }
    // Control characters (line breaks included) separate words like spaces.
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = cleaned.trim().trim_end_matches(['.', '?', '!', ' ']).trim();
    let words: Vec<&str> = trimmed.split_whitespace().collect();
    let Some((&head, rest)) = words.split_first() else {
        // A lone "?" is a question for help, not an empty message.
        return if cleaned.trim().starts_with('?') {
            Ok(Command::Help { topic: None })
        } else {
            Err(ParseError::Empty)
        };
    };
    let p = Parser { today, now_local };
    let head_lower = head.to_ascii_lowercase();
    match head_lower.as_str() {
        "help" | "?" | "commands" | "h" => p.help(rest),
        "agenda" | "cal" | "calendar" | "schedule" => p.agenda(rest),
        "free" | "freebusy" | "avail" => p.free(rest),
        "meet" | "book" | "meeting" => p.meet(rest),
        "meetings" => no_args(rest, Command::Meetings, "meetings"),
        "cancel" => one_id(rest, "cancel m3").map(|id| Command::Cancel { id }),
        "move" | "reschedule" => p.move_meeting(rest),
        "decline" => one_id(rest, "decline m4").map(|id| Command::Decline { id }),
        "tasks" | "todo" | "todos" => no_args(rest, Command::Tasks, "tasks"),
        "task" => p.task(rest),
        "done" | "complete" => one_id(rest, "done 3").map(|id| Command::Done { id }),
        "progress" => progress(rest),
        "handoff" | "delegate" => handoff(rest),
        "hand" if rest.first().is_some_and(|w| is(w, "off")) => handoff(&rest[1..]),
        "takeback" => one_id(rest, "takeback 3").map(|id| Command::Takeback { id }),
        "take" if rest.first().is_some_and(|w| is(w, "back")) => {
            one_id(&rest[1..], "takeback 3").map(|id| Command::Takeback { id })
        }
        "pending" | "requests" => no_args(rest, Command::Pending, "pending"),
        "approve" => p.approve(rest),
        "deny" | "reject" => one_id(rest, "deny 4").map(|id| Command::Deny { id }),
        "contacts" => no_args(rest, Command::Contacts, "contacts"),
        "contact" => contact(rest),
        "log" => {
            let who = rest.join(" ");
            let who = who.trim_matches(['"', '\u{201C}', '\u{201D}']).trim();
            Ok(Command::Log {
                who: (!who.is_empty()).then(|| who.to_string()),
            })
        }
        "why" => why(rest),
        _ => Err(ParseError::UnknownCommand {
            word: sanitize(head),
            suggestion: closest_command(&head_lower),
        }),
    }
}

/// [`parse`] at the instant `now`, read in the owner's zone `tz`.
pub fn parse_at(text: &str, now: DateTime<Utc>, tz: Tz) -> Result<Command, ParseError> {
    let local = now.with_timezone(&tz).naive_local();
    parse(text, local.date(), local)
}

/// The clock a message is read against.
struct Parser {
    today: NaiveDate,
    now_local: NaiveDateTime,
}

impl Parser {
    fn when(&self, words: &[&str]) -> Result<Option<(When, usize)>, ParseError> {
        parse_when(words, self.today, self.now_local)
    }

    /// A `<when>` that must take all of `words`.
    /// `approve <id> [due <when>]`.
    fn approve(&self, rest: &[&str]) -> Result<Command, ParseError> {
        const EXAMPLE: &str = "approve 4 due fri";
        let id = parse_id(rest.first().copied(), "approve 4")?;
        match rest.get(1..).unwrap_or_default() {
            [] => Ok(Command::Approve { id, due: None }),
            [due, when @ ..] if is(due, "due") => Ok(Command::Approve {
                id,
                due: Some(self.whole_when(when, EXAMPLE)?),
            }),
            more => Err(left_over(more, EXAMPLE)),
        }
    }

    fn whole_when(&self, words: &[&str], example: &str) -> Result<When, ParseError> {
        match self.when(words)? {
            Some((w, used)) if used == words.len() => Ok(w),
            Some((_, used)) => Err(left_over(&words[used..], example)),
            None => Err(ParseError::invalid(format!(
                "\"{}\" is not a day; use today, tomorrow, a weekday, this week, next week or YYYY-MM-DD: {example}",
                sanitize(&words.join(" "))
            ))),
        }
    }

    fn help(&self, rest: &[&str]) -> Result<Command, ParseError> {
        if rest.is_empty() {
            return Ok(Command::Help { topic: None });
        }
        let asked = rest.join(" ");
        let found = help::lookup(&asked).or_else(|| rest.first().and_then(|w| help::lookup(w)));
        match found {
            Some(c) => Ok(Command::Help {
                topic: Some(c.name),
            }),
            None => {
                let word = rest[0].to_ascii_lowercase();
                Err(ParseError::invalid(match closest_command(&word) {
                    Some(s) => format!(
                        "There is no command \"{}\". Did you mean \"{s}\"? Send \"help\" for all commands.",
                        sanitize(&asked)
                    ),
                    None => format!(
                        "There is no command \"{}\". Send \"help\" for all commands.",
                        sanitize(&asked)
                    ),
                }))
            }
        }
    }

    fn agenda(&self, rest: &[&str]) -> Result<Command, ParseError> {
        if rest.is_empty() {
            return Ok(Command::Agenda { when: None });
        }
        let when = self.whole_when(rest, "agenda tomorrow")?;
        Ok(Command::Agenda { when: Some(when) })
    }

    fn free(&self, rest: &[&str]) -> Result<Command, ParseError> {
        const EXAMPLE: &str = "free bob next week for 1h";
        let quoted = quoted(rest);
        let who_len = (0..rest.len())
            .find(|&i| !quoted[i] && (is(rest[i], "for") || starts_when(&rest[i..])))
            .unwrap_or(rest.len());
        let who = parse_who(&rest[..who_len], EXAMPLE)?;
        let mut query = FreeQuery {
            who,
            when: None,
            duration: None,
        };
        let mut i = who_len;
        while i < rest.len() {
            let words = &rest[i..];
            if is(words[0], "for") {
                if query.duration.is_some() {
                    return Err(ParseError::invalid(format!("Give one duration: {EXAMPLE}")));
                }
                let (d, used) = parse_dur(&words[1..], "free bob tue 10:00 for 1h")?;
                query.duration = Some(d);
                i += 1 + used;
            } else if let Some((w, used)) = self.when(words)? {
                if query.when.is_some() {
                    return Err(ParseError::invalid(format!("Give one day: {EXAMPLE}")));
                }
                query.when = Some(w);
                i += used;
            } else {
                return Err(left_over(words, "free bob tue 10:00 for 1h"));
            }
        }
        Ok(Command::Free(query))
    }

    fn meet(&self, rest: &[&str]) -> Result<Command, ParseError> {
        const EXAMPLE: &str = "meet bob, carol for 45m next week about design review";
        let rest = match rest.first() {
            Some(w) if is(w, "with") => &rest[1..],
            _ => rest,
        };
        let starts_clause = |words: &[&str]| {
            let w = words[0];
            is(w, "for")
                || is(w, "about")
                || is(w, "optional")
                || (is(w, "quorum") && words.len() > 1)
                || starts_when(words)
        };
        let quoted = quoted(rest);
        let end_of_who = |from: usize| {
            (from..rest.len())
                .find(|&i| !quoted[i] && starts_clause(&rest[i..]))
                .unwrap_or(rest.len())
        };
        let who_len = end_of_who(0);
        let mut m = MeetRequest {
            who: parse_who(&rest[..who_len], EXAMPLE)?,
            optional: Vec::new(),
            duration: None,
            when: None,
            title: None,
            quorum: None,
        };
        let once = |taken: bool, what: &str| {
            if taken {
                Err(ParseError::invalid(format!("Give {what} once: {EXAMPLE}")))
            } else {
                Ok(())
            }
        };
        let mut i = who_len;
        while i < rest.len() {
            let words = &rest[i..];
            let w = words[0];
            if is(w, "for") {
                once(m.duration.is_some(), "the duration")?;
                let (d, used) = parse_dur(&words[1..], "meet bob for 45m")?;
                m.duration = Some(d);
                i += 1 + used;
            } else if is(w, "about") {
                once(m.title.is_some(), "the title")?;
                // The title runs to the next `for <dur>`, `optional` or
                // `quorum N`; day words stay in it ("about plans for today").
                let end = (i + 1..rest.len())
                    .find(|&j| {
                        let ws = &rest[j..];
                        (is(ws[0], "for") && is_dur(&ws[1..]))
                            || is(ws[0], "optional")
                            || (is(ws[0], "quorum") && ws.len() > 1)
                    })
                    .unwrap_or(rest.len());
                if end == i + 1 {
                    return Err(ParseError::invalid(format!(
                        "\"about\" needs a title: {EXAMPLE}"
                    )));
                }
                m.title = Some(rest[i + 1..end].join(" "));
                i = end;
            } else if is(w, "optional") {
                once(!m.optional.is_empty(), "the optional people")?;
                let end = end_of_who(i + 1);
                m.optional = parse_who(&rest[i + 1..end], "meet bob for 30m optional carol, dave")?;
                i = end;
            } else if is(w, "quorum") {
                once(m.quorum.is_some(), "the quorum")?;
                let n = words
                    .get(1)
                    .and_then(|n| n.parse::<u32>().ok())
                    .filter(|n| (1..=1_000).contains(n))
                    .ok_or_else(|| {
                        ParseError::invalid(
                            "\"quorum\" needs how many must accept, e.g. meet team quorum 3",
                        )
                    })?;
                m.quorum = Some(n);
                i += 2;
            } else if let Some((when, used)) = self.when(words)? {
                once(m.when.is_some(), "the day")?;
                m.when = Some(when);
                i += used;
            } else {
                return Err(left_over(words, EXAMPLE));
            }
        }
        Ok(Command::Meet(m))
    }

    fn move_meeting(&self, rest: &[&str]) -> Result<Command, ParseError> {
        const EXAMPLE: &str = "move m3 to thu 10:00";
        let id = parse_id(rest.first().copied(), EXAMPLE)?;
        let after = rest.get(1..).unwrap_or_default();
        let after = match after.first() {
            Some(w) if is(w, "to") => &after[1..],
            _ => after,
        };
        if after.is_empty() {
            return Err(ParseError::invalid(format!("Move it to when? {EXAMPLE}")));
        }
        let to = self.whole_when(after, EXAMPLE)?;
        Ok(Command::Move { id, to })
    }

    fn task(&self, rest: &[&str]) -> Result<Command, ParseError> {
        const EXAMPLE: &str = "task add buy milk due tomorrow";
        let Some((&sub, rest)) = rest.split_first() else {
            return Ok(Command::Tasks);
        };
        match sub.to_ascii_lowercase().as_str() {
            "add" | "new" => {}
            "list" | "ls" => return no_args(rest, Command::Tasks, "tasks"),
            "done" => return one_id(rest, "done 3").map(|id| Command::Done { id }),
            _ => {
                return Err(ParseError::invalid(format!(
                    "To add a task write \"task add\" first: {EXAMPLE}"
                )));
            }
        }
        // `due` starts the day only where the rest is a day ("call about due
        // date" keeps its words).
        let mut text_len = rest.len();
        let mut due = None;
        if let Some(d) = rest.iter().rposition(|w| is(w, "due")) {
            let after = &rest[d + 1..];
            if starts_when(after) {
                due = Some(self.whole_when(after, EXAMPLE)?);
                text_len = d;
            }
        }
        let text = rest[..text_len].join(" ");
        if text.is_empty() {
            return Err(ParseError::invalid(format!("What is the task? {EXAMPLE}")));
        }
        Ok(Command::TaskAdd { text, due })
    }
}

fn handoff(rest: &[&str]) -> Result<Command, ParseError> {
    const EXAMPLE: &str = "handoff 3 to dana note slides are in the shared folder";
    let id = parse_id(rest.first().copied(), EXAMPLE)?;
    let after = rest.get(1..).unwrap_or_default();
    let after = match after.first() {
        Some(w) if is(w, "to") => &after[1..],
        _ => {
            return Err(ParseError::invalid(format!("Hand it to whom? {EXAMPLE}")));
        }
    };
    let note_at = after
        .iter()
        .position(|w| is(w, "note"))
        .unwrap_or(after.len());
    let mut who = parse_who(&after[..note_at], EXAMPLE)?;
    if who.len() > 1 {
        return Err(ParseError::invalid(format!(
            "A task goes to one person at a time: {EXAMPLE}"
        )));
    }
    let note = after.get(note_at + 1..).unwrap_or_default().join(" ");
    if note_at < after.len() && note.is_empty() {
        return Err(ParseError::invalid(format!(
            "\"note\" needs some text: {EXAMPLE}"
        )));
    }
    Ok(Command::Handoff {
        id,
        to: who.remove(0),
        note: (!note.is_empty()).then_some(note),
    })
}

fn contact(rest: &[&str]) -> Result<Command, ParseError> {
    const EXAMPLE: &str = "contact add bob@example.org as Bob agent bob.agent@example.org in team";
    let Some((&sub, rest)) = rest.split_first() else {
        return Ok(Command::Contacts);
    };
    match sub.to_ascii_lowercase().as_str() {
        "add" | "new" => {}
        "list" | "ls" => return no_args(rest, Command::Contacts, "contacts"),
        _ => {
            return Err(ParseError::invalid(format!(
                "To add a contact write \"contact add\" first: {EXAMPLE}"
            )));
        }
    }
    let Some((&jid, rest)) = rest.split_first() else {
        return Err(ParseError::invalid(format!("Whose JID? {EXAMPLE}")));
    };
    let jid = jid_or_error(jid, EXAMPLE)?;
    let rest = match rest.first() {
        Some(w) if is(w, "as") => &rest[1..],
        _ => {
            return Err(ParseError::invalid(format!(
                "Give a name after \"as\": {EXAMPLE}"
            )));
        }
    };
    let mut name_len = rest.len();
    let mut agent = None;
    let mut group = None;
    let mut i = 0;
    while i < rest.len() {
        let w = rest[i];
        if is(w, "agent") && rest.get(i + 1).is_some_and(|j| j.contains('@')) && agent.is_none() {
            name_len = name_len.min(i);
            agent = Some(jid_or_error(rest[i + 1], EXAMPLE)?);
            i += 2;
        } else if is(w, "in") && i + 1 < rest.len() && group.is_none() {
            name_len = name_len.min(i);
            let end = (i + 1..rest.len())
                .find(|&j| is(rest[j], "agent"))
                .unwrap_or(rest.len());
            group = Some(rest[i + 1..end].join(" ")).filter(|g| !g.is_empty());
            i = end;
        } else if name_len < rest.len() {
            return Err(left_over(&rest[i..], EXAMPLE));
        } else {
            i += 1;
        }
    }
    let name = rest[..name_len].join(" ");
    if name.is_empty() {
        return Err(ParseError::invalid(format!(
            "Give a name after \"as\": {EXAMPLE}"
        )));
    }
    Ok(Command::ContactAdd {
        jid,
        name,
        agent,
        group,
    })
}

fn jid_or_error(word: &str, example: &str) -> Result<String, ParseError> {
    // The JID library takes a bare domain as a JID; a person has a local part.
    if !word.contains('@') {
        return Err(ParseError::invalid(format!(
            "\"{}\" is not a JID; write it like bob@example.org: {example}",
            sanitize(word)
        )));
    }
    // The JID parser's sentence quotes the word, so it may run long.
    parse_bare_jid(word)
        .map_err(|e| ParseError::invalid(format!("{}: {example}", sanitize_to(&e, 240))))
}

fn why(rest: &[&str]) -> Result<Command, ParseError> {
    const EXAMPLE: &str = "why bob freebusy";
    let n = rest.len();
    let two = (n >= 3)
        .then(|| action(&format!("{}-{}", rest[n - 2], rest[n - 1])))
        .flatten();
    let (who_words, action) = match two {
        Some(a) => (&rest[..n - 2], Some(a)),
        None if n >= 2 => (&rest[..n - 1], action(rest[n - 1])),
        None => (rest, None),
    };
    let Some(action) = action else {
        return Err(ParseError::invalid(format!(
            "\"why\" needs a person and an action (freebusy, meet, handoff, task-status, contact-card): {EXAMPLE}"
        )));
    };
    Ok(Command::Why {
        who: who_words.join(" "),
        action,
    })
}

/// The action a word names, with the chat commands' words as synonyms.
fn action(word: &str) -> Option<Action> {
    Some(match word.to_ascii_lowercase().as_str() {
        "freebusy" | "free" | "busy" | "free-busy" | "availability" => Action::Freebusy,
        "meet" | "meeting" | "propose-meeting" | "propose" => Action::ProposeMeeting,
        "handoff" | "offer-task" | "task" | "offer" => Action::OfferTask,
        "task-status" | "status" => Action::TaskStatus,
        "contact-card" | "card" | "contact" => Action::ContactCard,
        _ => return None,
    })
}

fn no_args(rest: &[&str], cmd: Command, name: &str) -> Result<Command, ParseError> {
    if rest.is_empty() {
        Ok(cmd)
    } else {
        Err(ParseError::invalid(format!(
            "\"{name}\" takes nothing after it: {name}"
        )))
    }
}

/// `progress <id> <percent>[%]`.
fn progress(rest: &[&str]) -> Result<Command, ParseError> {
    const EXAMPLE: &str = "progress 3 50%";
    let id = parse_id(rest.first().copied(), EXAMPLE)?;
    let Some(word) = rest.get(1) else {
        return Err(ParseError::invalid(format!(
            "How far along is it? {EXAMPLE}"
        )));
    };
    let percent = word
        .trim_end_matches('%')
        .parse::<u8>()
        .ok()
        .filter(|p| *p <= 100)
        .ok_or_else(|| {
            ParseError::invalid(format!(
                "\"{}\" is not a percentage from 0 to 100; {EXAMPLE}",
                sanitize(word)
            ))
        })?;
    match rest.get(2..) {
        Some(more) if !more.is_empty() => Err(left_over(more, EXAMPLE)),
        _ => Ok(Command::Progress { id, percent }),
    }
}

fn one_id(rest: &[&str], example: &str) -> Result<ItemId, ParseError> {
    let id = parse_id(rest.first().copied(), example)?;
    match rest.get(1..) {
        Some(more) if !more.is_empty() => Err(left_over(more, example)),
        _ => Ok(id),
    }
}

fn left_over(words: &[&str], example: &str) -> ParseError {
    ParseError::invalid(format!(
        "I did not understand \"{}\"; write it like this: {example}",
        sanitize(&words.join(" "))
    ))
}

/// The command whose name or synonym is nearest to `word` by edit distance
/// (transpositions count as one), if it is near enough to be a typo.
fn closest_command(word: &str) -> Option<&'static str> {
    // Long words are no typo of a command; this also bounds the work.
    if word.chars().count() > 24 {
        return None;
    }
    let mut best: Option<(usize, &'static str)> = None;
    for c in COMMANDS {
        let first_word = |s: &'static str| s.split(' ').next().unwrap_or(s);
        for candidate in std::iter::once(first_word(c.name)).chain(c.synonyms.iter().copied()) {
            if candidate.len() < 3 {
                continue;
            }
            let d = edit_distance(word, candidate);
            let near = d <= 2 && d < candidate.chars().count().div_ceil(2) + 1;
            if near && best.is_none_or(|(bd, _)| d < bd) {
                best = Some((d, c.name));
            }
        }
    }
    best.map(|(_, name)| name)
}

/// Optimal string alignment distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev2 = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(prev2[j - 2] + 1);
            }
            cur[j] = d;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveTime;
    use proptest::prelude::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
    }

    /// Read on Tuesday 13 January 2026 at 09:00.
    fn read(text: &str) -> Result<Command, ParseError> {
        let today = date(2026, 1, 13);
        parse(text, today, today.and_hms_opt(9, 0, 0).unwrap_or_default())
    }

    fn ok(text: &str) -> Command {
        match read(text) {
            Ok(c) => c,
            Err(e) => panic!("{text}: {e}"),
        }
    }

    fn err(text: &str) -> String {
        match read(text) {
            Ok(c) => panic!("{text} parsed as {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn id(s: &str) -> ItemId {
        ItemId(s.to_string())
    }

    fn day(d: NaiveDate) -> When {
        When::day(d)
    }

    fn at(d: NaiveDate, h: u32, m: u32) -> When {
        When {
            first: d,
            last: d,
            time: NaiveTime::from_hms_opt(h, m, 0),
        }
    }

    fn next_week() -> When {
        When {
            first: date(2026, 1, 19),
            last: date(2026, 1, 25),
            time: None,
        }
    }

    #[test]
    fn help_alone_and_about_one_command() {
        assert_eq!(ok("help"), Command::Help { topic: None });
        assert_eq!(
            ok("Help free"),
            Command::Help {
                topic: Some("free")
            }
        );
        assert_eq!(
            ok("help task add"),
            Command::Help {
                topic: Some("task add")
            }
        );
        assert_eq!(ok("?"), Command::Help { topic: None });
        assert!(err("help agneda").contains("Did you mean \"agenda\""));
    }

    #[test]
    fn agenda_defaults_to_today_and_takes_any_when() {
        assert_eq!(ok("agenda"), Command::Agenda { when: None });
        assert_eq!(
            ok("agenda tomorrow"),
            Command::Agenda {
                when: Some(day(date(2026, 1, 14)))
            }
        );
        assert_eq!(
            ok("AGENDA next week."),
            Command::Agenda {
                when: Some(next_week())
            }
        );
        assert!(err("agenda someday").contains("not a day"));
    }

    #[test]
    fn free_asks_about_a_person_a_span_or_one_slot() {
        assert_eq!(
            ok("free bob"),
            Command::Free(FreeQuery {
                who: vec!["bob".into()],
                when: None,
                duration: None
            })
        );
        assert_eq!(
            ok("free bob next week for 1h"),
            Command::Free(FreeQuery {
                who: vec!["bob".into()],
                when: Some(next_week()),
                duration: Some(Duration::hours(1))
            })
        );
        let slot = ok("free bob tue 10:00 for 1h");
        assert_eq!(
            slot,
            Command::Free(FreeQuery {
                who: vec!["bob".into()],
                when: Some(at(date(2026, 1, 13), 10, 0)),
                duration: Some(Duration::hours(1))
            })
        );
        let Command::Free(q) = slot else {
            panic!("not free");
        };
        let range = q.slot(Duration::minutes(30), chrono_tz::Europe::Berlin);
        assert_eq!(
            range.map(|r| r.start.to_rfc3339()),
            Some("2026-01-13T09:00:00+00:00".to_string())
        );
        assert_eq!(range.map(|r| r.duration()), Some(Duration::hours(1)));
    }

    #[test]
    fn free_takes_several_people_and_clauses_in_either_order() {
        assert_eq!(
            ok("free Bob Smith, carol@example.org for 30m tomorrow?"),
            Command::Free(FreeQuery {
                who: vec!["Bob Smith".into(), "carol@example.org".into()],
                when: Some(day(date(2026, 1, 14))),
                duration: Some(Duration::minutes(30))
            })
        );
    }

    #[test]
    fn free_explains_a_missing_or_broken_duration() {
        assert_eq!(
            err("free bob tue 10:00 for"),
            "\"for\" needs a duration like 30m, 1h or 1h30m: free bob tue 10:00 for 1h"
        );
        assert!(err("free bob for an hour").contains("30m, 1h or 1h30m"));
        assert!(err("free").contains("Who?"));
        assert!(err("free bob tue please").contains("\"please\""));
    }

    #[test]
    fn meet_with_people_duration_week_and_title() {
        assert_eq!(
            ok("meet bob, carol for 45m next week about design review"),
            Command::Meet(MeetRequest {
                who: vec!["bob".into(), "carol".into()],
                optional: vec![],
                duration: Some(Duration::minutes(45)),
                when: Some(next_week()),
                title: Some("design review".into()),
                quorum: None,
            })
        );
    }

    #[test]
    fn a_quoted_name_may_look_like_a_day() {
        assert_eq!(
            ok("free \"Sun Li\" tomorrow"),
            Command::Free(FreeQuery {
                who: vec!["Sun Li".into()],
                when: Some(day(date(2026, 1, 14))),
                duration: None
            })
        );
        let Command::Meet(m) =
            ok("meet \u{201C}Tue Nguyen\u{201D}, bob for 1h optional \"May Today\"")
        else {
            panic!("not meet");
        };
        assert_eq!(m.who, ["Tue Nguyen", "bob"]);
        assert_eq!(m.optional, ["May Today"]);
        assert!(err("meet bob for 2 days").ends_with("meet bob for 45m"));
    }

    #[test]
    fn meet_a_group_with_a_quorum() {
        assert_eq!(
            ok("meet team quorum 3"),
            Command::Meet(MeetRequest {
                who: vec!["team".into()],
                optional: vec![],
                duration: None,
                when: None,
                title: None,
                quorum: Some(3),
            })
        );
    }

    #[test]
    fn meet_with_optional_people_and_a_title_holding_day_words() {
        assert_eq!(
            ok("meet with bob for 1h30m fri about plans for today optional carol, dave quorum 2"),
            Command::Meet(MeetRequest {
                who: vec!["bob".into()],
                optional: vec!["carol".into(), "dave".into()],
                duration: Some(Duration::minutes(90)),
                when: Some(day(date(2026, 1, 16))),
                title: Some("plans for today".into()),
                quorum: Some(2),
            })
        );
        // The title stops where a duration clause starts.
        let Command::Meet(m) = ok("meet bob about sync for 30m tomorrow") else {
            panic!("not meet");
        };
        assert_eq!(m.title.as_deref(), Some("sync"));
        assert_eq!(m.duration, Some(Duration::minutes(30)));
        assert_eq!(m.when, Some(day(date(2026, 1, 14))));
        assert!(err("meet bob quorum many").contains("quorum 3"));
        assert!(err("meet bob for 1h for 2h").contains("once"));
        assert!(err("meet bob about").contains("needs a title"));
    }

    #[test]
    fn meetings_are_listed_cancelled_moved_and_declined_by_id() {
        assert_eq!(ok("meetings"), Command::Meetings);
        assert_eq!(ok("cancel m3"), Command::Cancel { id: id("m3") });
        assert_eq!(
            ok("move m3 to thu 14:00"),
            Command::Move {
                id: id("m3"),
                to: at(date(2026, 1, 15), 14, 0)
            }
        );
        assert_eq!(
            ok("move 7 to next week"),
            Command::Move {
                id: id("7"),
                to: next_week()
            }
        );
        assert_eq!(ok("decline 12"), Command::Decline { id: id("12") });
        assert!(err("move m3").contains("to when"));
        assert!(err("cancel").contains("cancel m3"));
        assert!(err("cancel m3 m4").contains("\"m4\""));
    }

    #[test]
    fn tasks_are_listed_added_with_a_due_day_and_done() {
        assert_eq!(ok("tasks"), Command::Tasks);
        assert_eq!(
            ok("task add buy milk due tomorrow"),
            Command::TaskAdd {
                text: "buy milk".into(),
                due: Some(day(date(2026, 1, 14)))
            }
        );
        assert_eq!(
            ok("task add Call about the due date"),
            Command::TaskAdd {
                text: "Call about the due date".into(),
                due: None
            }
        );
        assert_eq!(
            ok("task add send slides due fri 17:00"),
            Command::TaskAdd {
                text: "send slides".into(),
                due: Some(at(date(2026, 1, 16), 17, 0))
            }
        );
        assert_eq!(ok("done 3"), Command::Done { id: id("3") });
        assert_eq!(ok("task done t3"), Command::Done { id: id("t3") });
        assert!(err("task add due tomorrow").contains("What is the task?"));
        assert!(err("task buy milk").contains("task add buy milk"));
        assert!(err("task add pay rent due 2026-02-30").contains("YYYY-MM-DD"));
    }

    #[test]
    fn tasks_are_handed_off_with_a_note_and_taken_back() {
        assert_eq!(
            ok("handoff 3 to dana note slides are in the shared folder"),
            Command::Handoff {
                id: id("3"),
                to: "dana".into(),
                note: Some("slides are in the shared folder".into())
            }
        );
        assert_eq!(
            ok("hand off t4 to Dana Scully"),
            Command::Handoff {
                id: id("t4"),
                to: "Dana Scully".into(),
                note: None
            }
        );
        assert_eq!(ok("takeback 3"), Command::Takeback { id: id("3") });
        assert_eq!(ok("take back 3"), Command::Takeback { id: id("3") });
        assert!(err("handoff 3 dana").contains("to whom"));
        assert!(err("handoff 3 to bob, carol").contains("one person"));
    }

    #[test]
    fn pending_requests_are_approved_or_denied() {
        assert_eq!(ok("pending"), Command::Pending);
        assert_eq!(
            ok("approve 4"),
            Command::Approve {
                id: id("4"),
                due: None
            }
        );
        let Command::Approve { due: Some(due), .. } = ok("approve 4 due fri") else {
            panic!("no due");
        };
        assert_eq!(due.first, date(2026, 1, 16));
        assert!(read("approve 4 due").is_err());
        assert!(read("approve 4 tomorrow").is_err());
        assert_eq!(ok("deny #4"), Command::Deny { id: id("4") });
        assert!(err("approve").contains("approve 4"));
    }

    #[test]
    fn contacts_are_listed_and_added_with_agent_and_group() {
        assert_eq!(ok("contacts"), Command::Contacts);
        assert_eq!(
            ok("contact add bob@example.org as Bob agent bob.agent@example.org in team"),
            Command::ContactAdd {
                jid: "bob@example.org".into(),
                name: "Bob".into(),
                agent: Some("bob.agent@example.org".into()),
                group: Some("team".into()),
            }
        );
        assert_eq!(
            ok("contact add Carol@Example.org as Carol Danvers"),
            Command::ContactAdd {
                jid: "carol@example.org".into(),
                name: "Carol Danvers".into(),
                agent: None,
                group: None,
            }
        );
        assert!(err("contact add bob@example.org").contains("as Bob"));
        assert!(err("contact add bob as Bob").contains("bob@example.org"));
        assert!(err("contact add bob@example.org/phone as Bob").contains("bare JID"));
    }

    #[test]
    fn log_and_why_name_people_and_actions() {
        assert_eq!(ok("log"), Command::Log { who: None });
        assert_eq!(
            ok("log Bob"),
            Command::Log {
                who: Some("Bob".into())
            }
        );
        assert_eq!(
            ok("why bob freebusy"),
            Command::Why {
                who: "bob".into(),
                action: Action::Freebusy
            }
        );
        assert_eq!(
            ok("why Bob Smith propose meeting"),
            Command::Why {
                who: "Bob Smith".into(),
                action: Action::ProposeMeeting
            }
        );
        assert_eq!(
            ok("why carol handoff"),
            Command::Why {
                who: "carol".into(),
                action: Action::OfferTask
            }
        );
        assert_eq!(
            ok("why dana task-status"),
            Command::Why {
                who: "dana".into(),
                action: Action::TaskStatus
            }
        );
        assert_eq!(
            ok("why eve contact-card"),
            Command::Why {
                who: "eve".into(),
                action: Action::ContactCard
            }
        );
        assert!(err("why bob").contains("why bob freebusy"));
        assert!(err("why bob dance").contains("freebusy, meet"));
    }

    #[test]
    fn this_week_ends_at_sundays_midnight_in_summer_time_in_berlin() {
        // Tuesday 24 March 2026; clocks go forward on Sunday the 29th.
        let today = date(2026, 3, 24);
        let now = today.and_hms_opt(12, 0, 0).unwrap_or_default();
        let Ok(Command::Agenda { when: Some(w) }) = parse("agenda this week", today, now) else {
            panic!("not an agenda");
        };
        let r = w.to_utc_range(chrono_tz::Europe::Berlin);
        assert_eq!(r.start.to_rfc3339(), "2026-03-23T23:00:00+00:00");
        assert_eq!(r.end.to_rfc3339(), "2026-03-29T22:00:00+00:00");
    }

    #[test]
    fn keywords_ignore_case_spaces_and_a_trailing_question_mark() {
        assert_eq!(ok("  FREE   bob   TOMORROW ?"), ok("free bob tomorrow"));
        assert_eq!(
            ok("Agenda Today."),
            Command::Agenda {
                when: Some(day(date(2026, 1, 13)))
            }
        );
    }

    #[test]
    fn an_unknown_command_gets_the_closest_one() {
        assert_eq!(
            err("agneda"),
            "Unknown command \"agneda\". Did you mean \"agenda\"? Send \"help\" for all commands."
        );
        assert!(err("meetngs").contains("\"meetings\""));
        assert!(err("contcts").contains("\"contacts\""));
        assert!(err("aprove 4").contains("\"approve\""));
        assert_eq!(
            err("xyzzy"),
            "Unknown command \"xyzzy\". Send \"help\" for all commands."
        );
    }

    #[test]
    fn empty_and_oversized_messages_get_an_answer() {
        assert!(err("").contains("help"));
        assert!(err(" .? ").contains("help"));
        let long = "a".repeat(MAX_INPUT + 1);
        assert!(err(&long).contains("too long"));
    }

    #[test]
    fn a_line_break_cannot_smuggle_a_second_command() {
        // One message is one command: the second line is read as words of the first.
        assert!(read("agenda\napprove 4").is_err());
        let Command::TaskAdd { text, .. } = ok("task add buy milk\r\napprove 4") else {
            panic!("not task add");
        };
        assert_eq!(text, "buy milk approve 4");
    }

    #[test]
    fn every_help_example_parses_to_its_own_command() {
        for c in COMMANDS {
            for e in c.examples {
                assert_eq!(read(e).map(|cmd| cmd.name()), Ok(c.name), "{e}");
            }
        }
        for c in super::super::help::PLACEHOLDERS {
            for e in c.examples {
                assert!(read(e).is_ok(), "{e}: {:?}", read(e));
            }
        }
    }

    #[test]
    fn parse_at_reads_the_day_in_the_owners_zone() {
        use chrono::TimeZone;
        // 23:30 UTC on Monday is already Tuesday in Berlin.
        let now = Utc
            .with_ymd_and_hms(2026, 1, 12, 23, 30, 0)
            .single()
            .unwrap_or_default();
        assert_eq!(
            parse_at("agenda today", now, chrono_tz::Europe::Berlin),
            Ok(Command::Agenda {
                when: Some(day(date(2026, 1, 13)))
            })
        );
    }

    const WORDS: &[&str] = &[
        "help",
        "agenda",
        "free",
        "meet",
        "meetings",
        "cancel",
        "move",
        "decline",
        "tasks",
        "task",
        "add",
        "done",
        "handoff",
        "takeback",
        "pending",
        "approve",
        "deny",
        "contacts",
        "contact",
        "log",
        "why",
        "bob",
        "carol",
        ",",
        "for",
        "about",
        "optional",
        "quorum",
        "to",
        "note",
        "due",
        "as",
        "agent",
        "in",
        "at",
        "today",
        "tomorrow",
        "tue",
        "sunday",
        "this",
        "next",
        "week",
        "2026-01-13",
        "2026-01-13..2026-01-20",
        "..",
        "10:00",
        "25:99",
        "10am",
        "30m",
        "1h30m",
        "90",
        "min",
        "3",
        "m3",
        "#",
        "bob@example.org",
        "freebusy",
        "meeting",
        "?",
        ".",
        "\n",
        "é",
        "\u{202E}",
    ];

    #[test]
    fn progress_takes_an_id_and_a_percentage() {
        let Command::Progress { id, percent } = ok("progress 3 50%") else {
            panic!("not progress");
        };
        assert_eq!((id.0.as_str(), percent), ("3", 50));
        assert!(matches!(
            ok("progress 3 100"),
            Command::Progress { percent: 100, .. }
        ));
        for bad in [
            "progress 3",
            "progress 3 101%",
            "progress 3 half",
            "progress 3 50% more",
        ] {
            assert!(read(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn parse_never_panics_and_finishes_quickly_on_any_text(text in any::<String>()) {
            let started = std::time::Instant::now();
            let _ = read(&text);
            prop_assert!(started.elapsed() < std::time::Duration::from_millis(500));
        }

        #[test]
        fn parse_never_panics_on_grammar_words(words in prop::collection::vec(prop::sample::select(WORDS), 0..40)) {
            let text = words.join(" ");
            let started = std::time::Instant::now();
            match read(&text) {
                Ok(_) => {}
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
            prop_assert!(started.elapsed() < std::time::Duration::from_millis(500));
        }

        #[test]
        fn long_hostile_messages_stay_bounded(word in prop::sample::select(WORDS), n in 1usize..400) {
            let text = format!("meet {}", vec![word; n].join(" "));
            let started = std::time::Instant::now();
            let _ = read(&text);
            prop_assert!(started.elapsed() < std::time::Duration::from_millis(500));
        }
    }
}
