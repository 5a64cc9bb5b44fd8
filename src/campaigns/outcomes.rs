//! What happens to a campaign's sends after they are handed to the outbox: the
//! outbox's outcomes (accepted, failed, held after a crash), Meta's statuses (delivered,
//! read, failed later) and the recipients' replies move each ledger row on. Statuses
//! only move a row forward (sent < delivered < read < replied); a late `failed` counts
//! until the message was read.

use super::{CampaignId, service};
use crate::error::AppError;
use crate::whatsapp::outbox::{AfterCommit, Outcome, Outcomes};
use rusqlite::{Connection, OptionalExtension, params};

/// Meta's per-user marketing limit: try again a day later, at most twice.
pub const MARKETING_LIMIT: i64 = 131_049;
/// Deferrals before a recipient fails for good.
pub const MAX_DEFERS: i64 = 2;
/// How long a 131049 waits (Meta: at least 24 hours), and any other "later" error.
const DEFER_MARKETING: i64 = 86_400 + 600;
const DEFER_OTHER: i64 = 3600;
/// The error-rate window and the least sends it judges.
const ERROR_WINDOW: i64 = 200;
const ERROR_MIN_SENDS: i64 = 20;

/// Campaigns as the outbox's listener.
pub struct CampaignOutcomes;

impl Outcomes for CampaignOutcomes {
    fn record(&self, c: &Connection, o: &Outcome<'_>) -> Result<Option<AfterCommit>, AppError> {
        record(c, o)?;
        Ok(None)
    }
}

/// A ledger row an outcome or a status names.
struct Row {
    id: i64,
    campaign: CampaignId,
    state: super::RecipientState,
    defers: i64,
}

fn by_outbox(c: &Connection, outbox_id: i64) -> rusqlite::Result<Option<Row>> {
    find_row(c, "outbox_id", &outbox_id)
}

fn by_wamid(c: &Connection, wamid: &str) -> rusqlite::Result<Option<Row>> {
    find_row(c, "wamid", &wamid)
}

/// The row whose `column` (an indexed, unique key: `outbox_id` or `wamid`) is `key`.
fn find_row(c: &Connection, column: &str, key: &dyn rusqlite::ToSql) -> rusqlite::Result<Option<Row>> {
    c.prepare_cached(&format!(
        "SELECT id, campaign_id, state, defers FROM campaign_recipients WHERE {column} = ?1"
    ))?
    .query_row([key], |r| {
        Ok(Row {
            id: r.get(0)?,
            campaign: r.get(1)?,
            state: r.get(2)?,
            defers: r.get(3)?,
        })
    })
    .optional()
}

/// Writes an outbox outcome into the ledger (nothing when the send was not a campaign's).
pub fn record(c: &Connection, o: &Outcome<'_>) -> Result<(), AppError> {
    match *o {
        Outcome::Sent {
            outbox_id, wamid, at, ..
        } => {
            c.prepare_cached(
                "UPDATE campaign_recipients SET state = 'sent', wamid = ?2, sent_at = ?3, done_at = coalesce(done_at, ?3),
                        reason = NULL, updated_at = ?3
                 WHERE outbox_id = ?1 AND state IN ('sending', 'needs_review')",
            )?
            .execute(params![outbox_id, wamid, at])?;
        }
        Outcome::Retrying { .. } => {}
        Outcome::Unsent {
            outbox_id,
            held: true,
            reason,
            at,
            ..
        } => {
            c.prepare_cached(
                "UPDATE campaign_recipients SET state = 'needs_review', reason = 'interrupted', detail = ?2, updated_at = ?3
                 WHERE outbox_id = ?1 AND state = 'sending'",
            )?
            .execute(params![outbox_id, reason, at])?;
        }
        Outcome::Unsent {
            outbox_id,
            held: false,
            code,
            reason,
            at,
        } => {
            if let Some(row) = by_outbox(c, outbox_id)? {
                if row.state == super::RecipientState::Sending {
                    fail_or_defer(c, &row, code, reason, at)?;
                }
            }
        }
    }
    Ok(())
}

/// A send that did not reach the person: deferred when Meta says "later", else failed
/// with Meta's code and words. Then the campaign's error rate is judged.
fn fail_or_defer(c: &Connection, row: &Row, code: Option<i64>, detail: &str, at: i64) -> Result<(), AppError> {
    let later =
        code.is_some_and(|k| crate::whatsapp::graph::classify(k) == crate::whatsapp::graph::ErrorClass::RetryLater);
    if later && row.defers < MAX_DEFERS {
        let wait = if code == Some(MARKETING_LIMIT) {
            DEFER_MARKETING
        } else {
            DEFER_OTHER
        };
        c.prepare_cached(
            "UPDATE campaign_recipients SET state = 'deferred', defers = defers + 1, next_at = ?2, error_code = ?3,
                    detail = ?4, reason = 'later', outbox_id = NULL, wamid = NULL, updated_at = ?5
             WHERE id = ?1",
        )?
        .execute(params![row.id, at + wait, code, detail, at])?;
        return Ok(());
    }
    c.prepare_cached(
        "UPDATE campaign_recipients SET state = 'failed', error_code = ?2, detail = ?3, reason = NULL,
                done_at = coalesce(done_at, ?4), updated_at = ?4
         WHERE id = ?1",
    )?
    .execute(params![row.id, code, detail, at])?;
    judge_error_rate(c, row.campaign, at)?;
    Ok(())
}

/// More than the set share of the last 200 sends failed: the campaign pauses for a
/// person to look (a refusal because the person stopped marketing is their choice, not
/// an error, and does not count).
pub(super) fn judge_error_rate(c: &Connection, campaign: CampaignId, at: i64) -> Result<bool, AppError> {
    let percent = super::settings(c)?.error_pause_percent;
    if !(1..100).contains(&percent) {
        return Ok(false);
    }
    let (total, failed): (i64, i64) = c
        .prepare_cached(
            "SELECT count(*), coalesce(sum(state = 'failed' AND coalesce(error_code, 0) <> 131050), 0)
             FROM (SELECT state, error_code FROM campaign_recipients
                   WHERE campaign_id = ?1 AND done_at IS NOT NULL ORDER BY done_at DESC LIMIT ?2)",
        )?
        .query_row(params![campaign, ERROR_WINDOW], |r| Ok((r.get(0)?, r.get(1)?)))?;
    if total >= ERROR_MIN_SENDS && failed * 100 > percent * total {
        let detail = format!("{failed}/{total}");
        return Ok(service::pause_in(
            c,
            campaign,
            "campaigns.paused.errors",
            &detail,
            None,
            at,
        )?);
    }
    Ok(false)
}

/// A status from Meta for a campaign's message (nothing when the wamid is not one).
pub fn apply_status(
    c: &Connection,
    wamid: &str,
    status: &str,
    error: Option<(i64, &str)>,
    at: i64,
) -> Result<(), AppError> {
    use super::RecipientState as S;
    let Some(row) = by_wamid(c, wamid)? else {
        return Ok(());
    };
    let to = match status {
        "sent" => S::Sent,
        "delivered" => S::Delivered,
        "read" => S::Read,
        "failed" => {
            // Failed after it was read cannot be; before, it is the message's end.
            if matches!(row.state, S::Sent | S::Delivered | S::Sending | S::NeedsReview) {
                let (code, detail) = error.map_or((None, ""), |(k, d)| (Some(k), d));
                fail_or_defer(c, &row, code, detail, at)?;
            }
            return Ok(());
        }
        _ => return Ok(()),
    };
    if to.rank() > row.state.rank() && matches!(row.state, S::Sent | S::Delivered | S::Read) {
        c.prepare_cached("UPDATE campaign_recipients SET state = ?2, updated_at = ?3 WHERE id = ?1")?
            .execute(params![row.id, to, at])?;
    }
    Ok(())
}

/// A message from a contact: the latest campaign message sent to them within that
/// campaign's reply time counts as replied.
pub fn note_reply(c: &Connection, contact: i64, at: i64) -> rusqlite::Result<()> {
    c.prepare_cached(
        "UPDATE campaign_recipients SET state = 'replied', replied_at = ?2, updated_at = ?2
         WHERE id = (SELECT r.id FROM campaign_recipients r JOIN campaigns k ON k.id = r.campaign_id
                     WHERE r.contact_id = ?1 AND r.sent_at IS NOT NULL AND r.sent_at <= ?2
                       AND r.sent_at >= ?2 - k.reply_hours * 3600
                       AND r.state IN ('sent', 'delivered', 'read')
                     ORDER BY r.sent_at DESC LIMIT 1)",
    )?
    .execute(params![contact, at])?;
    Ok(())
}
