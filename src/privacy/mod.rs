//! Privacy operations: what the appliance keeps, for how long, and the evidence of it
//! (PRIVACY-PROMISES.md): the retention purge, legal holds, data-subject requests and
//! policy notices (the notices' SQL is `auth::notices`: every page asks for them).

pub mod account;
pub mod backup;
pub mod evidence;
pub mod evidence_routes;
pub mod requests;
pub mod retention;
pub mod routes;

/// The version of the terms (the privacy policy) an owner accepts at setup (P21).
pub const TERMS_VERSION: &str = "privacy-policy-2026-11";
