//! Conversations as the inbox lists and changes them: the filtered list (keyset
//! pagination, newest activity first), assignment (by hand and round-robin), status and
//! snooze, labels, private notes, system events, and what each agent has read.

use super::access::{self, Viewer};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use serde::Serialize;

/// Where a conversation stands (the `status` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversationStatus {
    Open,
    /// Waiting on the customer or a colleague.
    Pending,
    Resolved,
    /// Out of the way until a time; a customer's message or the time reopens it.
    Snoozed,
}

impl ConversationStatus {
    pub const ALL: [ConversationStatus; 4] = [
        ConversationStatus::Open,
        ConversationStatus::Pending,
        ConversationStatus::Resolved,
        ConversationStatus::Snoozed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConversationStatus::Open => "open",
            ConversationStatus::Pending => "pending",
            ConversationStatus::Resolved => "resolved",
            ConversationStatus::Snoozed => "snoozed",
        }
    }

    /// A status as forms and the API spell it; `None` for anything else.
    pub fn parse(s: &str) -> Option<ConversationStatus> {
        ConversationStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl rusqlite::types::ToSql for ConversationStatus {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Mine,
    Unassigned,
    All,
}

impl Tab {
    pub fn parse(s: &str) -> Option<Tab> {
        match s {
            "mine" => Some(Tab::Mine),
            "unassigned" => Some(Tab::Unassigned),
            "all" => Some(Tab::All),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Tab::Mine => "mine",
            Tab::Unassigned => "unassigned",
            Tab::All => "all",
        }
    }
}

/// What the list shows. `status` "all" (or empty) means every status.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub tab: Option<Tab>,
    pub status: String,
    pub number: String,
    pub label: Option<i64>,
    pub unread: bool,
    pub contact: Option<i64>,
    /// Keyset cursor: (last_message_at, id) of the last row of the previous page.
    pub before: Option<(i64, i64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LabelTag {
    pub id: i64,
    pub name: String,
    pub color: String,
}

impl LabelTag {
    /// From a row selecting `id, name, color` of `labels`.
    pub fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LabelTag> {
        Ok(LabelTag {
            id: r.get(0)?,
            name: r.get(1)?,
            color: r.get(2)?,
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub id: i64,
    pub contact_id: i64,
    pub contact_name: String,
    pub phone: Option<String>,
    pub phone_number_id: String,
    pub number_name: String,
    pub status: String,
    pub snoozed_until: Option<i64>,
    pub assignee_id: Option<i64>,
    pub assignee_name: Option<String>,
    pub last_message_at: i64,
    pub last_inbound_at: Option<i64>,
    pub preview: String,
    pub unread: i64,
    pub labels: Vec<LabelTag>,
    /// A reply since the customer last wrote did not go out (failed, held or retrying).
    pub trouble: bool,
}

impl Row {
    pub fn cursor(&self) -> String {
        format!("{}_{}", self.last_message_at, self.id)
    }
}

pub fn parse_cursor(s: &str) -> Option<(i64, i64)> {
    let (a, b) = s.split_once('_')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

const ROW_SELECT: &str = "SELECT c.id, c.contact_id,
        coalesce(nullif(k.name, ''), nullif(k.profile_name, ''), k.phone_e164, k.bsuid, ''),
        k.phone_e164, c.phone_number_id, coalesce(n.display_name, c.phone_number_id), c.status, c.snoozed_until,
        c.assignee_id, u.name, c.last_message_at, c.last_inbound_at, c.preview,
        coalesce(c.last_inbound_id, 0), coalesce(r.last_read_id, 0),
        EXISTS (SELECT 1 FROM messages f WHERE f.conversation_id = c.id AND f.id > coalesce(c.last_inbound_id, 0)
                AND f.direction = 'out' AND f.status IN ('failed', 'held', 'retrying'))
    FROM conversations c
    JOIN contacts k ON k.id = c.contact_id
    LEFT JOIN wa_numbers n ON n.phone_number_id = c.phone_number_id
    LEFT JOIN users u ON u.id = c.assignee_id
    LEFT JOIN conversation_reads r ON r.conversation_id = c.id AND r.user_id = ?";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Row, i64, i64)> {
    Ok((
        Row {
            id: r.get(0)?,
            contact_id: r.get(1)?,
            contact_name: r.get(2)?,
            phone: r.get(3)?,
            phone_number_id: r.get(4)?,
            number_name: r.get(5)?,
            status: r.get(6)?,
            snoozed_until: r.get(7)?,
            assignee_id: r.get(8)?,
            assignee_name: r.get(9)?,
            last_message_at: r.get(10)?,
            last_inbound_at: r.get(11)?,
            preview: r.get(12)?,
            unread: 0,
            labels: Vec::new(),
            trouble: r.get(15)?,
        },
        r.get(13)?,
        r.get(14)?,
    ))
}

/// Unread inbound messages after `last_read` (counted up to 100).
fn unread_count(c: &Connection, id: i64, last_read: i64) -> rusqlite::Result<i64> {
    c.query_row(
        "SELECT count(*) FROM (SELECT 1 FROM messages WHERE conversation_id = ?1 AND id > ?2 AND direction = 'in' LIMIT 100)",
        params![id, last_read],
        |r| r.get(0),
    )
}

fn finish(c: &Connection, raw: Vec<(Row, i64, i64)>) -> rusqlite::Result<Vec<Row>> {
    let mut out = Vec::with_capacity(raw.len());
    let mut stmt = c.prepare_cached(
        "SELECT l.id, l.name, l.color FROM conversation_labels cl JOIN labels l ON l.id = cl.label_id
         WHERE cl.conversation_id = ?1 ORDER BY l.name",
    )?;
    for (mut r, last_in, last_read) in raw {
        if last_in > last_read {
            r.unread = unread_count(c, r.id, last_read)?;
        }
        r.labels = stmt
            .query_map([r.id], LabelTag::from_row)?
            .collect::<rusqlite::Result<_>>()?;
        out.push(r);
    }
    Ok(out)
}

/// One page of the list for `viewer`, newest activity first.
pub fn list(c: &Connection, viewer: &Viewer, f: &Filter, limit: i64) -> rusqlite::Result<Vec<Row>> {
    let me = viewer.user_id.unwrap_or(-1);
    let mut sql = format!("{ROW_SELECT} WHERE ");
    let mut args: Vec<Value> = vec![Value::Integer(me)];
    let (visible, p) = viewer.sql();
    sql.push_str(visible);
    args.extend(p.map(Value::Integer));
    match f.tab {
        Some(Tab::Mine) => {
            sql.push_str(" AND c.assignee_id = ?");
            args.push(Value::Integer(me));
        }
        Some(Tab::Unassigned) => sql.push_str(" AND c.assignee_id IS NULL"),
        Some(Tab::All) | None => {}
    }
    if let Some(status) = ConversationStatus::parse(&f.status) {
        sql.push_str(" AND c.status = ?");
        args.push(Value::Text(status.as_str().to_string()));
    }
    if !f.number.is_empty() {
        sql.push_str(" AND c.phone_number_id = ?");
        args.push(Value::Text(f.number.clone()));
    }
    if let Some(l) = f.label {
        sql.push_str(" AND c.id IN (SELECT conversation_id FROM conversation_labels WHERE label_id = ?)");
        args.push(Value::Integer(l));
    }
    if let Some(k) = f.contact {
        sql.push_str(" AND c.contact_id = ?");
        args.push(Value::Integer(k));
    }
    if f.unread {
        sql.push_str(" AND coalesce(c.last_inbound_id, 0) > coalesce(r.last_read_id, 0)");
    }
    if let Some((at, id)) = f.before {
        sql.push_str(" AND (c.last_message_at < ? OR (c.last_message_at = ? AND c.id < ?))");
        args.extend([Value::Integer(at), Value::Integer(at), Value::Integer(id)]);
    }
    sql.push_str(" ORDER BY c.last_message_at DESC, c.id DESC LIMIT ?");
    args.push(Value::Integer(limit));
    let mut stmt = c.prepare_cached(&sql)?;
    let raw = stmt
        .query_map(params_from_iter(args), row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    finish(c, raw)
}

/// One conversation as the viewer sees it, or `None` when absent or not visible.
pub fn find_conversation(c: &Connection, viewer: &Viewer, id: i64) -> rusqlite::Result<Option<Row>> {
    let sql = format!("{ROW_SELECT} WHERE c.id = ?");
    let raw = c
        .query_row(&sql, params![viewer.user_id.unwrap_or(-1), id], row)
        .optional()?;
    match raw {
        Some(r) if viewer.can_see(r.0.assignee_id) => Ok(finish(c, vec![r])?.pop()),
        _ => Ok(None),
    }
}

/// Conversations with unread messages per tab (each counted up to 100): (mine, unassigned).
pub fn count_unread_tabs(c: &Connection, viewer: &Viewer) -> rusqlite::Result<(i64, i64)> {
    let me = viewer.user_id.unwrap_or(-1);
    let count = |cond: &str, arg: Option<i64>| -> rusqlite::Result<i64> {
        let sql = format!(
            "SELECT count(*) FROM (SELECT 1 FROM conversations c
               LEFT JOIN conversation_reads r ON r.conversation_id = c.id AND r.user_id = ?1
               WHERE {cond} AND c.status IN ('open', 'pending')
                 AND coalesce(c.last_inbound_id, 0) > coalesce(r.last_read_id, 0) LIMIT 100)"
        );
        match arg {
            Some(a) => c.query_row(&sql, params![me, a], |r| r.get(0)),
            None => c.query_row(&sql, params![me], |r| r.get(0)),
        }
    };
    Ok((
        count("c.assignee_id = ?2", Some(me))?,
        count("c.assignee_id IS NULL", None)?,
    ))
}

/// Marks everything up to the newest message read for `user`; returns the newest
/// inbound wamid when it was not read before (for the read receipt).
pub fn mark_read(c: &Connection, id: i64, user_id: i64) -> rusqlite::Result<Option<String>> {
    let (last_in, last): (Option<i64>, Option<i64>) = c.query_row(
        "SELECT last_inbound_id, last_message_id FROM conversations WHERE id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let before: i64 = c
        .query_row(
            "SELECT last_read_id FROM conversation_reads WHERE conversation_id = ?1 AND user_id = ?2",
            params![id, user_id],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    let newest = last.unwrap_or(0).max(last_in.unwrap_or(0));
    if newest > before {
        c.execute(
            "INSERT INTO conversation_reads (conversation_id, user_id, last_read_id) VALUES (?1, ?2, ?3)
             ON CONFLICT (conversation_id, user_id) DO UPDATE SET last_read_id = max(last_read_id, excluded.last_read_id)",
            params![id, user_id, newest],
        )?;
    }
    match last_in {
        Some(m) if m > before => c
            .query_row("SELECT wamid FROM messages WHERE id = ?1", [m], |r| r.get(0))
            .optional()
            .map(Option::flatten),
        _ => Ok(None),
    }
}

/// A note or system event in the thread.
pub fn add_event(
    c: &Connection,
    id: i64,
    kind: &str,
    actor: Option<(i64, &str)>,
    body: &str,
    now: i64,
) -> rusqlite::Result<i64> {
    c.execute(
        "INSERT INTO conversation_events (conversation_id, kind, actor_id, actor_name, body, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            id,
            kind,
            actor.map(|a| a.0),
            actor.map(|a| a.1).unwrap_or(""),
            body,
            now
        ],
    )?;
    Ok(c.last_insert_rowid())
}

/// Sets the assignee; returns the previous one, or `None` when nothing changed.
pub fn assign(c: &Connection, id: i64, to: Option<i64>, now: i64) -> rusqlite::Result<Option<Option<i64>>> {
    let Some(before) = access::find_assignee(c, id)? else {
        return Ok(None);
    };
    if before == to {
        return Ok(None);
    }
    c.execute(
        "UPDATE conversations SET assignee_id = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, to, now],
    )?;
    if let Some(u) = to {
        c.execute("UPDATE users SET last_assigned_at = ?2 WHERE id = ?1", params![u, now])?;
    }
    Ok(Some(before))
}

/// Sets the status (`snoozed` needs a time in the future); false when unchanged.
pub fn set_status(
    c: &Connection,
    id: i64,
    status: ConversationStatus,
    snoozed_until: Option<i64>,
    now: i64,
) -> rusqlite::Result<bool> {
    let until = if status == ConversationStatus::Snoozed {
        snoozed_until
    } else {
        None
    };
    Ok(c.execute(
        "UPDATE conversations SET status = ?2, snoozed_until = ?3, updated_at = ?4
         WHERE id = ?1 AND (status <> ?2 OR coalesce(snoozed_until, 0) <> coalesce(?3, 0))",
        params![id, status, until, now],
    )? == 1)
}

pub fn add_label(c: &Connection, id: i64, label_id: i64) -> rusqlite::Result<bool> {
    Ok(c.execute(
        "INSERT OR IGNORE INTO conversation_labels (conversation_id, label_id) VALUES (?1, ?2)",
        params![id, label_id],
    )? == 1)
}

pub fn remove_label(c: &Connection, id: i64, label_id: i64) -> rusqlite::Result<bool> {
    Ok(c.execute(
        "DELETE FROM conversation_labels WHERE conversation_id = ?1 AND label_id = ?2",
        params![id, label_id],
    )? == 1)
}

/// Round-robin: the available agent (role agent) with fewer than `cap` open or pending
/// conversations who was assigned one longest ago. Assigns and returns them.
pub fn auto_assign(c: &Connection, id: i64, cap: i64, now: i64) -> rusqlite::Result<Option<(i64, String)>> {
    let pick: Option<(i64, String)> = c
        .query_row(
            "SELECT u.id, u.name FROM users u
             WHERE u.active = 1 AND u.available = 1 AND u.role = 'agent'
               AND (SELECT count(*) FROM conversations x
                    WHERE x.assignee_id = u.id AND x.status IN ('open', 'pending')) < ?1
             ORDER BY u.last_assigned_at, u.id LIMIT 1",
            [cap],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((agent, name)) = pick else {
        return Ok(None);
    };
    match assign(c, id, Some(agent), now)? {
        Some(_) => Ok(Some((agent, name))),
        None => Ok(None),
    }
}

/// The conversation of a message (for live updates of its status).
pub fn find_by_wamid(c: &Connection, wamid: &str) -> rusqlite::Result<Option<i64>> {
    c.query_row("SELECT conversation_id FROM messages WHERE wamid = ?1", [wamid], |r| {
        r.get::<_, Option<i64>>(0)
    })
    .optional()
    .map(Option::flatten)
}

/// The conversation of a contact on a number, when there is one.
pub fn find_for_contact(c: &Connection, phone_number_id: &str, contact_id: i64) -> rusqlite::Result<Option<i64>> {
    c.prepare_cached("SELECT id FROM conversations WHERE phone_number_id = ?1 AND contact_id = ?2")?
        .query_row(params![phone_number_id, contact_id], |r| r.get(0))
        .optional()
}

/// Where a reply goes: (number's row id, recipient, contact id, last inbound time).
pub struct Route {
    pub number_id: i64,
    pub phone_number_id: String,
    pub waba_id: String,
    pub recipient: String,
    pub contact_id: i64,
    pub last_inbound_at: Option<i64>,
}

pub fn find_route(c: &Connection, id: i64) -> rusqlite::Result<Option<Route>> {
    c.query_row(
        "SELECT n.id, n.waba_id, coalesce(k.wa_id, k.bsuid, ltrim(k.phone_e164, '+')), k.id, c.last_inbound_at,
                n.phone_number_id
         FROM conversations c JOIN contacts k ON k.id = c.contact_id
         JOIN wa_numbers n ON n.phone_number_id = c.phone_number_id
         WHERE c.id = ?1",
        [id],
        |r| {
            Ok(Route {
                number_id: r.get(0)?,
                waba_id: r.get(1)?,
                recipient: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                contact_id: r.get(3)?,
                last_inbound_at: r.get(4)?,
                phone_number_id: r.get(5)?,
            })
        },
    )
    .optional()
}

/// The conversation of a contact on a number, created when there is none yet (an
/// agent starting a conversation from the contact page).
pub fn open_for_contact(c: &Connection, phone_number_id: &str, contact_id: i64, now: i64) -> rusqlite::Result<i64> {
    c.query_row(
        "INSERT INTO conversations (phone_number_id, contact_id, last_message_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?3, ?3)
         ON CONFLICT (phone_number_id, contact_id) DO UPDATE SET updated_at = updated_at
         RETURNING id",
        params![phone_number_id, contact_id, now],
        |r| r.get(0),
    )
}

/// A person takes the conversation from the bot (an agent's reply or assignment, or the
/// bot's own hand-off): the bot is silent in it from this transaction on, and what it
/// had queued and not yet sent is cancelled. Answers whether this is news worth an
/// event: the bot had spoken here (it has a session) and now stopped, or something it
/// queued was cancelled.
pub fn take_from_bot(c: &Connection, id: i64, reason: &str, now: i64) -> rusqlite::Result<bool> {
    let taken = c.execute(
        "UPDATE conversations SET bot_off_at = ?2, bot_off_reason = ?3 WHERE id = ?1 AND bot_off_at IS NULL",
        params![id, now, reason],
    )? == 1;
    let Some(route) = find_route(c, id)? else {
        return Ok(false);
    };
    let waiting = crate::whatsapp::outbox::queued_for(
        c,
        route.number_id,
        route.contact_id,
        crate::whatsapp::outbox::Origin::Bot,
    )?;
    let cancelled = crate::whatsapp::outbox::cancel_queued(c, &waiting, now)?;
    for &outbox_id in &cancelled {
        super::mark_unsent(c, outbox_id, "cancelled", None, "a person took over", now)?;
    }
    // The bot's footprint, read by table name (the inbox does not import the bot).
    let bot_was_here: bool = c
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM bot_sessions WHERE conversation_id = ?1)")?
        .query_row([id], |r| r.get(0))?;
    Ok((taken && bot_was_here) || !cancelled.is_empty())
}

/// The bot may answer the conversation again (it was resolved, or given back); false
/// when it already could.
pub fn give_to_bot(c: &Connection, id: i64, now: i64) -> rusqlite::Result<bool> {
    Ok(c.execute(
        "UPDATE conversations SET bot_off_at = NULL, bot_off_reason = NULL, bot_back_at = ?2
         WHERE id = ?1 AND bot_off_at IS NOT NULL",
        params![id, now],
    )? == 1)
}

/// Who has a conversation, as the bot reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BotControl {
    /// A person has it since, for this reason (`None`: the bot may answer).
    pub off: Option<(i64, String)>,
    /// When it was last given back to the bot.
    pub back_at: Option<i64>,
}

pub fn bot_control(c: &Connection, id: i64) -> rusqlite::Result<BotControl> {
    Ok(c.prepare_cached(
        "SELECT bot_off_at, coalesce(bot_off_reason, ''), bot_back_at FROM conversations WHERE id = ?1",
    )?
    .query_row([id], |r| {
        let off: Option<i64> = r.get(0)?;
        let reason: String = r.get(1)?;
        Ok(BotControl {
            off: off.map(|at| (at, reason)),
            back_at: r.get(2)?,
        })
    })
    .optional()?
    .unwrap_or_default())
}
