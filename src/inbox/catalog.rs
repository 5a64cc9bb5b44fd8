//! Labels and canned responses: managed by supervisors and admins, used by everyone.

use super::conversations::LabelTag;
use rusqlite::{Connection, OptionalExtension, params};

/// Colours a label may have (CSS classes `label-<colour>`).
pub const COLORS: [&str; 6] = ["grey", "green", "blue", "orange", "red", "purple"];

pub fn list_labels(c: &Connection) -> rusqlite::Result<Vec<LabelTag>> {
    let mut stmt = c.prepare_cached("SELECT id, name, color FROM labels ORDER BY name")?;
    let rows = stmt.query_map([], LabelTag::from_row)?;
    rows.collect()
}

pub fn find_label(c: &Connection, id: i64) -> rusqlite::Result<Option<LabelTag>> {
    c.query_row(
        "SELECT id, name, color FROM labels WHERE id = ?1",
        [id],
        LabelTag::from_row,
    )
    .optional()
}

/// Creates a label; `None` when the name is taken.
pub fn insert_label(c: &Connection, name: &str, color: &str, now: i64) -> rusqlite::Result<Option<i64>> {
    let n = c.execute(
        "INSERT OR IGNORE INTO labels (name, color, created_at) VALUES (?1, ?2, ?3)",
        params![name, color, now],
    )?;
    Ok((n == 1).then(|| c.last_insert_rowid()))
}

pub fn delete_label(c: &Connection, id: i64) -> rusqlite::Result<usize> {
    c.execute("DELETE FROM labels WHERE id = ?1", [id])
}

pub fn list_contact_labels(c: &Connection, contact_id: i64) -> rusqlite::Result<Vec<LabelTag>> {
    let mut stmt = c.prepare_cached(
        "SELECT l.id, l.name, l.color FROM contact_labels cl JOIN labels l ON l.id = cl.label_id
         WHERE cl.contact_id = ?1 ORDER BY l.name",
    )?;
    let rows = stmt.query_map([contact_id], LabelTag::from_row)?;
    rows.collect()
}

pub fn set_contact_label(c: &Connection, contact_id: i64, label_id: i64, on: bool) -> rusqlite::Result<bool> {
    let n = if on {
        c.execute(
            "INSERT OR IGNORE INTO contact_labels (contact_id, label_id) VALUES (?1, ?2)",
            params![contact_id, label_id],
        )?
    } else {
        c.execute(
            "DELETE FROM contact_labels WHERE contact_id = ?1 AND label_id = ?2",
            params![contact_id, label_id],
        )?
    };
    Ok(n == 1)
}

#[derive(Debug, Clone)]
pub struct Canned {
    pub id: i64,
    pub shortcut: String,
    pub body: String,
}

impl Canned {
    /// The text with the contact's placeholders filled: `{{name}}`, `{{phone}}`.
    pub fn fill(&self, name: &str, phone: &str) -> String {
        self.body.replace("{{name}}", name).replace("{{phone}}", phone)
    }
}

pub fn list_canned(c: &Connection) -> rusqlite::Result<Vec<Canned>> {
    let mut stmt = c.prepare_cached("SELECT id, shortcut, body FROM canned_responses ORDER BY shortcut")?;
    let rows = stmt.query_map([], |r| {
        Ok(Canned {
            id: r.get(0)?,
            shortcut: r.get(1)?,
            body: r.get(2)?,
        })
    })?;
    rows.collect()
}

/// Creates a canned response; `None` when the shortcut is taken.
pub fn insert_canned(c: &Connection, shortcut: &str, body: &str, now: i64) -> rusqlite::Result<Option<i64>> {
    let n = c.execute(
        "INSERT OR IGNORE INTO canned_responses (shortcut, body, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
        params![shortcut, body, now],
    )?;
    Ok((n == 1).then(|| c.last_insert_rowid()))
}

pub fn delete_canned(c: &Connection, id: i64) -> rusqlite::Result<Option<String>> {
    let shortcut: Option<String> = c
        .query_row("SELECT shortcut FROM canned_responses WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()?;
    c.execute("DELETE FROM canned_responses WHERE id = ?1", [id])?;
    Ok(shortcut)
}
