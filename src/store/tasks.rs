//! The owner's task list (VTODO), with short stable ids, and the handoff of
//! tasks between agents (§13): on the offerer's side whom a task went to and
//! what they last reported; on the assignee's side where it came from.

use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;

use super::{Store, from_json, now_text, to_json};
use crate::domain::{IcalTime, Task, TaskPartStat, TaskStatus};
use crate::error::StoreError;

/// A task with the short id the owner types (`done 3`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StoredTask {
    pub id: i64,
    #[serde(flatten)]
    pub task: Task,
}

/// Inserts or updates a task by UID; returns whether it existed. `raw` is
/// the VTODO as imported (`None` when the task was made or changed here).
pub(super) async fn upsert_task(
    conn: &mut SqliteConnection,
    task: &Task,
    raw: Option<&str>,
    source: Option<i64>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let existed: Option<i64> = sqlx::query_scalar("SELECT id FROM tasks WHERE uid = ?")
        .bind(task.uid.clone())
        .fetch_optional(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO tasks (uid, summary, description, due, priority, status, percent_complete, completed_utc,
             delegated_to, delegated_from, sequence, raw, source_id, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(uid) DO UPDATE SET summary = excluded.summary, description = excluded.description,
             due = excluded.due, priority = excluded.priority, status = excluded.status,
             percent_complete = excluded.percent_complete, completed_utc = excluded.completed_utc,
             delegated_to = excluded.delegated_to, delegated_from = excluded.delegated_from,
             sequence = excluded.sequence, raw = excluded.raw,
             source_id = COALESCE(excluded.source_id, tasks.source_id), updated_at = excluded.updated_at",
    )
    .bind(task.uid.clone())
    .bind(task.summary.clone())
    .bind(task.description.clone())
    .bind(match &task.due {
        Some(d) => Some(to_json(d)?),
        None => None,
    })
    .bind(task.priority.map(i64::from))
    .bind(task.status.as_ical())
    .bind(task.percent_complete.map(i64::from))
    .bind(task.completed.map(|c| c.timestamp()))
    .bind(task.delegated_to.clone())
    .bind(task.delegated_from.clone())
    .bind(task.sequence)
    .bind(raw.map(str::to_owned))
    .bind(source)
    .bind(now_text(now))
    .bind(now_text(now))
    .execute(&mut *conn)
    .await?;
    Ok(existed.is_some())
}

type TaskRow = (
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    String,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<String>,
    i64,
    Option<String>,
);

fn decode_task(row: TaskRow) -> Result<(StoredTask, Option<String>), StoreError> {
    let (
        id,
        uid,
        summary,
        description,
        due,
        priority,
        status,
        percent,
        completed,
        to,
        from,
        sequence,
        raw,
    ) = row;
    let what = format!("task {id}");
    let task = Task {
        due: match due {
            Some(d) => Some(from_json(&what, &d)?),
            None => None,
        },
        priority: priority.and_then(|p| u8::try_from(p).ok()),
        status: TaskStatus::from_ical(&status).ok_or_else(|| StoreError::Corrupt {
            what: what.clone(),
            detail: format!("unknown status {status}"),
        })?,
        percent_complete: percent.and_then(|p| u8::try_from(p).ok()),
        completed: completed.and_then(|c| DateTime::from_timestamp(c, 0)),
        delegated_to: to,
        delegated_from: from,
        uid,
        summary,
        description,
        sequence,
    };
    Ok((StoredTask { id, task }, raw))
}

const TASK_COLUMNS: &str = "SELECT id, uid, summary, description, due, priority, status, percent_complete, completed_utc, delegated_to, delegated_from, sequence, raw FROM tasks";

impl Store {
    /// Adds a task made by the owner; returns its short id.
    pub async fn add_task(&self, task: &Task, now: DateTime<Utc>) -> Result<i64, StoreError> {
        let mut tx = self.write().await?;
        upsert_task(&mut tx, task, None, None, now).await?;
        let id = sqlx::query_scalar("SELECT id FROM tasks WHERE uid = ?")
            .bind(task.uid.clone())
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Tasks ordered by id; closed ones (completed, cancelled) only with `all`.
    pub async fn tasks(&self, all: bool) -> Result<Vec<StoredTask>, StoreError> {
        let rows: Vec<TaskRow> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{TASK_COLUMNS} ORDER BY id")))
                .fetch_all(&self.pool)
                .await?;
        let mut out = Vec::new();
        for row in rows {
            let (t, _) = decode_task(row)?;
            if all || t.task.status.is_open() {
                out.push(t);
            }
        }
        Ok(out)
    }

    /// Every task with its raw VTODO, if it is unchanged since import.
    pub async fn tasks_for_export(&self) -> Result<Vec<(Task, Option<String>)>, StoreError> {
        let rows: Vec<TaskRow> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{TASK_COLUMNS} ORDER BY uid")))
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|r| decode_task(r).map(|(t, raw)| (t.task, raw)))
            .collect()
    }

    /// Tasks handed to the owner by another agent (they have an origin)
    /// and changed at or after `since`, with their short ids, oldest change
    /// first: what `attache export --since` sends to the owner's task app.
    pub async fn received_tasks_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(i64, Task)>, StoreError> {
        let rows: Vec<TaskRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{TASK_COLUMNS} WHERE origin_agent IS NOT NULL AND updated_at >= ? ORDER BY updated_at, id"
        )))
        .bind(since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| decode_task(r).map(|(t, _)| (t.id, t.task)))
            .collect()
    }

    /// Marks task `id` completed at `now`; returns it.
    pub async fn complete_task(
        &self,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<StoredTask, StoreError> {
        let mut tx = self.write().await?;
        let row: Option<TaskRow> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{TASK_COLUMNS} WHERE id = ?")))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound(format!(
                "no task {id}: `attache tasks list` shows the ids"
            )));
        };
        let (mut stored, _) = decode_task(row)?;
        stored.task.status = TaskStatus::Completed;
        stored.task.percent_complete = Some(100);
        stored.task.completed = Some(now);
        stored.task.sequence += 1;
        upsert_task(&mut tx, &stored.task, None, None, now).await?;
        tx.commit().await?;
        Ok(stored)
    }
}

/// Where a task handed between agents stands. Empty for the owner's own tasks.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct TaskHandoff {
    /// Offerer's side: the agent the task was offered to.
    pub assignee_agent: Option<String>,
    /// Offerer's side: what the assignee last reported.
    pub remote_partstat: Option<TaskPartStat>,
    pub remote_percent: Option<u8>,
    /// The agent the task was delegated onward to (either side).
    pub delegatee_agent: Option<String>,
    /// Assignee's side: the agent that offered the task.
    pub origin_agent: Option<String>,
    /// Assignee's side: the offerer's UID of the task.
    pub origin_uid: Option<String>,
    /// Assignee's side: the agents that delegated it so far, oldest first.
    pub origin_chain: Vec<String>,
}

/// A task another agent offers the owner (§13 `<task-offer>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskOffer {
    /// The offering agent's bare JID.
    pub origin_agent: String,
    /// The offerer's UID of the task.
    pub origin_uid: String,
    pub summary: String,
    pub note: Option<String>,
    pub due: Option<DateTime<Utc>>,
    /// Who delegated it so far, oldest first.
    pub chain: Vec<String>,
}

/// The answer to [`Store::record_task_status`].
#[derive(Debug, Clone, PartialEq)]
pub enum RemoteStatusOutcome {
    /// Stored; the task and its handoff state as they are now.
    Recorded(Box<(StoredTask, TaskHandoff)>),
    /// The status came from an agent that is neither the assignee nor its
    /// recorded delegatee: answer forbidden.
    NotFromAssignee,
    /// No task with that UID was offered to anyone.
    Unknown,
}

type HandoffRow = (
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

async fn load_with_handoff(
    conn: &mut SqliteConnection,
    id: i64,
) -> Result<Option<(StoredTask, TaskHandoff)>, StoreError> {
    let row: Option<TaskRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("{TASK_COLUMNS} WHERE id = ?")))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(row) = row else { return Ok(None) };
    let (task, _) = decode_task(row)?;
    let h: HandoffRow = sqlx::query_as(
        "SELECT assignee_agent, remote_partstat, remote_percent, delegatee_agent, origin_agent,
             origin_uid, origin_chain FROM tasks WHERE id = ?",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    let what = format!("task {id}");
    let handoff = TaskHandoff {
        assignee_agent: h.0,
        remote_partstat: match h.1 {
            Some(p) => Some(
                TaskPartStat::from_ical(&p).ok_or_else(|| StoreError::Corrupt {
                    what: what.clone(),
                    detail: format!("unknown PARTSTAT {p}"),
                })?,
            ),
            None => None,
        },
        remote_percent: h.2.and_then(|p| u8::try_from(p).ok()),
        delegatee_agent: h.3,
        origin_agent: h.4,
        origin_uid: h.5,
        origin_chain: match h.6 {
            Some(c) => from_json(&what, &c)?,
            None => Vec::new(),
        },
    };
    Ok(Some((task, handoff)))
}

async fn id_by_uid(conn: &mut SqliteConnection, uid: &str) -> Result<Option<i64>, StoreError> {
    Ok(sqlx::query_scalar("SELECT id FROM tasks WHERE uid = ?")
        .bind(uid.to_owned())
        .fetch_optional(conn)
        .await?)
}

async fn require(
    conn: &mut SqliteConnection,
    id: i64,
) -> Result<(StoredTask, TaskHandoff), StoreError> {
    load_with_handoff(conn, id).await?.ok_or_else(|| {
        StoreError::NotFound(format!("no task {id}: `attache tasks list` shows the ids"))
    })
}

impl Store {
    /// Task `id` with its handoff state.
    pub async fn task_with_handoff(
        &self,
        id: i64,
    ) -> Result<Option<(StoredTask, TaskHandoff)>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        load_with_handoff(&mut conn, id).await
    }

    /// The task with UID `uid` (ours: the one we offered), with its handoff state.
    pub async fn task_by_uid(
        &self,
        uid: &str,
    ) -> Result<Option<(StoredTask, TaskHandoff)>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        match id_by_uid(&mut conn, uid).await? {
            Some(id) => load_with_handoff(&mut conn, id).await,
            None => Ok(None),
        }
    }

    /// The task made from `origin_agent`'s offer of its task `origin_uid`.
    pub async fn task_by_origin(
        &self,
        origin_agent: &str,
        origin_uid: &str,
    ) -> Result<Option<(StoredTask, TaskHandoff)>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let id: Option<i64> =
            sqlx::query_scalar("SELECT id FROM tasks WHERE origin_agent = ? AND origin_uid = ?")
                .bind(origin_agent.to_owned())
                .bind(origin_uid.to_owned())
                .fetch_optional(&mut *conn)
                .await?;
        match id {
            Some(id) => load_with_handoff(&mut conn, id).await,
            None => Ok(None),
        }
    }

    /// Offerer's side: records that task `id` was offered to `assignee_agent`
    /// (DELEGATED-TO), forgetting what an earlier assignee reported.
    pub async fn offer_task_to(
        &self,
        id: i64,
        assignee_agent: &str,
        now: DateTime<Utc>,
    ) -> Result<StoredTask, StoreError> {
        let mut tx = self.write().await?;
        let (mut stored, _) = require(&mut tx, id).await?;
        stored.task.delegated_to = Some(assignee_agent.to_owned());
        stored.task.sequence += 1;
        upsert_task(&mut tx, &stored.task, None, None, now).await?;
        sqlx::query(
            "UPDATE tasks SET assignee_agent = ?, remote_partstat = 'NEEDS-ACTION',
                 remote_percent = NULL, delegatee_agent = NULL WHERE id = ?",
        )
        .bind(assignee_agent.to_owned())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// Offerer's side: a `<task-status>` from `from_agent` about our task
    /// `uid`. Accepted only from the assignee or its recorded delegatee. A
    /// DELEGATED status records `delegated_to` as the delegatee; COMPLETED
    /// completes our copy; CANCELLED and DECLINED leave it open for the owner
    /// to decide.
    pub async fn record_task_status(
        &self,
        uid: &str,
        from_agent: &str,
        partstat: TaskPartStat,
        percent: Option<u8>,
        delegated_to: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<RemoteStatusOutcome, StoreError> {
        let mut tx = self.write().await?;
        let Some(id) = id_by_uid(&mut tx, uid).await? else {
            return Ok(RemoteStatusOutcome::Unknown);
        };
        let (mut stored, handoff) = require(&mut tx, id).await?;
        let Some(assignee) = &handoff.assignee_agent else {
            return Ok(RemoteStatusOutcome::Unknown);
        };
        let allowed = assignee.eq_ignore_ascii_case(from_agent)
            || handoff
                .delegatee_agent
                .as_deref()
                .is_some_and(|d| d.eq_ignore_ascii_case(from_agent));
        if !allowed {
            return Ok(RemoteStatusOutcome::NotFromAssignee);
        }
        let percent = percent.map(|p| p.min(100));
        let delegatee = match (partstat, delegated_to) {
            (TaskPartStat::Delegated, Some(d)) => Some(d.to_owned()),
            _ => handoff.delegatee_agent.clone(),
        };
        sqlx::query(
            "UPDATE tasks SET remote_partstat = ?, remote_percent = COALESCE(?, remote_percent),
                 delegatee_agent = ? WHERE id = ?",
        )
        .bind(partstat.as_ical())
        .bind(percent.map(i64::from))
        .bind(delegatee)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if partstat == TaskPartStat::Completed && stored.task.status != TaskStatus::Completed {
            stored.task.status = TaskStatus::Completed;
            stored.task.percent_complete = Some(100);
            stored.task.completed = Some(now);
            stored.task.sequence += 1;
            upsert_task(&mut tx, &stored.task, None, None, now).await?;
        } else if let Some(p) = percent.filter(|_| stored.task.status.is_open()) {
            stored.task.percent_complete = Some(p);
            upsert_task(&mut tx, &stored.task, None, None, now).await?;
        }
        let result = require(&mut tx, id).await?;
        tx.commit().await?;
        Ok(RemoteStatusOutcome::Recorded(Box::new(result)))
    }

    /// Assignee's side: the task for `offer`, made on first sight; the same
    /// offer again (same origin agent and task UID) finds the same task.
    /// Returns the task and whether it was made now.
    pub async fn task_from_offer(
        &self,
        offer: &TaskOffer,
        now: DateTime<Utc>,
    ) -> Result<(StoredTask, bool), StoreError> {
        let mut tx = self.write().await?;
        let existing: Option<i64> =
            sqlx::query_scalar("SELECT id FROM tasks WHERE origin_agent = ? AND origin_uid = ?")
                .bind(offer.origin_agent.clone())
                .bind(offer.origin_uid.clone())
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(id) = existing {
            let (task, _) = require(&mut tx, id).await?;
            return Ok((task, false));
        }
        let mut task = Task::new(offer.summary.clone(), offer.due.map(IcalTime::Utc), now);
        task.description = offer.note.clone();
        task.delegated_from = Some(offer.origin_agent.clone());
        upsert_task(&mut tx, &task, None, None, now).await?;
        let id: i64 = sqlx::query_scalar(
            "UPDATE tasks SET origin_agent = ?, origin_uid = ?, origin_chain = ? WHERE uid = ? RETURNING id",
        )
        .bind(offer.origin_agent.clone())
        .bind(offer.origin_uid.clone())
        .bind(to_json(&offer.chain)?)
        .bind(task.uid.clone())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((StoredTask { id, task }, true))
    }

    /// Assignee's side: the owner's progress on task `id` (status and
    /// percent), which the runtime then reports to the origin.
    pub async fn set_task_progress(
        &self,
        id: i64,
        status: TaskStatus,
        percent: Option<u8>,
        now: DateTime<Utc>,
    ) -> Result<StoredTask, StoreError> {
        let mut tx = self.write().await?;
        let (mut stored, _) = require(&mut tx, id).await?;
        stored.task.status = status;
        if let Some(p) = percent {
            stored.task.percent_complete = Some(p.min(100));
        }
        match status {
            TaskStatus::Completed => {
                stored.task.percent_complete = Some(100);
                stored.task.completed = stored.task.completed.or(Some(now));
            }
            _ => stored.task.completed = None,
        }
        stored.task.sequence += 1;
        upsert_task(&mut tx, &stored.task, None, None, now).await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// Either side: records the agent task `id` was delegated onward to
    /// (`None` when the delegation fell through).
    pub async fn set_task_delegatee(
        &self,
        id: i64,
        delegatee: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let n = sqlx::query("UPDATE tasks SET delegatee_agent = ?, updated_at = ? WHERE id = ?")
            .bind(delegatee.map(str::to_owned))
            .bind(now_text(now))
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "no task {id}: `attache tasks list` shows the ids"
            )));
        }
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0)
            .single()
            .unwrap_or_default()
    }

    const BOB: &str = "bob-agent@example.org";
    const DANA: &str = "dana-agent@example.org";

    async fn store() -> Store {
        match Store::open_in_memory().await {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    fn offer(uid: &str) -> TaskOffer {
        TaskOffer {
            origin_agent: "alice-agent@example.org".into(),
            origin_uid: uid.into(),
            summary: "Send the slides".into(),
            note: Some("the March version".into()),
            due: Some(now() + Duration::days(2)),
            chain: vec!["alice-agent@example.org".into()],
        }
    }

    #[tokio::test]
    async fn the_same_offer_twice_makes_one_task() {
        let s = store().await;
        let (first, made) = match s.task_from_offer(&offer("t1@alice"), now()).await {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        assert!(made);
        assert_eq!(first.task.summary, "Send the slides");
        assert_eq!(first.task.description.as_deref(), Some("the March version"));
        assert_eq!(
            first.task.due,
            Some(IcalTime::Utc(now() + Duration::days(2)))
        );
        assert_eq!(
            first.task.delegated_from.as_deref(),
            Some("alice-agent@example.org")
        );
        assert_ne!(
            first.task.uid, "t1@alice",
            "a remote UID never becomes ours"
        );
        let again = s.task_from_offer(&offer("t1@alice"), now()).await;
        assert!(matches!(again, Ok((t, false)) if t.id == first.id));
        let other = s.task_from_offer(&offer("t2@alice"), now()).await;
        assert!(matches!(other, Ok((t, true)) if t.id != first.id));
        assert_eq!(s.tasks(true).await.unwrap_or_default().len(), 2);
        match s
            .task_by_origin("ALICE-agent@example.org", "t1@alice")
            .await
        {
            Ok(Some((t, h))) => {
                assert_eq!(t.id, first.id);
                assert_eq!(h.origin_uid.as_deref(), Some("t1@alice"));
                assert_eq!(h.origin_chain, vec!["alice-agent@example.org".to_owned()]);
                assert_eq!(h.assignee_agent, None);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            s.task_by_origin("alice-agent@example.org", "t9").await,
            Ok(None)
        ));
    }

    #[tokio::test]
    async fn the_assignee_records_progress_and_delegation() {
        let s = store().await;
        let (t, _) = match s.task_from_offer(&offer("t1@alice"), now()).await {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        let p = s
            .set_task_progress(t.id, TaskStatus::InProcess, Some(40), now())
            .await;
        assert!(
            matches!(&p, Ok(p) if p.task.status == TaskStatus::InProcess && p.task.percent_complete == Some(40))
        );
        let done = s
            .set_task_progress(t.id, TaskStatus::Completed, None, now())
            .await;
        assert!(
            matches!(&done, Ok(p) if p.task.percent_complete == Some(100) && p.task.completed == Some(now()))
        );
        assert!(s.set_task_delegatee(t.id, Some(DANA), now()).await.is_ok());
        assert!(matches!(
            s.task_with_handoff(t.id).await,
            Ok(Some((_, h))) if h.delegatee_agent.as_deref() == Some(DANA)
        ));
        assert!(s.set_task_delegatee(999, None, now()).await.is_err());
        assert!(
            s.set_task_progress(999, TaskStatus::Completed, None, now())
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn the_offerer_hears_only_from_its_assignee_or_the_delegatee() {
        let s = store().await;
        let task = Task::new("Book the room", None, now());
        let id = match s.add_task(&task, now()).await {
            Ok(id) => id,
            Err(e) => panic!("{e}"),
        };
        let offered = s.offer_task_to(id, BOB, now()).await;
        assert!(matches!(&offered, Ok(t) if t.task.delegated_to.as_deref() == Some(BOB)));
        let from_eve = s
            .record_task_status(
                &task.uid,
                "eve@example.org",
                TaskPartStat::Completed,
                None,
                None,
                now(),
            )
            .await;
        assert!(matches!(from_eve, Ok(RemoteStatusOutcome::NotFromAssignee)));
        let accepted = s
            .record_task_status(
                &task.uid,
                BOB,
                TaskPartStat::Accepted,
                Some(10),
                None,
                now(),
            )
            .await;
        match accepted {
            Ok(RemoteStatusOutcome::Recorded(r)) => {
                let (t, h) = *r;
                assert_eq!(h.remote_partstat, Some(TaskPartStat::Accepted));
                assert_eq!(h.remote_percent, Some(10));
                assert_eq!(t.task.percent_complete, Some(10));
                assert!(t.task.status.is_open());
            }
            other => panic!("{other:?}"),
        }
        let delegated = s
            .record_task_status(
                &task.uid,
                BOB,
                TaskPartStat::Delegated,
                None,
                Some(DANA),
                now(),
            )
            .await;
        assert!(
            matches!(delegated, Ok(RemoteStatusOutcome::Recorded(r)) if r.1.delegatee_agent.as_deref() == Some(DANA) && r.1.remote_percent == Some(10))
        );
        let completed = s
            .record_task_status(
                &task.uid,
                DANA,
                TaskPartStat::Completed,
                Some(100),
                None,
                now(),
            )
            .await;
        match completed {
            Ok(RemoteStatusOutcome::Recorded(r)) => {
                let (t, h) = *r;
                assert_eq!(t.task.status, TaskStatus::Completed);
                assert_eq!(h.remote_partstat, Some(TaskPartStat::Completed));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            s.record_task_status("nope", BOB, TaskPartStat::Accepted, None, None, now())
                .await,
            Ok(RemoteStatusOutcome::Unknown)
        ));
        // A task never offered to anyone takes no status either.
        let own = Task::new("Mine", None, now());
        let _ = s.add_task(&own, now()).await;
        assert!(matches!(
            s.record_task_status(&own.uid, BOB, TaskPartStat::Accepted, None, None, now())
                .await,
            Ok(RemoteStatusOutcome::Unknown)
        ));
        assert!(matches!(s.task_by_uid(&task.uid).await, Ok(Some((t, _))) if t.id == id));
    }
}
