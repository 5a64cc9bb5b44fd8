//! What the inbox pages ask for in one call each: opening a conversation (read, blue
//! ticks) with its page or thread, the list page, snooze times and the settings change.

use super::access::Viewer;
use super::catalog::{self, Canned};
use super::conversations::{self, Filter, LabelTag, Row, Tab};
use super::search::{self, Hit};
use super::thread::{self, Item};
use crate::audit::{self, Actor};
use crate::auth::User;
use crate::auth::repo::Agent;
use crate::error::{AppError, AppResult};
use crate::settings::InboxSettings;
use crate::store::Db;
use crate::wake::Doorbell;
use crate::whatsapp::templates::Template;
use rusqlite::Connection;

/// One page of the list, or the search hits, with what the list's filters offer.
pub struct ListData {
    /// The tab asked for, or "mine" when the user may not see all.
    pub tab: Tab,
    pub sees_all: bool,
    pub rows: Vec<Row>,
    pub hits: Vec<Hit>,
    /// The cursor of the next page, when there is one.
    pub next: Option<String>,
    pub unread_mine: i64,
    pub unread_unassigned: i64,
    pub numbers: Vec<(String, String)>,
    pub labels: Vec<LabelTag>,
    /// Whether the user takes new conversations (auto-assignment).
    pub available: bool,
}

/// The list for `user`: `page` rows of `filter` (its tab replaced by `tab`, as the user
/// may see it), or the hits for `term` when one is given.
pub fn list_page(
    c: &Connection,
    user: &User,
    tab: Option<Tab>,
    mut filter: Filter,
    term: &str,
    page: i64,
) -> AppResult<ListData> {
    let viewer = Viewer::for_user(c, user)?;
    let (unread_mine, unread_unassigned) = conversations::count_unread_tabs(c, &viewer)?;
    let tab = match tab {
        Some(Tab::All) if !viewer.sees_all => Tab::Mine,
        Some(t) => t,
        // Unchosen: where a customer waits. Nothing new of mine but someone waiting
        // unassigned: that tab, not an empty "Mine".
        None if unread_mine == 0 && unread_unassigned > 0 => Tab::Unassigned,
        None => Tab::Mine,
    };
    filter.tab = Some(tab);
    let (mut rows, hits) = if term.is_empty() {
        (conversations::list(c, &viewer, &filter, page + 1)?, Vec::new())
    } else {
        (Vec::new(), search::search(c, &viewer, term)?)
    };
    let next = if i64::try_from(rows.len()).unwrap_or(i64::MAX) > page {
        rows.truncate(usize::try_from(page).unwrap_or(0));
        rows.last().map(Row::cursor)
    } else {
        None
    };
    Ok(ListData {
        tab,
        sees_all: viewer.sees_all,
        rows,
        hits,
        next,
        unread_mine,
        unread_unassigned,
        numbers: crate::whatsapp::numbers::repo::choices(c)?,
        labels: catalog::list_labels(c)?,
        available: crate::auth::repo::is_available(c, user.id)?,
    })
}

/// A conversation's thread as the page shows it: a page of items and the "older" link.
pub struct Thread {
    pub conv: Row,
    pub items: Vec<Item>,
    pub older: Option<i64>,
}

/// Everything the conversation page shows besides the composer's draft.
pub struct ConversationData {
    pub thread: Thread,
    pub contact_labels: Vec<LabelTag>,
    /// The templates of the conversation's account that may be sent now (`templates::usable`).
    pub templates: Vec<Template>,
    pub canned: Vec<Canned>,
    pub agents: Vec<Agent>,
    pub labels: Vec<LabelTag>,
    /// The message being answered, when it can be quoted (it has a wamid).
    pub reply_to: Option<thread::Message>,
    /// The contact's marketing consent (the header's badge).
    pub marketing: crate::contacts::consent::State,
}

/// The user opens a conversation (the page, or its live refresh): everything up to the
/// newest message is read for them, and Meta gets the read receipt when the admin wants
/// blue ticks. 404 when the user may not see it.
async fn open(db: &Db, outbox_bell: &Doorbell, user: User, id: i64, now: i64) -> AppResult<Viewer> {
    let (viewer, receipt) = db
        .write(move |c| {
            let viewer = Viewer::for_user(c, &user)?;
            viewer.check(c, id)?;
            let newest_unread = conversations::mark_read(c, id, user.id)?;
            let receipts_on = crate::settings::inbox_settings(c)?.read_receipts;
            if let (true, Some(w)) = (receipts_on, &newest_unread) {
                super::reply::queue_read_receipt(c, id, w, now)?;
            }
            Ok((viewer, receipts_on && newest_unread.is_some()))
        })
        .await?;
    if receipt {
        outbox_bell.ring();
    }
    Ok(viewer)
}

fn thread(c: &Connection, viewer: &Viewer, id: i64, before: Option<i64>) -> AppResult<Thread> {
    let conv = conversations::find_conversation(c, viewer, id)?.ok_or(AppError::NotFound)?;
    let (items, older) = thread::list_items(c, id, before)?;
    Ok(Thread { conv, items, older })
}

/// The conversation of an outbox row (a link from the number's outbox page), when the
/// viewer may see it; 404 otherwise.
pub fn conversation_for_outbox(c: &Connection, viewer: &Viewer, outbox_id: i64) -> AppResult<i64> {
    let id = super::conversation_of_outbox(c, outbox_id)?.ok_or(AppError::NotFound)?;
    viewer.check(c, id)?;
    Ok(id)
}

/// Opens the conversation (see `open`) and reads its newest thread page.
pub async fn open_thread(db: &Db, outbox_bell: &Doorbell, user: User, id: i64, now: i64) -> AppResult<Thread> {
    let viewer = open(db, outbox_bell, user, id, now).await?;
    Ok(db.read(move |c| Ok(thread(c, &viewer, id, None)?)).await?)
}

/// Opens the conversation (see `open`) and reads its page: the thread older than
/// `before`, and what the composer and the sidebar offer.
pub async fn open_page(
    db: &Db,
    outbox_bell: &Doorbell,
    user: User,
    id: i64,
    before: Option<i64>,
    reply_to: Option<i64>,
    now: i64,
) -> AppResult<ConversationData> {
    let viewer = open(db, outbox_bell, user, id, now).await?;
    Ok(db
        .read(move |c| {
            let thread = thread(c, &viewer, id, before)?;
            let templates = match conversations::find_route(c, id)? {
                // What may be sent now, and what the picker can fill in (body variables).
                Some(r) => crate::whatsapp::templates::list_usable(c, &r.waba_id)?
                    .into_iter()
                    .filter(Template::body_only)
                    .collect(),
                None => Vec::new(),
            };
            let reply_to = match reply_to {
                Some(m) => thread::find_message(c, id, m)?.filter(|x| x.wamid.is_some()),
                None => None,
            };
            let marketing = crate::contacts::consent::state(
                c,
                thread.conv.contact_id,
                crate::contacts::consent::Purpose::Marketing,
            )?
            .unwrap_or(crate::contacts::consent::State::Unknown);
            Ok(ConversationData {
                marketing,
                contact_labels: catalog::list_contact_labels(c, thread.conv.contact_id)?,
                thread,
                templates,
                canned: catalog::list_canned(c)?,
                agents: crate::auth::repo::agents(c)?,
                labels: catalog::list_labels(c)?,
                reply_to,
            })
        })
        .await?)
}

/// Opens (or finds) a contact's conversation on a number, to write first with a
/// template; it starts unassigned, like one a customer opened, and the opening is
/// audited. 404 unless `user` may see the contact, 400 for a number that is not connected.
pub fn open_for_contact(
    c: &Connection,
    user: &User,
    actor: &Actor,
    contact_id: i64,
    number: &str,
    now: i64,
) -> AppResult<i64> {
    crate::contacts::service::get(c, &Viewer::for_user(c, user)?.contact_scope(), contact_id)?;
    if !crate::whatsapp::numbers::repo::phone_number_id_taken(c, number, None)? {
        return Err(AppError::BadRequest("inbox.no_number"));
    }
    let conv = conversations::open_for_contact(c, number, contact_id, now)?;
    audit::record(
        c,
        actor,
        "conversation.open",
        &format!("conversation:{conv}"),
        &format!("contact:{contact_id}"),
        now,
    )?;
    Ok(conv)
}

/// When a snooze preset ends, in the business's time zone (mornings at 09:00).
pub fn snooze_until(preset: &str, now: i64, tz: Option<chrono_tz::Tz>) -> Option<i64> {
    use chrono::{Datelike, Duration, TimeZone};
    let tz = tz.unwrap_or(chrono_tz::Asia::Jakarta);
    let local = tz.timestamp_opt(now, 0).single()?;
    let morning = |days: i64| {
        let d = local.date_naive() + Duration::days(days);
        tz.from_local_datetime(&d.and_hms_opt(9, 0, 0)?)
            .earliest()
            .map(|t| t.timestamp())
    };
    match preset {
        "1h" => Some(now + 3600),
        "4h" => Some(now + 4 * 3600),
        "tomorrow" => morning(1),
        "week" => morning(7 - i64::from(local.weekday().num_days_from_monday())),
        _ => None,
    }
}

/// Saves how the shared inbox works (the auto-assignment cap is 1 to 1000, else 400),
/// with the audit line in the same transaction.
pub fn update_settings(c: &Connection, actor: &Actor, s: &InboxSettings, now: i64) -> AppResult<()> {
    if !(1..=1000).contains(&s.assign_cap) {
        return Err(AppError::BadRequest("inbox.cap_invalid"));
    }
    crate::settings::set_inbox_settings(c, s)?;
    let details = serde_json::to_string(s).unwrap_or_default();
    audit::record(c, actor, "settings.inbox", "inbox", &details, now)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snooze_presets_land_in_the_business_morning() {
        // 2026-11-24 15:00 in Jakarta (UTC+7) = 08:00 UTC.
        let now = 1_795_478_400 + 8 * 3600;
        let tz = Some(chrono_tz::Asia::Jakarta);
        assert_eq!(snooze_until("1h", now, tz), Some(now + 3600));
        let tomorrow = snooze_until("tomorrow", now, tz).unwrap();
        assert_eq!((tomorrow + 7 * 3600) % 86_400, 9 * 3600);
        assert!(tomorrow > now && tomorrow - now < 86_400);
        assert_eq!(snooze_until("forever", now, tz), None);
    }
}
