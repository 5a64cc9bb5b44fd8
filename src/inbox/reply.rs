//! Answering a conversation (from the inbox or the API): free text and files only while
//! the 24-hour customer-service window is open, an approved template at any time. The
//! reply becomes a `pending` message in the thread at once and a row in the one outbox;
//! a template is sent only when the contact's consent allows its purpose;
//! the dispatcher sends it and the ticks follow Meta's status webhooks.

use super::Inbox;
use super::access::Viewer;
use super::conversations::{self, Route};
use crate::error::{AppError, AppResult};
use crate::whatsapp::media::{self, UploadError, Uploaded};
use crate::whatsapp::outbound::OutMessage;
pub use crate::whatsapp::outbox::Origin;
use rusqlite::{Connection, OptionalExtension, params};

/// Meta's limit for a text body.
pub const MAX_TEXT: usize = 4096;
/// Meta's limit for a caption.
pub const MAX_CAPTION: usize = 1024;

pub enum Compose {
    Text {
        body: String,
        reply_to: Option<i64>,
    },
    Media {
        kind: String,
        file: Uploaded,
        caption: String,
        filename: String,
        reply_to: Option<i64>,
    },
    Template {
        name: String,
        language: String,
        params: Vec<String>,
    },
}

/// A conversation the viewer may answer: where replies go. 404 when not visible.
pub async fn route(inbox: &Inbox, viewer: Viewer, id: i64) -> AppResult<Route> {
    Ok(inbox
        .db
        .read(move |c| {
            viewer.check(c, id)?;
            conversations::find_route(c, id)?.ok_or(AppError::NotFound.into())
        })
        .await?)
}

/// The template's body with its variables replaced by the parameters, in order (the
/// preview, and the text the thread shows for a sent template). Numbered variables
/// take the parameters by number, named ones in the order they first appear; an empty
/// parameter leaves its variable showing.
pub fn fill_template(body: &str, params: &[String]) -> String {
    let names = crate::whatsapp::templates::draft::param_order(body);
    let values = names.into_iter().zip(params.iter().cloned()).collect();
    crate::whatsapp::templates::draft::fill(body, &values)
}

/// The wamid of a message of this conversation (what "reply to" quotes).
fn wamid_in(c: &Connection, conversation_id: i64, message_id: Option<i64>) -> rusqlite::Result<Option<String>> {
    let Some(mid) = message_id else { return Ok(None) };
    c.query_row(
        "SELECT wamid FROM messages WHERE id = ?1 AND conversation_id = ?2",
        params![mid, conversation_id],
        |r| r.get::<_, Option<String>>(0),
    )
    .optional()
    .map(Option::flatten)
}

/// Sends (queues) a reply. `Ok(Err(key))` names what is wrong with it for the form.
#[expect(
    clippy::too_many_lines,
    reason = "every kind of reply checked in one place, before one write"
)]
pub async fn send(
    inbox: &Inbox,
    viewer: Viewer,
    id: i64,
    compose: Compose,
    author: Option<i64>,
    origin: Origin,
) -> AppResult<Result<i64, &'static str>> {
    let route = route(inbox, viewer, id).await?;
    let now = inbox.clock.unix();
    let window_open = super::window_left(route.last_inbound_at, now) > 0;
    match &compose {
        Compose::Text { body, .. } if body.trim().is_empty() => return Ok(Err("inbox.empty")),
        Compose::Text { body, .. } if body.chars().count() > MAX_TEXT => return Ok(Err("inbox.too_long")),
        Compose::Media { caption, .. } if caption.chars().count() > MAX_CAPTION => return Ok(Err("inbox.too_long")),
        Compose::Text { .. } | Compose::Media { .. } if !window_open => return Ok(Err("inbox.window_closed")),
        _ => {}
    }
    let result = inbox
        .db
        .write(move |c| {
            let (msg, body, kind, file) = match compose {
                Compose::Text { body, reply_to } => {
                    let reply_to = wamid_in(c, id, reply_to)?;
                    let m = OutMessage::Text {
                        body: body.clone(),
                        preview_url: body.contains("https://"),
                        reply_to,
                    };
                    (m, body, "text".to_string(), None)
                }
                Compose::Media {
                    kind,
                    file,
                    caption,
                    filename,
                    reply_to,
                } => {
                    let reply_to = wamid_in(c, id, reply_to)?;
                    let shown = if caption.is_empty() {
                        filename.clone()
                    } else {
                        caption.clone()
                    };
                    let m = OutMessage::Media {
                        media: kind.clone(),
                        media_id: file.media_id.clone(),
                        caption: (!caption.is_empty()).then_some(caption),
                        filename: (kind == "document").then_some(filename),
                        reply_to,
                    };
                    (m, shown, kind, Some(file.file_id))
                }
                Compose::Template { name, language, params } => {
                    let Some(t) = crate::whatsapp::templates::find_by_key(c, &route.waba_id, &name, &language)? else {
                        return Ok(Err("inbox.template_unknown"));
                    };
                    // Paused, disabled, rejected or pending: refused here, not by Meta.
                    if let Err(why) = t.usable() {
                        return Ok(Err(why.key()));
                    }
                    if !t.body_only() {
                        return Ok(Err("templates.inbox_cannot_fill"));
                    }
                    let param_names = if t.named_params {
                        crate::whatsapp::templates::draft::param_order(&t.body_text)
                    } else {
                        Vec::new()
                    };
                    let (text, count) = (t.body_text, t.param_count);
                    if i64::try_from(params.len()) != Ok(count) || params.iter().any(|p| p.trim().is_empty()) {
                        return Ok(Err("inbox.template_params"));
                    }
                    // The one consent rule: a marketing template needs an opt-in and
                    // never goes to someone who opted out; utility goes unless refused.
                    let purpose = crate::contacts::consent::Purpose::of_template_category(&t.category);
                    if let Err(refusal) = crate::contacts::consent::may_send(c, route.contact_id, purpose)? {
                        return Ok(Err(refusal.key()));
                    }
                    let body = fill_template(&text, &params);
                    let m = OutMessage::Template {
                        name,
                        language,
                        body_params: params,
                        param_names,
                        header: None,
                    };
                    (m, body, "template".to_string(), None)
                }
            };
            let outbox_id = crate::whatsapp::outbox::enqueue(
                c,
                route.number_id,
                &route.recipient,
                Some(route.contact_id),
                &msg,
                origin,
                now,
            )?;
            let reply_to = match &msg {
                OutMessage::Text { reply_to, .. } | OutMessage::Media { reply_to, .. } => reply_to.clone(),
                _ => None,
            };
            let message = super::NewOutbound {
                phone_number_id: &route.phone_number_id,
                contact_id: Some(route.contact_id),
                kind: &kind,
                body: &body,
                outbox_id,
                author_id: author,
                reply_to: reply_to.as_deref(),
                wamid: None,
                at: now,
            };
            let (message_id, _) = super::insert_outbound(c, &message)?
                .ok_or_else(|| AppError::internal("a queued reply has no wamid to conflict on"))?;
            if let Some(f) = file {
                media::attach_to_message(c, f, message_id)?;
            }
            if let Some(author) = author {
                super::manage::claim_on_reply(c, id, author, now)?;
            }
            // A person answered: the bot is silent here from this transaction on.
            super::manage::take_from_bot(c, id, "replied", now)?;
            Ok(Ok(message_id))
        })
        .await?;
    if result.is_ok() {
        inbox.outbox.ring();
        inbox
            .live
            .publish(&inbox.db, vec![(id, super::live::Kind::Changed)])
            .await;
    }
    Ok(result)
}

/// A file to send, as the form or the API received it.
pub struct Attachment {
    pub filename: String,
    pub mime: String,
    pub bytes: Vec<u8>,
    pub caption: String,
    pub reply_to: Option<i64>,
}

/// Sends a file: inside the window only, within Meta's limits, uploaded to Meta (and
/// kept encrypted here), then queued like any reply. `Ok(Err(key))` names the problem.
pub async fn attach(
    inbox: &Inbox,
    viewer: Viewer,
    id: i64,
    file: Attachment,
    author: Option<i64>,
    origin: Origin,
) -> AppResult<Result<i64, &'static str>> {
    let route = route(inbox, viewer, id).await?;
    if super::window_left(route.last_inbound_at, inbox.clock.unix()) == 0 {
        return Ok(Err("inbox.window_closed"));
    }
    let kind = media::kind_for(&file.mime);
    let uploaded = match inbox
        .media
        .upload(route.number_id, kind, &file.mime, &file.filename, file.bytes)
        .await
    {
        Ok(u) => u,
        Err(UploadError::Refused(key)) => return Ok(Err(key)),
        Err(UploadError::Failed(e)) => {
            tracing::warn!(conversation = id, error = %e, "attachment upload failed");
            return Ok(Err("inbox.upload_failed"));
        }
    };
    let compose = Compose::Media {
        kind: kind.to_string(),
        file: uploaded,
        caption: file.caption,
        filename: file.filename,
        reply_to: file.reply_to,
    };
    send(inbox, viewer, id, compose, author, origin).await
}

/// Sends Meta the read receipt for the newest customer message (blue ticks).
pub fn queue_read_receipt(c: &Connection, conversation_id: i64, wamid: &str, now: i64) -> Result<(), AppError> {
    if let Some(route) = conversations::find_route(c, conversation_id)? {
        let msg = OutMessage::MarkRead {
            message_id: wamid.to_string(),
        };
        crate::whatsapp::outbox::enqueue(
            c,
            route.number_id,
            &route.recipient,
            None,
            &msg,
            Origin::ReadReceipt,
            now,
        )?;
    }
    Ok(())
}

/// "Try again" on a reply that failed for good: the same outbox row is queued again (so
/// the thread keeps one bubble, and a held or sent one can never go twice). Text and
/// files need the window still open. `Ok(Err(key))` names why not.
pub async fn retry(
    inbox: &Inbox,
    viewer: Viewer,
    id: i64,
    message_id: i64,
    actor: crate::audit::Actor,
) -> AppResult<Result<(), &'static str>> {
    let now = inbox.clock.unix();
    let result = inbox
        .db
        .write(move |c| {
            viewer.check(c, id)?;
            let route = conversations::find_route(c, id)?.ok_or(AppError::NotFound)?;
            let Some((kind, outbox_id)) = super::find_failed_reply(c, id, message_id)? else {
                return Ok(Err("inbox.retry_not_failed"));
            };
            if kind != "template" && super::window_left(route.last_inbound_at, now) <= 0 {
                return Ok(Err("inbox.window_closed"));
            }
            if !crate::whatsapp::outbox::requeue_failed(c, outbox_id, now)? {
                return Ok(Err("inbox.retry_not_failed"));
            }
            super::mark_requeued(c, message_id)?;
            crate::audit::record(
                c,
                &actor,
                "message.retry",
                &format!("conversation:{id}"),
                &format!("message:{message_id} outbox:{outbox_id}"),
                now,
            )?;
            Ok(Ok(()))
        })
        .await?;
    if result.is_ok() {
        inbox.outbox.ring();
        inbox
            .live
            .publish(&inbox.db, vec![(id, super::live::Kind::Changed)])
            .await;
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_preview_fills_positional_parameters() {
        let body = "Halo {{1}}, pesanan {{2}} siap.";
        assert_eq!(
            fill_template(body, &["Budi".into(), "#12".into()]),
            "Halo Budi, pesanan #12 siap."
        );
        assert_eq!(fill_template(body, &[String::new()]), body);
    }
}
