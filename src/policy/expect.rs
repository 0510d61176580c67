//! Owner-written expectations for `attache policy test` (like `opa test`):
//! a TOML file of cases, each a request and the answer the owner expects.
//!
//! Owns the expectations syntax and running the cases through the real
//! evaluator. Pure: the policy set, contacts and default `now` are
//! parameters, and no rate history applies (every case is a first request).
//! Must not read files; the CLI reads the file and names it in diagnostics.
//!
//! ```toml
//! [[case]]
//! name = "Bob in the team sees busy times"
//! peer = "bob@example.org"
//! action = "freebusy"
//! expect = "allow"
//! level = "busy"
//! rule = "team-sees-busy-times"
//! at = 2026-06-01T10:00:00Z
//! ```

use chrono::{DateTime, Utc};
use toml::de::{DeTable, DeValue};

use super::evaluate::{Request, evaluate};
use super::file::{Locator, did_you_mean};
use super::{Action, Level, PolicySet};
use crate::domain::Contact;
use crate::error::{Diagnostic, Severity};

const CASE_KEYS: &[&str] = &["name", "peer", "action", "expect", "level", "rule", "at"];
const EXPECT_NAMES: &[&str] = &["allow", "deny", "ask", "rate-limited"];

/// The file name diagnostics carry; the CLI replaces it with the real path.
pub const EXPECTATIONS_FILE: &str = "expectations";

/// The result of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    /// The case's `name`, or "case N".
    pub name: String,
    /// Where the case's `[[case]]` is.
    pub line: usize,
    pub passed: bool,
    /// Empty when it passed; otherwise what was expected and what happened.
    pub message: String,
}

struct Case {
    name: String,
    line: usize,
    peer: String,
    action: Action,
    expect: String,
    level: Option<Level>,
    rule: Option<String>,
    at: Option<DateTime<Utc>>,
}

/// Runs every case of `text` against `set`. A malformed file gives every
/// mistake found, at its line and column, and runs nothing.
pub fn run_expectations(
    text: &str,
    set: &PolicySet,
    contacts: &[Contact],
    now: DateTime<Utc>,
) -> Result<Vec<CaseResult>, Vec<Diagnostic>> {
    let cases = read_cases(text)?;
    Ok(cases
        .into_iter()
        .map(|case| {
            let when = case.at.unwrap_or(now);
            let d = evaluate(
                set,
                contacts,
                &Request::new(&case.peer, case.action),
                when,
                &|_| 0,
            );
            let mut wrong = Vec::new();
            if d.outcome.name() != case.expect {
                wrong.push(format!(
                    "expected {}, got {}",
                    case.expect,
                    d.outcome.name()
                ));
            }
            if let Some(level) = case.level
                && level != d.level
            {
                wrong.push(format!("expected level {level}, got {}", d.level));
            }
            if let Some(rule) = &case.rule {
                let got = d
                    .rule
                    .as_ref()
                    .map_or("no rule (default deny)", |r| r.name.as_str());
                if got != rule {
                    wrong.push(format!("expected rule {rule}, got {got}"));
                }
            }
            let message = if wrong.is_empty() {
                String::new()
            } else {
                format!("{} ({})", wrong.join("; "), d.reason)
            };
            CaseResult {
                name: case.name,
                line: case.line,
                passed: wrong.is_empty(),
                message,
            }
        })
        .collect())
}

fn read_cases(text: &str) -> Result<Vec<Case>, Vec<Diagnostic>> {
    let loc = Locator::new(EXPECTATIONS_FILE, text);
    let mut errors = Vec::new();
    let mut error = |offset: usize, message: String| {
        errors.push(loc.position(offset).diagnostic(Severity::Error, message));
    };
    let (doc, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        for e in syntax {
            error(
                e.span().map_or(0, |s| s.start),
                format!(
                    "this is not valid TOML: {}",
                    e.message().trim_end_matches('.')
                ),
            );
        }
        return Err(errors);
    }
    let doc = doc.into_inner();
    let mut cases = Vec::new();
    for (key, value) in doc.iter() {
        let DeValue::Array(items) = value.get_ref() else {
            error(
                key.span().start,
                format!(
                    "unknown section {:?}: an expectations file has only [[case]] sections",
                    key.get_ref()
                ),
            );
            continue;
        };
        if key.get_ref() != "case" {
            error(
                key.span().start,
                format!(
                    "unknown section {:?}: write [[case]] for each case",
                    key.get_ref()
                ),
            );
            continue;
        }
        for (n, item) in items.iter().enumerate() {
            let line = loc.position(item.span().start).line;
            let Some(table) = item.get_ref().as_table() else {
                error(item.span().start, "write each case as [[case]]".into());
                continue;
            };
            let mut misspelt = Vec::new();
            for (k, _) in table.iter() {
                if !CASE_KEYS.contains(&k.get_ref().as_ref()) {
                    misspelt.extend(did_you_mean(k.get_ref(), CASE_KEYS));
                    let hint = did_you_mean(k.get_ref(), CASE_KEYS)
                        .map(|c| format!("did you mean {c:?}? "))
                        .unwrap_or_default();
                    error(
                        k.span().start,
                        format!(
                            "unknown key {:?} in a case: {hint}a case may have {}",
                            k.get_ref(),
                            CASE_KEYS.join(", ")
                        ),
                    );
                }
            }
            let mut text_of = |k: &str, required: bool| -> Option<(String, usize)> {
                match table.get(k) {
                    Some(v) => match v.get_ref().as_str() {
                        Some(s) => Some((s.trim().to_string(), v.span().start)),
                        None => {
                            error(v.span().start, format!("`{k}` must be text in quotes"));
                            None
                        }
                    },
                    None => {
                        if required && !misspelt.contains(&k) {
                            error(
                                item.span().start,
                                format!("this case has no `{k}`: add e.g. {}", example(k)),
                            );
                        }
                        None
                    }
                }
            };
            let name = text_of("name", false).map(|(s, _)| s);
            let peer = text_of("peer", true);
            let action = text_of("action", true);
            let expect = text_of("expect", true);
            let level = text_of("level", false);
            let rule = text_of("rule", false).map(|(s, _)| s);
            let action = action.and_then(|(a, at)| {
                let parsed = Action::from_name(&a);
                if parsed.is_none() {
                    error(
                        at,
                        format!("unknown action {a:?}: expected one of freebusy, propose-meeting, offer-task, task-status, contact-card"),
                    );
                }
                parsed
            });
            let expect = expect.and_then(|(e, at)| {
                if EXPECT_NAMES.contains(&e.as_str()) {
                    Some(e)
                } else {
                    error(
                        at,
                        format!("unknown expectation {e:?}: expected one of allow, deny, ask"),
                    );
                    None
                }
            });
            let level = match level {
                Some((l, at)) => match Level::from_name(&l) {
                    Some(l) => Some(Some(l)),
                    None => {
                        error(
                            at,
                            format!(
                                "unknown level {l:?} (expected one of none, yes-no, slots, busy, details)"
                            ),
                        );
                        None
                    }
                },
                None => Some(None),
            };
            let at = match table.get("at") {
                None => Some(None),
                Some(v) => {
                    let text = match v.get_ref() {
                        DeValue::Datetime(d) => d.to_string(),
                        DeValue::String(s) => s.to_string(),
                        _ => String::new(),
                    };
                    match DateTime::parse_from_rfc3339(&text.replacen(' ', "T", 1)) {
                        Ok(t) => Some(Some(t.with_timezone(&Utc))),
                        Err(_) => {
                            error(
                                v.span().start,
                                "`at` must be a moment with its offset, e.g. at = 2026-06-01T10:00:00Z".into(),
                            );
                            None
                        }
                    }
                }
            };
            if let (Some((peer, _)), Some(action), Some(expect), Some(level), Some(at)) =
                (peer, action, expect, level, at)
            {
                cases.push(Case {
                    name: name.unwrap_or_else(|| format!("case {}", n + 1)),
                    line,
                    peer,
                    action,
                    expect,
                    level,
                    rule,
                    at,
                });
            }
        }
    }
    if errors.is_empty() {
        return Ok(cases);
    }
    errors.sort_by_key(|d| (d.line, d.column));
    Err(errors)
}

fn example(key: &str) -> &'static str {
    match key {
        "peer" => "peer = \"bob@example.org\"",
        "action" => "action = \"freebusy\"",
        _ => "expect = \"allow\"",
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

    fn setup() -> (PolicySet, Vec<Contact>) {
        let set = parse_files(
            &[(
                "policies/default.toml".into(),
                include_str!("../../policies/default.toml").into(),
            )],
            Tz::UTC,
        )
        .unwrap_or_default();
        let bob = Contact {
            name: "Bob".into(),
            jid: "bob@example.org".into(),
            agent_jid: None,
            groups: vec!["team".into()],
        };
        (set, vec![bob])
    }

    #[test]
    fn passing_and_failing_cases_are_reported_with_what_went_wrong() {
        let (set, contacts) = setup();
        let text = r#"
[[case]]
name = "team sees busy"
peer = "bob@example.org"
action = "freebusy"
expect = "allow"
level = "busy"
rule = "team-sees-busy-times"

[[case]]
peer = "stranger@example.net"
action = "freebusy"
expect = "allow"
at = 2026-06-01T10:00:00Z
"#;
        let results = run_expectations(text, &set, &contacts, now()).unwrap_or_default();
        assert_eq!(results.len(), 2);
        assert!(results[0].passed, "{:?}", results[0]);
        assert_eq!(results[1].name, "case 2");
        assert_eq!(results[1].line, 10);
        assert!(!results[1].passed);
        assert_eq!(
            results[1].message,
            "expected allow, got deny (no rule matches: denied by default)"
        );
    }

    #[test]
    fn the_shipped_expectations_for_the_default_policy_pass() {
        let (set, mut contacts) = setup();
        for (name, groups) in [("Carol", vec!["family".to_string()]), ("Dana", vec![])] {
            contacts.push(Contact {
                name: name.into(),
                jid: format!("{}@example.org", name.to_lowercase()),
                agent_jid: None,
                groups,
            });
        }
        let text = include_str!("../../policies/examples/default.tests.toml");
        let results = run_expectations(text, &set, &contacts, now()).unwrap_or_default();
        assert_eq!(results.len(), 7);
        for r in results {
            assert!(r.passed, "{}: {}", r.name, r.message);
        }
    }

    #[test]
    fn a_malformed_expectations_file_is_reported_at_line_and_column() {
        let (set, contacts) = setup();
        let text =
            "[[case]]\npeer = \"bob@example.org\"\nactoin = \"freebusy\"\nexpect = \"alow\"\n";
        let errors = run_expectations(text, &set, &contacts, now())
            .err()
            .unwrap_or_default();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 2, "{text:?}");
        assert!(text[0].starts_with("expectations:3:1: error: unknown key \"actoin\" in a case: did you mean \"action\"?"), "{text:?}");
        assert!(
            text[1].starts_with("expectations:4:10: error: unknown expectation \"alow\""),
            "{text:?}"
        );
    }
}
