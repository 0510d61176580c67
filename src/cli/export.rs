//! `attache export`: the store back out as one valid .ics file, or (with
//! `--since`) what the agent booked, moved, cancelled or accepted since then
//! as iTIP messages a calendar app applies.

use std::path::PathBuf;

use clap::Args;

use super::Context;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;

use crate::calendar::ics::{export_calendar, itip_calendar, todo_to_ics};
use crate::domain::MeetingStatus;
use crate::domain::time::local_to_utc;
use crate::error::CliError;

/// Write every event, task and time zone as one iCalendar file. Imported
/// components are written exactly as they came in, so export → import
/// gives the same store.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to this file instead of standard output
    #[arg(long, value_name = "FILE", conflicts_with = "out_dir")]
    out: Option<PathBuf>,
    /// Only what changed since then (RFC 3339 or YYYY-MM-DD in your zone):
    /// each booked, moved or cancelled meeting and each accepted task as an
    /// iTIP message (METHOD:REQUEST or METHOD:CANCEL, RFC 5546)
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// With --since: one file per meeting or task in DIR
    /// (meeting-N.ics, task-N.ics), to open in a calendar app
    #[arg(long, value_name = "DIR", requires = "since")]
    out_dir: Option<PathBuf>,
}

pub(crate) async fn run(ctx: &Context, args: ExportArgs) -> Result<(), CliError> {
    if let Some(since) = &args.since {
        let since = parse_since(since, ctx.tz)?;
        return changes(ctx, since, args.out, args.out_dir).await;
    }
    let (timezones, events) = ctx.store.export_parts().await?;
    let todos: Vec<String> = ctx
        .store
        .tasks_for_export()
        .await?
        .into_iter()
        .map(|(task, raw)| raw.unwrap_or_else(|| todo_to_ics(&task)))
        .collect();
    let text = export_calendar(&timezones, &events, &todos);
    write_out(args.out, &text)
}

fn write_out(out: Option<PathBuf>, text: &str) -> Result<(), CliError> {
    match out {
        Some(path) => std::fs::write(&path, text).map_err(|source| CliError::Io { path, source }),
        None => super::say_raw(text),
    }
}

/// `--since`: an instant, or a date meaning its midnight in the owner's zone.
fn parse_since(text: &str, tz: Tz) -> Result<DateTime<Utc>, CliError> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(local_to_utc(d.and_time(NaiveTime::MIN), tz));
    }
    Err(CliError::Usage(format!(
        "--since {text:?}: give a time like 2026-01-12T09:00:00Z or a date like 2026-01-12"
    )))
}

/// The iTIP messages for what changed since `since`.
async fn changes(
    ctx: &Context,
    since: DateTime<Utc>,
    out: Option<PathBuf>,
    out_dir: Option<PathBuf>,
) -> Result<(), CliError> {
    let mut messages: Vec<(String, String)> = Vec::new();
    for (meeting, raw) in ctx.store.meetings_changed_since(since).await? {
        let method = match meeting.status {
            MeetingStatus::Cancelled => "CANCEL",
            _ => "REQUEST",
        };
        messages.push((
            format!("meeting-{}.ics", meeting.short_id),
            itip_calendar(method, std::slice::from_ref(&raw)),
        ));
    }
    for (id, task) in ctx.store.received_tasks_since(since).await? {
        messages.push((
            format!("task-{id}.ics"),
            itip_calendar("REQUEST", &[todo_to_ics(&task)]),
        ));
    }
    match out_dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir).map_err(|source| CliError::Io {
                path: dir.clone(),
                source,
            })?;
            for (name, text) in &messages {
                let path = dir.join(name);
                std::fs::write(&path, text).map_err(|source| CliError::Io { path, source })?;
            }
            say!(
                "{} file{} in {}",
                messages.len(),
                if messages.len() == 1 { "" } else { "s" },
                dir.display()
            );
            Ok(())
        }
        None => write_out(
            out,
            &messages.into_iter().map(|(_, t)| t).collect::<String>(),
        ),
    }
}
