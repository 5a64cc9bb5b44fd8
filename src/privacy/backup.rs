//! Encrypted backups (P15): one file holding a consistent snapshot of the database and
//! every media file, encrypted and authenticated with the backup key; verify and restore.
//!
//! File: a 56-byte header (magic, how the key is made, argon2id parameters, salt, stream
//! nonce), then an XChaCha20-Poly1305 STREAM (64 KiB chunks, the header as associated
//! data of every chunk, the last chunk marked), so a changed, cut or reordered byte is
//! refused. Inside the stream: a tar of `manifest.json`, `whacaster.db` (the snapshot,
//! itself SQLCipher-encrypted under a one-off key named in the manifest) and
//! `media/<name>` (the files' content, sealed again under the restored data dir's key).
//! No plaintext byte touches the disk: the snapshot is made by `sqlcipher_export` into
//! an encrypted file, and everything else is encrypted before it is written.

use crate::crypto::{self, DbKey};
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::stream::{DecryptorBE32, EncryptorBE32};
use chacha20poly1305::aead::{KeyInit, Payload};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

const MAGIC: &[u8; 8] = b"WHCBKP01";
const HEADER_LEN: usize = 8 + 1 + 12 + 16 + 19;
const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;
const MODE_PASSPHRASE: u8 = 1;
const MODE_KEY_FILE: u8 = 2;
/// argon2id for passphrases: 64 MiB, 3 passes (stored in the header, so they can grow).
const ARGON_MEMORY_KIB: u32 = 64 * 1024;
const ARGON_PASSES: u32 = 3;
/// The file name of backups the job and the CLI write (the schema-change copies in the
/// same directory are named `whacaster-schema*` and left alone).
const PREFIX: &str = "whacaster-backup-";
pub const SUFFIX: &str = ".wcbk";

/// What a backup is encrypted with. No `Debug` of the secret.
pub enum BackupKey {
    Passphrase { secret: Zeroizing<String>, origin: PathBuf },
    KeyFile { key: DbKey, origin: PathBuf },
}

impl BackupKey {
    /// What the admin must keep to restore, in one sentence.
    pub fn keep_note(&self) -> String {
        match self {
            BackupKey::Passphrase { origin, .. } => format!(
                "To restore it you need this backup file and the passphrase (now in {}): keep the passphrase written down away from this machine. The database key is not needed.",
                origin.display()
            ),
            BackupKey::KeyFile { origin, .. } => format!(
                "To restore it you need this backup file and a copy of the backup key file {}: keep that copy away from this machine. The database key is not needed.",
                origin.display()
            ),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            BackupKey::Passphrase { origin, .. } => format!("passphrase from {}", origin.display()),
            BackupKey::KeyFile { origin, .. } => format!("key file {}", origin.display()),
        }
    }

    pub fn read_passphrase(path: &Path) -> Result<BackupKey, String> {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the passphrase file {}: {e}", path.display()))?,
        );
        let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
        if line.chars().count() < 12 {
            return Err(format!(
                "the passphrase in {} is shorter than 12 characters",
                path.display()
            ));
        }
        Ok(BackupKey::Passphrase {
            secret: Zeroizing::new(line.to_string()),
            origin: path.to_path_buf(),
        })
    }

    pub fn read_key_file(path: &Path) -> Result<BackupKey, String> {
        Ok(BackupKey::KeyFile {
            key: DbKey::read(path)?,
            origin: path.to_path_buf(),
        })
    }

    /// The configured key: passphrase file, key file, the systemd credential
    /// `backup.key`, else `<data_dir>/backup.key` (made when `create` and missing).
    pub fn configured(cfg: &crate::config::Config, create: bool) -> Result<BackupKey, String> {
        if let Some(p) = &cfg.backup.passphrase_file {
            return Self::read_passphrase(p);
        }
        if let Some(p) = &cfg.backup.key_file {
            return Self::read_key_file(p);
        }
        if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
            let p = Path::new(&dir).join("backup.key");
            if p.exists() {
                return Self::read_key_file(&p);
            }
        }
        let p = cfg.data_dir.join("backup.key");
        if !p.exists() && create {
            DbKey::generate().write_new(&p)?;
        }
        if !p.exists() {
            return Err(format!(
                "no backup key: set backup.key_file or backup.passphrase_file, or pass --key-file / --passphrase-file ({} does not exist)",
                p.display()
            ));
        }
        Self::read_key_file(&p)
    }
}

/// The header fields and the stream key derived from them.
struct Header {
    bytes: [u8; HEADER_LEN],
    key: Zeroizing<[u8; 32]>,
    nonce: [u8; 19],
}

fn argon(secret: &str, salt: &[u8], m: u32, t: u32, p: u32) -> Result<Zeroizing<[u8; 32]>, String> {
    let params = argon2::Params::new(m, t, p, Some(32)).map_err(|e| format!("bad argon2 parameters: {e}"))?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; 32]);
    a.hash_password_into(secret.as_bytes(), salt, out.as_mut())
        .map_err(|e| format!("key derivation failed: {e}"))?;
    Ok(out)
}

fn derive(key: &BackupKey, salt: &[u8; 16], m: u32, t: u32, p: u32) -> Result<Zeroizing<[u8; 32]>, String> {
    match key {
        BackupKey::Passphrase { secret, .. } => argon(secret, salt, m, t, p),
        BackupKey::KeyFile { key, .. } => {
            let mut data = b"whacaster backup v1".to_vec();
            data.extend_from_slice(salt);
            Ok(Zeroizing::new(crypto::hmac_sha256(key.bytes(), &data)))
        }
    }
}

fn new_header(key: &BackupKey) -> Result<Header, String> {
    let (mode, m, t, p) = match key {
        BackupKey::Passphrase { .. } => (MODE_PASSPHRASE, ARGON_MEMORY_KIB, ARGON_PASSES, 1u32),
        BackupKey::KeyFile { .. } => (MODE_KEY_FILE, 0, 0, 0),
    };
    let salt = crypto::random_bytes::<16>();
    let nonce = crypto::random_bytes::<19>();
    let mut bytes = [0u8; HEADER_LEN];
    bytes[..8].copy_from_slice(MAGIC);
    bytes[8] = mode;
    bytes[9..13].copy_from_slice(&m.to_be_bytes());
    bytes[13..17].copy_from_slice(&t.to_be_bytes());
    bytes[17..21].copy_from_slice(&p.to_be_bytes());
    bytes[21..37].copy_from_slice(&salt);
    bytes[37..56].copy_from_slice(&nonce);
    Ok(Header {
        bytes,
        key: derive(key, &salt, m, t, p)?,
        nonce,
    })
}

fn parse_header(bytes: [u8; HEADER_LEN], key: &BackupKey) -> Result<Header, String> {
    if &bytes[..8] != MAGIC {
        return Err("not a Whacaster backup (its first bytes are not a backup header)".into());
    }
    let u32_at = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let (m, t, p) = (u32_at(9), u32_at(13), u32_at(17));
    match (bytes[8], key) {
        (MODE_PASSPHRASE, BackupKey::Passphrase { .. }) => {
            if m > 4 * 1024 * 1024 || t > 100 || p > 16 {
                return Err("the backup header asks for an unreasonable key derivation: damaged file".into());
            }
        }
        (MODE_KEY_FILE, BackupKey::KeyFile { .. }) => {}
        (MODE_PASSPHRASE, BackupKey::KeyFile { .. }) => {
            return Err("this backup was made with a passphrase: pass --passphrase-file".into());
        }
        (MODE_KEY_FILE, BackupKey::Passphrase { .. }) => {
            return Err("this backup was made with a backup key file: pass --key-file".into());
        }
        _ => return Err("the backup header is damaged (unknown key mode)".into()),
    }
    let mut salt = [0u8; 16];
    salt.copy_from_slice(&bytes[21..37]);
    let mut nonce = [0u8; 19];
    nonce.copy_from_slice(&bytes[37..56]);
    Ok(Header {
        bytes,
        key: derive(key, &salt, m, t, p)?,
        nonce,
    })
}

/// Encrypts everything written to it in authenticated chunks; `finish` writes the last.
struct EncryptWriter<W: Write> {
    inner: W,
    enc: Option<EncryptorBE32<XChaCha20Poly1305>>,
    aad: [u8; HEADER_LEN],
    buf: Vec<u8>,
}

fn io_err(msg: &str) -> std::io::Error {
    std::io::Error::other(msg.to_string())
}

impl<W: Write> EncryptWriter<W> {
    fn new(mut inner: W, h: &Header) -> std::io::Result<Self> {
        inner.write_all(&h.bytes)?;
        let cipher = XChaCha20Poly1305::new(h.key.as_ref().into());
        Ok(EncryptWriter {
            inner,
            enc: Some(EncryptorBE32::from_aead(cipher, h.nonce.as_ref().into())),
            aad: h.bytes,
            buf: Vec::with_capacity(CHUNK),
        })
    }

    fn finish(mut self) -> std::io::Result<W> {
        let enc = self.enc.take().ok_or_else(|| io_err("already finished"))?;
        let ct = enc
            .encrypt_last(Payload {
                msg: &self.buf,
                aad: &self.aad,
            })
            .map_err(|_| io_err("encryption failed"))?;
        self.inner.write_all(&ct)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for EncryptWriter<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() == CHUNK {
            let enc = self.enc.as_mut().ok_or_else(|| io_err("already finished"))?;
            let ct = enc
                .encrypt_next(Payload {
                    msg: &self.buf,
                    aad: &self.aad,
                })
                .map_err(|_| io_err("encryption failed"))?;
            self.inner.write_all(&ct)?;
            self.buf.clear();
        }
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Decrypts and authenticates chunk by chunk; a changed, missing or cut chunk is an error.
struct DecryptReader<R: Read> {
    inner: R,
    dec: Option<DecryptorBE32<XChaCha20Poly1305>>,
    aad: [u8; HEADER_LEN],
    ahead: Vec<u8>,
    plain: Zeroizing<Vec<u8>>,
    pos: usize,
    chunks: u64,
}

/// Fills `buf` as far as the reader goes; the count read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl<R: Read> DecryptReader<R> {
    fn new(mut inner: R, key: &BackupKey) -> Result<Self, String> {
        let mut bytes = [0u8; HEADER_LEN];
        let n = read_full(&mut inner, &mut bytes).map_err(|e| format!("cannot read the backup: {e}"))?;
        if n < HEADER_LEN {
            return Err("not a Whacaster backup, or truncated: the file is shorter than its header".into());
        }
        let h = parse_header(bytes, key)?;
        let cipher = XChaCha20Poly1305::new(h.key.as_ref().into());
        let mut ahead = vec![0u8; CHUNK + TAG];
        let n = read_full(&mut inner, &mut ahead).map_err(|e| format!("cannot read the backup: {e}"))?;
        ahead.truncate(n);
        Ok(DecryptReader {
            inner,
            dec: Some(DecryptorBE32::from_aead(cipher, h.nonce.as_ref().into())),
            aad: h.bytes,
            ahead,
            plain: Zeroizing::new(Vec::new()),
            pos: 0,
            chunks: 0,
        })
    }

    fn refused(&self) -> std::io::Error {
        io_err(&if self.chunks == 0 {
            "the backup does not decrypt: wrong backup key or passphrase, or the file was changed".to_string()
        } else {
            format!(
                "the backup is damaged or truncated: chunk {} fails authentication",
                self.chunks + 1
            )
        })
    }

    fn refill(&mut self) -> std::io::Result<bool> {
        if self.dec.is_none() {
            return Ok(false);
        }
        let mut next = vec![0u8; CHUNK + TAG];
        let n = read_full(&mut self.inner, &mut next)?;
        next.truncate(n);
        let current = std::mem::replace(&mut self.ahead, next);
        let plain = if self.ahead.is_empty() {
            let dec = self.dec.take().ok_or_else(|| io_err("finished"))?;
            dec.decrypt_last(Payload {
                msg: &current,
                aad: &self.aad,
            })
        } else {
            let dec = self.dec.as_mut().ok_or_else(|| io_err("finished"))?;
            if current.len() != CHUNK + TAG {
                return Err(self.refused());
            }
            dec.decrypt_next(Payload {
                msg: &current,
                aad: &self.aad,
            })
        };
        let plain = plain.map_err(|_| self.refused())?;
        self.chunks += 1;
        self.plain = Zeroizing::new(plain);
        self.pos = 0;
        Ok(true)
    }
}

impl<R: Read> Read for DecryptReader<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.plain.len() {
            if !self.refill()? {
                return Ok(0);
            }
        }
        let n = out.len().min(self.plain.len() - self.pos);
        out[..n].copy_from_slice(&self.plain[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The first entry of every backup.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    app_version: String,
    created_at: i64,
    schema: i64,
    /// The one-off SQLCipher key of the snapshot inside this (encrypted) file.
    snapshot_key: String,
    media_files: u64,
}

/// What a backup holds, as verified or written.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub path: PathBuf,
    pub size: u64,
    pub created_at: i64,
    pub schema: i64,
    pub media_files: u64,
    pub db_bytes: u64,
    /// Media files that could not be read while backing up (named in the log).
    pub media_skipped: u64,
}

fn private_dir(dir: &Path) -> Result<(), String> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

/// A scratch directory for an (encrypted) snapshot, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(parent: &Path) -> Result<Scratch, String> {
        let p = parent.join(format!(".whacaster-scratch-{}", crypto::random_token(9)));
        private_dir(parent)?;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&p)
            .map_err(|e| format!("cannot create {}: {e}", p.display()))?;
        Ok(Scratch(p))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        drop(std::fs::remove_dir_all(&self.0));
    }
}

fn tar_header(size: u64, mtime: i64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(size);
    h.set_mode(0o600);
    h.set_mtime(u64::try_from(mtime).unwrap_or(0));
    h.set_entry_type(tar::EntryType::Regular);
    h
}

/// What a backup is made from.
pub struct Source<'a> {
    pub conn: &'a Connection,
    pub media_dir: &'a Path,
    pub media_key: &'a [u8; 32],
    pub now: i64,
}

/// Writes a backup to `out` (which must not exist): the snapshot first (one read
/// transaction), then the media files. Written as `out.part` and renamed when whole.
pub fn create(src: &Source<'_>, key: &BackupKey, out: &Path) -> Result<Summary, String> {
    if out.exists() {
        return Err(format!("{} exists already", out.display()));
    }
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let scratch = Scratch::new(parent)?;
    let snapshot = scratch.0.join("snapshot.db");
    let snapshot_key = DbKey::generate();
    crate::store::export_copy(src.conn, &snapshot, &snapshot_key)?;
    let schema = crate::store::applied_versions(src.conn)
        .map_err(|e| e.to_string())?
        .into_iter()
        .max()
        .unwrap_or(0);
    let names = crate::whatsapp::media::stored_names(src.media_dir)?;
    let part = PathBuf::from(format!("{}.part", out.display()));
    drop(std::fs::remove_file(&part));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&part)
        .map_err(|e| format!("cannot create {}: {e}", part.display()))?;
    let written = (|| -> Result<(u64, u64, u64), String> {
        let io = |e: std::io::Error| format!("cannot write {}: {e}", part.display());
        let header = new_header(key)?;
        let w = EncryptWriter::new(std::io::BufWriter::new(file), &header).map_err(io)?;
        let mut tar = tar::Builder::new(w);
        let manifest = Zeroizing::new(
            serde_json::to_vec(&Manifest {
                format: 1,
                app_version: crate::VERSION.to_string(),
                created_at: src.now,
                schema,
                snapshot_key: snapshot_key.hex().to_string(),
                media_files: names.len() as u64,
            })
            .map_err(|e| e.to_string())?,
        );
        tar.append_data(
            &mut tar_header(manifest.len() as u64, src.now),
            "manifest.json",
            manifest.as_slice(),
        )
        .map_err(io)?;
        let db_file = std::fs::File::open(&snapshot).map_err(|e| format!("cannot read the snapshot: {e}"))?;
        let db_bytes = db_file.metadata().map_err(io)?.len();
        tar.append_data(&mut tar_header(db_bytes, src.now), "whacaster.db", db_file)
            .map_err(io)?;
        let store = crate::whatsapp::media::MediaStore::new(src.media_dir.to_path_buf(), *src.media_key);
        let (mut stored, mut skipped) = (0u64, 0u64);
        for name in &names {
            let plain = match store.read(name) {
                Ok(p) => Zeroizing::new(p),
                Err(e) => {
                    tracing::warn!(file = %name, error = %e, "backup: a media file cannot be read; left out");
                    skipped += 1;
                    continue;
                }
            };
            tar.append_data(
                &mut tar_header(plain.len() as u64, src.now),
                format!("media/{name}"),
                plain.as_slice(),
            )
            .map_err(io)?;
            stored += 1;
        }
        let w = tar.into_inner().map_err(io)?;
        let buf = w.finish().map_err(io)?;
        let file = buf.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        Ok((db_bytes, stored, skipped))
    })();
    let (db_bytes, stored, skipped) = match written {
        Ok(v) => v,
        Err(e) => {
            drop(std::fs::remove_file(&part));
            return Err(e);
        }
    };
    std::fs::rename(&part, out).map_err(|e| format!("cannot move the backup to {}: {e}", out.display()))?;
    let size = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    Ok(Summary {
        path: out.to_path_buf(),
        size,
        created_at: src.now,
        schema,
        media_files: stored,
        db_bytes,
        media_skipped: skipped,
    })
}

/// What to do with each entry while reading a backup.
trait Sink {
    fn database(&mut self, entry: &mut dyn Read, snapshot_key: &DbKey) -> Result<(), String>;
    fn media(&mut self, name: &str, plain: &[u8]) -> Result<(), String>;
}

/// Reads a whole backup (every chunk authenticated, to the last), handing entries to `sink`.
fn read_backup(path: &Path, key: &BackupKey, sink: &mut dyn Sink) -> Result<Summary, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let reader = DecryptReader::new(std::io::BufReader::new(file), key)?;
    let mut archive = tar::Archive::new(reader);
    let mut manifest: Option<Manifest> = None;
    let (mut db_bytes, mut media) = (None, 0u64);
    let bad = |e: std::io::Error| {
        let msg = e.to_string();
        if msg.starts_with("the backup") {
            msg
        } else {
            format!("the backup's content is damaged: {msg}")
        }
    };
    {
        let entries = archive.entries().map_err(bad)?;
        for entry in entries {
            let mut entry = entry.map_err(bad)?;
            let name = entry.path().map_err(bad)?.to_string_lossy().to_string();
            let size = entry.header().size().map_err(bad)?;
            if name == "manifest.json" {
                let mut text = Zeroizing::new(Vec::new());
                entry.read_to_end(&mut text).map_err(bad)?;
                manifest =
                    Some(serde_json::from_slice(&text).map_err(|e| format!("the backup's manifest is damaged: {e}"))?);
            } else if name == "whacaster.db" {
                let m = manifest
                    .as_ref()
                    .ok_or("the backup has no manifest before its database")?;
                let k = DbKey::parse(&m.snapshot_key, Path::new("manifest.json"))
                    .map_err(|_| "the backup's manifest is damaged (snapshot key)".to_string())?;
                sink.database(&mut entry, &k)?;
                db_bytes = Some(size);
            } else if let Some(media_name) = name
                .strip_prefix("media/")
                .filter(|n| crate::whatsapp::media::valid_stored_name(n))
            {
                if size > crate::whatsapp::media::MAX_INBOUND as u64 * 2 {
                    return Err(format!("the backup's media file {media_name} is too big: damaged?"));
                }
                let mut plain = Zeroizing::new(Vec::new());
                entry.read_to_end(&mut plain).map_err(bad)?;
                sink.media(media_name, &plain)?;
                media += 1;
            } else {
                return Err(format!("the backup holds an unexpected entry {name:?}"));
            }
        }
    }
    // The tar ends before the stream does: read to the end so the last chunk is
    // authenticated too (a cut after the archive's end would go unseen otherwise).
    std::io::copy(&mut archive.into_inner(), &mut std::io::sink()).map_err(bad)?;
    let m = manifest.ok_or("the backup has no manifest")?;
    let db_bytes = db_bytes.ok_or("the backup has no database")?;
    if media != m.media_files {
        return Err(format!(
            "the backup names {} media files but holds {media}",
            m.media_files
        ));
    }
    Ok(Summary {
        path: path.to_path_buf(),
        size,
        created_at: m.created_at,
        schema: m.schema,
        media_files: media,
        db_bytes,
        media_skipped: 0,
    })
}

fn copy_to_new_file(entry: &mut dyn Read, target: &Path) -> Result<(), String> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(target)
        .map_err(|e| format!("cannot create {}: {e}", target.display()))?;
    std::io::copy(entry, &mut f).map_err(|e| {
        let msg = e.to_string();
        if msg.starts_with("the backup") {
            msg
        } else {
            format!("cannot write {}: {msg}", target.display())
        }
    })?;
    f.sync_all()
        .map_err(|e| format!("cannot write {}: {e}", target.display()))
}

/// Checks an encrypted database file: integrity and every page's HMAC.
fn check_snapshot(path: &Path, key: &DbKey) -> Result<(), String> {
    let problems =
        crate::store::integrity_check(path, key).map_err(|e| format!("the backup's database does not open: {e}"))?;
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the backup's database fails its integrity check: {}",
            problems.join("; ")
        ))
    }
}

struct VerifySink {
    scratch: PathBuf,
    snapshot: Option<(PathBuf, DbKey)>,
}

impl Sink for VerifySink {
    fn database(&mut self, entry: &mut dyn Read, k: &DbKey) -> Result<(), String> {
        let p = self.scratch.join("verify.db");
        copy_to_new_file(entry, &p)?;
        self.snapshot = Some((p, k.clone()));
        Ok(())
    }

    fn media(&mut self, _name: &str, _plain: &[u8]) -> Result<(), String> {
        Ok(())
    }
}

/// Proves a backup restorable without restoring it: every byte decrypted and
/// authenticated, the database (still encrypted, in a scratch dir under `scratch_parent`)
/// opened and checked page by page.
pub fn verify(path: &Path, key: &BackupKey, scratch_parent: &Path) -> Result<Summary, String> {
    let scratch = Scratch::new(scratch_parent)?;
    let mut sink = VerifySink {
        scratch: scratch.0.clone(),
        snapshot: None,
    };
    let summary = read_backup(path, key, &mut sink)?;
    let (p, k) = sink.snapshot.ok_or("the backup has no database")?;
    check_snapshot(&p, &k)?;
    Ok(summary)
}

struct RestoreSink {
    staged: PathBuf,
    snapshot_key: Option<DbKey>,
    media: crate::whatsapp::media::MediaStore,
}

impl Sink for RestoreSink {
    fn database(&mut self, entry: &mut dyn Read, k: &DbKey) -> Result<(), String> {
        copy_to_new_file(entry, &self.staged)?;
        self.snapshot_key = Some(k.clone());
        Ok(())
    }

    fn media(&mut self, name: &str, plain: &[u8]) -> Result<(), String> {
        self.media.write_named(name, plain)
    }
}

/// Restores a backup into `data_dir`, which must be empty or absent. The database is
/// re-encrypted under the data dir's key (made now unless a systemd credential or
/// `WHACASTER_DB_KEY_FILE` names one), the media sealed under its media key, and the
/// result checked. On failure, what was written is removed again.
pub fn restore(path: &Path, key: &BackupKey, data_dir: &Path, db_path: &Path) -> Result<Summary, String> {
    match std::fs::read_dir(data_dir) {
        Ok(mut rd) => {
            if rd.next().is_some() {
                return Err(format!(
                    "{} is not empty: restore only into an empty data directory",
                    data_dir.display()
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => private_dir(data_dir)?,
        Err(e) => return Err(format!("cannot read {}: {e}", data_dir.display())),
    }
    let result = restore_into(path, key, data_dir, db_path);
    if result.is_err() {
        // The directory was empty: everything in it now is this attempt's.
        if let Ok(rd) = std::fs::read_dir(data_dir) {
            for e in rd.flatten() {
                let p = e.path();
                drop(if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                });
            }
        }
    }
    result
}

fn restore_into(path: &Path, key: &BackupKey, data_dir: &Path, db_path: &Path) -> Result<Summary, String> {
    let (db_key, _source) = crypto::load_db_key(data_dir, false, true)?;
    let media_dir = data_dir.join("media");
    private_dir(&media_dir)?;
    let staged = data_dir.join("restore-snapshot.db");
    let mut sink = RestoreSink {
        staged: staged.clone(),
        snapshot_key: None,
        media: crate::whatsapp::media::MediaStore::new(media_dir, db_key.media_key()),
    };
    let summary = read_backup(path, key, &mut sink)?;
    let snapshot_key = sink.snapshot_key.ok_or("the backup has no database")?;
    check_snapshot(&staged, &snapshot_key)?;
    {
        let conn = crate::store::open_connection(&staged, &snapshot_key).map_err(|e| e.to_string())?;
        crate::store::export_copy(&conn, db_path, &db_key)?;
    }
    std::fs::remove_file(&staged).map_err(|e| format!("cannot remove {}: {e}", staged.display()))?;
    let problems = crate::store::integrity_check(db_path, &db_key).map_err(|e| e.to_string())?;
    if !problems.is_empty() {
        return Err(format!(
            "the restored database fails its check: {}",
            problems.join("; ")
        ));
    }
    Ok(summary)
}

/// The name of a new backup made at `now`.
pub fn file_name(now: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(now).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{PREFIX}{:04}{:02}{:02}-{:02}{:02}{:02}{SUFFIX}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Deletes all but the newest `keep` backups in `dir` (only files this module names).
pub fn prune(dir: &Path, keep: usize) -> Result<usize, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(PREFIX) && n.ends_with(SUFFIX))
        })
        .collect();
    // The names sort by time.
    files.sort();
    let excess = files.len().saturating_sub(keep);
    for p in &files[..excess] {
        std::fs::remove_file(p).map_err(|e| format!("cannot remove {}: {e}", p.display()))?;
    }
    Ok(excess)
}

/// How long the post-backup command may run before it is stopped.
const POST_COMMAND_LIMIT: std::time::Duration = std::time::Duration::from_secs(3600);

/// Runs the configured post-backup command without a shell: the words of `template`,
/// `{file}` replaced by the backup's path in each. Stopped after an hour; its output
/// is not kept (a remote's address or token may be in it), only whether it succeeded.
pub fn run_post_command(template: &str, file: &Path) -> Result<String, String> {
    let words = shell_words::split(template).map_err(|e| format!("post_command: {e}"))?;
    let file = file.to_str().ok_or("the backup path is not UTF-8")?;
    let args: Vec<String> = words.iter().map(|w| w.replace("{file}", file)).collect();
    let (program, rest) = args.split_first().ok_or("post_command is empty")?;
    let mut child = std::process::Command::new(program)
        .args(rest)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("post_command {program}: {e}"))?;
    let started = std::time::Instant::now();
    loop {
        match child.try_wait().map_err(|e| format!("post_command {program}: {e}"))? {
            Some(status) if status.success() => return Ok(format!("post_command {program} done")),
            Some(status) => return Err(format!("post_command {program} failed ({status})")),
            None if started.elapsed() > POST_COMMAND_LIMIT => {
                drop(child.kill());
                drop(child.wait());
                return Err(format!(
                    "post_command {program} stopped after {} s",
                    POST_COMMAND_LIMIT.as_secs()
                ));
            }
            None => std::thread::sleep(std::time::Duration::from_millis(200)),
        }
    }
}

/// One backup made, as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub at: i64,
    pub file: String,
    pub size: i64,
    pub verified: bool,
    pub origin: String,
    pub detail: String,
}

pub fn insert_record(c: &Connection, r: &Record) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO backups (at, file, size, verified, origin, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![r.at, r.file, r.size, r.verified, r.origin, r.detail],
    )?;
    Ok(())
}

const RECORD_COLUMNS: &str = "at, file, size, verified, origin, detail";

fn record_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Record> {
    Ok(Record {
        at: r.get(0)?,
        file: r.get(1)?,
        size: r.get(2)?,
        verified: r.get(3)?,
        origin: r.get(4)?,
        detail: r.get(5)?,
    })
}

pub fn find_last(c: &Connection) -> rusqlite::Result<Option<Record>> {
    c.query_row(
        &format!("SELECT {RECORD_COLUMNS} FROM backups ORDER BY at DESC, id DESC LIMIT 1"),
        [],
        record_of,
    )
    .optional()
}

/// The last backup that verified.
pub fn find_last_verified(c: &Connection) -> rusqlite::Result<Option<Record>> {
    c.query_row(
        &format!("SELECT {RECORD_COLUMNS} FROM backups WHERE verified = 1 ORDER BY at DESC, id DESC LIMIT 1"),
        [],
        record_of,
    )
    .optional()
}

/// The daily job's handles.
#[derive(Clone)]
pub struct Backups {
    pub db: crate::store::Db,
    pub config: std::sync::Arc<crate::config::Config>,
    pub media_key: [u8; 32],
}

/// Who asked for a backup: the daily job, or `whacaster backup` (recorded and audited
/// as such).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Job,
    Cli,
}

/// Makes, verifies and records one backup, into `<data_dir>/backups` unless `out` says
/// where. A backup in that directory that verified then thins the directory to the newest
/// `backup.keep` and goes to the post-backup command; one that did not verify removes
/// nothing and is shipped nowhere, so a run of bad backups never pushes out the good ones.
pub fn back_up_now(
    b: &Backups,
    key: &BackupKey,
    out: Option<PathBuf>,
    origin: Origin,
    now: i64,
) -> Result<(Summary, Record), String> {
    let cfg = &b.config;
    let in_backups_dir = out.is_none();
    let dir = cfg.backups_dir();
    let out = match out {
        Some(p) => p,
        None => {
            private_dir(&dir)?;
            dir.join(file_name(now))
        }
    };
    let scratch_parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let media_dir = cfg.data_dir.join("media");
    let summary =
        b.db.read_blocking(|c| {
            create(
                &Source {
                    conn: c,
                    media_dir: &media_dir,
                    media_key: &b.media_key,
                    now,
                },
                key,
                &out,
            )
            .map_err(|e| crate::store::DbError::Work(e.into()))
        })
        .map_err(|e| e.to_string())?;
    let verified = verify(&out, key, &scratch_parent);
    let mut detail = match &verified {
        Ok(v) => format!(
            "{} media files, database {} bytes, schema {}",
            v.media_files, v.db_bytes, v.schema
        ),
        Err(e) => format!("verify failed: {e}"),
    };
    if summary.media_skipped > 0 {
        detail = format!("{detail}; {} unreadable media files left out", summary.media_skipped);
    }
    if in_backups_dir && verified.is_ok() {
        let pruned = prune(&dir, cfg.backup.keep as usize)?;
        detail = format!("{detail}; {pruned} older removed");
        if let Some(cmd) = &cfg.backup.post_command {
            match run_post_command(cmd, &out) {
                Ok(m) | Err(m) => {
                    detail.push_str("; ");
                    detail.push_str(&m);
                }
            }
        }
    }
    let record = Record {
        at: now,
        file: out.display().to_string(),
        size: i64::try_from(summary.size).unwrap_or(i64::MAX),
        verified: verified.is_ok(),
        origin: match origin {
            Origin::Job => "job",
            Origin::Cli => "cli",
        }
        .to_string(),
        detail: format!("{detail}; {}", key.describe()),
    };
    let r = record.clone();
    b.db.write_blocking(move |c| {
        insert_record(c, &r)?;
        let actor = match origin {
            Origin::Job => crate::audit::Actor::system(),
            Origin::Cli => crate::audit::Actor::cli(),
        };
        crate::audit::record(
            c,
            &actor,
            "backup.create",
            &r.file,
            &format!("size={} verified={}", r.size, r.verified),
            now,
        )?;
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    Ok((summary, record))
}

/// The job `back_up_data`.
pub async fn back_up_data(b: Backups, now: i64) -> Result<String, String> {
    if !b.config.backup.enabled {
        return Ok("backups are turned off (backup.enabled = false)".into());
    }
    let (summary, record) = tokio::task::spawn_blocking(move || {
        let key = BackupKey::configured(&b.config, true)?;
        back_up_now(&b, &key, None, Origin::Job, now)
    })
    .await
    .map_err(|e| e.to_string())??;
    if record.verified {
        Ok(format!(
            "{} ({} bytes, {} media files) written and verified",
            record.file, summary.size, summary.media_files
        ))
    } else {
        Err(format!("{} written but did not verify: {}", record.file, record.detail))
    }
}

/// The backup facts for the evidence page.
pub fn facts(c: &Connection, now: i64) -> rusqlite::Result<Vec<super::evidence::Fact>> {
    use super::evidence::{Fact, Light};
    // What a restore can rely on is the last backup that verified; a newer one that did
    // not is named beside it.
    let fact = match (find_last_verified(c)?, find_last(c)?) {
        (None, None) => Fact::new("backup", Light::Red, "no backup has been made yet"),
        (None, Some(_)) => Fact::new("backup", Light::Red, "no backup has verified yet"),
        (Some(r), last) => {
            let age_h = (now - r.at) / 3600;
            let when = crate::clock::format_unix(r.at, None);
            let mut text = format!("last verified backup {when} ({age_h} h ago), {} bytes", r.size);
            let failed_since = last.is_some_and(|l| !l.verified && l.at > r.at);
            if failed_since {
                text.push_str("; a newer backup did NOT verify");
            }
            let light = if age_h > 72 {
                Light::Red
            } else if age_h > 26 || failed_since {
                Light::Amber
            } else {
                Light::Green
            };
            Fact::new("backup", light, text)
        }
    };
    Ok(vec![fact])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> BackupKey {
        BackupKey::KeyFile {
            key: DbKey::generate(),
            origin: PathBuf::from("k"),
        }
    }

    fn round(data: &[u8], k: &BackupKey) -> Vec<u8> {
        let h = new_header(k).unwrap();
        let mut w = EncryptWriter::new(Vec::new(), &h).unwrap();
        w.write_all(data).unwrap();
        w.finish().unwrap()
    }

    fn back(ct: &[u8], k: &BackupKey) -> Result<Vec<u8>, String> {
        let mut r = DecryptReader::new(ct, k)?;
        let mut out = Vec::new();
        r.read_to_end(&mut out).map_err(|e| e.to_string())?;
        Ok(out)
    }

    #[test]
    fn stream_round_trips_at_chunk_edges_and_refuses_changes_and_cuts() {
        let k = key();
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK] {
            let data: Vec<u8> = (0..len).map(|i| u8::try_from(i % 251).unwrap()).collect();
            let ct = round(&data, &k);
            assert_eq!(back(&ct, &k).unwrap(), data, "len {len}");
            if len > 0 {
                let mut bad = ct.clone();
                let i = bad.len() / 2;
                bad[i] ^= 1;
                assert!(back(&bad, &k).is_err(), "a flipped byte, len {len}");
            }
            assert!(back(&ct[..ct.len() - 1], &k).is_err(), "cut by one, len {len}");
            if ct.len() > HEADER_LEN + CHUNK + TAG {
                assert!(
                    back(&ct[..HEADER_LEN + CHUNK + TAG], &k).is_err(),
                    "cut at a chunk, len {len}"
                );
            }
        }
        let ct = round(b"hello", &k);
        assert!(back(&ct, &key()).unwrap_err().contains("wrong backup key"));
    }

    #[test]
    fn passphrase_mode_is_told_apart_from_key_file_mode() {
        let p = BackupKey::Passphrase {
            secret: Zeroizing::new("correct horse battery".into()),
            origin: PathBuf::from("p"),
        };
        let ct = round(b"x", &p);
        assert_eq!(back(&ct, &p).unwrap(), b"x");
        assert!(back(&ct, &key()).unwrap_err().contains("--passphrase-file"));
    }

    #[test]
    fn media_names_cannot_walk_paths() {
        assert!(crate::whatsapp::media::valid_stored_name("abcDEF_-12.bin"));
        assert!(!crate::whatsapp::media::valid_stored_name("../x.bin"));
        assert!(!crate::whatsapp::media::valid_stored_name("a/b.bin"));
        assert!(!crate::whatsapp::media::valid_stored_name(".x.bin"));
        assert!(!crate::whatsapp::media::valid_stored_name("x.tmp"));
    }

    #[test]
    fn file_names_sort_by_time() {
        assert!(file_name(1_700_000_000) < file_name(1_700_086_400));
        assert!(file_name(0).starts_with(PREFIX));
    }
}
