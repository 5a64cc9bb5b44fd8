//! The privacy pages (admins only): retention periods, legal holds and the purge runs;
//! the data-subject request register with "find everything", export, erasure and the
//! marketing objection; policy notices. And the one route every user has: acknowledging
//! a notice.

use super::requests::{self, Findings, Refusal, Request, RequestInput, Status};
use super::retention::{self, Hold, Run, Setting};
use crate::app::AppState;
use crate::auth::notices::{self, Published};
use crate::error::{AppError, AppResult};
use crate::web::{Admin, Authed, FormErrors, RequestCtx, invalid_page, ok_page, see_other, see_other_flash};
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin/privacy").route(web::get().to(get_privacy)))
        .service(web::resource("/admin/privacy/retention").route(web::post().to(post_retention)))
        .service(web::resource("/admin/privacy/holds").route(web::post().to(post_hold)))
        .service(web::resource("/admin/privacy/holds/{contact}/lift").route(web::post().to(post_lift)))
        .service(
            web::resource("/admin/privacy/requests")
                .route(web::get().to(get_requests))
                .route(web::post().to(post_requests)),
        )
        .service(web::resource("/admin/privacy/requests/{id}").route(web::get().to(get_request)))
        .service(web::resource("/admin/privacy/requests/{id}/export").route(web::get().to(get_export)))
        .service(web::resource("/admin/privacy/requests/{id}/erase").route(web::post().to(post_erase)))
        .service(web::resource("/admin/privacy/requests/{id}/objection").route(web::post().to(post_objection)))
        .service(web::resource("/admin/privacy/requests/{id}/close").route(web::post().to(post_close)))
        .service(
            web::resource("/admin/notices")
                .route(web::get().to(get_notices))
                .route(web::post().to(post_notices)),
        )
        .service(web::resource("/admin/notices/{id}/withdraw").route(web::post().to(post_withdraw)))
        .service(web::resource("/notices/{id}/ack").route(web::post().to(post_ack)));
}

// ---- retention -----------------------------------------------------------------------

#[derive(Template)]
#[template(path = "privacy/retention.html")]
struct RetentionPage {
    ctx: RequestCtx,
    settings: Vec<Setting>,
    ledger_days: i64,
    holds: Vec<Hold>,
    runs: Vec<Run>,
    errors: FormErrors,
    hold_errors: FormErrors,
}

async fn retention_page(
    state: &AppState,
    ctx: RequestCtx,
    errors: FormErrors,
    hold_errors: FormErrors,
) -> AppResult<RetentionPage> {
    let (settings, holds, runs) = state
        .db
        .read(|c| Ok((retention::settings(c)?, retention::holds(c)?, retention::runs(c, 30)?)))
        .await?;
    Ok(RetentionPage {
        ctx,
        settings,
        ledger_days: retention::LEDGER_RETENTION_DAYS,
        holds,
        runs,
        errors,
        hold_errors,
    })
}

async fn get_privacy(state: web::Data<AppState>, Admin(a): Admin) -> AppResult<HttpResponse> {
    ok_page(&retention_page(&state, a.ctx, FormErrors::default(), FormErrors::default()).await?)
}

#[derive(Deserialize)]
struct RetentionForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    days: String,
    #[serde(default)]
    reason: String,
}

async fn post_retention(
    state: web::Data<AppState>,
    Admin(a): Admin,
    form: web::Form<RetentionForm>,
) -> AppResult<HttpResponse> {
    let (kind, days, reason) = match retention::validate(&form.kind, &form.days, &form.reason) {
        Ok(v) => v,
        Err(errors) => return invalid_page(&retention_page(&state, a.ctx, errors, FormErrors::default()).await?),
    };
    let (actor, now) = (a.actor(), state.now());
    state
        .db
        .write(move |c| Ok(retention::save_setting(c, &actor, kind, days, &reason, now)?))
        .await?;
    Ok(see_other_flash("/admin/privacy", "flash.saved"))
}

#[derive(Deserialize)]
struct HoldForm {
    #[serde(default)]
    contact_id: String,
    #[serde(default)]
    reason: String,
}

async fn post_hold(state: web::Data<AppState>, Admin(a): Admin, form: web::Form<HoldForm>) -> AppResult<HttpResponse> {
    let mut errors = FormErrors::default();
    let contact = form.contact_id.trim().parse::<i64>().ok();
    if contact.is_none() {
        errors.add("contact_id", "privacy_ops.hold.contact_invalid");
    }
    let reason = match retention::validate_hold(&form.reason) {
        Ok(r) => Some(r),
        Err(e) => {
            errors.0.extend(e.0);
            None
        }
    };
    let (Some(contact), Some(reason)) = (contact, reason) else {
        return invalid_page(&retention_page(&state, a.ctx, FormErrors::default(), errors).await?);
    };
    let (actor, now) = (a.actor(), state.now());
    let placed = state
        .db
        .write(move |c| Ok(retention::place_hold(c, &actor, contact, &reason, now)?))
        .await?;
    if !placed {
        let mut errors = FormErrors::default();
        errors.add("contact_id", "privacy_ops.hold.contact_invalid");
        return invalid_page(&retention_page(&state, a.ctx, FormErrors::default(), errors).await?);
    }
    Ok(see_other_flash("/admin/privacy", "flash.saved"))
}

async fn post_lift(state: web::Data<AppState>, Admin(a): Admin, path: web::Path<i64>) -> AppResult<HttpResponse> {
    let (contact, actor, now) = (path.into_inner(), a.actor(), state.now());
    let lifted = state
        .db
        .write(move |c| Ok(retention::lift_hold(c, &actor, contact, now)?))
        .await?;
    if !lifted {
        return Err(AppError::NotFound);
    }
    Ok(see_other_flash("/admin/privacy", "flash.saved"))
}

// ---- requests ------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "privacy/requests.html")]
struct RequestsPage {
    ctx: RequestCtx,
    requests: Vec<Request>,
    now: i64,
    kinds: Vec<&'static str>,
    form: RequestInput,
    errors: FormErrors,
}

async fn requests_page(
    state: &AppState,
    ctx: RequestCtx,
    form: RequestInput,
    errors: FormErrors,
) -> AppResult<RequestsPage> {
    let list = state.db.read(|c| Ok(requests::list(c, 500)?)).await?;
    Ok(RequestsPage {
        ctx,
        requests: list,
        now: state.now(),
        kinds: requests::Kind::ALL.iter().map(|k| k.as_str()).collect(),
        form,
        errors,
    })
}

async fn get_requests(state: web::Data<AppState>, Admin(a): Admin) -> AppResult<HttpResponse> {
    ok_page(&requests_page(&state, a.ctx, RequestInput::default(), FormErrors::default()).await?)
}

async fn post_requests(
    state: web::Data<AppState>,
    Admin(a): Admin,
    form: web::Form<RequestInput>,
) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    let region = crate::contacts::routes::region(&state);
    let (actor, now) = (a.actor(), state.now());
    let new = match requests::validate(&form, &region, now) {
        Ok(n) => n,
        Err(errors) => return invalid_page(&requests_page(&state, a.ctx, form, errors).await?),
    };
    let created = state
        .db
        .write(move |c| Ok(requests::create(c, &actor, &new, now)?))
        .await?;
    match created {
        Ok(id) => Ok(see_other_flash(&format!("/admin/privacy/requests/{id}"), "flash.saved")),
        Err(refusal) => {
            let mut errors = FormErrors::default();
            errors.add("contact_id", refusal.key());
            invalid_page(&requests_page(&state, a.ctx, form, errors).await?)
        }
    }
}

#[derive(Template)]
#[template(path = "privacy/request.html")]
struct RequestPage {
    ctx: RequestCtx,
    request: Request,
    findings: Findings,
    now: i64,
    /// Why the last action was refused (a catalogue key).
    refused: Option<&'static str>,
    /// What an erasure removed, right after it.
    erased: Vec<(&'static str, i64)>,
}

impl RequestPage {
    fn overdue(&self) -> bool {
        self.request.overdue(self.now)
    }

    fn is_erasure(&self) -> bool {
        self.request.kind == requests::Kind::Erasure
    }

    fn is_objection(&self) -> bool {
        self.request.kind == requests::Kind::Objection
    }
}

async fn request_page(
    state: &AppState,
    ctx: RequestCtx,
    id: i64,
    refused: Option<&'static str>,
) -> AppResult<RequestPage> {
    let (request, findings) = state
        .db
        .read(move |c| {
            let r = requests::find(c, id)?.ok_or(AppError::NotFound)?;
            let s = requests::subject(c, &r)?;
            let f = requests::find_everything(c, &s)?;
            Ok((r, f))
        })
        .await?;
    Ok(RequestPage {
        ctx,
        request,
        findings,
        now: state.now(),
        refused,
        erased: Vec::new(),
    })
}

async fn get_request(state: web::Data<AppState>, Admin(a): Admin, path: web::Path<i64>) -> AppResult<HttpResponse> {
    ok_page(&request_page(&state, a.ctx, path.into_inner(), None).await?)
}

/// The person's data as a ZIP (JSON + media), built in memory for this response only.
pub async fn export_zip(state: &AppState, actor: crate::audit::Actor, id: i64) -> AppResult<(String, Vec<u8>)> {
    let now = state.now();
    let (doc, media) = state
        .db
        .read(move |c| {
            let r = requests::find(c, id)?.ok_or(AppError::NotFound)?;
            let s = requests::subject(c, &r)?;
            Ok(requests::export_data(c, &r, &s, now)?)
        })
        .await?;
    let files = media.len();
    let store = state.media.store.clone();
    let bytes = actix_web::rt::task::spawn_blocking(move || requests::build_zip(&doc, &store, &media))
        .await
        .map_err(AppError::internal)?
        .map_err(AppError::internal)?;
    state
        .db
        .write(move |c| Ok(requests::record_export(c, &actor, id, files, now)?))
        .await?;
    Ok((format!("whacaster-request-{id}.zip"), bytes))
}

/// A ZIP download that no cache keeps.
pub fn zip_response(name: &str, bytes: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/zip")
        .insert_header(("Content-Disposition", format!("attachment; filename=\"{name}\"")))
        .insert_header(("Cache-Control", "no-store"))
        .body(bytes)
}

async fn get_export(state: web::Data<AppState>, Admin(a): Admin, path: web::Path<i64>) -> AppResult<HttpResponse> {
    let (name, bytes) = export_zip(&state, a.actor(), path.into_inner()).await?;
    Ok(zip_response(&name, bytes))
}

#[derive(Deserialize)]
struct EraseForm {
    confirm: Option<String>,
}

async fn post_erase(
    state: web::Data<AppState>,
    Admin(a): Admin,
    path: web::Path<i64>,
    form: web::Form<EraseForm>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    if form.confirm.as_deref() != Some("1") {
        let page = request_page(&state, a.ctx, id, Some("privacy_ops.requests.confirm_required")).await?;
        return invalid_page(&page);
    }
    let (actor, now) = (a.actor(), state.now());
    match requests::erase(&state.db, &state.media.store, &actor, id, now).await? {
        Ok(erased) => {
            let mut page = request_page(&state, a.ctx, id, None).await?;
            page.erased = erased.removed.into_iter().filter(|(_, n)| *n > 0).collect();
            ok_page(&page)
        }
        Err(refusal) => {
            let page = request_page(&state, a.ctx, id, Some(refusal.key())).await?;
            crate::web::render(actix_web::http::StatusCode::CONFLICT, &page)
        }
    }
}

async fn post_objection(state: web::Data<AppState>, Admin(a): Admin, path: web::Path<i64>) -> AppResult<HttpResponse> {
    let (id, actor, now) = (path.into_inner(), a.actor(), state.now());
    let done = state
        .db
        .write(move |c| requests::record_objection(c, &actor, id, now))
        .await?;
    match done {
        Ok(()) => Ok(see_other_flash(&format!("/admin/privacy/requests/{id}"), "flash.saved")),
        Err(refusal) => refused(&state, a.ctx, id, refusal).await,
    }
}

async fn refused(state: &AppState, ctx: RequestCtx, id: i64, refusal: Refusal) -> AppResult<HttpResponse> {
    let page = request_page(state, ctx, id, Some(refusal.key())).await?;
    crate::web::render(actix_web::http::StatusCode::CONFLICT, &page)
}

#[derive(Deserialize)]
struct CloseForm {
    #[serde(default)]
    status: String,
    #[serde(default)]
    outcome: String,
}

async fn post_close(
    state: web::Data<AppState>,
    Admin(a): Admin,
    path: web::Path<i64>,
    form: web::Form<CloseForm>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let Some(status @ (Status::Done | Status::Refused)) = Status::parse(&form.status) else {
        return Err(AppError::BadRequest("privacy_ops.requests.status_invalid"));
    };
    let outcome = form.outcome.trim().to_string();
    if outcome.is_empty() || outcome.chars().count() > 4000 {
        let page = request_page(&state, a.ctx, id, Some("privacy_ops.requests.outcome_required")).await?;
        return invalid_page(&page);
    }
    let (actor, now) = (a.actor(), state.now());
    let closed = state
        .db
        .write(move |c| {
            requests::find(c, id)?.ok_or(AppError::NotFound)?;
            Ok(requests::close(c, &actor, id, status, &outcome, now)?)
        })
        .await?;
    match closed {
        Ok(()) => Ok(see_other_flash(&format!("/admin/privacy/requests/{id}"), "flash.saved")),
        Err(refusal) => refused(&state, a.ctx, id, refusal).await,
    }
}

// ---- notices -------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "privacy/notices.html")]
struct NoticesPage {
    ctx: RequestCtx,
    notices: Vec<Published>,
    /// (notice id, who acknowledged, when)
    acks: Vec<(i64, String, i64)>,
    terms: Option<(String, i64)>,
    title: String,
    body: String,
    errors: FormErrors,
}

async fn notices_page(
    state: &AppState,
    ctx: RequestCtx,
    title: String,
    body: String,
    errors: FormErrors,
) -> AppResult<NoticesPage> {
    let (list, acks, terms) = state
        .db
        .read(|c| {
            let list = notices::list(c)?;
            let mut acks = Vec::new();
            for n in &list {
                for (who, at) in notices::acknowledgements(c, n.notice.id)? {
                    acks.push((n.notice.id, who, at));
                }
            }
            Ok((list, acks, crate::settings::terms_acceptance(c)?))
        })
        .await?;
    Ok(NoticesPage {
        ctx,
        notices: list,
        acks,
        terms,
        title,
        body,
        errors,
    })
}

async fn get_notices(state: web::Data<AppState>, Admin(a): Admin) -> AppResult<HttpResponse> {
    ok_page(&notices_page(&state, a.ctx, String::new(), String::new(), FormErrors::default()).await?)
}

#[derive(Deserialize)]
struct NoticeForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
}

async fn post_notices(
    state: web::Data<AppState>,
    Admin(a): Admin,
    form: web::Form<NoticeForm>,
) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    let (title, body) = match notices::validate(&form.title, &form.body) {
        Ok(v) => v,
        Err(errors) => return invalid_page(&notices_page(&state, a.ctx, form.title, form.body, errors).await?),
    };
    let (actor, now) = (a.actor(), state.now());
    state
        .db
        .write(move |c| Ok(notices::publish(c, &actor, &title, &body, now)?))
        .await?;
    Ok(see_other_flash("/admin/notices", "flash.saved"))
}

async fn post_withdraw(state: web::Data<AppState>, Admin(a): Admin, path: web::Path<i64>) -> AppResult<HttpResponse> {
    let (id, actor, now) = (path.into_inner(), a.actor(), state.now());
    let done = state
        .db
        .write(move |c| Ok(notices::withdraw(c, &actor, id, now)?))
        .await?;
    if !done {
        return Err(AppError::NotFound);
    }
    Ok(see_other_flash("/admin/notices", "flash.saved"))
}

/// Any signed-in user: "I have read it". Back to where they were (same-site only).
async fn post_ack(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<i64>,
    req: actix_web::HttpRequest,
) -> AppResult<HttpResponse> {
    let (id, actor, user, now) = (path.into_inner(), a.actor(), a.user.id, state.now());
    let done = state
        .db
        .write(move |c| Ok(notices::acknowledge(c, &actor, user, id, now)?))
        .await?;
    if !done {
        return Err(AppError::NotFound);
    }
    let back = req
        .headers()
        .get("referer")
        .and_then(|v| v.to_str().ok())
        .and_then(|r| url::Url::parse(r).ok())
        .map(|u| u.path().to_string())
        .filter(|p| p.starts_with('/') && !p.starts_with("//"))
        .unwrap_or_else(|| "/".to_string());
    Ok(see_other(&back))
}
