//! Secrets and randomness: the database key file, random tokens, hashes of tokens,
//! constant-time comparison, and AES-256-GCM for data kept outside the database.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The 32-byte raw SQLCipher key. `Debug` never shows it.
#[derive(Clone)]
pub struct DbKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for DbKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DbKey(redacted)")
    }
}

/// A secret carried in a struct (an access token, an app secret): `Debug` and logs
/// show `***`, the memory is wiped when it is dropped, and the value is read with
/// `expose()` only where it is used.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(Zeroizing::new(s.into()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl rusqlite::types::FromSql for Secret {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        String::column_result(v).map(Secret::new)
    }
}

/// Where the key came from, for `check` and the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    SystemdCredential(PathBuf),
    EnvFile(PathBuf),
    DataDir(PathBuf),
}

impl KeySource {
    pub fn path(&self) -> &Path {
        match self {
            KeySource::SystemdCredential(p) | KeySource::EnvFile(p) | KeySource::DataDir(p) => p,
        }
    }
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::SystemdCredential(p) => write!(f, "systemd credential {}", p.display()),
            KeySource::EnvFile(p) => write!(f, "WHACASTER_DB_KEY_FILE {}", p.display()),
            KeySource::DataDir(p) => write!(f, "key file {}", p.display()),
        }
    }
}

impl DbKey {
    pub fn generate() -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(k.as_mut());
        DbKey(k)
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Upper-case hex, as SQLCipher's raw key syntax wants it.
    pub fn hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode_upper(self.0.as_ref()))
    }

    /// Parses a key file: 64 hex characters, surrounding white space ignored.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, String> {
        let t = text.trim();
        if t.len() != 64 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "key file {} must hold exactly 64 hex characters (a 32-byte key)",
                origin.display()
            ));
        }
        let mut k = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(t, k.as_mut()).map_err(|e| format!("key file {}: {e}", origin.display()))?;
        Ok(DbKey(k))
    }

    pub fn read(path: &Path) -> Result<Self, String> {
        let text = Zeroizing::new(
            std::fs::read_to_string(path).map_err(|e| format!("cannot read key file {}: {e}", path.display()))?,
        );
        Self::parse(&text, path)
    }

    /// Writes the key to a new file with mode 0600; fails if the file exists. Written
    /// whole to a temporary file first and then linked into place, so a crash (kill -9,
    /// power) never leaves an empty or half-written `db.key` behind to refuse the next
    /// start.
    pub fn write_new(&self, path: &Path) -> Result<(), String> {
        let tmp = PathBuf::from(format!("{}.new", path.display()));
        drop(std::fs::remove_file(&tmp));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| format!("cannot create key file {}: {e}", tmp.display()))?;
        let mut text = self.hex();
        text.push('\n');
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| format!("cannot write key file {}: {e}", tmp.display()))?;
        drop(f);
        // A hard link does not replace an existing file: a key never overwrites a key.
        let linked =
            std::fs::hard_link(&tmp, path).map_err(|e| format!("cannot create key file {}: {e}", path.display()));
        drop(std::fs::remove_file(&tmp));
        linked?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| format!("cannot sync {}: {e}", dir.display()))?;
        }
        Ok(())
    }

    /// A key for one purpose, derived from the database key (HMAC-SHA256), so that
    /// CSRF tokens or media encryption need no second secret to manage.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        hmac_sha256(self.bytes(), purpose.as_bytes())
    }

    /// The key media files are sealed with (AES-256-GCM), derived from this key: the
    /// server, `rekey` and `restore` agree on it through this one function.
    pub fn media_key(&self) -> [u8; 32] {
        self.derive("whacaster media v1")
    }
}

/// Finds the database key: systemd credential, then `WHACASTER_DB_KEY_FILE`, then the
/// data dir's `db.key`. With `create`, a missing data-dir key is made (only when no
/// database exists yet, so a lost key is never silently replaced).
pub fn load_db_key(data_dir: &Path, db_exists: bool, create: bool) -> Result<(DbKey, KeySource), String> {
    if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
        let p = Path::new(&dir).join("db.key");
        if p.exists() {
            return Ok((DbKey::read(&p)?, KeySource::SystemdCredential(p)));
        }
    }
    if let Some(p) = std::env::var_os("WHACASTER_DB_KEY_FILE") {
        let p = PathBuf::from(p);
        return Ok((DbKey::read(&p)?, KeySource::EnvFile(p)));
    }
    let p = data_dir.join("db.key");
    if p.exists() {
        return Ok((DbKey::read(&p)?, KeySource::DataDir(p)));
    }
    if db_exists {
        return Err(format!(
            "the database exists but its key file {} is missing: restore the key file (or set WHACASTER_DB_KEY_FILE)",
            p.display()
        ));
    }
    if !create {
        return Err(format!("no database key found at {}", p.display()));
    }
    let key = DbKey::generate();
    key.write_new(&p)?;
    Ok((key, KeySource::DataDir(p)))
}

/// Mode bits of a file that grant anything to group or others (0 when private).
pub fn loose_permissions(path: &Path) -> std::io::Result<u32> {
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o077)
}

/// Writes `data` to `path` with mode 0600 through a temporary file in the same
/// directory (made 0700 if missing) and a rename: never half-written, never readable
/// by others. Callers pass ciphertext or key material only.
pub fn write_private_file(path: &Path, data: &[u8]) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let tmp = PathBuf::from(format!("{}.tmp", path.display()));
    // A leftover of an interrupted write, usually absent; if it cannot go, `create_new`
    // below fails and says why.
    drop(std::fs::remove_file(&tmp));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// `n` random bytes as URL-safe base64 (no padding).
pub fn random_token(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

/// SHA-256 as lower-case hex: how tokens are stored (never the token itself).
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length; the error branch cannot happen.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
        return [0u8; 32];
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// AES-256-GCM with a random 96-bit nonce; output = nonce || ciphertext+tag.
/// Used for everything that must live outside SQLCipher (media, certificates' keys).
pub fn seal(key: &[u8; 32], plaintext: &[u8]) -> Result<Vec<u8>, String> {
    let cipher = Aes256Gcm::new_from_slice(key).map_err(|e| e.to_string())?;
    let nonce_bytes = random_bytes::<12>();
    let mut out = nonce_bytes.to_vec();
    let ct = cipher
        .encrypt(Nonce::from_slice(&nonce_bytes), plaintext)
        .map_err(|_| "encryption failed".to_string())?;
    out.extend_from_slice(&ct);
    Ok(out)
}

pub fn open(key: &[u8; 32], sealed: &[u8]) -> Result<Vec<u8>, String> {
    if sealed.len() < 12 + 16 {
        return Err("sealed data too short".into());
    }
    let cipher = Aes256Gcm::new_from_slice(key).map_err(|e| e.to_string())?;
    cipher
        .decrypt(Nonce::from_slice(&sealed[..12]), &sealed[12..])
        .map_err(|_| "decryption failed (wrong key or damaged data)".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_file_is_whole_or_absent_and_never_replaces_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("db.key");
        // A leftover of a crash mid-write does not stand in the way, and is gone after.
        std::fs::write(dir.path().join("db.key.new"), b"").unwrap();
        let k = DbKey::generate();
        k.write_new(&p).unwrap();
        assert_eq!(DbKey::read(&p).unwrap().hex(), k.hex());
        assert!(!dir.path().join("db.key.new").exists());
        assert_eq!(loose_permissions(&p).unwrap(), 0);
        assert!(DbKey::generate().write_new(&p).is_err(), "never over an existing key");
        assert_eq!(DbKey::read(&p).unwrap().hex(), k.hex());
    }

    #[test]
    fn key_file_round_trip_and_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        let k = DbKey::generate();
        k.write_new(&p).unwrap();
        assert_eq!(loose_permissions(&p).unwrap(), 0);
        assert_eq!(DbKey::read(&p).unwrap().bytes(), k.bytes());
        assert!(k.write_new(&p).is_err(), "never overwrites a key");
        assert!(DbKey::parse("abc", &p).is_err());
        assert!(DbKey::parse(&"zz".repeat(32), &p).is_err());
        assert!(!format!("{k:?}").contains(&k.hex()[..8]));
    }

    #[test]
    fn seal_open() {
        let key = random_bytes::<32>();
        let s = seal(&key, b"hello").unwrap();
        assert_eq!(open(&key, &s).unwrap(), b"hello");
        let other = random_bytes::<32>();
        assert!(open(&other, &s).is_err());
        assert!(!s.windows(5).any(|w| w == b"hello"));
    }
}
