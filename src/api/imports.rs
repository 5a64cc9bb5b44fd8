//! `POST /api/v1/contacts/import` (the CSV as the `text/csv` body: a dry run, the
//! report of a small file, or `202` and an id for a large one) and
//! `GET /api/v1/imports/{id}` (progress, then the report). Supervisors and admins.

use super::ApiCaller;
use crate::app::AppState;
use crate::auth::Role;
use crate::contacts::import::worker::{NewImport, Submitted};
use crate::contacts::import::{self, Options, State};
use crate::contacts::routes::region;
use crate::error::{AppError, AppResult};
use crate::i18n::{Locale, t};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/v1/contacts/import").route(web::post().to(post_import)))
        .service(web::resource("/api/v1/imports/{id}").route(web::get().to(get_import)));
}

#[derive(Deserialize)]
pub struct ImportQuery {
    #[serde(default)]
    dry_run: Option<String>,
    #[serde(default)]
    labels: Option<String>,
    #[serde(default)]
    update: Option<String>,
    #[serde(default)]
    consent: Option<String>,
    #[serde(default)]
    consent_source: Option<String>,
}

fn error(status: actix_web::http::StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({"error": {"code": code, "message": message}}))
}

fn flag(v: Option<&str>) -> Result<bool, ()> {
    match v.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        None | Some("" | "false" | "0" | "no") => Ok(false),
        Some("true" | "1" | "yes") => Ok(true),
        Some(_) => Err(()),
    }
}

/// The options from the query string, or what is wrong with it.
fn options(state: &AppState, q: &ImportQuery) -> Result<Options, &'static str> {
    let consent_marketing = match q.consent.as_deref().map(str::trim) {
        None | Some("" | "none") => false,
        Some(c) if c.eq_ignore_ascii_case("marketing") => true,
        Some(_) => return Err("import.error.consent"),
    };
    Ok(Options {
        region: region(state),
        labels: import::reader::split_labels(q.labels.as_deref().unwrap_or("")),
        update: flag(q.update.as_deref()).map_err(|()| "import.error.flag")?,
        consent_marketing,
        consent_source: q.consent_source.clone().unwrap_or_default().trim().to_string(),
        fields: None,
    })
}

fn file_error(e: &import::reader::FileError) -> HttpResponse {
    let mut message = t(Locale::En, e.key()).to_string();
    if let import::reader::FileError::Broken(line) = e {
        message = crate::i18n::tf(Locale::En, e.key(), &[("line", &line.to_string())]);
    }
    error(
        actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_file",
        &message,
    )
}

fn problems(keys: &[&'static str]) -> HttpResponse {
    let messages: Vec<&str> = keys.iter().map(|k| t(Locale::En, k)).collect();
    HttpResponse::UnprocessableEntity().json(json!({"error": {"code": "invalid",
        "message": messages.first().copied().unwrap_or(""), "problems": messages}}))
}

async fn post_import(
    state: web::Data<AppState>,
    caller: ApiCaller,
    req: HttpRequest,
    q: web::Query<ImportQuery>,
    mut payload: web::Payload,
) -> AppResult<HttpResponse> {
    use actix_web::http::StatusCode;
    caller.require(Role::Supervisor)?;
    let ct = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !["text/csv", "application/csv", "text/plain"]
        .iter()
        .any(|m| ct.starts_with(m))
    {
        return Ok(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_type",
            "Send the file as the body with Content-Type: text/csv.",
        ));
    }
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            t(Locale::En, "import.error.too_large"),
        )
    };
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > import::MAX_BYTES) {
        return Ok(too_large());
    }
    let q = q.into_inner();
    let Ok(dry_run) = flag(q.dry_run.as_deref()) else {
        return Ok(problems(&["import.error.flag"]));
    };
    let options = match options(&state, &q) {
        Ok(o) => o,
        Err(k) => return Ok(problems(&[k])),
    };
    let pace = crate::web::body::Pace::body(&state.config.limits);
    let body = match crate::web::body::read_all(&mut payload, import::MAX_BYTES, &pace).await {
        Ok(b) => b.to_vec(),
        Err(crate::web::body::BodyError::TooLarge) => return Ok(too_large()),
        Err(crate::web::body::BodyError::TooSlow) => return Err(AppError::RequestTimeout),
        Err(crate::web::body::BodyError::Broken) => return Err(AppError::BadRequest("error.bad_request")),
    };
    if dry_run {
        let found = state.db.read(move |c| Ok(import::dry_run(c, &body, &options))).await?;
        return Ok(match found {
            Ok(d) if !d.problems.is_empty() => problems(&d.problems),
            Ok(d) => HttpResponse::Ok().json(json!({"dry_run": true, "result": d})),
            Err(e) => file_error(&e),
        });
    }
    let new = NewImport {
        actor: caller.actor(),
        file_name: String::new(),
        file: body,
        options,
    };
    let (id, total) = match state.importer.submit(new, State::Queued).await? {
        Submitted::Stored { id, total } => (id, total),
        Submitted::File(e) => return Ok(file_error(&e)),
        Submitted::Problems(p) => return Ok(problems(&p)),
    };
    if total <= import::SYNC_ROWS {
        state.importer.run(id).await.map_err(AppError::internal)?;
        let report = report(&state, id).await?;
        if report.0 {
            return Ok(HttpResponse::Ok().json(report.1));
        }
    } else {
        state.importer.bell.ring();
    }
    Ok(HttpResponse::Accepted()
        .insert_header(("Location", format!("/api/v1/imports/{id}")))
        .json(json!({"id": id, "state": "queued", "total": total, "url": format!("/api/v1/imports/{id}")})))
}

/// The import as JSON (with every skipped row once it is finished), and whether it is.
async fn report(state: &AppState, id: i64) -> AppResult<(bool, serde_json::Value)> {
    let (imp, skipped) = state
        .db
        .read(move |c| {
            let imp = import::find(c, id)?.ok_or(AppError::NotFound)?;
            let skipped = if imp.state.finished() {
                import::list_skipped(c, id, i64::MAX)?
            } else {
                Vec::new()
            };
            Ok((imp, skipped))
        })
        .await?;
    let finished = imp.state.finished();
    if imp.state == State::Draft {
        return Err(AppError::NotFound);
    }
    let mut v = serde_json::to_value(&imp).map_err(AppError::internal)?;
    v["percent"] = json!(imp.percent());
    if finished {
        v["skipped_rows"] = serde_json::to_value(&skipped).map_err(AppError::internal)?;
    }
    if let Some(e) = &imp.error {
        if let Some(k) = e.split(' ').next().filter(|k| k.starts_with("import.error.")) {
            v["error"] = json!(e.replacen(k, t(Locale::En, k), 1));
        }
    }
    Ok((finished, v))
}

async fn get_import(state: web::Data<AppState>, caller: ApiCaller, path: web::Path<i64>) -> AppResult<HttpResponse> {
    caller.require(Role::Supervisor)?;
    let (_, v) = report(&state, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(v))
}

/// The OpenAPI paths of the import routes.
pub fn openapi_paths(error: &serde_json::Value) -> serde_json::Value {
    let report = json!({"type": "object", "description": "The import: id, state (queued, running, done, failed), total, processed, percent, created, updated, unchanged, skipped, no_marketing_consent, by_reason, sha256; when finished, skipped_rows [{line, phone, reason}]"});
    let ok = |d: &str| json!({"description": d, "content": {"application/json": {"schema": report.clone()}}});
    let flag =
        |name: &str, d: &str| json!({"name": name, "in": "query", "schema": {"type": "boolean"}, "description": d});
    json!({
        "/contacts/import": {"post": {
            "summary": "Import contacts from a CSV file (role supervisor or higher; at most 20 MB)",
            "description": "The file is the body (Content-Type: text/csv): UTF-8 with or without BOM, or Windows-1252; comma, semicolon or tab; a phone column (phone, nomor, no_hp, whatsapp, wa, mobile, number) and optionally name/nama, email, labels, whatsapp_opted, consent_at, consent_source; other columns become custom fields under their header. Up to 5,000 rows the answer is the report (200); larger files answer 202 with the id to poll.",
            "parameters": [
                flag("dry_run", "Only report what would happen"),
                {"name": "labels", "in": "query", "schema": {"type": "string"}, "description": "Labels for every contact, comma-separated"},
                flag("update", "Update existing contacts (otherwise they are left as they are)"),
                {"name": "consent", "in": "query", "schema": {"type": "string", "enum": ["marketing", "none"]}},
                {"name": "consent_source", "in": "query", "schema": {"type": "string"}, "description": "How these people agreed (required with consent=marketing)"}
            ],
            "requestBody": {"required": true, "content": {"text/csv": {"schema": {"type": "string"}}}},
            "responses": {"200": ok("The report (or the dry run)"), "202": {"description": "Running in the background", "content": {"application/json": {"schema": {"type": "object", "properties": {"id": {"type": "integer"}, "url": {"type": "string"}}}}}},
                "401": error, "403": error, "413": error, "415": error, "422": error, "429": error}
        }},
        "/imports/{id}": {
            "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
            "get": {"summary": "An import's progress, then its report (role supervisor or higher)",
                "responses": {"200": ok("The import"), "401": error, "403": error, "404": error, "429": error}}
        }
    })
}
