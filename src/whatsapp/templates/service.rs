//! Making and deleting templates: check the draft (and Meta's 100 creations per hour),
//! upload a media header's sample, submit to Meta, keep what Meta accepted (PENDING
//! until its review says otherwise), audited; delete in Meta first, then here.
//! Takes the store, the Graph client and the clock's `now`, never the app state.

use super::draft::{CREATIONS_PER_HOUR, Draft, Problem};
use super::{Status, Template};
use crate::audit::{self, Actor};
use crate::auth::Role;
use crate::error::{AppError, AppResult};
use crate::store::Db;
use crate::whatsapp::graph::{GraphClient, GraphError};
use crate::whatsapp::numbers::repo;

/// Who may make templates: supervisors and admins. Making one is content work like the
/// canned responses supervisors already own, and Meta reviews every template before it
/// can be sent.
pub const CREATE_ROLE: Role = Role::Supervisor;
/// Who may delete them: admins only. Deleting cannot be undone (Meta blocks the name
/// for 30 days, and whatever sends the template breaks).
pub const DELETE_ROLE: Role = Role::Admin;

/// A media header's sample file, as uploaded.
pub struct Sample {
    pub filename: String,
    pub mime: String,
    pub bytes: Vec<u8>,
}

/// What became of a submission.
#[derive(Debug)]
pub enum Submitted {
    /// Stored with its Meta id, status PENDING (or what Meta said).
    Created(i64),
    /// Not sent to Meta: what to fix.
    Invalid(Vec<Problem>),
    /// Meta said no (or could not be reached): its words, in one line.
    Refused { message: String, reached_meta: bool },
}

/// What became of a deletion.
#[derive(Debug)]
pub enum Deleted {
    Done,
    Refused { message: String, reached_meta: bool },
}

fn refused(e: &GraphError) -> (String, bool) {
    (e.to_string(), matches!(e, GraphError::Api { .. }))
}

/// The account to create in: the given number's, or the only one there is.
fn account_for(c: &rusqlite::Connection, number_id: Option<i64>) -> rusqlite::Result<Option<repo::Credentials>> {
    match number_id {
        Some(id) => repo::find_credentials(c, id),
        None => match repo::list_accounts(c)?.as_slice() {
            [(id, _, _)] => repo::find_credentials(c, *id),
            _ => Ok(None),
        },
    }
}

/// Checks the draft and, when nothing is wrong, submits it to Meta and keeps it.
pub async fn create(
    db: &Db,
    graph: &GraphClient,
    now: i64,
    actor: Actor,
    number_id: Option<i64>,
    mut draft: Draft,
    sample: Option<Sample>,
) -> AppResult<Submitted> {
    draft.tidy();
    let mut problems = draft.problems();
    let (name, language) = (draft.name.clone(), draft.language.clone());
    let (creds, taken, (recent, oldest)) = db
        .read(move |c| {
            let Some(creds) = account_for(c, number_id)? else {
                return Ok((None, false, (0, None)));
            };
            let taken = super::find_by_key(c, &creds.waba_id, &name, &language)?.is_some();
            let recent = super::creations_last_hour(c, &creds.waba_id, now)?;
            Ok((Some(creds), taken, recent))
        })
        .await?;
    let Some(creds) = creds else {
        problems.insert(0, Problem::new("number", "templates.problem.number"));
        return Ok(Submitted::Invalid(problems));
    };
    if taken {
        problems.push(Problem::new("name", "templates.problem.name_taken"));
    }
    if recent >= CREATIONS_PER_HOUR {
        let mut p = Problem::new("name", "templates.problem.rate_limit").with("max", CREATIONS_PER_HOUR.to_string());
        p.at = Some(oldest.unwrap_or(now) + 3600);
        problems.push(p);
    }
    if draft.header.is_media() {
        let (types, max) = draft.header.accepts();
        match &sample {
            None => problems.push(Problem::new("header_file", "templates.problem.header_file")),
            Some(s) if !types.contains(&s.mime.as_str()) => problems.push(
                Problem::new("header_file", "templates.problem.header_file_type").with("types", types.join(", ")),
            ),
            Some(s) if s.bytes.len() > max => problems.push(
                Problem::new("header_file", "templates.problem.header_file_big")
                    .with("max", (max / (1024 * 1024)).to_string()),
            ),
            Some(_) => {}
        }
        if creds.meta_app_id.is_empty() {
            problems.push(Problem::new("header_file", "templates.problem.app_id_missing"));
        }
    }
    if !problems.is_empty() {
        return Ok(Submitted::Invalid(problems));
    }
    let token = creds.access_token.expose();
    let handle = match (draft.header.is_media(), sample) {
        (true, Some(s)) => match graph
            .upload_sample(&creds.meta_app_id, token, &s.filename, &s.mime, s.bytes)
            .await
        {
            Ok(h) => Some(h),
            Err(e) => {
                let (message, reached_meta) = refused(&e);
                return Ok(Submitted::Refused { message, reached_meta });
            }
        },
        _ => None,
    };
    let created = match graph
        .create_template(&creds.waba_id, token, &draft.to_meta(handle.as_deref()))
        .await
    {
        Ok(c) => c,
        Err(e) => {
            let (message, reached_meta) = refused(&e);
            return Ok(Submitted::Refused { message, reached_meta });
        }
    };
    let status = if created.status.is_empty() {
        Status::Pending
    } else {
        Status::parse(&created.status)
    };
    let waba_id = creds.waba_id.clone();
    let id = db
        .write(move |c| {
            let id = super::insert_created(c, &waba_id, &created.id, &draft, &status, &actor.label, now)?;
            super::record_creation(c, &waba_id, now)?;
            audit::record(
                c,
                &actor,
                "template.create",
                &format!("template:{id} {}/{}", draft.name, draft.language),
                &format!(
                    "meta id {}, {}, {}",
                    created.id,
                    draft.category,
                    if draft.named() { "named" } else { "positional" }
                ),
                now,
            )?;
            Ok(id)
        })
        .await?;
    Ok(Submitted::Created(id))
}

/// Deletes a template in Meta (that language only), then here.
pub async fn delete(db: &Db, graph: &GraphClient, now: i64, actor: Actor, id: i64) -> AppResult<Deleted> {
    let (t, creds) = db
        .read(move |c| {
            let t = super::find(c, id)?.ok_or(AppError::NotFound)?;
            let creds = repo::find_credentials_for_waba(c, &t.waba_id)?;
            Ok((t, creds))
        })
        .await?;
    let Some(creds) = creds else {
        return Ok(Deleted::Refused {
            message: "no connected number for this account".into(),
            reached_meta: false,
        });
    };
    if let Err(e) = graph
        .delete_template(&creds.waba_id, creds.access_token.expose(), &t.name, &t.meta_id)
        .await
    {
        let (message, reached_meta) = refused(&e);
        return Ok(Deleted::Refused { message, reached_meta });
    }
    db.write(move |c| {
        super::delete(c, id)?;
        audit::record(
            c,
            &actor,
            "template.delete",
            &format!("template:{id} {}/{}", t.name, t.language),
            &format!("meta id {}", t.meta_id),
            now,
        )?;
        Ok(())
    })
    .await?;
    Ok(Deleted::Done)
}

/// One template, 404 when there is none.
pub async fn get(db: &Db, id: i64) -> AppResult<Template> {
    db.read(move |c| Ok(super::find(c, id)?))
        .await?
        .ok_or(AppError::NotFound)
}

/// Every template, and the accounts one can be made in: (number id, name, WABA id).
pub async fn overview(db: &Db) -> AppResult<(Vec<Template>, Vec<(i64, String, String)>)> {
    Ok(db.read(|c| Ok((super::list_all(c)?, repo::list_accounts(c)?))).await?)
}
