//! The audit log page for admins, filterable, and its CSV export.

use super::{Entry, Filter};
use crate::app::AppState;
use crate::error::AppResult;
use crate::web::{Admin, RequestCtx, ok_page};
use actix_web::{HttpResponse, web};
use askama::Template;

const PAGE: i64 = 100;
/// Most rows in one CSV export.
const EXPORT_MAX: i64 = 100_000;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin/audit").route(web::get().to(get_audit)))
        .service(web::resource("/admin/audit.csv").route(web::get().to(get_audit_csv)));
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    ctx: RequestCtx,
    entries: Vec<Entry>,
    actions: Vec<String>,
    filter: Filter,
    /// Query string of the current filter (for the CSV link and paging).
    query: String,
    next_before: Option<i64>,
}

fn filter_query(f: &Filter) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("action", &f.action),
        ("actor", &f.actor),
        ("target", &f.target),
        ("from", &f.from),
        ("to", &f.to),
    ] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            q.append_pair(k, v);
        }
    }
    q.finish()
}

async fn get_audit(state: web::Data<AppState>, Admin(a): Admin, q: web::Query<Filter>) -> AppResult<HttpResponse> {
    let filter = q.into_inner();
    let f = filter.clone();
    let (entries, actions) = state
        .db
        .read(move |c| Ok((super::list(c, &f, PAGE)?, super::actions(c)?)))
        .await?;
    let next_before = (i64::try_from(entries.len()) == Ok(PAGE))
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    ok_page(&AuditPage {
        ctx: a.ctx,
        query: filter_query(&filter),
        entries,
        actions,
        filter,
        next_before,
    })
}

async fn get_audit_csv(state: web::Data<AppState>, Admin(a): Admin, q: web::Query<Filter>) -> AppResult<HttpResponse> {
    let mut filter = q.into_inner();
    filter.before = None;
    let (now, actor, f) = (state.now(), a.actor(), filter.clone());
    let entries = state.db.read(move |c| Ok(super::list(c, &f, EXPORT_MAX)?)).await?;
    let details = filter_query(&filter);
    // Exporting the log is itself an action worth recording.
    state
        .db
        .write(move |c| Ok(super::record(c, &actor, "audit.export", "audit_log", &details, now)?))
        .await?;
    let csv = super::to_csv(&entries).map_err(crate::AppError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(("Content-Disposition", "attachment; filename=\"whacaster-audit.csv\""))
        .body(csv))
}
