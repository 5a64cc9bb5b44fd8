-- One outbox for every message Whacaster sends (agent replies, bot, campaigns). A row
-- is marked `sending` before the HTTP call; after a crash, `sending` rows without a
-- wamid go to `needs_review` instead of being sent again.

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    number_id       INTEGER NOT NULL REFERENCES wa_numbers(id) ON DELETE CASCADE,
    recipient       TEXT NOT NULL,
    contact_id      INTEGER REFERENCES contacts(id) ON DELETE SET NULL,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    origin          TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'sending', 'sent', 'failed', 'needs_review', 'cancelled')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    wamid           TEXT UNIQUE,
    error_code      INTEGER,
    error_class     TEXT,
    error_message   TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX outbox_due ON outbox(state, next_attempt_at);

-- Set when Meta says the channel itself is broken (expired token, locked account):
-- sending on the number pauses until an admin fixes it.
ALTER TABLE wa_numbers ADD COLUMN paused_reason TEXT;
