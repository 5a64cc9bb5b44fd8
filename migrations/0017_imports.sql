-- Contact imports (issue 10, P6): the uploaded file is kept here, inside the encrypted
-- database (never on disk in the clear), with its SHA-256 (the consent evidence names
-- it), the options, who uploaded it, and the progress the background worker committed
-- with each chunk of rows, so a restart resumes where the last commit ended and a row
-- is applied once or not at all. The skipped rows are the report.
CREATE TABLE imports (
    id          INTEGER PRIMARY KEY,
    -- draft: uploaded, waiting for the confirmation after the dry run (pages only).
    state       TEXT NOT NULL CHECK (state IN ('draft', 'queued', 'running', 'done', 'failed')),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    finished_at INTEGER,
    actor_id    INTEGER,
    actor       TEXT NOT NULL,
    actor_ip    TEXT NOT NULL DEFAULT '',
    file_name   TEXT NOT NULL DEFAULT '',
    file        BLOB NOT NULL,
    sha256      TEXT NOT NULL,
    -- JSON: labels, update, consent claim and source, the column mapping.
    options     TEXT NOT NULL DEFAULT '{}',
    -- Data rows in the file (blank rows not counted), and how many are done.
    total       INTEGER NOT NULL DEFAULT 0,
    processed   INTEGER NOT NULL DEFAULT 0,
    created     INTEGER NOT NULL DEFAULT 0,
    updated     INTEGER NOT NULL DEFAULT 0,
    unchanged   INTEGER NOT NULL DEFAULT 0,
    skipped     INTEGER NOT NULL DEFAULT 0,
    -- Contacts the import left without a marketing opt-in (they cannot get marketing).
    no_consent  INTEGER NOT NULL DEFAULT 0,
    error       TEXT
);
CREATE INDEX imports_open ON imports(state, id) WHERE state IN ('queued', 'running');

CREATE TABLE import_skips (
    import_id INTEGER NOT NULL REFERENCES imports(id) ON DELETE CASCADE,
    -- The file's physical line where the row starts (the header is line 1).
    line      INTEGER NOT NULL,
    phone     TEXT NOT NULL DEFAULT '',
    reason    TEXT NOT NULL,
    PRIMARY KEY (import_id, line)
) WITHOUT ROWID;
