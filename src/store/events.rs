//! Calendar events, imports by source, and the materialized occurrence index.
//!
//! Events are stored one row per VEVENT component, keyed by UID and
//! RECURRENCE-ID, with the component's original text for lossless export.
//! Their instances over a rolling horizon are kept in `occurrences`, so a
//! range query is an index scan; a window outside the horizon is expanded on
//! demand from the stored components. `calendar::expand` is the single
//! source of truth for what a series means.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::{Store, from_json, meta_get, meta_set, now_text, to_json};
use crate::calendar::availability::merge_busy_ranges;
use crate::calendar::expand::{expand_series, instance_order};
use crate::domain::{
    BusyInterval, BusyStatus, EventComponent, EventEnd, EventSeries, IcalTime, Instance,
    InstanceDetails, RecurrenceId, Task, TimeRange,
};
use crate::error::StoreError;

/// How far back and ahead of `now` instances are materialized.
const HORIZON_PAST: Duration = Duration::days(90);
const HORIZON_AHEAD: Duration = Duration::days(400);
/// The horizon is rebuilt once `now` has moved this far past its centre, so
/// that `now + 1 year` stays inside it.
const HORIZON_SLACK: Duration = Duration::days(30);
/// DATE and floating values move with the owner's zone (up to ±14 h); spans
/// are widened by a day so a zone change never hides a candidate.
const SPAN_SLACK: Duration = Duration::days(1);

/// What one import brings: parsed components with their original text.
#[derive(Debug, Default, Clone)]
pub struct ImportSet {
    pub events: Vec<(EventComponent, String)>,
    pub todos: Vec<(Task, String)>,
    /// `(TZID, raw VTIMEZONE)`.
    pub timezones: Vec<(String, String)>,
}

/// Whether components missing from the source are removed from the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportMode {
    /// Add and update; never remove.
    Merge,
    /// Make the store match the source: what came from it before and is no
    /// longer in it is removed.
    Sync,
}

/// Counts of what an import changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    pub events_added: usize,
    pub events_updated: usize,
    pub events_removed: usize,
    pub tasks_added: usize,
    pub tasks_updated: usize,
    pub tasks_removed: usize,
}

/// The key that tells a series master ("") from each override of it. Two
/// spellings of the same instant (UTC vs TZID) give the same key, so a
/// re-import updates instead of duplicating.
pub(crate) fn recurrence_key(rid: Option<&RecurrenceId>) -> String {
    match rid.map(|r| r.time) {
        None => String::new(),
        Some(IcalTime::Date(d)) => format!("D:{}", d.format("%Y%m%d")),
        Some(IcalTime::Floating(n)) => format!("F:{}", n.format("%Y%m%dT%H%M%S")),
        Some(t @ (IcalTime::Utc(_) | IcalTime::Zoned { .. })) => {
            format!("U:{}", t.to_utc(Tz::UTC).timestamp())
        }
    }
}

/// A generous UTC bound of the time this component can touch; `None` end
/// means unbounded (a recurring master or a THISANDFUTURE override).
fn component_span(c: &EventComponent) -> (i64, Option<i64>) {
    // Any zone works for the bound: SPAN_SLACK covers the owner's offset.
    let start = c.start.to_utc(Tz::UTC);
    let mut lo = start;
    if let Some(rid) = &c.recurrence_id {
        lo = lo.min(rid.time.to_utc(Tz::UTC));
    }
    for r in &c.rdates {
        lo = lo.min(r.start.to_utc(Tz::UTC));
    }
    let unbounded =
        !c.rrules.is_empty() || c.recurrence_id.as_ref().is_some_and(|r| r.this_and_future);
    let hi = if unbounded {
        None
    } else {
        let length = match c.end {
            EventEnd::Unspecified => Duration::days(1),
            EventEnd::End(end) => (end.to_utc(Tz::UTC) - start).max(Duration::zero()),
            EventEnd::Duration(d) => {
                Duration::days(d.days.max(0)) + Duration::seconds(d.seconds.max(0))
            }
        };
        let mut last = start;
        for r in &c.rdates {
            let rs = r.start.to_utc(Tz::UTC);
            let re = r.end.map(|e| e.to_utc(Tz::UTC)).unwrap_or(rs);
            last = last.max(re.max(rs));
        }
        Some((last + length + SPAN_SLACK).timestamp())
    };
    ((lo - SPAN_SLACK).timestamp(), hi)
}

fn enum_text<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        _ => Err(StoreError::Corrupt {
            what: "enum value".into(),
            detail: "does not serialize to a string".into(),
        }),
    }
}

fn enum_from_text<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).map_err(|e| {
        StoreError::Corrupt {
            what: what.into(),
            detail: e.to_string(),
        }
    })
}

pub(super) type EventRow = (
    String,         // uid
    String,         // dtstart
    String,         // dtend
    Option<String>, // rrule
    String,         // rdates
    String,         // exdates
    Option<String>, // recurrence_id
    String,         // status
    String,         // transp
    String,         // class
    i64,            // sequence
    Option<String>, // summary
    Option<String>, // location
);

pub(super) const EVENT_COLUMNS: &str = "uid, dtstart, dtend, rrule, rdates, exdates, recurrence_id, status, transp, class, sequence, summary, location";

pub(super) fn decode_event(row: EventRow) -> Result<EventComponent, StoreError> {
    let (
        uid,
        dtstart,
        dtend,
        rrule,
        rdates,
        exdates,
        rid,
        status,
        transp,
        class,
        sequence,
        summary,
        location,
    ) = row;
    let what = format!("event {uid}");
    Ok(EventComponent {
        start: from_json(&what, &dtstart)?,
        end: from_json(&what, &dtend)?,
        rrules: match rrule {
            Some(r) => from_json(&what, &r)?,
            None => Vec::new(),
        },
        rdates: from_json(&what, &rdates)?,
        exdates: from_json(&what, &exdates)?,
        recurrence_id: match rid {
            Some(r) => Some(from_json(&what, &r)?),
            None => None,
        },
        status: enum_from_text(&what, &status)?,
        transparency: enum_from_text(&what, &transp)?,
        class: enum_from_text(&what, &class)?,
        sequence,
        summary,
        location,
        uid,
    })
}

/// The indexed horizon as stored in `meta`, with the zone it was built in.
#[derive(Debug, Clone, Copy)]
struct Horizon {
    range: TimeRange,
    tz: Tz,
    max_duration: i64,
}

async fn load_horizon(conn: &mut SqliteConnection) -> Result<Option<Horizon>, StoreError> {
    let (Some(start), Some(end), Some(tz), Some(maxd)) = (
        meta_get(conn, "horizon_start").await?,
        meta_get(conn, "horizon_end").await?,
        meta_get(conn, "horizon_tz").await?,
        meta_get(conn, "max_duration").await?,
    ) else {
        return Ok(None);
    };
    let parse = |s: &str| {
        s.parse::<i64>()
            .ok()
            .and_then(|t| DateTime::from_timestamp(t, 0))
    };
    let (Some(start), Some(end), Ok(tz), Ok(max_duration)) = (
        parse(&start),
        parse(&end),
        tz.parse::<Tz>(),
        maxd.parse::<i64>(),
    ) else {
        // A damaged cache entry is not an error: the index is rebuilt.
        return Ok(None);
    };
    Ok(TimeRange::new(start, end).map(|range| Horizon {
        range,
        tz,
        max_duration,
    }))
}

async fn load_series(
    conn: &mut SqliteConnection,
    uids: &[String],
) -> Result<Vec<EventSeries>, StoreError> {
    let mut components = Vec::new();
    for chunk in uids.chunks(500) {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new("SELECT ");
        q.push(EVENT_COLUMNS);
        q.push(" FROM events WHERE uid IN (");
        let mut sep = q.separated(", ");
        for uid in chunk {
            sep.push_bind(uid.clone());
        }
        q.push(") ORDER BY uid, recurrence_key");
        let rows: Vec<EventRow> = q.build_query_as().fetch_all(&mut *conn).await?;
        for row in rows {
            components.push(decode_event(row)?);
        }
    }
    Ok(EventSeries::group(components))
}

async fn all_uids(conn: &mut SqliteConnection) -> Result<Vec<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT DISTINCT uid FROM events ORDER BY uid")
            .fetch_all(conn)
            .await?,
    )
}

/// Writes the instances of `series` over `horizon` into `occurrences`;
/// returns the longest instance in seconds.
async fn materialize(
    conn: &mut SqliteConnection,
    series: &[EventSeries],
    horizon: TimeRange,
    tz: Tz,
) -> Result<i64, StoreError> {
    let mut longest = 0;
    let mut rows = Vec::new();
    for s in series {
        let instances = match expand_series(s, horizon, tz) {
            Ok(i) => i,
            // An unexpandable rule was refused at import; a stored one that
            // still fails (e.g. after a library change) blocks nothing rather
            // than breaking every query.
            Err(e) => {
                tracing::warn!(uid = %s.uid, error = %e, "series not indexed");
                continue;
            }
        };
        for i in instances {
            longest = longest.max(i.range.duration().num_seconds());
            rows.push(i);
        }
    }
    for chunk in rows.chunks(400) {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO occurrences (uid, start_utc, end_utc, recurrence_id_utc, status, transp, all_day, class, summary, location) ",
        );
        let mut err = None;
        q.push_values(chunk, |mut b, i| {
            let status = enum_text(&i.status);
            let transp = enum_text(&i.transparency);
            let class = enum_text(&i.details.class);
            match (status, transp, class) {
                (Ok(status), Ok(transp), Ok(class)) => {
                    b.push_bind(i.details.uid.clone())
                        .push_bind(i.range.start.timestamp())
                        .push_bind(i.range.end.timestamp())
                        .push_bind(i.recurrence_id.timestamp())
                        .push_bind(status)
                        .push_bind(transp)
                        .push_bind(i.all_day)
                        .push_bind(class)
                        .push_bind(i.details.summary.clone())
                        .push_bind(i.details.location.clone());
                }
                (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => err = Some(e),
            }
        });
        if let Some(e) = err {
            return Err(e);
        }
        q.build().execute(&mut *conn).await?;
    }
    Ok(longest)
}

fn horizon_for(now: DateTime<Utc>) -> TimeRange {
    let day = now.date_naive().and_time(chrono::NaiveTime::MIN).and_utc();
    TimeRange {
        start: day - HORIZON_PAST,
        end: day + HORIZON_AHEAD,
    }
}

/// Brings the occurrence index up to date for `changed` UIDs, or rebuilds it
/// whole when it is missing, was built for another zone, or has fallen behind `now`.
pub(super) async fn refresh_index(
    conn: &mut SqliteConnection,
    changed: &BTreeSet<String>,
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let current = load_horizon(conn).await?;
    let stale = match current {
        None => true,
        Some(h) => {
            h.tz != tz
                || now - HORIZON_PAST + HORIZON_SLACK < h.range.start
                || now + HORIZON_AHEAD - HORIZON_SLACK > h.range.end
        }
    };
    if stale {
        let horizon = horizon_for(now);
        sqlx::query("DELETE FROM occurrences")
            .execute(&mut *conn)
            .await?;
        let uids = all_uids(conn).await?;
        let series = load_series(conn, &uids).await?;
        let longest = materialize(conn, &series, horizon, tz).await?;
        meta_set(
            conn,
            "horizon_start",
            &horizon.start.timestamp().to_string(),
        )
        .await?;
        meta_set(conn, "horizon_end", &horizon.end.timestamp().to_string()).await?;
        meta_set(conn, "horizon_tz", tz.name()).await?;
        meta_set(conn, "max_duration", &longest.to_string()).await?;
        return Ok(());
    }
    let Some(h) = current else { return Ok(()) };
    let uids: Vec<String> = changed.iter().cloned().collect();
    for uid in &uids {
        sqlx::query("DELETE FROM occurrences WHERE uid = ?")
            .bind(uid.clone())
            .execute(&mut *conn)
            .await?;
    }
    let series = load_series(conn, &uids).await?;
    let longest = materialize(conn, &series, h.range, tz).await?;
    if longest > h.max_duration {
        meta_set(conn, "max_duration", &longest.to_string()).await?;
    }
    Ok(())
}

pub(super) async fn source_id(
    conn: &mut SqliteConnection,
    path: &str,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO sources (path, imported_at) VALUES (?1, ?2)
         ON CONFLICT(path) DO UPDATE SET imported_at = excluded.imported_at RETURNING id",
    )
    .bind(path.to_owned())
    .bind(now_text(now))
    .fetch_one(conn)
    .await?)
}

pub(super) async fn upsert_event(
    conn: &mut SqliteConnection,
    c: &EventComponent,
    raw: &str,
    source: Option<i64>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let key = recurrence_key(c.recurrence_id.as_ref());
    let existed: Option<i64> =
        sqlx::query_scalar("SELECT id FROM events WHERE uid = ? AND recurrence_key = ?")
            .bind(c.uid.clone())
            .bind(key.clone())
            .fetch_optional(&mut *conn)
            .await?;
    let (span_start, span_end) = component_span(c);
    sqlx::query(
        "INSERT INTO events (uid, recurrence_key, this_and_future, dtstart, dtend, rrule, rdates, exdates,
             recurrence_id, status, transp, class, sequence, summary, location, span_start_utc, span_end_utc,
             raw, source_id, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(uid, recurrence_key) DO UPDATE SET
             this_and_future = excluded.this_and_future, dtstart = excluded.dtstart, dtend = excluded.dtend,
             rrule = excluded.rrule, rdates = excluded.rdates, exdates = excluded.exdates,
             recurrence_id = excluded.recurrence_id, status = excluded.status, transp = excluded.transp,
             class = excluded.class, sequence = excluded.sequence, summary = excluded.summary,
             location = excluded.location, span_start_utc = excluded.span_start_utc,
             span_end_utc = excluded.span_end_utc, raw = excluded.raw,
             source_id = COALESCE(excluded.source_id, events.source_id), updated_at = excluded.updated_at",
    )
    .bind(c.uid.clone())
    .bind(key)
    .bind(c.recurrence_id.as_ref().is_some_and(|r| r.this_and_future))
    .bind(to_json(&c.start)?)
    .bind(to_json(&c.end)?)
    .bind(if c.rrules.is_empty() { None } else { Some(to_json(&c.rrules)?) })
    .bind(to_json(&c.rdates)?)
    .bind(to_json(&c.exdates)?)
    .bind(match &c.recurrence_id {
        Some(r) => Some(to_json(r)?),
        None => None,
    })
    .bind(enum_text(&c.status)?)
    .bind(enum_text(&c.transparency)?)
    .bind(enum_text(&c.class)?)
    .bind(c.sequence)
    .bind(c.summary.clone())
    .bind(c.location.clone())
    .bind(span_start)
    .bind(span_end)
    .bind(raw.to_owned())
    .bind(source)
    .bind(now_text(now))
    .execute(&mut *conn)
    .await?;
    Ok(existed.is_some())
}

impl Store {
    /// Imports one file's components in one transaction: either all of it
    /// lands or nothing does. `source` is the file's canonical path (`None`
    /// for components that come from nowhere in particular).
    pub async fn import(
        &self,
        set: &ImportSet,
        source: Option<&str>,
        mode: ImportMode,
        owner_tz: Tz,
        now: DateTime<Utc>,
    ) -> Result<ImportReport, StoreError> {
        let mut tx = self.write().await?;
        let mut report = ImportReport::default();
        let source_id = match source {
            Some(path) => Some(source_id(&mut tx, path, now).await?),
            None => None,
        };
        let mut changed = BTreeSet::new();
        for (tzid, raw) in &set.timezones {
            sqlx::query("INSERT INTO timezones (tzid, raw) VALUES (?, ?) ON CONFLICT(tzid) DO UPDATE SET raw = excluded.raw")
                .bind(tzid.clone())
                .bind(raw.clone())
                .execute(&mut *tx)
                .await?;
        }
        let mut kept_events = BTreeSet::new();
        for (component, raw) in &set.events {
            if upsert_event(&mut tx, component, raw, source_id, now).await? {
                report.events_updated += 1;
            } else {
                report.events_added += 1;
            }
            changed.insert(component.uid.clone());
            kept_events.insert((
                component.uid.clone(),
                recurrence_key(component.recurrence_id.as_ref()),
            ));
        }
        let mut kept_tasks = BTreeSet::new();
        for (task, raw) in &set.todos {
            if super::tasks::upsert_task(&mut tx, task, Some(raw), source_id, now).await? {
                report.tasks_updated += 1;
            } else {
                report.tasks_added += 1;
            }
            kept_tasks.insert(task.uid.clone());
        }
        if let (ImportMode::Sync, Some(sid)) = (mode, source_id) {
            let rows: Vec<(i64, String, String)> =
                sqlx::query_as("SELECT id, uid, recurrence_key FROM events WHERE source_id = ?")
                    .bind(sid)
                    .fetch_all(&mut *tx)
                    .await?;
            for (id, uid, key) in rows {
                if !kept_events.contains(&(uid.clone(), key)) {
                    sqlx::query("DELETE FROM events WHERE id = ?")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    report.events_removed += 1;
                    changed.insert(uid);
                }
            }
            let rows: Vec<(i64, String)> =
                sqlx::query_as("SELECT id, uid FROM tasks WHERE source_id = ?")
                    .bind(sid)
                    .fetch_all(&mut *tx)
                    .await?;
            for (id, uid) in rows {
                if !kept_tasks.contains(&uid) {
                    sqlx::query("DELETE FROM tasks WHERE id = ?")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    report.tasks_removed += 1;
                }
            }
        }
        refresh_index(&mut tx, &changed, owner_tz, now).await?;
        super::bump_version(&mut tx, super::CALENDAR_VERSION).await?;
        tx.commit().await?;
        Ok(report)
    }

    /// Rebuilds the occurrence index if it was built for another zone or has
    /// fallen behind `now` (the running agent calls this daily).
    pub async fn refresh_index(&self, owner_tz: Tz, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        refresh_index(&mut tx, &BTreeSet::new(), owner_tz, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every series in the store.
    pub async fn all_series(&self) -> Result<Vec<EventSeries>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let uids = all_uids(&mut conn).await?;
        load_series(&mut conn, &uids).await
    }

    /// Every non-cancelled instance overlapping `window`, sorted by start:
    /// from the occurrence index where the window lies inside its horizon,
    /// expanded on demand elsewhere.
    pub async fn instances(
        &self,
        window: TimeRange,
        owner_tz: Tz,
    ) -> Result<Vec<Instance>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let (inside, outside) = split_by_horizon(&mut conn, window, owner_tz).await?;
        let mut out = match inside {
            Some((part, max_duration)) => indexed_instances(&mut conn, part, max_duration).await?,
            None => Vec::new(),
        };
        out.extend(expand_on_demand(&mut conn, &outside, owner_tz).await?);
        out.sort_by(instance_order);
        // An instance that straddles the horizon's edge is found by both paths.
        out.dedup_by(|a, b| {
            a.details.uid == b.details.uid
                && a.recurrence_id == b.recurrence_id
                && a.range == b.range
        });
        Ok(out)
    }

    /// Merged busy time in `window` (see `calendar::availability::merge_busy`).
    /// The hot path of every free/busy answer: inside the horizon it reads
    /// only the blocking occurrences' times, through a covering index.
    pub async fn busy(
        &self,
        window: TimeRange,
        owner_tz: Tz,
    ) -> Result<Vec<BusyInterval>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let items = busy_items(&mut conn, window, owner_tz, None).await?;
        Ok(merge_busy_ranges(items, window))
    }

    /// The raw texts to export: VTIMEZONEs, VEVENTs, and imported VTODOs.
    pub async fn export_parts(&self) -> Result<(Vec<String>, Vec<String>), StoreError> {
        let tzs: Vec<String> = sqlx::query_scalar("SELECT raw FROM timezones ORDER BY tzid")
            .fetch_all(&self.pool)
            .await?;
        let events: Vec<String> =
            sqlx::query_scalar("SELECT raw FROM events ORDER BY uid, recurrence_key")
                .fetch_all(&self.pool)
                .await?;
        Ok((tzs, events))
    }

    /// How many event components and materialized occurrences are stored.
    pub async fn event_counts(&self) -> Result<(i64, i64), StoreError> {
        let events = sqlx::query_scalar("SELECT COUNT(*) FROM events")
            .fetch_one(&self.pool)
            .await?;
        let occ = sqlx::query_scalar("SELECT COUNT(*) FROM occurrences")
            .fetch_one(&self.pool)
            .await?;
        Ok((events, occ))
    }
}

/// The blocking (busy or tentative) instance ranges overlapping `window`,
/// unmerged: from the occurrence index inside its horizon, expanded on
/// demand outside it. `except_uid` leaves out one series (a meeting being
/// moved does not block its own new time).
pub(super) async fn busy_items(
    conn: &mut SqliteConnection,
    window: TimeRange,
    owner_tz: Tz,
    except_uid: Option<&str>,
) -> Result<Vec<(TimeRange, BusyStatus)>, StoreError> {
    let (inside, outside) = split_by_horizon(conn, window, owner_tz).await?;
    let mut items: Vec<(TimeRange, BusyStatus)> = Vec::new();
    if let Some((part, max_duration)) = inside {
        let lo = part.start.timestamp() - max_duration;
        let rows: Vec<(i64, i64, String)> = match except_uid {
            // The hot path: the covering index answers without the table rows.
            None => {
                sqlx::query_as(
                    "SELECT start_utc, end_utc, status FROM occurrences
                     WHERE start_utc >= ?1 AND start_utc < ?2 AND end_utc > ?3 AND transp = 'opaque'",
                )
                .bind(lo)
                .bind(part.end.timestamp())
                .bind(part.start.timestamp())
                .fetch_all(&mut *conn)
                .await?
            }
            Some(uid) => {
                sqlx::query_as(
                    "SELECT start_utc, end_utc, status FROM occurrences
                     WHERE start_utc >= ?1 AND start_utc < ?2 AND end_utc > ?3 AND transp = 'opaque'
                       AND uid <> ?4",
                )
                .bind(lo)
                .bind(part.end.timestamp())
                .bind(part.start.timestamp())
                .bind(uid.to_owned())
                .fetch_all(&mut *conn)
                .await?
            }
        };
        for (start, end, status) in rows {
            let (Some(start), Some(end)) = (
                DateTime::from_timestamp(start, 0),
                DateTime::from_timestamp(end, 0),
            ) else {
                continue;
            };
            let status = if status == "tentative" {
                BusyStatus::Tentative
            } else {
                BusyStatus::Busy
            };
            items.push((TimeRange { start, end }, status));
        }
    }
    for i in expand_on_demand(conn, &outside, owner_tz).await? {
        if except_uid.is_some_and(|u| u == i.details.uid) {
            continue;
        }
        if let Some(status) = i.busy_status() {
            items.push((i.range, status));
        }
    }
    Ok(items)
}

/// Splits `window` into the part the occurrence index answers (with the
/// longest indexed instance, to know how far back to look) and the parts
/// outside the horizon, which are expanded on demand.
async fn split_by_horizon(
    conn: &mut SqliteConnection,
    window: TimeRange,
    owner_tz: Tz,
) -> Result<(Option<(TimeRange, i64)>, Vec<TimeRange>), StoreError> {
    let horizon = load_horizon(conn).await?.filter(|h| h.tz == owner_tz);
    let Some((h, inside)) = horizon.and_then(|h| window.intersect(&h.range).map(|i| (h, i))) else {
        return Ok((None, vec![window]));
    };
    let outside = [
        TimeRange::new(window.start, inside.start),
        TimeRange::new(inside.end, window.end),
    ]
    .into_iter()
    .flatten()
    .filter(|r| !r.is_empty())
    .collect();
    Ok((Some((inside, h.max_duration)), outside))
}

/// Expands, for each part, the stored series whose span can reach it.
async fn expand_on_demand(
    conn: &mut SqliteConnection,
    parts: &[TimeRange],
    owner_tz: Tz,
) -> Result<Vec<Instance>, StoreError> {
    let mut out = Vec::new();
    for part in parts {
        let uids: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT uid FROM events WHERE span_start_utc < ?1 AND (span_end_utc IS NULL OR span_end_utc > ?2)",
        )
        .bind(part.end.timestamp())
        .bind(part.start.timestamp())
        .fetch_all(&mut *conn)
        .await?;
        for series in load_series(conn, &uids).await? {
            match expand_series(&series, *part, owner_tz) {
                Ok(instances) => out.extend(instances),
                Err(e) => tracing::warn!(uid = %series.uid, error = %e, "series skipped"),
            }
        }
    }
    Ok(out)
}

type OccurrenceRow = (
    String,
    i64,
    i64,
    i64,
    String,
    String,
    bool,
    String,
    Option<String>,
    Option<String>,
);

async fn indexed_instances(
    conn: &mut SqliteConnection,
    window: TimeRange,
    max_duration: i64,
) -> Result<Vec<Instance>, StoreError> {
    let rows: Vec<OccurrenceRow> = sqlx::query_as(
        "SELECT uid, start_utc, end_utc, recurrence_id_utc, status, transp, all_day, class, summary, location
         FROM occurrences WHERE start_utc >= ?1 AND start_utc < ?2 ORDER BY start_utc",
    )
    .bind(window.start.timestamp() - max_duration)
    .bind(window.end.timestamp())
    .fetch_all(conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for (uid, start, end, rid, status, transp, all_day, class, summary, location) in rows {
        let what = format!("occurrence of {uid}");
        let ts = |t: i64| {
            DateTime::from_timestamp(t, 0).ok_or_else(|| StoreError::Corrupt {
                what: what.clone(),
                detail: format!("timestamp {t} out of range"),
            })
        };
        let range = TimeRange::new(ts(start)?, ts(end)?).ok_or_else(|| StoreError::Corrupt {
            what: what.clone(),
            detail: "ends before it starts".into(),
        })?;
        let overlaps =
            range.overlaps(&window) || (range.is_empty() && window.contains(range.start));
        if !overlaps {
            continue;
        }
        out.push(Instance {
            range,
            status: enum_from_text(&what, &status)?,
            transparency: enum_from_text(&what, &transp)?,
            all_day,
            recurrence_id: ts(rid)?,
            details: Arc::new(InstanceDetails {
                class: enum_from_text(&what, &class)?,
                uid,
                summary,
                location,
            }),
        });
    }
    Ok(out)
}
