-- Requests other agents sent us, remembered with our reply so that a
-- retried request (same peer, same request-id) gets the same answer and has
-- no second effect (docs/protocol.md §7).
CREATE TABLE peer_requests (
    peer          TEXT NOT NULL,      -- the requester's bare JID
    request_id    TEXT NOT NULL,
    digest        TEXT NOT NULL,      -- SHA-256 of the request payload
    reply         TEXT NOT NULL,      -- JSON of the reply (result XML or error parts)
    answered_utc  INTEGER NOT NULL,
    PRIMARY KEY (peer, request_id)
);
CREATE INDEX peer_requests_age ON peer_requests(answered_utc);

-- Requests we send to other agents, persisted before sending: re-sent when
-- the peer comes online, dropped with a note to the owner at the deadline.
CREATE TABLE outbox (
    request_id    TEXT PRIMARY KEY,
    peer          TEXT NOT NULL,      -- the peer agent's bare JID
    payload       TEXT NOT NULL,      -- the request element, serialized
    purpose       TEXT NOT NULL,      -- JSON: what the owner asked, to tell them the outcome
    created_utc   INTEGER NOT NULL,
    deadline_utc  INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    state         TEXT NOT NULL,      -- waiting | answered | expired
    reply         TEXT                -- JSON of the reply once answered
);
CREATE INDEX outbox_peer_state ON outbox(peer, state);
