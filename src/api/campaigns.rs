//! `/api/v1/campaigns`: drafts (create, replace with PUT, delete), the pre-flight, the
//! transitions (start, pause, resume, cancel), send again to the held, follow-ups and
//! the recipient ledger, through `campaigns::service` with the key as the audit actor.
//! Agents' keys read; supervisors' and admins' keys change (as on the pages).

use super::ApiCaller;
use crate::app::AppState;
use crate::auth::Role;
use crate::campaigns::service::{self, Spec, Started};
use crate::campaigns::{self, Campaign, CampaignId, CampaignState, FollowUp, Recipient, RecipientState};
use crate::contacts::segments_routes::known;
use crate::error::{AppError, AppResult, FormErrors};
use crate::i18n::{Locale, t};
use actix_web::{HttpResponse, web};
use chrono::TimeZone;
use rusqlite::Connection;
use serde::Deserialize;
use serde_json::{Value, json};

/// Who may change campaigns (create, edit, start, pause, resume, cancel, follow up).
const CHANGE_ROLE: Role = Role::Supervisor;
/// Recipients per page: the default and the most.
const PAGE: i64 = 100;
const MAX_PAGE: i64 = 500;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/v1/campaigns")
            .route(web::get().to(get_campaigns))
            .route(web::post().to(post_campaigns)),
    )
    .service(
        web::resource("/api/v1/campaigns/{id}")
            .route(web::get().to(get_campaign))
            .route(web::put().to(put_campaign))
            .route(web::delete().to(delete_campaign)),
    )
    .service(web::resource("/api/v1/campaigns/{id}/preflight").route(web::post().to(post_preflight)))
    .service(web::resource("/api/v1/campaigns/{id}/start").route(web::post().to(post_start)))
    .service(web::resource("/api/v1/campaigns/{id}/pause").route(web::post().to(post_pause)))
    .service(web::resource("/api/v1/campaigns/{id}/resume").route(web::post().to(post_resume)))
    .service(web::resource("/api/v1/campaigns/{id}/cancel").route(web::post().to(post_cancel)))
    .service(web::resource("/api/v1/campaigns/{id}/send-again").route(web::post().to(post_send_again)))
    .service(web::resource("/api/v1/campaigns/{id}/follow-up").route(web::post().to(post_follow_up)))
    .service(web::resource("/api/v1/campaigns/{id}/recipients").route(web::get().to(get_recipients)));
}

// ---- answers -------------------------------------------------------------------------

/// 409 with the catalogue key as the code and its English text.
fn conflict(key: &'static str) -> HttpResponse {
    HttpResponse::Conflict().json(json!({"error": {"code": key, "message": t(Locale::En, key)}}))
}

/// 422 naming each bad field as the body names it (`schedule.hours`, not `hours`).
fn invalid(errors: &FormErrors) -> HttpResponse {
    super::invalid_fields(errors, |f| match f {
        "schedule" => "schedule.at".to_string(),
        "hours" => "schedule.hours".to_string(),
        other => other.to_string(),
    })
}

/// 422 for one field.
fn invalid_one(field: &'static str, key: &'static str) -> HttpResponse {
    let mut errors = FormErrors::default();
    errors.add(field, key);
    invalid(&errors)
}

/// The body as `T`, or a 400 saying in one line what does not parse (serde names it:
/// "unknown field `nama`, expected one of `name`, …", "invalid type: string …").
fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, Box<HttpResponse>> {
    serde_json::from_slice(bytes).map_err(|e| {
        let message = format!("The body is not {what}: {e}");
        Box::new(
            HttpResponse::BadRequest()
                .json(json!({"error": {"code": "bad_request", "message": message, "fields": {"body": message}}})),
        )
    })
}

/// A time as RFC 3339 in the business's zone.
fn at(tz: chrono_tz::Tz, t: Option<i64>) -> Option<String> {
    t.and_then(|t| tz.timestamp_opt(t, 0).single()).map(|d| d.to_rfc3339())
}

/// A campaign's settings in the shape a draft is given (`Spec`), plus what it is now.
fn summary(c: &Connection, k: &Campaign, tz: chrono_tz::Tz) -> rusqlite::Result<Value> {
    let counts = campaigns::counts(c, k.id)?;
    let hours = k
        .hours
        .map(|(from, to)| json!({"from": service::clock(from), "to": service::clock(to)}));
    Ok(json!({
        "id": k.id, "name": k.name, "state": k.state,
        "paused_reason": k.paused_reason,
        "paused_message": k.paused_reason.as_deref().map(|r| t(Locale::En, r)),
        "paused_detail": (!k.paused_detail.is_empty()).then_some(&k.paused_detail),
        "counts": counts.iter().map(|(s, n)| (s.as_str().to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "number_id": k.number_id,
        "template": {"name": k.template_name, "language": k.template_lang},
        "variables": k.variables, "header_media": k.header_media, "audience": k.audience,
        "schedule": {"at": at(tz, k.send_at), "hours": hours},
        "reply_hours": k.reply_hours,
        "parent_id": k.parent_id, "follow_up": k.follow_up,
        "created_by": k.created_by, "created_at": k.created_at, "updated_at": k.updated_at,
        "planned_at": k.planned_at, "finished_at": k.finished_at,
    }))
}

/// One campaign with its estimate: the pre-flight's before it is planned, what is left
/// once it is.
fn full(c: &Connection, id: CampaignId, now: i64) -> Result<Value, AppError> {
    let k = campaigns::find(c, id)?.ok_or(AppError::NotFound)?;
    let tz = service::business_tz(c)?;
    let mut v = summary(c, &k, tz)?;
    let estimate = if k.planned_at.is_none() {
        service::preflight(c, &k, now)?.estimate
    } else {
        service::remaining_estimate(c, &k, now)?
    };
    v["estimate"] = serde_json::to_value(estimate).map_err(AppError::internal)?;
    Ok(v)
}

fn recipient_json(r: &Recipient) -> Value {
    let reason_message = match (r.reason.as_deref().filter(|s| !s.is_empty()), r.error_code) {
        (Some(reason), _) => Some(t(Locale::En, &format!("campaigns.reason.{reason}"))),
        (None, Some(code)) => Some(t(Locale::En, crate::whatsapp::graph::plain_reason(Some(code)))),
        (None, None) => None,
    };
    json!({"id": r.id, "contact_id": r.contact_id, "recipient": r.recipient, "name": r.name,
           "state": r.state, "reason": r.reason, "reason_message": reason_message, "error_code": r.error_code,
           "detail": r.detail, "sent_at": r.sent_at, "replied_at": r.replied_at, "updated_at": r.updated_at})
}

async fn body_of(state: &AppState, id: CampaignId) -> AppResult<Value> {
    let now = state.now();
    Ok(state.db.read(move |c| Ok(full(c, id, now)?)).await?)
}

/// The campaign's state before a change: 404 when there is none.
fn state_of(c: &Connection, id: CampaignId) -> Result<CampaignState, AppError> {
    Ok(campaigns::find(c, id)?.ok_or(AppError::NotFound)?.state)
}

// ---- reading -------------------------------------------------------------------------

async fn get_campaigns(state: web::Data<AppState>, caller: ApiCaller) -> AppResult<HttpResponse> {
    caller.require(Role::Agent)?;
    let data = state
        .db
        .read(|c| {
            let tz = service::business_tz(c)?;
            let mut out = Vec::new();
            for k in campaigns::list(c)? {
                out.push(summary(c, &k, tz)?);
            }
            Ok(out)
        })
        .await?;
    Ok(HttpResponse::Ok().json(json!({"data": data})))
}

async fn get_campaign(state: web::Data<AppState>, caller: ApiCaller, path: web::Path<i64>) -> AppResult<HttpResponse> {
    caller.require(Role::Agent)?;
    Ok(HttpResponse::Ok().json(body_of(&state, CampaignId(path.into_inner())).await?))
}

#[derive(Deserialize)]
pub struct RecipientsQuery {
    state: Option<String>,
    /// Rows after this id (`next_cursor` of the previous page).
    after: Option<i64>,
    limit: Option<i64>,
}

async fn get_recipients(
    state: web::Data<AppState>,
    caller: ApiCaller,
    path: web::Path<i64>,
    q: web::Query<RecipientsQuery>,
) -> AppResult<HttpResponse> {
    caller.require(Role::Supervisor)?;
    let id = CampaignId(path.into_inner());
    let q = q.into_inner();
    let wanted = match q.state.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match RecipientState::parse(s) {
            Some(s) => Some(s),
            None => return Ok(invalid_one("state", "campaigns.api.state_unknown")),
        },
    };
    let limit = q.limit.unwrap_or(PAGE).clamp(1, MAX_PAGE);
    let after = q.after.unwrap_or(0);
    let rows = state
        .db
        .read(move |c| {
            state_of(c, id)?;
            Ok(campaigns::recipients(c, id, wanted, after, limit + 1)?)
        })
        .await?;
    let more = rows.len() as i64 > limit;
    let page: Vec<&Recipient> = rows.iter().take(usize::try_from(limit).unwrap_or(100)).collect();
    let next = if more { page.last().map(|r| r.id) } else { None };
    let data: Vec<Value> = page.into_iter().map(recipient_json).collect();
    Ok(HttpResponse::Ok().json(json!({"data": data, "next_cursor": next})))
}

// ---- drafts --------------------------------------------------------------------------

async fn post_campaigns(state: web::Data<AppState>, caller: ApiCaller, bytes: web::Bytes) -> AppResult<HttpResponse> {
    caller.require(CHANGE_ROLE)?;
    let spec: Spec = match parse(&bytes, "a campaign") {
        Ok(s) => s,
        Err(resp) => return Ok(*resp),
    };
    let (actor, now) = (caller.actor(), state.now());
    let created = state
        .db
        .write(move |c| Ok(service::create(c, &known(c)?, &actor, &spec, now)?))
        .await?;
    match created {
        Ok(k) => Ok(HttpResponse::Created()
            .insert_header(("Location", format!("/api/v1/campaigns/{}", k.id)))
            .json(body_of(&state, k.id).await?)),
        Err(errors) => Ok(invalid(&errors)),
    }
}

/// What changing a draft did.
enum Changed {
    Done,
    Invalid(FormErrors),
    NotDraft,
}

async fn put_campaign(
    state: web::Data<AppState>,
    caller: ApiCaller,
    path: web::Path<i64>,
    bytes: web::Bytes,
) -> AppResult<HttpResponse> {
    caller.require(CHANGE_ROLE)?;
    let id = CampaignId(path.into_inner());
    let spec: Spec = match parse(&bytes, "a campaign") {
        Ok(s) => s,
        Err(resp) => return Ok(*resp),
    };
    let (actor, now) = (caller.actor(), state.now());
    let changed = state
        .db
        .write(move |c| {
            if state_of(c, id)? != CampaignState::Draft {
                return Ok(Changed::NotDraft);
            }
            Ok(match service::update(c, &known(c)?, &actor, id, &spec, now)? {
                Some(Ok(_)) => Changed::Done,
                Some(Err(errors)) => Changed::Invalid(errors),
                None => Changed::NotDraft,
            })
        })
        .await?;
    match changed {
        Changed::Done => Ok(HttpResponse::Ok().json(body_of(&state, id).await?)),
        Changed::Invalid(errors) => Ok(invalid(&errors)),
        Changed::NotDraft => Ok(conflict("campaigns.api.not_draft")),
    }
}

async fn delete_campaign(
    state: web::Data<AppState>,
    caller: ApiCaller,
    path: web::Path<i64>,
) -> AppResult<HttpResponse> {
    caller.require(CHANGE_ROLE)?;
    let (id, actor, now) = (CampaignId(path.into_inner()), caller.actor(), state.now());
    let deleted = state
        .db
        .write(move |c| {
            state_of(c, id)?;
            Ok(service::delete(c, id, &actor, now)?)
        })
        .await?;
    if deleted {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Ok(conflict("campaigns.api.not_draft"))
    }
}

async fn post_preflight(
    state: web::Data<AppState>,
    caller: ApiCaller,
    path: web::Path<i64>,
) -> AppResult<HttpResponse> {
    caller.require(Role::Supervisor)?;
    let (id, now) = (CampaignId(path.into_inner()), state.now());
    let found = state
        .db
        .read(move |c| {
            let k = campaigns::find(c, id)?.ok_or(AppError::NotFound)?;
            if k.planned_at.is_some() {
                return Ok(None);
            }
            Ok(Some(service::preflight(c, &k, now)?))
        })
        .await?;
    let Some(p) = found else {
        return Ok(conflict("campaigns.error.already_started"));
    };
    let mut v = serde_json::to_value(&p).map_err(AppError::internal)?;
    v["problem_message"] = json!(p.problem.map(|k| t(Locale::En, k)));
    Ok(HttpResponse::Ok().json(v))
}

// ---- transitions ---------------------------------------------------------------------

/// Start: planned now (200 with the ledger's counts), or scheduled for its time.
async fn post_start(state: web::Data<AppState>, caller: ApiCaller, path: web::Path<i64>) -> AppResult<HttpResponse> {
    caller.require(CHANGE_ROLE)?;
    let (id, actor, now) = (CampaignId(path.into_inner()), caller.actor(), state.now());
    let started = state.db.write(move |c| Ok(service::start(c, id, &actor, now)?)).await;
    let started = match started.map_err(AppError::from) {
        Ok(Ok(s)) => s,
        Ok(Err(why)) => return Ok(conflict(why)),
        // Planning found the audience unreadable (a deleted segment): undone, and said.
        Err(AppError::BadRequest(why)) if why.starts_with("campaigns.") => return Ok(conflict(why)),
        Err(e) => return Err(e),
    };
    state.campaigns.bell.ring();
    let mut v = body_of(&state, id).await?;
    v["started"] = serde_json::to_value(&started).map_err(AppError::internal)?;
    if let Started::Now { counts } = &started {
        v["planned"] = serde_json::to_value(counts).map_err(AppError::internal)?;
    }
    Ok(HttpResponse::Ok().json(v))
}

async fn post_pause(state: web::Data<AppState>, caller: ApiCaller, path: web::Path<i64>) -> AppResult<HttpResponse> {
    caller.require(CHANGE_ROLE)?;
    let (id, actor, now) = (CampaignId(path.into_inner()), caller.actor(), state.now());
    let paused = state
        .db
        .write(move |c| {
            state_of(c, id)?;
            Ok(service::pause(c, id, &actor, now)?)
        })
        .await?;
    if !paused {
        return Ok(conflict("campaigns.api.not_running"));
    }
    Ok(HttpResponse::Ok().json(body_of(&state, id).await?))
}

async fn post_resume(state: web::Data<AppState>, caller: ApiCaller, path: web::Path<i64>) -> AppResult<HttpResponse> {
    caller.require(CHANGE_ROLE)?;
    let (id, actor, now) = (CampaignId(path.into_inner()), caller.actor(), state.now());
    let resumed = state
        .db
        .write(move |c| {
            state_of(c, id)?;
            Ok(service::resume(c, id, &actor, now)?)
        })
        .await?;
    if let Err(why) = resumed {
        return Ok(conflict(why));
    }
    state.campaigns.bell.ring();
    Ok(HttpResponse::Ok().json(body_of(&state, id).await?))
}

async fn post_cancel(state: web::Data<AppState>, caller: ApiCaller, path: web::Path<i64>) -> AppResult<HttpResponse> {
    caller.require(CHANGE_ROLE)?;
    let (id, actor, now) = (CampaignId(path.into_inner()), caller.actor(), state.now());
    let cancelled = state
        .db
        .write(move |c| {
            state_of(c, id)?;
            Ok(service::cancel(c, id, &actor, now)?)
        })
        .await?;
    if !cancelled {
        return Ok(conflict("campaigns.api.over"));
    }
    state.outbox_bell.ring();
    Ok(HttpResponse::Ok().json(body_of(&state, id).await?))
}

/// "Send again to these N": the held (`needs_review`) rows are queued again.
async fn post_send_again(
    state: web::Data<AppState>,
    caller: ApiCaller,
    path: web::Path<i64>,
) -> AppResult<HttpResponse> {
    caller.require(CHANGE_ROLE)?;
    let (id, actor, now) = (CampaignId(path.into_inner()), caller.actor(), state.now());
    let again = state
        .db
        .write(move |c| {
            // A cancelled campaign never sends again: its rows would wait for ever.
            if !matches!(
                state_of(c, id)?,
                CampaignState::Running | CampaignState::Paused | CampaignState::Finished
            ) {
                return Ok(Err("campaigns.api.not_started"));
            }
            Ok(match service::send_again_held(c, id, &actor, now)? {
                0 => Err("campaigns.api.nothing_held"),
                n => Ok(n),
            })
        })
        .await?;
    let n = match again {
        Ok(n) => n,
        Err(why) => return Ok(conflict(why)),
    };
    state.campaigns.bell.ring();
    let mut v = body_of(&state, id).await?;
    v["queued_again"] = json!(n);
    Ok(HttpResponse::Ok().json(v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowUpBody {
    kind: String,
}

/// A follow-up: a new draft for the failed, unread or unreplied people of this one.
async fn post_follow_up(
    state: web::Data<AppState>,
    caller: ApiCaller,
    path: web::Path<i64>,
    bytes: web::Bytes,
) -> AppResult<HttpResponse> {
    caller.require(CHANGE_ROLE)?;
    let parent = CampaignId(path.into_inner());
    let body: FollowUpBody = match parse(&bytes, "a follow-up") {
        Ok(b) => b,
        Err(resp) => return Ok(*resp),
    };
    let Some(kind) = FollowUp::parse(body.kind.trim()) else {
        return Ok(invalid_one("kind", "campaigns.api.kind_unknown"));
    };
    let (actor, now) = (caller.actor(), state.now());
    let made = state
        .db
        .write(move |c| {
            state_of(c, parent)?;
            Ok(service::follow_up(c, parent, kind, &actor, now)?)
        })
        .await?;
    let Some(id) = made else {
        return Ok(conflict("campaigns.api.not_started"));
    };
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/campaigns/{id}")))
        .json(body_of(&state, id).await?))
}

// ---- OpenAPI -------------------------------------------------------------------------

/// The OpenAPI paths of this module (merged into `api::routes::openapi`).
pub fn openapi_paths(error: &Value) -> Value {
    let id = json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}]);
    let campaign = json!({"$ref": "#/components/schemas/Campaign"});
    let ok = |d: &str, schema: Value| json!({"description": d, "content": {"application/json": {"schema": schema}}});
    let spec = json!({"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CampaignSpec"}}}});
    let transition = |summary: &str| {
        json!({"post": {"summary": summary,
            "responses": {"200": ok("The campaign in its new state", campaign.clone()), "401": error, "403": error,
                "404": error, "409": error, "429": error}}})
    };
    let mut paths = json!({
        "/campaigns": {
            "get": {"summary": "The 500 newest campaigns with their counts (role agent or higher)",
                "responses": {"200": ok("The campaigns", json!({"type": "object", "properties": {"data": {"type": "array", "items": campaign}}})),
                    "401": error, "403": error, "429": error}},
            "post": {"summary": "Create a draft (role supervisor or higher). 400 when the JSON does not parse (unknown field, wrong type); 422 names each bad field (name, number_id, template, variables, header_media, audience, schedule.at, schedule.hours, reply_hours)",
                "requestBody": spec,
                "responses": {"201": ok("The draft", campaign.clone()), "400": error, "401": error, "403": error, "422": error, "429": error}}
        },
        "/campaigns/{id}": {
            "parameters": id,
            "get": {"summary": "One campaign: state, counts by recipient state, estimate (the pre-flight's for a draft, what is left once started) and its settings",
                "responses": {"200": ok("The campaign", campaign.clone()), "401": error, "403": error, "404": error, "429": error}},
            "put": {"summary": "Replace a draft's settings (the whole CampaignSpec); 409 once it has started",
                "requestBody": spec,
                "responses": {"200": ok("The draft", campaign.clone()), "400": error, "401": error, "403": error, "404": error,
                    "409": error, "422": error, "429": error}},
            "delete": {"summary": "Delete a draft; 409 once it has started (cancel it instead)",
                "responses": {"204": {"description": "Deleted"}, "401": error, "403": error, "404": error, "409": error, "429": error}}
        },
        "/campaigns/{id}/preflight": {
            "parameters": id,
            "post": {"summary": "What starting would do, without starting: the audience, skips by reason, the rate, the daily limit, the estimate, three real recipients' messages, and why it cannot start (problem). Reads only; 409 once planned.",
                "responses": {"200": ok("The pre-flight", json!({"$ref": "#/components/schemas/CampaignPreflight"})),
                    "401": error, "403": error, "404": error, "409": error, "429": error}}
        },
        "/campaigns/{id}/send-again": {
            "parameters": id,
            "post": {"summary": "Queue again the recipients a restart left maybe-sent (needs_review), after a person checked; 409 when none are held",
                "responses": {"200": ok("The campaign, with queued_again", campaign.clone()), "401": error, "403": error,
                    "404": error, "409": error, "429": error}}
        },
        "/campaigns/{id}/follow-up": {
            "parameters": id,
            "post": {"summary": "A new draft with the same message for this campaign's failed (retryable only), unread or unreplied recipients; 409 before it started",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["kind"],
                    "additionalProperties": false, "properties": {"kind": {"enum": ["failed", "unread", "unreplied"]}}}}}},
                "responses": {"201": ok("The new draft", campaign.clone()), "400": error, "401": error, "403": error, "404": error,
                    "409": error, "422": error, "429": error}}
        },
        "/campaigns/{id}/recipients": {
            "parameters": id,
            "get": {"summary": "The recipient ledger, oldest row first, a page at a time (role agent or higher); 422 for an unknown state",
                "parameters": [
                    {"name": "state", "in": "query", "schema": {"$ref": "#/components/schemas/RecipientState"}},
                    {"name": "after", "in": "query", "schema": {"type": "integer"}, "description": "next_cursor of the previous page"},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": PAGE}}],
                "responses": {"200": ok("A page", json!({"type": "object", "properties": {
                    "data": {"type": "array", "items": {"$ref": "#/components/schemas/CampaignRecipient"}},
                    "next_cursor": {"type": ["integer", "null"]}}})),
                    "401": error, "403": error, "404": error, "422": error, "429": error}}
        }
    });
    for (action, summary) in [
        (
            "start",
            "Start (role supervisor or higher): planned now, one ledger row per person (started.started = now, with the counts), or scheduled for schedule.at (started.started = scheduled). 409 when it started already or cannot start (the template paused or not approved, the number paused), with the reason as the code",
        ),
        (
            "pause",
            "Pause a running campaign: nothing more is handed to the outbox, what waits there comes back. 409 when it is not running",
        ),
        (
            "resume",
            "Resume a paused campaign where it stopped. 409 when it is not paused, or what paused it still holds",
        ),
        (
            "cancel",
            "Cancel: queued and deferred recipients become cancelled. 409 when it is over already",
        ),
    ] {
        let mut p = transition(summary);
        p["parameters"] = id.clone();
        paths[format!("/campaigns/{{id}}/{action}")] = p;
    }
    paths
}

pub fn openapi_schemas() -> Value {
    let states: Vec<&str> = RecipientState::ALL.iter().map(|s| s.as_str()).collect();
    let campaign_states: Vec<&str> = CampaignState::ALL.iter().map(|s| s.as_str()).collect();
    let counts = json!({"type": "object", "description": "rows per recipient state, every state (0 included)",
        "properties": states.iter().map(|s| ((*s).to_string(), json!({"type": "integer"}))).collect::<serde_json::Map<_, _>>()});
    let labels = json!({"type": "array", "items": {"type": "string"}, "description": "label names"});
    let segments = json!({"type": "array", "items": {"type": "integer"}, "description": "segment ids"});
    let variable = json!({"type": "object", "additionalProperties": false,
        "description": "exactly one of field, custom or text; fallback when the person's value is empty (without one, that person is skipped: missing_variable)",
        "properties": {"field": {"enum": campaigns::FIELDS}, "custom": {"type": "string", "description": "a custom field's key"},
            "text": {"type": "string", "maxLength": 1000}, "fallback": {"type": "string", "maxLength": 1000}}});
    let estimate = json!({"type": "object", "properties": {"people": {"type": "integer"}, "rate_per_second": {"type": "integer"},
        "finishes_at": {"type": ["integer", "null"], "description": "Unix time"}, "windows": {"type": "integer", "description": "24-hour windows the daily limit splits it into"},
        "daily_limit": {"type": ["integer", "null"]}, "used_last_24h": {"type": "integer"}, "left_now": {"type": ["integer", "null"]}}});
    let spec_props = json!({
        "name": {"type": "string", "maxLength": 100},
        "number_id": {"type": "integer", "description": "id from /numbers"},
        "template": {"type": "object", "additionalProperties": false, "properties": {"name": {"type": "string"}, "language": {"type": "string"}}},
        "variables": {"type": "object", "description": "by the template's variable name (\"1\", \"2\" or a named one)", "additionalProperties": variable},
        "header_media": {"type": "string", "description": "for an image, video or document header: an https:// link or an uploaded media id"},
        "audience": {"type": "object", "additionalProperties": false, "description": "anyone with one of the labels or in one of the segments, minus the exclusions",
            "properties": {"labels": labels, "segments": segments, "exclude_labels": labels, "exclude_segments": segments}},
        "schedule": {"type": "object", "additionalProperties": false, "properties": {
            "at": {"type": ["string", "null"], "description": "YYYY-MM-DDTHH:MM in the business's time zone, or RFC 3339 with an offset; null: when started"},
            "hours": {"type": ["object", "null"], "description": "daily sending hours in the business's time zone", "properties": {
                "from": {"type": "string", "description": "HH:MM"}, "to": {"type": "string", "description": "HH:MM"}}}}},
        "reply_hours": {"type": ["integer", "null"], "minimum": 1, "maximum": 720, "description": "a reply within this many hours counts for the campaign (72 when null)"}
    });
    let mut campaign_props = spec_props.clone();
    if let Some(p) = campaign_props.as_object_mut() {
        for (k, v) in [
            ("id", json!({"type": "integer"})),
            ("state", json!({"enum": campaign_states})),
            (
                "paused_reason",
                json!({"type": ["string", "null"], "description": "a catalogue key (campaigns.paused.*)"}),
            ),
            ("paused_message", json!({"type": ["string", "null"]})),
            ("paused_detail", json!({"type": ["string", "null"]})),
            ("counts", counts),
            ("estimate", estimate.clone()),
            ("parent_id", json!({"type": ["integer", "null"]})),
            ("follow_up", json!({"enum": ["failed", "unread", "unreplied", null]})),
            ("created_by", json!({"type": "string"})),
            ("created_at", json!({"type": "integer"})),
            ("updated_at", json!({"type": "integer"})),
            ("planned_at", json!({"type": ["integer", "null"]})),
            ("finished_at", json!({"type": ["integer", "null"]})),
        ] {
            p.insert(k.to_string(), v);
        }
    }
    json!({
        "RecipientState": {"enum": states},
        "CampaignSpec": {"type": "object", "additionalProperties": false, "required": ["name", "number_id", "template", "audience"], "properties": spec_props},
        "Campaign": {"type": "object", "properties": campaign_props},
        "CampaignPreflight": {"type": "object", "properties": {
            "counts": {"type": "object", "properties": {"audience": {"type": "integer"}, "queued": {"type": "integer"},
                "skipped": {"type": "object", "description": "per reason: opted_out, no_opt_in, invalid_number, duplicate, missing_variable, frequency_cap", "additionalProperties": {"type": "integer"}}}},
            "estimate": estimate,
            "preview": {"type": "array", "maxItems": 3, "items": {"type": "object", "properties": {
                "contact_id": {"type": "integer"}, "recipient": {"type": "string"}, "text": {"type": "string"}}}},
            "purpose": {"enum": ["marketing", "utility"]},
            "mps": {"type": "integer"},
            "problem": {"type": ["string", "null"], "description": "why it cannot start now (a catalogue key)"},
            "problem_message": {"type": ["string", "null"]}}},
        "CampaignRecipient": {"type": "object", "properties": {
            "id": {"type": "integer"}, "contact_id": {"type": ["integer", "null"]}, "recipient": {"type": "string"},
            "name": {"type": "string"}, "state": {"$ref": "#/components/schemas/RecipientState"},
            "reason": {"type": ["string", "null"], "description": "opted_out, no_opt_in, invalid_number, duplicate, missing_variable, frequency_cap, interrupted, later, cancelled"},
            "reason_message": {"type": ["string", "null"]}, "error_code": {"type": ["integer", "null"], "description": "Meta's error code"},
            "detail": {"type": "string", "description": "Meta's words, or the empty variable's name"},
            "sent_at": {"type": ["integer", "null"]}, "replied_at": {"type": ["integer", "null"]}, "updated_at": {"type": "integer"}}}
    })
}
