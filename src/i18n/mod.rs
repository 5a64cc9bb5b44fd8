//! The translation catalogue: every string a person reads, in English and Bahasa Indonesia.
//! Keys live in `en.toml` and `id.toml`; a test fails when either misses a key.

use std::collections::HashMap;
use std::sync::LazyLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Locale {
    En,
    Id,
}

impl Locale {
    pub const ALL: [Locale; 2] = [Locale::En, Locale::Id];

    pub fn code(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::Id => "id",
        }
    }

    pub fn native_name(self) -> &'static str {
        match self {
            Locale::En => "English",
            Locale::Id => "Bahasa Indonesia",
        }
    }

    /// (code, native name) of every language, for language pickers.
    pub fn choices() -> Vec<(&'static str, &'static str)> {
        Locale::ALL.iter().map(|l| (l.code(), l.native_name())).collect()
    }

    pub fn parse(s: &str) -> Option<Locale> {
        match s.trim().to_ascii_lowercase().as_str() {
            "en" => Some(Locale::En),
            "id" | "in" => Some(Locale::Id),
            _ => None,
        }
    }

    /// Best match from an `Accept-Language` header (q-values honoured).
    pub fn from_accept_language(header: &str) -> Option<Locale> {
        let mut best: Option<(f32, Locale)> = None;
        for part in header.split(',') {
            let mut it = part.split(';');
            let tag = it.next().unwrap_or("").trim();
            let q = it
                .find_map(|p| p.trim().strip_prefix("q=").and_then(|v| v.parse::<f32>().ok()))
                .unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or("");
            if let Some(loc) = Locale::parse(primary) {
                if best.is_none_or(|(bq, _)| q > bq) {
                    best = Some((q, loc));
                }
            }
        }
        best.map(|(_, l)| l)
    }
}

pub type Messages = HashMap<String, String>;

fn parse_catalog(src: &str, name: &str) -> Messages {
    // The catalogues are compiled in and checked by tests; a broken one is a build bug,
    // reported loudly but without taking the server down.
    match toml::from_str::<toml::Table>(src) {
        Ok(table) => {
            let mut out = HashMap::new();
            flatten("", &table, &mut out);
            out
        }
        Err(e) => {
            tracing::error!(catalog = name, error = %e, "translation catalogue does not parse");
            HashMap::new()
        }
    }
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut Messages) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::String(s) => {
                out.insert(key, s.clone());
            }
            toml::Value::Table(t) => flatten(&key, t, out),
            _ => {}
        }
    }
}

static EN: LazyLock<Messages> = LazyLock::new(|| parse_catalog(include_str!("en.toml"), "en"));
static ID: LazyLock<Messages> = LazyLock::new(|| parse_catalog(include_str!("id.toml"), "id"));

pub fn messages(locale: Locale) -> &'static Messages {
    match locale {
        Locale::En => &EN,
        Locale::Id => &ID,
    }
}

/// Looks up `key`; a missing key shows itself (and the completeness test fails).
pub fn t(locale: Locale, key: &str) -> &'static str {
    if let Some(s) = messages(locale).get(key) {
        return s.as_str();
    }
    if let Some(s) = EN.get(key) {
        return s.as_str();
    }
    tracing::warn!(key, "missing translation");
    "[?]"
}

/// Looks up `key` and replaces `{name}` placeholders.
pub fn tf(locale: Locale, key: &str, args: &[(&str, &str)]) -> String {
    let mut s = t(locale, key).to_string();
    for (name, value) in args {
        s = s.replace(&format!("{{{name}}}"), value);
    }
    s
}

/// The translation of a code under `prefix` (`outbox.sent`), or the code itself when
/// the catalogue has none (a value from Meta we do not know yet).
pub fn label(locale: Locale, prefix: &str, code: &str) -> String {
    let key = format!("{prefix}.{code}");
    if has_key(&key) {
        t(locale, &key).to_string()
    } else {
        code.to_string()
    }
}

/// Whether `key` exists (used to accept only known flash keys from a cookie).
pub fn has_key(key: &str) -> bool {
    EN.contains_key(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language() {
        assert_eq!(
            Locale::from_accept_language("id-ID,id;q=0.9,en;q=0.8"),
            Some(Locale::Id)
        );
        assert_eq!(Locale::from_accept_language("fr, en;q=0.5, id;q=0.4"), Some(Locale::En));
        assert_eq!(Locale::from_accept_language("fr"), None);
        assert_eq!(Locale::from_accept_language(""), None);
    }

    #[test]
    fn placeholders() {
        assert_eq!(
            tf(Locale::En, "mfa.codes_left", &[("n", "7")]),
            "7 recovery codes left."
        );
    }
}
