//! The inbox settings page for admins: who sees what, read receipts, auto-assignment
//! and its cap. Every change is audited.

use crate::app::AppState;
use crate::error::{AppError, AppResult};
use crate::inbox::service;
use crate::inbox::views::SettingsPage;
use crate::settings::InboxSettings;
use crate::web::{Admin, ok_page, see_other_flash};
use actix_web::{HttpResponse, web};
use serde::Deserialize;

pub(super) async fn get_settings(state: web::Data<AppState>, Admin(a): Admin) -> AppResult<HttpResponse> {
    let s = state.db.read(|c| Ok(crate::settings::inbox_settings(c)?)).await?;
    ok_page(&SettingsPage { ctx: a.ctx, s })
}

#[derive(Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    agents_see_all: String,
    #[serde(default)]
    agents_see_all_contacts: String,
    #[serde(default)]
    read_receipts: String,
    #[serde(default)]
    auto_assign: String,
    #[serde(default)]
    assign_cap: String,
}

pub(super) async fn post_settings(
    state: web::Data<AppState>,
    Admin(a): Admin,
    form: web::Form<SettingsForm>,
) -> AppResult<HttpResponse> {
    let s = InboxSettings {
        agents_see_all: form.agents_see_all == "1",
        agents_see_all_contacts: form.agents_see_all_contacts == "1",
        read_receipts: form.read_receipts == "1",
        auto_assign: form.auto_assign == "1",
        assign_cap: form
            .assign_cap
            .trim()
            .parse::<i64>()
            .map_err(|_| AppError::BadRequest("inbox.cap_invalid"))?,
    };
    let (actor, now) = (a.actor(), state.now());
    state
        .db
        .write(move |c| Ok(service::update_settings(c, &actor, &s, now)?))
        .await?;
    Ok(see_other_flash("/admin/inbox", "flash.saved"))
}
