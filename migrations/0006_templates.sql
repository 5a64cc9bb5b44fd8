-- Message templates of each WhatsApp Business Account, synced read-only from Meta
-- (on demand and by a scheduled job); the inbox picks from the approved ones.
CREATE TABLE wa_templates (
    id           INTEGER PRIMARY KEY,
    waba_id      TEXT NOT NULL,
    meta_id      TEXT NOT NULL,
    name         TEXT NOT NULL,
    language     TEXT NOT NULL,
    status       TEXT NOT NULL,
    category     TEXT NOT NULL,
    quality      TEXT NOT NULL DEFAULT '',
    named_params INTEGER NOT NULL DEFAULT 0,
    header_text  TEXT NOT NULL DEFAULT '',
    body_text    TEXT NOT NULL DEFAULT '',
    footer_text  TEXT NOT NULL DEFAULT '',
    param_count  INTEGER NOT NULL DEFAULT 0,
    synced_at    INTEGER NOT NULL,
    UNIQUE (waba_id, name, language)
);
