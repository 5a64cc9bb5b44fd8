//! The Graph API client: Meta's URLs and JSON stay in here. Errors are classified by
//! the error table in the Cloud API reference (branch on `code`, never on titles or
//! HTTP status), so every caller (connection test, outbox, campaigns) reacts the same.

use super::templates::{Button, Examples};
use serde::Deserialize;
use std::time::Duration;

/// How a caller should react to a Graph error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Temporary: retry with backoff.
    Retry,
    /// Retry much later (minutes to a day).
    RetryLater,
    /// This request will never succeed as it is: show the reason.
    Final,
    /// The channel itself is broken (token, account, registration): stop sending on
    /// the number and tell an admin.
    StopChannel,
}

/// Meta's error table, reduced to what a sender must do (REFERENCE.md §8).
pub fn classify(code: i64) -> ErrorClass {
    use ErrorClass::{Final, Retry, RetryLater, StopChannel};
    match code {
        0 | 33 | 190 | 368 | 131031 | 131042 | 131045 | 133010 => StopChannel,
        2 | 131000 | 131016 | 130429 | 131056 | 131057 | 133004 => Retry,
        4 | 80007 | 131048 | 131049 | 132069 | 133008 | 133009 | 133015 | 133016 => RetryLater,
        _ => Final,
    }
}

/// What went wrong with a send, in words a shop's agent understands: the message key
/// (`whatsapp.why.*` in the catalogues) for Meta's error `code`, `None` when Meta never
/// answered (no connection, a timeout). Meta's own text stays beside it for whoever
/// has to dig further.
pub fn plain_reason(code: Option<i64>) -> &'static str {
    match code {
        None => "whatsapp.why.unreachable",
        Some(190 | 0) => "whatsapp.why.token",
        Some(10 | 200 | 294) => "whatsapp.why.permission",
        Some(131_047) => "whatsapp.why.window_closed",
        Some(131_026) => "whatsapp.why.not_on_whatsapp",
        Some(131_050) => "whatsapp.why.stopped_marketing",
        Some(131_049) => "whatsapp.why.marketing_limit",
        Some(130_429 | 131_056 | 80_007 | 4) => "whatsapp.why.too_fast",
        Some(133_010) => "whatsapp.why.not_registered",
        Some(368 | 131_031) => "whatsapp.why.restricted",
        Some(131_042) => "whatsapp.why.payment",
        Some(132_000..=132_999) => "whatsapp.why.template",
        Some(131_051..=131_053) => "whatsapp.why.media",
        Some(_) => "whatsapp.why.other",
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum GraphError {
    /// Meta answered with an error object.
    #[error("Meta error {code}: {title}{}", if details.is_empty() { String::new() } else { format!(" ({details})") })]
    Api {
        code: i64,
        title: String,
        details: String,
        http_status: u16,
    },
    /// No usable answer (connection, timeout, not JSON): the outcome is unknown.
    #[error("no answer from Meta: {0}")]
    Transport(String),
}

impl GraphError {
    pub fn class(&self) -> ErrorClass {
        match self {
            GraphError::Api { code, .. } => classify(*code),
            GraphError::Transport(_) => ErrorClass::Retry,
        }
    }
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: String,
    #[serde(default)]
    code: i64,
    #[serde(default)]
    error_user_title: Option<String>,
    /// Meta's sentence for people (e.g. why a template was refused).
    #[serde(default)]
    error_user_msg: Option<String>,
    #[serde(default)]
    error_data: Option<ErrorData>,
}

#[derive(Deserialize)]
struct ErrorData {
    #[serde(default)]
    details: String,
}

/// What "Test connection" shows about a number.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct PhoneInfo {
    #[serde(default)]
    pub verified_name: String,
    #[serde(default)]
    pub display_phone_number: String,
    #[serde(default)]
    pub quality_rating: String,
    #[serde(default)]
    pub throughput: Option<Throughput>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Throughput {
    #[serde(default)]
    pub level: String,
}

/// A message template as Whacaster keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateInfo {
    pub meta_id: String,
    pub name: String,
    pub language: String,
    pub status: String,
    pub category: String,
    pub quality: String,
    pub named_params: bool,
    pub header_text: String,
    pub body_text: String,
    pub footer_text: String,
    /// Variables in the body (`{{1}}`… or `{{name}}`).
    pub param_count: usize,
    /// `TEXT`, `IMAGE`, `VIDEO`, `DOCUMENT`, or empty.
    pub header_format: String,
    pub buttons: Vec<Button>,
    pub examples: Examples,
    /// Meta's reason code when rejected (`NONE` otherwise).
    pub rejected_reason: String,
}

/// What Meta answered to a template submitted for review.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct CreatedTemplate {
    pub id: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub category: String,
}

/// Counts distinct `{{…}}` variables in a template text.
pub fn count_params(text: &str) -> usize {
    let mut seen = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                seen.insert(after[..end].trim().to_string());
                rest = &after[end + 2..];
            }
            None => break,
        }
    }
    seen.len()
}

fn template_from_json(t: &serde_json::Value) -> TemplateInfo {
    let text = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    let mut info = TemplateInfo {
        meta_id: text(t, "id"),
        name: text(t, "name"),
        language: text(t, "language"),
        status: text(t, "status"),
        category: text(t, "category"),
        quality: t.get("quality_score").map(|q| text(q, "score")).unwrap_or_default(),
        named_params: text(t, "parameter_format").eq_ignore_ascii_case("NAMED"),
        header_text: String::new(),
        body_text: String::new(),
        footer_text: String::new(),
        param_count: 0,
        header_format: String::new(),
        buttons: Vec::new(),
        examples: Examples::default(),
        rejected_reason: text(t, "rejected_reason"),
    };
    let list = |v: &serde_json::Value, k: &str| v.get(k).and_then(|c| c.as_array()).cloned().unwrap_or_default();
    for c in list(t, "components") {
        match text(&c, "type").to_ascii_uppercase().as_str() {
            "HEADER" => {
                info.header_format = text(&c, "format").to_ascii_uppercase();
                if info.header_format == "TEXT" {
                    info.header_text = text(&c, "text");
                    let example = c.get("example");
                    info.examples.header = example
                        .and_then(|e| e.get("header_text"))
                        .and_then(|h| h.get(0))
                        .and_then(|h| h.as_str())
                        .or_else(|| {
                            example
                                .and_then(|e| e.get("header_text_named_params"))
                                .and_then(|h| h.get(0))
                                .and_then(|h| h.get("example"))
                                .and_then(|h| h.as_str())
                        })
                        .unwrap_or("")
                        .to_string();
                }
            }
            "BODY" => {
                info.body_text = text(&c, "text");
                let example = c.get("example");
                let names = super::templates::draft::distinct_names(&info.body_text);
                if let Some(values) = example
                    .and_then(|e| e.get("body_text"))
                    .and_then(|b| b.get(0))
                    .and_then(|b| b.as_array())
                {
                    for (i, v) in values.iter().enumerate() {
                        if let Some(v) = v.as_str() {
                            info.examples.body.insert((i + 1).to_string(), v.to_string());
                        }
                    }
                }
                for p in example.map(|e| list(e, "body_text_named_params")).unwrap_or_default() {
                    info.examples.body.insert(text(&p, "param_name"), text(&p, "example"));
                }
                info.examples.body.retain(|k, _| names.contains(k));
            }
            "FOOTER" => info.footer_text = text(&c, "text"),
            "BUTTONS" => {
                for b in list(&c, "buttons") {
                    let button = match text(&b, "type").to_ascii_uppercase().as_str() {
                        "URL" => Button::Url {
                            text: text(&b, "text"),
                            url: text(&b, "url"),
                            example: String::new(),
                        },
                        "PHONE_NUMBER" => Button::Phone {
                            text: text(&b, "text"),
                            phone: text(&b, "phone_number"),
                        },
                        "COPY_CODE" => Button::CopyCode {
                            example: text(&b, "example"),
                        },
                        // Quick replies, and OTP, flow, catalogue… buttons shown as what they say.
                        _ => Button::QuickReply { text: text(&b, "text") },
                    };
                    info.buttons.push(button);
                }
            }
            _ => {}
        }
    }
    info.param_count = count_params(&info.body_text);
    info
}

#[derive(Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    base: String,
    /// Hosts called since the last `take_hosts`, with how often (P11's evidence).
    hosts: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, i64>>>,
}

impl GraphClient {
    /// `base_url` and `api_version` come from the configuration.
    pub fn new(base_url: &str, api_version: &str, timeout_secs: u64) -> Result<GraphClient, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(timeout_secs.max(1)))
            .https_only(!is_loopback_http(base_url))
            .user_agent(concat!("Whacaster/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(GraphClient {
            http,
            base: format!("{}/{}", base_url.trim_end_matches('/'), api_version),
            hosts: std::sync::Arc::default(),
        })
    }

    fn saw(&self, url: &reqwest::Url) {
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => return,
        };
        if let Ok(mut m) = self.hosts.lock() {
            *m.entry(host).or_insert(0) += 1;
        }
    }

    /// The hosts called (and how often) since the last call; the evidence job stores them.
    pub fn take_hosts(&self) -> Vec<(String, i64)> {
        self.hosts.lock().map(|mut m| m.drain().collect()).unwrap_or_default()
    }

    async fn call<T: serde::de::DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T, GraphError> {
        let (http, req) = req.build_split();
        let req = req.map_err(|e| GraphError::Transport(e.without_url().to_string()))?;
        self.saw(req.url());
        let resp = http
            .execute(req)
            .await
            .map_err(|e| GraphError::Transport(e.without_url().to_string()))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| GraphError::Transport(e.without_url().to_string()))?;
        if (200..300).contains(&status) {
            return serde_json::from_slice(&bytes)
                .map_err(|e| GraphError::Transport(format!("unexpected answer: {e}")));
        }
        match serde_json::from_slice::<ErrorEnvelope>(&bytes) {
            Ok(env) => {
                let e = env.error;
                let title = e.error_user_title.unwrap_or(e.message);
                let details = e
                    .error_data
                    .map(|d| d.details)
                    .filter(|d| !d.is_empty())
                    .or(e.error_user_msg)
                    .unwrap_or_default();
                Err(GraphError::Api {
                    code: e.code,
                    title,
                    details,
                    http_status: status,
                })
            }
            Err(_) => Err(GraphError::Transport(format!("HTTP {status} without an error object"))),
        }
    }

    /// `GET /{phone-number-id}`: verified name, quality rating, throughput.
    pub async fn phone_number(&self, phone_number_id: &str, token: &str) -> Result<PhoneInfo, GraphError> {
        let url = format!("{}/{phone_number_id}", self.base);
        let req = self
            .http
            .get(url)
            .bearer_auth(token)
            .query(&[("fields", "verified_name,display_phone_number,quality_rating,throughput")]);
        self.call(req).await
    }

    /// `POST /{phone-number-id}/messages`: the wamid Meta assigned (none for mark-as-read).
    pub async fn send(
        &self,
        phone_number_id: &str,
        token: &str,
        body: &serde_json::Value,
    ) -> Result<Option<String>, GraphError> {
        #[derive(Deserialize)]
        struct Sent {
            #[serde(default)]
            messages: Vec<SentId>,
        }
        #[derive(Deserialize)]
        struct SentId {
            id: String,
        }
        let url = format!("{}/{phone_number_id}/messages", self.base);
        let sent: Sent = self.call(self.http.post(url).bearer_auth(token).json(body)).await?;
        Ok(sent.messages.into_iter().next().map(|m| m.id))
    }

    /// `GET /{waba-id}/message_templates`, every page.
    pub async fn templates(&self, waba_id: &str, token: &str) -> Result<Vec<TemplateInfo>, GraphError> {
        let url = format!("{}/{waba_id}/message_templates", self.base);
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        // A WABA has at most a few thousand templates; 100 pages is a generous bound.
        for _ in 0..100 {
            let mut q = vec![
                (
                    "fields",
                    "id,name,language,status,category,parameter_format,components,quality_score,rejected_reason"
                        .to_string(),
                ),
                ("limit", "100".to_string()),
            ];
            if let Some(a) = &after {
                q.push(("after", a.clone()));
            }
            let page: serde_json::Value = self.call(self.http.get(&url).bearer_auth(token).query(&q)).await?;
            let data = page.get("data").and_then(|d| d.as_array()).cloned().unwrap_or_default();
            out.extend(data.iter().map(template_from_json));
            let has_next = page.get("paging").and_then(|p| p.get("next")).is_some();
            after = page
                .get("paging")
                .and_then(|p| p.get("cursors"))
                .and_then(|c| c.get("after"))
                .and_then(|a| a.as_str())
                .map(str::to_string);
            if data.is_empty() || !has_next || after.is_none() {
                break;
            }
        }
        Ok(out)
    }

    /// `GET /{media-id}` then the short-lived URL, both with the token; at most `max` bytes.
    /// Returns (bytes, mime type, Meta's sha256 as given).
    pub async fn download_media(
        &self,
        media_id: &str,
        phone_number_id: &str,
        token: &str,
        max: usize,
    ) -> Result<(Vec<u8>, String, String), GraphError> {
        #[derive(Deserialize)]
        struct MediaUrl {
            url: String,
            #[serde(default)]
            mime_type: String,
            #[serde(default)]
            sha256: String,
            #[serde(default)]
            file_size: Option<u64>,
        }
        let info: MediaUrl = self
            .call(
                self.http
                    .get(format!("{}/{media_id}", self.base))
                    .bearer_auth(token)
                    .query(&[("phone_number_id", phone_number_id)]),
            )
            .await?;
        if info.file_size.is_some_and(|s| s > max as u64) {
            return Err(GraphError::Api {
                code: 131052,
                title: "media file too big".into(),
                details: String::new(),
                http_status: 200,
            });
        }
        // The URL comes from Meta's answer: only ever fetched over TLS (or loopback in tests).
        if !(info.url.starts_with("https://") || is_loopback_http(&info.url)) {
            return Err(GraphError::Transport("media URL is not HTTPS".into()));
        }
        if let Ok(u) = reqwest::Url::parse(&info.url) {
            self.saw(&u);
        }
        let mut resp = self
            .http
            .get(&info.url)
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| GraphError::Transport(e.without_url().to_string()))?;
        if !resp.status().is_success() {
            return Err(GraphError::Transport(format!(
                "media download answered HTTP {}",
                resp.status().as_u16()
            )));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| GraphError::Transport(e.without_url().to_string()))?
        {
            if bytes.len() + chunk.len() > max {
                return Err(GraphError::Api {
                    code: 131052,
                    title: "media file too big".into(),
                    details: String::new(),
                    http_status: 200,
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok((bytes, info.mime_type, info.sha256))
    }

    /// `POST /{phone-number-id}/media` (multipart): the media id to send with.
    pub async fn upload_media(
        &self,
        phone_number_id: &str,
        token: &str,
        bytes: Vec<u8>,
        mime: &str,
        filename: &str,
    ) -> Result<String, GraphError> {
        #[derive(Deserialize)]
        struct Uploaded {
            id: String,
        }
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(filename.to_string())
            .mime_str(mime)
            .map_err(|e| GraphError::Transport(e.to_string()))?;
        let form = reqwest::multipart::Form::new()
            .text("messaging_product", "whatsapp")
            .text("type", mime.to_string())
            .part("file", part);
        let url = format!("{}/{phone_number_id}/media", self.base);
        let up: Uploaded = self
            .call(self.http.post(url).bearer_auth(token).multipart(form))
            .await?;
        Ok(up.id)
    }

    /// `POST /{waba-id}/message_templates`: submits a template for review.
    pub async fn create_template(
        &self,
        waba_id: &str,
        token: &str,
        body: &serde_json::Value,
    ) -> Result<CreatedTemplate, GraphError> {
        let url = format!("{}/{waba_id}/message_templates", self.base);
        self.call(self.http.post(url).bearer_auth(token).json(body)).await
    }

    /// `DELETE /{waba-id}/message_templates?name=…&hsm_id=…`: one template (that
    /// language only, thanks to its id).
    pub async fn delete_template(
        &self,
        waba_id: &str,
        token: &str,
        name: &str,
        meta_id: &str,
    ) -> Result<(), GraphError> {
        #[derive(Deserialize)]
        struct Success {
            #[serde(default)]
            success: bool,
        }
        let url = format!("{}/{waba_id}/message_templates", self.base);
        let mut q = vec![("name", name)];
        if !meta_id.is_empty() {
            q.push(("hsm_id", meta_id));
        }
        let s: Success = self.call(self.http.delete(url).bearer_auth(token).query(&q)).await?;
        if s.success {
            Ok(())
        } else {
            Err(GraphError::Transport("Meta answered success: false".into()))
        }
    }

    /// The Resumable Upload API, for a media header's sample: a session on the Meta app
    /// (`POST /{app-id}/uploads`), then the bytes in one piece (`POST /upload:<id>`,
    /// `file_offset: 0`, `Authorization: OAuth`). Returns the handle (`h`) that goes in
    /// the template's `header_handle`.
    pub async fn upload_sample(
        &self,
        app_id: &str,
        token: &str,
        file_name: &str,
        mime: &str,
        bytes: Vec<u8>,
    ) -> Result<String, GraphError> {
        #[derive(Deserialize)]
        struct Session {
            id: String,
        }
        #[derive(Deserialize)]
        struct Handle {
            h: String,
        }
        let length = bytes.len().to_string();
        let session: Session = self
            .call(
                self.http
                    .post(format!("{}/{app_id}/uploads", self.base))
                    .bearer_auth(token)
                    .query(&[("file_name", file_name), ("file_length", &length), ("file_type", mime)]),
            )
            .await?;
        if !session.id.starts_with("upload:") || session.id.contains('/') {
            return Err(GraphError::Transport("unexpected upload session id".into()));
        }
        let handle: Handle = self
            .call(
                self.http
                    .post(format!("{}/{}", self.base, session.id))
                    .header("Authorization", format!("OAuth {token}"))
                    .header("file_offset", "0")
                    .body(bytes),
            )
            .await?;
        Ok(handle.h)
    }

    /// `POST /{waba-id}/subscribed_apps`: without it Meta sends no webhooks for the WABA.
    pub async fn subscribe_app(&self, waba_id: &str, token: &str) -> Result<bool, GraphError> {
        #[derive(Deserialize)]
        struct Success {
            #[serde(default)]
            success: bool,
        }
        let url = format!("{}/{waba_id}/subscribed_apps", self.base);
        let s: Success = self.call(self.http.post(url).bearer_auth(token)).await?;
        Ok(s.success)
    }
}

/// Plain HTTP is allowed only to this machine (tests, a local proxy): every call to
/// Meta goes over TLS (PRIVACY-PROMISES P13).
pub fn is_loopback_http(base_url: &str) -> bool {
    url::Url::parse(base_url)
        .is_ok_and(|u| u.scheme() == "http" && matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_classes_follow_the_table() {
        assert_eq!(classify(190), ErrorClass::StopChannel);
        assert_eq!(classify(131031), ErrorClass::StopChannel);
        assert_eq!(classify(130429), ErrorClass::Retry);
        assert_eq!(classify(131056), ErrorClass::Retry);
        assert_eq!(classify(131047), ErrorClass::Final);
        assert_eq!(classify(131026), ErrorClass::Final);
        assert_eq!(classify(132000), ErrorClass::Final);
        assert_eq!(classify(131049), ErrorClass::RetryLater);
        assert_eq!(
            classify(999_999),
            ErrorClass::Final,
            "unknown codes are not retried blindly"
        );
        assert_eq!(GraphError::Transport("timeout".into()).class(), ErrorClass::Retry);
    }

    #[test]
    fn every_listed_code_has_its_class() {
        let table: [(&[i64], ErrorClass); 3] = [
            (
                &[0, 33, 190, 368, 131031, 131042, 131045, 133010],
                ErrorClass::StopChannel,
            ),
            (&[2, 131000, 131016, 130429, 131056, 131057, 133004], ErrorClass::Retry),
            (
                &[4, 80007, 131048, 131049, 132069, 133008, 133009, 133015, 133016],
                ErrorClass::RetryLater,
            ),
        ];
        for (codes, class) in table {
            for &code in codes {
                assert_eq!(classify(code), class, "code {code}");
            }
        }
        for code in [-1, 1, 100, 131026, 131047, 131051, 132001, 135000] {
            assert_eq!(classify(code), ErrorClass::Final, "code {code}");
        }
    }

    #[test]
    fn an_api_error_is_classified_by_its_code_not_its_http_status() {
        let api = |code: i64, http_status: u16| GraphError::Api {
            code,
            title: "t".into(),
            details: String::new(),
            http_status,
        };
        assert_eq!(api(190, 401).class(), ErrorClass::StopChannel);
        assert_eq!(api(130429, 400).class(), ErrorClass::Retry);
        assert_eq!(
            api(131047, 500).class(),
            ErrorClass::Final,
            "a 5xx is not retried by itself"
        );
        assert_eq!(api(80007, 429).class(), ErrorClass::RetryLater);
    }

    #[test]
    fn an_error_reads_with_its_details_when_there_are_any() {
        let e = GraphError::Api {
            code: 131047,
            title: "Re-engagement message".into(),
            details: "24 hours have passed".into(),
            http_status: 400,
        };
        assert_eq!(
            e.to_string(),
            "Meta error 131047: Re-engagement message (24 hours have passed)"
        );
        let bare = GraphError::Api {
            code: 2,
            title: "Service temporarily unavailable".into(),
            details: String::new(),
            http_status: 503,
        };
        assert_eq!(bare.to_string(), "Meta error 2: Service temporarily unavailable");
    }

    #[test]
    fn only_loopback_may_be_plain_http() {
        assert!(is_loopback_http("http://127.0.0.1:9999"));
        assert!(!is_loopback_http("http://graph.example.com"));
        assert!(!is_loopback_http("https://graph.facebook.com"));
    }
}
