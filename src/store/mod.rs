//! The encrypted store: an r2d2 pool of SQLCipher connections for reads, one writer
//! thread for all writes (group commit), embedded migrations, and maintenance (rekey, checks).

mod error;
mod maintenance;
mod migrations;
mod writer;

pub use error::{DbError, DbResult};
pub use maintenance::{Depth, export_copy, integrity_check, problems, rekey};
pub use migrations::{MIGRATIONS, applied_versions, migrate, pending};
pub use writer::Writer;

use crate::crypto::DbKey;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub type Pool = r2d2::Pool<SqliteConnectionManager>;

/// Memory is bounded by these, not by the data: decrypted page cache per reader, for
/// the one writer (it updates every index, so it gets more), and how many readers.
/// 8 readers x 4 MiB + 16 MiB is at most 48 MiB of page cache.
const READER_CACHE_KIB: u32 = 4096;
const WRITER_CACHE_KIB: u32 = 16384;
const READERS: u32 = 8;
/// A reader idle this long is closed, so its cache goes back to the system.
const READER_IDLE: Duration = Duration::from_secs(60);

/// Handle to the database: cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    writer: Writer,
    path: Arc<PathBuf>,
}

/// Errors opening the store, phrased for the person starting the server.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "the database key does not open {0}: wrong key file? (the key must be the one the database was created with)"
    )]
    WrongKey(PathBuf),
    #[error("cannot open database {0}: {1}")]
    Other(PathBuf, String),
}

/// Applies the key and connection settings. The key must be the first statement
/// (SQLCipher >= 4.7), and reading `sqlite_master` right after proves it is right.
pub fn prepare_connection(conn: &Connection, key: &DbKey) -> rusqlite::Result<()> {
    let hex = key.hex();
    conn.execute_batch(&format!("PRAGMA key = \"x'{}'\";", hex.as_str()))?;
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0))?;
    // temp_store=MEMORY: no plaintext temp files. cache_size: decrypted pages kept per
    // connection (SQLCipher decrypts on every miss; the OS still caches the encrypted file).
    conn.execute_batch(&format!(
        "PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 5000;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -{READER_CACHE_KIB};"
    ))?;
    Ok(())
}

fn is_wrong_key(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::NotADatabase))
}

/// Opens one keyed connection (for the writer, the CLI and maintenance).
pub fn open_connection(path: &Path, key: &DbKey) -> Result<Connection, OpenError> {
    let conn = Connection::open(path).map_err(|e| OpenError::Other(path.into(), e.to_string()))?;
    prepare_connection(&conn, key).map_err(|e| {
        if is_wrong_key(&e) {
            OpenError::WrongKey(path.into())
        } else {
            OpenError::Other(path.into(), e.to_string())
        }
    })?;
    Ok(conn)
}

/// Before an upgrade changes the schema of an existing database, an encrypted copy of
/// it goes to `backups/` next to it (same key), so a failed upgrade can be undone.
fn backup_before_schema_change(conn: &Connection, path: &Path, key: &DbKey) -> Result<(), OpenError> {
    let other = |e: String| OpenError::Other(path.into(), e);
    let applied = applied_versions(conn).map_err(|e| other(e.to_string()))?;
    let pending = pending(conn).map_err(other)?;
    if applied.is_empty() || pending.is_empty() {
        return Ok(());
    }
    let dir = path.parent().unwrap_or(Path::new(".")).join("backups");
    let from = applied.iter().max().copied().unwrap_or(0);
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let target = dir.join(format!("whacaster-schema{from}-{stamp}.db"));
    export_copy(conn, &target, key).map_err(other)?;
    tracing::info!(backup = %target.display(), "copied the database before a schema change");
    Ok(())
}

impl Db {
    /// Opens (creating if needed) the database, migrates it and starts the writer.
    pub fn open(path: &Path, key: &DbKey) -> Result<Db, OpenError> {
        if !path.exists() {
            // Created 0600 by us: SQLite gives the -wal and -shm files the same mode.
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| OpenError::Other(path.into(), e.to_string()))?;
        }
        let mut conn = open_connection(path, key)?;
        conn.execute_batch("PRAGMA journal_mode = WAL;")
            .map_err(|e| OpenError::Other(path.into(), e.to_string()))?;
        backup_before_schema_change(&conn, path, key)?;
        migrate(&mut conn).map_err(|e| OpenError::Other(path.into(), format!("migration failed: {e}")))?;

        let init_key = key.clone();
        let manager = SqliteConnectionManager::file(path).with_init(move |c| prepare_connection(c, &init_key));
        let pool = r2d2::Pool::builder()
            .max_size(READERS)
            .idle_timeout(Some(READER_IDLE))
            // No background connection building: a short-lived command can exit without a pool
            // thread keying a connection while OpenSSL tears down (seen as a crash at exit).
            .min_idle(Some(0))
            .connection_timeout(Duration::from_secs(10))
            .build(manager)
            .map_err(|e| OpenError::Other(path.into(), e.to_string()))?;
        // The writer commits with synchronous=FULL: a write it acknowledged survives a power cut.
        // Every delete overwrites what it freed (secure_delete): an erased message, a deleted
        // contact or an edited note leaves no old cell in a free page (PRIVACY-PROMISES P12,
        // P19), whichever feature deleted it; the purge's checkpoint then empties the WAL.
        conn.execute_batch(&format!(
            "PRAGMA synchronous = FULL; PRAGMA cache_size = -{WRITER_CACHE_KIB}; PRAGMA secure_delete = ON;"
        ))
        .map_err(|e| OpenError::Other(path.into(), e.to_string()))?;
        let writer = Writer::start(conn);
        Ok(Db {
            pool,
            writer,
            path: Arc::new(path.to_path_buf()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs read-only work on a pooled connection, off the async workers.
    pub async fn read<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, DbError> + Send + 'static,
    {
        let pool = self.pool.clone();
        actix_web::rt::task::spawn_blocking(move || {
            let conn = pool.get()?;
            f(&conn)
        })
        .await
        .map_err(|e| DbError::Task(e.to_string()))?
    }

    /// Blocking read for CLI commands and jobs already off the async workers.
    pub fn read_blocking<T>(&self, f: impl FnOnce(&Connection) -> Result<T, DbError>) -> Result<T, DbError> {
        let conn = self.pool.get()?;
        f(&conn)
    }

    /// Runs `f` inside the writer's transaction; resolves after the commit.
    pub async fn write<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, DbError> + Send + 'static,
    {
        self.writer.submit(f)?.await.map_err(|_| DbError::WriterStopped)?
    }

    /// The same as `write`, for code that is not async (CLI, blocking jobs).
    pub fn write_blocking<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, DbError> + Send + 'static,
    {
        self.writer
            .submit(f)?
            .blocking_recv()
            .map_err(|_| DbError::WriterStopped)?
    }

    /// Closes the store cleanly: pending writes finish, the writer's connection closes.
    /// Commands call this before the process exits.
    pub fn close(&self) {
        self.writer.stop();
    }

    /// Pool figures for /metrics: (connections, idle).
    pub fn pool_state(&self) -> (u32, u32) {
        let s = self.pool.state();
        (s.connections, s.idle_connections)
    }
}
