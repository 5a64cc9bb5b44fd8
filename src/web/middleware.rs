//! The one middleware every request passes: request id, client IP, session, language,
//! CSRF (token + Origin), then error pages, security headers, metrics and the access log.

use super::Plumbing;
use super::ctx::{RequestCtx, SessionInfo};
use crate::auth::repo;
use crate::crypto;
use crate::error::AppError;
use crate::i18n::Locale;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, web};
use askama::Template;
use base64::Engine;
use std::net::IpAddr;
use std::time::Instant;

pub const SESSION_COOKIE: &str = "__Host-wsid";
pub const CSRF_COOKIE: &str = "__Host-wcsrf";
/// A browser that completed a sign-in: its sign-in attempts count on their own, so
/// locks others cause do not reach it.
pub const DEVICE_COOKIE: &str = "__Host-wdev";
/// Largest form body accepted (file uploads use their own routes and limits).
pub const FORM_LIMIT: usize = 64 * 1024;
/// A session's last-seen time is written at most this often.
const TOUCH_EVERY_SECS: i64 = 60;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
                   base-uri 'none'; object-src 'none'";

/// Paths that carry their own authentication instead of a CSRF token.
fn csrf_exempt(path: &str) -> bool {
    path.starts_with("/webhooks/") || path.starts_with("/api/")
}

/// Paths that need no session or page context.
fn bare(path: &str) -> bool {
    path.starts_with("/static/") || path == "/healthz" || path.starts_with("/webhooks/")
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPageTpl<'a> {
    ctx: &'a RequestCtx,
    status: u16,
    message: &'a str,
}

#[expect(clippy::too_many_lines, reason = "the request context built step by step, in order")]
pub async fn app_middleware(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let Some(state) = req.app_data::<web::Data<Plumbing>>().cloned() else {
        return Err(actix_web::error::ErrorInternalServerError("state missing"));
    };
    let request_id = hex::encode(crypto::random_bytes::<8>());
    let path = req.path().to_string();
    let method = req.method().clone();
    let ip = client_ip(&req, &state.config.trusted_proxies);
    req.extensions_mut().insert(ClientIp(ip.clone()));

    let mut clear_session_cookie = false;
    let mut new_csrf_cookie = None;
    if !bare(&path) {
        let session = match req.cookie(SESSION_COOKIE) {
            Some(c) => {
                let s = load_session(&state, c.value(), &ip).await;
                clear_session_cookie = s.is_none();
                s
            }
            None => None,
        };
        let (csrf_seed, fresh) = match req.cookie(CSRF_COOKIE) {
            Some(c) if c.value().len() >= 32 => (c.value().to_string(), false),
            _ => (crypto::random_token(32), true),
        };
        if fresh {
            new_csrf_cookie = Some(csrf_seed.clone());
        }
        let session_binding = req
            .cookie(SESSION_COOKIE)
            .filter(|_| session.is_some())
            .map(|c| c.value().to_string());
        let csrf = csrf_token(&state.csrf_key, &csrf_seed, session_binding.as_deref());
        let query = web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
            .map(web::Query::into_inner)
            .unwrap_or_default();
        let business = state.business.get();
        let locale = session
            .as_ref()
            .and_then(|s| s.user.locale.as_deref())
            .and_then(Locale::parse)
            .or_else(|| query.get("lang").and_then(|l| Locale::parse(l)))
            .or_else(|| {
                req.headers()
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(Locale::from_accept_language)
            })
            .or_else(|| business.as_ref().map(crate::settings::Business::locale))
            .unwrap_or(Locale::En);
        let flash = query
            .get("m")
            .and_then(|k| FLASH_KEYS.iter().copied().find(|known| *known == k.as_str()));
        let user_agent = req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .chars()
            .take(300)
            .collect();
        let ctx = RequestCtx {
            request_id: request_id.clone(),
            ip: ip.clone(),
            user_agent,
            locale,
            csrf,
            path: path.clone(),
            kept_query: kept_query(req.query_string()),
            flash,
            session,
            business_name: business.as_ref().map(|b| b.name.clone()),
            timezone: business.as_ref().and_then(crate::settings::Business::tz),
            device: req
                .cookie(DEVICE_COOKIE)
                .map(|c| c.value().to_string())
                .filter(|v| v.len() <= 100),
        };
        req.extensions_mut().insert(ctx.clone());

        if is_unsafe(&method) && !csrf_exempt(&path) {
            if let Err(e) = check_csrf(
                &mut req,
                &ctx,
                new_csrf_cookie.is_some(),
                &super::body::Pace::body(&state.config.limits),
                &state.body_slots,
            )
            .await
            {
                let (http_req, _) = req.into_parts();
                let res = ServiceResponse::new(http_req, HttpResponse::from_error(e));
                return Ok(finish(
                    res,
                    &state,
                    &request_id,
                    started,
                    new_csrf_cookie,
                    clear_session_cookie,
                ));
            }
        }
    }

    // Every log line of this request carries its id (the same id is on error pages).
    let span = tracing::info_span!("request", id = %request_id);
    let res = tracing::Instrument::instrument(next.call(req), span)
        .await?
        .map_into_boxed_body();
    Ok(finish(
        res,
        &state,
        &request_id,
        started,
        new_csrf_cookie,
        clear_session_cookie,
    ))
}

/// The client's address as the middleware determined it (behind trusted proxies, from
/// `X-Forwarded-For`), for handlers of bare paths that have no `RequestCtx`.
#[derive(Debug, Clone)]
pub struct ClientIp(pub String);

fn is_unsafe(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Every flash key a redirect may carry (`?m=`); anything else is ignored.
pub const FLASH_KEYS: &[&str] = &[
    "templates.flash_submitted",
    "templates.flash_deleted",
    "flash.retry_queued",
    "flash.signed_out",
    "flash.saved",
    "flash.setup_done",
    "flash.mfa_enabled",
    "flash.mfa_reset",
    "flash.session_revoked",
    "flash.sessions_revoked",
    "flash.user_created",
    "flash.user_updated",
    "flash.password_changed",
    "flash.invite_accepted",
    "flash.session_expired",
    "flash.job_started",
    "flash.number_saved",
    "flash.number_deleted",
    "flash.templates_synced",
    "flash.contact_deleted",
    "segments.deleted",
    "campaigns.ui_flash.started",
    "campaigns.ui_flash.scheduled",
    "campaigns.ui_flash.paused",
    "campaigns.ui_flash.resumed",
    "campaigns.ui_flash.cancelled",
    "campaigns.ui_flash.deleted",
    "campaigns.ui_flash.queued_again",
    "campaigns.ui_flash.follow_up",
    "campaigns.ui_flash.limit_saved",
];

/// The CSRF token for a browser (its CSRF cookie) and, once signed in, its session:
/// signing in changes every token. HMAC, so the server keeps no token table.
pub fn csrf_token(key: &[u8; 32], seed: &str, session_token: Option<&str>) -> String {
    let data = format!("{seed}|{}", session_token.unwrap_or("-"));
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crypto::hmac_sha256(key, data.as_bytes()))
}

async fn check_csrf(
    req: &mut ServiceRequest,
    ctx: &RequestCtx,
    cookie_was_missing: bool,
    pace: &super::body::Pace,
    slots: &super::body::BodySlots,
) -> Result<(), AppError> {
    // A browser says where a request comes from; refuse other sites outright.
    if let Some(site) = req.headers().get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if site == "cross-site" {
            return Err(AppError::Csrf("cross-site request"));
        }
    }
    if let Some(origin) = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = req.connection_info().host().to_string();
        let origin_host = url::Url::parse(origin).ok().map(|u| match u.port() {
            Some(p) => format!("{}:{p}", u.host_str().unwrap_or("")),
            None => u.host_str().unwrap_or("").to_string(),
        });
        if origin_host.as_deref() != Some(host.as_str()) {
            return Err(AppError::Csrf("foreign Origin"));
        }
    }
    if cookie_was_missing {
        return Err(AppError::Csrf("no CSRF cookie"));
    }
    let mut token = req
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    // A file upload (multipart) carries the token in the form's action URL: a signed-in
    // user's body is the handler's to stream, never buffered here.
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("multipart/form-data"));
    if token.is_none() && is_multipart {
        token = url::form_urlencoded::parse(req.query_string().as_bytes())
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.into_owned());
    }
    // A header (or action URL) token is checked before any of the body is read.
    if let Some(t) = &token {
        if !crypto::ct_eq(t.as_bytes(), ctx.csrf.as_bytes()) {
            return Err(AppError::Csrf("wrong token"));
        }
    }
    // Someone not signed in (the sign-in, setup and invitation forms, a password-only
    // session at the code step) has the body read here, against the deadline and in
    // one of the address's few places, wherever the token sits: a handler's extractor
    // would read it with neither. A form's token is in the body too.
    let guarded = !ctx.signed_in();
    if guarded || (token.is_none() && is_form) {
        let _slot = match (guarded, ctx.ip.parse()) {
            (true, Ok(ip)) => Some(slots.try_acquire(ip).ok_or(AppError::TooManyRequests)?),
            _ => None,
        };
        let mut payload = req.take_payload();
        let body = super::body::read_all(&mut payload, FORM_LIMIT, pace)
            .await
            .map_err(|e| match e {
                super::body::BodyError::TooLarge => AppError::BadRequest("error.too_large"),
                super::body::BodyError::TooSlow => AppError::RequestTimeout,
                super::body::BodyError::Broken => AppError::BadRequest("error.bad_request"),
            })?;
        if token.is_none() && is_form {
            token = url::form_urlencoded::parse(&body)
                .find(|(k, _)| k == "csrf")
                .map(|(_, v)| v.into_owned());
        }
        req.set_payload(actix_web::dev::Payload::from(body));
    }
    match token {
        Some(t) if crypto::ct_eq(t.as_bytes(), ctx.csrf.as_bytes()) => Ok(()),
        Some(_) => Err(AppError::Csrf("wrong token")),
        None => Err(AppError::Csrf("missing token")),
    }
}

/// Loads and checks the session behind a cookie; `None` when absent, expired or revoked.
async fn load_session(state: &Plumbing, token: &str, ip: &str) -> Option<SessionInfo> {
    if token.len() > 100 {
        return None;
    }
    let hash = crypto::sha256_hex(token.as_bytes());
    let now = state.clock.unix();
    let idle = state.config.session.idle_minutes * 60;
    let found = state
        .db
        .read(move |c| {
            let Some(s) = repo::find_session(c, &hash)? else {
                return Ok(None);
            };
            let user = repo::find_user(c, s.user_id)?;
            let notice = crate::auth::notices::pending_for(c, s.user_id)?;
            Ok(user.map(|u| (s, u, notice)))
        })
        .await;
    let (s, user, notice) = match found {
        Ok(Some(pair)) => pair,
        Ok(None) => return None,
        Err(e) => {
            tracing::error!(error = %e, "session lookup failed");
            return None;
        }
    };
    if s.expires_at <= now || s.last_seen_at + idle <= now || !user.active {
        return None;
    }
    if now - s.last_seen_at >= TOUCH_EVERY_SECS || s.ip != ip {
        let (id, ip) = (s.id, ip.to_string());
        if let Err(e) = state.db.write(move |c| Ok(repo::touch_session(c, id, now, &ip)?)).await {
            tracing::warn!(error = %e, "cannot record session activity");
        }
    }
    Some(SessionInfo {
        id: s.id,
        stage: s.stage,
        user,
        notice,
    })
}

/// The client's address: the peer, or (behind a configured proxy) the last address in
/// `X-Forwarded-For` that is not one of our proxies.
fn client_ip(req: &ServiceRequest, trusted: &[IpAddr]) -> String {
    let peer = req.peer_addr().map(|a| a.ip());
    if let Some(p) = peer {
        if trusted.contains(&p) {
            if let Some(xff) = req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
                let found = xff
                    .split(',')
                    .rev()
                    .filter_map(|s| s.trim().parse::<IpAddr>().ok())
                    .find(|ip| !trusted.contains(ip));
                if let Some(ip) = found {
                    return ip.to_string();
                }
            }
        }
    }
    peer.map(|p| p.to_string()).unwrap_or_else(|| "unknown".into())
}

/// Our cookies: `__Host-` names, so always `Secure`, `Path=/` and no `Domain`.
fn host_cookie(name: &'static str, value: String, same_site: SameSite) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(same_site)
        .finish()
}

pub fn session_cookie(token: &str) -> Cookie<'static> {
    host_cookie(SESSION_COOKIE, token.to_string(), SameSite::Lax)
}

/// The known-device cookie: a year, strict (it only matters on our own sign-in form).
pub fn device_cookie(token: &str) -> Cookie<'static> {
    let mut c = host_cookie(DEVICE_COOKIE, token.to_string(), SameSite::Strict);
    c.set_max_age(CookieDuration::days(365));
    c
}

/// Adds `cookie` to the response. Our names and values are always valid header text, so
/// a refusal is a bug: logged, and the response goes out without the cookie.
pub fn add_cookie<B>(resp: &mut HttpResponse<B>, cookie: &Cookie<'_>) {
    if let Err(e) = resp.add_cookie(cookie) {
        tracing::error!(error = %e, cookie = cookie.name(), "cannot set a cookie");
    }
}

pub fn removal_cookie(name: &'static str) -> Cookie<'static> {
    let mut c = host_cookie(name, String::new(), SameSite::Lax);
    c.set_max_age(CookieDuration::ZERO);
    c
}

fn finish(
    res: ServiceResponse<BoxBody>,
    state: &Plumbing,
    request_id: &str,
    started: Instant,
    new_csrf_cookie: Option<String>,
    clear_session_cookie: bool,
) -> ServiceResponse<BoxBody> {
    let mut res = render_error(res, request_id);
    let path = res.request().path().to_string();
    let res_status = res.status();
    let headers = res.headers_mut();
    let set = |h: &mut header::HeaderMap, k: &'static str, v: &'static str| {
        h.insert(header::HeaderName::from_static(k), HeaderValue::from_static(v));
    };
    set(headers, "content-security-policy", CSP);
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "x-frame-options", "DENY");
    set(headers, "referrer-policy", "same-origin");
    set(
        headers,
        "permissions-policy",
        "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()",
    );
    set(headers, "cross-origin-opener-policy", "same-origin");
    set(headers, "cross-origin-resource-policy", "same-origin");
    if state.config.tls_enabled() {
        set(headers, "strict-transport-security", "max-age=31536000");
    }
    // Assets are cached; everything else (a missing asset's error page too) is not.
    let cached_asset = path.starts_with("/static/") && (res_status.is_success() || res_status.as_u16() == 304);
    if !cached_asset && !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, "cache-control", "no-store");
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert(header::HeaderName::from_static("x-request-id"), v);
    }
    if let Some(seed) = new_csrf_cookie {
        add_cookie(res.response_mut(), &host_cookie(CSRF_COOKIE, seed, SameSite::Strict));
    }
    let handler_set_session = res.response().cookies().any(|c| c.name() == SESSION_COOKIE);
    if clear_session_cookie && !handler_set_session {
        add_cookie(res.response_mut(), &removal_cookie(SESSION_COOKIE));
    }

    let status = res.status();
    let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".into());
    let method = res.request().method().to_string();
    let elapsed = started.elapsed();
    state
        .metrics
        .observe_request(&route, &method, status.as_u16(), elapsed.as_secs_f64());
    if !bare(&path) || status.is_server_error() {
        tracing::info!(
            request_id,
            method = %method,
            route = %route,
            status = status.as_u16(),
            ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            "request"
        );
    }
    res
}

/// Replaces the plain body of an error response with a page in the user's language
/// (or a JSON error under `/api/`), keeping status and headers.
fn render_error(res: ServiceResponse<BoxBody>, request_id: &str) -> ServiceResponse<BoxBody> {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let mut api_code = None;
    let message_key = match res.response().error() {
        Some(e) => match e.as_error::<AppError>() {
            // `AppError` logged its cause when it made the response.
            Some(app) => {
                api_code = Some(app.api_code());
                app.message_key()
            }
            None => {
                if status.is_server_error() {
                    tracing::error!(error = %e, status = status.as_u16(), "request failed");
                } else {
                    tracing::info!(error = %e, status = status.as_u16(), "request refused");
                }
                generic_key(status)
            }
        },
        // A page or JSON answer a handler built on purpose (a form with messages, an API
        // validation error) is kept as it is.
        None if res.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
            v.as_bytes().starts_with(b"text/html")
                || v.as_bytes().starts_with(b"application/json")
                || (res.request().path().starts_with("/webhooks/") && v.as_bytes().starts_with(b"text/plain"))
        }) =>
        {
            return res;
        }
        None => {
            if status.is_server_error() {
                tracing::error!(status = status.as_u16(), "request failed without a recorded cause");
            }
            generic_key(status)
        }
    };
    let ctx = res.request().extensions().get::<RequestCtx>().cloned();
    let locale = ctx.as_ref().map(|c| c.locale).unwrap_or(Locale::En);
    let message = crate::i18n::t(locale, message_key);
    let path = res.request().path().to_string();
    let (req, old) = res.into_parts();
    let mut builder = HttpResponse::build(status);
    if old.head().connection_type() == actix_web::http::ConnectionType::Close {
        builder.force_close();
    }
    for (k, v) in old.headers() {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            builder.append_header((k.clone(), v.clone()));
        }
    }
    let new = if path.starts_with("/webhooks/") {
        // Meta and other machines: a short line, not a page.
        let reason = status.canonical_reason().unwrap_or("error").to_lowercase();
        builder
            .content_type("text/plain; charset=utf-8")
            .body(format!("{reason}\n"))
    } else if path.starts_with("/api/") {
        let (code, reason) = api_code.unwrap_or((message_key.trim_start_matches("error."), None));
        if status == StatusCode::UNAUTHORIZED && !old.headers().contains_key(header::WWW_AUTHENTICATE) {
            builder.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"whacaster\""));
        }
        let mut error = serde_json::json!({"code": code, "message": message, "request_id": request_id});
        if let Some(r) = reason {
            error["reason"] = serde_json::Value::from(r);
        }
        builder.json(serde_json::json!({ "error": error }))
    } else {
        let fallback;
        let ctx_ref = match &ctx {
            Some(c) => c,
            None => {
                fallback = minimal_ctx(request_id);
                &fallback
            }
        };
        let page = ErrorPageTpl {
            ctx: ctx_ref,
            status: status.as_u16(),
            message,
        };
        match page.render() {
            Ok(html) => builder.content_type("text/html; charset=utf-8").body(html),
            Err(_) => builder
                .content_type("text/plain; charset=utf-8")
                .body(format!("{message} ({request_id})")),
        }
    };
    ServiceResponse::new(req, new)
}

/// The request's query without `lang` and `m` (the flash), re-encoded: what a language
/// link must keep, so switching language on `/setup?token=…` keeps the token.
fn kept_query(raw: &str) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
        if k != "lang" && k != "m" {
            out.append_pair(&k, &v);
        }
    }
    out.finish()
}

fn minimal_ctx(request_id: &str) -> RequestCtx {
    RequestCtx {
        request_id: request_id.to_string(),
        ip: String::new(),
        user_agent: String::new(),
        locale: Locale::En,
        csrf: String::new(),
        path: String::new(),
        kept_query: String::new(),
        flash: None,
        session: None,
        business_name: None,
        timezone: None,
        device: None,
    }
}

fn generic_key(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "error.bad_request",
        401 => "error.unauthenticated",
        403 => "error.forbidden",
        404 => "error.not_found",
        405 => "error.method_not_allowed",
        413 => "error.too_large",
        415 => "error.unsupported_type",
        429 => "error.too_many_requests",
        s if s >= 500 => "error.internal",
        _ => "error.bad_request",
    }
}
