//! Changes to a conversation, the same for the inbox pages and the API: each one checks
//! that the conversation is visible, writes a system event into the thread and a line
//! into the audit log, in the same transaction as the change.

use super::access::Viewer;
use super::conversations::{self, ConversationStatus};
use crate::audit::{self, Actor};
use crate::error::AppError;
use rusqlite::Connection;

/// Who makes a change: the audit actor, and the user (for the thread's event line).
pub struct Who<'a> {
    pub actor: &'a Actor,
    pub user: Option<(i64, &'a str)>,
}

/// Who asks for a change, before the visibility rule is read: a signed-in user, or an
/// API key (no user, its role).
pub struct By {
    pub actor: Actor,
    pub user: Option<crate::auth::User>,
    pub role: crate::auth::Role,
}

/// Runs a change to conversation `id` in one write (visibility read in the same
/// transaction), then tells the open inbox pages.
pub async fn run<T: Send + 'static>(
    inbox: &super::Inbox,
    by: By,
    id: i64,
    f: impl FnOnce(&Connection, &Viewer, &Who<'_>, i64) -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    let now = inbox.clock.unix();
    let out = inbox
        .db
        .write(move |c| {
            let viewer = match &by.user {
                Some(u) => Viewer::for_user(c, u)?,
                None => Viewer::for_role(c, by.role)?,
            };
            let who = Who {
                actor: &by.actor,
                user: by.user.as_ref().map(|u| (u.id, u.name.as_str())),
            };
            Ok(f(c, &viewer, &who, now)?)
        })
        .await?;
    inbox
        .live
        .publish(&inbox.db, vec![(id, super::live::Kind::Changed)])
        .await;
    Ok(out)
}

/// Notes are private text for colleagues; this long at most.
pub const MAX_NOTE: usize = 4000;

fn target(id: i64) -> String {
    format!("conversation:{id}")
}

/// Assigns (or with `None` unassigns); false when nothing changed.
pub fn assign(
    c: &Connection,
    viewer: &Viewer,
    who: &Who<'_>,
    id: i64,
    to: Option<i64>,
    now: i64,
) -> Result<bool, AppError> {
    viewer.check(c, id)?;
    let name = match to {
        Some(u) => {
            crate::auth::repo::find_user(c, u)?
                .filter(|x| x.active)
                .ok_or(AppError::BadRequest("inbox.no_such_agent"))?
                .name
        }
        None => String::new(),
    };
    if conversations::assign(c, id, to, now)?.is_none() {
        return Ok(false);
    }
    conversations::add_event(c, id, "assigned", who.user, &name, now)?;
    if to.is_some() {
        take_from_bot(c, id, "assigned", now)?;
    }
    let details = to
        .map(|u| format!("to user:{u}"))
        .unwrap_or_else(|| "unassigned".into());
    audit::record(c, who.actor, "conversation.assign", &target(id), &details, now)?;
    Ok(true)
}

/// Whoever answers an unassigned conversation takes it, so a second agent does not
/// answer the same customer too. Nothing changes when someone already has it.
pub fn claim_on_reply(c: &Connection, id: i64, author: i64, now: i64) -> Result<(), AppError> {
    if super::access::find_assignee(c, id)? != Some(None) {
        return Ok(());
    }
    let Some(user) = crate::auth::repo::find_user(c, author)?.filter(|u| u.active) else {
        return Ok(());
    };
    conversations::assign(c, id, Some(author), now)?;
    conversations::add_event(c, id, "assigned", Some((user.id, &user.name)), &user.name, now)?;
    let actor = Actor {
        id: Some(user.id),
        label: user.email.clone(),
        ip: String::new(),
    };
    audit::record(
        c,
        &actor,
        "conversation.assign",
        &target(id),
        &format!("to user:{author} (answered it)"),
        now,
    )?;
    Ok(())
}

/// Sets the status; `snoozed` needs a time in the future.
pub fn set_status(
    c: &Connection,
    viewer: &Viewer,
    who: &Who<'_>,
    id: i64,
    status: &str,
    snoozed_until: Option<i64>,
    now: i64,
) -> Result<bool, AppError> {
    viewer.check(c, id)?;
    let Some(status) = ConversationStatus::parse(status) else {
        return Err(AppError::BadRequest("inbox.bad_status"));
    };
    if status == ConversationStatus::Snoozed && snoozed_until.is_none_or(|t| t <= now) {
        return Err(AppError::BadRequest("inbox.snooze_in_future"));
    }
    if !conversations::set_status(c, id, status, snoozed_until, now)? {
        return Ok(false);
    }
    conversations::add_event(c, id, "status", who.user, status.as_str(), now)?;
    // Resolved: the next message starts with the bot again.
    if status == ConversationStatus::Resolved {
        conversations::give_to_bot(c, id, now)?;
    }
    let details = match snoozed_until {
        Some(t) if status == ConversationStatus::Snoozed => format!("snoozed until {t}"),
        _ => status.as_str().to_string(),
    };
    audit::record(c, who.actor, "conversation.status", &target(id), &details, now)?;
    Ok(true)
}

/// Adds (`on`) or removes a label; false when nothing changed.
pub fn label(
    c: &Connection,
    viewer: &Viewer,
    who: &Who<'_>,
    id: i64,
    label_id: i64,
    on: bool,
    now: i64,
) -> Result<bool, AppError> {
    viewer.check(c, id)?;
    let label = super::catalog::find_label(c, label_id)?.ok_or(AppError::BadRequest("inbox.no_such_label"))?;
    let changed = if on {
        conversations::add_label(c, id, label_id)?
    } else {
        conversations::remove_label(c, id, label_id)?
    };
    if changed {
        let kind = if on { "label_added" } else { "label_removed" };
        conversations::add_event(c, id, kind, who.user, &label.name, now)?;
        audit::record(
            c,
            who.actor,
            &format!("conversation.{kind}"),
            &target(id),
            &label.name,
            now,
        )?;
    }
    Ok(changed)
}

/// Labels (`on`) or unlabels the person behind a conversation; false when unchanged.
pub fn contact_label(
    c: &Connection,
    viewer: &Viewer,
    who: &Who<'_>,
    id: i64,
    label_id: i64,
    on: bool,
    now: i64,
) -> Result<bool, AppError> {
    let conv = conversations::find_conversation(c, viewer, id)?.ok_or(AppError::NotFound)?;
    let label = super::catalog::find_label(c, label_id)?.ok_or(AppError::BadRequest("inbox.no_such_label"))?;
    let changed = super::catalog::set_contact_label(c, conv.contact_id, label_id, on)?;
    if changed {
        let action = if on {
            "contact.label_added"
        } else {
            "contact.label_removed"
        };
        audit::record(
            c,
            who.actor,
            action,
            &format!("contact:{}", conv.contact_id),
            &label.name,
            now,
        )?;
    }
    Ok(changed)
}

/// A private note (never sent to the customer).
pub fn note(c: &Connection, viewer: &Viewer, who: &Who<'_>, id: i64, body: &str, now: i64) -> Result<i64, AppError> {
    viewer.check(c, id)?;
    let body = body.trim();
    if body.is_empty() {
        return Err(AppError::BadRequest("inbox.empty"));
    }
    if body.chars().count() > MAX_NOTE {
        return Err(AppError::BadRequest("inbox.note_too_long"));
    }
    let event = conversations::add_event(c, id, "note", who.user, body, now)?;
    audit::record(
        c,
        who.actor,
        "conversation.note",
        &target(id),
        &format!("event:{event}"),
        now,
    )?;
    Ok(event)
}

/// Round-robin for a conversation a customer just wrote to, when the admin turned it on
/// and nobody has it yet.
pub fn auto_assign_if_due(c: &Connection, id: i64, now: i64) -> Result<(), AppError> {
    if !crate::settings::inbox_settings(c)?.auto_assign {
        return Ok(());
    }
    assign_round_robin(c, id, now)
}

/// Round-robin now (the bot hands a conversation to the team), if nobody has it yet.
pub fn assign_round_robin(c: &Connection, id: i64, now: i64) -> Result<(), AppError> {
    let s = crate::settings::inbox_settings(c)?;
    let open_unassigned: bool = c.query_row(
        "SELECT assignee_id IS NULL AND status = 'open' FROM conversations WHERE id = ?1",
        [id],
        |r| r.get(0),
    )?;
    if !open_unassigned {
        return Ok(());
    }
    if let Some((agent, name)) = conversations::auto_assign(c, id, s.assign_cap, now)? {
        conversations::add_event(c, id, "assigned", None, &name, now)?;
        audit::record(
            c,
            &Actor::system(),
            "conversation.assign",
            &target(id),
            &format!("to user:{agent} (round-robin)"),
            now,
        )?;
    }
    Ok(())
}

/// The bot hands a conversation to the agent its document names (an inactive or
/// removed user leaves it unassigned).
pub fn assign_by_bot(c: &Connection, id: i64, user: i64, now: i64) -> Result<(), AppError> {
    let Some(u) = crate::auth::repo::find_user(c, user)?.filter(|u| u.active) else {
        return Ok(());
    };
    if conversations::assign(c, id, Some(u.id), now)?.is_none() {
        return Ok(());
    }
    conversations::add_event(c, id, "assigned", None, &u.name, now)?;
    audit::record(
        c,
        &Actor::system(),
        "conversation.assign",
        &target(id),
        &format!("to user:{} (bot hand-off)", u.id),
        now,
    )?;
    Ok(())
}

/// A person takes the conversation from the bot (a reply, an assignment): from this
/// transaction on the bot is silent there, and what it had queued is not sent.
pub fn take_from_bot(c: &Connection, id: i64, reason: &str, now: i64) -> Result<(), AppError> {
    if conversations::take_from_bot(c, id, reason, now)? {
        conversations::add_event(c, id, "bot_off", None, reason, now)?;
    }
    Ok(())
}

/// "Give back to the bot": it answers this conversation again; false when it could.
pub fn give_to_bot(c: &Connection, viewer: &Viewer, who: &Who<'_>, id: i64, now: i64) -> Result<bool, AppError> {
    viewer.check(c, id)?;
    if !conversations::give_to_bot(c, id, now)? {
        return Ok(false);
    }
    conversations::add_event(c, id, "bot_on", who.user, "", now)?;
    audit::record(
        c,
        who.actor,
        "conversation.bot_on",
        &target(id),
        "given back to the bot",
        now,
    )?;
    Ok(true)
}
