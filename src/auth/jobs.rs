//! Auth's scheduled work: expired sessions, invites and throttle entries go.

use super::repo;
use crate::store::Db;

/// The job `purge_expired_sessions`.
pub async fn purge_expired_sessions(db: &Db, now: i64, idle_secs: i64) -> Result<String, String> {
    db.write(move |c| {
        let sessions = repo::delete_expired_sessions(c, now, idle_secs)?;
        let invites = repo::delete_expired_invites(c, now)?;
        let throttle = repo::purge_throttle(c, now - 86_400)?;
        Ok(format!(
            "{sessions} sessions, {invites} invites, {throttle} throttle entries removed"
        ))
    })
    .await
    .map_err(|e| e.to_string())
}
