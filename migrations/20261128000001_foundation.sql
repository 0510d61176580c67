-- The foundation schema: contacts, calendar events, tasks, and the
-- materialized occurrence index the availability engine queries by range.
-- Times in columns named *_utc are Unix seconds (UTC); iCalendar values that
-- may be DATE, floating or zoned are stored as JSON of `domain::IcalTime`.

-- Where imported components came from, so `attache sync FILE` can remove
-- what disappeared from that file.
CREATE TABLE sources (
    id          INTEGER PRIMARY KEY,
    path        TEXT NOT NULL UNIQUE,
    imported_at TEXT NOT NULL
);

CREATE TABLE contacts (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE COLLATE NOCASE,
    jid        TEXT NOT NULL UNIQUE COLLATE NOCASE,
    agent_jid  TEXT UNIQUE COLLATE NOCASE,
    created_at TEXT NOT NULL
);

CREATE TABLE contact_groups (
    contact_id INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    group_name TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY (contact_id, group_name)
);

-- One row per VEVENT component: a series master or single event
-- (recurrence_key = '') or an override of one instance.
CREATE TABLE events (
    id               INTEGER PRIMARY KEY,
    uid              TEXT NOT NULL,
    recurrence_key   TEXT NOT NULL DEFAULT '',
    this_and_future  INTEGER NOT NULL DEFAULT 0,
    dtstart          TEXT NOT NULL,             -- JSON IcalTime
    dtend            TEXT NOT NULL,             -- JSON EventEnd
    rrule            TEXT,                      -- JSON array of raw RRULE values, NULL if none
    rdates           TEXT NOT NULL DEFAULT '[]',
    exdates          TEXT NOT NULL DEFAULT '[]',
    recurrence_id    TEXT,                      -- JSON RecurrenceId for overrides
    status           TEXT NOT NULL,             -- confirmed | tentative | cancelled
    transp           TEXT NOT NULL,             -- opaque | transparent
    class            TEXT NOT NULL,             -- public | private | confidential
    sequence         INTEGER NOT NULL DEFAULT 0,
    summary          TEXT,
    location         TEXT,
    -- Bounds of the time this component can touch (NULL end: unbounded
    -- recurrence), so on-demand expansion loads only candidates.
    span_start_utc   INTEGER NOT NULL,
    span_end_utc     INTEGER,
    raw              TEXT NOT NULL,             -- the component as imported, for lossless export
    source_id        INTEGER REFERENCES sources(id) ON DELETE SET NULL,
    updated_at       TEXT NOT NULL,
    UNIQUE (uid, recurrence_key)
);
CREATE INDEX events_span ON events(span_start_utc);
CREATE INDEX events_source ON events(source_id);

-- VTIMEZONE components seen in imports, re-exported so files stay valid.
CREATE TABLE timezones (
    tzid TEXT PRIMARY KEY,
    raw  TEXT NOT NULL
);

-- Materialized instances over the indexed horizon (see `meta`). Rebuilt per
-- UID whenever that UID changes; a cache of what `calendar::expand` says.
CREATE TABLE occurrences (
    uid               TEXT NOT NULL,
    start_utc         INTEGER NOT NULL,
    end_utc           INTEGER NOT NULL,
    recurrence_id_utc INTEGER NOT NULL,
    status            TEXT NOT NULL,            -- confirmed | tentative
    transp            TEXT NOT NULL,
    all_day           INTEGER NOT NULL,
    class             TEXT NOT NULL,
    summary           TEXT,
    location          TEXT
);
CREATE INDEX occurrences_start ON occurrences(start_utc);
CREATE INDEX occurrences_uid ON occurrences(uid);

CREATE TABLE tasks (
    id               INTEGER PRIMARY KEY,       -- the short stable id the owner types
    uid              TEXT NOT NULL UNIQUE,
    summary          TEXT NOT NULL,
    description      TEXT,
    due              TEXT,                      -- JSON IcalTime
    priority         INTEGER,
    status           TEXT NOT NULL,             -- needs-action | in-process | completed | cancelled
    percent_complete INTEGER,
    completed_utc    INTEGER,
    delegated_to     TEXT,
    delegated_from   TEXT,
    sequence         INTEGER NOT NULL DEFAULT 0,
    raw              TEXT,                      -- as imported; NULL once changed here (export rebuilds it)
    source_id        INTEGER REFERENCES sources(id) ON DELETE SET NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Covers the busy query (start range, end, status, transparency) so that it
-- never touches the table rows.
CREATE INDEX occurrences_busy ON occurrences(start_utc, end_utc, transp, status);
