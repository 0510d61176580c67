//! `attache busy`: merged busy intervals in a window.

use clap::Args;
use serde::Serialize;

use super::when::range_text;
use super::{Context, parse_instant, print_json, utc_text};
use crate::domain::{BusyStatus, TimeRange};
use crate::error::CliError;

/// Show when you are busy between two instants: overlapping events merged,
/// busy winning over tentative, clipped to the window.
///
/// With --json: a JSON array of {"start": "…Z", "end": "…Z", "status":
/// "busy"|"tentative"} in UTC, sorted — a stable format for scripts.
#[derive(Debug, Args)]
pub struct BusyArgs {
    /// Window start, RFC 3339 (e.g. 2026-01-12T00:00:00Z)
    #[arg(long, value_name = "TIME")]
    from: String,
    /// Window end (exclusive), RFC 3339
    #[arg(long, value_name = "TIME")]
    to: String,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct BusyJson {
    start: String,
    end: String,
    status: BusyStatus,
}

pub(crate) async fn run(ctx: &Context, args: BusyArgs) -> Result<(), CliError> {
    let from = parse_instant("--from", &args.from)?;
    let to = parse_instant("--to", &args.to)?;
    let window = TimeRange::new(from, to).ok_or_else(|| {
        CliError::Usage(format!("--to {} is before --from {}", args.to, args.from))
    })?;
    let busy = ctx.store.busy(window, ctx.tz).await?;
    if args.json {
        let rows: Vec<BusyJson> = busy
            .iter()
            .map(|b| BusyJson {
                start: utc_text(b.start),
                end: utc_text(b.end),
                status: b.status,
            })
            .collect();
        return print_json(&rows);
    }
    if busy.is_empty() {
        say!("Free the whole time.");
    }
    for b in busy {
        let label = match b.status {
            BusyStatus::Busy => "busy",
            BusyStatus::Tentative => "tentative",
        };
        say!(
            "{}  {label}",
            range_text(
                &TimeRange {
                    start: b.start,
                    end: b.end
                },
                ctx.tz
            )
        );
    }
    Ok(())
}
