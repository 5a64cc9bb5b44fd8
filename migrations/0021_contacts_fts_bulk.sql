-- A bulk write (a chunk of an import) fills the contacts' search index with one
-- INSERT ... SELECT for all the contacts it made, instead of this trigger once per row:
-- FTS5 writes its pending terms out as a new segment at every statement savepoint, so
-- row by row it spent the import merging thousands of one-row segments. The row of
-- contacts_fts_paused exists only inside the write job that adds it: added and removed
-- in the same savepoint (a failed job rolls it back with everything else), see
-- contacts::with_search_index_batched. Every other write keeps the trigger.
CREATE TABLE contacts_fts_paused (id INTEGER PRIMARY KEY CHECK (id = 1));
DROP TRIGGER contacts_fts_insert;
CREATE TRIGGER contacts_fts_insert AFTER INSERT ON contacts
WHEN NOT EXISTS (SELECT 1 FROM contacts_fts_paused)
BEGIN
    INSERT INTO contacts_fts(rowid, name, profile_name, phone_e164, bsuid)
    VALUES (new.id, new.name, new.profile_name, new.phone_e164, new.bsuid);
END;
