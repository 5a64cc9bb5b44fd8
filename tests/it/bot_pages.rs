//! The bot's pages through the real server: each part saved through its form and read
//! back, a bad form refused with the validator's named problem and nothing saved,
//! export then import, the test chat (keyword, a flow by button id, nothing sent to
//! Meta), the activity page with a real decision, "give back to bot", and roles.

use crate::common::{PASSWORD, app_with_number, inbound_text};
use crate::fake_graph::FakeGraph;

const SECRET: &str = "bot-pages-secret";
const PHONE_ID: &str = "106540352242922";

async fn stored(app: &crate::common::TestApp) -> serde_json::Value {
    let json: String = app
        .state
        .db
        .read(|c| Ok(c.query_row("SELECT document FROM bots WHERE number_id = 1", [], |r| r.get(0))?))
        .await
        .expect("bot saved");
    serde_json::from_str(&json).expect("json")
}

async fn version(app: &crate::common::TestApp) -> i64 {
    app.state
        .db
        .read(|c| {
            Ok(c.query_row(
                "SELECT coalesce(max(version), 0) FROM bots WHERE number_id = 1",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .expect("read")
}

fn messages_sent(graph: &FakeGraph) -> usize {
    graph.seen().iter().filter(|s| s.path.ends_with("/messages")).count()
}

/// A small bot through the forms: a rule, a flow with a menu and a question, the
/// fallback, and switched on.
async fn build_bot(admin: &crate::common::Browser) {
    let r = admin
        .submit(
            "/bot/1/flows/new",
            "/bot/1/flows/new",
            &[
                ("id", "order"),
                ("name", "Pesan"),
                ("enabled", "1"),
                ("steps", "3"),
                ("s0.id", "pick"),
                ("s0.type", "menu"),
                ("s0.r.text", "Pilih kopi"),
                ("s0.r.c0.id", "gayo"),
                ("s0.r.c0.title", "Gayo"),
                ("s0.r.c0.next", "qty"),
                ("s0.r.c1.id", "toraja"),
                ("s0.r.c1.title", "Toraja"),
                ("s0.r.c1.next", "qty"),
                ("s1.id", "qty"),
                ("s1.type", "ask"),
                ("s1.text", "Berapa kg?"),
                ("s1.store", "qty"),
                ("s1.validate", "number"),
                ("s1.retries", "3"),
                ("s1.next", "end"),
                ("s2.id", ""),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "flow saved: {}", r.body);
    let r = admin
        .submit(
            "/bot/1/rules/new",
            "/bot/1/rules/new",
            &[
                ("id", "harga"),
                ("name", "Harga"),
                ("enabled", "1"),
                ("match", "contains"),
                ("patterns", "harga\nprice"),
                ("priority", "5"),
                ("then_do", "reply"),
                ("then.text", "Harga mulai Rp25.000"),
                ("then.c0.id", "go_order"),
                ("then.c0.title", "Pesan sekarang"),
                ("then.c0.next", "flow:order"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "rule saved: {}", r.body);
    let r = admin
        .submit("/bot/1", "/bot/1/part/fallback", &[("fallback_do", "handoff")])
        .await;
    assert_eq!(r.status, 303, "fallback saved: {}", r.body);
    let r = admin.submit("/bot/1", "/bot/1/part/enabled", &[("enabled", "1")]).await;
    assert_eq!(r.status, 303);
}

#[tokio::test]
#[expect(clippy::too_many_lines, reason = "one walk through every part of the page")]
async fn every_part_saves_through_its_form_and_a_bad_form_saves_nothing() {
    let graph = FakeGraph::start();
    let (app, admin) = app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    build_bot(&admin).await;
    let r = admin
        .submit(
            "/bot/1",
            "/bot/1/part/welcome",
            &[
                ("welcome_enabled", "1"),
                ("welcome.text", "Halo! Selamat datang."),
                ("welcome.c0.id", "w_cs"),
                ("welcome.c0.title", "Bicara dengan CS"),
                ("welcome.c0.next", "handoff"),
                ("after_silence_days", "30"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = admin
        .submit(
            "/bot/1",
            "/bot/1/part/hours",
            &[
                ("hours_enabled", "1"),
                ("timezone", "Asia/Jakarta"),
                ("day_mon", "09:00-12:00\n13:00-17:00"),
                ("day_fri", "22:00-02:00"),
                ("holidays", "2026-12-25"),
                ("special", "2026-12-24 09:00-12:00"),
                ("away_text", "Kami tutup"),
                ("quiet_minutes", "10"),
                ("bot_while_closed", "1"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = admin
        .submit(
            "/bot/1",
            "/bot/1/part/handoff",
            &[("assign", "unassigned"), ("handoff_text", "Sebentar ya")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = admin
        .submit(
            "/bot/1",
            "/bot/1/part/guards",
            &[
                ("flow_timeout_minutes", "15"),
                ("max_per_minute", "4"),
                ("back_words", "0, kembali"),
                ("cancel_words", "batal"),
                ("cancel_text", "Oke, dibatalkan"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let doc = stored(&app).await;
    assert_eq!(doc["enabled"], true);
    assert_eq!(doc["welcome"]["after_silence_days"], 30);
    assert_eq!(doc["welcome"]["reply"]["choices"][0]["title"], "Bicara dengan CS");
    assert_eq!(doc["rules"][0]["patterns"][1], "price");
    assert_eq!(doc["rules"][0]["priority"], 5);
    assert_eq!(doc["flows"][0]["steps"][1]["validate"], "number");
    assert_eq!(doc["fallback"]["do"], "handoff");
    assert_eq!(doc["hours"]["weekly"]["mon"][1], "13:00-17:00");
    assert_eq!(doc["hours"]["special"]["2026-12-24"][0], "09:00-12:00");
    assert_eq!(doc["hours"]["quiet_after_agent_minutes"], 10);
    assert_eq!(doc["handoff"]["assign"], "unassigned");
    assert_eq!(doc["guards"]["max_per_minute"], 4);
    assert_eq!(doc["guards"]["back_words"][1], "kembali");
    // The pages show what was saved.
    let page = admin.get("/bot/1").await;
    assert_eq!(page.status, 200);
    for text in [
        "Halo! Selamat datang.",
        "Kami tutup",
        "Sebentar ya",
        "22:00-02:00",
        "harga, price",
    ] {
        assert!(page.body.contains(text), "{text} on the bot page");
    }
    let rule = admin.get("/bot/1/rules/harga").await;
    assert!(rule.body.contains("Harga mulai Rp25.000"));
    let flow = admin.get("/bot/1/flows/order").await;
    assert!(flow.body.contains("Berapa kg?") && flow.body.contains("toraja"));

    // A button title of 21 characters: refused with the named problem, nothing saved.
    let before = version(&app).await;
    let r = admin
        .submit(
            "/bot/1/rules/harga",
            "/bot/1/rules/harga",
            &[
                ("id", "harga"),
                ("enabled", "1"),
                ("match", "contains"),
                ("patterns", "harga"),
                ("then_do", "reply"),
                ("then.text", "Harga"),
                ("then.c0.id", "b1"),
                ("then.c0.title", "Judul yang terlalu pan"),
                ("then.c0.next", "handoff"),
            ],
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.body.contains("rules[0].then.reply.choices[0].title") && r.body.contains("22 &#62; 20"),
        "{}",
        r.body
    );
    let r = admin
        .submit(
            "/bot/1",
            "/bot/1/part/hours",
            &[("hours_enabled", "1"), ("day_tue", "9-5")],
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("hours.weekly.tue[0]"), "{}", r.body);
    // In Indonesian too.
    let r = admin
        .submit("/account", "/account", &[("name", "Pemilik"), ("locale", "id")])
        .await;
    assert_eq!(r.status, 303);
    let id_page = admin.get("/bot/1").await;
    assert!(id_page.body.contains("Aturan kata kunci"));
    assert_eq!(version(&app).await, before, "nothing saved");

    // Switch a rule off, delete it; delete a flow a choice still leads to: refused.
    assert_eq!(
        admin.submit("/bot/1", "/bot/1/rules/harga/toggle", &[]).await.status,
        303
    );
    assert_eq!(stored(&app).await["rules"][0]["enabled"], false);
    let r = admin.submit("/bot/1", "/bot/1/flows/order/delete", &[]).await;
    assert_eq!(r.status, 422, "the rule's choice leads to flow:order");
    assert!(r.body.contains("unknown") || r.body.contains("order"), "{}", r.body);
    assert_eq!(
        admin.submit("/bot/1", "/bot/1/rules/harga/delete", &[]).await.status,
        303
    );
    assert!(stored(&app).await["rules"].as_array().is_some_and(Vec::is_empty));
}

#[tokio::test]
async fn export_then_import_round_trips_and_a_bad_document_is_refused() {
    let graph = FakeGraph::start();
    let (app, admin) = app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    build_bot(&admin).await;
    let export = admin.get("/bot/1/export").await;
    assert_eq!(export.status, 200);
    assert!(
        export
            .header("content-disposition")
            .is_some_and(|d| d.contains("attachment"))
    );
    let before = stored(&app).await;
    let bad = export.body.replace("\"harga\"", "\"har ga\"");
    let v = version(&app).await;
    let r = admin.submit("/bot/1", "/bot/1/import", &[("document", &bad)]).await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("bad_id") || r.body.contains("har ga"), "{}", r.body);
    assert_eq!(version(&app).await, v, "nothing saved");
    let r = admin
        .submit("/bot/1", "/bot/1/import", &[("document", "{\"rulez\": []}")])
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("rulez"));
    let r = admin
        .submit("/bot/1", "/bot/1/import", &[("document", &export.body)])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(stored(&app).await, before, "the same document back");
    assert_eq!(version(&app).await, v + 1);
}

fn hidden(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body.find(&marker).expect("hidden field") + marker.len();
    let end = start + body[start..].find('"').expect("end");
    body[start..end]
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[tokio::test]
async fn the_test_chat_answers_runs_a_flow_by_button_id_and_sends_nothing() {
    let graph = FakeGraph::start();
    let (_app, admin) = app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    build_bot(&admin).await;
    let sent_before = messages_sent(&graph);
    let r = admin
        .submit("/bot/1/test", "/bot/1/test", &[("text", "Berapa harga?")])
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Harga mulai Rp25.000"), "{}", r.body);
    assert!(r.body.contains("rule harga"), "the decision is shown");
    assert!(
        r.body.contains("name=\"choice\" value=\"go_order\""),
        "a button to press"
    );
    let (session, transcript) = (hidden(&r.body, "session"), hidden(&r.body, "transcript"));
    let r = admin
        .submit(
            "/bot/1/test",
            "/bot/1/test",
            &[
                ("session", &session),
                ("transcript", &transcript),
                ("choice", "go_order"),
            ],
        )
        .await;
    assert!(r.body.contains("Pilih kopi"), "{}", r.body);
    let (session, transcript) = (hidden(&r.body, "session"), hidden(&r.body, "transcript"));
    let r = admin
        .submit(
            "/bot/1/test",
            "/bot/1/test",
            &[("session", &session), ("transcript", &transcript), ("choice", "gayo")],
        )
        .await;
    assert!(r.body.contains("Berapa kg?"));
    let (session, transcript) = (hidden(&r.body, "session"), hidden(&r.body, "transcript"));
    let r = admin
        .submit(
            "/bot/1/test",
            "/bot/1/test",
            &[("session", &session), ("transcript", &transcript), ("text", "2")],
        )
        .await;
    assert!(r.body.contains("qty: 2"), "the stored field is shown: {}", r.body);
    // A tampered session starts afresh, never a 500.
    let r = admin
        .submit(
            "/bot/1/test",
            "/bot/1/test",
            &[("session", "{\"flow\": 7}"), ("transcript", "[]"), ("text", "halo")],
        )
        .await;
    assert_eq!(r.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(messages_sent(&graph), sent_before, "nothing went to Meta");
}

#[tokio::test]
async fn the_activity_page_lists_a_real_decision_and_an_agent_gives_it_back_to_the_bot() {
    let graph = FakeGraph::start();
    let (app, admin) = app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    build_bot(&admin).await;
    let now = app.state.now();
    inbound_text(
        &app,
        SECRET,
        PHONE_ID,
        "wamid.b1",
        "6281234567890",
        "Budi",
        now,
        "harga kopi?",
    )
    .await;
    let page = admin.get("/bot/activity").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("harga kopi?") && page.body.contains("rule"),
        "{}",
        page.body
    );
    let filtered = admin.get("/bot/activity?kind=handoff").await;
    assert!(!filtered.body.contains("harga kopi?"), "the kind filter");
    // Something unmatched: the fallback hands off; the conversation shows it.
    inbound_text(
        &app,
        SECRET,
        PHONE_ID,
        "wamid.b2",
        "6281234567890",
        "Budi",
        now + 1,
        "zzz",
    )
    .await;
    let conv: i64 = app
        .state
        .db
        .read(|c| Ok(c.query_row("SELECT id FROM conversations LIMIT 1", [], |r| r.get(0))?))
        .await
        .expect("conversation");
    let page = admin.get(&format!("/inbox/{conv}")).await;
    assert!(
        page.body.contains("fallback+handoff") || page.body.contains("handoff"),
        "a bot line"
    );
    assert!(page.body.contains("Give back to bot"), "{}", page.body);
    let r = admin
        .submit(&format!("/inbox/{conv}"), &format!("/inbox/{conv}/bot"), &[])
        .await;
    assert_eq!(r.status, 303);
    let page = admin.get(&format!("/inbox/{conv}")).await;
    assert!(page.body.contains("The bot answers this conversation"));
    assert!(page.body.contains("gave this back to the bot"), "the bot_on event");
    let off: Option<i64> = app
        .state
        .db
        .read(move |c| {
            Ok(
                c.query_row("SELECT bot_off_at FROM conversations WHERE id = ?1", [conv], |r| {
                    r.get(0)
                })?,
            )
        })
        .await
        .expect("read");
    assert_eq!(off, None);
}

#[tokio::test]
async fn agents_get_no_bot_pages() {
    let graph = FakeGraph::start();
    let (app, admin) = app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    app.create_user(&admin, "agen@toko.id", "agent").await;
    let agent = app.browser();
    agent.login("agen@toko.id", PASSWORD).await;
    for path in [
        "/bot",
        "/bot/1",
        "/bot/1/test",
        "/bot/activity",
        "/bot/1/export",
        "/bot/1/flows/new",
    ] {
        assert_eq!(agent.get(path).await.status, 403, "{path}");
    }
    let r = agent.submit("/inbox", "/bot/1/part/enabled", &[("enabled", "1")]).await;
    assert_eq!(r.status, 403);
    assert!(
        !agent.get("/inbox").await.body.contains("href=\"/bot\""),
        "no nav entry"
    );
}

/// The bot page and the test chat at phone width, in both languages (SCREENSHOT_DIR
/// keeps the pictures).
#[tokio::test]
async fn bot_page_and_test_chat_at_390px_in_both_languages() {
    use crate::browser::{screenshot, start_browser, wait_css};
    let Some((_driver, c)) = start_browser().await else {
        return;
    };
    let graph = FakeGraph::start();
    let (app, admin) = app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    build_bot(&admin).await;
    app.create_user(&admin, "super@toko.id", "supervisor").await;
    c.set_window_size(390, 844).await.unwrap();
    c.goto(&format!("{}/login", app.base)).await.unwrap();
    crate::browser::fill(&c, "email", "super@toko.id").await;
    crate::browser::fill(&c, "password", PASSWORD).await;
    c.find(fantoccini::Locator::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_css(&c, "nav.sidebar").await;
    for lang in ["en", "id"] {
        c.goto(&format!("{}/bot/1?lang={lang}", app.base)).await.unwrap();
        wait_css(&c, "#welcome").await;
        screenshot(&c, &format!("bot-page-{lang}")).await;
        c.goto(&format!("{}/bot/1/test?lang={lang}", app.base)).await.unwrap();
        crate::browser::fill(&c, "text", "harga").await;
        c.find(fantoccini::Locator::Css(".composer-line button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_css(&c, "button[name=choice]").await;
        screenshot(&c, &format!("bot-test-{lang}")).await;
        let width: i64 = c
            .execute("return document.documentElement.scrollWidth", vec![])
            .await
            .unwrap()
            .as_i64()
            .unwrap_or(0);
        assert!(width <= 400, "no sideways scrolling at 390 px: {width}");
    }
}
