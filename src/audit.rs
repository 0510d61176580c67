//! The disclosure log's chain: what one entry is, how it is hashed, and how
//! a chain is verified. Pure; the store keeps the rows.
//!
//! Every decision the agent makes about a peer's request — allowed, denied,
//! routed to the owner, rate-limited — becomes one [`AuditEntry`]. Entries
//! are numbered from 1 without gaps and each carries the SHA-256 of the
//! previous entry's hash and its own content, so editing, deleting or
//! reordering any entry breaks the chain at that entry. Pruning old entries
//! keeps a checkpoint (the last pruned entry's number and hash), so the rest
//! still verifies. The newest hash is also kept apart from the rows, so a
//! deleted tail is noticed too; an attacker who can rewrite the whole
//! database can rewrite that as well, which is why `attache log verify`
//! prints the head hash for the owner to note elsewhere if they wish.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The hash before the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What became of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditOutcome {
    Allow,
    Deny,
    Ask,
    RateLimited,
}

impl AuditOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Allow => "allow",
            AuditOutcome::Deny => "deny",
            AuditOutcome::Ask => "ask",
            AuditOutcome::RateLimited => "rate-limited",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "allow" => Some(AuditOutcome::Allow),
            "deny" => Some(AuditOutcome::Deny),
            "ask" => Some(AuditOutcome::Ask),
            "rate-limited" => Some(AuditOutcome::RateLimited),
            _ => None,
        }
    }
}

/// One decision about one request, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    /// The bare JID the request came from.
    pub peer: String,
    /// Whom the rate limit counts this against: the contact's own JID when the
    /// peer is a known contact (or their agent), else the peer itself.
    pub peer_key: String,
    pub action: String,
    /// The request's parameters as JSON (window, duration, proposed slots…).
    pub params: String,
    pub outcome: AuditOutcome,
    /// The deciding rule; `None` for the implicit default deny.
    pub rule: Option<String>,
    /// The disclosure level granted, if any.
    pub level: Option<String>,
    /// What was disclosed, in counts and ranges — never titles.
    pub disclosed: String,
}

/// A stored entry: its number in the chain and its hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainedEntry {
    pub seq: i64,
    #[serde(flatten)]
    pub entry: AuditEntry,
    pub prev_hash: String,
    pub hash: String,
}

/// The hash of entry `seq` following `prev_hash`: SHA-256 over the previous
/// hash and a canonical JSON array of the entry's fields, hex-encoded.
pub fn entry_hash(prev_hash: &str, seq: i64, e: &AuditEntry) -> String {
    let canonical = serde_json::json!([
        seq,
        e.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        e.peer,
        e.peer_key,
        e.action,
        e.params,
        e.outcome.as_str(),
        e.rule,
        e.level,
        e.disclosed,
    ]);
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(canonical.to_string().as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Where pruning left the chain: the last pruned entry's number and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: String,
}

/// The first place a chain stops being trustworthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainBreak {
    /// Entry numbers jump: entries in between were deleted.
    Missing { expected: i64, found: i64 },
    /// The entry's content no longer matches its hash: it was edited.
    Edited { seq: i64 },
    /// The entry does not follow the one before it: moved or replaced.
    Relinked { seq: i64 },
    /// The newest entries are gone: the chain ends before the recorded head.
    Truncated { last: i64, head: i64 },
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainBreak::Missing { expected, found } => write!(
                f,
                "entry {expected} is missing: the log jumps to entry {found} (entries were deleted)"
            ),
            ChainBreak::Edited { seq } => write!(
                f,
                "entry {seq} was changed after it was written: its content does not match its hash"
            ),
            ChainBreak::Relinked { seq } => write!(
                f,
                "entry {seq} does not follow entry {}: entries were reordered or replaced",
                seq - 1
            ),
            ChainBreak::Truncated { last, head } => write!(
                f,
                "the log ends at entry {last} but entry {head} was written: the newest entries were deleted"
            ),
        }
    }
}

/// Verifies `entries` (sorted by `seq`) as the continuation of `checkpoint`
/// (or of the genesis when nothing was pruned), up to the recorded `head`
/// (`(seq, hash)` of the newest entry written, if any). Returns the number
/// of entries checked.
pub fn verify_chain(
    checkpoint: Option<&Checkpoint>,
    entries: &[ChainedEntry],
    head: Option<(i64, &str)>,
) -> Result<usize, ChainBreak> {
    let (mut seq, mut prev) = match checkpoint {
        Some(c) => (c.seq, c.hash.clone()),
        None => (0, GENESIS_HASH.to_string()),
    };
    for e in entries {
        if e.seq != seq + 1 {
            return Err(ChainBreak::Missing {
                expected: seq + 1,
                found: e.seq,
            });
        }
        if entry_hash(&e.prev_hash, e.seq, &e.entry) != e.hash {
            return Err(ChainBreak::Edited { seq: e.seq });
        }
        if e.prev_hash != prev {
            return Err(ChainBreak::Relinked { seq: e.seq });
        }
        seq = e.seq;
        prev = e.hash.clone();
    }
    if let Some((head_seq, head_hash)) = head {
        if head_seq > seq {
            return Err(ChainBreak::Truncated {
                last: seq,
                head: head_seq,
            });
        }
        if head_seq == seq && head_hash != prev {
            return Err(ChainBreak::Edited { seq });
        }
    }
    Ok(entries.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: i64) -> AuditEntry {
        AuditEntry {
            at: DateTime::from_timestamp(1_770_000_000 + i * 60, 0).unwrap_or_default(),
            peer: "bob.agent@example.org".into(),
            peer_key: "bob@example.org".into(),
            action: "freebusy".into(),
            params: format!("{{\"n\":{i}}}"),
            outcome: AuditOutcome::Allow,
            rule: Some("team-sees-busy-times".into()),
            level: Some("busy".into()),
            disclosed: "busy: 3 intervals".into(),
        }
    }

    fn chain(n: i64) -> Vec<ChainedEntry> {
        let mut prev = GENESIS_HASH.to_string();
        (1..=n)
            .map(|seq| {
                let e = entry(seq);
                let hash = entry_hash(&prev, seq, &e);
                let c = ChainedEntry {
                    seq,
                    entry: e,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                c
            })
            .collect()
    }

    fn head(c: &[ChainedEntry]) -> Option<(i64, &str)> {
        c.last().map(|e| (e.seq, e.hash.as_str()))
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let c = chain(5);
        assert_eq!(verify_chain(None, &c, head(&c)), Ok(5));
    }

    #[test]
    fn an_edited_entry_is_named() {
        let mut c = chain(5);
        let h = c[4].hash.clone();
        c[2].entry.disclosed = "nothing".into();
        assert_eq!(
            verify_chain(None, &c, Some((5, &h))),
            Err(ChainBreak::Edited { seq: 3 })
        );
    }

    #[test]
    fn a_deleted_entry_is_named() {
        let mut c = chain(5);
        let h = c[4].hash.clone();
        c.remove(1);
        assert_eq!(
            verify_chain(None, &c, Some((5, &h))),
            Err(ChainBreak::Missing {
                expected: 2,
                found: 3
            })
        );
    }

    #[test]
    fn swapped_contents_are_detected() {
        let mut c = chain(5);
        let h = c[4].hash.clone();
        let (a, b) = (c[1].entry.clone(), c[2].entry.clone());
        c[1].entry = b;
        c[2].entry = a;
        assert_eq!(
            verify_chain(None, &c, Some((5, &h))),
            Err(ChainBreak::Edited { seq: 2 })
        );
    }

    #[test]
    fn a_deleted_tail_is_detected_against_the_head() {
        let mut c = chain(5);
        let h = c[4].hash.clone();
        c.truncate(3);
        assert_eq!(
            verify_chain(None, &c, Some((5, &h))),
            Err(ChainBreak::Truncated { last: 3, head: 5 })
        );
    }

    #[test]
    fn a_pruned_chain_verifies_from_its_checkpoint() {
        let c = chain(6);
        let cp = Checkpoint {
            seq: 3,
            hash: c[2].hash.clone(),
        };
        assert_eq!(verify_chain(Some(&cp), &c[3..], head(&c)), Ok(3));
        // Without the checkpoint the remaining entries do not verify.
        assert!(verify_chain(None, &c[3..], head(&c)).is_err());
    }
}
