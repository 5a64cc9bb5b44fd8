-- A delivery for a phone number id that is not connected here is kept (quarantined,
-- not retried by itself) and names the number it waits for: connecting that number
-- puts it back in the queue. It never becomes a conversation nobody can answer.
ALTER TABLE webhook_inbox ADD COLUMN waiting_for TEXT;
CREATE INDEX webhook_inbox_waiting ON webhook_inbox(waiting_for) WHERE waiting_for IS NOT NULL;
