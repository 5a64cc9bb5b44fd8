//! The inbox pages: the list (tabs, filters, search), a conversation (thread, composer,
//! assignment, status, labels, notes), labels and canned responses for supervisors, the
//! inbox settings for admins, and the live event stream. Every page works without
//! JavaScript; `static/js/app.js` adds live updates, canned-response shortcuts, the
//! window countdown and notifications.

use super::access::Viewer;
use super::catalog::{self, Canned};
use super::conversations::{self, Filter, LabelTag, Row, Tab};
use super::manage::{self, By};
use super::reply::{self, Compose};
use super::search::{self, Hit};
use super::thread::{self, Item};
use crate::app::AppState;
use crate::audit;
use crate::auth::Role;
use crate::auth::repo::Agent;
use crate::error::{AppError, AppResult};
use crate::settings::InboxSettings;
use crate::web::{Admin, Authed, RequestCtx, ok_page, see_other, see_other_flash};
use crate::whatsapp::templates::Template;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/inbox").route(web::get().to(get_inbox)))
        .service(web::resource("/inbox/events").route(web::get().to(super::live::get_events)))
        .service(web::resource("/inbox/availability").route(web::post().to(post_availability)))
        .service(
            web::resource("/inbox/labels")
                .route(web::get().to(get_labels))
                .route(web::post().to(post_labels)),
        )
        .service(web::resource("/inbox/labels/{id}/delete").route(web::post().to(post_label_delete)))
        .service(
            web::resource("/inbox/canned")
                .route(web::get().to(get_canned))
                .route(web::post().to(post_canned)),
        )
        .service(web::resource("/inbox/canned/{id}/delete").route(web::post().to(post_canned_delete)))
        .service(web::resource("/inbox/{id}").route(web::get().to(get_conversation)))
        .service(web::resource("/inbox/{id}/reply").route(web::post().to(post_reply)))
        .service(web::resource("/inbox/{id}/attach").route(web::post().to(post_attach)))
        .service(web::resource("/inbox/{id}/template").route(web::post().to(post_template)))
        .service(web::resource("/inbox/{id}/note").route(web::post().to(post_note)))
        .service(web::resource("/inbox/{id}/assign").route(web::post().to(post_assign)))
        .service(web::resource("/inbox/{id}/status").route(web::post().to(post_status)))
        .service(web::resource("/inbox/{id}/labels").route(web::post().to(post_conversation_label)))
        .service(
            web::resource("/admin/inbox")
                .route(web::get().to(get_settings))
                .route(web::post().to(post_settings)),
        );
}

const PAGE: i64 = 50;

async fn viewer(state: &AppState, a: &Authed) -> AppResult<Viewer> {
    let user = a.user.clone();
    state.db.read(move |c| Ok(Viewer::for_user(c, &user)?)).await
}

// ---- the list -----------------------------------------------------------------------

#[derive(Deserialize, Default, Clone)]
pub struct ListQuery {
    #[serde(default)]
    tab: String,
    status: Option<String>,
    #[serde(default)]
    number: String,
    #[serde(default, deserialize_with = "crate::web::empty_as_none")]
    label: Option<i64>,
    #[serde(default)]
    unread: String,
    #[serde(default)]
    before: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    fragment: String,
}

#[derive(askama::Template)]
#[template(path = "inbox/list.html")]
struct ListPage {
    ctx: RequestCtx,
    tab: Tab,
    show_all_tab: bool,
    status: String,
    number: String,
    label: Option<i64>,
    unread: bool,
    q: String,
    rows: Vec<Row>,
    hits: Vec<Hit>,
    next: Option<String>,
    unread_mine: i64,
    unread_unassigned: i64,
    numbers: Vec<(String, String)>,
    labels: Vec<LabelTag>,
    available: bool,
    base_query: String,
}

#[derive(askama::Template)]
#[template(path = "inbox/_rows.html")]
struct RowsFragment {
    ctx: RequestCtx,
    rows: Vec<Row>,
    next: Option<String>,
    base_query: String,
    unread_mine: i64,
    unread_unassigned: i64,
}

impl ListPage {
    fn label_is(&self, id: &i64) -> bool {
        self.label == Some(*id)
    }
    fn tab_href(&self, tab: &str) -> String {
        format!("/inbox?tab={tab}&status={}", self.status)
    }
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn get_inbox(state: web::Data<AppState>, a: Authed, q: web::Query<ListQuery>) -> AppResult<HttpResponse> {
    let q = q.into_inner();
    let viewer = viewer(&state, &a).await?;
    let tab = match Tab::parse(&q.tab) {
        Some(Tab::All) if !viewer.sees_all => Tab::Mine,
        Some(t) => t,
        None => Tab::Mine,
    };
    let status = q.status.clone().unwrap_or_else(|| "open".into());
    let filter = Filter {
        tab: Some(tab),
        status: status.clone(),
        number: q.number.clone(),
        label: q.label,
        unread: q.unread == "1",
        contact: None,
        before: conversations::parse_cursor(&q.before),
    };
    let term = q.q.trim().to_string();
    let me = a.user.id;
    let (rows, hits, tabs, numbers, labels, available) = state
        .db
        .read(move |c| {
            let (rows, hits) = if term.is_empty() {
                (conversations::list(c, &viewer, &filter, PAGE + 1)?, Vec::new())
            } else {
                (Vec::new(), search::search(c, &viewer, &term)?)
            };
            let numbers = crate::whatsapp::numbers::repo::choices(c)?;
            Ok((
                rows,
                hits,
                conversations::unread_tabs(c, &viewer)?,
                numbers,
                catalog::labels(c)?,
                crate::auth::repo::is_available(c, me)?,
            ))
        })
        .await?;
    let mut rows = rows;
    let next = if rows.len() as i64 > PAGE {
        rows.truncate(PAGE as usize);
        rows.last().map(Row::cursor)
    } else {
        None
    };
    let base_query = format!(
        "tab={}&status={}&number={}&label={}&unread={}",
        tab.as_str(),
        enc(&status),
        enc(&q.number),
        q.label.map(|l| l.to_string()).unwrap_or_default(),
        if q.unread == "1" { "1" } else { "" }
    );
    if q.fragment == "rows" {
        return ok_page(&RowsFragment {
            ctx: a.ctx,
            rows,
            next,
            base_query,
            unread_mine: tabs.0,
            unread_unassigned: tabs.1,
        });
    }
    ok_page(&ListPage {
        ctx: a.ctx,
        tab,
        show_all_tab: viewer.sees_all,
        status,
        number: q.number,
        label: q.label,
        unread: q.unread == "1",
        q: q.q,
        rows,
        hits,
        next,
        unread_mine: tabs.0,
        unread_unassigned: tabs.1,
        numbers,
        labels,
        available,
        base_query,
    })
}

#[derive(Deserialize)]
pub struct AvailabilityForm {
    #[serde(default)]
    available: String,
}

async fn post_availability(
    state: web::Data<AppState>,
    a: Authed,
    form: web::Form<AvailabilityForm>,
) -> AppResult<HttpResponse> {
    let (id, on) = (a.user.id, form.available == "1");
    state
        .db
        .write(move |c| Ok(crate::auth::repo::set_available(c, id, on)?))
        .await?;
    Ok(see_other("/inbox"))
}

// ---- a conversation -----------------------------------------------------------------

#[derive(Deserialize, Default)]
pub struct ConversationQuery {
    #[serde(default, deserialize_with = "crate::web::empty_as_none")]
    before: Option<i64>,
    #[serde(default, deserialize_with = "crate::web::empty_as_none")]
    reply_to: Option<i64>,
    #[serde(default)]
    template: String,
    #[serde(default)]
    fragment: String,
}

#[derive(askama::Template)]
#[template(path = "inbox/conversation.html")]
struct ConversationPage {
    ctx: RequestCtx,
    conv: Row,
    contact_labels: Vec<LabelTag>,
    items: Vec<Item>,
    older: Option<i64>,
    window_left: i64,
    window_deadline: i64,
    reply_to: Option<thread::Message>,
    templates: Vec<Template>,
    chosen: Option<Template>,
    params: Vec<String>,
    preview: String,
    canned: Vec<(String, String)>,
    agents: Vec<Agent>,
    labels: Vec<LabelTag>,
    form_error: Option<&'static str>,
    draft: String,
    note_draft: String,
}

#[derive(askama::Template)]
#[template(path = "inbox/_thread.html")]
struct ThreadFragment {
    ctx: RequestCtx,
    conv: Row,
    items: Vec<Item>,
    older: Option<i64>,
}

impl ConversationPage {
    fn is_label_on(&self, id: &i64) -> bool {
        self.conv.labels.iter().any(|l| l.id == *id)
    }
    fn contact_has(&self, id: &i64) -> bool {
        self.contact_labels.iter().any(|l| l.id == *id)
    }
    fn assigned_to(&self, id: &i64) -> bool {
        self.conv.assignee_id == Some(*id)
    }
    fn is_mine(&self) -> bool {
        self.ctx.user().is_some_and(|u| Some(u.id) == self.conv.assignee_id)
    }
    fn window_text(&self) -> String {
        let h = self.window_left / 3600;
        let m = (self.window_left % 3600) / 60;
        self.ctx
            .tf("inbox.window_open", &[("h", &h.to_string()), ("m", &m.to_string())])
    }
}

/// What the composer had when a form comes back with a problem.
#[derive(Default)]
struct Draft {
    error: Option<&'static str>,
    text: String,
    note: String,
    template: String,
    params: Vec<String>,
    reply_to: Option<i64>,
}

/// The user opens a conversation (the page, or its live refresh): everything up to the
/// newest message is read for them, and Meta gets the read receipt when the admin wants
/// blue ticks. 404 when the user may not see it.
async fn open(state: &AppState, user: crate::auth::User, id: i64, now: i64) -> AppResult<Viewer> {
    let (viewer, receipt) = state
        .db
        .write(move |c| {
            let viewer = Viewer::for_user(c, &user)?;
            viewer.check(c, id)?;
            let newest_unread = conversations::mark_read(c, id, user.id)?;
            let receipts_on = crate::settings::inbox_settings(c)?.read_receipts;
            if let (true, Some(w)) = (receipts_on, &newest_unread) {
                reply::queue_read_receipt(c, id, w, now)?;
            }
            Ok((viewer, receipts_on && newest_unread.is_some()))
        })
        .await?;
    if receipt {
        state.outbox_bell.ring();
    }
    Ok(viewer)
}

async fn conversation_page(
    state: &AppState,
    a: Authed,
    id: i64,
    before: Option<i64>,
    draft: Draft,
) -> AppResult<ConversationPage> {
    let (user, now) = (a.user.clone(), state.now());
    // Opening marks it read (and queues the blue ticks when the admin wants them).
    let viewer = open(state, user, id, now).await?;
    let reply_to_id = draft.reply_to;
    let (conv, (items, older), contact_labels, templates, canned, agents, labels, reply_to) = state
        .db
        .read(move |c| {
            let conv = conversations::get(c, &viewer, id)?.ok_or(AppError::NotFound)?;
            let templates = match conversations::route(c, id)? {
                Some(r) => crate::whatsapp::templates::list_approved(c, &r.waba_id)?,
                None => Vec::new(),
            };
            let reply_to = match reply_to_id {
                Some(m) => thread::message(c, id, m)?.filter(|x| x.wamid.is_some()),
                None => None,
            };
            Ok((
                conv.clone(),
                thread::load(c, id, before)?,
                catalog::contact_labels(c, conv.contact_id)?,
                templates,
                catalog::canned(c)?,
                crate::auth::repo::agents(c)?,
                catalog::labels(c)?,
                reply_to,
            ))
        })
        .await?;
    let phone = conv.phone.clone().unwrap_or_default();
    let canned = canned
        .iter()
        .map(|x: &Canned| (x.shortcut.clone(), x.fill(&conv.contact_name, &phone)))
        .collect();
    let chosen = templates.iter().find(|t| t.key() == draft.template).cloned();
    let mut params = draft.params;
    if let Some(t) = &chosen {
        params.resize(usize::try_from(t.param_count).unwrap_or(0), String::new());
    }
    let preview = chosen
        .as_ref()
        .map(|t| reply::fill_template(&t.body_text, &params))
        .unwrap_or_default();
    let window_left = super::window_left(conv.last_inbound_at, now);
    Ok(ConversationPage {
        ctx: a.ctx,
        window_deadline: conv.last_inbound_at.map(|t| t + 24 * 3600).unwrap_or(0),
        conv,
        contact_labels,
        items,
        older,
        window_left,
        reply_to,
        templates,
        chosen,
        params,
        preview,
        canned,
        agents,
        labels,
        form_error: draft.error,
        draft: draft.text,
        note_draft: draft.note,
    })
}

async fn get_conversation(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<i64>,
    q: web::Query<ConversationQuery>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let q = q.into_inner();
    if q.fragment == "thread" {
        let viewer = open(&state, a.user.clone(), id, state.now()).await?;
        let (conv, (items, older)) = state
            .db
            .read(move |c| {
                let conv = conversations::get(c, &viewer, id)?.ok_or(AppError::NotFound)?;
                Ok((conv, thread::load(c, id, None)?))
            })
            .await?;
        return ok_page(&ThreadFragment {
            ctx: a.ctx,
            conv,
            items,
            older,
        });
    }
    let draft = Draft {
        template: q.template,
        reply_to: q.reply_to,
        ..Draft::default()
    };
    ok_page(&conversation_page(&state, a, id, q.before, draft).await?)
}

fn back(id: i64) -> String {
    format!("/inbox/{id}")
}

#[derive(Deserialize)]
pub struct ReplyForm {
    #[serde(default)]
    body: String,
    #[serde(default, deserialize_with = "crate::web::empty_as_none")]
    reply_to: Option<i64>,
}

async fn post_reply(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<i64>,
    form: web::Form<ReplyForm>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let form = form.into_inner();
    let viewer = viewer(&state, &a).await?;
    let compose = Compose::Text {
        body: form.body.clone(),
        reply_to: form.reply_to,
    };
    match reply::send(&state, viewer, id, compose, Some(a.user.id), "agent").await? {
        Ok(_) => Ok(see_other(&back(id))),
        Err(key) => {
            let draft = Draft {
                error: Some(key),
                text: form.body,
                reply_to: form.reply_to,
                ..Draft::default()
            };
            crate::web::invalid_page(&conversation_page(&state, a, id, None, draft).await?)
        }
    }
}

async fn post_attach(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<i64>,
    payload: actix_multipart::Multipart,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let viewer = viewer(&state, &a).await?;
    // Refuse a conversation the user may not see before reading a 100 MB body.
    reply::route(&state, viewer, id).await?;
    let form = read_upload(payload).await?;
    let caption = form.caption.clone();
    let outcome = match form.file {
        None => Err("inbox.no_file"),
        Some((filename, mime, bytes)) => {
            let file = reply::Attachment {
                filename,
                mime,
                bytes,
                caption: form.caption,
                reply_to: form.reply_to,
            };
            reply::attach(&state, viewer, id, file, Some(a.user.id), "agent").await?
        }
    };
    match outcome {
        Ok(_) => Ok(see_other(&back(id))),
        Err(key) => {
            let draft = Draft {
                error: Some(key),
                text: caption,
                ..Draft::default()
            };
            crate::web::invalid_page(&conversation_page(&state, a, id, None, draft).await?)
        }
    }
}

/// The attachment form: one file (Meta's 100 MB document limit), a caption, reply-to.
struct Upload {
    file: Option<(String, String, Vec<u8>)>,
    caption: String,
    reply_to: Option<i64>,
}

async fn read_upload(mut payload: actix_multipart::Multipart) -> AppResult<Upload> {
    use futures_util::StreamExt;
    const MAX: usize = 100 * 1024 * 1024;
    let mut out = Upload {
        file: None,
        caption: String::new(),
        reply_to: None,
    };
    while let Some(field) = payload.next().await {
        let mut field = field.map_err(|_| AppError::BadRequest("error.bad_request"))?;
        let name = field.name().unwrap_or("").to_string();
        let filename = field.content_disposition().and_then(|d| d.get_filename()).map(|f| {
            f.chars()
                .filter(|c| !c.is_control() && *c != '/' && *c != '\\')
                .take(200)
                .collect::<String>()
        });
        let mime = field.content_type().map(|m| m.essence_str().to_string());
        let limit = if name == "file" { MAX } else { 8 * 1024 };
        let mut buf = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|_| AppError::BadRequest("error.bad_request"))?;
            if buf.len() + chunk.len() > limit {
                return Err(AppError::BadRequest("media.too_big"));
            }
            buf.extend_from_slice(&chunk);
        }
        match name.as_str() {
            "file" if !buf.is_empty() => {
                let filename = filename.filter(|f| !f.is_empty()).unwrap_or_else(|| "file".into());
                let mime = mime
                    .filter(|m| m != "application/octet-stream")
                    .unwrap_or_else(|| mime_guess::from_path(&filename).first_or_octet_stream().to_string());
                out.file = Some((filename, mime, buf));
            }
            "caption" => out.caption = String::from_utf8_lossy(&buf).trim().to_string(),
            "reply_to" => out.reply_to = String::from_utf8_lossy(&buf).trim().parse().ok(),
            _ => {}
        }
    }
    Ok(out)
}

#[derive(Deserialize)]
pub struct TemplateForm {
    #[serde(default)]
    template: String,
    #[serde(default)]
    action: String,
    #[serde(flatten)]
    rest: std::collections::HashMap<String, String>,
}

async fn post_template(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<i64>,
    form: web::Form<TemplateForm>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let form = form.into_inner();
    let mut params: Vec<(usize, String)> = form
        .rest
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("p")?.parse::<usize>().ok()?, v.trim().to_string())))
        .filter(|(i, _)| *i >= 1 && *i <= 20)
        .collect();
    params.sort();
    let params: Vec<String> = params.into_iter().map(|(_, v)| v).collect();
    let draft = |error| Draft {
        error,
        template: form.template.clone(),
        params: params.clone(),
        ..Draft::default()
    };
    if form.action != "send" {
        // "Preview" (or choosing a template without JavaScript): show it filled in.
        return ok_page(&conversation_page(&state, a, id, None, draft(None)).await?);
    }
    let Some((name, language)) = form.template.split_once('|') else {
        let page = conversation_page(&state, a, id, None, draft(Some("inbox.template_unknown"))).await?;
        return crate::web::invalid_page(&page);
    };
    let viewer = viewer(&state, &a).await?;
    let compose = Compose::Template {
        name: name.to_string(),
        language: language.to_string(),
        params: params.clone(),
    };
    match reply::send(&state, viewer, id, compose, Some(a.user.id), "agent").await? {
        Ok(_) => Ok(see_other(&back(id))),
        Err(key) => crate::web::invalid_page(&conversation_page(&state, a, id, None, draft(Some(key))).await?),
    }
}

#[derive(Deserialize)]
pub struct NoteForm {
    #[serde(default)]
    body: String,
}

async fn post_note(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<i64>,
    form: web::Form<NoteForm>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let body = form.into_inner().body;
    let b = body.clone();
    match manage::run(&state, By::user(&a), id, move |c, v, w, now| {
        manage::note(c, v, w, id, &b, now)
    })
    .await
    {
        Ok(_) => Ok(see_other(&back(id))),
        Err(AppError::BadRequest(key)) => {
            let draft = Draft {
                error: Some(key),
                note: body,
                ..Draft::default()
            };
            crate::web::invalid_page(&conversation_page(&state, a, id, None, draft).await?)
        }
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
pub struct AssignForm {
    /// A user id, `me`, or empty to unassign.
    #[serde(default)]
    assignee: String,
}

async fn post_assign(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<i64>,
    form: web::Form<AssignForm>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let to = match form.assignee.trim() {
        "" => None,
        "me" => Some(a.user.id),
        s => Some(
            s.parse::<i64>()
                .map_err(|_| AppError::BadRequest("inbox.no_such_agent"))?,
        ),
    };
    manage::run(&state, By::user(&a), id, move |c, v, w, now| {
        manage::assign(c, v, w, id, to, now)
    })
    .await?;
    Ok(see_other_flash(&format!("/inbox/{id}"), "flash.saved"))
}

#[derive(Deserialize)]
pub struct StatusForm {
    status: String,
    /// Snooze: `1h`, `4h`, `tomorrow`, `week`.
    #[serde(default)]
    snooze: String,
}

/// When a snooze preset ends, in the business's time zone (mornings at 09:00).
pub fn snooze_until(preset: &str, now: i64, tz: Option<chrono_tz::Tz>) -> Option<i64> {
    use chrono::{Datelike, Duration, TimeZone};
    let tz = tz.unwrap_or(chrono_tz::Asia::Jakarta);
    let local = tz.timestamp_opt(now, 0).single()?;
    let morning = |days: i64| {
        let d = local.date_naive() + Duration::days(days);
        tz.from_local_datetime(&d.and_hms_opt(9, 0, 0)?)
            .earliest()
            .map(|t| t.timestamp())
    };
    match preset {
        "1h" => Some(now + 3600),
        "4h" => Some(now + 4 * 3600),
        "tomorrow" => morning(1),
        "week" => morning(7 - i64::from(local.weekday().num_days_from_monday())),
        _ => None,
    }
}

async fn post_status(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<i64>,
    form: web::Form<StatusForm>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let form = form.into_inner();
    let tz = a.ctx.timezone;
    let until = snooze_until(&form.snooze, state.now(), tz);
    let status = form.status;
    manage::run(&state, By::user(&a), id, move |c, v, w, now| {
        manage::set_status(c, v, w, id, &status, until, now)
    })
    .await?;
    Ok(see_other_flash(&format!("/inbox/{id}"), "flash.saved"))
}

#[derive(Deserialize)]
pub struct LabelToggle {
    label_id: i64,
    #[serde(default)]
    on: String,
    /// `contact` labels the person instead of the conversation.
    #[serde(default)]
    target: String,
}

async fn post_conversation_label(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<i64>,
    form: web::Form<LabelToggle>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let form = form.into_inner();
    let (label, on, contact) = (form.label_id, form.on == "1", form.target == "contact");
    manage::run(&state, By::user(&a), id, move |c, v, w, now| {
        if contact {
            manage::contact_label(c, v, w, id, label, on, now)
        } else {
            manage::label(c, v, w, id, label, on, now)
        }
    })
    .await?;
    Ok(see_other(&format!("/inbox/{id}")))
}

// ---- labels and canned responses (supervisors and admins) ---------------------------

#[derive(askama::Template)]
#[template(path = "inbox/labels.html")]
struct LabelsPage {
    ctx: RequestCtx,
    labels: Vec<LabelTag>,
    error: Option<&'static str>,
    name: String,
}

impl LabelsPage {
    fn colors(&self) -> &'static [&'static str] {
        &catalog::COLORS
    }
}

async fn labels_page(
    state: &AppState,
    ctx: RequestCtx,
    error: Option<&'static str>,
    name: String,
) -> AppResult<LabelsPage> {
    let labels = state.db.read(|c| Ok(catalog::labels(c)?)).await?;
    Ok(LabelsPage {
        ctx,
        labels,
        error,
        name,
    })
}

async fn get_labels(state: web::Data<AppState>, a: Authed) -> AppResult<HttpResponse> {
    a.require(Role::Supervisor)?;
    ok_page(&labels_page(&state, a.ctx, None, String::new()).await?)
}

#[derive(Deserialize)]
pub struct LabelForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    color: String,
}

async fn post_labels(state: web::Data<AppState>, a: Authed, form: web::Form<LabelForm>) -> AppResult<HttpResponse> {
    a.require(Role::Supervisor)?;
    let form = form.into_inner();
    let name = form.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 40 {
        return crate::web::invalid_page(&labels_page(&state, a.ctx, Some("inbox.label_name"), name).await?);
    }
    let color = if catalog::COLORS.contains(&form.color.as_str()) {
        form.color
    } else {
        "grey".into()
    };
    let (actor, now, n) = (a.actor(), state.now(), name.clone());
    let created = state
        .db
        .write(move |c| {
            let id = catalog::create_label(c, &n, &color, now)?;
            if let Some(id) = id {
                audit::record(c, &actor, "label.create", &format!("label:{id}"), &n, now)?;
            }
            Ok(id)
        })
        .await?;
    match created {
        Some(_) => Ok(see_other_flash("/inbox/labels", "flash.saved")),
        None => crate::web::invalid_page(&labels_page(&state, a.ctx, Some("inbox.label_taken"), name).await?),
    }
}

async fn post_label_delete(state: web::Data<AppState>, a: Authed, path: web::Path<i64>) -> AppResult<HttpResponse> {
    a.require(Role::Supervisor)?;
    let (id, actor, now) = (path.into_inner(), a.actor(), state.now());
    state
        .db
        .write(move |c| {
            let l = catalog::label(c, id)?.ok_or(AppError::NotFound)?;
            catalog::delete_label(c, id)?;
            audit::record(c, &actor, "label.delete", &format!("label:{id}"), &l.name, now)?;
            Ok(())
        })
        .await?;
    Ok(see_other_flash("/inbox/labels", "flash.saved"))
}

#[derive(askama::Template)]
#[template(path = "inbox/canned.html")]
struct CannedPage {
    ctx: RequestCtx,
    canned: Vec<Canned>,
    error: Option<&'static str>,
    shortcut: String,
    body: String,
}

async fn canned_page(
    state: &AppState,
    ctx: RequestCtx,
    error: Option<&'static str>,
    shortcut: String,
    body: String,
) -> AppResult<CannedPage> {
    let canned = state.db.read(|c| Ok(catalog::canned(c)?)).await?;
    Ok(CannedPage {
        ctx,
        canned,
        error,
        shortcut,
        body,
    })
}

async fn get_canned(state: web::Data<AppState>, a: Authed) -> AppResult<HttpResponse> {
    a.require(Role::Supervisor)?;
    ok_page(&canned_page(&state, a.ctx, None, String::new(), String::new()).await?)
}

#[derive(Deserialize)]
pub struct CannedForm {
    #[serde(default)]
    shortcut: String,
    #[serde(default)]
    body: String,
}

async fn post_canned(state: web::Data<AppState>, a: Authed, form: web::Form<CannedForm>) -> AppResult<HttpResponse> {
    a.require(Role::Supervisor)?;
    let form = form.into_inner();
    let shortcut = form.shortcut.trim().trim_start_matches('/').to_lowercase();
    let body = form.body.trim().to_string();
    let valid_shortcut = !shortcut.is_empty()
        && shortcut.len() <= 30
        && shortcut
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let error = if !valid_shortcut {
        Some("inbox.shortcut_invalid")
    } else if body.is_empty() || body.chars().count() > reply::MAX_TEXT {
        Some("inbox.canned_body")
    } else {
        None
    };
    if let Some(e) = error {
        return crate::web::invalid_page(&canned_page(&state, a.ctx, Some(e), shortcut, body).await?);
    }
    let (actor, now, s, b) = (a.actor(), state.now(), shortcut.clone(), body.clone());
    let created = state
        .db
        .write(move |c| {
            let id = catalog::create_canned(c, &s, &b, now)?;
            if let Some(id) = id {
                audit::record(c, &actor, "canned.create", &format!("canned:{id}"), &s, now)?;
            }
            Ok(id)
        })
        .await?;
    match created {
        Some(_) => Ok(see_other_flash("/inbox/canned", "flash.saved")),
        None => {
            crate::web::invalid_page(&canned_page(&state, a.ctx, Some("inbox.shortcut_taken"), shortcut, body).await?)
        }
    }
}

async fn post_canned_delete(state: web::Data<AppState>, a: Authed, path: web::Path<i64>) -> AppResult<HttpResponse> {
    a.require(Role::Supervisor)?;
    let (id, actor, now) = (path.into_inner(), a.actor(), state.now());
    state
        .db
        .write(move |c| {
            let s = catalog::delete_canned(c, id)?.ok_or(AppError::NotFound)?;
            audit::record(c, &actor, "canned.delete", &format!("canned:{id}"), &s, now)?;
            Ok(())
        })
        .await?;
    Ok(see_other_flash("/inbox/canned", "flash.saved"))
}

// ---- inbox settings (admins) --------------------------------------------------------

#[derive(askama::Template)]
#[template(path = "admin/inbox.html")]
struct SettingsPage {
    ctx: RequestCtx,
    s: InboxSettings,
}

async fn get_settings(state: web::Data<AppState>, Admin(a): Admin) -> AppResult<HttpResponse> {
    let s = state.db.read(|c| Ok(crate::settings::inbox_settings(c)?)).await?;
    ok_page(&SettingsPage { ctx: a.ctx, s })
}

#[derive(Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    agents_see_all: String,
    #[serde(default)]
    read_receipts: String,
    #[serde(default)]
    auto_assign: String,
    #[serde(default)]
    assign_cap: String,
}

async fn post_settings(
    state: web::Data<AppState>,
    Admin(a): Admin,
    form: web::Form<SettingsForm>,
) -> AppResult<HttpResponse> {
    let s = InboxSettings {
        agents_see_all: form.agents_see_all == "1",
        read_receipts: form.read_receipts == "1",
        auto_assign: form.auto_assign == "1",
        assign_cap: form
            .assign_cap
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or(AppError::BadRequest("inbox.cap_invalid"))?,
    };
    let (actor, now) = (a.actor(), state.now());
    state
        .db
        .write(move |c| {
            crate::settings::set_inbox_settings(c, &s)?;
            let details = serde_json::to_string(&s).unwrap_or_default();
            audit::record(c, &actor, "settings.inbox", "inbox", &details, now)?;
            Ok(())
        })
        .await?;
    Ok(see_other_flash("/admin/inbox", "flash.saved"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snooze_presets_land_in_the_business_morning() {
        // 2026-11-24 15:00 in Jakarta (UTC+7) = 08:00 UTC.
        let now = 1_795_478_400 + 8 * 3600;
        let tz = Some(chrono_tz::Asia::Jakarta);
        assert_eq!(snooze_until("1h", now, tz), Some(now + 3600));
        let tomorrow = snooze_until("tomorrow", now, tz).unwrap();
        assert_eq!((tomorrow + 7 * 3600) % 86_400, 9 * 3600);
        assert!(tomorrow > now && tomorrow - now < 86_400);
        assert_eq!(snooze_until("forever", now, tz), None);
    }
}
