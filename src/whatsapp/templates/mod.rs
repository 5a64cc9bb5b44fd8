//! Message templates of each WhatsApp Business Account: made in the app (`draft` checks
//! them, `service` submits and deletes them), found by the sync (on demand and every few
//! hours), and kept current by Meta's three template webhooks (`apply_news`). `usable`
//! is the one question everything that would send a template asks.

pub mod draft;
pub mod routes;
pub mod service;

use super::graph::GraphClient;
use super::graph::TemplateInfo;
use crate::audit::{self, Actor};
use crate::store::Db;
pub use draft::{Button, Category, Draft, Examples, Header, Preview, Problem};
use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row, params};

/// Where a template stands with Meta. Only `Approved` can be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Approved,
    Pending,
    Rejected,
    Paused,
    Disabled,
    InAppeal,
    PendingDeletion,
    Deleted,
    LimitExceeded,
    Archived,
    /// A word Meta may add later; kept as Meta wrote it, and not sendable.
    Other(String),
}

impl Status {
    pub fn as_str(&self) -> &str {
        match self {
            Status::Approved => "APPROVED",
            Status::Pending => "PENDING",
            Status::Rejected => "REJECTED",
            Status::Paused => "PAUSED",
            Status::Disabled => "DISABLED",
            Status::InAppeal => "IN_APPEAL",
            Status::PendingDeletion => "PENDING_DELETION",
            Status::Deleted => "DELETED",
            Status::LimitExceeded => "LIMIT_EXCEEDED",
            Status::Archived => "ARCHIVED",
            Status::Other(s) => s,
        }
    }

    pub fn parse(s: &str) -> Status {
        match s.trim().to_ascii_uppercase().as_str() {
            "APPROVED" => Status::Approved,
            "PENDING" => Status::Pending,
            "REJECTED" => Status::Rejected,
            "PAUSED" => Status::Paused,
            "DISABLED" => Status::Disabled,
            "IN_APPEAL" => Status::InAppeal,
            "PENDING_DELETION" => Status::PendingDeletion,
            "DELETED" => Status::Deleted,
            "LIMIT_EXCEEDED" => Status::LimitExceeded,
            "ARCHIVED" => Status::Archived,
            other => Status::Other(other.to_string()),
        }
    }

    /// The status a `message_template_status_update` event leaves a template in; `None`
    /// when the event is news without a change of status (FLAGGED leaves it APPROVED,
    /// LOCKED only stops edits). A paused template coming back is sent as APPROVED.
    pub fn after_event(event: &str) -> Option<Status> {
        match event.trim().to_ascii_uppercase().as_str() {
            "FLAGGED" | "LOCKED" | "UNLOCKED" | "" => None,
            // Reinstated after an appeal, or brought back from the archive: sendable again
            // (the next sync corrects it should Meta say otherwise).
            "REINSTATED" | "UNARCHIVED" | "UNPAUSED" => Some(Status::Approved),
            other => Some(Status::parse(other)),
        }
    }

    /// A CSS class for its badge.
    pub fn tone(&self) -> &'static str {
        match self {
            Status::Approved => "ok",
            Status::Pending | Status::InAppeal => "",
            _ => "bad",
        }
    }
}

impl ToSql for Status {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for Status {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        v.as_str().map(Status::parse)
    }
}

/// Meta's quality rating of a template (new ones are `Unknown`, "quality pending").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quality {
    Green,
    Yellow,
    Red,
    Unknown,
}

impl Quality {
    pub fn as_str(self) -> &'static str {
        match self {
            Quality::Green => "GREEN",
            Quality::Yellow => "YELLOW",
            Quality::Red => "RED",
            Quality::Unknown => "UNKNOWN",
        }
    }

    pub fn parse(s: &str) -> Quality {
        match s.trim().to_ascii_uppercase().as_str() {
            "GREEN" | "HIGH" => Quality::Green,
            "YELLOW" | "MEDIUM" => Quality::Yellow,
            "RED" | "LOW" => Quality::Red,
            _ => Quality::Unknown,
        }
    }
}

/// A template as the app keeps it.
#[derive(Debug, Clone)]
pub struct Template {
    pub id: i64,
    pub waba_id: String,
    pub meta_id: String,
    pub name: String,
    pub language: String,
    pub status: Status,
    pub category: String,
    pub quality: Quality,
    pub named_params: bool,
    /// `""`, `TEXT`, `IMAGE`, `VIDEO`, `DOCUMENT`.
    pub header_format: String,
    pub header_text: String,
    pub body_text: String,
    pub footer_text: String,
    pub buttons: Vec<Button>,
    pub examples: Examples,
    pub param_count: i64,
    /// Meta's reason code (INVALID_FORMAT, PROMOTIONAL…) and its own words, when rejected.
    pub rejection_reason: String,
    pub rejection_detail: String,
    /// A category change Meta announced: `NEW_CATEGORY|unix time` (empty: none).
    pub category_change: String,
    /// Who made it here (empty: made elsewhere, found by the sync).
    pub created_by: String,
    pub created_at: Option<i64>,
    pub updated_at: i64,
}

/// Why a template may not be sent now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unusable(pub Status);

impl Unusable {
    /// The catalogue key that says why.
    pub fn key(&self) -> &'static str {
        match self.0 {
            Status::Pending | Status::InAppeal => "templates.unusable.pending",
            Status::Rejected => "templates.unusable.rejected",
            Status::Paused => "templates.unusable.paused",
            Status::Disabled => "templates.unusable.disabled",
            _ => "templates.unusable.other",
        }
    }
}

/// May this template be sent now? Only an approved one: a paused, disabled, rejected or
/// pending template is refused by Meta (and a campaign must hold, not burn its audience).
pub fn usable(t: &Template) -> Result<(), Unusable> {
    match t.status {
        Status::Approved => Ok(()),
        ref other => Err(Unusable(other.clone())),
    }
}

impl Template {
    /// How a form names it: `name|language`.
    pub fn key(&self) -> String {
        format!("{}|{}", self.name, self.language)
    }

    pub fn usable(&self) -> Result<(), Unusable> {
        usable(self)
    }

    /// The draft it was made from, as far as it is kept (for the preview).
    pub fn as_draft(&self) -> Draft {
        let header = match self.header_format.as_str() {
            "TEXT" => Header::Text {
                text: self.header_text.clone(),
                example: self.examples.header.clone(),
            },
            "IMAGE" => Header::Image,
            "VIDEO" => Header::Video,
            "DOCUMENT" => Header::Document,
            _ if !self.header_text.is_empty() => Header::Text {
                text: self.header_text.clone(),
                example: self.examples.header.clone(),
            },
            _ => Header::None,
        };
        Draft {
            name: self.name.clone(),
            category: self.category.clone(),
            language: self.language.clone(),
            header,
            body: self.body_text.clone(),
            examples: self.examples.body.clone(),
            footer: self.footer_text.clone(),
            buttons: self.buttons.clone(),
        }
    }

    pub fn preview(&self) -> Preview {
        self.as_draft().preview()
    }

    /// Whether everything it needs at send time is body text: no header variable, no
    /// media header, no link variable (what the inbox's picker can fill in today).
    pub fn body_only(&self) -> bool {
        let media = matches!(self.header_format.as_str(), "IMAGE" | "VIDEO" | "DOCUMENT");
        !media && self.body_and_media_only()
    }

    /// Whether body text and a header file are all it needs at send time (what a
    /// campaign fills in): no header variable, no location header, no link variable.
    pub fn body_and_media_only(&self) -> bool {
        let url_var = self
            .buttons
            .iter()
            .any(|b| matches!(b, Button::Url { url, .. } if url.contains("{{")));
        self.header_format != "LOCATION" && !self.header_text.contains("{{") && !url_var
    }

    /// The coming category change: (new category, when).
    pub fn coming_category(&self) -> Option<(String, i64)> {
        let (cat, at) = self.category_change.split_once('|')?;
        Some((cat.to_string(), at.parse().ok()?))
    }

    /// The rejection, when it is one: (reason code, Meta's words).
    pub fn rejection(&self) -> Option<(&str, &str)> {
        (self.status == Status::Rejected).then_some((self.rejection_reason.as_str(), self.rejection_detail.as_str()))
    }
}

const COLS: &str = "id, waba_id, meta_id, name, language, status, category, quality, named_params, header_format,
    header_text, body_text, footer_text, buttons, examples, param_count, rejection_reason, rejection_detail,
    category_change, created_by, created_at, max(updated_at, synced_at)";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Template> {
    let buttons: String = r.get(13)?;
    let examples: String = r.get(14)?;
    Ok(Template {
        id: r.get(0)?,
        waba_id: r.get(1)?,
        meta_id: r.get(2)?,
        name: r.get(3)?,
        language: r.get(4)?,
        status: r.get(5)?,
        category: r.get(6)?,
        quality: Quality::parse(&r.get::<_, String>(7)?),
        named_params: r.get(8)?,
        header_format: r.get(9)?,
        header_text: r.get(10)?,
        body_text: r.get(11)?,
        footer_text: r.get(12)?,
        buttons: serde_json::from_str(&buttons).unwrap_or_default(),
        examples: serde_json::from_str(&examples).unwrap_or_default(),
        param_count: r.get(15)?,
        rejection_reason: r.get(16)?,
        rejection_detail: r.get(17)?,
        category_change: r.get(18)?,
        created_by: r.get(19)?,
        created_at: r.get(20)?,
        updated_at: r.get(21)?,
    })
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

pub fn list_for_waba(c: &Connection, waba_id: &str) -> rusqlite::Result<Vec<Template>> {
    let mut stmt = c.prepare(&format!(
        "SELECT {COLS} FROM wa_templates WHERE waba_id = ?1 ORDER BY name, language"
    ))?;
    let rows = stmt.query_map([waba_id], from_row)?;
    rows.collect()
}

/// Every template of every account (the templates page).
pub fn list_all(c: &Connection) -> rusqlite::Result<Vec<Template>> {
    let mut stmt = c.prepare(&format!(
        "SELECT {COLS} FROM wa_templates ORDER BY name, language, waba_id"
    ))?;
    let rows = stmt.query_map([], from_row)?;
    rows.collect()
}

pub fn find(c: &Connection, id: i64) -> rusqlite::Result<Option<Template>> {
    c.query_row(
        &format!("SELECT {COLS} FROM wa_templates WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()
}

pub fn find_by_key(c: &Connection, waba_id: &str, name: &str, language: &str) -> rusqlite::Result<Option<Template>> {
    c.query_row(
        &format!("SELECT {COLS} FROM wa_templates WHERE waba_id = ?1 AND name = ?2 AND language = ?3"),
        params![waba_id, name, language],
        from_row,
    )
    .optional()
}

/// The category (MARKETING, UTILITY, AUTHENTICATION) of a WABA's template; `None`
/// when there is no such template.
pub fn find_category(c: &Connection, waba_id: &str, name: &str, language: &str) -> rusqlite::Result<Option<String>> {
    Ok(find_by_key(c, waba_id, name, language)?.map(|t| t.category))
}

/// The templates of a WABA that may be sent now (what agents pick from).
pub fn list_usable(c: &Connection, waba_id: &str) -> rusqlite::Result<Vec<Template>> {
    Ok(list_for_waba(c, waba_id)?
        .into_iter()
        .filter(|t| usable(t).is_ok())
        .collect())
}

/// Stores a template Meta accepted for review; one of that name and language already
/// here (the sync was quicker) is replaced by it.
pub fn insert_created(
    c: &Connection,
    waba_id: &str,
    meta_id: &str,
    draft: &Draft,
    status: &Status,
    created_by: &str,
    now: i64,
) -> rusqlite::Result<i64> {
    let header_text = match &draft.header {
        Header::Text { text, .. } => text.as_str(),
        _ => "",
    };
    let params_in_body = i64::try_from(draft::distinct_names(&draft.body).len()).unwrap_or(0);
    c.query_row(
        "INSERT INTO wa_templates (waba_id, meta_id, name, language, status, category, quality, named_params,
                header_format, header_text, body_text, footer_text, buttons, examples, param_count,
                created_by, created_at, updated_at, synced_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'UNKNOWN', ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?16, ?16)
         ON CONFLICT (waba_id, name, language) DO UPDATE SET meta_id = excluded.meta_id, status = excluded.status,
                category = excluded.category, named_params = excluded.named_params,
                header_format = excluded.header_format, header_text = excluded.header_text,
                body_text = excluded.body_text, footer_text = excluded.footer_text, buttons = excluded.buttons,
                examples = excluded.examples, param_count = excluded.param_count, created_by = excluded.created_by,
                created_at = excluded.created_at, updated_at = excluded.updated_at
         RETURNING id",
        params![
            waba_id,
            meta_id,
            draft.name,
            draft.language,
            status,
            Category::parse(&draft.category).map_or("", Category::as_str),
            draft.named(),
            draft.header.format(),
            header_text,
            draft.body,
            draft.footer,
            to_json(&draft.buttons),
            to_json(&draft.kept_examples()),
            params_in_body,
            created_by,
            now
        ],
        |r| r.get(0),
    )
}

pub fn delete(c: &Connection, id: i64) -> rusqlite::Result<usize> {
    c.execute("DELETE FROM wa_templates WHERE id = ?1", [id])
}

/// Counts a creation against Meta's 100 per hour per WABA.
pub fn record_creation(c: &Connection, waba_id: &str, now: i64) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO wa_template_creations (waba_id, at) VALUES (?1, ?2)",
        params![waba_id, now],
    )?;
    c.execute("DELETE FROM wa_template_creations WHERE at < ?1", [now - 86_400])?;
    Ok(())
}

/// Creations in the hour before `now`, and the oldest of them (when the count drops).
pub fn creations_last_hour(c: &Connection, waba_id: &str, now: i64) -> rusqlite::Result<(i64, Option<i64>)> {
    c.query_row(
        "SELECT count(*), min(at) FROM wa_template_creations WHERE waba_id = ?1 AND at > ?2",
        params![waba_id, now - 3600],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// The row a piece of Meta news is about: by Meta's id, else by name and language.
fn find_target(
    c: &Connection,
    waba_id: &str,
    meta_id: &str,
    name: &str,
    language: &str,
) -> rusqlite::Result<Option<Template>> {
    if !meta_id.is_empty() {
        let by_id = c
            .query_row(
                &format!("SELECT {COLS} FROM wa_templates WHERE meta_id = ?1 AND (waba_id = ?2 OR ?2 = '')"),
                params![meta_id, waba_id],
                from_row,
            )
            .optional()?;
        if by_id.is_some() {
            return Ok(by_id);
        }
    }
    c.query_row(
        &format!("SELECT {COLS} FROM wa_templates WHERE waba_id = ?1 AND name = ?2 AND language = ?3"),
        params![waba_id, name, language],
        from_row,
    )
    .optional()
}

/// A template webhook, in Whacaster's terms (parsed by `inbound`).
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateChange {
    /// Meta's template id (a number in webhooks, kept as text); may be empty.
    pub meta_id: String,
    pub name: String,
    /// As the API writes it (`en_US`; webhooks write `en-US`).
    pub language: String,
    pub news: TemplateNews,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TemplateNews {
    /// `message_template_status_update`: the event, Meta's reason code, its words on a
    /// rejection (reason and recommendation), the category it names.
    Status {
        event: String,
        reason: String,
        detail: String,
        category: String,
    },
    /// `message_template_quality_update`.
    Quality { previous: Quality, new: Quality },
    /// `template_category_update`: done (`coming_at` none) or announced for a time.
    Category {
        new: String,
        previous: String,
        coming_at: Option<i64>,
    },
}

/// Applies a template webhook to the stored template, with an audit line; returns
/// whether a template here was changed (news about one we do not have changes nothing;
/// the next sync brings it).
pub fn apply_news(c: &Connection, waba_id: &str, change: &TemplateChange, now: i64) -> rusqlite::Result<bool> {
    let Some(t) = find_target(c, waba_id, &change.meta_id, &change.name, &change.language)? else {
        return Ok(false);
    };
    let (action, details) = match &change.news {
        TemplateNews::Status {
            event,
            reason,
            detail,
            category,
        } => {
            let Some(status) = Status::after_event(event) else {
                return Ok(false);
            };
            let reason = if reason == "NONE" { "" } else { reason.as_str() };
            let rejected = status == Status::Rejected;
            c.execute(
                "UPDATE wa_templates SET status = ?2,
                        rejection_reason = CASE WHEN ?3 THEN ?4 ELSE rejection_reason END,
                        rejection_detail = CASE WHEN ?3 THEN ?5 ELSE rejection_detail END,
                        category = CASE WHEN ?6 = '' THEN category ELSE ?6 END, updated_at = ?7
                 WHERE id = ?1",
                params![
                    t.id,
                    status,
                    rejected,
                    reason,
                    detail,
                    category.to_ascii_uppercase(),
                    now
                ],
            )?;
            (
                "template.status",
                format!(
                    "{} -> {}{}",
                    t.status.as_str(),
                    status.as_str(),
                    if reason.is_empty() {
                        String::new()
                    } else {
                        format!(" ({reason})")
                    }
                ),
            )
        }
        TemplateNews::Quality { new, .. } => {
            c.execute(
                "UPDATE wa_templates SET quality = ?2, updated_at = ?3 WHERE id = ?1",
                params![t.id, new.as_str(), now],
            )?;
            (
                "template.quality",
                format!("{} -> {}", t.quality.as_str(), new.as_str()),
            )
        }
        TemplateNews::Category { new, coming_at, .. } => {
            let new = new.to_ascii_uppercase();
            match coming_at {
                Some(at) => {
                    c.execute(
                        "UPDATE wa_templates SET category_change = ?2, updated_at = ?3 WHERE id = ?1",
                        params![t.id, format!("{new}|{at}"), now],
                    )?;
                    ("template.category", format!("{} -> {new} on {at}", t.category))
                }
                None => {
                    c.execute(
                        "UPDATE wa_templates SET category = ?2, category_change = '', updated_at = ?3 WHERE id = ?1",
                        params![t.id, new, now],
                    )?;
                    ("template.category", format!("{} -> {new}", t.category))
                }
            }
        }
    };
    audit::record(
        c,
        &Actor::system(),
        action,
        &format!("template:{} {}/{}", t.id, t.name, t.language),
        &format!("{details} (webhook)"),
        now,
    )?;
    Ok(true)
}

/// Brings the templates of a WABA in line with what Meta has now: each known one is
/// updated in place (its id, examples and Meta's rejection words stay), new ones are
/// added, ones Meta no longer has are removed. A change of status is audited.
pub fn replace_for_waba(
    c: &Connection,
    waba_id: &str,
    templates: &[TemplateInfo],
    now: i64,
) -> rusqlite::Result<usize> {
    let mut kept = Vec::with_capacity(templates.len());
    for t in templates {
        let status = Status::parse(&t.status);
        let reason = if t.rejected_reason == "NONE" {
            ""
        } else {
            t.rejected_reason.as_str()
        };
        let existing = find_target(c, waba_id, &t.meta_id, &t.name, &t.language)?.filter(|x| x.waba_id == waba_id);
        let buttons = to_json(&t.buttons);
        let examples = to_json(&t.examples);
        // A new one gets its row first; then one statement brings old and new in line.
        let id = match &existing {
            Some(old) => old.id,
            None => c.query_row(
                "INSERT INTO wa_templates (waba_id, meta_id, name, language, status, category, synced_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
                params![waba_id, t.meta_id, t.name, t.language, status, t.category, now],
                |r| r.get::<_, i64>(0),
            )?,
        };
        c.execute(
            "UPDATE wa_templates SET meta_id = ?2, name = ?3, language = ?4, status = ?5, category = ?6,
                    quality = ?7, named_params = ?8, header_format = ?9, header_text = ?10, body_text = ?11,
                    footer_text = ?12, buttons = ?13,
                    examples = CASE WHEN ?14 = ?15 THEN examples ELSE ?14 END,
                    param_count = ?16,
                    rejection_reason = CASE WHEN ?17 = '' THEN rejection_reason ELSE ?17 END,
                    synced_at = ?18
             WHERE id = ?1",
            params![
                id,
                t.meta_id,
                t.name,
                t.language,
                status,
                t.category,
                Quality::parse(&t.quality).as_str(),
                t.named_params,
                t.header_format,
                t.header_text,
                t.body_text,
                t.footer_text,
                buttons,
                examples,
                to_json(&Examples::default()),
                i64::try_from(t.param_count).unwrap_or(0),
                reason,
                now
            ],
        )?;
        if let Some(old) = existing.filter(|old| old.status != status) {
            audit::record(
                c,
                &Actor::system(),
                "template.status",
                &format!("template:{} {}/{}", old.id, t.name, t.language),
                &format!("{} -> {} (sync)", old.status.as_str(), status.as_str()),
                now,
            )?;
        }
        kept.push(id);
    }
    let kept_json = to_json(&kept);
    c.execute(
        "DELETE FROM wa_templates WHERE waba_id = ?1 AND id NOT IN (SELECT value FROM json_each(?2))",
        params![waba_id, kept_json],
    )?;
    Ok(templates.len())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_approved_template_is_usable() {
        assert_eq!(Status::after_event("FLAGGED"), None, "flagged stays approved");
        assert_eq!(Status::after_event("PAUSED"), Some(Status::Paused));
        assert_eq!(Status::after_event("REINSTATED"), Some(Status::Approved));
        assert_eq!(Status::parse("whatever_new"), Status::Other("WHATEVER_NEW".into()));
        for (status, key) in [
            (Status::Paused, "templates.unusable.paused"),
            (Status::Disabled, "templates.unusable.disabled"),
            (Status::Rejected, "templates.unusable.rejected"),
            (Status::Pending, "templates.unusable.pending"),
            (Status::Archived, "templates.unusable.other"),
        ] {
            assert_eq!(Unusable(status).key(), key);
            assert!(crate::i18n::has_key(key));
        }
    }
}
