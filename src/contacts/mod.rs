//! Contacts: the people who write to the business. A contact is found by its
//! business-scoped user id (BSUID) first, then by its WhatsApp id (phone), and learns
//! whichever of the two it did not know yet.

use rusqlite::{Connection, OptionalExtension, params};

/// What a channel knows about a person.
#[derive(Debug, Clone, Default)]
pub struct Identity<'a> {
    pub wa_id: Option<&'a str>,
    pub bsuid: Option<&'a str>,
    pub profile_name: Option<&'a str>,
    pub username: Option<&'a str>,
}

/// The contact for `who`, created when new; `None` when `who` carries no id at all.
pub fn upsert(conn: &Connection, who: &Identity<'_>, now: i64) -> rusqlite::Result<Option<i64>> {
    let by_bsuid = match who.bsuid {
        Some(b) => conn
            .query_row("SELECT id FROM contacts WHERE bsuid = ?1", [b], |r| r.get::<_, i64>(0))
            .optional()?,
        None => None,
    };
    let by_wa = match who.wa_id {
        Some(w) => conn
            .query_row("SELECT id FROM contacts WHERE wa_id = ?1", [w], |r| r.get::<_, i64>(0))
            .optional()?,
        None => None,
    };
    let id = match (by_bsuid, by_wa) {
        (Some(id), _) | (None, Some(id)) => id,
        (None, None) => {
            if who.bsuid.is_none() && who.wa_id.is_none() {
                return Ok(None);
            }
            conn.execute(
                "INSERT INTO contacts (bsuid, wa_id, profile_name, username, created_at, last_seen_at)
                 VALUES (?1, ?2, coalesce(?3, ''), ?4, ?5, ?5)",
                params![who.bsuid, who.wa_id, who.profile_name, who.username, now],
            )?;
            return Ok(Some(conn.last_insert_rowid()));
        }
    };
    // Fill in what was missing; never take an id away (a later message may omit the phone).
    conn.execute(
        "UPDATE contacts SET
             bsuid = coalesce(bsuid, ?2),
             wa_id = CASE WHEN wa_id IS NULL AND NOT EXISTS (SELECT 1 FROM contacts WHERE wa_id = ?3) THEN ?3 ELSE wa_id END,
             profile_name = coalesce(nullif(?4, ''), profile_name),
             username = coalesce(?5, username),
             last_seen_at = max(coalesce(last_seen_at, 0), ?6)
         WHERE id = ?1",
        params![id, who.bsuid, who.wa_id, who.profile_name, who.username, now],
    )?;
    Ok(Some(id))
}
