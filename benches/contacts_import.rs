//! Contact import at size: a generated CSV of 100,000 rows (set BENCH_ROWS) imported
//! through the same service the server uses (`Importer::submit`, then `Importer::run`,
//! the worker's path: chunks of rows through the one writer, consent logged for every
//! row, one label each), then the same file again (all unchanged). Prints rows/s and
//! the growth of peak and current RSS (VmHWM / VmRSS from /proc/self/status).
//! Run: `cargo bench --bench contacts_import`.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a benchmark harness: failing loudly is the point"
)]
#![allow(
    clippy::cast_precision_loss,
    reason = "rates and megabytes from counts far from any type's limits"
)]

mod support;

use std::fmt::Write as _;
use std::time::Instant;
use whacaster::contacts::import::worker::{NewImport, Submitted};
use whacaster::contacts::import::{Options, State};

/// (VmHWM, VmRSS) in KiB.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn mb(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn main() {
    let rows: usize = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let server = support::start(|_| {});
    let state = server.state.clone();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut csv = String::with_capacity(rows * 60);
    csv.push_str("Nama;No HP;Kota;Labels;whatsapp_opted\n");
    let cities = ["Bandung", "Jakarta", "Surabaya", "Medan", "Makassar"];
    for i in 0..rows {
        // Every fourth row in a local spelling with separators, as spreadsheets have them.
        let n = 10_000_000 + i;
        let phone = if i % 4 == 0 {
            format!("0812-{:04}-{:04}", n / 10_000, n % 10_000)
        } else {
            format!("0812{n:08}")
        };
        let opted = if i % 3 == 0 { "ya" } else { "" };
        writeln!(csv, "Pelanggan {i};{phone};{};Member;{opted}", cities[i % cities.len()]).unwrap();
    }
    let bytes = csv.into_bytes();
    let size = bytes.len();
    let options = Options {
        region: "ID".into(),
        labels: vec!["Bench".into()],
        update: true,
        consent_marketing: true,
        consent_source: "Formulir member (bench)".into(),
        fields: None,
    };
    let actor = whacaster::audit::Actor::system();
    println!("contacts_import: {rows} rows, {:.1} MB CSV", size as f64 / 1e6);
    for round in ["first import (all created)", "same file again (all unchanged)"] {
        let (hwm0, rss0) = memory();
        let t = Instant::now();
        let new = NewImport {
            actor: actor.clone(),
            file_name: "bench.csv".into(),
            file: bytes.clone(),
            options: options.clone(),
        };
        let Submitted::Stored { id, total } = rt.block_on(state.importer.submit(new, State::Queued)).unwrap() else {
            panic!("the file was refused");
        };
        let stored = t.elapsed();
        // Beside the import, an empty write every 10 ms: how long any other write (a
        // webhook's) waits for the one writer while a chunk holds it.
        let done = std::sync::atomic::AtomicBool::new(false);
        let waits = std::thread::scope(|s| {
            let probe = s.spawn(|| {
                let mut waits = Vec::new();
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    let w = Instant::now();
                    state.db.write_blocking(|_| Ok(())).unwrap();
                    waits.push(w.elapsed().as_secs_f64() * 1e3);
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                waits
            });
            rt.block_on(state.importer.run(id)).unwrap();
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            probe.join().unwrap()
        });
        let took = t.elapsed();
        let (hwm1, rss1) = memory();
        let imp = state
            .db
            .read_blocking(|c| Ok(whacaster::contacts::import::find(c, id)?))
            .unwrap()
            .unwrap();
        assert_eq!(imp.state, State::Done, "{:?}", imp.error);
        println!("  {round}:");
        println!(
            "    rows {total}: created {} updated {} unchanged {} skipped {}",
            imp.counts.created, imp.counts.updated, imp.counts.unchanged, imp.counts.skipped
        );
        println!(
            "    {:.2} s in all ({:.2} s to check and store the file): {:.0} rows/s",
            took.as_secs_f64(),
            stored.as_secs_f64(),
            total as f64 / took.as_secs_f64()
        );
        let mut sorted = waits.clone();
        sorted.sort_by(f64::total_cmp);
        let at = |pct: usize| sorted[(sorted.len() - 1) * pct / 100];
        println!(
            "    a write beside it waited p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} writes)",
            at(50),
            at(99),
            at(100),
            sorted.len()
        );
        println!(
            "    RSS {:.1} MB -> {:.1} MB (growth {:.1} MB); peak (VmHWM) {:.1} MB -> {:.1} MB, peak growth over the start RSS {:.1} MB",
            mb(rss0),
            mb(rss1),
            mb(rss1.saturating_sub(rss0)),
            mb(hwm0),
            mb(hwm1),
            mb(hwm1.saturating_sub(rss0))
        );
    }
}
