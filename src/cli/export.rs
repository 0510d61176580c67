//! `attache export`: the store back out as one valid .ics file.

use std::path::PathBuf;

use clap::Args;

use super::Context;
use crate::calendar::ics::{export_calendar, todo_to_ics};
use crate::error::CliError;

/// Write every event, task and time zone as one iCalendar file. Imported
/// components are written exactly as they came in, so export → import
/// gives the same store.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to this file instead of standard output
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub(crate) async fn run(ctx: &Context, args: ExportArgs) -> Result<(), CliError> {
    let (timezones, events) = ctx.store.export_parts().await?;
    let todos: Vec<String> = ctx
        .store
        .tasks_for_export()
        .await?
        .into_iter()
        .map(|(task, raw)| raw.unwrap_or_else(|| todo_to_ics(&task)))
        .collect();
    let text = export_calendar(&timezones, &events, &todos);
    match args.out {
        Some(path) => std::fs::write(&path, text).map_err(|source| CliError::Io { path, source }),
        None => {
            use std::io::Write;
            std::io::stdout()
                .write_all(text.as_bytes())
                .map_err(|source| CliError::Io {
                    path: "standard output".into(),
                    source,
                })
        }
    }
}
