//! `attache import` and `attache sync`: iCalendar files into the store.

use std::path::{Path, PathBuf};

use clap::Args;

use super::Context;
use crate::calendar::ics::{ParsedCalendar, parse_calendar};
use std::collections::BTreeMap;

use crate::calendar::expand::validate_series;
use crate::domain::EventSeries;
use crate::error::{CliError, IcsError};
use crate::store::{ImportMode, ImportReport, ImportSet};

/// Import .ics files (events, tasks, time zones). Components are matched by
/// UID and RECURRENCE-ID: importing a file again updates, never duplicates.
/// Each file is imported whole or not at all.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The .ics files to read
    #[arg(required = true, value_name = "FILE.ics")]
    files: Vec<PathBuf>,
}

/// Make the store match one .ics file: import it, and remove the events and
/// tasks that came from this file before but are no longer in it (so an
/// event deleted in your calendar app stops blocking time).
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The .ics file that is the truth for what came from it
    #[arg(value_name = "FILE.ics")]
    file: PathBuf,
}

pub(crate) async fn run_import(ctx: &Context, args: ImportArgs) -> Result<(), CliError> {
    let mut failed = Vec::new();
    for file in &args.files {
        match import_file(ctx, file, ImportMode::Merge).await {
            Ok(report) => say!("{}: {}", file.display(), summary(&report)),
            Err(e) => {
                eprintln!("error: {e}\n  nothing from {} was imported", file.display());
                failed.push(file.display().to_string());
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "{} of {} files not imported: {}",
            failed.len(),
            args.files.len(),
            failed.join(", ")
        )))
    }
}

pub(crate) async fn run_sync(ctx: &Context, args: SyncArgs) -> Result<(), CliError> {
    let report = import_file(ctx, &args.file, ImportMode::Sync).await?;
    say!("{}: {}", args.file.display(), summary(&report));
    Ok(())
}

/// Reads, checks and stores one file in one transaction.
pub(crate) async fn import_file(
    ctx: &Context,
    file: &Path,
    mode: ImportMode,
) -> Result<ImportReport, CliError> {
    let bytes = std::fs::read(file).map_err(|source| CliError::Io {
        path: file.to_path_buf(),
        source,
    })?;
    let name = file.display().to_string();
    let parsed = parse_calendar(&bytes).map_err(|e| e.in_file(name.clone()))?;
    for w in &parsed.warnings {
        eprintln!("warning: {name}: {w}");
    }
    check_recurrence(&parsed, ctx.tz).map_err(|e| e.in_file(name.clone()))?;
    let set = to_import_set(parsed);
    // The source is the file's canonical path, so `sync` finds what came from it
    // whichever relative path names it.
    let source = std::fs::canonicalize(file)
        .unwrap_or_else(|_| file.to_path_buf())
        .display()
        .to_string();
    Ok(ctx
        .store
        .import(&set, Some(&source), mode, ctx.tz, ctx.now)
        .await?)
}

/// Refuses a file whose recurrence rules the engine cannot read, naming the
/// line of the offending component, before anything is stored.
fn check_recurrence(parsed: &ParsedCalendar, tz: chrono_tz::Tz) -> Result<(), IcsError> {
    let mut first_line: BTreeMap<&str, usize> = BTreeMap::new();
    for e in &parsed.events {
        first_line.entry(e.component.uid.as_str()).or_insert(e.line);
    }
    let series = EventSeries::group(parsed.events.iter().map(|e| e.component.clone()));
    for s in &series {
        let line = first_line.get(s.uid.as_str()).copied().unwrap_or(1);
        validate_series(s, tz).map_err(|e| IcsError::new(line, e.to_string()))?;
    }
    Ok(())
}

fn to_import_set(parsed: ParsedCalendar) -> ImportSet {
    ImportSet {
        events: parsed
            .events
            .into_iter()
            .map(|e| (e.component, e.raw))
            .collect(),
        todos: parsed.todos.into_iter().map(|t| (t.task, t.raw)).collect(),
        timezones: parsed
            .timezones
            .into_iter()
            .map(|t| (t.tzid, t.raw))
            .collect(),
    }
}

fn summary(r: &ImportReport) -> String {
    let mut parts = vec![format!(
        "{} events ({} new, {} updated)",
        r.events_added + r.events_updated,
        r.events_added,
        r.events_updated
    )];
    if r.events_removed > 0 {
        parts.push(format!("{} events removed", r.events_removed));
    }
    parts.push(format!(
        "{} tasks ({} new, {} updated)",
        r.tasks_added + r.tasks_updated,
        r.tasks_added,
        r.tasks_updated
    ));
    if r.tasks_removed > 0 {
        parts.push(format!("{} tasks removed", r.tasks_removed));
    }
    parts.join(", ")
}
