//! The bot's cost: (1) decisions per second of the engine alone with 200 rules and 20
//! flows; (2) the intake path on the real server (release build, SQLCipher,
//! synchronous=FULL): a backlog of customer messages drained without a bot, then the
//! same size of backlog with that bot switched on (every message decided, logged, and
//! most answered through the outbox), so the difference is what the bot costs the
//! intake. Run: `cargo bench --bench bot` (BENCH_BACKLOG, default 20000).
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    reason = "a benchmark harness: failing loudly is the point"
)]

mod support;

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use whacaster::bot::document::Bot;
use whacaster::bot::engine::{Compiled, Input, Session, Situation, decide};

const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// 200 rules of every kind and 20 flows of five steps: a large shop's bot.
fn big_bot() -> Value {
    let kinds = ["contains", "exact", "starts_with", "regex"];
    let rules: Vec<Value> = (0..200)
        .map(|i| {
            let kind = kinds[i % 4];
            let pattern = if kind == "regex" {
                format!("^produk-?{i}\\b")
            } else {
                format!("kata{i}")
            };
            json!({"id": format!("r{i}"), "match": kind, "patterns": [pattern, format!("word{i}")], "priority": i % 7,
                   "then": {"do": "reply", "reply": {"text": format!("Jawaban {i}")}}})
        })
        .collect();
    let flows: Vec<Value> = (0..20)
        .map(|f| {
            json!({"id": format!("f{f}"), "steps": [
                {"id": "menu", "type": "menu", "reply": {"text": "Pilih", "choices": [
                    {"id": format!("f{f}_a"), "title": "A", "next": "ask"},
                    {"id": format!("f{f}_b"), "title": "B", "next": "handoff"}]}},
                {"id": "ask", "type": "ask", "text": "Berapa?", "store": "qty", "validate": "number", "next": "say"},
                {"id": "say", "type": "message", "reply": {"text": "Oke"}, "next": "branch"},
                {"id": "branch", "type": "branch", "variable": "qty", "cases": [{"equals": "1", "next": "end"}], "otherwise": "end"},
                {"id": "bye", "type": "end", "text": "Terima kasih"}]})
        })
        .collect();
    let mut rules = rules;
    rules
        .push(json!({"id": "menu", "match": "contains", "patterns": ["menu f"], "then": {"do": "flow", "flow": "f7"}}));
    json!({"enabled": true, "rules": rules, "flows": flows,
           "fallback": {"do": "reply", "reply": {"text": "Maaf, kami belum mengerti"}},
           "guards": {"max_per_minute": 1000}})
}

/// What customers write: most match nothing or a late rule (the worst case: every
/// rule is tried).
fn text(n: u64) -> String {
    match n % 5 {
        0 => format!("Halo kak, pesanan nomor {n} sudah dikirim? 🙏"),
        1 => format!("mau tanya kata{} dong", n % 200),
        2 => format!("PRODUK-{}", n % 200),
        3 => "menu f".to_string(),
        _ => "Terima kasih banyak ya".to_string(),
    }
}

fn engine_alone(n: u64) {
    let bot: Bot = serde_json::from_value(big_bot()).expect("bot");
    let problems = whacaster::bot::document::validate(&bot);
    assert!(problems.is_empty(), "{problems:?}");
    let t = Instant::now();
    let compiled = Compiled::new(bot, 1);
    let compile = t.elapsed();
    let at = Situation {
        now: 1_800_000_000,
        today: chrono::NaiveDate::from_ymd_opt(2027, 1, 15).unwrap(),
        open: true,
        closed_since: None,
        welcome_due: false,
        window_open: true,
        opted_out: false,
        consent_keyword: false,
        sent_last_minute: 0,
        agent_answered_at: None,
    };
    let texts: Vec<String> = (0..n).map(text).collect();
    let t = Instant::now();
    let mut said = 0usize;
    for s in &texts {
        let mut session = Session::default();
        let d = decide(
            &compiled,
            &mut session,
            Input {
                kind: "text",
                text: s,
                reply_id: None,
            },
            at,
        );
        said += d.say.len();
    }
    let took = t.elapsed();
    println!(
        "engine alone, 200 rules + 20 flows: compiled in {:.1} ms; {n} decisions in {:.2} s = {:.0} decisions/s ({said} replies)",
        compile.as_secs_f64() * 1e3,
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
}

fn delivery(n: u64, from: u64, now: i64) -> Vec<u8> {
    let value = json!({"messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "6281234567890", "phone_number_id": "106540352242922"},
        "contacts": [{"profile": {"name": format!("Pelanggan {from}")}, "wa_id": format!("62812{from:08}")}],
        "messages": [{"from": format!("62812{from:08}"), "id": format!("wamid.bot{n}"), "timestamp": now.to_string(),
                      "type": "text", "text": {"body": text(n)}}]});
    serde_json::to_vec(
        &json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398",
        "changes": [{"field": "messages", "value": value}]}]}),
    )
    .unwrap()
}

fn waiting(state: &whacaster::app::AppState) -> i64 {
    state
        .db
        .read_blocking(|c| Ok(whacaster::whatsapp::deliveries::count_backlog(c)?.waiting))
        .expect("backlog")
}

/// Appends `n` deliveries (from 2,000 customers) at once and times the intake draining
/// them.
fn drain(state: &whacaster::app::AppState, first: u64, n: u64) -> f64 {
    let now = state.now();
    let bodies: Vec<Vec<u8>> = (first..first + n).map(|k| delivery(k, k % 2000, now)).collect();
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
    while waiting(state) > 0 {
        assert!(t.elapsed() < Duration::from_secs(900), "the backlog did not drain");
        std::thread::sleep(Duration::from_millis(5));
    }
    n as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    engine_alone(env("BENCH_DECISIONS", 200_000));
    // No outbox sends leave for real: the number's Graph API is an address nobody
    // answers, and what the bot queues just waits.
    let server = support::start(|_| {});
    let state = server.state.clone();
    std::thread::sleep(Duration::from_secs(1));
    let st = state.clone();
    let number = state
        .db
        .write_blocking(move |c| Ok(support::connect_number(c, &st, SECRET, 80)))
        .expect("number");
    let n = env("BENCH_BACKLOG", 20_000);
    // Warm-up: the 2,000 contacts and conversations exist before either run.
    drain(&state, 0, 2_000);
    let without = drain(&state, 10_000_000, n);
    let bot: Bot = serde_json::from_value(big_bot()).expect("bot");
    state
        .db
        .write_blocking(move |c| {
            whacaster::bot::save(c, number, &bot, &whacaster::audit::Actor::system(), "benchmark", 0)?;
            Ok(())
        })
        .expect("bot saved");
    let with = drain(&state, 20_000_000, n);
    let (decided, micros): (i64, i64) = state
        .db
        .read_blocking(|c| {
            Ok(
                c.query_row("SELECT count(*), coalesce(sum(micros), 0) FROM bot_log", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?,
            )
        })
        .expect("log");
    println!(
        "intake, {n} customer messages: {without:.0} deliveries/s without a bot, {with:.0}/s with 200 rules + 20 flows ({:+.1} %); {decided} decisions logged, {:.0} us each inside the transaction",
        (with / without - 1.0) * 100.0,
        micros as f64 / decided.max(1) as f64
    );
}
