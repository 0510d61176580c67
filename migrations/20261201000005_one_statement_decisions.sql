-- Answering a peer writes two things that must commit together: the
-- disclosure-log entry and the reply remembered for replay (docs/protocol.md
-- §7). This migration lets the agent do both in ONE statement — one database
-- round trip on the hot path — while the database itself keeps the hash
-- chain honest for every writer.

-- The chain head follows every append (it used to be a second statement).
CREATE TRIGGER audit_log_head AFTER INSERT ON audit_log
BEGIN
    INSERT OR REPLACE INTO meta (key, value) VALUES
        ('audit_head_seq', CAST(NEW.seq AS TEXT)),
        ('audit_head_hash', NEW.hash);
END;

-- An entry must extend the current head: a writer that computed its hash
-- from a stale head is refused (and retries after reading the head again),
-- so the chain can never fork, whoever writes.
CREATE TRIGGER audit_log_extends_head BEFORE INSERT ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'attache: audit chain head moved')
    WHERE NEW.seq IS NOT COALESCE(
              (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'audit_head_seq'), 0) + 1
       OR NEW.prev_hash IS NOT COALESCE(
              (SELECT value FROM meta WHERE key = 'audit_head_hash'),
              '0000000000000000000000000000000000000000000000000000000000000000');
END;

-- Insert-only view: one row = one decision, plus (when `request_id` is not
-- NULL) the reply remembered for replay. Reading it yields nothing.
CREATE VIEW decision_record (
    seq, at, at_utc, peer, peer_key, action, params, outcome, rule, level,
    disclosed, prev_hash, hash,
    replay_peer, request_id, digest, reply
) AS SELECT
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    NULL, NULL, NULL,
    NULL, NULL, NULL, NULL
WHERE 0;

CREATE TRIGGER decision_record_insert INSTEAD OF INSERT ON decision_record
BEGIN
    INSERT INTO audit_log (seq, at, at_utc, peer, peer_key, action, params, outcome,
                           rule, level, disclosed, prev_hash, hash)
    VALUES (NEW.seq, NEW.at, NEW.at_utc, NEW.peer, NEW.peer_key, NEW.action, NEW.params,
            NEW.outcome, NEW.rule, NEW.level, NEW.disclosed, NEW.prev_hash, NEW.hash);
    INSERT OR IGNORE INTO peer_requests (peer, request_id, digest, reply, answered_utc)
    SELECT NEW.replay_peer, NEW.request_id, NEW.digest, NEW.reply, NEW.at_utc
    WHERE NEW.request_id IS NOT NULL;
END;
