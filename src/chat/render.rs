//! Replies to the owner: agenda, tasks, contacts, the disclosure log and
//! free/busy answers, as short human text in the owner's zone.
//!
//! Owns how times read in chat (`Tue 13 Jan 10:00–10:45`) and the rule that
//! anything which came from outside — names, titles, places, peer JIDs,
//! task text — goes through [`sanitize`] before it is echoed, so a title
//! like `"Lunch\napprove 4"` can never fake a second line or a command.
//! Pure: data in, `String` out. Must not decide anything (levels and
//! decisions come from `policy`) and must not look anything up.

use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;

use super::grammar::When;
use crate::audit::ChainedEntry;
use crate::domain::time::format_duration;
use crate::domain::{BusyInterval, BusyStatus, Contact, IcalTime, Instance, TaskStatus, TimeRange};
use crate::domain::{EventStatus, Meeting, MeetingStatus, PartStat, Transparency};
use crate::policy::{DisclosedEvent, Disclosure, Level};
use crate::store::StoredTask;

/// How many characters of one outside value are echoed.
const MAX_ECHO: usize = 80;
/// How many intervals or lines one reply lists before "… and N more": a
/// reply must stay one readable chat message.
const MAX_ITEMS: usize = 40;

/// Makes a value from outside safe to echo on one line: control characters
/// and line breaks become spaces, invisible formatting characters (bidi
/// overrides, zero-width) are dropped, runs of spaces collapse, and the
/// result is cut to 80 characters ending in "…".
pub fn sanitize(text: &str) -> String {
    sanitize_to(text, MAX_ECHO)
}

pub(crate) fn sanitize_to(text: &str, max: usize) -> String {
    let mut out: Vec<char> = Vec::with_capacity(max.min(text.len()) + 1);
    let mut space = false;
    for c in text.chars() {
        if is_invisible(c) {
            continue;
        }
        if c.is_control() || c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
        if out.len() > max {
            break;
        }
    }
    if out.len() > max {
        out.truncate(max.saturating_sub(1));
        while out.last() == Some(&' ') {
            out.pop();
        }
        out.push('…');
    }
    out.into_iter().collect()
}

/// Unicode format characters that change how text around them is shown.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

fn day(d: NaiveDate) -> String {
    d.format("%a %-d %b").to_string()
}

fn clock(t: NaiveTime) -> String {
    t.format("%H:%M").to_string()
}

/// `10:00–10:45`, `22:00–24:00`, or `22:00 – Wed 14 Jan 02:00` when it runs
/// into another day; the start's day is said by the caller.
fn times_from(start: DateTime<Tz>, end: DateTime<Tz>) -> String {
    let (sd, ed) = (start.date_naive(), end.date_naive());
    if start == end {
        clock(start.time())
    } else if sd == ed {
        format!("{}–{}", clock(start.time()), clock(end.time()))
    } else if end.time() == NaiveTime::MIN && sd.succ_opt() == Some(ed) {
        format!("{}–24:00", clock(start.time()))
    } else {
        format!(
            "{} – {} {}",
            clock(start.time()),
            day(ed),
            clock(end.time())
        )
    }
}

/// `Tue 13 Jan 10:00–10:45` (or `Tue 13 Jan 22:00 – Wed 14 Jan 02:00`) in `tz`.
pub fn time_range(range: &TimeRange, tz: Tz) -> String {
    let start = range.start.with_timezone(&tz);
    let end = range.end.with_timezone(&tz);
    format!("{} {}", day(start.date_naive()), times_from(start, end))
}

/// The days a range covers in `tz`: `Tue 13 Jan` or `Mon 19 Jan – Sun 25 Jan`
/// (an end at midnight belongs to the day before).
pub fn days(range: &TimeRange, tz: Tz) -> String {
    let start = range.start.with_timezone(&tz);
    let end = range.end.with_timezone(&tz);
    let first = start.date_naive();
    let mut last = end.date_naive();
    if end.time() == NaiveTime::MIN && last > first {
        last = last.pred_opt().unwrap_or(last);
    }
    if last <= first {
        day(first)
    } else {
        format!("{} – {}", day(first), day(last))
    }
}

/// A `<when>` as the owner reads it back: `Tue 13 Jan`, `Tue 13 Jan 10:00`,
/// `Mon 19 Jan – Sun 25 Jan`.
pub fn when(w: &When) -> String {
    match w.time {
        Some(t) if w.is_single_day() => format!("{} {}", day(w.first), clock(t)),
        _ if w.is_single_day() => day(w.first),
        _ => format!("{} – {}", day(w.first), day(w.last)),
    }
}

/// Intervals grouped by the day they start on:
/// `Tue 13 Jan 10:00–11:00, 14:00–15:30; Wed 14 Jan 09:00–10:00`, each
/// followed by its (already sanitized) note.
fn by_day(items: &[(TimeRange, String)], tz: Tz) -> String {
    let mut out = String::new();
    let mut current: Option<NaiveDate> = None;
    for (range, note) in items.iter().take(MAX_ITEMS) {
        let start = range.start.with_timezone(&tz);
        let end = range.end.with_timezone(&tz);
        let d = start.date_naive();
        if current == Some(d) {
            out.push_str(", ");
        } else {
            if current.is_some() {
                out.push_str("; ");
            }
            out.push_str(&day(d));
            out.push(' ');
            current = Some(d);
        }
        out.push_str(&times_from(start, end));
        out.push_str(note);
    }
    if items.len() > MAX_ITEMS {
        let _ = write!(out, "; … and {} more", items.len() - MAX_ITEMS);
    }
    out
}

fn status_note(status: BusyStatus) -> String {
    match status {
        BusyStatus::Busy => String::new(),
        BusyStatus::Tentative => " (tentative)".into(),
    }
}

fn busy_items(busy: &[BusyInterval]) -> Vec<(TimeRange, String)> {
    busy.iter()
        .map(|b| {
            (
                TimeRange {
                    start: b.start,
                    end: b.end,
                },
                status_note(b.status),
            )
        })
        .collect()
}

/// Busy time with titles where the peer shared them: each titled event as
/// itself, and what is left of the busy time (private events, rounding) as
/// plain times.
fn detail_items(busy: &[BusyInterval], events: &[DisclosedEvent]) -> Vec<(TimeRange, String)> {
    let mut items: Vec<(TimeRange, String)> = events
        .iter()
        .map(|e| {
            let mut note = String::new();
            if let Some(s) = e.summary.as_deref().map(sanitize).filter(|s| !s.is_empty()) {
                let _ = write!(note, " {s}");
            }
            if let Some(l) = e
                .location
                .as_deref()
                .map(sanitize)
                .filter(|s| !s.is_empty())
            {
                let _ = write!(note, " ({l})");
            }
            note.push_str(&status_note(e.status));
            (
                TimeRange {
                    start: e.start,
                    end: e.end,
                },
                note,
            )
        })
        .collect();
    for b in busy {
        let mut pieces = vec![TimeRange {
            start: b.start,
            end: b.end,
        }];
        for e in events {
            let cut = TimeRange {
                start: e.start,
                end: e.end,
            };
            pieces = pieces
                .into_iter()
                .flat_map(|p| {
                    if !p.overlaps(&cut) {
                        return vec![p];
                    }
                    [
                        TimeRange::new(p.start, cut.start.min(p.end)),
                        TimeRange::new(cut.end.max(p.start), p.end),
                    ]
                    .into_iter()
                    .flatten()
                    .filter(|r| !r.is_empty())
                    .collect()
                })
                .collect();
            if pieces.len() > 4 * MAX_ITEMS {
                // Hostile input cannot make this quadratic beyond what is shown.
                break;
            }
        }
        items.extend(pieces.into_iter().map(|p| (p, status_note(b.status))));
    }
    items.sort_by_key(|(r, _)| (r.start, r.end));
    items
}

fn window_note(window: Option<&TimeRange>, tz: Tz) -> String {
    match window {
        Some(w) => format!(", {}", days(w, tz)),
        None => String::new(),
    }
}

/// The answer to `free <who>`: what `name`'s agent disclosed at the level it
/// granted, in the owner's zone. The level is always named, so the owner
/// knows when the answer is less than a full free/busy view.
pub fn free_busy(name: &str, granted: Level, disclosure: &Disclosure, tz: Tz) -> String {
    let who = sanitize(name);
    let level = match disclosure {
        Disclosure::Nothing => granted,
        d => d.level(),
    };
    match disclosure {
        Disclosure::Nothing if granted == Level::None => declined(name, "not permitted"),
        Disclosure::Nothing => format!("{who}'s agent shared nothing (level {level})."),
        Disclosure::YesNo { slot: None, .. } => format!(
            "{who}'s agent shares only whether a time works; ask with a time: free {} tue 10:00 for 1h",
            who.to_lowercase()
        ),
        Disclosure::YesNo {
            slot: Some(slot),
            answer,
        } => {
            let when = time_range(slot, tz);
            match answer {
                Some(true) => format!("{who} is free {when} (level {level})."),
                Some(false) => format!("{who} is busy then: {when} (level {level})."),
                None => format!(
                    "{who}'s agent won't say about that time ({when}): it is outside what it shares (level {level})."
                ),
            }
        }
        Disclosure::Slots { window, slots, .. } => {
            let items: Vec<(TimeRange, String)> =
                slots.iter().map(|s| (*s, String::new())).collect();
            if items.is_empty() {
                format!(
                    "{who}'s agent offers no free slot of that length (level {level}{}).",
                    window_note(window.as_ref(), tz)
                )
            } else {
                format!(
                    "{who}'s agent offers: {} (level {level}: a few free slots only).",
                    by_day(&items, tz)
                )
            }
        }
        Disclosure::Busy { window, busy, .. } => {
            busy_reply(&who, level, &busy_items(busy), window, tz)
        }
        Disclosure::Details {
            window,
            busy,
            events,
            ..
        } => busy_reply(&who, level, &detail_items(busy, events), window, tz),
    }
}

fn busy_reply(
    who: &str,
    level: Level,
    items: &[(TimeRange, String)],
    window: &Option<TimeRange>,
    tz: Tz,
) -> String {
    if items.is_empty() {
        format!(
            "{who} is not busy in the hours their agent shows (level {level}{}).",
            window_note(window.as_ref(), tz)
        )
    } else {
        format!(
            "{who} is busy {} (level {level}{}).",
            by_day(items, tz),
            window_note(window.as_ref(), tz)
        )
    }
}

/// A peer's agent refused: `reason` as it gave it (e.g. "not permitted").
pub fn declined(name: &str, reason: &str) -> String {
    let reason = sanitize(reason);
    let reason = if reason.is_empty() {
        "not permitted".to_string()
    } else {
        reason
    };
    format!("{}'s agent declined: {reason}", sanitize(name))
}

/// A peer's agent refused because we asked too often; `retry_after` as
/// its agent said, if it did.
pub fn rate_limited(name: &str, retry_after: Option<chrono::Duration>) -> String {
    let when = match retry_after.filter(|d| *d > chrono::Duration::zero()) {
        // Whole minutes, rounded up: "try again in 0m" would invite a retry now.
        Some(d) => format!(
            "try again in {}",
            format_duration(chrono::Duration::minutes((d.num_seconds() + 59) / 60))
        ),
        None => "try later".into(),
    };
    format!("{}'s agent says: too many requests, {when}", sanitize(name))
}

/// A peer's agent is waiting for its owner's approval.
pub fn awaiting_owner(name: &str) -> String {
    let who = sanitize(name);
    format!("{who}'s agent is asking {who} first; you will hear back when they answer.")
}

/// The owner's own events in `range`, day by day.
pub fn agenda(instances: &[Instance], range: TimeRange, tz: Tz) -> String {
    let mut shown: Vec<&Instance> = instances
        .iter()
        .filter(|i| i.range.overlaps(&range) || range.contains(i.range.start))
        .collect();
    if shown.is_empty() {
        return format!("Nothing on your calendar {}.", days(&range, tz));
    }
    shown.sort_by_key(|i| (i.range.start, !i.all_day, i.range.end));
    let mut out = String::new();
    let mut current: Option<NaiveDate> = None;
    for i in shown.iter().take(MAX_ITEMS) {
        let start = i.range.start.max(range.start).with_timezone(&tz);
        let d = start.date_naive();
        if current != Some(d) {
            if current.is_some() {
                out.push('\n');
            }
            out.push_str(&day(d));
            current = Some(d);
        }
        out.push_str("\n  ");
        out.push_str(&agenda_time(i, tz));
        out.push(' ');
        out.push_str(&title(i.details.summary.as_deref()));
        if let Some(l) = i
            .details
            .location
            .as_deref()
            .map(sanitize)
            .filter(|l| !l.is_empty())
        {
            let _ = write!(out, " ({l})");
        }
        if i.status == EventStatus::Tentative {
            out.push_str(" [tentative]");
        }
        if i.transparency == Transparency::Transparent {
            out.push_str(" [free]");
        }
    }
    if shown.len() > MAX_ITEMS {
        let _ = write!(
            out,
            "\n… and {} more; ask for fewer days, e.g. agenda tomorrow",
            shown.len() - MAX_ITEMS
        );
    }
    out
}

fn title(summary: Option<&str>) -> String {
    match summary.map(sanitize).filter(|s| !s.is_empty()) {
        Some(s) => s,
        None => "(no title)".into(),
    }
}

fn agenda_time(i: &Instance, tz: Tz) -> String {
    let start = i.range.start.with_timezone(&tz);
    let end = i.range.end.with_timezone(&tz);
    if i.all_day {
        let spans = days(&i.range, tz);
        return if spans.contains('–') {
            format!("all day ({spans})")
        } else {
            "all day".into()
        };
    }
    times_from(start, end)
}

/// The owner's tasks: id, checkbox, text, due date, and whom it went to.
pub fn tasks(tasks: &[StoredTask], tz: Tz) -> String {
    if tasks.is_empty() {
        return "No open tasks. Add one: task add buy milk due tomorrow".into();
    }
    let mut lines: Vec<String> = tasks
        .iter()
        .take(MAX_ITEMS)
        .map(|t| task_line(t, tz))
        .collect();
    if tasks.len() > MAX_ITEMS {
        lines.push(format!("… and {} more", tasks.len() - MAX_ITEMS));
    }
    lines.join("\n")
}

fn task_line(t: &StoredTask, tz: Tz) -> String {
    let check = match t.task.status {
        TaskStatus::NeedsAction => "[ ]",
        TaskStatus::InProcess => "[~]",
        TaskStatus::Completed => "[x]",
        TaskStatus::Cancelled => "[-]",
    };
    let mut line = format!("{} {check} {}", t.id, title(Some(&t.task.summary)));
    if let Some(due) = t.task.due {
        let text = match due {
            IcalTime::Date(d) => day(d),
            other => {
                let local = other.to_utc(tz).with_timezone(&tz);
                format!("{} {}", day(local.date_naive()), clock(local.time()))
            }
        };
        let _ = write!(line, ", due {text}");
    }
    if let Some(to) = &t.task.delegated_to {
        let _ = write!(line, ", handed to {}", sanitize(to));
        if t.task.status == TaskStatus::InProcess {
            line.push_str(" (in progress)");
        }
    }
    if let Some(from) = &t.task.delegated_from {
        let _ = write!(line, ", from {}", sanitize(from));
    }
    line
}

/// The address book, one contact a line.
pub fn contacts(contacts: &[Contact]) -> String {
    if contacts.is_empty() {
        return "No contacts yet. Add one: contact add bob@example.org as Bob".into();
    }
    let mut lines: Vec<String> = contacts
        .iter()
        .take(MAX_ITEMS)
        .map(|c| {
            let mut line = format!("{} — {}", title(Some(&c.name)), sanitize(&c.jid));
            if let Some(a) = &c.agent_jid {
                let _ = write!(line, ", agent {}", sanitize(a));
            }
            if !c.groups.is_empty() {
                let groups: Vec<String> = c.groups.iter().map(|g| sanitize(g)).collect();
                let _ = write!(line, ", in {}", sanitize(&groups.join(", ")));
            }
            line
        })
        .collect();
    if contacts.len() > MAX_ITEMS {
        lines.push(format!("… and {} more", contacts.len() - MAX_ITEMS));
    }
    lines.join("\n")
}

/// How many log lines one reply shows: the newest.
const LOG_LINES: usize = 20;

/// The disclosure log, newest last, at most the 20 newest entries; `who` is
/// whom the owner asked about (`log bob`), if anyone.
pub fn log(entries: &[ChainedEntry], who: Option<&str>, tz: Tz) -> String {
    let about = who
        .map(|w| format!(" to {}", sanitize(w)))
        .unwrap_or_default();
    if entries.is_empty() {
        return format!("Nothing was disclosed{about} yet.");
    }
    let skip = entries.len().saturating_sub(LOG_LINES);
    let mut lines = Vec::with_capacity(LOG_LINES + 1);
    if skip > 0 {
        lines.push(format!(
            "The {LOG_LINES} newest of {} entries{about}:",
            entries.len()
        ));
    }
    for c in &entries[skip..] {
        let e = &c.entry;
        let at = e.at.with_timezone(&tz);
        let mut line = format!(
            "#{} {} {} {} {}: {}",
            c.seq,
            day(at.date_naive()),
            clock(at.time()),
            sanitize(&e.peer),
            sanitize(&e.action),
            e.outcome.as_str()
        );
        match &e.rule {
            Some(r) => {
                let _ = write!(line, " by rule {}", sanitize(r));
            }
            None => line.push_str(" (no rule matched)"),
        }
        if let Some(l) = &e.level {
            let _ = write!(line, ", level {}", sanitize(l));
        }
        let _ = write!(line, " — {}", sanitize_to(&e.disclosed, 2 * MAX_ECHO));
        lines.push(line);
    }
    lines.join("\n")
}

/// When a UTC instant falls, in the owner's words: `Tue 13 Jan 10:00`.
pub fn instant(t: DateTime<Utc>, tz: Tz) -> String {
    let local = t.with_timezone(&tz);
    format!("{} {}", day(local.date_naive()), clock(local.time()))
}

/// One meeting as `meetings` lists it. Names are resolved by the caller (the
/// renderer looks nothing up).
#[derive(Debug, Clone)]
pub struct MeetingListing {
    pub meeting: Meeting,
    /// The attendees as the owner calls them, with their answers.
    pub with: Vec<(String, PartStat)>,
    /// Who organizes it, when it is not the owner.
    pub organizer: Option<String>,
}

/// The owner's meetings, one a line: short id (what `cancel`, `move` and
/// `decline` take), title, local time, who, and where it stands.
pub fn meetings(items: &[MeetingListing], tz: Tz) -> String {
    if items.is_empty() {
        return "No meetings coming up. Start one: meet bob for 30m tomorrow".into();
    }
    let mut lines: Vec<String> = items
        .iter()
        .take(MAX_ITEMS)
        .map(|m| meeting_line(m, tz))
        .collect();
    if items.len() > MAX_ITEMS {
        lines.push(format!("… and {} more", items.len() - MAX_ITEMS));
    }
    lines.join("\n")
}

fn meeting_line(item: &MeetingListing, tz: Tz) -> String {
    let m = &item.meeting;
    let mut line = format!("{} {}", m.short_id, title(Some(&m.summary)));
    match (&m.range, m.status) {
        (Some(r), _) => {
            let _ = write!(line, ", {}", time_range(r, tz));
        }
        (None, MeetingStatus::Negotiating) => line.push_str(", time not agreed yet"),
        (None, _) => {}
    }
    if !item.with.is_empty() {
        let names: Vec<String> = item
            .with
            .iter()
            .take(10)
            .map(|(name, partstat)| match partstat {
                PartStat::Declined => format!("{} (declined)", sanitize(name)),
                _ => sanitize(name),
            })
            .collect();
        let more = item.with.len().saturating_sub(10);
        let _ = write!(line, " with {}", names.join(", "));
        if more > 0 {
            let _ = write!(line, " and {more} more");
        }
    }
    if let Some(o) = &item.organizer {
        let _ = write!(line, ", organized by {}", sanitize(o));
    }
    let status = match m.status {
        MeetingStatus::Negotiating => "looking for a time",
        MeetingStatus::Booked => "booked",
        MeetingStatus::Cancelled => "cancelled",
        MeetingStatus::Failed => "not booked",
    };
    let _ = write!(line, " — {status}");
    line
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;
    use crate::audit::{AuditEntry, AuditOutcome};
    use crate::domain::{Classification, InstanceDetails, Task};

    const TZ: Tz = chrono_tz::Europe::Berlin;

    /// Berlin wall-clock time in January 2026 (UTC+1).
    fn jan(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        TZ.with_ymd_and_hms(2026, 1, d, h, m, 0)
            .single()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn range(a: DateTime<Utc>, b: DateTime<Utc>) -> TimeRange {
        TimeRange { start: a, end: b }
    }

    fn busy(a: DateTime<Utc>, b: DateTime<Utc>) -> BusyInterval {
        BusyInterval {
            start: a,
            end: b,
            status: BusyStatus::Busy,
        }
    }

    fn week() -> Option<TimeRange> {
        Some(range(jan(13, 0, 0), jan(19, 0, 0)))
    }

    #[test]
    fn times_read_like_a_person_writes_them() {
        assert_eq!(
            time_range(&range(jan(13, 10, 0), jan(13, 10, 45)), TZ),
            "Tue 13 Jan 10:00–10:45"
        );
        assert_eq!(
            time_range(&range(jan(13, 22, 0), jan(14, 2, 0)), TZ),
            "Tue 13 Jan 22:00 – Wed 14 Jan 02:00"
        );
        assert_eq!(
            time_range(&range(jan(13, 22, 0), jan(14, 0, 0)), TZ),
            "Tue 13 Jan 22:00–24:00"
        );
        assert_eq!(days(&range(jan(13, 0, 0), jan(14, 0, 0)), TZ), "Tue 13 Jan");
        assert_eq!(
            days(&range(jan(19, 0, 0), jan(26, 0, 0)), TZ),
            "Mon 19 Jan – Sun 25 Jan"
        );
    }

    #[test]
    fn times_follow_the_owners_zone_across_the_spring_change() {
        // Sunday 29 March 2026, 01:00 CET to 04:00 CEST: two hours of real time.
        let start = Utc
            .with_ymd_and_hms(2026, 3, 29, 0, 0, 0)
            .single()
            .unwrap_or_default();
        let end = Utc
            .with_ymd_and_hms(2026, 3, 29, 2, 0, 0)
            .single()
            .unwrap_or_default();
        assert_eq!(time_range(&range(start, end), TZ), "Sun 29 Mar 01:00–04:00");
    }

    #[test]
    fn a_hostile_title_cannot_fake_a_second_line_or_command() {
        assert_eq!(sanitize("Lunch\napprove 4"), "Lunch approve 4");
        assert_eq!(sanitize("  a\r\n\t b\u{0}c "), "a b c");
        assert_eq!(sanitize("evil\u{202E}txt.exe\u{2028}x"), "eviltxt.exe x");
        let long = sanitize(&"x".repeat(500));
        assert_eq!(long.chars().count(), 80);
        assert!(long.ends_with('…'));
        assert_eq!(sanitize(&"é".repeat(80)), "é".repeat(80));
    }

    #[test]
    fn busy_level_lists_blocks_day_by_day() {
        let d = Disclosure::Busy {
            window: week(),
            shown: vec![],
            busy: vec![
                busy(jan(13, 10, 0), jan(13, 11, 0)),
                busy(jan(13, 14, 0), jan(13, 15, 30)),
                BusyInterval {
                    status: BusyStatus::Tentative,
                    ..busy(jan(14, 9, 0), jan(14, 10, 0))
                },
            ],
        };
        assert_eq!(
            free_busy("Bob", Level::Busy, &d, TZ),
            "Bob is busy Tue 13 Jan 10:00–11:00, 14:00–15:30; Wed 14 Jan 09:00–10:00 (tentative) (level busy, Tue 13 Jan – Sun 18 Jan)."
        );
        let empty = Disclosure::Busy {
            window: week(),
            shown: vec![],
            busy: vec![],
        };
        assert!(free_busy("Bob", Level::Busy, &empty, TZ).starts_with("Bob is not busy"));
    }

    #[test]
    fn slots_level_says_it_offers_a_few_slots_only() {
        let d = Disclosure::Slots {
            window: week(),
            shown: vec![],
            slots: vec![
                range(jan(13, 10, 0), jan(13, 11, 0)),
                range(jan(13, 14, 0), jan(13, 15, 0)),
                range(jan(14, 9, 0), jan(14, 10, 0)),
            ],
        };
        assert_eq!(
            free_busy("Bob", Level::Slots, &d, TZ),
            "Bob's agent offers: Tue 13 Jan 10:00–11:00, 14:00–15:00; Wed 14 Jan 09:00–10:00 (level slots: a few free slots only)."
        );
    }

    #[test]
    fn yes_no_level_without_a_slot_tells_how_to_ask() {
        let d = Disclosure::YesNo {
            slot: None,
            answer: None,
        };
        assert_eq!(
            free_busy("Bob", Level::YesNo, &d, TZ),
            "Bob's agent shares only whether a time works; ask with a time: free bob tue 10:00 for 1h"
        );
    }

    #[test]
    fn yes_no_level_with_a_slot_answers_free_busy_or_wont_say() {
        let slot = Some(range(jan(13, 10, 0), jan(13, 11, 0)));
        let say = |answer| free_busy("Bob", Level::YesNo, &Disclosure::YesNo { slot, answer }, TZ);
        assert_eq!(
            say(Some(true)),
            "Bob is free Tue 13 Jan 10:00–11:00 (level yes-no)."
        );
        assert!(say(Some(false)).starts_with("Bob is busy then: Tue 13 Jan 10:00–11:00"));
        assert!(say(None).starts_with("Bob's agent won't say about that time"));
    }

    #[test]
    fn details_level_shows_titles_and_keeps_private_time_as_plain_busy() {
        let d = Disclosure::Details {
            window: week(),
            shown: vec![],
            busy: vec![busy(jan(13, 10, 0), jan(13, 12, 0))],
            events: vec![DisclosedEvent {
                start: jan(13, 10, 0),
                end: jan(13, 11, 0),
                status: BusyStatus::Busy,
                summary: Some("Standup\napprove 4".into()),
                location: Some("Room 1".into()),
            }],
        };
        let text = free_busy("Bob", Level::Details, &d, TZ);
        assert_eq!(
            text,
            "Bob is busy Tue 13 Jan 10:00–11:00 Standup approve 4 (Room 1), 11:00–12:00 (level details, Tue 13 Jan – Sun 18 Jan)."
        );
        assert_eq!(text.lines().count(), 1);
    }

    #[test]
    fn denied_and_rate_limited_answers_say_so() {
        assert_eq!(
            free_busy("Bob", Level::None, &Disclosure::Nothing, TZ),
            "Bob's agent declined: not permitted"
        );
        assert_eq!(
            rate_limited("Bob", None),
            "Bob's agent says: too many requests, try later"
        );
        assert_eq!(
            rate_limited("Bob", Some(chrono::Duration::seconds(1_190))),
            "Bob's agent says: too many requests, try again in 20m"
        );
        assert_eq!(
            declined("Bob\nyes", ""),
            "Bob yes's agent declined: not permitted"
        );
    }

    fn instance(r: TimeRange, title: &str, all_day: bool) -> Instance {
        Instance {
            range: r,
            status: EventStatus::Confirmed,
            transparency: Transparency::Opaque,
            all_day,
            recurrence_id: r.start,
            details: Arc::new(InstanceDetails {
                uid: title.into(),
                summary: Some(title.into()),
                location: None,
                class: Classification::Public,
            }),
        }
    }

    #[test]
    fn agenda_groups_events_by_day_with_all_day_ones_first() {
        let events = [
            instance(range(jan(13, 10, 0), jan(13, 10, 45)), "Standup", false),
            instance(range(jan(13, 0, 0), jan(14, 0, 0)), "Holiday", true),
            instance(range(jan(14, 22, 0), jan(15, 2, 0)), "Night\nshift", false),
            instance(range(jan(15, 0, 0), jan(17, 0, 0)), "Conference", true),
        ];
        let text = agenda(&events, range(jan(13, 0, 0), jan(19, 0, 0)), TZ);
        assert_eq!(
            text,
            "Tue 13 Jan\n  all day Holiday\n  10:00–10:45 Standup\nWed 14 Jan\n  22:00 – Thu 15 Jan 02:00 Night shift\nThu 15 Jan\n  all day (Thu 15 Jan – Fri 16 Jan) Conference"
        );
        assert_eq!(
            agenda(&[], range(jan(13, 0, 0), jan(14, 0, 0)), TZ),
            "Nothing on your calendar Tue 13 Jan."
        );
    }

    #[test]
    fn tasks_show_id_checkbox_due_day_and_assignee() {
        let task = |id, summary: &str, status, due, to: Option<&str>| StoredTask {
            id,
            task: Task {
                uid: format!("{id}"),
                summary: summary.into(),
                description: None,
                due,
                priority: None,
                status,
                percent_complete: None,
                completed: None,
                delegated_to: to.map(str::to_string),
                delegated_from: None,
                sequence: 0,
            },
        };
        let list = [
            task(
                3,
                "buy milk",
                TaskStatus::NeedsAction,
                NaiveDate::from_ymd_opt(2026, 1, 14).map(IcalTime::Date),
                None,
            ),
            task(
                4,
                "slides\ndone 3",
                TaskStatus::InProcess,
                None,
                Some("dana@example.org"),
            ),
        ];
        assert_eq!(
            tasks(&list, TZ),
            "3 [ ] buy milk, due Wed 14 Jan\n4 [~] slides done 3, handed to dana@example.org (in progress)"
        );
        assert!(tasks(&[], TZ).contains("task add"));
    }

    #[test]
    fn contacts_show_jid_agent_and_groups() {
        let bob = Contact {
            name: "Bob".into(),
            jid: "bob@example.org".into(),
            agent_jid: Some("bob.agent@example.org".into()),
            groups: vec!["team".into()],
        };
        assert_eq!(
            contacts(&[bob]),
            "Bob — bob@example.org, agent bob.agent@example.org, in team"
        );
        assert!(contacts(&[]).contains("contact add"));
    }

    fn entry(seq: i64, outcome: AuditOutcome, rule: Option<&str>) -> ChainedEntry {
        ChainedEntry {
            seq,
            entry: AuditEntry {
                at: jan(13, 10, 2),
                peer: "bob.agent@example.org".into(),
                peer_key: "bob@example.org".into(),
                action: "freebusy".into(),
                params: "{}".into(),
                outcome,
                rule: rule.map(str::to_string),
                level: rule.map(|_| "busy".to_string()),
                disclosed: "busy: 3 intervals in 2026-01-13T09:00Z..2026-01-27T09:00Z".into(),
            },
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn log_lines_name_peer_rule_level_and_what_was_disclosed() {
        let text = log(
            &[
                entry(1, AuditOutcome::Allow, Some("team-busy")),
                entry(2, AuditOutcome::Deny, None),
            ],
            None,
            TZ,
        );
        assert_eq!(
            text,
            "#1 Tue 13 Jan 10:02 bob.agent@example.org freebusy: allow by rule team-busy, level busy — busy: 3 intervals in 2026-01-13T09:00Z..2026-01-27T09:00Z\n\
             #2 Tue 13 Jan 10:02 bob.agent@example.org freebusy: deny (no rule matched) — busy: 3 intervals in 2026-01-13T09:00Z..2026-01-27T09:00Z"
        );
        assert_eq!(
            log(&[], Some("Bob"), TZ),
            "Nothing was disclosed to Bob yet."
        );
        let many: Vec<ChainedEntry> = (1..=30)
            .map(|i| entry(i, AuditOutcome::Allow, Some("r")))
            .collect();
        let text = log(&many, None, TZ);
        assert!(text.starts_with("The 20 newest of 30 entries:"));
        assert_eq!(text.lines().count(), 21);
    }

    #[test]
    fn when_reads_back_as_days() {
        let d = NaiveDate::from_ymd_opt(2026, 1, 13).unwrap_or_default();
        assert_eq!(when(&When::day(d)), "Tue 13 Jan");
        assert_eq!(
            when(&When {
                first: d,
                last: d,
                time: NaiveTime::from_hms_opt(10, 0, 0)
            }),
            "Tue 13 Jan 10:00"
        );
    }

    fn any_range() -> impl Strategy<Value = TimeRange> {
        (-100_000_000i64..4_000_000_000, 0i64..10_000_000).prop_map(|(s, len)| {
            let start = DateTime::from_timestamp(s, 0).unwrap_or_default();
            TimeRange {
                start,
                end: DateTime::from_timestamp(s + len, 0).unwrap_or(start),
            }
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn sanitized_text_is_one_short_line(text in any::<String>()) {
            let s = sanitize(&text);
            prop_assert!(s.chars().count() <= 80);
            let breaks_line = |c: char| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}');
            prop_assert!(!s.chars().any(breaks_line));
        }

        #[test]
        fn rendering_never_panics(
            ranges in prop::collection::vec(any_range(), 0..60),
            title in any::<String>(),
            level in prop::sample::select(Level::ALL.to_vec()),
            answer in prop::option::of(any::<bool>()),
        ) {
            let window = ranges.first().copied();
            let busy: Vec<BusyInterval> = ranges.iter().map(|r| busy(r.start, r.end)).collect();
            let events: Vec<DisclosedEvent> = ranges.iter().map(|r| DisclosedEvent {
                start: r.start, end: r.end, status: BusyStatus::Tentative,
                summary: Some(title.clone()), location: Some(title.clone()),
            }).collect();
            let all = [
                Disclosure::Nothing,
                Disclosure::YesNo { slot: window, answer },
                Disclosure::Slots { window, shown: ranges.clone(), slots: ranges.clone() },
                Disclosure::Busy { window, shown: vec![], busy: busy.clone() },
                Disclosure::Details { window, shown: vec![], busy, events },
            ];
            for d in &all {
                let text = free_busy(&title, level, d, TZ);
                prop_assert!(!text.is_empty());
                prop_assert_eq!(text.lines().count(), 1);
            }
            let instances: Vec<Instance> = ranges.iter().enumerate()
                .map(|(i, r)| instance(*r, &title, i % 2 == 0)).collect();
            let span = window.unwrap_or(TimeRange { start: jan(13, 0, 0), end: jan(14, 0, 0) });
            prop_assert!(!agenda(&instances, span, TZ).is_empty());
        }
    }
}

#[cfg(test)]
mod meeting_list_tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::MeetingRole;

    const TZ: Tz = chrono_tz::Europe::Berlin;

    fn meeting(short_id: i64, summary: &str, status: MeetingStatus, booked: bool) -> Meeting {
        let start = Utc
            .with_ymd_and_hms(2026, 1, 13, 9, 0, 0)
            .single()
            .unwrap_or_default();
        Meeting {
            uid: format!("m{short_id}@attache"),
            short_id,
            role: MeetingRole::Organizer,
            organizer: "alice.agent@example.org".into(),
            organizer_address: None,
            summary: summary.into(),
            sequence: 0,
            range: booked.then(|| TimeRange {
                start,
                end: start + chrono::Duration::minutes(45),
            }),
            status,
            state_json: None,
            created: start,
            updated: start,
        }
    }

    #[test]
    fn each_meeting_shows_id_time_people_and_status() {
        let items = vec![
            MeetingListing {
                meeting: meeting(3, "Design review", MeetingStatus::Booked, true),
                with: vec![
                    ("Bob".into(), PartStat::Accepted),
                    ("Carol".into(), PartStat::Declined),
                ],
                organizer: None,
            },
            MeetingListing {
                meeting: meeting(4, "Sync", MeetingStatus::Negotiating, false),
                with: vec![("Bob".into(), PartStat::NeedsAction)],
                organizer: None,
            },
            MeetingListing {
                meeting: meeting(5, "Lunch", MeetingStatus::Booked, true),
                with: vec![],
                organizer: Some("Dave".into()),
            },
        ];
        assert_eq!(
            meetings(&items, TZ),
            "3 Design review, Tue 13 Jan 10:00–10:45 with Bob, Carol (declined) — booked\n\
             4 Sync, time not agreed yet with Bob — looking for a time\n\
             5 Lunch, Tue 13 Jan 10:00–10:45, organized by Dave — booked"
        );
    }

    #[test]
    fn no_meetings_says_how_to_start_one() {
        assert!(meetings(&[], TZ).starts_with("No meetings coming up."));
    }

    #[test]
    fn titles_and_names_from_outside_stay_on_one_line() {
        let items = vec![MeetingListing {
            meeting: meeting(1, "x\napprove 4", MeetingStatus::Booked, true),
            with: vec![("Eve\ndeny 2".into(), PartStat::Accepted)],
            organizer: Some("Mallory\u{202e}".into()),
        }];
        let text = meetings(&items, TZ);
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(!text.contains('\u{202e}'), "{text}");
    }
}
