//! Offline maintenance: key rotation and integrity checks.

use super::{OpenError, open_connection};
use crate::crypto::DbKey;
use std::path::Path;

/// `PRAGMA integrity_check` and `cipher_integrity_check` on the file; returns the
/// problems found.
pub fn integrity_check(path: &Path, key: &DbKey) -> Result<Vec<String>, OpenError> {
    let conn = open_connection(path, key)?;
    problems(&conn, Depth::Full).map_err(|e| OpenError::Other(path.into(), e.to_string()))
}

/// How far a check reads: `Full` is `integrity_check` (indexes against tables too),
/// `Quick` is `quick_check` (what a daily job on a live database can afford).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    Full,
    Quick,
}

/// The problems SQLite's check at `depth` and `cipher_integrity_check` (every page's
/// HMAC) find on an open database; empty is sound.
pub fn problems(conn: &rusqlite::Connection, depth: Depth) -> rusqlite::Result<Vec<String>> {
    let pragma = match depth {
        Depth::Full => "PRAGMA integrity_check",
        Depth::Quick => "PRAGMA quick_check",
    };
    let mut out = Vec::new();
    let mut stmt = conn.prepare(pragma)?;
    for row in stmt.query_map([], |r| r.get::<_, String>(0))? {
        let row = row?;
        if row != "ok" {
            out.push(row);
        }
    }
    let mut stmt = conn.prepare("PRAGMA cipher_integrity_check")?;
    for row in stmt.query_map([], |r| r.get::<_, String>(0))? {
        out.push(row?);
    }
    Ok(out)
}

/// Writes a consistent, encrypted copy of the open database to `target` (0600,
/// under `key`) with `sqlcipher_export`; the directory is made 0700 if needed.
pub fn export_copy(conn: &rusqlite::Connection, target: &Path, key: &DbKey) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = target.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(target)
        .map_err(|e| format!("cannot create {}: {e}", target.display()))?;
    let t = target.to_str().ok_or("backup path is not UTF-8")?.replace('\'', "''");
    // One read transaction around the export: sqlcipher_export copies table by table,
    // and a server writing meanwhile (WAL) would otherwise give each table its own moment.
    conn.execute_batch(&format!(
        "ATTACH DATABASE '{t}' AS backup KEY \"x'{}'\";",
        key.hex().as_str()
    ))
    .map_err(|e| format!("copy to {} failed: {e}", target.display()))?;
    let copied = conn.execute_batch("BEGIN; SELECT sqlcipher_export('backup'); COMMIT;");
    if copied.is_err() {
        drop(conn.execute_batch("ROLLBACK"));
    }
    let detached = conn.execute_batch("DETACH DATABASE backup;");
    copied
        .and(detached)
        .map_err(|e| format!("copy to {} failed: {e}", target.display()))
}

/// Re-encrypts the database under `new_key` (offline: the server must be stopped).
/// The copy is made with `sqlcipher_export` into a new file, verified, then swapped in;
/// the new key is written next to the old one first and only replaces it on success.
pub fn rekey(db_path: &Path, old_key: &DbKey, new_key: &DbKey, key_path: &Path) -> Result<(), String> {
    let tmp_db = db_path.with_extension("db.rekey");
    let new_key_path = key_path.with_extension("key.new");
    for p in [&tmp_db, &new_key_path] {
        if p.exists() {
            return Err(format!(
                "{} exists from an earlier attempt: remove it first",
                p.display()
            ));
        }
    }
    new_key.write_new(&new_key_path)?;
    let result = (|| -> Result<(), String> {
        let conn = open_connection(db_path, old_key).map_err(|e| e.to_string())?;
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .map_err(|e| e.to_string())?;
        export_copy(&conn, &tmp_db, new_key)?;
        drop(conn);
        let problems = integrity_check(&tmp_db, new_key).map_err(|e| e.to_string())?;
        if !problems.is_empty() {
            return Err(format!(
                "the re-encrypted copy failed its check: {}",
                problems.join("; ")
            ));
        }
        Ok(())
    })();
    if let Err(e) = result {
        // Best effort: the error that brought us here is the one to report.
        drop(std::fs::remove_file(&tmp_db));
        drop(std::fs::remove_file(&new_key_path));
        return Err(e);
    }
    // Swap: database first, then the key. Old key kept as db.key.old until both are in place.
    let old_key_backup = key_path.with_extension("key.old");
    for suffix in ["-wal", "-shm"] {
        let side = std::path::PathBuf::from(format!("{}{suffix}", db_path.display()));
        // An old `-wal` next to the new database would be replayed into it: stop here
        // (nothing is swapped yet) unless it is gone.
        match std::fs::remove_file(&side) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(format!("cannot remove {}: {e}", side.display()));
            }
            _ => {}
        }
    }
    std::fs::copy(key_path, &old_key_backup).map_err(|e| format!("cannot back up the old key: {e}"))?;
    std::fs::rename(&tmp_db, db_path).map_err(|e| format!("cannot swap in the new database: {e}"))?;
    std::fs::rename(&new_key_path, key_path).map_err(|e| {
        format!(
            "the database now uses the new key in {}, but it could not be moved to {}: {e}",
            new_key_path.display(),
            key_path.display()
        )
    })?;
    std::fs::remove_file(&old_key_backup).map_err(|e| format!("cannot remove {}: {e}", old_key_backup.display()))?;
    Ok(())
}
