//! The campaign pages through the real server and the fake Graph API: a supervisor
//! composes a draft on the form (the Continue step brings the template's variables),
//! reads the pre-flight (counts, skip reasons in words, a preview with a real name,
//! the daily limit and the expected cost), starts it, watches the runner send, and
//! reads the counts on the page, in the progress JSON and in the CSV; agents see it
//! all but every button refuses them; a form with a missing variable names it.

use crate::common::{Browser, PASSWORD, TestApp, app_with_number, inbound_text};
use crate::fake_graph::FakeGraph;
use whacaster::contacts::consent::{self, Change, Purpose, Source, State};

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const PHONE: &str = "106540352242922";

async fn contact_id(app: &TestApp, wa: &str) -> i64 {
    let p = wa.to_string();
    app.state
        .db
        .read(move |c| Ok(c.query_row("SELECT id FROM contacts WHERE wa_id = ?1", [p], |r| r.get(0))?))
        .await
        .unwrap()
}

async fn one_i64(app: &TestApp, sql: &'static str, arg: i64) -> i64 {
    app.state
        .db
        .read(move |c| Ok(c.query_row(sql, [arg], |r| r.get(0))?))
        .await
        .unwrap()
}

/// Four customers who wrote in, all labelled VIP: Ani and Dewi may get a utility
/// message; Budi opted out of utility messages; the fourth has no name at all (the
/// first-name variable is empty for them, with no fallback).
pub(crate) async fn seeded() -> (TestApp, Browser, FakeGraph) {
    let graph = FakeGraph::start();
    let (app, admin) = app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    let r = admin
        .submit("/admin/whatsapp/1", "/admin/whatsapp/1/templates/sync", &[])
        .await;
    assert_eq!(r.status, 303, "templates synced: {}", r.body);
    let now = app.state.now();
    for (i, (wa, name)) in [
        ("6281222230001", "Ani Wijaya"),
        ("6281222230002", "Budi"),
        ("6281222230003", ""),
        ("6281222230004", "Dewi Lestari"),
    ]
    .into_iter()
    .enumerate()
    {
        inbound_text(&app, SECRET, PHONE, &format!("wamid.c{i}"), wa, name, now - 60, "halo").await;
    }
    let budi = contact_id(&app, "6281222230002").await;
    app.state
        .db
        .write(move |c| {
            let change = Change {
                contact: budi,
                purpose: Purpose::Utility,
                state: State::OptedOut,
                source: Source::Agent,
                occurred_at: None,
                wording: "asked at the counter",
                evidence: "",
            };
            Ok(consent::record(c, &change, &whacaster::audit::Actor::system(), now)?)
        })
        .await
        .unwrap();
    let r = admin
        .submit("/inbox/labels", "/inbox/labels", &[("name", "VIP"), ("color", "green")])
        .await;
    assert_eq!(r.status, 303);
    let vip = one_i64(&app, "SELECT id FROM labels WHERE name = 'VIP' AND ?1 = ?1", 0)
        .await
        .to_string();
    for wa in ["6281222230001", "6281222230002", "6281222230003", "6281222230004"] {
        let contact = contact_id(&app, wa).await;
        let conv = one_i64(&app, "SELECT id FROM conversations WHERE contact_id = ?1", contact).await;
        let r = admin
            .submit(
                &format!("/inbox/{conv}"),
                &format!("/inbox/{conv}/labels"),
                &[("label_id", vip.as_str()), ("on", "1"), ("target", "contact")],
            )
            .await;
        assert_eq!(r.status, 303);
    }
    app.create_user(&admin, "super@toko.id", "supervisor").await;
    app.create_user(&admin, "agen@toko.id", "agent").await;
    (app, admin, graph)
}

/// The draft form's fields for the seeded audience; `second` maps {{2}}.
pub(crate) fn draft_fields(second: bool) -> Vec<(&'static str, &'static str)> {
    let mut f = vec![
        ("name", "Pesanan Desember"),
        ("number_id", "1"),
        ("template", "order_shipped|en"),
        ("var_source_1", "first_name"),
        ("var_value_1", ""),
        ("var_fallback_1", ""),
        ("labels", "VIP"),
        ("at", ""),
        ("hours_from", ""),
        ("hours_to", ""),
        ("reply_hours", "72"),
        ("action", "save"),
    ];
    if second {
        f.extend([
            ("var_source_2", "text"),
            ("var_value_2", "A-100"),
            ("var_fallback_2", ""),
        ]);
    } else {
        f.extend([("var_source_2", ""), ("var_value_2", ""), ("var_fallback_2", "")]);
    }
    f
}

/// The text of the element with `id` on a page.
fn text_of(body: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\">");
    let i = body.find(&marker).unwrap_or_else(|| panic!("no #{id} in {body}")) + marker.len();
    body[i..].split('<').next().unwrap().trim().to_string()
}

fn count_of(body: &str, state: &str) -> i64 {
    let marker = format!("data-count=\"{state}\">");
    let i = body.find(&marker).unwrap_or_else(|| panic!("no count of {state}")) + marker.len();
    body[i..].split('<').next().unwrap().trim().parse().unwrap()
}

/// Makes a draft through the form as the supervisor; its id.
pub(crate) async fn make_draft(sup: &Browser) -> i64 {
    let r = sup.submit("/campaigns/new", "/campaigns", &draft_fields(true)).await;
    assert_eq!(r.status, 303, "draft saved: {}", r.body);
    let loc = r.location().unwrap().to_string();
    assert!(loc.ends_with("?m=flash.saved"), "{loc}");
    loc.trim_start_matches("/campaigns/")
        .split('?')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

async fn progress(b: &Browser, id: i64) -> serde_json::Value {
    let r = b.get(&format!("/campaigns/{id}/progress")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    serde_json::from_str(&r.body).unwrap()
}

#[expect(
    clippy::too_many_lines,
    reason = "one campaign from the form to the CSV, told in order"
)]
#[tokio::test]
async fn a_supervisor_composes_checks_starts_and_watches_a_campaign() {
    let (app, admin, graph) = seeded().await;
    let sup = app.browser();
    sup.login("super@toko.id", PASSWORD).await;
    let agent = app.browser();
    agent.login("agen@toko.id", PASSWORD).await;

    // Everyone signed in sees the navigation link; only supervisors get the button.
    let list = agent.get("/campaigns").await;
    assert_eq!(list.status, 200);
    assert!(list.body.contains("href=\"/campaigns\""));
    assert!(!list.body.contains("href=\"/campaigns/new\""));
    assert_eq!(agent.get("/campaigns/new").await.status, 403);
    assert!(sup.get("/campaigns").await.body.contains("href=\"/campaigns/new\""));

    // The form offers the approved templates; Continue brings the variables of the chosen one.
    let form = sup.get("/campaigns/new").await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("order_shipped|en"), "{}", form.body);
    assert!(
        !form.body.contains("promo_akhir_tahun"),
        "a pending template is not offered"
    );
    let mut fields = draft_fields(false);
    fields.retain(|(k, _)| !k.starts_with("var_"));
    fields.retain(|(k, _)| *k != "action");
    fields.push(("action", "refresh"));
    let r = sup.submit("/campaigns/new", "/campaigns", &fields).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("name=\"var_source_1\"") && r.body.contains("name=\"var_source_2\""));
    assert!(
        r.body.contains("Hi {{1}}, order {{2}} has shipped."),
        "the template's body is shown"
    );
    assert!(r.body.contains("value=\"VIP\" checked"), "what was ticked stays ticked");
    assert!(r.body.contains("value=\"Pesanan Desember\""), "what was typed stays");

    // A variable left without a value is named next to the variables.
    let r = sup.submit("/campaigns/new", "/campaigns", &draft_fields(false)).await;
    assert_eq!(r.status, 422);
    assert!(
        r.body.contains("Every variable of the template needs a value"),
        "{}",
        r.body
    );
    assert!(r.body.contains("id=\"variables-error\""));
    assert_eq!(
        one_i64(&app, "SELECT count(*) FROM campaigns WHERE ?1 = ?1", 0).await,
        0
    );

    // Prices and the daily limit make the pre-flight's cost and limit lines.
    let r = admin
        .submit(
            "/campaigns/settings",
            "/campaigns/settings",
            &[
                ("frequency_cap_hours", "0"),
                ("error_pause_percent", "10"),
                ("price_marketing", "586"),
                ("price_utility", "150"),
                ("currency", "IDR"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = admin
        .submit(
            "/admin/whatsapp/1",
            "/admin/whatsapp/1/messaging-limit",
            &[("limit", "250")],
        )
        .await;
    assert_eq!(r.status, 303);
    assert!(
        admin
            .get("/admin/whatsapp/1")
            .await
            .body
            .contains("value=\"250\" selected")
    );
    assert_eq!(
        one_i64(
            &app,
            "SELECT count(*) FROM audit_log WHERE action IN ('campaigns.settings', 'whatsapp.messaging_limit') AND ?1 = ?1",
            0
        )
        .await,
        2
    );

    let id = make_draft(&sup).await;
    let page = sup.get(&format!("/campaigns/{id}")).await;
    assert_eq!(page.status, 200);
    assert_eq!(text_of(&page.body, "pf-audience"), "4");
    assert_eq!(text_of(&page.body, "pf-queued"), "2");
    assert_eq!(text_of(&page.body, "pf-skipped"), "2");
    assert!(page.body.contains("Opted out"), "skip reason in words");
    assert!(page.body.contains("A variable is empty and has no fallback"));
    assert!(page.body.contains("Hi Ani, order A-100 has shipped."), "{}", page.body);
    assert!(page.body.contains("Hi Dewi, order A-100 has shipped."));
    assert!(page.body.contains("250 people per 24 hours"));
    assert!(
        page.body.contains("≈ 2 × 150 IDR = 300 IDR"),
        "{}",
        text_of(&page.body, "pf-cost")
    );
    assert!(page.body.contains("Utility: everyone who did not opt out gets it"));

    // The agent sees the pre-flight but no button, and every button refuses it.
    let seen = agent.get(&format!("/campaigns/{id}")).await;
    assert_eq!(seen.status, 200);
    assert!(!seen.body.contains(&format!("action=\"/campaigns/{id}/start\"")));
    for action in ["start", "pause", "resume", "cancel", "delete", "send-again"] {
        let r = agent
            .post(&format!("/campaigns/{id}/{action}"), &[("confirm", "yes")])
            .await;
        assert_eq!(r.status, 403, "agent {action}");
    }
    assert_eq!(agent.get("/campaigns/settings").await.status, 403);
    assert_eq!(sup.get("/campaigns/settings").await.status, 403);

    // Start: the runner hands both to the outbox, the fake Graph API sees each once.
    let r = sup
        .submit(&format!("/campaigns/{id}"), &format!("/campaigns/{id}/start"), &[])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.location().unwrap().ends_with("m=campaigns.ui_flash.started"));
    let template_sends = |seen: &[crate::fake_graph::Seen]| {
        seen.iter()
            .filter(|s| s.path.ends_with("/messages") && s.body["type"] == "template")
            .map(|s| s.body["to"].as_str().unwrap_or("").to_string())
            .collect::<Vec<_>>()
    };
    graph
        .wait_for("both campaign messages", |seen| template_sends(seen).len() >= 2)
        .await;
    let mut p = progress(&sup, id).await;
    for _ in 0..200 {
        if p["sent"] == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        p = progress(&sup, id).await;
    }
    assert_eq!(p["sent"], 2, "{p}");
    assert_eq!(p["planned"], 2);
    assert_eq!(p["counts"]["skipped"], 2);
    assert_eq!(p["counts"]["queued"], 0);
    assert_eq!(p["funnel"]["sent"], 2);
    let mut to = template_sends(&graph.seen());
    to.sort();
    assert_eq!(
        to,
        ["6281222230001", "6281222230004"],
        "each once, nobody skipped was sent"
    );

    // The page (for the agent too) shows the counts, the chart and the skips by reason.
    let page = agent.get(&format!("/campaigns/{id}")).await;
    assert_eq!(page.status, 200);
    assert_eq!(count_of(&page.body, "sent"), 2);
    assert_eq!(count_of(&page.body, "skipped"), 2);
    assert!(page.body.contains("<svg class=\"rate-chart\""));
    assert!(page.body.contains("Sent: 2, between"), "the chart's summary");
    assert!(page.body.contains("id=\"reasons\""));
    assert!(!page.body.contains(&format!("action=\"/campaigns/{id}/pause\"")));
    assert_eq!(progress(&agent, id).await["sent"], 2);

    // Names and numbers of every recipient are a supervisor's: an agent sees counts.
    assert_eq!(agent.get(&format!("/campaigns/{id}/recipients.csv")).await.status, 403);
    assert_eq!(agent.get(&format!("/campaigns/{id}/recipients")).await.status, 403);
    assert!(!page.body.contains(&format!("/campaigns/{id}/recipients.csv")));
    // The CSV lists every recipient once, with the state.
    let csv = sup.get(&format!("/campaigns/{id}/recipients.csv")).await;
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    let mut rdr = csv::Reader::from_reader(csv.body.as_bytes());
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 4, "{}", csv.body);
    let mut by_address: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| (r[1].to_string(), r[2].to_string(), r[3].to_string()))
        .collect();
    by_address.sort();
    assert_eq!(
        by_address,
        [
            ("6281222230001".into(), "sent".into(), String::new()),
            ("6281222230002".into(), "skipped".into(), "Opted out".into()),
            (
                "6281222230003".into(),
                "skipped".into(),
                "A variable is empty and has no fallback".into()
            ),
            ("6281222230004".into(), "sent".into(), String::new()),
        ]
    );
    let skipped = sup.get(&format!("/campaigns/{id}/recipients?state=skipped")).await;
    assert_eq!(skipped.status, 200);
    assert!(skipped.body.contains("6281222230002") && !skipped.body.contains("6281222230001"));
    assert_eq!(
        sup.get(&format!("/campaigns/{id}/recipients?state=bogus")).await.status,
        400
    );

    // A follow-up to those who did not read is a new draft with its own pre-flight.
    let r = sup
        .submit(
            &format!("/campaigns/{id}"),
            &format!("/campaigns/{id}/follow-up"),
            &[("kind", "unread")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let follow = r.location().unwrap().split('?').next().unwrap().to_string();
    let page = sup.get(&follow).await;
    assert_eq!(text_of(&page.body, "pf-audience"), "2", "{}", page.body);
    assert!(
        page.body.contains(&format!("href=\"/campaigns/{id}\"")),
        "links to its parent"
    );
    assert!(
        sup.get(&format!("/campaigns/{id}"))
            .await
            .body
            .contains(&format!("href=\"{follow}\""))
    );
}

#[tokio::test]
async fn a_schedule_and_a_draft_are_cancelled_and_deleted_after_a_confirm_step() {
    let (app, _admin, graph) = seeded().await;
    let sup = app.browser();
    sup.login("super@toko.id", PASSWORD).await;
    // A scheduled start a day ahead waits; cancelling it asks first.
    let at = {
        use chrono::TimeZone;
        chrono_tz::Asia::Jakarta
            .timestamp_opt(app.state.now() + 86_400, 0)
            .unwrap()
            .format("%Y-%m-%dT%H:%M")
            .to_string()
    };
    let fields: Vec<(&str, &str)> = draft_fields(true)
        .into_iter()
        .map(|(k, v)| (k, if k == "at" { at.as_str() } else { v }))
        .collect();
    let r = sup.submit("/campaigns/new", "/campaigns", &fields).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let page_path = r.location().unwrap().split('?').next().unwrap().to_string();
    let page = sup.get(&page_path).await;
    assert!(
        page.body.contains("Asia/Jakarta") || page.body.contains("WIB"),
        "the zone is named"
    );
    assert!(page.body.contains(">Schedule</button>"));
    let r = sup.post(&format!("{page_path}/start"), &[]).await;
    assert!(r.location().unwrap().ends_with("m=campaigns.ui_flash.scheduled"));
    let page = sup.get(&page_path).await;
    assert!(page.body.contains("Scheduled"));
    // Pausing what is not sending says so (409), and nothing changes.
    let r = sup.post(&format!("{page_path}/pause"), &[]).await;
    assert_eq!(r.status, 409);
    assert!(r.body.contains("The campaign is not sending"));
    let r = sup.post(&format!("{page_path}/cancel"), &[]).await;
    assert_eq!(r.status, 200, "a confirm step first");
    assert!(r.body.contains("Yes, cancel the campaign"));
    let r = sup.post(&format!("{page_path}/cancel"), &[("confirm", "yes")]).await;
    assert_eq!(r.status, 303);
    assert!(sup.get(&page_path).await.body.contains("Cancelled"));
    assert!(
        !graph
            .seen()
            .iter()
            .any(|s| s.path.ends_with("/messages") && s.body["type"] == "template"),
        "a cancelled schedule sends nothing"
    );
    // A draft opens in the form as saved, and saves its changes.
    let id = make_draft(&sup).await;
    let edit = sup.get(&format!("/campaigns/{id}/edit")).await;
    assert_eq!(edit.status, 200);
    assert!(edit.body.contains("value=\"A-100\""), "the text variable is kept");
    assert!(edit.body.contains("value=\"first_name\" selected"));
    let fields: Vec<(&str, &str)> = draft_fields(true)
        .into_iter()
        .map(|(k, v)| {
            if k == "name" {
                (k, "Pesanan Desember (2)")
            } else {
                (k, v)
            }
        })
        .collect();
    let r = sup.post(&format!("/campaigns/{id}/edit"), &fields).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(
        sup.get(&format!("/campaigns/{id}"))
            .await
            .body
            .contains("Pesanan Desember (2)")
    );
    // A template Meta paused: the pre-flight names the problem and Start refuses.
    app.state
        .db
        .write(|c| {
            Ok(c.execute(
                "UPDATE wa_templates SET status = 'PAUSED' WHERE name = 'order_shipped' AND language = 'en'",
                [],
            )?)
        })
        .await
        .unwrap();
    let page = sup.get(&format!("/campaigns/{id}")).await;
    assert!(page.body.contains("id=\"problem\""), "{}", page.body);
    assert!(page.body.contains("Meta paused it because of low quality"));
    assert!(!page.body.contains(&format!("action=\"/campaigns/{id}/start\"")));
    let r = sup.post(&format!("/campaigns/{id}/start"), &[]).await;
    assert_eq!(r.status, 409);
    assert!(r.body.contains("Meta paused it because of low quality"));
    // The form keeps the paused template listed, named as paused, and refuses to save it.
    let edit = sup.get(&format!("/campaigns/{id}/edit")).await;
    assert!(edit.body.contains("order_shipped (en) – Paused"), "{}", edit.body);
    let r = sup.post(&format!("/campaigns/{id}/edit"), &fields).await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("id=\"template-error\""));
    // A draft is deleted after its own confirm step.
    let r = sup.post(&format!("/campaigns/{id}/delete"), &[]).await;
    assert!(r.body.contains("Yes, delete the draft"));
    let r = sup
        .post(&format!("/campaigns/{id}/delete"), &[("confirm", "yes")])
        .await;
    assert_eq!(r.location(), Some("/campaigns?m=campaigns.ui_flash.deleted"));
    assert_eq!(sup.get(&format!("/campaigns/{id}")).await.status, 404);
}

/// Sending hours that are closed now keep a started campaign running with everyone
/// waiting: pause and resume move it, and say so on the page.
#[tokio::test]
async fn a_waiting_campaign_is_paused_resumed_and_cancelled() {
    let (app, _admin, graph) = seeded().await;
    let sup = app.browser();
    sup.login("super@toko.id", PASSWORD).await;
    let clock = |t: i64| {
        use chrono::TimeZone;
        chrono_tz::Asia::Jakarta
            .timestamp_opt(t, 0)
            .unwrap()
            .format("%H:%M")
            .to_string()
    };
    let now = app.state.now();
    let (from, to) = (clock(now + 2 * 3600), clock(now + 3 * 3600));
    let fields: Vec<(&str, &str)> = draft_fields(true)
        .into_iter()
        .map(|(k, v)| match k {
            "hours_from" => (k, from.as_str()),
            "hours_to" => (k, to.as_str()),
            _ => (k, v),
        })
        .collect();
    let r = sup.submit("/campaigns/new", "/campaigns", &fields).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let page_path = r.location().unwrap().split('?').next().unwrap().to_string();
    let page = sup.get(&page_path).await;
    assert!(
        page.body.contains(&format!("{from}–{to}")),
        "the sending hours are shown"
    );
    let r = sup.post(&format!("{page_path}/start"), &[]).await;
    assert!(r.location().unwrap().ends_with("m=campaigns.ui_flash.started"));
    app.state.campaigns.tick().await.unwrap();
    let page = sup.get(&page_path).await;
    assert!(
        page.body.contains(&format!("action=\"{page_path}/pause\"")),
        "{}",
        page.body
    );
    assert_eq!(count_of(&page.body, "queued"), 2);
    let r = sup.post(&format!("{page_path}/pause"), &[]).await;
    assert!(r.location().unwrap().ends_with("m=campaigns.ui_flash.paused"));
    let page = sup.get(&page_path).await;
    assert!(page.body.contains("Paused by a person."));
    assert!(page.body.contains(&format!("action=\"{page_path}/resume\"")));
    let r = sup.post(&format!("{page_path}/resume"), &[]).await;
    assert!(r.location().unwrap().ends_with("m=campaigns.ui_flash.resumed"));
    assert!(sup.get(&page_path).await.body.contains(">Running</span>"));
    let r = sup.post(&format!("{page_path}/cancel"), &[("confirm", "yes")]).await;
    assert!(r.location().unwrap().ends_with("m=campaigns.ui_flash.cancelled"));
    let page = sup.get(&page_path).await;
    assert_eq!(count_of(&page.body, "cancelled"), 2);
    assert!(
        !graph
            .seen()
            .iter()
            .any(|s| s.path.ends_with("/messages") && s.body["type"] == "template"),
        "outside the sending hours nothing was sent"
    );
}

/// The campaign pages in a real browser: English at laptop size, Indonesian on a
/// 390 px phone, each with its heading and nothing scrolling sideways.
#[expect(clippy::too_many_lines, reason = "one walk through the pages, told in order")]
#[tokio::test]
async fn the_campaign_pages_render_in_both_languages_and_on_a_phone() {
    use crate::browser::{fill, screenshot, start_browser, wait_css};
    use fantoccini::Locator;
    let Some((_driver, c)) = start_browser().await else {
        return;
    };
    let (app, _admin, graph) = seeded().await;
    let sup = app.browser();
    sup.login("super@toko.id", PASSWORD).await;
    // One that sent (finished), one waiting for its sending hours (running), one draft.
    let sent = make_draft(&sup).await;
    let r = sup
        .submit(&format!("/campaigns/{sent}"), &format!("/campaigns/{sent}/start"), &[])
        .await;
    assert_eq!(r.status, 303);
    graph
        .wait_for("the first campaign's messages", |seen| {
            seen.iter()
                .filter(|s| s.path.ends_with("/messages") && s.body["type"] == "template")
                .count()
                >= 2
        })
        .await;
    let hm = |t: i64| {
        use chrono::TimeZone;
        chrono_tz::Asia::Jakarta
            .timestamp_opt(t, 0)
            .unwrap()
            .format("%H:%M")
            .to_string()
    };
    let now = app.state.now();
    let (from, to) = (hm(now + 2 * 3600), hm(now + 3 * 3600));
    let fields: Vec<(&str, &str)> = draft_fields(true)
        .into_iter()
        .map(|(k, v)| match k {
            "hours_from" => (k, from.as_str()),
            "hours_to" => (k, to.as_str()),
            "name" => (k, "Promo akhir tahun untuk pelanggan setia kami di seluruh Indonesia"),
            _ => (k, v),
        })
        .collect();
    let r = sup.submit("/campaigns/new", "/campaigns", &fields).await;
    let running: i64 = r
        .location()
        .unwrap()
        .trim_start_matches("/campaigns/")
        .split('?')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let r = sup
        .submit(
            &format!("/campaigns/{running}"),
            &format!("/campaigns/{running}/start"),
            &[],
        )
        .await;
    assert_eq!(r.status, 303);
    let draft = make_draft(&sup).await;
    // The first campaign's counts settle before the pages are looked at.
    for _ in 0..200 {
        if progress(&sup, sent).await["sent"] == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    c.goto(&format!("{}/login", app.base)).await.unwrap();
    fill(&c, "email", "super@toko.id").await;
    fill(&c, "password", PASSWORD).await;
    c.find(Locator::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_css(&c, "nav.sidebar").await;
    let pages = [
        ("/campaigns".to_string(), "60-campaigns"),
        ("/campaigns/new".to_string(), "61-campaign-new"),
        (format!("/campaigns/{draft}"), "62-campaign-preflight"),
        (format!("/campaigns/{running}"), "63-campaign-running"),
        (format!("/campaigns/{sent}"), "64-campaign-sent"),
        (format!("/campaigns/{sent}/recipients"), "65-campaign-recipients"),
    ];
    for (lang, width, height) in [("en", 1280, 900), ("id", 390, 844)] {
        if lang == "id" {
            c.goto(&format!("{}/account", app.base)).await.unwrap();
            c.find(Locator::Css("select[name=locale] option[value=id]"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
            c.find(Locator::Css("form[action='/account'] button"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
            wait_css(&c, ".flash").await;
        }
        c.set_window_size(width, height).await.unwrap();
        for (path, name) in &pages {
            c.goto(&format!("{}{path}", app.base)).await.unwrap();
            let h1 = wait_css(&c, "h1").await.text().await.unwrap();
            assert!(!h1.is_empty(), "{path} has a heading");
            let html = c.source().await.unwrap();
            assert!(html.contains(&format!("lang=\"{lang}\"")), "{path} in {lang}");
            assert!(!html.contains("[?]"), "{path} in {lang} misses a translation");
            let sideways = c
                .execute(
                    "return document.documentElement.scrollWidth > document.documentElement.clientWidth + 1;",
                    vec![],
                )
                .await
                .unwrap();
            assert_eq!(
                sideways,
                serde_json::json!(false),
                "{path} at {width} px does not scroll sideways"
            );
            screenshot(&c, &format!("{name}-{lang}")).await;
            // The rest of a long page, a screen at a time (to look at, not asserted).
            if std::env::var("SCREENSHOT_DIR").is_ok() {
                for part in 1..6 {
                    let more = c
                        .execute(
                            "var y = arguments[0] * window.innerHeight * 0.8; \
                             if (y >= document.documentElement.scrollHeight - window.innerHeight * 0.2) return false; \
                             window.scrollTo(0, y); return true;",
                            vec![serde_json::json!(part)],
                        )
                        .await
                        .unwrap();
                    if more != serde_json::json!(true) {
                        break;
                    }
                    screenshot(&c, &format!("{name}-{lang}-{part}")).await;
                }
            }
        }
    }
    // The live counts: a row settling shows on the open page without a reload.
    c.goto(&format!("{}/campaigns/{running}", app.base)).await.unwrap();
    wait_css(&c, "[data-live-note]:not([hidden])").await;
    c.execute("window.notReloaded = true;", vec![]).await.unwrap();
    let now = app.state.now();
    app.state
        .db
        .write(move |db| {
            Ok(db.execute(
                "UPDATE campaign_recipients SET state = 'sent', sent_at = ?2
                 WHERE id = (SELECT min(id) FROM campaign_recipients WHERE campaign_id = ?1 AND state = 'queued')",
                [running, now],
            )?)
        })
        .await
        .unwrap();
    let mut shown = String::new();
    for _ in 0..100 {
        shown = c
            .find(Locator::Css("[data-count=sent]"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if shown == "1" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(shown, "1", "the sent count follows the ledger");
    assert_eq!(
        c.execute("return window.notReloaded === true;", vec![]).await.unwrap(),
        serde_json::json!(true),
        "without a reload"
    );
    screenshot(&c, "66-campaign-live-id").await;
    c.set_window_size(1280, 900).await.unwrap();
    c.close().await.unwrap();
}
