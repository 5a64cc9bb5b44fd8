//! Policy notices (P22): an admin publishes a notice (a policy change, say); every user
//! sees it as a banner on every page until they acknowledge it, and each
//! acknowledgement is recorded (who, when). Here because every signed-in request asks
//! for the user's pending notice along with the session (`web::middleware`).

use crate::audit::{self, Actor};
use crate::error::FormErrors;
use rusqlite::{Connection, OptionalExtension, params};

/// A notice as the banner shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Notice {
    pub id: i64,
    pub title: String,
    pub body: String,
    pub published_at: i64,
}

/// A notice with its acknowledgements, for the admin page.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Published {
    pub notice: Notice,
    pub published_by: String,
    pub withdrawn_at: Option<i64>,
    pub acks: i64,
    pub users: i64,
}

/// The oldest live notice `user` has not acknowledged yet.
pub fn pending_for(c: &Connection, user: i64) -> rusqlite::Result<Option<Notice>> {
    c.prepare_cached(
        "SELECT id, title, body, published_at FROM policy_notices n
         WHERE withdrawn_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM policy_notice_acks a WHERE a.notice_id = n.id AND a.user_id = ?1)
         ORDER BY id LIMIT 1",
    )?
    .query_row([user], |r| {
        Ok(Notice {
            id: r.get(0)?,
            title: r.get(1)?,
            body: r.get(2)?,
            published_at: r.get(3)?,
        })
    })
    .optional()
}

/// Title 3-200 characters, text 1-5000.
pub fn validate(title: &str, body: &str) -> Result<(String, String), FormErrors> {
    let (title, body) = (title.trim(), body.trim());
    let mut e = FormErrors::default();
    if !(3..=200).contains(&title.chars().count()) {
        e.add("title", "privacy_ops.notices.title_invalid");
    }
    if !(1..=5000).contains(&body.chars().count()) {
        e.add("body", "privacy_ops.notices.body_invalid");
    }
    if e.0.is_empty() {
        Ok((title.to_string(), body.to_string()))
    } else {
        Err(e)
    }
}

pub fn publish(c: &Connection, actor: &Actor, title: &str, body: &str, now: i64) -> rusqlite::Result<i64> {
    c.execute(
        "INSERT INTO policy_notices (title, body, published_at, published_by) VALUES (?1, ?2, ?3, ?4)",
        params![title, body, now, actor.label],
    )?;
    let id = c.last_insert_rowid();
    audit::record(c, actor, "notice.publish", &format!("notice:{id}"), title, now)?;
    Ok(id)
}

/// Stops showing a notice (its acknowledgements stay). False when there was none live.
pub fn withdraw(c: &Connection, actor: &Actor, id: i64, now: i64) -> rusqlite::Result<bool> {
    let n = c.execute(
        "UPDATE policy_notices SET withdrawn_at = ?2 WHERE id = ?1 AND withdrawn_at IS NULL",
        params![id, now],
    )?;
    if n > 0 {
        audit::record(c, actor, "notice.withdraw", &format!("notice:{id}"), "", now)?;
    }
    Ok(n > 0)
}

/// Records that `user` read the notice (once; audited). False for an unknown or
/// withdrawn notice.
pub fn acknowledge(c: &Connection, actor: &Actor, user: i64, id: i64, now: i64) -> rusqlite::Result<bool> {
    let live: Option<i64> = c
        .query_row(
            "SELECT id FROM policy_notices WHERE id = ?1 AND withdrawn_at IS NULL",
            [id],
            |r| r.get(0),
        )
        .optional()?;
    if live.is_none() {
        return Ok(false);
    }
    let n = c.execute(
        "INSERT OR IGNORE INTO policy_notice_acks (notice_id, user_id, at) VALUES (?1, ?2, ?3)",
        params![id, user, now],
    )?;
    if n > 0 {
        audit::record(c, actor, "notice.acknowledge", &format!("notice:{id}"), "", now)?;
    }
    Ok(true)
}

pub fn list(c: &Connection) -> rusqlite::Result<Vec<Published>> {
    let users: i64 = c.query_row("SELECT count(*) FROM users WHERE active = 1", [], |r| r.get(0))?;
    let mut stmt = c.prepare(
        "SELECT n.id, n.title, n.body, n.published_at, n.published_by, n.withdrawn_at,
                (SELECT count(*) FROM policy_notice_acks a WHERE a.notice_id = n.id)
         FROM policy_notices n ORDER BY n.id DESC LIMIT 50",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Published {
            notice: Notice {
                id: r.get(0)?,
                title: r.get(1)?,
                body: r.get(2)?,
                published_at: r.get(3)?,
            },
            published_by: r.get(4)?,
            withdrawn_at: r.get(5)?,
            acks: r.get(6)?,
            users,
        })
    })?;
    rows.collect()
}

/// Who acknowledged a notice and when: (e-mail, time).
pub fn acknowledgements(c: &Connection, id: i64) -> rusqlite::Result<Vec<(String, i64)>> {
    let mut stmt = c.prepare(
        "SELECT u.email, a.at FROM policy_notice_acks a JOIN users u ON u.id = a.user_id
         WHERE a.notice_id = ?1 ORDER BY a.at",
    )?;
    let rows = stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}
