//! Meetings (§12): the organizer's negotiation record, attendees and their
//! answers, and booking — a hold turned into an event of the calendar.
//!
//! A booked meeting is an ordinary row of `events` (source
//! `attache:meetings`, the meeting's UID and SEQUENCE, STATUS:CONFIRMED,
//! ORGANIZER and ATTENDEEs in its text), so agenda, busy, free/busy answers
//! and export see it without knowing about meetings. Cancelling keeps the
//! event with STATUS:CANCELLED: exported, no longer blocking.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sqlx::SqliteConnection;

use super::events::{
    EVENT_COLUMNS, EventRow, decode_event, refresh_index, source_id, upsert_event,
};
use super::holds::{find_hold, range_taken};
use super::{CALENDAR_VERSION, HOLDS_VERSION, Store, bump_version, instant};
use crate::calendar::ics::event_to_ics;
use crate::domain::{
    Attendee, Classification, EventComponent, EventEnd, EventStatus, IcalTime, Meeting,
    MeetingStatus, PartStat, TimeRange, Transparency,
};
use crate::error::StoreError;

/// The `sources` path of events made by booking meetings.
const MEETINGS_SOURCE: &str = "attache:meetings";

/// A meeting the owner starts organizing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMeeting {
    /// The iCalendar UID, chosen by us as organizer.
    pub uid: String,
    /// Our own agent's bare JID.
    pub organizer: String,
    /// Our owner as a calendar address (ORGANIZER of the booked event).
    pub organizer_address: Option<String>,
    pub summary: String,
    pub sequence: i64,
    /// The negotiation state machine, serialized.
    pub state_json: Option<String>,
    pub attendees: Vec<Attendee>,
}

/// The answer to [`Store::book_meeting`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookOutcome {
    /// The meeting is now in the calendar at `range` (`moved`: it replaced an
    /// earlier booking with a lower SEQUENCE).
    Booked { range: TimeRange, moved: bool },
    /// Already booked with this SEQUENCE: a replayed `<confirm>`.
    AlreadyBooked { range: TimeRange },
    /// Booked (or cancelled) with a higher SEQUENCE: error `<stale-sequence/>`.
    StaleSequence { current: i64 },
    /// No hold for this meeting, organizer and SEQUENCE (never placed,
    /// released, or purged): nothing says what time to book. `<hold-expired/>`.
    NoHold,
    /// The hold lapsed and something else took part of its time. `<hold-expired/>`.
    SlotTaken,
    /// The UID already names an event that is not this organizer's meeting
    /// (an imported event, or another organizer's meeting).
    UidInUse,
}

/// The answer to [`Store::cancel_meeting`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    Cancelled,
    /// Cancelled before: a replayed `<cancel>`.
    AlreadyCancelled,
    /// Booked with a higher SEQUENCE than the cancel names.
    StaleSequence {
        current: i64,
    },
    /// No meeting of this organizer with this UID: `<unknown-meeting/>`.
    Unknown,
}

type MeetingRow = (
    String,
    i64,
    String,
    String,
    Option<String>,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    String,
    Option<String>,
    i64,
    i64,
);

const MEETING_COLUMNS: &str = "SELECT uid, short_id, role, organizer, organizer_address, summary, sequence, start_utc, end_utc, status, state_json, created_utc, updated_utc FROM meetings";

fn enum_from<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).map_err(|e| {
        StoreError::Corrupt {
            what: what.into(),
            detail: e.to_string(),
        }
    })
}

fn status_text(s: MeetingStatus) -> &'static str {
    match s {
        MeetingStatus::Negotiating => "negotiating",
        MeetingStatus::Booked => "booked",
        MeetingStatus::Cancelled => "cancelled",
        MeetingStatus::Failed => "failed",
    }
}

fn decode_meeting(row: MeetingRow) -> Result<Meeting, StoreError> {
    let (
        uid,
        short_id,
        role,
        organizer,
        organizer_address,
        summary,
        sequence,
        start,
        end,
        status,
        state_json,
        created,
        updated,
    ) = row;
    let what = format!("meeting {uid}");
    let range = match (start, end) {
        (Some(s), Some(e)) => Some(
            TimeRange::new(instant(&what, s)?, instant(&what, e)?).ok_or_else(|| {
                StoreError::Corrupt {
                    what: what.clone(),
                    detail: "ends before it starts".into(),
                }
            })?,
        ),
        _ => None,
    };
    Ok(Meeting {
        short_id,
        role: enum_from(&what, &role)?,
        organizer,
        organizer_address,
        summary,
        sequence,
        range,
        status: enum_from(&what, &status)?,
        state_json,
        created: instant(&what, created)?,
        updated: instant(&what, updated)?,
        uid,
    })
}

async fn find_meeting(
    conn: &mut SqliteConnection,
    uid: &str,
) -> Result<Option<Meeting>, StoreError> {
    let row: Option<MeetingRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{MEETING_COLUMNS} WHERE uid = ?"
    )))
    .bind(uid.to_owned())
    .fetch_optional(&mut *conn)
    .await?;
    row.map(decode_meeting).transpose()
}

async fn next_short_id(conn: &mut SqliteConnection) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT COALESCE(MAX(short_id), 0) + 1 FROM meetings")
            .fetch_one(conn)
            .await?,
    )
}

async fn insert_attendees(
    conn: &mut SqliteConnection,
    uid: &str,
    attendees: &[Attendee],
) -> Result<(), StoreError> {
    for a in attendees {
        sqlx::query(
            "INSERT INTO meeting_attendees (uid, person, agent, name, required, partstat)
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(uid, person) DO NOTHING",
        )
        .bind(uid.to_owned())
        .bind(a.person.clone())
        .bind(a.agent.clone())
        .bind(a.name.clone())
        .bind(a.required)
        .bind(a.partstat.as_ical())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// person, agent, name, required, partstat.
type AttendeeRow = (String, Option<String>, Option<String>, bool, String);

async fn load_attendees(
    conn: &mut SqliteConnection,
    uid: &str,
) -> Result<Vec<Attendee>, StoreError> {
    let rows: Vec<AttendeeRow> = sqlx::query_as(
        "SELECT person, agent, name, required, partstat FROM meeting_attendees
         WHERE uid = ? ORDER BY rowid",
    )
    .bind(uid.to_owned())
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|(person, agent, name, required, partstat)| {
            Ok(Attendee {
                partstat: PartStat::from_ical(&partstat).ok_or_else(|| StoreError::Corrupt {
                    what: format!("attendee {person} of meeting {uid}"),
                    detail: format!("unknown PARTSTAT {partstat}"),
                })?,
                person,
                agent,
                name,
                required,
            })
        })
        .collect()
}

/// The booked event of `uid` made by booking a meeting, if any.
async fn meeting_event(
    conn: &mut SqliteConnection,
    uid: &str,
) -> Result<Option<(EventComponent, bool)>, StoreError> {
    let row: Option<(String, Option<i64>)> = sqlx::query_as(
        "SELECT e.uid, s.id FROM events e LEFT JOIN sources s ON s.id = e.source_id AND s.path = ?
         WHERE e.uid = ? AND e.recurrence_key = ''",
    )
    .bind(MEETINGS_SOURCE)
    .bind(uid.to_owned())
    .fetch_optional(&mut *conn)
    .await?;
    let Some((_, ours)) = row else {
        // Overrides without a master still make the UID taken.
        let any: Option<i64> = sqlx::query_scalar("SELECT 1 FROM events WHERE uid = ? LIMIT 1")
            .bind(uid.to_owned())
            .fetch_optional(&mut *conn)
            .await?;
        return match any {
            Some(_) => Err(StoreError::Conflict(format!(
                "the UID {uid} belongs to an imported recurring event"
            ))),
            None => Ok(None),
        };
    };
    let component: EventRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE uid = ? AND recurrence_key = ''"
    )))
    .bind(uid.to_owned())
    .fetch_one(&mut *conn)
    .await?;
    Ok(Some((decode_event(component)?, ours.is_some())))
}

/// A calendar address fit for a property value: no control characters.
fn cal_address(person: &str) -> String {
    Attendee::address(person)
        .chars()
        .filter(|c| !c.is_control())
        .collect()
}

/// A parameter value: RFC 5545 §3.1 allows no DQUOTE and no control
/// characters inside a quoted value.
fn param_text(s: &str) -> String {
    s.chars().filter(|c| !c.is_control() && *c != '"').collect()
}

/// Folds one content line at 75 octets (RFC 5545 §3.1), on character boundaries.
fn fold(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + line.len() / 70 * 3 + 2);
    let mut width = 0;
    for c in line.chars() {
        let n = c.len_utf8();
        if width + n > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += n;
    }
    out.push_str("\r\n");
    out
}

/// The VEVENT text of a booked meeting: the project's writer for the
/// component, with ORGANIZER and ATTENDEE lines, which `EventComponent`
/// does not model, added before its end.
fn meeting_vevent(
    component: &EventComponent,
    organizer_address: Option<&str>,
    attendees: &[Attendee],
    dtstamp: DateTime<Utc>,
) -> String {
    let raw = event_to_ics(component, dtstamp);
    let mut extra = String::new();
    if let Some(o) = organizer_address {
        extra.push_str(&fold(&format!("ORGANIZER:{}", cal_address(o))));
    }
    for a in attendees {
        let mut line = String::from("ATTENDEE");
        if let Some(name) = a.name.as_deref().map(param_text).filter(|n| !n.is_empty()) {
            line.push_str(&format!(";CN=\"{name}\""));
        }
        line.push_str(if a.required {
            ";ROLE=REQ-PARTICIPANT"
        } else {
            ";ROLE=OPT-PARTICIPANT"
        });
        line.push_str(&format!(
            ";PARTSTAT={}:{}",
            a.partstat.as_ical(),
            cal_address(&a.person)
        ));
        extra.push_str(&fold(&line));
    }
    match raw.rfind("END:VEVENT") {
        Some(at) => format!("{}{extra}{}", &raw[..at], &raw[at..]),
        None => raw,
    }
}

/// Writes `component` as the meeting's event, re-indexes its UID, and tells
/// the running agent (calendar version).
async fn write_meeting_event(
    conn: &mut SqliteConnection,
    component: &EventComponent,
    owner_tz: Tz,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let meeting = find_meeting(conn, &component.uid).await?;
    let attendees = load_attendees(conn, &component.uid).await?;
    let raw = meeting_vevent(
        component,
        meeting
            .as_ref()
            .and_then(|m| m.organizer_address.as_deref()),
        &attendees,
        now,
    );
    let source = source_id(conn, MEETINGS_SOURCE, now).await?;
    upsert_event(conn, component, &raw, Some(source), now).await?;
    refresh_index(
        conn,
        &BTreeSet::from([component.uid.clone()]),
        owner_tz,
        now,
    )
    .await?;
    bump_version(conn, CALENDAR_VERSION).await
}

impl Store {
    /// Records a meeting the owner organizes, status `negotiating`; returns
    /// its short id. Fails if the UID is taken.
    pub async fn create_meeting(
        &self,
        meeting: &NewMeeting,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let mut tx = self.write().await?;
        if find_meeting(&mut tx, &meeting.uid).await?.is_some() {
            return Err(StoreError::Conflict(format!(
                "a meeting with UID {} exists already",
                meeting.uid
            )));
        }
        let short_id = next_short_id(&mut tx).await?;
        sqlx::query(
            "INSERT INTO meetings (uid, short_id, role, organizer, organizer_address, summary, sequence,
                 status, state_json, created_utc, updated_utc)
             VALUES (?, ?, 'organizer', ?, ?, ?, ?, 'negotiating', ?, ?, ?)",
        )
        .bind(meeting.uid.clone())
        .bind(short_id)
        .bind(meeting.organizer.clone())
        .bind(meeting.organizer_address.clone())
        .bind(meeting.summary.clone())
        .bind(meeting.sequence)
        .bind(meeting.state_json.clone())
        .bind(now.timestamp())
        .bind(now.timestamp())
        .execute(&mut *tx)
        .await?;
        insert_attendees(&mut tx, &meeting.uid, &meeting.attendees).await?;
        tx.commit().await?;
        Ok(short_id)
    }

    /// The meeting with iCalendar UID `uid`.
    pub async fn meeting(&self, uid: &str) -> Result<Option<Meeting>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        find_meeting(&mut conn, uid).await
    }

    /// The meeting the owner calls `short_id` in chat.
    pub async fn meeting_by_short_id(&self, short_id: i64) -> Result<Option<Meeting>, StoreError> {
        let row: Option<MeetingRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{MEETING_COLUMNS} WHERE short_id = ?"
        )))
        .bind(short_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(decode_meeting).transpose()
    }

    /// What the `meetings` chat command lists: meetings being negotiated and
    /// booked ones not yet over at `now`; booked by start, then the rest by id.
    pub async fn meetings(&self, now: DateTime<Utc>) -> Result<Vec<Meeting>, StoreError> {
        let rows: Vec<MeetingRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{MEETING_COLUMNS} WHERE status = 'negotiating' OR (status = 'booked' AND end_utc > ?)
             ORDER BY start_utc IS NULL, start_utc, short_id"
        )))
        .bind(now.timestamp())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(decode_meeting).collect()
    }

    /// Meetings booked, moved or cancelled at or after `since` (as organizer
    /// or attendee), oldest change first, each with its VEVENT as stored in
    /// the calendar: what `attache export --since` turns into iTIP messages.
    pub async fn meetings_changed_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(Meeting, String)>, StoreError> {
        let rows: Vec<MeetingRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{MEETING_COLUMNS} WHERE status IN ('booked', 'cancelled') AND updated_utc >= ?
             ORDER BY updated_utc, short_id"
        )))
        .bind(since.timestamp())
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for row in rows {
            let meeting = decode_meeting(row)?;
            let raw: Option<String> =
                sqlx::query_scalar("SELECT raw FROM events WHERE uid = ? AND recurrence_key = ''")
                    .bind(meeting.uid.clone())
                    .fetch_optional(&self.pool)
                    .await?;
            // Called off before anything was booked: nothing to tell a calendar.
            if let Some(raw) = raw {
                out.push((meeting, raw));
            }
        }
        Ok(out)
    }

    /// Stores the organizer's negotiation state (serialized by its owner).
    pub async fn save_meeting_state(
        &self,
        uid: &str,
        state_json: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.update_meeting(
            uid,
            "UPDATE meetings SET state_json = ?1, updated_utc = ?2 WHERE uid = ?3",
            state_json.to_owned(),
            now,
        )
        .await
    }

    /// Sets a meeting's status (booking and cancelling set it themselves).
    pub async fn set_meeting_status(
        &self,
        uid: &str,
        status: MeetingStatus,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.update_meeting(
            uid,
            "UPDATE meetings SET status = ?1, updated_utc = ?2 WHERE uid = ?3",
            status_text(status).to_owned(),
            now,
        )
        .await
    }

    /// Sets the SEQUENCE the organizer negotiates under (bumped for a move).
    pub async fn set_meeting_sequence(
        &self,
        uid: &str,
        sequence: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.update_meeting(
            uid,
            "UPDATE meetings SET sequence = ?1, updated_utc = ?2 WHERE uid = ?3",
            sequence,
            now,
        )
        .await
    }

    async fn update_meeting<T>(
        &self,
        uid: &str,
        sql: &'static str,
        value: T,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>
    where
        T: for<'q> sqlx::Encode<'q, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite> + Send + 'static,
    {
        let mut tx = self.write().await?;
        let n = sqlx::query(sql)
            .bind(value)
            .bind(now.timestamp())
            .bind(uid.to_owned())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "no meeting {uid}: `meetings` lists them"
            )));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Who is invited to meeting `uid`, in the order they were added.
    pub async fn meeting_attendees(&self, uid: &str) -> Result<Vec<Attendee>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        load_attendees(&mut conn, uid).await
    }

    /// Records an attendee's answer; returns whether `person` is invited.
    /// A booked meeting's event text is rewritten so that export shows it.
    pub async fn set_attendee_partstat(
        &self,
        uid: &str,
        person: &str,
        partstat: PartStat,
        owner_tz: Tz,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let n =
            sqlx::query("UPDATE meeting_attendees SET partstat = ? WHERE uid = ? AND person = ?")
                .bind(partstat.as_ical())
                .bind(uid.to_owned())
                .bind(person.to_owned())
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        sqlx::query("UPDATE meetings SET updated_utc = ? WHERE uid = ?")
            .bind(now.timestamp())
            .bind(uid.to_owned())
            .execute(&mut *tx)
            .await?;
        if let Some((component, true)) = meeting_event(&mut tx, uid).await? {
            write_meeting_event(&mut tx, &component, owner_tz, now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Turns the hold of `meeting` by `organizer` with `sequence` into a
    /// booked event (§12 `<confirm>`), in one transaction. A live hold books
    /// without looking; a lapsed one books only if its time is still free.
    /// A higher SEQUENCE than the booked one moves the meeting; the same one
    /// is a replay. Creates the attendee-side meeting record on first booking.
    pub async fn book_meeting(
        &self,
        meeting: &str,
        organizer: &str,
        sequence: i64,
        owner_tz: Tz,
        now: DateTime<Utc>,
    ) -> Result<BookOutcome, StoreError> {
        let mut tx = self.write().await?;
        let record = find_meeting(&mut tx, meeting).await?;
        let mine = record
            .as_ref()
            .is_some_and(|m| m.organizer.eq_ignore_ascii_case(organizer));
        if record.is_some() && !mine {
            return Ok(BookOutcome::UidInUse);
        }
        let existing = match meeting_event(&mut tx, meeting).await {
            Ok(e) => e,
            Err(StoreError::Conflict(_)) => return Ok(BookOutcome::UidInUse),
            Err(e) => return Err(e),
        };
        let mut moved = false;
        if let Some((event, ours)) = &existing {
            if !ours || !mine {
                return Ok(BookOutcome::UidInUse);
            }
            let booked = event.status != EventStatus::Cancelled;
            if booked && event.sequence == sequence {
                let range = record.as_ref().and_then(|m| m.range);
                if let Some(range) = range {
                    // A hold re-placed for the booked round has nothing left to keep.
                    let dropped = sqlx::query(
                        "DELETE FROM holds WHERE meeting_uid = ? AND organizer = ? AND sequence <= ?",
                    )
                    .bind(meeting.to_owned())
                    .bind(organizer.to_owned())
                    .bind(sequence)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if dropped > 0 {
                        bump_version(&mut tx, HOLDS_VERSION).await?;
                    }
                    tx.commit().await?;
                    return Ok(BookOutcome::AlreadyBooked { range });
                }
            }
            if event.sequence > sequence || (!booked && event.sequence == sequence) {
                return Ok(BookOutcome::StaleSequence {
                    current: event.sequence,
                });
            }
            moved = booked;
        }
        let Some(hold) = find_hold(&mut tx, meeting, organizer)
            .await?
            .filter(|h| h.sequence == sequence)
        else {
            return Ok(BookOutcome::NoHold);
        };
        if !hold.is_live(now)
            && range_taken(&mut tx, hold.range, meeting, organizer, mine, owner_tz, now).await?
        {
            return Ok(BookOutcome::SlotTaken);
        }
        let summary = hold.summary.clone().unwrap_or_default();
        match &record {
            Some(_) => {
                sqlx::query(
                    "UPDATE meetings SET sequence = ?, start_utc = ?, end_utc = ?, status = 'booked',
                         summary = CASE WHEN ? = '' THEN summary ELSE ? END,
                         organizer_address = COALESCE(?, organizer_address), updated_utc = ?
                     WHERE uid = ?",
                )
                .bind(sequence)
                .bind(hold.range.start.timestamp())
                .bind(hold.range.end.timestamp())
                .bind(summary.clone())
                .bind(summary.clone())
                .bind(hold.organizer_address.clone())
                .bind(now.timestamp())
                .bind(meeting.to_owned())
                .execute(&mut *tx)
                .await?;
            }
            None => {
                let short_id = next_short_id(&mut tx).await?;
                sqlx::query(
                    "INSERT INTO meetings (uid, short_id, role, organizer, organizer_address, summary,
                         sequence, start_utc, end_utc, status, created_utc, updated_utc)
                     VALUES (?, ?, 'attendee', ?, ?, ?, ?, ?, ?, 'booked', ?, ?)",
                )
                .bind(meeting.to_owned())
                .bind(short_id)
                .bind(organizer.to_owned())
                .bind(hold.organizer_address.clone())
                .bind(summary.clone())
                .bind(sequence)
                .bind(hold.range.start.timestamp())
                .bind(hold.range.end.timestamp())
                .bind(now.timestamp())
                .bind(now.timestamp())
                .execute(&mut *tx)
                .await?;
            }
        }
        insert_attendees(&mut tx, meeting, &hold.attendees).await?;
        let component = EventComponent {
            uid: meeting.to_owned(),
            recurrence_id: None,
            start: IcalTime::Utc(hold.range.start),
            end: EventEnd::End(IcalTime::Utc(hold.range.end)),
            rrules: Vec::new(),
            rdates: Vec::new(),
            exdates: Vec::new(),
            status: EventStatus::Confirmed,
            transparency: Transparency::Opaque,
            class: Classification::Public,
            sequence,
            summary: hold.summary.clone().filter(|s| !s.is_empty()),
            location: None,
        };
        write_meeting_event(&mut tx, &component, owner_tz, now).await?;
        sqlx::query("DELETE FROM holds WHERE meeting_uid = ? AND organizer = ?")
            .bind(meeting.to_owned())
            .bind(organizer.to_owned())
            .execute(&mut *tx)
            .await?;
        bump_version(&mut tx, HOLDS_VERSION).await?;
        tx.commit().await?;
        Ok(BookOutcome::Booked {
            range: hold.range,
            moved,
        })
    }

    /// Cancels meeting `meeting` of `organizer` (§12 `<cancel>`, iTIP
    /// CANCEL): the booked event gets STATUS:CANCELLED and the SEQUENCE of
    /// the cancel, any hold of it is dropped. A meeting still being
    /// negotiated is marked cancelled too.
    pub async fn cancel_meeting(
        &self,
        meeting: &str,
        organizer: &str,
        sequence: i64,
        owner_tz: Tz,
        now: DateTime<Utc>,
    ) -> Result<CancelOutcome, StoreError> {
        let mut tx = self.write().await?;
        let released = sqlx::query("DELETE FROM holds WHERE meeting_uid = ? AND organizer = ?")
            .bind(meeting.to_owned())
            .bind(organizer.to_owned())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if released > 0 {
            bump_version(&mut tx, HOLDS_VERSION).await?;
        }
        let record = find_meeting(&mut tx, meeting)
            .await?
            .filter(|m| m.organizer.eq_ignore_ascii_case(organizer));
        let Some(record) = record else {
            tx.commit().await?;
            return Ok(CancelOutcome::Unknown);
        };
        let event = match meeting_event(&mut tx, meeting).await {
            Ok(Some((event, true))) => Some(event),
            Ok(_) | Err(StoreError::Conflict(_)) => None,
            Err(e) => return Err(e),
        };
        let outcome = match event {
            Some(event) if event.status == EventStatus::Cancelled => {
                CancelOutcome::AlreadyCancelled
            }
            Some(event) if event.sequence > sequence => CancelOutcome::StaleSequence {
                current: event.sequence,
            },
            Some(mut event) => {
                event.status = EventStatus::Cancelled;
                event.sequence = sequence;
                write_meeting_event(&mut tx, &event, owner_tz, now).await?;
                CancelOutcome::Cancelled
            }
            None if record.status == MeetingStatus::Cancelled => CancelOutcome::AlreadyCancelled,
            None => CancelOutcome::Cancelled,
        };
        if outcome == CancelOutcome::Cancelled {
            sqlx::query(
                "UPDATE meetings SET status = 'cancelled', sequence = MAX(sequence, ?), updated_utc = ?
                 WHERE uid = ?",
            )
            .bind(sequence)
            .bind(now.timestamp())
            .bind(meeting.to_owned())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::calendar::ics::{export_calendar, parse_calendar};
    use crate::domain::{BusyStatus, Hold, MeetingRole};
    use crate::store::{HoldOutcome, HoldRequest, ImportMode, ImportSet};

    const TZ: Tz = Tz::UTC;
    const ORG_A: &str = "alice-agent@example.org";
    const ORG_B: &str = "bob-agent@example.org";

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, h, m, 0)
            .single()
            .unwrap_or_default()
    }

    fn now() -> DateTime<Utc> {
        at(8, 0)
    }

    fn range(h1: u32, m1: u32, h2: u32, m2: u32) -> TimeRange {
        TimeRange {
            start: at(h1, m1),
            end: at(h2, m2),
        }
    }

    fn request(meeting: &str, organizer: &str, sequence: i64, r: TimeRange) -> HoldRequest {
        HoldRequest {
            meeting: meeting.into(),
            organizer: organizer.into(),
            organizer_address: Some("alice@example.org".into()),
            sequence,
            range: r,
            expires: now() + Duration::minutes(10),
            summary: Some("Budget review".into()),
            attendees: vec![
                Attendee {
                    person: "carol@example.org".into(),
                    agent: Some("carol-agent@example.org".into()),
                    name: Some("Carol \"C\" Jones".into()),
                    required: true,
                    partstat: PartStat::Accepted,
                },
                Attendee {
                    person: "mailto:dan@example.com".into(),
                    agent: None,
                    name: None,
                    required: false,
                    partstat: PartStat::NeedsAction,
                },
            ],
        }
    }

    /// The same request placed at `t`, expiring ten minutes later.
    fn until(mut req: HoldRequest, t: DateTime<Utc>) -> HoldRequest {
        req.expires = t + Duration::minutes(10);
        req
    }

    async fn store() -> Store {
        match Store::open_in_memory().await {
            Ok(s) => s,
            Err(e) => panic!("in-memory store: {e}"),
        }
    }

    async fn import_event(store: &Store, uid: &str, r: TimeRange) {
        let c = EventComponent {
            uid: uid.into(),
            recurrence_id: None,
            start: IcalTime::Utc(r.start),
            end: EventEnd::End(IcalTime::Utc(r.end)),
            rrules: Vec::new(),
            rdates: Vec::new(),
            exdates: Vec::new(),
            status: EventStatus::Confirmed,
            transparency: Transparency::Opaque,
            class: Classification::Public,
            sequence: 0,
            summary: Some("Dentist".into()),
            location: None,
        };
        let raw = event_to_ics(&c, now());
        let set = ImportSet {
            events: vec![(c, raw)],
            ..ImportSet::default()
        };
        if let Err(e) = store
            .import(&set, Some("/tmp/cal.ics"), ImportMode::Merge, TZ, now())
            .await
        {
            panic!("import: {e}");
        }
    }

    async fn held(store: &Store, req: &HoldRequest, at: DateTime<Utc>) -> HoldOutcome {
        match store.try_hold(req, TZ, at).await {
            Ok(o) => o,
            Err(e) => panic!("try_hold: {e}"),
        }
    }

    async fn book(store: &Store, uid: &str, org: &str, seq: i64, at: DateTime<Utc>) -> BookOutcome {
        match store.book_meeting(uid, org, seq, TZ, at).await {
            Ok(o) => o,
            Err(e) => panic!("book_meeting: {e}"),
        }
    }

    async fn busy(store: &Store, window: TimeRange) -> Vec<(TimeRange, BusyStatus)> {
        match store.busy(window, TZ).await {
            Ok(b) => b
                .into_iter()
                .map(|b| {
                    (
                        TimeRange {
                            start: b.start,
                            end: b.end,
                        },
                        b.status,
                    )
                })
                .collect(),
            Err(e) => panic!("busy: {e}"),
        }
    }

    #[tokio::test]
    async fn a_hold_blocks_overlapping_holds_of_others_but_not_its_own_renewal() {
        let s = store().await;
        let expires = now() + Duration::minutes(10);
        assert_eq!(
            held(&s, &request("m1", ORG_A, 0, range(10, 0, 11, 0)), now()).await,
            HoldOutcome::Held { expires }
        );
        assert_eq!(
            held(&s, &request("m2", ORG_B, 0, range(10, 30, 11, 30)), now()).await,
            HoldOutcome::Busy
        );
        // The same meeting and organizer: a moved or renewed hold, not a conflict.
        assert!(matches!(
            held(&s, &request("m1", ORG_A, 0, range(10, 30, 11, 30)), now()).await,
            HoldOutcome::Held { .. }
        ));
        // Same UID, other organizer: a different hold, and it collides.
        assert_eq!(
            held(&s, &request("m1", ORG_B, 0, range(11, 0, 11, 30)), now()).await,
            HoldOutcome::Busy
        );
        // Touching ranges do not overlap.
        assert!(matches!(
            held(&s, &request("m3", ORG_B, 0, range(11, 30, 12, 0)), now()).await,
            HoldOutcome::Held { .. }
        ));
        // A lower sequence than the hold's is an old round.
        assert_eq!(
            held(&s, &request("m1", ORG_A, 1, range(13, 0, 14, 0)), now()).await,
            HoldOutcome::Held {
                expires: now() + Duration::minutes(10)
            }
        );
        assert_eq!(
            held(&s, &request("m1", ORG_A, 0, range(13, 0, 14, 0)), now()).await,
            HoldOutcome::StaleSequence { current: 1 }
        );
        let active: Vec<String> = match s.active_holds(now()).await {
            Ok(h) => h.into_iter().map(|h| h.meeting).collect(),
            Err(e) => panic!("{e}"),
        };
        assert_eq!(active, vec!["m3", "m1"]);
    }

    #[tokio::test]
    async fn events_block_holds_and_invalid_requests_are_refused() {
        let s = store().await;
        import_event(&s, "dentist@example", range(9, 0, 10, 0)).await;
        assert_eq!(
            held(&s, &request("m1", ORG_A, 0, range(9, 30, 10, 30)), now()).await,
            HoldOutcome::Busy
        );
        assert!(matches!(
            held(&s, &request("m1", ORG_A, 0, range(10, 0, 10, 30)), now()).await,
            HoldOutcome::Held { .. }
        ));
        let mut late = request("m2", ORG_A, 0, range(12, 0, 13, 0));
        late.expires = now();
        assert!(s.try_hold(&late, TZ, now()).await.is_err());
        let empty = request("m2", ORG_A, 0, range(12, 0, 12, 0));
        assert!(s.try_hold(&empty, TZ, now()).await.is_err());
    }

    #[tokio::test]
    async fn expired_holds_no_longer_block_and_are_reported_once() {
        let s = store().await;
        let req = request("m1", ORG_A, 0, range(10, 0, 11, 0));
        assert!(matches!(
            held(&s, &req, now()).await,
            HoldOutcome::Held { .. }
        ));
        let later = now() + Duration::minutes(11);
        assert!(matches!(
            held(
                &s,
                &until(request("m2", ORG_B, 0, range(10, 0, 11, 0)), later),
                later
            )
            .await,
            HoldOutcome::Held { .. }
        ));
        let lapsed = match s.expire_holds(later).await {
            Ok(l) => l,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(lapsed.len(), 1);
        assert_eq!(lapsed[0].meeting, "m1");
        assert_eq!(lapsed[0].attendees, req.attendees);
        assert!(matches!(s.expire_holds(later).await, Ok(l) if l.is_empty()));
        let active: Vec<Hold> = s.active_holds(later).await.unwrap_or_default();
        assert_eq!(active.len(), 1);
        assert_eq!(active[0].organizer, ORG_B);
        // Kept (not blocking) for a late confirm, purged after a day.
        assert!(matches!(s.hold("m1", ORG_A).await, Ok(Some(_))));
        assert!(s.expire_holds(later + Duration::hours(23)).await.is_ok());
        assert!(matches!(s.hold("m1", ORG_A).await, Ok(Some(_))));
        assert!(s.expire_holds(later + Duration::days(2)).await.is_ok());
        assert!(matches!(s.hold("m1", ORG_A).await, Ok(None)));
    }

    #[tokio::test]
    async fn release_drops_the_hold_and_bumps_the_holds_version() {
        let s = store().await;
        let before = s.versions().await.unwrap_or_default();
        assert!(matches!(
            held(&s, &request("m1", ORG_A, 0, range(10, 0, 11, 0)), now()).await,
            HoldOutcome::Held { .. }
        ));
        let placed = s.versions().await.unwrap_or_default();
        assert!(placed.holds > before.holds);
        assert_eq!(placed.calendar, before.calendar);
        assert!(matches!(s.release_hold("m1", ORG_A).await, Ok(true)));
        assert!(matches!(s.release_hold("m1", ORG_A).await, Ok(false)));
        assert!(s.versions().await.unwrap_or_default().holds > placed.holds);
        assert!(matches!(
            held(&s, &request("m2", ORG_B, 0, range(10, 0, 11, 0)), now()).await,
            HoldOutcome::Held { .. }
        ));
    }

    /// A release of an abandoned round's slot that arrives after the next
    /// round's hold (same meeting, same organizer) leaves that hold alone.
    #[tokio::test]
    async fn a_late_release_of_an_old_slot_keeps_the_new_rounds_hold() {
        let s = store().await;
        let old = range(10, 0, 11, 0);
        let new = range(12, 0, 13, 0);
        for r in [old, new] {
            assert!(matches!(
                held(&s, &request("m1", ORG_A, 0, r), now()).await,
                HoldOutcome::Held { .. }
            ));
        }
        assert!(matches!(
            s.release_hold_of("m1", ORG_A, Some(old)).await,
            Ok(false)
        ));
        let kept = s.hold("m1", ORG_A).await.ok().flatten().map(|h| h.range);
        assert_eq!(kept, Some(new));
        assert!(matches!(
            s.release_hold_of("m1", ORG_A, Some(new)).await,
            Ok(true)
        ));
        assert!(matches!(s.hold("m1", ORG_A).await, Ok(None)));
    }

    #[tokio::test]
    async fn a_booking_is_busy_exported_with_attendees_and_replays_are_recognised() {
        let s = store().await;
        let r = range(10, 0, 11, 0);
        assert!(matches!(
            held(&s, &request("m1@x", ORG_A, 0, r), now()).await,
            HoldOutcome::Held { .. }
        ));
        let v0 = s.versions().await.unwrap_or_default();
        assert_eq!(
            book(&s, "m1@x", ORG_A, 0, now()).await,
            BookOutcome::Booked {
                range: r,
                moved: false
            }
        );
        assert!(s.versions().await.unwrap_or_default().calendar > v0.calendar);
        assert_eq!(
            busy(&s, range(9, 0, 12, 0)).await,
            vec![(r, BusyStatus::Busy)]
        );
        // The hold became the booking.
        assert!(matches!(s.hold("m1@x", ORG_A).await, Ok(None)));
        assert_eq!(
            book(&s, "m1@x", ORG_A, 0, now()).await,
            BookOutcome::AlreadyBooked { range: r }
        );
        // A hold placed again for the booked round is dropped by the replayed confirm.
        assert!(matches!(
            held(&s, &request("m1@x", ORG_A, 0, r), now()).await,
            HoldOutcome::Held { .. }
        ));
        assert_eq!(
            book(&s, "m1@x", ORG_A, 0, now()).await,
            BookOutcome::AlreadyBooked { range: r }
        );
        assert!(matches!(s.hold("m1@x", ORG_A).await, Ok(None)));
        // Another organizer holding the same time is refused by the booking.
        assert_eq!(
            held(&s, &request("m2", ORG_B, 0, range(10, 30, 11, 30)), now()).await,
            HoldOutcome::Busy
        );
        // The attendee-side record exists and is listed.
        let m = match s.meeting("m1@x").await {
            Ok(Some(m)) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(m.role, MeetingRole::Attendee);
        assert_eq!(m.status, MeetingStatus::Booked);
        assert_eq!(m.range, Some(r));
        assert_eq!(m.summary, "Budget review");
        assert!(matches!(s.meetings(now()).await, Ok(v) if v.len() == 1));
        assert!(matches!(s.meetings(at(12, 0)).await, Ok(v) if v.is_empty()));
        // Export: a valid VEVENT with ORGANIZER and ATTENDEEs.
        let (tzs, events) = s.export_parts().await.unwrap_or_default();
        let text = export_calendar(&tzs, &events, &[]);
        let parsed = match parse_calendar(text.as_bytes()) {
            Ok(p) => p,
            Err(e) => panic!("{e}\n{text}"),
        };
        assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
        assert_eq!(parsed.events.len(), 1);
        let e = &parsed.events[0];
        assert_eq!(e.component.uid, "m1@x");
        assert_eq!(e.component.status, EventStatus::Confirmed);
        assert_eq!(e.component.summary.as_deref(), Some("Budget review"));
        let unfolded = e.raw.replace("\r\n ", "");
        assert!(
            unfolded.contains("ORGANIZER:xmpp:alice@example.org\r\n"),
            "{unfolded}"
        );
        assert!(
            unfolded.contains(
                "ATTENDEE;CN=\"Carol C Jones\";ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED:xmpp:carol@example.org\r\n"
            ),
            "{unfolded}"
        );
        assert!(
            unfolded.contains(
                "ATTENDEE;ROLE=OPT-PARTICIPANT;PARTSTAT=NEEDS-ACTION:mailto:dan@example.com\r\n"
            ),
            "{unfolded}"
        );
        for line in e.raw.split("\r\n") {
            assert!(line.len() <= 75, "{line}");
        }
    }

    #[tokio::test]
    async fn booking_without_a_hold_books_only_a_still_free_slot() {
        let s = store().await;
        assert_eq!(
            book(&s, "nothing", ORG_A, 0, now()).await,
            BookOutcome::NoHold
        );
        // Lapsed but still free: booked anyway.
        let r = range(10, 0, 11, 0);
        assert!(matches!(
            held(&s, &request("m1", ORG_A, 0, r), now()).await,
            HoldOutcome::Held { .. }
        ));
        let later = now() + Duration::minutes(30);
        assert!(matches!(
            book(&s, "m1", ORG_A, 0, later).await,
            BookOutcome::Booked { .. }
        ));
        // Lapsed and taken meanwhile by someone else's hold: refused.
        let r2 = range(14, 0, 15, 0);
        assert!(matches!(
            held(&s, &request("m2", ORG_A, 0, r2), now()).await,
            HoldOutcome::Held { .. }
        ));
        assert!(matches!(
            held(&s, &until(request("m3", ORG_B, 0, r2), later), later).await,
            HoldOutcome::Held { .. }
        ));
        assert_eq!(
            book(&s, "m2", ORG_A, 0, later).await,
            BookOutcome::SlotTaken
        );
        // Wrong sequence: no hold of that round.
        assert_eq!(book(&s, "m3", ORG_B, 1, later).await, BookOutcome::NoHold);
        // A UID owned by an imported event or another organizer is refused.
        import_event(&s, "imported@example", range(16, 0, 17, 0)).await;
        assert!(matches!(
            held(
                &s,
                &until(
                    request("imported@example", ORG_B, 0, range(18, 0, 19, 0)),
                    later
                ),
                later
            )
            .await,
            HoldOutcome::Held { .. }
        ));
        assert_eq!(
            book(&s, "imported@example", ORG_B, 0, later).await,
            BookOutcome::UidInUse
        );
        assert!(matches!(
            held(
                &s,
                &until(request("m1", ORG_B, 1, range(20, 0, 21, 0)), later),
                later
            )
            .await,
            HoldOutcome::Held { .. }
        ));
        assert_eq!(book(&s, "m1", ORG_B, 1, later).await, BookOutcome::UidInUse);
    }

    #[tokio::test]
    async fn a_reschedule_with_a_higher_sequence_ignores_its_own_booking_and_moves_it() {
        let s = store().await;
        let first = range(10, 0, 11, 0);
        assert!(matches!(
            held(&s, &request("m1", ORG_A, 0, first), now()).await,
            HoldOutcome::Held { .. }
        ));
        assert!(matches!(
            book(&s, "m1", ORG_A, 0, now()).await,
            BookOutcome::Booked { .. }
        ));
        // Overlapping its own old time is fine for the same meeting and organizer…
        let moved = range(10, 30, 11, 30);
        assert!(matches!(
            held(&s, &request("m1", ORG_A, 1, moved), now()).await,
            HoldOutcome::Held { .. }
        ));
        // …but not for anyone else.
        assert_eq!(
            held(&s, &request("m9", ORG_B, 0, range(10, 0, 10, 30)), now()).await,
            HoldOutcome::Busy
        );
        assert_eq!(
            book(&s, "m1", ORG_A, 1, now()).await,
            BookOutcome::Booked {
                range: moved,
                moved: true
            }
        );
        assert_eq!(
            busy(&s, range(9, 0, 12, 0)).await,
            vec![(moved, BusyStatus::Busy)]
        );
        assert!(
            matches!(s.meeting("m1").await, Ok(Some(m)) if m.sequence == 1 && m.range == Some(moved))
        );
        // An older round is stale, for holds and bookings alike.
        assert_eq!(
            held(&s, &request("m1", ORG_A, 0, first), now()).await,
            HoldOutcome::StaleSequence { current: 1 }
        );
        assert_eq!(
            book(&s, "m1", ORG_A, 0, now()).await,
            BookOutcome::StaleSequence { current: 1 }
        );
    }

    #[tokio::test]
    async fn cancelling_frees_the_time_keeps_the_event_for_export_and_is_idempotent() {
        let s = store().await;
        let r = range(10, 0, 11, 0);
        assert!(matches!(
            held(&s, &request("m1", ORG_A, 0, r), now()).await,
            HoldOutcome::Held { .. }
        ));
        assert!(matches!(
            book(&s, "m1", ORG_A, 0, now()).await,
            BookOutcome::Booked { .. }
        ));
        assert!(matches!(
            s.cancel_meeting("m1", ORG_B, 1, TZ, now()).await,
            Ok(CancelOutcome::Unknown)
        ));
        assert!(matches!(
            s.cancel_meeting("nope", ORG_A, 0, TZ, now()).await,
            Ok(CancelOutcome::Unknown)
        ));
        assert!(matches!(
            s.cancel_meeting("m1", ORG_A, 1, TZ, now()).await,
            Ok(CancelOutcome::Cancelled)
        ));
        assert!(busy(&s, range(9, 0, 12, 0)).await.is_empty());
        assert!(matches!(
            held(&s, &request("m2", ORG_B, 0, r), now()).await,
            HoldOutcome::Held { .. }
        ));
        assert!(matches!(
            s.cancel_meeting("m1", ORG_A, 1, TZ, now()).await,
            Ok(CancelOutcome::AlreadyCancelled)
        ));
        let (_, events) = s.export_parts().await.unwrap_or_default();
        assert_eq!(events.len(), 1);
        assert!(events[0].contains("STATUS:CANCELLED"));
        assert!(events[0].contains("SEQUENCE:1"));
        assert!(events[0].contains("ORGANIZER:xmpp:alice@example.org"));
        assert!(
            matches!(s.meeting("m1").await, Ok(Some(m)) if m.status == MeetingStatus::Cancelled)
        );
        // A stale cancel of a booked meeting is refused.
        assert!(matches!(
            held(&s, &request("m3", ORG_A, 2, range(13, 0, 14, 0)), now()).await,
            HoldOutcome::Held { .. }
        ));
        assert!(matches!(
            book(&s, "m3", ORG_A, 2, now()).await,
            BookOutcome::Booked { .. }
        ));
        assert!(matches!(
            s.cancel_meeting("m3", ORG_A, 1, TZ, now()).await,
            Ok(CancelOutcome::StaleSequence { current: 2 })
        ));
    }

    fn new_meeting(uid: &str) -> NewMeeting {
        NewMeeting {
            uid: uid.into(),
            organizer: ORG_A.into(),
            organizer_address: Some("alice@example.org".into()),
            summary: "Planning".into(),
            sequence: 0,
            state_json: Some("{\"step\":1}".into()),
            attendees: vec![Attendee {
                person: "bob@example.org".into(),
                agent: Some(ORG_B.into()),
                name: Some("Bob".into()),
                required: true,
                partstat: PartStat::NeedsAction,
            }],
        }
    }

    #[tokio::test]
    async fn the_organizer_record_keeps_state_status_and_answers() {
        let s = store().await;
        let first = s.create_meeting(&new_meeting("o1"), now()).await;
        let second = s.create_meeting(&new_meeting("o2"), now()).await;
        assert!(matches!((first, second), (Ok(1), Ok(2))));
        assert!(s.create_meeting(&new_meeting("o1"), now()).await.is_err());
        let m = match s.meeting_by_short_id(2).await {
            Ok(Some(m)) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            (m.uid.as_str(), m.role, m.status),
            ("o2", MeetingRole::Organizer, MeetingStatus::Negotiating)
        );
        assert!(matches!(s.meeting_by_short_id(3).await, Ok(None)));
        assert!(
            s.save_meeting_state("o1", "{\"step\":2}", now())
                .await
                .is_ok()
        );
        assert!(s.set_meeting_sequence("o1", 3, now()).await.is_ok());
        assert!(
            matches!(s.meeting("o1").await, Ok(Some(m)) if m.state_json.as_deref() == Some("{\"step\":2}") && m.sequence == 3)
        );
        assert!(
            s.set_meeting_status("o2", MeetingStatus::Failed, now())
                .await
                .is_ok()
        );
        assert!(
            s.set_meeting_status("zz", MeetingStatus::Failed, now())
                .await
                .is_err()
        );
        let listed: Vec<String> = s
            .meetings(now())
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|m| m.uid)
            .collect();
        assert_eq!(listed, vec!["o1"]);
        assert!(matches!(
            s.set_attendee_partstat("o1", "BOB@example.org", PartStat::Accepted, TZ, now())
                .await,
            Ok(true)
        ));
        assert!(matches!(
            s.set_attendee_partstat("o1", "eve@example.org", PartStat::Accepted, TZ, now())
                .await,
            Ok(false)
        ));
        let attendees = s.meeting_attendees("o1").await.unwrap_or_default();
        assert_eq!(attendees.len(), 1);
        assert_eq!(attendees[0].partstat, PartStat::Accepted);
        // The organizer's own booking: own hold, then book; the event lists the attendee's answer.
        assert!(matches!(
            held(&s, &request("o1", ORG_A, 3, range(10, 0, 11, 0)), now()).await,
            HoldOutcome::Held { .. }
        ));
        assert!(matches!(
            book(&s, "o1", ORG_A, 3, now()).await,
            BookOutcome::Booked { .. }
        ));
        let m = s.meeting("o1").await.ok().flatten();
        assert!(
            matches!(m, Some(m) if m.role == MeetingRole::Organizer && m.status == MeetingStatus::Booked && m.summary == "Budget review")
        );
        assert!(matches!(
            s.set_attendee_partstat("o1", "bob@example.org", PartStat::Declined, TZ, now())
                .await,
            Ok(true)
        ));
        let (_, events) = s.export_parts().await.unwrap_or_default();
        let unfolded = events.concat().replace("\r\n ", "");
        assert!(
            unfolded.contains("PARTSTAT=DECLINED:xmpp:bob@example.org"),
            "{unfolded}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_organizers_racing_for_overlapping_time_get_exactly_one_hold() {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        };
        let path = dir.path().join("race.sqlite");
        let a = match Store::create(&path).await {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        // A second pool on the same file, as a second process would have.
        let b = match Store::open(&path).await {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        for round in 0..20u32 {
            let start = at(9, 0) + Duration::hours(i64::from(round));
            let ra = TimeRange {
                start,
                end: start + Duration::minutes(45),
            };
            let rb = TimeRange {
                start: start + Duration::minutes(15),
                end: start + Duration::minutes(60),
            };
            let qa = request(&format!("a{round}"), ORG_A, 0, ra);
            let qb = request(&format!("b{round}"), ORG_B, 0, rb);
            let (sa, sb) = (a.clone(), b.clone());
            let ta = tokio::spawn(async move { sa.try_hold(&qa, TZ, now()).await });
            let tb = tokio::spawn(async move { sb.try_hold(&qb, TZ, now()).await });
            let (oa, ob) = match (ta.await, tb.await) {
                (Ok(Ok(oa)), Ok(Ok(ob))) => (oa, ob),
                other => panic!("round {round}: {other:?}"),
            };
            let wins = [oa, ob]
                .iter()
                .filter(|o| matches!(o, HoldOutcome::Held { .. }))
                .count();
            assert_eq!(wins, 1, "round {round}: {oa:?} {ob:?}");
        }
        assert_eq!(a.active_holds(now()).await.unwrap_or_default().len(), 20);
        a.close().await;
        b.close().await;
    }
}
