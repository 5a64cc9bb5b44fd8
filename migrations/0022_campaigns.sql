-- Broadcast campaigns. A campaign is a draft until it starts; starting plans it: one
-- ledger row per recipient (queued with its frozen template values, or skipped with
-- the reason), written in one transaction. From then on the ledger, not a cursor, says
-- who was messaged: the runner hands queued rows to the outbox a few at a time, and
-- the outbox's outcomes and Meta's statuses move each row on. A campaign is finished
-- when no row is queued, sending or deferred.

CREATE TABLE campaigns (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    number_id     INTEGER NOT NULL REFERENCES wa_numbers(id) ON DELETE CASCADE,
    template_name TEXT NOT NULL,
    template_lang TEXT NOT NULL,
    -- JSON: variable name/number -> {"field"|"custom"|"text": ..., "fallback": ...}.
    variables     TEXT NOT NULL DEFAULT '{}',
    -- An uploaded media id or an https link for an IMAGE/VIDEO/DOCUMENT header.
    header_media  TEXT NOT NULL DEFAULT '',
    -- JSON: {"labels": [], "segments": [], "exclude_labels": [], "exclude_segments": []}.
    audience      TEXT NOT NULL DEFAULT '{}',
    -- Unix time to start at (NULL: when started by hand).
    send_at       INTEGER,
    -- Daily sending hours in the business's time zone, minutes after midnight (NULL:
    -- any time). hours_to < hours_from crosses midnight.
    hours_from    INTEGER CHECK (hours_from BETWEEN 0 AND 1439),
    hours_to      INTEGER CHECK (hours_to BETWEEN 0 AND 1440),
    -- A reply this many hours after the send counts for the campaign.
    reply_hours   INTEGER NOT NULL DEFAULT 72 CHECK (reply_hours BETWEEN 1 AND 720),
    state         TEXT NOT NULL DEFAULT 'draft'
                  CHECK (state IN ('draft', 'scheduled', 'running', 'paused', 'finished', 'cancelled')),
    -- Why it is paused: a catalogue key (campaigns.paused.*), and Meta's words if any.
    paused_reason TEXT,
    paused_detail TEXT NOT NULL DEFAULT '',
    -- A follow-up: the campaign it follows and whom it takes from it
    -- ('failed' = retryable failures, 'unread', 'unreplied').
    parent_id     INTEGER REFERENCES campaigns(id) ON DELETE SET NULL,
    follow_up     TEXT CHECK (follow_up IN ('failed', 'unread', 'unreplied')),
    created_by    TEXT NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    planned_at    INTEGER,
    finished_at   INTEGER
);
CREATE INDEX campaigns_state ON campaigns(state);

CREATE TABLE campaign_recipients (
    id          INTEGER PRIMARY KEY,
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    contact_id  INTEGER REFERENCES contacts(id) ON DELETE SET NULL,
    -- Where the message goes (wa_id, BSUID or phone digits), as the outbox takes it.
    recipient   TEXT NOT NULL,
    -- The template's values for this person, frozen when planned (JSON array).
    params      TEXT NOT NULL DEFAULT '[]',
    state       TEXT NOT NULL
                CHECK (state IN ('queued', 'sending', 'sent', 'delivered', 'read', 'replied', 'failed',
                                 'deferred', 'skipped', 'cancelled', 'needs_review')),
    -- Why skipped, failed, deferred or held: a catalogue key (campaigns.reason.*).
    reason      TEXT,
    error_code  INTEGER,
    detail      TEXT NOT NULL DEFAULT '',
    outbox_id   INTEGER,
    wamid       TEXT,
    -- 131049 deferrals so far (at most two, then failed).
    defers      INTEGER NOT NULL DEFAULT 0,
    next_at     INTEGER NOT NULL DEFAULT 0,
    sent_at     INTEGER,
    -- When the first outcome (sent or failed) was known: the error-rate window.
    done_at     INTEGER,
    replied_at  INTEGER,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX campaign_recipients_state ON campaign_recipients(campaign_id, state, id);
CREATE UNIQUE INDEX campaign_recipients_outbox ON campaign_recipients(outbox_id) WHERE outbox_id IS NOT NULL;
CREATE INDEX campaign_recipients_wamid ON campaign_recipients(wamid) WHERE wamid IS NOT NULL;
CREATE INDEX campaign_recipients_contact ON campaign_recipients(contact_id, sent_at) WHERE contact_id IS NOT NULL;
CREATE INDEX campaign_recipients_done ON campaign_recipients(campaign_id, done_at) WHERE done_at IS NOT NULL;
CREATE INDEX campaign_recipients_sent ON campaign_recipients(sent_at) WHERE sent_at IS NOT NULL;

-- What a campaign send carries into the outbox: named in the callback data Meta echoes.
ALTER TABLE outbox ADD COLUMN tag TEXT NOT NULL DEFAULT '';
-- Throughput refusals (130429, 131056) so far: they back a row off but are not failed
-- attempts.
ALTER TABLE outbox ADD COLUMN throttled INTEGER NOT NULL DEFAULT 0;

-- The portfolio's daily messaging limit (unique people per rolling 24 h outside a
-- customer service window): 250, 2000, 10000, 100000, or -1 for unlimited; NULL when
-- not known. Set on the number's page.
ALTER TABLE wa_numbers ADD COLUMN messaging_limit INTEGER;
