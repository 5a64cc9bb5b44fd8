//! The application's shared state, assembled once at start from the handles the
//! features own (store, clock, doorbells, hubs, clients, caches). Handlers reach it
//! through `web::Data<AppState>`; workers and services get only the handles they use.

use crate::auth::password::Hasher;
use crate::clock::Clock;
use crate::config::Config;
use crate::jobs::{JobResult, JobSpec, Scheduler};
use crate::metrics::Metrics;
use crate::store::Db;
use crate::tls::CertState;
use crate::web::{BusinessCache, Plumbing};
use crate::whatsapp::graph::GraphClient;
use futures_util::future::BoxFuture;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// Everything a handler may need; one instance shared by all workers.
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub clock: Clock,
    pub hasher: Hasher,
    /// Requests per API key.
    pub api_limiter: DefaultKeyedRateLimiter<i64>,
    /// Sign-in attempts per client IP.
    pub login_limiter: DefaultKeyedRateLimiter<IpAddr>,
    pub metrics: Arc<Metrics>,
    pub tls: Option<Arc<CertState>>,
    pub scheduler: Scheduler,
    /// Received and sent files: the fetcher, the upload path, the encrypted store.
    pub media: crate::whatsapp::media::Media,
    /// Wakes the outbox dispatcher when a message was queued.
    pub outbox_bell: crate::wake::Doorbell,
    /// The dispatcher's rate limiters (per number, per recipient).
    pub outbox_limits: Arc<crate::whatsapp::outbox::Limiters>,
    /// Wakes the intake when a delivery was stored.
    pub deliveries_bell: crate::wake::Doorbell,
    /// Meta's Graph API (base URL and version from the configuration).
    pub graph: crate::whatsapp::graph::GraphClient,
    /// App secrets and verify tokens of the connected numbers, for webhooks.
    pub webhook_keys: crate::whatsapp::WebhookKeys,
    /// The address people reach this server at (set once the listener is bound).
    pub bound_base_url: std::sync::OnceLock<String>,
    /// Live updates for open inbox pages.
    pub live: crate::inbox::live::Hub,
    /// Business name and default language, cached for every page.
    pub business: BusinessCache,
    /// The middleware's share of the state (registered as its own app data).
    pub plumbing: actix_web::web::Data<Plumbing>,
}

impl AppState {
    pub fn new(
        config: Arc<Config>,
        db: Db,
        clock: Clock,
        csrf_key: [u8; 32],
        media_key: [u8; 32],
        tls: Option<Arc<CertState>>,
    ) -> Result<AppState, String> {
        let hasher = Hasher::new(&config.argon2)?;
        let per_minute = NonZeroU32::new(config.login.per_ip_per_minute).unwrap_or(NonZeroU32::MIN);
        let business = db
            .read_blocking(|c| Ok(crate::settings::find_business(c)?))
            .map_err(|e| format!("cannot read the business profile: {e}"))?;
        let graph = crate::whatsapp::graph::GraphClient::new(
            &config.graph.base_url,
            &config.graph.api_version,
            config.graph.timeout_secs,
        )?;
        let webhook_keys = db
            .read_blocking(|c| Ok(crate::whatsapp::WebhookKeys::load(c)?))
            .map_err(|e| format!("cannot read the WhatsApp numbers: {e}"))?;
        let metrics = Arc::new(Metrics::new());
        let business = BusinessCache::new(business);
        let media = crate::whatsapp::media::Media {
            db: db.clone(),
            clock: clock.clone(),
            graph: graph.clone(),
            store: crate::whatsapp::media::MediaStore::new(config.data_dir.join("media"), media_key),
            bell: crate::wake::Doorbell::default(),
        };
        let scheduler = Scheduler::new(jobs(&config, &db, &clock, &graph, tls.as_ref()));
        let plumbing = actix_web::web::Data::new(Plumbing {
            config: config.clone(),
            db: db.clone(),
            clock: clock.clone(),
            csrf_key,
            metrics: metrics.clone(),
            business: business.clone(),
        });
        Ok(AppState {
            config,
            db,
            clock,
            hasher,
            login_limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
            api_limiter: RateLimiter::keyed(Quota::per_minute(
                NonZeroU32::new(crate::api::PER_MINUTE).unwrap_or(NonZeroU32::MIN),
            )),
            metrics,
            tls,
            scheduler,
            webhook_keys,
            bound_base_url: std::sync::OnceLock::new(),
            graph,
            deliveries_bell: crate::wake::Doorbell::default(),
            outbox_bell: crate::wake::Doorbell::default(),
            media,
            outbox_limits: Arc::default(),
            live: crate::inbox::live::Hub::default(),
            business,
            plumbing,
        })
    }

    pub fn business(&self) -> Option<crate::settings::Business> {
        self.business.get()
    }

    pub fn set_business(&self, b: crate::settings::Business) {
        self.business.set(b);
    }

    /// `public_url`, else the address actually listened on (links, callback URL).
    pub fn base_url(&self) -> String {
        self.bound_base_url
            .get()
            .cloned()
            .unwrap_or_else(|| self.config.base_url())
    }

    pub fn now(&self) -> i64 {
        self.clock.unix()
    }

    /// The inbound pipeline, over this state's handles.
    pub fn intake(&self) -> crate::intake::Intake {
        crate::intake::Intake {
            db: self.db.clone(),
            clock: self.clock.clone(),
            deliveries: self.deliveries_bell.clone(),
            media: self.media.bell.clone(),
            live: self.live.clone(),
        }
    }

    /// The outbox dispatcher, reporting outcomes to the inbox.
    pub fn dispatcher(&self) -> crate::whatsapp::outbox::Dispatcher {
        crate::whatsapp::outbox::Dispatcher {
            db: self.db.clone(),
            clock: self.clock.clone(),
            graph: self.graph.clone(),
            limits: self.outbox_limits.clone(),
            bell: self.outbox_bell.clone(),
            outcomes: Arc::new(crate::inbox::outcomes::InboxOutcomes {
                live: self.live.clone(),
            }),
        }
    }
}

/// Every scheduled job, each a closure over the handles it needs. Later features add
/// theirs here.
fn jobs(
    config: &Arc<Config>,
    db: &Db,
    clock: &Clock,
    graph: &GraphClient,
    tls: Option<&Arc<CertState>>,
) -> Vec<JobSpec> {
    let hours = |h: u64| Duration::from_secs(h * 3600);
    let idle = config.session.idle_minutes * 60;
    let (config, tls) = (config.clone(), tls.cloned());
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
                    let (tls, config, now) = (tls.clone(), config.clone(), clock.now());
                    Box::pin(crate::tls::renew_self_signed_certificate(tls, config, now))
                })
            },
        },
        job("purge_old_logs", hours(24), db, clock, |db, now| {
            Box::pin(async move { crate::privacy::retention::purge_old_logs(&db, now).await })
        }),
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
