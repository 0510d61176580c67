//! Explaining a decision to the owner: every rule looked at, whether it
//! matched and why not, which one decided and by which precedence step, and
//! exactly what would be disclosed now.
//!
//! Owns the wording of `attache policy explain` and the chat `why` command.
//! Reuses the evaluator's own choice (so an explanation can never disagree
//! with the decision it explains). Pure; must not log or change anything.

use std::fmt;

use chrono::{DateTime, Utc};

use super::disclose::{CalendarView, Disclosure, disclose};
use super::evaluate::{Decision, Outcome, RateWindow, Request, Step, choose, decide};
use super::{Effect, PolicySet, Rule, RuleRef, Who, resolve_peer};
use crate::domain::Contact;

/// One rule as the explanation saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consideration {
    pub rule: RuleRef,
    pub effect: Effect,
    pub matched: bool,
    /// Why it did not match, or what became of it when it did.
    pub note: String,
}

/// Why a request gets the answer it gets.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    pub request: Request,
    /// The contact the peer resolved to, if any.
    pub contact: Option<Contact>,
    pub considered: Vec<Consideration>,
    pub step: Step,
    pub decision: Decision,
    /// What would be disclosed now; `None` when no calendar was given.
    pub disclosure: Option<Disclosure>,
}

/// Explains how `request` is decided at `now`. With a `view` of the
/// calendar it also shows what would be disclosed.
pub fn explain(
    request: &Request,
    set: &PolicySet,
    contacts: &[Contact],
    now: DateTime<Utc>,
    history: &dyn RateWindow,
    view: Option<&CalendarView<'_>>,
) -> Explanation {
    let contact = resolve_peer(&request.peer, contacts);
    let choice = choose(set, contact, request.action, now);
    let decision = decide(set, contact, request, now, history, &choice);
    let deciding = choice.deciding;
    let considered = set
        .rules
        .iter()
        .enumerate()
        .map(|(i, rule)| {
            let why_not = why_not(rule, contact, request, now);
            let matched = why_not.is_none();
            let note = match why_not {
                Some(n) => n,
                None if Some(i) == deciding => "matches, and decides".to_string(),
                None if rule.effect == Effect::Deny => "matches too (also a deny)".to_string(),
                None => match deciding.and_then(|d| set.rules.get(d)) {
                    Some(d) if d.effect == Effect::Deny => {
                        format!("matches, but the deny in {} wins", d.name)
                    }
                    Some(d) if d.scope_for(contact) > rule.scope_for(contact) => {
                        format!("matches, but {} names this peer more narrowly", d.name)
                    }
                    Some(d) => format!(
                        "matches, but {} is just as narrow and shares less, so it wins",
                        d.name
                    ),
                    None => "matches".to_string(),
                },
            };
            Consideration {
                rule: rule.reference(),
                effect: rule.effect,
                matched,
                note,
            }
        })
        .collect();
    let disclosure = view.map(|v| disclose(&decision, request, v, now));
    Explanation {
        request: request.clone(),
        contact: contact.cloned(),
        considered,
        step: choice.step,
        decision,
        disclosure,
    }
}

/// Why `rule` does not apply, or `None` when it does.
fn why_not(
    rule: &Rule,
    contact: Option<&Contact>,
    request: &Request,
    now: DateTime<Utc>,
) -> Option<String> {
    if !rule.covers(request.action) {
        let about: Vec<&str> = rule.actions.iter().map(|a| a.name()).collect();
        return Some(format!(
            "is about {}, not {}",
            about.join(", "),
            request.action
        ));
    }
    if let Some(until) = rule.until.filter(|u| *u <= now) {
        return Some(format!(
            "ended at {} (until)",
            until.format("%Y-%m-%d %H:%M UTC")
        ));
    }
    if rule.scope_for(contact).is_some() {
        return None;
    }
    let reasons: Vec<String> = rule
        .who
        .iter()
        .map(|(w, _)| match (w, contact) {
            (_, None) => format!("is for {w}, and this peer is not in your contacts"),
            (Who::Group(g), Some(c)) => format!("is for group {g}, and {} is not in it", c.name),
            (Who::Contact(x), Some(c)) => format!("is for {x}, not {}", c.name),
            _ => format!("is for {w}"),
        })
        .collect();
    Some(reasons.join("; "))
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = match &self.contact {
            Some(c) if c.groups.is_empty() => format!("{} ({})", c.name, self.request.peer),
            Some(c) => format!(
                "{} ({}, in {})",
                c.name,
                self.request.peer,
                c.groups.join(", ")
            ),
            None => format!("{} (not in your contacts)", self.request.peer),
        };
        let answer = match self.decision.outcome {
            Outcome::Allow => "allowed",
            Outcome::Deny => "denied",
            Outcome::Ask { .. } => "held for your approval",
            Outcome::RateLimited => "refused for now (too many requests)",
        };
        writeln!(
            f,
            "A {} request from {who} is {answer}: {}.",
            self.request.action, self.decision.reason
        )?;
        let why = match self.step {
            Step::NoRuleMatches => "No rule matches, and anything no rule allows is denied.",
            Step::DenyWins => "A rule that denies always wins over rules that allow.",
            Step::OnlyMatch => "It is the only rule that matches.",
            Step::NarrowestScope => {
                "Several rules match; the one that names this peer most narrowly decides."
            }
            Step::LeastDisclosure => {
                "Several rules match equally narrowly; the one that shares least decides."
            }
        };
        writeln!(f, "{why}")?;
        if let Outcome::Ask { expires } = self.decision.outcome {
            writeln!(
                f,
                "You would have until {} to approve it.",
                expires.format("%Y-%m-%d %H:%M UTC")
            )?;
        }
        match &self.disclosure {
            Some(Disclosure::Nothing) | None => {}
            Some(d) => writeln!(f, "Right now they would get {}.", d.summary())?,
        }
        if !self.considered.is_empty() {
            writeln!(f, "Rules looked at:")?;
            for c in &self.considered {
                writeln!(
                    f,
                    "  {} ({}, {}:{}): {}",
                    c.rule.name,
                    c.effect.name(),
                    c.rule.file,
                    c.rule.line,
                    c.note
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use chrono_tz::Tz;

    use super::*;
    use crate::calendar::availability::{SlotOptions, WorkingHours};
    use crate::policy::{Action, parse_files};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 12, 8, 0, 0)
            .single()
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    fn people() -> Vec<Contact> {
        vec![
            Contact {
                name: "Eve".into(),
                jid: "eve@example.org".into(),
                agent_jid: None,
                groups: vec!["team".into()],
            },
            Contact {
                name: "Bob".into(),
                jid: "bob@example.org".into(),
                agent_jid: None,
                groups: vec!["team".into()],
            },
        ]
    }

    fn set() -> PolicySet {
        let default = include_str!("../../policies/default.toml").to_string();
        let block = "[[rule]]\nname = \"block-eve\"\nwho = \"contact:Eve\"\naction = \"freebusy\"\ndecision = \"deny\"\n";
        parse_files(
            &[
                ("policies/default.toml".into(), default),
                ("policies/eve.toml".into(), block.into()),
            ],
            Tz::UTC,
        )
        .unwrap_or_default()
    }

    #[test]
    fn explain_lists_every_rule_with_why_it_did_or_did_not_match() {
        let e = explain(
            &Request::new("eve@example.org", Action::Freebusy),
            &set(),
            &people(),
            now(),
            &|_| 0,
            None,
        );
        assert_eq!(e.step, Step::DenyWins);
        assert_eq!(e.considered.len(), 6);
        let note = |name: &str| {
            e.considered
                .iter()
                .find(|c| c.rule.name == name)
                .map(|c| c.note.clone())
                .unwrap_or_default()
        };
        assert_eq!(note("block-eve"), "matches, and decides");
        assert_eq!(
            note("team-sees-busy-times"),
            "matches, but the deny in block-eve wins"
        );
        assert_eq!(
            note("team-books-meetings"),
            "is about propose-meeting, not freebusy"
        );
        assert_eq!(
            note("family-sees-details"),
            "is for group family, and Eve is not in it"
        );
        let text = e.to_string();
        assert!(text.starts_with("A freebusy request from Eve (eve@example.org, in team) is denied: rule block-eve (contact Eve) denies; deny wins over team-sees-busy-times.\nA rule that denies always wins"), "{text}");
    }

    #[test]
    fn explain_says_what_would_be_disclosed_now() {
        let hours = WorkingHours::default();
        let view = CalendarView {
            busy: &[],
            instances: &[],
            working_hours: &hours,
            owner_tz: Tz::UTC,
            slot_options: SlotOptions::default(),
        };
        let e = explain(
            &Request::new("bob@example.org", Action::Freebusy),
            &set(),
            &people(),
            now(),
            &|_| 0,
            Some(&view),
        );
        assert_eq!(e.step, Step::NarrowestScope);
        let text = e.to_string();
        assert!(
            text.contains("Right now they would get busy: 0 intervals in 2026-01-12T08:00Z..2026-01-26T08:00Z."),
            "{text}"
        );
        assert!(
            text.contains("contacts-ask-yes-no (allow, policies/default.toml:"),
            "{text}"
        );
        assert!(
            text.contains("matches, but team-sees-busy-times names this peer more narrowly"),
            "{text}"
        );
    }

    #[test]
    fn explain_for_a_stranger_says_they_are_not_a_contact() {
        let e = explain(
            &Request::new("mallory@evil.example", Action::Freebusy),
            &set(),
            &people(),
            now(),
            &|_| 0,
            None,
        );
        assert_eq!(e.step, Step::NoRuleMatches);
        assert!(e.considered.iter().all(|c| !c.matched));
        let text = e.to_string();
        assert!(
            text.contains("mallory@evil.example (not in your contacts) is denied: no rule matches"),
            "{text}"
        );
        assert!(
            text.contains("is for any contact, and this peer is not in your contacts"),
            "{text}"
        );
    }
}
