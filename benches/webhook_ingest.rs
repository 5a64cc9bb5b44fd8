//! Webhook ingest and intake benchmark: starts the real server (release build, HTTPS,
//! encrypted database, synchronous=FULL) with its intake running, and posts unique signed
//! deliveries, mixed as a campaign produces them (1 customer message : 3 statuses of
//! messages we sent), from many connections. Prints for the same run:
//! - deliveries acknowledged per second, and processed per second beside it;
//! - the backlog when the load ends and how long it takes to drain;
//! - at a fixed rate, p50/p99 time from the 200 to the message being visible in the inbox
//!   (readable by an inbox page: a reader connection sees it);
//! - RSS right after start, and after the load (from /proc, client included: it runs in
//!   the same process, its share is small);
//! - finding due work with no processed deliveries kept and with BENCH_KEPT kept, and the
//!   idle CPU with them kept.
//!
//! Every 200 is checked against the rows stored, and every acknowledged delivery must be
//! processed by the end.
//!
//!     cargo bench --bench webhook_ingest   # BENCH_SECS=10 BENCH_CONNS=64 BENCH_RATE=1000 BENCH_KEPT=1000000

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

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const SECRET: &str = "0123456789abcdef0123456789abcdef";
/// Outbound messages the statuses refer to (as if a campaign had sent them).
const SENT: u64 = 20_000;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn envelope(value: &str) -> String {
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"6281234567890","phone_number_id":"106540352242922"}},{value}}}}}]}}]}}"#
    )
}

/// Delivery `n`: every fourth is a customer's message, the others statuses (sent,
/// delivered, read) of the messages we sent.
fn payload(n: u64) -> (Vec<u8>, Option<String>) {
    if n % 4 == 0 {
        let wamid = format!("wamid.in{n}");
        let value = format!(
            r#""contacts":[{{"profile":{{"name":"Pelanggan {n}"}},"wa_id":"62812{n:08}"}}],"messages":[{{"from":"62812{n:08}","id":"{wamid}","timestamp":"1764000000","type":"text","text":{{"body":"Halo kak, pesanan nomor {n} sudah dikirim? 🙏"}}}}]"#
        );
        (envelope(&value).into_bytes(), Some(wamid))
    } else {
        let m = (n / 4) % SENT;
        let status = ["sent", "delivered", "read"][(n % 4 - 1) as usize];
        let value = format!(
            r#""statuses":[{{"id":"wamid.out{m}","status":"{status}","timestamp":"{}","recipient_id":"62813{m:08}","pricing":{{"billable":true,"pricing_model":"PMP","category":"marketing","type":"regular"}}}}]"#,
            1_764_000_000 + n
        );
        (envelope(&value).into_bytes(), None)
    }
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

/// Resident memory of this process, in MB.
fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// User + system CPU seconds of this process.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

struct Run {
    ok: usize,
    errors: usize,
    latencies: Vec<Duration>,
    elapsed: Duration,
    /// When each customer message was acknowledged.
    acked: HashMap<String, Instant>,
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
        let (client, url, ok, errors, seq) = (
            client.clone(),
            url.to_string(),
            Arc::clone(&ok),
            Arc::clone(&errors),
            Arc::clone(&seq),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut acked = Vec::new();
            // With a rate: each connection sends at rate/conns per second, on a schedule.
            let interval = rate.map(|r| Duration::from_secs_f64(conns as f64 / r as f64));
            let mut next = start + interval.map(|i| i.mul_f64(w as f64 / conns as f64)).unwrap_or_default();
            while Instant::now() < deadline {
                if let Some(i) = interval {
                    tokio::time::sleep_until(next.into()).await;
                    next += i;
                }
                let n = seq.fetch_add(1, Ordering::Relaxed);
                let (body, wamid) = payload(n);
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
                        let done = Instant::now();
                        lat.push(done - t);
                        if let Some(w) = wamid {
                            acked.push((w, done));
                        }
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            (lat, acked)
        }));
    }
    let mut latencies = Vec::new();
    let mut acked = HashMap::new();
    for t in tasks {
        let (l, a) = t.await.unwrap_or_default();
        latencies.extend(l);
        acked.extend(a);
    }
    latencies.sort();
    Run {
        ok: ok.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        latencies,
        elapsed: start.elapsed(),
        acked,
    }
}

fn report(label: &str, r: &Run) {
    println!(
        "{label}: {:.0} deliveries/s acknowledged, durably stored ({} ok, {} errors in {:.1} s); latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        r.ok as f64 / r.elapsed.as_secs_f64(),
        r.ok,
        r.errors,
        r.elapsed.as_secs_f64(),
        percentile(&r.latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&r.latencies, 0.99).as_secs_f64() * 1e3,
        r.latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

fn backlog(state: &whacaster::app::AppState) -> whacaster::whatsapp::deliveries::Backlog {
    state
        .db
        .read_blocking(|c| Ok(whacaster::whatsapp::deliveries::count_backlog(c)?))
        .expect("backlog")
}

/// Waits until nothing is waiting; returns how long that took.
fn drain(state: &whacaster::app::AppState, max: Duration) -> Duration {
    let t = Instant::now();
    while backlog(state).waiting > 0 {
        assert!(t.elapsed() < max, "the backlog did not drain within {max:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
    t.elapsed()
}

/// Average time to find due work (the intake's query), over `n` calls.
fn due_cost(state: &whacaster::app::AppState, n: u32) -> Duration {
    let t = Instant::now();
    for _ in 0..n {
        state
            .db
            .read_blocking(|c| Ok(whacaster::whatsapp::deliveries::list_due(c, i64::MAX / 2, 512)?.len()))
            .expect("due");
    }
    t.elapsed() / n
}

/// Notes when each inbound message first becomes readable, polling like a page would.
fn watch_visible(
    state: Arc<actix_web::web::Data<whacaster::app::AppState>>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<HashMap<String, Instant>> {
    std::thread::spawn(move || {
        let mut seen = HashMap::new();
        let mut last = state
            .db
            .read_blocking(
                |c| Ok(c.query_row("SELECT coalesce(max(id), 0) FROM messages", [], |r| r.get::<_, i64>(0))?),
            )
            .expect("max id");
        while !stop.load(Ordering::Relaxed) {
            let rows: Vec<(i64, String)> = state
                .db
                .read_blocking(move |c| {
                    let mut st = c.prepare_cached(
                        "SELECT id, wamid FROM messages WHERE id > ?1 AND direction = 'in' ORDER BY id",
                    )?;
                    let rows = st.query_map([last], |r| Ok((r.get(0)?, r.get(1)?)))?;
                    Ok(rows.collect::<Result<Vec<_>, _>>()?)
                })
                .expect("poll");
            let now = Instant::now();
            for (id, wamid) in rows {
                last = last.max(id);
                seen.entry(wamid).or_insert(now);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        seen
    })
}

#[expect(
    clippy::too_many_lines,
    reason = "open-loop run, fixed-rate run, then the checks: one report"
)]
fn main() {
    let server = support::start(|_| {});
    let (addr, state) = (server.addr, server.state.clone());
    std::thread::sleep(Duration::from_secs(2));
    let rss_start = rss_mb();
    let due_empty = due_cost(&state, 200);

    let st = state.clone();
    state
        .db
        .write_blocking(move |c| {
            support::connect_number(c, &st, SECRET, 80);
            // The messages a campaign sent, which the statuses are about.
            for m in 0..SENT {
                let contact = whacaster::contacts::upsert(
                    c,
                    &whacaster::contacts::Identity {
                        wa_id: Some(&format!("62813{m:08}")),
                        ..Default::default()
                    },
                    0,
                )?;
                let out = whacaster::inbox::NewOutbound {
                    phone_number_id: "106540352242922",
                    contact_id: contact,
                    kind: "template",
                    body: "Promo akhir tahun",
                    outbox_id: i64::try_from(m).unwrap() + 1,
                    author_id: None,
                    reply_to: None,
                    wamid: Some(&format!("wamid.out{m}")),
                    at: 1_764_000_000,
                };
                whacaster::inbox::insert_outbound(c, &out)?;
            }
            Ok(())
        })
        .expect("seed");

    let secs = env("BENCH_SECS", 10);
    let conns = env("BENCH_CONNS", 64) as usize;
    let rate = env("BENCH_RATE", 1000);
    let kept = env("BENCH_KEPT", 1_000_000);
    let url = format!("https://{addr}/webhooks/whatsapp");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let seq = Arc::new(AtomicU64::new(0));
    let cores = std::thread::available_parallelism()
        .map(std::num::NonZero::get)
        .unwrap_or(1);
    println!("webhook ingest + intake on {cores} cores, HTTPS, SQLCipher, synchronous=FULL; 1 message : 3 statuses");

    // 1. Open loop: as fast as the clients can, processing beside it.
    let done_before = processed(&state);
    let t0 = Instant::now();
    let open = rt.block_on(run(&url, conns, secs, None, Arc::clone(&seq)));
    let left = backlog(&state).waiting;
    let drained_in = drain(&state, Duration::from_secs(600));
    let total = t0.elapsed();
    let handled = processed(&state) - done_before;
    report(&format!("open loop, {conns} connections"), &open);
    println!(
        "  processed {handled} deliveries in {:.1} s: {:.0} deliveries/s; backlog when the load ended {left}, drained {:.2} s later",
        total.as_secs_f64(),
        handled as f64 / total.as_secs_f64(),
        drained_in.as_secs_f64()
    );

    // 2. Fixed rate: from the 200 to visible in the inbox.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_visible(Arc::new(state.clone()), Arc::clone(&stop));
    let fixed = rt.block_on(run(&url, conns, secs, Some(rate), Arc::clone(&seq)));
    drain(&state, Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(50));
    stop.store(true, Ordering::Relaxed);
    let seen = watcher.join().expect("watcher");
    let mut visible: Vec<Duration> = fixed
        .acked
        .iter()
        .map(|(w, at)| {
            seen.get(w)
                .map(|s| s.saturating_duration_since(*at))
                .expect("every acknowledged message is visible")
        })
        .collect();
    visible.sort();
    report(&format!("fixed rate {rate}/s"), &fixed);
    println!(
        "  200 -> visible in the inbox ({} messages): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        visible.len(),
        percentile(&visible, 0.50).as_secs_f64() * 1e3,
        percentile(&visible, 0.99).as_secs_f64() * 1e3,
        visible.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
    // 3. Processing alone: a backlog appended at once (as after an outage), drained by
    //    the intake with nothing else running: what processing can do on this box.
    let n = env("BENCH_BACKLOG", 40_000);
    let first = seq.fetch_add(n, Ordering::Relaxed);
    let bodies: Vec<Vec<u8>> = (first..first + n).map(|k| payload(k).0).collect();
    let now = state.now();
    state
        .db
        .write_blocking(move |c| {
            for b in &bodies {
                whacaster::whatsapp::deliveries::append(c, now, b)?;
            }
            Ok(())
        })
        .expect("backlog");
    let t = Instant::now();
    state.deliveries_bell.ring();
    drain(&state, Duration::from_secs(600));
    println!(
        "processing alone: a backlog of {n} mixed deliveries drained in {:.2} s: {:.0} deliveries/s",
        t.elapsed().as_secs_f64(),
        n as f64 / t.elapsed().as_secs_f64()
    );
    std::thread::sleep(Duration::from_secs(2));
    println!(
        "RSS: {rss_start:.0} MB right after start, {:.0} MB after the load",
        rss_mb()
    );

    let stored: i64 = state
        .db
        .read_blocking(|c| Ok(c.query_row("SELECT count(*) FROM webhook_inbox", [], |r| r.get(0))?))
        .expect("count");
    let acknowledged = open.ok + fixed.ok;
    println!(
        "acknowledged {acknowledged}, stored {stored}, processed {}",
        processed(&state)
    );
    assert!(stored as usize >= acknowledged, "an acknowledged delivery is missing");
    assert_eq!(
        backlog(&state).quarantined,
        0,
        "no delivery of the load was quarantined"
    );

    // 3. A million processed deliveries kept (the purge keeps them a few days).
    if kept > 0 {
        let have = u64::try_from(stored).unwrap_or(0);
        let add = kept.saturating_sub(have);
        let t = Instant::now();
        let body = payload(1).0;
        let mut left = add;
        while left > 0 {
            let n = left.min(50_000);
            left -= n;
            let body = body.clone();
            state
                .db
                .write_blocking(move |c| {
                    let mut st = c.prepare_cached(
                        "INSERT INTO webhook_inbox (received_at, body, state) VALUES (1764000000, ?1, 'done')",
                    )?;
                    for _ in 0..n {
                        st.execute([&body])?;
                    }
                    Ok(())
                })
                .expect("keep");
        }
        let seeded_in = t.elapsed();
        let due_kept = due_cost(&state, 200);
        std::thread::sleep(Duration::from_secs(5));
        let due_later = due_cost(&state, 2000);
        println!(
            "finding due work: {:.1} µs with none kept; with {kept} processed deliveries kept (seeded in {:.0} s): {:.1} µs right after seeding, {:.1} µs 5 s later",
            due_empty.as_secs_f64() * 1e6,
            seeded_in.as_secs_f64(),
            due_kept.as_secs_f64() * 1e6,
            due_later.as_secs_f64() * 1e6
        );
        std::thread::sleep(Duration::from_secs(3));
        let (c0, w0) = (cpu_seconds(), Instant::now());
        std::thread::sleep(Duration::from_secs(20));
        let idle = (cpu_seconds() - c0) / w0.elapsed().as_secs_f64() * 100.0;
        println!(
            "idle CPU with {kept} deliveries kept: {idle:.2} % of a core (20 s); RSS {:.0} MB",
            rss_mb()
        );
    }
}

fn processed(state: &whacaster::app::AppState) -> i64 {
    state
        .db
        .read_blocking(|c| {
            Ok(
                c.query_row("SELECT count(*) FROM webhook_inbox WHERE state = 'done'", [], |r| {
                    r.get(0)
                })?,
            )
        })
        .expect("processed")
}
