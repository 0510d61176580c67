//! Reading policy files: TOML walked as a spanned table, so that every
//! mistake is reported at its file:line:column and all of a file's mistakes
//! are reported at once rather than the first one only.
//!
//! Owns the file syntax (documented in `policies/README.md`) and loading a
//! directory. Must not decide anything: rules come out as plain values for
//! the evaluator. [`load_dir`] is the module's only I/O.

use std::ops::Range;
use std::path::Path;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::{Action, Effect, GroupDecl, Hours, Level, PolicySet, Position, Rate, Rule, Who};
use crate::domain::time::{local_to_utc, parse_duration};
use crate::error::{Diagnostic, PolicyError, Severity};

/// Files ending in this are expectation files for `attache policy test`, not policies.
pub const TESTS_SUFFIX: &str = ".tests.toml";

/// How far ahead a free/busy rule shows when it does not say.
pub const DEFAULT_WINDOW: Duration = Duration::days(14);
/// How long an `ask` waits for the owner when the rule does not say.
pub const DEFAULT_ASK_EXPIRY: Duration = Duration::hours(4);
/// How many slots the `slots` level offers when the rule does not say.
pub const DEFAULT_MAX_SLOTS: usize = 3;

const RULE_KEYS: &[&str] = &[
    "name",
    "who",
    "action",
    "decision",
    "level",
    "window",
    "hours",
    "granularity",
    "max_slots",
    "max_duration",
    "rate",
    "until",
    "expires",
];
const TOP_KEYS: &[&str] = &["groups", "rule"];
const LEVEL_NAMES: &str = "none, yes-no, slots, busy, details";
const ACTION_NAMES: &str = "freebusy, propose-meeting, offer-task, task-status, contact-card, any";

/// Loads every `*.toml` in `dir` (sorted by name; `*.tests.toml` expectation
/// files are skipped). One error anywhere rejects the whole set, listing
/// every error found; the caller keeps its last good set.
///
/// `owner_tz` reads `until` values written without a zone.
pub fn load_dir(dir: &Path, owner_tz: Tz) -> Result<PolicySet, PolicyError> {
    let io = |source| PolicyError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with(".toml") && !name.ends_with(TESTS_SUFFIX) && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(|source| PolicyError::Io {
            path: path.clone(),
            source,
        })?;
        files.push((path.display().to_string(), text));
    }
    parse_files(&files, owner_tz).map_err(PolicyError::Invalid)
}

/// Parses `(file name, text)` pairs, in the order given, into one set.
/// Returns every error of every file when there is any.
pub fn parse_files(files: &[(String, String)], owner_tz: Tz) -> Result<PolicySet, Vec<Diagnostic>> {
    let mut set = PolicySet::default();
    let mut errors = Vec::new();
    for (name, text) in files {
        let mut reader = FileReader::new(name, text, owner_tz);
        reader.read(&mut set);
        errors.append(&mut reader.errors);
    }
    for (i, rule) in set.rules.iter().enumerate() {
        if let Some(first) = set.rules[..i].iter().find(|r| r.name == rule.name) {
            errors.push(rule.at.diagnostic(
                Severity::Error,
                format!(
                    "rule name {:?} is already used at {}; give each rule its own name",
                    rule.name, first.at
                ),
            ));
        }
    }
    if errors.is_empty() {
        return Ok(set);
    }
    let file_index = |d: &Diagnostic| files.iter().position(|(n, _)| *n == d.file);
    errors.sort_by_key(|d| (file_index(d), d.line, d.column));
    Err(errors)
}

impl Position {
    pub(crate) fn diagnostic(&self, severity: Severity, message: String) -> Diagnostic {
        Diagnostic {
            severity,
            file: self.file.clone(),
            line: self.line,
            column: self.column,
            message,
        }
    }
}

/// Turns byte offsets of one text into 1-based lines and character columns.
pub(crate) struct Locator<'t> {
    file: &'t str,
    text: &'t str,
    line_starts: Vec<usize>,
}

impl<'t> Locator<'t> {
    pub(crate) fn new(file: &'t str, text: &'t str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self {
            file,
            text,
            line_starts,
        }
    }

    pub(crate) fn position(&self, offset: usize) -> Position {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts[line - 1];
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        Position {
            file: self.file.to_string(),
            line,
            column,
        }
    }
}

/// The closest of `candidates` to a misspelt `word`, if close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn hint(word: &str, candidates: &[&str]) -> String {
    did_you_mean(word, candidates)
        .map(|c| format!("did you mean {c:?}? "))
        .unwrap_or_default()
}

type Value<'i> = Spanned<DeValue<'i>>;

struct FileReader<'t> {
    loc: Locator<'t>,
    owner_tz: Tz,
    errors: Vec<Diagnostic>,
}

impl<'t> FileReader<'t> {
    fn new(file: &'t str, text: &'t str, owner_tz: Tz) -> Self {
        Self {
            loc: Locator::new(file, text),
            owner_tz,
            errors: Vec::new(),
        }
    }

    fn error(&mut self, span: Range<usize>, message: String) {
        self.errors.push(
            self.loc
                .position(span.start)
                .diagnostic(Severity::Error, message),
        );
    }

    /// Reports a required key as missing, unless a misspelt key already
    /// pointed at it.
    fn missing(&mut self, span: &Range<usize>, misspelt: &[&str], key: &str, message: String) {
        if !misspelt.contains(&key) {
            self.error(span.clone(), message);
        }
    }

    fn read(&mut self, set: &mut PolicySet) {
        let (doc, syntax) = DeTable::parse_recoverable(self.loc.text);
        if !syntax.is_empty() {
            for e in syntax {
                let span = e.span().unwrap_or(0..0);
                self.error(
                    span,
                    format!(
                        "this is not valid TOML: {}; compare with the examples in policies/README.md",
                        e.message().trim_end_matches('.')
                    ),
                );
            }
            return;
        }
        let doc = doc.into_inner();
        for (key, value) in doc.iter() {
            match key.get_ref().as_ref() {
                "groups" => self.read_groups(value, set),
                "rule" => self.read_rules(value, set),
                other => {
                    let msg = format!(
                        "unknown section {other:?}: {}a policy file has only [groups] and [[rule]] sections",
                        hint(other, TOP_KEYS)
                    );
                    self.error(key.span(), msg);
                }
            }
        }
    }

    fn read_groups(&mut self, value: &Value<'_>, set: &mut PolicySet) {
        let Some(table) = value.get_ref().as_table() else {
            self.error(
                value.span(),
                "`groups` must be a table: write [groups] and then one line per group, e.g. team = \"People you work with\"".into(),
            );
            return;
        };
        for (key, value) in table.iter() {
            let name = key.get_ref().trim();
            if let Some(msg) = bad_group_name(name) {
                self.error(key.span(), msg);
                continue;
            }
            let Some(description) = value.get_ref().as_str() else {
                self.error(
                    value.span(),
                    format!(
                        "group {name:?} needs a description in quotes, e.g. {name} = \"People you work with\""
                    ),
                );
                continue;
            };
            set.groups.push(GroupDecl {
                name: name.to_string(),
                description: description.to_string(),
                at: self.loc.position(key.span().start),
            });
        }
    }

    fn read_rules(&mut self, value: &Value<'_>, set: &mut PolicySet) {
        let rules = match value.get_ref() {
            DeValue::Array(a) => a,
            _ => {
                self.error(
                    value.span(),
                    "rules are written [[rule]] (with two brackets), one per rule".into(),
                );
                return;
            }
        };
        for rule in rules.iter() {
            match rule.get_ref().as_table() {
                Some(table) => {
                    if let Some(r) = self.read_rule(rule.span(), table) {
                        set.rules.push(r);
                    }
                }
                None => self.error(
                    rule.span(),
                    "rules are written [[rule]] (with two brackets), one per rule".into(),
                ),
            }
        }
    }

    fn read_rule(&mut self, span: Range<usize>, table: &DeTable<'_>) -> Option<Rule> {
        let errors_before = self.errors.len();
        let at = self.loc.position(span.start);
        // A misspelt key is reported once, as a typo, not again as missing.
        let mut misspelt = Vec::new();
        for (key, _) in table.iter() {
            let k = key.get_ref().as_ref();
            if !RULE_KEYS.contains(&k) {
                let msg = format!(
                    "unknown key {k:?} in a rule: {}a rule may have {}",
                    hint(k, RULE_KEYS),
                    RULE_KEYS.join(", ")
                );
                misspelt.extend(did_you_mean(k, RULE_KEYS));
                self.error(key.span(), msg);
            }
        }
        let get = |k: &str| table.get(k);

        let name = match get("name") {
            Some(v) => self.string(v, "name", "e.g. name = \"team-sees-busy-times\""),
            None => {
                let message = "this rule has no name: add e.g. name = \"team-sees-busy-times\" \
                     (names appear in logs and explanations)";
                self.missing(&span, &misspelt, "name", message.to_string());
                None
            }
        };
        let name = name.map(|n| n.trim().to_string());
        if let (Some(n), Some(v)) = (&name, get("name"))
            && n.is_empty()
        {
            self.error(
                v.span(),
                "a rule name cannot be empty: give it one, e.g. name = \"team-sees-busy-times\""
                    .into(),
            );
        }
        let label = match &name {
            Some(n) => format!("rule {n:?}"),
            None => "this rule".to_string(),
        };

        let who = match get("who") {
            Some(v) => self.who(v),
            None => {
                let message = format!(
                    "{label} does not say whom it is about: add who = \"group:team\" \
                     (or \"anyone\", \"any-contact\", \"contact:Bob\")"
                );
                self.missing(&span, &misspelt, "who", message);
                Vec::new()
            }
        };
        let actions = match get("action") {
            Some(v) => self.actions(v),
            None => {
                let message = format!(
                    "{label} does not say what it is about: \
                     add action = \"freebusy\" (one of {ACTION_NAMES})"
                );
                self.missing(&span, &misspelt, "action", message);
                Vec::new()
            }
        };
        let effect = match get("decision") {
            Some(v) => self.effect(v),
            None => {
                let message = format!(
                    "{label} does not decide anything: \
                     add decision = \"allow\" (or \"deny\", \"ask\")"
                );
                self.missing(&span, &misspelt, "decision", message);
                None
            }
        };

        // Which keys make sense depends on the action and the decision; a key
        // that cannot apply is an error so that the owner is never misled
        // into thinking it limits something.
        let freebusy = actions.contains(&Action::Freebusy);
        let meeting = actions.contains(&Action::ProposeMeeting);
        let shaping = [
            ("level", freebusy, "freebusy"),
            ("granularity", freebusy, "freebusy"),
            ("max_slots", freebusy, "freebusy"),
            (
                "window",
                freebusy || meeting,
                "freebusy and propose-meeting",
            ),
            ("hours", freebusy || meeting, "freebusy and propose-meeting"),
            ("max_duration", meeting, "propose-meeting"),
        ];
        // A deny gets its own, clearer message below.
        if !actions.is_empty() && effect != Some(Effect::Deny) {
            for (key, applies, to) in shaping {
                if let Some(v) = get(key)
                    && !applies
                {
                    self.error(
                        v.span(),
                        format!("`{key}` only applies to {to} rules, and {label} is about {}: remove it or change `action`", join_actions(&actions)),
                    );
                }
            }
        }
        match effect {
            Some(Effect::Deny) => {
                for key in [
                    "level",
                    "window",
                    "hours",
                    "granularity",
                    "max_slots",
                    "max_duration",
                    "rate",
                    "expires",
                ] {
                    if let Some(v) = get(key) {
                        self.error(
                            v.span(),
                            format!("{label} denies, so `{key}` has nothing to limit: remove it"),
                        );
                    }
                }
            }
            Some(Effect::Allow) => {
                if let Some(v) = get("expires") {
                    self.error(
                        v.span(),
                        format!("`expires` is for decision = \"ask\" (how long a request waits for you); {label} allows: remove it"),
                    );
                }
            }
            _ => {}
        }

        let level = match get("level") {
            Some(v) => self.level(v).unwrap_or(Level::None),
            None => {
                if freebusy
                    && matches!(effect, Some(Effect::Allow | Effect::Ask))
                    && !misspelt.contains(&"level")
                {
                    self.error(
                        span.clone(),
                        format!("{label} shares free/busy time but does not say how much: add level = \"busy\" (one of {LEVEL_NAMES})"),
                    );
                }
                Level::None
            }
        };
        let window = get("window")
            .and_then(|v| self.positive_duration(v, "window", "how far ahead, e.g. \"14d\""));
        let hours = get("hours")
            .and_then(|v| self.hours(v))
            .unwrap_or(Hours::Any);
        let granularity = get("granularity").and_then(|v| {
            let g = self.positive_duration(v, "granularity", "a grid such as \"30m\"")?;
            if g > Duration::days(1) {
                self.error(
                    v.span(),
                    "`granularity` is at most a day (24h); busy time is rounded to a grid within each day".into(),
                );
                return None;
            }
            Some(g)
        });
        let max_slots = get("max_slots")
            .and_then(|v| self.count(v, "max_slots"))
            .map_or(DEFAULT_MAX_SLOTS, |n| n as usize);
        let max_duration = get("max_duration").and_then(|v| {
            self.positive_duration(v, "max_duration", "the longest meeting, e.g. \"1h\"")
        });
        let rate = get("rate").and_then(|v| self.rate(v)).unwrap_or_default();
        let (until, until_at) = match get("until") {
            Some(v) => (self.until(v), Some(self.loc.position(v.span().start))),
            None => (None, None),
        };
        let expires = get("expires")
            .and_then(|v| {
                self.positive_duration(
                    v,
                    "expires",
                    "how long a request waits for you, e.g. \"4h\"",
                )
            })
            .unwrap_or(DEFAULT_ASK_EXPIRY);

        if self.errors.len() > errors_before {
            return None;
        }
        Some(Rule {
            name: name?,
            at,
            who,
            actions,
            effect: effect?,
            level: if effect == Some(Effect::Deny) {
                Level::None
            } else {
                level
            },
            window,
            hours,
            granularity,
            max_slots,
            max_duration,
            rate,
            until,
            until_at,
            expires,
        })
    }

    // -- values -------------------------------------------------------------

    fn string<'v>(&mut self, v: &'v Value<'_>, key: &str, example: &str) -> Option<&'v str> {
        match v.get_ref().as_str() {
            Some(s) => Some(s),
            None => {
                self.error(
                    v.span(),
                    format!(
                        "`{key}` must be text in quotes ({example}), not {}",
                        type_name(v.get_ref())
                    ),
                );
                None
            }
        }
    }

    /// A string or a list of strings, each with its span.
    fn one_or_many(
        &mut self,
        v: &Value<'_>,
        key: &str,
        example: &str,
    ) -> Vec<(String, Range<usize>)> {
        match v.get_ref() {
            DeValue::String(s) => vec![(s.to_string(), v.span())],
            DeValue::Array(items) => {
                let mut out = Vec::new();
                for item in items.iter() {
                    if let Some(s) = self.string(item, key, example) {
                        out.push((s.to_string(), item.span()));
                    }
                }
                if items.iter().next().is_none() {
                    self.error(
                        v.span(),
                        format!("`{key}` is an empty list: name at least one ({example})"),
                    );
                }
                out
            }
            other => {
                self.error(
                    v.span(),
                    format!(
                        "`{key}` must be text in quotes or a list of them ({example}), not {}",
                        type_name(other)
                    ),
                );
                Vec::new()
            }
        }
    }

    fn who(&mut self, v: &Value<'_>) -> Vec<(Who, Position)> {
        let example = "e.g. who = \"group:team\" or who = [\"contact:Bob\", \"group:family\"]";
        let mut out = Vec::new();
        for (text, span) in self.one_or_many(v, "who", example) {
            let t = text.trim();
            let who = match t {
                "anyone" => Some(Who::Anyone),
                "any-contact" => Some(Who::AnyContact),
                _ => match t.split_once(':') {
                    Some(("group", g)) if bad_group_name(g.trim()).is_none() => {
                        Some(Who::Group(g.trim().to_string()))
                    }
                    Some(("contact", c)) if !c.trim().is_empty() => {
                        Some(Who::Contact(c.trim().to_string()))
                    }
                    _ => None,
                },
            };
            match who {
                Some(w) => out.push((w, self.loc.position(span.start))),
                None => self.error(
                    span,
                    format!(
                        "{t:?} does not say whom: {}write \"anyone\", \"any-contact\", \"group:NAME\" or \"contact:NAME-OR-JID\"",
                        hint(t, &["anyone", "any-contact"])
                    ),
                ),
            }
        }
        out
    }

    fn actions(&mut self, v: &Value<'_>) -> Vec<Action> {
        let mut out = Vec::new();
        for (text, span) in self.one_or_many(v, "action", "e.g. action = \"freebusy\"") {
            let t = text.trim();
            if t == "any" {
                out.extend(Action::ALL);
            } else if let Some(a) = Action::from_name(t) {
                out.push(a);
            } else {
                let names: Vec<&str> = Action::ALL
                    .iter()
                    .map(|a| a.name())
                    .chain(["any"])
                    .collect();
                self.error(
                    span,
                    format!(
                        "unknown action {t:?}: {}expected one of {ACTION_NAMES}",
                        hint(t, &names)
                    ),
                );
            }
        }
        out.sort();
        out.dedup();
        out
    }

    fn effect(&mut self, v: &Value<'_>) -> Option<Effect> {
        let t = self.string(v, "decision", "\"allow\", \"deny\" or \"ask\"")?;
        match t.trim() {
            "allow" => Some(Effect::Allow),
            "deny" => Some(Effect::Deny),
            "ask" => Some(Effect::Ask),
            other => {
                self.error(
                    v.span(),
                    format!(
                        "unknown decision {other:?}: {}expected one of allow, deny, ask",
                        hint(other, &["allow", "deny", "ask"])
                    ),
                );
                None
            }
        }
    }

    fn level(&mut self, v: &Value<'_>) -> Option<Level> {
        let t = self.string(v, "level", "e.g. level = \"busy\"")?;
        let t = t.trim();
        match Level::from_name(t) {
            Some(l) => Some(l),
            None => {
                let names: Vec<&str> = Level::ALL.iter().map(|l| l.name()).collect();
                self.error(
                    v.span(),
                    format!(
                        "unknown level {t:?} ({}expected one of {LEVEL_NAMES})",
                        hint(t, &names)
                    ),
                );
                None
            }
        }
    }

    fn positive_duration(&mut self, v: &Value<'_>, key: &str, what: &str) -> Option<Duration> {
        let t = self.string(v, key, what)?;
        match parse_duration(t) {
            Ok(d) if d > Duration::zero() => Some(d),
            Ok(_) => {
                self.error(
                    v.span(),
                    format!("`{key}` must be longer than zero: {what}"),
                );
                None
            }
            Err(e) => {
                self.error(v.span(), format!("`{key}`: {e}"));
                None
            }
        }
    }

    fn count(&mut self, v: &Value<'_>, key: &str) -> Option<u32> {
        let n = match v.get_ref() {
            DeValue::Integer(i) => i
                .as_str()
                .replace('_', "")
                .parse::<u32>()
                .ok()
                .filter(|n| *n > 0),
            other => {
                self.error(
                    v.span(),
                    format!(
                        "`{key}` must be a whole number such as 3, not {}",
                        type_name(other)
                    ),
                );
                return None;
            }
        };
        if n.is_none() {
            self.error(
                v.span(),
                format!("`{key}` must be a whole number from 1 up, e.g. 3"),
            );
        }
        n
    }

    fn hours(&mut self, v: &Value<'_>) -> Option<Hours> {
        let t = self.string(
            v,
            "hours",
            "\"working\", \"any\" or a span such as \"08:00-20:00\"",
        )?;
        let t = t.trim();
        match t {
            "working" => Some(Hours::Working),
            "any" => Some(Hours::Any),
            spans => match parse_spans(spans).and_then(|s| Hours::daily(&s)) {
                Ok(h) => Some(h),
                Err(e) => {
                    self.error(
                        v.span(),
                        format!("`hours`: {e}; write \"working\" (your working hours), \"any\", or a span such as \"08:00-20:00\""),
                    );
                    None
                }
            },
        }
    }

    fn rate(&mut self, v: &Value<'_>) -> Option<Rate> {
        let t = self.string(v, "rate", "e.g. rate = \"20/hour\"")?;
        match parse_rate(t) {
            Ok(r) => Some(r),
            Err(e) => {
                self.error(v.span(), format!("`rate`: {e}"));
                None
            }
        }
    }

    fn until(&mut self, v: &Value<'_>) -> Option<DateTime<Utc>> {
        let text = match v.get_ref() {
            DeValue::Datetime(d) => d.to_string(),
            DeValue::String(s) => s.to_string(),
            other => {
                self.error(
                    v.span(),
                    format!("`until` must be a date such as 2026-06-30 or a time such as 2026-06-30T18:00:00, not {}", type_name(other)),
                );
                return None;
            }
        };
        match parse_until(&text, self.owner_tz) {
            Some(t) => Some(t),
            None => {
                self.error(
                    v.span(),
                    format!("`until` {text:?} is not a date or time: write e.g. until = 2026-06-30 (through that day) or until = 2026-06-30T18:00:00"),
                );
                None
            }
        }
    }
}

fn join_actions(actions: &[Action]) -> String {
    actions
        .iter()
        .map(|a| a.name())
        .collect::<Vec<_>>()
        .join(", ")
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "text",
        DeValue::Integer(_) => "a number",
        DeValue::Float(_) => "a number",
        DeValue::Boolean(_) => "true/false",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "a list",
        DeValue::Table(_) => "a table",
    }
}

fn bad_group_name(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
    (!ok).then(|| {
        format!("{name:?} is not a group name: use letters, digits, '-', '_' or '.', e.g. team")
    })
}

/// `"08:00-20:00"` or `"09:00-12:00,13:00-17:00"`; `24:00` ends at midnight.
fn parse_spans(text: &str) -> Result<Vec<(NaiveTime, NaiveTime)>, String> {
    let mut spans = Vec::new();
    for part in text.split(',').map(str::trim) {
        let (s, e) = part
            .split_once('-')
            .ok_or_else(|| format!("{part:?} is not a span of time"))?;
        let time = |t: &str, end: bool| {
            let t = t.trim();
            if end && t == "24:00" {
                return Ok(NaiveTime::MIN);
            }
            NaiveTime::parse_from_str(t, "%H:%M")
                .map_err(|_| format!("{t:?} is not a time of day (HH:MM, e.g. 08:00)"))
        };
        spans.push((time(s, false)?, time(e, true)?));
    }
    Ok(spans)
}

/// `"20/hour"`, `"100/day"`, `"5/minute"`, `"50/week"` or `"10/30m"`.
pub(crate) fn parse_rate(text: &str) -> Result<Rate, String> {
    let t = text.trim();
    let (count, per) = t.split_once('/').ok_or_else(|| {
        format!("{t:?} is not a rate: write it as COUNT/PERIOD, e.g. \"20/hour\" or \"100/day\"")
    })?;
    let count: u32 = count.trim().parse().map_err(|_| {
        format!(
            "{t:?}: {:?} is not a whole number; write e.g. \"20/hour\"",
            count.trim()
        )
    })?;
    if count == 0 {
        return Err(format!(
            "{t:?} allows no requests at all: use decision = \"deny\" instead, or a count from 1 up"
        ));
    }
    let period = match per.trim() {
        "minute" => Duration::minutes(1),
        "hour" => Duration::hours(1),
        "day" => Duration::days(1),
        "week" => Duration::weeks(1),
        other => parse_duration(other).map_err(|_| {
            format!("{t:?}: the period {other:?} is not minute, hour, day, week or a duration such as 30m")
        })?,
    };
    if period <= Duration::zero() {
        return Err(format!("{t:?}: the period must be longer than zero"));
    }
    Ok(Rate { count, period })
}

/// A TOML date (`2026-06-30`: through the end of that day in the owner's
/// zone), local date-time (in the owner's zone) or offset date-time.
fn parse_until(text: &str, tz: Tz) -> Option<DateTime<Utc>> {
    let t = text.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(&t.replacen(' ', "T", 1)) {
        return Some(d.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(&t.replacen(' ', "T", 1), format) {
            return Some(local_to_utc(n, tz));
        }
    }
    let date = NaiveDate::parse_from_str(t, "%Y-%m-%d").ok()?;
    let next = date.succ_opt()?;
    Some(local_to_utc(next.and_time(NaiveTime::MIN), tz))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Result<PolicySet, Vec<Diagnostic>> {
        parse_files(&[("policies/test.toml".into(), text.into())], Tz::UTC)
    }

    fn first_error(text: &str) -> String {
        match one(text) {
            Ok(_) => "no error".into(),
            Err(e) => e.first().map(ToString::to_string).unwrap_or_default(),
        }
    }

    const GOOD: &str = r#"[groups]
team = "People you work with"

[[rule]]
name = "team-sees-busy-times"
who = "group:team"
action = "freebusy"
decision = "allow"
level = "busy"
"#;

    #[test]
    fn a_good_rule_is_read_with_its_position_and_defaults() {
        let set = one(GOOD).unwrap_or_default();
        let rule = &set.rules[0];
        assert_eq!((rule.at.line, rule.at.column), (4, 1));
        assert_eq!(rule.window_for(Action::Freebusy), Some(DEFAULT_WINDOW));
        assert_eq!(rule.window_for(Action::ProposeMeeting), None);
        assert_eq!(rule.hours, Hours::Any);
        assert_eq!(rule.granularity, None);
        assert_eq!(rule.max_slots, 3);
        assert_eq!(rule.rate, Rate::default());
        assert_eq!(set.groups[0].name, "team");
        assert_eq!(set.groups[0].at.line, 2);
    }

    #[test]
    fn a_typo_in_a_key_is_reported_at_the_key_with_a_suggestion() {
        let text = GOOD.replace("level = \"busy\"", "levle = \"busy\"");
        assert_eq!(
            first_error(&text),
            "policies/test.toml:9:1: error: unknown key \"levle\" in a rule: did you mean \"level\"? a rule may have name, who, action, decision, level, window, hours, granularity, max_slots, max_duration, rate, until, expires"
        );
    }

    #[test]
    fn a_bad_level_name_is_reported_at_its_value() {
        let text = GOOD.replace("level = \"busy\"", "level = \"bussy\"");
        assert_eq!(
            first_error(&text),
            "policies/test.toml:9:9: error: unknown level \"bussy\" (did you mean \"busy\"? expected one of none, yes-no, slots, busy, details)"
        );
    }

    #[test]
    fn a_bad_time_in_hours_is_reported_at_its_value() {
        let text = GOOD.replace(
            "level = \"busy\"",
            "level = \"busy\"\nhours = \"08:00-25:00\"",
        );
        assert_eq!(
            first_error(&text),
            "policies/test.toml:10:9: error: `hours`: \"25:00\" is not a time of day (HH:MM, e.g. 08:00); write \"working\" (your working hours), \"any\", or a span such as \"08:00-20:00\""
        );
        let text = GOOD.replace(
            "level = \"busy\"",
            "level = \"busy\"\nhours = \"18:00-08:00\"",
        );
        assert!(
            first_error(&text).starts_with(
                "policies/test.toml:10:9: error: `hours`: 18:00-08:00 ends before it starts"
            ),
            "{}",
            first_error(&text)
        );
    }

    #[test]
    fn bad_durations_rates_and_dates_are_reported_at_their_values() {
        let with = |extra: &str| {
            first_error(&GOOD.replace("level = \"busy\"", &format!("level = \"busy\"\n{extra}")))
        };
        assert!(
            with("window = \"2 weeks\"").starts_with(
                "policies/test.toml:10:10: error: `window`: '2 weeks' is not a duration"
            ),
            "{}",
            with("window = \"2 weeks\"")
        );
        assert!(with("granularity = \"0\"").starts_with(
            "policies/test.toml:10:15: error: `granularity` must be longer than zero"
        ));
        assert!(
            with("rate = \"20 per hour\"").starts_with(
                "policies/test.toml:10:8: error: `rate`: \"20 per hour\" is not a rate"
            )
        );
        assert!(with("rate = \"0/hour\"").contains("use decision = \"deny\" instead"));
        assert!(
            with("until = \"next week\"")
                .starts_with("policies/test.toml:10:9: error: `until` \"next week\" is not a date")
        );
        assert!(with("max_slots = \"3\"").starts_with("policies/test.toml:10:13: error: `max_slots` must be a whole number such as 3, not text"));
        assert!(with("window = 14").starts_with("policies/test.toml:10:10: error: `window` must be text in quotes (how far ahead, e.g. \"14d\"), not a number"));
    }

    #[test]
    fn rates_read_counts_per_period() {
        assert_eq!(
            parse_rate("20/hour"),
            Ok(Rate {
                count: 20,
                period: Duration::hours(1)
            })
        );
        assert_eq!(
            parse_rate("100/day"),
            Ok(Rate {
                count: 100,
                period: Duration::days(1)
            })
        );
        assert_eq!(
            parse_rate("5/30m"),
            Ok(Rate {
                count: 5,
                period: Duration::minutes(30)
            })
        );
        assert!(parse_rate("hour/20").is_err());
    }

    #[test]
    fn a_freebusy_only_key_on_another_action_is_an_error() {
        let text = "[[rule]]\nname = \"tasks\"\nwho = \"anyone\"\naction = \"offer-task\"\ndecision = \"allow\"\nlevel = \"busy\"\n";
        assert_eq!(
            first_error(text),
            "policies/test.toml:6:9: error: `level` only applies to freebusy rules, and rule \"tasks\" is about offer-task: remove it or change `action`"
        );
    }

    #[test]
    fn a_deny_rule_with_limits_and_an_allow_with_expires_are_errors() {
        let deny = "[[rule]]\nname = \"no\"\nwho = \"anyone\"\naction = \"freebusy\"\ndecision = \"deny\"\nwindow = \"14d\"\n";
        assert_eq!(
            first_error(deny),
            "policies/test.toml:6:10: error: rule \"no\" denies, so `window` has nothing to limit: remove it"
        );
        let allow = "[[rule]]\nname = \"t\"\nwho = \"anyone\"\naction = \"task-status\"\ndecision = \"allow\"\nexpires = \"4h\"\n";
        assert!(
            first_error(allow)
                .starts_with("policies/test.toml:6:11: error: `expires` is for decision = \"ask\"")
        );
    }

    #[test]
    fn a_freebusy_allow_without_a_level_is_an_error_at_the_rule() {
        let text = GOOD.replace("level = \"busy\"\n", "");
        assert_eq!(
            first_error(&text),
            "policies/test.toml:4:1: error: rule \"team-sees-busy-times\" shares free/busy time but does not say how much: add level = \"busy\" (one of none, yes-no, slots, busy, details)"
        );
    }

    #[test]
    fn missing_and_misspelt_who_action_and_decision_are_errors() {
        let text = "[[rule]]\nname = \"r\"\nwho = \"groop:team\"\naction = \"frebusy\"\ndecision = \"alow\"\n";
        let errors: Vec<String> = one(text)
            .err()
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(
            errors[0]
                .starts_with("policies/test.toml:3:7: error: \"groop:team\" does not say whom")
        );
        assert!(errors[1].starts_with(
            "policies/test.toml:4:10: error: unknown action \"frebusy\": did you mean \"freebusy\"?"
        ));
        assert!(errors[2].starts_with(
            "policies/test.toml:5:12: error: unknown decision \"alow\": did you mean \"allow\"?"
        ));
        let errors = one("[[rule]]\nname = \"r\"\n").err().unwrap_or_default();
        assert_eq!(errors.len(), 3);
        assert!(errors.iter().all(|e| (e.line, e.column) == (1, 1)));
    }

    #[test]
    fn a_toml_syntax_error_is_reported_where_it_is() {
        let text = GOOD.replace("level = \"busy\"", "level = \"busy");
        let e = first_error(&text);
        assert!(e.starts_with("policies/test.toml:9:14: error: this is not valid TOML: invalid basic string, expected `\"`"), "{e}");
    }

    #[test]
    fn a_single_bracket_rule_and_an_unknown_section_are_errors() {
        let e = first_error("[rule]\nname = \"r\"\n");
        assert_eq!(
            e,
            "policies/test.toml:1:1: error: rules are written [[rule]] (with two brackets), one per rule"
        );
        let e = first_error("[[rules]]\nname = \"r\"\n");
        assert!(
            e.starts_with(
                "policies/test.toml:1:3: error: unknown section \"rules\": did you mean \"rule\"?"
            ),
            "{e}"
        );
    }

    #[test]
    fn duplicate_rule_names_across_files_are_errors_and_every_error_is_listed() {
        let files = vec![
            ("policies/a.toml".to_string(), GOOD.to_string()),
            (
                "policies/b.toml".to_string(),
                GOOD.replace("level = \"busy\"", "level = \"bussy\""),
            ),
            ("policies/c.toml".to_string(), GOOD.to_string()),
        ];
        let errors: Vec<String> = parse_files(&files, Tz::UTC)
            .err()
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("policies/b.toml:9:9: error: unknown level"));
        assert_eq!(
            errors[1],
            "policies/c.toml:4:1: error: rule name \"team-sees-busy-times\" is already used at policies/a.toml:4:1; give each rule its own name"
        );
    }

    #[test]
    fn loading_a_directory_reads_toml_files_in_name_order_and_skips_tests()
    -> Result<(), PolicyError> {
        let dir = tempfile::tempdir().map_err(|source| PolicyError::Io {
            path: "tmp".into(),
            source,
        })?;
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text);
        let rule = |n: &str| {
            format!(
                "[[rule]]\nname = \"{n}\"\nwho = \"anyone\"\naction = \"task-status\"\ndecision = \"allow\"\n"
            )
        };
        let io = |source| PolicyError::Io {
            path: "tmp".into(),
            source,
        };
        write("b.toml", &rule("second")).map_err(io)?;
        write("a.toml", &rule("first")).map_err(io)?;
        write("a.tests.toml", "[[case]]\n").map_err(io)?;
        write("notes.txt", "not a policy").map_err(io)?;
        let set = load_dir(dir.path(), Tz::UTC)?;
        let names: Vec<&str> = set.rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, vec!["first", "second"]);
        write("c.toml", "[[rule]\n").map_err(io)?;
        match load_dir(dir.path(), Tz::UTC) {
            Err(PolicyError::Invalid(d)) => assert!(d[0].file.ends_with("c.toml")),
            other => panic!("{other:?}"),
        }
        Ok(())
    }

    #[test]
    fn the_shipped_default_and_every_example_load_and_check_clean() {
        let person = |name: &str, groups: &[&str]| crate::domain::Contact {
            name: name.into(),
            jid: format!("{}@example.org", name.to_lowercase()),
            agent_jid: None,
            groups: groups.iter().map(|g| g.to_string()).collect(),
        };
        // The people the examples talk about, each in the groups they use.
        let contacts = vec![
            person("Bob", &["team"]),
            person("Eve", &["team"]),
            person("Carol", &["family"]),
            person("Dana", &["clients"]),
        ];
        let now = DateTime::parse_from_rfc3339("2026-01-12T08:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        let mut paths: Vec<_> = std::fs::read_dir(root.join("examples"))
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|e| e.path().display().to_string())
            .filter(|p| p.ends_with(".toml") && !p.ends_with(TESTS_SUFFIX))
            .collect();
        paths.sort();
        paths.push(root.join("default.toml").display().to_string());
        assert!(
            paths.len() >= 4,
            "expected the default and at least three examples: {paths:?}"
        );
        for path in paths {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let set = parse_files(&[(path.clone(), text)], Tz::UTC)
                .unwrap_or_else(|e| panic!("{path}: {e:#?}"));
            assert!(!set.rules.is_empty(), "{path}");
            // A deliberate carve-out (a deny inside an allowed group) is the
            // one warning an example may show.
            let findings: Vec<String> = crate::policy::check(&set, &contacts, now)
                .iter()
                .filter(|d| {
                    d.severity == Severity::Error || !d.message.contains("the deny wins there")
                })
                .map(ToString::to_string)
                .collect();
            assert!(findings.is_empty(), "{path}: {findings:#?}");
        }
    }

    #[test]
    fn every_policy_example_in_the_readme_reads_cleanly() {
        let readme = include_str!("../../policies/README.md");
        let blocks: Vec<&str> = readme
            .split("```toml")
            .skip(1)
            .filter_map(|b| b.split("```").next())
            .filter(|b| b.contains("[[rule]]"))
            .collect();
        assert_eq!(blocks.len(), 2);
        for block in blocks {
            // The README declares `team` in its first block only.
            let text = format!(
                "[groups]\nteam = \"work\"\n{}",
                block.replace("[groups]\nteam = \"People I work with\"\n", "")
            );
            if let Err(e) = one(&text) {
                panic!("{block}: {e:#?}");
            }
        }
    }

    #[test]
    fn spans_become_lines_and_character_columns() {
        let loc = Locator::new("f", "ab\nçd = 1\n");
        assert_eq!((loc.position(0).line, loc.position(0).column), (1, 1));
        assert_eq!((loc.position(3).line, loc.position(3).column), (2, 1));
        // 'ç' is two bytes but one column.
        assert_eq!((loc.position(5).line, loc.position(5).column), (2, 2));
    }

    /// The policy parser reads files the owner edits by hand: whatever they
    /// contain, it answers (a set or diagnostics) without panicking, fast,
    /// and every diagnostic points at a line of the file.
    mod fuzz {
        use proptest::prelude::*;

        use super::*;

        const PIECES: &[&str] = &[
            "[[rule]]\n",
            "[groups]\n",
            "[[case]]\n",
            "name = \"r\"\n",
            "who = \"group:team\"\n",
            "who = [\"contact:Bob\", \"anyone\"]\n",
            "action = \"freebusy\"\n",
            "action = [\"propose-meeting\", \"offer-task\"]\n",
            "decision = \"allow\"\n",
            "decision = \"ask\"\n",
            "decision = \"deny\"\n",
            "level = \"busy\"\n",
            "level = \"yes-no\"\n",
            "window = \"14d\"\n",
            "window = \"-3d\"\n",
            "hours = \"working\"\n",
            "hours = \"25:00-26:00\"\n",
            "granularity = \"30m\"\n",
            "rate = \"20/hour\"\n",
            "rate = \"0/0\"\n",
            "expires = \"4h\"\n",
            "until = 2026-01-01T00:00:00Z\n",
            "max_duration = \"99999999h\"\n",
            "team = \"x\"\n",
            "= \"\n",
            "[[rule\n",
            "\"\"\"\n",
            "name = 'r'\n",
            "\u{feff}",
            "\r\n",
            "# c\n",
        ];

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn any_text_gets_an_answer_quickly_and_errors_name_a_line(text in "\\PC{0,600}") {
                check(&text)?;
            }

            #[test]
            fn policy_shaped_soup_gets_an_answer_quickly_and_errors_name_a_line(
                parts in prop::collection::vec(prop::sample::select(PIECES), 0..60)
            ) {
                check(&parts.concat())?;
            }
        }

        fn check(text: &str) -> Result<(), TestCaseError> {
            let started = std::time::Instant::now();
            let result = one(text);
            prop_assert!(started.elapsed() < std::time::Duration::from_secs(1));
            if let Err(diagnostics) = result {
                prop_assert!(!diagnostics.is_empty());
                let lines = text.lines().count().max(1) + 1;
                for d in &diagnostics {
                    prop_assert_eq!(&d.file, "policies/test.toml");
                    prop_assert!(d.line >= 1 && d.line <= lines, "{} of {}", d.line, lines);
                }
            }
            Ok(())
        }
    }
}
