//! `attache tasks`: the owner's task list.

use chrono::{NaiveDate, NaiveDateTime};
use clap::{Args, Subcommand};

use super::{Context, print_json};
use crate::domain::{IcalTime, Task, TaskStatus};
use crate::error::CliError;
use crate::store::StoredTask;

/// Manage your tasks. Ids are short and stable: `done 3` always means the same task.
#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    Add(AddArgs),
    List(ListArgs),
    Done(DoneArgs),
}

/// Add a task.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// What to do
    #[arg(required = true, num_args = 1.., value_name = "TEXT")]
    text: Vec<String>,
    /// Due date (YYYY-MM-DD) or time (YYYY-MM-DD HH:MM, your zone)
    #[arg(long, value_name = "WHEN")]
    due: Option<String>,
    /// Priority 1 (highest) to 9 (lowest)
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=9))]
    priority: Option<u8>,
}

/// List open tasks (all with --all).
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Include completed and cancelled tasks
    #[arg(long)]
    all: bool,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

/// Mark a task done.
#[derive(Debug, Args)]
pub struct DoneArgs {
    /// The task's id, as `tasks list` shows it
    id: i64,
}

fn parse_due(text: &str, tz: chrono_tz::Tz) -> Result<IcalTime, CliError> {
    let t = text.trim();
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(IcalTime::Date(d));
    }
    for fmt in ["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"] {
        if let Ok(local) = NaiveDateTime::parse_from_str(t, fmt) {
            return Ok(IcalTime::Zoned { local, tz });
        }
    }
    Err(CliError::Usage(format!(
        "--due '{text}': write a date (2026-01-13) or a date and time (2026-01-13 17:00)"
    )))
}

pub(crate) async fn run(ctx: &Context, cmd: TasksCommand) -> Result<(), CliError> {
    match cmd {
        TasksCommand::Add(a) => {
            let summary = a.text.join(" ").trim().to_string();
            let task = Task {
                uid: Task::new_uid(ctx.now),
                summary,
                description: None,
                due: a.due.as_deref().map(|d| parse_due(d, ctx.tz)).transpose()?,
                priority: a.priority,
                status: TaskStatus::NeedsAction,
                percent_complete: None,
                completed: None,
                delegated_to: None,
                delegated_from: None,
                sequence: 0,
            };
            let id = ctx.store.add_task(&task, ctx.now).await?;
            say!("Added task {id}: {}", task.summary);
            Ok(())
        }
        TasksCommand::List(a) => {
            let tasks = ctx.store.tasks(a.all).await?;
            if a.json {
                return print_json(&tasks);
            }
            if tasks.is_empty() {
                say!("No open tasks.");
            }
            for t in &tasks {
                say!("{}", describe(t, ctx.tz));
            }
            Ok(())
        }
        TasksCommand::Done(a) => {
            let t = ctx.store.complete_task(a.id, ctx.now).await?;
            say!("Done: {} {}", t.id, t.task.summary);
            Ok(())
        }
    }
}

fn describe(t: &StoredTask, tz: chrono_tz::Tz) -> String {
    let mut s = format!("{:>3}  ", t.id);
    s.push_str(match t.task.status {
        TaskStatus::NeedsAction => "[ ] ",
        TaskStatus::InProcess => "[~] ",
        TaskStatus::Completed => "[x] ",
        TaskStatus::Cancelled => "[-] ",
    });
    s.push_str(&t.task.summary);
    if let Some(due) = t.task.due {
        let text = match due {
            IcalTime::Date(d) => d.format("%a %d %b").to_string(),
            other => other
                .to_utc(tz)
                .with_timezone(&tz)
                .format("%a %d %b %H:%M")
                .to_string(),
        };
        s.push_str(&format!("  (due {text})"));
    }
    if let Some(p) = t.task.priority {
        s.push_str(&format!("  p{p}"));
    }
    if let Some(to) = &t.task.delegated_to {
        s.push_str(&format!("  → {to}"));
    }
    s
}
