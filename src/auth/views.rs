//! Auth's page structs that more than one routes file renders: the sessions list (the
//! user's own, or everyone's for admins) and its rows.

use super::{repo, session::describe_device};
use crate::web::RequestCtx;
use askama::Template;

pub struct SessionView {
    pub id: i64,
    pub user_name: String,
    pub user_email: String,
    pub device: String,
    pub ip: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub current: bool,
}

pub fn session_views(items: Vec<repo::SessionListItem>, current: i64) -> Vec<SessionView> {
    items
        .into_iter()
        .map(|i| SessionView {
            id: i.session.id,
            device: describe_device(&i.session.user_agent),
            ip: i.session.ip,
            created_at: i.session.created_at,
            last_seen_at: i.session.last_seen_at,
            current: i.session.id == current,
            user_name: i.user_name,
            user_email: i.user_email,
        })
        .collect()
}

#[derive(Template)]
#[template(path = "account/sessions.html")]
pub struct SessionsPage {
    pub ctx: RequestCtx,
    pub sessions: Vec<SessionView>,
    pub all_users: bool,
}
