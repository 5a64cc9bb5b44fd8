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

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::RwLock;

/// App secrets and verify tokens of all connected numbers, kept in memory so that a
/// webhook delivery costs no database read before its signature is checked.
#[derive(Default)]
pub struct WebhookKeys {
    inner: RwLock<Keys>,
}

#[derive(Default, Clone)]
struct Keys {
    app_secrets: Vec<zeroize::Zeroizing<String>>,
    verify_tokens: Vec<zeroize::Zeroizing<String>>,
}

impl WebhookKeys {
    pub fn load(conn: &rusqlite::Connection) -> rusqlite::Result<WebhookKeys> {
        let keys = WebhookKeys::default();
        keys.reload(conn)?;
        Ok(keys)
    }

    /// Re-reads the keys (after a number was added, changed or removed).
    pub fn reload(&self, conn: &rusqlite::Connection) -> rusqlite::Result<()> {
        let (app_secrets, verify_tokens) = numbers::repo::list_webhook_keys(conn)?;
        let keys = Keys {
            app_secrets: app_secrets.into_iter().map(zeroize::Zeroizing::new).collect(),
            verify_tokens: verify_tokens.into_iter().map(zeroize::Zeroizing::new).collect(),
        };
        if let Ok(mut guard) = self.inner.write() {
            *guard = keys;
        }
        Ok(())
    }

    /// Whether `token` is the verify token of a connected number (constant time per token).
    pub fn verify_token_matches(&self, token: &str) -> bool {
        let Ok(keys) = self.inner.read() else { return false };
        keys.verify_tokens.iter().fold(false, |found, t| {
            found | crate::crypto::ct_eq(t.as_bytes(), token.as_bytes())
        })
    }

    /// Whether `signature` (the bytes of `X-Hub-Signature-256`'s hex) is the HMAC-SHA256
    /// of `body` under one of the app secrets.
    pub fn signature_matches(&self, body: &[u8], signature: &[u8]) -> bool {
        let Ok(keys) = self.inner.read() else { return false };
        keys.app_secrets
            .iter()
            .any(|secret| valid_signature(secret.as_bytes(), body, signature))
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
