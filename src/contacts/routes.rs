//! Contact pages (list, search, filter by consent, add, view, edit; delete for admins,
//! audited), a contact's consent log and the agent's "as told by the person" change,
//! the admins' opt-out keyword settings, and starting a conversation with a contact.
//! The API's contact routes are in `api::contacts`.

use super::consent::{self, Source, State};
use super::optout::{self, OptOutSettings, SettingsInput};
use super::service::{self, ConsentInput, ConsentRecorded, ContactInput};
use super::{Contact, default_region};
use crate::app::AppState;
use crate::audit;
use crate::auth::Role;
use crate::error::{AppError, AppResult};
use crate::inbox::access::Viewer;
use crate::web::{Admin, Authed, FormErrors, RequestCtx, invalid_page, ok_page, see_other_flash};
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // Before `/contacts/{id}`, which would take `/contacts/import` for a contact id.
    super::import::routes::configure(cfg);
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
    .service(web::resource("/contacts/{id}/consent").route(web::post().to(post_consent)))
    .service(
        web::resource("/admin/consent")
            .route(web::get().to(get_opt_out))
            .route(web::post().to(post_opt_out)),
    )
    .service(web::resource("/contacts/{id}/conversation").route(web::post().to(post_conversation)));
}

const PAGE: i64 = 50;

/// The region for phones typed without a country code: the business's (see
/// `default_region`); the pages and the API both use it.
pub(crate) fn region(state: &AppState) -> String {
    default_region(state.business().map(|b| b.phone).as_deref())
}

// ---- pages ------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "contacts/list.html")]
struct ListPage {
    ctx: RequestCtx,
    contacts: Vec<Contact>,
    q: String,
    /// The marketing consent filter (`opted_in`, `opted_out`, `unknown`, or empty).
    consent: String,
    /// The label filter (a label name), and the labels to choose from.
    label: String,
    labels: Vec<crate::inbox::conversations::LabelTag>,
    next: Option<i64>,
    form: ContactInput,
    errors: FormErrors,
}

#[derive(Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    label: Option<String>,
    after: Option<i64>,
    consent: Option<String>,
}

impl ListPage {
    /// The "more" link: the next page of the same search and filter.
    #[expect(clippy::trivially_copy_pass_by_ref, reason = "the template passes a reference")]
    fn next_href(&self, after: &i64) -> String {
        let q: String = url::form_urlencoded::byte_serialize(self.q.as_bytes()).collect();
        let label: String = url::form_urlencoded::byte_serialize(self.label.as_bytes()).collect();
        format!("/contacts?after={after}&q={q}&label={label}&consent={}", self.consent)
    }
}

/// What the list is narrowed by, as the page's query gave it.
#[derive(Default)]
struct Shown {
    q: String,
    label: String,
    marketing: Option<State>,
}

async fn list_page(
    state: &AppState,
    ctx: RequestCtx,
    user: crate::auth::User,
    shown: Shown,
    after: i64,
    form: ContactInput,
    errors: FormErrors,
) -> AppResult<ListPage> {
    let Shown { q, label, marketing } = shown;
    let (q2, l2) = (q.clone(), label.clone());
    let (contacts, labels) = state
        .db
        .read(move |c| {
            let scope = Viewer::for_user(c, &user)?.contact_scope();
            let filter = super::ListFilter {
                q: Some(&q2),
                label: Some(&l2),
                marketing,
            };
            Ok((
                super::search(c, &scope, &filter, after, PAGE + 1)?,
                crate::inbox::catalog::list_labels(c)?,
            ))
        })
        .await?;
    let next = (contacts.len() as i64 > PAGE)
        .then(|| contacts.get(PAGE as usize - 1).map(|c| c.id))
        .flatten();
    let contacts = contacts.into_iter().take(PAGE as usize).collect();
    Ok(ListPage {
        ctx,
        contacts,
        q,
        consent: marketing.map(|m| m.as_str().to_string()).unwrap_or_default(),
        label,
        labels,
        next,
        form,
        errors,
    })
}

async fn get_contacts(state: web::Data<AppState>, a: Authed, q: web::Query<ListQuery>) -> AppResult<HttpResponse> {
    let q = q.into_inner();
    let marketing = q.consent.as_deref().and_then(State::parse);
    ok_page(
        &list_page(
            &state,
            a.ctx,
            a.user,
            Shown {
                q: q.q.unwrap_or_default(),
                label: q.label.unwrap_or_default(),
                marketing,
            },
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
    let (region, actor, now, input) = (region(&state), a.actor(), state.now(), form.clone());
    let created = state
        .db
        .write(move |c| Ok(service::create(c, &region, &actor, &input, now)?))
        .await?;
    match created {
        Ok(contact) => Ok(see_other_flash(&format!("/contacts/{}", contact.id), "flash.saved")),
        Err(errors) => invalid_page(&list_page(&state, a.ctx, a.user, Shown::default(), 0, form, errors).await?),
    }
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
    /// The consent log, newest first.
    log: Vec<consent::Entry>,
    consent_form: ConsentInput,
    consent_errors: FormErrors,
    /// A legal hold keeps everything about the contact from retention and erasure.
    hold: Option<crate::privacy::retention::Hold>,
}

impl ContactPage {
    #[expect(clippy::unused_self, reason = "the template calls it as a method")]
    fn states(&self) -> [State; 2] {
        [State::OptedIn, State::OptedOut]
    }
}

/// The contact's labels, its conversations the user may see, and the numbers a new
/// conversation can start from.
type Extras = (
    Vec<crate::inbox::conversations::Row>,
    Vec<crate::inbox::conversations::LabelTag>,
    Vec<(String, String)>,
    Option<crate::privacy::retention::Hold>,
);

async fn extras(state: &AppState, a: &Authed, id: i64) -> AppResult<Extras> {
    let user = a.user.clone();
    Ok(state
        .db
        .read(move |c| {
            let viewer = Viewer::for_user(c, &user)?;
            let filter = crate::inbox::conversations::Filter {
                contact: Some(id),
                ..Default::default()
            };
            Ok((
                crate::inbox::conversations::list(c, &viewer, &filter, 50)?,
                crate::inbox::catalog::list_contact_labels(c, id)?,
                crate::whatsapp::numbers::repo::choices(c)?,
                crate::privacy::retention::hold_of(c, id)?,
            ))
        })
        .await?)
}

/// The contact (404 unless the user may see it), its message count and consent log.
async fn load(state: &AppState, user: &crate::auth::User, id: i64) -> AppResult<(Contact, i64, Vec<consent::Entry>)> {
    let user = user.clone();
    Ok(state
        .db
        .read(move |c| {
            let contact = service::get(c, &Viewer::for_user(c, &user)?.contact_scope(), id)?;
            Ok((
                contact,
                crate::inbox::count_messages_of_contact(c, id)?,
                consent::log(c, id)?,
            ))
        })
        .await?)
}

async fn get_contact(state: web::Data<AppState>, a: Authed, path: web::Path<i64>) -> AppResult<HttpResponse> {
    let (contact, messages, log) = load(&state, &a.user, path.into_inner()).await?;
    let (conversations, labels, numbers, hold) = extras(&state, &a, contact.id).await?;
    let form = ContactInput {
        name: contact.name.clone(),
        phone: contact.phone.clone().unwrap_or_default(),
        attributes_text: service::attributes_text(&contact),
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
        hold,
        log,
        consent_form: ConsentInput::default(),
        consent_errors: FormErrors::default(),
    })
}

async fn post_contact(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<i64>,
    form: web::Form<ContactInput>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let form = form.into_inner();
    let (region, actor, now, input, user) = (region(&state), a.actor(), state.now(), form.clone(), a.user.clone());
    let updated = state
        .db
        .write(move |c| {
            let scope = Viewer::for_user(c, &user)?.contact_scope();
            Ok(service::update(c, &scope, &region, &actor, id, &input, now)?)
        })
        .await?;
    match updated {
        Ok(_) => Ok(see_other_flash(&format!("/contacts/{id}"), "flash.saved")),
        Err(errors) => {
            let (contact, messages, log) = load(&state, &a.user, id).await?;
            let (conversations, labels, numbers, hold) = extras(&state, &a, id).await?;
            invalid_page(&ContactPage {
                ctx: a.ctx,
                contact,
                form,
                errors,
                messages,
                conversations,
                labels,
                numbers,
                hold,
                log,
                consent_form: ConsentInput::default(),
                consent_errors: FormErrors::default(),
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
    let (number, now, actor, user) = (form.into_inner().number, state.now(), a.actor(), a.user.clone());
    let conv = state
        .db
        .write(move |c| {
            Ok(crate::inbox::service::open_for_contact(
                c, &user, &actor, id, &number, now,
            )?)
        })
        .await?;
    Ok(crate::web::see_other(&format!("/inbox/{conv}")))
}

/// Deleting is for admins, and audited; a contact under legal hold is kept until the
/// hold is lifted (the hold would otherwise go with it). A data-subject erasure is the
/// privacy page's: it also removes the media files and anonymises notes elsewhere.
async fn post_delete(state: web::Data<AppState>, a: Authed, path: web::Path<i64>) -> AppResult<HttpResponse> {
    a.require(Role::Admin)?;
    let id = path.into_inner();
    let (now, actor) = (state.now(), a.actor());
    state
        .db
        .write(move |c| {
            let contact = super::find(c, id)?.ok_or(AppError::NotFound)?;
            if crate::privacy::retention::hold_of(c, id)?.is_some() {
                return Err(AppError::BadRequest("privacy_ops.requests.delete_held").into());
            }
            super::delete(c, id)?;
            let who = contact.phone.or(contact.bsuid).unwrap_or_default();
            audit::record(c, &actor, "contact.delete", &format!("contact:{id} {who}"), "", now)?;
            Ok(())
        })
        .await?;
    Ok(see_other_flash("/contacts", "flash.contact_deleted"))
}

/// An agent (or anyone above) records a consent change the person told them (on the
/// phone, at the counter), with the wording or a reference as proof.
async fn post_consent(
    state: web::Data<AppState>,
    a: Authed,
    path: web::Path<i64>,
    form: web::Form<ConsentInput>,
) -> AppResult<HttpResponse> {
    a.require(Role::Agent)?;
    let id = path.into_inner();
    let form = form.into_inner();
    let (actor, now, input, user) = (a.actor(), state.now(), form.clone(), a.user.clone());
    let recorded = state
        .db
        .write(move |c| {
            let scope = Viewer::for_user(c, &user)?.contact_scope();
            Ok(service::record_consent(
                c,
                &scope,
                &actor,
                id,
                &input,
                Source::Agent,
                now,
            )?)
        })
        .await?;
    match recorded {
        ConsentRecorded::Changed(_) | ConsentRecorded::Unchanged(_) => {
            Ok(see_other_flash(&format!("/contacts/{id}"), "flash.saved"))
        }
        // An agent records the person's own word, which may lift an opt-out: not reached.
        ConsentRecorded::OptOutWins => Err(AppError::BadRequest("consent.record.api_opt_out_wins")),
        ConsentRecorded::Invalid(consent_errors) => {
            let (contact, messages, log) = load(&state, &a.user, id).await?;
            let (conversations, labels, numbers, hold) = extras(&state, &a, id).await?;
            let form_input = ContactInput {
                name: contact.name.clone(),
                phone: contact.phone.clone().unwrap_or_default(),
                attributes_text: service::attributes_text(&contact),
                attributes: None,
            };
            invalid_page(&ContactPage {
                ctx: a.ctx,
                contact,
                form: form_input,
                errors: FormErrors::default(),
                messages,
                conversations,
                labels,
                numbers,
                hold,
                log,
                consent_form: form,
                consent_errors,
            })
        }
    }
}

// ---- opt-out keywords (admins) -------------------------------------------------------

#[derive(Template)]
#[template(path = "admin/consent.html")]
struct OptOutPage {
    ctx: RequestCtx,
    form: SettingsInput,
    errors: FormErrors,
}

fn form_of(s: &OptOutSettings) -> SettingsInput {
    SettingsInput {
        stop: s.stop.join("\n"),
        start: s.start.join("\n"),
        confirm_stop_en: s.confirm_stop_en.clone(),
        confirm_stop_id: s.confirm_stop_id.clone(),
        confirm_start_en: s.confirm_start_en.clone(),
        confirm_start_id: s.confirm_start_id.clone(),
    }
}

async fn get_opt_out(state: web::Data<AppState>, Admin(a): Admin) -> AppResult<HttpResponse> {
    let s = state.db.read(|c| Ok(optout::settings(c)?)).await?;
    ok_page(&OptOutPage {
        ctx: a.ctx,
        form: form_of(&s),
        errors: FormErrors::default(),
    })
}

async fn post_opt_out(
    state: web::Data<AppState>,
    Admin(a): Admin,
    form: web::Form<SettingsInput>,
) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    let s = match optout::validate(&form) {
        Ok(s) => s,
        Err(errors) => {
            return invalid_page(&OptOutPage {
                ctx: a.ctx,
                form,
                errors,
            });
        }
    };
    let (actor, now) = (a.actor(), state.now());
    state.db.write(move |c| Ok(optout::save(c, &actor, &s, now)?)).await?;
    Ok(see_other_flash("/admin/consent", "flash.saved"))
}
