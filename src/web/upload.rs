//! Multipart forms, read in one place (at a pace, within limits): the attachment form
//! (one file up to Meta's 100 MB document limit, a caption, the message it answers),
//! the template and import forms; read before the feature sees plain values.

use crate::error::{AppError, AppResult};

/// The attachment form: one file (Meta's 100 MB document limit), a caption, reply-to.
pub struct Upload {
    /// (file name, MIME type, bytes) when a file came.
    pub file: Option<(String, String, Vec<u8>)>,
    pub caption: String,
    pub reply_to: Option<i64>,
}

/// Reads the form at `pace`: the deadline grows with the bytes received, so a large file
/// on a slow line gets the time it needs and a stalled one is cut off.
pub async fn read_upload(payload: actix_multipart::Multipart, pace: super::body::Pace) -> AppResult<Upload> {
    const MAX: usize = 100 * 1024 * 1024;
    let form = read_fields(payload, pace, MAX).await?;
    let value = |key: &str| {
        form.values
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    Ok(Upload {
        caption: value("caption"),
        reply_to: value("reply_to").parse().ok(),
        file: form.file,
    })
}

/// A multipart form of plain fields and at most one file (field `file`), read at
/// `pace`; a file over `max_file` bytes is refused (`media.too_big`).
pub struct Fields {
    pub values: Vec<(String, String)>,
    /// (file name, MIME type, bytes) when a non-empty file came.
    pub file: Option<(String, String, Vec<u8>)>,
}

pub async fn read_fields(
    mut payload: actix_multipart::Multipart,
    pace: super::body::Pace,
    max_file: usize,
) -> AppResult<Fields> {
    use super::body::BodyError;
    use futures_util::StreamExt;
    let started = std::time::Instant::now();
    let mut received = 0usize;
    let too_slow = |e: BodyError| match e {
        BodyError::TooSlow => AppError::RequestTimeout,
        _ => AppError::BadRequest("error.bad_request"),
    };
    let mut out = Fields {
        values: Vec::new(),
        file: None,
    };
    loop {
        let deadline = tokio::time::Instant::from_std(pace.deadline(started, received));
        let Some(field) = tokio::time::timeout_at(deadline, payload.next())
            .await
            .map_err(|_| AppError::RequestTimeout)?
        else {
            break;
        };
        let mut field = field.map_err(|_| AppError::BadRequest("error.bad_request"))?;
        let name = field.name().unwrap_or("").to_string();
        let filename = field.content_disposition().and_then(|d| d.get_filename()).map(|f| {
            f.chars()
                .filter(|c| !c.is_control() && *c != '/' && *c != '\\')
                .take(200)
                .collect::<String>()
        });
        let mime = field.content_type().map(|m| m.essence_str().to_string());
        let limit = if name == "file" { max_file } else { 16 * 1024 };
        if out.values.len() > 200 {
            return Err(AppError::BadRequest("error.bad_request"));
        }
        let mut buf = Vec::new();
        while let Some(chunk) = super::body::next_chunk(&mut field, &pace, started, received)
            .await
            .map_err(too_slow)?
        {
            received += chunk.len();
            if buf.len() + chunk.len() > limit {
                return Err(AppError::BadRequest("media.too_big"));
            }
            buf.extend_from_slice(&chunk);
        }
        if name == "file" {
            if !buf.is_empty() {
                let filename = filename.filter(|f| !f.is_empty()).unwrap_or_else(|| "file".into());
                let mime = mime
                    .filter(|m| m != "application/octet-stream")
                    .unwrap_or_else(|| mime_guess::from_path(&filename).first_or_octet_stream().to_string());
                out.file = Some((filename, mime, buf));
            }
        } else {
            out.values.push((name, String::from_utf8_lossy(&buf).to_string()));
        }
    }
    Ok(out)
}
