//! `/webhooks/whatsapp`: Meta's GET verification handshake, and POST deliveries checked
//! against `X-Hub-Signature-256` over the exact raw bytes, then appended to the durable
//! queue (`whatsapp::deliveries`) and only then answered 200. The single writer groups
//! concurrent deliveries into one commit (one fsync). Refused deliveries store nothing
//! but a rate-limited security event and a metric.

use crate::app::AppState;
use crate::error::AppResult;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

/// Largest delivery accepted. Meta documents up to 3 MB.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/webhooks/whatsapp")
            .app_data(web::PayloadConfig::new(MAX_BODY))
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

async fn post_delivery(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> AppResult<HttpResponse> {
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if !json {
        return Ok(HttpResponse::UnsupportedMediaType()
            .content_type("text/plain")
            .body("expected application/json"));
    }
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
        let ip = req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default();
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
        return Ok(HttpResponse::Unauthorized()
            .content_type("text/plain")
            .body("invalid signature"));
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
