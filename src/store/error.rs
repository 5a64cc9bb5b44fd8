//! `DbError`: what can go wrong doing work on the store, for feature code that is not
//! HTTP-shaped (repos, services, jobs). `AppError` converts from it at the edge.

use std::error::Error as StdError;

/// The error of a store call, or of the work run inside one.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database pool: {0}")]
    Pool(#[from] r2d2::Error),
    /// The writer's transaction failed to commit; the work it carried is undone.
    #[error("commit failed: {0}")]
    Commit(String),
    #[error("the database writer stopped")]
    WriterStopped,
    /// The blocking task that ran the read did not finish (it panicked).
    #[error("the database read did not finish: {0}")]
    Task(String),
    /// The work's own error (an `AppError`, say), handed back unchanged: `AppError`'s
    /// `From<DbError>` unwraps it again, so a `NotFound` inside stays a `NotFound`.
    #[error(transparent)]
    Work(Box<dyn StdError + Send + Sync>),
}

pub type DbResult<T> = Result<T, DbError>;
