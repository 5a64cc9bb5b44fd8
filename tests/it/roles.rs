//! Every route × every role × anonymous, against the expected table. A route that is
//! added to the code but not to this table fails the test.

use crate::common::{Browser, PASSWORD, TestApp};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Access {
    /// Anyone, signed in or not (the page itself decides what to show).
    Public,
    /// Any signed-in user.
    User,
    /// Supervisors and admins.
    Supervisor,
    /// Admins only.
    Admin,
    /// An event stream for any signed-in user (judged by status and headers: it never ends).
    Stream,
    /// Admins, or a scraper on loopback when no proxy is configured.
    AdminOrLoopback,
    /// Meta's endpoint: no session; its own token decides, the same for everyone.
    MetaToken,
    /// The REST API: a session is no key, so everyone without one gets 401.
    ApiKey,
}
use Access::*;

/// One row: method, route pattern as in the code, a concrete path, access, form fields.
type Row = (
    &'static str,
    &'static str,
    &'static str,
    Access,
    &'static [(&'static str, &'static str)],
);

const TABLE: &[Row] = &[
    ("GET", "/healthz", "/healthz", Public, &[]),
    ("GET", "/metrics", "/metrics", AdminOrLoopback, &[]),
    ("GET", "/static/{path:.*}", "/static/css/app.css", Public, &[]),
    ("GET", "/", "/", User, &[]),
    ("GET", "/setup", "/setup", Public, &[]),
    ("POST", "/setup", "/setup", Public, &[("token", "x")]),
    ("GET", "/admin/business", "/admin/business", Admin, &[]),
    (
        "POST",
        "/admin/business",
        "/admin/business",
        Admin,
        &[
            ("business_name", "T"),
            ("owner_name", "B"),
            ("email", "b@t.id"),
            ("phone", "+628123456789"),
            ("address", "Jl. 1"),
            ("industry", "retail"),
            ("timezone", "Asia/Jakarta"),
            ("locale", "en"),
        ],
    ),
    ("GET", "/login", "/login", Public, &[]),
    (
        "POST",
        "/login",
        "/login",
        Public,
        &[("email", "nobody@x.id"), ("password", "nothing here")],
    ),
    ("GET", "/login/mfa", "/login/mfa", Public, &[]),
    ("POST", "/login/mfa", "/login/mfa", Public, &[("code", "000000")]),
    ("POST", "/logout", "/logout", Public, &[]),
    ("GET", "/account", "/account", User, &[]),
    (
        "POST",
        "/account",
        "/account",
        User,
        &[("name", "Someone"), ("locale", "en")],
    ),
    (
        "POST",
        "/account/password",
        "/account/password",
        User,
        &[("current", "x"), ("new", "y"), ("confirm", "z")],
    ),
    ("GET", "/account/mfa", "/account/mfa", User, &[]),
    ("POST", "/account/mfa/start", "/account/mfa/start", User, &[]),
    (
        "POST",
        "/account/mfa/confirm",
        "/account/mfa/confirm",
        User,
        &[("code", "000000")],
    ),
    (
        "POST",
        "/account/mfa/recovery",
        "/account/mfa/recovery",
        User,
        &[("code", "000000")],
    ),
    ("GET", "/account/sessions", "/account/sessions", User, &[]),
    (
        "POST",
        "/account/sessions/revoke-others",
        "/account/sessions/revoke-others",
        User,
        &[],
    ),
    (
        "POST",
        "/account/sessions/{id}/revoke",
        "/account/sessions/999999/revoke",
        User,
        &[],
    ),
    ("GET", "/invite/{token}", "/invite/not-a-token", Public, &[]),
    (
        "POST",
        "/invite/{token}",
        "/invite/not-a-token",
        Public,
        &[("password", "x"), ("confirm", "x")],
    ),
    ("GET", "/admin/users", "/admin/users", Admin, &[]),
    (
        "POST",
        "/admin/users",
        "/admin/users",
        Admin,
        &[("name", "N"), ("email", "bad"), ("role", "agent"), ("method", "invite")],
    ),
    ("GET", "/admin/users/{id}", "/admin/users/3", Admin, &[]),
    (
        "POST",
        "/admin/users/{id}/role",
        "/admin/users/4/role",
        Admin,
        &[("role", "agent")],
    ),
    (
        "POST",
        "/admin/users/{id}/active",
        "/admin/users/4/active",
        Admin,
        &[("active", "1")],
    ),
    (
        "POST",
        "/admin/users/{id}/reset-mfa",
        "/admin/users/4/reset-mfa",
        Admin,
        &[],
    ),
    ("POST", "/admin/users/{id}/invite", "/admin/users/4/invite", Admin, &[]),
    ("POST", "/admin/users/{id}/unlock", "/admin/users/4/unlock", Admin, &[]),
    ("GET", "/admin/sessions", "/admin/sessions", Admin, &[]),
    (
        "POST",
        "/admin/sessions/{id}/revoke",
        "/admin/sessions/999999/revoke",
        Admin,
        &[],
    ),
    ("GET", "/admin/logins", "/admin/logins", Admin, &[]),
    ("GET", "/admin/security", "/admin/security", Admin, &[]),
    (
        "POST",
        "/admin/security",
        "/admin/security",
        Admin,
        &[("mfa_admin", "1")],
    ),
    ("GET", "/admin/audit", "/admin/audit", Admin, &[]),
    ("GET", "/admin/audit.csv", "/admin/audit.csv", Admin, &[]),
    ("GET", "/admin/jobs", "/admin/jobs", Admin, &[]),
    ("GET", "/admin/system", "/admin/system", Admin, &[]),
    ("GET", "/admin/evidence", "/admin/evidence", Admin, &[]),
    ("GET", "/admin/account", "/admin/account", Admin, &[]),
    ("GET", "/admin/account/export", "/admin/account/export", Admin, &[]),
    ("GET", "/admin/whatsapp", "/admin/whatsapp", Admin, &[]),
    (
        "POST",
        "/admin/whatsapp",
        "/admin/whatsapp",
        Admin,
        &[("display_name", "")],
    ),
    ("GET", "/admin/whatsapp/{id}", "/admin/whatsapp/999", Admin, &[]),
    (
        "POST",
        "/admin/whatsapp/{id}",
        "/admin/whatsapp/999",
        Admin,
        &[("display_name", "")],
    ),
    (
        "POST",
        "/admin/whatsapp/{id}/delete",
        "/admin/whatsapp/999/delete",
        Admin,
        &[],
    ),
    (
        "POST",
        "/admin/whatsapp/{id}/test",
        "/admin/whatsapp/999/test",
        Admin,
        &[],
    ),
    (
        "GET",
        "/admin/whatsapp/{id}/outbox",
        "/admin/whatsapp/999/outbox?state=failed",
        Admin,
        &[],
    ),
    (
        "POST",
        "/admin/whatsapp/{id}/subscribe",
        "/admin/whatsapp/999/subscribe",
        Admin,
        &[],
    ),
    (
        "POST",
        "/admin/whatsapp/deliveries/{id}/retry",
        "/admin/whatsapp/deliveries/999/retry",
        Admin,
        &[],
    ),
    (
        "POST",
        "/admin/whatsapp/{id}/resume",
        "/admin/whatsapp/999/resume",
        Admin,
        &[],
    ),
    (
        "POST",
        "/admin/whatsapp/{id}/templates/sync",
        "/admin/whatsapp/999/templates/sync",
        Admin,
        &[],
    ),
    ("GET", "/media/{id}", "/media/999", User, &[]),
    ("GET", "/templates", "/templates", User, &[]),
    ("GET", "/templates/new", "/templates/new", Supervisor, &[]),
    ("POST", "/templates/new", "/templates/new", Supervisor, &[("name", "")]),
    ("GET", "/templates/{id}", "/templates/999", User, &[]),
    ("GET", "/templates/{id}/delete", "/templates/999/delete", Admin, &[]),
    ("POST", "/templates/{id}/delete", "/templates/999/delete", Admin, &[]),
    ("GET", "/api/v1/templates", "/api/v1/templates", ApiKey, &[]),
    ("GET", "/api/v1/templates/{id}", "/api/v1/templates/1", ApiKey, &[]),
    ("GET", "/admin/api-keys", "/admin/api-keys", Admin, &[]),
    ("POST", "/admin/api-keys", "/admin/api-keys", Admin, &[("name", "")]),
    (
        "POST",
        "/admin/api-keys/{id}/revoke",
        "/admin/api-keys/999/revoke",
        Admin,
        &[],
    ),
    ("GET", "/api/v1/openapi.json", "/api/v1/openapi.json", Public, &[]),
    ("GET", "/contacts", "/contacts", User, &[]),
    ("POST", "/contacts", "/contacts", User, &[("phone", "")]),
    ("GET", "/contacts/{id}", "/contacts/999", User, &[]),
    ("POST", "/contacts/{id}", "/contacts/999", User, &[("name", "x")]),
    ("POST", "/contacts/{id}/delete", "/contacts/999/delete", Admin, &[]),
    (
        "POST",
        "/contacts/{id}/consent",
        "/contacts/999/consent",
        User,
        &[("purpose", "marketing"), ("state", "opted_in"), ("wording", "x")],
    ),
    ("GET", "/admin/consent", "/admin/consent", Admin, &[]),
    ("POST", "/admin/consent", "/admin/consent", Admin, &[("stop", "STOP")]),
    (
        "POST",
        "/contacts/{id}/conversation",
        "/contacts/999/conversation",
        User,
        &[("number", "1")],
    ),
    ("GET", "/contacts/import", "/contacts/import", Supervisor, &[]),
    ("POST", "/contacts/import", "/contacts/import", Supervisor, &[]),
    ("GET", "/contacts/import/{id}", "/contacts/import/999", Supervisor, &[]),
    (
        "POST",
        "/contacts/import/{id}",
        "/contacts/import/999",
        Supervisor,
        &[("action", "preview")],
    ),
    (
        "GET",
        "/contacts/import/{id}/progress",
        "/contacts/import/999/progress",
        Supervisor,
        &[],
    ),
    (
        "GET",
        "/contacts/import/{id}/report.csv",
        "/contacts/import/999/report.csv",
        Supervisor,
        &[],
    ),
    (
        "POST",
        "/api/v1/contacts/import",
        "/api/v1/contacts/import",
        ApiKey,
        &[],
    ),
    ("GET", "/api/v1/imports/{id}", "/api/v1/imports/1", ApiKey, &[]),
    ("GET", "/api/v1/contacts", "/api/v1/contacts", ApiKey, &[]),
    ("GET", "/api/v1/contacts/{id}", "/api/v1/contacts/1", ApiKey, &[]),
    (
        "POST",
        "/api/v1/contacts/{id}/consent",
        "/api/v1/contacts/1/consent",
        ApiKey,
        &[],
    ),
    ("GET", "/segments", "/segments", Supervisor, &[]),
    ("POST", "/segments", "/segments", Supervisor, &[("action", "preview")]),
    ("GET", "/segments/new", "/segments/new", Supervisor, &[]),
    ("GET", "/segments/{id}", "/segments/999", Supervisor, &[]),
    ("GET", "/segments/{id}/edit", "/segments/999/edit", Supervisor, &[]),
    (
        "POST",
        "/segments/{id}/edit",
        "/segments/999/edit",
        Supervisor,
        &[("action", "preview")],
    ),
    ("POST", "/segments/{id}/delete", "/segments/999/delete", Supervisor, &[]),
    ("GET", "/api/v1/segments", "/api/v1/segments", ApiKey, &[]),
    ("GET", "/campaigns", "/campaigns", User, &[]),
    ("POST", "/campaigns", "/campaigns", Supervisor, &[("action", "refresh")]),
    ("GET", "/campaigns/new", "/campaigns/new", Supervisor, &[]),
    ("GET", "/campaigns/settings", "/campaigns/settings", Admin, &[]),
    (
        "POST",
        "/campaigns/settings",
        "/campaigns/settings",
        Admin,
        &[("frequency_cap_hours", "x")],
    ),
    ("GET", "/campaigns/{id}", "/campaigns/999", User, &[]),
    ("GET", "/campaigns/{id}/edit", "/campaigns/999/edit", Supervisor, &[]),
    (
        "POST",
        "/campaigns/{id}/edit",
        "/campaigns/999/edit",
        Supervisor,
        &[("action", "refresh")],
    ),
    ("GET", "/campaigns/{id}/progress", "/campaigns/999/progress", User, &[]),
    (
        "GET",
        "/campaigns/{id}/recipients",
        "/campaigns/999/recipients",
        Supervisor,
        &[],
    ),
    (
        "GET",
        "/campaigns/{id}/recipients.csv",
        "/campaigns/999/recipients.csv",
        Supervisor,
        &[],
    ),
    ("POST", "/campaigns/{id}/start", "/campaigns/999/start", Supervisor, &[]),
    ("POST", "/campaigns/{id}/pause", "/campaigns/999/pause", Supervisor, &[]),
    (
        "POST",
        "/campaigns/{id}/resume",
        "/campaigns/999/resume",
        Supervisor,
        &[],
    ),
    (
        "POST",
        "/campaigns/{id}/cancel",
        "/campaigns/999/cancel",
        Supervisor,
        &[],
    ),
    (
        "POST",
        "/campaigns/{id}/delete",
        "/campaigns/999/delete",
        Supervisor,
        &[],
    ),
    (
        "POST",
        "/campaigns/{id}/send-again",
        "/campaigns/999/send-again",
        Supervisor,
        &[],
    ),
    (
        "POST",
        "/campaigns/{id}/follow-up",
        "/campaigns/999/follow-up",
        Supervisor,
        &[("kind", "unread")],
    ),
    (
        "POST",
        "/admin/whatsapp/{id}/messaging-limit",
        "/admin/whatsapp/999/messaging-limit",
        Admin,
        &[("limit", "250")],
    ),
    ("GET", "/api/v1/segments/{id}", "/api/v1/segments/1", ApiKey, &[]),
    ("GET", "/api/v1/campaigns", "/api/v1/campaigns", ApiKey, &[]),
    ("GET", "/api/v1/numbers/{id}/bot", "/api/v1/numbers/1/bot", ApiKey, &[]),
    ("GET", "/api/v1/campaigns/{id}", "/api/v1/campaigns/1", ApiKey, &[]),
    (
        "POST",
        "/api/v1/campaigns/{id}/preflight",
        "/api/v1/campaigns/1/preflight",
        ApiKey,
        &[],
    ),
    (
        "POST",
        "/api/v1/campaigns/{id}/start",
        "/api/v1/campaigns/1/start",
        ApiKey,
        &[],
    ),
    (
        "POST",
        "/api/v1/campaigns/{id}/pause",
        "/api/v1/campaigns/1/pause",
        ApiKey,
        &[],
    ),
    (
        "POST",
        "/api/v1/campaigns/{id}/resume",
        "/api/v1/campaigns/1/resume",
        ApiKey,
        &[],
    ),
    (
        "POST",
        "/api/v1/campaigns/{id}/cancel",
        "/api/v1/campaigns/1/cancel",
        ApiKey,
        &[],
    ),
    (
        "POST",
        "/api/v1/campaigns/{id}/send-again",
        "/api/v1/campaigns/1/send-again",
        ApiKey,
        &[],
    ),
    (
        "POST",
        "/api/v1/campaigns/{id}/follow-up",
        "/api/v1/campaigns/1/follow-up",
        ApiKey,
        &[],
    ),
    (
        "GET",
        "/api/v1/campaigns/{id}/recipients",
        "/api/v1/campaigns/1/recipients",
        ApiKey,
        &[],
    ),
    // API routes take keys, not sessions: without a key everyone gets 401 (tests/it/api.rs).
    ("GET", "/api/v1/numbers", "/api/v1/numbers", ApiKey, &[]),
    // Meta's endpoint: public, protected by the verify token and the signature instead.
    (
        "GET",
        "/webhooks/whatsapp",
        "/webhooks/whatsapp?hub.mode=subscribe",
        MetaToken,
        &[],
    ),
    ("GET", "/inbox", "/inbox", User, &[]),
    ("GET", "/inbox/events", "/inbox/events", Stream, &[]),
    (
        "POST",
        "/inbox/availability",
        "/inbox/availability",
        User,
        &[("available", "1")],
    ),
    ("GET", "/inbox/labels", "/inbox/labels", Supervisor, &[]),
    ("POST", "/inbox/labels", "/inbox/labels", Supervisor, &[("name", "")]),
    (
        "POST",
        "/inbox/labels/{id}/delete",
        "/inbox/labels/999/delete",
        Supervisor,
        &[],
    ),
    ("GET", "/inbox/canned", "/inbox/canned", Supervisor, &[]),
    (
        "POST",
        "/inbox/canned",
        "/inbox/canned",
        Supervisor,
        &[("shortcut", "")],
    ),
    (
        "POST",
        "/inbox/canned/{id}/delete",
        "/inbox/canned/999/delete",
        Supervisor,
        &[],
    ),
    // Conversations: every signed-in user reaches the handler; 999 does not exist (404).
    ("GET", "/inbox/{id}", "/inbox/999", User, &[]),
    ("GET", "/inbox/outbox/{id}", "/inbox/outbox/999", User, &[]),
    ("POST", "/inbox/{id}/reply", "/inbox/999/reply", User, &[("body", "x")]),
    ("POST", "/inbox/{id}/attach", "/inbox/999/attach", User, &[]),
    (
        "POST",
        "/inbox/{id}/messages/{message}/retry",
        "/inbox/999/messages/1/retry",
        User,
        &[],
    ),
    (
        "POST",
        "/inbox/{id}/template",
        "/inbox/999/template",
        User,
        &[("template", "")],
    ),
    ("POST", "/inbox/{id}/note", "/inbox/999/note", User, &[("body", "x")]),
    (
        "POST",
        "/inbox/{id}/assign",
        "/inbox/999/assign",
        User,
        &[("assignee", "me")],
    ),
    (
        "POST",
        "/inbox/{id}/status",
        "/inbox/999/status",
        User,
        &[("status", "open")],
    ),
    (
        "POST",
        "/inbox/{id}/labels",
        "/inbox/999/labels",
        User,
        &[("label_id", "1")],
    ),
    // The bot's pages: supervisors and admins; number 999 does not exist (404).
    ("GET", "/bot", "/bot", Supervisor, &[]),
    ("GET", "/bot/activity", "/bot/activity", Supervisor, &[]),
    ("GET", "/bot/{id}", "/bot/999", Supervisor, &[]),
    (
        "POST",
        "/bot/{id}/part/{part}",
        "/bot/999/part/enabled",
        Supervisor,
        &[("enabled", "1")],
    ),
    ("GET", "/bot/{id}/export", "/bot/999/export", Supervisor, &[]),
    (
        "POST",
        "/bot/{id}/import",
        "/bot/999/import",
        Supervisor,
        &[("document", "{}")],
    ),
    ("GET", "/bot/{id}/rules/new", "/bot/999/rules/new", Supervisor, &[]),
    (
        "POST",
        "/bot/{id}/rules/new",
        "/bot/999/rules/new",
        Supervisor,
        &[("id", "r")],
    ),
    ("GET", "/bot/{id}/rules/{rule}", "/bot/999/rules/r", Supervisor, &[]),
    (
        "POST",
        "/bot/{id}/rules/{rule}",
        "/bot/999/rules/r",
        Supervisor,
        &[("id", "r")],
    ),
    (
        "POST",
        "/bot/{id}/rules/{rule}/toggle",
        "/bot/999/rules/r/toggle",
        Supervisor,
        &[],
    ),
    (
        "POST",
        "/bot/{id}/rules/{rule}/delete",
        "/bot/999/rules/r/delete",
        Supervisor,
        &[],
    ),
    ("GET", "/bot/{id}/flows/new", "/bot/999/flows/new", Supervisor, &[]),
    (
        "POST",
        "/bot/{id}/flows/new",
        "/bot/999/flows/new",
        Supervisor,
        &[("id", "f")],
    ),
    ("GET", "/bot/{id}/flows/{flow}", "/bot/999/flows/f", Supervisor, &[]),
    (
        "POST",
        "/bot/{id}/flows/{flow}",
        "/bot/999/flows/f",
        Supervisor,
        &[("id", "f")],
    ),
    (
        "POST",
        "/bot/{id}/flows/{flow}/json",
        "/bot/999/flows/f/json",
        Supervisor,
        &[("json", "{}")],
    ),
    (
        "POST",
        "/bot/{id}/flows/{flow}/toggle",
        "/bot/999/flows/f/toggle",
        Supervisor,
        &[],
    ),
    (
        "POST",
        "/bot/{id}/flows/{flow}/delete",
        "/bot/999/flows/f/delete",
        Supervisor,
        &[],
    ),
    ("GET", "/bot/{id}/test", "/bot/999/test", Supervisor, &[]),
    (
        "POST",
        "/bot/{id}/test",
        "/bot/999/test",
        Supervisor,
        &[("text", "harga")],
    ),
    ("POST", "/inbox/{id}/bot", "/inbox/999/bot", User, &[]),
    ("GET", "/admin/inbox", "/admin/inbox", Admin, &[]),
    ("POST", "/admin/inbox", "/admin/inbox", Admin, &[("assign_cap", "20")]),
    ("GET", "/api/v1/conversations", "/api/v1/conversations", ApiKey, &[]),
    (
        "GET",
        "/api/v1/conversations/{id}",
        "/api/v1/conversations/1",
        ApiKey,
        &[],
    ),
    (
        "POST",
        "/api/v1/conversations/{id}/assign",
        "/api/v1/conversations/1/assign",
        ApiKey,
        &[],
    ),
    (
        "POST",
        "/api/v1/conversations/{id}/status",
        "/api/v1/conversations/1/status",
        ApiKey,
        &[],
    ),
    (
        "POST",
        "/api/v1/conversations/{id}/labels",
        "/api/v1/conversations/1/labels",
        ApiKey,
        &[],
    ),
    (
        "GET",
        "/api/v1/conversations/{id}/messages",
        "/api/v1/conversations/1/messages",
        ApiKey,
        &[],
    ),
    ("GET", "/api/v1/labels", "/api/v1/labels", ApiKey, &[]),
    (
        "POST",
        "/admin/jobs/{name}/run",
        "/admin/jobs/purge_expired_sessions/run",
        Admin,
        &[],
    ),
    // Privacy operations (issue 13): admins only; a notice is acknowledged by anyone.
    ("GET", "/admin/privacy", "/admin/privacy", Admin, &[]),
    (
        "POST",
        "/admin/privacy/retention",
        "/admin/privacy/retention",
        Admin,
        &[("kind", "messages"), ("days", "365")],
    ),
    (
        "POST",
        "/admin/privacy/holds",
        "/admin/privacy/holds",
        Admin,
        &[("contact_id", "999")],
    ),
    (
        "POST",
        "/admin/privacy/holds/{contact}/lift",
        "/admin/privacy/holds/999/lift",
        Admin,
        &[],
    ),
    ("GET", "/admin/privacy/requests", "/admin/privacy/requests", Admin, &[]),
    (
        "POST",
        "/admin/privacy/requests",
        "/admin/privacy/requests",
        Admin,
        &[("kind", "")],
    ),
    (
        "GET",
        "/admin/privacy/requests/{id}",
        "/admin/privacy/requests/999",
        Admin,
        &[],
    ),
    (
        "GET",
        "/admin/privacy/requests/{id}/export",
        "/admin/privacy/requests/999/export",
        Admin,
        &[],
    ),
    (
        "POST",
        "/admin/privacy/requests/{id}/erase",
        "/admin/privacy/requests/999/erase",
        Admin,
        &[("confirm", "1")],
    ),
    (
        "POST",
        "/admin/privacy/requests/{id}/objection",
        "/admin/privacy/requests/999/objection",
        Admin,
        &[],
    ),
    (
        "POST",
        "/admin/privacy/requests/{id}/close",
        "/admin/privacy/requests/999/close",
        Admin,
        &[("status", "done"), ("outcome", "x")],
    ),
    ("GET", "/admin/notices", "/admin/notices", Admin, &[]),
    ("POST", "/admin/notices", "/admin/notices", Admin, &[("title", "")]),
    (
        "POST",
        "/admin/notices/{id}/withdraw",
        "/admin/notices/999/withdraw",
        Admin,
        &[],
    ),
    ("POST", "/notices/{id}/ack", "/notices/999/ack", User, &[]),
    (
        "GET",
        "/api/v1/privacy/requests",
        "/api/v1/privacy/requests",
        ApiKey,
        &[],
    ),
    (
        "POST",
        "/api/v1/privacy/requests",
        "/api/v1/privacy/requests",
        ApiKey,
        &[],
    ),
    (
        "GET",
        "/api/v1/privacy/requests/{id}",
        "/api/v1/privacy/requests/1",
        ApiKey,
        &[],
    ),
    (
        "GET",
        "/api/v1/privacy/requests/{id}/export",
        "/api/v1/privacy/requests/1/export",
        ApiKey,
        &[],
    ),
    (
        "POST",
        "/api/v1/privacy/requests/{id}/erase",
        "/api/v1/privacy/requests/1/erase",
        ApiKey,
        &[],
    ),
];

/// The routes registered in the code: every `web::resource("…")` under src/.
fn routes_in_code() -> Vec<String> {
    fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                for part in text.split("web::resource(\"").skip(1) {
                    out.push(part.split('"').next().unwrap().to_string());
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(std::path::Path::new("src"), &mut out);
    out
}

#[test]
fn the_table_covers_every_route() {
    let routes = routes_in_code();
    assert!(routes.len() > 20);
    for r in &routes {
        assert!(
            TABLE.iter().any(|(_, pattern, ..)| pattern == r),
            "route {r} is missing from the role table"
        );
    }
}

/// Sends the request the way a browser of that role would (with its CSRF token).
async fn request(b: &Browser, method: &str, path: &str, fields: &[(&str, &str)]) -> crate::common::Resp {
    if method == "GET" {
        return b.get(path).await;
    }
    // A page every visitor can load gives this browser's current token.
    b.get("/healthz").await;
    let login = b.get("/login").await;
    let token = crate::common::csrf_in(&login.body);
    let token = match token {
        Some(t) => t,
        None => crate::common::csrf_in(&b.get("/account").await.body).expect("token"),
    };
    let mut all = vec![("csrf", token.as_str())];
    all.extend_from_slice(fields);
    b.post_raw(path, &all).await
}

fn refused(status: u16) -> bool {
    status == 401 || status == 403
}

#[tokio::test]
async fn route_by_role_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = crate::common::test_config(dir.path());
    // Treat loopback as a proxy so /metrics is judged by role, not by address.
    cfg.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    let app = TestApp::start_with(dir, cfg).await;
    let (admin, _) = app.admin("owner@toko.id").await;
    app.create_user(&admin, "super@toko.id", "supervisor").await;
    app.create_user(&admin, "agen@toko.id", "agent").await;
    // The target of the admin actions in the table (role, reset MFA, ...).
    app.create_user(&admin, "target@toko.id", "agent").await;
    let anon = app.browser();
    let agent = app.browser();
    agent.login("agen@toko.id", PASSWORD).await;
    let supervisor = app.browser();
    supervisor.login("super@toko.id", PASSWORD).await;
    let who: [(&str, &Browser); 4] = [
        ("anonymous", &anon),
        ("agent", &agent),
        ("supervisor", &supervisor),
        ("admin", &admin),
    ];

    let mut failures = Vec::new();
    for (method, pattern, path, access, fields) in TABLE {
        for (role, b) in who {
            // The admin stays signed in through the whole table: skip sign-out for it.
            if *path == "/logout" && role != "anonymous" {
                continue;
            }
            let r = if *access == Stream {
                b.get_headers(path).await
            } else {
                request(b, method, path, fields).await
            };
            if *access == ApiKey {
                if r.status != 401 {
                    failures.push(format!("{method} {pattern} as {role}: {}", r.status));
                }
                continue;
            }
            if *access == MetaToken {
                // A session changes nothing: without the verify token everyone gets 403.
                if r.status != 403 {
                    failures.push(format!("{method} {pattern} as {role}: {}", r.status));
                }
                continue;
            }
            let allowed = match (access, role) {
                (Public | MetaToken | ApiKey, _) => true,
                (User | Stream, r) => r != "anonymous",
                (Supervisor, r) => r == "supervisor" || r == "admin",
                (Admin | AdminOrLoopback, r) => r == "admin",
            };
            let ok = if allowed {
                !refused(r.status) && !r.location().unwrap_or("").starts_with("/login?next")
            } else if role == "anonymous" {
                if *method == "GET" {
                    r.status == 401 || (r.status == 303 && r.location().unwrap_or("").starts_with("/login"))
                } else {
                    r.status == 401
                }
            } else {
                r.status == 403
            };
            if !ok {
                failures.push(format!("{method} {pattern} as {role}: {} {:?}", r.status, r.location()));
            }
        }
    }
    assert!(failures.is_empty(), "role matrix failures:\n{}", failures.join("\n"));
    // Everyone is still who they were (no request in the table signed anyone out).
    assert_eq!(admin.get("/admin/users").await.status, 200);
    assert_eq!(agent.get("/account").await.status, 200);
}
