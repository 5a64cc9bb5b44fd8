//! `/webhooks/whatsapp`: Meta's GET verification handshake, and POST deliveries checked
//! against `X-Hub-Signature-256` over the exact raw bytes, then appended to the durable
//! queue (`whatsapp::deliveries`) and only then answered 200. The single writer groups
//! concurrent deliveries into one commit (one fsync). Refused deliveries store nothing
//! but a rate-limited security event and a metric.

use crate::app::AppState;
use crate::error::AppResult;
use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use serde::Deserialize;

/// Largest delivery accepted. Meta documents up to 3 MB.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/webhooks/whatsapp")
            .route(web::get().to(get_verify))
            .route(web::post().to(post_delivery)),
    );
}

#[derive(Deserialize)]
pub struct VerifyQuery {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

/// Answers the challenge only for `hub.mode=subscribe` with a known verify token.
async fn get_verify(state: web::Data<AppState>, q: web::Query<VerifyQuery>) -> HttpResponse {
    let q = q.into_inner();
    let ok = q.mode.as_deref() == Some("subscribe")
        && q.verify_token
            .as_deref()
            .is_some_and(|t| state.webhook_keys.verify_token_matches(t));
    match (ok, q.challenge) {
        (true, Some(challenge)) if challenge.len() <= 256 => HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(challenge),
        _ => HttpResponse::Forbidden()
            .content_type("text/plain; charset=utf-8")
            .body("verification failed"),
    }
}

/// Bodies larger than this are not read from an address that keeps sending bad
/// signatures (a real delivery of a few kB still gets through).
const SMALL_BODY: usize = 64 * 1024;

fn plain(status: actix_web::http::StatusCode, text: &'static str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .body(text)
}

#[expect(
    clippy::too_many_lines,
    reason = "the checks before the 200, in order: type, body deadline, signature, append"
)]
async fn post_delivery(
    state: web::Data<AppState>,
    req: HttpRequest,
    mut payload: web::Payload,
) -> AppResult<HttpResponse> {
    use crate::web::body::{self, BodyError, Pace};
    use actix_web::http::StatusCode;
    let ip = req
        .extensions()
        .get::<crate::web::middleware::ClientIp>()
        .map(|c| c.0.clone())
        .or_else(|| req.peer_addr().map(|a| a.ip().to_string()))
        .unwrap_or_default();
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY) {
        return Ok(plain(StatusCode::PAYLOAD_TOO_LARGE, "payload too large\n"));
    }
    // Decided on the headers, before a byte of a large body is read.
    if declared.is_none_or(|n| n > SMALL_BODY) && ip.parse().is_ok_and(|a| state.bad_senders.flooding(a)) {
        state.metrics.webhook_refused.inc();
        return Ok(HttpResponse::TooManyRequests()
            .insert_header(("Retry-After", "60"))
            .force_close()
            .content_type("text/plain; charset=utf-8")
            .body("too many bad signatures from this address\n"));
    }
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if !json {
        return Ok(plain(StatusCode::UNSUPPORTED_MEDIA_TYPE, "expected application/json\n"));
    }
    // Unsigned until read: one of the address's few places while the body comes in.
    let slot = match ip.parse() {
        Ok(a) => match state.plumbing.body_slots.try_acquire(a) {
            Some(slot) => Some(slot),
            None => {
                tracing::warn!(ip = %ip, "too many webhook bodies at once from one address");
                return Ok(HttpResponse::TooManyRequests()
                    .insert_header(("Retry-After", "10"))
                    .force_close()
                    .content_type("text/plain; charset=utf-8")
                    .body("too many requests at once from this address\n"));
            }
        },
        Err(_) => None,
    };
    let read = body::read_all(&mut payload, MAX_BODY, &Pace::webhook(&state.config.limits)).await;
    drop(slot);
    let body = match read {
        Ok(b) => b,
        Err(BodyError::TooLarge) => return Ok(plain(StatusCode::PAYLOAD_TOO_LARGE, "payload too large\n")),
        Err(BodyError::TooSlow) => {
            tracing::info!(ip = %ip, "webhook body too slow; connection closed");
            return Ok(HttpResponse::RequestTimeout()
                .force_close()
                .content_type("text/plain; charset=utf-8")
                .body("request body too slow\n"));
        }
        Err(BodyError::Broken) => return Ok(plain(StatusCode::BAD_REQUEST, "bad request body\n")),
    };
    let signature = req
        .headers()
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("sha256="))
        .map(|v| v.trim().as_bytes().to_vec());
    let verified = signature
        .as_deref()
        .is_some_and(|s| state.webhook_keys.signature_matches(&body, s));
    let now = state.now();
    if !verified {
        let kind = if signature.is_some() {
            "webhook_bad_signature"
        } else {
            "webhook_no_signature"
        };
        state.metrics.webhook_refused.inc();
        if let Ok(a) = ip.parse() {
            state.bad_senders.note(a);
        }
        let len = body.len();
        // Never the body: it could be anything, from anyone.
        state
            .db
            .write(move |c| {
                Ok(super::deliveries::record_security_event(
                    c,
                    now,
                    kind,
                    &ip,
                    &format!("{len} bytes"),
                )?)
            })
            .await?;
        return Ok(plain(StatusCode::UNAUTHORIZED, "invalid signature\n"));
    }
    // 200 only after the commit: an acknowledged delivery is never lost.
    state
        .db
        .write(move |c| Ok(super::deliveries::append(c, now, &body)?))
        .await?;
    state.metrics.webhook_received.inc();
    state.deliveries_bell.ring();
    Ok(HttpResponse::Ok().content_type("text/plain").body("ok"))
}
