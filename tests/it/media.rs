//! Media: fetched as soon as the message is processed, checked against Meta's sha256,
//! stored encrypted, served only to signed-in users with the right headers; outbound
//! uploads within Meta's limits.

use crate::common::{PASSWORD, TestApp};
use crate::fake_graph::FakeGraph;
use base64::Engine;
use sha2::Digest;

const SECRET: &str = "0123456789abcdef0123456789abcdef";

async fn setup() -> (TestApp, crate::common::Browser, FakeGraph) {
    let graph = FakeGraph::start();
    let (app, admin) = crate::common::app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    (app, admin, graph)
}

async fn deliver_media(
    app: &TestApp,
    wamid: &str,
    kind: &str,
    media_id: &str,
    mime: &str,
    sha: &str,
    filename: Option<&str>,
) {
    let mut object = serde_json::json!({"id": media_id, "mime_type": mime, "sha256": sha});
    if let Some(f) = filename {
        object["filename"] = serde_json::json!(f);
    }
    let body = serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "62812", "phone_number_id": "106540352242922"},
        "contacts": [{"profile": {"name": "Siti"}, "wa_id": "62811"}],
        "messages": [{"from": "62811", "id": wamid, "timestamp": "1764000000", "type": kind, kind: object}]}}]}]});
    let bytes = serde_json::to_vec(&body).unwrap();
    let (status, _) = crate::common::post_webhook(
        app,
        &bytes,
        Some(&crate::common::sign(SECRET, &bytes)),
        "application/json",
    )
    .await;
    assert_eq!(status, 200);
}

async fn media_state(app: &TestApp, media_id: &str) -> (i64, String, Option<String>) {
    let m = media_id.to_string();
    for _ in 0..100 {
        let m2 = m.clone();
        let row: Option<(i64, String, Option<String>)> = app
            .state
            .db
            .read(move |c| {
                use rusqlite::OptionalExtension;
                Ok(c.query_row(
                    "SELECT id, state, error FROM media_files WHERE media_id = ?1",
                    [m2],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?)
            })
            .await
            .unwrap();
        if let Some(r) = row.filter(|r| r.1 != "pending") {
            return r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("media {media_id} was not fetched");
}

fn files_contain(dir: &std::path::Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten().any(|e| {
                std::fs::read(e.path())
                    .unwrap_or_default()
                    .windows(needle.len())
                    .any(|w| w == needle)
            })
        })
        .unwrap_or(false)
}

#[tokio::test]
async fn inbound_media_is_fetched_verified_encrypted_and_served_to_signed_in_users() {
    let (app, admin, graph) = setup().await;
    let photo = b"\xff\xd8\xff\xe0JPEG PLAINTEXT-MARKER-PHOTO of a receipt".to_vec();
    graph.add_media("1479537139650973", &photo, "image/jpeg");
    let sha = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&photo));
    deliver_media(
        &app,
        "wamid.photo",
        "image",
        "1479537139650973",
        "image/jpeg",
        &sha,
        None,
    )
    .await;
    let (id, state, err) = media_state(&app, "1479537139650973").await;
    assert_eq!(state, "stored", "{err:?}");
    let media_dir = app.data_dir().join("media");
    assert!(
        !files_contain(&media_dir, b"PLAINTEXT-MARKER-PHOTO"),
        "no plaintext byte on disk"
    );
    assert!(
        std::fs::read_dir(&media_dir)
            .unwrap()
            .all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".tmp"))
    );
    // Meta's download was made with the token.
    assert!(
        graph
            .seen()
            .iter()
            .any(|s| s.path == "/download/1479537139650973" && s.authorization == "Bearer tok")
    );

    app.create_user(&admin, "agen@toko.id", "agent").await;
    let agent = app.browser();
    agent.login("agen@toko.id", PASSWORD).await;
    let r = agent
        .client
        .get(format!("{}/media/{id}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("inline")
    );
    assert_eq!(r.bytes().await.unwrap().to_vec(), photo);
    assert_eq!(
        app.browser().get(&format!("/media/{id}")).await.location(),
        Some(&*format!("/login?next=%2Fmedia%2F{id}"))
    );

    // A file a browser could run is always a download.
    let html = b"<html><script>alert(1)</script></html>".to_vec();
    graph.add_media("777", &html, "text/html");
    let sha = hex::encode(sha2::Sha256::digest(&html));
    deliver_media(
        &app,
        "wamid.html",
        "document",
        "777",
        "text/html",
        &sha,
        Some("../../etc/passwd<evil>.html"),
    )
    .await;
    let (id, state, _) = media_state(&app, "777").await;
    assert_eq!(state, "stored");
    let r = agent
        .client
        .get(format!("{}/media/{id}", app.base))
        .send()
        .await
        .unwrap();
    let cd = r.headers()["content-disposition"].to_str().unwrap().to_string();
    assert!(cd.starts_with("attachment"), "{cd}");
    assert!(!cd.contains('/') && !cd.contains('<'), "file name sanitised: {cd}");

    // Not what Meta said it was: refused, nothing stored.
    graph.add_media("888", b"tampered", "image/png");
    deliver_media(
        &app,
        "wamid.bad",
        "image",
        "888",
        "image/png",
        &hex::encode(sha2::Sha256::digest(b"original")),
        None,
    )
    .await;
    let (_, state, err) = media_state(&app, "888").await;
    assert_eq!(state, "failed");
    assert!(err.unwrap().contains("sha256"));
}

#[tokio::test]
async fn outbound_media_is_checked_against_meta_limits_before_upload() {
    let (app, _admin, graph) = setup().await;
    let big = vec![0u8; 6 * 1024 * 1024];
    let err = app
        .state
        .media
        .upload(1, "image", "image/jpeg", "big.jpg", big)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("larger than WhatsApp allows"), "{err}");
    let err = app
        .state
        .media
        .upload(1, "image", "image/gif", "a.gif", vec![1, 2, 3])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not accept this file type"), "{err}");
    assert!(
        graph.seen().iter().all(|s| !s.path.ends_with("/media")),
        "nothing uploaded"
    );
    let id = app
        .state
        .media
        .upload(1, "document", "application/pdf", "invoice.pdf", b"%PDF-1.7".to_vec())
        .await
        .unwrap();
    assert_eq!(id.media_id, "900000000000303");
    let up = graph.seen().into_iter().find(|s| s.path.ends_with("/media")).unwrap();
    assert_eq!(up.path, "/v25.0/106540352242922/media");
    assert_eq!(up.authorization, "Bearer tok");
}

/// Issue 14.11: a file WhatsApp would not give us does not say "Downloading…" for a
/// week: after the first failure the bubble says it failed and is retrying.
#[tokio::test]
async fn a_file_that_will_not_download_says_so_after_the_first_failure() {
    let (app, admin, _graph) = setup().await;
    // Meta does not know this media id (the fake Graph API answers 404 for it).
    deliver_media(&app, "wamid.gone", "image", "404404", "image/jpeg", "00", None).await;
    let mut attempts = 0;
    for _ in 0..200 {
        attempts = app
            .state
            .db
            .read(|c| {
                Ok(
                    c.query_row("SELECT attempts FROM media_files WHERE media_id = '404404'", [], |r| {
                        r.get::<_, i64>(0)
                    })?,
                )
            })
            .await
            .unwrap_or(0);
        if attempts > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(attempts > 0, "the fetcher tried");
    let id: i64 = app
        .state
        .db
        .read(|c| Ok(c.query_row("SELECT id FROM conversations LIMIT 1", [], |r| r.get(0))?))
        .await
        .unwrap();
    let thread = admin.get(&format!("/inbox/{id}?fragment=thread")).await.body;
    assert!(!thread.contains("Downloading the file"), "{thread}");
    assert!(
        thread.contains("trying again by itself") || thread.contains("could not be downloaded"),
        "{thread}"
    );
}
