//! The background run of an import: the file is read from the database and parsed on
//! one thread while the writer applies the previous chunk; each chunk of rows, its
//! skipped rows and the progress counters commit in one write transaction, so after a
//! restart (even `kill -9`) the run resumes after the last committed chunk and no row
//! is applied twice or half. One audit line for the whole run, when it ends.

use super::reader::{self, FileError, Row};
use super::{CHUNK_ROWS, Counts, Options, State, apply};
use crate::audit::{self, Actor};
use crate::clock::Clock;
use crate::store::{Db, DbError};
use crate::wake::Doorbell;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The importer's handles: the store, the clock, the bell that says an import was
/// queued, and the imports being run right now in this process.
#[derive(Clone)]
pub struct Importer {
    pub db: Db,
    pub clock: Clock,
    pub bell: Doorbell,
    busy: Arc<Mutex<HashSet<i64>>>,
}

/// An import this process is running; given back when dropped.
struct Claim {
    id: i64,
    busy: Arc<Mutex<HashSet<i64>>>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Ok(mut b) = self.busy.lock() {
            b.remove(&self.id);
        }
    }
}

impl Importer {
    pub fn new(db: Db, clock: Clock) -> Importer {
        Importer {
            db,
            clock,
            bell: Doorbell::default(),
            busy: Arc::default(),
        }
    }

    fn claim(&self, id: i64) -> Option<Claim> {
        let mut b = self.busy.lock().ok()?;
        b.insert(id).then(|| Claim {
            id,
            busy: Arc::clone(&self.busy),
        })
    }

    /// Starts the worker: it runs queued imports, and those a restart cut off, one at a
    /// time, and then waits for the bell. Call once (from `server::start`).
    pub fn start(&self) {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                match me.db.read(|c| Ok(super::list_open(c)?)).await {
                    Ok(ids) => {
                        for id in ids {
                            if let Err(e) = me.run(id).await {
                                tracing::error!(import = id, error = %e, "import failed");
                            }
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "cannot look for imports"),
                }
                me.bell.wait(Duration::from_secs(60)).await;
            }
        });
    }

    /// Checks and stores an uploaded file as an import in `state` (a draft for the pages,
    /// queued for the API); the reading happens off the async workers, the insert in the
    /// writer. A queued import is not rung for: the caller runs it or rings.
    pub async fn submit(&self, new: NewImport, state: State) -> Result<Submitted, DbError> {
        let NewImport {
            actor,
            file_name,
            file,
            options,
        } = new;
        let (file, checked) = tokio::task::spawn_blocking(move || {
            let checked = super::inspect(&file, &options).map(|(layout, total)| (options.problems(&layout), total));
            (file, checked.map(|c| (c, options)))
        })
        .await
        .map_err(|e| DbError::Task(e.to_string()))?;
        let ((problems, total), options) = match checked {
            Ok(c) => c,
            Err(e) => return Ok(Submitted::File(e)),
        };
        if !problems.is_empty() && state != State::Draft {
            return Ok(Submitted::Problems(problems));
        }
        let now = self.clock.unix();
        let id = self
            .db
            .write(move |c| {
                Ok(super::insert(
                    c, &actor, &file_name, &file, &options, state, total, now,
                )?)
            })
            .await?;
        Ok(Submitted::Stored { id, total })
    }

    /// Runs an import to its end, off the async workers; returns at once when this
    /// process is already running it.
    pub async fn run(&self, id: i64) -> Result<(), String> {
        let Some(claim) = self.claim(id) else {
            return Ok(());
        };
        let (db, clock) = (self.db.clone(), self.clock.clone());
        let out = tokio::task::spawn_blocking(move || run_blocking(&db, &clock, id))
            .await
            .map_err(|e| format!("the import task ended: {e}"))?;
        drop(claim);
        out
    }
}

/// A file someone uploaded, with the options chosen.
pub struct NewImport {
    pub actor: Actor,
    pub file_name: String,
    pub file: Vec<u8>,
    pub options: Options,
}

/// What [`Importer::submit`] did.
#[derive(Debug)]
pub enum Submitted {
    Stored {
        id: i64,
        total: i64,
    },
    /// The file cannot be read.
    File(FileError),
    /// The options do not fit the file (message keys).
    Problems(Vec<&'static str>),
}

/// What the run needs of an import row.
struct Job {
    state: State,
    file: Vec<u8>,
    sha256: String,
    options: Options,
    actor: Actor,
    processed: i64,
}

fn load(c: &Connection, id: i64) -> rusqlite::Result<Option<Job>> {
    let Some(file) = super::read_file(c, id)? else {
        return Ok(None);
    };
    c.query_row(
        "SELECT state, sha256, options, actor_id, actor, actor_ip, processed FROM imports WHERE id = ?1",
        [id],
        |r| {
            let state: String = r.get(0)?;
            let options: String = r.get(2)?;
            Ok(Job {
                state: State::parse(&state).unwrap_or(State::Failed),
                file,
                sha256: r.get(1)?,
                options: serde_json::from_str(&options).unwrap_or_default(),
                actor: Actor {
                    id: r.get(3)?,
                    label: r.get(4)?,
                    ip: r.get(5)?,
                },
                processed: r.get(6)?,
            })
        },
    )
    .optional()
}

fn fail(db: &Db, id: i64, error: String, now: i64) -> Result<(), String> {
    let e = error.clone();
    db.write_blocking(move |c| {
        c.execute(
            "UPDATE imports SET state = 'failed', error = ?2, finished_at = ?3, updated_at = ?3 WHERE id = ?1",
            params![id, e, now],
        )?;
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    Err(error)
}

/// Parses the rows after `skip` already applied ones in chunks, and sends them on.
fn produce(mut rows: reader::Rows<'_>, skip: i64, tx: &std::sync::mpsc::SyncSender<Result<Vec<Row>, FileError>>) {
    let mut skipped = 0;
    let mut chunk = Vec::with_capacity(CHUNK_ROWS);
    while let Some(row) = rows.next_row() {
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                // The consumer gone means the run ended already.
                drop(tx.send(Err(e)));
                return;
            }
        };
        // Rows before the resume point still pass the reader: it learns their numbers,
        // so a later duplicate of one of them is still reported.
        if skipped < skip {
            skipped += 1;
            continue;
        }
        chunk.push(row);
        if chunk.len() == CHUNK_ROWS {
            if tx.send(Ok(std::mem::take(&mut chunk))).is_err() {
                return;
            }
            chunk.reserve(CHUNK_ROWS);
        }
    }
    if !chunk.is_empty() {
        drop(tx.send(Ok(chunk)));
    }
}

/// Applies one chunk in the writer's transaction, after checking that the import is
/// still where this run left it (no second runner applies the same rows).
fn apply_chunk(c: &Connection, id: i64, expected: i64, job: &Shared, rows: &[Row], now: i64) -> Result<(), DbError> {
    let (state, processed): (String, i64) =
        c.query_row("SELECT state, processed FROM imports WHERE id = ?1", [id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    if state != "running" || processed != expected {
        return Err(DbError::Work("the import was changed by another run".into()));
    }
    let mut planner = apply::Planner::new(&job.options, &job.sha256, &job.actor, now);
    let mut counts = Counts::default();
    // The chunk's new contacts are written together after its last row (`flush`), and
    // join the search index in one statement after them. A row never touches a contact
    // an earlier row of the file made (a number comes once: the reader skips its
    // duplicates), as both require.
    crate::contacts::with_search_index_batched(c, || -> Result<(), DbError> {
        for row in rows {
            let (outcome, marketing) = planner.row(c, row, true)?;
            counts.add(outcome, marketing);
            if let apply::Outcome::Skipped(why) = outcome {
                c.prepare_cached(
                    "INSERT OR IGNORE INTO import_skips (import_id, line, phone, reason) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![
                    id,
                    i64::try_from(row.line).unwrap_or(i64::MAX),
                    row.phone_raw,
                    why.as_str()
                ])?;
            }
        }
        Ok(planner.flush(c)?)
    })?;
    c.prepare_cached(
        "UPDATE imports SET processed = processed + ?2, created = created + ?3, updated = updated + ?4,
                unchanged = unchanged + ?5, skipped = skipped + ?6, no_consent = no_consent + ?7, updated_at = ?8
         WHERE id = ?1",
    )?
    .execute(params![
        id,
        i64::try_from(rows.len()).unwrap_or(i64::MAX),
        counts.created,
        counts.updated,
        counts.unchanged,
        counts.skipped,
        counts.no_marketing_consent,
        now
    ])?;
    Ok(())
}

/// The parts of a job every chunk's write uses.
struct Shared {
    options: Options,
    sha256: String,
    actor: Actor,
}

/// Runs (or resumes) import `id` to its end: the function the server's worker, the API
/// for small files and the benchmark all call.
pub fn run_blocking(db: &Db, clock: &Clock, id: i64) -> Result<(), String> {
    let job = db
        .read_blocking(move |c| Ok(load(c, id)?))
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no import {id}"))?;
    if job.state.finished() || job.state == State::Draft {
        return Ok(());
    }
    let now = clock.unix();
    db.write_blocking(move |c| {
        c.execute(
            "UPDATE imports SET state = 'running', updated_at = ?2 WHERE id = ?1 AND state = 'queued'",
            params![id, now],
        )?;
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    // The file is held once for the run: the rows are read from its bytes, not a copy.
    let file = job.file;
    let rows = match reader::decode(&file).and_then(|d| reader::Rows::open(d, &job.options)) {
        Ok(r) => r,
        Err(e) => return fail(db, id, e.key().to_string(), now),
    };
    let shared = Arc::new(Shared {
        options: job.options,
        sha256: job.sha256,
        actor: job.actor,
    });
    let mut processed = job.processed;
    let (tx, rx) = std::sync::mpsc::sync_channel(2);
    let outcome: Result<(), String> = std::thread::scope(|s| {
        s.spawn(move || produce(rows, processed, &tx));
        for chunk in rx {
            let rows = match chunk {
                Ok(rows) => rows,
                Err(e) => return Err(format!("{} (line {})", e.key(), line_of(&e))),
            };
            let (n, expected, shared, now) = (rows.len(), processed, Arc::clone(&shared), clock.unix());
            db.write_blocking(move |c| apply_chunk(c, id, expected, &shared, &rows, now))
                .map_err(|e| e.to_string())?;
            processed += i64::try_from(n).unwrap_or(0);
        }
        Ok(())
    });
    drop(file);
    let now = clock.unix();
    if let Err(e) = outcome {
        return fail(db, id, e, now);
    }
    db.write_blocking(move |c| finish(c, id, &shared.actor, now))
        .map_err(|e| e.to_string())
}

fn line_of(e: &FileError) -> u64 {
    match e {
        FileError::Broken(l) => *l,
        _ => 0,
    }
}

/// Marks the import done and writes its one audit line (who, the file, the counts).
fn finish(c: &Connection, id: i64, actor: &Actor, now: i64) -> Result<(), DbError> {
    let n = c.execute(
        "UPDATE imports SET state = 'done', total = processed, finished_at = ?2, updated_at = ?2
         WHERE id = ?1 AND state = 'running'",
        params![id, now],
    )?;
    if n == 0 {
        return Ok(());
    }
    let imp = super::find(c, id)?.ok_or_else(|| DbError::Work("the import is gone".into()))?;
    audit::record(
        c,
        actor,
        "contact.import",
        &format!("import:{id}"),
        &format!(
            "sha256={} rows={} created={} updated={} unchanged={} skipped={} no_marketing_consent={}",
            imp.sha256,
            imp.total,
            imp.counts.created,
            imp.counts.updated,
            imp.counts.unchanged,
            imp.counts.skipped,
            imp.counts.no_marketing_consent
        ),
        now,
    )?;
    Ok(())
}
