//! The inbox's pages and partials as askama structs: the list and its rows, a
//! conversation and its thread, labels, canned responses and the inbox settings.

use super::catalog::{self, Canned};
use super::conversations::{LabelTag, Row, Tab};
use super::search::Hit;
use super::service::ConversationData;
use super::thread::{self, Item};
use crate::auth::repo::Agent;
use crate::settings::InboxSettings;
use crate::web::RequestCtx;
use crate::whatsapp::templates::Template;

#[derive(askama::Template)]
#[template(path = "inbox/list.html")]
pub struct ListPage {
    pub ctx: RequestCtx,
    pub tab: Tab,
    pub show_all_tab: bool,
    pub status: String,
    pub number: String,
    pub label: Option<i64>,
    pub unread: bool,
    pub q: String,
    pub rows: Vec<Row>,
    pub hits: Vec<Hit>,
    pub next: Option<String>,
    pub unread_mine: i64,
    pub unread_unassigned: i64,
    pub numbers: Vec<(String, String)>,
    pub labels: Vec<LabelTag>,
    pub available: bool,
    pub base_query: String,
}

impl ListPage {
    #[expect(clippy::trivially_copy_pass_by_ref, reason = "the template passes a reference")]
    fn label_is(&self, id: &i64) -> bool {
        self.label == Some(*id)
    }
    fn tab_href(&self, tab: &str) -> String {
        format!("/inbox?tab={tab}&status={}", self.status)
    }
}

/// The list's rows alone, for the live refresh and "more".
#[derive(askama::Template)]
#[template(path = "inbox/_rows.html")]
pub struct RowsPartial {
    pub ctx: RequestCtx,
    pub rows: Vec<Row>,
    pub next: Option<String>,
    pub base_query: String,
    pub unread_mine: i64,
    pub unread_unassigned: i64,
}

#[derive(askama::Template)]
#[template(path = "inbox/conversation.html")]
pub struct ConversationPage {
    pub ctx: RequestCtx,
    pub conv: Row,
    pub contact_labels: Vec<LabelTag>,
    pub items: Vec<Item>,
    pub older: Option<i64>,
    pub window_left: i64,
    pub window_deadline: i64,
    pub reply_to: Option<thread::Message>,
    pub templates: Vec<Template>,
    pub chosen: Option<Template>,
    pub params: Vec<String>,
    pub preview: String,
    pub canned: Vec<(String, String)>,
    pub agents: Vec<Agent>,
    pub labels: Vec<LabelTag>,
    pub form_error: Option<&'static str>,
    pub draft: String,
    pub note_draft: String,
    /// The contact's marketing consent, for the header's badge.
    pub marketing: crate::contacts::consent::State,
    /// A person has the conversation (the bot is silent); false: the bot answers.
    pub bot_off: bool,
    /// The bot's logged decisions in this conversation, newest first.
    pub bot_lines: Vec<BotLine>,
}

/// One bot decision, as the conversation shows it (filled by the page's handler).
#[derive(Debug, Clone, Default)]
pub struct BotLine {
    pub at: i64,
    pub decision: String,
    pub detail: String,
    pub outbox_ids: String,
    pub stored: String,
    pub micros: i64,
}

/// What the composer had when a form comes back with a problem.
#[derive(Default)]
pub struct Draft {
    pub error: Option<&'static str>,
    pub text: String,
    pub note: String,
    /// The chosen template's key (`name|language`).
    pub template: String,
    pub params: Vec<String>,
    pub reply_to: Option<i64>,
}

impl ConversationPage {
    /// The page for what was read and what the composer had: canned responses filled
    /// for this contact, the chosen template with its parameters and preview.
    pub fn new(ctx: RequestCtx, data: ConversationData, draft: Draft, now: i64) -> ConversationPage {
        let conv = data.thread.conv;
        let phone = conv.phone.clone().unwrap_or_default();
        let canned = data
            .canned
            .iter()
            .map(|x: &Canned| (x.shortcut.clone(), x.fill(&conv.contact_name, &phone)))
            .collect();
        let chosen = data.templates.iter().find(|t| t.key() == draft.template).cloned();
        let mut params = draft.params;
        if let Some(t) = &chosen {
            params.resize(usize::try_from(t.param_count).unwrap_or(0), String::new());
        }
        let preview = chosen
            .as_ref()
            .map(|t| super::reply::fill_template(&t.body_text, &params))
            .unwrap_or_default();
        let window_left = super::window_left(conv.last_inbound_at, now);
        ConversationPage {
            ctx,
            window_deadline: super::window_deadline(conv.last_inbound_at).unwrap_or(0),
            conv,
            contact_labels: data.contact_labels,
            items: data.thread.items,
            older: data.thread.older,
            window_left,
            reply_to: data.reply_to,
            templates: data.templates,
            chosen,
            params,
            preview,
            canned,
            agents: data.agents,
            labels: data.labels,
            form_error: draft.error,
            draft: draft.text,
            note_draft: draft.note,
            marketing: data.marketing,
            bot_off: false,
            bot_lines: Vec::new(),
        }
    }

    #[expect(clippy::trivially_copy_pass_by_ref, reason = "the template passes a reference")]
    fn is_label_on(&self, id: &i64) -> bool {
        self.conv.labels.iter().any(|l| l.id == *id)
    }
    #[expect(clippy::trivially_copy_pass_by_ref, reason = "the template passes a reference")]
    fn contact_has(&self, id: &i64) -> bool {
        self.contact_labels.iter().any(|l| l.id == *id)
    }
    #[expect(clippy::trivially_copy_pass_by_ref, reason = "the template passes a reference")]
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

/// A conversation's thread alone, for the live refresh.
#[derive(askama::Template)]
#[template(path = "inbox/_thread.html")]
pub struct ThreadPartial {
    pub ctx: RequestCtx,
    pub conv: Row,
    pub items: Vec<Item>,
    pub older: Option<i64>,
}

#[derive(askama::Template)]
#[template(path = "inbox/labels.html")]
pub struct LabelsPage {
    pub ctx: RequestCtx,
    pub labels: Vec<LabelTag>,
    pub error: Option<&'static str>,
    pub name: String,
}

impl LabelsPage {
    #[expect(clippy::unused_self, reason = "the template calls it as a method")]
    fn colors(&self) -> &'static [&'static str] {
        &catalog::COLORS
    }
}

#[derive(askama::Template)]
#[template(path = "inbox/canned.html")]
pub struct CannedPage {
    pub ctx: RequestCtx,
    pub canned: Vec<Canned>,
    pub error: Option<&'static str>,
    pub shortcut: String,
    pub body: String,
}

#[derive(askama::Template)]
#[template(path = "admin/inbox.html")]
pub struct SettingsPage {
    pub ctx: RequestCtx,
    pub s: InboxSettings,
}
