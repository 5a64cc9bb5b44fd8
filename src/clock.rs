//! The one place that asks the operating system for the time.
//! Tests move the clock forward instead of sleeping (TOTP steps, timeouts, retention).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use time::OffsetDateTime;

/// Wall clock with an adjustable offset (always 0 in production).
#[derive(Clone, Default)]
pub struct Clock {
    offset_secs: Arc<AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + time::Duration::seconds(self.offset_secs.load(Ordering::Relaxed))
    }

    /// Unix seconds.
    pub fn unix(&self) -> i64 {
        self.now().unix_timestamp()
    }

    /// Moves the clock forward; for tests.
    pub fn advance(&self, secs: i64) {
        self.offset_secs.fetch_add(secs, Ordering::Relaxed);
    }
}

/// Formats unix seconds as `2026-11-24 18:30 UTC` (or in a zone when given).
pub fn format_unix(ts: i64, tz: Option<chrono_tz::Tz>) -> String {
    let Ok(dt) = OffsetDateTime::from_unix_timestamp(ts) else {
        return ts.to_string();
    };
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    match tz {
        Some(tz) => {
            use chrono::{TimeZone, Utc};
            match Utc.timestamp_opt(ts, 0).single() {
                Some(t) => t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string(),
                None => ts.to_string(),
            }
        }
        None => dt
            .format(&fmt)
            .map(|s| format!("{s} UTC"))
            .unwrap_or_else(|_| ts.to_string()),
    }
}
