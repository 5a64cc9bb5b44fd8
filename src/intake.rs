//! The inbound pipeline, one straight line: due deliveries -> `whatsapp::inbound::parse`
//! -> contacts -> consent (stop/start keywords, Meta's Stop/Resume, 131050 refusals)
//! -> inbox (messages, statuses, conversations, round-robin) -> campaigns (statuses
//! and replies move the recipient ledger) and account
//! news -> after the commit, live news to the agents' browsers and a ring for the media
//! fetcher. A batch of deliveries is one write transaction, so many deliveries share
//! one fsync; should one of them fail, the batch is applied again with a savepoint per
//! delivery, so the bad one is quarantined without undoing the others. Idempotent on Meta's ids, so a delivery seen twice
//! changes nothing. Runs from start-up, so what was acknowledged before a crash is
//! processed after the restart.

use crate::clock::Clock;
use crate::contacts::consent::{Source, State};
use crate::contacts::optout::{self, Hit, Keywords};
use crate::error::AppError;
use crate::inbox::live::{Hub, Kind};
use crate::store::Db;
use crate::wake::Doorbell;
use crate::whatsapp::deliveries::{self, Delivery, Retry};
use crate::whatsapp::inbound::{self, Event, InboundMessage, Preference, PreferenceChange, StatusUpdate};
use crate::whatsapp::numbers::repo::{NewsEntry, record_news};
use crate::whatsapp::outbound::OutMessage;
use crate::whatsapp::outbox;
use rusqlite::Connection;
use std::time::Duration;

/// Deliveries read and applied per round (one transaction).
const BATCH: i64 = 512;
/// How often the intake looks for retries coming due when nothing rings.
const TICK: Duration = Duration::from_secs(1);

/// What the intake needs, and nothing more.
#[derive(Clone)]
pub struct Intake {
    pub db: Db,
    pub clock: Clock,
    /// Rung by the webhook after it appended a delivery.
    pub deliveries: Doorbell,
    /// Rung when a received file was queued for download.
    pub media: Doorbell,
    /// Rung when the intake queued a message (an opt-out confirmation).
    pub outbox: Doorbell,
    pub live: Hub,
    /// The numbers' bots, compiled once per change of their document.
    pub bots: crate::bot::Bots,
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub processed: usize,
    pub quarantined: usize,
}

impl Intake {
    /// Starts the loop. Call once (from `server::start`).
    pub fn start(self) {
        tokio::spawn(async move {
            loop {
                match self.run_once().await {
                    Ok(r) if r.processed + r.quarantined > 0 => continue,
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "webhook processing round failed"),
                }
                self.deliveries.wait(TICK).await;
            }
        });
    }

    /// Processes one batch of what is due.
    pub async fn run_once(&self) -> Result<Round, AppError> {
        let now = self.clock.unix();
        // Parsing is CPU work: done on the reading thread, so the writer only writes.
        let parsed = self
            .db
            .read(move |c| {
                let due = deliveries::list_due(c, now, BATCH)?;
                Ok(due.into_iter().map(Parsed::from).collect::<Vec<_>>())
            })
            .await?;
        if parsed.is_empty() {
            return Ok(Round::default());
        }
        let listening = self.live.has_listeners();
        let bots = self.bots.clone();
        let applied = self
            .db
            .write(move |c| Ok(apply_batch(c, &bots, parsed, now, listening)?))
            .await?;
        if applied.media {
            // Media URLs live 5 minutes: fetch as soon as the message is in.
            self.media.ring();
        }
        if applied.outbox {
            self.outbox.ring();
        }
        self.live.send(applied.updates);
        Ok(applied.round)
    }
}

/// A delivery after parsing, before applying.
struct Parsed {
    id: i64,
    received_at: i64,
    events: Result<Vec<Event>, String>,
}

impl From<Delivery> for Parsed {
    fn from(d: Delivery) -> Parsed {
        Parsed {
            id: d.id,
            received_at: d.received_at,
            events: inbound::parse(&d.body),
        }
    }
}

/// A sender's clock is not ours: a message's time is kept within 30 days before and
/// 5 minutes after we received it (a time of 1e400 would pin a conversation to the
/// top for ever and overflow the window arithmetic). No time at all is the receipt.
pub fn bounded_time(sent: i64, received: i64) -> i64 {
    if sent == 0 {
        return received;
    }
    sent.clamp(received.saturating_sub(30 * 86_400), received.saturating_add(300))
}

/// A delivery that parsed and names only our numbers: ready to apply.
struct Ready {
    id: i64,
    received_at: i64,
    events: Vec<Event>,
}

impl Ready {
    /// Applies its events and marks it done.
    fn apply(&self, c: &Connection, step: &Step<'_>, now: i64, fx: &mut Effects) -> Result<(), AppError> {
        for event in &self.events {
            apply_event(c, step, event, self.received_at, now, fx)?;
        }
        Ok(deliveries::mark_done(c, self.id)?)
    }
}

struct Applied {
    round: Round,
    media: bool,
    outbox: bool,
    updates: Vec<crate::inbox::live::Update>,
}

/// What a delivery changed, kept only if its savepoint is released.
#[derive(Default)]
struct Effects {
    touched: Vec<(i64, Kind)>,
    media: bool,
    /// A message was queued (an opt-out confirmation).
    outbox: bool,
}

/// What every delivery of a batch reads: loaded once per batch.
struct Step<'a> {
    /// Most messages are no keyword at all; the lists are read once.
    keywords: Keywords,
    bots: &'a crate::bot::Bots,
}

fn apply_batch(
    c: &Connection,
    bots: &crate::bot::Bots,
    batch: Vec<Parsed>,
    now: i64,
    listening: bool,
) -> Result<Applied, AppError> {
    let mut round = Round::default();
    let connected = crate::whatsapp::numbers::repo::list_phone_number_ids(c)?;
    let step = Step {
        keywords: Keywords::load(c)?,
        bots,
    };
    let mut ready: Vec<Ready> = Vec::with_capacity(batch.len());
    for p in batch {
        match p.events {
            Err(msg) => {
                tracing::warn!(delivery = p.id, error = %msg, "webhook delivery quarantined");
                deliveries::quarantine(c, p.id, &msg, now, Retry::ByHand)?;
                round.quarantined += 1;
            }
            Ok(events) => {
                // A delivery speaks only for numbers connected here; one for another waits.
                let stranger = events
                    .iter()
                    .filter_map(Event::phone_number_id)
                    .find(|n| !connected.contains(*n));
                if let Some(stranger) = stranger {
                    tracing::warn!(
                        delivery = p.id,
                        number = stranger,
                        "webhook delivery for a number that is not connected"
                    );
                    deliveries::wait_for_number(c, p.id, stranger)?;
                    round.quarantined += 1;
                } else {
                    ready.push(Ready {
                        id: p.id,
                        received_at: p.received_at,
                        events,
                    });
                }
            }
        }
    }
    // Fast path: the whole batch in one savepoint (a savepoint per delivery costs the
    // writer more than the work itself). Should any delivery fail, that is undone and
    // the batch is applied again one savepoint per delivery, so the failing one is
    // quarantined and only it.
    let together = in_savepoint(c, |c| {
        let mut all = Effects::default();
        for d in &ready {
            d.apply(c, &step, now, &mut all)?;
        }
        Ok(all)
    });
    let fx = match together {
        Ok(all) => {
            round.processed += ready.len();
            all
        }
        Err(_) => {
            let mut kept = Effects::default();
            for d in &ready {
                let mut one = Effects::default();
                match in_savepoint(c, |c| d.apply(c, &step, now, &mut one)) {
                    Ok(()) => {
                        round.processed += 1;
                        kept.media |= one.media;
                        kept.outbox |= one.outbox;
                        kept.touched.extend(one.touched);
                    }
                    Err(msg) => {
                        tracing::warn!(delivery = d.id, error = %msg, "webhook delivery quarantined");
                        deliveries::quarantine(c, d.id, &msg, now, Retry::Later)?;
                        round.quarantined += 1;
                    }
                }
            }
            kept
        }
    };
    let (media, outbox, mut touched) = (fx.media, fx.outbox, fx.touched);
    // Many statuses of one campaign touch the same few conversations: one update each.
    let mut seen = std::collections::HashSet::new();
    touched.retain(|t| seen.insert(*t));
    let updates = if listening {
        crate::inbox::live::updates(c, &touched)?
    } else {
        Vec::new()
    };
    Ok(Applied {
        round,
        media,
        outbox,
        updates,
    })
}

/// Runs `f` in its own savepoint: kept when it succeeds, undone (and its error returned
/// as text for the quarantine) when it fails.
fn in_savepoint<T>(c: &Connection, f: impl FnOnce(&Connection) -> Result<T, AppError>) -> Result<T, String> {
    c.execute_batch("SAVEPOINT delivery").map_err(|e| e.to_string())?;
    match f(c) {
        Ok(v) => {
            c.execute_batch("RELEASE delivery").map_err(|e| e.to_string())?;
            Ok(v)
        }
        Err(e) => {
            let undone = c.execute_batch("ROLLBACK TO delivery; RELEASE delivery");
            if let Err(u) = undone {
                tracing::error!(error = %u, "cannot undo a failed delivery");
            }
            Err(e.to_string())
        }
    }
}

fn apply_event(
    c: &Connection,
    step: &Step<'_>,
    event: &Event,
    received: i64,
    now: i64,
    fx: &mut Effects,
) -> Result<(), AppError> {
    match event {
        Event::Message(m) => apply_message(c, step, m, bounded_time(m.timestamp, received), now, fx),
        Event::Preference(p) => apply_preference(c, p, bounded_time(p.timestamp, received), now, fx),
        Event::Status(s) => apply_status(c, s, s.timestamp.clamp(0, received.saturating_add(300)), now, fx),
        Event::Account(a) => {
            let news = NewsEntry {
                waba_id: &a.waba_id,
                phone_number_id: "",
                field: &a.field,
                event: &a.event,
                summary: &a.summary,
            };
            record_news(c, &news, now)?;
            // Template status, quality and category news keep the stored template current.
            if let Some(change) = &a.template {
                crate::whatsapp::templates::apply_news(c, &a.waba_id, change, now)?;
            }
            Ok(())
        }
        Event::Error { phone_number_id, error } => {
            let (code, summary) = (error.code.to_string(), format!("{} {}", error.title, error.details));
            let news = NewsEntry {
                waba_id: "",
                phone_number_id,
                field: "errors",
                event: &code,
                summary: &summary,
            };
            record_news(c, &news, now)?;
            Ok(())
        }
    }
}

fn apply_message(
    c: &Connection,
    step: &Step<'_>,
    m: &InboundMessage,
    at: i64,
    now: i64,
    fx: &mut Effects,
) -> Result<(), AppError> {
    let who = crate::contacts::Identity {
        wa_id: m.from.wa_id.as_deref(),
        bsuid: m.from.bsuid.as_deref(),
        profile_name: m.from.profile_name.as_deref(),
        username: m.from.username.as_deref(),
    };
    let contact_id = crate::contacts::upsert(c, &who, now)?;
    // Matching is pure and cheap; the consent work waits until the message is known to
    // be new (the inbox dedupes on the wamid) and has its conversation.
    let keyword = keyword_of(m, &step.keywords);
    if let Some(file) = m.detail.media() {
        let incoming = crate::whatsapp::media::Incoming {
            media_id: &file.media_id,
            wamid: &m.wamid,
            phone_number_id: &m.phone_number_id,
            kind: &m.kind,
            mime: &file.mime_type,
            filename: file.filename.as_deref(),
            sha256: &file.sha256,
        };
        crate::whatsapp::media::queue(c, &incoming, now)?;
        fx.media = true;
    }
    let detail = serde_json::to_string(&m.detail).map_err(AppError::internal)?;
    let referral = m.referral.as_ref().map(ToString::to_string);
    let inserted = crate::inbox::insert_inbound(
        c,
        &crate::inbox::NewInbound {
            phone_number_id: &m.phone_number_id,
            contact_id,
            wamid: &m.wamid,
            kind: &m.kind,
            body: &m.body,
            detail: &detail,
            understood: m.understood,
            reply_to: m.reply_to.as_deref(),
            forwarded: m.forwarded,
            referral: referral.as_deref(),
            sent_at: at,
        },
        now,
    )?;
    // A duplicate (inserted = None) changes nothing; nor does a message from nobody.
    let (Some(message_id), Some(contact)) = (inserted, contact_id) else {
        return Ok(());
    };
    let preview = crate::inbox::preview_of(&m.kind, &m.body);
    let activity = crate::inbox::Activity {
        phone_number_id: &m.phone_number_id,
        contact_id: contact,
        message_id,
        at,
        preview: &preview,
        inbound: true,
    };
    let conversation = crate::inbox::touch_conversation(c, &activity, now)?;
    fx.touched.push((conversation, Kind::Inbound));
    crate::campaigns::outcomes::note_reply(c, contact, at)?;
    let consent_keyword = keyword.is_some();
    if let Some(hit) = keyword {
        apply_keyword(c, &hit, m, contact, conversation, at, now, fx)?;
    }
    // The bot answers after the consent step (a STOP is never answered by a rule).
    let seen = crate::bot::answer::Seen {
        contact_id: contact,
        conversation_id: conversation,
        message_id,
        kind: &m.kind,
        text: &m.body,
        reply_id: reply_id_of(m),
        at,
        consent_keyword,
    };
    let bot = crate::bot::answer::on_inbound(c, step.bots, &seen, now)?;
    fx.outbox |= bot.queued;
    if bot.changed {
        fx.touched.push((conversation, Kind::Changed));
    }
    // While the bot has it, the team's round-robin waits for its hand-off.
    if !bot.bot_has_it {
        crate::inbox::manage::auto_assign_if_due(c, conversation, now)?;
    }
    Ok(())
}

/// The id of the button or list row a person pressed (a template's quick-reply
/// button: its payload): how the bot routes an answer, never by its title.
fn reply_id_of(m: &InboundMessage) -> Option<&str> {
    match &m.detail {
        inbound::MessageDetail::Interactive(r) => r.id.as_deref(),
        inbound::MessageDetail::Button { payload } => payload.as_deref(),
        _ => None,
    }
}

/// The stop or start keyword a message is, if it is one: a text, or a template's
/// quick-reply button (its payload, else its text).
fn keyword_of(m: &InboundMessage, keywords: &Keywords) -> Option<Hit> {
    match m.kind.as_str() {
        "text" => keywords.find(&m.body),
        "button" => {
            let payload = match &m.detail {
                inbound::MessageDetail::Button { payload: Some(p) } => keywords.find(p),
                _ => None,
            };
            payload.or_else(|| keywords.find(&m.body))
        }
        _ => None,
    }
}

/// A keyword changes the marketing state (logged, with the message as evidence), the
/// conversation says so, and, when the state changed, the business confirms it in the
/// person's language: queued in this same transaction, so a crash neither loses the
/// confirmation nor sends it twice, and a second STOP sends nothing.
#[expect(
    clippy::too_many_arguments,
    reason = "the message, its contact and conversation, and the round"
)]
fn apply_keyword(
    c: &Connection,
    hit: &Hit,
    m: &InboundMessage,
    contact: i64,
    conversation: i64,
    at: i64,
    now: i64,
    fx: &mut Effects,
) -> Result<(), AppError> {
    let state = hit.state();
    if !optout::record_marketing(c, contact, state, Source::Keyword, at, &m.body, &m.wamid, now)? {
        return Ok(());
    }
    let body = optout::event_body(Source::Keyword, state, hit.keyword());
    crate::inbox::conversations::add_event(c, conversation, "consent", None, &body, now)?;
    fx.touched.push((conversation, Kind::Changed));
    // A delivery Meta retried for a day may arrive after the window closed: no
    // free-form text then (Meta would refuse it with 131047).
    if crate::inbox::window_left(Some(at), now) == 0 {
        return Ok(());
    }
    let Some(route) = crate::inbox::conversations::find_route(c, conversation)? else {
        return Ok(());
    };
    let business = crate::settings::find_business(c)?.unwrap_or_default();
    let locale = optout::contact_locale(m.from.wa_id.as_deref(), m.from.bsuid.as_deref(), business.locale());
    let text = optout::confirmation(c, state, locale, &business.name)?;
    let msg = OutMessage::Text {
        body: text.clone(),
        preview_url: false,
        reply_to: None,
    };
    let outbox_id = outbox::enqueue(
        c,
        route.number_id,
        &route.recipient,
        Some(contact),
        &msg,
        outbox::Origin::System,
        now,
    )?;
    let reply = crate::inbox::NewOutbound {
        phone_number_id: &route.phone_number_id,
        contact_id: Some(contact),
        kind: "text",
        body: &text,
        outbox_id,
        author_id: None,
        reply_to: None,
        wamid: None,
        at: now,
    };
    crate::inbox::insert_outbound(c, &reply)?;
    fx.outbox = true;
    Ok(())
}

/// Meta's `user_preferences`: the person pressed Stop or Resume for marketing in
/// WhatsApp. The contact is created when new, so that a later import cannot opt in
/// someone who already said no.
fn apply_preference(c: &Connection, p: &PreferenceChange, at: i64, now: i64, fx: &mut Effects) -> Result<(), AppError> {
    let who = crate::contacts::Identity {
        wa_id: p.user.wa_id.as_deref(),
        bsuid: p.user.bsuid.as_deref(),
        profile_name: None,
        username: None,
    };
    let Some(contact) = crate::contacts::upsert(c, &who, now)? else {
        return Ok(());
    };
    let state = match p.choice {
        Preference::Stop => State::OptedOut,
        Preference::Resume => State::OptedIn,
    };
    let evidence = format!(
        "user_preferences {} at {}",
        p.user.wa_id.as_deref().or(p.user.bsuid.as_deref()).unwrap_or(""),
        p.timestamp
    );
    if !optout::record_marketing(
        c,
        contact,
        state,
        Source::MetaPreferences,
        at,
        &p.detail,
        &evidence,
        now,
    )? {
        return Ok(());
    }
    if let Some(conversation) = crate::inbox::conversations::find_for_contact(c, &p.phone_number_id, contact)? {
        let body = optout::event_body(Source::MetaPreferences, state, "");
        crate::inbox::conversations::add_event(c, conversation, "consent", None, &body, now)?;
        fx.touched.push((conversation, Kind::Changed));
    }
    Ok(())
}

/// A send failed with 131050: the person stopped marketing messages in WhatsApp, so
/// they are opted out of marketing here too (until they say otherwise).
fn apply_refusal(c: &Connection, s: &StatusUpdate, at: i64, now: i64, fx: &mut Effects) -> Result<(), AppError> {
    let Some(error) = s.error.as_ref().filter(|e| e.code == optout::STOPPED_MARKETING) else {
        return Ok(());
    };
    if s.status != "failed" {
        return Ok(());
    }
    let contact = match crate::inbox::contact_of_wamid(c, &s.wamid)? {
        Some(k) => Some(k),
        None => {
            let who = crate::contacts::Identity {
                wa_id: s.recipient.wa_id.as_deref(),
                bsuid: s.recipient.bsuid.as_deref(),
                profile_name: None,
                username: None,
            };
            crate::contacts::find_id(c, &who)?
        }
    };
    let Some(contact) = contact else {
        return Ok(());
    };
    let evidence = format!("{} error {}", s.wamid, error.code);
    let wording = format!("{} {}", error.title, error.details);
    if !optout::record_refusal(c, contact, &evidence, wording.trim(), at, now)? {
        return Ok(());
    }
    if let Some(conversation) = crate::inbox::conversations::find_by_wamid(c, &s.wamid)? {
        let body = optout::event_body(Source::MetaRefusal, State::OptedOut, "");
        crate::inbox::conversations::add_event(c, conversation, "consent", None, &body, now)?;
        fx.touched.push((conversation, Kind::Changed));
    }
    Ok(())
}

/// A status that carries our callback data names its outbox row: if a crash left that
/// send held ("maybe sent"), Meta's status settles it, and the conversation says so.
fn settle_held(c: &Connection, s: &StatusUpdate, at: i64, now: i64, fx: &mut Effects) -> Result<(), AppError> {
    let Some(outbox_id) = s.callback.as_deref().and_then(outbox::parse_callback_data) else {
        return Ok(());
    };
    let Some(settled) = outbox::settle_held(c, outbox_id, &s.wamid, &s.status, now)? else {
        return Ok(());
    };
    let sent = outbox::Outcome::Sent {
        outbox_id,
        wamid: Some(&s.wamid),
        phone_number_id: &settled.phone_number_id,
        contact_id: settled.contact_id,
        kind: &settled.kind,
        summary: &settled.summary,
        at,
    };
    crate::campaigns::outcomes::record(c, &sent)?;
    if let Some(conversation) = crate::inbox::outcomes::record_outcome(c, &sent)? {
        crate::inbox::conversations::add_event(c, conversation, "settled", None, "", now)?;
        fx.touched.push((conversation, Kind::Changed));
    }
    tracing::info!(outbox = outbox_id, wamid = %s.wamid, "a send held after a restart was settled by its status");
    Ok(())
}

fn apply_status(c: &Connection, s: &StatusUpdate, at: i64, now: i64, fx: &mut Effects) -> Result<(), AppError> {
    settle_held(c, s, at, now, fx)?;
    apply_refusal(c, s, at, now, fx)?;
    let error = s.error.as_ref().map(|e| (e.code, e.title.as_str(), e.details.as_str()));
    let change = crate::inbox::StatusChange {
        wamid: &s.wamid,
        status: &s.status,
        at,
        error,
    };
    crate::campaigns::outcomes::apply_status(
        c,
        &s.wamid,
        &s.status,
        s.error.as_ref().map(|e| (e.code, e.details.as_str())),
        at,
    )?;
    if let Some(conversation) = crate::inbox::apply_status(c, &change)? {
        fx.touched.push((conversation, Kind::Changed));
    }
    if let Some(p) = &s.pricing {
        crate::inbox::record_usage(c, &s.wamid, &p.category, &p.pricing_type, p.billable, &p.model, at)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::bounded_time;

    #[test]
    fn a_senders_time_stays_near_the_receipt() {
        let now = 1_800_000_000;
        assert_eq!(bounded_time(now - 60, now), now - 60, "a minute ago is kept");
        assert_eq!(
            bounded_time(i64::MAX, now),
            now + 300,
            "the far future is five minutes ahead at most"
        );
        assert_eq!(
            bounded_time(1, now),
            now - 30 * 86_400,
            "the distant past is 30 days back at most"
        );
        assert_eq!(bounded_time(0, now), now, "no time is the receipt");
        assert_eq!(
            bounded_time(i64::MIN, i64::MIN + 5),
            i64::MIN,
            "no overflow at the edges"
        );
    }
}
