//! Retention (P12, P14): a daily purge of what the appliance no longer needs. Messages
//! with their media files (on disk too), statuses, outbox payloads, notes, bot logs and
//! campaign recipient rows after the message retention (12 months); system logs (login
//! events, audit, security events; `job_runs` is the scheduler's state, one row per
//! job, not a log) after 90 days; raw webhook deliveries a
//! week after they were processed; the usage ledger after 7 years (billing: fixed). An
//! admin may shorten a period; a longer one needs a written reason, shown as evidence.
//! A contact under legal hold keeps everything while held.
//!
//! The purge is real: `secure_delete` overwrites freed pages, the search indexes run
//! FTS5 `secure-delete` (migration 0024), the media files are unlinked after the commit,
//! and the WAL is checkpointed (TRUNCATE) so no old page survives beside the database.
//! A conversation left without messages goes too (with its notes and bot session):
//! nothing in it is younger than the retention, and an empty thread helps nobody.
//!
//! The purge's SQL for the tables of other features lives here, in one place, so what
//! retention and erasure remove can be read (and reviewed) together.

use crate::audit::{self, Actor};
use crate::error::FormErrors;
use crate::privacy::evidence::{Fact, Light};
use crate::store::{Db, DbError};
use crate::whatsapp::media::MediaStore;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeMap;

/// System logs (login events, audit log, security events, job runs) are kept 90 days (P14).
pub const LOG_RETENTION_DAYS: i64 = 90;
/// Raw webhook deliveries, once processed, are kept a week for troubleshooting.
pub const DELIVERY_RETENTION_DAYS: i64 = 7;
/// Messages and everything about them: at most 12 months (P12, P14).
pub const MESSAGE_RETENTION_DAYS: i64 = 365;
/// The billing/usage ledger: 7 years (P9, P14). Fixed: it is a legal minimum too.
pub const LEDGER_RETENTION_DAYS: i64 = 7 * 365 + 2;
/// Longest period an admin may set (with a reason beyond the policy).
pub const MAX_DAYS: i64 = 10 * 365;
const DAY: i64 = 86_400;
/// Messages removed per write transaction (the writer serves others between chunks).
const CHUNK: i64 = 2_000;

/// A period an admin may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Messages,
    SystemLogs,
    Deliveries,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Messages, Kind::SystemLogs, Kind::Deliveries];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Messages => "messages",
            Kind::SystemLogs => "system_logs",
            Kind::Deliveries => "deliveries",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// What the privacy policy promises.
    pub fn policy_days(self) -> i64 {
        match self {
            Kind::Messages => MESSAGE_RETENTION_DAYS,
            Kind::SystemLogs => LOG_RETENTION_DAYS,
            Kind::Deliveries => DELIVERY_RETENTION_DAYS,
        }
    }
}

/// A period in force: the policy's, or the admin's.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Setting {
    pub kind: &'static str,
    pub policy_days: i64,
    pub days: i64,
    /// Why it is longer than the policy (required then).
    pub reason: String,
    pub updated_at: Option<i64>,
    pub updated_by: String,
}

impl Setting {
    pub fn longer(&self) -> bool {
        self.days > self.policy_days
    }
}

pub fn setting(c: &Connection, kind: Kind) -> rusqlite::Result<Setting> {
    let row: Option<(i64, String, i64, String)> = c
        .query_row(
            "SELECT days, reason, updated_at, updated_by FROM retention_settings WHERE kind = ?1",
            [kind.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let (days, reason, updated_at, updated_by) = match row {
        Some((d, r, at, by)) => (d, r, Some(at), by),
        None => (kind.policy_days(), String::new(), None, String::new()),
    };
    Ok(Setting {
        kind: kind.as_str(),
        policy_days: kind.policy_days(),
        days,
        reason,
        updated_at,
        updated_by,
    })
}

pub fn settings(c: &Connection) -> rusqlite::Result<Vec<Setting>> {
    Kind::ALL.into_iter().map(|k| setting(c, k)).collect()
}

/// A period from a form: `days` 1..=`MAX_DAYS`; beyond the policy only with a reason.
pub fn validate(kind: &str, days: &str, reason: &str) -> Result<(Kind, i64, String), FormErrors> {
    let mut errors = FormErrors::default();
    let Some(kind) = Kind::parse(kind.trim()) else {
        errors.add("kind", "privacy_ops.retention.kind_invalid");
        return Err(errors);
    };
    let reason = reason.trim().to_string();
    let days = match days.trim().parse::<i64>() {
        Ok(d) if (1..=MAX_DAYS).contains(&d) => d,
        _ => {
            errors.add("days", "privacy_ops.retention.days_invalid");
            return Err(errors);
        }
    };
    if days > kind.policy_days() && reason.chars().count() < 10 {
        errors.add("reason", "privacy_ops.retention.reason_required");
        return Err(errors);
    }
    if reason.chars().count() > 1000 {
        errors.add("reason", "privacy_ops.retention.reason_too_long");
        return Err(errors);
    }
    Ok((kind, days, reason))
}

/// Saves a period (audited). The policy's own period removes the override.
pub fn save_setting(
    c: &Connection,
    actor: &Actor,
    kind: Kind,
    days: i64,
    reason: &str,
    now: i64,
) -> rusqlite::Result<()> {
    let before = setting(c, kind)?.days;
    if days == kind.policy_days() {
        c.execute("DELETE FROM retention_settings WHERE kind = ?1", [kind.as_str()])?;
    } else {
        c.execute(
            "INSERT INTO retention_settings (kind, days, reason, updated_at, updated_by) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(kind) DO UPDATE SET days = ?2, reason = ?3, updated_at = ?4, updated_by = ?5",
            params![kind.as_str(), days, reason, now, actor.label],
        )?;
    }
    let reason = if days > kind.policy_days() {
        format!("; longer than the policy ({} days): {reason}", kind.policy_days())
    } else {
        String::new()
    };
    audit::record(
        c,
        actor,
        "retention.setting",
        kind.as_str(),
        &format!("{before} -> {days} days{reason}"),
        now,
    )
}

// ---- legal holds ---------------------------------------------------------------------

/// A contact kept whole while held.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Hold {
    pub contact_id: i64,
    pub contact: String,
    pub reason: String,
    pub placed_at: i64,
    pub placed_by: String,
}

const HOLD_SELECT: &str = "SELECT h.contact_id,
        coalesce(nullif(k.name, ''), nullif(k.profile_name, ''), k.phone_e164, k.wa_id, k.bsuid, ''),
        h.reason, h.placed_at, h.placed_by
     FROM legal_holds h JOIN contacts k ON k.id = h.contact_id";

fn hold_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Hold> {
    Ok(Hold {
        contact_id: r.get(0)?,
        contact: r.get(1)?,
        reason: r.get(2)?,
        placed_at: r.get(3)?,
        placed_by: r.get(4)?,
    })
}

/// The hold on a contact, if any (shown on the contact page).
pub fn hold_of(c: &Connection, contact: i64) -> rusqlite::Result<Option<Hold>> {
    c.query_row(&format!("{HOLD_SELECT} WHERE h.contact_id = ?1"), [contact], hold_row)
        .optional()
}

pub fn holds(c: &Connection) -> rusqlite::Result<Vec<Hold>> {
    let mut stmt = c.prepare(&format!("{HOLD_SELECT} ORDER BY h.placed_at DESC"))?;
    let rows = stmt.query_map([], hold_row)?;
    rows.collect()
}

/// Places (or re-words) a hold; false when there is no such contact. Audited.
pub fn place_hold(c: &Connection, actor: &Actor, contact: i64, reason: &str, now: i64) -> rusqlite::Result<bool> {
    let exists: Option<i64> = c
        .query_row("SELECT id FROM contacts WHERE id = ?1", [contact], |r| r.get(0))
        .optional()?;
    if exists.is_none() {
        return Ok(false);
    }
    c.execute(
        "INSERT INTO legal_holds (contact_id, reason, placed_at, placed_by) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(contact_id) DO UPDATE SET reason = ?2",
        params![contact, reason, now, actor.label],
    )?;
    audit::record(c, actor, "retention.hold", &format!("contact:{contact}"), reason, now)?;
    Ok(true)
}

/// Lifts a hold; false when there was none. Audited.
pub fn lift_hold(c: &Connection, actor: &Actor, contact: i64, now: i64) -> rusqlite::Result<bool> {
    let n = c.execute("DELETE FROM legal_holds WHERE contact_id = ?1", [contact])?;
    if n > 0 {
        audit::record(
            c,
            actor,
            "retention.hold_lifted",
            &format!("contact:{contact}"),
            "",
            now,
        )?;
    }
    Ok(n > 0)
}

/// A hold's reason from a form: 3 to 500 characters.
pub fn validate_hold(reason: &str) -> Result<String, FormErrors> {
    let reason = reason.trim();
    let n = reason.chars().count();
    if (3..=500).contains(&n) {
        Ok(reason.to_string())
    } else {
        let mut e = FormErrors::default();
        e.add("reason", "privacy_ops.hold.reason_invalid");
        Err(e)
    }
}

// ---- runs ----------------------------------------------------------------------------

/// What was removed, per kind (`messages`, `media_files`, `audit_log`, …).
pub type Removed = BTreeMap<&'static str, i64>;

fn add(removed: &mut Removed, kind: &'static str, n: usize) {
    *removed.entry(kind).or_insert(0) += i64::try_from(n).unwrap_or(i64::MAX);
}

fn merge(into: &mut Removed, from: &Removed) {
    for (k, v) in from {
        *into.entry(k).or_insert(0) += v;
    }
}

/// One purge: the daily retention or an erasure, with its counts.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Run {
    pub id: i64,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub cause: String,
    pub checkpointed: bool,
    pub error: Option<String>,
    pub removed: Vec<(String, i64)>,
}

impl Run {
    /// "messages 3, media_files 2" (kinds with nothing removed left out).
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .removed
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        if parts.is_empty() {
            "nothing".into()
        } else {
            parts.join(", ")
        }
    }
}

fn run_rows(c: &Connection, sql: &str, p: &[&dyn rusqlite::ToSql]) -> rusqlite::Result<Vec<Run>> {
    let mut stmt = c.prepare(sql)?;
    let mut runs: Vec<Run> = stmt
        .query_map(p, |r| {
            Ok(Run {
                id: r.get(0)?,
                started_at: r.get(1)?,
                finished_at: r.get(2)?,
                cause: r.get(3)?,
                checkpointed: r.get(4)?,
                error: r.get(5)?,
                removed: Vec::new(),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut kinds = c.prepare("SELECT kind, count FROM retention_removed WHERE run_id = ?1 ORDER BY kind")?;
    for run in &mut runs {
        run.removed = kinds
            .query_map([run.id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
    }
    Ok(runs)
}

/// The newest runs, newest first.
pub fn runs(c: &Connection, limit: i64) -> rusqlite::Result<Vec<Run>> {
    run_rows(
        c,
        "SELECT id, started_at, finished_at, cause, checkpointed, error FROM retention_runs ORDER BY id DESC LIMIT ?1",
        &[&limit],
    )
}

/// The newest run of the daily job.
pub fn last_retention_run(c: &Connection) -> rusqlite::Result<Option<Run>> {
    Ok(run_rows(
        c,
        "SELECT id, started_at, finished_at, cause, checkpointed, error FROM retention_runs
         WHERE cause = 'retention' ORDER BY id DESC LIMIT 1",
        &[],
    )?
    .into_iter()
    .next())
}

pub(crate) fn start_run(c: &Connection, cause: &str, now: i64) -> rusqlite::Result<i64> {
    c.execute(
        "INSERT INTO retention_runs (started_at, cause) VALUES (?1, ?2)",
        params![now, cause],
    )?;
    Ok(c.last_insert_rowid())
}

pub(crate) fn finish_run(
    c: &Connection,
    run: i64,
    removed: &Removed,
    checkpointed: bool,
    error: Option<&str>,
    now: i64,
) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE retention_runs SET finished_at = ?2, checkpointed = ?3, error = ?4 WHERE id = ?1",
        params![run, now, checkpointed, error],
    )?;
    for (k, n) in removed {
        c.execute(
            "INSERT INTO retention_removed (run_id, kind, count) VALUES (?1, ?2, ?3)
             ON CONFLICT(run_id, kind) DO UPDATE SET count = count + ?3",
            params![run, k, n],
        )?;
    }
    Ok(())
}

fn removed_text(removed: &Removed) -> String {
    let parts: Vec<String> = removed
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    if parts.is_empty() {
        "nothing".into()
    } else {
        parts.join(", ")
    }
}

// ---- the purge -----------------------------------------------------------------------

/// Which messages go: those sent before a time (retention), or all of one contact's
/// (erasure). Held contacts are never in the first.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scope {
    Older(i64),
    Contact(i64),
}

const NOT_HELD: &str = "(contact_id IS NULL OR contact_id NOT IN (SELECT contact_id FROM legal_holds))";

/// One chunk of doomed messages and everything that hangs on them: media rows (their
/// files are returned to unlink after the commit), statuses, outbox rows, bot log rows;
/// the search index follows the messages through its trigger. Returns how many
/// messages were doomed (fewer than `CHUNK`: the last chunk).
fn purge_message_chunk(c: &Connection, scope: Scope) -> rusqlite::Result<(Removed, Vec<String>, i64)> {
    c.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS purge_doomed (id INTEGER PRIMARY KEY, wamid TEXT, outbox_id INTEGER);
         DELETE FROM temp.purge_doomed;",
    )?;
    let doomed = match scope {
        Scope::Older(cut) => c.execute(
            &format!(
                "INSERT INTO temp.purge_doomed SELECT id, nullif(wamid, ''), outbox_id FROM messages
                 WHERE sent_at < ?1 AND {NOT_HELD} ORDER BY id LIMIT ?2"
            ),
            params![cut, CHUNK],
        )?,
        Scope::Contact(id) => c.execute(
            "INSERT INTO temp.purge_doomed SELECT id, nullif(wamid, ''), outbox_id FROM messages
             WHERE contact_id = ?1 ORDER BY id LIMIT ?2",
            params![id, CHUNK],
        )?,
    };
    let mut removed = Removed::new();
    let media_of = "(message_id IN (SELECT id FROM temp.purge_doomed)
                     OR wamid IN (SELECT wamid FROM temp.purge_doomed WHERE wamid IS NOT NULL))";
    let files: Vec<String> = c
        .prepare(&format!(
            "SELECT stored_name FROM media_files WHERE stored_name IS NOT NULL AND {media_of}"
        ))?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    add(
        &mut removed,
        "media_files",
        c.execute(&format!("DELETE FROM media_files WHERE {media_of}"), [])?,
    );
    add(
        &mut removed,
        "statuses",
        c.execute(
            "DELETE FROM message_statuses WHERE wamid IN (SELECT wamid FROM temp.purge_doomed WHERE wamid IS NOT NULL)",
            [],
        )?,
    );
    add(
        &mut removed,
        "outbox",
        c.execute(
            "DELETE FROM outbox WHERE state <> 'sending'
               AND (id IN (SELECT outbox_id FROM temp.purge_doomed WHERE outbox_id IS NOT NULL)
                    OR wamid IN (SELECT wamid FROM temp.purge_doomed WHERE wamid IS NOT NULL))",
            [],
        )?,
    );
    add(
        &mut removed,
        "bot_log",
        c.execute(
            "DELETE FROM bot_log WHERE message_id IN (SELECT id FROM temp.purge_doomed)",
            [],
        )?,
    );
    add(
        &mut removed,
        "messages",
        c.execute(
            "DELETE FROM messages WHERE id IN (SELECT id FROM temp.purge_doomed)",
            [],
        )?,
    );
    c.execute_batch("DROP TABLE temp.purge_doomed")?;
    Ok((removed, files, i64::try_from(doomed).unwrap_or(i64::MAX)))
}

/// Unlinks media files (off the async workers); counts `media_files_on_disk`.
pub(crate) async fn remove_files(media: &MediaStore, files: Vec<String>, removed: &mut Removed) -> Vec<String> {
    if files.is_empty() {
        return Vec::new();
    }
    let store = media.clone();
    let out = actix_web::rt::task::spawn_blocking(move || {
        let mut gone = 0usize;
        let mut errors = Vec::new();
        for f in files {
            match store.remove(&f) {
                Ok(true) => gone += 1,
                Ok(false) => {}
                Err(e) => errors.push(e),
            }
        }
        (gone, errors)
    })
    .await;
    match out {
        Ok((gone, errors)) => {
            add(removed, "media_files_on_disk", gone);
            for e in &errors {
                tracing::error!(error = %e, "retention could not remove a media file");
            }
            errors
        }
        Err(e) => vec![e.to_string()],
    }
}

/// Every doomed message of `scope`, chunk by chunk, with their files.
pub(crate) async fn purge_messages(
    db: &Db,
    media: &MediaStore,
    scope: Scope,
) -> Result<(Removed, Vec<String>), DbError> {
    let mut total = Removed::new();
    let mut errors = Vec::new();
    loop {
        let (removed, files, n) = db.write(move |c| Ok(purge_message_chunk(c, scope)?)).await?;
        merge(&mut total, &removed);
        errors.extend(remove_files(media, files, &mut total).await);
        if n < CHUNK {
            break;
        }
    }
    Ok((total, errors))
}

/// Folds what is left in the write-ahead log into the database and empties the log, so
/// no page from before the purge survives beside it. True when it completed.
pub(crate) async fn checkpoint(db: &Db) -> bool {
    for _ in 0..5 {
        let done = db
            .read(|c| {
                let busy: i64 = c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
                Ok(busy == 0)
            })
            .await;
        match done {
            Ok(true) => return true,
            Ok(false) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
            Err(e) => {
                tracing::error!(error = %e, "checkpoint after the purge failed");
                return false;
            }
        }
    }
    false
}

/// The times before which each kind goes.
#[derive(Debug, Clone, Copy)]
struct Cutoffs {
    messages: i64,
    logs: i64,
    deliveries: i64,
    ledger: i64,
}

fn cutoffs(c: &Connection, now: i64) -> rusqlite::Result<Cutoffs> {
    Ok(Cutoffs {
        messages: now - setting(c, Kind::Messages)?.days * DAY,
        logs: now - setting(c, Kind::SystemLogs)?.days * DAY,
        deliveries: now - setting(c, Kind::Deliveries)?.days * DAY,
        ledger: now - LEDGER_RETENTION_DAYS * DAY,
    })
}

/// Everything but the messages themselves (those went first, chunk by chunk).
#[expect(
    clippy::too_many_lines,
    reason = "one list of what retention removes, read top to bottom"
)]
fn purge_rest(c: &Connection, cut: Cutoffs) -> rusqlite::Result<(Removed, Vec<String>)> {
    let mut r = Removed::new();
    let m = cut.messages;
    let held_conv = "SELECT id FROM conversations WHERE contact_id IN (SELECT contact_id FROM legal_holds)";
    add(
        &mut r,
        "conversations",
        c.execute(
            &format!(
                "DELETE FROM conversations WHERE last_message_at < ?1 AND {NOT_HELD}
                   AND NOT EXISTS (SELECT 1 FROM messages WHERE messages.conversation_id = conversations.id)"
            ),
            [m],
        )?,
    );
    add(
        &mut r,
        "notes_and_events",
        c.execute(
            &format!("DELETE FROM conversation_events WHERE at < ?1 AND conversation_id NOT IN ({held_conv})"),
            [m],
        )?,
    );
    add(
        &mut r,
        "statuses",
        c.execute(
            "DELETE FROM message_statuses WHERE at < ?1
               AND wamid NOT IN (SELECT wamid FROM messages WHERE wamid IS NOT NULL)",
            [m],
        )?,
    );
    add(
        &mut r,
        "bot_log",
        c.execute(&format!("DELETE FROM bot_log WHERE at < ?1 AND {NOT_HELD}"), [m])?,
    );
    add(
        &mut r,
        "bot_sessions",
        c.execute(
            &format!("DELETE FROM bot_sessions WHERE updated_at < ?1 AND conversation_id NOT IN ({held_conv})"),
            [m],
        )?,
    );
    add(
        &mut r,
        "campaign_recipients",
        c.execute(
            &format!(
                "DELETE FROM campaign_recipients WHERE coalesce(done_at, sent_at, updated_at) < ?1 AND {NOT_HELD}"
            ),
            [m],
        )?,
    );
    add(
        &mut r,
        "outbox",
        c.execute(
            &format!("DELETE FROM outbox WHERE updated_at < ?1 AND state NOT IN ('queued', 'sending') AND {NOT_HELD}"),
            [m],
        )?,
    );
    // Files whose message is gone (or never came): by their own age.
    let orphan = "created_at < ?1 AND (message_id IS NULL OR message_id NOT IN (SELECT id FROM messages))
                  AND NOT EXISTS (SELECT 1 FROM messages WHERE messages.wamid = media_files.wamid)";
    let files: Vec<String> = c
        .prepare(&format!(
            "SELECT stored_name FROM media_files WHERE stored_name IS NOT NULL AND {orphan}"
        ))?
        .query_map([m], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    add(
        &mut r,
        "media_files",
        c.execute(&format!("DELETE FROM media_files WHERE {orphan}"), [m])?,
    );
    // System logs.
    add(
        &mut r,
        "login_events",
        crate::auth::repo::purge_login_events(c, cut.logs)?,
    );
    add(&mut r, "audit_log", audit::purge(c, cut.logs)?);
    add(
        &mut r,
        "security_events",
        crate::whatsapp::deliveries::purge_security_events(c, cut.logs)?,
    );
    add(
        &mut r,
        "retention_runs",
        c.execute("DELETE FROM retention_runs WHERE started_at < ?1", [cut.logs])?,
    );
    // Processed raw deliveries are personal data that now lives in its own tables.
    add(
        &mut r,
        "webhook_deliveries",
        crate::whatsapp::deliveries::purge_done(c, cut.deliveries)?,
    );
    add(
        &mut r,
        "usage_ledger",
        c.execute("DELETE FROM usage_ledger WHERE at < ?1", [cut.ledger])?,
    );
    Ok((r, files))
}

/// The daily job `apply_retention`: purge, unlink, checkpoint, record the run (audited).
pub async fn apply_retention(db: &Db, media: &MediaStore, now: i64) -> Result<String, String> {
    let err = |e: DbError| e.to_string();
    let (cut, periods) = db
        .read(move |c| {
            let periods = format!(
                "messages older than {} days, system logs older than {} days, processed deliveries older than {} days, ledger older than {LEDGER_RETENTION_DAYS} days",
                setting(c, Kind::Messages)?.days,
                setting(c, Kind::SystemLogs)?.days,
                setting(c, Kind::Deliveries)?.days
            );
            Ok((cutoffs(c, now)?, periods))
        })
        .await
        .map_err(err)?;
    let run = db
        .write(move |c| Ok(start_run(c, "retention", now)?))
        .await
        .map_err(err)?;
    let result: Result<(Removed, Vec<String>), DbError> = async {
        let (mut removed, mut errors) = purge_messages(db, media, Scope::Older(cut.messages)).await?;
        let (rest, files) = db.write(move |c| Ok(purge_rest(c, cut)?)).await?;
        merge(&mut removed, &rest);
        errors.extend(remove_files(media, files, &mut removed).await);
        Ok((removed, errors))
    }
    .await;
    let checkpointed = checkpoint(db).await;
    let (removed, error) = match result {
        Ok((removed, errors)) if errors.is_empty() => (removed, None),
        Ok((removed, errors)) => (removed, Some(errors.join("; "))),
        Err(e) => (Removed::new(), Some(e.to_string())),
    };
    let text = removed_text(&removed);
    let (e2, t2) = (error.clone(), text.clone());
    db.write(move |c| {
        finish_run(c, run, &removed, checkpointed, e2.as_deref(), now)?;
        audit::record(
            c,
            &Actor::system(),
            "retention.run",
            &format!("retention_run:{run}"),
            &t2,
            now,
        )?;
        Ok(())
    })
    .await
    .map_err(err)?;
    match error {
        None => Ok(format!(
            "removed: {text} ({periods}){}",
            if checkpointed {
                "; WAL checkpointed"
            } else {
                "; WAL checkpoint did not complete"
            }
        )),
        Some(e) => Err(format!("removed: {text}; but: {e}")),
    }
}

// ---- evidence ------------------------------------------------------------------------

/// The evidence page's facts for retention (P12, P14): the last run and what it
/// removed; each period against the policy (with the written reason when longer); holds.
pub fn facts(c: &Connection, now: i64) -> rusqlite::Result<Vec<Fact>> {
    let mut out = Vec::new();
    let last = last_retention_run(c)?;
    out.push(match last {
        None => Fact::new(
            "privacy_ops.retention_last_run",
            Light::Amber,
            "the retention job has not run yet",
        ),
        Some(run) => {
            let when = crate::clock::format_unix(run.started_at, None);
            let age = now - run.started_at;
            let light = if run.error.is_some() || age > 3 * DAY {
                Light::Red
            } else if age > 36 * 3600 || !run.checkpointed {
                Light::Amber
            } else {
                Light::Green
            };
            let mut fact = format!("{when}: removed {}", run.summary());
            if let Some(e) = &run.error {
                fact = format!("{fact}; error: {e}");
            }
            if !run.checkpointed {
                fact.push_str("; the WAL checkpoint did not complete");
            }
            Fact::new("privacy_ops.retention_last_run", light, fact)
        }
    });
    let settings = settings(c)?;
    let longer: Vec<&Setting> = settings.iter().filter(|s| s.longer()).collect();
    let mut fact: Vec<String> = settings
        .iter()
        .map(|s| {
            if s.longer() {
                format!(
                    "{} {} days (policy {}), reason: {}",
                    s.kind, s.days, s.policy_days, s.reason
                )
            } else {
                format!("{} {} days (policy {})", s.kind, s.days, s.policy_days)
            }
        })
        .collect();
    fact.push(format!("usage_ledger {LEDGER_RETENTION_DAYS} days (policy 7 years)"));
    let light = if longer.iter().any(|s| s.reason.trim().is_empty()) {
        Light::Red
    } else if longer.is_empty() {
        Light::Green
    } else {
        Light::Amber
    };
    out.push(Fact::new("privacy_ops.retention_settings", light, fact.join("; ")));
    let held: i64 = c.query_row("SELECT count(*) FROM legal_holds", [], |r| r.get(0))?;
    out.push(Fact::new(
        "privacy_ops.retention_holds",
        Light::Green,
        format!("{held} contacts under legal hold (kept while held)"),
    ));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longer_than_the_policy_needs_a_reason() {
        assert!(validate("messages", "400", "").is_err());
        assert!(validate("messages", "400", "a court case pending, ref 12/2026").is_ok());
        assert!(validate("messages", "200", "").is_ok());
        assert!(validate("messages", "0", "").is_err());
        assert!(validate("ledger", "10", "").is_err());
    }
}
