//! Privacy operations through the real server and the real binary: encrypted backups
//! (backup -> verify -> restore -> the restored server has the data; tampered and cut
//! files refused; no plaintext inside), rekey with the media files, the account export,
//! the usage page and the evidence page.

use crate::common::{PASSWORD, TestApp};
use crate::fake_graph::FakeGraph;
use base64::Engine;
use sha2::Digest;
use std::process::Command;

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const MARKER_TEXT: &str = "PESAN-RAHASIA-7731 kirim ke gudang";
const MARKER_NAME: &str = "Kartini Wulandari";
const PHOTO_MARKER: &[u8] = b"PHOTO-PLAINTEXT-MARKER-5519";

fn whacaster(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_whacaster"))
        .args(args)
        .env("WHACASTER_LOG_LEVEL", "error")
        .env_remove("WHACASTER_CONFIG")
        .env_remove("CREDENTIALS_DIRECTORY")
        .env_remove("WHACASTER_DB_KEY_FILE")
        .output()
        .expect("run whacaster");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// An app with a number, a customer's message and a photo (stored encrypted).
async fn app_with_data() -> (TestApp, crate::common::Browser, FakeGraph, i64, Vec<u8>) {
    let graph = FakeGraph::start();
    // The daily job off: the backups here are the CLI's (the job has its own test).
    let (app, admin) = crate::common::app_with_number(&graph, SECRET, "tok", "80", |c| c.backup.enabled = false).await;
    crate::common::inbound_text(
        &app,
        SECRET,
        "106540352242922",
        "wamid.backup.text",
        "6281234500001",
        MARKER_NAME,
        1_764_000_000,
        MARKER_TEXT,
    )
    .await;
    let mut photo = b"\xff\xd8\xff\xe0".to_vec();
    photo.extend_from_slice(PHOTO_MARKER);
    graph.add_media("88001", &photo, "image/jpeg");
    let sha = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&photo));
    let body = serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "62812", "phone_number_id": "106540352242922"},
        "contacts": [{"profile": {"name": MARKER_NAME}, "wa_id": "6281234500001"}],
        "messages": [{"from": "6281234500001", "id": "wamid.backup.photo", "timestamp": "1764000001", "type": "image",
                      "image": {"id": "88001", "mime_type": "image/jpeg", "sha256": sha}}]}}]}]});
    crate::common::deliver(&app, SECRET, &body).await;
    let mut media_id = 0;
    for _ in 0..200 {
        let row: Option<(i64, String)> = app
            .state
            .db
            .read(|c| {
                use rusqlite::OptionalExtension;
                Ok(
                    c.query_row("SELECT id, state FROM media_files WHERE media_id = '88001'", [], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()?,
                )
            })
            .await
            .unwrap();
        if let Some((id, state)) = row {
            if state == "stored" {
                media_id = id;
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(media_id > 0, "the photo was stored");
    (app, admin, graph, media_id, photo)
}

fn stored_name(cfg: &whacaster::config::Config, media_id: i64) -> String {
    let c = crate::common::open_stopped_db(cfg);
    c.query_row("SELECT stored_name FROM media_files WHERE id = ?1", [media_id], |r| {
        r.get(0)
    })
    .unwrap()
}

fn port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

async fn wait_up(base: &str) -> reqwest::Client {
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    for _ in 0..600 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            return client;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the server did not come up");
}

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        drop(self.0.kill());
        drop(self.0.wait());
    }
}

#[tokio::test]
#[expect(clippy::too_many_lines, reason = "one story: backup, verify, restore, serve")]
async fn backup_while_serving_restores_into_a_fresh_dir_and_the_server_starts_with_the_data() {
    let (app, admin, graph, media_id, photo) = app_with_data().await;
    let token = crate::common::api_key(&admin, "admin").await;
    let work = tempfile::tempdir().unwrap();
    let pass = work.path().join("pass");
    std::fs::write(&pass, "gunung merapi kopi luwak 2026\n").unwrap();
    let file = work.path().join("b.wcbk");
    let data = app.data_dir();
    let d = data.to_str().unwrap();

    // Online: the server keeps running while the CLI snapshots it.
    let (code, out, err) = whacaster(&[
        "backup",
        "--data-dir",
        d,
        "--out",
        file.to_str().unwrap(),
        "--passphrase-file",
        pass.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out} {err}");
    assert!(
        out.contains("written and verified") && out.contains("1 media files"),
        "{out}"
    );
    assert!(
        out.contains("passphrase") && out.contains("database key is not needed"),
        "{out}"
    );

    let bytes = std::fs::read(&file).unwrap();
    for needle in [
        MARKER_TEXT.as_bytes(),
        MARKER_NAME.as_bytes(),
        PHOTO_MARKER,
        b"SQLite format 3",
        b"6281234500001",
    ] {
        assert!(
            !contains(&bytes, needle),
            "plaintext {:?} in the backup",
            String::from_utf8_lossy(needle)
        );
    }
    assert!(
        std::fs::read_dir(work.path()).unwrap().all(|e| {
            let n = e.unwrap().file_name().to_string_lossy().to_string();
            n == "pass" || n == "b.wcbk"
        }),
        "no scratch or part file left"
    );
    let (code, out, err) = whacaster(&[
        "backup",
        "--verify",
        file.to_str().unwrap(),
        "--passphrase-file",
        pass.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out} {err}");
    assert!(out.contains("is restorable") && out.contains("1 media files"), "{out}");
    // A wrong passphrase says so in one line.
    let wrong = work.path().join("wrong");
    std::fs::write(&wrong, "this is not the passphrase").unwrap();
    let (code, _, err) = whacaster(&[
        "backup",
        "--verify",
        file.to_str().unwrap(),
        "--passphrase-file",
        wrong.to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("wrong backup key or passphrase") && err.trim().lines().count() == 1,
        "{err}"
    );

    // The System page shows it (the CLI recorded it in the running server's database).
    let page = get_page(&admin, "/admin/system").await;
    assert!(page.contains("b.wcbk") && page.contains("backup-verified"), "{page}");
    drop(app.stop().await);

    let fresh = tempfile::tempdir().unwrap();
    let target = fresh.path().join("restored");
    let t = target.to_str().unwrap();
    let (code, out, err) = whacaster(&[
        "restore",
        file.to_str().unwrap(),
        "--data-dir",
        t,
        "--passphrase-file",
        pass.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out} {err}");
    assert!(out.contains("Restored") && out.contains("integrity ok"), "{out}");
    // A second restore into the now non-empty dir is refused.
    let (code, _, err) = whacaster(&[
        "restore",
        file.to_str().unwrap(),
        "--data-dir",
        t,
        "--passphrase-file",
        pass.to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("not empty"), "{err}");

    // The restored media opens under the restored data dir's own key.
    let mut cfg = app_config_for(&target);
    cfg.graph.base_url = graph.base.clone();
    let name = stored_name(&cfg, media_id);
    let key = whacaster::crypto::DbKey::read(&target.join("db.key")).unwrap();
    let store = whacaster::whatsapp::media::MediaStore::new(target.join("media"), key.media_key());
    assert_eq!(store.read(&name).unwrap(), photo);
    assert!(!contains(
        &std::fs::read(target.join("media").join(&name)).unwrap(),
        PHOTO_MARKER
    ));

    // The real binary serves the restored data.
    let p = port();
    let child = Command::new(env!("CARGO_BIN_EXE_whacaster"))
        .args(["serve", "--data-dir", t, "--listen", &format!("127.0.0.1:{p}")])
        .env("WHACASTER_GRAPH__BASE_URL", &graph.base)
        .env("WHACASTER_LOG_LEVEL", "error")
        .env_remove("WHACASTER_CONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _guard = Killed(child);
    let base = format!("https://127.0.0.1:{p}");
    let client = wait_up(&base).await;
    let r = client
        .get(format!("{base}/api/v1/conversations"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.contains(MARKER_NAME), "{text}");
}

fn app_config_for(data: &std::path::Path) -> whacaster::config::Config {
    whacaster::config::Config {
        data_dir: data.to_path_buf(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_tampered_or_truncated_backup_is_refused_by_verify_and_restore() {
    let (app, _admin, _graph, _, _) = app_with_data().await;
    let work = tempfile::tempdir().unwrap();
    let data = app.data_dir();
    let file = work.path().join("k.wcbk");
    // The default key: <data-dir>/backup.key, made on the first backup.
    let (code, out, err) = whacaster(&[
        "backup",
        "--data-dir",
        data.to_str().unwrap(),
        "--out",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out} {err}");
    assert!(
        out.contains("backup.key") && out.contains("away from this machine"),
        "{out}"
    );
    let key = data.join("backup.key");
    let k = key.to_str().unwrap();
    let good = std::fs::read(&file).unwrap();

    let tampered = work.path().join("tampered.wcbk");
    let mut bad = good.clone();
    let i = bad.len() / 2;
    bad[i] ^= 0x20;
    std::fs::write(&tampered, &bad).unwrap();
    let truncated = work.path().join("truncated.wcbk");
    std::fs::write(&truncated, &good[..good.len() - 100]).unwrap();
    let header_only = work.path().join("header.wcbk");
    std::fs::write(&header_only, &good[..20]).unwrap();

    for (f, expect) in [
        (&tampered, "damaged or truncated"),
        (&truncated, "damaged or truncated"),
        (&header_only, "shorter than its header"),
    ] {
        let (code, out, err) = whacaster(&["backup", "--verify", f.to_str().unwrap(), "--key-file", k]);
        assert_ne!(code, 0, "{} verified: {out}", f.display());
        assert!(
            err.contains(expect) && err.trim().lines().count() == 1,
            "{}: {err}",
            f.display()
        );
        let target = work
            .path()
            .join(format!("r-{}", f.file_name().unwrap().to_string_lossy()));
        let (code, _, err) = whacaster(&[
            "restore",
            f.to_str().unwrap(),
            "--data-dir",
            target.to_str().unwrap(),
            "--key-file",
            k,
        ]);
        assert_ne!(code, 0);
        assert!(err.contains(expect) && err.trim().lines().count() == 1, "{err}");
        assert_eq!(
            std::fs::read_dir(&target).map(Iterator::count).unwrap_or(0),
            0,
            "a failed restore leaves nothing behind"
        );
    }
    let (code, _, err) = whacaster(&["backup", "--verify", file.to_str().unwrap(), "--key-file", k]);
    assert_eq!(code, 0, "{err}");
}

#[tokio::test]
async fn the_daily_job_backs_up_keeps_n_and_runs_the_post_command_without_a_shell() {
    let graph = FakeGraph::start();
    let work = tempfile::tempdir().unwrap();
    let marker = work.path().join("shipped");
    let script = work.path().join("ship.sh");
    std::fs::write(&script, format!("#!/bin/sh\necho \"$1\" >> {}\n", marker.display())).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let s = script.display().to_string();
    let (app, admin) = crate::common::app_with_number(&graph, SECRET, "tok", "80", move |c| {
        c.backup.keep = 2;
        c.backup.post_command = Some(format!("{s} {{file}}"));
    })
    .await;
    for _ in 0..3 {
        whacaster::jobs::run_once(&app.state.db, &app.clock, &find_job(&app, "back_up_data")).await;
        app.clock.advance(86_400);
    }
    let dir = app.data_dir().join("backups");
    let kept: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.contains(".wcbk"))
        .collect();
    assert_eq!(kept.len(), 2, "{kept:?}");
    let shipped = std::fs::read_to_string(&marker).unwrap();
    // Three runs here, and maybe the scheduler's own first run a few seconds after start.
    assert!(shipped.lines().count() >= 3, "{shipped}");
    assert!(
        shipped.lines().all(|l| l.contains("/backups/whacaster-backup-")),
        "{shipped}"
    );
    drop(admin);
    let last = app
        .state
        .db
        .read(|c| Ok(whacaster::privacy::backup::find_last(c)?))
        .await
        .unwrap()
        .unwrap();
    assert!(last.verified && last.origin == "job" && last.size > 0, "{last:?}");
    assert!(
        last.detail.contains("post_command") && last.detail.contains("done"),
        "{last:?}"
    );
}

/// A page after a long pause (a CLI run): the kept-alive connection may have been
/// closed by the server meanwhile, so one retry on a transport error.
async fn get_page(b: &crate::common::Browser, path: &str) -> String {
    for _ in 0..3 {
        if let Ok(r) = b.client.get(format!("{}{path}", b.base)).send().await {
            assert_eq!(r.status(), 200, "{path}");
            return r.text().await.unwrap();
        }
    }
    panic!("{path} did not answer");
}

fn find_job(app: &TestApp, name: &str) -> whacaster::jobs::JobSpec {
    let b = whacaster::privacy::backup::Backups {
        db: app.state.db.clone(),
        config: std::sync::Arc::clone(&app.state.config),
        media_key: whacaster::crypto::DbKey::read(&app.data_dir().join("db.key"))
            .unwrap()
            .media_key(),
    };
    assert_eq!(name, "back_up_data");
    whacaster::jobs::JobSpec {
        name: "back_up_data",
        every: std::time::Duration::from_secs(86_400),
        run: {
            let clock = app.clock.clone();
            Box::new(move || Box::pin(whacaster::privacy::backup::back_up_data(b.clone(), clock.unix())))
        },
    }
}

#[tokio::test]
async fn rekey_reencrypts_the_media_and_the_restarted_server_serves_them() {
    let (app, admin, _graph, media_id, photo) = app_with_data().await;
    drop(admin);
    let cfg = app.config.clone();
    let before = stored_name(&cfg, media_id);
    let media_file = cfg.data_dir.join("media").join(&before);
    let old_bytes = std::fs::read(&media_file).unwrap();
    let dir = app.stop().await;
    let (code, out, err) = whacaster(&["rekey", "--data-dir", cfg.data_dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out} {err}");
    assert!(out.contains("1 media files"), "{out}");
    let new_bytes = std::fs::read(&media_file).unwrap();
    assert_ne!(old_bytes, new_bytes, "sealed again");
    assert!(!contains(&new_bytes, PHOTO_MARKER));
    assert!(
        std::fs::read_dir(cfg.data_dir.join("media")).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".new")),
        "nothing staged is left"
    );

    let app = TestApp::start_with(dir, cfg).await;
    let b = app.browser();
    let r = b.login("owner@toko.id", PASSWORD).await;
    assert_eq!(r.status, 303);
    let served = app.state.media.store.read(&before).unwrap();
    assert_eq!(served, photo, "the restarted server reads the media under the new key");
}

#[tokio::test]
async fn the_evidence_page_states_each_item_and_the_account_export_holds_no_secret() {
    let graph = FakeGraph::start();
    let (app, admin) = crate::common::app_with_number(&graph, SECRET, "tok-SECRET-ACCESS", "80", |c| {
        c.backup.enabled = false;
    })
    .await;
    // Before any backup or check: amber/red, said so.
    let page = get_page(&admin, "/admin/evidence").await;
    for key in [
        "tls",
        "certificate",
        "mfa_admins",
        "mfa_users",
        "key_file",
        "integrity",
        "backup",
        "outbound_hosts",
        "schema",
    ] {
        assert!(page.contains(&format!("data-key=\"{key}\"")), "{key} missing: {page}");
    }
    assert!(page.contains("data-key=\"backup\" data-light=\"red\""), "{page}");
    assert!(page.contains("data-key=\"key_file\" data-light=\"green\""), "{page}");
    assert!(page.contains("data-key=\"schema\" data-light=\"green\""), "{page}");
    assert!(page.contains("data-key=\"mfa_admins\" data-light=\"green\""), "{page}");

    // A Graph call is recorded, and only the Graph API's host shows.
    drop(app.state.graph.phone_number("106540352242922", "tok").await);
    whacaster::privacy::evidence::record_outbound_hosts(&app.state.db, &app.state.graph, app.state.now())
        .await
        .unwrap();
    whacaster::privacy::evidence::check_database_integrity(&app.state.db, app.state.now())
        .await
        .unwrap();
    let host = graph.base.trim_start_matches("http://").to_string();
    let page = get_page(&admin, "/admin/evidence").await;
    assert!(
        page.contains("data-key=\"outbound_hosts\" data-light=\"green\""),
        "{page}"
    );
    assert!(page.contains(&host), "{host}: {page}");
    assert!(page.contains("data-key=\"integrity\" data-light=\"green\""), "{page}");

    // The account export: the business, the number's Meta ids, users and roles; no secret.
    let r = admin
        .client
        .get(format!("{}/admin/account/export", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let json: serde_json::Value = r.json().await.unwrap();
    assert_eq!(json["numbers"][0]["phone_number_id"], "106540352242922");
    assert_eq!(json["users"][0]["role"], "admin");
    assert_eq!(json["corrected_at"]["numbers"], "/admin/whatsapp");
    let text = json.to_string();
    for secret in ["tok-SECRET-ACCESS", SECRET, "password", "totp", "$argon2"] {
        assert!(!text.contains(secret), "{secret} in the export: {text}");
    }
    let page = get_page(&admin, "/admin/account").await;
    assert!(
        page.contains("/admin/business") && page.contains("/admin/users"),
        "{page}"
    );
    // An agent may not see either.
    app.create_user(&admin, "agen@toko.id", "agent").await;
    let agent = app.browser();
    agent.login("agen@toko.id", PASSWORD).await;
    assert_eq!(agent.get("/admin/evidence").await.status, 403);
    assert_eq!(agent.get("/admin/account/export").await.status, 403);
}
