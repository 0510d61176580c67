//! `attache log`: what was disclosed to whom, and `log verify`.

use clap::{Args, Subcommand};
use serde::Serialize;

use super::{Context, print_json};
use crate::audit::ChainedEntry;
use crate::error::CliError;

/// Show the disclosure log: every decision about another agent's request —
/// allowed, denied, sent to you for approval, or rate-limited — with the
/// rule that decided and what was disclosed.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LogArgs {
    #[command(subcommand)]
    action: Option<LogAction>,
    /// Only entries about this peer (their JID or their agent's)
    #[arg(long, value_name = "JID")]
    peer: Option<String>,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum LogAction {
    /// Check that no entry was edited, deleted or reordered since it was
    /// written; names the first broken entry and exits non-zero if one was.
    Verify,
    /// Delete entries older than `audit.retention` (config), keeping a
    /// checkpoint so the rest still verifies.
    Prune,
}

#[derive(Serialize)]
struct LogJson<'a> {
    #[serde(flatten)]
    entry: &'a ChainedEntry,
}

pub(crate) async fn run(ctx: &Context, args: LogArgs) -> Result<(), CliError> {
    if let Some(LogAction::Verify) = args.action {
        return match ctx.store.verify_audit().await? {
            Ok(report) => {
                let head = report
                    .head
                    .map(|(seq, hash)| format!(" Newest entry {seq}, hash {hash}."))
                    .unwrap_or_default();
                let pruned = report
                    .checkpoint
                    .map(|c| format!(" Entries up to {} were pruned (checkpoint kept).", c.seq))
                    .unwrap_or_default();
                say!(
                    "The disclosure log is intact: {} entries verified.{pruned}{head}",
                    report.entries
                );
                Ok(())
            }
            Err(brk) => Err(CliError::Usage(format!(
                "the disclosure log was tampered with: {brk}"
            ))),
        };
    }
    if let Some(LogAction::Prune) = args.action {
        let retention = crate::config::Settings::duration(&ctx.settings.audit.retention);
        let pruned = ctx.store.prune_audit(ctx.now - retention).await?;
        say!(
            "Pruned {pruned} entries older than {} (audit.retention); the rest still verifies.",
            ctx.settings.audit.retention
        );
        return Ok(());
    }
    let key = match &args.peer {
        Some(p) => Some(
            ctx.store
                .find_contact(p)
                .await?
                .map(|c| c.jid)
                .unwrap_or_else(|| p.trim().to_lowercase()),
        ),
        None => None,
    };
    let entries = ctx.store.audit_entries(key.as_deref()).await?;
    if args.json {
        let rows: Vec<LogJson> = entries.iter().map(|entry| LogJson { entry }).collect();
        return print_json(&rows);
    }
    if entries.is_empty() {
        say!(
            "Nothing was disclosed{}.",
            args.peer.map(|p| format!(" to {p}")).unwrap_or_default()
        );
    }
    for c in &entries {
        let e = &c.entry;
        let at = e.at.with_timezone(&ctx.tz).format("%a %d %b %H:%M");
        let rule = e
            .rule
            .as_deref()
            .map(|r| format!(" by rule {r}"))
            .unwrap_or_else(|| " by default".into());
        let level = e
            .level
            .as_deref()
            .map(|l| format!(" at level {l}"))
            .unwrap_or_default();
        say!(
            "{:>5}  {at}  {}  {}: {}{level}{rule} — {}",
            c.seq,
            e.peer,
            e.action,
            e.outcome.as_str(),
            e.disclosed
        );
    }
    Ok(())
}
