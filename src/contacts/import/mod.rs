//! Importing contacts from a spreadsheet (P6): the file kept in the encrypted database,
//! a dry run that changes nothing, then a background run in chunks that resumes after
//! a restart, and a report of every skipped row with its line and reason.
//!
//! - `reader`: the CSV as real files come, rows with their physical line numbers;
//! - `apply`: one row against the store (the same code for the dry run and the run);
//! - `worker`: the background run, chunk by chunk, and the worker that finds work;
//! - this file: the options, the `imports` table, the dry run and the report.

pub mod apply;
pub mod reader;
pub mod routes;
pub mod worker;

pub use worker::Importer;

use crate::audit::Actor;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Largest file accepted (413 above it).
pub const MAX_BYTES: usize = 20 * 1024 * 1024;
/// Files with at most this many rows are answered by the API at once (200 with the
/// report); larger ones run in the background (202).
pub const SYNC_ROWS: i64 = 5_000;
/// Rows per write transaction of the background run.
pub const CHUNK_ROWS: usize = 1_000;
/// Rows the dry run shows as they will be stored.
pub const PREVIEW_ROWS: usize = 20;
/// Longest label name (as the labels page allows).
pub const MAX_LABEL: usize = 40;
/// Most labels one import adds to every contact.
pub const MAX_LABELS: usize = 10;
/// Longest custom field name, and most custom fields (as the contact form allows).
pub const MAX_FIELD_NAME: usize = 50;
pub const MAX_FIELDS: usize = 50;

/// What the person importing chose.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Options {
    /// Region of local phone numbers (the business's country).
    pub region: String,
    /// Labels added to every imported contact.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Change existing contacts (name, custom fields, labels, consent); otherwise they are
    /// left exactly as they are.
    #[serde(default)]
    pub update: bool,
    /// The file's people agreed to marketing messages (a row's own consent cell wins).
    #[serde(default)]
    pub consent_marketing: bool,
    /// How they agreed: the attestation recorded as the consent wording.
    #[serde(default)]
    pub consent_source: String,
    /// Column -> custom field name; columns not named are ignored. `None`: every other
    /// column under its header name (what the API does).
    #[serde(default)]
    pub fields: Option<BTreeMap<usize, String>>,
}

impl Options {
    /// What is wrong with these options for a file of this layout (message keys).
    pub fn problems(&self, layout: &reader::Layout) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.labels.len() > MAX_LABELS || self.labels.iter().any(|l| l.chars().count() > MAX_LABEL) {
            out.push("import.error.labels");
        }
        let has_opted = layout.column(reader::Role::Opted).is_some();
        let has_source = layout.column(reader::Role::ConsentSource).is_some();
        if (self.consent_marketing || (has_opted && !has_source)) && self.consent_source.trim().is_empty() {
            out.push("import.error.consent_source");
        }
        if self.consent_source.chars().count() > 500 {
            out.push("import.error.consent_source_long");
        }
        let names: Vec<String> = layout.fields(self.fields.as_ref()).into_iter().flatten().collect();
        let mut seen = std::collections::HashSet::new();
        if names.len() > MAX_FIELDS
            || names
                .iter()
                .any(|n| n.trim().is_empty() || n.chars().count() > MAX_FIELD_NAME || !seen.insert(n.as_str()))
        {
            out.push("import.error.fields");
        }
        out
    }
}

/// Why a row was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Skip {
    InvalidNumber,
    MissingPhone,
    /// The same number earlier in the file (the first row wins).
    DuplicateInFile,
    /// The file says opted in; the contact opted out, and that stays.
    ConflictingOptOut,
    /// The consent cell is not TRUE/FALSE, ya/tidak...
    InvalidOptIn,
    InvalidConsentDate,
    /// A name, label or field longer than a contact may have.
    TooLong,
    /// Consent claimed for the row, but nothing says how it was given.
    MissingConsentSource,
}

impl Skip {
    pub const ALL: [Skip; 8] = [
        Skip::InvalidNumber,
        Skip::MissingPhone,
        Skip::DuplicateInFile,
        Skip::ConflictingOptOut,
        Skip::InvalidOptIn,
        Skip::InvalidConsentDate,
        Skip::TooLong,
        Skip::MissingConsentSource,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Skip::InvalidNumber => "invalid_number",
            Skip::MissingPhone => "missing_phone",
            Skip::DuplicateInFile => "duplicate_in_file",
            Skip::ConflictingOptOut => "conflicting_opt_out",
            Skip::InvalidOptIn => "invalid_opt_in",
            Skip::InvalidConsentDate => "invalid_consent_date",
            Skip::TooLong => "too_long",
            Skip::MissingConsentSource => "missing_consent_source",
        }
    }

    pub fn parse(s: &str) -> Option<Skip> {
        Skip::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// What happened to the rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub skipped: i64,
    /// Contacts imported (created, updated or left) that have no marketing opt-in: they
    /// cannot receive marketing messages.
    pub no_marketing_consent: i64,
    /// Skipped rows by reason.
    pub by_reason: BTreeMap<&'static str, i64>,
}

impl Counts {
    pub fn add(&mut self, outcome: apply::Outcome, marketing_ok: bool) {
        match outcome {
            apply::Outcome::Created => self.created += 1,
            apply::Outcome::Updated => self.updated += 1,
            apply::Outcome::Unchanged => self.unchanged += 1,
            apply::Outcome::Skipped(why) => {
                self.skipped += 1;
                *self.by_reason.entry(why.as_str()).or_insert(0) += 1;
                return;
            }
        }
        if !marketing_ok {
            self.no_marketing_consent += 1;
        }
    }

    /// The reasons in a fixed order, with their counts.
    pub fn reasons(&self) -> Vec<(&'static str, i64)> {
        Skip::ALL
            .iter()
            .filter_map(|s| self.by_reason.get(s.as_str()).map(|n| (s.as_str(), *n)))
            .collect()
    }
}

/// Where an import stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Draft,
    Queued,
    Running,
    Done,
    Failed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Draft => "draft",
            State::Queued => "queued",
            State::Running => "running",
            State::Done => "done",
            State::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        [State::Draft, State::Queued, State::Running, State::Done, State::Failed]
            .into_iter()
            .find(|x| x.as_str() == s)
    }

    pub fn finished(self) -> bool {
        matches!(self, State::Done | State::Failed)
    }
}

/// An import as its pages and the API show it (the file itself stays in the database).
#[derive(Debug, Clone, Serialize)]
pub struct Import {
    pub id: i64,
    pub state: State,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    pub actor: String,
    pub file_name: String,
    pub sha256: String,
    #[serde(skip)]
    pub options: Options,
    pub total: i64,
    pub processed: i64,
    #[serde(flatten)]
    pub counts: Counts,
    pub error: Option<String>,
}

impl Import {
    /// Percent done, for the progress bar.
    pub fn percent(&self) -> i64 {
        if self.total <= 0 {
            return if self.state.finished() { 100 } else { 0 };
        }
        (self.processed * 100 / self.total).clamp(0, 100)
    }
}

/// A skipped row of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub line: i64,
    pub phone: String,
    pub reason: Skip,
}

const COLS: &str = "id, state, created_at, finished_at, actor, file_name, sha256, options, total, processed,
                    created, updated, unchanged, skipped, no_consent, error";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Import> {
    let state: String = r.get(1)?;
    let options: String = r.get(7)?;
    Ok(Import {
        id: r.get(0)?,
        state: State::parse(&state).unwrap_or(State::Failed),
        created_at: r.get(2)?,
        finished_at: r.get(3)?,
        actor: r.get(4)?,
        file_name: r.get(5)?,
        sha256: r.get(6)?,
        options: serde_json::from_str(&options).unwrap_or_default(),
        total: r.get(8)?,
        processed: r.get(9)?,
        counts: Counts {
            created: r.get(10)?,
            updated: r.get(11)?,
            unchanged: r.get(12)?,
            skipped: r.get(13)?,
            no_marketing_consent: r.get(14)?,
            by_reason: BTreeMap::new(),
        },
        error: r.get(15)?,
    })
}

/// An import with its skipped rows counted by reason.
pub fn find(c: &Connection, id: i64) -> rusqlite::Result<Option<Import>> {
    let Some(mut imp) = c
        .query_row(&format!("SELECT {COLS} FROM imports WHERE id = ?1"), [id], from_row)
        .optional()?
    else {
        return Ok(None);
    };
    let mut stmt = c.prepare("SELECT reason, count(*) FROM import_skips WHERE import_id = ?1 GROUP BY reason")?;
    let rows = stmt.query_map([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (reason, n) = row?;
        if let Some(s) = Skip::parse(&reason) {
            imp.counts.by_reason.insert(s.as_str(), n);
        }
    }
    Ok(Some(imp))
}

/// The newest imports, for the upload page.
pub fn list_recent(c: &Connection, limit: i64) -> rusqlite::Result<Vec<Import>> {
    let mut stmt = c.prepare(&format!(
        "SELECT {COLS} FROM imports WHERE state <> 'draft' ORDER BY id DESC LIMIT ?1"
    ))?;
    let rows = stmt.query_map([limit], from_row)?;
    rows.collect()
}

/// The skipped rows of an import, in file order (at most `limit`).
pub fn list_skipped(c: &Connection, id: i64, limit: i64) -> rusqlite::Result<Vec<Skipped>> {
    let mut stmt =
        c.prepare("SELECT line, phone, reason FROM import_skips WHERE import_id = ?1 ORDER BY line LIMIT ?2")?;
    let rows = stmt.query_map(params![id, limit], |r| {
        let reason: String = r.get(2)?;
        Ok(Skipped {
            line: r.get(0)?,
            phone: r.get(1)?,
            reason: Skip::parse(&reason).unwrap_or(Skip::InvalidNumber),
        })
    })?;
    rows.collect()
}

/// The uploaded file of an import.
pub fn file_of(c: &Connection, id: i64) -> rusqlite::Result<Option<Vec<u8>>> {
    c.query_row("SELECT file FROM imports WHERE id = ?1", [id], |r| r.get(0))
        .optional()
}

/// A new import of `file` in `state` (draft from the pages, queued from the API), after
/// forgetting drafts nobody confirmed within a day.
#[expect(clippy::too_many_arguments, reason = "the columns of the new row, each named")]
pub fn insert(
    c: &Connection,
    actor: &Actor,
    file_name: &str,
    file: &[u8],
    options: &Options,
    state: State,
    total: i64,
    now: i64,
) -> rusqlite::Result<i64> {
    c.execute(
        "DELETE FROM imports WHERE state = 'draft' AND created_at < ?1",
        [now - 86_400],
    )?;
    c.execute(
        "INSERT INTO imports (state, created_at, updated_at, actor_id, actor, actor_ip, file_name, file, sha256,
                              options, total)
         VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?6, zeroblob(?7), ?8, ?9, ?10)",
        params![
            state.as_str(),
            now,
            actor.id,
            actor.label,
            actor.ip,
            file_name,
            i64::try_from(file.len()).unwrap_or(i64::MAX),
            crate::crypto::sha256_hex(file),
            serde_json::to_string(options).unwrap_or_else(|_| "{}".into()),
            total,
        ],
    )?;
    let id = c.last_insert_rowid();
    // The bytes go into the row's pages straight from the upload's buffer (a bound value
    // would be copied whole twice more on the way: as the value, then in the record).
    c.blob_open("main", "imports", "file", id, false)?.write_at(file, 0)?;
    Ok(id)
}

/// The uploaded file of an import, read once into one buffer (not the value and then a
/// copy of it); `None` when there is no such import.
pub fn read_file(c: &Connection, id: i64) -> rusqlite::Result<Option<Vec<u8>>> {
    let n: i64 = c.query_row("SELECT count(*) FROM imports WHERE id = ?1", [id], |r| r.get(0))?;
    if n == 0 {
        return Ok(None);
    }
    let blob = c.blob_open("main", "imports", "file", id, true)?;
    let mut file = vec![0; blob.len()];
    blob.read_at_exact(&mut file, 0)?;
    Ok(Some(file))
}

/// Changes a draft's options (the dry-run page); false when it is no longer a draft.
pub fn update_draft(c: &Connection, id: i64, options: &Options, now: i64) -> rusqlite::Result<bool> {
    let n = c.execute(
        "UPDATE imports SET options = ?2, updated_at = ?3 WHERE id = ?1 AND state = 'draft'",
        params![id, serde_json::to_string(options).unwrap_or_else(|_| "{}".into()), now],
    )?;
    Ok(n == 1)
}

/// Confirms a draft: the background worker takes it. False when it is not a draft.
pub fn confirm(c: &Connection, id: i64, options: &Options, now: i64) -> rusqlite::Result<bool> {
    let n = c.execute(
        "UPDATE imports SET state = 'queued', options = ?2, updated_at = ?3 WHERE id = ?1 AND state = 'draft'",
        params![id, serde_json::to_string(options).unwrap_or_else(|_| "{}".into()), now],
    )?;
    Ok(n == 1)
}

/// Imports the worker has to run (queued, or cut off by a restart), oldest first.
pub fn list_open(c: &Connection) -> rusqlite::Result<Vec<i64>> {
    let mut stmt = c.prepare("SELECT id FROM imports WHERE state IN ('queued', 'running') ORDER BY id")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    rows.collect()
}

/// Opens a file as the run will read it: its layout and how many rows it has; or why
/// it cannot be read at all.
pub fn inspect(file: &[u8], options: &Options) -> Result<(reader::Layout, i64), reader::FileError> {
    let rows = reader::Rows::open(reader::decode(file)?, options)?;
    let layout = rows.layout.clone();
    Ok((layout, rows.count()?))
}

/// What a dry run found: the file's columns, the first rows as they will be stored,
/// and the counts the run would end with.
#[derive(Debug, Clone, Serialize)]
pub struct DryRun {
    pub encoding: &'static str,
    pub delimiter: String,
    pub columns: Vec<Column>,
    pub rows: Vec<apply::Preview>,
    pub total: i64,
    #[serde(flatten)]
    pub counts: Counts,
    /// The first skipped rows (the full list comes with the report).
    pub skipped_rows: Vec<Skipped>,
    /// Problems with the options (message keys); the run is refused while any remain.
    pub problems: Vec<&'static str>,
}

/// A column of the file and what it becomes.
#[derive(Debug, Clone, Serialize)]
pub struct Column {
    pub index: usize,
    pub header: String,
    pub role: reader::Role,
    /// The custom field it fills, when it is an "other" column that is not ignored.
    pub field: Option<String>,
}

/// Most skipped rows a dry run lists.
const DRY_RUN_SKIPS: usize = 200;

/// The dry run: every row planned against the store as it is now, nothing written.
pub fn dry_run(c: &Connection, file: &[u8], options: &Options) -> Result<DryRun, reader::FileError> {
    let decoded = reader::decode(file)?;
    let encoding = decoded.encoding;
    let mut rows = reader::Rows::open(decoded, options)?;
    let layout = rows.layout.clone();
    let fields = layout.fields(options.fields.as_ref());
    let columns = layout
        .headers
        .iter()
        .enumerate()
        .map(|(i, h)| Column {
            index: i,
            header: h.clone(),
            role: layout.roles[i],
            field: fields[i].clone(),
        })
        .collect();
    let mut counts = Counts::default();
    let (mut preview, mut skipped_rows, mut total) = (Vec::new(), Vec::new(), 0);
    let nobody = Actor::system();
    let mut plan = apply::Planner::new(options, "", &nobody, 0);
    while let Some(row) = rows.next_row() {
        let row = row?;
        total += 1;
        let (outcome, marketing) = plan
            .row(c, &row, false)
            .map_err(|_| reader::FileError::Broken(row.line))?;
        counts.add(outcome, marketing);
        if let apply::Outcome::Skipped(reason) = outcome {
            if skipped_rows.len() < DRY_RUN_SKIPS {
                skipped_rows.push(Skipped {
                    line: i64::try_from(row.line).unwrap_or(i64::MAX),
                    phone: row.phone_raw.clone(),
                    reason,
                });
            }
        }
        if preview.len() < PREVIEW_ROWS {
            preview.push(apply::Preview::of(&row, options, outcome, marketing));
        }
    }
    Ok(DryRun {
        encoding,
        delimiter: match layout.delimiter {
            b';' => ";".into(),
            b'\t' => "tab".into(),
            d => char::from(d).to_string(),
        },
        columns,
        rows: preview,
        total,
        counts,
        skipped_rows,
        problems: options.problems(&layout),
    })
}

/// The report as CSV: every skipped row with its line, the phone as the file wrote it,
/// the reason code and its explanation. Cells a spreadsheet would run as a formula are
/// defused like the audit export's.
pub fn report_csv(skipped: &[Skipped], explain: impl Fn(Skip) -> String) -> Result<Vec<u8>, String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["line", "phone", "reason", "explanation"])
        .map_err(|e| e.to_string())?;
    for s in skipped {
        let row = [
            s.line.to_string(),
            s.phone.clone(),
            s.reason.as_str().to_string(),
            explain(s.reason),
        ];
        w.write_record(row.iter().map(|c| crate::audit::defuse_formula(c)))
            .map_err(|e| e.to_string())?;
    }
    w.into_inner().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_cells_are_defused() {
        let s = [Skipped {
            line: 3,
            phone: "=HYPERLINK(\"x\")".into(),
            reason: Skip::InvalidNumber,
        }];
        let out = String::from_utf8(report_csv(&s, |k| k.as_str().into()).unwrap()).unwrap();
        assert!(out.contains("'=HYPERLINK"), "{out}");
        assert!(out.starts_with("line,phone,reason,explanation\n3,"));
    }
}
