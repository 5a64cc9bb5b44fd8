//! The campaign runner: one loop that starts scheduled campaigns when due and hands
//! each running campaign's queued rows to the outbox at its pace. A hand-over is one
//! write (the outbox row and the ledger's `sending` with its id together), so a crash
//! never leaves a person handed over twice or not at all. Only a small window of rows
//! waits in the outbox at a time (about two seconds' worth), behind the inbox's own
//! messages: an agent's reply never waits behind a 100,000-person broadcast, and a
//! pause takes back what was not sent yet.

use super::estimate::{campaign_rate, is_open};
use super::{Campaign, CampaignId, CampaignState, service};
use crate::clock::Clock;
use crate::contacts::consent::{self, Purpose};
use crate::error::AppError;
use crate::store::Db;
use crate::wake::Doorbell;
use crate::whatsapp::outbound::{HeaderMedia, OutMessage};
use crate::whatsapp::outbox::{self, Origin};
use crate::whatsapp::templates::Template;
use rusqlite::{Connection, params};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the runner looks while a campaign runs, and when none does (a scheduled
/// one starts within this; starting or resuming one rings at once).
const TICK: Duration = Duration::from_millis(100);
const IDLE: Duration = Duration::from_secs(1);
/// At most this many seconds of sending wait in the outbox for one campaign.
const WINDOW_SECONDS: i64 = 2;
/// Sending time owed after a slow round (a busy machine) is made up, up to this many
/// seconds of it: the rate holds per 10-second window. The catch-up never passes the
/// number's own rate (the outbox's token bucket) and so never Meta's limit.
const MAX_CREDIT_SECONDS: f64 = 2.0;

/// What the runner needs.
#[derive(Clone)]
pub struct Runner {
    pub db: Db,
    pub clock: Clock,
    /// Rung when a campaign starts, resumes or is scheduled.
    pub bell: Doorbell,
    /// Rung after rows were handed to the outbox.
    pub outbox: Doorbell,
    pacers: Arc<Mutex<HashMap<CampaignId, Pacer>>>,
}

/// Sending time owed to a campaign: `rate` a second since the last hand-over.
struct Pacer {
    last: Instant,
    credit: f64,
}

/// Why a running campaign handed nothing over this time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// Outside the daily sending hours.
    Hours,
    /// The portfolio's daily messaging limit is used up.
    DailyLimit,
}

impl Runner {
    pub fn new(db: Db, clock: Clock, bell: Doorbell, outbox: Doorbell) -> Runner {
        Runner {
            db,
            clock,
            bell,
            outbox,
            pacers: Arc::default(),
        }
    }

    /// Starts the loop. Call once (from `server`).
    pub fn start(self) {
        tokio::spawn(async move {
            loop {
                let wait = match self.tick().await {
                    Ok(Some(_)) => TICK,
                    Ok(None) => IDLE,
                    Err(e) => {
                        tracing::error!(error = %e, "campaign round failed");
                        IDLE
                    }
                };
                self.bell.wait(wait).await;
            }
        });
    }

    /// One round over the active campaigns. Returns how many rows were handed over
    /// (`None`: no campaign is active).
    pub async fn tick(&self) -> Result<Option<usize>, AppError> {
        let now = self.clock.unix();
        let active = self.db.read(move |c| Ok(super::list_active(c, now)?)).await?;
        if active.is_empty() {
            return Ok(None);
        }
        let mut handed = 0;
        for campaign in active {
            match campaign.state {
                CampaignState::Scheduled => {
                    let id = campaign.id;
                    let started = self.db.write(move |c| Ok(service::start_in(c, id, None, now)?)).await;
                    let why = match started.map_err(AppError::from) {
                        // Started by another round first: nothing to do.
                        Ok(Ok(_) | Err("campaigns.error.already_started")) => continue,
                        Ok(Err(why)) => why,
                        // The audience cannot be read (a segment was deleted): the plan
                        // was undone; the campaign waits paused with the reason.
                        Err(AppError::BadRequest(why)) => {
                            self.db
                                .write(move |c| Ok(service::hold_unplannable(c, id, why, now)?))
                                .await?;
                            why
                        }
                        Err(e) => return Err(e),
                    };
                    tracing::warn!(campaign = %id, reason = why, "a scheduled campaign could not start");
                }
                CampaignState::Running => handed += self.feed(&campaign).await?,
                _ => {}
            }
        }
        self.pacers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|_, p| p.last.elapsed() < Duration::from_secs(60));
        if handed > 0 {
            self.outbox.ring();
        }
        Ok(Some(handed))
    }

    /// Hands over what the campaign's pace allows now.
    async fn feed(&self, campaign: &Campaign) -> Result<usize, AppError> {
        let id = campaign.id;
        let mps = self
            .db
            .read({
                let number = campaign.number_id;
                move |c| Ok(crate::whatsapp::numbers::repo::find_number(c, number)?.map_or(1, |n| n.mps))
            })
            .await?;
        let rate = campaign_rate(mps);
        let allowance = {
            let mut pacers = self.pacers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let p = pacers.entry(id).or_insert(Pacer {
                last: Instant::now(),
                credit: 1.0,
            });
            #[expect(clippy::cast_precision_loss, reason = "a rate of at most 1,000")]
            let rate_f = rate as f64;
            p.credit = (p.credit + p.last.elapsed().as_secs_f64() * rate_f).min(rate_f * MAX_CREDIT_SECONDS + 1.0);
            p.last = Instant::now();
            #[expect(clippy::cast_possible_truncation, reason = "bounded by the cap above")]
            let whole = p.credit.floor() as i64;
            whole
        };
        // Even with nothing owed, the round runs the campaign's checks (a template Meta
        // paused, a broken number, the error rate, the end): a write that changes
        // nothing costs no disk sync.
        let now = self.clock.unix();
        let window = (rate * WINDOW_SECONDS).max(20);
        let fed = self
            .db
            .write(move |c| Ok(hand_over(c, id, allowance, window, now)?))
            .await?;
        let n = fed.unwrap_or(0);
        let mut pacers = self.pacers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(p) = pacers.get_mut(&id) {
            #[expect(clippy::cast_precision_loss, reason = "at most a window of rows")]
            let used = n as f64;
            p.credit = (p.credit - used).max(0.0);
            // Waiting (hours, limit, a full window) is not owed time.
            if n == 0 {
                p.credit = p.credit.min(1.0);
            }
        }
        Ok(n)
    }
}

/// One hand-over, inside one write: the campaign's checks, then up to `allowance` rows
/// into the outbox. `Err` says why it waits; a campaign with nothing left finishes.
pub fn hand_over(
    c: &Connection,
    id: CampaignId,
    allowance: i64,
    window: i64,
    now: i64,
) -> Result<Result<usize, Waiting>, AppError> {
    let Some(campaign) = super::find(c, id)?.filter(|k| k.state == CampaignState::Running) else {
        return Ok(Ok(0));
    };
    let Some(template) = usable_template(c, &campaign, now)? else {
        return Ok(Ok(0));
    };
    // Judged here too, not only when a failure arrives: the window may fill with
    // failures before it holds the least number of sends worth judging.
    if super::outcomes::judge_error_rate(c, id, now)? {
        return Ok(Ok(0));
    }
    // Deferred people whose time came are queued again (they keep their place by id).
    c.prepare_cached(
        "UPDATE campaign_recipients SET state = 'queued', updated_at = ?2
         WHERE campaign_id = ?1 AND state = 'deferred' AND next_at <= ?2",
    )?
    .execute(params![id, now])?;
    let mut take = match budget(c, &campaign, allowance, now)? {
        Ok(n) => n,
        Err(waiting) => return Ok(Err(waiting)),
    };
    let in_outbox: i64 = c
        .prepare_cached("SELECT count(*) FROM campaign_recipients WHERE campaign_id = ?1 AND state = 'sending'")?
        .query_row([id], |r| r.get(0))?;
    take = take.min(window - in_outbox);
    if take <= 0 {
        if in_outbox == 0 {
            finish_if_done(c, &campaign, now)?;
        }
        return Ok(Ok(0));
    }
    let rows: Vec<(i64, Option<i64>, String, String)> = c
        .prepare_cached(
            "SELECT id, contact_id, recipient, params FROM campaign_recipients
             WHERE campaign_id = ?1 AND state = 'queued' ORDER BY id LIMIT ?2",
        )?
        .query_map(params![id, take], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    if rows.is_empty() {
        finish_if_done(c, &campaign, now)?;
        return Ok(Ok(0));
    }
    let purpose = Purpose::of_template_category(&template.category);
    let param_names = if template.named_params {
        super::plan::variable_names(&template)
    } else {
        Vec::new()
    };
    let header = matches!(template.header_format.as_str(), "IMAGE" | "VIDEO" | "DOCUMENT").then(|| HeaderMedia {
        kind: template.header_format.to_lowercase(),
        media: campaign.header_media.clone(),
    });
    let mut handed = 0;
    for (row, contact, recipient, params) in rows {
        // Consent is asked again at the person's turn: an opt-out may have come since
        // the plan. A refusal is a skipped row with its reason, never a silent drop.
        // A contact deleted since the plan (an erasure request, say) is not messaged.
        let refusal = match contact {
            Some(k) => consent::may_send(c, k, purpose)?.err(),
            None => Some(consent::Refusal::NoSuchContact),
        };
        if let Some(refusal) = refusal {
            let reason = super::plan::Skip::of_refusal(refusal).code();
            c.prepare_cached(
                "UPDATE campaign_recipients SET state = 'skipped', reason = ?2, updated_at = ?3 WHERE id = ?1",
            )?
            .execute(params![row, reason, now])?;
            continue;
        }
        let body_params: Vec<String> = serde_json::from_str(&params).map_err(AppError::internal)?;
        let msg = OutMessage::Template {
            name: campaign.template_name.clone(),
            language: campaign.template_lang.clone(),
            body_params,
            param_names: param_names.clone(),
            header: header.clone(),
        };
        let tag = format!("campaign={id};recipient={row}");
        let outbox_id = outbox::enqueue_tagged(
            c,
            campaign.number_id,
            &recipient,
            contact,
            &msg,
            Origin::Campaign,
            &tag,
            now,
        )?;
        c.prepare_cached(
            "UPDATE campaign_recipients SET state = 'sending', outbox_id = ?2, updated_at = ?3 WHERE id = ?1",
        )?
        .execute(params![row, outbox_id, now])?;
        handed += 1;
    }
    Ok(Ok(handed))
}

/// How many may go now within the sending hours and the portfolio's daily limit.
fn budget(c: &Connection, campaign: &Campaign, allowance: i64, now: i64) -> Result<Result<i64, Waiting>, AppError> {
    let tz = crate::settings::find_business(c)?
        .and_then(|b| b.tz())
        .unwrap_or(chrono_tz::UTC);
    if !is_open(now, tz, campaign.hours) {
        return Ok(Err(Waiting::Hours));
    }
    let Some(limit) = super::messaging_limit(c, campaign.number_id)?.filter(|l| *l > 0) else {
        return Ok(Ok(allowance));
    };
    let used = super::portfolio_sends_since(c, campaign.number_id, now - 86_400)?;
    let take = allowance.min(limit - used);
    if take <= 0 {
        finish_if_done(c, campaign, now)?;
        return Ok(Err(Waiting::DailyLimit));
    }
    Ok(Ok(take))
}

/// The campaign's template, when the number and the template may send; otherwise the
/// campaign is paused with the reason and `None` comes back.
fn usable_template(c: &Connection, campaign: &Campaign, now: i64) -> Result<Option<Template>, AppError> {
    let id = campaign.id;
    let Some(number) = crate::whatsapp::numbers::repo::find_number(c, campaign.number_id)? else {
        service::pause_in(c, id, "campaigns.paused.number_gone", "", None, now)?;
        return Ok(None);
    };
    // Meta said the token or the account is broken: the outbox paused the number.
    if let Some(why) = &number.paused_reason {
        service::pause_in(c, id, "campaigns.paused.number", why, None, now)?;
        return Ok(None);
    }
    // A template Meta paused, disabled or rejected holds every campaign using it.
    let found =
        crate::whatsapp::templates::find_by_key(c, &number.waba_id, &campaign.template_name, &campaign.template_lang)?;
    let Some(template) = found else {
        service::pause_in(c, id, "campaigns.paused.template_gone", "", None, now)?;
        return Ok(None);
    };
    if let Err(why) = template.usable() {
        service::pause_in(c, id, "campaigns.paused.template", why.key(), None, now)?;
        return Ok(None);
    }
    Ok(Some(template))
}

/// Finished when no row is queued, sending or deferred (counted from the ledger, never
/// assumed from an empty fetch).
fn finish_if_done(c: &Connection, campaign: &Campaign, now: i64) -> Result<(), AppError> {
    if super::open_rows(c, campaign.id)? == 0
        && super::transition(c, campaign.id, &[CampaignState::Running], CampaignState::Finished, now)?
    {
        let counts = super::counts(c, campaign.id)?;
        let summary = counts
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(s, n)| format!("{s}={n}"))
            .collect::<Vec<_>>()
            .join(" ");
        crate::audit::record(
            c,
            &crate::audit::Actor::system(),
            "campaign.finish",
            &format!("campaign:{}", campaign.id),
            &summary,
            now,
        )?;
    }
    Ok(())
}
