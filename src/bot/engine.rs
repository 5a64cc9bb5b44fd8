//! The bot's decision, pure: a document, where the conversation is, the message and
//! the situation in; what to say, what to store, whether to hand off and why out. The
//! intake applies a decision in its transaction; the test chat only shows it. Nothing
//! here touches the database or the clock, so every branch is a unit test.
//!
//! Order (CAMPAIGNS-BOT.md E.5): switched off, consent keyword, opted out, a person
//! has it, not for a bot (reactions…), window closed, loop guard; then business hours
//! (away message once per closed period), welcome, an answer by button or row id,
//! the flow step waiting, keyword rules by priority, fallback.

use super::document::{Action, Bot, Choice, MatchKind, Reply, StepKind, Validate};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A regular expression's compiled program may be this large (bytes): a pattern that
/// would blow up is refused when the document is saved.
const REGEX_SIZE: usize = 256 * 1024;
/// A flow's steps that say something and go on, followed in one decision at most.
const CHAIN_MAX: usize = 10;

/// Text as the bot compares it: the keyword normalisation of the opt-out (surrounding
/// punctuation gone, spaces collapsed), then accents dropped and lower case: "Kembali!"
/// and "kembali", "Café" and "cafe" are one.
pub fn fold(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let plain: String = crate::contacts::optout::normalize(text)
        .nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .collect();
    plain.to_lowercase()
}

/// A rule's regular expression, case-insensitive, size-limited; applied to folded text.
pub fn compile_regex(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(true)
        .size_limit(REGEX_SIZE)
        .dfa_size_limit(REGEX_SIZE)
        .build()
        .map_err(|e| e.to_string().lines().last().unwrap_or_default().trim().to_string())
}

/// `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()
}

enum Matcher {
    Words(Vec<String>),
    Regex(Vec<regex::Regex>),
}

struct CompiledRule {
    index: usize,
    matcher: Matcher,
    from: Option<NaiveDate>,
    until: Option<NaiveDate>,
}

/// A document ready to run: rules in the order they are tried, patterns folded and
/// regular expressions compiled once (the intake keeps it until the document changes).
pub struct Compiled {
    pub bot: Bot,
    pub version: i64,
    rules: Vec<CompiledRule>,
}

impl Compiled {
    pub fn new(bot: Bot, version: i64) -> Compiled {
        let mut rules: Vec<CompiledRule> = bot
            .rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.enabled)
            .filter_map(|(index, r)| {
                let matcher = match r.kind {
                    MatchKind::Regex => {
                        let compiled: Result<Vec<_>, _> = r.patterns.iter().map(|p| compile_regex(p)).collect();
                        match compiled {
                            Ok(v) => Matcher::Regex(v),
                            Err(e) => {
                                // Saved documents were validated; this is a rule the
                                // regex engine of a newer build refuses: skipped, logged.
                                tracing::warn!(rule = %r.id, error = %e, "bot rule skipped: its pattern does not compile");
                                return None;
                            }
                        }
                    }
                    _ => Matcher::Words(r.patterns.iter().map(|p| fold(p)).filter(|p| !p.is_empty()).collect()),
                };
                Some(CompiledRule {
                    index,
                    matcher,
                    from: r.active_from.as_deref().and_then(parse_date),
                    until: r.active_until.as_deref().and_then(parse_date),
                })
            })
            .collect();
        // Higher priority first; a stable sort keeps document order among equals.
        rules.sort_by_key(|r| std::cmp::Reverse(bot.rules[r.index].priority));
        Compiled { bot, version, rules }
    }

    /// The first rule that matches `folded` on `today`, by priority.
    fn rule_for(&self, folded: &str, today: NaiveDate) -> Option<usize> {
        if folded.is_empty() {
            return None;
        }
        self.rules
            .iter()
            .filter(|r| r.from.is_none_or(|d| today >= d) && r.until.is_none_or(|d| today <= d))
            .find(|r| {
                let kind = self.bot.rules[r.index].kind;
                match &r.matcher {
                    Matcher::Regex(list) => list.iter().any(|re| re.is_match(folded)),
                    Matcher::Words(list) => list.iter().any(|p| match kind {
                        MatchKind::Exact => folded == p,
                        MatchKind::StartsWith => folded.starts_with(p.as_str()),
                        _ => folded.contains(p.as_str()),
                    }),
                }
            })
            .map(|r| r.index)
    }

    fn flow(&self, id: &str) -> Option<&super::document::Flow> {
        self.bot.flows.iter().find(|f| f.id == id && f.enabled)
    }

    /// A choice anywhere in the document, by id (ids are unique in a document).
    fn choice(&self, id: &str) -> Option<(Option<&str>, &Choice)> {
        fn in_reply<'r>(r: &'r Reply, id: &str) -> Option<(Option<&'r str>, &'r Choice)> {
            r.choices.iter().find(|c| c.id == id).map(|c| (None, c))
        }
        fn action_reply<'r>(a: &'r Action, id: &str) -> Option<(Option<&'r str>, &'r Choice)> {
            match a {
                Action::Reply { reply } => in_reply(reply, id),
                _ => None,
            }
        }
        let b = &self.bot;
        if let Some(found) = b.welcome.as_ref().and_then(|w| in_reply(&w.reply, id)) {
            return Some(found);
        }
        if let Some(found) = b.rules.iter().find_map(|r| action_reply(&r.then, id)) {
            return Some(found);
        }
        if let Some(found) = b.fallback.as_ref().and_then(|a| action_reply(a, id)) {
            return Some(found);
        }
        b.flows.iter().find_map(|f| {
            f.steps.iter().find_map(|s| match &s.kind {
                StepKind::Menu { reply } => reply
                    .choices
                    .iter()
                    .find(|c| c.id == id)
                    .map(|c| (Some(f.id.as_str()), c)),
                _ => None,
            })
        })
    }
}

/// Where the bot is in a conversation (a row of `bot_sessions`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Session {
    pub flow: Option<String>,
    pub step: Option<String>,
    pub retries: u8,
    /// The waiting steps passed through, for "back".
    pub trail: Vec<String>,
    /// What the flows collected (also stored in the contact's fields).
    pub collected: BTreeMap<String, String>,
    pub step_at: Option<i64>,
    /// A person has the conversation since (the conversation's `bot_off_at`).
    pub handed_off_at: Option<i64>,
    /// The closed period whose away message this conversation got.
    pub away_period: Option<i64>,
}

impl Session {
    fn leave_flow(&mut self) {
        self.flow = None;
        self.step = None;
        self.retries = 0;
        self.trail.clear();
        self.step_at = None;
    }
}

/// What came in.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The message type: text, button, interactive, image, reaction…
    pub kind: &'a str,
    pub text: &'a str,
    /// The id of the button or list row pressed (a template's quick-reply payload too).
    pub reply_id: Option<&'a str>,
}

/// What the bot knows about the moment.
#[derive(Debug, Clone, Copy)]
#[expect(clippy::struct_excessive_bools, reason = "each is one fact the intake read")]
pub struct Situation {
    pub now: i64,
    pub today: NaiveDate,
    /// The business is open (no hours set: always).
    pub open: bool,
    /// When the closed period began, when closed.
    pub closed_since: Option<i64>,
    /// The contact's first message, or the first after the welcome's days of silence.
    pub welcome_due: bool,
    pub window_open: bool,
    /// The contact refused every message (utility too).
    pub opted_out: bool,
    /// The message was a stop or start keyword (the consent step answered it).
    pub consent_keyword: bool,
    pub sent_last_minute: u32,
    pub agent_answered_at: Option<i64>,
}

/// Why the bot said nothing, or what it did, for the log.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decision {
    /// What it said, in order.
    pub say: Vec<Reply>,
    /// Contact fields to set: (field, value).
    pub store: Vec<(String, String)>,
    /// A person takes over, for this reason.
    pub handoff: Option<String>,
    /// `welcome`, `rule`, `flow`, `away`, `fallback`, `handoff`… or why silent:
    /// `off`, `handed_off`, `outside_window`, `rate_guard`, `opted_out`…
    pub steps: Vec<(&'static str, String)>,
}

impl Decision {
    fn note(&mut self, kind: &'static str, detail: impl Into<String>) {
        self.steps.push((kind, detail.into()));
    }

    fn silent(kind: &'static str) -> Decision {
        let mut d = Decision::default();
        d.note(kind, "");
        d
    }

    /// `welcome+rule`: the log's decision column.
    pub fn kinds(&self) -> String {
        let kinds: Vec<&str> = self.steps.iter().map(|(k, _)| *k).collect();
        kinds.join("+")
    }

    /// `rule harga; flow order/ask_name`: the log's detail column.
    pub fn details(&self) -> String {
        let parts: Vec<String> = self
            .steps
            .iter()
            .filter(|(_, d)| !d.is_empty())
            .map(|(k, d)| format!("{k} {d}"))
            .collect();
        parts.join("; ")
    }

    /// Whether the bot is silent (said nothing and handed nothing off).
    pub fn is_silent(&self) -> bool {
        self.say.is_empty() && self.handoff.is_none()
    }
}

/// Message types the bot answers; reactions, system notices, unsupported types and
/// orders are for people.
fn for_bot(kind: &str) -> bool {
    matches!(
        kind,
        "text"
            | "button"
            | "interactive"
            | "image"
            | "video"
            | "audio"
            | "document"
            | "sticker"
            | "location"
            | "contacts"
    )
}

fn text_reply(text: &str) -> Reply {
    Reply {
        text: text.to_string(),
        ..Reply::default()
    }
}

/// Decides. `session` is updated in place to where the conversation is afterwards.
pub fn decide(bot: &Compiled, session: &mut Session, input: Input<'_>, at: Situation) -> Decision {
    let b = &bot.bot;
    let silent_reason = if !b.enabled {
        Some("off")
    } else if at.consent_keyword {
        Some("consent_keyword")
    } else if at.opted_out {
        Some("opted_out")
    } else if session.handed_off_at.is_some() {
        Some("handed_off")
    } else if !for_bot(input.kind) {
        Some("not_for_bot")
    } else if !at.window_open {
        Some("outside_window")
    } else if at.sent_last_minute >= b.guards.max_per_minute {
        Some("rate_guard")
    } else {
        None
    };
    if let Some(reason) = silent_reason {
        return Decision::silent(reason);
    }
    let mut run = Run {
        bot,
        session,
        at,
        d: Decision::default(),
    };
    run.go(input);
    // The loop guard also caps what one message can make the bot say.
    let room = usize::try_from(b.guards.max_per_minute.saturating_sub(at.sent_last_minute)).unwrap_or(0);
    if run.d.say.len() > room {
        run.d.say.truncate(room);
        run.d.note("rate_guard", format!("{room} sent"));
    }
    run.d
}

struct Run<'a> {
    bot: &'a Compiled,
    session: &'a mut Session,
    at: Situation,
    d: Decision,
}

impl Run<'_> {
    fn go(&mut self, input: Input<'_>) {
        let b = &self.bot.bot;
        let guards = &b.guards;
        if let (Some(since), Some(flow)) = (self.session.step_at, self.session.flow.clone()) {
            if self.at.now - since > i64::from(guards.flow_timeout_minutes) * 60 {
                self.session.leave_flow();
                self.d.note("timeout", flow);
            }
        }
        if !self.at.open && !self.away() {
            return;
        }
        let folded = fold(input.text);
        let media_only = !matches!(input.kind, "text" | "button" | "interactive");
        let in_flow = self.session.step.is_some();
        let mut welcomed = false;
        if let Some(w) = b
            .welcome
            .as_ref()
            .filter(|w| w.enabled && self.at.welcome_due && !in_flow)
        {
            self.say(w.reply.clone());
            self.d.note("welcome", "");
            welcomed = true;
        }
        if let Some(id) = input.reply_id {
            if self.answer_by_id(id) {
                return;
            }
        }
        if media_only {
            // A photo of a receipt is for a person to look at; no rule or fallback.
            if !welcomed {
                self.d.note("media", input.kind);
            }
            return;
        }
        if self.session.step.is_some() && self.in_flow(&folded, input.text) {
            return;
        }
        if let Some(i) = self.bot.rule_for(&folded, self.at.today) {
            let rule = &b.rules[i];
            self.d.note("rule", rule.id.clone());
            self.session.leave_flow();
            self.act(&rule.then.clone());
            return;
        }
        if welcomed {
            return;
        }
        match &b.fallback {
            Some(a) => {
                self.d.note("fallback", "");
                self.session.leave_flow();
                self.act(&a.clone());
            }
            None => self.d.note("no_match", ""),
        }
    }

    /// Closed: the away message once per closed period, unless an agent answered a
    /// moment ago. Answers whether the bot goes on serving.
    fn away(&mut self) -> bool {
        let Some(h) = &self.bot.bot.hours else {
            return true;
        };
        let period = self.at.closed_since.unwrap_or(self.at.now);
        let agent_recent = self
            .at
            .agent_answered_at
            .is_some_and(|t| self.at.now - t < i64::from(h.quiet_after_agent_minutes) * 60);
        if h.away_text.trim().is_empty() || self.session.away_period == Some(period) {
            self.d.note("closed", "");
        } else if agent_recent {
            self.d.note("closed", "agent answered recently");
        } else {
            self.session.away_period = Some(period);
            self.say(text_reply(&h.away_text));
            self.d.note("away", "");
        }
        h.bot_while_closed
    }

    fn say(&mut self, reply: Reply) {
        self.d.say.push(reply);
    }

    fn act(&mut self, a: &Action) {
        match a {
            Action::Reply { reply } => self.say(reply.clone()),
            Action::Flow { flow } => self.goto(&format!("flow:{flow}"), None),
            Action::Handoff => self.handoff("asked", ""),
        }
    }

    fn handoff(&mut self, reason: &str, text: &str) {
        let text = if text.is_empty() {
            &self.bot.bot.handoff.text
        } else {
            text
        };
        if !text.trim().is_empty() {
            self.say(text_reply(text));
        }
        self.session.leave_flow();
        self.session.handed_off_at = Some(self.at.now);
        self.d.handoff = Some(reason.to_string());
        self.d.note("handoff", reason);
    }

    /// A button or row pressed: the waiting menu's own choice first, then any choice
    /// in the document (an older menu's button). Unknown ids fall through to rules.
    fn answer_by_id(&mut self, id: &str) -> bool {
        let Some((flow, choice)) = self.bot.choice(id) else {
            return false;
        };
        let next = choice.next.clone();
        self.d.note("choice", id);
        let flow = flow.map(str::to_string).or_else(|| self.session.flow.clone());
        self.goto(&next, flow.as_deref());
        true
    }

    /// A text while a flow step waits: cancel, back, the answer to a question, or a
    /// menu's wrong answer. False when the flow let it go to the rules.
    fn in_flow(&mut self, folded: &str, raw: &str) -> bool {
        let guards = &self.bot.bot.guards;
        let (Some(flow_id), Some(step_id)) = (self.session.flow.clone(), self.session.step.clone()) else {
            return false;
        };
        if guards.cancel_words.iter().any(|w| fold(w) == folded) {
            self.session.leave_flow();
            self.d.note("cancel", flow_id);
            let text = guards.cancel_text.clone();
            if !text.trim().is_empty() {
                self.say(text_reply(&text));
            }
            return true;
        }
        if guards.back_words.iter().any(|w| fold(w) == folded) {
            self.session.trail.pop();
            let back = self.session.trail.pop();
            let Some(flow) = self.bot.flow(&flow_id) else {
                self.session.leave_flow();
                return false;
            };
            let to = back
                .or_else(|| flow.steps.first().map(|s| s.id.clone()))
                .unwrap_or_default();
            self.d.note("back", format!("{flow_id}/{to}"));
            self.enter(&flow_id, &to);
            return true;
        }
        let Some(step) = self
            .bot
            .flow(&flow_id)
            .and_then(|f| f.steps.iter().find(|s| s.id == step_id))
        else {
            self.session.leave_flow();
            return false;
        };
        match &step.kind {
            StepKind::Ask {
                store,
                validate,
                options,
                invalid_text,
                retries,
                next,
                text,
            } => {
                match check_answer(*validate, options, raw) {
                    Some(value) => {
                        self.d.note("answer", format!("{flow_id}/{step_id} -> {store}"));
                        self.session.collected.insert(store.clone(), value.clone());
                        self.d.store.push((store.clone(), value));
                        let next = next.clone();
                        self.goto(&next, Some(&flow_id));
                    }
                    None => self.retry(&flow_id, &step_id, *retries, invalid_text, text, None),
                }
                true
            }
            StepKind::Menu { reply } => {
                // A typed text is not a pressed button: a rule may take it (the flow is
                // left), else the menu is offered again.
                if self.bot.rule_for(folded, self.at.today).is_some() {
                    return false;
                }
                let reply = reply.clone();
                self.retry(&flow_id, &step_id, 3, "", "", Some(reply));
                true
            }
            _ => {
                self.session.leave_flow();
                false
            }
        }
    }

    fn retry(&mut self, flow: &str, step: &str, max: u8, invalid: &str, ask: &str, menu: Option<Reply>) {
        self.session.retries = self.session.retries.saturating_add(1);
        if self.session.retries >= max {
            self.d
                .note("invalid", format!("{flow}/{step} x{}", self.session.retries));
            self.handoff("question_failed", "");
            return;
        }
        self.d.note("invalid", format!("{flow}/{step}"));
        if !invalid.trim().is_empty() {
            self.say(text_reply(invalid));
        }
        match menu {
            Some(reply) => self.say(reply),
            None => self.say(text_reply(ask)),
        }
        self.session.step_at = Some(self.at.now);
    }

    /// Goes to a target: `end`, `handoff`, `flow:<id>` or a step of `flow`.
    fn goto(&mut self, next: &str, flow: Option<&str>) {
        if next.is_empty() || next == "end" {
            self.session.leave_flow();
            return;
        }
        if next == "handoff" {
            self.handoff("chosen", "");
            return;
        }
        if let Some(id) = next.strip_prefix("flow:") {
            let Some(first) = self.bot.flow(id).and_then(|f| f.steps.first()) else {
                self.d.note("flow_off", id);
                self.session.leave_flow();
                return;
            };
            self.session.leave_flow();
            let first = first.id.clone();
            self.enter(id, &first);
            return;
        }
        match flow {
            Some(f) => self.enter(f, next),
            None => self.session.leave_flow(),
        }
    }

    /// Runs steps from `step` of `flow` until one waits or the flow ends.
    fn enter(&mut self, flow_id: &str, step: &str) {
        let Some(flow) = self.bot.flow(flow_id) else {
            self.d.note("flow_off", flow_id);
            self.session.leave_flow();
            return;
        };
        let mut current = step.to_string();
        for _ in 0..CHAIN_MAX {
            let Some(s) = flow.steps.iter().find(|s| s.id == current) else {
                self.session.leave_flow();
                return;
            };
            self.d.note("flow", format!("{flow_id}/{}", s.id));
            match &s.kind {
                StepKind::Message { reply, next } => {
                    self.say(reply.clone());
                    if next.is_empty() || next == "end" || next == "handoff" || next.starts_with("flow:") {
                        let next = next.clone();
                        self.goto(&next, Some(flow_id));
                        return;
                    }
                    current.clone_from(next);
                }
                StepKind::Ask { text, .. } => {
                    self.say(text_reply(text));
                    self.wait(flow_id, &s.id);
                    return;
                }
                StepKind::Menu { reply } => {
                    self.say(reply.clone());
                    self.wait(flow_id, &s.id);
                    return;
                }
                StepKind::Branch {
                    variable,
                    cases,
                    otherwise,
                } => {
                    let value = self
                        .session
                        .collected
                        .get(variable)
                        .map(|v| fold(v))
                        .unwrap_or_default();
                    let next = cases
                        .iter()
                        .find(|c| fold(&c.equals) == value)
                        .map_or(otherwise, |c| &c.next)
                        .clone();
                    if next.is_empty() || next == "end" || next == "handoff" || next.starts_with("flow:") {
                        self.goto(&next, Some(flow_id));
                        return;
                    }
                    current = next;
                }
                StepKind::Handoff { text } => {
                    let text = text.clone();
                    self.handoff("flow", &text);
                    return;
                }
                StepKind::End { text } => {
                    if !text.trim().is_empty() {
                        self.say(text_reply(text));
                    }
                    self.session.leave_flow();
                    return;
                }
            }
        }
        self.d.note("chain_limit", flow_id);
        self.session.leave_flow();
    }

    fn wait(&mut self, flow: &str, step: &str) {
        if self.session.flow.as_deref() != Some(flow) {
            self.session.trail.clear();
        }
        self.session.flow = Some(flow.to_string());
        if self.session.step.as_deref() != Some(step) {
            self.session.retries = 0;
        }
        self.session.step = Some(step.to_string());
        if self.session.trail.last().map(String::as_str) != Some(step) {
            self.session.trail.push(step.to_string());
        }
        self.session.step_at = Some(self.at.now);
    }
}

/// A number as people write it: "1.500.000" and "1,5" (Indonesian: dots group
/// thousands, a comma is the decimal point), "2.5" and "1500"; "12 kg" is not one.
fn number(text: &str) -> Option<String> {
    let t = text.replace(' ', "");
    let dots = t.matches('.').count();
    let thousands = t.contains(',') || dots > 1 || t.split_once('.').is_some_and(|(_, tail)| tail.len() == 3);
    let n = if thousands {
        t.replace('.', "").replace(',', ".")
    } else {
        t
    };
    n.parse::<f64>().ok().filter(|v| v.is_finite()).map(|_| n)
}

/// The answer as it is stored, or `None` when it does not pass.
pub fn check_answer(validate: Validate, options: &[String], raw: &str) -> Option<String> {
    let text = raw.trim();
    if text.is_empty() || text.chars().count() > 500 {
        return None;
    }
    match validate {
        Validate::Text => Some(text.to_string()),
        Validate::Number => number(text),
        Validate::Email => {
            let (user, domain) = text.split_once('@')?;
            let ok = !user.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !text.contains(char::is_whitespace)
                && !domain.contains('@');
            ok.then(|| text.to_lowercase())
        }
        Validate::Date => ["%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y"]
            .iter()
            .find_map(|f| NaiveDate::parse_from_str(text, f).ok())
            .map(|d| d.format("%Y-%m-%d").to_string()),
        Validate::Choice => {
            let folded = fold(text);
            // The option's text, or its number in the list ("2").
            options
                .iter()
                .find(|o| fold(o) == folded)
                .or_else(|| text.parse::<usize>().ok().and_then(|i| options.get(i.checked_sub(1)?)))
                .cloned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bot(json: &str) -> Compiled {
        Compiled::new(super::super::document::parse(json).expect("valid document"), 1)
    }

    fn at() -> Situation {
        Situation {
            now: 1_800_000_000,
            today: NaiveDate::from_ymd_opt(2027, 1, 15).expect("date"),
            open: true,
            closed_since: None,
            welcome_due: false,
            window_open: true,
            opted_out: false,
            consent_keyword: false,
            sent_last_minute: 0,
            agent_answered_at: None,
        }
    }

    fn text(t: &str) -> Input<'_> {
        Input {
            kind: "text",
            text: t,
            reply_id: None,
        }
    }

    fn said(d: &Decision) -> Vec<&str> {
        d.say.iter().map(|r| r.text.as_str()).collect()
    }

    #[test]
    fn folding_ignores_case_accents_and_surrounding_punctuation() {
        assert_eq!(fold("  Kembali!! "), "kembali");
        assert_eq!(fold("CAFÉ   Gayo?"), "cafe gayo");
        assert_eq!(fold("¿Qué?"), "que");
    }

    const RULES: &str = r#"{"enabled": true, "rules": [
        {"id": "exact", "match": "exact", "patterns": ["halo"], "then": {"do": "reply", "reply": {"text": "exact"}}},
        {"id": "contains", "match": "contains", "patterns": ["harga"], "then": {"do": "reply", "reply": {"text": "contains"}}},
        {"id": "starts", "match": "starts_with", "patterns": ["pesan"], "then": {"do": "reply", "reply": {"text": "starts"}}},
        {"id": "regex", "match": "regex", "patterns": ["^inv-?\\d{4}$"], "then": {"do": "reply", "reply": {"text": "regex"}}},
        {"id": "urgent", "match": "contains", "patterns": ["harga"], "priority": 5, "then": {"do": "reply", "reply": {"text": "urgent"}}},
        {"id": "promo", "match": "exact", "patterns": ["promo"], "active_from": "2027-02-01", "then": {"do": "reply", "reply": {"text": "promo"}}},
        {"id": "off", "enabled": false, "match": "exact", "patterns": ["mati"], "then": {"do": "reply", "reply": {"text": "off"}}}
      ], "fallback": {"do": "reply", "reply": {"text": "fallback"}}}"#;

    #[test]
    fn keyword_kinds_and_priority() {
        let b = bot(RULES);
        for (input, expected) in [
            ("HALO!", "exact"),
            ("halo kak", "fallback"),
            ("berapa harga kopi?", "urgent"),
            ("pesan 2 kopi", "starts"),
            ("mau pesan", "fallback"),
            ("INV-2291", "regex"),
            ("promo", "fallback"),
            ("mati", "fallback"),
        ] {
            let d = decide(&b, &mut Session::default(), text(input), at());
            assert_eq!(said(&d), vec![expected], "{input}");
        }
    }

    #[test]
    fn silent_for_the_reasons_that_come_first() {
        let b = bot(RULES);
        let mut cases: Vec<(Situation, &str)> = Vec::new();
        let mut s = at();
        s.opted_out = true;
        cases.push((s, "opted_out"));
        s = at();
        s.window_open = false;
        cases.push((s, "outside_window"));
        s = at();
        s.sent_last_minute = 5;
        cases.push((s, "rate_guard"));
        s = at();
        s.consent_keyword = true;
        cases.push((s, "consent_keyword"));
        for (situation, why) in cases {
            let d = decide(&b, &mut Session::default(), text("halo"), situation);
            assert!(d.is_silent(), "{why}");
            assert_eq!(d.kinds(), why);
        }
        let mut handed = Session {
            handed_off_at: Some(1),
            ..Session::default()
        };
        assert_eq!(decide(&b, &mut handed, text("halo"), at()).kinds(), "handed_off");
        let reaction = Input {
            kind: "reaction",
            text: "👍",
            reply_id: None,
        };
        assert_eq!(
            decide(&b, &mut Session::default(), reaction, at()).kinds(),
            "not_for_bot"
        );
    }

    const FLOW: &str = r#"{"enabled": true,
      "welcome": {"reply": {"text": "Selamat datang", "choices": [
          {"id": "go_order", "title": "Pesan", "next": "flow:order"},
          {"id": "go_cs", "title": "CS", "next": "handoff"}]}},
      "flows": [{"id": "order", "steps": [
          {"id": "menu", "type": "menu", "reply": {"text": "Pilih kopi", "choices": [
              {"id": "gayo", "title": "Gayo", "next": "qty"},
              {"id": "toraja", "title": "Toraja", "next": "qty"}]}},
          {"id": "qty", "type": "ask", "text": "Berapa kg?", "store": "qty", "validate": "number",
           "invalid_text": "Angka saja ya", "next": "mail"},
          {"id": "mail", "type": "ask", "text": "Email?", "store": "email", "validate": "email", "next": "done"},
          {"id": "done", "type": "end", "text": "Terima kasih"}]}],
      "handoff": {"text": "Kami sambungkan ke tim"}}"#;

    fn press(id: &str) -> Input<'_> {
        Input {
            kind: "interactive",
            text: "whatever the title says",
            reply_id: Some(id),
        }
    }

    #[test]
    fn a_flow_routes_by_id_validates_retries_goes_back_and_stores() {
        let b = bot(FLOW);
        let mut s = Session::default();
        let mut first = at();
        first.welcome_due = true;
        let d = decide(&b, &mut s, text("hi"), first);
        assert_eq!(said(&d), vec!["Selamat datang"]);
        let d = decide(&b, &mut s, press("go_order"), at());
        assert_eq!(said(&d), vec!["Pilih kopi"]);
        assert_eq!(s.step.as_deref(), Some("menu"));
        // Typing a title is not pressing it.
        let d = decide(&b, &mut s, text("Gayo"), at());
        assert_eq!(said(&d), vec!["Pilih kopi"], "the menu again");
        let d = decide(&b, &mut s, press("gayo"), at());
        assert_eq!(said(&d), vec!["Berapa kg?"]);
        let d = decide(&b, &mut s, text("dua"), at());
        assert_eq!(said(&d), vec!["Angka saja ya", "Berapa kg?"]);
        let d = decide(&b, &mut s, text("kembali"), at());
        assert_eq!(said(&d), vec!["Pilih kopi"], "back to the menu");
        decide(&b, &mut s, press("toraja"), at());
        let d = decide(&b, &mut s, text("1,5"), at());
        assert_eq!(d.store, vec![("qty".to_string(), "1.5".to_string())]);
        assert_eq!(said(&d), vec!["Email?"]);
        let d = decide(&b, &mut s, text("Budi@Contoh.co.id"), at());
        assert_eq!(said(&d), vec!["Terima kasih"]);
        assert_eq!(s.collected.get("email").map(String::as_str), Some("budi@contoh.co.id"));
        assert_eq!(s.step, None, "the flow ended");
    }

    #[test]
    fn three_wrong_answers_hand_off_and_the_bot_falls_silent() {
        let b = bot(FLOW);
        let mut s = Session::default();
        decide(&b, &mut s, press("go_order"), at());
        decide(&b, &mut s, press("gayo"), at());
        decide(&b, &mut s, text("x"), at());
        decide(&b, &mut s, text("y"), at());
        let d = decide(&b, &mut s, text("z"), at());
        assert_eq!(d.handoff.as_deref(), Some("question_failed"));
        assert_eq!(said(&d), vec!["Kami sambungkan ke tim"]);
        assert_eq!(decide(&b, &mut s, text("halo?"), at()).kinds(), "handed_off");
    }

    #[test]
    fn a_cancel_word_leaves_and_a_stale_flow_times_out() {
        let b = bot(FLOW);
        let mut s = Session::default();
        decide(&b, &mut s, press("go_order"), at());
        let d = decide(&b, &mut s, text("Batal."), at());
        assert_eq!(d.kinds(), "cancel");
        assert_eq!(s.step, None);
        decide(&b, &mut s, press("go_order"), at());
        let mut later = at();
        later.now += 31 * 60;
        let d = decide(&b, &mut s, press("gayo"), later);
        assert!(d.kinds().starts_with("timeout"), "{}", d.kinds());
        assert_eq!(said(&d), vec!["Berapa kg?"], "an old button still works");
    }

    #[test]
    fn away_once_per_closed_period_and_not_right_after_an_agent() {
        let b = bot(
            r#"{"enabled": true, "hours": {"weekly": {"mon": ["09:00-17:00"]}, "away_text": "Kami tutup",
                 "bot_while_closed": false}, "fallback": {"do": "reply", "reply": {"text": "fallback"}}}"#,
        );
        let mut closed = at();
        closed.open = false;
        closed.closed_since = Some(1_799_990_000);
        let mut s = Session::default();
        assert_eq!(said(&decide(&b, &mut s, text("halo"), closed)), vec!["Kami tutup"]);
        assert!(decide(&b, &mut s, text("halo?"), closed).is_silent(), "once per period");
        closed.closed_since = Some(1_799_999_000);
        closed.agent_answered_at = Some(closed.now - 60);
        let mut fresh = Session::default();
        assert!(
            decide(&b, &mut fresh, text("halo"), closed).is_silent(),
            "an agent just answered"
        );
        closed.agent_answered_at = None;
        assert_eq!(
            said(&decide(&b, &mut s, text("halo"), closed)),
            vec!["Kami tutup"],
            "a new period"
        );
    }

    #[test]
    fn answers_are_checked() {
        assert_eq!(check_answer(Validate::Number, &[], "1.500.000"), Some("1500000".into()));
        assert_eq!(check_answer(Validate::Number, &[], "12 kg"), None);
        assert_eq!(check_answer(Validate::Number, &[], "2.5"), Some("2.5".into()));
        assert_eq!(check_answer(Validate::Number, &[], "1,5"), Some("1.5".into()));
        assert_eq!(check_answer(Validate::Email, &[], "a@b"), None);
        assert_eq!(
            check_answer(Validate::Date, &[], "17/08/2027"),
            Some("2027-08-17".into())
        );
        assert_eq!(check_answer(Validate::Date, &[], "31/02/2027"), None);
        let opts = ["Jakarta".to_string(), "Bandung".to_string()];
        assert_eq!(
            check_answer(Validate::Choice, &opts, "bandung!"),
            Some("Bandung".into())
        );
        assert_eq!(check_answer(Validate::Choice, &opts, "2"), Some("Bandung".into()));
        assert_eq!(check_answer(Validate::Choice, &opts, "3"), None);
    }

    #[test]
    fn the_loop_guard_caps_what_one_message_says() {
        let b = bot(FLOW);
        let mut s = Session::default();
        let mut busy = at();
        busy.welcome_due = true;
        busy.sent_last_minute = 4;
        let d = decide(&b, &mut s, press("go_order"), busy);
        assert_eq!(d.say.len(), 1, "one left of five");
    }
}
