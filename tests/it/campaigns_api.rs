//! The campaigns API through the real server and the fake Graph API: a draft made, looked
//! at (pre-flight: skips by reason, the preview), started, paused, resumed and sent to
//! each person exactly once with the campaign and recipient in the callback data; a
//! second campaign cancelled with its queue; 409s for impossible transitions, 422s
//! naming the field, 400 for JSON that does not parse, and agents' keys read-only.

use crate::common::{Browser, TestApp, api, api_key, app_with_number};
use crate::fake_graph::FakeGraph;
use chrono::{TimeZone, Timelike};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const SECRET: &str = "campaign-app-secret";

/// The app with `order_shipped` synced from the fake Graph API.
async fn app() -> (FakeGraph, TestApp, Browser) {
    let graph = FakeGraph::start();
    let (app, admin) = app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    let r = admin
        .submit("/admin/whatsapp/1", "/admin/whatsapp/1/templates/sync", &[])
        .await;
    assert_eq!(r.status, 303, "templates synced: {}", r.body);
    (graph, app, admin)
}

async fn import(app: &TestApp, key: &str, labels: &str, csv: &str) {
    let r = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap()
        .post(format!("{}/api/v1/contacts/import?labels={labels}", app.base))
        .bearer_auth(key)
        .header("content-type", "text/csv")
        .body(csv.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
}

/// Six contacts: five labelled `vip` (Budi opted out of utility messages, the third has
/// no name), one without the label.
async fn contacts(app: &TestApp, key: &str) {
    import(
        app,
        key,
        "vip",
        "name,phone\nAni,+6281200000001\nBudi,+6281200000002\n,+6281200000003\nDewi,+6281200000004\nEko,+6281200000005\n",
    )
    .await;
    import(app, key, "grosir", "name,phone\nFajar,+6281200000006\n").await;
    let (s, found) = api(app, "GET", "/api/v1/contacts?q=Budi", key, None).await;
    assert_eq!(s, 200, "{found}");
    let budi = found["data"][0]["id"].as_i64().unwrap();
    let (s, out) = api(
        app,
        "POST",
        &format!("/api/v1/contacts/{budi}/consent"),
        key,
        Some(json!({"purpose": "utility", "state": "opted_out", "wording": "Asked to stop on the phone"})),
    )
    .await;
    assert_eq!(s, 200, "{out}");
}

/// Daily sending hours that open two hours from now (business time) for two hours.
async fn hours_later(app: &TestApp) -> Value {
    let tz = app
        .state
        .db
        .read(|c| Ok(whacaster::campaigns::service::business_tz(c)?))
        .await
        .unwrap();
    let local = tz.timestamp_opt(app.clock.unix(), 0).single().unwrap();
    let minute = i64::from(local.hour()) * 60 + i64::from(local.minute());
    let clock = whacaster::campaigns::service::clock;
    json!({"from": clock((minute + 120) % 1440), "to": clock((minute + 240) % 1440)})
}

fn spec(name: &str, hours: &Value) -> Value {
    json!({"name": name, "number_id": 1,
           "template": {"name": "order_shipped", "language": "en"},
           "variables": {"1": {"field": "name"}, "2": {"text": "12.12"}},
           "audience": {"labels": ["vip"], "segments": [], "exclude_labels": []},
           "schedule": {"at": null, "hours": hours}})
}

/// The template sends the fake Graph API saw, per recipient, with their callback data.
fn sends(graph: &FakeGraph) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in graph.seen() {
        if s.method == "POST" && s.path.ends_with("/messages") && s.body["type"] == "template" {
            out.entry(s.body["to"].as_str().unwrap_or("").to_string())
                .or_default()
                .push(s.body["biz_opaque_callback_data"].as_str().unwrap_or("").to_string());
        }
    }
    out
}

/// One runner round and one outbox round, and the campaign as the API says it now.
async fn round(app: &TestApp, key: &str, id: i64) -> Value {
    app.state.campaigns.tick().await.unwrap();
    crate::common::outbox_idle(app).await;
    let (s, v) = api(app, "GET", &format!("/api/v1/campaigns/{id}"), key, None).await;
    assert_eq!(s, 200, "{v}");
    v
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
#[expect(clippy::too_many_lines, reason = "one campaign's life told in order")]
async fn a_campaign_is_drafted_checked_started_paused_resumed_and_sent_once_to_each() {
    let (graph, app, admin) = app().await;
    let key = api_key(&admin, "supervisor").await;
    let agent = api_key(&admin, "agent").await;
    contacts(&app, &key).await;
    let hours = hours_later(&app).await;

    // An agent's key reads but does not make.
    let (s, e) = api(
        &app,
        "POST",
        "/api/v1/campaigns",
        &agent,
        Some(spec("Promo 12.12", &hours)),
    )
    .await;
    assert_eq!(s, 403, "{e}");

    let (s, draft) = api(
        &app,
        "POST",
        "/api/v1/campaigns",
        &key,
        Some(spec("Promo 12.12", &hours)),
    )
    .await;
    assert_eq!(s, 201, "{draft}");
    let id = draft["id"].as_i64().unwrap();
    assert_eq!(
        (draft["state"].as_str(), draft["name"].as_str()),
        (Some("draft"), Some("Promo 12.12"))
    );
    assert_eq!(draft["template"], json!({"name": "order_shipped", "language": "en"}));
    assert_eq!(draft["schedule"]["hours"], hours);
    assert_eq!(draft["estimate"]["people"], 3, "{draft}");
    for state in whacaster::campaigns::RecipientState::ALL {
        assert_eq!(draft["counts"][state.as_str()], 0, "every state counted: {draft}");
    }
    let (s, list) = api(&app, "GET", "/api/v1/campaigns", &agent, None).await;
    assert_eq!((s, list["data"][0]["id"].as_i64()), (200, Some(id)), "{list}");

    // The pre-flight: five in the audience (not Fajar), three to send, two skipped saying why.
    let (s, pre) = api(&app, "POST", &format!("/api/v1/campaigns/{id}/preflight"), &key, None).await;
    assert_eq!(s, 200, "{pre}");
    assert_eq!(pre["counts"]["audience"], 5, "{pre}");
    assert_eq!(pre["counts"]["queued"], 3);
    assert_eq!(pre["counts"]["skipped"], json!({"opted_out": 1, "missing_variable": 1}));
    assert_eq!(pre["problem"], Value::Null);
    let texts: Vec<&str> = pre["preview"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        [
            "Hi Ani, order 12.12 has shipped.",
            "Hi Dewi, order 12.12 has shipped.",
            "Hi Eko, order 12.12 has shipped."
        ]
    );

    // A draft changes with PUT (the whole spec), then starts once.
    let (s, put) = api(
        &app,
        "PUT",
        &format!("/api/v1/campaigns/{id}"),
        &key,
        Some(spec("Promo 12.12 VIP", &hours)),
    )
    .await;
    assert_eq!((s, put["name"].as_str()), (200, Some("Promo 12.12 VIP")), "{put}");
    let (s, e) = api(&app, "POST", &format!("/api/v1/campaigns/{id}/start"), &agent, None).await;
    assert_eq!(s, 403, "{e}");
    let (s, started) = api(&app, "POST", &format!("/api/v1/campaigns/{id}/start"), &key, None).await;
    assert_eq!(s, 200, "{started}");
    assert_eq!(started["state"], "running");
    assert_eq!(started["started"]["started"], "now");
    assert_eq!(
        (
            started["counts"]["queued"].as_i64(),
            started["counts"]["skipped"].as_i64()
        ),
        (Some(3), Some(2))
    );
    let (s, again) = api(&app, "POST", &format!("/api/v1/campaigns/{id}/start"), &key, None).await;
    assert_eq!((s, code(&again)), (409, "campaigns.error.already_started"), "{again}");
    assert_eq!(again["error"]["message"], "This campaign has started already.");
    let (s, e) = api(
        &app,
        "PUT",
        &format!("/api/v1/campaigns/{id}"),
        &key,
        Some(spec("x", &hours)),
    )
    .await;
    assert_eq!((s, code(&e)), (409, "campaigns.api.not_draft"), "{e}");
    let (s, e) = api(&app, "DELETE", &format!("/api/v1/campaigns/{id}"), &key, None).await;
    assert_eq!((s, code(&e)), (409, "campaigns.api.not_draft"), "{e}");
    let (s, e) = api(&app, "POST", &format!("/api/v1/campaigns/{id}/preflight"), &key, None).await;
    assert_eq!((s, code(&e)), (409, "campaigns.error.already_started"), "{e}");

    // Outside the sending hours nothing leaves; pause and resume round trip.
    let now = round(&app, &key, id).await;
    assert_eq!(
        (now["state"].as_str(), now["counts"]["queued"].as_i64()),
        (Some("running"), Some(3)),
        "{now}"
    );
    assert!(sends(&graph).is_empty(), "outside the hours");
    let (s, paused) = api(&app, "POST", &format!("/api/v1/campaigns/{id}/pause"), &key, None).await;
    assert_eq!(s, 200, "{paused}");
    assert_eq!(
        (paused["state"].as_str(), paused["paused_reason"].as_str()),
        (Some("paused"), Some("campaigns.paused.by_person"))
    );
    let (s, e) = api(&app, "POST", &format!("/api/v1/campaigns/{id}/pause"), &key, None).await;
    assert_eq!((s, code(&e)), (409, "campaigns.api.not_running"), "{e}");
    let (s, resumed) = api(&app, "POST", &format!("/api/v1/campaigns/{id}/resume"), &key, None).await;
    assert_eq!((s, resumed["state"].as_str()), (200, Some("running")), "{resumed}");
    let (s, e) = api(&app, "POST", &format!("/api/v1/campaigns/{id}/resume"), &key, None).await;
    assert_eq!((s, code(&e)), (409, "campaigns.error.not_paused"), "{e}");

    // A second campaign for the same people, cancelled while it waits: its queue is cancelled.
    let (s, other) = api(
        &app,
        "POST",
        "/api/v1/campaigns",
        &key,
        Some(spec("Promo lain", &hours)),
    )
    .await;
    assert_eq!(s, 201, "{other}");
    let other = other["id"].as_i64().unwrap();
    let (s, _) = api(&app, "POST", &format!("/api/v1/campaigns/{other}/start"), &key, None).await;
    assert_eq!(s, 200);
    let (s, cancelled) = api(&app, "POST", &format!("/api/v1/campaigns/{other}/cancel"), &key, None).await;
    assert_eq!(s, 200, "{cancelled}");
    assert_eq!(cancelled["state"], "cancelled");
    assert_eq!(
        (
            cancelled["counts"]["cancelled"].as_i64(),
            cancelled["counts"]["queued"].as_i64()
        ),
        (Some(3), Some(0)),
        "{cancelled}"
    );
    let (s, e) = api(&app, "POST", &format!("/api/v1/campaigns/{other}/cancel"), &key, None).await;
    assert_eq!((s, code(&e)), (409, "campaigns.api.over"), "{e}");
    let path = format!("/api/v1/campaigns/{other}/recipients?state=cancelled");
    assert_eq!(
        api(&app, "GET", &path, &agent, None).await.0,
        403,
        "recipients are a supervisor's"
    );
    let (s, rows) = api(&app, "GET", &path, &key, None).await;
    assert_eq!(s, 200, "{rows}");
    assert_eq!(rows["data"].as_array().unwrap().len(), 3);
    assert!(
        rows["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["reason"] == "cancelled")
    );

    // The hours open: the first campaign sends, once to each, and finishes.
    app.clock.advance(125 * 60);
    let mut last = Value::Null;
    for _ in 0..200 {
        last = round(&app, &key, id).await;
        if last["state"] == "finished" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(last["state"], "finished", "{last}");
    assert_eq!(last["counts"]["sent"], 3, "{last}");
    assert_eq!(
        (last["counts"]["queued"].as_i64(), last["counts"]["sending"].as_i64()),
        (Some(0), Some(0))
    );
    let seen = sends(&graph);
    assert_eq!(
        seen.keys().map(String::as_str).collect::<Vec<_>>(),
        ["6281200000001", "6281200000004", "6281200000005"],
        "the opted-out, the nameless and the unlabelled are not messaged: {seen:?}"
    );
    for (to, callbacks) in &seen {
        assert_eq!(callbacks.len(), 1, "{to} messaged once: {callbacks:?}");
        assert!(
            callbacks[0].contains(&format!("campaign={id};recipient=")),
            "the callback data names the campaign and recipient: {callbacks:?}"
        );
    }

    // The ledger: the skipped with their reasons, pages by id, an unknown state refused.
    let (s, skipped) = api(
        &app,
        "GET",
        &format!("/api/v1/campaigns/{id}/recipients?state=skipped"),
        &key,
        None,
    )
    .await;
    assert_eq!(s, 200, "{skipped}");
    let reasons: Vec<(&str, &str)> = skipped["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["recipient"].as_str().unwrap(), r["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        reasons,
        [("6281200000002", "opted_out"), ("6281200000003", "missing_variable")]
    );
    assert_eq!(skipped["data"][1]["detail"], "1", "the empty variable is named");
    assert_eq!(skipped["data"][0]["reason_message"], "Opted out");
    let (s, page) = api(
        &app,
        "GET",
        &format!("/api/v1/campaigns/{id}/recipients?state=sent&limit=2"),
        &key,
        None,
    )
    .await;
    assert_eq!((s, page["data"].as_array().map(Vec::len)), (200, Some(2)), "{page}");
    assert!(page["data"][0]["sent_at"].is_i64(), "{page}");
    let after = page["next_cursor"].as_i64().unwrap();
    let (_, rest) = api(
        &app,
        "GET",
        &format!("/api/v1/campaigns/{id}/recipients?state=sent&after={after}"),
        &key,
        None,
    )
    .await;
    assert_eq!(
        (rest["data"].as_array().map(Vec::len), rest["next_cursor"].as_i64()),
        (Some(1), None),
        "{rest}"
    );
    let (s, e) = api(
        &app,
        "GET",
        &format!("/api/v1/campaigns/{id}/recipients?state=maybe"),
        &key,
        None,
    )
    .await;
    assert_eq!(s, 422, "{e}");
    assert!(
        e["error"]["fields"]["state"].as_str().unwrap().contains("needs_review"),
        "{e}"
    );

    // Nothing held for review; a follow-up to those who did not read is a new draft.
    let (s, e) = api(&app, "POST", &format!("/api/v1/campaigns/{id}/send-again"), &key, None).await;
    assert_eq!((s, code(&e)), (409, "campaigns.api.nothing_held"), "{e}");
    let (s, e) = api(
        &app,
        "POST",
        &format!("/api/v1/campaigns/{id}/follow-up"),
        &key,
        Some(json!({"kind": "maybe"})),
    )
    .await;
    assert_eq!((s, e["error"]["fields"]["kind"].is_string()), (422, true), "{e}");
    let (s, e) = api(
        &app,
        "POST",
        &format!("/api/v1/campaigns/{id}/follow-up"),
        &agent,
        Some(json!({"kind": "unread"})),
    )
    .await;
    assert_eq!(s, 403, "{e}");
    let (s, follow) = api(
        &app,
        "POST",
        &format!("/api/v1/campaigns/{id}/follow-up"),
        &key,
        Some(json!({"kind": "unread"})),
    )
    .await;
    assert_eq!(s, 201, "{follow}");
    assert_eq!(
        (
            follow["state"].as_str(),
            follow["parent_id"].as_i64(),
            follow["follow_up"].as_str()
        ),
        (Some("draft"), Some(id), Some("unread"))
    );
    let follow = follow["id"].as_i64().unwrap();
    let (s, e) = api(
        &app,
        "POST",
        &format!("/api/v1/campaigns/{follow}/follow-up"),
        &key,
        Some(json!({"kind": "failed"})),
    )
    .await;
    assert_eq!((s, code(&e)), (409, "campaigns.api.not_started"), "{e}");
    let (s, e) = api(&app, "DELETE", &format!("/api/v1/campaigns/{follow}"), &agent, None).await;
    assert_eq!(s, 403, "{e}");
    let (s, _) = api(&app, "DELETE", &format!("/api/v1/campaigns/{follow}"), &key, None).await;
    assert_eq!(s, 204);
    let (s, _) = api(&app, "GET", &format!("/api/v1/campaigns/{follow}"), &key, None).await;
    assert_eq!(s, 404);

    // A row a crash left maybe-sent (as the outbox's restart leaves it: needs_review),
    // sent again when a person says so: once more to that one, the campaign finishes again.
    let held = app
        .state
        .db
        .write(move |c| {
            Ok(c.execute(
                "UPDATE campaign_recipients SET state = 'needs_review', reason = 'interrupted'
                 WHERE campaign_id = ?1 AND recipient = '6281200000004'",
                [id],
            )?)
        })
        .await
        .unwrap();
    assert_eq!(held, 1);
    let (s, e) = api(
        &app,
        "POST",
        &format!("/api/v1/campaigns/{id}/send-again"),
        &agent,
        None,
    )
    .await;
    assert_eq!(s, 403, "{e}");
    let (s, again) = api(&app, "POST", &format!("/api/v1/campaigns/{id}/send-again"), &key, None).await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(
        (again["queued_again"].as_i64(), again["state"].as_str()),
        (Some(1), Some("running")),
        "{again}"
    );
    for _ in 0..200 {
        last = round(&app, &key, id).await;
        if last["state"] == "finished" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        (last["state"].as_str(), last["counts"]["sent"].as_i64()),
        (Some("finished"), Some(3)),
        "{last}"
    );
    let seen = sends(&graph);
    assert_eq!(seen["6281200000004"].len(), 2, "sent again to the held one: {seen:?}");
    assert_eq!(
        (seen["6281200000001"].len(), seen["6281200000005"].len()),
        (1, 1),
        "and no one else"
    );

    // Every change is audited with the key as who (read from the log: the admin's
    // session ended while the clock moved on).
    let audit: Vec<String> = app
        .state
        .db
        .read(|c| {
            let mut st = c.prepare("SELECT action || ' ' || actor FROM audit_log WHERE target LIKE 'campaign:%'")?;
            let rows = st.query_map([], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
        .unwrap();
    for action in [
        "campaign.create",
        "campaign.update",
        "campaign.start",
        "campaign.pause",
        "campaign.resume",
        "campaign.cancel",
        "campaign.follow_up",
        "campaign.delete",
        "campaign.send_again",
    ] {
        assert!(
            audit
                .iter()
                .any(|l| l.starts_with(action) && l.contains("api key shop")),
            "{action} audited with the key: {audit:?}"
        );
    }
}

#[tokio::test]
async fn bad_drafts_are_refused_naming_the_field() {
    let (_graph, app, admin) = app().await;
    let key = api_key(&admin, "admin").await;
    contacts(&app, &key).await;
    let post = |body: Value| {
        let (app, key) = (&app, &key);
        async move { api(app, "POST", "/api/v1/campaigns", key, Some(body)).await }
    };
    let good = spec("Promo", &Value::Null);
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        f(&mut v);
        v
    };

    let (s, e) = post(with(&|v| v["name"] = json!("  "))).await;
    assert_eq!((s, code(&e)), (422, "invalid"), "{e}");
    assert_eq!(
        e["error"]["fields"]["name"],
        "Give the campaign a name (up to 100 characters)."
    );
    let (s, e) = post(with(&|v| v["template"]["name"] = json!("no_such_template"))).await;
    assert_eq!(s, 422, "{e}");
    assert!(e["error"]["fields"]["template"].is_string(), "{e}");
    let (s, e) = post(with(&|v| v["audience"]["labels"] = json!(["nope"]))).await;
    assert_eq!(s, 422, "{e}");
    assert_eq!(e["error"]["fields"]["audience"], "One of the labels does not exist.");
    let (s, e) = post(with(&|v| {
        v["schedule"]["hours"] = json!({"from": "25:00", "to": "20:00"});
    }))
    .await;
    assert_eq!(s, 422, "{e}");
    assert!(e["error"]["fields"]["schedule.hours"].is_string(), "{e}");
    let (s, e) = post(with(&|v| v["schedule"]["at"] = json!("2020-01-01T09:00"))).await;
    assert_eq!(s, 422, "{e}");
    assert!(e["error"]["fields"]["schedule.at"].is_string(), "{e}");
    let (s, e) = post(with(&|v| v["variables"] = json!({"1": {"field": "name"}}))).await;
    assert_eq!(s, 422, "{e}");
    assert!(e["error"]["fields"]["variables"].is_string(), "{e}");
    // Several at once: each named.
    let (s, e) = post(json!({"number_id": 1, "template": {"name": "x", "language": "en"}})).await;
    assert_eq!(s, 422, "{e}");
    for f in ["name", "template", "audience"] {
        assert!(e["error"]["fields"][f].is_string(), "{f}: {e}");
    }

    // JSON that does not parse is a 400 that says what is wrong, in one line.
    let (s, e) = post(with(&|v| v["nama"] = json!("typo"))).await;
    assert_eq!((s, code(&e)), (400, "bad_request"), "{e}");
    let message = e["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("unknown field `nama`") && !message.contains('\n'),
        "{message}"
    );
    let (s, e) = post(with(&|v| v["number_id"] = json!("satu"))).await;
    assert_eq!(s, 400, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("invalid type"), "{e}");

    // Nothing was made; an unknown campaign is 404 everywhere.
    let (s, list) = api(&app, "GET", "/api/v1/campaigns", &key, None).await;
    assert_eq!((s, list["data"].as_array().map(Vec::len)), (200, Some(0)), "{list}");
    for (method, path) in [
        ("GET", "/api/v1/campaigns/999"),
        ("POST", "/api/v1/campaigns/999/start"),
        ("POST", "/api/v1/campaigns/999/pause"),
        ("POST", "/api/v1/campaigns/999/preflight"),
        ("GET", "/api/v1/campaigns/999/recipients"),
        ("DELETE", "/api/v1/campaigns/999"),
    ] {
        assert_eq!(api(&app, method, path, &key, None).await.0, 404, "{method} {path}");
    }

    // Meta pauses the template: the draft cannot start, and says why.
    let (s, draft) = post(good.clone()).await;
    assert_eq!(s, 201, "{draft}");
    let id = draft["id"].as_i64().unwrap();
    let news = json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "time": 1_767_230_000,
        "changes": [{"field": "message_template_status_update", "value": {"event": "PAUSED", "message_template_id": 2,
            "message_template_name": "order_shipped", "message_template_language": "en", "reason": "NONE",
            "message_template_category": "UTILITY"}}]}]});
    crate::common::deliver(&app, SECRET, &news).await;
    let (s, e) = api(&app, "POST", &format!("/api/v1/campaigns/{id}/start"), &key, None).await;
    assert_eq!((s, code(&e)), (409, "templates.unusable.paused"), "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty() && m != "[?]"),
        "{e}"
    );
    let (_, pre) = api(&app, "POST", &format!("/api/v1/campaigns/{id}/preflight"), &key, None).await;
    assert_eq!(pre["problem"], "templates.unusable.paused", "{pre}");
    let (_, still) = api(&app, "GET", &format!("/api/v1/campaigns/{id}"), &key, None).await;
    assert_eq!(still["state"], "draft");

    let doc = api(&app, "GET", "/api/v1/openapi.json", &key, None).await.1;
    assert!(doc["paths"]["/campaigns/{id}/start"]["post"]["responses"]["409"].is_object());
    assert!(doc["components"]["schemas"]["CampaignSpec"].is_object());
}
