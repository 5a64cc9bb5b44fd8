//! A fake Graph API on loopback for everything that talks to Meta: it records each
//! request and answers like Meta, or with an injected fault (status, error object,
//! delay), optionally only for requests whose body contains a string, a number of times.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub authorization: String,
    pub body: serde_json::Value,
    pub at: std::time::Instant,
    pub query: String,
    /// The body as received (uploads are not JSON).
    pub raw: Vec<u8>,
    /// The `file_offset` header (the Resumable Upload API's second call).
    pub file_offset: Option<String>,
}

#[derive(Clone)]
pub struct Fault {
    pub path: String,
    pub body_contains: Option<String>,
    pub status: u16,
    pub answer: serde_json::Value,
    /// How many times it applies (`None`: always).
    pub times: Option<usize>,
    pub delay_ms: u64,
}

#[derive(Default)]
struct Shared {
    seen: Vec<Seen>,
    faults: Vec<Fault>,
    sent: usize,
    uploads: u64,
    /// media id -> (bytes, mime type)
    media: std::collections::HashMap<String, (Vec<u8>, String)>,
    base: String,
    /// Templates created through `POST /{waba}/message_templates`, as Meta lists them.
    created: Vec<serde_json::Value>,
    upload_sessions: u64,
}

pub struct FakeGraph {
    pub base: String,
    shared: Arc<Mutex<Shared>>,
}

/// Meta's error object for a code.
pub fn meta_error(code: i64, title: &str, details: &str) -> serde_json::Value {
    serde_json::json!({"error": {"message": format!("(#{code}) {title}"), "type": "OAuthException", "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": details}, "fbtrace_id": "AbCdEf"}})
}

#[expect(clippy::too_many_lines, reason = "one arm per Graph endpoint the tests use")]
async fn answer(req: HttpRequest, bytes: web::Bytes, shared: web::Data<Arc<Mutex<Shared>>>) -> HttpResponse {
    let path = req.path().to_string();
    let text = String::from_utf8_lossy(&bytes).to_string();
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    let fault = {
        let mut s = shared.lock().unwrap();
        s.seen.push(Seen {
            method: req.method().to_string(),
            path: path.clone(),
            authorization: req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string(),
            body: body.clone(),
            at: std::time::Instant::now(),
            query: req.query_string().to_string(),
            raw: bytes.to_vec(),
            file_offset: req
                .headers()
                .get("file_offset")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        });
        let found = s.faults.iter_mut().find(|f| {
            path.contains(f.path.as_str())
                && f.body_contains.as_ref().is_none_or(|b| text.contains(b.as_str()))
                && f.times != Some(0)
        });
        found.map(|f| {
            if let Some(t) = f.times.as_mut() {
                *t -= 1;
            }
            f.clone()
        })
    };
    if let Some(f) = fault {
        if f.delay_ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(f.delay_ms)).await;
        }
        return HttpResponse::build(actix_web::http::StatusCode::from_u16(f.status).unwrap()).json(f.answer);
    }
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let media = {
        let s = shared.lock().unwrap();
        parts
            .last()
            .and_then(|id| s.media.get(*id).cloned())
            .map(|m| (m, s.base.clone()))
    };
    match (req.method().as_str(), parts.as_slice(), media) {
        ("GET", ["download", _id], Some(((bytes, mime), _))) => {
            if req.headers().get("authorization").is_none() {
                return HttpResponse::Unauthorized().finish();
            }
            return HttpResponse::Ok().content_type(mime).body(bytes);
        }
        ("GET", [_version, id], Some(((bytes, mime), base))) => {
            use base64::Engine;
            use sha2::Digest;
            let sha = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&bytes));
            return HttpResponse::Ok().json(serde_json::json!({"messaging_product": "whatsapp",
                "url": format!("{base}/download/{id}"), "mime_type": mime, "sha256": sha, "file_size": bytes.len(), "id": id}));
        }
        ("POST", [_version, _phone, "media"], _) => {
            // Like Meta: a new id per upload.
            let n = {
                let mut s = shared.lock().unwrap();
                s.uploads += 1;
                s.uploads
            };
            return HttpResponse::Ok().json(serde_json::json!({"id": (900_000_000_000_302_u64 + n).to_string()}));
        }
        _ => {}
    }
    match (req.method().as_str(), parts.as_slice()) {
        ("GET", [_version, id]) => HttpResponse::Ok().json(serde_json::json!({
            "verified_name": "Toko Maju Jaya", "display_phone_number": "+62 812-3456-7890",
            "quality_rating": "GREEN", "throughput": {"level": "STANDARD"}, "id": id
        })),
        ("GET", [_version, _waba, "message_templates"]) => {
            // Two pages, linked by a cursor, as Meta pages them.
            if req.query_string().contains("after=p2") {
                HttpResponse::Ok().json(serde_json::json!({"data": [
                    {"id": "3", "name": "promo_akhir_tahun", "language": "id", "status": "PENDING", "category": "MARKETING",
                     "components": [{"type": "BODY", "text": "Diskon {{1}} untuk {{2}}!"}]}
                ], "paging": {"cursors": {"before": "p2", "after": "end"}}}))
            } else {
                let created = shared.lock().unwrap().created.clone();
                let mut data = vec![
                    serde_json::json!({"id": "1", "name": "order_shipped", "language": "id", "status": "APPROVED", "category": "UTILITY",
                     "quality_score": {"score": "GREEN"},
                     "components": [{"type": "HEADER", "format": "TEXT", "text": "Pesanan"},
                                    {"type": "BODY", "text": "Halo {{1}}, pesanan {{2}} sudah dikirim."},
                                    {"type": "FOOTER", "text": "Toko Maju"}]}),
                    serde_json::json!({"id": "2", "name": "order_shipped", "language": "en", "status": "APPROVED", "category": "UTILITY",
                     "components": [{"type": "BODY", "text": "Hi {{1}}, order {{2}} has shipped."}]}),
                ];
                data.extend(created);
                HttpResponse::Ok().json(serde_json::json!({"data": data,
                    "paging": {"cursors": {"before": "p1", "after": "p2"}, "next": "https://graph.facebook.com/next"}}))
            }
        }
        ("POST", [_version, _waba, "message_templates"]) => {
            let mut s = shared.lock().unwrap();
            let id = (1_900_000_000_000_001_u64 + s.created.len() as u64).to_string();
            let mut listed = body.clone();
            listed["id"] = serde_json::json!(id);
            listed["status"] = serde_json::json!("PENDING");
            listed["parameter_format"] =
                serde_json::json!(body["parameter_format"].as_str().unwrap_or("").to_uppercase());
            s.created.push(listed);
            HttpResponse::Ok().json(serde_json::json!({"id": id, "status": "PENDING", "category": body["category"]}))
        }
        ("DELETE", [_version, _waba, "message_templates"]) => {
            let hsm = url::form_urlencoded::parse(req.query_string().as_bytes())
                .find(|(k, _)| k == "hsm_id")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            shared.lock().unwrap().created.retain(|t| t["id"] != hsm.as_str());
            HttpResponse::Ok().json(serde_json::json!({"success": true}))
        }
        ("POST", [_version, _app, "uploads"]) => {
            let n = {
                let mut s = shared.lock().unwrap();
                s.upload_sessions += 1;
                s.upload_sessions
            };
            HttpResponse::Ok().json(serde_json::json!({"id": format!("upload:MTphdHRhY2htZW50{n}")}))
        }
        ("POST", [_version, session]) if session.starts_with("upload:") => {
            let auth = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let offset = req.headers().get("file_offset").and_then(|v| v.to_str().ok());
            if !auth.starts_with("OAuth ") || offset != Some("0") {
                return HttpResponse::BadRequest().json(meta_error(
                    100,
                    "Invalid parameter",
                    "OAuth and file_offset: 0 needed",
                ));
            }
            HttpResponse::Ok().json(serde_json::json!({"h": format!("4::aGFuZGxl:{}", bytes.len())}))
        }
        ("POST", [_version, _waba, "subscribed_apps"]) => HttpResponse::Ok().json(serde_json::json!({"success": true})),
        ("POST", [_version, _phone, "messages"]) => {
            if body["status"] == "read" {
                return HttpResponse::Ok().json(serde_json::json!({"success": true}));
            }
            let n = {
                let mut s = shared.lock().unwrap();
                s.sent += 1;
                s.sent
            };
            HttpResponse::Ok().json(serde_json::json!({"messaging_product": "whatsapp",
                "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                "messages": [{"id": format!("wamid.fake{n}")}]}))
        }
        _ => HttpResponse::NotFound().json(meta_error(100, "Unsupported request", "unknown path")),
    }
}

impl FakeGraph {
    pub fn start() -> FakeGraph {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let data = web::Data::new(Arc::clone(&shared));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        shared.lock().unwrap().base.clone_from(&base);
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(answer)))
                    .workers(2)
                    .listen(listener)
                    .unwrap()
                    .run()
                    .await
            })
        });
        FakeGraph { base, shared }
    }

    pub fn fail(&self, path_fragment: &str, status: u16, body: serde_json::Value) {
        self.inject(Fault {
            path: path_fragment.into(),
            body_contains: None,
            status,
            answer: body,
            times: None,
            delay_ms: 0,
        });
    }

    pub fn inject(&self, fault: Fault) {
        self.shared.lock().unwrap().faults.push(fault);
    }

    pub fn clear_faults(&self) {
        self.shared.lock().unwrap().faults.clear();
    }

    /// A file Meta holds under `id` (served at the short-lived URL with a bearer token).
    pub fn add_media(&self, id: &str, bytes: &[u8], mime: &str) {
        self.shared
            .lock()
            .unwrap()
            .media
            .insert(id.to_string(), (bytes.to_vec(), mime.to_string()));
    }

    /// Waits (up to 4 s) until the requests seen satisfy `f`; panics naming `what`.
    pub async fn wait_for(&self, what: &str, f: impl Fn(&[Seen]) -> bool) {
        for _ in 0..200 {
            if f(&self.seen()) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("the fake Graph API never saw {what}");
    }

    /// Changes a template created through the fake (as Meta's review would), so that a
    /// sync agrees with the webhooks a test delivers.
    pub fn update_template(&self, meta_id: &str, f: impl Fn(&mut serde_json::Value)) {
        let mut s = self.shared.lock().unwrap();
        for t in s.created.iter_mut().filter(|t| t["id"] == meta_id) {
            f(t);
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.lock().unwrap().seen.clone()
    }
}
