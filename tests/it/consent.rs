//! Consent you can prove and opt-out that always wins, through the real server: stop and
//! start keywords (whole message only) with one confirmation in the person's language
//! through the fake Graph API, Meta's `user_preferences`, 131050 on a send, marketing
//! templates refused, the header badge, the contact page's log and form, the list
//! filter, the API (and its 409), and the admins' keyword lists.

use crate::common::{Browser, PASSWORD, TestApp, api, api_key, app_with_number, deliver, inbound_text, outbox_idle};
use crate::fake_graph::FakeGraph;
use serde_json::json;

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const PHONE: &str = "106540352242922";
const STOPPED_ID: &str =
    "Anda tidak akan menerima pesan promosi lagi dari Toko Maju Jaya. Balas MULAI untuk berlangganan kembali.";
const STARTED_ID: &str =
    "Anda kembali berlangganan pesan promosi dari Toko Maju Jaya. Balas BERHENTI untuk berhenti berlangganan.";
const STOPPED_EN: &str =
    "You will no longer receive promotional messages from Toko Maju Jaya. Reply START to subscribe again.";

async fn says(app: &TestApp, wamid: &str, from: &str, text: &str) {
    inbound_text(app, SECRET, PHONE, wamid, from, "Pelanggan", app.state.now(), text).await;
}

async fn contact_of(app: &TestApp, wa_id: &str) -> i64 {
    let wa = wa_id.to_string();
    app.state
        .db
        .read(move |c| Ok(c.query_row("SELECT id FROM contacts WHERE wa_id = ?1", [wa], |r| r.get(0))?))
        .await
        .unwrap()
}

async fn conversation_of(app: &TestApp, wa_id: &str) -> i64 {
    let wa = wa_id.to_string();
    app.state
        .db
        .read(move |c| {
            Ok(c.query_row(
                "SELECT c.id FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE k.wa_id = ?1",
                [wa],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap()
}

/// (marketing, utility) of the contact with this WhatsApp id.
async fn states(app: &TestApp, wa_id: &str) -> (String, String) {
    let wa = wa_id.to_string();
    app.state
        .db
        .read(move |c| {
            Ok(c.query_row(
                "SELECT consent_marketing, consent_utility FROM contacts WHERE wa_id = ?1",
                [wa],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?)
        })
        .await
        .unwrap()
}

/// The contact's consent log, oldest first: (source, state, wording, evidence).
async fn log_of(app: &TestApp, wa_id: &str) -> Vec<(String, String, String, String)> {
    let wa = wa_id.to_string();
    app.state
        .db
        .read(move |c| {
            let mut s = c.prepare(
                "SELECT l.source, l.state, l.wording, l.evidence FROM consent_log l JOIN contacts k ON k.id = l.contact_id
                 WHERE k.wa_id = ?1 ORDER BY l.id",
            )?;
            let rows = s.query_map([wa], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
        .unwrap()
}

/// The texts the fake Graph API was asked to send to `to`.
fn texts_to(graph: &FakeGraph, to: &str) -> Vec<String> {
    graph
        .seen()
        .iter()
        .filter(|s| s.path.ends_with("/messages") && s.body["to"] == to && s.body["type"] == "text")
        .map(|s| s.body["text"]["body"].as_str().unwrap_or("").to_string())
        .collect()
}

async fn signed_in(app: &TestApp, admin: &Browser, email: &str, role: &str) -> Browser {
    app.create_user(admin, email, role).await;
    let b = app.browser();
    b.login(email, PASSWORD).await;
    b
}

#[tokio::test]
async fn stop_and_start_keywords_change_marketing_consent_and_confirm_once_in_the_persons_language() {
    let graph = FakeGraph::start();
    let (app, admin) = app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    let siti = "6281234500001";

    // A sentence that contains the word is not a keyword.
    says(&app, "wamid.k1", siti, "jangan berhenti kirim promo").await;
    says(&app, "wamid.k2", siti, "please stop sending me the wrong size").await;
    outbox_idle(&app).await;
    assert_eq!(states(&app, siti).await.0, "unknown");
    assert!(log_of(&app, siti).await.is_empty());
    assert!(texts_to(&graph, siti).is_empty(), "nothing answered");

    // "stop!" is STOP: opted out, logged with the message as evidence, confirmed in
    // Indonesian (a +62 number) through the one outbox.
    says(&app, "wamid.k3", siti, "stop!").await;
    assert_eq!(states(&app, siti).await, ("opted_out".into(), "unknown".into()));
    assert_eq!(
        log_of(&app, siti).await,
        [("keyword".into(), "opted_out".into(), "stop!".into(), "wamid.k3".into())]
    );
    graph
        .wait_for("the Indonesian confirmation", |s| {
            s.iter()
                .any(|x| x.body["to"] == siti && x.body["text"]["body"] == STOPPED_ID)
        })
        .await;

    // Already opted out: a second stop keyword changes and sends nothing.
    says(&app, "wamid.k4", siti, " Berhenti. ").await;
    says(&app, "wamid.k5", siti, "STOP").await;
    outbox_idle(&app).await;
    assert_eq!(texts_to(&graph, siti), [STOPPED_ID], "the confirmation went once");
    assert_eq!(log_of(&app, siti).await.len(), 1);

    // The messages are in the inbox as usual; the thread says what happened and shows
    // the confirmation as sent (by nobody in the team).
    let conv = conversation_of(&app, siti).await;
    let thread = admin.get(&format!("/inbox/{conv}?fragment=thread")).await.body;
    for text in ["jangan berhenti kirim promo", "stop!", "Berhenti.", STOPPED_ID] {
        assert!(thread.contains(text), "{text:?} in the thread: {thread}");
    }
    assert!(
        thread.contains("Opted out of marketing by keyword STOP"),
        "the event: {thread}"
    );
    assert!(
        thread.contains("<span>Whacaster</span>"),
        "the confirmation is shown as sent by the system: {thread}"
    );
    // The header's badge.
    let page = admin.get(&format!("/inbox/{conv}")).await.body;
    assert!(
        page.contains("data-consent=\"opted_out\"") && page.contains("Marketing: Opted out"),
        "badge: {page}"
    );

    // MULAI opts back in, confirmed once more.
    says(&app, "wamid.k6", siti, "mulai").await;
    assert_eq!(states(&app, siti).await.0, "opted_in");
    graph
        .wait_for("the opt-in confirmation", |s| {
            s.iter()
                .any(|x| x.body["to"] == siti && x.body["text"]["body"] == STARTED_ID)
        })
        .await;
    let page = admin.get(&format!("/inbox/{conv}")).await.body;
    assert!(page.contains("Marketing: Opted in"));

    // A number abroad is answered in the business language (English here); START
    // and BERHENTI work whatever their case.
    let ana = "16505550123";
    says(&app, "wamid.e1", ana, "Unsubscribe 🙏").await;
    assert_eq!(states(&app, ana).await.0, "opted_out");
    graph
        .wait_for("the English confirmation", |s| {
            s.iter()
                .any(|x| x.body["to"] == ana && x.body["text"]["body"] == STOPPED_EN)
        })
        .await;
    says(&app, "wamid.e2", ana, "Start").await;
    assert_eq!(states(&app, ana).await.0, "opted_in");

    // A template's quick-reply button whose payload is a keyword.
    let budi = "6281234500002";
    let button = json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "62812", "phone_number_id": PHONE},
        "contacts": [{"profile": {"name": "Budi"}, "wa_id": budi}],
        "messages": [{"context": {"from": "62812", "id": "wamid.promo"}, "from": budi, "id": "wamid.b1",
            "timestamp": app.state.now().to_string(), "type": "button", "button": {"payload": "STOP PROMO", "text": "Berhenti promo"}}]}}]}]});
    deliver(&app, SECRET, &button).await;
    assert_eq!(states(&app, budi).await.0, "opted_out");
    assert_eq!(log_of(&app, budi).await[0].0, "keyword");
}

#[tokio::test]
async fn whatsapp_stop_and_resume_arrive_as_user_preferences() {
    let graph = FakeGraph::start();
    let (app, _admin) = app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    let wa = "6281234500003";
    let preference = |value: &str, ts: i64| {
        json!({ "object": "whatsapp_business_account", "entry": [{ "id": "102290129340398", "changes": [{ "field": "user_preferences", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "62812", "phone_number_id": PHONE },
            "contacts": [{ "wa_id": wa }],
            "user_preferences": [{ "wa_id": wa, "detail": format!("User requested to {value} marketing messages"),
                "category": "marketing_messages", "value": value, "timestamp": ts }] } }] }] })
    };
    let now = app.state.now();
    deliver(&app, SECRET, &preference("stop", now - 60)).await;
    assert_eq!(
        states(&app, wa).await.0,
        "opted_out",
        "a person we never heard from is known, as opted out"
    );
    deliver(&app, SECRET, &preference("resume", now - 30)).await;
    assert_eq!(states(&app, wa).await.0, "opted_in");
    // Meta retries for days and out of order: an older stop does not undo the resume.
    deliver(&app, SECRET, &preference("stop", now - 45)).await;
    assert_eq!(states(&app, wa).await.0, "opted_in");
    let log = log_of(&app, wa).await;
    assert_eq!(log.len(), 2);
    assert_eq!(
        (log[1].0.as_str(), log[1].2.as_str()),
        ("meta_preferences", "User requested to resume marketing messages")
    );
    let quarantined: i64 = app
        .state
        .db
        .read(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM webhook_inbox WHERE state = 'quarantined'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(quarantined, 0);
}

async fn add_templates(app: &TestApp) {
    app.state
        .db
        .write(|c| {
            c.execute(
                "INSERT INTO wa_templates (waba_id, meta_id, name, language, status, category, body_text, param_count, synced_at)
                 VALUES ('102290129340398', '1', 'order_ready', 'id', 'APPROVED', 'UTILITY', 'Pesanan {{1}} siap.', 1, 0),
                        ('102290129340398', '2', 'promo_12_12', 'id', 'APPROVED', 'MARKETING', 'Diskon {{1}} hari ini!', 1, 0)",
                [],
            )?;
            Ok(())
        })
        .await
        .unwrap();
}

#[expect(clippy::too_many_lines, reason = "one customer's story, told in order")]
#[tokio::test]
async fn marketing_templates_need_an_opt_in_and_131050_opts_out() {
    let graph = FakeGraph::start();
    let (app, admin) = app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    add_templates(&app).await;
    let wa = "6281234500004";
    says(&app, "wamid.t1", wa, "halo kak").await;
    let conv = conversation_of(&app, wa).await;
    let send = |name: &'static str| {
        let admin = admin.clone();
        let path = format!("/inbox/{conv}/template");
        async move {
            admin.get(&format!("/inbox/{conv}")).await;
            admin
                .post(&path, &[("template", name), ("p1", "50%"), ("action", "send")])
                .await
        }
    };
    // Never asked: no marketing, utility goes.
    let r = send("promo_12_12|id").await;
    assert_eq!(r.status, 422);
    assert!(
        r.body.contains("has not opted in to marketing"),
        "refused, saying why: {}",
        r.body
    );
    assert_eq!(send("order_ready|id").await.status, 303);
    let page = admin.get(&format!("/inbox/{conv}")).await.body;
    assert!(page.contains("Marketing: Not asked"), "badge: {page}");

    // The person agrees on the phone; the agent records it; the promo goes.
    let id = contact_of(&app, wa).await;
    let r = admin
        .submit(
            &format!("/contacts/{id}"),
            &format!("/contacts/{id}/consent"),
            &[
                ("purpose", "marketing"),
                ("state", "opted_in"),
                ("wording", "Said yes to promos on the phone, 1 Dec"),
                ("evidence", "call #881"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(send("promo_12_12|id").await.status, 303);
    graph
        .wait_for("the promo", |s| {
            s.iter().any(|x| x.body["template"]["name"] == "promo_12_12")
        })
        .await;
    let wamid = crate::common::wamid_of(&app, "Diskon 50% hari ini!").await;

    // Meta accepted it, then says the person stopped marketing messages (131050).
    let failed = json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "62812", "phone_number_id": PHONE},
        "statuses": [{"id": wamid, "status": "failed", "timestamp": app.state.now().to_string(), "recipient_id": wa,
            "errors": [{"code": 131_050, "title": "Unable to deliver the message", "message": "Unable to deliver the message",
                "error_data": {"details": "This recipient has chosen to stop receiving marketing messages on WhatsApp from your business."}}]}]}}]}]});
    deliver(&app, SECRET, &failed).await;
    assert_eq!(states(&app, wa).await.0, "opted_out");
    let log = log_of(&app, wa).await;
    let last = log.last().unwrap();
    assert_eq!((last.0.as_str(), last.1.as_str()), ("meta_131050", "opted_out"));
    assert_eq!(last.3, format!("{wamid} error 131050"));
    let thread = admin.get(&format!("/inbox/{conv}?fragment=thread")).await.body;
    assert!(
        thread.contains("WhatsApp refused a marketing message (131050)"),
        "{thread}"
    );

    // Now no one may send this person marketing, in the inbox or through the API;
    // utility still goes.
    let r = send("promo_12_12|id").await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("opted out of this kind of message"), "{}", r.body);
    assert_eq!(send("order_ready|id").await.status, 303);
    // A supervisor's key: sending gave the admin the conversation.
    let key = api_key(&admin, "supervisor").await;
    let (s, e) = api(
        &app,
        "POST",
        &format!("/api/v1/conversations/{conv}/messages"),
        &key,
        Some(json!({"type": "template", "name": "promo_12_12", "language": "id", "params": ["50%"]})),
    )
    .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (422, Some("consent.refusal.opted_out"))
    );

    // Should Meta refuse with 131050 at once (an error answer, not a later status),
    // the opt-out is recorded all the same.
    let other = "6281234500009";
    says(&app, "wamid.t2", other, "info promo dong").await;
    let other_id = contact_of(&app, other).await;
    let (s, _) = api(
        &app,
        "POST",
        &format!("/api/v1/contacts/{other_id}/consent"),
        &key,
        Some(json!({"purpose": "marketing", "state": "opted_in", "wording": "Newsletter form, 1 Dec"})),
    )
    .await;
    assert_eq!(s, 200);
    graph.inject(crate::fake_graph::Fault {
        path: "/messages".into(),
        body_contains: Some("promo_12_12".into()),
        status: 400,
        answer: crate::fake_graph::meta_error(131_050, "Unable to deliver the message", "stopped marketing"),
        times: Some(1),
        delay_ms: 0,
    });
    let other_conv = conversation_of(&app, other).await;
    let (s, _) = api(
        &app,
        "POST",
        &format!("/api/v1/conversations/{other_conv}/messages"),
        &key,
        Some(json!({"type": "template", "name": "promo_12_12", "language": "id", "params": ["50%"]})),
    )
    .await;
    assert_eq!(s, 202);
    outbox_idle(&app).await;
    assert_eq!(states(&app, other).await.0, "opted_out");
    let last = log_of(&app, other).await.pop().unwrap();
    assert_eq!(last.0, "meta_131050");
    assert!(last.3.ends_with("error 131050"), "{last:?}");
}

#[expect(clippy::too_many_lines, reason = "the page, the list, the API and their refusals")]
#[tokio::test]
async fn the_contact_page_shows_the_log_and_the_list_and_api_filter_by_consent() {
    let graph = FakeGraph::start();
    let (app, admin) = app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    says(&app, "wamid.c1", "6281234500005", "STOP").await;
    says(&app, "wamid.c2", "6281234500006", "halo").await;
    let (out_id, unknown_id) = (
        contact_of(&app, "6281234500005").await,
        contact_of(&app, "6281234500006").await,
    );
    let agent = signed_in(&app, &admin, "agen@toko.id", "agent").await;

    // The agent records an opt-in told at the counter; wording is required.
    let page = format!("/contacts/{unknown_id}");
    let action = format!("/contacts/{unknown_id}/consent");
    let r = agent
        .submit(
            &page,
            &action,
            &[("purpose", "marketing"), ("state", "opted_in"), ("wording", "  ")],
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("Write what the person said"), "{}", r.body);
    let r = agent
        .submit(
            &page,
            &action,
            &[("purpose", "marketing"), ("state", "unknown"), ("wording", "x")],
        )
        .await;
    assert_eq!(r.status, 422, "consent is not unsaid");
    let r = agent
        .post_raw(
            &action,
            &[("purpose", "marketing"), ("state", "opted_in"), ("wording", "no token")],
        )
        .await;
    assert_eq!(r.status, 403, "CSRF checked");
    let r = agent
        .submit(
            &page,
            &action,
            &[
                ("purpose", "marketing"),
                ("state", "opted_in"),
                ("wording", "<b>Ya</b>, mau promo (di toko)"),
                ("evidence", "nota 1207"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let body = agent.get(&page).await.body;
    assert!(body.contains("data-consent-marketing=\"opted_in\""), "{body}");
    assert!(body.contains("data-consent-utility=\"unknown\""));
    assert!(
        body.contains("&#60;b&#62;Ya&#60;/b&#62;, mau promo (di toko)") && body.contains("nota 1207"),
        "the wording and evidence, escaped"
    );
    assert!(body.contains("Agent (on the phone or in person)") && body.contains("agen@toko.id"));
    // Newest first: a second change comes before the first.
    let r = agent
        .submit(
            &page,
            &action,
            &[
                ("purpose", "marketing"),
                ("state", "opted_out"),
                ("wording", "Called: no more promos"),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    let body = agent.get(&page).await.body;
    let (newer, older) = (
        body.find("Called: no more promos").unwrap(),
        body.find("mau promo").unwrap(),
    );
    assert!(newer < older, "newest first");
    let keyword_page = agent.get(&format!("/contacts/{out_id}")).await.body;
    assert!(keyword_page.contains("Keyword in chat") && keyword_page.contains("wamid.c1"));

    // The list filter.
    let put_back = agent
        .submit(
            &page,
            &action,
            &[
                ("purpose", "marketing"),
                ("state", "opted_in"),
                ("wording", "Changed their mind"),
            ],
        )
        .await;
    assert_eq!(put_back.status, 303);
    let list = agent.get("/contacts?consent=opted_out").await.body;
    assert!(list.contains(&format!("/contacts/{out_id}\"")) && !list.contains(&format!("/contacts/{unknown_id}\"")));
    let list = agent.get("/contacts?consent=opted_in").await.body;
    assert!(!list.contains(&format!("/contacts/{out_id}\"")) && list.contains(&format!("/contacts/{unknown_id}\"")));

    // The API: states in the JSON, the filter, recording, and the 409.
    let key = api_key(&admin, "agent").await;
    let (s, list) = api(&app, "GET", "/api/v1/contacts?consent=opted_out", &key, None).await;
    assert_eq!(s, 200);
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["id"], out_id);
    assert_eq!(
        data[0]["consent"],
        json!({"marketing": "opted_out", "utility": "unknown"})
    );
    assert_eq!(
        api(&app, "GET", "/api/v1/contacts?consent=maybe", &key, None).await.0,
        400
    );
    let (s, none) = api(&app, "GET", "/api/v1/contacts?consent=unknown", &key, None).await;
    assert_eq!((s, none["data"].as_array().map(Vec::len)), (200, Some(0)));

    let (s, e) = api(
        &app,
        "POST",
        &format!("/api/v1/contacts/{out_id}/consent"),
        &key,
        Some(json!({"purpose": "marketing", "state": "opted_in", "wording": "Checkbox on the shop's checkout"})),
    )
    .await;
    assert_eq!(s, 409, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Only the person can lift an opt-out")
    );
    assert_eq!(states(&app, "6281234500005").await.0, "opted_out", "unchanged");
    let (s, ok) = api(
        &app,
        "POST",
        &format!("/api/v1/contacts/{out_id}/consent"),
        &key,
        Some(json!({"purpose": "utility", "state": "opted_in", "wording": "Order updates: yes (checkout)", "evidence": "order 5521"})),
    )
    .await;
    assert_eq!(s, 200, "{ok}");
    assert_eq!(
        (ok["changed"].as_bool(), ok["contact"]["consent"]["utility"].as_str()),
        (Some(true), Some("opted_in"))
    );
    let (s, again) = api(
        &app,
        "POST",
        &format!("/api/v1/contacts/{out_id}/consent"),
        &key,
        Some(json!({"purpose": "utility", "state": "opted_in", "wording": "again"})),
    )
    .await;
    assert_eq!((s, again["changed"].as_bool()), (200, Some(false)));
    let (s, bad) = api(
        &app,
        "POST",
        &format!("/api/v1/contacts/{out_id}/consent"),
        &key,
        Some(json!({"purpose": "sms", "state": "opted_in", "wording": "x"})),
    )
    .await;
    assert_eq!((s, bad["error"]["code"].as_str()), (422, Some("invalid")));
    let api_line = log_of(&app, "6281234500005").await.pop().unwrap();
    assert_eq!((api_line.0.as_str(), api_line.3.as_str()), ("api", "order 5521"));
    let openapi = api(&app, "GET", "/api/v1/openapi.json", &key, None).await.1;
    assert!(openapi["paths"]["/contacts/{id}/consent"]["post"].is_object());
    let audit = admin.get("/admin/audit.csv").await.body;
    assert!(audit.contains("consent.changed"), "audited");
}

#[tokio::test]
async fn admins_edit_the_keyword_lists_and_agents_cannot() {
    let graph = FakeGraph::start();
    let (app, admin) = app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    let agent = signed_in(&app, &admin, "agen@toko.id", "agent").await;
    assert_eq!(agent.get("/admin/consent").await.status, 403);
    // (A page the agent may see, for a CSRF token.)
    let r = agent
        .submit("/contacts", "/admin/consent", &[("stop", "STOP"), ("start", "START")])
        .await;
    assert_eq!(r.status, 403);

    let page = admin.get("/admin/consent").await.body;
    assert!(
        page.contains("BERHENTI PROMO") && page.contains("lagi dari {business}. Balas MULAI"),
        "defaults shown"
    );
    let fields = |stop: &'static str, start: &'static str| {
        [
            ("stop", stop),
            ("start", start),
            ("confirm_stop_en", "Bye from {business}."),
            ("confirm_stop_id", "Oke, {business} tidak akan kirim promo lagi."),
            ("confirm_start_en", "Welcome back."),
            ("confirm_start_id", "Selamat datang kembali."),
        ]
    };
    let r = admin
        .submit(
            "/admin/consent",
            "/admin/consent",
            &fields("STOP\nUDAHAN", "MULAI\nudahan"),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.body.contains("cannot be both a stop and a start keyword"),
        "{}",
        r.body
    );
    let r = admin
        .submit("/admin/consent", "/admin/consent", &fields("STOP\n🙂", "MULAI"))
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("at least one letter or digit"));
    let r = admin
        .submit("/admin/consent", "/admin/consent", &fields("stop\nudahan", "mulai"))
        .await;
    assert_eq!(r.status, 303, "{}", r.body);

    // The new list is what the intake reads; the new text is what it sends.
    let wa = "6281234500007";
    says(&app, "wamid.u1", wa, "Udahan!").await;
    assert_eq!(states(&app, wa).await.0, "opted_out");
    graph
        .wait_for("the custom confirmation", |s| {
            s.iter().any(|x| {
                x.body["to"] == wa && x.body["text"]["body"] == "Oke, Toko Maju Jaya tidak akan kirim promo lagi."
            })
        })
        .await;
    let other = "6281234500008";
    says(&app, "wamid.u2", other, "berhenti").await;
    assert_eq!(
        states(&app, other).await.0,
        "unknown",
        "BERHENTI is no longer on the list"
    );
    let audit = admin.get("/admin/audit.csv").await.body;
    assert!(audit.contains("settings.opt_out"));
}
