//! TOTP (RFC 6238: SHA-1, 6 digits, 30 s) and recovery codes. Verification reports the
//! matched step so the caller can refuse a step that was already used (replay).

use crate::crypto;
use totp_rs::{Algorithm, Secret, TOTP};

pub const STEP_SECS: i64 = 30;
/// Steps accepted either side of now (RFC 6238 §5.2: one step of network delay).
pub const SKEW: i64 = 1;
pub const RECOVERY_CODES: usize = 10;

/// A fresh 160-bit secret, base32.
pub fn new_secret() -> String {
    Secret::generate_secret().to_encoded().to_string()
}

fn totp(secret_b32: &str, account: &str, issuer: &str) -> Result<TOTP, String> {
    let bytes = Secret::Encoded(secret_b32.to_string())
        .to_bytes()
        .map_err(|e| format!("{e:?}"))?;
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        STEP_SECS as u64,
        bytes,
        Some(issuer.to_string()),
        account.to_string(),
    )
    .map_err(|e| e.to_string())
}

/// The `otpauth://` URL authenticator apps read from the QR code.
pub fn otpauth_url(secret_b32: &str, account: &str, issuer: &str) -> Result<String, String> {
    // Issuer and account may not contain ':' in the label.
    let issuer = issuer.replace(':', " ");
    let account = account.replace(':', " ");
    Ok(totp(secret_b32, &account, &issuer)?.get_url())
}

/// The QR code as an SVG document (shown as an `<img>` data URL; no third party).
pub fn qr_svg(url: &str) -> Result<String, String> {
    let code = qrcode::QrCode::new(url.as_bytes()).map_err(|e| e.to_string())?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

/// The step (unix time / 30) whose code equals `code`, within ±SKEW of `now`.
pub fn matching_step(secret_b32: &str, code: &str, now: i64) -> Option<i64> {
    let code = code.trim().replace(' ', "");
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = totp(secret_b32, "x", "x").ok()?;
    let current = now.div_euclid(STEP_SECS);
    let mut found = None;
    // Check every candidate (no early exit) with a constant-time compare.
    for step in (current - SKEW)..=(current + SKEW) {
        let expected = t.generate(u64::try_from(step * STEP_SECS).ok()?);
        if crypto::ct_eq(expected.as_bytes(), code.as_bytes()) {
            found = Some(step);
        }
    }
    found
}

/// The code for a given time; used by tests and the CLI's self-test.
pub fn code_at(secret_b32: &str, unix: i64) -> Option<String> {
    let t = totp(secret_b32, "x", "x").ok()?;
    Some(t.generate(u64::try_from(unix).ok()?))
}

/// Ten recovery codes of 120 bits each (24 base32 characters), grouped for reading.
pub fn new_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let raw = data_encoding::BASE32_NOPAD.encode(&crypto::random_bytes::<15>());
            raw.as_bytes()
                .chunks(4)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect()
}

/// New recovery codes (to show once) and their hashes (to store).
pub fn new_recovery_codes_hashed() -> (Vec<String>, Vec<String>) {
    let codes = new_recovery_codes();
    let hashes = codes.iter().map(|c| hash_recovery_code(c)).collect();
    (codes, hashes)
}

/// Canonical form of a typed recovery code: upper case, no separators.
pub fn normalize_recovery_code(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

pub fn hash_recovery_code(code: &str) -> String {
    crypto::sha256_hex(normalize_recovery_code(code).as_bytes())
}

/// Whether the input looks like a recovery code rather than a 6-digit TOTP.
pub fn looks_like_recovery_code(s: &str) -> bool {
    normalize_recovery_code(s).len() == 24
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_and_skew() {
        let s = new_secret();
        let now = 1_800_000_000;
        let code = code_at(&s, now).unwrap();
        assert_eq!(matching_step(&s, &code, now), Some(now / 30));
        assert_eq!(matching_step(&s, &code, now + 30), Some(now / 30));
        assert_eq!(matching_step(&s, &code, now + 90), None);
        assert_eq!(matching_step(&s, "abcdef", now), None);
        let url = otpauth_url(&s, "a@b.co", "Toko Maju").unwrap();
        assert!(url.starts_with("otpauth://totp/"));
        assert!(qr_svg(&url).unwrap().contains("<svg"));
    }

    #[test]
    fn recovery_codes_are_distinct_and_normalise() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), 10);
        assert!(looks_like_recovery_code(&codes[0]));
        assert_eq!(
            hash_recovery_code(&codes[0].to_lowercase()),
            hash_recovery_code(&codes[0])
        );
        let set: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(set.len(), 10);
    }
}
