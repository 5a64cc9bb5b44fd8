//! Templates made in the app, through the real server against the fake Graph API: every
//! check named (and nothing sent to Meta), the create body Meta receives (positional and
//! named), a media header through the Resumable Upload API, Meta's 100 per hour, Meta's
//! refusal as one line, the three template webhooks, deleting, the API and the roles.

use crate::common::{Browser, Resp, TestApp, app_with_number, csrf_in, deliver, inbound_text};
use crate::fake_graph::{FakeGraph, meta_error};
use serde_json::{Value, json};

const SECRET: &str = "tpl-app-secret";
const PHONE: &str = "106540352242922";
const WABA: &str = "102290129340398";
const APP_ID: &str = "778899001122334";

/// Posts the template form (multipart, the CSRF token in the action URL, as the page does).
async fn submit(b: &Browser, fields: &[(&str, &str)], file: Option<(&str, &str, &[u8])>) -> Resp {
    let page = b.get("/templates/new").await;
    let token = csrf_in(&page.body).unwrap_or_else(|| panic!("form page {}: {}", page.status, page.body));
    let mut form = reqwest::multipart::Form::new();
    for (k, v) in fields {
        form = form.text((*k).to_string(), (*v).to_string());
    }
    if let Some((name, mime, bytes)) = file {
        let part = reqwest::multipart::Part::bytes(bytes.to_vec())
            .file_name(name.to_string())
            .mime_str(mime)
            .unwrap();
        form = form.part("file", part);
    }
    let r = b
        .client
        .post(format!("{}/templates/new?csrf={token}", b.base))
        .multipart(form)
        .send()
        .await
        .unwrap();
    Resp {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        body: r.text().await.unwrap_or_default(),
    }
}

/// A good positional utility template, with `extra` fields replacing or adding to it.
fn fields<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut f: Vec<(&str, &str)> = vec![
        ("action", "submit"),
        ("name", "order_update"),
        ("category", "UTILITY"),
        ("language", "id"),
        ("header_format", "none"),
        ("body", "Halo {{1}}, pesanan {{2}} sudah dikirim."),
        ("example_1", "Budi"),
        ("example_2", "#77"),
    ];
    for (k, v) in extra {
        f.retain(|(fk, _)| fk != k);
        f.push((k, v));
    }
    f
}

async fn app() -> (FakeGraph, TestApp, Browser) {
    let graph = FakeGraph::start();
    let (app, admin) = app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    (graph, app, admin)
}

/// Saves the Meta app id in the number's settings (the secrets stay as they are).
async fn set_app_id(admin: &Browser, app_id: &str) {
    let r = admin
        .submit(
            "/admin/whatsapp/1",
            "/admin/whatsapp/1",
            &[
                ("display_name", "Toko Maju CS"),
                ("phone_number_id", PHONE),
                ("waba_id", WABA),
                ("business_manager_id", "506914307656634"),
                ("mps", "80"),
                ("meta_app_id", app_id),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "number saved: {}", r.body);
}

fn creations(graph: &FakeGraph) -> Vec<crate::fake_graph::Seen> {
    graph
        .seen()
        .into_iter()
        .filter(|s| s.method == "POST" && s.path.ends_with("/message_templates"))
        .collect()
}

async fn one(app: &TestApp, sql: &'static str) -> Vec<String> {
    app.state
        .db
        .read(move |c| {
            let mut st = c.prepare(sql)?;
            let rows = st.query_map([], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
        .unwrap()
}

async fn template_id(app: &TestApp, name: &str) -> i64 {
    let n = name.to_string();
    app.state
        .db
        .read(move |c| Ok(c.query_row("SELECT id FROM wa_templates WHERE name = ?1", [n], |r| r.get(0))?))
        .await
        .unwrap()
}

#[tokio::test]
async fn every_problem_is_named_and_nothing_reaches_meta() {
    let (graph, _app, admin) = app().await;
    let long_header = "H".repeat(61);
    let long_footer = "F".repeat(61);
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("name", "Promo Lebaran")],
            "use only lowercase letters, digits and underscores",
        ),
        (
            vec![("body", "Halo {{1}}, kode {{3}} ya."), ("example_3", "X")],
            "Numbered variables must go 1, 2, 3… without gaps: {{2}} is missing.",
        ),
        (
            vec![("body", "{{1}} dan {{2}} siap.")],
            "must not start with a variable",
        ),
        (
            vec![("body", "Pesanan {{1}} siap untuk {{2}}")],
            "must not end with a variable",
        ),
        (
            vec![("body", "Halo {{1}}{{2}} siap.")],
            "{{1}} and {{2}} are side by side",
        ),
        (
            vec![
                ("body", "Halo {{first_name}}, pesanan {{2}} siap."),
                ("example_first_name", "Budi"),
            ],
            "Use one kind of variable",
        ),
        (vec![("example_2", "")], "Give an example for {{2}}."),
        (
            vec![("header_format", "text"), ("header_text", &long_header)],
            "The header has 61 characters; at most 60.",
        ),
        (
            vec![
                ("header_format", "text"),
                ("header_text", "Hai {{1}} {{2}}"),
                ("header_example", "Budi"),
            ],
            "The header may have only one variable.",
        ),
        (
            vec![("footer", &long_footer)],
            "The footer has 61 characters; at most 60.",
        ),
        (
            vec![
                ("button_type_0", "url"),
                ("button_text_0", "Lacak"),
                ("button_value_0", "https://toko.id/{{1}}/lacak"),
                ("button_example_0", "A1"),
            ],
            "a link may have one variable, {{1}}, only at the very end of the address.",
        ),
        (
            vec![
                ("button_type_0", "phone"),
                ("button_text_0", "Telepon"),
                ("button_value_0", "0812"),
            ],
            "write the phone number in international form",
        ),
    ];
    for (extra, message) in cases {
        let r = submit(&admin, &fields(&extra), None).await;
        assert_eq!(r.status, 422, "{extra:?}: {}", r.body);
        assert!(r.body.contains(message), "{extra:?} names {message:?}: {}", r.body);
    }
    // Eleven quick replies: over both the quick-reply and the total limit.
    let names: Vec<String> = (0..11).map(|i| format!("button_type_{i}")).collect();
    let texts: Vec<String> = (0..11).map(|i| format!("button_text_{i}")).collect();
    let mut many = fields(&[]);
    for i in 0..11 {
        many.push((&names[i], "quick_reply"));
        many.push((&texts[i], "Ya"));
    }
    let r = submit(&admin, &many, None).await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("At most 10 quick-reply buttons.") && r.body.contains("At most 10 buttons in all."));
    // In Bahasa Indonesia for a user who reads it.
    let r = admin
        .submit("/account", "/account", &[("name", "Budi"), ("locale", "id")])
        .await;
    assert_eq!(r.status, 303);
    let r = submit(&admin, &fields(&[("body", "{{1}} dan {{2}} siap.")]), None).await;
    assert!(r.body.contains("Pesan tidak boleh diawali variabel"), "{}", r.body);
    // "Preview" (without JavaScript) shows the bubble filled in and the problems; sends nothing.
    let r = submit(&admin, &fields(&[("action", "preview"), ("footer", "Toko Maju")]), None).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Halo Budi, pesanan #77 sudah dikirim.") && r.body.contains("Toko Maju"));
    assert!(creations(&graph).is_empty(), "nothing was sent to Meta");
}

#[expect(clippy::too_many_lines, reason = "one scenario, told in order")]
#[tokio::test]
async fn a_text_template_goes_to_meta_as_meta_wants_and_is_listed_at_once() {
    let (graph, app, admin) = app().await;
    let r = submit(
        &admin,
        &fields(&[
            ("header_format", "text"),
            ("header_text", "Pesanan {{1}}"),
            ("header_example", "#77"),
            ("footer", "Toko Maju Jaya"),
            ("button_type_0", "quick_reply"),
            ("button_text_0", "Terima kasih"),
            ("button_type_1", "url"),
            ("button_text_1", "Lacak paket"),
            ("button_value_1", "https://toko.id/lacak/{{1}}"),
            ("button_example_1", "A1B2"),
            ("button_type_2", "phone"),
            ("button_text_2", "Telepon toko"),
            ("button_value_2", "+6281234567890"),
            ("button_type_3", "copy_code"),
            ("button_value_3", "HEMAT10"),
        ]),
        None,
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let page_path = r.location().unwrap().split('?').next().unwrap().to_string();
    let sent = creations(&graph);
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].path.ends_with(&format!("/{WABA}/message_templates")),
        "{}",
        sent[0].path
    );
    assert_eq!(sent[0].authorization, "Bearer tok");
    assert_eq!(
        sent[0].body,
        json!({"name": "order_update", "language": "id", "category": "UTILITY", "parameter_format": "positional",
            "components": [
                {"type": "HEADER", "format": "TEXT", "text": "Pesanan {{1}}", "example": {"header_text": ["#77"]}},
                {"type": "BODY", "text": "Halo {{1}}, pesanan {{2}} sudah dikirim.", "example": {"body_text": [["Budi", "#77"]]}},
                {"type": "FOOTER", "text": "Toko Maju Jaya"},
                {"type": "BUTTONS", "buttons": [
                    {"type": "QUICK_REPLY", "text": "Terima kasih"},
                    {"type": "URL", "text": "Lacak paket", "url": "https://toko.id/lacak/{{1}}", "example": ["https://toko.id/lacak/A1B2"]},
                    {"type": "PHONE_NUMBER", "text": "Telepon toko", "phone_number": "+6281234567890"},
                    {"type": "COPY_CODE", "example": "HEMAT10"}]}]})
    );
    // Stored with Meta's id, in review, on the list at once; the page shows the preview.
    let stored = one(
        &app,
        "SELECT meta_id || ' ' || status FROM wa_templates WHERE name = 'order_update'",
    )
    .await;
    assert_eq!(stored, ["1900000000000001 PENDING"]);
    let list = admin.get("/templates").await;
    assert!(
        list.body.contains("order_update") && list.body.contains("In review"),
        "{}",
        list.body
    );
    let page = admin.get(&page_path).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Halo Budi, pesanan #77 sudah dikirim.") && page.body.contains("Pesanan #77"));
    assert!(
        page.body.contains("Meta has not approved it yet."),
        "not usable while pending"
    );
    let audit = one(
        &app,
        "SELECT action || ' ' || target FROM audit_log WHERE action = 'template.create'",
    )
    .await;
    assert_eq!(audit.len(), 1);
    assert!(audit[0].contains("order_update/id"), "{audit:?}");
    // Named variables: Meta gets parameter_format named and the named examples.
    let r = submit(
        &admin,
        &fields(&[
            ("name", "welcome_named"),
            ("category", "MARKETING"),
            ("body", "Halo {{first_name}}, kode promo kamu {{code}} ya."),
            ("example_first_name", "Siti"),
            ("example_code", "LEBARAN"),
        ]),
        None,
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let named = &creations(&graph)[1].body;
    assert_eq!(named["parameter_format"], "named");
    assert_eq!(named["category"], "MARKETING");
    assert_eq!(
        named["components"][0]["example"],
        json!({"body_text_named_params": [{"param_name": "first_name", "example": "Siti"}, {"param_name": "code", "example": "LEBARAN"}]})
    );
    // The same name and language again: said here, not sent.
    let r = submit(&admin, &fields(&[]), None).await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("already exists in this account"));
    assert_eq!(creations(&graph).len(), 2);
    // Meta's refusal is one line on the form, not an error page.
    graph.inject(crate::fake_graph::Fault {
        path: "message_templates".into(),
        body_contains: Some("promo_ditolak".into()),
        status: 400,
        answer: meta_error(100, "Invalid parameter", "Message template language is not supported"),
        times: Some(1),
        delay_ms: 0,
    });
    let r = submit(&admin, &fields(&[("name", "promo_ditolak")]), None).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("Meta refused it:") && r.body.contains("Message template language is not supported"));
    assert_eq!(
        one(&app, "SELECT name FROM wa_templates WHERE name = 'promo_ditolak'")
            .await
            .len(),
        0
    );
}

#[tokio::test]
async fn a_media_header_sample_goes_through_the_resumable_upload() {
    let (graph, app, admin) = app().await;
    let png = b"\x89PNG\r\n\x1a\nnot really a picture but bytes all the same";
    let media = fields(&[("header_format", "image"), ("name", "promo_gambar")]);
    // Without the Meta app id there is no upload: said before anything is sent.
    let r = submit(&admin, &media, Some(("promo.png", "image/png", png))).await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("A media header needs the Meta app ID"), "{}", r.body);
    let r = submit(&admin, &media, None).await;
    assert!(r.body.contains("Choose a sample file for the media header."));
    set_app_id(&admin, APP_ID).await;
    let r = submit(&admin, &media, Some(("promo.gif", "image/gif", png))).await;
    assert_eq!(r.status, 422);
    assert!(
        r.body
            .contains("cannot be a sample for this header: use image/jpeg, image/png")
    );
    assert!(
        graph.seen().iter().all(|s| !s.path.contains("uploads")),
        "no upload yet"
    );
    let r = submit(&admin, &media, Some(("promo.png", "image/png", png))).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let seen = graph.seen();
    let session = seen
        .iter()
        .find(|s| s.path.ends_with(&format!("/{APP_ID}/uploads")))
        .expect("an upload session on the app");
    assert_eq!(session.method, "POST");
    assert!(
        session.query.contains(&format!("file_length={}", png.len())),
        "{}",
        session.query
    );
    assert!(session.query.contains("file_type=image%2Fpng"), "{}", session.query);
    let bytes = seen
        .iter()
        .find(|s| s.path.contains("/upload:"))
        .expect("the bytes sent");
    assert_eq!(bytes.raw, png.to_vec());
    assert_eq!(bytes.file_offset.as_deref(), Some("0"));
    assert_eq!(bytes.authorization, "OAuth tok");
    let created = creations(&graph);
    assert_eq!(
        created[0].body["components"][0],
        json!({"type": "HEADER", "format": "IMAGE", "example": {"header_handle": [format!("4::aGFuZGxl:{}", png.len())]}})
    );
    assert_eq!(
        one(
            &app,
            "SELECT header_format FROM wa_templates WHERE name = 'promo_gambar'"
        )
        .await,
        ["IMAGE"]
    );
}

#[tokio::test]
async fn meta_allows_one_hundred_creations_an_hour() {
    let (graph, app, admin) = app().await;
    let now = app.state.now();
    app.state
        .db
        .write(move |c| {
            for i in 0..100 {
                c.execute(
                    "INSERT INTO wa_template_creations (waba_id, at) VALUES (?1, ?2)",
                    rusqlite::params![WABA, now - 3000 + i],
                )?;
            }
            Ok(())
        })
        .await
        .unwrap();
    let r = submit(&admin, &fields(&[]), None).await;
    assert_eq!(r.status, 422);
    assert!(
        r.body
            .contains("Meta allows 100 new templates per hour for this account: limit reached, try again at"),
        "{}",
        r.body
    );
    let at = r.body.split("try again at ").nth(1).unwrap();
    assert!(
        at.as_bytes()[..5]
            .iter()
            .enumerate()
            .all(|(i, b)| if i == 2 { *b == b':' } else { b.is_ascii_digit() }),
        "a time of day (HH:MM): {at:.20}"
    );
    assert!(creations(&graph).is_empty());
    // An hour on, the oldest have aged out.
    app.state
        .db
        .write(|c| {
            Ok(c.execute("UPDATE wa_template_creations SET at = at - 3600", [])
                .map(|_| ())?)
        })
        .await
        .unwrap();
    assert_eq!(submit(&admin, &fields(&[]), None).await.status, 303);
    assert_eq!(creations(&graph).len(), 1);
}

#[expect(clippy::needless_pass_by_value, reason = "the callers build the JSON in place")]
fn template_news(field: &str, value: Value) -> Value {
    json!({"object": "whatsapp_business_account", "entry": [{"id": WABA, "time": 1_767_230_000, "changes": [
        {"field": field, "value": value}]}]})
}

#[expect(clippy::too_many_lines, reason = "one scenario, told in order")]
#[tokio::test]
async fn the_three_template_webhooks_change_the_stored_template() {
    let (graph, app, admin) = app().await;
    assert_eq!(submit(&admin, &fields(&[]), None).await.status, 303);
    assert_eq!(
        submit(
            &admin,
            &fields(&[("name", "winter_sale"), ("category", "MARKETING")]),
            None
        )
        .await
        .status,
        303
    );
    let id = template_id(&app, "order_update").await;
    let meta_id: u64 = 1_900_000_000_000_001;
    // APPROVED, named by Meta's id (a number in webhooks).
    graph.update_template("1900000000000001", |t| t["status"] = json!("APPROVED"));
    deliver(
        &app,
        SECRET,
        &template_news(
            "message_template_status_update",
            json!({"event": "APPROVED", "message_template_id": meta_id, "message_template_name": "order_update",
                   "message_template_language": "id", "reason": "NONE", "message_template_category": "UTILITY"}),
        ),
    )
    .await;
    let page = admin.get(&format!("/templates/{id}")).await.body;
    assert!(page.contains("Approved by Meta: it can be sent."), "{page}");
    // The inbox offers it to agents now.
    inbound_text(
        &app,
        SECRET,
        PHONE,
        "wamid.t1",
        "62811",
        "Dewi",
        app.state.now(),
        "halo",
    )
    .await;
    let conv: i64 = app
        .state
        .db
        .read(|c| Ok(c.query_row("SELECT id FROM conversations", [], |r| r.get(0))?))
        .await
        .unwrap();
    let inbox = admin.get(&format!("/inbox/{conv}")).await.body;
    assert!(inbox.contains("order_update|id"), "the picker offers it");
    // REJECTED with Meta's reason and words (the other template).
    graph.update_template("1900000000000002", |t| {
        t["status"] = json!("REJECTED");
        t["rejected_reason"] = json!("INVALID_FORMAT");
    });
    deliver(
        &app,
        SECRET,
        &template_news(
            "message_template_status_update",
            json!({"event": "REJECTED", "message_template_id": 1_900_000_000_000_002_u64, "message_template_name": "winter_sale",
                   "message_template_language": "id", "reason": "INVALID_FORMAT", "message_template_category": "MARKETING",
                   "rejection_info": {"reason": "Two variables are adjacent with no text between them.",
                                      "recommendation": "Put descriptive words between variables."}}),
        ),
    )
    .await;
    let winter = template_id(&app, "winter_sale").await;
    let page = admin.get(&format!("/templates/{winter}")).await.body;
    assert!(page.contains("Invalid format") && page.contains("Two variables are adjacent with no text between them."));
    assert!(page.contains("Put descriptive words between variables."), "{page}");
    let list = admin.get("/templates").await.body;
    assert!(
        list.contains("Rejected") && list.contains("Two variables are adjacent"),
        "{list}"
    );
    // The periodic sync agrees with Meta and keeps what the webhook said (same row, same words).
    let r = admin
        .submit("/admin/whatsapp/1", "/admin/whatsapp/1/templates/sync", &[])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(template_id(&app, "winter_sale").await, winter, "updated in place");
    let page = admin.get(&format!("/templates/{winter}")).await.body;
    assert!(
        page.contains("Rejected") && page.contains("Put descriptive words between variables."),
        "{page}"
    );
    assert!(
        admin.get("/templates").await.body.contains("order_shipped"),
        "and brings Meta's others"
    );
    // Quality, named by name and language (Meta writes en-US style; here plain id).
    graph.update_template("1900000000000001", |t| t["quality_score"] = json!({"score": "YELLOW"}));
    deliver(
        &app,
        SECRET,
        &template_news(
            "message_template_quality_update",
            json!({"previous_quality_score": "UNKNOWN", "new_quality_score": "YELLOW",
                   "message_template_name": "order_update", "message_template_language": "id"}),
        ),
    )
    .await;
    assert!(admin.get(&format!("/templates/{id}")).await.body.contains("Medium"));
    // A category change announced, then done.
    deliver(
        &app,
        SECRET,
        &template_news(
            "template_category_update",
            json!({"message_template_id": meta_id, "message_template_name": "order_update", "message_template_language": "id",
                   "correct_category": "MARKETING", "new_category": "MARKETING", "category_update_timestamp": 1_767_400_000}),
        ),
    )
    .await;
    assert!(
        admin
            .get(&format!("/templates/{id}"))
            .await
            .body
            .contains("Meta will change the category to Marketing on")
    );
    graph.update_template("1900000000000001", |t| t["category"] = json!("MARKETING"));
    deliver(
        &app,
        SECRET,
        &template_news(
            "template_category_update",
            json!({"message_template_id": meta_id, "message_template_name": "order_update", "message_template_language": "id",
                   "previous_category": "UTILITY", "new_category": "MARKETING"}),
        ),
    )
    .await;
    assert_eq!(
        one(
            &app,
            "SELECT category || ' ' || quality FROM wa_templates WHERE name = 'order_update'"
        )
        .await,
        ["MARKETING YELLOW"]
    );
    // PAUSED: marked not usable, the inbox no longer offers it and refuses it.
    graph.update_template("1900000000000001", |t| t["status"] = json!("PAUSED"));
    deliver(
        &app,
        SECRET,
        &template_news(
            "message_template_status_update",
            json!({"event": "PAUSED", "message_template_id": meta_id, "message_template_name": "order_update",
                   "message_template_language": "id", "reason": null,
                   "other_info": {"title": "FIRST_PAUSE", "description": "low quality"}}),
        ),
    )
    .await;
    let page = admin.get(&format!("/templates/{id}")).await.body;
    assert!(page.contains("Meta paused it because of low quality"), "{page}");
    let inbox = admin.get(&format!("/inbox/{conv}")).await.body;
    assert!(!inbox.contains("order_update|id"), "the picker hides it");
    let r = admin
        .post(
            &format!("/inbox/{conv}/template"),
            &[
                ("template", "order_update|id"),
                ("p1", "Dewi"),
                ("p2", "#1"),
                ("action", "send"),
            ],
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("Meta paused it because of low quality"), "{}", r.body);
    crate::common::outbox_idle(&app).await;
    assert!(
        graph.seen().iter().all(|s| s.body["type"] != "template"),
        "the paused template never went out"
    );
    // Every change is in the audit log.
    let audit = one(
        &app,
        "SELECT action FROM audit_log WHERE action LIKE 'template.%' ORDER BY id",
    )
    .await;
    for a in ["template.status", "template.quality", "template.category"] {
        assert!(audit.iter().any(|x| x == a), "{a} in {audit:?}");
    }
}

#[tokio::test]
async fn an_approved_named_template_goes_out_from_the_inbox_with_its_names() {
    let (graph, app, admin) = app().await;
    let named = fields(&[
        ("name", "welcome_named"),
        ("body", "Halo {{first_name}}, pesanan {{order}} siap."),
        ("example_first_name", "Siti"),
        ("example_order", "#1"),
    ]);
    assert_eq!(submit(&admin, &named, None).await.status, 303);
    // One with a link variable is approved too, but the inbox cannot fill its link.
    let link = fields(&[
        ("name", "track_link"),
        ("button_type_0", "url"),
        ("button_text_0", "Lacak"),
        ("button_value_0", "https://toko.id/lacak/{{1}}"),
        ("button_example_0", "A1"),
    ]);
    assert_eq!(submit(&admin, &link, None).await.status, 303);
    for (meta_id, name) in [
        ("1900000000000001", "welcome_named"),
        ("1900000000000002", "track_link"),
    ] {
        graph.update_template(meta_id, |t| t["status"] = json!("APPROVED"));
        deliver(
            &app,
            SECRET,
            &template_news(
                "message_template_status_update",
                json!({"event": "APPROVED", "message_template_id": meta_id, "message_template_name": name,
                       "message_template_language": "id"}),
            ),
        )
        .await;
    }
    inbound_text(
        &app,
        SECRET,
        PHONE,
        "wamid.n1",
        "62822",
        "Dewi",
        app.state.now(),
        "halo",
    )
    .await;
    let conv: i64 = app
        .state
        .db
        .read(|c| Ok(c.query_row("SELECT id FROM conversations", [], |r| r.get(0))?))
        .await
        .unwrap();
    let page = admin.get(&format!("/inbox/{conv}")).await.body;
    assert!(
        page.contains("welcome_named|id") && !page.contains("track_link|id"),
        "{page}"
    );
    let r = admin
        .post(
            &format!("/inbox/{conv}/template"),
            &[
                ("template", "welcome_named|id"),
                ("p1", "Dewi"),
                ("p2", "#9"),
                ("action", "preview"),
            ],
        )
        .await;
    assert!(
        r.body.contains("Halo Dewi, pesanan #9 siap."),
        "named preview filled in"
    );
    let r = admin
        .post(
            &format!("/inbox/{conv}/template"),
            &[
                ("template", "welcome_named|id"),
                ("p1", "Dewi"),
                ("p2", "#9"),
                ("action", "send"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    graph
        .wait_for("the named template", |s| {
            s.iter().any(|x| {
                x.body["template"]["name"] == "welcome_named"
                    && x.body["template"]["components"][0]["parameters"]
                        == json!([{"type": "text", "parameter_name": "first_name", "text": "Dewi"},
                                  {"type": "text", "parameter_name": "order", "text": "#9"}])
            })
        })
        .await;
    let r = admin
        .post(
            &format!("/inbox/{conv}/template"),
            &[("template", "track_link|id"), ("action", "send")],
        )
        .await;
    assert_eq!(r.status, 422);
}

#[tokio::test]
async fn deleting_asks_first_then_deletes_in_meta_and_here() {
    let (graph, app, admin) = app().await;
    assert_eq!(submit(&admin, &fields(&[]), None).await.status, 303);
    let id = template_id(&app, "order_update").await;
    let confirm = admin.get(&format!("/templates/{id}/delete")).await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("Delete the template order_update (id)?"));
    assert!(
        graph.seen().iter().all(|s| s.method != "DELETE"),
        "asking deletes nothing"
    );
    let r = admin.post(&format!("/templates/{id}/delete"), &[]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let del = graph
        .seen()
        .into_iter()
        .find(|s| s.method == "DELETE")
        .expect("deleted in Meta");
    assert!(del.path.ends_with(&format!("/{WABA}/message_templates")));
    assert!(
        del.query.contains("name=order_update") && del.query.contains("hsm_id=1900000000000001"),
        "{}",
        del.query
    );
    assert!(
        one(&app, "SELECT name FROM wa_templates WHERE name = 'order_update'")
            .await
            .is_empty()
    );
    assert_eq!(
        one(&app, "SELECT action FROM audit_log WHERE action = 'template.delete'")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn agents_see_templates_supervisors_make_them_admins_delete_them() {
    let (graph, app, admin) = app().await;
    assert_eq!(submit(&admin, &fields(&[]), None).await.status, 303);
    let id = template_id(&app, "order_update").await;
    app.create_user(&admin, "agen@toko.id", "agent").await;
    app.create_user(&admin, "super@toko.id", "supervisor").await;
    let agent = app.browser();
    agent.login("agen@toko.id", crate::common::PASSWORD).await;
    assert!(agent.get("/templates").await.body.contains("order_update"));
    assert_eq!(agent.get(&format!("/templates/{id}")).await.status, 200);
    assert_eq!(agent.get("/templates/new").await.status, 403);
    // Posting the form anyway is refused too (with a valid token from another page).
    let token = csrf_in(&agent.get("/templates").await.body).unwrap();
    let form = reqwest::multipart::Form::new()
        .text("action", "submit")
        .text("name", "agent_made");
    let r = agent
        .client
        .post(format!("{}/templates/new?csrf={token}", agent.base))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let supervisor = app.browser();
    supervisor.login("super@toko.id", crate::common::PASSWORD).await;
    assert_eq!(
        submit(&supervisor, &fields(&[("name", "super_made")]), None)
            .await
            .status,
        303
    );
    assert_eq!(supervisor.get(&format!("/templates/{id}/delete")).await.status, 403);
    assert_eq!(creations(&graph).len(), 2, "the agent's never reached Meta");
}

async fn api_key(admin: &Browser, role: &str) -> String {
    let r = admin
        .submit(
            "/admin/api-keys",
            "/admin/api-keys",
            &[("name", "shop"), ("role", role)],
        )
        .await;
    let i = r.body.find("id=\"api-token\">").expect("token shown") + "id=\"api-token\">".len();
    r.body[i..].split('<').next().unwrap().to_string()
}

async fn api(app: &TestApp, method: reqwest::Method, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let mut req = client.request(method, format!("{}{path}", app.base)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_api_lists_makes_and_deletes_templates() {
    use reqwest::Method;
    let (graph, app, admin) = app().await;
    let admin_key = api_key(&admin, "admin").await;
    let agent_key = api_key(&admin, "agent").await;
    let good = json!({"name": "api_order", "category": "UTILITY", "language": "en_US",
        "header": {"format": "text", "text": "Order {{1}}", "example": "#9"},
        "body": "Hi {{1}}, your order {{2}} is ready.", "examples": {"1": "Ana", "2": "#9"},
        "footer": "Toko Maju", "buttons": [{"type": "quick_reply", "text": "Thanks"}]});
    // An agent's key may read, not make.
    let (s, _) = api(&app, Method::POST, "/api/v1/templates", &agent_key, Some(good.clone())).await;
    assert_eq!(s, 403);
    // Every problem listed, nothing sent.
    let mut bad = good.clone();
    bad["name"] = json!("Api Order");
    bad["body"] = json!("{{1}} your order {{3}}");
    let (s, e) = api(&app, Method::POST, "/api/v1/templates", &admin_key, Some(bad)).await;
    assert_eq!(s, 422, "{e}");
    let codes: Vec<&str> = e["error"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    for want in ["name", "not_sequential", "var_start", "var_end", "example_missing"] {
        assert!(codes.contains(&want), "{want} in {codes:?}");
    }
    assert_eq!(e["error"]["code"], "invalid");
    assert!(creations(&graph).is_empty());
    let (s, t) = api(&app, Method::POST, "/api/v1/templates", &admin_key, Some(good)).await;
    assert_eq!(s, 201, "{t}");
    assert_eq!(
        (t["status"].as_str(), t["usable"].as_bool()),
        (Some("PENDING"), Some(false))
    );
    assert_eq!(
        creations(&graph)[0].body["components"][1]["example"]["body_text"],
        json!([["Ana", "#9"]])
    );
    let (s, list) = api(&app, Method::GET, "/api/v1/templates", &agent_key, None).await;
    assert_eq!(s, 200);
    let mine = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "api_order")
        .unwrap();
    assert_eq!(mine["status"], "PENDING");
    assert_eq!(mine["unusable_reason"], "Meta has not approved it yet.");
    let path = format!("/api/v1/templates/{}", t["id"]);
    let (s, one) = api(&app, Method::GET, &path, &agent_key, None).await;
    assert_eq!((s, one["name"].as_str()), (200, Some("api_order")));
    let (s, _) = api(&app, Method::DELETE, &path, &agent_key, None).await;
    assert_eq!(s, 403);
    let (s, _) = api(&app, Method::DELETE, &path, &admin_key, None).await;
    assert_eq!(s, 204);
    assert!(
        graph
            .seen()
            .iter()
            .any(|x| x.method == "DELETE" && x.query.contains("name=api_order"))
    );
    let (s, _) = api(&app, Method::DELETE, &path, &admin_key, None).await;
    assert_eq!(s, 404);
}

/// The live preview in a real browser, on a phone-sized screen: typing redraws the
/// bubble, each variable gets its example field, and the preview sits below the form.
#[tokio::test]
async fn the_preview_follows_the_typing_on_a_phone() {
    use fantoccini::Locator;
    let Some((_driver, c)) = crate::browser::start_browser().await else {
        return;
    };
    let (_graph, app, admin) = app().await;
    app.create_user(&admin, "super@toko.id", "supervisor").await;
    c.set_window_size(390, 844).await.unwrap();
    c.goto(&format!("{}/login", app.base)).await.unwrap();
    let type_in = |name: &'static str, value: &'static str| {
        let c = c.clone();
        async move {
            c.find(Locator::Css(&format!("[name=\"{name}\"]")))
                .await
                .expect(name)
                .send_keys(value)
                .await
                .expect("type");
        }
    };
    type_in("email", "super@toko.id").await;
    type_in("password", crate::common::PASSWORD).await;
    c.find(Locator::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Css("h1")).await.unwrap();
    c.goto(&format!("{}/templates/new", app.base)).await.unwrap();
    type_in("body", "Halo {{1}}, pesanan kamu siap.").await;
    type_in("footer", "Toko Maju").await;
    let example = c
        .wait()
        .for_element(Locator::Css("input[name=\"example_1\"]"))
        .await
        .expect("an example field for {{1}}");
    example.send_keys("Budi").await.unwrap();
    let body = c.find(Locator::Id("pv-body")).await.unwrap().text().await.unwrap();
    assert_eq!(body, "Halo Budi, pesanan kamu siap.");
    let footer = c.find(Locator::Id("pv-footer")).await.unwrap().text().await.unwrap();
    assert_eq!(footer, "Toko Maju");
    c.find(Locator::Css("select[name=button_type_0] option[value=quick_reply]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    type_in("button_text_0", "Terima kasih").await;
    let buttons = c.find(Locator::Id("pv-buttons")).await.unwrap().text().await.unwrap();
    assert_eq!(buttons, "Terima kasih");
    let form = c
        .find(Locator::Css("form[data-template-form]"))
        .await
        .unwrap()
        .rectangle()
        .await
        .unwrap();
    let preview = c
        .find(Locator::Css(".template-preview"))
        .await
        .unwrap()
        .rectangle()
        .await
        .unwrap();
    assert!(
        preview.1 >= form.1 + form.3,
        "on a phone the preview is below the form: {form:?} {preview:?}"
    );
    assert!(form.2 <= 390.0, "the form fits the screen: {form:?}");
    crate::browser::screenshot(&c, "20-template-new-phone").await;
    c.set_window_size(1280, 900).await.unwrap();
    crate::browser::screenshot(&c, "21-template-new").await;
    // The list and a template's page read on a phone too.
    assert_eq!(
        submit(&admin, &fields(&[("footer", "Toko Maju")]), None).await.status,
        303
    );
    let id = template_id(&app, "order_update").await;
    c.set_window_size(390, 844).await.unwrap();
    c.goto(&format!("{}/templates", app.base)).await.unwrap();
    let table = c.find(Locator::Css("table")).await.unwrap().text().await.unwrap();
    assert!(table.contains("order_update") && table.contains("In review"), "{table}");
    let fits = |c: fantoccini::Client| async move {
        c.execute(
            "return document.documentElement.scrollWidth <= window.innerWidth",
            vec![],
        )
        .await
        .unwrap()
    };
    assert_eq!(
        fits(c.clone()).await,
        json!(true),
        "the list page does not scroll sideways (its table does)"
    );
    crate::browser::screenshot(&c, "22-templates-phone").await;
    c.goto(&format!("{}/templates/{id}", app.base)).await.unwrap();
    let body = c.find(Locator::Id("pv-body")).await.unwrap().text().await.unwrap();
    assert_eq!(body, "Halo Budi, pesanan #77 sudah dikirim.");
    assert_eq!(fits(c.clone()).await, json!(true), "the template's page fits the phone");
    crate::browser::screenshot(&c, "23-template-phone").await;
}
