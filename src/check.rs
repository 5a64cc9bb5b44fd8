//! `whacaster check`: the self-check (P17). Database integrity, file permissions of the
//! key, config, data dir and certificate, certificate expiry, schema and MFA coverage.

use crate::config::Config;
use crate::crypto::{self, DbKey};
use crate::store;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    Warn,
    Problem,
}

#[derive(Debug, Clone)]
pub struct Finding {
    pub level: Level,
    pub text: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tag = match self.level {
            Level::Ok => "ok     ",
            Level::Warn => "warning",
            Level::Problem => "PROBLEM",
        };
        write!(f, "{tag}  {}", self.text)
    }
}

fn ok(text: impl Into<String>) -> Finding {
    Finding {
        level: Level::Ok,
        text: text.into(),
    }
}
fn warn(text: impl Into<String>) -> Finding {
    Finding {
        level: Level::Warn,
        text: text.into(),
    }
}
fn problem(text: impl Into<String>) -> Finding {
    Finding {
        level: Level::Problem,
        text: text.into(),
    }
}

/// A file that holds a secret must be readable by its owner only.
fn private_file(path: &Path, what: &str, out: &mut Vec<Finding>) {
    match std::fs::metadata(path) {
        Ok(m) => {
            let mode = m.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                out.push(problem(format!(
                    "{what} {} has mode {mode:o}: others can read it (chmod 600 {})",
                    path.display(),
                    path.display()
                )));
            } else {
                out.push(ok(format!("{what} {} is private ({mode:o})", path.display())));
            }
        }
        Err(e) => out.push(problem(format!("{what} {}: {e}", path.display()))),
    }
}

pub fn run(cfg: &Config, config_file: Option<&Path>, now: i64) -> Vec<Finding> {
    let mut out = Vec::new();

    match std::fs::metadata(&cfg.data_dir) {
        Ok(m) if m.permissions().mode() & 0o077 != 0 => out.push(warn(format!(
            "data dir {} has mode {:o}; 700 keeps other users out",
            cfg.data_dir.display(),
            m.permissions().mode() & 0o777
        ))),
        Ok(_) => out.push(ok(format!("data dir {} is private", cfg.data_dir.display()))),
        Err(e) => out.push(problem(format!("data dir {}: {e}", cfg.data_dir.display()))),
    }

    if let Some(p) = config_file {
        match std::fs::metadata(p) {
            Ok(m) if m.permissions().mode() & 0o002 != 0 => out.push(problem(format!(
                "config file {} is writable by everyone (chmod o-w)",
                p.display()
            ))),
            Ok(m) if m.permissions().mode() & 0o004 != 0 => out.push(warn(format!(
                "config file {} is readable by everyone; 640 is enough",
                p.display()
            ))),
            Ok(_) => out.push(ok(format!("config file {} permissions are fine", p.display()))),
            Err(e) => out.push(problem(format!("config file {}: {e}", p.display()))),
        }
    }

    let db_exists = cfg.db_path().exists();
    let key = match crypto::load_db_key(&cfg.data_dir, db_exists, false) {
        Ok((key, source)) => {
            private_file(source.path(), "database key", &mut out);
            Some(key)
        }
        Err(e) => {
            out.push(if db_exists {
                problem(e)
            } else {
                warn(format!("{e} (not started yet?)"))
            });
            None
        }
    };

    if let (Some(key), true) = (&key, db_exists) {
        check_database(cfg, key, now, &mut out);
    } else if !db_exists {
        out.push(warn(format!("no database yet at {}", cfg.db_path().display())));
    }

    let acme_key = key.as_ref().map(|k| k.derive("whacaster acme cache v1"));
    match crate::tls::inspect(cfg, acme_key) {
        Ok(Some(info)) => {
            private_file(&info.key_path, "TLS private key", &mut out);
            let days = (info.not_after - now) / 86_400;
            let when = crate::clock::format_unix(info.not_after, None);
            let text = format!("certificate from {} valid until {when} ({days} days)", info.issuer);
            out.push(if info.not_after <= now {
                problem(format!("{text}: EXPIRED"))
            } else if days < crate::tls::RENEW_BEFORE_DAYS {
                warn(text)
            } else {
                ok(text)
            });
            if info.mode == crate::config::TlsMode::SelfSigned && cfg.tls.mode == crate::config::TlsMode::Acme {
                out.push(warn(
                    "no ACME certificate issued yet: the self-signed one is served meanwhile (see the log)",
                ));
            } else if info.mode == crate::config::TlsMode::SelfSigned {
                out.push(warn(
                    "the certificate is self-signed: fine for the admin pages on your network, but Meta only \
                     delivers webhooks to a CA-issued certificate (use tls.mode = \"files\" or a reverse proxy)",
                ));
            }
        }
        Ok(None) if cfg.tls_enabled() => out.push(warn("no certificate yet (made at first start)")),
        Ok(None) => out.push(warn(
            "TLS is off: make sure a reverse proxy terminates TLS in front of Whacaster",
        )),
        Err(e) => out.push(problem(e)),
    }
    if cfg.proxy_unconfigured() {
        out.push(warn(format!("!!! {}", Config::PROXY_WARNING)));
    }
    if let (Some(key), true) = (&key, db_exists) {
        evidence(cfg, key, now, &mut out);
    }
    if let Some(path) = &cfg.metrics.token_file {
        match crate::metrics::read_token(path) {
            Ok(_) => private_file(path, "metrics token", &mut out),
            Err(e) => out.push(problem(e)),
        }
    }
    out
}

fn check_database(cfg: &Config, key: &DbKey, now: i64, out: &mut Vec<Finding>) {
    let path = cfg.db_path();
    match std::fs::read(&path).map(|b| b.starts_with(b"SQLite format 3")) {
        Ok(true) => out.push(problem(format!("{} is NOT encrypted", path.display()))),
        Ok(false) => out.push(ok(format!("{} is encrypted", path.display()))),
        Err(e) => out.push(problem(format!("cannot read {}: {e}", path.display()))),
    }
    match store::integrity_check(&path, key) {
        Ok(p) if p.is_empty() => out.push(ok("database integrity check passed")),
        Ok(p) => out.push(problem(format!("database integrity: {}", p.join("; ")))),
        Err(e) => {
            out.push(problem(e.to_string()));
            return;
        }
    }
    let Ok(conn) = store::open_connection(&path, key) else {
        return;
    };
    match store::applied_versions(&conn) {
        Ok(applied) => {
            let pending: Vec<String> = store::MIGRATIONS
                .iter()
                .filter(|(v, _)| !applied.contains(v))
                .map(|(_, n)| n.clone())
                .collect();
            if pending.is_empty() {
                out.push(ok(format!("schema up to date ({} migrations)", applied.len())));
            } else {
                out.push(warn(format!(
                    "schema changes pending (applied at next start): {}",
                    pending.join(", ")
                )));
            }
        }
        Err(e) => out.push(problem(format!("cannot read schema version: {e}"))),
    }
    if let Ok((users, with_mfa)) = crate::auth::repo::mfa_coverage(&conn) {
        let text = format!("{with_mfa} of {users} active users use MFA");
        out.push(if users > 0 && with_mfa < users {
            warn(text)
        } else {
            ok(text)
        });
    }
    if let Ok(failures) = crate::auth::repo::count_login_failures_since(&conn, now - 86_400) {
        let text = format!("{failures} failed sign-ins in the last 24 hours");
        out.push(if failures > 50 { warn(text) } else { ok(text) });
    }
}

/// The evidence page's list (`privacy::evidence::gather`), line by line. Red and amber
/// are warnings here: the checks above decide the exit code.
fn evidence(cfg: &Config, key: &DbKey, now: i64, out: &mut Vec<Finding>) {
    use crate::privacy::evidence::{Inputs, Light, gather, key_source};
    let Ok(conn) = store::open_connection(&cfg.db_path(), key) else {
        return;
    };
    let acme_key = key.derive("whacaster acme cache v1");
    let inputs = Inputs {
        config: cfg,
        cert: crate::tls::inspect(cfg, Some(acme_key)).ok().flatten(),
        key_source: key_source(cfg),
        now,
    };
    match gather(&conn, &inputs) {
        Ok(facts) => {
            for f in facts {
                let label = crate::i18n::t(crate::i18n::Locale::En, &format!("evidence.{}", f.key));
                let text = format!("evidence: {label}: {}", f.fact);
                out.push(match f.light {
                    Light::Green => ok(text),
                    Light::Amber | Light::Red => warn(format!(
                        "[{}] {text}",
                        if f.light == Light::Red { "red" } else { "amber" }
                    )),
                });
            }
        }
        Err(e) => out.push(warn(format!("evidence: cannot gather: {e}"))),
    }
}

pub fn has_problem(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.level == Level::Problem)
}
