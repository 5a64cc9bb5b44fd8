//! Contacts: the people who write to the business. A contact is found by its
//! business-scoped user id (BSUID) first, then by its WhatsApp id (phone), and learns
//! whichever of the two it did not know yet.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

/// What a channel knows about a person.
#[derive(Debug, Clone, Default)]
pub struct Identity<'a> {
    pub wa_id: Option<&'a str>,
    pub bsuid: Option<&'a str>,
    pub profile_name: Option<&'a str>,
    pub username: Option<&'a str>,
}

/// The contact for `who`, created when new; `None` when `who` carries no id at all.
pub fn upsert(conn: &Connection, who: &Identity<'_>, now: i64) -> rusqlite::Result<Option<i64>> {
    let by_bsuid = match who.bsuid {
        Some(b) => conn
            .prepare_cached("SELECT id FROM contacts WHERE bsuid = ?1")?
            .query_row([b], |r| r.get::<_, i64>(0))
            .optional()?,
        None => None,
    };
    let by_wa = match who.wa_id {
        Some(w) => conn
            .prepare_cached("SELECT id FROM contacts WHERE wa_id = ?1")?
            .query_row([w], |r| r.get::<_, i64>(0))
            .optional()?,
        None => None,
    };
    let ((Some(id), _) | (None, Some(id))) = (by_bsuid, by_wa) else {
        if who.bsuid.is_none() && who.wa_id.is_none() {
            return Ok(None);
        }
        conn.prepare_cached(
            "INSERT INTO contacts (bsuid, wa_id, phone_e164, profile_name, username, created_at, last_seen_at)
             VALUES (?1, ?2, '+' || ?2, coalesce(?3, ''), ?4, ?5, ?5)",
        )?
        .execute(params![who.bsuid, who.wa_id, who.profile_name, who.username, now])?;
        return Ok(Some(conn.last_insert_rowid()));
    };
    // Fill in what was missing; never take an id away (a later message may omit the phone).
    conn.prepare_cached(
        "UPDATE contacts SET
             bsuid = coalesce(bsuid, ?2),
             wa_id = CASE WHEN wa_id IS NULL AND NOT EXISTS (SELECT 1 FROM contacts WHERE wa_id = ?3) THEN ?3 ELSE wa_id END,
             phone_e164 = CASE WHEN phone_e164 IS NULL AND ?3 IS NOT NULL
                               AND NOT EXISTS (SELECT 1 FROM contacts WHERE phone_e164 = '+' || ?3) THEN '+' || ?3
                          ELSE phone_e164 END,
             profile_name = coalesce(nullif(?4, ''), profile_name),
             username = coalesce(?5, username),
             last_seen_at = max(coalesce(last_seen_at, 0), ?6)
         WHERE id = ?1",
    )?
    .execute(params![id, who.bsuid, who.wa_id, who.profile_name, who.username, now])?;
    Ok(Some(id))
}

/// The contact known by `who` (BSUID first, then phone), without creating one.
pub fn find_id(conn: &Connection, who: &Identity<'_>) -> rusqlite::Result<Option<i64>> {
    if let Some(b) = who.bsuid {
        let found = conn
            .prepare_cached("SELECT id FROM contacts WHERE bsuid = ?1")?
            .query_row([b], |r| r.get::<_, i64>(0))
            .optional()?;
        if found.is_some() {
            return Ok(found);
        }
    }
    match who.wa_id {
        Some(w) => conn
            .prepare_cached("SELECT id FROM contacts WHERE wa_id = ?1")?
            .query_row([w], |r| r.get::<_, i64>(0))
            .optional(),
        None => Ok(None),
    }
}

pub mod consent;
pub mod import;
pub mod optout;
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    reason = "being split on another branch (issue 9); the split fixes these, then this goes"
)]
pub mod routes;
pub mod segments;
pub mod segments_routes;
pub mod service;

/// A contact as pages and the API show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Contact {
    pub id: i64,
    /// The business's own name for the person (editable), else empty.
    pub name: String,
    /// The name the person set in WhatsApp.
    pub profile_name: String,
    pub phone: Option<String>,
    pub bsuid: Option<String>,
    pub username: Option<String>,
    pub attributes: std::collections::BTreeMap<String, String>,
    pub created_at: i64,
    pub last_seen_at: Option<i64>,
    /// The consent state per purpose (`consent::record` changes it).
    pub consent: ConsentStates,
}

/// A contact's consent, per purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ConsentStates {
    pub marketing: consent::State,
    pub utility: consent::State,
}

impl Contact {
    /// What to call the person: own name, WhatsApp name, phone, or BSUID.
    pub fn display(&self) -> String {
        [
            Some(self.name.clone()),
            Some(self.profile_name.clone()),
            self.phone.clone(),
            self.bsuid.clone(),
        ]
        .into_iter()
        .flatten()
        .find(|s| !s.is_empty())
        .unwrap_or_default()
    }
}

const COLS: &str =
    "id, coalesce(name, ''), profile_name, phone_e164, bsuid, username, attributes, created_at, last_seen_at,
                    consent_marketing, consent_utility";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Contact> {
    let attrs: String = r.get(6)?;
    Ok(Contact {
        id: r.get(0)?,
        name: r.get(1)?,
        profile_name: r.get(2)?,
        phone: r.get(3)?,
        bsuid: r.get(4)?,
        username: r.get(5)?,
        attributes: serde_json::from_str(&attrs).unwrap_or_default(),
        created_at: r.get(7)?,
        last_seen_at: r.get(8)?,
        consent: ConsentStates {
            marketing: r.get(9)?,
            utility: r.get(10)?,
        },
    })
}

/// The contact query (trigram substring): phone-like input becomes its digits without a
/// leading 0 (so `0812 345` finds `+62812345…`). `None` under 3 characters.
pub fn fts_query(q: &str) -> Option<String> {
    let t = q.trim();
    let phone_like = !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || " +-().".contains(c));
    let term: String = if phone_like {
        let digits: String = t.chars().filter(char::is_ascii_digit).collect();
        digits.trim_start_matches('0').to_string()
    } else {
        t.replace('"', "")
    };
    (term.chars().count() >= 3).then(|| format!("\"{term}\""))
}

/// Which contacts a query may return: a condition over `contacts` with at most one
/// positional parameter (`?`), whose value is `param`. The inbox's visibility rule makes
/// it (`inbox::access::Viewer::contact_scope`), so this feature needs to know nothing of
/// conversations or roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub sql: String,
    pub param: Option<i64>,
}

impl Scope {
    /// Every contact (supervisors, admins, the CLI).
    pub fn all() -> Scope {
        Scope {
            sql: "1".into(),
            param: None,
        }
    }

    /// Adds the condition's parameter to `args`, where its `?` stands in the query.
    pub fn bind(&self, args: &mut Vec<Value>) {
        args.extend(self.param.map(Value::Integer));
    }
}

/// What the contact list and the API narrow by, all optional: a query (name, WhatsApp
/// name, phone, BSUID), a label (by name), the marketing consent state.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListFilter<'a> {
    pub q: Option<&'a str>,
    pub label: Option<&'a str>,
    pub marketing: Option<consent::State>,
}

/// Contacts matching `f`, after `after` by id: the trigram index for a query of 3
/// characters or more, names by prefix-free LIKE below that.
pub fn search(
    conn: &Connection,
    scope: &Scope,
    f: &ListFilter<'_>,
    after: i64,
    limit: i64,
) -> rusqlite::Result<Vec<Contact>> {
    let label = f.label.map(str::trim).filter(|l| !l.is_empty()).map(str::to_string);
    let q = f.q.map(str::trim).filter(|q| !q.is_empty());
    let indexed = q.and_then(fts_query);
    let short = if indexed.is_none() { q.map(str::to_string) } else { None };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLS} FROM contacts
         WHERE id > ?
           AND (? IS NULL OR id IN (SELECT rowid FROM contacts_fts WHERE contacts_fts MATCH ?))
           AND (? IS NULL OR name LIKE '%' || ? || '%' OR profile_name LIKE '%' || ? || '%')
           AND (? IS NULL OR id IN (SELECT cl.contact_id FROM contact_labels cl JOIN labels l ON l.id = cl.label_id
                                    WHERE l.name = ?))
           AND (? IS NULL OR consent_marketing = ?)
           AND {}
         ORDER BY id LIMIT ?",
        scope.sql
    ))?;
    let (indexed, short) = (Value::from(indexed), Value::from(short));
    let marketing = Value::from(f.marketing.map(|m| m.as_str().to_string()));
    let mut args = vec![
        Value::Integer(after),
        indexed.clone(),
        indexed,
        short.clone(),
        short.clone(),
        short,
        Value::from(label.clone()),
        Value::from(label),
        marketing.clone(),
        marketing,
    ];
    scope.bind(&mut args);
    args.push(Value::Integer(limit));
    let rows = stmt.query_map(params_from_iter(args), from_row)?;
    rows.collect()
}

/// Whether the contact exists and is in `scope`.
pub fn visible(conn: &Connection, scope: &Scope, id: i64) -> rusqlite::Result<bool> {
    let mut stmt = conn.prepare_cached(&format!("SELECT count(*) FROM contacts WHERE id = ? AND {}", scope.sql))?;
    let mut args = vec![Value::Integer(id)];
    scope.bind(&mut args);
    Ok(stmt.query_row(params_from_iter(args), |r| r.get::<_, i64>(0))? > 0)
}

pub fn find(conn: &Connection, id: i64) -> rusqlite::Result<Option<Contact>> {
    conn.query_row(&format!("SELECT {COLS} FROM contacts WHERE id = ?1"), [id], from_row)
        .optional()
}

pub fn phone_taken(conn: &Connection, phone: &str, except: Option<i64>) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM contacts WHERE phone_e164 = ?1 AND id IS NOT ?2",
        params![phone, except],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// Creates a contact the business entered itself (not from WhatsApp).
pub fn create(
    conn: &Connection,
    name: &str,
    phone: &str,
    attributes: &std::collections::BTreeMap<String, String>,
    now: i64,
) -> rusqlite::Result<i64> {
    let attrs = serde_json::to_string(attributes).unwrap_or_else(|_| "{}".into());
    conn.prepare_cached(
        "INSERT INTO contacts (wa_id, name, phone_e164, attributes, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )?
    .execute(params![phone.trim_start_matches('+'), name, phone, attrs, now])?;
    Ok(conn.last_insert_rowid())
}

/// A contact a bulk import creates (see [`create_many`]).
#[derive(Debug, Clone)]
pub struct NewContact {
    pub name: String,
    /// E.164; the WhatsApp id is its digits.
    pub phone: String,
    /// The custom fields as JSON.
    pub attributes: String,
    pub marketing: consent::State,
}

/// Rows per INSERT of [`create_many`] (7 parameters each, far under SQLite's limit).
const CREATE_BATCH: usize = 100;

/// Creates contacts as [`create`] does, with their marketing consent state in the same
/// INSERT (no UPDATE after it; the caller logs it with [`consent::log_many_at_creation`]),
/// a hundred per statement: every
/// statement that may fail opens a statement journal that copies each page it touches,
/// so an import of one statement per contact spent more on journals than on contacts.
/// Answers their ids, in the order given. The numbers must be new (the caller looked).
pub fn create_many(conn: &Connection, contacts: &[NewContact], now: i64) -> rusqlite::Result<Vec<i64>> {
    let mut ids = Vec::with_capacity(contacts.len());
    for batch in contacts.chunks(CREATE_BATCH) {
        let values = vec!["(?, ?, ?, ?, ?, ?, ?)"; batch.len()].join(", ");
        let mut stmt = conn.prepare_cached(&format!(
            "INSERT INTO contacts (wa_id, name, phone_e164, attributes, consent_marketing, created_at, updated_at)
             VALUES {values} RETURNING id, phone_e164"
        ))?;
        let wa_ids: Vec<&str> = batch.iter().map(|n| n.phone.trim_start_matches('+')).collect();
        let mut args: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(batch.len() * 7);
        for (n, wa_id) in batch.iter().zip(&wa_ids) {
            let row: [&dyn rusqlite::ToSql; 7] = [wa_id, &n.name, &n.phone, &n.attributes, &n.marketing, &now, &now];
            args.extend(row);
        }
        // RETURNING gives no order: each id is matched back by its (unique) number.
        let mut by_phone = std::collections::HashMap::with_capacity(batch.len());
        let mut rows = stmt.query(args.as_slice())?;
        while let Some(r) = rows.next()? {
            by_phone.insert(r.get::<_, String>(1)?, r.get::<_, i64>(0)?);
        }
        for n in batch {
            ids.push(*by_phone.get(&n.phone).ok_or(rusqlite::Error::QueryReturnedNoRows)?);
        }
    }
    Ok(ids)
}

/// Runs `f`, a bulk write that creates contacts, with the per-row search-index trigger
/// paused (migration 0021), then indexes every contact made meanwhile with one
/// statement: FTS5 writes a segment at every statement savepoint, so indexing row by row
/// costs more than the rows. Call inside one write job, not nested; `f` must not change
/// or delete the contacts it creates (the index learns them only at the end). The pause
/// is lifted and the index filled whether `f` succeeds or not, so the connection (the
/// shared writer) is left as it was even if the caller kept the savepoint after an error;
/// and a failed job's rollback undoes the pause with the rest.
pub fn with_search_index_batched<T, E: From<rusqlite::Error>>(
    conn: &Connection,
    f: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    let before: i64 = conn
        .prepare_cached("SELECT coalesce(max(id), 0) FROM contacts")?
        .query_row([], |r| r.get(0))?;
    conn.prepare_cached("INSERT INTO contacts_fts_paused (id) VALUES (1)")?
        .execute([])?;
    let out = f();
    let resumed = conn
        .prepare_cached("DELETE FROM contacts_fts_paused")
        .and_then(|mut s| s.execute([]))
        .and_then(|_| {
            // New rowids are above the largest one (no AUTOINCREMENT gaps below it), and
            // nothing else writes while this job runs: every contact above it is new.
            conn.prepare_cached(
                "INSERT INTO contacts_fts (rowid, name, profile_name, phone_e164, bsuid)
                 SELECT id, name, profile_name, phone_e164, bsuid FROM contacts WHERE id > ?1",
            )?
            .execute([before])
        });
    let value = out?;
    resumed?;
    Ok(value)
}

pub fn update(
    conn: &Connection,
    id: i64,
    name: &str,
    phone: Option<&str>,
    attributes: &std::collections::BTreeMap<String, String>,
    now: i64,
) -> rusqlite::Result<usize> {
    let attrs = serde_json::to_string(attributes).unwrap_or_else(|_| "{}".into());
    conn.execute(
        "UPDATE contacts SET name = nullif(?2, ''), phone_e164 = ?3, attributes = ?4, updated_at = ?5 WHERE id = ?1",
        params![id, name, phone, attrs, now],
    )
}

/// Sets one field of a contact: `name`, else a custom field of that key (what the bot's
/// questions store).
pub fn set_field(conn: &Connection, id: i64, field: &str, value: &str, now: i64) -> rusqlite::Result<usize> {
    if field == "name" {
        return conn.execute(
            "UPDATE contacts SET name = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, value, now],
        );
    }
    conn.execute(
        "UPDATE contacts SET attributes = json_set(coalesce(nullif(attributes, ''), '{}'), '$.' || ?2, ?3), updated_at = ?4
         WHERE id = ?1",
        params![id, field, value, now],
    )
}

pub fn delete(conn: &Connection, id: i64) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM contacts WHERE id = ?1", [id])
}

/// The phone in E.164 (`0812…` becomes `+62812…` with region ID), or why not.
pub fn normalize_phone(input: &str, default_region: &str) -> Result<String, &'static str> {
    let region = default_region.parse::<phonenumber::country::Id>().ok();
    let parsed = phonenumber::parse(region, input.trim()).map_err(|_| "contacts.phone_invalid")?;
    if !phonenumber::is_valid(&parsed) {
        return Err("contacts.phone_invalid");
    }
    Ok(parsed.format().mode(phonenumber::Mode::E164).to_string())
}

/// The business's region for phone numbers typed without a country code: the country
/// of the business's own phone number, else Indonesia.
pub fn default_region(business_phone: Option<&str>) -> String {
    business_phone
        .and_then(|p| {
            let p = p.trim();
            let p = if p.starts_with('+') {
                p.to_string()
            } else {
                format!("+{p}")
            };
            phonenumber::parse(None, p).ok()
        })
        .and_then(|n| n.country().id())
        .map(|id| format!("{id:?}"))
        .unwrap_or_else(|| "ID".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_terms_never_carry_operators() {
        assert_eq!(fts_query("0812-345"), Some("\"812345\"".into()));
        assert_eq!(fts_query("Bu"), None);
        assert_eq!(fts_query("Bu\"di"), Some("\"Budi\"".into()));
    }

    #[test]
    fn local_and_international_indonesian_numbers_become_e164() {
        for typed in [
            "0812-3456-7890",
            "081234567890",
            " 0812 3456 7890 ",
            "(0812) 3456-7890",
            "+62 812-3456-7890",
            "+6281234567890",
            "62812 3456 7890",
        ] {
            assert_eq!(normalize_phone(typed, "ID"), Ok("+6281234567890".into()), "{typed:?}");
        }
    }

    #[test]
    fn a_country_code_wins_over_the_default_region() {
        assert_eq!(normalize_phone("+62 812 3456 7890", "US"), Ok("+6281234567890".into()));
        assert_eq!(normalize_phone("+1 650-253-0000", "ID"), Ok("+16502530000".into()));
        assert_eq!(normalize_phone("(650) 253-0000", "US"), Ok("+16502530000".into()));
        assert_eq!(
            normalize_phone("0812 3456 7890", "not a region"),
            Err("contacts.phone_invalid"),
            "a local number needs a region"
        );
    }

    #[test]
    fn what_is_not_a_phone_number_is_refused() {
        for typed in [
            "",
            "12",
            "0812",
            "+62 12",
            "kopi",
            "0812-3456-7890-1234-5678",
            "+999 1234 5678",
        ] {
            assert_eq!(normalize_phone(typed, "ID"), Err("contacts.phone_invalid"), "{typed:?}");
        }
    }

    #[test]
    fn the_default_region_is_the_business_phone_country() {
        assert_eq!(default_region(Some("+6281234567890")), "ID");
        assert_eq!(default_region(Some("6281234567890")), "ID", "without the plus");
        assert_eq!(default_region(Some(" +1 650 253 0000 ")), "US");
        assert_eq!(default_region(Some("+44 20 7031 3000")), "GB");
        assert_eq!(default_region(Some("+65 6123 4567")), "SG");
        assert_eq!(default_region(Some("not a phone")), "ID", "else Indonesia");
        assert_eq!(default_region(Some("")), "ID");
        assert_eq!(default_region(None), "ID");
    }
}
