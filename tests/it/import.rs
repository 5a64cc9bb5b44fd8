//! Contact import (issue 10, item 1) through the real server: CSV variants (BOM, `;`,
//! quoted newlines with their line numbers, four spellings of one Indonesian number, a
//! duplicate, an invalid number, a missing phone), 10,000 rows in the background with
//! progress, re-import idempotency, an opt-out that an import cannot lift, the pages
//! (upload, dry run, confirm, report) with an agent refused, and resuming after a crash.

use crate::common::{Browser, PASSWORD, TestApp, csrf_in};
use serde_json::Value;
use std::fmt::Write as _;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap()
}

/// An API key with `role`, made on the admin page.
async fn key(admin: &Browser, role: &str) -> String {
    let r = admin
        .submit("/admin/api-keys", "/admin/api-keys", &[("name", role), ("role", role)])
        .await;
    let i = r.body.find("id=\"api-token\">").expect("token shown") + "id=\"api-token\">".len();
    r.body[i..].split('<').next().unwrap().to_string()
}

async fn import(app: &TestApp, token: &str, query: &str, csv: &[u8]) -> (u16, Value) {
    let r = client()
        .post(format!("{}/api/v1/contacts/import?{query}", app.base))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(csv.to_vec())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn count(app: &TestApp, sql: &'static str) -> i64 {
    app.state
        .db
        .read(move |c| Ok(c.query_row(sql, [], |r| r.get(0))?))
        .await
        .unwrap()
}

fn skipped(report: &Value) -> Vec<(i64, String)> {
    report["skipped_rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["line"].as_i64().unwrap(), s["reason"].as_str().unwrap().to_string()))
        .collect()
}

/// A file as Excel in Indonesia writes it: BOM, `;`, CRLF, an address with a newline
/// inside quotes, one person in four spellings, a bad number, a row without a phone.
const FILE: &str = "\u{feff}Nama;No HP;Alamat;Kota;Labels\r\n\
Ani;0812-3456-7890;\"Jl. Merdeka 1\r\nBandung\";Bandung;VIP|Promo\r\n\
Ani lagi;+62 812-3456-7890;;Bandung;\r\n\
Ani juga;6281234567890;;;\r\n\
Ani (kurung);(0812) 3456 7890;;;\r\n\
Budi;0812 3456 7891;;Jakarta;\r\n\
Cici;12345;;;\r\n\
Dodi;;;Medan;\r\n";

#[tokio::test]
#[expect(clippy::too_many_lines, reason = "one app through the import's API cases, in order")]
async fn csv_variants_reimport_and_opt_out_through_the_api() {
    let app = TestApp::start().await;
    let (admin, _) = app.admin("owner@toko.id").await;
    let sup = key(&admin, "supervisor").await;
    let agent = key(&admin, "agent").await;
    let q = "labels=Pameran&update=true&consent=marketing&consent_source=Formulir%20member%20di%20toko";

    // Agents may not import.
    assert_eq!(import(&app, &agent, q, FILE.as_bytes()).await.0, 403);
    // A dry run reports and changes nothing.
    let (s, dry) = import(&app, &sup, &format!("{q}&dry_run=true"), FILE.as_bytes()).await;
    assert_eq!(s, 200, "{dry}");
    assert_eq!(dry["result"]["created"], 2, "{dry}");
    assert_eq!(dry["result"]["rows"][0]["phone"], "+6281234567890");
    assert_eq!(dry["result"]["delimiter"], ";");
    assert_eq!(count(&app, "SELECT count(*) FROM contacts").await, 0);
    // Consent claimed without saying how: refused, naming the problem.
    let (s, e) = import(&app, &sup, "consent=marketing", FILE.as_bytes()).await;
    assert_eq!(s, 422);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("how these people agreed"),
        "{e}"
    );

    let (s, report) = import(&app, &sup, q, FILE.as_bytes()).await;
    assert_eq!(s, 200, "a small file is answered with its report: {report}");
    assert_eq!(report["state"], "done");
    assert_eq!(
        (report["created"].as_i64(), report["updated"].as_i64()),
        (Some(2), Some(0))
    );
    assert_eq!(report["skipped"], 5);
    // Lines are the file's physical lines: the quoted address spans lines 2-3.
    assert_eq!(
        skipped(&report),
        [
            (4, "duplicate_in_file".to_string()),
            (5, "duplicate_in_file".to_string()),
            (6, "duplicate_in_file".to_string()),
            (8, "invalid_number".to_string()),
            (9, "missing_phone".to_string()),
        ]
    );
    let ani: (String, String, String) = app
        .state
        .db
        .read(|c| {
            Ok(c.query_row(
                "SELECT name, attributes, consent_marketing FROM contacts WHERE phone_e164 = '+6281234567890'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(ani.0, "Ani", "the first row with the number wins");
    assert!(
        ani.1.contains("Jl. Merdeka 1\\r\\nBandung") && ani.1.contains("\"Kota\":\"Bandung\""),
        "{}",
        ani.1
    );
    assert_eq!(ani.2, "opted_in");
    assert_eq!(
        count(&app, "SELECT count(*) FROM contact_labels cl JOIN labels l ON l.id = cl.label_id JOIN contacts c ON c.id = cl.contact_id WHERE c.phone_e164 = '+6281234567890'").await,
        3,
        "Pameran for the file, VIP and Promo from the row"
    );
    let evidence: String = app
        .state
        .db
        .read(|c| {
            Ok(c.query_row(
                "SELECT evidence || ' | ' || wording FROM consent_log ORDER BY id LIMIT 1",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    let sha = report["sha256"].as_str().unwrap();
    assert_eq!(evidence, format!("sha256:{sha} line 2 | Formulir member di toko"));
    assert_eq!(
        count(&app, "SELECT count(*) FROM audit_log WHERE action = 'contact.import'").await,
        1
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM audit_log WHERE action = 'consent.changed'").await,
        0,
        "one audit line per run, not per row"
    );

    // The same file again changes nothing: all unchanged, no consent line, one audit line.
    let (log, audit) = (
        count(&app, "SELECT count(*) FROM consent_log").await,
        count(&app, "SELECT count(*) FROM audit_log").await,
    );
    let (s, again) = import(&app, &sup, q, FILE.as_bytes()).await;
    assert_eq!(s, 200);
    assert_eq!(
        (
            again["created"].as_i64(),
            again["updated"].as_i64(),
            again["unchanged"].as_i64()
        ),
        (Some(0), Some(0), Some(2)),
        "{again}"
    );
    assert_eq!(count(&app, "SELECT count(*) FROM consent_log").await, log);
    assert_eq!(count(&app, "SELECT count(*) FROM audit_log").await, audit + 1);

    // Budi says STOP; a file that says he opted in does not lift it, and says so.
    app.state
        .db
        .write(|c| {
            use whacaster::contacts::consent::{Change, Purpose, Source, State, record};
            let id: i64 = c.query_row("SELECT id FROM contacts WHERE phone_e164 = '+6281234567891'", [], |r| {
                r.get(0)
            })?;
            let change = Change {
                contact: id,
                purpose: Purpose::Marketing,
                state: State::OptedOut,
                source: Source::Keyword,
                occurred_at: None,
                wording: "STOP",
                evidence: "wamid.X",
            };
            record(c, &change, &whacaster::audit::Actor::system(), 1)?;
            Ok(())
        })
        .await
        .unwrap();
    let optin = "phone;name;whatsapp_opted\n0812 3456 7891;Budi Baru;ya\n";
    let (s, r) = import(&app, &sup, "update=true&consent_source=Form", optin.as_bytes()).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(skipped(&r), [(2, "conflicting_opt_out".to_string())]);
    assert_eq!(
        count(&app, "SELECT count(*) FROM contacts WHERE phone_e164 = '+6281234567891' AND consent_marketing = 'opted_out' AND name = 'Budi'").await,
        1,
        "the opt-out stays and the row is not half-applied"
    );

    // Above the limit: 413 with a clear message, before the body is read.
    let big = vec![b'a'; whacaster::contacts::import::MAX_BYTES + 1];
    let (s, e) = import(&app, &sup, "", &big).await;
    assert_eq!(s, 413);
    assert!(e["error"]["message"].as_str().unwrap().contains("20 MB"), "{e}");
}

#[tokio::test]
async fn ten_thousand_rows_run_in_the_background_with_progress() {
    let app = TestApp::start().await;
    let (admin, _) = app.admin("owner@toko.id").await;
    let sup = key(&admin, "supervisor").await;
    let mut csv = String::from("phone,name,kota\n");
    for i in 0..10_000 {
        writeln!(csv, "0812{:08},Pelanggan {i},Bandung", 10_000_000 + i).unwrap();
    }
    let (s, started) = import(&app, &sup, "labels=Besar", csv.as_bytes()).await;
    assert_eq!(s, 202, "{started}");
    let id = started["id"].as_i64().unwrap();
    assert_eq!(started["total"], 10_000);
    let mut seen = Vec::new();
    let report = loop {
        let r = client()
            .get(format!("{}/api/v1/imports/{id}", app.base))
            .bearer_auth(&sup)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        seen.push(v["processed"].as_i64().unwrap());
        if v["state"] == "done" {
            break v;
        }
        assert_ne!(v["state"], "failed", "{v}");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    };
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "progress only grows: {seen:?}");
    assert_eq!(
        (report["created"].as_i64(), report["processed"].as_i64()),
        (Some(10_000), Some(10_000))
    );
    assert_eq!(
        report["no_marketing_consent"], 10_000,
        "no consent claimed: none may get marketing"
    );
    assert_eq!(count(&app, "SELECT count(*) FROM contacts").await, 10_000);
    assert_eq!(count(&app, "SELECT count(*) FROM contact_labels").await, 10_000);
}

/// A multipart upload from the page, with the CSRF token in the action URL.
async fn upload(b: &Browser, csv: &str, fields: &[(&str, &str)]) -> crate::common::Resp {
    let page = b.get("/contacts/import").await;
    let token = csrf_in(&page.body).unwrap_or_default();
    let mut form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(csv.as_bytes().to_vec())
            .file_name("kontak.csv")
            .mime_str("text/csv")
            .unwrap(),
    );
    for (k, v) in fields {
        form = form.text((*k).to_string(), (*v).to_string());
    }
    let r = b
        .client
        .post(format!("{}/contacts/import?csrf={token}", b.base))
        .multipart(form)
        .send()
        .await
        .unwrap();
    crate::common::Resp {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        body: r.text().await.unwrap_or_default(),
    }
}

#[tokio::test]
async fn the_pages_upload_dry_run_confirm_report_and_agents_are_refused() {
    let app = TestApp::start().await;
    let (admin, _) = app.admin("owner@toko.id").await;
    app.create_user(&admin, "super@toko.id", "supervisor").await;
    app.create_user(&admin, "agen@toko.id", "agent").await;
    let agent = app.browser();
    agent.login("agen@toko.id", PASSWORD).await;
    let sup = app.browser();
    sup.login("super@toko.id", PASSWORD).await;
    let csv = "nama,no_hp,kota,catatan\nSiti,0813 1111 2222,Bandung,=CMD()\nTono,bukan nomor,Solo,\n";

    assert_eq!(agent.get("/contacts/import").await.status, 403);
    assert_eq!(upload(&agent, csv, &[]).await.status, 403);
    assert!(!agent.get("/contacts").await.body.contains("href=\"/contacts/import\""));
    assert!(sup.get("/contacts").await.body.contains("href=\"/contacts/import\""));

    // A file without a phone column is refused with the reason.
    let r = upload(&sup, "nama,kota\nSiti,Bandung\n", &[]).await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("No phone column"), "{}", r.body);

    let r = upload(&sup, csv, &[("labels", "Toko"), ("update", "1")]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let page_url = r.location().unwrap().to_string();
    let dry = sup.get(&page_url).await;
    assert_eq!(dry.status, 200);
    assert!(
        dry.body.contains("+6281311112222") && dry.body.contains("Not a valid phone number"),
        "{}",
        dry.body
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM contacts").await,
        0,
        "the dry run changes nothing"
    );
    // Ignore the "catatan" column (index 3), keep "kota" as a custom field named "city".
    let r = sup
        .post(
            &page_url,
            &[
                ("map_2", "field"),
                ("field_2", "city"),
                ("map_3", "ignore"),
                ("field_3", "catatan"),
                ("labels", "Toko"),
                ("update", "1"),
                ("consent", ""),
                ("consent_source", ""),
                ("action", "confirm"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let mut report = String::new();
    for _ in 0..200 {
        let p = sup.get(&page_url).await;
        if p.body.contains("id=\"report-counts\"") {
            report = p.body;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(report.contains("data-count=\"created\">1<"), "{report}");
    assert!(report.contains("data-count=\"skipped\">1<"));
    let attrs: String = app
        .state
        .db
        .read(|c| Ok(c.query_row("SELECT attributes FROM contacts", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(
        attrs, "{\"city\":\"Bandung\"}",
        "the chosen name; the ignored column left out"
    );
    let csv_report = sup.get(&format!("{page_url}/report.csv")).await;
    assert_eq!(csv_report.status, 200);
    assert!(
        csv_report.body.contains("3,bukan nomor,invalid_number,"),
        "{}",
        csv_report.body
    );
    assert_eq!(agent.get(&format!("{page_url}/report.csv")).await.status, 403);
    // The contact's label shows on its page and filters the list.
    let list = sup.get("/contacts?label=Toko").await;
    assert!(list.body.contains("+6281311112222"), "{}", list.body);
    assert!(!sup.get("/contacts?label=Lain").await.body.contains("+6281311112222"));
}

#[tokio::test]
async fn a_restart_resumes_after_the_last_committed_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = crate::common::test_config(dir.path());
    let app = TestApp::start_with(dir, cfg.clone()).await;
    let dir = app.stop().await;
    // What a killed run leaves: the first 1,500 of 2,500 rows committed (here: counted
    // done without their contacts, so that the resumed run shows where it started).
    let mut csv = String::from("phone\n");
    for i in 0..2_500 {
        writeln!(csv, "0812{:08}", 20_000_000 + i).unwrap();
    }
    {
        let c = crate::common::open_stopped_db(&cfg);
        c.execute(
            "INSERT INTO imports (state, created_at, updated_at, actor, file, sha256, options, total, processed, created)
             VALUES ('running', 1, 1, 'owner@toko.id', ?1, 'x', '{\"region\":\"ID\"}', 2500, 1500, 1500)",
            [csv.as_bytes()],
        )
        .unwrap();
    }
    let app = TestApp::start_with(dir, cfg).await;
    let mut state = String::new();
    for _ in 0..300 {
        state = app
            .state
            .db
            .read(|c| Ok(c.query_row("SELECT state FROM imports", [], |r| r.get::<_, String>(0))?))
            .await
            .unwrap();
        if state == "done" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(state, "done");
    assert_eq!(
        count(&app, "SELECT count(*) FROM contacts").await,
        1_000,
        "only the rows after the last commit"
    );
    assert_eq!(count(&app, "SELECT processed FROM imports").await, 2_500);
    assert_eq!(count(&app, "SELECT created FROM imports").await, 2_500);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM contacts WHERE phone_e164 = '+6281220001500'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM contacts WHERE phone_e164 = '+6281220001499'"
        )
        .await,
        0
    );
}

/// The import fills the contacts' search index a chunk at a time (the per-row trigger
/// is paused inside each chunk's write): every imported contact is found by name and by
/// number, the index matches the table exactly, and a contact made afterwards by any
/// other path is indexed by the trigger again.
#[tokio::test]
async fn imported_contacts_are_found_by_search_and_the_index_stays_whole() {
    use crate::common::api;
    let app = TestApp::start().await;
    let (admin, _) = app.admin("owner@toko.id").await;
    let sup = key(&admin, "supervisor").await;
    // 2,500 rows: three chunks, the last one short; the first row's number is known.
    let mut csv = String::from("phone;nama;whatsapp_opted\n0812 3456 7890;Ani Lama;\n");
    for i in 1..2_500 {
        writeln!(csv, "0812{:08};Pelanggan Nomor {i};ya", 30_000_000 + i).unwrap();
    }
    // Ani is there before the import (with her index row); the file renames her.
    let (s, _) = api(
        &app,
        "POST",
        "/api/v1/contacts",
        &sup,
        Some(serde_json::json!({"name": "Ani", "phone": "0812 3456 7890"})),
    )
    .await;
    assert_eq!(s, 201);
    let (s, report) = import(
        &app,
        &sup,
        "update=true&labels=Pameran&consent_source=Formulir",
        csv.as_bytes(),
    )
    .await;
    assert_eq!(s, 200, "{report}");
    assert_eq!(
        (report["created"].as_i64(), report["updated"].as_i64()),
        (Some(2_499), Some(1)),
        "{report}"
    );
    let found = |q: &'static str| {
        let (app, sup) = (&app, &sup);
        async move {
            let (s, list) = api(app, "GET", &format!("/api/v1/contacts?q={q}"), sup, None).await;
            assert_eq!(s, 200, "{list}");
            list["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    // By name and by number, in the first, a middle and the last chunk.
    assert_eq!(found("Nomor%201").await.len(), 50, "a page of the matches");
    assert_eq!(found("Nomor%202499").await, ["Pelanggan Nomor 2499"]);
    assert_eq!(found("0812%203000%201500").await, ["Pelanggan Nomor 1500"]);
    assert_eq!(found("81230000999").await, ["Pelanggan Nomor 999"]);
    // The contact updated by the import is found by its new name, not its old one.
    assert_eq!(found("Ani%20Lama").await, ["Ani Lama"]);
    assert_eq!(found("3456%207890").await, ["Ani Lama"]);
    // The index holds exactly the table (FTS5's own check against the content table),
    // and the pause is gone.
    app.state
        .db
        .write(|c| {
            c.execute(
                "INSERT INTO contacts_fts(contacts_fts, rank) VALUES ('integrity-check', 1)",
                [],
            )?;
            Ok(())
        })
        .await
        .expect("the search index matches the contacts");
    assert_eq!(count(&app, "SELECT count(*) FROM contacts_fts_paused").await, 0);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM consent_log WHERE previous = 'unknown' AND state = 'opted_in'"
        )
        .await,
        2_499,
        "a consent line for every imported opt-in"
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM contacts WHERE consent_marketing = 'opted_in'"
        )
        .await,
        2_499
    );
    assert_eq!(count(&app, "SELECT count(*) FROM contact_labels").await, 2_500);
    // After the import, the trigger indexes new contacts again.
    let (s, _) = api(
        &app,
        "POST",
        "/api/v1/contacts",
        &sup,
        Some(serde_json::json!({"name": "Sesudah Impor", "phone": "0813 1111 2222"})),
    )
    .await;
    assert_eq!(s, 201);
    assert_eq!(found("Sesudah").await, ["Sesudah Impor"]);
    // The same file again changes nothing, the index included.
    let (s, again) = import(
        &app,
        &sup,
        "update=true&labels=Pameran&consent_source=Formulir",
        csv.as_bytes(),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(again["unchanged"], 2_500, "{again}");
    assert_eq!(count(&app, "SELECT count(*) FROM contacts_fts_docsize").await, 2_501);
}
