-- The agents' inbox: outbound messages visible from the moment they are queued, notes
-- and system events inline, labels, canned responses, agent availability for
-- round-robin, and full-text search (FTS5 lives inside the encrypted database).

-- A reply is a message row at once (status 'pending'), linked to its outbox row; the
-- dispatcher fills in the wamid when Meta accepts it.
ALTER TABLE messages ADD COLUMN outbox_id INTEGER;
ALTER TABLE messages ADD COLUMN author_id INTEGER REFERENCES users(id) ON DELETE SET NULL;
CREATE UNIQUE INDEX messages_outbox ON messages(outbox_id) WHERE outbox_id IS NOT NULL;

-- The newest inbound message (unread = newer than what the agent has read).
ALTER TABLE conversations ADD COLUMN last_inbound_id INTEGER;
UPDATE conversations SET last_inbound_id =
    (SELECT max(id) FROM messages m WHERE m.conversation_id = conversations.id AND m.direction = 'in');
CREATE INDEX conversations_assignee_status ON conversations(assignee_id, status, last_message_at DESC);

-- Private notes (never sent) and system events (assigned, status, labels) in the thread.
CREATE TABLE conversation_events (
    id              INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,
    actor_id        INTEGER REFERENCES users(id) ON DELETE SET NULL,
    actor_name      TEXT NOT NULL DEFAULT '',
    body            TEXT NOT NULL DEFAULT '',
    at              INTEGER NOT NULL
);
CREATE INDEX conversation_events_conversation ON conversation_events(conversation_id, id);

CREATE TABLE labels (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE COLLATE NOCASE,
    color      TEXT NOT NULL DEFAULT 'grey',
    created_at INTEGER NOT NULL
);
CREATE TABLE conversation_labels (
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    label_id        INTEGER NOT NULL REFERENCES labels(id) ON DELETE CASCADE,
    PRIMARY KEY (conversation_id, label_id)
) WITHOUT ROWID;
CREATE INDEX conversation_labels_label ON conversation_labels(label_id, conversation_id);
CREATE TABLE contact_labels (
    contact_id INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    label_id   INTEGER NOT NULL REFERENCES labels(id) ON DELETE CASCADE,
    PRIMARY KEY (contact_id, label_id)
) WITHOUT ROWID;

CREATE TABLE canned_responses (
    id         INTEGER PRIMARY KEY,
    shortcut   TEXT NOT NULL UNIQUE COLLATE NOCASE,
    body       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Round-robin: who takes new conversations, and who had the last one.
ALTER TABLE users ADD COLUMN available INTEGER NOT NULL DEFAULT 1;
ALTER TABLE users ADD COLUMN last_assigned_at INTEGER NOT NULL DEFAULT 0;

-- Search. Message text by words (prefix on the last one); contacts by any part of the
-- name, phone or BSUID (trigram). Both are external-content tables kept by triggers.
CREATE VIRTUAL TABLE messages_fts USING fts5(
    body, content='messages', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts(rowid, body) VALUES (new.id, new.body);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF body ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
    INSERT INTO messages_fts(rowid, body) VALUES (new.id, new.body);
END;
INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');

CREATE VIRTUAL TABLE contacts_fts USING fts5(
    name, profile_name, phone_e164, bsuid, content='contacts', content_rowid='id', tokenize='trigram'
);
CREATE TRIGGER contacts_fts_insert AFTER INSERT ON contacts BEGIN
    INSERT INTO contacts_fts(rowid, name, profile_name, phone_e164, bsuid)
    VALUES (new.id, new.name, new.profile_name, new.phone_e164, new.bsuid);
END;
CREATE TRIGGER contacts_fts_delete AFTER DELETE ON contacts BEGIN
    INSERT INTO contacts_fts(contacts_fts, rowid, name, profile_name, phone_e164, bsuid)
    VALUES ('delete', old.id, old.name, old.profile_name, old.phone_e164, old.bsuid);
END;
CREATE TRIGGER contacts_fts_update AFTER UPDATE OF name, profile_name, phone_e164, bsuid ON contacts BEGIN
    INSERT INTO contacts_fts(contacts_fts, rowid, name, profile_name, phone_e164, bsuid)
    VALUES ('delete', old.id, old.name, old.profile_name, old.phone_e164, old.bsuid);
    INSERT INTO contacts_fts(rowid, name, profile_name, phone_e164, bsuid)
    VALUES (new.id, new.name, new.profile_name, new.phone_e164, new.bsuid);
END;
INSERT INTO contacts_fts(contacts_fts) VALUES ('rebuild');

-- The thread finds a message's media by its wamid.
CREATE INDEX media_files_wamid ON media_files(wamid);
-- A file an agent sent belongs to its message (inbound files are found by wamid).
ALTER TABLE media_files ADD COLUMN message_id INTEGER REFERENCES messages(id) ON DELETE SET NULL;
CREATE INDEX media_files_message ON media_files(message_id) WHERE message_id IS NOT NULL;
