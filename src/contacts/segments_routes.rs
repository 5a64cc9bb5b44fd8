//! Segment pages: the list with live counts, the form (every criterion, with a Preview
//! button that shows the count and a sample before saving, no script needed), the
//! segment page (count, sample, the criteria in words) and delete.
//!
//! Segments are for supervisors and admins only, on the pages and in the API. A
//! segment counts over every contact, while an agent sees only the contacts of its own
//! conversations (and unassigned ones): a count or a sample would tell an agent about
//! customers it may not see. Building audiences for campaigns is a supervisor's job.

use super::consent::State;
use super::segments::{self, AttrOp, AttributeRule, Filter, Known, LastInbound, Member, Moment, Recency, Segment};
use super::segments::{SegmentId, SegmentInput};
use crate::app::AppState;
use crate::auth::Role;
use crate::error::{AppError, AppResult};
use crate::web::{Authed, FormErrors, RequestCtx, invalid_page, ok_page, see_other_flash};
use actix_web::{HttpResponse, web};
use askama::Template;
use rusqlite::Connection;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/segments")
            .route(web::get().to(get_segments))
            .route(web::post().to(post_segments)),
    )
    .service(web::resource("/segments/new").route(web::get().to(get_new)))
    .service(web::resource("/segments/{id}").route(web::get().to(get_segment)))
    .service(
        web::resource("/segments/{id}/edit")
            .route(web::get().to(get_edit))
            .route(web::post().to(post_edit)),
    )
    .service(web::resource("/segments/{id}/delete").route(web::post().to(post_delete)));
}

/// What a filter may name now: the labels (inbox) and the connected numbers.
pub(crate) fn known(c: &Connection) -> rusqlite::Result<Known> {
    Ok(Known {
        labels: crate::inbox::catalog::list_labels(c)?
            .into_iter()
            .map(|l| l.name)
            .collect(),
        numbers: crate::whatsapp::numbers::repo::choices(c)?
            .into_iter()
            .map(|(id, _)| id)
            .collect(),
    })
}

/// Now, in the business's time zone.
pub(crate) fn moment(state: &AppState) -> Moment {
    Moment {
        now: state.now(),
        tz: state.business().and_then(|b| b.tz()),
    }
}

/// The criteria in words, one line each, in the reader's language.
pub(crate) fn describe(ctx: &RequestCtx, f: &Filter, numbers: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (key, list) in [
        ("segments.words_labels_any", &f.labels_any),
        ("segments.words_labels_all", &f.labels_all),
        ("segments.words_labels_none", &f.labels_none),
    ] {
        if !list.is_empty() {
            out.push(ctx.tf(key, &[("labels", &list.join(", "))]));
        }
    }
    for r in &f.attributes {
        out.push(ctx.tf(
            &format!("segments.words_attr_{}", r.op.as_str()),
            &[("key", &r.key), ("value", &r.value)],
        ));
    }
    for (key, s) in [
        ("segments.words_consent_marketing", f.consent_marketing),
        ("segments.words_consent_utility", f.consent_utility),
    ] {
        if let Some(s) = s {
            out.push(ctx.tf(key, &[("state", &ctx.label("consent.state", s.as_str()))]));
        }
    }
    if let Some(li) = f.last_inbound {
        let days = li.days.unwrap_or(0).to_string();
        out.push(ctx.tf(&format!("segments.words_{}", li.when.as_str()), &[("n", &days)]));
    }
    if let Some(d) = &f.created_from {
        out.push(ctx.tf("segments.words_created_from", &[("date", d)]));
    }
    if let Some(d) = &f.created_before {
        out.push(ctx.tf("segments.words_created_before", &[("date", d)]));
    }
    if let Some(n) = &f.number {
        let name = numbers
            .iter()
            .find(|(id, _)| id == n)
            .map_or(n.as_str(), |(_, name)| name.as_str());
        out.push(ctx.tf("segments.words_number", &[("number", name)]));
    }
    if out.is_empty() {
        out.push(ctx.t("segments.words_everyone").to_string());
    }
    out
}

// ---- the list --------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "segments/list.html")]
struct ListPage {
    ctx: RequestCtx,
    segments: Vec<(Segment, i64)>,
}

async fn get_segments(state: web::Data<AppState>, a: Authed) -> AppResult<HttpResponse> {
    a.require(Role::Supervisor)?;
    let at = moment(&state);
    let segments = state
        .db
        .read(move |c| {
            let mut out = Vec::new();
            for s in segments::list(c)? {
                let n = segments::count(c, &s.filter, &at)?;
                out.push((s, n));
            }
            Ok(out)
        })
        .await?;
    ok_page(&ListPage { ctx: a.ctx, segments })
}

// ---- one segment ----------------------------------------------------------------------

#[derive(Template)]
#[template(path = "segments/segment.html")]
struct SegmentPage {
    ctx: RequestCtx,
    segment: Segment,
    count: i64,
    sample: Vec<Member>,
    words: Vec<String>,
}

async fn get_segment(state: web::Data<AppState>, a: Authed, path: web::Path<i64>) -> AppResult<HttpResponse> {
    a.require(Role::Supervisor)?;
    let id = SegmentId(path.into_inner());
    let at = moment(&state);
    let (segment, count, sample, numbers) = state
        .db
        .read(move |c| {
            let s = segments::find(c, id)?.ok_or(AppError::NotFound)?;
            let count = segments::count(c, &s.filter, &at)?;
            let sample = segments::sample(c, &s.filter, &at, segments::SAMPLE)?;
            Ok((s, count, sample, crate::whatsapp::numbers::repo::choices(c)?))
        })
        .await?;
    let words = describe(&a.ctx, &segment.filter, &numbers);
    ok_page(&SegmentPage {
        ctx: a.ctx,
        segment,
        count,
        sample,
        words,
    })
}

async fn post_delete(state: web::Data<AppState>, a: Authed, path: web::Path<i64>) -> AppResult<HttpResponse> {
    a.require(Role::Supervisor)?;
    let id = SegmentId(path.into_inner());
    let (actor, now) = (a.actor(), state.now());
    let deleted = state
        .db
        .write(move |c| Ok(segments::delete(c, &actor, id, now)?))
        .await?;
    if !deleted {
        return Err(AppError::NotFound);
    }
    Ok(see_other_flash("/segments", "segments.deleted"))
}

// ---- the form ---------------------------------------------------------------------------

/// The form as a person filled it in (kept as typed, to show it again).
#[derive(Debug, Clone, Default)]
pub struct FormView {
    pub name: String,
    pub labels_any: Vec<String>,
    pub labels_all: Vec<String>,
    pub labels_none: Vec<String>,
    /// (key, op, value) rows; the form adds one empty row.
    pub attributes: Vec<(String, String, String)>,
    pub consent_marketing: String,
    pub consent_utility: String,
    pub last_inbound: String,
    pub days: String,
    pub created_from: String,
    pub created_before: String,
    pub number: String,
}

impl FormView {
    fn of(name: &str, f: &Filter) -> FormView {
        let state = |s: Option<State>| s.map(|s| s.as_str().to_string()).unwrap_or_default();
        FormView {
            name: name.to_string(),
            labels_any: f.labels_any.clone(),
            labels_all: f.labels_all.clone(),
            labels_none: f.labels_none.clone(),
            attributes: f
                .attributes
                .iter()
                .map(|r| (r.key.clone(), r.op.as_str().to_string(), r.value.clone()))
                .collect(),
            consent_marketing: state(f.consent_marketing),
            consent_utility: state(f.consent_utility),
            last_inbound: f.last_inbound.map(|l| l.when.as_str().to_string()).unwrap_or_default(),
            days: f
                .last_inbound
                .and_then(|l| l.days)
                .map(|d| d.to_string())
                .unwrap_or_default(),
            created_from: f.created_from.clone().unwrap_or_default(),
            created_before: f.created_before.clone().unwrap_or_default(),
            number: f.number.clone().unwrap_or_default(),
        }
    }

    /// Reads the posted fields (repeated checkboxes, numbered attribute rows): the form
    /// as typed, the input for the service, and what could not even be read.
    fn parse(fields: &[(String, String)]) -> (FormView, SegmentInput, FormErrors) {
        let mut v = FormView::default();
        let mut errors = FormErrors::default();
        let mut rows: std::collections::BTreeMap<usize, (String, String, String)> = std::collections::BTreeMap::new();
        for (k, val) in fields {
            match k.as_str() {
                "name" => v.name.clone_from(val),
                "labels_any" => v.labels_any.push(val.clone()),
                "labels_all" => v.labels_all.push(val.clone()),
                "labels_none" => v.labels_none.push(val.clone()),
                "consent_marketing" => v.consent_marketing.clone_from(val),
                "consent_utility" => v.consent_utility.clone_from(val),
                "last_inbound" => v.last_inbound.clone_from(val),
                "days" => v.days.clone_from(val),
                "created_from" => v.created_from.clone_from(val),
                "created_before" => v.created_before.clone_from(val),
                "number" => v.number.clone_from(val),
                other => {
                    let Some((what, i)) = other.strip_prefix("attr_").and_then(|r| r.split_once('_')) else {
                        continue;
                    };
                    let Some(i) = i.parse::<usize>().ok().filter(|i| *i < 50) else {
                        continue;
                    };
                    let row = rows.entry(i).or_default();
                    match what {
                        "key" => row.0.clone_from(val),
                        "op" => row.1.clone_from(val),
                        "value" => row.2.clone_from(val),
                        _ => {}
                    }
                }
            }
        }
        v.attributes = rows
            .into_values()
            .filter(|(k, _, val)| !k.trim().is_empty() || !val.trim().is_empty())
            .collect();
        let mut f = Filter {
            labels_any: v.labels_any.clone(),
            labels_all: v.labels_all.clone(),
            labels_none: v.labels_none.clone(),
            created_from: Some(v.created_from.clone()),
            created_before: Some(v.created_before.clone()),
            number: Some(v.number.clone()),
            ..Filter::default()
        };
        for (key, op, value) in &v.attributes {
            match AttrOp::parse(op) {
                Some(op) => f.attributes.push(AttributeRule {
                    key: key.clone(),
                    op,
                    value: value.clone(),
                }),
                None if !errors.has("attributes") => errors.add("attributes", "form.invalid_choice"),
                None => {}
            }
        }
        let state = |s: &str, field: &'static str, errors: &mut FormErrors| match s.trim() {
            "" => None,
            s => State::parse(s).or_else(|| {
                errors.add(field, "form.invalid_choice");
                None
            }),
        };
        f.consent_marketing = state(&v.consent_marketing, "consent_marketing", &mut errors);
        f.consent_utility = state(&v.consent_utility, "consent_utility", &mut errors);
        match v.last_inbound.trim() {
            "" => {}
            when => match Recency::parse(when) {
                Some(when) => {
                    let days = match v.days.trim() {
                        "" => None,
                        d => match d.parse::<i64>() {
                            Ok(d) => Some(d),
                            Err(_) => {
                                errors.add("last_inbound", "segments.days_invalid");
                                None
                            }
                        },
                    };
                    f.last_inbound = Some(LastInbound { when, days });
                }
                None => errors.add("last_inbound", "form.invalid_choice"),
            },
        }
        let input = SegmentInput {
            name: v.name.clone(),
            filter: f,
        };
        (v, input, errors)
    }

    pub fn checked(&self, list: &str, label: &str) -> bool {
        let l = match list {
            "any" => &self.labels_any,
            "all" => &self.labels_all,
            _ => &self.labels_none,
        };
        l.iter().any(|x| x.trim().eq_ignore_ascii_case(label))
    }

    /// The attribute rows to show: those filled in and one empty.
    pub fn rows(&self) -> Vec<AttrRow> {
        let mut rows = self.attributes.clone();
        if rows.len() < segments::MAX_ATTRIBUTES {
            rows.push((String::new(), "equals".into(), String::new()));
        }
        rows.into_iter()
            .enumerate()
            .map(|(i, (key, op, value))| AttrRow { i, key, op, value })
            .collect()
    }
}

/// One custom field row of the form (`attr_key_<i>`, `attr_op_<i>`, `attr_value_<i>`).
pub struct AttrRow {
    pub i: usize,
    pub key: String,
    pub op: String,
    pub value: String,
}

#[derive(Template)]
#[template(path = "segments/form.html")]
struct FormPage {
    ctx: RequestCtx,
    /// `None`: a new segment.
    id: Option<SegmentId>,
    form: FormView,
    errors: FormErrors,
    labels: Vec<String>,
    numbers: Vec<(String, String)>,
    keys: Vec<String>,
    /// After Preview: the count, the sample and the criteria in words.
    preview: Option<(i64, Vec<Member>, Vec<String>)>,
}

impl FormPage {
    fn action(&self) -> String {
        match self.id {
            Some(id) => format!("/segments/{id}/edit"),
            None => "/segments".into(),
        }
    }

    /// The three label lists: (field suffix, heading key).
    #[expect(clippy::unused_self, reason = "askama calls it as a method of the page")]
    fn lists(&self) -> [(&'static str, &'static str); 3] {
        [
            ("any", "segments.labels_any"),
            ("all", "segments.labels_all"),
            ("none", "segments.labels_none"),
        ]
    }

    #[expect(clippy::unused_self, reason = "askama calls it as a method of the page")]
    fn ops(&self) -> Vec<&'static str> {
        AttrOp::ALL.iter().map(|o| o.as_str()).collect()
    }

    #[expect(clippy::unused_self, reason = "askama calls it as a method of the page")]
    fn recencies(&self) -> Vec<&'static str> {
        Recency::ALL.iter().map(|r| r.as_str()).collect()
    }

    #[expect(clippy::unused_self, reason = "askama calls it as a method of the page")]
    fn states(&self) -> Vec<&'static str> {
        [State::OptedIn, State::OptedOut, State::Unknown]
            .iter()
            .map(|s| s.as_str())
            .collect()
    }
}

type Choices = (Vec<String>, Vec<(String, String)>, Vec<String>);

async fn choices(state: &AppState) -> AppResult<Choices> {
    Ok(state
        .db
        .read(|c| {
            Ok((
                known(c)?.labels,
                crate::whatsapp::numbers::repo::choices(c)?,
                segments::attribute_keys(c)?,
            ))
        })
        .await?)
}

async fn form_page(
    state: &AppState,
    ctx: RequestCtx,
    id: Option<SegmentId>,
    form: FormView,
    errors: FormErrors,
    preview: Option<(i64, Vec<Member>, Vec<String>)>,
) -> AppResult<FormPage> {
    let (mut labels, numbers, keys) = choices(state).await?;
    // A label the segment names but that was deleted since stays visible (ticked), so
    // saving says so instead of quietly dropping it.
    for name in form.labels_any.iter().chain(&form.labels_all).chain(&form.labels_none) {
        let name = name.trim();
        if !name.is_empty() && !labels.iter().any(|l| l.eq_ignore_ascii_case(name)) {
            labels.push(name.to_string());
        }
    }
    Ok(FormPage {
        ctx,
        id,
        form,
        errors,
        labels,
        numbers,
        keys,
        preview,
    })
}

async fn get_new(state: web::Data<AppState>, a: Authed) -> AppResult<HttpResponse> {
    a.require(Role::Supervisor)?;
    ok_page(&form_page(&state, a.ctx, None, FormView::default(), FormErrors::default(), None).await?)
}

async fn get_edit(state: web::Data<AppState>, a: Authed, path: web::Path<i64>) -> AppResult<HttpResponse> {
    a.require(Role::Supervisor)?;
    let id = SegmentId(path.into_inner());
    let s = state
        .db
        .read(move |c| Ok(segments::find(c, id)?.ok_or(AppError::NotFound)?))
        .await?;
    let form = FormView::of(&s.name, &s.filter);
    ok_page(&form_page(&state, a.ctx, Some(id), form, FormErrors::default(), None).await?)
}

async fn post_segments(
    state: web::Data<AppState>,
    a: Authed,
    form: web::Form<Vec<(String, String)>>,
) -> AppResult<HttpResponse> {
    a.require(Role::Supervisor)?;
    submit(&state, a, None, &form.into_inner()).await
}

async fn post_edit(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<i64>,
    form: web::Form<Vec<(String, String)>>,
) -> AppResult<HttpResponse> {
    a.require(Role::Supervisor)?;
    let id = SegmentId(path.into_inner());
    submit(&state, a, Some(id), &form.into_inner()).await
}

/// Preview (count + sample, nothing saved) or save, for a new segment or an edit.
async fn submit(
    state: &AppState,
    a: Authed,
    id: Option<SegmentId>,
    fields: &[(String, String)],
) -> AppResult<HttpResponse> {
    let (view, input, read_errors) = FormView::parse(fields);
    let preview = fields.iter().any(|(k, v)| k == "action" && v == "preview");
    if !read_errors.is_empty() {
        return invalid_page(&form_page(state, a.ctx, id, view, read_errors, None).await?);
    }
    if preview {
        let at = moment(state);
        let filter = input.filter;
        let result = state
            .db
            .read(move |c| {
                if let Some(id) = id {
                    segments::find(c, id)?.ok_or(AppError::NotFound)?;
                }
                let mut f = segments::normalize(filter);
                let mut errors = FormErrors::default();
                segments::check(&mut f, &known(c)?, &mut errors);
                if !errors.is_empty() {
                    return Ok(Err(errors));
                }
                let count = segments::count(c, &f, &at)?;
                let sample = segments::sample(c, &f, &at, segments::SAMPLE)?;
                Ok(Ok((f, count, sample, crate::whatsapp::numbers::repo::choices(c)?)))
            })
            .await?;
        return match result {
            Ok((f, count, sample, numbers)) => {
                let words = describe(&a.ctx, &f, &numbers);
                ok_page(
                    &form_page(
                        state,
                        a.ctx,
                        id,
                        view,
                        FormErrors::default(),
                        Some((count, sample, words)),
                    )
                    .await?,
                )
            }
            Err(errors) => invalid_page(&form_page(state, a.ctx, id, view, errors, None).await?),
        };
    }
    let (actor, now) = (a.actor(), state.now());
    let saved = state
        .db
        .write(move |c| {
            let known = known(c)?;
            Ok(match id {
                Some(id) => segments::update(c, &known, &actor, id, &input, now)?.ok_or(AppError::NotFound)?,
                None => segments::create(c, &known, &actor, &input, now)?,
            })
        })
        .await?;
    match saved {
        Ok(s) => Ok(see_other_flash(&format!("/segments/{}", s.id), "flash.saved")),
        Err(errors) => invalid_page(&form_page(state, a.ctx, id, view, errors, None).await?),
    }
}
