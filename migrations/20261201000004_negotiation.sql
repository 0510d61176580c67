-- Negotiation (issue 6, docs/protocol.md §12–14): meetings we organize or
-- attend, holds on time while a meeting is negotiated, requests waiting for
-- the owner's approval, and what follows a task handed to another agent.
-- Times in *_utc columns are Unix seconds (UTC). JIDs are bare and
-- normalized (lower-case) by the callers.

-- One row per meeting, keyed by its iCalendar UID. The organizer's row exists
-- from the first negotiation step; an attendee's row from its booking. The
-- booked time itself lives in `events` (source 'attache:meetings') so that
-- agenda, busy, free and export see it like any other event.
CREATE TABLE meetings (
    uid               TEXT PRIMARY KEY,          -- iCalendar UID chosen by the organizer
    short_id          INTEGER NOT NULL UNIQUE,   -- the number the owner types in chat
    role              TEXT NOT NULL,             -- organizer | attendee
    organizer         TEXT NOT NULL COLLATE NOCASE, -- organizer agent's bare JID (ours for role organizer)
    organizer_address TEXT,                      -- ORGANIZER of the VEVENT: the organizer's owner (JID or mailto:)
    summary           TEXT NOT NULL DEFAULT '',
    sequence          INTEGER NOT NULL DEFAULT 0, -- iCalendar SEQUENCE last agreed
    start_utc         INTEGER,                   -- NULL while negotiating
    end_utc           INTEGER,
    status            TEXT NOT NULL,             -- negotiating | booked | cancelled | failed
    state_json        TEXT,                      -- organizer's negotiation state machine; NULL for attendees
    created_utc       INTEGER NOT NULL,
    updated_utc       INTEGER NOT NULL
);
-- The `meetings` chat command: live ones by start.
CREATE INDEX meetings_status_start ON meetings(status, start_utc);

-- Who is invited to a meeting and what they answered (iTIP PARTSTAT).
CREATE TABLE meeting_attendees (
    uid       TEXT NOT NULL REFERENCES meetings(uid) ON DELETE CASCADE,
    person    TEXT NOT NULL COLLATE NOCASE,  -- the person's bare JID, or a mailto: address
    agent     TEXT COLLATE NOCASE,           -- their agent's bare JID; NULL for people without one
    name      TEXT,                          -- display name (CN)
    required  INTEGER NOT NULL DEFAULT 1,    -- 1 REQ-PARTICIPANT, 0 OPT-PARTICIPANT
    partstat  TEXT NOT NULL,                 -- NEEDS-ACTION | TENTATIVE | ACCEPTED | DECLINED
    PRIMARY KEY (uid, person)
);

-- Time held for a meeting under negotiation, ours as organizer included.
-- A hold is live while expires_utc > now; an expired row is kept (not
-- blocking) until released, booked or purged a day later, so a late
-- `<confirm>` still knows the time and can book it if it is still free.
CREATE TABLE holds (
    meeting_uid       TEXT NOT NULL,
    organizer         TEXT NOT NULL COLLATE NOCASE, -- organizer agent's bare JID
    organizer_address TEXT,                      -- the organizer's owner, for ORGANIZER at booking
    sequence          INTEGER NOT NULL,
    start_utc         INTEGER NOT NULL,
    end_utc           INTEGER NOT NULL,
    expires_utc       INTEGER NOT NULL,
    summary           TEXT,                      -- plain text, ≤ 200 chars (checked by the caller)
    attendees         TEXT NOT NULL DEFAULT '[]', -- JSON array of `domain::Attendee`
    expired           INTEGER NOT NULL DEFAULT 0, -- 1 once `expire_holds` has reported it
    PRIMARY KEY (meeting_uid, organizer)
);
-- The free check and the live view look up live holds by time.
CREATE INDEX holds_expiry ON holds(expires_utc);

-- Peers' requests a rule routed to `ask`, waiting for `approve N` / `deny N`.
-- AUTOINCREMENT: a number the owner saw is never reused for another request.
CREATE TABLE pending (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    peer          TEXT NOT NULL COLLATE NOCASE, -- the requester's bare JID
    request_id    TEXT NOT NULL,                -- the requester's request-id, for the later <reply>
    action        TEXT NOT NULL,                -- the policy action (freebusy, propose-meeting, offer-task)
    payload       TEXT NOT NULL,                -- the request element, serialized, to perform on approval
    description   TEXT NOT NULL,                -- one line shown to the owner
    created_utc   INTEGER NOT NULL,
    expires_utc   INTEGER NOT NULL,
    state         TEXT NOT NULL,                -- waiting | approved | denied | expired
    resolved_utc  INTEGER,                      -- when it left `waiting`
    UNIQUE (peer, request_id)                   -- a retried request is the same question
);
CREATE INDEX pending_state_expiry ON pending(state, expires_utc);

-- Task handoff (§13). On the offerer's side: whom we offered the task to and
-- what they last reported. On the assignee's side: where the task came from.
ALTER TABLE tasks ADD COLUMN assignee_agent TEXT COLLATE NOCASE;  -- offerer: agent the task was offered to
ALTER TABLE tasks ADD COLUMN remote_partstat TEXT;                -- offerer: last partstat reported (NEEDS-ACTION … CANCELLED)
ALTER TABLE tasks ADD COLUMN remote_percent INTEGER;              -- offerer: last percent reported (0–100)
ALTER TABLE tasks ADD COLUMN delegatee_agent TEXT COLLATE NOCASE; -- both: agent it was delegated onward to
ALTER TABLE tasks ADD COLUMN origin_agent TEXT COLLATE NOCASE;    -- assignee: the offering agent
ALTER TABLE tasks ADD COLUMN origin_uid TEXT;                     -- assignee: the offerer's task UID
ALTER TABLE tasks ADD COLUMN origin_chain TEXT;                   -- assignee: JSON array of delegating agents, oldest first
-- One task per offer: a retried or replayed offer finds the task it made.
CREATE UNIQUE INDEX tasks_origin ON tasks(origin_agent, origin_uid) WHERE origin_agent IS NOT NULL;
