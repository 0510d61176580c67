//! Components → domain: the BEGIN/END tree, then VEVENT → `EventComponent`,
//! VTODO → `Task`, VTIMEZONE → a zone definition for TZID resolution.
//!
//! Owns what each property means to attache and every error about it. Must not
//! touch bytes (that is `lines`) or write anything (that is `export`).

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDateTime, TimeZone};
use chrono_tz::Tz;

use super::lines::{ContentLine, content_lines, fold_into, quote};
use super::tz::{self, Observance, Resolution, ZoneDefinition};
use super::values::{parse_date, parse_date_time, parse_duration, parse_utc_offset};
use super::{IcsWarning, ParsedCalendar, ParsedEvent, ParsedTimezone, ParsedTodo};
use crate::domain::{
    Classification, EventComponent, EventEnd, EventStatus, IcalDuration, IcalTime, RDate,
    RecurrenceId, Task, TaskStatus, Transparency,
};
use crate::error::IcsError;

/// Components nest at most this deep (VCALENDAR › VEVENT › VALARM is 3); the
/// bound keeps hostile input from building an arbitrarily deep tree.
pub const MAX_NESTING: usize = 32;

/// Matching a VTIMEZONE against every IANA zone takes milliseconds; this many
/// distinct definitions per file is far beyond real exports and bounds the work.
pub const MAX_MATCHED_ZONES: usize = 100;

const RRULE_PARTS: &[&str] = &[
    "FREQ",
    "UNTIL",
    "COUNT",
    "INTERVAL",
    "BYSECOND",
    "BYMINUTE",
    "BYHOUR",
    "BYDAY",
    "BYMONTHDAY",
    "BYYEARDAY",
    "BYWEEKNO",
    "BYMONTH",
    "BYSETPOS",
    "WKST",
    "RSCALE",
    "SKIP",
];
const FREQUENCIES: &[&str] = &[
    "SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY",
];

/// A component: indices of its BEGIN and END lines, its own properties and children.
struct Node {
    name: String,
    begin: usize,
    end: usize,
    props: Vec<usize>,
    children: Vec<Node>,
}

pub(crate) fn parse(bytes: &[u8]) -> Result<ParsedCalendar, IcsError> {
    let (lines, last_line) = content_lines(bytes)?;
    let calendars = build_tree(&lines, last_line)?;
    let mut out = ParsedCalendar::default();
    let mut ignored_kinds: Vec<String> = Vec::new();
    let mut matched = BTreeMap::new();
    for calendar in &calendars {
        let mut reader = CalendarReader::new(&lines, calendar, &mut out.warnings, &mut matched);
        for child in &calendar.children {
            match child.name.as_str() {
                "VTIMEZONE" => {
                    if let Some(tz) = reader.timezone(child) {
                        match out.timezones.iter().find(|t| t.tzid == tz.tzid) {
                            None => out.timezones.push(tz),
                            Some(kept) if kept.raw == tz.raw => {}
                            Some(_) => reader.warn(
                                lines[child.begin].line,
                                format!("VTIMEZONE {} is defined again, differently; only the first definition is kept for export", quote(&tz.tzid)),
                            ),
                        }
                    }
                }
                "VEVENT" => {
                    if let Some(event) = reader.event(child)? {
                        out.events.push(event);
                    }
                }
                "VTODO" => out.todos.push(reader.todo(child)?),
                other => {
                    if !ignored_kinds.iter().any(|k| k == other) {
                        ignored_kinds.push(other.to_owned());
                        reader.warn(
                            lines[child.begin].line,
                            format!("{} components are ignored; attache imports VEVENT, VTODO and VTIMEZONE", truncate(other)),
                        );
                    }
                }
            }
        }
    }
    Ok(out)
}

fn build_tree(lines: &[ContentLine], last_line: usize) -> Result<Vec<Node>, IcsError> {
    let mut calendars = Vec::new();
    let mut stack: Vec<Node> = Vec::new();
    for (i, cl) in lines.iter().enumerate() {
        match cl.name.as_str() {
            "BEGIN" => {
                let name = cl.value.trim().to_ascii_uppercase();
                if name.is_empty() {
                    return Err(IcsError::new(
                        cl.line,
                        "BEGIN without a component name (expected e.g. BEGIN:VEVENT)",
                    ));
                }
                match stack.last() {
                    None if name != "VCALENDAR" => {
                        return Err(IcsError::new(
                            cl.line,
                            format!(
                                "BEGIN:{} outside a VCALENDAR; an iCalendar file starts with BEGIN:VCALENDAR",
                                truncate(&name)
                            ),
                        ));
                    }
                    Some(open) if name == "VCALENDAR" => {
                        return Err(IcsError::new(
                            cl.line,
                            format!(
                                "BEGIN:VCALENDAR inside the {} begun at line {}; end it first with END:{}",
                                truncate(&open.name),
                                lines[open.begin].line,
                                truncate(&open.name)
                            ),
                        ));
                    }
                    _ => {}
                }
                if stack.len() >= MAX_NESTING {
                    return Err(IcsError::new(
                        cl.line,
                        format!(
                            "components nest more than {MAX_NESTING} deep; this is not a calendar attache can read"
                        ),
                    ));
                }
                stack.push(Node {
                    name,
                    begin: i,
                    end: i,
                    props: Vec::new(),
                    children: Vec::new(),
                });
            }
            "END" => {
                let name = cl.value.trim().to_ascii_uppercase();
                let Some(mut node) = stack.pop() else {
                    return Err(IcsError::new(
                        cl.line,
                        format!("END:{} without a matching BEGIN", truncate(&name)),
                    ));
                };
                if node.name != name {
                    return Err(IcsError::new(
                        cl.line,
                        format!(
                            "END:{} does not close the {} begun at line {} (is an END:{} missing?)",
                            truncate(&name),
                            truncate(&node.name),
                            lines[node.begin].line,
                            truncate(&node.name)
                        ),
                    ));
                }
                node.end = i;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => calendars.push(node),
                }
            }
            _ => match stack.last_mut() {
                Some(node) => node.props.push(i),
                None => {
                    return Err(IcsError::new(
                        cl.line,
                        format!(
                            "{} is outside BEGIN:VCALENDAR…END:VCALENDAR",
                            quote(&cl.text)
                        ),
                    ));
                }
            },
        }
    }
    if let Some(open) = stack.last() {
        return Err(IcsError::new(
            last_line,
            format!(
                "{} begun at line {} is never ended (the file looks truncated)",
                truncate(&open.name),
                lines[open.begin].line
            ),
        ));
    }
    if calendars.is_empty() {
        return Err(IcsError::new(
            1,
            "no VCALENDAR in the file (expected BEGIN:VCALENDAR … END:VCALENDAR); is this an iCalendar file?",
        ));
    }
    Ok(calendars)
}

fn truncate(s: &str) -> String {
    let q = quote(s);
    q[1..q.len() - 1].to_owned()
}

/// A TZID as this calendar defines or names it, resolved once.
struct ZoneEntry {
    line: usize,
    definition: ZoneDefinition,
    resolved: Option<Option<(Tz, Resolution)>>,
}

struct CalendarReader<'a> {
    lines: &'a [ContentLine],
    has_method: bool,
    zones: BTreeMap<String, ZoneEntry>,
    by_name: BTreeMap<String, Option<Tz>>,
    warnings: &'a mut Vec<IcsWarning>,
    /// Rule matches already made in this file (shared by its VCALENDARs).
    matched: &'a mut BTreeMap<ZoneDefinition, Option<(Tz, Resolution)>>,
}

impl<'a> CalendarReader<'a> {
    fn new(
        lines: &'a [ContentLine],
        calendar: &Node,
        warnings: &'a mut Vec<IcsWarning>,
        matched: &'a mut BTreeMap<ZoneDefinition, Option<(Tz, Resolution)>>,
    ) -> Self {
        let has_method = calendar.props.iter().any(|&i| lines[i].name == "METHOD");
        let mut reader = Self {
            lines,
            has_method,
            zones: BTreeMap::new(),
            by_name: BTreeMap::new(),
            warnings,
            matched,
        };
        for child in calendar.children.iter().filter(|c| c.name == "VTIMEZONE") {
            if let Some(definition) = reader.zone_definition(child) {
                let line = lines[child.begin].line;
                reader
                    .zones
                    .entry(definition.tzid.clone())
                    .or_insert(ZoneEntry {
                        line,
                        definition,
                        resolved: None,
                    });
            }
        }
        reader
    }

    fn warn(&mut self, line: usize, message: impl Into<String>) {
        self.warnings.push(IcsWarning {
            line,
            message: message.into(),
        });
    }

    fn props<'n>(&self, node: &'n Node, name: &'n str) -> impl Iterator<Item = &'a ContentLine> + 'n
    where
        'a: 'n,
    {
        let lines = self.lines;
        node.props
            .iter()
            .map(move |&i| &lines[i])
            .filter(move |cl| cl.name == name)
    }

    /// The first occurrence of a property that may appear once; later ones are
    /// ignored with a warning.
    fn single(&mut self, node: &Node, name: &str) -> Option<&'a ContentLine> {
        let mut found = self.props(node, name);
        let first = found.next();
        let extra: Vec<usize> = found.map(|cl| cl.line).collect();
        for line in extra {
            self.warn(
                line,
                format!(
                    "a second {name} in the same {}; only the first is used",
                    node.name
                ),
            );
        }
        first
    }

    fn raw(&self, node: &Node, inserted_uid: Option<&str>) -> String {
        let mut out = String::new();
        for (k, cl) in self.lines[node.begin..=node.end].iter().enumerate() {
            fold_into(&cl.text, &mut out);
            if let (0, Some(uid)) = (k, inserted_uid) {
                fold_into(&format!("UID:{uid}"), &mut out);
            }
        }
        out
    }

    /// The UID, or a stable one made from the component's text. Returns
    /// whether it was generated (and must be written into the raw text).
    fn uid(&mut self, node: &Node) -> (String, bool) {
        if let Some(cl) = self.single(node, "UID") {
            let uid = cl.text_value();
            if !uid.trim().is_empty() {
                return (uid, false);
            }
        }
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for cl in &self.lines[node.begin..=node.end] {
            for b in cl.text.bytes().chain(std::iter::once(b'\n')) {
                hash ^= u64::from(b);
                hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        let uid = format!("attache-{hash:016x}@import");
        let line = self.lines[node.begin].line;
        self.warn(
            line,
            format!("{} has no UID; gave it {uid}, made from its text, so importing the same file again finds the same item", node.name),
        );
        (uid, true)
    }

    // ---- time zones ----------------------------------------------------

    fn zone_definition(&mut self, node: &Node) -> Option<ZoneDefinition> {
        let line = self.lines[node.begin].line;
        let Some(tzid) = self
            .single(node, "TZID")
            .map(|cl| cl.value.trim().to_owned())
        else {
            self.warn(line, "VTIMEZONE without TZID is ignored");
            return None;
        };
        let location = self
            .single(node, "X-LIC-LOCATION")
            .map(|cl| cl.text_value());
        let mut observances = Vec::new();
        for child in node
            .children
            .iter()
            .filter(|c| matches!(c.name.as_str(), "STANDARD" | "DAYLIGHT"))
        {
            match self.observance(child) {
                Some(o) => observances.push(o),
                None => {
                    let line = self.lines[child.begin].line;
                    self.warn(
                        line,
                        format!("{} of time zone {} lacks a valid DTSTART, TZOFFSETFROM or TZOFFSETTO and is ignored", child.name, quote(&tzid)),
                    );
                }
            }
        }
        Some(ZoneDefinition {
            tzid,
            location,
            observances,
        })
    }

    fn observance(&mut self, node: &Node) -> Option<Observance> {
        let start = self
            .single(node, "DTSTART")
            .and_then(|cl| parse_date_time(cl.value.trim()))?
            .0;
        let offset_from = self
            .single(node, "TZOFFSETFROM")
            .and_then(|cl| parse_utc_offset(cl.value.trim()))?;
        let offset_to = self
            .single(node, "TZOFFSETTO")
            .and_then(|cl| parse_utc_offset(cl.value.trim()))?;
        let rrule = self
            .single(node, "RRULE")
            .map(|cl| cl.value.trim().to_owned());
        let rdates = self
            .props(node, "RDATE")
            .flat_map(|cl| cl.value.split(','))
            .filter_map(|v| parse_date_time(v.trim()).map(|(t, _)| t))
            .collect();
        Some(Observance {
            start,
            offset_from,
            offset_to,
            rrule,
            rdates,
        })
    }

    fn timezone(&mut self, node: &Node) -> Option<ParsedTimezone> {
        let tzid = self
            .props(node, "TZID")
            .next()
            .map(|cl| cl.value.trim().to_owned())?;
        Some(ParsedTimezone {
            tzid,
            raw: self.raw(node, None),
        })
    }

    /// The zone a `TZID=` parameter stands for. A VTIMEZONE in the calendar is
    /// consulted only when the name itself is not a zone: Google and Apple
    /// write IANA names with VTIMEZONEs that agree with them.
    fn zone(&mut self, tzid: &str, prop: &ContentLine) -> Result<Tz, IcsError> {
        let tzid = tzid.trim();
        let by_name = match self.by_name.get(tzid) {
            Some(cached) => *cached,
            None => {
                let resolved = tz::resolve_tz_name(tzid);
                self.by_name.insert(tzid.to_owned(), resolved);
                resolved
            }
        };
        if let Some(tz) = by_name {
            return Ok(tz);
        }
        let Some(entry) = self.zones.get_mut(tzid) else {
            return Err(IcsError::new(
                prop.line,
                format!(
                    "unknown time zone {} in TZID: use an IANA name such as Europe/Berlin, or include a VTIMEZONE",
                    quote(tzid)
                ),
            ));
        };
        let first_time = entry.resolved.is_none();
        let zone_line = entry.line;
        let resolved = match entry.resolved {
            Some(resolved) => resolved,
            None => {
                let resolved = match self.matched.get(&entry.definition) {
                    Some(known) => *known,
                    None if self.matched.len() >= MAX_MATCHED_ZONES => {
                        return Err(IcsError::new(
                            prop.line,
                            format!(
                                "time zone {} is one of more than {MAX_MATCHED_ZONES} different VTIMEZONE definitions in this file; split the file or use IANA names in TZID",
                                quote(tzid)
                            ),
                        ));
                    }
                    None => {
                        let resolved = tz::resolve_definition(&entry.definition);
                        self.matched.insert(entry.definition.clone(), resolved);
                        resolved
                    }
                };
                entry.resolved = Some(resolved);
                resolved
            }
        };
        match resolved {
            Some((zone, how)) => {
                if first_time {
                    let why = match how {
                        Resolution::Location => None,
                        Resolution::Rules => {
                            Some("the IANA zone whose offsets and changes match its VTIMEZONE")
                        }
                        Resolution::Approximate => Some(
                            "the IANA zone closest to its VTIMEZONE (they differ on a few days in 2020–2029; check the times)",
                        ),
                        Resolution::FixedOffset => Some("the fixed offset its VTIMEZONE gives"),
                    };
                    if let Some(why) = why {
                        self.warn(
                            zone_line,
                            format!("time zone {} read as {}, {why}", quote(tzid), zone.name()),
                        );
                    }
                }
                Ok(zone)
            }
            None => Err(IcsError::new(
                prop.line,
                format!(
                    "time zone {} in TZID matches no IANA zone: its VTIMEZONE (line {zone_line}) has rules attache cannot match; add X-LIC-LOCATION:Area/City to it, or use an IANA name such as Europe/Berlin",
                    quote(tzid)
                ),
            )),
        }
    }

    // ---- values --------------------------------------------------------

    /// One DATE or DATE-TIME item of `prop` (which may hold a list).
    fn time(&mut self, prop: &ContentLine, item: &str) -> Result<IcalTime, IcsError> {
        let item = item.trim();
        let value_type = prop.param("VALUE").map(str::to_ascii_uppercase);
        let bad = |expected: &str| {
            IcsError::new(
                prop.line,
                format!("{} value {} is not a {expected}", prop.name, quote(item)),
            )
        };
        match value_type.as_deref() {
            Some("DATE") => {
                return parse_date(item)
                    .map(IcalTime::Date)
                    .ok_or_else(|| bad("DATE (expected YYYYMMDD)"));
            }
            None | Some("DATE-TIME") => {}
            Some("PERIOD") if prop.name == "RDATE" => {}
            Some(other) => {
                return Err(IcsError::new(
                    prop.line,
                    format!(
                        "{} has VALUE={}, but only DATE or DATE-TIME fit here",
                        prop.name,
                        truncate(other)
                    ),
                ));
            }
        }
        let Some((local, utc)) = parse_date_time(item) else {
            // Several producers omit VALUE=DATE on all-day values.
            if let Some(date) = parse_date(item) {
                return Ok(IcalTime::Date(date));
            }
            return Err(bad("DATE-TIME (expected YYYYMMDDTHHMMSS[Z])"));
        };
        if utc {
            return Ok(IcalTime::Utc(local.and_utc()));
        }
        match prop.param("TZID") {
            Some(tzid) => Ok(IcalTime::Zoned {
                local,
                tz: self.zone(tzid, prop)?,
            }),
            None => Ok(IcalTime::Floating(local)),
        }
    }

    fn single_time(&mut self, prop: &ContentLine) -> Result<IcalTime, IcsError> {
        if prop.value.contains(',') {
            return Err(IcsError::new(
                prop.line,
                format!(
                    "{} holds a list {}, but takes one value",
                    prop.name,
                    quote(&prop.value)
                ),
            ));
        }
        self.time(prop, &prop.value)
    }

    fn duration(&self, prop: &ContentLine) -> Result<IcalDuration, IcsError> {
        parse_duration(prop.value.trim()).ok_or_else(|| {
            IcsError::new(
                prop.line,
                format!(
                    "{} value {} is not a DURATION (expected e.g. PT1H30M, P1D, P1W, -PT15M)",
                    prop.name,
                    quote(&prop.value)
                ),
            )
        })
    }

    fn integer(
        &mut self,
        prop: Option<&ContentLine>,
        range: std::ops::RangeInclusive<i64>,
    ) -> Option<i64> {
        let prop = prop?;
        match prop.value.trim().parse::<i64>() {
            Ok(n) if range.contains(&n) => Some(n),
            _ => {
                self.warn(
                    prop.line,
                    format!(
                        "{} value {} is not an integer from {} to {}; ignored",
                        prop.name,
                        quote(&prop.value),
                        range.start(),
                        range.end()
                    ),
                );
                None
            }
        }
    }

    fn rdate(&mut self, prop: &ContentLine, item: &str) -> Result<RDate, IcsError> {
        let Some((start, end)) = item.split_once('/') else {
            if prop
                .param("VALUE")
                .is_some_and(|v| v.eq_ignore_ascii_case("PERIOD"))
            {
                return Err(IcsError::new(
                    prop.line,
                    format!(
                        "RDATE value {} is not a PERIOD (expected START/END or START/DURATION)",
                        quote(item)
                    ),
                ));
            }
            return Ok(RDate {
                start: self.time(prop, item)?,
                end: None,
            });
        };
        let start_time = self.time(prop, start)?;
        if start_time.is_date() {
            return Err(IcsError::new(
                prop.line,
                format!(
                    "RDATE period {} starts with a DATE; a PERIOD needs DATE-TIMEs",
                    quote(item)
                ),
            ));
        }
        let end = end.trim();
        let end_time = if end.starts_with(['P', 'p', '+', '-']) {
            let d = parse_duration(end).ok_or_else(|| {
                IcsError::new(
                    prop.line,
                    format!(
                        "RDATE period {} ends with {}, which is not a DURATION",
                        quote(item),
                        quote(end)
                    ),
                )
            })?;
            add_duration(start_time, d)
        } else {
            self.time(prop, end)?
        };
        Ok(RDate {
            start: start_time,
            end: Some(end_time),
        })
    }

    fn check_rrule(&self, prop: &ContentLine) -> Result<(), IcsError> {
        let err =
            |msg: String| IcsError::new(prop.line, format!("RRULE {} {msg}", quote(&prop.value)));
        let mut seen: Vec<String> = Vec::new();
        for part in prop.value.split(';').filter(|p| !p.trim().is_empty()) {
            let Some((key, value)) = part.split_once('=') else {
                return Err(err(format!(
                    "has the part {}, which is not KEY=VALUE",
                    quote(part)
                )));
            };
            let key = key.trim().to_ascii_uppercase();
            if !RRULE_PARTS.contains(&key.as_str()) && !key.starts_with("X-") {
                return Err(err(format!(
                    "has the unknown part {} (known: {})",
                    quote(&key),
                    RRULE_PARTS.join(", ")
                )));
            }
            if seen.contains(&key) {
                return Err(err(format!("has {key} twice")));
            }
            let value = value.trim();
            match key.as_str() {
                "FREQ" if !FREQUENCIES.contains(&value.to_ascii_uppercase().as_str()) => {
                    return Err(err(format!(
                        "has FREQ={}; expected one of {}",
                        truncate(value),
                        FREQUENCIES.join(", ")
                    )));
                }
                "COUNT" | "INTERVAL" if !value.parse::<u32>().is_ok_and(|n| n > 0) => {
                    return Err(err(format!(
                        "has {key}={}; expected a positive integer",
                        truncate(value)
                    )));
                }
                "UNTIL" if parse_date_time(value).is_none() && parse_date(value).is_none() => {
                    return Err(err(format!(
                        "has UNTIL={}; expected YYYYMMDD or YYYYMMDDTHHMMSS[Z]",
                        truncate(value)
                    )));
                }
                _ => {}
            }
            seen.push(key);
        }
        if !seen.iter().any(|k| k == "FREQ") {
            return Err(err("has no FREQ (e.g. FREQ=WEEKLY)".to_owned()));
        }
        if seen.iter().any(|k| k == "UNTIL") && seen.iter().any(|k| k == "COUNT") {
            return Err(err(
                "has both UNTIL and COUNT; RFC 5545 allows only one".to_owned()
            ));
        }
        Ok(())
    }

    // ---- components ----------------------------------------------------

    fn event(&mut self, node: &Node) -> Result<Option<ParsedEvent>, IcsError> {
        let begin_line = self.lines[node.begin].line;
        let (uid, generated) = self.uid(node);
        let Some(dtstart) = self.single(node, "DTSTART") else {
            if self.has_method {
                self.warn(begin_line, format!("VEVENT {} has no DTSTART (allowed in an iTIP message, but attache needs a start); skipped", quote(&uid)));
                return Ok(None);
            }
            return Err(IcsError::new(
                begin_line,
                format!(
                    "VEVENT {} has no DTSTART; RFC 5545 requires one outside iTIP messages: add DTSTART",
                    quote(&uid)
                ),
            ));
        };
        let start = self.single_time(dtstart)?;

        let dtend = self.single(node, "DTEND");
        let duration = self.single(node, "DURATION");
        let mut end = match (dtend, duration) {
            (Some(e), Some(d)) => {
                self.warn(
                    d.line,
                    "VEVENT has both DTEND and DURATION (RFC 5545 allows one); DURATION is ignored",
                );
                EventEnd::End(self.single_time(e)?)
            }
            (Some(e), None) => EventEnd::End(self.single_time(e)?),
            (None, Some(d)) => EventEnd::Duration(self.duration(d)?),
            (None, None) => EventEnd::Unspecified,
        };
        let ends_early = match end {
            EventEnd::End(e) => before(e, start),
            EventEnd::Duration(d) => d.days < 0 || d.seconds < 0,
            EventEnd::Unspecified => false,
        };
        if ends_early {
            let line = dtend.or(duration).map_or(begin_line, |cl| cl.line);
            self.warn(
                line,
                format!("VEVENT {} ends before it starts; read as having no end (zero length, or one day for an all-day event)", quote(&uid)),
            );
            end = EventEnd::Unspecified;
        }

        let mut rrules = Vec::new();
        for cl in self.props(node, "RRULE").collect::<Vec<_>>() {
            self.check_rrule(cl)?;
            rrules.push(cl.value.trim().to_owned());
        }
        let mut rdates = Vec::new();
        for cl in self.props(node, "RDATE").collect::<Vec<_>>() {
            for item in cl.value.split(',').filter(|s| !s.trim().is_empty()) {
                rdates.push(self.rdate(cl, item)?);
            }
        }
        let mut exdates = Vec::new();
        for cl in self.props(node, "EXDATE").collect::<Vec<_>>() {
            for item in cl.value.split(',').filter(|s| !s.trim().is_empty()) {
                exdates.push(self.time(cl, item)?);
            }
        }
        let recurrence_id = match self.single(node, "RECURRENCE-ID") {
            Some(cl) => {
                let time = self.single_time(cl)?;
                let range = cl.param("RANGE").map(str::to_ascii_uppercase);
                if range.as_deref() == Some("THISANDPRIOR") {
                    self.warn(cl.line, "RANGE=THISANDPRIOR is deprecated (RFC 5545) and read as this instance only");
                }
                Some(RecurrenceId {
                    time,
                    this_and_future: range.as_deref() == Some("THISANDFUTURE"),
                })
            }
            None => None,
        };
        let status = match self.single(node, "STATUS") {
            Some(cl) => match cl.value.trim().to_ascii_uppercase().as_str() {
                "CONFIRMED" => EventStatus::Confirmed,
                "TENTATIVE" => EventStatus::Tentative,
                "CANCELLED" => EventStatus::Cancelled,
                _ => {
                    self.warn(cl.line, format!("VEVENT STATUS {} is not CONFIRMED, TENTATIVE or CANCELLED; read as CONFIRMED", quote(&cl.value)));
                    EventStatus::Confirmed
                }
            },
            None => EventStatus::default(),
        };
        let transparency = match self.single(node, "TRANSP") {
            Some(cl) if cl.value.trim().eq_ignore_ascii_case("TRANSPARENT") => {
                Transparency::Transparent
            }
            Some(cl) if !cl.value.trim().eq_ignore_ascii_case("OPAQUE") => {
                self.warn(
                    cl.line,
                    format!(
                        "TRANSP {} is not OPAQUE or TRANSPARENT; read as OPAQUE",
                        quote(&cl.value)
                    ),
                );
                Transparency::Opaque
            }
            _ => Transparency::default(),
        };
        let class = match self.single(node, "CLASS") {
            Some(cl) => match cl.value.trim().to_ascii_uppercase().as_str() {
                "PUBLIC" => Classification::Public,
                "CONFIDENTIAL" => Classification::Confidential,
                // RFC 5545 §3.8.1.3: unknown classes are treated as PRIVATE.
                _ => Classification::Private,
            },
            None => Classification::default(),
        };
        let sequence_prop = self.single(node, "SEQUENCE");
        let sequence = self
            .integer(sequence_prop, 0..=i64::from(i32::MAX))
            .unwrap_or(0);
        let summary = self.single(node, "SUMMARY").map(ContentLine::text_value);
        let location = self.single(node, "LOCATION").map(ContentLine::text_value);

        let raw = self.raw(node, generated.then_some(uid.as_str()));
        Ok(Some(ParsedEvent {
            component: EventComponent {
                uid,
                recurrence_id,
                start,
                end,
                rrules,
                rdates,
                exdates,
                status,
                transparency,
                class,
                sequence,
                summary,
                location,
            },
            raw,
            line: begin_line,
        }))
    }

    fn todo(&mut self, node: &Node) -> Result<ParsedTodo, IcsError> {
        let begin_line = self.lines[node.begin].line;
        let (uid, generated) = self.uid(node);
        let summary = self
            .single(node, "SUMMARY")
            .map(ContentLine::text_value)
            .unwrap_or_default();
        let description = self
            .single(node, "DESCRIPTION")
            .map(ContentLine::text_value);
        let due = match self.single(node, "DUE") {
            Some(cl) => Some(self.single_time(cl)?),
            None => None,
        };
        let priority_prop = self.single(node, "PRIORITY");
        let priority = self
            .integer(priority_prop, 0..=9)
            .and_then(|p| u8::try_from(p).ok())
            .filter(|p| *p > 0);
        let status = match self.single(node, "STATUS") {
            Some(cl) => TaskStatus::from_ical(cl.value.trim()).unwrap_or_else(|| {
                self.warn(cl.line, format!("VTODO STATUS {} is not NEEDS-ACTION, IN-PROCESS, COMPLETED or CANCELLED; read as NEEDS-ACTION", quote(&cl.value)));
                TaskStatus::NeedsAction
            }),
            None => TaskStatus::default(),
        };
        let percent_prop = self.single(node, "PERCENT-COMPLETE");
        let percent_complete = self
            .integer(percent_prop, 0..=100)
            .and_then(|p| u8::try_from(p).ok());
        let completed = match self.single(node, "COMPLETED") {
            Some(cl) => match self.single_time(cl)? {
                IcalTime::Utc(u) => Some(u),
                IcalTime::Zoned { local, tz } => Some(crate::domain::time::local_to_utc(local, tz)),
                other => {
                    self.warn(cl.line, "COMPLETED should be a UTC DATE-TIME; read as UTC");
                    Some(other.naive_local().and_utc())
                }
            },
            None => None,
        };
        let (delegated_to, delegated_from) = self.delegation(node);
        let sequence_prop = self.single(node, "SEQUENCE");
        let sequence = self
            .integer(sequence_prop, 0..=i64::from(i32::MAX))
            .unwrap_or(0);
        let raw = self.raw(node, generated.then_some(uid.as_str()));
        Ok(ParsedTodo {
            task: Task {
                uid,
                summary,
                description,
                due,
                priority,
                status,
                percent_complete,
                completed,
                delegated_to,
                delegated_from,
                sequence,
            },
            raw,
            line: begin_line,
        })
    }

    /// attache's own `X-ATTACHE-DELEGATED-TO/FROM` first, then the
    /// `DELEGATED-TO`/`DELEGATED-FROM` parameters of ATTENDEE or ORGANIZER
    /// (RFC 5545 §3.2.4–5); addresses lose their `mailto:`/`xmpp:` scheme.
    fn delegation(&self, node: &Node) -> (Option<String>, Option<String>) {
        let from_param = |param: &str| {
            self.props(node, "ATTENDEE")
                .chain(self.props(node, "ORGANIZER"))
                .find_map(|cl| cl.param(param))
                .map(strip_scheme)
        };
        let own = |name: &str| {
            self.props(node, name)
                .next()
                .map(|cl| strip_scheme(&cl.text_value()))
        };
        (
            own("X-ATTACHE-DELEGATED-TO").or_else(|| from_param("DELEGATED-TO")),
            own("X-ATTACHE-DELEGATED-FROM").or_else(|| from_param("DELEGATED-FROM")),
        )
    }
}

fn strip_scheme(address: &str) -> String {
    let address = address.trim();
    for scheme in ["mailto:", "xmpp:"] {
        if address.len() >= scheme.len() && address[..scheme.len()].eq_ignore_ascii_case(scheme) {
            return address[scheme.len()..].to_owned();
        }
    }
    address.to_owned()
}

/// Whether `a` is strictly before `b`, when the two can be compared without
/// knowing the owner's zone.
fn before(a: IcalTime, b: IcalTime) -> bool {
    match (a, b) {
        (IcalTime::Date(x), IcalTime::Date(y)) => x < y,
        (IcalTime::Floating(x), IcalTime::Floating(y)) => x < y,
        (IcalTime::Utc(_) | IcalTime::Zoned { .. }, IcalTime::Utc(_) | IcalTime::Zoned { .. }) => {
            a.to_utc(Tz::UTC) < b.to_utc(Tz::UTC)
        }
        _ => false,
    }
}

/// The end of a PERIOD given as start/duration: nominal days on the wall
/// clock, then exact seconds.
fn add_duration(start: IcalTime, d: IcalDuration) -> IcalTime {
    let days = Duration::days(d.days.clamp(-1_000_000, 1_000_000));
    let seconds = Duration::seconds(d.seconds.clamp(-100_000_000_000, 100_000_000_000));
    let shift = |t: NaiveDateTime| {
        t.checked_add_signed(days)
            .and_then(|t| t.checked_add_signed(seconds))
            .unwrap_or(t)
    };
    match start {
        IcalTime::Date(date) => IcalTime::Date(date.checked_add_signed(days).unwrap_or(date)),
        IcalTime::Floating(t) => IcalTime::Floating(shift(t)),
        IcalTime::Utc(u) => IcalTime::Utc(shift(u.naive_utc()).and_utc()),
        IcalTime::Zoned { local, tz } => {
            let after_days = local.checked_add_signed(days).unwrap_or(local);
            let instant = crate::domain::time::local_to_utc(after_days, tz);
            let end = instant.checked_add_signed(seconds).unwrap_or(instant);
            IcalTime::Zoned {
                local: tz.from_utc_datetime(&end.naive_utc()).naive_local(),
                tz,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone, Utc};

    use super::*;
    use crate::calendar::ics::parse_calendar;

    fn calendar(body: &str) -> String {
        format!(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//test//EN\r\n{body}END:VCALENDAR\r\n"
        )
    }

    fn event(props: &str) -> String {
        calendar(&format!("BEGIN:VEVENT\r\n{props}END:VEVENT\r\n"))
    }

    fn parsed(text: &str) -> ParsedCalendar {
        match parse_calendar(text.as_bytes()) {
            Ok(c) => c,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }

    fn the_event(text: &str) -> EventComponent {
        let mut c = parsed(text);
        assert_eq!(c.events.len(), 1);
        c.events.remove(0).component
    }

    fn error(text: &str) -> String {
        match parse_calendar(text.as_bytes()) {
            Ok(c) => panic!("expected an error, got {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn local(s: &str) -> NaiveDateTime {
        parse_date_time(s).map(|(t, _)| t).unwrap_or_default()
    }

    fn zoned(s: &str, tz: &str) -> IcalTime {
        IcalTime::Zoned {
            local: local(s),
            tz: tz.parse().unwrap_or(Tz::UTC),
        }
    }

    fn date(y: i32, m: u32, d: u32) -> IcalTime {
        IcalTime::Date(NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default())
    }

    const GOOGLE: &str = "BEGIN:VCALENDAR\r\n\
PRODID:-//Google Inc//Google Calendar 70.9054//EN\r\n\
VERSION:2.0\r\n\
CALSCALE:GREGORIAN\r\n\
X-WR-TIMEZONE:Europe/Berlin\r\n\
BEGIN:VTIMEZONE\r\n\
TZID:Europe/Berlin\r\n\
X-LIC-LOCATION:Europe/Berlin\r\n\
BEGIN:DAYLIGHT\r\n\
TZOFFSETFROM:+0100\r\n\
TZOFFSETTO:+0200\r\n\
TZNAME:CEST\r\n\
DTSTART:19700329T020000\r\n\
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\n\
END:DAYLIGHT\r\n\
BEGIN:STANDARD\r\n\
TZOFFSETFROM:+0200\r\n\
TZOFFSETTO:+0100\r\n\
TZNAME:CET\r\n\
DTSTART:19701025T030000\r\n\
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\n\
END:STANDARD\r\n\
END:VTIMEZONE\r\n\
BEGIN:VEVENT\r\n\
DTSTART;TZID=Europe/Berlin:20260105T100000\r\n\
DTEND;TZID=Europe/Berlin:20260105T110000\r\n\
RRULE:FREQ=WEEKLY;BYDAY=MO,WE\r\n\
EXDATE;TZID=Europe/Berlin:20260107T100000,20260112T100000\r\n\
EXDATE;TZID=Europe/Berlin:20260114T100000\r\n\
DTSTAMP:20251201T120000Z\r\n\
UID:weekly-sync@google.com\r\n\
CLASS:PRIVATE\r\n\
SEQUENCE:3\r\n\
STATUS:TENTATIVE\r\n\
SUMMARY:Sync\\, weekly\\; with Bob\\nand Carol\r\n\
LOCATION:Room 1\\\\2\r\n\
TRANSP:TRANSPARENT\r\n\
X-GOOGLE-CONFERENCE:https://meet.google.com/abc\r\n\
BEGIN:VALARM\r\n\
ACTION:DISPLAY\r\n\
DESCRIPTION:This is an event reminder\r\n\
TRIGGER:-P0DT0H10M0S\r\n\
END:VALARM\r\n\
END:VEVENT\r\n\
BEGIN:VEVENT\r\n\
DTSTART;TZID=Europe/Berlin:20260119T140000\r\n\
DTEND;TZID=Europe/Berlin:20260119T150000\r\n\
UID:weekly-sync@google.com\r\n\
RECURRENCE-ID;RANGE=THISANDFUTURE;TZID=Europe/Berlin:20260119T100000\r\n\
SUMMARY:Sync (moved)\r\n\
END:VEVENT\r\n\
END:VCALENDAR\r\n";

    #[test]
    fn a_google_export_reads_every_property_attache_uses() {
        let c = parsed(GOOGLE);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(c.timezones.len(), 1);
        assert_eq!(c.timezones[0].tzid, "Europe/Berlin");
        assert_eq!(c.events.len(), 2);
        let e = &c.events[0].component;
        assert_eq!(e.uid, "weekly-sync@google.com");
        assert_eq!(e.start, zoned("20260105T100000", "Europe/Berlin"));
        assert_eq!(
            e.end,
            EventEnd::End(zoned("20260105T110000", "Europe/Berlin"))
        );
        assert_eq!(e.rrules, vec!["FREQ=WEEKLY;BYDAY=MO,WE".to_owned()]);
        assert_eq!(
            e.exdates,
            vec![
                zoned("20260107T100000", "Europe/Berlin"),
                zoned("20260112T100000", "Europe/Berlin"),
                zoned("20260114T100000", "Europe/Berlin"),
            ]
        );
        assert_eq!(e.status, EventStatus::Tentative);
        assert_eq!(e.transparency, Transparency::Transparent);
        assert_eq!(e.class, Classification::Private);
        assert_eq!(e.sequence, 3);
        assert_eq!(
            e.summary.as_deref(),
            Some("Sync, weekly; with Bob\nand Carol")
        );
        assert_eq!(e.location.as_deref(), Some("Room 1\\2"));
        assert_eq!(c.events[0].line, 24);
        assert!(
            c.events[0]
                .raw
                .starts_with("BEGIN:VEVENT\r\nDTSTART;TZID=Europe/Berlin:")
        );
        assert!(c.events[0].raw.contains("BEGIN:VALARM\r\n"));
        assert!(c.events[0].raw.contains("X-GOOGLE-CONFERENCE:"));
        assert!(c.events[0].raw.ends_with("END:VALARM\r\nEND:VEVENT\r\n"));
    }

    #[test]
    fn an_override_with_range_thisandfuture_is_marked() {
        let c = parsed(GOOGLE);
        let o = &c.events[1].component;
        assert_eq!(
            o.recurrence_id,
            Some(RecurrenceId {
                time: zoned("20260119T100000", "Europe/Berlin"),
                this_and_future: true,
            })
        );
        let plain = the_event(&event(
            "UID:x\r\nDTSTART:20260119T100000Z\r\nRECURRENCE-ID:20260119T090000Z\r\n",
        ));
        assert_eq!(plain.recurrence_id.map(|r| r.this_and_future), Some(false));
    }

    #[test]
    fn rdate_reads_dates_date_times_and_periods_across_lists_and_lines() {
        let e = the_event(&event(
            "UID:r\r\nDTSTART:20260105T100000Z\r\nDURATION:PT1H\r\n\
RDATE;VALUE=PERIOD:20260110T100000Z/20260110T120000Z,20260111T100000Z/PT30M\r\n\
RDATE;TZID=Europe/Paris;VALUE=PERIOD:20260112T100000/P1DT1H\r\n\
RDATE:20260113T100000Z,20260114T100000Z\r\n\
RDATE;VALUE=DATE:20260120\r\n",
        ));
        let utc = |s: &str| IcalTime::Utc(local(s).and_utc());
        assert_eq!(
            e.rdates,
            vec![
                RDate {
                    start: utc("20260110T100000"),
                    end: Some(utc("20260110T120000"))
                },
                RDate {
                    start: utc("20260111T100000"),
                    end: Some(utc("20260111T103000"))
                },
                RDate {
                    start: zoned("20260112T100000", "Europe/Paris"),
                    end: Some(zoned("20260113T110000", "Europe/Paris")),
                },
                RDate {
                    start: utc("20260113T100000"),
                    end: None
                },
                RDate {
                    start: utc("20260114T100000"),
                    end: None
                },
                RDate {
                    start: date(2026, 1, 20),
                    end: None
                },
            ]
        );
        assert_eq!(
            e.end,
            EventEnd::Duration(IcalDuration {
                days: 0,
                seconds: 3600
            })
        );
    }

    #[test]
    fn windows_zone_names_from_outlook_resolve_without_a_vtimezone() {
        let e = the_event(&event(
            "UID:o\r\nDTSTART;TZID=W. Europe Standard Time:20260105T100000\r\n\
DTEND;TZID=\"Eastern Standard Time\":20260105T050000\r\n",
        ));
        assert_eq!(e.start, zoned("20260105T100000", "Europe/Berlin"));
        assert_eq!(
            e.end,
            EventEnd::End(zoned("20260105T050000", "America/New_York"))
        );
    }

    #[test]
    fn a_mozilla_prefixed_tzid_resolves_to_its_iana_suffix() {
        let e = the_event(&event(
            "UID:m\r\nDTSTART;TZID=/mozilla.org/20070129_1/Europe/Berlin:20260105T100000\r\n",
        ));
        assert_eq!(e.start, zoned("20260105T100000", "Europe/Berlin"));
    }

    const EXCHANGE_CUSTOM: &str = "BEGIN:VTIMEZONE\r\n\
TZID:Customized Time Zone\r\n\
BEGIN:STANDARD\r\n\
DTSTART:16010101T030000\r\n\
TZOFFSETFROM:+0200\r\n\
TZOFFSETTO:+0100\r\n\
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10\r\n\
END:STANDARD\r\n\
BEGIN:DAYLIGHT\r\n\
DTSTART:16010101T020000\r\n\
TZOFFSETFROM:+0100\r\n\
TZOFFSETTO:+0200\r\n\
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3\r\n\
END:DAYLIGHT\r\n\
END:VTIMEZONE\r\n";

    #[test]
    fn an_exchange_customized_time_zone_is_matched_to_an_iana_zone_by_its_rules() {
        let c = parsed(&calendar(&format!(
            "{EXCHANGE_CUSTOM}BEGIN:VEVENT\r\nUID:x\r\nDTSTART;TZID=\"Customized Time Zone\":20260105T100000\r\nEND:VEVENT\r\n"
        )));
        assert_eq!(
            c.events[0].component.start,
            zoned("20260105T100000", "Europe/Berlin")
        );
        assert_eq!(c.timezones[0].tzid, "Customized Time Zone");
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert_eq!(c.warnings[0].line, 4);
        assert!(
            c.warnings[0].message.contains("read as Europe/Berlin"),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn a_vtimezone_no_iana_zone_matches_is_an_error_naming_the_tzid_line() {
        let text = calendar(
            "BEGIN:VTIMEZONE\r\nTZID:Odd\r\n\
BEGIN:STANDARD\r\nDTSTART:19701025T030000\r\nTZOFFSETFROM:+0217\r\nTZOFFSETTO:+0117\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\n\
BEGIN:DAYLIGHT\r\nDTSTART:19700329T020000\r\nTZOFFSETFROM:+0117\r\nTZOFFSETTO:+0217\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\n\
END:VTIMEZONE\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART;TZID=Odd:20260105T100000\r\nEND:VEVENT\r\n",
        );
        let e = error(&text);
        assert!(
            e.starts_with(
                "line 21: time zone 'Odd' in TZID matches no IANA zone: its VTIMEZONE (line 4)"
            ),
            "{e}"
        );
    }

    #[test]
    fn a_display_name_tzid_with_x_lic_location_uses_the_location() {
        let e = the_event(&calendar(
            "BEGIN:VTIMEZONE\r\nTZID:My Office Zone\r\nX-LIC-LOCATION:Europe/Vienna\r\nEND:VTIMEZONE\r\n\
BEGIN:VEVENT\r\nUID:x\r\nDTSTART;TZID=My Office Zone:20260105T100000\r\nEND:VEVENT\r\n",
        ))
        .start;
        assert_eq!(e, zoned("20260105T100000", "Europe/Vienna"));
    }

    #[test]
    fn an_unknown_tzid_without_vtimezone_is_an_error_naming_its_line() {
        let text = event("UID:x\r\nDTSTART;TZID=Mars/Olympus:20260105T100000\r\n");
        assert_eq!(
            error(&text),
            "line 6: unknown time zone 'Mars/Olympus' in TZID: use an IANA name such as Europe/Berlin, or include a VTIMEZONE"
        );
    }

    #[test]
    fn a_bad_date_is_an_error_naming_its_line_and_the_expected_form() {
        let text = event("UID:x\r\nSUMMARY:a\r\nDTSTART:2026-13-45\r\n");
        assert_eq!(
            error(&text),
            "line 7: DTSTART value '2026-13-45' is not a DATE-TIME (expected YYYYMMDDTHHMMSS[Z])"
        );
        let text = event("UID:x\r\nDTSTART;VALUE=DATE:20261345\r\n");
        assert!(
            error(&text)
                .starts_with("line 6: DTSTART value '20261345' is not a DATE (expected YYYYMMDD)")
        );
        let text =
            event("UID:x\r\nDTSTART:20260105T100000Z\r\nEXDATE:20260106T100000Z,garbage\r\n");
        assert!(
            error(&text).starts_with("line 7: EXDATE value 'garbage'"),
            "{}",
            error(&text)
        );
    }

    #[test]
    fn a_truncated_file_names_the_open_component_and_where_it_began() {
        let text = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART:20260105T100000Z\r\n";
        assert_eq!(
            error(text),
            "line 5: VEVENT begun at line 3 is never ended (the file looks truncated)"
        );
    }

    #[test]
    fn structural_errors_name_their_line() {
        assert!(error("").starts_with("line 1: no VCALENDAR in the file"));
        assert!(error("hello world\r\n").starts_with("line 1: no ':' in 'hello world'"));
        assert!(
            error("BEGIN:VEVENT\r\nEND:VEVENT\r\n")
                .starts_with("line 1: BEGIN:VEVENT outside a VCALENDAR")
        );
        assert!(
            error("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nEND:VTODO\r\nEND:VCALENDAR\r\n")
                .starts_with("line 3: END:VTODO does not close the VEVENT begun at line 2")
        );
        assert!(
            error("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\nX:1\r\n")
                .starts_with("line 3: 'X:1' is outside")
        );
        assert!(
            error(&calendar("BEGIN:VEVENT\r\nUID:x\r\nDTSTART:20260105T100000Z\r\nRRULE:BYDAY=MO\r\nEND:VEVENT\r\n"))
                .starts_with("line 7: RRULE 'BYDAY=MO' has no FREQ")
        );
        assert!(
            error(&calendar("BEGIN:VEVENT\r\nUID:x\r\nDTSTART:20260105T100000Z\r\nRRULE:FREQ=DAILY;BYDAYS=MO\r\nEND:VEVENT\r\n"))
                .contains("has the unknown part 'BYDAYS'")
        );
        let mut deep = String::from("BEGIN:VCALENDAR\r\n");
        for _ in 0..100 {
            deep.push_str("BEGIN:X\r\n");
        }
        assert!(error(&deep).contains("nest more than"));
    }

    #[test]
    fn a_missing_dtstart_is_an_error_except_in_an_itip_message() {
        assert!(
            error(&event("UID:x\r\nSUMMARY:no start\r\n"))
                .starts_with("line 4: VEVENT 'x' has no DTSTART")
        );
        let c = parsed(&calendar(
            "METHOD:CANCEL\r\nBEGIN:VEVENT\r\nUID:x\r\nSEQUENCE:2\r\nEND:VEVENT\r\n",
        ));
        assert!(c.events.is_empty());
        assert_eq!(c.warnings.len(), 1);
    }

    #[test]
    fn an_empty_calendar_imports_nothing_and_several_calendars_merge() {
        assert_eq!(parsed(&calendar("")), ParsedCalendar::default());
        let two = format!(
            "{}{}",
            event("UID:a\r\nDTSTART:20260105T100000Z\r\n"),
            event("UID:b\r\nDTSTART:20260106T100000Z\r\n")
        );
        let c = parsed(&two);
        assert_eq!(
            c.events
                .iter()
                .map(|e| e.component.uid.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(c.events[1].line, 12);
    }

    #[test]
    fn a_bom_and_bare_lf_line_ends_are_accepted() {
        let text = format!(
            "\u{FEFF}{}",
            event("UID:a\r\nDTSTART;VALUE=DATE:20260105\r\n").replace("\r\n", "\n")
        );
        let c = parsed(&text);
        assert_eq!(c.events[0].component.start, date(2026, 1, 5));
        assert!(c.events[0].raw.contains("\r\n"));
    }

    #[test]
    fn an_error_in_a_folded_line_names_the_first_physical_line() {
        let text = event("UID:x\r\nDTSTART;TZID=Europe/Berlin:2026\r\n 0105T25\r\n 0000\r\n");
        assert!(
            error(&text).starts_with("line 6: DTSTART value '20260105T250000'"),
            "{}",
            error(&text)
        );
    }

    #[test]
    fn a_missing_uid_is_replaced_by_a_stable_one_written_into_the_raw_text() {
        let text = event("DTSTART:20260105T100000Z\r\nSUMMARY:no uid\r\n");
        let first = parsed(&text);
        let again = parsed(&text);
        let uid = &first.events[0].component.uid;
        assert!(uid.starts_with("attache-"), "{uid}");
        assert_eq!(uid, &again.events[0].component.uid);
        assert_eq!(first.warnings.len(), 1);
        assert!(
            first.events[0]
                .raw
                .starts_with(&format!("BEGIN:VEVENT\r\nUID:{uid}\r\n"))
        );
        let other = parsed(&event("DTSTART:20260105T100000Z\r\nSUMMARY:other\r\n"));
        assert_ne!(uid, &other.events[0].component.uid);
    }

    #[test]
    fn an_end_before_the_start_is_read_as_no_end_with_a_warning() {
        let c = parsed(&event(
            "UID:x\r\nDTSTART:20260105T100000Z\r\nDTEND:20260105T090000Z\r\n",
        ));
        assert_eq!(c.events[0].component.end, EventEnd::Unspecified);
        assert_eq!(c.warnings.len(), 1);
        assert_eq!(c.warnings[0].line, 7);
        let c = parsed(&event(
            "UID:x\r\nDTSTART:20260105T100000Z\r\nDURATION:-PT1H\r\n",
        ));
        assert_eq!(c.events[0].component.end, EventEnd::Unspecified);
    }

    #[test]
    fn unknown_classes_are_private_and_unknown_components_are_ignored() {
        let c = parsed(&calendar(
            "BEGIN:VJOURNAL\r\nUID:j\r\nEND:VJOURNAL\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART:20260105T100000Z\r\nCLASS:X-SECRET\r\nBEGIN:X-THING\r\nA:b\r\nEND:X-THING\r\nEND:VEVENT\r\n",
        ));
        assert_eq!(c.events[0].component.class, Classification::Private);
        assert!(
            c.events[0]
                .raw
                .contains("BEGIN:X-THING\r\nA:b\r\nEND:X-THING\r\n")
        );
        assert_eq!(c.warnings.len(), 1);
    }

    #[test]
    fn a_vtodo_becomes_a_task_with_delegation_from_attendee_parameters() {
        let c = parsed(&calendar(
            "BEGIN:VTODO\r\nUID:t1\r\nSUMMARY:File\\, taxes\r\nDESCRIPTION:line one\\nline two\r\n\
DUE;VALUE=DATE:20260131\r\nPRIORITY:2\r\nSTATUS:IN-PROCESS\r\nPERCENT-COMPLETE:40\r\n\
ATTENDEE;DELEGATED-FROM=\"mailto:boss@example.org\":mailto:me@example.org\r\n\
ATTENDEE;DELEGATED-TO=\"xmpp:dana@example.org\":xmpp:me@example.org\r\nSEQUENCE:4\r\nEND:VTODO\r\n\
BEGIN:VTODO\r\nUID:t2\r\nPRIORITY:0\r\nSTATUS:COMPLETED\r\nCOMPLETED:20260102T080000Z\r\nEND:VTODO\r\n",
        ));
        let t = &c.todos[0].task;
        assert_eq!(t.uid, "t1");
        assert_eq!(t.summary, "File, taxes");
        assert_eq!(t.description.as_deref(), Some("line one\nline two"));
        assert_eq!(t.due, Some(date(2026, 1, 31)));
        assert_eq!(t.priority, Some(2));
        assert_eq!(t.status, TaskStatus::InProcess);
        assert_eq!(t.percent_complete, Some(40));
        assert_eq!(t.delegated_to.as_deref(), Some("dana@example.org"));
        assert_eq!(t.delegated_from.as_deref(), Some("boss@example.org"));
        assert_eq!(t.sequence, 4);
        let t = &c.todos[1].task;
        assert_eq!(t.summary, "");
        assert_eq!(t.priority, None);
        assert_eq!(t.status, TaskStatus::Completed);
        assert_eq!(
            t.completed,
            Some(Utc.with_ymd_and_hms(2026, 1, 2, 8, 0, 0).unwrap())
        );
    }
}
