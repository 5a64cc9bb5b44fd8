//! Live updates: whatever changes a conversation (a message, a status tick, an
//! assignment, a note) is published here after its commit; each open browser gets the
//! news for the conversations its user may see (`inbox::routes::events` streams it).
//! The page then fetches the fresh HTML fragment itself, so the event carries no content.

use crate::store::Db;
use rusqlite::Connection;
use serde::Serialize;
use tokio::sync::broadcast;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Update {
    pub conversation: i64,
    pub assignee: Option<i64>,
    pub kind: Kind,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A new message from the customer.
    Inbound,
    /// Anything else: a reply, a tick, an assignment, a status, a note, a label.
    Changed,
}

/// The live news hub; a clone publishes to the same browsers.
#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<Update>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            tx: broadcast::channel(1024).0,
        }
    }
}

impl Hub {
    pub fn subscribe(&self) -> broadcast::Receiver<Update> {
        self.tx.subscribe()
    }

    /// Whether any browser listens (when none does, nobody needs the news prepared).
    pub fn has_listeners(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// Sends news prepared with [`updates`] (after the commit that made it true).
    pub fn send(&self, updates: Vec<Update>) {
        for u in updates {
            // No receiver is not an error: nobody has the inbox open.
            self.tx.send(u).ok();
        }
    }

    /// Publishes news of these conversations (assignees read once, for the visibility rule).
    pub async fn publish(&self, db: &Db, news: Vec<(i64, Kind)>) {
        if news.is_empty() || !self.has_listeners() {
            return;
        }
        match db.read(move |c| Ok(updates(c, &news)?)).await {
            Ok(list) => self.send(list),
            Err(e) => tracing::warn!(error = %e, "cannot publish a live update"),
        }
    }
}

/// The news for these conversations with their assignees (inside the write that
/// changed them, or right after it).
pub fn updates(c: &Connection, news: &[(i64, Kind)]) -> rusqlite::Result<Vec<Update>> {
    let mut out = Vec::with_capacity(news.len());
    for &(conversation, kind) in news {
        if let Some(assignee) = super::access::find_assignee(c, conversation)? {
            out.push(Update {
                conversation,
                assignee,
                kind,
            });
        }
    }
    Ok(out)
}
