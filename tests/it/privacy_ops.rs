//! Privacy operations (issue 13) through the real server: retention with the injected
//! clock, data-subject requests (find, export, erasure, objection, deadlines), policy
//! notices, and who may do it.

use crate::common::{Browser, PASSWORD, TestApp, api, api_key, inbound_text};
use crate::fake_graph::FakeGraph;
use base64::Engine;
use sha2::Digest;

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const PHONE_ID: &str = "106540352242922";
const DAY: i64 = 86_400;

async fn setup() -> (TestApp, Browser, FakeGraph) {
    let graph = FakeGraph::start();
    let (app, admin) = crate::common::app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    (app, admin, graph)
}

/// An image from `from`, sent at `ts`, stored by the media fetcher; returns its stored name.
async fn inbound_image(
    app: &TestApp,
    graph: &FakeGraph,
    from: &str,
    wamid: &str,
    media_id: &str,
    bytes: &[u8],
    ts: i64,
) -> String {
    graph.add_media(media_id, bytes, "image/jpeg");
    let sha = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(bytes));
    let body = serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "62812", "phone_number_id": PHONE_ID},
        "contacts": [{"profile": {"name": "Pelanggan"}, "wa_id": from}],
        "messages": [{"from": from, "id": wamid, "timestamp": ts.to_string(), "type": "image",
                      "image": {"id": media_id, "mime_type": "image/jpeg", "sha256": sha}}]}}]}]});
    crate::common::deliver(app, SECRET, &body).await;
    for _ in 0..200 {
        let m = media_id.to_string();
        let stored: Option<String> = app
            .state
            .db
            .read(move |c| {
                Ok(c.query_row(
                    "SELECT stored_name FROM media_files WHERE media_id = ?1 AND state = 'stored'",
                    [m],
                    |r| r.get(0),
                )
                .ok())
            })
            .await
            .unwrap();
        if let Some(s) = stored {
            return s;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("media {media_id} not stored");
}

async fn q_i64(app: &TestApp, sql: &str, arg: &str) -> i64 {
    let (sql, arg) = (sql.to_string(), arg.to_string());
    app.state
        .db
        .read(move |c| Ok(c.query_row(&sql, [arg], |r| r.get(0))?))
        .await
        .unwrap()
}

/// How often a word is in the message search index: the match and the raw index pages.
async fn in_search_index(app: &TestApp, word: &str) -> (i64, i64) {
    let hits = q_i64(
        app,
        "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH ?1",
        word,
    )
    .await;
    let raw = q_i64(
        app,
        "SELECT count(*) FROM messages_fts_data WHERE instr(block, CAST(?1 AS BLOB)) > 0",
        word,
    )
    .await;
    (hits, raw)
}

fn dir_contains(dir: &std::path::Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            found.extend(dir_contains(&p, needle));
        } else if std::fs::read(&p)
            .unwrap_or_default()
            .windows(needle.len())
            .any(|w| w == needle)
        {
            found.push(p);
        }
    }
    found
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

async fn wait_for_run(app: &TestApp, cause: &str, after: i64) -> i64 {
    for _ in 0..300 {
        let id = q_i64(
            app,
            &format!("SELECT coalesce(max(id), 0) FROM retention_runs WHERE cause = ?1 AND finished_at IS NOT NULL AND id > {after}"),
            cause,
        )
        .await;
        if id > 0 {
            return id;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no {cause} run finished");
}

#[tokio::test]
#[expect(clippy::too_many_lines, reason = "one story, told in order")]
async fn retention_removes_what_is_old_with_its_files_and_index_and_keeps_the_young_the_held_and_the_ledger() {
    let (app, admin, graph) = setup().await;
    app.create_user(&admin, "privasi@toko.id", "admin").await;
    let t0 = app.clock.unix();
    inbound_text(
        &app,
        SECRET,
        PHONE_ID,
        "wamid.old",
        "6281234500001",
        "Lama",
        t0,
        "catatan zebraolddata lama",
    )
    .await;
    let old_file = inbound_image(
        &app,
        &graph,
        "6281234500001",
        "wamid.oldimg",
        "9001",
        b"OLD-PHOTO-BYTES",
        t0,
    )
    .await;
    inbound_text(
        &app,
        SECRET,
        PHONE_ID,
        "wamid.held",
        "6281234500002",
        "Ditahan",
        t0,
        "perkara heldwordkept",
    )
    .await;
    let held = q_i64(&app, "SELECT id FROM contacts WHERE wa_id = ?1", "6281234500002").await;
    let r = admin
        .submit(
            "/admin/privacy",
            "/admin/privacy/holds",
            &[
                ("contact_id", &held.to_string()),
                ("reason", "Sengketa di pengadilan, perkara 12/2026"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let page = admin.get(&format!("/contacts/{held}")).await;
    assert!(
        page.body.contains("data-legal-hold") && page.body.contains("perkara 12/2026"),
        "the hold is on the contact page"
    );
    // Deleting a held contact would take the hold (and the messages) with it: refused.
    let r = admin
        .submit(&format!("/contacts/{held}"), &format!("/contacts/{held}/delete"), &[])
        .await;
    assert_eq!(r.status, 400, "a held contact is not deleted: {}", r.body);
    assert_eq!(
        q_i64(&app, "SELECT count(*) FROM contacts WHERE wa_id = ?1", "6281234500002").await,
        1
    );
    assert!(
        admin
            .get("/inbox?q=zebraolddata")
            .await
            .body
            .contains("<mark>zebraolddata</mark>"),
        "found before the purge"
    );

    // Two months later a younger message; then 13 months after the first.
    app.clock.advance(60 * DAY);
    let t1 = app.clock.unix();
    inbound_text(
        &app,
        SECRET,
        PHONE_ID,
        "wamid.young",
        "6281234500003",
        "Muda",
        t1,
        "pesan youngwordkept",
    )
    .await;
    app.clock.advance(335 * DAY);
    let now = app.clock.unix();
    app.state
        .db
        .write(move |c| {
            c.execute(
                "INSERT INTO usage_ledger (wamid, category, pricing_type, billable, model, at) VALUES ('w.ledger6', 'marketing', 'regular', 1, 'PMP', ?1)",
                [now - 6 * 365 * DAY],
            )?;
            c.execute(
                "INSERT INTO usage_ledger (wamid, category, pricing_type, billable, model, at) VALUES ('w.ledger8', 'marketing', 'regular', 1, 'PMP', ?1)",
                [now - 8 * 365 * DAY],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    assert!(app.state.media.store.exists(&old_file));

    // The admin's session ran out over the year: a second admin signs in (enrolling
    // MFA, as admins must) and runs the job from its page.
    let admin = app.browser();
    admin.login("privasi@toko.id", PASSWORD).await;
    admin.enrol_totp(&app).await;
    let r = admin
        .submit("/admin/privacy", "/admin/jobs/apply_retention/run", &[])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let run = wait_for_run(&app, "retention", 0).await;

    // 13 months old: gone, with its media file on disk and its search entry.
    assert_eq!(
        q_i64(&app, "SELECT count(*) FROM messages WHERE wamid = ?1", "wamid.old").await,
        0
    );
    assert_eq!(
        q_i64(&app, "SELECT count(*) FROM messages WHERE wamid = ?1", "wamid.oldimg").await,
        0
    );
    assert_eq!(
        q_i64(&app, "SELECT count(*) FROM media_files WHERE media_id = ?1", "9001").await,
        0
    );
    assert!(!app.state.media.store.exists(&old_file), "the media file is unlinked");
    assert_eq!(
        in_search_index(&app, "zebraolddata").await,
        (0, 0),
        "not in the index, not in its pages"
    );
    assert!(
        !admin
            .get("/inbox?q=zebraolddata")
            .await
            .body
            .contains("<mark>zebraolddata</mark>")
    );
    // 11 months old, and held: kept.
    assert_eq!(
        q_i64(&app, "SELECT count(*) FROM messages WHERE wamid = ?1", "wamid.young").await,
        1
    );
    assert_eq!(
        q_i64(&app, "SELECT count(*) FROM messages WHERE wamid = ?1", "wamid.held").await,
        1
    );
    assert_eq!(in_search_index(&app, "youngwordkept").await.0, 1);
    // The ledger keeps 7 years.
    assert_eq!(
        q_i64(&app, "SELECT count(*) FROM usage_ledger WHERE wamid = ?1", "w.ledger6").await,
        1
    );
    assert_eq!(
        q_i64(&app, "SELECT count(*) FROM usage_ledger WHERE wamid = ?1", "w.ledger8").await,
        0
    );
    // The empty conversation went with its messages.
    let old_contact = q_i64(&app, "SELECT id FROM contacts WHERE wa_id = ?1", "6281234500001").await;
    assert_eq!(
        q_i64(
            &app,
            "SELECT count(*) FROM conversations WHERE contact_id = ?1",
            &old_contact.to_string()
        )
        .await,
        0
    );

    // The run says what it removed, per kind; the admin sees it; it is audited.
    let msgs = q_i64(
        &app,
        &format!("SELECT count FROM retention_removed WHERE run_id = {run} AND kind = ?1"),
        "messages",
    )
    .await;
    assert_eq!(msgs, 2);
    assert_eq!(
        q_i64(
            &app,
            &format!("SELECT checkpointed FROM retention_runs WHERE id = {run} AND ?1 = ?1"),
            "x"
        )
        .await,
        1
    );
    let page = admin.get("/admin/privacy").await;
    assert!(page.body.contains(&format!("data-run=\"{run}\"")) && page.body.contains("data-removed-kind=\"messages\""));
    assert!(page.body.contains("data-removed-kind=\"media_files_on_disk\""));
    assert_eq!(
        q_i64(
            &app,
            "SELECT count(*) FROM audit_log WHERE action = ?1",
            "retention.run"
        )
        .await,
        1
    );

    // Evidence: the last run, and the settings against the policy.
    let now = app.clock.unix();
    let facts = app
        .state
        .db
        .read(move |c| Ok(whacaster::privacy::retention::facts(c, now)?))
        .await
        .unwrap();
    let last = facts
        .iter()
        .find(|f| f.key == "privacy_ops.retention_last_run")
        .unwrap();
    assert_eq!(last.light, whacaster::privacy::evidence::Light::Green, "{last:?}");
    assert!(last.fact.contains("messages 2"), "{last:?}");

    // Longer than the policy only with a written reason, which the evidence shows.
    let r = admin
        .submit(
            "/admin/privacy",
            "/admin/privacy/retention",
            &[("kind", "messages"), ("days", "400"), ("reason", "")],
        )
        .await;
    assert_eq!(r.status, 422);
    let r = admin
        .submit(
            "/admin/privacy",
            "/admin/privacy/retention",
            &[
                ("kind", "messages"),
                ("days", "400"),
                ("reason", "Audit pajak berjalan sampai Maret"),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    let facts = app
        .state
        .db
        .read(move |c| Ok(whacaster::privacy::retention::facts(c, now)?))
        .await
        .unwrap();
    let settings = facts
        .iter()
        .find(|f| f.key == "privacy_ops.retention_settings")
        .unwrap();
    assert_eq!(settings.light, whacaster::privacy::evidence::Light::Amber);
    assert!(
        settings.fact.contains("Audit pajak berjalan sampai Maret"),
        "{settings:?}"
    );
    assert_eq!(
        q_i64(
            &app,
            "SELECT count(*) FROM audit_log WHERE action = ?1",
            "retention.setting"
        )
        .await,
        1
    );
}

#[tokio::test]
#[expect(clippy::too_many_lines, reason = "one story, told in order")]
async fn an_export_holds_the_person_and_nobody_else_and_an_erasure_leaves_nothing_to_find() {
    let (app, admin, graph) = setup().await;
    let key = api_key(&admin, "admin").await;
    let t = app.clock.unix();
    let siti = "6281234567801";
    let budi = "6281298765432";
    inbound_text(
        &app,
        SECRET,
        PHONE_ID,
        "wamid.s1",
        siti,
        "Siti",
        t,
        "alamat saya secretsiti123 Bandung",
    )
    .await;
    let siti_file = inbound_image(&app, &graph, siti, "wamid.s2", "7001", b"PHOTO-OF-SITI-KTP", t + 1).await;
    inbound_text(
        &app,
        SECRET,
        PHONE_ID,
        "wamid.b1",
        budi,
        "Budi",
        t + 2,
        "pesanan otherbudi456",
    )
    .await;
    let budi_file = inbound_image(&app, &graph, budi, "wamid.b2", "7002", b"PHOTO-OF-BUDI-NOTA", t + 3).await;

    // Access: registered over the API, found, exported.
    let (status, created) = api(
        &app,
        "POST",
        "/api/v1/privacy/requests",
        &key,
        Some(serde_json::json!({"kind": "access", "requester": "Siti (telepon)", "phone": format!("+{siti}")})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let access = created["id"].as_i64().unwrap();
    assert_eq!(
        created["due_at"].as_i64().unwrap() - created["received_at"].as_i64().unwrap(),
        30 * DAY
    );
    let (status, one) = api(&app, "GET", &format!("/api/v1/privacy/requests/{access}"), &key, None).await;
    assert_eq!(status, 200);
    assert_eq!(one["found"]["messages"], 2, "{one}");
    assert_eq!(one["found"]["media_files"], 1, "{one}");
    let page = admin.get(&format!("/admin/privacy/requests/{access}")).await;
    assert!(
        page.body.contains("data-found-kind=\"messages\" data-found=\"2\""),
        "{}",
        page.body
    );

    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let resp = client
        .get(format!("{}/api/v1/privacy/requests/{access}/export", app.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/zip");
    let bytes = resp.bytes().await.unwrap().to_vec();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut json = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("subject.json").unwrap(), &mut json).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["format"], "whacaster.subject-export/1");
    assert!(json.contains("secretsiti123"));
    assert!(
        !json.contains("otherbudi456") && !json.contains(budi),
        "nothing of anyone else"
    );
    let mut media = Vec::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        if f.name().starts_with("media/") {
            let mut b = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut b).unwrap();
            media.push(b);
        }
    }
    assert_eq!(
        media,
        vec![b"PHOTO-OF-SITI-KTP".to_vec()],
        "her photo, decrypted, and only hers"
    );
    // The page's export is the same ZIP; exports are audited; no export file is kept.
    let r = admin
        .get_headers(&format!("/admin/privacy/requests/{access}/export"))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        q_i64(
            &app,
            "SELECT count(*) FROM audit_log WHERE action = ?1",
            "privacy.request.export"
        )
        .await,
        2
    );
    assert!(
        walk(&app.data_dir())
            .iter()
            .all(|p| p.extension().is_none_or(|e| e != "zip")),
        "no ZIP kept on disk"
    );

    assert!(
        admin
            .get("/inbox?q=secretsiti123")
            .await
            .body
            .contains("<mark>secretsiti123</mark>"),
        "found before the erasure"
    );

    // Erasure: through the page, confirmed.
    let r = admin
        .submit(
            "/admin/privacy/requests",
            "/admin/privacy/requests",
            &[
                ("kind", "erasure"),
                ("requester", "Siti"),
                ("phone", &format!("+{siti}")),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let erasure: i64 = r
        .location()
        .unwrap()
        .split('/')
        .nth(4)
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let page = format!("/admin/privacy/requests/{erasure}");
    let r = admin.submit(&page, &format!("{page}/erase"), &[]).await;
    assert_eq!(r.status, 422, "not without the confirmation");
    let r = admin.submit(&page, &format!("{page}/erase"), &[("confirm", "1")]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("data-erased-kind=\"messages\""),
        "the counts are confirmed"
    );
    let (_, done) = api(&app, "GET", &format!("/api/v1/privacy/requests/{erasure}"), &key, None).await;
    assert_eq!(done["status"], "done");
    assert!(done["outcome"].as_str().unwrap().contains("messages 2"), "{done}");
    let (status, _) = api(
        &app,
        "POST",
        &format!("/api/v1/privacy/requests/{erasure}/erase"),
        &key,
        None,
    )
    .await;
    assert_eq!(status, 409, "a closed request is not erased twice");

    // Not found by SQL, the search, the API, or a byte scan of the data directory.
    assert_eq!(
        q_i64(
            &app,
            "SELECT count(*) FROM messages WHERE instr(body, ?1) > 0",
            "secretsiti123"
        )
        .await,
        0
    );
    assert_eq!(
        q_i64(&app, "SELECT count(*) FROM contacts WHERE wa_id = ?1", siti).await,
        0
    );
    assert_eq!(in_search_index(&app, "secretsiti123").await, (0, 0));
    assert_eq!(
        q_i64(
            &app,
            "SELECT count(*) FROM contacts_fts_data WHERE instr(block, CAST(?1 AS BLOB)) > 0",
            "Siti"
        )
        .await,
        0
    );
    assert_eq!(
        q_i64(
            &app,
            "SELECT count(*) FROM webhook_inbox WHERE instr(body, CAST(?1 AS BLOB)) > 0",
            siti
        )
        .await,
        0
    );
    assert_eq!(
        q_i64(
            &app,
            "SELECT count(*) FROM audit_log WHERE instr(target, ?1) > 0 OR instr(details, ?1) > 0",
            siti
        )
        .await,
        0
    );
    assert!(!app.state.media.store.exists(&siti_file), "her file is unlinked");
    assert!(
        !admin
            .get("/inbox?q=secretsiti123")
            .await
            .body
            .contains("<mark>secretsiti123</mark>")
    );
    let (_, convs) = api(&app, "GET", "/api/v1/conversations", &key, None).await;
    assert!(
        !convs.to_string().contains(siti) && !convs.to_string().contains("secretsiti123"),
        "{convs}"
    );
    for needle in [&b"secretsiti123"[..], b"PHOTO-OF-SITI-KTP"] {
        assert!(dir_contains(&app.data_dir(), needle).is_empty(), "found on disk");
    }
    // Budi is untouched.
    assert_eq!(
        q_i64(
            &app,
            "SELECT count(*) FROM messages WHERE instr(body, ?1) > 0",
            "otherbudi456"
        )
        .await,
        1
    );
    assert!(app.state.media.store.exists(&budi_file));
    // The erasure is a purge run, checkpointed, and audited without her data.
    let run = wait_for_run(&app, &format!("erasure:{erasure}"), 0).await;
    assert_eq!(
        q_i64(
            &app,
            &format!("SELECT checkpointed FROM retention_runs WHERE id = {run} AND ?1 = ?1"),
            "x"
        )
        .await,
        1
    );
    assert_eq!(
        q_i64(
            &app,
            "SELECT count(*) FROM audit_log WHERE action = ?1",
            "privacy.request.erase"
        )
        .await,
        1
    );
}

#[tokio::test]
#[expect(clippy::too_many_lines, reason = "one story, told in order")]
async fn deadlines_objections_and_roles() {
    let (app, admin, _graph) = setup().await;
    let t = app.clock.unix();
    inbound_text(&app, SECRET, PHONE_ID, "wamid.o1", "6281234567811", "Rina", t, "halo").await;
    let contact = q_i64(&app, "SELECT id FROM contacts WHERE wa_id = ?1", "6281234567811").await;
    let late = time::OffsetDateTime::from_unix_timestamp(t - 31 * DAY)
        .unwrap()
        .date()
        .to_string();
    let r = admin
        .submit(
            "/admin/privacy/requests",
            "/admin/privacy/requests",
            &[
                ("kind", "objection"),
                ("requester", "Rina"),
                ("contact_id", &contact.to_string()),
                ("received_on", &late),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let id: i64 = r
        .location()
        .unwrap()
        .split('/')
        .nth(4)
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let list = admin.get("/admin/privacy/requests").await;
    assert!(
        list.body.contains(&format!("data-request=\"{id}\" data-overdue=\"1\"")),
        "{}",
        list.body
    );
    assert!(
        admin.get("/").await.body.contains("data-overdue-requests=\"1\""),
        "flagged on the dashboard"
    );
    let facts = app
        .state
        .db
        .read(move |c| Ok(whacaster::privacy::requests::facts(c, t)?))
        .await
        .unwrap();
    let overdue = facts.iter().find(|f| f.key == "privacy_ops.requests_overdue").unwrap();
    assert_eq!(overdue.light, whacaster::privacy::evidence::Light::Red);

    // The objection records the opt-out through the consent core and closes the request.
    let page = format!("/admin/privacy/requests/{id}");
    let r = admin.submit(&page, &format!("{page}/objection"), &[]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        q_i64(
            &app,
            "SELECT count(*) FROM contacts WHERE id = ?1 AND consent_marketing = 'opted_out'",
            &contact.to_string()
        )
        .await,
        1
    );
    assert_eq!(
        q_i64(
            &app,
            "SELECT count(*) FROM consent_log WHERE contact_id = ?1 AND state = 'opted_out'",
            &contact.to_string()
        )
        .await,
        1
    );
    assert!(
        !admin.get("/").await.body.contains("data-overdue-requests"),
        "closed: no longer flagged"
    );

    // An erasure of a held contact is refused.
    admin
        .submit(
            "/admin/privacy",
            "/admin/privacy/holds",
            &[("contact_id", &contact.to_string()), ("reason", "Perkara")],
        )
        .await;
    let r = admin
        .submit(
            "/admin/privacy/requests",
            "/admin/privacy/requests",
            &[
                ("kind", "erasure"),
                ("requester", "Rina"),
                ("contact_id", &contact.to_string()),
            ],
        )
        .await;
    let erase: i64 = r
        .location()
        .unwrap()
        .split('/')
        .nth(4)
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let page = format!("/admin/privacy/requests/{erase}");
    let r = admin.submit(&page, &format!("{page}/erase"), &[("confirm", "1")]).await;
    assert_eq!(r.status, 409);
    assert_eq!(
        q_i64(
            &app,
            "SELECT count(*) FROM contacts WHERE id = ?1",
            &contact.to_string()
        )
        .await,
        1
    );

    // Agents and supervisors are refused, on the pages and the API.
    app.create_user(&admin, "agen@toko.id", "agent").await;
    app.create_user(&admin, "super@toko.id", "supervisor").await;
    for email in ["agen@toko.id", "super@toko.id"] {
        let b = app.browser();
        b.login(email, PASSWORD).await;
        assert_eq!(b.get("/admin/privacy/requests").await.status, 403, "{email}");
        assert_eq!(
            b.get(&format!("/admin/privacy/requests/{id}/export")).await.status,
            403,
            "{email}"
        );
        assert_eq!(b.get("/admin/privacy").await.status, 403, "{email}");
    }
    for role in ["agent", "supervisor"] {
        let key = api_key(&admin, role).await;
        let (status, _) = api(&app, "GET", "/api/v1/privacy/requests", &key, None).await;
        assert_eq!(status, 403, "{role}");
        let (status, _) = api(
            &app,
            "POST",
            &format!("/api/v1/privacy/requests/{erase}/erase"),
            &key,
            None,
        )
        .await;
        assert_eq!(status, 403, "{role}");
    }
    let (status, body) = api(&app, "GET", "/api/v1/openapi.json", "", None).await;
    assert_eq!(status, 200);
    assert!(body["paths"]["/privacy/requests/{id}/erase"].is_object());
}

#[tokio::test]
async fn a_published_notice_is_a_banner_until_acknowledged() {
    let app = TestApp::start().await;
    let (admin, _) = app.admin("owner@toko.id").await;
    app.create_user(&admin, "agen@toko.id", "agent").await;
    let page = admin.get("/admin/notices").await;
    assert!(
        page.body.contains("data-terms-version=\"privacy-policy-2026-11\""),
        "the setup's terms version is recorded"
    );
    let r = admin
        .submit(
            "/admin/notices",
            "/admin/notices",
            &[
                ("title", "Kebijakan privasi diperbarui"),
                ("body", "Masa simpan pesan kini 12 bulan."),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let agent = app.browser();
    agent.login("agen@toko.id", PASSWORD).await;
    let inbox = agent.get("/inbox").await;
    assert!(inbox.body.contains("policy-notice") && inbox.body.contains("Kebijakan privasi diperbarui"));
    assert!(
        agent.get("/account").await.body.contains("policy-notice"),
        "on every page"
    );
    let id = q_i64(
        &app,
        "SELECT id FROM policy_notices WHERE title = ?1",
        "Kebijakan privasi diperbarui",
    )
    .await;
    let r = agent.submit("/inbox", &format!("/notices/{id}/ack"), &[]).await;
    assert_eq!(r.status, 303);
    assert!(
        !agent.get("/inbox").await.body.contains("policy-notice"),
        "gone once acknowledged"
    );
    assert!(
        admin.get("/inbox").await.body.contains("policy-notice"),
        "the admin has not read it yet"
    );
    let page = admin.get("/admin/notices").await;
    assert!(page.body.contains("agen@toko.id") && page.body.contains("data-acks=\"1\""));
    assert_eq!(
        q_i64(
            &app,
            "SELECT count(*) FROM audit_log WHERE action = ?1",
            "notice.acknowledge"
        )
        .await,
        1
    );
    assert_eq!(
        q_i64(
            &app,
            "SELECT count(*) FROM audit_log WHERE action = ?1",
            "notice.publish"
        )
        .await,
        1
    );
}
