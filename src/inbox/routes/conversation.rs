//! A conversation page (thread, composer, sidebar) and its live thread, and the
//! sidebar's changes: assignment, status and snooze, labels.

use crate::app::AppState;
use crate::error::{AppError, AppResult};
use crate::inbox::access::Viewer;
use crate::inbox::manage::{self, By};
use crate::inbox::service;
use crate::inbox::views::{ConversationPage, Draft, ThreadPartial};
use crate::web::{Authed, ok_page, see_other, see_other_flash};
use actix_web::{HttpResponse, web};
use serde::Deserialize;

pub(super) async fn viewer(state: &AppState, a: &Authed) -> AppResult<Viewer> {
    let user = a.user.clone();
    Ok(state.db.read(move |c| Ok(Viewer::for_user(c, &user)?)).await?)
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

pub(super) async fn conversation_page(
    state: &AppState,
    a: Authed,
    id: i64,
    before: Option<i64>,
    draft: Draft,
) -> AppResult<ConversationPage> {
    let now = state.now();
    // Opening marks it read (and queues the blue ticks when the admin wants them).
    let data = service::open_page(
        &state.db,
        &state.outbox_bell,
        a.user.clone(),
        id,
        before,
        draft.reply_to,
        now,
    )
    .await?;
    let mut page = ConversationPage::new(a.ctx, data, draft, now);
    // Who has it, and the bot's decisions here (the page could be opened, so the
    // viewer may see them).
    let (bot_off, lines) = state
        .db
        .read(move |c| {
            let off = crate::inbox::conversations::bot_control(c, id)?.off.is_some();
            let filter = crate::bot::LogFilter {
                conversation_id: Some(id),
                ..crate::bot::LogFilter::default()
            };
            Ok((off, crate::bot::list_log(c, &filter, 50)?))
        })
        .await?;
    page.bot_off = bot_off;
    page.bot_lines = lines
        .into_iter()
        .map(|r| crate::inbox::views::BotLine {
            at: r.at,
            decision: r.decision,
            detail: r.detail,
            outbox_ids: r.outbox_ids,
            stored: r.stored,
            micros: r.micros,
        })
        .collect();
    Ok(page)
}

/// "Give back to bot": the bot answers this conversation again.
pub(super) async fn post_give_to_bot(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    manage::run(&state.inbox, By::from(&a), id, move |c, v, w, now| {
        manage::give_to_bot(c, v, w, id, now)
    })
    .await?;
    Ok(see_other_flash(&format!("/inbox/{id}"), "flash.saved"))
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
        let t = service::open_thread(&state.db, &state.outbox_bell, a.user.clone(), id, state.now()).await?;
        return ok_page(&ThreadPartial {
            ctx: a.ctx,
            conv: t.conv,
            items: t.items,
            older: t.older,
        });
    }
    let draft = Draft {
        template: q.template,
        reply_to: q.reply_to,
        ..Draft::default()
    };
    ok_page(&conversation_page(&state, a, id, q.before, draft).await?)
}

/// From a number's outbox page to the conversation of one of its messages.
pub(super) async fn get_by_outbox(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let outbox_id = path.into_inner();
    let viewer = viewer(&state, &a).await?;
    let id = state
        .db
        .read(move |c| Ok(service::conversation_for_outbox(c, &viewer, outbox_id)?))
        .await?;
    Ok(see_other(&back(id)))
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
    manage::run(&state.inbox, By::from(&a), id, move |c, v, w, now| {
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

pub(super) async fn post_status(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<i64>,
    form: web::Form<StatusForm>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let form = form.into_inner();
    let tz = a.ctx.timezone;
    let until = service::snooze_until(&form.snooze, state.now(), tz);
    let status = form.status;
    manage::run(&state.inbox, By::from(&a), id, move |c, v, w, now| {
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
    manage::run(&state.inbox, By::from(&a), id, move |c, v, w, now| {
        if contact {
            manage::contact_label(c, v, w, id, label, on, now)
        } else {
            manage::label(c, v, w, id, label, on, now)
        }
    })
    .await?;
    Ok(see_other(&format!("/inbox/{id}")))
}
