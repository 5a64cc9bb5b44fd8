//! Outbox benchmark: queues N messages on a number limited to BENCH_MPS and lets the
//! real dispatcher drain them to a fake Graph API on loopback; prints the achieved rate
//! (after the first tenth-second burst), the whole drain time and the CPU time used.
//!
//!     cargo bench --bench outbox_dispatch           # BENCH_MESSAGES=10000 BENCH_MPS=1000
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a benchmark harness: failing loudly is the point"
)]
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss,
    reason = "counts, rates and percentiles from settings and timings, far from any type's limits"
)]

mod support;

use actix_web::{App, HttpResponse, HttpServer, web};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use whacaster::whatsapp::outbound::OutMessage;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// User + system CPU seconds of this process (both server and fake run in it).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let n = env("BENCH_MESSAGES", 10_000) as usize;
    let mps = env("BENCH_MPS", 1000) as i64;
    // The fake Graph API: answers every send with a wamid and notes when it came.
    let seen: Arc<Mutex<Vec<Instant>>> = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let graph = format!("http://{}", listener.local_addr().unwrap());
    let s2 = Arc::clone(&seen);
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            HttpServer::new(move || {
                let s = Arc::clone(&s2);
                App::new().default_service(web::to(move |req: actix_web::HttpRequest| {
                    let s = Arc::clone(&s);
                    async move {
                        if !req.path().ends_with("/messages") {
                            // Other Graph calls (the template sync job) are not sends.
                            return HttpResponse::Ok().json(serde_json::json!({"data": []}));
                        }
                        let k = {
                            let mut v = s.lock().unwrap();
                            v.push(Instant::now());
                            v.len()
                        };
                        HttpResponse::Ok().json(serde_json::json!({"messaging_product": "whatsapp", "messages": [{"id": format!("wamid.b{k}")}]}))
                    }
                }))
            })
            .workers(1)
            .listen(listener)
            .unwrap()
            .run()
            .await
        })
    });

    let server = support::start(|cfg| cfg.graph.base_url = graph);
    let state = server.state.clone();
    let st = state.clone();
    let queued = Instant::now();
    state
        .db
        .write_blocking(move |c| {
            let id = support::connect_number(c, &st, "secret", mps);
            for i in 0..n {
                let msg = OutMessage::Template {
                    name: "promo".into(),
                    language: "id".into(),
                    body_params: vec![format!("{i}")],
                    param_names: Vec::new(),
                    header: None,
                };
                whacaster::whatsapp::outbox::enqueue(
                    c,
                    id,
                    &format!("+62812{i:08}"),
                    None,
                    &msg,
                    whacaster::whatsapp::outbox::Origin::System,
                    0,
                )?;
            }
            Ok(())
        })
        .expect("queue");
    println!(
        "queued {n} messages in {:.2} s; draining at a limit of {mps}/s",
        queued.elapsed().as_secs_f64()
    );
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    state.outbox_bell.ring();
    loop {
        let done: i64 = state
            .db
            .read_blocking(|c| Ok(c.query_row("SELECT count(*) FROM outbox WHERE state = 'sent'", [], |r| r.get(0))?))
            .expect("count");
        if done as usize >= n || start.elapsed() > Duration::from_secs(n as u64 / mps.max(1) as u64 * 3 + 30) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let times = seen.lock().unwrap().clone();
    let skip = (mps as usize / 10).max(1).min(times.len().saturating_sub(1));
    let steady = if times.len() > skip + 1 {
        (times.len() - skip - 1) as f64 / (*times.last().unwrap() - times[skip]).as_secs_f64()
    } else {
        0.0
    };
    let failed: i64 = state
        .db
        .read_blocking(|c| Ok(c.query_row("SELECT count(*) FROM outbox WHERE state <> 'sent'", [], |r| r.get(0))?))
        .expect("count");
    println!(
        "sent {} of {n} in {wall:.2} s; steady rate {steady:.1}/s against a limit of {mps}/s ({:+.2} %); CPU {cpu:.2} s ({:.0} µs per message); not sent: {failed}",
        times.len(),
        (steady / mps as f64 - 1.0) * 100.0,
        cpu / n as f64 * 1e6,
    );
    assert_eq!(times.len(), n, "every message sent exactly once");
}
