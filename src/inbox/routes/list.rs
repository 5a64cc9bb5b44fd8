//! The inbox list: tabs, filters, search and pagination, its live rows, and the agent's
//! "available for new conversations" switch.

use crate::app::AppState;
use crate::error::AppResult;
use crate::inbox::conversations::{self, Filter, Tab};
use crate::inbox::service;
use crate::inbox::views::{ListPage, RowsPartial};
use crate::web::{Authed, ok_page, see_other};
use actix_web::{HttpResponse, web};
use serde::Deserialize;

const PAGE: i64 = 50;

#[derive(Deserialize, Default, Clone)]
pub struct ListQuery {
    #[serde(default)]
    tab: String,
    status: Option<String>,
    #[serde(default)]
    number: String,
    #[serde(default, deserialize_with = "crate::web::empty_as_none")]
    label: Option<i64>,
    #[serde(default)]
    unread: String,
    #[serde(default)]
    before: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    fragment: String,
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub(super) async fn get_inbox(
    state: web::Data<AppState>,
    a: Authed,
    q: web::Query<ListQuery>,
) -> AppResult<HttpResponse> {
    let q = q.into_inner();
    let status = q.status.clone().unwrap_or_else(|| "open".into());
    let filter = Filter {
        tab: None,
        status: status.clone(),
        number: q.number.clone(),
        label: q.label,
        unread: q.unread == "1",
        contact: None,
        before: conversations::parse_cursor(&q.before),
    };
    let (user, tab, term) = (a.user.clone(), Tab::parse(&q.tab), q.q.trim().to_string());
    let list = state
        .db
        .read(move |c| Ok(service::list_page(c, &user, tab, filter, &term, PAGE)?))
        .await?;
    let base_query = format!(
        "tab={}&status={}&number={}&label={}&unread={}",
        list.tab.as_str(),
        enc(&status),
        enc(&q.number),
        q.label.map(|l| l.to_string()).unwrap_or_default(),
        if q.unread == "1" { "1" } else { "" }
    );
    if q.fragment == "rows" {
        return ok_page(&RowsPartial {
            ctx: a.ctx,
            rows: list.rows,
            next: list.next,
            base_query,
            unread_mine: list.unread_mine,
            unread_unassigned: list.unread_unassigned,
        });
    }
    ok_page(&ListPage {
        ctx: a.ctx,
        tab: list.tab,
        show_all_tab: list.sees_all,
        status,
        number: q.number,
        label: q.label,
        unread: q.unread == "1",
        q: q.q,
        rows: list.rows,
        hits: list.hits,
        next: list.next,
        unread_mine: list.unread_mine,
        unread_unassigned: list.unread_unassigned,
        numbers: list.numbers,
        labels: list.labels,
        available: list.available,
        base_query,
    })
}

#[derive(Deserialize)]
pub struct AvailabilityForm {
    #[serde(default)]
    available: String,
}

pub(super) async fn post_availability(
    state: web::Data<AppState>,
    a: Authed,
    form: web::Form<AvailabilityForm>,
) -> AppResult<HttpResponse> {
    let (id, on) = (a.user.id, form.available == "1");
    state
        .db
        .write(move |c| Ok(crate::auth::repo::set_available(c, id, on)?))
        .await?;
    Ok(see_other("/inbox"))
}
