//! The durable delivery queue (`webhook_inbox`): what the webhook appended before its
//! 200, read back by the intake in id order. Due work is found through a partial index
//! that holds only open rows, so finding it costs the same with a million processed
//! deliveries kept as with none. Also the refused-delivery security events.

use rusqlite::{Connection, params};

/// Automatic retries of a quarantined delivery (1, 2, 4 … minutes apart).
pub const MAX_ATTEMPTS: i64 = 10;
/// At most one security event per kind and address in this many seconds.
const SECURITY_EVENT_EVERY: i64 = 60;

/// A delivery as it was acknowledged.
pub struct Delivery {
    pub id: i64,
    pub received_at: i64,
    pub body: Vec<u8>,
}

pub fn append(c: &Connection, now: i64, body: &[u8]) -> rusqlite::Result<i64> {
    c.prepare_cached("INSERT INTO webhook_inbox (received_at, body) VALUES (?1, ?2)")?
        .execute(params![now, body])?;
    Ok(c.last_insert_rowid())
}

/// The oldest due deliveries: new ones, and quarantined ones whose retry time came.
/// `state <> 'done'` is spelled out so SQLite uses the partial index of open rows.
pub fn list_due(c: &Connection, now: i64, limit: i64) -> rusqlite::Result<Vec<Delivery>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, received_at, body FROM webhook_inbox INDEXED BY webhook_inbox_due
         WHERE state <> 'done'
           AND (state = 'new' OR (state = 'quarantined' AND attempts < ?1 AND coalesce(next_attempt_at, 0) <= ?2))
         ORDER BY id LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![MAX_ATTEMPTS, now, limit], |r| {
        Ok(Delivery {
            id: r.get(0)?,
            received_at: r.get(1)?,
            body: r.get(2)?,
        })
    })?;
    rows.collect()
}

pub fn mark_done(c: &Connection, id: i64) -> rusqlite::Result<()> {
    c.prepare_cached("UPDATE webhook_inbox SET state = 'done', last_error = NULL WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Whether a quarantined delivery is worth trying again by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Something passing failed (the database, a bug fixed by an upgrade): back off.
    Later,
    /// The bytes themselves are wrong: the same bytes fail the same way, so only an
    /// admin's "retry" (or a newly connected number) puts it back.
    ByHand,
}

/// Keeps a delivery that could not be processed, with its error.
pub fn quarantine(c: &Connection, id: i64, error: &str, now: i64, retry: Retry) -> rusqlite::Result<()> {
    c.prepare_cached(
        "UPDATE webhook_inbox SET state = 'quarantined', attempts = attempts + 1, last_error = ?2,
                next_attempt_at = CASE WHEN ?4 THEN ?3 + 60 * (1 << min(attempts, 12)) ELSE ?5 END
         WHERE id = ?1",
    )?
    .execute(params![id, error, now, retry == Retry::Later, i64::MAX])?;
    Ok(())
}

/// A quarantined delivery as the admin page lists it.
#[derive(Debug, Clone)]
pub struct Quarantined {
    pub id: i64,
    pub received_at: i64,
    pub attempts: i64,
    pub error: String,
}

pub fn list_quarantined(c: &Connection) -> rusqlite::Result<Vec<Quarantined>> {
    let mut stmt = c.prepare(
        "SELECT id, received_at, attempts, coalesce(last_error, '') FROM webhook_inbox
         WHERE state = 'quarantined' ORDER BY id DESC LIMIT 50",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Quarantined {
            id: r.get(0)?,
            received_at: r.get(1)?,
            attempts: r.get(2)?,
            error: r.get(3)?,
        })
    })?;
    rows.collect()
}

/// Keeps a delivery for a number that is not connected: it waits for that number.
pub fn wait_for_number(c: &Connection, id: i64, phone_number_id: &str) -> rusqlite::Result<()> {
    let error = format!(
        "for phone number id {phone_number_id}, which is not connected here: kept, and processed when it is connected"
    );
    quarantine(c, id, &error, 0, Retry::ByHand)?;
    c.prepare_cached("UPDATE webhook_inbox SET waiting_for = ?2 WHERE id = ?1")?
        .execute(params![id, phone_number_id])?;
    Ok(())
}

/// A number was connected: what waited for it goes back in the queue.
pub fn release_waiting_for(c: &Connection, phone_number_id: &str) -> rusqlite::Result<usize> {
    c.execute(
        "UPDATE webhook_inbox SET state = 'new', next_attempt_at = NULL, waiting_for = NULL
         WHERE waiting_for = ?1 AND state = 'quarantined'",
        [phone_number_id],
    )
}

/// Puts a quarantined delivery back in the queue now.
pub fn retry(c: &Connection, id: i64) -> rusqlite::Result<usize> {
    c.execute(
        "UPDATE webhook_inbox SET state = 'new', next_attempt_at = NULL, waiting_for = NULL
         WHERE id = ?1 AND state = 'quarantined'",
        [id],
    )
}

/// Processed deliveries are raw personal data: they are kept only a short while.
pub fn purge_done(c: &Connection, before: i64) -> rusqlite::Result<usize> {
    c.execute(
        "DELETE FROM webhook_inbox WHERE state = 'done' AND received_at < ?1",
        [before],
    )
}

/// The queue's open rows for /metrics and the System page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Acknowledged, not yet processed.
    pub waiting: i64,
    pub quarantined: i64,
}

/// Counted through the partial index, so it stays cheap however many rows are done.
pub fn count_backlog(c: &Connection) -> rusqlite::Result<Backlog> {
    c.prepare_cached(
        "SELECT coalesce(sum(state = 'new'), 0), coalesce(sum(state = 'quarantined'), 0)
         FROM webhook_inbox INDEXED BY webhook_inbox_due WHERE state <> 'done'",
    )?
    .query_row([], |r| {
        Ok(Backlog {
            waiting: r.get(0)?,
            quarantined: r.get(1)?,
        })
    })
}

/// Records a security event unless the same kind from the same address was recorded
/// within the last minute (a flood of bad deliveries is one line, not a million).
pub fn record_security_event(c: &Connection, now: i64, kind: &str, ip: &str, detail: &str) -> rusqlite::Result<bool> {
    let n = c.execute(
        "INSERT INTO security_events (at, kind, ip, detail)
         SELECT ?1, ?2, ?3, ?4
         WHERE NOT EXISTS (SELECT 1 FROM security_events WHERE kind = ?2 AND ip = ?3 AND at > ?1 - ?5)",
        params![now, kind, ip, detail, SECURITY_EVENT_EVERY],
    )?;
    Ok(n == 1)
}

/// A refused delivery, as the numbers page lists it.
#[derive(Debug, Clone)]
pub struct Refused {
    pub at: i64,
    pub kind: String,
    pub ip: String,
}

/// What the numbers page shows about deliveries.
#[derive(Debug, Clone, Default)]
pub struct DeliveryStats {
    pub received: i64,
    pub last_received_at: Option<i64>,
    pub refused: Vec<Refused>,
}

pub fn delivery_stats(c: &Connection) -> rusqlite::Result<DeliveryStats> {
    // max(id) finds the newest row through the primary key; count(*) walks the table
    // once, which is fine for a page an admin opens by hand.
    let (received, last_received_at) = c.query_row(
        "SELECT count(*), (SELECT received_at FROM webhook_inbox ORDER BY id DESC LIMIT 1) FROM webhook_inbox",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut stmt =
        c.prepare("SELECT at, kind, ip FROM security_events WHERE kind LIKE 'webhook_%' ORDER BY id DESC LIMIT 10")?;
    let refused = stmt
        .query_map([], |r| {
            Ok(Refused {
                at: r.get(0)?,
                kind: r.get(1)?,
                ip: r.get(2)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(DeliveryStats {
        received,
        last_received_at,
        refused,
    })
}

pub fn purge_security_events(c: &Connection, before: i64) -> rusqlite::Result<usize> {
    c.execute("DELETE FROM security_events WHERE at < ?1", [before])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        let mut c = c;
        crate::store::migrate(&mut c).unwrap();
        c
    }

    #[test]
    fn due_work_comes_from_the_index_of_open_rows() {
        let c = db();
        let plan: Vec<String> = c
            .prepare(
                "EXPLAIN QUERY PLAN SELECT id, body FROM webhook_inbox INDEXED BY webhook_inbox_due
                 WHERE state <> 'done' AND (state = 'new' OR (state = 'quarantined' AND attempts < 10
                   AND coalesce(next_attempt_at, 0) <= 0)) ORDER BY id LIMIT 10",
            )
            .unwrap()
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(plan.iter().any(|p| p.contains("webhook_inbox_due")), "{plan:?}");
        assert!(!plan.iter().any(|p| p.contains("TEMP B-TREE")), "no sort: {plan:?}");
    }

    #[test]
    fn quarantined_rows_wait_for_their_backoff_and_retry_puts_them_back() {
        let c = db();
        let a = append(&c, 100, b"{}").unwrap();
        let b = append(&c, 100, b"{}").unwrap();
        mark_done(&c, b).unwrap();
        assert_eq!(
            list_due(&c, 100, 10).unwrap().iter().map(|d| d.id).collect::<Vec<_>>(),
            vec![a]
        );
        quarantine(&c, a, "broken", 100, Retry::Later).unwrap();
        assert!(list_due(&c, 159, 10).unwrap().is_empty(), "first retry after a minute");
        assert_eq!(list_due(&c, 160, 10).unwrap().len(), 1);
        assert_eq!(
            count_backlog(&c).unwrap(),
            Backlog {
                waiting: 0,
                quarantined: 1
            }
        );
        quarantine(&c, a, "broken again", 160, Retry::Later).unwrap();
        assert!(list_due(&c, 160 + 119, 10).unwrap().is_empty(), "then two minutes");
        assert_eq!(retry(&c, a).unwrap(), 1);
        assert_eq!(
            list_due(&c, 160, 10).unwrap().len(),
            1,
            "an admin's retry is due at once"
        );
        assert_eq!(count_backlog(&c).unwrap().waiting, 1);
    }

    #[test]
    fn malformed_deliveries_wait_for_a_person() {
        let c = db();
        let a = append(&c, 100, b"junk").unwrap();
        quarantine(&c, a, "not JSON", 100, Retry::ByHand).unwrap();
        assert!(
            list_due(&c, i64::MAX - 1, 10).unwrap().is_empty(),
            "never due by itself"
        );
        retry(&c, a).unwrap();
        assert_eq!(list_due(&c, 100, 10).unwrap().len(), 1);
    }
}
