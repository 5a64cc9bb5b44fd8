-- Encrypted backups (P15): every backup made (by the daily job or the CLI), its size
-- and whether it verified, for the System and evidence pages.
CREATE TABLE backups (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    file        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    verified    INTEGER NOT NULL,
    origin      TEXT NOT NULL CHECK (origin IN ('job', 'cli')),
    detail      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX backups_at ON backups(at);

-- The one price catalogue (P9): what one billable message costs per pricing category
-- and recipient country ('' = any country). Used by the usage page and the campaign
-- pre-flight's cost estimate.
CREATE TABLE usage_rates (
    category    TEXT NOT NULL,
    country     TEXT NOT NULL DEFAULT '',
    price       TEXT NOT NULL,
    currency    TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (category, country)
);

-- Hosts the appliance made outbound HTTP calls to, per day (P11): only Meta's Graph
-- API and what an admin configured may appear here.
CREATE TABLE outbound_hosts (
    host        TEXT NOT NULL,
    day         INTEGER NOT NULL,
    calls       INTEGER NOT NULL,
    last_at     INTEGER NOT NULL,
    PRIMARY KEY (host, day)
);

-- Database integrity as last checked by the job (the check reads every page).
CREATE TABLE integrity_runs (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    ok          INTEGER NOT NULL,
    detail      TEXT NOT NULL,
    millis      INTEGER NOT NULL
);
