//! API keys: `wk_` + 32 random bytes, shown once; only the SHA-256 is stored. The role
//! of the key decides what it may do, exactly as for a person in the UI.

use crate::auth::Role;
use crate::crypto;
use rusqlite::{Connection, OptionalExtension, params};

#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub prefix: String,
    pub created_by: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// Creates a key; returns (id, the secret token to show once).
pub fn create(c: &Connection, name: &str, role: Role, created_by: &str, now: i64) -> rusqlite::Result<(i64, String)> {
    let token = format!("wk_{}", crypto::random_token(32));
    let prefix: String = token.chars().take(10).collect();
    c.execute(
        "INSERT INTO api_keys (name, role, token_hash, prefix, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            name,
            role,
            crypto::sha256_hex(token.as_bytes()),
            prefix,
            created_by,
            now
        ],
    )?;
    Ok((c.last_insert_rowid(), token))
}

/// The live key behind a bearer token.
pub fn find_by_token(c: &Connection, token: &str) -> rusqlite::Result<Option<ApiKey>> {
    c.query_row(
        "SELECT id, name, role, prefix, created_by, created_at, last_used_at, revoked_at FROM api_keys
         WHERE token_hash = ?1 AND revoked_at IS NULL",
        [crypto::sha256_hex(token.as_bytes())],
        from_row,
    )
    .optional()
}

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        id: r.get(0)?,
        name: r.get(1)?,
        role: r.get(2)?,
        prefix: r.get(3)?,
        created_by: r.get(4)?,
        created_at: r.get(5)?,
        last_used_at: r.get(6)?,
        revoked_at: r.get(7)?,
    })
}

pub fn list(c: &Connection) -> rusqlite::Result<Vec<ApiKey>> {
    let mut stmt = c.prepare(
        "SELECT id, name, role, prefix, created_by, created_at, last_used_at, revoked_at FROM api_keys
         ORDER BY revoked_at IS NOT NULL, id DESC",
    )?;
    let rows = stmt.query_map([], from_row)?;
    rows.collect()
}

pub fn revoke(c: &Connection, id: i64, now: i64) -> rusqlite::Result<usize> {
    c.execute(
        "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        params![id, now],
    )
}

pub fn touch(c: &Connection, id: i64, now: i64) -> rusqlite::Result<usize> {
    c.execute("UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1", params![id, now])
}
