//! Sign-in, second factor, sign-out, the user's own account, MFA and sessions pages,
//! and accepting an invitation.

use super::service::{self, MfaStep, PasswordStep};
use super::views::{SessionsPage, session_views};
use super::{password, repo, totp};
use crate::app::AppState;
use crate::audit::{self, Actor};
use crate::error::{AppError, AppResult};
use crate::i18n::Locale;
use crate::web::middleware::{SESSION_COOKIE, add_cookie, removal_cookie, session_cookie};
use crate::web::{Authed, FormErrors, RequestCtx, SignedIn, invalid_page, ok_page, see_other, see_other_flash};
use actix_web::{HttpResponse, web};
use askama::Template;
use base64::Engine;
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/login")
            .route(web::get().to(get_login))
            .route(web::post().to(post_login)),
    )
    .service(
        web::resource("/login/mfa")
            .route(web::get().to(get_login_mfa))
            .route(web::post().to(post_login_mfa)),
    )
    .service(web::resource("/logout").route(web::post().to(post_logout)))
    .service(
        web::resource("/account")
            .route(web::get().to(get_account))
            .route(web::post().to(post_account)),
    )
    .service(web::resource("/account/password").route(web::post().to(post_password)))
    .service(web::resource("/account/mfa").route(web::get().to(get_mfa)))
    .service(web::resource("/account/mfa/start").route(web::post().to(post_mfa_start)))
    .service(web::resource("/account/mfa/confirm").route(web::post().to(post_mfa_confirm)))
    .service(web::resource("/account/mfa/recovery").route(web::post().to(post_mfa_recovery)))
    .service(web::resource("/account/sessions").route(web::get().to(get_sessions)))
    .service(web::resource("/account/sessions/revoke-others").route(web::post().to(post_revoke_others)))
    .service(web::resource("/account/sessions/{id}/revoke").route(web::post().to(post_revoke_session)))
    .service(
        web::resource("/invite/{token}")
            .route(web::get().to(get_invite))
            .route(web::post().to(post_invite)),
    );
}

/// Where to go after sign-in: `next` when it is a path on this server (same origin as
/// `base`, the public URL), otherwise `/`. Browsers drop tabs and newlines inside URLs,
/// so `/\t/evil.example` would become `//evil.example`: any control character or
/// whitespace refuses the value outright, and the resolved URL must keep our origin.
pub fn safe_next(next: Option<&str>, base: &str) -> String {
    let Some(n) = next else {
        return "/".into();
    };
    let plain = n.starts_with('/')
        && !n.starts_with("//")
        && !n.starts_with("/login")
        && !n.contains('\\')
        && n.len() <= 2000
        && !n.chars().any(|c| c.is_control() || c.is_whitespace());
    let same_origin = || {
        let Ok(base) = url::Url::parse(base) else {
            return false;
        };
        base.join(n)
            .is_ok_and(|u| u.origin() == base.origin() && !u.path().starts_with("//"))
    };
    if plain && same_origin() {
        n.to_string()
    } else {
        "/".into()
    }
}

fn with_session_cookie(mut resp: HttpResponse, token: &str) -> HttpResponse {
    add_cookie(&mut resp, &session_cookie(token));
    resp
}

/// The session cookie, and the known-device cookie when the sign-in made one.
fn signed_in(resp: HttpResponse, s: &super::session::NewSession) -> HttpResponse {
    let mut resp = with_session_cookie(resp, &s.token);
    if let Some(d) = &s.device {
        add_cookie(&mut resp, &crate::web::middleware::device_cookie(d));
    }
    resp
}

// ---- sign-in --------------------------------------------------------------------

#[derive(Template)]
#[template(path = "auth/login.html")]
struct LoginPage {
    ctx: RequestCtx,
    email: String,
    next: String,
    error: Option<&'static str>,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

async fn get_login(state: web::Data<AppState>, ctx: RequestCtx, q: web::Query<LoginQuery>) -> AppResult<HttpResponse> {
    let next = safe_next(q.next.as_deref(), &state.base_url());
    if ctx.signed_in() {
        return Ok(see_other(&next));
    }
    ok_page(&LoginPage {
        ctx,
        email: String::new(),
        next,
        error: None,
    })
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    next: Option<String>,
}

async fn post_login(
    state: web::Data<AppState>,
    ctx: RequestCtx,
    form: web::Form<LoginForm>,
) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    let next = safe_next(form.next.as_deref(), &state.base_url());
    let error = if form.email.trim().is_empty() || form.password.is_empty() {
        Some("login.missing")
    } else if form.password.len() > 1024 {
        Some("login.invalid")
    } else {
        match service::sign_in(&state, &ctx, &form.email, form.password).await? {
            PasswordStep::SignedIn(s) => {
                return Ok(signed_in(see_other(&next), &s));
            }
            PasswordStep::NeedMfa(s) => {
                let enc: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
                return Ok(with_session_cookie(
                    see_other(&format!("/login/mfa?next={enc}")),
                    &s.token,
                ));
            }
            PasswordStep::Invalid => Some("login.invalid"),
            PasswordStep::Locked => Some("login.locked"),
        }
    };
    let page = LoginPage {
        ctx,
        email: form.email,
        next,
        error,
    };
    if error == Some("login.locked") {
        return super::super::web::render(actix_web::http::StatusCode::TOO_MANY_REQUESTS, &page);
    }
    invalid_page(&page)
}

#[derive(Template)]
#[template(path = "auth/login_mfa.html")]
struct MfaLoginPage {
    ctx: RequestCtx,
    next: String,
    error: Option<&'static str>,
}

async fn get_login_mfa(
    state: web::Data<AppState>,
    ctx: RequestCtx,
    q: web::Query<LoginQuery>,
) -> AppResult<HttpResponse> {
    match ctx.session.as_ref().map(|s| s.stage.as_str()) {
        Some("mfa") => ok_page(&MfaLoginPage {
            next: safe_next(q.next.as_deref(), &state.base_url()),
            ctx,
            error: None,
        }),
        Some(_) => Ok(see_other("/")),
        None => Ok(see_other("/login")),
    }
}

#[derive(Deserialize)]
pub struct CodeForm {
    code: String,
    next: Option<String>,
}

async fn post_login_mfa(
    state: web::Data<AppState>,
    ctx: RequestCtx,
    form: web::Form<CodeForm>,
) -> AppResult<HttpResponse> {
    let next = safe_next(form.next.as_deref(), &state.base_url());
    match service::verify_mfa(&state, &ctx, &form.code).await? {
        MfaStep::SignedIn(s) => Ok(signed_in(see_other(&next), &s)),
        MfaStep::Invalid => invalid_page(&MfaLoginPage {
            ctx,
            next,
            error: Some("mfa.invalid_code"),
        }),
        MfaStep::Restart => {
            let mut resp = see_other("/login?m=flash.session_expired");
            add_cookie(&mut resp, &removal_cookie(SESSION_COOKIE));
            Ok(resp)
        }
    }
}

async fn post_logout(state: web::Data<AppState>, ctx: RequestCtx) -> AppResult<HttpResponse> {
    service::sign_out(&state, &ctx).await?;
    let mut resp = see_other_flash("/login", "flash.signed_out");
    add_cookie(&mut resp, &removal_cookie(SESSION_COOKIE));
    Ok(resp)
}

// ---- own account ------------------------------------------------------------------

#[derive(Template)]
#[template(path = "account/profile.html")]
struct AccountPage {
    ctx: RequestCtx,
    name: String,
    email: String,
    locale: String,
    errors: FormErrors,
}

impl AccountPage {
    /// The page as stored, with `errors` (none when just opened).
    fn of(a: Authed, errors: FormErrors) -> AccountPage {
        AccountPage {
            name: a.user.name.clone(),
            email: a.user.email.clone(),
            locale: a.user.locale.clone().unwrap_or_default(),
            ctx: a.ctx,
            errors,
        }
    }

    #[expect(clippy::unused_self, reason = "the template calls it as a method")]
    fn locales(&self) -> Vec<(&'static str, &'static str)> {
        Locale::choices()
    }
}

async fn get_account(a: Authed) -> AppResult<HttpResponse> {
    ok_page(&AccountPage::of(a, FormErrors::default()))
}

#[derive(Deserialize)]
pub struct AccountForm {
    name: String,
    locale: String,
}

async fn post_account(state: web::Data<AppState>, a: Authed, form: web::Form<AccountForm>) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    let name = form.name.trim().to_string();
    let mut errors = FormErrors::default();
    if name.is_empty() || name.chars().count() > 100 {
        errors.add("name", "form.name_required");
    }
    let locale = Locale::parse(&form.locale).map(|l| l.code().to_string());
    if !form.locale.is_empty() && locale.is_none() {
        errors.add("locale", "form.invalid_choice");
    }
    if !errors.is_empty() {
        return invalid_page(&AccountPage {
            email: a.user.email.clone(),
            ctx: a.ctx,
            name,
            locale: form.locale,
            errors,
        });
    }
    let (now, actor, id) = (state.now(), a.actor(), a.user.id);
    state
        .db
        .write(move |c| {
            repo::update_profile(c, id, &name, locale.as_deref(), now)?;
            audit::record(c, &actor, "account.update", &format!("user:{id}"), "", now)?;
            Ok(())
        })
        .await?;
    Ok(see_other_flash("/account", "flash.saved"))
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current: String,
    new: String,
    confirm: String,
}

async fn post_password(
    state: web::Data<AppState>,
    a: Authed,
    form: web::Form<PasswordForm>,
) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    let mut errors = FormErrors::default();
    let email = a.user.email.clone();
    let stored = state
        .db
        .read(move |c| Ok(repo::find_user_for_login(c, &email)?.and_then(|(_, h)| h)))
        .await?;
    if !state.hasher.verify(form.current.clone(), stored).await {
        errors.add("current", "password.current_wrong");
    }
    if let Some(p) = password::policy_problem(&form.new, &a.user.email) {
        errors.add("new", p);
    } else if form.new != form.confirm {
        errors.add("confirm", "password.mismatch");
    }
    if !errors.is_empty() {
        return invalid_page(&AccountPage::of(a, errors));
    }
    let hash = state.hasher.hash(form.new).await.map_err(AppError::internal)?;
    let (now, actor, id, sid) = (state.now(), a.actor(), a.user.id, a.session_id);
    state
        .db
        .write(move |c| {
            repo::update_password(c, id, &hash, now)?;
            // Every other session ends when the password changes.
            repo::delete_sessions_of_user(c, id, Some(sid))?;
            audit::record(c, &actor, "account.password_change", &format!("user:{id}"), "", now)?;
            Ok(())
        })
        .await?;
    Ok(see_other_flash("/account", "flash.password_changed"))
}

// ---- MFA ------------------------------------------------------------------------

pub struct Enrolment {
    pub secret: String,
    pub qr_data_url: String,
}

#[derive(Template)]
#[template(path = "account/mfa.html")]
struct MfaPage {
    ctx: RequestCtx,
    enabled: bool,
    must_enrol: bool,
    recovery_left: i64,
    enrolment: Option<Enrolment>,
    codes: Vec<String>,
    error: Option<&'static str>,
}

impl MfaPage {
    fn codes_left(&self) -> String {
        self.ctx.tf("mfa.codes_left", &[("n", &self.recovery_left.to_string())])
    }
}

fn enrolment_view(state: &AppState, user: &super::User, secret: &str) -> AppResult<Enrolment> {
    let issuer = state
        .business()
        .map(|b| format!("Whacaster {}", b.name))
        .unwrap_or_else(|| "Whacaster".into());
    let url = totp::otpauth_url(secret, &user.email, &issuer).map_err(AppError::internal)?;
    let svg = totp::qr_svg(&url).map_err(AppError::internal)?;
    let qr_data_url = format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    );
    // Shown in groups of four so it can be typed into an app by hand.
    let grouped = secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    Ok(Enrolment {
        secret: grouped,
        qr_data_url,
    })
}

async fn mfa_page(
    state: &AppState,
    s: SignedIn,
    enrolment: Option<Enrolment>,
    codes: Vec<String>,
    error: Option<&'static str>,
) -> AppResult<MfaPage> {
    let id = s.user.id;
    let (enabled, left) = state
        .db
        .read(move |c| {
            let t = repo::get_totp(c, id)?;
            Ok((
                t.map(|t| t.enabled).unwrap_or(false),
                repo::count_recovery_codes(c, id)?,
            ))
        })
        .await?;
    Ok(MfaPage {
        must_enrol: s.must_enrol,
        ctx: s.ctx,
        enabled,
        recovery_left: left,
        enrolment,
        codes,
        error,
    })
}

async fn get_mfa(state: web::Data<AppState>, s: SignedIn) -> AppResult<HttpResponse> {
    ok_page(&mfa_page(&state, s, None, Vec::new(), None).await?)
}

async fn post_mfa_start(state: web::Data<AppState>, s: SignedIn) -> AppResult<HttpResponse> {
    let secret = service::start_enrolment(&state, &s.user).await?;
    let enrol = enrolment_view(&state, &s.user, &secret)?;
    ok_page(&mfa_page(&state, s, Some(enrol), Vec::new(), None).await?)
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    code: String,
}

async fn post_mfa_confirm(
    state: web::Data<AppState>,
    s: SignedIn,
    form: web::Form<ConfirmForm>,
) -> AppResult<HttpResponse> {
    match service::confirm_enrolment(&state, &s.ctx, &s.user, s.session_id, &form.code).await? {
        Some((codes, new_session)) => {
            let mut page = mfa_page(&state, s, None, codes, None).await?;
            page.must_enrol = false;
            let resp = ok_page(&page)?;
            Ok(with_session_cookie(resp, &new_session.token))
        }
        None => {
            let id = s.user.id;
            let secret = state
                .db
                .read(move |c| Ok(repo::get_totp(c, id)?.and_then(|t| t.secret)))
                .await?;
            let enrol = match secret {
                Some(sec) => Some(enrolment_view(&state, &s.user, &sec)?),
                None => None,
            };
            invalid_page(&mfa_page(&state, s, enrol, Vec::new(), Some("mfa.invalid_code")).await?)
        }
    }
}

async fn post_mfa_recovery(
    state: web::Data<AppState>,
    a: Authed,
    form: web::Form<ConfirmForm>,
) -> AppResult<HttpResponse> {
    let codes = service::regenerate_recovery_codes(&state, &a.ctx, &a.user, &form.code).await?;
    let s = SignedIn {
        ctx: a.ctx,
        user: a.user,
        session_id: a.session_id,
        must_enrol: false,
    };
    match codes {
        Some(codes) => ok_page(&mfa_page(&state, s, None, codes, None).await?),
        None => invalid_page(&mfa_page(&state, s, None, Vec::new(), Some("mfa.invalid_code")).await?),
    }
}

// ---- sessions ---------------------------------------------------------------------

async fn get_sessions(state: web::Data<AppState>, a: Authed) -> AppResult<HttpResponse> {
    let (id, now, idle) = (a.user.id, state.now(), state.config.session.idle_minutes * 60);
    let items = state
        .db
        .read(move |c| Ok(repo::list_sessions(c, Some(id), now, idle)?))
        .await?;
    ok_page(&SessionsPage {
        sessions: session_views(items, a.session_id),
        ctx: a.ctx,
        all_users: false,
    })
}

async fn post_revoke_session(state: web::Data<AppState>, a: Authed, path: web::Path<i64>) -> AppResult<HttpResponse> {
    let sid = path.into_inner();
    let (now, actor, uid) = (state.now(), a.actor(), a.user.id);
    let n = state
        .db
        .write(move |c| {
            let n = repo::delete_session_of(c, sid, Some(uid))?;
            if n > 0 {
                audit::record(c, &actor, "session.revoke", &format!("session:{sid}"), "", now)?;
            }
            Ok(n)
        })
        .await?;
    if n == 0 {
        return Err(AppError::NotFound);
    }
    Ok(see_other_flash("/account/sessions", "flash.session_revoked"))
}

async fn post_revoke_others(state: web::Data<AppState>, a: Authed) -> AppResult<HttpResponse> {
    let (now, actor, uid, sid) = (state.now(), a.actor(), a.user.id, a.session_id);
    state
        .db
        .write(move |c| {
            let n = repo::delete_sessions_of_user(c, uid, Some(sid))?;
            audit::record(
                c,
                &actor,
                "session.revoke_others",
                &format!("user:{uid}"),
                &format!("{n} sessions"),
                now,
            )?;
            Ok(())
        })
        .await?;
    Ok(see_other_flash("/account/sessions", "flash.sessions_revoked"))
}

// ---- invitations --------------------------------------------------------------------

#[derive(Template)]
#[template(path = "auth/invite.html")]
struct InvitePage {
    ctx: RequestCtx,
    token: String,
    name: String,
    email: String,
    /// The admin who sent the link, when one did.
    inviter: Option<String>,
    errors: FormErrors,
}

impl InvitePage {
    fn intro(&self) -> String {
        self.ctx
            .tf("invite.intro", &[("name", &self.name), ("email", &self.email)])
    }

    /// "Budi Santoso invited you to the team of Toko Maju Jaya on Whacaster."
    fn who(&self) -> String {
        let business = self.ctx.business_name.clone().unwrap_or_default();
        match &self.inviter {
            Some(by) => self.ctx.tf("invite.by", &[("inviter", by), ("business", &business)]),
            None => self.ctx.tf("invite.to", &[("business", &business)]),
        }
    }
}

/// The user a valid link is for, and who sent it.
async fn invited_user(state: &AppState, token: &str) -> AppResult<(super::User, Option<String>)> {
    let hash = crate::crypto::sha256_hex(token.as_bytes());
    let now = state.now();
    state
        .db
        .read(move |c| match repo::find_invite(c, &hash, now)? {
            Some(uid) => Ok(repo::find_user(c, uid)?.map(|u| (u, repo::find_inviter(c, uid)))),
            None => Ok(None),
        })
        .await?
        .filter(|(u, _)| u.active)
        .map(|(u, by)| Ok::<_, AppError>((u, by?)))
        .transpose()?
        .ok_or(AppError::BadRequest("invite.invalid"))
}

async fn get_invite(state: web::Data<AppState>, ctx: RequestCtx, path: web::Path<String>) -> AppResult<HttpResponse> {
    let token = path.into_inner();
    let (user, inviter) = invited_user(&state, &token).await?;
    ok_page(&InvitePage {
        ctx,
        token,
        name: user.name,
        email: user.email,
        inviter,
        errors: FormErrors::default(),
    })
}

#[derive(Deserialize)]
pub struct InviteForm {
    password: String,
    confirm: String,
}

async fn post_invite(
    state: web::Data<AppState>,
    ctx: RequestCtx,
    path: web::Path<String>,
    form: web::Form<InviteForm>,
) -> AppResult<HttpResponse> {
    let token = path.into_inner();
    let (user, inviter) = invited_user(&state, &token).await?;
    let mut errors = FormErrors::default();
    if let Some(p) = password::policy_problem(&form.password, &user.email) {
        errors.add("password", p);
    } else if form.password != form.confirm {
        errors.add("confirm", "password.mismatch");
    }
    if !errors.is_empty() {
        return invalid_page(&InvitePage {
            ctx,
            token,
            name: user.name,
            email: user.email,
            inviter,
            errors,
        });
    }
    let hash = state
        .hasher
        .hash(form.password.clone())
        .await
        .map_err(AppError::internal)?;
    let (now, hash_tok, actor) = (
        state.now(),
        crate::crypto::sha256_hex(token.as_bytes()),
        Actor::user(&user, &ctx.ip),
    );
    state
        .db
        .write(move |c| {
            // The invite is consumed in the same transaction: usable once.
            if repo::delete_invite(c, &hash_tok)? == 0 {
                return Err(AppError::BadRequest("invite.invalid").into());
            }
            repo::update_password(c, user.id, &hash, now)?;
            audit::record(c, &actor, "user.invite_accepted", &format!("user:{}", user.id), "", now)?;
            Ok(())
        })
        .await?;
    Ok(see_other_flash("/login", "flash.invite_accepted"))
}
