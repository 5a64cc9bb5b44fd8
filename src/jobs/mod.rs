//! The internal scheduler: named jobs on fixed intervals, started once from `server`,
//! each run recorded (last run, last success, last error, result) and shown to admins.
//! A job that was due while the server was down runs shortly after start (catch-up).

mod routes;
mod tasks;

pub use routes::configure;

use crate::app::AppState;
use actix_web::web;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// A job's work: runs off the async workers; returns a one-line result.
pub type JobFn = fn(&AppState) -> Result<String, String>;

pub struct JobSpec {
    pub name: &'static str,
    pub every: Duration,
    pub run: JobFn,
}

/// Every job the appliance runs. Later features add theirs here.
pub fn all_jobs() -> Vec<JobSpec> {
    vec![
        JobSpec {
            name: "purge_expired_sessions",
            every: Duration::from_secs(600),
            run: tasks::purge_expired_sessions,
        },
        JobSpec {
            name: "renew_self_signed_certificate",
            every: Duration::from_secs(12 * 3600),
            run: tasks::renew_self_signed_certificate,
        },
        JobSpec {
            name: "purge_old_logs",
            every: Duration::from_secs(24 * 3600),
            run: tasks::purge_old_logs,
        },
        JobSpec {
            name: "wake_snoozed_conversations",
            every: Duration::from_secs(60),
            run: crate::inbox::wake_snoozed_conversations,
        },
        JobSpec {
            name: "sync_message_templates",
            every: Duration::from_secs(6 * 3600),
            run: crate::whatsapp::templates::sync_all,
        },
    ]
}

/// Run-now triggers, one per job name.
#[derive(Default)]
pub struct Scheduler {
    triggers: HashMap<&'static str, Arc<Notify>>,
}

impl Scheduler {
    pub fn new() -> Scheduler {
        Scheduler {
            triggers: all_jobs()
                .into_iter()
                .map(|j| (j.name, Arc::new(Notify::new())))
                .collect(),
        }
    }

    /// Asks a job to run now; false for an unknown name.
    pub fn trigger(&self, name: &str) -> bool {
        match self.triggers.get(name) {
            Some(n) => {
                n.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Starts every job's loop. Call once (from `server::start`).
pub fn start(state: web::Data<AppState>) {
    for job in all_jobs() {
        let state = state.clone();
        let Some(trigger) = state.scheduler.triggers.get(job.name).cloned() else {
            continue;
        };
        tokio::spawn(async move {
            // First run: when it is due (catch-up), but never in the first seconds of start.
            let now = state.now();
            let name = job.name;
            let last = state.db.read(move |c| Ok(last_run_at(c, name)?)).await.ok().flatten();
            let every = i64::try_from(job.every.as_secs()).unwrap_or(i64::MAX);
            let first_in = match last {
                Some(t) => (t + every - now).clamp(5, every),
                None => 5,
            };
            let mut wait = Duration::from_secs(u64::try_from(first_in).unwrap_or(5));
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = trigger.notified() => {}
                }
                run_once(&state, &job).await;
                wait = job.every;
            }
        });
    }
}

pub async fn run_once(state: &web::Data<AppState>, job: &JobSpec) {
    let started = std::time::Instant::now();
    let at = state.now();
    let (st, run) = (state.clone(), job.run);
    let result = tokio::task::spawn_blocking(move || run(&st))
        .await
        .unwrap_or_else(|e| Err(format!("job panicked: {e}")));
    let ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    match &result {
        Ok(r) => tracing::info!(job = job.name, result = %r, ms, "job done"),
        Err(e) => tracing::error!(job = job.name, error = %e, ms, "job failed"),
    }
    let name = job.name;
    if let Err(e) = state.db.write(move |c| Ok(record_run(c, name, at, ms, &result)?)).await {
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

pub fn statuses(c: &Connection) -> rusqlite::Result<Vec<JobStatus>> {
    let mut out = Vec::new();
    for job in all_jobs() {
        let row = c
            .query_row(
                "SELECT last_run_at, last_ok_at, last_error, last_result, duration_ms, runs, failures
                 FROM job_runs WHERE name = ?1",
                [job.name],
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
            name: job.name.to_string(),
            every_secs: job.every.as_secs(),
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
