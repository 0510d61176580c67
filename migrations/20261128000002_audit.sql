-- The disclosure log: one row per decision about a peer's request,
-- hash-chained (see src/audit.rs). `seq` counts from 1 without gaps.
CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY,
    at         TEXT NOT NULL,      -- RFC 3339 UTC with microseconds
    at_utc     INTEGER NOT NULL,   -- the same instant in Unix seconds, for range queries
    peer       TEXT NOT NULL,
    peer_key   TEXT NOT NULL,
    action     TEXT NOT NULL,
    params     TEXT NOT NULL,
    outcome    TEXT NOT NULL,      -- allow | deny | ask | rate-limited
    rule       TEXT,
    level      TEXT,
    disclosed  TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
-- Rate limits count a peer's recent answered requests.
CREATE INDEX audit_peer_time ON audit_log(peer_key, at_utc);
