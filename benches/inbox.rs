//! The inbox at size: seeds 100k contacts, 100k conversations and 1M messages (set
//! BENCH_CONTACTS / BENCH_PER_CONVERSATION to change), signs a supervisor in over HTTPS,
//! and times the conversation list, a conversation page and a search through the real
//! server, printing p50/p95. Run: `cargo bench --bench inbox`.
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

use std::time::{Duration, Instant};

fn env(name: &str, default: i64) -> i64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn pct(mut v: Vec<Duration>, p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1000.0
}

/// A named request: which path to fetch on round `k`.
type Case = (&'static str, Box<dyn Fn(usize) -> String>);

#[expect(clippy::too_many_lines, reason = "seed, sign in, then time each page: one run")]
fn main() {
    let contacts = env("BENCH_CONTACTS", 100_000);
    let per = env("BENCH_PER_CONVERSATION", 10);
    let rounds = env("BENCH_ROUNDS", 200) as usize;
    let server = support::start(|_| {});
    let state = server.state.clone();
    let hash = state.hasher.hash_blocking("bench password 123").unwrap();
    let now = state.now();
    let t = Instant::now();
    state
        .db
        .write_blocking(move |c| {
            whacaster::settings::insert_business(
                c,
                &whacaster::settings::Business {
                    name: "Bench".into(),
                    timezone: "Asia/Jakarta".into(),
                    locale: "en".into(),
                    ..Default::default()
                },
                now,
            )?;
            whacaster::auth::repo::insert_user(
                c,
                "sup@bench.id",
                "Supervisor",
                whacaster::auth::Role::Supervisor,
                Some(&hash),
                None,
                now,
            )?;
            Ok(())
        })
        .unwrap();
    let st = state.clone();
    state
        .db
        .write_blocking(move |c| Ok(support::connect_number(c, &st, "secret", 80)))
        .unwrap();
    // Seed in batches of 5,000 conversations (one transaction each).
    let mut done = 0;
    while done < contacts {
        let n = (contacts - done).min(5_000);
        state
            .db
            .write_blocking(move |c| Ok(whacaster::inbox::seed::fill(c, "106540352242922", n, per, now)?))
            .unwrap();
        done += n;
    }
    println!(
        "seeded {contacts} contacts, {contacts} conversations, {} messages in {:.1} s",
        contacts * per,
        t.elapsed().as_secs_f64()
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let base = format!("https://{}", server.addr);
        let client = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let login = client
            .get(format!("{base}/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let i = login.find("name=\"csrf\" value=\"").unwrap() + 19;
        let csrf = &login[i..i + login[i..].find('"').unwrap()];
        let r = client
            .post(format!("{base}/login"))
            .form(&[
                ("csrf", csrf),
                ("email", "sup@bench.id"),
                ("password", "bench password 123"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "signed in");
        let middle = contacts / 2;
        let cases: [Case; 4] = [
            (
                "conversation list (all, open)",
                Box::new(|_| "/inbox?tab=all&status=open".to_string()),
            ),
            (
                "conversation list (page 50, keyset)",
                Box::new(move |_| format!("/inbox?tab=all&status=all&before={}_{}", now - middle * 30, middle)),
            ),
            (
                "conversation page",
                Box::new(move |k| format!("/inbox/{}", 1 + (k as i64 * 7919) % contacts)),
            ),
            (
                "search",
                Box::new(|k| {
                    [
                        "/inbox?tab=all&q=ongkir",
                        "/inbox?tab=all&q=refund%20diskon",
                        "/inbox?tab=all&q=Pelanggan%2042",
                        "/inbox?tab=all&q=0812000123",
                    ][k % 4]
                        .to_string()
                }),
            ),
        ];
        for (name, path) in &cases {
            let mut times = Vec::with_capacity(rounds);
            for k in 0..rounds {
                let t = Instant::now();
                let r = client.get(format!("{base}{}", path(k))).send().await.unwrap();
                assert_eq!(r.status(), 200, "{}", path(k));
                r.bytes().await.unwrap();
                times.push(t.elapsed());
            }
            println!(
                "{name:<38} p50 {:>6.2} ms   p95 {:>6.2} ms   ({rounds} requests)",
                pct(times.clone(), 0.5),
                pct(times, 0.95)
            );
        }
    });
}
