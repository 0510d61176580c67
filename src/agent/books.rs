//! What the gatekeeper remembers in memory so that answering a peer costs
//! one database round trip (the write of the decision), not five: each
//! peer's recent answered requests for rate limits, and which request ids
//! have a remembered reply. Both are caches of the store, which stays the
//! truth: a cache that does not know something asks the store.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};

use chrono::{DateTime, Duration, Utc};

use crate::error::StoreError;
use crate::store::Store;

/// A peer's answered requests (Unix seconds, oldest first), complete from
/// `since` onwards.
#[derive(Debug)]
struct PeerTimes {
    since: i64,
    times: VecDeque<i64>,
}

/// Per-peer rate counts, seeded from the disclosure log the first time a
/// peer (or a longer period than seen so far) is asked about.
#[derive(Debug, Default)]
pub struct RateBook {
    peers: HashMap<String, PeerTimes>,
    counted: u64,
}

/// Peers whose newest answered request is older than this are dropped from
/// memory now and then (and read from the log again if they come back).
const IDLE_PEER: Duration = Duration::hours(2);

impl RateBook {
    /// How many requests from `peer_key` were answered since `since`;
    /// the same number as [`Store::answered_since`].
    pub async fn count(
        &mut self,
        store: &Store,
        peer_key: &str,
        since: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        let since = since.timestamp();
        self.counted += 1;
        if self.counted.is_multiple_of(4096) {
            let idle = since.min(Utc::now().timestamp()) - IDLE_PEER.num_seconds();
            self.peers
                .retain(|_, p| p.times.back().is_some_and(|t| *t >= idle));
        }
        let known = self.peers.get(peer_key).is_some_and(|p| p.since <= since);
        if !known {
            let seeded = store
                .answered_times(
                    peer_key,
                    DateTime::from_timestamp(since, 0).unwrap_or_default(),
                )
                .await?;
            self.peers.insert(
                peer_key.to_string(),
                PeerTimes {
                    since,
                    times: seeded.into(),
                },
            );
        }
        let Some(p) = self.peers.get_mut(peer_key) else {
            return Ok(0);
        };
        // Older entries can go: whoever asks about an earlier start reseeds.
        while p.times.front().is_some_and(|t| *t < since) {
            p.times.pop_front();
        }
        p.since = p.since.max(since);
        Ok(u32::try_from(p.times.len()).unwrap_or(u32::MAX))
    }

    /// Notes one more answered request (call after it is logged).
    pub fn note(&mut self, peer_key: &str, at: DateTime<Utc>) {
        if let Some(p) = self.peers.get_mut(peer_key) {
            p.times.push_back(at.timestamp());
        }
        // A peer not in memory is seeded from the log, which has the entry.
    }
}

/// Which `(peer, request id)` pairs have a remembered reply, as 64-bit keyed
/// hashes: a few bytes per request instead of the reply itself. A hit may be
/// a collision (the store then says "no such reply"); a miss is certain, so
/// a new request costs no read. The hash key is random per process, so a
/// peer cannot craft collisions.
#[derive(Debug)]
pub struct ReplayIndex {
    hasher: RandomState,
    seen: HashMap<u64, i64>,
}

impl ReplayIndex {
    /// Loads the keys of replies remembered since `since`.
    pub async fn load(store: &Store, since: DateTime<Utc>) -> Result<Self, StoreError> {
        let mut index = Self {
            hasher: RandomState::new(),
            seen: HashMap::new(),
        };
        for (peer, id, at) in store.remembered_keys(since).await? {
            let key = index.key(&peer, &id);
            index.seen.insert(key, at);
        }
        Ok(index)
    }

    fn key(&self, peer: &str, request_id: &str) -> u64 {
        self.hasher.hash_one((peer, request_id))
    }

    /// False when no reply to `(peer, request_id)` is remembered.
    pub fn may_contain(&self, peer: &str, request_id: &str) -> bool {
        self.seen.contains_key(&self.key(peer, request_id))
    }

    pub fn insert(&mut self, peer: &str, request_id: &str, at: DateTime<Utc>) {
        let key = self.key(peer, request_id);
        self.seen.insert(key, at.timestamp());
    }

    /// Forgets keys older than `before` (the store forgets those replies too).
    pub fn forget(&mut self, before: DateTime<Utc>) {
        let before = before.timestamp();
        self.seen.retain(|_, at| *at >= before);
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditEntry, AuditOutcome};

    fn entry(at: i64, peer: &str, outcome: AuditOutcome, action: &str) -> AuditEntry {
        AuditEntry {
            at: DateTime::from_timestamp(at, 0).unwrap_or_default(),
            peer: peer.into(),
            peer_key: peer.into(),
            action: action.into(),
            params: "{}".into(),
            outcome,
            rule: None,
            level: None,
            disclosed: "nothing".into(),
        }
    }

    #[tokio::test]
    async fn rate_counts_agree_with_the_log() -> Result<(), StoreError> {
        let store = Store::open_in_memory().await?;
        let t0 = 1_770_000_000;
        for i in 0..10 {
            let outcome = if i % 3 == 0 {
                AuditOutcome::RateLimited
            } else {
                AuditOutcome::Allow
            };
            store
                .append_audit(&entry(t0 + i * 60, "bob@x", outcome, "freebusy"))
                .await?;
        }
        store
            .append_audit(&entry(t0 + 30, "bob@x", AuditOutcome::Allow, "presence"))
            .await?;
        let mut book = RateBook::default();
        let at = |m: i64| DateTime::from_timestamp(t0 + m * 60, 0).unwrap_or_default();
        for since in [0, 2, 5, 9, 1, 0] {
            assert_eq!(
                book.count(&store, "bob@x", at(since)).await?,
                store.answered_since("bob@x", at(since)).await?,
                "since minute {since}"
            );
        }
        // Noting what is logged keeps them equal.
        store
            .append_audit(&entry(t0 + 600, "bob@x", AuditOutcome::Deny, "freebusy"))
            .await?;
        book.note("bob@x", at(10));
        assert_eq!(
            book.count(&store, "bob@x", at(3)).await?,
            store.answered_since("bob@x", at(3)).await?
        );
        assert_eq!(book.count(&store, "carol@x", at(0)).await?, 0);
        Ok(())
    }

    #[tokio::test]
    async fn replay_index_misses_are_certain() -> Result<(), StoreError> {
        let store = Store::open_in_memory().await?;
        let now = DateTime::from_timestamp(1_770_000_000, 0).unwrap_or_default();
        store
            .remember_reply("bob@x", "r1", "d", "reply", now)
            .await?;
        let mut index = ReplayIndex::load(&store, now - Duration::hours(24)).await?;
        assert!(index.may_contain("bob@x", "r1"));
        assert!(!index.may_contain("bob@x", "r2"));
        assert!(!index.may_contain("carol@x", "r1"));
        index.insert("bob@x", "r2", now + Duration::hours(1));
        index.forget(now + Duration::minutes(1));
        assert!(!index.may_contain("bob@x", "r1"));
        assert!(index.may_contain("bob@x", "r2"));
        assert_eq!(index.len(), 1);
        Ok(())
    }
}
