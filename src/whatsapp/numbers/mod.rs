//! Connected WhatsApp Business numbers: their table (`repo`) and the admin pages that
//! connect, change and test them (`routes`).

pub mod repo;
mod routes;

pub use routes::configure;
