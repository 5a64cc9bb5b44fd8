//! Planning: who a campaign reaches and with what, person by person. The pre-flight
//! page counts with [`evaluate`] on a reading connection; starting writes the same
//! verdicts as the ledger ([`write`]) in one transaction. One pass over the audience,
//! so what the pre-flight said is what the ledger gets.

use super::{Audience, Campaign, CampaignId, FollowUp, Settings, Variable};
use crate::contacts::consent::{self, Purpose, State};
use crate::contacts::segments::{self, Filter, Moment, SegmentId};
use crate::whatsapp::templates::Template;
use rusqlite::types::Value;
use rusqlite::{Connection, params, params_from_iter};
use std::collections::{BTreeMap, HashSet};

/// Why a person is not messaged. Stored in the ledger's `reason` column; the catalogue
/// says it as `campaigns.reason.<code>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Skip {
    /// Opted out of the template's purpose.
    OptedOut,
    /// A marketing template to someone without a recorded opt-in.
    NoOptIn,
    /// No WhatsApp id, BSUID or usable phone number.
    InvalidNumber,
    /// Someone earlier in the audience has the same address.
    Duplicate,
    /// A variable is empty for this person and has no fallback.
    MissingVariable,
    /// A campaign messaged the person within the frequency cap.
    FrequencyCap,
    /// The contact was deleted after the plan (an erasure request, say).
    ContactGone,
}

impl Skip {
    pub const ALL: [Skip; 7] = [
        Skip::OptedOut,
        Skip::NoOptIn,
        Skip::InvalidNumber,
        Skip::Duplicate,
        Skip::MissingVariable,
        Skip::FrequencyCap,
        Skip::ContactGone,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Skip::OptedOut => "opted_out",
            Skip::NoOptIn => "no_opt_in",
            Skip::InvalidNumber => "invalid_number",
            Skip::Duplicate => "duplicate",
            Skip::MissingVariable => "missing_variable",
            Skip::FrequencyCap => "frequency_cap",
            Skip::ContactGone => "contact_gone",
        }
    }

    /// What a consent refusal skips a person as (planning and each person's turn).
    pub fn of_refusal(r: consent::Refusal) -> Skip {
        match r {
            consent::Refusal::OptedOut => Skip::OptedOut,
            consent::Refusal::NoOptIn => Skip::NoOptIn,
            consent::Refusal::NoSuchContact => Skip::ContactGone,
        }
    }
}

/// One person's verdict.
#[derive(Debug, Clone)]
pub struct Planned {
    pub contact_id: i64,
    pub recipient: String,
    pub params: Vec<String>,
    /// `Err((why, detail))`: skipped; the detail names the variable that was empty.
    pub verdict: Result<(), (Skip, String)>,
}

/// What planning found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// People in the audience (each contact once).
    pub audience: i64,
    pub queued: i64,
    /// Skips per reason code.
    pub skipped: BTreeMap<&'static str, i64>,
}

impl Counts {
    fn add(&mut self, p: &Planned) {
        self.audience += 1;
        match &p.verdict {
            Ok(()) => self.queued += 1,
            Err((why, _)) => *self.skipped.entry(why.code()).or_insert(0) += 1,
        }
    }

    pub fn skipped_total(&self) -> i64 {
        self.skipped.values().sum()
    }
}

/// Why a campaign cannot be planned now: a catalogue key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unplannable(pub &'static str);

/// What planning needs besides the campaign.
pub struct Context<'a> {
    pub template: &'a Template,
    pub settings: Settings,
    pub moment: Moment,
}

/// The variable names of the template's body, in the order Meta takes their values.
pub fn variable_names(t: &Template) -> Vec<String> {
    crate::whatsapp::templates::draft::param_order(&t.body_text)
}

/// Meta refuses a value with a new line, a tab or more than four spaces in a row
/// (132018): every run of white space becomes one space.
fn tidy(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A contact as the planner reads it.
struct Person {
    id: i64,
    recipient: Option<String>,
    name: String,
    profile_name: String,
    phone: Option<String>,
    attributes: BTreeMap<String, String>,
    marketing: State,
    utility: State,
    capped: bool,
}

fn value_of(p: &Person, v: &Variable) -> String {
    let raw = if let Some(t) = &v.text {
        t.clone()
    } else if let Some(f) = &v.field {
        match f.as_str() {
            "name" => [&p.name, &p.profile_name]
                .into_iter()
                .find(|s| !s.trim().is_empty())
                .cloned()
                .unwrap_or_default(),
            "first_name" => [&p.name, &p.profile_name]
                .into_iter()
                .find(|s| !s.trim().is_empty())
                .and_then(|s| s.split_whitespace().next())
                .unwrap_or_default()
                .to_string(),
            "profile_name" => p.profile_name.clone(),
            "phone" => p.phone.clone().unwrap_or_default(),
            _ => String::new(),
        }
    } else if let Some(k) = &v.custom {
        p.attributes.get(k).cloned().unwrap_or_default()
    } else {
        String::new()
    };
    let value = tidy(&raw);
    if value.is_empty() {
        tidy(v.fallback.as_deref().unwrap_or(""))
    } else {
        value
    }
}

/// A usable address: digits of a phone (7 to 15) or a BSUID (`CC.xxxx`).
fn valid_address(a: &str) -> bool {
    let digits = a.bytes().all(|b| b.is_ascii_digit());
    if digits {
        (7..=15).contains(&a.len())
    } else {
        a.contains('.') && a.len() <= 150 && !a.chars().any(char::is_whitespace)
    }
}

/// One key per address for the duplicate check (8 bytes a person, not a string).
fn address_key(a: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    if let Ok(n) = a.parse::<u64>() {
        return n;
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    a.hash(&mut h);
    h.finish() | (1 << 63)
}

/// The audience as a condition over `contacts`, with its parameters in order.
fn audience_where(
    c: &Connection,
    campaign: &Campaign,
    moment: &Moment,
    now: i64,
) -> rusqlite::Result<Result<(String, Vec<Value>), Unplannable>> {
    if let (Some(parent), Some(kind)) = (campaign.parent_id, campaign.follow_up) {
        return Ok(Ok(follow_up_where(parent, kind, now)));
    }
    let a: &Audience = &campaign.audience;
    let mut args = Vec::new();
    let mut include = Vec::new();
    let mut filters = Vec::new();
    if !a.labels.is_empty() {
        filters.push(Filter {
            labels_any: a.labels.clone(),
            ..Filter::default()
        });
    }
    for id in &a.segments {
        match segments::find(c, SegmentId(*id))? {
            Some(s) => filters.push(s.filter),
            None => return Ok(Err(Unplannable("campaigns.error.segment_gone"))),
        }
    }
    for f in &filters {
        let w = segments::where_clause(f, moment);
        include.push(format!("({})", w.sql));
        args.extend(w.args);
    }
    if include.is_empty() {
        return Ok(Err(Unplannable("campaigns.error.audience_required")));
    }
    let mut exclude = Vec::new();
    let mut out = Vec::new();
    if !a.exclude_labels.is_empty() {
        out.push(Filter {
            labels_any: a.exclude_labels.clone(),
            ..Filter::default()
        });
    }
    for id in &a.exclude_segments {
        match segments::find(c, SegmentId(*id))? {
            Some(s) => out.push(s.filter),
            None => return Ok(Err(Unplannable("campaigns.error.segment_gone"))),
        }
    }
    for f in &out {
        let w = segments::where_clause(f, moment);
        exclude.push(format!("({})", w.sql));
        args.extend(w.args);
    }
    let sql = if exclude.is_empty() {
        format!("({})", include.join(" OR "))
    } else {
        format!("({}) AND NOT ({})", include.join(" OR "), exclude.join(" OR "))
    };
    Ok(Ok((sql, args)))
}

/// Codes a follow-up to failures does not try again: the person stopped marketing,
/// is not on WhatsApp, or the message itself was wrong.
const NOT_RETRYABLE: &str = "131050, 131026, 100, 131008, 131009, 131051";

fn follow_up_where(parent: CampaignId, kind: FollowUp, now: i64) -> (String, Vec<Value>) {
    let states = match kind {
        FollowUp::Failed => {
            // 131049 again only once Meta's day has passed.
            let sql = format!(
                "contacts.id IN (SELECT contact_id FROM campaign_recipients WHERE campaign_id = ? AND state = 'failed'
                   AND coalesce(error_code, 0) NOT IN ({NOT_RETRYABLE})
                   AND NOT coalesce(error_code, 0) BETWEEN 132000 AND 132999
                   AND (coalesce(error_code, 0) <> 131049 OR coalesce(done_at, 0) <= ?))"
            );
            return (sql, vec![Value::Integer(parent.0), Value::Integer(now - 86_400)]);
        }
        FollowUp::Unread => "'sent', 'delivered'",
        FollowUp::Unreplied => "'sent', 'delivered', 'read'",
    };
    (
        format!(
            "contacts.id IN (SELECT contact_id FROM campaign_recipients WHERE campaign_id = ? AND state IN ({states}))"
        ),
        vec![Value::Integer(parent.0)],
    )
}

/// Every person of the audience with their verdict, in contact order, handed to `f`.
pub fn evaluate(
    c: &Connection,
    campaign: &Campaign,
    cx: &Context<'_>,
    mut f: impl FnMut(Planned) -> rusqlite::Result<()>,
) -> rusqlite::Result<Result<Counts, Unplannable>> {
    let now = cx.moment.now;
    let (condition, audience_args) = match audience_where(c, campaign, &cx.moment, now)? {
        Ok(w) => w,
        Err(e) => return Ok(Err(e)),
    };
    let mut args = Vec::new();
    let cap = if cx.settings.frequency_cap_hours > 0 {
        args.push(Value::Integer(now - cx.settings.frequency_cap_hours * 3600));
        "EXISTS (SELECT 1 FROM campaign_recipients r WHERE r.contact_id = contacts.id AND r.sent_at >= ?)"
    } else {
        "0"
    };
    args.extend(audience_args);
    let mut stmt = c.prepare(&format!(
        "SELECT id, coalesce(wa_id, bsuid, ltrim(phone_e164, '+')), coalesce(name, ''), profile_name, phone_e164,
                attributes, consent_marketing, consent_utility, {cap}
         FROM contacts WHERE {condition} ORDER BY id"
    ))?;
    let names = variable_names(cx.template);
    let purpose = Purpose::of_template_category(&cx.template.category);
    let mut seen: HashSet<u64> = HashSet::new();
    let mut counts = Counts::default();
    let mut rows = stmt.query(params_from_iter(args))?;
    while let Some(r) = rows.next()? {
        let attributes: String = r.get(5)?;
        let p = Person {
            id: r.get(0)?,
            recipient: r.get(1)?,
            name: r.get(2)?,
            profile_name: r.get(3)?,
            phone: r.get(4)?,
            attributes: serde_json::from_str(&attributes).unwrap_or_default(),
            marketing: r.get(6)?,
            utility: r.get(7)?,
            capped: r.get(8)?,
        };
        let planned = judge(&p, &names, campaign, purpose, &mut seen);
        counts.add(&planned);
        f(planned)?;
    }
    Ok(Ok(counts))
}

fn judge(p: &Person, names: &[String], campaign: &Campaign, purpose: Purpose, seen: &mut HashSet<u64>) -> Planned {
    let recipient = p.recipient.clone().unwrap_or_default();
    let params: Vec<String> = names
        .iter()
        .map(|n| campaign.variables.get(n).map(|v| value_of(p, v)).unwrap_or_default())
        .collect();
    let state = match purpose {
        Purpose::Marketing => p.marketing,
        Purpose::Utility => p.utility,
    };
    let verdict = if !valid_address(&recipient) {
        Err((Skip::InvalidNumber, String::new()))
    } else if !seen.insert(address_key(&recipient)) {
        Err((Skip::Duplicate, String::new()))
    } else if let Err(r) = consent::judge(purpose, Some(state)) {
        Err((Skip::of_refusal(r), String::new()))
    } else if p.capped {
        Err((Skip::FrequencyCap, String::new()))
    } else if let Some((name, _)) = names.iter().zip(&params).find(|(_, v)| v.is_empty()) {
        Err((Skip::MissingVariable, name.clone()))
    } else {
        Ok(())
    };
    Planned {
        contact_id: p.id,
        recipient,
        params,
        verdict,
    }
}

/// Writes the ledger: one row per person, queued or skipped with the reason. Call
/// inside the transaction that moves the campaign to running.
pub fn write(c: &Connection, campaign: &Campaign, cx: &Context<'_>) -> rusqlite::Result<Result<Counts, Unplannable>> {
    let mut insert = c.prepare_cached(
        "INSERT INTO campaign_recipients (campaign_id, contact_id, recipient, params, state, reason, detail, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    let now = cx.moment.now;
    evaluate(c, campaign, cx, |p| {
        let params = serde_json::to_string(&p.params).unwrap_or_else(|_| "[]".into());
        let (state, reason, detail) = match &p.verdict {
            Ok(()) => ("queued", None, String::new()),
            Err((why, detail)) => ("skipped", Some(why.code()), detail.clone()),
        };
        insert.execute(params![
            campaign.id,
            p.contact_id,
            p.recipient,
            params,
            state,
            reason,
            detail,
            now
        ])?;
        Ok(())
    })
}

/// The first `n` people who would be messaged, with their values (the preview).
pub fn sample(c: &Connection, campaign: &Campaign, cx: &Context<'_>, n: usize) -> rusqlite::Result<Vec<Planned>> {
    let mut out = Vec::new();
    // A preview stops reading early; the error is the way out of the pass.
    let stop = rusqlite::Error::QueryReturnedNoRows;
    let r = evaluate(c, campaign, cx, |p| {
        if p.verdict.is_ok() {
            out.push(p);
        }
        if out.len() >= n {
            Err(rusqlite::Error::QueryReturnedNoRows)
        } else {
            Ok(())
        }
    });
    match r {
        Ok(_) => Ok(out),
        Err(e) if e == stop => Ok(out),
        Err(e) => Err(e),
    }
}

/// The template's body with a person's values in place.
pub fn render(t: &Template, params: &[String]) -> String {
    let values = variable_names(t).into_iter().zip(params.iter().cloned()).collect();
    crate::whatsapp::templates::draft::fill(&t.body_text, &values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_lose_new_lines_tabs_and_runs_of_spaces() {
        assert_eq!(tidy("  Budi\n\tSantoso     Jr "), "Budi Santoso Jr");
        assert_eq!(tidy(" \n "), "");
    }

    #[test]
    fn addresses_are_phone_digits_or_a_bsuid() {
        assert!(valid_address("6281234567890"));
        assert!(valid_address("ID.1349120865530274"));
        assert!(!valid_address("12345"), "too short for a phone");
        assert!(!valid_address(""));
        assert!(!valid_address("0812 3456"));
        assert_ne!(address_key("ID.1"), address_key("ID.2"));
        assert_eq!(address_key("6281234567890"), 6_281_234_567_890);
    }

    fn person() -> Person {
        Person {
            id: 1,
            recipient: Some("6281234567890".into()),
            name: String::new(),
            profile_name: "Budi Santoso".into(),
            phone: Some("+6281234567890".into()),
            attributes: [("kota".to_string(), "Bandung".to_string())].into(),
            marketing: State::OptedIn,
            utility: State::Unknown,
            capped: false,
        }
    }

    #[test]
    fn a_variable_takes_the_field_then_the_fallback() {
        let p = person();
        let v = |field: Option<&str>, custom: Option<&str>, fallback: Option<&str>| Variable {
            field: field.map(Into::into),
            custom: custom.map(Into::into),
            text: None,
            fallback: fallback.map(Into::into),
        };
        assert_eq!(value_of(&p, &v(Some("first_name"), None, None)), "Budi");
        assert_eq!(value_of(&p, &v(Some("name"), None, None)), "Budi Santoso");
        assert_eq!(value_of(&p, &v(None, Some("kota"), None)), "Bandung");
        assert_eq!(value_of(&p, &v(None, Some("email"), Some("Kak"))), "Kak");
        assert_eq!(
            value_of(&p, &v(None, Some("email"), None)),
            "",
            "empty without a fallback"
        );
    }
}
