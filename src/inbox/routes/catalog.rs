//! Labels and canned responses, managed by supervisors and admins.

use crate::app::AppState;
use crate::audit;
use crate::auth::Role;
use crate::error::{AppError, AppResult};
use crate::inbox::catalog;
use crate::inbox::reply;
use crate::inbox::views::{CannedPage, LabelsPage};
use crate::web::{Authed, RequestCtx, ok_page, see_other_flash};
use actix_web::{HttpResponse, web};
use serde::Deserialize;

async fn labels_page(
    state: &AppState,
    ctx: RequestCtx,
    error: Option<&'static str>,
    name: String,
) -> AppResult<LabelsPage> {
    let labels = state.db.read(|c| Ok(catalog::list_labels(c)?)).await?;
    Ok(LabelsPage {
        ctx,
        labels,
        error,
        name,
    })
}

pub(super) async fn get_labels(state: web::Data<AppState>, a: Authed) -> AppResult<HttpResponse> {
    a.require(Role::Supervisor)?;
    ok_page(&labels_page(&state, a.ctx, None, String::new()).await?)
}

#[derive(Deserialize)]
pub struct LabelForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    color: String,
}

pub(super) async fn post_labels(
    state: web::Data<AppState>,
    a: Authed,
    form: web::Form<LabelForm>,
) -> AppResult<HttpResponse> {
    a.require(Role::Supervisor)?;
    let form = form.into_inner();
    let name = form.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 40 {
        return crate::web::invalid_page(&labels_page(&state, a.ctx, Some("inbox.label_name"), name).await?);
    }
    let color = if catalog::COLORS.contains(&form.color.as_str()) {
        form.color
    } else {
        "grey".into()
    };
    let (actor, now, n) = (a.actor(), state.now(), name.clone());
    let created = state
        .db
        .write(move |c| {
            let id = catalog::insert_label(c, &n, &color, now)?;
            if let Some(id) = id {
                audit::record(c, &actor, "label.create", &format!("label:{id}"), &n, now)?;
            }
            Ok(id)
        })
        .await?;
    match created {
        Some(_) => Ok(see_other_flash("/inbox/labels", "flash.saved")),
        None => crate::web::invalid_page(&labels_page(&state, a.ctx, Some("inbox.label_taken"), name).await?),
    }
}

pub(super) async fn post_label_delete(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<i64>,
) -> AppResult<HttpResponse> {
    a.require(Role::Supervisor)?;
    let (id, actor, now) = (path.into_inner(), a.actor(), state.now());
    state
        .db
        .write(move |c| {
            let l = catalog::find_label(c, id)?.ok_or(AppError::NotFound)?;
            catalog::delete_label(c, id)?;
            audit::record(c, &actor, "label.delete", &format!("label:{id}"), &l.name, now)?;
            Ok(())
        })
        .await?;
    Ok(see_other_flash("/inbox/labels", "flash.saved"))
}

async fn canned_page(
    state: &AppState,
    ctx: RequestCtx,
    error: Option<&'static str>,
    shortcut: String,
    body: String,
) -> AppResult<CannedPage> {
    let canned = state.db.read(|c| Ok(catalog::list_canned(c)?)).await?;
    Ok(CannedPage {
        ctx,
        canned,
        error,
        shortcut,
        body,
    })
}

pub(super) async fn get_canned(state: web::Data<AppState>, a: Authed) -> AppResult<HttpResponse> {
    a.require(Role::Supervisor)?;
    ok_page(&canned_page(&state, a.ctx, None, String::new(), String::new()).await?)
}

#[derive(Deserialize)]
pub struct CannedForm {
    #[serde(default)]
    shortcut: String,
    #[serde(default)]
    body: String,
}

pub(super) async fn post_canned(
    state: web::Data<AppState>,
    a: Authed,
    form: web::Form<CannedForm>,
) -> AppResult<HttpResponse> {
    a.require(Role::Supervisor)?;
    let form = form.into_inner();
    let shortcut = form.shortcut.trim().trim_start_matches('/').to_lowercase();
    let body = form.body.trim().to_string();
    let valid_shortcut = !shortcut.is_empty()
        && shortcut.len() <= 30
        && shortcut
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let error = if !valid_shortcut {
        Some("inbox.shortcut_invalid")
    } else if body.is_empty() || body.chars().count() > reply::MAX_TEXT {
        Some("inbox.canned_body")
    } else {
        None
    };
    if let Some(e) = error {
        return crate::web::invalid_page(&canned_page(&state, a.ctx, Some(e), shortcut, body).await?);
    }
    let (actor, now, s, b) = (a.actor(), state.now(), shortcut.clone(), body.clone());
    let created = state
        .db
        .write(move |c| {
            let id = catalog::insert_canned(c, &s, &b, now)?;
            if let Some(id) = id {
                audit::record(c, &actor, "canned.create", &format!("canned:{id}"), &s, now)?;
            }
            Ok(id)
        })
        .await?;
    match created {
        Some(_) => Ok(see_other_flash("/inbox/canned", "flash.saved")),
        None => {
            crate::web::invalid_page(&canned_page(&state, a.ctx, Some("inbox.shortcut_taken"), shortcut, body).await?)
        }
    }
}

pub(super) async fn post_canned_delete(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<i64>,
) -> AppResult<HttpResponse> {
    a.require(Role::Supervisor)?;
    let (id, actor, now) = (path.into_inner(), a.actor(), state.now());
    state
        .db
        .write(move |c| {
            let s = catalog::delete_canned(c, id)?.ok_or(AppError::NotFound)?;
            audit::record(c, &actor, "canned.delete", &format!("canned:{id}"), &s, now)?;
            Ok(())
        })
        .await?;
    Ok(see_other_flash("/inbox/canned", "flash.saved"))
}
