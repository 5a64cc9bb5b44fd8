-- The chatbot (issue 12). A number's whole bot (rules, flows, hours, texts) is one
-- validated JSON document, so it exports, imports and versions as one thing; the
-- intake reads it once per batch.
CREATE TABLE bots (
    number_id  INTEGER PRIMARY KEY REFERENCES wa_numbers(id) ON DELETE CASCADE,
    document   TEXT NOT NULL,
    version    INTEGER NOT NULL DEFAULT 1,
    updated_at INTEGER NOT NULL,
    updated_by INTEGER REFERENCES users(id) ON DELETE SET NULL
);

-- Where the bot is in each conversation: the flow step it waits on, what it collected,
-- and the closed period whose away message it got.
CREATE TABLE bot_sessions (
    conversation_id INTEGER PRIMARY KEY REFERENCES conversations(id) ON DELETE CASCADE,
    flow            TEXT,
    step            TEXT,
    retries         INTEGER NOT NULL DEFAULT 0,
    trail           TEXT NOT NULL DEFAULT '[]',
    collected       TEXT NOT NULL DEFAULT '{}',
    step_at         INTEGER,
    away_period     INTEGER,
    updated_at      INTEGER NOT NULL
);

-- Every decision the bot made about an inbound message (P7): what matched or why it
-- stayed silent, what it sent, what it stored, how long it took. Kept as long as
-- messages (retention purges by `at`).
CREATE TABLE bot_log (
    id              INTEGER PRIMARY KEY,
    number_id       INTEGER NOT NULL REFERENCES wa_numbers(id) ON DELETE CASCADE,
    conversation_id INTEGER REFERENCES conversations(id) ON DELETE CASCADE,
    contact_id      INTEGER REFERENCES contacts(id) ON DELETE CASCADE,
    message_id      INTEGER REFERENCES messages(id) ON DELETE CASCADE,
    at              INTEGER NOT NULL,
    decision        TEXT NOT NULL,
    detail          TEXT NOT NULL DEFAULT '',
    outbox_ids      TEXT NOT NULL DEFAULT '',
    stored          TEXT NOT NULL DEFAULT '',
    micros          INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX bot_log_conversation ON bot_log(conversation_id, id);
CREATE INDEX bot_log_number ON bot_log(number_id, id DESC);
CREATE INDEX bot_log_at ON bot_log(at);
CREATE INDEX bot_log_contact ON bot_log(contact_id);

-- Who has a conversation: while `bot_off_at` is set a person does (a hand-off, an
-- agent's reply or assignment) and the bot is silent; resolving it, or "give back to
-- the bot", clears it. On the conversation, so the inbox flips it in the same
-- transaction as the reply that takes over.
ALTER TABLE conversations ADD COLUMN bot_off_at INTEGER;
ALTER TABLE conversations ADD COLUMN bot_off_reason TEXT;
-- When it was last given back: a flow step the bot waited on before is not resumed.
ALTER TABLE conversations ADD COLUMN bot_back_at INTEGER;

-- The bot's loop guard counts its recent sends to a contact, and a take-over cancels
-- what it still had queued: both by contact.
CREATE INDEX outbox_contact ON outbox(contact_id, created_at);
