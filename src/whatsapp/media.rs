//! Media: inbound files are fetched as soon as their message is processed, checked
//! against Meta's sha256, and stored AES-256-GCM encrypted under a random name (the
//! temporary file is already ciphertext: no plaintext byte touches the disk). Outbound
//! files are checked against Meta's per-type limits before upload. Serving a file to
//! the people who may see its conversation is the inbox's (`inbox::media`).

use super::graph::GraphClient;
use crate::clock::Clock;
use crate::crypto;
use crate::error::AppError;
use crate::store::Db;
use crate::wake::Doorbell;
use base64::Engine;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// Customers can send up to 100 MB (Meta's limit).
pub const MAX_INBOUND: usize = 100 * 1024 * 1024;
/// A received media id can be downloaded for 7 days; retries stop then.
const GIVE_UP_AFTER: i64 = 7 * 86_400;

/// Where media files live, and the key they are sealed with. No `Debug`: it holds a key.
#[derive(Clone)]
pub struct MediaStore {
    dir: std::path::PathBuf,
    key: [u8; 32],
}

impl MediaStore {
    pub fn new(dir: std::path::PathBuf, key: [u8; 32]) -> MediaStore {
        MediaStore { dir, key }
    }

    /// Encrypts and writes a file (blocking); returns its random name.
    fn write(&self, plain: &[u8]) -> Result<String, String> {
        let name = format!("{}.bin", crypto::random_token(18));
        crypto::write_private_file(&self.dir.join(&name), &crypto::seal(&self.key, plain)?)?;
        Ok(name)
    }

    /// Where a stored file lives; a name the store would not make (one that could walk
    /// out of the directory) is refused.
    fn path_of(&self, stored_name: &str) -> Result<std::path::PathBuf, String> {
        if valid_stored_name(stored_name) {
            Ok(self.dir.join(stored_name))
        } else {
            Err(format!("not a stored file name: {stored_name}"))
        }
    }

    /// Removes a stored file (blocking): retention and erasure. A file already gone is
    /// not an error (false).
    pub fn remove(&self, stored_name: &str) -> Result<bool, String> {
        match std::fs::remove_file(self.path_of(stored_name)?) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(format!("cannot remove a media file: {e}")),
        }
    }

    /// Whether a stored file is on disk (tests, evidence).
    pub fn exists(&self, stored_name: &str) -> bool {
        self.path_of(stored_name).is_ok_and(|p| p.is_file())
    }

    /// Encrypts and writes a file under a given stored name (restoring a backup).
    pub fn write_named(&self, name: &str, plain: &[u8]) -> Result<(), String> {
        crypto::write_private_file(&self.path_of(name)?, &crypto::seal(&self.key, plain)?)
    }

    /// Reads and decrypts a stored file (blocking).
    pub fn read(&self, stored_name: &str) -> Result<Vec<u8>, String> {
        let sealed = std::fs::read(self.path_of(stored_name)?).map_err(|e| e.to_string())?;
        crypto::open(&self.key, &sealed)
    }
}

/// Key rotation, step 1 (before the database is re-keyed): every stored file sealed
/// again under `new` as `<name>.new` beside it. Nothing is replaced yet; on error the
/// `.new` files are removed. Returns how many files were staged.
pub fn stage_reseal(dir: &std::path::Path, old: &[u8; 32], new: &[u8; 32]) -> Result<usize, String> {
    let names = stored_names(dir)?;
    let staged = (|| -> Result<usize, String> {
        for name in &names {
            let sealed = std::fs::read(dir.join(name)).map_err(|e| format!("cannot read media {name}: {e}"))?;
            let plain =
                zeroize::Zeroizing::new(crypto::open(old, &sealed).map_err(|e| format!("media file {name}: {e}"))?);
            crypto::write_private_file(&dir.join(format!("{name}.new")), &crypto::seal(new, &plain)?)?;
        }
        Ok(names.len())
    })();
    if staged.is_err() {
        drop(discard_staged(dir));
    }
    staged
}

/// Key rotation, step 2 (after the database uses the new key), and the repair of an
/// interrupted rotation: each `<name>.new` that opens under `current` replaces its
/// file; one that does not (staged for a rotation that never happened) is removed.
/// Returns how many files were replaced.
pub fn finish_reseal(dir: &std::path::Path, current: &[u8; 32]) -> Result<usize, String> {
    let mut done = 0;
    for staged in staged_names(dir)? {
        let path = dir.join(&staged);
        let sealed = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let target = dir.join(staged.trim_end_matches(".new"));
        if crypto::open(current, &sealed).is_ok() {
            std::fs::rename(&path, &target).map_err(|e| format!("cannot replace {}: {e}", target.display()))?;
            done += 1;
        } else {
            std::fs::remove_file(&path).map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
        }
    }
    Ok(done)
}

fn discard_staged(dir: &std::path::Path) -> Result<(), String> {
    for staged in staged_names(dir)? {
        std::fs::remove_file(dir.join(&staged)).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn list_dir(dir: &std::path::Path, suffix: &str) -> Result<Vec<String>, String> {
    match std::fs::read_dir(dir) {
        Ok(rd) => Ok(rd
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.ends_with(suffix))
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("cannot list {}: {e}", dir.display())),
    }
}

/// The stored files of a media directory, sorted (only names the store makes).
pub fn stored_names(dir: &std::path::Path) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = list_dir(dir, ".bin")?
        .into_iter()
        .filter(|n| valid_stored_name(n))
        .collect();
    names.sort();
    Ok(names)
}

/// A name the store makes: random base64url plus `.bin`, nothing that walks a path.
/// Every way in by name (read, write, remove; a backup's restore) checks it.
pub fn valid_stored_name(name: &str) -> bool {
    #[expect(
        clippy::case_sensitive_file_extension_comparisons,
        reason = "the media store names files .bin, lower case"
    )]
    let bin = name.ends_with(".bin");
    bin && name.len() < 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !name.starts_with('.')
}

fn staged_names(dir: &std::path::Path) -> Result<Vec<String>, String> {
    list_dir(dir, ".bin.new")
}

/// The media worker and the upload path, with what they need.
#[derive(Clone)]
pub struct Media {
    pub db: Db,
    pub clock: Clock,
    pub graph: GraphClient,
    pub store: MediaStore,
    /// Rung when a received file was queued.
    pub bell: Doorbell,
}

/// A received file to fetch.
pub struct Incoming<'a> {
    pub media_id: &'a str,
    pub wamid: &'a str,
    pub phone_number_id: &'a str,
    pub kind: &'a str,
    pub mime: &'a str,
    pub filename: Option<&'a str>,
    pub sha256: &'a str,
}

/// Queues the download of a received file (inside the processing transaction).
pub fn queue(c: &Connection, m: &Incoming<'_>, now: i64) -> rusqlite::Result<()> {
    c.execute(
        "INSERT OR IGNORE INTO media_files (media_id, wamid, phone_number_id, kind, mime_type, filename, sha256, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![m.media_id, m.wamid, m.phone_number_id, m.kind, m.mime, m.filename, m.sha256, now],
    )?;
    Ok(())
}

impl Media {
    /// Starts the fetcher. Call once (from `server`).
    pub fn start(self) {
        tokio::spawn(async move {
            loop {
                match self.fetch_due().await {
                    Ok(n) if n > 0 => continue,
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "media round failed"),
                }
                self.bell.wait(Duration::from_secs(2)).await;
            }
        });
    }
}

struct Pending {
    id: i64,
    media_id: String,
    phone_number_id: String,
    sha256: String,
    attempts: i64,
    created_at: i64,
    token: Option<String>,
}

fn pending(c: &Connection, now: i64) -> rusqlite::Result<Vec<Pending>> {
    let mut stmt = c.prepare(
        "SELECT m.id, m.media_id, m.phone_number_id, m.sha256, m.attempts, m.created_at, n.access_token
         FROM media_files m LEFT JOIN wa_numbers n ON n.phone_number_id = m.phone_number_id
         WHERE m.state = 'pending' AND m.next_attempt_at <= ?1 ORDER BY m.id LIMIT 20",
    )?;
    let rows = stmt.query_map([now], |r| {
        Ok(Pending {
            id: r.get(0)?,
            media_id: r.get(1)?,
            phone_number_id: r.get(2)?,
            sha256: r.get(3)?,
            attempts: r.get(4)?,
            created_at: r.get(5)?,
            token: r.get(6)?,
        })
    })?;
    rows.collect()
}

/// Whether `expected` (Meta's sha256, base64 or hex) is the digest of `bytes`.
pub fn sha256_matches(bytes: &[u8], expected: &str) -> bool {
    if expected.is_empty() {
        return true;
    }
    let digest = Sha256::digest(bytes);
    let b64 = base64::engine::general_purpose::STANDARD.encode(digest);
    let hex = hex::encode(digest);
    crypto::ct_eq(expected.trim().as_bytes(), b64.as_bytes())
        || crypto::ct_eq(expected.trim().to_ascii_lowercase().as_bytes(), hex.as_bytes())
}

impl Media {
    /// Downloads what is due; returns how many files were tried.
    pub async fn fetch_due(&self) -> Result<usize, AppError> {
        let now = self.clock.unix();
        let due = self.db.read(move |c| Ok(pending(c, now)?)).await?;
        let n = due.len();
        for p in due {
            let result = match &p.token {
                None => Err("the number is not connected any more".to_string()),
                Some(token) => match self
                    .graph
                    .download_media(&p.media_id, &p.phone_number_id, token, MAX_INBOUND)
                    .await
                {
                    Ok((bytes, _mime, meta_sha)) => {
                        let expected = if p.sha256.is_empty() {
                            meta_sha
                        } else {
                            p.sha256.clone()
                        };
                        if sha256_matches(&bytes, &expected) {
                            let size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
                            let store = self.store.clone();
                            tokio::task::spawn_blocking(move || store.write(&bytes))
                                .await
                                .map_err(|e| e.to_string())
                                .and_then(|r| r)
                                .map(|name| (name, size))
                        } else {
                            Err("the file does not match Meta's sha256".to_string())
                        }
                    }
                    Err(e) => Err(e.to_string()),
                },
            };
            let now = self.clock.unix();
            let id = p.id;
            match result {
                Ok((name, size)) => {
                    self
                    .db
                    .write(move |c| {
                        c.execute(
                            "UPDATE media_files SET state = 'stored', stored_name = ?2, size = ?3, error = NULL WHERE id = ?1",
                            params![id, name, size],
                        )?;
                        Ok(())
                    })
                    .await?;
                }
                Err(msg) => {
                    let give_up =
                        now - p.created_at > GIVE_UP_AFTER || msg.contains("131052") || msg.contains("sha256");
                    let delay = 30_i64 << p.attempts.min(10);
                    self.db
                        .write(move |c| {
                            c.execute(
                                "UPDATE media_files SET state = CASE WHEN ?2 THEN 'failed' ELSE 'pending' END,
                                    attempts = attempts + 1, next_attempt_at = ?3, error = ?4 WHERE id = ?1",
                                params![id, give_up, now + delay, msg],
                            )?;
                            Ok(())
                        })
                        .await?;
                }
            }
        }
        Ok(n)
    }
}

/// A MIME type without its parameters, in lower case (`Image/JPEG; x=y` is `image/jpeg`):
/// media types are compared case-insensitively.
fn base_type(mime: &str) -> String {
    mime.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

/// MIME types a browser may show inline; everything else is downloaded.
pub fn inline_safe(mime: &str) -> bool {
    matches!(
        base_type(mime).as_str(),
        "image/jpeg"
            | "image/png"
            | "image/webp"
            | "audio/aac"
            | "audio/amr"
            | "audio/mpeg"
            | "audio/mp4"
            | "audio/ogg"
            | "video/mp4"
            | "video/3gpp"
    )
}

/// A stored file, with what says whose it is.
#[derive(Debug, Clone)]
pub struct StoredFile {
    pub mime: String,
    pub filename: String,
    pub stored_name: String,
    /// The outbound message it was sent with, if any.
    pub message_id: Option<i64>,
    /// The inbound message it came with ('' for files we sent).
    pub wamid: String,
}

pub fn find_stored(c: &Connection, id: i64) -> rusqlite::Result<Option<StoredFile>> {
    c.query_row(
        "SELECT mime_type, coalesce(filename, ''), stored_name, message_id, wamid
         FROM media_files WHERE id = ?1 AND state = 'stored'",
        [id],
        |r| {
            Ok(StoredFile {
                mime: r.get(0)?,
                filename: r.get(1)?,
                stored_name: r.get(2)?,
                message_id: r.get(3)?,
                wamid: r.get(4)?,
            })
        },
    )
    .optional()
}

/// Meta's limits for sending (REFERENCE.md §5): the catalogue key of the problem, if any.
pub fn check_outbound(kind: &str, mime: &str, size: usize) -> Result<(), &'static str> {
    const MB: usize = 1024 * 1024;
    let (types, max): (&[&str], usize) = match kind {
        "image" => (&["image/jpeg", "image/png"], 5 * MB),
        "video" => (&["video/mp4", "video/3gpp"], 16 * MB),
        "audio" => (
            &["audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"],
            16 * MB,
        ),
        "sticker" => (&["image/webp"], 500 * 1024),
        "document" => (
            &[
                "text/plain",
                "application/pdf",
                "application/msword",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                "application/vnd.ms-excel",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "application/vnd.ms-powerpoint",
                "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            ],
            100 * MB,
        ),
        _ => return Err("media.kind_unknown"),
    };
    let base = base_type(mime);
    if !types.contains(&base.as_str()) {
        return Err("media.type_not_allowed");
    }
    if size > max {
        return Err("media.too_big");
    }
    Ok(())
}

/// A file uploaded for sending: Meta's media id and our encrypted copy's row.
#[derive(Debug, Clone)]
pub struct Uploaded {
    pub media_id: String,
    pub file_id: i64,
}

/// Why a file could not be sent.
#[derive(Debug)]
pub enum UploadError {
    /// Against Meta's limits (catalogue key): the person should pick another file.
    Refused(&'static str),
    /// The upload itself failed (Meta, network, disk).
    Failed(String),
}

impl std::fmt::Display for UploadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UploadError::Refused(key) => f.write_str(crate::i18n::t(crate::i18n::Locale::En, key)),
            UploadError::Failed(e) => f.write_str(e),
        }
    }
}

/// The kind of WhatsApp media a file is sent as, by its MIME type.
pub fn kind_for(mime: &str) -> &'static str {
    let mime = base_type(mime);
    match mime.split('/').next().unwrap_or("") {
        "image" if mime != "image/webp" => "image",
        "video" => "video",
        "audio" => "audio",
        _ => "document",
    }
}

impl Media {
    /// Uploads a file for sending after checking Meta's limits, and keeps an encrypted copy
    /// so the conversation shows what was sent.
    pub async fn upload(
        &self,
        number_id: i64,
        kind: &str,
        mime: &str,
        filename: &str,
        bytes: Vec<u8>,
    ) -> Result<Uploaded, UploadError> {
        check_outbound(kind, mime, bytes.len()).map_err(UploadError::Refused)?;
        self.upload_checked(number_id, kind, mime, filename, bytes)
            .await
            .map_err(UploadError::Failed)
    }

    async fn upload_checked(
        &self,
        number_id: i64,
        kind: &str,
        mime: &str,
        filename: &str,
        bytes: Vec<u8>,
    ) -> Result<Uploaded, String> {
        let creds = self
            .db
            .read(move |c| Ok(super::numbers::repo::find_credentials(c, number_id)?))
            .await
            .map_err(|e| e.to_string())?
            .ok_or("no such number")?;
        let size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
        let copy = bytes.clone();
        let media_id = self
            .graph
            .upload_media(
                &creds.phone_number_id,
                creds.access_token.expose(),
                bytes,
                mime,
                filename,
            )
            .await
            .map_err(|e| e.to_string())?;
        let store = self.store.clone();
        let stored = tokio::task::spawn_blocking(move || store.write(&copy))
            .await
            .map_err(|e| e.to_string())??;
        let phone = creds.phone_number_id.clone();
        let (mid, kind, mime, filename, now) = (
            media_id.clone(),
            kind.to_string(),
            mime.to_string(),
            filename.to_string(),
            self.clock.unix(),
        );
        let file_id = self
        .db
        .write(move |c| {
            c.execute(
                "INSERT INTO media_files (media_id, wamid, phone_number_id, kind, mime_type, filename, size, stored_name,
                                          state, created_at)
                 VALUES (?1, '', ?2, ?3, ?4, ?5, ?6, ?7, 'stored', ?8)",
                params![mid, phone, kind, mime, filename, size, stored, now],
            )?;
            Ok(c.last_insert_rowid())
        })
        .await
        .map_err(|e| e.to_string())?;
        Ok(Uploaded { media_id, file_id })
    }
}

/// Links a sent file to its message (for the thread and for access checks).
pub fn attach_to_message(c: &Connection, file_id: i64, message_id: i64) -> rusqlite::Result<usize> {
    c.execute(
        "UPDATE media_files SET message_id = ?2 WHERE id = ?1",
        params![file_id, message_id],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbound_limits() {
        assert_eq!(check_outbound("image", "image/png", 1000), Ok(()));
        assert_eq!(
            check_outbound("image", "image/gif", 1000),
            Err("media.type_not_allowed")
        );
        assert_eq!(
            check_outbound("image", "image/jpeg", 6 * 1024 * 1024),
            Err("media.too_big")
        );
        assert_eq!(
            check_outbound("sticker", "image/webp", 600 * 1024),
            Err("media.too_big")
        );
        assert_eq!(check_outbound("audio", "audio/ogg; codecs=opus", 1000), Ok(()));
        assert_eq!(check_outbound("hologram", "x/y", 1), Err("media.kind_unknown"));
        assert_eq!(kind_for("image/jpeg"), "image");
        assert_eq!(kind_for("image/webp"), "document");
        assert_eq!(kind_for("application/pdf"), "document");
        assert_eq!(
            check_outbound("image", "IMAGE/JPEG", 1000),
            Ok(()),
            "case does not matter"
        );
        assert_eq!(kind_for("Image/PNG"), "image");
        assert!(inline_safe("Image/PNG; q=1"));
    }

    #[test]
    fn sha256_in_either_encoding() {
        let d = Sha256::digest(b"abc");
        assert!(sha256_matches(
            b"abc",
            &base64::engine::general_purpose::STANDARD.encode(d)
        ));
        assert!(sha256_matches(b"abc", &hex::encode(d)));
        assert!(!sha256_matches(b"abd", &hex::encode(d)));
    }
}
