//! Campaigns through the real server and the fake Graph API: the plan (skips with
//! their reasons), the pace through the one outbox, statuses and replies moving the
//! ledger, each error class, the daily limit, the frequency cap, pause/resume/cancel
//! sending each person once, a template Meta paused pausing the campaign, and kill -9
//! of the real binary mid-campaign: every person messaged once or held for review.

use crate::common::{TestApp, app_with_number, deliver, inbound_text, status_update};
use crate::fake_graph::{FakeGraph, Fault, meta_error};
use serde_json::json;
use std::collections::BTreeMap;
use whacaster::audit::Actor;
use whacaster::campaigns::service::{self, Spec, Started, TemplateRef};
use whacaster::campaigns::{self, Audience, CampaignId, CampaignState, RecipientState, Variable};
use whacaster::contacts::consent::{self, Change, Purpose, Source, State};

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const PHONE: &str = "106540352242922";
const WABA: &str = "102290129340398";

/// A contact to seed: WhatsApp id, name, labels, marketing consent.
struct Person {
    wa: &'static str,
    name: &'static str,
    labels: &'static [&'static str],
    marketing: State,
}

fn p(wa: &'static str, name: &'static str, labels: &'static [&'static str]) -> Person {
    Person {
        wa,
        name,
        labels,
        marketing: State::OptedIn,
    }
}

async fn setup(mps: &str) -> (TestApp, FakeGraph) {
    let graph = FakeGraph::start();
    let (app, admin) = app_with_number(&graph, SECRET, "tok", mps, |_| {}).await;
    let r = admin
        .submit("/admin/whatsapp/1", "/admin/whatsapp/1/templates/sync", &[])
        .await;
    assert!(r.status < 400, "templates synced: {}", r.body);
    (app, graph)
}

/// Contacts with labels; consent recorded through `consent::record`.
async fn seed(app: &TestApp, people: Vec<Person>) {
    let now = app.state.now();
    app.state
        .db
        .write(move |c| {
            for p in &people {
                c.execute(
                    "INSERT INTO contacts (wa_id, phone_e164, name, created_at) VALUES (?1, '+' || ?1, ?2, ?3)",
                    rusqlite::params![p.wa, p.name, now],
                )?;
                let contact = c.last_insert_rowid();
                for l in p.labels {
                    c.execute(
                        "INSERT OR IGNORE INTO labels (name, created_at) VALUES (?1, ?2)",
                        rusqlite::params![l, now],
                    )?;
                    c.execute(
                        "INSERT INTO contact_labels (contact_id, label_id) SELECT ?1, id FROM labels WHERE name = ?2",
                        rusqlite::params![contact, l],
                    )?;
                }
                for purpose in [Purpose::Marketing, Purpose::Utility] {
                    let state = match (purpose, p.marketing) {
                        (Purpose::Utility, State::OptedOut) => State::OptedOut,
                        (Purpose::Utility, _) | (_, State::Unknown) => continue,
                        (_, s) => s,
                    };
                    let change = Change {
                        contact,
                        purpose,
                        state,
                        source: Source::Agent,
                        occurred_at: None,
                        wording: "asked at the counter",
                        evidence: "",
                    };
                    consent::record(c, &change, &Actor::system(), now)?;
                }
            }
            Ok(())
        })
        .await
        .unwrap();
}

fn spec(labels: &[&str], variables: &[(&str, Variable)]) -> Spec {
    Spec {
        name: "Promo 12.12".into(),
        number_id: 1,
        template: TemplateRef {
            name: "order_shipped".into(),
            language: "id".into(),
        },
        variables: variables.iter().map(|(k, v)| ((*k).to_string(), v.clone())).collect(),
        audience: Audience {
            labels: labels.iter().map(|l| (*l).to_string()).collect(),
            ..Audience::default()
        },
        ..Spec::default()
    }
}

fn field(f: &str, fallback: Option<&str>) -> Variable {
    Variable {
        field: Some(f.into()),
        fallback: fallback.map(Into::into),
        ..Variable::default()
    }
}

fn text(t: &str) -> Variable {
    Variable {
        text: Some(t.into()),
        ..Variable::default()
    }
}

fn standard_vars() -> Vec<(&'static str, Variable)> {
    vec![("1", field("first_name", Some("Kak"))), ("2", text("INV-1212"))]
}

/// Creates the draft (as a supervisor would) and starts it.
async fn create_and_start(app: &TestApp, s: Spec) -> (CampaignId, Started) {
    let now = app.state.now();
    app.state
        .db
        .write(move |c| {
            let known = whacaster::contacts::segments::Known {
                labels: c
                    .prepare("SELECT name FROM labels")?
                    .query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?,
                numbers: Vec::new(),
            };
            let actor = Actor::system();
            let k = service::create(c, &known, &actor, &s, now)?
                .map_err(|e| whacaster::error::AppError::internal(format!("draft refused: {:?}", e.0)))?;
            let started = service::start(c, k.id, &actor, now)?
                .map_err(|why| whacaster::error::AppError::internal(format!("start refused: {why}")))?;
            Ok((k.id, started))
        })
        .await
        .unwrap()
}

async fn counts(app: &TestApp, id: CampaignId) -> BTreeMap<RecipientState, i64> {
    app.state.db.read(move |c| Ok(campaigns::counts(c, id)?)).await.unwrap()
}

async fn campaign(app: &TestApp, id: CampaignId) -> campaigns::Campaign {
    app.state
        .db
        .read(move |c| Ok(campaigns::find(c, id)?.unwrap()))
        .await
        .unwrap()
}

/// One recipient row by WhatsApp id.
async fn row(app: &TestApp, id: CampaignId, wa: &str) -> campaigns::Recipient {
    let wa = wa.to_string();
    app.state
        .db
        .read(move |c| {
            Ok(campaigns::recipients(c, id, None, 0, 10_000)?
                .into_iter()
                .find(|r| r.recipient == wa)
                .unwrap())
        })
        .await
        .unwrap()
}

/// Runner and outbox rounds until `done` holds (or a clear failure).
async fn until(app: &TestApp, id: CampaignId, what: &str, done: impl Fn(&BTreeMap<RecipientState, i64>) -> bool) {
    for _ in 0..400 {
        app.state.campaigns.tick().await.unwrap();
        app.state.dispatcher().dispatch_round().await.unwrap();
        let k = counts(app, id).await;
        if done(&k) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!(
        "{what}: never; counts {:?}, campaign {:?}",
        counts(app, id).await,
        campaign(app, id).await.state
    );
}

fn n(k: &BTreeMap<RecipientState, i64>, s: RecipientState) -> i64 {
    k.get(&s).copied().unwrap_or(0)
}

/// Template sends the fake Graph API saw, per recipient.
fn sends_per_person(graph: &FakeGraph) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for s in graph.seen() {
        if s.path.ends_with("/messages") && s.body["type"] == "template" {
            *m.entry(s.body["to"].as_str().unwrap_or("").to_string()).or_insert(0) += 1;
        }
    }
    m
}

#[tokio::test]
async fn a_campaign_plans_skips_with_reasons_sends_once_and_follows_statuses_and_replies() {
    let (app, graph) = setup("80").await;
    let mut out = p("6281200000004", "Opted Out", &["vip"]);
    out.marketing = State::OptedOut;
    seed(
        &app,
        vec![
            p("6281200000001", "Budi Santoso", &["vip"]),
            p("6281200000002", "", &["vip", "pameran"]),
            p("6281200000003", "Citra", &["pameran"]),
            out,
            p("6281200000005", "Tanpa Label", &[]),
        ],
    )
    .await;
    // Citra is excluded by her label; the one without a label is not in the audience.
    let mut s = spec(&["vip", "pameran"], &standard_vars());
    s.audience.exclude_labels = vec!["PAMERAN".into()];
    s.audience.labels.push("vip".into());
    // A first name from the field, the fallback where there is none.
    let (id, started) = create_and_start(&app, s).await;
    let Started::Now { counts: planned } = started else {
        panic!("started now")
    };
    assert_eq!(
        planned.audience, 2,
        "vip minus pameran: Budi and the opted-out one: {planned:?}"
    );
    assert_eq!(planned.queued, 1);
    assert_eq!(
        planned.skipped.get("opted_out"),
        Some(&1),
        "a utility template skips an opt-out of utility"
    );
    let skipped = row(&app, id, "6281200000004").await;
    assert_eq!(
        (skipped.state, skipped.reason.as_deref()),
        (RecipientState::Skipped, Some("opted_out"))
    );
    until(&app, id, "Budi sent", |k| n(k, RecipientState::Sent) == 1).await;
    let sent: Vec<_> = graph
        .seen()
        .into_iter()
        .filter(|s| s.path.ends_with("/messages") && s.body["type"] == "template")
        .collect();
    assert_eq!(sent.len(), 1);
    let body = &sent[0].body;
    assert_eq!(body["to"], "6281200000001");
    assert_eq!(body["template"]["name"], "order_shipped");
    assert_eq!(body["template"]["components"][0]["parameters"][0]["text"], "Budi");
    assert_eq!(body["template"]["components"][0]["parameters"][1]["text"], "INV-1212");
    let budi = row(&app, id, "6281200000001").await;
    let callback = body["biz_opaque_callback_data"].as_str().unwrap();
    assert!(
        callback.contains(&format!("campaign={id};recipient={}", budi.id)),
        "the callback names the campaign and the recipient: {callback}"
    );
    let wamid = budi.wamid.clone().unwrap();
    // The campaign is finished once no row is queued, sending or deferred.
    until(&app, id, "finished", |_| true).await;
    for _ in 0..50 {
        app.state.campaigns.tick().await.unwrap();
        if campaign(&app, id).await.state == CampaignState::Finished {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(campaign(&app, id).await.state, CampaignState::Finished);
    // Statuses only move forward: read, then a late "delivered" changes nothing.
    let now = app.state.now();
    status_update(&app, SECRET, PHONE, &wamid, "6281200000001", "read", now).await;
    status_update(&app, SECRET, PHONE, &wamid, "6281200000001", "delivered", now).await;
    assert_eq!(row(&app, id, "6281200000001").await.state, RecipientState::Read);
    // A reply within the reply time counts for the campaign, and the conversation is in
    // the inbox like any other.
    inbound_text(
        &app,
        SECRET,
        PHONE,
        "wamid.reply1",
        "6281200000001",
        "Budi",
        now + 60,
        "Terima kasih!",
    )
    .await;
    let budi = row(&app, id, "6281200000001").await;
    assert_eq!(budi.state, RecipientState::Replied);
    assert!(budi.replied_at.is_some());
    let in_inbox: i64 = app
        .state
        .db
        .read(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM messages m JOIN contacts k ON k.id = m.contact_id WHERE k.wa_id = '6281200000001'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(
        in_inbox, 2,
        "the campaign message and the reply are in the conversation"
    );
    assert_eq!(sends_per_person(&graph).values().max(), Some(&1));
}

#[tokio::test]
async fn an_empty_variable_without_a_fallback_is_skipped_with_its_name_never_sent_broken() {
    let (app, graph) = setup("80").await;
    seed(
        &app,
        vec![p("6281200000011", "", &["vip"]), p("6281200000012", "Dewi", &["vip"])],
    )
    .await;
    let vars = vec![("1", field("name", None)), ("2", text("INV-1"))];
    let (id, _) = create_and_start(&app, spec(&["vip"], &vars)).await;
    let r = row(&app, id, "6281200000011").await;
    assert_eq!(
        (r.state, r.reason.as_deref(), r.detail.as_str()),
        (RecipientState::Skipped, Some("missing_variable"), "1")
    );
    until(&app, id, "Dewi sent", |k| n(k, RecipientState::Sent) == 1).await;
    assert_eq!(sends_per_person(&graph).keys().collect::<Vec<_>>(), ["6281200000012"]);
}

#[tokio::test]
async fn each_error_class_moves_the_ledger_as_it_says() {
    let (app, graph) = setup("80").await;
    seed(
        &app,
        vec![
            p("6281200000021", "Limit", &["vip"]),
            p("6281200000022", "Stopped", &["vip"]),
            p("6281200000023", "Undeliverable", &["vip"]),
            p("6281200000024", "Hiccup", &["vip"]),
            p("6281200000025", "Busy", &["vip"]),
        ],
    )
    .await;
    let fault = |to: &str, status: u16, code: i64, times: Option<usize>| Fault {
        path: "/messages".into(),
        body_contains: Some(to.into()),
        status,
        answer: meta_error(code, "error", "details"),
        times,
        delay_ms: 0,
    };
    // 131049 (per-user marketing limit) twice, then it would go.
    graph.inject(fault("6281200000021", 400, 131_049, Some(2)));
    graph.inject(fault("6281200000022", 400, 131_050, None));
    graph.inject(fault("6281200000023", 400, 131_026, None));
    graph.inject(fault("6281200000024", 503, 2, Some(1)));
    graph.inject(fault("6281200000025", 400, 130_429, Some(1)));
    let (id, _) = create_and_start(&app, spec(&["vip"], &standard_vars())).await;
    until(&app, id, "first outcomes", |k| {
        n(k, RecipientState::Failed) == 2 && n(k, RecipientState::Deferred) == 1
    })
    .await;
    let stopped = row(&app, id, "6281200000022").await;
    assert_eq!(
        (stopped.state, stopped.error_code),
        (RecipientState::Failed, Some(131_050))
    );
    let undeliverable = row(&app, id, "6281200000023").await;
    assert_eq!(undeliverable.error_code, Some(131_026));
    let limit = row(&app, id, "6281200000021").await;
    assert_eq!((limit.defers, limit.error_code), (1, Some(131_049)));
    assert!(limit.next_at >= app.state.now() + 86_400, "at least a day later");
    // 131050 opted the person out of marketing, in the consent log.
    let consent: String = app
        .state
        .db
        .read(|c| {
            Ok(c.query_row(
                "SELECT consent_marketing FROM contacts WHERE wa_id = '6281200000022'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(consent, "opted_out");
    // The 5xx and the throughput refusal are retried by the outbox and go.
    for _ in 0..3 {
        app.clock.advance(10);
        until(&app, id, "retries", |_| true).await;
    }
    until(&app, id, "hiccup and busy sent", |k| n(k, RecipientState::Sent) == 2).await;
    // The deferred one goes a day later; refused again; deferred once more; then it is
    // failed (at most two deferrals), and the campaign finishes.
    app.clock.advance(86_400 + 700);
    for _ in 0..200 {
        until(&app, id, "a round", |_| true).await;
        if row(&app, id, "6281200000021").await.defers == 2 {
            break;
        }
    }
    let again = row(&app, id, "6281200000021").await;
    assert_eq!((again.state, again.defers), (RecipientState::Deferred, 2));
    app.clock.advance(86_400 + 700);
    until(&app, id, "sent on the third try", |k| n(k, RecipientState::Sent) == 3).await;
    let sends = sends_per_person(&graph);
    assert_eq!(sends.get("6281200000021"), Some(&3), "tried three times, a day apart");
    assert_eq!(sends.get("6281200000022"), Some(&1), "131050 is never retried");
    assert_eq!(sends.get("6281200000023"), Some(&1), "131026 is final");
    for _ in 0..20 {
        app.state.campaigns.tick().await.unwrap();
    }
    assert_eq!(campaign(&app, id).await.state, CampaignState::Finished);
}

#[tokio::test]
async fn an_expired_token_pauses_the_campaign_and_resuming_sends_each_person_once() {
    let (app, graph) = setup("80").await;
    let people: Vec<Person> = ["6281200000031", "6281200000032", "6281200000033", "6281200000034"]
        .into_iter()
        .map(|wa| p(wa, "Pelanggan", &["vip"]))
        .collect();
    seed(&app, people).await;
    graph.inject(Fault {
        path: "/messages".into(),
        body_contains: None,
        status: 401,
        answer: meta_error(190, "Access token has expired", ""),
        times: Some(1),
        delay_ms: 0,
    });
    let (id, _) = create_and_start(&app, spec(&["vip"], &standard_vars())).await;
    for _ in 0..100 {
        app.state.campaigns.tick().await.unwrap();
        app.state.dispatcher().dispatch_round().await.unwrap();
        if campaign(&app, id).await.state == CampaignState::Paused {
            break;
        }
    }
    let k = campaign(&app, id).await;
    assert_eq!(k.state, CampaignState::Paused);
    assert_eq!(k.paused_reason.as_deref(), Some("campaigns.paused.number"));
    // What waited in the outbox came back to the ledger: nothing is left "sending".
    let c = counts(&app, id).await;
    assert_eq!(n(&c, RecipientState::Sending), 0, "{c:?}");
    // Resuming is refused while the number is paused.
    let now = app.state.now();
    let refused = app
        .state
        .db
        .write(move |c| Ok(service::resume(c, id, &Actor::system(), now)?))
        .await
        .unwrap();
    assert_eq!(refused, Err("campaigns.paused.number"));
    // The admin fixes the token (the number resumes), then resumes the campaign.
    app.state
        .db
        .write(move |c| {
            whacaster::whatsapp::outbox::resume(c, 1)?;
            Ok(service::resume(c, id, &Actor::system(), now)?)
        })
        .await
        .unwrap()
        .unwrap();
    until(&app, id, "all sent", |k| n(k, RecipientState::Sent) == 4).await;
    let sends = sends_per_person(&graph);
    assert_eq!(sends.len(), 4);
    // The refused send was tried once more; everyone else once.
    assert!(sends.values().all(|n| *n <= 2), "{sends:?}");
    assert_eq!(sends.values().filter(|n| **n == 1).count(), 3, "{sends:?}");
}

#[tokio::test]
async fn pause_resume_and_cancel_send_each_person_at_most_once() {
    let (app, graph) = setup("5").await;
    let people: Vec<Person> = (0..40)
        .map(|i| {
            let wa: &'static str = Box::leak(format!("62812000010{i:02}").into_boxed_str());
            p(wa, "Pelanggan", &["vip"])
        })
        .collect();
    seed(&app, people).await;
    let (id, _) = create_and_start(&app, spec(&["vip"], &standard_vars())).await;
    // At 5 messages a second (4 for the campaign) this takes seconds: pause midway.
    until(&app, id, "some sent", |k| n(k, RecipientState::Sent) >= 3).await;
    let now = app.state.now();
    assert!(
        app.state
            .db
            .write(move |c| Ok(service::pause(c, id, &Actor::system(), now)?))
            .await
            .unwrap()
    );
    // In-flight sends finish; nothing new is claimed.
    for _ in 0..10 {
        app.state.campaigns.tick().await.unwrap();
        app.state.dispatcher().dispatch_round().await.unwrap();
    }
    let paused = counts(&app, id).await;
    assert_eq!(n(&paused, RecipientState::Sending), 0, "{paused:?}");
    let before = sends_per_person(&graph).len();
    for _ in 0..10 {
        app.state.campaigns.tick().await.unwrap();
        app.state.dispatcher().dispatch_round().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }
    assert_eq!(
        sends_per_person(&graph).len(),
        before,
        "a paused campaign sends nothing"
    );
    app.state
        .db
        .write(move |c| Ok(service::resume(c, id, &Actor::system(), now)?))
        .await
        .unwrap()
        .unwrap();
    until(&app, id, "more sent after resuming", |k| {
        usize::try_from(n(k, RecipientState::Sent)).unwrap() >= before + 3
    })
    .await;
    assert!(
        app.state
            .db
            .write(move |c| Ok(service::cancel(c, id, &Actor::system(), now)?))
            .await
            .unwrap()
    );
    for _ in 0..10 {
        app.state.dispatcher().dispatch_round().await.unwrap();
    }
    let end = counts(&app, id).await;
    assert_eq!(
        n(&end, RecipientState::Queued) + n(&end, RecipientState::Sending),
        0,
        "{end:?}"
    );
    assert!(n(&end, RecipientState::Cancelled) > 0, "{end:?}");
    assert_eq!(
        n(&end, RecipientState::Sent) + n(&end, RecipientState::Cancelled),
        40,
        "every person is sent or cancelled: {end:?}"
    );
    let sends = sends_per_person(&graph);
    assert_eq!(sends.values().max(), Some(&1), "nobody twice: {sends:?}");
    assert_eq!(i64::try_from(sends.len()).unwrap(), n(&end, RecipientState::Sent));
    assert_eq!(campaign(&app, id).await.state, CampaignState::Cancelled);
}

#[tokio::test]
async fn a_template_meta_paused_pauses_the_campaign_with_the_reason() {
    let (app, _graph) = setup("5").await;
    let people: Vec<Person> = (0..30)
        .map(|i| {
            let wa: &'static str = Box::leak(format!("62812000020{i:02}").into_boxed_str());
            p(wa, "Pelanggan", &["vip"])
        })
        .collect();
    seed(&app, people).await;
    let (id, _) = create_and_start(&app, spec(&["vip"], &standard_vars())).await;
    until(&app, id, "some sent", |k| n(k, RecipientState::Sent) >= 1).await;
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": WABA, "time": 1_767_230_000, "changes": [
        {"field": "message_template_status_update", "value": {"event": "PAUSED", "message_template_id": 1,
         "message_template_name": "order_shipped", "message_template_language": "id", "reason": "LOW_QUALITY"}}]}]});
    deliver(&app, SECRET, &body).await;
    for _ in 0..50 {
        app.state.campaigns.tick().await.unwrap();
        if campaign(&app, id).await.state == CampaignState::Paused {
            break;
        }
    }
    let k = campaign(&app, id).await;
    assert_eq!(k.state, CampaignState::Paused);
    assert_eq!(k.paused_reason.as_deref(), Some("campaigns.paused.template"));
    assert_eq!(k.paused_detail, "templates.unusable.paused");
    assert_eq!(n(&counts(&app, id).await, RecipientState::Sending), 0);
    let now = app.state.now();
    let refused = app
        .state
        .db
        .write(move |c| Ok(service::resume(c, id, &Actor::system(), now)?))
        .await
        .unwrap();
    assert_eq!(refused, Err("templates.unusable.paused"));
}

#[tokio::test]
async fn the_daily_limit_holds_the_rest_for_the_next_window_and_the_frequency_cap_skips() {
    let (app, graph) = setup("80").await;
    let people: Vec<Person> = (0..5)
        .map(|i| {
            let wa: &'static str = Box::leak(format!("628120000300{i}").into_boxed_str());
            p(wa, "Pelanggan", &["vip"])
        })
        .collect();
    seed(&app, people).await;
    app.state
        .db
        .write(|c| Ok(campaigns::set_messaging_limit(c, 1, Some(3))?))
        .await
        .unwrap();
    // The pre-flight says it takes two windows.
    let (id, _) = create_and_start(&app, spec(&["vip"], &standard_vars())).await;
    until(&app, id, "three sent", |k| n(k, RecipientState::Sent) == 3).await;
    for _ in 0..20 {
        app.state.campaigns.tick().await.unwrap();
        app.state.dispatcher().dispatch_round().await.unwrap();
    }
    let k = counts(&app, id).await;
    assert_eq!(
        (n(&k, RecipientState::Sent), n(&k, RecipientState::Queued)),
        (3, 2),
        "{k:?}"
    );
    let now = app.state.now();
    let est = app
        .state
        .db
        .read(move |c| {
            let k = campaigns::find(c, id)?.unwrap();
            Ok(service::remaining_estimate(c, &k, now)?)
        })
        .await
        .unwrap();
    assert_eq!(est.left_now, Some(0));
    assert_eq!(est.windows, 1, "the rest fits the next window");
    assert!(est.finishes_at.unwrap() >= now + 86_400 - 60, "{est:?}");
    assert_eq!(
        campaign(&app, id).await.state,
        CampaignState::Running,
        "waiting, not failed"
    );
    app.clock.advance(86_401);
    until(&app, id, "the rest sent a day later", |k| {
        n(k, RecipientState::Sent) == 5
    })
    .await;
    // A frequency cap of 48 hours skips everyone this campaign messaged.
    app.state
        .db
        .write(|c| {
            let mut s = campaigns::settings(c)?;
            s.frequency_cap_hours = 48;
            campaigns::set_messaging_limit(c, 1, None)?;
            Ok(campaigns::set_settings(c, &s)?)
        })
        .await
        .unwrap();
    let (second, started) = create_and_start(&app, spec(&["vip"], &standard_vars())).await;
    let Started::Now { counts: planned } = started else {
        panic!("now")
    };
    assert_eq!(planned.skipped.get("frequency_cap"), Some(&5), "{planned:?}");
    until(&app, second, "nothing to send", |_| true).await;
    assert_eq!(sends_per_person(&graph).values().max(), Some(&1));
}

#[tokio::test]
async fn a_scheduled_campaign_starts_once_even_when_the_scheduler_fires_twice() {
    let (app, graph) = setup("80").await;
    seed(&app, vec![p("6281200000041", "Eka", &["vip"])]).await;
    let mut s = spec(&["vip"], &standard_vars());
    s.schedule.at = Some("2099-01-01T09:00".into());
    let (id, started) = create_and_start(&app, s).await;
    assert!(matches!(started, Started::Scheduled { .. }));
    assert_eq!(campaign(&app, id).await.state, CampaignState::Scheduled);
    app.state.campaigns.tick().await.unwrap();
    assert_eq!(counts(&app, id).await.values().sum::<i64>(), 0, "not yet planned");
    let due = campaign(&app, id).await.send_at.unwrap() - app.state.now() + 1;
    app.clock.advance(due);
    // Two rounds at once (the loop and a second caller): one plan.
    let (a, b) = tokio::join!(app.state.campaigns.tick(), app.state.campaigns.tick());
    a.unwrap();
    b.unwrap();
    let planned = counts(&app, id).await;
    assert_eq!(planned.values().sum::<i64>(), 1, "planned once: {planned:?}");
    until(&app, id, "sent", |k| n(k, RecipientState::Sent) == 1).await;
    assert_eq!(sends_per_person(&graph).get("6281200000041"), Some(&1));
}

/// Starts the real binary on `data`, with the fake Graph API.
fn spawn_server(data: &std::path::Path, graph: &FakeGraph) -> (std::process::Child, crate::common::Browser) {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_whacaster"))
        .args([
            "serve",
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env("WHACASTER_GRAPH__BASE_URL", &graph.base)
        .env("WHACASTER_LOG_LEVEL", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    (child, crate::common::Browser::new(&format!("https://127.0.0.1:{port}")))
}

async fn wait_up(b: &crate::common::Browser) {
    for _ in 0..600 {
        if b.client.get(format!("{}/healthz", b.base)).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the server did not come up");
}

fn template_sends(graph: &FakeGraph) -> usize {
    sends_per_person(graph).values().sum()
}

/// kill -9 of the real process twice mid-campaign, restarted on the same data
/// directory each time: every person is sent exactly once or held for review (and a
/// held one was sent at most once); nobody is lost, nobody is messaged twice.
#[tokio::test]
async fn kill_nine_mid_campaign_sends_nobody_twice_and_loses_nobody() {
    const PEOPLE: usize = 400;
    let (app, graph) = setup("80").await;
    let people: Vec<Person> = (0..PEOPLE)
        .map(|i| {
            let wa: &'static str = Box::leak(format!("6281300{i:06}").into_boxed_str());
            p(wa, "Pelanggan", &["vip"])
        })
        .collect();
    seed(&app, people).await;
    let cfg = app.config.clone();
    let guard = app.stop().await;
    // Planned while no server runs, so the first sends come from the spawned binary.
    {
        let c = crate::common::open_stopped_db(&cfg);
        let known = whacaster::contacts::segments::Known {
            labels: vec!["vip".into()],
            numbers: Vec::new(),
        };
        let now = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        )
        .unwrap();
        let k = service::create(&c, &known, &Actor::system(), &spec(&["vip"], &standard_vars()), now)
            .unwrap()
            .unwrap();
        assert!(matches!(
            service::start(&c, k.id, &Actor::system(), now).unwrap().unwrap(),
            Started::Now { .. }
        ));
    }
    for (round, kill_after) in [(0, 60), (1, 180)] {
        let (mut child, b) = spawn_server(&cfg.data_dir, &graph);
        wait_up(&b).await;
        for _ in 0..2000 {
            if template_sends(&graph) >= kill_after {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(template_sends(&graph) >= kill_after, "round {round} sent");
        assert!(template_sends(&graph) < PEOPLE, "killed mid-campaign in round {round}");
    }
    // The last start runs to the end.
    let (mut child, b) = spawn_server(&cfg.data_dir, &graph);
    wait_up(&b).await;
    let key = whacaster::crypto::DbKey::read(&cfg.data_dir.join("db.key")).unwrap();
    let mut settled = false;
    for _ in 0..600 {
        let c = whacaster::store::open_connection(&cfg.db_path(), &key).unwrap();
        let open: i64 = c
            .query_row(
                "SELECT count(*) FROM campaign_recipients WHERE state IN ('queued', 'sending', 'deferred')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        if open == 0 {
            settled = true;
            break;
        }
        drop(c);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(settled, "every row settled");
    let c = whacaster::store::open_connection(&cfg.db_path(), &key).unwrap();
    let rows: Vec<(String, String)> = c
        .prepare("SELECT recipient, state FROM campaign_recipients")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(rows.len(), PEOPLE, "one row per person");
    let sends = sends_per_person(&graph);
    let mut held = 0;
    for (to, state) in &rows {
        let n = sends.get(to).copied().unwrap_or(0);
        match state.as_str() {
            "sent" => assert_eq!(n, 1, "{to} sent exactly once"),
            "needs_review" => {
                held += 1;
                assert!(n <= 1, "{to} held, sent at most once");
            }
            other => panic!("{to} ended {other}"),
        }
    }
    assert!(sends.values().all(|n| *n == 1), "nobody twice");
    eprintln!("kill -9 twice: {} sent once, {held} held for review", rows.len() - held);
    drop(guard);
}

/// A crash between "request written" and "answer stored" holds the person for review;
/// Meta's status (it carries our callback data) settles one, and "send again to
/// these N" sends the other exactly once.
#[tokio::test]
async fn held_sends_are_settled_by_their_status_or_sent_again_by_a_person() {
    let (app, graph) = setup("80").await;
    seed(
        &app,
        vec![
            p("6281200000051", "Fajar", &["vip"]),
            p("6281200000052", "Gita", &["vip"]),
        ],
    )
    .await;
    let cfg = app.config.clone();
    let guard = app.stop().await;
    let (id, outbox_ids) = {
        let c = crate::common::open_stopped_db(&cfg);
        let known = whacaster::contacts::segments::Known {
            labels: vec!["vip".into()],
            numbers: Vec::new(),
        };
        let now = 1_796_086_800;
        let k = service::create(&c, &known, &Actor::system(), &spec(&["vip"], &standard_vars()), now)
            .unwrap()
            .unwrap();
        service::start(&c, k.id, &Actor::system(), now).unwrap().unwrap();
        // Handed to the outbox and claimed, as if the process died during the request.
        assert_eq!(campaigns::runner::hand_over(&c, k.id, 10, 20, now).unwrap(), Ok(2));
        c.execute("UPDATE outbox SET state = 'sending'", []).unwrap();
        let ids: Vec<i64> = c
            .prepare("SELECT outbox_id FROM campaign_recipients ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        (k.id, ids)
    };
    let app = TestApp::start_with(guard, cfg).await;
    until(&app, id, "both held", |k| n(k, RecipientState::NeedsReview) == 2).await;
    // Meta's status for the first, with the callback data it was sent with.
    let fajar = row(&app, id, "6281200000051").await;
    let callback =
        whacaster::whatsapp::outbox::callback_data(outbox_ids[0], 1, &format!("campaign={id};recipient={}", fajar.id));
    let now = app.state.now();
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "62812", "phone_number_id": PHONE},
        "statuses": [{"id": "wamid.late1", "status": "delivered", "timestamp": now.to_string(), "recipient_id": "6281200000051",
                      "biz_opaque_callback_data": callback}]}}]}]});
    deliver(&app, SECRET, &body).await;
    let fajar = row(&app, id, "6281200000051").await;
    assert_eq!(
        fajar.state,
        RecipientState::Delivered,
        "settled by its status: {fajar:?}"
    );
    assert_eq!(fajar.wamid.as_deref(), Some("wamid.late1"));
    // The other stays held until a person decides; then it is sent once.
    assert_eq!(row(&app, id, "6281200000052").await.state, RecipientState::NeedsReview);
    assert!(sends_per_person(&graph).is_empty(), "nothing re-sent by itself");
    let n_again = app
        .state
        .db
        .write(move |c| Ok(service::send_again_held(c, id, &Actor::system(), now)?))
        .await
        .unwrap();
    assert_eq!(n_again, 1);
    until(&app, id, "sent again", |k| n(k, RecipientState::Sent) == 1).await;
    assert_eq!(
        sends_per_person(&graph).into_iter().collect::<Vec<_>>(),
        [("6281200000052".to_string(), 1)]
    );
}

/// More than a tenth of the last sends failing pauses the campaign for a person to
/// look; a follow-up to the failures takes only the retryable ones.
#[tokio::test]
async fn too_many_failures_pause_the_campaign_and_a_follow_up_takes_only_retryable_ones() {
    let (app, graph) = setup("80").await;
    let people: Vec<Person> = (0..100)
        .map(|i| {
            let wa: &'static str = Box::leak(format!("62812000060{i:02}").into_boxed_str());
            p(wa, "Pelanggan", &["vip"])
        })
        .collect();
    seed(&app, people).await;
    // Six of the first people are not on WhatsApp (final).
    for i in [1, 4, 7, 10, 13, 16] {
        graph.inject(Fault {
            path: "/messages".into(),
            body_contains: Some(format!("62812000060{i:02}")),
            status: 400,
            answer: meta_error(131_026, "Message undeliverable", ""),
            times: None,
            delay_ms: 0,
        });
    }
    let (id, _) = create_and_start(&app, spec(&["vip"], &standard_vars())).await;
    for _ in 0..200 {
        app.state.campaigns.tick().await.unwrap();
        app.state.dispatcher().dispatch_round().await.unwrap();
        if campaign(&app, id).await.state == CampaignState::Paused {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let k = campaign(&app, id).await;
    assert_eq!(k.state, CampaignState::Paused, "{:?}", counts(&app, id).await);
    assert_eq!(k.paused_reason.as_deref(), Some("campaigns.paused.errors"));
    let c = counts(&app, id).await;
    assert_eq!(n(&c, RecipientState::Sending), 0, "{c:?}");
    assert!(n(&c, RecipientState::Queued) > 0, "paused before the end: {c:?}");
    // Resume and let it finish (the failures are known now: a person looked).
    let now = app.state.now();
    app.state
        .db
        .write(move |c| {
            let mut s = campaigns::settings(c)?;
            s.error_pause_percent = 50;
            campaigns::set_settings(c, &s)?;
            Ok(service::resume(c, id, &Actor::system(), now)?)
        })
        .await
        .unwrap()
        .unwrap();
    until(&app, id, "all settled", |k| {
        n(k, RecipientState::Sent) + n(k, RecipientState::Failed) == 100
    })
    .await;
    // Mark two sends failed later by Meta with a retryable code (131000, something went
    // wrong): those are the ones a follow-up to failures takes; 131026 is not retried.
    for to in ["6281200006000", "6281200006002"] {
        let wamid = row(&app, id, to).await.wamid.unwrap();
        let body = json!({"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp", "metadata": {"display_phone_number": "62812", "phone_number_id": PHONE},
            "statuses": [{"id": wamid, "status": "failed", "timestamp": now.to_string(), "recipient_id": to,
                          "errors": [{"code": 131_000, "title": "Something went wrong", "message": "", "error_data": {"details": ""}}]}]}}]}]});
        deliver(&app, SECRET, &body).await;
    }
    assert_eq!(row(&app, id, "6281200006000").await.error_code, Some(131_000));
    graph.clear_faults();
    let follow = app
        .state
        .db
        .write(move |c| {
            Ok(service::follow_up(
                c,
                id,
                campaigns::FollowUp::Failed,
                &Actor::system(),
                now,
            )?)
        })
        .await
        .unwrap()
        .unwrap();
    let started = app
        .state
        .db
        .write(move |c| Ok(service::start(c, follow, &Actor::system(), now)?))
        .await
        .unwrap()
        .unwrap();
    let Started::Now { counts: planned } = started else {
        panic!("now")
    };
    assert_eq!(planned.audience, 2, "only the retryable failures: {planned:?}");
    until(&app, follow, "follow-up sent", |k| n(k, RecipientState::Sent) == 2).await;
    let f = campaign(&app, follow).await;
    assert_eq!(
        (f.parent_id, f.follow_up),
        (Some(id), Some(campaigns::FollowUp::Failed))
    );
}
