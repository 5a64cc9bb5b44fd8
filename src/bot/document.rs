//! The bot of a number as one document: welcome, keyword rules, flows, fallback,
//! business hours, hand-off and the guards. It is what the editor edits, what
//! `GET/PUT /api/v1/numbers/{id}/bot` exchanges, and what the intake runs; [`validate`]
//! names every problem with its place, so a document copied between numbers or kept in
//! version control is refused whole, never half-applied.
//!
//! Where to go next is a string, short enough to type: a step id of the same flow,
//! `flow:<id>` (another flow, from its first step), `handoff` or `end`.

use serde::{Deserialize, Serialize};

/// WhatsApp's limits for interactive messages (CAMPAIGNS-BOT.md C.7).
pub const BUTTON_TITLE_MAX: usize = 20;
pub const ROW_TITLE_MAX: usize = 24;
pub const ROW_DESCRIPTION_MAX: usize = 72;
pub const LIST_BUTTON_MAX: usize = 20;
pub const BODY_MAX: usize = 1024;
pub const BUTTONS_MAX: usize = 3;
pub const ROWS_MAX: usize = 10;
/// Ids travel in the button and come back in the reply; Meta allows 200 for a row.
pub const ID_MAX: usize = 64;
/// A regular expression's source; its compiled size is limited too (see `engine`).
pub const PATTERN_MAX: usize = 200;
pub const RULES_MAX: usize = 500;
pub const FLOWS_MAX: usize = 100;
pub const STEPS_MAX: usize = 100;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bot {
    /// Off: the bot sees nothing and says nothing (rules are kept).
    #[serde(default)]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub welcome: Option<Welcome>,
    #[serde(default)]
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub flows: Vec<Flow>,
    /// What an unmatched message gets; none is silence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<Hours>,
    #[serde(default)]
    pub handoff: Handoff,
    #[serde(default)]
    pub guards: Guards,
}

/// Sent on a contact's first message, or the first after `after_silence_days` quiet
/// days (0: only the very first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Welcome {
    #[serde(default = "yes")]
    pub enabled: bool,
    pub reply: Reply,
    #[serde(default)]
    pub after_silence_days: u32,
}

/// A message the bot sends: text, optionally a picture or file by HTTPS link, and up to
/// ten choices (three or fewer go out as reply buttons, more as a list).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<Media>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<Choice>,
    /// The list's button label (more than three choices); "Menu" when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub list_button: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Media {
    /// image, video or document.
    pub kind: String,
    /// An HTTPS address Meta fetches the file from.
    pub link: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

/// A button or a list row. The answer is routed by `id`, never by the title a person
/// could also type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub next: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    Exact,
    Contains,
    StartsWith,
    Regex,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(rename = "match")]
    pub kind: MatchKind,
    /// Any of these (after folding case, accents and surrounding punctuation).
    pub patterns: Vec<String>,
    /// Higher first; ties in document order.
    #[serde(default)]
    pub priority: i32,
    /// `YYYY-MM-DD`, inclusive, in the business's time zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_until: Option<String>,
    pub then: Action,
}

/// What a rule, the fallback or the welcome leads to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    Reply { reply: Reply },
    Flow { flow: String },
    Handoff,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The first is where the flow starts.
    pub steps: Vec<Step>,
}

/// A step. (No `deny_unknown_fields` here: serde cannot combine it with `flatten`.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub id: String,
    #[serde(flatten)]
    pub kind: StepKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StepKind {
    /// Says something and goes on (`next` empty: the flow ends).
    Message {
        reply: Reply,
        #[serde(default)]
        next: String,
    },
    /// Asks, checks the answer, stores it in a contact field (`name`, or a custom
    /// field), and goes on; after `retries` wrong answers, hands off.
    Ask {
        text: String,
        store: String,
        #[serde(default)]
        validate: Validate,
        /// For `validate: choice`: the accepted answers.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        options: Vec<String>,
        /// Said after a wrong answer, before asking again.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        invalid_text: String,
        #[serde(default = "three")]
        retries: u8,
        #[serde(default)]
        next: String,
    },
    /// Offers choices (buttons or a list) and waits; each choice says where it leads.
    Menu { reply: Reply },
    /// Goes on by what was collected: the first case whose value equals it.
    Branch {
        variable: String,
        cases: Vec<Case>,
        #[serde(default)]
        otherwise: String,
    },
    Handoff {
        #[serde(default, skip_serializing_if = "String::is_empty")]
        text: String,
    },
    End {
        #[serde(default, skip_serializing_if = "String::is_empty")]
        text: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Validate {
    #[default]
    Text,
    Number,
    Email,
    Date,
    Choice,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub equals: String,
    pub next: String,
}

/// Opening hours in the business's time zone (or `timezone`). An interval whose end is
/// before its start crosses midnight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hours {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// `mon`..`sun` -> intervals `HH:MM-HH:MM`.
    #[serde(default)]
    pub weekly: std::collections::BTreeMap<String, Vec<String>>,
    /// `YYYY-MM-DD`: closed all day.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holidays: Vec<String>,
    /// `YYYY-MM-DD` -> intervals replacing that weekday's (empty: closed).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub special: std::collections::BTreeMap<String, Vec<String>>,
    /// Said once per closed period per conversation; empty says nothing.
    #[serde(default)]
    pub away_text: String,
    /// No away message when an agent answered within this many minutes.
    #[serde(default = "five")]
    pub quiet_after_agent_minutes: u32,
    /// While closed, rules and flows still answer (after the away message).
    #[serde(default = "yes")]
    pub bot_while_closed: bool,
}

/// Where a hand-off puts the conversation, and what the customer is told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Handoff {
    #[serde(default)]
    pub assign: Assign,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
}

impl Default for Handoff {
    fn default() -> Handoff {
        Handoff {
            assign: Assign::RoundRobin,
            text: String::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Assign {
    /// Left in the unassigned queue.
    Unassigned,
    /// The inbox's round-robin (available agents, under their cap).
    #[default]
    RoundRobin,
    /// One agent, by user id.
    #[serde(untagged)]
    Agent(i64),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guards {
    /// A flow left half-way ends after this many minutes.
    #[serde(default = "thirty")]
    pub flow_timeout_minutes: u32,
    /// Loop guard: at most this many bot messages per conversation per minute.
    #[serde(default = "five")]
    pub max_per_minute: u32,
    /// Go back one step in a flow.
    #[serde(default = "back_words")]
    pub back_words: Vec<String>,
    /// Leave the flow.
    #[serde(default = "cancel_words")]
    pub cancel_words: Vec<String>,
    /// Said when a flow is left by a cancel word; empty says nothing.
    #[serde(default)]
    pub cancel_text: String,
}

impl Default for Guards {
    fn default() -> Guards {
        Guards {
            flow_timeout_minutes: thirty(),
            max_per_minute: five(),
            back_words: back_words(),
            cancel_words: cancel_words(),
            cancel_text: String::new(),
        }
    }
}

fn yes() -> bool {
    true
}
fn three() -> u8 {
    3
}
fn five() -> u32 {
    5
}
fn thirty() -> u32 {
    30
}
fn back_words() -> Vec<String> {
    ["0", "menu", "kembali", "back"].map(String::from).to_vec()
}
fn cancel_words() -> Vec<String> {
    ["batal", "cancel", "keluar", "exit"].map(String::from).to_vec()
}

/// One thing wrong with a document: where (`rules[2].patterns[0]`), what (an i18n key
/// under `bot.problem.`), and the detail it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub path: String,
    pub key: &'static str,
    pub detail: String,
}

impl Problem {
    fn new(path: impl Into<String>, key: &'static str, detail: impl Into<String>) -> Problem {
        Problem {
            path: path.into(),
            key,
            detail: detail.into(),
        }
    }

    /// The problem in words, in `locale`.
    pub fn message(&self, locale: crate::i18n::Locale) -> String {
        let what = crate::i18n::tf(
            locale,
            &format!("bot.problem.{}", self.key),
            &[("detail", &self.detail)],
        );
        if self.path.is_empty() {
            what
        } else {
            format!("{}: {what}", self.path)
        }
    }
}

/// Reads a document: JSON that does not fit the shape is one problem naming the line,
/// column and field serde found; one that fits is then [`validate`]d.
pub fn parse(json: &str) -> Result<Bot, Vec<Problem>> {
    let bot: Bot = serde_json::from_str(json).map_err(|e| vec![Problem::new("", "json", e.to_string())])?;
    let problems = validate(&bot);
    if problems.is_empty() { Ok(bot) } else { Err(problems) }
}

/// Every problem of a document, each with its place; empty is a document the intake
/// can run.
pub fn validate(bot: &Bot) -> Vec<Problem> {
    let mut v = Validator {
        bot,
        problems: Vec::new(),
        choice_ids: std::collections::HashSet::new(),
    };
    v.all();
    v.problems
}

struct Validator<'a> {
    bot: &'a Bot,
    problems: Vec<Problem>,
    choice_ids: std::collections::HashSet<&'a str>,
}

impl<'a> Validator<'a> {
    fn all(&mut self) {
        let bot = self.bot;
        if bot.rules.len() > RULES_MAX {
            self.problem("rules", "too_many", RULES_MAX.to_string());
        }
        if bot.flows.len() > FLOWS_MAX {
            self.problem("flows", "too_many", FLOWS_MAX.to_string());
        }
        if let Some(w) = &bot.welcome {
            self.reply("welcome.reply", &w.reply, None);
        }
        let mut rule_ids = std::collections::HashSet::new();
        for (i, r) in bot.rules.iter().enumerate() {
            let at = format!("rules[{i}]");
            self.id(&format!("{at}.id"), &r.id);
            if !rule_ids.insert(r.id.as_str()) {
                self.problem(format!("{at}.id"), "duplicate_id", &r.id);
            }
            self.rule(&at, r);
        }
        if let Some(a) = &bot.fallback {
            self.action("fallback", a);
        }
        let mut flow_ids = std::collections::HashSet::new();
        for (i, f) in bot.flows.iter().enumerate() {
            let at = format!("flows[{i}]");
            self.id(&format!("{at}.id"), &f.id);
            if !flow_ids.insert(f.id.as_str()) {
                self.problem(format!("{at}.id"), "duplicate_id", &f.id);
            }
            self.flow(&at, f);
        }
        if let Some(h) = &bot.hours {
            self.hours(h);
        }
        self.text("handoff.text", &bot.handoff.text, BODY_MAX, false);
        if bot.guards.max_per_minute == 0 {
            self.problem("guards.max_per_minute", "at_least_one", "");
        }
        if bot.guards.flow_timeout_minutes == 0 {
            self.problem("guards.flow_timeout_minutes", "at_least_one", "");
        }
    }

    fn problem(&mut self, path: impl Into<String>, key: &'static str, detail: impl Into<String>) {
        self.problems.push(Problem::new(path, key, detail));
    }

    fn id(&mut self, path: &str, id: &str) {
        let ok = !id.is_empty()
            && id.len() <= ID_MAX
            && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            && id != "handoff"
            && id != "end";
        if !ok {
            self.problem(path, "bad_id", id);
        }
    }

    fn text(&mut self, path: &str, text: &str, max: usize, required: bool) {
        let n = text.chars().count();
        if required && text.trim().is_empty() {
            self.problem(path, "empty", "");
        } else if n > max {
            self.problem(path, "too_long", format!("{n} > {max}"));
        }
    }

    fn rule(&mut self, at: &str, r: &'a Rule) {
        if r.patterns.is_empty() {
            self.problem(format!("{at}.patterns"), "empty", "");
        }
        for (j, p) in r.patterns.iter().enumerate() {
            let path = format!("{at}.patterns[{j}]");
            if super::engine::fold(p).is_empty() && r.kind != MatchKind::Regex {
                self.problem(&path, "empty", "");
            } else if p.chars().count() > PATTERN_MAX {
                self.problem(&path, "too_long", format!("{} > {PATTERN_MAX}", p.chars().count()));
            } else if r.kind == MatchKind::Regex {
                if let Err(e) = super::engine::compile_regex(p) {
                    self.problem(&path, "bad_regex", e);
                }
            }
        }
        for (field, date) in [("active_from", &r.active_from), ("active_until", &r.active_until)] {
            if let Some(d) = date.as_deref().filter(|d| super::engine::parse_date(d).is_none()) {
                self.problem(format!("{at}.{field}"), "bad_date", d);
            }
        }
        self.action(&format!("{at}.then"), &r.then);
    }

    fn action(&mut self, at: &str, a: &'a Action) {
        match a {
            Action::Reply { reply } => self.reply(&format!("{at}.reply"), reply, None),
            Action::Flow { flow } => self.target(&format!("{at}.flow"), &format!("flow:{flow}"), None),
            Action::Handoff => {}
        }
    }

    /// A target: a step of `flow` (when inside one), `flow:<id>`, `handoff`, `end`.
    fn target(&mut self, path: &str, next: &str, flow: Option<&Flow>) {
        if next.is_empty() || next == "handoff" || next == "end" {
            return;
        }
        if let Some(id) = next.strip_prefix("flow:") {
            match self.bot.flows.iter().find(|f| f.id == id) {
                Some(f) if f.steps.is_empty() => self.problem(path, "flow_empty", id),
                Some(_) => {}
                None => self.problem(path, "unknown_flow", id),
            }
            return;
        }
        match flow {
            Some(f) if f.steps.iter().any(|s| s.id == next) => {}
            Some(_) => self.problem(path, "unknown_step", next),
            None => self.problem(path, "needs_flow", next),
        }
    }

    fn reply(&mut self, at: &str, r: &'a Reply, flow: Option<&Flow>) {
        self.text(&format!("{at}.text"), &r.text, BODY_MAX, true);
        if let Some(m) = &r.media {
            if !matches!(m.kind.as_str(), "image" | "video" | "document") {
                self.problem(format!("{at}.media.kind"), "bad_media_kind", &m.kind);
            }
            if !m.link.starts_with("https://") || url::Url::parse(&m.link).is_err() {
                self.problem(format!("{at}.media.link"), "bad_link", &m.link);
            }
            if !r.choices.is_empty() && r.choices.len() > BUTTONS_MAX {
                self.problem(format!("{at}.media"), "media_with_list", "");
            }
        }
        if r.choices.len() > ROWS_MAX {
            self.problem(format!("{at}.choices"), "too_many", ROWS_MAX.to_string());
        }
        let list = r.choices.len() > BUTTONS_MAX;
        if list {
            self.text(&format!("{at}.list_button"), &r.list_button, LIST_BUTTON_MAX, false);
        }
        let mut titles = std::collections::HashSet::new();
        for (k, c) in r.choices.iter().enumerate() {
            let path = format!("{at}.choices[{k}]");
            self.id(&format!("{path}.id"), &c.id);
            if !self.choice_ids.insert(c.id.as_str()) {
                self.problem(format!("{path}.id"), "duplicate_id", &c.id);
            }
            let max = if list { ROW_TITLE_MAX } else { BUTTON_TITLE_MAX };
            self.text(&format!("{path}.title"), &c.title, max, true);
            if !titles.insert(c.title.trim().to_lowercase()) {
                self.problem(format!("{path}.title"), "duplicate_title", &c.title);
            }
            if list {
                self.text(
                    &format!("{path}.description"),
                    &c.description,
                    ROW_DESCRIPTION_MAX,
                    false,
                );
            } else if !c.description.is_empty() {
                self.problem(format!("{path}.description"), "description_needs_list", "");
            }
            if c.next.is_empty() {
                self.problem(format!("{path}.next"), "empty", "");
            }
            self.target(&format!("{path}.next"), &c.next, flow);
        }
    }

    fn flow(&mut self, at: &str, f: &'a Flow) {
        if f.steps.is_empty() {
            self.problem(format!("{at}.steps"), "empty", "");
        }
        if f.steps.len() > STEPS_MAX {
            self.problem(format!("{at}.steps"), "too_many", STEPS_MAX.to_string());
        }
        let mut ids = std::collections::HashSet::new();
        for (i, s) in f.steps.iter().enumerate() {
            let path = format!("{at}.steps[{i}]");
            self.id(&format!("{path}.id"), &s.id);
            if !ids.insert(s.id.as_str()) {
                self.problem(format!("{path}.id"), "duplicate_id", &s.id);
            }
            self.step(&path, &s.kind, f);
        }
    }

    fn step(&mut self, path: &str, kind: &'a StepKind, f: &'a Flow) {
        match kind {
            StepKind::Message { reply, next } => {
                self.reply(&format!("{path}.reply"), reply, Some(f));
                if !reply.choices.is_empty() {
                    self.problem(format!("{path}.reply.choices"), "choices_need_menu", "");
                }
                self.target(&format!("{path}.next"), next, Some(f));
            }
            StepKind::Ask {
                text,
                store,
                validate,
                options,
                retries,
                invalid_text,
                next,
            } => {
                self.text(&format!("{path}.text"), text, BODY_MAX, true);
                self.text(&format!("{path}.invalid_text"), invalid_text, BODY_MAX, false);
                if !valid_field(store) {
                    self.problem(format!("{path}.store"), "bad_field", store);
                }
                if *validate == Validate::Choice && options.is_empty() {
                    self.problem(format!("{path}.options"), "empty", "");
                }
                if *retries == 0 || *retries > 10 {
                    self.problem(format!("{path}.retries"), "retries_range", retries.to_string());
                }
                self.target(&format!("{path}.next"), next, Some(f));
            }
            StepKind::Menu { reply } => {
                if reply.choices.is_empty() {
                    self.problem(format!("{path}.reply.choices"), "empty", "");
                }
                self.reply(&format!("{path}.reply"), reply, Some(f));
            }
            StepKind::Branch {
                variable,
                cases,
                otherwise,
            } => {
                if !valid_field(variable) {
                    self.problem(format!("{path}.variable"), "bad_field", variable);
                }
                for (k, c) in cases.iter().enumerate() {
                    self.target(&format!("{path}.cases[{k}].next"), &c.next, Some(f));
                }
                self.target(&format!("{path}.otherwise"), otherwise, Some(f));
            }
            StepKind::Handoff { text } | StepKind::End { text } => {
                self.text(&format!("{path}.text"), text, BODY_MAX, false);
            }
        }
    }

    fn hours(&mut self, h: &Hours) {
        if let Some(tz) = h.timezone.as_deref().filter(|tz| tz.parse::<chrono_tz::Tz>().is_err()) {
            self.problem("hours.timezone", "bad_timezone", tz);
        }
        for (day, intervals) in &h.weekly {
            if super::hours::weekday(day).is_none() {
                self.problem(format!("hours.weekly.{day}"), "bad_day", day);
            }
            for (k, i) in intervals.iter().enumerate() {
                if super::hours::parse_interval(i).is_none() {
                    self.problem(format!("hours.weekly.{day}[{k}]"), "bad_interval", i);
                }
            }
        }
        for (k, d) in h.holidays.iter().enumerate() {
            if super::engine::parse_date(d).is_none() {
                self.problem(format!("hours.holidays[{k}]"), "bad_date", d);
            }
        }
        for (d, intervals) in &h.special {
            if super::engine::parse_date(d).is_none() {
                self.problem(format!("hours.special.{d}"), "bad_date", d);
            }
            for (k, i) in intervals.iter().enumerate() {
                if super::hours::parse_interval(i).is_none() {
                    self.problem(format!("hours.special.{d}[{k}]"), "bad_interval", i);
                }
            }
        }
        self.text("hours.away_text", &h.away_text, BODY_MAX, false);
    }
}

/// A contact field an answer may go to: `name`, or a custom field's key.
pub fn valid_field(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 40
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choice(id: &str, title: &str, next: &str) -> Choice {
        Choice {
            id: id.into(),
            title: title.into(),
            description: String::new(),
            next: next.into(),
        }
    }

    #[test]
    fn a_sound_document_has_no_problem_and_round_trips() {
        let json = r#"{
          "enabled": true,
          "welcome": {"reply": {"text": "Halo! Selamat datang.", "choices": [
             {"id": "w_order", "title": "Pesan", "next": "flow:order"},
             {"id": "w_cs", "title": "Bicara dengan CS", "next": "handoff"}]}},
          "rules": [{"id": "harga", "match": "contains", "patterns": ["harga", "price"],
                     "then": {"do": "reply", "reply": {"text": "Harga mulai Rp25.000"}}}],
          "flows": [{"id": "order", "steps": [
             {"id": "ask_name", "type": "ask", "text": "Nama Anda?", "store": "name", "next": "done"},
             {"id": "done", "type": "end", "text": "Terima kasih"}]}],
          "fallback": {"do": "handoff"},
          "hours": {"weekly": {"mon": ["09:00-17:00"], "fri": ["22:00-02:00"]}, "away_text": "Kami tutup"},
          "handoff": {"assign": 7}
        }"#;
        let bot = parse(json).expect("valid");
        assert_eq!(bot.handoff.assign, Assign::Agent(7));
        assert_eq!(bot.guards.max_per_minute, 5, "defaults fill what is left out");
        let again = parse(&serde_json::to_string(&bot).expect("json")).expect("round trip");
        assert_eq!(again, bot);
    }

    #[test]
    fn every_problem_is_named_with_its_place() {
        let mut bot = Bot::default();
        bot.rules.push(Rule {
            id: "r 1".into(),
            name: String::new(),
            enabled: true,
            kind: MatchKind::Regex,
            patterns: vec!["(unclosed".into()],
            priority: 0,
            active_from: Some("2026-13-01".into()),
            active_until: None,
            then: Action::Flow { flow: "nowhere".into() },
        });
        bot.flows.push(Flow {
            id: "menu".into(),
            name: String::new(),
            enabled: true,
            steps: vec![Step {
                id: "top".into(),
                kind: StepKind::Menu {
                    reply: Reply {
                        text: "Pilih".into(),
                        choices: vec![
                            choice("a", "Satu judul yang terlalu panjang", "top"),
                            choice("b", "Dua", "missing"),
                        ],
                        ..Reply::default()
                    },
                },
            }],
        });
        let found: Vec<(String, &str)> = validate(&bot).into_iter().map(|p| (p.path, p.key)).collect();
        for expected in [
            ("rules[0].id", "bad_id"),
            ("rules[0].patterns[0]", "bad_regex"),
            ("rules[0].active_from", "bad_date"),
            ("rules[0].then.flow", "unknown_flow"),
            ("flows[0].steps[0].reply.choices[0].title", "too_long"),
            ("flows[0].steps[0].reply.choices[1].next", "unknown_step"),
        ] {
            assert!(
                found.iter().any(|(p, k)| p == expected.0 && *k == expected.1),
                "{expected:?} not in {found:?}"
            );
        }
    }

    #[test]
    fn a_list_allows_longer_titles_and_descriptions_but_not_eleven_rows() {
        let rows: Vec<Choice> = (0..11)
            .map(|i| choice(&format!("r{i}"), "Kopi Gayo 250 gram", "end"))
            .collect();
        let mut bot = Bot {
            fallback: Some(Action::Reply {
                reply: Reply {
                    text: "Menu".into(),
                    choices: rows[..10].to_vec(),
                    ..Reply::default()
                },
            }),
            ..Bot::default()
        };
        let problems = validate(&bot);
        assert!(
            problems.iter().all(|p| p.key != "too_long"),
            "24 characters fit a row: {problems:?}"
        );
        assert!(problems.iter().any(|p| p.key == "duplicate_title"));
        bot.fallback = Some(Action::Reply {
            reply: Reply {
                text: "Menu".into(),
                choices: rows,
                ..Reply::default()
            },
        });
        assert!(
            validate(&bot)
                .iter()
                .any(|p| p.path == "fallback.reply.choices" && p.key == "too_many")
        );
    }

    #[test]
    fn json_that_does_not_fit_names_the_field() {
        let err = parse(r#"{"enabled": true, "rulez": []}"#).expect_err("unknown field");
        assert_eq!(err[0].key, "json");
        assert!(err[0].detail.contains("rulez"), "{}", err[0].detail);
    }
}
