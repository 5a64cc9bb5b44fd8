//! The bot's operations for the pages and the API: read a number's bot, replace it
//! (validated whole, audited), switch it on or off, and the test chat that runs the
//! real rules and flows without sending anything.

use super::document::{self, Assign, Bot, Problem};
use super::engine::{self, Compiled, Decision, Input, Session, Situation};
use crate::audit::Actor;
use crate::clock::Clock;
use crate::error::AppError;
use crate::store::Db;
use rusqlite::Connection;

/// A number's bot as the editor shows it: the document (a switched-off empty one when
/// none was saved), its version (0: never saved) and who saved it last.
#[derive(Debug, Clone)]
pub struct Current {
    pub bot: Bot,
    pub version: i64,
    pub updated_at: Option<i64>,
    pub updated_by: Option<String>,
}

pub fn current(c: &Connection, number_id: i64) -> Result<Current, AppError> {
    match super::find(c, number_id)? {
        Some(Ok(s)) => Ok(Current {
            bot: s.bot,
            version: s.version,
            updated_at: Some(s.updated_at),
            updated_by: s.updated_by,
        }),
        Some(Err(e)) => Err(AppError::internal(format!("the stored bot does not read: {e}"))),
        None => Ok(Current {
            bot: Bot::default(),
            version: 0,
            updated_at: None,
            updated_by: None,
        }),
    }
}

/// Problems only the database can see: the agent a hand-off names must be an active
/// user.
fn check_in_store(c: &Connection, bot: &Bot) -> Result<Vec<Problem>, AppError> {
    let mut problems = Vec::new();
    if let Assign::Agent(user) = bot.handoff.assign {
        if !crate::auth::repo::find_user(c, user)?.is_some_and(|u| u.active) {
            problems.push(Problem {
                path: "handoff.assign".into(),
                key: "unknown_agent",
                detail: user.to_string(),
            });
        }
    }
    Ok(problems)
}

/// Replaces a number's bot. `Ok(Err(problems))` names everything wrong, and nothing is
/// saved; `Ok(Ok(version))` is the new version.
pub async fn replace(
    db: &Db,
    clock: &Clock,
    number_id: i64,
    bot: Bot,
    actor: Actor,
    summary: String,
) -> Result<Result<i64, Vec<Problem>>, AppError> {
    let mut problems = document::validate(&bot);
    let now = clock.unix();
    db.write(move |c| {
        if crate::whatsapp::numbers::repo::find_number(c, number_id)?.is_none() {
            return Err(AppError::NotFound.into());
        }
        problems.extend(check_in_store(c, &bot)?);
        if !problems.is_empty() {
            return Ok(Err(problems));
        }
        Ok(Ok(super::save(c, number_id, &bot, &actor, &summary, now)?))
    })
    .await
    .map_err(AppError::from)
}

/// Reads a document as JSON and replaces the number's bot with it (the API's PUT).
pub async fn import(
    db: &Db,
    clock: &Clock,
    number_id: i64,
    json: &str,
    actor: Actor,
) -> Result<Result<i64, Vec<Problem>>, AppError> {
    let bot: Bot = match serde_json::from_str(json) {
        Ok(b) => b,
        Err(e) => {
            return Ok(Err(vec![Problem {
                path: String::new(),
                key: "json",
                detail: e.to_string(),
            }]));
        }
    };
    replace(db, clock, number_id, bot, actor, "imported a document".into()).await
}

/// One turn of the test chat: the number's real bot (or `draft`), a session the page
/// carries, and what the tester typed or pressed. Nothing is stored, queued or logged;
/// the decision is shown with each step. Business hours are read at `now`; the window
/// is open (the tester just wrote); the first turn is a first message.
pub fn test_turn(
    c: &Connection,
    number_id: i64,
    session: &mut Session,
    first: bool,
    input: Input<'_>,
    now: i64,
) -> Result<Decision, AppError> {
    let mut bot = current(c, number_id)?.bot;
    // The tester sees what the rules would do even while the bot is switched off.
    bot.enabled = true;
    let compiled = Compiled::new(bot, 0);
    let super::Moment {
        open,
        closed_since,
        today,
    } = super::moment(c, &compiled.bot, now)?;
    let situation = Situation {
        now,
        today,
        open,
        closed_since,
        welcome_due: first,
        window_open: true,
        opted_out: false,
        consent_keyword: false,
        sent_last_minute: 0,
        agent_answered_at: None,
    };
    Ok(engine::decide(&compiled, session, input, situation))
}
