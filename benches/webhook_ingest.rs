//! Webhook ingest benchmark: starts the real server (release build, HTTPS, encrypted
//! database, synchronous=FULL), posts unique signed deliveries from many concurrent
//! connections and prints requests/s, p50/p99/max latency and errors; then holds a fixed
//! rate and prints the latency there. Every 200 is checked against the rows stored.
//!
//!     cargo bench --bench webhook_ingest            # BENCH_SECS=10 BENCH_CONNS=64 BENCH_RATE=2000

#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark harness: failing loudly is the point

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn payload(n: u64) -> Vec<u8> {
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"6281234567890","phone_number_id":"106540352242922"}},"contacts":[{{"profile":{{"name":"Pelanggan {n}"}},"wa_id":"62812{n:08}"}}],"messages":[{{"from":"62812{n:08}","id":"wamid.bench{n}","timestamp":"1764000000","type":"text","text":{{"body":"Halo kak, pesanan nomor {n} sudah dikirim? 🙏"}}}}]}}}}]}}]}}"#
    )
    .into_bytes()
}

fn sign(body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(whacaster::crypto::hmac_sha256(SECRET.as_bytes(), body))
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

struct Run {
    ok: usize,
    errors: usize,
    latencies: Vec<Duration>,
    elapsed: Duration,
}

async fn run(url: &str, conns: usize, secs: u64, rate: Option<u64>, seq: Arc<AtomicU64>) -> Run {
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .pool_max_idle_per_host(conns)
        .http1_only()
        .build()
        .expect("client");
    let ok = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for w in 0..conns {
        let (client, url, ok, errors, seq) = (client.clone(), url.to_string(), ok.clone(), errors.clone(), seq.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            // With a rate: each connection sends at rate/conns per second, on a schedule.
            let interval = rate.map(|r| Duration::from_secs_f64(conns as f64 / r as f64));
            let mut next = start + interval.map(|i| i.mul_f64(w as f64 / conns as f64)).unwrap_or_default();
            while Instant::now() < deadline {
                if let Some(i) = interval {
                    tokio::time::sleep_until(next.into()).await;
                    next += i;
                }
                let n = seq.fetch_add(1, Ordering::Relaxed);
                let body = payload(n);
                let sig = sign(&body);
                let t = Instant::now();
                let r = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-hub-signature-256", sig)
                    .body(body)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().as_u16() == 200 => {
                        lat.push(t.elapsed());
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            lat
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap_or_default());
    }
    latencies.sort();
    Run {
        ok: ok.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        latencies,
        elapsed: start.elapsed(),
    }
}

fn report(label: &str, r: &Run) {
    println!(
        "{label}: {:.0} deliveries/s durably stored ({} ok, {} errors in {:.1} s); latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        r.ok as f64 / r.elapsed.as_secs_f64(),
        r.ok,
        r.errors,
        r.elapsed.as_secs_f64(),
        percentile(&r.latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&r.latencies, 0.99).as_secs_f64() * 1e3,
        r.latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

fn main() {
    let server = support::start(|_| {});
    let (addr, state) = (server.addr, server.state.clone());
    let st = state.clone();
    state
        .db
        .write_blocking(move |c| {
            support::connect_number(c, &st, SECRET, 80);
            Ok(())
        })
        .expect("number");

    let secs = env("BENCH_SECS", 10);
    let conns = env("BENCH_CONNS", 64) as usize;
    let rate = env("BENCH_RATE", 2000);
    let url = format!("https://{addr}/webhooks/whatsapp");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let seq = Arc::new(AtomicU64::new(0));
    println!(
        "webhook ingest on {} cores, HTTPS, SQLCipher, synchronous=FULL, group commit",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    let open = rt.block_on(run(&url, conns, secs, None, seq.clone()));
    report(&format!("open loop, {conns} connections"), &open);
    let fixed = rt.block_on(run(&url, conns, secs, Some(rate), seq.clone()));
    report(&format!("fixed rate {rate}/s"), &fixed);
    let stored: i64 = state
        .db
        .read_blocking(|c| Ok(c.query_row("SELECT count(*) FROM webhook_inbox", [], |r| r.get(0))?))
        .expect("count");
    let acknowledged = open.ok + fixed.ok;
    println!("acknowledged {acknowledged}, stored {stored}");
    assert!(stored as usize >= acknowledged, "an acknowledged delivery is missing");
}
