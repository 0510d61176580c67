//! Group commit for the disclosure log: every decision an agent makes about
//! a peer's request is written here before its answer may leave.
//!
//! One writer task owns a connection of its own (not one of the pool's, so
//! no pool checkout, no liveness ping before and after every write) and
//! writes whatever decisions are waiting as ONE statement: one round trip to
//! SQLite's worker thread and one commit for a whole batch. A lone request
//! waits for nobody — a batch is simply what queued up while the previous
//! write was in flight — so a quiet agent answers as fast as before while a
//! busy one writes dozens of decisions per commit.
//!
//! Nothing is acknowledged before its commit: each caller gets its entry's
//! number only once the statement that holds it has committed, and a failed
//! statement fails every decision in it (none of them is written). The
//! chain (prev_hash → hash) is computed here, in the order the batch is
//! written; the database's triggers still refuse an entry built on a stale
//! head, e.g. when a CLI in another process wrote meanwhile, and the batch
//! is then rebuilt on the real head.

use std::sync::{Arc, Mutex};

use sqlx::{Connection, SqliteConnection, sqlite::SqliteConnectOptions};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use super::lock;
use crate::audit::{AuditEntry, GENESIS_HASH, entry_hash};
use crate::error::StoreError;

/// At most this many decisions per statement: 17 bound values each, far
/// under SQLite's limit on variables, and a statement that stays small
/// enough that one slow batch does not stall the next for long.
const MAX_BATCH: usize = 64;

/// How many decisions may wait for the writer before callers wait to queue.
const QUEUE: usize = 1024;

/// How often a batch is rebuilt on a head another writer moved.
const HEAD_RETRIES: usize = 5;

/// The message the `audit_log_extends_head` trigger aborts with.
pub(super) const HEAD_MOVED: &str = "audit chain head moved";

/// The head of the chain as this process last wrote or read it.
pub(super) type Head = Arc<Mutex<Option<(i64, String)>>>;

/// A decision and, optionally, the reply remembered for its replay.
pub(super) struct Record {
    pub entry: AuditEntry,
    pub replay: Option<OwnedReplay>,
}

/// [`super::ReplayRecord`], owned, to travel to the writer.
pub(super) struct OwnedReplay {
    pub peer: String,
    pub request_id: String,
    pub digest: String,
    pub reply: String,
}

enum Message {
    Write(Box<Record>, oneshot::Sender<Result<i64, String>>),
    Close(oneshot::Sender<()>),
}

/// The handle on the writer task.
#[derive(Debug)]
pub(super) struct DecisionWriter {
    queue: mpsc::Sender<Message>,
}

/// A decision handed to the writer: [`Committed::wait`] says when (and
/// whether) it is in the log.
pub struct Committed {
    state: CommitState,
}

enum CommitState {
    Waiting(oneshot::Receiver<Result<i64, String>>),
    Done(Result<i64, StoreError>),
}

impl Committed {
    pub(super) fn done(result: Result<i64, StoreError>) -> Self {
        Self {
            state: CommitState::Done(result),
        }
    }

    /// The entry's number once committed; an error if it was not written.
    pub async fn wait(self) -> Result<i64, StoreError> {
        match self.state {
            CommitState::Done(result) => result,
            CommitState::Waiting(rx) => match rx.await {
                Ok(Ok(seq)) => Ok(seq),
                Ok(Err(message)) => Err(StoreError::LogWrite(message)),
                Err(_) => Err(StoreError::LogWrite(
                    "the disclosure log's writer stopped".into(),
                )),
            },
        }
    }
}

impl DecisionWriter {
    /// Starts the writer; it connects on its first batch.
    pub(super) fn start(options: SqliteConnectOptions, head: Head) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(options, head, rx));
        Self { queue }
    }

    /// Queues `record`; the returned handle resolves once it is committed.
    pub(super) async fn submit(&self, record: Record) -> Committed {
        let (tx, rx) = oneshot::channel();
        if self
            .queue
            .send(Message::Write(Box::new(record), tx))
            .await
            .is_err()
        {
            return Committed::done(Err(StoreError::LogWrite(
                "the disclosure log is closed".into(),
            )));
        }
        Committed {
            state: CommitState::Waiting(rx),
        }
    }

    /// Writes what is queued, closes the connection and stops the task.
    pub(super) async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.queue.send(Message::Close(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

async fn run(options: SqliteConnectOptions, head: Head, mut rx: mpsc::Receiver<Message>) {
    let mut conn: Option<SqliteConnection> = None;
    let mut closing = None;
    while closing.is_none() {
        let Some(first) = rx.recv().await else { break };
        let mut batch = Vec::new();
        let mut waiters = Vec::new();
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Write(record, done) => {
                    batch.push(*record);
                    waiters.push(done);
                }
                Message::Close(done) => closing = Some(done),
            }
            if batch.len() < MAX_BATCH && closing.is_none() {
                next = rx.try_recv().ok();
            }
        }
        if batch.is_empty() {
            continue;
        }
        let result = match connected(&mut conn, &options).await {
            Ok(c) => write_batch(c, &head, &batch).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(first_seq) => {
                for (i, done) in waiters.into_iter().enumerate() {
                    let _ = done.send(Ok(first_seq + i as i64));
                }
            }
            Err(e) => {
                warn!(
                    "could not write {} decision(s) to the disclosure log: {e}",
                    batch.len()
                );
                let message = e.to_string();
                for done in waiters {
                    let _ = done.send(Err(message.clone()));
                }
                // A connection that failed may be in any state: start afresh.
                if let Some(c) = conn.take() {
                    let _ = c.close().await;
                }
            }
        }
    }
    if let Some(c) = conn.take() {
        let _ = c.close().await;
    }
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

async fn connected<'c>(
    conn: &'c mut Option<SqliteConnection>,
    options: &SqliteConnectOptions,
) -> Result<&'c mut SqliteConnection, StoreError> {
    if conn.is_none() {
        *conn = Some(SqliteConnection::connect_with(options).await?);
    }
    conn.as_mut()
        .ok_or_else(|| StoreError::LogWrite("no connection".into()))
}

/// Writes `batch` as one statement on `conn`, chained on the head; returns
/// the first entry's number (the others follow it).
pub(super) async fn write_batch(
    conn: &mut SqliteConnection,
    head: &Head,
    batch: &[Record],
) -> Result<i64, StoreError> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let cached = lock(head).clone();
        let (prev_seq, prev_hash) = match cached {
            Some(h) => h,
            None => super::audit::read_head(conn)
                .await?
                .unwrap_or((0, GENESIS_HASH.to_string())),
        };
        let mut sql = String::from(
            "INSERT INTO decision_record (seq, at, at_utc, peer, peer_key, action, params, outcome,
                 rule, level, disclosed, prev_hash, hash, replay_peer, request_id, digest, reply)
             VALUES ",
        );
        for i in 0..batch.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
        }
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        let (mut seq, mut prev) = (prev_seq, prev_hash);
        for record in batch {
            let e = &record.entry;
            seq += 1;
            let hash = entry_hash(&prev, seq, e);
            let r = record.replay.as_ref();
            query = query
                .bind(seq)
                .bind(e.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
                .bind(e.at.timestamp())
                .bind(e.peer.clone())
                .bind(e.peer_key.clone())
                .bind(e.action.clone())
                .bind(e.params.clone())
                .bind(e.outcome.as_str())
                .bind(e.rule.clone())
                .bind(e.level.clone())
                .bind(e.disclosed.clone())
                .bind(std::mem::replace(&mut prev, hash.clone()))
                .bind(hash)
                .bind(r.map(|r| r.peer.clone()))
                .bind(r.map(|r| r.request_id.clone()))
                .bind(r.map(|r| r.digest.clone()))
                .bind(r.map(|r| r.reply.clone()));
        }
        match query.execute(&mut *conn).await {
            Ok(_) => {
                *lock(head) = Some((seq, prev));
                return Ok(prev_seq + 1);
            }
            Err(sqlx::Error::Database(e))
                if e.message().contains(HEAD_MOVED) && attempts < HEAD_RETRIES =>
            {
                *lock(head) = None;
            }
            Err(e) => {
                *lock(head) = None;
                return Err(e.into());
            }
        }
    }
}
