//! Works through the durable inbox after the 200: parses each delivery and applies its
//! events (contacts, messages, statuses, usage ledger, account news) in one write.
//! Idempotent on Meta's ids, so a delivery seen twice changes nothing. A delivery that
//! fails is quarantined with its error and retried with backoff; admins see it and can
//! retry it by hand. Runs from start-up, so deliveries acknowledged before a crash are
//! processed after the restart.

use super::inbound::{self, Event};
use super::numbers::repo::{NewsEntry as News, record_news};
use crate::error::AppError;
use crate::inbox::live::Kind;
use crate::web::AppState;
use actix_web::web;
use rusqlite::{Connection, params};
use std::time::Duration;

/// Deliveries handled per round.
const BATCH: i64 = 200;
/// Automatic retries of a quarantined delivery (1, 2, 4 … minutes apart).
pub const MAX_ATTEMPTS: i64 = 10;

pub fn start(state: web::Data<AppState>) {
    tokio::spawn(async move {
        loop {
            match run_once(&state).await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "webhook processing round failed"),
            }
            // New deliveries wake the processor at once; the tick catches retries.
            let _ = tokio::time::timeout(Duration::from_secs(1), state.inbox_notify.notified()).await;
        }
    });
}

/// Processes what is due; returns how many deliveries were handled.
pub async fn run_once(state: &AppState) -> Result<usize, AppError> {
    let now = state.now();
    let due = state.db.read(move |c| Ok(due_deliveries(c, now)?)).await?;
    let n = due.len();
    for (id, body) in due {
        let now = state.now();
        match inbound::parse(&body) {
            Ok(events) => {
                let applied = state.db.write(move |c| apply(c, id, &events, now)).await;
                // Media URLs live 5 minutes: fetch as soon as the message is in.
                state.media_notify.notify_one();
                match applied {
                    Ok(touched) => crate::inbox::live::publish(state, touched).await,
                    Err(e) => {
                        let msg = e.to_string();
                        state.db.write(move |c| Ok(quarantine(c, id, &msg, now)?)).await?;
                    }
                }
            }
            Err(msg) => {
                tracing::warn!(delivery = id, error = %msg, "webhook delivery quarantined");
                state.db.write(move |c| Ok(quarantine(c, id, &msg, now)?)).await?;
            }
        }
    }
    Ok(n)
}

fn due_deliveries(c: &Connection, now: i64) -> rusqlite::Result<Vec<(i64, Vec<u8>)>> {
    let mut stmt = c.prepare(
        "SELECT id, body FROM webhook_inbox
         WHERE state = 'new'
            OR (state = 'quarantined' AND attempts < ?1 AND coalesce(next_attempt_at, 0) <= ?2)
         ORDER BY id LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![MAX_ATTEMPTS, now, BATCH], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

fn quarantine(c: &Connection, id: i64, error: &str, now: i64) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE webhook_inbox SET state = 'quarantined', attempts = attempts + 1, last_error = ?2,
                next_attempt_at = ?3 + 60 * (1 << min(attempts, 12))
         WHERE id = ?1",
        params![id, error, now],
    )?;
    Ok(())
}

/// Applies one delivery's events and marks it done, all in one transaction. Returns the
/// conversations that changed, for live updates.
fn apply(c: &Connection, id: i64, events: &[Event], now: i64) -> Result<Vec<(i64, Kind)>, AppError> {
    let mut touched = Vec::new();
    for event in events {
        match event {
            Event::Message(m) => {
                let who = crate::contacts::Identity {
                    wa_id: m.from.wa_id.as_deref(),
                    bsuid: m.from.bsuid.as_deref(),
                    profile_name: m.from.profile_name.as_deref(),
                    username: m.from.username.as_deref(),
                };
                let contact_id = crate::contacts::upsert(c, &who, now)?;
                if let Some(media_id) = m
                    .detail
                    .get("media_id")
                    .and_then(|v| v.as_str())
                    .filter(|v| !v.is_empty())
                {
                    let text = |k: &str| m.detail.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
                    let filename = m.detail.get("filename").and_then(|v| v.as_str());
                    let (mime, sha) = (text("mime_type"), text("sha256"));
                    let incoming = super::media::Incoming {
                        media_id,
                        wamid: &m.wamid,
                        phone_number_id: &m.phone_number_id,
                        kind: &m.kind,
                        mime: &mime,
                        filename,
                        sha256: &sha,
                    };
                    super::media::queue(c, &incoming, now)?;
                }
                let detail = m.detail.to_string();
                let referral = m.referral.as_ref().map(|r| r.to_string());
                let fresh = crate::inbox::insert_inbound(
                    c,
                    &crate::inbox::NewInbound {
                        phone_number_id: &m.phone_number_id,
                        contact_id,
                        wamid: &m.wamid,
                        kind: &m.kind,
                        body: &m.body,
                        detail: &detail,
                        understood: m.understood,
                        reply_to: m.reply_to.as_deref(),
                        forwarded: m.forwarded,
                        referral: referral.as_deref(),
                        sent_at: m.timestamp,
                    },
                    now,
                )?;
                if let (true, Some(contact)) = (fresh, contact_id) {
                    if let Some(mid) = crate::inbox::message_id(c, &m.wamid)? {
                        let preview = if m.body.is_empty() {
                            m.kind.as_str()
                        } else {
                            m.body.as_str()
                        };
                        let activity = crate::inbox::Activity {
                            phone_number_id: &m.phone_number_id,
                            contact_id: contact,
                            message_id: mid,
                            at: m.timestamp,
                            preview,
                            inbound: true,
                        };
                        let conversation = crate::inbox::touch_conversation(c, &activity, now)?;
                        crate::inbox::manage::auto_assign_if_due(c, conversation, now)?;
                        touched.push((conversation, Kind::Inbound));
                    }
                }
            }
            Event::Status(s) => {
                let error = s.error.as_ref().map(|e| (e.code, e.title.as_str(), e.details.as_str()));
                let changed = crate::inbox::apply_status(
                    c,
                    &crate::inbox::StatusChange {
                        wamid: &s.wamid,
                        status: &s.status,
                        at: s.timestamp,
                        error,
                    },
                )?;
                if let (true, Some(conversation)) = (changed, crate::inbox::conversations::of_wamid(c, &s.wamid)?) {
                    touched.push((conversation, Kind::Changed));
                }
                if let Some(p) = &s.pricing {
                    crate::inbox::record_usage(
                        c,
                        &s.wamid,
                        &p.category,
                        &p.pricing_type,
                        p.billable,
                        &p.model,
                        s.timestamp,
                    )?;
                }
            }
            Event::Account(a) => {
                let news = News {
                    waba_id: &a.waba_id,
                    phone_number_id: "",
                    field: &a.field,
                    event: &a.event,
                    summary: &a.summary,
                };
                record_news(c, &news, now)?;
                // Template status news also keeps the synced template list current.
                if let (Some(name), Some(lang)) = (&a.template_name, &a.template_language) {
                    super::templates::set_status(c, &a.waba_id, name, lang, &a.event)?;
                }
            }
            Event::Error { phone_number_id, error } => {
                let (code, summary) = (error.code.to_string(), format!("{} {}", error.title, error.details));
                let news = News {
                    waba_id: "",
                    phone_number_id,
                    field: "errors",
                    event: &code,
                    summary: &summary,
                };
                record_news(c, &news, now)?;
            }
        }
    }
    c.execute(
        "UPDATE webhook_inbox SET state = 'done', last_error = NULL WHERE id = ?1",
        [id],
    )?;
    touched.dedup();
    Ok(touched)
}

/// Quarantined deliveries for the admin page: (id, received at, attempts, error).
pub fn quarantined(c: &Connection) -> rusqlite::Result<Vec<(i64, i64, i64, String)>> {
    let mut stmt = c.prepare(
        "SELECT id, received_at, attempts, coalesce(last_error, '') FROM webhook_inbox
         WHERE state = 'quarantined' ORDER BY id DESC LIMIT 50",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    rows.collect()
}

/// Puts a quarantined delivery back in the queue now.
pub fn retry(c: &Connection, id: i64) -> rusqlite::Result<usize> {
    c.execute(
        "UPDATE webhook_inbox SET state = 'new', next_attempt_at = NULL WHERE id = ?1 AND state = 'quarantined'",
        [id],
    )
}

/// Processed deliveries are raw personal data: they are kept only a short while.
pub fn purge_done(c: &Connection, before: i64) -> rusqlite::Result<usize> {
    c.execute(
        "DELETE FROM webhook_inbox WHERE state = 'done' AND received_at < ?1",
        [before],
    )
}
