//! Operating it: `/healthz` for probes, `/metrics` (Prometheus text) for admins or
//! loopback, and the admin's System page: certificate, schema, store and the queues.

use crate::app::AppState;
use crate::error::{AppError, AppResult};
use crate::metrics::QueueGauges;
use crate::web::{Admin, RequestCtx};
use actix_web::{HttpResponse, web};
use rusqlite::Connection;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/healthz").route(web::get().to(get_healthz)))
        .service(web::resource("/metrics").route(web::get().to(get_metrics)))
        .service(web::resource("/admin/system").route(web::get().to(get_system)));
}

/// The queues right now: the intake's backlog and quarantine, the outbox by state.
/// All three are served by indexes, so a scrape costs the same with a million rows kept.
pub fn read_queues(c: &Connection) -> rusqlite::Result<QueueGauges> {
    let backlog = crate::whatsapp::deliveries::count_backlog(c)?;
    Ok(QueueGauges {
        delivery_backlog: backlog.waiting,
        deliveries_quarantined: backlog.quarantined,
        outbox: crate::whatsapp::outbox::count_all_by_state(c)?
            .into_iter()
            .map(|(st, n)| (st.as_str().to_string(), n))
            .collect(),
    })
}

pub async fn get_healthz(state: web::Data<AppState>) -> HttpResponse {
    let db_ok = state
        .db
        .read(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
        .await
        .is_ok();
    let body = serde_json::json!({
        "status": if db_ok { "ok" } else { "degraded" },
        "version": crate::VERSION,
        "db": if db_ok { "ok" } else { "error" },
    });
    let mut resp = if db_ok {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    resp.json(body)
}

/// Who may scrape `/metrics`, from plain values.
pub fn metrics_allowed(token: Option<&str>, bearer: Option<&str>, loopback_trusted: bool) -> bool {
    match token {
        Some(t) => bearer.is_some_and(|b| crate::crypto::ct_eq(b.as_bytes(), t.as_bytes())),
        None => loopback_trusted,
    }
}

/// Prometheus metrics: for a signed-in admin, for a scraper with the configured bearer
/// token, or (no token configured) for anything on loopback unless loopback may be a
/// reverse proxy (trusted proxies named, or plain HTTP with none named).
pub async fn get_metrics(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    ctx: RequestCtx,
) -> AppResult<HttpResponse> {
    let cfg = &state.config;
    let loopback = req.peer_addr().is_some_and(|a| a.ip().is_loopback())
        && cfg.trusted_proxies.is_empty()
        && !cfg.proxy_unconfigured();
    let bearer = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let scraper = metrics_allowed(
        state.metrics_token.as_ref().map(crate::crypto::Secret::expose),
        bearer,
        loopback,
    );
    let admin = ctx.user().is_some_and(|u| u.at_least(crate::auth::Role::Admin));
    if !scraper && !admin {
        return Err(if ctx.user().is_some() {
            AppError::Forbidden
        } else {
            AppError::Unauthenticated
        });
    }
    let queues = state.db.read(|c| Ok(read_queues(c)?)).await?;
    let text = state
        .metrics
        .encode(state.db.pool_state(), &queues)
        .map_err(AppError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}

/// What the system page shows: the certificate, the schema, the store.
#[derive(askama::Template)]
#[template(path = "admin/system.html")]
struct SystemPage {
    ctx: RequestCtx,
    version: &'static str,
    tls_mode: &'static str,
    cert: Option<crate::tls::CertInfo>,
    cert_days_left: i64,
    schema: i64,
    schema_latest: i64,
    db_path: String,
    data_dir: String,
    public_url: String,
    queues: QueueGauges,
    backup: Option<crate::privacy::backup::Record>,
}

impl SystemPage {
    fn days_left(&self) -> String {
        self.ctx
            .tf("system.days_left", &[("n", &self.cert_days_left.to_string())])
    }
}

/// The admin's view of the installation (P17): certificate issuer and expiry, TLS mode,
/// schema version, where the data lives. `whacaster check` gives the same and more.
pub async fn get_system(state: web::Data<AppState>, Admin(a): Admin) -> AppResult<HttpResponse> {
    let (schema, queues, backup) = state
        .db
        .read(|c| {
            let schema = crate::store::applied_versions(c)?.into_iter().max().unwrap_or(0);
            Ok((schema, read_queues(c)?, crate::privacy::backup::find_last(c)?))
        })
        .await?;
    let cert = state.tls.as_ref().and_then(|t| t.info());
    let now = state.now();
    let cfg = &state.config;
    let page = SystemPage {
        ctx: a.ctx,
        version: crate::VERSION,
        tls_mode: match cfg.tls.mode {
            crate::config::TlsMode::SelfSigned => "self-signed",
            crate::config::TlsMode::Files => "files",
            crate::config::TlsMode::Off => "off",
            crate::config::TlsMode::Acme => "acme",
        },
        cert_days_left: cert.as_ref().map(|c| (c.not_after - now) / 86_400).unwrap_or(0),
        cert,
        schema,
        schema_latest: crate::store::MIGRATIONS.iter().map(|(v, _)| *v).max().unwrap_or(0),
        db_path: cfg.db_path().display().to_string(),
        data_dir: cfg.data_dir.display().to_string(),
        public_url: state.base_url(),
        queues,
        backup,
    };
    crate::web::ok_page(&page)
}
