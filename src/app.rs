//! The application's shared state, assembled once at start from the handles the
//! features own (store, clock, doorbells, hubs, clients, caches). Handlers reach it
//! through `web::Data<AppState>`; workers and services get only the handles they use.

use crate::auth::password::Hasher;
use crate::clock::Clock;
use crate::config::Config;
use crate::jobs::Scheduler;
use crate::metrics::Metrics;
use crate::store::Db;
use crate::tls::CertState;
use crate::web::{BusinessCache, Plumbing};
use crate::whatsapp::graph::GraphClient;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

/// Requests per minute one API key may make (answered 429 with Retry-After beyond).
pub const API_REQUESTS_PER_MINUTE: u32 = 120;

/// Requests with an unknown API key one address may make per minute (then 429).
pub const API_BAD_KEYS_PER_MINUTE: u32 = 10;

/// Everything a handler may need; one instance shared by all workers.
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub clock: Clock,
    pub hasher: Hasher,
    /// Requests per API key.
    pub api_limiter: DefaultKeyedRateLimiter<i64>,
    /// Sign-in attempts per client: a known device of the user, else the IP address.
    pub login_limiter: DefaultKeyedRateLimiter<crate::auth::Client>,
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
    pub graph: GraphClient,
    /// App secrets and verify tokens of the connected numbers, for webhooks.
    pub webhook_keys: crate::whatsapp::WebhookKeys,
    /// The address people reach this server at (set once the listener is bound).
    pub bound_base_url: std::sync::OnceLock<String>,
    /// Live updates for open inbox pages.
    pub live: crate::inbox::live::Hub,
    /// The inbox's services' handles.
    pub inbox: crate::inbox::Inbox,
    /// Contact imports: the background worker's handles.
    pub importer: crate::contacts::import::Importer,
    /// Campaigns: the runner that plans scheduled ones and paces the sending.
    pub campaigns: crate::campaigns::runner::Runner,
    /// The numbers' bots, compiled (shared by the intake and the pages).
    pub bots: crate::bot::Bots,
    /// Business name and default language, cached for every page.
    pub business: BusinessCache,
    /// The bearer token `/metrics` scrapers send, when configured.
    pub metrics_token: Option<crate::crypto::Secret>,
    /// Unknown API keys per client address (a guessing brake).
    pub api_bad_key_limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// Badly signed webhook deliveries per address (their large bodies are refused unread).
    pub bad_senders: crate::web::body::BadSenders,
    /// The middleware's share of the state (registered as its own app data).
    pub plumbing: actix_web::web::Data<Plumbing>,
}

/// What start-up opened and made before the state is assembled.
pub struct Parts {
    pub config: Arc<Config>,
    pub db: Db,
    pub clock: Clock,
    pub graph: GraphClient,
    pub keys: Keys,
    pub tls: Option<Arc<CertState>>,
}

/// Keys derived from the database key. No `Debug`: they are secrets.
pub struct Keys {
    /// For CSRF tokens.
    pub csrf_key: [u8; 32],
    /// For media files at rest.
    pub media_key: [u8; 32],
}

impl AppState {
    pub fn new(parts: Parts, scheduler: Scheduler) -> Result<AppState, String> {
        let Parts {
            config,
            db,
            clock,
            graph,
            keys,
            tls,
        } = parts;
        let Keys { csrf_key, media_key } = keys;
        let hasher = Hasher::new(&config.argon2)?;
        let per_minute = NonZeroU32::new(config.login.per_ip_per_minute).unwrap_or(NonZeroU32::MIN);
        let business = db
            .read_blocking(|c| Ok(crate::settings::find_business(c)?))
            .map_err(|e| format!("cannot read the business profile: {e}"))?;
        let webhook_keys = db
            .read_blocking(|c| Ok(crate::whatsapp::WebhookKeys::load(c)?))
            .map_err(|e| format!("cannot read the WhatsApp numbers: {e}"))?;
        let metrics = Arc::new(Metrics::new());
        let bad_senders = crate::web::body::BadSenders::new(config.limits.bad_signatures_per_minute);
        let metrics_token = match &config.metrics.token_file {
            Some(p) => Some(crate::metrics::read_token(p)?),
            None => None,
        };
        let business = BusinessCache::new(business);
        let media = crate::whatsapp::media::Media {
            db: db.clone(),
            clock: clock.clone(),
            graph: graph.clone(),
            store: crate::whatsapp::media::MediaStore::new(config.data_dir.join("media"), media_key),
            bell: crate::wake::Doorbell::default(),
        };
        let plumbing = actix_web::web::Data::new(Plumbing {
            config: Arc::clone(&config),
            db: db.clone(),
            clock: clock.clone(),
            csrf_key,
            metrics: Arc::clone(&metrics),
            business: business.clone(),
            body_slots: crate::web::body::BodySlots::new(config.limits.unauthenticated_bodies_per_ip),
        });
        let live = crate::inbox::live::Hub::default();
        let outbox_bell = crate::wake::Doorbell::default();
        let inbox = crate::inbox::Inbox {
            db: db.clone(),
            clock: clock.clone(),
            live: live.clone(),
            outbox: outbox_bell.clone(),
            media: media.clone(),
        };
        let importer = crate::contacts::import::Importer::new(db.clone(), clock.clone());
        let campaigns = crate::campaigns::runner::Runner::new(
            db.clone(),
            clock.clone(),
            crate::wake::Doorbell::default(),
            outbox_bell.clone(),
        );
        Ok(AppState {
            importer,
            campaigns,
            config,
            db,
            clock,
            hasher,
            login_limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
            api_limiter: RateLimiter::keyed(Quota::per_minute(
                NonZeroU32::new(API_REQUESTS_PER_MINUTE).unwrap_or(NonZeroU32::MIN),
            )),
            metrics,
            tls,
            scheduler,
            webhook_keys,
            bound_base_url: std::sync::OnceLock::new(),
            graph,
            deliveries_bell: crate::wake::Doorbell::default(),
            outbox_bell,
            media,
            outbox_limits: Arc::default(),
            live,
            inbox,
            bots: crate::bot::Bots::default(),
            business,
            metrics_token,
            bad_senders,
            api_bad_key_limiter: RateLimiter::keyed(Quota::per_minute(
                NonZeroU32::new(API_BAD_KEYS_PER_MINUTE).unwrap_or(NonZeroU32::MIN),
            )),
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

    /// The inbound pipeline over this state's handles. `server` starts it once; tests
    /// run single rounds of it (`run_once`) instead of waiting for the loop.
    pub fn intake(&self) -> crate::intake::Intake {
        crate::intake::Intake {
            db: self.db.clone(),
            clock: self.clock.clone(),
            deliveries: self.deliveries_bell.clone(),
            media: self.media.bell.clone(),
            outbox: self.outbox_bell.clone(),
            live: self.live.clone(),
            bots: self.bots.clone(),
        }
    }

    /// The outbox dispatcher over this state's handles, with the inbox and campaigns
    /// listening to its outcomes. `server` starts it once; tests run single rounds (`dispatch_round`),
    /// which share the running dispatcher's rate limiters.
    pub fn dispatcher(&self) -> crate::whatsapp::outbox::Dispatcher {
        crate::whatsapp::outbox::Dispatcher {
            db: self.db.clone(),
            clock: self.clock.clone(),
            graph: self.graph.clone(),
            limits: Arc::clone(&self.outbox_limits),
            bell: self.outbox_bell.clone(),
            outcomes: Arc::new(crate::whatsapp::outbox::Listeners(vec![
                Arc::new(crate::inbox::outcomes::InboxOutcomes {
                    live: self.live.clone(),
                }),
                Arc::new(crate::campaigns::outcomes::CampaignOutcomes),
            ])),
        }
    }
}
