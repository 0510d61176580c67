//! Meeting orders: `attache meet` asking the running agent to negotiate, and
//! how negotiations ended, kept for readers other than the owner's chat.
//!
//! The CLI has no XMPP session, so it writes an order and the agent (another
//! process) picks it up. Every state change is one conditional UPDATE, so a
//! CLI giving up on an order and an agent picking it up at the same moment
//! cannot both win. The order's text is opaque here: the agent's module
//! that writes it also reads it.

use chrono::{DateTime, Utc};

use super::{Store, instant};
use crate::error::StoreError;

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderState {
    /// Written by the CLI, not yet seen by an agent.
    Requested,
    /// An agent took it; `meeting_uid` names the negotiation once it began.
    Started,
    /// Nobody took it in time, or the agent could not start it (`error` says why).
    Rejected,
}

impl OrderState {
    fn as_str(self) -> &'static str {
        match self {
            OrderState::Requested => "requested",
            OrderState::Started => "started",
            OrderState::Rejected => "rejected",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "requested" => Some(OrderState::Requested),
            "started" => Some(OrderState::Started),
            "rejected" => Some(OrderState::Rejected),
            _ => None,
        }
    }
}

/// One order as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOrder {
    pub id: i64,
    /// The order as its writer serialized it.
    pub order_json: String,
    pub created: DateTime<Utc>,
    pub state: OrderState,
    /// The meeting's iCalendar UID once the negotiation began.
    pub meeting_uid: Option<String>,
    /// Why the order was rejected.
    pub error: Option<String>,
}

/// How a negotiation ended, as recorded by the organizer's agent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NegotiationEnd {
    /// The one line the owner was told ("Booked: …" / "Could not book …").
    pub line: Option<String>,
    /// Why it failed, in words ("Bob's agent is offline"); `None` when booked.
    pub failure_reason: Option<String>,
}

type OrderRow = (i64, String, i64, String, Option<String>, Option<String>);

const ORDER_COLUMNS: &str =
    "SELECT id, order_json, created_utc, state, meeting_uid, error FROM meeting_orders";

fn decode(row: OrderRow) -> Result<StoredOrder, StoreError> {
    let (id, order_json, created, state, meeting_uid, error) = row;
    Ok(StoredOrder {
        id,
        order_json,
        created: instant("meeting order", created)?,
        state: OrderState::parse(&state).ok_or_else(|| StoreError::Corrupt {
            what: format!("meeting order {id}"),
            detail: format!("unknown state '{state}'"),
        })?,
        meeting_uid,
        error,
    })
}

impl Store {
    /// Leaves an order for the running agent; returns its id.
    pub async fn add_meeting_order(
        &self,
        order_json: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let mut tx = self.write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO meeting_orders (order_json, created_utc, updated_utc, state)
             VALUES (?, ?, ?, 'requested') RETURNING id",
        )
        .bind(order_json.to_owned())
        .bind(now.timestamp())
        .bind(now.timestamp())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The order `id`, if there is one.
    pub async fn meeting_order(&self, id: i64) -> Result<Option<StoredOrder>, StoreError> {
        let row: Option<OrderRow> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{ORDER_COLUMNS} WHERE id = ?")))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(decode).transpose()
    }

    /// Orders no agent has taken yet, oldest first.
    pub async fn requested_meeting_orders(&self) -> Result<Vec<StoredOrder>, StoreError> {
        let rows: Vec<OrderRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{ORDER_COLUMNS} WHERE state = 'requested' ORDER BY id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(decode).collect()
    }

    /// Takes a requested order for negotiation: true when this caller got
    /// it, false when it was taken or rejected meanwhile.
    pub async fn take_meeting_order(
        &self,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let done = sqlx::query(
            "UPDATE meeting_orders SET state = ?, updated_utc = ? WHERE id = ? AND state = ?",
        )
        .bind(OrderState::Started.as_str())
        .bind(now.timestamp())
        .bind(id)
        .bind(OrderState::Requested.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(done == 1)
    }

    /// Notes which meeting a started order became.
    pub async fn set_meeting_order_uid(
        &self,
        id: i64,
        meeting_uid: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE meeting_orders SET meeting_uid = ?, updated_utc = ?
             WHERE id = ? AND state = 'started'",
        )
        .bind(meeting_uid.to_owned())
        .bind(now.timestamp())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Rejects an order that has not become a meeting (still requested, or
    /// taken but not started), saying why: true when it was rejected now,
    /// false when it had already been rejected or became a meeting.
    pub async fn reject_meeting_order(
        &self,
        id: i64,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let done = sqlx::query(
            "UPDATE meeting_orders SET state = 'rejected', error = ?, updated_utc = ?
             WHERE id = ? AND state IN ('requested', 'started') AND meeting_uid IS NULL",
        )
        .bind(error.to_owned())
        .bind(now.timestamp())
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(done == 1)
    }

    /// Records how the negotiation of meeting `uid` ended: the owner's line
    /// and, when it failed, why.
    pub async fn record_negotiation_end(
        &self,
        uid: &str,
        outcome: &NegotiationEnd,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE meetings SET outcome = ?, failure_reason = ?, updated_utc = ? WHERE uid = ?",
        )
        .bind(outcome.line.clone())
        .bind(outcome.failure_reason.clone())
        .bind(now.timestamp())
        .bind(uid.to_owned())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// How the negotiation of meeting `uid` ended, as far as recorded
    /// (empty while it runs, and for meetings organized elsewhere).
    pub async fn negotiation_end(&self, uid: &str) -> Result<NegotiationEnd, StoreError> {
        let row: Option<(Option<String>, Option<String>)> =
            sqlx::query_as("SELECT outcome, failure_reason FROM meetings WHERE uid = ?")
                .bind(uid.to_owned())
                .fetch_optional(&self.pool)
                .await?;
        Ok(row
            .map(|(line, failure_reason)| NegotiationEnd {
                line,
                failure_reason,
            })
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewMeeting;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000 + secs, 0).unwrap_or_default()
    }

    #[tokio::test]
    async fn an_order_is_taken_once_and_then_cannot_be_rejected() -> Result<(), StoreError> {
        let s = Store::open_in_memory().await?;
        let id = s.add_meeting_order("{\"x\":1}", at(0)).await?;
        let waiting = s.requested_meeting_orders().await?;
        assert_eq!(waiting.len(), 1);
        assert_eq!(waiting[0].order_json, "{\"x\":1}");
        assert_eq!(waiting[0].state, OrderState::Requested);

        assert!(s.take_meeting_order(id, at(1)).await?);
        assert!(!s.take_meeting_order(id, at(1)).await?, "taken twice");
        assert!(s.requested_meeting_orders().await?.is_empty());
        s.set_meeting_order_uid(id, "m1@attache", at(2)).await?;
        // The CLI giving up late changes nothing: the meeting runs.
        assert!(!s.reject_meeting_order(id, "too late", at(3)).await?);
        let order = s
            .meeting_order(id)
            .await?
            .ok_or(StoreError::NotFound("order".into()))?;
        assert_eq!(order.state, OrderState::Started);
        assert_eq!(order.meeting_uid.as_deref(), Some("m1@attache"));
        assert_eq!(order.error, None);
        Ok(())
    }

    #[tokio::test]
    async fn a_rejected_order_is_never_taken_and_keeps_its_reason() -> Result<(), StoreError> {
        let s = Store::open_in_memory().await?;
        let id = s.add_meeting_order("{}", at(0)).await?;
        assert!(
            s.reject_meeting_order(id, "no running agent", at(5))
                .await?
        );
        assert!(!s.take_meeting_order(id, at(6)).await?);
        assert!(!s.reject_meeting_order(id, "again", at(7)).await?);
        let order = s
            .meeting_order(id)
            .await?
            .ok_or(StoreError::NotFound("order".into()))?;
        assert_eq!(order.state, OrderState::Rejected);
        assert_eq!(order.error.as_deref(), Some("no running agent"));
        assert!(s.meeting_order(id + 1).await?.is_none());
        Ok(())
    }

    #[tokio::test]
    async fn a_failed_negotiation_keeps_its_reason() -> Result<(), StoreError> {
        let s = Store::open_in_memory().await?;
        let meeting = NewMeeting {
            uid: "m1@attache".into(),
            organizer: "alice.agent@example.org".into(),
            organizer_address: None,
            summary: "Sync".into(),
            sequence: 0,
            state_json: None,
            attendees: Vec::new(),
        };
        s.create_meeting(&meeting, at(0)).await?;
        assert_eq!(
            s.negotiation_end("m1@attache").await?,
            NegotiationEnd::default()
        );
        let outcome = NegotiationEnd {
            line: Some("Could not book Sync: Bob's agent is offline.".into()),
            failure_reason: Some("Bob's agent is offline".into()),
        };
        s.record_negotiation_end("m1@attache", &outcome, at(9))
            .await?;
        assert_eq!(s.negotiation_end("m1@attache").await?, outcome);
        assert_eq!(
            s.negotiation_end("other@attache").await?,
            NegotiationEnd::default()
        );
        Ok(())
    }
}
