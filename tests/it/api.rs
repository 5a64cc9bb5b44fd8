//! The REST API: keys shown once and stored hashed (UI and CLI), revocation, the same
//! role checks as the UI, JSON errors, the per-key rate limit with Retry-After, cursor
//! pagination, and an OpenAPI document that lists every route.

use crate::common::TestApp;
use serde_json::Value;

async fn api_get(app: &TestApp, path: &str, token: Option<&str>) -> (u16, Option<String>, Value) {
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let mut req = client.get(format!("{}{path}", app.base));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, retry, r.json().await.unwrap_or(Value::Null))
}

fn token_on(page: &str) -> String {
    let i = page.find("id=\"api-token\">").expect("token shown") + "id=\"api-token\">".len();
    page[i..].split('<').next().unwrap().to_string()
}

#[tokio::test]
async fn keys_are_shown_once_hashed_revocable_and_role_checked() {
    let app = TestApp::start().await;
    let (admin, _) = app.admin("owner@toko.id").await;
    for n in ["106540352242901", "106540352242902", "106540352242903"] {
        assert_eq!(
            crate::common::connect_number(&admin, n, "s", "t", "80").await.status,
            303
        );
    }
    let r = admin
        .submit(
            "/admin/api-keys",
            "/admin/api-keys",
            &[("name", "Toko online"), ("role", "agent")],
        )
        .await;
    assert_eq!(r.status, 200);
    let token = token_on(&r.body);
    assert!(token.starts_with("wk_") && token.len() > 40);
    assert!(!admin.get("/admin/api-keys").await.body.contains(&token), "shown once");
    let stored: Vec<String> = app
        .state
        .db
        .read(|c| {
            let mut st = c.prepare("SELECT token_hash FROM api_keys")?;
            let rows = st.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
        .unwrap();
    assert_eq!(
        stored,
        vec![whacaster::crypto::sha256_hex(token.as_bytes())],
        "only the hash is stored"
    );

    // Cursor pagination over the numbers.
    let (s, _, page1) = api_get(&app, "/api/v1/numbers?limit=2", Some(&token)).await;
    assert_eq!(s, 200);
    assert_eq!(page1["data"].as_array().unwrap().len(), 2);
    assert!(page1["data"][0].get("access_token").is_none(), "no secrets in the API");
    let cursor = page1["next_cursor"].as_i64().expect("a next page");
    let (_, _, page2) = api_get(&app, &format!("/api/v1/numbers?limit=2&cursor={cursor}"), Some(&token)).await;
    assert_eq!(page2["data"].as_array().unwrap().len(), 1);
    assert!(page2["next_cursor"].is_null());
    assert!(
        admin.get("/admin/api-keys").await.body.contains("Toko online"),
        "last use shown with the key"
    );

    // Errors are JSON with a code and a message.
    let (s, _, e) = api_get(&app, "/api/v1/numbers", None).await;
    assert_eq!(s, 401);
    assert_eq!(e["error"]["code"], "unauthenticated");
    assert!(e["error"]["message"].as_str().unwrap().len() > 5);
    let (s, _, _) = api_get(&app, "/api/v1/numbers", Some("wk_not-a-real-key")).await;
    assert_eq!(s, 401);
    let (s, _, e) = api_get(&app, "/api/v1/nothing-here", Some(&token)).await;
    assert_eq!((s, e["error"]["code"].as_str()), (404, Some("not_found")));

    // Revoked: refused at once.
    let r = admin.submit("/admin/api-keys", "/admin/api-keys/1/revoke", &[]).await;
    assert_eq!(r.status, 303);
    assert_eq!(api_get(&app, "/api/v1/numbers", Some(&token)).await.0, 401);
    let audit = admin.get("/admin/audit.csv").await.body;
    assert!(audit.contains("api_key.create") && audit.contains("api_key.revoke") && !audit.contains(&token));
}

#[tokio::test]
async fn the_rate_limit_answers_429_with_retry_after() {
    let app = TestApp::start().await;
    let (admin, _) = app.admin("owner@toko.id").await;
    let r = admin
        .submit(
            "/admin/api-keys",
            "/admin/api-keys",
            &[("name", "busy script"), ("role", "agent")],
        )
        .await;
    let token = token_on(&r.body);
    let mut limited = None;
    // The bucket refills one request every half second, so a fast loop meets the limit soon after 120.
    for i in 0..(whacaster::app::API_REQUESTS_PER_MINUTE * 2) {
        let (s, retry, body) = api_get(&app, "/api/v1/numbers", Some(&token)).await;
        if s == 429 {
            limited = Some((i, retry, body));
            break;
        }
        assert_eq!(s, 200);
    }
    let (i, retry, body) = limited.expect("the limit was reached");
    assert!(
        i >= whacaster::app::API_REQUESTS_PER_MINUTE - 1,
        "not before the limit ({i})"
    );
    assert!(retry.unwrap().parse::<u64>().unwrap() > 0);
    assert_eq!(body["error"]["code"], "too_many_requests");
}

/// A change through the API from `from`, as a reverse proxy forwards it.
async fn api_post_from(app: &TestApp, path: &str, token: &str, from: &str, body: &Value) -> u16 {
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let r = client
        .post(format!("{}{path}", app.base))
        .bearer_auth(token)
        .header("x-forwarded-for", from)
        .json(body)
        .send()
        .await
        .unwrap();
    r.status().as_u16()
}

#[tokio::test]
async fn behind_a_trusted_proxy_api_audit_lines_carry_the_forwarded_address() {
    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    let graph = crate::fake_graph::FakeGraph::start();
    let (app, admin) = crate::common::app_with_number(&graph, SECRET, "tok", "80", |cfg| {
        cfg.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let from = "6281299990000";
    let now = app.state.now();
    crate::common::inbound_text(
        &app,
        SECRET,
        "106540352242922",
        "wamid.PROXY1",
        from,
        "Dewi",
        now,
        "halo",
    )
    .await;
    let conversation: i64 = app
        .state
        .db
        .read(|c| Ok(c.query_row("SELECT id FROM conversations", [], |r| r.get(0))?))
        .await
        .unwrap();
    let r = admin
        .submit(
            "/admin/api-keys",
            "/admin/api-keys",
            &[("name", "behind nginx"), ("role", "supervisor")],
        )
        .await;
    let token = token_on(&r.body);

    let contact = serde_json::json!({"name": "Pak Budi", "phone": "0813 1111 2222"});
    assert_eq!(
        api_post_from(&app, "/api/v1/contacts", &token, "203.0.113.7", &contact).await,
        201
    );
    let status = serde_json::json!({"status": "pending"});
    let path = format!("/api/v1/conversations/{conversation}/status");
    assert_eq!(api_post_from(&app, &path, &token, "203.0.113.8", &status).await, 200);

    let lines: Vec<(String, String)> = app
        .state
        .db
        .read(|c| {
            let mut st = c.prepare(
                "SELECT action, ip FROM audit_log WHERE action IN ('contact.create', 'conversation.status') ORDER BY id",
            )?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
        .unwrap();
    assert_eq!(
        lines,
        [
            ("contact.create".to_string(), "203.0.113.7".to_string()),
            ("conversation.status".to_string(), "203.0.113.8".to_string()),
        ],
        "the client, not the proxy (127.0.0.1)"
    );
}

#[tokio::test]
async fn the_cli_creates_keys() {
    let app = TestApp::start().await;
    app.setup_admin("owner@toko.id").await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_whacaster"))
        .args([
            "api-key",
            "create",
            "--name",
            "CRM",
            "--role",
            "supervisor",
            "--data-dir",
            app.data_dir().to_str().unwrap(),
        ])
        .env("WHACASTER_LOG_LEVEL", "error")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(api_get(&app, "/api/v1/numbers", Some(&token)).await.0, 200);
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_whacaster"))
        .args([
            "api-key",
            "create",
            "--name",
            "x",
            "--role",
            "root",
            "--data-dir",
            app.data_dir().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--role must be"));
}

#[test]
fn the_openapi_document_lists_every_route() {
    let doc = whacaster::api::routes::openapi();
    assert_eq!(doc["openapi"], "3.1.0");
    let text = [
        "src/api/routes.rs",
        "src/api/conversations.rs",
        "src/api/contacts.rs",
        "src/api/templates.rs",
        "src/api/segments.rs",
        "src/api/imports.rs",
        "src/api/campaigns.rs",
    ]
    .map(|f| std::fs::read_to_string(f).unwrap())
    .join("\n");
    let mut routes = 0;
    for part in text.split("web::resource(\"/api/v1").skip(1) {
        let path = part.split('"').next().unwrap();
        let methods: Vec<&str> = part
            .split("web::")
            .skip(1)
            .take_while(|s| !s.starts_with("resource"))
            .filter_map(|s| s.split("()").next())
            .filter(|m| ["get", "post", "put", "patch", "delete"].contains(m))
            .collect();
        for m in methods {
            assert!(
                doc["paths"][path][m].is_object(),
                "{} {path} is missing from openapi.json",
                m.to_uppercase()
            );
            routes += 1;
        }
    }
    assert!(routes >= 12, "routes found: {routes}");
}
