//! Segment counts at size: 100,000 contacts (set BENCH_CONTACTS) with three inbound
//! messages each, in an encrypted database file as in production, counted through
//! `contacts::segments::count` on a fresh (cold) connection, first and again. Prints
//! the time per filter. Run: `cargo bench --bench segments`. (The query plan — every
//! criterion found through an index — is asserted by the unit tests in segments.rs.)
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a benchmark harness: failing loudly is the point"
)]

use rusqlite::params;
use std::time::Instant;
use whacaster::contacts::consent::State;
use whacaster::contacts::segments::{AttrOp, AttributeRule, Filter, LastInbound, Moment, Recency, count};

fn main() {
    let n: i64 = std::env::var("BENCH_CONTACTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let at = Moment {
        now: 1_800_000_000,
        tz: Some(chrono_tz::Asia::Jakarta),
    };
    let dir = tempfile::tempdir().unwrap();
    let (path, key) = (dir.path().join("bench.db"), whacaster::crypto::DbKey::generate());
    let mut c = whacaster::store::open_connection(&path, &key).unwrap();
    whacaster::store::migrate(&mut c).unwrap();
    let seeded = Instant::now();
    let tx = c.transaction().unwrap();
    tx.execute("INSERT INTO labels (id, name, created_at) VALUES (1, 'VIP', 0)", [])
        .unwrap();
    for i in 1..=n {
        let attrs = if i % 3 == 0 {
            r#"{"kota":"Bandung"}"#
        } else {
            r#"{"kota":"Jakarta"}"#
        };
        tx.execute(
            "INSERT INTO contacts (id, wa_id, phone_e164, name, attributes, created_at, consent_marketing)
             VALUES (?1, ?2, '+' || ?2, ?3, ?4, ?5, ?6)",
            params![
                i,
                format!("62811{i:07}"),
                format!("C{i}"),
                attrs,
                at.now - (i % 400) * 86_400,
                if i % 2 == 0 { "opted_in" } else { "unknown" }
            ],
        )
        .unwrap();
        if i % 10 == 0 {
            tx.execute("INSERT INTO contact_labels (contact_id, label_id) VALUES (?1, 1)", [i])
                .unwrap();
        }
        for k in 0..3 {
            tx.execute(
                "INSERT INTO messages (phone_number_id, contact_id, direction, kind, sent_at, created_at)
                 VALUES (?1, ?2, 'in', 'text', ?3, ?3)",
                params![if k == 0 { "111" } else { "222" }, i, at.now - (i % 90 + k) * 86_400],
            )
            .unwrap();
        }
    }
    tx.commit().unwrap();
    drop(c);
    println!(
        "segments: {n} contacts, {} inbound messages, seeded in {:.1} s",
        n * 3,
        seeded.elapsed().as_secs_f64()
    );
    // A fresh connection, like one from the pool: its page cache starts cold.
    let c = whacaster::store::open_connection(&path, &key).unwrap();
    let within = |days| LastInbound {
        when: Recency::Within,
        days: Some(days),
    };
    let cases = [
        ("everyone", Filter::default()),
        (
            "wrote in 30 days",
            Filter {
                last_inbound: Some(within(30)),
                ..Filter::default()
            },
        ),
        (
            "opted in, label VIP, kota=Bandung, number 111, lapsed 30 days",
            Filter {
                labels_any: vec!["VIP".into()],
                consent_marketing: Some(State::OptedIn),
                attributes: vec![AttributeRule {
                    key: "kota".into(),
                    op: AttrOp::Equals,
                    value: "bandung".into(),
                }],
                number: Some("111".into()),
                last_inbound: Some(LastInbound {
                    when: Recency::NotWithin,
                    days: Some(30),
                }),
                ..Filter::default()
            },
        ),
    ];
    for (what, f) in cases {
        for run in ["first", "again"] {
            let t = Instant::now();
            let found = count(&c, &f, &at).unwrap();
            println!(
                "  {what} ({run}): {found} contacts counted in {:.1} ms",
                t.elapsed().as_secs_f64() * 1e3
            );
        }
    }
}
