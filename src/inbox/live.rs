//! Live updates: whatever changes a conversation (a message, a status tick, an
//! assignment, a note) is published here, and each open browser gets the news for the
//! conversations its user may see over Server-Sent Events (`/inbox/events`). The page
//! then fetches the fresh HTML fragment itself, so the event carries no content.

use super::access::Viewer;
use crate::app::AppState;
use crate::error::AppResult;
use crate::store::Db;
use crate::web::Authed;
use actix_web::{HttpResponse, web};
use rusqlite::Connection;
use serde::Serialize;
use std::time::Duration;
use tokio::sync::broadcast;

/// How long one event stream stays open; the browser reconnects (and the session is
/// checked again).
const STREAM_FOR: Duration = Duration::from_secs(30 * 60);
const KEEPALIVE: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Update {
    pub conversation: i64,
    pub assignee: Option<i64>,
    pub kind: Kind,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A new message from the customer.
    Inbound,
    /// Anything else: a reply, a tick, an assignment, a status, a note, a label.
    Changed,
}

/// The live news hub; a clone publishes to the same browsers.
#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<Update>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            tx: broadcast::channel(1024).0,
        }
    }
}

impl Hub {
    pub fn subscribe(&self) -> broadcast::Receiver<Update> {
        self.tx.subscribe()
    }

    /// Whether any browser listens (when none does, nobody needs the news prepared).
    pub fn has_listeners(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// Sends news prepared with [`updates`] (after the commit that made it true).
    pub fn send(&self, updates: Vec<Update>) {
        for u in updates {
            // No receiver is not an error: nobody has the inbox open.
            let _ = self.tx.send(u);
        }
    }

    /// Publishes news of these conversations (assignees read once, for the visibility rule).
    pub async fn publish(&self, db: &Db, news: Vec<(i64, Kind)>) {
        if news.is_empty() || !self.has_listeners() {
            return;
        }
        match db.read(move |c| Ok(updates(c, &news)?)).await {
            Ok(list) => self.send(list),
            Err(e) => tracing::warn!(error = %e, "cannot publish a live update"),
        }
    }
}

/// The news for these conversations with their assignees (inside the write that
/// changed them, or right after it).
pub fn updates(c: &Connection, news: &[(i64, Kind)]) -> rusqlite::Result<Vec<Update>> {
    let mut out = Vec::with_capacity(news.len());
    for &(conversation, kind) in news {
        if let Some(assignee) = super::conversations::find_assignee(c, conversation)? {
            out.push(Update {
                conversation,
                assignee,
                kind,
            });
        }
    }
    Ok(out)
}

/// One event for one viewer: `for_me` when it is theirs or nobody's (notifications).
fn frame(u: &Update, viewer: &Viewer) -> web::Bytes {
    let for_me = u.assignee.is_none() || u.assignee == viewer.user_id;
    let data = serde_json::json!({"conversation": u.conversation, "kind": u.kind, "for_me": for_me});
    web::Bytes::from(format!("event: update\ndata: {data}\n\n"))
}

/// `GET /inbox/events`: the event stream, filtered by who may see what.
pub async fn get_events(state: web::Data<AppState>, a: Authed) -> AppResult<HttpResponse> {
    let user = a.user.clone();
    let viewer = state.db.read(move |c| Ok(Viewer::for_user(c, &user)?)).await?;
    let rx = state.live.subscribe();
    let deadline = tokio::time::Instant::now() + STREAM_FOR;
    let first = futures_util::stream::once(async { Ok::<_, actix_web::Error>(web::Bytes::from("retry: 3000\n\n")) });
    let rest = futures_util::stream::unfold(Some(rx), move |rx| async move {
        let mut rx = rx?;
        loop {
            let next = tokio::select! {
                r = rx.recv() => Some(r),
                _ = tokio::time::sleep(KEEPALIVE) => None,
                _ = tokio::time::sleep_until(deadline) => return None,
            };
            match next {
                None => return Some((Ok(web::Bytes::from(": keepalive\n\n")), Some(rx))),
                Some(Ok(u)) if viewer.can_see(u.assignee) => return Some((Ok(frame(&u, &viewer)), Some(rx))),
                Some(Ok(_)) => continue,
                // Fell behind: tell the page to refresh everything.
                Some(Err(broadcast::error::RecvError::Lagged(_))) => {
                    return Some((Ok(web::Bytes::from("event: resync\ndata: {}\n\n")), Some(rx)));
                }
                Some(Err(broadcast::error::RecvError::Closed)) => return None,
            }
        }
    });
    use futures_util::StreamExt;
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(first.chain(rest)))
}
