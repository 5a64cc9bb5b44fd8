//! Accounts: users and roles, argon2id passwords, server-side sessions, TOTP MFA with
//! recovery codes, login throttling and the login-event record.

#[expect(
    clippy::struct_field_names,
    reason = "being split on another branch (issue 9); the split fixes these, then this goes"
)]
pub mod admin;
pub mod client;
pub mod jobs;
pub mod notices;
pub mod password;
pub mod repo;
pub mod routes;
pub mod service;
pub mod session;
pub mod totp;
pub mod views;

pub use client::Client;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Agent,
    Supervisor,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Supervisor, Role::Agent];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Supervisor => "supervisor",
            Role::Agent => "agent",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "supervisor" => Some(Role::Supervisor),
            "agent" => Some(Role::Agent),
            _ => None,
        }
    }

    /// Catalogue key of the role's name.
    pub fn label_key(self) -> &'static str {
        match self {
            Role::Admin => "role.admin",
            Role::Supervisor => "role.supervisor",
            Role::Agent => "role.agent",
        }
    }
}

impl rusqlite::types::FromSql for Role {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let s = v.as_str()?;
        Role::parse(s).ok_or_else(|| rusqlite::types::FromSqlError::Other(format!("unknown role {s}").into()))
    }
}

impl rusqlite::types::ToSql for Role {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

/// A user as the rest of the application sees it (no secrets).
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub active: bool,
    pub locale: Option<String>,
    pub mfa_enabled: bool,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
    /// Has no password yet: invited, the link not used.
    pub invited: bool,
}

impl User {
    pub fn at_least(&self, role: Role) -> bool {
        self.role >= role
    }
}

/// Normalises an e-mail address for lookups and throttling.
pub fn normalize_email(s: &str) -> String {
    s.trim().to_lowercase()
}

/// A plausible e-mail address: something@domain.tld, no spaces, sane length.
pub fn valid_email(s: &str) -> bool {
    let s = s.trim();
    if s.len() > 254 || s.contains(char::is_whitespace) {
        return false;
    }
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        }
        None => false,
    }
}
