//! Doorbells: a background worker (intake, outbox dispatcher, media fetcher) waits on
//! one; whoever gave it work rings it after the commit. A clone rings the same bell.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Clone, Default)]
pub struct Doorbell {
    notify: Arc<Notify>,
}

impl Doorbell {
    /// There is work: wake the worker (a ring while it is busy is kept for its next wait).
    pub fn ring(&self) {
        self.notify.notify_one();
    }

    /// Waits for a ring, at most `max` (the tick that catches retries coming due).
    pub async fn wait(&self, max: Duration) {
        // Rung or timed out: either way the caller looks for work.
        tokio::time::timeout(max, self.notify.notified()).await.ok();
    }
}
