//! Message templates, synced read-only from each WABA: on demand (the number's page)
//! and every few hours (scheduled job); status webhooks keep them current in between.

use super::graph::GraphClient;
use super::graph::TemplateInfo;
use crate::store::Db;
use rusqlite::{Connection, params};

/// A template as pages show it.
#[derive(Debug, Clone)]
pub struct Template {
    pub name: String,
    pub language: String,
    pub status: String,
    pub category: String,
    pub quality: String,
    pub body_text: String,
    pub param_count: i64,
}

impl Template {
    /// How a form names it: `name|language`.
    pub fn key(&self) -> String {
        format!("{}|{}", self.name, self.language)
    }
}

/// Replaces the templates of a WABA with what Meta has now.
pub fn replace_for_waba(
    c: &Connection,
    waba_id: &str,
    templates: &[TemplateInfo],
    now: i64,
) -> rusqlite::Result<usize> {
    c.execute("DELETE FROM wa_templates WHERE waba_id = ?1", [waba_id])?;
    let mut stmt = c.prepare(
        "INSERT OR REPLACE INTO wa_templates (waba_id, meta_id, name, language, status, category, quality, named_params,
                                              header_text, body_text, footer_text, param_count, synced_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?;
    for t in templates {
        stmt.execute(params![
            waba_id,
            t.meta_id,
            t.name,
            t.language,
            t.status,
            t.category,
            t.quality,
            t.named_params,
            t.header_text,
            t.body_text,
            t.footer_text,
            i64::try_from(t.param_count).unwrap_or(0),
            now
        ])?;
    }
    Ok(templates.len())
}

pub fn list_for_waba(c: &Connection, waba_id: &str) -> rusqlite::Result<Vec<Template>> {
    let mut stmt = c.prepare(
        "SELECT name, language, status, category, quality, body_text, param_count FROM wa_templates
         WHERE waba_id = ?1 ORDER BY name, language",
    )?;
    let rows = stmt.query_map([waba_id], |r| {
        Ok(Template {
            name: r.get(0)?,
            language: r.get(1)?,
            status: r.get(2)?,
            category: r.get(3)?,
            quality: r.get(4)?,
            body_text: r.get(5)?,
            param_count: r.get(6)?,
        })
    })?;
    rows.collect()
}

/// The approved templates of a WABA (what agents may send).
pub fn list_approved(c: &Connection, waba_id: &str) -> rusqlite::Result<Vec<Template>> {
    Ok(list_for_waba(c, waba_id)?
        .into_iter()
        .filter(|t| t.status.eq_ignore_ascii_case("approved"))
        .collect())
}

/// One approved template of a WABA: (body text, parameter count).
pub fn find_approved(
    c: &Connection,
    waba_id: &str,
    name: &str,
    language: &str,
) -> rusqlite::Result<Option<(String, i64)>> {
    use rusqlite::OptionalExtension;
    c.query_row(
        "SELECT body_text, param_count FROM wa_templates
         WHERE waba_id = ?1 AND name = ?2 AND language = ?3 AND upper(status) = 'APPROVED'",
        params![waba_id, name, language],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

/// The category (MARKETING, UTILITY, AUTHENTICATION) of a WABA's template; `None`
/// when there is no such template.
pub fn find_category(c: &Connection, waba_id: &str, name: &str, language: &str) -> rusqlite::Result<Option<String>> {
    use rusqlite::OptionalExtension;
    c.query_row(
        "SELECT category FROM wa_templates WHERE waba_id = ?1 AND name = ?2 AND language = ?3",
        params![waba_id, name, language],
        |r| r.get(0),
    )
    .optional()
}

/// A status webhook (`message_template_status_update`) between two syncs.
pub fn set_status(c: &Connection, waba_id: &str, name: &str, language: &str, status: &str) -> rusqlite::Result<usize> {
    c.execute(
        "UPDATE wa_templates SET status = ?4 WHERE waba_id = ?1 AND name = ?2 AND language = ?3",
        params![waba_id, name, language, status],
    )
}

/// Syncs the templates of one number's WABA; returns how many there are.
pub async fn sync_number(db: &Db, graph: &GraphClient, now: i64, number_id: i64) -> Result<usize, String> {
    let creds = db
        .read(move |c| Ok(super::numbers::repo::find_credentials(c, number_id)?))
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no such number")?;
    let waba_id = creds.waba_id;
    let templates = graph
        .templates(&waba_id, creds.access_token.expose())
        .await
        .map_err(|e| e.to_string())?;
    db.write(move |c| Ok(replace_for_waba(c, &waba_id, &templates, now)?))
        .await
        .map_err(|e| e.to_string())
}

/// The job `sync_message_templates`: every WABA once (numbers sharing a WABA are synced once).
pub async fn sync_all(db: &Db, graph: &GraphClient, now: i64) -> Result<String, String> {
    let numbers = db
        .read(|c| Ok(super::numbers::repo::list_one_number_per_waba(c)?))
        .await
        .map_err(|e| e.to_string())?;
    let (mut total, mut failures) = (0, Vec::new());
    for id in &numbers {
        match sync_number(db, graph, now, *id).await {
            Ok(n) => total += n,
            Err(e) => failures.push(format!("number {id}: {e}")),
        }
    }
    if failures.is_empty() {
        Ok(format!("{total} templates of {} accounts synced", numbers.len()))
    } else {
        Err(failures.join("; "))
    }
}
