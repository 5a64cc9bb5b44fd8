//! The template pages: the list (everyone), a template with its preview and status
//! (everyone), the form that makes one (supervisors and admins) and deleting one with a
//! confirmation step (admins).
//!
//! Roles (`service::CREATE_ROLE`, `service::DELETE_ROLE`): supervisors and admins make
//! templates, only admins delete them; why is written there.

use super::draft::{Button, Category, Draft, Header, LANGUAGES, Preview, distinct_names};
use super::service::{self, CREATE_ROLE, DELETE_ROLE, Deleted, Sample, Submitted};
use super::{Template, Unusable};
use crate::app::AppState;
use crate::error::AppResult;
use crate::web::{Admin, Authed, RequestCtx, invalid_page, ok_page, see_other_flash};
use actix_web::{HttpResponse, web};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/templates").route(web::get().to(get_templates)))
        .service(
            web::resource("/templates/new")
                .route(web::get().to(get_new))
                .route(web::post().to(post_new)),
        )
        .service(web::resource("/templates/{id}").route(web::get().to(get_template)))
        .service(
            web::resource("/templates/{id}/delete")
                .route(web::get().to(get_delete))
                .route(web::post().to(post_delete)),
        );
}

#[derive(askama::Template)]
#[template(path = "templates/list.html")]
struct ListPage {
    ctx: RequestCtx,
    templates: Vec<Template>,
    accounts: Vec<(i64, String, String)>,
    can_create: bool,
}

impl ListPage {
    fn account(&self, waba_id: &str) -> String {
        self.accounts
            .iter()
            .find(|(_, _, w)| w == waba_id)
            .map_or_else(|| waba_id.to_string(), |(_, n, _)| n.clone())
    }
}

async fn get_templates(state: web::Data<AppState>, a: Authed) -> AppResult<HttpResponse> {
    let (templates, accounts) = service::overview(&state.db).await?;
    ok_page(&ListPage {
        can_create: a.user.at_least(CREATE_ROLE),
        ctx: a.ctx,
        templates,
        accounts,
    })
}

#[derive(askama::Template)]
#[template(path = "templates/template.html")]
struct TemplatePage {
    ctx: RequestCtx,
    t: Template,
    preview: Preview,
    unusable: Option<Unusable>,
    can_delete: bool,
}

impl TemplatePage {
    fn coming_category(&self) -> Option<String> {
        let (cat, at) = self.t.coming_category()?;
        let name = self.ctx.label("templates.category_name", &cat);
        Some(self.ctx.tf(
            "templates.category_coming",
            &[("category", &name), ("time", &self.ctx.time(&at))],
        ))
    }
}

async fn get_template(state: web::Data<AppState>, a: Authed, path: web::Path<i64>) -> AppResult<HttpResponse> {
    let t = service::get(&state.db, path.into_inner()).await?;
    ok_page(&TemplatePage {
        preview: t.preview(),
        unusable: t.usable().err(),
        can_delete: a.user.at_least(DELETE_ROLE),
        ctx: a.ctx,
        t,
    })
}

#[derive(askama::Template)]
#[template(path = "templates/delete.html")]
struct DeletePage {
    ctx: RequestCtx,
    t: Template,
    refused: Option<String>,
}

impl DeletePage {
    fn question(&self) -> String {
        self.ctx.tf(
            "templates.confirm_delete",
            &[("name", &self.t.name), ("language", &self.t.language)],
        )
    }
}

async fn get_delete(state: web::Data<AppState>, Admin(a): Admin, path: web::Path<i64>) -> AppResult<HttpResponse> {
    let t = service::get(&state.db, path.into_inner()).await?;
    ok_page(&DeletePage {
        ctx: a.ctx,
        t,
        refused: None,
    })
}

async fn post_delete(state: web::Data<AppState>, Admin(a): Admin, path: web::Path<i64>) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    match service::delete(&state.db, &state.graph, state.now(), a.actor(), id).await? {
        Deleted::Done => Ok(see_other_flash("/templates", "templates.flash_deleted")),
        Deleted::Refused { message, .. } => {
            let t = service::get(&state.db, id).await?;
            invalid_page(&DeletePage {
                ctx: a.ctx,
                t,
                refused: Some(message),
            })
        }
    }
}

/// A button row of the form, as typed.
#[derive(Debug, Clone, Default)]
pub struct ButtonRow {
    /// `""` (none), `quick_reply`, `url`, `phone`, `copy_code`.
    pub kind: String,
    pub text: String,
    /// The URL, the phone number or the code.
    pub value: String,
    pub example: String,
}

/// The form as typed, to show again.
#[derive(Debug, Clone, Default)]
pub struct FormValues {
    pub number: String,
    pub name: String,
    pub category: String,
    pub language: String,
    pub header_format: String,
    pub header_text: String,
    pub header_example: String,
    pub body: String,
    pub footer: String,
    pub examples: Vec<(String, String)>,
    pub buttons: Vec<ButtonRow>,
    pub action: String,
}

impl FormValues {
    fn from_fields(fields: Vec<(String, String)>) -> FormValues {
        let mut f = FormValues::default();
        for (k, v) in fields {
            if let Some(var) = k.strip_prefix("example_") {
                f.examples.push((var.to_string(), v));
                continue;
            }
            if let Some((part, i)) = k.strip_prefix("button_").and_then(|r| r.rsplit_once('_')) {
                let Some(i) = i.parse::<usize>().ok().filter(|i| *i < super::draft::MAX_BUTTONS + 5) else {
                    continue;
                };
                if f.buttons.len() <= i {
                    f.buttons.resize(i + 1, ButtonRow::default());
                }
                let row = &mut f.buttons[i];
                match part {
                    "type" => row.kind = v,
                    "text" => row.text = v,
                    "value" => row.value = v,
                    "example" => row.example = v,
                    _ => {}
                }
                continue;
            }
            match k.as_str() {
                "number" => f.number = v,
                "name" => f.name = v,
                "category" => f.category = v,
                "language" => f.language = v,
                "header_format" => f.header_format = v,
                "header_text" => f.header_text = v,
                "header_example" => f.header_example = v,
                "body" => f.body = v,
                "footer" => f.footer = v,
                "action" => f.action = v,
                _ => {}
            }
        }
        f.buttons.retain(|b| !b.kind.is_empty() && b.kind != "none");
        f
    }

    fn draft(&self) -> Draft {
        let header = match self.header_format.as_str() {
            "text" => Header::Text {
                text: self.header_text.clone(),
                example: self.header_example.clone(),
            },
            "image" => Header::Image,
            "video" => Header::Video,
            "document" => Header::Document,
            _ => Header::None,
        };
        let buttons = self
            .buttons
            .iter()
            .filter_map(|b| match b.kind.as_str() {
                "quick_reply" => Some(Button::QuickReply { text: b.text.clone() }),
                "url" => Some(Button::Url {
                    text: b.text.clone(),
                    url: b.value.clone(),
                    example: b.example.clone(),
                }),
                "phone" => Some(Button::Phone {
                    text: b.text.clone(),
                    phone: b.value.clone(),
                }),
                "copy_code" => Some(Button::CopyCode {
                    example: b.value.clone(),
                }),
                _ => None,
            })
            .collect();
        Draft {
            name: self.name.clone(),
            category: self.category.clone(),
            language: self.language.clone(),
            header,
            body: self.body.clone(),
            examples: self.examples.iter().cloned().collect(),
            footer: self.footer.clone(),
            buttons,
        }
    }
}

#[derive(askama::Template)]
#[template(path = "templates/new.html")]
struct NewPage {
    ctx: RequestCtx,
    form: FormValues,
    accounts: Vec<(i64, String, String)>,
    languages: &'static [(&'static str, &'static str)],
    categories: [Category; 3],
    preview: Preview,
    /// One input per variable of the body: (variable, example typed).
    example_rows: Vec<(String, String)>,
    button_rows: Vec<ButtonRow>,
    /// (field, message) of each problem found.
    problems: Vec<(&'static str, String)>,
    /// Meta's answer when it refused the template.
    refused: Option<String>,
}

impl NewPage {
    fn build(
        ctx: RequestCtx,
        form: FormValues,
        accounts: Vec<(i64, String, String)>,
        problems: Vec<(&'static str, String)>,
        refused: Option<String>,
    ) -> NewPage {
        let draft = form.draft();
        let example_rows = distinct_names(&draft.body)
            .into_iter()
            .map(|v| {
                let e = draft.examples.get(&v).cloned().unwrap_or_default();
                (v, e)
            })
            .collect();
        let mut button_rows = form.buttons.clone();
        let blank = (button_rows.len() + 1).clamp(3, super::draft::MAX_BUTTONS);
        while button_rows.len() < blank {
            button_rows.push(ButtonRow::default());
        }
        NewPage {
            preview: draft.preview(),
            ctx,
            form,
            accounts,
            languages: LANGUAGES,
            categories: Category::ALL,
            example_rows,
            button_rows,
            problems,
            refused,
        }
    }

    fn problems_for(&self, field: &str) -> Vec<&str> {
        self.problems
            .iter()
            .filter(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
            .collect()
    }

    #[expect(clippy::unused_self, reason = "the template calls it as a method")]
    fn button_kinds(&self) -> [&'static str; 5] {
        ["none", "quick_reply", "url", "phone", "copy_code"]
    }

    #[expect(clippy::unused_self, reason = "the template calls it as a method")]
    fn header_formats(&self) -> [&'static str; 5] {
        ["none", "text", "image", "video", "document"]
    }
}

async fn get_new(state: web::Data<AppState>, a: Authed) -> AppResult<HttpResponse> {
    a.require(CREATE_ROLE)?;
    let (_, accounts) = service::overview(&state.db).await?;
    let form = FormValues {
        category: "UTILITY".into(),
        language: "id".into(),
        header_format: "none".into(),
        number: accounts.first().map(|(id, ..)| id.to_string()).unwrap_or_default(),
        ..FormValues::default()
    };
    ok_page(&NewPage::build(a.ctx, form, accounts, Vec::new(), None))
}

/// Largest request: a document sample (Meta takes 100 MB) and the form around it.
const MAX_SAMPLE: usize = 100 * 1024 * 1024;

async fn post_new(
    state: web::Data<AppState>,
    a: Authed,
    payload: actix_multipart::Multipart,
) -> AppResult<HttpResponse> {
    a.require(CREATE_ROLE)?;
    let fields =
        crate::web::upload::read_fields(payload, crate::web::body::Pace::body(&state.config.limits), MAX_SAMPLE)
            .await?;
    let form = FormValues::from_fields(fields.values);
    let (_, accounts) = service::overview(&state.db).await?;
    let (locale, tz) = (a.ctx.locale, a.ctx.timezone);
    let show = |ps: &[super::Problem]| -> Vec<(&'static str, String)> {
        ps.iter().map(|p| (p.field, p.message(locale, tz))).collect()
    };
    let draft = form.draft();
    if form.action != "submit" {
        // "Preview" (the page without JavaScript): the bubble and what to fix, nothing sent.
        let mut checked = draft.clone();
        checked.tidy();
        let problems = show(&checked.problems());
        return ok_page(&NewPage::build(a.ctx, form, accounts, problems, None));
    }
    let sample = fields
        .file
        .map(|(filename, mime, bytes)| Sample { filename, mime, bytes });
    let number = form.number.trim().parse::<i64>().ok();
    match service::create(&state.db, &state.graph, state.now(), a.actor(), number, draft, sample).await? {
        Submitted::Created(id) => Ok(see_other_flash(
            &format!("/templates/{id}"),
            "templates.flash_submitted",
        )),
        Submitted::Invalid(problems) => {
            let problems = show(&problems);
            invalid_page(&NewPage::build(a.ctx, form, accounts, problems, None))
        }
        Submitted::Refused { message, .. } => {
            invalid_page(&NewPage::build(a.ctx, form, accounts, Vec::new(), Some(message)))
        }
    }
}
