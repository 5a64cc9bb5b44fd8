//! The inbox list: tabs, filters, search and pagination, its live rows, and the agent's
//! "available for new conversations" switch.

use super::conversation::viewer;
use crate::app::AppState;
use crate::error::AppResult;
use crate::inbox::catalog;
use crate::inbox::conversations::{self, Filter, Row, Tab};
use crate::inbox::search;
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
    let viewer = viewer(&state, &a).await?;
    let tab = match Tab::parse(&q.tab) {
        Some(Tab::All) if !viewer.sees_all => Tab::Mine,
        Some(t) => t,
        None => Tab::Mine,
    };
    let status = q.status.clone().unwrap_or_else(|| "open".into());
    let filter = Filter {
        tab: Some(tab),
        status: status.clone(),
        number: q.number.clone(),
        label: q.label,
        unread: q.unread == "1",
        contact: None,
        before: conversations::parse_cursor(&q.before),
    };
    let term = q.q.trim().to_string();
    let me = a.user.id;
    let (rows, hits, tabs, numbers, labels, available) = state
        .db
        .read(move |c| {
            let (rows, hits) = if term.is_empty() {
                (conversations::list(c, &viewer, &filter, PAGE + 1)?, Vec::new())
            } else {
                (Vec::new(), search::search(c, &viewer, &term)?)
            };
            let numbers = crate::whatsapp::numbers::repo::choices(c)?;
            Ok((
                rows,
                hits,
                conversations::count_unread_tabs(c, &viewer)?,
                numbers,
                catalog::list_labels(c)?,
                crate::auth::repo::is_available(c, me)?,
            ))
        })
        .await?;
    let mut rows = rows;
    let next = if rows.len() as i64 > PAGE {
        rows.truncate(PAGE as usize);
        rows.last().map(Row::cursor)
    } else {
        None
    };
    let base_query = format!(
        "tab={}&status={}&number={}&label={}&unread={}",
        tab.as_str(),
        enc(&status),
        enc(&q.number),
        q.label.map(|l| l.to_string()).unwrap_or_default(),
        if q.unread == "1" { "1" } else { "" }
    );
    if q.fragment == "rows" {
        return ok_page(&RowsPartial {
            ctx: a.ctx,
            rows,
            next,
            base_query,
            unread_mine: tabs.0,
            unread_unassigned: tabs.1,
        });
    }
    ok_page(&ListPage {
        ctx: a.ctx,
        tab,
        show_all_tab: viewer.sees_all,
        status,
        number: q.number,
        label: q.label,
        unread: q.unread == "1",
        q: q.q,
        rows,
        hits,
        next,
        unread_mine: tabs.0,
        unread_unassigned: tabs.1,
        numbers,
        labels,
        available,
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
