//! Consent you can prove (P6): each contact has a state per purpose (marketing, utility),
//! changed only through [`record`], which appends to the consent log (how, when, the
//! wording, the evidence, who) and the audit log in the caller's transaction.
//!
//! The rules, in one place:
//! - Marketing needs an opt-in; utility is implied by the relationship unless refused.
//! - An opt-out always wins over bulk sources: an import or the API never turns an
//!   opted-out contact back into an opted-in one (the person's own word does: START,
//!   Meta's "resume", a form, an agent recording what the person said).
//! - A record that changes nothing writes nothing, so re-importing a file is a no-op.
//! - [`may_send`] is THE question "may we send this purpose to this contact now, and if
//!   not why" that the inbox, campaigns and the bot all ask.

use crate::audit::{self, Actor};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// What a message is for. Authentication templates count as utility (they answer
/// something the person asked for).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    Marketing,
    Utility,
}

impl Purpose {
    pub const ALL: [Purpose; 2] = [Purpose::Marketing, Purpose::Utility];

    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Marketing => "marketing",
            Purpose::Utility => "utility",
        }
    }

    pub fn parse(s: &str) -> Option<Purpose> {
        match s.trim().to_ascii_lowercase().as_str() {
            "marketing" => Some(Purpose::Marketing),
            "utility" => Some(Purpose::Utility),
            _ => None,
        }
    }

    /// The purpose of a template of Meta's `category` (MARKETING, UTILITY,
    /// AUTHENTICATION); anything unknown is treated as marketing, the strict case.
    pub fn of_template_category(category: &str) -> Purpose {
        if category.eq_ignore_ascii_case("utility") || category.eq_ignore_ascii_case("authentication") {
            Purpose::Utility
        } else {
            Purpose::Marketing
        }
    }

    /// The catalogue key of its name (`consent.marketing`).
    pub fn key(self) -> &'static str {
        match self {
            Purpose::Marketing => "consent.marketing",
            Purpose::Utility => "consent.utility",
        }
    }

    fn column(self) -> &'static str {
        match self {
            Purpose::Marketing => "consent_marketing",
            Purpose::Utility => "consent_utility",
        }
    }
}

/// A contact's consent for one purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Unknown,
    OptedIn,
    OptedOut,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Unknown => "unknown",
            State::OptedIn => "opted_in",
            State::OptedOut => "opted_out",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        match s.trim().to_ascii_lowercase().as_str() {
            "unknown" => Some(State::Unknown),
            "opted_in" | "in" => Some(State::OptedIn),
            "opted_out" | "out" => Some(State::OptedOut),
            _ => None,
        }
    }
}

impl ToSql for State {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for State {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        State::parse(v.as_str()?).ok_or(FromSqlError::InvalidType)
    }
}

/// How a consent change reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A spreadsheet import (evidence: the file's SHA-256 and the row).
    Import,
    /// A form the person filled in (evidence: the form's reference).
    Form,
    /// A stop or start keyword the person sent (evidence: the message's wamid).
    Keyword,
    /// An agent recording what the person said (on the phone, at the counter).
    Agent,
    /// A client of the HTTP API (evidence: the key).
    Api,
    /// Meta's `user_preferences` webhook: the person pressed Stop or Resume in WhatsApp.
    MetaPreferences,
    /// Meta refused a marketing send with 131050: the person stopped marketing.
    MetaRefusal,
}

impl Source {
    pub const ALL: [Source; 7] = [
        Source::Import,
        Source::Form,
        Source::Keyword,
        Source::Agent,
        Source::Api,
        Source::MetaPreferences,
        Source::MetaRefusal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Import => "import",
            Source::Form => "form",
            Source::Keyword => "keyword",
            Source::Agent => "agent",
            Source::Api => "api",
            Source::MetaPreferences => "meta_preferences",
            Source::MetaRefusal => "meta_131050",
        }
    }

    pub fn parse(s: &str) -> Option<Source> {
        Source::ALL
            .into_iter()
            .find(|x| x.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// Bulk sources never lift an opt-out: only the person's own word does.
    fn may_lift_opt_out(self) -> bool {
        !matches!(self, Source::Import | Source::Api)
    }
}

impl ToSql for Source {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for Source {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        Source::parse(v.as_str()?).ok_or(FromSqlError::InvalidType)
    }
}

/// One change to record.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    pub contact: i64,
    pub purpose: Purpose,
    /// `OptedIn` or `OptedOut` (recording `Unknown` is refused: consent is not unsaid).
    pub state: State,
    pub source: Source,
    /// When the person gave or withdrew it; `None`: now.
    pub occurred_at: Option<i64>,
    /// The exact wording shown, or a reference to it.
    pub wording: &'a str,
    pub evidence: &'a str,
}

/// What [`record`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Changed {
        from: State,
    },
    /// Already in that state: nothing written.
    Unchanged,
    /// The contact opted out and this source may not lift it: nothing written.
    OptOutWins,
    NoSuchContact,
}

/// A contact's state for `purpose`; `None` when there is no such contact.
pub fn state(c: &Connection, contact: i64, purpose: Purpose) -> rusqlite::Result<Option<State>> {
    c.prepare_cached(&format!("SELECT {} FROM contacts WHERE id = ?1", purpose.column()))?
        .query_row([contact], |r| r.get(0))
        .optional()
}

/// Both states of a contact: (marketing, utility).
pub fn states(c: &Connection, contact: i64) -> rusqlite::Result<Option<(State, State)>> {
    c.prepare_cached("SELECT consent_marketing, consent_utility FROM contacts WHERE id = ?1")?
        .query_row([contact], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
}

/// Records a change (consent log + audit line) unless it changes nothing or an opt-out
/// wins. Call inside the transaction of whatever caused it.
pub fn record(c: &Connection, change: &Change<'_>, actor: &Actor, now: i64) -> rusqlite::Result<Outcome> {
    let outcome = record_in_bulk(c, change, actor, now)?;
    if let Outcome::Changed { from } = outcome {
        audit::record(
            c,
            actor,
            "consent.changed",
            &format!("contact:{}", change.contact),
            &format!(
                "{}: {} -> {} ({})",
                change.purpose.as_str(),
                from.as_str(),
                change.state.as_str(),
                change.source.as_str()
            ),
            now,
        )?;
    }
    Ok(outcome)
}

/// [`record`] without the audit line, for a bulk run that writes one audit line for
/// itself (an import of 100,000 rows is one line in the audit log, not 100,000); the
/// consent log still gets every change, with its evidence.
pub fn record_in_bulk(c: &Connection, change: &Change<'_>, actor: &Actor, now: i64) -> rusqlite::Result<Outcome> {
    if change.state == State::Unknown {
        return Ok(Outcome::Unchanged);
    }
    let Some(from) = state(c, change.contact, change.purpose)? else {
        return Ok(Outcome::NoSuchContact);
    };
    if from == change.state {
        return Ok(Outcome::Unchanged);
    }
    if from == State::OptedOut && !change.source.may_lift_opt_out() {
        return Ok(Outcome::OptOutWins);
    }
    c.prepare_cached(&format!(
        "UPDATE contacts SET {} = ?2, updated_at = ?3 WHERE id = ?1",
        change.purpose.column()
    ))?
    .execute(params![change.contact, change.state, now])?;
    c.prepare_cached(
        "INSERT INTO consent_log (contact_id, purpose, state, previous, source, occurred_at, recorded_at,
                                  wording, evidence, actor_id, actor)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        change.contact,
        change.purpose.as_str(),
        change.state,
        from,
        change.source,
        change.occurred_at.unwrap_or(now),
        now,
        change.wording,
        change.evidence,
        actor.id,
        actor.label,
    ])?;
    Ok(Outcome::Changed { from })
}

/// The consent log lines of contacts created in this transaction with `change.state`
/// already in their row (`contacts::create_many`: an import writes the state with the
/// INSERT instead of an UPDATE after it): the lines [`record_in_bulk`] would write for
/// them, from `unknown`, fifty per statement (a statement journal per line cost an
/// import more than the lines). Nothing is checked against the rows: call it only for
/// the contacts just created.
pub fn log_many_at_creation(c: &Connection, changes: &[Change<'_>], actor: &Actor, now: i64) -> rusqlite::Result<()> {
    let changes: Vec<&Change<'_>> = changes.iter().filter(|ch| ch.state != State::Unknown).collect();
    for batch in changes.chunks(50) {
        let values = vec!["(?, ?, ?, 'unknown', ?, ?, ?, ?, ?, ?, ?)"; batch.len()].join(", ");
        let mut stmt = c.prepare_cached(&format!(
            "INSERT INTO consent_log (contact_id, purpose, state, previous, source, occurred_at, recorded_at,
                                      wording, evidence, actor_id, actor)
             VALUES {values}"
        ))?;
        let occurred: Vec<(i64, &str)> = batch
            .iter()
            .map(|ch| (ch.occurred_at.unwrap_or(now), ch.purpose.as_str()))
            .collect();
        let mut args: Vec<&dyn ToSql> = Vec::with_capacity(batch.len() * 10);
        for (ch, (at, purpose)) in batch.iter().zip(&occurred) {
            let row: [&dyn ToSql; 10] = [
                &ch.contact,
                purpose,
                &ch.state,
                &ch.source,
                at,
                &now,
                &ch.wording,
                &ch.evidence,
                &actor.id,
                &actor.label,
            ];
            args.extend(row);
        }
        stmt.execute(args.as_slice())?;
    }
    Ok(())
}

/// When the newest recorded change of `purpose` happened (by the person's clock:
/// `occurred_at`); `None` before the first. A late or replayed event older than this
/// (Meta retries for days, out of order) must not undo what the person said since.
pub fn last_change_at(c: &Connection, contact: i64, purpose: Purpose) -> rusqlite::Result<Option<i64>> {
    c.prepare_cached("SELECT max(occurred_at) FROM consent_log WHERE contact_id = ?1 AND purpose = ?2")?
        .query_row(params![contact, purpose.as_str()], |r| r.get(0))
}

/// One line of a contact's consent log.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub id: i64,
    pub purpose: Purpose,
    pub state: State,
    pub previous: State,
    pub source: Source,
    pub occurred_at: i64,
    pub recorded_at: i64,
    pub wording: String,
    pub evidence: String,
    pub actor: String,
}

/// A contact's consent log, newest first.
pub fn log(c: &Connection, contact: i64) -> rusqlite::Result<Vec<Entry>> {
    let mut s = c.prepare_cached(
        "SELECT id, purpose, state, previous, source, occurred_at, recorded_at, wording, evidence, actor
         FROM consent_log WHERE contact_id = ?1 ORDER BY id DESC",
    )?;
    let rows = s.query_map([contact], |r| {
        let purpose: String = r.get(1)?;
        Ok(Entry {
            id: r.get(0)?,
            purpose: Purpose::parse(&purpose).unwrap_or(Purpose::Marketing),
            state: r.get(2)?,
            previous: r.get(3)?,
            source: r.get(4)?,
            occurred_at: r.get(5)?,
            recorded_at: r.get(6)?,
            wording: r.get(7)?,
            evidence: r.get(8)?,
            actor: r.get(9)?,
        })
    })?;
    rows.collect()
}

/// Why a send may not go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// The person opted out of this purpose.
    OptedOut,
    /// Marketing without a recorded opt-in.
    NoOptIn,
    NoSuchContact,
}

impl Refusal {
    /// The message key that explains it (en.toml / id.toml).
    pub fn key(self) -> &'static str {
        match self {
            Refusal::OptedOut => "consent.refusal.opted_out",
            Refusal::NoOptIn => "consent.refusal.no_opt_in",
            Refusal::NoSuchContact => "consent.refusal.no_contact",
        }
    }
}

/// May we send a message of `purpose` to `contact` now, and if not, why. The one rule
/// every sender asks (inbox templates, campaigns, the bot): marketing needs an opt-in;
/// utility goes unless the person refused it; an opt-out of marketing does not stop
/// utility (orders, invoices), like Meta's own Stop.
pub fn may_send(c: &Connection, contact: i64, purpose: Purpose) -> rusqlite::Result<Result<(), Refusal>> {
    Ok(judge(purpose, state(c, contact, purpose)?))
}

/// The rule of [`may_send`] over a state already read (a campaign's planner reads a
/// million contacts' states in one query): `None` is no such contact.
pub fn judge(purpose: Purpose, state: Option<State>) -> Result<(), Refusal> {
    let Some(s) = state else {
        return Err(Refusal::NoSuchContact);
    };
    match (purpose, s) {
        (_, State::OptedOut) => Err(Refusal::OptedOut),
        (Purpose::Marketing, State::Unknown) => Err(Refusal::NoOptIn),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        crate::store::migrate(&mut c).unwrap();
        c.execute(
            "INSERT INTO contacts (id, wa_id, created_at) VALUES (1, '6281234567890', 0)",
            [],
        )
        .unwrap();
        c
    }

    fn change(state: State, source: Source) -> Change<'static> {
        Change {
            contact: 1,
            purpose: Purpose::Marketing,
            state,
            source,
            occurred_at: None,
            wording: "",
            evidence: "",
        }
    }

    #[test]
    fn marketing_needs_an_opt_in_and_utility_an_absence_of_refusal() {
        let c = db();
        assert_eq!(may_send(&c, 1, Purpose::Marketing).unwrap(), Err(Refusal::NoOptIn));
        assert_eq!(may_send(&c, 1, Purpose::Utility).unwrap(), Ok(()));
        assert_eq!(may_send(&c, 2, Purpose::Utility).unwrap(), Err(Refusal::NoSuchContact));
        let a = Actor::system();
        record(&c, &change(State::OptedIn, Source::Import), &a, 10).unwrap();
        assert_eq!(may_send(&c, 1, Purpose::Marketing).unwrap(), Ok(()));
        record(&c, &change(State::OptedOut, Source::Keyword), &a, 11).unwrap();
        assert_eq!(may_send(&c, 1, Purpose::Marketing).unwrap(), Err(Refusal::OptedOut));
        assert_eq!(may_send(&c, 1, Purpose::Utility).unwrap(), Ok(()), "utility still goes");
    }

    #[test]
    fn bulk_sources_never_lift_an_opt_out_and_the_person_does() {
        let c = db();
        let a = Actor::system();
        assert_eq!(
            record(&c, &change(State::OptedOut, Source::MetaPreferences), &a, 1).unwrap(),
            Outcome::Changed { from: State::Unknown }
        );
        for s in [Source::Import, Source::Api] {
            assert_eq!(
                record(&c, &change(State::OptedIn, s), &a, 2).unwrap(),
                Outcome::OptOutWins
            );
        }
        assert_eq!(
            record(&c, &change(State::OptedOut, Source::Keyword), &a, 3).unwrap(),
            Outcome::Unchanged
        );
        assert_eq!(
            record(&c, &change(State::OptedIn, Source::Keyword), &a, 4).unwrap(),
            Outcome::Changed { from: State::OptedOut }
        );
        let log = log(&c, 1).unwrap();
        assert_eq!(log.len(), 2, "only changes are logged");
        assert_eq!((log[0].state, log[0].previous), (State::OptedIn, State::OptedOut));
        assert!(
            c.execute("UPDATE consent_log SET state = 'opted_in'", []).is_err(),
            "append-only"
        );
    }

    #[test]
    fn template_categories_map_to_purposes() {
        assert_eq!(Purpose::of_template_category("MARKETING"), Purpose::Marketing);
        assert_eq!(Purpose::of_template_category("UTILITY"), Purpose::Utility);
        assert_eq!(Purpose::of_template_category("AUTHENTICATION"), Purpose::Utility);
        assert_eq!(Purpose::of_template_category("SOMETHING_NEW"), Purpose::Marketing);
    }
}
