//! What people (pages and the API) do with campaigns: compose a draft, look before
//! starting (the pre-flight), start, pause, resume, cancel, send again to the held,
//! follow up. Each change is one write with its audit line; every transition is
//! guarded by the campaign's state, so a double click or a second scheduler fire does
//! nothing the second time.

use super::estimate::{self, Estimate, campaign_rate};
use super::plan::{self, Context, Counts};
use super::{Audience, Campaign, CampaignId, CampaignState, Fields, FollowUp, RecipientState, Variable};
use crate::audit::{self, Actor};
use crate::contacts::segments::{Known, Moment};
use crate::error::{AppError, FormErrors};
use crate::whatsapp::outbox;
use crate::whatsapp::templates::Template;
use chrono::TimeZone;
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A campaign as a form or an API client gives it (the API's documented shape).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub number_id: i64,
    #[serde(default)]
    pub template: TemplateRef,
    #[serde(default)]
    pub variables: BTreeMap<String, Variable>,
    #[serde(default)]
    pub header_media: String,
    #[serde(default)]
    pub audience: Audience,
    #[serde(default)]
    pub schedule: Schedule,
    #[serde(default)]
    pub reply_hours: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateRef {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub language: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// `YYYY-MM-DDTHH:MM` in the business's time zone, or RFC 3339 with an offset;
    /// `null`: when started.
    #[serde(default)]
    pub at: Option<String>,
    #[serde(default)]
    pub hours: Option<Hours>,
}

/// Daily sending hours, `HH:MM` each, in the business's time zone.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Hours {
    pub from: String,
    pub to: String,
}

/// `HH:MM` as minutes after midnight (`24:00` is the end of the day).
pub fn parse_clock(s: &str) -> Option<i64> {
    let (h, m) = s.trim().split_once(':')?;
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    if (h, m) == (24, 0) {
        return Some(1440);
    }
    ((0..24).contains(&h) && (0..60).contains(&m)).then_some(h * 60 + m)
}

/// Minutes after midnight as `HH:MM`.
pub fn clock(minutes: i64) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// A time a person typed, in the business's zone (or with its own offset).
pub fn parse_at(s: &str, tz: chrono_tz::Tz) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp());
    }
    let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M"))
        .ok()?;
    tz.from_local_datetime(&naive).earliest().map(|t| t.timestamp())
}

/// The business's time zone (UTC when it has none).
pub fn business_tz(c: &Connection) -> rusqlite::Result<chrono_tz::Tz> {
    Ok(crate::settings::find_business(c)?
        .and_then(|b| b.tz())
        .unwrap_or(chrono_tz::UTC))
}

/// The template a campaign names, on its number's account.
pub fn template_of(c: &Connection, number_id: i64, name: &str, language: &str) -> rusqlite::Result<Option<Template>> {
    let Some(n) = crate::whatsapp::numbers::repo::find_number(c, number_id)? else {
        return Ok(None);
    };
    crate::whatsapp::templates::find_by_key(c, &n.waba_id, name, language)
}

fn has_media_header(t: &Template) -> bool {
    matches!(t.header_format.as_str(), "IMAGE" | "VIDEO" | "DOCUMENT")
}

/// Checks a spec field by field; what to store, or the errors (`campaigns.error.*`).
pub fn check(c: &Connection, known: &Known, spec: &Spec, now: i64) -> rusqlite::Result<Result<Fields, FormErrors>> {
    check_as(c, known, spec, now, true)
}

/// [`check`], for a follow-up too (`own_audience` false: its people come from the
/// campaign it follows, so it needs no labels or segments of its own).
fn check_as(
    c: &Connection,
    known: &Known,
    spec: &Spec,
    now: i64,
    own_audience: bool,
) -> rusqlite::Result<Result<Fields, FormErrors>> {
    let mut errors = FormErrors::default();
    let name = spec.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 100 {
        errors.add("name", "campaigns.error.name_required");
    }
    let number = crate::whatsapp::numbers::repo::find_number(c, spec.number_id)?;
    if number.is_none() {
        errors.add("number_id", "campaigns.error.number_unknown");
    }
    let template = template_of(
        c,
        spec.number_id,
        spec.template.name.trim(),
        spec.template.language.trim(),
    )?;
    let mut variables = BTreeMap::new();
    match &template {
        None if number.is_some() => errors.add("template", "campaigns.error.template_unknown"),
        None => {}
        Some(t) => variables = check_template(t, spec, &mut errors),
    }
    let audience = check_audience(c, known, &spec.audience, own_audience, &mut errors)?;
    let tz = business_tz(c)?;
    let send_at = match spec.schedule.at.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match parse_at(s, tz) {
            Some(t) if t > now => Some(t),
            Some(_) => {
                errors.add("schedule", "campaigns.error.at_past");
                None
            }
            None => {
                errors.add("schedule", "campaigns.error.at_invalid");
                None
            }
        },
    };
    let hours = match &spec.schedule.hours {
        None => None,
        Some(h) => match (parse_clock(&h.from), parse_clock(&h.to)) {
            (Some(f), Some(t)) if f != t && f < 1440 => Some((f, t)),
            _ => {
                errors.add("hours", "campaigns.error.hours_invalid");
                None
            }
        },
    };
    let reply_hours = spec.reply_hours.unwrap_or(72);
    if !(1..=720).contains(&reply_hours) {
        errors.add("reply_hours", "campaigns.error.reply_hours_invalid");
    }
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    Ok(Ok(Fields {
        name,
        number_id: spec.number_id,
        template_name: spec.template.name.trim().to_string(),
        template_lang: spec.template.language.trim().to_string(),
        variables,
        header_media: spec.header_media.trim().to_string(),
        audience,
        send_at,
        hours,
        reply_hours,
        parent_id: None,
        follow_up: None,
    }))
}

/// The template usable, its variables mapped and its media header given; the tidied
/// mapping.
fn check_template(t: &Template, spec: &Spec, errors: &mut FormErrors) -> BTreeMap<String, Variable> {
    let mut variables = BTreeMap::new();
    if let Err(why) = t.usable() {
        errors.add("template", why.key());
    } else if !t.body_and_media_only() {
        errors.add("template", "campaigns.error.template_cannot_fill");
    }
    for n in plan::variable_names(t) {
        let Some(v) = spec.variables.get(&n) else {
            errors.add("variables", "campaigns.error.variable_unmapped");
            break;
        };
        let sources = [v.field.is_some(), v.custom.is_some(), v.text.is_some()];
        let one = sources.iter().filter(|s| **s).count() == 1;
        let field_ok = v.field.as_deref().is_none_or(|f| super::FIELDS.contains(&f));
        let text_ok = v
            .text
            .as_deref()
            .is_none_or(|t| !t.trim().is_empty() && t.chars().count() <= 1000);
        let custom_ok = v
            .custom
            .as_deref()
            .is_none_or(|k| !k.trim().is_empty() && k.chars().count() <= 50);
        let fallback_ok = v.fallback.as_deref().is_none_or(|f| f.chars().count() <= 1000);
        if !(one && field_ok && text_ok && custom_ok && fallback_ok) {
            errors.add("variables", "campaigns.error.variable_invalid");
            break;
        }
        let mut v = v.clone();
        v.custom = v.custom.map(|k| k.trim().to_string());
        v.fallback = v.fallback.map(|f| f.trim().to_string()).filter(|f| !f.is_empty());
        variables.insert(n, v);
    }
    let media = spec.header_media.trim();
    if has_media_header(t) {
        let ok = media.starts_with("https://") || (!media.is_empty() && media.bytes().all(|b| b.is_ascii_digit()));
        if !ok {
            errors.add("header_media", "campaigns.error.header_media_required");
        }
    }
    variables
}

/// The audience with label names spelt as the labels are and segment ids sorted;
/// unknown ones and an empty audience are errors.
fn check_audience(
    c: &Connection,
    known: &Known,
    a: &Audience,
    needed: bool,
    errors: &mut FormErrors,
) -> rusqlite::Result<Audience> {
    let mut audience = a.clone();
    let mut unknown_label = false;
    for list in [&mut audience.labels, &mut audience.exclude_labels] {
        let mut tidy: Vec<String> = Vec::new();
        for l in list.iter().map(|l| l.trim()).filter(|l| !l.is_empty()) {
            match known.labels.iter().find(|k| k.eq_ignore_ascii_case(l)) {
                Some(k) => {
                    if !tidy.contains(k) {
                        tidy.push(k.clone());
                    }
                }
                None => unknown_label = true,
            }
        }
        *list = tidy;
    }
    if unknown_label {
        errors.add("audience", "campaigns.error.label_unknown");
    }
    for list in [&mut audience.segments, &mut audience.exclude_segments] {
        list.sort_unstable();
        list.dedup();
        for id in list.iter() {
            if crate::contacts::segments::find(c, crate::contacts::segments::SegmentId(*id))?.is_none()
                && !errors.has("audience")
            {
                errors.add("audience", "campaigns.error.segment_unknown");
            }
        }
    }
    if needed && audience.is_empty() && !errors.has("audience") {
        errors.add("audience", "campaigns.error.audience_required");
    }
    Ok(audience)
}

fn audit_line(
    c: &Connection,
    actor: &Actor,
    action: &str,
    id: CampaignId,
    details: &str,
    now: i64,
) -> rusqlite::Result<()> {
    audit::record(c, actor, action, &format!("campaign:{id}"), details, now)
}

/// A new draft (audited); the campaign, or the field errors.
pub fn create(
    c: &Connection,
    known: &Known,
    actor: &Actor,
    spec: &Spec,
    now: i64,
) -> rusqlite::Result<Result<Campaign, FormErrors>> {
    let fields = match check(c, known, spec, now)? {
        Ok(f) => f,
        Err(e) => return Ok(Err(e)),
    };
    let id = super::insert(c, &fields, &actor.label, now)?;
    audit_line(c, actor, "campaign.create", id, &fields.name, now)?;
    super::find(c, id)?.map(Ok).ok_or(rusqlite::Error::QueryReturnedNoRows)
}

/// Changes a draft (audited). `None`: no such draft.
pub fn update(
    c: &Connection,
    known: &Known,
    actor: &Actor,
    id: CampaignId,
    spec: &Spec,
    now: i64,
) -> rusqlite::Result<Option<Result<Campaign, FormErrors>>> {
    let Some(existing) = super::find(c, id)? else {
        return Ok(None);
    };
    if existing.state != CampaignState::Draft {
        return Ok(None);
    }
    let mut fields = match check_as(c, known, spec, now, existing.follow_up.is_none())? {
        Ok(f) => f,
        Err(e) => return Ok(Some(Err(e))),
    };
    fields.parent_id = existing.parent_id;
    fields.follow_up = existing.follow_up;
    if !super::update_draft(c, id, &fields, now)? {
        return Ok(None);
    }
    audit_line(c, actor, "campaign.update", id, &fields.name, now)?;
    Ok(super::find(c, id)?.map(Ok))
}

/// One person of the preview.
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    pub contact_id: i64,
    pub recipient: String,
    pub text: String,
}

/// What the pre-flight shows.
#[derive(Debug, Clone, Serialize)]
pub struct Preflight {
    pub counts: Counts,
    pub estimate: Estimate,
    pub preview: Vec<Preview>,
    /// `marketing` or `utility`: what the template's category asks of consent.
    pub purpose: &'static str,
    pub mps: i64,
    /// Why it cannot start now (a catalogue key), if it cannot.
    pub problem: Option<&'static str>,
}

/// The pre-flight: the audience, the skips by reason, the rate, the daily limit and
/// the estimate, and three real recipients' messages. Reads only.
pub fn preflight(c: &Connection, campaign: &Campaign, now: i64) -> rusqlite::Result<Preflight> {
    let tz = business_tz(c)?;
    let number = crate::whatsapp::numbers::repo::find_number(c, campaign.number_id)?;
    let mps = number.as_ref().map_or(1, |n| n.mps);
    let template = template_of(c, campaign.number_id, &campaign.template_name, &campaign.template_lang)?;
    let mut problem = match (&number, &template) {
        (None, _) => Some("campaigns.error.number_unknown"),
        (Some(n), _) if n.paused_reason.is_some() => Some("campaigns.paused.number"),
        (_, None) => Some("campaigns.error.template_unknown"),
        (_, Some(t)) => t.usable().err().map(|u| u.key()),
    };
    let (mut counts, mut preview, mut purpose) = (Counts::default(), Vec::new(), "utility");
    if let Some(t) = &template {
        purpose = crate::contacts::consent::Purpose::of_template_category(&t.category).as_str();
        let cx = Context {
            template: t,
            settings: super::settings(c)?,
            moment: Moment { now, tz: Some(tz) },
        };
        match plan::evaluate(c, campaign, &cx, |_| Ok(()))? {
            Ok(found) => counts = found,
            Err(why) => problem = problem.or(Some(why.0)),
        }
        preview = plan::sample(c, campaign, &cx, 3)?
            .into_iter()
            .map(|p| Preview {
                contact_id: p.contact_id,
                text: plan::render(t, &p.params),
                recipient: p.recipient,
            })
            .collect();
    }
    let start = campaign.send_at.filter(|t| *t > now).unwrap_or(now);
    let estimate = estimate_for(c, campaign, counts.queued, start, mps, tz)?;
    Ok(Preflight {
        counts,
        estimate,
        preview,
        purpose,
        mps,
        problem,
    })
}

fn estimate_for(
    c: &Connection,
    campaign: &Campaign,
    people: i64,
    start: i64,
    mps: i64,
    tz: chrono_tz::Tz,
) -> rusqlite::Result<Estimate> {
    let limit = super::messaging_limit(c, campaign.number_id)?;
    let used = super::portfolio_sends_since(c, campaign.number_id, start - 86_400)?;
    Ok(estimate::estimate(&estimate::Inputs {
        start,
        people,
        rate: campaign_rate(mps),
        tz,
        hours: campaign.hours,
        limit,
        used,
    }))
}

/// The estimate for what is left of a started campaign (queued, sending, deferred).
pub fn remaining_estimate(c: &Connection, campaign: &Campaign, now: i64) -> rusqlite::Result<Estimate> {
    let counts = super::counts(c, campaign.id)?;
    let left = [
        RecipientState::Queued,
        RecipientState::Sending,
        RecipientState::Deferred,
    ]
    .iter()
    .map(|s| counts.get(s).copied().unwrap_or(0))
    .sum();
    let mps = crate::whatsapp::numbers::repo::find_number(c, campaign.number_id)?.map_or(1, |n| n.mps);
    let start = campaign.send_at.filter(|t| *t > now).unwrap_or(now);
    estimate_for(c, campaign, left, start, mps, business_tz(c)?)
}

/// What pressing Start did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "started", rename_all = "snake_case")]
pub enum Started {
    /// Planned and sending: the ledger's counts.
    Now { counts: Counts },
    /// It starts by itself at this time.
    Scheduled { at: i64 },
}

/// Why a campaign may not start now (template, number, audience): a catalogue key.
fn start_problem(c: &Connection, campaign: &Campaign) -> rusqlite::Result<Option<&'static str>> {
    let Some(number) = crate::whatsapp::numbers::repo::find_number(c, campaign.number_id)? else {
        return Ok(Some("campaigns.error.number_unknown"));
    };
    if number.paused_reason.is_some() {
        return Ok(Some("campaigns.paused.number"));
    }
    let Some(t) =
        crate::whatsapp::templates::find_by_key(c, &number.waba_id, &campaign.template_name, &campaign.template_lang)?
    else {
        return Ok(Some("campaigns.error.template_unknown"));
    };
    if let Err(why) = t.usable() {
        return Ok(Some(why.key()));
    }
    if !t.body_and_media_only() {
        return Ok(Some("campaigns.error.template_cannot_fill"));
    }
    if has_media_header(&t) && campaign.header_media.is_empty() {
        return Ok(Some("campaigns.error.header_media_required"));
    }
    Ok(None)
}

/// Start pressed: a draft with a time ahead is scheduled; otherwise it is planned now.
pub fn start(
    c: &Connection,
    id: CampaignId,
    actor: &Actor,
    now: i64,
) -> Result<Result<Started, &'static str>, AppError> {
    let Some(campaign) = super::find(c, id)? else {
        return Err(AppError::NotFound);
    };
    if campaign.state != CampaignState::Draft {
        return Ok(Err("campaigns.error.already_started"));
    }
    if let Some(why) = start_problem(c, &campaign)? {
        return Ok(Err(why));
    }
    if let Some(at) = campaign.send_at.filter(|t| *t > now) {
        if !super::set_scheduled(c, id, at, now)? {
            return Ok(Err("campaigns.error.already_started"));
        }
        audit_line(c, actor, "campaign.schedule", id, &at.to_string(), now)?;
        return Ok(Ok(Started::Scheduled { at }));
    }
    start_in(c, id, Some(actor), now).map(|r| r.map(|counts| Started::Now { counts }))
}

/// Plans a draft or a due scheduled campaign and sets it running, in the caller's one
/// transaction: the state moves first (so a second call finds it running and does
/// nothing), then the ledger is written. A problem found on the way is returned as
/// `Err` in an `AppError::BadRequest`, which rolls the whole write back.
pub fn start_in(
    c: &Connection,
    id: CampaignId,
    actor: Option<&Actor>,
    now: i64,
) -> Result<Result<Counts, &'static str>, AppError> {
    let Some(campaign) = super::find(c, id)? else {
        return Err(AppError::NotFound);
    };
    if let Some(why) = start_problem(c, &campaign)? {
        hold_unplannable(c, id, why, now)?;
        return Ok(Err(why));
    }
    if !super::transition(
        c,
        id,
        &[CampaignState::Draft, CampaignState::Scheduled],
        CampaignState::Running,
        now,
    )? {
        return Ok(Err("campaigns.error.already_started"));
    }
    let template = template_of(c, campaign.number_id, &campaign.template_name, &campaign.template_lang)?
        .ok_or(AppError::BadRequest("campaigns.error.template_unknown"))?;
    let cx = Context {
        template: &template,
        settings: super::settings(c)?,
        moment: Moment {
            now,
            tz: Some(business_tz(c)?),
        },
    };
    let counts = match plan::write(c, &campaign, &cx)? {
        Ok(counts) => counts,
        Err(why) => return Err(AppError::BadRequest(why.0)),
    };
    let details = format!(
        "audience={} queued={} skipped={}",
        counts.audience,
        counts.queued,
        counts.skipped_total()
    );
    audit_line(
        c,
        actor.unwrap_or(&Actor::system()),
        "campaign.start",
        id,
        &details,
        now,
    )?;
    Ok(Ok(counts))
}

/// A scheduled campaign that cannot start waits paused with the reason, instead of
/// being tried every round (nothing happens to a draft).
pub fn hold_unplannable(c: &Connection, id: CampaignId, why: &'static str, now: i64) -> rusqlite::Result<()> {
    let held = c.execute(
        "UPDATE campaigns SET state = 'paused', paused_reason = ?2, updated_at = ?3 WHERE id = ?1 AND state = 'scheduled'",
        params![id, why, now],
    )?;
    if held > 0 {
        audit_line(c, &Actor::system(), "campaign.pause", id, why, now)?;
    }
    Ok(())
}

/// Outbox rows of the campaign not yet claimed go back: cancelled in the outbox, queued
/// again in the ledger (their place kept). What is already being sent finishes.
fn take_back(c: &Connection, id: CampaignId, now: i64) -> rusqlite::Result<usize> {
    let ids: Vec<i64> = c
        .prepare_cached(
            "SELECT outbox_id FROM campaign_recipients WHERE campaign_id = ?1 AND state = 'sending' AND outbox_id IS NOT NULL",
        )?
        .query_map([id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let back = outbox::cancel_queued(c, &ids, now)?;
    let mut stmt = c.prepare_cached(
        "UPDATE campaign_recipients SET state = 'queued', outbox_id = NULL, updated_at = ?2
         WHERE outbox_id = ?1 AND state = 'sending'",
    )?;
    for o in &back {
        stmt.execute(params![o, now])?;
    }
    Ok(back.len())
}

/// Pauses a running campaign with the reason; the rows waiting in the outbox come
/// back. `actor` `None` is Whacaster itself (a template Meta paused, the error rate).
pub fn pause_in(
    c: &Connection,
    id: CampaignId,
    reason: &'static str,
    detail: &str,
    actor: Option<&Actor>,
    now: i64,
) -> rusqlite::Result<bool> {
    if !super::set_paused(c, id, reason, detail, now)? {
        return Ok(false);
    }
    let back = take_back(c, id, now)?;
    let details = format!("{reason} {detail} (taken back from the outbox: {back})");
    audit_line(
        c,
        actor.unwrap_or(&Actor::system()),
        "campaign.pause",
        id,
        details.trim(),
        now,
    )?;
    if actor.is_none() {
        tracing::warn!(campaign = %id, reason, detail, "campaign paused");
    }
    Ok(true)
}

/// Pause pressed. False when it was not running.
pub fn pause(c: &Connection, id: CampaignId, actor: &Actor, now: i64) -> rusqlite::Result<bool> {
    pause_in(c, id, "campaigns.paused.by_person", &actor.label, Some(actor), now)
}

/// Resume pressed: sending goes on where it stopped. Refused (with the reason) while
/// what paused it still holds.
pub fn resume(c: &Connection, id: CampaignId, actor: &Actor, now: i64) -> rusqlite::Result<Result<(), &'static str>> {
    let Some(campaign) = super::find(c, id)? else {
        return Ok(Err("campaigns.error.not_found"));
    };
    if campaign.state != CampaignState::Paused {
        return Ok(Err("campaigns.error.not_paused"));
    }
    if let Some(why) = start_problem(c, &campaign)? {
        return Ok(Err(why));
    }
    // Paused before it was planned (a scheduled start that could not happen): start now.
    if campaign.planned_at.is_none() {
        c.execute(
            "UPDATE campaigns SET state = 'scheduled', send_at = ?2, paused_reason = NULL WHERE id = ?1 AND state = 'paused'",
            params![id, now],
        )?;
        audit_line(c, actor, "campaign.resume", id, "", now)?;
        return Ok(Ok(()));
    }
    if !super::transition(c, id, &[CampaignState::Paused], CampaignState::Running, now)? {
        return Ok(Err("campaigns.error.not_paused"));
    }
    audit_line(c, actor, "campaign.resume", id, "", now)?;
    Ok(Ok(()))
}

/// Cancel pressed: queued and deferred people are cancelled (named as such in the
/// ledger), rows waiting in the outbox are taken back. False when already over.
pub fn cancel(c: &Connection, id: CampaignId, actor: &Actor, now: i64) -> rusqlite::Result<bool> {
    use CampaignState as S;
    if !super::transition(
        c,
        id,
        &[S::Draft, S::Scheduled, S::Running, S::Paused],
        S::Cancelled,
        now,
    )? {
        return Ok(false);
    }
    take_back(c, id, now)?;
    let n = c.execute(
        "UPDATE campaign_recipients SET state = 'cancelled', reason = 'cancelled', updated_at = ?2
         WHERE campaign_id = ?1 AND state IN ('queued', 'deferred')",
        params![id, now],
    )?;
    audit_line(c, actor, "campaign.cancel", id, &format!("cancelled={n}"), now)?;
    Ok(true)
}

/// "Send again to these N": the people a crash left maybe-messaged, after a person
/// checked, are queued again (a finished campaign runs again for them). Returns N.
pub fn send_again_held(c: &Connection, id: CampaignId, actor: &Actor, now: i64) -> rusqlite::Result<usize> {
    // Only a campaign that runs, is paused or finished sends again (a cancelled one
    // never would, and its rows would wait for ever).
    let live = super::find(c, id)?.is_some_and(|k| {
        matches!(
            k.state,
            CampaignState::Running | CampaignState::Paused | CampaignState::Finished
        )
    });
    if !live {
        return Ok(0);
    }
    let n = c.execute(
        "UPDATE campaign_recipients SET state = 'queued', outbox_id = NULL, reason = NULL, detail = '', updated_at = ?2
         WHERE campaign_id = ?1 AND state = 'needs_review'",
        params![id, now],
    )?;
    if n > 0 {
        super::transition(c, id, &[CampaignState::Finished], CampaignState::Running, now)?;
        audit_line(c, actor, "campaign.send_again", id, &format!("held={n}"), now)?;
    }
    Ok(n)
}

/// A follow-up: a new draft with the same message, for the people of `parent` in
/// `kind` (its own ledger when it starts).
pub fn follow_up(
    c: &Connection,
    parent: CampaignId,
    kind: FollowUp,
    actor: &Actor,
    now: i64,
) -> rusqlite::Result<Option<CampaignId>> {
    let Some(p) = super::find(c, parent)? else {
        return Ok(None);
    };
    if p.planned_at.is_none() {
        return Ok(None);
    }
    let fields = Fields {
        name: format!("{} ({})", p.name, kind.as_str()).chars().take(100).collect(),
        number_id: p.number_id,
        template_name: p.template_name,
        template_lang: p.template_lang,
        variables: p.variables,
        header_media: p.header_media,
        audience: Audience::default(),
        send_at: None,
        hours: p.hours,
        reply_hours: p.reply_hours,
        parent_id: Some(parent),
        follow_up: Some(kind),
    };
    let id = super::insert(c, &fields, &actor.label, now)?;
    audit_line(
        c,
        actor,
        "campaign.follow_up",
        id,
        &format!("of campaign:{parent} {kind}"),
        now,
    )?;
    Ok(Some(id))
}

/// Deletes a draft (audited); false when it is not a draft.
pub fn delete(c: &Connection, id: CampaignId, actor: &Actor, now: i64) -> rusqlite::Result<bool> {
    if !super::delete_draft(c, id)? {
        return Ok(false);
    }
    audit_line(c, actor, "campaign.delete", id, "", now)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_and_times_parse_in_the_business_zone() {
        assert_eq!(parse_clock("09:00"), Some(540));
        assert_eq!(parse_clock("24:00"), Some(1440));
        assert_eq!(parse_clock("25:00"), None);
        assert_eq!(parse_clock("9"), None);
        assert_eq!(clock(1230), "20:30");
        let jakarta = chrono_tz::Asia::Jakarta;
        assert_eq!(parse_at("2026-12-01T08:00", jakarta), Some(1_796_086_800));
        assert_eq!(parse_at("2026-12-01T01:00:00Z", jakarta), Some(1_796_086_800));
        assert_eq!(parse_at("besok pagi", jakarta), None);
    }
}
