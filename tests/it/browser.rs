//! A real browser (headless Chromium over WebDriver): sign in, see the dashboard, in
//! both languages. Skips with a printed reason when Chromium is not installed; `.ci/run`
//! installs it so CI always runs this. Set SCREENSHOT_DIR=dir to keep screenshots.

use crate::common::{PASSWORD, TestApp};
use fantoccini::{ClientBuilder, Locator};
use std::process::{Child, Command, Stdio};

pub(crate) struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        // Best effort: it may have exited already.
        drop(self.0.kill());
        drop(self.0.wait());
    }
}

fn chromedriver() -> Option<String> {
    ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .iter()
        .find(|p| std::path::Path::new(p).exists())
        .map(ToString::to_string)
}

pub(crate) async fn start_browser() -> Option<(Driver, fantoccini::Client)> {
    let Some(driver) = chromedriver() else {
        eprintln!("SKIPPED browser test: chromedriver not installed (apt-get install chromium chromium-driver)");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let guard = Driver(child);
    let mut caps = serde_json::Map::new();
    caps.insert("acceptInsecureCerts".into(), serde_json::json!(true));
    let profile = tempfile::tempdir().ok()?.keep();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-quic", "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                     format!("--user-data-dir={}", profile.display()), "--lang=en-US"]
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    for _ in 0..50 {
        match ClientBuilder::new(connector.clone())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => return Some((guard, c)),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
        }
    }
    panic!("chromedriver is installed but no browser session could be started");
}

pub(crate) async fn screenshot(c: &fantoccini::Client, name: &str) {
    if let Ok(dir) = std::env::var("SCREENSHOT_DIR") {
        let png = c.screenshot().await.expect("screenshot");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(format!("{dir}/{name}.png"), png).unwrap();
    }
}

pub(crate) async fn fill(c: &fantoccini::Client, name: &str, value: &str) {
    c.find(Locator::Css(&format!("[name=\"{name}\"]")))
        .await
        .expect(name)
        .send_keys(value)
        .await
        .expect("type");
}

#[expect(clippy::too_many_lines, reason = "one scenario, told in order")]
#[tokio::test]
async fn a_person_signs_in_and_sees_the_dashboard() {
    let Some((_driver, c)) = start_browser().await else {
        return;
    };
    let app = TestApp::start().await;
    // Setup through the browser, as the owner would after opening the printed link.
    c.goto(app.setup_url.as_deref().unwrap()).await.unwrap();
    screenshot(&c, "01-setup").await;
    fill(&c, "business_name", "Toko Maju Jaya").await;
    fill(&c, "phone", "+62 812 3456 7890").await;
    fill(&c, "address", "Jl. Merdeka 1, Bandung").await;
    fill(&c, "owner_name", "Budi Santoso").await;
    fill(&c, "email", "owner@toko.id").await;
    fill(&c, "password", PASSWORD).await;
    fill(&c, "confirm", PASSWORD).await;
    c.find(Locator::Css("[name=terms]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Css("input[name=email]")).await.unwrap();
    assert!(c.current_url().await.unwrap().path().starts_with("/login"));
    screenshot(&c, "02-login").await;

    // Sign in; admins enrol MFA first.
    fill(&c, "email", "owner@toko.id").await;
    fill(&c, "password", PASSWORD).await;
    c.find(Locator::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css("form[action='/account/mfa/start'] button"))
        .await
        .unwrap();
    screenshot(&c, "03-mfa-required").await;
    c.find(Locator::Css("form[action='/account/mfa/start'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let secret = c
        .wait()
        .for_element(Locator::Id("totp-secret"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .replace(' ', "");
    screenshot(&c, "04-mfa-qr").await;
    fill(&c, "code", &app.code(&secret)).await;
    c.find(Locator::Css("form[action='/account/mfa/confirm'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Id("recovery-codes")).await.unwrap();
    screenshot(&c, "05-recovery-codes").await;
    c.goto(&format!("{}/", app.base)).await.unwrap();
    let h1 = c.find(Locator::Css("h1")).await.unwrap().text().await.unwrap();
    assert!(h1.contains("Welcome") && h1.contains("Budi Santoso"), "{h1}");
    let nav = c.find(Locator::Css("nav.sidebar")).await.unwrap().text().await.unwrap();
    assert!(
        nav.contains("Audit log") && nav.contains("Team"),
        "admins see admin navigation: {nav}"
    );
    screenshot(&c, "06-dashboard").await;
    for (path, name) in [
        ("/admin/users", "07-team"),
        ("/admin/audit", "08-audit"),
        ("/admin/logins", "09-logins"),
        ("/admin/jobs", "10-jobs"),
        ("/account/sessions", "11-sessions"),
        ("/admin/security", "12-security"),
        ("/admin/business", "13-business"),
        ("/admin/system", "13b-system"),
        ("/admin/whatsapp", "13c-whatsapp"),
        ("/contacts", "13d-contacts"),
        ("/admin/api-keys", "13e-api-keys"),
    ] {
        c.goto(&format!("{}{path}", app.base)).await.unwrap();
        assert!(c.find(Locator::Css("h1")).await.is_ok(), "{path} renders");
        screenshot(&c, name).await;
    }

    // Switch to Bahasa Indonesia: the whole interface follows.
    c.goto(&format!("{}/account", app.base)).await.unwrap();
    let stray = c.find(Locator::Css("input[name=username]")).await.unwrap();
    assert!(
        !stray.is_displayed().await.unwrap(),
        "the password manager's hidden e-mail field is not shown"
    );
    c.find(Locator::Css("select[name=locale] option[value=id]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Css("form[action='/account'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Css(".flash")).await.unwrap();
    c.goto(&format!("{}/", app.base)).await.unwrap();
    let h1 = c.find(Locator::Css("h1")).await.unwrap().text().await.unwrap();
    assert!(h1.contains("Selamat datang"), "{h1}");
    screenshot(&c, "14-dashboard-id").await;
    c.goto(&format!("{}/admin/users", app.base)).await.unwrap();
    screenshot(&c, "15-team-id").await;

    // Sign out with the menu's button, then the sign-in page in Indonesian.
    c.find(Locator::Css("details.usermenu summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Css("form[action='/logout'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Css(".flash")).await.unwrap();
    c.goto(&format!("{}/login?lang=id", app.base)).await.unwrap();
    screenshot(&c, "16-login-id").await;
    let text = c.find(Locator::Css("h1")).await.unwrap().text().await.unwrap();
    assert_eq!(text, "Masuk");
    // Phone-sized screen.
    c.set_window_size(390, 844).await.unwrap();
    screenshot(&c, "17-login-phone").await;
    c.close().await.unwrap();
}

/// Waits (up to 10 s) until the page has an element matching `css`.
pub(crate) async fn wait_css(c: &fantoccini::Client, css: &str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(std::time::Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} never appeared: {e}"))
}

#[tokio::test]
#[expect(clippy::too_many_lines, reason = "one agent's first conversation, told end to end")]
async fn an_agent_answers_a_customer_live_in_the_inbox() {
    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    const PHONE: &str = "106540352242922";
    let Some((_driver, c)) = start_browser().await else {
        return;
    };
    let graph = crate::fake_graph::FakeGraph::start();
    let (app, admin) = crate::common::app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    app.create_user(&admin, "agen@toko.id", "agent").await;
    admin
        .submit(
            "/inbox/canned",
            "/inbox/canned",
            &[("shortcut", "salam"), ("body", "Halo {{name}}, terima kasih!")],
        )
        .await;
    admin
        .submit(
            "/inbox/labels",
            "/inbox/labels",
            &[("name", "Pesanan"), ("color", "green")],
        )
        .await;
    c.goto(&format!("{}/login", app.base)).await.unwrap();
    fill(&c, "email", "agen@toko.id").await;
    fill(&c, "password", PASSWORD).await;
    c.find(Locator::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_css(&c, "nav.sidebar").await;
    c.goto(&format!("{}/inbox?tab=unassigned", app.base)).await.unwrap();
    wait_css(&c, "[data-live-list]").await;
    screenshot(&c, "20-inbox-empty").await;
    // A marker that a reload would wipe out.
    c.execute("window.__stayed = true;", vec![]).await.unwrap();
    // Give the page's event stream a moment to connect, then the customer writes.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    crate::common::inbound_text(
        &app,
        SECRET,
        PHONE,
        "wamid.b1",
        "62877",
        "Wulan",
        app.state.now(),
        "Kak, bajunya ready?",
    )
    .await;
    let row = wait_css(&c, ".conv-list .conv a").await;
    assert!(row.text().await.unwrap().contains("Wulan"));
    let stayed = c.execute("return window.__stayed === true;", vec![]).await.unwrap();
    assert_eq!(stayed, serde_json::json!(true), "appeared without a reload");
    assert_eq!(
        wait_css(&c, "[data-count=unassigned]").await.text().await.unwrap(),
        "1",
        "the unread count followed"
    );
    screenshot(&c, "21-inbox-live").await;
    row.click().await.unwrap();
    let box_ = wait_css(&c, "textarea[name=body][data-composer]").await;
    // The canned response: "/sal" suggests, a click inserts it with the name filled in.
    box_.send_keys("/sal").await.unwrap();
    wait_css(&c, "[data-canned-suggest] button")
        .await
        .click()
        .await
        .unwrap();
    let text = c
        .execute("return document.querySelector('[data-composer]').value;", vec![])
        .await
        .unwrap();
    assert_eq!(text, serde_json::json!("Halo Wulan, terima kasih!"));
    assert!(
        !c.find(Locator::Css("[data-canned-suggest]"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap(),
        "the suggestion box goes once used ([hidden] wins over the CSS)"
    );
    // From the list, a canned response goes in at the cursor and keeps the draft.
    c.execute(
        "var b = document.querySelector('[data-composer]'); b.value = 'Baik. Kak'; \
         b.selectionStart = b.selectionEnd = 5; document.querySelector('details.canned').open = true;",
        vec![],
    )
    .await
    .unwrap();
    wait_css(&c, ".canned-list button").await.click().await.unwrap();
    let text = c
        .execute("return document.querySelector('[data-composer]').value;", vec![])
        .await
        .unwrap();
    assert_eq!(
        text,
        serde_json::json!("Baik.Halo Wulan, terima kasih! Kak"),
        "inserted at the cursor"
    );
    c.execute(
        "document.querySelector('[data-composer]').value = 'Halo Wulan, terima kasih!';",
        vec![],
    )
    .await
    .unwrap();
    screenshot(&c, "22-conversation").await;
    c.find(Locator::Css(".compose-form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_css(&c, ".bubble.out").await;
    graph
        .wait_for("the reply", |s| {
            s.iter().any(|x| x.body["text"]["body"] == "Halo Wulan, terima kasih!")
        })
        .await;
    let wamid = crate::common::wamid_of(&app, "Halo Wulan, terima kasih!").await;
    c.execute("window.__stayed = true;", vec![]).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    crate::common::status_update(&app, SECRET, PHONE, &wamid, "62877", "delivered", app.state.now()).await;
    wait_css(&c, ".bubble.out .tick-delivered").await;
    let stayed = c.execute("return window.__stayed === true;", vec![]).await.unwrap();
    assert_eq!(stayed, serde_json::json!(true), "the tick turned without a reload");
    screenshot(&c, "23-delivered").await;
    c.set_window_size(390, 844).await.unwrap();
    screenshot(&c, "24-conversation-phone").await;
    c.goto(&format!("{}/inbox?tab=unassigned&lang=id", app.base))
        .await
        .unwrap();
    screenshot(&c, "25-inbox-phone").await;
    c.set_window_size(1280, 900).await.unwrap();
    c.close().await.unwrap();
}

/// The audience pages (issue 10) as an owner sees them, at laptop and phone size, in
/// both languages: each renders its heading, and nothing scrolls sideways on a phone.
#[tokio::test]
async fn the_audience_pages_render_in_both_languages_and_on_a_phone() {
    let Some((_driver, c)) = start_browser().await else {
        return;
    };
    let graph = crate::fake_graph::FakeGraph::start();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = crate::common::test_config(dir.path());
    cfg.graph.base_url = graph.base.clone();
    let app = TestApp::start_with(dir, cfg).await;
    let (admin, secret) = app.admin("owner@toko.id").await;
    let r = crate::common::connect_number(
        &admin,
        "106540352242922",
        "0123456789abcdef0123456789abcdef",
        "tok",
        "80",
    )
    .await;
    assert_eq!(r.status, 303);
    // The enrolment used this step's code; the browser signs in with the next one.
    app.next_step();
    c.goto(&format!("{}/login", app.base)).await.unwrap();
    fill(&c, "email", "owner@toko.id").await;
    fill(&c, "password", PASSWORD).await;
    c.find(Locator::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_css(&c, "input[name=code]").await;
    fill(&c, "code", &app.code(&secret)).await;
    c.find(Locator::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_css(&c, "nav.sidebar").await;
    let pages = [
        ("/contacts", "40-contacts"),
        ("/contacts/import", "41-import"),
        ("/templates", "42-templates"),
        ("/templates/new", "43-template-new"),
        ("/segments", "44-segments"),
        ("/segments/new", "45-segment-new"),
        ("/admin/consent", "46-optout-keywords"),
    ];
    for (lang, width, height) in [("en", 1280, 900), ("id", 390, 844)] {
        if lang == "id" {
            // A signed-in person's language is their account's.
            c.goto(&format!("{}/account", app.base)).await.unwrap();
            c.find(Locator::Css("select[name=locale] option[value=id]"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
            c.find(Locator::Css("form[action='/account'] button"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
            wait_css(&c, ".flash").await;
        }
        c.set_window_size(width, height).await.unwrap();
        for (path, name) in pages {
            c.goto(&format!("{}{path}", app.base)).await.unwrap();
            let h1 = wait_css(&c, "h1").await.text().await.unwrap();
            assert!(!h1.is_empty(), "{path} has a heading");
            let html = c.source().await.unwrap();
            assert!(html.contains(&format!("lang=\"{lang}\"")), "{path} in {lang}");
            let sideways = c
                .execute(
                    "return document.documentElement.scrollWidth > document.documentElement.clientWidth + 1;",
                    vec![],
                )
                .await
                .unwrap();
            assert_eq!(
                sideways,
                serde_json::json!(false),
                "{path} at {width} px does not scroll sideways"
            );
            screenshot(&c, &format!("{name}-{lang}")).await;
        }
    }
    c.set_window_size(1280, 900).await.unwrap();
    c.close().await.unwrap();
}
