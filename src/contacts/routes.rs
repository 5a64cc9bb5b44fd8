//! Contact pages (list, search, add, view, edit; delete for admins, audited) and the
//! contacts part of the REST API.

use super::{Contact, default_region, normalize_phone};
use crate::api::ApiCaller;
use crate::app::AppState;
use crate::audit;
use crate::auth::Role;
use crate::error::{AppError, AppResult};
use crate::web::{Authed, FormErrors, RequestCtx, invalid_page, ok_page, see_other_flash};
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use std::collections::BTreeMap;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/contacts")
            .route(web::get().to(get_contacts))
            .route(web::post().to(post_contacts)),
    )
    .service(
        web::resource("/contacts/{id}")
            .route(web::get().to(get_contact))
            .route(web::post().to(post_contact)),
    )
    .service(web::resource("/contacts/{id}/delete").route(web::post().to(post_delete)))
    .service(web::resource("/contacts/{id}/conversation").route(web::post().to(post_conversation)))
    .service(
        web::resource("/api/v1/contacts")
            .route(web::get().to(api_list))
            .route(web::post().to(api_create)),
    )
    .service(
        web::resource("/api/v1/contacts/{id}")
            .route(web::get().to(api_get))
            .route(web::patch().to(api_update)),
    );
}

const PAGE: i64 = 50;

/// What a form or an API call gives for a contact.
#[derive(Deserialize, Default, Clone)]
pub struct ContactInput {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub phone: String,
    /// Form: `key=value` lines. API: use `attributes`.
    #[serde(default)]
    pub attributes_text: String,
    #[serde(default)]
    pub attributes: Option<BTreeMap<String, String>>,
}

struct Valid {
    name: String,
    phone: Option<String>,
    attributes: BTreeMap<String, String>,
}

fn region(state: &AppState) -> String {
    default_region(state.business().map(|b| b.phone).as_deref())
}

fn parse_attributes(text: &str) -> Result<BTreeMap<String, String>, &'static str> {
    let mut out = BTreeMap::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (k, v) = line.split_once('=').ok_or("contacts.attributes_invalid")?;
        let k = k.trim();
        if k.is_empty() || k.len() > 50 || v.len() > 500 {
            return Err("contacts.attributes_invalid");
        }
        out.insert(k.to_string(), v.trim().to_string());
    }
    Ok(out)
}

fn validate(input: &ContactInput, region: &str, phone_required: bool, errors: &mut FormErrors) -> Valid {
    let name = input.name.trim().to_string();
    if name.chars().count() > 100 {
        errors.add("name", "form.name_required");
    }
    let phone = match input.phone.trim() {
        "" if phone_required => {
            errors.add("phone", "contacts.phone_invalid");
            None
        }
        "" => None,
        p => match normalize_phone(p, region) {
            Ok(e164) => Some(e164),
            Err(k) => {
                errors.add("phone", k);
                None
            }
        },
    };
    let attributes = match &input.attributes {
        Some(map)
            if map.len() <= 50
                && map
                    .iter()
                    .all(|(k, v)| !k.is_empty() && k.len() <= 50 && v.len() <= 500) =>
        {
            map.clone()
        }
        Some(_) => {
            errors.add("attributes_text", "contacts.attributes_invalid");
            BTreeMap::new()
        }
        None => parse_attributes(&input.attributes_text).unwrap_or_else(|k| {
            errors.add("attributes_text", k);
            BTreeMap::new()
        }),
    };
    Valid {
        name,
        phone,
        attributes,
    }
}

fn attributes_text(c: &Contact) -> String {
    c.attributes
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

// ---- pages ------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "contacts/list.html")]
struct ListPage {
    ctx: RequestCtx,
    contacts: Vec<Contact>,
    q: String,
    next: Option<i64>,
    form: ContactInput,
    errors: FormErrors,
}

#[derive(Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    after: Option<i64>,
}

async fn list_page(
    state: &AppState,
    ctx: RequestCtx,
    q: String,
    after: i64,
    form: ContactInput,
    errors: FormErrors,
) -> AppResult<ListPage> {
    let q2 = q.clone();
    let contacts = state
        .db
        .read(move |c| Ok(super::search(c, Some(&q2), after, PAGE + 1)?))
        .await?;
    let next = (contacts.len() as i64 > PAGE)
        .then(|| contacts.get(PAGE as usize - 1).map(|c| c.id))
        .flatten();
    let contacts = contacts.into_iter().take(PAGE as usize).collect();
    Ok(ListPage {
        ctx,
        contacts,
        q,
        next,
        form,
        errors,
    })
}

async fn get_contacts(state: web::Data<AppState>, a: Authed, q: web::Query<ListQuery>) -> AppResult<HttpResponse> {
    let q = q.into_inner();
    ok_page(
        &list_page(
            &state,
            a.ctx,
            q.q.unwrap_or_default(),
            q.after.unwrap_or(0),
            ContactInput::default(),
            FormErrors::default(),
        )
        .await?,
    )
}

async fn post_contacts(
    state: web::Data<AppState>,
    a: Authed,
    form: web::Form<ContactInput>,
) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    match create(&state, &a.actor(), &form).await? {
        Ok(id) => Ok(see_other_flash(&format!("/contacts/{id}"), "flash.saved")),
        Err(errors) => invalid_page(&list_page(&state, a.ctx, String::new(), 0, form, errors).await?),
    }
}

/// Validates and stores a new contact; field errors come back for the form or the API.
async fn create(state: &AppState, actor: &audit::Actor, input: &ContactInput) -> AppResult<Result<i64, FormErrors>> {
    let mut errors = FormErrors::default();
    let v = validate(input, &region(state), true, &mut errors);
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    let (now, actor) = (state.now(), actor.clone());
    let phone = v.phone.clone().unwrap_or_default();
    let id = state
        .db
        .write(move |c| {
            if super::phone_taken(c, &phone, None)? {
                return Ok(None);
            }
            let id = super::create(c, &v.name, &phone, &v.attributes, now)?;
            audit::record(c, &actor, "contact.create", &format!("contact:{id}"), "", now)?;
            Ok(Some(id))
        })
        .await?;
    Ok(id.ok_or_else(|| {
        let mut e = FormErrors::default();
        e.add("phone", "contacts.phone_taken");
        e
    }))
}

#[derive(Template)]
#[template(path = "contacts/contact.html")]
struct ContactPage {
    ctx: RequestCtx,
    contact: Contact,
    form: ContactInput,
    errors: FormErrors,
    messages: i64,
    conversations: Vec<crate::inbox::conversations::Row>,
    labels: Vec<crate::inbox::conversations::LabelTag>,
    numbers: Vec<(String, String)>,
}

/// The contact's labels, its conversations the user may see, and the numbers a new
/// conversation can start from.
type Extras = (
    Vec<crate::inbox::conversations::Row>,
    Vec<crate::inbox::conversations::LabelTag>,
    Vec<(String, String)>,
);

async fn extras(state: &AppState, a: &Authed, id: i64) -> AppResult<Extras> {
    let user = a.user.clone();
    state
        .db
        .read(move |c| {
            let viewer = crate::inbox::access::Viewer::for_user(c, &user)?;
            let filter = crate::inbox::conversations::Filter {
                contact: Some(id),
                ..Default::default()
            };
            Ok((
                crate::inbox::conversations::list(c, &viewer, &filter, 50)?,
                crate::inbox::catalog::list_contact_labels(c, id)?,
                crate::whatsapp::numbers::repo::choices(c)?,
            ))
        })
        .await
}

async fn load(state: &AppState, id: i64) -> AppResult<(Contact, i64)> {
    state
        .db
        .read(move |c| {
            let contact = super::find(c, id)?.ok_or(AppError::NotFound)?;
            Ok((contact, crate::inbox::count_messages_of_contact(c, id)?))
        })
        .await
}

async fn get_contact(state: web::Data<AppState>, a: Authed, path: web::Path<i64>) -> AppResult<HttpResponse> {
    let (contact, messages) = load(&state, path.into_inner()).await?;
    let (conversations, labels, numbers) = extras(&state, &a, contact.id).await?;
    let form = ContactInput {
        name: contact.name.clone(),
        phone: contact.phone.clone().unwrap_or_default(),
        attributes_text: attributes_text(&contact),
        attributes: None,
    };
    ok_page(&ContactPage {
        ctx: a.ctx,
        contact,
        form,
        errors: FormErrors::default(),
        messages,
        conversations,
        labels,
        numbers,
    })
}

/// Validates and applies changes; field errors come back for the form or the API.
async fn update(
    state: &AppState,
    actor: &audit::Actor,
    id: i64,
    input: &ContactInput,
) -> AppResult<Result<(), FormErrors>> {
    let mut errors = FormErrors::default();
    let v = validate(input, &region(state), false, &mut errors);
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    let (now, actor) = (state.now(), actor.clone());
    let ok = state
        .db
        .write(move |c| {
            super::find(c, id)?.ok_or(AppError::NotFound)?;
            if let Some(p) = &v.phone {
                if super::phone_taken(c, p, Some(id))? {
                    return Ok(false);
                }
            }
            super::update(c, id, &v.name, v.phone.as_deref(), &v.attributes, now)?;
            audit::record(c, &actor, "contact.update", &format!("contact:{id}"), "", now)?;
            Ok(true)
        })
        .await?;
    if ok {
        Ok(Ok(()))
    } else {
        let mut e = FormErrors::default();
        e.add("phone", "contacts.phone_taken");
        Ok(Err(e))
    }
}

async fn post_contact(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<i64>,
    form: web::Form<ContactInput>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let form = form.into_inner();
    match update(&state, &a.actor(), id, &form).await? {
        Ok(()) => Ok(see_other_flash(&format!("/contacts/{id}"), "flash.saved")),
        Err(errors) => {
            let (contact, messages) = load(&state, id).await?;
            let (conversations, labels, numbers) = extras(&state, &a, id).await?;
            invalid_page(&ContactPage {
                ctx: a.ctx,
                contact,
                form,
                errors,
                messages,
                conversations,
                labels,
                numbers,
            })
        }
    }
}

#[derive(Deserialize)]
pub struct StartForm {
    #[serde(default)]
    number: String,
}

/// Opens (or finds) the contact's conversation on a number, to write first with a
/// template; it starts unassigned, like one a customer opened.
async fn post_conversation(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<i64>,
    form: web::Form<StartForm>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let (number, now, actor) = (form.into_inner().number, state.now(), a.actor());
    let conv = state
        .db
        .write(move |c| {
            super::find(c, id)?.ok_or(AppError::NotFound)?;
            if !crate::whatsapp::numbers::repo::phone_number_id_taken(c, &number, None)? {
                return Err(AppError::BadRequest("inbox.no_number"));
            }
            let conv = crate::inbox::conversations::open_for_contact(c, &number, id, now)?;
            audit::record(
                c,
                &actor,
                "conversation.open",
                &format!("conversation:{conv}"),
                &format!("contact:{id}"),
                now,
            )?;
            Ok(conv)
        })
        .await?;
    Ok(crate::web::see_other(&format!("/inbox/{conv}")))
}

/// Deleting is for admins, and audited (the privacy erasure path arrives later).
async fn post_delete(state: web::Data<AppState>, a: Authed, path: web::Path<i64>) -> AppResult<HttpResponse> {
    a.require(Role::Admin)?;
    let id = path.into_inner();
    let (now, actor) = (state.now(), a.actor());
    state
        .db
        .write(move |c| {
            let contact = super::find(c, id)?.ok_or(AppError::NotFound)?;
            super::delete(c, id)?;
            let who = contact.phone.or(contact.bsuid).unwrap_or_default();
            audit::record(c, &actor, "contact.delete", &format!("contact:{id} {who}"), "", now)?;
            Ok(())
        })
        .await?;
    Ok(see_other_flash("/contacts", "flash.contact_deleted"))
}

// ---- API ------------------------------------------------------------------------------

#[derive(Deserialize)]
pub struct ApiListQuery {
    q: Option<String>,
    cursor: Option<i64>,
    limit: Option<i64>,
}

fn field_errors(ctx_locale: crate::i18n::Locale, errors: &FormErrors) -> HttpResponse {
    let fields: serde_json::Map<String, serde_json::Value> = errors
        .0
        .iter()
        .map(|(f, k)| ((*f).to_string(), serde_json::json!(crate::i18n::t(ctx_locale, k))))
        .collect();
    let message = errors
        .0
        .first()
        .map(|(_, k)| crate::i18n::t(ctx_locale, k))
        .unwrap_or("");
    HttpResponse::UnprocessableEntity()
        .json(serde_json::json!({"error": {"code": "invalid", "message": message, "fields": fields}}))
}

async fn api_list(
    state: web::Data<AppState>,
    caller: ApiCaller,
    q: web::Query<ApiListQuery>,
) -> AppResult<HttpResponse> {
    caller.require(Role::Agent)?;
    let q = q.into_inner();
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let (after, term) = (q.cursor.unwrap_or(0), q.q);
    let found = state
        .db
        .read(move |c| Ok(super::search(c, term.as_deref(), after, limit + 1)?))
        .await?;
    let more = found.len() as i64 > limit;
    let data: Vec<Contact> = found.into_iter().take(usize::try_from(limit).unwrap_or(50)).collect();
    let next = if more { data.last().map(|c| c.id) } else { None };
    Ok(HttpResponse::Ok().json(serde_json::json!({"data": data, "next_cursor": next})))
}

async fn api_get(state: web::Data<AppState>, caller: ApiCaller, path: web::Path<i64>) -> AppResult<HttpResponse> {
    caller.require(Role::Agent)?;
    let (contact, _) = load(&state, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(contact))
}

async fn api_create(
    state: web::Data<AppState>,
    caller: ApiCaller,
    req: actix_web::HttpRequest,
    body: web::Json<ContactInput>,
) -> AppResult<HttpResponse> {
    caller.require(Role::Agent)?;
    let ip = req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default();
    match create(&state, &caller.actor(&ip), &body).await? {
        Ok(id) => {
            let (contact, _) = load(&state, id).await?;
            Ok(HttpResponse::Created().json(contact))
        }
        Err(errors) => Ok(field_errors(crate::i18n::Locale::En, &errors)),
    }
}

/// `PATCH`: only the fields given change.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactPatch {
    name: Option<String>,
    phone: Option<String>,
    attributes: Option<BTreeMap<String, String>>,
}

async fn api_update(
    state: web::Data<AppState>,
    caller: ApiCaller,
    req: actix_web::HttpRequest,
    path: web::Path<i64>,
    body: web::Json<ContactPatch>,
) -> AppResult<HttpResponse> {
    caller.require(Role::Agent)?;
    let id = path.into_inner();
    let ip = req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default();
    let (current, _) = load(&state, id).await?;
    let patch = body.into_inner();
    let input = ContactInput {
        name: patch.name.unwrap_or(current.name),
        phone: patch.phone.unwrap_or_else(|| current.phone.unwrap_or_default()),
        attributes_text: String::new(),
        attributes: Some(patch.attributes.unwrap_or(current.attributes)),
    };
    match update(&state, &caller.actor(&ip), id, &input).await? {
        Ok(()) => Ok(HttpResponse::Ok().json(load(&state, id).await?.0)),
        Err(errors) => Ok(field_errors(crate::i18n::Locale::En, &errors)),
    }
}
