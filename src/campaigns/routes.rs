//! Campaign pages: the list, the draft form (a Continue button brings the chosen
//! template's variables, no script needed), the campaign page (the pre-flight for a
//! draft; progress, funnel, send-rate chart and failures once started, with a small
//! poll that keeps the counts live), the recipient list and its CSV, the campaign
//! settings, and the number page's daily limit.
//!
//! Supervisors and admins compose, start, pause, resume, cancel and follow up; agents
//! see campaigns and their results. Every handler checks the role before it reads.

use super::estimate::Estimate;
use super::service::{self, Preflight, Spec};
use super::{Campaign, CampaignId, CampaignState, FollowUp, Prices, Recipient, RecipientState, Settings};
use crate::app::AppState;
use crate::auth::Role;
use crate::contacts::segments_routes::known;
use crate::error::{AppError, AppResult};
use crate::web::{Admin, Authed, FormErrors, RequestCtx, invalid_page, ok_page, render, see_other_flash};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::TimeZone;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/campaigns")
            .route(web::get().to(get_list))
            .route(web::post().to(post_new)),
    )
    // Before `/campaigns/{id}`, which would take these words as an id.
    .service(web::resource("/campaigns/new").route(web::get().to(get_new)))
    .service(
        web::resource("/campaigns/settings")
            .route(web::get().to(get_settings))
            .route(web::post().to(post_settings)),
    )
    .service(web::resource("/campaigns/{id}").route(web::get().to(get_campaign)))
    .service(
        web::resource("/campaigns/{id}/edit")
            .route(web::get().to(get_edit))
            .route(web::post().to(post_edit)),
    )
    .service(web::resource("/campaigns/{id}/progress").route(web::get().to(get_progress)))
    .service(web::resource("/campaigns/{id}/recipients").route(web::get().to(get_recipients)))
    .service(web::resource("/campaigns/{id}/recipients.csv").route(web::get().to(get_csv)))
    .service(web::resource("/campaigns/{id}/start").route(web::post().to(post_start)))
    .service(web::resource("/campaigns/{id}/pause").route(web::post().to(post_pause)))
    .service(web::resource("/campaigns/{id}/resume").route(web::post().to(post_resume)))
    .service(web::resource("/campaigns/{id}/cancel").route(web::post().to(post_cancel)))
    .service(web::resource("/campaigns/{id}/delete").route(web::post().to(post_delete)))
    .service(web::resource("/campaigns/{id}/send-again").route(web::post().to(post_send_again)))
    .service(web::resource("/campaigns/{id}/follow-up").route(web::post().to(post_follow_up)))
    .service(web::resource("/admin/whatsapp/{id}/messaging-limit").route(web::post().to(post_messaging_limit)));
}

/// The badge colour of a campaign state.
fn tone(s: CampaignState) -> &'static str {
    match s {
        CampaignState::Running | CampaignState::Finished => "ok",
        CampaignState::Paused => "bad",
        _ => "",
    }
}

/// Local date and time in the business's zone, for a `datetime-local` input.
fn local_input(ts: i64, tz: chrono_tz::Tz) -> String {
    tz.timestamp_opt(ts, 0)
        .single()
        .map(|t| t.format("%Y-%m-%dT%H:%M").to_string())
        .unwrap_or_default()
}

fn tz_of(ctx: &RequestCtx) -> chrono_tz::Tz {
    ctx.timezone.unwrap_or(chrono_tz::UTC)
}

// ---- progress: the numbers the page and the poll share ---------------------------------

/// Where a started campaign stands, from the counts by recipient state.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    pub state: CampaignState,
    pub counts: BTreeMap<&'static str, i64>,
    /// Rows planned to be sent (every row but the skipped).
    pub planned: i64,
    /// Planned rows settled one way or another (not queued, sending or deferred).
    pub handled: i64,
    /// Accepted by Meta (sent, delivered, read or replied).
    pub sent: i64,
    /// `handled` of `planned`, 0 to 100.
    pub percent: i64,
    /// Planned, sent, delivered, read, replied, failed (each counts those further on).
    pub funnel: Vec<(&'static str, i64)>,
}

fn progress(state: CampaignState, counts: &BTreeMap<RecipientState, i64>) -> Progress {
    use RecipientState as R;
    let n = |s: R| counts.get(&s).copied().unwrap_or(0);
    let total: i64 = counts.values().sum();
    let planned = total - n(R::Skipped);
    let open: i64 = RecipientState::ALL.iter().filter(|s| s.open()).map(|s| n(*s)).sum();
    let reached = |rank: u8| -> i64 {
        RecipientState::ALL
            .iter()
            .filter(|s| s.rank() >= rank)
            .map(|s| n(*s))
            .sum()
    };
    let handled = planned - open;
    let percent = if planned > 0 { handled * 100 / planned } else { 0 };
    Progress {
        state,
        counts: counts.iter().map(|(s, v)| (s.as_str(), *v)).collect(),
        planned,
        handled,
        sent: reached(1),
        percent,
        funnel: vec![
            ("planned", planned),
            ("sent", reached(1)),
            ("delivered", reached(2)),
            ("read", reached(3)),
            ("replied", reached(4)),
            ("failed", n(R::Failed)),
        ],
    }
}

// ---- money ----------------------------------------------------------------------------

/// A price as typed (`350`, `0.0125`): millionths, when it is a number of at most six
/// decimals and not absurd.
fn parse_price(s: &str) -> Option<i128> {
    let s = s.trim();
    let (int, frac) = s.split_once(['.', ',']).unwrap_or((s, ""));
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || int.len() > 12 || frac.len() > 6 || !digits(int) || !digits(frac) {
        return None;
    }
    let int: i128 = int.parse().ok()?;
    let frac: i128 = format!("{frac:0<6}").parse().ok()?;
    Some(int * 1_000_000 + frac)
}

/// Millionths as a number for people: thousands grouped, decimals only when there are.
fn format_amount(micro: i128, locale: crate::i18n::Locale) -> String {
    let (group, point) = match locale {
        crate::i18n::Locale::Id => ('.', ','),
        crate::i18n::Locale::En => (',', '.'),
    };
    // Rounded to two decimals (a cost of thousands of messages needs no more).
    let cents = (micro + 5_000) / 10_000;
    let (int, frac) = (cents / 100, cents % 100);
    let digits = int.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(group);
        }
        out.push(ch);
    }
    if frac > 0 {
        out = format!("{out}{point}{frac:02}");
    }
    out
}

// ---- the list -----------------------------------------------------------------------

struct ListRow {
    c: Campaign,
    number: String,
    sent: i64,
    planned: i64,
}

#[derive(Template)]
#[template(path = "campaigns/list.html")]
struct ListPage {
    ctx: RequestCtx,
    rows: Vec<ListRow>,
    can_act: bool,
    is_admin: bool,
}

impl ListPage {
    #[expect(clippy::unused_self, reason = "askama calls it as a method of the page")]
    #[expect(clippy::trivially_copy_pass_by_ref, reason = "askama passes a field by reference")]
    fn tone(&self, s: &CampaignState) -> &'static str {
        tone(*s)
    }
}

fn number_names(c: &rusqlite::Connection) -> rusqlite::Result<BTreeMap<i64, String>> {
    Ok(crate::whatsapp::numbers::repo::list_numbers(c)?
        .into_iter()
        .map(|n| (n.id, n.display_name))
        .collect())
}

async fn get_list(state: web::Data<AppState>, a: Authed) -> AppResult<HttpResponse> {
    a.require(Role::Agent)?;
    let rows = state
        .db
        .read(|c| {
            let names = number_names(c)?;
            let mut rows = Vec::new();
            for campaign in super::list(c)? {
                let p = progress(campaign.state, &super::counts(c, campaign.id)?);
                rows.push(ListRow {
                    number: names.get(&campaign.number_id).cloned().unwrap_or_default(),
                    sent: p.sent,
                    planned: p.planned,
                    c: campaign,
                });
            }
            Ok(rows)
        })
        .await?;
    ok_page(&ListPage {
        can_act: a.user.at_least(Role::Supervisor),
        is_admin: a.user.at_least(Role::Admin),
        ctx: a.ctx,
        rows,
    })
}

// ---- the form -----------------------------------------------------------------------

/// One template variable as typed: where its value comes from (`name`, `first_name`,
/// `profile_name`, `phone`, `custom`, `text`), the custom field's key or the text, and
/// the fallback.
#[derive(Debug, Clone, Default)]
pub struct VarInput {
    pub source: String,
    pub value: String,
    pub fallback: String,
}

/// The form as a person filled it in (kept as typed, to show it again).
#[derive(Debug, Clone, Default)]
pub struct FormView {
    pub name: String,
    pub number_id: String,
    /// `name|language`.
    pub template: String,
    pub vars: BTreeMap<String, VarInput>,
    pub header_media: String,
    pub labels: Vec<String>,
    pub segments: Vec<String>,
    pub exclude_labels: Vec<String>,
    pub exclude_segments: Vec<String>,
    pub at: String,
    pub hours_from: String,
    pub hours_to: String,
    pub reply_hours: String,
}

/// The variable sources the form offers, in order.
const SOURCES: [&str; 6] = ["name", "first_name", "profile_name", "phone", "custom", "text"];

impl FormView {
    fn of(c: &Campaign, tz: chrono_tz::Tz) -> FormView {
        let vars = c
            .variables
            .iter()
            .map(|(k, v)| {
                let (source, value) = if let Some(f) = &v.field {
                    (f.clone(), String::new())
                } else if let Some(k) = &v.custom {
                    ("custom".to_string(), k.clone())
                } else {
                    ("text".to_string(), v.text.clone().unwrap_or_default())
                };
                let fallback = v.fallback.clone().unwrap_or_default();
                (
                    k.clone(),
                    VarInput {
                        source,
                        value,
                        fallback,
                    },
                )
            })
            .collect();
        let strings = |v: &[i64]| v.iter().map(ToString::to_string).collect();
        FormView {
            name: c.name.clone(),
            number_id: c.number_id.to_string(),
            template: format!("{}|{}", c.template_name, c.template_lang),
            vars,
            header_media: c.header_media.clone(),
            labels: c.audience.labels.clone(),
            segments: strings(&c.audience.segments),
            exclude_labels: c.audience.exclude_labels.clone(),
            exclude_segments: strings(&c.audience.exclude_segments),
            at: c.send_at.map(|t| local_input(t, tz)).unwrap_or_default(),
            hours_from: c.hours.map(|h| service::clock(h.0)).unwrap_or_default(),
            hours_to: c.hours.map(|h| service::clock(h.1)).unwrap_or_default(),
            reply_hours: c.reply_hours.to_string(),
        }
    }

    fn parse(fields: &[(String, String)]) -> FormView {
        let mut v = FormView::default();
        for (k, val) in fields {
            match k.as_str() {
                "name" => v.name.clone_from(val),
                "number_id" => v.number_id.clone_from(val),
                "template" => v.template.clone_from(val),
                "header_media" => v.header_media.clone_from(val),
                "labels" => v.labels.push(val.clone()),
                "segments" => v.segments.push(val.clone()),
                "exclude_labels" => v.exclude_labels.push(val.clone()),
                "exclude_segments" => v.exclude_segments.push(val.clone()),
                "at" => v.at.clone_from(val),
                "hours_from" => v.hours_from.clone_from(val),
                "hours_to" => v.hours_to.clone_from(val),
                "reply_hours" => v.reply_hours.clone_from(val),
                other => {
                    let Some((what, name)) = other.strip_prefix("var_").and_then(|r| r.split_once('_')) else {
                        continue;
                    };
                    if name.is_empty() || name.len() > 60 || v.vars.len() > 60 {
                        continue;
                    }
                    let row = v.vars.entry(name.to_string()).or_default();
                    match what {
                        "source" => row.source.clone_from(val),
                        "value" => row.value.clone_from(val),
                        "fallback" => row.fallback.clone_from(val),
                        _ => {}
                    }
                }
            }
        }
        v
    }

    /// What the service checks. A variable with no source, or a custom field or text
    /// left empty, is left out: the service names it as not mapped.
    fn spec(&self) -> Spec {
        let (template_name, language) = self.template.split_once('|').unwrap_or((&self.template, ""));
        let ids = |v: &[String]| v.iter().filter_map(|s| s.trim().parse().ok()).collect();
        let variables = self
            .vars
            .iter()
            .filter_map(|(name, i)| {
                let value = i.value.trim();
                let fallback = Some(i.fallback.clone()).filter(|f| !f.trim().is_empty());
                let mut v = super::Variable {
                    fallback,
                    ..super::Variable::default()
                };
                match i.source.as_str() {
                    "custom" if !value.is_empty() => v.custom = Some(value.to_string()),
                    "text" if !value.is_empty() => v.text = Some(i.value.clone()),
                    f if super::FIELDS.contains(&f) => v.field = Some(f.to_string()),
                    _ => return None,
                }
                Some((name.clone(), v))
            })
            .collect();
        let (from, to) = (self.hours_from.trim(), self.hours_to.trim());
        let hours = (!from.is_empty() || !to.is_empty()).then(|| service::Hours {
            from: from.to_string(),
            to: to.to_string(),
        });
        let reply = self.reply_hours.trim();
        Spec {
            name: self.name.clone(),
            number_id: self.number_id.trim().parse().unwrap_or(0),
            template: service::TemplateRef {
                name: template_name.to_string(),
                language: language.to_string(),
            },
            variables,
            header_media: self.header_media.clone(),
            audience: super::Audience {
                labels: self.labels.clone(),
                segments: ids(&self.segments),
                exclude_labels: self.exclude_labels.clone(),
                exclude_segments: ids(&self.exclude_segments),
            },
            schedule: service::Schedule {
                at: Some(self.at.clone()).filter(|a| !a.trim().is_empty()),
                hours,
            },
            // A reply time that is not a number is out of range, which the service says.
            reply_hours: (!reply.is_empty()).then(|| reply.parse().unwrap_or(0)),
        }
    }

    pub fn has(&self, list: &str, value: &str) -> bool {
        let l = match list {
            "labels" => &self.labels,
            "segments" => &self.segments,
            "exclude_labels" => &self.exclude_labels,
            _ => &self.exclude_segments,
        };
        l.iter().any(|x| x.trim().eq_ignore_ascii_case(value))
    }
}

/// One variable row of the form.
pub struct VarRow {
    pub name: String,
    pub source: String,
    pub value: String,
    pub fallback: String,
}

/// A template the form offers.
pub struct TemplateChoice {
    pub key: String,
    pub label: String,
}

/// The chosen template as the form shows it.
pub struct Chosen {
    pub header: String,
    pub body: String,
    pub footer: String,
    pub media: bool,
    pub category: String,
}

#[derive(Template)]
#[template(path = "campaigns/form.html")]
struct FormPage {
    ctx: RequestCtx,
    id: Option<CampaignId>,
    form: FormView,
    errors: FormErrors,
    numbers: Vec<(i64, String)>,
    templates: Vec<TemplateChoice>,
    chosen: Option<Chosen>,
    rows: Vec<VarRow>,
    labels: Vec<String>,
    segments: Vec<(String, String)>,
    tz: String,
}

impl FormPage {
    fn action(&self) -> String {
        match self.id {
            Some(id) => format!("/campaigns/{id}/edit"),
            None => "/campaigns".into(),
        }
    }

    #[expect(clippy::unused_self, reason = "askama calls it as a method of the page")]
    fn sources(&self) -> [&'static str; 6] {
        SOURCES
    }

    fn at_help(&self) -> String {
        self.ctx.tf("campaigns.ui_form.at_help", &[("zone", &self.tz)])
    }
}

/// What the form needs from the store: the numbers, the chosen number's templates,
/// the labels and segments.
struct Choices {
    numbers: Vec<(i64, String)>,
    templates: Vec<crate::whatsapp::templates::Template>,
    labels: Vec<String>,
    segments: Vec<(String, String)>,
}

fn load_choices(
    c: &rusqlite::Connection,
    wanted_number: Option<i64>,
    wanted_template: &str,
) -> rusqlite::Result<Choices> {
    let numbers: Vec<(i64, String)> = crate::whatsapp::numbers::repo::list_numbers(c)?
        .into_iter()
        .map(|n| (n.id, n.display_name))
        .collect();
    let number = wanted_number
        .filter(|n| numbers.iter().any(|(id, _)| id == n))
        .or_else(|| numbers.first().map(|(id, _)| *id));
    let mut templates = Vec::new();
    if let Some(n) = number.and_then(|n| crate::whatsapp::numbers::repo::find_number(c, n).transpose()) {
        let n = n?;
        templates = crate::whatsapp::templates::list_usable(c, &n.waba_id)?;
        // A draft's template that is no longer usable stays listed (with its
        // state), so saving names the problem instead of quietly switching.
        if let Some((name, lang)) = wanted_template.split_once('|') {
            if !templates.iter().any(|t| t.name == name && t.language == lang) {
                if let Some(t) = crate::whatsapp::templates::find_by_key(c, &n.waba_id, name, lang)? {
                    templates.push(t);
                }
            }
        }
    }
    let segments = crate::contacts::segments::list(c)?
        .into_iter()
        .map(|s| (s.id.0.to_string(), s.name))
        .collect();
    Ok(Choices {
        numbers,
        templates,
        labels: known(c)?.labels,
        segments,
    })
}

async fn form_page(
    state: &AppState,
    ctx: RequestCtx,
    id: Option<CampaignId>,
    mut form: FormView,
    errors: FormErrors,
) -> AppResult<FormPage> {
    let wanted_number: Option<i64> = form.number_id.trim().parse().ok();
    let wanted_template = form.template.clone();
    let ch = state
        .db
        .read(move |c| Ok(load_choices(c, wanted_number, &wanted_template)?))
        .await?;
    if !ch.numbers.iter().any(|(id, _)| id.to_string() == form.number_id.trim()) {
        form.number_id = ch.numbers.first().map(|(id, _)| id.to_string()).unwrap_or_default();
    }
    if !ch.templates.iter().any(|t| t.key() == form.template) {
        form.template = ch
            .templates
            .first()
            .map(crate::whatsapp::templates::Template::key)
            .unwrap_or_default();
    }
    let chosen_t = ch.templates.iter().find(|t| t.key() == form.template);
    let rows = chosen_t
        .map(|t| {
            super::plan::variable_names(t)
                .into_iter()
                .map(|name| {
                    let v = form.vars.get(&name).cloned().unwrap_or_default();
                    VarRow {
                        name,
                        source: v.source,
                        value: v.value,
                        fallback: v.fallback,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let chosen = chosen_t.map(|t| Chosen {
        header: t.header_text.clone(),
        body: t.body_text.clone(),
        footer: t.footer_text.clone(),
        media: matches!(t.header_format.as_str(), "IMAGE" | "VIDEO" | "DOCUMENT"),
        category: t.category.clone(),
    });
    let templates = ch
        .templates
        .iter()
        .map(|t| {
            let mut label = format!("{} ({})", t.name, t.language);
            if t.usable().is_err() {
                label = format!("{label} – {}", ctx.label("templates.status", t.status.as_str()));
            }
            TemplateChoice { key: t.key(), label }
        })
        .collect();
    // A label the draft names but that was deleted since stays visible (ticked), so
    // saving says so instead of quietly dropping it.
    let mut labels = ch.labels;
    for name in form.labels.iter().chain(&form.exclude_labels) {
        let name = name.trim();
        if !name.is_empty() && !labels.iter().any(|l| l.eq_ignore_ascii_case(name)) {
            labels.push(name.to_string());
        }
    }
    Ok(FormPage {
        tz: tz_of(&ctx).name().to_string(),
        ctx,
        id,
        form,
        errors,
        numbers: ch.numbers,
        templates,
        chosen,
        rows,
        labels,
        segments: ch.segments,
    })
}

async fn get_new(state: web::Data<AppState>, a: Authed) -> AppResult<HttpResponse> {
    a.require(Role::Supervisor)?;
    let form = FormView {
        reply_hours: "72".into(),
        ..FormView::default()
    };
    ok_page(&form_page(&state, a.ctx, None, form, FormErrors::default()).await?)
}

async fn find_campaign(state: &AppState, id: CampaignId) -> AppResult<Campaign> {
    Ok(state
        .db
        .read(move |c| Ok(super::find(c, id)?.ok_or(AppError::NotFound)?))
        .await?)
}

async fn get_edit(state: web::Data<AppState>, a: Authed, path: web::Path<i64>) -> AppResult<HttpResponse> {
    a.require(Role::Supervisor)?;
    let campaign = find_campaign(&state, CampaignId(path.into_inner())).await?;
    if campaign.state != CampaignState::Draft || campaign.parent_id.is_some() {
        return Ok(crate::web::see_other(&format!("/campaigns/{}", campaign.id)));
    }
    let form = FormView::of(&campaign, tz_of(&a.ctx));
    ok_page(&form_page(&state, a.ctx, Some(campaign.id), form, FormErrors::default()).await?)
}

async fn post_new(
    state: web::Data<AppState>,
    a: Authed,
    form: web::Form<Vec<(String, String)>>,
) -> AppResult<HttpResponse> {
    a.require(Role::Supervisor)?;
    submit(&state, a, None, &form.into_inner()).await
}

async fn post_edit(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<i64>,
    form: web::Form<Vec<(String, String)>>,
) -> AppResult<HttpResponse> {
    a.require(Role::Supervisor)?;
    submit(&state, a, Some(CampaignId(path.into_inner())), &form.into_inner()).await
}

/// Continue (the chosen template's variables, nothing saved) or save.
async fn submit(
    state: &AppState,
    a: Authed,
    id: Option<CampaignId>,
    fields: &[(String, String)],
) -> AppResult<HttpResponse> {
    let view = FormView::parse(fields);
    if fields.iter().any(|(k, v)| k == "action" && v == "refresh") {
        if let Some(id) = id {
            find_campaign(state, id).await?;
        }
        return ok_page(&form_page(state, a.ctx, id, view, FormErrors::default()).await?);
    }
    let spec = view.spec();
    let (actor, now) = (a.actor(), state.now());
    let saved = state
        .db
        .write(move |c| {
            let known = known(c)?;
            Ok(match id {
                Some(id) => service::update(c, &known, &actor, id, &spec, now)?.ok_or(AppError::NotFound)?,
                None => service::create(c, &known, &actor, &spec, now)?,
            })
        })
        .await?;
    match saved {
        Ok(c) => Ok(see_other_flash(&format!("/campaigns/{}", c.id), "flash.saved")),
        Err(errors) => invalid_page(&form_page(state, a.ctx, id, view, errors).await?),
    }
}

// ---- the campaign page ----------------------------------------------------------------

/// A skip reason or a failure, in words.
pub struct ReasonRow {
    pub state: &'static str,
    pub words: String,
    pub code: Option<i64>,
    pub count: i64,
}

/// The pre-flight as the page shows it.
pub struct PreflightView {
    pub p: Preflight,
    pub skipped: Vec<(String, i64)>,
    pub limit: String,
    pub rate: String,
    pub finishes: Option<String>,
    pub cost: String,
}

/// One bar of the send-rate chart, in the SVG's own units.
pub struct Bar {
    pub x: String,
    pub y: String,
    pub w: String,
    pub h: String,
    pub label: String,
}

/// The per-minute send-rate chart.
pub struct Chart {
    pub bars: Vec<Bar>,
    pub rows: Vec<(String, i64)>,
    pub peak: i64,
    pub summary: String,
    pub first: String,
    pub last: String,
}

const CHART_W: i64 = 600;
/// The baseline of the bars, and the room above the tallest (for the scale's label).
const CHART_H: i64 = 150;
const CHART_TOP: i64 = 26;

fn chart(ctx: &RequestCtx, per_minute: &[(i64, i64)]) -> Chart {
    let tz = tz_of(ctx);
    let hm = |t: i64| {
        tz.timestamp_opt(t, 0)
            .single()
            .map(|t| t.format("%H:%M").to_string())
            .unwrap_or_default()
    };
    let peak = per_minute.iter().map(|(_, n)| *n).max().unwrap_or(0);
    let first = per_minute.first().map_or(0, |(t, _)| *t);
    let last = per_minute.last().map_or(0, |(t, _)| *t);
    // Minutes laid out in time when the span is short; one after another otherwise.
    let span = (last - first) / 60 + 1;
    let by_time = span <= 240;
    // At least 30 slots: a short campaign's few bars stay bars, not a wall.
    let slots = if by_time {
        span
    } else {
        i64::try_from(per_minute.len()).unwrap_or(1)
    }
    .max(30);
    let slot = (CHART_W * 100) / slots;
    let bars = per_minute
        .iter()
        .enumerate()
        .map(|(i, (t, n))| {
            let i = i64::try_from(i).unwrap_or(0);
            let at = if by_time { (t - first) / 60 } else { i };
            let h = if peak > 0 {
                n * (CHART_H - CHART_TOP) * 100 / peak
            } else {
                0
            };
            let two = |v: i64| format!("{}.{:02}", v / 100, v % 100);
            Bar {
                x: two(at * slot),
                y: two(CHART_H * 100 - h),
                w: two((slot * 8 / 10).max(50)),
                h: two(h),
                label: format!("{} · {n}", hm(*t)),
            }
        })
        .collect();
    let total: i64 = per_minute.iter().map(|(_, n)| *n).sum();
    let minutes = i64::try_from(per_minute.len()).unwrap_or(0);
    let summary = if minutes == 0 {
        ctx.t("campaigns.ui_page.chart_empty").to_string()
    } else {
        ctx.tf(
            "campaigns.ui_page.chart_summary",
            &[
                ("total", &total.to_string()),
                ("minutes", &minutes.to_string()),
                ("peak", &peak.to_string()),
                ("average", &(total / minutes.max(1)).to_string()),
                ("from", &hm(first)),
                ("to", &hm(last)),
            ],
        )
    };
    Chart {
        bars,
        rows: per_minute.iter().map(|(t, n)| (hm(*t), *n)).collect(),
        peak,
        summary,
        first: hm(first),
        last: hm(last),
    }
}

/// A started campaign's results.
pub struct LiveView {
    pub progress: Progress,
    pub states: Vec<(&'static str, i64)>,
    pub chart: Chart,
    pub reasons: Vec<ReasonRow>,
    pub remaining: Estimate,
    pub remaining_finishes: Option<String>,
    pub held: i64,
    pub held_text: String,
    pub send_again_text: String,
}

#[derive(Template)]
#[template(path = "campaigns/campaign.html")]
struct CampaignPage {
    ctx: RequestCtx,
    c: Campaign,
    number: String,
    template_body: String,
    can_act: bool,
    /// Why the last button did nothing (a catalogue key).
    notice: Option<&'static str>,
    preflight: Option<PreflightView>,
    live: Option<LiveView>,
    parent: Option<(CampaignId, String)>,
    follow_ups: Vec<(CampaignId, String, CampaignState)>,
    at: Option<String>,
    /// When it was planned (started).
    started_at: Option<String>,
    /// Why a running campaign sends nothing now (outside its hours, the limit used up).
    waiting: Option<String>,
    hours: Option<String>,
    tz: String,
}

impl CampaignPage {
    #[expect(clippy::unused_self, reason = "askama calls it as a method of the page")]
    #[expect(clippy::trivially_copy_pass_by_ref, reason = "askama passes a field by reference")]
    fn tone(&self, s: &CampaignState) -> &'static str {
        tone(*s)
    }

    fn paused_words(&self) -> String {
        match &self.c.paused_reason {
            Some(k) if crate::i18n::has_key(k) => self.ctx.t(k).to_string(),
            Some(k) => k.clone(),
            None => String::new(),
        }
    }

    #[expect(clippy::unused_self, reason = "askama calls it as a method of the page")]
    fn follow_kinds(&self) -> Vec<&'static str> {
        FollowUp::ALL.iter().map(|k| k.as_str()).collect()
    }

    /// A phone number with its plus; a BSUID as it is.
    #[expect(clippy::unused_self, reason = "askama calls it as a method of the page")]
    fn address(&self, a: &str) -> String {
        address(a)
    }

    fn is(&self, s: &str) -> bool {
        self.c.state.as_str() == s
    }
}

/// A phone number with its plus; a BSUID as it is.
fn address(a: &str) -> String {
    if !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()) {
        format!("+{a}")
    } else {
        a.to_string()
    }
}

fn when_text(ctx: &RequestCtx, e: &Estimate) -> Option<String> {
    let t = e.finishes_at?;
    let at = ctx.time(&t);
    Some(if e.windows > 1 {
        ctx.tf(
            "campaigns.ui_page.finishes_windows",
            &[("at", &at), ("n", &e.windows.to_string())],
        )
    } else {
        at
    })
}

fn reason_words(ctx: &RequestCtx, reason: Option<&str>, code: Option<i64>) -> String {
    match reason.filter(|r| !r.is_empty()) {
        Some(r) => ctx.label("campaigns.reason", r),
        None => ctx.t(crate::whatsapp::graph::plain_reason(code)).to_string(),
    }
}

fn limit_words(ctx: &RequestCtx, limit: Option<i64>, e: &Estimate) -> String {
    match limit {
        None => ctx.t("campaigns.ui_page.limit_unknown").to_string(),
        Some(l) if l < 0 => ctx.t("campaigns.ui_page.limit_unlimited").to_string(),
        Some(l) => ctx.tf(
            "campaigns.ui_page.limit_used",
            &[
                ("limit", &l.to_string()),
                ("used", &e.used_last_24h.to_string()),
                ("left", &e.left_now.unwrap_or(0).to_string()),
            ],
        ),
    }
}

fn cost_words(ctx: &RequestCtx, prices: &Prices, purpose: &str, people: i64) -> String {
    match prices.of(purpose).and_then(parse_price) {
        None => ctx.t("campaigns.ui_page.cost_unset").to_string(),
        Some(micro) => {
            let unit = format_amount(micro, ctx.locale);
            let total = format_amount(micro * i128::from(people), ctx.locale);
            ctx.tf(
                "campaigns.ui_page.cost",
                &[
                    ("n", &people.to_string()),
                    ("price", &unit),
                    ("total", &total),
                    ("currency", &prices.currency),
                ],
            )
        }
    }
}

/// What the store gives the campaign page.
struct Loaded {
    c: Campaign,
    number: String,
    body: String,
    limit: Option<i64>,
    prices: Prices,
    preflight: Option<Preflight>,
    counts: BTreeMap<RecipientState, i64>,
    per_minute: Vec<(i64, i64)>,
    reasons: Vec<super::ReasonCount>,
    remaining: Option<Estimate>,
    parent: Option<(CampaignId, String)>,
    follow_ups: Vec<(CampaignId, String, CampaignState)>,
}

/// A started campaign's results as the page shows them.
fn live_view(
    ctx: &RequestCtx,
    state: CampaignState,
    counts: &BTreeMap<RecipientState, i64>,
    per_minute: &[(i64, i64)],
    reasons: &[super::ReasonCount],
    remaining: Estimate,
) -> LiveView {
    let progress = progress(state, counts);
    let held = counts.get(&RecipientState::NeedsReview).copied().unwrap_or(0);
    let n = held.to_string();
    LiveView {
        held_text: ctx.tf("campaigns.ui_page.held", &[("n", &n)]),
        send_again_text: ctx.tf("campaigns.ui_page.send_again", &[("n", &n)]),
        states: RecipientState::ALL
            .iter()
            .map(|s| (s.as_str(), counts.get(s).copied().unwrap_or(0)))
            .collect(),
        held,
        chart: chart(ctx, per_minute),
        reasons: reasons
            .iter()
            .map(|r| ReasonRow {
                state: r.state.as_str(),
                words: reason_words(ctx, Some(&r.reason), r.error_code),
                code: r.error_code,
                count: r.count,
            })
            .collect(),
        remaining_finishes: when_text(ctx, &remaining),
        remaining,
        progress,
    }
}

/// Why a running campaign sends nothing now: outside its hours, or the limit used up.
fn waiting_note(ctx: &RequestCtx, c: &Campaign, live: Option<&LiveView>, now: i64) -> Option<String> {
    let tz = tz_of(ctx);
    let v = live.filter(|v| c.state == CampaignState::Running && v.remaining.people > 0)?;
    match c.hours {
        Some(h) if !super::estimate::is_open(now, tz, Some(h)) => Some(ctx.tf(
            "campaigns.ui_page.waiting_hours",
            &[("from", &service::clock(h.0)), ("zone", tz.name())],
        )),
        _ if v.remaining.left_now == Some(0) => Some(ctx.t("campaigns.ui_page.waiting_limit").to_string()),
        _ => None,
    }
}

async fn campaign_page(
    state: &AppState,
    a: Authed,
    id: CampaignId,
    notice: Option<&'static str>,
) -> AppResult<CampaignPage> {
    let now = state.now();
    let l = state
        .db
        .read(move |c| {
            let campaign = super::find(c, id)?.ok_or(AppError::NotFound)?;
            let number = crate::whatsapp::numbers::repo::find_number(c, campaign.number_id)?;
            let template =
                service::template_of(c, campaign.number_id, &campaign.template_name, &campaign.template_lang)?;
            let started = campaign.planned_at.is_some();
            let all = super::list(c)?;
            let parent = campaign
                .parent_id
                .and_then(|p| all.iter().find(|x| x.id == p))
                .map(|p| (p.id, p.name.clone()));
            let follow_ups = all
                .iter()
                .filter(|x| x.parent_id == Some(id))
                .map(|x| (x.id, x.name.clone(), x.state))
                .collect();
            Ok(Loaded {
                number: number.as_ref().map(|n| n.display_name.clone()).unwrap_or_default(),
                body: template.map(|t| t.body_text).unwrap_or_default(),
                limit: super::messaging_limit(c, campaign.number_id)?,
                prices: super::prices(c)?,
                preflight: if started || campaign.state != CampaignState::Draft {
                    None
                } else {
                    Some(service::preflight(c, &campaign, now)?)
                },
                counts: super::counts(c, id)?,
                per_minute: if started {
                    super::sends_per_minute(c, id)?
                } else {
                    Vec::new()
                },
                reasons: if started { super::reasons(c, id)? } else { Vec::new() },
                remaining: if started {
                    Some(service::remaining_estimate(c, &campaign, now)?)
                } else {
                    None
                },
                c: campaign,
                parent,
                follow_ups,
            })
        })
        .await?;
    let ctx = &a.ctx;
    let preflight = l.preflight.map(|p| {
        let skipped = p
            .counts
            .skipped
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(code, n)| (ctx.label("campaigns.reason", code), *n))
            .collect();
        PreflightView {
            limit: limit_words(ctx, l.limit, &p.estimate),
            rate: ctx.tf(
                "campaigns.ui_page.rate_value",
                &[
                    ("rate", &p.estimate.rate_per_second.to_string()),
                    ("mps", &p.mps.to_string()),
                ],
            ),
            finishes: when_text(ctx, &p.estimate),
            cost: cost_words(ctx, &l.prices, p.purpose, p.counts.queued),
            skipped,
            p,
        }
    });
    let live = l
        .remaining
        .map(|remaining| live_view(ctx, l.c.state, &l.counts, &l.per_minute, &l.reasons, remaining));
    let tz = tz_of(ctx);
    let waiting = waiting_note(ctx, &l.c, live.as_ref(), now);
    Ok(CampaignPage {
        can_act: a.user.at_least(Role::Supervisor),
        notice,
        waiting,
        started_at: l.c.planned_at.map(|t| ctx.time(&t)),
        at: l.c.send_at.map(|t| ctx.time(&t)),
        hours: l
            .c
            .hours
            .map(|(f, t)| format!("{}–{}", service::clock(f), service::clock(t))),
        tz: tz.name().to_string(),
        number: l.number,
        template_body: l.body,
        preflight,
        live,
        parent: l.parent,
        follow_ups: l.follow_ups,
        c: l.c,
        ctx: a.ctx,
    })
}

async fn get_campaign(state: web::Data<AppState>, a: Authed, path: web::Path<i64>) -> AppResult<HttpResponse> {
    a.require(Role::Agent)?;
    let id = CampaignId(path.into_inner());
    ok_page(&campaign_page(&state, a, id, None).await?)
}

/// The page again with why the button did nothing (409: the campaign's state did not
/// allow it).
async fn refused(state: &AppState, a: Authed, id: CampaignId, why: &'static str) -> AppResult<HttpResponse> {
    render(StatusCode::CONFLICT, &campaign_page(state, a, id, Some(why)).await?)
}

async fn get_progress(state: web::Data<AppState>, a: Authed, path: web::Path<i64>) -> AppResult<HttpResponse> {
    a.require(Role::Agent)?;
    let id = CampaignId(path.into_inner());
    let (campaign, counts) = state
        .db
        .read(move |c| {
            let campaign = super::find(c, id)?.ok_or(AppError::NotFound)?;
            Ok((campaign, super::counts(c, id)?))
        })
        .await?;
    let p = progress(campaign.state, &counts);
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(serde_json::json!({
            "id": campaign.id,
            "state": p.state,
            "state_words": a.ctx.label("campaigns.state", campaign.state.as_str()),
            "counts": p.counts,
            "planned": p.planned,
            "handled": p.handled,
            "sent": p.sent,
            "percent": p.percent,
            "funnel": p.funnel.iter().copied().collect::<BTreeMap<_, _>>(),
        })))
}

// ---- the buttons --------------------------------------------------------------------

async fn post_start(state: web::Data<AppState>, a: Authed, path: web::Path<i64>) -> AppResult<HttpResponse> {
    a.require(Role::Supervisor)?;
    let id = CampaignId(path.into_inner());
    let (actor, now) = (a.actor(), state.now());
    let r = state.db.write(move |c| Ok(service::start(c, id, &actor, now)?)).await;
    match r.map_err(AppError::from) {
        Ok(Ok(started)) => {
            state.campaigns.bell.ring();
            let key = match started {
                service::Started::Now { .. } => "campaigns.ui_flash.started",
                service::Started::Scheduled { .. } => "campaigns.ui_flash.scheduled",
            };
            Ok(see_other_flash(&format!("/campaigns/{id}"), key))
        }
        Ok(Err(why)) | Err(AppError::BadRequest(why)) => refused(&state, a, id, why).await,
        Err(e) => Err(e),
    }
}

async fn post_pause(state: web::Data<AppState>, a: Authed, path: web::Path<i64>) -> AppResult<HttpResponse> {
    a.require(Role::Supervisor)?;
    let id = CampaignId(path.into_inner());
    find_campaign(&state, id).await?;
    let (actor, now) = (a.actor(), state.now());
    let paused = state.db.write(move |c| Ok(service::pause(c, id, &actor, now)?)).await?;
    if !paused {
        return refused(&state, a, id, "campaigns.ui_page.not_running").await;
    }
    Ok(see_other_flash(
        &format!("/campaigns/{id}"),
        "campaigns.ui_flash.paused",
    ))
}

async fn post_resume(state: web::Data<AppState>, a: Authed, path: web::Path<i64>) -> AppResult<HttpResponse> {
    a.require(Role::Supervisor)?;
    let id = CampaignId(path.into_inner());
    find_campaign(&state, id).await?;
    let (actor, now) = (a.actor(), state.now());
    match state
        .db
        .write(move |c| Ok(service::resume(c, id, &actor, now)?))
        .await?
    {
        Ok(()) => {
            state.campaigns.bell.ring();
            Ok(see_other_flash(
                &format!("/campaigns/{id}"),
                "campaigns.ui_flash.resumed",
            ))
        }
        Err(why) => refused(&state, a, id, why).await,
    }
}

#[derive(Deserialize)]
struct Confirm {
    #[serde(default)]
    confirm: String,
}

#[derive(Template)]
#[template(path = "campaigns/confirm.html")]
struct ConfirmPage {
    ctx: RequestCtx,
    c: Campaign,
    /// `cancel` or `delete`.
    what: &'static str,
}

async fn post_cancel(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<i64>,
    form: web::Form<Confirm>,
) -> AppResult<HttpResponse> {
    a.require(Role::Supervisor)?;
    let id = CampaignId(path.into_inner());
    let campaign = find_campaign(&state, id).await?;
    if form.confirm != "yes" {
        return ok_page(&ConfirmPage {
            ctx: a.ctx,
            c: campaign,
            what: "cancel",
        });
    }
    let (actor, now) = (a.actor(), state.now());
    if !state
        .db
        .write(move |c| Ok(service::cancel(c, id, &actor, now)?))
        .await?
    {
        return refused(&state, a, id, "campaigns.ui_page.already_over").await;
    }
    Ok(see_other_flash(
        &format!("/campaigns/{id}"),
        "campaigns.ui_flash.cancelled",
    ))
}

async fn post_delete(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<i64>,
    form: web::Form<Confirm>,
) -> AppResult<HttpResponse> {
    a.require(Role::Supervisor)?;
    let id = CampaignId(path.into_inner());
    let campaign = find_campaign(&state, id).await?;
    if form.confirm != "yes" {
        return ok_page(&ConfirmPage {
            ctx: a.ctx,
            c: campaign,
            what: "delete",
        });
    }
    let (actor, now) = (a.actor(), state.now());
    if !state
        .db
        .write(move |c| Ok(service::delete(c, id, &actor, now)?))
        .await?
    {
        return refused(&state, a, id, "campaigns.error.already_started").await;
    }
    Ok(see_other_flash("/campaigns", "campaigns.ui_flash.deleted"))
}

async fn post_send_again(state: web::Data<AppState>, a: Authed, path: web::Path<i64>) -> AppResult<HttpResponse> {
    a.require(Role::Supervisor)?;
    let id = CampaignId(path.into_inner());
    find_campaign(&state, id).await?;
    let (actor, now) = (a.actor(), state.now());
    let n = state
        .db
        .write(move |c| Ok(service::send_again_held(c, id, &actor, now)?))
        .await?;
    if n == 0 {
        return refused(&state, a, id, "campaigns.ui_page.none_held").await;
    }
    state.campaigns.bell.ring();
    Ok(see_other_flash(
        &format!("/campaigns/{id}"),
        "campaigns.ui_flash.queued_again",
    ))
}

#[derive(Deserialize)]
struct FollowUpForm {
    #[serde(default)]
    kind: String,
}

async fn post_follow_up(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<i64>,
    form: web::Form<FollowUpForm>,
) -> AppResult<HttpResponse> {
    a.require(Role::Supervisor)?;
    let id = CampaignId(path.into_inner());
    let kind = FollowUp::parse(form.kind.trim()).ok_or(AppError::BadRequest("form.invalid_choice"))?;
    find_campaign(&state, id).await?;
    let (actor, now) = (a.actor(), state.now());
    match state
        .db
        .write(move |c| Ok(service::follow_up(c, id, kind, &actor, now)?))
        .await?
    {
        Some(new) => Ok(see_other_flash(
            &format!("/campaigns/{new}"),
            "campaigns.ui_flash.follow_up",
        )),
        None => refused(&state, a, id, "campaigns.ui_page.not_started").await,
    }
}

// ---- the recipients -----------------------------------------------------------------

/// Rows per page of the recipient list.
const PAGE: i64 = 100;

#[derive(Deserialize)]
struct RecipientsQuery {
    #[serde(default)]
    state: String,
    #[serde(default)]
    after: Option<i64>,
}

fn state_filter(s: &str) -> AppResult<Option<RecipientState>> {
    match s.trim() {
        "" => Ok(None),
        s => RecipientState::parse(s)
            .map(Some)
            .ok_or(AppError::BadRequest("form.invalid_choice")),
    }
}

#[derive(Template)]
#[template(path = "campaigns/recipients.html")]
struct RecipientsPage {
    ctx: RequestCtx,
    c: Campaign,
    filter: String,
    rows: Vec<Recipient>,
    counts: Vec<(&'static str, i64)>,
    next: Option<i64>,
}

impl RecipientsPage {
    fn reason(&self, r: &Recipient) -> String {
        match (&r.reason, r.error_code) {
            (None, None) => String::new(),
            (reason, code) => reason_words(&self.ctx, reason.as_deref(), code),
        }
    }

    #[expect(clippy::unused_self, reason = "askama calls it as a method of the page")]
    fn address(&self, a: &str) -> String {
        address(a)
    }

    fn csv_href(&self) -> String {
        if self.filter.is_empty() {
            format!("/campaigns/{}/recipients.csv", self.c.id)
        } else {
            format!("/campaigns/{}/recipients.csv?state={}", self.c.id, self.filter)
        }
    }
}

async fn get_recipients(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<i64>,
    q: web::Query<RecipientsQuery>,
) -> AppResult<HttpResponse> {
    // Names and numbers of every recipient: a supervisor's view, like segments (an
    // agent sees only the contacts of its own conversations; counts stay visible).
    a.require(Role::Supervisor)?;
    let id = CampaignId(path.into_inner());
    let filter = state_filter(&q.state)?;
    let after = q.after.unwrap_or(0).max(0);
    let (campaign, rows, counts) = state
        .db
        .read(move |c| {
            let campaign = super::find(c, id)?.ok_or(AppError::NotFound)?;
            Ok((
                campaign,
                super::recipients(c, id, filter, after, PAGE)?,
                super::counts(c, id)?,
            ))
        })
        .await?;
    let next = (i64::try_from(rows.len()).unwrap_or(0) == PAGE)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    ok_page(&RecipientsPage {
        ctx: a.ctx,
        c: campaign,
        filter: filter.map(|f| f.as_str().to_string()).unwrap_or_default(),
        rows,
        counts: counts.iter().map(|(s, n)| (s.as_str(), *n)).collect(),
        next,
    })
}

/// Rows read per step of the CSV (the file streams; memory stays flat).
const CSV_STEP: i64 = 1000;

fn csv_chunk(
    rows: &[Recipient],
    header: bool,
    locale: crate::i18n::Locale,
    tz: Option<chrono_tz::Tz>,
) -> Result<Vec<u8>, csv::Error> {
    use crate::audit::defuse_formula;
    let mut w = csv::Writer::from_writer(Vec::new());
    if header {
        w.write_record([
            "name",
            "address",
            "state",
            "reason",
            "meta_code",
            "detail",
            "sent_at",
            "replied_at",
        ])?;
    }
    let time = |t: Option<i64>| t.map(|t| crate::clock::format_unix(t, tz)).unwrap_or_default();
    for r in rows {
        let reason = match (&r.reason, r.error_code) {
            (None, None) => String::new(),
            (Some(k), _) if !k.is_empty() => crate::i18n::label(locale, "campaigns.reason", k),
            (_, code) => crate::i18n::t(locale, crate::whatsapp::graph::plain_reason(code)).to_string(),
        };
        let cells = [
            r.name.clone(),
            r.recipient.clone(),
            r.state.as_str().to_string(),
            reason,
            r.error_code.map(|c| c.to_string()).unwrap_or_default(),
            r.detail.clone(),
            time(r.sent_at),
            time(r.replied_at),
        ];
        w.write_record(cells.iter().map(|c| defuse_formula(c)))?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

async fn get_csv(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<i64>,
    q: web::Query<RecipientsQuery>,
) -> AppResult<HttpResponse> {
    // Names and numbers of every recipient: a supervisor's view, like segments (an
    // agent sees only the contacts of its own conversations; counts stay visible).
    a.require(Role::Supervisor)?;
    let id = CampaignId(path.into_inner());
    let filter = state_filter(&q.state)?;
    find_campaign(&state, id).await?;
    let db = state.db.clone();
    let (locale, tz) = (a.ctx.locale, a.ctx.timezone);
    // (rows after this id, first chunk?) until a short page ends the file.
    let chunks = futures_util::stream::unfold(Some((0_i64, true)), move |next| {
        let db = db.clone();
        async move {
            let (after, first) = next?;
            let rows = db
                .read(move |c| Ok(super::recipients(c, id, filter, after, CSV_STEP)?))
                .await;
            let rows = match rows {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::error!(error = %e, campaign = %id, "recipient CSV stopped");
                    return Some((Err(actix_web::error::ErrorInternalServerError("read failed")), None));
                }
            };
            if rows.is_empty() && !first {
                return None;
            }
            let more = i64::try_from(rows.len()).unwrap_or(0) == CSV_STEP;
            let next = rows.last().filter(|_| more).map(|r| (r.id, false));
            match csv_chunk(&rows, first, locale, tz) {
                Ok(bytes) => Some((Ok(web::Bytes::from(bytes)), next)),
                Err(e) => {
                    tracing::error!(error = %e, campaign = %id, "recipient CSV stopped");
                    Some((Err(actix_web::error::ErrorInternalServerError("write failed")), None))
                }
            }
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"campaign-{id}-recipients.csv\""),
        ))
        .insert_header(("Cache-Control", "no-store"))
        .streaming(chunks))
}

// ---- settings -------------------------------------------------------------------------

#[derive(Debug, Clone, Default, Deserialize)]
struct SettingsForm {
    #[serde(default)]
    frequency_cap_hours: String,
    #[serde(default)]
    error_pause_percent: String,
    #[serde(default)]
    price_marketing: String,
    #[serde(default)]
    price_utility: String,
    #[serde(default)]
    currency: String,
}

impl SettingsForm {
    fn of(s: &Settings, p: &Prices) -> SettingsForm {
        SettingsForm {
            frequency_cap_hours: s.frequency_cap_hours.to_string(),
            error_pause_percent: s.error_pause_percent.to_string(),
            price_marketing: p.marketing.clone(),
            price_utility: p.utility.clone(),
            currency: p.currency.clone(),
        }
    }

    fn check(&self) -> Result<(Settings, Prices), FormErrors> {
        let mut errors = FormErrors::default();
        let cap = self
            .frequency_cap_hours
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|h| (0..=8760).contains(h));
        if cap.is_none() {
            errors.add("frequency_cap_hours", "campaigns.ui_settings.cap_invalid");
        }
        let pct = self
            .error_pause_percent
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|p| (1..=100).contains(p));
        if pct.is_none() {
            errors.add("error_pause_percent", "campaigns.ui_settings.percent_invalid");
        }
        let price = |s: &str, field: &'static str, errors: &mut FormErrors| {
            let s = s.trim();
            if !s.is_empty() && parse_price(s).is_none() {
                errors.add(field, "campaigns.ui_settings.price_invalid");
            }
            s.replace(',', ".")
        };
        let marketing = price(&self.price_marketing, "price_marketing", &mut errors);
        let utility = price(&self.price_utility, "price_utility", &mut errors);
        let currency = self.currency.trim().to_string();
        if currency.chars().count() > 10 || currency.chars().any(char::is_control) {
            errors.add("currency", "campaigns.ui_settings.currency_invalid");
        }
        match (cap, pct) {
            (Some(frequency_cap_hours), Some(error_pause_percent)) if errors.is_empty() => Ok((
                Settings {
                    frequency_cap_hours,
                    error_pause_percent,
                },
                Prices {
                    marketing,
                    utility,
                    currency,
                },
            )),
            _ => Err(errors),
        }
    }
}

#[derive(Template)]
#[template(path = "campaigns/settings.html")]
struct SettingsPage {
    ctx: RequestCtx,
    form: SettingsForm,
    errors: FormErrors,
}

async fn get_settings(state: web::Data<AppState>, Admin(a): Admin) -> AppResult<HttpResponse> {
    let (s, p) = state.db.read(|c| Ok((super::settings(c)?, super::prices(c)?))).await?;
    ok_page(&SettingsPage {
        ctx: a.ctx,
        form: SettingsForm::of(&s, &p),
        errors: FormErrors::default(),
    })
}

async fn post_settings(
    state: web::Data<AppState>,
    Admin(a): Admin,
    form: web::Form<SettingsForm>,
) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    let (s, p) = match form.check() {
        Ok(v) => v,
        Err(errors) => {
            return invalid_page(&SettingsPage {
                ctx: a.ctx,
                form,
                errors,
            });
        }
    };
    let (actor, now) = (a.actor(), state.now());
    state
        .db
        .write(move |c| Ok(super::save_settings(c, &actor, &s, &p, now)?))
        .await?;
    Ok(see_other_flash("/campaigns/settings", "flash.saved"))
}

// ---- the number page's daily limit --------------------------------------------------

#[derive(Deserialize)]
struct LimitForm {
    #[serde(default)]
    limit: String,
}

async fn post_messaging_limit(
    state: web::Data<AppState>,
    Admin(a): Admin,
    path: web::Path<i64>,
    form: web::Form<LimitForm>,
) -> AppResult<HttpResponse> {
    let number_id = path.into_inner();
    let limit = match form.limit.trim() {
        "" => None,
        s => Some(
            s.parse::<i64>()
                .ok()
                .filter(|l| super::LIMIT_TIERS.contains(l))
                .ok_or(AppError::BadRequest("form.invalid_choice"))?,
        ),
    };
    let (actor, now) = (a.actor(), state.now());
    let saved = state
        .db
        .write(move |c| Ok(super::save_messaging_limit(c, &actor, number_id, limit, now)?))
        .await?;
    if !saved {
        return Err(AppError::NotFound);
    }
    Ok(see_other_flash(
        &format!("/admin/whatsapp/{number_id}"),
        "campaigns.ui_flash.limit_saved",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_parse_and_costs_read_in_each_language() {
        assert_eq!(parse_price("350"), Some(350_000_000));
        assert_eq!(parse_price("0.0125"), Some(12_500));
        assert_eq!(parse_price("0,5"), Some(500_000));
        assert_eq!(parse_price("-1"), None);
        assert_eq!(parse_price("1e3"), None);
        assert_eq!(parse_price(""), None);
        let en = crate::i18n::Locale::En;
        let id = crate::i18n::Locale::Id;
        assert_eq!(format_amount(350_000_000 * 1234, en), "431,900");
        assert_eq!(format_amount(350_000_000 * 1234, id), "431.900");
        assert_eq!(format_amount(12_500 * 1000, en), "12.50");
        assert_eq!(format_amount(12_500 * 1000, id), "12,50");
    }

    #[test]
    fn the_csv_defuses_formulas_and_says_reasons_in_words() {
        let r = Recipient {
            id: 1,
            contact_id: Some(1),
            recipient: "6281234567890".into(),
            name: "=HYPERLINK(\"http://x\")".into(),
            params: vec![],
            state: RecipientState::Failed,
            reason: None,
            error_code: Some(131_026),
            detail: "+1 bad".into(),
            wamid: None,
            defers: 0,
            next_at: 0,
            sent_at: None,
            replied_at: None,
            updated_at: 0,
        };
        let out = String::from_utf8(csv_chunk(&[r], true, crate::i18n::Locale::En, None).unwrap()).unwrap();
        let mut lines = out.lines();
        assert_eq!(
            lines.next(),
            Some("name,address,state,reason,meta_code,detail,sent_at,replied_at")
        );
        let row = lines.next().unwrap();
        assert!(
            row.starts_with("\"'=HYPERLINK(\"\"http://x\"\")\",6281234567890,failed,"),
            "{row}"
        );
        assert!(row.contains(",131026,'+1 bad,"), "{row}");
        let words = crate::i18n::t(crate::i18n::Locale::En, "whatsapp.why.not_on_whatsapp");
        assert!(row.contains(words) || row.contains(&format!("\"{words}\"")), "{row}");
    }

    #[test]
    fn progress_counts_planned_handled_and_the_funnel() {
        use RecipientState as R;
        let counts: BTreeMap<R, i64> = [
            (R::Queued, 2),
            (R::Sent, 3),
            (R::Delivered, 2),
            (R::Read, 1),
            (R::Replied, 1),
            (R::Failed, 1),
            (R::Skipped, 4),
        ]
        .into();
        let p = progress(CampaignState::Running, &counts);
        assert_eq!((p.planned, p.handled, p.sent), (10, 8, 7));
        assert_eq!(p.percent, 80);
        assert_eq!(
            p.funnel,
            vec![
                ("planned", 10),
                ("sent", 7),
                ("delivered", 4),
                ("read", 2),
                ("replied", 1),
                ("failed", 1)
            ]
        );
    }
}
