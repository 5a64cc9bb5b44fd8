//! The chatbot through the real server, the real encrypted database and the fake
//! Graph API: the document over the API (round trip, a bad one refused with every
//! problem named, roles), keyword kinds and priority, the welcome once, a flow routed
//! by button id with a validated question and retries, a stored answer, hand-off
//! silencing the bot (also an agent replying in the same moment as a rule fires: never
//! a bot message after the agent's), resolving gives it back, opted-out contacts and
//! STOP ignored, the loop guard, a broken document or rule logged and skipped without
//! stalling the intake, and business hours across midnight with a holiday and the away
//! message once.

use crate::common::{TestApp, api, api_key, app_with_number, deliver, inbound_text, outbox_idle};
use crate::fake_graph::FakeGraph;
use serde_json::{Value, json};

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const PHONE: &str = "106540352242922";

/// What the fake Graph API was asked to send, as text (a text's body, an interactive
/// message's body, a button's titles after a `|`), in order.
fn sent(graph: &FakeGraph) -> Vec<String> {
    sent_to(graph, None)
}

/// As [`sent`], only what went to `to` (all when `None`).
fn sent_to(graph: &FakeGraph, to: Option<&str>) -> Vec<String> {
    graph
        .seen()
        .iter()
        .filter(|s| s.path.ends_with("/messages") && s.body.get("status").is_none())
        .filter(|s| to.is_none_or(|t| s.body["to"].as_str().is_some_and(|x| x.trim_start_matches('+') == t)))
        .map(|s| {
            let b = &s.body;
            match b["type"].as_str() {
                Some("text") => b["text"]["body"].as_str().unwrap_or_default().to_string(),
                Some("interactive") => {
                    let titles: Vec<&str> = b["interactive"]["action"]["buttons"]
                        .as_array()
                        .map(|v| v.iter().filter_map(|x| x["reply"]["title"].as_str()).collect())
                        .unwrap_or_default();
                    format!(
                        "{}|{}",
                        b["interactive"]["body"]["text"].as_str().unwrap_or_default(),
                        titles.join(",")
                    )
                }
                other => format!("<{}>", other.unwrap_or("?")),
            }
        })
        .collect()
}

fn document() -> Value {
    json!({
        "enabled": true,
        "welcome": {"reply": {"text": "Halo! Selamat datang di Toko Kopi.", "choices": [
            {"id": "w_order", "title": "Pesan kopi", "next": "flow:order"},
            {"id": "w_cs", "title": "Bicara dengan CS", "next": "handoff"}]}},
        "rules": [
            {"id": "price", "match": "contains", "patterns": ["harga", "price"],
             "then": {"do": "reply", "reply": {"text": "Harga mulai Rp25.000"}}},
            {"id": "price_gayo", "match": "contains", "patterns": ["harga gayo"], "priority": 10,
             "then": {"do": "reply", "reply": {"text": "Gayo Rp60.000"}}},
            {"id": "hours", "match": "exact", "patterns": ["jam buka"],
             "then": {"do": "reply", "reply": {"text": "Buka 09.00-17.00"}}},
            {"id": "invoice", "match": "regex", "patterns": ["^inv-?\\d{4}$"],
             "then": {"do": "reply", "reply": {"text": "Cek pesanan Anda"}}},
            {"id": "agent", "match": "exact", "patterns": ["agen", "cs", "agent"], "then": {"do": "handoff"}}
        ],
        "flows": [{"id": "order", "name": "Pesan", "steps": [
            {"id": "qty", "type": "ask", "text": "Berapa kg?", "store": "order_kg", "validate": "number",
             "invalid_text": "Tulis angka saja ya", "next": "thanks"},
            {"id": "thanks", "type": "end", "text": "Terima kasih, pesanan dicatat"}]}],
        "handoff": {"assign": "unassigned", "text": "Kami sambungkan ke tim kami"}
    })
}

async fn with_bot(doc: Value) -> (TestApp, FakeGraph, String) {
    let graph = FakeGraph::start();
    let (app, admin) = app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    let key = api_key(&admin, "supervisor").await;
    let (status, body) = api(&app, "PUT", "/api/v1/numbers/1/bot", &key, Some(doc)).await;
    assert_eq!(status, 200, "bot saved: {body}");
    (app, graph, key)
}

async fn say(app: &TestApp, n: u32, from: &str, text: &str) {
    let now = app.state.now();
    inbound_text(
        app,
        SECRET,
        PHONE,
        &format!("wamid.{from}.{n}"),
        from,
        "Budi",
        now,
        text,
    )
    .await;
    outbox_idle(app).await;
}

async fn press(app: &TestApp, n: u32, from: &str, id: &str, title: &str) {
    let now = app.state.now();
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "62812", "phone_number_id": PHONE},
        "contacts": [{"profile": {"name": "Budi"}, "wa_id": from}],
        "messages": [{"from": from, "id": format!("wamid.{from}.{n}"), "timestamp": now.to_string(), "type": "interactive",
            "interactive": {"type": "button_reply", "button_reply": {"id": id, "title": title}}}]}}]}]});
    deliver(app, SECRET, &body).await;
    outbox_idle(app).await;
}

async fn decisions(app: &TestApp) -> Vec<String> {
    app.state
        .db
        .read(|c| {
            let mut stmt = c.prepare("SELECT decision FROM bot_log ORDER BY id")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<String>, _>>()?)
        })
        .await
        .expect("read")
}

async fn conversation_of(app: &TestApp, wa: &str) -> i64 {
    let wa = wa.to_string();
    app.state
        .db
        .read(move |c| {
            Ok(c.query_row(
                "SELECT x.id FROM conversations x JOIN contacts k ON k.id = x.contact_id WHERE k.wa_id = ?1",
                [wa],
                |r| r.get(0),
            )?)
        })
        .await
        .expect("conversation")
}

#[tokio::test]
async fn the_document_round_trips_and_a_bad_one_is_refused_whole_with_every_problem_named() {
    let (app, _graph, key) = with_bot(document()).await;
    let (status, got) = api(&app, "GET", "/api/v1/numbers/1/bot", &key, None).await;
    assert_eq!(status, 200);
    assert_eq!(got["rules"][4]["id"], "agent");
    assert_eq!(got["guards"]["max_per_minute"], 5, "defaults are spelled out");
    // Put back what came out: the same document, a new version.
    let (status, v) = api(&app, "PUT", "/api/v1/numbers/1/bot", &key, Some(got.clone())).await;
    assert_eq!((status, v["version"].as_i64()), (200, Some(2)));

    let mut bad = got.clone();
    bad["rules"][0]["patterns"] = json!(["(unclosed"]);
    bad["rules"][0]["match"] = json!("regex");
    bad["flows"][0]["steps"][0]["next"] = json!("nowhere");
    bad["welcome"]["reply"]["choices"][0]["title"] = json!("A button title far too long");
    bad["handoff"]["assign"] = json!(999);
    let (status, err) = api(&app, "PUT", "/api/v1/numbers/1/bot", &key, Some(bad)).await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["error"]["code"], "invalid_bot");
    let paths: Vec<&str> = err["error"]["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter_map(|p| p["path"].as_str())
        .collect();
    for expected in [
        "rules[0].patterns[0]",
        "flows[0].steps[0].next",
        "welcome.reply.choices[0].title",
        "handoff.assign",
    ] {
        assert!(paths.contains(&expected), "{expected} named in {paths:?}");
    }
    let (_, now) = api(&app, "GET", "/api/v1/numbers/1/bot", &key, None).await;
    assert_eq!(now, got, "nothing of the bad document was saved");
    let (status, err) = api(
        &app,
        "PUT",
        "/api/v1/numbers/1/bot",
        &key,
        Some(json!({"enabled": true, "rulez": []})),
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        err["error"]["message"].as_str().unwrap_or_default().contains("rulez"),
        "{err}"
    );
    let audited: i64 = app
        .state
        .db
        .read(|c| {
            Ok(
                c.query_row("SELECT count(*) FROM audit_log WHERE action = 'bot.update'", [], |r| {
                    r.get(0)
                })?,
            )
        })
        .await
        .expect("read");
    assert_eq!(audited, 2, "each saved change is audited, refused ones are not");
}

#[tokio::test]
async fn agents_keys_cannot_read_or_change_the_bot() {
    let graph = FakeGraph::start();
    let (app, admin) = app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    let agent = api_key(&admin, "agent").await;
    assert_eq!(api(&app, "GET", "/api/v1/numbers/1/bot", &agent, None).await.0, 403);
    assert_eq!(
        api(&app, "PUT", "/api/v1/numbers/1/bot", &agent, Some(document()))
            .await
            .0,
        403
    );
    let sup = api_key(&admin, "supervisor").await;
    assert_eq!(api(&app, "GET", "/api/v1/numbers/9/bot", &sup, None).await.0, 404);
}

#[tokio::test]
async fn keywords_welcome_once_and_a_flow_by_button_id_with_a_validated_answer() {
    let mut doc = document();
    // Ten answers inside a minute: more than the default loop guard lets through.
    doc["guards"] = json!({"max_per_minute": 20});
    let (app, graph, _) = with_bot(doc).await;
    let budi = "6281234500001";
    say(&app, 1, budi, "Halo kak").await;
    assert_eq!(
        sent(&graph),
        vec!["Halo! Selamat datang di Toko Kopi.|Pesan kopi,Bicara dengan CS"],
        "the welcome, with its buttons"
    );
    say(&app, 2, budi, "Berapa HARGA kopinya?").await;
    say(&app, 3, budi, "harga gayo berapa").await;
    say(&app, 4, budi, "Jam buka!").await;
    say(&app, 5, budi, "jam buka hari ini").await;
    say(&app, 6, budi, "INV-2291").await;
    assert_eq!(
        sent(&graph)[1..],
        [
            "Harga mulai Rp25.000",
            "Gayo Rp60.000",
            "Buka 09.00-17.00",
            "Cek pesanan Anda"
        ],
        "contains, priority, exact (punctuation ignored; more words is no exact match), regex; no second welcome"
    );
    // The title typed is not the button pressed; the id is.
    press(&app, 7, budi, "w_order", "anything at all").await;
    say(&app, 8, budi, "dua").await;
    say(&app, 9, budi, "2,5").await;
    assert_eq!(
        sent(&graph)[5..],
        [
            "Berapa kg?",
            "Tulis angka saja ya",
            "Berapa kg?",
            "Terima kasih, pesanan dicatat"
        ]
    );
    let kg: String = app
        .state
        .db
        .read(move |c| {
            Ok(c.query_row(
                "SELECT json_extract(attributes, '$.order_kg') FROM contacts WHERE wa_id = ?1",
                [budi],
                |r| r.get(0),
            )?)
        })
        .await
        .expect("read");
    assert_eq!(kg, "2.5", "the answer went to the contact's field");
    let log = decisions(&app).await;
    assert_eq!(log.first().map(String::as_str), Some("welcome"));
    assert_eq!(log.iter().filter(|d| d.contains("rule")).count(), 4);
    assert!(log.contains(&"choice+flow".to_string()), "{log:?}");
    assert!(log.iter().any(|d| d.starts_with("invalid")), "{log:?}");
    assert!(
        log.iter().any(|d| d.starts_with("no_match")),
        "'jam buka hari ini' matched nothing: {log:?}"
    );
}

#[tokio::test]
async fn a_hand_off_silences_the_bot_until_the_conversation_is_resolved() {
    let (app, graph, key) = with_bot(document()).await;
    let siti = "6281234500002";
    say(&app, 1, siti, "halo").await;
    say(&app, 2, siti, "CS").await;
    assert_eq!(
        sent(&graph).last().map(String::as_str),
        Some("Kami sambungkan ke tim kami")
    );
    say(&app, 3, siti, "harga?").await;
    assert_eq!(sent(&graph).len(), 2, "silent while a person has it");
    let id = conversation_of(&app, siti).await;
    let events: Vec<String> = app
        .state
        .db
        .read(move |c| {
            let mut s = c.prepare("SELECT kind FROM conversation_events WHERE conversation_id = ?1 ORDER BY id")?;
            let rows = s.query_map([id], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<String>, _>>()?)
        })
        .await
        .expect("read");
    assert!(events.contains(&"bot_handoff".to_string()), "{events:?}");
    assert_eq!(decisions(&app).await.last().map(String::as_str), Some("handed_off"));
    let (status, _) = api(
        &app,
        "POST",
        &format!("/api/v1/conversations/{id}/status"),
        &key,
        Some(json!({"status": "resolved"})),
    )
    .await;
    assert_eq!(status, 200);
    say(&app, 4, siti, "harga?").await;
    assert_eq!(
        sent(&graph).last().map(String::as_str),
        Some("Harga mulai Rp25.000"),
        "back after resolving"
    );
}

#[tokio::test]
async fn an_agent_reply_silences_the_bot_and_never_loses_a_race_to_it() {
    let (app, graph, key) = with_bot(document()).await;
    // Five customers each get a reply from an agent at the same moment their rule fires.
    let people: Vec<String> = (0..5).map(|i| format!("62812345001{i:02}")).collect();
    for (i, p) in people.iter().enumerate() {
        say(&app, 1, p, &format!("halo {i}")).await;
    }
    let mut ids = Vec::new();
    for p in &people {
        ids.push(conversation_of(&app, p).await);
    }
    let now = app.state.now();
    let mut tasks = Vec::new();
    for (p, id) in people.iter().zip(&ids) {
        let (app, key, p, id) = (&app, &key, p.clone(), *id);
        tasks.push(async move {
            let customer = async {
                inbound_text(app, SECRET, PHONE, &format!("wamid.{p}.2"), &p, "Budi", now, "harga").await;
            };
            let agent = async {
                let (status, _) = api(
                    app,
                    "POST",
                    &format!("/api/v1/conversations/{id}/messages"),
                    key,
                    Some(json!({"type": "text", "body": format!("Agent here for {p}")})),
                )
                .await;
                assert_eq!(status, 202);
            };
            tokio::join!(customer, agent);
        });
    }
    futures_util::future::join_all(tasks).await;
    outbox_idle(&app).await;
    for p in &people {
        let texts = sent_to(&graph, Some(p));
        let agent_at = texts
            .iter()
            .position(|t| t == &format!("Agent here for {p}"))
            .unwrap_or_else(|| panic!("the agent's reply went out to {p}: {texts:?}"));
        // Whichever committed first: the bot's answer either went before the agent's, or
        // was cancelled by the take-over. Never after it.
        assert!(
            !texts[agent_at..].iter().any(|t| t == "Harga mulai Rp25.000"),
            "a bot reply followed the agent's for {p}: {texts:?}"
        );
    }
    // Afterwards the bot is silent in every one of them.
    let before = sent(&graph).len();
    for p in &people {
        say(&app, 3, p, "harga").await;
    }
    assert_eq!(sent(&graph).len(), before, "a person has each conversation now");
}

#[tokio::test]
async fn opted_out_contacts_and_stop_keywords_are_not_answered_by_the_bot() {
    let (app, graph, _) = with_bot(document()).await;
    let ani = "6281234500003";
    say(&app, 1, ani, "halo").await;
    let before = sent(&graph).len();
    say(&app, 2, ani, "STOP").await;
    let after_stop = sent(&graph);
    assert_eq!(
        after_stop.len(),
        before + 1,
        "only the opt-out confirmation: {after_stop:?}"
    );
    assert_eq!(
        decisions(&app).await.last().map(String::as_str),
        Some("consent_keyword")
    );
    // Refused every message (utility too): the bot does not answer at all.
    let id = conversation_of(&app, ani).await;
    app.state
        .db
        .write(move |c| {
            c.execute(
                "UPDATE contacts SET consent_utility = 'opted_out' WHERE id = (SELECT contact_id FROM conversations WHERE id = ?1)",
                [id],
            )?;
            Ok(())
        })
        .await
        .expect("write");
    say(&app, 3, ani, "harga").await;
    assert_eq!(sent(&graph).len(), before + 1);
    assert_eq!(decisions(&app).await.last().map(String::as_str), Some("opted_out"));
}

#[tokio::test]
async fn the_loop_guard_caps_bot_messages_per_minute() {
    let mut doc = document();
    doc["guards"] = json!({"max_per_minute": 2});
    let (app, graph, _) = with_bot(doc).await;
    let bot = "6281234500004";
    for n in 0..5 {
        say(&app, n, bot, "harga").await;
    }
    let count = sent(&graph).len();
    assert_eq!(count, 2, "the welcome and one answer, then silence: {:?}", sent(&graph));
    assert!(
        decisions(&app)
            .await
            .iter()
            .filter(|d| d.contains("rate_guard"))
            .count()
            >= 3
    );
}

#[tokio::test]
async fn a_broken_document_or_rule_is_logged_and_skipped_and_the_intake_goes_on() {
    let (app, graph, _) = with_bot(document()).await;
    // A rule whose pattern no longer compiles (written past the validator): skipped,
    // the others still answer.
    app.state
        .db
        .write(|c| {
            c.execute(
                "UPDATE bots SET document = json_set(document, '$.rules[0].match', 'regex', '$.rules[0].patterns', json('[\"(\"]')),
                                 version = version + 1",
                [],
            )?;
            Ok(())
        })
        .await
        .expect("write");
    let dewi = "6281234500005";
    say(&app, 1, dewi, "halo").await;
    say(&app, 2, dewi, "harga gayo").await;
    say(&app, 3, dewi, "harga").await;
    assert_eq!(
        sent(&graph)[1..],
        ["Gayo Rp60.000"],
        "the broken rule is skipped, not the bot"
    );
    // A document that does not read at all: the bot is silent, messages still land.
    app.state
        .db
        .write(|c| {
            c.execute(
                "UPDATE bots SET document = '{\"enabled\": tru', version = version + 1",
                [],
            )?;
            Ok(())
        })
        .await
        .expect("write");
    say(&app, 4, dewi, "harga gayo").await;
    assert_eq!(sent(&graph).len(), 2);
    let stored: i64 = app
        .state
        .db
        .read(|c| Ok(c.query_row("SELECT count(*) FROM messages WHERE direction = 'in'", [], |r| r.get(0))?))
        .await
        .expect("read");
    assert_eq!(stored, 4, "every message was processed");
}

/// An `Etc/GMT±N` zone where the local time is now between 22:00 and 23:59, so an
/// interval `22:00-02:00` is open and crosses midnight.
fn late_evening_zone(now: i64) -> (String, String) {
    use chrono::TimeZone;
    for offset in -12..=14 {
        // Etc/GMT-7 is UTC+7 (the sign is POSIX's).
        let name = if offset >= 0 {
            format!("Etc/GMT-{offset}")
        } else {
            format!("Etc/GMT+{}", -offset)
        };
        let Ok(tz) = name.parse::<chrono_tz::Tz>() else {
            continue;
        };
        let local = tz.timestamp_opt(now, 0).single().expect("time");
        if local.format("%H").to_string().parse::<u32>().is_ok_and(|h| h >= 22) {
            return (name, local.format("%Y-%m-%d").to_string());
        }
    }
    panic!("some zone is always in its late evening");
}

#[tokio::test]
async fn business_hours_across_midnight_a_holiday_and_the_away_message_once() {
    let graph = FakeGraph::start();
    let (app, admin) = app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    let key = api_key(&admin, "supervisor").await;
    let (zone, today) = late_evening_zone(app.state.now());
    let all_week: serde_json::Map<String, Value> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .map(|d| ((*d).to_string(), json!(["22:00-02:00"])))
        .collect();
    let mut doc = document();
    doc["welcome"] = Value::Null;
    doc["hours"] =
        json!({"timezone": zone, "weekly": all_week, "away_text": "Kami sedang tutup", "bot_while_closed": false});
    let (status, body) = api(&app, "PUT", "/api/v1/numbers/1/bot", &key, Some(doc.clone())).await;
    assert_eq!(status, 200, "{body}");
    let eko = "6281234500006";
    say(&app, 1, eko, "harga").await;
    assert_eq!(
        sent(&graph),
        ["Harga mulai Rp25.000"],
        "open: the interval crosses midnight"
    );
    doc["hours"]["holidays"] = json!([today]);
    let (status, _) = api(&app, "PUT", "/api/v1/numbers/1/bot", &key, Some(doc)).await;
    assert_eq!(status, 200);
    say(&app, 2, eko, "harga").await;
    say(&app, 3, eko, "halo?").await;
    assert_eq!(
        sent(&graph)[1..],
        ["Kami sedang tutup"],
        "a holiday is closed; the away message once"
    );
    let log = decisions(&app).await;
    assert_eq!(log[1..], ["away", "closed"]);
}

#[tokio::test]
async fn the_welcome_comes_again_after_the_quiet_days_and_a_rule_can_send_a_picture() {
    let mut doc = document();
    doc["welcome"]["after_silence_days"] = json!(3);
    doc["rules"][2]["then"]["reply"]["media"] = json!({"kind": "image", "link": "https://toko.example/jam.png"});
    let (app, graph, _) = with_bot(doc).await;
    let rina = "6281234500008";
    say(&app, 1, rina, "halo").await;
    say(&app, 2, rina, "halo lagi").await;
    assert_eq!(sent(&graph).len(), 1, "one welcome, not two");
    app.clock.advance(4 * 86_400);
    say(&app, 3, rina, "halo, masih buka?").await;
    assert_eq!(sent(&graph).len(), 2, "four quiet days: welcomed again");
    say(&app, 4, rina, "jam buka").await;
    let picture = graph
        .seen()
        .into_iter()
        .rev()
        .find(|s| s.path.ends_with("/messages"))
        .expect("a send");
    assert_eq!(picture.body["type"], "image");
    assert_eq!(picture.body["image"]["link"], "https://toko.example/jam.png");
    assert_eq!(
        picture.body["image"]["caption"], "Buka 09.00-17.00",
        "the text is the caption"
    );
}

#[tokio::test]
async fn a_hand_off_goes_to_the_agent_the_document_names() {
    let graph = FakeGraph::start();
    let (app, admin) = app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    app.create_user(&admin, "dian@toko.id", "agent").await;
    let dian: i64 = app
        .state
        .db
        .read(|c| Ok(c.query_row("SELECT id FROM users WHERE email = 'dian@toko.id'", [], |r| r.get(0))?))
        .await
        .expect("user");
    let key = api_key(&admin, "supervisor").await;
    let mut doc = document();
    doc["handoff"]["assign"] = json!(dian);
    let (status, body) = api(&app, "PUT", "/api/v1/numbers/1/bot", &key, Some(doc)).await;
    assert_eq!(status, 200, "{body}");
    let tono = "6281234500009";
    say(&app, 1, tono, "halo").await;
    let id = conversation_of(&app, tono).await;
    let db = app.state.db.clone();
    let assignee = || {
        let db = db.clone();
        async move {
            db.read(move |c| {
                Ok(
                    c.query_row("SELECT assignee_id FROM conversations WHERE id = ?1", [id], |r| {
                        r.get::<_, Option<i64>>(0)
                    })?,
                )
            })
            .await
            .expect("read")
        }
    };
    assert_eq!(assignee().await, None, "the bot has it: nobody assigned yet");
    say(&app, 2, tono, "agen").await;
    assert_eq!(assignee().await, Some(dian), "handed to the named agent");
}

#[tokio::test]
async fn bot_decisions_go_with_the_messages_under_retention() {
    let (app, _graph, _) = with_bot(document()).await;
    say(&app, 1, "6281234500010", "harga").await;
    assert_eq!(decisions(&app).await.len(), 1);
    let now = app.state.now();
    let media = app.state.media.store.clone();
    whacaster::privacy::retention::apply_retention(&app.state.db, &media, now + 200 * 86_400)
        .await
        .expect("retention");
    assert_eq!(decisions(&app).await.len(), 1, "seven months old: kept");
    whacaster::privacy::retention::apply_retention(&app.state.db, &media, now + 400 * 86_400)
        .await
        .expect("retention");
    assert!(decisions(&app).await.is_empty(), "past the message retention: gone");
}
