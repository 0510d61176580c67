-- `attache meet` (issue 6): the CLI cannot negotiate itself (it has no XMPP
-- session), so it leaves an order here for the running agent, which picks
-- it up within a second, starts the negotiation and records which meeting
-- it became. The CLI then follows that meeting's row until it is decided.
-- Times in *_utc columns are Unix seconds (UTC).
CREATE TABLE meeting_orders (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    order_json   TEXT NOT NULL,             -- the resolved order (summary, duration, window, attendees, quorum)
    created_utc  INTEGER NOT NULL,
    updated_utc  INTEGER NOT NULL,
    state        TEXT NOT NULL,             -- requested | started | rejected
    meeting_uid  TEXT,                      -- the meeting it became, once started
    error        TEXT                       -- why it was rejected (no agent, the negotiator refused)
);
-- The agent looks for requested orders on every tick.
CREATE INDEX meeting_orders_state ON meeting_orders(state, id);

-- How a negotiation ended, as the owner was told it, and (when it failed)
-- why: the chat message is gone once sent, the CLI and later readers need it.
ALTER TABLE meetings ADD COLUMN outcome TEXT;
ALTER TABLE meetings ADD COLUMN failure_reason TEXT;
