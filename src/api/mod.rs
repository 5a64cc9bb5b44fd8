//! REST API v1 under `/api/v1`: JSON, bearer API keys with the same role checks as the
//! UI, consistent errors (`{"error":{"code","message"}}`), a per-key rate limit with
//! `Retry-After`, and an OpenAPI 3.1 document that lists every route.

pub mod bot;
pub mod campaigns;
pub mod contacts;
pub mod conversations;
pub mod imports;
pub mod keys;
pub mod privacy;
pub mod routes;
pub mod segments;
pub mod templates;

use crate::app::AppState;
use crate::auth::Role;
use crate::error::AppError;
use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, web};
use futures_util::future::LocalBoxFuture;

/// `last_used_at` is written at most this often per key.
const TOUCH_EVERY: i64 = 60;

/// A request made with a valid, unrevoked API key.
#[derive(Debug, Clone)]
pub struct ApiCaller {
    pub key: keys::ApiKey,
    /// The client's address as the request context has it (behind a trusted proxy, the
    /// forwarded one): what the audit lines record.
    pub ip: String,
}

impl ApiCaller {
    /// The same rule as the UI: at least `role`, else 403.
    pub fn require(&self, role: Role) -> Result<(), AppError> {
        if self.key.role >= role {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }

    pub fn actor(&self) -> crate::audit::Actor {
        crate::audit::Actor {
            id: None,
            label: format!("api key {} ({})", self.key.name, self.key.prefix),
            ip: self.ip.clone(),
        }
    }
}

/// An API key asks for a change: its audit actor and its role (it owns no conversations).
impl From<&ApiCaller> for crate::inbox::manage::By {
    fn from(caller: &ApiCaller) -> Self {
        crate::inbox::manage::By {
            actor: caller.actor(),
            user: None,
            role: caller.key.role,
        }
    }
}

impl FromRequest for ApiCaller {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_string());
        let addr = req
            .extensions()
            .get::<crate::web::RequestCtx>()
            .map(|c| c.ip.clone())
            .unwrap_or_default();
        let ip = addr.parse::<std::net::IpAddr>().ok();
        Box::pin(async move {
            let state = state.ok_or_else(|| AppError::internal("state missing"))?;
            let token = token.ok_or(AppError::ApiKeyMissing)?;
            // Unknown keys cost the address: guessing is slowed to a trickle, and a
            // client that keeps sending a revoked key is told to stop (429).
            let refuse = || match ip {
                Some(ip) if state.api_bad_key_limiter.check_key(&ip).is_err() => AppError::TooManyRequests,
                _ => AppError::ApiKeyInvalid,
            };
            if !(token.starts_with("wk_") && token.len() < 100) {
                return Err(refuse());
            }
            let key = state.db.read(move |c| Ok(keys::find_by_token(c, &token)?)).await?;
            let Some(key) = key else {
                return Err(refuse());
            };
            if state.api_limiter.check_key(&key.id).is_err() {
                return Err(AppError::TooManyRequests);
            }
            let now = state.now();
            if key.last_used_at.is_none_or(|t| now - t >= TOUCH_EVERY) {
                let id = key.id;
                state.db.write(move |c| Ok(keys::touch(c, id, now)?)).await?;
            }
            Ok(ApiCaller { key, ip: addr })
        })
    }
}

/// The API's 422 for a form's errors: `{"error": {"code": "invalid", "message": <the
/// first, in English>, "fields": {<field>: <message>}}}`. `field` names a form field as
/// the API's body does (`name` may be `filter.name` there).
pub fn invalid_fields(errors: &crate::error::FormErrors, field: impl Fn(&str) -> String) -> actix_web::HttpResponse {
    let en = crate::i18n::Locale::En;
    let fields: serde_json::Map<String, serde_json::Value> = errors
        .0
        .iter()
        .map(|(f, k)| (field(f), serde_json::json!(crate::i18n::t(en, k))))
        .collect();
    let message = errors.0.first().map(|(_, k)| crate::i18n::t(en, k)).unwrap_or("");
    actix_web::HttpResponse::UnprocessableEntity()
        .json(serde_json::json!({"error": {"code": "invalid", "message": message, "fields": fields}}))
}
