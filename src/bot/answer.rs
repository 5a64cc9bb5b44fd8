//! The bot as a step of the intake: for a new inbound message, in the intake's write
//! transaction, read where the conversation is, decide, and apply: queue what to say in
//! the one outbox (and the conversation), store answers in the contact's fields, hand
//! off, save the session and log the decision. Because the hand-off check and the
//! outbox rows are in the transaction an agent's take-over also needs, one of them
//! wins, never both.

use super::Bots;
use super::document::{Assign, Reply};
use super::engine::{self, Input, Situation};
use crate::error::AppError;
use crate::inbox::conversations;
use crate::whatsapp::outbound::OutMessage;
use crate::whatsapp::outbox::{self, Origin};
use rusqlite::{Connection, OptionalExtension};
use std::time::Instant;

/// An inbound message the intake just stored.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    pub contact_id: i64,
    pub conversation_id: i64,
    pub message_id: i64,
    pub kind: &'a str,
    pub text: &'a str,
    pub reply_id: Option<&'a str>,
    /// When the person sent it.
    pub at: i64,
    /// It was a stop or start keyword (the consent step answered).
    pub consent_keyword: bool,
}

/// What the step did, for the intake's effects.
#[derive(Debug, Clone, Copy, Default)]
pub struct Answered {
    /// Messages were queued.
    pub queued: bool,
    /// The bot has the conversation (so the inbox's round-robin waits for a hand-off).
    pub bot_has_it: bool,
    /// Something an agent sees changed (a hand-off event, an assignment).
    pub changed: bool,
}

/// Runs the bot for one inbound message. A number without a bot, or with the bot off,
/// is left to people and not logged.
pub fn on_inbound(c: &Connection, bots: &Bots, seen: &Seen<'_>, now: i64) -> Result<Answered, AppError> {
    let started = Instant::now();
    let Some(route) = conversations::find_route(c, seen.conversation_id)? else {
        return Ok(Answered::default());
    };
    let Some(bot) = bots.for_number(c, route.number_id)? else {
        return Ok(Answered::default());
    };
    if !bot.bot.enabled {
        return Ok(Answered::default());
    }
    let mut session = super::load_session(c, seen.conversation_id)?;
    let situation = situation(c, &bot.bot, &route, seen, now)?;
    let decision = engine::decide(
        &bot,
        &mut session,
        Input {
            kind: seen.kind,
            text: seen.text,
            reply_id: seen.reply_id,
        },
        situation,
    );
    let mut done = Answered::default();
    // First the hand-off (it cancels what the bot still had queued), then what the bot
    // says with it.
    if let Some(reason) = &decision.handoff {
        hand_off(c, &bot.bot.handoff.assign, seen.conversation_id, reason, &session, now)?;
        done.changed = true;
    }
    let mut outbox_ids = Vec::new();
    for reply in &decision.say {
        for msg in messages_of(reply) {
            let id = outbox::enqueue(
                c,
                route.number_id,
                &route.recipient,
                Some(seen.contact_id),
                &msg,
                Origin::Bot,
                now,
            )?;
            let kind = if matches!(msg, OutMessage::Media { .. }) {
                reply.media.as_ref().map_or("image", |m| m.kind.as_str())
            } else {
                msg.kind()
            };
            let shown = msg.summary();
            let message = crate::inbox::NewOutbound {
                phone_number_id: &route.phone_number_id,
                contact_id: Some(seen.contact_id),
                kind,
                body: &shown,
                outbox_id: id,
                author_id: None,
                reply_to: None,
                wamid: None,
                at: now,
            };
            crate::inbox::insert_outbound(c, &message)?;
            outbox_ids.push(id);
            done.queued = true;
        }
    }
    let mut stored = Vec::new();
    for (field, value) in &decision.store {
        crate::contacts::set_field(c, seen.contact_id, field, value, now)?;
        stored.push(format!("{field}={value}"));
    }
    super::save_session(c, seen.conversation_id, &session, now)?;
    let silent_for_good =
        decision.handoff.is_some() || matches!(decision.kinds().as_str(), "handed_off" | "opted_out" | "off");
    done.bot_has_it = !silent_for_good;
    let micros = i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX);
    super::log(
        c,
        &super::LogEntry {
            number_id: route.number_id,
            conversation_id: Some(seen.conversation_id),
            contact_id: Some(seen.contact_id),
            message_id: Some(seen.message_id),
            at: now,
            decision: decision.kinds(),
            detail: decision.details(),
            outbox_ids,
            stored: stored.join("\n"),
            micros,
        },
    )?;
    Ok(done)
}

fn situation(
    c: &Connection,
    bot: &super::document::Bot,
    route: &conversations::Route,
    seen: &Seen<'_>,
    now: i64,
) -> Result<Situation, AppError> {
    let super::Moment {
        open,
        closed_since,
        today,
    } = super::moment(c, bot, now)?;
    let (previous_in, agent_at) = earlier(c, seen.conversation_id, seen.message_id)?;
    let welcome_due = match (&bot.welcome, previous_in) {
        (_, None) => true,
        (Some(w), Some(prev)) if w.after_silence_days > 0 => seen.at - prev >= i64::from(w.after_silence_days) * 86_400,
        _ => false,
    };
    let opted_out = crate::contacts::consent::state(c, seen.contact_id, crate::contacts::consent::Purpose::Utility)?
        == Some(crate::contacts::consent::State::OptedOut);
    let sent_last_minute = outbox::count_since(c, route.number_id, seen.contact_id, Origin::Bot, now - 60)?;
    Ok(Situation {
        now,
        today,
        open,
        closed_since,
        welcome_due,
        window_open: crate::inbox::window_left(Some(seen.at), now) > 0,
        opted_out,
        consent_keyword: seen.consent_keyword,
        sent_last_minute,
        agent_answered_at: agent_at,
    })
}

/// The conversation's previous inbound message's time and the last time an agent
/// answered in it.
fn earlier(c: &Connection, conversation: i64, message: i64) -> rusqlite::Result<(Option<i64>, Option<i64>)> {
    let previous: Option<i64> = c
        .prepare_cached(
            "SELECT sent_at FROM messages WHERE conversation_id = ?1 AND direction = 'in' AND id < ?2
             ORDER BY id DESC LIMIT 1",
        )?
        .query_row(rusqlite::params![conversation, message], |r| r.get(0))
        .optional()?;
    let agent: Option<i64> = c
        .prepare_cached(
            "SELECT sent_at FROM messages WHERE conversation_id = ?1 AND direction = 'out' AND author_id IS NOT NULL
             ORDER BY id DESC LIMIT 1",
        )?
        .query_row([conversation], |r| r.get(0))
        .optional()?;
    Ok((previous, agent))
}

/// The messages one reply goes out as: a text; a picture or file (with the text as its
/// caption, or before the buttons); up to three reply buttons; or a list.
pub fn messages_of(reply: &Reply) -> Vec<OutMessage> {
    let mut out = Vec::new();
    let choices = !reply.choices.is_empty();
    if let Some(m) = &reply.media {
        out.push(OutMessage::Media {
            media: m.kind.clone(),
            media_id: m.link.clone(),
            caption: (!choices && !reply.text.is_empty()).then(|| reply.text.clone()),
            filename: m.filename.clone().filter(|_| m.kind == "document"),
            reply_to: None,
        });
        if !choices {
            return out;
        }
    }
    if reply.choices.len() > super::document::BUTTONS_MAX {
        out.push(OutMessage::List {
            body: reply.text.clone(),
            button: if reply.list_button.trim().is_empty() {
                "Menu".into()
            } else {
                reply.list_button.clone()
            },
            rows: reply
                .choices
                .iter()
                .map(|ch| {
                    (
                        ch.id.clone(),
                        ch.title.clone(),
                        (!ch.description.is_empty()).then(|| ch.description.clone()),
                    )
                })
                .collect(),
        });
    } else if choices {
        out.push(OutMessage::Buttons {
            body: reply.text.clone(),
            buttons: reply
                .choices
                .iter()
                .map(|ch| (ch.id.clone(), ch.title.clone()))
                .collect(),
            reply_to: None,
        });
    } else {
        out.push(OutMessage::Text {
            body: reply.text.clone(),
            preview_url: reply.text.contains("https://"),
            reply_to: None,
        });
    }
    out
}

/// The bot hands the conversation to people: a person has it from now on, an event
/// shows what the bot collected, and it is assigned as the bot's document says.
fn hand_off(
    c: &Connection,
    assign: &Assign,
    conversation: i64,
    reason: &str,
    session: &engine::Session,
    now: i64,
) -> Result<(), AppError> {
    conversations::take_from_bot(c, conversation, &format!("bot: {reason}"), now)?;
    let collected: Vec<String> = session.collected.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    let body = if collected.is_empty() {
        reason.to_string()
    } else {
        format!("{reason}\n{}", collected.join("\n"))
    };
    conversations::add_event(c, conversation, "bot_handoff", None, &body, now)?;
    match assign {
        Assign::Unassigned => {}
        Assign::RoundRobin => crate::inbox::manage::auto_assign_if_due(c, conversation, now)?,
        Assign::Agent(user) => crate::inbox::manage::assign_by_bot(c, conversation, *user, now)?,
    }
    Ok(())
}
