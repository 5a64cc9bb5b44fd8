//! Writing into a conversation from its page: a text reply, a file, a template (with
//! its preview), and a private note. A refused one re-renders the page with the draft.

use super::conversation::{Draft, back, conversation_page, viewer};
use crate::app::AppState;
use crate::error::{AppError, AppResult};
use crate::inbox::manage::{self, By};
use crate::inbox::reply::{self, Compose};
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
    match reply::send(&state, viewer, id, compose, Some(a.user.id), "agent").await? {
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
    reply::route(&state, viewer, id).await?;
    let form = read_upload(payload).await?;
    let caption = form.caption.clone();
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
            reply::attach(&state, viewer, id, file, Some(a.user.id), "agent").await?
        }
    };
    match outcome {
        Ok(_) => Ok(see_other(&back(id))),
        Err(key) => {
            let draft = Draft {
                error: Some(key),
                text: caption,
                ..Draft::default()
            };
            crate::web::invalid_page(&conversation_page(&state, a, id, None, draft).await?)
        }
    }
}

/// The attachment form: one file (Meta's 100 MB document limit), a caption, reply-to.
struct Upload {
    file: Option<(String, String, Vec<u8>)>,
    caption: String,
    reply_to: Option<i64>,
}

async fn read_upload(mut payload: actix_multipart::Multipart) -> AppResult<Upload> {
    use futures_util::StreamExt;
    const MAX: usize = 100 * 1024 * 1024;
    let mut out = Upload {
        file: None,
        caption: String::new(),
        reply_to: None,
    };
    while let Some(field) = payload.next().await {
        let mut field = field.map_err(|_| AppError::BadRequest("error.bad_request"))?;
        let name = field.name().unwrap_or("").to_string();
        let filename = field.content_disposition().and_then(|d| d.get_filename()).map(|f| {
            f.chars()
                .filter(|c| !c.is_control() && *c != '/' && *c != '\\')
                .take(200)
                .collect::<String>()
        });
        let mime = field.content_type().map(|m| m.essence_str().to_string());
        let limit = if name == "file" { MAX } else { 8 * 1024 };
        let mut buf = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|_| AppError::BadRequest("error.bad_request"))?;
            if buf.len() + chunk.len() > limit {
                return Err(AppError::BadRequest("media.too_big"));
            }
            buf.extend_from_slice(&chunk);
        }
        match name.as_str() {
            "file" if !buf.is_empty() => {
                let filename = filename.filter(|f| !f.is_empty()).unwrap_or_else(|| "file".into());
                let mime = mime
                    .filter(|m| m != "application/octet-stream")
                    .unwrap_or_else(|| mime_guess::from_path(&filename).first_or_octet_stream().to_string());
                out.file = Some((filename, mime, buf));
            }
            "caption" => out.caption = String::from_utf8_lossy(&buf).trim().to_string(),
            "reply_to" => out.reply_to = String::from_utf8_lossy(&buf).trim().parse().ok(),
            _ => {}
        }
    }
    Ok(out)
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
    match reply::send(&state, viewer, id, compose, Some(a.user.id), "agent").await? {
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
    match manage::run(&state, By::user(&a), id, move |c, v, w, now| {
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
