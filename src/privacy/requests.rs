//! Data-subject requests (P19): the register (who asked, about whom, what, when, the
//! 30-day deadline, who handled it, what was done), "find everything" about a person,
//! the export (JSON + media in one ZIP, built in memory for the download: no file is
//! kept), erasure through the same real purge as retention, and an objection to
//! marketing recorded through the consent core.
//!
//! A request row keeps the identifiers it was about after an erasure: it is the record
//! that the right was honoured (GDPR art. 5(2), UU PDP art. 47).

use super::retention::{self, Removed, Scope};
use crate::audit::{self, Actor};
use crate::contacts::consent::{self, Change, Purpose, Source, State};
use crate::error::FormErrors;
use crate::privacy::evidence::{Fact, Light};
use crate::store::{Db, DbError};
use crate::whatsapp::media::MediaStore;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};

/// The policy's answer time: 30 days (P19).
pub const DUE_DAYS: i64 = 30;
const DAY: i64 = 86_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Access,
    Correction,
    Erasure,
    Portability,
    Objection,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Access,
        Kind::Correction,
        Kind::Erasure,
        Kind::Portability,
        Kind::Objection,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Access => "access",
            Kind::Correction => "correction",
            Kind::Erasure => "erasure",
            Kind::Portability => "portability",
            Kind::Objection => "objection",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s.trim())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Open,
    Done,
    Refused,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Done => "done",
            Status::Refused => "refused",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        [Status::Open, Status::Done, Status::Refused]
            .into_iter()
            .find(|k| k.as_str() == s.trim())
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Request {
    pub id: i64,
    pub kind: Kind,
    pub requester: String,
    pub subject_phone: Option<String>,
    pub subject_bsuid: Option<String>,
    pub contact_id: Option<i64>,
    pub details: String,
    pub received_at: i64,
    pub due_at: i64,
    pub status: Status,
    pub handler: String,
    pub outcome: String,
    pub closed_at: Option<i64>,
}

impl Request {
    pub fn overdue(&self, now: i64) -> bool {
        self.status == Status::Open && now > self.due_at
    }

    pub fn is_open(&self) -> bool {
        self.status == Status::Open
    }

    /// The person, as the register shows them.
    pub fn subject(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = &self.subject_phone {
            parts.push(p.clone());
        }
        if let Some(b) = &self.subject_bsuid {
            parts.push(b.clone());
        }
        if let Some(c) = self.contact_id {
            parts.push(format!("contact {c}"));
        }
        parts.join(" · ")
    }

    pub fn kind_str(&self) -> &'static str {
        self.kind.as_str()
    }

    pub fn status_str(&self) -> &'static str {
        self.status.as_str()
    }

    pub fn json(&self, now: i64) -> Value {
        json!({"id": self.id, "kind": self.kind, "requester": self.requester,
               "subject": {"phone": self.subject_phone, "bsuid": self.subject_bsuid, "contact_id": self.contact_id},
               "details": self.details, "received_at": self.received_at, "due_at": self.due_at,
               "overdue": self.overdue(now), "status": self.status, "handler": self.handler,
               "outcome": self.outcome, "closed_at": self.closed_at})
    }
}

const SELECT: &str = "SELECT id, kind, requester, subject_phone, subject_bsuid, contact_id, details, received_at,
        due_at, status, handler, outcome, closed_at FROM privacy_requests";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Request> {
    let kind: String = r.get(1)?;
    let status: String = r.get(9)?;
    Ok(Request {
        id: r.get(0)?,
        kind: Kind::parse(&kind).unwrap_or(Kind::Access),
        requester: r.get(2)?,
        subject_phone: r.get(3)?,
        subject_bsuid: r.get(4)?,
        contact_id: r.get(5)?,
        details: r.get(6)?,
        received_at: r.get(7)?,
        due_at: r.get(8)?,
        status: Status::parse(&status).unwrap_or(Status::Open),
        handler: r.get(10)?,
        outcome: r.get(11)?,
        closed_at: r.get(12)?,
    })
}

pub fn list(c: &Connection, limit: i64) -> rusqlite::Result<Vec<Request>> {
    let mut stmt = c.prepare(&format!(
        "{SELECT} ORDER BY status = 'open' DESC, CASE WHEN status = 'open' THEN due_at END, id DESC LIMIT ?1"
    ))?;
    let rows = stmt.query_map([limit], row)?;
    rows.collect()
}

pub fn find(c: &Connection, id: i64) -> rusqlite::Result<Option<Request>> {
    c.query_row(&format!("{SELECT} WHERE id = ?1"), [id], row).optional()
}

/// Open requests past their deadline (the dashboard's flag).
pub fn overdue_count(c: &Connection, now: i64) -> rusqlite::Result<i64> {
    c.query_row(
        "SELECT count(*) FROM privacy_requests WHERE status = 'open' AND due_at < ?1",
        [now],
        |r| r.get(0),
    )
}

/// A request as typed into the form or the API.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct RequestInput {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub requester: String,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub bsuid: String,
    #[serde(default, deserialize_with = "crate::web::empty_as_none")]
    pub contact_id: Option<i64>,
    #[serde(default)]
    pub details: String,
    /// `YYYY-MM-DD` (UTC) when it arrived, if not today.
    #[serde(default)]
    pub received_on: String,
}

/// A checked request, ready to insert.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub kind: Kind,
    pub requester: String,
    pub phone: Option<String>,
    pub bsuid: Option<String>,
    pub contact_id: Option<i64>,
    pub details: String,
    pub received_at: Option<i64>,
}

pub fn validate(input: &RequestInput, region: &str, now: i64) -> Result<NewRequest, FormErrors> {
    let mut e = FormErrors::default();
    let kind = Kind::parse(&input.kind);
    if kind.is_none() {
        e.add("kind", "privacy_ops.requests.kind_invalid");
    }
    let requester = input.requester.trim().to_string();
    if requester.is_empty() || requester.chars().count() > 200 {
        e.add("requester", "privacy_ops.requests.requester_invalid");
    }
    let phone = match input.phone.trim() {
        "" => None,
        p => match crate::contacts::normalize_phone(p, region) {
            Ok(p) => Some(p),
            Err(k) => {
                e.add("phone", k);
                None
            }
        },
    };
    let bsuid = Some(input.bsuid.trim().to_string()).filter(|b| !b.is_empty());
    if bsuid.as_ref().is_some_and(|b| b.len() < 6 || b.len() > 200) {
        e.add("bsuid", "privacy_ops.requests.bsuid_invalid");
    }
    if phone.is_none() && bsuid.is_none() && input.contact_id.is_none() && e.get("phone").is_none() {
        e.add("phone", "privacy_ops.requests.subject_required");
    }
    if input.details.chars().count() > 4000 {
        e.add("details", "privacy_ops.requests.details_too_long");
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let received_at = match input.received_on.trim() {
        "" => None,
        d => match time::Date::parse(d, &fmt) {
            Ok(d) if d.midnight().assume_utc().unix_timestamp() <= now => {
                Some(d.midnight().assume_utc().unix_timestamp())
            }
            _ => {
                e.add("received_on", "privacy_ops.requests.received_invalid");
                None
            }
        },
    };
    match kind {
        Some(kind) if e.0.is_empty() => Ok(NewRequest {
            kind,
            requester,
            phone,
            bsuid,
            contact_id: input.contact_id,
            details: input.details.trim().to_string(),
            received_at,
        }),
        _ => Err(e),
    }
}

/// Why a request cannot be made or acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NoSuchContact,
    NotOpen,
    WrongKind,
    Held,
    NoContact,
}

impl Refusal {
    pub fn key(self) -> &'static str {
        match self {
            Refusal::NoSuchContact => "privacy_ops.requests.no_such_contact",
            Refusal::NotOpen => "privacy_ops.requests.not_open",
            Refusal::WrongKind => "privacy_ops.requests.wrong_kind",
            Refusal::Held => "privacy_ops.requests.held",
            Refusal::NoContact => "privacy_ops.requests.no_contact",
        }
    }
}

/// Registers a request (audited, without the person's identifiers). The identifiers of
/// a contact given by id are copied in, so the register still says whom it was about
/// after an erasure.
pub fn create(c: &Connection, actor: &Actor, r: &NewRequest, now: i64) -> rusqlite::Result<Result<i64, Refusal>> {
    let (mut phone, mut bsuid, mut contact) = (r.phone.clone(), r.bsuid.clone(), r.contact_id);
    if let Some(id) = r.contact_id {
        let found: Option<(Option<String>, Option<String>, Option<String>)> = c
            .query_row(
                "SELECT phone_e164, wa_id, bsuid FROM contacts WHERE id = ?1",
                [id],
                |x| Ok((x.get(0)?, x.get(1)?, x.get(2)?)),
            )
            .optional()?;
        let Some((p, wa, b)) = found else {
            return Ok(Err(Refusal::NoSuchContact));
        };
        phone = phone.or(p).or_else(|| wa.map(|w| format!("+{w}")));
        bsuid = bsuid.or(b);
    } else {
        contact = resolve(c, phone.as_deref(), bsuid.as_deref())?;
    }
    let received = r.received_at.unwrap_or(now);
    c.execute(
        "INSERT INTO privacy_requests (kind, requester, subject_phone, subject_bsuid, contact_id, details,
                                       received_at, due_at, handler_id, handler, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
        params![
            r.kind.as_str(),
            r.requester,
            phone,
            bsuid,
            contact,
            r.details,
            received,
            received + DUE_DAYS * DAY,
            actor.id,
            actor.label,
            now
        ],
    )?;
    let id = c.last_insert_rowid();
    audit::record(
        c,
        actor,
        "privacy.request.create",
        &format!("privacy_request:{id}"),
        r.kind.as_str(),
        now,
    )?;
    Ok(Ok(id))
}

/// The contact a phone number or BSUID belongs to.
fn resolve(c: &Connection, phone: Option<&str>, bsuid: Option<&str>) -> rusqlite::Result<Option<i64>> {
    let digits = phone.map(|p| p.trim_start_matches('+').to_string());
    c.query_row(
        "SELECT id FROM contacts WHERE (?1 IS NOT NULL AND (phone_e164 = ?1 OR wa_id = ?2))
                                   OR (?3 IS NOT NULL AND bsuid = ?3) ORDER BY id LIMIT 1",
        params![phone, digits, bsuid],
        |r| r.get(0),
    )
    .optional()
}

/// Closes a request as done or refused, with what was done (audited).
pub fn close(
    c: &Connection,
    actor: &Actor,
    id: i64,
    status: Status,
    outcome: &str,
    now: i64,
) -> rusqlite::Result<Result<(), Refusal>> {
    let n = c.execute(
        "UPDATE privacy_requests SET status = ?2, outcome = ?3, closed_at = ?4, updated_at = ?4,
                handler_id = ?5, handler = ?6 WHERE id = ?1 AND status = 'open'",
        params![id, status.as_str(), outcome, now, actor.id, actor.label],
    )?;
    if n == 0 {
        return Ok(Err(Refusal::NotOpen));
    }
    audit::record(
        c,
        actor,
        "privacy.request.close",
        &format!("privacy_request:{id}"),
        status.as_str(),
        now,
    )?;
    Ok(Ok(()))
}

/// The person a request is about: their contact (if the appliance has one) and every
/// identifier they may appear under (E.164, WhatsApp id, BSUID), longest first.
#[derive(Debug, Clone)]
pub struct Subject {
    pub contact_id: Option<i64>,
    pub identifiers: Vec<String>,
}

pub fn subject(c: &Connection, r: &Request) -> rusqlite::Result<Subject> {
    let contact_id = match r.contact_id {
        Some(id) => Some(id),
        None => resolve(c, r.subject_phone.as_deref(), r.subject_bsuid.as_deref())?,
    };
    let mut ids: Vec<String> = Vec::new();
    if let Some(p) = &r.subject_phone {
        ids.push(p.clone());
        ids.push(p.trim_start_matches('+').to_string());
    }
    if let Some(b) = &r.subject_bsuid {
        ids.push(b.clone());
    }
    if let Some(id) = contact_id {
        let found: Option<(Option<String>, Option<String>, Option<String>)> = c
            .query_row(
                "SELECT phone_e164, wa_id, bsuid FROM contacts WHERE id = ?1",
                [id],
                |x| Ok((x.get(0)?, x.get(1)?, x.get(2)?)),
            )
            .optional()?;
        if let Some((p, wa, b)) = found {
            if let Some(p) = p {
                ids.push(p.trim_start_matches('+').to_string());
                ids.push(p);
            }
            ids.extend(wa);
            ids.extend(b);
        }
    }
    // Short strings would match inside unrelated text.
    ids.retain(|i| i.len() >= 6);
    ids.sort_by_key(|i| std::cmp::Reverse(i.len()));
    ids.dedup();
    Ok(Subject {
        contact_id,
        identifiers: ids,
    })
}

fn count(c: &Connection, sql: &str, p: &[&dyn rusqlite::ToSql]) -> rusqlite::Result<i64> {
    c.query_row(sql, p, |r| r.get(0))
}

/// Ids of rows whose text columns mention any identifier.
fn mentions(c: &Connection, sql: &str, s: &Subject) -> rusqlite::Result<Vec<i64>> {
    let mut out = Vec::new();
    let mut stmt = c.prepare(sql)?;
    for ident in &s.identifiers {
        for id in stmt.query_map([ident], |r| r.get::<_, i64>(0))? {
            out.push(id?);
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// What the appliance holds about a person: one line per place, with how many.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Findings {
    pub contact_id: Option<i64>,
    pub contact_name: String,
    pub held: Option<String>,
    pub consent_log: i64,
    pub conversations: i64,
    pub messages: i64,
    pub media_files: i64,
    pub notes_and_events: i64,
    /// Notes in other people's conversations that mention the person's number.
    pub notes_mentioning: Vec<i64>,
    pub campaign_recipients: i64,
    pub outbox: i64,
    pub bot_log: i64,
    pub audit_entries: i64,
    pub webhook_deliveries: i64,
}

impl Findings {
    /// (kind, count) for the page and the API.
    pub fn lines(&self) -> Vec<(&'static str, i64)> {
        vec![
            ("contact", i64::from(self.contact_id.is_some())),
            ("consent_log", self.consent_log),
            ("conversations", self.conversations),
            ("messages", self.messages),
            ("media_files", self.media_files),
            ("notes_and_events", self.notes_and_events),
            (
                "notes_mentioning",
                i64::try_from(self.notes_mentioning.len()).unwrap_or(i64::MAX),
            ),
            ("campaign_recipients", self.campaign_recipients),
            ("outbox", self.outbox),
            ("bot_log", self.bot_log),
            ("audit_entries", self.audit_entries),
            ("webhook_deliveries", self.webhook_deliveries),
        ]
    }
}

const OWN_CONVERSATIONS: &str = "SELECT id FROM conversations WHERE contact_id = ?1";
const OWN_MESSAGES: &str = "SELECT id FROM messages WHERE contact_id = ?1";

pub fn find_everything(c: &Connection, s: &Subject) -> rusqlite::Result<Findings> {
    let mut f = Findings::default();
    let cid = s.contact_id.unwrap_or(-1);
    if let Some(id) = s.contact_id {
        let name: Option<String> = c
            .query_row(
                "SELECT coalesce(nullif(name, ''), nullif(profile_name, ''), '') FROM contacts WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(n) = name {
            f.contact_id = Some(id);
            f.contact_name = n;
        }
        f.held = retention::hold_of(c, id)?.map(|h| h.reason);
    }
    f.consent_log = count(c, "SELECT count(*) FROM consent_log WHERE contact_id = ?1", &[&cid])?;
    f.conversations = count(c, "SELECT count(*) FROM conversations WHERE contact_id = ?1", &[&cid])?;
    f.messages = count(c, "SELECT count(*) FROM messages WHERE contact_id = ?1", &[&cid])?;
    f.media_files = count(
        c,
        &format!(
            "SELECT count(*) FROM media_files WHERE message_id IN ({OWN_MESSAGES})
                OR wamid IN (SELECT wamid FROM messages WHERE contact_id = ?1 AND wamid IS NOT NULL)"
        ),
        &[&cid],
    )?;
    f.notes_and_events = count(
        c,
        &format!("SELECT count(*) FROM conversation_events WHERE conversation_id IN ({OWN_CONVERSATIONS})"),
        &[&cid],
    )?;
    let own: Vec<i64> = mentions(
        c,
        &format!(
            "SELECT id FROM conversation_events WHERE instr(body, ?1) > 0
               AND conversation_id NOT IN (SELECT id FROM conversations WHERE contact_id = {cid})"
        ),
        s,
    )?;
    f.notes_mentioning = own;
    f.campaign_recipients = len(&ids_by_contact_or_recipient(c, "campaign_recipients", s)?);
    f.outbox = len(&ids_by_contact_or_recipient(c, "outbox", s)?);
    f.bot_log = count(
        c,
        &format!("SELECT count(*) FROM bot_log WHERE contact_id = ?1 OR conversation_id IN ({OWN_CONVERSATIONS})"),
        &[&cid],
    )?;
    let mut audit_ids = mentions(
        c,
        "SELECT id FROM audit_log WHERE instr(target, ?1) > 0 OR instr(details, ?1) > 0",
        s,
    )?;
    if let Some(id) = s.contact_id {
        let mut stmt = c.prepare("SELECT id FROM audit_log WHERE target = ?1")?;
        for r in stmt.query_map([format!("contact:{id}")], |r| r.get::<_, i64>(0))? {
            audit_ids.push(r?);
        }
        audit_ids.sort_unstable();
        audit_ids.dedup();
    }
    f.audit_entries = len(&audit_ids);
    f.webhook_deliveries = len(&mentions(
        c,
        "SELECT id FROM webhook_inbox WHERE instr(body, CAST(?1 AS BLOB)) > 0",
        s,
    )?);
    Ok(f)
}

fn len<T>(v: &[T]) -> i64 {
    i64::try_from(v.len()).unwrap_or(i64::MAX)
}

fn ids_by_contact_or_recipient(c: &Connection, table: &str, s: &Subject) -> rusqlite::Result<Vec<i64>> {
    let mut ids = mentions(c, &format!("SELECT id FROM {table} WHERE recipient = ?1"), s)?;
    if let Some(id) = s.contact_id {
        let mut stmt = c.prepare(&format!("SELECT id FROM {table} WHERE contact_id = ?1"))?;
        for r in stmt.query_map([id], |r| r.get::<_, i64>(0))? {
            ids.push(r?);
        }
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

// ---- export --------------------------------------------------------------------------

/// A media file to put in the ZIP.
#[derive(Debug, Clone)]
pub struct MediaRef {
    pub stored_name: String,
    pub path_in_zip: String,
}

/// A file name that is safe inside a ZIP (no directories, no dots first).
fn safe_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|ch| {
            if ch.is_alphanumeric() || matches!(ch, '.' | '-' | '_') {
                ch
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    s.trim_start_matches('.').to_string()
}

fn ext_for(mime: &str) -> &'static str {
    match mime.split(';').next().unwrap_or("").trim() {
        "image/jpeg" => ".jpg",
        "image/png" => ".png",
        "image/webp" => ".webp",
        "video/mp4" => ".mp4",
        "audio/ogg" => ".ogg",
        "audio/mpeg" => ".mp3",
        "application/pdf" => ".pdf",
        "text/plain" => ".txt",
        _ => ".bin",
    }
}

fn collect<T>(
    c: &Connection,
    sql: &str,
    p: &[&dyn rusqlite::ToSql],
    f: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let mut stmt = c.prepare(sql)?;
    let rows = stmt.query_map(p, f)?;
    rows.collect()
}

/// A message row for the export: id, direction, kind, text, sent at, status, wamid.
type MessageRow = (i64, String, String, String, i64, Option<String>, Option<String>);

/// The person's data as the export's JSON (shape: README, "Data-subject export") and
/// the media files that go beside it. Nothing of anyone else: staff names, other
/// people's conversations and notes that mention the person elsewhere are left out.
#[expect(clippy::too_many_lines, reason = "one document, read top to bottom in its order")]
pub fn export_data(c: &Connection, r: &Request, s: &Subject, now: i64) -> rusqlite::Result<(Value, Vec<MediaRef>)> {
    let cid = s.contact_id.unwrap_or(-1);
    let contact = match s.contact_id {
        None => Value::Null,
        Some(id) => c
            .query_row(
                "SELECT id, coalesce(name, ''), profile_name, phone_e164, wa_id, bsuid, username, attributes,
                        created_at, last_seen_at, consent_marketing, consent_utility FROM contacts WHERE id = ?1",
                [id],
                |x| {
                    let attrs: String = x.get(7)?;
                    Ok(json!({"id": x.get::<_, i64>(0)?, "name": x.get::<_, String>(1)?,
                        "profile_name": x.get::<_, String>(2)?, "phone": x.get::<_, Option<String>>(3)?,
                        "wa_id": x.get::<_, Option<String>>(4)?, "bsuid": x.get::<_, Option<String>>(5)?,
                        "username": x.get::<_, Option<String>>(6)?,
                        "attributes": serde_json::from_str::<Value>(&attrs).unwrap_or(Value::Null),
                        "created_at": x.get::<_, i64>(8)?, "last_seen_at": x.get::<_, Option<i64>>(9)?,
                        "consent": {"marketing": x.get::<_, String>(10)?, "utility": x.get::<_, String>(11)?}}))
                },
            )
            .optional()?
            .unwrap_or(Value::Null),
    };
    let consent_log = collect(
        c,
        "SELECT purpose, state, previous, source, occurred_at, recorded_at, wording, evidence
         FROM consent_log WHERE contact_id = ?1 ORDER BY id",
        &[&cid],
        |x| {
            Ok(
                json!({"purpose": x.get::<_, String>(0)?, "state": x.get::<_, String>(1)?,
                "previous": x.get::<_, String>(2)?, "source": x.get::<_, String>(3)?,
                "occurred_at": x.get::<_, i64>(4)?, "recorded_at": x.get::<_, i64>(5)?,
                "wording": x.get::<_, String>(6)?, "evidence": x.get::<_, String>(7)?}),
            )
        },
    )?;
    let mut media = Vec::new();
    let convs: Vec<(i64, String, String, i64)> = collect(
        c,
        "SELECT id, phone_number_id, status, created_at FROM conversations WHERE contact_id = ?1 ORDER BY id",
        &[&cid],
        |x| Ok((x.get(0)?, x.get(1)?, x.get(2)?, x.get(3)?)),
    )?;
    let mut conversations = Vec::new();
    let mut files = c.prepare(
        "SELECT id, stored_name, mime_type, coalesce(filename, ''), size FROM media_files
         WHERE state = 'stored' AND stored_name IS NOT NULL
           AND (message_id = ?1 OR (?2 IS NOT NULL AND wamid = ?2))",
    )?;
    for (id, number, status, created_at) in convs {
        let msgs: Vec<MessageRow> = collect(
            c,
            "SELECT id, direction, kind, body, sent_at, status, nullif(wamid, '') FROM messages
             WHERE conversation_id = ?1 AND contact_id = ?2 ORDER BY id",
            &[&id, &cid],
            |x| {
                Ok((
                    x.get(0)?,
                    x.get(1)?,
                    x.get(2)?,
                    x.get(3)?,
                    x.get(4)?,
                    x.get(5)?,
                    x.get(6)?,
                ))
            },
        )?;
        let mut messages = Vec::new();
        for (mid, direction, kind, body, sent_at, mstatus, wamid) in msgs {
            let mut attached = Vec::new();
            let found: Vec<(i64, String, String, String, Option<i64>)> = files
                .query_map(params![mid, wamid], |x| {
                    Ok((x.get(0)?, x.get(1)?, x.get(2)?, x.get(3)?, x.get(4)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            for (fid, stored, mime, filename, size) in found {
                let name = if filename.is_empty() {
                    format!("media/{fid}{}", ext_for(&mime))
                } else {
                    format!("media/{fid}-{}", safe_name(&filename))
                };
                attached.push(json!({"file": name, "mime_type": mime, "size": size}));
                media.push(MediaRef {
                    stored_name: stored,
                    path_in_zip: name,
                });
            }
            messages.push(json!({"id": mid, "direction": direction, "kind": kind, "text": body,
                "sent_at": sent_at, "status": mstatus, "media": attached}));
        }
        let notes = collect(
            c,
            "SELECT at, kind, body FROM conversation_events WHERE conversation_id = ?1 ORDER BY id",
            &[&id],
            |x| Ok(json!({"at": x.get::<_, i64>(0)?, "kind": x.get::<_, String>(1)?, "text": x.get::<_, String>(2)?})),
        )?;
        conversations.push(json!({"id": id, "business_number": number, "status": status,
            "created_at": created_at, "messages": messages, "notes": notes}));
    }
    let campaign_ids = ids_by_contact_or_recipient(c, "campaign_recipients", s)?;
    let mut campaign_messages = Vec::new();
    for rid in campaign_ids {
        campaign_messages.extend(collect(
            c,
            "SELECT k.name, r.state, r.sent_at, r.params FROM campaign_recipients r
             JOIN campaigns k ON k.id = r.campaign_id WHERE r.id = ?1",
            &[&rid],
            |x| {
                let p: String = x.get(3)?;
                Ok(
                    json!({"campaign": x.get::<_, String>(0)?, "state": x.get::<_, String>(1)?,
                    "sent_at": x.get::<_, Option<i64>>(2)?,
                    "values": serde_json::from_str::<Value>(&p).unwrap_or(Value::Null)}),
                )
            },
        )?);
    }
    let bot_log = collect(
        c,
        &format!(
            "SELECT at, decision, detail, stored FROM bot_log
             WHERE contact_id = ?1 OR conversation_id IN ({OWN_CONVERSATIONS}) ORDER BY id"
        ),
        &[&cid],
        |x| {
            Ok(json!({"at": x.get::<_, i64>(0)?, "decision": x.get::<_, String>(1)?,
                "detail": x.get::<_, String>(2)?, "stored": x.get::<_, String>(3)?}))
        },
    )?;
    let audit_entries = collect(
        c,
        "SELECT at, action, target, details FROM audit_log WHERE target = ?1 ORDER BY id",
        &[&format!("contact:{cid}")],
        |x| {
            Ok(json!({"at": x.get::<_, i64>(0)?, "action": x.get::<_, String>(1)?,
                "target": x.get::<_, String>(2)?, "details": x.get::<_, String>(3)?}))
        },
    )?;
    let doc = json!({
        "format": "whacaster.subject-export/1",
        "generated_at": now,
        "request": {"id": r.id, "kind": r.kind, "received_at": r.received_at},
        "subject": {"phone": r.subject_phone, "bsuid": r.subject_bsuid},
        "contact": contact,
        "consent_log": consent_log,
        "conversations": conversations,
        "campaign_messages": campaign_messages,
        "bot_log": bot_log,
        "audit_entries": audit_entries,
    });
    Ok((doc, media))
}

/// The ZIP, in memory: `subject.json` and `media/…`, each file decrypted only into it
/// (blocking: file reads and decryption).
pub fn build_zip(doc: &Value, store: &MediaStore, media: &[MediaRef]) -> Result<Vec<u8>, String> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let e = |e: zip::result::ZipError| e.to_string();
    zip.start_file("subject.json", opts).map_err(e)?;
    let json = serde_json::to_vec_pretty(doc).map_err(|x| x.to_string())?;
    zip.write_all(&json).map_err(|x| x.to_string())?;
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for m in media {
        let bytes = match store.read(&m.stored_name) {
            Ok(b) => b,
            Err(err) => {
                tracing::error!(error = %err, "a media file for an export could not be read");
                continue;
            }
        };
        zip.start_file(m.path_in_zip.as_str(), stored).map_err(e)?;
        zip.write_all(&bytes).map_err(|x| x.to_string())?;
    }
    let cursor = zip.finish().map_err(e)?;
    Ok(cursor.into_inner())
}

/// Audits an export (who exported whose data: the request id, never the data).
pub fn record_export(c: &Connection, actor: &Actor, id: i64, files: usize, now: i64) -> rusqlite::Result<()> {
    audit::record(
        c,
        actor,
        "privacy.request.export",
        &format!("privacy_request:{id}"),
        &format!("{files} media files"),
        now,
    )
}

fn not_found() -> DbError {
    DbError::Work(Box::new(crate::error::AppError::NotFound))
}

// ---- objection -----------------------------------------------------------------------

/// An objection to marketing: the opt-out goes through the consent core (consent log
/// and audit line), and the request is closed with what was done.
pub fn record_objection(c: &Connection, actor: &Actor, id: i64, now: i64) -> Result<Result<(), Refusal>, DbError> {
    let Some(r) = find(c, id)? else {
        return Err(not_found());
    };
    if !r.is_open() {
        return Ok(Err(Refusal::NotOpen));
    }
    if r.kind != Kind::Objection {
        return Ok(Err(Refusal::WrongKind));
    }
    let s = subject(c, &r)?;
    let Some(contact) = s.contact_id else {
        return Ok(Err(Refusal::NoContact));
    };
    let wording = format!("Objection to marketing, data-subject request #{id}");
    let evidence = format!("privacy_request:{id}");
    let outcome = consent::record(
        c,
        &Change {
            contact,
            purpose: Purpose::Marketing,
            state: State::OptedOut,
            source: Source::Agent,
            occurred_at: Some(r.received_at),
            wording: &wording,
            evidence: &evidence,
        },
        actor,
        now,
    )?;
    let text = match outcome {
        consent::Outcome::Changed { .. } => "marketing opt-out recorded",
        _ => "marketing was already opted out",
    };
    Ok(close(c, actor, id, Status::Done, text, now)?)
}

// ---- erasure -------------------------------------------------------------------------

/// What an erasure removed, per kind.
#[derive(Debug, Clone)]
pub struct Erased {
    pub removed: Removed,
    pub checkpointed: bool,
}

/// Everything about the person but their messages (those go first, chunk by chunk):
/// campaign rows, outbox rows, bot log, conversations with their notes, raw deliveries
/// that carry their id, import skips, the contact with its consent log; notes elsewhere
/// and audit lines keep their fact with the identifiers replaced by `[erased]`.
fn erase_rest(c: &Connection, s: &Subject) -> rusqlite::Result<Removed> {
    let mut r = Removed::new();
    let cid = s.contact_id.unwrap_or(-1);
    let mut put = |k: &'static str, n: usize| {
        *r.entry(k).or_insert(0) += i64::try_from(n).unwrap_or(i64::MAX);
    };
    for ident in &s.identifiers {
        put(
            "outbox",
            c.execute(
                "DELETE FROM outbox WHERE recipient = ?1 AND state <> 'sending'",
                [ident],
            )?,
        );
        put(
            "campaign_recipients",
            c.execute("DELETE FROM campaign_recipients WHERE recipient = ?1", [ident])?,
        );
        put(
            "import_skips",
            c.execute("DELETE FROM import_skips WHERE phone = ?1", [ident])?,
        );
        put(
            "webhook_deliveries",
            c.execute(
                "DELETE FROM webhook_inbox WHERE state IN ('done', 'quarantined') AND instr(body, CAST(?1 AS BLOB)) > 0",
                [ident],
            )?,
        );
    }
    put(
        "outbox",
        c.execute("DELETE FROM outbox WHERE contact_id = ?1 AND state <> 'sending'", [cid])?,
    );
    put(
        "campaign_recipients",
        c.execute("DELETE FROM campaign_recipients WHERE contact_id = ?1", [cid])?,
    );
    put(
        "bot_log",
        c.execute(
            &format!("DELETE FROM bot_log WHERE contact_id = ?1 OR conversation_id IN ({OWN_CONVERSATIONS})"),
            [cid],
        )?,
    );
    put(
        "notes_and_events",
        c.execute(
            &format!("DELETE FROM conversation_events WHERE conversation_id IN ({OWN_CONVERSATIONS})"),
            [cid],
        )?,
    );
    put(
        "conversations",
        c.execute("DELETE FROM conversations WHERE contact_id = ?1", [cid])?,
    );
    for ident in &s.identifiers {
        put(
            "notes_anonymised",
            c.execute(
                "UPDATE conversation_events SET body = replace(body, ?1, '[erased]') WHERE instr(body, ?1) > 0",
                [ident],
            )?,
        );
        put(
            "audit_anonymised",
            c.execute(
                "UPDATE audit_log SET target = replace(target, ?1, '[erased]'), details = replace(details, ?1, '[erased]')
                 WHERE instr(target, ?1) > 0 OR instr(details, ?1) > 0",
                [ident],
            )?,
        );
    }
    put(
        "consent_log",
        c.execute("DELETE FROM consent_log WHERE contact_id = ?1", [cid])?,
    );
    put("contacts", c.execute("DELETE FROM contacts WHERE id = ?1", [cid])?);
    Ok(r)
}

/// Erases everything about the person of an open erasure request: the same real purge
/// as retention (secure_delete, media unlinked, WAL checkpointed), recorded as a run,
/// audited with the counts, and the request closed with them.
pub async fn erase(
    db: &Db,
    media: &MediaStore,
    actor: &Actor,
    id: i64,
    now: i64,
) -> Result<Result<Erased, Refusal>, DbError> {
    let check = db
        .read(move |c| {
            let r = find(c, id)?.ok_or_else(not_found)?;
            if !r.is_open() {
                return Ok(Err(Refusal::NotOpen));
            }
            if r.kind != Kind::Erasure {
                return Ok(Err(Refusal::WrongKind));
            }
            let s = subject(c, &r)?;
            if let Some(contact) = s.contact_id {
                if retention::hold_of(c, contact)?.is_some() {
                    return Ok(Err(Refusal::Held));
                }
            }
            Ok(Ok(s))
        })
        .await?;
    let s = match check {
        Ok(s) => s,
        Err(r) => return Ok(Err(r)),
    };
    let cause = format!("erasure:{id}");
    let run = db.write(move |c| Ok(retention::start_run(c, &cause, now)?)).await?;
    let mut removed = Removed::new();
    let mut errors = Vec::new();
    if let Some(contact) = s.contact_id {
        let (r, e) = retention::purge_messages(db, media, Scope::Contact(contact)).await?;
        removed = r;
        errors = e;
    }
    let actor2 = actor.clone();
    let (removed, text) = db
        .write(move |c| {
            let rest = erase_rest(c, &s)?;
            let mut removed = removed;
            for (k, v) in rest {
                *removed.entry(k).or_insert(0) += v;
            }
            let text: Vec<String> = removed
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            let text = if text.is_empty() {
                "nothing found".to_string()
            } else {
                text.join(", ")
            };
            retention::finish_run(c, run, &removed, false, None, now)?;
            audit::record(
                c,
                &actor2,
                "privacy.request.erase",
                &format!("privacy_request:{id}"),
                &text,
                now,
            )?;
            if close(c, &actor2, id, Status::Done, &format!("erased: {text}"), now)?.is_err() {
                return Err(DbError::Task("the request was closed meanwhile".into()));
            }
            Ok((removed, text))
        })
        .await?;
    let checkpointed = retention::checkpoint(db).await;
    let errs = (!errors.is_empty()).then(|| errors.join("; "));
    db.write(move |c| {
        c.execute(
            "UPDATE retention_runs SET checkpointed = ?2, error = ?3 WHERE id = ?1",
            params![run, checkpointed, errs],
        )?;
        Ok(())
    })
    .await?;
    tracing::info!(request = id, removed = %text, "erasure done");
    Ok(Ok(Erased { removed, checkpointed }))
}

// ---- evidence ------------------------------------------------------------------------

/// The evidence page's facts for data-subject requests (P19): open and overdue.
pub fn facts(c: &Connection, now: i64) -> rusqlite::Result<Vec<Fact>> {
    let open: i64 = c.query_row("SELECT count(*) FROM privacy_requests WHERE status = 'open'", [], |r| {
        r.get(0)
    })?;
    let overdue = overdue_count(c, now)?;
    let soon: i64 = c.query_row(
        "SELECT count(*) FROM privacy_requests WHERE status = 'open' AND due_at >= ?1 AND due_at < ?2",
        params![now, now + 7 * DAY],
        |r| r.get(0),
    )?;
    let oldest: Option<i64> = c.query_row(
        "SELECT min(due_at) FROM privacy_requests WHERE status = 'open'",
        [],
        |r| r.get(0),
    )?;
    let mut fact = format!("{open} open, {soon} due within 7 days");
    if let Some(d) = oldest {
        fact = format!("{fact}; next deadline {}", crate::clock::format_unix(d, None));
    }
    let light = if soon > 0 { Light::Amber } else { Light::Green };
    Ok(vec![
        Fact::new("privacy_ops.requests_open", light, fact),
        Fact::new(
            "privacy_ops.requests_overdue",
            if overdue > 0 { Light::Red } else { Light::Green },
            format!("{overdue} open requests past their 30-day deadline"),
        ),
        // Closed requests' export files are purged after 30 days by the policy; here
        // none is ever written: each export is built for its download and dropped.
        Fact::new(
            "privacy_ops.requests_exports",
            Light::Green,
            "no export files are kept: each export is built in memory for its download",
        ),
    ])
}
