//! The bot's pages, for supervisors and admins: the bot of each number (switch,
//! welcome, keyword rules, fallback, business hours, hand-off, guards, flows, export and
//! import), a rule's and a flow's editor, the test chat, and the activity log. Every
//! change goes through `service::replace`, which validates the whole document and
//! writes the audit line; a refused change shows the validator's problems beside the
//! form and saves nothing. The test chat carries its session and transcript in hidden
//! fields (JSON, read defensively: a tampered one starts afresh), so nothing is stored.

use super::document::{Action, Assign, Bot, Flow, Problem, Rule};
use super::engine::{Decision, Input, Session};
use super::form::{self, ActionView, FieldError, Fields, ReplyView, StepView};
use super::service;
use crate::app::AppState;
use crate::auth::Role;
use crate::error::{AppError, AppResult};
use crate::i18n::Locale;
use crate::web::{Authed, RequestCtx, invalid_page, ok_page, see_other_flash};
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::{Deserialize, Serialize};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/bot").route(web::get().to(get_list)))
        .service(web::resource("/bot/activity").route(web::get().to(get_activity)))
        .service(web::resource("/bot/{id}").route(web::get().to(get_bot)))
        .service(web::resource("/bot/{id}/part/{part}").route(web::post().to(post_part)))
        .service(web::resource("/bot/{id}/export").route(web::get().to(get_export)))
        .service(web::resource("/bot/{id}/import").route(web::post().to(post_import)))
        .service(
            web::resource("/bot/{id}/rules/new")
                .route(web::get().to(get_new_rule))
                .route(web::post().to(post_new_rule)),
        )
        .service(
            web::resource("/bot/{id}/rules/{rule}")
                .route(web::get().to(get_rule))
                .route(web::post().to(post_rule)),
        )
        .service(web::resource("/bot/{id}/rules/{rule}/toggle").route(web::post().to(post_rule_toggle)))
        .service(web::resource("/bot/{id}/rules/{rule}/delete").route(web::post().to(post_rule_delete)))
        .service(
            web::resource("/bot/{id}/flows/new")
                .route(web::get().to(get_new_flow))
                .route(web::post().to(post_new_flow)),
        )
        .service(
            web::resource("/bot/{id}/flows/{flow}")
                .route(web::get().to(get_flow))
                .route(web::post().to(post_flow)),
        )
        .service(web::resource("/bot/{id}/flows/{flow}/json").route(web::post().to(post_flow_json)))
        .service(web::resource("/bot/{id}/flows/{flow}/toggle").route(web::post().to(post_flow_toggle)))
        .service(web::resource("/bot/{id}/flows/{flow}/delete").route(web::post().to(post_flow_delete)))
        .service(
            web::resource("/bot/{id}/test")
                .route(web::get().to(get_test))
                .route(web::post().to(post_test)),
        );
}

/// A problem as the page shows it: where, and what in the reader's language.
#[derive(Debug, Clone)]
pub struct Shown {
    pub path: String,
    pub message: String,
}

fn shown(problems: &[Problem], locale: Locale) -> Vec<Shown> {
    problems
        .iter()
        .map(|p| Shown {
            path: p.path.clone(),
            message: p.message(locale),
        })
        .collect()
}

fn shown_fields(errors: &[FieldError], locale: Locale) -> Vec<Shown> {
    errors
        .iter()
        .map(|e| Shown {
            path: e.path.clone(),
            message: format!("{}: {}", e.path, crate::i18n::t(locale, e.key)),
        })
        .collect()
}

fn supervisor(a: &Authed) -> AppResult<()> {
    a.require(Role::Supervisor)
}

/// The number (its name) and its bot; 404 when there is no such number.
async fn load(state: &AppState, number_id: i64) -> AppResult<(String, service::Current)> {
    Ok(state
        .db
        .read(move |c| {
            let n = crate::whatsapp::numbers::repo::find_number(c, number_id)?.ok_or(AppError::NotFound)?;
            Ok((n.display_name, service::current(c, number_id)?))
        })
        .await?)
}

/// Saves `bot` (validated whole, audited): `Ok(None)` when saved, else what to show.
async fn save(
    state: &AppState,
    a: &Authed,
    number_id: i64,
    bot: Bot,
    summary: String,
) -> AppResult<Option<Vec<Shown>>> {
    let out = service::replace(&state.db, &state.clock, number_id, bot, a.actor(), summary).await?;
    Ok(out.err().map(|p| shown(&p, a.ctx.locale)))
}

// ---- the list of numbers ----------------------------------------------------------------

struct NumberRow {
    id: i64,
    name: String,
    enabled: bool,
    rules: usize,
    flows: usize,
}

#[derive(Template)]
#[template(path = "bot/list.html")]
struct ListPage {
    ctx: RequestCtx,
    rows: Vec<NumberRow>,
}

async fn get_list(state: web::Data<AppState>, a: Authed) -> AppResult<HttpResponse> {
    supervisor(&a)?;
    let rows = state
        .db
        .read(|c| {
            let mut rows = Vec::new();
            for n in crate::whatsapp::numbers::repo::list_numbers(c)? {
                let bot = service::current(c, n.id).map(|b| b.bot).unwrap_or_default();
                rows.push(NumberRow {
                    id: n.id,
                    name: n.display_name,
                    enabled: bot.enabled,
                    rules: bot.rules.len(),
                    flows: bot.flows.len(),
                });
            }
            Ok(rows)
        })
        .await?;
    ok_page(&ListPage { ctx: a.ctx, rows })
}

// ---- the bot page -----------------------------------------------------------------------

struct Agent {
    id: i64,
    name: String,
}

/// A form's problems, and which part of the page they belong to.
#[derive(Default)]
struct Trouble {
    part: &'static str,
    list: Vec<Shown>,
}

#[derive(Template)]
#[template(path = "bot/bot.html")]
struct BotPage {
    ctx: RequestCtx,
    number_id: i64,
    number: String,
    version: i64,
    updated_at: Option<i64>,
    updated_by: String,
    bot: Bot,
    welcome_enabled: bool,
    welcome_days: u32,
    welcome: ReplyView,
    fallback: ActionView,
    hours_on: bool,
    hours: super::document::Hours,
    days: Vec<(&'static str, String)>,
    special: String,
    assign: &'static str,
    agent: i64,
    agents: Vec<Agent>,
    back_words: String,
    cancel_words: String,
    /// Where `next` may lead: the flows, `handoff`, `end`.
    targets: Vec<String>,
    trouble: Trouble,
    import_text: String,
}

impl BotPage {
    fn build(
        ctx: RequestCtx,
        number_id: i64,
        number: String,
        cur: &service::Current,
        bot: Bot,
        agents: Vec<Agent>,
    ) -> BotPage {
        let hours = bot.hours.clone().unwrap_or(super::document::Hours {
            timezone: None,
            weekly: std::collections::BTreeMap::new(),
            holidays: Vec::new(),
            special: std::collections::BTreeMap::new(),
            away_text: String::new(),
            quiet_after_agent_minutes: 5,
            bot_while_closed: true,
        });
        let days = form::DAYS
            .iter()
            .map(|d| {
                let list: Vec<String> = hours
                    .weekly
                    .iter()
                    .filter(|(k, _)| super::hours::weekday(k) == super::hours::weekday(d))
                    .flat_map(|(_, v)| v.clone())
                    .collect();
                (*d, list.join("\n"))
            })
            .collect();
        let (assign, agent) = match bot.handoff.assign {
            Assign::Unassigned => ("unassigned", 0),
            Assign::RoundRobin => ("round_robin", 0),
            Assign::Agent(id) => ("agent", id),
        };
        let welcome = bot.welcome.as_ref();
        BotPage {
            ctx,
            number_id,
            number,
            version: cur.version,
            updated_at: cur.updated_at,
            updated_by: cur.updated_by.clone().unwrap_or_default(),
            welcome_enabled: welcome.is_none_or(|w| w.enabled),
            welcome_days: welcome.map_or(0, |w| w.after_silence_days),
            welcome: ReplyView::of(&welcome.map(|w| w.reply.clone()).unwrap_or_default()),
            fallback: form::action_view(bot.fallback.as_ref()),
            hours_on: bot.hours.is_some(),
            special: form::special_text(&hours.special),
            hours,
            days,
            assign,
            agent,
            agents,
            back_words: bot.guards.back_words.join(", "),
            cancel_words: bot.guards.cancel_words.join(", "),
            targets: targets(&bot, None),
            trouble: Trouble::default(),
            import_text: String::new(),
            bot,
        }
    }

    fn problems(&self, part: &str) -> Option<&Vec<Shown>> {
        (self.trouble.part == part && !self.trouble.list.is_empty()).then_some(&self.trouble.list)
    }

    #[expect(clippy::unused_self, reason = "askama calls it as a method of the page")]
    fn then_label(&self, a: &Action) -> String {
        match a {
            Action::Reply { reply } => reply.text.chars().take(60).collect(),
            Action::Flow { flow } => format!("→ flow:{flow}"),
            Action::Handoff => "→ handoff".into(),
        }
    }

    #[expect(clippy::unused_self, reason = "askama calls it as a method of the page")]
    fn kind_code(&self, r: &Rule) -> &'static str {
        form::match_code(r.kind)
    }
}

/// `flow:<id>` of every flow, the steps of `flow` when inside one, `handoff`, `end`.
fn targets(bot: &Bot, flow: Option<&Flow>) -> Vec<String> {
    let mut out: Vec<String> = flow
        .map(|f| f.steps.iter().map(|s| s.id.clone()).collect())
        .unwrap_or_default();
    out.extend(bot.flows.iter().map(|f| format!("flow:{}", f.id)));
    out.push("handoff".into());
    out.push("end".into());
    out
}

async fn agents(state: &AppState) -> AppResult<Vec<Agent>> {
    Ok(state
        .db
        .read(|c| {
            Ok(crate::auth::repo::list_users(c)?
                .into_iter()
                .filter(|u| u.active)
                .map(|u| Agent { id: u.id, name: u.name })
                .collect())
        })
        .await?)
}

async fn bot_page(state: &AppState, a: Authed, number_id: i64, edited: Option<Bot>) -> AppResult<BotPage> {
    let (number, cur) = load(state, number_id).await?;
    let agents = agents(state).await?;
    let bot = edited.unwrap_or_else(|| cur.bot.clone());
    Ok(BotPage::build(a.ctx, number_id, number, &cur, bot, agents))
}

async fn get_bot(state: web::Data<AppState>, a: Authed, path: web::Path<i64>) -> AppResult<HttpResponse> {
    supervisor(&a)?;
    ok_page(&bot_page(&state, a, path.into_inner(), None).await?)
}

/// One part of the bot page saved: `enabled`, `welcome`, `fallback`, `hours`,
/// `handoff` or `guards`.
async fn post_part(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<(i64, String)>,
    fields: web::Form<Vec<(String, String)>>,
) -> AppResult<HttpResponse> {
    supervisor(&a)?;
    let (number_id, part) = path.into_inner();
    let f = Fields(fields.into_inner());
    let (_, cur) = load(&state, number_id).await?;
    let mut bot = cur.bot;
    let mut errors = Vec::new();
    let part: &'static str = match part.as_str() {
        "enabled" => {
            bot.enabled = f.get("enabled") == "1";
            "enabled"
        }
        "welcome" => {
            bot.welcome = form::welcome(&f, &mut errors);
            "welcome"
        }
        "fallback" => {
            bot.fallback = form::action(&f, "fallback");
            "fallback"
        }
        "hours" => {
            bot.hours = form::hours(&f, &mut errors);
            "hours"
        }
        "handoff" => {
            bot.handoff = form::handoff(&f);
            "handoff"
        }
        "guards" => {
            bot.guards = form::guards(&f, &mut errors);
            "guards"
        }
        _ => return Err(AppError::NotFound),
    };
    let list = if errors.is_empty() {
        let summary = match part {
            "enabled" if bot.enabled => "switched on".to_string(),
            "enabled" => "switched off".to_string(),
            p => format!("changed the {p}"),
        };
        save(&state, &a, number_id, bot.clone(), summary).await?
    } else {
        Some(shown_fields(&errors, a.ctx.locale))
    };
    match list {
        None => Ok(see_other_flash(&format!("/bot/{number_id}#{part}"), "flash.saved")),
        Some(list) => {
            let mut page = bot_page(&state, a, number_id, Some(bot)).await?;
            page.trouble = Trouble { part, list };
            invalid_page(&page)
        }
    }
}

// ---- export and import --------------------------------------------------------------------

async fn get_export(state: web::Data<AppState>, a: Authed, path: web::Path<i64>) -> AppResult<HttpResponse> {
    supervisor(&a)?;
    let number_id = path.into_inner();
    let (_, cur) = load(&state, number_id).await?;
    let json = serde_json::to_string_pretty(&cur.bot).map_err(|e| AppError::internal(e.to_string()))?;
    Ok(HttpResponse::Ok()
        .content_type("application/json; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"bot-{number_id}.json\""),
        ))
        .body(json))
}

#[derive(Deserialize)]
struct ImportForm {
    #[serde(default)]
    document: String,
}

async fn post_import(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<i64>,
    form: web::Form<ImportForm>,
) -> AppResult<HttpResponse> {
    supervisor(&a)?;
    let number_id = path.into_inner();
    let text = form.into_inner().document;
    match service::import(&state.db, &state.clock, number_id, &text, a.actor()).await? {
        Ok(_) => Ok(see_other_flash(&format!("/bot/{number_id}"), "flash.saved")),
        Err(problems) => {
            let list = shown(&problems, a.ctx.locale);
            let mut page = bot_page(&state, a, number_id, None).await?;
            page.trouble = Trouble { part: "import", list };
            page.import_text = text;
            invalid_page(&page)
        }
    }
}

// ---- rules ------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "bot/rule.html")]
struct RulePage {
    ctx: RequestCtx,
    number_id: i64,
    number: String,
    /// The rule's id before this edit (empty: a new rule).
    original: String,
    rule: Rule,
    patterns: String,
    then: ActionView,
    flows: Vec<String>,
    targets: Vec<String>,
    problems: Vec<Shown>,
}

impl RulePage {
    fn new(ctx: RequestCtx, number_id: i64, number: String, bot: &Bot, original: String, rule: Rule) -> RulePage {
        RulePage {
            ctx,
            number_id,
            number,
            original,
            patterns: rule.patterns.join("\n"),
            then: form::action_view(Some(&rule.then)),
            flows: bot.flows.iter().map(|f| f.id.clone()).collect(),
            targets: targets(bot, None),
            rule,
            problems: Vec::new(),
        }
    }

    fn kind(&self) -> &'static str {
        form::match_code(self.rule.kind)
    }
}

fn blank_rule(bot: &Bot) -> Rule {
    let mut n = bot.rules.len() + 1;
    while bot.rules.iter().any(|r| r.id == format!("rule{n}")) {
        n += 1;
    }
    Rule {
        id: format!("rule{n}"),
        name: String::new(),
        enabled: true,
        kind: super::document::MatchKind::Contains,
        patterns: Vec::new(),
        priority: 0,
        active_from: None,
        active_until: None,
        then: Action::Reply {
            reply: super::document::Reply::default(),
        },
    }
}

async fn get_new_rule(state: web::Data<AppState>, a: Authed, path: web::Path<i64>) -> AppResult<HttpResponse> {
    supervisor(&a)?;
    let number_id = path.into_inner();
    let (number, cur) = load(&state, number_id).await?;
    let rule = blank_rule(&cur.bot);
    ok_page(&RulePage::new(a.ctx, number_id, number, &cur.bot, String::new(), rule))
}

async fn get_rule(state: web::Data<AppState>, a: Authed, path: web::Path<(i64, String)>) -> AppResult<HttpResponse> {
    supervisor(&a)?;
    let (number_id, id) = path.into_inner();
    let (number, cur) = load(&state, number_id).await?;
    let rule = cur
        .bot
        .rules
        .iter()
        .find(|r| r.id == id)
        .cloned()
        .ok_or(AppError::NotFound)?;
    ok_page(&RulePage::new(a.ctx, number_id, number, &cur.bot, id, rule))
}

async fn post_new_rule(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<i64>,
    fields: web::Form<Vec<(String, String)>>,
) -> AppResult<HttpResponse> {
    supervisor(&a)?;
    save_rule(&state, a, path.into_inner(), None, Fields(fields.into_inner())).await
}

async fn post_rule(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<(i64, String)>,
    fields: web::Form<Vec<(String, String)>>,
) -> AppResult<HttpResponse> {
    supervisor(&a)?;
    let (number_id, id) = path.into_inner();
    save_rule(&state, a, number_id, Some(id), Fields(fields.into_inner())).await
}

async fn save_rule(
    state: &AppState,
    a: Authed,
    number_id: i64,
    original: Option<String>,
    f: Fields,
) -> AppResult<HttpResponse> {
    let (number, cur) = load(state, number_id).await?;
    let mut bot = cur.bot;
    let mut errors = Vec::new();
    let rule = form::rule(&f, &mut errors);
    let index = match &original {
        Some(id) => Some(bot.rules.iter().position(|r| &r.id == id).ok_or(AppError::NotFound)?),
        None => None,
    };
    let path = index.unwrap_or(bot.rules.len());
    match index {
        Some(i) => bot.rules[i] = rule.clone(),
        None => bot.rules.push(rule.clone()),
    }
    let mut list = shown_fields(&errors, a.ctx.locale);
    if list.is_empty() {
        let summary = match &original {
            Some(_) => format!("changed rule {}", rule.id),
            None => format!("added rule {}", rule.id),
        };
        match save(state, &a, number_id, bot.clone(), summary).await? {
            None => return Ok(see_other_flash(&format!("/bot/{number_id}#rules"), "flash.saved")),
            Some(l) => list = l,
        }
    }
    // The rule's own problems first, by the place the form shows.
    let own = format!("rules[{path}]");
    list.sort_by_key(|p| !p.path.starts_with(&own));
    let mut page = RulePage::new(a.ctx, number_id, number, &bot, original.unwrap_or_default(), rule);
    page.problems = list;
    invalid_page(&page)
}

async fn post_rule_toggle(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<(i64, String)>,
) -> AppResult<HttpResponse> {
    supervisor(&a)?;
    let (number_id, id) = path.into_inner();
    let (_, cur) = load(&state, number_id).await?;
    let mut bot = cur.bot;
    let rule = bot.rules.iter_mut().find(|r| r.id == id).ok_or(AppError::NotFound)?;
    rule.enabled = !rule.enabled;
    let summary = format!("switched rule {id} {}", if rule.enabled { "on" } else { "off" });
    refused_or_back(&state, &a, number_id, bot, summary, "rules").await
}

async fn post_rule_delete(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<(i64, String)>,
) -> AppResult<HttpResponse> {
    supervisor(&a)?;
    let (number_id, id) = path.into_inner();
    let (_, cur) = load(&state, number_id).await?;
    let mut bot = cur.bot;
    let before = bot.rules.len();
    bot.rules.retain(|r| r.id != id);
    if bot.rules.len() == before {
        return Err(AppError::NotFound);
    }
    refused_or_back(&state, &a, number_id, bot, format!("deleted rule {id}"), "rules").await
}

/// Saves a change made by a button (switch, delete): back to the bot page, or the page
/// with the problems (a flow deleted that a rule still starts).
async fn refused_or_back(
    state: &AppState,
    a: &Authed,
    number_id: i64,
    bot: Bot,
    summary: String,
    part: &'static str,
) -> AppResult<HttpResponse> {
    match save(state, a, number_id, bot, summary).await? {
        None => Ok(see_other_flash(&format!("/bot/{number_id}#{part}"), "flash.saved")),
        Some(list) => {
            let mut page = bot_page(state, a.clone(), number_id, None).await?;
            page.trouble = Trouble { part, list };
            invalid_page(&page)
        }
    }
}

// ---- flows --------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "bot/flow.html")]
struct FlowPage {
    ctx: RequestCtx,
    number_id: i64,
    number: String,
    original: String,
    flow: Flow,
    /// The steps' editors, and one blank row for a new step.
    steps: Vec<StepView>,
    targets: Vec<String>,
    json: String,
    problems: Vec<Shown>,
}

impl FlowPage {
    fn new(ctx: RequestCtx, number_id: i64, number: String, bot: &Bot, original: String, flow: Flow) -> FlowPage {
        let mut steps: Vec<StepView> = flow.steps.iter().map(StepView::of).collect();
        steps.push(StepView::blank());
        FlowPage {
            ctx,
            number_id,
            number,
            original,
            json: serde_json::to_string_pretty(&flow).unwrap_or_default(),
            targets: targets(bot, Some(&flow)),
            flow,
            steps,
            problems: Vec::new(),
        }
    }

    /// The reply editor's prefix of step `i`.
    #[expect(clippy::unused_self, reason = "askama calls it as a method of the page")]
    #[expect(
        clippy::trivially_copy_pass_by_ref,
        reason = "askama passes a loop variable by reference"
    )]
    fn rp(&self, i: &usize) -> String {
        format!("s{i}.r")
    }

    fn action(&self) -> String {
        if self.original.is_empty() {
            format!("/bot/{}/flows/new", self.number_id)
        } else {
            format!("/bot/{}/flows/{}", self.number_id, self.original)
        }
    }
}

async fn get_new_flow(state: web::Data<AppState>, a: Authed, path: web::Path<i64>) -> AppResult<HttpResponse> {
    supervisor(&a)?;
    let number_id = path.into_inner();
    let (number, cur) = load(&state, number_id).await?;
    let mut n = cur.bot.flows.len() + 1;
    while cur.bot.flows.iter().any(|f| f.id == format!("flow{n}")) {
        n += 1;
    }
    let flow = Flow {
        id: format!("flow{n}"),
        name: String::new(),
        enabled: true,
        steps: Vec::new(),
    };
    ok_page(&FlowPage::new(a.ctx, number_id, number, &cur.bot, String::new(), flow))
}

async fn get_flow(state: web::Data<AppState>, a: Authed, path: web::Path<(i64, String)>) -> AppResult<HttpResponse> {
    supervisor(&a)?;
    let (number_id, id) = path.into_inner();
    let (number, cur) = load(&state, number_id).await?;
    let flow = cur
        .bot
        .flows
        .iter()
        .find(|f| f.id == id)
        .cloned()
        .ok_or(AppError::NotFound)?;
    ok_page(&FlowPage::new(a.ctx, number_id, number, &cur.bot, id, flow))
}

async fn post_new_flow(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<i64>,
    fields: web::Form<Vec<(String, String)>>,
) -> AppResult<HttpResponse> {
    supervisor(&a)?;
    let f = Fields(fields.into_inner());
    let mut errors = Vec::new();
    let flow = form::flow(&f, &mut errors);
    save_flow(&state, a, path.into_inner(), None, flow, errors).await
}

async fn post_flow(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<(i64, String)>,
    fields: web::Form<Vec<(String, String)>>,
) -> AppResult<HttpResponse> {
    supervisor(&a)?;
    let (number_id, id) = path.into_inner();
    let f = Fields(fields.into_inner());
    let mut errors = Vec::new();
    let flow = form::flow(&f, &mut errors);
    save_flow(&state, a, number_id, Some(id), flow, errors).await
}

#[derive(Deserialize)]
struct FlowJson {
    #[serde(default)]
    json: String,
}

/// The advanced editor: the whole flow as JSON.
async fn post_flow_json(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<(i64, String)>,
    form: web::Form<FlowJson>,
) -> AppResult<HttpResponse> {
    supervisor(&a)?;
    let (number_id, id) = path.into_inner();
    let text = form.into_inner().json;
    match serde_json::from_str::<Flow>(&text) {
        Ok(flow) => save_flow(&state, a, number_id, Some(id), flow, Vec::new()).await,
        Err(e) => {
            let (number, cur) = load(&state, number_id).await?;
            let flow = cur
                .bot
                .flows
                .iter()
                .find(|f| f.id == id)
                .cloned()
                .ok_or(AppError::NotFound)?;
            let mut page = FlowPage::new(a.ctx.clone(), number_id, number, &cur.bot, id, flow);
            page.problems = shown(
                &[Problem {
                    path: String::new(),
                    key: "json",
                    detail: e.to_string(),
                }],
                a.ctx.locale,
            );
            page.json = text;
            invalid_page(&page)
        }
    }
}

async fn save_flow(
    state: &AppState,
    a: Authed,
    number_id: i64,
    original: Option<String>,
    flow: Flow,
    errors: Vec<FieldError>,
) -> AppResult<HttpResponse> {
    let (number, cur) = load(state, number_id).await?;
    let mut bot = cur.bot;
    let index = match &original {
        Some(id) => Some(bot.flows.iter().position(|f| &f.id == id).ok_or(AppError::NotFound)?),
        None => None,
    };
    let at = index.unwrap_or(bot.flows.len());
    match index {
        Some(i) => {
            // A renamed flow: what led to it follows.
            let old = bot.flows[i].id.clone();
            if old != flow.id {
                rename_flow(&mut bot, &old, &flow.id);
            }
            bot.flows[i] = flow.clone();
        }
        None => bot.flows.push(flow.clone()),
    }
    let placed: Vec<FieldError> = errors
        .iter()
        .map(|e| FieldError {
            path: format!("flows[{at}].{}", e.path),
            key: e.key,
        })
        .collect();
    let mut list = shown_fields(&placed, a.ctx.locale);
    if list.is_empty() {
        let summary = match &original {
            Some(_) => format!("changed flow {}", flow.id),
            None => format!("added flow {}", flow.id),
        };
        match save(state, &a, number_id, bot.clone(), summary).await? {
            None => {
                return Ok(see_other_flash(
                    &format!("/bot/{number_id}/flows/{}", flow.id),
                    "flash.saved",
                ));
            }
            Some(l) => list = l,
        }
    }
    let own = format!("flows[{at}]");
    list.sort_by_key(|p| !p.path.starts_with(&own));
    let mut page = FlowPage::new(a.ctx, number_id, number, &bot, original.unwrap_or_default(), flow);
    page.problems = list;
    invalid_page(&page)
}

/// Every `flow:<old>` in the document (rules, fallback, welcome, choices) now says
/// `flow:<new>`.
fn rename_flow(bot: &mut Bot, old: &str, new: &str) {
    let (from, to) = (format!("flow:{old}"), format!("flow:{new}"));
    let fix_reply = |r: &mut super::document::Reply| {
        for c in &mut r.choices {
            if c.next == from {
                c.next.clone_from(&to);
            }
        }
    };
    let fix_action = |a: &mut Action| match a {
        Action::Flow { flow } if flow == old => *flow = new.to_string(),
        Action::Reply { reply } => fix_reply(reply),
        _ => {}
    };
    if let Some(w) = &mut bot.welcome {
        fix_reply(&mut w.reply);
    }
    for r in &mut bot.rules {
        fix_action(&mut r.then);
    }
    if let Some(a) = &mut bot.fallback {
        fix_action(a);
    }
    for f in &mut bot.flows {
        for s in &mut f.steps {
            match &mut s.kind {
                super::document::StepKind::Message { reply, next } => {
                    fix_reply(reply);
                    if *next == from {
                        next.clone_from(&to);
                    }
                }
                super::document::StepKind::Menu { reply } => fix_reply(reply),
                super::document::StepKind::Ask { next, .. } if *next == from => next.clone_from(&to),
                _ => {}
            }
        }
    }
}

async fn post_flow_toggle(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<(i64, String)>,
) -> AppResult<HttpResponse> {
    supervisor(&a)?;
    let (number_id, id) = path.into_inner();
    let (_, cur) = load(&state, number_id).await?;
    let mut bot = cur.bot;
    let flow = bot.flows.iter_mut().find(|f| f.id == id).ok_or(AppError::NotFound)?;
    flow.enabled = !flow.enabled;
    let summary = format!("switched flow {id} {}", if flow.enabled { "on" } else { "off" });
    refused_or_back(&state, &a, number_id, bot, summary, "flows").await
}

async fn post_flow_delete(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<(i64, String)>,
) -> AppResult<HttpResponse> {
    supervisor(&a)?;
    let (number_id, id) = path.into_inner();
    let (_, cur) = load(&state, number_id).await?;
    let mut bot = cur.bot;
    let before = bot.flows.len();
    bot.flows.retain(|f| f.id != id);
    if bot.flows.len() == before {
        return Err(AppError::NotFound);
    }
    refused_or_back(&state, &a, number_id, bot, format!("deleted flow {id}"), "flows").await
}

// ---- the test chat ----------------------------------------------------------------------

/// One line of the test chat.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Turn {
    /// `you` or `bot`.
    pub who: String,
    pub text: String,
    /// Buttons or list rows: (id, title, description).
    #[serde(default)]
    pub choices: Vec<(String, String, String)>,
    #[serde(default)]
    pub media: String,
    /// The decision (on the tester's lines): kinds, details, stored, hand-off.
    #[serde(default)]
    pub kinds: String,
    #[serde(default)]
    pub details: String,
    #[serde(default)]
    pub stored: Vec<String>,
    #[serde(default)]
    pub handoff: String,
}

/// At most this many lines are carried (the form has a size limit).
const TRANSCRIPT_MAX: usize = 40;

#[derive(Template)]
#[template(path = "bot/test.html")]
struct TestPage {
    ctx: RequestCtx,
    number_id: i64,
    number: String,
    enabled: bool,
    transcript: Vec<Turn>,
    session_json: String,
    transcript_json: String,
    session: Session,
    /// The last bot line's choices, to press.
    choices: Vec<(String, String, String)>,
    reset: bool,
}

#[derive(Deserialize, Default)]
struct TestForm {
    #[serde(default)]
    session: String,
    #[serde(default)]
    transcript: String,
    #[serde(default)]
    text: String,
    /// The id of a button or row pressed.
    #[serde(default)]
    choice: String,
    #[serde(default)]
    reset: String,
}

fn test_page(
    ctx: RequestCtx,
    number_id: i64,
    number: String,
    enabled: bool,
    session: Session,
    transcript: Vec<Turn>,
    reset: bool,
) -> TestPage {
    let choices = transcript
        .iter()
        .rev()
        .take_while(|t| t.who == "bot")
        .find(|t| !t.choices.is_empty())
        .map(|t| t.choices.clone())
        .unwrap_or_default();
    TestPage {
        ctx,
        number_id,
        number,
        enabled,
        session_json: serde_json::to_string(&session).unwrap_or_default(),
        transcript_json: serde_json::to_string(&transcript).unwrap_or_default(),
        session,
        choices,
        transcript,
        reset,
    }
}

async fn get_test(state: web::Data<AppState>, a: Authed, path: web::Path<i64>) -> AppResult<HttpResponse> {
    supervisor(&a)?;
    let number_id = path.into_inner();
    let (number, cur) = load(&state, number_id).await?;
    ok_page(&test_page(
        a.ctx,
        number_id,
        number,
        cur.bot.enabled,
        Session::default(),
        Vec::new(),
        false,
    ))
}

/// The tester's line and the bot's answer as transcript lines.
fn turns(you: &str, d: &Decision) -> Vec<Turn> {
    let mut out = vec![Turn {
        who: "you".into(),
        text: you.to_string(),
        kinds: d.kinds(),
        details: d.details(),
        stored: d.store.iter().map(|(k, v)| format!("{k}: {v}")).collect(),
        handoff: d.handoff.clone().unwrap_or_default(),
        ..Turn::default()
    }];
    for r in &d.say {
        out.push(Turn {
            who: "bot".into(),
            text: r.text.clone(),
            choices: r
                .choices
                .iter()
                .map(|c| (c.id.clone(), c.title.clone(), c.description.clone()))
                .collect(),
            media: r.media.as_ref().map(|m| m.link.clone()).unwrap_or_default(),
            ..Turn::default()
        });
    }
    out
}

async fn post_test(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<i64>,
    form: web::Form<TestForm>,
) -> AppResult<HttpResponse> {
    supervisor(&a)?;
    let number_id = path.into_inner();
    let f = form.into_inner();
    let (number, cur) = load(&state, number_id).await?;
    if !f.reset.is_empty() {
        return ok_page(&test_page(
            a.ctx,
            number_id,
            number,
            cur.bot.enabled,
            Session::default(),
            Vec::new(),
            false,
        ));
    }
    // What the page carried; anything that does not read (or was tampered with into
    // something else) starts a fresh session.
    let carried: Option<(Session, Vec<Turn>)> = serde_json::from_str::<Session>(&f.session)
        .ok()
        .zip(serde_json::from_str::<Vec<Turn>>(&f.transcript).ok());
    let reset = carried.is_none() && !(f.session.is_empty() && f.transcript.is_empty());
    let (mut session, mut transcript) = carried.unwrap_or_default();
    let choice = f.choice.trim().to_string();
    // A pressed button says its title, as WhatsApp shows it (the id is what counts).
    let text = if choice.is_empty() {
        f.text.trim().to_string()
    } else {
        transcript
            .iter()
            .rev()
            .flat_map(|t| t.choices.iter())
            .find(|(id, ..)| *id == choice)
            .map_or_else(|| choice.clone(), |(_, title, _)| title.clone())
    };
    if choice.is_empty() && text.is_empty() {
        return ok_page(&test_page(
            a.ctx,
            number_id,
            number,
            cur.bot.enabled,
            session,
            transcript,
            reset,
        ));
    }
    let first = transcript.is_empty();
    let now = state.now();
    let (said, text_in) = (text.clone(), text);
    let (decision, session) = state
        .db
        .read(move |c| {
            let input = Input {
                kind: if choice.is_empty() { "text" } else { "interactive" },
                text: &text_in,
                reply_id: (!choice.is_empty()).then_some(choice.as_str()),
            };
            let d = service::test_turn(c, number_id, &mut session, first, input, now)?;
            Ok((d, session))
        })
        .await?;
    transcript.extend(turns(&said, &decision));
    if transcript.len() > TRANSCRIPT_MAX {
        transcript.drain(..transcript.len() - TRANSCRIPT_MAX);
    }
    ok_page(&test_page(
        a.ctx,
        number_id,
        number,
        cur.bot.enabled,
        session,
        transcript,
        reset,
    ))
}

// ---- activity ---------------------------------------------------------------------------------

const PAGE: i64 = 50;

#[derive(Deserialize, Default)]
struct ActivityQuery {
    #[serde(default, deserialize_with = "crate::web::empty_as_none")]
    number: Option<i64>,
    #[serde(default)]
    kind: String,
    /// `YYYY-MM-DD`, in the business's zone.
    #[serde(default)]
    since: String,
    #[serde(default, deserialize_with = "crate::web::empty_as_none")]
    before: Option<i64>,
}

/// Decision kinds the filter offers.
pub const KINDS: [&str; 19] = [
    "welcome",
    "rule",
    "choice",
    "flow",
    "answer",
    "invalid",
    "away",
    "closed",
    "fallback",
    "no_match",
    "handoff",
    "cancel",
    "back",
    "timeout",
    "handed_off",
    "outside_window",
    "rate_guard",
    "opted_out",
    "off",
];

#[derive(Template)]
#[template(path = "bot/activity.html")]
struct ActivityPage {
    ctx: RequestCtx,
    numbers: Vec<(i64, String)>,
    number: Option<i64>,
    kind: String,
    since: String,
    rows: Vec<super::LogRow>,
    next: Option<i64>,
    bad_since: bool,
}

impl ActivityPage {
    #[expect(
        clippy::trivially_copy_pass_by_ref,
        reason = "askama passes a loop variable by reference"
    )]
    fn is_number(&self, id: &i64) -> bool {
        self.number == Some(*id)
    }

    #[expect(clippy::trivially_copy_pass_by_ref, reason = "askama passes a field by reference")]
    fn next_href(&self, before: &i64) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if let Some(n) = self.number {
            q.append_pair("number", &n.to_string());
        }
        q.append_pair("kind", &self.kind);
        q.append_pair("since", &self.since);
        q.append_pair("before", &before.to_string());
        format!("/bot/activity?{}", q.finish())
    }

    #[expect(clippy::unused_self, reason = "askama calls it as a method of the page")]
    fn kinds(&self) -> &'static [&'static str] {
        &KINDS
    }

    #[expect(clippy::unused_self, reason = "askama calls it as a method of the page")]
    fn stored_lines(&self, s: &str) -> Vec<String> {
        s.lines().filter(|l| !l.is_empty()).map(String::from).collect()
    }
}

async fn get_activity(state: web::Data<AppState>, a: Authed, q: web::Query<ActivityQuery>) -> AppResult<HttpResponse> {
    supervisor(&a)?;
    let q = q.into_inner();
    let tz = a.ctx.timezone.unwrap_or(chrono_tz::UTC);
    let since = q.since.trim().to_string();
    let since_at = super::engine::parse_date(&since)
        .and_then(|d| chrono::TimeZone::from_local_datetime(&tz, &d.and_hms_opt(0, 0, 0)?).earliest())
        .map(|t| t.timestamp());
    let bad_since = !since.is_empty() && since_at.is_none();
    let kind = q.kind.trim().to_string();
    let filter = super::LogFilter {
        number_id: q.number,
        conversation_id: None,
        decision: (!kind.is_empty()).then(|| kind.clone()),
        since: since_at,
        before: q.before,
    };
    let (numbers, mut rows) = state
        .db
        .read(move |c| {
            let numbers = crate::whatsapp::numbers::repo::list_numbers(c)?
                .into_iter()
                .map(|n| (n.id, n.display_name))
                .collect::<Vec<_>>();
            Ok((numbers, super::list_log(c, &filter, PAGE + 1)?))
        })
        .await?;
    let more = rows.len() > usize::try_from(PAGE).unwrap_or(50);
    rows.truncate(usize::try_from(PAGE).unwrap_or(50));
    let next = if more { rows.last().map(|r| r.id) } else { None };
    ok_page(&ActivityPage {
        ctx: a.ctx,
        numbers,
        number: q.number,
        kind,
        since,
        rows,
        next,
        bad_since,
    })
}
