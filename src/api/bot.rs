//! `GET/PUT /api/v1/numbers/{id}/bot`: a number's whole bot (rules, flows, hours,
//! texts) as one JSON document, so it can be versioned and copied between numbers. A
//! PUT is validated whole: 422 lists every problem with its place, and nothing is
//! saved. Supervisor keys and up, like the bot pages.

use super::ApiCaller;
use crate::app::AppState;
use crate::auth::Role;
use crate::bot::service;
use crate::error::AppResult;
use actix_web::{HttpResponse, web};
use serde_json::{Value, json};

/// The largest document accepted (500 rules and 100 flows fit well within).
const MAX_DOCUMENT: usize = 1 << 20;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/v1/numbers/{id}/bot")
            .app_data(web::PayloadConfig::new(MAX_DOCUMENT))
            .route(web::get().to(get_bot))
            .route(web::put().to(put_bot)),
    );
}

async fn get_bot(state: web::Data<AppState>, caller: ApiCaller, path: web::Path<i64>) -> AppResult<HttpResponse> {
    caller.require(Role::Supervisor)?;
    let number = path.into_inner();
    let current = state
        .db
        .read(move |c| {
            if crate::whatsapp::numbers::repo::find_number(c, number)?.is_none() {
                return Err(crate::error::AppError::NotFound.into());
            }
            Ok(service::current(c, number)?)
        })
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("ETag", format!("\"{}\"", current.version)))
        .json(current.bot))
}

async fn put_bot(
    state: web::Data<AppState>,
    caller: ApiCaller,
    path: web::Path<i64>,
    bytes: web::Bytes,
) -> AppResult<HttpResponse> {
    caller.require(Role::Supervisor)?;
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return Ok(HttpResponse::UnprocessableEntity()
            .json(json!({"error": {"code": "invalid", "message": "The body is not UTF-8 text."}})));
    };
    match service::import(&state.db, &state.clock, path.into_inner(), text, caller.actor()).await? {
        Ok(version) => Ok(HttpResponse::Ok()
            .insert_header(("ETag", format!("\"{version}\"")))
            .json(json!({"version": version}))),
        Err(problems) => {
            let en = crate::i18n::Locale::En;
            let list: Vec<Value> = problems
                .iter()
                .map(|p| json!({"path": p.path, "code": p.key, "message": p.message(en)}))
                .collect();
            let message = format!(
                "The bot document has {} problem(s); nothing was saved. First: {}",
                list.len(),
                problems.first().map(|p| p.message(en)).unwrap_or_default()
            );
            Ok(HttpResponse::UnprocessableEntity()
                .json(json!({"error": {"code": "invalid_bot", "message": message, "problems": list}})))
        }
    }
}

pub fn openapi_paths(error: &Value) -> Value {
    json!({
        "/numbers/{id}/bot": {
            "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}, "description": "the number's id (GET /numbers)"}],
            "get": {"summary": "The number's whole bot as one document (role supervisor or higher); ETag is its version",
                "responses": {"200": {"description": "The bot", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Bot"}}}},
                    "401": error, "403": error, "404": error, "429": error}},
            "put": {"summary": "Replace the number's bot with a document (validated whole; 422 lists every problem with its path, and nothing is saved)",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Bot"}}}},
                "responses": {"200": {"description": "Saved", "content": {"application/json": {"schema": {"type": "object", "properties": {"version": {"type": "integer"}}}}}},
                    "401": error, "403": error, "404": error, "413": error, "422": error, "429": error}}
        }
    })
}

pub fn openapi_schemas() -> Value {
    let next = json!({"type": "string", "description": "a step id of the same flow, flow:<id>, handoff or end"});
    let choice = json!({"type": "object", "required": ["id", "title", "next"], "properties": {
        "id": {"type": "string", "maxLength": 64, "description": "routes the answer (never the title)"},
        "title": {"type": "string", "maxLength": 24, "description": "20 for buttons (3 or fewer choices), 24 for list rows"},
        "description": {"type": "string", "maxLength": 72, "description": "list rows only"}, "next": next}});
    let reply = json!({"type": "object", "required": ["text"], "properties": {
        "text": {"type": "string", "maxLength": 1024},
        "media": {"type": "object", "required": ["kind", "link"], "properties": {"kind": {"enum": ["image", "video", "document"]}, "link": {"type": "string", "format": "uri"}, "filename": {"type": "string"}}},
        "choices": {"type": "array", "maxItems": 10, "items": choice},
        "list_button": {"type": "string", "maxLength": 20}}});
    let action = json!({"oneOf": [
        {"type": "object", "required": ["do", "reply"], "properties": {"do": {"const": "reply"}, "reply": reply}},
        {"type": "object", "required": ["do", "flow"], "properties": {"do": {"const": "flow"}, "flow": {"type": "string"}}},
        {"type": "object", "required": ["do"], "properties": {"do": {"const": "handoff"}}}]});
    let rule = json!({"type": "object", "required": ["id", "match", "patterns", "then"], "properties": {
        "id": {"type": "string"}, "name": {"type": "string"}, "enabled": {"type": "boolean"},
        "match": {"enum": ["exact", "contains", "starts_with", "regex"]},
        "patterns": {"type": "array", "items": {"type": "string", "maxLength": 200}, "description": "case, accents and surrounding punctuation are ignored"},
        "priority": {"type": "integer", "description": "higher first"},
        "active_from": {"type": "string", "format": "date"}, "active_until": {"type": "string", "format": "date"}, "then": action}});
    let step = json!({"type": "object", "required": ["id", "type"], "properties": {
        "id": {"type": "string"}, "type": {"enum": ["message", "ask", "menu", "branch", "handoff", "end"]},
        "reply": reply, "text": {"type": "string"}, "store": {"type": "string", "description": "name, or a custom field"},
        "validate": {"enum": ["text", "number", "email", "date", "choice"]}, "options": {"type": "array", "items": {"type": "string"}},
        "invalid_text": {"type": "string"}, "retries": {"type": "integer", "minimum": 1, "maximum": 10},
        "variable": {"type": "string"}, "cases": {"type": "array", "items": {"type": "object", "properties": {"equals": {"type": "string"}, "next": next}}},
        "otherwise": next, "next": next}});
    let flow = json!({"type": "object", "required": ["id", "steps"], "properties": {
        "id": {"type": "string"}, "name": {"type": "string"}, "enabled": {"type": "boolean"},
        "steps": {"type": "array", "description": "the first is where the flow starts", "items": step}}});
    let intervals = json!({"type": "array", "items": {"type": "string"}});
    let hours = json!({"type": "object", "properties": {
        "timezone": {"type": "string", "description": "IANA, e.g. Asia/Jakarta; default the business's"},
        "weekly": {"type": "object", "description": "mon..sun -> [\"09:00-17:00\", \"22:00-02:00\"]; an end before the start crosses midnight",
            "additionalProperties": intervals},
        "holidays": {"type": "array", "items": {"type": "string", "format": "date"}},
        "special": {"type": "object", "additionalProperties": intervals},
        "away_text": {"type": "string"}, "quiet_after_agent_minutes": {"type": "integer"}, "bot_while_closed": {"type": "boolean"}}});
    let words = json!({"type": "array", "items": {"type": "string"}});
    let guards = json!({"type": "object", "properties": {
        "flow_timeout_minutes": {"type": "integer", "minimum": 1}, "max_per_minute": {"type": "integer", "minimum": 1},
        "back_words": words, "cancel_words": words, "cancel_text": {"type": "string"}}});
    let handoff = json!({"type": "object", "properties": {"assign": {"oneOf": [{"enum": ["unassigned", "round_robin"]}, {"type": "integer", "description": "a user id"}]}, "text": {"type": "string"}}});
    let welcome = json!({"type": "object", "required": ["reply"], "properties": {"enabled": {"type": "boolean"}, "reply": reply, "after_silence_days": {"type": "integer", "minimum": 0}}});
    json!({"Bot": {"type": "object", "additionalProperties": false, "properties": {
        "enabled": {"type": "boolean"}, "welcome": welcome,
        "rules": {"type": "array", "items": rule}, "flows": {"type": "array", "items": flow},
        "fallback": action, "hours": hours, "handoff": handoff, "guards": guards}}})
}
