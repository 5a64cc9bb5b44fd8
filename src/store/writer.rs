//! The single writer: one thread owns the write connection. Jobs that arrive while a
//! commit is in flight are grouped into the next transaction (each in its own savepoint),
//! so many concurrent writers share one fsync and never fight over the lock.

use crate::error::AppError;
use rusqlite::Connection;
use std::sync::mpsc;
use tokio::sync::oneshot;

/// What a job hands back: whether its savepoint should be kept, and how to deliver
/// its result once the transaction's fate is known.
struct Completion {
    ok: bool,
    deliver: Deliver,
}

/// Hands a job's result to its waiter, given the commit error if the commit failed.
type Deliver = Box<dyn FnOnce(Option<&str>) + Send>;

type Job = Box<dyn FnOnce(&Connection) -> Completion + Send>;

/// Most jobs grouped into one transaction.
const MAX_BATCH: usize = 256;

#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
}

impl Writer {
    pub fn start(conn: Connection) -> Writer {
        let (tx, rx) = mpsc::channel::<Job>();
        let spawned = std::thread::Builder::new()
            .name("db-writer".into())
            .spawn(move || run(conn, rx));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the database writer thread");
        }
        Writer { tx }
    }

    pub fn submit<T, F>(&self, f: F) -> Result<oneshot::Receiver<Result<T, AppError>>, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, AppError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = f(conn);
            let ok = result.is_ok();
            Completion {
                ok,
                deliver: Box::new(move |commit_error| {
                    let out = match (commit_error, result) {
                        (Some(e), Ok(_)) => Err(AppError::Internal(format!("commit failed: {e}"))),
                        (_, r) => r,
                    };
                    let _ = tx.send(out);
                }),
            }
        });
        self.tx
            .send(job)
            .map_err(|_| AppError::internal("database writer stopped"))?;
        Ok(rx)
    }
}

fn run(conn: Connection, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        run_batch(&conn, batch);
    }
}

fn run_batch(conn: &Connection, batch: Vec<Job>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        // Dropping the jobs drops their reply channels: each waiter gets an error.
        tracing::error!(error = %e, jobs = batch.len(), "cannot begin write transaction");
        return;
    }
    let mut completions = Vec::with_capacity(batch.len());
    for job in batch {
        if conn.execute_batch("SAVEPOINT job").is_err() {
            completions.push(Completion {
                ok: false,
                deliver: Box::new(|_| {}),
            });
            continue;
        }
        // A panicking job must not take the writer (and every later write) down.
        let c = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(conn))).unwrap_or_else(|_| {
            tracing::error!("a database write panicked; it was rolled back");
            Completion {
                ok: false,
                deliver: Box::new(|_| {}),
            }
        });
        let end = if c.ok {
            "RELEASE job"
        } else {
            "ROLLBACK TO job; RELEASE job"
        };
        if let Err(e) = conn.execute_batch(end) {
            tracing::error!(error = %e, "savepoint handling failed");
        }
        completions.push(c);
    }
    let commit = conn.execute_batch("COMMIT");
    let err = commit.as_ref().err().map(|e| e.to_string());
    if let Some(e) = &err {
        tracing::error!(error = %e, "commit failed");
        let _ = conn.execute_batch("ROLLBACK");
    }
    for c in completions {
        (c.deliver)(err.as_deref());
    }
}
