//! The per-request context every page gets (`ctx` in templates): language, user,
//! CSRF token, one-time message, request id; and the extractors that demand a sign-in.

use crate::auth::{Role, User};
use crate::error::AppError;
use crate::i18n::{self, Locale};
use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload};
use std::future::{Ready, ready};

/// The signed-in session behind a request.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub id: i64,
    pub stage: String,
    pub user: User,
    /// The policy notice this user has not acknowledged yet (a banner on every page).
    pub notice: Option<crate::auth::notices::Notice>,
}

#[derive(Debug, Clone)]
pub struct RequestCtx {
    pub request_id: String,
    pub ip: String,
    pub user_agent: String,
    pub locale: Locale,
    pub csrf: String,
    pub path: String,
    /// The query a language link keeps (see `lang_href`).
    pub kept_query: String,
    pub flash: Option<&'static str>,
    pub session: Option<SessionInfo>,
    pub business_name: Option<String>,
    pub timezone: Option<chrono_tz::Tz>,
    /// The known-device cookie, when the browser has one (checked by the sign-in).
    pub device: Option<String>,
}

impl RequestCtx {
    /// Translates a catalogue key in the request's language.
    pub fn t(&self, key: &str) -> &'static str {
        i18n::t(self.locale, key)
    }

    pub fn tf(&self, key: &str, args: &[(&str, &str)]) -> String {
        i18n::tf(self.locale, key, args)
    }

    /// The current page in language `code`: its query kept (a setup or invite token
    /// survives the switch), `lang` replaced.
    pub fn lang_href(&self, code: &str) -> String {
        if self.kept_query.is_empty() {
            format!("?lang={code}")
        } else {
            format!("?{}&lang={code}", self.kept_query)
        }
    }

    pub fn lang(&self) -> &'static str {
        self.locale.code()
    }

    /// `/static/path?v=hash`, so a changed file is never served stale from cache.
    pub fn asset(&self, path: &str) -> String {
        super::assets::versioned(path)
    }

    pub fn user(&self) -> Option<&User> {
        self.session.as_ref().filter(|s| s.stage == "full").map(|s| &s.user)
    }

    /// The policy notice to show as a banner (fully signed-in users only).
    pub fn notice(&self) -> Option<&crate::auth::notices::Notice> {
        self.session
            .as_ref()
            .filter(|s| s.stage == "full")
            .and_then(|s| s.notice.as_ref())
    }

    pub fn signed_in(&self) -> bool {
        self.user().is_some()
    }

    pub fn user_name(&self) -> &str {
        self.session.as_ref().map(|s| s.user.name.as_str()).unwrap_or("")
    }

    pub fn role_label(&self) -> &'static str {
        self.user().map(|u| self.t(u.role.label_key())).unwrap_or("")
    }

    pub fn at_least(&self, role: &str) -> bool {
        match (self.user(), Role::parse(role)) {
            (Some(u), Some(r)) => u.at_least(r),
            _ => false,
        }
    }

    /// Whether the navigation entry for `prefix` is the current page.
    pub fn nav_current(&self, prefix: &str) -> bool {
        if prefix == "/" {
            self.path == "/"
        } else {
            self.path.starts_with(prefix)
        }
    }

    /// Unix time as local (business time zone) date and time.
    pub fn time(&self, ts: &i64) -> String {
        crate::clock::format_unix(*ts, self.timezone)
    }

    /// A translated label for a code such as `outcome.failure`, falling back to the code.
    pub fn label(&self, prefix: &str, code: &str) -> String {
        i18n::label(self.locale, prefix, code)
    }
}

impl FromRequest for RequestCtx {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<RequestCtx>()
                .cloned()
                .ok_or_else(|| AppError::internal("request context missing")),
        )
    }
}

/// The session of a signed-in request, or where to send the browser instead:
/// a pending second factor goes to `/login/mfa`, an obligatory enrolment to
/// `/account/mfa` (unless `enrolling` is allowed), no session to the sign-in page.
fn signed_in_session(req: &HttpRequest, enrolling: bool) -> Result<(RequestCtx, SessionInfo), AppError> {
    let ctx = req
        .extensions()
        .get::<RequestCtx>()
        .cloned()
        .ok_or_else(|| AppError::internal("request context missing"))?;
    match ctx.session.clone() {
        Some(s) if s.stage == "full" || (enrolling && s.stage == "enrol") => Ok((ctx, s)),
        Some(s) if s.stage == "enrol" => Err(AppError::Redirect("/account/mfa".into())),
        Some(s) if s.stage == "mfa" => Err(AppError::Redirect("/login/mfa".into())),
        _ => Err(login_redirect(req)),
    }
}

/// A fully signed-in user (password, and MFA where enrolled or required).
#[derive(Debug, Clone)]
pub struct Authed {
    pub ctx: RequestCtx,
    pub user: User,
    pub session_id: i64,
}

impl Authed {
    /// Refuses (403) unless the user's role is at least `role`.
    pub fn require(&self, role: Role) -> Result<(), AppError> {
        if self.user.at_least(role) {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }

    pub fn actor(&self) -> crate::audit::Actor {
        crate::audit::Actor::user(&self.user, &self.ctx.ip)
    }
}

fn login_redirect(req: &HttpRequest) -> AppError {
    if req.method() == actix_web::http::Method::GET {
        let next = req
            .uri()
            .path_and_query()
            .map(actix_web::http::uri::PathAndQuery::as_str)
            .unwrap_or("/");
        if next == "/" {
            return AppError::Redirect("/login".into());
        }
        let enc: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
        AppError::Redirect(format!("/login?next={enc}"))
    } else {
        AppError::Unauthenticated
    }
}

impl FromRequest for Authed {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(signed_in_session(req, false).map(|(ctx, s)| Authed {
            user: s.user,
            session_id: s.id,
            ctx,
        }))
    }
}

/// Signed in, but possibly still obliged to enrol MFA (the enrolment pages and sign-out).
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub ctx: RequestCtx,
    pub user: User,
    pub session_id: i64,
    pub must_enrol: bool,
}

impl FromRequest for SignedIn {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(signed_in_session(req, true).map(|(ctx, s)| SignedIn {
            must_enrol: s.stage == "enrol",
            user: s.user,
            session_id: s.id,
            ctx,
        }))
    }
}

/// A signed-in admin. As an extractor it refuses everyone else (403) before the body
/// of the request is even parsed.
#[derive(Debug, Clone)]
pub struct Admin(pub Authed);

impl FromRequest for Admin {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let result = match Authed::from_request(req, payload).into_inner() {
            Ok(a) if a.user.at_least(Role::Admin) => Ok(Admin(a)),
            Ok(_) => Err(AppError::Forbidden),
            Err(e) => Err(e),
        };
        ready(result)
    }
}
