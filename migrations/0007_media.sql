-- Media received in messages, downloaded from Meta at once (its URLs live 5 minutes,
-- its ids 7 days), checked against Meta's sha256, and stored encrypted (AES-256-GCM)
-- under a random file name in data_dir/media. Nothing here is plaintext on disk.
CREATE TABLE media_files (
    id              INTEGER PRIMARY KEY,
    media_id        TEXT NOT NULL UNIQUE,
    wamid           TEXT NOT NULL,
    phone_number_id TEXT NOT NULL,
    kind            TEXT NOT NULL,
    mime_type       TEXT NOT NULL DEFAULT '',
    filename        TEXT,
    sha256          TEXT NOT NULL DEFAULT '',
    size            INTEGER,
    stored_name     TEXT,
    state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'stored', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    error           TEXT,
    created_at      INTEGER NOT NULL
);
CREATE INDEX media_files_pending ON media_files(state, next_attempt_at);
