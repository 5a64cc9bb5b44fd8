//! Operating it: `/healthz` for probes and `/metrics` (Prometheus text) for admins or loopback.

use super::{Admin, AppState, RequestCtx};
use crate::error::{AppError, AppResult};
use actix_web::{HttpResponse, web};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Mutex;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    pub login_failures: Counter,
    pub webhook_received: Counter,
    pub webhook_refused: Counter,
    pool_connections: Gauge,
    pool_idle: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("whacaster");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0])
        });
        let login_failures = Counter::default();
        let webhook_received = Counter::default();
        let webhook_refused = Counter::default();
        let pool_connections = Gauge::default();
        let pool_idle = Gauge::default();
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        registry.register(
            "login_failures",
            "Failed sign-in attempts (password or MFA)",
            login_failures.clone(),
        );
        registry.register(
            "webhook_deliveries",
            "Signed webhook deliveries stored",
            webhook_received.clone(),
        );
        registry.register(
            "webhook_refused",
            "Webhook deliveries refused (missing or wrong signature)",
            webhook_refused.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Open database connections in the read pool",
            pool_connections.clone(),
        );
        registry.register(
            "db_pool_idle_connections",
            "Idle database connections in the read pool",
            pool_idle.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            requests,
            latency,
            login_failures,
            webhook_received,
            webhook_refused,
            pool_connections,
            pool_idle,
        }
    }

    pub fn observe_request(&self, route: &str, method: &str, status: u16, secs: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_string(),
                method: method.to_string(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_string(),
            })
            .observe(secs);
    }

    pub fn encode(&self, pool: (u32, u32)) -> Result<String, String> {
        self.pool_connections.set(i64::from(pool.0));
        self.pool_idle.set(i64::from(pool.1));
        let mut out = String::new();
        let registry = self
            .registry
            .lock()
            .map_err(|_| "metrics registry poisoned".to_string())?;
        prometheus_client::encoding::text::encode(&mut out, &registry).map_err(|e| e.to_string())?;
        Ok(out)
    }
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

/// Prometheus metrics: for a signed-in admin, or for anything on loopback (a local scraper).
pub async fn get_metrics(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    ctx: RequestCtx,
) -> AppResult<HttpResponse> {
    let loopback = req.peer_addr().is_some_and(|a| a.ip().is_loopback()) && state.config.trusted_proxies.is_empty();
    let admin = ctx.user().is_some_and(|u| u.at_least(crate::auth::Role::Admin));
    if !loopback && !admin {
        return Err(if ctx.user().is_some() {
            AppError::Forbidden
        } else {
            AppError::Unauthenticated
        });
    }
    let text = state
        .metrics
        .encode(state.db.pool_state())
        .map_err(AppError::Internal)?;
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
    let schema = state
        .db
        .read(|c| Ok(crate::store::applied_versions(c)?.into_iter().max().unwrap_or(0)))
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
    };
    super::ok_page(&page)
}
