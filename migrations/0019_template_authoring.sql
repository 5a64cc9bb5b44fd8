-- Templates made in the app (issue 10): the Meta app id a number needs for the
-- Resumable Upload API (media header samples), what a template keeps besides its
-- synced text (header kind, buttons, examples, why Meta rejected it, a coming category
-- change, who made it here), and the log of creations for Meta's 100 per hour per WABA.
ALTER TABLE wa_numbers ADD COLUMN meta_app_id TEXT NOT NULL DEFAULT '';

ALTER TABLE wa_templates ADD COLUMN header_format    TEXT NOT NULL DEFAULT '';
-- JSON of whatsapp::templates::Button (Whacaster's shape, not Meta's).
ALTER TABLE wa_templates ADD COLUMN buttons          TEXT NOT NULL DEFAULT '[]';
-- JSON of whatsapp::templates::Examples.
ALTER TABLE wa_templates ADD COLUMN examples         TEXT NOT NULL DEFAULT '{}';
ALTER TABLE wa_templates ADD COLUMN rejection_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE wa_templates ADD COLUMN rejection_detail TEXT NOT NULL DEFAULT '';
ALTER TABLE wa_templates ADD COLUMN category_change  TEXT NOT NULL DEFAULT '';
-- Empty for templates made elsewhere (found by the sync).
ALTER TABLE wa_templates ADD COLUMN created_by       TEXT NOT NULL DEFAULT '';
ALTER TABLE wa_templates ADD COLUMN created_at       INTEGER;
ALTER TABLE wa_templates ADD COLUMN updated_at       INTEGER NOT NULL DEFAULT 0;
CREATE INDEX wa_templates_by_meta_id ON wa_templates (meta_id);

CREATE TABLE wa_template_creations (
    id      INTEGER PRIMARY KEY,
    waba_id TEXT NOT NULL,
    at      INTEGER NOT NULL
);
CREATE INDEX wa_template_creations_by_waba ON wa_template_creations (waba_id, at);
