//! The one door out: every message (agent, bot, campaign) is a row in `outbox`, and one
//! dispatcher sends them: per-number token bucket at the number's messages-per-second,
//! per-recipient spacing for Meta's pair rate limit, `sending` written before the HTTP
//! call, errors handled by class (retry with backoff, retry much later, final with the
//! reason, or pause the whole number until an admin fixes it). After a crash, rows left
//! `sending` go to `needs_review`: a customer is never messaged twice by the appliance.

use super::graph::{ErrorClass, GraphError};
use super::outbound::{self, OutMessage};
use crate::error::AppError;
use crate::web::AppState;
use actix_web::web;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use rusqlite::{Connection, params};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Rows taken per round.
const BATCH: i64 = 200;
/// Quick retries before a message is given up.
pub const MAX_ATTEMPTS: i64 = 8;
/// Meta's pair rate: about one message per 6 s to the same person, with short bursts.
const PAIR_PERIOD: Duration = Duration::from_secs(6);
const PAIR_BURST: u32 = 10;
/// Sends in flight at once (all numbers together).
const IN_FLIGHT: usize = 128;
/// Rows claimed (marked `sending`) per commit.
const GROUP: usize = 20;

/// Queues a message; the dispatcher sends it. Returns the outbox id.
pub fn enqueue(
    c: &Connection,
    number_id: i64,
    recipient: &str,
    contact_id: Option<i64>,
    msg: &OutMessage,
    origin: &str,
    now: i64,
) -> Result<i64, AppError> {
    let payload = serde_json::to_string(msg).map_err(AppError::internal)?;
    c.execute(
        "INSERT INTO outbox (number_id, recipient, contact_id, kind, payload, origin, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
        params![number_id, recipient, contact_id, msg.kind(), payload, origin, now],
    )?;
    Ok(c.last_insert_rowid())
}

/// The dispatcher's rate limiters.
pub struct Limiters {
    numbers: Mutex<HashMap<i64, (i64, Arc<DefaultDirectRateLimiter>)>>,
    pairs: DefaultKeyedRateLimiter<(i64, String)>,
}

impl Default for Limiters {
    fn default() -> Self {
        let burst = NonZeroU32::new(PAIR_BURST).unwrap_or(NonZeroU32::MIN);
        let pair = Quota::with_period(PAIR_PERIOD)
            .map(|q| q.allow_burst(burst))
            .unwrap_or(Quota::per_minute(burst));
        Limiters {
            numbers: Mutex::new(HashMap::new()),
            pairs: RateLimiter::keyed(pair),
        }
    }
}

impl Limiters {
    /// The token bucket of a number at its configured rate (rebuilt when the rate changes).
    fn number(&self, number_id: i64, mps: i64) -> Arc<DefaultDirectRateLimiter> {
        let mut map = self.numbers.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(&number_id) {
            Some((rate, l)) if *rate == mps => l.clone(),
            _ => {
                let per_second =
                    NonZeroU32::new(u32::try_from(mps.clamp(1, 1000)).unwrap_or(80)).unwrap_or(NonZeroU32::MIN);
                // A tenth of a second of burst: the rate holds within each second.
                let burst = NonZeroU32::new((per_second.get() / 10).max(1)).unwrap_or(NonZeroU32::MIN);
                let l = Arc::new(RateLimiter::direct(Quota::per_second(per_second).allow_burst(burst)));
                map.insert(number_id, (mps, l.clone()));
                l
            }
        }
    }
}

pub fn start(state: web::Data<AppState>) {
    tokio::spawn(async move {
        let now = state.now();
        match state.db.write(move |c| Ok(hold_interrupted(c, now)?)).await {
            Ok(n) if n > 0 => tracing::warn!(messages = n, "sends interrupted by a restart are held for review"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot check for interrupted sends"),
        }
        loop {
            match dispatch_round(&state).await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "outbox round failed"),
            }
            let _ = tokio::time::timeout(Duration::from_millis(500), state.outbox_notify.notified()).await;
        }
    });
}

/// Rows left `sending` by a crash were maybe sent, maybe not: never again blindly.
pub fn hold_interrupted(c: &Connection, now: i64) -> rusqlite::Result<usize> {
    let mut stmt = c.prepare("SELECT id FROM outbox WHERE state = 'sending' AND wamid IS NULL")?;
    let held = stmt
        .query_map([], |r| r.get::<_, i64>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for id in held {
        crate::inbox::mark_unsent(c, id, "held", None, "interrupted while sending", now)?;
    }
    c.execute(
        "UPDATE outbox SET state = 'needs_review', updated_at = ?1,
                error_message = 'interrupted while sending: check the conversation before sending it again'
         WHERE state = 'sending' AND wamid IS NULL",
        [now],
    )
}

struct Due {
    id: i64,
    number_id: i64,
    recipient: String,
    contact_id: Option<i64>,
    payload: String,
    attempts: i64,
    phone_number_id: String,
    token: String,
    mps: i64,
}

fn due(c: &Connection, now: i64) -> rusqlite::Result<Vec<Due>> {
    let mut stmt = c.prepare(
        "SELECT o.id, o.number_id, o.recipient, o.contact_id, o.payload, o.attempts, n.phone_number_id, n.access_token, n.mps
         FROM outbox o JOIN wa_numbers n ON n.id = o.number_id
         WHERE o.state = 'queued' AND o.next_attempt_at <= ?1 AND n.paused_reason IS NULL
         ORDER BY o.id LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![now, BATCH], |r| {
        Ok(Due {
            id: r.get(0)?,
            number_id: r.get(1)?,
            recipient: r.get(2)?,
            contact_id: r.get(3)?,
            payload: r.get(4)?,
            attempts: r.get(5)?,
            phone_number_id: r.get(6)?,
            token: r.get(7)?,
            mps: r.get(8)?,
        })
    })?;
    rows.collect()
}

/// One round: send what is due, within the limits. Returns how many rows were taken.
/// Rows are claimed in small groups (one commit marks a group `sending`), each row only
/// after its number's token bucket let it through, so the rate holds and a crash can
/// only ever hold back the few rows of the group in flight.
pub async fn dispatch_round(state: &web::Data<AppState>) -> Result<usize, AppError> {
    let now = state.now();
    let rows = state.db.read(move |c| Ok(due(c, now)?)).await?;
    let taken = rows.len();
    let permits = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut tasks = Vec::new();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let mut group = Vec::with_capacity(GROUP);
        let mut postponed = Vec::new();
        for row in rows.by_ref() {
            if state
                .outbox_limits
                .pairs
                .check_key(&(row.number_id, row.recipient.clone()))
                .is_err()
            {
                // Too many to this person just now: later, without touching anyone else.
                postponed.push(row.id);
                continue;
            }
            state.outbox_limits.number(row.number_id, row.mps).until_ready().await;
            group.push(row);
            if group.len() == GROUP {
                break;
            }
        }
        let (t, ids): (i64, Vec<i64>) = (state.now(), group.iter().map(|r| r.id).collect());
        let later = t + PAIR_PERIOD.as_secs() as i64;
        let claimed = state
            .db
            .write(move |c| {
                for id in postponed {
                    postpone(c, id, later)?;
                }
                let mut claimed = Vec::new();
                for id in ids {
                    if mark_sending(c, id, t)? {
                        claimed.push(id);
                    }
                }
                Ok(claimed)
            })
            .await?;
        for row in group.into_iter().filter(|r| claimed.contains(&r.id)) {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let st = state.clone();
            tasks.push(tokio::spawn(async move {
                send_one(&st, row).await;
                drop(permit);
            }));
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    Ok(taken)
}

fn postpone(c: &Connection, id: i64, at: i64) -> rusqlite::Result<usize> {
    c.execute("UPDATE outbox SET next_attempt_at = ?2 WHERE id = ?1", params![id, at])
}

/// `queued` -> `sending`, committed before the HTTP call; false if it was cancelled.
fn mark_sending(c: &Connection, id: i64, now: i64) -> rusqlite::Result<bool> {
    Ok(c.execute(
        "UPDATE outbox SET state = 'sending', updated_at = ?2 WHERE id = ?1 AND state = 'queued'",
        params![id, now],
    )? == 1)
}

async fn send_one(state: &web::Data<AppState>, row: Due) {
    let msg: OutMessage = match serde_json::from_str(&row.payload) {
        Ok(m) => m,
        Err(e) => {
            let (id, now, msg) = (row.id, state.now(), format!("unreadable outbox row: {e}"));
            let _ = state
                .db
                .write(move |c| Ok(fail(c, id, None, "final", &msg, now)?))
                .await;
            return;
        }
    };
    let body = outbound::to_meta(&row.recipient, &msg);
    let result = state.graph.send(&row.phone_number_id, &row.token, &body).await;
    let now = state.now();
    let outcome = match result {
        Ok(wamid) => {
            let (id, summary, kind) = (row.id, msg.summary(), msg.kind());
            let (phone, contact, has_wamid) = (row.phone_number_id.clone(), row.contact_id, msg.has_wamid());
            state
                .db
                .write(move |c| {
                    c.execute(
                        "UPDATE outbox SET state = 'sent', wamid = ?2, updated_at = ?3, error_code = NULL,
                                error_class = NULL, error_message = NULL WHERE id = ?1",
                        params![id, wamid, now],
                    )?;
                    let (true, Some(w)) = (has_wamid, &wamid) else {
                        return Ok(None);
                    };
                    // A reply from the inbox is a message row since it was queued.
                    if !crate::inbox::link_wamid(c, id, w)? {
                        let message = crate::inbox::NewOutbound {
                            phone_number_id: &phone,
                            contact_id: contact,
                            kind,
                            body: &summary,
                            outbox_id: id,
                            author_id: None,
                            reply_to: None,
                            wamid: Some(w),
                            at: now,
                        };
                        crate::inbox::insert_outbound(c, &message)?;
                    }
                    crate::inbox::settle_statuses(c, w)?;
                    Ok(crate::inbox::conversations::of_wamid(c, w)?)
                })
                .await
        }
        Err(e) => {
            let (row_id, attempts, number_id) = (row.id, row.attempts, row.number_id);
            state
                .db
                .write(move |c| {
                    handle_error(c, row_id, number_id, attempts, &e, now)?;
                    Ok(crate::inbox::conversation_of_outbox(c, row_id)?)
                })
                .await
        }
    };
    match outcome {
        Ok(Some(conversation)) => {
            crate::inbox::live::publish(state, vec![(conversation, crate::inbox::live::Kind::Changed)]).await;
        }
        Ok(None) => {}
        Err(e) => tracing::error!(outbox = row.id, error = %e, "cannot record the outcome of a send"),
    }
}

fn fail(c: &Connection, id: i64, code: Option<i64>, class: &str, message: &str, now: i64) -> rusqlite::Result<usize> {
    crate::inbox::mark_unsent(c, id, "failed", code, message, now)?;
    c.execute(
        "UPDATE outbox SET state = 'failed', error_code = ?2, error_class = ?3, error_message = ?4, updated_at = ?5
         WHERE id = ?1",
        params![id, code, class, message, now],
    )
}

/// What an error does to the row (and, for channel errors, to the number).
fn handle_error(
    c: &Connection,
    id: i64,
    number_id: i64,
    attempts: i64,
    e: &GraphError,
    now: i64,
) -> rusqlite::Result<()> {
    let code = match e {
        GraphError::Api { code, .. } => Some(*code),
        GraphError::Transport(_) => None,
    };
    let message = e.to_string();
    let retry_at = |delay: i64, class: &str| -> rusqlite::Result<()> {
        c.execute(
            "UPDATE outbox SET state = 'queued', attempts = attempts + 1, next_attempt_at = ?2, error_code = ?3,
                    error_class = ?4, error_message = ?5, updated_at = ?6 WHERE id = ?1",
            params![id, now + delay, code, class, message, now],
        )?;
        Ok(())
    };
    match e.class() {
        ErrorClass::Retry if attempts + 1 >= MAX_ATTEMPTS => {
            fail(
                c,
                id,
                code,
                "retry",
                &format!("gave up after {MAX_ATTEMPTS} attempts: {message}"),
                now,
            )?;
        }
        ErrorClass::Retry => {
            // Pair rate (131056): 4^n seconds for this recipient only; others: 2^n, at most 5 min.
            let delay = if code == Some(131_056) {
                4_i64.pow(u32::try_from(attempts.min(5)).unwrap_or(5))
            } else {
                (1_i64 << attempts.min(8)).min(300)
            };
            retry_at(delay, "retry")?;
        }
        ErrorClass::RetryLater => retry_at(3600, "retry_later")?,
        ErrorClass::Final => {
            fail(c, id, code, "final", &message, now)?;
        }
        ErrorClass::StopChannel => {
            // The message is not at fault: it waits, and the number stops until fixed.
            c.execute(
                "UPDATE outbox SET state = 'queued', error_code = ?2, error_class = 'channel', error_message = ?3, updated_at = ?4
                 WHERE id = ?1",
                params![id, code, message, now],
            )?;
            super::numbers::repo::pause(c, number_id, &message, now)?;
        }
    }
    Ok(())
}

/// Counts by state for the number's page.
pub fn counts(c: &Connection, number_id: i64) -> rusqlite::Result<HashMap<String, i64>> {
    let mut stmt = c.prepare("SELECT state, count(*) FROM outbox WHERE number_id = ?1 GROUP BY state")?;
    let rows = stmt.query_map([number_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// Lets sending resume on a number (after a new token, or when the account is fine again).
pub fn resume(c: &Connection, number_id: i64) -> rusqlite::Result<usize> {
    c.execute("UPDATE wa_numbers SET paused_reason = NULL WHERE id = ?1", [number_id])
}
