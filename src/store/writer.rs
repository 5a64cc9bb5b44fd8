//! The single writer: one thread owns the write connection. Jobs that arrive while a
//! commit is in flight are grouped into the next transaction (each in its own savepoint),
//! so many concurrent writers share one fsync and never fight over the lock.

use super::DbError;
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

enum Msg {
    Job(Job),
    /// Close the connection and end the thread (clean shutdown).
    Stop,
}

/// Most jobs grouped into one transaction.
const MAX_BATCH: usize = 256;

#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Msg>,
    thread: std::sync::Arc<std::sync::Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl Writer {
    pub fn start(conn: Connection) -> Writer {
        let (tx, rx) = mpsc::channel::<Msg>();
        let spawned = std::thread::Builder::new()
            .name("db-writer".into())
            .spawn(move || run(conn, &rx));
        let handle = match spawned {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the database writer thread");
                None
            }
        };
        Writer {
            tx,
            thread: std::sync::Arc::new(std::sync::Mutex::new(handle)),
        }
    }

    /// Finishes queued writes, closes the connection and waits for the thread. A process
    /// must not exit while the writer closes its connection (SQLCipher and OpenSSL's
    /// exit handlers would race).
    pub fn stop(&self) {
        // Refused only when the thread has ended already, which is what we wait for.
        drop(self.tx.send(Msg::Stop));
        let handle = self.thread.lock().ok().and_then(|mut h| h.take());
        if let Some(h) = handle {
            if h.join().is_err() {
                tracing::error!("the database writer thread panicked");
            }
        }
    }

    pub fn submit<T, F>(&self, f: F) -> Result<oneshot::Receiver<Result<T, DbError>>, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, DbError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = f(conn);
            let ok = result.is_ok();
            Completion {
                ok,
                deliver: Box::new(move |commit_error| {
                    let out = match (commit_error, result) {
                        (Some(e), Ok(_)) => Err(DbError::Commit(e.to_string())),
                        (_, r) => r,
                    };
                    // Refused only when the caller stopped waiting (a cancelled request).
                    drop(tx.send(out));
                }),
            }
        });
        self.tx.send(Msg::Job(job)).map_err(|_| DbError::WriterStopped)?;
        Ok(rx)
    }
}

fn run(conn: Connection, rx: &mpsc::Receiver<Msg>) {
    let mut stopping = false;
    while !stopping {
        let first = match rx.recv() {
            Ok(Msg::Job(job)) => job,
            Ok(Msg::Stop) | Err(_) => break,
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Job(job)) => batch.push(job),
                Ok(Msg::Stop) => {
                    stopping = true;
                    break;
                }
                Err(_) => break,
            }
        }
        run_batch(&conn, batch);
    }
    drop(conn);
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
    let err = commit.as_ref().err().map(ToString::to_string);
    if let Some(e) = &err {
        tracing::error!(error = %e, "commit failed");
        if let Err(e) = conn.execute_batch("ROLLBACK") {
            tracing::error!(error = %e, "rollback after the failed commit failed");
        }
    }
    for c in completions {
        (c.deliver)(err.as_deref());
    }
}
