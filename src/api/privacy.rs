//! `/api/v1/privacy/requests`: the data-subject request register over the API, with
//! the same checks and audit lines as the pages. Admin keys only.

use super::ApiCaller;
use crate::app::AppState;
use crate::auth::Role;
use crate::error::{AppError, AppResult};
use crate::privacy::requests::{self, RequestInput};
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/v1/privacy/requests")
            .route(web::get().to(get_requests))
            .route(web::post().to(post_requests)),
    )
    .service(web::resource("/api/v1/privacy/requests/{id}").route(web::get().to(get_request)))
    .service(web::resource("/api/v1/privacy/requests/{id}/export").route(web::get().to(get_export)))
    .service(web::resource("/api/v1/privacy/requests/{id}/erase").route(web::post().to(post_erase)));
}

/// The body of `POST /privacy/requests`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiInput {
    kind: String,
    requester: String,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    bsuid: Option<String>,
    #[serde(default)]
    contact_id: Option<i64>,
    #[serde(default)]
    details: Option<String>,
    #[serde(default)]
    received_on: Option<String>,
}

fn conflict(key: &'static str) -> HttpResponse {
    let message = crate::i18n::t(crate::i18n::Locale::En, key);
    HttpResponse::Conflict().json(json!({"error": {"code": "conflict", "message": message}}))
}

async fn get_requests(state: web::Data<AppState>, caller: ApiCaller) -> AppResult<HttpResponse> {
    caller.require(Role::Admin)?;
    let now = state.now();
    let list = state.db.read(|c| Ok(requests::list(c, 1000)?)).await?;
    let data: Vec<Value> = list.iter().map(|r| r.json(now)).collect();
    Ok(HttpResponse::Ok().json(json!({"data": data})))
}

async fn post_requests(state: web::Data<AppState>, caller: ApiCaller, bytes: web::Bytes) -> AppResult<HttpResponse> {
    caller.require(Role::Admin)?;
    let input: ApiInput = match serde_json::from_slice(&bytes) {
        Ok(i) => i,
        Err(e) => {
            let message = format!("The body is not a request: {e}");
            return Ok(HttpResponse::UnprocessableEntity()
                .json(json!({"error": {"code": "invalid", "message": message, "fields": {"body": message}}})));
        }
    };
    let form = RequestInput {
        kind: input.kind,
        requester: input.requester,
        phone: input.phone.unwrap_or_default(),
        bsuid: input.bsuid.unwrap_or_default(),
        contact_id: input.contact_id,
        details: input.details.unwrap_or_default(),
        received_on: input.received_on.unwrap_or_default(),
    };
    let (region, actor, now) = (crate::contacts::routes::region(&state), caller.actor(), state.now());
    let new = match requests::validate(&form, &region, now) {
        Ok(n) => n,
        Err(errors) => return Ok(super::invalid_fields(&errors, str::to_string)),
    };
    let created = state
        .db
        .write(move |c| {
            let id = requests::create(c, &actor, &new, now)?;
            Ok(match id {
                Ok(id) => Ok(requests::find(c, id)?.ok_or(AppError::NotFound)?),
                Err(r) => Err(r),
            })
        })
        .await?;
    match created {
        Ok(r) => Ok(HttpResponse::Created().json(r.json(now))),
        Err(refusal) => {
            let mut errors = crate::error::FormErrors::default();
            errors.add("contact_id", refusal.key());
            Ok(super::invalid_fields(&errors, str::to_string))
        }
    }
}

async fn get_request(state: web::Data<AppState>, caller: ApiCaller, path: web::Path<i64>) -> AppResult<HttpResponse> {
    caller.require(Role::Admin)?;
    let (id, now) = (path.into_inner(), state.now());
    let out = state
        .db
        .read(move |c| {
            let r = requests::find(c, id)?.ok_or(AppError::NotFound)?;
            let s = requests::subject(c, &r)?;
            let f = requests::find_everything(c, &s)?;
            let found: serde_json::Map<String, Value> =
                f.lines().into_iter().map(|(k, n)| (k.to_string(), json!(n))).collect();
            let mut body = r.json(now);
            body["found"] = Value::Object(found);
            body["legal_hold"] = json!(f.held);
            Ok(body)
        })
        .await?;
    Ok(HttpResponse::Ok().json(out))
}

async fn get_export(state: web::Data<AppState>, caller: ApiCaller, path: web::Path<i64>) -> AppResult<HttpResponse> {
    caller.require(Role::Admin)?;
    let (name, bytes) = crate::privacy::routes::export_zip(&state, caller.actor(), path.into_inner()).await?;
    Ok(crate::privacy::routes::zip_response(&name, bytes))
}

async fn post_erase(state: web::Data<AppState>, caller: ApiCaller, path: web::Path<i64>) -> AppResult<HttpResponse> {
    caller.require(Role::Admin)?;
    let (id, actor, now) = (path.into_inner(), caller.actor(), state.now());
    match requests::erase(&state.db, &state.media.store, &actor, id, now).await? {
        Ok(erased) => Ok(HttpResponse::Ok().json(json!({
            "id": id, "status": "done", "removed": erased.removed, "checkpointed": erased.checkpointed}))),
        Err(refusal) => Ok(conflict(refusal.key())),
    }
}

pub fn openapi_paths(error: &Value) -> Value {
    let id = json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}]);
    let req = json!({"$ref": "#/components/schemas/PrivacyRequest"});
    let ok = |d: &str, schema: Value| json!({"description": d, "content": {"application/json": {"schema": schema}}});
    json!({
        "/privacy/requests": {
            "get": {"summary": "The data-subject request register, open first by deadline (role admin)",
                "responses": {"200": ok("The requests", json!({"type": "object", "properties": {"data": {"type": "array", "items": req}}})),
                    "401": error, "403": error, "429": error}},
            "post": {"summary": "Register a request (due in 30 days from received_on, default today)",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PrivacyRequestInput"}}}},
                "responses": {"201": ok("Registered", req.clone()), "401": error, "403": error, "422": error, "429": error}}
        },
        "/privacy/requests/{id}": {
            "parameters": id,
            "get": {"summary": "One request with what the appliance holds about the person (counts per place)",
                "responses": {"200": ok("The request and `found`", req.clone()), "401": error, "403": error, "404": error, "429": error}}
        },
        "/privacy/requests/{id}/export": {
            "parameters": id,
            "get": {"summary": "The person's data as a ZIP: subject.json (shape in the README) and media/ (decrypted only into this download)",
                "responses": {"200": {"description": "application/zip"}, "401": error, "403": error, "404": error, "429": error}}
        },
        "/privacy/requests/{id}/erase": {
            "parameters": id,
            "post": {"summary": "Erase everything about the person of an open erasure request (real purge; audited); 409 when not open, not an erasure or under legal hold",
                "responses": {"200": ok("What was removed, per kind", json!({"type": "object", "properties": {
                    "id": {"type": "integer"}, "status": {"type": "string"}, "checkpointed": {"type": "boolean"},
                    "removed": {"type": "object", "additionalProperties": {"type": "integer"}}}})),
                    "401": error, "403": error, "404": error, "409": error, "429": error}}
        }
    })
}

pub fn openapi_schemas() -> Value {
    let kind = json!({"enum": ["access", "correction", "erasure", "portability", "objection"]});
    json!({
        "PrivacyRequest": {"type": "object", "properties": {
            "id": {"type": "integer"}, "kind": kind, "requester": {"type": "string"},
            "subject": {"type": "object", "properties": {"phone": {"type": ["string", "null"]}, "bsuid": {"type": ["string", "null"]}, "contact_id": {"type": ["integer", "null"]}}},
            "details": {"type": "string"}, "received_at": {"type": "integer"}, "due_at": {"type": "integer"},
            "overdue": {"type": "boolean"}, "status": {"enum": ["open", "done", "refused"]},
            "handler": {"type": "string"}, "outcome": {"type": "string"}, "closed_at": {"type": ["integer", "null"]},
            "found": {"type": "object", "additionalProperties": {"type": "integer"}, "description": "only on GET /privacy/requests/{id}"}}},
        "PrivacyRequestInput": {"type": "object", "required": ["kind", "requester"], "additionalProperties": false,
            "description": "At least one of phone, bsuid, contact_id", "properties": {
            "kind": kind, "requester": {"type": "string", "description": "who asked (the person, or who for them)"},
            "phone": {"type": "string"}, "bsuid": {"type": "string"}, "contact_id": {"type": "integer"},
            "details": {"type": "string"}, "received_on": {"type": "string", "format": "date"}}}
    })
}
