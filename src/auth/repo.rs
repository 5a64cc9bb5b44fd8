//! SQL for users, sessions, MFA secrets, recovery codes, invites, throttling and login events.

use super::{Client, Role, User};
use rusqlite::{Connection, OptionalExtension, Row, params};

const USER_COLS: &str =
    "id, email, name, role, active, locale, totp_enabled, created_at, last_login_at, password_hash IS NULL";

fn user_from_row(r: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        email: r.get(1)?,
        name: r.get(2)?,
        role: r.get(3)?,
        active: r.get(4)?,
        locale: r.get(5)?,
        mfa_enabled: r.get(6)?,
        created_at: r.get(7)?,
        last_login_at: r.get(8)?,
        invited: r.get(9)?,
    })
}

pub fn insert_user(
    conn: &Connection,
    email: &str,
    name: &str,
    role: Role,
    password_hash: Option<&str>,
    locale: Option<&str>,
    now: i64,
) -> rusqlite::Result<i64> {
    conn.execute(
        "INSERT INTO users (email, name, role, password_hash, locale, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        params![email, name, role, password_hash, locale, now],
    )?;
    Ok(conn.last_insert_rowid())
}

pub fn email_taken(conn: &Connection, email: &str) -> rusqlite::Result<bool> {
    conn.query_row("SELECT count(*) FROM users WHERE email = ?1", [email], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n > 0)
}

/// The user and their password hash, for sign-in.
pub fn find_user_for_login(conn: &Connection, email: &str) -> rusqlite::Result<Option<(User, Option<String>)>> {
    conn.query_row(
        &format!("SELECT {USER_COLS}, password_hash FROM users WHERE email = ?1"),
        [email],
        |r| Ok((user_from_row(r)?, r.get(10)?)),
    )
    .optional()
}

/// Who invited `user_id` (or sent the latest password link): the name of the admin in
/// the audit line, `None` when it was the command line or nobody.
pub fn find_inviter(conn: &Connection, user_id: i64) -> rusqlite::Result<Option<String>> {
    let target = format!("user:{user_id}");
    conn.query_row(
        "SELECT u.name FROM audit_log a JOIN users u ON u.id = a.actor_id
         WHERE a.action IN ('user.create', 'user.invite_link') AND (a.target = ?1 OR a.target LIKE ?1 || ' %')
         ORDER BY a.id DESC LIMIT 1",
        [target],
        |r| r.get(0),
    )
    .optional()
}

pub fn find_user(conn: &Connection, id: i64) -> rusqlite::Result<Option<User>> {
    conn.query_row(
        &format!("SELECT {USER_COLS} FROM users WHERE id = ?1"),
        [id],
        user_from_row,
    )
    .optional()
}

pub fn find_user_by_email(conn: &Connection, email: &str) -> rusqlite::Result<Option<User>> {
    conn.query_row(
        &format!("SELECT {USER_COLS} FROM users WHERE email = ?1"),
        [email],
        user_from_row,
    )
    .optional()
}

pub fn list_users(conn: &Connection) -> rusqlite::Result<Vec<User>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {USER_COLS} FROM users ORDER BY active DESC, name COLLATE NOCASE"
    ))?;
    let rows = stmt.query_map([], user_from_row)?;
    rows.collect()
}

pub fn count_active_admins(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT count(*) FROM users WHERE role = 'admin' AND active = 1",
        [],
        |r| r.get(0),
    )
}

pub fn count_users(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))
}

/// (users, users with MFA) among active users, for the self-check.
pub fn mfa_coverage(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    conn.query_row(
        "SELECT count(*), coalesce(sum(totp_enabled), 0) FROM users WHERE active = 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// (active users of `role`, of them with MFA): the evidence page's admin coverage.
pub fn mfa_coverage_of_role(conn: &Connection, role: Role) -> rusqlite::Result<(i64, i64)> {
    conn.query_row(
        "SELECT count(*), coalesce(sum(totp_enabled), 0) FROM users WHERE active = 1 AND role = ?1",
        params![role],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

pub fn record_sign_in(conn: &Connection, id: i64, now: i64) -> rusqlite::Result<usize> {
    conn.execute("UPDATE users SET last_login_at = ?2 WHERE id = ?1", params![id, now])
}

pub fn update_role(conn: &Connection, id: i64, role: Role, now: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE users SET role = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, role, now],
    )
}

pub fn update_active(conn: &Connection, id: i64, active: bool, now: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE users SET active = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, active, now],
    )
}

pub fn update_password(conn: &Connection, id: i64, hash: &str, now: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, hash, now],
    )
}

pub fn update_profile(
    conn: &Connection,
    id: i64,
    name: &str,
    locale: Option<&str>,
    now: i64,
) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE users SET name = ?2, locale = ?3, updated_at = ?4 WHERE id = ?1",
        params![id, name, locale, now],
    )
}

// ---- TOTP ------------------------------------------------------------------

pub struct TotpState {
    pub secret: Option<String>,
    pub enabled: bool,
    pub last_step: i64,
}

pub fn get_totp(conn: &Connection, user_id: i64) -> rusqlite::Result<Option<TotpState>> {
    conn.query_row(
        "SELECT totp_secret, totp_enabled, totp_last_step FROM users WHERE id = ?1",
        [user_id],
        |r| {
            Ok(TotpState {
                secret: r.get(0)?,
                enabled: r.get(1)?,
                last_step: r.get(2)?,
            })
        },
    )
    .optional()
}

/// Stores a not-yet-confirmed secret (replacing any earlier unconfirmed one).
pub fn set_pending_totp(conn: &Connection, user_id: i64, secret: &str, now: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE users SET totp_secret = ?2, updated_at = ?3 WHERE id = ?1 AND totp_enabled = 0",
        params![user_id, secret, now],
    )
}

pub fn enable_totp(conn: &Connection, user_id: i64, now: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE users SET totp_enabled = 1, updated_at = ?2 WHERE id = ?1 AND totp_secret IS NOT NULL",
        params![user_id, now],
    )
}

/// Records that `step` was used; false when it (or a later step) was used before.
/// One conditional UPDATE, so two concurrent requests with the same code cannot both pass.
pub fn consume_totp_step(conn: &Connection, user_id: i64, step: i64) -> rusqlite::Result<bool> {
    let n = conn.execute(
        "UPDATE users SET totp_last_step = ?2 WHERE id = ?1 AND totp_last_step < ?2",
        params![user_id, step],
    )?;
    Ok(n == 1)
}

pub fn reset_mfa(conn: &Connection, user_id: i64, now: i64) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [user_id])?;
    conn.execute(
        "UPDATE users SET totp_secret = NULL, totp_enabled = 0, totp_last_step = 0, updated_at = ?2 WHERE id = ?1",
        params![user_id, now],
    )
}

pub fn replace_recovery_codes(conn: &Connection, user_id: i64, hashes: &[String]) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [user_id])?;
    let mut stmt = conn.prepare("INSERT INTO recovery_codes (user_id, code_hash) VALUES (?1, ?2)")?;
    for h in hashes {
        stmt.execute(params![user_id, h])?;
    }
    Ok(())
}

/// Deletes the code if it exists; true when it did (single use).
pub fn consume_recovery_code(conn: &Connection, user_id: i64, hash: &str) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "DELETE FROM recovery_codes WHERE user_id = ?1 AND code_hash = ?2",
        params![user_id, hash],
    )? == 1)
}

pub fn count_recovery_codes(conn: &Connection, user_id: i64) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT count(*) FROM recovery_codes WHERE user_id = ?1",
        [user_id],
        |r| r.get(0),
    )
}

// ---- invites ------------------------------------------------------------------

pub fn delete_expired_invites(conn: &Connection, now: i64) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM invites WHERE expires_at <= ?1", [now])
}

pub fn insert_invite(conn: &Connection, token_hash: &str, user_id: i64, expires_at: i64) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM invites WHERE user_id = ?1", [user_id])?;
    conn.execute(
        "INSERT INTO invites (token_hash, user_id, expires_at) VALUES (?1, ?2, ?3)",
        params![token_hash, user_id, expires_at],
    )?;
    Ok(())
}

/// The invited user, if the invite exists and is still valid.
pub fn find_invite(conn: &Connection, token_hash: &str, now: i64) -> rusqlite::Result<Option<i64>> {
    conn.query_row(
        "SELECT user_id FROM invites WHERE token_hash = ?1 AND expires_at > ?2",
        params![token_hash, now],
        |r| r.get(0),
    )
    .optional()
}

pub fn delete_invite(conn: &Connection, token_hash: &str) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM invites WHERE token_hash = ?1", [token_hash])
}

// ---- sessions -----------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: i64,
    pub user_id: i64,
    pub stage: String,
    pub mfa_failures: i64,
    pub ip: String,
    pub user_agent: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

const SESSION_COLS: &str = "id, user_id, stage, mfa_failures, ip, user_agent, created_at, last_seen_at, expires_at";

fn session_from_row(r: &Row<'_>) -> rusqlite::Result<SessionRow> {
    Ok(SessionRow {
        id: r.get(0)?,
        user_id: r.get(1)?,
        stage: r.get(2)?,
        mfa_failures: r.get(3)?,
        ip: r.get(4)?,
        user_agent: r.get(5)?,
        created_at: r.get(6)?,
        last_seen_at: r.get(7)?,
        expires_at: r.get(8)?,
    })
}

#[expect(clippy::too_many_arguments, reason = "one argument per column of the row")]
pub fn insert_session(
    conn: &Connection,
    token_hash: &str,
    user_id: i64,
    stage: &str,
    ip: &str,
    user_agent: &str,
    now: i64,
    expires_at: i64,
) -> rusqlite::Result<i64> {
    conn.execute(
        "INSERT INTO sessions (token_hash, user_id, stage, ip, user_agent, created_at, last_seen_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)",
        params![token_hash, user_id, stage, ip, user_agent, now, expires_at],
    )?;
    Ok(conn.last_insert_rowid())
}

pub fn find_session(conn: &Connection, token_hash: &str) -> rusqlite::Result<Option<SessionRow>> {
    conn.query_row(
        &format!("SELECT {SESSION_COLS} FROM sessions WHERE token_hash = ?1"),
        [token_hash],
        session_from_row,
    )
    .optional()
}

pub fn touch_session(conn: &Connection, id: i64, now: i64, ip: &str) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE sessions SET last_seen_at = ?2, ip = ?3 WHERE id = ?1",
        params![id, now, ip],
    )
}

pub fn increment_mfa_failures(conn: &Connection, id: i64) -> rusqlite::Result<i64> {
    conn.query_row(
        "UPDATE sessions SET mfa_failures = mfa_failures + 1 WHERE id = ?1 RETURNING mfa_failures",
        [id],
        |r| r.get(0),
    )
}

pub fn delete_session(conn: &Connection, id: i64) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM sessions WHERE id = ?1", [id])
}

/// Deletes a session only if it belongs to `user_id` (or to anyone when `None`).
pub fn delete_session_of(conn: &Connection, id: i64, user_id: Option<i64>) -> rusqlite::Result<usize> {
    match user_id {
        Some(u) => conn.execute("DELETE FROM sessions WHERE id = ?1 AND user_id = ?2", params![id, u]),
        None => delete_session(conn, id),
    }
}

pub fn delete_sessions_of_user(conn: &Connection, user_id: i64, except: Option<i64>) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM sessions WHERE user_id = ?1 AND id IS NOT ?2",
        params![user_id, except],
    )
}

/// A session with the name of its user, for the sessions pages.
pub struct SessionListItem {
    pub session: SessionRow,
    pub user_name: String,
    pub user_email: String,
}

pub fn list_sessions(
    conn: &Connection,
    user_id: Option<i64>,
    now: i64,
    idle_secs: i64,
) -> rusqlite::Result<Vec<SessionListItem>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {}, u.name, u.email FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE (?1 IS NULL OR s.user_id = ?1) AND s.expires_at > ?2 AND s.last_seen_at > ?3
         ORDER BY s.last_seen_at DESC",
        SESSION_COLS
            .split(", ")
            .map(|c| format!("s.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))?;
    let rows = stmt.query_map(params![user_id, now, now - idle_secs], |r| {
        Ok(SessionListItem {
            session: session_from_row(r)?,
            user_name: r.get(9)?,
            user_email: r.get(10)?,
        })
    })?;
    rows.collect()
}

/// Removes sessions past their absolute expiry or idle for longer than `idle_secs`.
pub fn delete_expired_sessions(conn: &Connection, now: i64, idle_secs: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM sessions WHERE expires_at <= ?1 OR last_seen_at <= ?2",
        params![now, now - idle_secs],
    )
}

// ---- throttling -----------------------------------------------------------------

/// Seconds-since-epoch until which the address is locked for this client (0 = not).
pub fn locked_until(conn: &Connection, email: &str, client: &Client) -> rusqlite::Result<i64> {
    Ok(conn
        .query_row(
            "SELECT locked_until FROM login_throttle WHERE email = ?1 AND client = ?2",
            params![email, client],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

/// Counts one failure of `client` for the address; every `max` failures lock that pair
/// for `lock_secs`, doubling with each lock (capped at a day). Returns the new lock end
/// when this failure locked it. Other clients of the address are not affected.
pub fn record_failure(
    conn: &Connection,
    email: &str,
    client: &Client,
    now: i64,
    max: i64,
    lock_secs: i64,
) -> rusqlite::Result<Option<i64>> {
    let failures: i64 = conn.query_row(
        "INSERT INTO login_throttle (email, client, failures, updated_at) VALUES (?1, ?2, 1, ?3)
         ON CONFLICT(email, client) DO UPDATE SET failures = failures + 1, updated_at = ?3
         RETURNING failures",
        params![email, client, now],
        |r| r.get(0),
    )?;
    if failures % max != 0 {
        return Ok(None);
    }
    let exponent = u32::try_from((failures / max - 1).clamp(0, 16)).unwrap_or(16);
    let secs = lock_secs.saturating_mul(1i64 << exponent).min(86_400);
    let until = now + secs;
    conn.execute(
        "UPDATE login_throttle SET locked_until = ?3 WHERE email = ?1 AND client = ?2",
        params![email, client, until],
    )?;
    Ok(Some(until))
}

/// A successful sign-in clears its own client's count (not the others').
pub fn clear_throttle(conn: &Connection, email: &str, client: &Client) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM login_throttle WHERE email = ?1 AND client = ?2",
        params![email, client],
    )
}

/// An admin's Unlock: every client of the address.
pub fn clear_all_throttles(conn: &Connection, email: &str) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM login_throttle WHERE email = ?1", [email])
}

/// A lock in force: the client, its failures and the lock's end.
#[derive(Debug, Clone)]
pub struct Lock {
    pub client: Client,
    pub failures: i64,
    pub locked_until: i64,
}

pub fn list_locks(conn: &Connection, email: &str, now: i64) -> rusqlite::Result<Vec<Lock>> {
    let mut st = conn.prepare(
        "SELECT client, failures, locked_until FROM login_throttle
         WHERE email = ?1 AND locked_until > ?2 ORDER BY locked_until DESC",
    )?;
    let rows = st.query_map(params![email, now], |r| {
        Ok(Lock {
            client: r.get(0)?,
            failures: r.get(1)?,
            locked_until: r.get(2)?,
        })
    })?;
    rows.collect()
}

/// Clients locked right now for one address (`Some`) or for all of them.
pub fn count_locks(conn: &Connection, email: Option<&str>, now: i64) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT count(*) FROM login_throttle WHERE locked_until > ?1 AND (?2 IS NULL OR email = ?2)",
        params![now, email],
        |r| r.get(0),
    )
}

/// The device behind a cookie, when it belongs to this user.
pub fn find_device(conn: &Connection, user_id: i64, token_hash: &str) -> rusqlite::Result<Option<i64>> {
    conn.query_row(
        "SELECT id FROM known_devices WHERE user_id = ?1 AND token_hash = ?2",
        params![user_id, token_hash],
        |r| r.get(0),
    )
    .optional()
}

pub fn insert_device(conn: &Connection, user_id: i64, token_hash: &str, now: i64) -> rusqlite::Result<i64> {
    conn.execute(
        "INSERT INTO known_devices (user_id, token_hash, created_at, last_used_at) VALUES (?1, ?2, ?3, ?3)",
        params![user_id, token_hash, now],
    )?;
    Ok(conn.last_insert_rowid())
}

pub fn touch_device(conn: &Connection, id: i64, now: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE known_devices SET last_used_at = ?2 WHERE id = ?1",
        params![id, now],
    )
}

pub fn purge_throttle(conn: &Connection, before: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM login_throttle WHERE updated_at < ?1 AND locked_until < ?1",
        [before],
    )
}

// ---- login events -----------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOutcome {
    Success,
    PasswordOk,
    Failure,
    MfaSuccess,
    MfaFailure,
    MfaReplay,
    RecoveryCodeUsed,
    Lockout,
    Locked,
    IpThrottled,
    Logout,
}

impl LoginOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            LoginOutcome::Success => "success",
            LoginOutcome::PasswordOk => "password_ok",
            LoginOutcome::Failure => "failure",
            LoginOutcome::MfaSuccess => "mfa_success",
            LoginOutcome::MfaFailure => "mfa_failure",
            LoginOutcome::MfaReplay => "mfa_replay",
            LoginOutcome::RecoveryCodeUsed => "recovery_code_used",
            LoginOutcome::Lockout => "lockout",
            LoginOutcome::Locked => "locked",
            LoginOutcome::IpThrottled => "ip_throttled",
            LoginOutcome::Logout => "logout",
        }
    }

    pub const ALL: [LoginOutcome; 11] = [
        LoginOutcome::Success,
        LoginOutcome::PasswordOk,
        LoginOutcome::Failure,
        LoginOutcome::MfaSuccess,
        LoginOutcome::MfaFailure,
        LoginOutcome::MfaReplay,
        LoginOutcome::RecoveryCodeUsed,
        LoginOutcome::Lockout,
        LoginOutcome::Locked,
        LoginOutcome::IpThrottled,
        LoginOutcome::Logout,
    ];
}

pub struct LoginEvent {
    pub at: i64,
    pub email: String,
    pub user_id: Option<i64>,
    pub outcome: String,
    pub ip: String,
    pub user_agent: String,
}

pub fn insert_login_event(
    conn: &Connection,
    at: i64,
    email: &str,
    user_id: Option<i64>,
    outcome: LoginOutcome,
    ip: &str,
    user_agent: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO login_events (at, email, user_id, outcome, ip, user_agent) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![at, email, user_id, outcome.as_str(), ip, user_agent],
    )?;
    Ok(())
}

pub fn list_login_events(
    conn: &Connection,
    outcome: Option<&str>,
    email: Option<&str>,
    limit: i64,
) -> rusqlite::Result<Vec<LoginEvent>> {
    let mut stmt = conn.prepare(
        "SELECT at, email, user_id, outcome, ip, user_agent FROM login_events
         WHERE (?1 IS NULL OR outcome = ?1) AND (?2 IS NULL OR email LIKE '%' || ?2 || '%')
         ORDER BY id DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![outcome, email, limit], |r| {
        Ok(LoginEvent {
            at: r.get(0)?,
            email: r.get(1)?,
            user_id: r.get(2)?,
            outcome: r.get(3)?,
            ip: r.get(4)?,
            user_agent: r.get(5)?,
        })
    })?;
    rows.collect()
}

pub fn count_login_failures_since(conn: &Connection, since: i64) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT count(*) FROM login_events WHERE at >= ?1 AND outcome IN ('failure', 'mfa_failure', 'mfa_replay', 'lockout')",
        [since],
        |r| r.get(0),
    )
}

pub fn purge_login_events(conn: &Connection, before: i64) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM login_events WHERE at < ?1", [before])
}

/// A team member conversations can be assigned to, and whether they take new ones now.
#[derive(Debug, Clone)]
pub struct Agent {
    pub id: i64,
    pub name: String,
    pub available: bool,
}

/// Active users conversations can be assigned to.
pub fn agents(c: &Connection) -> rusqlite::Result<Vec<Agent>> {
    let mut stmt = c.prepare_cached("SELECT id, name, available FROM users WHERE active = 1 ORDER BY name")?;
    let rows = stmt.query_map([], |r| {
        Ok(Agent {
            id: r.get(0)?,
            name: r.get(1)?,
            available: r.get(2)?,
        })
    })?;
    rows.collect()
}

/// Available (takes round-robin conversations) or away.
pub fn set_available(c: &Connection, user_id: i64, available: bool) -> rusqlite::Result<usize> {
    c.execute(
        "UPDATE users SET available = ?2 WHERE id = ?1",
        params![user_id, available],
    )
}

pub fn is_available(c: &Connection, user_id: i64) -> rusqlite::Result<bool> {
    c.query_row("SELECT available FROM users WHERE id = ?1", [user_id], |r| r.get(0))
        .optional()
        .map(|v| v.unwrap_or(false))
}
