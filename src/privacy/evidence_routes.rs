//! The evidence page (P17) and the account data page and its JSON export (P1).

use super::evidence::{Fact, Light};
use crate::app::AppState;
use crate::error::AppResult;
use crate::web::{Admin, RequestCtx, ok_page};
use actix_web::{HttpResponse, web};
use askama::Template;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin/evidence").route(web::get().to(get_evidence)))
        .service(web::resource("/admin/account").route(web::get().to(get_account)))
        .service(web::resource("/admin/account/export").route(web::get().to(get_account_export)));
}

#[derive(Template)]
#[template(path = "admin/evidence.html")]
struct EvidencePage {
    ctx: RequestCtx,
    facts: Vec<Fact>,
}

impl EvidencePage {
    #[expect(clippy::unused_self, reason = "the template calls it as a method")]
    fn light(&self, f: &Fact) -> &'static str {
        match f.light {
            Light::Green => "green",
            Light::Amber => "amber",
            Light::Red => "red",
        }
    }

    fn label(&self, f: &Fact) -> &'static str {
        self.ctx.t(&format!("evidence.{}", f.key))
    }
}

/// Every fact, green/amber/red with what was measured (the same list as `whacaster check`).
async fn get_evidence(state: web::Data<AppState>, Admin(a): Admin) -> AppResult<HttpResponse> {
    let config = std::sync::Arc::clone(&state.config);
    let cert = state.tls.as_ref().and_then(|t| t.info());
    let now = state.now();
    let facts = state
        .db
        .read(move |c| {
            let inputs = super::evidence::Inputs {
                config: &config,
                cert,
                key_source: super::evidence::key_source(&config),
                now,
            };
            Ok(super::evidence::gather(c, &inputs)?)
        })
        .await?;
    ok_page(&EvidencePage { ctx: a.ctx, facts })
}

#[derive(Template)]
#[template(path = "admin/account.html")]
struct AccountPage {
    ctx: RequestCtx,
    data: super::account::AccountExport,
}

/// What the appliance holds about the business itself, with where each part is corrected.
async fn get_account(state: web::Data<AppState>, Admin(a): Admin) -> AppResult<HttpResponse> {
    let now = state.now();
    let data = state.db.read(move |c| Ok(super::account::build(c, now)?)).await?;
    ok_page(&AccountPage { ctx: a.ctx, data })
}

/// The account data as one JSON download (audited).
async fn get_account_export(state: web::Data<AppState>, Admin(a): Admin) -> AppResult<HttpResponse> {
    let (now, actor) = (state.now(), a.actor());
    let data = state
        .db
        .write(move |c| Ok(super::account::export(c, &actor, now)?))
        .await?;
    let body = serde_json::to_vec_pretty(&data).map_err(crate::AppError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("Content-Disposition", "attachment; filename=\"whacaster-account.json\""))
        .body(body))
}
