//! Approvals (§14): peers' requests a rule routed to `ask`, kept until the
//! owner says `approve N` or `deny N`, or until they expire.

use chrono::{DateTime, Utc};

use super::{Store, instant};
use crate::error::StoreError;

/// A request to put before the owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPending {
    /// The requester's bare JID.
    pub peer: String,
    /// The requester's request-id, for the `<reply>` sent once decided.
    pub request_id: String,
    /// The policy action (`freebusy`, `propose-meeting`, `offer-task`).
    pub action: String,
    /// The request element, serialized, to perform if approved.
    pub payload: String,
    /// One line for the owner ("Bob's agent asks to hold Tue 10:00–10:30").
    pub description: String,
    pub expires: DateTime<Utc>,
}

/// Where a pending request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PendingState {
    Waiting,
    Approved,
    Denied,
    Expired,
}

impl PendingState {
    fn as_str(self) -> &'static str {
        match self {
            PendingState::Waiting => "waiting",
            PendingState::Approved => "approved",
            PendingState::Denied => "denied",
            PendingState::Expired => "expired",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "waiting" => Some(PendingState::Waiting),
            "approved" => Some(PendingState::Approved),
            "denied" => Some(PendingState::Denied),
            "expired" => Some(PendingState::Expired),
            _ => None,
        }
    }
}

/// A stored pending request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PendingItem {
    /// The number the owner types (`approve 3`).
    pub id: i64,
    pub peer: String,
    pub request_id: String,
    pub action: String,
    pub payload: String,
    pub description: String,
    pub created: DateTime<Utc>,
    pub expires: DateTime<Utc>,
    pub state: PendingState,
    pub resolved: Option<DateTime<Utc>>,
}

/// The answer to [`Store::resolve_pending`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveOutcome {
    /// Decided now (state approved or denied): perform it / send the refusal.
    Resolved(PendingItem),
    /// It had run out before the owner answered; it is now marked expired and
    /// the caller sends the "no answer" reply (`expire_pending` will not
    /// report it again).
    Expired(PendingItem),
    /// Decided or expired before; nothing to do.
    AlreadyClosed(PendingItem),
    /// No such number.
    Unknown,
}

type PendingRow = (
    i64,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    String,
    Option<i64>,
);

const PENDING_COLUMNS: &str = "SELECT id, peer, request_id, action, payload, description, created_utc, expires_utc, state, resolved_utc FROM pending";

fn decode(row: PendingRow) -> Result<PendingItem, StoreError> {
    let (id, peer, request_id, action, payload, description, created, expires, state, resolved) =
        row;
    let what = format!("pending request {id}");
    Ok(PendingItem {
        created: instant(&what, created)?,
        expires: instant(&what, expires)?,
        state: PendingState::parse(&state).ok_or_else(|| StoreError::Corrupt {
            what: what.clone(),
            detail: format!("unknown state {state}"),
        })?,
        resolved: resolved.map(|r| instant(&what, r)).transpose()?,
        id,
        peer,
        request_id,
        action,
        payload,
        description,
    })
}

async fn find(
    conn: &mut sqlx::SqliteConnection,
    id: i64,
) -> Result<Option<PendingItem>, StoreError> {
    let row: Option<PendingRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{PENDING_COLUMNS} WHERE id = ?"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(decode).transpose()
}

impl Store {
    /// Puts a request before the owner; returns its number. The same
    /// (peer, request-id) asked again — a retry — gets the number it got first.
    pub async fn add_pending(
        &self,
        item: &NewPending,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let mut tx = self.write().await?;
        let existing: Option<i64> =
            sqlx::query_scalar("SELECT id FROM pending WHERE peer = ? AND request_id = ?")
                .bind(item.peer.clone())
                .bind(item.request_id.clone())
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(id) = existing {
            return Ok(id);
        }
        let id = sqlx::query_scalar(
            "INSERT INTO pending (peer, request_id, action, payload, description, created_utc, expires_utc, state)
             VALUES (?, ?, ?, ?, ?, ?, ?, 'waiting') RETURNING id",
        )
        .bind(item.peer.clone())
        .bind(item.request_id.clone())
        .bind(item.action.clone())
        .bind(item.payload.clone())
        .bind(item.description.clone())
        .bind(now.timestamp())
        .bind(item.expires.timestamp())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The requests still waiting for the owner at `now`, oldest first.
    pub async fn pending_waiting(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<PendingItem>, StoreError> {
        let rows: Vec<PendingRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{PENDING_COLUMNS} WHERE state = 'waiting' AND expires_utc > ? ORDER BY id"
        )))
        .bind(now.timestamp())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(decode).collect()
    }

    /// Pending request number `id`, in whatever state.
    pub async fn pending_item(&self, id: i64) -> Result<Option<PendingItem>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        find(&mut conn, id).await
    }

    /// The owner's answer to request `id`: approved or denied, once.
    pub async fn resolve_pending(
        &self,
        id: i64,
        approve: bool,
        now: DateTime<Utc>,
    ) -> Result<ResolveOutcome, StoreError> {
        let mut tx = self.write().await?;
        let Some(mut item) = find(&mut tx, id).await? else {
            return Ok(ResolveOutcome::Unknown);
        };
        if item.state != PendingState::Waiting {
            return Ok(ResolveOutcome::AlreadyClosed(item));
        }
        let state = if item.expires <= now {
            PendingState::Expired
        } else if approve {
            PendingState::Approved
        } else {
            PendingState::Denied
        };
        sqlx::query("UPDATE pending SET state = ?, resolved_utc = ? WHERE id = ?")
            .bind(state.as_str())
            .bind(now.timestamp())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        item.state = state;
        item.resolved = Some(now);
        Ok(match state {
            PendingState::Expired => ResolveOutcome::Expired(item),
            _ => ResolveOutcome::Resolved(item),
        })
    }

    /// Marks the requests whose time ran out by `now` as expired and returns
    /// them (each once), so the runtime sends their "no answer" replies.
    pub async fn expire_pending(&self, now: DateTime<Utc>) -> Result<Vec<PendingItem>, StoreError> {
        let mut tx = self.write().await?;
        let rows: Vec<PendingRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{PENDING_COLUMNS} WHERE state = 'waiting' AND expires_utc <= ? ORDER BY id"
        )))
        .bind(now.timestamp())
        .fetch_all(&mut *tx)
        .await?;
        let mut items = rows
            .into_iter()
            .map(decode)
            .collect::<Result<Vec<_>, _>>()?;
        sqlx::query(
            "UPDATE pending SET state = 'expired', resolved_utc = ?1
             WHERE state = 'waiting' AND expires_utc <= ?1",
        )
        .bind(now.timestamp())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        for item in &mut items {
            item.state = PendingState::Expired;
            item.resolved = Some(now);
        }
        Ok(items)
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

    fn ask(request_id: &str, minutes: i64) -> NewPending {
        NewPending {
            peer: "bob-agent@example.org".into(),
            request_id: request_id.into(),
            action: "propose-meeting".into(),
            payload: "<hold xmlns='urn:x-attache:agent:0'/>".into(),
            description: "Bob's agent asks to hold Mon 10:00–10:30".into(),
            expires: now() + Duration::minutes(minutes),
        }
    }

    async fn store() -> Store {
        match Store::open_in_memory().await {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    #[tokio::test]
    async fn a_retried_request_is_the_same_question() {
        let s = store().await;
        let a = s.add_pending(&ask("r1", 10), now()).await;
        let again = s.add_pending(&ask("r1", 10), now()).await;
        let b = s.add_pending(&ask("r2", 10), now()).await;
        assert!(matches!((a, again, b), (Ok(1), Ok(1), Ok(2))));
        let waiting = s.pending_waiting(now()).await.unwrap_or_default();
        assert_eq!(waiting.iter().map(|p| p.id).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(waiting[0].state, PendingState::Waiting);
        assert_eq!(waiting[0].description, ask("r1", 10).description);
        assert!(matches!(s.pending_item(2).await, Ok(Some(p)) if p.request_id == "r2"));
        assert!(matches!(s.pending_item(3).await, Ok(None)));
    }

    #[tokio::test]
    async fn the_owner_decides_once() {
        let s = store().await;
        let _ = s.add_pending(&ask("r1", 10), now()).await;
        let _ = s.add_pending(&ask("r2", 10), now()).await;
        match s.resolve_pending(1, true, now()).await {
            Ok(ResolveOutcome::Resolved(p)) => {
                assert_eq!(p.state, PendingState::Approved);
                assert_eq!(p.resolved, Some(now()));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            s.resolve_pending(1, false, now()).await,
            Ok(ResolveOutcome::AlreadyClosed(p)) if p.state == PendingState::Approved
        ));
        assert!(matches!(
            s.resolve_pending(2, false, now()).await,
            Ok(ResolveOutcome::Resolved(p)) if p.state == PendingState::Denied
        ));
        assert!(matches!(
            s.resolve_pending(9, true, now()).await,
            Ok(ResolveOutcome::Unknown)
        ));
        assert!(
            s.pending_waiting(now())
                .await
                .unwrap_or_default()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn unanswered_requests_expire_once_and_late_answers_see_it() {
        let s = store().await;
        let _ = s.add_pending(&ask("r1", 5), now()).await;
        let _ = s.add_pending(&ask("r2", 30), now()).await;
        let _ = s.add_pending(&ask("r3", 5), now()).await;
        assert!(matches!(s.expire_pending(now()).await, Ok(v) if v.is_empty()));
        let later = now() + Duration::minutes(6);
        // The owner answers r3 too late: it expires now, reported to the caller.
        assert!(matches!(
            s.resolve_pending(3, true, later).await,
            Ok(ResolveOutcome::Expired(p)) if p.state == PendingState::Expired
        ));
        let expired = s.expire_pending(later).await.unwrap_or_default();
        assert_eq!(expired.iter().map(|p| p.id).collect::<Vec<_>>(), vec![1]);
        assert_eq!(expired[0].state, PendingState::Expired);
        assert!(matches!(s.expire_pending(later).await, Ok(v) if v.is_empty()));
        let waiting = s.pending_waiting(later).await.unwrap_or_default();
        assert_eq!(waiting.iter().map(|p| p.id).collect::<Vec<_>>(), vec![2]);
        assert!(matches!(s.pending_item(1).await, Ok(Some(p)) if p.state == PendingState::Expired));
    }
}
