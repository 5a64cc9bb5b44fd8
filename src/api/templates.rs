//! `/api/v1/templates`: the templates with their status (agents and up), make one
//! (supervisors and admins, the same checks as the form: 422 with every problem), and
//! delete one (admins; in Meta first). Roles as on the pages (`templates::service`).

use super::ApiCaller;
use crate::app::AppState;
use crate::auth::Role;
use crate::error::{AppError, AppResult};
use crate::i18n::Locale;
use crate::whatsapp::templates::service::{self, CREATE_ROLE, DELETE_ROLE, Deleted, Sample, Submitted};
use crate::whatsapp::templates::{Draft, Problem, Template};
use actix_web::{HttpResponse, web};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/v1/templates")
            // A base64 sample of a document header can be large (Meta takes 100 MB PDFs;
            // 24 MB of JSON is what the API takes, as for messages).
            .app_data(web::JsonConfig::default().limit(24 * 1024 * 1024))
            .route(web::get().to(get_templates))
            .route(web::post().to(post_templates)),
    )
    .service(
        web::resource("/api/v1/templates/{id}")
            .route(web::get().to(get_template))
            .route(web::delete().to(delete_template)),
    );
}

/// A template as the API shows it.
pub fn template_json(t: &Template) -> Value {
    let why = t.usable().err().map(|u| crate::i18n::t(Locale::En, u.key()));
    let (reason, detail) = t.rejection().unwrap_or(("", ""));
    json!({
        "id": t.id, "waba_id": t.waba_id, "meta_id": t.meta_id, "name": t.name, "language": t.language,
        "category": t.category, "status": t.status.as_str(), "quality": t.quality.as_str(),
        "rejection_reason": (!reason.is_empty()).then_some(reason),
        "rejection_detail": (!detail.is_empty()).then_some(detail),
        "category_change": t.coming_category().map(|(c, at)| json!({"new_category": c, "at": at})),
        "usable": why.is_none(), "unusable_reason": why,
        "parameter_format": if t.named_params { "named" } else { "positional" },
        "header_format": t.header_format, "header_text": t.header_text, "body": t.body_text,
        "footer": t.footer_text, "buttons": t.buttons, "examples": t.examples.body,
        "created_by": (!t.created_by.is_empty()).then_some(&t.created_by), "created_at": t.created_at,
    })
}

#[derive(Deserialize)]
pub struct ListQuery {
    cursor: Option<i64>,
    limit: Option<i64>,
}

async fn get_templates(
    state: web::Data<AppState>,
    caller: ApiCaller,
    q: web::Query<ListQuery>,
) -> AppResult<HttpResponse> {
    caller.require(Role::Agent)?;
    let limit = usize::try_from(q.limit.unwrap_or(50).clamp(1, 200)).unwrap_or(50);
    let after = q.cursor.unwrap_or(0);
    let (mut all, _) = service::overview(&state.db).await?;
    all.sort_by_key(|t| t.id);
    let page: Vec<&Template> = all.iter().filter(|t| t.id > after).take(limit + 1).collect();
    let next = (page.len() > limit)
        .then(|| page.get(limit - 1).map(|t| t.id))
        .flatten();
    let data: Vec<Value> = page.iter().take(limit).map(|t| template_json(t)).collect();
    Ok(HttpResponse::Ok().json(json!({"data": data, "next_cursor": next})))
}

/// A media header's sample in JSON.
#[derive(Deserialize)]
pub struct SampleInput {
    #[serde(default)]
    filename: String,
    mime: String,
    /// The file, base64 (standard alphabet).
    data: String,
}

#[derive(Deserialize)]
pub struct TemplateInput {
    /// The number whose WhatsApp Business Account gets the template (not needed when
    /// there is only one account).
    number_id: Option<i64>,
    #[serde(flatten)]
    draft: Draft,
    header_sample: Option<SampleInput>,
}

fn problems_json(problems: &[Problem]) -> HttpResponse {
    let list: Vec<Value> = problems
        .iter()
        .map(|p| {
            json!({"field": p.field, "code": p.key.trim_start_matches("templates.problem."),
                   "message": p.message(Locale::En, None)})
        })
        .collect();
    let message = list.first().map(|p| p["message"].clone()).unwrap_or_default();
    HttpResponse::UnprocessableEntity()
        .json(json!({"error": {"code": "invalid", "message": message, "problems": list}}))
}

fn refused_json(message: &str, reached_meta: bool) -> HttpResponse {
    if reached_meta {
        HttpResponse::UnprocessableEntity().json(json!({"error": {"code": "meta_refused", "message": message}}))
    } else {
        HttpResponse::BadGateway().json(json!({"error": {"code": "meta_unreachable", "message": message}}))
    }
}

async fn post_templates(
    state: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<TemplateInput>,
) -> AppResult<HttpResponse> {
    caller.require(CREATE_ROLE)?;
    let input = body.into_inner();
    let sample = match input.header_sample {
        None => None,
        Some(s) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s.data.trim())
                .map_err(|_| AppError::BadRequest("error.bad_request"))?;
            let filename = if s.filename.trim().is_empty() {
                "sample".to_string()
            } else {
                s.filename
                    .chars()
                    .filter(|c| !c.is_control() && *c != '/')
                    .take(200)
                    .collect()
            };
            Some(Sample {
                filename,
                mime: s.mime.trim().to_ascii_lowercase(),
                bytes,
            })
        }
    };
    let submitted = service::create(
        &state.db,
        &state.graph,
        state.now(),
        caller.actor(),
        input.number_id,
        input.draft,
        sample,
    )
    .await?;
    match submitted {
        Submitted::Created(id) => {
            let t = service::get(&state.db, id).await?;
            Ok(HttpResponse::Created().json(template_json(&t)))
        }
        Submitted::Invalid(problems) => Ok(problems_json(&problems)),
        Submitted::Refused { message, reached_meta } => Ok(refused_json(&message, reached_meta)),
    }
}

async fn get_template(state: web::Data<AppState>, caller: ApiCaller, path: web::Path<i64>) -> AppResult<HttpResponse> {
    caller.require(Role::Agent)?;
    let t = service::get(&state.db, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(template_json(&t)))
}

async fn delete_template(
    state: web::Data<AppState>,
    caller: ApiCaller,
    path: web::Path<i64>,
) -> AppResult<HttpResponse> {
    caller.require(DELETE_ROLE)?;
    match service::delete(&state.db, &state.graph, state.now(), caller.actor(), path.into_inner()).await? {
        Deleted::Done => Ok(HttpResponse::NoContent().finish()),
        Deleted::Refused { message, reached_meta } => Ok(refused_json(&message, reached_meta)),
    }
}

/// The OpenAPI paths and schemas of these routes.
pub fn openapi_paths(error: &Value) -> Value {
    json!({
        "/templates": {
            "get": {"summary": "Message templates with their status, rejection reason, quality and whether they can be sent (role agent or higher)",
                "parameters": [
                    {"name": "cursor", "in": "query", "schema": {"type": "integer"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}}],
                "responses": {"200": {"description": "A page of templates", "content": {"application/json": {"schema": {"type": "object", "properties": {
                    "data": {"type": "array", "items": {"$ref": "#/components/schemas/Template"}}, "next_cursor": {"type": ["integer", "null"]}}}}}},
                    "401": error, "403": error, "429": error}},
            "post": {"summary": "Make a template and submit it to Meta for review (role supervisor or higher). Checked first: 422 lists every problem and nothing is sent.",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TemplateInput"}}}},
                "responses": {"201": {"description": "Submitted; status PENDING until Meta's review", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Template"}}}},
                    "401": error, "403": error, "422": error, "429": error, "502": error}}
        },
        "/templates/{id}": {
            "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
            "get": {"summary": "One template (role agent or higher)", "responses": {"200": {"description": "The template",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Template"}}}}, "401": error, "404": error, "429": error}},
            "delete": {"summary": "Delete a template in Meta, then here (role admin)",
                "responses": {"204": {"description": "Deleted"}, "401": error, "403": error, "404": error, "422": error, "429": error, "502": error}}
        }
    })
}

pub fn openapi_schemas() -> Value {
    let button = json!({"type": "object", "required": ["type"], "properties": {
        "type": {"enum": ["quick_reply", "url", "phone", "copy_code"]}, "text": {"type": "string", "maxLength": 25},
        "url": {"type": "string", "description": "https://…, at most one variable {{1}} at the end"},
        "example": {"type": "string", "description": "the URL variable's example, or the copy code"},
        "phone": {"type": "string", "description": "+ and digits"}}});
    json!({
        "Template": {"type": "object", "properties": {
            "id": {"type": "integer"}, "waba_id": {"type": "string"}, "meta_id": {"type": "string"},
            "name": {"type": "string"}, "language": {"type": "string"}, "category": {"type": "string"},
            "status": {"type": "string", "description": "APPROVED, PENDING, REJECTED, PAUSED, DISABLED, …"},
            "quality": {"enum": ["GREEN", "YELLOW", "RED", "UNKNOWN"]},
            "rejection_reason": {"type": ["string", "null"]}, "rejection_detail": {"type": ["string", "null"]},
            "usable": {"type": "boolean"}, "unusable_reason": {"type": ["string", "null"]},
            "parameter_format": {"enum": ["positional", "named"]}, "body": {"type": "string"},
            "buttons": {"type": "array", "items": button}}},
        "TemplateInput": {"type": "object", "required": ["name", "category", "language", "body"], "properties": {
            "number_id": {"type": "integer", "description": "needed when several WhatsApp accounts are connected"},
            "name": {"type": "string", "pattern": "^[a-z0-9_]{1,512}$"},
            "category": {"enum": ["MARKETING", "UTILITY", "AUTHENTICATION"]},
            "language": {"type": "string", "description": "Meta's code: id, en, en_US, ms, …"},
            "header": {"type": "object", "properties": {"format": {"enum": ["none", "text", "image", "video", "document"]},
                "text": {"type": "string", "maxLength": 60}, "example": {"type": "string"}}},
            "header_sample": {"type": "object", "required": ["mime", "data"], "properties": {"filename": {"type": "string"},
                "mime": {"enum": ["image/jpeg", "image/png", "video/mp4", "application/pdf"]}, "data": {"type": "string", "contentEncoding": "base64"}}},
            "body": {"type": "string", "maxLength": 1024, "description": "{{1}}, {{2}}… or {{first_name}}…, one kind"},
            "examples": {"type": "object", "additionalProperties": {"type": "string"}, "description": "variable (1, first_name) → example"},
            "footer": {"type": "string", "maxLength": 60}, "buttons": {"type": "array", "maxItems": 10, "items": button}}}
    })
}
