-- Contacts (keyed by BSUID and/or WhatsApp id, so a user who hides the phone number
-- behind a username is still one contact), messages in both directions, their status
-- history (P4), the usage ledger from Meta's pricing data (P9), and account news.

CREATE TABLE contacts (
    id           INTEGER PRIMARY KEY,
    bsuid        TEXT UNIQUE,
    wa_id        TEXT UNIQUE,
    profile_name TEXT NOT NULL DEFAULT '',
    username     TEXT,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER,
    CHECK (bsuid IS NOT NULL OR wa_id IS NOT NULL)
);

CREATE TABLE messages (
    id              INTEGER PRIMARY KEY,
    phone_number_id TEXT NOT NULL,
    contact_id      INTEGER REFERENCES contacts(id) ON DELETE CASCADE,
    direction       TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    wamid           TEXT UNIQUE,
    kind            TEXT NOT NULL,
    body            TEXT NOT NULL DEFAULT '',
    detail          TEXT NOT NULL DEFAULT '{}',
    understood      INTEGER NOT NULL DEFAULT 1,
    reply_to        TEXT,
    forwarded       INTEGER NOT NULL DEFAULT 0,
    referral        TEXT,
    sent_at         INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    status          TEXT,
    status_at       INTEGER,
    error_code      INTEGER,
    error_title     TEXT,
    error_details   TEXT
);
CREATE INDEX messages_contact ON messages(contact_id, sent_at);

-- Every status Meta reported, once per (message, status).
CREATE TABLE message_statuses (
    wamid         TEXT NOT NULL,
    status        TEXT NOT NULL,
    at            INTEGER NOT NULL,
    error_code    INTEGER,
    error_title   TEXT,
    error_details TEXT,
    PRIMARY KEY (wamid, status)
);

CREATE TABLE usage_ledger (
    wamid        TEXT NOT NULL,
    category     TEXT NOT NULL,
    pricing_type TEXT NOT NULL,
    billable     INTEGER NOT NULL,
    model        TEXT NOT NULL,
    at           INTEGER NOT NULL,
    PRIMARY KEY (wamid, category, pricing_type)
);

CREATE TABLE wa_account_events (
    id              INTEGER PRIMARY KEY,
    at              INTEGER NOT NULL,
    waba_id         TEXT NOT NULL,
    phone_number_id TEXT NOT NULL DEFAULT '',
    field           TEXT NOT NULL,
    event           TEXT NOT NULL,
    summary         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX wa_account_events_waba ON wa_account_events(waba_id, at);

-- A delivery that failed to process is retried later, with backoff.
ALTER TABLE webhook_inbox ADD COLUMN next_attempt_at INTEGER;
