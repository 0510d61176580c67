//! `attache policy check|explain|test`: the owner's tools for their sharing rules.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::Duration;
use clap::{Args, Subcommand};

use super::free::{slot_options, working_hours};
use super::when::range_text;
use super::{Context, parse_instant};
use crate::domain::TimeRange;
use crate::domain::contact::parse_bare_jid;
use crate::domain::time::parse_duration;
use crate::error::{CliError, PolicyError, Severity};
use crate::policy::{
    Action, CalendarView, Level, PolicySet, Request, allowed_window, check, explain, load_dir,
    resolve_peer, run_expectations,
};

/// Check, explain and test your sharing policies (DATA_DIR/policies/*.toml).
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    Check(CheckArgs),
    Explain(ExplainArgs),
    Test(TestArgs),
}

/// Validate every policy file: syntax, keys, levels, times, contacts and
/// groups. Prints each problem as FILE:LINE:COLUMN and exits non-zero on errors.
#[derive(Debug, Args)]
pub struct CheckArgs {}

/// Tell which rule decides a request from a peer and exactly what it would
/// disclose from your calendar right now.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The asking peer: a contact's JID or their agent's JID
    #[arg(long, value_name = "JID")]
    peer: String,
    /// freebusy, propose-meeting, offer-task, task-status or contact-card
    #[arg(long, default_value = "freebusy")]
    action: String,
    /// Decide as of this instant (RFC 3339) [default: now]
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// Free/busy: the start of the window asked about (RFC 3339)
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// Free/busy: the end of the window asked about (RFC 3339)
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
    /// Slots: the meeting length asked for (e.g. 30m, 1h)
    #[arg(long, value_name = "DUR")]
    duration: Option<String>,
    /// Yes/no: the proposed slot's start (RFC 3339); its length is --duration (default 30m)
    #[arg(long, value_name = "TIME")]
    slot: Option<String>,
    /// Ask for less than the rule allows: none, yes-no, slots, busy, details
    #[arg(long, value_name = "LEVEL")]
    level: Option<String>,
}

/// Run owner-written expectations (a TOML file of [[case]] peer, action,
/// expect, level) against the current policies, like `opa test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// The expectations file, e.g. policies/my.tests.toml
    file: PathBuf,
}

pub(crate) async fn run(ctx: &Context, cmd: PolicyCommand) -> Result<(), CliError> {
    match cmd {
        PolicyCommand::Check(_) => run_check(ctx).await,
        PolicyCommand::Explain(args) => run_explain(ctx, args).await,
        PolicyCommand::Test(args) => run_test(ctx, args).await,
    }
}

/// The policy set, or every diagnostic of why it cannot be loaded.
pub(crate) fn load(ctx: &Context) -> Result<PolicySet, CliError> {
    load_dir(&ctx.data_dir.join("policies"), ctx.tz).map_err(CliError::Policy)
}

async fn run_check(ctx: &Context) -> Result<(), CliError> {
    let dir = ctx.data_dir.join("policies");
    let set = match load_dir(&dir, ctx.tz) {
        Ok(set) => set,
        Err(PolicyError::Invalid(diags)) => {
            for d in &diags {
                eprintln!("{d}");
            }
            return Err(CliError::Usage(format!(
                "{} error(s) in the policy files; a running agent keeps its last good policy until they are fixed",
                diags
                    .iter()
                    .filter(|d| d.severity == Severity::Error)
                    .count()
            )));
        }
        Err(e) => return Err(CliError::Policy(e)),
    };
    let contacts = ctx.store.contacts().await?;
    let diags = check(&set, &contacts, ctx.now);
    for d in &diags {
        eprintln!("{d}");
    }
    let errors = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    if errors > 0 {
        return Err(CliError::Usage(format!(
            "{errors} error(s) in the policy files"
        )));
    }
    say!(
        "Policies OK: {} rules, {} groups declared, {} warning(s).",
        set.rules.len(),
        set.groups.len(),
        diags.len()
    );
    Ok(())
}

async fn run_explain(ctx: &Context, args: ExplainArgs) -> Result<(), CliError> {
    let set = load(ctx)?;
    let contacts = ctx.store.contacts().await?;
    let now = match &args.at {
        Some(t) => parse_instant("--at", t)?,
        None => ctx.now,
    };
    let action = Action::from_name(&args.action).ok_or_else(|| {
        CliError::Usage(format!(
            "--action '{}': use freebusy, propose-meeting, offer-task, task-status or contact-card",
            args.action
        ))
    })?;
    let peer = parse_bare_jid(&args.peer).map_err(CliError::Usage)?;
    let mut request = Request::new(peer.clone(), action);
    request.window = match (&args.from, &args.to) {
        (Some(f), Some(t)) => Some(
            TimeRange::new(parse_instant("--from", f)?, parse_instant("--to", t)?)
                .ok_or_else(|| CliError::Usage("--to is before --from".into()))?,
        ),
        (None, None) => None,
        _ => {
            return Err(CliError::Usage(
                "give both --from and --to, or neither".into(),
            ));
        }
    };
    let duration = match &args.duration {
        Some(d) => {
            Some(parse_duration(d).map_err(|e| CliError::Usage(format!("--duration: {e}")))?)
        }
        None => None,
    };
    request.duration = duration;
    if let Some(s) = &args.slot {
        let start = parse_instant("--slot", s)?;
        request.proposed = vec![TimeRange {
            start,
            end: start + duration.unwrap_or(Duration::minutes(30)),
        }];
    }
    request.requested_level = match &args.level {
        Some(l) => Some(Level::from_name(l).ok_or_else(|| {
            CliError::Usage(format!(
                "--level '{l}': use none, yes-no, slots, busy or details"
            ))
        })?),
        None => None,
    };

    // Rate limits count what this peer was answered recently, per period.
    let key = resolve_peer(&peer, &contacts)
        .map(|c| c.jid.clone())
        .unwrap_or_else(|| peer.clone());
    let mut answered: BTreeMap<i64, u32> = BTreeMap::new();
    for rule in &set.rules {
        let secs = rule.rate.period.num_seconds();
        if let std::collections::btree_map::Entry::Vacant(e) = answered.entry(secs) {
            e.insert(
                ctx.store
                    .answered_since(&key, now - rule.rate.period)
                    .await?,
            );
        }
    }
    let history = |period: Duration| answered.get(&period.num_seconds()).copied().unwrap_or(0);

    // First decide without a calendar, to know which window to read.
    let plain = explain(&request, &set, &contacts, now, &history, None);
    let hours = working_hours(&ctx.settings)?;
    let opts = slot_options(&ctx.settings, duration.unwrap_or(Duration::minutes(30)));
    let window = allowed_window(&plain.decision, &request, now);
    let (busy, instances) = match window {
        Some(w) => (
            ctx.store.busy(w, ctx.tz).await?,
            if plain.decision.level == Level::Details {
                ctx.store.instances(w, ctx.tz).await?
            } else {
                Vec::new()
            },
        ),
        None => (Vec::new(), Vec::new()),
    };
    let view = CalendarView {
        busy: &busy,
        instances: &instances,
        working_hours: &hours,
        owner_tz: ctx.tz,
        slot_options: opts,
    };
    let full = explain(&request, &set, &contacts, now, &history, Some(&view));
    say!("{full}");
    if let Some(w) = window {
        say!(
            "(window considered: {}, times in {})",
            range_text(&w, ctx.tz),
            ctx.tz.name()
        );
    }
    Ok(())
}

async fn run_test(ctx: &Context, args: TestArgs) -> Result<(), CliError> {
    let set = load(ctx)?;
    let contacts = ctx.store.contacts().await?;
    let text = std::fs::read_to_string(&args.file).map_err(|source| CliError::Io {
        path: args.file.clone(),
        source,
    })?;
    let results = match run_expectations(&text, &set, &contacts, ctx.now) {
        Ok(r) => r,
        Err(diags) => {
            let file = args.file.display().to_string();
            for d in &diags {
                let mut d = d.clone();
                d.file = file.clone();
                eprintln!("{d}");
            }
            return Err(CliError::Usage(format!(
                "{file}: {} error(s); no case was run",
                diags.len()
            )));
        }
    };
    let failed: Vec<_> = results.iter().filter(|r| !r.passed).collect();
    for r in &results {
        if r.passed {
            say!("PASS  {}", r.name);
        } else {
            say!(
                "FAIL  {} ({}:{}): {}",
                r.name,
                args.file.display(),
                r.line,
                r.message
            );
        }
    }
    say!(
        "{} passed, {} failed",
        results.len() - failed.len(),
        failed.len()
    );
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "{} of {} policy expectations failed",
            failed.len(),
            results.len()
        )))
    }
}
