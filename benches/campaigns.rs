//! Campaign benchmark: N contacts with a label (default 1,000,000), a campaign to all of
//! them planned through the service the pages use (one transaction), then sent by the
//! real runner and outbox to a fake Graph API on loopback, for a bounded time at each
//! configured number rate. Prints the planning time, the send rate per 10-second window
//! against the campaign's rate (the number's MPS minus the inbox reserve), CPU per
//! 1,000 messages (this process: server and fake together) and RSS over the run.
//!
//!     cargo bench --bench campaigns   # BENCH_RECIPIENTS=1000000 BENCH_MPS=80,1000 BENCH_SECONDS=60

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::too_many_lines,
    reason = "a benchmark harness: failing loudly is the point, and its story is told in order"
)]
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss,
    reason = "counts, rates and timings far from any type's limits"
)]

mod support;

use actix_web::{App, HttpResponse, HttpServer, web};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use whacaster::audit::Actor;
use whacaster::campaigns::service::{self, Spec, TemplateRef};
use whacaster::campaigns::{Audience, RecipientState, Variable};

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The fake Graph API: every send answered with a wamid, its arrival time noted.
fn fake_graph(seen: Arc<Mutex<Vec<Instant>>>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            HttpServer::new(move || {
                let s = Arc::clone(&seen);
                App::new().default_service(web::to(move |req: actix_web::HttpRequest| {
                    let s = Arc::clone(&s);
                    async move {
                        if req.path().ends_with("/message_templates") {
                            return HttpResponse::Ok().json(serde_json::json!({"data": [
                                {"id": "1", "name": "promo", "language": "id", "status": "APPROVED", "category": "UTILITY",
                                 "components": [{"type": "BODY", "text": "Halo {{1}}, pesanan {{2}} siap."}]}]}));
                        }
                        if !req.path().ends_with("/messages") {
                            return HttpResponse::Ok().json(serde_json::json!({"data": []}));
                        }
                        let k = {
                            let mut v = s.lock().unwrap();
                            v.push(Instant::now());
                            v.len()
                        };
                        HttpResponse::Ok().json(serde_json::json!({"messaging_product": "whatsapp",
                            "messages": [{"id": format!("wamid.c{k}")}]}))
                    }
                }))
            })
            .workers(2)
            .listen(listener)
            .unwrap()
            .run()
            .await
        })
    });
    base
}

fn main() {
    let n: i64 = env("BENCH_RECIPIENTS", "1000000").parse().unwrap();
    let rates: Vec<i64> = env("BENCH_MPS", "80,1000")
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    let seconds: u64 = env("BENCH_SECONDS", "60").parse().unwrap();
    let seen: Arc<Mutex<Vec<Instant>>> = Arc::new(Mutex::new(Vec::new()));
    let graph = fake_graph(Arc::clone(&seen));
    let server = support::start(|cfg| cfg.graph.base_url = graph);
    let state = server.state.clone();
    let rss_start = rss_mb();

    let seeded = Instant::now();
    let st = state.clone();
    state
        .db
        .write_blocking(move |c| {
            support::connect_number(c, &st, "secret", rates.first().copied().unwrap_or(80));
            c.execute(
                "INSERT INTO wa_templates (waba_id, meta_id, name, language, status, category, body_text, param_count, synced_at)
                 VALUES ('102290129340398', '1', 'promo', 'id', 'APPROVED', 'UTILITY', 'Halo {{1}}, pesanan {{2}} siap.', 2, 0)",
                [],
            )?;
            c.execute("INSERT INTO labels (name, created_at) VALUES ('vip', 0)", [])?;
            c.execute(
                "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?1)
                 INSERT INTO contacts (wa_id, phone_e164, name, created_at)
                 SELECT printf('62813%08d', i), printf('+62813%08d', i), 'Pelanggan ' || i, 0 FROM k",
                [n],
            )?;
            c.execute(
                "INSERT INTO contact_labels (contact_id, label_id) SELECT id, (SELECT id FROM labels) FROM contacts",
                [],
            )?;
            Ok(())
        })
        .expect("seed");
    println!(
        "seeded {n} contacts with a label in {:.1} s (RSS {:.0} MB)",
        seeded.elapsed().as_secs_f64(),
        rss_mb()
    );
    let rates: Vec<i64> = env("BENCH_MPS", "80,1000")
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();

    let spec = Spec {
        name: "Bench".into(),
        number_id: 1,
        template: TemplateRef {
            name: "promo".into(),
            language: "id".into(),
        },
        variables: [
            (
                "1".to_string(),
                Variable {
                    field: Some("first_name".into()),
                    fallback: Some("Kak".into()),
                    ..Variable::default()
                },
            ),
            (
                "2".to_string(),
                Variable {
                    text: Some("INV-1".into()),
                    ..Variable::default()
                },
            ),
        ]
        .into(),
        audience: Audience {
            labels: vec!["vip".into()],
            ..Audience::default()
        },
        ..Spec::default()
    };
    // Planning: the pre-flight's pass (reads only), then the start (the ledger, one
    // transaction); the runner is held off by the campaign not existing until then.
    let rss_before_plan = rss_mb();
    let now = state.now();
    let (id, preflight_s, plan_s) = state
        .db
        .write_blocking(move |c| {
            let known = whacaster::contacts::segments::Known {
                labels: vec!["vip".into()],
                numbers: Vec::new(),
            };
            let k = service::create(c, &known, &Actor::system(), &spec, now)?.expect("draft");
            let t = Instant::now();
            let pf = service::preflight(c, &k, now)?;
            let preflight_s = t.elapsed().as_secs_f64();
            assert_eq!(pf.counts.queued, n, "everyone queued: {:?}", pf.counts);
            let t = Instant::now();
            service::start(c, k.id, &Actor::system(), now)?.expect("started");
            Ok((k.id, preflight_s, t.elapsed().as_secs_f64()))
        })
        .expect("plan");
    println!(
        "pre-flight over {n} recipients: {preflight_s:.1} s; planning (the ledger, one transaction): {plan_s:.1} s, {:.0} rows/s; RSS {:.0} MB (+{:.0} MB)",
        n as f64 / plan_s,
        rss_mb(),
        rss_mb() - rss_before_plan
    );

    let mut rss_max = rss_mb();
    for mps in rates {
        state
            .db
            .write_blocking(move |c| Ok(c.execute("UPDATE wa_numbers SET mps = ?1 WHERE id = 1", [mps])?))
            .expect("rate");
        let target = whacaster::campaigns::estimate::campaign_rate(mps) as f64;
        // Let the new rate settle for two seconds, then measure.
        std::thread::sleep(Duration::from_secs(2));
        let from = seen.lock().unwrap().len();
        let cpu0 = cpu_seconds();
        let t0 = Instant::now();
        let mut windows = Vec::new();
        let mut last = from;
        while t0.elapsed() < Duration::from_secs(seconds) {
            std::thread::sleep(Duration::from_secs(10));
            let now_seen = seen.lock().unwrap().len();
            windows.push((now_seen - last) as f64 / 10.0);
            last = now_seen;
            rss_max = rss_max.max(rss_mb());
        }
        let sent = last - from;
        let cpu = cpu_seconds() - cpu0;
        let worst = windows
            .iter()
            .map(|w| (w / target - 1.0) * 100.0)
            .fold(0.0_f64, |a, d| if d.abs() > a.abs() { d } else { a });
        println!(
            "number at {mps}/s, campaign rate {target}/s: {sent} sent in {:.0} s; per 10 s window: {}; worst window {worst:+.1} %; CPU {:.2} s per 1,000 messages; RSS {:.0} MB",
            t0.elapsed().as_secs_f64(),
            windows.iter().map(|w| format!("{w:.1}")).collect::<Vec<_>>().join(" "),
            cpu / sent.max(1) as f64 * 1000.0,
            rss_mb()
        );
    }
    let counts = state
        .db
        .read_blocking(move |c| Ok(whacaster::campaigns::counts(c, id)?))
        .expect("counts");
    let total = seen.lock().unwrap().len();
    state
        .db
        .write_blocking(move |c| Ok(service::cancel(c, id, &Actor::system(), state_now())?))
        .expect("cancel");
    println!(
        "RSS: {rss_start:.0} MB at start, {rss_max:.0} MB at most while sending; ledger after the run: sent {} sending {} queued {}; the fake Graph API saw {total} sends",
        counts.get(&RecipientState::Sent).copied().unwrap_or(0),
        counts.get(&RecipientState::Sending).copied().unwrap_or(0),
        counts.get(&RecipientState::Queued).copied().unwrap_or(0),
    );
}

fn state_now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
    .unwrap_or(0)
}
