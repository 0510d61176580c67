//! Requests between agents: the replies we gave (for idempotent replay) and
//! the requests we sent (the outbox).

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;

use super::Store;
use crate::error::StoreError;

/// A request of ours waiting for (or done with) its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    pub request_id: String,
    pub peer: String,
    pub payload: String,
    pub purpose: String,
    pub created: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    pub attempts: i64,
    pub state: String,
    pub reply: Option<String>,
}

impl OutboxItem {
    /// A request about to be sent for the first time: waiting, no attempts,
    /// no reply. `payload` is the request element's text, `purpose` what
    /// the caller needs to tell its owner about it later (JSON).
    pub fn waiting(
        request_id: impl Into<String>,
        peer: impl Into<String>,
        payload: String,
        purpose: String,
        created: DateTime<Utc>,
        deadline: DateTime<Utc>,
    ) -> Self {
        Self {
            request_id: request_id.into(),
            peer: peer.into(),
            payload,
            purpose,
            created,
            deadline,
            attempts: 0,
            state: "waiting".into(),
            reply: None,
        }
    }
}

type OutboxRow = (
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    String,
    Option<String>,
);

fn decode(r: OutboxRow) -> OutboxItem {
    let ts = |t: i64| DateTime::from_timestamp(t, 0).unwrap_or_default();
    OutboxItem {
        request_id: r.0,
        peer: r.1,
        payload: r.2,
        purpose: r.3,
        created: ts(r.4),
        deadline: ts(r.5),
        attempts: r.6,
        state: r.7,
        reply: r.8,
    }
}

const OUTBOX_COLUMNS: &str = "SELECT request_id, peer, payload, purpose, created_utc, deadline_utc, attempts, state, reply FROM outbox";

impl Store {
    /// The reply remembered for `(peer, request_id)`: `(digest, reply)`.
    pub async fn recall_reply(
        &self,
        peer: &str,
        request_id: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT digest, reply FROM peer_requests WHERE peer = ? AND request_id = ?",
        )
        .bind(peer.to_owned())
        .bind(request_id.to_owned())
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Remembers the reply given to `(peer, request_id)`; a second call for
    /// the same key keeps the first reply.
    pub async fn remember_reply(
        &self,
        peer: &str,
        request_id: &str,
        digest: &str,
        reply: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT OR IGNORE INTO peer_requests (peer, request_id, digest, reply, answered_utc) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(peer.to_owned())
        .bind(request_id.to_owned())
        .bind(digest.to_owned())
        .bind(reply.to_owned())
        .bind(now.timestamp())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Calls `each` with every remembered `(peer, request_id, answered_utc)`
    /// answered at or after `since`, one row at a time (a day at load-test
    /// rates is millions of rows): what a running agent's in-memory replay
    /// index starts from. Returns how many there were.
    pub async fn each_remembered_key(
        &self,
        since: DateTime<Utc>,
        mut each: impl FnMut(&str, &str, i64),
    ) -> Result<u64, StoreError> {
        let mut rows = sqlx::query_as::<_, (String, String, i64)>(
            "SELECT peer, request_id, answered_utc FROM peer_requests WHERE answered_utc >= ?",
        )
        .bind(since.timestamp())
        .fetch(&self.pool);
        let mut n = 0;
        while let Some((peer, request_id, at)) = rows.try_next().await? {
            each(&peer, &request_id, at);
            n += 1;
        }
        Ok(n)
    }

    /// Forgets replies older than `before` (the protocol promises 24 hours).
    pub async fn forget_replies(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM peer_requests WHERE answered_utc < ?")
                .bind(before.timestamp())
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    /// Persists a request before it is sent.
    pub async fn enqueue(&self, item: &OutboxItem) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO outbox (request_id, peer, payload, purpose, created_utc, deadline_utc, attempts, state)
             VALUES (?, ?, ?, ?, ?, ?, 0, 'waiting')",
        )
        .bind(item.request_id.clone())
        .bind(item.peer.clone())
        .bind(item.payload.clone())
        .bind(item.purpose.clone())
        .bind(item.created.timestamp())
        .bind(item.deadline.timestamp())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Counts one more sending of `request_id`.
    pub async fn mark_attempt(&self, request_id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE outbox SET attempts = attempts + 1 WHERE request_id = ?")
            .bind(request_id.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records the answer; `false` when the request was no longer waiting
    /// (answered before, or expired), so a late reply changes nothing.
    pub async fn complete(&self, request_id: &str, reply: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE outbox SET state = 'answered', reply = ? WHERE request_id = ? AND state = 'waiting'")
            .bind(reply.to_owned())
            .bind(request_id.to_owned())
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(done == 1)
    }

    /// Requests still waiting for `peer` (to re-send when it comes online).
    pub async fn waiting_for(&self, peer: &str) -> Result<Vec<OutboxItem>, StoreError> {
        let rows: Vec<OutboxRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{OUTBOX_COLUMNS} WHERE peer = ? COLLATE NOCASE AND state = 'waiting' ORDER BY created_utc"
        )))
        .bind(peer.to_owned())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(decode).collect())
    }

    /// Every waiting request, oldest first (for a restart).
    pub async fn all_waiting(&self) -> Result<Vec<OutboxItem>, StoreError> {
        let rows: Vec<OutboxRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{OUTBOX_COLUMNS} WHERE state = 'waiting' ORDER BY created_utc"
        )))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(decode).collect())
    }

    /// Marks the waiting requests whose deadline passed as expired and
    /// returns them, so the owner can be told once.
    pub async fn expire_due(&self, now: DateTime<Utc>) -> Result<Vec<OutboxItem>, StoreError> {
        let mut tx = self.write().await?;
        let rows: Vec<OutboxRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{OUTBOX_COLUMNS} WHERE state = 'waiting' AND deadline_utc <= ? ORDER BY created_utc"
        )))
        .bind(now.timestamp())
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE outbox SET state = 'expired' WHERE state = 'waiting' AND deadline_utc <= ?",
        )
        .bind(now.timestamp())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(decode).collect())
    }

    /// Forgets what finished before `before`: outbox entries answered or
    /// expired (by their deadline), pending approvals decided or expired,
    /// and meeting orders started or rejected. Waiting ones are never
    /// touched. Returns how many rows went, all tables together.
    pub async fn forget_finished(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let before = before.timestamp();
        let mut tx = self.write().await?;
        let mut gone = 0;
        for sql in [
            "DELETE FROM outbox WHERE state <> 'waiting' AND deadline_utc < ?",
            "DELETE FROM pending WHERE state <> 'waiting' AND resolved_utc < ?",
            "DELETE FROM meeting_orders WHERE state <> 'requested' AND updated_utc < ?",
        ] {
            gone += sqlx::query(sql)
                .bind(before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(gone)
    }

    /// One outbox entry.
    pub async fn outbox_item(&self, request_id: &str) -> Result<Option<OutboxItem>, StoreError> {
        let row: Option<OutboxRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{OUTBOX_COLUMNS} WHERE request_id = ?"
        )))
        .bind(request_id.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(decode))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, deadline: i64) -> OutboxItem {
        OutboxItem {
            request_id: id.into(),
            peer: "bob.agent@example.org".into(),
            payload: "<freebusy/>".into(),
            purpose: "{}".into(),
            created: DateTime::from_timestamp(1_000, 0).unwrap_or_default(),
            deadline: DateTime::from_timestamp(deadline, 0).unwrap_or_default(),
            attempts: 0,
            state: "waiting".into(),
            reply: None,
        }
    }

    #[tokio::test]
    async fn a_request_is_answered_once_and_a_late_reply_changes_nothing() -> Result<(), StoreError>
    {
        let store = Store::open_in_memory().await?;
        store.enqueue(&item("r1", 2_000)).await?;
        store.enqueue(&item("r2", 1_500)).await?;
        assert_eq!(store.waiting_for("Bob.Agent@example.org").await?.len(), 2);
        assert!(store.complete("r1", "ok").await?);
        assert!(!store.complete("r1", "again").await?);
        let expired = store
            .expire_due(DateTime::from_timestamp(1_600, 0).unwrap_or_default())
            .await?;
        assert_eq!(
            expired
                .iter()
                .map(|i| i.request_id.as_str())
                .collect::<Vec<_>>(),
            ["r2"]
        );
        assert!(!store.complete("r2", "late").await?);
        assert!(store.all_waiting().await?.is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn finished_entries_are_forgotten_and_waiting_ones_kept() -> Result<(), StoreError> {
        let store = Store::open_in_memory().await?;
        let at = |t: i64| DateTime::from_timestamp(t, 0).unwrap_or_default();
        store.enqueue(&item("answered", 2_000)).await?;
        store.enqueue(&item("waiting", 2_000)).await?;
        store.enqueue(&item("answered-late", 9_000)).await?;
        store.complete("answered", "ok").await?;
        store.complete("answered-late", "ok").await?;
        let count = |sql: &'static str| {
            let pool = store.pool.clone();
            async move {
                sqlx::query_scalar::<_, i64>(sql)
                    .fetch_one(&pool)
                    .await
                    .unwrap_or(-1)
            }
        };
        sqlx::query(
            "INSERT INTO pending (peer, request_id, action, payload, description, created_utc, expires_utc, state, resolved_utc)
             VALUES ('a@x', 'p1', 'freebusy', '<x/>', 'd', 1000, 2000, 'approved', 1500),
                    ('a@x', 'p2', 'freebusy', '<x/>', 'd', 1000, 2000, 'waiting', NULL),
                    ('a@x', 'p3', 'freebusy', '<x/>', 'd', 1000, 9000, 'denied', 8000)",
        )
        .execute(&store.pool)
        .await?;
        sqlx::query(
            "INSERT INTO meeting_orders (order_json, created_utc, updated_utc, state)
             VALUES ('{}', 1000, 1500, 'started'), ('{}', 1000, 1500, 'requested'), ('{}', 1000, 8000, 'rejected')",
        )
        .execute(&store.pool)
        .await?;
        // Rows are gone in each table, finished before 5,000 only.
        assert_eq!(store.forget_finished(at(5_000)).await?, 3);
        assert_eq!(count("SELECT count(*) FROM outbox").await, 2);
        assert!(store.outbox_item("waiting").await?.is_some());
        assert!(store.outbox_item("answered").await?.is_none());
        assert_eq!(count("SELECT count(*) FROM pending").await, 2);
        assert_eq!(
            count("SELECT count(*) FROM pending WHERE state = 'waiting'").await,
            1
        );
        assert_eq!(count("SELECT count(*) FROM meeting_orders").await, 2);
        assert_eq!(store.forget_finished(at(5_000)).await?, 0);
        Ok(())
    }

    #[tokio::test]
    async fn a_remembered_reply_is_kept_and_replayed() -> Result<(), StoreError> {
        let store = Store::open_in_memory().await?;
        let now = DateTime::from_timestamp(10_000, 0).unwrap_or_default();
        store
            .remember_reply("carol@x", "q1", "d1", "first", now)
            .await?;
        store
            .remember_reply("carol@x", "q1", "d2", "second", now)
            .await?;
        assert_eq!(
            store.recall_reply("carol@x", "q1").await?,
            Some(("d1".into(), "first".into()))
        );
        assert_eq!(store.recall_reply("dave@x", "q1").await?, None);
        assert_eq!(
            store
                .forget_replies(now + chrono::Duration::seconds(1))
                .await?,
            1
        );
        Ok(())
    }
}
