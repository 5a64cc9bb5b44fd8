//! Adding and changing a contact, the same for the pages and the API: the input
//! checked field by field, the phone kept unique, the audit line written with the row.

use super::{Contact, Scope, normalize_phone};
use crate::audit::{self, Actor};
use crate::error::{AppError, AppResult, FormErrors};
use rusqlite::Connection;
use serde::Deserialize;
use std::collections::BTreeMap;

/// What a form or an API call gives for a contact.
#[derive(Deserialize, Default, Clone)]
pub struct ContactInput {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub phone: String,
    /// Form: `key=value` lines. API: use `attributes`.
    #[serde(default)]
    pub attributes_text: String,
    #[serde(default)]
    pub attributes: Option<BTreeMap<String, String>>,
}

struct Valid {
    name: String,
    phone: Option<String>,
    attributes: BTreeMap<String, String>,
}

fn parse_attributes(text: &str) -> Result<BTreeMap<String, String>, &'static str> {
    let mut out = BTreeMap::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (k, v) = line.split_once('=').ok_or("contacts.attributes_invalid")?;
        let k = k.trim();
        if k.is_empty() || k.len() > 50 || v.len() > 500 {
            return Err("contacts.attributes_invalid");
        }
        out.insert(k.to_string(), v.trim().to_string());
    }
    Ok(out)
}
fn validate(input: &ContactInput, region: &str, phone_required: bool, errors: &mut FormErrors) -> Valid {
    let name = input.name.trim().to_string();
    if name.chars().count() > 100 {
        errors.add("name", "form.name_required");
    }
    let phone = match input.phone.trim() {
        "" if phone_required => {
            errors.add("phone", "contacts.phone_invalid");
            None
        }
        "" => None,
        p => match normalize_phone(p, region) {
            Ok(e164) => Some(e164),
            Err(k) => {
                errors.add("phone", k);
                None
            }
        },
    };
    let attributes = match &input.attributes {
        Some(map)
            if map.len() <= 50
                && map
                    .iter()
                    .all(|(k, v)| !k.is_empty() && k.len() <= 50 && v.len() <= 500) =>
        {
            map.clone()
        }
        Some(_) => {
            errors.add("attributes_text", "contacts.attributes_invalid");
            BTreeMap::new()
        }
        None => parse_attributes(&input.attributes_text).unwrap_or_else(|k| {
            errors.add("attributes_text", k);
            BTreeMap::new()
        }),
    };
    Valid {
        name,
        phone,
        attributes,
    }
}

/// The form's `key=value` lines for a contact's attributes.
pub fn attributes_text(c: &Contact) -> String {
    c.attributes
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The contact when it is in `scope`; 404 otherwise (a hidden contact does not even
/// admit it exists).
pub fn get(c: &Connection, scope: &Scope, id: i64) -> AppResult<Contact> {
    if !super::visible(c, scope, id)? {
        return Err(AppError::NotFound);
    }
    super::find(c, id)?.ok_or(AppError::NotFound)
}

/// Validates and stores a new contact (phones local to `region` become E.164); the
/// contact, or the field errors for the form or the API.
pub fn create(
    c: &Connection,
    region: &str,
    actor: &Actor,
    input: &ContactInput,
    now: i64,
) -> AppResult<Result<Contact, FormErrors>> {
    let mut errors = FormErrors::default();
    let v = validate(input, region, true, &mut errors);
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    let phone = v.phone.unwrap_or_default();
    if super::phone_taken(c, &phone, None)? {
        return Ok(Err(phone_taken()));
    }
    let id = super::create(c, &v.name, &phone, &v.attributes, now)?;
    audit::record(c, actor, "contact.create", &format!("contact:{id}"), "", now)?;
    Ok(Ok(super::find(c, id)?.ok_or(AppError::NotFound)?))
}

/// Validates and applies changes to a contact in `scope` (404 when it is not, or is
/// gone); the changed contact, or the field errors for the form or the API.
pub fn update(
    c: &Connection,
    scope: &Scope,
    region: &str,
    actor: &Actor,
    id: i64,
    input: &ContactInput,
    now: i64,
) -> AppResult<Result<Contact, FormErrors>> {
    get(c, scope, id)?;
    let mut errors = FormErrors::default();
    let v = validate(input, region, false, &mut errors);
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    if let Some(p) = &v.phone {
        if super::phone_taken(c, p, Some(id))? {
            return Ok(Err(phone_taken()));
        }
    }
    super::update(c, id, &v.name, v.phone.as_deref(), &v.attributes, now)?;
    audit::record(c, actor, "contact.update", &format!("contact:{id}"), "", now)?;
    Ok(Ok(super::find(c, id)?.ok_or(AppError::NotFound)?))
}

/// An API `PATCH`: only the fields given change.
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct ContactPatch {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub attributes: Option<BTreeMap<String, String>>,
}

/// Merges `patch` into the contact (in `scope`, else 404) and applies it like
/// [`update`].
pub fn patch(
    c: &Connection,
    scope: &Scope,
    region: &str,
    actor: &Actor,
    id: i64,
    patch: ContactPatch,
    now: i64,
) -> AppResult<Result<Contact, FormErrors>> {
    let current = get(c, scope, id)?;
    let input = ContactInput {
        name: patch.name.unwrap_or(current.name),
        phone: patch.phone.unwrap_or_else(|| current.phone.unwrap_or_default()),
        attributes_text: String::new(),
        attributes: Some(patch.attributes.unwrap_or(current.attributes)),
    };
    update(c, scope, region, actor, id, &input, now)
}

fn phone_taken() -> FormErrors {
    let mut e = FormErrors::default();
    e.add("phone", "contacts.phone_taken");
    e
}

/// A consent change as an agent (the contact page) or an API client records it.
#[derive(Deserialize, Default, Clone, Debug)]
pub struct ConsentInput {
    #[serde(default)]
    pub purpose: String,
    #[serde(default)]
    pub state: String,
    /// What the person said or agreed to, or where it is written: required, it is the proof.
    #[serde(default)]
    pub wording: String,
    #[serde(default)]
    pub evidence: String,
}

/// What recording a consent change did.
pub enum ConsentRecorded {
    Changed(Contact),
    /// Already in that state: nothing written.
    Unchanged(Contact),
    /// The contact opted out, and this source may not lift it.
    OptOutWins,
    Invalid(FormErrors),
}

/// Longest wording or evidence kept.
const MAX_PROOF: usize = 1000;

/// Records a consent change for a contact in `scope` (404 otherwise) from `source`
/// (`Agent` for the page, `Api` for the API), through `consent::record`: logged and
/// audited, nothing written when nothing changes, an opt-out kept when the source may
/// not lift it.
pub fn record_consent(
    c: &Connection,
    scope: &Scope,
    actor: &Actor,
    id: i64,
    input: &ConsentInput,
    source: super::consent::Source,
    now: i64,
) -> AppResult<ConsentRecorded> {
    use super::consent::{self, Change, Outcome, Purpose, State};
    get(c, scope, id)?;
    let mut errors = FormErrors::default();
    let purpose = Purpose::parse(&input.purpose);
    let state = State::parse(&input.state).filter(|s| *s != State::Unknown);
    if purpose.is_none() || state.is_none() {
        errors.add("state", "consent.record.invalid");
    }
    let (wording, evidence) = (input.wording.trim(), input.evidence.trim());
    if wording.is_empty() || wording.chars().count() > MAX_PROOF || evidence.chars().count() > MAX_PROOF {
        errors.add("wording", "consent.record.wording_required");
    }
    let (Some(purpose), Some(state), true) = (purpose, state, errors.is_empty()) else {
        return Ok(ConsentRecorded::Invalid(errors));
    };
    let change = Change {
        contact: id,
        purpose,
        state,
        source,
        occurred_at: None,
        wording,
        evidence,
    };
    let outcome = consent::record(c, &change, actor, now)?;
    let contact = super::find(c, id)?.ok_or(AppError::NotFound)?;
    Ok(match outcome {
        Outcome::Changed { .. } => ConsentRecorded::Changed(contact),
        Outcome::Unchanged => ConsentRecorded::Unchanged(contact),
        Outcome::OptOutWins => ConsentRecorded::OptOutWins,
        Outcome::NoSuchContact => return Err(AppError::NotFound),
    })
}
