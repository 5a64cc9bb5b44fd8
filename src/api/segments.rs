//! `/api/v1/segments`: list, one segment with its live count, create, replace and
//! delete, with the same checks and audit lines as the segment pages. Supervisor keys
//! and up (a segment counts over every contact; see `contacts::segments_routes`).

use super::ApiCaller;
use crate::app::AppState;
use crate::auth::Role;
use crate::contacts::segments::{self, Segment, SegmentId, SegmentInput};
use crate::contacts::segments_routes::{known, moment};
use crate::error::{AppError, AppResult, FormErrors};
use actix_web::{HttpResponse, web};
use serde_json::{Value, json};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/v1/segments")
            .route(web::get().to(get_segments))
            .route(web::post().to(post_segments)),
    )
    .service(
        web::resource("/api/v1/segments/{id}")
            .route(web::get().to(get_segment))
            .route(web::put().to(put_segment))
            .route(web::delete().to(delete_segment)),
    );
}

/// A segment as the API shows it: with its live count.
fn body(s: &Segment, count: i64) -> Value {
    json!({"id": s.id, "name": s.name, "filter": s.filter, "count": count,
           "created_by": s.created_by, "created_at": s.created_at, "updated_at": s.updated_at})
}

/// 422 naming each bad field (`name`, `filter.number`, …) in words.
fn invalid(errors: &FormErrors) -> HttpResponse {
    super::invalid_fields(errors, |f| {
        if f == "name" {
            f.to_string()
        } else {
            format!("filter.{f}")
        }
    })
}

/// The body as a segment, or a 422 that says what does not fit (serde names the field:
/// "unknown field `labels`", "unknown variant `maybe`", "invalid type: string").
fn parse(bytes: &[u8]) -> Result<SegmentInput, Box<HttpResponse>> {
    serde_json::from_slice(bytes).map_err(|e| {
        let message = format!("The body is not a segment: {e}");
        Box::new(
            HttpResponse::UnprocessableEntity()
                .json(json!({"error": {"code": "invalid", "message": message, "fields": {"body": message}}})),
        )
    })
}

async fn get_segments(state: web::Data<AppState>, caller: ApiCaller) -> AppResult<HttpResponse> {
    caller.require(Role::Supervisor)?;
    let at = moment(&state);
    let data = state
        .db
        .read(move |c| {
            let mut out = Vec::new();
            for s in segments::list(c)? {
                let n = segments::count(c, &s.filter, &at)?;
                out.push(body(&s, n));
            }
            Ok(out)
        })
        .await?;
    Ok(HttpResponse::Ok().json(json!({"data": data})))
}

async fn get_segment(state: web::Data<AppState>, caller: ApiCaller, path: web::Path<i64>) -> AppResult<HttpResponse> {
    caller.require(Role::Supervisor)?;
    let (id, at) = (SegmentId(path.into_inner()), moment(&state));
    let out = state
        .db
        .read(move |c| {
            let s = segments::find(c, id)?.ok_or(AppError::NotFound)?;
            let n = segments::count(c, &s.filter, &at)?;
            Ok(body(&s, n))
        })
        .await?;
    Ok(HttpResponse::Ok().json(out))
}

async fn post_segments(state: web::Data<AppState>, caller: ApiCaller, bytes: web::Bytes) -> AppResult<HttpResponse> {
    caller.require(Role::Supervisor)?;
    let input = match parse(&bytes) {
        Ok(i) => i,
        Err(resp) => return Ok(*resp),
    };
    save(&state, &caller, None, input).await
}

async fn put_segment(
    state: web::Data<AppState>,
    caller: ApiCaller,
    path: web::Path<i64>,
    bytes: web::Bytes,
) -> AppResult<HttpResponse> {
    caller.require(Role::Supervisor)?;
    let input = match parse(&bytes) {
        Ok(i) => i,
        Err(resp) => return Ok(*resp),
    };
    save(&state, &caller, Some(SegmentId(path.into_inner())), input).await
}

async fn save(
    state: &AppState,
    caller: &ApiCaller,
    id: Option<SegmentId>,
    input: SegmentInput,
) -> AppResult<HttpResponse> {
    let (actor, now, at) = (caller.actor(), state.now(), moment(state));
    let saved = state
        .db
        .write(move |c| {
            let known = known(c)?;
            let saved = match id {
                Some(id) => segments::update(c, &known, &actor, id, &input, now)?.ok_or(AppError::NotFound)?,
                None => segments::create(c, &known, &actor, &input, now)?,
            };
            Ok(match saved {
                Ok(s) => Ok(body(&s, segments::count(c, &s.filter, &at)?)),
                Err(e) => Err(e),
            })
        })
        .await?;
    Ok(match saved {
        Ok(b) if id.is_none() => HttpResponse::Created().json(b),
        Ok(b) => HttpResponse::Ok().json(b),
        Err(errors) => invalid(&errors),
    })
}

async fn delete_segment(
    state: web::Data<AppState>,
    caller: ApiCaller,
    path: web::Path<i64>,
) -> AppResult<HttpResponse> {
    caller.require(Role::Supervisor)?;
    let (id, actor, now) = (SegmentId(path.into_inner()), caller.actor(), state.now());
    let deleted = state
        .db
        .write(move |c| Ok(segments::delete(c, &actor, id, now)?))
        .await?;
    if deleted {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(AppError::NotFound)
    }
}

/// The OpenAPI paths of this module (merged into `api::routes::openapi`).
pub fn openapi_paths(error: &Value) -> Value {
    let id = json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}]);
    let seg = json!({"$ref": "#/components/schemas/Segment"});
    let ok = |d: &str, schema: Value| json!({"description": d, "content": {"application/json": {"schema": schema}}});
    let input = json!({"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SegmentInput"}}}});
    json!({
        "/segments": {
            "get": {"summary": "Every segment with its live count (role supervisor or higher)",
                "responses": {"200": ok("The segments", json!({"type": "object", "properties": {"data": {"type": "array", "items": seg}}})),
                    "401": error, "403": error, "429": error}},
            "post": {"summary": "Create a segment (422 names the bad field, e.g. filter.number)", "requestBody": input,
                "responses": {"201": ok("Created", seg.clone()), "401": error, "403": error, "422": error, "429": error}}
        },
        "/segments/{id}": {
            "parameters": id,
            "get": {"summary": "One segment with its live count", "responses": {"200": ok("The segment", seg.clone()),
                "401": error, "403": error, "404": error, "429": error}},
            "put": {"summary": "Replace a segment's name and filter", "requestBody": input,
                "responses": {"200": ok("The segment", seg), "401": error, "403": error, "404": error, "422": error, "429": error}},
            "delete": {"summary": "Delete a segment (its contacts stay)", "responses": {"204": {"description": "Deleted"},
                "401": error, "403": error, "404": error, "429": error}}
        }
    })
}

pub fn openapi_schemas() -> Value {
    let labels = json!({"type": "array", "items": {"type": "string"}, "description": "label names (on the contact or one of its conversations)"});
    let state = json!({"enum": ["unknown", "opted_in", "opted_out"]});
    let day = json!({"type": "string", "format": "date", "description": "YYYY-MM-DD in the business's time zone"});
    let filter = json!({"type": "object", "additionalProperties": false, "description": "Every criterion is optional; all given must hold. {} is every contact.",
        "properties": {
            "labels_any": labels, "labels_all": labels, "labels_none": labels,
            "attributes": {"type": "array", "maxItems": segments::MAX_ATTRIBUTES, "items": {"type": "object", "required": ["key", "op"], "properties": {
                "key": {"type": "string"}, "op": {"enum": ["equals", "contains", "is_set", "is_empty"]},
                "value": {"type": "string", "description": "for equals and contains; case of A-Z ignored"}}}},
            "consent_marketing": state, "consent_utility": state,
            "last_inbound": {"type": "object", "required": ["when"], "properties": {
                "when": {"enum": ["within", "not_within", "never"], "description": "not_within: wrote before, but not in the last `days` days"},
                "days": {"type": "integer", "minimum": 1, "maximum": segments::MAX_DAYS}}},
            "created_from": day, "created_before": day,
            "number": {"type": "string", "description": "phone_number_id of a connected number they wrote to"}}});
    json!({
        "SegmentFilter": filter,
        "SegmentInput": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string", "maxLength": 100}, "filter": {"$ref": "#/components/schemas/SegmentFilter"}}},
        "Segment": {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"},
            "filter": {"$ref": "#/components/schemas/SegmentFilter"}, "count": {"type": "integer", "description": "contacts matching now"},
            "created_by": {"type": "string"}, "created_at": {"type": "integer"}, "updated_at": {"type": "integer"}}}
    })
}
