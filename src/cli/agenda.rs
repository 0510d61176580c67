//! `attache agenda`: the owner's own events, in local time.

use clap::Args;
use serde::Serialize;

use super::when::{parse_day_word, range_text};
use super::{Context, print_json, utc_text};
use crate::error::CliError;

/// Show your events for a day or a week, in your time zone.
#[derive(Debug, Args)]
pub struct AgendaArgs {
    /// today, tomorrow, week (today and the next 6 days), "next week", or YYYY-MM-DD
    #[arg(default_value = "today", num_args = 0.., value_name = "WHEN")]
    when: Vec<String>,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct AgendaJson {
    uid: String,
    start: String,
    end: String,
    all_day: bool,
    summary: Option<String>,
    location: Option<String>,
    status: crate::domain::EventStatus,
    transparency: crate::domain::Transparency,
}

pub(crate) async fn run(ctx: &Context, args: AgendaArgs) -> Result<(), CliError> {
    let word = args.when.join(" ");
    let window = parse_day_word(&word, ctx.now, ctx.tz).map_err(CliError::Usage)?;
    let instances = ctx.store.instances(window, ctx.tz).await?;
    if args.json {
        let rows: Vec<AgendaJson> = instances
            .iter()
            .map(|i| AgendaJson {
                uid: i.details.uid.clone(),
                start: utc_text(i.range.start),
                end: utc_text(i.range.end),
                all_day: i.all_day,
                summary: i.details.summary.clone(),
                location: i.details.location.clone(),
                status: i.status,
                transparency: i.transparency,
            })
            .collect();
        return print_json(&rows);
    }
    if instances.is_empty() {
        say!(
            "Nothing on {}.",
            if word.is_empty() { "today" } else { &word }
        );
    }
    for i in &instances {
        let when = if i.all_day {
            let local = i.range.start.with_timezone(&ctx.tz);
            format!("{} (all day)", local.format("%a %d %b"))
        } else {
            range_text(&i.range, ctx.tz)
        };
        let mut line = format!(
            "{when}  {}",
            i.details.summary.as_deref().unwrap_or("(no title)")
        );
        if let Some(loc) = &i.details.location {
            line.push_str(&format!(" @ {loc}"));
        }
        if i.status == crate::domain::EventStatus::Tentative {
            line.push_str(" (tentative)");
        }
        if i.transparency == crate::domain::Transparency::Transparent {
            line.push_str(" (free)");
        }
        say!("{line}");
    }
    Ok(())
}
