//! Holds: time kept free for a meeting while it is negotiated (§12).
//!
//! The check "is this range free?" and the placing of the hold happen in one
//! `BEGIN IMMEDIATE` transaction, so two negotiations running at once (two
//! organizers, or this agent's CLI and its runtime) can never both hold
//! overlapping time. Free means: no blocking event instance (the occurrence
//! index, booked meetings included) and no other live hold. A hold or the
//! booking of the *same meeting by the same organizer* does not count, which
//! is what lets a booked meeting be moved (a reschedule with SEQUENCE + 1).

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use sqlx::SqliteConnection;

use super::{HOLDS_VERSION, Store, bump_version, from_json, instant, to_json};
use crate::domain::{Attendee, Hold, TimeRange};
use crate::error::StoreError;

/// Expired holds are kept this long (not blocking) so that a late `<confirm>`
/// still knows the time it asked for; then they are purged.
const KEEP_EXPIRED: Duration = Duration::days(1);

/// What an organizer asks to hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRequest {
    /// The meeting's iCalendar UID.
    pub meeting: String,
    /// The organizer agent's bare JID (ours, for the organizer's own hold).
    pub organizer: String,
    /// The organizer's owner as a calendar address, for ORGANIZER at booking.
    pub organizer_address: Option<String>,
    pub sequence: i64,
    pub range: TimeRange,
    /// When the hold lapses; the caller has already capped it
    /// (min of the asked expiry and now + the owner's maximum hold time).
    pub expires: DateTime<Utc>,
    pub summary: Option<String>,
    pub attendees: Vec<Attendee>,
}

/// The answer to [`Store::try_hold`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldOutcome {
    /// The range is held until `expires` (a previous hold of the same meeting
    /// by the same organizer was replaced or extended).
    Held { expires: DateTime<Utc> },
    /// Something else blocks part of the range.
    Busy,
    /// The meeting is already held or booked with a higher SEQUENCE: the
    /// request is from an older round of the negotiation.
    StaleSequence { current: i64 },
}

pub(super) type HoldRow = (
    String,
    String,
    Option<String>,
    i64,
    i64,
    i64,
    i64,
    Option<String>,
    String,
);

pub(super) const HOLD_COLUMNS: &str = "SELECT meeting_uid, organizer, organizer_address, sequence, start_utc, end_utc, expires_utc, summary, attendees FROM holds";

pub(super) fn decode_hold(row: HoldRow) -> Result<Hold, StoreError> {
    let (meeting, organizer, organizer_address, sequence, start, end, expires, summary, attendees) =
        row;
    let what = format!("hold of {meeting} by {organizer}");
    let range = TimeRange::new(instant(&what, start)?, instant(&what, end)?).ok_or_else(|| {
        StoreError::Corrupt {
            what: what.clone(),
            detail: "ends before it starts".into(),
        }
    })?;
    Ok(Hold {
        expires: instant(&what, expires)?,
        attendees: from_json(&what, &attendees)?,
        meeting,
        organizer,
        organizer_address,
        sequence,
        range,
        summary,
    })
}

/// The hold of `meeting` by `organizer`, live or not.
pub(super) async fn find_hold(
    conn: &mut SqliteConnection,
    meeting: &str,
    organizer: &str,
) -> Result<Option<Hold>, StoreError> {
    let row: Option<HoldRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{HOLD_COLUMNS} WHERE meeting_uid = ? AND organizer = ?"
    )))
    .bind(meeting.to_owned())
    .bind(organizer.to_owned())
    .fetch_optional(&mut *conn)
    .await?;
    row.map(decode_hold).transpose()
}

/// The meeting UID whose own booked time does not count against `organizer`:
/// `meeting` itself when it is a meeting of that organizer (a reschedule).
pub(super) async fn own_booking(
    conn: &mut SqliteConnection,
    meeting: &str,
    organizer: &str,
) -> Result<Option<(i64, String)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT sequence, status FROM meetings WHERE uid = ? AND organizer = ?")
            .bind(meeting.to_owned())
            .bind(organizer.to_owned())
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// Whether anything but `meeting` of `organizer` blocks part of `range` at
/// `now`: event instances (bookings included, the meeting's own booking
/// excluded when `own` is set) and other live holds.
pub(super) async fn range_taken(
    conn: &mut SqliteConnection,
    range: TimeRange,
    meeting: &str,
    organizer: &str,
    own: bool,
    owner_tz: Tz,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let items = super::events::busy_items(conn, range, owner_tz, own.then_some(meeting)).await?;
    if items.iter().any(|(r, _)| r.intersect(&range).is_some()) {
        return Ok(true);
    }
    let other: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM holds
         WHERE expires_utc > ?1 AND start_utc < ?2 AND end_utc > ?3
           AND NOT (meeting_uid = ?4 AND organizer = ?5)
         LIMIT 1",
    )
    .bind(now.timestamp())
    .bind(range.end.timestamp())
    .bind(range.start.timestamp())
    .bind(meeting.to_owned())
    .bind(organizer.to_owned())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(other.is_some())
}

impl Store {
    /// Holds `req.range` for a meeting if it is free, atomically (see the
    /// module comment). Placing a hold again for the same meeting and
    /// organizer replaces it (new time, new sequence, new expiry).
    pub async fn try_hold(
        &self,
        req: &HoldRequest,
        owner_tz: Tz,
        now: DateTime<Utc>,
    ) -> Result<HoldOutcome, StoreError> {
        if req.range.is_empty() {
            return Err(StoreError::Conflict(format!(
                "cannot hold an empty time range for meeting {}",
                req.meeting
            )));
        }
        if req.expires <= now {
            return Err(StoreError::Conflict(format!(
                "a hold for meeting {} must expire after now ({}), not at {}",
                req.meeting,
                now.to_rfc3339(),
                req.expires.to_rfc3339()
            )));
        }
        let mut tx = self.write().await?;
        let booking = own_booking(&mut tx, &req.meeting, &req.organizer).await?;
        if let Some((current, _)) = &booking
            && *current > req.sequence
        {
            return Ok(HoldOutcome::StaleSequence { current: *current });
        }
        if let Some(existing) = find_hold(&mut tx, &req.meeting, &req.organizer).await?
            && existing.sequence > req.sequence
        {
            return Ok(HoldOutcome::StaleSequence {
                current: existing.sequence,
            });
        }
        if range_taken(
            &mut tx,
            req.range,
            &req.meeting,
            &req.organizer,
            booking.is_some(),
            owner_tz,
            now,
        )
        .await?
        {
            return Ok(HoldOutcome::Busy);
        }
        sqlx::query(
            "INSERT INTO holds (meeting_uid, organizer, organizer_address, sequence, start_utc, end_utc,
                 expires_utc, summary, attendees, expired)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)
             ON CONFLICT(meeting_uid, organizer) DO UPDATE SET
                 organizer_address = COALESCE(excluded.organizer_address, holds.organizer_address),
                 sequence = excluded.sequence, start_utc = excluded.start_utc, end_utc = excluded.end_utc,
                 expires_utc = excluded.expires_utc, summary = excluded.summary,
                 attendees = excluded.attendees, expired = 0",
        )
        .bind(req.meeting.clone())
        .bind(req.organizer.clone())
        .bind(req.organizer_address.clone())
        .bind(req.sequence)
        .bind(req.range.start.timestamp())
        .bind(req.range.end.timestamp())
        .bind(req.expires.timestamp())
        .bind(req.summary.clone())
        .bind(to_json(&req.attendees)?)
        .execute(&mut *tx)
        .await?;
        bump_version(&mut tx, HOLDS_VERSION).await?;
        tx.commit().await?;
        Ok(HoldOutcome::Held {
            expires: req.expires,
        })
    }

    /// The hold of `meeting` by `organizer`, live or expired-but-kept.
    pub async fn hold(&self, meeting: &str, organizer: &str) -> Result<Option<Hold>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        find_hold(&mut conn, meeting, organizer).await
    }

    /// Drops the hold of `meeting` by `organizer`; returns whether there was
    /// one (an unknown or expired hold is not an error, §12 `<release>`).
    pub async fn release_hold(&self, meeting: &str, organizer: &str) -> Result<bool, StoreError> {
        self.release_hold_of(meeting, organizer, None).await
    }

    /// Like [`Store::release_hold`], but when `slot` is given only a hold of
    /// exactly that slot is released (§12.4): a release from an abandoned
    /// round that arrives after the next round's hold leaves that hold be.
    pub async fn release_hold_of(
        &self,
        meeting: &str,
        organizer: &str,
        slot: Option<TimeRange>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let done = sqlx::query(
            "DELETE FROM holds WHERE meeting_uid = ?1 AND organizer = ?2
               AND (?3 IS NULL OR (start_utc = ?3 AND end_utc = ?4))",
        )
        .bind(meeting.to_owned())
        .bind(organizer.to_owned())
        .bind(slot.map(|r| r.start.timestamp()))
        .bind(slot.map(|r| r.end.timestamp()))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        if done {
            bump_version(&mut tx, HOLDS_VERSION).await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    /// The holds that lapsed since the last call (each reported once, so the
    /// runtime can tell the organizer's owner), and purges those that lapsed
    /// more than a day ago.
    pub async fn expire_holds(&self, now: DateTime<Utc>) -> Result<Vec<Hold>, StoreError> {
        let mut tx = self.write().await?;
        let rows: Vec<HoldRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{HOLD_COLUMNS} WHERE expired = 0 AND expires_utc <= ? ORDER BY expires_utc, meeting_uid"
        )))
        .bind(now.timestamp())
        .fetch_all(&mut *tx)
        .await?;
        let lapsed = rows
            .into_iter()
            .map(decode_hold)
            .collect::<Result<Vec<_>, _>>()?;
        let marked =
            sqlx::query("UPDATE holds SET expired = 1 WHERE expired = 0 AND expires_utc <= ?")
                .bind(now.timestamp())
                .execute(&mut *tx)
                .await?
                .rows_affected();
        let purged = sqlx::query("DELETE FROM holds WHERE expires_utc <= ?")
            .bind((now - KEEP_EXPIRED).timestamp())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if marked + purged > 0 {
            bump_version(&mut tx, HOLDS_VERSION).await?;
        }
        tx.commit().await?;
        Ok(lapsed)
    }

    /// The holds blocking time at `now`, by start.
    pub async fn active_holds(&self, now: DateTime<Utc>) -> Result<Vec<Hold>, StoreError> {
        let rows: Vec<HoldRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{HOLD_COLUMNS} WHERE expires_utc > ? ORDER BY start_utc, meeting_uid, organizer"
        )))
        .bind(now.timestamp())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(decode_hold).collect()
    }
}
