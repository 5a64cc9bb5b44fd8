-- Segments (issue 10): a saved audience, a name and a typed filter stored as JSON
-- (contacts::segments::Filter; never SQL). Campaigns read a segment's members to plan
-- their recipient ledger; the count and the sample on its page are live.
CREATE TABLE segments (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE COLLATE NOCASE,
    filter     TEXT NOT NULL DEFAULT '{}',
    created_by TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- A segment's "last inbound message" and "number they wrote to" criteria read inbound
-- messages only, and a live count over 100k contacts must not scan the messages:
-- who wrote since a time (time first: "the last 30 days" reads 30 days of messages),
-- and whether a contact ever wrote, or wrote to a number (contact first, one seek).
CREATE INDEX messages_inbound_recent ON messages(sent_at, contact_id) WHERE direction = 'in';
CREATE INDEX messages_inbound_number ON messages(contact_id, phone_number_id) WHERE direction = 'in';

-- A label criterion starts from the label: contacts by label (conversations by label
-- has its index since 0011).
CREATE INDEX contact_labels_label ON contact_labels(label_id, contact_id);
