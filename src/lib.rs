//! Whacaster: a self-hosted, single-binary WhatsApp Business platform.
//! `lib.rs` lists the features and exposes `server::start`, which `main` and the tests share.

#[expect(
    clippy::cast_possible_wrap,
    reason = "being split on another branch (issue 9); the split fixes these, then this goes"
)]
pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod bot;
pub mod campaigns;
pub mod check;
pub mod clock;
pub mod config;
pub mod contacts;
pub mod crypto;
pub mod error;
pub mod i18n;
pub mod inbox;
pub mod intake;
pub mod jobs;
pub mod metrics;
pub mod ops;
pub mod privacy;
pub mod server;
pub mod settings;
pub mod setup;
pub mod store;
pub mod tls;
pub mod wake;
pub mod web;
pub mod whatsapp;

pub use error::AppError;

/// The version shown on `/healthz` and in `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
