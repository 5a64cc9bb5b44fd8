//! Who is trying to sign in: the party a lock and the sign-in budget count against.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use std::fmt;

/// A browser that completed a sign-in for the user (its known-device row) counts on
/// its own; anything else counts by its IP address. Stored (and shown in logs) as
/// `device:{id}` or `ip:{address}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Client {
    Device(i64),
    Ip(String),
}

impl Client {
    /// The stored form back into a client; `None` for anything else.
    pub fn parse(s: &str) -> Option<Client> {
        match s.split_once(':')? {
            ("device", id) => id.parse().ok().map(Client::Device),
            ("ip", ip) => Some(Client::Ip(ip.to_string())),
            _ => None,
        }
    }
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Client::Device(id) => write!(f, "device:{id}"),
            Client::Ip(ip) => write!(f, "ip:{ip}"),
        }
    }
}

impl ToSql for Client {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(self.to_string().into())
    }
}

impl FromSql for Client {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = v.as_str()?;
        Client::parse(s).ok_or_else(|| FromSqlError::Other(format!("unknown sign-in client {s}").into()))
    }
}

#[cfg(test)]
mod tests {
    use super::Client;

    #[test]
    fn the_stored_form_reads_back() {
        for c in [
            Client::Device(42),
            Client::Ip("203.0.113.7".into()),
            Client::Ip("2001:db8::1".into()),
        ] {
            assert_eq!(Client::parse(&c.to_string()), Some(c));
        }
        assert_eq!(Client::Device(7).to_string(), "device:7");
        for bad in ["", "device:", "device:x", "phone:1", "203.0.113.7"] {
            assert_eq!(Client::parse(bad), None, "{bad}");
        }
    }
}
