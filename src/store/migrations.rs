//! Numbered SQL migrations from `migrations/`, embedded in the binary, each applied
//! once in its own transaction and recorded in `schema_migrations`.

use rusqlite::Connection;

#[derive(rust_embed::RustEmbed)]
#[folder = "migrations/"]
struct MigrationFiles;

/// (version, file name) of every embedded migration, in order.
pub static MIGRATIONS: std::sync::LazyLock<Vec<(i64, String)>> = std::sync::LazyLock::new(|| {
    let mut v: Vec<(i64, String)> = MigrationFiles::iter()
        .filter_map(|name| {
            let version = name.split('_').next()?.parse().ok()?;
            Some((version, name.to_string()))
        })
        .collect();
    v.sort();
    v
});

pub fn applied_versions(conn: &Connection) -> rusqlite::Result<Vec<i64>> {
    let exists: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
        [],
        |r| r.get(0),
    )?;
    if exists == 0 {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare("SELECT version FROM schema_migrations ORDER BY version")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    rows.collect()
}

/// Versions embedded in this binary but not yet applied to the database.
pub fn pending(conn: &Connection) -> Result<Vec<i64>, String> {
    let done = applied_versions(conn).map_err(|e| e.to_string())?;
    Ok(MIGRATIONS
        .iter()
        .map(|(v, _)| *v)
        .filter(|v| !done.contains(v))
        .collect())
}

/// Applies what is missing; returns the versions applied now.
pub fn migrate(conn: &mut Connection) -> Result<Vec<i64>, String> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at INTEGER NOT NULL
         )",
    )
    .map_err(|e| e.to_string())?;
    let done = applied_versions(conn).map_err(|e| e.to_string())?;
    let mut applied = Vec::new();
    for (version, name) in MIGRATIONS.iter() {
        if done.contains(version) {
            continue;
        }
        let file = MigrationFiles::get(name).ok_or_else(|| format!("migration {name} missing"))?;
        let sql = std::str::from_utf8(&file.data).map_err(|e| format!("{name}: {e}"))?;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| e.to_string())?;
        tx.execute_batch(sql).map_err(|e| format!("{name}: {e}"))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, unixepoch())",
            rusqlite::params![version, name],
        )
        .map_err(|e| format!("{name}: {e}"))?;
        tx.commit().map_err(|e| format!("{name}: {e}"))?;
        tracing::info!(migration = %name, "applied migration");
        applied.push(*version);
    }
    Ok(applied)
}
