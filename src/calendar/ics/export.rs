//! Writing: whole calendars from stored raw component texts, and raw VEVENT
//! and VTODO texts for items attache creates itself (through the `icalendar`
//! crate's builder).
//!
//! Owns the output format (CRLF, 75-octet folding, PRODID). Must not read
//! files or the clock: DTSTAMP comes from the caller.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use icalendar::{Component, Event, EventLike, Property, Todo};

use super::lines::normalize_folding;
use super::values::{format_duration, format_local, format_utc, time_parts};
use crate::domain::{
    Classification, EventComponent, EventEnd, EventStatus, IcalTime, RDate, Task, Transparency,
};

const PRODID: &str = "-//attache//attache//EN";

/// A complete VCALENDAR: VTIMEZONEs first (so readers know every TZID before
/// they meet it), then events, then tasks, each as stored. Lines are CRLF and
/// folded at 75 octets whatever the stored texts look like.
pub fn export_calendar(
    timezones: &[String],
    events_raw: &[String],
    todos_raw: &[String],
) -> String {
    let mut out =
        format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:{PRODID}\r\nCALSCALE:GREGORIAN\r\n");
    for raw in timezones.iter().chain(events_raw).chain(todos_raw) {
        out.push_str(&normalize_folding(raw));
    }
    out.push_str("END:VCALENDAR\r\n");
    out
}

/// The raw VEVENT for an event attache created (a booked meeting, say).
/// `parse_calendar` reads it back as the same component, to the second.
pub fn event_to_ics(component: &EventComponent, dtstamp: DateTime<Utc>) -> String {
    let c = component;
    let mut event = Event::new();
    event.uid(&one_line(&c.uid)).timestamp(dtstamp);
    event.append_property(time_property("DTSTART", &c.start));
    match c.end {
        EventEnd::Unspecified => {}
        EventEnd::End(end) => {
            event.append_property(time_property("DTEND", &end));
        }
        EventEnd::Duration(d) => {
            event.append_property(Property::new("DURATION", format_duration(d)));
        }
    }
    if let Some(rid) = c.recurrence_id {
        let mut property = time_property("RECURRENCE-ID", &rid.time);
        if rid.this_and_future {
            property.add_parameter("RANGE", "THISANDFUTURE");
        }
        event.append_property(property);
    }
    for rule in &c.rrules {
        event.append_multi_property(Property::new("RRULE", one_line(rule)));
    }
    for rdate in &c.rdates {
        event.append_multi_property(rdate_property(rdate));
    }
    for exdate in &c.exdates {
        event.append_multi_property(time_property("EXDATE", exdate));
    }
    let status = match c.status {
        EventStatus::Confirmed => "CONFIRMED",
        EventStatus::Tentative => "TENTATIVE",
        EventStatus::Cancelled => "CANCELLED",
    };
    let transp = match c.transparency {
        Transparency::Opaque => "OPAQUE",
        Transparency::Transparent => "TRANSPARENT",
    };
    let class = match c.class {
        Classification::Public => "PUBLIC",
        Classification::Private => "PRIVATE",
        Classification::Confidential => "CONFIDENTIAL",
    };
    event
        .add_property("STATUS", status)
        .add_property("TRANSP", transp)
        .add_property("CLASS", class)
        .add_property("SEQUENCE", c.sequence.to_string());
    if let Some(summary) = &c.summary {
        event.summary(&text(summary));
    }
    if let Some(location) = &c.location {
        event.location(&text(location));
    }
    finish(&event.done())
}

/// The raw VTODO for a task created in the store. DTSTAMP is the completion
/// time, else the Unix epoch, so that the same task always gives the same
/// text; use [`todo_to_ics_at`] to stamp it with the time of the change.
pub fn todo_to_ics(task: &Task) -> String {
    todo_to_ics_at(task, task.completed.unwrap_or(DateTime::UNIX_EPOCH))
}

/// [`todo_to_ics`] with an explicit DTSTAMP.
pub fn todo_to_ics_at(task: &Task, dtstamp: DateTime<Utc>) -> String {
    let mut todo = Todo::new();
    todo.uid(&one_line(&task.uid))
        .timestamp(dtstamp)
        .summary(&text(&task.summary));
    if let Some(description) = &task.description {
        todo.description(&text(description));
    }
    if let Some(due) = &task.due {
        todo.append_property(time_property("DUE", due));
    }
    if let Some(priority) = task.priority.filter(|p| *p > 0) {
        todo.add_property("PRIORITY", priority.to_string());
    }
    todo.add_property("STATUS", task.status.as_ical());
    if let Some(percent) = task.percent_complete {
        todo.add_property("PERCENT-COMPLETE", percent.to_string());
    }
    if let Some(completed) = task.completed {
        todo.add_property("COMPLETED", format_utc(completed));
    }
    // attache's own properties: RFC 5545 only has DELEGATED-TO/FROM as
    // parameters of an ATTENDEE, which would need the owner's address here.
    if let Some(to) = &task.delegated_to {
        todo.add_property("X-ATTACHE-DELEGATED-TO", text(to));
    }
    if let Some(from) = &task.delegated_from {
        todo.add_property("X-ATTACHE-DELEGATED-FROM", text(from));
    }
    todo.add_property("SEQUENCE", task.sequence.to_string());
    finish(&todo.done())
}

fn finish(component: &impl Component) -> String {
    // Writing into a String cannot fail; re-folding gives exactly the layout
    // `parse_calendar` stores, so a created item and an imported one compare equal.
    normalize_folding(&component.try_into_string().unwrap_or_default())
}

/// TEXT as RFC 5545 can carry it: line breaks become `\n` (escaped by the
/// builder), other control characters, which no reader accepts, are dropped.
fn text(s: &str) -> String {
    s.replace("\r\n", "\n")
        .chars()
        .map(|c| if c == '\r' { '\n' } else { c })
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect()
}

/// A value that is not TEXT, where a line break would end the content line.
fn one_line(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || *c == '\t')
        .collect()
}

fn time_property(name: &str, t: &IcalTime) -> Property {
    let (param, value) = time_parts(t);
    let mut property = Property::new(name, value);
    if let Some((key, val)) = param {
        property.add_parameter(key, &val);
    }
    property
}

fn rdate_property(rdate: &RDate) -> Property {
    let Some(end) = rdate.end.filter(|_| !rdate.start.is_date()) else {
        return time_property("RDATE", &rdate.start);
    };
    let (param, start_text) = time_parts(&rdate.start);
    // One TZID parameter covers both ends of the period, so the end is written
    // in the start's terms (or in UTC, which a TZID never applies to).
    let end_text = match (rdate.start, end) {
        (_, IcalTime::Utc(u)) => format_utc(u),
        (IcalTime::Zoned { tz, .. }, IcalTime::Zoned { local, tz: end_tz }) if tz == end_tz => {
            format_local(local)
        }
        (IcalTime::Zoned { tz, .. }, e @ IcalTime::Zoned { .. }) => {
            format_local(e.to_utc(Tz::UTC).with_timezone(&tz).naive_local())
        }
        (IcalTime::Utc(_), e) => format_utc(e.to_utc(Tz::UTC)),
        (_, e) => format_local(e.naive_local()),
    };
    let mut property = Property::new("RDATE", format!("{start_text}/{end_text}"));
    property.add_parameter("VALUE", "PERIOD");
    if let Some((key, val)) = param {
        property.add_parameter(key, &val);
    }
    property
}
