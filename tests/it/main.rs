//! The one integration-test binary (one link step for all tests).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly; clippy.toml allows them in #[test] functions but not in the helpers"
)]

mod acme;
mod api;
mod auth;
mod bot;
mod bot_pages;
mod browser;
mod campaigns;
mod campaigns_api;
mod campaigns_pages;
mod cli;
mod common;
mod consent;
mod contacts;
mod conversations;
mod fake_graph;
mod hardening;
mod house;
mod import;
mod inbound;
mod inbox;
mod media;
mod outbox;
mod privacy_backup;
mod privacy_ops;
mod roles;
mod segments;
mod store;
mod templates;
mod tls;
mod web;
mod whatsapp;
