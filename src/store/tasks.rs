//! The owner's task list (VTODO), with short stable ids.

use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;

use super::{Store, from_json, now_text, to_json};
use crate::domain::{Task, TaskStatus};
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
