//! Backup and restore at size: a database of 1,000,000 messages (set BENCH_MESSAGES),
//! encrypted as in production; prints its size, the integrity job's check, the time
//! of backup, verify and restore, and the backup's size. Run:
//! `cargo bench --bench backup` (CI runs it small, so it keeps working).
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a benchmark harness: failing loudly is the point"
)]

fn main() {
    let n: i64 = std::env::var("BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    std::fs::create_dir_all(data.join("media")).unwrap();
    let key = whacaster::crypto::DbKey::generate();
    key.write_new(&data.join("db.key")).unwrap();
    let db_path = data.join("whacaster.db");
    let db = whacaster::store::Db::open(&db_path, &key).unwrap();
    let t = std::time::Instant::now();
    db.write_blocking(move |c| {
        let mut stmt = c.prepare(
            "INSERT INTO messages (phone_number_id, direction, wamid, kind, body, sent_at, created_at)
             VALUES ('106540352242922', 'in', ?1, 'text', ?2, ?3, ?3)",
        )?;
        for i in 0..n {
            stmt.execute(rusqlite::params![
                format!("wamid.bench.{i}"),
                format!("Halo kak, pesanan nomor {i} sudah sampai? Terima kasih banyak ya"),
                1_764_000_000 + i
            ])?;
        }
        Ok(())
    })
    .unwrap();
    println!("seeded {n} messages in {:?}", t.elapsed());
    // The main file and its WAL (not checkpointed yet).
    let db_size = std::fs::metadata(&db_path).unwrap().len()
        + std::fs::metadata(data.join("whacaster.db-wal")).map_or(0, |m| m.len());
    let t = std::time::Instant::now();
    let (ok, detail) = db
        .read_blocking(|c| Ok(whacaster::privacy::evidence::check_integrity(c)?))
        .unwrap();
    println!("integrity check: {ok} {detail} in {:?}", t.elapsed());
    let bkey = whacaster::privacy::backup::BackupKey::KeyFile {
        key: whacaster::crypto::DbKey::generate(),
        origin: "bench".into(),
    };
    let out = work.path().join("bench.wcbk");
    let media_key = key.media_key();
    let media_dir = data.join("media");
    let t = std::time::Instant::now();
    let summary = db
        .read_blocking(|c| {
            whacaster::privacy::backup::create(
                &whacaster::privacy::backup::Source {
                    conn: c,
                    media_dir: &media_dir,
                    media_key: &media_key,
                    now: 1_764_000_000,
                },
                &bkey,
                &out,
            )
            .map_err(|e| whacaster::store::DbError::Work(e.into()))
        })
        .unwrap();
    println!(
        "backup: database {db_size} bytes -> backup {} bytes in {:?}",
        summary.size,
        t.elapsed()
    );
    let t = std::time::Instant::now();
    whacaster::privacy::backup::verify(&out, &bkey, work.path()).unwrap();
    println!("verify: {:?}", t.elapsed());
    db.close();
    let target = work.path().join("restored");
    let t = std::time::Instant::now();
    whacaster::privacy::backup::restore(&out, &bkey, &target, &target.join("whacaster.db")).unwrap();
    println!("restore: {:?}", t.elapsed());
}
