//! Connecting WhatsApp Business numbers (admins): the ids Meta gives, the access token
//! and app secret (write-only: never shown back or logged), a generated verify token,
//! the messages-per-second limit, and the callback URL to paste into Meta's dashboard.

use super::repo::{self, NewNumber, Number};
use crate::app::AppState;
use crate::audit;
use crate::crypto;
use crate::error::{AppError, AppResult};
use crate::web::{Admin, FormErrors, RequestCtx, invalid_page, ok_page, see_other_flash};
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/admin/whatsapp")
            .route(web::get().to(get_numbers))
            .route(web::post().to(post_numbers)),
    )
    .service(
        web::resource("/admin/whatsapp/{id}")
            .route(web::get().to(get_number))
            .route(web::post().to(post_number)),
    )
    .service(web::resource("/admin/whatsapp/{id}/delete").route(web::post().to(post_delete)))
    .service(web::resource("/admin/whatsapp/{id}/test").route(web::post().to(post_test)))
    .service(web::resource("/admin/whatsapp/{id}/outbox").route(web::get().to(get_outbox)))
    .service(web::resource("/admin/whatsapp/{id}/subscribe").route(web::post().to(post_subscribe)))
    .service(web::resource("/admin/whatsapp/deliveries/{id}/retry").route(web::post().to(post_retry_delivery)))
    .service(web::resource("/admin/whatsapp/{id}/resume").route(web::post().to(post_resume)))
    .service(web::resource("/admin/whatsapp/{id}/templates/sync").route(web::post().to(post_sync_templates)));
}

#[derive(Deserialize, Default, Clone)]
pub struct NumberForm {
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    phone_number_id: String,
    #[serde(default)]
    waba_id: String,
    #[serde(default)]
    business_manager_id: String,
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    app_secret: String,
    #[serde(default)]
    mps: String,
    /// Needed for media headers in templates made here (Resumable Upload API).
    #[serde(default)]
    meta_app_id: String,
}

impl NumberForm {
    fn from_number(n: &Number) -> NumberForm {
        NumberForm {
            display_name: n.display_name.clone(),
            phone_number_id: n.phone_number_id.clone(),
            waba_id: n.waba_id.clone(),
            business_manager_id: n.business_manager_id.clone(),
            access_token: String::new(),
            app_secret: String::new(),
            mps: n.mps.to_string(),
            meta_app_id: n.meta_app_id.clone(),
        }
    }

    /// Checks the form; secrets are required when adding, optional when editing.
    fn validate(&mut self, adding: bool) -> (FormErrors, i64) {
        let mut errors = FormErrors::default();
        for s in [
            &mut self.display_name,
            &mut self.phone_number_id,
            &mut self.waba_id,
            &mut self.business_manager_id,
            &mut self.meta_app_id,
        ] {
            *s = s.trim().to_string();
        }
        self.access_token = self.access_token.trim().to_string();
        self.app_secret = self.app_secret.trim().to_string();
        if self.display_name.is_empty() || self.display_name.chars().count() > 100 {
            errors.add("display_name", "form.name_required");
        }
        let meta_id = |s: &str| (5..=30).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
        if !meta_id(&self.phone_number_id) {
            errors.add("phone_number_id", "whatsapp.id_invalid");
        }
        if !meta_id(&self.waba_id) {
            errors.add("waba_id", "whatsapp.id_invalid");
        }
        if !meta_id(&self.business_manager_id) {
            errors.add("business_manager_id", "whatsapp.id_invalid");
        }
        if !self.meta_app_id.is_empty() && !meta_id(&self.meta_app_id) {
            errors.add("meta_app_id", "whatsapp.id_invalid");
        }
        let secret_ok = |s: &str| s.len() <= 1024 && !s.contains(char::is_whitespace);
        if (adding && self.access_token.is_empty()) || !secret_ok(&self.access_token) {
            errors.add("access_token", "whatsapp.token_required");
        }
        if (adding && self.app_secret.is_empty()) || !secret_ok(&self.app_secret) {
            errors.add("app_secret", "whatsapp.secret_required");
        }
        let mps = self.mps.trim().parse::<i64>().ok().filter(|m| (1..=1000).contains(m));
        if mps.is_none() {
            errors.add("mps", "whatsapp.mps_invalid");
        }
        (errors, mps.unwrap_or(80))
    }

    fn as_new<'a>(&'a self, verify_token: &'a str, mps: i64) -> NewNumber<'a> {
        NewNumber {
            display_name: &self.display_name,
            phone_number_id: &self.phone_number_id,
            waba_id: &self.waba_id,
            business_manager_id: &self.business_manager_id,
            access_token: &self.access_token,
            app_secret: &self.app_secret,
            verify_token,
            mps,
            meta_app_id: &self.meta_app_id,
        }
    }

    /// The form as re-shown after an error: secrets are never echoed back.
    fn without_secrets(mut self) -> NumberForm {
        self.access_token.clear();
        self.app_secret.clear();
        self
    }
}

#[derive(Template)]
#[template(path = "whatsapp/numbers.html")]
struct NumbersPage {
    ctx: RequestCtx,
    numbers: Vec<Number>,
    callback_url: String,
    self_signed: bool,
    inbox: crate::whatsapp::deliveries::DeliveryStats,
    quarantined: Vec<crate::whatsapp::deliveries::Quarantined>,
    form: NumberForm,
    errors: FormErrors,
}

#[derive(Template)]
#[template(path = "whatsapp/number.html")]
struct NumberPage {
    ctx: RequestCtx,
    number: Number,
    callback_url: String,
    form: NumberForm,
    errors: FormErrors,
    result: Option<GraphResult>,
    /// Template, quality and account news Meta sent for this number's account.
    news: Vec<repo::News>,
    /// Outbox rows by state (queued, sent, failed, needs_review...).
    outbox: Vec<(&'static str, i64)>,
    /// The account's message templates, as last synced.
    templates: Vec<crate::whatsapp::templates::Template>,
}

/// The number's page, with the latest news from Meta about its account.
async fn number_page(
    state: &AppState,
    ctx: RequestCtx,
    number: Number,
    form: NumberForm,
    errors: FormErrors,
    result: Option<GraphResult>,
) -> AppResult<NumberPage> {
    let (waba, phone) = (number.waba_id.clone(), number.phone_number_id.clone());
    let id = number.id;
    let (news, counts, templates) = state
        .db
        .read(move |c| {
            Ok((
                repo::list_news(c, &waba, &phone)?,
                crate::whatsapp::outbox::count_by_state(c, id)?,
                crate::whatsapp::templates::list_for_waba(c, &waba)?,
            ))
        })
        .await?;
    let outbox = counts.into_iter().map(|(st, n)| (st.as_str(), n)).collect();
    Ok(NumberPage {
        ctx,
        callback_url: callback_url(state),
        number,
        form,
        errors,
        result,
        news,
        outbox,
        templates,
    })
}

/// The outcome of "Test connection" or "Subscribe", shown on the number's page.
pub enum GraphResult {
    Phone(crate::whatsapp::graph::PhoneInfo),
    Subscribed,
    Failed {
        code: Option<i64>,
        /// What went wrong in plain words (`whatsapp.why.*`); Meta's text is `message`.
        why: &'static str,
        message: String,
        hint: &'static str,
    },
}

impl GraphResult {
    fn failed(e: &crate::whatsapp::graph::GraphError) -> GraphResult {
        use crate::whatsapp::graph::{ErrorClass, GraphError};
        let code = match e {
            GraphError::Api { code, .. } => Some(*code),
            GraphError::Transport(_) => None,
        };
        let hint = match e.class() {
            ErrorClass::StopChannel => "whatsapp.hint_token",
            ErrorClass::Retry | ErrorClass::RetryLater => "whatsapp.hint_retry",
            ErrorClass::Final => "whatsapp.hint_check_ids",
        };
        GraphResult::Failed {
            code,
            why: crate::whatsapp::graph::plain_reason(code),
            message: e.to_string(),
            hint,
        }
    }
}

impl NumbersPage {
    fn received(&self) -> String {
        self.ctx
            .tf("whatsapp.received", &[("n", &self.inbox.received.to_string())])
    }
}

fn callback_url(state: &AppState) -> String {
    format!("{}/webhooks/whatsapp", state.base_url())
}

fn self_signed(state: &AppState) -> bool {
    state
        .tls
        .as_ref()
        .and_then(|t| t.info())
        .is_some_and(|i| i.mode_is_self_signed())
}

async fn numbers_page(
    state: &AppState,
    ctx: RequestCtx,
    form: NumberForm,
    errors: FormErrors,
) -> AppResult<NumbersPage> {
    let (numbers, inbox, quarantined) = state
        .db
        .read(|c| {
            Ok((
                repo::list_numbers(c)?,
                crate::whatsapp::deliveries::delivery_stats(c)?,
                crate::whatsapp::deliveries::list_quarantined(c)?,
            ))
        })
        .await?;
    Ok(NumbersPage {
        ctx,
        numbers,
        callback_url: callback_url(state),
        self_signed: self_signed(state),
        inbox,
        quarantined,
        form,
        errors,
    })
}

async fn get_numbers(state: web::Data<AppState>, Admin(a): Admin) -> AppResult<HttpResponse> {
    let form = NumberForm {
        mps: "80".into(),
        ..Default::default()
    };
    ok_page(&numbers_page(&state, a.ctx, form, FormErrors::default()).await?)
}

/// Saves, audits and refreshes the in-memory webhook keys in one go.
async fn save(
    state: &web::Data<AppState>,
    a: &crate::web::Authed,
    id: Option<i64>,
    form: NumberForm,
    mps: i64,
) -> AppResult<i64> {
    let (now, actor) = (state.now(), a.actor());
    // New numbers get a verify token; an update keeps the existing one.
    let verify_token = crypto::random_token(24);
    let id_given = id.is_some();
    let saved = state
        .db
        .write(move |c| {
            if repo::phone_number_id_taken(c, &form.phone_number_id, id)? {
                return Ok(None);
            }
            let new = form.as_new(&verify_token, mps);
            let id = match id {
                Some(id) => {
                    if repo::update_number(c, id, &new, now)? == 0 {
                        return Err(AppError::NotFound.into());
                    }
                    id
                }
                None => repo::insert_number(c, &new, now)?,
            };
            // Deliveries that came before the number was connected are processed now.
            crate::whatsapp::deliveries::release_waiting_for(c, &form.phone_number_id)?;
            let what = if form.access_token.is_empty() && form.app_secret.is_empty() {
                ""
            } else {
                "secrets set"
            };
            let action = if id_given {
                "whatsapp.number_update"
            } else {
                "whatsapp.number_add"
            };
            audit::record(
                c,
                &actor,
                action,
                &format!("number:{id} {}", form.phone_number_id),
                what,
                now,
            )?;
            Ok(Some(id))
        })
        .await?;
    reload_keys(state).await?;
    state.deliveries_bell.ring();
    saved.ok_or(AppError::BadRequest("whatsapp.number_taken"))
}

/// Webhook deliveries are checked against the keys in memory: refresh them after a change.
async fn reload_keys(state: &web::Data<AppState>) -> AppResult<()> {
    let st = state.clone();
    Ok(state.db.read(move |c| Ok(st.webhook_keys.reload(c)?)).await?)
}

async fn post_numbers(
    state: web::Data<AppState>,
    Admin(a): Admin,
    form: web::Form<NumberForm>,
) -> AppResult<HttpResponse> {
    let mut form = form.into_inner();
    let (mut errors, mps) = form.validate(true);
    if errors.is_empty() {
        match save(&state, &a, None, form.clone(), mps).await {
            Ok(id) => return Ok(see_other_flash(&format!("/admin/whatsapp/{id}"), "flash.number_saved")),
            Err(AppError::BadRequest(key)) => errors.add("phone_number_id", key),
            Err(e) => return Err(e),
        }
    }
    invalid_page(&numbers_page(&state, a.ctx, form.without_secrets(), errors).await?)
}

async fn load_number(state: &AppState, id: i64) -> AppResult<Number> {
    state
        .db
        .read(move |c| Ok(repo::find_number(c, id)?))
        .await?
        .ok_or(AppError::NotFound)
}

#[derive(Template)]
#[template(path = "whatsapp/outbox.html")]
struct OutboxPage {
    ctx: RequestCtx,
    number: Number,
    state: &'static str,
    rows: Vec<crate::whatsapp::outbox::Listed>,
}

impl OutboxPage {
    fn title(&self) -> String {
        let state = self.ctx.label("outbox", self.state);
        self.ctx.tf(
            "whatsapp.outbox_title",
            &[("state", &state), ("number", &self.number.display_name)],
        )
    }
}

#[derive(Deserialize)]
pub struct OutboxQuery {
    #[serde(default)]
    state: String,
}

/// The messages behind one of the number page's counts (failed, waiting, to check...),
/// each with its reason and a way to its conversation.
async fn get_outbox(
    state: web::Data<AppState>,
    Admin(a): Admin,
    path: web::Path<i64>,
    q: web::Query<OutboxQuery>,
) -> AppResult<HttpResponse> {
    use crate::whatsapp::outbox::{self, OutboxState};
    let number = load_number(&state, path.into_inner()).await?;
    let st = OutboxState::parse(&q.state).ok_or(AppError::BadRequest("whatsapp.outbox_state_unknown"))?;
    let id = number.id;
    let rows = state
        .db
        .read(move |c| Ok(outbox::list_in_state(c, id, st, 200)?))
        .await?;
    ok_page(&OutboxPage {
        ctx: a.ctx,
        number,
        state: st.as_str(),
        rows,
    })
}

async fn get_number(state: web::Data<AppState>, Admin(a): Admin, path: web::Path<i64>) -> AppResult<HttpResponse> {
    let number = load_number(&state, path.into_inner()).await?;
    let form = NumberForm::from_number(&number);
    ok_page(&number_page(&state, a.ctx, number, form, FormErrors::default(), None).await?)
}

async fn post_number(
    state: web::Data<AppState>,
    Admin(a): Admin,
    path: web::Path<i64>,
    form: web::Form<NumberForm>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let number = load_number(&state, id).await?;
    let mut form = form.into_inner();
    let (mut errors, mps) = form.validate(false);
    if errors.is_empty() {
        match save(&state, &a, Some(id), form.clone(), mps).await {
            Ok(_) => return Ok(see_other_flash(&format!("/admin/whatsapp/{id}"), "flash.number_saved")),
            Err(AppError::BadRequest(key)) => errors.add("phone_number_id", key),
            Err(e) => return Err(e),
        }
    }
    let page = number_page(&state, a.ctx, number, form.without_secrets(), errors, None).await?;
    invalid_page(&page)
}

async fn post_delete(state: web::Data<AppState>, Admin(a): Admin, path: web::Path<i64>) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let (now, actor) = (state.now(), a.actor());
    state
        .db
        .write(move |c| {
            let n = repo::find_number(c, id)?.ok_or(AppError::NotFound)?;
            repo::delete_number(c, id)?;
            audit::record(
                c,
                &actor,
                "whatsapp.number_delete",
                &format!("number:{id} {}", n.phone_number_id),
                "",
                now,
            )?;
            Ok(())
        })
        .await?;
    reload_keys(&state).await?;
    Ok(see_other_flash("/admin/whatsapp", "flash.number_deleted"))
}

/// The number and the credentials a Graph call needs.
async fn credentials(state: &web::Data<AppState>, id: i64) -> AppResult<(Number, repo::Credentials)> {
    let number = load_number(state, id).await?;
    let creds = state
        .db
        .read(move |c| Ok(repo::find_credentials(c, id)?))
        .await?
        .ok_or(AppError::NotFound)?;
    Ok((number, creds))
}

/// The number's page with the outcome of a Graph call.
async fn result_page(
    state: &AppState,
    ctx: RequestCtx,
    number: Number,
    result: GraphResult,
) -> AppResult<HttpResponse> {
    let form = NumberForm::from_number(&number);
    ok_page(&number_page(state, ctx, number, form, FormErrors::default(), Some(result)).await?)
}

/// "Test connection": reads the number from the Graph API.
async fn post_test(state: web::Data<AppState>, Admin(a): Admin, path: web::Path<i64>) -> AppResult<HttpResponse> {
    let (number, creds) = credentials(&state, path.into_inner()).await?;
    let token = creds.access_token.expose();
    let result = match state.graph.phone_number(&creds.phone_number_id, token).await {
        Ok(info) => GraphResult::Phone(info),
        Err(e) => GraphResult::failed(&e),
    };
    result_page(&state, a.ctx, number, result).await
}

/// "Subscribe": `POST /{waba-id}/subscribed_apps`, audited with its outcome.
async fn post_subscribe(state: web::Data<AppState>, Admin(a): Admin, path: web::Path<i64>) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let (number, creds) = credentials(&state, id).await?;
    let result = match state
        .graph
        .subscribe_app(&creds.waba_id, creds.access_token.expose())
        .await
    {
        Ok(true) => GraphResult::Subscribed,
        Ok(false) => GraphResult::Failed {
            code: None,
            why: "whatsapp.why.other",
            message: "success: false".into(),
            hint: "whatsapp.hint_check_ids",
        },
        Err(e) => GraphResult::failed(&e),
    };
    let outcome = match &result {
        GraphResult::Subscribed => "subscribed".to_string(),
        GraphResult::Failed { message, .. } => format!("failed: {message}"),
        GraphResult::Phone(_) => String::new(),
    };
    let (now, actor) = (state.now(), a.actor());
    state
        .db
        .write(move |c| {
            Ok(audit::record(
                c,
                &actor,
                "whatsapp.subscribe",
                &format!("number:{id}"),
                &outcome,
                now,
            )?)
        })
        .await?;
    result_page(&state, a.ctx, number, result).await
}

/// Puts a quarantined delivery back in the processing queue.
async fn post_retry_delivery(
    state: web::Data<AppState>,
    Admin(a): Admin,
    path: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let (now, actor) = (state.now(), a.actor());
    let n = state
        .db
        .write(move |c| {
            let n = crate::whatsapp::deliveries::retry(c, id)?;
            if n > 0 {
                audit::record(c, &actor, "whatsapp.delivery_retry", &format!("delivery:{id}"), "", now)?;
            }
            Ok(n)
        })
        .await?;
    if n == 0 {
        return Err(AppError::NotFound);
    }
    state.deliveries_bell.ring();
    Ok(see_other_flash("/admin/whatsapp", "flash.job_started"))
}

/// Lets sending resume after Meta paused the number (e.g. the account is fine again).
async fn post_resume(state: web::Data<AppState>, Admin(a): Admin, path: web::Path<i64>) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let (now, actor) = (state.now(), a.actor());
    let n = state
        .db
        .write(move |c| {
            let n = crate::whatsapp::outbox::resume(c, id)?;
            if n > 0 {
                audit::record(c, &actor, "whatsapp.resume_sending", &format!("number:{id}"), "", now)?;
            }
            Ok(n)
        })
        .await?;
    if n == 0 {
        return Err(AppError::NotFound);
    }
    state.outbox_bell.ring();
    Ok(see_other_flash(&format!("/admin/whatsapp/{id}"), "flash.saved"))
}

/// "Sync templates": reads the account's templates from Meta now.
async fn post_sync_templates(
    state: web::Data<AppState>,
    Admin(a): Admin,
    path: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let number = load_number(&state, id).await?;
    match crate::whatsapp::templates::sync_number(&state.db, &state.graph, state.now(), id).await {
        Ok(_) => Ok(see_other_flash(
            &format!("/admin/whatsapp/{id}"),
            "flash.templates_synced",
        )),
        Err(message) => {
            let result = GraphResult::Failed {
                code: None,
                why: "whatsapp.why.other",
                message,
                hint: "whatsapp.hint_check_ids",
            };
            result_page(&state, a.ctx, number, result).await
        }
    }
}
