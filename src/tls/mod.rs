//! TLS: rustls (TLS 1.2 and 1.3 only) with a certificate that can be swapped while
//! serving: self-signed (rcgen, persisted, renewed before expiry), from files
//! (reloaded on SIGHUP), or from an ACME CA (`acme`). Meta only delivers webhooks to a
//! CA-issued certificate.

pub mod acme;

use crate::config::{Config, TlsMode};
use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use time::OffsetDateTime;

/// Renew a self-signed certificate this long before it expires.
pub const RENEW_BEFORE_DAYS: i64 = 30;
/// Lifetime of a self-signed certificate.
pub const SELF_SIGNED_DAYS: i64 = 365;

/// What the admin pages and `check` show about the certificate in use.
#[derive(Debug, Clone)]
pub struct CertInfo {
    pub mode: TlsMode,
    pub issuer: String,
    pub subject_names: Vec<String>,
    pub not_after: i64,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
}

impl CertInfo {
    pub fn mode_is_self_signed(&self) -> bool {
        self.mode == TlsMode::SelfSigned
    }
}

/// The certificate being served, replaceable at run time.
#[derive(Debug)]
pub struct CertState {
    /// The self-signed or file certificate (in ACME mode: the fallback until issuance).
    current: RwLock<(Arc<CertifiedKey>, CertInfo)>,
    acme: Option<acme::Acme>,
}

#[derive(Debug)]
struct Resolver(Arc<CertState>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let issued = self.0.acme.as_ref().and_then(|a| a.resolve(hello));
        issued.or_else(|| self.0.current.read().ok().map(|c| Arc::clone(&c.0)))
    }
}

impl CertState {
    /// The certificate people get: the ACME one once issued, else the local one.
    pub fn info(&self) -> Option<CertInfo> {
        let issued = self
            .acme
            .as_ref()
            .and_then(|a| a.info.read().ok().and_then(|i| i.clone()));
        issued.or_else(|| self.current.read().ok().map(|c| c.1.clone()))
    }

    fn replace(&self, key: Arc<CertifiedKey>, info: CertInfo) {
        if let Ok(mut c) = self.current.write() {
            *c = (key, info);
        }
    }

    /// Re-reads the files (SIGHUP in `files` mode); the old certificate stays on error.
    pub fn reload(&self, cfg: &Config, now: OffsetDateTime) -> Result<String, String> {
        let (key, info) = load(cfg, now)?;
        let msg = format!(
            "certificate reloaded, valid until {}",
            crate::clock::format_unix(info.not_after, None)
        );
        self.replace(key, info);
        Ok(msg)
    }

    /// For the self-signed mode: a new certificate when the current one is close to expiry.
    pub fn renew_if_needed(&self, cfg: &Config, now: OffsetDateTime) -> Result<String, String> {
        if cfg.tls.mode == TlsMode::Files {
            return Ok("certificate from files; renewed outside Whacaster".into());
        }
        let info = self
            .current
            .read()
            .map_err(|_| "certificate state unavailable")?
            .1
            .clone();
        if !needs_renewal(&info, cfg, now) {
            return Ok(format!(
                "valid until {}",
                crate::clock::format_unix(info.not_after, None)
            ));
        }
        let (key, info) = load(cfg, now)?;
        let msg = format!(
            "renewed, valid until {}",
            crate::clock::format_unix(info.not_after, None)
        );
        self.replace(key, info);
        Ok(msg)
    }
}

/// Installs the process-wide crypto provider (rustls 0.23 wants exactly one).
pub fn install_crypto_provider() {
    // Refused when one is installed already: every server the test binary starts calls this.
    drop(rustls::crypto::ring::default_provider().install_default());
}

/// Loads (or makes) the certificate for the configured mode; `None` when TLS is off.
/// In ACME mode this starts the ACME client (call it inside the async runtime);
/// `acme_cache_key` encrypts its cache.
pub fn prepare(cfg: &Config, now: OffsetDateTime, acme_cache_key: [u8; 32]) -> Result<Option<Arc<CertState>>, String> {
    if cfg.tls.mode == TlsMode::Off {
        return Ok(None);
    }
    let (key, info) = load(cfg, now)?;
    let acme = if cfg.tls.mode == TlsMode::Acme {
        Some(acme::start(cfg, acme_cache_key)?)
    } else {
        None
    };
    Ok(Some(Arc::new(CertState {
        current: RwLock::new((key, info)),
        acme,
    })))
}

pub fn server_config(state: Arc<CertState>) -> Result<rustls::ServerConfig, String> {
    let acme = state.acme.is_some();
    let mut config =
        rustls::ServerConfig::builder_with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Resolver(state)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    if acme {
        // TLS-ALPN-01: the CA proves control of the name on this very port.
        config
            .alpn_protocols
            .push(rustls_acme::acme::ACME_TLS_ALPN_NAME.to_vec());
    }
    Ok(config)
}

fn self_signed_paths(cfg: &Config) -> (PathBuf, PathBuf) {
    (cfg.tls_dir().join("cert.pem"), cfg.tls_dir().join("key.pem"))
}

/// The names a self-signed certificate must cover.
fn wanted_names(cfg: &Config) -> Vec<String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    if let Some(h) = cfg.public_host() {
        if !names.contains(&h) {
            names.push(h);
        }
    }
    names
}

fn needs_renewal(info: &CertInfo, cfg: &Config, now: OffsetDateTime) -> bool {
    let soon = now.unix_timestamp() + RENEW_BEFORE_DAYS * 86_400;
    info.not_after <= soon || wanted_names(cfg).iter().any(|n| !info.subject_names.contains(n))
}

fn load(cfg: &Config, now: OffsetDateTime) -> Result<(Arc<CertifiedKey>, CertInfo), String> {
    match cfg.tls.mode {
        TlsMode::Files => {
            let (cert, key) = match (&cfg.tls.cert, &cfg.tls.key) {
                (Some(c), Some(k)) => (c.clone(), k.clone()),
                _ => return Err("tls.mode = \"files\" needs tls.cert and tls.key".into()),
            };
            let (ck, info) = read_pair(&cert, &key, TlsMode::Files)?;
            if info.not_after <= now.unix_timestamp() {
                return Err(format!(
                    "the certificate {} expired on {}: renew it (or switch tls.mode)",
                    cert.display(),
                    crate::clock::format_unix(info.not_after, None)
                ));
            }
            Ok((ck, info))
        }
        TlsMode::SelfSigned | TlsMode::Acme => {
            let (cert, key) = self_signed_paths(cfg);
            if cert.exists() && key.exists() {
                match read_pair(&cert, &key, TlsMode::SelfSigned) {
                    Ok((ck, info)) if !needs_renewal(&info, cfg, now) => return Ok((ck, info)),
                    Ok(_) => tracing::info!("self-signed certificate is due for renewal"),
                    Err(e) => {
                        tracing::warn!(error = %e, "self-signed certificate unreadable; making a new one");
                    }
                }
            }
            make_self_signed(cfg, now, &cert, &key)?;
            read_pair(&cert, &key, TlsMode::SelfSigned)
        }
        TlsMode::Off => Err("TLS is off".into()),
    }
}

fn make_self_signed(cfg: &Config, now: OffsetDateTime, cert_path: &Path, key_path: &Path) -> Result<(), String> {
    let dir = cfg.tls_dir();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut params = rcgen::CertificateParams::new(wanted_names(cfg)).map_err(|e| format!("certificate names: {e}"))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Whacaster (self-signed)");
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(SELF_SIGNED_DAYS);
    let key = rcgen::KeyPair::generate().map_err(|e| format!("key generation: {e}"))?;
    let cert = params.self_signed(&key).map_err(|e| format!("certificate: {e}"))?;
    crate::crypto::write_private_file(key_path, key.serialize_pem().as_bytes())?;
    crate::crypto::write_private_file(cert_path, cert.pem().as_bytes())?;
    tracing::info!(path = %cert_path.display(), "made a self-signed certificate");
    Ok(())
}

fn read_pair(cert_path: &Path, key_path: &Path, mode: TlsMode) -> Result<(Arc<CertifiedKey>, CertInfo), String> {
    let cert_pem =
        std::fs::read(cert_path).map_err(|e| format!("cannot read certificate {}: {e}", cert_path.display()))?;
    let key_pem = std::fs::read(key_path).map_err(|e| format!("cannot read key {}: {e}", key_path.display()))?;
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("certificate {} is not PEM: {e}", cert_path.display()))?;
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| format!("key {} is not PEM: {e}", key_path.display()))?
        .ok_or_else(|| format!("no private key in {}", key_path.display()))?;
    let signing = any_supported_type(&key).map_err(|e| format!("unsupported key {}: {e}", key_path.display()))?;
    let info = parse_cert_info(&cert_pem, mode, cert_path, key_path)?;
    let ck = CertifiedKey::new(certs, signing);
    Ok((Arc::new(ck), info))
}

/// Issuer, names and expiry of the first certificate in a PEM blob.
pub fn parse_cert_info(pem: &[u8], mode: TlsMode, cert_path: &Path, key_path: &Path) -> Result<CertInfo, String> {
    let first = rustls_pemfile::certs(&mut &pem[..])
        .next()
        .ok_or_else(|| format!("no certificate in {}", cert_path.display()))?
        .map_err(|e| format!("certificate {} is not PEM: {e}", cert_path.display()))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(first.as_ref())
        .map_err(|e| format!("certificate {} cannot be parsed: {e}", cert_path.display()))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = parsed.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                x509_parser::extensions::GeneralName::DNSName(d) => names.push(d.to_string()),
                x509_parser::extensions::GeneralName::IPAddress(ip) => {
                    if let Ok(b) = <[u8; 4]>::try_from(*ip) {
                        names.push(std::net::Ipv4Addr::from(b).to_string());
                    }
                }
                _ => {}
            }
        }
    }
    Ok(CertInfo {
        mode,
        issuer: parsed.issuer().to_string(),
        subject_names: names,
        not_after: parsed.validity().not_after.timestamp(),
        cert_path: cert_path.to_path_buf(),
        key_path: key_path.to_path_buf(),
    })
}

/// Reads certificate facts without serving it (for `check`).
/// In ACME mode the issued certificate is read from the encrypted cache
/// (`acme_cache_key`); until one is issued, the self-signed fallback is shown.
pub fn inspect(cfg: &Config, acme_cache_key: Option<[u8; 32]>) -> Result<Option<CertInfo>, String> {
    if let (TlsMode::Acme, Some(k)) = (cfg.tls.mode, acme_cache_key) {
        if let Some(info) = acme::inspect(cfg, k)? {
            return Ok(Some(info));
        }
    }
    let (cert, key, mode) = match cfg.tls.mode {
        TlsMode::Off => return Ok(None),
        TlsMode::Files => match (&cfg.tls.cert, &cfg.tls.key) {
            (Some(c), Some(k)) => (c.clone(), k.clone(), TlsMode::Files),
            _ => return Err("tls.mode = \"files\" needs tls.cert and tls.key".into()),
        },
        TlsMode::SelfSigned | TlsMode::Acme => {
            let (c, k) = self_signed_paths(cfg);
            if !c.exists() {
                return Ok(None);
            }
            (c, k, TlsMode::SelfSigned)
        }
    };
    read_pair(&cert, &key, mode).map(|(_, info)| Some(info))
}
/// The job `renew_self_signed_certificate` (file and key work, off the async workers).
pub async fn renew_self_signed_certificate(
    tls: Option<Arc<CertState>>,
    cfg: Arc<Config>,
    now: OffsetDateTime,
) -> Result<String, String> {
    let Some(tls) = tls else {
        return Ok("TLS is off; nothing to renew".into());
    };
    tokio::task::spawn_blocking(move || tls.renew_if_needed(&cfg, now))
        .await
        .map_err(|e| e.to_string())?
}
