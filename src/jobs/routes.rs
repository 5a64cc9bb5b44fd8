//! The jobs page: what runs, when it last ran, what it did; and "run now".

use super::{JobStatus, statuses};
use crate::app::AppState;
use crate::error::{AppError, AppResult};
use crate::web::{Admin, RequestCtx, ok_page, see_other_flash};
use actix_web::{HttpResponse, web};
use askama::Template;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin/jobs").route(web::get().to(get_jobs)))
        .service(web::resource("/admin/jobs/{name}/run").route(web::post().to(post_run_job)));
}

#[derive(Template)]
#[template(path = "admin/jobs.html")]
struct JobsPage {
    ctx: RequestCtx,
    jobs: Vec<JobStatus>,
}

impl JobsPage {
    #[expect(
        clippy::unused_self,
        clippy::trivially_copy_pass_by_ref,
        reason = "the template calls it as a method, with a reference"
    )]
    fn every(&self, secs: &u64) -> String {
        if secs % 3600 == 0 {
            format!("{} h", secs / 3600)
        } else {
            format!("{} min", secs / 60)
        }
    }
}

async fn get_jobs(state: web::Data<AppState>, Admin(a): Admin) -> AppResult<HttpResponse> {
    let list = state.scheduler.list();
    let jobs = state.db.read(move |c| Ok(statuses(c, &list)?)).await?;
    ok_page(&JobsPage { ctx: a.ctx, jobs })
}

async fn post_run_job(state: web::Data<AppState>, Admin(a): Admin, path: web::Path<String>) -> AppResult<HttpResponse> {
    let name = path.into_inner();
    if !state.scheduler.trigger(&name) {
        return Err(AppError::NotFound);
    }
    let (now, actor, n) = (state.now(), a.actor(), name.clone());
    state
        .db
        .write(move |c| Ok(crate::audit::record(c, &actor, "job.run_now", &n, "", now)?))
        .await?;
    Ok(see_other_flash("/admin/jobs", "flash.job_started"))
}
