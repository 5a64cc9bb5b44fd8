//! What Whacaster sends, in its own terms, and the one place that turns it into
//! Meta's JSON (REFERENCE.md §4.3).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutMessage {
    Text {
        body: String,
        preview_url: bool,
        reply_to: Option<String>,
    },
    /// `media` is image, video, audio, document or sticker; `media_id` from an upload,
    /// or an `https://` link Meta fetches (the bot's pictures and files).
    Media {
        media: String,
        media_id: String,
        caption: Option<String>,
        filename: Option<String>,
        reply_to: Option<String>,
    },
    /// Body parameters of an approved template, in order; for a template with named
    /// variables, `param_names` names each (empty: positional).
    Template {
        name: String,
        language: String,
        body_params: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        param_names: Vec<String>,
        /// The file of an IMAGE, VIDEO or DOCUMENT header.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<HeaderMedia>,
    },
    /// Up to three reply buttons: (id, title).
    Buttons {
        body: String,
        buttons: Vec<(String, String)>,
        reply_to: Option<String>,
    },
    /// A list: menu button label and rows (id, title, description) in one section.
    List {
        body: String,
        button: String,
        rows: Vec<(String, String, Option<String>)>,
    },
    Reaction {
        message_id: String,
        emoji: String,
    },
    /// Blue ticks for a received message.
    MarkRead {
        message_id: String,
    },
}

/// A template header's file: `kind` is image, video or document; `media` an uploaded
/// media id, or an `https://` link Meta fetches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderMedia {
    pub kind: String,
    pub media: String,
}

impl OutMessage {
    pub fn kind(&self) -> &'static str {
        match self {
            OutMessage::Text { .. } => "text",
            OutMessage::Media { .. } => "media",
            OutMessage::Template { .. } => "template",
            OutMessage::Buttons { .. } | OutMessage::List { .. } => "interactive",
            OutMessage::Reaction { .. } => "reaction",
            OutMessage::MarkRead { .. } => "read",
        }
    }

    /// Whether a successful send has a wamid (mark-as-read answers `success` only).
    pub fn has_wamid(&self) -> bool {
        !matches!(self, OutMessage::MarkRead { .. })
    }

    /// A short text for the conversation view.
    pub fn summary(&self) -> String {
        match self {
            OutMessage::Text { body, .. } | OutMessage::Buttons { body, .. } | OutMessage::List { body, .. } => {
                body.clone()
            }
            OutMessage::Media { caption, filename, .. } => {
                caption.clone().or_else(|| filename.clone()).unwrap_or_default()
            }
            OutMessage::Template { name, .. } => name.clone(),
            OutMessage::Reaction { emoji, .. } => emoji.clone(),
            OutMessage::MarkRead { .. } => String::new(),
        }
    }
}

/// Meta's request body for sending `msg` to `recipient` (a phone in E.164 with `+`, or
/// a BSUID, which goes in `recipient` instead of `to`).
/// The send request for `msg`. `callback` goes out as `biz_opaque_callback_data`, which
/// Meta echoes in the message's status webhooks.
#[expect(clippy::too_many_lines, reason = "one arm per message type, as Meta shapes them")]
pub fn to_meta(recipient: &str, msg: &OutMessage, callback: Option<&str>) -> Value {
    let mut body = json!({"messaging_product": "whatsapp"});
    if let OutMessage::MarkRead { message_id } = msg {
        body["status"] = json!("read");
        body["message_id"] = json!(message_id);
        return body;
    }
    if recipient.starts_with('+') || recipient.bytes().all(|b| b.is_ascii_digit()) {
        body["recipient_type"] = json!("individual");
        body["to"] = json!(recipient);
    } else {
        body["recipient"] = json!(recipient);
    }
    let context = |reply_to: &Option<String>| reply_to.as_ref().map(|id| json!({"message_id": id}));
    let (kind, object, ctx) = match msg {
        OutMessage::Text {
            body: text,
            preview_url,
            reply_to,
        } => (
            "text",
            json!({"body": text, "preview_url": preview_url}),
            context(reply_to),
        ),
        OutMessage::Media {
            media,
            media_id,
            caption,
            filename,
            reply_to,
        } => {
            let mut o = if media_id.starts_with("https://") {
                json!({"link": media_id})
            } else {
                json!({"id": media_id})
            };
            if let Some(c) = caption.as_ref().filter(|_| media != "audio" && media != "sticker") {
                o["caption"] = json!(c);
            }
            if let Some(f) = filename.as_ref().filter(|_| media == "document") {
                o["filename"] = json!(f);
            }
            (media.as_str(), o, context(reply_to))
        }
        OutMessage::Template {
            name,
            language,
            body_params,
            param_names,
            header,
        } => {
            let mut t = json!({"name": name, "language": {"code": language}});
            let mut components = Vec::new();
            if let Some(h) = header {
                let file = if h.media.starts_with("https://") {
                    json!({"link": h.media})
                } else {
                    json!({"id": h.media})
                };
                components.push(json!({"type": "header", "parameters": [{"type": h.kind, h.kind.as_str(): file}]}));
            }
            if !body_params.is_empty() {
                let params: Vec<Value> = body_params
                    .iter()
                    .enumerate()
                    .map(|(i, p)| match param_names.get(i) {
                        Some(n) => json!({"type": "text", "parameter_name": n, "text": p}),
                        None => json!({"type": "text", "text": p}),
                    })
                    .collect();
                components.push(json!({"type": "body", "parameters": params}));
            }
            if !components.is_empty() {
                t["components"] = json!(components);
            }
            ("template", t, None)
        }
        OutMessage::Buttons {
            body: text,
            buttons,
            reply_to,
        } => {
            let buttons: Vec<Value> = buttons
                .iter()
                .map(|(id, title)| json!({"type": "reply", "reply": {"id": id, "title": title}}))
                .collect();
            (
                "interactive",
                json!({"type": "button", "body": {"text": text}, "action": {"buttons": buttons}}),
                context(reply_to),
            )
        }
        OutMessage::List {
            body: text,
            button,
            rows,
        } => {
            let rows: Vec<Value> = rows
                .iter()
                .map(|(id, title, desc)| {
                    let mut r = json!({"id": id, "title": title});
                    if let Some(d) = desc {
                        r["description"] = json!(d);
                    }
                    r
                })
                .collect();
            let section = json!({"title": button, "rows": rows});
            (
                "interactive",
                json!({"type": "list", "body": {"text": text}, "action": {"button": button, "sections": [section]}}),
                None,
            )
        }
        OutMessage::Reaction { message_id, emoji } => {
            ("reaction", json!({"message_id": message_id, "emoji": emoji}), None)
        }
        OutMessage::MarkRead { .. } => ("read", Value::Null, None),
    };
    body["type"] = json!(kind);
    body[kind] = object;
    if let Some(c) = ctx {
        body["context"] = c;
    }
    if let Some(cb) = callback {
        body["biz_opaque_callback_data"] = json!(cb);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[expect(clippy::too_many_lines, reason = "one case per message type")]
    fn shapes_follow_the_reference() {
        let t = to_meta(
            "+6281298765432",
            &OutMessage::Text {
                body: "Halo".into(),
                preview_url: true,
                reply_to: Some("wamid.X".into()),
            },
            None,
        );
        assert_eq!(t["to"], "+6281298765432");
        assert_eq!(t["text"]["body"], "Halo");
        assert_eq!(t["context"]["message_id"], "wamid.X");
        let b = to_meta(
            "ID.1349",
            &OutMessage::Reaction {
                message_id: "wamid.Y".into(),
                emoji: "👍".into(),
            },
            None,
        );
        assert_eq!(b["recipient"], "ID.1349");
        assert!(b.get("to").is_none());
        let tpl = to_meta(
            "+62811",
            &OutMessage::Template {
                name: "order_shipped".into(),
                language: "id".into(),
                body_params: vec!["Ana".into()],
                param_names: Vec::new(),
                header: None,
            },
            None,
        );
        assert_eq!(tpl["template"]["components"][0]["parameters"][0]["text"], "Ana");
        let named = to_meta(
            "+62811",
            &OutMessage::Template {
                name: "welcome".into(),
                language: "id".into(),
                body_params: vec!["Ana".into()],
                param_names: vec!["first_name".into()],
                header: None,
            },
            None,
        );
        assert_eq!(
            named["template"]["components"][0]["parameters"][0],
            json!({"type": "text", "parameter_name": "first_name", "text": "Ana"})
        );
        let audio = to_meta(
            "+62811",
            &OutMessage::Media {
                media: "audio".into(),
                media_id: "9".into(),
                caption: Some("x".into()),
                filename: None,
                reply_to: None,
            },
            None,
        );
        assert!(audio["audio"].get("caption").is_none(), "audio takes no caption");
        let buttons = to_meta(
            "+62811",
            &OutMessage::Buttons {
                body: "Refund or replacement?".into(),
                buttons: vec![
                    ("refund".into(), "Refund".into()),
                    ("replace".into(), "Replacement".into()),
                ],
                reply_to: Some("wamid.Q".into()),
            },
            None,
        );
        assert_eq!(buttons["interactive"]["type"], "button");
        assert_eq!(buttons["interactive"]["action"]["buttons"][1]["reply"]["id"], "replace");
        assert_eq!(buttons["context"]["message_id"], "wamid.Q");
        let list = to_meta(
            "+62811",
            &OutMessage::List {
                body: "Pick a slot".into(),
                button: "Choose".into(),
                rows: vec![("am".into(), "09:00-11:00".into(), Some("Driver calls".into()))],
            },
            None,
        );
        assert_eq!(list["interactive"]["type"], "list");
        assert_eq!(
            list["interactive"]["action"]["sections"][0]["rows"][0]["description"],
            "Driver calls"
        );
        let doc = to_meta(
            "+62811",
            &OutMessage::Media {
                media: "document".into(),
                media_id: "9".into(),
                caption: Some("Invoice".into()),
                filename: Some("inv.pdf".into()),
                reply_to: None,
            },
            None,
        );
        assert_eq!(doc["document"]["filename"], "inv.pdf");
        assert_eq!(doc["document"]["caption"], "Invoice");
        let read = to_meta(
            "+62811",
            &OutMessage::MarkRead {
                message_id: "wamid.Z".into(),
            },
            None,
        );
        assert_eq!(read["status"], "read");
        assert!(
            read.get("biz_opaque_callback_data").is_none(),
            "a read receipt is no message"
        );
        let tagged = to_meta(
            "+62811",
            &OutMessage::Text {
                body: "x".into(),
                preview_url: false,
                reply_to: None,
            },
            Some("whacaster:outbox=7;attempt=1"),
        );
        assert_eq!(tagged["biz_opaque_callback_data"], "whacaster:outbox=7;attempt=1");
    }
}
