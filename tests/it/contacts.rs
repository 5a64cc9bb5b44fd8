//! Contacts: pages and API; phones in E.164 from the business's country; names escaped;
//! delete for admins only, audited.

use crate::common::{PASSWORD, TestApp, api};
use serde_json::json;

#[tokio::test]
async fn contacts_through_pages_and_api() {
    let app = TestApp::start().await;
    let (admin, _) = app.admin("owner@toko.id").await;
    app.create_user(&admin, "agen@toko.id", "agent").await;
    let agent = app.browser();
    agent.login("agen@toko.id", PASSWORD).await;
    // Local number, business in Indonesia: 0812… becomes +62812….
    let r = agent
        .submit(
            "/contacts",
            "/contacts",
            &[
                ("name", "<script>alert(1)</script> Bu Ani"),
                ("phone", "0812-3456-7890"),
                ("attributes_text", "kota=Bandung\nmember=gold"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let page = agent.get(r.location().unwrap().split('?').next().unwrap()).await;
    assert!(page.body.contains("+6281234567890") && page.body.contains("kota=Bandung"));
    assert!(!page.body.contains("<script>alert(1)"), "names are escaped");
    let dup = agent
        .submit("/contacts", "/contacts", &[("phone", "+62 812 3456 7890")])
        .await;
    assert_eq!(dup.status, 422);
    assert!(dup.body.contains("already exists"));
    let bad = agent.submit("/contacts", "/contacts", &[("phone", "12")]).await;
    assert!(bad.body.contains("valid phone number"));
    let search = agent.get("/contacts?q=3456").await;
    assert!(search.body.contains("Bu Ani"));
    // As people type it: the local form of the number, and part of the name.
    assert!(agent.get("/contacts?q=0812%203456").await.body.contains("Bu Ani"));
    assert!(agent.get("/contacts?q=Bu").await.body.contains("Bu Ani"));
    assert!(agent.get("/contacts?q=ani").await.body.contains("Bu Ani"));
    assert!(!agent.get("/contacts?q=0899%203456").await.body.contains("Bu Ani"));
    // Agents cannot delete.
    assert_eq!(agent.submit("/contacts/1", "/contacts/1/delete", &[]).await.status, 403);

    // The API, with an agent key.
    let r = admin
        .submit(
            "/admin/api-keys",
            "/admin/api-keys",
            &[("name", "shop"), ("role", "agent")],
        )
        .await;
    let i = r.body.find("id=\"api-token\">").unwrap() + "id=\"api-token\">".len();
    let token = r.body[i..].split('<').next().unwrap().to_string();
    let (s, created) = api(
        &app,
        "POST",
        "/api/v1/contacts",
        &token,
        Some(json!({"name": "Pak Budi", "phone": "0813 1111 2222", "attributes": {"tier": "silver"}})),
    )
    .await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(created["phone"], "+6281311112222");
    let id = created["id"].as_i64().unwrap();
    let (s, e) = api(&app, "POST", "/api/v1/contacts", &token, Some(json!({"phone": "nope"}))).await;
    assert_eq!(s, 422);
    assert_eq!(e["error"]["code"], "invalid");
    assert!(e["error"]["fields"]["phone"].is_string());
    let (s, patched) = api(
        &app,
        "PATCH",
        &format!("/api/v1/contacts/{id}"),
        &token,
        Some(json!({"name": "Pak Budi S."})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        (patched["name"].as_str(), patched["phone"].as_str()),
        (Some("Pak Budi S."), Some("+6281311112222")),
        "only the given field changed"
    );
    let (s, list) = api(&app, "GET", "/api/v1/contacts?q=budi", &token, None).await;
    assert_eq!(s, 200);
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(api(&app, "GET", "/api/v1/contacts/9999", &token, None).await.0, 404);

    // Admin deletes; audited.
    let r = admin
        .submit(&format!("/contacts/{id}"), &format!("/contacts/{id}/delete"), &[])
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        api(&app, "GET", &format!("/api/v1/contacts/{id}"), &token, None)
            .await
            .0,
        404
    );
    let audit = admin.get("/admin/audit.csv").await.body;
    for a in ["contact.create", "contact.update", "contact.delete"] {
        assert!(audit.contains(a), "{a} audited");
    }
}
