//! `AppError`: what can go wrong while serving a request, and how it looks to a person.
//! The response body is only the catalogue key of the message (`message_key`);
//! `web::middleware` renders the page or JSON in the user's language with the request
//! id, and logs the cause (never shown to the user).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    /// Signed in but not allowed.
    #[error("forbidden")]
    Forbidden,
    /// Not signed in: pages redirect to the sign-in page.
    #[error("sign-in required")]
    Unauthenticated,
    /// An API call without `Authorization: Bearer wk_…`.
    #[error("no API key")]
    ApiKeyMissing,
    /// An API call with a key that is unknown or revoked.
    #[error("invalid API key")]
    ApiKeyInvalid,
    #[error("CSRF check failed: {0}")]
    Csrf(&'static str),
    /// A request the client should fix; the key names a catalogue message.
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// The body did not arrive in time (a slow or stalled client).
    #[error("request body too slow")]
    RequestTimeout,
    #[error("too many requests")]
    TooManyRequests,
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("database pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("template: {0}")]
    Template(#[from] askama::Error),
    /// Anything else; the source is kept for the log.
    #[error("{0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Send the browser elsewhere (e.g. to finish MFA first).
    #[error("redirect to {0}")]
    Redirect(String),
}

impl AppError {
    /// An internal error keeping `e` as its source (a message works too).
    pub fn internal(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        AppError::Internal(e.into())
    }

    /// The machine-readable `code` of an API error, and the finer `reason` when the code
    /// alone does not say what to fix.
    pub fn api_code(&self) -> (&'static str, Option<&'static str>) {
        match self {
            AppError::ApiKeyMissing => ("unauthenticated", Some("missing_key")),
            AppError::ApiKeyInvalid => ("unauthenticated", Some("invalid_key")),
            other => (other.message_key().trim_start_matches("error."), None),
        }
    }

    /// The catalogue key of the message a person sees.
    pub fn message_key(&self) -> &'static str {
        match self {
            AppError::NotFound => "error.not_found",
            AppError::Forbidden => "error.forbidden",
            AppError::Unauthenticated => "error.unauthenticated",
            AppError::ApiKeyMissing => "error.api_key_missing",
            AppError::ApiKeyInvalid => "error.api_key_invalid",
            AppError::Csrf(_) => "error.csrf",
            AppError::BadRequest(key) => key,
            AppError::TooManyRequests => "error.too_many_requests",
            AppError::RequestTimeout => "error.timeout",
            _ => "error.internal",
        }
    }
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        AppError::internal(e.to_string())
    }
}

impl From<crate::store::DbError> for AppError {
    fn from(e: crate::store::DbError) -> Self {
        use crate::store::DbError;
        match e {
            DbError::Sqlite(e) => AppError::Db(e),
            DbError::Pool(e) => AppError::Pool(e),
            DbError::Work(e) => match e.downcast::<AppError>() {
                Ok(app) => *app,
                Err(other) => AppError::Internal(other),
            },
            other => AppError::Internal(Box::new(other)),
        }
    }
}

/// Work run inside a store call may fail with an `AppError` (a refusal, a missing
/// row); it travels through the store unchanged and comes out as itself.
impl From<AppError> for crate::store::DbError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Db(e) => crate::store::DbError::Sqlite(e),
            AppError::Pool(e) => crate::store::DbError::Pool(e),
            other => crate::store::DbError::Work(Box::new(other)),
        }
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Forbidden | AppError::Csrf(_) => StatusCode::FORBIDDEN,
            AppError::Unauthenticated | AppError::ApiKeyMissing | AppError::ApiKeyInvalid => StatusCode::UNAUTHORIZED,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            AppError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            AppError::Redirect(_) => StatusCode::SEE_OTHER,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        match self {
            AppError::Redirect(to) => {
                return HttpResponse::SeeOther()
                    .insert_header(("Location", to.as_str()))
                    .finish();
            }
            _ if status.is_server_error() => tracing::error!(error = %self, "request failed"),
            _ => tracing::info!(error = %self, status = status.as_u16(), "request refused"),
        }
        let mut resp = HttpResponse::build(status);
        resp.content_type("text/plain; charset=utf-8");
        match self {
            AppError::TooManyRequests => {
                resp.insert_header(("Retry-After", "60"));
            }
            // RFC 6750: say which scheme, and that a key that was sent is no good.
            AppError::ApiKeyMissing => {
                resp.insert_header(("WWW-Authenticate", "Bearer realm=\"whacaster\""));
            }
            AppError::ApiKeyInvalid => {
                resp.insert_header((
                    "WWW-Authenticate",
                    "Bearer realm=\"whacaster\", error=\"invalid_token\"",
                ));
            }
            // The rest of the body is not read: the connection ends with this answer.
            AppError::RequestTimeout => {
                resp.force_close();
            }
            _ => {}
        }
        // The body is replaced by a full page (or JSON) in `web::middleware`.
        resp.body(self.message_key())
    }
}

pub type AppResult<T> = Result<T, AppError>;

/// Field messages for a form: (field, catalogue key). Invalid input is not an error
/// (STYLE): services return these for the form or the API to show.
#[derive(Debug, Default, Clone)]
pub struct FormErrors(pub Vec<(&'static str, &'static str)>);

impl FormErrors {
    pub fn add(&mut self, field: &'static str, key: &'static str) {
        self.0.push((field, key));
    }
    pub fn get(&self, field: &str) -> Option<&'static str> {
        self.0.iter().find(|(f, _)| *f == field).map(|(_, k)| *k)
    }
    pub fn has(&self, field: &str) -> bool {
        self.get(field).is_some()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DbError;
    use std::error::Error as _;

    #[test]
    fn an_app_error_comes_out_of_the_store_as_itself() {
        assert!(matches!(
            AppError::from(DbError::from(AppError::NotFound)),
            AppError::NotFound
        ));
        assert!(matches!(
            AppError::from(DbError::from(AppError::BadRequest("inbox.no_number"))),
            AppError::BadRequest("inbox.no_number")
        ));
        let sql = AppError::from(DbError::from(rusqlite::Error::QueryReturnedNoRows));
        assert!(matches!(sql, AppError::Db(rusqlite::Error::QueryReturnedNoRows)));
        assert!(matches!(
            DbError::from(AppError::Db(rusqlite::Error::InvalidQuery)),
            DbError::Sqlite(_)
        ));
    }

    #[test]
    fn an_internal_error_keeps_its_source() {
        let stopped = AppError::from(DbError::WriterStopped);
        assert_eq!(stopped.message_key(), "error.internal");
        let source = stopped.source().expect("the store's error is the source");
        assert_eq!(source.to_string(), "the database writer stopped");
        let parse = "x".parse::<i64>().unwrap_err();
        let e = AppError::internal(parse.clone());
        assert_eq!(e.to_string(), parse.to_string());
        assert!(
            e.source()
                .is_some_and(|s| s.downcast_ref::<std::num::ParseIntError>() == Some(&parse))
        );
        assert_eq!(AppError::internal("just a message").to_string(), "just a message");
    }
}
