//! Meta's webhook JSON turned into Whacaster's own events. Everything Meta-shaped stops
//! here: the rest of the appliance sees `Event`s. Parsing is lenient (ids and times may
//! be strings or numbers, every enum is open, unknown types are kept), and every array
//! is walked: a delivery can carry many entries, changes, messages and statuses.

pub use super::detail::MessageDetail;
use super::detail::{Card, CardPhone, InteractiveReply, Location, MediaFile, OrderItem};
use super::templates::Quality;
pub use super::templates::{TemplateChange, TemplateNews};
use serde_json::{Map, Value};

/// One thing that happened, in Whacaster's terms.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Message(InboundMessage),
    Status(StatusUpdate),
    /// Template, quality and account news for the number's page.
    Account(AccountNews),
    /// An error Meta reports outside any message (`value.errors`).
    Error {
        phone_number_id: String,
        error: ApiError,
    },
    /// The person stopped or resumed marketing messages with WhatsApp's own control
    /// (`user_preferences`).
    Preference(PreferenceChange),
}

impl Event {
    /// The number the event happened on (account news names none).
    pub fn phone_number_id(&self) -> Option<&str> {
        match self {
            Event::Message(m) => Some(&m.phone_number_id),
            Event::Status(s) => Some(&s.phone_number_id),
            Event::Error { phone_number_id, .. } => Some(phone_number_id),
            Event::Preference(p) => Some(p.phone_number_id.as_str()).filter(|n| !n.is_empty()),
            Event::Account(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: i64,
    pub title: String,
    pub details: String,
}

/// Who wrote: a phone (`wa_id`), a business-scoped user id (BSUID), or both.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sender {
    pub wa_id: Option<String>,
    pub bsuid: Option<String>,
    pub profile_name: Option<String>,
    pub username: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InboundMessage {
    pub phone_number_id: String,
    pub wamid: String,
    pub from: Sender,
    pub timestamp: i64,
    /// `text`, `image`, …, `unsupported`, or Meta's name of a type we do not know.
    pub kind: String,
    /// What a person reads in a list: the text, a caption, a summary.
    pub body: String,
    /// The type's details in Whacaster's own shape (media id, coordinates, reply id…).
    pub detail: MessageDetail,
    pub reply_to: Option<String>,
    /// 0 = not forwarded, 1 = forwarded, 2 = forwarded many times.
    pub forwarded: u8,
    /// Click-to-WhatsApp ad the conversation started from.
    pub referral: Option<Value>,
    /// Whether Whacaster understood the type.
    pub understood: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    pub phone_number_id: String,
    pub wamid: String,
    /// `sent`, `delivered`, `read`, `played`, `failed` (or a future word).
    pub status: String,
    pub timestamp: i64,
    pub recipient: Sender,
    pub error: Option<ApiError>,
    pub pricing: Option<Pricing>,
    /// What we sent along with the message (`biz_opaque_callback_data`): names the
    /// outbox row, so a send interrupted by a crash can be settled from its status.
    pub callback: Option<String>,
}

/// What the person chose in WhatsApp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preference {
    Stop,
    Resume,
}

/// A `user_preferences` entry for marketing messages, in Whacaster's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct PreferenceChange {
    /// `metadata.phone_number_id` (empty when Meta names none).
    pub phone_number_id: String,
    /// Keyed by phone and BSUID: Meta warns the two may not match.
    pub user: Sender,
    pub choice: Preference,
    pub timestamp: i64,
    /// Meta's sentence ("User requested to stop marketing messages").
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pricing {
    pub category: String,
    /// `regular`, `free_customer_service`, `free_entry_point`.
    pub pricing_type: String,
    /// Derived from type (the `billable` flag is deprecated): regular = billable.
    pub billable: bool,
    pub model: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AccountNews {
    pub waba_id: String,
    /// Meta's field name: `message_template_status_update`, `account_update`, …
    pub field: String,
    /// The event word (APPROVED, THROUGHPUT_UPGRADE, ACCOUNT_RESTRICTION…).
    pub event: String,
    /// One line for people: template name and language, reason, limits.
    pub summary: String,
    /// For the three template webhooks: which template, and what changed.
    pub template: Option<TemplateChange>,
}

/// A string at `key`, accepting numbers too (Meta mixes them).
fn s(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(x) => Some(x.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn s_or(v: &Value, key: &str) -> String {
    s(v, key).unwrap_or_default()
}

#[expect(
    clippy::cast_possible_truncation,
    reason = "Meta writes whole numbers, sometimes as floats; `as` saturates, which is the intent"
)]
fn int(v: &Value, key: &str) -> i64 {
    s(v, key)
        .and_then(|x| x.parse::<f64>().ok())
        .map(|f| f as i64)
        .unwrap_or(0)
}

fn arr<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

/// The list at `key`: absent or null is empty; anything but a list is an error (junk
/// of Meta's outer shape is refused, never read as "nothing happened").
fn list<'a>(v: &'a Value, key: &str) -> Result<&'a [Value], String> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a.as_slice()),
        Some(_) => Err(format!("`{key}` is not a list")),
    }
}

/// The longest WhatsApp id: a phone number in E.164 has at most 15 digits.
const MAX_WA_ID: usize = 15;

fn api_error(e: &Value) -> ApiError {
    let details = e.get("error_data").map(|d| s_or(d, "details")).unwrap_or_default();
    let title = s(e, "title").or_else(|| s(e, "message")).unwrap_or_default();
    ApiError {
        code: int(e, "code"),
        title,
        details,
    }
}

/// Parses one delivery. An envelope that is not JSON, or not a WhatsApp delivery at
/// all, is an error (the delivery is quarantined, never dropped).
pub fn parse(body: &[u8]) -> Result<Vec<Event>, String> {
    let root: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    if root.get("object").and_then(Value::as_str) != Some("whatsapp_business_account") {
        return Err(format!(
            "not a WhatsApp delivery (object = {})",
            root.get("object").unwrap_or(&Value::Null)
        ));
    }
    let mut events = Vec::new();
    for entry in list(&root, "entry")? {
        let waba_id = s_or(entry, "id");
        for change in list(entry, "changes")? {
            let field = s_or(change, "field");
            let value = change.get("value").unwrap_or(&Value::Null);
            if field == "messages" {
                messages_value(value, &mut events)?;
            } else if field == "user_preferences" {
                preferences_value(&waba_id, value, &mut events);
            } else {
                events.push(Event::Account(account_news(&waba_id, &field, value)));
            }
        }
    }
    if events.is_empty() {
        return Err("no usable event in the delivery".into());
    }
    Ok(events)
}

/// Whom a delivery speaks for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Named {
    /// `metadata.phone_number_id` of each change.
    pub numbers: Vec<String>,
    /// `entry[].id`: the WhatsApp Business Accounts.
    pub accounts: Vec<String>,
}

/// What a delivery names, read before its signature is checked so that it is checked
/// with the secrets of those numbers' apps. Lenient: what cannot be read names nothing
/// (the parser refuses it later).
pub fn named(body: &[u8]) -> Named {
    let mut named = Named::default();
    let Ok(root) = serde_json::from_slice::<Value>(body) else {
        return named;
    };
    let add = |list: &mut Vec<String>, id: String| {
        if !id.is_empty() && !list.contains(&id) {
            list.push(id);
        }
    };
    for entry in arr(&root, "entry") {
        add(&mut named.accounts, s_or(entry, "id"));
        for change in arr(entry, "changes") {
            let id = change
                .get("value")
                .and_then(|v| v.get("metadata"))
                .map(|m| s_or(m, "phone_number_id"))
                .unwrap_or_default();
            add(&mut named.numbers, id);
        }
    }
    named
}

fn messages_value(value: &Value, out: &mut Vec<Event>) -> Result<(), String> {
    if !value.is_object() {
        return Err("a messages change without a value".into());
    }
    let phone_number_id = value
        .get("metadata")
        .map(|m| s_or(m, "phone_number_id"))
        .unwrap_or_default();
    if phone_number_id.is_empty() {
        return Err("a messages change without metadata.phone_number_id".into());
    }
    let contacts = list(value, "contacts")?;
    for m in list(value, "messages")? {
        out.push(Event::Message(message(&phone_number_id, m, contacts)?));
    }
    for st in list(value, "statuses")? {
        out.push(Event::Status(status(&phone_number_id, st)?));
    }
    for e in list(value, "errors")? {
        out.push(Event::Error {
            phone_number_id: phone_number_id.clone(),
            error: api_error(e),
        });
    }
    Ok(())
}

/// The sender of `m`, completed from the `contacts` array (matched by wa_id or BSUID).
fn sender(m: &Value, contacts: &[Value]) -> Sender {
    let wa_id = s(m, "from").filter(|x| !x.is_empty());
    let bsuid = s(m, "from_user_id").filter(|x| !x.is_empty());
    let contact = contacts
        .iter()
        .find(|c| (wa_id.is_some() && s(c, "wa_id") == wa_id) || (bsuid.is_some() && s(c, "user_id") == bsuid))
        .or_else(|| if contacts.len() == 1 { contacts.first() } else { None });
    let profile = contact.and_then(|c| c.get("profile"));
    Sender {
        wa_id: wa_id.or_else(|| contact.and_then(|c| s(c, "wa_id"))),
        bsuid: bsuid.or_else(|| contact.and_then(|c| s(c, "user_id"))),
        profile_name: profile.and_then(|p| s(p, "name")),
        username: profile.and_then(|p| s(p, "username")),
    }
}

fn media(o: &Value) -> MessageDetail {
    MessageDetail::Media(MediaFile {
        media_id: s_or(o, "id"),
        mime_type: s_or(o, "mime_type"),
        sha256: s_or(o, "sha256"),
        caption: s(o, "caption"),
        filename: s(o, "filename"),
        voice: o.get("voice").and_then(Value::as_bool).unwrap_or(false),
        animated: o.get("animated").and_then(Value::as_bool).unwrap_or(false),
    })
}

fn card(c: &Value) -> Card {
    Card {
        name: c.get("name").map(|n| s_or(n, "formatted_name")).unwrap_or_default(),
        phones: arr(c, "phones")
            .iter()
            .map(|p| CardPhone {
                phone: s(p, "phone"),
                wa_id: s(p, "wa_id"),
                kind: s(p, "type"),
            })
            .collect(),
        emails: arr(c, "emails").iter().map(|e| s(e, "email")).collect(),
    }
}

#[expect(
    clippy::too_many_lines,
    reason = "one arm per WhatsApp message type: the table reads best whole"
)]
fn message(phone_number_id: &str, m: &Value, contacts: &[Value]) -> Result<InboundMessage, String> {
    let wamid = s_or(m, "id");
    if wamid.is_empty() {
        return Err("a message without an id".into());
    }
    let from = sender(m, contacts);
    if from.wa_id.is_none() && from.bsuid.is_none() {
        return Err(format!("message {wamid} has no sender (neither `from` nor a user id)"));
    }
    if let Some(w) = &from.wa_id {
        if w.len() > MAX_WA_ID || !w.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "message {wamid}: the sender's WhatsApp id is not a phone number"
            ));
        }
    }
    let kind = s_or(m, "type");
    let o = m.get(kind.as_str()).unwrap_or(&Value::Null);
    let (body, detail, understood) = match kind.as_str() {
        "text" => (s_or(o, "body"), MessageDetail::None, true),
        "image" | "video" | "audio" | "document" | "sticker" => {
            let body = s(o, "caption").or_else(|| s(o, "filename")).unwrap_or_default();
            (body, media(o), true)
        }
        "location" => {
            let name = s(o, "name").or_else(|| s(o, "address")).unwrap_or_default();
            let place = Location {
                latitude: s(o, "latitude").and_then(|x| x.parse::<f64>().ok()),
                longitude: s(o, "longitude").and_then(|x| x.parse::<f64>().ok()),
                name: s(o, "name"),
                address: s(o, "address"),
                url: s(o, "url"),
            };
            (name, MessageDetail::Location(place), true)
        }
        "contacts" => {
            let cards: Vec<Card> = arr(m, "contacts").iter().map(card).collect();
            let body = cards.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ");
            (body, MessageDetail::Contacts { cards }, true)
        }
        "interactive" => {
            let reply_type = s_or(o, "type");
            let reply = o.get(reply_type.as_str()).unwrap_or(&Value::Null);
            let title = s(reply, "title").or_else(|| s(reply, "body")).unwrap_or_default();
            let d = InteractiveReply {
                reply_type,
                id: s(reply, "id"),
                title: s(reply, "title"),
                description: s(reply, "description"),
                name: s(reply, "name"),
                response_json: s(reply, "response_json"),
            };
            (title, MessageDetail::Interactive(d), true)
        }
        "button" => (
            s_or(o, "text"),
            MessageDetail::Button {
                payload: s(o, "payload"),
            },
            true,
        ),
        "reaction" => {
            let emoji = s_or(o, "emoji");
            let d = MessageDetail::Reaction {
                message_id: s(o, "message_id"),
                removed: emoji.is_empty(),
                emoji: emoji.clone(),
            };
            (emoji, d, true)
        }
        "order" => {
            let items = arr(o, "product_items")
                .iter()
                .map(|i| OrderItem {
                    product: s(i, "product_retailer_id"),
                    quantity: int(i, "quantity"),
                    price: s(i, "item_price"),
                    currency: s(i, "currency"),
                })
                .collect();
            let d = MessageDetail::Order {
                catalog_id: s(o, "catalog_id"),
                items,
            };
            (s_or(o, "text"), d, true)
        }
        "system" => (
            s_or(o, "body"),
            MessageDetail::System {
                system_type: s(o, "type"),
                new_wa_id: s(o, "wa_id"),
                new_user_id: s(o, "user_id"),
            },
            true,
        ),
        "unsupported" | "unknown" => {
            let why = arr(m, "errors").first().map(api_error);
            let d = MessageDetail::Unsupported {
                unsupported_type: s(o, "type"),
                error_code: why.as_ref().map(|e| e.code),
                error_title: why.map(|e| e.title),
            };
            (String::new(), d, false)
        }
        "request_welcome" => (String::new(), MessageDetail::None, true),
        "edit" => {
            let text = o
                .get("message")
                .and_then(|mm| mm.get("text"))
                .map(|t| s_or(t, "body"))
                .unwrap_or_default();
            let d = MessageDetail::Edit {
                original_message_id: s(o, "original_message_id"),
            };
            (text, d, true)
        }
        "revoke" => (
            String::new(),
            MessageDetail::Revoke {
                original_message_id: s(o, "original_message_id"),
            },
            true,
        ),
        _ => (
            String::new(),
            MessageDetail::Unknown {
                unknown_type: kind.clone(),
            },
            false,
        ),
    };
    let context = m.get("context");
    let forwarded = match context {
        Some(c) if c.get("frequently_forwarded").and_then(Value::as_bool) == Some(true) => 2,
        Some(c) if c.get("forwarded").and_then(Value::as_bool) == Some(true) => 1,
        _ => 0,
    };
    let referral = m.get("referral").and_then(Value::as_object).map(|r| {
        let pick = |k: &str| r.get(k).cloned().unwrap_or(Value::Null);
        let mut o = Map::new();
        for k in [
            "source_url",
            "source_id",
            "source_type",
            "headline",
            "body",
            "media_type",
            "image_url",
            "video_url",
            "thumbnail_url",
            "ctwa_clid",
        ] {
            o.insert(k.to_string(), pick(k));
        }
        Value::Object(o)
    });
    Ok(InboundMessage {
        phone_number_id: phone_number_id.to_string(),
        wamid,
        from,
        timestamp: int(m, "timestamp"),
        kind: if kind.is_empty() { "unknown".into() } else { kind },
        body,
        detail,
        reply_to: context.and_then(|c| s(c, "id")),
        forwarded,
        referral,
        understood,
    })
}

fn status(phone_number_id: &str, st: &Value) -> Result<StatusUpdate, String> {
    let wamid = s_or(st, "id");
    if wamid.is_empty() {
        return Err("a status without the id of its message".into());
    }
    let pricing = st.get("pricing").filter(|p| p.is_object()).map(|p| {
        let pricing_type = s_or(p, "type");
        let billable = match pricing_type.as_str() {
            "" => p.get("billable").and_then(Value::as_bool).unwrap_or(false),
            t => t == "regular",
        };
        Pricing {
            category: s_or(p, "category"),
            pricing_type,
            billable,
            model: s_or(p, "pricing_model"),
        }
    });
    Ok(StatusUpdate {
        phone_number_id: phone_number_id.to_string(),
        wamid,
        status: s_or(st, "status"),
        timestamp: int(st, "timestamp"),
        recipient: Sender {
            wa_id: s(st, "recipient_id"),
            bsuid: s(st, "recipient_user_id"),
            profile_name: None,
            username: None,
        },
        error: arr(st, "errors").first().map(api_error),
        pricing,
        callback: s(st, "biz_opaque_callback_data").filter(|c| !c.is_empty()),
    })
}

/// `user_preferences`: marketing Stop/Resume become preference events; anything else
/// Meta may add there (another category, another value) is kept as account news.
fn preferences_value(waba_id: &str, value: &Value, out: &mut Vec<Event>) {
    let phone_number_id = value
        .get("metadata")
        .map(|m| s_or(m, "phone_number_id"))
        .unwrap_or_default();
    let before = out.len();
    for p in arr(value, "user_preferences") {
        let choice = match s_or(p, "value").to_ascii_lowercase().as_str() {
            "stop" => Some(Preference::Stop),
            "resume" => Some(Preference::Resume),
            _ => None,
        };
        let user = Sender {
            wa_id: s(p, "wa_id")
                .filter(|w| !w.is_empty() && w.len() <= MAX_WA_ID && w.bytes().all(|b| b.is_ascii_digit())),
            bsuid: s(p, "user_id").filter(|u| !u.is_empty()),
            profile_name: None,
            username: None,
        };
        let marketing = s_or(p, "category") == "marketing_messages";
        match choice {
            Some(choice) if marketing && (user.wa_id.is_some() || user.bsuid.is_some()) => {
                out.push(Event::Preference(PreferenceChange {
                    phone_number_id: phone_number_id.clone(),
                    user,
                    choice,
                    timestamp: int(p, "timestamp"),
                    detail: s_or(p, "detail"),
                }));
            }
            _ => out.push(Event::Account(AccountNews {
                waba_id: waba_id.to_string(),
                field: "user_preferences".into(),
                event: s(p, "value").unwrap_or_else(|| "user_preferences".into()),
                summary: [s_or(p, "category"), s_or(p, "detail")]
                    .into_iter()
                    .filter(|x| !x.is_empty())
                    .collect::<Vec<_>>()
                    .join(" · "),
                template: None,
            })),
        }
    }
    if out.len() == before {
        out.push(Event::Account(account_news(waba_id, "user_preferences", value)));
    }
}

fn account_news(waba_id: &str, field: &str, v: &Value) -> AccountNews {
    let event = s(v, "event").unwrap_or_else(|| field.to_string());
    let mut parts = Vec::new();
    for k in [
        "message_template_name",
        "message_template_language",
        "reason",
        "new_quality_score",
        "new_category",
        "display_phone_number",
        "max_daily_conversations_per_business",
        "current_limit",
    ] {
        if let Some(x) = s(v, k).filter(|x| !x.is_empty() && x != "NONE") {
            parts.push(x);
        }
    }
    if let Some(r) = v.get("rejection_info") {
        parts.push(s_or(r, "reason"));
    }
    if let Some(r) = arr(v, "restriction_info").first() {
        parts.push(format!(
            "{} until {}",
            s_or(r, "restriction_type"),
            s_or(r, "expiration")
        ));
    }
    AccountNews {
        waba_id: waba_id.to_string(),
        field: field.to_string(),
        event,
        summary: parts.join(" · "),
        template: template_change(field, v),
    }
}

/// The template webhooks (`message_template_status_update`, `…_quality_update`,
/// `template_category_update`) in Whacaster's terms. Meta writes the id as a number and
/// the language with a hyphen (`en-US`) there; the API writes `en_US`.
fn template_change(field: &str, v: &Value) -> Option<TemplateChange> {
    let news = match field {
        "message_template_status_update" => {
            let detail = v
                .get("rejection_info")
                .map(|r| {
                    [s_or(r, "reason"), s_or(r, "recommendation")]
                        .into_iter()
                        .filter(|x| !x.is_empty())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            TemplateNews::Status {
                event: s_or(v, "event").to_ascii_uppercase(),
                reason: s_or(v, "reason"),
                detail,
                category: s_or(v, "message_template_category"),
            }
        }
        "message_template_quality_update" => TemplateNews::Quality {
            previous: Quality::parse(&s_or(v, "previous_quality_score")),
            new: Quality::parse(&s_or(v, "new_quality_score")),
        },
        "template_category_update" => {
            let previous = s_or(v, "previous_category");
            let at = int(v, "category_update_timestamp");
            TemplateNews::Category {
                new: s_or(v, "new_category"),
                coming_at: (previous.is_empty() && at > 0).then_some(at),
                previous,
            }
        }
        _ => return None,
    };
    let change = TemplateChange {
        meta_id: s_or(v, "message_template_id"),
        name: s_or(v, "message_template_name"),
        language: s_or(v, "message_template_language").replace('-', "_"),
        news,
    };
    (!change.meta_id.is_empty() || !change.name.is_empty()).then_some(change)
}

#[cfg(test)]
mod fuzz {
    //! The parser against whatever arrives: random JSON in Meta's vocabulary (the keys
    //! and shapes of real deliveries, nested anyhow) and random bytes. It may refuse
    //! anything; it must never panic, and what it accepts must name a sender and an id.
    use super::*;
    use proptest::prelude::*;

    const KEYS: &[&str] = &[
        "object",
        "entry",
        "id",
        "changes",
        "field",
        "value",
        "messaging_product",
        "metadata",
        "phone_number_id",
        "display_phone_number",
        "contacts",
        "profile",
        "name",
        "wa_id",
        "user_id",
        "messages",
        "statuses",
        "errors",
        "from",
        "from_user_id",
        "timestamp",
        "type",
        "text",
        "body",
        "image",
        "mime_type",
        "sha256",
        "caption",
        "location",
        "latitude",
        "longitude",
        "interactive",
        "button_reply",
        "list_reply",
        "title",
        "reaction",
        "message_id",
        "emoji",
        "context",
        "forwarded",
        "referral",
        "status",
        "recipient_id",
        "pricing",
        "category",
        "billable",
        "code",
        "error_data",
        "details",
        "event",
        "message_template_name",
        "biz_opaque_callback_data",
        "product_items",
        "quantity",
        "system",
        "unsupported",
        "edit",
        "revoke",
        "original_message_id",
        "user_preferences",
        "detail",
    ];

    fn meta_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            "[a-zA-Z0-9 ._+:-]{0,20}".prop_map(Value::String),
            prop::sample::select(vec![
                "whatsapp_business_account",
                "messages",
                "text",
                "image",
                "sent",
                "read",
                "1e400",
                "62811",
                "user_preferences",
                "marketing_messages",
                "stop",
                ""
            ])
            .prop_map(|s| Value::String(s.to_string())),
        ];
        leaf.prop_recursive(6, 96, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(KEYS), inner), 0..8)
                    .prop_map(|kv| { Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()) }),
            ]
        })
    }

    /// A real delivery's skeleton with `hole` put somewhere a value goes.
    fn delivery_with(hole: Value, at: u8) -> Value {
        let mut m = serde_json::json!({"from": "6281298765432", "id": "wamid.f", "timestamp": "1764000000", "type": "text", "text": {"body": "halo"}});
        let mut value = serde_json::json!({"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "62812", "phone_number_id": "106540352242922"},
            "contacts": [{"profile": {"name": "Siti"}, "wa_id": "6281298765432"}]});
        match at % 6 {
            0 => m["text"] = hole,
            1 => m["type"] = hole,
            2 => m["context"] = hole,
            3 => value["contacts"] = hole,
            4 => value["statuses"] = hole,
            _ => m["interactive"] = hole,
        }
        value["messages"] = Value::Array(vec![m]);
        serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}]})
    }

    fn check(body: &[u8]) {
        drop(named(body)); // only that it does not panic
        if let Ok(events) = parse(body) {
            assert!(!events.is_empty());
            for e in events {
                if let Event::Message(m) = e {
                    assert!(!m.wamid.is_empty(), "an accepted message has an id");
                    assert!(m.from.wa_id.is_some() || m.from.bsuid.is_some(), "and a sender");
                    assert!(serde_json::to_string(&m.detail).is_ok());
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

        #[test]
        fn random_meta_shaped_json_never_panics(v in meta_json()) {
            check(&serde_json::to_vec(&v).unwrap_or_default());
        }

        #[test]
        fn a_real_delivery_with_anything_in_it_never_panics(hole in meta_json(), at in any::<u8>()) {
            check(&serde_json::to_vec(&delivery_with(hole, at)).unwrap_or_default());
        }

        #[test]
        fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            check(&bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    //! The parser on Meta's shapes: the constructed payloads of REFERENCE.md §3 (fake
    //! ids) and the variants the integration tests deliver (tests/it/inbound.rs).

    use super::*;
    use serde_json::json;

    const PHONE_ID: &str = "200000000000002";

    fn parse_value(v: &Value) -> Vec<Event> {
        parse(&serde_json::to_vec(v).unwrap()).unwrap()
    }

    /// A `messages` delivery with these contacts and messages.
    #[expect(clippy::needless_pass_by_value, reason = "the callers build the JSON in place")]
    fn messages(contacts: Value, messages: Value) -> Value {
        json!({"object": "whatsapp_business_account", "entry": [{"id": "100000000000001", "changes": [
            {"field": "messages", "value": {"messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550001111", "phone_number_id": PHONE_ID},
                "contacts": contacts, "messages": messages}}]}]})
    }

    /// The one message of a delivery with a single customer.
    fn one(kind: &str, object: Value) -> InboundMessage {
        let mut m = json!({"from": "15557654321", "id": "wamid.X", "timestamp": "1767225600", "type": kind});
        m[kind] = object;
        only_message(&messages(
            json!([{"profile": {"name": "Ana Lima"}, "wa_id": "15557654321"}]),
            json!([m]),
        ))
    }

    fn only_message(v: &Value) -> InboundMessage {
        match parse_value(v).as_slice() {
            [Event::Message(m)] => m.clone(),
            other => panic!("expected one message, got {other:?}"),
        }
    }

    fn only_status(v: &Value) -> StatusUpdate {
        match parse_value(v).as_slice() {
            [Event::Status(s)] => s.clone(),
            other => panic!("expected one status, got {other:?}"),
        }
    }

    // REFERENCE.md §3.1
    const TEXT: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"100000000000001","changes":[{"field":"messages","value":{
      "messaging_product":"whatsapp",
      "metadata":{"display_phone_number":"15550001111","phone_number_id":"200000000000002"},
      "contacts":[{"profile":{"name":"Ana Lima"},"wa_id":"15557654321","user_id":"US.4455667788990011223"}],
      "messages":[{"from":"15557654321","from_user_id":"US.4455667788990011223",
        "id":"wamid.FAKEAAAAAAAAAAAAAAAAAAAAAAAAAAA=","timestamp":"1767225600",
        "type":"text","text":{"body":"Hi, is my order shipped yet?"}}]}}]}]}"#;

    // REFERENCE.md §3.5 (the `sent` step)
    const SENT_WITH_PRICING: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"100000000000001","changes":[{"field":"messages","value":{
       "messaging_product":"whatsapp","metadata":{"display_phone_number":"15550001111","phone_number_id":"200000000000002"},
       "statuses":[{"id":"wamid.FAKETEMPLATEMSG0000000000000000=","status":"sent","timestamp":"1767229200",
         "recipient_id":"15557654321","biz_opaque_callback_data":"campaign=42;row=17",
         "pricing":{"billable":true,"pricing_model":"PMP","type":"regular","category":"marketing"}}]}}]}]}"#;

    // REFERENCE.md §3.6
    const FAILED_131047: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"100000000000001","changes":[{"field":"messages","value":{
      "messaging_product":"whatsapp","metadata":{"display_phone_number":"15550001111","phone_number_id":"200000000000002"},
      "statuses":[{"id":"wamid.FAKELATEFREEFORM000000000000000=","status":"failed","timestamp":"1767315600",
        "recipient_id":"15557654321",
        "errors":[{"code":131047,"title":"Re-engagement message","message":"Re-engagement message",
          "error_data":{"details":"Message failed to send because more than 24 hours have passed since the customer last replied to this number."},
          "href":"/documentation/business-messaging/whatsapp/support/error-codes"}]}]}}]}]}"#;

    // REFERENCE.md §3.9
    const OUT_OF_BAND_ERROR: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"100000000000001","changes":[{"field":"messages","value":{
      "messaging_product":"whatsapp","metadata":{"display_phone_number":"15550001111","phone_number_id":"200000000000002"},
      "errors":[{"code":131000,"title":"Something went wrong","message":"Something went wrong",
        "error_data":{"details":"Illustrative detail text"},"href":"/documentation/business-messaging/whatsapp/support/error-codes"}]}}]}]}"#;

    // REFERENCE.md §3.8 (the rejected one)
    const TEMPLATE_REJECTED: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"100000000000001","time":1767230100,"changes":[{"field":"message_template_status_update",
       "value":{"event":"REJECTED","message_template_id":1700000000000002,"message_template_name":"winter_sale",
                "message_template_language":"en","reason":"INVALID_FORMAT","message_template_category":"MARKETING",
                "rejection_info":{"reason":"Two variables are adjacent with no text between them.",
                                  "recommendation":"Put descriptive words between variables."}}}]}]}"#;

    #[test]
    fn a_text_carries_its_body_sender_and_time() {
        let events = parse(TEXT.as_bytes()).unwrap();
        let [Event::Message(m)] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(m.phone_number_id, PHONE_ID);
        assert_eq!(m.wamid, "wamid.FAKEAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        assert_eq!(
            (m.kind.as_str(), m.body.as_str()),
            ("text", "Hi, is my order shipped yet?")
        );
        assert_eq!(m.timestamp, 1_767_225_600, "a time given as a string");
        assert_eq!(m.detail, MessageDetail::None);
        assert!(m.understood);
        assert_eq!(
            m.from,
            Sender {
                wa_id: Some("15557654321".into()),
                bsuid: Some("US.4455667788990011223".into()),
                profile_name: Some("Ana Lima".into()),
                username: None,
            }
        );
        assert_eq!(
            (m.reply_to.as_deref(), m.forwarded, m.referral.as_ref()),
            (None, 0, None)
        );
    }

    #[test]
    fn media_keeps_its_id_and_the_caption_or_filename_is_the_body() {
        let m = one(
            "image",
            json!({"caption": "Box arrived damaged", "mime_type": "image/jpeg", "sha256": "q1Fake=",
                   "id": "900000000000101", "url": "https://lookaside.fbsbx.com/x"}),
        );
        assert_eq!(m.body, "Box arrived damaged");
        let file = m.detail.media().expect("a file to fetch");
        assert_eq!(
            (file.media_id.as_str(), file.mime_type.as_str(), file.sha256.as_str()),
            ("900000000000101", "image/jpeg", "q1Fake=")
        );
        let doc = one(
            "document",
            json!({"id": "77", "mime_type": "application/pdf", "filename": "invoice-42.pdf"}),
        );
        assert_eq!(doc.body, "invoice-42.pdf");
        let voice = one(
            "audio",
            json!({"id": 901, "mime_type": "audio/ogg; codecs=opus", "voice": true}),
        );
        let file = voice.detail.media().unwrap();
        assert!(file.voice && !file.animated);
        assert_eq!(file.media_id, "901", "an id given as a number");
        let sticker = one(
            "sticker",
            json!({"id": "902", "mime_type": "image/webp", "animated": true}),
        );
        assert!(sticker.detail.media().unwrap().animated);
    }

    #[test]
    fn a_location_takes_coordinates_as_strings_or_numbers() {
        let m = one(
            "location",
            json!({"latitude": "-6.9175", "longitude": 107.6191, "name": "Gedung Sate", "address": "Bandung"}),
        );
        assert_eq!(m.body, "Gedung Sate");
        assert_eq!(
            m.detail,
            MessageDetail::Location(Location {
                latitude: Some(-6.9175),
                longitude: Some(107.6191),
                name: Some("Gedung Sate".into()),
                address: Some("Bandung".into()),
                url: None,
            })
        );
        let unnamed = one(
            "location",
            json!({"latitude": 1.5, "longitude": 2, "address": "Jl. Braga"}),
        );
        assert_eq!(unnamed.body, "Jl. Braga", "the address when there is no name");
    }

    #[test]
    fn shared_contacts_become_cards() {
        let mut m =
            json!({"from": "15557654321", "id": "wamid.card", "timestamp": 1_767_225_600_i64, "type": "contacts"});
        m["contacts"] = json!([
            {"name": {"formatted_name": "Dewi Lestari", "first_name": "Dewi"},
             "phones": [{"phone": "+62 811 111", "wa_id": "62811111", "type": "CELL"}],
             "emails": [{"email": "dewi@example.id"}]},
            {"name": {"formatted_name": "Budi"}}
        ]);
        let m = only_message(&messages(
            json!([{"profile": {"name": "Ana"}, "wa_id": "15557654321"}]),
            json!([m]),
        ));
        assert_eq!(m.body, "Dewi Lestari, Budi");
        assert_eq!(m.timestamp, 1_767_225_600, "a time given as a number");
        let MessageDetail::Contacts { cards } = &m.detail else {
            panic!("{:?}", m.detail)
        };
        assert_eq!(cards.len(), 2);
        assert_eq!(
            cards[0].phones,
            vec![CardPhone {
                phone: Some("+62 811 111".into()),
                wa_id: Some("62811111".into()),
                kind: Some("CELL".into()),
            }]
        );
        assert_eq!(cards[0].emails, vec![Some("dewi@example.id".to_string())]);
        assert!(cards[1].phones.is_empty());
    }

    #[test]
    fn button_and_list_replies_are_routed_by_id_and_shown_by_title() {
        // REFERENCE.md §3.3: a reply quotes the interactive message it answers.
        let mut m = json!({"from": "15557654321", "id": "wamid.btn", "timestamp": "1767225720", "type": "interactive",
            "interactive": {"type": "button_reply", "button_reply": {"id": "refund_yes", "title": "Yes, refund"}}});
        m["context"] = json!({"from": "15550001111", "id": "wamid.FAKEOUTBOUNDBUTTONMSG000000000="});
        let button = only_message(&messages(json!([]), json!([m])));
        assert_eq!(button.body, "Yes, refund");
        assert_eq!(
            button.reply_to.as_deref(),
            Some("wamid.FAKEOUTBOUNDBUTTONMSG000000000=")
        );
        let MessageDetail::Interactive(reply) = &button.detail else {
            panic!("{:?}", button.detail)
        };
        assert_eq!(
            (reply.reply_type.as_str(), reply.id.as_deref()),
            ("button_reply", Some("refund_yes"))
        );

        let list = one(
            "interactive",
            json!({"type": "list_reply", "list_reply": {"id": "gayo", "title": "Kopi Gayo", "description": "250 g"}}),
        );
        assert_eq!(
            list.detail,
            MessageDetail::Interactive(InteractiveReply {
                reply_type: "list_reply".into(),
                id: Some("gayo".into()),
                title: Some("Kopi Gayo".into()),
                description: Some("250 g".into()),
                name: None,
                response_json: None,
            })
        );
        let flow = one(
            "interactive",
            json!({"type": "nfm_reply", "nfm_reply": {"name": "address_message", "body": "Sent", "response_json": "{\"city\":\"Bandung\"}"}}),
        );
        assert_eq!(flow.body, "Sent", "the body when there is no title");
        let template_tap = one("button", json!({"payload": "STOP_PROMO", "text": "Berhenti promo"}));
        assert_eq!(template_tap.body, "Berhenti promo");
        assert_eq!(
            template_tap.detail,
            MessageDetail::Button {
                payload: Some("STOP_PROMO".into())
            }
        );
    }

    #[test]
    fn a_reaction_names_its_message_and_an_empty_emoji_removes_it() {
        let r = one("reaction", json!({"message_id": "wamid.out1", "emoji": "❤️"}));
        assert_eq!(r.body, "❤️");
        assert_eq!(
            r.detail,
            MessageDetail::Reaction {
                message_id: Some("wamid.out1".into()),
                emoji: "❤️".into(),
                removed: false,
            }
        );
        let gone = one("reaction", json!({"message_id": "wamid.out1"}));
        assert!(matches!(gone.detail, MessageDetail::Reaction { removed: true, .. }));
    }

    #[test]
    fn unsupported_and_unknown_types_are_kept_but_not_understood() {
        let mut m = json!({"from": "15557654321", "id": "wamid.unsup", "timestamp": "1", "type": "unsupported",
            "unsupported": {"type": "poll"}});
        m["errors"] = json!([{"code": 131051, "title": "Message type unknown", "message": "Message type unknown",
            "error_data": {"details": "Message type is currently not supported."}}]);
        let unsupported = only_message(&messages(json!([]), json!([m])));
        assert!(!unsupported.understood);
        assert_eq!(
            unsupported.detail,
            MessageDetail::Unsupported {
                unsupported_type: Some("poll".into()),
                error_code: Some(131_051),
                error_title: Some("Message type unknown".into()),
            }
        );
        let future = one("hologram", json!({"depth": 3}));
        assert!(!future.understood);
        assert_eq!(future.kind, "hologram", "Meta's word is kept");
        assert_eq!(
            future.detail,
            MessageDetail::Unknown {
                unknown_type: "hologram".into()
            }
        );
        let untyped = only_message(&messages(
            json!([]),
            json!([{"from": "1", "id": "wamid.t", "timestamp": "1"}]),
        ));
        assert_eq!(untyped.kind, "unknown");
    }

    #[test]
    fn a_sent_status_carries_its_pricing() {
        let st = only_status(&serde_json::from_str(SENT_WITH_PRICING).unwrap());
        assert_eq!(
            (st.wamid.as_str(), st.status.as_str(), st.timestamp),
            ("wamid.FAKETEMPLATEMSG0000000000000000=", "sent", 1_767_229_200)
        );
        assert_eq!(st.recipient.wa_id.as_deref(), Some("15557654321"));
        assert_eq!(st.error, None);
        assert_eq!(
            st.pricing,
            Some(Pricing {
                category: "marketing".into(),
                pricing_type: "regular".into(),
                billable: true,
                model: "PMP".into(),
            })
        );
    }

    #[test]
    fn billable_follows_the_pricing_type_not_the_deprecated_flag() {
        let status = |pricing: Value| {
            only_status(
                &json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
                {"field": "messages", "value": {"metadata": {"phone_number_id": PHONE_ID},
                    "statuses": [{"id": "wamid.s", "status": "delivered", "timestamp": 5, "recipient_id": 15557654321_i64,
                                  "pricing": pricing}]}}]}]}),
            )
        };
        let free = status(json!({"billable": true, "type": "free_customer_service", "category": "service"}));
        assert!(!free.pricing.unwrap().billable, "free despite the old flag");
        let old = status(json!({"billable": true, "pricing_model": "CBP", "category": "utility"}));
        assert!(old.pricing.unwrap().billable, "no type: the flag is all there is");
        let st = status(json!("not an object"));
        assert_eq!(st.pricing, None);
        assert_eq!(
            st.recipient.wa_id.as_deref(),
            Some("15557654321"),
            "a recipient given as a number"
        );
    }

    #[test]
    fn a_failed_status_carries_the_error_by_code() {
        let st = only_status(&serde_json::from_str(FAILED_131047).unwrap());
        assert_eq!(st.status, "failed");
        let e = st.error.unwrap();
        assert_eq!((e.code, e.title.as_str()), (131_047, "Re-engagement message"));
        assert!(
            e.details
                .starts_with("Message failed to send because more than 24 hours")
        );
    }

    #[test]
    fn an_error_outside_any_message_is_an_event() {
        let events = parse(OUT_OF_BAND_ERROR.as_bytes()).unwrap();
        assert_eq!(
            events,
            vec![Event::Error {
                phone_number_id: PHONE_ID.into(),
                error: ApiError {
                    code: 131_000,
                    title: "Something went wrong".into(),
                    details: "Illustrative detail text".into(),
                },
            }]
        );
    }

    #[test]
    fn a_username_user_without_a_phone_is_known_by_the_bsuid() {
        let m = only_message(&messages(
            json!([{"profile": {"name": "Rina", "username": "rina.kopi"}, "user_id": "ID.13491208655302741918"}]),
            json!([{"from_user_id": "ID.13491208655302741918", "id": "wamid.b1", "timestamp": "1764000003",
                    "type": "text", "text": {"body": "halo"}}]),
        ));
        assert_eq!(
            m.from,
            Sender {
                wa_id: None,
                bsuid: Some("ID.13491208655302741918".into()),
                profile_name: Some("Rina".into()),
                username: Some("rina.kopi".into()),
            }
        );
        // With several contacts, each message finds its own by wa_id or BSUID.
        let two = parse_value(&messages(
            json!([{"profile": {"name": "A"}, "wa_id": "62811"}, {"profile": {"name": "B"}, "user_id": "ID.2"}]),
            json!([{"from_user_id": "ID.2", "id": "wamid.2", "timestamp": "1", "type": "text", "text": {"body": "b"}},
                   {"from": 62811, "id": "wamid.1", "timestamp": "1", "type": "text", "text": {"body": "a"}}]),
        ));
        let names: Vec<_> = two
            .iter()
            .map(|e| match e {
                Event::Message(m) => (m.from.wa_id.clone(), m.from.profile_name.clone()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            names,
            vec![
                (None, Some("B".to_string())),
                (Some("62811".to_string()), Some("A".to_string()))
            ]
        );
    }

    #[test]
    fn every_entry_change_message_and_status_is_walked() {
        let text =
            |id: &str| json!({"from": "62811", "id": id, "timestamp": "1", "type": "text", "text": {"body": id}});
        let change = |msgs: Value, statuses: Value| {
            json!({"field": "messages", "value": {"metadata": {"phone_number_id": PHONE_ID},
                "messages": msgs, "statuses": statuses}})
        };
        let body = json!({"object": "whatsapp_business_account", "entry": [
            {"id": "1", "changes": [change(json!([text("a1"), text("a2")]), json!([])),
                                    change(json!([]), json!([{"id": "wamid.s", "status": "read", "timestamp": "2"}]))]},
            {"id": "2", "changes": [change(json!([text("b1")]), json!(null))]}
        ]});
        let ids: Vec<_> = parse_value(&body)
            .into_iter()
            .map(|e| match e {
                Event::Message(m) => m.wamid,
                Event::Status(s) => s.wamid,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(ids, ["a1", "a2", "wamid.s", "b1"]);
    }

    #[test]
    fn replies_forwards_and_ad_referrals_are_read_from_the_message() {
        let mut m = json!({"from": "1", "id": "wamid.r", "timestamp": "1", "type": "text", "text": {"body": "x"}});
        m["context"] = json!({"frequently_forwarded": true});
        m["referral"] = json!({"source_url": "https://fb.me/ad", "source_type": "ad", "headline": "Promo Kopi",
                               "ctwa_clid": "ARA", "tracking": "dropped"});
        let m = only_message(&messages(json!([]), json!([m])));
        assert_eq!(m.forwarded, 2);
        let referral = m.referral.unwrap();
        assert_eq!(referral["headline"], "Promo Kopi");
        assert_eq!(referral["video_url"], Value::Null, "every known key, present or not");
        assert!(referral.get("tracking").is_none(), "only the known keys");
        let mut once = json!({"from": "1", "id": "wamid.f", "timestamp": "1", "type": "text", "text": {"body": "x"}});
        once["context"] = json!({"forwarded": true});
        assert_eq!(only_message(&messages(json!([]), json!([once]))).forwarded, 1);
    }

    #[test]
    fn account_news_sums_up_the_change() {
        let events = parse(TEMPLATE_REJECTED.as_bytes()).unwrap();
        let [Event::Account(news)] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(news.waba_id, "100000000000001");
        assert_eq!(
            (news.field.as_str(), news.event.as_str()),
            ("message_template_status_update", "REJECTED")
        );
        let change = news.template.clone().unwrap();
        assert_eq!(
            (change.meta_id.as_str(), change.name.as_str(), change.language.as_str()),
            ("1700000000000002", "winter_sale", "en")
        );
        assert_eq!(
            change.news,
            TemplateNews::Status {
                event: "REJECTED".into(),
                reason: "INVALID_FORMAT".into(),
                detail:
                    "Two variables are adjacent with no text between them. Put descriptive words between variables."
                        .into(),
                category: "MARKETING".into()
            }
        );
        assert_eq!(
            news.summary,
            "winter_sale · en · INVALID_FORMAT · Two variables are adjacent with no text between them."
        );
        let restricted = parse_value(
            &json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
            {"field": "account_update", "value": {"event": "ACCOUNT_RESTRICTION", "restriction_info": [
                {"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING", "expiration": 1764500000}]}}]}]}),
        );
        let [Event::Account(news)] = restricted.as_slice() else {
            panic!("{restricted:?}")
        };
        assert_eq!(news.summary, "RESTRICTED_BIZ_INITIATED_MESSAGING until 1764500000");
    }

    #[test]
    fn quality_and_category_webhooks_name_their_template() {
        let one = |field: &str, value: Value| {
            let events = parse_value(
                &json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
                {"field": field, "value": value}]}]}),
            );
            match events.as_slice() {
                [Event::Account(a)] => a.template.clone().unwrap(),
                other => panic!("{other:?}"),
            }
        };
        let q = one(
            "message_template_quality_update",
            json!({"previous_quality_score": "GREEN", "new_quality_score": "YELLOW", "message_template_id": 17,
                   "message_template_name": "promo", "message_template_language": "en-US"}),
        );
        assert_eq!((q.meta_id.as_str(), q.language.as_str()), ("17", "en_US"));
        assert_eq!(
            q.news,
            TemplateNews::Quality {
                previous: Quality::Green,
                new: Quality::Yellow
            }
        );
        let coming = one(
            "template_category_update",
            json!({"message_template_id": 17, "message_template_name": "promo", "message_template_language": "id",
                   "correct_category": "MARKETING", "new_category": "MARKETING", "category_update_timestamp": 1767000000}),
        );
        assert!(matches!(
            coming.news,
            TemplateNews::Category {
                coming_at: Some(1_767_000_000),
                ..
            }
        ));
        let done = one(
            "template_category_update",
            json!({"message_template_id": 17, "message_template_name": "promo", "message_template_language": "id",
                   "previous_category": "UTILITY", "new_category": "MARKETING"}),
        );
        assert!(matches!(done.news, TemplateNews::Category { coming_at: None, ref new, .. } if new == "MARKETING"));
    }

    #[test]
    fn only_whatsapp_deliveries_are_parsed() {
        let page = parse(br#"{"object": "page", "entry": []}"#).unwrap_err();
        assert!(page.contains("not a WhatsApp delivery"), "{page}");
        assert!(parse(br#"{"entry": []}"#).is_err(), "no object at all");
        assert!(parse(b"not json").unwrap_err().starts_with("not JSON"));
        let empty = parse(br#"{"object": "whatsapp_business_account"}"#).unwrap_err();
        assert!(empty.contains("no usable event"), "{empty}");
    }

    #[test]
    fn a_delivery_that_cannot_be_applied_is_refused_whole() {
        let refused = |v: Value| parse(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        let text = json!({"type": "text", "text": {"body": "x"}, "timestamp": "1"});
        let with = |extra: Value| {
            let mut m = text.clone();
            m.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            messages(json!([]), json!([m]))
        };
        assert!(refused(with(json!({"from": "62811"}))).contains("without an id"));
        assert!(refused(with(json!({"id": "wamid.x"}))).contains("has no sender"));
        assert!(refused(with(json!({"id": "wamid.x", "from": "+62 811"}))).contains("not a phone number"));
        assert!(refused(with(json!({"id": "wamid.x", "from": "1234567890123456"}))).contains("not a phone number"));
        assert!(refused(json!({"object": "whatsapp_business_account", "entry": {"id": "1"}})).contains("not a list"));
        let no_metadata = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
            {"field": "messages", "value": {"statuses": [{"id": "wamid.s", "status": "read"}]}}]}]});
        assert!(refused(no_metadata).contains("phone_number_id"));
        let status_without_id = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
            {"field": "messages", "value": {"metadata": {"phone_number_id": PHONE_ID},
                "statuses": [{"status": "read"}]}}]}]});
        assert!(refused(status_without_id).contains("a status without the id"));
        // Fifteen digits is the longest E.164 number, and still a phone.
        assert!(parse_value(&with(json!({"id": "wamid.x", "from": "123456789012345"}))).len() == 1);
    }

    // CAMPAIGNS-BOT.md B.9 (Meta's example, resume), and a stop with a BSUID.
    #[test]
    fn user_preferences_become_marketing_stop_and_resume() {
        let v = json!({ "object": "whatsapp_business_account",
          "entry": [{ "id": "102290129340398", "changes": [{ "field": "user_preferences", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550783881", "phone_number_id": "106540352242922" },
            "contacts": [{ "wa_id": "16505551234" }],
            "user_preferences": [{
              "wa_id": "16505551234", "detail": "User requested to resume marketing messages",
              "category": "marketing_messages", "value": "resume", "timestamp": 1_731_705_721 },
              { "wa_id": "16505551234", "user_id": "US.123", "detail": "User requested to stop marketing messages",
              "category": "marketing_messages", "value": "stop", "timestamp": "1731705722" },
              { "wa_id": "16505551234", "category": "something_new", "value": "stop", "timestamp": 1 }] } }] }] });
        let events = parse_value(&v);
        let [
            Event::Preference(resume),
            Event::Preference(stop),
            Event::Account(other),
        ] = events.as_slice()
        else {
            panic!("{events:?}")
        };
        assert_eq!(resume.choice, Preference::Resume);
        assert_eq!(resume.phone_number_id, "106540352242922");
        assert_eq!(resume.user.wa_id.as_deref(), Some("16505551234"));
        assert_eq!(resume.timestamp, 1_731_705_721);
        assert_eq!(
            (stop.choice, stop.user.bsuid.as_deref(), stop.timestamp),
            (Preference::Stop, Some("US.123"), 1_731_705_722)
        );
        assert_eq!(other.field, "user_preferences", "another category is news, not consent");
        assert_eq!(events[0].phone_number_id(), Some("106540352242922"));
    }
}
