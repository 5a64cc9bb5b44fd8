//! Setup, sign-in, TOTP MFA (enrolment, replay, recovery codes, policy), throttling,
//! sessions (rotation, timeouts, revocation, deactivation), invitations.

use crate::common::{Browser, PASSWORD, TestApp};

fn cookie_value(r: &crate::common::Resp, name: &str) -> Option<String> {
    r.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim_start_matches(&format!("{name}="))
                .to_string()
        })
}

async fn login_events(app: &TestApp, outcome: &str) -> Vec<(String, String, String)> {
    let o = outcome.to_string();
    app.state
        .db
        .read(move |c| {
            let mut st = c.prepare("SELECT email, ip, user_agent FROM login_events WHERE outcome = ?1 ORDER BY id")?;
            let rows = st.query_map([o], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
        .unwrap()
}

async fn audit_actions(app: &TestApp) -> Vec<String> {
    app.state
        .db
        .read(|c| {
            let mut st = c.prepare("SELECT action FROM audit_log ORDER BY id")?;
            let rows = st.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn setup_link_needs_its_token_and_closes_for_good() {
    let app = TestApp::start().await;
    let b = app.browser();
    assert_eq!(b.get("/setup").await.status, 403);
    assert_eq!(b.get("/setup?token=not-the-token").await.status, 403);
    let url = app.setup_url.clone().unwrap();
    let path = url.trim_start_matches(&app.base).to_string();
    let page = b.get(&path).await;
    assert_eq!(page.status, 200);
    // Bad input re-renders the form with field messages, keeps what was typed.
    let token = path.split("token=").nth(1).unwrap();
    let r = b
        .submit(
            &path,
            "/setup",
            &[
                ("token", token),
                ("business_name", "Toko <b>Baru</b>"),
                ("email", "not-an-email"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("Please enter an e-mail address"), "{}", r.body);
    assert!(r.body.contains("at least 12 characters"));
    assert!(
        r.body.contains("Toko &#60;b&#62;Baru&#60;/b&#62;") || r.body.contains("Toko &lt;b&gt;Baru"),
        "escaped echo"
    );
    app.setup_admin("owner@toko.id").await;
    assert_eq!(b.get(&path).await.status, 410, "setup is closed once an admin exists");
    let (db, now) = (app.state.db.clone(), app.clock.unix());
    let token = tokio::task::spawn_blocking(move || whacaster::setup::issue_setup_token(&db, now))
        .await
        .unwrap()
        .unwrap();
    assert!(token.is_none(), "no new setup link once set up");
    assert!(audit_actions(&app).await.contains(&"setup.complete".to_string()));
}

#[tokio::test]
async fn setup_login_enrol_totp_sign_out_sign_in_with_totp() {
    let app = TestApp::start().await;
    let b = app.setup_admin("owner@toko.id").await;
    let r = b.login("owner@toko.id", PASSWORD).await;
    assert_eq!(r.location(), Some("/"));
    let first = cookie_value(&r, "__Host-wsid").expect("session cookie set at login");
    let set_cookie = r.header("set-cookie").unwrap().to_string();
    for attr in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(
            r.headers
                .get_all("set-cookie")
                .iter()
                .any(|v| v.to_str().unwrap().contains(attr)),
            "{attr} in {set_cookie}"
        );
    }
    // Admins must enrol first (default policy): every page sends them to the MFA page.
    let home = b.get("/").await;
    assert_eq!(home.location(), Some("/account/mfa"));
    assert_eq!(b.get("/admin/users").await.location(), Some("/account/mfa"));
    let (secret, _codes) = b.enrol_totp(&app).await;
    assert_eq!(b.get("/account").await.status, 200, "full access after enrolment");
    assert!(audit_actions(&app).await.contains(&"mfa.enable".to_string()));
    b.logout().await;
    assert_eq!(b.get("/").await.location(), Some("/login"));

    // Password alone is not enough now.
    let r = b.login("owner@toko.id", PASSWORD).await;
    assert!(r.location().unwrap().starts_with("/login/mfa"));
    let pending = cookie_value(&r, "__Host-wsid").unwrap();
    assert_ne!(pending, first);
    assert_eq!(
        b.get("/").await.location(),
        Some("/login/mfa"),
        "pending MFA is not signed in"
    );
    let r = b
        .submit("/login/mfa", "/login/mfa", &[("code", &app.code(&secret))])
        .await;
    assert_eq!(r.location(), Some("/"));
    let full = cookie_value(&r, "__Host-wsid").unwrap();
    assert_ne!(full, pending, "a new session id after the MFA step");
    let home = b.get("/").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("Budi Santoso"));
    assert_eq!(login_events(&app, "mfa_success").await.len(), 1);

    // The pre-MFA token is dead.
    let stale = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = stale
        .get(format!("{}/", app.base))
        .header("cookie", format!("__Host-wsid={pending}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
}

#[tokio::test]
async fn totp_code_is_refused_the_second_time() {
    let app = TestApp::start().await;
    let (b, secret) = app.admin("owner@toko.id").await;
    b.logout().await;
    let code = app.code(&secret);
    b.login_totp(&app, "owner@toko.id", &secret).await;
    b.logout().await;
    // Same step, same code: a replay.
    let r = b.login("owner@toko.id", PASSWORD).await;
    assert!(r.location().unwrap().starts_with("/login/mfa"));
    let r = b.submit("/login/mfa", "/login/mfa", &[("code", &code)]).await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("already used"));
    assert_eq!(login_events(&app, "mfa_replay").await.len(), 1, "replay is recorded");
    // A code from two steps back is outside the window.
    app.next_step();
    app.next_step();
    let r = b.post("/login/mfa", &[("code", &code)]).await;
    assert_eq!(r.status, 422);
    // The current code works.
    let r = b.post("/login/mfa", &[("code", &app.code(&secret))]).await;
    assert_eq!(r.location(), Some("/"));
}

#[tokio::test]
async fn recovery_code_works_once() {
    let app = TestApp::start().await;
    let b = app.setup_admin("owner@toko.id").await;
    b.login("owner@toko.id", PASSWORD).await;
    let (_secret, codes) = b.enrol_totp(&app).await;
    b.logout().await;
    b.login("owner@toko.id", PASSWORD).await;
    let r = b
        .submit("/login/mfa", "/login/mfa", &[("code", &codes[3].to_lowercase())])
        .await;
    assert_eq!(r.location(), Some("/"), "recovery code accepted (any case)");
    let mfa = b.get("/account/mfa").await;
    assert!(mfa.body.contains("9 recovery codes left"), "{}", mfa.body);
    b.logout().await;
    b.login("owner@toko.id", PASSWORD).await;
    let r = b.submit("/login/mfa", "/login/mfa", &[("code", &codes[3])]).await;
    assert_eq!(r.status, 422, "a used recovery code is refused");
    let stored: Vec<String> = app
        .state
        .db
        .read(|c| {
            let mut st = c.prepare("SELECT code_hash FROM recovery_codes")?;
            let rows = st.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
        .unwrap();
    assert_eq!(stored.len(), 9);
    assert!(
        stored
            .iter()
            .all(|h| !codes.iter().any(|c| h.contains(c.as_str())) && h.len() == 64),
        "stored hashed"
    );
}

#[tokio::test]
async fn too_many_wrong_codes_restart_the_sign_in() {
    let app = TestApp::start().await;
    let (b, _secret) = app.admin("owner@toko.id").await;
    b.logout().await;
    b.login("owner@toko.id", PASSWORD).await;
    b.get("/login/mfa").await;
    let mut last = None;
    for _ in 0..5 {
        last = Some(b.post("/login/mfa", &[("code", "000000")]).await);
    }
    let last = last.unwrap();
    assert_eq!(last.status, 303, "after 5 wrong codes the pending sign-in ends");
    assert!(last.location().unwrap().starts_with("/login"));
    assert_eq!(login_events(&app, "mfa_failure").await.len(), 5);
}

#[tokio::test]
async fn mfa_policy_forces_enrolment_for_agents() {
    let app = TestApp::start().await;
    let (admin, _) = app.admin("owner@toko.id").await;
    app.create_user(&admin, "agen@toko.id", "agent").await;
    let agent = app.browser();
    assert_eq!(agent.login("agen@toko.id", PASSWORD).await.location(), Some("/"));
    assert_eq!(
        agent.get("/account").await.status,
        200,
        "agents are not forced by default"
    );
    agent.logout().await;
    let r = admin
        .submit(
            "/admin/security",
            "/admin/security",
            &[("mfa_admin", "1"), ("mfa_agent", "1")],
        )
        .await;
    assert_eq!(r.status, 303);
    agent.login("agen@toko.id", PASSWORD).await;
    assert_eq!(
        agent.get("/").await.location(),
        Some("/account/mfa"),
        "forced to enrol at next sign-in"
    );
    let page = agent.get("/account/mfa").await;
    assert!(page.body.contains("required for your role"));
    agent.enrol_totp(&app).await;
    assert_eq!(agent.get("/account").await.status, 200);
    assert!(audit_actions(&app).await.contains(&"settings.mfa_policy".to_string()));
}

#[tokio::test]
async fn throttling_locks_an_address_without_telling_which_exist() {
    let app = TestApp::start().await;
    app.setup_admin("owner@toko.id").await;
    let b = app.browser();
    let wrong = b.login("owner@toko.id", "not the password").await;
    let unknown = b.login("nobody@toko.id", "not the password").await;
    assert_eq!(wrong.status, 422);
    assert_eq!(unknown.status, 422);
    let msg = "Wrong e-mail address or password.";
    assert!(
        wrong.body.contains(msg) && unknown.body.contains(msg),
        "same answer for both"
    );
    for _ in 0..3 {
        b.login("owner@toko.id", "not the password").await;
    }
    let locked = b.login("owner@toko.id", "not the password").await;
    assert_eq!(locked.status, 429, "5th failure locks");
    assert!(locked.body.contains("Too many attempts"));
    let right = b.login("owner@toko.id", PASSWORD).await;
    assert_eq!(right.status, 429, "even the right password waits out the lock");
    for _ in 0..4 {
        b.login("nobody@toko.id", "x").await;
    }
    assert_eq!(
        b.login("nobody@toko.id", "x").await.status,
        429,
        "unknown addresses lock the same way"
    );
    assert!(!login_events(&app, "lockout").await.is_empty());
    let fails = login_events(&app, "failure").await;
    assert!(
        fails
            .iter()
            .all(|(_, ip, ua)| ip == "127.0.0.1" && ua.contains("Chrome")),
        "IP and user agent recorded"
    );
    // After the lock expires the right password works.
    app.clock.advance(6 * 60);
    assert_eq!(b.login("owner@toko.id", PASSWORD).await.location(), Some("/"));
}

#[tokio::test]
async fn per_ip_limit_applies_across_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = crate::common::test_config(dir.path());
    cfg.login.per_ip_per_minute = 3;
    let app = TestApp::start_with(dir, cfg).await;
    let b = app.browser();
    for i in 0..3 {
        assert_eq!(b.login(&format!("a{i}@x.id"), "pw").await.status, 422);
    }
    let r = b.login("a9@x.id", "pw").await;
    assert_eq!(r.status, 429);
    assert_eq!(login_events(&app, "ip_throttled").await.len(), 1);
}

#[tokio::test]
async fn sessions_time_out_and_die_on_logout() {
    let app = TestApp::start().await;
    let (admin, _) = app.admin("owner@toko.id").await;
    app.create_user(&admin, "agen@toko.id", "agent").await;
    let agent = app.browser();
    let r = agent.login("agen@toko.id", PASSWORD).await;
    let token = cookie_value(&r, "__Host-wsid").unwrap();
    assert_eq!(agent.get("/account").await.status, 200);
    // Idle: 30 minutes.
    app.clock.advance(31 * 60);
    assert_eq!(agent.get("/").await.location(), Some("/login"));
    // Absolute: 12 hours even when active.
    agent.login("agen@toko.id", PASSWORD).await;
    for _ in 0..25 {
        app.clock.advance(29 * 60);
        if agent.get("/account").await.status != 200 {
            break;
        }
    }
    assert_eq!(agent.get("/").await.location(), Some("/login"), "absolute timeout");
    // Logout kills the server-side session: the old cookie value is useless.
    let r = agent.login("agen@toko.id", PASSWORD).await;
    let token2 = cookie_value(&r, "__Host-wsid").unwrap();
    assert_ne!(token, token2);
    agent.logout().await;
    let raw = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = raw
        .get(format!("{}/", app.base))
        .header("cookie", format!("__Host-wsid={token2}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let hash = whacaster::crypto::sha256_hex(token2.as_bytes());
    let n: i64 = app
        .state
        .db
        .read(move |c| {
            Ok(
                c.query_row("SELECT count(*) FROM sessions WHERE token_hash = ?1", [hash], |r| {
                    r.get(0)
                })?,
            )
        })
        .await
        .unwrap();
    assert_eq!(n, 0, "the signed-out session is gone from the database");
}

#[tokio::test]
async fn deactivating_a_user_ends_their_sessions_at_once() {
    let app = TestApp::start().await;
    let (admin, _) = app.admin("owner@toko.id").await;
    app.create_user(&admin, "agen@toko.id", "agent").await;
    let agent = app.browser();
    agent.login("agen@toko.id", PASSWORD).await;
    assert_eq!(agent.get("/account").await.status, 200);
    let r = admin
        .submit("/admin/users/2", "/admin/users/2/active", &[("active", "0")])
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(agent.get("/account").await.location(), Some("/login?next=%2Faccount"));
    let again = agent.login("agen@toko.id", PASSWORD).await;
    assert_eq!(again.status, 422, "a deactivated user cannot sign in");
    assert!(audit_actions(&app).await.contains(&"user.deactivate".to_string()));
    // The last admin cannot be deactivated or demoted.
    let r = admin
        .submit("/admin/users/1", "/admin/users/1/role", &[("role", "agent")])
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("at least one active administrator"));
}

#[tokio::test]
async fn users_see_and_revoke_their_sessions_admins_see_all() {
    let app = TestApp::start().await;
    let (admin, _) = app.admin("owner@toko.id").await;
    app.create_user(&admin, "agen@toko.id", "agent").await;
    let phone = app.browser();
    let laptop = app.browser();
    phone.login("agen@toko.id", PASSWORD).await;
    laptop.login("agen@toko.id", PASSWORD).await;
    let page = laptop.get("/account/sessions").await;
    assert_eq!(
        page.body.matches("/revoke\"").count(),
        1,
        "one other session to revoke: {}",
        page.body
    );
    assert!(page.body.contains("Chrome · Linux") && page.body.contains("127.0.0.1"));
    let all = admin.get("/admin/sessions").await;
    assert!(all.body.contains("agen@toko.id") && all.body.contains("owner@toko.id"));
    let r = laptop.post("/account/sessions/revoke-others", &[]).await;
    assert_eq!(r.status, 303);
    assert_eq!(phone.get("/").await.location(), Some("/login"));
    assert_eq!(laptop.get("/account").await.status, 200);
    // Someone else's session id is not yours to revoke.
    let r = laptop
        .submit("/account/sessions", "/account/sessions/1/revoke", &[])
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn admin_resets_mfa_and_invites() {
    let app = TestApp::start().await;
    let (admin, _) = app.admin("owner@toko.id").await;
    // Invitation: a one-time link, the admin never sees the password.
    let r = admin
        .submit(
            "/admin/users",
            "/admin/users",
            &[
                ("name", "Sari"),
                ("email", "sari@toko.id"),
                ("role", "supervisor"),
                ("method", "invite"),
            ],
        )
        .await;
    assert_eq!(r.status, 200);
    let i = r.body.find("/invite/").expect("invite link shown");
    let link: String = r.body[i..].split('<').next().unwrap().to_string();
    let list = admin.get("/admin/users").await.body;
    let row = list
        .split("sari@toko.id")
        .nth(1)
        .unwrap()
        .split("</tr>")
        .next()
        .unwrap();
    assert!(row.contains("Invited"), "invited until the link is used: {row}");
    let sari = app.browser();
    let page = sari.get(&link).await;
    assert!(
        page.body
            .contains("Budi Santoso invited you to the team of Toko Maju Jaya"),
        "the invite names who and which business"
    );
    let r = sari
        .submit(&link, &link, &[("password", PASSWORD), ("confirm", PASSWORD)])
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(sari.get(&link).await.status, 400, "the link works once");
    assert_eq!(sari.login("sari@toko.id", PASSWORD).await.location(), Some("/"));
    let list = admin.get("/admin/users").await.body;
    let row = list
        .split("sari@toko.id")
        .nth(1)
        .unwrap()
        .split("</tr>")
        .next()
        .unwrap();
    assert!(row.contains("Active") && !row.contains("Invited"), "{row}");
    sari.enrol_totp(&app).await;
    // Admin resets Sari's MFA: her sessions end, she signs in with the password alone.
    let r = admin.submit("/admin/users/2", "/admin/users/2/reset-mfa", &[]).await;
    assert_eq!(r.status, 303);
    assert_eq!(sari.get("/").await.location(), Some("/login"));
    assert_eq!(sari.login("sari@toko.id", PASSWORD).await.location(), Some("/"));
    let actions = audit_actions(&app).await;
    for a in ["user.create", "user.invite_accepted", "user.mfa_reset"] {
        assert!(actions.contains(&a.to_string()), "{a} audited: {actions:?}");
    }
}

#[tokio::test]
async fn password_change_ends_other_sessions() {
    let app = TestApp::start().await;
    let (admin, _) = app.admin("owner@toko.id").await;
    app.create_user(&admin, "agen@toko.id", "agent").await;
    let a = app.browser();
    let other = app.browser();
    a.login("agen@toko.id", PASSWORD).await;
    other.login("agen@toko.id", PASSWORD).await;
    let r = a
        .submit(
            "/account",
            "/account/password",
            &[
                ("current", "wrong"),
                ("new", "a fresh long secret"),
                ("confirm", "a fresh long secret"),
            ],
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("current password is not right"));
    let r = a
        .submit(
            "/account",
            "/account/password",
            &[
                ("current", PASSWORD),
                ("new", "a fresh long secret"),
                ("confirm", "a fresh long secret"),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(other.get("/").await.location(), Some("/login"));
    assert_eq!(a.get("/account").await.status, 200);
    let fresh = Browser::new(&app.base);
    assert_eq!(
        fresh.login("agen@toko.id", "a fresh long secret").await.location(),
        Some("/")
    );
}
