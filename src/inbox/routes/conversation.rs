//! A conversation page (thread, composer, sidebar) and its live thread, and the
//! sidebar's changes: assignment, status and snooze, labels.

use crate::app::AppState;
use crate::error::{AppError, AppResult};
use crate::inbox::access::Viewer;
use crate::inbox::catalog::{self, Canned};
use crate::inbox::conversations;
use crate::inbox::manage::{self, By};
use crate::inbox::reply;
use crate::inbox::thread;
use crate::inbox::views::{ConversationPage, ThreadPartial};
use crate::web::{Authed, ok_page, see_other, see_other_flash};
use actix_web::{HttpResponse, web};
use serde::Deserialize;

pub(super) async fn viewer(state: &AppState, a: &Authed) -> AppResult<Viewer> {
    let user = a.user.clone();
    state.db.read(move |c| Ok(Viewer::for_user(c, &user)?)).await
}

#[derive(Deserialize, Default)]
pub struct ConversationQuery {
    #[serde(default, deserialize_with = "crate::web::empty_as_none")]
    before: Option<i64>,
    #[serde(default, deserialize_with = "crate::web::empty_as_none")]
    reply_to: Option<i64>,
    #[serde(default)]
    template: String,
    #[serde(default)]
    fragment: String,
}

/// What the composer had when a form comes back with a problem.
#[derive(Default)]
pub(super) struct Draft {
    pub(super) error: Option<&'static str>,
    pub(super) text: String,
    pub(super) note: String,
    pub(super) template: String,
    pub(super) params: Vec<String>,
    pub(super) reply_to: Option<i64>,
}

/// The user opens a conversation (the page, or its live refresh): everything up to the
/// newest message is read for them, and Meta gets the read receipt when the admin wants
/// blue ticks. 404 when the user may not see it.
async fn open(state: &AppState, user: crate::auth::User, id: i64, now: i64) -> AppResult<Viewer> {
    let (viewer, receipt) = state
        .db
        .write(move |c| {
            let viewer = Viewer::for_user(c, &user)?;
            viewer.check(c, id)?;
            let newest_unread = conversations::mark_read(c, id, user.id)?;
            let receipts_on = crate::settings::inbox_settings(c)?.read_receipts;
            if let (true, Some(w)) = (receipts_on, &newest_unread) {
                reply::queue_read_receipt(c, id, w, now)?;
            }
            Ok((viewer, receipts_on && newest_unread.is_some()))
        })
        .await?;
    if receipt {
        state.outbox_bell.ring();
    }
    Ok(viewer)
}

pub(super) async fn conversation_page(
    state: &AppState,
    a: Authed,
    id: i64,
    before: Option<i64>,
    draft: Draft,
) -> AppResult<ConversationPage> {
    let (user, now) = (a.user.clone(), state.now());
    // Opening marks it read (and queues the blue ticks when the admin wants them).
    let viewer = open(state, user, id, now).await?;
    let reply_to_id = draft.reply_to;
    let (conv, (items, older), contact_labels, templates, canned, agents, labels, reply_to) = state
        .db
        .read(move |c| {
            let conv = conversations::find_conversation(c, &viewer, id)?.ok_or(AppError::NotFound)?;
            let templates = match conversations::find_route(c, id)? {
                Some(r) => crate::whatsapp::templates::list_approved(c, &r.waba_id)?,
                None => Vec::new(),
            };
            let reply_to = match reply_to_id {
                Some(m) => thread::find_message(c, id, m)?.filter(|x| x.wamid.is_some()),
                None => None,
            };
            Ok((
                conv.clone(),
                thread::list_items(c, id, before)?,
                catalog::list_contact_labels(c, conv.contact_id)?,
                templates,
                catalog::list_canned(c)?,
                crate::auth::repo::agents(c)?,
                catalog::list_labels(c)?,
                reply_to,
            ))
        })
        .await?;
    let phone = conv.phone.clone().unwrap_or_default();
    let canned = canned
        .iter()
        .map(|x: &Canned| (x.shortcut.clone(), x.fill(&conv.contact_name, &phone)))
        .collect();
    let chosen = templates.iter().find(|t| t.key() == draft.template).cloned();
    let mut params = draft.params;
    if let Some(t) = &chosen {
        params.resize(usize::try_from(t.param_count).unwrap_or(0), String::new());
    }
    let preview = chosen
        .as_ref()
        .map(|t| reply::fill_template(&t.body_text, &params))
        .unwrap_or_default();
    let window_left = crate::inbox::window_left(conv.last_inbound_at, now);
    Ok(ConversationPage {
        ctx: a.ctx,
        window_deadline: conv.last_inbound_at.map(|t| t + 24 * 3600).unwrap_or(0),
        conv,
        contact_labels,
        items,
        older,
        window_left,
        reply_to,
        templates,
        chosen,
        params,
        preview,
        canned,
        agents,
        labels,
        form_error: draft.error,
        draft: draft.text,
        note_draft: draft.note,
    })
}

pub(super) async fn get_conversation(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<i64>,
    q: web::Query<ConversationQuery>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let q = q.into_inner();
    if q.fragment == "thread" {
        let viewer = open(&state, a.user.clone(), id, state.now()).await?;
        let (conv, (items, older)) = state
            .db
            .read(move |c| {
                let conv = conversations::find_conversation(c, &viewer, id)?.ok_or(AppError::NotFound)?;
                Ok((conv, thread::list_items(c, id, None)?))
            })
            .await?;
        return ok_page(&ThreadPartial {
            ctx: a.ctx,
            conv,
            items,
            older,
        });
    }
    let draft = Draft {
        template: q.template,
        reply_to: q.reply_to,
        ..Draft::default()
    };
    ok_page(&conversation_page(&state, a, id, q.before, draft).await?)
}

pub(super) fn back(id: i64) -> String {
    format!("/inbox/{id}")
}
#[derive(Deserialize)]
pub struct AssignForm {
    /// A user id, `me`, or empty to unassign.
    #[serde(default)]
    assignee: String,
}

pub(super) async fn post_assign(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<i64>,
    form: web::Form<AssignForm>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let to = match form.assignee.trim() {
        "" => None,
        "me" => Some(a.user.id),
        s => Some(
            s.parse::<i64>()
                .map_err(|_| AppError::BadRequest("inbox.no_such_agent"))?,
        ),
    };
    manage::run(&state, By::user(&a), id, move |c, v, w, now| {
        manage::assign(c, v, w, id, to, now)
    })
    .await?;
    Ok(see_other_flash(&format!("/inbox/{id}"), "flash.saved"))
}

#[derive(Deserialize)]
pub struct StatusForm {
    status: String,
    /// Snooze: `1h`, `4h`, `tomorrow`, `week`.
    #[serde(default)]
    snooze: String,
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

pub(super) async fn post_status(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<i64>,
    form: web::Form<StatusForm>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let form = form.into_inner();
    let tz = a.ctx.timezone;
    let until = snooze_until(&form.snooze, state.now(), tz);
    let status = form.status;
    manage::run(&state, By::user(&a), id, move |c, v, w, now| {
        manage::set_status(c, v, w, id, &status, until, now)
    })
    .await?;
    Ok(see_other_flash(&format!("/inbox/{id}"), "flash.saved"))
}

#[derive(Deserialize)]
pub struct LabelToggle {
    label_id: i64,
    #[serde(default)]
    on: String,
    /// `contact` labels the person instead of the conversation.
    #[serde(default)]
    target: String,
}

pub(super) async fn post_conversation_label(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<i64>,
    form: web::Form<LabelToggle>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let form = form.into_inner();
    let (label, on, contact) = (form.label_id, form.on == "1", form.target == "contact");
    manage::run(&state, By::user(&a), id, move |c, v, w, now| {
        if contact {
            manage::contact_label(c, v, w, id, label, on, now)
        } else {
            manage::label(c, v, w, id, label, on, now)
        }
    })
    .await?;
    Ok(see_other(&format!("/inbox/{id}")))
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
