//! `attache free`: free time for a meeting of a given length.

use chrono::{Duration, Weekday};
use clap::Args;
use serde::Serialize;

use super::when::range_text;
use super::{Context, parse_instant, print_json, utc_text};
use crate::calendar::availability::{SlotOptions, WorkingHours, free_slots};
use crate::config::Settings;
use crate::domain::TimeRange;
use crate::domain::time::parse_duration;
use crate::error::CliError;

/// Show free time long enough for a meeting: inside working hours, keeping
/// the configured buffers around busy time and the minimum notice, starting
/// on the slot grid.
///
/// With --json: a JSON array of {"start": "…Z", "end": "…Z"} in UTC, sorted.
#[derive(Debug, Args)]
pub struct FreeArgs {
    /// How long the meeting is (30m, 1h, 1h30m, 90m)
    #[arg(long, value_name = "DUR")]
    duration: String,
    /// Window start, RFC 3339 [default: now]
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// Window end, RFC 3339 [default: 7 days after the start]
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct FreeJson {
    start: String,
    end: String,
}

/// Working hours as configured.
pub(crate) fn working_hours(settings: &Settings) -> Result<WorkingHours, CliError> {
    let days = [
        ("mon", Weekday::Mon),
        ("tue", Weekday::Tue),
        ("wed", Weekday::Wed),
        ("thu", Weekday::Thu),
        ("fri", Weekday::Fri),
        ("sat", Weekday::Sat),
        ("sun", Weekday::Sun),
    ];
    let mut specs = Vec::new();
    for key in settings.calendar.working_hours.keys() {
        if !days.iter().any(|(k, _)| k == key) {
            return Err(CliError::Usage(format!(
                "config: calendar.working_hours.{key} is not a weekday: use mon, tue, wed, thu, fri, sat, sun"
            )));
        }
    }
    for (key, day) in days {
        let spec = settings
            .calendar
            .working_hours
            .get(key)
            .map(String::as_str)
            .unwrap_or("");
        specs.push((day, spec));
    }
    WorkingHours::from_weekday_specs(&specs)
        .map_err(|e| CliError::Usage(format!("config: calendar.working_hours: {e}")))
}

/// Slot options for `duration`, from the configuration.
pub(crate) fn slot_options(settings: &Settings, duration: Duration) -> SlotOptions {
    let c = &settings.calendar;
    SlotOptions {
        duration,
        granularity: Settings::duration(&c.granularity),
        buffer_before: Settings::duration(&c.buffer_before),
        buffer_after: Settings::duration(&c.buffer_after),
        min_notice: Settings::duration(&c.min_notice),
        horizon: Settings::duration(&c.horizon),
    }
}

pub(crate) async fn run(ctx: &Context, args: FreeArgs) -> Result<(), CliError> {
    let duration =
        parse_duration(&args.duration).map_err(|e| CliError::Usage(format!("--duration: {e}")))?;
    if duration <= Duration::zero() {
        return Err(CliError::Usage("--duration must be longer than 0".into()));
    }
    let from = match &args.from {
        Some(t) => parse_instant("--from", t)?,
        None => ctx.now,
    };
    let to = match &args.to {
        Some(t) => parse_instant("--to", t)?,
        None => from + Duration::days(7),
    };
    let window = TimeRange::new(from, to)
        .ok_or_else(|| CliError::Usage("--to is before --from".to_string()))?;
    let opts = slot_options(&ctx.settings, duration);
    // Busy time just outside the window still matters for the buffers.
    let wide = TimeRange {
        start: window.start - opts.buffer_after,
        end: window.end + opts.buffer_before,
    };
    let busy = ctx.store.busy(wide, ctx.tz).await?;
    let hours = working_hours(&ctx.settings)?;
    let free = free_slots(&busy, window, &hours, ctx.tz, &opts, ctx.now);
    if args.json {
        let rows: Vec<FreeJson> = free
            .iter()
            .map(|r| FreeJson {
                start: utc_text(r.start),
                end: utc_text(r.end),
            })
            .collect();
        return print_json(&rows);
    }
    if free.is_empty() {
        say!("No free time for {} in that window.", args.duration);
    }
    for r in free {
        say!("{}", range_text(&r, ctx.tz));
    }
    Ok(())
}
