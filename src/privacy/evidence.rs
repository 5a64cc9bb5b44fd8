//! The evidence page's facts (P17): each promise shown with a state and the fact behind
//! it. Each feature states its own facts; the page and `whacaster check` list them.

use serde::Serialize;

/// Green: kept. Amber: kept, but look (e.g. a certificate expiring in 20 days). Red: not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Light {
    Green,
    Amber,
    Red,
}

/// One line of evidence: `key` names it for the i18n catalogue (`evidence.<key>`),
/// `fact` is what was measured, in plain words (numbers, dates), not translated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fact {
    pub key: &'static str,
    pub light: Light,
    pub fact: String,
}

impl Fact {
    pub fn new(key: &'static str, light: Light, fact: impl Into<String>) -> Fact {
        Fact {
            key,
            light,
            fact: fact.into(),
        }
    }
}

use crate::config::{Config, TlsMode};
use rusqlite::{Connection, OptionalExtension, params};

/// What the facts are measured from besides the database: the configuration, the
/// certificate being served and where the database key was read from.
pub struct Inputs<'a> {
    pub config: &'a Config,
    pub cert: Option<crate::tls::CertInfo>,
    /// The database key's file (key file, `WHACASTER_DB_KEY_FILE` or systemd credential).
    pub key_source: Option<crate::crypto::KeySource>,
    pub now: i64,
}

/// Every fact this part of the appliance states, in the page's order. The lead extends
/// the list with the other features' `facts` (retention, requests) in `all`.
pub fn gather(c: &Connection, i: &Inputs<'_>) -> rusqlite::Result<Vec<Fact>> {
    let mut out = tls_facts(i);
    out.extend(mfa_facts(c)?);
    out.push(key_fact(i));
    out.push(integrity_fact(c, i.now)?);
    out.extend(super::backup::facts(c, i.now)?);
    out.extend(super::retention::facts(c, i.now)?);
    out.extend(super::requests::facts(c, i.now)?);
    out.push(outbound_fact(c, i)?);
    out.push(schema_fact(c));
    Ok(out)
}

fn tls_facts(i: &Inputs<'_>) -> Vec<Fact> {
    let mode = i.config.tls.mode;
    let mode_fact = match mode {
        TlsMode::Off => Fact::new(
            "tls",
            Light::Amber,
            "TLS is off here: a reverse proxy must terminate TLS 1.2+ in front of Whacaster",
        ),
        TlsMode::SelfSigned => Fact::new(
            "tls",
            Light::Amber,
            "TLS 1.2/1.3 with a self-signed certificate: fine on your network, but Meta only delivers webhooks to a CA-issued one",
        ),
        TlsMode::Files => Fact::new("tls", Light::Green, "TLS 1.2/1.3 with a certificate from files"),
        TlsMode::Acme => Fact::new(
            "tls",
            Light::Green,
            "TLS 1.2/1.3 with an ACME (Let's Encrypt) certificate",
        ),
    };
    let mut out = vec![mode_fact];
    if mode == TlsMode::Off {
        return out;
    }
    out.push(match &i.cert {
        None => Fact::new("certificate", Light::Red, "no certificate is being served"),
        Some(cert) => {
            let days = (cert.not_after - i.now) / 86_400;
            let text = format!(
                "issued by {}, valid until {} ({days} days)",
                cert.issuer,
                crate::clock::format_unix(cert.not_after, None)
            );
            let light = if cert.not_after <= i.now {
                Light::Red
            } else if days < crate::tls::RENEW_BEFORE_DAYS {
                Light::Amber
            } else {
                Light::Green
            };
            Fact::new("certificate", light, text)
        }
    });
    out
}

fn mfa_facts(c: &Connection) -> rusqlite::Result<Vec<Fact>> {
    use crate::auth::Role;
    let policy = crate::settings::mfa_policy(c)?;
    let (admins, admins_mfa) = crate::auth::repo::mfa_coverage_of_role(c, Role::Admin)?;
    let (users, users_mfa) = crate::auth::repo::mfa_coverage(c)?;
    let enforced: Vec<&str> = [
        (policy.admin, "admins"),
        (policy.supervisor, "supervisors"),
        (policy.agent, "agents"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, who)| *who)
    .collect();
    let enforced = if enforced.is_empty() {
        "required of nobody".to_string()
    } else {
        format!("required of {}", enforced.join(", "))
    };
    let admin_light = if admins == 0 {
        Light::Amber
    } else if admins_mfa == admins && policy.admin {
        Light::Green
    } else if admins_mfa == admins {
        Light::Amber
    } else {
        Light::Red
    };
    let users_light = if users_mfa == users { Light::Green } else { Light::Amber };
    Ok(vec![
        Fact::new(
            "mfa_admins",
            admin_light,
            format!("{admins_mfa} of {admins} active admins use MFA; MFA is {enforced}"),
        ),
        Fact::new(
            "mfa_users",
            users_light,
            format!("{users_mfa} of {users} active users use MFA"),
        ),
    ])
}

fn key_fact(i: &Inputs<'_>) -> Fact {
    let Some(source) = &i.key_source else {
        return Fact::new("key_file", Light::Red, "the database key's origin is unknown");
    };
    match crate::crypto::loose_permissions(source.path()) {
        Ok(0) => Fact::new(
            "key_file",
            Light::Green,
            format!("{source} is readable by its owner only"),
        ),
        Ok(bits) => Fact::new(
            "key_file",
            Light::Red,
            format!("{source} grants mode {bits:o} to group/others: chmod 600 it"),
        ),
        Err(e) => Fact::new("key_file", Light::Red, format!("{source}: {e}")),
    }
}

/// The database's integrity as the job `check_database_integrity` last found it.
fn integrity_fact(c: &Connection, now: i64) -> rusqlite::Result<Fact> {
    let last: Option<(i64, bool, String, i64)> = c
        .query_row(
            "SELECT at, ok, detail, millis FROM integrity_runs ORDER BY at DESC, id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    Ok(match last {
        None => Fact::new(
            "integrity",
            Light::Amber,
            "not checked yet (the daily job check_database_integrity checks every page)",
        ),
        Some((at, ok, detail, millis)) => {
            let when = crate::clock::format_unix(at, None);
            let light = if !ok {
                Light::Red
            } else if now - at > 3 * 86_400 {
                Light::Amber
            } else {
                Light::Green
            };
            Fact::new(
                "integrity",
                light,
                format!("{detail} (checked {when}, took {millis} ms)"),
            )
        }
    })
}

/// Runs the page checks (`quick_check` and SQLCipher's `cipher_integrity_check`, which
/// reads and authenticates every page) on a reader, outside the writer.
pub fn check_integrity(c: &Connection) -> rusqlite::Result<(bool, String)> {
    let mut problems = crate::store::problems(c, crate::store::Depth::Quick)?;
    let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    Ok(if problems.is_empty() {
        (
            true,
            format!("quick_check and cipher_integrity_check passed ({pages} pages)"),
        )
    } else {
        problems.truncate(5);
        (false, format!("problems: {}", problems.join("; ")))
    })
}

/// The job `check_database_integrity`: the check on a reader, its result recorded.
pub async fn check_database_integrity(db: &crate::store::Db, now: i64) -> Result<String, String> {
    let started = std::time::Instant::now();
    let (ok, detail) = db.read(|c| Ok(check_integrity(c)?)).await.map_err(|e| e.to_string())?;
    let millis = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let d = detail.clone();
    db.write(move |c| {
        c.execute(
            "INSERT INTO integrity_runs (at, ok, detail, millis) VALUES (?1, ?2, ?3, ?4)",
            params![now, ok, d, millis],
        )?;
        // A year of daily results is plenty.
        c.execute("DELETE FROM integrity_runs WHERE at < ?1", [now - 366 * 86_400])?;
        Ok(())
    })
    .await
    .map_err(|e| e.to_string())?;
    if ok { Ok(detail) } else { Err(detail) }
}

/// The job `record_outbound_hosts`: the Graph client's hosts since the last run, per day.
pub async fn record_outbound_hosts(
    db: &crate::store::Db,
    graph: &crate::whatsapp::graph::GraphClient,
    now: i64,
) -> Result<String, String> {
    let hosts = graph.take_hosts();
    let n = hosts.len();
    if n == 0 {
        return Ok("no outbound calls since the last run".into());
    }
    db.write(move |c| {
        for (host, calls) in &hosts {
            record_host(c, host, *calls, now)?;
        }
        c.execute("DELETE FROM outbound_hosts WHERE day < ?1", [now / 86_400 - 90])?;
        Ok(())
    })
    .await
    .map_err(|e| e.to_string())?;
    Ok(format!("{n} hosts recorded"))
}

pub fn record_host(c: &Connection, host: &str, calls: i64, now: i64) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO outbound_hosts (host, day, calls, last_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (host, day) DO UPDATE SET calls = calls + excluded.calls, last_at = excluded.last_at",
        params![host, now / 86_400, calls, now],
    )?;
    Ok(())
}

/// Hosts the appliance may call (P11): the configured Graph API, Meta's media hosts
/// (media download URLs point at them), and the ACME CA when ACME is on.
pub fn allowed_hosts(cfg: &Config) -> Vec<String> {
    let mut out = vec![
        "graph.facebook.com".to_string(),
        "*.fbsbx.com".into(),
        "*.whatsapp.net".into(),
        "*.facebook.com".into(),
    ];
    for url in [
        Some(cfg.graph.base_url.as_str()),
        (cfg.tls.mode == TlsMode::Acme).then_some(cfg.tls.acme_directory.as_str()),
    ]
    .into_iter()
    .flatten()
    {
        if let Ok(u) = url::Url::parse(url) {
            if let Some(h) = u.host_str() {
                out.push(match u.port() {
                    Some(p) => format!("{h}:{p}"),
                    None => h.to_string(),
                });
            }
        }
    }
    out
}

fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let bare = host.split(':').next().unwrap_or(host);
    allowed.iter().any(|a| match a.strip_prefix("*.") {
        Some(domain) => bare == domain || bare.ends_with(&format!(".{domain}")),
        None => a == host || a == bare,
    })
}

/// Outbound hosts of the last 30 days, in `(host, calls)` order of calls.
pub fn list_recent_hosts(c: &Connection, now: i64) -> rusqlite::Result<Vec<(String, i64)>> {
    let mut stmt = c.prepare(
        "SELECT host, sum(calls) FROM outbound_hosts WHERE day >= ?1 GROUP BY host ORDER BY sum(calls) DESC",
    )?;
    let rows = stmt.query_map([now / 86_400 - 30], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

fn outbound_fact(c: &Connection, i: &Inputs<'_>) -> rusqlite::Result<Fact> {
    let hosts = list_recent_hosts(c, i.now)?;
    let allowed = allowed_hosts(i.config);
    let strange: Vec<&str> = hosts
        .iter()
        .filter(|(h, _)| !host_allowed(h, &allowed))
        .map(|(h, _)| h.as_str())
        .collect();
    let list = hosts
        .iter()
        .map(|(h, n)| format!("{h} ({n})"))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(if hosts.is_empty() {
        Fact::new(
            "outbound_hosts",
            Light::Green,
            "no outbound HTTP calls in the last 30 days",
        )
    } else if strange.is_empty() {
        Fact::new(
            "outbound_hosts",
            Light::Green,
            format!("last 30 days, only Meta and configured hosts: {list}"),
        )
    } else {
        Fact::new(
            "outbound_hosts",
            Light::Red,
            format!(
                "hosts outside Meta and the configuration: {}; all: {list}",
                strange.join(", ")
            ),
        )
    })
}

fn schema_fact(c: &Connection) -> Fact {
    match crate::store::pending(c) {
        Ok(p) if p.is_empty() => Fact::new(
            "schema",
            Light::Green,
            format!(
                "no pending schema migrations ({} embedded)",
                crate::store::MIGRATIONS.len()
            ),
        ),
        Ok(p) => Fact::new(
            "schema",
            Light::Amber,
            format!(
                "pending migrations: {}",
                p.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            ),
        ),
        Err(e) => Fact::new("schema", Light::Red, format!("cannot read the schema: {e}")),
    }
}

/// Where the database key came from, for `Inputs` (no key material kept).
pub fn key_source(cfg: &Config) -> Option<crate::crypto::KeySource> {
    crate::crypto::load_db_key(&cfg.data_dir, true, false)
        .ok()
        .map(|(_, s)| s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_allowed_by_name_or_meta_domain() {
        let cfg = Config::default();
        let allowed = allowed_hosts(&cfg);
        assert!(host_allowed("graph.facebook.com", &allowed));
        assert!(host_allowed("lookaside.fbsbx.com", &allowed));
        assert!(!host_allowed("evil-fbsbx.com", &allowed));
        assert!(!host_allowed("telemetry.example.com", &allowed));
    }
}
