//! SQL for connected numbers. Secrets are read only where they are used.

use rusqlite::{Connection, OptionalExtension, Row, params};

/// A number as pages show it: no secrets.
#[derive(Debug, Clone)]
pub struct Number {
    pub id: i64,
    pub display_name: String,
    pub phone_number_id: String,
    pub waba_id: String,
    pub business_manager_id: String,
    pub verify_token: String,
    pub mps: i64,
    pub created_at: i64,
    /// Why sending is paused (Meta said the token or account is not usable).
    pub paused_reason: Option<String>,
    /// The Meta app's id: the Resumable Upload API (media header samples) needs it.
    pub meta_app_id: String,
    /// The portfolio's daily messaging limit as set on the number page (`None`: not
    /// known; -1: unlimited).
    pub messaging_limit: Option<i64>,
}

const COLS: &str = "id, display_name, phone_number_id, waba_id, business_manager_id, verify_token, mps, created_at,
    paused_reason, meta_app_id, messaging_limit";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Number> {
    Ok(Number {
        id: r.get(0)?,
        display_name: r.get(1)?,
        phone_number_id: r.get(2)?,
        waba_id: r.get(3)?,
        business_manager_id: r.get(4)?,
        verify_token: r.get(5)?,
        mps: r.get(6)?,
        created_at: r.get(7)?,
        paused_reason: r.get(8)?,
        meta_app_id: r.get(9)?,
        messaging_limit: r.get(10)?,
    })
}

pub struct NewNumber<'a> {
    pub display_name: &'a str,
    pub phone_number_id: &'a str,
    pub waba_id: &'a str,
    pub business_manager_id: &'a str,
    pub access_token: &'a str,
    pub app_secret: &'a str,
    pub verify_token: &'a str,
    pub mps: i64,
    pub meta_app_id: &'a str,
}

pub fn insert_number(conn: &Connection, n: &NewNumber<'_>, now: i64) -> rusqlite::Result<i64> {
    conn.execute(
        "INSERT INTO wa_numbers (display_name, phone_number_id, waba_id, business_manager_id, access_token,
                                 app_secret, verify_token, mps, created_at, updated_at, meta_app_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10)",
        params![
            n.display_name,
            n.phone_number_id,
            n.waba_id,
            n.business_manager_id,
            n.access_token,
            n.app_secret,
            n.verify_token,
            n.mps,
            now,
            n.meta_app_id
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Updates the plain fields; a secret is replaced only when a new one is given.
pub fn update_number(conn: &Connection, id: i64, n: &NewNumber<'_>, now: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE wa_numbers SET display_name = ?2, phone_number_id = ?3, waba_id = ?4, business_manager_id = ?5,
                access_token = CASE WHEN ?6 = '' THEN access_token ELSE ?6 END,
                paused_reason = CASE WHEN ?6 = '' THEN paused_reason ELSE NULL END,
                app_secret = CASE WHEN ?7 = '' THEN app_secret ELSE ?7 END,
                mps = ?8, updated_at = ?9, meta_app_id = ?10
         WHERE id = ?1",
        params![
            id,
            n.display_name,
            n.phone_number_id,
            n.waba_id,
            n.business_manager_id,
            n.access_token,
            n.app_secret,
            n.mps,
            now,
            n.meta_app_id
        ],
    )
}

/// One number (the first) of each WhatsApp Business Account.
pub fn list_one_number_per_waba(conn: &Connection) -> rusqlite::Result<Vec<i64>> {
    let mut stmt = conn.prepare("SELECT min(id) FROM wa_numbers GROUP BY waba_id")?;
    let rows = stmt.query_map([], |r| r.get::<_, i64>(0))?;
    rows.collect()
}

/// What a Graph call for this number needs.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub phone_number_id: String,
    pub waba_id: String,
    pub access_token: crate::crypto::Secret,
    /// Empty when not set on the number's page.
    pub meta_app_id: String,
}

fn credentials_row(r: &Row<'_>) -> rusqlite::Result<Credentials> {
    Ok(Credentials {
        phone_number_id: r.get(0)?,
        waba_id: r.get(1)?,
        access_token: r.get(2)?,
        meta_app_id: r.get(3)?,
    })
}

pub fn find_credentials(conn: &Connection, id: i64) -> rusqlite::Result<Option<Credentials>> {
    conn.query_row(
        "SELECT phone_number_id, waba_id, access_token, meta_app_id FROM wa_numbers WHERE id = ?1",
        [id],
        credentials_row,
    )
    .optional()
}

/// Credentials for account-level calls (templates) on a WABA: the first of its numbers
/// that has a Meta app id, else its first number.
pub fn find_credentials_for_waba(conn: &Connection, waba_id: &str) -> rusqlite::Result<Option<Credentials>> {
    conn.query_row(
        "SELECT phone_number_id, waba_id, access_token, meta_app_id FROM wa_numbers WHERE waba_id = ?1
         ORDER BY meta_app_id = '', id LIMIT 1",
        [waba_id],
        credentials_row,
    )
    .optional()
}

/// The WhatsApp Business Accounts, each by its first number: (number id, display name, WABA id).
pub fn list_accounts(conn: &Connection) -> rusqlite::Result<Vec<(i64, String, String)>> {
    conn.prepare(
        "SELECT n.id, n.display_name, n.waba_id FROM wa_numbers n
         WHERE n.id = (SELECT min(m.id) FROM wa_numbers m WHERE m.waba_id = n.waba_id) ORDER BY n.display_name",
    )?
    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
    .collect()
}

/// A piece of news from Meta about an account (template status, quality, limits).
#[derive(Debug, Clone)]
pub struct News {
    pub at: i64,
    pub field: String,
    pub event: String,
    pub summary: String,
}

/// A piece of news to record (what Meta said about an account, or why sending paused).
pub struct NewsEntry<'a> {
    pub waba_id: &'a str,
    pub phone_number_id: &'a str,
    pub field: &'a str,
    pub event: &'a str,
    pub summary: &'a str,
}

pub fn record_news(conn: &Connection, n: &NewsEntry<'_>, at: i64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO wa_account_events (at, waba_id, phone_number_id, field, event, summary)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![at, n.waba_id, n.phone_number_id, n.field, n.event, n.summary],
    )?;
    Ok(())
}

/// Stops sending on a number (Meta said the channel is broken) and says why on its page.
pub fn pause(conn: &Connection, number_id: i64, reason: &str, at: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE wa_numbers SET paused_reason = ?2 WHERE id = ?1",
        params![number_id, reason],
    )?;
    let ids: Option<(String, String)> = conn
        .query_row(
            "SELECT waba_id, phone_number_id FROM wa_numbers WHERE id = ?1",
            [number_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((waba_id, phone_number_id)) = ids {
        let news = NewsEntry {
            waba_id: &waba_id,
            phone_number_id: &phone_number_id,
            field: "sending",
            event: "PAUSED",
            summary: reason,
        };
        record_news(conn, &news, at)?;
    }
    Ok(())
}

pub fn list_news(conn: &Connection, waba_id: &str, phone_number_id: &str) -> rusqlite::Result<Vec<News>> {
    let mut stmt = conn.prepare(
        "SELECT at, field, event, summary FROM wa_account_events
         WHERE waba_id = ?1 OR phone_number_id = ?2 ORDER BY id DESC LIMIT 20",
    )?;
    let rows = stmt.query_map(params![waba_id, phone_number_id], |r| {
        Ok(News {
            at: r.get(0)?,
            field: r.get(1)?,
            event: r.get(2)?,
            summary: r.get(3)?,
        })
    })?;
    rows.collect()
}

pub fn delete_number(conn: &Connection, id: i64) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM wa_numbers WHERE id = ?1", [id])
}

pub fn list_numbers(conn: &Connection) -> rusqlite::Result<Vec<Number>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLS} FROM wa_numbers ORDER BY display_name COLLATE NOCASE"
    ))?;
    let rows = stmt.query_map([], from_row)?;
    rows.collect()
}

pub fn find_number(conn: &Connection, id: i64) -> rusqlite::Result<Option<Number>> {
    conn.query_row(&format!("SELECT {COLS} FROM wa_numbers WHERE id = ?1"), [id], from_row)
        .optional()
}

/// The connected numbers for a choice in a form: (phone number id, display name).
pub fn choices(conn: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    Ok(list_numbers(conn)?
        .into_iter()
        .map(|n| (n.phone_number_id, n.display_name))
        .collect())
}

pub fn phone_number_id_taken(conn: &Connection, phone_number_id: &str, except: Option<i64>) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM wa_numbers WHERE phone_number_id = ?1 AND id IS NOT ?2",
        params![phone_number_id, except],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// Distinct app secrets and verify tokens of all numbers (several numbers may share an app).
/// A connected number's webhook keys.
#[derive(Debug, Clone)]
pub struct WebhookKey {
    pub phone_number_id: String,
    pub waba_id: String,
    pub app_secret: crate::crypto::Secret,
    pub verify_token: crate::crypto::Secret,
}

pub fn list_webhook_keys(conn: &Connection) -> rusqlite::Result<Vec<WebhookKey>> {
    conn.prepare("SELECT phone_number_id, waba_id, app_secret, verify_token FROM wa_numbers ORDER BY id")?
        .query_map([], |r| {
            Ok(WebhookKey {
                phone_number_id: r.get(0)?,
                waba_id: r.get(1)?,
                app_secret: r.get(2)?,
                verify_token: r.get(3)?,
            })
        })?
        .collect()
}

/// The phone number ids of every connected number.
pub fn list_phone_number_ids(conn: &Connection) -> rusqlite::Result<std::collections::HashSet<String>> {
    conn.prepare_cached("SELECT phone_number_id FROM wa_numbers")?
        .query_map([], |r| r.get(0))?
        .collect()
}
