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
