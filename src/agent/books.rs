//! What the gatekeeper remembers in memory so that answering a peer costs
//! one database round trip (the write of the decision), not five: each
//! peer's recent answered requests for rate limits, and which request ids
//! have a remembered reply. Both are caches of the store, which stays the
//! truth: a cache that does not know something asks the store.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};

use chrono::{DateTime, Duration, Utc};

use crate::error::StoreError;
use crate::store::Store;

/// A peer's answered requests, complete from `since` onwards, as runs of
/// `(Unix second, requests answered in it)`, seconds strictly increasing.
/// The log's timestamps are whole seconds, so this counts exactly while
/// holding at most one run per second of the rate period, however many
/// requests a high limit lets through.
#[derive(Debug)]
struct PeerTimes {
    since: i64,
    seconds: VecDeque<(i64, u64)>,
    /// The sum of the runs' counts.
    total: u64,
}

impl PeerTimes {
    fn seeded(since: i64, mut times: Vec<i64>) -> Self {
        times.sort_unstable();
        let mut p = PeerTimes {
            since,
            seconds: VecDeque::new(),
            total: 0,
        };
        for t in times {
            p.add(t);
        }
        p
    }

    fn add(&mut self, at: i64) {
        // Not counted from any start this book can still answer for; an
        // earlier start reseeds from the log, which has it.
        if at < self.since {
            return;
        }
        self.total += 1;
        match self.seconds.back_mut() {
            Some((second, n)) if *second == at => *n += 1,
            // Decisions are logged in turn but stamped before their turn,
            // so one may arrive a second late.
            Some((second, _)) if *second > at => {
                let i = self.seconds.partition_point(|(s, _)| *s < at);
                match self.seconds.get_mut(i) {
                    Some((second, n)) if *second == at => *n += 1,
                    _ => self.seconds.insert(i, (at, 1)),
                }
            }
            _ => self.seconds.push_back((at, 1)),
        }
    }

    /// Drops the runs before `since`: whoever asks about an earlier start
    /// reseeds.
    fn drop_before(&mut self, since: i64) {
        while let Some(&(second, n)) = self.seconds.front()
            && second < since
        {
            self.seconds.pop_front();
            self.total -= n;
        }
        self.since = self.since.max(since);
    }
}

/// Per-peer rate counts, seeded from the disclosure log the first time a
/// peer (or a longer period than seen so far) is asked about. Holds at
/// most one 16-byte run per second of the longest period asked about, per
/// peer seen in the last two hours.
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
                .retain(|_, p| p.seconds.back().is_some_and(|(t, _)| *t >= idle));
        }
        let known = self.peers.get(peer_key).is_some_and(|p| p.since <= since);
        if !known {
            let seeded = store
                .answered_times(
                    peer_key,
                    DateTime::from_timestamp(since, 0).unwrap_or_default(),
                )
                .await?;
            self.peers
                .insert(peer_key.to_string(), PeerTimes::seeded(since, seeded));
        }
        let Some(p) = self.peers.get_mut(peer_key) else {
            return Ok(0);
        };
        p.drop_before(since);
        Ok(u32::try_from(p.total).unwrap_or(u32::MAX))
    }

    /// Notes one more answered request (call after it is logged).
    pub fn note(&mut self, peer_key: &str, at: DateTime<Utc>) {
        if let Some(p) = self.peers.get_mut(peer_key) {
            p.add(at.timestamp());
        }
        // A peer not in memory is seeded from the log, which has the entry.
    }
}

/// Keys a generation holds exactly (sorted, 8 bytes each) before it turns
/// into a filter: an hour this quiet costs at most 8 KiB.
const EXACT_KEYS: usize = 1024;

/// A generation's filter: 2,048 blocks of 512 bits (128 KiB). A key sets
/// one bit in each of a block's eight words. False positives at `n` keys
/// in one hour: about 0.02% at 50,000, 0.8% at 100,000, 15% at 200,000
/// (a Poisson sum over the block loads; `replay_filter_false_positives`
/// checks the middle figure). Each costs one indexed read that finds no
/// reply, nothing more.
const FILTER_BLOCKS: usize = 2048;
const BLOCK_WORDS: usize = 8;
/// `log2(FILTER_BLOCKS)`: the hash's top bits choose the block.
const BLOCK_BITS: u32 = FILTER_BLOCKS.trailing_zeros();

/// The keys of one hour's replies.
#[derive(Debug)]
enum Generation {
    /// Sorted keys, while there are at most [`EXACT_KEYS`].
    Exact(Vec<u64>),
    /// A blocked Bloom filter, allocated zeroed once an hour holds more
    /// keys than the exact list may; `keys` counts insertions.
    Filter { words: Box<[u64]>, keys: usize },
}

impl Generation {
    fn block(key: u64) -> std::ops::Range<usize> {
        let block = (key >> (64 - BLOCK_BITS)) as usize;
        block * BLOCK_WORDS..(block + 1) * BLOCK_WORDS
    }

    /// The bit `key` sets in word `i` of its block: six low bits of the key
    /// per word, independent of the top bits that chose the block.
    fn bit(key: u64, i: usize) -> u64 {
        1 << ((key >> (6 * i)) & 63)
    }

    fn contains(&self, key: u64) -> bool {
        match self {
            Generation::Exact(keys) => keys.binary_search(&key).is_ok(),
            Generation::Filter { words, .. } => words[Self::block(key)]
                .iter()
                .enumerate()
                .all(|(i, w)| w & Self::bit(key, i) != 0),
        }
    }

    fn insert(&mut self, key: u64) {
        match self {
            Generation::Exact(keys) => {
                if let Err(i) = keys.binary_search(&key) {
                    if keys.len() < EXACT_KEYS {
                        keys.insert(i, key);
                        return;
                    }
                    let mut filter = Generation::Filter {
                        words: vec![0; FILTER_BLOCKS * BLOCK_WORDS].into_boxed_slice(),
                        keys: 0,
                    };
                    for k in keys.iter() {
                        filter.insert(*k);
                    }
                    filter.insert(key);
                    *self = filter;
                }
            }
            Generation::Filter { words, keys } => {
                for (i, w) in words[Self::block(key)].iter_mut().enumerate() {
                    *w |= Self::bit(key, i);
                }
                *keys += 1;
            }
        }
    }

    fn len(&self) -> usize {
        match self {
            Generation::Exact(keys) => keys.len(),
            Generation::Filter { keys, .. } => *keys,
        }
    }
}

/// Which `(peer, request id)` pairs have a remembered reply, as 64-bit keyed
/// hashes grouped by the hour the reply was given: each hour's keys are a
/// sorted list while there are few of them, then a fixed-size filter. A hit
/// may be a false positive (the store then says "no such reply"); a miss is
/// certain, so a new request costs no read. The hash key is random per
/// process, so a peer cannot craft collisions.
///
/// Memory does not grow with the number of requests: at most 128 KiB per
/// hour that still has remembered replies (24 hours, plus the hour or two
/// until the runtime's hourly [`ReplayIndex::forget`]), 3.3 MiB in all, and
/// 8 KiB per hour for an agent answering fewer than 1,024 requests an hour.
#[derive(Debug)]
pub struct ReplayIndex {
    hasher: RandomState,
    /// By hour (Unix seconds / 3600) of the reply.
    hours: BTreeMap<i64, Generation>,
}

/// The span of one generation.
const HOUR: i64 = 3600;

impl ReplayIndex {
    /// Loads the keys of replies remembered since `since`.
    pub async fn load(store: &Store, since: DateTime<Utc>) -> Result<Self, StoreError> {
        let mut index = Self {
            hasher: RandomState::new(),
            hours: BTreeMap::new(),
        };
        store
            .each_remembered_key(since, |peer, id, at| {
                index.insert_key(index.key(peer, id), at)
            })
            .await?;
        Ok(index)
    }

    fn key(&self, peer: &str, request_id: &str) -> u64 {
        self.hasher.hash_one((peer, request_id))
    }

    fn insert_key(&mut self, key: u64, at: i64) {
        self.hours
            .entry(at.div_euclid(HOUR))
            .or_insert_with(|| Generation::Exact(Vec::new()))
            .insert(key);
    }

    /// False when no reply to `(peer, request_id)` is remembered.
    pub fn may_contain(&self, peer: &str, request_id: &str) -> bool {
        let key = self.key(peer, request_id);
        self.hours.values().any(|g| g.contains(key))
    }

    /// Notes the reply to `(peer, request_id)` given at `at`.
    pub fn insert(&mut self, peer: &str, request_id: &str, at: DateTime<Utc>) {
        let key = self.key(peer, request_id);
        self.insert_key(key, at.timestamp());
    }

    /// Forgets the hours that ended by `before` (the store forgets replies
    /// older than `before` too). The hour `before` falls in is kept, so a
    /// forgotten reply may still be a hit, for at most an hour.
    pub fn forget(&mut self, before: DateTime<Utc>) {
        let first_kept = before.timestamp().div_euclid(HOUR);
        self.hours = self.hours.split_off(&first_kept);
    }

    /// How many keys the kept hours hold (a filter counts every insertion).
    pub fn len(&self) -> usize {
        self.hours.values().map(Generation::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.hours.is_empty()
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
        // Hours are forgotten whole: r1's hour has ended an hour later.
        index.forget(now + Duration::minutes(1));
        assert!(index.may_contain("bob@x", "r1"));
        index.forget(now + Duration::hours(1));
        assert!(!index.may_contain("bob@x", "r1"));
        assert!(index.may_contain("bob@x", "r2"));
        assert_eq!(index.len(), 1);
        Ok(())
    }

    #[test]
    fn replay_filter_false_positives() {
        // One busy hour: 100,000 replies, then 100,000 requests never seen.
        let mut index = ReplayIndex {
            hasher: RandomState::new(),
            hours: BTreeMap::new(),
        };
        let at = DateTime::from_timestamp(1_770_000_000, 0).unwrap_or_default();
        for i in 0..100_000 {
            index.insert("bob@x", &format!("seen-{i}"), at);
        }
        assert!(matches!(
            index.hours.values().next(),
            Some(Generation::Filter { .. })
        ));
        for i in 0..100_000 {
            assert!(index.may_contain("bob@x", &format!("seen-{i}")));
        }
        let hits = (0..100_000)
            .filter(|i| index.may_contain("bob@x", &format!("new-{i}")))
            .count();
        // 0.8% expected; 1.2% is over 13 standard deviations away.
        assert!(hits < 1_200, "{hits} false positives in 100,000");
        assert!(
            hits > 400,
            "{hits} false positives: the filter is not the documented size"
        );
    }

    /// One step of a random history: a logged decision, or a question.
    #[derive(Debug, Clone)]
    enum Step {
        /// Peer 0 or 1, seconds after the previous decision (negative: a
        /// decision stamped before its turn), outcome 0..4, presence or not.
        Log(usize, i64, u8, bool),
        /// Peer, and how many seconds before the newest decision to count from.
        Count(usize, i64),
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            3 => (0..2usize, -2..4i64, 0..4u8, proptest::bool::weighted(0.1))
                .prop_map(|(p, dt, o, pr)| Step::Log(p, dt, o, pr)),
            1 => (0..3usize, -2..40i64).prop_map(|(p, back)| Step::Count(p, back)),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        #[test]
        fn rate_book_agrees_with_the_log_for_any_history(
            steps in proptest::collection::vec(step(), 1..80)
        ) {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let outcome: Result<(), String> = rt.block_on(async {
                let store = Store::open_in_memory().await.map_err(|e| e.to_string())?;
                let peers = ["bob@x", "carol@x", "dave@x"];
                let mut book = RateBook::default();
                let mut t = 1_770_000_000;
                for (n, s) in steps.iter().enumerate() {
                    match *s {
                        Step::Log(p, dt, o, presence) => {
                            t += dt;
                            let outcome = [
                                AuditOutcome::Allow,
                                AuditOutcome::Deny,
                                AuditOutcome::Ask,
                                AuditOutcome::RateLimited,
                            ][usize::from(o)];
                            let action = if presence { "presence" } else { "freebusy" };
                            store
                                .append_audit(&entry(t, peers[p], outcome, action))
                                .await
                                .map_err(|e| e.to_string())?;
                            // What the gatekeeper notes: answered requests.
                            if outcome != AuditOutcome::RateLimited && !presence {
                                let at = DateTime::from_timestamp(t, 0).unwrap_or_default();
                                book.note(peers[p], at);
                            }
                        }
                        Step::Count(p, back) => {
                            let since = DateTime::from_timestamp(t - back, 0).unwrap_or_default();
                            let ours = book
                                .count(&store, peers[p], since)
                                .await
                                .map_err(|e| e.to_string())?;
                            let log = store
                                .answered_since(peers[p], since)
                                .await
                                .map_err(|e| e.to_string())?;
                            if ours != log {
                                return Err(format!("step {n}: book {ours}, log {log}"));
                            }
                        }
                    }
                }
                Ok(())
            });
            proptest::prop_assert_eq!(outcome, Ok(()));
        }

        #[test]
        fn replay_index_never_misses_a_kept_reply(
            replies in proptest::collection::vec((0..3usize, 0..3_000u32, 0..(30 * 3600i64)), 1..3_000),
            forget_after in 0..(30 * 3600i64),
        ) {
            let t0 = 1_770_000_000;
            let at = |s: i64| DateTime::from_timestamp(t0 + s, 0).unwrap_or_default();
            let peers = ["bob@x", "carol@x", "dave@x"];
            let mut index = ReplayIndex {
                hasher: RandomState::new(),
                hours: BTreeMap::new(),
            };
            for (p, id, s) in &replies {
                index.insert(peers[*p], &format!("r{id}"), at(*s));
            }
            index.forget(at(forget_after));
            for (p, id, s) in &replies {
                if *s >= forget_after {
                    let id = format!("r{id}");
                    proptest::prop_assert!(index.may_contain(peers[*p], &id), "{} {} missed", peers[*p], id);
                }
            }
        }
    }
}
