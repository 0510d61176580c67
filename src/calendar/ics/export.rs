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

/// One iTIP message (RFC 5546): a calendar object with `METHOD` (`REQUEST`,
/// `CANCEL`, `PUBLISH`…) around `components_raw`, which a calendar app
/// applies to the event or task with the same UID.
pub fn itip_calendar(method: &str, components_raw: &[String]) -> String {
    let mut out = format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:{PRODID}\r\nCALSCALE:GREGORIAN\r\nMETHOD:{method}\r\n"
    );
    for raw in components_raw {
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

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone};
    use proptest::prelude::*;

    use super::*;
    use crate::calendar::ics::{ParsedCalendar, parse_calendar};
    use crate::domain::{IcalDuration, RecurrenceId, TaskStatus};

    fn parsed(text: &str) -> ParsedCalendar {
        match parse_calendar(text.as_bytes()) {
            Ok(c) => c,
            Err(e) => panic!("unexpected error: {e}\n{text}"),
        }
    }

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> chrono::NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .and_then(|d| d.and_hms_opt(h, mi, 0))
            .unwrap_or_default()
    }

    fn berlin(t: chrono::NaiveDateTime) -> IcalTime {
        IcalTime::Zoned {
            local: t,
            tz: chrono_tz::Europe::Berlin,
        }
    }

    fn stamp() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn base_event(uid: &str) -> EventComponent {
        EventComponent {
            uid: uid.to_owned(),
            recurrence_id: None,
            start: berlin(at(2026, 1, 5, 10, 0)),
            end: EventEnd::End(berlin(at(2026, 1, 5, 11, 0))),
            rrules: Vec::new(),
            rdates: Vec::new(),
            exdates: Vec::new(),
            status: EventStatus::Confirmed,
            transparency: Transparency::Opaque,
            class: Classification::Public,
            sequence: 0,
            summary: None,
            location: None,
        }
    }

    fn sample_events() -> Vec<EventComponent> {
        let mut series = base_event("series@attache");
        series.rrules = vec!["FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20260301T000000Z".into()];
        series.exdates = vec![
            berlin(at(2026, 1, 7, 10, 0)),
            berlin(at(2026, 1, 12, 10, 0)),
        ];
        series.rdates = vec![
            RDate {
                start: berlin(at(2026, 1, 10, 9, 0)),
                end: None,
            },
            RDate {
                start: berlin(at(2026, 1, 11, 9, 0)),
                end: Some(berlin(at(2026, 1, 11, 12, 30))),
            },
            RDate {
                start: IcalTime::Utc(
                    Utc.with_ymd_and_hms(2026, 2, 1, 8, 0, 0)
                        .single()
                        .unwrap_or_default(),
                ),
                end: Some(IcalTime::Utc(
                    Utc.with_ymd_and_hms(2026, 2, 1, 9, 0, 0)
                        .single()
                        .unwrap_or_default(),
                )),
            },
            RDate {
                start: IcalTime::Date(at(2026, 2, 2, 0, 0).date()),
                end: None,
            },
        ];
        series.summary =
            Some("Weekly sync, with Bob; \"quoted\" \\ and\nnewline — ünïcödé".repeat(3));
        series.location = Some("Room 4, Building B; floor 2".into());
        series.status = EventStatus::Tentative;
        series.transparency = Transparency::Transparent;
        series.class = Classification::Confidential;
        series.sequence = 7;

        let mut moved = base_event("series@attache");
        moved.recurrence_id = Some(RecurrenceId {
            time: berlin(at(2026, 1, 19, 10, 0)),
            this_and_future: true,
        });
        moved.start = berlin(at(2026, 1, 19, 14, 0));
        moved.end = EventEnd::Duration(IcalDuration {
            days: 0,
            seconds: 5400,
        });

        let mut all_day = base_event("holiday@attache");
        all_day.start = IcalTime::Date(at(2026, 5, 1, 0, 0).date());
        all_day.end = EventEnd::Duration(IcalDuration {
            days: 2,
            seconds: 0,
        });
        all_day.class = Classification::Private;

        let mut floating = base_event("floating@attache");
        floating.start = IcalTime::Floating(at(2026, 3, 1, 7, 30));
        floating.end = EventEnd::Unspecified;
        floating.summary = Some(String::new());

        let mut utc = base_event("utc@attache");
        utc.start = IcalTime::Utc(
            Utc.with_ymd_and_hms(2026, 3, 2, 7, 30, 0)
                .single()
                .unwrap_or_default(),
        );
        utc.end = EventEnd::End(IcalTime::Utc(
            Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0)
                .single()
                .unwrap_or_default(),
        ));
        utc.status = EventStatus::Cancelled;

        vec![series, moved, all_day, floating, utc]
    }

    fn sample_tasks() -> Vec<Task> {
        let full = Task {
            uid: "task-1@attache".into(),
            summary: "Prepare slides, v2; final".into(),
            description: Some("Outline:\n- intro\n- numbers".into()),
            due: Some(berlin(at(2026, 1, 9, 17, 0))),
            priority: Some(1),
            status: TaskStatus::InProcess,
            percent_complete: Some(50),
            completed: None,
            delegated_to: Some("dana@example.org".into()),
            delegated_from: Some("boss@example.org".into()),
            sequence: 2,
        };
        let done = Task {
            uid: "task-2@attache".into(),
            summary: String::new(),
            description: None,
            due: Some(IcalTime::Date(at(2026, 1, 31, 0, 0).date())),
            priority: None,
            status: TaskStatus::Completed,
            percent_complete: Some(100),
            completed: Some(
                Utc.with_ymd_and_hms(2026, 1, 2, 8, 0, 0)
                    .single()
                    .unwrap_or_default(),
            ),
            delegated_to: None,
            delegated_from: None,
            sequence: 0,
        };
        vec![full, done]
    }

    #[test]
    fn events_created_by_attache_read_back_identically() {
        for event in sample_events() {
            let raw = event_to_ics(&event, stamp());
            let back = parsed(&export_calendar(&[], std::slice::from_ref(&raw), &[]));
            assert!(back.warnings.is_empty(), "{:?}", back.warnings);
            assert_eq!(back.events.len(), 1);
            assert_eq!(back.events[0].component, event, "\n{raw}");
            assert_eq!(back.events[0].raw, raw);
        }
    }

    #[test]
    fn tasks_created_in_the_store_read_back_identically() {
        for task in sample_tasks() {
            let raw = todo_to_ics(&task);
            assert_eq!(raw, todo_to_ics(&task), "deterministic");
            let back = parsed(&export_calendar(&[], &[], std::slice::from_ref(&raw)));
            assert_eq!(back.todos.len(), 1);
            assert_eq!(back.todos[0].task, task, "\n{raw}");
        }
    }

    #[test]
    fn an_exported_calendar_has_the_header_order_and_folding_rfc5545_asks_for() {
        let events: Vec<String> = sample_events()
            .iter()
            .map(|e| event_to_ics(e, stamp()))
            .collect();
        let todos: Vec<String> = sample_tasks().iter().map(todo_to_ics).collect();
        let tz = "BEGIN:VTIMEZONE\nTZID:Europe/Berlin\nEND:VTIMEZONE\n".to_owned();
        let out = export_calendar(&[tz], &events, &todos);
        assert!(out.starts_with(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//attache//attache//EN\r\nCALSCALE:GREGORIAN\r\nBEGIN:VTIMEZONE\r\n"
        ));
        assert!(out.ends_with("END:VTODO\r\nEND:VCALENDAR\r\n"));
        assert!(!out.replace("\r\n", "").contains('\n'));
        for line in out.split("\r\n") {
            assert!(line.len() <= 75, "{line:?}");
        }
        let first_todo = out.find("BEGIN:VTODO").unwrap_or_default();
        let last_event = out.rfind("BEGIN:VEVENT").unwrap_or_default();
        assert!(last_event < first_todo);
    }

    const MIXED: &str = "BEGIN:VCALENDAR\n\
VERSION:2.0\n\
PRODID:-//Microsoft Corporation//Outlook 16.0 MIMEDIR//EN\n\
METHOD:PUBLISH\n\
BEGIN:VTIMEZONE\n\
TZID:Customized Time Zone\n\
BEGIN:STANDARD\n\
DTSTART:16010101T030000\n\
TZOFFSETFROM:+0200\n\
TZOFFSETTO:+0100\n\
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10\n\
END:STANDARD\n\
BEGIN:DAYLIGHT\n\
DTSTART:16010101T020000\n\
TZOFFSETFROM:+0100\n\
TZOFFSETTO:+0200\n\
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3\n\
END:DAYLIGHT\n\
END:VTIMEZONE\n\
BEGIN:VEVENT\n\
CLASS:PUBLIC\n\
DTSTART;TZID=\"Customized Time Zone\":20260105T100000\n\
DTEND;TZID=\"Customized Time Zone\":20260105T103000\n\
RRULE:FREQ=DAILY;COUNT=10\n\
EXDATE;TZID=\"Customized Time Zone\":20260107T100000,20260108T100000\n\
SUMMARY;LANGUAGE=en-us:A very long summary that certainly needs folding because it goes on and on and on\n\
ORGANIZER;CN=\"Doe, Jane\":mailto:jane@example.org\n\
X-MICROSOFT-CDO-BUSYSTATUS:BUSY\n\
END:VEVENT\n\
BEGIN:VEVENT\n\
DTSTART;TZID=India Standard Time:20260105T100000\n\
DURATION:PT45M\n\
SUMMARY:no uid here\n\
END:VEVENT\n\
BEGIN:VTODO\n\
UID:todo-1\n\
SUMMARY:Call\\, then write\n\
DUE:20260110T120000Z\n\
PRIORITY:5\n\
END:VTODO\n\
END:VCALENDAR\n";

    #[test]
    fn parse_export_parse_gives_the_same_components_and_tasks() {
        let first = parsed(MIXED);
        assert_eq!(first.events.len(), 2);
        assert_eq!(first.todos.len(), 1);
        let exported = export_calendar(
            &first
                .timezones
                .iter()
                .map(|t| t.raw.clone())
                .collect::<Vec<_>>(),
            &first
                .events
                .iter()
                .map(|e| e.raw.clone())
                .collect::<Vec<_>>(),
            &first
                .todos
                .iter()
                .map(|t| t.raw.clone())
                .collect::<Vec<_>>(),
        );
        let second = parsed(&exported);
        let components = |c: &ParsedCalendar| {
            c.events
                .iter()
                .map(|e| e.component.clone())
                .collect::<Vec<_>>()
        };
        let tasks = |c: &ParsedCalendar| c.todos.iter().map(|t| t.task.clone()).collect::<Vec<_>>();
        assert_eq!(components(&second), components(&first));
        assert_eq!(tasks(&second), tasks(&first));
        let raws = |c: &ParsedCalendar| c.events.iter().map(|e| e.raw.clone()).collect::<Vec<_>>();
        assert_eq!(raws(&second), raws(&first));
        assert_eq!(
            first.events[0].component.start,
            berlin(at(2026, 1, 5, 10, 0)),
        );
    }

    #[test]
    fn a_large_calendar_parses_quickly() {
        let mut text = String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n");
        for i in 0..5000 {
            text.push_str(&format!(
                "BEGIN:VEVENT\r\nUID:e{i}\r\nDTSTART;TZID=W. Europe Standard Time:20260105T100000\r\nDURATION:PT1H\r\nSUMMARY:event {i}\r\nEND:VEVENT\r\n"
            ));
        }
        text.push_str("END:VCALENDAR\r\n");
        let started = std::time::Instant::now();
        let c = parsed(&text);
        assert_eq!(c.events.len(), 5000);
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }

    fn ics_fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("BEGIN:VCALENDAR".to_owned()),
            Just("END:VCALENDAR".to_owned()),
            Just("BEGIN:VEVENT".to_owned()),
            Just("END:VEVENT".to_owned()),
            Just("BEGIN:VTODO".to_owned()),
            Just("END:VTODO".to_owned()),
            Just("BEGIN:VTIMEZONE".to_owned()),
            Just("END:VTIMEZONE".to_owned()),
            Just("BEGIN:STANDARD".to_owned()),
            Just("END:STANDARD".to_owned()),
            Just("TZID:Customized Time Zone".to_owned()),
            Just("TZOFFSETTO:+0100".to_owned()),
            Just("TZOFFSETFROM:+0200".to_owned()),
            Just("DTSTART:16010101T030000".to_owned()),
            Just("RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10".to_owned()),
            Just("UID:x".to_owned()),
            Just("DTSTART;TZID=Customized Time Zone:20260105T100000".to_owned()),
            Just("DTSTART:20260105T100000Z".to_owned()),
            Just("DTEND;VALUE=DATE:20260106".to_owned()),
            Just("RDATE;VALUE=PERIOD:20260105T100000Z/PT1H".to_owned()),
            Just(" continued".to_owned()),
            "[A-Z-]{1,8}(;[A-Z]{1,5}=(\"[^\"]{0,6}\"|[a-z0-9/]{0,6})){0,2}:[ -~]{0,20}",
            "[ -~]{0,30}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_bytes_never_panic_and_finish_quickly(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let started = std::time::Instant::now();
            let _ = parse_calendar(&bytes);
            prop_assert!(started.elapsed() < std::time::Duration::from_secs(1));
        }

        #[test]
        fn arbitrary_text_never_panics_and_finishes_quickly(text in "\\PC{0,400}") {
            let started = std::time::Instant::now();
            let _ = parse_calendar(text.as_bytes());
            prop_assert!(started.elapsed() < std::time::Duration::from_secs(1));
        }

        #[test]
        fn calendar_shaped_soup_never_panics_and_errors_name_a_real_line(
            lines in proptest::collection::vec(ics_fragment(), 0..60),
            lf in any::<bool>(),
        ) {
            let text = lines.join(if lf { "\n" } else { "\r\n" });
            let started = std::time::Instant::now();
            let result = parse_calendar(text.as_bytes());
            prop_assert!(started.elapsed() < std::time::Duration::from_secs(1));
            match result {
                Ok(_) => {}
                // A fragment may itself hold a line break, so count the physical lines.
                Err(e) => prop_assert!(e.line >= 1 && e.line <= text.split(['\n', '\r']).count().max(1), "{e}"),
            }
        }

        #[test]
        fn any_event_text_round_trips_through_event_to_ics(
            uid in "[^\\p{Cc}]{1,80}",
            summary in proptest::option::of("[^\\p{Cc}]{0,200}|[a-z\\n,;\\\\]{0,40}"),
            location in proptest::option::of("[^\\p{Cc}]{0,100}"),
            sequence in 0i64..1000,
        ) {
            prop_assume!(!uid.trim().is_empty());
            let mut event = base_event(&uid);
            event.summary = summary;
            event.location = location;
            event.sequence = sequence;
            let back = parsed(&export_calendar(&[], &[event_to_ics(&event, stamp())], &[]));
            prop_assert_eq!(&back.events[0].component, &event);
        }
    }
}
