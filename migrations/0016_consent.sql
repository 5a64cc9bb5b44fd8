-- Consent you can prove (issue 10, P6): per contact and purpose, the current state on
-- the contact (for filters and the one "may we send" check) and an append-only log of
-- every change with how it was given, the wording or its reference, the evidence and
-- who recorded it. Rows leave the log only with their contact (erasure).
ALTER TABLE contacts ADD COLUMN consent_marketing TEXT NOT NULL DEFAULT 'unknown'
    CHECK (consent_marketing IN ('unknown', 'opted_in', 'opted_out'));
ALTER TABLE contacts ADD COLUMN consent_utility TEXT NOT NULL DEFAULT 'unknown'
    CHECK (consent_utility IN ('unknown', 'opted_in', 'opted_out'));
CREATE INDEX contacts_consent_marketing ON contacts(consent_marketing);

CREATE TABLE consent_log (
    id          INTEGER PRIMARY KEY,
    contact_id  INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    purpose     TEXT NOT NULL CHECK (purpose IN ('marketing', 'utility')),
    state       TEXT NOT NULL CHECK (state IN ('opted_in', 'opted_out')),
    previous    TEXT NOT NULL CHECK (previous IN ('unknown', 'opted_in', 'opted_out')),
    source      TEXT NOT NULL,
    -- When the person gave or withdrew it (may be before it was recorded here).
    occurred_at INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL,
    -- The exact wording shown, or a reference to it.
    wording     TEXT NOT NULL DEFAULT '',
    -- sha256:<file hash> row <n>; the wamid of the message; the API key; Meta's error.
    evidence    TEXT NOT NULL DEFAULT '',
    actor_id    INTEGER,
    actor       TEXT NOT NULL
);
CREATE INDEX consent_log_contact ON consent_log(contact_id, id);

CREATE TRIGGER consent_log_append_only BEFORE UPDATE ON consent_log
BEGIN
    SELECT RAISE(ABORT, 'the consent log is append-only');
END;
