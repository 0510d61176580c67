//! `attache meet`: negotiate a meeting from the command line.
//!
//! The CLI has no XMPP session: it reads the request with the chat grammar
//! (so `--when` means what it means in chat), resolves the people like the
//! chat `meet` does, leaves the order in the store for the running agent and
//! follows the meeting's row until it is booked, fails or `--wait` runs out.
//! It never negotiates itself.

use std::time::{Duration as StdDuration, Instant};

use chrono::Utc;
use clap::Args;
use serde::Serialize;

use super::{Context, print_json, utc_text};
use crate::agent::meetings::MeetingOrder;
use crate::agent::orders::{meeting_order, order_json};
use crate::chat::{self, Command, MeetRequest, render};
use crate::domain::{Meeting, MeetingStatus, PartStat};
use crate::error::CliError;
use crate::store::{OrderState, StoredOrder};

/// How long an agent has to take the order before the CLI concludes none runs.
const PICKUP: StdDuration = StdDuration::from_secs(5);
/// How often the store is read while waiting.
const POLL: StdDuration = StdDuration::from_millis(200);
/// What the owner reads when no agent took the order.
const NO_AGENT: &str = "no running agent picked up the request: start `attache run`";

/// Negotiate a meeting with contacts through the running agent and book it
/// in every calendar (needs `attache run` going for this data directory).
///
/// WHO, --optional and --when use the chat grammar: names, JIDs or groups
/// of your contacts separated by commas; days and times such as tomorrow,
/// fri, tue 10:00, next week, 2026-01-13. Waits for the outcome and prints
/// the line the agent would send you by chat.
///
/// With --json: one object {"meeting": short id, "uid", "status":
/// "booked"|"failed"|"negotiating", "start", "end" (RFC 3339 UTC, null
/// until booked), "summary", "attendees": [{"name", "jid", "partstat",
/// "required"}], "reason" (only when failed)}.
///
/// Exit status: 0 booked, 1 failed or not finished within --wait (the agent
/// keeps negotiating and tells you by chat), 2 a request that cannot be read.
#[derive(Debug, Args)]
pub struct MeetArgs {
    /// Who must attend: contact names, JIDs or groups, separated by commas
    #[arg(value_name = "WHO")]
    who: String,
    /// How long the meeting lasts (30m, 1h, 1h30m) [default: 30m]
    #[arg(long = "for", value_name = "DUR")]
    duration: Option<String>,
    /// When, in chat words (tomorrow, fri, tue 10:00, next week) [default: the next 14 days]
    #[arg(long, value_name = "WHEN")]
    when: Option<String>,
    /// The meeting's title [default: Meeting]
    #[arg(long, value_name = "TITLE")]
    about: Option<String>,
    /// Who may attend without being required (names, JIDs or groups, comma-separated; repeatable)
    #[arg(long, value_name = "WHO")]
    optional: Vec<String>,
    /// How many attendees must accept [default: every required one]
    #[arg(long, value_name = "N")]
    quorum: Option<u32>,
    /// How long to wait for the outcome, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    wait: u64,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct MeetJson {
    meeting: Option<i64>,
    uid: Option<String>,
    status: &'static str,
    start: Option<String>,
    end: Option<String>,
    summary: String,
    attendees: Vec<AttendeeJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Debug, Serialize)]
struct AttendeeJson {
    name: String,
    jid: String,
    partstat: &'static str,
    required: bool,
}

/// Where the request ended up when the CLI stopped following it.
enum Finish {
    /// The agent never started it (none running, or it refused): why.
    NotStarted(String),
    /// The meeting as last read, with what the agent recorded at its end.
    Meeting(Box<Meeting>),
    /// Taken by the agent, but no meeting appeared before the wait ran out.
    Starting,
}

pub(crate) async fn run(ctx: &Context, args: MeetArgs) -> Result<(), CliError> {
    let request = read_request(&args, ctx)?;
    let contacts = ctx.store.contacts().await?;
    let order = meeting_order(&request, &contacts, ctx.now, ctx.tz)
        .map_err(|why| CliError::Usage(why.replace('\n', "; ")))?;
    let text = order_json(&order).map_err(CliError::Usage)?;
    // Pickup is judged by the wall clock, whatever --now pretends.
    let id = ctx.store.add_meeting_order(&text, Utc::now()).await?;
    let finish = follow(ctx, id, StdDuration::from_secs(args.wait)).await?;
    report(ctx, &order, finish, args.json).await
}

/// Reads WHO, --for, --when, --optional and --quorum as the chat command
/// `meet …` would, so that both take the same words; --about is taken as
/// typed (a title may hold any word).
fn read_request(args: &MeetArgs, ctx: &Context) -> Result<MeetRequest, CliError> {
    let who = names("WHO", std::slice::from_ref(&args.who))?;
    if who.is_empty() {
        return Err(CliError::Usage(
            "WHO is empty: name at least one contact, e.g. attache meet bob --for 30m".into(),
        ));
    }
    let optional = names("--optional", &args.optional)?;
    let quote = |list: &[String]| {
        list.iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut text = format!("meet {}", quote(&who));
    if let Some(d) = &args.duration {
        text.push_str(&format!(" for {}", d.trim()));
    }
    if let Some(w) = &args.when {
        text.push_str(&format!(" {}", w.trim()));
    }
    if !optional.is_empty() {
        text.push_str(&format!(" optional {}", quote(&optional)));
    }
    if let Some(q) = args.quorum {
        text.push_str(&format!(" quorum {q}"));
    }
    let mut m = match chat::parse_at(&text, ctx.now, ctx.tz) {
        Ok(Command::Meet(m)) => m,
        Ok(_) => {
            return Err(CliError::Usage(format!(
                "could not read the request as `{text}`"
            )));
        }
        Err(e) => return Err(CliError::Usage(format!("`{text}`: {e}"))),
    };
    // Words in --for or --when that the grammar read as another clause
    // (`--when "fri quorum 2"`) would change the request behind the flags.
    let as_given = m.who == who
        && m.optional == optional
        && m.quorum == args.quorum
        && m.title.is_none()
        && m.duration.is_some() == args.duration.is_some()
        && m.when.is_some() == args.when.is_some();
    if !as_given {
        return Err(CliError::Usage(format!(
            "`{text}` reads as more than the flags say: give only a duration in --for and only a day or time in --when"
        )));
    }
    m.title = args.about.clone();
    Ok(m)
}

/// The names in `values`, split at commas; a name may not hold a quote mark
/// (the grammar would read it as the end of the name).
fn names(flag: &str, values: &[String]) -> Result<Vec<String>, CliError> {
    let mut out = Vec::new();
    for name in values.iter().flat_map(|v| v.split(',')) {
        let name = name.trim();
        if name.is_empty() {
            continue;
        }
        if name.contains(['"', '\u{201C}', '\u{201D}']) {
            return Err(CliError::Usage(format!(
                "{flag}: '{name}' holds a quote mark; give names without quotes"
            )));
        }
        out.push(name.to_string());
    }
    Ok(out)
}

/// Follows order `id` until its meeting is decided or `wait` has passed;
/// rejects it (so that no agent starts it later) when no agent takes it
/// within [`PICKUP`].
async fn follow(ctx: &Context, id: i64, wait: StdDuration) -> Result<Finish, CliError> {
    let started = Instant::now();
    let deadline = started + wait.max(PICKUP);
    loop {
        let order = current(ctx, id).await?;
        match (order.state, order.meeting_uid) {
            (OrderState::Rejected, _) => {
                return Ok(Finish::NotStarted(
                    order.error.unwrap_or_else(|| "the agent refused it".into()),
                ));
            }
            (OrderState::Requested, _) if started.elapsed() >= PICKUP => {
                if ctx
                    .store
                    .reject_meeting_order(id, NO_AGENT, Utc::now())
                    .await?
                {
                    return Ok(Finish::NotStarted(NO_AGENT.into()));
                }
                // Taken at this very moment: follow it like any other.
                continue;
            }
            (OrderState::Started, Some(uid)) => {
                if let Some(m) = ctx.store.meeting(&uid).await?
                    && (m.status != MeetingStatus::Negotiating || Instant::now() >= deadline)
                {
                    return Ok(Finish::Meeting(Box::new(m)));
                }
            }
            (OrderState::Started, None) | (OrderState::Requested, _) => {
                if Instant::now() >= deadline {
                    return Ok(Finish::Starting);
                }
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn current(ctx: &Context, id: i64) -> Result<StoredOrder, CliError> {
    ctx.store.meeting_order(id).await?.ok_or_else(|| {
        CliError::NotDone(format!(
            "meeting order {id} disappeared from the store while waiting for it"
        ))
    })
}

/// Prints where the request ended; an error (exit status 1) unless booked.
async fn report(
    ctx: &Context,
    order: &MeetingOrder,
    finish: Finish,
    json: bool,
) -> Result<(), CliError> {
    let title = render::sanitize(&order.summary);
    let mut out = MeetJson {
        meeting: None,
        uid: None,
        status: "negotiating",
        start: None,
        end: None,
        summary: order.summary.clone(),
        attendees: order
            .attendees
            .iter()
            .map(|a| AttendeeJson {
                name: a.name.clone(),
                jid: a.person.clone(),
                partstat: PartStat::NeedsAction.as_ical(),
                required: a.required,
            })
            .collect(),
        reason: None,
    };
    let line = match finish {
        Finish::NotStarted(why) => {
            out.status = "failed";
            out.reason = Some(why.clone());
            Err(format!("could not start negotiating {title}: {why}"))
        }
        Finish::Starting => Err(format!(
            "the agent took the request for {title} but had not started negotiating after the wait; it will tell you by chat"
        )),
        Finish::Meeting(m) => {
            let end = ctx.store.negotiation_end(&m.uid).await?;
            out.meeting = Some(m.short_id);
            out.uid = Some(m.uid.clone());
            out.start = m.range.map(|r| utc_text(r.start));
            out.end = m.range.map(|r| utc_text(r.end));
            out.summary = m.summary.clone();
            out.attendees = ctx
                .store
                .meeting_attendees(&m.uid)
                .await?
                .into_iter()
                .map(|a| AttendeeJson {
                    name: a.name.clone().unwrap_or_else(|| a.person.clone()),
                    jid: a.person,
                    partstat: a.partstat.as_ical(),
                    required: a.required,
                })
                .collect();
            match (m.status, m.range) {
                (MeetingStatus::Booked, Some(range)) => {
                    out.status = "booked";
                    Ok(end.line.unwrap_or_else(|| {
                        format!("Booked: {title}, {}.", render::time_range(&range, ctx.tz))
                    }))
                }
                (MeetingStatus::Negotiating, _) => Err(format!(
                    "still negotiating {title} (meeting {}) when the wait ran out; the agent keeps at it and tells you by chat",
                    m.short_id
                )),
                (MeetingStatus::Cancelled, _) => {
                    out.status = "failed";
                    out.reason = Some("it was cancelled".into());
                    Err(format!("{title} (meeting {}) was cancelled", m.short_id))
                }
                (MeetingStatus::Failed | MeetingStatus::Booked, _) => {
                    out.status = "failed";
                    let why = end
                        .failure_reason
                        .unwrap_or_else(|| "the agent recorded no reason".into());
                    out.reason = Some(why.clone());
                    Err(end
                        .line
                        .unwrap_or_else(|| format!("Could not book {title}: {why}.")))
                }
            }
        }
    };
    match line {
        Ok(text) => {
            if json {
                print_json(&out)?;
            } else {
                say!("{text}");
            }
            Ok(())
        }
        Err(text) => {
            if json {
                print_json(&out)?;
            }
            Err(CliError::NotDone(text))
        }
    }
}
