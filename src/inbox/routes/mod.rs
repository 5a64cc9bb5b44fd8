//! The inbox pages: the list (tabs, filters, search), a conversation (thread, composer,
//! assignment, status, labels, notes), labels and canned responses for supervisors, the
//! inbox settings for admins, and the live event stream. Every page works without
//! JavaScript; `static/js/app.js` adds live updates, canned-response shortcuts, the
//! window countdown and notifications.

mod catalog;
mod compose;
mod conversation;
mod events;
mod list;
mod media;
mod settings;

use actix_web::web;
use catalog::{get_canned, get_labels, post_canned, post_canned_delete, post_label_delete, post_labels};
use compose::{post_attach, post_note, post_reply, post_retry, post_template};
use conversation::{get_conversation, post_assign, post_conversation_label, post_status};
use list::{get_inbox, post_availability};
use settings::{get_settings, post_settings};

/// A signed-in user asks for a change: their audit actor, themselves, their role.
impl From<&crate::web::Authed> for super::manage::By {
    fn from(a: &crate::web::Authed) -> Self {
        super::manage::By {
            actor: a.actor(),
            user: Some(a.user.clone()),
            role: a.user.role,
        }
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    media::configure(cfg);
    cfg.service(web::resource("/inbox").route(web::get().to(get_inbox)))
        .service(web::resource("/inbox/events").route(web::get().to(events::get_events)))
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
        .service(web::resource("/inbox/outbox/{id}").route(web::get().to(conversation::get_by_outbox)))
        .service(web::resource("/inbox/{id}").route(web::get().to(get_conversation)))
        .service(web::resource("/inbox/{id}/reply").route(web::post().to(post_reply)))
        .service(web::resource("/inbox/{id}/attach").route(web::post().to(post_attach)))
        .service(web::resource("/inbox/{id}/messages/{message}/retry").route(web::post().to(post_retry)))
        .service(web::resource("/inbox/{id}/template").route(web::post().to(post_template)))
        .service(web::resource("/inbox/{id}/note").route(web::post().to(post_note)))
        .service(web::resource("/inbox/{id}/assign").route(web::post().to(post_assign)))
        .service(web::resource("/inbox/{id}/status").route(web::post().to(post_status)))
        .service(web::resource("/inbox/{id}/labels").route(web::post().to(post_conversation_label)))
        .service(web::resource("/inbox/{id}/bot").route(web::post().to(conversation::post_give_to_bot)))
        .service(
            web::resource("/admin/inbox")
                .route(web::get().to(get_settings))
                .route(web::post().to(post_settings)),
        );
}
