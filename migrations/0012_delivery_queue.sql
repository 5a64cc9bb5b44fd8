-- The intake finds due deliveries through an index that holds only open rows, in id
-- order, with the columns its filter reads: finding work costs the same with a
-- million processed deliveries kept as with none (the old index on `state` could not
-- serve `state = 'new' OR state = 'quarantined' AND …`, so every round scanned and
-- decrypted the whole table).
DROP INDEX IF EXISTS webhook_inbox_open;
CREATE INDEX webhook_inbox_due ON webhook_inbox(id, state, attempts, next_attempt_at) WHERE state <> 'done';
