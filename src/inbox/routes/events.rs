//! `GET /inbox/events`: the live news as Server-Sent Events, filtered by who may see
//! what; the stream ends after a while and the browser reconnects (session checked again).

use crate::app::AppState;
use crate::error::AppResult;
use crate::inbox::access::Viewer;
use crate::inbox::live::Update;
use crate::web::Authed;
use actix_web::{HttpResponse, web};
use futures_util::StreamExt;
use std::time::Duration;
use tokio::sync::broadcast;

/// How long one event stream stays open; the browser reconnects (and the session is
/// checked again).
const STREAM_FOR: Duration = Duration::from_secs(30 * 60);
const KEEPALIVE: Duration = Duration::from_secs(20);

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
                () = tokio::time::sleep(KEEPALIVE) => None,
                () = tokio::time::sleep_until(deadline) => return None,
            };
            match next {
                None => return Some((Ok(web::Bytes::from(": keepalive\n\n")), Some(rx))),
                Some(Ok(u)) if viewer.can_see(u.assignee) => return Some((Ok(frame(&u, &viewer)), Some(rx))),
                Some(Ok(_)) => {}
                // Fell behind: tell the page to refresh everything.
                Some(Err(broadcast::error::RecvError::Lagged(_))) => {
                    return Some((Ok(web::Bytes::from("event: resync\ndata: {}\n\n")), Some(rx)));
                }
                Some(Err(broadcast::error::RecvError::Closed)) => return None,
            }
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(first.chain(rest)))
}
