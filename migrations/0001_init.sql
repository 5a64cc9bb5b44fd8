-- Foundation schema: business profile, accounts, sessions, MFA, audit, jobs.
-- Times are unix seconds (UTC). Secrets are stored only as hashes, except the
-- TOTP seed, which must be recoverable and is protected by SQLCipher.

CREATE TABLE business (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    name        TEXT NOT NULL,
    owner_name  TEXT NOT NULL,
    email       TEXT NOT NULL,
    phone       TEXT NOT NULL,
    address     TEXT NOT NULL,
    industry    TEXT NOT NULL,
    timezone    TEXT NOT NULL,
    locale      TEXT NOT NULL,
    terms_accepted_at INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE setup_tokens (
    token_hash TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);

CREATE TABLE users (
    id              INTEGER PRIMARY KEY,
    email           TEXT NOT NULL UNIQUE COLLATE NOCASE,
    name            TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('admin', 'supervisor', 'agent')),
    password_hash   TEXT,
    active          INTEGER NOT NULL DEFAULT 1,
    locale          TEXT,
    totp_secret     TEXT,
    totp_enabled    INTEGER NOT NULL DEFAULT 0,
    totp_last_step  INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

CREATE TABLE recovery_codes (
    user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE invites (
    token_hash TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL
);

-- stage: 'mfa' = password accepted, second factor pending;
--        'enrol' = signed in but must enrol TOTP before anything else;
--        'full' = signed in.
CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY,
    token_hash   TEXT NOT NULL UNIQUE,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    stage        TEXT NOT NULL CHECK (stage IN ('mfa', 'enrol', 'full')),
    mfa_failures INTEGER NOT NULL DEFAULT 0,
    ip           TEXT NOT NULL,
    user_agent   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE INDEX sessions_expiry ON sessions(expires_at);

-- Failures are counted per e-mail address, whether or not an account exists,
-- so the lockout answer never tells an attacker which addresses are real.
CREATE TABLE login_throttle (
    email        TEXT PRIMARY KEY COLLATE NOCASE,
    failures     INTEGER NOT NULL,
    locked_until INTEGER NOT NULL DEFAULT 0,
    updated_at   INTEGER NOT NULL
);

CREATE TABLE login_events (
    id         INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,
    email      TEXT NOT NULL,
    user_id    INTEGER REFERENCES users(id) ON DELETE SET NULL,
    outcome    TEXT NOT NULL,
    ip         TEXT NOT NULL,
    user_agent TEXT NOT NULL
);
CREATE INDEX login_events_at ON login_events(at);

CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    actor_id  INTEGER REFERENCES users(id) ON DELETE SET NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    details   TEXT NOT NULL DEFAULT '',
    ip        TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log(at);
CREATE INDEX audit_log_action ON audit_log(action);

CREATE TABLE job_runs (
    name         TEXT PRIMARY KEY,
    last_run_at  INTEGER,
    last_ok_at   INTEGER,
    last_error   TEXT,
    last_result  TEXT,
    duration_ms  INTEGER,
    runs         INTEGER NOT NULL DEFAULT 0,
    failures     INTEGER NOT NULL DEFAULT 0
);
