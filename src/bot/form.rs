//! The bot editor's forms: each part of the document read from the fields a page
//! posted, and shown back as the values its inputs hold. The fields are named by place
//! (`welcome.c0.title`, `s2.next`), so one reply editor serves the welcome, a rule, the
//! fallback and a flow's steps. A number that does not read is a form problem named by
//! its field; everything else is left to the document's validator.

use super::document::{
    Action, Assign, Case, Choice, Flow, Guards, Handoff, Hours, MatchKind, Media, Reply, Rule, Step, StepKind,
    Validate, Welcome,
};
use std::collections::BTreeMap;

/// Choice rows a reply editor shows at most (WhatsApp's list limit).
pub const CHOICE_ROWS: usize = super::document::ROWS_MAX;
/// The days of the weekly grid, in order.
pub const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// The fields of a posted form, in order (repeated names kept).
#[derive(Debug, Clone, Default)]
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    /// The first value of `name`, or "".
    pub fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    /// A checkbox: present and not "0".
    pub fn checked(&self, name: &str) -> bool {
        self.0.iter().any(|(k, v)| k == name && v != "0")
    }
}

/// A form value that did not read: the field, and an i18n key saying what it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub key: &'static str,
}

/// Lines of a textarea, trimmed, empty ones dropped.
pub fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// Words separated by commas or lines.
pub fn words(text: &str) -> Vec<String> {
    text.split([',', '\n'])
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect()
}

fn number<T: std::str::FromStr>(f: &Fields, name: &str, path: &str, default: T, errors: &mut Vec<FieldError>) -> T {
    let v = f.get(name).trim();
    if v.is_empty() {
        return default;
    }
    v.parse().unwrap_or_else(|_| {
        errors.push(FieldError {
            path: path.to_string(),
            key: "bot_ui.err.number",
        });
        default
    })
}

fn date(f: &Fields, name: &str) -> Option<String> {
    Some(f.get(name).trim().to_string()).filter(|d| !d.is_empty())
}

// ---- replies --------------------------------------------------------------------------

/// A reply editor's values.
#[derive(Debug, Clone, Default)]
pub struct ReplyView {
    pub text: String,
    pub media_kind: String,
    pub media_link: String,
    pub list_button: String,
    /// The rows shown: the reply's choices and a few empty ones, at most ten.
    pub choices: Vec<ChoiceView>,
}

#[derive(Debug, Clone, Default)]
pub struct ChoiceView {
    pub id: String,
    pub title: String,
    pub description: String,
    pub next: String,
}

impl ReplyView {
    pub fn of(r: &Reply) -> ReplyView {
        let mut choices: Vec<ChoiceView> = r
            .choices
            .iter()
            .map(|c| ChoiceView {
                id: c.id.clone(),
                title: c.title.clone(),
                description: c.description.clone(),
                next: c.next.clone(),
            })
            .collect();
        let rows = (choices.len() + 2).clamp(3, CHOICE_ROWS);
        choices.resize_with(rows.max(choices.len()), ChoiceView::default);
        ReplyView {
            text: r.text.clone(),
            media_kind: r.media.as_ref().map(|m| m.kind.clone()).unwrap_or_default(),
            media_link: r.media.as_ref().map(|m| m.link.clone()).unwrap_or_default(),
            list_button: r.list_button.clone(),
            choices,
        }
    }

    /// Whether the choices go out as a list (more than three): titles may be 24 long.
    pub fn is_list(&self) -> bool {
        self.choices
            .iter()
            .filter(|c| !c.id.is_empty() || !c.title.is_empty())
            .count()
            > super::document::BUTTONS_MAX
    }
}

/// The reply under `p` (`p.text`, `p.media_kind`, `p.media_link`, `p.list_button`,
/// `p.c{k}.id|title|description|next`); a choice row with neither id nor title is empty.
pub fn reply(f: &Fields, p: &str) -> Reply {
    let link = f.get(&format!("{p}.media_link")).trim().to_string();
    let kind = f.get(&format!("{p}.media_kind")).trim();
    let media = (!link.is_empty()).then(|| Media {
        kind: if kind.is_empty() {
            "image".into()
        } else {
            kind.to_string()
        },
        link,
        filename: None,
    });
    let mut choices = Vec::new();
    for k in 0..CHOICE_ROWS {
        let at = |what: &str| f.get(&format!("{p}.c{k}.{what}")).trim().to_string();
        let (id, title) = (at("id"), at("title"));
        if id.is_empty() && title.is_empty() {
            continue;
        }
        choices.push(Choice {
            id,
            title,
            description: at("description"),
            next: at("next"),
        });
    }
    Reply {
        text: f.get(&format!("{p}.text")).trim().to_string(),
        media,
        choices,
        list_button: f.get(&format!("{p}.list_button")).trim().to_string(),
    }
}

// ---- the bot page's parts ------------------------------------------------------------

pub fn welcome(f: &Fields, errors: &mut Vec<FieldError>) -> Option<Welcome> {
    let reply = reply(f, "welcome");
    let enabled = f.checked("welcome_enabled");
    if reply.text.is_empty() && reply.choices.is_empty() && reply.media.is_none() && !enabled {
        return None;
    }
    Some(Welcome {
        enabled,
        reply,
        after_silence_days: number(f, "after_silence_days", "welcome.after_silence_days", 0, errors),
    })
}

/// `none`, `reply`, `flow` or `handoff` in `{p}_do`; the flow in `{p}_flow`; the
/// reply under `p`.
pub fn action(f: &Fields, p: &str) -> Option<Action> {
    match f.get(&format!("{p}_do")) {
        "reply" => Some(Action::Reply { reply: reply(f, p) }),
        "flow" => Some(Action::Flow {
            flow: f.get(&format!("{p}_flow")).trim().to_string(),
        }),
        "handoff" => Some(Action::Handoff),
        _ => None,
    }
}

/// What an action's controls show.
#[derive(Debug, Clone)]
pub struct ActionView {
    /// `none`, `reply`, `flow` or `handoff`.
    pub kind: &'static str,
    pub flow: String,
    pub reply: ReplyView,
}

pub fn action_view(a: Option<&Action>) -> ActionView {
    let (kind, flow, reply) = match a {
        None => ("none", String::new(), ReplyView::of(&Reply::default())),
        Some(Action::Reply { reply }) => ("reply", String::new(), ReplyView::of(reply)),
        Some(Action::Flow { flow }) => ("flow", flow.clone(), ReplyView::of(&Reply::default())),
        Some(Action::Handoff) => ("handoff", String::new(), ReplyView::of(&Reply::default())),
    };
    ActionView { kind, flow, reply }
}

pub fn match_kind(s: &str) -> MatchKind {
    match s {
        "exact" => MatchKind::Exact,
        "starts_with" => MatchKind::StartsWith,
        "regex" => MatchKind::Regex,
        _ => MatchKind::Contains,
    }
}

pub fn match_code(k: MatchKind) -> &'static str {
    match k {
        MatchKind::Exact => "exact",
        MatchKind::Contains => "contains",
        MatchKind::StartsWith => "starts_with",
        MatchKind::Regex => "regex",
    }
}

pub fn rule(f: &Fields, errors: &mut Vec<FieldError>) -> Rule {
    Rule {
        id: f.get("id").trim().to_string(),
        name: f.get("name").trim().to_string(),
        enabled: f.checked("enabled"),
        kind: match_kind(f.get("match")),
        patterns: lines(f.get("patterns")),
        priority: number(f, "priority", "priority", 0, errors),
        active_from: date(f, "active_from"),
        active_until: date(f, "active_until"),
        then: action(f, "then").unwrap_or(Action::Handoff),
    }
}

/// `2026-12-24 09:00-12:00 13:00-15:00` (a date alone: closed that day).
pub fn special(text: &str) -> BTreeMap<String, Vec<String>> {
    lines(text)
        .into_iter()
        .map(|l| {
            let mut parts = l.split_whitespace().map(String::from);
            let day = parts.next().unwrap_or_default();
            let intervals = parts.flat_map(|p| words(&p)).collect();
            (day, intervals)
        })
        .collect()
}

pub fn special_text(s: &BTreeMap<String, Vec<String>>) -> String {
    s.iter()
        .map(|(d, l)| {
            if l.is_empty() {
                d.clone()
            } else {
                format!("{d} {}", l.join(" "))
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn hours(f: &Fields, errors: &mut Vec<FieldError>) -> Option<Hours> {
    if !f.checked("hours_enabled") {
        return None;
    }
    let weekly = DAYS
        .iter()
        .map(|d| ((*d).to_string(), lines(f.get(&format!("day_{d}")))))
        .filter(|(_, l)| !l.is_empty())
        .collect();
    let tz = f.get("timezone").trim();
    Some(Hours {
        timezone: (!tz.is_empty()).then(|| tz.to_string()),
        weekly,
        holidays: lines(f.get("holidays")),
        special: special(f.get("special")),
        away_text: f.get("away_text").trim().to_string(),
        quiet_after_agent_minutes: number(f, "quiet_minutes", "hours.quiet_after_agent_minutes", 5, errors),
        bot_while_closed: f.checked("bot_while_closed"),
    })
}

pub fn handoff(f: &Fields) -> Handoff {
    let assign = match f.get("assign") {
        "unassigned" => Assign::Unassigned,
        "agent" => f.get("agent").trim().parse().map_or(Assign::Agent(0), Assign::Agent),
        _ => Assign::RoundRobin,
    };
    Handoff {
        assign,
        text: f.get("handoff_text").trim().to_string(),
    }
}

pub fn guards(f: &Fields, errors: &mut Vec<FieldError>) -> Guards {
    Guards {
        flow_timeout_minutes: number(f, "flow_timeout_minutes", "guards.flow_timeout_minutes", 30, errors),
        max_per_minute: number(f, "max_per_minute", "guards.max_per_minute", 5, errors),
        back_words: words(f.get("back_words")),
        cancel_words: words(f.get("cancel_words")),
        cancel_text: f.get("cancel_text").trim().to_string(),
    }
}

// ---- flows ----------------------------------------------------------------------------

/// A step editor's values (every type's fields; the page shows the ones its type uses).
#[derive(Debug, Clone, Default)]
pub struct StepView {
    pub id: String,
    pub kind: &'static str,
    /// Ask, hand-off and end: what is said.
    pub text: String,
    /// Message and menu: what is sent.
    pub reply: ReplyView,
    pub store: String,
    pub validate: &'static str,
    pub options: String,
    pub invalid_text: String,
    pub retries: String,
    pub next: String,
    pub variable: String,
    /// `value => next`, one per line.
    pub cases: String,
    pub otherwise: String,
}

pub const STEP_KINDS: [&str; 6] = ["message", "ask", "menu", "branch", "handoff", "end"];
pub const VALIDATIONS: [&str; 5] = ["text", "number", "email", "date", "choice"];

fn validate_code(v: Validate) -> &'static str {
    match v {
        Validate::Text => "text",
        Validate::Number => "number",
        Validate::Email => "email",
        Validate::Date => "date",
        Validate::Choice => "choice",
    }
}

fn validate_of(s: &str) -> Validate {
    match s {
        "number" => Validate::Number,
        "email" => Validate::Email,
        "date" => Validate::Date,
        "choice" => Validate::Choice,
        _ => Validate::Text,
    }
}

impl StepView {
    pub fn blank() -> StepView {
        StepView {
            kind: "message",
            validate: "text",
            retries: "3".into(),
            reply: ReplyView::of(&Reply::default()),
            ..StepView::default()
        }
    }

    pub fn of(s: &Step) -> StepView {
        let mut v = StepView::blank();
        v.id.clone_from(&s.id);
        match &s.kind {
            StepKind::Message { reply, next } => {
                v.kind = "message";
                v.reply = ReplyView::of(reply);
                v.next.clone_from(next);
            }
            StepKind::Ask {
                text,
                store,
                validate,
                options,
                invalid_text,
                retries,
                next,
            } => {
                v.kind = "ask";
                v.text.clone_from(text);
                v.store.clone_from(store);
                v.validate = validate_code(*validate);
                v.options = options.join("\n");
                v.invalid_text.clone_from(invalid_text);
                v.retries = retries.to_string();
                v.next.clone_from(next);
            }
            StepKind::Menu { reply } => {
                v.kind = "menu";
                v.reply = ReplyView::of(reply);
            }
            StepKind::Branch {
                variable,
                cases,
                otherwise,
            } => {
                v.kind = "branch";
                v.variable.clone_from(variable);
                v.cases = cases
                    .iter()
                    .map(|c| format!("{} => {}", c.equals, c.next))
                    .collect::<Vec<_>>()
                    .join("\n");
                v.otherwise.clone_from(otherwise);
            }
            StepKind::Handoff { text } => {
                v.kind = "handoff";
                v.text.clone_from(text);
            }
            StepKind::End { text } => {
                v.kind = "end";
                v.text.clone_from(text);
            }
        }
        v
    }
}

/// The step under `s{i}.`.
fn step(f: &Fields, i: usize, errors: &mut Vec<FieldError>) -> Step {
    let at = |what: &str| f.get(&format!("s{i}.{what}")).trim().to_string();
    let text = at("text");
    let next = at("next");
    let kind = match f.get(&format!("s{i}.type")) {
        "ask" => StepKind::Ask {
            text,
            store: at("store"),
            validate: validate_of(&at("validate")),
            options: lines(f.get(&format!("s{i}.options"))),
            invalid_text: at("invalid_text"),
            retries: number(f, &format!("s{i}.retries"), &format!("steps[{i}].retries"), 3, errors),
            next,
        },
        "menu" => StepKind::Menu {
            reply: reply(f, &format!("s{i}.r")),
        },
        "branch" => StepKind::Branch {
            variable: at("variable"),
            cases: lines(f.get(&format!("s{i}.cases")))
                .into_iter()
                .map(|l| {
                    let (equals, next) = l.split_once("=>").unwrap_or((l.as_str(), ""));
                    Case {
                        equals: equals.trim().to_string(),
                        next: next.trim().to_string(),
                    }
                })
                .collect(),
            otherwise: at("otherwise"),
        },
        "handoff" => StepKind::Handoff { text },
        "end" => StepKind::End { text },
        _ => StepKind::Message {
            reply: reply(f, &format!("s{i}.r")),
            next,
        },
    };
    Step { id: at("id"), kind }
}

/// A flow from the editor: its id, name and switch, and the steps `s0..` (`steps`
/// says how many rows the page had, the last one blank for a new step). A row with no
/// id is not a step; a row marked `remove` is dropped; rows are ordered by `pos`.
pub fn flow(f: &Fields, errors: &mut Vec<FieldError>) -> Flow {
    let rows: usize = f
        .get("steps")
        .trim()
        .parse()
        .unwrap_or(0)
        .min(super::document::STEPS_MAX + 1);
    let mut steps: Vec<(i64, usize, Step)> = Vec::new();
    for i in 0..rows {
        if f.checked(&format!("s{i}.remove")) || f.get(&format!("s{i}.id")).trim().is_empty() {
            continue;
        }
        let default_pos = i64::try_from(i).unwrap_or(0) + 1;
        let pos = f.get(&format!("s{i}.pos")).trim().parse::<i64>().unwrap_or(default_pos);
        steps.push((pos, i, step(f, i, errors)));
    }
    steps.sort_by_key(|(pos, i, _)| (*pos, *i));
    Flow {
        id: f.get("id").trim().to_string(),
        name: f.get("name").trim().to_string(),
        enabled: f.checked("enabled"),
        steps: steps.into_iter().map(|(_, _, s)| s).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(list: &[(&str, &str)]) -> Fields {
        Fields(list.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect())
    }

    #[test]
    fn a_reply_reads_its_rows_and_skips_empty_ones() {
        let f = fields(&[
            ("p.text", " Halo "),
            ("p.c0.id", "a"),
            ("p.c0.title", "Harga"),
            ("p.c0.next", "end"),
            ("p.c1.id", ""),
            ("p.c1.title", ""),
            ("p.c2.id", "b"),
            ("p.c2.title", "Agen"),
            ("p.c2.next", "handoff"),
        ]);
        let r = reply(&f, "p");
        assert_eq!(r.text, "Halo");
        assert_eq!(r.choices.len(), 2);
        assert_eq!(r.choices[1].next, "handoff");
        assert!(r.media.is_none());
    }

    #[test]
    fn a_flow_reads_steps_in_position_order_and_drops_removed_and_blank_rows() {
        let f = fields(&[
            ("id", "order"),
            ("enabled", "1"),
            ("steps", "4"),
            ("s0.id", "b"),
            ("s0.type", "end"),
            ("s0.pos", "2"),
            ("s1.id", "a"),
            ("s1.type", "ask"),
            ("s1.text", "Nama?"),
            ("s1.store", "name"),
            ("s1.retries", "x"),
            ("s1.pos", "1"),
            ("s2.id", "gone"),
            ("s2.remove", "1"),
            ("s3.id", ""),
        ]);
        let mut errors = Vec::new();
        let flow = flow(&f, &mut errors);
        let ids: Vec<&str> = flow.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(errors[0].path, "steps[1].retries");
    }

    #[test]
    fn special_dates_read_and_show_back() {
        let s = special("2026-12-24 09:00-12:00 13:00-15:00\n2026-12-25");
        assert_eq!(s["2026-12-24"], vec!["09:00-12:00", "13:00-15:00"]);
        assert!(s["2026-12-25"].is_empty());
        assert_eq!(special_text(&s), "2026-12-24 09:00-12:00 13:00-15:00\n2026-12-25");
    }
}
