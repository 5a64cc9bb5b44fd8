//! `/api/v1` routes, the OpenAPI document, and the admin pages for API keys.

use super::{ApiCaller, keys};
use crate::app::AppState;
use crate::audit;
use crate::auth::Role;
use crate::error::{AppError, AppResult};
use crate::web::{Admin, FormErrors, RequestCtx, invalid_page, ok_page, see_other_flash};
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use serde_json::json;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/v1/openapi.json").route(web::get().to(get_openapi)))
        .service(web::resource("/api/v1/numbers").route(web::get().to(get_numbers)))
        .service(
            web::resource("/admin/api-keys")
                .route(web::get().to(get_keys))
                .route(web::post().to(post_keys)),
        )
        .service(web::resource("/admin/api-keys/{id}/revoke").route(web::post().to(post_revoke)));
}

/// Most items per page.
const MAX_LIMIT: i64 = 200;

#[derive(Deserialize)]
pub struct Page {
    /// Items after this id (from `next_cursor`).
    cursor: Option<i64>,
    limit: Option<i64>,
}

/// `GET /api/v1/numbers`: the connected WhatsApp numbers (no secrets).
async fn get_numbers(state: web::Data<AppState>, caller: ApiCaller, q: web::Query<Page>) -> AppResult<HttpResponse> {
    caller.require(Role::Agent)?;
    let limit = q.limit.unwrap_or(50).clamp(1, MAX_LIMIT);
    let after = q.cursor.unwrap_or(0);
    let numbers = state
        .db
        .read(|c| Ok(crate::whatsapp::numbers::repo::list_numbers(c)?))
        .await?;
    let mut page: Vec<_> = numbers.into_iter().filter(|n| n.id > after).collect();
    page.sort_by_key(|n| n.id);
    let more = page.len() as i64 > limit;
    page.truncate(usize::try_from(limit).unwrap_or(50));
    let next = if more { page.last().map(|n| n.id) } else { None };
    let data: Vec<_> = page
        .iter()
        .map(|n| {
            json!({"id": n.id, "display_name": n.display_name, "phone_number_id": n.phone_number_id,
                   "waba_id": n.waba_id, "messages_per_second": n.mps, "paused": n.paused_reason.is_some()})
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"data": data, "next_cursor": next})))
}

/// The OpenAPI 3.1 description of every `/api/v1` route (a test keeps it complete).
#[expect(
    clippy::too_many_lines,
    reason = "the core paths of the OpenAPI document as one literal; features add theirs below"
)]
pub fn openapi() -> serde_json::Value {
    let error = json!({"description": "An error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {"title": "Whacaster API", "version": "1", "description": "Bearer API keys created by admins; each key has a role (agent, supervisor, admin) checked like in the web interface. Errors are {\"error\":{\"code\",\"message\"}}; over the rate limit a key gets 429 with Retry-After."},
        "servers": [{"url": "/api/v1"}],
        "security": [{"apiKey": []}],
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object",
                    "required": ["code", "message"], "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "request_id": {"type": "string"}}}}},
                "Contact": {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"},
                    "profile_name": {"type": "string"}, "phone": {"type": ["string", "null"], "description": "E.164"},
                    "bsuid": {"type": ["string", "null"]}, "username": {"type": ["string", "null"]},
                    "attributes": {"type": "object", "additionalProperties": {"type": "string"}},
                    "created_at": {"type": "integer"}, "last_seen_at": {"type": ["integer", "null"]},
                    "consent": {"type": "object", "description": "Consent per purpose", "properties": {
                        "marketing": {"$ref": "#/components/schemas/ConsentState"}, "utility": {"$ref": "#/components/schemas/ConsentState"}}}}},
                "ConsentState": {"type": "string", "enum": ["unknown", "opted_in", "opted_out"]},
                "ConsentInput": {"type": "object", "required": ["purpose", "state", "wording"], "properties": {
                    "purpose": {"type": "string", "enum": ["marketing", "utility"]},
                    "state": {"type": "string", "enum": ["opted_in", "opted_out"]},
                    "wording": {"type": "string", "description": "The exact wording the person agreed to, or a reference to it"},
                    "evidence": {"type": "string", "description": "Where the proof is (form id, call reference); the key by default"}}},
                "ContactInput": {"type": "object", "properties": {"name": {"type": "string"},
                    "phone": {"type": "string", "description": "E.164, or local to the business's country"},
                    "attributes": {"type": "object", "additionalProperties": {"type": "string"}}}},
                "Number": {"type": "object", "properties": {"id": {"type": "integer"}, "display_name": {"type": "string"},
                    "phone_number_id": {"type": "string"}, "waba_id": {"type": "string"}, "messages_per_second": {"type": "integer"}, "paused": {"type": "boolean"}}}
            }
        },
        "paths": {
            "/contacts": {
                "get": {"summary": "List or search contacts (role agent or higher)", "parameters": [
                    {"name": "q", "in": "query", "schema": {"type": "string"}, "description": "name, phone or BSUID"},
                    {"name": "consent", "in": "query", "schema": {"$ref": "#/components/schemas/ConsentState"}, "description": "marketing consent (400 for another value)"},
                    {"name": "cursor", "in": "query", "schema": {"type": "integer"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}}],
                    "responses": {"200": {"description": "A page of contacts", "content": {"application/json": {"schema": {"type": "object", "properties": {
                        "data": {"type": "array", "items": {"$ref": "#/components/schemas/Contact"}}, "next_cursor": {"type": ["integer", "null"]}}}}}},
                        "401": error, "403": error, "429": error}},
                "post": {"summary": "Create a contact (phone required)", "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ContactInput"}}}},
                    "responses": {"201": {"description": "Created", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Contact"}}}},
                        "401": error, "403": error, "422": error, "429": error}}
            },
            "/contacts/{id}": {
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
                "get": {"summary": "One contact", "responses": {"200": {"description": "The contact", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Contact"}}}},
                    "401": error, "404": error, "429": error}},
                "patch": {"summary": "Change name, phone or attributes (only the fields given)", "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ContactInput"}}}},
                    "responses": {"200": {"description": "The contact", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Contact"}}}},
                        "401": error, "404": error, "422": error, "429": error}}
            },
            "/contacts/{id}/consent": {
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
                "post": {"summary": "Record consent given or withdrawn (logged with the key as who). The API never lifts an opt-out: 409.",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ConsentInput"}}}},
                    "responses": {"200": {"description": "Recorded (changed: false when it already was so)", "content": {"application/json": {"schema": {"type": "object", "properties": {
                        "changed": {"type": "boolean"}, "contact": {"$ref": "#/components/schemas/Contact"}}}}}},
                        "401": error, "403": error, "404": error, "409": error, "422": error, "429": error}}
            },
            "/openapi.json": {"get": {"summary": "This document", "security": [], "responses": {"200": {"description": "OpenAPI 3.1"}}}},
            "/numbers": {"get": {
                "summary": "Connected WhatsApp numbers (role agent or higher)",
                "parameters": [
                    {"name": "cursor", "in": "query", "schema": {"type": "integer"}, "description": "next_cursor of the previous page"},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}}
                ],
                "responses": {
                    "200": {"description": "A page of numbers", "content": {"application/json": {"schema": {"type": "object", "properties": {
                        "data": {"type": "array", "items": {"$ref": "#/components/schemas/Number"}}, "next_cursor": {"type": ["integer", "null"]}}}}}},
                    "401": error, "403": error, "429": error
                }
            }}
        }
    });
    for (section, extra) in [
        ("paths", super::conversations::openapi_paths(&error)),
        ("paths", super::imports::openapi_paths(&error)),
        ("schemas", super::conversations::openapi_schemas()),
        ("paths", super::templates::openapi_paths(&error)),
        ("schemas", super::templates::openapi_schemas()),
        ("paths", super::segments::openapi_paths(&error)),
        ("schemas", super::segments::openapi_schemas()),
        ("paths", super::campaigns::openapi_paths(&error)),
        ("schemas", super::campaigns::openapi_schemas()),
        ("paths", super::bot::openapi_paths(&error)),
        ("schemas", super::bot::openapi_schemas()),
        ("paths", super::privacy::openapi_paths(&error)),
        ("schemas", super::privacy::openapi_schemas()),
    ] {
        let target = if section == "paths" {
            &mut doc["paths"]
        } else {
            &mut doc["components"]["schemas"]
        };
        if let (Some(t), Some(e)) = (target.as_object_mut(), extra.as_object()) {
            t.extend(e.clone());
        }
    }
    doc
}

async fn get_openapi() -> HttpResponse {
    HttpResponse::Ok().json(openapi())
}

// ---- admin pages ---------------------------------------------------------------------

#[derive(Template)]
#[template(path = "api/keys.html")]
struct KeysPage {
    ctx: RequestCtx,
    keys: Vec<keys::ApiKey>,
    roles: Vec<&'static str>,
    name: String,
    role: String,
    errors: FormErrors,
    /// The new key, shown once.
    created: Option<String>,
}

async fn keys_page(
    state: &AppState,
    ctx: RequestCtx,
    name: String,
    role: String,
    errors: FormErrors,
    created: Option<String>,
) -> AppResult<KeysPage> {
    let keys = state.db.read(|c| Ok(keys::list(c)?)).await?;
    let roles = Role::ALL.iter().map(|r| r.as_str()).collect();
    Ok(KeysPage {
        ctx,
        keys,
        roles,
        name,
        role,
        errors,
        created,
    })
}

/// The keys page with an empty form (and, right after creating one, the new key).
async fn fresh_keys_page(state: &AppState, ctx: RequestCtx, created: Option<String>) -> AppResult<HttpResponse> {
    ok_page(
        &keys_page(
            state,
            ctx,
            String::new(),
            "agent".into(),
            FormErrors::default(),
            created,
        )
        .await?,
    )
}

async fn get_keys(state: web::Data<AppState>, Admin(a): Admin) -> AppResult<HttpResponse> {
    fresh_keys_page(&state, a.ctx, None).await
}

#[derive(Deserialize)]
pub struct KeyForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
}

async fn post_keys(state: web::Data<AppState>, Admin(a): Admin, form: web::Form<KeyForm>) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    let name = form.name.trim().to_string();
    let mut errors = FormErrors::default();
    if name.is_empty() || name.chars().count() > 100 {
        errors.add("name", "form.name_required");
    }
    let role = Role::parse(&form.role);
    if role.is_none() {
        errors.add("role", "form.invalid_choice");
    }
    let (Some(role), true) = (role, errors.is_empty()) else {
        return invalid_page(&keys_page(&state, a.ctx, name, form.role, errors, None).await?);
    };
    let (now, actor, n, by) = (state.now(), a.actor(), name.clone(), a.user.email.clone());
    let token = state
        .db
        .write(move |c| {
            let (id, token) = keys::create(c, &n, role, &by, now)?;
            audit::record(
                c,
                &actor,
                "api_key.create",
                &format!("api_key:{id} {n}"),
                &format!("role={}", role.as_str()),
                now,
            )?;
            Ok(token)
        })
        .await?;
    fresh_keys_page(&state, a.ctx, Some(token)).await
}

async fn post_revoke(state: web::Data<AppState>, Admin(a): Admin, path: web::Path<i64>) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let (now, actor) = (state.now(), a.actor());
    let n = state
        .db
        .write(move |c| {
            let n = keys::revoke(c, id, now)?;
            if n > 0 {
                audit::record(c, &actor, "api_key.revoke", &format!("api_key:{id}"), "", now)?;
            }
            Ok(n)
        })
        .await?;
    if n == 0 {
        return Err(AppError::NotFound);
    }
    Ok(see_other_flash("/admin/api-keys", "flash.saved"))
}
