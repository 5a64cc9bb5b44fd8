//! Team management for admins: users (create with invite link or initial password, role,
//! deactivate, MFA reset), everyone's sessions, login activity, and the MFA policy.

use super::service::{NewUser, NewUserOutcome};
use super::views::{SessionView, SessionsPage, session_views};
use super::{Client, Role, User, repo, service};
use crate::app::AppState;
use crate::audit;
use crate::crypto;
use crate::error::{AppError, AppResult};
use crate::settings::{self, MfaPolicy};
use crate::web::{Admin, Authed, FormErrors, RequestCtx, invalid_page, ok_page, see_other_flash};
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/admin/users")
            .route(web::get().to(get_users))
            .route(web::post().to(post_users)),
    )
    .service(web::resource("/admin/users/{id}").route(web::get().to(get_user)))
    .service(web::resource("/admin/users/{id}/role").route(web::post().to(post_role)))
    .service(web::resource("/admin/users/{id}/active").route(web::post().to(post_active)))
    .service(web::resource("/admin/users/{id}/reset-mfa").route(web::post().to(post_reset_mfa)))
    .service(web::resource("/admin/users/{id}/invite").route(web::post().to(post_invite_link)))
    .service(web::resource("/admin/users/{id}/unlock").route(web::post().to(post_unlock)))
    .service(web::resource("/admin/sessions").route(web::get().to(get_all_sessions)))
    .service(web::resource("/admin/sessions/{id}/revoke").route(web::post().to(post_revoke_any)))
    .service(web::resource("/admin/logins").route(web::get().to(get_logins)))
    .service(
        web::resource("/admin/security")
            .route(web::get().to(get_security))
            .route(web::post().to(post_security)),
    );
}

fn roles() -> Vec<&'static str> {
    Role::ALL.iter().map(|r| r.as_str()).collect()
}

// ---- users ------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    ctx: RequestCtx,
    users: Vec<User>,
    form: NewUserForm,
    errors: FormErrors,
    /// After creating with an invitation: the link, shown once.
    invite_url: Option<String>,
    roles: Vec<&'static str>,
}

#[derive(Deserialize, Default, Clone)]
pub struct NewUserForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    /// `invite` or `password`.
    #[serde(default)]
    method: String,
    #[serde(default)]
    password: String,
}

async fn list_users(state: &AppState) -> AppResult<Vec<User>> {
    Ok(state.db.read(|c| Ok(repo::list_users(c)?)).await?)
}

/// The team page with an empty "add" form (and, right after an invitation, its link).
async fn users_page(state: &AppState, ctx: RequestCtx, invite_url: Option<String>) -> AppResult<HttpResponse> {
    let users = list_users(state).await?;
    let form = NewUserForm {
        role: "agent".into(),
        method: "invite".into(),
        ..Default::default()
    };
    ok_page(&UsersPage {
        ctx,
        users,
        form,
        errors: FormErrors::default(),
        invite_url,
        roles: roles(),
    })
}

async fn get_users(state: web::Data<AppState>, Admin(a): Admin) -> AppResult<HttpResponse> {
    users_page(&state, a.ctx, None).await
}

async fn post_users(
    state: web::Data<AppState>,
    Admin(a): Admin,
    form: web::Form<NewUserForm>,
) -> AppResult<HttpResponse> {
    let mut form = form.into_inner();
    let new = NewUser::new(&form.email, &form.name, &form.role, &form.method, &form.password);
    (form.email, form.name) = (new.email.clone(), new.name.clone());
    match service::create_user(&state.db, &state.hasher, &a.actor(), new, state.now()).await? {
        NewUserOutcome::Invalid(errors) => {
            let users = list_users(&state).await?;
            form.password.clear();
            invalid_page(&UsersPage {
                ctx: a.ctx,
                users,
                form,
                errors,
                invite_url: None,
                roles: roles(),
            })
        }
        NewUserOutcome::Invited { token, .. } => {
            users_page(&state, a.ctx, Some(format!("{}/invite/{token}", state.base_url()))).await
        }
        NewUserOutcome::Created(_) => Ok(see_other_flash("/admin/users", "flash.user_created")),
    }
}

#[derive(Template)]
#[template(path = "admin/user.html")]
struct UserPage {
    ctx: RequestCtx,
    user: User,
    sessions: Vec<SessionView>,
    roles: Vec<&'static str>,
    invite_url: Option<String>,
    error: Option<&'static str>,
    is_self: bool,
    locks: Vec<repo::Lock>,
}

impl UserPage {
    /// Where a lock's failures came from, for a person: an IP address or "a browser
    /// that signed in before" (the device cookie's id means nothing to anyone).
    fn lock_client(&self, client: &Client) -> String {
        match client {
            Client::Device(_) => self.ctx.t("users.device").to_string(),
            Client::Ip(ip) => ip.clone(),
        }
    }
}

async fn user_page(
    state: &AppState,
    a: Authed,
    id: i64,
    invite_url: Option<String>,
    error: Option<&'static str>,
) -> AppResult<UserPage> {
    let (now, idle) = (state.now(), state.config.session.idle_minutes * 60);
    let (user, items, locks) = state
        .db
        .read(move |c| {
            let user = repo::find_user(c, id)?;
            let locks = match &user {
                Some(u) => repo::list_locks(c, &u.email, now)?,
                None => Vec::new(),
            };
            Ok((user, repo::list_sessions(c, Some(id), now, idle)?, locks))
        })
        .await?;
    let user = user.ok_or(AppError::NotFound)?;
    Ok(UserPage {
        locks,
        is_self: user.id == a.user.id,
        sessions: session_views(items, a.session_id),
        ctx: a.ctx,
        user,
        roles: roles(),
        invite_url,
        error,
    })
}

async fn get_user(state: web::Data<AppState>, Admin(a): Admin, path: web::Path<i64>) -> AppResult<HttpResponse> {
    ok_page(&user_page(&state, a, path.into_inner(), None, None).await?)
}

#[derive(Deserialize)]
pub struct RoleForm {
    role: String,
}

/// Refuses a change that would leave no active admin.
fn keeps_an_admin(c: &rusqlite::Connection, id: i64) -> AppResult<bool> {
    let target = repo::find_user(c, id)?.ok_or(AppError::NotFound)?;
    Ok(!(target.role == Role::Admin && target.active && repo::count_active_admins(c)? <= 1))
}

async fn post_role(
    state: web::Data<AppState>,
    Admin(a): Admin,
    path: web::Path<i64>,
    form: web::Form<RoleForm>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let role = Role::parse(&form.role).ok_or(AppError::BadRequest("form.invalid_choice"))?;
    let (now, actor) = (state.now(), a.actor());
    let ok = state
        .db
        .write(move |c| {
            if role != Role::Admin && !keeps_an_admin(c, id)? {
                return Ok(false);
            }
            repo::update_role(c, id, role, now)?;
            audit::record(
                c,
                &actor,
                "user.role_change",
                &format!("user:{id}"),
                &format!("role={}", role.as_str()),
                now,
            )?;
            Ok(true)
        })
        .await?;
    if !ok {
        return invalid_page(&user_page(&state, a, id, None, Some("users.last_admin")).await?);
    }
    Ok(see_other_flash(&format!("/admin/users/{id}"), "flash.user_updated"))
}

#[derive(Deserialize)]
pub struct ActiveForm {
    active: String,
}

async fn post_active(
    state: web::Data<AppState>,
    Admin(a): Admin,
    path: web::Path<i64>,
    form: web::Form<ActiveForm>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let active = form.active == "1";
    if !active && id == a.user.id {
        return invalid_page(&user_page(&state, a, id, None, Some("users.not_yourself")).await?);
    }
    let (now, actor) = (state.now(), a.actor());
    let ok = state
        .db
        .write(move |c| {
            if !active && !keeps_an_admin(c, id)? {
                return Ok(false);
            }
            repo::update_active(c, id, active, now)?;
            if !active {
                // A deactivated user is signed out everywhere at once.
                repo::delete_sessions_of_user(c, id, None)?;
            }
            let action = if active { "user.activate" } else { "user.deactivate" };
            audit::record(c, &actor, action, &format!("user:{id}"), "", now)?;
            Ok(true)
        })
        .await?;
    if !ok {
        return invalid_page(&user_page(&state, a, id, None, Some("users.last_admin")).await?);
    }
    Ok(see_other_flash(&format!("/admin/users/{id}"), "flash.user_updated"))
}

async fn post_reset_mfa(state: web::Data<AppState>, Admin(a): Admin, path: web::Path<i64>) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let (now, actor) = (state.now(), a.actor());
    state
        .db
        .write(move |c| Ok(service::reset_mfa(c, &actor, id, now)?))
        .await?;
    if id == a.user.id {
        return Ok(see_other_flash("/login", "flash.mfa_reset"));
    }
    Ok(see_other_flash(&format!("/admin/users/{id}"), "flash.mfa_reset"))
}

/// Lifts every sign-in lock of the user (all clients), audited.
async fn post_unlock(state: web::Data<AppState>, Admin(a): Admin, path: web::Path<i64>) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let (now, actor) = (state.now(), a.actor());
    state
        .db
        .write(move |c| Ok(service::unlock(c, &actor, id, now)?))
        .await?;
    Ok(see_other_flash(&format!("/admin/users/{id}"), "flash.user_updated"))
}

/// A new one-time link with which the user sets a password (the admin never sees or sets it).
async fn post_invite_link(
    state: web::Data<AppState>,
    Admin(a): Admin,
    path: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let token = crypto::random_token(32);
    let (now, actor, hash) = (state.now(), a.actor(), crypto::sha256_hex(token.as_bytes()));
    state
        .db
        .write(move |c| {
            repo::find_user(c, id)?.ok_or(AppError::NotFound)?;
            repo::insert_invite(c, &hash, id, now + service::INVITE_SECS)?;
            audit::record(c, &actor, "user.invite_link", &format!("user:{id}"), "", now)?;
            Ok(())
        })
        .await?;
    let url = format!("{}/invite/{token}", state.base_url());
    ok_page(&user_page(&state, a, id, Some(url), None).await?)
}

// ---- sessions and login activity -------------------------------------------------------

async fn get_all_sessions(state: web::Data<AppState>, Admin(a): Admin) -> AppResult<HttpResponse> {
    let (now, idle) = (state.now(), state.config.session.idle_minutes * 60);
    let items = state
        .db
        .read(move |c| Ok(repo::list_sessions(c, None, now, idle)?))
        .await?;
    ok_page(&SessionsPage {
        sessions: session_views(items, a.session_id),
        ctx: a.ctx,
        all_users: true,
    })
}

async fn post_revoke_any(state: web::Data<AppState>, Admin(a): Admin, path: web::Path<i64>) -> AppResult<HttpResponse> {
    let sid = path.into_inner();
    let (now, actor) = (state.now(), a.actor());
    let n = state
        .db
        .write(move |c| {
            let n = repo::delete_session_of(c, sid, None)?;
            if n > 0 {
                audit::record(c, &actor, "session.revoke", &format!("session:{sid}"), "by admin", now)?;
            }
            Ok(n)
        })
        .await?;
    if n == 0 {
        return Err(AppError::NotFound);
    }
    Ok(see_other_flash("/admin/sessions", "flash.session_revoked"))
}

#[derive(Deserialize, Default)]
pub struct LoginFilter {
    outcome: Option<String>,
    email: Option<String>,
}

pub struct LoginEventView {
    pub at: i64,
    pub email: String,
    pub outcome: String,
    pub ip: String,
    pub device: String,
    pub user_agent: String,
    pub bad: bool,
}

#[derive(Template)]
#[template(path = "admin/logins.html")]
struct LoginsPage {
    ctx: RequestCtx,
    events: Vec<LoginEventView>,
    outcomes: Vec<&'static str>,
    outcome: String,
    email: String,
}

async fn get_logins(
    state: web::Data<AppState>,
    Admin(a): Admin,
    q: web::Query<LoginFilter>,
) -> AppResult<HttpResponse> {
    let q = q.into_inner();
    let outcome = q.outcome.filter(|o| !o.is_empty());
    let email = q.email.map(|e| e.trim().to_string()).filter(|e| !e.is_empty());
    let (o2, e2) = (outcome.clone(), email.clone());
    let events = state
        .db
        .read(move |c| Ok(repo::list_login_events(c, o2.as_deref(), e2.as_deref(), 500)?))
        .await?;
    let events = events
        .into_iter()
        .map(|e| LoginEventView {
            bad: !matches!(e.outcome.as_str(), "success" | "password_ok" | "mfa_success" | "logout"),
            device: super::session::describe_device(&e.user_agent),
            at: e.at,
            email: e.email,
            outcome: e.outcome,
            ip: e.ip,
            user_agent: e.user_agent,
        })
        .collect();
    ok_page(&LoginsPage {
        ctx: a.ctx,
        events,
        outcomes: repo::LoginOutcome::ALL.iter().map(|o| o.as_str()).collect(),
        outcome: outcome.unwrap_or_default(),
        email: email.unwrap_or_default(),
    })
}

// ---- security policy ------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin/security.html")]
struct SecurityPage {
    ctx: RequestCtx,
    policy: MfaPolicy,
    users: i64,
    with_mfa: i64,
}

async fn get_security(state: web::Data<AppState>, Admin(a): Admin) -> AppResult<HttpResponse> {
    let (policy, (users, with_mfa)) = state
        .db
        .read(|c| Ok((settings::mfa_policy(c)?, repo::mfa_coverage(c)?)))
        .await?;
    ok_page(&SecurityPage {
        ctx: a.ctx,
        policy,
        users,
        with_mfa,
    })
}

#[derive(Deserialize)]
pub struct SecurityForm {
    #[serde(default)]
    mfa_admin: Option<String>,
    #[serde(default)]
    mfa_supervisor: Option<String>,
    #[serde(default)]
    mfa_agent: Option<String>,
}

async fn post_security(
    state: web::Data<AppState>,
    Admin(a): Admin,
    form: web::Form<SecurityForm>,
) -> AppResult<HttpResponse> {
    let policy = MfaPolicy {
        admin: form.mfa_admin.is_some(),
        supervisor: form.mfa_supervisor.is_some(),
        agent: form.mfa_agent.is_some(),
    };
    let (now, actor) = (state.now(), a.actor());
    state
        .db
        .write(move |c| {
            settings::set_mfa_policy(c, &policy)?;
            let details = format!(
                "admin={} supervisor={} agent={}",
                policy.admin, policy.supervisor, policy.agent
            );
            audit::record(c, &actor, "settings.mfa_policy", "mfa_policy", &details, now)?;
            Ok(())
        })
        .await?;
    Ok(see_other_flash("/admin/security", "flash.saved"))
}
