//! The encrypted store: nothing readable on disk, wrong key refused, migrations once,
//! grouped commits, and nothing acknowledged is lost when the process is killed.

use crate::common::{TestApp, test_config};
use whacaster::crypto::DbKey;
use whacaster::store::{self, Db};

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn database_and_wal_hold_no_plaintext() {
    let app = TestApp::start().await;
    app.setup_admin("rahasia.unik@example.id").await;
    let dir = app.data_dir();
    let db = std::fs::read(dir.join("whacaster.db")).unwrap();
    let wal = std::fs::read(dir.join("whacaster.db-wal")).unwrap();
    assert!(!db.starts_with(b"SQLite format 3"), "the file must not be plain SQLite");
    assert!(!wal.is_empty(), "the WAL has the recent writes");
    for needle in [&b"rahasia.unik"[..], b"Budi Santoso", b"Toko Maju Jaya", b"Merdeka"] {
        assert!(
            !contains(&db, needle),
            "plaintext {:?} in the database file",
            String::from_utf8_lossy(needle)
        );
        assert!(
            !contains(&wal, needle),
            "plaintext {:?} in the WAL",
            String::from_utf8_lossy(needle)
        );
    }
    // ... and the data really is there, readable with the key.
    let key = DbKey::read(&dir.join("db.key")).unwrap();
    let conn = store::open_connection(&dir.join("whacaster.db"), &key).unwrap();
    let email: String = conn.query_row("SELECT email FROM users", [], |r| r.get(0)).unwrap();
    assert_eq!(email, "rahasia.unik@example.id");
}

#[tokio::test]
async fn wrong_key_fails_at_start_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = test_config(dir.path());
    let app = TestApp::start_with(tempfile::tempdir().unwrap(), cfg.clone()).await;
    drop(app);
    // A fresh start on the same data dir works...
    let again = TestApp::try_start(tempfile::tempdir().unwrap(), cfg.clone()).await;
    assert!(again.is_ok(), "{:?}", again.err());
    // ...a different key does not.
    std::fs::remove_file(cfg.data_dir.join("db.key")).unwrap();
    DbKey::generate().write_new(&cfg.data_dir.join("db.key")).unwrap();
    let err = TestApp::try_start(tempfile::tempdir().unwrap(), cfg.clone())
        .await
        .err()
        .expect("must refuse");
    assert!(err.contains("wrong key"), "message names the problem: {err}");
    // A database whose key file is missing is never given a new key.
    std::fs::remove_file(cfg.data_dir.join("db.key")).unwrap();
    let err = TestApp::try_start(tempfile::tempdir().unwrap(), cfg)
        .await
        .err()
        .expect("must refuse");
    assert!(err.contains("key file") && err.contains("missing"), "{err}");
}

#[test]
fn migrations_apply_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let key = DbKey::generate();
    let db = Db::open(&path, &key).unwrap();
    drop(db);
    let mut conn = store::open_connection(&path, &key).unwrap();
    assert!(store::migrate(&mut conn).unwrap().is_empty(), "nothing left to apply");
    let applied = store::applied_versions(&conn).unwrap();
    assert_eq!(applied.len(), store::MIGRATIONS.len());
    // Opening again (as every start does) changes nothing.
    let db = Db::open(&path, &key).unwrap();
    let n: i64 = db
        .read_blocking(|c| Ok(c.query_row("SELECT count(*) FROM schema_migrations", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(usize::try_from(n).unwrap(), store::MIGRATIONS.len());
}

#[tokio::test]
async fn grouped_writes_are_isolated_and_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("t.db"), &DbKey::generate()).unwrap();
    db.write(|c| Ok(c.execute_batch("CREATE TABLE t (v INTEGER)")?))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..200i64 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            db.write(move |c| {
                c.execute("INSERT INTO t (v) VALUES (?1)", [i])?;
                if i % 10 == 0 {
                    // A failing job must not take its batch-mates down with it.
                    return Err(whacaster::AppError::BadRequest("test.fail").into());
                }
                Ok(())
            })
            .await
        }));
    }
    let mut failed = 0;
    for t in tasks {
        if t.await.unwrap().is_err() {
            failed += 1;
        }
    }
    assert_eq!(failed, 20);
    let (n, bad): (i64, i64) = db
        .read(|c| {
            Ok(c.query_row("SELECT count(*), sum(v % 10 = 0) FROM t", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?)
        })
        .await
        .unwrap();
    assert_eq!(n, 180, "every successful write landed");
    assert_eq!(bad, 0, "failed jobs were rolled back");
}

/// Starts the real binary, makes it write (failed sign-ins are recorded before the
/// answer), kills it with SIGKILL mid-stream, and checks that every answered write is
/// in the database and the database is intact. Three rounds.
#[tokio::test]
async fn kill_during_writes_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut acknowledged = 0usize;
    for round in 0..3 {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_whacaster"))
            .args([
                "serve",
                "--data-dir",
                data.to_str().unwrap(),
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .env("WHACASTER_ARGON2__MEMORY_KIB", "64")
            .env("WHACASTER_ARGON2__ITERATIONS", "1")
            .env("WHACASTER_LOGIN__PER_IP_PER_MINUTE", "100000")
            .env("WHACASTER_LOGIN__MAX_FAILURES", "1000000")
            .env("WHACASTER_LOG_LEVEL", "error")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let b = crate::common::Browser::new(&format!("https://127.0.0.1:{port}"));
        let mut up = false;
        for _ in 0..600 {
            if b.client.get(format!("{}/healthz", b.base)).send().await.is_ok() {
                up = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(up, "server {round} came up");
        let page = b.get("/login").await;
        let token = crate::common::csrf_in(&page.body).unwrap();
        let ok = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for w in 0..8 {
            let (b, token, ok) = (b.clone(), token.clone(), std::sync::Arc::clone(&ok));
            tasks.push(tokio::spawn(async move {
                for i in 0..10_000 {
                    let email = format!("r{round}w{w}i{i}@example.id");
                    let r = b
                        .client
                        .post(format!("{}/login", b.base))
                        .form(&[
                            ("csrf", token.as_str()),
                            ("email", &email),
                            ("password", "wrong password!"),
                        ])
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status().as_u16() == 422 => {
                            ok.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        _ => break,
                    }
                }
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(700 + 300 * round)).await;
        child.kill().unwrap();
        child.wait().unwrap();
        for t in tasks {
            t.await.unwrap();
        }
        acknowledged += ok.load(std::sync::atomic::Ordering::SeqCst);
        assert!(
            ok.load(std::sync::atomic::Ordering::SeqCst) > 0,
            "round {round} wrote something"
        );
        let key = DbKey::read(&data.join("db.key")).unwrap();
        let problems = store::integrity_check(&data.join("whacaster.db"), &key).unwrap();
        assert!(problems.is_empty(), "integrity after kill: {problems:?}");
        let conn = store::open_connection(&data.join("whacaster.db"), &key).unwrap();
        let stored: i64 = conn
            .query_row("SELECT count(*) FROM login_events WHERE outcome = 'failure'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(
            usize::try_from(stored).unwrap() >= acknowledged,
            "round {round}: {stored} stored < {acknowledged} acknowledged"
        );
    }
}

#[test]
fn an_upgrade_copies_the_database_before_changing_its_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("whacaster.db");
    let key = DbKey::generate();
    // A database as the first release left it: only migration 1.
    {
        std::fs::File::create(&path).unwrap();
        let conn = store::open_connection(&path, &key).unwrap();
        conn.execute_batch(include_str!("../../migrations/0001_init.sql"))
            .unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL);
             INSERT INTO schema_migrations VALUES (1, '0001_init.sql', 0);
             INSERT INTO users (email, name, role, created_at, updated_at) VALUES ('kept@toko.id', 'Kept', 'admin', 0, 0);",
        )
        .unwrap();
    }
    let db = Db::open(&path, &key).unwrap();
    let backups: Vec<_> = std::fs::read_dir(dir.path().join("backups"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(backups.len(), 1, "one copy before the schema change");
    let name = backups[0].file_name().unwrap().to_string_lossy().to_string();
    assert!(name.starts_with("whacaster-schema1-"), "{name}");
    let copy = std::fs::read(&backups[0]).unwrap();
    assert!(
        !copy.starts_with(b"SQLite format 3") && !contains(&copy, b"kept@toko.id"),
        "the copy is encrypted"
    );
    let conn = store::open_connection(&backups[0], &key).unwrap();
    let applied = store::applied_versions(&conn).unwrap();
    assert_eq!(applied, vec![1], "the copy is the database before the upgrade");
    let email: String = conn.query_row("SELECT email FROM users", [], |r| r.get(0)).unwrap();
    assert_eq!(email, "kept@toko.id");
    let n: i64 = db
        .read_blocking(|c| Ok(c.query_row("SELECT count(*) FROM schema_migrations", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(usize::try_from(n).unwrap(), store::MIGRATIONS.len());
    drop(db);
    // No schema change, no copy.
    let _again = Db::open(&path, &key).unwrap();
    assert_eq!(std::fs::read_dir(dir.path().join("backups")).unwrap().count(), 1);
}

#[tokio::test]
async fn a_panicking_write_does_not_stop_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("t.db"), &DbKey::generate()).unwrap();
    db.write(|c| Ok(c.execute_batch("CREATE TABLE t (v INTEGER)")?))
        .await
        .unwrap();
    let r: Result<(), _> = db
        .write(|c| {
            c.execute("INSERT INTO t (v) VALUES (1)", [])?;
            panic!("a bug in a write");
        })
        .await;
    assert!(r.is_err(), "the caller hears about it");
    db.write(|c| Ok(c.execute("INSERT INTO t (v) VALUES (2)", []).map(|_| ())?))
        .await
        .unwrap();
    let vals: Vec<i64> = db
        .read(|c| {
            let mut st = c.prepare("SELECT v FROM t")?;
            let rows = st.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
        .unwrap();
    assert_eq!(vals, vec![2], "the panicking write was rolled back, later writes work");
}
