-- What the business knows about a contact beyond WhatsApp's profile: its own name for
-- the person, the phone in E.164, custom attributes (JSON object of strings).
ALTER TABLE contacts ADD COLUMN name TEXT;
ALTER TABLE contacts ADD COLUMN phone_e164 TEXT;
ALTER TABLE contacts ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';
ALTER TABLE contacts ADD COLUMN updated_at INTEGER;
CREATE UNIQUE INDEX contacts_phone ON contacts(phone_e164) WHERE phone_e164 IS NOT NULL;
-- Inbound contacts got their phone from WhatsApp's id (digits without +).
UPDATE contacts SET phone_e164 = '+' || wa_id WHERE wa_id IS NOT NULL AND phone_e164 IS NULL;
