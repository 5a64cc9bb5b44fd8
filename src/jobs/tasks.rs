//! The foundation's jobs (verb phrases, like the job names).

use crate::app::AppState;
use crate::auth::repo;

/// System logs (login events, audit log) are kept 90 days (PRIVACY-PROMISES P14).
pub const LOG_RETENTION_DAYS: i64 = 90;
/// Raw webhook deliveries, once processed, are kept a week for troubleshooting.
pub const DELIVERY_RETENTION_DAYS: i64 = 7;

pub fn purge_expired_sessions(state: &AppState) -> Result<String, String> {
    let now = state.now();
    let idle = state.config.session.idle_minutes * 60;
    state
        .db
        .write_blocking(move |c| {
            let sessions = repo::delete_expired_sessions(c, now, idle)?;
            let invites = c.execute("DELETE FROM invites WHERE expires_at <= ?1", [now])?;
            let tokens = c.execute("DELETE FROM setup_tokens WHERE expires_at <= ?1", [now])?;
            let throttle = repo::purge_throttle(c, now - 86_400)?;
            Ok(format!(
                "{sessions} sessions, {invites} invites, {tokens} setup links, {throttle} throttle entries removed"
            ))
        })
        .map_err(|e| e.to_string())
}

pub fn purge_old_logs(state: &AppState) -> Result<String, String> {
    let now = state.now();
    let before = now - LOG_RETENTION_DAYS * 86_400;
    state
        .db
        .write_blocking(move |c| {
            let logins = repo::purge_login_events(c, before)?;
            let audit = crate::audit::purge(c, before)?;
            let security = crate::whatsapp::deliveries::purge_security_events(c, before)?;
            // Processed raw deliveries are personal data that now lives in its own tables.
            let deliveries = crate::whatsapp::deliveries::purge_done(c, now - DELIVERY_RETENTION_DAYS * 86_400)?;
            Ok(format!(
                "{logins} login events, {audit} audit entries, {security} security events older than {LOG_RETENTION_DAYS} days, {deliveries} processed webhook deliveries older than {DELIVERY_RETENTION_DAYS} days removed"
            ))
        })
        .map_err(|e| e.to_string())
}

pub fn renew_self_signed_certificate(state: &AppState) -> Result<String, String> {
    match &state.tls {
        Some(tls) => tls.renew_if_needed(&state.config, state.clock.now()),
        None => Ok("TLS is off; nothing to renew".into()),
    }
}
