//! Labels and canned responses: managed by supervisors and admins, used by everyone.
//! Their SQL, and the checked changes that write the audit line with the row.

use super::conversations::LabelTag;
use crate::audit::{self, Actor};
use crate::error::{AppError, AppResult};
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

// ---- changes (checked, audited) ------------------------------------------------------

/// A label as the form gives it: the name trimmed, an unknown colour made grey.
pub struct NewLabel {
    pub name: String,
    pub color: String,
}

impl NewLabel {
    pub fn new(name: &str, color: &str) -> NewLabel {
        let color = if COLORS.contains(&color) { color } else { "grey" };
        NewLabel {
            name: name.trim().to_string(),
            color: color.to_string(),
        }
    }
}

/// Why a label was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelError {
    /// Empty, or longer than 40 characters.
    Name,
    Taken,
}

impl LabelError {
    /// The form's message.
    pub fn key(self) -> &'static str {
        match self {
            LabelError::Name => "inbox.label_name",
            LabelError::Taken => "inbox.label_taken",
        }
    }
}

/// Creates a label, audited; its id, or why not.
pub fn create_label(c: &Connection, actor: &Actor, l: &NewLabel, now: i64) -> AppResult<Result<i64, LabelError>> {
    if l.name.is_empty() || l.name.chars().count() > 40 {
        return Ok(Err(LabelError::Name));
    }
    let Some(id) = insert_label(c, &l.name, &l.color, now)? else {
        return Ok(Err(LabelError::Taken));
    };
    audit::record(c, actor, "label.create", &format!("label:{id}"), &l.name, now)?;
    Ok(Ok(id))
}

/// Deletes a label (from every conversation and contact too), audited; 404 when absent.
pub fn remove_label(c: &Connection, actor: &Actor, id: i64, now: i64) -> AppResult<()> {
    let l = find_label(c, id)?.ok_or(AppError::NotFound)?;
    delete_label(c, id)?;
    audit::record(c, actor, "label.delete", &format!("label:{id}"), &l.name, now)?;
    Ok(())
}

/// A canned response as the form gives it: the shortcut without its `/`, lower case;
/// both trimmed.
pub struct NewCanned {
    pub shortcut: String,
    pub body: String,
}

impl NewCanned {
    pub fn new(shortcut: &str, body: &str) -> NewCanned {
        NewCanned {
            shortcut: shortcut.trim().trim_start_matches('/').to_lowercase(),
            body: body.trim().to_string(),
        }
    }
}

/// Why a canned response was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CannedError {
    /// Empty, longer than 30, or not letters, digits, `-` and `_`.
    Shortcut,
    /// Empty, or longer than a text message may be.
    Body,
    ShortcutTaken,
}

impl CannedError {
    /// The form's message.
    pub fn key(self) -> &'static str {
        match self {
            CannedError::Shortcut => "inbox.shortcut_invalid",
            CannedError::Body => "inbox.canned_body",
            CannedError::ShortcutTaken => "inbox.shortcut_taken",
        }
    }
}

/// Creates a canned response, audited; its id, or why not.
pub fn create_canned(c: &Connection, actor: &Actor, n: &NewCanned, now: i64) -> AppResult<Result<i64, CannedError>> {
    let valid_shortcut = !n.shortcut.is_empty()
        && n.shortcut.len() <= 30
        && n.shortcut
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid_shortcut {
        return Ok(Err(CannedError::Shortcut));
    }
    if n.body.is_empty() || n.body.chars().count() > super::reply::MAX_TEXT {
        return Ok(Err(CannedError::Body));
    }
    let Some(id) = insert_canned(c, &n.shortcut, &n.body, now)? else {
        return Ok(Err(CannedError::ShortcutTaken));
    };
    audit::record(c, actor, "canned.create", &format!("canned:{id}"), &n.shortcut, now)?;
    Ok(Ok(id))
}

/// Deletes a canned response, audited; 404 when absent.
pub fn remove_canned(c: &Connection, actor: &Actor, id: i64, now: i64) -> AppResult<()> {
    let s = delete_canned(c, id)?.ok_or(AppError::NotFound)?;
    audit::record(c, actor, "canned.delete", &format!("canned:{id}"), &s, now)?;
    Ok(())
}
