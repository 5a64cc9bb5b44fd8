//! The chatbot (issue 12): answers first, hands off cleanly, logs every decision.
//!
//! - `document`: the bot of a number as one JSON document, validated with every
//!   problem named (what the editor, the API and the intake share).
//! - `hours`: business hours with split shifts, overnight intervals and holidays.
//! - `engine`: the decision, pure (the test chat runs it without sending).
//! - `answer`: the intake step that applies a decision in the intake's transaction.
//! - `service`: load, save (audited), test chat, the activity log.
//!
//! Who has a conversation is the inbox's (`conversations.bot_off_at`): an agent's reply
//! or assignment flips it in the same transaction as the reply, and the bot checks it
//! in the same transaction as its outbox row, so a bot reply can never follow an
//! agent's take-over.

pub mod answer;
pub mod document;
pub mod engine;
pub mod form;
pub mod hours;
pub mod routes;
pub mod service;

use crate::audit::{self, Actor};
use document::Bot;
use engine::{Compiled, Session};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A number's stored document: the bot, its version, when and by whom it changed.
#[derive(Debug, Clone)]
pub struct Stored {
    pub bot: Bot,
    pub version: i64,
    pub updated_at: i64,
    pub updated_by: Option<String>,
}

/// The stored document of a number, if one was ever saved. A document that no longer
/// reads (a build that dropped a field) is `Err` with the reason, never a panic.
pub fn find(c: &Connection, number_id: i64) -> rusqlite::Result<Option<Result<Stored, String>>> {
    c.query_row(
        "SELECT b.document, b.version, b.updated_at, u.name FROM bots b
         LEFT JOIN users u ON u.id = b.updated_by WHERE b.number_id = ?1",
        [number_id],
        |r| {
            let json: String = r.get(0)?;
            let (version, updated_at, updated_by) = (r.get(1)?, r.get(2)?, r.get(3)?);
            Ok(serde_json::from_str::<Bot>(&json)
                .map(|bot| Stored {
                    bot,
                    version,
                    updated_at,
                    updated_by,
                })
                .map_err(|e| e.to_string()))
        },
    )
    .optional()
}

/// Saves a validated document (a new version) with its audit line; answers the version.
pub fn save(
    c: &Connection,
    number_id: i64,
    bot: &Bot,
    actor: &Actor,
    summary: &str,
    now: i64,
) -> rusqlite::Result<i64> {
    let json = serde_json::to_string(bot).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    let version: i64 = c.query_row(
        "INSERT INTO bots (number_id, document, version, updated_at, updated_by) VALUES (?1, ?2, 1, ?3, ?4)
         ON CONFLICT (number_id) DO UPDATE SET document = excluded.document, version = bots.version + 1,
             updated_at = excluded.updated_at, updated_by = excluded.updated_by
         RETURNING version",
        params![number_id, json, now, actor.id],
        |r| r.get(0),
    )?;
    audit::record(
        c,
        actor,
        "bot.update",
        &format!("number:{number_id}"),
        &format!("version {version}: {summary}"),
        now,
    )?;
    Ok(version)
}

fn version_of(c: &Connection, number_id: i64) -> rusqlite::Result<Option<i64>> {
    c.prepare_cached("SELECT version FROM bots WHERE number_id = ?1")?
        .query_row([number_id], |r| r.get(0))
        .optional()
}

/// The bots compiled, per number, kept until their document's version changes: the
/// intake looks up one version per message and compiles 200 rules once per change.
#[derive(Clone, Default)]
pub struct Bots {
    compiled: Arc<Mutex<HashMap<i64, Arc<Compiled>>>>,
}

impl Bots {
    /// The number's bot, compiled; `None` when it has none or it does not read.
    pub fn for_number(&self, c: &Connection, number_id: i64) -> rusqlite::Result<Option<Arc<Compiled>>> {
        let Some(version) = version_of(c, number_id)? else {
            return Ok(None);
        };
        if let Some(hit) = self.cached(number_id).filter(|b| b.version == version) {
            return Ok(Some(hit));
        }
        let fresh = match find(c, number_id)? {
            Some(Ok(stored)) => Arc::new(Compiled::new(stored.bot, stored.version)),
            Some(Err(e)) => {
                tracing::error!(number = number_id, error = %e, "the stored bot does not read; the bot is silent");
                return Ok(None);
            }
            None => return Ok(None),
        };
        if let Ok(mut map) = self.compiled.lock() {
            map.insert(number_id, Arc::clone(&fresh));
        }
        Ok(Some(fresh))
    }

    fn cached(&self, number_id: i64) -> Option<Arc<Compiled>> {
        self.compiled.lock().ok()?.get(&number_id).cloned()
    }
}

/// Where the bot is in a conversation (a fresh session when it never spoke there).
pub fn load_session(c: &Connection, conversation: i64) -> rusqlite::Result<Session> {
    let control = crate::inbox::conversations::bot_control(c, conversation)?;
    let stored = c
        .prepare_cached(
            "SELECT flow, step, retries, trail, collected, step_at, away_period FROM bot_sessions
             WHERE conversation_id = ?1",
        )?
        .query_row([conversation], |r| {
            let trail: String = r.get(3)?;
            let collected: String = r.get(4)?;
            Ok(Session {
                flow: r.get(0)?,
                step: r.get(1)?,
                retries: r.get(2)?,
                trail: serde_json::from_str(&trail).unwrap_or_default(),
                collected: serde_json::from_str(&collected).unwrap_or_default(),
                step_at: r.get(5)?,
                handed_off_at: None,
                away_period: r.get(6)?,
            })
        })
        .optional()?;
    let mut s = stored.unwrap_or_default();
    s.handed_off_at = control.off.map(|(at, _)| at);
    // Given back since the step it waited on: it starts afresh.
    if let (Some(back), Some(step_at)) = (control.back_at, s.step_at) {
        if step_at <= back {
            s.flow = None;
            s.step = None;
            s.retries = 0;
            s.trail.clear();
            s.step_at = None;
        }
    }
    Ok(s)
}

pub fn save_session(c: &Connection, conversation: i64, s: &Session, now: i64) -> rusqlite::Result<()> {
    let trail = serde_json::to_string(&s.trail).unwrap_or_else(|_| "[]".into());
    let collected = serde_json::to_string(&s.collected).unwrap_or_else(|_| "{}".into());
    c.prepare_cached(
        "INSERT INTO bot_sessions (conversation_id, flow, step, retries, trail, collected, step_at, away_period, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (conversation_id) DO UPDATE SET flow = excluded.flow, step = excluded.step,
             retries = excluded.retries, trail = excluded.trail, collected = excluded.collected,
             step_at = excluded.step_at, away_period = excluded.away_period, updated_at = excluded.updated_at",
    )?
    .execute(params![
        conversation,
        s.flow,
        s.step,
        s.retries,
        trail,
        collected,
        s.step_at,
        s.away_period,
        now
    ])?;
    Ok(())
}

/// One decision, as the log keeps it.
#[derive(Debug, Clone, Default)]
pub struct LogEntry {
    pub number_id: i64,
    pub conversation_id: Option<i64>,
    pub contact_id: Option<i64>,
    pub message_id: Option<i64>,
    pub at: i64,
    pub decision: String,
    pub detail: String,
    pub outbox_ids: Vec<i64>,
    /// Fields stored: `field=value`, one per line.
    pub stored: String,
    pub micros: i64,
}

pub fn log(c: &Connection, e: &LogEntry) -> rusqlite::Result<i64> {
    let ids: Vec<String> = e.outbox_ids.iter().map(ToString::to_string).collect();
    c.prepare_cached(
        "INSERT INTO bot_log (number_id, conversation_id, contact_id, message_id, at, decision, detail, outbox_ids, stored, micros)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        e.number_id,
        e.conversation_id,
        e.contact_id,
        e.message_id,
        e.at,
        e.decision,
        e.detail,
        ids.join(","),
        e.stored,
        e.micros
    ])?;
    Ok(c.last_insert_rowid())
}

/// A row of the log, for the conversation and the activity page.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LogRow {
    pub id: i64,
    pub number_id: i64,
    pub conversation_id: Option<i64>,
    pub contact_id: Option<i64>,
    pub contact_name: String,
    pub message_id: Option<i64>,
    /// The inbound message's text (what the bot saw).
    pub message: String,
    pub at: i64,
    pub decision: String,
    pub detail: String,
    pub outbox_ids: String,
    pub stored: String,
    pub micros: i64,
}

/// Which log rows to list; `before` pages back by id.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub number_id: Option<i64>,
    pub conversation_id: Option<i64>,
    /// A decision kind (`rule`, `handoff`, `rate_guard`…): rows whose decision has it.
    pub decision: Option<String>,
    pub since: Option<i64>,
    pub before: Option<i64>,
}

/// Log rows, newest first.
pub fn list_log(c: &Connection, f: &LogFilter, limit: i64) -> rusqlite::Result<Vec<LogRow>> {
    let mut stmt = c.prepare_cached(
        "SELECT l.id, l.number_id, l.conversation_id, l.contact_id, coalesce(nullif(k.name, ''), nullif(k.profile_name, ''), k.phone_e164, k.wa_id, ''),
                l.message_id, coalesce(m.body, ''), l.at, l.decision, l.detail, l.outbox_ids, l.stored, l.micros
         FROM bot_log l
         LEFT JOIN contacts k ON k.id = l.contact_id
         LEFT JOIN messages m ON m.id = l.message_id
         WHERE (?1 IS NULL OR l.number_id = ?1) AND (?2 IS NULL OR l.conversation_id = ?2)
           AND (?3 IS NULL OR ('+' || l.decision || '+') LIKE ('%+' || ?3 || '+%'))
           AND (?4 IS NULL OR l.at >= ?4) AND (?5 IS NULL OR l.id < ?5)
         ORDER BY l.id DESC LIMIT ?6",
    )?;
    let rows = stmt.query_map(
        params![f.number_id, f.conversation_id, f.decision, f.since, f.before, limit],
        |r| {
            Ok(LogRow {
                id: r.get(0)?,
                number_id: r.get(1)?,
                conversation_id: r.get(2)?,
                contact_id: r.get(3)?,
                contact_name: r.get(4)?,
                message_id: r.get(5)?,
                message: r.get(6)?,
                at: r.get(7)?,
                decision: r.get(8)?,
                detail: r.get(9)?,
                outbox_ids: r.get(10)?,
                stored: r.get(11)?,
                micros: r.get(12)?,
            })
        },
    )?;
    rows.collect()
}

/// Open or closed, since when, and today's date, in the hours' zone (else the
/// business's).
pub struct Moment {
    pub open: bool,
    pub closed_since: Option<i64>,
    pub today: chrono::NaiveDate,
}

pub fn moment(c: &Connection, bot: &Bot, now: i64) -> rusqlite::Result<Moment> {
    let business = crate::settings::find_business(c)?
        .and_then(|b| b.tz())
        .unwrap_or(chrono_tz::UTC);
    let (open, closed_since, tz) = match &bot.hours {
        Some(h) => {
            let tz = hours::zone(h, business);
            (hours::is_open(h, tz, now), hours::closed_since(h, tz, now), tz)
        }
        None => (true, None, business),
    };
    let today = chrono::TimeZone::timestamp_opt(&tz, now, 0)
        .single()
        .map_or_else(|| chrono::Utc::now().date_naive(), |t| t.date_naive());
    Ok(Moment {
        open,
        closed_since,
        today,
    })
}
