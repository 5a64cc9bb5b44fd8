//! Segments through the real server: each criterion narrows the live count and the
//! sample on a small seeded set (contacts from the page and from signed webhooks,
//! consent recorded through `consent::record`, labels through the inbox); saving,
//! editing and deleting with audit lines; bad filters refused with a message naming
//! the problem; agents refused; the API.

use crate::common::{Browser, PASSWORD, TestApp, api, api_key, app_with_number, connect_number, inbound_text};
use crate::fake_graph::FakeGraph;
use serde_json::json;
use whacaster::contacts::consent::{self, Change, Purpose, Source, State};

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const PHONE: &str = "106540352242922";
const PHONE2: &str = "106540352242923";
const DAY: i64 = 86_400;

async fn contact_id(app: &TestApp, phone: &str) -> i64 {
    let p = phone.to_string();
    app.state
        .db
        .read(move |c| Ok(c.query_row("SELECT id FROM contacts WHERE phone_e164 = ?1", [p], |r| r.get(0))?))
        .await
        .unwrap()
}

async fn conversation_of(app: &TestApp, contact: i64) -> i64 {
    app.state
        .db
        .read(move |c| {
            Ok(
                c.query_row("SELECT id FROM conversations WHERE contact_id = ?1", [contact], |r| {
                    r.get(0)
                })?,
            )
        })
        .await
        .unwrap()
}

async fn set_consent(app: &TestApp, contact: i64, state: State) {
    let now = app.state.now();
    app.state
        .db
        .write(move |c| {
            let change = Change {
                contact,
                purpose: Purpose::Marketing,
                state,
                source: Source::Agent,
                occurred_at: None,
                wording: "asked at the counter",
                evidence: "",
            };
            Ok(consent::record(c, &change, &whacaster::audit::Actor::system(), now)?)
        })
        .await
        .unwrap();
}

async fn label_id(app: &TestApp, name: &str) -> String {
    let n = name.to_string();
    let id: i64 = app
        .state
        .db
        .read(move |c| Ok(c.query_row("SELECT id FROM labels WHERE name = ?1", [n], |r| r.get(0))?))
        .await
        .unwrap();
    id.to_string()
}

/// The live count on a page.
fn count_in(body: &str) -> i64 {
    let i = body
        .find("id=\"segment-count\">")
        .unwrap_or_else(|| panic!("no count in {body}"))
        + "id=\"segment-count\">".len();
    body[i..].split('<').next().unwrap().trim().parse().unwrap()
}

/// Presses Preview on the new-segment form with `fields`; the count and the page.
async fn preview(admin: &Browser, fields: &[(&str, &str)]) -> (i64, String) {
    let mut all = vec![("action", "preview")];
    all.extend_from_slice(fields);
    let r = admin.submit("/segments/new", "/segments", &all).await;
    assert_eq!(r.status, 200, "{fields:?}: {}", r.body);
    (count_in(&r.body), r.body)
}

/// The day of `ts` in Jakarta (the test business's zone), as the date input sends it.
fn jakarta_day(ts: i64) -> String {
    use chrono::TimeZone;
    chrono_tz::Asia::Jakarta
        .timestamp_opt(ts, 0)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string()
}

/// Four customers: Citra and Dewi added by hand ten days ago (custom fields, never
/// wrote); Ani wrote to the first number 5 days ago (opted in, label VIP on her
/// conversation); Budi wrote to the second number 20 days ago (opted out, labels VIP
/// and Grosir on himself).
async fn seeded() -> (TestApp, Browser, FakeGraph) {
    let graph = FakeGraph::start();
    let (app, admin) = app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    let r = connect_number(&admin, PHONE2, SECRET, "tok2", "80").await;
    assert_eq!(r.status, 303, "second number: {}", r.body);
    for (name, phone, attrs) in [
        ("Citra", "0812 1111 0001", "kota=Bandung\ntier=gold"),
        ("Dewi", "0812 1111 0002", "kota=Jakarta Selatan"),
    ] {
        let r = admin
            .submit(
                "/contacts",
                "/contacts",
                &[("name", name), ("phone", phone), ("attributes_text", attrs)],
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
    }
    // Added ten days ago (moving the clock would end the admin's session).
    app.state
        .db
        .write(|c| Ok(c.execute("UPDATE contacts SET created_at = created_at - 10 * 86400", [])?))
        .await
        .unwrap();
    let now = app.state.now();
    inbound_text(
        &app,
        SECRET,
        PHONE,
        "wamid.a1",
        "6281222220001",
        "Ani",
        now - 5 * DAY,
        "halo",
    )
    .await;
    inbound_text(
        &app,
        SECRET,
        PHONE2,
        "wamid.b1",
        "6281222220002",
        "Budi",
        now - 20 * DAY,
        "pesan",
    )
    .await;
    let (ani, budi) = (
        contact_id(&app, "+6281222220001").await,
        contact_id(&app, "+6281222220002").await,
    );
    set_consent(&app, ani, State::OptedIn).await;
    set_consent(&app, budi, State::OptedOut).await;
    for name in ["VIP", "Grosir"] {
        let r = admin
            .submit("/inbox/labels", "/inbox/labels", &[("name", name), ("color", "green")])
            .await;
        assert_eq!(r.status, 303);
    }
    let (vip, grosir) = (label_id(&app, "VIP").await, label_id(&app, "Grosir").await);
    let conv = conversation_of(&app, ani).await;
    let r = admin
        .submit(
            &format!("/inbox/{conv}"),
            &format!("/inbox/{conv}/labels"),
            &[("label_id", vip.as_str()), ("on", "1")],
        )
        .await;
    assert_eq!(r.status, 303);
    let conv = conversation_of(&app, budi).await;
    for l in [&vip, &grosir] {
        let r = admin
            .submit(
                &format!("/inbox/{conv}"),
                &format!("/inbox/{conv}/labels"),
                &[("label_id", l.as_str()), ("on", "1"), ("target", "contact")],
            )
            .await;
        assert_eq!(r.status, 303);
    }
    (app, admin, graph)
}

#[tokio::test]
async fn each_criterion_narrows_the_live_count_and_the_sample() {
    let (app, admin, _graph) = seeded().await;
    let who = |body: &str| -> Vec<&'static str> {
        let sample = body.split("class=\"sample\"").nth(1).unwrap_or("");
        ["Ani", "Budi", "Citra", "Dewi"]
            .into_iter()
            .filter(|n| sample.contains(&format!(">{n}</a>")))
            .collect()
    };
    let check = async |fields: &[(&str, &str)], expect: &[&str]| {
        let (n, body) = preview(&admin, fields).await;
        assert_eq!(n, i64::try_from(expect.len()).unwrap(), "{fields:?}");
        assert_eq!(who(&body), expect, "{fields:?}: the sample shows the right people");
        body
    };
    let body = check(&[], &["Ani", "Budi", "Citra", "Dewi"]).await;
    assert!(body.contains("Every contact"), "the criteria in words");
    // Labels: on the conversation (Ani) or on the contact (Budi).
    check(&[("labels_any", "VIP")], &["Ani", "Budi"]).await;
    check(&[("labels_all", "VIP"), ("labels_all", "Grosir")], &["Budi"]).await;
    check(&[("labels_none", "Grosir")], &["Ani", "Citra", "Dewi"]).await;
    // Custom fields.
    check(
        &[
            ("attr_key_0", "kota"),
            ("attr_op_0", "equals"),
            ("attr_value_0", "bandung"),
        ],
        &["Citra"],
    )
    .await;
    check(
        &[
            ("attr_key_0", "kota"),
            ("attr_op_0", "contains"),
            ("attr_value_0", "JAKARTA"),
        ],
        &["Dewi"],
    )
    .await;
    check(&[("attr_key_0", "tier"), ("attr_op_0", "is_set")], &["Citra"]).await;
    check(&[("attr_key_0", "kota"), ("attr_op_0", "is_empty")], &["Ani", "Budi"]).await;
    // Consent for marketing.
    let body = check(&[("consent_marketing", "opted_in")], &["Ani"]).await;
    assert!(body.contains("Marketing consent: Opted in"));
    check(&[("consent_marketing", "opted_out")], &["Budi"]).await;
    check(&[("consent_marketing", "unknown")], &["Citra", "Dewi"]).await;
    // The last inbound message.
    let body = check(&[("last_inbound", "within"), ("days", "10")], &["Ani"]).await;
    assert!(body.contains("Wrote to us in the last 10 days"));
    check(&[("last_inbound", "within"), ("days", "30")], &["Ani", "Budi"]).await;
    check(&[("last_inbound", "not_within"), ("days", "10")], &["Budi"]).await;
    check(&[("last_inbound", "never")], &["Citra", "Dewi"]).await;
    // Created date, in the business's time zone: Citra and Dewi ten days before.
    let today = jakarta_day(app.state.now());
    check(&[("created_from", today.as_str())], &["Ani", "Budi"]).await;
    check(&[("created_before", today.as_str())], &["Citra", "Dewi"]).await;
    // The number they wrote to.
    check(&[("number", PHONE2)], &["Budi"]).await;
    check(&[("number", PHONE)], &["Ani"]).await;
    // All together: AND.
    check(
        &[
            ("labels_any", "VIP"),
            ("consent_marketing", "opted_in"),
            ("last_inbound", "within"),
            ("days", "30"),
        ],
        &["Ani"],
    )
    .await;
    check(&[("labels_any", "VIP"), ("consent_marketing", "unknown")], &[]).await;
    // A preview saves nothing.
    let n: i64 = app
        .state
        .db
        .read(|c| Ok(c.query_row("SELECT count(*) FROM segments", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn bad_filters_are_refused_with_a_message_naming_the_problem() {
    let (app, admin, _graph) = seeded().await;
    // Bad filters are refused with a message that names the problem.
    for (fields, message) in [
        (vec![("name", "  ")], "Give the segment a name"),
        (
            vec![("name", "x"), ("number", "999")],
            "not one of the connected numbers",
        ),
        (
            vec![("name", "x"), ("last_inbound", "within"), ("days", "-5")],
            "from 1 to 3650",
        ),
        (vec![("name", "x"), ("last_inbound", "within")], "from 1 to 3650"),
        (
            vec![("name", "x"), ("created_from", "2026-02-30")],
            "Enter a date as YYYY-MM-DD",
        ),
        (
            vec![
                ("name", "x"),
                ("created_from", "2026-12-05"),
                ("created_before", "2026-12-01"),
            ],
            "must be after",
        ),
        (vec![("name", "x"), ("labels_any", "Nope")], "no label with this name"),
        (
            vec![("name", "x"), ("attr_key_0", "kota"), ("attr_op_0", "equals")],
            "value to compare",
        ),
    ] {
        for action in ["save", "preview"] {
            if action == "preview" && fields[0].1.trim().is_empty() {
                continue; // a preview needs no name
            }
            let mut all = vec![("action", action)];
            all.extend_from_slice(&fields);
            let r = admin.submit("/segments/new", "/segments", &all).await;
            assert_eq!(r.status, 422, "{action} {fields:?}");
            assert!(r.body.contains(message), "{action} {fields:?}: {}", r.body);
            if fields[0].1 == "x" {
                assert!(r.body.contains("value=\"x\""), "the form keeps what was typed");
            }
        }
    }
    // A label deleted after saving: the segment matches no one, and its form shows the
    // label ticked so that saving says what is wrong instead of dropping it quietly.
    let r = admin
        .submit(
            "/segments/new",
            "/segments",
            &[("action", "save"), ("name", "Grosir"), ("labels_any", "Grosir")],
        )
        .await;
    let page = r.location().unwrap().split('?').next().unwrap().to_string();
    assert_eq!(count_in(&admin.get(&page).await.body), 1);
    let grosir = label_id(&app, "Grosir").await;
    let r = admin
        .submit("/inbox/labels", &format!("/inbox/labels/{grosir}/delete"), &[])
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(count_in(&admin.get(&page).await.body), 0);
    let edit = admin.get(&format!("{page}/edit")).await.body;
    assert!(edit.contains("name=\"labels_any\" value=\"Grosir\" checked"), "{edit}");
    let r = admin
        .post(
            &format!("{page}/edit"),
            &[("action", "save"), ("name", "Grosir"), ("labels_any", "Grosir")],
        )
        .await;
    assert!(r.status == 422 && r.body.contains("no label with this name"));
}

#[tokio::test]
#[expect(clippy::too_many_lines, reason = "one scenario, told in order")]
async fn segments_are_saved_shown_edited_and_deleted_with_audit_lines() {
    let (app, admin, _graph) = seeded().await;
    // Save: the segment page has the live count, the sample and the criteria in words.
    let r = admin
        .submit(
            "/segments/new",
            "/segments",
            &[
                ("action", "save"),
                ("name", "Aktif 10 hari"),
                ("last_inbound", "within"),
                ("days", "10"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let page = r.location().unwrap().split('?').next().unwrap().to_string();
    let id: i64 = page.trim_start_matches("/segments/").parse().unwrap();
    let body = admin.get(&page).await.body;
    assert_eq!(
        count_in(&body),
        1,
        "{}",
        body.split("class=\"sample\"").nth(1).unwrap_or("")
    );
    assert!(body.contains("Wrote to us in the last 10 days") && body.contains(">Ani</a>"));
    assert!(body.contains("Opted in"), "the sample shows consent");
    let dup = admin
        .submit(
            "/segments/new",
            "/segments",
            &[("action", "save"), ("name", "aktif 10 HARI")],
        )
        .await;
    assert!(dup.status == 422 && dup.body.contains("already exists"));
    // The list shows it with its count; the count is live.
    let list = admin.get("/segments").await.body;
    assert!(list.contains("Aktif 10 hari") && list.contains("<td class=\"segment-count\">1</td>"));
    inbound_text(
        &app,
        SECRET,
        PHONE,
        "wamid.c1",
        "6281211110001",
        "Citra",
        app.state.now(),
        "halo",
    )
    .await;
    assert_eq!(count_in(&admin.get(&page).await.body), 2, "Citra wrote: she is in now");
    // Edit: the form is filled in; preview there, then save.
    let edit = admin.get(&format!("/segments/{id}/edit")).await.body;
    assert!(edit.contains("value=\"Aktif 10 hari\"") && edit.contains("value=\"10\""));
    let action = format!("/segments/{id}/edit");
    let fields = [
        ("name", "Aktif 30 hari"),
        ("last_inbound", "within"),
        ("days", "30"),
        ("consent_marketing", "opted_out"),
    ];
    let mut with = vec![("action", "preview")];
    with.extend_from_slice(&fields);
    let r = admin.post(&action, &with).await;
    assert_eq!(count_in(&r.body), 1, "Budi: within 30 days and opted out");
    with[0] = ("action", "save");
    let r = admin.post(&action, &with).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let body = admin.get(&page).await.body;
    assert!(body.contains("Aktif 30 hari") && body.contains(">Budi</a>") && !body.contains(">Ani</a>"));
    // Agents may not see segments (they would count contacts outside their view).
    app.create_user(&admin, "agen@toko.id", "agent").await;
    let agent = app.browser();
    agent.login("agen@toko.id", PASSWORD).await;
    for path in ["/segments", "/segments/new", page.as_str(), action.as_str()] {
        assert_eq!(agent.get(path).await.status, 403, "{path}");
    }
    assert!(
        !agent.get("/contacts").await.body.contains("href=\"/segments\""),
        "no nav entry"
    );
    assert!(admin.get("/contacts").await.body.contains("href=\"/segments\""));
    let r = agent
        .submit("/contacts", "/segments", &[("action", "save"), ("name", "mine")])
        .await;
    assert_eq!(r.status, 403);
    let r = agent.post(&format!("/segments/{id}/delete"), &[]).await;
    assert_eq!(r.status, 403);
    // Delete.
    let r = admin.submit(&page, &format!("/segments/{id}/delete"), &[]).await;
    assert_eq!(r.location(), Some("/segments?m=segments.deleted"));
    assert!(
        admin
            .get("/segments?m=segments.deleted")
            .await
            .body
            .contains("Segment deleted.")
    );
    assert_eq!(admin.get(&page).await.status, 404);
    // Every change has its audit line.
    let actions: Vec<String> = app
        .state
        .db
        .read(|c| {
            let mut s =
                c.prepare("SELECT action || ' ' || details FROM audit_log WHERE action LIKE 'segment.%' ORDER BY id")?;
            let rows = s.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<String>, _>>()?)
        })
        .await
        .unwrap();
    assert_eq!(actions.len(), 3, "{actions:?}");
    assert!(actions[0].starts_with("segment.create Aktif 10 hari:") && actions[0].contains("\"days\":10"));
    assert!(actions[1].starts_with("segment.update Aktif 30 hari:") && actions[1].contains("opted_out"));
    assert_eq!(actions[2], "segment.delete Aktif 30 hari");
}

#[tokio::test]
#[expect(clippy::too_many_lines, reason = "one scenario, told in order")]
async fn the_segments_api() {
    let (app, admin, _graph) = seeded().await;
    let (agent, sup) = (api_key(&admin, "agent").await, api_key(&admin, "supervisor").await);
    assert_eq!(api(&app, "GET", "/api/v1/segments", &agent, None).await.0, 403);
    let (s, _) = api(&app, "POST", "/api/v1/segments", &agent, Some(json!({"name": "x"}))).await;
    assert_eq!(s, 403);
    let (s, created) = api(
        &app,
        "POST",
        "/api/v1/segments",
        &sup,
        Some(json!({"name": "Pelanggan VIP", "filter": {"labels_any": ["vip"], "last_inbound": {"when": "within", "days": 60}}})),
    )
    .await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(created["count"], 2);
    assert_eq!(
        created["filter"]["labels_any"],
        json!(["VIP"]),
        "the label's own spelling"
    );
    let id = created["id"].as_i64().unwrap();
    // Refusals name the field.
    for (filter, field, words) in [
        (json!({"number": "999"}), "filter.number", "connected numbers"),
        (
            json!({"last_inbound": {"when": "within", "days": -1}}),
            "filter.last_inbound",
            "1 to 3650",
        ),
        (
            json!({"created_before": "01/12/2026"}),
            "filter.created_before",
            "YYYY-MM-DD",
        ),
        (json!({"labels_all": ["Nope"]}), "filter.labels", "no label"),
    ] {
        let (s, e) = api(
            &app,
            "POST",
            "/api/v1/segments",
            &sup,
            Some(json!({"name": "y", "filter": filter})),
        )
        .await;
        assert_eq!(s, 422, "{filter}");
        assert!(e["error"]["fields"][field].as_str().unwrap().contains(words), "{e}");
    }
    let (s, e) = api(&app, "POST", "/api/v1/segments", &sup, Some(json!({"name": ""}))).await;
    assert!(s == 422 && e["error"]["fields"]["name"].is_string(), "{e}");
    let (s, e) = api(
        &app,
        "POST",
        "/api/v1/segments",
        &sup,
        Some(json!({"name": "z", "filter": {"sql": "1=1"}})),
    )
    .await;
    assert_eq!(s, 422);
    assert!(
        e["error"]["message"].as_str().unwrap().contains("unknown field `sql`"),
        "{e}"
    );
    // Read, replace, delete.
    let (s, list) = api(&app, "GET", "/api/v1/segments", &sup, None).await;
    assert!(s == 200 && list["data"][0]["name"] == "Pelanggan VIP" && list["data"][0]["count"] == 2);
    let (s, one) = api(&app, "GET", &format!("/api/v1/segments/{id}"), &sup, None).await;
    assert!(s == 200 && one["count"] == 2, "{one}");
    let (s, put) = api(
        &app,
        "PUT",
        &format!("/api/v1/segments/{id}"),
        &sup,
        Some(json!({"name": "Pelanggan VIP", "filter": {"labels_any": ["VIP"], "number": PHONE}})),
    )
    .await;
    assert!(s == 200 && put["count"] == 1, "{put}");
    assert_eq!(
        api(&app, "DELETE", &format!("/api/v1/segments/{id}"), &sup, None)
            .await
            .0,
        204
    );
    assert_eq!(
        api(&app, "GET", &format!("/api/v1/segments/{id}"), &sup, None).await.0,
        404
    );
    assert_eq!(
        api(&app, "DELETE", &format!("/api/v1/segments/{id}"), &sup, None)
            .await
            .0,
        404
    );
    let audited: i64 = app
        .state
        .db
        .read(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM audit_log WHERE action LIKE 'segment.%' AND actor LIKE 'api key%'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(audited, 3);
}

/// A supervisor builds a segment in a real browser on a phone-sized screen, in Bahasa
/// Indonesia: ticks a label, picks "in the last 10 days", previews (no script involved:
/// a plain form post), then saves. The page never scrolls sideways.
#[tokio::test]
async fn a_supervisor_builds_a_segment_on_a_phone() {
    use crate::browser::{fill, screenshot, start_browser, wait_css};
    use fantoccini::Locator;
    let Some((_driver, c)) = start_browser().await else {
        return;
    };
    let (app, admin, _graph) = seeded().await;
    app.create_user(&admin, "spv@toko.id", "supervisor").await;
    app.state
        .db
        .write(|c| Ok(c.execute("UPDATE users SET locale = 'id' WHERE email = 'spv@toko.id'", [])?))
        .await
        .unwrap();
    c.set_window_size(390, 844).await.unwrap();
    c.goto(&format!("{}/login?lang=id", app.base)).await.unwrap();
    fill(&c, "email", "spv@toko.id").await;
    fill(&c, "password", PASSWORD).await;
    c.find(Locator::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_css(&c, "nav.sidebar").await;
    c.goto(&format!("{}/segments/new?lang=id", app.base)).await.unwrap();
    wait_css(&c, "input[name=name]").await;
    c.set_window_size(390, 2600).await.unwrap();
    screenshot(&c, "29-segment-form-phone").await;
    c.set_window_size(390, 844).await.unwrap();
    fill(&c, "name", "VIP aktif").await;
    c.find(Locator::Css("input[name=labels_any][value=VIP]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Css("select[name=last_inbound] option[value=within]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    fill(&c, "days", "10").await;
    c.find(Locator::Css("button[value=preview]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let count = wait_css(&c, "#segment-count").await.text().await.unwrap();
    assert_eq!(count, "1", "Ani only");
    let page = c.source().await.unwrap();
    assert!(page.contains("Pratinjau") && page.contains("Menghubungi kami dalam 10 hari terakhir"));
    screenshot(&c, "30-segment-preview-phone").await;
    let culprits = c
        .execute(
            "return [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1).slice(0, 8).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right) + ' ' + (e.getAttribute('name') || ''));",
            vec![],
        )
        .await
        .unwrap();
    let wide = c
        .execute(
            "return document.documentElement.scrollWidth > window.innerWidth;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        wide,
        serde_json::json!(false),
        "no sideways scrolling on a phone: {culprits}"
    );
    c.find(Locator::Css("button[value=save]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_css(&c, ".criteria").await;
    assert!(c.current_url().await.unwrap().path().starts_with("/segments/"));
    assert_eq!(wait_css(&c, "#segment-count").await.text().await.unwrap(), "1");
    screenshot(&c, "31-segment-phone").await;
    c.close().await.unwrap();
}
