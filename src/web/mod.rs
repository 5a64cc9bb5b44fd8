//! App wiring: shared state, the per-request context, the route table, middleware,
//! embedded static assets, health and metrics.

pub mod assets;
pub mod ctx;
pub mod middleware;
pub mod ops;

pub use ctx::{Admin, Authed, RequestCtx, SignedIn};

use crate::auth::password::Hasher;
use crate::clock::Clock;
use crate::config::Config;
use crate::jobs::Scheduler;
use crate::store::Db;
use crate::tls::CertState;
use actix_web::{HttpResponse, web};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};

/// Everything a handler may need; one instance shared by all workers.
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub clock: Clock,
    pub hasher: Hasher,
    /// Key for CSRF tokens, derived from the database key.
    pub csrf_key: [u8; 32],
    /// Requests per API key.
    pub api_limiter: DefaultKeyedRateLimiter<i64>,
    /// Sign-in attempts per client IP.
    pub login_limiter: DefaultKeyedRateLimiter<IpAddr>,
    pub metrics: ops::Metrics,
    pub tls: Option<Arc<CertState>>,
    pub scheduler: Scheduler,
    /// Key for media files at rest (derived from the database key).
    pub media_key: [u8; 32],
    /// Wakes the media fetcher when a file was queued.
    pub media_notify: tokio::sync::Notify,
    /// Wakes the outbox dispatcher when a message was queued.
    pub outbox_notify: tokio::sync::Notify,
    /// The dispatcher's rate limiters (per number, per recipient).
    pub outbox_limits: crate::whatsapp::outbox::Limiters,
    /// Wakes the webhook processor when a delivery was stored.
    pub inbox_notify: tokio::sync::Notify,
    /// Meta's Graph API (base URL and version from the configuration).
    pub graph: crate::whatsapp::graph::GraphClient,
    /// App secrets and verify tokens of the connected numbers, for webhooks.
    pub webhook_keys: crate::whatsapp::WebhookKeys,
    /// The address people reach this server at (set once the listener is bound).
    pub bound_base_url: std::sync::OnceLock<String>,
    /// Live updates for open inbox pages.
    pub live: crate::inbox::live::Hub,
    /// Business name and default language, cached for every page.
    pub business: RwLock<Option<crate::settings::Business>>,
}

impl AppState {
    pub fn new(
        config: Arc<Config>,
        db: Db,
        clock: Clock,
        csrf_key: [u8; 32],
        media_key: [u8; 32],
        tls: Option<Arc<CertState>>,
    ) -> Result<AppState, String> {
        let hasher = Hasher::new(&config.argon2)?;
        let per_minute = NonZeroU32::new(config.login.per_ip_per_minute).unwrap_or(NonZeroU32::MIN);
        let business = db
            .read_blocking(|c| Ok(crate::settings::find_business(c)?))
            .map_err(|e| format!("cannot read the business profile: {e}"))?;
        let graph = crate::whatsapp::graph::GraphClient::new(
            &config.graph.base_url,
            &config.graph.api_version,
            config.graph.timeout_secs,
        )?;
        let webhook_keys = db
            .read_blocking(|c| Ok(crate::whatsapp::WebhookKeys::load(c)?))
            .map_err(|e| format!("cannot read the WhatsApp numbers: {e}"))?;
        Ok(AppState {
            config,
            db,
            clock,
            hasher,
            csrf_key,
            login_limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
            api_limiter: RateLimiter::keyed(Quota::per_minute(
                NonZeroU32::new(crate::api::PER_MINUTE).unwrap_or(NonZeroU32::MIN),
            )),
            metrics: ops::Metrics::new(),
            tls,
            scheduler: Scheduler::new(),
            webhook_keys,
            bound_base_url: std::sync::OnceLock::new(),
            graph,
            inbox_notify: tokio::sync::Notify::new(),
            outbox_notify: tokio::sync::Notify::new(),
            media_key,
            media_notify: tokio::sync::Notify::new(),
            outbox_limits: crate::whatsapp::outbox::Limiters::default(),
            live: crate::inbox::live::Hub::default(),
            business: RwLock::new(business),
        })
    }

    pub fn business(&self) -> Option<crate::settings::Business> {
        self.business.read().ok().and_then(|b| b.clone())
    }

    pub fn set_business(&self, b: crate::settings::Business) {
        if let Ok(mut guard) = self.business.write() {
            *guard = Some(b);
        }
    }

    /// `public_url`, else the address actually listened on (links, callback URL).
    pub fn base_url(&self) -> String {
        self.bound_base_url
            .get()
            .cloned()
            .unwrap_or_else(|| self.config.base_url())
    }

    pub fn now(&self) -> i64 {
        self.clock.unix()
    }
}

/// The whole application: every feature's routes behind the shared middleware.
/// `server` and the tests both build the app through this function.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/healthz").route(web::get().to(ops::get_healthz)))
        .service(web::resource("/metrics").route(web::get().to(ops::get_metrics)))
        .service(web::resource("/admin/system").route(web::get().to(ops::get_system)))
        .service(web::resource("/static/{path:.*}").route(web::get().to(assets::get_asset)))
        .service(web::resource("/").route(web::get().to(crate::setup::get_dashboard)));
    crate::setup::configure(cfg);
    crate::auth::routes::configure(cfg);
    crate::auth::admin::configure(cfg);
    crate::audit::routes::configure(cfg);
    crate::jobs::configure(cfg);
    crate::whatsapp::numbers::configure(cfg);
    crate::whatsapp::webhook::configure(cfg);
    crate::whatsapp::media::configure(cfg);
    crate::api::routes::configure(cfg);
    crate::contacts::routes::configure(cfg);
    crate::inbox::routes::configure(cfg);
    crate::api::conversations::configure(cfg);
}

/// 303 See Other to `path`.
pub fn see_other(path: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header(("Location", path)).finish()
}

/// 303 to `path` with a one-time message: `?m=flash.key` (no cookie needed, P20).
pub fn see_other_flash(path: &str, flash_key: &str) -> HttpResponse {
    let sep = if path.contains('?') { '&' } else { '?' };
    see_other(&format!("{path}{sep}m={flash_key}"))
}

/// Renders an askama page with a status.
pub fn render<T: askama::Template>(
    status: actix_web::http::StatusCode,
    page: &T,
) -> crate::error::AppResult<HttpResponse> {
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(page.render()?))
}

pub fn ok_page<T: askama::Template>(page: &T) -> crate::error::AppResult<HttpResponse> {
    render(actix_web::http::StatusCode::OK, page)
}

/// Form re-rendered with messages: 422.
pub fn invalid_page<T: askama::Template>(page: &T) -> crate::error::AppResult<HttpResponse> {
    render(actix_web::http::StatusCode::UNPROCESSABLE_ENTITY, page)
}

/// Field messages for a form: (field, catalogue key).
#[derive(Debug, Default, Clone)]
pub struct FormErrors(pub Vec<(&'static str, &'static str)>);

impl FormErrors {
    pub fn add(&mut self, field: &'static str, key: &'static str) {
        self.0.push((field, key));
    }
    pub fn get(&self, field: &str) -> Option<&'static str> {
        self.0.iter().find(|(f, _)| *f == field).map(|(_, k)| *k)
    }
    pub fn has(&self, field: &str) -> bool {
        self.get(field).is_some()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A form or query number where an empty field means "none" (an empty `<select>`
/// choice or hidden input), instead of a 400 for a number that does not parse.
pub fn empty_as_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let s: Option<String> = serde::Deserialize::deserialize(d)?;
    match s.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(serde::de::Error::custom),
    }
}
