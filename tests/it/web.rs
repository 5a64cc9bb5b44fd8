//! The web shell: CSRF, security headers, error pages, static assets, languages,
//! health and metrics, the audit log and the jobs page.

use crate::common::{PASSWORD, TestApp};
use std::collections::BTreeSet;

#[tokio::test]
async fn state_changes_need_a_valid_csrf_token_and_same_origin() {
    let app = TestApp::start().await;
    let (admin, _) = app.admin("owner@toko.id").await;
    let fields = [
        ("name", "X"),
        ("email", "x@toko.id"),
        ("role", "agent"),
        ("method", "invite"),
    ];
    admin.get("/admin/users").await;
    let missing = admin.post_raw("/admin/users", &fields).await;
    assert_eq!(missing.status, 403);
    assert!(missing.body.contains("form expired"), "clear message: {}", missing.body);
    let mut wrong = vec![("csrf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")];
    wrong.extend_from_slice(&fields);
    assert_eq!(admin.post_raw("/admin/users", &wrong).await.status, 403);
    // A valid token from this browser, but sent from another site.
    let page = admin.get("/admin/users").await;
    let token = crate::common::csrf_in(&page.body).unwrap();
    let mut good = vec![("csrf", token.as_str())];
    good.extend_from_slice(&fields);
    let r = admin
        .client
        .post(format!("{}/admin/users", app.base))
        .header("origin", "https://evil.example")
        .form(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = admin
        .client
        .post(format!("{}/admin/users", app.base))
        .header("sec-fetch-site", "cross-site")
        .form(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Same origin, valid token: accepted.
    let r = admin
        .client
        .post(format!("{}/admin/users", app.base))
        .header("origin", app.base.clone())
        .form(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A token from another browser does not work here.
    let other = app.browser();
    let p = other.get("/login").await;
    let foreign = crate::common::csrf_in(&p.body).unwrap();
    let r = admin.post_raw("/logout", &[("csrf", foreign.as_str())]).await;
    assert_eq!(r.status, 403);
    // The login form is protected too.
    assert_eq!(
        other
            .post_raw("/login", &[("email", "owner@toko.id"), ("password", PASSWORD)])
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn security_headers_on_every_response() {
    let app = TestApp::start().await;
    let b = app.browser();
    let css = b.get("/static/css/app.css").await;
    let paths = [
        "/login",
        "/healthz",
        "/static/css/app.css",
        "/does-not-exist",
        "/admin/users",
    ];
    for path in paths {
        let r = b.get(path).await;
        let csp = r
            .header("content-security-policy")
            .unwrap_or_else(|| panic!("CSP on {path}"));
        assert!(
            csp.contains("script-src 'self'")
                && !csp.contains("unsafe-inline")
                && csp.contains("frame-ancestors 'none'")
        );
        assert!(!csp.contains("http"), "no third-party origin in the CSP");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{path}");
        assert_eq!(r.header("referrer-policy"), Some("same-origin"));
        assert!(r.header("permissions-policy").unwrap().contains("camera=()"));
        assert!(r.header("strict-transport-security").unwrap().starts_with("max-age="));
        assert!(r.header("x-request-id").is_some());
        assert!(r.header("server").is_none(), "no version banner");
    }
    assert_eq!(b.get("/login").await.header("cache-control"), Some("no-store"));
    assert!(css.header("cache-control").unwrap().contains("max-age"));
    // Pages reference no third-party resource.
    let login = b.get("/login").await;
    for needle in ["http://", "https://", "//cdn", "fonts.googleapis"] {
        assert!(!login.body.contains(needle), "page contains {needle}");
    }
}

#[tokio::test]
async fn errors_are_pages_with_a_request_id() {
    let app = TestApp::start().await;
    let b = app.browser();
    let r = b.get("/nope").await;
    assert_eq!(r.status, 404);
    let id = r.header("x-request-id").unwrap().to_string();
    assert!(r.body.contains(&id) && r.body.contains("This page does not exist"));
    let r = b
        .client
        .get(format!("{}/nope", app.base))
        .header("accept-language", "id-ID,id;q=0.9")
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains("Halaman ini tidak ada"));
    // Oversized and malformed forms get a clear 4xx, not a crash.
    let page = b.get("/login").await;
    let token = crate::common::csrf_in(&page.body).unwrap();
    let big = "x".repeat(200 * 1024);
    let r = b
        .post_raw(
            "/login",
            &[("csrf", token.as_str()), ("email", big.as_str()), ("password", "x")],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("too large"), "{}", r.body);
    let r = b.post_raw("/login", &[("csrf", token.as_str())]).await;
    assert_eq!(r.status, 400, "missing fields");
    let r = b
        .client
        .get(format!("{}/admin/users/notanumber", app.base))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection() || r.status() == 404);
}

#[tokio::test]
async fn static_files_have_etags_and_cache_busting() {
    let app = TestApp::start().await;
    let b = app.browser();
    let page = b.get("/login").await;
    assert!(page.body.contains("/static/css/app.css?v="));
    let r = b.get("/static/css/app.css").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/css"));
    let etag = r.header("etag").unwrap().to_string();
    let r = b
        .client
        .get(format!("{}/static/css/app.css", app.base))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(b.get("/static/../Cargo.toml").await.status, 404);
    assert_eq!(b.get("/static/nothing.js").await.status, 404);
}

fn catalogue_keys(src: &str) -> BTreeSet<String> {
    fn walk(prefix: &str, t: &toml::Table, out: &mut BTreeSet<String>) {
        for (k, v) in t {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(t) => walk(&key, t, out),
                toml::Value::String(s) => {
                    assert!(!s.trim().is_empty(), "{key} is empty");
                    out.insert(key);
                }
                other => panic!("{key} is not text: {other:?}"),
            }
        }
    }
    let mut out = BTreeSet::new();
    walk("", &toml::from_str(src).expect("catalogue parses"), &mut out);
    out
}

fn files_under(dir: &str, ext: &str, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files_under(p.to_str().unwrap(), ext, out);
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
}

#[test]
fn both_languages_are_complete() {
    let en = catalogue_keys(include_str!("../../src/i18n/en.toml"));
    let id = catalogue_keys(include_str!("../../src/i18n/id.toml"));
    let only_en: Vec<_> = en.difference(&id).collect();
    let only_id: Vec<_> = id.difference(&en).collect();
    assert!(only_en.is_empty(), "missing in Bahasa Indonesia: {only_en:?}");
    assert!(only_id.is_empty(), "missing in English: {only_id:?}");
    // Every key the code and templates ask for exists.
    let mut files = Vec::new();
    files_under("templates", "html", &mut files);
    files_under("src", "rs", &mut files);
    let re_call = [".t(\"", ".tf(\"", "BadRequest(\"", "errors.add(\""];
    let mut used = BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for pat in re_call {
            for part in text.split(pat).skip(1) {
                let mut s = part.split('"');
                let first = s.next().unwrap_or("");
                // errors.add("field", "key"): the key is the second string.
                let key = if pat == "errors.add(\"" {
                    // Only a literal key right after the field name counts.
                    if s.next() == Some(", ") {
                        s.next().unwrap_or("")
                    } else {
                        ""
                    }
                } else {
                    first
                };
                if key.contains('.') && !key.contains(' ') && !key.ends_with('.') {
                    used.insert(key.to_string());
                }
            }
        }
    }
    for k in whacaster::web::middleware::FLASH_KEYS {
        used.insert(k.to_string());
    }
    let missing: Vec<_> = used.iter().filter(|k| !en.contains(*k)).collect();
    assert!(missing.is_empty(), "keys used but not in the catalogue: {missing:?}");
    assert!(used.len() > 100, "the scan found the keys ({})", used.len());
}

#[tokio::test]
async fn language_follows_user_then_browser_then_business() {
    let app = TestApp::start().await;
    let b = app.browser();
    let r = b
        .client
        .get(format!("{}/login", app.base))
        .header("accept-language", "id,en;q=0.5")
        .send()
        .await
        .unwrap();
    let body = r.text().await.unwrap();
    assert!(body.contains("lang=\"id\"") && body.contains("Masuk"));
    let r = b.get("/login?lang=id").await;
    assert!(r.body.contains("Kata sandi"));
    let (admin, _) = app.admin("owner@toko.id").await;
    let r = admin
        .submit("/account", "/account", &[("name", "Budi"), ("locale", "id")])
        .await;
    assert_eq!(r.status, 303);
    let page = admin.get("/account").await;
    assert!(page.body.contains("Akun saya"), "user preference wins");
    assert!(page.body.contains("Tersimpan") || admin.get("/account?m=flash.saved").await.body.contains("Tersimpan"));
}

#[tokio::test]
async fn health_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = crate::common::test_config(dir.path());
    // As behind a reverse proxy: loopback is the proxy, so it is not trusted for /metrics.
    cfg.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    let app = TestApp::start_with(dir, cfg).await;
    let b = app.browser();
    let h: serde_json::Value = serde_json::from_str(&b.get("/healthz").await.body).unwrap();
    assert_eq!(h["status"], "ok");
    assert_eq!(h["db"], "ok");
    assert_eq!(h["version"], whacaster::VERSION);
    assert_eq!(b.get("/metrics").await.status, 401, "anonymous scrapers are refused");
    let (admin, _) = app.admin("owner@toko.id").await;
    app.create_user(&admin, "agen@toko.id", "agent").await;
    let agent = app.browser();
    agent.login("agen@toko.id", PASSWORD).await;
    assert_eq!(agent.get("/metrics").await.status, 403);
    app.browser().login("agen@toko.id", "wrong password").await;
    let m = admin.get("/metrics").await;
    assert_eq!(m.status, 200);
    for needle in [
        "whacaster_http_requests_total",
        "route=\"/login\"",
        "whacaster_http_request_duration_seconds_bucket",
        "whacaster_login_failures_total",
        "whacaster_db_pool_connections",
    ] {
        assert!(m.body.contains(needle), "{needle} in metrics");
    }
    // Client IP from X-Forwarded-For, only because the proxy is trusted.
    let r = b
        .client
        .get(format!("{}/healthz", app.base))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let fresh = app.browser();
    let login = fresh.get("/login").await;
    let token = crate::common::csrf_in(&login.body).unwrap();
    fresh
        .client
        .post(format!("{}/login", app.base))
        .header("x-forwarded-for", "203.0.113.9")
        .form(&[("csrf", token.as_str()), ("email", "z@z.id"), ("password", "x")])
        .send()
        .await
        .unwrap();
    let ip: String = app
        .state
        .db
        .read(|c| Ok(c.query_row("SELECT ip FROM login_events WHERE email = 'z@z.id'", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(ip, "203.0.113.9");
}

#[tokio::test]
async fn audit_log_filters_and_exports_csv() {
    let app = TestApp::start().await;
    let (admin, _) = app.admin("owner@toko.id").await;
    app.create_user(&admin, "=cmd@toko.id", "agent").await;
    app.create_user(&admin, "agen2@toko.id", "supervisor").await;
    let page = admin.get("/admin/audit?action=user.create").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("agen2@toko.id") && !page.body.contains("mfa.enable</code>"));
    let csv = admin.get("/admin/audit.csv?action=user.create").await;
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    assert!(csv.header("content-disposition").unwrap().contains("attachment"));
    assert!(csv.body.starts_with("id,time_utc,actor,action,target,details,ip"));
    assert_eq!(csv.body.lines().count(), 3, "{}", csv.body);
    assert!(csv.body.contains("agen2@toko.id"));
    let all = admin.get("/admin/audit.csv").await;
    assert!(all.body.contains("setup.complete") && all.body.contains("127.0.0.1"));
    let after = admin.get("/admin/audit?action=audit.export").await;
    assert!(after.body.contains("audit.export"), "exports are audited");
    let logins = admin.get("/admin/logins?outcome=success").await;
    assert!(logins.body.contains("owner@toko.id"));
}

#[tokio::test]
async fn jobs_are_listed_and_run_on_demand() {
    let app = TestApp::start().await;
    let (admin, _) = app.admin("owner@toko.id").await;
    let page = admin.get("/admin/jobs").await;
    for name in [
        "purge_expired_sessions",
        "renew_self_signed_certificate",
        "apply_retention",
    ] {
        assert!(page.body.contains(name), "{name} listed");
    }
    // An old login event and an expired session exist; running the jobs removes them.
    let old = app.clock.unix() - 91 * 86_400;
    app.state
        .db
        .write(move |c| {
            c.execute("INSERT INTO login_events (at, email, outcome, ip, user_agent) VALUES (?1, 'old@x.id', 'failure', '1.1.1.1', '')", [old])?;
            c.execute("INSERT INTO sessions (token_hash, user_id, stage, ip, user_agent, created_at, last_seen_at, expires_at) VALUES ('dead', 1, 'full', '', '', ?1, ?1, ?1)", [old])?;
            Ok(())
        })
        .await
        .unwrap();
    for job in ["apply_retention", "purge_expired_sessions"] {
        let r = admin.post(&format!("/admin/jobs/{job}/run"), &[]).await;
        assert_eq!(r.status, 303, "{job}");
        admin.get("/admin/jobs").await;
    }
    let mut done = false;
    for _ in 0..50 {
        let (events, sessions, runs): (i64, i64, i64) = app
            .state
            .db
            .read(|c| {
                Ok(c.query_row(
                    "SELECT (SELECT count(*) FROM login_events WHERE email = 'old@x.id'),
                            (SELECT count(*) FROM sessions WHERE token_hash = 'dead'),
                            (SELECT count(*) FROM job_runs WHERE name IN ('apply_retention', 'purge_expired_sessions') AND last_error IS NULL)",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?)
            })
            .await
            .unwrap();
        if events == 0 && sessions == 0 && runs == 2 {
            done = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(done, "the jobs ran and recorded their runs");
    let page = admin.get("/admin/jobs").await;
    assert!(page.body.contains("older than 90 days") && page.body.contains("removed"));
    assert_eq!(admin.post("/admin/jobs/nope/run", &[]).await.status, 404);
}

#[tokio::test]
async fn output_is_escaped() {
    let app = TestApp::start().await;
    let (admin, _) = app.admin("owner@toko.id").await;
    let evil = "\"><img src=x onerror=alert(1)><script>alert(2)</script>";
    let r = admin
        .submit(
            "/admin/users",
            "/admin/users",
            &[
                ("name", evil),
                ("email", "evil@toko.id"),
                ("role", "agent"),
                ("method", "password"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    for page in ["/admin/users", "/admin/users/2", "/admin/audit"] {
        let body = admin.get(page).await.body;
        assert!(
            !body.contains("<script>alert(2)") && !body.contains("<img src=x"),
            "{page} escapes"
        );
    }
}

#[tokio::test]
async fn metrics_are_open_to_a_scraper_on_loopback_when_no_proxy_is_configured() {
    let app = TestApp::start().await;
    app.browser().get("/healthz").await;
    let r = app.browser().get("/metrics").await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("whacaster_http_requests_total"));
}

/// Issue 14.2: an Indonesian owner's first click is the language link on the setup
/// page; it must keep the setup token, and so must a failed submit.
#[tokio::test]
async fn the_setup_pages_language_link_and_a_failed_submit_keep_the_token() {
    let app = TestApp::start().await;
    let url = app.setup_url.clone().unwrap();
    let token = url.split("token=").nth(1).unwrap().to_string();
    let b = app.browser();
    let path = format!("/setup?token={token}");
    let page = b.get(&path).await;
    assert_eq!(page.status, 200);
    let link = format!("href=\"?token={token}&#38;lang=id\"");
    assert!(page.body.contains(&link), "the language link keeps the token: {link}");
    let id = b.get(&format!("/setup?token={token}&lang=id")).await;
    assert_eq!(
        id.status, 200,
        "the Indonesian page is the setup form, not 'link not valid'"
    );
    assert!(id.body.contains("name=\"business_name\"") && id.body.contains("lang=\"id\""));
    // A submit that fails validation: the form's address still carries the token.
    let failed = b
        .submit(
            &format!("/setup?token={token}&lang=id"),
            &format!("/setup?token={token}&lang=id"),
            &[("token", &token)],
        )
        .await;
    assert_eq!(failed.status, 422);
    assert!(
        failed
            .body
            .contains(&format!("action=\"/setup?token={token}&amp;lang=id\"")),
        "the failed form posts back to an address with the token"
    );
}

/// Issue 14.14: words that fit who reads them.
#[tokio::test]
async fn pages_speak_to_the_person_reading_them() {
    let app = TestApp::start().await;
    let (admin, _) = app.admin("owner@toko.id").await;
    app.create_user(&admin, "agen@toko.id", "agent").await;
    let dash = admin.get("/").await.body;
    assert!(!dash.contains("your active sessions"), "no '1 your active sessions'");
    assert!(dash.contains("Active sessions (yours)"));
    let other = admin.get("/admin/users/2").await.body;
    assert!(
        other.contains("Where they are signed in") && !other.contains("Where you are signed in"),
        "another user's sessions are theirs"
    );
    let none = admin.get("/contacts?q=zzzzzz").await.body;
    assert!(none.contains("No contact matches this search.") && !none.contains("No contacts yet"));
    // A second admin, not enrolled yet: the policy is named, not "your administrator".
    app.create_user(&admin, "admin2@toko.id", "admin").await;
    let second = app.browser();
    second.login("admin2@toko.id", PASSWORD).await;
    let page = second.get("/account/mfa").await.body;
    assert!(
        page.contains("required for your role") && !page.contains("Your administrator requires"),
        "not said to an administrator"
    );
}
