//! Static files embedded in the binary, served with ETag/304 and cache-busted by hash.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use std::collections::HashMap;
use std::sync::LazyLock;

#[derive(rust_embed::RustEmbed)]
#[folder = "static/"]
struct Static;

/// Short content hash of each file, computed once.
static HASHES: LazyLock<HashMap<String, String>> = LazyLock::new(|| {
    Static::iter()
        .filter_map(|p| {
            let f = Static::get(&p)?;
            Some((p.to_string(), hex::encode(&f.metadata.sha256_hash()[..6])))
        })
        .collect()
});

/// `/static/<path>?v=<hash>`.
pub fn versioned(path: &str) -> String {
    match HASHES.get(path) {
        Some(h) => format!("/static/{path}?v={h}"),
        None => format!("/static/{path}"),
    }
}

pub async fn get_asset(req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let path = path.into_inner();
    let Some(file) = Static::get(&path) else {
        return HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("not found");
    };
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16]));
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    // With ?v=<hash> the URL changes whenever the file does, so it may be cached for good.
    let cache = if req.query_string().starts_with("v=") {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    };
    if fresh {
        return HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .insert_header((header::CACHE_CONTROL, cache))
            .finish();
    }
    let mime = mime_guess::from_path(&path).first_or_octet_stream();
    HttpResponse::Ok()
        .content_type(mime.as_ref())
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, cache))
        .body(file.data.into_owned())
}
