//! The agents' inbox over real HTTP and a real encrypted database: who sees what (page,
//! media, search, API, live events), escaping, the 24-hour window and templates,
//! replies through the outbox with ticks from status webhooks, round-robin assignment,
//! labels, notes, canned responses and the audit trail.

use crate::common::{Browser, PASSWORD, TestApp, api, api_key, app_with_number, inbound_text, status_update};
use crate::fake_graph::FakeGraph;
use serde_json::{Value, json};

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const PHONE: &str = "106540352242922";

async fn customer(app: &TestApp, wamid: &str, from: &str, name: &str, text: &str) {
    inbound_text(app, SECRET, PHONE, wamid, from, name, app.state.now(), text).await;
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

async fn user_id(app: &TestApp, email: &str) -> i64 {
    let e = email.to_string();
    app.state
        .db
        .read(move |c| Ok(c.query_row("SELECT id FROM users WHERE email = ?1", [e], |r| r.get(0))?))
        .await
        .unwrap()
}

async fn signed_in(app: &TestApp, admin: &Browser, email: &str, role: &str) -> Browser {
    app.create_user(admin, email, role).await;
    let b = app.browser();
    b.login(email, PASSWORD).await;
    b
}

/// Reads the SSE stream until `want` arrives; returns every conversation id seen before it.
async fn events_until(mut r: reqwest::Response, want: i64) -> Vec<i64> {
    let mut seen = Vec::new();
    let mut buf = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, r.chunk()).await {
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(i) = buf.find("\n\n") {
            let frame: String = buf.drain(..i + 2).collect();
            if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) {
                if let Some(id) = serde_json::from_str::<Value>(data)
                    .ok()
                    .and_then(|v| v["conversation"].as_i64())
                {
                    seen.push(id);
                    if id == want {
                        return seen;
                    }
                }
            }
        }
    }
    panic!("event for conversation {want} never came; saw {seen:?}");
}

#[expect(clippy::too_many_lines, reason = "one scenario, told in order")]
#[tokio::test]
async fn an_agent_cannot_reach_a_conversation_assigned_to_someone_else() {
    let graph = FakeGraph::start();
    graph.add_media("7001", b"\x89PNG secret picture", "image/png");
    let (app, admin) = app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    let ani = signed_in(&app, &admin, "ani@toko.id", "agent").await;
    let budi = signed_in(&app, &admin, "budi@toko.id", "agent").await;
    // Siti's conversation goes to Budi; it holds a picture.
    let pic = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "62812", "phone_number_id": PHONE},
        "contacts": [{"profile": {"name": "Siti"}, "wa_id": "62811"}],
        "messages": [{"from": "62811", "id": "wamid.pic", "timestamp": app.state.now().to_string(), "type": "image",
                      "image": {"id": "7001", "mime_type": "image/png", "caption": "rahasia dapur"}}]}}]}]});
    crate::common::deliver(&app, SECRET, &pic).await;
    let siti = conversation_of(&app, "62811").await;
    let r = budi
        .submit(
            &format!("/inbox/{siti}"),
            &format!("/inbox/{siti}/assign"),
            &[("assignee", "me")],
        )
        .await;
    assert_eq!(r.status, 303);
    // Wait for the picture to be fetched and stored.
    let mut media = 0;
    for _ in 0..100 {
        media = app
            .state
            .db
            .read(|c| {
                Ok(c.query_row(
                    "SELECT coalesce(max(id), 0) FROM media_files WHERE state = 'stored'",
                    [],
                    |r| r.get(0),
                )?)
            })
            .await
            .unwrap();
        if media > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }
    assert!(media > 0, "picture stored");
    assert_eq!(
        budi.get(&format!("/media/{media}")).await.status,
        200,
        "the assignee sees it"
    );

    // Ani, another agent, gets nothing: page, thread fragment, media, search, API, SSE.
    assert_eq!(ani.get(&format!("/inbox/{siti}")).await.status, 404);
    assert_eq!(ani.get(&format!("/inbox/{siti}?fragment=thread")).await.status, 404);
    assert_eq!(ani.get(&format!("/media/{media}")).await.status, 404);
    assert!(!ani.get("/inbox?tab=all").await.body.contains("Siti"));
    let found = ani.get("/inbox?q=rahasia").await;
    assert!(!found.body.contains("<mark>rahasia</mark>"), "search hides it");
    assert!(!found.body.contains(&format!("/inbox/{siti}")), "search hides it");
    assert!(!ani.get("/inbox?q=Siti").await.body.contains(&format!("/inbox/{siti}")));
    let r = ani.post(&format!("/inbox/{siti}/reply"), &[("body", "hi")]).await;
    assert_eq!(r.status, 404, "cannot answer it either");
    let key = api_key(&admin, "agent").await;
    assert_eq!(
        api(&app, "GET", &format!("/api/v1/conversations/{siti}"), &key, None)
            .await
            .0,
        404
    );
    assert_eq!(
        api(
            &app,
            "GET",
            &format!("/api/v1/conversations/{siti}/messages"),
            &key,
            None
        )
        .await
        .0,
        404
    );
    let (_, list) = api(&app, "GET", "/api/v1/conversations", &key, None).await;
    assert!(list["data"].as_array().unwrap().iter().all(|c| c["id"] != siti));
    // Live events: Ani's stream skips Siti's news but gets the unassigned newcomer's.
    let stream = ani
        .client
        .get(format!("{}/inbox/events", ani.base))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    customer(&app, "wamid.s2", "62811", "Siti", "masih ada?").await;
    customer(&app, "wamid.r1", "62822", "Rina", "halo").await;
    let rina = conversation_of(&app, "62822").await;
    let seen = events_until(stream, rina).await;
    assert!(!seen.contains(&siti), "no event about Siti reached Ani: {seen:?}");

    // A supervisor sees everything; with "agents see all" on, so does Ani.
    let sup = signed_in(&app, &admin, "sup@toko.id", "supervisor").await;
    assert_eq!(sup.get(&format!("/inbox/{siti}")).await.status, 200);
    assert!(sup.get("/inbox?q=rahasia").await.body.contains("<mark>rahasia</mark>"));
    let r = admin
        .submit(
            "/admin/inbox",
            "/admin/inbox",
            &[("agents_see_all", "1"), ("read_receipts", "1"), ("assign_cap", "20")],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(ani.get(&format!("/inbox/{siti}")).await.status, 200);
    assert_eq!(ani.get(&format!("/media/{media}")).await.status, 200);
    assert!(ani.get("/inbox?tab=all").await.body.contains("Siti"));
}

#[tokio::test]
async fn customer_text_names_and_notes_are_escaped_everywhere() {
    let graph = FakeGraph::start();
    let (app, admin) = app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    let evil = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>";
    customer(&app, "wamid.x1", "62833", evil, &format!("pesan {evil}")).await;
    let id = conversation_of(&app, "62833").await;
    let r = admin
        .submit(&format!("/inbox/{id}"), &format!("/inbox/{id}/note"), &[("body", evil)])
        .await;
    assert_eq!(r.status, 303);
    let label = admin
        .submit(
            "/inbox/labels",
            "/inbox/labels",
            &[("name", "<b>vip</b>"), ("color", "red")],
        )
        .await;
    assert_eq!(label.status, 303);
    let canned = admin
        .submit(
            "/inbox/canned",
            "/inbox/canned",
            &[("shortcut", "x"), ("body", "Halo {{name}} <script>")],
        )
        .await;
    assert_eq!(canned.status, 303);
    let contact: i64 = app
        .state
        .db
        .read(|c| Ok(c.query_row("SELECT id FROM contacts WHERE wa_id = '62833'", [], |r| r.get(0))?))
        .await
        .unwrap();
    for page in [
        "/inbox".to_string(),
        "/inbox?tab=all".into(),
        format!("/inbox/{id}"),
        format!("/inbox/{id}?fragment=thread"),
        "/inbox?q=pesan".into(),
        "/inbox?q=script".into(),
        format!("/contacts/{contact}"),
        "/contacts".into(),
        "/inbox/labels".into(),
        "/inbox/canned".into(),
    ] {
        let body = admin.get(&page).await.body;
        assert!(!body.contains("<script>alert"), "{page} has a raw script");
        assert!(!body.contains("<img src=x"), "{page} has a raw img");
        assert!(!body.contains("<b>vip"), "{page} has raw label markup");
        assert!(!body.contains("Halo <script"), "{page} has raw canned text");
    }
    let page = admin.get(&format!("/inbox/{id}")).await.body;
    assert!(
        page.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "shown, escaped: {page}"
    );
    assert!(page.contains("class=\"note\""), "the note is in the thread");
}

async fn add_template(app: &TestApp) {
    app.state
        .db
        .write(|c| {
            c.execute(
                "INSERT INTO wa_templates (waba_id, meta_id, name, language, status, category, body_text, param_count, synced_at)
                 VALUES ('102290129340398', '1', 'order_ready', 'id', 'APPROVED', 'UTILITY', 'Halo {{1}}, pesanan {{2}} siap.', 2, 0),
                        ('102290129340398', '2', 'old_promo', 'id', 'REJECTED', 'MARKETING', 'Promo', 0, 0)",
                [],
            )?;
            Ok(())
        })
        .await
        .unwrap();
}

#[expect(clippy::too_many_lines, reason = "one scenario, told in order")]
#[tokio::test]
async fn replies_follow_the_window_and_templates_take_over_when_it_closes() {
    let graph = FakeGraph::start();
    let (app, admin) = app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    add_template(&app).await;
    customer(&app, "wamid.w1", "62844", "Dewi", "mau pesan").await;
    let id = conversation_of(&app, "62844").await;
    let page = admin.get(&format!("/inbox/{id}")).await.body;
    assert!(
        page.contains("23 h 59 min left") || page.contains("24 h 0 min left"),
        "countdown shown"
    );
    assert!(page.contains(&format!("action=\"/inbox/{id}/reply\"")));
    // Opening it sent the read receipt (setting on by default).
    graph
        .wait_for("the read receipt", |s| {
            s.iter()
                .any(|x| x.body["status"] == "read" && x.body["message_id"] == "wamid.w1")
        })
        .await;

    // A reply: pending at once, sent through the outbox, ticks from Meta's statuses.
    let r = admin
        .post(&format!("/inbox/{id}/reply"), &[("body", "Siap, kak!")])
        .await;
    assert_eq!(r.status, 303);
    graph
        .wait_for("the reply", |s| {
            s.iter().any(|x| x.body["text"]["body"] == "Siap, kak!")
        })
        .await;
    let sent = graph
        .seen()
        .into_iter()
        .find(|x| x.body["text"]["body"] == "Siap, kak!")
        .unwrap();
    assert_eq!(sent.body["to"], "62844");
    let wamid = crate::common::wamid_of(&app, "Siap, kak!").await;
    status_update(&app, SECRET, PHONE, &wamid, "62844", "delivered", app.state.now()).await;
    let thread = admin.get(&format!("/inbox/{id}?fragment=thread")).await.body;
    assert!(thread.contains("tick tick-delivered"), "delivered tick shown");

    // The customer wrote 25 hours ago: the window is closed, no free text, templates only.
    // (The database is moved rather than the clock, which would end the session too.)
    app.state
        .db
        .write(move |c| {
            c.execute(
                "UPDATE conversations SET last_inbound_at = last_inbound_at - 25 * 3600 WHERE id = ?1",
                [id],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let page = admin.get(&format!("/inbox/{id}")).await.body;
    assert!(
        !page.contains(&format!("action=\"/inbox/{id}/reply\"")),
        "no free-text form"
    );
    assert!(
        page.contains("order_ready (id)") && !page.contains("old_promo"),
        "approved templates only: {page}"
    );
    let r = admin
        .post(&format!("/inbox/{id}/reply"), &[("body", "halo lagi")])
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("window is closed"));
    // Preview, then a missing parameter is refused, then the template goes out.
    let path = format!("/inbox/{id}/template");
    let template = |p2: &'static str, action: &'static str| {
        let path = path.clone();
        let admin = admin.clone();
        async move {
            let fields = [
                ("template", "order_ready|id"),
                ("p1", "Dewi"),
                ("p2", p2),
                ("action", action),
            ];
            admin.post(&path, &fields).await
        }
    };
    let r = template("#77", "preview").await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Halo Dewi, pesanan #77 siap."), "preview filled in");
    let r = template("", "send").await;
    assert_eq!(r.status, 422);
    let r = template("#77", "send").await;
    assert_eq!(r.status, 303);
    graph
        .wait_for("the template", |s| {
            s.iter().any(|x| {
                x.body["template"]["name"] == "order_ready"
                    && x.body["template"]["components"][0]["parameters"][1]["text"] == "#77"
            })
        })
        .await;
    let thread = admin.get(&format!("/inbox/{id}?fragment=thread")).await.body;
    assert!(
        thread.contains("Halo Dewi, pesanan #77 siap."),
        "the thread shows the filled template"
    );
    // The API follows the same rule (a supervisor's key: answering gave the owner the
    // conversation, so an agent's key no longer sees it).
    let key = api_key(&admin, "supervisor").await;
    let (s, e) = api(
        &app,
        "POST",
        &format!("/api/v1/conversations/{id}/messages"),
        &key,
        Some(json!({"type": "text", "body": "halo"})),
    )
    .await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("inbox.window_closed")));
}

#[tokio::test]
async fn new_conversations_go_round_robin_within_the_cap() {
    let graph = FakeGraph::start();
    let (app, admin) = app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    app.create_user(&admin, "ani@toko.id", "agent").await;
    app.create_user(&admin, "budi@toko.id", "agent").await;
    let away = signed_in(&app, &admin, "cici@toko.id", "agent").await;
    assert_eq!(
        away.submit("/inbox", "/inbox/availability", &[("available", "0")])
            .await
            .status,
        303
    );
    let r = admin
        .submit(
            "/admin/inbox",
            "/admin/inbox",
            &[("auto_assign", "1"), ("read_receipts", "1"), ("assign_cap", "1")],
        )
        .await;
    assert_eq!(r.status, 303);
    for (i, from) in ["62801", "62802", "62803"].iter().enumerate() {
        customer(&app, &format!("wamid.rr{i}"), from, "Pelanggan", "halo").await;
    }
    let assigned: Vec<(String, Option<String>)> = app
        .state
        .db
        .read(|c| {
            let mut st = c.prepare(
                "SELECT k.wa_id, u.email FROM conversations c JOIN contacts k ON k.id = c.contact_id
                 LEFT JOIN users u ON u.id = c.assignee_id ORDER BY k.wa_id",
            )?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
        .unwrap();
    let who: Vec<Option<&str>> = assigned.iter().map(|(_, e)| e.as_deref()).collect();
    assert_eq!(
        who,
        vec![Some("ani@toko.id"), Some("budi@toko.id"), None],
        "in turn, skipping the away agent, none over the cap"
    );
    // Resolving frees a place: the next newcomer goes to that agent.
    let ani_conv = conversation_of(&app, "62801").await;
    let r = admin
        .submit(
            &format!("/inbox/{ani_conv}"),
            &format!("/inbox/{ani_conv}/status"),
            &[("status", "resolved")],
        )
        .await;
    assert_eq!(r.status, 303);
    customer(&app, "wamid.rr9", "62809", "Baru", "halo").await;
    let c = conversation_of(&app, "62809").await;
    let ani = user_id(&app, "ani@toko.id").await;
    let assignee = app
        .state
        .db
        .read(move |x| Ok(whacaster::inbox::access::find_assignee(x, c)?))
        .await
        .unwrap();
    assert_eq!(assignee, Some(Some(ani)));
    let thread = admin.get(&format!("/inbox/{c}?fragment=thread")).await.body;
    assert!(
        thread.contains("Assigned to Ani") || thread.contains("automatically"),
        "system event shown"
    );
    let audit = admin.get("/admin/audit").await.body;
    assert!(audit.contains("conversation.assign") && audit.contains("round-robin"));
    assert!(audit.contains("conversation.status"));
}

#[expect(clippy::too_many_lines, reason = "one scenario, told in order")]
#[tokio::test]
async fn labels_statuses_assignment_and_the_api_work_together() {
    let graph = FakeGraph::start();
    let (app, admin) = app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    let agent = signed_in(&app, &admin, "ani@toko.id", "agent").await;
    // Labels are for supervisors and admins to manage.
    assert_eq!(agent.get("/inbox/labels").await.status, 403);
    admin
        .submit(
            "/inbox/labels",
            "/inbox/labels",
            &[("name", "Pesanan"), ("color", "green")],
        )
        .await;
    let dup = admin
        .submit(
            "/inbox/labels",
            "/inbox/labels",
            &[("name", "pesanan"), ("color", "red")],
        )
        .await;
    assert_eq!(dup.status, 422, "names are unique regardless of case");
    customer(&app, "wamid.l1", "62855", "Eka", "pesan 2 kopi").await;
    let id = conversation_of(&app, "62855").await;
    let label: i64 = app
        .state
        .db
        .read(|c| Ok(c.query_row("SELECT id FROM labels", [], |r| r.get(0))?))
        .await
        .unwrap();
    let lid = label.to_string();
    let r = agent
        .submit(
            &format!("/inbox/{id}"),
            &format!("/inbox/{id}/labels"),
            &[("label_id", lid.as_str()), ("on", "1")],
        )
        .await;
    assert_eq!(r.status, 303);
    let list = agent.get(&format!("/inbox?tab=unassigned&label={label}")).await.body;
    // The filter form sends empty fields for "any": that is no filter, not an error.
    let any = agent
        .get("/inbox?tab=unassigned&status=all&number=&label=&unread=")
        .await;
    assert_eq!(any.status, 200);
    assert!(any.body.contains("Eka"));
    assert!(list.contains("Eka") && list.contains("Pesanan"));
    // Snooze, then the customer writes again: open again.
    let r = agent
        .post(
            &format!("/inbox/{id}/status"),
            &[("status", "snoozed"), ("snooze", "1h")],
        )
        .await;
    assert_eq!(r.status, 303);
    assert!(
        agent
            .get("/inbox?tab=unassigned&status=snoozed")
            .await
            .body
            .contains("Eka")
    );
    customer(&app, "wamid.l2", "62855", "Eka", "halo?").await;
    assert!(
        agent
            .get("/inbox?tab=unassigned&status=open")
            .await
            .body
            .contains("Eka")
    );
    // Unread: the agent has not opened the newest message yet.
    assert!(agent.get("/inbox?tab=unassigned&unread=1").await.body.contains("Eka"));
    agent.get(&format!("/inbox/{id}")).await;
    assert!(!agent.get("/inbox?tab=unassigned&unread=1").await.body.contains("Eka"));

    // API: list, assign, status, labels, messages, send.
    let key = api_key(&admin, "supervisor").await;
    let (s, list) = api(&app, "GET", "/api/v1/conversations?status=open", &key, None).await;
    assert_eq!(s, 200);
    assert_eq!(list["data"][0]["id"], id);
    assert_eq!(list["data"][0]["labels"][0]["name"], "Pesanan");
    let ani = user_id(&app, "ani@toko.id").await;
    let (s, v) = api(
        &app,
        "POST",
        &format!("/api/v1/conversations/{id}/assign"),
        &key,
        Some(json!({"assignee_id": ani})),
    )
    .await;
    assert_eq!((s, v["changed"].as_bool()), (200, Some(true)));
    assert!(
        agent.get("/inbox?tab=mine").await.body.contains("Eka"),
        "now in Ani's tab"
    );
    let (s, _) = api(
        &app,
        "POST",
        &format!("/api/v1/conversations/{id}/status"),
        &key,
        Some(json!({"status": "snoozed"})),
    )
    .await;
    assert_eq!(s, 400, "snooze needs a time");
    let (s, v) = api(
        &app,
        "POST",
        &format!("/api/v1/conversations/{id}/labels"),
        &key,
        Some(json!({"remove": [label]})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["labels"], json!([]));
    let (s, v) = api(
        &app,
        "POST",
        &format!("/api/v1/conversations/{id}/messages"),
        &key,
        Some(json!({"type": "text", "body": "Kopi siap diambil"})),
    )
    .await;
    assert_eq!((s, v["status"].as_str()), (202, Some("pending")));
    graph
        .wait_for("the API reply", |s| {
            s.iter().any(|x| x.body["text"]["body"] == "Kopi siap diambil")
        })
        .await;
    let (s, msgs) = api(
        &app,
        "GET",
        &format!("/api/v1/conversations/{id}/messages?limit=2"),
        &key,
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(msgs["data"][0]["body"], "Kopi siap diambil", "newest first");
    assert_eq!(msgs["data"][1]["body"], "halo?");
    let older = msgs["next_cursor"].as_i64().expect("more pages");
    let (_, page2) = api(
        &app,
        "GET",
        &format!("/api/v1/conversations/{id}/messages?cursor={older}"),
        &key,
        None,
    )
    .await;
    assert_eq!(page2["data"][0]["body"], "pesan 2 kopi");
    let (s, labels) = api(&app, "GET", "/api/v1/labels", &key, None).await;
    assert_eq!((s, labels["data"][0]["name"].as_str()), (200, Some("Pesanan")));
    // Everything above is in the audit log.
    let audit = admin.get("/admin/audit").await.body;
    for action in [
        "label.create",
        "conversation.label_added",
        "conversation.label_removed",
        "conversation.status",
        "conversation.assign",
    ] {
        assert!(audit.contains(action), "{action} audited");
    }
}

#[tokio::test]
async fn canned_responses_fill_in_the_contact() {
    let graph = FakeGraph::start();
    let (app, admin) = app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    let r = admin
        .submit(
            "/inbox/canned",
            "/inbox/canned",
            &[
                ("shortcut", "/Salam"),
                ("body", "Halo {{name}}, ada yang bisa dibantu?"),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    let bad = admin
        .submit("/inbox/canned", "/inbox/canned", &[("shortcut", "a b"), ("body", "x")])
        .await;
    assert_eq!(bad.status, 422);
    customer(&app, "wamid.c1", "62866", "Fajar", "halo").await;
    let id = conversation_of(&app, "62866").await;
    let page = admin.get(&format!("/inbox/{id}")).await.body;
    assert!(page.contains("data-shortcut=\"salam\""));
    assert!(
        page.contains("Halo Fajar, ada yang bisa dibantu?"),
        "placeholders filled for this contact"
    );
}

#[tokio::test]
async fn an_agent_starts_a_conversation_from_a_contact_with_a_template() {
    let graph = FakeGraph::start();
    let (app, admin) = app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    add_template(&app).await;
    let agent = signed_in(&app, &admin, "ani@toko.id", "agent").await;
    let r = agent
        .submit(
            "/contacts",
            "/contacts",
            &[("name", "Gita"), ("phone", "0812 7777 8888")],
        )
        .await;
    assert_eq!(r.status, 303);
    let contact = r.location().unwrap().split('?').next().unwrap().to_string();
    let page = agent.get(&contact).await.body;
    assert!(
        page.contains("/conversation\""),
        "the contact page offers a conversation"
    );
    let r = agent
        .post(&format!("{contact}/conversation"), &[("number", "999")])
        .await;
    assert_eq!(r.status, 400, "only a connected number");
    let r = agent
        .post(&format!("{contact}/conversation"), &[("number", PHONE)])
        .await;
    assert_eq!(r.status, 303);
    let conv = r.location().unwrap().to_string();
    let page = agent.get(&conv).await.body;
    // Someone who never wrote is told so (not "the window closed"), with why a
    // template is the only way to start.
    assert!(
        page.contains("This person has not written to this number yet") && !page.contains("window is closed"),
        "{page}"
    );
    let r = agent
        .post(
            &format!("{conv}/template"),
            &[
                ("template", "order_ready|id"),
                ("p1", "Gita"),
                ("p2", "#1"),
                ("action", "send"),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    graph
        .wait_for("the first template", |s| {
            s.iter()
                .any(|x| x.body["template"]["name"] == "order_ready" && x.body["to"] == "6281277778888")
        })
        .await;
    assert!(
        agent.get(&contact).await.body.contains(&format!("href=\"{conv}\"")),
        "listed on the contact"
    );
}

/// Posts the attachment form as a browser does: multipart, the CSRF token in the URL.
async fn attach(b: &Browser, id: i64, name: &str, mime: &str, bytes: &[u8], with_token: bool) -> crate::common::Resp {
    let page = b.get(&format!("/inbox/{id}")).await;
    let token = crate::common::csrf_in(&page.body).expect("token");
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes.to_vec())
                .file_name(name.to_string())
                .mime_str(mime)
                .unwrap(),
        )
        .text("caption", "foto produk");
    let url = if with_token {
        format!("{}/inbox/{id}/attach?csrf={token}", b.base)
    } else {
        format!("{}/inbox/{id}/attach", b.base)
    };
    let r = b.client.post(url).multipart(form).send().await.unwrap();
    crate::common::Resp {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        body: r.text().await.unwrap_or_default(),
    }
}

#[tokio::test]
async fn files_go_out_from_the_form_and_the_api_and_show_in_the_thread() {
    use base64::Engine;
    let graph = FakeGraph::start();
    let (app, admin) = app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    customer(&app, "wamid.f1", "62888", "Hana", "kirim fotonya dong").await;
    let id = conversation_of(&app, "62888").await;
    let png = b"\x89PNG\r\n\x1a\n a small picture";
    // Without the token in the URL the upload is refused; with it, it goes out.
    assert_eq!(
        attach(&admin, id, "produk.png", "image/png", png, false).await.status,
        403
    );
    let r = attach(&admin, id, "produk.png", "image/png", png, true).await;
    assert_eq!(r.status, 303, "{}", r.body);
    graph
        .wait_for("the picture", |s| {
            s.iter()
                .any(|x| x.body["type"] == "image" && x.body["image"]["caption"] == "foto produk")
        })
        .await;
    assert!(
        graph.seen().iter().any(|s| s.path.ends_with("/media")),
        "uploaded to Meta first"
    );
    let thread = admin.get(&format!("/inbox/{id}?fragment=thread")).await.body;
    let i = thread
        .find("<img class=\"media\" src=\"/media/")
        .expect("the picture is in the thread")
        + 31;
    let file: String = thread[i..].chars().take_while(char::is_ascii_digit).collect();
    let served = admin
        .client
        .get(format!("{}/media/{file}", admin.base))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(
        served.bytes().await.unwrap().as_ref(),
        png,
        "the sent file, decrypted for the team"
    );
    // Meta's limits are checked before anything is uploaded.
    let uploads = graph.seen().iter().filter(|s| s.path.ends_with("/media")).count();
    let r = attach(&admin, id, "anim.gif", "image/gif", b"GIF89a", true).await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("does not accept this file type"));
    assert_eq!(
        graph.seen().iter().filter(|s| s.path.ends_with("/media")).count(),
        uploads
    );
    // The API sends a document the same way.
    let key = api_key(&admin, "supervisor").await;
    let (s, v) = api(
        &app,
        "POST",
        &format!("/api/v1/conversations/{id}/messages"),
        &key,
        Some(
            json!({"type": "media", "filename": "nota.pdf", "mime_type": "application/pdf",
                    "data_base64": base64::engine::general_purpose::STANDARD.encode(b"%PDF-1.7 nota")}),
        ),
    )
    .await;
    assert_eq!((s, v["status"].as_str()), (202, Some("pending")), "{v}");
    graph
        .wait_for("the document", |s| {
            s.iter()
                .any(|x| x.body["type"] == "document" && x.body["document"]["filename"] == "nota.pdf")
        })
        .await;
    let (s, v) = api(
        &app,
        "POST",
        &format!("/api/v1/conversations/{id}/messages"),
        &key,
        Some(json!({"type": "media", "filename": "x.bin", "mime_type": "application/pdf", "data_base64": "***"})),
    )
    .await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("api.bad_base64")));
}

#[tokio::test]
async fn a_reply_quotes_the_message_it_answers_and_notes_stay_inside() {
    let graph = FakeGraph::start();
    let (app, admin) = app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    customer(&app, "wamid.q1", "62899", "Indra", "ukuran L ada?").await;
    customer(&app, "wamid.q2", "62899", "Indra", "warna hitam juga").await;
    let id = conversation_of(&app, "62899").await;
    let asked: i64 = app
        .state
        .db
        .read(|c| Ok(c.query_row("SELECT id FROM messages WHERE wamid = 'wamid.q1'", [], |r| r.get(0))?))
        .await
        .unwrap();
    // Without JavaScript: the "Reply" link shows what is being answered.
    let page = admin.get(&format!("/inbox/{id}?reply_to={asked}")).await.body;
    assert!(
        page.contains("ukuran L ada?</q>"),
        "the composer shows the quoted message"
    );
    let r = admin
        .post(
            &format!("/inbox/{id}/reply"),
            &[("body", "Ada, kak"), ("reply_to", &asked.to_string())],
        )
        .await;
    assert_eq!(r.status, 303);
    let r = admin
        .post(
            &format!("/inbox/{id}/note"),
            &[("body", "pelanggan lama, kasih diskon")],
        )
        .await;
    assert_eq!(r.status, 303);
    graph
        .wait_for("the quoted reply", |s| {
            s.iter()
                .any(|x| x.body["text"]["body"] == "Ada, kak" && x.body["context"]["message_id"] == "wamid.q1")
        })
        .await;
    let thread = admin.get(&format!("/inbox/{id}?fragment=thread")).await.body;
    assert!(thread.contains("<blockquote class=\"quote\">ukuran L ada?</blockquote>"));
    assert!(
        thread.contains("pelanggan lama, kasih diskon"),
        "the note is in the thread"
    );
    crate::common::outbox_idle(&app).await;
    assert!(
        graph
            .seen()
            .iter()
            .all(|s| !s.body.to_string().contains("kasih diskon")),
        "a note never reaches Meta"
    );
}

#[tokio::test]
async fn a_refused_file_keeps_the_message_it_answers() {
    let graph = FakeGraph::start();
    let (app, admin) = app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    customer(&app, "wamid.r1", "62877", "Joko", "fotonya mana?").await;
    let id = conversation_of(&app, "62877").await;
    let asked: i64 = app
        .state
        .db
        .read(|c| Ok(c.query_row("SELECT id FROM messages WHERE wamid = 'wamid.r1'", [], |r| r.get(0))?))
        .await
        .unwrap();
    let page = admin.get(&format!("/inbox/{id}?reply_to={asked}")).await;
    let token = crate::common::csrf_in(&page.body).expect("token");
    // Meta does not take a GIF: the page comes back with the draft, still answering.
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"GIF89a".to_vec())
                .file_name("anim.gif")
                .mime_str("image/gif")
                .unwrap(),
        )
        .text("caption", "ini fotonya")
        .text("reply_to", asked.to_string());
    let r = admin
        .client
        .post(format!("{}/inbox/{id}/attach?csrf={token}", admin.base))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let body = r.text().await.unwrap();
    assert!(body.contains("does not accept this file type"));
    assert!(
        body.contains("fotonya mana?</q>"),
        "the composer still shows the quoted message"
    );
    assert!(body.contains(&format!("name=\"reply_to\" value=\"{asked}\"")));
}

#[tokio::test]
async fn a_conversation_with_a_window_time_past_all_sense_still_opens() {
    let graph = FakeGraph::start();
    let (app, admin) = app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    customer(&app, "wamid.w1", "62866", "Rina", "halo").await;
    let id = conversation_of(&app, "62866").await;
    app.state
        .db
        .write(move |c| {
            Ok(c.execute(
                "UPDATE conversations SET last_inbound_at = ?2 WHERE id = ?1",
                rusqlite::params![id, i64::MAX - 5],
            )?)
        })
        .await
        .unwrap();
    let page = admin.get(&format!("/inbox/{id}")).await;
    assert_eq!(
        page.status, 200,
        "the window's deadline saturates instead of overflowing"
    );
}

#[tokio::test]
async fn every_kind_of_customer_message_has_its_bubble() {
    let graph = FakeGraph::start();
    let (app, admin) = app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    let now = app.state.now();
    let msg = |id: &str, kind: &str, body: Value| {
        let mut m = json!({"from": "62870", "id": id, "timestamp": now.to_string(), "type": kind});
        m[kind] = body;
        m
    };
    let messages = vec![
        msg("wamid.k1", "text", json!({"body": "halo"})),
        msg(
            "wamid.k2",
            "location",
            json!({"latitude": -6.9175, "longitude": 107.6191, "name": "Toko Bandung"}),
        ),
        msg(
            "wamid.k3",
            "contacts",
            json!([{"name": {"formatted_name": "Pak Joko"}, "phones": [{"phone": "+62 811 222"}]}]),
        ),
        msg("wamid.k4", "reaction", json!({"message_id": "wamid.k1", "emoji": "👍"})),
        msg(
            "wamid.k5",
            "interactive",
            json!({"type": "button_reply", "button_reply": {"id": "yes", "title": "Ya, pesan"}}),
        ),
        msg("wamid.k6", "unsupported", json!({"type": "poll"})),
    ];
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "62812", "phone_number_id": PHONE},
        "contacts": [{"profile": {"name": "Joni"}, "wa_id": "62870"}], "messages": messages}}]}]});
    crate::common::deliver(&app, SECRET, &body).await;
    let id = conversation_of(&app, "62870").await;
    let thread = admin.get(&format!("/inbox/{id}?fragment=thread")).await.body;
    assert!(
        thread.contains("https://www.openstreetmap.org/?mlat=-6.917500"),
        "location link: {thread}"
    );
    assert!(thread.contains("Toko Bandung"));
    assert!(thread.contains("<strong>Pak Joko</strong> +62 811 222"), "contact card");
    let halo = thread.find(">halo</p>").expect("the text bubble");
    let bubble_end = thread[halo..].find("</li>").unwrap() + halo;
    assert!(
        thread[halo..bubble_end].contains("👍"),
        "the reaction sits on the message it reacts to"
    );
    assert!(thread.contains("↩ Ya, pesan"), "interactive reply");
    assert!(
        thread.contains("Message type not supported"),
        "unsupported shown as such"
    );
}

#[tokio::test]
async fn pages_of_conversations_and_of_a_thread_cover_everything_once() {
    let graph = FakeGraph::start();
    let (app, admin) = app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    let now = app.state.now();
    // 55 conversations; the last one has 70 messages.
    app.state
        .db
        .write(move |c| {
            whacaster::inbox::seed::fill(c, PHONE, 54, 1, now)?;
            whacaster::inbox::seed::fill(c, PHONE, 1, 70, now + 60)?;
            Ok(())
        })
        .await
        .unwrap();
    let first = admin.get("/inbox?tab=all&status=all").await.body;
    let next = first
        .split("before=")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a link to older conversations")
        .to_string();
    let second = admin
        .get(&format!("/inbox?tab=all&status=all&before={next}"))
        .await
        .body;
    let ids = |page: &str| -> Vec<String> {
        page.split("<a href=\"/inbox/")
            .skip(1)
            .filter_map(|p| p.split('"').next())
            .filter(|p| p.chars().all(|c| c.is_ascii_digit()))
            .map(str::to_string)
            .collect()
    };
    let (a, b) = (ids(&first), ids(&second));
    assert_eq!((a.len(), b.len()), (50, 5));
    assert!(a.iter().all(|x| !b.contains(x)), "no conversation on both pages");
    assert!(!second.contains("before="), "nothing after the last page");
    // The busy conversation shows its newest 60 messages, and the rest behind "older".
    let busy = conversation_of(&app, "6281200000055").await;
    let page = admin.get(&format!("/inbox/{busy}")).await.body;
    assert_eq!(page.matches("class=\"bubble ").count(), 60);
    assert!(
        page.contains("#55-69<") && page.contains("#55-10<") && !page.contains("#55-9<"),
        "the newest 60"
    );
    let older = page
        .split(&format!("/inbox/{busy}?before="))
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("older link")
        .to_string();
    let page2 = admin.get(&format!("/inbox/{busy}?before={older}")).await.body;
    assert_eq!(page2.matches("class=\"bubble ").count(), 10);
    assert!(
        page2.contains("#55-0<") && page2.contains("#55-9<") && !page2.contains("#55-10<"),
        "the oldest 10"
    );
}

#[tokio::test]
async fn contact_labels_phone_search_and_receipts_off() {
    let graph = FakeGraph::start();
    let (app, admin) = app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    let r = admin
        .submit("/admin/inbox", "/admin/inbox", &[("assign_cap", "20")])
        .await;
    assert_eq!(r.status, 303, "read receipts off");
    admin
        .submit(
            "/inbox/labels",
            "/inbox/labels",
            &[("name", "Grosir"), ("color", "blue")],
        )
        .await;
    customer(&app, "wamid.p1", "6281299887766", "Kiki", "mau beli banyak").await;
    let id = conversation_of(&app, "6281299887766").await;
    let label: i64 = app
        .state
        .db
        .read(|c| Ok(c.query_row("SELECT id FROM labels", [], |r| r.get(0))?))
        .await
        .unwrap();
    let r = admin
        .submit(
            &format!("/inbox/{id}"),
            &format!("/inbox/{id}/labels"),
            &[("label_id", &label.to_string()), ("on", "1"), ("target", "contact")],
        )
        .await;
    assert_eq!(r.status, 303);
    let contact: i64 = app
        .state
        .db
        .read(|c| Ok(c.query_row("SELECT id FROM contacts", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert!(
        admin
            .get(&format!("/contacts/{contact}"))
            .await
            .body
            .contains(">Grosir</span>")
    );
    assert!(admin.get("/admin/audit").await.body.contains("contact.label_added"));
    // The number typed the local way finds the conversation, marked.
    let found = admin.get("/inbox?tab=all&q=0812%209988").await.body;
    assert!(found.contains(&format!("href=\"/inbox/{id}\"")), "found by phone");
    assert!(found.contains("<mark>"), "the match is marked");
    // The admin turned read receipts off: opening sent none.
    crate::common::outbox_idle(&app).await;
    assert!(
        graph.seen().iter().all(|s| s.body["status"] != "read"),
        "no blue ticks sent"
    );
}

/// Issue 14.14: a place's name in the list is marked as a place, not read as a name.
#[tokio::test]
async fn the_list_marks_a_location_preview_as_a_place() {
    let graph = FakeGraph::start();
    let (app, admin) = app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    let now = app.state.now();
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "62812", "phone_number_id": PHONE},
        "contacts": [{"profile": {"name": "Joni"}, "wa_id": "62871"}],
        "messages": [{"from": "62871", "id": "wamid.loc1", "timestamp": now.to_string(), "type": "location",
                      "location": {"latitude": -6.9, "longitude": 107.6, "name": "Rumah Bu Sari"}}]}}]}]});
    crate::common::deliver(&app, SECRET, &body).await;
    let list = admin.get("/inbox?tab=unassigned").await.body;
    assert!(list.contains("📍 Rumah Bu Sari"), "{list}");
}

/// Issue 14.8: the inbox opens where a customer waits, whoever answers an unassigned
/// conversation takes it, and an agent signs in to the inbox, not a security dashboard.
#[tokio::test]
async fn the_inbox_opens_where_a_customer_waits_and_answering_takes_it() {
    let graph = FakeGraph::start();
    let (app, admin) = app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    let agent = signed_in(&app, &admin, "agen@toko.id", "agent").await;
    assert_eq!(
        agent.get("/").await.location(),
        Some("/inbox"),
        "an agent lands on the work"
    );
    assert!(
        !agent.get("/inbox").await.body.contains(">Dashboard<"),
        "no dashboard link for agents"
    );
    assert_eq!(admin.get("/").await.status, 200, "the owner keeps the dashboard");
    customer(&app, "wamid.w1", "62881", "Rina", "Kak, masih ada stok?").await;
    let list = admin.get("/inbox").await.body;
    assert!(
        list.contains(r#"name="tab" value="unassigned""#),
        "nothing of mine, someone waiting: the Unassigned tab"
    );
    assert!(list.contains("Rina"));
    assert!(
        admin
            .get("/inbox?tab=mine")
            .await
            .body
            .contains(r#"name="tab" value="mine""#),
        "a chosen tab stays chosen"
    );
    let id = conversation_of(&app, "62881").await;
    let page = format!("/inbox/{id}");
    let r = agent
        .submit(&page, &format!("{page}/reply"), &[("body", "Ada, Kak!")])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let agen = user_id(&app, "agen@toko.id").await;
    let assignee = app
        .state
        .db
        .read(move |c| Ok(whacaster::inbox::access::find_assignee(c, id)?))
        .await
        .unwrap();
    assert_eq!(assignee, Some(Some(agen)), "the one who answered has it");
    // Someone else's conversation stays theirs when a supervisor answers too.
    let sup = signed_in(&app, &admin, "sup@toko.id", "supervisor").await;
    let r = sup
        .submit(&page, &format!("{page}/reply"), &[("body", "Dibantu ya")])
        .await;
    assert_eq!(r.status, 303);
    let assignee = app
        .state
        .db
        .read(move |c| Ok(whacaster::inbox::access::find_assignee(c, id)?))
        .await
        .unwrap();
    assert_eq!(assignee, Some(Some(agen)), "not taken from whoever has it");
}

/// Issue 14.7: nothing is cut silently: a too-long reply keeps the draft and names the
/// limit; the reply box and the label name have counters.
#[tokio::test]
async fn a_too_long_reply_names_the_limit_and_keeps_the_draft() {
    let graph = FakeGraph::start();
    let (app, admin) = app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    customer(&app, "wamid.l1", "62882", "Tono", "Halo").await;
    let id = conversation_of(&app, "62882").await;
    let page = format!("/inbox/{id}");
    let html = admin.get(&page).await.body;
    assert!(html.contains(r#"data-limit="4096""#) && html.contains(r#"data-counter-for="body""#));
    assert!(
        !html.contains(r#"maxlength="4096""#),
        "the browser does not cut a paste silently"
    );
    let long = "a".repeat(4097);
    let r = admin.submit(&page, &format!("{page}/reply"), &[("body", &long)]).await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("at most 4,096 characters"), "names the limit");
    assert!(r.body.contains(&long), "the draft is kept");
    let r = admin
        .submit(
            "/inbox/labels",
            "/inbox/labels",
            &[("name", &"x".repeat(41)), ("color", "green")],
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("at most 40 characters"));
}

/// Issue 14.3: a reply that cannot go out says so in the reader's language, shows it is
/// retrying, marks the conversation in the list, and can be tried again, once.
#[tokio::test]
#[expect(clippy::too_many_lines, reason = "one failed reply's story, from retrying to sent")]
async fn a_failed_reply_says_why_and_can_be_tried_again() {
    use crate::fake_graph::{Fault, meta_error};
    let graph = FakeGraph::start();
    let (app, admin) = app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    customer(&app, "wamid.f1", "62883", "Dewi", "Pesanan saya?").await;
    let id = conversation_of(&app, "62883").await;
    let page = format!("/inbox/{id}");
    // Meta asks to slow down, again and again: "trying again", with the plain reason.
    graph.inject(Fault {
        path: "/messages".into(),
        body_contains: Some("pelan".into()),
        status: 400,
        answer: meta_error(130_429, "Rate limit hit", ""),
        times: None,
        delay_ms: 0,
    });
    admin
        .submit(&page, &format!("{page}/reply"), &[("body", "pelan-pelan")])
        .await;
    let mut thread = String::new();
    for _ in 0..200 {
        thread = admin.get(&format!("{page}?fragment=thread")).await.body;
        if thread.contains("tick-retrying") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(thread.contains("Not sent yet: trying again"), "{thread}");
    assert!(thread.contains("Too many messages too fast"));
    assert!(!thread.contains("/retry\""), "no Try again while it retries by itself");
    // A number that is not on WhatsApp: failed, in plain words, both languages.
    graph.inject(Fault {
        path: "/messages".into(),
        body_contains: Some("sekali".into()),
        status: 400,
        answer: meta_error(131_026, "Message undeliverable", ""),
        times: Some(1),
        delay_ms: 0,
    });
    admin
        .submit(&page, &format!("{page}/reply"), &[("body", "sekali lagi")])
        .await;
    for _ in 0..200 {
        thread = admin.get(&format!("{page}?fragment=thread")).await.body;
        if thread.contains("tick-failed") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(thread.contains("could not be reached on WhatsApp"), "{thread}");
    assert!(!thread.contains("gave up after"), "no developer text up front");
    assert!(
        thread.contains("Details from Meta"),
        "Meta's text stays behind a disclosure"
    );
    let list = admin.get("/inbox?tab=all").await.body;
    assert!(list.contains("class=\"trouble\""), "the list marks the conversation");
    // The number page's counts lead to those messages, and on to their conversation.
    let number = admin.get("/admin/whatsapp/1").await.body;
    assert!(
        number.contains("/admin/whatsapp/1/outbox?state=failed"),
        "the failed count is a link"
    );
    let failed = admin.get("/admin/whatsapp/1/outbox?state=failed").await.body;
    assert!(failed.contains("could not be reached on WhatsApp"), "{failed}");
    let i = failed.find("/inbox/outbox/").unwrap();
    let link: String = failed[i..].split('"').next().unwrap().to_string();
    assert_eq!(admin.get(&link).await.location(), Some(page.as_str()));
    assert_eq!(admin.get("/admin/whatsapp/1/outbox?state=bogus").await.status, 400);
    admin
        .submit("/account", "/account", &[("name", "Budi Santoso"), ("locale", "id")])
        .await;
    let id_thread = admin.get(&format!("{page}?fragment=thread")).await.body;
    assert!(
        id_thread.contains("tidak dapat dihubungi di WhatsApp"),
        "in Indonesian: {id_thread}"
    );
    // Try again: the same bubble is queued again and goes out (the fault was once).
    let message: i64 = app
        .state
        .db
        .read(|c| Ok(c.query_row("SELECT id FROM messages WHERE body = 'sekali lagi'", [], |r| r.get(0))?))
        .await
        .unwrap();
    let retry = format!("{page}/messages/{message}/retry");
    let r = admin.submit(&page, &retry, &[]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    graph
        .wait_for("the second try", |s| {
            s.iter().filter(|x| x.body["text"]["body"] == "sekali lagi").count() == 2
        })
        .await;
    let wamid = crate::common::wamid_of(&app, "sekali lagi").await;
    assert!(!wamid.is_empty());
    let r = admin.submit(&page, &retry, &[]).await;
    assert_eq!(r.status, 422, "a sent message is never tried again");
    let bubbles: i64 = app
        .state
        .db
        .read(|c| {
            Ok(
                c.query_row("SELECT count(*) FROM messages WHERE body = 'sekali lagi'", [], |r| {
                    r.get(0)
                })?,
            )
        })
        .await
        .unwrap();
    assert_eq!(bubbles, 1, "one bubble, not two");
}
