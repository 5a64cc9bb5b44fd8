//! The audit log (P3): every state change, with who, what, when and from where.
//! `record` is called inside the same write transaction as the change it describes.

pub mod routes;

use rusqlite::{Connection, params};
use serde::Serialize;

/// Who did it: a signed-in user, the command line, or the system (jobs).
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: Option<i64>,
    pub label: String,
    pub ip: String,
}

impl Actor {
    pub fn cli() -> Actor {
        let who = std::env::var("SUDO_USER")
            .or_else(|_| std::env::var("USER"))
            .unwrap_or_else(|_| "?".into());
        Actor {
            id: None,
            label: format!("cli ({who})"),
            ip: "local".into(),
        }
    }

    /// The appliance itself (round-robin assignment, jobs).
    pub fn system() -> Actor {
        Actor {
            id: None,
            label: "system".into(),
            ip: String::new(),
        }
    }

    /// A signed-in user acting from `ip`.
    pub fn user(user: &crate::auth::User, ip: &str) -> Actor {
        Actor {
            id: Some(user.id),
            label: user.email.clone(),
            ip: ip.to_string(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub id: i64,
    pub at: i64,
    pub actor_id: Option<i64>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub details: String,
    pub ip: String,
}

pub fn record(
    conn: &Connection,
    actor: &Actor,
    action: &str,
    target: &str,
    details: &str,
    now: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO audit_log (at, actor_id, actor, action, target, details, ip) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![now, actor.id, actor.label, action, target, details, actor.ip],
    )?;
    Ok(())
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Filter {
    pub action: Option<String>,
    pub actor: Option<String>,
    pub target: Option<String>,
    /// `YYYY-MM-DD`, inclusive, UTC.
    pub from: Option<String>,
    pub to: Option<String>,
    /// Show entries older than this id (paging).
    pub before: Option<i64>,
}

fn day_start(s: Option<&str>) -> Option<i64> {
    let s = s?.trim();
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &fmt)
        .ok()
        .map(|d| d.midnight().assume_utc().unix_timestamp())
}

fn nonempty(s: Option<&str>) -> Option<String> {
    s.map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

pub fn list(conn: &Connection, f: &Filter, limit: i64) -> rusqlite::Result<Vec<Entry>> {
    let to = day_start(f.to.as_deref()).map(|t| t + 86_400);
    let mut stmt = conn.prepare(
        "SELECT id, at, actor_id, actor, action, target, details, ip FROM audit_log
         WHERE (?1 IS NULL OR action LIKE ?1 || '%')
           AND (?2 IS NULL OR actor LIKE '%' || ?2 || '%')
           AND (?3 IS NULL OR target LIKE '%' || ?3 || '%')
           AND (?4 IS NULL OR at >= ?4)
           AND (?5 IS NULL OR at < ?5)
           AND (?6 IS NULL OR id < ?6)
         ORDER BY id DESC LIMIT ?7",
    )?;
    let rows = stmt.query_map(
        params![
            nonempty(f.action.as_deref()),
            nonempty(f.actor.as_deref()),
            nonempty(f.target.as_deref()),
            day_start(f.from.as_deref()),
            to,
            f.before,
            limit
        ],
        |r| {
            Ok(Entry {
                id: r.get(0)?,
                at: r.get(1)?,
                actor_id: r.get(2)?,
                actor: r.get(3)?,
                action: r.get(4)?,
                target: r.get(5)?,
                details: r.get(6)?,
                ip: r.get(7)?,
            })
        },
    )?;
    rows.collect()
}

/// Distinct action names, for the filter's choices.
pub fn actions(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT DISTINCT action FROM audit_log ORDER BY action")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    rows.collect()
}

pub fn purge(conn: &Connection, before: i64) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM audit_log WHERE at < ?1", [before])
}

/// CSV (RFC 4180) of the entries; cells that a spreadsheet would run as a formula are
/// prefixed with `'` (CSV injection).
pub fn to_csv(entries: &[Entry]) -> Result<Vec<u8>, String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let e = |e: csv::Error| e.to_string();
    w.write_record(["id", "time_utc", "actor", "action", "target", "details", "ip"])
        .map_err(e)?;
    for en in entries {
        let at = crate::clock::format_unix(en.at, None);
        let row = [
            en.id.to_string(),
            at,
            en.actor.clone(),
            en.action.clone(),
            en.target.clone(),
            en.details.clone(),
            en.ip.clone(),
        ];
        w.write_record(row.iter().map(|c| defuse_formula(c))).map_err(e)?;
    }
    w.into_inner().map_err(|e| e.to_string())
}

/// A cell a spreadsheet would run as a formula, prefixed with `'` (CSV injection).
pub fn defuse_formula(cell: &str) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}"),
        _ => cell.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_defuses_formulas() {
        let e = Entry {
            id: 1,
            at: 0,
            actor_id: None,
            actor: "=cmd|' /C calc'!A0".into(),
            action: "user.create".into(),
            target: "a,b".into(),
            details: String::new(),
            ip: "1.2.3.4".into(),
        };
        let out = String::from_utf8(to_csv(&[e]).unwrap()).unwrap();
        assert!(out.contains("'=cmd"));
        assert!(out.contains("\"a,b\""));
    }
}
