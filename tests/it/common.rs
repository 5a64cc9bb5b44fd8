//! The test harness: `TestApp` starts the real server (same `server::start` as
//! production) over HTTPS on a random loopback port with a fresh encrypted data dir;
//! `Browser` is a cookie-keeping HTTP client that fills in CSRF tokens like a browser.

use std::sync::{Arc, Mutex};
use whacaster::clock::Clock;
use whacaster::config::{Config, TlsMode};

pub const PASSWORD: &str = "kopi susu gula aren 42";

pub struct TestApp {
    pub base: String,
    pub setup_url: Option<String>,
    pub clock: Clock,
    pub config: Config,
    pub state: actix_web::web::Data<whacaster::app::AppState>,
    handle: actix_web::dev::ServerHandle,
    /// Keeps the data dir alive as long as the app.
    dir: tempfile::TempDir,
}

pub fn test_config(dir: &std::path::Path) -> Config {
    let mut cfg = Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.join("data"),
        log_level: "warn".into(),
        ..Default::default()
    };
    cfg.tls.mode = TlsMode::SelfSigned;
    // Cheap hashing in tests; production uses the OWASP parameters.
    cfg.argon2.memory_kib = 64;
    cfg.argon2.iterations = 1;
    cfg.login.per_ip_per_minute = 1000;
    cfg
}

impl TestApp {
    pub async fn start() -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = test_config(dir.path());
        Self::start_with(dir, cfg).await
    }

    pub async fn start_with(dir: tempfile::TempDir, cfg: Config) -> TestApp {
        Self::try_start(dir, cfg).await.expect("server starts")
    }

    pub async fn try_start(dir: tempfile::TempDir, cfg: Config) -> Result<TestApp, String> {
        let clock = Clock::default();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (c2, clock2) = (cfg.clone(), clock.clone());
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                match whacaster::server::start(c2, clock2).await {
                    Ok(r) => {
                        // Refused only when the test gave up waiting; the server's own
                        // errors are in its log.
                        drop(tx.send(Ok((r.addr, r.setup_url.clone(), r.handle.clone(), r.state.clone()))));
                        drop(r.server.await);
                    }
                    Err(e) => drop(tx.send(Err(e))),
                }
            });
        });
        let (addr, setup_url, handle, state) = rx.await.map_err(|e| e.to_string())??;
        let scheme = if cfg.tls_enabled() { "https" } else { "http" };
        Ok(TestApp {
            base: format!("{scheme}://{addr}"),
            setup_url,
            clock,
            config: cfg,
            state,
            handle,
            dir,
        })
    }

    pub fn browser(&self) -> Browser {
        Browser::new(&self.base)
    }

    pub fn data_dir(&self) -> std::path::PathBuf {
        self.config.data_dir.clone()
    }

    /// Stops the server; the data dir lives on in the returned guard.
    pub async fn stop(self) -> tempfile::TempDir {
        self.handle.stop(false).await;
        // Let the server's thread drop its state (and database handles).
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        self.dir
    }

    /// Runs setup through the page and returns a browser that is not signed in.
    pub async fn setup_admin(&self, email: &str) -> Browser {
        let b = self.browser();
        let url = self.setup_url.clone().expect("setup url");
        let path = url.trim_start_matches(&self.base).to_string();
        let token = path.split("token=").nth(1).expect("token").to_string();
        let resp = b
            .submit(
                &path,
                "/setup",
                &[
                    ("token", token.as_str()),
                    ("business_name", "Toko Maju Jaya"),
                    ("owner_name", "Budi Santoso"),
                    ("email", email),
                    ("password", PASSWORD),
                    ("confirm", PASSWORD),
                    ("phone", "+62 812 3456 7890"),
                    ("address", "Jl. Merdeka 1, Bandung"),
                    ("industry", "retail"),
                    ("timezone", "Asia/Jakarta"),
                    ("locale", "en"),
                    ("terms", "1"),
                ],
            )
            .await;
        assert_eq!(resp.status, 303, "setup should redirect: {}", resp.body);
        b
    }

    /// The current TOTP code for a secret, by the app's clock.
    pub fn code(&self, secret: &str) -> String {
        whacaster::auth::totp::code_at(secret, self.clock.unix()).expect("code")
    }

    /// Moves to the next 30-second TOTP step (a new code).
    pub fn next_step(&self) {
        self.clock.advance(30);
    }

    /// Signs in an admin made by `setup_admin`, enrolling MFA (required for admins by
    /// default). Returns the browser and the TOTP secret.
    pub async fn admin(&self, email: &str) -> (Browser, String) {
        let b = self.setup_admin(email).await;
        let r = b.login(email, PASSWORD).await;
        assert_eq!(r.location(), Some("/"), "admin login: {}", r.body);
        let secret = b.enrol_totp(self).await.0;
        (b, secret)
    }

    /// Creates a user with an initial password through the admin page.
    pub async fn create_user(&self, admin: &Browser, email: &str, role: &str) {
        let r = admin
            .submit(
                "/admin/users",
                "/admin/users",
                &[
                    ("name", email),
                    ("email", email),
                    ("role", role),
                    ("method", "password"),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(r.status, 303, "create user {email}: {}", r.body);
    }
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn location(&self) -> Option<&str> {
        self.headers.get("location").and_then(|v| v.to_str().ok())
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Clone)]
pub struct Browser {
    pub base: String,
    pub client: reqwest::Client,
    last_csrf: Arc<Mutex<Option<String>>>,
}

/// The value of `<input type="hidden" name="csrf" value="…">` in a page.
pub fn csrf_in(html: &str) -> Option<String> {
    let i = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    let rest = &html[i..];
    Some(rest[..rest.find('"')?].to_string())
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        let client = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0 Safari/537.36")
            .build()
            .expect("client");
        Browser {
            base: base.to_string(),
            client,
            last_csrf: Arc::new(Mutex::new(None)),
        }
    }

    async fn finish(&self, r: reqwest::Response) -> Resp {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.text().await.unwrap_or_default();
        if let Some(t) = csrf_in(&body) {
            *self.last_csrf.lock().expect("lock") = Some(t);
        }
        Resp { status, headers, body }
    }

    pub async fn get(&self, path: &str) -> Resp {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET");
        self.finish(r).await
    }

    /// GET, keeping only the status and headers (for streams that never end).
    pub async fn get_headers(&self, path: &str) -> Resp {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET");
        Resp {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: String::new(),
        }
    }

    /// POST a form with whatever fields are given (no CSRF token added).
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Resp {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .form(fields)
            .send()
            .await
            .expect("POST");
        self.finish(r).await
    }

    /// Loads `page` (as a person would), then posts the form to `action` with its CSRF token.
    pub async fn submit(&self, page: &str, action: &str, fields: &[(&str, &str)]) -> Resp {
        let p = self.get(page).await;
        let token = csrf_in(&p.body).unwrap_or_else(|| panic!("no CSRF token on {page} ({}): {}", p.status, p.body));
        let mut all: Vec<(&str, &str)> = vec![("csrf", token.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(action, &all).await
    }

    /// Posts with the token of the last page seen.
    pub async fn post(&self, action: &str, fields: &[(&str, &str)]) -> Resp {
        let token = self
            .last_csrf
            .lock()
            .expect("lock")
            .clone()
            .expect("a page with a CSRF token was loaded");
        let mut all: Vec<(&str, &str)> = vec![("csrf", token.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(action, &all).await
    }

    pub async fn login(&self, email: &str, password: &str) -> Resp {
        self.submit("/login", "/login", &[("email", email), ("password", password)])
            .await
    }

    /// Full sign-in with a TOTP code; asserts it lands signed in.
    pub async fn login_totp(&self, app: &TestApp, email: &str, secret: &str) {
        let r = self.login(email, PASSWORD).await;
        assert!(
            r.location().unwrap_or("").starts_with("/login/mfa"),
            "expected MFA step: {:?}",
            r.location()
        );
        let r = self
            .submit("/login/mfa", "/login/mfa", &[("code", &app.code(secret))])
            .await;
        assert_eq!(r.location(), Some("/"), "TOTP step: {}", r.body);
    }

    pub async fn logout(&self) {
        let page = self.get("/account").await;
        let r = if page.status == 200 {
            self.post("/logout", &[]).await
        } else {
            self.submit("/account/mfa", "/logout", &[]).await
        };
        assert_eq!(r.status, 303);
    }

    /// Enrols TOTP from the MFA page; returns the secret and the recovery codes.
    pub async fn enrol_totp(&self, app: &TestApp) -> (String, Vec<String>) {
        let r = self.submit("/account/mfa", "/account/mfa/start", &[]).await;
        assert_eq!(r.status, 200, "enrolment page: {}", r.body);
        assert!(r.body.contains("data:image/svg+xml;base64,"), "QR code shown inline");
        let i = r.body.find("id=\"totp-secret\">").expect("secret shown") + "id=\"totp-secret\">".len();
        let secret: String = r.body[i..].split('<').next().unwrap_or("").replace(' ', "");
        let r = self.post("/account/mfa/confirm", &[("code", &app.code(&secret))]).await;
        assert_eq!(r.status, 200, "confirm: {}", r.body);
        let codes: Vec<String> = r
            .body
            .split("<li><code>")
            .skip(1)
            .filter_map(|s| s.split("</code>").next())
            .map(str::to_string)
            .collect();
        assert_eq!(codes.len(), 10, "ten recovery codes shown");
        // The enrolment code's step is used up; later sign-ins need a new step.
        app.next_step();
        (secret, codes)
    }
}

/// `X-Hub-Signature-256` for a body under an app secret.
pub fn sign(secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(whacaster::crypto::hmac_sha256(secret.as_bytes(), body))
    )
}

/// Posts a webhook delivery as Meta would; returns status and body.
pub async fn post_webhook(app: &TestApp, body: &[u8], signature: Option<&str>, content_type: &str) -> (u16, String) {
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .expect("client");
    let mut req = client
        .post(format!("{}/webhooks/whatsapp", app.base))
        .header("content-type", content_type)
        .body(body.to_vec());
    if let Some(s) = signature {
        req = req.header("x-hub-signature-256", s);
    }
    let r = req.send().await.expect("POST webhook");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

/// Connects a number through the admin page (WABA 102290129340398).
pub async fn connect_number(admin: &Browser, phone_number_id: &str, secret: &str, token: &str, mps: &str) -> Resp {
    admin
        .submit(
            "/admin/whatsapp",
            "/admin/whatsapp",
            &[
                ("display_name", "Toko Maju CS"),
                ("phone_number_id", phone_number_id),
                ("waba_id", "102290129340398"),
                ("business_manager_id", "506914307656634"),
                ("access_token", token),
                ("app_secret", secret),
                ("mps", mps),
            ],
        )
        .await
}

/// An app whose Graph API is the given fake, with its first admin signed in and one
/// number connected (id 1, phone number id 106540352242922).
pub async fn app_with_number(
    graph: &crate::fake_graph::FakeGraph,
    secret: &str,
    token: &str,
    mps: &str,
    tweak: impl FnOnce(&mut Config),
) -> (TestApp, Browser) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = test_config(dir.path());
    cfg.graph.base_url = graph.base.clone();
    tweak(&mut cfg);
    let app = TestApp::start_with(dir, cfg).await;
    let (admin, _) = app.admin("owner@toko.id").await;
    let r = connect_number(&admin, "106540352242922", secret, token, mps).await;
    assert_eq!(r.status, 303, "number connected: {}", r.body);
    (app, admin)
}

/// Posts a signed delivery and waits until the processor has applied it.
pub async fn deliver(app: &TestApp, secret: &str, body: &serde_json::Value) {
    let bytes = serde_json::to_vec(body).expect("json");
    assert_eq!(
        post_webhook(app, &bytes, Some(&sign(secret, &bytes)), "application/json")
            .await
            .0,
        200
    );
    for _ in 0..200 {
        let open: i64 = app
            .state
            .db
            .read(|c| {
                Ok(
                    c.query_row("SELECT count(*) FROM webhook_inbox WHERE state <> 'done'", [], |r| {
                        r.get(0)
                    })?,
                )
            })
            .await
            .expect("read");
        if open == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("delivery not processed");
}

/// A customer's text message, delivered and processed.
#[expect(clippy::too_many_arguments, reason = "every field a test varies in the message")]
pub async fn inbound_text(
    app: &TestApp,
    secret: &str,
    phone_id: &str,
    wamid: &str,
    from: &str,
    name: &str,
    ts: i64,
    text: &str,
) {
    let body = serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "62812", "phone_number_id": phone_id},
        "contacts": [{"profile": {"name": name}, "wa_id": from}],
        "messages": [{"from": from, "id": wamid, "timestamp": ts.to_string(), "type": "text", "text": {"body": text}}]}}]}]});
    deliver(app, secret, &body).await;
}

/// A status webhook for a message this app sent.
pub async fn status_update(app: &TestApp, secret: &str, phone_id: &str, wamid: &str, to: &str, status: &str, ts: i64) {
    let body = serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "62812", "phone_number_id": phone_id},
        "statuses": [{"id": wamid, "status": status, "timestamp": ts.to_string(), "recipient_id": to}]}}]}]});
    deliver(app, secret, &body).await;
}

/// Runs one outbox round, then waits out sends still in flight: afterwards whatever the
/// app had queued has reached the fake Graph API (or failed), so a test can check that
/// something was never sent without sleeping.
pub async fn outbox_idle(app: &TestApp) {
    use whacaster::whatsapp::outbox::OutboxState;
    app.state.dispatcher().dispatch_round().await.expect("outbox round");
    let mut open = Vec::new();
    // Generous: on a loaded CI box a round of sends can take seconds.
    for _ in 0..1000 {
        open = app
            .state
            .db
            .read(|c| Ok(whacaster::whatsapp::outbox::count_all_by_state(c)?))
            .await
            .expect("read");
        if open
            .iter()
            .all(|(state, n)| *n == 0 || !matches!(state, OutboxState::Queued | OutboxState::Sending))
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the outbox did not settle: {open:?}");
}

/// The wamid Meta gave the outbound message with this text (waits until it is sent).
pub async fn wamid_of(app: &TestApp, body: &str) -> String {
    for _ in 0..200 {
        let b = body.to_string();
        let wamid = app
            .state
            .db
            .read(move |c| {
                Ok(c.query_row(
                    "SELECT max(wamid) FROM messages WHERE direction = 'out' AND body = ?1",
                    [b],
                    |r| r.get::<_, Option<String>>(0),
                )?)
            })
            .await
            .expect("read");
        if let Some(w) = wamid {
            return w;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the message {body:?} never got its wamid");
}

/// The database of a stopped app, opened as a crashed process left it.
pub fn open_stopped_db(cfg: &Config) -> rusqlite::Connection {
    let key = whacaster::crypto::DbKey::read(&cfg.data_dir.join("db.key")).expect("key");
    whacaster::store::open_connection(&cfg.db_path(), &key).expect("database")
}

/// Makes an API key of `role` through the admin's page; returns its token.
pub async fn api_key(admin: &Browser, role: &str) -> String {
    let r = admin
        .submit(
            "/admin/api-keys",
            "/admin/api-keys",
            &[("name", "shop"), ("role", role)],
        )
        .await;
    let i = r.body.find("id=\"api-token\">").expect("token shown") + "id=\"api-token\">".len();
    r.body[i..].split('<').next().expect("the token").to_string()
}

/// One API call with a bearer token: (status, JSON body or null).
pub async fn api(
    app: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .expect("client");
    let mut req = client
        .request(method.parse().expect("an HTTP method"), format!("{}{path}", app.base))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.expect("the API answers");
    (r.status().as_u16(), r.json().await.unwrap_or(serde_json::Value::Null))
}
