//! The inbox: conversations, their messages, notes and events, who may see what,
//! assignment, labels, canned responses, search and live updates.
//!
//! Messages and their delivery status. Inbound messages are stored once per wamid;
//! statuses follow a one-way ladder (sent < delivered < read < played; failed is final
//! unless the message was already read), and every status is kept in the history.

pub mod access;
pub mod catalog;
pub mod conversations;
pub mod live;
pub mod manage;

pub mod outcomes;
pub mod reply;
pub mod routes;
pub mod search;
pub mod seed;
pub mod service;
pub mod thread;
pub mod views;

use rusqlite::{Connection, OptionalExtension, params};

/// What the inbox's services need, and nothing more (a clone is cheap): the store, the
/// clock, the live hub, the outbox's doorbell (rung when a reply was queued) and the
/// media path for attachments.
#[derive(Clone)]
pub struct Inbox {
    pub db: crate::store::Db,
    pub clock: crate::clock::Clock,
    pub live: live::Hub,
    pub outbox: crate::wake::Doorbell,
    pub media: crate::whatsapp::media::Media,
}

pub struct NewInbound<'a> {
    pub phone_number_id: &'a str,
    pub contact_id: Option<i64>,
    pub wamid: &'a str,
    pub kind: &'a str,
    pub body: &'a str,
    pub detail: &'a str,
    pub understood: bool,
    pub reply_to: Option<&'a str>,
    pub forwarded: u8,
    pub referral: Option<&'a str>,
    pub sent_at: i64,
}

/// Stores an inbound message; returns its id, or `None` when this wamid was stored
/// before (a duplicate).
pub fn insert_inbound(conn: &Connection, m: &NewInbound<'_>, now: i64) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached(
        "INSERT INTO messages (phone_number_id, contact_id, direction, wamid, kind, body, detail, understood,
                               reply_to, forwarded, referral, sent_at, created_at)
         VALUES (?1, ?2, 'in', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT (wamid) DO NOTHING
         RETURNING id",
    )?
    .query_row(
        params![
            m.phone_number_id,
            m.contact_id,
            m.wamid,
            m.kind,
            m.body,
            m.detail,
            m.understood,
            m.reply_to,
            m.forwarded,
            m.referral,
            m.sent_at,
            now
        ],
        |r| r.get(0),
    )
    .optional()
}

/// An outbound message: a reply queued from the inbox or the API (no wamid yet), or a
/// message the outbox sent for someone else (campaigns, the bot), recorded when Meta
/// accepted it.
pub struct NewOutbound<'a> {
    pub phone_number_id: &'a str,
    pub contact_id: Option<i64>,
    pub kind: &'a str,
    pub body: &'a str,
    pub outbox_id: i64,
    pub author_id: Option<i64>,
    pub reply_to: Option<&'a str>,
    pub wamid: Option<&'a str>,
    pub at: i64,
}

/// Stores an outbound message as `pending` and moves its conversation to the top.
/// Returns (message id, conversation id); `None` when its wamid was stored before.
pub fn insert_outbound(conn: &Connection, m: &NewOutbound<'_>) -> rusqlite::Result<Option<(i64, Option<i64>)>> {
    let id: Option<i64> = conn
        .query_row(
            "INSERT INTO messages (phone_number_id, contact_id, direction, wamid, kind, body, sent_at, created_at, status,
                                   outbox_id, author_id, reply_to)
             VALUES (?1, ?2, 'out', ?3, ?4, ?5, ?6, ?6, 'pending', ?7, ?8, ?9)
             ON CONFLICT (wamid) DO NOTHING
             RETURNING id",
            params![
                m.phone_number_id,
                m.contact_id,
                m.wamid,
                m.kind,
                m.body,
                m.at,
                m.outbox_id,
                m.author_id,
                m.reply_to
            ],
            |r| r.get(0),
        )
        .optional()?;
    let Some(id) = id else { return Ok(None) };
    let conversation = match m.contact_id {
        Some(contact_id) => {
            let activity = Activity {
                phone_number_id: m.phone_number_id,
                contact_id,
                message_id: id,
                at: m.at,
                preview: m.body,
                inbound: false,
            };
            Some(touch_conversation(conn, &activity, m.at)?)
        }
        None => None,
    };
    Ok(Some((id, conversation)))
}

/// Meta accepted the outbox row's message: it gets its wamid. False when the row has
/// no message yet (see [`insert_outbound`]).
pub fn link_wamid(conn: &Connection, outbox_id: i64, wamid: &str) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "UPDATE messages SET wamid = ?2,
                status = CASE WHEN status = 'retrying' THEN 'pending' ELSE status END,
                error_code = CASE WHEN status = 'retrying' THEN NULL ELSE error_code END,
                error_title = CASE WHEN status = 'retrying' THEN NULL ELSE error_title END
         WHERE outbox_id = ?1",
        params![outbox_id, wamid],
    )? > 0)
}

/// The outbox will try a message again after `code` (`None`: Meta did not answer): the
/// bubble says "trying again" instead of a quiet "queued".
pub fn mark_retrying(
    conn: &Connection,
    outbox_id: i64,
    code: Option<i64>,
    reason: &str,
    at: i64,
) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE messages SET status = 'retrying', status_at = ?2, error_code = ?3, error_title = ?4
         WHERE outbox_id = ?1 AND wamid IS NULL AND coalesce(status, 'pending') IN ('pending', 'retrying')",
        params![outbox_id, at, code, reason],
    )
}

/// An outbound message of conversation `id` whose send failed for good and never got a
/// wamid: (kind, outbox id).
pub fn find_failed_reply(conn: &Connection, id: i64, message_id: i64) -> rusqlite::Result<Option<(String, i64)>> {
    conn.query_row(
        "SELECT kind, outbox_id FROM messages
         WHERE id = ?1 AND conversation_id = ?2 AND direction = 'out' AND status = 'failed'
           AND wamid IS NULL AND outbox_id IS NOT NULL",
        params![message_id, id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

/// A failed reply is to be tried again: the bubble goes back to "queued".
pub fn mark_requeued(conn: &Connection, message_id: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE messages SET status = 'pending', status_at = NULL, error_code = NULL, error_title = NULL, error_details = NULL
         WHERE id = ?1",
        [message_id],
    )
}

/// The outbox gave up on a message (`failed`, with the reason) or holds it after a
/// crash (`held`): the bubble says so.
pub fn mark_unsent(
    conn: &Connection,
    outbox_id: i64,
    status: &str,
    code: Option<i64>,
    reason: &str,
    at: i64,
) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE messages SET status = ?2, status_at = ?3, error_code = ?4, error_title = ?5
         WHERE outbox_id = ?1 AND wamid IS NULL",
        params![outbox_id, status, at, code, reason],
    )
}

/// The conversation of an outbox row's message, if it has one.
pub fn conversation_of_outbox(conn: &Connection, outbox_id: i64) -> rusqlite::Result<Option<i64>> {
    conn.query_row(
        "SELECT conversation_id FROM messages WHERE outbox_id = ?1",
        [outbox_id],
        |r| r.get::<_, Option<i64>>(0),
    )
    .optional()
    .map(Option::flatten)
}

/// The contact a message was sent to or came from, by its wamid.
pub fn contact_of_wamid(conn: &Connection, wamid: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT contact_id FROM messages WHERE wamid = ?1")?
        .query_row([wamid], |r| r.get::<_, Option<i64>>(0))
        .optional()
        .map(Option::flatten)
}

/// The contact of an outbox row's message, if it has one.
pub fn contact_of_outbox(conn: &Connection, outbox_id: i64) -> rusqlite::Result<Option<i64>> {
    // A campaign's send has no message row until Meta accepts it: the outbox row names
    // the contact then.
    conn.query_row(
        "SELECT coalesce((SELECT contact_id FROM messages WHERE outbox_id = ?1),
                         (SELECT contact_id FROM outbox WHERE id = ?1))",
        [outbox_id],
        |r| r.get::<_, Option<i64>>(0),
    )
    .optional()
    .map(Option::flatten)
}

/// Position on the status ladder; unknown words rank 0 (kept in history, never applied).
pub fn status_rank(status: &str) -> i64 {
    match status {
        "sent" => 1,
        "delivered" => 2,
        "read" => 3,
        "played" => 4,
        "failed" => 5,
        _ => 0,
    }
}

pub struct StatusChange<'a> {
    pub wamid: &'a str,
    pub status: &'a str,
    pub at: i64,
    pub error: Option<(i64, &'a str, &'a str)>,
}

/// Records a status in the history; when it moves the message up the ladder, returns
/// the message's conversation (`None` for a duplicate, an out-of-order status, or a
/// message that is not ours yet: `settle_statuses` applies it later).
pub fn apply_status(conn: &Connection, s: &StatusChange<'_>) -> rusqlite::Result<Option<i64>> {
    let (code, title, details) = match s.error {
        Some((c, t, d)) => (Some(c), Some(t), Some(d)),
        None => (None, None, None),
    };
    let new = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO message_statuses (wamid, status, at, error_code, error_title, error_details)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![s.wamid, s.status, s.at, code, title, details])?;
    if new == 0 {
        return Ok(None);
    }
    advance(conn, s)
}

/// Moves the message up the ladder to `s` when the ladder allows it; returns the
/// message's conversation when it moved.
fn advance(conn: &Connection, s: &StatusChange<'_>) -> rusqlite::Result<Option<i64>> {
    let (code, title, details) = match s.error {
        Some((c, t, d)) => (Some(c), Some(t), Some(d)),
        None => (None, None, None),
    };
    let current: Option<(Option<String>, Option<i64>)> = conn
        .prepare_cached("SELECT status, conversation_id FROM messages WHERE wamid = ?1")?
        .query_row([s.wamid], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((current, conversation)) = current else {
        return Ok(None);
    };
    if !climbs(current.as_deref(), s.status) {
        return Ok(None);
    }
    conn.prepare_cached(
        "UPDATE messages SET status = ?2, status_at = ?3, error_code = ?4, error_title = ?5, error_details = ?6
         WHERE wamid = ?1",
    )?
    .execute(params![s.wamid, s.status, s.at, code, title, details])?;
    Ok(conversation)
}

/// Whether `new` may replace `current` on the ladder: only upwards, and a message
/// already read cannot fail any more (a late `failed` loses to `read`).
pub fn climbs(current: Option<&str>, new: &str) -> bool {
    let (rank, current_rank) = (status_rank(new), current.map(status_rank).unwrap_or(0));
    rank > current_rank && !(new == "failed" && current_rank >= status_rank("read"))
}

/// Applies statuses that arrived before the message had its wamid (Meta can report
/// `sent` before its answer to the send reached us).
pub fn settle_statuses(conn: &Connection, wamid: &str) -> rusqlite::Result<()> {
    type Hist = (String, i64, Option<i64>, Option<String>, Option<String>);
    let mut stmt = conn.prepare_cached(
        "SELECT status, at, error_code, error_title, error_details FROM message_statuses WHERE wamid = ?1 ORDER BY at, rowid",
    )?;
    let rows: Vec<Hist> = stmt
        .query_map([wamid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (status, at, code, title, details) in &rows {
        let error = code.map(|c| (c, title.as_deref().unwrap_or(""), details.as_deref().unwrap_or("")));
        advance(
            conn,
            &StatusChange {
                wamid,
                status,
                at: *at,
                error,
            },
        )?;
    }
    Ok(())
}

/// The status history of a message, oldest first: (status, at).
pub fn status_history(conn: &Connection, wamid: &str) -> rusqlite::Result<Vec<(String, i64)>> {
    let mut stmt = conn.prepare("SELECT status, at FROM message_statuses WHERE wamid = ?1 ORDER BY at, rowid")?;
    let rows = stmt.query_map([wamid], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// Records Meta's pricing for a message in the usage ledger (kept 7 years, P9).
pub fn record_usage(
    conn: &Connection,
    wamid: &str,
    category: &str,
    pricing_type: &str,
    billable: bool,
    model: &str,
    at: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO usage_ledger (wamid, category, pricing_type, billable, model, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![wamid, category, pricing_type, billable, model, at])?;
    Ok(())
}

/// A message that moves a conversation.
#[derive(Clone, Copy)]
pub struct Activity<'a> {
    pub phone_number_id: &'a str,
    pub contact_id: i64,
    pub message_id: i64,
    /// When the message was sent (Meta's time for inbound).
    pub at: i64,
    pub preview: &'a str,
    pub inbound: bool,
}

/// The conversation of a contact on a number, created when new. An inbound message
/// (`inbound = true`) reopens a resolved or snoozed conversation and refreshes the
/// customer-service window; every message moves the conversation to the top.
pub fn touch_conversation(conn: &Connection, a: &Activity<'_>, now: i64) -> rusqlite::Result<i64> {
    let Activity {
        phone_number_id,
        contact_id,
        message_id,
        at,
        preview,
        inbound,
    } = *a;
    let preview: String = preview.chars().take(140).collect();
    let inbound_at = inbound.then_some(at);
    let id: i64 = conn.prepare_cached(
        "INSERT INTO conversations (phone_number_id, contact_id, last_message_id, last_message_at, last_inbound_at,
                                    last_inbound_id, preview, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, CASE WHEN ?8 THEN ?3 END, ?6, ?7, ?7)
         ON CONFLICT (phone_number_id, contact_id) DO UPDATE SET
             last_message_id = CASE WHEN excluded.last_message_at >= last_message_at THEN excluded.last_message_id ELSE last_message_id END,
             preview = CASE WHEN excluded.last_message_at >= last_message_at THEN excluded.preview ELSE preview END,
             last_message_at = max(last_message_at, excluded.last_message_at),
             last_inbound_at = max(coalesce(last_inbound_at, 0), coalesce(excluded.last_inbound_at, 0)),
             last_inbound_id = CASE WHEN ?8 THEN max(coalesce(last_inbound_id, 0), excluded.last_message_id)
                               ELSE last_inbound_id END,
             status = CASE WHEN ?8 AND status IN ('resolved', 'snoozed') THEN 'open' ELSE status END,
             snoozed_until = CASE WHEN ?8 AND status IN ('resolved', 'snoozed') THEN NULL ELSE snoozed_until END,
             updated_at = excluded.updated_at
         RETURNING id",
    )?
    .query_row(
        params![phone_number_id, contact_id, message_id, at, inbound_at, preview, now, inbound],
        |r| r.get(0),
    )?;
    conn.prepare_cached("UPDATE messages SET conversation_id = ?1 WHERE id = ?2")?
        .execute(params![id, message_id])?;
    Ok(id)
}

/// Snoozed conversations whose time has come are open again; returns how many.
pub fn wake_snoozed(conn: &Connection, now: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE conversations SET status = 'open', snoozed_until = NULL, updated_at = ?1
         WHERE status = 'snoozed' AND coalesce(snoozed_until, 0) <= ?1",
        [now],
    )
}

/// The job `wake_snoozed_conversations`.
pub async fn wake_snoozed_conversations(db: &crate::store::Db, now: i64) -> Result<String, String> {
    db.write(move |c| Ok(wake_snoozed(c, now)?))
        .await
        .map(|n| format!("{n} snoozed conversations reopened"))
        .map_err(|e| e.to_string())
}

pub fn count_messages_of_contact(conn: &Connection, contact_id: i64) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT count(*) FROM messages WHERE contact_id = ?1",
        [contact_id],
        |r| r.get(0),
    )
}

/// The id of the message with this wamid.
pub fn message_id(conn: &Connection, wamid: &str) -> rusqlite::Result<Option<i64>> {
    conn.query_row("SELECT id FROM messages WHERE wamid = ?1", [wamid], |r| r.get(0))
        .optional()
}

/// When the 24-hour customer-service window closes; `None` when it never opened.
pub fn window_deadline(last_inbound_at: Option<i64>) -> Option<i64> {
    // Checked: a stored time is never trusted not to overflow.
    last_inbound_at.map(|t| t.saturating_add(24 * 3600))
}

/// Seconds left in the 24-hour customer-service window (0 when closed).
pub fn window_left(last_inbound_at: Option<i64>, now: i64) -> i64 {
    window_deadline(last_inbound_at)
        .map(|d| d.saturating_sub(now).max(0))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_ladder_goes_sent_delivered_read_played_failed() {
        let ladder = ["sent", "delivered", "read", "played", "failed"];
        let ranks: Vec<i64> = ladder.iter().map(|s| status_rank(s)).collect();
        assert_eq!(ranks, [1, 2, 3, 4, 5]);
        assert_eq!(status_rank("deleted"), 0, "an unknown word is below everything");
        assert_eq!(status_rank(""), 0);
        assert_eq!(status_rank("Read"), 0, "Meta's words are lower case");
    }

    #[test]
    fn a_status_only_climbs() {
        assert!(climbs(None, "sent"));
        assert!(climbs(None, "read"), "steps may be skipped");
        assert!(climbs(Some("sent"), "delivered"));
        assert!(climbs(Some("read"), "played"));
        assert!(!climbs(Some("delivered"), "sent"), "a late sent loses");
        assert!(!climbs(Some("read"), "delivered"), "a late delivered loses");
        assert!(!climbs(Some("read"), "read"), "a duplicate changes nothing");
        assert!(!climbs(None, "hologram"), "an unknown word is never applied");
        assert!(!climbs(Some("sent"), "hologram"));
        assert!(
            climbs(Some("hologram"), "sent"),
            "an unknown current status is overtaken"
        );
    }

    #[test]
    fn a_message_that_was_read_cannot_fail_any_more() {
        assert!(climbs(Some("sent"), "failed"));
        assert!(climbs(Some("delivered"), "failed"));
        assert!(climbs(None, "failed"));
        assert!(!climbs(Some("read"), "failed"));
        assert!(!climbs(Some("played"), "failed"));
        assert!(!climbs(Some("failed"), "read"), "nor come back from failed");
    }

    #[test]
    fn the_window_is_24_hours_after_the_last_message_in() {
        assert_eq!(window_left(Some(1_000), 1_000), 24 * 3600);
        assert_eq!(window_left(Some(1_000), 1_000 + 24 * 3600 - 1), 1);
        assert_eq!(window_left(Some(1_000), 1_000 + 24 * 3600), 0);
        assert_eq!(window_left(Some(1_000), 1_000 + 48 * 3600), 0, "closed, never negative");
        assert_eq!(window_left(None, 1_000), 0, "never opened");
    }

    #[test]
    fn the_window_deadline_never_overflows() {
        assert_eq!(window_deadline(Some(1_000)), Some(1_000 + 24 * 3600));
        assert_eq!(
            window_deadline(Some(i64::MAX - 5)),
            Some(i64::MAX),
            "a stored time past all sense"
        );
        assert_eq!(window_deadline(None), None);
        assert_eq!(window_left(Some(i64::MAX - 5), i64::MIN), i64::MAX);
    }
}

/// The conversation list's one-line preview of a message: its text, marked by a sign for
/// what it is when it is not plain text (a place's name must not read like the sender's
/// name, nor a file name like a sentence). Signs, not words, so the stored preview reads
/// the same in both languages.
pub fn preview_of(kind: &str, body: &str) -> String {
    let sign = match kind {
        "text" => return body.to_string(),
        "image" | "sticker" => "📷",
        "video" => "🎬",
        "audio" | "voice" => "🎤",
        "document" => "📄",
        "location" => "📍",
        "contacts" => "👤",
        "reaction" => "👍",
        "button" | "interactive" => "↩",
        "order" => "🛒",
        _ => "•",
    };
    if body.is_empty() {
        sign.to_string()
    } else {
        format!("{sign} {body}")
    }
}

#[cfg(test)]
mod preview_tests {
    #[test]
    fn a_place_or_a_file_is_marked_and_text_is_itself() {
        assert_eq!(super::preview_of("text", "Rumah"), "Rumah");
        assert_eq!(super::preview_of("location", "Rumah"), "📍 Rumah");
        assert_eq!(super::preview_of("document", "nota.pdf"), "📄 nota.pdf");
        assert_eq!(super::preview_of("image", ""), "📷");
        assert_eq!(super::preview_of("something_new", ""), "•");
    }
}
