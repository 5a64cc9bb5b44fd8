-- Conversations: one per (business number, contact). The inbox works on these:
-- status (open, pending, resolved, snoozed until a time), who it is assigned to, the
-- last activity (newest first), when the customer last wrote (the 24-hour window),
-- and what each agent has read.
CREATE TABLE conversations (
    id               INTEGER PRIMARY KEY,
    phone_number_id  TEXT NOT NULL,
    contact_id       INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    status           TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'pending', 'resolved', 'snoozed')),
    snoozed_until    INTEGER,
    assignee_id      INTEGER REFERENCES users(id) ON DELETE SET NULL,
    last_message_id  INTEGER,
    last_message_at  INTEGER NOT NULL,
    last_inbound_at  INTEGER,
    preview          TEXT NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    UNIQUE (phone_number_id, contact_id)
);
CREATE INDEX conversations_activity ON conversations(last_message_at DESC, id DESC);
CREATE INDEX conversations_status ON conversations(status, last_message_at DESC);
CREATE INDEX conversations_assignee ON conversations(assignee_id, last_message_at DESC);

-- The newest message each user has seen in a conversation (unread counts per agent).
CREATE TABLE conversation_reads (
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    last_read_id    INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);

ALTER TABLE messages ADD COLUMN conversation_id INTEGER REFERENCES conversations(id) ON DELETE CASCADE;
CREATE INDEX messages_conversation ON messages(conversation_id, id);
