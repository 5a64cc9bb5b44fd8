//! The WhatsApp edge so far: connecting numbers (secrets write-only), Meta's webhook
//! verification handshake, signed deliveries stored durably before the 200, refused
//! deliveries storing nothing but a rate-limited security event.

use crate::common::{Browser, TestApp, post_webhook as post, sign};

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const TOKEN: &str = "EAAG-secret-access-token-never-shown";

async fn connect(admin: &Browser, phone_id: &str, secret: &str) -> String {
    let r = crate::common::connect_number(admin, phone_id, secret, TOKEN, "80").await;
    assert_eq!(r.status, 303, "{}", r.body);
    let page = admin.get(r.location().unwrap().split('?').next().unwrap()).await;
    assert!(
        !page.body.contains(TOKEN) && !page.body.contains(secret),
        "secrets are never shown back"
    );
    let i = page.body.find("id=\"verify-token\">").unwrap() + "id=\"verify-token\">".len();
    page.body[i..].split('<').next().unwrap().to_string()
}

async fn inbox(app: &TestApp) -> Vec<Vec<u8>> {
    app.state
        .db
        .read(|c| {
            let mut st = c.prepare("SELECT body FROM webhook_inbox ORDER BY id")?;
            let rows = st.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn numbers_are_connected_with_write_only_secrets() {
    let app = TestApp::start().await;
    let (admin, _) = app.admin("owner@toko.id").await;
    let page = admin.get("/admin/whatsapp").await;
    assert!(
        page.body.contains(&format!("{}/webhooks/whatsapp", app.base)),
        "the callback URL to paste into Meta's dashboard"
    );
    assert!(
        page.body.contains("Meta does not deliver webhooks"),
        "the certificate warning on a self-signed server"
    );
    let bad = admin
        .submit(
            "/admin/whatsapp",
            "/admin/whatsapp",
            &[
                ("display_name", "X"),
                ("phone_number_id", "12ab"),
                ("mps", "0"),
                ("access_token", TOKEN),
            ],
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("digits only") && bad.body.contains("1 to 1000"));
    assert!(!bad.body.contains(TOKEN), "a re-shown form does not echo the token");
    let verify = connect(&admin, "106540352242922", SECRET).await;
    assert!(verify.len() >= 24);
    // Editing without secrets keeps them; the audit log records changes, not secrets.
    let r = admin
        .submit(
            "/admin/whatsapp/1",
            "/admin/whatsapp/1",
            &[
                ("display_name", "CS Bandung"),
                ("phone_number_id", "106540352242922"),
                ("waba_id", "102290129340398"),
                ("business_manager_id", "506914307656634"),
                ("mps", "40"),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    let stored: (String, String, i64) = app
        .state
        .db
        .read(|c| {
            Ok(c.query_row(
                "SELECT access_token, app_secret, mps FROM wa_numbers WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(stored, (TOKEN.to_string(), SECRET.to_string(), 40));
    let audit = admin.get("/admin/audit.csv").await.body;
    assert!(audit.contains("whatsapp.number_add") && audit.contains("whatsapp.number_update"));
    assert!(!audit.contains(TOKEN) && !audit.contains(SECRET));
    let dup = admin
        .submit(
            "/admin/whatsapp",
            "/admin/whatsapp",
            &[
                ("display_name", "Again"),
                ("phone_number_id", "106540352242922"),
                ("waba_id", "1022901293"),
                ("business_manager_id", "5069143076"),
                ("access_token", "t"),
                ("app_secret", "s"),
                ("mps", "80"),
            ],
        )
        .await;
    assert_eq!(dup.status, 422);
    assert!(dup.body.contains("already connected"));
    let r = admin.submit("/admin/whatsapp/1", "/admin/whatsapp/1/delete", &[]).await;
    assert_eq!(r.status, 303);
    assert!(admin.get("/admin/whatsapp/1").await.status == 404);
}

#[tokio::test]
async fn verification_handshake_answers_only_a_known_token() {
    let app = TestApp::start().await;
    let (admin, _) = app.admin("owner@toko.id").await;
    let verify = connect(&admin, "106540352242922", SECRET).await;
    let b = app.browser();
    let ok = b
        .get(&format!(
            "/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token={verify}&hub.challenge=1158201444"
        ))
        .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body, "1158201444");
    assert!(ok.header("content-type").unwrap().starts_with("text/plain"));
    let wrong = b
        .get("/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1")
        .await;
    assert_eq!(wrong.status, 403);
    let mode = b
        .get(&format!(
            "/webhooks/whatsapp?hub.mode=unsubscribe&hub.verify_token={verify}&hub.challenge=1"
        ))
        .await;
    assert_eq!(mode.status, 403);
}

#[tokio::test]
async fn signed_deliveries_are_stored_byte_for_byte_before_the_200() {
    let app = TestApp::start().await;
    let (admin, _) = app.admin("owner@toko.id").await;
    connect(&admin, "106540352242922", SECRET).await;
    // A second number on another Meta app: its deliveries carry the other secret.
    connect(&admin, "106540352242999", "another-app-secret").await;
    // Non-ASCII and emoji, with Meta's escaping: the signature is over these exact bytes.
    let body = r#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"6281234567890","phone_number_id":"106540352242922"},"contacts":[{"profile":{"name":"Siti Rahayu 🌸"},"wa_id":"6281298765432"}],"messages":[{"from":"6281298765432","id":"wamid.HBgNNjI4MTI5ODc2NTQzMhUCABIYFjNFQjA=","timestamp":"1764000000","type":"text","text":{"body":"Halo kak, apakah stok kopi Gayo masih ada? \u2615 Terima kasih 🙏"}}]}}]}]}"#;
    let (s, _) = post(
        &app,
        body.as_bytes(),
        Some(&sign(SECRET, body.as_bytes())),
        "application/json",
    )
    .await;
    assert_eq!(s, 200);
    let other = br#"{"object":"whatsapp_business_account","entry":[]}"#;
    let (s, _) = post(
        &app,
        other,
        Some(&sign("another-app-secret", other)),
        "application/json",
    )
    .await;
    assert_eq!(s, 200, "every configured app secret is accepted");
    // The same delivery twice is stored twice here; the processor dedupes by Meta's ids.
    let (s, _) = post(
        &app,
        body.as_bytes(),
        Some(&sign(SECRET, body.as_bytes())),
        "application/json",
    )
    .await;
    assert_eq!(s, 200);
    let stored = inbox(&app).await;
    assert_eq!(stored.len(), 3);
    assert_eq!(stored[0], body.as_bytes(), "byte for byte");
    // Re-serialised JSON would not verify: the raw bytes matter.
    let reserialised = serde_json::to_vec(&serde_json::from_str::<serde_json::Value>(body).unwrap()).unwrap();
    assert_ne!(reserialised, body.as_bytes());
    let (s, _) = post(
        &app,
        &reserialised,
        Some(&sign(SECRET, body.as_bytes())),
        "application/json",
    )
    .await;
    assert_eq!(s, 401);
    // The numbers page counts them.
    assert!(admin.get("/admin/whatsapp").await.body.contains("3 signed deliveries"));
}

#[tokio::test]
async fn unsigned_or_wrongly_signed_deliveries_store_nothing() {
    let app = TestApp::start().await;
    let (admin, _) = app.admin("owner@toko.id").await;
    connect(&admin, "106540352242922", SECRET).await;
    let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
    assert_eq!(post(&app, body, None, "application/json").await.0, 401);
    assert_eq!(
        post(&app, body, Some(&sign("wrong", body)), "application/json").await.0,
        401
    );
    assert_eq!(
        post(&app, body, Some("sha256=zz-not-hex"), "application/json").await.0,
        401
    );
    for _ in 0..20 {
        post(&app, body, Some(&sign("wrong", body)), "application/json").await;
    }
    assert!(inbox(&app).await.is_empty(), "nothing stored");
    let events: Vec<String> = app
        .state
        .db
        .read(|c| {
            let mut st = c.prepare("SELECT kind FROM security_events ORDER BY id")?;
            let rows = st.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
        .unwrap();
    assert_eq!(
        events,
        vec!["webhook_no_signature", "webhook_bad_signature"],
        "one event per kind and address per minute"
    );
    let page = admin.get("/admin/whatsapp").await;
    assert!(page.body.contains("Wrong signature") && page.body.contains("No signature"));
    let metrics = admin.get("/metrics").await.body;
    assert!(
        metrics.contains("whacaster_webhook_refused_total 23"),
        "every refusal is counted"
    );
    // Not JSON: refused before anything else.
    assert_eq!(post(&app, body, Some(&sign(SECRET, body)), "text/plain").await.0, 415);
}

#[tokio::test]
async fn large_deliveries_up_to_the_limit() {
    let app = TestApp::start().await;
    let (admin, _) = app.admin("owner@toko.id").await;
    connect(&admin, "106540352242922", SECRET).await;
    let wrap = |n: usize| {
        format!(
            "{{\"object\":\"whatsapp_business_account\",\"pad\":\"{}\"}}",
            "x".repeat(n)
        )
        .into_bytes()
    };
    let big = wrap(3_500_000);
    assert_eq!(
        post(&app, &big, Some(&sign(SECRET, &big)), "application/json").await.0,
        200,
        "3.5 MB accepted"
    );
    let huge = wrap(5_000_000);
    assert_eq!(
        post(&app, &huge, Some(&sign(SECRET, &huge)), "application/json")
            .await
            .0,
        413,
        "5 MB refused"
    );
    assert_eq!(inbox(&app).await.len(), 1);
}

#[tokio::test]
async fn test_connection_and_subscribe_through_the_graph_api() {
    let graph = crate::fake_graph::FakeGraph::start();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = crate::common::test_config(dir.path());
    cfg.graph.base_url = graph.base.clone();
    cfg.graph.api_version = "v25.0".into();
    let app = TestApp::start_with(dir, cfg).await;
    let (admin, _) = app.admin("owner@toko.id").await;
    connect(&admin, "106540352242922", SECRET).await;

    let r = admin.submit("/admin/whatsapp/1", "/admin/whatsapp/1/test", &[]).await;
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("Toko Maju Jaya") && r.body.contains("GREEN") && r.body.contains("STANDARD"),
        "{}",
        r.body
    );
    let seen = graph.seen();
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].path, "/v25.0/106540352242922");
    assert_eq!(
        seen[0].authorization,
        format!("Bearer {TOKEN}"),
        "the stored token is used"
    );

    let r = admin
        .submit("/admin/whatsapp/1", "/admin/whatsapp/1/subscribe", &[])
        .await;
    assert!(r.body.contains("Subscribed"), "{}", r.body);
    assert_eq!(
        graph.seen().last().unwrap().path,
        "/v25.0/102290129340398/subscribed_apps"
    );

    // An expired token: the page says what to do, with Meta's code.
    graph.fail(
        "/v25.0/106540352242922",
        401,
        crate::fake_graph::meta_error(190, "Access token has expired", "Session has expired"),
    );
    let r = admin.submit("/admin/whatsapp/1", "/admin/whatsapp/1/test", &[]).await;
    assert!(
        r.body.contains("#190")
            && r.body.contains("create a new permanent token")
            && r.body.contains("WhatsApp refused the access token: it has expired"),
        "{}",
        r.body
    );
    assert!(!r.body.contains(TOKEN), "the token never reaches a page");
    // Meta overloaded: try again later.
    graph.clear_faults();
    graph.fail(
        "subscribed_apps",
        503,
        crate::fake_graph::meta_error(2, "Service temporarily unavailable", ""),
    );
    let r = admin
        .submit("/admin/whatsapp/1", "/admin/whatsapp/1/subscribe", &[])
        .await;
    assert!(
        r.body.contains("#2") && r.body.contains("Try again in a minute"),
        "{}",
        r.body
    );
    let audit = admin.get("/admin/audit.csv?action=whatsapp.subscribe").await.body;
    assert!(
        audit.contains(",subscribed,") && audit.contains("failed: Meta error 2"),
        "{audit}"
    );
}

#[tokio::test]
async fn templates_are_synced_read_only_and_follow_status_webhooks() {
    let graph = crate::fake_graph::FakeGraph::start();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = crate::common::test_config(dir.path());
    cfg.graph.base_url = graph.base.clone();
    let app = TestApp::start_with(dir, cfg).await;
    let (admin, _) = app.admin("owner@toko.id").await;
    connect(&admin, "106540352242922", SECRET).await;
    let r = admin
        .submit("/admin/whatsapp/1", "/admin/whatsapp/1/templates/sync", &[])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let page = admin.get("/admin/whatsapp/1").await;
    assert!(
        page.body.contains("order_shipped") && page.body.contains("promo_akhir_tahun"),
        "both pages read"
    );
    let rows: Vec<(String, String, String, i64)> = app
        .state
        .db
        .read(|c| {
            let mut st =
                c.prepare("SELECT name, language, status, param_count FROM wa_templates ORDER BY name, language")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1], ("order_shipped".into(), "id".into(), "APPROVED".into(), 2));
    // Meta rejects the pending one: the webhook updates it without a sync.
    let body = serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [
        {"field": "message_template_status_update", "value": {"event": "REJECTED", "message_template_id": 3,
         "message_template_name": "promo_akhir_tahun", "message_template_language": "id", "reason": "PROMOTIONAL"}}]}]});
    let bytes = serde_json::to_vec(&body).unwrap();
    let (s, _) = post(&app, &bytes, Some(&sign(SECRET, &bytes)), "application/json").await;
    assert_eq!(s, 200);
    let mut status = String::new();
    for _ in 0..100 {
        status = app
            .state
            .db
            .read(|c| {
                Ok(c.query_row(
                    "SELECT status FROM wa_templates WHERE name = 'promo_akhir_tahun'",
                    [],
                    |r| r.get(0),
                )?)
            })
            .await
            .unwrap();
        if status == "REJECTED" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, "REJECTED");
    // The scheduled job does the same sync (run now from the jobs page).
    app.state
        .db
        .write(|c| {
            Ok(c.execute("DELETE FROM wa_templates WHERE language = 'en'", [])
                .map(|_| ())?)
        })
        .await
        .unwrap();
    let jobs = admin.get("/admin/jobs").await;
    assert!(jobs.body.contains("sync_message_templates"));
    assert_eq!(
        admin.post("/admin/jobs/sync_message_templates/run", &[]).await.status,
        303
    );
    let mut resynced = 0;
    for _ in 0..100 {
        resynced = app
            .state
            .db
            .read(|c| Ok(c.query_row("SELECT count(*) FROM wa_templates", [], |r| r.get::<_, i64>(0))?))
            .await
            .unwrap();
        if resynced == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(resynced, 3, "the job brought the deleted template back");
    // Meta unreachable: a clear answer on the page, nothing lost.
    graph.fail(
        "message_templates",
        500,
        crate::fake_graph::meta_error(131000, "Something went wrong", ""),
    );
    let r = admin
        .submit("/admin/whatsapp/1", "/admin/whatsapp/1/templates/sync", &[])
        .await;
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("131000") && r.body.contains("order_shipped"),
        "old list still shown"
    );
}
