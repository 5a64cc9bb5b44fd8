//! Sign-in logic: password step with throttling, the second factor (TOTP or a recovery
//! code) with replay protection, MFA enrolment, the login-event record; adding users.

use super::password::{self, Hasher};
use super::repo::{self, LoginOutcome};
use super::session::{self, MFA_MAX_FAILURES, NewSession};
use super::{Client, Role, User, normalize_email, totp, valid_email};
use crate::app::AppState;
use crate::audit::{self, Actor};
use crate::crypto;
use crate::error::{AppError, AppResult, FormErrors};
use crate::settings;
use crate::store::Db;
use crate::web::RequestCtx;

pub enum PasswordStep {
    /// Signed in (`stage` = full, or enrol when MFA must be set up first).
    SignedIn(NewSession),
    /// Password accepted; the second factor is next.
    NeedMfa(NewSession),
    /// Wrong e-mail or password: one answer for both.
    Invalid,
    /// Too many failures for this address from this client, or too many attempts from
    /// this client in a minute.
    Locked,
}

pub enum MfaStep {
    SignedIn(NewSession),
    Invalid,
    /// Too many wrong codes: sign in again.
    Restart,
}

fn absolute_secs(state: &AppState) -> i64 {
    state.config.session.absolute_hours * 3600
}

fn event(
    c: &rusqlite::Connection,
    now: i64,
    email: &str,
    user_id: Option<i64>,
    outcome: LoginOutcome,
    ctx: &RequestCtx,
) -> rusqlite::Result<()> {
    repo::insert_login_event(c, now, email, user_id, outcome, &ctx.ip, &ctx.user_agent)
}

/// Locks of one address from this many clients at once are a storm: someone is
/// guessing (or trying to keep the owner out) from many places.
pub const LOCKOUT_STORM_CLIENTS: i64 = 3;

/// Who is trying, for the lock: a browser that completed a sign-in for this user
/// (its device cookie) counts on its own, anything else by its IP address. So someone
/// who knows the owner's e-mail address locks out only themselves, and the owner's
/// own browser keeps working with the right password and code.
fn client_key(c: &rusqlite::Connection, user_id: Option<i64>, ctx: &RequestCtx) -> rusqlite::Result<Client> {
    if let (Some(token), Some(uid)) = (ctx.device.as_deref(), user_id) {
        if let Some(id) = repo::find_device(c, uid, &crypto::sha256_hex(token.as_bytes()))? {
            return Ok(Client::Device(id));
        }
    }
    Ok(Client::Ip(ctx.ip.clone()))
}

/// After a full sign-in: the device cookie to give a browser that has none yet (and
/// the known one's last use).
fn remember_device(
    c: &rusqlite::Connection,
    user_id: i64,
    client: &Client,
    now: i64,
) -> rusqlite::Result<Option<String>> {
    if let Client::Device(id) = client {
        repo::touch_device(c, *id, now)?;
        return Ok(None);
    }
    let token = crypto::random_token(32);
    repo::insert_device(c, user_id, &crypto::sha256_hex(token.as_bytes()), now)?;
    Ok(Some(token))
}

/// The moment an address becomes locked for `LOCKOUT_STORM_CLIENTS` clients, a
/// security line goes into the audit log (admins also see a notice on the dashboard).
fn note_lockout_storm(c: &rusqlite::Connection, email: &str, now: i64) -> rusqlite::Result<()> {
    let n = repo::count_locks(c, Some(email), now)?;
    if n == LOCKOUT_STORM_CLIENTS {
        tracing::warn!(clients = n, "sign-in lockout storm on one address");
        audit::record(
            c,
            &Actor::system(),
            "security.lockout_storm",
            &format!("login:{email}"),
            &format!("{n} clients locked"),
            now,
        )?;
    }
    Ok(())
}

/// The password step. `old_session` (a pre-existing session of this browser) is ended.
#[expect(
    clippy::too_many_lines,
    reason = "the sign-in steps in order: throttle, lookup, hash, lock, rehash, session"
)]
pub async fn sign_in(state: &AppState, ctx: &RequestCtx, email: &str, password: String) -> AppResult<PasswordStep> {
    let email = normalize_email(email);
    let now = state.now();
    let ctx2 = ctx.clone();

    let (e, ctx3) = (email.clone(), ctx.clone());
    let (locked_until, found, client) = state
        .db
        .read(move |c| {
            let found = repo::find_user_for_login(c, &e)?;
            let client = client_key(c, found.as_ref().map(|(u, _)| u.id), &ctx3)?;
            Ok((repo::locked_until(c, &e, &client)?, found, client))
        })
        .await?;
    // The per-minute budget is the client's: a browser that signed in as this user
    // before has its own, so others behind the same address cannot use it up.
    if state.login_limiter.check_key(&client).is_err() {
        let (e, uid) = (email.clone(), found.as_ref().map(|(u, _)| u.id));
        state
            .db
            .write(move |c| Ok(event(c, now, &e, uid, LoginOutcome::IpThrottled, &ctx2)?))
            .await?;
        state.metrics.login_failures.inc();
        return Ok(PasswordStep::Locked);
    }
    if locked_until > now {
        let e = email.clone();
        let uid = found.as_ref().map(|(u, _)| u.id);
        state
            .db
            .write(move |c| Ok(event(c, now, &e, uid, LoginOutcome::Locked, &ctx2)?))
            .await?;
        state.metrics.login_failures.inc();
        return Ok(PasswordStep::Locked);
    }

    let found_uid = found.as_ref().map(|(u, _)| u.id);
    let (user, hash) = match found {
        Some((u, h)) if u.active => (Some(u), h),
        _ => (None, None),
    };
    // Always hash, so an unknown address takes as long as a known one.
    let ok = state.hasher.verify(password.clone(), hash.clone()).await && user.is_some();
    let Some(user) = user.filter(|_| ok) else {
        let (max, lock) = (state.config.login.max_failures, state.config.login.lockout_minutes * 60);
        let (e, cl) = (email.clone(), client.clone());
        let uid = found_uid;
        let locked = state
            .db
            .write(move |c| {
                let locked = repo::record_failure(c, &e, &cl, now, max, lock)?;
                event(c, now, &e, uid, LoginOutcome::Failure, &ctx2)?;
                if locked.is_some() {
                    event(c, now, &e, uid, LoginOutcome::Lockout, &ctx2)?;
                    note_lockout_storm(c, &e, now)?;
                }
                Ok(locked)
            })
            .await?;
        state.metrics.login_failures.inc();
        return Ok(if locked.is_some() {
            PasswordStep::Locked
        } else {
            PasswordStep::Invalid
        });
    };

    let rehash = match &hash {
        Some(h) if state.hasher.needs_rehash(h) => Some(state.hasher.hash(password).await.map_err(AppError::internal)?),
        _ => None,
    };
    let abs = absolute_secs(state);
    let old_session = ctx.session.as_ref().map(|s| s.id);
    let step = state
        .db
        .write(move |c| {
            if let Some(h) = &rehash {
                repo::update_password(c, user.id, h, now)?;
            }
            if let Some(old) = old_session {
                repo::delete_session(c, old)?;
            }
            let policy = settings::mfa_policy(c)?;
            let stage = if user.mfa_enabled {
                "mfa"
            } else if policy.requires(user.role) {
                "enrol"
            } else {
                "full"
            };
            let mut s = session::create(c, user.id, stage, &ctx2.ip, &ctx2.user_agent, now, abs)?;
            repo::record_sign_in(c, user.id, now)?;
            // The failure count is wiped by a whole sign-in only: the right password
            // before a wrong code must not reset the count of wrong codes.
            if stage != "mfa" {
                repo::clear_throttle(c, &email, &client)?;
            }
            if stage == "full" {
                s.device = remember_device(c, user.id, &client, now)?;
            }
            if stage == "mfa" {
                event(c, now, &email, Some(user.id), LoginOutcome::PasswordOk, &ctx2)?;
                Ok(PasswordStep::NeedMfa(s))
            } else {
                event(c, now, &email, Some(user.id), LoginOutcome::Success, &ctx2)?;
                Ok(PasswordStep::SignedIn(s))
            }
        })
        .await?;
    Ok(step)
}

/// The second factor: a 6-digit TOTP code (each step usable once) or a recovery code.
#[expect(
    clippy::too_many_lines,
    reason = "throttle, verify, count failures, rotate: one transaction's story"
)]
pub async fn verify_mfa(state: &AppState, ctx: &RequestCtx, code: &str) -> AppResult<MfaStep> {
    enum Verdict {
        Ok(NewSession),
        Bad,
        Restart,
    }
    let Some(sess) = ctx.session.clone().filter(|s| s.stage == "mfa") else {
        return Err(AppError::Redirect("/login".into()));
    };
    let (ctx3, uid) = (ctx.clone(), sess.user.id);
    let client = state.db.read(move |c| Ok(client_key(c, Some(uid), &ctx3)?)).await?;
    // The same per-client budget as the password step (one budget for both).
    if state.login_limiter.check_key(&client).is_err() {
        let (now, ctx2, email, uid) = (state.now(), ctx.clone(), sess.user.email.clone(), sess.user.id);
        state
            .db
            .write(move |c| Ok(event(c, now, &email, Some(uid), LoginOutcome::IpThrottled, &ctx2)?))
            .await?;
        state.metrics.login_failures.inc();
        return Err(AppError::TooManyRequests);
    }
    let now = state.now();
    let user = sess.user.clone();
    let email = user.email.clone();
    let ctx2 = ctx.clone();
    let code = code.trim().to_string();
    let abs = absolute_secs(state);
    let (max, lock) = (state.config.login.max_failures, state.config.login.lockout_minutes * 60);

    let verdict = state
        .db
        .write(move |c| {
            if repo::locked_until(c, &email, &client)? > now {
                event(c, now, &email, Some(user.id), LoginOutcome::Locked, &ctx2)?;
                repo::delete_session(c, sess.id)?;
                return Ok(Verdict::Restart);
            }
            let Some(t) = repo::get_totp(c, user.id)? else {
                return Ok(Verdict::Restart);
            };
            let secret = t.secret.unwrap_or_default();
            let outcome = if totp::looks_like_recovery_code(&code) {
                if repo::consume_recovery_code(c, user.id, &totp::hash_recovery_code(&code))? {
                    Some(LoginOutcome::RecoveryCodeUsed)
                } else {
                    None
                }
            } else {
                match totp::matching_step(&secret, &code, now) {
                    Some(step) if repo::consume_totp_step(c, user.id, step)? => Some(LoginOutcome::MfaSuccess),
                    Some(_) => {
                        // A correct code whose step was already used: a replay.
                        event(c, now, &email, Some(user.id), LoginOutcome::MfaReplay, &ctx2)?;
                        None
                    }
                    None => None,
                }
            };
            match outcome {
                Some(o) => {
                    event(c, now, &email, Some(user.id), o, &ctx2)?;
                    repo::clear_throttle(c, &email, &client)?;
                    let mut s = session::rotate(c, sess.id, user.id, "full", &ctx2.ip, &ctx2.user_agent, now, abs)?;
                    s.device = remember_device(c, user.id, &client, now)?;
                    if o == LoginOutcome::RecoveryCodeUsed {
                        let left = repo::count_recovery_codes(c, user.id)?;
                        audit::record(
                            c,
                            &Actor::user(&user, &ctx2.ip),
                            "mfa.recovery_code_used",
                            &format!("user:{}", user.id),
                            &format!("{left} left"),
                            now,
                        )?;
                    }
                    Ok(Verdict::Ok(s))
                }
                None => {
                    event(c, now, &email, Some(user.id), LoginOutcome::MfaFailure, &ctx2)?;
                    // Wrong codes count against the account too, and re-entering the
                    // password does not reset that count.
                    let locked = repo::record_failure(c, &email, &client, now, max, lock)?;
                    let failures = repo::increment_mfa_failures(c, sess.id)?;
                    if locked.is_some() || failures >= MFA_MAX_FAILURES {
                        if locked.is_some() {
                            event(c, now, &email, Some(user.id), LoginOutcome::Lockout, &ctx2)?;
                            note_lockout_storm(c, &email, now)?;
                        }
                        repo::delete_session(c, sess.id)?;
                        Ok(Verdict::Restart)
                    } else {
                        Ok(Verdict::Bad)
                    }
                }
            }
        })
        .await?;
    Ok(match verdict {
        Verdict::Ok(s) => MfaStep::SignedIn(s),
        Verdict::Bad => {
            state.metrics.login_failures.inc();
            MfaStep::Invalid
        }
        Verdict::Restart => {
            state.metrics.login_failures.inc();
            MfaStep::Restart
        }
    })
}

/// A new (unconfirmed) TOTP secret for the user; replaces an earlier unconfirmed one.
pub async fn start_enrolment(state: &AppState, user: &User) -> AppResult<String> {
    let secret = totp::new_secret();
    let (id, now, s) = (user.id, state.now(), secret.clone());
    let changed = state
        .db
        .write(move |c| Ok(repo::set_pending_totp(c, id, &s, now)?))
        .await?;
    if changed == 0 {
        return Err(AppError::BadRequest("mfa.already_enabled"));
    }
    Ok(secret)
}

/// Confirms enrolment with a code; returns the recovery codes (shown once) and the new
/// session (the session is rotated, and an obligatory-enrolment session becomes full).
pub async fn confirm_enrolment(
    state: &AppState,
    ctx: &RequestCtx,
    user: &User,
    session_id: i64,
    code: &str,
) -> AppResult<Option<(Vec<String>, NewSession)>> {
    let now = state.now();
    let (codes, hashes) = totp::new_recovery_codes_hashed();
    let (user, ctx2, code) = (user.clone(), ctx.clone(), code.trim().to_string());
    let abs = absolute_secs(state);
    let done = state
        .db
        .write(move |c| {
            let Some(t) = repo::get_totp(c, user.id)? else {
                return Ok(None);
            };
            let (Some(secret), false) = (t.secret, t.enabled) else {
                return Ok(None);
            };
            let Some(step) = totp::matching_step(&secret, &code, now) else {
                return Ok(None);
            };
            // Consume the step, so the set-up code cannot be replayed at the next sign-in.
            if !repo::consume_totp_step(c, user.id, step)? {
                return Ok(None);
            }
            repo::enable_totp(c, user.id, now)?;
            repo::replace_recovery_codes(c, user.id, &hashes)?;
            let actor = Actor::user(&user, &ctx2.ip);
            audit::record(c, &actor, "mfa.enable", &format!("user:{}", user.id), "", now)?;
            // Other sessions were signed in with less; they end (ASVS 3.3.3).
            repo::delete_sessions_of_user(c, user.id, Some(session_id))?;
            let s = session::rotate(c, session_id, user.id, "full", &ctx2.ip, &ctx2.user_agent, now, abs)?;
            Ok(Some(s))
        })
        .await?;
    Ok(done.map(|s| (codes, s)))
}

/// Replaces the recovery codes after re-checking a TOTP code.
pub async fn regenerate_recovery_codes(
    state: &AppState,
    ctx: &RequestCtx,
    user: &User,
    code: &str,
) -> AppResult<Option<Vec<String>>> {
    let now = state.now();
    let (codes, hashes) = totp::new_recovery_codes_hashed();
    let (user, ctx2, code) = (user.clone(), ctx.clone(), code.trim().to_string());
    let ok = state
        .db
        .write(move |c| {
            let Some(t) = repo::get_totp(c, user.id)? else {
                return Ok(false);
            };
            let Some(secret) = t.secret.filter(|_| t.enabled) else {
                return Ok(false);
            };
            let valid = match totp::matching_step(&secret, &code, now) {
                Some(step) => repo::consume_totp_step(c, user.id, step)?,
                None => false,
            };
            if !valid {
                event(c, now, &user.email, Some(user.id), LoginOutcome::MfaFailure, &ctx2)?;
                return Ok(false);
            }
            repo::replace_recovery_codes(c, user.id, &hashes)?;
            let actor = Actor::user(&user, &ctx2.ip);
            audit::record(
                c,
                &actor,
                "mfa.recovery_codes_regenerated",
                &format!("user:{}", user.id),
                "",
                now,
            )?;
            Ok(true)
        })
        .await?;
    Ok(ok.then_some(codes))
}

/// Removes a user's MFA (admin action or the CLI); every session of theirs ends.
pub fn reset_mfa(c: &rusqlite::Connection, actor: &Actor, user_id: i64, now: i64) -> AppResult<()> {
    if repo::find_user(c, user_id)?.is_none() {
        return Err(AppError::NotFound);
    }
    repo::reset_mfa(c, user_id, now)?;
    repo::delete_sessions_of_user(c, user_id, None)?;
    audit::record(c, actor, "user.mfa_reset", &format!("user:{user_id}"), "", now)?;
    Ok(())
}

/// An admin lifts every sign-in lock of a user; the audit line says how many.
pub fn unlock(c: &rusqlite::Connection, actor: &Actor, user_id: i64, now: i64) -> AppResult<()> {
    let user = repo::find_user(c, user_id)?.ok_or(AppError::NotFound)?;
    let n = repo::clear_all_throttles(c, &user.email)?;
    audit::record(
        c,
        actor,
        "user.unlock",
        &format!("user:{user_id}"),
        &format!("{n} clients"),
        now,
    )?;
    Ok(())
}

/// Used by the CLI: reset a user's MFA by e-mail.
pub fn reset_mfa_by_email(c: &rusqlite::Connection, email: &str, now: i64) -> AppResult<User> {
    let user = repo::find_user_by_email(c, &normalize_email(email))?.ok_or(AppError::NotFound)?;
    reset_mfa(c, &Actor::cli(), user.id, now)?;
    Ok(user)
}

/// The way back for someone who forgot the password (the sole owner included): a new
/// one-time link to set a password, as an invitation is; their sessions end now, the old
/// password works until the link is used. MFA stays (`reset-mfa` is its own command).
/// Returns the user and the link's token (shown once, on the server's console).
pub fn reset_password_by_email(c: &rusqlite::Connection, email: &str, now: i64) -> AppResult<(User, String)> {
    let user = repo::find_user_by_email(c, &normalize_email(email))?.ok_or(AppError::NotFound)?;
    if !user.active {
        return Err(AppError::BadRequest("users.deactivated"));
    }
    let token = crypto::random_token(32);
    repo::insert_invite(c, &crypto::sha256_hex(token.as_bytes()), user.id, now + INVITE_SECS)?;
    repo::delete_sessions_of_user(c, user.id, None)?;
    audit::record(
        c,
        &Actor::cli(),
        "user.password_reset_link",
        &format!("user:{}", user.id),
        "",
        now,
    )?;
    Ok((user, token))
}

/// Invitation links stay valid this long.
pub const INVITE_SECS: i64 = 7 * 86_400;

/// A new team member as an admin's form gives it: the e-mail normalized, the name trimmed.
pub struct NewUser {
    pub email: String,
    pub name: String,
    pub role: String,
    /// `invite` (a one-time link to set a password) or `password` (an initial one).
    pub method: String,
    pub password: String,
}

impl NewUser {
    pub fn new(email: &str, name: &str, role: &str, method: &str, password: &str) -> NewUser {
        NewUser {
            email: normalize_email(email),
            name: name.trim().to_string(),
            role: role.to_string(),
            method: method.to_string(),
            password: password.to_string(),
        }
    }
}

pub enum NewUserOutcome {
    /// Created with the initial password.
    Created(i64),
    /// Created without a password; the token of the invitation link, shown once.
    Invited { id: i64, token: String },
    /// What is wrong with the form, field by field.
    Invalid(FormErrors),
}

/// Adds a user: checks the form (a free e-mail, a name, a role, the password policy),
/// hashes the initial password or makes an invitation, and writes the audit line with
/// the row.
pub async fn create_user(db: &Db, hasher: &Hasher, actor: &Actor, new: NewUser, now: i64) -> AppResult<NewUserOutcome> {
    let mut errors = FormErrors::default();
    if !valid_email(&new.email) {
        errors.add("email", "form.email_invalid");
    }
    if new.name.is_empty() || new.name.chars().count() > 100 {
        errors.add("name", "form.name_required");
    }
    let role = Role::parse(&new.role);
    if role.is_none() {
        errors.add("role", "form.invalid_choice");
    }
    let with_password = new.method == "password";
    if !with_password && new.method != "invite" {
        errors.add("method", "form.invalid_choice");
    }
    if with_password {
        if let Some(p) = password::policy_problem(&new.password, &new.email) {
            errors.add("password", p);
        }
    }
    let email = new.email.clone();
    if errors.is_empty() && db.read(move |c| Ok(repo::email_taken(c, &email)?)).await? {
        errors.add("email", "form.email_taken");
    }
    let (Some(role), true) = (role, errors.is_empty()) else {
        return Ok(NewUserOutcome::Invalid(errors));
    };
    let hash = if with_password {
        Some(hasher.hash(new.password.clone()).await.map_err(AppError::internal)?)
    } else {
        None
    };
    let invite_token = (!with_password).then(|| crypto::random_token(32));
    let (actor, tok) = (actor.clone(), invite_token.clone());
    let id = db
        .write(move |c| {
            let id = repo::insert_user(c, &new.email, &new.name, role, hash.as_deref(), None, now)?;
            if let Some(t) = &tok {
                repo::insert_invite(c, &crypto::sha256_hex(t.as_bytes()), id, now + INVITE_SECS)?;
            }
            let how = if tok.is_some() { "invite" } else { "initial password" };
            audit::record(
                c,
                &actor,
                "user.create",
                &format!("user:{id} {}", new.email),
                &format!("role={}, {how}", role.as_str()),
                now,
            )?;
            Ok(id)
        })
        .await?;
    Ok(match invite_token {
        Some(token) => NewUserOutcome::Invited { id, token },
        None => NewUserOutcome::Created(id),
    })
}

/// Ends the session behind this request.
pub async fn sign_out(state: &AppState, ctx: &RequestCtx) -> AppResult<()> {
    let Some(s) = ctx.session.clone() else {
        return Ok(());
    };
    let (now, ctx2) = (state.now(), ctx.clone());
    Ok(state
        .db
        .write(move |c| {
            repo::delete_session(c, s.id)?;
            event(c, now, &s.user.email, Some(s.user.id), LoginOutcome::Logout, &ctx2)?;
            Ok(())
        })
        .await?)
}
