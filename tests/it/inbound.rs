//! Processing webhook deliveries: every message type, batches, duplicates, statuses out
//! of order, BSUID-only users, unknown types kept, quarantine and retry, processing
//! after a restart, account news. Fixtures are built here in Meta's shapes
//! (`../shared/whatsapp/REFERENCE.md` §2–3).

use crate::common::{Browser, TestApp};
use serde_json::{Value, json};

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const PHONE_ID: &str = "106540352242922";
const WABA: &str = "102290129340398";

async fn setup() -> (TestApp, Browser) {
    let app = TestApp::start().await;
    let (admin, _) = app.admin("owner@toko.id").await;
    let r = crate::common::connect_number(&admin, PHONE_ID, SECRET, "token", "80").await;
    assert_eq!(r.status, 303);
    (app, admin)
}

#[expect(clippy::needless_pass_by_value, reason = "the callers build the JSON in place")]
fn envelope(changes: Vec<Value>) -> Value {
    json!({"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": changes}]})
}

#[expect(clippy::needless_pass_by_value, reason = "the callers build the JSON in place")]
fn messages_change(contacts: Value, messages: Value) -> Value {
    json!({"field": "messages", "value": {"messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "6281234567890", "phone_number_id": PHONE_ID},
        "contacts": contacts, "messages": messages}})
}

#[expect(clippy::needless_pass_by_value, reason = "the callers build the JSON in place")]
fn statuses_change(statuses: Value) -> Value {
    json!({"field": "messages", "value": {"messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "6281234567890", "phone_number_id": PHONE_ID}, "statuses": statuses}})
}

fn msg(id: &str, kind: &str, object: Value) -> Value {
    let mut m = json!({"from": "6281298765432", "id": id, "timestamp": "1764000000", "type": kind});
    if !object.is_null() {
        m[kind] = object;
    }
    m
}

async fn deliver(app: &TestApp, body: &Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    let (status, _) = crate::common::post_webhook(
        app,
        &bytes,
        Some(&crate::common::sign(SECRET, &bytes)),
        "application/json",
    )
    .await;
    assert_eq!(status, 200);
}

/// Waits until nothing is left to process.
async fn processed(app: &TestApp) {
    for _ in 0..100 {
        let open: i64 = app
            .state
            .db
            .read(|c| {
                Ok(c.query_row(
                    "SELECT count(*) FROM webhook_inbox WHERE state IN ('new', 'processing')",
                    [],
                    |r| r.get(0),
                )?)
            })
            .await
            .unwrap();
        if open == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("deliveries were not processed");
}

async fn query<T: Send + 'static>(
    app: &TestApp,
    sql: &'static str,
    f: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Vec<T> {
    app.state
        .db
        .read(move |c| {
            let mut st = c.prepare(sql)?;
            let rows = st.query_map([], f)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
        .unwrap()
}

#[expect(clippy::too_many_lines, reason = "one scenario, told in order")]
#[tokio::test]
async fn every_message_type_is_understood_or_kept() {
    let (app, _admin) = setup().await;
    let media = |extra: Value| {
        let mut o = json!({"id": "1479537139650973", "mime_type": "image/jpeg", "sha256": "aGFzaA==", "url": "https://lookaside.fbsbx.com/x"});
        o.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        o
    };
    let mut text = msg("wamid.text", "text", json!({"body": "Halo 👋 ada diskon?"}));
    text["referral"] = json!({"source_url": "https://fb.me/ad", "source_id": "120210", "source_type": "ad", "headline": "Promo Kopi", "body": "Diskon 20%", "media_type": "image", "image_url": "https://x/img.jpg", "ctwa_clid": "ARA"});
    let mut reply = msg("wamid.reply", "text", json!({"body": "yang ini kak"}));
    reply["context"] = json!({"from": "6281234567890", "id": "wamid.original"});
    let mut fwd = msg("wamid.fwd", "image", media(json!({"caption": "diteruskan"})));
    fwd["context"] = json!({"frequently_forwarded": true});
    let mut unsupported = msg("wamid.unsup", "unsupported", json!({"type": "poll"}));
    unsupported["errors"] = json!([{"code": 131051, "title": "Message type unknown", "message": "Message type unknown", "error_data": {"details": "Message type is currently not supported."}}]);
    let mut card = msg("wamid.card", "contacts", Value::Null);
    card["contacts"] = json!([{"name": {"formatted_name": "Dewi Lestari", "first_name": "Dewi"}, "phones": [{"phone": "+62 811 111", "wa_id": "62811111", "type": "CELL"}], "emails": [{"email": "dewi@example.id"}]}]);
    let mut sys = msg(
        "wamid.sys",
        "system",
        json!({"body": "User A changed from +62812 to +62813", "type": "user_changed_number", "wa_id": "628139"}),
    );
    sys.as_object_mut().unwrap().remove("from");
    let messages = Value::Array(vec![
        text,
        reply,
        fwd,
        msg(
            "wamid.video",
            "video",
            media(json!({"mime_type": "video/mp4", "caption": "unboxing"})),
        ),
        msg(
            "wamid.voice",
            "audio",
            media(json!({"mime_type": "audio/ogg; codecs=opus", "voice": true})),
        ),
        msg(
            "wamid.doc",
            "document",
            media(json!({"mime_type": "application/pdf", "filename": "invoice-42.pdf"})),
        ),
        msg(
            "wamid.sticker",
            "sticker",
            media(json!({"mime_type": "image/webp", "animated": true})),
        ),
        msg(
            "wamid.loc",
            "location",
            json!({"latitude": "-6.9175", "longitude": 107.6191, "name": "Gedung Sate", "address": "Bandung"}),
        ),
        card,
        msg(
            "wamid.btn",
            "interactive",
            json!({"type": "button_reply", "button_reply": {"id": "yes", "title": "Ya, pesan"}}),
        ),
        msg(
            "wamid.list",
            "interactive",
            json!({"type": "list_reply", "list_reply": {"id": "gayo", "title": "Kopi Gayo", "description": "250 g"}}),
        ),
        msg(
            "wamid.flow",
            "interactive",
            json!({"type": "nfm_reply", "nfm_reply": {"name": "address_message", "body": "Sent", "response_json": "{\"city\":\"Bandung\"}"}}),
        ),
        msg(
            "wamid.tbtn",
            "button",
            json!({"payload": "STOP_PROMO", "text": "Berhenti promo"}),
        ),
        msg(
            "wamid.react",
            "reaction",
            json!({"message_id": "wamid.out1", "emoji": "❤️"}),
        ),
        msg("wamid.unreact", "reaction", json!({"message_id": "wamid.out1"})),
        msg(
            "wamid.order",
            "order",
            json!({"catalog_id": "cat1", "text": "kirim besok", "product_items": [{"product_retailer_id": "sku-1", "quantity": 2, "item_price": 45000, "currency": "IDR"}]}),
        ),
        sys,
        unsupported,
        msg("wamid.future", "hologram", json!({"depth": 3})),
    ]);
    let contacts = json!([{"profile": {"name": "Siti Rahayu"}, "wa_id": "6281298765432"}]);
    deliver(&app, &envelope(vec![messages_change(contacts, messages)])).await;
    processed(&app).await;

    let rows = query(
        &app,
        "SELECT wamid, kind, body, detail, understood, coalesce(reply_to, ''), forwarded, coalesce(referral, '') FROM messages ORDER BY id",
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?, r.get::<_, bool>(4)?, r.get::<_, String>(5)?, r.get::<_, i64>(6)?, r.get::<_, String>(7)?)),
    )
    .await;
    assert_eq!(rows.len(), 19, "every message stored, none dropped");
    let get = |id: &str| {
        rows.iter()
            .find(|r| r.0 == id)
            .unwrap_or_else(|| panic!("{id} stored"))
            .clone()
    };
    let detail = |id: &str| serde_json::from_str::<Value>(&get(id).3).unwrap();
    assert_eq!(get("wamid.text").2, "Halo 👋 ada diskon?");
    assert!(
        get("wamid.text").7.contains("Promo Kopi") && get("wamid.text").7.contains("ARA"),
        "referral kept"
    );
    assert_eq!(get("wamid.reply").5, "wamid.original");
    assert_eq!(get("wamid.fwd").6, 2);
    assert_eq!(detail("wamid.fwd")["media_id"], "1479537139650973");
    assert_eq!(get("wamid.video").2, "unboxing");
    assert_eq!(detail("wamid.voice")["voice"], true);
    assert_eq!(get("wamid.doc").2, "invoice-42.pdf");
    assert_eq!(detail("wamid.sticker")["animated"], true);
    assert_eq!(detail("wamid.loc")["latitude"], -6.9175);
    assert_eq!(detail("wamid.loc")["longitude"], 107.6191);
    assert_eq!(get("wamid.card").2, "Dewi Lestari");
    assert_eq!(detail("wamid.card")["cards"][0]["phones"][0]["wa_id"], "62811111");
    assert_eq!(
        (get("wamid.btn").2, detail("wamid.btn")["id"].clone()),
        ("Ya, pesan".to_string(), json!("yes"))
    );
    assert_eq!(detail("wamid.list")["reply_type"], "list_reply");
    assert_eq!(detail("wamid.flow")["response_json"], "{\"city\":\"Bandung\"}");
    assert_eq!(detail("wamid.tbtn")["payload"], "STOP_PROMO");
    assert_eq!(detail("wamid.react")["emoji"], "❤️");
    assert_eq!(detail("wamid.unreact")["removed"], true);
    assert_eq!(detail("wamid.order")["items"][0]["quantity"], 2);
    assert_eq!(detail("wamid.sys")["system_type"], "user_changed_number");
    let unsup = get("wamid.unsup");
    assert!(!unsup.4, "shown as unsupported");
    assert_eq!(serde_json::from_str::<Value>(&unsup.3).unwrap()["error_code"], 131051);
    let future = get("wamid.future");
    assert_eq!(future.1, "hologram", "an unknown type is kept under its own name");
    assert!(!future.4);
    let contacts = query(&app, "SELECT wa_id, profile_name FROM contacts", |r| {
        Ok((r.get::<_, Option<String>>(0)?, r.get::<_, String>(1)?))
    })
    .await;
    assert_eq!(
        contacts,
        vec![(Some("6281298765432".to_string()), "Siti Rahayu".to_string())]
    );
}

#[tokio::test]
async fn batches_duplicates_and_bsuid_only_users() {
    let (app, _admin) = setup().await;
    // Two entries, several changes, several messages: every array is walked.
    let a = messages_change(
        json!([{"profile": {"name": "A"}, "wa_id": "62811"}]),
        json!([
            {"from": "62811", "id": "wamid.a1", "timestamp": "1764000001", "type": "text", "text": {"body": "satu"}},
            {"from": "62811", "id": "wamid.a2", "timestamp": "1764000002", "type": "text", "text": {"body": "dua"}}
        ]),
    );
    // A username user: no phone number, only the BSUID.
    let b = messages_change(
        json!([{"profile": {"name": "Rina", "username": "rina.kopi"}, "user_id": "ID.13491208655302741918"}]),
        json!([
            {"from_user_id": "ID.13491208655302741918", "id": "wamid.b1", "timestamp": "1764000003", "type": "text", "text": {"body": "halo"}}
        ]),
    );
    let body = json!({"object": "whatsapp_business_account", "entry": [
        {"id": WABA, "changes": [a]}, {"id": WABA, "changes": [b]}
    ]});
    deliver(&app, &body).await;
    deliver(&app, &body).await;
    processed(&app).await;
    let n = query(&app, "SELECT count(*) FROM messages", |r| r.get::<_, i64>(0)).await[0];
    assert_eq!(n, 3, "the same delivery twice changes nothing");
    let rina = query(
        &app,
        "SELECT coalesce(wa_id, '-'), bsuid, username FROM contacts WHERE bsuid IS NOT NULL",
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        },
    )
    .await;
    assert_eq!(
        rina,
        vec![(
            "-".to_string(),
            "ID.13491208655302741918".to_string(),
            Some("rina.kopi".to_string())
        )]
    );
    // Later she writes with her phone number shown: still one contact, now with both ids.
    let c = messages_change(
        json!([{"profile": {"name": "Rina"}, "wa_id": "62822", "user_id": "ID.13491208655302741918"}]),
        json!([
            {"from": "62822", "from_user_id": "ID.13491208655302741918", "id": "wamid.b2", "timestamp": "1764000009", "type": "text", "text": {"body": "ini nomorku"}}
        ]),
    );
    deliver(&app, &envelope(vec![c])).await;
    processed(&app).await;
    let contacts = query(&app, "SELECT count(*) FROM contacts", |r| r.get::<_, i64>(0)).await[0];
    assert_eq!(contacts, 2);
    let same = query(
        &app,
        "SELECT count(DISTINCT contact_id) FROM messages WHERE wamid IN ('wamid.b1', 'wamid.b2')",
        |r| r.get::<_, i64>(0),
    )
    .await[0];
    assert_eq!(same, 1);
    let wa = query(
        &app,
        "SELECT wa_id FROM contacts WHERE bsuid = 'ID.13491208655302741918'",
        |r| r.get::<_, Option<String>>(0),
    )
    .await;
    assert_eq!(wa, vec![Some("62822".to_string())]);
}

#[expect(clippy::too_many_lines, reason = "one scenario, told in order")]
#[tokio::test]
async fn statuses_never_go_backwards_and_feed_the_ledger() {
    let (app, _admin) = setup().await;
    // Two messages we sent (the outbox will write these rows).
    app.state
        .db
        .write(|c| {
            for w in ["wamid.out1", "wamid.out2"] {
                c.execute(
                    "INSERT INTO messages (phone_number_id, direction, wamid, kind, body, sent_at, created_at, status)
                     VALUES ('106540352242922', 'out', ?1, 'template', 'Promo', 1764000000, 1764000000, 'sent')",
                    [w],
                )?;
            }
            Ok(())
        })
        .await
        .unwrap();
    let st = |id: &str, status: &str, ts: i64, extra: Value| {
        let mut s = json!({"id": id, "status": status, "timestamp": ts.to_string(), "recipient_id": "6281298765432"});
        s.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        s
    };
    let pricing =
        json!({"pricing": {"billable": true, "pricing_model": "PMP", "type": "regular", "category": "marketing"}});
    // read arrives before delivered; delivered must not pull it back.
    deliver(
        &app,
        &envelope(vec![statuses_change(json!([st(
            "wamid.out1",
            "read",
            1764000030,
            pricing.clone()
        )]))]),
    )
    .await;
    deliver(
        &app,
        &envelope(vec![statuses_change(json!([st(
            "wamid.out1",
            "delivered",
            1764000020,
            json!({})
        )]))]),
    )
    .await;
    // failed after sent, with the reason.
    let failed = json!({"errors": [{"code": 131026, "title": "Message undeliverable", "message": "Message undeliverable", "error_data": {"details": "Recipient is not a WhatsApp user"}}]});
    deliver(
        &app,
        &envelope(vec![statuses_change(json!([st(
            "wamid.out2",
            "failed",
            1764000040,
            failed
        )]))]),
    )
    .await;
    // The same status again changes nothing.
    deliver(
        &app,
        &envelope(vec![statuses_change(json!([st(
            "wamid.out1",
            "read",
            1764000030,
            pricing.clone()
        )]))]),
    )
    .await;
    processed(&app).await;
    let rows = query(&app, "SELECT wamid, status, coalesce(error_code, 0), coalesce(error_title, ''), coalesce(error_details, '') FROM messages ORDER BY wamid", |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, String>(3)?, r.get::<_, String>(4)?))
    })
    .await;
    assert_eq!(
        rows[0].1, "read",
        "read implies delivered; a late delivered does not downgrade"
    );
    assert_eq!(
        rows[1],
        (
            "wamid.out2".into(),
            "failed".into(),
            131026,
            "Message undeliverable".into(),
            "Recipient is not a WhatsApp user".into()
        )
    );
    let history = query(
        &app,
        "SELECT status FROM message_statuses WHERE wamid = 'wamid.out1' ORDER BY at",
        |r| r.get::<_, String>(0),
    )
    .await;
    assert_eq!(history, vec!["delivered", "read"], "history keeps every status once");
    let ledger = query(
        &app,
        "SELECT wamid, category, pricing_type, billable, model FROM usage_ledger",
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, bool>(3)?,
                r.get::<_, String>(4)?,
            ))
        },
    )
    .await;
    assert_eq!(
        ledger,
        vec![(
            "wamid.out1".into(),
            "marketing".into(),
            "regular".into(),
            true,
            "PMP".into()
        )]
    );
}

#[tokio::test]
async fn broken_deliveries_are_quarantined_visible_and_retried() {
    let (app, admin) = setup().await;
    // Signed, so accepted (200), but not something we can process.
    deliver(&app, &json!({"object": "page", "entry": []})).await;
    processed(&app).await;
    let q = query(&app, "SELECT id, state, attempts, last_error FROM webhook_inbox", |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, String>(3)?,
        ))
    })
    .await;
    assert_eq!(q.len(), 1, "kept, never lost");
    assert_eq!((q[0].1.as_str(), q[0].2), ("quarantined", 1));
    assert!(q[0].3.contains("not a WhatsApp delivery"));
    let page = admin.get("/admin/whatsapp").await;
    assert!(page.body.contains("could not be processed") && page.body.contains("not a WhatsApp delivery"));
    let r = admin
        .post(&format!("/admin/whatsapp/deliveries/{}/retry", q[0].0), &[])
        .await;
    assert_eq!(r.status, 303);
    for _ in 0..100 {
        let attempts = query(&app, "SELECT attempts FROM webhook_inbox", |r| r.get::<_, i64>(0)).await[0];
        if attempts == 2 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the retried delivery was processed again");
}

#[tokio::test]
async fn deliveries_acknowledged_before_a_crash_are_processed_after_the_restart() {
    let (app, _admin) = setup().await;
    let cfg = app.config.clone();
    let guard = app.stop().await;
    // As if the process died right after answering 200: the row is there, unprocessed.
    let body = envelope(vec![messages_change(
        json!([{"profile": {"name": "B"}, "wa_id": "62833"}]),
        json!([
            {"from": "62833", "id": "wamid.after", "timestamp": "1764000000", "type": "text", "text": {"body": "masih ada?"}}
        ]),
    )]);
    let conn = crate::common::open_stopped_db(&cfg);
    whacaster::whatsapp::deliveries::append(&conn, 0, &serde_json::to_vec(&body).unwrap()).unwrap();
    drop(conn);
    let app = TestApp::start_with(guard, cfg).await;
    processed(&app).await;
    let n = query(&app, "SELECT count(*) FROM messages WHERE wamid = 'wamid.after'", |r| {
        r.get::<_, i64>(0)
    })
    .await[0];
    assert_eq!(n, 1);
}

#[tokio::test]
async fn template_quality_and_account_news_reach_the_number_page() {
    let (app, admin) = setup().await;
    let body = envelope(vec![
        json!({"field": "message_template_status_update", "value": {"event": "REJECTED", "message_template_id": 1234567890, "message_template_name": "promo_akhir_tahun", "message_template_language": "id", "reason": "INCORRECT_CATEGORY"}}),
        json!({"field": "phone_number_quality_update", "value": {"display_phone_number": "6281234567890", "event": "THROUGHPUT_UPGRADE", "max_daily_conversations_per_business": "TIER_10K"}}),
        json!({"field": "account_update", "value": {"event": "ACCOUNT_RESTRICTION", "restriction_info": [{"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING", "expiration": "1764500000"}]}}),
    ]);
    deliver(&app, &body).await;
    processed(&app).await;
    let page = admin.get("/admin/whatsapp/1").await;
    for needle in [
        "REJECTED",
        "promo_akhir_tahun",
        "INCORRECT_CATEGORY",
        "THROUGHPUT_UPGRADE",
        "TIER_10K",
        "ACCOUNT_RESTRICTION",
        "RESTRICTED_BIZ_INITIATED_MESSAGING",
    ] {
        assert!(page.body.contains(needle), "{needle} on the number page");
    }
}

#[tokio::test]
async fn one_bad_delivery_in_a_batch_is_quarantined_and_undone_while_the_others_land() {
    let (app, admin) = setup().await;
    // A delivery that parses but fails while it is applied (after its contact was
    // written): the test makes the database refuse that one message.
    let good = |n: u32| {
        envelope(vec![messages_change(
            json!([{"profile": {"name": format!("Pelanggan {n}")}, "wa_id": format!("6281100{n}")}]),
            json!([{"from": format!("6281100{n}"), "id": format!("wamid.batch{n}"), "timestamp": "1764000000", "type": "text", "text": {"body": format!("pesan {n}")}}]),
        )])
    };
    let boom = envelope(vec![messages_change(
        json!([{"profile": {"name": "Meledak"}, "wa_id": "6281999"}]),
        json!([{"from": "6281999", "id": "wamid.boom", "timestamp": "1764000000", "type": "text", "text": {"body": "boom"}}]),
    )]);
    let json = |v: &Value| serde_json::to_vec(v).unwrap();
    let bodies = vec![json(&good(1)), json(&boom), b"{not json".to_vec(), json(&good(2))];
    let now = app.clock.unix();
    app.state
        .db
        .write(move |c| {
            c.execute_batch(
                "CREATE TEMP TRIGGER refuse_boom BEFORE INSERT ON messages WHEN NEW.body = 'boom'
                 BEGIN SELECT RAISE(ABORT, 'the database refused this message'); END;",
            )?;
            for b in &bodies {
                whacaster::whatsapp::deliveries::append(c, now, b)?;
            }
            Ok(())
        })
        .await
        .unwrap();
    // One round takes all four: one transaction, a savepoint each.
    let round = app.state.intake().run_once().await.unwrap();
    assert_eq!((round.processed, round.quarantined), (2, 2), "{round:?}");
    let stored = query(
        &app,
        "SELECT wamid FROM messages WHERE direction = 'in' ORDER BY id",
        |r| r.get::<_, String>(0),
    )
    .await;
    assert_eq!(stored, vec!["wamid.batch1".to_string(), "wamid.batch2".to_string()]);
    let contacts = query(&app, "SELECT wa_id FROM contacts ORDER BY id", |r| {
        r.get::<_, String>(0)
    })
    .await;
    assert_eq!(
        contacts,
        vec!["62811001".to_string(), "62811002".to_string()],
        "the failed delivery's contact was undone with it"
    );
    let q = query(
        &app,
        "SELECT state, coalesce(last_error, '') FROM webhook_inbox ORDER BY id",
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
    )
    .await;
    assert_eq!(q[0].0, "done");
    assert_eq!(q[1].0, "quarantined");
    assert!(q[1].1.contains("the database refused this message"), "{}", q[1].1);
    assert_eq!(q[2].0, "quarantined");
    assert!(q[2].1.contains("not JSON"), "{}", q[2].1);
    assert_eq!(q[3].0, "done");
    // Operators see the queues: on /metrics and on the System page.
    let metrics = admin.get("/metrics").await.body;
    assert!(metrics.contains("whacaster_webhook_quarantined 2"), "{metrics}");
    assert!(metrics.contains("whacaster_webhook_backlog 0"), "{metrics}");
    assert!(
        metrics.contains(r#"whacaster_outbox_rows{state="queued"} 0"#),
        "{metrics}"
    );
    let system = admin.get("/admin/system").await.body;
    assert!(
        system.contains(r#"data-gauge="webhook_quarantined"><a href="/admin/whatsapp">2</a>"#),
        "{system}"
    );
}

/// Posts `body` signed with `secret`; returns the status.
async fn post_signed(app: &TestApp, secret: &str, body: &Value) -> u16 {
    let bytes = serde_json::to_vec(body).unwrap();
    crate::common::post_webhook(
        app,
        &bytes,
        Some(&crate::common::sign(secret, &bytes)),
        "application/json",
    )
    .await
    .0
}

fn text_to(phone_id: &str, from: &str, wamid: &str) -> Value {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "999", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "62812", "phone_number_id": phone_id},
        "contacts": [{"profile": {"name": "X"}, "wa_id": from}],
        "messages": [{"from": from, "id": wamid, "timestamp": "1764000000", "type": "text", "text": {"body": "halo"}}]}}]}]})
}

#[tokio::test]
async fn a_delivery_speaks_only_for_its_own_number() {
    // A second number on another Meta app, with its own app secret.
    const OTHER_ID: &str = "106540352242999";
    const OTHER_SECRET: &str = "fedcba9876543210fedcba9876543210";
    const LATER_ID: &str = "106540352242777";
    let (app, admin) = setup().await;
    let r = crate::common::connect_number(&admin, OTHER_ID, OTHER_SECRET, "token-2", "80").await;
    assert_eq!(r.status, 303);
    // One app's secret cannot speak for the other app's number.
    assert_eq!(
        post_signed(&app, OTHER_SECRET, &text_to(PHONE_ID, "62811", "wamid.forged")).await,
        401
    );
    assert_eq!(
        post_signed(&app, SECRET, &text_to(OTHER_ID, "62811", "wamid.forged2")).await,
        401
    );
    assert_eq!(
        post_signed(&app, OTHER_SECRET, &text_to(OTHER_ID, "62811", "wamid.own")).await,
        200
    );
    // A delivery for a number not connected here is kept, never a conversation...
    assert_eq!(
        post_signed(&app, SECRET, &text_to(LATER_ID, "62822", "wamid.early")).await,
        200
    );
    processed(&app).await;
    let waiting = query(
        &app,
        "SELECT state, coalesce(waiting_for, ''), coalesce(last_error, '') FROM webhook_inbox ORDER BY id DESC LIMIT 1",
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)),
    )
    .await;
    assert_eq!(
        (waiting[0].0.as_str(), waiting[0].1.as_str()),
        ("quarantined", LATER_ID)
    );
    assert!(waiting[0].2.contains("not connected"), "{}", waiting[0].2);
    let conversations = query(&app, "SELECT phone_number_id FROM conversations ORDER BY id", |r| {
        r.get::<_, String>(0)
    })
    .await;
    assert_eq!(
        conversations,
        vec![OTHER_ID.to_string()],
        "only the number's own delivery made one"
    );
    let page = admin.get("/admin/whatsapp").await;
    assert!(page.body.contains(LATER_ID), "shown as waiting for its number");
    // ...and processed once that number is connected.
    let r = crate::common::connect_number(&admin, LATER_ID, SECRET, "token-3", "80").await;
    assert_eq!(r.status, 303);
    for _ in 0..100 {
        let n = query(&app, "SELECT count(*) FROM messages WHERE wamid = 'wamid.early'", |r| {
            r.get::<_, i64>(0)
        })
        .await[0];
        if n == 1 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }
    panic!("the waiting delivery was not processed when its number was connected");
}

#[tokio::test]
async fn malformed_deliveries_are_quarantined_with_the_reason_and_not_retried_by_themselves() {
    let (app, _admin) = setup().await;
    let meta = json!({"display_phone_number": "62812", "phone_number_id": PHONE_ID});
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"object": "whatsapp_business_account", "entry": "oops"}),
            "`entry` is not a list",
        ),
        (
            json!({"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": [{"field": "messages", "value": {"metadata": meta, "messages": 5}}]}]}),
            "`messages` is not a list",
        ),
        (
            envelope(vec![messages_change(
                json!([]),
                json!([{"from": "62811", "timestamp": "1764000000", "type": "text", "text": {"body": "tanpa id"}}]),
            )]),
            "without an id",
        ),
        (
            envelope(vec![messages_change(
                json!([]),
                json!([{"id": "wamid.nobody", "timestamp": "1764000000", "type": "text", "text": {"body": "siapa?"}}]),
            )]),
            "has no sender",
        ),
        (
            envelope(vec![messages_change(
                json!([]),
                json!([{"from": "628123456789012345678", "id": "wamid.long", "timestamp": "1764000000", "type": "text", "text": {"body": "x"}}]),
            )]),
            "not a phone number",
        ),
        (
            json!({"object": "whatsapp_business_account", "entry": []}),
            "no usable event",
        ),
    ];
    for (body, _) in &cases {
        deliver(&app, body).await;
    }
    processed(&app).await;
    let q = query(
        &app,
        "SELECT state, coalesce(last_error, ''), coalesce(next_attempt_at, 0) FROM webhook_inbox ORDER BY id",
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)),
    )
    .await;
    assert_eq!(q.len(), cases.len(), "every one kept");
    for ((state, error, next), (_, reason)) in q.iter().zip(&cases) {
        assert_eq!(state, "quarantined", "{reason}");
        assert!(error.contains(reason), "{error:?} should say {reason:?}");
        assert_eq!(
            *next,
            i64::MAX,
            "the same bytes fail the same way: only a person retries ({reason})"
        );
    }
    let stored = query(&app, "SELECT count(*) FROM messages", |r| r.get::<_, i64>(0)).await[0];
    assert_eq!(stored, 0, "nothing half-stored");
}

#[tokio::test]
async fn a_senders_clock_cannot_pin_a_conversation_or_overflow_the_window() {
    let (app, admin) = setup().await;
    let mut m = msg("wamid.future", "text", json!({"body": "dari masa depan"}));
    m["timestamp"] = json!("1e400");
    deliver(
        &app,
        &envelope(vec![messages_change(
            json!([{"profile": {"name": "Waktu"}, "wa_id": "6281298765432"}]),
            json!([m]),
        )]),
    )
    .await;
    processed(&app).await;
    let now = app.clock.unix();
    let (at, inbound_at) = query(
        &app,
        "SELECT last_message_at, last_inbound_at FROM conversations",
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
    )
    .await[0];
    assert!(
        at <= now + 300 && at >= now - 300,
        "kept near the receipt: {at} vs {now}"
    );
    assert_eq!(at, inbound_at);
    // The conversation page renders (the window countdown did not overflow).
    let page = admin.get("/inbox/1").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("dari masa depan"));
}
