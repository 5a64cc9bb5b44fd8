//! The internal scheduler: named jobs on fixed intervals, each run recorded (last run,
//! last success, last error, result) and shown to admins. A job that was due while the
//! server was down runs shortly after start (catch-up). The jobs themselves belong to
//! their features; `app` lists them, each a closure over the handles it needs.

mod routes;

pub use routes::configure;

use crate::clock::Clock;
use crate::store::Db;
use futures_util::future::BoxFuture;
use rusqlite::{Connection, OptionalExtension, params};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// What a job's run gives back: a one-line result, or why it failed.
pub type JobResult = Result<String, String>;

/// A job's work. Blocking work inside it goes through the store or `spawn_blocking`.
pub type JobFn = Box<dyn Fn() -> BoxFuture<'static, JobResult> + Send + Sync>;

pub struct JobSpec {
    /// A verb phrase: `purge_expired_sessions`.
    pub name: &'static str,
    pub every: Duration,
    pub run: JobFn,
}

struct Job {
    spec: JobSpec,
    trigger: Notify,
}

/// Every job the appliance runs, and their run-now triggers.
pub struct Scheduler {
    jobs: Vec<Arc<Job>>,
}

impl Scheduler {
    pub fn new(specs: Vec<JobSpec>) -> Scheduler {
        Scheduler {
            jobs: specs
                .into_iter()
                .map(|spec| {
                    Arc::new(Job {
                        spec,
                        trigger: Notify::new(),
                    })
                })
                .collect(),
        }
    }

    /// Asks a job to run now; false for an unknown name.
    pub fn trigger(&self, name: &str) -> bool {
        match self.jobs.iter().find(|j| j.spec.name == name) {
            Some(j) => {
                j.trigger.notify_one();
                true
            }
            None => false,
        }
    }

    /// (name, interval) of every job, for the jobs page.
    pub fn list(&self) -> Vec<(&'static str, Duration)> {
        self.jobs.iter().map(|j| (j.spec.name, j.spec.every)).collect()
    }

    /// Starts every job's loop. Call once (from `server::start`).
    pub fn start(&self, db: &Db, clock: &Clock) {
        for job in &self.jobs {
            let (job, db, clock) = (Arc::clone(job), db.clone(), clock.clone());
            tokio::spawn(async move {
                // First run: when it is due (catch-up), but never in the first seconds of start.
                let now = clock.unix();
                let name = job.spec.name;
                let last = db.read(move |c| Ok(last_run_at(c, name)?)).await.ok().flatten();
                let every = i64::try_from(job.spec.every.as_secs()).unwrap_or(i64::MAX);
                let first_in = match last {
                    Some(t) => (t + every - now).clamp(5, every),
                    None => 5,
                };
                let mut wait = Duration::from_secs(u64::try_from(first_in).unwrap_or(5));
                loop {
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = job.trigger.notified() => {}
                    }
                    run_once(&db, &clock, &job.spec).await;
                    wait = job.spec.every;
                }
            });
        }
    }
}

/// Runs a job once and records the run.
pub async fn run_once(db: &Db, clock: &Clock, job: &JobSpec) {
    let started = std::time::Instant::now();
    let at = clock.unix();
    // A panicking job is a failed run, not a dead scheduler loop.
    let result = tokio::spawn((job.run)())
        .await
        .unwrap_or_else(|e| Err(format!("job panicked: {e}")));
    let ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    match &result {
        Ok(r) => tracing::info!(job = job.name, result = %r, ms, "job done"),
        Err(e) => tracing::error!(job = job.name, error = %e, ms, "job failed"),
    }
    let name = job.name;
    if let Err(e) = db.write(move |c| Ok(record_run(c, name, at, ms, &result)?)).await {
        tracing::error!(job = name, error = %e, "cannot record job run");
    }
}

fn last_run_at(c: &Connection, name: &str) -> rusqlite::Result<Option<i64>> {
    Ok(
        c.query_row("SELECT last_run_at FROM job_runs WHERE name = ?1", [name], |r| r.get(0))
            .optional()?
            .flatten(),
    )
}

fn record_run(c: &Connection, name: &str, at: i64, ms: i64, result: &Result<String, String>) -> rusqlite::Result<()> {
    let (ok_at, err, res, fail) = match result {
        Ok(r) => (Some(at), None, Some(r.as_str()), 0),
        Err(e) => (None, Some(e.as_str()), None, 1),
    };
    c.execute(
        "INSERT INTO job_runs (name, last_run_at, last_ok_at, last_error, last_result, duration_ms, runs, failures)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7)
         ON CONFLICT(name) DO UPDATE SET
             last_run_at = ?2,
             last_ok_at = coalesce(?3, last_ok_at),
             last_error = ?4,
             last_result = coalesce(?5, last_result),
             duration_ms = ?6,
             runs = runs + 1,
             failures = failures + ?7",
        params![name, at, ok_at, err, res, ms, fail],
    )?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct JobStatus {
    pub name: String,
    pub every_secs: u64,
    pub last_run_at: Option<i64>,
    pub last_ok_at: Option<i64>,
    pub last_error: Option<String>,
    pub last_result: Option<String>,
    pub duration_ms: Option<i64>,
    pub runs: i64,
    pub failures: i64,
}

pub fn statuses(c: &Connection, jobs: &[(&'static str, Duration)]) -> rusqlite::Result<Vec<JobStatus>> {
    let mut out = Vec::new();
    for &(name, every) in jobs {
        let row = c
            .query_row(
                "SELECT last_run_at, last_ok_at, last_error, last_result, duration_ms, runs, failures
                 FROM job_runs WHERE name = ?1",
                [name],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    ))
                },
            )
            .optional()?;
        let (last_run_at, last_ok_at, last_error, last_result, duration_ms, runs, failures) =
            row.unwrap_or((None, None, None, None, None, 0, 0));
        out.push(JobStatus {
            name: name.to_string(),
            every_secs: every.as_secs(),
            last_run_at,
            last_ok_at,
            last_error,
            last_result,
            duration_ms,
            runs,
            failures,
        });
    }
    Ok(out)
}
