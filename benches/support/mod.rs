//! What both benchmarks need: the real server on a fresh encrypted data dir, and one
//! connected number.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    dead_code,
    reason = "a benchmark harness: failing loudly is the point; each bench uses part of it"
)]

use whacaster::app::AppState;
use whacaster::clock::Clock;
use whacaster::config::Config;

pub struct Server {
    pub addr: std::net::SocketAddr,
    pub state: actix_web::web::Data<AppState>,
    /// Keeps the data dir for the run.
    _dir: tempfile::TempDir,
}

/// Starts `whacaster serve` in this process (its own actix system on a thread).
pub fn start(tweak: impl FnOnce(&mut Config)) -> Server {
    whacaster::tls::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().join("data"),
        ..Default::default()
    };
    cfg.log_level = "error".into();
    tweak(&mut cfg);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let r = whacaster::server::start(cfg, Clock::default())
                .await
                .expect("server starts");
            tx.send((r.addr, r.state.clone())).ok();
            // The server's own errors are in its log.
            drop(r.server.await);
        });
    });
    let (addr, state) = rx.recv().expect("server");
    Server { addr, state, _dir: dir }
}

/// Connects number 1 (phone number id 106540352242922) with `app_secret` at `mps`.
pub fn connect_number(c: &rusqlite::Connection, state: &AppState, app_secret: &str, mps: i64) -> i64 {
    let n = whacaster::whatsapp::numbers::repo::NewNumber {
        display_name: "Bench",
        phone_number_id: "106540352242922",
        waba_id: "102290129340398",
        business_manager_id: "506914307656634",
        access_token: "token",
        app_secret,
        verify_token: "verify",
        mps,
        meta_app_id: "",
    };
    let id = whacaster::whatsapp::numbers::repo::insert_number(c, &n, 0).expect("number");
    state.webhook_keys.reload(c).expect("keys");
    id
}
