//! `/webhooks/whatsapp`: Meta's GET verification handshake, and POST deliveries checked
//! against `X-Hub-Signature-256` over the exact raw bytes, then appended to the durable
//! inbox (`webhook_inbox`) and only then answered 200. The single writer groups
//! concurrent deliveries into one commit (one fsync). Refused deliveries store nothing
//! but a rate-limited security event and a metric.

use crate::error::AppResult;
use crate::web::AppState;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use hmac::{Hmac, Mac};
use rusqlite::{Connection, params};
use serde::Deserialize;
use sha2::Sha256;

/// Largest delivery accepted. Meta documents up to 3 MB.
pub const MAX_BODY: usize = 4 * 1024 * 1024;
/// At most one security event per kind and address in this many seconds.
const SECURITY_EVENT_EVERY: i64 = 60;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/webhooks/whatsapp")
            .app_data(web::PayloadConfig::new(MAX_BODY))
            .route(web::get().to(get_verify))
            .route(web::post().to(post_delivery)),
    );
}

/// HMAC-SHA256 of `body` under `secret` equals the hex in `signature_hex` (constant time).
pub fn valid_signature(secret: &[u8], body: &[u8], signature_hex: &[u8]) -> bool {
    let Ok(expected) = hex::decode(signature_hex) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
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
            .write(move |c| Ok(record_security_event(c, now, kind, &ip, &format!("{len} bytes"))?))
            .await?;
        return Ok(HttpResponse::Unauthorized()
            .content_type("text/plain")
            .body("invalid signature"));
    }
    // 200 only after the commit: an acknowledged delivery is never lost.
    state.db.write(move |c| Ok(append(c, now, &body)?)).await?;
    state.metrics.webhook_received.inc();
    state.inbox_notify.notify_one();
    Ok(HttpResponse::Ok().content_type("text/plain").body("ok"))
}

pub fn append(c: &Connection, now: i64, body: &[u8]) -> rusqlite::Result<i64> {
    c.execute(
        "INSERT INTO webhook_inbox (received_at, body) VALUES (?1, ?2)",
        params![now, body],
    )?;
    Ok(c.last_insert_rowid())
}

/// Records a security event unless the same kind from the same address was recorded
/// within the last minute (a flood of bad deliveries is one line, not a million).
pub fn record_security_event(c: &Connection, now: i64, kind: &str, ip: &str, detail: &str) -> rusqlite::Result<bool> {
    let n = c.execute(
        "INSERT INTO security_events (at, kind, ip, detail)
         SELECT ?1, ?2, ?3, ?4
         WHERE NOT EXISTS (SELECT 1 FROM security_events WHERE kind = ?2 AND ip = ?3 AND at > ?1 - ?5)",
        params![now, kind, ip, detail, SECURITY_EVENT_EVERY],
    )?;
    Ok(n == 1)
}

/// What the numbers page shows about deliveries.
#[derive(Debug, Clone, Default)]
pub struct InboxStats {
    pub received: i64,
    pub last_received_at: Option<i64>,
    pub refused: Vec<(i64, String, String)>,
}

pub fn inbox_stats(c: &Connection) -> rusqlite::Result<InboxStats> {
    let (received, last_received_at) =
        c.query_row("SELECT count(*), max(received_at) FROM webhook_inbox", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let mut stmt =
        c.prepare("SELECT at, kind, ip FROM security_events WHERE kind LIKE 'webhook_%' ORDER BY id DESC LIMIT 10")?;
    let refused = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    Ok(InboxStats {
        received,
        last_received_at,
        refused,
    })
}

pub fn purge_security_events(c: &Connection, before: i64) -> rusqlite::Result<usize> {
    c.execute("DELETE FROM security_events WHERE at < ?1", [before])
}
