//! The one door out: every message (agent, bot, campaign) is a row in `outbox`, and one
//! dispatcher sends them: per-number token bucket at the number's messages-per-second,
//! per-recipient spacing for Meta's pair rate limit, `sending` written before the HTTP
//! call, errors handled by class (retry with backoff, retry much later, final with the
//! reason, or pause the whole number until an admin fixes it). After a crash, rows left
//! `sending` go to `needs_review`: a customer is never messaged twice by the appliance.

use super::graph::{ErrorClass, GraphClient, GraphError};
use super::outbound::{self, OutMessage};
use crate::clock::Clock;
use crate::error::AppError;
use crate::store::{Db, DbError};
use crate::wake::Doorbell;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use rusqlite::{Connection, OptionalExtension, params};
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

/// Who put a message in the outbox (the `origin` column). Later senders (the bot,
/// campaigns) add theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// An agent in the inbox.
    Agent,
    /// The REST API.
    Api,
    /// Blue ticks for a message an agent read.
    ReadReceipt,
    /// Whacaster itself, tools and benchmarks.
    System,
    /// A broadcast campaign (its rows wait behind everyone else's).
    Campaign,
    /// The chatbot answering a customer.
    Bot,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Agent => "agent",
            Origin::Api => "api",
            Origin::ReadReceipt => "read",
            Origin::System => "system",
            Origin::Campaign => "campaign",
            Origin::Bot => "bot",
        }
    }
}

/// A send that failed for good goes back in the queue, as if new (someone pressed
/// "Try again"). Only a `failed` row: one that may have gone out (`needs_review`) or did
/// is never sent again this way. False when the row is not failed.
pub fn requeue_failed(c: &Connection, id: i64, now: i64) -> rusqlite::Result<bool> {
    Ok(c.execute(
        "UPDATE outbox SET state = 'queued', attempts = 0, next_attempt_at = ?2, error_code = NULL,
                error_class = NULL, error_message = NULL, updated_at = ?2
         WHERE id = ?1 AND state = 'failed'",
        params![id, now],
    )? > 0)
}

/// Queues a message; the dispatcher sends it. Returns the outbox id.
pub fn enqueue(
    c: &Connection,
    number_id: i64,
    recipient: &str,
    contact_id: Option<i64>,
    msg: &OutMessage,
    origin: Origin,
    now: i64,
) -> Result<i64, AppError> {
    enqueue_tagged(c, number_id, recipient, contact_id, msg, origin, "", now)
}

/// [`enqueue`] with a tag the sender chooses (`campaign=3;recipient=77`): it rides in
/// the callback data Meta echoes in the message's statuses (at most 200 characters,
/// no `;attempt=`).
#[expect(clippy::too_many_arguments, reason = "the row's columns")]
pub fn enqueue_tagged(
    c: &Connection,
    number_id: i64,
    recipient: &str,
    contact_id: Option<i64>,
    msg: &OutMessage,
    origin: Origin,
    tag: &str,
    now: i64,
) -> Result<i64, AppError> {
    let payload = serde_json::to_string(msg).map_err(AppError::internal)?;
    c.prepare_cached(
        "INSERT INTO outbox (number_id, recipient, contact_id, kind, payload, origin, tag, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
    )?
    .execute(params![
        number_id,
        recipient,
        contact_id,
        msg.kind(),
        payload,
        origin.as_str(),
        tag.chars().take(200).collect::<String>(),
        now
    ])?;
    Ok(c.last_insert_rowid())
}

/// Takes back messages not yet claimed by the dispatcher (still `queued`): they become
/// `cancelled` and are never sent. Returns the ids cancelled. A campaign that pauses
/// calls this for its rows; what is already `sending` finishes.
pub fn cancel_queued(c: &Connection, ids: &[i64], now: i64) -> rusqlite::Result<Vec<i64>> {
    let mut stmt = c.prepare_cached(
        "UPDATE outbox SET state = 'cancelled', updated_at = ?2 WHERE id = ?1 AND state = 'queued' RETURNING id",
    )?;
    let mut done = Vec::new();
    for &id in ids {
        if let Some(x) = stmt.query_row(params![id, now], |r| r.get::<_, i64>(0)).optional()? {
            done.push(x);
        }
    }
    Ok(done)
}

/// Rows of `origin` still queued for a contact on a number (the bot's, when a person
/// takes the conversation over).
pub fn queued_for(c: &Connection, number_id: i64, contact_id: i64, origin: Origin) -> rusqlite::Result<Vec<i64>> {
    let mut stmt = c.prepare_cached(
        "SELECT id FROM outbox WHERE state = 'queued' AND number_id = ?1 AND contact_id = ?2 AND origin = ?3",
    )?;
    let rows = stmt.query_map(params![number_id, contact_id, origin.as_str()], |r| r.get(0))?;
    rows.collect()
}

/// How many messages of `origin` were queued for a contact on a number since `since`
/// (the bot's loop guard).
pub fn count_since(
    c: &Connection,
    number_id: i64,
    contact_id: i64,
    origin: Origin,
    since: i64,
) -> rusqlite::Result<u32> {
    c.prepare_cached(
        "SELECT count(*) FROM outbox WHERE number_id = ?1 AND contact_id = ?2 AND origin = ?3 AND created_at > ?4",
    )?
    .query_row(params![number_id, contact_id, origin.as_str(), since], |r| r.get(0))
}

/// What became of a queued message. The dispatcher reports it to whoever listens
/// (the inbox, wired in `app`), inside the same write that records it in the outbox:
/// this module never writes another feature's rows.
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    /// Meta accepted it (`wamid` is `None` for kinds that get none, e.g. read receipts).
    Sent {
        outbox_id: i64,
        wamid: Option<&'a str>,
        phone_number_id: &'a str,
        contact_id: Option<i64>,
        kind: &'a str,
        summary: &'a str,
        at: i64,
    },
    /// It will be tried again; `code` is Meta's error (`None`: no answer), `reason` its text.
    Retrying {
        outbox_id: i64,
        code: Option<i64>,
        reason: &'a str,
        at: i64,
    },
    /// Given up for good (`held: false`, with the reason), or held for review because a
    /// crash left it maybe sent (`held: true`).
    Unsent {
        outbox_id: i64,
        held: bool,
        code: Option<i64>,
        reason: &'a str,
        at: i64,
    },
}

/// Runs after the commit that recorded an outcome (live news, for instance).
pub type AfterCommit = Box<dyn FnOnce() + Send>;

/// The listener for outcomes.
pub trait Outcomes: Send + Sync {
    /// Records `o` in the listener's own tables, inside the dispatcher's write.
    fn record(&self, c: &Connection, o: &Outcome<'_>) -> Result<Option<AfterCommit>, AppError>;
}

/// Several listeners (the inbox, campaigns), each told every outcome, in order.
pub struct Listeners(pub Vec<Arc<dyn Outcomes>>);

impl Outcomes for Listeners {
    fn record(&self, c: &Connection, o: &Outcome<'_>) -> Result<Option<AfterCommit>, AppError> {
        let mut after = Vec::new();
        for l in &self.0 {
            after.extend(l.record(c, o)?);
        }
        Ok(match after.len() {
            0 => None,
            1 => after.pop(),
            _ => Some(Box::new(move || {
                for f in after {
                    f();
                }
            })),
        })
    }
}

/// Outcomes nobody listens to (tools and benchmarks that only send).
pub struct Unheard;

impl Outcomes for Unheard {
    fn record(&self, _: &Connection, _: &Outcome<'_>) -> Result<Option<AfterCommit>, AppError> {
        Ok(None)
    }
}

/// The dispatcher and what it needs, nothing more.
#[derive(Clone)]
pub struct Dispatcher {
    pub db: Db,
    pub clock: Clock,
    pub graph: GraphClient,
    pub limits: Arc<Limiters>,
    /// Rung by whoever queued a message.
    pub bell: Doorbell,
    pub outcomes: Arc<dyn Outcomes>,
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
        let mut map = self.numbers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match map.get(&number_id) {
            Some((rate, l)) if *rate == mps => Arc::clone(l),
            _ => {
                let per_second =
                    NonZeroU32::new(u32::try_from(mps.clamp(1, 1000)).unwrap_or(80)).unwrap_or(NonZeroU32::MIN);
                // A tenth of a second of burst: the rate holds within each second.
                let burst = NonZeroU32::new((per_second.get() / 10).max(1)).unwrap_or(NonZeroU32::MIN);
                let l = Arc::new(RateLimiter::direct(Quota::per_second(per_second).allow_burst(burst)));
                map.insert(number_id, (mps, Arc::clone(&l)));
                l
            }
        }
    }
}

impl Dispatcher {
    /// Holds what a crash interrupted, then sends for ever. Call once (from `server`).
    pub fn start(self) {
        tokio::spawn(async move {
            let (now, outcomes) = (self.clock.unix(), Arc::clone(&self.outcomes));
            match self
                .db
                .write(move |c| Ok(hold_interrupted(c, outcomes.as_ref(), now)?))
                .await
            {
                Ok((n, after)) => {
                    if n > 0 {
                        tracing::warn!(messages = n, "sends interrupted by a restart are held for review");
                    }
                    for f in after {
                        f();
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot check for interrupted sends"),
            }
            loop {
                match self.dispatch_round().await {
                    Ok(n) if n > 0 => continue,
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "outbox round failed"),
                }
                self.bell.wait(Duration::from_millis(500)).await;
            }
        });
    }
}

/// What every send carries in `biz_opaque_callback_data`: the outbox row and the
/// attempt, then the sender's tag (a campaign and its recipient). Meta echoes it in the
/// message's status webhooks, so a send whose answer a crash lost can still be matched
/// to its row.
pub fn callback_data(outbox_id: i64, attempt: i64, tag: &str) -> String {
    if tag.is_empty() {
        format!("whacaster:outbox={outbox_id};attempt={attempt}")
    } else {
        format!("whacaster:outbox={outbox_id};attempt={attempt};{tag}")
    }
}

/// The outbox row named by callback data we sent (anything else is someone else's).
pub fn parse_callback_data(s: &str) -> Option<i64> {
    let rest = s.strip_prefix("whacaster:outbox=")?;
    let (id, rest) = rest.split_once(";attempt=")?;
    let attempt = rest.split(';').next()?;
    attempt.parse::<i64>().ok()?;
    id.parse().ok()
}

/// A held send that Meta's status shows did reach WhatsApp.
#[derive(Debug, Clone)]
pub struct Settled {
    pub phone_number_id: String,
    pub contact_id: Option<i64>,
    pub kind: String,
    pub summary: String,
}

/// A status webhook names an outbox row (by its callback data) that a crash left held
/// (`needs_review`, no wamid): the message was sent after all. The row gets its wamid
/// and becomes `sent` (or `failed`, if that is what Meta says); the caller reports it
/// to the inbox like any other send. `None` when the row is not held (nothing to do).
pub fn settle_held(
    c: &Connection,
    outbox_id: i64,
    wamid: &str,
    status: &str,
    now: i64,
) -> Result<Option<Settled>, AppError> {
    let held = c
        .query_row(
            "SELECT o.payload, n.phone_number_id, o.contact_id FROM outbox o JOIN wa_numbers n ON n.id = o.number_id
             WHERE o.id = ?1 AND o.state = 'needs_review' AND o.wamid IS NULL",
            [outbox_id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                ))
            },
        )
        .optional()?;
    let Some((payload, phone_number_id, contact_id)) = held else {
        return Ok(None);
    };
    let msg: OutMessage = serde_json::from_str(&payload).map_err(AppError::internal)?;
    let state = if status == "failed" {
        OutboxState::Failed
    } else {
        OutboxState::Sent
    };
    c.execute(
        "UPDATE outbox SET state = ?2, wamid = ?3, updated_at = ?4,
                error_message = 'settled from a status webhook after a restart' WHERE id = ?1",
        params![outbox_id, state, wamid, now],
    )?;
    Ok(Some(Settled {
        phone_number_id,
        contact_id,
        kind: msg.kind().to_string(),
        summary: msg.summary(),
    }))
}

/// Rows left `sending` by a crash were maybe sent, maybe not: never again blindly.
pub fn hold_interrupted(
    c: &Connection,
    outcomes: &dyn Outcomes,
    now: i64,
) -> Result<(usize, Vec<AfterCommit>), AppError> {
    const REASON: &str = "interrupted while sending";
    let mut stmt = c.prepare("SELECT id FROM outbox WHERE state = 'sending' AND wamid IS NULL")?;
    let held = stmt
        .query_map([], |r| r.get::<_, i64>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut after = Vec::new();
    for &outbox_id in &held {
        let o = Outcome::Unsent {
            outbox_id,
            held: true,
            code: None,
            reason: REASON,
            at: now,
        };
        after.extend(outcomes.record(c, &o)?);
    }
    c.execute(
        "UPDATE outbox SET state = 'needs_review', updated_at = ?1,
                error_message = 'interrupted while sending: check the conversation before sending it again'
         WHERE state = 'sending' AND wamid IS NULL",
        [now],
    )?;
    Ok((held.len(), after))
}

struct Due {
    id: i64,
    origin: String,
    tag: String,
    throttled: i64,
    number_id: i64,
    recipient: String,
    contact_id: Option<i64>,
    payload: String,
    attempts: i64,
    phone_number_id: String,
    token: crate::crypto::Secret,
    mps: i64,
}

fn list_due(c: &Connection, now: i64) -> rusqlite::Result<Vec<Due>> {
    let mut stmt = c.prepare(
        "SELECT o.id, o.number_id, o.recipient, o.contact_id, o.payload, o.attempts, n.phone_number_id, n.access_token, n.mps,
                o.origin, o.tag, o.throttled
         FROM outbox o JOIN wa_numbers n ON n.id = o.number_id
         WHERE o.state = 'queued' AND o.next_attempt_at <= ?1 AND n.paused_reason IS NULL
         ORDER BY o.origin = 'campaign', o.id LIMIT ?2",
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
            origin: r.get(9)?,
            tag: r.get(10)?,
            throttled: r.get(11)?,
        })
    })?;
    rows.collect()
}

/// One round: send what is due, within the limits. Returns how many rows were taken.
/// Rows are claimed in small groups (one commit marks a group `sending`), each row only
/// after its number's token bucket let it through, so the rate holds and a crash can
/// only ever hold back the few rows of the group in flight.
impl Dispatcher {
    pub async fn dispatch_round(&self) -> Result<usize, AppError> {
        let now = self.clock.unix();
        let rows = self.db.read(move |c| Ok(list_due(c, now)?)).await?;
        let taken = rows.len();
        let permits = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
        let mut tasks = Vec::new();
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let mut group = Vec::with_capacity(GROUP);
            let mut postponed = Vec::new();
            while let Some(row) = rows.peek() {
                // A group holds only rows whose turn has come: when the next one must
                // wait for the number's bucket, the group is sent first. Otherwise a
                // group paced at claim time would leave in one burst (twenty at once
                // on a 5/s number). A token taken for a row postponed below is lost:
                // the rate errs low, never high.
                let number = self.limits.number(row.number_id, row.mps);
                if number.check().is_err() {
                    if !group.is_empty() {
                        break;
                    }
                    number.until_ready().await;
                }
                let Some(row) = rows.next() else { break };
                if self
                    .limits
                    .pairs
                    .check_key(&(row.number_id, row.recipient.clone()))
                    .is_err()
                {
                    // Too many to this person just now: later, without touching anyone else.
                    postponed.push(row.id);
                    continue;
                }
                group.push(row);
                if group.len() == GROUP {
                    break;
                }
            }
            let (t, ids): (i64, Vec<i64>) = (self.clock.unix(), group.iter().map(|r| r.id).collect());
            let later = t + i64::try_from(PAIR_PERIOD.as_secs()).unwrap_or(i64::MAX);
            let claimed = self
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
                let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                    break;
                };
                let me = self.clone();
                tasks.push(tokio::spawn(async move {
                    me.send_one(row).await;
                    drop(permit);
                }));
            }
        }
        for t in tasks {
            if let Err(e) = t.await {
                tracing::error!(error = %e, "a send task failed");
            }
        }
        Ok(taken)
    }
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

impl Dispatcher {
    async fn send_one(&self, row: Due) {
        let outcomes = Arc::clone(&self.outcomes);
        let msg: OutMessage = match serde_json::from_str(&row.payload) {
            Ok(m) => m,
            Err(e) => {
                let (id, now, msg) = (row.id, self.clock.unix(), format!("unreadable outbox row: {e}"));
                let failed = self
                    .db
                    .write(move |c| Ok(fail(c, outcomes.as_ref(), id, None, "final", &msg, now)?))
                    .await;
                after_commit(row.id, failed);
                return;
            }
        };
        let callback = msg
            .has_wamid()
            .then(|| callback_data(row.id, row.attempts + row.throttled + 1, &row.tag));
        let body = outbound::to_meta(&row.recipient, &msg, callback.as_deref());
        let result = self.graph.send(&row.phone_number_id, row.token.expose(), &body).await;
        let now = self.clock.unix();
        let recorded = match result {
            Ok(wamid) => {
                let (id, summary, kind) = (row.id, msg.summary(), msg.kind());
                let (phone, contact, has_wamid) = (row.phone_number_id.clone(), row.contact_id, msg.has_wamid());
                self.db
                    .write(move |c| {
                        c.prepare_cached(
                            "UPDATE outbox SET state = 'sent', wamid = ?2, updated_at = ?3, error_code = NULL,
                                    error_class = NULL, error_message = NULL WHERE id = ?1",
                        )?
                        .execute(params![id, wamid, now])?;
                        let o = Outcome::Sent {
                            outbox_id: id,
                            wamid: wamid.as_deref().filter(|_| has_wamid),
                            phone_number_id: &phone,
                            contact_id: contact,
                            kind,
                            summary: &summary,
                            at: now,
                        };
                        Ok(outcomes.record(c, &o)?)
                    })
                    .await
            }
            Err(e) => {
                let tried = Tried {
                    id: row.id,
                    number_id: row.number_id,
                    attempts: row.attempts,
                    throttled: row.throttled,
                    campaign: row.origin == Origin::Campaign.as_str(),
                };
                self.db
                    .write(move |c| Ok(handle_error(c, outcomes.as_ref(), &tried, &e, now)?))
                    .await
            }
        };
        after_commit(row.id, recorded);
    }
}

/// Runs the listener's after-commit work, or logs why the outcome was not recorded.
fn after_commit(outbox_id: i64, recorded: Result<Option<AfterCommit>, DbError>) {
    match recorded {
        Ok(Some(f)) => f(),
        Ok(None) => {}
        Err(e) => tracing::error!(outbox = outbox_id, error = %e, "cannot record the outcome of a send"),
    }
}

fn fail(
    c: &Connection,
    outcomes: &dyn Outcomes,
    id: i64,
    code: Option<i64>,
    class: &str,
    message: &str,
    now: i64,
) -> Result<Option<AfterCommit>, AppError> {
    c.execute(
        "UPDATE outbox SET state = 'failed', error_code = ?2, error_class = ?3, error_message = ?4, updated_at = ?5
         WHERE id = ?1",
        params![id, code, class, message, now],
    )?;
    let o = Outcome::Unsent {
        outbox_id: id,
        held: false,
        code,
        reason: message,
        at: now,
    };
    outcomes.record(c, &o)
}

/// Seconds before a `retry_later` error is tried again.
const RETRY_LATER: i64 = 3600;

/// Seconds before the next try of a message that failed `attempts` times so far with a
/// retryable error. Pair rate (131056): 4^n for this recipient only (1 s … 17 min);
/// others: 2^n, at most 5 min.
fn retry_delay(code: Option<i64>, attempts: i64) -> i64 {
    let attempts = attempts.max(0);
    if code == Some(131_056) {
        4_i64.pow(u32::try_from(attempts.min(5)).unwrap_or(5))
    } else {
        (1_i64 << attempts.min(8)).min(300)
    }
}

/// The row a failed send was for.
struct Tried {
    id: i64,
    number_id: i64,
    attempts: i64,
    throttled: i64,
    /// A campaign's row: its ledger decides what "later" means.
    campaign: bool,
}

/// Meta's throughput refusals: the number (130429) or the pair (131056) is sending too
/// fast. They say nothing about the message, so they are not failed attempts.
fn is_throughput(code: Option<i64>) -> bool {
    matches!(code, Some(130_429 | 131_056))
}

/// What an error does to the row (and, for channel errors, to the number).
fn handle_error(
    c: &Connection,
    outcomes: &dyn Outcomes,
    row: &Tried,
    e: &GraphError,
    now: i64,
) -> Result<Option<AfterCommit>, AppError> {
    let (id, attempts) = (row.id, row.attempts);
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
    if is_throughput(code) {
        // Backs off like a retry, but never gives up because of it: the rate always
        // comes back, and the message was never at fault.
        c.execute(
            "UPDATE outbox SET state = 'queued', throttled = throttled + 1, next_attempt_at = ?2, error_code = ?3,
                    error_class = 'retry', error_message = ?4, updated_at = ?5 WHERE id = ?1",
            params![id, now + retry_delay(code, row.throttled), code, message, now],
        )?;
        return outcomes.record(
            c,
            &Outcome::Retrying {
                outbox_id: id,
                code,
                reason: &message,
                at: now,
            },
        );
    }
    match e.class() {
        // A campaign's ledger defers the person (131049: a day at least) and sends a new
        // row then; this row ends here with Meta's code.
        ErrorClass::RetryLater if row.campaign => {
            return fail(c, outcomes, id, code, "retry_later", &message, now);
        }
        ErrorClass::Retry if attempts + 1 >= MAX_ATTEMPTS => {
            let reason = format!("gave up after {MAX_ATTEMPTS} attempts: {message}");
            return fail(c, outcomes, id, code, "retry", &reason, now);
        }
        ErrorClass::Retry => retry_at(retry_delay(code, attempts), "retry")?,
        ErrorClass::RetryLater => retry_at(RETRY_LATER, "retry_later")?,
        ErrorClass::Final => return fail(c, outcomes, id, code, "final", &message, now),
        ErrorClass::StopChannel => {
            // The message is not at fault: it waits, and the number stops until fixed.
            c.execute(
                "UPDATE outbox SET state = 'queued', error_code = ?2, error_class = 'channel', error_message = ?3, updated_at = ?4
                 WHERE id = ?1",
                params![id, code, message, now],
            )?;
            super::numbers::repo::pause(c, row.number_id, &message, now)?;
        }
    }
    outcomes.record(
        c,
        &Outcome::Retrying {
            outbox_id: id,
            code,
            reason: &message,
            at: now,
        },
    )
}

/// Where an outbox row stands (the `state` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OutboxState {
    Queued,
    /// Claimed before the HTTP call; after a crash such a row is never sent blindly.
    Sending,
    Sent,
    Failed,
    /// Maybe sent, maybe not (a crash mid-send): a person decides.
    NeedsReview,
    Cancelled,
}

impl OutboxState {
    pub const ALL: [OutboxState; 6] = [
        OutboxState::Queued,
        OutboxState::Sending,
        OutboxState::Sent,
        OutboxState::Failed,
        OutboxState::NeedsReview,
        OutboxState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Queued => "queued",
            OutboxState::Sending => "sending",
            OutboxState::Sent => "sent",
            OutboxState::Failed => "failed",
            OutboxState::NeedsReview => "needs_review",
            OutboxState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<OutboxState> {
        OutboxState::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl rusqlite::types::FromSql for OutboxState {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let s = v.as_str()?;
        OutboxState::parse(s).ok_or_else(|| rusqlite::types::FromSqlError::Other(format!("outbox state {s}").into()))
    }
}

impl rusqlite::types::ToSql for OutboxState {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

/// Counts by state for the number's page, in the order of the ladder.
pub fn count_by_state(c: &Connection, number_id: i64) -> rusqlite::Result<Vec<(OutboxState, i64)>> {
    let mut stmt = c.prepare("SELECT state, count(*) FROM outbox WHERE number_id = ?1 GROUP BY state")?;
    let rows = stmt.query_map([number_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let mut v = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    v.sort();
    Ok(v)
}

/// One row of a number's outbox as its admin page lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Listed {
    pub id: i64,
    pub recipient: String,
    pub kind: String,
    pub attempts: i64,
    pub error_code: Option<i64>,
    pub error_message: Option<String>,
    pub updated_at: i64,
}

impl Listed {
    /// What went wrong in plain words (`whatsapp.why.*`), when something did.
    pub fn why(&self) -> Option<&'static str> {
        (self.error_code.is_some() || self.error_message.is_some()).then(|| super::graph::plain_reason(self.error_code))
    }
}

/// A number's newest rows in `state` (found through the `outbox_due` index).
pub fn list_in_state(c: &Connection, number_id: i64, state: OutboxState, limit: i64) -> rusqlite::Result<Vec<Listed>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, recipient, kind, attempts, error_code, error_message, updated_at FROM outbox
         WHERE state = ?1 AND number_id = ?2 ORDER BY id DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![state, number_id, limit], |r| {
        Ok(Listed {
            id: r.get(0)?,
            recipient: r.get(1)?,
            kind: r.get(2)?,
            attempts: r.get(3)?,
            error_code: r.get(4)?,
            error_message: r.get(5)?,
            updated_at: r.get(6)?,
        })
    })?;
    rows.collect()
}

/// Lets sending resume on a number (after a new token, or when the account is fine again).
pub fn resume(c: &Connection, number_id: i64) -> rusqlite::Result<usize> {
    c.execute("UPDATE wa_numbers SET paused_reason = NULL WHERE id = ?1", [number_id])
}

/// Rows in every state over all numbers (0 included), for /metrics and the System page
/// (the `outbox_due` index covers it, so no row is read).
pub fn count_all_by_state(c: &Connection) -> rusqlite::Result<Vec<(OutboxState, i64)>> {
    let mut stmt = c.prepare_cached("SELECT state, count(*) FROM outbox GROUP BY state")?;
    let found = stmt
        .query_map([], |r| Ok((r.get::<_, OutboxState>(0)?, r.get::<_, i64>(1)?)))?
        .collect::<rusqlite::Result<HashMap<_, _>>>()?;
    Ok(OutboxState::ALL
        .into_iter()
        .map(|st| (st, found.get(&st).copied().unwrap_or(0)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_data_names_its_row_and_nothing_else_does() {
        assert_eq!(parse_callback_data(&callback_data(42, 3, "")), Some(42));
        assert_eq!(
            parse_callback_data(&callback_data(42, 3, "campaign=7;recipient=9")),
            Some(42),
            "a sender's tag rides along"
        );
        assert_eq!(parse_callback_data("campaign=42;row=17"), None, "someone else's data");
        assert_eq!(parse_callback_data("whacaster:outbox=x;attempt=1"), None);
        assert_eq!(parse_callback_data("whacaster:outbox=5"), None);
    }

    #[test]
    fn retries_back_off_exponentially_up_to_five_minutes() {
        let delays: Vec<i64> = (0..10).map(|n| retry_delay(Some(131_000), n)).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 256]);
        assert!((0..100).all(|n| retry_delay(None, n) <= 300), "never more than 5 min");
        assert_eq!(retry_delay(None, 3), 8, "a transport error backs off the same way");
    }

    #[test]
    fn the_pair_rate_limit_backs_off_faster() {
        let delays: Vec<i64> = (0..8).map(|n| retry_delay(Some(131_056), n)).collect();
        assert_eq!(delays, [1, 4, 16, 64, 256, 1024, 1024, 1024]);
    }

    #[test]
    fn a_bad_attempt_count_gives_a_short_delay_not_a_panic() {
        assert_eq!(retry_delay(None, -3), 1);
        assert_eq!(retry_delay(Some(131_056), i64::MIN), 1);
        assert_eq!(retry_delay(None, i64::MAX), 256);
    }
}
