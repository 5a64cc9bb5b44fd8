//! A template being written in the app: its parts in Whacaster's terms, the checks Meta
//! would otherwise reject it for (each named, in both languages), the preview as
//! WhatsApp shows it, and the one place that turns it into Meta's create body.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Longest name Meta takes.
pub const MAX_NAME: usize = 512;
pub const MAX_HEADER: usize = 60;
pub const MAX_BODY: usize = 1024;
pub const MAX_FOOTER: usize = 60;
pub const MAX_BUTTON_TEXT: usize = 25;
pub const MAX_BUTTONS: usize = 10;
pub const MAX_QUICK_REPLIES: usize = 10;
pub const MAX_URL_BUTTONS: usize = 2;
pub const MAX_COPY_CODE: usize = 15;
/// Meta: at most 100 template creations per WhatsApp Business Account per hour.
pub const CREATIONS_PER_HOUR: i64 = 100;

/// Meta's template language codes: the ones Indonesian businesses use first, then the
/// rest of Meta's list. (code, name as people know it).
pub const LANGUAGES: &[(&str, &str)] = &[
    ("id", "Bahasa Indonesia"),
    ("en", "English"),
    ("en_US", "English (US)"),
    ("ms", "Bahasa Melayu"),
    ("en_GB", "English (UK)"),
    ("af", "Afrikaans"),
    ("ar", "العربية"),
    ("az", "Azərbaycan"),
    ("bg", "Български"),
    ("bn", "বাংলা"),
    ("ca", "Català"),
    ("cs", "Čeština"),
    ("da", "Dansk"),
    ("de", "Deutsch"),
    ("el", "Ελληνικά"),
    ("es", "Español"),
    ("es_AR", "Español (Argentina)"),
    ("es_ES", "Español (España)"),
    ("es_MX", "Español (México)"),
    ("et", "Eesti"),
    ("fa", "فارسی"),
    ("fi", "Suomi"),
    ("fil", "Filipino"),
    ("fr", "Français"),
    ("ga", "Gaeilge"),
    ("gu", "ગુજરાતી"),
    ("ha", "Hausa"),
    ("he", "עברית"),
    ("hi", "हिन्दी"),
    ("hr", "Hrvatski"),
    ("hu", "Magyar"),
    ("it", "Italiano"),
    ("ja", "日本語"),
    ("ka", "ქართული"),
    ("kk", "Қазақ"),
    ("kn", "ಕನ್ನಡ"),
    ("ko", "한국어"),
    ("ky_KG", "Кыргызча"),
    ("lo", "ລາວ"),
    ("lt", "Lietuvių"),
    ("lv", "Latviešu"),
    ("mk", "Македонски"),
    ("ml", "മലയാളം"),
    ("mr", "मराठी"),
    ("nb", "Norsk bokmål"),
    ("nl", "Nederlands"),
    ("pa", "ਪੰਜਾਬੀ"),
    ("pl", "Polski"),
    ("pt_BR", "Português (Brasil)"),
    ("pt_PT", "Português (Portugal)"),
    ("ro", "Română"),
    ("ru", "Русский"),
    ("rw_RW", "Kinyarwanda"),
    ("sk", "Slovenčina"),
    ("sl", "Slovenščina"),
    ("sq", "Shqip"),
    ("sr", "Српски"),
    ("sv", "Svenska"),
    ("sw", "Kiswahili"),
    ("ta", "தமிழ்"),
    ("te", "తెలుగు"),
    ("th", "ไทย"),
    ("tr", "Türkçe"),
    ("uk", "Українська"),
    ("ur", "اردو"),
    ("uz", "Oʻzbek"),
    ("vi", "Tiếng Việt"),
    ("zh_CN", "中文（简体）"),
    ("zh_HK", "中文（香港）"),
    ("zh_TW", "中文（台灣）"),
    ("zu", "isiZulu"),
];

/// What a template is for (Meta prices and limits by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Category {
    Marketing,
    Utility,
    Authentication,
}

impl Category {
    pub const ALL: [Category; 3] = [Category::Marketing, Category::Utility, Category::Authentication];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Marketing => "MARKETING",
            Category::Utility => "UTILITY",
            Category::Authentication => "AUTHENTICATION",
        }
    }

    pub fn parse(s: &str) -> Option<Category> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// The header of a template: text (one variable at most) or a media sample.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "snake_case")]
pub enum Header {
    #[default]
    None,
    Text {
        text: String,
        /// The example for the header's variable, when it has one.
        #[serde(default)]
        example: String,
    },
    Image,
    Video,
    Document,
}

impl Header {
    /// Meta's `format` word (`""` for none).
    pub fn format(&self) -> &'static str {
        match self {
            Header::None => "",
            Header::Text { .. } => "TEXT",
            Header::Image => "IMAGE",
            Header::Video => "VIDEO",
            Header::Document => "DOCUMENT",
        }
    }

    pub fn is_media(&self) -> bool {
        matches!(self, Header::Image | Header::Video | Header::Document)
    }

    /// The MIME types Meta's upload takes for this header, and the largest sample.
    pub fn accepts(&self) -> (&'static [&'static str], usize) {
        match self {
            Header::Image => (&["image/jpeg", "image/png"], 5 * 1024 * 1024),
            Header::Video => (&["video/mp4"], 16 * 1024 * 1024),
            Header::Document => (&["application/pdf"], 100 * 1024 * 1024),
            _ => (&[], 0),
        }
    }
}

/// A button, in Whacaster's terms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Button {
    QuickReply {
        text: String,
    },
    /// A link; at most one variable, at the very end of the URL (`…/{{1}}`).
    Url {
        text: String,
        url: String,
        /// The variable's example (what `{{1}}` stands for).
        #[serde(default)]
        example: String,
    },
    Phone {
        text: String,
        phone: String,
    },
    /// "Copy offer code": WhatsApp writes the button's text itself.
    CopyCode {
        example: String,
    },
}

impl Button {
    pub fn kind(&self) -> &'static str {
        match self {
            Button::QuickReply { .. } => "quick_reply",
            Button::Url { .. } => "url",
            Button::Phone { .. } => "phone",
            Button::CopyCode { .. } => "copy_code",
        }
    }

    /// What the button says (a copy-code button's text is WhatsApp's own).
    pub fn text(&self) -> &str {
        match self {
            Button::QuickReply { text } | Button::Url { text, .. } | Button::Phone { text, .. } => text,
            Button::CopyCode { .. } => "",
        }
    }
}

/// The example values a template was made with, kept for its preview.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Examples {
    /// Body variable (`1`, `first_name`) → example.
    #[serde(default)]
    pub body: BTreeMap<String, String>,
    #[serde(default)]
    pub header: String,
}

/// A template as written in the form or sent to the API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Draft {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub language: String,
    #[serde(default)]
    pub header: Header,
    #[serde(default)]
    pub body: String,
    /// Body variable (`1`, `first_name`) → example.
    #[serde(default)]
    pub examples: BTreeMap<String, String>,
    #[serde(default)]
    pub footer: String,
    #[serde(default)]
    pub buttons: Vec<Button>,
}

/// One thing to fix before the template can go to Meta.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The form field it is about.
    pub field: &'static str,
    /// The catalogue key of the message.
    pub key: &'static str,
    /// Values for the message's `{placeholders}`.
    pub args: Vec<(&'static str, String)>,
    /// A time the message names as `{time}` (shown in the business's time zone).
    pub at: Option<i64>,
}

impl Problem {
    pub fn new(field: &'static str, key: &'static str) -> Problem {
        Problem {
            field,
            key,
            args: Vec::new(),
            at: None,
        }
    }

    #[must_use]
    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Problem {
        self.args.push((name, value.into()));
        self
    }

    /// The message in a language (times in the business's time zone).
    pub fn message(&self, locale: crate::i18n::Locale, tz: Option<chrono_tz::Tz>) -> String {
        // Within the next hour: the time of day is enough (and the zone), not the date.
        let time = self
            .at
            .map(|t| {
                let full = crate::clock::format_unix(t, tz);
                full.split_once(' ').map_or(full.clone(), |(_, rest)| rest.to_string())
            })
            .unwrap_or_default();
        let mut args: Vec<(&str, &str)> = self.args.iter().map(|(k, v)| (*k, v.as_str())).collect();
        args.push(("time", &time));
        crate::i18n::tf(locale, self.key, &args)
    }
}

/// A `{{…}}` in a text: what is inside, and where it stands (byte offsets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Var {
    pub name: String,
    pub start: usize,
    pub end: usize,
}

/// How a variable is written: `{{1}}` or `{{first_name}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarKind {
    Positional,
    Named,
    Invalid,
}

impl Var {
    pub fn kind(&self) -> VarKind {
        let n = self.name.as_str();
        if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && !n.starts_with('0') {
            VarKind::Positional
        } else if n.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
            && n.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            VarKind::Named
        } else {
            VarKind::Invalid
        }
    }
}

/// Every `{{…}}` of a text, in order; an opening `{{` without its `}}` is one too (with
/// everything after it as its name, so it is reported as invalid).
pub fn variables(text: &str) -> Vec<Var> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find("{{") {
        let start = from + i;
        match text[start + 2..].find("}}") {
            Some(j) => {
                let end = start + 2 + j + 2;
                out.push(Var {
                    name: text[start + 2..start + 2 + j].to_string(),
                    start,
                    end,
                });
                from = end;
            }
            None => {
                out.push(Var {
                    name: text[start + 2..].to_string(),
                    start,
                    end: text.len(),
                });
                break;
            }
        }
    }
    out
}

/// The distinct variable names of a text, in the order they first appear.
pub fn distinct_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for v in variables(text) {
        if !names.contains(&v.name) {
            names.push(v.name);
        }
    }
    names
}

/// The variables of a text in the order their values are given: numbered ones by
/// number, named ones as they first appear (Meta's order for examples and sends).
pub fn param_order(text: &str) -> Vec<String> {
    let mut names = distinct_names(text);
    if names.iter().all(|n| n.bytes().all(|b| b.is_ascii_digit())) {
        names.sort_by_key(|n| n.parse::<u32>().unwrap_or(u32::MAX));
    }
    names
}

/// `text` with each `{{var}}` replaced by its example (kept as is when it has none).
pub fn fill(text: &str, examples: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for v in variables(text) {
        out.push_str(&text[at..v.start]);
        match examples.get(&v.name).map(|e| e.trim()).filter(|e| !e.is_empty()) {
            Some(e) => out.push_str(e),
            None => out.push_str(&text[v.start..v.end]),
        }
        at = v.end;
    }
    out.push_str(&text[at..]);
    out
}

/// A name Meta takes: lowercase letters, digits and underscores, 1 to 512 of them.
pub fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

pub fn known_language(code: &str) -> bool {
    LANGUAGES.iter().any(|(c, _)| *c == code)
}

/// What the phone shows: header, body with the examples filled in, footer, buttons.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Preview {
    /// `""`, `TEXT`, `IMAGE`, `VIDEO` or `DOCUMENT`.
    pub header_format: &'static str,
    pub header_text: String,
    pub body: String,
    pub footer: String,
    /// (kind, text) of each button.
    pub buttons: Vec<(&'static str, String)>,
}

impl Draft {
    /// The template's variable style: named when any variable is a name.
    pub fn named(&self) -> bool {
        let header = match &self.header {
            Header::Text { text, .. } => variables(text),
            _ => Vec::new(),
        };
        variables(&self.body)
            .iter()
            .chain(header.iter())
            .any(|v| v.kind() == VarKind::Named)
    }

    /// The examples for the body's variables, in the order they appear (Meta's order).
    fn body_examples(&self) -> Vec<(String, String)> {
        param_order(&self.body)
            .into_iter()
            .map(|n| {
                let e = self.examples.get(&n).map(|e| e.trim().to_string()).unwrap_or_default();
                (n, e)
            })
            .collect()
    }

    /// The examples to keep with the stored template (for its preview).
    pub fn kept_examples(&self) -> Examples {
        Examples {
            body: self.body_examples().into_iter().collect(),
            header: match &self.header {
                Header::Text { example, .. } => example.trim().to_string(),
                _ => String::new(),
            },
        }
    }

    pub fn preview(&self) -> Preview {
        let header_text = match &self.header {
            Header::Text { text, example } => {
                let mut ex = BTreeMap::new();
                for n in distinct_names(text) {
                    ex.insert(n, example.clone());
                }
                fill(text, &ex)
            }
            _ => String::new(),
        };
        Preview {
            header_format: self.header.format(),
            header_text,
            body: fill(&self.body, &self.examples),
            footer: self.footer.clone(),
            buttons: self.buttons.iter().map(|b| (b.kind(), b.text().to_string())).collect(),
        }
    }

    /// Trims what people type around the parts (not inside them).
    pub fn tidy(&mut self) {
        self.name = self.name.trim().to_string();
        self.language = self.language.trim().to_string();
        self.category = self.category.trim().to_ascii_uppercase();
        self.body = self.body.trim().replace("\r\n", "\n");
        self.footer = self.footer.trim().to_string();
        if let Header::Text { text, example } = &mut self.header {
            *text = text.trim().to_string();
            *example = example.trim().to_string();
        }
        for v in self.examples.values_mut() {
            *v = v.trim().to_string();
        }
        for b in &mut self.buttons {
            match b {
                Button::QuickReply { text } => *text = text.trim().to_string(),
                Button::Url { text, url, example } => {
                    *text = text.trim().to_string();
                    *url = url.trim().to_string();
                    *example = example.trim().to_string();
                }
                Button::Phone { text, phone } => {
                    *text = text.trim().to_string();
                    *phone = phone.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
                }
                Button::CopyCode { example } => *example = example.trim().to_string(),
            }
        }
    }

    /// Everything Meta would reject, each named. Empty: the template may be submitted.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if !valid_name(&self.name) {
            out.push(Problem::new("name", "templates.problem.name"));
        }
        if Category::parse(&self.category).is_none() {
            out.push(Problem::new("category", "templates.problem.category"));
        }
        if !known_language(&self.language) {
            out.push(Problem::new("language", "templates.problem.language"));
        }
        self.header_problems(&mut out);
        self.body_problems(&mut out);
        let footer_len = self.footer.chars().count();
        if footer_len > MAX_FOOTER {
            out.push(
                Problem::new("footer", "templates.problem.footer_long")
                    .with("n", footer_len.to_string())
                    .with("max", MAX_FOOTER.to_string()),
            );
        }
        if self.footer.contains("{{") {
            out.push(Problem::new("footer", "templates.problem.footer_vars"));
        }
        self.button_problems(&mut out);
        out
    }

    fn header_problems(&self, out: &mut Vec<Problem>) {
        let Header::Text { text, example } = &self.header else {
            return;
        };
        if text.is_empty() {
            out.push(Problem::new("header_text", "templates.problem.header_empty"));
            return;
        }
        let len = text.chars().count();
        if len > MAX_HEADER {
            out.push(
                Problem::new("header_text", "templates.problem.header_long")
                    .with("n", len.to_string())
                    .with("max", MAX_HEADER.to_string()),
            );
        }
        let vars = variables(text);
        if vars.len() > 1 {
            out.push(Problem::new("header_text", "templates.problem.header_vars"));
        }
        if let Some(v) = vars.first() {
            match v.kind() {
                VarKind::Invalid => out.push(invalid_var("header_text", v)),
                VarKind::Positional if v.name != "1" => {
                    out.push(Problem::new("header_text", "templates.problem.header_var_one"));
                }
                _ => {}
            }
            if example.is_empty() {
                out.push(Problem::new("header_example", "templates.problem.header_example"));
            }
        }
    }

    fn body_problems(&self, out: &mut Vec<Problem>) {
        let body = &self.body;
        if body.is_empty() {
            out.push(Problem::new("body", "templates.problem.body_empty"));
            return;
        }
        let len = body.chars().count();
        if len > MAX_BODY {
            out.push(
                Problem::new("body", "templates.problem.body_long")
                    .with("n", len.to_string())
                    .with("max", MAX_BODY.to_string()),
            );
        }
        let vars = variables(body);
        let mut header_vars = match &self.header {
            Header::Text { text, .. } => variables(text),
            _ => Vec::new(),
        };
        header_vars.retain(|v| v.kind() != VarKind::Invalid);
        for v in vars.iter().filter(|v| v.kind() == VarKind::Invalid) {
            out.push(invalid_var("body", v));
        }
        let kinds: Vec<VarKind> = vars
            .iter()
            .chain(header_vars.iter())
            .map(Var::kind)
            .filter(|k| *k != VarKind::Invalid)
            .collect();
        let mixed = kinds.contains(&VarKind::Named) && kinds.contains(&VarKind::Positional);
        if mixed {
            out.push(Problem::new("body", "templates.problem.mixed"));
        }
        if !mixed && kinds.first() == Some(&VarKind::Positional) {
            // {{1}}, {{2}}… each number from 1 up, none missing.
            let mut numbers: Vec<u32> = vars.iter().filter_map(|v| v.name.parse().ok()).collect();
            numbers.sort_unstable();
            numbers.dedup();
            if let Some(gap) = (1..).zip(numbers.iter()).find(|(want, got)| want != *got) {
                out.push(
                    Problem::new("body", "templates.problem.not_sequential")
                        .with("expected", format!("{{{{{}}}}}", gap.0)),
                );
            }
        }
        if let (Some(first), Some(last)) = (vars.first(), vars.last()) {
            if first.start == 0 {
                out.push(Problem::new("body", "templates.problem.var_start"));
            }
            if last.end == body.len() {
                out.push(Problem::new("body", "templates.problem.var_end"));
            }
        }
        for pair in vars.windows(2) {
            if body[pair[0].end..pair[1].start].trim().is_empty() {
                out.push(
                    Problem::new("body", "templates.problem.adjacent")
                        .with("a", format!("{{{{{}}}}}", pair[0].name))
                        .with("b", format!("{{{{{}}}}}", pair[1].name)),
                );
            }
        }
        for name in distinct_names(body) {
            let v = Var {
                name: name.clone(),
                start: 0,
                end: 0,
            };
            if v.kind() == VarKind::Invalid {
                continue;
            }
            if self.examples.get(&name).is_none_or(|e| e.trim().is_empty()) {
                out.push(
                    Problem::new("examples", "templates.problem.example_missing")
                        .with("var", format!("{{{{{name}}}}}")),
                );
            }
        }
    }

    fn button_problems(&self, out: &mut Vec<Problem>) {
        let count = |kind: &str| self.buttons.iter().filter(|b| b.kind() == kind).count();
        let limits = [
            (
                "quick_reply",
                MAX_QUICK_REPLIES,
                "templates.problem.too_many_quick_replies",
            ),
            ("url", MAX_URL_BUTTONS, "templates.problem.too_many_urls"),
            ("phone", 1, "templates.problem.too_many_phones"),
            ("copy_code", 1, "templates.problem.too_many_copy_codes"),
        ];
        for (kind, max, key) in limits {
            if count(kind) > max {
                out.push(Problem::new("buttons", key).with("max", max.to_string()));
            }
        }
        if self.buttons.len() > MAX_BUTTONS {
            out.push(
                Problem::new("buttons", "templates.problem.too_many_buttons").with("max", MAX_BUTTONS.to_string()),
            );
        }
        for (i, b) in self.buttons.iter().enumerate() {
            let n = (i + 1).to_string();
            if !matches!(b, Button::CopyCode { .. }) {
                let len = b.text().chars().count();
                if len == 0 {
                    out.push(Problem::new("buttons", "templates.problem.button_text_empty").with("n", n.clone()));
                } else if len > MAX_BUTTON_TEXT {
                    out.push(
                        Problem::new("buttons", "templates.problem.button_text_long")
                            .with("n", n.clone())
                            .with("max", MAX_BUTTON_TEXT.to_string()),
                    );
                }
                if b.text().contains("{{") {
                    out.push(Problem::new("buttons", "templates.problem.button_text_vars").with("n", n.clone()));
                }
            }
            match b {
                Button::Url { url, example, .. } => {
                    let parsed = url::Url::parse(&url.replace("{{1}}", "x"));
                    if !parsed.is_ok_and(|u| u.scheme() == "https" || u.scheme() == "http") || url.len() > 2000 {
                        out.push(Problem::new("buttons", "templates.problem.url_invalid").with("n", n.clone()));
                    }
                    let vars = variables(url);
                    if vars.len() > 1 || vars.first().is_some_and(|v| v.name != "1" || v.end != url.len()) {
                        out.push(Problem::new("buttons", "templates.problem.url_var_end").with("n", n.clone()));
                    } else if !vars.is_empty() && example.is_empty() {
                        out.push(Problem::new("buttons", "templates.problem.url_example").with("n", n.clone()));
                    }
                }
                Button::Phone { phone, .. } => {
                    let digits = phone.strip_prefix('+').unwrap_or("");
                    if !(5..=20).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
                        out.push(Problem::new("buttons", "templates.problem.phone_invalid").with("n", n.clone()));
                    }
                }
                Button::CopyCode { example } => {
                    if example.is_empty() || example.chars().count() > MAX_COPY_CODE || example.contains("{{") {
                        out.push(
                            Problem::new("buttons", "templates.problem.copy_code_invalid")
                                .with("n", n.clone())
                                .with("max", MAX_COPY_CODE.to_string()),
                        );
                    }
                }
                Button::QuickReply { .. } => {}
            }
        }
    }

    /// Meta's create body (`POST /{waba}/message_templates`). `header_handle` is the
    /// Resumable Upload handle of a media header's sample.
    pub fn to_meta(&self, header_handle: Option<&str>) -> Value {
        let named = self.named();
        let mut components = Vec::new();
        match &self.header {
            Header::None => {}
            Header::Text { text, example } => {
                let mut h = json!({"type": "HEADER", "format": "TEXT", "text": text});
                if let Some(v) = variables(text).first() {
                    h["example"] = if named {
                        json!({"header_text_named_params": [{"param_name": v.name, "example": example}]})
                    } else {
                        json!({"header_text": [example]})
                    };
                }
                components.push(h);
            }
            media => {
                components.push(json!({"type": "HEADER", "format": media.format(),
                    "example": {"header_handle": [header_handle.unwrap_or("")]}}));
            }
        }
        let mut body = json!({"type": "BODY", "text": self.body});
        let examples = self.body_examples();
        if !examples.is_empty() {
            body["example"] = if named {
                let params: Vec<Value> = examples
                    .iter()
                    .map(|(n, e)| json!({"param_name": n, "example": e}))
                    .collect();
                json!({ "body_text_named_params": params })
            } else {
                let values: Vec<&String> = examples.iter().map(|(_, e)| e).collect();
                json!({ "body_text": [values] })
            };
        }
        components.push(body);
        if !self.footer.is_empty() {
            components.push(json!({"type": "FOOTER", "text": self.footer}));
        }
        if !self.buttons.is_empty() {
            let buttons: Vec<Value> = self
                .buttons
                .iter()
                .map(|b| match b {
                    Button::QuickReply { text } => json!({"type": "QUICK_REPLY", "text": text}),
                    Button::Url { text, url, example } => {
                        let mut u = json!({"type": "URL", "text": text, "url": url});
                        if url.contains("{{1}}") {
                            u["example"] = json!([url.replace("{{1}}", example)]);
                        }
                        u
                    }
                    Button::Phone { text, phone } => {
                        json!({"type": "PHONE_NUMBER", "text": text, "phone_number": phone})
                    }
                    Button::CopyCode { example } => json!({"type": "COPY_CODE", "example": example}),
                })
                .collect();
            components.push(json!({"type": "BUTTONS", "buttons": buttons}));
        }
        json!({
            "name": self.name,
            "language": self.language,
            "category": Category::parse(&self.category).map_or("", Category::as_str),
            "parameter_format": if named { "named" } else { "positional" },
            "components": components,
        })
    }
}

fn invalid_var(field: &'static str, v: &Var) -> Problem {
    Problem::new(field, "templates.problem.var_invalid").with("var", format!("{{{{{}}}}}", v.name))
}

/// Every catalogue key a problem can carry (a test checks both languages have them).
pub const PROBLEM_KEYS: &[&str] = &[
    "templates.problem.name",
    "templates.problem.name_taken",
    "templates.problem.category",
    "templates.problem.language",
    "templates.problem.header_empty",
    "templates.problem.header_long",
    "templates.problem.header_vars",
    "templates.problem.header_var_one",
    "templates.problem.header_example",
    "templates.problem.header_file",
    "templates.problem.header_file_type",
    "templates.problem.header_file_big",
    "templates.problem.app_id_missing",
    "templates.problem.body_empty",
    "templates.problem.body_long",
    "templates.problem.var_invalid",
    "templates.problem.mixed",
    "templates.problem.not_sequential",
    "templates.problem.var_start",
    "templates.problem.var_end",
    "templates.problem.adjacent",
    "templates.problem.example_missing",
    "templates.problem.footer_long",
    "templates.problem.footer_vars",
    "templates.problem.too_many_quick_replies",
    "templates.problem.too_many_urls",
    "templates.problem.too_many_phones",
    "templates.problem.too_many_copy_codes",
    "templates.problem.too_many_buttons",
    "templates.problem.button_text_empty",
    "templates.problem.button_text_long",
    "templates.problem.button_text_vars",
    "templates.problem.url_invalid",
    "templates.problem.url_var_end",
    "templates.problem.url_example",
    "templates.problem.phone_invalid",
    "templates.problem.copy_code_invalid",
    "templates.problem.rate_limit",
    "templates.problem.number",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> Draft {
        Draft {
            name: "order_update".into(),
            category: "UTILITY".into(),
            language: "id".into(),
            body: "Halo {{1}}, pesanan {{2}} sudah dikirim.".into(),
            examples: [("1".into(), "Budi".into()), ("2".into(), "#77".into())].into(),
            ..Draft::default()
        }
    }

    fn keys(d: &Draft) -> Vec<&'static str> {
        d.problems()
            .into_iter()
            .map(|p| p.key.trim_start_matches("templates.problem."))
            .collect()
    }

    #[test]
    fn a_good_draft_has_no_problem() {
        assert!(good().problems().is_empty(), "{:?}", good().problems());
    }

    #[test]
    fn names_follow_metas_rule() {
        assert!(valid_name("order_update_2"));
        for bad in ["", "Order", "order update", "pesanan-baru", "café"] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert!(valid_name(&"a".repeat(512)) && !valid_name(&"a".repeat(513)));
    }

    #[test]
    fn each_body_rule_is_named() {
        let with_body = |b: &str| Draft {
            body: b.into(),
            ..good()
        };
        assert_eq!(
            keys(&with_body("Halo {{1}}, ini {{3}} ya.")),
            ["not_sequential", "example_missing"]
        );
        assert_eq!(keys(&with_body("{{1}} halo, pesanan {{2}} siap.")), ["var_start"]);
        assert_eq!(keys(&with_body("Halo {{1}}, pesanan {{2}}")), ["var_end"]);
        assert_eq!(keys(&with_body("Halo {{1}} {{2}} siap.")), ["adjacent"]);
        let mut mixed = with_body("Halo {{first_name}}, pesanan {{2}} siap.");
        mixed.examples.insert("first_name".into(), "Budi".into());
        assert_eq!(keys(&mixed), ["mixed"]);
        assert_eq!(
            keys(&Draft {
                examples: BTreeMap::new(),
                ..good()
            }),
            ["example_missing", "example_missing"]
        );
        assert_eq!(keys(&with_body("Halo {{First Name}} apa kabar")), ["var_invalid"]);
        assert_eq!(keys(&with_body(&"a".repeat(1025))), ["body_long"]);
        assert_eq!(keys(&with_body("")), ["body_empty"]);
    }

    #[test]
    fn header_footer_and_buttons_have_their_limits() {
        let header = |t: &str, e: &str| Draft {
            header: Header::Text {
                text: t.into(),
                example: e.into(),
            },
            ..good()
        };
        assert_eq!(keys(&header(&"x".repeat(61), "")), ["header_long"]);
        assert_eq!(keys(&header("Hai {{1}} dan {{2}}", "a")), ["header_vars"]);
        assert_eq!(keys(&header("Hai {{1}}", "")), ["header_example"]);
        assert!(keys(&header("Hai {{1}}", "Budi")).is_empty());
        let footer = Draft {
            footer: "Toko {{1}}".into(),
            ..good()
        };
        assert_eq!(keys(&footer), ["footer_vars"]);
        let quick = |n: usize| Draft {
            buttons: (0..n)
                .map(|i| Button::QuickReply {
                    text: format!("Ya {i}"),
                })
                .collect(),
            ..good()
        };
        assert!(keys(&quick(10)).is_empty());
        assert_eq!(keys(&quick(11)), ["too_many_quick_replies", "too_many_buttons"]);
        let url = |u: &str, e: &str| Draft {
            buttons: vec![Button::Url {
                text: "Lacak".into(),
                url: u.into(),
                example: e.into(),
            }],
            ..good()
        };
        assert!(keys(&url("https://toko.id/lacak/{{1}}", "A1")).is_empty());
        assert_eq!(keys(&url("https://toko.id/{{1}}/lacak", "A1")), ["url_var_end"]);
        assert_eq!(keys(&url("https://toko.id/lacak/{{1}}", "")), ["url_example"]);
        assert_eq!(keys(&url("toko.id", "")), ["url_invalid"]);
        let many_urls = Draft {
            buttons: vec![
                Button::Url {
                    text: "a".into(),
                    url: "https://a.id".into(),
                    example: String::new()
                };
                3
            ],
            ..good()
        };
        assert_eq!(keys(&many_urls), ["too_many_urls"]);
        let phone = Draft {
            buttons: vec![Button::Phone {
                text: "Telepon kami sekarang juga ya kakak".into(),
                phone: "0812".into(),
            }],
            ..good()
        };
        assert_eq!(keys(&phone), ["button_text_long", "phone_invalid"]);
    }

    #[test]
    fn positional_and_named_bodies_go_to_meta_as_meta_wants() {
        let body = good().to_meta(None);
        assert_eq!(body["parameter_format"], "positional");
        assert_eq!(body["components"][0]["example"]["body_text"], json!([["Budi", "#77"]]));
        let named = Draft {
            body: "Halo {{first_name}}, pesanan {{order}} siap.".into(),
            examples: [("first_name".into(), "Budi".into()), ("order".into(), "#77".into())].into(),
            header: Header::Text {
                text: "Untuk {{first_name}}".into(),
                example: "Budi".into(),
            },
            ..good()
        };
        assert!(named.problems().is_empty(), "{:?}", named.problems());
        let m = named.to_meta(None);
        assert_eq!(m["parameter_format"], "named");
        assert_eq!(
            m["components"][0]["example"]["header_text_named_params"][0]["param_name"],
            "first_name"
        );
        assert_eq!(
            m["components"][1]["example"]["body_text_named_params"],
            json!([{"param_name": "first_name", "example": "Budi"}, {"param_name": "order", "example": "#77"}])
        );
        let media = Draft {
            header: Header::Image,
            ..good()
        };
        assert_eq!(
            media.to_meta(Some("4::aW1n"))["components"][0],
            json!({"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::aW1n"]}})
        );
    }

    #[test]
    fn the_preview_fills_in_the_examples() {
        let p = good().preview();
        assert_eq!(p.body, "Halo Budi, pesanan #77 sudah dikirim.");
        let unfilled = Draft {
            examples: BTreeMap::new(),
            ..good()
        }
        .preview();
        assert_eq!(unfilled.body, "Halo {{1}}, pesanan {{2}} sudah dikirim.");
    }

    #[test]
    fn every_problem_speaks_both_languages() {
        for key in PROBLEM_KEYS {
            for locale in crate::i18n::Locale::ALL {
                assert!(crate::i18n::messages(locale).contains_key(*key), "{key} in {locale:?}");
            }
        }
    }
}
