//! Writing into a conversation from its page: a text reply, a file, a template (with
//! its preview), and a private note. A refused one re-renders the page with the draft.

use super::conversation::{back, conversation_page, viewer};
use crate::app::AppState;
use crate::error::{AppError, AppResult};
use crate::inbox::manage::{self, By};
use crate::inbox::reply::{self, Compose};
use crate::inbox::views::Draft;
use crate::web::{Authed, ok_page, see_other};
use actix_web::{HttpResponse, web};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct ReplyForm {
    #[serde(default)]
    body: String,
    #[serde(default, deserialize_with = "crate::web::empty_as_none")]
    reply_to: Option<i64>,
}

pub(super) async fn post_reply(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<i64>,
    form: web::Form<ReplyForm>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let form = form.into_inner();
    let viewer = viewer(&state, &a).await?;
    let compose = Compose::Text {
        body: form.body.clone(),
        reply_to: form.reply_to,
    };
    match reply::send(&state.inbox, viewer, id, compose, Some(a.user.id), reply::Origin::Agent).await? {
        Ok(_) => Ok(see_other(&back(id))),
        Err(key) => {
            let draft = Draft {
                error: Some(key),
                text: form.body,
                reply_to: form.reply_to,
                ..Draft::default()
            };
            crate::web::invalid_page(&conversation_page(&state, a, id, None, draft).await?)
        }
    }
}

pub(super) async fn post_attach(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<i64>,
    payload: actix_multipart::Multipart,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let viewer = viewer(&state, &a).await?;
    // Refuse a conversation the user may not see before reading a 100 MB body.
    reply::route(&state.inbox, viewer, id).await?;
    let form = crate::web::upload::read_upload(payload, crate::web::body::Pace::body(&state.config.limits)).await?;
    let (caption, reply_to) = (form.caption.clone(), form.reply_to);
    let outcome = match form.file {
        None => Err("inbox.no_file"),
        Some((filename, mime, bytes)) => {
            let file = reply::Attachment {
                filename,
                mime,
                bytes,
                caption: form.caption,
                reply_to: form.reply_to,
            };
            reply::attach(&state.inbox, viewer, id, file, Some(a.user.id), reply::Origin::Agent).await?
        }
    };
    match outcome {
        Ok(_) => Ok(see_other(&back(id))),
        Err(key) => {
            let draft = Draft {
                error: Some(key),
                text: caption,
                reply_to,
                ..Draft::default()
            };
            crate::web::invalid_page(&conversation_page(&state, a, id, None, draft).await?)
        }
    }
}

#[derive(Deserialize)]
pub struct TemplateForm {
    #[serde(default)]
    template: String,
    #[serde(default)]
    action: String,
    #[serde(flatten)]
    rest: std::collections::HashMap<String, String>,
}

pub(super) async fn post_template(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<i64>,
    form: web::Form<TemplateForm>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let form = form.into_inner();
    let mut params: Vec<(usize, String)> = form
        .rest
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("p")?.parse::<usize>().ok()?, v.trim().to_string())))
        .filter(|(i, _)| *i >= 1 && *i <= 20)
        .collect();
    params.sort();
    let params: Vec<String> = params.into_iter().map(|(_, v)| v).collect();
    let draft = |error| Draft {
        error,
        template: form.template.clone(),
        params: params.clone(),
        ..Draft::default()
    };
    if form.action != "send" {
        // "Preview" (or choosing a template without JavaScript): show it filled in.
        return ok_page(&conversation_page(&state, a, id, None, draft(None)).await?);
    }
    let Some((name, language)) = form.template.split_once('|') else {
        let page = conversation_page(&state, a, id, None, draft(Some("inbox.template_unknown"))).await?;
        return crate::web::invalid_page(&page);
    };
    let viewer = viewer(&state, &a).await?;
    let compose = Compose::Template {
        name: name.to_string(),
        language: language.to_string(),
        params: params.clone(),
    };
    match reply::send(&state.inbox, viewer, id, compose, Some(a.user.id), reply::Origin::Agent).await? {
        Ok(_) => Ok(see_other(&back(id))),
        Err(key) => crate::web::invalid_page(&conversation_page(&state, a, id, None, draft(Some(key))).await?),
    }
}

#[derive(Deserialize)]
pub struct NoteForm {
    #[serde(default)]
    body: String,
}

pub(super) async fn post_note(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<i64>,
    form: web::Form<NoteForm>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let body = form.into_inner().body;
    let b = body.clone();
    match manage::run(&state.inbox, By::from(&a), id, move |c, v, w, now| {
        manage::note(c, v, w, id, &b, now)
    })
    .await
    {
        Ok(_) => Ok(see_other(&back(id))),
        Err(AppError::BadRequest(key)) => {
            let draft = Draft {
                error: Some(key),
                note: body,
                ..Draft::default()
            };
            crate::web::invalid_page(&conversation_page(&state, a, id, None, draft).await?)
        }
        Err(e) => Err(e),
    }
}

/// "Try again" on a reply that failed: queued again, or the page says why not.
pub(super) async fn post_retry(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<(i64, i64)>,
) -> AppResult<HttpResponse> {
    let (id, message_id) = path.into_inner();
    let viewer = viewer(&state, &a).await?;
    match reply::retry(&state.inbox, viewer, id, message_id, a.actor()).await? {
        Ok(()) => Ok(crate::web::see_other_flash(&back(id), "flash.retry_queued")),
        Err(key) => {
            let draft = Draft {
                error: Some(key),
                ..Draft::default()
            };
            crate::web::invalid_page(&conversation_page(&state, a, id, None, draft).await?)
        }
    }
}
