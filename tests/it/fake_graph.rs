//! A fake Graph API on loopback for everything that talks to Meta: it records each
//! request and answers like Meta, or with an injected fault.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub authorization: String,
}

#[derive(Default)]
struct Shared {
    seen: Vec<Seen>,
    /// (path fragment, HTTP status, body) answered instead of the normal reply.
    faults: Vec<(String, u16, serde_json::Value)>,
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

async fn answer(req: HttpRequest, shared: web::Data<Arc<Mutex<Shared>>>) -> HttpResponse {
    let path = req.path().to_string();
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
    });
    if let Some((_, status, body)) = s.faults.iter().find(|(frag, _, _)| path.contains(frag.as_str())) {
        return HttpResponse::build(actix_web::http::StatusCode::from_u16(*status).unwrap()).json(body);
    }
    drop(s);
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (req.method().as_str(), parts.as_slice()) {
        ("GET", [_version, id]) => HttpResponse::Ok().json(serde_json::json!({
            "verified_name": "Toko Maju Jaya", "display_phone_number": "+62 812-3456-7890",
            "quality_rating": "GREEN", "throughput": {"level": "STANDARD"}, "id": id
        })),
        ("POST", [_version, _waba, "subscribed_apps"]) => HttpResponse::Ok().json(serde_json::json!({"success": true})),
        _ => HttpResponse::NotFound().json(meta_error(100, "Unsupported request", "unknown path")),
    }
}

impl FakeGraph {
    pub fn start() -> FakeGraph {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let data = web::Data::new(shared.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(answer)))
                    .workers(1)
                    .listen(listener)
                    .unwrap()
                    .run()
                    .await
            })
        });
        FakeGraph { base, shared }
    }

    pub fn fail(&self, path_fragment: &str, status: u16, body: serde_json::Value) {
        self.shared
            .lock()
            .unwrap()
            .faults
            .push((path_fragment.to_string(), status, body));
    }

    pub fn clear_faults(&self) {
        self.shared.lock().unwrap().faults.clear();
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.lock().unwrap().seen.clone()
    }
}
