//! HTTP plumbing below the features: the per-request context and extractors, the
//! middleware (session, CSRF, headers, request id, errors), embedded static assets, and
//! page helpers. No feature's routes or state live here (see `app` and `server`).

pub mod assets;
pub mod body;
pub mod ctx;
pub mod middleware;
pub mod upload;

pub use crate::error::FormErrors;
pub use ctx::{Admin, Authed, RequestCtx, SignedIn};

use crate::clock::Clock;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::settings::Business;
use crate::store::Db;
use actix_web::HttpResponse;
use std::sync::{Arc, RwLock};

/// What the middleware needs for every request, and nothing of any feature's: the
/// configuration, the store (sessions), the clock, the CSRF key, the metrics, and the
/// business name and language every page shows. Registered as app data beside the
/// features' state.
pub struct Plumbing {
    pub config: Arc<Config>,
    pub db: Db,
    pub clock: Clock,
    /// Key for CSRF tokens, derived from the database key.
    pub csrf_key: [u8; 32],
    pub metrics: Arc<Metrics>,
    pub business: BusinessCache,
    /// Bodies being received from clients not signed in, per address.
    pub body_slots: body::BodySlots,
}

/// The business profile, cached for every page; shared with the setup pages that change it.
#[derive(Clone, Default)]
pub struct BusinessCache(Arc<RwLock<Option<Business>>>);

impl BusinessCache {
    pub fn new(b: Option<Business>) -> BusinessCache {
        BusinessCache(Arc::new(RwLock::new(b)))
    }

    pub fn get(&self) -> Option<Business> {
        self.0.read().ok().and_then(|b| b.clone())
    }

    pub fn set(&self, b: Business) {
        if let Ok(mut guard) = self.0.write() {
            *guard = Some(b);
        }
    }
}

/// 303 See Other to `path`. A path that cannot be a header value (a newline from a
/// caller's bug) goes to `/` and is logged, never a bare 500.
pub fn see_other(path: &str) -> HttpResponse {
    match actix_web::http::header::HeaderValue::from_str(path) {
        Ok(v) => HttpResponse::SeeOther().insert_header(("Location", v)).finish(),
        Err(e) => {
            tracing::error!(error = %e, "redirect target is not a valid header value; sending to /");
            HttpResponse::SeeOther().insert_header(("Location", "/")).finish()
        }
    }
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

/// A form or query number where an empty field means "none" (an empty `<select>`
/// choice or hidden input), instead of a 400 for a number that does not parse.
pub fn empty_as_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let s: Option<String> = serde::Deserialize::deserialize(d)?;
    match s.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(serde::de::Error::custom),
    }
}
