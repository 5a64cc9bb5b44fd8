//! Broadcast campaigns: an approved template sent to an audience, planned per recipient
//! and paced to Meta's limits.
//!
//! The shape follows what went wrong elsewhere (CAMPAIGNS-BOT.md A, E.1): no cursor
//! that moves before a send (listmonk skipped people after a restart), no "completed"
//! written up front and no scheduler that can pick a running campaign twice (Chatwoot
//! sent campaigns two and three times). Instead:
//!
//! - **Plan** ([`plan`]): starting a campaign writes a ledger row per person in one
//!   transaction: `queued` with the template's values frozen, or `skipped` with the
//!   reason. The start is guarded by the campaign's state, so it happens once.
//! - **Send** ([`runner`]): a loop hands a few queued rows at a time to the one outbox
//!   (`whatsapp::outbox`) at the number's rate minus a reserve for the inbox, within
//!   the sending hours and the portfolio's daily limit. Handing over is one write: the
//!   ledger row becomes `sending` with its outbox id.
//! - **Settle** ([`outcomes`]): the outbox's outcomes, Meta's statuses and the
//!   recipients' replies move each row on; a send a crash interrupted is held for review.
//! - **Finish**: only when no row is queued, sending or deferred.
//!
//! This module owns its tables and SQL; the pages (`routes`) and the API call
//! [`service`].

pub mod estimate;
pub mod outcomes;
pub mod plan;
pub mod routes;
pub mod runner;
pub mod service;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A string-backed enum stored in a TEXT column, with its catalogue spelling.
macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vm])* $v),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }

            pub fn parse(s: &str) -> Option<$name> {
                match s { $($s => Some($name::$v),)+ _ => None }
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(self.as_str().into())
            }
        }

        impl FromSql for $name {
            fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
                let s = v.as_str()?;
                $name::parse(s).ok_or_else(|| FromSqlError::Other(format!("{} {s}", stringify!($name)).into()))
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(
    /// Where a campaign stands.
    CampaignState {
        Draft = "draft",
        /// Starts by itself at `send_at`.
        Scheduled = "scheduled",
        Running = "running",
        /// Stopped claiming (by a person, a template Meta paused, a broken number, too
        /// many errors); resumes where it was.
        Paused = "paused",
        Finished = "finished",
        Cancelled = "cancelled",
    }
);

text_enum!(
    /// Where one recipient stands. Every planned person is in exactly one.
    RecipientState {
        /// Waiting for its turn.
        Queued = "queued",
        /// Handed to the outbox, no answer from Meta yet.
        Sending = "sending",
        /// Meta accepted it.
        Sent = "sent",
        Delivered = "delivered",
        Read = "read",
        /// The person wrote back within the campaign's reply time.
        Replied = "replied",
        /// For good, with Meta's code and reason.
        Failed = "failed",
        /// Tried again later (131049: a day at least).
        Deferred = "deferred",
        /// Never sent, with the reason (decided when planned or when its turn came).
        Skipped = "skipped",
        Cancelled = "cancelled",
        /// A crash left it maybe sent: a person decides.
        NeedsReview = "needs_review",
    }
);

text_enum!(
    /// Whom a follow-up takes from the campaign it follows.
    FollowUp {
        /// Failed with a reason worth trying again (not opted out, not undeliverable).
        Failed = "failed",
        /// Sent or delivered, not read.
        Unread = "unread",
        /// Sent, delivered or read, no reply.
        Unreplied = "unreplied",
    }
);

impl RecipientState {
    /// How far a sent message got: statuses only move a row forward.
    pub fn rank(self) -> u8 {
        match self {
            RecipientState::Sent => 1,
            RecipientState::Delivered => 2,
            RecipientState::Read => 3,
            RecipientState::Replied => 4,
            _ => 0,
        }
    }

    /// Still to be settled: the campaign is not finished while a row is here.
    pub fn open(self) -> bool {
        matches!(
            self,
            RecipientState::Queued | RecipientState::Sending | RecipientState::Deferred
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CampaignId(pub i64);

impl ToSql for CampaignId {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        self.0.to_sql()
    }
}

impl FromSql for CampaignId {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        i64::column_result(v).map(CampaignId)
    }
}

impl std::fmt::Display for CampaignId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Where one template variable's value comes from: exactly one of `field` (a contact
/// field: `name`, `first_name`, `profile_name`, `phone`), `custom` (a custom field's
/// key) or `text` (the same for everyone); `fallback` when the person's value is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

/// The contact fields a variable may name.
pub const FIELDS: [&str; 4] = ["name", "first_name", "profile_name", "phone"];

/// Who a campaign is for: anyone with one of the labels or in one of the segments,
/// minus anyone with an excluded label or in an excluded segment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Audience {
    pub labels: Vec<String>,
    pub segments: Vec<i64>,
    pub exclude_labels: Vec<String>,
    pub exclude_segments: Vec<i64>,
}

impl Audience {
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.segments.is_empty()
    }
}

/// A campaign as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Campaign {
    pub id: CampaignId,
    pub name: String,
    pub number_id: i64,
    pub template_name: String,
    pub template_lang: String,
    pub variables: BTreeMap<String, Variable>,
    pub header_media: String,
    pub audience: Audience,
    pub send_at: Option<i64>,
    /// Daily sending hours, minutes after midnight in the business's time zone.
    pub hours: Option<(i64, i64)>,
    pub reply_hours: i64,
    pub state: CampaignState,
    pub paused_reason: Option<String>,
    pub paused_detail: String,
    pub parent_id: Option<CampaignId>,
    pub follow_up: Option<FollowUp>,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub planned_at: Option<i64>,
    pub finished_at: Option<i64>,
}

const COLS: &str = "id, name, number_id, template_name, template_lang, variables, header_media, audience, send_at,
    hours_from, hours_to, reply_hours, state, paused_reason, paused_detail, parent_id, follow_up, created_by,
    created_at, updated_at, planned_at, finished_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Campaign> {
    let json = |i: usize| -> rusqlite::Result<String> { r.get(i) };
    let bad = |i: usize, e: serde_json::Error| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    };
    let variables = serde_json::from_str(&json(5)?).map_err(|e| bad(5, e))?;
    let audience = serde_json::from_str(&json(7)?).map_err(|e| bad(7, e))?;
    let (from, to): (Option<i64>, Option<i64>) = (r.get(9)?, r.get(10)?);
    Ok(Campaign {
        id: r.get(0)?,
        name: r.get(1)?,
        number_id: r.get(2)?,
        template_name: r.get(3)?,
        template_lang: r.get(4)?,
        variables,
        header_media: r.get(6)?,
        audience,
        send_at: r.get(8)?,
        hours: from.zip(to),
        reply_hours: r.get(11)?,
        state: r.get(12)?,
        paused_reason: r.get(13)?,
        paused_detail: r.get(14)?,
        parent_id: r.get(15)?,
        follow_up: r.get(16)?,
        created_by: r.get(17)?,
        created_at: r.get(18)?,
        updated_at: r.get(19)?,
        planned_at: r.get(20)?,
        finished_at: r.get(21)?,
    })
}

pub fn find(c: &Connection, id: CampaignId) -> rusqlite::Result<Option<Campaign>> {
    c.prepare_cached(&format!("SELECT {COLS} FROM campaigns WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()
}

/// Every campaign, newest first.
pub fn list(c: &Connection) -> rusqlite::Result<Vec<Campaign>> {
    let mut stmt = c.prepare(&format!("SELECT {COLS} FROM campaigns ORDER BY id DESC LIMIT 500"))?;
    let rows = stmt.query_map([], from_row)?;
    rows.collect()
}

/// Campaigns the runner looks after: running ones, and scheduled ones now due.
pub fn list_active(c: &Connection, now: i64) -> rusqlite::Result<Vec<Campaign>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {COLS} FROM campaigns
         WHERE state = 'running' OR (state = 'scheduled' AND coalesce(send_at, 0) <= ?1) ORDER BY id"
    ))?;
    let rows = stmt.query_map([now], from_row)?;
    rows.collect()
}

/// What a new campaign or a changed draft stores (checked by `service`).
#[derive(Debug, Clone)]
pub struct Fields {
    pub name: String,
    pub number_id: i64,
    pub template_name: String,
    pub template_lang: String,
    pub variables: BTreeMap<String, Variable>,
    pub header_media: String,
    pub audience: Audience,
    pub send_at: Option<i64>,
    pub hours: Option<(i64, i64)>,
    pub reply_hours: i64,
    pub parent_id: Option<CampaignId>,
    pub follow_up: Option<FollowUp>,
}

fn to_json<T: Serialize>(v: &T) -> rusqlite::Result<String> {
    serde_json::to_string(v).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

pub fn insert(c: &Connection, row: &Fields, created_by: &str, now: i64) -> rusqlite::Result<CampaignId> {
    c.execute(
        "INSERT INTO campaigns (name, number_id, template_name, template_lang, variables, header_media, audience,
                                send_at, hours_from, hours_to, reply_hours, parent_id, follow_up, created_by,
                                created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15)",
        params![
            row.name,
            row.number_id,
            row.template_name,
            row.template_lang,
            to_json(&row.variables)?,
            row.header_media,
            to_json(&row.audience)?,
            row.send_at,
            row.hours.map(|h| h.0),
            row.hours.map(|h| h.1),
            row.reply_hours,
            row.parent_id,
            row.follow_up,
            created_by,
            now
        ],
    )?;
    Ok(CampaignId(c.last_insert_rowid()))
}

/// Replaces a draft's settings; false when it is no longer a draft.
pub fn update_draft(c: &Connection, id: CampaignId, row: &Fields, now: i64) -> rusqlite::Result<bool> {
    Ok(c.execute(
        "UPDATE campaigns SET name = ?2, number_id = ?3, template_name = ?4, template_lang = ?5, variables = ?6,
                header_media = ?7, audience = ?8, send_at = ?9, hours_from = ?10, hours_to = ?11, reply_hours = ?12,
                updated_at = ?13
         WHERE id = ?1 AND state = 'draft'",
        params![
            id,
            row.name,
            row.number_id,
            row.template_name,
            row.template_lang,
            to_json(&row.variables)?,
            row.header_media,
            to_json(&row.audience)?,
            row.send_at,
            row.hours.map(|h| h.0),
            row.hours.map(|h| h.1),
            row.reply_hours,
            now
        ],
    )? == 1)
}

/// Deletes a draft (a campaign that never started has no ledger); false otherwise.
pub fn delete_draft(c: &Connection, id: CampaignId) -> rusqlite::Result<bool> {
    Ok(c.execute("DELETE FROM campaigns WHERE id = ?1 AND state = 'draft'", [id])? == 1)
}

/// Moves the campaign from one of `from` to `to`; false when it was in none of them
/// (someone else moved it first: the guard that makes every transition happen once).
pub fn transition(
    c: &Connection,
    id: CampaignId,
    from: &[CampaignState],
    to: CampaignState,
    now: i64,
) -> rusqlite::Result<bool> {
    let list = from
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let finished = matches!(to, CampaignState::Finished | CampaignState::Cancelled);
    let planned = to == CampaignState::Running;
    Ok(c.prepare_cached(&format!(
        "UPDATE campaigns SET state = ?2, updated_at = ?3,
                finished_at = CASE WHEN ?4 THEN ?3 ELSE finished_at END,
                planned_at = CASE WHEN ?5 AND planned_at IS NULL THEN ?3 ELSE planned_at END,
                paused_reason = CASE WHEN ?2 = 'paused' THEN paused_reason ELSE NULL END,
                paused_detail = CASE WHEN ?2 = 'paused' THEN paused_detail ELSE '' END
         WHERE id = ?1 AND state IN ({list})"
    ))?
    .execute(params![id, to, now, finished, planned])?
        == 1)
}

/// Pauses a running campaign with the reason (a `campaigns.paused.*` key) and Meta's
/// words; false when it was not running.
pub fn set_paused(c: &Connection, id: CampaignId, reason: &str, detail: &str, now: i64) -> rusqlite::Result<bool> {
    Ok(c.prepare_cached(
        "UPDATE campaigns SET state = 'paused', paused_reason = ?2, paused_detail = ?3, updated_at = ?4
         WHERE id = ?1 AND state = 'running'",
    )?
    .execute(params![id, reason, detail, now])?
        == 1)
}

/// Schedules a draft for `at`.
pub fn set_scheduled(c: &Connection, id: CampaignId, at: i64, now: i64) -> rusqlite::Result<bool> {
    Ok(c.execute(
        "UPDATE campaigns SET state = 'scheduled', send_at = ?2, updated_at = ?3 WHERE id = ?1 AND state = 'draft'",
        params![id, at, now],
    )? == 1)
}

// ---- the ledger ----------------------------------------------------------------------

/// A recipient row as pages, the API and the CSV show it.
#[derive(Debug, Clone, Serialize)]
pub struct Recipient {
    pub id: i64,
    pub contact_id: Option<i64>,
    pub recipient: String,
    pub name: String,
    pub params: Vec<String>,
    pub state: RecipientState,
    pub reason: Option<String>,
    pub error_code: Option<i64>,
    pub detail: String,
    pub wamid: Option<String>,
    pub defers: i64,
    pub next_at: i64,
    pub sent_at: Option<i64>,
    pub replied_at: Option<i64>,
    pub updated_at: i64,
}

/// Counts of a campaign's rows per state (every state, 0 included).
pub fn counts(c: &Connection, id: CampaignId) -> rusqlite::Result<BTreeMap<RecipientState, i64>> {
    let mut stmt =
        c.prepare_cached("SELECT state, count(*) FROM campaign_recipients WHERE campaign_id = ?1 GROUP BY state")?;
    let mut out: BTreeMap<RecipientState, i64> = RecipientState::ALL.iter().map(|s| (*s, 0)).collect();
    for row in stmt.query_map([id], |r| Ok((r.get::<_, RecipientState>(0)?, r.get::<_, i64>(1)?)))? {
        let (s, n) = row?;
        out.insert(s, n);
    }
    Ok(out)
}

/// Rows in a state (all when `None`), after the id `after`, at most `limit`.
pub fn recipients(
    c: &Connection,
    id: CampaignId,
    state: Option<RecipientState>,
    after: i64,
    limit: i64,
) -> rusqlite::Result<Vec<Recipient>> {
    let mut stmt = c.prepare_cached(
        "SELECT r.id, r.contact_id, r.recipient,
                coalesce(nullif(k.name, ''), nullif(k.profile_name, ''), k.phone_e164, ''),
                r.params, r.state, r.reason, r.error_code, r.detail, r.wamid, r.defers, r.next_at, r.sent_at,
                r.replied_at, r.updated_at
         FROM campaign_recipients r LEFT JOIN contacts k ON k.id = r.contact_id
         WHERE r.campaign_id = ?1 AND (?2 IS NULL OR r.state = ?2) AND r.id > ?3 ORDER BY r.id LIMIT ?4",
    )?;
    let rows = stmt.query_map(params![id, state, after, limit], |r| {
        let params: String = r.get(4)?;
        Ok(Recipient {
            id: r.get(0)?,
            contact_id: r.get(1)?,
            recipient: r.get(2)?,
            name: r.get(3)?,
            params: serde_json::from_str(&params).unwrap_or_default(),
            state: r.get(5)?,
            reason: r.get(6)?,
            error_code: r.get(7)?,
            detail: r.get(8)?,
            wamid: r.get(9)?,
            defers: r.get(10)?,
            next_at: r.get(11)?,
            sent_at: r.get(12)?,
            replied_at: r.get(13)?,
            updated_at: r.get(14)?,
        })
    })?;
    rows.collect()
}

/// How many rows ended in one state for one reason.
#[derive(Debug, Clone, Serialize)]
pub struct ReasonCount {
    pub state: RecipientState,
    /// `campaigns.reason.<reason>` (empty: Meta's code says it).
    pub reason: String,
    pub error_code: Option<i64>,
    pub count: i64,
}

/// Failures and skips grouped by reason (and Meta's code), most frequent first.
pub fn reasons(c: &Connection, id: CampaignId) -> rusqlite::Result<Vec<ReasonCount>> {
    let mut stmt = c.prepare_cached(
        "SELECT state, coalesce(reason, ''), error_code, count(*) FROM campaign_recipients
         WHERE campaign_id = ?1 AND state IN ('failed', 'skipped', 'deferred', 'needs_review', 'cancelled')
         GROUP BY state, reason, error_code ORDER BY count(*) DESC LIMIT 50",
    )?;
    let rows = stmt.query_map([id], |r| {
        Ok(ReasonCount {
            state: r.get(0)?,
            reason: r.get(1)?,
            error_code: r.get(2)?,
            count: r.get(3)?,
        })
    })?;
    rows.collect()
}

/// Sends per minute (Meta's acceptance time), oldest first: the rate chart.
pub fn sends_per_minute(c: &Connection, id: CampaignId) -> rusqlite::Result<Vec<(i64, i64)>> {
    let mut stmt = c.prepare_cached(
        "SELECT sent_at / 60 * 60, count(*) FROM campaign_recipients
         WHERE campaign_id = ?1 AND sent_at IS NOT NULL GROUP BY sent_at / 60 ORDER BY 1 DESC LIMIT 180",
    )?;
    let mut v = stmt
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<(i64, i64)>>>()?;
    v.reverse();
    Ok(v)
}

/// Rows in the states still to settle (queued, sending, deferred).
pub fn open_rows(c: &Connection, id: CampaignId) -> rusqlite::Result<i64> {
    c.prepare_cached(
        "SELECT count(*) FROM campaign_recipients WHERE campaign_id = ?1 AND state IN ('queued', 'sending', 'deferred')",
    )?
    .query_row([id], |r| r.get(0))
}

/// Campaign sends Meta accepted since `since` from numbers of the portfolio of
/// `number_id` (same business portfolio id, else the same WABA): what the rolling
/// 24-hour messaging limit has used. Conservative: counts rows, not distinct people,
/// and counts sends inside a customer service window, which Meta does not.
pub fn portfolio_sends_since(c: &Connection, number_id: i64, since: i64) -> rusqlite::Result<i64> {
    let sql = "WITH me AS (SELECT business_manager_id AS bm, waba_id AS waba FROM wa_numbers WHERE id = ?1),
                    portfolio AS (SELECT n.id FROM wa_numbers n, me
                                  WHERE (me.bm <> '' AND n.business_manager_id = me.bm) OR n.waba_id = me.waba)
               SELECT (SELECT count(*) FROM campaign_recipients r JOIN campaigns k ON k.id = r.campaign_id
                       WHERE r.sent_at >= ?2 AND k.number_id IN (SELECT id FROM portfolio))
                    + (SELECT count(*) FROM campaign_recipients r JOIN campaigns k ON k.id = r.campaign_id
                       WHERE k.state IN ('running', 'paused') AND r.state = 'sending'
                         AND k.number_id IN (SELECT id FROM portfolio))";
    c.prepare_cached(sql)?
        .query_row(params![number_id, since], |r| r.get(0))
}

/// The oldest accepted send still inside the rolling day (when the limit frees up).
pub fn oldest_send_since(c: &Connection, number_id: i64, since: i64) -> rusqlite::Result<Option<i64>> {
    c.prepare_cached(
        "SELECT min(r.sent_at) FROM campaign_recipients r JOIN campaigns k ON k.id = r.campaign_id
         JOIN wa_numbers n ON n.id = k.number_id
         JOIN wa_numbers me ON me.id = ?1
         WHERE r.sent_at >= ?2 AND ((me.business_manager_id <> '' AND n.business_manager_id = me.business_manager_id)
                                    OR n.waba_id = me.waba_id)",
    )?
    .query_row(params![number_id, since], |r| r.get(0))
}

/// The number's daily messaging limit (`None`: not known; -1: unlimited).
pub fn messaging_limit(c: &Connection, number_id: i64) -> rusqlite::Result<Option<i64>> {
    c.prepare_cached("SELECT messaging_limit FROM wa_numbers WHERE id = ?1")?
        .query_row([number_id], |r| r.get::<_, Option<i64>>(0))
        .optional()
        .map(Option::flatten)
}

/// Sets the number's daily messaging limit (see [`LIMIT_TIERS`]; `None` for not known).
pub fn set_messaging_limit(c: &Connection, number_id: i64, limit: Option<i64>) -> rusqlite::Result<bool> {
    Ok(c.execute(
        "UPDATE wa_numbers SET messaging_limit = ?2 WHERE id = ?1",
        params![number_id, limit],
    )? == 1)
}

/// Meta's messaging limit tiers (unique people per rolling 24 h); -1 is unlimited.
pub const LIMIT_TIERS: [i64; 5] = [250, 2_000, 10_000, 100_000, -1];

/// Settings that hold for every campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Settings {
    /// Skip people a campaign messaged in the last this many hours (0: no cap).
    pub frequency_cap_hours: i64,
    /// Pause a campaign when more than this share of its last 200 sends failed (percent).
    pub error_pause_percent: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            frequency_cap_hours: 0,
            error_pause_percent: 10,
        }
    }
}

pub fn settings(c: &Connection) -> rusqlite::Result<Settings> {
    let d = Settings::default();
    let get = |k: &str, default: i64| -> rusqlite::Result<i64> {
        Ok(crate::settings::get_setting(c, k)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(default))
    };
    Ok(Settings {
        frequency_cap_hours: get("campaigns.frequency_cap_hours", d.frequency_cap_hours)?,
        error_pause_percent: get("campaigns.error_pause_percent", d.error_pause_percent)?,
    })
}

pub fn set_settings(c: &Connection, s: &Settings) -> rusqlite::Result<()> {
    crate::settings::set_setting(c, "campaigns.frequency_cap_hours", &s.frequency_cap_hours.to_string())?;
    crate::settings::set_setting(c, "campaigns.error_pause_percent", &s.error_pause_percent.to_string())
}

// ---- for the pages (added by the campaign pages) ------------------------------------

/// What one message costs, as an admin typed it (the usage ledger has no prices yet):
/// decimal text per purpose, and the currency's name. Empty: not set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Prices {
    pub marketing: String,
    pub utility: String,
    pub currency: String,
}

impl Prices {
    /// The price of one message of `purpose` (`marketing` or `utility`), when set.
    pub fn of(&self, purpose: &str) -> Option<&str> {
        let p = if purpose == "marketing" {
            &self.marketing
        } else {
            &self.utility
        };
        Some(p.as_str()).filter(|p| !p.is_empty())
    }
}

pub fn prices(c: &Connection) -> rusqlite::Result<Prices> {
    let get = |k: &str| -> rusqlite::Result<String> { Ok(crate::settings::get_setting(c, k)?.unwrap_or_default()) };
    Ok(Prices {
        marketing: get("campaigns.price.marketing")?,
        utility: get("campaigns.price.utility")?,
        currency: get("campaigns.price.currency")?,
    })
}

pub fn set_prices(c: &Connection, p: &Prices) -> rusqlite::Result<()> {
    crate::settings::set_setting(c, "campaigns.price.marketing", &p.marketing)?;
    crate::settings::set_setting(c, "campaigns.price.utility", &p.utility)?;
    crate::settings::set_setting(c, "campaigns.price.currency", &p.currency)
}

/// The campaign settings page's save: the settings and the prices, with the audit line.
pub fn save_settings(
    c: &Connection,
    actor: &crate::audit::Actor,
    s: &Settings,
    p: &Prices,
    now: i64,
) -> rusqlite::Result<()> {
    set_settings(c, s)?;
    set_prices(c, p)?;
    let details = format!(
        "frequency_cap_hours={} error_pause_percent={} price_marketing={} price_utility={} currency={}",
        s.frequency_cap_hours, s.error_pause_percent, p.marketing, p.utility, p.currency
    );
    crate::audit::record(c, actor, "campaigns.settings", "campaigns", &details, now)
}

/// The number page's daily limit select, with the audit line; false: no such number.
pub fn save_messaging_limit(
    c: &Connection,
    actor: &crate::audit::Actor,
    number_id: i64,
    limit: Option<i64>,
    now: i64,
) -> rusqlite::Result<bool> {
    if !set_messaging_limit(c, number_id, limit)? {
        return Ok(false);
    }
    let value = limit.map_or_else(|| "unknown".to_string(), |l| l.to_string());
    crate::audit::record(
        c,
        actor,
        "whatsapp.messaging_limit",
        &format!("number:{number_id}"),
        &value,
        now,
    )?;
    Ok(true)
}
