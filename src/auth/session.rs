//! Server-side sessions: a random 256-bit token in the cookie, only its SHA-256 in the
//! database; a new token at every privilege change (password step, MFA step).

use super::repo;
use crate::crypto;
use rusqlite::Connection;

/// A session waiting for the second factor lives this long.
pub const MFA_PENDING_SECS: i64 = 300;
/// Wrong codes allowed per pending sign-in before it must start over.
pub const MFA_MAX_FAILURES: i64 = 5;

pub struct NewSession {
    pub token: String,
    pub id: i64,
    /// A new known-device cookie to give the browser (first full sign-in from it).
    pub device: Option<String>,
}

/// Creates a session and returns its token (shown to the browser once, as the cookie).
pub fn create(
    conn: &Connection,
    user_id: i64,
    stage: &str,
    ip: &str,
    user_agent: &str,
    now: i64,
    absolute_secs: i64,
) -> rusqlite::Result<NewSession> {
    let token = crypto::random_token(32);
    let hash = crypto::sha256_hex(token.as_bytes());
    let expires = if stage == "mfa" {
        now + MFA_PENDING_SECS
    } else {
        now + absolute_secs
    };
    let id = repo::insert_session(conn, &hash, user_id, stage, ip, user_agent, now, expires)?;
    Ok(NewSession {
        token,
        id,
        device: None,
    })
}

/// Replaces a session by a new one with a new token (rotation); the old id stops working.
#[expect(
    clippy::too_many_arguments,
    reason = "the new session's columns, as `create` takes them"
)]
pub fn rotate(
    conn: &Connection,
    old_id: i64,
    user_id: i64,
    stage: &str,
    ip: &str,
    user_agent: &str,
    now: i64,
    absolute_secs: i64,
) -> rusqlite::Result<NewSession> {
    repo::delete_session(conn, old_id)?;
    create(conn, user_id, stage, ip, user_agent, now, absolute_secs)
}

/// "Chrome on Linux" from a user agent, for the sessions list.
pub fn describe_device(ua: &str) -> String {
    let browser = if ua.contains("Edg/") {
        "Edge"
    } else if ua.contains("OPR/") {
        "Opera"
    } else if ua.contains("Firefox/") {
        "Firefox"
    } else if ua.contains("Chrome/") || ua.contains("Chromium/") {
        "Chrome"
    } else if ua.contains("Safari/") {
        "Safari"
    } else if ua.is_empty() {
        "?"
    } else {
        "Other"
    };
    let os = if ua.contains("Android") {
        "Android"
    } else if ua.contains("iPhone") || ua.contains("iPad") {
        "iOS"
    } else if ua.contains("Windows") {
        "Windows"
    } else if ua.contains("Mac OS") {
        "macOS"
    } else if ua.contains("Linux") {
        "Linux"
    } else {
        "?"
    };
    format!("{browser} · {os}")
}
