//! Search over message text (FTS5, word prefixes) and contacts (name, WhatsApp name,
//! phone, BSUID; FTS5 trigram via `contacts::fts_query`, so any part of a number matches). The index lives in the
//! encrypted database. Results are limited to conversations the viewer may see, and the
//! match comes back as segments so templates escape it and mark only the match.

use super::access::Viewer;
use rusqlite::types::Value;
use rusqlite::{Connection, params_from_iter};

pub const LIMIT: i64 = 50;
const START: char = '\u{1}';
const END: char = '\u{2}';

/// Text split into (piece, is_match).
#[derive(Debug, Clone, PartialEq)]
pub struct Marked(pub Vec<(String, bool)>);

impl Marked {
    fn parse(s: &str) -> Marked {
        let mut out = Vec::new();
        let mut cur = String::new();
        let mut hit = false;
        for ch in s.chars() {
            if ch == START || ch == END {
                if !cur.is_empty() {
                    out.push((std::mem::take(&mut cur), hit));
                }
                hit = ch == START;
            } else {
                cur.push(ch);
            }
        }
        if !cur.is_empty() {
            out.push((cur, hit));
        }
        Marked(out)
    }

    pub fn has_match(&self) -> bool {
        self.0.iter().any(|(_, m)| *m)
    }

    pub fn plain(&self) -> String {
        self.0.iter().map(|(s, _)| s.as_str()).collect()
    }
}

#[derive(Debug, Clone)]
pub struct Hit {
    pub conversation_id: i64,
    pub message_id: Option<i64>,
    pub contact_name: Marked,
    pub text: Marked,
    pub at: i64,
}

/// The user's words as an FTS5 query: each word quoted (no operators from input), the
/// last one as a prefix. `None` when nothing searchable is left.
pub fn words_query(q: &str) -> Option<String> {
    let words: Vec<String> = q
        .split_whitespace()
        .map(|w| w.chars().filter(|c| c.is_alphanumeric()).collect::<String>())
        .filter(|w| !w.is_empty())
        .take(8)
        .collect();
    let n = words.len();
    (n > 0).then(|| {
        words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                if i + 1 == n {
                    format!("\"{w}\"*")
                } else {
                    format!("\"{w}\"")
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    })
}

const CONTACT_NAME: &str = "coalesce(nullif(k.name, ''), nullif(k.profile_name, ''), k.phone_e164, k.bsuid, '')";

/// Messages and contacts matching `q`, in conversations `viewer` may see.
pub fn search(c: &Connection, viewer: &Viewer, q: &str) -> rusqlite::Result<Vec<Hit>> {
    let (visible, p) = viewer.sql();
    let vis_args = |mut v: Vec<Value>| {
        v.extend(p.map(Value::Integer));
        v
    };
    let mut hits = Vec::new();
    if let Some(cq) = crate::contacts::fts_query(q) {
        let sql = format!(
            "SELECT c.id, highlight(contacts_fts, 0, char(1), char(2)), highlight(contacts_fts, 1, char(1), char(2)),
                    highlight(contacts_fts, 2, char(1), char(2)), highlight(contacts_fts, 3, char(1), char(2)),
                    {CONTACT_NAME}, c.preview, c.last_message_at
             FROM contacts_fts JOIN contacts k ON k.id = contacts_fts.rowid
             JOIN conversations c ON c.contact_id = k.id
             WHERE contacts_fts MATCH ? AND {visible}
             ORDER BY c.last_message_at DESC LIMIT 20"
        );
        let mut stmt = c.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(vis_args(vec![Value::Text(cq)])), |r| {
            let cols: Vec<Option<String>> = (1..=4).map(|i| r.get(i)).collect::<rusqlite::Result<_>>()?;
            let name: String = r.get(5)?;
            let marked = cols
                .into_iter()
                .flatten()
                .map(|s| Marked::parse(&s))
                .find(Marked::has_match)
                .unwrap_or_else(|| Marked(vec![(name, false)]));
            Ok(Hit {
                conversation_id: r.get(0)?,
                message_id: None,
                contact_name: marked,
                text: Marked(vec![(r.get(6)?, false)]),
                at: r.get(7)?,
            })
        })?;
        hits.extend(rows.collect::<rusqlite::Result<Vec<_>>>()?);
    }
    if let Some(wq) = words_query(q) {
        let sql = format!(
            "SELECT m.conversation_id, m.id, {CONTACT_NAME}, snippet(messages_fts, 0, char(1), char(2), '…', 24), m.sent_at
             FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid
             JOIN conversations c ON c.id = m.conversation_id
             JOIN contacts k ON k.id = c.contact_id
             WHERE messages_fts MATCH ? AND {visible}
             ORDER BY messages_fts.rowid DESC LIMIT ?"
        );
        let mut stmt = c.prepare_cached(&sql)?;
        let mut args = vis_args(vec![Value::Text(wq)]);
        args.push(Value::Integer(LIMIT));
        let rows = stmt.query_map(params_from_iter(args), |r| {
            Ok(Hit {
                conversation_id: r.get(0)?,
                message_id: r.get(1)?,
                contact_name: Marked(vec![(r.get(2)?, false)]),
                text: Marked::parse(&r.get::<_, String>(3)?),
                at: r.get(4)?,
            })
        })?;
        hits.extend(rows.collect::<rusqlite::Result<Vec<_>>>()?);
    }
    Ok(hits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_never_carry_operators() {
        assert_eq!(words_query("harga  paket\""), Some("\"harga\" \"paket\"*".into()));
        assert_eq!(words_query("NOT OR \"*"), Some("\"NOT\" \"OR\"*".into()));
        assert_eq!(words_query(" ** "), None);
    }

    #[test]
    fn marks_split_into_segments() {
        let m = Marked::parse("a \u{1}b\u{2} c");
        assert_eq!(
            m.0,
            vec![("a ".into(), false), ("b".into(), true), (" c".into(), false)]
        );
        assert_eq!(m.plain(), "a b c");
    }
}
