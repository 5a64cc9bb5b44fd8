//! `/media/{id}`: a stored file, served only to a signed-in user who may see its
//! conversation (else 404), with its MIME type, `nosniff`, `no-store`, and as an
//! attachment for anything a browser could run.

use crate::app::AppState;
use crate::error::{AppError, AppResult};
use crate::web::Authed;
use crate::whatsapp::media::{StoredFile, find_stored, inline_safe};
use actix_web::{HttpResponse, web};
use rusqlite::{Connection, OptionalExtension};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/media/{id}").route(web::get().to(get_media)));
}

/// The conversation of the message a file came or went with (`None`: no conversation).
fn find_conversation_of_file(c: &Connection, f: &StoredFile) -> rusqlite::Result<Option<i64>> {
    let by_id = match f.message_id {
        Some(id) => c
            .query_row("SELECT conversation_id FROM messages WHERE id = ?1", [id], |r| {
                r.get::<_, Option<i64>>(0)
            })
            .optional()?
            .flatten(),
        None => None,
    };
    if by_id.is_some() || f.wamid.is_empty() {
        return Ok(by_id);
    }
    crate::inbox::conversations::find_by_wamid(c, &f.wamid)
}

async fn get_media(state: web::Data<AppState>, a: Authed, path: web::Path<i64>) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let user = a.user;
    let file = state
        .db
        .read(move |c| {
            let viewer = crate::inbox::access::Viewer::for_user(c, &user)?;
            let Some(file) = find_stored(c, id)? else {
                return Err(AppError::NotFound.into());
            };
            match find_conversation_of_file(c, &file)? {
                Some(conversation) => viewer.check(c, conversation)?,
                None if viewer.sees_all => {}
                None => return Err(AppError::NotFound.into()),
            }
            Ok(file)
        })
        .await?;
    let store = state.media.store.clone();
    let stored_name = file.stored_name.clone();
    let plain = tokio::task::spawn_blocking(move || store.read(&stored_name))
        .await
        .map_err(AppError::internal)?
        .map_err(AppError::internal)?;
    let mime = if file.mime.is_empty() {
        "application/octet-stream".to_string()
    } else {
        file.mime
    };
    let safe_name: String = file
        .filename
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._- ".contains(*c))
        .take(100)
        .collect::<String>();
    let safe_name = if safe_name.trim().is_empty() {
        format!("media-{id}")
    } else {
        safe_name
    };
    let disposition = if inline_safe(&mime) { "inline" } else { "attachment" };
    Ok(HttpResponse::Ok()
        .content_type(mime)
        .insert_header((
            "Content-Disposition",
            format!("{disposition}; filename=\"{safe_name}\""),
        ))
        .insert_header(("Cache-Control", "private, no-store"))
        .body(plain))
}
