//! `/api/v1` conversations, messages and labels: the same rules as the inbox (an
//! agent-role key sees unassigned conversations only, unless agents see all), the same
//! changes with the same audit lines, the same one outbox for sending.

use super::ApiCaller;
use crate::app::AppState;
use crate::auth::Role;
use crate::error::{AppError, AppResult};
use crate::inbox::access::Viewer;
use crate::inbox::conversations::{self, Filter};
use crate::inbox::manage::{self, By};
use crate::inbox::reply::{self, Compose};
use crate::inbox::{catalog, thread};
use actix_web::{HttpResponse, web};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/v1/conversations").route(web::get().to(get_conversations)))
        .service(web::resource("/api/v1/conversations/{id}").route(web::get().to(get_conversation)))
        .service(web::resource("/api/v1/conversations/{id}/assign").route(web::post().to(post_assign)))
        .service(web::resource("/api/v1/conversations/{id}/status").route(web::post().to(post_status)))
        .service(web::resource("/api/v1/conversations/{id}/labels").route(web::post().to(post_labels)))
        .service(
            web::resource("/api/v1/conversations/{id}/messages")
                .app_data(web::JsonConfig::default().limit(24 * 1024 * 1024))
                .route(web::get().to(get_messages))
                .route(web::post().to(post_message)),
        )
        .service(web::resource("/api/v1/labels").route(web::get().to(get_labels)));
}

const MAX_LIMIT: i64 = 200;

async fn viewer(state: &AppState, caller: &ApiCaller) -> AppResult<Viewer> {
    let role = caller.key.role;
    Ok(state.db.read(move |c| Ok(Viewer::for_role(c, role)?)).await?)
}

/// 202: the message is in the outbox and the thread.
fn queued(message_id: i64) -> HttpResponse {
    HttpResponse::Accepted().json(json!({"id": message_id, "status": "pending"}))
}

/// 422 with the catalogue key as the code and its English text.
fn invalid(key: &'static str) -> HttpResponse {
    HttpResponse::UnprocessableEntity()
        .json(json!({"error": {"code": key, "message": crate::i18n::t(crate::i18n::Locale::En, key)}}))
}

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    number: Option<String>,
    label: Option<i64>,
    contact: Option<i64>,
    #[serde(default)]
    unassigned: bool,
    cursor: Option<String>,
    limit: Option<i64>,
}

async fn get_conversations(
    state: web::Data<AppState>,
    caller: ApiCaller,
    q: web::Query<ListQuery>,
) -> AppResult<HttpResponse> {
    caller.require(Role::Agent)?;
    let q = q.into_inner();
    let viewer = viewer(&state, &caller).await?;
    let limit = q.limit.unwrap_or(50).clamp(1, MAX_LIMIT);
    let before = match q.cursor.as_deref() {
        Some(c) => Some(conversations::parse_cursor(c).ok_or(AppError::BadRequest("api.bad_cursor"))?),
        None => None,
    };
    let filter = Filter {
        tab: q.unassigned.then_some(conversations::Tab::Unassigned),
        status: q.status.unwrap_or_default(),
        number: q.number.unwrap_or_default(),
        label: q.label,
        unread: false,
        contact: q.contact,
        before,
    };
    let mut rows = state
        .db
        .read(move |c| Ok(conversations::list(c, &viewer, &filter, limit + 1)?))
        .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(50));
    let next = if more {
        rows.last().map(conversations::Row::cursor)
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(json!({"data": rows, "next_cursor": next})))
}

async fn get_conversation(
    state: web::Data<AppState>,
    caller: ApiCaller,
    path: web::Path<i64>,
) -> AppResult<HttpResponse> {
    caller.require(Role::Agent)?;
    let id = path.into_inner();
    let viewer = viewer(&state, &caller).await?;
    let conv = state
        .db
        .read(move |c| conversations::find_conversation(c, &viewer, id)?.ok_or(AppError::NotFound.into()))
        .await?;
    Ok(HttpResponse::Ok().json(conv))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    assignee_id: Option<i64>,
}

async fn post_assign(
    state: web::Data<AppState>,
    caller: ApiCaller,
    path: web::Path<i64>,
    body: web::Json<AssignBody>,
) -> AppResult<HttpResponse> {
    caller.require(Role::Agent)?;
    let (id, to) = (path.into_inner(), body.assignee_id);
    let changed = manage::run(&state.inbox, By::from(&caller), id, move |c, v, w, now| {
        manage::assign(c, v, w, id, to, now)
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({"changed": changed})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    status: String,
    snoozed_until: Option<i64>,
}

async fn post_status(
    state: web::Data<AppState>,
    caller: ApiCaller,
    path: web::Path<i64>,
    body: web::Json<StatusBody>,
) -> AppResult<HttpResponse> {
    caller.require(Role::Agent)?;
    let id = path.into_inner();
    let StatusBody { status, snoozed_until } = body.into_inner();
    let changed = manage::run(&state.inbox, By::from(&caller), id, move |c, v, w, now| {
        manage::set_status(c, v, w, id, &status, snoozed_until, now)
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({"changed": changed})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelsBody {
    #[serde(default)]
    add: Vec<i64>,
    #[serde(default)]
    remove: Vec<i64>,
}

async fn post_labels(
    state: web::Data<AppState>,
    caller: ApiCaller,
    path: web::Path<i64>,
    body: web::Json<LabelsBody>,
) -> AppResult<HttpResponse> {
    caller.require(Role::Agent)?;
    let id = path.into_inner();
    let LabelsBody { add, remove } = body.into_inner();
    let conv = manage::run(&state.inbox, By::from(&caller), id, move |c, v, w, now| {
        for l in add {
            manage::label(c, v, w, id, l, true, now)?;
        }
        for l in remove {
            manage::label(c, v, w, id, l, false, now)?;
        }
        Ok(conversations::find_conversation(c, v, id)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(conv))
}

#[derive(Deserialize)]
pub struct MessagesQuery {
    /// Messages older than this id (`next_cursor`).
    cursor: Option<i64>,
    limit: Option<i64>,
}

async fn get_messages(
    state: web::Data<AppState>,
    caller: ApiCaller,
    path: web::Path<i64>,
    q: web::Query<MessagesQuery>,
) -> AppResult<HttpResponse> {
    caller.require(Role::Agent)?;
    let id = path.into_inner();
    let viewer = viewer(&state, &caller).await?;
    let limit = q.limit.unwrap_or(50).clamp(1, MAX_LIMIT);
    let before = q.cursor;
    let mut msgs = state
        .db
        .read(move |c| {
            viewer.check(c, id)?;
            Ok(thread::list_messages(c, id, before, limit + 1)?)
        })
        .await?;
    let more = msgs.len() as i64 > limit;
    if more {
        msgs.remove(0);
    }
    msgs.reverse();
    let next = if more { msgs.last().map(|m| m.id) } else { None };
    let data: Vec<Value> = msgs
        .iter()
        .map(|m| {
            let mut v = serde_json::to_value(m).unwrap_or(Value::Null);
            v["detail"] = serde_json::to_value(&m.detail).unwrap_or(Value::Null);
            v
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"data": data, "next_cursor": next})))
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SendBody {
    Text {
        body: String,
        reply_to: Option<i64>,
    },
    Template {
        name: String,
        language: String,
        #[serde(default)]
        params: Vec<String>,
    },
    /// A file as base64 (up to 16 MB through the API).
    Media {
        filename: String,
        mime_type: String,
        data_base64: String,
        #[serde(default)]
        caption: String,
        reply_to: Option<i64>,
    },
}

async fn post_message(
    state: web::Data<AppState>,
    caller: ApiCaller,
    path: web::Path<i64>,
    body: web::Json<SendBody>,
) -> AppResult<HttpResponse> {
    caller.require(Role::Agent)?;
    let id = path.into_inner();
    let viewer = viewer(&state, &caller).await?;
    let compose = match body.into_inner() {
        SendBody::Text { body, reply_to } => Compose::Text { body, reply_to },
        SendBody::Template { name, language, params } => Compose::Template { name, language, params },
        SendBody::Media {
            filename,
            mime_type,
            data_base64,
            caption,
            reply_to,
        } => {
            let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(data_base64.trim()) else {
                return Ok(invalid("api.bad_base64"));
            };
            let file = reply::Attachment {
                filename,
                mime: mime_type,
                bytes,
                caption,
                reply_to,
            };
            return match reply::attach(&state.inbox, viewer, id, file, None, reply::Origin::Api).await? {
                Ok(message_id) => Ok(queued(message_id)),
                Err(key) => Ok(invalid(key)),
            };
        }
    };
    match reply::send(&state.inbox, viewer, id, compose, None, reply::Origin::Api).await? {
        Ok(message_id) => Ok(queued(message_id)),
        Err(key) => Ok(invalid(key)),
    }
}

async fn get_labels(state: web::Data<AppState>, caller: ApiCaller) -> AppResult<HttpResponse> {
    caller.require(Role::Agent)?;
    let labels = state.db.read(|c| Ok(catalog::list_labels(c)?)).await?;
    Ok(HttpResponse::Ok().json(json!({"data": labels, "next_cursor": null})))
}

/// This module's part of the OpenAPI document.
pub fn openapi_paths(error: &Value) -> Value {
    let id = json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}]);
    let conv = json!({"$ref": "#/components/schemas/Conversation"});
    let ok = |d: &str, schema: Value| json!({"description": d, "content": {"application/json": {"schema": schema}}});
    let changed = json!({"type": "object", "properties": {"changed": {"type": "boolean"}}});
    let body = |schema: Value| json!({"required": true, "content": {"application/json": {"schema": schema}}});
    json!({
        "/conversations": {"get": {
            "summary": "Conversations the key may see, newest activity first",
            "parameters": [
                {"name": "status", "in": "query", "schema": {"enum": ["open", "pending", "resolved", "snoozed"]}},
                {"name": "number", "in": "query", "schema": {"type": "string"}, "description": "phone_number_id"},
                {"name": "label", "in": "query", "schema": {"type": "integer"}},
                {"name": "contact", "in": "query", "schema": {"type": "integer"}},
                {"name": "unassigned", "in": "query", "schema": {"type": "boolean"}},
                {"name": "cursor", "in": "query", "schema": {"type": "string"}, "description": "next_cursor of the previous page"},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}}],
            "responses": {"200": ok("A page", json!({"type": "object", "properties": {"data": {"type": "array", "items": conv},
                "next_cursor": {"type": ["string", "null"]}}})), "400": error, "401": error, "403": error, "429": error}}},
        "/conversations/{id}": {"parameters": id, "get": {"summary": "One conversation",
            "responses": {"200": ok("The conversation", conv.clone()), "401": error, "404": error, "429": error}}},
        "/conversations/{id}/assign": {"parameters": id, "post": {"summary": "Assign (assignee_id a user id) or unassign (null)",
            "requestBody": body(json!({"type": "object", "properties": {"assignee_id": {"type": ["integer", "null"]}}})),
            "responses": {"200": ok("Done", changed.clone()), "400": error, "401": error, "404": error, "429": error}}},
        "/conversations/{id}/status": {"parameters": id, "post": {"summary": "Set the status; snoozed needs snoozed_until (Unix time, future)",
            "requestBody": body(json!({"type": "object", "required": ["status"], "properties": {
                "status": {"enum": ["open", "pending", "resolved", "snoozed"]}, "snoozed_until": {"type": ["integer", "null"]}}})),
            "responses": {"200": ok("Done", changed), "400": error, "401": error, "404": error, "429": error}}},
        "/conversations/{id}/labels": {"parameters": id, "post": {"summary": "Add and remove labels (ids from /labels)",
            "requestBody": body(json!({"type": "object", "properties": {"add": {"type": "array", "items": {"type": "integer"}},
                "remove": {"type": "array", "items": {"type": "integer"}}}})),
            "responses": {"200": ok("The conversation", conv), "400": error, "401": error, "404": error, "429": error}}},
        "/conversations/{id}/messages": {"parameters": id,
            "get": {"summary": "Messages, newest first",
                "parameters": [{"name": "cursor", "in": "query", "schema": {"type": "integer"}, "description": "older than this message id"},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}}],
                "responses": {"200": ok("A page", json!({"type": "object", "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Message"}},
                    "next_cursor": {"type": ["integer", "null"]}}})), "401": error, "404": error, "429": error}},
            "post": {"summary": "Send: text or media inside the 24-hour window, an approved template any time. Queued at once (202).",
                "requestBody": body(json!({"oneOf": [
                    {"type": "object", "required": ["type", "body"], "properties": {"type": {"const": "text"}, "body": {"type": "string", "maxLength": 4096}, "reply_to": {"type": ["integer", "null"]}}},
                    {"type": "object", "required": ["type", "name", "language"], "properties": {"type": {"const": "template"}, "name": {"type": "string"}, "language": {"type": "string"}, "params": {"type": "array", "items": {"type": "string"}}}},
                    {"type": "object", "required": ["type", "filename", "mime_type", "data_base64"], "properties": {"type": {"const": "media"}, "filename": {"type": "string"}, "mime_type": {"type": "string"}, "data_base64": {"type": "string"}, "caption": {"type": "string"}, "reply_to": {"type": ["integer", "null"]}}}]})),
                "responses": {"202": ok("Queued", json!({"type": "object", "properties": {"id": {"type": "integer"}, "status": {"const": "pending"}}})),
                    "400": error, "401": error, "404": error, "422": error, "429": error}}},
        "/labels": {"get": {"summary": "All labels", "responses": {"200": ok("Labels", json!({"type": "object", "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Label"}}}})),
            "401": error, "429": error}}}
    })
}

/// Schemas this module adds to the OpenAPI document.
pub fn openapi_schemas() -> Value {
    json!({
        "Label": {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "color": {"type": "string"}}},
        "Conversation": {"type": "object", "properties": {"id": {"type": "integer"}, "contact_id": {"type": "integer"},
            "contact_name": {"type": "string"}, "phone": {"type": ["string", "null"]}, "phone_number_id": {"type": "string"},
            "number_name": {"type": "string"}, "status": {"enum": ["open", "pending", "resolved", "snoozed"]},
            "snoozed_until": {"type": ["integer", "null"]}, "assignee_id": {"type": ["integer", "null"]},
            "assignee_name": {"type": ["string", "null"]}, "last_message_at": {"type": "integer"},
            "last_inbound_at": {"type": ["integer", "null"], "description": "the 24-hour window runs from here"},
            "preview": {"type": "string"}, "unread": {"type": "integer"},
            "labels": {"type": "array", "items": {"$ref": "#/components/schemas/Label"}}}},
        "Message": {"type": "object", "properties": {"id": {"type": "integer"}, "direction": {"enum": ["in", "out"]},
            "kind": {"type": "string"}, "body": {"type": "string"}, "detail": {"type": "object"}, "wamid": {"type": ["string", "null"]},
            "sent_at": {"type": "integer"}, "status": {"type": ["string", "null"], "description": "pending, sent, delivered, read, failed, held"},
            "error": {"type": ["string", "null"]}, "author": {"type": ["string", "null"]}}}
    })
}
