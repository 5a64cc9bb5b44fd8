//! One row against the store: found by its number (E.164 or WhatsApp id), created, or
//! updated when the options allow, with its labels and its consent; the same code plans
//! the dry run (nothing written) and applies the run (inside the chunk's transaction).
//! A row is checked whole before anything is written, so it is applied or reported.

use super::reader::Row;
use super::{Options, Skip};
use crate::audit::Actor;
use crate::contacts::NewContact;
use crate::contacts::consent::{self, Change, Purpose, Source, State};
use rusqlite::{Connection, OptionalExtension, ToSql, params};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// What became of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "reason")]
pub enum Outcome {
    Created,
    Updated,
    Unchanged,
    Skipped(Skip),
}

impl Outcome {
    pub fn code(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Updated => "updated",
            Outcome::Unchanged => "unchanged",
            Outcome::Skipped(_) => "skipped",
        }
    }
}

/// A row of the dry run's preview, as it will be stored.
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    pub line: u64,
    pub phone: String,
    pub name: String,
    pub labels: Vec<String>,
    pub fields: Vec<(String, String)>,
    /// Whether the contact may get marketing after the import.
    pub marketing: bool,
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl Preview {
    pub fn of(row: &Row, options: &Options, outcome: Outcome, marketing: bool) -> Preview {
        Preview {
            line: row.line,
            phone: if row.phone.is_empty() {
                row.phone_raw.clone()
            } else {
                row.phone.clone()
            },
            name: row.name.clone(),
            labels: labels_of(row, options),
            fields: row.attributes.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            marketing,
            outcome,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self.outcome {
            Outcome::Skipped(s) => s.as_str(),
            _ => "",
        }
    }
}

/// The import's labels and the row's own, once each (case ignored).
fn labels_of(row: &Row, options: &Options) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in options.labels.iter().chain(&row.labels) {
        let l = l.trim();
        if !l.is_empty() && !out.iter().any(|o| o.to_lowercase() == l.to_lowercase()) {
            out.push(l.to_string());
        }
    }
    out
}

/// A contact as the import sees it.
struct Existing {
    id: i64,
    name: String,
    attributes: BTreeMap<String, String>,
    marketing: State,
}

fn find_by_phone(c: &Connection, e164: &str) -> rusqlite::Result<Option<Existing>> {
    c.prepare_cached(
        "SELECT id, coalesce(name, ''), attributes, consent_marketing FROM contacts WHERE phone_e164 = ?1
         UNION ALL
         SELECT id, coalesce(name, ''), attributes, consent_marketing FROM contacts WHERE wa_id = ?2
         LIMIT 1",
    )?
    .query_row(params![e164, e164.trim_start_matches('+')], |r| {
        let attrs: String = r.get(2)?;
        Ok(Existing {
            id: r.get(0)?,
            name: r.get(1)?,
            attributes: serde_json::from_str(&attrs).unwrap_or_default(),
            marketing: r.get(3)?,
        })
    })
    .optional()
}

/// Plans and applies rows for one import: the options, the evidence, who, when; and the
/// labels already looked up (per chunk: a label deleted meanwhile is made again).
pub struct Planner<'a> {
    options: &'a Options,
    sha256: &'a str,
    actor: &'a Actor,
    now: i64,
    labels: HashMap<String, Option<i64>>,
    /// Contacts the rows create, written by [`Planner::flush`].
    pending: Vec<NewContact>,
    pending_extra: Vec<PendingExtra>,
}

impl<'a> Planner<'a> {
    pub fn new(options: &'a Options, sha256: &'a str, actor: &'a Actor, now: i64) -> Planner<'a> {
        Planner {
            options,
            sha256,
            actor,
            now,
            labels: HashMap::new(),
            pending: Vec::new(),
            pending_extra: Vec::new(),
        }
    }

    /// The label's id; when it does not exist yet, made (`write`) or `None` (dry run).
    fn label(&mut self, c: &Connection, name: &str, write: bool) -> rusqlite::Result<Option<i64>> {
        let k = name.to_lowercase();
        if let Some(Some(id)) = self.labels.get(&k) {
            return Ok(Some(*id));
        }
        let mut id: Option<i64> = c
            .prepare_cached("SELECT id FROM labels WHERE name = ?1")?
            .query_row([name], |r| r.get(0))
            .optional()?;
        if id.is_none() && write {
            c.prepare_cached("INSERT INTO labels (name, color, created_at) VALUES (?1, 'grey', ?2)")?
                .execute(params![name, self.now])?;
            id = Some(c.last_insert_rowid());
        }
        self.labels.insert(k, id);
        Ok(id)
    }

    /// Adds the labels to a contact (dry run: says whether it would); true when one was new.
    fn add_labels(
        &mut self,
        c: &Connection,
        contact: Option<i64>,
        names: &[String],
        write: bool,
    ) -> rusqlite::Result<bool> {
        let mut changed = false;
        for name in names {
            let id = self.label(c, name, write)?;
            changed |= match (id, contact) {
                (Some(l), Some(ct)) if write => {
                    c.prepare_cached("INSERT OR IGNORE INTO contact_labels (contact_id, label_id) VALUES (?1, ?2)")?
                        .execute(params![ct, l])?
                        == 1
                }
                (Some(l), Some(ct)) => {
                    c.prepare_cached("SELECT count(*) FROM contact_labels WHERE contact_id = ?1 AND label_id = ?2")?
                        .query_row(params![ct, l], |r| r.get::<_, i64>(0))?
                        == 0
                }
                _ => true,
            };
        }
        Ok(changed)
    }

    /// The row's outcome and whether the contact may get marketing afterwards; written
    /// when `write`, else only planned against the store as it is.
    pub fn row(&mut self, c: &Connection, row: &Row, write: bool) -> rusqlite::Result<(Outcome, bool)> {
        if let Some(why) = row.skip {
            return Ok((Outcome::Skipped(why), false));
        }
        let claim = row.opted.unwrap_or(self.options.consent_marketing);
        let wording = if row.consent_source.is_empty() {
            self.options.consent_source.trim()
        } else {
            row.consent_source.as_str()
        };
        if claim && wording.is_empty() {
            return Ok((Outcome::Skipped(Skip::MissingConsentSource), false));
        }
        let labels = labels_of(row, self.options);
        let existing = find_by_phone(c, &row.phone)?;
        let (id, outcome, marketing_before) = match existing {
            None if write => {
                // Written with the chunk's other new contacts by `flush`.
                let mut label_ids = Vec::with_capacity(labels.len());
                for name in &labels {
                    label_ids.extend(self.label(c, name, true)?);
                }
                self.pending.push(NewContact {
                    name: row.name.clone(),
                    phone: row.phone.clone(),
                    attributes: serde_json::to_string(&row.attributes).unwrap_or_else(|_| "{}".into()),
                    marketing: if claim { State::OptedIn } else { State::Unknown },
                });
                self.pending_extra.push(PendingExtra {
                    labels: label_ids,
                    consent: claim.then(|| PendingConsent {
                        occurred_at: row.consent_at,
                        wording: wording.to_string(),
                        evidence: format!("sha256:{} line {}", self.sha256, row.line),
                    }),
                });
                return Ok((Outcome::Created, claim));
            }
            None => {
                self.add_labels(c, None, &labels, false)?;
                return Ok((Outcome::Created, claim));
            }
            Some(e) if !self.options.update => {
                return Ok((Outcome::Unchanged, e.marketing == State::OptedIn));
            }
            Some(e) if claim && e.marketing == State::OptedOut => {
                return Ok((Outcome::Skipped(Skip::ConflictingOptOut), false));
            }
            Some(e) => {
                let name = if row.name.is_empty() {
                    e.name.clone()
                } else {
                    row.name.clone()
                };
                let mut attributes = e.attributes.clone();
                attributes.extend(row.attributes.iter().map(|(k, v)| (k.clone(), v.clone())));
                let mut changed = name != e.name || attributes != e.attributes;
                if changed && write {
                    c.prepare_cached(
                        "UPDATE contacts SET name = nullif(?2, ''), attributes = ?3, updated_at = ?4 WHERE id = ?1",
                    )?
                    .execute(params![
                        e.id,
                        name,
                        serde_json::to_string(&attributes).unwrap_or_else(|_| "{}".into()),
                        self.now
                    ])?;
                }
                changed |= self.add_labels(c, Some(e.id), &labels, write)?;
                changed |= claim && e.marketing != State::OptedIn;
                let outcome = if changed { Outcome::Updated } else { Outcome::Unchanged };
                (Some(e.id), outcome, e.marketing)
            }
        };
        if claim && write {
            if let Some(contact) = id {
                let evidence = format!("sha256:{} line {}", self.sha256, row.line);
                let change = Change {
                    contact,
                    purpose: Purpose::Marketing,
                    state: State::OptedIn,
                    source: Source::Import,
                    occurred_at: row.consent_at,
                    wording,
                    evidence: &evidence,
                };
                consent::record_in_bulk(c, &change, self.actor, self.now)?;
            }
        }
        Ok((outcome, claim || marketing_before == State::OptedIn))
    }

    /// Writes the contacts the rows so far create, with their labels and consent log
    /// lines, many per statement (one statement per row spent more on statement
    /// journals than on the rows). The chunk calls it after its last row, in the same
    /// transaction: until then those contacts are not in the store.
    pub fn flush(&mut self, c: &Connection) -> rusqlite::Result<()> {
        let contacts = std::mem::take(&mut self.pending);
        let extra = std::mem::take(&mut self.pending_extra);
        let ids = crate::contacts::create_many(c, &contacts, self.now)?;
        let pairs: Vec<(i64, i64)> = ids
            .iter()
            .zip(&extra)
            .flat_map(|(id, e)| e.labels.iter().map(move |l| (*id, *l)))
            .collect();
        for batch in pairs.chunks(250) {
            let values = vec!["(?, ?)"; batch.len()].join(", ");
            let args: Vec<&dyn ToSql> = batch.iter().flat_map(|(a, b)| -> [&dyn ToSql; 2] { [a, b] }).collect();
            c.prepare_cached(&format!(
                "INSERT OR IGNORE INTO contact_labels (contact_id, label_id) VALUES {values}"
            ))?
            .execute(args.as_slice())?;
        }
        let changes: Vec<Change<'_>> = ids
            .iter()
            .zip(&extra)
            .filter_map(|(id, e)| {
                e.consent.as_ref().map(|p| Change {
                    contact: *id,
                    purpose: Purpose::Marketing,
                    state: State::OptedIn,
                    source: Source::Import,
                    occurred_at: p.occurred_at,
                    wording: &p.wording,
                    evidence: &p.evidence,
                })
            })
            .collect();
        consent::log_many_at_creation(c, &changes, self.actor, self.now)
    }
}

/// What a contact to create carries besides its row: its label ids and its consent.
struct PendingExtra {
    labels: Vec<i64>,
    consent: Option<PendingConsent>,
}

struct PendingConsent {
    occurred_at: Option<i64>,
    wording: String,
    evidence: String,
}
