//! Start-up: data dir, key, store, certificate, state, jobs, listener; and the one
//! `build_app` both `whacaster serve` and the tests use.

use crate::app::{AppState, Keys, Parts};
use crate::clock::Clock;
use crate::config::Config;
use crate::crypto;
use crate::jobs::{JobResult, JobSpec, Scheduler};
use crate::store::Db;
use crate::tls::CertState;
use crate::web;
use crate::whatsapp::graph::GraphClient;
use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer, middleware::from_fn};
use futures_util::future::BoxFuture;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub struct Running {
    pub addr: SocketAddr,
    pub handle: ServerHandle,
    pub state: actix_web::web::Data<AppState>,
    /// The setup link, while no admin exists.
    pub setup_url: Option<String>,
    pub server: actix_web::dev::Server,
}

/// Creates the data dir (0700) or checks that an existing one is usable.
pub fn prepare_data_dir(dir: &Path) -> Result<(), String> {
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create data dir {}: {e}", dir.display()))?;
    }
    let meta = std::fs::metadata(dir).map_err(|e| format!("cannot read data dir {}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("data dir {} is not a directory", dir.display()));
    }
    let probe = dir.join(".write-test");
    std::fs::write(&probe, b"").map_err(|e| format!("data dir {} is not writable: {e}", dir.display()))?;
    // An empty probe left behind is harmless; what mattered was that it could be written.
    drop(std::fs::remove_file(probe));
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(dir = %dir.display(), "data dir is readable by others; chmod 700 it");
    }
    Ok(())
}

/// Run as root (`sudo whacaster setup-url`), a command switches to the user that owns
/// the data dir before touching the database, so the files it creates (`-wal`, `-shm`,
/// backups) stay the service's. A no-op for everyone else.
pub fn become_data_owner(dir: &Path) -> Result<(), String> {
    use nix::unistd::{Gid, Uid, setgid, setgroups, setuid};
    use std::os::unix::fs::MetadataExt;
    if !Uid::effective().is_root() {
        return Ok(());
    }
    let Ok(meta) = std::fs::metadata(dir) else {
        return Ok(());
    };
    if meta.uid() == 0 {
        return Ok(());
    }
    let (uid, gid) = (Uid::from_raw(meta.uid()), Gid::from_raw(meta.gid()));
    setgroups(&[gid])
        .and_then(|()| setgid(gid))
        .and_then(|()| setuid(uid))
        .map_err(|e| format!("cannot switch to the owner (uid {uid}) of {}: {e}", dir.display()))
}

/// Opens the database for a command (CLI) or the server: data dir, key, migrations.
pub fn open_store(cfg: &Config, create: bool) -> Result<(Db, crypto::KeySource, crypto::DbKey), String> {
    if create {
        prepare_data_dir(&cfg.data_dir)?;
    } else if !cfg.db_path().exists() {
        return Err(format!(
            "no database at {} yet: start the server once first (sudo systemctl start whacaster, or whacaster serve)",
            cfg.db_path().display()
        ));
    }
    let (key, source) = crypto::load_db_key(&cfg.data_dir, cfg.db_path().exists(), create)?;
    if let Ok(bits) = crypto::loose_permissions(source.path()) {
        if bits != 0 {
            tracing::warn!(key = %source, "the key file is readable by others; chmod 600 it");
        }
    }
    let db = Db::open(&cfg.db_path(), &key).map_err(|e| e.to_string())?;
    Ok((db, source, key))
}

/// Builds state, binds the listener and starts serving (inside an actix system).
pub async fn start(cfg: Config, clock: Clock) -> Result<Running, String> {
    crate::tls::install_crypto_provider();
    let cfg = Arc::new(cfg);
    let addr = cfg.listen_addr()?;
    if cfg.proxy_unconfigured() {
        // Loud on purpose: a log line at start is all an operator may ever read.
        tracing::warn!("!!! {}", Config::PROXY_WARNING);
    }
    let (db, source, key) = open_store(&cfg, true)?;
    tracing::info!(key = %source, db = %cfg.db_path().display(), "database open");
    let tls = crate::tls::prepare(&cfg, clock.now(), key.derive("whacaster acme cache v1"))?;
    let csrf_key = key.derive("whacaster csrf v1");
    let media_key = key.media_key();
    drop(key);
    // A rotation (`whacaster rekey`) cut short between the database and the media swap.
    let resealed = crate::whatsapp::media::finish_reseal(&cfg.data_dir.join("media"), &media_key)?;
    if resealed > 0 {
        tracing::warn!(
            files = resealed,
            "finished re-encrypting media files from an interrupted rekey"
        );
    }
    let graph = GraphClient::new(&cfg.graph.base_url, &cfg.graph.api_version, cfg.graph.timeout_secs)?;
    let media_store = crate::whatsapp::media::MediaStore::new(cfg.data_dir.join("media"), media_key);
    let backups = crate::privacy::backup::Backups {
        db: db.clone(),
        config: Arc::clone(&cfg),
        media_key,
    };
    let scheduler = Scheduler::new(jobs(&cfg, &db, &clock, &graph, tls.as_ref(), &media_store, backups));
    let parts = Parts {
        config: Arc::clone(&cfg),
        db: db.clone(),
        clock: clock.clone(),
        graph,
        keys: Keys { csrf_key, media_key },
        tls: tls.clone(),
    };
    let state = actix_web::web::Data::new(AppState::new(parts, scheduler)?);

    let listener = TcpListener::bind(addr).map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => format!("cannot listen on {addr}: the port is in use (another Whacaster?)"),
        std::io::ErrorKind::PermissionDenied => {
            format!("cannot listen on {addr}: permission denied (ports below 1024 need CAP_NET_BIND_SERVICE)")
        }
        _ => format!("cannot listen on {addr}: {e}"),
    })?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;

    let app_state = state.clone();
    let server = HttpServer::new(move || build_app(app_state.clone())).shutdown_timeout(10);
    let server = match &tls {
        Some(t) => server
            .listen_rustls_0_23(listener, crate::tls::server_config(Arc::clone(t))?)
            .map_err(|e| format!("cannot serve TLS on {addr}: {e}"))?,
        None => server
            .listen(listener)
            .map_err(|e| format!("cannot serve on {addr}: {e}"))?,
    };
    let server = server.run();
    let handle = server.handle();

    state.scheduler.start(&state.db, &state.clock);
    state.intake().start();
    state.dispatcher().start();
    state.media.clone().start();
    state.importer.start();
    state.campaigns.clone().start();
    if let (Some(t), crate::config::TlsMode::Files) = (&tls, cfg.tls.mode) {
        spawn_reload_on_sighup(Arc::clone(t), Arc::clone(&cfg), clock.clone());
    }

    let mut base = cfg.base_url();
    if cfg.public_url.is_none() {
        // Show the port actually bound (matters with port 0 in tests).
        let scheme = if cfg.tls_enabled() { "https" } else { "http" };
        let host = if bound.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            bound.ip().to_string()
        };
        base = format!("{scheme}://{host}:{}", bound.port());
    }
    // The state was made above, so the cell is still empty: `set` cannot refuse.
    drop(state.bound_base_url.set(base.clone()));
    let now = clock.unix();
    let setup_url = actix_web::rt::task::spawn_blocking(move || crate::setup::issue_setup_token(&db, now))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?
        .map(|t| crate::setup::setup_url(&base, &t));
    Ok(Running {
        addr: bound,
        handle,
        state,
        setup_url,
        server,
    })
}

/// The whole application: every feature's routes behind the shared middleware.
/// `server` and the tests both build the app through this function.
pub fn configure(cfg: &mut actix_web::web::ServiceConfig) {
    use actix_web::web;
    cfg.service(web::resource("/static/{path:.*}").route(web::get().to(crate::web::assets::get_asset)))
        .service(web::resource("/").route(web::get().to(crate::setup::get_dashboard)));
    crate::ops::configure(cfg);
    crate::setup::configure(cfg);
    crate::auth::routes::configure(cfg);
    crate::auth::admin::configure(cfg);
    crate::audit::routes::configure(cfg);
    crate::jobs::configure(cfg);
    crate::whatsapp::numbers::configure(cfg);
    crate::whatsapp::templates::routes::configure(cfg);
    crate::whatsapp::webhook::configure(cfg);
    crate::api::routes::configure(cfg);
    crate::contacts::routes::configure(cfg);
    // Before `api::contacts`, whose `/api/v1/contacts/{id}` would take `import`.
    crate::api::imports::configure(cfg);
    crate::contacts::segments_routes::configure(cfg);
    crate::api::contacts::configure(cfg);
    crate::api::segments::configure(cfg);
    crate::api::campaigns::configure(cfg);
    crate::api::bot::configure(cfg);
    crate::campaigns::routes::configure(cfg);
    crate::bot::routes::configure(cfg);
    crate::inbox::routes::configure(cfg);
    crate::api::conversations::configure(cfg);
    crate::api::templates::configure(cfg);
    crate::privacy::routes::configure(cfg);
    crate::privacy::evidence_routes::configure(cfg);
    crate::api::privacy::configure(cfg);
}

/// The application with its middleware, as served; tests build exactly this.
pub fn build_app(
    state: actix_web::web::Data<AppState>,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(state.plumbing.clone())
        .app_data(state)
        .app_data(actix_web::web::FormConfig::default().limit(web::middleware::FORM_LIMIT))
        .app_data(actix_web::web::PayloadConfig::default().limit(web::middleware::FORM_LIMIT))
        .wrap(from_fn(web::middleware::app_middleware))
        .configure(configure)
        .default_service(actix_web::web::to(not_found))
}

async fn not_found() -> Result<actix_web::HttpResponse, crate::AppError> {
    Err(crate::AppError::NotFound)
}

fn spawn_reload_on_sighup(tls: Arc<CertState>, cfg: Arc<Config>, clock: Clock) {
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; certificate reload needs a restart");
            return;
        };
        while hup.recv().await.is_some() {
            // Reading the files is blocking work: off the async workers.
            let (t, c, now) = (Arc::clone(&tls), Arc::clone(&cfg), clock.now());
            let reloaded = tokio::task::spawn_blocking(move || t.reload(&c, now))
                .await
                .map_err(|e| e.to_string());
            match reloaded.and_then(|r| r) {
                Ok(m) => tracing::info!("{m}"),
                Err(e) => {
                    tracing::error!(error = %e, "certificate reload failed; still serving the old one");
                }
            }
        }
    });
}

/// Every scheduled job, each a closure over the handles it needs. Later features add
/// theirs here.
fn jobs(
    config: &Arc<Config>,
    db: &Db,
    clock: &Clock,
    graph: &GraphClient,
    tls: Option<&Arc<CertState>>,
    media: &crate::whatsapp::media::MediaStore,
    backups: crate::privacy::backup::Backups,
) -> Vec<JobSpec> {
    let hours = |h: u64| Duration::from_secs(h * 3600);
    let idle = config.session.idle_minutes * 60;
    let (config, tls) = (Arc::clone(config), tls.cloned());
    vec![
        job(
            "purge_expired_sessions",
            Duration::from_secs(600),
            db,
            clock,
            move |db, now| Box::pin(async move { crate::auth::jobs::purge_expired_sessions(&db, now, idle).await }),
        ),
        job("purge_expired_setup_links", hours(1), db, clock, |db, now| {
            Box::pin(async move { crate::setup::purge_expired_setup_links(&db, now).await })
        }),
        JobSpec {
            name: "renew_self_signed_certificate",
            every: hours(12),
            run: {
                let clock = clock.clone();
                Box::new(move || {
                    let (tls, config, now) = (tls.clone(), Arc::clone(&config), clock.now());
                    Box::pin(crate::tls::renew_self_signed_certificate(tls, config, now))
                })
            },
        },
        {
            let media = media.clone();
            job("apply_retention", hours(24), db, clock, move |db, now| {
                let media = media.clone();
                Box::pin(async move { crate::privacy::retention::apply_retention(&db, &media, now).await })
            })
        },
        job("back_up_data", hours(24), db, clock, move |_, now| {
            Box::pin(crate::privacy::backup::back_up_data(backups.clone(), now))
        }),
        job("check_database_integrity", hours(24), db, clock, |db, now| {
            Box::pin(async move { crate::privacy::evidence::check_database_integrity(&db, now).await })
        }),
        {
            let graph = graph.clone();
            job(
                "record_outbound_hosts",
                Duration::from_secs(600),
                db,
                clock,
                move |db, now| {
                    let graph = graph.clone();
                    Box::pin(async move { crate::privacy::evidence::record_outbound_hosts(&db, &graph, now).await })
                },
            )
        },
        job(
            "wake_snoozed_conversations",
            Duration::from_secs(60),
            db,
            clock,
            |db, now| Box::pin(async move { crate::inbox::wake_snoozed_conversations(&db, now).await }),
        ),
        {
            let graph = graph.clone();
            job("sync_message_templates", hours(6), db, clock, move |db, now| {
                let graph = graph.clone();
                Box::pin(async move { crate::whatsapp::templates::sync_all(&db, &graph, now).await })
            })
        },
    ]
}

/// A job that needs the store and the time of its run.
fn job(
    name: &'static str,
    every: Duration,
    db: &Db,
    clock: &Clock,
    run: impl Fn(Db, i64) -> BoxFuture<'static, JobResult> + Send + Sync + 'static,
) -> JobSpec {
    let (db, clock) = (db.clone(), clock.clone());
    JobSpec {
        name,
        every,
        run: Box::new(move || run(db.clone(), clock.unix())),
    }
}
