//! The operator's commands, run as the real binary: check, setup-url, user reset-mfa,
//! rekey, check-config, and the one-line errors at start.

use crate::common::{PASSWORD, TestApp};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn whacaster(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_whacaster"))
        .args(args)
        .env("WHACASTER_LOG_LEVEL", "error")
        .env_remove("WHACASTER_CONFIG")
        .output()
        .expect("run whacaster");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn check_finds_a_world_readable_key_file() {
    let app = TestApp::start().await;
    let data = app.data_dir();
    let d = data.to_str().unwrap();
    let (code, out, _) = whacaster(&["check", "--data-dir", d]);
    assert_eq!(code, 0, "a fresh install passes: {out}");
    assert!(
        out.contains("is encrypted") && out.contains("integrity check passed") && out.contains("self-signed"),
        "{out}"
    );
    std::fs::set_permissions(data.join("db.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, out, err) = whacaster(&["check", "--data-dir", d]);
    assert_ne!(code, 0);
    assert!(
        out.contains("PROBLEM") && out.contains("db.key") && out.contains("chmod 600"),
        "{out}"
    );
    assert!(err.starts_with("error: "), "{err}");
    std::fs::set_permissions(data.join("db.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(data.join("tls/key.pem"), std::fs::Permissions::from_mode(0o640)).unwrap();
    let (code, out, _) = whacaster(&["check", "--data-dir", d]);
    assert_ne!(code, 0, "a readable TLS key is a problem too: {out}");
}

#[tokio::test]
async fn setup_url_and_reset_mfa_from_the_command_line() {
    let app = TestApp::start().await;
    let d = app.data_dir();
    let d = d.to_str().unwrap();
    let (code, out, _) = whacaster(&["setup-url", "--data-dir", d]);
    assert_eq!(code, 0);
    assert!(out.trim().starts_with("https://127.0.0.1:8443/setup?token="), "{out}");
    // The printed link works on the running server.
    let token = out.trim().split("token=").nth(1).unwrap().to_string();
    assert_eq!(app.browser().get(&format!("/setup?token={token}")).await.status, 200);
    let (admin, _secret) = app.admin("owner@toko.id").await;
    let (code, _, err) = whacaster(&["setup-url", "--data-dir", d]);
    assert_ne!(code, 0);
    assert!(err.contains("already done"), "{err}");
    // Locked-out owner: reset MFA from the server's shell.
    let (code, out, err) = whacaster(&["user", "reset-mfa", "--email", "OWNER@toko.id", "--data-dir", d]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(admin.get("/").await.location(), Some("/login"), "their sessions ended");
    let r = admin.login("owner@toko.id", PASSWORD).await;
    assert_eq!(r.location(), Some("/"), "password only now");
    assert_eq!(
        admin.get("/").await.location(),
        Some("/account/mfa"),
        "admins must enrol again"
    );
    let (code, _, err) = whacaster(&["user", "reset-mfa", "--email", "ghost@toko.id", "--data-dir", d]);
    assert_ne!(code, 0);
    assert!(err.contains("no user"), "{err}");
    let audit = app
        .state
        .db
        .read(|c| {
            Ok(
                c.query_row("SELECT actor FROM audit_log WHERE action = 'user.mfa_reset'", [], |r| {
                    r.get::<_, String>(0)
                })?,
            )
        })
        .await
        .unwrap();
    assert!(audit.starts_with("cli"), "{audit}");
}

#[tokio::test]
async fn rekey_rotates_the_key_and_keeps_the_data() {
    let app = TestApp::start().await;
    app.setup_admin("owner@toko.id").await;
    let data = app.data_dir();
    let _keep = app.stop().await;
    let d = data.to_str().unwrap();
    let old = std::fs::read_to_string(data.join("db.key")).unwrap();
    let (code, out, err) = whacaster(&["rekey", "--data-dir", d]);
    assert_eq!(code, 0, "{out}{err}");
    let new = std::fs::read_to_string(data.join("db.key")).unwrap();
    assert_ne!(old, new);
    assert!(!data.join("db.key.old").exists() && !data.join("db.key.new").exists());
    let old_key = whacaster::crypto::DbKey::parse(&old, &data).unwrap();
    assert!(
        whacaster::store::open_connection(&data.join("whacaster.db"), &old_key).is_err(),
        "old key no longer opens it"
    );
    let (code, out, _) = whacaster(&["check", "--data-dir", d]);
    assert_eq!(code, 0, "{out}");
    let key = whacaster::crypto::DbKey::read(&data.join("db.key")).unwrap();
    let conn = whacaster::store::open_connection(&data.join("whacaster.db"), &key).unwrap();
    let email: String = conn.query_row("SELECT email FROM users", [], |r| r.get(0)).unwrap();
    assert_eq!(email, "owner@toko.id");
}

#[test]
fn bad_config_and_busy_port_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("w.toml");
    std::fs::write(&cfg, "listen = \"127.0.0.1:0\"\nlistne = 1\n").unwrap();
    let (code, _, err) = whacaster(&["check-config", "--config", cfg.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("listne"), "names the unknown key: {err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    std::fs::write(&cfg, "[tls]\nmode = \"off\"\n").unwrap();
    let (code, out, _) = whacaster(&["check-config", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("mode = \"off\""));
    std::fs::write(&cfg, "listen = \"0.0.0.0:8080\"\n[tls]\nmode = \"off\"\n").unwrap();
    let (code, _, err) = whacaster(&["check-config", "--config", cfg.to_str().unwrap()]);
    assert_ne!(code, 0, "plain HTTP on a public address is refused");
    assert!(err.contains("loopback"), "{err}");
    std::fs::write(&cfg, "listen = [1,2]\n").unwrap();
    let (code, _, err) = whacaster(&["check-config", "--config", cfg.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("listen"), "{err}");
    // Env overrides the file, and is checked the same way.
    let out = Command::new(env!("CARGO_BIN_EXE_whacaster"))
        .args(["check-config", "--config", cfg.to_str().unwrap()])
        .env("WHACASTER_LISTEN", "127.0.0.1:9000")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("127.0.0.1:9000"));
    // A busy port.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let data = dir.path().join("data");
    let (code, _, err) = whacaster(&[
        "serve",
        "--data-dir",
        data.to_str().unwrap(),
        "--listen",
        &format!("127.0.0.1:{port}"),
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("in use"), "{err}");
    assert_eq!(err.trim().lines().filter(|l| l.starts_with("error")).count(), 1);
    assert!(!err.contains("panicked"));
}

/// `Type=notify`: systemd hears READY=1 once the listener is bound and migrations ran;
/// SIGTERM stops the server cleanly (exit 0).
#[test]
fn tells_systemd_when_ready_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("notify.sock");
    let listener = std::os::unix::net::UnixDatagram::bind(&socket).unwrap();
    listener
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let data = dir.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_whacaster"))
        .args([
            "serve",
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env("NOTIFY_SOCKET", &socket)
        .env("WHACASTER_LOG_LEVEL", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 256];
    let n = listener.recv(&mut buf).expect("a notification");
    let msg = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(msg.contains("READY=1"), "{msg}");
    // Ready means ready: the port answers and the schema is in place.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    let key = whacaster::crypto::DbKey::read(&data.join("db.key")).unwrap();
    let conn = whacaster::store::open_connection(&data.join("whacaster.db"), &key).unwrap();
    assert_eq!(
        whacaster::store::applied_versions(&conn).unwrap().len(),
        whacaster::store::MIGRATIONS.len()
    );
    drop(conn);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut exited = None;
    for _ in 0..200 {
        if let Some(s) = child.try_wait().unwrap() {
            exited = Some(s);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let exited = exited.unwrap_or_else(|| {
        // Best effort before failing.
        drop(child.kill());
        panic!("still running 10 s after SIGTERM")
    });
    assert!(exited.success(), "graceful stop exits 0: {exited:?}");
}

#[tokio::test]
async fn check_flags_a_config_file_others_may_write() {
    let app = TestApp::start().await;
    let cfg_file = app.data_dir().parent().unwrap().join("whacaster.toml");
    std::fs::write(&cfg_file, format!("data_dir = {:?}\n", app.data_dir())).unwrap();
    std::fs::set_permissions(&cfg_file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let (code, out, _) = whacaster(&["check", "--config", cfg_file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    std::fs::set_permissions(&cfg_file, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (code, out, _) = whacaster(&["check", "--config", cfg_file.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(out.contains("writable by everyone"), "{out}");
}

#[tokio::test]
async fn check_warns_loudly_about_plain_http_without_a_trusted_proxy() {
    let app = TestApp::start().await;
    let cfg_file = app.data_dir().parent().unwrap().join("plain.toml");
    let write = |extra: &str| {
        std::fs::write(
            &cfg_file,
            format!("data_dir = {:?}\n{extra}\n[tls]\nmode = \"off\"\n", app.data_dir()),
        )
        .unwrap();
        std::fs::set_permissions(&cfg_file, std::fs::Permissions::from_mode(0o640)).unwrap();
    };
    write("");
    let (_, out, _) = whacaster(&["check", "--config", cfg_file.to_str().unwrap()]);
    assert!(
        out.contains("!!!") && out.contains("no trusted_proxies") && out.contains("metrics.token_file"),
        "{out}"
    );
    write("trusted_proxies = [\"127.0.0.1\"]");
    let (_, out, _) = whacaster(&["check", "--config", cfg_file.to_str().unwrap()]);
    assert!(!out.contains("no trusted_proxies"), "{out}");
}

fn whacaster_stdin(args: &[&str], stdin: &str) -> (i32, String, String) {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_whacaster"))
        .args(args)
        .env("WHACASTER_LOG_LEVEL", "error")
        .env_remove("WHACASTER_CONFIG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run whacaster");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Issue 14.12: the sole owner who forgot the password gets back in from the server's
/// shell, and a scripted install creates its first admin without the browser.
#[tokio::test]
async fn a_forgotten_password_and_a_scripted_admin_from_the_command_line() {
    let app = TestApp::start().await;
    let d = app.data_dir();
    let d = d.to_str().unwrap();
    // Scripted: the first admin, password from standard input; a weak one is refused.
    let (code, _, err) = whacaster_stdin(
        &[
            "user",
            "create",
            "--email",
            "owner@toko.id",
            "--role",
            "admin",
            "--password-stdin",
            "--data-dir",
            d,
        ],
        "short\n",
    );
    assert_ne!(code, 0);
    assert!(err.contains("--password"), "names the problem: {err}");
    let (code, out, err) = whacaster_stdin(
        &[
            "user",
            "create",
            "--email",
            "owner@toko.id",
            "--role",
            "admin",
            "--password-stdin",
            "--data-dir",
            d,
        ],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        !out.contains(PASSWORD) && !err.contains(PASSWORD),
        "the password is never echoed"
    );
    let b = app.browser();
    assert_eq!(b.login("owner@toko.id", PASSWORD).await.location(), Some("/"));
    assert_eq!(b.get("/").await.location(), Some("/account/mfa"), "an admin enrols MFA");
    // Forgotten: a one-time link; the old session ends; the link sets a new password once.
    let (code, out, err) = whacaster(&["user", "reset-password", "--email", "Owner@toko.id", "--data-dir", d]);
    assert_eq!(code, 0, "{out}{err}");
    let link = out.trim();
    assert!(link.starts_with("https://127.0.0.1:8443/invite/"), "{link}");
    assert_eq!(b.get("/").await.location(), Some("/login"), "their sessions ended");
    let path = link.trim_start_matches("https://127.0.0.1:8443");
    let new_password = "kopi-susu-gula-aren-2026";
    let r = b
        .submit(path, path, &[("password", new_password), ("confirm", new_password)])
        .await;
    assert_eq!(r.location(), Some("/login?m=flash.invite_accepted"));
    assert_eq!(b.login("owner@toko.id", new_password).await.location(), Some("/"));
    assert_eq!(b.get(path).await.status, 400, "the link works once");
    let (code, _, err) = whacaster(&["user", "reset-password", "--email", "ghost@toko.id", "--data-dir", d]);
    assert_ne!(code, 0);
    assert!(err.contains("no user"), "{err}");
}
