//! Configuration: defaults < TOML file (`--config`, `WHACASTER_CONFIG`) < `WHACASTER_*` env < flags.
//! Validated once at start; an unknown key is an error that names it.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The default ACME directory (Let's Encrypt production).
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// The packaged configuration, used when no other file is named (so that
/// `sudo whacaster setup-url` finds the installed server's data).
pub const SYSTEM_CONFIG: &str = "/etc/whacaster/whacaster.toml";

/// Environment variables that are read directly, not config keys.
const NON_CONFIG_ENV: &[&str] = &["config", "db_key_file"];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address and port to listen on.
    pub listen: String,
    /// Where the encrypted database, key file, certificates and media live.
    pub data_dir: PathBuf,
    /// The public base URL (`https://wa.example.co.id`), used in links and the certificate.
    pub public_url: Option<String>,
    /// `error`, `warn`, `info`, `debug` or a tracing filter.
    pub log_level: String,
    /// `json` for journald/log shippers, `text` for people.
    pub log_format: LogFormat,
    /// With `tls.mode = "off"`: allow listening on a non-loopback address.
    pub allow_insecure_public: bool,
    /// Proxies whose `X-Forwarded-For` is believed (behind a reverse proxy).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    pub tls: TlsConfig,
    pub graph: GraphConfig,
    pub session: SessionConfig,
    pub argon2: Argon2Config,
    pub login: LoginConfig,
    pub limits: LimitsConfig,
    pub metrics: MetricsConfig,
    pub backup: BackupConfig,
}

/// Encrypted backups (P15): the key they are encrypted with, how many the daily job
/// keeps, and an optional command that ships each one off the machine.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// The daily backup job runs (on by default).
    pub enabled: bool,
    /// A file holding the backup passphrase (first line). Encrypts with a key derived
    /// by argon2id; keep the passphrase written down away from this machine.
    pub passphrase_file: Option<PathBuf>,
    /// A file holding a 32-byte backup key as 64 hex characters. With neither set,
    /// `<data_dir>/backup.key` (or the systemd credential `backup.key`) is used, made on
    /// the first backup: keep a copy of it away from this machine.
    pub key_file: Option<PathBuf>,
    /// Backups the daily job keeps in `<data_dir>/backups` (older ones are deleted).
    pub keep: u32,
    /// Run after each scheduled backup, without a shell: split into words, `{file}`
    /// replaced by the backup's path, e.g. `rclone copy {file} remote:whacaster`.
    pub post_command: Option<String>,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            passphrase_file: None,
            key_file: None,
            keep: 7,
            post_command: None,
        }
    }
}

/// How long and how many request bodies a client may keep open (slow-client defence).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Seconds any request body may take before it must keep up `body_min_bytes_per_sec`.
    pub body_grace_secs: u64,
    /// After the grace, a body must have arrived at least this fast on average (so an
    /// upload's deadline grows with its size, a trickle's does not).
    pub body_min_bytes_per_sec: u64,
    /// A webhook delivery (at most 4 MB) must be in within this many seconds in any case.
    pub webhook_body_secs: u64,
    /// Request bodies one address may be sending at once before it signed in
    /// (sign-in forms, webhook deliveries).
    pub unauthenticated_bodies_per_ip: u32,
    /// Badly signed webhook deliveries from one address per minute after which its
    /// large bodies are refused unread for the rest of the minute.
    pub bad_signatures_per_minute: u32,
}

/// `/metrics` access.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// A file holding the bearer token scrapers must send (`Authorization: Bearer …`).
    /// When set, loopback is not trusted any more: only the token or a signed-in admin.
    pub token_file: Option<PathBuf>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            body_grace_secs: 10,
            body_min_bytes_per_sec: 8 * 1024,
            webhook_body_secs: 30,
            unauthenticated_bodies_per_ip: 16,
            bad_signatures_per_minute: 20,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// A certificate made by Whacaster itself (rcgen); fine for the admin UI on a LAN.
    SelfSigned,
    /// A certificate and key from files (e.g. from certbot); reloaded on SIGHUP.
    Files,
    /// Plain HTTP, for running behind a reverse proxy that terminates TLS.
    Off,
    /// A certificate from an ACME CA (Let's Encrypt), obtained and renewed by Whacaster.
    Acme,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    pub mode: TlsMode,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// ACME: contact address for the CA (expiry warnings).
    pub acme_email: Option<String>,
    /// ACME: the CA's directory URL.
    pub acme_directory: String,
    /// ACME: an extra root certificate to trust for the CA's own HTTPS (private CA, tests).
    pub acme_ca_root: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GraphConfig {
    pub base_url: String,
    pub api_version: String,
    /// Seconds to wait for Meta's answer before treating the call as failed (and retrying).
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// Sign out after this many minutes without a request.
    pub idle_minutes: i64,
    /// Sign out this many hours after sign-in, active or not.
    pub absolute_hours: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Argon2Config {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    /// Failed sign-ins for one e-mail address before it is locked for a while.
    pub max_failures: i64,
    /// Minutes an address stays locked after `max_failures` (doubles on each new lock, up to 24 h).
    pub lockout_minutes: i64,
    /// Sign-in attempts one client may make per minute: an IP address, or a browser
    /// that signed in as the user before (which so keeps a budget of its own).
    pub per_ip_per_minute: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8443".into(),
            data_dir: PathBuf::from("./whacaster-data"),
            public_url: None,
            log_level: "info".into(),
            log_format: LogFormat::Text,
            allow_insecure_public: false,
            trusted_proxies: Vec::new(),
            tls: TlsConfig::default(),
            graph: GraphConfig::default(),
            session: SessionConfig::default(),
            argon2: Argon2Config::default(),
            login: LoginConfig::default(),
            limits: LimitsConfig::default(),
            metrics: MetricsConfig::default(),
            backup: BackupConfig::default(),
        }
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            mode: TlsMode::SelfSigned,
            cert: None,
            key: None,
            acme_email: None,
            acme_directory: LETS_ENCRYPT.into(),
            acme_ca_root: None,
        }
    }
}

impl Default for GraphConfig {
    fn default() -> Self {
        Self {
            base_url: "https://graph.facebook.com".into(),
            api_version: "v25.0".into(),
            timeout_secs: 20,
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        // ASVS L2 3.3.2: 30 minutes idle, 12 hours absolute.
        Self {
            idle_minutes: 30,
            absolute_hours: 12,
        }
    }
}

impl Default for Argon2Config {
    fn default() -> Self {
        // OWASP / ASVS 5.0 minimum for argon2id: m = 19 MiB, t = 2, p = 1.
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl Default for LoginConfig {
    fn default() -> Self {
        Self {
            max_failures: 5,
            lockout_minutes: 5,
            per_ip_per_minute: 20,
        }
    }
}

/// Values given on the command line; they override everything else.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
}

impl Config {
    /// Loads the layered configuration. `file` is the explicit `--config` path, if any.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, String> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("WHACASTER_CONFIG").map(PathBuf::from))
            .or_else(|| Some(PathBuf::from(SYSTEM_CONFIG)).filter(|p| p.exists()));
        if let Some(path) = &file {
            if !path.is_file() {
                return Err(format!(
                    "config file {} does not exist or is not a file",
                    path.display()
                ));
            }
            fig = fig.merge(Toml::file_exact(path));
        }
        fig = fig
            .merge(Env::prefixed("WHACASTER_").ignore(NON_CONFIG_ENV).split("__"))
            .merge(Serialized::defaults(overrides));
        let cfg: Config = fig.extract().map_err(|e| describe_figment_error(&e))?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), String> {
        self.validate_backup()?;
        let addr = self.listen_addr()?;
        if let Some(url) = &self.public_url {
            let parsed = url::Url::parse(url).map_err(|e| format!("public_url {url:?} is not a URL: {e}"))?;
            if parsed.scheme() != "https" && parsed.scheme() != "http" {
                return Err(format!("public_url {url:?} must start with https://"));
            }
            if parsed.host_str().is_none() {
                return Err(format!("public_url {url:?} has no host name"));
            }
        }
        match self.tls.mode {
            TlsMode::Files => {
                if self.tls.cert.is_none() || self.tls.key.is_none() {
                    return Err("tls.mode = \"files\" needs both tls.cert and tls.key".into());
                }
            }
            TlsMode::Off => {
                if !addr.ip().is_loopback() && !self.allow_insecure_public {
                    return Err(format!(
                        "tls.mode = \"off\" serves plain HTTP, so it only listens on loopback; {addr} is not loopback \
                         (put a TLS reverse proxy in front, or set allow_insecure_public = true if you really mean it)"
                    ));
                }
            }
            TlsMode::SelfSigned => {}
            TlsMode::Acme => {
                let host = self.public_host().ok_or(
                    "tls.mode = \"acme\" needs public_url, e.g. https://wa.example.co.id (the name the certificate is for)",
                )?;
                if host.parse::<std::net::IpAddr>().is_ok() {
                    return Err(format!(
                        "tls.mode = \"acme\" needs a DNS name in public_url, not the address {host}"
                    ));
                }
                if !self.tls.acme_email.as_deref().is_some_and(|e| e.contains('@')) {
                    return Err("tls.mode = \"acme\" needs tls.acme_email (the CA writes there about expiry)".into());
                }
                url::Url::parse(&self.tls.acme_directory)
                    .map_err(|e| format!("tls.acme_directory {:?} is not a URL: {e}", self.tls.acme_directory))?;
            }
        }
        if self.session.idle_minutes < 1 || self.session.absolute_hours < 1 {
            return Err("session.idle_minutes and session.absolute_hours must be at least 1".into());
        }
        if self.argon2.memory_kib < 8 || self.argon2.iterations < 1 || self.argon2.parallelism < 1 {
            return Err("argon2.memory_kib must be >= 8, iterations and parallelism >= 1".into());
        }
        if self.login.max_failures < 1 || self.login.per_ip_per_minute < 1 {
            return Err("login.max_failures and login.per_ip_per_minute must be at least 1".into());
        }
        if self.limits.body_grace_secs < 1
            || self.limits.webhook_body_secs < 1
            || self.limits.body_min_bytes_per_sec < 1
            || self.limits.unauthenticated_bodies_per_ip < 1
            || self.limits.bad_signatures_per_minute < 1
        {
            return Err("every limits.* value must be at least 1".into());
        }
        let graph = url::Url::parse(&self.graph.base_url)
            .map_err(|e| format!("graph.base_url {:?} is not a URL: {e}", self.graph.base_url))?;
        if graph.scheme() != "https" && !crate::whatsapp::graph::is_loopback_http(&self.graph.base_url) {
            return Err(format!(
                "graph.base_url {:?} must use https:// (plain HTTP only to 127.0.0.1)",
                self.graph.base_url
            ));
        }
        Ok(())
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, String> {
        self.listen
            .parse()
            .map_err(|_| format!("listen {:?} is not an address like 127.0.0.1:8443", self.listen))
    }

    /// Plain HTTP with no proxy named: if a reverse proxy is in front (the usual reason
    /// for `tls.mode = "off"`), every client looks like the proxy's loopback address.
    pub fn proxy_unconfigured(&self) -> bool {
        self.tls.mode == TlsMode::Off && self.trusted_proxies.is_empty()
    }

    /// The warning `whacaster check` and start-up give when `proxy_unconfigured`.
    pub const PROXY_WARNING: &'static str = "tls.mode = \"off\" and no trusted_proxies: behind a reverse proxy every \
        client looks like the proxy, so all users share one sign-in budget and lockouts, and per-address limits \
        hit everyone at once. Set trusted_proxies = [\"127.0.0.1\"] (the proxy's address), and metrics.token_file \
        for /metrics (loopback is not trusted for /metrics in this mode).";

    pub fn tls_enabled(&self) -> bool {
        self.tls.mode != TlsMode::Off
    }

    /// The base URL people use to reach this server.
    pub fn base_url(&self) -> String {
        if let Some(url) = &self.public_url {
            return url.trim_end_matches('/').to_string();
        }
        let scheme = if self.tls_enabled() { "https" } else { "http" };
        let listen = self.listen_addr().map(|a| {
            if a.ip().is_unspecified() {
                format!("{}:{}", host_name(), a.port())
            } else {
                a.to_string()
            }
        });
        format!("{scheme}://{}", listen.unwrap_or_else(|_| self.listen.clone()))
    }

    pub fn public_host(&self) -> Option<String> {
        self.public_url
            .as_deref()
            .and_then(|u| url::Url::parse(u).ok())
            .and_then(|u| u.host_str().map(str::to_string))
    }

    fn validate_backup(&self) -> Result<(), String> {
        let b = &self.backup;
        if b.passphrase_file.is_some() && b.key_file.is_some() {
            return Err("backup: set passphrase_file or key_file, not both".into());
        }
        if !(1..=365).contains(&b.keep) {
            return Err("backup.keep must be 1 to 365".into());
        }
        if let Some(cmd) = &b.post_command {
            let words = shell_words::split(cmd).map_err(|e| format!("backup.post_command: {e}"))?;
            if words.is_empty() {
                return Err("backup.post_command is empty".into());
            }
        }
        Ok(())
    }

    pub fn backups_dir(&self) -> PathBuf {
        self.data_dir.join("backups")
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("whacaster.db")
    }

    pub fn key_path(&self) -> PathBuf {
        self.data_dir.join("db.key")
    }

    pub fn tls_dir(&self) -> PathBuf {
        self.data_dir.join("tls")
    }

    /// The effective configuration as TOML, for `check-config`. Contains no secret:
    /// secrets (database key, Meta tokens) are never configuration values.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render config: {e}"))
    }
}

/// This machine's name, for links when listening on all addresses and no `public_url`
/// is set; `localhost` when it cannot be read.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn describe_figment_error(e: &figment::Error) -> String {
    let mut msgs = Vec::new();
    for err in e.clone() {
        let mut msg = err.kind.to_string();
        if !err.path.is_empty() {
            msg = format!("{} (at key `{}`)", msg, err.path.join("."));
        }
        if let Some(md) = &err.metadata {
            msg = format!("{msg} in {}", md.name);
            if let Some(src) = &md.source {
                msg = format!("{msg} {src}");
            }
        }
        msgs.push(msg);
    }
    format!("configuration error: {}", msgs.join("; "))
}
