//! A conversation's thread as the page shows it: messages of both directions with their
//! ticks, quotes, reactions and media, interleaved with private notes and system events.

use crate::i18n::{self, Locale};
use crate::whatsapp::inbound::MessageDetail;
use rusqlite::{Connection, params};
use serde::Serialize;
use std::collections::HashMap;

/// Messages shown per page of the thread (older ones behind a link).
pub const PAGE: i64 = 60;

#[derive(Debug, Clone, Serialize)]
pub struct Media {
    pub id: i64,
    pub state: String,
    pub mime: String,
    pub filename: String,
    /// Failed downloads so far (a pending file past its first try says so).
    pub attempts: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub id: i64,
    pub direction: String,
    pub kind: String,
    pub body: String,
    #[serde(skip)]
    pub detail: MessageDetail,
    pub understood: bool,
    pub wamid: Option<String>,
    pub sent_at: i64,
    pub status: Option<String>,
    pub error: Option<String>,
    /// Meta's error code of a send that did not go out (`None`: no answer, or no error).
    pub error_code: Option<i64>,
    pub author: Option<String>,
    pub quote: Option<String>,
    pub forwarded: bool,
    pub reactions: Vec<String>,
    pub media: Option<Media>,
}

impl Message {
    pub fn outbound(&self) -> bool {
        self.direction == "out"
    }

    /// The tick to show: pending, sent, delivered, read, failed (or none for inbound).
    pub fn tick(&self) -> &str {
        match self.status.as_deref() {
            _ if !self.outbound() => "",
            Some("played") => "read",
            Some(s @ ("sent" | "delivered" | "read" | "failed" | "held" | "retrying")) => s,
            _ => "pending",
        }
    }

    /// Why a reply did not go out, in the reader's words (message key); `None` when it
    /// went, or is held (the tick says what a held message is).
    pub fn trouble(&self) -> Option<&'static str> {
        matches!(self.tick(), "failed" | "retrying").then(|| crate::whatsapp::graph::plain_reason(self.error_code))
    }

    /// A failed reply can be tried again (a held one may have gone out: never blindly).
    pub fn retryable(&self) -> bool {
        self.tick() == "failed" && self.wamid.is_none()
    }

    /// Location: (latitude, longitude, name) when the coordinates are known.
    pub fn location(&self) -> Option<(f64, f64, String)> {
        let MessageDetail::Location(l) = &self.detail else {
            return None;
        };
        let name = [l.name.as_deref(), l.address.as_deref()]
            .iter()
            .flatten()
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        Some((l.latitude?, l.longitude?, name))
    }

    /// An OpenStreetMap link for a location (a link, never an embed).
    pub fn map_link(&self) -> String {
        self.location()
            .map(|(la, lo, _)| {
                format!("https://www.openstreetmap.org/?mlat={la:.6}&mlon={lo:.6}#map=17/{la:.6}/{lo:.6}")
            })
            .unwrap_or_default()
    }

    /// Shared contact cards: (name, phones joined).
    pub fn cards(&self) -> Vec<(String, String)> {
        let MessageDetail::Contacts { cards } = &self.detail else {
            return Vec::new();
        };
        cards
            .iter()
            .map(|c| {
                let phones = c.phones.iter().filter_map(|p| p.phone.as_deref()).collect::<Vec<_>>();
                (c.name.clone(), phones.join(", "))
            })
            .collect()
    }

    /// The wamid a reaction is on.
    fn reaction_target(&self) -> &str {
        match &self.detail {
            MessageDetail::Reaction {
                message_id: Some(m), ..
            } => m,
            _ => "",
        }
    }

    /// What an unsupported message was, for the "not supported" bubble.
    pub fn unsupported_what(&self) -> String {
        match &self.detail {
            MessageDetail::Unsupported {
                unsupported_type: Some(t),
                ..
            } => t.clone(),
            MessageDetail::Unknown { unknown_type } => unknown_type.clone(),
            _ => String::new(),
        }
    }

    pub fn is_media(&self) -> bool {
        matches!(
            self.kind.as_str(),
            "image" | "video" | "audio" | "document" | "sticker" | "media"
        )
    }
}

/// A note or system event.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: i64,
    pub kind: String,
    pub actor: String,
    pub body: String,
    pub at: i64,
}

impl Event {
    /// The event as a sentence in the reader's language.
    /// (`&Locale`: askama hands a page's fields by reference.)
    pub fn describe(&self, locale: &Locale) -> String {
        let locale = *locale;
        let who = if self.actor.is_empty() {
            i18n::t(locale, "inbox.ev_system").to_string()
        } else {
            self.actor.clone()
        };
        let what = match self.kind.as_str() {
            "status" => i18n::label(locale, "inbox.status", &self.body),
            _ => self.body.clone(),
        };
        match (self.kind.as_str(), what.is_empty()) {
            ("consent", _) => describe_consent(locale, &self.body),
            ("assigned", true) => i18n::tf(locale, "inbox.ev_unassigned", &[("who", &who)]),
            ("assigned", false) if self.actor.is_empty() => {
                i18n::tf(locale, "inbox.ev_auto_assigned", &[("to", &what)])
            }
            ("bot_handoff", _) => describe_bot_handoff(locale, &self.body),
            ("bot_off", _) => i18n::t(locale, "bot_ui.event.bot_off").to_string(),
            ("bot_on", _) => i18n::tf(locale, "bot_ui.event.bot_on", &[("who", &who)]),
            (kind, _) => i18n::tf(locale, &format!("inbox.ev_{kind}"), &[("who", &who), ("what", &what)]),
        }
    }
}

/// The bot's hand-off (`reason`, then the collected `field: value` lines).
fn describe_bot_handoff(locale: Locale, body: &str) -> String {
    let mut lines = body.lines();
    let reason = lines.next().unwrap_or_default();
    let reason = i18n::label(locale, "bot_ui.handoff_reason", reason);
    let collected: Vec<&str> = lines.filter(|l| !l.trim().is_empty()).collect();
    let head = i18n::tf(locale, "bot_ui.event.bot_handoff", &[("what", &reason)]);
    if collected.is_empty() {
        head
    } else {
        let what = collected.join(", ");
        format!(
            "{head}. {}",
            i18n::tf(locale, "bot_ui.event.bot_handoff_collected", &[("what", &what)])
        )
    }
}

/// A consent event (`source:state:detail`, see `contacts::optout::event_body`) as a
/// sentence: "Opted out of marketing by keyword STOP".
fn describe_consent(locale: Locale, body: &str) -> String {
    let mut parts = body.splitn(3, ':');
    let (source, state, detail) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let key = format!("consent.event.{source}_{state}");
    if i18n::has_key(&key) {
        i18n::tf(locale, &key, &[("what", detail)])
    } else {
        format!(
            "{}: {}",
            i18n::t(locale, "consent.marketing"),
            i18n::label(locale, "consent.state", state)
        )
    }
}

/// One entry of the thread, in time order.
#[derive(Debug, Clone)]
pub enum Item {
    Message(Box<Message>),
    Event(Event),
}

impl Item {
    fn at(&self) -> (i64, u8, i64) {
        match self {
            Item::Message(m) => (m.sent_at, 0, m.id),
            Item::Event(e) => (e.at, 1, e.id),
        }
    }
}

/// The newest messages (before message `before`, if given), oldest first.
pub fn list_messages(
    c: &Connection,
    conversation_id: i64,
    before: Option<i64>,
    limit: i64,
) -> rusqlite::Result<Vec<Message>> {
    let mut stmt = c.prepare_cached(
        "SELECT m.id, m.direction, m.kind, m.body, m.detail, m.understood, m.wamid, m.sent_at, m.status,
                coalesce(m.error_title || ': ' || m.error_details, m.error_title),
                -- Sent by the appliance itself (an opt-out confirmation): it says so.
                coalesce(u.name, CASE WHEN o.origin = 'system' THEN 'Whacaster' END), q.body, q.kind, m.forwarded,
                coalesce(f.id, g.id), coalesce(f.state, g.state), coalesce(f.mime_type, g.mime_type),
                coalesce(f.filename, g.filename, ''), m.error_code, coalesce(f.attempts, g.attempts, 0)
         FROM messages m
         LEFT JOIN users u ON u.id = m.author_id
         LEFT JOIN outbox o ON o.id = m.outbox_id AND m.author_id IS NULL
         LEFT JOIN messages q ON q.wamid = m.reply_to
         LEFT JOIN media_files f ON f.wamid = m.wamid
         LEFT JOIN media_files g ON g.message_id = m.id
         WHERE m.conversation_id = ?1 AND m.id < ?2
         ORDER BY m.id DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![conversation_id, before.unwrap_or(i64::MAX), limit], |r| {
        let (kind, detail): (String, String) = (r.get(2)?, r.get(4)?);
        let quote: Option<String> = r.get(11)?;
        let quote_kind: Option<String> = r.get(12)?;
        let media_id: Option<i64> = r.get(14)?;
        Ok(Message {
            id: r.get(0)?,
            direction: r.get(1)?,
            detail: MessageDetail::from_stored(&kind, &detail),
            kind,
            body: r.get(3)?,
            understood: r.get(5)?,
            wamid: r.get(6)?,
            sent_at: r.get(7)?,
            status: r.get(8)?,
            error: r.get(9)?,
            error_code: r.get(18)?,
            author: r.get(10)?,
            quote: match (quote, quote_kind) {
                (Some(q), _) if !q.is_empty() => Some(q),
                (_, Some(k)) => Some(format!("[{k}]")),
                _ => None,
            },
            forwarded: r.get::<_, i64>(13)? > 0,
            reactions: Vec::new(),
            media: match media_id {
                Some(id) => Some(Media {
                    id,
                    state: r.get(15)?,
                    attempts: r.get(19)?,
                    mime: r.get(16)?,
                    filename: r.get(17)?,
                }),
                None => None,
            },
        })
    })?;
    let mut out: Vec<Message> = rows.collect::<rusqlite::Result<_>>()?;
    out.reverse();
    Ok(out)
}

/// One message of the conversation, if it is there.
pub fn find_message(c: &Connection, conversation_id: i64, message_id: i64) -> rusqlite::Result<Option<Message>> {
    Ok(
        list_messages(c, conversation_id, Some(message_id.saturating_add(1)), 1)?
            .into_iter()
            .find(|m| m.id == message_id),
    )
}

/// Notes and events between two times (inclusive).
pub fn list_events(c: &Connection, conversation_id: i64, from: i64, to: i64) -> rusqlite::Result<Vec<Event>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, kind, actor_name, body, at FROM conversation_events
         WHERE conversation_id = ?1 AND at >= ?2 AND at <= ?3 ORDER BY id",
    )?;
    let rows = stmt.query_map(params![conversation_id, from, to], |r| {
        Ok(Event {
            id: r.get(0)?,
            kind: r.get(1)?,
            actor: r.get(2)?,
            body: r.get(3)?,
            at: r.get(4)?,
        })
    })?;
    rows.collect()
}

/// The thread page: reactions folded into the message they react to, and the events
/// of the same time span. Returns the items and the id for the "older" link.
pub fn list_items(
    c: &Connection,
    conversation_id: i64,
    before: Option<i64>,
) -> rusqlite::Result<(Vec<Item>, Option<i64>)> {
    let mut msgs = list_messages(c, conversation_id, before, PAGE + 1)?;
    let older = if i64::try_from(msgs.len()).unwrap_or(i64::MAX) > PAGE {
        msgs.remove(0);
        msgs.first().map(|m| m.id)
    } else {
        None
    };
    let from = if older.is_some() {
        msgs.first().map(|m| m.sent_at).unwrap_or(0)
    } else {
        0
    };
    let to = if before.is_some() {
        msgs.last().map(|m| m.sent_at).unwrap_or(i64::MAX)
    } else {
        i64::MAX
    };
    // Reactions (the newest per sender wins; an empty emoji removes it).
    let mut reactions: HashMap<String, (String, String)> = HashMap::new();
    msgs.retain(|m| {
        if m.kind != "reaction" {
            return true;
        }
        let target = m.reaction_target();
        reactions.insert(
            format!("{}|{target}", m.direction),
            (target.to_string(), m.body.clone()),
        );
        false
    });
    for (target, emoji) in reactions.into_values() {
        if let Some(m) = msgs.iter_mut().find(|m| m.wamid.as_deref() == Some(target.as_str())) {
            if !emoji.is_empty() {
                m.reactions.push(emoji);
            }
        }
    }
    let mut items: Vec<Item> = msgs.into_iter().map(|m| Item::Message(Box::new(m))).collect();
    items.extend(list_events(c, conversation_id, from, to)?.into_iter().map(Item::Event));
    items.sort_by_key(Item::at);
    Ok((items, older))
}
