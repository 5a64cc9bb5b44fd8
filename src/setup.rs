//! First run: the one-time setup link that creates the business and its first admin,
//! then closes for good; the dashboard; and the business profile page (P1).

use crate::app::AppState;
use crate::audit::{self, Actor};
use crate::auth::{Role, normalize_email, password, repo as users, valid_email};
use crate::crypto;
use crate::error::{AppError, AppResult};
use crate::i18n::Locale;
use crate::settings::{self, Business};
use crate::store::Db;
use crate::web::{Admin, Authed, FormErrors, RequestCtx, invalid_page, ok_page, render, see_other_flash};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use rusqlite::{Connection, params};
use serde::Deserialize;

/// A setup link stays valid this long.
pub const SETUP_TOKEN_SECS: i64 = 24 * 3600;

pub const INDUSTRIES: &[&str] = &[
    "retail",
    "food",
    "services",
    "health",
    "education",
    "travel",
    "property",
    "automotive",
    "finance",
    "other",
];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/setup")
            .route(web::get().to(get_setup))
            .route(web::post().to(post_setup)),
    )
    .service(
        web::resource("/admin/business")
            .route(web::get().to(get_business))
            .route(web::post().to(post_business)),
    );
}

pub fn admin_exists(c: &Connection) -> rusqlite::Result<bool> {
    users::count_active_admins(c).map(|n| n > 0).or(Ok(false))
}

/// Makes a new setup link token while no admin exists; `None` once setup is done.
pub fn issue_setup_token(db: &Db, now: i64) -> Result<Option<String>, AppError> {
    Ok(db.write_blocking(move |c| {
        if users::count_users(c)? > 0 {
            return Ok(None);
        }
        let token = crypto::random_token(32);
        c.execute("DELETE FROM setup_tokens WHERE expires_at <= ?1", [now])?;
        c.execute(
            "INSERT INTO setup_tokens (token_hash, expires_at) VALUES (?1, ?2)",
            params![crypto::sha256_hex(token.as_bytes()), now + SETUP_TOKEN_SECS],
        )?;
        Ok(Some(token))
    })?)
}

/// The job `purge_expired_setup_links`.
pub async fn purge_expired_setup_links(db: &Db, now: i64) -> Result<String, String> {
    db.write(move |c| Ok(c.execute("DELETE FROM setup_tokens WHERE expires_at <= ?1", [now])?))
        .await
        .map(|n| format!("{n} setup links removed"))
        .map_err(|e| e.to_string())
}

fn token_valid(c: &Connection, token: &str, now: i64) -> rusqlite::Result<bool> {
    let n: i64 = c.query_row(
        "SELECT count(*) FROM setup_tokens WHERE token_hash = ?1 AND expires_at > ?2",
        params![crypto::sha256_hex(token.as_bytes()), now],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

pub fn setup_url(base: &str, token: &str) -> String {
    format!("{base}/setup?token={token}")
}

#[derive(Deserialize, Default, Clone)]
pub struct SetupForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    business_name: String,
    #[serde(default)]
    owner_name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    industry: String,
    #[serde(default)]
    timezone: String,
    #[serde(default)]
    locale: String,
    #[serde(default)]
    terms: Option<String>,
}

#[derive(Template)]
#[template(path = "setup/setup.html")]
struct SetupPage {
    ctx: RequestCtx,
    form: SetupForm,
    errors: FormErrors,
    choices: BusinessChoices,
}

/// The choices of the business form (setup and profile pages).
pub struct BusinessChoices;

impl BusinessChoices {
    pub fn industries(&self) -> &'static [&'static str] {
        INDUSTRIES
    }
    pub fn timezones(&self) -> Vec<&'static str> {
        timezones()
    }
    pub fn locales(&self) -> Vec<(&'static str, &'static str)> {
        Locale::choices()
    }
}

pub fn timezones() -> Vec<&'static str> {
    chrono_tz::TZ_VARIANTS
        .iter()
        .map(|tz| tz.name())
        .filter(|n| n.contains('/') || *n == "UTC")
        .collect()
}

#[derive(Template)]
#[template(path = "setup/closed.html")]
struct SetupClosedPage {
    ctx: RequestCtx,
    done: bool,
}

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

async fn setup_state(state: &AppState, token: String) -> AppResult<(bool, bool)> {
    let now = state.now();
    Ok(state
        .db
        .read(move |c| {
            Ok((
                admin_exists(c)? || users::count_users(c)? > 0,
                token_valid(c, &token, now)?,
            ))
        })
        .await?)
}

async fn get_setup(state: web::Data<AppState>, ctx: RequestCtx, q: web::Query<TokenQuery>) -> AppResult<HttpResponse> {
    let token = q.into_inner().token.unwrap_or_default();
    let (done, valid) = setup_state(&state, token.clone()).await?;
    if done {
        return render(StatusCode::GONE, &SetupClosedPage { ctx, done: true });
    }
    if !valid {
        return render(StatusCode::FORBIDDEN, &SetupClosedPage { ctx, done: false });
    }
    let form = SetupForm {
        token,
        timezone: "Asia/Jakarta".into(),
        locale: ctx.locale.code().into(),
        industry: "retail".into(),
        ..Default::default()
    };
    ok_page(&SetupPage {
        ctx,
        form,
        errors: FormErrors::default(),
        choices: BusinessChoices,
    })
}

fn validate_business(f: &SetupForm, errors: &mut FormErrors) {
    let len_ok = |s: &str, max: usize| !s.trim().is_empty() && s.trim().chars().count() <= max;
    if !len_ok(&f.business_name, 100) {
        errors.add("business_name", "form.required");
    }
    if !len_ok(&f.owner_name, 100) {
        errors.add("owner_name", "form.required");
    }
    if !valid_email(&f.email) {
        errors.add("email", "form.email_invalid");
    }
    let phone = f.phone.trim();
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    if !(6..=15).contains(&digits) || !phone.chars().all(|c| c.is_ascii_digit() || " +-().".contains(c)) {
        errors.add("phone", "form.phone_invalid");
    }
    if !len_ok(&f.address, 300) {
        errors.add("address", "form.required");
    }
    if !INDUSTRIES.contains(&f.industry.as_str()) {
        errors.add("industry", "form.invalid_choice");
    }
    if f.timezone.parse::<chrono_tz::Tz>().is_err() {
        errors.add("timezone", "form.invalid_choice");
    }
    if Locale::parse(&f.locale).is_none() {
        errors.add("locale", "form.invalid_choice");
    }
}

fn business_from(f: &SetupForm) -> Business {
    Business {
        name: f.business_name.trim().into(),
        owner_name: f.owner_name.trim().into(),
        email: normalize_email(&f.email),
        phone: f.phone.trim().into(),
        address: f.address.trim().into(),
        industry: f.industry.clone(),
        timezone: f.timezone.clone(),
        locale: Locale::parse(&f.locale).unwrap_or(Locale::En).code().into(),
    }
}

async fn post_setup(
    state: web::Data<AppState>,
    ctx: RequestCtx,
    form: web::Form<SetupForm>,
) -> AppResult<HttpResponse> {
    let mut form = form.into_inner();
    let (done, valid) = setup_state(&state, form.token.clone()).await?;
    if done {
        return render(StatusCode::GONE, &SetupClosedPage { ctx, done: true });
    }
    if !valid {
        return render(StatusCode::FORBIDDEN, &SetupClosedPage { ctx, done: false });
    }
    let mut errors = FormErrors::default();
    validate_business(&form, &mut errors);
    if let Some(p) = password::policy_problem(&form.password, &form.email) {
        errors.add("password", p);
    } else if form.password != form.confirm {
        errors.add("confirm", "password.mismatch");
    }
    if form.terms.is_none() {
        errors.add("terms", "setup.terms_required");
    }
    if !errors.is_empty() {
        form.password.clear();
        form.confirm.clear();
        return invalid_page(&SetupPage {
            ctx,
            form,
            errors,
            choices: BusinessChoices,
        });
    }
    let hash = state
        .hasher
        .hash(form.password.clone())
        .await
        .map_err(AppError::internal)?;
    let business = business_from(&form);
    let (now, token, b2, ip) = (state.now(), form.token.clone(), business.clone(), ctx.ip.clone());
    let created = state
        .db
        .write(move |c| {
            // Checked again inside the write: two racing submissions create one admin.
            if users::count_users(c)? > 0 || !token_valid(c, &token, now)? {
                return Ok(false);
            }
            settings::insert_business(c, &b2, now)?;
            settings::record_terms_version(c, crate::privacy::TERMS_VERSION)?;
            let id = users::insert_user(
                c,
                &b2.email,
                &b2.owner_name,
                Role::Admin,
                Some(&hash),
                Some(&b2.locale),
                now,
            )?;
            c.execute("DELETE FROM setup_tokens", [])?;
            let actor = Actor {
                id: Some(id),
                label: b2.email.clone(),
                ip,
            };
            audit::record(
                c,
                &actor,
                "setup.complete",
                &format!("user:{id}"),
                &format!(
                    "business={}; terms accepted: {}",
                    b2.name,
                    crate::privacy::TERMS_VERSION
                ),
                now,
            )?;
            Ok(true)
        })
        .await?;
    if !created {
        return render(StatusCode::GONE, &SetupClosedPage { ctx, done: true });
    }
    state.set_business(business);
    Ok(see_other_flash("/login", "flash.setup_done"))
}

// ---- dashboard -----------------------------------------------------------------------

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    ctx: RequestCtx,
    mfa_enabled: bool,
    mfa_required: bool,
    users: i64,
    users_with_mfa: i64,
    failures_24h: i64,
    sessions: i64,
    /// Sign-in locks in force (shown to admins as a notice from a storm's size on).
    locks: i64,
    /// Data-subject requests past their 30-day deadline (admins are told).
    overdue_requests: i64,
}

impl DashboardPage {
    fn lock_storm(&self) -> bool {
        self.locks >= crate::auth::service::LOCKOUT_STORM_CLIENTS
    }
    fn locks_text(&self) -> String {
        self.ctx.tf("dashboard.lock_storm", &[("n", &self.locks.to_string())])
    }

    fn overdue_text(&self) -> String {
        self.ctx.tf(
            "privacy_ops.requests.overdue_flag",
            &[("n", &self.overdue_requests.to_string())],
        )
    }
}

pub async fn get_dashboard(state: web::Data<AppState>, a: Authed) -> AppResult<HttpResponse> {
    // The dashboard is the owner's (security, the team); an agent's work is the inbox.
    if !a.user.at_least(Role::Supervisor) {
        return Ok(crate::web::see_other("/inbox"));
    }
    let (ctx, user) = (a.ctx, a.user);
    let (now, idle) = (state.now(), state.config.session.idle_minutes * 60);
    let id = user.id;
    let (coverage, failures, sessions, policy, locks, overdue_requests) = state
        .db
        .read(move |c| {
            Ok((
                users::mfa_coverage(c)?,
                users::count_login_failures_since(c, now - 86_400)?,
                i64::try_from(users::list_sessions(c, Some(id), now, idle)?.len()).unwrap_or(i64::MAX),
                settings::mfa_policy(c)?,
                users::count_locks(c, None, now)?,
                crate::privacy::requests::overdue_count(c, now)?,
            ))
        })
        .await?;
    ok_page(&DashboardPage {
        locks,
        overdue_requests,
        mfa_enabled: user.mfa_enabled,
        mfa_required: policy.requires(user.role),
        users: coverage.0,
        users_with_mfa: coverage.1,
        failures_24h: failures,
        sessions,
        ctx,
    })
}

// ---- business profile ------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin/business.html")]
struct BusinessPage {
    ctx: RequestCtx,
    form: SetupForm,
    errors: FormErrors,
    choices: BusinessChoices,
}

async fn get_business(state: web::Data<AppState>, Admin(a): Admin) -> AppResult<HttpResponse> {
    let b = state
        .db
        .read(|c| Ok(settings::find_business(c)?))
        .await?
        .unwrap_or_default();
    let form = SetupForm {
        business_name: b.name,
        owner_name: b.owner_name,
        email: b.email,
        phone: b.phone,
        address: b.address,
        industry: b.industry,
        timezone: b.timezone,
        locale: b.locale,
        ..Default::default()
    };
    ok_page(&BusinessPage {
        ctx: a.ctx,
        form,
        errors: FormErrors::default(),
        choices: BusinessChoices,
    })
}

async fn post_business(
    state: web::Data<AppState>,
    Admin(a): Admin,
    form: web::Form<SetupForm>,
) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    let mut errors = FormErrors::default();
    validate_business(&form, &mut errors);
    if !errors.is_empty() {
        return invalid_page(&BusinessPage {
            ctx: a.ctx,
            form,
            errors,
            choices: BusinessChoices,
        });
    }
    let b = business_from(&form);
    let (now, actor, b2) = (state.now(), a.actor(), b.clone());
    state
        .db
        .write(move |c| {
            settings::update_business(c, &b2, now)?;
            audit::record(c, &actor, "business.update", "business", "", now)?;
            Ok(())
        })
        .await?;
    state.set_business(b);
    Ok(see_other_flash("/admin/business", "flash.saved"))
}
