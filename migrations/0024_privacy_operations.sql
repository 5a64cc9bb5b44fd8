-- Privacy operations (issue 13): retention settings and runs, legal holds, the
-- data-subject request register, policy notices with their acknowledgements, and the
-- version of the terms accepted at setup.

-- An admin's period per kind of data, when it differs from the policy's default. Longer
-- than the policy only with a written reason (shown on the evidence page).
CREATE TABLE retention_settings (
    kind       TEXT PRIMARY KEY,
    days       INTEGER NOT NULL CHECK (days >= 1),
    reason     TEXT NOT NULL DEFAULT '',
    updated_at INTEGER NOT NULL,
    updated_by TEXT NOT NULL
);

-- Each retention purge (the daily job, or an erasure), and what it removed per kind.
CREATE TABLE retention_runs (
    id           INTEGER PRIMARY KEY,
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    -- 'retention' (the daily job) or 'erasure:<request id>'.
    cause        TEXT NOT NULL,
    -- Whether the WAL checkpoint (TRUNCATE) after the purge completed.
    checkpointed INTEGER NOT NULL DEFAULT 0,
    error        TEXT
);
CREATE TABLE retention_removed (
    run_id INTEGER NOT NULL REFERENCES retention_runs(id) ON DELETE CASCADE,
    kind   TEXT NOT NULL,
    count  INTEGER NOT NULL,
    PRIMARY KEY (run_id, kind)
) WITHOUT ROWID;

-- A contact under legal hold keeps everything (no retention, no erasure) while held.
CREATE TABLE legal_holds (
    contact_id INTEGER PRIMARY KEY REFERENCES contacts(id) ON DELETE CASCADE,
    reason     TEXT NOT NULL,
    placed_at  INTEGER NOT NULL,
    placed_by  TEXT NOT NULL
);

-- Data-subject requests (P19): who asked, about whom, what, when, the 30-day deadline,
-- who handled it and what was done. Kept as the record that the right was honoured.
CREATE TABLE privacy_requests (
    id           INTEGER PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('access', 'correction', 'erasure', 'portability', 'objection')),
    requester    TEXT NOT NULL,
    subject_phone TEXT,
    subject_bsuid TEXT,
    contact_id   INTEGER REFERENCES contacts(id) ON DELETE SET NULL,
    details      TEXT NOT NULL DEFAULT '',
    received_at  INTEGER NOT NULL,
    due_at       INTEGER NOT NULL,
    status       TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'done', 'refused')),
    handler_id   INTEGER REFERENCES users(id) ON DELETE SET NULL,
    handler      TEXT NOT NULL DEFAULT '',
    outcome      TEXT NOT NULL DEFAULT '',
    closed_at    INTEGER,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    CHECK (subject_phone IS NOT NULL OR subject_bsuid IS NOT NULL OR contact_id IS NOT NULL)
);
CREATE INDEX privacy_requests_open ON privacy_requests(status, due_at);

-- Policy notices (P22): published by an admin, shown to every user until acknowledged.
CREATE TABLE policy_notices (
    id           INTEGER PRIMARY KEY,
    title        TEXT NOT NULL,
    body         TEXT NOT NULL,
    published_at INTEGER NOT NULL,
    published_by TEXT NOT NULL,
    withdrawn_at INTEGER
);
CREATE TABLE policy_notice_acks (
    notice_id INTEGER NOT NULL REFERENCES policy_notices(id) ON DELETE CASCADE,
    user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    at        INTEGER NOT NULL,
    PRIMARY KEY (notice_id, user_id)
) WITHOUT ROWID;

-- The version of the terms (privacy policy) the owner accepted at setup (P21).
ALTER TABLE business ADD COLUMN terms_version TEXT NOT NULL DEFAULT '';

-- Deleting from the search indexes removes the words from the index itself, instead of
-- leaving them in old segments behind a delete marker (FTS5 secure-delete).
INSERT INTO messages_fts(messages_fts, rank) VALUES ('secure-delete', 1);
INSERT INTO contacts_fts(contacts_fts, rank) VALUES ('secure-delete', 1);
