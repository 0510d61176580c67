//! The decision for one request: which rule applies, what it decides and how
//! much it grants.
//!
//! Owns the precedence of the spec: no matching rule → deny (the implicit
//! default, not a rule); a matching `deny` wins at any scope; among
//! matching `allow`/`ask` rules the narrowest scope wins (contact > group >
//! any contact > anyone); a tie goes to the least disclosure (lower level,
//! then `ask` before `allow`, then the smaller window, then file order).
//! Pure: the clock and the peer's request count are parameters. Must not
//! look at the calendar; cutting it down is [`disclose`](mod@super::disclose).

use chrono::{DateTime, Duration, Utc};

use super::{Action, Effect, Hours, Level, PolicySet, Rate, Rule, RuleRef, Scope, resolve_peer};
use crate::domain::time::format_duration;
use crate::domain::{Contact, TimeRange};

/// What a peer asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The bare JID the request came from: the person's or their agent's.
    pub peer: String,
    pub action: Action,
    /// Free/busy: the stretch of time asked about (default: all the rule allows).
    pub window: Option<TimeRange>,
    /// Slots and meetings: how long (default 30 minutes for slots).
    pub duration: Option<Duration>,
    /// `yes-no` answers the first of these only; meetings propose them.
    pub proposed: Vec<TimeRange>,
    /// The peer may ask for less than the rule allows, never more.
    pub requested_level: Option<Level>,
}

impl Request {
    /// A request for `action` from `peer`, asking about everything the rule allows.
    pub fn new(peer: impl Into<String>, action: Action) -> Self {
        Self {
            peer: peer.into(),
            action,
            window: None,
            duration: None,
            proposed: Vec::new(),
            requested_level: None,
        }
    }
}

/// How many requests of any action the peer made that were answered within
/// the last `period` (the deciding rule's [`Rule::rate`] period). The
/// evaluator asks only for the period it needs.
pub trait RateWindow {
    fn answered_within(&self, period: Duration) -> u32;
}

impl<F: Fn(Duration) -> u32> RateWindow for F {
    fn answered_within(&self, period: Duration) -> u32 {
        self(period)
    }
}

/// What happens to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allow,
    Deny,
    /// Held for the owner, who must answer before `expires`.
    Ask {
        expires: DateTime<Utc>,
    },
    /// A rule would allow or ask, but the peer used up its rate.
    RateLimited,
}

impl Outcome {
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Deny => "deny",
            Outcome::Ask { .. } => "ask",
            Outcome::RateLimited => "rate-limited",
        }
    }
}

/// The bounds the deciding rule puts on what is disclosed or booked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// How far ahead from now; `None`: no limit (meetings only).
    pub window: Option<Duration>,
    pub hours: Hours,
    /// Busy blocks are rounded outward to this grid; `None`: exact.
    pub granularity: Option<Duration>,
    pub max_slots: usize,
    pub max_duration: Option<Duration>,
    pub rate: Rate,
}

impl Limits {
    fn of(rule: &Rule, action: Action) -> Self {
        Self {
            window: rule.window_for(action),
            hours: rule.hours.clone(),
            granularity: rule.granularity,
            max_slots: rule.max_slots,
            max_duration: rule.max_duration,
            rate: rule.rate,
        }
    }
}

/// The answer to a request, and the rule that gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    /// `None` only for the implicit default deny.
    pub rule: Option<RuleRef>,
    /// Free/busy: the level granted (the rule's, or less if less was asked);
    /// `none` for denials and for other actions.
    pub level: Level,
    /// For people and the disclosure log.
    pub reason: String,
    /// The deciding rule's bounds when it allows or asks.
    pub limits: Option<Limits>,
}

impl Decision {
    /// Whether anything may be disclosed or done now.
    pub fn allows(&self) -> bool {
        self.outcome == Outcome::Allow
    }

    /// The decision once the owner approved an `ask`: the rule's grant, now allowed.
    pub fn approved(mut self) -> Self {
        if matches!(self.outcome, Outcome::Ask { .. }) {
            self.outcome = Outcome::Allow;
            self.reason = format!("{}; you approved it", self.reason);
        }
        self
    }
}

/// Which precedence step decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// No rule matched: denied by default.
    NoRuleMatches,
    /// A matching deny wins over everything else.
    DenyWins,
    /// Exactly one allow/ask rule matched.
    OnlyMatch,
    /// Several matched; the one naming the peer most narrowly decided.
    NarrowestScope,
    /// Several matched equally narrowly; the one disclosing least decided.
    LeastDisclosure,
}

/// The rules relevant to one request and which one decides.
#[derive(Debug, Clone)]
pub(crate) struct Choice {
    pub(crate) step: Step,
    /// Index into the set's rules.
    pub(crate) deciding: Option<usize>,
    /// The matching allow/ask rules, best first.
    pub(crate) permits: Vec<usize>,
}

/// Whether `rule` applies to this request at `now`, and at which scope.
pub(crate) fn match_scope(
    rule: &Rule,
    contact: Option<&Contact>,
    action: Action,
    now: DateTime<Utc>,
) -> Option<Scope> {
    if !rule.covers(action) || !rule.in_force(now) {
        return None;
    }
    rule.scope_for(contact)
}

/// The level a rule shows for `action`: only free/busy has levels.
fn level_for(rule: &Rule, action: Action) -> Level {
    if action == Action::Freebusy {
        rule.level
    } else {
        Level::None
    }
}

pub(crate) fn choose(
    set: &PolicySet,
    contact: Option<&Contact>,
    action: Action,
    now: DateTime<Utc>,
) -> Choice {
    let mut permits: Vec<(usize, Scope)> = Vec::new();
    let mut denies: Vec<(usize, Scope)> = Vec::new();
    for (i, rule) in set.rules.iter().enumerate() {
        if let Some(scope) = match_scope(rule, contact, action, now) {
            match rule.effect {
                Effect::Deny => denies.push((i, scope)),
                Effect::Allow | Effect::Ask => permits.push((i, scope)),
            }
        }
    }
    // Narrowest first, then the least disclosure, then file order: sorting
    // on a total key makes the choice deterministic.
    let key = |&(i, scope): &(usize, Scope)| {
        let r = &set.rules[i];
        (
            std::cmp::Reverse(scope),
            level_for(r, action),
            r.effect == Effect::Allow,
            // No limit sorts after every limit.
            r.window_for(action)
                .map_or((true, Duration::zero()), |w| (false, w)),
            i,
        )
    };
    permits.sort_by_key(key);
    denies.sort_by_key(|&(i, scope)| (std::cmp::Reverse(scope), i));
    let step = if !denies.is_empty() {
        Step::DenyWins
    } else if permits.is_empty() {
        Step::NoRuleMatches
    } else if permits.len() == 1 {
        Step::OnlyMatch
    } else if permits[0].1 > permits[1].1 {
        Step::NarrowestScope
    } else {
        Step::LeastDisclosure
    };
    let deciding = denies.first().or(permits.first()).map(|&(i, _)| i);
    Choice {
        step,
        deciding,
        permits: permits.into_iter().map(|(i, _)| i).collect(),
    }
}

/// Decides `request` at `now`. `history` says how many of the peer's
/// requests were answered within a period; it is asked only when a rule
/// would allow or ask.
pub fn evaluate(
    set: &PolicySet,
    contacts: &[Contact],
    request: &Request,
    now: DateTime<Utc>,
    history: &dyn RateWindow,
) -> Decision {
    let contact = resolve_peer(&request.peer, contacts);
    let choice = choose(set, contact, request.action, now);
    decide(set, contact, request, now, history, &choice)
}

pub(crate) fn decide(
    set: &PolicySet,
    contact: Option<&Contact>,
    request: &Request,
    now: DateTime<Utc>,
    history: &dyn RateWindow,
    choice: &Choice,
) -> Decision {
    let Some(rule) = choice.deciding.and_then(|i| set.rules.get(i)) else {
        return Decision {
            outcome: Outcome::Deny,
            rule: None,
            level: Level::None,
            reason: "no rule matches: denied by default".into(),
            limits: None,
        };
    };
    let deny = |reason: String| Decision {
        outcome: Outcome::Deny,
        rule: Some(rule.reference()),
        level: Level::None,
        reason,
        limits: None,
    };
    let scope_text = matched_who(rule, contact);
    if rule.effect == Effect::Deny {
        let beaten = choice
            .permits
            .first()
            .and_then(|&i| set.rules.get(i))
            .map(|p| format!("; deny wins over {}", p.name))
            .unwrap_or_default();
        return deny(format!("rule {} ({scope_text}) denies{beaten}", rule.name));
    }

    // Limits that refuse the request outright rather than cut it down.
    if request.action == Action::ProposeMeeting {
        let longest = request
            .proposed
            .iter()
            .map(TimeRange::duration)
            .chain(request.duration)
            .max();
        if let (Some(max), Some(asked)) = (rule.max_duration, longest)
            && asked > max
        {
            return deny(format!(
                "rule {} allows meetings of up to {}, and {} was proposed",
                rule.name,
                format_duration(max),
                format_duration(asked)
            ));
        }
        if request.proposed.iter().any(|p| p.start < now) {
            return deny(format!(
                "rule {} allows meetings from now on, and a proposed time has passed",
                rule.name
            ));
        }
        if let Some(window) = rule.window {
            let horizon = now
                .checked_add_signed(window)
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            if request.proposed.iter().any(|p| p.end > horizon) {
                return deny(format!(
                    "rule {} allows meetings only within the next {}",
                    rule.name,
                    format_duration(window)
                ));
            }
        }
    }

    let (limit, period) = rule.rate();
    if history.answered_within(period) >= limit {
        return Decision {
            outcome: Outcome::RateLimited,
            rule: Some(rule.reference()),
            level: Level::None,
            reason: format!(
                "rule {} allows {} requests; this peer has used them all, try later",
                rule.name, rule.rate
            ),
            limits: None,
        };
    }

    let rule_level = level_for(rule, request.action);
    let level = match request.requested_level {
        Some(asked) => asked.min(rule_level),
        None => rule_level,
    };
    let what = if request.action == Action::Freebusy {
        let mut w = level.name().to_string();
        if level < rule_level {
            w = format!("{w} (as asked; the rule allows up to {rule_level})");
        }
        w
    } else {
        request.action.name().to_string()
    };
    let (outcome, verb) = match rule.effect {
        Effect::Ask => {
            let expires = now.checked_add_signed(rule.expires).unwrap_or(now);
            (
                Outcome::Ask { expires },
                format!(
                    "asks you first (within {}) before it allows",
                    format_duration(rule.expires)
                ),
            )
        }
        _ => (Outcome::Allow, "allows".to_string()),
    };
    Decision {
        outcome,
        rule: Some(rule.reference()),
        level,
        reason: format!("rule {} ({scope_text}) {verb} {what}", rule.name),
        limits: Some(Limits::of(rule, request.action)),
    }
}

/// The narrowest of the rule's `who` entries that names the peer, for people.
pub(crate) fn matched_who(rule: &Rule, contact: Option<&Contact>) -> String {
    rule.who
        .iter()
        .filter(|(w, _)| w.matches(contact))
        .max_by_key(|(w, _)| w.scope())
        .map_or_else(|| rule.who_text(), |(w, _)| w.to_string())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use chrono_tz::Tz;

    use super::*;
    use crate::policy::parse_files;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    fn now() -> DateTime<Utc> {
        at(2026, 1, 12, 8, 0)
    }

    fn contact(name: &str, jid: &str, agent: Option<&str>, groups: &[&str]) -> Contact {
        Contact {
            name: name.into(),
            jid: jid.into(),
            agent_jid: agent.map(Into::into),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    fn people() -> Vec<Contact> {
        vec![
            contact(
                "Bob",
                "bob@example.org",
                Some("bob-agent@example.org"),
                &["team"],
            ),
            contact("Carol", "carol@example.org", None, &["family"]),
            contact("Dave", "dave@example.org", None, &[]),
            contact(
                "Eve",
                "eve@example.org",
                Some("eve.bot@example.net"),
                &["team"],
            ),
        ]
    }

    fn set(text: &str) -> PolicySet {
        match parse_files(&[("policies/t.toml".into(), text.into())], Tz::UTC) {
            Ok(s) => s,
            Err(e) => panic!(
                "{}",
                e.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        }
    }

    fn default_set() -> PolicySet {
        set(include_str!("../../policies/default.toml"))
    }

    fn ask(set: &PolicySet, peer: &str, action: Action) -> Decision {
        evaluate(set, &people(), &Request::new(peer, action), now(), &|_| 0)
    }

    fn rule_name(d: &Decision) -> Option<&str> {
        d.rule.as_ref().map(|r| r.name.as_str())
    }

    #[test]
    fn the_default_policy_shows_the_team_busy_times_and_lets_them_book() {
        let s = default_set();
        let d = ask(&s, "bob@example.org", Action::Freebusy);
        assert_eq!((d.outcome, d.level), (Outcome::Allow, Level::Busy));
        assert_eq!(rule_name(&d), Some("team-sees-busy-times"));
        assert_eq!(
            d.reason,
            "rule team-sees-busy-times (group team) allows busy"
        );
        let limits = d.limits.clone().unwrap_or_else(|| panic!("limits"));
        assert_eq!(limits.window, Some(Duration::days(14)));
        assert_eq!(limits.hours, Hours::Working);
        assert_eq!(limits.granularity, Some(Duration::minutes(30)));
        let m = ask(&s, "bob@example.org", Action::ProposeMeeting);
        assert_eq!(m.outcome, Outcome::Allow);
        assert_eq!(rule_name(&m), Some("team-books-meetings"));
    }

    #[test]
    fn the_default_policy_shows_family_details_and_other_contacts_yes_no() {
        let s = default_set();
        let d = ask(&s, "carol@example.org", Action::Freebusy);
        assert_eq!((d.outcome, d.level), (Outcome::Allow, Level::Details));
        let d = ask(&s, "dave@example.org", Action::Freebusy);
        assert_eq!((d.outcome, d.level), (Outcome::Allow, Level::YesNo));
        let m = ask(&s, "dave@example.org", Action::ProposeMeeting);
        assert_eq!(
            m.outcome,
            Outcome::Ask {
                expires: now() + Duration::hours(4)
            }
        );
        assert_eq!(rule_name(&m), Some("contacts-proposals-need-approval"));
    }

    #[test]
    fn an_unknown_peer_is_denied_by_default_without_a_rule() {
        let s = default_set();
        for action in Action::ALL {
            let d = ask(&s, "mallory@evil.example", action);
            assert_eq!(d.outcome, Outcome::Deny);
            assert_eq!(d.rule, None);
            assert_eq!(d.reason, "no rule matches: denied by default");
        }
        // A known contact asking for something no rule covers is denied too.
        assert_eq!(ask(&s, "bob@example.org", Action::OfferTask).rule, None);
    }

    #[test]
    fn a_peer_is_recognised_by_its_agent_jid_and_by_its_person_jid() {
        let s = default_set();
        for peer in [
            "bob@example.org",
            "bob-agent@example.org",
            "Bob-Agent@Example.ORG",
        ] {
            let d = ask(&s, peer, Action::Freebusy);
            assert_eq!(d.level, Level::Busy, "{peer}");
        }
    }

    const TEAM_AND_BLOCK: &str = r#"
[groups]
team = "work"

[[rule]]
name = "team-sees-busy-times"
who = "group:team"
action = "freebusy"
decision = "allow"
level = "busy"

[[rule]]
name = "block-eve"
who = "contact:Eve"
action = "any"
decision = "deny"
"#;

    #[test]
    fn explicit_deny_for_a_contact_beats_allow_for_their_group() {
        let s = set(TEAM_AND_BLOCK);
        let d = ask(&s, "eve.bot@example.net", Action::Freebusy);
        assert_eq!(d.outcome, Outcome::Deny);
        assert_eq!(rule_name(&d), Some("block-eve"));
        assert_eq!(
            d.reason,
            "rule block-eve (contact Eve) denies; deny wins over team-sees-busy-times"
        );
        assert_eq!(
            ask(&s, "bob@example.org", Action::Freebusy).level,
            Level::Busy
        );
    }

    #[test]
    fn a_broad_deny_beats_a_narrow_allow() {
        let s = set(r#"
[[rule]]
name = "bob-sees-all"
who = "contact:bob@example.org"
action = "freebusy"
decision = "allow"
level = "details"

[[rule]]
name = "nobody-this-week"
who = "anyone"
action = "freebusy"
decision = "deny"
"#);
        let d = ask(&s, "bob@example.org", Action::Freebusy);
        assert_eq!(rule_name(&d), Some("nobody-this-week"));
        assert_eq!(d.outcome, Outcome::Deny);
    }

    #[test]
    fn the_narrowest_matching_rule_wins_even_when_it_shows_more() {
        let s = set(r#"
[[rule]]
name = "anyone-yes-no"
who = "anyone"
action = "freebusy"
decision = "allow"
level = "yes-no"

[[rule]]
name = "contacts-slots"
who = "any-contact"
action = "freebusy"
decision = "allow"
level = "slots"

[[rule]]
name = "team-busy"
who = "group:team"
action = "freebusy"
decision = "allow"
level = "busy"

[[rule]]
name = "bob-none"
who = "contact:Bob"
action = "freebusy"
decision = "allow"
level = "none"
"#);
        assert_eq!(
            rule_name(&ask(&s, "bob@example.org", Action::Freebusy)),
            Some("bob-none")
        );
        assert_eq!(
            ask(&s, "bob@example.org", Action::Freebusy).level,
            Level::None
        );
        assert_eq!(
            ask(&s, "eve@example.org", Action::Freebusy).level,
            Level::Busy
        );
        assert_eq!(
            ask(&s, "dave@example.org", Action::Freebusy).level,
            Level::Slots
        );
        assert_eq!(
            ask(&s, "x@elsewhere.example", Action::Freebusy).level,
            Level::YesNo
        );
        let choice = choose(
            &s,
            resolve_peer("bob@example.org", &people()),
            Action::Freebusy,
            now(),
        );
        assert_eq!(choice.step, Step::NarrowestScope);
    }

    #[test]
    fn a_tie_in_scope_gives_the_least_disclosure() {
        let s = set(r#"
[groups]
work = "also work"

[[rule]]
name = "team-details"
who = "group:team"
action = "freebusy"
decision = "allow"
level = "details"

[[rule]]
name = "work-busy-ask"
who = "group:work"
action = "freebusy"
decision = "ask"
level = "busy"
window = "30d"

[[rule]]
name = "work-busy-allow"
who = "group:work"
action = "freebusy"
decision = "allow"
level = "busy"
window = "7d"

[[rule]]
name = "work-busy-ask-short"
who = "group:work"
action = "freebusy"
decision = "ask"
level = "busy"
window = "7d"
"#);
        let both = vec![contact("Bob", "bob@example.org", None, &["team", "work"])];
        let d = evaluate(
            &s,
            &both,
            &Request::new("bob@example.org", Action::Freebusy),
            now(),
            &|_| 0,
        );
        // busy < details; then ask before allow; then 7d before 30d.
        assert_eq!(rule_name(&d), Some("work-busy-ask-short"));
        assert!(matches!(d.outcome, Outcome::Ask { .. }));
        let choice = choose(&s, both.first(), Action::Freebusy, now());
        assert_eq!(choice.step, Step::LeastDisclosure);
    }

    #[test]
    fn identical_rules_tie_to_the_first_in_file_order() {
        let rule = |n: &str| {
            format!(
                "[[rule]]\nname = \"{n}\"\nwho = \"anyone\"\naction = \"task-status\"\ndecision = \"allow\"\n"
            )
        };
        let files = vec![
            ("a.toml".to_string(), rule("first")),
            ("b.toml".to_string(), rule("second")),
        ];
        let s = parse_files(&files, Tz::UTC).unwrap_or_default();
        assert_eq!(
            rule_name(&ask(&s, "x@y.example", Action::TaskStatus)),
            Some("first")
        );
    }

    #[test]
    fn the_peer_may_ask_for_less_than_the_rule_allows_but_never_more() {
        let s = default_set();
        let mut r = Request::new("carol@example.org", Action::Freebusy);
        r.requested_level = Some(Level::Slots);
        let d = evaluate(&s, &people(), &r, now(), &|_| 0);
        assert_eq!(d.level, Level::Slots);
        assert!(
            d.reason.contains("the rule allows up to details"),
            "{}",
            d.reason
        );
        let mut r = Request::new("dave@example.org", Action::Freebusy);
        r.requested_level = Some(Level::Details);
        assert_eq!(
            evaluate(&s, &people(), &r, now(), &|_| 0).level,
            Level::YesNo
        );
    }

    #[test]
    fn a_rule_past_its_until_matches_nothing() {
        let s = set(r#"
[[rule]]
name = "conference-week"
who = "anyone"
action = "freebusy"
decision = "allow"
level = "slots"
until = 2026-01-16
"#);
        let r = Request::new("x@y.example", Action::Freebusy);
        let during = evaluate(&s, &[], &r, at(2026, 1, 16, 23, 59), &|_| 0);
        assert_eq!(during.outcome, Outcome::Allow);
        let after = evaluate(&s, &[], &r, at(2026, 1, 17, 0, 0), &|_| 0);
        assert_eq!((after.outcome, after.rule), (Outcome::Deny, None));
    }

    #[test]
    fn an_until_without_a_zone_is_read_in_the_owners_zone() {
        let text = "[[rule]]\nname = \"r\"\nwho = \"anyone\"\naction = \"task-status\"\ndecision = \"allow\"\nuntil = 2026-01-16T18:00:00\n";
        let s = parse_files(&[("t.toml".into(), text.into())], chrono_tz::Europe::Berlin)
            .unwrap_or_default();
        assert_eq!(
            s.rules.first().and_then(|r| r.until),
            Some(at(2026, 1, 16, 17, 0))
        );
    }

    #[test]
    fn ask_holds_the_request_until_its_expiry() {
        let s = set(r#"
[[rule]]
name = "strangers-ask"
who = "anyone"
action = "offer-task"
decision = "ask"
expires = "2h"
"#);
        let d = ask(&s, "x@y.example", Action::OfferTask);
        assert_eq!(
            d.outcome,
            Outcome::Ask {
                expires: now() + Duration::hours(2)
            }
        );
        assert!(!d.allows());
        assert!(d.approved().allows());
    }

    #[test]
    fn at_the_rate_limit_the_peer_is_refused_and_told_which_rule() {
        let s = default_set();
        let r = Request::new("bob@example.org", Action::Freebusy);
        let asked = std::cell::Cell::new(None);
        let history = |period: Duration| {
            asked.set(Some(period));
            19
        };
        assert_eq!(
            evaluate(&s, &people(), &r, now(), &history).outcome,
            Outcome::Allow
        );
        assert_eq!(asked.get(), Some(Duration::hours(1)));
        let d = evaluate(&s, &people(), &r, now(), &|_| 20);
        assert_eq!(d.outcome, Outcome::RateLimited);
        assert_eq!(rule_name(&d), Some("team-sees-busy-times"));
        assert_eq!(d.level, Level::None);
        // A deny is never counted against anything.
        let d = evaluate(
            &s,
            &people(),
            &Request::new("x@evil.example", Action::Freebusy),
            now(),
            &|_| 1000,
        );
        assert_eq!(d.outcome, Outcome::Deny);
    }

    #[test]
    fn a_meeting_rule_without_a_window_admits_any_future_time_but_not_the_past() {
        let s = default_set();
        let mut r = Request::new("bob@example.org", Action::ProposeMeeting);
        r.proposed = vec![TimeRange {
            start: at(2026, 3, 2, 9, 0),
            end: at(2026, 3, 2, 10, 0),
        }];
        let d = evaluate(&s, &people(), &r, now(), &|_| 0);
        assert_eq!(d.outcome, Outcome::Allow);
        assert_eq!(d.limits.and_then(|l| l.window), None);
        r.proposed = vec![TimeRange {
            start: at(2026, 1, 12, 7, 0),
            end: at(2026, 1, 12, 7, 30),
        }];
        assert_eq!(
            evaluate(&s, &people(), &r, now(), &|_| 0).outcome,
            Outcome::Deny
        );
    }

    #[test]
    fn a_meeting_longer_than_the_rule_allows_is_refused() {
        let s = set(r#"
[[rule]]
name = "short-meetings"
who = "any-contact"
action = "propose-meeting"
decision = "allow"
max_duration = "1h"
window = "7d"
"#);
        let mut r = Request::new("dave@example.org", Action::ProposeMeeting);
        r.duration = Some(Duration::minutes(90));
        let d = evaluate(&s, &people(), &r, now(), &|_| 0);
        assert_eq!(d.outcome, Outcome::Deny);
        assert_eq!(rule_name(&d), Some("short-meetings"));
        r.duration = Some(Duration::hours(1));
        r.proposed = vec![TimeRange {
            start: at(2026, 1, 25, 9, 0),
            end: at(2026, 1, 25, 10, 0),
        }];
        let d = evaluate(&s, &people(), &r, now(), &|_| 0);
        assert!(d.reason.contains("within the next 7d"), "{}", d.reason);
        r.proposed = vec![TimeRange {
            start: at(2026, 1, 13, 9, 0),
            end: at(2026, 1, 13, 10, 0),
        }];
        assert_eq!(
            evaluate(&s, &people(), &r, now(), &|_| 0).outcome,
            Outcome::Allow
        );
    }
}
