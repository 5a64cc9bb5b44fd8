-- Sign-in locks per (address, client) instead of per address: someone who knows the
-- owner's e-mail can lock only themselves out. A client is a known device (a cookie
-- given at a full sign-in) or else an IP address. The old per-address counters go:
-- they were only ever minutes of state.
DROP TABLE login_throttle;
CREATE TABLE login_throttle (
    email        TEXT NOT NULL COLLATE NOCASE,
    client       TEXT NOT NULL,
    failures     INTEGER NOT NULL,
    locked_until INTEGER NOT NULL DEFAULT 0,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (email, client)
);
CREATE INDEX login_throttle_locked ON login_throttle(locked_until);

-- Browsers that completed a sign-in; only the SHA-256 of the cookie is kept.
CREATE TABLE known_devices (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL
);
CREATE INDEX known_devices_user ON known_devices(user_id);
