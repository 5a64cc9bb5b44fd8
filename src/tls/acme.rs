//! Certificates from an ACME CA (Let's Encrypt by default) with the TLS-ALPN-01
//! challenge on the HTTPS port, by `rustls-acme`. Until the first certificate is in
//! hand (and for clients that ask for no name) the self-signed one is served; a
//! renewed certificate replaces the old one only once it has been issued.
//! The ACME account key and the certificate with its key are cached in
//! `data_dir/acme`, encrypted (AES-256-GCM, key derived from the database key).

use super::{CertInfo, parse_cert_info};
use crate::config::{Config, TlsMode};
use crate::crypto;
use futures_util::StreamExt;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_acme::{AcmeConfig, ResolvesServerCertAcme};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// The ACME side of the certificate state.
#[derive(Debug)]
pub struct Acme {
    resolver: Arc<ResolvesServerCertAcme>,
    /// Facts of the certificate issued (or loaded from the cache) last.
    pub info: Arc<RwLock<Option<CertInfo>>>,
}

impl Acme {
    pub fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.resolver.resolve(hello)
    }
}

/// An encrypted, 0600 file cache for rustls-acme. File work runs on the blocking pool.
#[derive(Clone)]
struct SealedDirCache {
    dir: PathBuf,
    key: [u8; 32],
    info: Arc<RwLock<Option<CertInfo>>>,
}

fn name(prefix: &str, parts: &[String], directory: &str) -> String {
    let mut data = parts.join("\0");
    data.push('\0');
    data.push_str(directory);
    format!("{prefix}-{}.enc", &crypto::sha256_hex(data.as_bytes())[..24])
}

impl SealedDirCache {
    fn read(&self, file: &str) -> Result<Option<Vec<u8>>, String> {
        match std::fs::read(self.dir.join(file)) {
            Ok(sealed) => crypto::open(&self.key, &sealed).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{file}: {e}")),
        }
    }

    fn write(&self, file: &str, plain: &[u8]) -> Result<(), String> {
        crypto::write_private_file(&self.dir.join(file), &crypto::seal(&self.key, plain)?)
    }

    /// Runs file work off the async workers.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&SealedDirCache) -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(&me))
            .await
            .map_err(|e| e.to_string())?
    }

    fn note_cert(&self, pem: &[u8]) {
        if let Ok(info) = parse_cert_info(pem, TlsMode::Acme, &self.dir, &self.dir) {
            if let Ok(mut slot) = self.info.write() {
                *slot = Some(info);
            }
        }
    }
}

#[async_trait::async_trait]
impl rustls_acme::CertCache for SealedDirCache {
    type EC = String;
    async fn load_cert(&self, domains: &[String], directory_url: &str) -> Result<Option<Vec<u8>>, String> {
        let file = name("cert", domains, directory_url);
        self.blocking(move |me| {
            let cert = me.read(&file)?;
            if let Some(pem) = &cert {
                me.note_cert(pem);
            }
            Ok(cert)
        })
        .await
    }
    async fn store_cert(&self, domains: &[String], directory_url: &str, cert: &[u8]) -> Result<(), String> {
        let (file, cert) = (name("cert", domains, directory_url), cert.to_vec());
        self.blocking(move |me| {
            me.write(&file, &cert)?;
            me.note_cert(&cert);
            Ok(())
        })
        .await
    }
}

#[async_trait::async_trait]
impl rustls_acme::AccountCache for SealedDirCache {
    type EA = String;
    async fn load_account(&self, contact: &[String], directory_url: &str) -> Result<Option<Vec<u8>>, String> {
        let file = name("account", contact, directory_url);
        self.blocking(move |me| me.read(&file)).await
    }
    async fn store_account(&self, contact: &[String], directory_url: &str, account: &[u8]) -> Result<(), String> {
        let (file, account) = (name("account", contact, directory_url), account.to_vec());
        self.blocking(move |me| me.write(&file, &account)).await
    }
}

pub fn cache_dir(cfg: &Config) -> PathBuf {
    cfg.data_dir.join("acme")
}

/// Client TLS settings for talking to the ACME server: the public roots, plus the
/// configured extra root (a private CA, or Pebble in tests).
fn client_config(extra_root: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra_root {
        let pem = std::fs::read(path).map_err(|e| format!("cannot read tls.acme_ca_root {}: {e}", path.display()))?;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.map_err(|e| format!("tls.acme_ca_root {}: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("tls.acme_ca_root {}: {e}", path.display()))?;
        }
    }
    Ok(Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

/// Starts the ACME state machine (order, challenge, renewal) in the background.
/// Must be called inside the server's async runtime.
pub fn start(cfg: &Config, cache_key: [u8; 32]) -> Result<Acme, String> {
    let domain = cfg
        .public_host()
        .ok_or("tls.mode = \"acme\" needs public_url with the server's DNS name")?;
    let email = cfg
        .tls
        .acme_email
        .clone()
        .ok_or("tls.mode = \"acme\" needs tls.acme_email")?;
    let info = Arc::new(RwLock::new(None));
    let cache = SealedDirCache {
        dir: cache_dir(cfg),
        key: cache_key,
        info: Arc::clone(&info),
    };
    let mut state =
        AcmeConfig::new_with_client_config([domain.clone()], client_config(cfg.tls.acme_ca_root.as_deref())?)
            .contact_push(format!("mailto:{email}"))
            .directory(&cfg.tls.acme_directory)
            .cache(cache)
            .state();
    let resolver = state.resolver();
    tokio::spawn(async move {
        while let Some(event) = state.next().await {
            match event {
                Ok(ok) => tracing::info!(domain = %domain, event = ?ok, "ACME"),
                Err(err) => {
                    tracing::error!(domain = %domain, error = %err, "ACME certificate not obtained yet; will retry");
                }
            }
        }
    });
    Ok(Acme { resolver, info })
}

/// The cached ACME certificate's facts, for `whacaster check` (needs the database key).
pub fn inspect(cfg: &Config, cache_key: [u8; 32]) -> Result<Option<CertInfo>, String> {
    let dir = cache_dir(cfg);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(None);
    };
    let mut newest: Option<CertInfo> = None;
    for e in entries.flatten() {
        let fname = e.file_name().to_string_lossy().to_string();
        if !(fname.starts_with("cert-") && Path::new(&fname).extension().is_some_and(|x| x == "enc")) {
            continue;
        }
        let sealed = std::fs::read(e.path()).map_err(|e| e.to_string())?;
        let pem = crypto::open(&cache_key, &sealed).map_err(|err| format!("{}: {err}", e.path().display()))?;
        let info = parse_cert_info(&pem, TlsMode::Acme, &e.path(), &e.path())?;
        if newest.as_ref().is_none_or(|n| info.not_after > n.not_after) {
            newest = Some(info);
        }
    }
    Ok(newest)
}
