//! A message's details in Whacaster's own shape: what the parser makes of each
//! WhatsApp message type, what the inbox stores in `messages.detail` (JSON, tagged by
//! `type`) and reads back to draw a bubble. One type, so the parser and the inbox
//! share the shape through the compiler instead of string keys.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MessageDetail {
    /// Text, a welcome request, an outbound message: the body says it all.
    #[default]
    None,
    Media(MediaFile),
    Location(Location),
    Contacts {
        cards: Vec<Card>,
    },
    Interactive(InteractiveReply),
    /// A tap on a template's quick-reply button.
    Button {
        payload: Option<String>,
    },
    Reaction {
        /// The wamid of the message reacted to.
        message_id: Option<String>,
        emoji: String,
        removed: bool,
    },
    Order {
        catalog_id: Option<String>,
        items: Vec<OrderItem>,
    },
    /// The customer changed number or account.
    System {
        system_type: Option<String>,
        new_wa_id: Option<String>,
        new_user_id: Option<String>,
    },
    /// Meta could not give us the content (and said why).
    Unsupported {
        unsupported_type: Option<String>,
        error_code: Option<i64>,
        error_title: Option<String>,
    },
    Edit {
        original_message_id: Option<String>,
    },
    Revoke {
        original_message_id: Option<String>,
    },
    /// A type this version does not know yet (kept, shown as such).
    Unknown {
        unknown_type: String,
    },
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MediaFile {
    /// Meta's media id (the file is fetched by the media worker).
    pub media_id: String,
    pub mime_type: String,
    pub sha256: String,
    pub caption: Option<String>,
    pub filename: Option<String>,
    #[serde(default)]
    pub voice: bool,
    #[serde(default)]
    pub animated: bool,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Location {
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub name: Option<String>,
    pub address: Option<String>,
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Card {
    pub name: String,
    #[serde(default)]
    pub phones: Vec<CardPhone>,
    #[serde(default)]
    pub emails: Vec<Option<String>>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CardPhone {
    pub phone: Option<String>,
    pub wa_id: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

/// The answer to a button, list or flow the business sent; routed by `id`, never by title.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct InteractiveReply {
    pub reply_type: String,
    pub id: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub name: Option<String>,
    pub response_json: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OrderItem {
    pub product: Option<String>,
    pub quantity: i64,
    pub price: Option<String>,
    pub currency: Option<String>,
}

impl MessageDetail {
    /// The received file, if the message carries one.
    pub fn media(&self) -> Option<&MediaFile> {
        match self {
            MessageDetail::Media(f) if !f.media_id.is_empty() => Some(f),
            _ => None,
        }
    }

    /// Reads a stored detail. Rows written before details were tagged carry no `type`:
    /// the message kind says which shape they have. What cannot be read is `None`
    /// (the bubble still shows the body), never an error.
    pub fn from_stored(kind: &str, stored: &str) -> MessageDetail {
        let Ok(mut v) = serde_json::from_str::<Value>(stored) else {
            return MessageDetail::None;
        };
        if let Value::Object(o) = &mut v {
            if !o.contains_key("type") {
                let tag = match kind {
                    "image" | "video" | "audio" | "document" | "sticker" => "media",
                    "location" | "contacts" | "interactive" | "button" | "reaction" | "order" | "system" | "edit"
                    | "revoke" => kind,
                    "unsupported" | "unknown" if o.contains_key("unsupported_type") => "unsupported",
                    _ if o.contains_key("unknown_type") => "unknown",
                    _ => "none",
                };
                o.insert("type".into(), Value::String(tag.into()));
            }
        }
        serde_json::from_value(v).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detail_survives_storage_with_its_type() {
        let d = MessageDetail::Location(Location {
            latitude: Some(-6.9175),
            longitude: Some(107.6191),
            name: Some("Gedung Sate".into()),
            ..Default::default()
        });
        let stored = serde_json::to_string(&d).unwrap();
        assert!(stored.contains(r#""type":"location""#) && stored.contains(r#""latitude":-6.9175"#));
        assert_eq!(MessageDetail::from_stored("location", &stored), d);
    }

    #[test]
    fn rows_stored_before_the_tag_are_read_by_their_kind() {
        let old = r#"{"media_id":"147","mime_type":"image/jpeg","sha256":"x","caption":"foto","filename":null,"voice":false,"animated":false}"#;
        let d = MessageDetail::from_stored("image", old);
        assert_eq!(d.media().map(|f| f.media_id.as_str()), Some("147"));
        let reaction =
            MessageDetail::from_stored("reaction", r#"{"message_id":"wamid.1","emoji":"👍","removed":false}"#);
        assert!(matches!(reaction, MessageDetail::Reaction { message_id: Some(ref m), .. } if m == "wamid.1"));
        assert_eq!(MessageDetail::from_stored("text", "{}"), MessageDetail::None);
        assert_eq!(MessageDetail::from_stored("image", "not json"), MessageDetail::None);
    }

    #[test]
    fn a_file_without_an_id_is_no_file_to_fetch() {
        assert!(MessageDetail::Media(MediaFile::default()).media().is_none());
    }
}
