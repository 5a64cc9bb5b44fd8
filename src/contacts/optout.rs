//! Opt-out always wins (issue 10): the stop and start keywords a person may send, the
//! confirmation the business answers with, and the three ways an opt-out reaches us
//! (a keyword, Meta's Stop/Resume, Meta refusing a marketing send with 131050), each
//! recorded through `consent::record`. The lists and texts are admin settings.
//!
//! A keyword counts only when it is the whole message: "jangan berhenti kirim promo"
//! contains BERHENTI and is not an opt-out.

use super::consent::{self, Change, Outcome, Purpose, Source, State};
use crate::audit::{self, Actor};
use crate::error::FormErrors;
use crate::i18n::{self, Locale};
use crate::settings::{get_setting, set_setting};
use rusqlite::Connection;
use serde::Serialize;

pub const DEFAULT_STOP: [&str; 6] = [
    "STOP",
    "BERHENTI",
    "UNSUBSCRIBE",
    "BATAL",
    "STOP PROMO",
    "BERHENTI PROMO",
];
pub const DEFAULT_START: [&str; 2] = ["START", "MULAI"];
/// Longest keyword, in characters.
pub const MAX_KEYWORD: usize = 40;
/// Most keywords per list.
pub const MAX_KEYWORDS: usize = 50;
/// Longest confirmation text (a WhatsApp text may be 4096; a confirmation is short).
pub const MAX_CONFIRMATION: usize = 1000;

const STOP_KEY: &str = "consent.stop_keywords";
const START_KEY: &str = "consent.start_keywords";

/// The message as a keyword: surrounding punctuation, symbols, emoji and spaces gone,
/// inner whitespace collapsed to one space, upper case (Unicode-aware).
pub fn normalize(text: &str) -> String {
    let trimmed = text.trim_matches(|ch: char| !ch.is_alphanumeric());
    let mut out = String::with_capacity(trimmed.len());
    for word in trimmed.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_uppercase));
    }
    out
}

/// What a keyword asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hit {
    Stop(String),
    Start(String),
}

impl Hit {
    /// The state the keyword asks for.
    pub fn state(&self) -> State {
        match self {
            Hit::Stop(_) => State::OptedOut,
            Hit::Start(_) => State::OptedIn,
        }
    }

    pub fn keyword(&self) -> &str {
        match self {
            Hit::Stop(k) | Hit::Start(k) => k,
        }
    }
}

/// The keyword lists, loaded once per intake batch (not per message).
#[derive(Debug, Clone)]
pub struct Keywords {
    stop: Vec<String>,
    start: Vec<String>,
    /// Bytes of the longest keyword: anything much longer is not a keyword, and is
    /// rejected before any work (most messages are).
    longest: usize,
}

impl Default for Keywords {
    fn default() -> Self {
        Keywords::new(
            DEFAULT_STOP.iter().map(|s| (*s).to_string()).collect(),
            DEFAULT_START.iter().map(|s| (*s).to_string()).collect(),
        )
    }
}

fn list_setting(c: &Connection, key: &str, default: &[&str]) -> rusqlite::Result<Vec<String>> {
    Ok(match get_setting(c, key)? {
        Some(v) => v.lines().map(normalize).filter(|k| !k.is_empty()).collect(),
        None => default.iter().map(|s| (*s).to_string()).collect(),
    })
}

impl Keywords {
    fn new(stop: Vec<String>, start: Vec<String>) -> Keywords {
        let longest = stop.iter().chain(&start).map(String::len).max().unwrap_or(0);
        Keywords { stop, start, longest }
    }

    /// The lists as the admin set them (the defaults until then).
    pub fn load(c: &Connection) -> rusqlite::Result<Keywords> {
        Ok(Keywords::new(
            list_setting(c, STOP_KEY, &DEFAULT_STOP)?,
            list_setting(c, START_KEY, &DEFAULT_START)?,
        ))
    }

    pub fn stop(&self) -> &[String] {
        &self.stop
    }

    pub fn start(&self) -> &[String] {
        &self.start
    }

    /// The keyword the whole message is, if it is one. A stop keyword wins should the
    /// lists ever share a word (saving refuses that).
    pub fn find(&self, text: &str) -> Option<Hit> {
        // Room for the punctuation, emoji and spaces a person puts around a keyword.
        if text.len() > self.longest * 4 + 64 {
            return None;
        }
        let n = normalize(text);
        if n.is_empty() {
            return None;
        }
        if let Some(k) = self.stop.iter().find(|k| **k == n) {
            return Some(Hit::Stop(k.clone()));
        }
        self.start.iter().find(|k| **k == n).map(|k| Hit::Start(k.clone()))
    }
}

/// Everything an admin sets about opt-out: the lists and the four confirmation texts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OptOutSettings {
    pub stop: Vec<String>,
    pub start: Vec<String>,
    pub confirm_stop_en: String,
    pub confirm_stop_id: String,
    pub confirm_start_en: String,
    pub confirm_start_id: String,
}

fn text_key(stop: bool, locale: Locale) -> String {
    let which = if stop { "stop" } else { "start" };
    format!("consent.confirm_{which}.{}", locale.code())
}

/// The confirmation text, unfilled (`{business}` still in it).
fn confirmation_text(c: &Connection, stop: bool, locale: Locale) -> rusqlite::Result<String> {
    Ok(match get_setting(c, &text_key(stop, locale))? {
        Some(t) if !t.trim().is_empty() => t,
        _ => {
            let key = if stop {
                "consent.optout.default_stop"
            } else {
                "consent.optout.default_start"
            };
            i18n::t(locale, key).to_string()
        }
    })
}

pub fn settings(c: &Connection) -> rusqlite::Result<OptOutSettings> {
    let k = Keywords::load(c)?;
    Ok(OptOutSettings {
        stop: k.stop,
        start: k.start,
        confirm_stop_en: confirmation_text(c, true, Locale::En)?,
        confirm_stop_id: confirmation_text(c, true, Locale::Id)?,
        confirm_start_en: confirmation_text(c, false, Locale::En)?,
        confirm_start_id: confirmation_text(c, false, Locale::Id)?,
    })
}

/// What the admin's form gives: one keyword per line, four texts.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct SettingsInput {
    #[serde(default)]
    pub stop: String,
    #[serde(default)]
    pub start: String,
    #[serde(default)]
    pub confirm_stop_en: String,
    #[serde(default)]
    pub confirm_stop_id: String,
    #[serde(default)]
    pub confirm_start_en: String,
    #[serde(default)]
    pub confirm_start_id: String,
}

/// One list from a textarea: blank lines are skipped; a line that is nothing but
/// punctuation or emoji is an empty keyword and refused, as are duplicates in spirit
/// (they are merged) and overlong lists.
fn parse_list(text: &str, field: &'static str, errors: &mut FormErrors) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let k = normalize(line);
        if k.is_empty() {
            if !errors.has(field) {
                errors.add(field, "consent.optout.keyword_empty");
            }
            continue;
        }
        if k.chars().count() > MAX_KEYWORD {
            if !errors.has(field) {
                errors.add(field, "consent.optout.too_many");
            }
            continue;
        }
        if !out.contains(&k) {
            out.push(k);
        }
    }
    if out.len() > MAX_KEYWORDS && !errors.has(field) {
        errors.add(field, "consent.optout.too_many");
    }
    out
}

fn check_text(text: &str, field: &'static str, errors: &mut FormErrors) -> String {
    let t = text.trim();
    if t.is_empty() || t.chars().count() > MAX_CONFIRMATION {
        errors.add(field, "consent.optout.text_required");
    }
    t.to_string()
}

/// Checks the form: no empty keyword, at least one stop keyword, no word in both
/// lists, texts present and short.
pub fn validate(input: &SettingsInput) -> Result<OptOutSettings, FormErrors> {
    let mut errors = FormErrors::default();
    let stop = parse_list(&input.stop, "stop", &mut errors);
    let start = parse_list(&input.start, "start", &mut errors);
    if stop.is_empty() && !errors.has("stop") {
        errors.add("stop", "consent.optout.stop_required");
    }
    if stop.iter().any(|k| start.contains(k)) {
        errors.add("start", "consent.optout.keyword_both");
    }
    let s = OptOutSettings {
        stop,
        start,
        confirm_stop_en: check_text(&input.confirm_stop_en, "confirm_stop_en", &mut errors),
        confirm_stop_id: check_text(&input.confirm_stop_id, "confirm_stop_id", &mut errors),
        confirm_start_en: check_text(&input.confirm_start_en, "confirm_start_en", &mut errors),
        confirm_start_id: check_text(&input.confirm_start_id, "confirm_start_id", &mut errors),
    };
    if errors.is_empty() { Ok(s) } else { Err(errors) }
}

/// Saves what [`validate`] accepted, with the audit line.
pub fn save(c: &Connection, actor: &Actor, s: &OptOutSettings, now: i64) -> rusqlite::Result<()> {
    set_setting(c, STOP_KEY, &s.stop.join("\n"))?;
    set_setting(c, START_KEY, &s.start.join("\n"))?;
    for (stop, locale, text) in [
        (true, Locale::En, &s.confirm_stop_en),
        (true, Locale::Id, &s.confirm_stop_id),
        (false, Locale::En, &s.confirm_start_en),
        (false, Locale::Id, &s.confirm_start_id),
    ] {
        set_setting(c, &text_key(stop, locale), text)?;
    }
    let details = format!("stop: {}; start: {}", s.stop.join(", "), s.start.join(", "));
    audit::record(c, actor, "settings.opt_out", "consent", &details, now)?;
    Ok(())
}

/// The language to answer a person in: Indonesian for an Indonesian number (+62), or
/// for a username user without a number whose business-scoped id is Indonesian
/// (`ID.…`: BSUIDs start with the country), else the business's language.
pub fn contact_locale(wa_id: Option<&str>, bsuid: Option<&str>, business: Locale) -> Locale {
    match (wa_id, bsuid) {
        (Some(w), _) if w.trim_start_matches('+').starts_with("62") => Locale::Id,
        (None, Some(b)) if b.starts_with("ID.") => Locale::Id,
        _ => business,
    }
}

/// The confirmation for a change to `state`, in `locale`, for `business`.
pub fn confirmation(c: &Connection, state: State, locale: Locale, business: &str) -> rusqlite::Result<String> {
    let text = confirmation_text(c, state == State::OptedOut, locale)?;
    Ok(text.replace("{business}", business))
}

/// Who records what the person did themselves (a keyword, WhatsApp's own control).
pub fn person() -> Actor {
    Actor {
        id: None,
        label: "contact".into(),
        ip: String::new(),
    }
}

/// What the conversation's event says about a change: `source:state:detail`, read
/// back by the thread (`inbox::thread::Event::describe`).
pub fn event_body(source: Source, state: State, detail: &str) -> String {
    format!("{}:{}:{detail}", source.as_str(), state.as_str())
}

/// A change of the marketing state from the person or from Meta, recorded unless a
/// newer change is already on file (Meta delivers late and out of order). True when the
/// state changed.
#[expect(
    clippy::too_many_arguments,
    reason = "every field of the log line, named at the call"
)]
pub fn record_marketing(
    c: &Connection,
    contact: i64,
    state: State,
    source: Source,
    occurred_at: i64,
    wording: &str,
    evidence: &str,
    now: i64,
) -> rusqlite::Result<bool> {
    if consent::last_change_at(c, contact, Purpose::Marketing)?.is_some_and(|t| t > occurred_at) {
        return Ok(false);
    }
    let change = Change {
        contact,
        purpose: Purpose::Marketing,
        state,
        source,
        occurred_at: Some(occurred_at),
        wording,
        evidence,
    };
    Ok(matches!(
        consent::record(c, &change, &person(), now)?,
        Outcome::Changed { .. }
    ))
}

/// Meta refused a send with 131050 (the person stopped marketing in WhatsApp): an
/// opt-out of marketing. True when the state changed.
pub fn record_refusal(
    c: &Connection,
    contact: i64,
    evidence: &str,
    wording: &str,
    occurred_at: i64,
    now: i64,
) -> rusqlite::Result<bool> {
    record_marketing(
        c,
        contact,
        State::OptedOut,
        Source::MetaRefusal,
        occurred_at,
        wording,
        evidence,
        now,
    )
}

/// Meta's error for "this person stopped marketing messages from you".
pub const STOPPED_MARKETING: i64 = 131_050;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keyword_is_the_whole_message_whatever_its_case_and_punctuation() {
        let k = Keywords::default();
        for text in ["STOP", "stop", "stop!", " Stop. ", "STOP 🙏", "¡stop!", "\"Stop\""] {
            assert_eq!(k.find(text), Some(Hit::Stop("STOP".into())), "{text:?}");
        }
        assert_eq!(k.find(" Berhenti. "), Some(Hit::Stop("BERHENTI".into())));
        assert_eq!(k.find("stop   promo"), Some(Hit::Stop("STOP PROMO".into())));
        assert_eq!(k.find("Berhenti\npromo!!"), Some(Hit::Stop("BERHENTI PROMO".into())));
        assert_eq!(k.find("mulai"), Some(Hit::Start("MULAI".into())));
        assert_eq!(k.find("START 👍"), Some(Hit::Start("START".into())));
        for text in [
            "jangan berhenti kirim promo",
            "please don't stop",
            "stopwatch",
            "st op",
            "",
            "!!!",
            "🙏",
        ] {
            assert_eq!(k.find(text), None, "{text:?}");
        }
        let long = "stop ".repeat(100);
        assert_eq!(k.find(&long), None, "a long message is never a keyword");
    }

    #[test]
    fn case_is_folded_beyond_ascii() {
        assert_eq!(normalize("straße"), "STRASSE");
        assert_eq!(normalize("  çà  va  "), "ÇÀ VA");
    }

    fn input(stop: &str, start: &str) -> SettingsInput {
        SettingsInput {
            stop: stop.into(),
            start: start.into(),
            confirm_stop_en: "Bye from {business}".into(),
            confirm_stop_id: "Dah dari {business}".into(),
            confirm_start_en: "Welcome back".into(),
            confirm_start_id: "Selamat datang kembali".into(),
        }
    }

    #[test]
    fn the_lists_are_checked_before_they_are_saved() {
        let ok = validate(&input("stop\n berhenti \n\nSTOP", "mulai")).unwrap();
        assert_eq!(ok.stop, ["STOP", "BERHENTI"], "normalised, blank lines skipped, merged");
        let e = validate(&input("stop\n!!!", "mulai")).unwrap_err();
        assert_eq!(e.get("stop"), Some("consent.optout.keyword_empty"));
        let e = validate(&input("stop\nmulai", "mulai")).unwrap_err();
        assert_eq!(e.get("start"), Some("consent.optout.keyword_both"));
        let e = validate(&input("", "mulai")).unwrap_err();
        assert_eq!(e.get("stop"), Some("consent.optout.stop_required"));
        let mut i = input("stop", "");
        i.confirm_start_id = "  ".into();
        assert_eq!(
            validate(&i).unwrap_err().get("confirm_start_id"),
            Some("consent.optout.text_required")
        );
    }

    #[test]
    fn indonesian_numbers_are_answered_in_indonesian() {
        assert_eq!(contact_locale(Some("6281234567890"), None, Locale::En), Locale::Id);
        assert_eq!(contact_locale(Some("16505551234"), None, Locale::En), Locale::En);
        assert_eq!(contact_locale(Some("16505551234"), None, Locale::Id), Locale::Id);
        assert_eq!(contact_locale(None, Some("ID.8812345"), Locale::En), Locale::Id);
        assert_eq!(contact_locale(None, Some("US.8812345"), Locale::En), Locale::En);
        assert_eq!(contact_locale(None, None, Locale::En), Locale::En);
    }
}
