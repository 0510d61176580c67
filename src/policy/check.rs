//! Checks of a loaded policy set against the address book: the mistakes a
//! parser cannot see (a misspelt contact or group, a rule that has expired,
//! a deny that silently shadows an allow).
//!
//! Owns those findings and their wording; every message says what to do.
//! Pure: the address book and `now` are parameters. Must not change the set.

use chrono::{DateTime, Utc};

use super::file::did_you_mean;
use super::{Effect, PolicySet, Rule, Who, names_contact};
use crate::domain::Contact;
use crate::error::{Diagnostic, Severity};

/// Errors and warnings about `set` given the owner's `contacts` at `now`,
/// sorted by file, line and column. Parse errors come from
/// [`super::parse_files`] / [`super::load_dir`] before this can run.
pub fn check(set: &PolicySet, contacts: &[Contact], now: DateTime<Utc>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let contact_names: Vec<&str> = contacts.iter().map(|c| c.name.as_str()).collect();
    let mut known_groups: Vec<&str> = set.groups.iter().map(|g| g.name.as_str()).collect();
    known_groups.extend(
        contacts
            .iter()
            .flat_map(|c| c.groups.iter().map(String::as_str)),
    );

    for rule in &set.rules {
        for (who, at) in &rule.who {
            match who {
                Who::Contact(x) if !contacts.iter().any(|c| names_contact(x, c)) => {
                    let hint = did_you_mean(x, &contact_names)
                        .map(|n| format!("did you mean {n:?}? "))
                        .unwrap_or_default();
                    out.push(at.diagnostic(
                        Severity::Error,
                        format!(
                            "rule {:?} names contact {x:?}, who is not in your address book: {hint}fix the name or JID, or add them with `attache contacts add JID as NAME`",
                            rule.name
                        ),
                    ));
                }
                Who::Group(g) if !known_groups.iter().any(|k| k.eq_ignore_ascii_case(g)) => {
                    let hint = did_you_mean(g, &known_groups)
                        .map(|n| format!("did you mean {n:?}? "))
                        .unwrap_or_default();
                    out.push(at.diagnostic(
                        Severity::Error,
                        format!(
                            "rule {:?} names group {g:?}, which no policy declares and no contact is in: {hint}fix the name, or declare it under [groups] ({g} = \"what the group is\")",
                            rule.name
                        ),
                    ));
                }
                _ => {}
            }
        }
        if let (Some(until), Some(at)) = (rule.until, &rule.until_at)
            && until <= now
        {
            out.push(at.diagnostic(
                Severity::Warning,
                format!(
                    "rule {:?} ended at {} and no longer matches anything: delete it, or move `until` later",
                    rule.name,
                    until.format("%Y-%m-%d %H:%M UTC")
                ),
            ));
        }
    }

    for group in &set.groups {
        let members = contacts
            .iter()
            .filter(|c| c.groups.iter().any(|g| g.eq_ignore_ascii_case(&group.name)))
            .count();
        if members == 0 {
            out.push(group.at.diagnostic(
                Severity::Warning,
                format!(
                    "group {:?} has no members yet, so rules about it match nobody: put contacts in it with `attache contacts add JID --name NAME --group {}` (or by chat: `contact add JID as NAME in {}`)",
                    group.name, group.name, group.name
                ),
            ));
        }
    }

    let live = |r: &&Rule| r.in_force(now);
    for permit in set
        .rules
        .iter()
        .filter(live)
        .filter(|r| r.effect != Effect::Deny)
    {
        for deny in set
            .rules
            .iter()
            .filter(live)
            .filter(|r| r.effect == Effect::Deny)
        {
            let Some(action) = permit.actions.iter().find(|a| deny.actions.contains(a)) else {
                continue;
            };
            let Some(whom) = shared_who(permit, deny, contacts) else {
                continue;
            };
            out.push(permit.at.diagnostic(
                Severity::Warning,
                format!(
                    "rule {:?} ({}) and rule {:?} (deny, {}:{}) both apply to {action} for {whom}; the deny wins there. If that is intended, nothing to do; otherwise narrow `who` or `action` of one of them",
                    permit.name,
                    permit.effect.name(),
                    deny.name,
                    deny.at.file,
                    deny.at.line
                ),
            ));
        }
    }

    out.sort_by(|a, b| {
        (a.file.as_str(), a.line, a.column).cmp(&(b.file.as_str(), b.line, b.column))
    });
    out
}

/// Whom both rules could name, described for people, if anyone.
fn shared_who(a: &Rule, b: &Rule, contacts: &[Contact]) -> Option<String> {
    for (x, _) in &a.who {
        for (y, _) in &b.who {
            if let Some(whom) = overlap(x, y, contacts) {
                return Some(whom);
            }
        }
    }
    None
}

fn overlap(x: &Who, y: &Who, contacts: &[Contact]) -> Option<String> {
    // The narrower of the two is who both name.
    let (wide, narrow) = if x.scope() <= y.scope() {
        (x, y)
    } else {
        (y, x)
    };
    let in_group = |c: &Contact, g: &str| c.groups.iter().any(|cg| cg.eq_ignore_ascii_case(g));
    match (wide, narrow) {
        (Who::Anyone, n) => Some(n.to_string()),
        (Who::AnyContact, Who::Anyone) => None,
        (Who::AnyContact, n) => Some(n.to_string()),
        (Who::Group(g), Who::Group(h)) => {
            if g.eq_ignore_ascii_case(h) {
                return Some(format!("group {g}"));
            }
            contacts
                .iter()
                .find(|c| in_group(c, g) && in_group(c, h))
                .map(|c| format!("{} (in groups {g} and {h})", c.name))
        }
        (Who::Group(g), Who::Contact(x)) => contacts
            .iter()
            .any(|c| names_contact(x, c) && in_group(c, g))
            .then(|| format!("contact {x}")),
        (Who::Contact(x), Who::Contact(y)) => {
            let same = x.eq_ignore_ascii_case(y)
                || contacts
                    .iter()
                    .any(|c| names_contact(x, c) && names_contact(y, c));
            same.then(|| format!("contact {x}"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use chrono_tz::Tz;

    use super::*;
    use crate::policy::parse_files;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 12, 8, 0, 0)
            .single()
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    fn contact(name: &str, groups: &[&str]) -> Contact {
        Contact {
            name: name.into(),
            jid: format!("{}@example.org", name.to_lowercase()),
            agent_jid: None,
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    fn findings(text: &str, contacts: &[Contact]) -> Vec<String> {
        match parse_files(&[("policies/team.toml".into(), text.into())], Tz::UTC) {
            Ok(set) => check(&set, contacts, now())
                .iter()
                .map(ToString::to_string)
                .collect(),
            Err(e) => panic!("{e:?}"),
        }
    }

    #[test]
    fn an_unknown_contact_is_an_error_at_its_who_entry() {
        let f = findings(
            "[[rule]]\nname = \"r\"\nwho = [\"group:team\", \"contact:Bobb\"]\naction = \"task-status\"\ndecision = \"allow\"\n",
            &[contact("Bob", &["team"])],
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(
            f[0].starts_with(
                "policies/team.toml:3:22: error: rule \"r\" names contact \"Bobb\", who is not in your address book: did you mean \"Bob\"?"
            ),
            "{f:?}"
        );
    }

    #[test]
    fn a_contact_may_be_named_by_jid_or_by_agent_jid() {
        let mut bob = contact("Bob", &[]);
        bob.agent_jid = Some("bot@bob.example".into());
        let f = findings(
            "[[rule]]\nname = \"r\"\nwho = [\"contact:BOB@example.org\", \"contact:bot@bob.example\", \"contact:bob\"]\naction = \"task-status\"\ndecision = \"allow\"\n",
            &[bob],
        );
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn an_unknown_group_is_an_error_and_a_group_used_only_by_contacts_is_fine() {
        let text = "[[rule]]\nname = \"r\"\nwho = \"group:tem\"\naction = \"freebusy\"\ndecision = \"allow\"\nlevel = \"busy\"\n\n[[rule]]\nname = \"s\"\nwho = \"group:band\"\naction = \"freebusy\"\ndecision = \"allow\"\nlevel = \"busy\"\n";
        let f = findings(text, &[contact("Bob", &["team", "band"])]);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(
            f[0].starts_with("policies/team.toml:3:7: error: rule \"r\" names group \"tem\", which no policy declares and no contact is in: did you mean \"team\"?"),
            "{f:?}"
        );
    }

    #[test]
    fn a_declared_group_without_members_is_only_a_warning() {
        let f = findings("[groups]\nfamily = \"home\"\n", &[]);
        assert_eq!(f.len(), 1);
        assert!(
            f[0].starts_with(
                "policies/team.toml:2:1: warning: group \"family\" has no members yet"
            ),
            "{f:?}"
        );
    }

    #[test]
    fn a_deny_overlapping_an_allow_is_a_warning_that_the_deny_wins() {
        let text = r#"
[[rule]]
name = "team-busy"
who = "group:team"
action = ["freebusy", "propose-meeting"]
decision = "allow"
level = "busy"

[[rule]]
name = "block-eve"
who = "contact:Eve"
action = "freebusy"
decision = "deny"

[[rule]]
name = "block-tasks"
who = "anyone"
action = "offer-task"
decision = "deny"
"#;
        let f = findings(text, &[contact("Eve", &["team"])]);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(
            f[0].starts_with("policies/team.toml:2:1: warning: rule \"team-busy\" (allow) and rule \"block-eve\" (deny, policies/team.toml:9) both apply to freebusy for contact Eve; the deny wins there."),
            "{f:?}"
        );
        // Eve out of the team: no overlap.
        assert!(findings(text, &[contact("Eve", &[]), contact("Bob", &["team"])]).is_empty());
    }

    #[test]
    fn a_rule_whose_until_has_passed_is_a_warning() {
        let f = findings(
            "[[rule]]\nname = \"xmas\"\nwho = \"anyone\"\naction = \"task-status\"\ndecision = \"allow\"\nuntil = 2025-12-26\n",
            &[],
        );
        assert_eq!(
            f,
            vec!["policies/team.toml:6:9: warning: rule \"xmas\" ended at 2025-12-27 00:00 UTC and no longer matches anything: delete it, or move `until` later".to_string()]
        );
    }
}
