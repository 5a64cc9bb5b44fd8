//! argon2id password hashing (PHC strings), bounded in concurrency because every hash
//! allocates `memory_kib`; the password policy (length, common passwords).

use crate::config::Argon2Config;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::Arc;
use tokio::sync::Semaphore;

pub const MIN_LEN: usize = 12;
pub const MAX_LEN: usize = 128;

/// A short list of passwords that must never be accepted (ASVS 2.1.7); lower-case.
const COMMON: &[&str] = &[
    "123456789012",
    "1234567890123",
    "password1234",
    "passwordpassword",
    "qwertyuiopas",
    "qwerty123456",
    "111111111111",
    "000000000000",
    "abc123456789",
    "iloveyou1234",
    "admin1234567",
    "administrator",
    "welcome12345",
    "letmein12345",
    "indonesia123",
    "indonesia1945",
    "jakarta12345",
    "bismillah123",
    "sayangkamu123",
    "whatsapp1234",
    "whacaster123",
    "password12345",
    "passw0rd1234",
    "1q2w3e4r5t6y",
    "qwertyuiop12",
];

#[derive(Clone)]
pub struct Hasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// Verified against for unknown accounts, so their timing matches real ones.
    dummy: Arc<String>,
}

/// Why a new password is refused: a catalogue key.
pub fn policy_problem(password: &str, email: &str) -> Option<&'static str> {
    let n = password.chars().count();
    if n < MIN_LEN {
        return Some("password.too_short");
    }
    if n > MAX_LEN {
        return Some("password.too_long");
    }
    let lower = password.to_lowercase();
    let local = email.split('@').next().unwrap_or("").to_lowercase();
    if COMMON.contains(&lower.as_str()) || (!local.is_empty() && lower.contains(&local) && local.len() >= 4) {
        return Some("password.too_common");
    }
    if password.chars().collect::<std::collections::HashSet<_>>().len() < 4 {
        return Some("password.too_common");
    }
    None
}

impl Hasher {
    pub fn new(cfg: &Argon2Config) -> Result<Hasher, String> {
        let params = Params::new(cfg.memory_kib, cfg.iterations, cfg.parallelism, None)
            .map_err(|e| format!("argon2 parameters: {e}"))?;
        let mut h = Hasher {
            params,
            permits: Arc::new(Semaphore::new(4)),
            dummy: Arc::new(String::new()),
        };
        h.dummy = Arc::new(h.hash_blocking("whacaster-dummy-password")?);
        Ok(h)
    }

    fn argon(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    pub fn hash_blocking(&self, password: &str) -> Result<String, String> {
        let salt = SaltString::generate(&mut OsRng);
        self.argon()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| format!("password hashing failed: {e}"))
    }

    /// Verifies; with `None` (unknown account) it still does the work and returns false.
    pub fn verify_blocking(&self, password: &str, phc: Option<&str>) -> bool {
        let target = phc.unwrap_or(self.dummy.as_str());
        let ok = match PasswordHash::new(target) {
            Ok(parsed) => self.argon().verify_password(password.as_bytes(), &parsed).is_ok(),
            Err(_) => false,
        };
        ok && phc.is_some()
    }

    /// Whether a stored hash was made with other parameters (re-hash after sign-in).
    pub fn needs_rehash(&self, phc: &str) -> bool {
        match PasswordHash::new(phc) {
            Ok(p) => Params::try_from(&p)
                .map(|old| {
                    (old.m_cost(), old.t_cost(), old.p_cost())
                        != (self.params.m_cost(), self.params.t_cost(), self.params.p_cost())
                })
                .unwrap_or(true),
            Err(_) => true,
        }
    }

    pub async fn hash(&self, password: String) -> Result<String, String> {
        let _permit = self.permits.acquire().await.map_err(|e| e.to_string())?;
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.hash_blocking(&password))
            .await
            .map_err(|e| e.to_string())?
    }

    pub async fn verify(&self, password: String, phc: Option<String>) -> bool {
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.verify_blocking(&password, phc.as_deref()))
            .await
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verify_and_policy() {
        let h = Hasher::new(&Argon2Config {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap();
        let phc = h.hash_blocking("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(h.verify_blocking("correct horse battery", Some(&phc)));
        assert!(!h.verify_blocking("wrong", Some(&phc)));
        assert!(!h.verify_blocking("whacaster-dummy-password", None));
        assert!(!h.needs_rehash(&phc));
        assert_eq!(policy_problem("short", "a@b.co"), Some("password.too_short"));
        assert_eq!(policy_problem("password1234", "a@b.co"), Some("password.too_common"));
        assert_eq!(
            policy_problem("budi.santoso99!", "budi.santoso@x.id"),
            Some("password.too_common")
        );
        assert_eq!(
            policy_problem("aaaaaaaaaaaaaaaa", "a@b.co"),
            Some("password.too_common")
        );
        assert_eq!(policy_problem("kopi susu gula aren", "a@b.co"), None);
    }
}
