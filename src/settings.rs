//! The business profile (P1) and small instance-wide settings (MFA policy, default language).

use crate::auth::Role;
use crate::i18n::Locale;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, Default)]
pub struct Business {
    pub name: String,
    pub owner_name: String,
    pub email: String,
    pub phone: String,
    pub address: String,
    pub industry: String,
    pub timezone: String,
    pub locale: String,
}

impl Business {
    pub fn locale(&self) -> Locale {
        Locale::parse(&self.locale).unwrap_or(Locale::En)
    }

    pub fn tz(&self) -> Option<chrono_tz::Tz> {
        self.timezone.parse().ok()
    }
}

pub fn find_business(conn: &Connection) -> rusqlite::Result<Option<Business>> {
    conn.query_row(
        "SELECT name, owner_name, email, phone, address, industry, timezone, locale FROM business WHERE id = 1",
        [],
        |r| {
            Ok(Business {
                name: r.get(0)?,
                owner_name: r.get(1)?,
                email: r.get(2)?,
                phone: r.get(3)?,
                address: r.get(4)?,
                industry: r.get(5)?,
                timezone: r.get(6)?,
                locale: r.get(7)?,
            })
        },
    )
    .optional()
}

pub fn insert_business(conn: &Connection, b: &Business, now: i64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO business (id, name, owner_name, email, phone, address, industry, timezone, locale,
                               terms_accepted_at, created_at, updated_at)
         VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?9)",
        params![
            b.name,
            b.owner_name,
            b.email,
            b.phone,
            b.address,
            b.industry,
            b.timezone,
            b.locale,
            now
        ],
    )?;
    Ok(())
}

/// The version of the terms accepted at setup (P21), beside `terms_accepted_at`.
pub fn record_terms_version(conn: &Connection, version: &str) -> rusqlite::Result<()> {
    conn.execute("UPDATE business SET terms_version = ?1 WHERE id = 1", [version])?;
    Ok(())
}

/// (version, accepted at) of the terms the owner accepted at setup.
pub fn terms_acceptance(conn: &Connection) -> rusqlite::Result<Option<(String, i64)>> {
    conn.query_row(
        "SELECT terms_version, terms_accepted_at FROM business WHERE id = 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

pub fn update_business(conn: &Connection, b: &Business, now: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE business SET name = ?1, owner_name = ?2, email = ?3, phone = ?4, address = ?5, industry = ?6,
                             timezone = ?7, locale = ?8, updated_at = ?9 WHERE id = 1",
        params![
            b.name,
            b.owner_name,
            b.email,
            b.phone,
            b.address,
            b.industry,
            b.timezone,
            b.locale,
            now
        ],
    )
}

pub fn get_setting(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    // Cached: the intake reads a setting for every customer message.
    conn.prepare_cached("SELECT value FROM settings WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()
}

/// A yes/no setting ("1" is yes), `default` when never set.
fn flag(conn: &Connection, key: &str, default: bool) -> rusqlite::Result<bool> {
    Ok(get_setting(conn, key)?.map(|v| v == "1").unwrap_or(default))
}

fn flag_value(on: bool) -> &'static str {
    if on { "1" } else { "0" }
}

pub fn set_setting(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

/// Which roles must use MFA. Admins are required by default (ASVS 4.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MfaPolicy {
    pub admin: bool,
    pub supervisor: bool,
    pub agent: bool,
}

impl MfaPolicy {
    pub fn requires(&self, role: Role) -> bool {
        match role {
            Role::Admin => self.admin,
            Role::Supervisor => self.supervisor,
            Role::Agent => self.agent,
        }
    }
}

pub fn mfa_policy(conn: &Connection) -> rusqlite::Result<MfaPolicy> {
    let get = |k: &str, default: bool| flag(conn, k, default);
    Ok(MfaPolicy {
        admin: get("mfa_required.admin", true)?,
        supervisor: get("mfa_required.supervisor", false)?,
        agent: get("mfa_required.agent", false)?,
    })
}

pub fn set_mfa_policy(conn: &Connection, p: &MfaPolicy) -> rusqlite::Result<()> {
    let b = flag_value;
    set_setting(conn, "mfa_required.admin", b(p.admin))?;
    set_setting(conn, "mfa_required.supervisor", b(p.supervisor))?;
    set_setting(conn, "mfa_required.agent", b(p.agent))
}

/// How the shared inbox works, set by an admin.
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent yes/no settings, each a checkbox on one page"
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct InboxSettings {
    /// Agents see every conversation (else only theirs and unassigned ones).
    pub agents_see_all: bool,
    /// Agents see every contact (else those of conversations they may see, and those
    /// with no conversation yet).
    pub agents_see_all_contacts: bool,
    /// Opening a conversation sends Meta the read receipt (blue ticks).
    pub read_receipts: bool,
    /// New conversations go round-robin to available agents.
    pub auto_assign: bool,
    /// At most this many open conversations per agent from auto-assignment.
    pub assign_cap: i64,
}

impl Default for InboxSettings {
    fn default() -> Self {
        InboxSettings {
            agents_see_all: false,
            agents_see_all_contacts: false,
            read_receipts: true,
            auto_assign: false,
            assign_cap: 20,
        }
    }
}

pub fn inbox_settings(conn: &Connection) -> rusqlite::Result<InboxSettings> {
    let d = InboxSettings::default();
    let flag = |k: &str, default: bool| flag(conn, k, default);
    Ok(InboxSettings {
        agents_see_all: flag("inbox.agents_see_all", d.agents_see_all)?,
        agents_see_all_contacts: flag("contacts.agents_see_all", d.agents_see_all_contacts)?,
        read_receipts: flag("inbox.read_receipts", d.read_receipts)?,
        auto_assign: flag("inbox.auto_assign", d.auto_assign)?,
        assign_cap: get_setting(conn, "inbox.assign_cap")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(d.assign_cap),
    })
}

pub fn set_inbox_settings(conn: &Connection, s: &InboxSettings) -> rusqlite::Result<()> {
    let b = flag_value;
    set_setting(conn, "inbox.agents_see_all", b(s.agents_see_all))?;
    set_setting(conn, "contacts.agents_see_all", b(s.agents_see_all_contacts))?;
    set_setting(conn, "inbox.read_receipts", b(s.read_receipts))?;
    set_setting(conn, "inbox.auto_assign", b(s.auto_assign))?;
    set_setting(conn, "inbox.assign_cap", &s.assign_cap.to_string())
}
