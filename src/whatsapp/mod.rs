//! The WhatsApp Cloud API edge: connected numbers, and the webhook endpoint Meta
//! delivers to (verification handshake, signatures over the raw bytes, the durable
//! inbox). The only part of Whacaster that knows Meta's URLs and JSON.

pub mod deliveries;
pub mod detail;
pub mod graph;
pub mod inbound;
pub mod media;
pub mod numbers;
pub mod outbound;
pub mod outbox;
pub mod templates;
pub mod webhook;

use crate::crypto::Secret;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::RwLock;

/// App secrets and verify tokens of all connected numbers, kept in memory so that a
/// webhook delivery costs no database read before its signature is checked.
#[derive(Default)]
pub struct WebhookKeys {
    inner: RwLock<Keys>,
}

#[derive(Default, Clone)]
struct Keys {
    /// The app secret of each connected number, by phone number id and by WABA id.
    by_number: HashMap<String, Secret>,
    by_account: HashMap<String, Vec<Secret>>,
    /// Every app secret, for deliveries that name no connected number or account.
    app_secrets: Vec<Secret>,
    verify_tokens: Vec<Secret>,
}

impl WebhookKeys {
    pub fn load(conn: &rusqlite::Connection) -> rusqlite::Result<WebhookKeys> {
        let keys = WebhookKeys::default();
        keys.reload(conn)?;
        Ok(keys)
    }

    /// Re-reads the keys (after a number was added, changed or removed).
    pub fn reload(&self, conn: &rusqlite::Connection) -> rusqlite::Result<()> {
        let mut keys = Keys::default();
        for k in numbers::repo::list_webhook_keys(conn)? {
            if !keys.app_secrets.contains(&k.app_secret) {
                keys.app_secrets.push(k.app_secret.clone());
            }
            if !keys.verify_tokens.contains(&k.verify_token) {
                keys.verify_tokens.push(k.verify_token.clone());
            }
            let account = keys.by_account.entry(k.waba_id).or_default();
            if !account.contains(&k.app_secret) {
                account.push(k.app_secret.clone());
            }
            keys.by_number.insert(k.phone_number_id, k.app_secret);
        }
        if let Ok(mut guard) = self.inner.write() {
            *guard = keys;
        }
        Ok(())
    }

    /// Whether `token` is the verify token of a connected number (constant time per token).
    pub fn verify_token_matches(&self, token: &str) -> bool {
        let Ok(keys) = self.inner.read() else { return false };
        keys.verify_tokens.iter().fold(false, |found, t| {
            found | crate::crypto::ct_eq(t.expose().as_bytes(), token.as_bytes())
        })
    }

    /// Whether `signature` (the bytes of `X-Hub-Signature-256`'s hex) is the HMAC-SHA256
    /// of `body` under the app secret that may speak for it. A delivery speaks only for
    /// its own numbers: when it names connected numbers (or accounts), the secret of
    /// each of their apps must sign it, so one Meta app cannot inject messages on
    /// another app's number. One that names none of ours is checked against every app
    /// secret; the intake keeps it, waiting for its number, and makes no conversation.
    pub fn signature_matches(&self, body: &[u8], signature: &[u8]) -> bool {
        let Ok(keys) = self.inner.read() else { return false };
        let named = inbound::named(body);
        // Each entry: the secrets of which one must have signed it.
        let mut required: Vec<Vec<&Secret>> = named
            .numbers
            .iter()
            .filter_map(|n| keys.by_number.get(n))
            .map(|s| vec![s])
            .collect();
        if required.is_empty() {
            required = named
                .accounts
                .iter()
                .filter_map(|a| keys.by_account.get(a))
                .map(|v| v.iter().collect())
                .collect();
        }
        if required.is_empty() {
            required = vec![keys.app_secrets.iter().collect()];
        }
        required.iter().all(|alternatives| {
            alternatives
                .iter()
                .any(|secret| valid_signature(secret.expose().as_bytes(), body, signature))
        })
    }
}

/// HMAC-SHA256 of `body` under `secret` equals the hex in `signature_hex` (constant time).
pub fn valid_signature(secret: &[u8], body: &[u8], signature_hex: &[u8]) -> bool {
    let Ok(expected) = hex::decode(signature_hex) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}
