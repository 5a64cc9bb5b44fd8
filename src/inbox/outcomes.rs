//! What the outbox reports about a send, written into the inbox: a reply's bubble
//! gets its wamid (or a row, for messages sent for campaigns and the bot), late
//! statuses are settled, and a failed or held send says so; live news follows the
//! commit. The outbox calls this through `whatsapp::outbox::Outcomes`; it never
//! touches the inbox's tables itself.

use super::live::{Hub, Kind};
use crate::error::AppError;
use crate::whatsapp::outbox::{AfterCommit, Outcome, Outcomes};
use rusqlite::Connection;

/// The inbox as the outbox's listener.
pub struct InboxOutcomes {
    pub live: Hub,
}

impl Outcomes for InboxOutcomes {
    fn record(&self, c: &Connection, o: &Outcome<'_>) -> Result<Option<AfterCommit>, AppError> {
        let Some(conversation) = record_outcome(c, o)? else {
            return Ok(None);
        };
        if !self.live.has_listeners() {
            return Ok(None);
        }
        let updates = super::live::updates(c, &[(conversation, Kind::Changed)])?;
        let live = self.live.clone();
        Ok(Some(Box::new(move || live.send(updates))))
    }
}

/// Writes an outcome into the inbox; returns the conversation it changed.
pub fn record_outcome(c: &Connection, o: &Outcome<'_>) -> Result<Option<i64>, AppError> {
    let conversation = match *o {
        Outcome::Sent {
            outbox_id,
            wamid: Some(wamid),
            phone_number_id,
            contact_id,
            kind,
            summary,
            at,
        } => {
            // A reply from the inbox is a message row since it was queued.
            if !super::link_wamid(c, outbox_id, wamid)? {
                let message = super::NewOutbound {
                    phone_number_id,
                    contact_id,
                    kind,
                    body: summary,
                    outbox_id,
                    author_id: None,
                    reply_to: None,
                    wamid: Some(wamid),
                    at,
                };
                super::insert_outbound(c, &message)?;
            }
            super::settle_statuses(c, wamid)?;
            super::conversations::find_by_wamid(c, wamid)?
        }
        Outcome::Sent { wamid: None, .. } => None,
        Outcome::Retrying {
            outbox_id,
            code,
            reason,
            at,
        } => {
            super::mark_retrying(c, outbox_id, code, reason, at)?;
            super::conversation_of_outbox(c, outbox_id)?
        }
        Outcome::Unsent {
            outbox_id,
            held,
            code,
            reason,
            at,
        } => {
            let status = if held { "held" } else { "failed" };
            super::mark_unsent(c, outbox_id, status, code, reason, at)?;
            let conversation = super::conversation_of_outbox(c, outbox_id)?;
            if code == Some(crate::contacts::optout::STOPPED_MARKETING) {
                record_refusal(c, outbox_id, conversation, reason, at)?;
            }
            conversation
        }
    };
    Ok(conversation)
}

/// Meta refused the send with 131050 at once (it usually says so later, in a status:
/// see `intake`): the person stopped marketing messages, and is opted out of marketing.
fn record_refusal(
    c: &Connection,
    outbox_id: i64,
    conversation: Option<i64>,
    reason: &str,
    at: i64,
) -> Result<(), AppError> {
    use crate::contacts::consent::{Source, State};
    use crate::contacts::optout;
    let Some(contact) = super::contact_of_outbox(c, outbox_id)? else {
        return Ok(());
    };
    let evidence = format!("outbox {outbox_id} error {}", optout::STOPPED_MARKETING);
    if optout::record_refusal(c, contact, &evidence, reason, at, at)? {
        if let Some(conv) = conversation {
            let body = optout::event_body(Source::MetaRefusal, State::OptedOut, "");
            super::conversations::add_event(c, conv, "consent", None, &body, at)?;
        }
    }
    Ok(())
}
