//! `/api/v1/contacts`: list, search and filter by consent, one contact, create and
//! change, record consent, with the same checks and audit lines as the contact pages
//! (`contacts::service`).

use super::ApiCaller;
use crate::app::AppState;
use crate::auth::Role;
use crate::contacts::Contact;
use crate::contacts::consent::{Source, State};
use crate::contacts::routes::region;
use crate::contacts::service::{self, ConsentInput, ConsentRecorded, ContactInput, ContactPatch};
use crate::error::{AppError, AppResult};
use crate::inbox::access::Viewer;
use crate::web::FormErrors;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/v1/contacts")
            .route(web::get().to(get_contacts))
            .route(web::post().to(post_contacts)),
    )
    .service(
        web::resource("/api/v1/contacts/{id}")
            .route(web::get().to(get_contact))
            .route(web::patch().to(patch_contact)),
    )
    .service(web::resource("/api/v1/contacts/{id}/consent").route(web::post().to(post_consent)));
}

#[derive(Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    /// Only contacts with this label (by name).
    label: Option<String>,
    cursor: Option<i64>,
    limit: Option<i64>,
    /// Marketing consent: `opted_in`, `opted_out` or `unknown`.
    consent: Option<String>,
}

fn field_errors(errors: &FormErrors) -> HttpResponse {
    super::invalid_fields(errors, str::to_string)
}

async fn get_contacts(
    state: web::Data<AppState>,
    caller: ApiCaller,
    q: web::Query<ListQuery>,
) -> AppResult<HttpResponse> {
    caller.require(Role::Agent)?;
    let q = q.into_inner();
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let marketing = match q.consent.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(State::parse(s).ok_or(AppError::BadRequest("consent.record.bad_filter"))?),
    };
    let (after, term, label, role) = (q.cursor.unwrap_or(0), q.q, q.label, caller.key.role);
    let found = state
        .db
        .read(move |c| {
            let scope = Viewer::for_role(c, role)?.contact_scope();
            let filter = crate::contacts::ListFilter {
                q: term.as_deref(),
                label: label.as_deref(),
                marketing,
            };
            Ok(crate::contacts::search(c, &scope, &filter, after, limit + 1)?)
        })
        .await?;
    let more = found.len() as i64 > limit;
    let data: Vec<Contact> = found.into_iter().take(usize::try_from(limit).unwrap_or(50)).collect();
    let next = if more { data.last().map(|c| c.id) } else { None };
    Ok(HttpResponse::Ok().json(serde_json::json!({"data": data, "next_cursor": next})))
}

async fn get_contact(state: web::Data<AppState>, caller: ApiCaller, path: web::Path<i64>) -> AppResult<HttpResponse> {
    caller.require(Role::Agent)?;
    let (id, role) = (path.into_inner(), caller.key.role);
    let contact = state
        .db
        .read(move |c| Ok(service::get(c, &Viewer::for_role(c, role)?.contact_scope(), id)?))
        .await?;
    Ok(HttpResponse::Ok().json(contact))
}

async fn post_contacts(
    state: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<ContactInput>,
) -> AppResult<HttpResponse> {
    caller.require(Role::Agent)?;
    let (region, actor, now, input) = (region(&state), caller.actor(), state.now(), body.into_inner());
    let created = state
        .db
        .write(move |c| Ok(service::create(c, &region, &actor, &input, now)?))
        .await?;
    match created {
        Ok(contact) => Ok(HttpResponse::Created().json(contact)),
        Err(errors) => Ok(field_errors(&errors)),
    }
}

async fn patch_contact(
    state: web::Data<AppState>,
    caller: ApiCaller,
    path: web::Path<i64>,
    body: web::Json<ContactPatch>,
) -> AppResult<HttpResponse> {
    caller.require(Role::Agent)?;
    let id = path.into_inner();
    let (region, actor, now, patch) = (region(&state), caller.actor(), state.now(), body.into_inner());
    let role = caller.key.role;
    let updated = state
        .db
        .write(move |c| {
            let scope = Viewer::for_role(c, role)?.contact_scope();
            Ok(service::patch(c, &scope, &region, &actor, id, patch, now)?)
        })
        .await?;
    match updated {
        Ok(contact) => Ok(HttpResponse::Ok().json(contact)),
        Err(errors) => Ok(field_errors(&errors)),
    }
}

/// `POST /api/v1/contacts/{id}/consent`: records consent from the API (`Source::Api`):
/// 200 with the contact (and whether it changed), 422 for bad input, 409 when the contact
/// opted out (only the person can lift that).
async fn post_consent(
    state: web::Data<AppState>,
    caller: ApiCaller,
    path: web::Path<i64>,
    body: web::Json<ConsentInput>,
) -> AppResult<HttpResponse> {
    caller.require(Role::Agent)?;
    let id = path.into_inner();
    let (actor, now, mut input, role) = (caller.actor(), state.now(), body.into_inner(), caller.key.role);
    if input.evidence.trim().is_empty() {
        // The key is the evidence when the client names none.
        input.evidence = format!("api key {}", caller.key.prefix);
    }
    let recorded = state
        .db
        .write(move |c| {
            let scope = Viewer::for_role(c, role)?.contact_scope();
            Ok(service::record_consent(
                c,
                &scope,
                &actor,
                id,
                &input,
                Source::Api,
                now,
            )?)
        })
        .await?;
    let en = crate::i18n::Locale::En;
    Ok(match recorded {
        ConsentRecorded::Changed(contact) => {
            HttpResponse::Ok().json(serde_json::json!({"changed": true, "contact": contact}))
        }
        ConsentRecorded::Unchanged(contact) => {
            HttpResponse::Ok().json(serde_json::json!({"changed": false, "contact": contact}))
        }
        ConsentRecorded::OptOutWins => HttpResponse::Conflict().json(serde_json::json!({"error": {
            "code": "opted_out", "message": crate::i18n::t(en, "consent.record.api_opt_out_wins")}})),
        ConsentRecorded::Invalid(errors) => field_errors(&errors),
    })
}
