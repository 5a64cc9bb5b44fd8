//! The outbox and its dispatcher against the fake Graph API: sends, the error classes
//! (throughput, pair rate for one recipient, 5xx, timeouts, window closed, undeliverable,
//! expired token pausing the number), crash recovery without resending, and the
//! per-number token bucket.

use crate::common::{Browser, TestApp};
use crate::fake_graph::{FakeGraph, Fault, meta_error};
use whacaster::whatsapp::outbound::OutMessage;

const PHONE_ID: &str = "106540352242922";

async fn setup(mps: &str, timeout: u64) -> (TestApp, Browser, FakeGraph) {
    let graph = FakeGraph::start();
    let (app, admin) =
        crate::common::app_with_number(&graph, "secret", "token-1", mps, |c| c.graph.timeout_secs = timeout).await;
    (app, admin, graph)
}

fn text(body: &str) -> OutMessage {
    OutMessage::Text {
        body: body.into(),
        preview_url: false,
        reply_to: None,
    }
}

async fn enqueue(app: &TestApp, to: &str, msg: OutMessage) -> i64 {
    let (now, to) = (app.clock.unix(), to.to_string());
    let id = app
        .state
        .db
        .write(move |c| {
            Ok(whacaster::whatsapp::outbox::enqueue(
                c,
                1,
                &to,
                None,
                &msg,
                whacaster::whatsapp::outbox::Origin::System,
                now,
            )?)
        })
        .await
        .unwrap();
    app.state.outbox_bell.ring();
    id
}

#[derive(Debug, Clone, PartialEq)]
struct Row {
    state: String,
    attempts: i64,
    wamid: Option<String>,
    error_code: Option<i64>,
    error_class: Option<String>,
    error_message: Option<String>,
    throttled: i64,
}

async fn row(app: &TestApp, id: i64) -> Row {
    app.state
        .db
        .read(move |c| {
            Ok(c.query_row(
                "SELECT state, attempts, wamid, error_code, error_class, error_message, throttled FROM outbox WHERE id = ?1",
                [id],
                |r| {
                    Ok(Row {
                        state: r.get(0)?,
                        attempts: r.get(1)?,
                        wamid: r.get(2)?,
                        error_code: r.get(3)?,
                        error_class: r.get(4)?,
                        error_message: r.get(5)?,
                        throttled: r.get(6)?,
                    })
                },
            )?)
        })
        .await
        .unwrap()
}

/// Waits until the row satisfies `done`.
async fn until(app: &TestApp, id: i64, done: impl Fn(&Row) -> bool) -> Row {
    for _ in 0..200 {
        let r = row(app, id).await;
        if done(&r) {
            return r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!(
        "outbox row {id} never reached the expected state: {:?}",
        row(app, id).await
    );
}

/// Lets backoff delays pass on the app's clock and wakes the dispatcher.
fn later(app: &TestApp, secs: i64) {
    app.clock.advance(secs);
    app.state.outbox_bell.ring();
}

#[tokio::test]
async fn a_message_leaves_through_the_outbox_once() {
    let (app, _admin, graph) = setup("80", 20).await;
    let id = enqueue(&app, "+6281298765432", text("Pesanan Anda sudah dikirim 🚚")).await;
    let r = until(&app, id, |r| r.state == "sent").await;
    assert_eq!(r.wamid.as_deref(), Some("wamid.fake1"));
    let sends: Vec<_> = graph
        .seen()
        .into_iter()
        .filter(|s| s.path.ends_with("/messages"))
        .collect();
    assert_eq!(sends.len(), 1, "sent exactly once");
    assert_eq!(sends[0].path, format!("/v25.0/{PHONE_ID}/messages"));
    assert_eq!(sends[0].authorization, "Bearer token-1");
    assert_eq!(sends[0].body["to"], "+6281298765432");
    assert_eq!(sends[0].body["text"]["body"], "Pesanan Anda sudah dikirim 🚚");
    let out: (String, String) = app
        .state
        .db
        .read(|c| {
            Ok(c.query_row(
                "SELECT direction, body FROM messages WHERE wamid = 'wamid.fake1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(out, ("out".to_string(), "Pesanan Anda sudah dikirim 🚚".to_string()));
    // Mark-as-read has no wamid and no message row, and is still sent once.
    let id = enqueue(
        &app,
        "+6281298765432",
        OutMessage::MarkRead {
            message_id: "wamid.in".into(),
        },
    )
    .await;
    let r = until(&app, id, |r| r.state == "sent").await;
    assert_eq!(r.wamid, None);
}

#[expect(clippy::too_many_lines, reason = "one scenario, told in order")]
#[tokio::test]
async fn each_error_class_does_what_it_says() {
    let (app, admin, graph) = setup("80", 1).await;
    // Final: the window is closed; a template is needed. Not retried.
    graph.inject(Fault {
        path: "/messages".into(),
        body_contains: Some("closed-window".into()),
        status: 400,
        answer: meta_error(131047, "Re-engagement message", "More than 24 hours have passed"),
        times: None,
        delay_ms: 0,
    });
    let closed = enqueue(&app, "+62811", text("closed-window")).await;
    let r = until(&app, closed, |r| r.state == "failed").await;
    assert_eq!((r.error_code, r.error_class.as_deref()), (Some(131047), Some("final")));
    assert!(r.error_message.unwrap().contains("Re-engagement"));
    // Final: undeliverable.
    graph.inject(Fault {
        path: "/messages".into(),
        body_contains: Some("not-on-whatsapp".into()),
        status: 400,
        answer: meta_error(131026, "Message undeliverable", ""),
        times: None,
        delay_ms: 0,
    });
    let undeliverable = enqueue(&app, "+62812", text("not-on-whatsapp")).await;
    assert_eq!(
        until(&app, undeliverable, |r| r.state == "failed").await.error_code,
        Some(131026)
    );

    // Throughput (130429) once: backed off, then it goes. Not a failed attempt: the
    // message was never at fault, so it cannot run out of attempts this way.
    graph.inject(Fault {
        path: "/messages".into(),
        body_contains: Some("busy".into()),
        status: 400,
        answer: meta_error(130429, "Rate limit hit", ""),
        times: Some(1),
        delay_ms: 0,
    });
    // (The first backoff is one second of real time too, so the queued state between
    // the two tries may pass unseen on a busy machine: what proves the retry is one
    // counted refusal before the send.)
    let busy = enqueue(&app, "+62813", text("busy")).await;
    until(&app, busy, |r| r.throttled == 1).await;
    later(&app, 5);
    let r = until(&app, busy, |r| r.state == "sent").await;
    assert!(r.wamid.is_some());
    assert_eq!(
        (r.attempts, r.throttled),
        (0, 1),
        "refused once for the rate, not an attempt, then sent"
    );

    // Retry: Meta's 5xx.
    graph.inject(Fault {
        path: "/messages".into(),
        body_contains: Some("server-hiccup".into()),
        status: 503,
        answer: meta_error(2, "Service temporarily unavailable", ""),
        times: Some(1),
        delay_ms: 0,
    });
    let hiccup = enqueue(&app, "+62814", text("server-hiccup")).await;
    until(&app, hiccup, |r| r.attempts == 1).await;
    later(&app, 5);
    until(&app, hiccup, |r| r.state == "sent").await;

    // Retry: no answer within the client timeout.
    graph.inject(Fault {
        path: "/messages".into(),
        body_contains: Some("slow".into()),
        status: 200,
        answer: serde_json::json!({}),
        times: Some(1),
        delay_ms: 1500,
    });
    let slow = enqueue(&app, "+62815", text("slow")).await;
    let r = until(&app, slow, |r| r.attempts == 1).await;
    assert!(r.error_message.unwrap().contains("no answer"));
    later(&app, 5);
    until(&app, slow, |r| r.state == "sent").await;

    // Pair rate (131056) for one recipient: only that one waits.
    graph.inject(Fault {
        path: "/messages".into(),
        body_contains: Some("+62816".into()),
        status: 400,
        answer: meta_error(131056, "Pair rate limit hit", ""),
        times: Some(1),
        delay_ms: 0,
    });
    let pair = enqueue(&app, "+62816", text("pertama")).await;
    let other = enqueue(&app, "+62817", text("lain")).await;
    until(&app, pair, |r| {
        r.throttled == 1 && r.attempts == 0 && r.state == "queued"
    })
    .await;
    until(&app, other, |r| r.state == "sent").await;
    later(&app, 2);
    until(&app, pair, |r| r.state == "sent").await;

    // Channel stop: the token expired. The message waits; the number is paused.
    graph.inject(Fault {
        path: "/messages".into(),
        body_contains: None,
        status: 401,
        answer: meta_error(190, "Access token has expired", ""),
        times: Some(1),
        delay_ms: 0,
    });
    let stopped = enqueue(&app, "+62818", text("setelah token kedaluwarsa")).await;
    let r = until(&app, stopped, |r| r.error_class.as_deref() == Some("channel")).await;
    assert_eq!(r.state, "queued", "not failed: it goes once the channel works");
    let queued_behind = enqueue(&app, "+62819", text("juga menunggu")).await;
    // A round now and one after the backoff: a number that was not paused would have
    // its message taken (sending or sent) by one of them or by the running dispatcher.
    let dispatcher = app.state.dispatcher();
    dispatcher.dispatch_round().await.unwrap();
    later(&app, 60);
    dispatcher.dispatch_round().await.unwrap();
    assert_eq!(
        row(&app, queued_behind).await.state,
        "queued",
        "nothing is sent on a paused number"
    );
    let page = admin.get("/admin/whatsapp/1").await;
    assert!(
        page.body.contains("Sending is paused") && page.body.contains("Access token has expired"),
        "{}",
        page.body
    );
    // A new token fixes it.
    let r = admin
        .submit(
            "/admin/whatsapp/1",
            "/admin/whatsapp/1",
            &[
                ("display_name", "CS"),
                ("phone_number_id", PHONE_ID),
                ("waba_id", "102290129340398"),
                ("business_manager_id", "506914307656634"),
                ("access_token", "token-2"),
                ("mps", "80"),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    app.state.outbox_bell.ring();
    until(&app, stopped, |r| r.state == "sent").await;
    until(&app, queued_behind, |r| r.state == "sent").await;
    assert_eq!(graph.seen().last().unwrap().authorization, "Bearer token-2");
}

#[tokio::test]
async fn a_send_interrupted_by_a_crash_is_held_not_resent() {
    let (app, _admin, graph) = setup("80", 20).await;
    let cfg = app.config.clone();
    let guard = app.stop().await;
    // As if the process died between marking `sending` and hearing Meta's answer.
    let conn = crate::common::open_stopped_db(&cfg);
    let id = whacaster::whatsapp::outbox::enqueue(
        &conn,
        1,
        "+62811",
        None,
        &text("mungkin terkirim"),
        whacaster::whatsapp::outbox::Origin::System,
        0,
    )
    .unwrap();
    conn.execute("UPDATE outbox SET state = 'sending' WHERE id = ?1", [id])
        .unwrap();
    drop(conn);
    let app = TestApp::start_with(guard, cfg).await;
    let r = until(&app, id, |r| r.state == "needs_review").await;
    assert!(r.error_message.unwrap().contains("interrupted"));
    // A round would send it if it were still (or again) queued.
    app.state.dispatcher().dispatch_round().await.unwrap();
    assert!(
        graph.seen().iter().all(|s| !s.path.ends_with("/messages")),
        "never re-sent blindly"
    );
}

#[tokio::test]
async fn a_held_send_is_settled_by_its_status_webhook_after_the_restart() {
    let (app, _admin, graph) = setup("80", 20).await;
    // A customer wrote, so there is a conversation to reply in.
    let now = app.clock.unix();
    crate::common::inbound_text(&app, "secret", PHONE_ID, "wamid.hi", "62811", "Siti", now - 60, "halo").await;
    // Every send names its outbox row and attempt in biz_opaque_callback_data.
    let first = enqueue(&app, "+62899", text("satu")).await;
    until(&app, first, |r| r.state == "sent").await;
    let sent = graph
        .seen()
        .into_iter()
        .find(|s| s.path.ends_with("/messages"))
        .unwrap();
    assert_eq!(
        sent.body["biz_opaque_callback_data"],
        whacaster::whatsapp::outbox::callback_data(first, 1, "")
    );
    let cfg = app.config.clone();
    let guard = app.stop().await;
    // As if the process died after Meta took the reply but before we heard its answer.
    let conn = crate::common::open_stopped_db(&cfg);
    let id = whacaster::whatsapp::outbox::enqueue(
        &conn,
        1,
        "+62811",
        Some(1),
        &text("sudah dikirim?"),
        whacaster::whatsapp::outbox::Origin::Agent,
        now,
    )
    .unwrap();
    let message = whacaster::inbox::NewOutbound {
        phone_number_id: PHONE_ID,
        contact_id: Some(1),
        kind: "text",
        body: "sudah dikirim?",
        outbox_id: id,
        author_id: None,
        reply_to: None,
        wamid: None,
        at: now,
    };
    whacaster::inbox::insert_outbound(&conn, &message).unwrap();
    conn.execute("UPDATE outbox SET state = 'sending' WHERE id = ?1", [id])
        .unwrap();
    drop(conn);
    let app = TestApp::start_with(guard, cfg).await;
    until(&app, id, |r| r.state == "needs_review").await;
    // Meta's status for it arrives, carrying what we sent along.
    let callback = whacaster::whatsapp::outbox::callback_data(id, 1, "");
    let body = serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "62812", "phone_number_id": PHONE_ID},
        "statuses": [{"id": "wamid.settled", "status": "delivered", "timestamp": now.to_string(), "recipient_id": "62811",
                      "biz_opaque_callback_data": callback}]}}]}]});
    crate::common::deliver(&app, "secret", &body).await;
    let r = row(&app, id).await;
    assert_eq!((r.state.as_str(), r.wamid.as_deref()), ("sent", Some("wamid.settled")));
    let (status, events): (String, i64) = app
        .state
        .db
        .read(move |c| {
            Ok(c.query_row(
                "SELECT (SELECT status FROM messages WHERE outbox_id = ?1),
                        (SELECT count(*) FROM conversation_events WHERE kind = 'settled')",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(
        status, "delivered",
        "the bubble shows what Meta reported, no longer 'held'"
    );
    assert_eq!(events, 1, "the conversation says so");
    // A status naming a row that is not held changes nothing of that row.
    let first_wamid = row(&app, first).await.wamid;
    let other = serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "62812", "phone_number_id": PHONE_ID},
        "statuses": [{"id": "wamid.other", "status": "sent", "timestamp": now.to_string(), "recipient_id": "62899",
                      "biz_opaque_callback_data": whacaster::whatsapp::outbox::callback_data(first, 1, "")}]}}]}]});
    crate::common::deliver(&app, "secret", &other).await;
    assert_eq!(row(&app, first).await.wamid, first_wamid);
}

#[tokio::test]
async fn the_token_bucket_holds_the_number_rate() {
    let (app, _admin, graph) = setup("5", 20).await;
    let mut ids = Vec::new();
    for i in 0..15 {
        ids.push(enqueue(&app, &format!("+628120000{i:02}"), text("promo")).await);
    }
    for id in &ids {
        until(&app, *id, |r| r.state == "sent").await;
    }
    let times: Vec<_> = graph
        .seen()
        .into_iter()
        .filter(|s| s.path.ends_with("/messages"))
        .map(|s| s.at)
        .collect();
    assert_eq!(times.len(), 15);
    let span = *times.last().unwrap() - times[0];
    // A burst of 5, then 5 per second: the other 10 need at least ~2 s.
    assert!(
        span >= std::time::Duration::from_millis(1800),
        "15 messages at 5/s took only {span:?}"
    );
}

/// An agent's reply queued after a broadcast's rows still leaves first: campaign rows
/// wait behind everyone else's, so an agent is never stuck behind a broadcast.
#[tokio::test]
async fn an_agent_reply_leaves_before_the_campaign_rows_queued_ahead_of_it() {
    use whacaster::whatsapp::outbox::Origin;
    let (app, _admin, graph) = setup("5", 20).await;
    let now = app.state.now();
    // One write: the dispatcher sees all of them in the same round.
    app.state
        .db
        .write(move |c| {
            for i in 0..10 {
                whacaster::whatsapp::outbox::enqueue(
                    c,
                    1,
                    &format!("+6281400000{i:02}"),
                    None,
                    &text("promo 12.12"),
                    Origin::Campaign,
                    now,
                )?;
            }
            Ok(whacaster::whatsapp::outbox::enqueue(
                c,
                1,
                "+62815",
                None,
                &text("Baik, kami cek pesanannya"),
                Origin::Agent,
                now,
            )?)
        })
        .await
        .unwrap();
    app.state.outbox_bell.ring();
    graph
        .wait_for("the agent's reply", |seen| {
            seen.iter().any(|s| s.body["to"] == "+62815")
        })
        .await;
    let sends: Vec<String> = graph
        .seen()
        .into_iter()
        .filter(|s| s.path.ends_with("/messages"))
        .map(|s| s.body["to"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(sends[0], "+62815", "the reply went first: {sends:?}");
}
