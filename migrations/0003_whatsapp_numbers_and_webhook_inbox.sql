-- WhatsApp Business numbers connected by an admin, and the durable inbox that every
-- signed webhook delivery is written to before Meta gets its 200.

CREATE TABLE wa_numbers (
    id                  INTEGER PRIMARY KEY,
    display_name        TEXT NOT NULL,
    phone_number_id     TEXT NOT NULL UNIQUE,
    waba_id             TEXT NOT NULL,
    business_manager_id TEXT NOT NULL,
    -- Secrets: write-only in the UI, never logged; protected by SQLCipher.
    access_token        TEXT NOT NULL,
    app_secret          TEXT NOT NULL,
    verify_token        TEXT NOT NULL,
    mps                 INTEGER NOT NULL DEFAULT 80 CHECK (mps BETWEEN 1 AND 1000),
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);

-- Raw deliveries, exactly as signed. state: new -> processing -> done | quarantined.
CREATE TABLE webhook_inbox (
    id          INTEGER PRIMARY KEY,
    received_at INTEGER NOT NULL,
    body        BLOB NOT NULL,
    state       TEXT NOT NULL DEFAULT 'new' CHECK (state IN ('new', 'processing', 'done', 'quarantined')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT
);
CREATE INDEX webhook_inbox_open ON webhook_inbox(state) WHERE state <> 'done';

-- Refused deliveries and other security events (rate-limited per kind and address).
CREATE TABLE security_events (
    id     INTEGER PRIMARY KEY,
    at     INTEGER NOT NULL,
    kind   TEXT NOT NULL,
    ip     TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX security_events_at ON security_events(at);
