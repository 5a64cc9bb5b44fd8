//! Retention: system logs (login events, audit log, security events) are kept 90 days
//! (P14); raw webhook deliveries, once processed, a week for troubleshooting (their
//! content lives on in its own tables). Each feature deletes its own rows; this job
//! only says when.

use crate::store::Db;

/// System logs (login events, audit log, security events) are kept 90 days (P14).
pub const LOG_RETENTION_DAYS: i64 = 90;
/// Raw webhook deliveries, once processed, are kept a week for troubleshooting.
pub const DELIVERY_RETENTION_DAYS: i64 = 7;

/// The job `purge_old_logs`.
pub async fn purge_old_logs(db: &Db, now: i64) -> Result<String, String> {
    let before = now - LOG_RETENTION_DAYS * 86_400;
    db.write(move |c| {
        let logins = crate::auth::repo::purge_login_events(c, before)?;
        let audit = crate::audit::purge(c, before)?;
        let security = crate::whatsapp::deliveries::purge_security_events(c, before)?;
        // Processed raw deliveries are personal data that now lives in its own tables.
        let deliveries = crate::whatsapp::deliveries::purge_done(c, now - DELIVERY_RETENTION_DAYS * 86_400)?;
        Ok(format!(
            "{logins} login events, {audit} audit entries, {security} security events older than {LOG_RETENTION_DAYS} days, {deliveries} processed webhook deliveries older than {DELIVERY_RETENTION_DAYS} days removed"
        ))
    })
    .await
    .map_err(|e| e.to_string())
}
