//! Sharing policies: the owner's `policies/*.toml`, their checks, and the
//! pure evaluator that decides what another person's agent may learn or do.
//!
//! Owns the policy file syntax ([`file`](mod@file)), the checks against the
//! address book ([`check`](mod@check)), the decision for one request
//! ([`evaluate`](mod@evaluate)), the cut-down of the owner's calendar to
//! what a decision allows ([`disclose`](mod@disclose)), the human
//! explanation of a decision ([`explain`](mod@explain)) and owner-written
//! expectation files ([`expect`](mod@expect)).
//!
//! Everything here except [`file::load_dir`] is pure: no database, no
//! network, no clock (callers pass `now`), no rate counters (callers pass
//! how many requests a peer already made). It must not touch the store, the
//! XMPP layer or the disclosure log; it only returns values for them.

pub mod check;
pub mod disclose;
pub mod evaluate;
pub mod expect;
pub mod explain;
pub mod file;
pub mod watch;

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

use crate::calendar::availability::WorkingHours;
use crate::domain::Contact;

pub use crate::error::{Diagnostic, PolicyError, Severity};
pub use check::check;
pub use disclose::{
    CalendarView, DisclosedEvent, Disclosure, allowed_ranges, allowed_window, disclose,
    meeting_fits,
};
pub use evaluate::{Decision, Limits, Outcome, RateWindow, Request, Step, evaluate};
pub use expect::{CaseResult, run_expectations};
pub use explain::{Consideration, Explanation, explain};
pub use file::{load_dir, parse_files};
pub use watch::{PolicyWatcher, Rejection};

/// How much of the owner's free/busy time a peer may see, from least to most.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    /// Nothing: the request is refused as "not permitted".
    #[default]
    None,
    /// Whether one proposed slot works, and nothing else.
    YesNo,
    /// A few free slots of the requested length.
    Slots,
    /// Busy and tentative stretches, without titles.
    Busy,
    /// Busy stretches plus titles and places of non-private events.
    Details,
}

impl Level {
    pub const ALL: [Level; 5] = [
        Level::None,
        Level::YesNo,
        Level::Slots,
        Level::Busy,
        Level::Details,
    ];

    /// The name policy files use.
    pub fn name(self) -> &'static str {
        match self {
            Level::None => "none",
            Level::YesNo => "yes-no",
            Level::Slots => "slots",
            Level::Busy => "busy",
            Level::Details => "details",
        }
    }

    pub fn from_name(name: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.name() == name)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a peer asks to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Learn when the owner is free or busy.
    Freebusy,
    /// Propose (and book) a meeting with the owner.
    ProposeMeeting,
    /// Hand a task to the owner.
    OfferTask,
    /// Read the status of a task the owner took on.
    TaskStatus,
    /// Read the owner's contact card.
    ContactCard,
}

impl Action {
    pub const ALL: [Action; 5] = [
        Action::Freebusy,
        Action::ProposeMeeting,
        Action::OfferTask,
        Action::TaskStatus,
        Action::ContactCard,
    ];

    /// The name policy files use.
    pub fn name(self) -> &'static str {
        match self {
            Action::Freebusy => "freebusy",
            Action::ProposeMeeting => "propose-meeting",
            Action::OfferTask => "offer-task",
            Action::TaskStatus => "task-status",
            Action::ContactCard => "contact-card",
        }
    }

    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == name)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a rule decides for the requests it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Effect {
    Allow,
    Deny,
    /// Hold the request and ask the owner, who approves or denies by chat.
    Ask,
}

impl Effect {
    pub fn name(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
            Effect::Ask => "ask",
        }
    }
}

/// Whom a rule is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Who {
    /// Any peer at all, known or not.
    Anyone,
    /// Any peer in the address book.
    AnyContact,
    /// Contacts in this group.
    Group(String),
    /// One contact, by name or by JID (theirs or their agent's).
    Contact(String),
}

impl Who {
    /// How narrow this is; narrower rules win over broader ones.
    pub fn scope(&self) -> Scope {
        match self {
            Who::Anyone => Scope::Anyone,
            Who::AnyContact => Scope::AnyContact,
            Who::Group(_) => Scope::Group,
            Who::Contact(_) => Scope::Contact,
        }
    }

    /// Whether the peer, resolved to `contact` (if known), is meant.
    pub fn matches(&self, contact: Option<&Contact>) -> bool {
        match (self, contact) {
            (Who::Anyone, _) => true,
            (_, None) => false,
            (Who::AnyContact, Some(_)) => true,
            (Who::Group(g), Some(c)) => c.groups.iter().any(|cg| cg.eq_ignore_ascii_case(g)),
            (Who::Contact(x), Some(c)) => names_contact(x, c),
        }
    }
}

/// Whether `x` (as written after `contact:`) is `c`'s name or one of its JIDs.
pub(crate) fn names_contact(x: &str, c: &Contact) -> bool {
    c.name.eq_ignore_ascii_case(x) || c.is_known_as(x)
}

impl fmt::Display for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Who::Anyone => f.write_str("anyone"),
            Who::AnyContact => f.write_str("any contact"),
            Who::Group(g) => write!(f, "group {g}"),
            Who::Contact(c) => write!(f, "contact {c}"),
        }
    }
}

/// How narrowly a rule names the peer, broadest first: the narrowest
/// matching allow/ask rule decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Anyone,
    AnyContact,
    Group,
    Contact,
}

/// Which hours a rule shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hours {
    /// The owner's configured working hours.
    Working,
    /// All day, every day.
    Any,
    /// The same wall-clock spans every day, in the owner's zone.
    Daily(Arc<WorkingHours>),
}

impl Hours {
    /// The spans every day of the week, e.g. `08:00-20:00`.
    pub(crate) fn daily(spans: &[(NaiveTime, NaiveTime)]) -> Result<Hours, String> {
        let mut hours = WorkingHours::none();
        for day in [
            chrono::Weekday::Mon,
            chrono::Weekday::Tue,
            chrono::Weekday::Wed,
            chrono::Weekday::Thu,
            chrono::Weekday::Fri,
            chrono::Weekday::Sat,
            chrono::Weekday::Sun,
        ] {
            // The engine's message names a weekday; the rule's spans are every day's.
            hours.set_day(day, spans.to_vec()).map_err(|e| {
                e.split_once(": ")
                    .map_or(e.clone(), |(_, rest)| rest.to_string())
            })?;
        }
        Ok(Hours::Daily(Arc::new(hours)))
    }
}

impl fmt::Display for Hours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hours::Working => f.write_str("working hours"),
            Hours::Any => f.write_str("any time of day"),
            Hours::Daily(h) => write!(f, "{} each day", h.day_spec(chrono::Weekday::Mon)),
        }
    }
}

/// At most `count` requests per `period` from one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    pub count: u32,
    pub period: Duration,
}

impl Default for Rate {
    /// The spec's default: 20 requests an hour per peer.
    fn default() -> Self {
        Rate {
            count: 20,
            period: Duration::hours(1),
        }
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per = match self.period.num_seconds() {
            60 => "minute".to_string(),
            3_600 => "hour".to_string(),
            86_400 => "day".to_string(),
            604_800 => "week".to_string(),
            _ => crate::domain::time::format_duration(self.period),
        };
        write!(f, "{}/{per}", self.count)
    }
}

/// Where something was written: file name as given to the loader, 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Position {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One `[[rule]]` as read from a policy file, with defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Unique across all files.
    pub name: String,
    /// Where the rule's `[[rule]]` header is.
    pub at: Position,
    /// Whom it is about (any of them), each with where it was written.
    pub who: Vec<(Who, Position)>,
    /// What it is about (any of them); `any` in the file is every action.
    pub actions: Vec<Action>,
    pub effect: Effect,
    /// Free/busy: how much is shown (`none` for deny rules and other actions).
    pub level: Level,
    /// Free/busy and meetings: how far ahead from now, as written. Free/busy
    /// defaults to 14 days ([`Rule::window_for`]); meetings to no limit.
    pub window: Option<Duration>,
    /// Free/busy and meetings: which hours (default any).
    pub hours: Hours,
    /// Free/busy: busy blocks are rounded outward to this grid (default: exact).
    pub granularity: Option<Duration>,
    /// Free/busy at `slots`: at most this many slots (default 3).
    pub max_slots: usize,
    /// Meetings: the longest meeting allowed (default: no limit).
    pub max_duration: Option<Duration>,
    pub rate: Rate,
    /// After this instant the rule matches nothing.
    pub until: Option<DateTime<Utc>>,
    /// Where `until` was written, for the "has passed" warning.
    pub until_at: Option<Position>,
    /// `ask`: how long the owner has to answer (default 4 h).
    pub expires: Duration,
}

impl Rule {
    /// The rule's name and where it is, for decisions and logs.
    pub fn reference(&self) -> RuleRef {
        RuleRef {
            name: self.name.clone(),
            file: self.at.file.clone(),
            line: self.at.line,
        }
    }

    /// Whether the rule is still in force at `now`.
    pub fn in_force(&self, now: DateTime<Utc>) -> bool {
        self.until.is_none_or(|u| now < u)
    }

    /// How far ahead this rule reaches for `action`; `None`: no limit.
    pub fn window_for(&self, action: Action) -> Option<Duration> {
        match action {
            Action::Freebusy => Some(self.window.unwrap_or(file::DEFAULT_WINDOW)),
            _ => self.window,
        }
    }

    pub fn covers(&self, action: Action) -> bool {
        self.actions.contains(&action)
    }

    /// The narrowest of this rule's `who` entries that names the peer.
    pub fn scope_for(&self, contact: Option<&Contact>) -> Option<Scope> {
        self.who
            .iter()
            .filter(|(w, _)| w.matches(contact))
            .map(|(w, _)| w.scope())
            .max()
    }

    /// The rate limit as `(count, period)`: the caller counts the peer's
    /// answered requests over `period` before asking for a decision.
    pub fn rate(&self) -> (u32, Duration) {
        (self.rate.count, self.rate.period)
    }

    /// How the rule names whom it is about, for people.
    pub fn who_text(&self) -> String {
        self.who
            .iter()
            .map(|(w, _)| w.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A rule as decisions and the disclosure log name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RuleRef {
    pub name: String,
    pub file: String,
    pub line: usize,
}

impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}:{})", self.name, self.file, self.line)
    }
}

/// A declared group: `[groups] team = "People you work with"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDecl {
    pub name: String,
    pub description: String,
    pub at: Position,
}

/// Every rule and group of a policy directory, in file order (files sorted
/// by name, rules in the order written). A set that loaded has no errors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicySet {
    pub groups: Vec<GroupDecl>,
    pub rules: Vec<Rule>,
}

impl PolicySet {
    /// The empty set: every request is denied.
    pub fn deny_all() -> Self {
        Self::default()
    }

    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.name == name)
    }

    /// Whether a policy file declares `group`.
    pub fn declares(&self, group: &str) -> bool {
        self.groups
            .iter()
            .any(|g| g.name.eq_ignore_ascii_case(group))
    }
}

/// The contact a peer's bare JID belongs to: a peer is a contact when it is
/// the person or their agent.
pub fn resolve_peer<'c>(peer: &str, contacts: &'c [Contact]) -> Option<&'c Contact> {
    let peer = peer.trim();
    contacts.iter().find(|c| c.is_known_as(peer))
}
