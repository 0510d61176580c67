//! The disclosure log's rows: appending (chained in the same transaction
//! that reads the previous hash), listing, verifying, counting for rate
//! limits, and pruning behind a checkpoint.

use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;

use super::decisions::{Committed, OwnedReplay, Record, write_batch};
use super::{Store, meta_get, meta_set};
use crate::audit::{AuditEntry, AuditOutcome, ChainBreak, ChainedEntry, Checkpoint, verify_chain};
use crate::error::StoreError;

type AuditRow = (
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
);

const AUDIT_COLUMNS: &str = "SELECT seq, at, peer, peer_key, action, params, outcome, rule, level, disclosed, prev_hash, hash FROM audit_log";

fn decode(row: AuditRow) -> Result<ChainedEntry, StoreError> {
    let (seq, at, peer, peer_key, action, params, outcome, rule, level, disclosed, prev_hash, hash) =
        row;
    let corrupt = |detail: String| StoreError::Corrupt {
        what: format!("disclosure log entry {seq}"),
        detail,
    };
    Ok(ChainedEntry {
        seq,
        entry: AuditEntry {
            at: DateTime::parse_from_rfc3339(&at)
                .map_err(|e| corrupt(format!("time '{at}': {e}")))?
                .with_timezone(&Utc),
            peer,
            peer_key,
            action,
            params,
            outcome: AuditOutcome::parse(&outcome)
                .ok_or_else(|| corrupt(format!("outcome '{outcome}'")))?,
            rule,
            level,
            disclosed,
        },
        prev_hash,
        hash,
    })
}

pub(super) async fn read_head(
    conn: &mut SqliteConnection,
) -> Result<Option<(i64, String)>, StoreError> {
    // One query for both keys: this runs for every decision the agent logs.
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT key, value FROM meta WHERE key IN ('audit_head_seq', 'audit_head_hash')",
    )
    .fetch_all(&mut *conn)
    .await?;
    let get = |k: &str| {
        rows.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    Ok(
        match (
            get("audit_head_seq").and_then(|s| s.parse().ok()),
            get("audit_head_hash"),
        ) {
            (Some(seq), Some(hash)) => Some((seq, hash)),
            _ => None,
        },
    )
}

async fn checkpoint(conn: &mut SqliteConnection) -> Result<Option<Checkpoint>, StoreError> {
    let seq = meta_get(conn, "audit_checkpoint_seq").await?;
    let hash = meta_get(conn, "audit_checkpoint_hash").await?;
    Ok(match (seq.and_then(|s| s.parse().ok()), hash) {
        (Some(seq), Some(hash)) => Some(Checkpoint { seq, hash }),
        _ => None,
    })
}

/// What `attache log verify` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    pub entries: usize,
    pub head: Option<(i64, String)>,
    pub checkpoint: Option<Checkpoint>,
}

/// A reply remembered for replay (docs/protocol.md §7), written in the same
/// statement as the decision's log entry.
#[derive(Debug, Clone, Copy)]
pub struct ReplayRecord<'a> {
    /// The requester's bare JID, as the server stamped it.
    pub peer: &'a str,
    pub request_id: &'a str,
    /// SHA-256 of the request payload.
    pub digest: &'a str,
    /// The reply, as the replay code stores it.
    pub reply: &'a str,
}

impl Store {
    /// Appends one decision to the disclosure log and returns its number.
    pub async fn append_audit(&self, entry: &AuditEntry) -> Result<i64, StoreError> {
        self.record_decision(entry, None).await
    }

    /// Appends one decision and, when given, remembers the reply for replay:
    /// both in one statement (one commit), so a reply is never remembered
    /// without its log entry nor the other way round. Returns once committed.
    pub async fn record_decision(
        &self,
        entry: &AuditEntry,
        replay: Option<ReplayRecord<'_>>,
    ) -> Result<i64, StoreError> {
        self.submit_decision(entry, replay).await.wait().await
    }

    /// Hands one decision to the disclosure log's writer and returns at once
    /// (or when the queue has room); [`Committed::wait`] resolves once it is
    /// committed. Decisions submitted while a write is in flight are
    /// committed together (see `decisions.rs`), so a caller that must keep
    /// decisions in order submits under its own lock and waits after it.
    pub async fn submit_decision(
        &self,
        entry: &AuditEntry,
        replay: Option<ReplayRecord<'_>>,
    ) -> Committed {
        let record = Record {
            entry: entry.clone(),
            replay: replay.map(|r| OwnedReplay {
                peer: r.peer.to_owned(),
                request_id: r.request_id.to_owned(),
                digest: r.digest.to_owned(),
                reply: r.reply.to_owned(),
            }),
        };
        if let Some(writer) = self.decision_writer() {
            return writer.submit(record).await;
        }
        // An in-memory database has no second connection: write in place.
        let result = async {
            let mut conn = self.pool.acquire().await?;
            write_batch(&mut conn, &self.audit_head, std::slice::from_ref(&record)).await
        }
        .await;
        Committed::done(result)
    }

    /// Log entries, oldest first; only those about `peer` (either JID form) when given.
    pub async fn audit_entries(&self, peer: Option<&str>) -> Result<Vec<ChainedEntry>, StoreError> {
        let rows: Vec<AuditRow> = match peer {
            Some(p) => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "{AUDIT_COLUMNS} WHERE peer = ?1 COLLATE NOCASE OR peer_key = ?1 COLLATE NOCASE ORDER BY seq"
                )))
                .bind(p.to_owned())
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!("{AUDIT_COLUMNS} ORDER BY seq")))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.into_iter().map(decode).collect()
    }

    /// Checks the whole chain; `Err(Ok(break))` names the first broken entry.
    pub async fn verify_audit(&self) -> Result<Result<ChainReport, ChainBreak>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let cp = checkpoint(&mut conn).await?;
        let head = read_head(&mut conn).await?;
        drop(conn);
        let entries = self.audit_entries(None).await?;
        Ok(verify_chain(
            cp.as_ref(),
            &entries,
            head.as_ref().map(|(s, h)| (*s, h.as_str())),
        )
        .map(|n| ChainReport {
            entries: n,
            head,
            checkpoint: cp,
        }))
    }

    /// How many requests from `peer_key` were answered (not rate-limited)
    /// since `since`. Presence-subscription decisions are logged but are not
    /// requests, and do not count.
    pub async fn answered_since(
        &self,
        peer_key: &str,
        since: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_log WHERE peer_key = ? AND at_utc >= ?
               AND outcome != 'rate-limited' AND action != 'presence'",
        )
        .bind(peer_key.to_owned())
        .bind(since.timestamp())
        .fetch_one(&self.pool)
        .await?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// When each request from `peer_key` answered since `since` was answered
    /// (Unix seconds, oldest first): what a running agent's in-memory rate
    /// counter starts from. Counts exactly what [`Store::answered_since`] counts.
    pub async fn answered_times(
        &self,
        peer_key: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT at_utc FROM audit_log WHERE peer_key = ? AND at_utc >= ?
               AND outcome != 'rate-limited' AND action != 'presence' ORDER BY seq",
        )
        .bind(peer_key.to_owned())
        .bind(since.timestamp())
        .fetch_all(&self.pool)
        .await?)
    }

    /// Deletes entries older than `before`, keeping the chain verifiable
    /// through a checkpoint (the last deleted entry's number and hash).
    /// Returns how many were deleted.
    pub async fn prune_audit(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
        let last: Option<(i64, String)> = sqlx::query_as(
            "SELECT seq, hash FROM audit_log WHERE at_utc < ? ORDER BY seq DESC LIMIT 1",
        )
        .bind(before.timestamp())
        .fetch_optional(&mut *tx)
        .await?;
        let Some((seq, hash)) = last else {
            return Ok(0);
        };
        let deleted = sqlx::query("DELETE FROM audit_log WHERE seq <= ?")
            .bind(seq)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        meta_set(&mut tx, "audit_checkpoint_seq", &seq.to_string()).await?;
        meta_set(&mut tx, "audit_checkpoint_hash", &hash).await?;
        tx.commit().await?;
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(minute: i64, peer: &str) -> AuditEntry {
        AuditEntry {
            at: DateTime::from_timestamp(1_770_000_000 + minute * 60, 0).unwrap_or_default(),
            peer: peer.into(),
            peer_key: peer.into(),
            action: "freebusy".into(),
            params: "{}".into(),
            outcome: AuditOutcome::Allow,
            rule: Some("r".into()),
            level: Some("busy".into()),
            disclosed: "busy: 1 interval".into(),
        }
    }

    #[tokio::test]
    async fn appended_entries_chain_and_count_for_rate_limits() -> Result<(), StoreError> {
        let store = Store::open_in_memory().await?;
        for m in 0..5 {
            store.append_audit(&entry(m, "bob@example.org")).await?;
        }
        store.append_audit(&entry(5, "eve@example.org")).await?;
        let report = store.verify_audit().await?;
        assert!(
            matches!(report, Ok(ChainReport { entries: 6, .. })),
            "{report:?}"
        );
        let since = DateTime::from_timestamp(1_770_000_000 + 2 * 60, 0).unwrap_or_default();
        assert_eq!(store.answered_since("bob@example.org", since).await?, 3);
        assert_eq!(store.audit_entries(Some("EVE@example.org")).await?.len(), 1);
        Ok(())
    }

    /// Two writers (the agent and, say, a CLI) each remember the head they
    /// last wrote; the database refuses an entry built on a stale one and
    /// the writer rebuilds it, so the chain never forks.
    /// Decisions submitted while a write is in flight are committed
    /// together: every caller gets its own number, the numbers are exactly
    /// 1..=n, each remembered reply is there, and the chain verifies — also
    /// with a second process's writer appending in between.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_decisions_are_batched_into_one_valid_chain() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::NotFound(e.to_string()))?;
        let path = dir.path().join("db.sqlite");
        let one = Store::create(&path).await?;
        let two = Store::open(&path).await?;
        let mut submitted = Vec::new();
        let mut seqs = Vec::new();
        for m in 0..300 {
            let id = format!("r{m}");
            let replay = ReplayRecord {
                peer: "bob@example.org",
                request_id: &id,
                digest: "d",
                reply: "{}",
            };
            // Queued in order, committed as the writer gets to them.
            submitted.push(
                one.submit_decision(&entry(m, "bob@example.org"), Some(replay))
                    .await,
            );
            if m == 150 {
                seqs.push(two.append_audit(&entry(m, "eve@example.org")).await?);
            }
        }
        for c in submitted {
            seqs.push(c.wait().await?);
        }
        seqs.push(two.append_audit(&entry(400, "eve@example.org")).await?);
        seqs.sort_unstable();
        seqs.dedup();
        assert_eq!(seqs.len(), 302, "every decision has its own number");
        for m in [0, 150, 299] {
            assert!(
                one.recall_reply("bob@example.org", &format!("r{m}"))
                    .await?
                    .is_some()
            );
        }
        let report = two.verify_audit().await?;
        assert!(
            matches!(report, Ok(ChainReport { entries: 302, .. })),
            "{report:?}"
        );
        one.close().await;
        Ok(())
    }

    /// A batch that cannot be written fails every decision in it, and none
    /// of them is in the log.
    #[tokio::test]
    async fn a_failed_batch_is_reported_to_every_caller() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::NotFound(e.to_string()))?;
        let path = dir.path().join("db.sqlite");
        let store = Store::create(&path).await?;
        store.append_audit(&entry(0, "bob@example.org")).await?;
        // Make every append fail the way a broken disk would.
        sqlx::query(
            "CREATE TRIGGER refuse BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'disk trouble'); END",
        )
        .execute(&store.pool)
        .await?;
        let a = store
            .submit_decision(&entry(1, "bob@example.org"), None)
            .await;
        let b = store
            .submit_decision(&entry(2, "bob@example.org"), None)
            .await;
        for c in [a, b] {
            let e = c
                .wait()
                .await
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains("disk trouble"), "{e}");
        }
        sqlx::query("DROP TRIGGER refuse")
            .execute(&store.pool)
            .await?;
        assert_eq!(store.append_audit(&entry(3, "bob@example.org")).await?, 2);
        assert!(matches!(
            store.verify_audit().await?,
            Ok(ChainReport { entries: 2, .. })
        ));
        Ok(())
    }

    #[tokio::test]
    async fn two_writers_with_stale_heads_never_fork_the_chain() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::NotFound(e.to_string()))?;
        let path = dir.path().join("db.sqlite");
        let one = Store::create(&path).await?;
        let two = Store::open(&path).await?;
        for m in 0..6 {
            let writer = if m % 2 == 0 { &one } else { &two };
            assert_eq!(
                writer.append_audit(&entry(m, "bob@example.org")).await?,
                m + 1
            );
        }
        let replay = ReplayRecord {
            peer: "bob@example.org",
            request_id: "r1",
            digest: "d",
            reply: "{}",
        };
        one.record_decision(&entry(7, "bob@example.org"), Some(replay))
            .await?;
        assert!(one.recall_reply("bob@example.org", "r1").await?.is_some());
        let report = two.verify_audit().await?;
        assert!(
            matches!(report, Ok(ChainReport { entries: 7, .. })),
            "{report:?}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn pruning_keeps_the_rest_verifiable() -> Result<(), StoreError> {
        let store = Store::open_in_memory().await?;
        for m in 0..10 {
            store.append_audit(&entry(m, "bob@example.org")).await?;
        }
        let cut = DateTime::from_timestamp(1_770_000_000 + 4 * 60, 0).unwrap_or_default();
        assert_eq!(store.prune_audit(cut).await?, 4);
        let report = store.verify_audit().await?;
        assert!(
            matches!(report, Ok(ChainReport { entries: 6, .. })),
            "{report:?}"
        );
        store.append_audit(&entry(11, "bob@example.org")).await?;
        assert!(store.verify_audit().await?.is_ok());
        Ok(())
    }
}
/// What one disclosure-log write costs, apart from the network: run by
/// `cargo test --release --lib bench_disclosure_log -- --ignored --nocapture`
/// (printed, not asserted). The agent benchmark's free/busy latency has this
/// commit in it: nothing is answered before its decision is logged.
#[cfg(test)]
mod bench {
    use std::time::{Duration, Instant};

    use super::*;

    fn decision(n: i64) -> AuditEntry {
        AuditEntry {
            at: DateTime::from_timestamp(1_770_000_000 + n, 0).unwrap_or_default(),
            peer: "bob@example.org".into(),
            peer_key: "bob@example.org".into(),
            action: "freebusy".into(),
            params: r#"{"window":null,"duration":null,"proposed":[],"requested_level":"busy"}"#
                .into(),
            outcome: AuditOutcome::Allow,
            rule: Some("team".into()),
            level: Some("busy".into()),
            disclosed: "busy: 10 intervals".into(),
        }
    }

    #[tokio::test]
    #[ignore = "benchmark: cargo test --release --lib bench_disclosure_log -- --ignored --nocapture"]
    async fn bench_disclosure_log_commit() -> Result<(), StoreError> {
        const N: i64 = 2_000;
        let dir = tempfile::tempdir().map_err(|e| StoreError::NotFound(e.to_string()))?;
        let store = Store::create(&dir.path().join("db.sqlite")).await?;
        // A 14-day busy reply is about 1.2 KB; it is remembered for replay.
        let reply = "x".repeat(1_200);
        let per = |d: Duration, n: i64| d / u32::try_from(n).unwrap_or(1);
        let mut next = 0;
        let mut ids = move || {
            next += 1;
            (next, format!("r{next}"))
        };
        let started = Instant::now();
        for _ in 0..N {
            let (n, id) = ids();
            let r = ReplayRecord {
                peer: "bob@example.org",
                request_id: &id,
                digest: "d",
                reply: &reply,
            };
            store.record_decision(&decision(n), Some(r)).await?;
        }
        let one_by_one = per(started.elapsed(), N);
        let started = Instant::now();
        for _ in 0..N / 50 {
            let mut waiting = Vec::new();
            for _ in 0..50 {
                let (n, id) = ids();
                let r = ReplayRecord {
                    peer: "bob@example.org",
                    request_id: &id,
                    digest: "d",
                    reply: &reply,
                };
                waiting.push(store.submit_decision(&decision(n), Some(r)).await);
            }
            for w in waiting {
                w.wait().await?;
            }
        }
        let batched = per(started.elapsed(), N);
        let mut conn = store.pool.acquire().await?;
        let started = Instant::now();
        for _ in 0..N {
            sqlx::query("SELECT 1").execute(&mut *conn).await?;
        }
        let hop = per(started.elapsed(), N);
        println!("one decision logged at a time: {one_by_one:?} each (commit before answering)");
        println!("50 decisions queued at once:   {batched:?} each (group commit)");
        println!("an empty statement (SQLite's worker-thread round trip): {hop:?}");
        Ok(())
    }
}
