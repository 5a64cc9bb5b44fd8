//! The import pages, for supervisors and admins: upload (file and options), the dry run
//! (preview, counts, what each other column becomes, confirm), the progress bar, and the
//! report with its CSV. The API's import routes are in `api::imports`.

use super::worker::{NewImport, Submitted};
use super::{DryRun, Import, Options, Skip, Skipped, State};
use crate::app::AppState;
use crate::auth::Role;
use crate::contacts::routes::region;
use crate::error::{AppError, AppResult};
use crate::web::{Authed, RequestCtx, ok_page, render, see_other};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/contacts/import")
            .route(web::get().to(get_upload))
            .route(web::post().to(post_upload)),
    )
    .service(
        web::resource("/contacts/import/{id}")
            .route(web::get().to(get_import))
            .route(web::post().to(post_import)),
    )
    .service(web::resource("/contacts/import/{id}/progress").route(web::get().to(get_progress)))
    .service(web::resource("/contacts/import/{id}/report.csv").route(web::get().to(get_report_csv)));
}

/// Skipped rows the report page lists (the CSV has them all).
const REPORT_ROWS: i64 = 1000;

/// The options as the forms show them.
#[derive(Debug, Clone, Default)]
pub struct OptionsForm {
    pub labels: String,
    pub update: bool,
    pub consent_marketing: bool,
    pub consent_source: String,
}

impl OptionsForm {
    fn of(o: &Options) -> OptionsForm {
        OptionsForm {
            labels: o.labels.join(", "),
            update: o.update,
            consent_marketing: o.consent_marketing,
            consent_source: o.consent_source.clone(),
        }
    }
}

/// Options from form fields (the upload's or the dry run's); the column choices only
/// when the form had them (`map_<column>` = field or ignore, `field_<column>` = name).
fn options_from(pairs: &[(String, String)], region: String) -> Options {
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.trim().to_string());
    let mut fields = std::collections::BTreeMap::new();
    let mut mapped = false;
    for (k, v) in pairs {
        let Some(i) = k.strip_prefix("map_").and_then(|i| i.parse::<usize>().ok()) else {
            continue;
        };
        mapped = true;
        if v == "field" {
            fields.insert(i, get(&format!("field_{i}")).unwrap_or_default());
        }
    }
    Options {
        region,
        labels: super::reader::split_labels(&get("labels").unwrap_or_default()),
        update: get("update").is_some_and(|v| v == "1"),
        consent_marketing: get("consent").is_some_and(|v| v == "marketing"),
        consent_source: get("consent_source").unwrap_or_default(),
        fields: mapped.then_some(fields),
    }
}

// ---- upload ------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "contacts/import_upload.html")]
struct UploadPage {
    ctx: RequestCtx,
    recent: Vec<Import>,
    form: OptionsForm,
    error: Option<String>,
}

async fn upload_page(
    state: &AppState,
    ctx: RequestCtx,
    form: OptionsForm,
    error: Option<String>,
) -> AppResult<UploadPage> {
    let recent = state.db.read(|c| Ok(super::list_recent(c, 10)?)).await?;
    Ok(UploadPage {
        ctx,
        recent,
        form,
        error,
    })
}

async fn get_upload(state: web::Data<AppState>, a: Authed) -> AppResult<HttpResponse> {
    a.require(Role::Supervisor)?;
    let form = OptionsForm {
        update: true,
        ..OptionsForm::default()
    };
    ok_page(&upload_page(&state, a.ctx, form, None).await?)
}

/// The upload form as multipart: the file (at most `MAX_BYTES`) and the option fields.
struct Uploaded {
    file: Option<(String, Vec<u8>)>,
    fields: Vec<(String, String)>,
    too_large: bool,
}

/// Read by the one multipart reader (`web::upload::read_fields`); a file over the limit
/// is not an error page but the upload form again, saying so.
async fn read_form(payload: actix_multipart::Multipart, pace: crate::web::body::Pace) -> AppResult<Uploaded> {
    match crate::web::upload::read_fields(payload, pace, super::MAX_BYTES).await {
        Ok(f) => Ok(Uploaded {
            file: f.file.map(|(name, _, bytes)| (name, bytes)),
            fields: f.values,
            too_large: false,
        }),
        Err(AppError::BadRequest("media.too_big")) => Ok(Uploaded {
            file: None,
            fields: Vec::new(),
            too_large: true,
        }),
        Err(e) => Err(e),
    }
}

/// The message for a file that cannot be read, in the page's language.
fn file_message(ctx: &RequestCtx, e: &super::reader::FileError) -> String {
    match e {
        super::reader::FileError::Broken(line) => ctx.tf(e.key(), &[("line", &line.to_string())]),
        _ => ctx.t(e.key()).to_string(),
    }
}

async fn post_upload(
    state: web::Data<AppState>,
    a: Authed,
    req: actix_web::HttpRequest,
    payload: web::Payload,
) -> AppResult<HttpResponse> {
    // Refused before a byte of the file is read (so the body is taken raw, not by the
    // multipart extractor, which would answer a wrong body before the role is checked).
    a.require(Role::Supervisor)?;
    let payload = actix_multipart::Multipart::new(req.headers(), payload);
    let form = read_form(payload, crate::web::body::Pace::body(&state.config.limits)).await?;
    let options = options_from(&form.fields, region(&state));
    let shown = OptionsForm::of(&options);
    if form.too_large {
        let page = upload_page(
            &state,
            a.ctx.clone(),
            shown,
            Some(a.ctx.t("import.error.too_large").into()),
        )
        .await?;
        let mut resp = render(StatusCode::PAYLOAD_TOO_LARGE, &page)?;
        resp.head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
        return Ok(resp);
    }
    let Some((file_name, file)) = form.file else {
        let page = upload_page(
            &state,
            a.ctx.clone(),
            shown,
            Some(a.ctx.t("import.error.no_file").into()),
        )
        .await?;
        return render(StatusCode::UNPROCESSABLE_ENTITY, &page);
    };
    let new = NewImport {
        actor: a.actor(),
        file_name,
        file,
        options,
    };
    match state.importer.submit(new, State::Draft).await? {
        Submitted::Stored { id, .. } => Ok(see_other(&format!("/contacts/import/{id}"))),
        Submitted::File(e) => {
            let msg = file_message(&a.ctx, &e);
            render(
                StatusCode::UNPROCESSABLE_ENTITY,
                &upload_page(&state, a.ctx, shown, Some(msg)).await?,
            )
        }
        Submitted::Problems(_) => Err(AppError::internal("a draft is stored with its problems")),
    }
}

// ---- dry run, progress, report ------------------------------------------------------

#[derive(Template)]
#[template(path = "contacts/import_dry_run.html")]
struct DryRunPage {
    ctx: RequestCtx,
    imp: Import,
    dry: DryRun,
    form: OptionsForm,
}

#[derive(Template)]
#[template(path = "contacts/import_report.html")]
struct ReportPage {
    ctx: RequestCtx,
    imp: Import,
    reasons: Vec<(&'static str, i64)>,
    skipped: Vec<Skipped>,
}

impl ReportPage {
    fn finished(&self) -> bool {
        self.imp.state.finished()
    }

    fn error_text(&self) -> String {
        self.imp
            .error
            .as_deref()
            .map(|e| match e.split(' ').next() {
                Some(k) if k.starts_with("import.error.") => e.replacen(k, self.ctx.t(k), 1),
                _ => e.to_string(),
            })
            .unwrap_or_default()
    }
}

async fn load(state: &AppState, id: i64) -> AppResult<Import> {
    state
        .db
        .read(move |c| Ok(super::find(c, id)?.ok_or(AppError::NotFound)?))
        .await
        .map_err(Into::into)
}

async fn dry_run_page(state: &AppState, ctx: RequestCtx, imp: Import, status: StatusCode) -> AppResult<HttpResponse> {
    let (id, options) = (imp.id, imp.options.clone());
    let dry = state
        .db
        .read(move |c| {
            let file = super::file_of(c, id)?.ok_or(AppError::NotFound)?;
            Ok(super::dry_run(c, &file, &options))
        })
        .await?;
    let dry = match dry {
        Ok(d) => d,
        // The file was read at upload; this is not expected, but is said plainly.
        Err(e) => return Err(AppError::BadRequest(e.key())),
    };
    let form = OptionsForm::of(&imp.options);
    render(status, &DryRunPage { ctx, imp, dry, form })
}

async fn get_import(state: web::Data<AppState>, a: Authed, path: web::Path<i64>) -> AppResult<HttpResponse> {
    a.require(Role::Supervisor)?;
    let imp = load(&state, path.into_inner()).await?;
    if imp.state == State::Draft {
        return dry_run_page(&state, a.ctx, imp, StatusCode::OK).await;
    }
    let id = imp.id;
    let skipped = if imp.state.finished() {
        state
            .db
            .read(move |c| Ok(super::list_skipped(c, id, REPORT_ROWS)?))
            .await?
    } else {
        Vec::new()
    };
    ok_page(&ReportPage {
        reasons: imp.counts.reasons(),
        ctx: a.ctx,
        imp,
        skipped,
    })
}

/// The dry run's form: `action=preview` shows the preview again with the choices made,
/// `action=confirm` starts the run (refused while the options have problems).
async fn post_import(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<i64>,
    form: web::Form<Vec<(String, String)>>,
) -> AppResult<HttpResponse> {
    a.require(Role::Supervisor)?;
    let id = path.into_inner();
    let pairs = form.into_inner();
    let confirm = pairs.iter().any(|(k, v)| k == "action" && v == "confirm");
    let options = options_from(&pairs, region(&state));
    let imp = load(&state, id).await?;
    if imp.state != State::Draft {
        return Ok(see_other(&format!("/contacts/import/{id}")));
    }
    let opts = options.clone();
    let problems = state
        .db
        .read(move |c| {
            let file = super::file_of(c, id)?.ok_or(AppError::NotFound)?;
            Ok(super::inspect(&file, &opts).map(|(layout, _)| opts.problems(&layout)))
        })
        .await?
        .map_err(|e| AppError::BadRequest(e.key()))?;
    let now = state.now();
    let (go, opts) = (confirm && problems.is_empty(), options.clone());
    let changed = state
        .db
        .write(move |c| {
            Ok(if go {
                super::confirm(c, id, &opts, now)?
            } else {
                super::update_draft(c, id, &opts, now)?
            })
        })
        .await?;
    if go && changed {
        state.importer.bell.ring();
        return Ok(see_other(&format!("/contacts/import/{id}")));
    }
    let imp = Import { options, ..imp };
    let status = if confirm {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    dry_run_page(&state, a.ctx, imp, status).await
}

/// Progress for the page's bar: rows done of all, and the state.
async fn get_progress(state: web::Data<AppState>, a: Authed, path: web::Path<i64>) -> AppResult<HttpResponse> {
    a.require(Role::Supervisor)?;
    let imp = load(&state, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "state": imp.state, "processed": imp.processed, "total": imp.total, "percent": imp.percent()
    })))
}

async fn get_report_csv(state: web::Data<AppState>, a: Authed, path: web::Path<i64>) -> AppResult<HttpResponse> {
    a.require(Role::Supervisor)?;
    let id = path.into_inner();
    let skipped = state
        .db
        .read(move |c| {
            super::find(c, id)?.ok_or(AppError::NotFound)?;
            Ok(super::list_skipped(c, id, i64::MAX)?)
        })
        .await?;
    let ctx = a.ctx;
    let csv =
        super::report_csv(&skipped, |s: Skip| ctx.label("import.reason", s.as_str())).map_err(AppError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"import-{id}-report.csv\""),
        ))
        .body(csv))
}
