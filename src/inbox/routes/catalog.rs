//! The label and canned-response pages, for supervisors and admins: list, create,
//! delete; a refused form comes back with its message (422).

use crate::app::AppState;
use crate::auth::Role;
use crate::error::AppResult;
use crate::inbox::catalog;
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
    let label = catalog::NewLabel::new(&form.name, &form.color);
    let name = label.name.clone();
    let (actor, now) = (a.actor(), state.now());
    let created = state
        .db
        .write(move |c| Ok(catalog::create_label(c, &actor, &label, now)?))
        .await?;
    match created {
        Ok(_) => Ok(see_other_flash("/inbox/labels", "flash.saved")),
        Err(e) => crate::web::invalid_page(&labels_page(&state, a.ctx, Some(e.key()), name).await?),
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
        .write(move |c| Ok(catalog::remove_label(c, &actor, id, now)?))
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
    let canned = catalog::NewCanned::new(&form.shortcut, &form.body);
    let (shortcut, body) = (canned.shortcut.clone(), canned.body.clone());
    let (actor, now) = (a.actor(), state.now());
    let created = state
        .db
        .write(move |c| Ok(catalog::create_canned(c, &actor, &canned, now)?))
        .await?;
    match created {
        Ok(_) => Ok(see_other_flash("/inbox/canned", "flash.saved")),
        Err(e) => crate::web::invalid_page(&canned_page(&state, a.ctx, Some(e.key()), shortcut, body).await?),
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
        .write(move |c| Ok(catalog::remove_canned(c, &actor, id, now)?))
        .await?;
    Ok(see_other_flash("/inbox/canned", "flash.saved"))
}
