//! The Prometheus registry: request counters and latency (from the middleware), sign-in
//! failures, webhook counts, and gauges read fresh at each scrape (pool, queues).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Mutex;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

/// The queues' figures at the moment of a scrape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueGauges {
    /// Deliveries acknowledged (200) and not processed yet.
    pub delivery_backlog: i64,
    pub deliveries_quarantined: i64,
    /// Outbox rows by state, every state listed.
    pub outbox: Vec<(String, i64)>,
}

/// Reads the `/metrics` bearer token from its file (trimmed; at least 16 characters).
pub fn read_token(path: &std::path::Path) -> Result<crate::crypto::Secret, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("metrics.token_file {}: {e}", path.display()))?;
    let token = text.trim();
    if token.len() < 16 || token.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!(
            "metrics.token_file {}: the token must be at least 16 characters on one line",
            path.display()
        ));
    }
    Ok(crate::crypto::Secret::new(token))
}

pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    pub login_failures: Counter,
    pub webhook_received: Counter,
    pub webhook_refused: Counter,
    pool_connections: Gauge,
    pool_idle: Gauge,
    delivery_backlog: Gauge,
    deliveries_quarantined: Gauge,
    outbox_rows: Family<StateLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("whacaster");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0])
        });
        let login_failures = Counter::default();
        let webhook_received = Counter::default();
        let webhook_refused = Counter::default();
        let pool_connections = Gauge::default();
        let pool_idle = Gauge::default();
        let delivery_backlog = Gauge::default();
        let deliveries_quarantined = Gauge::default();
        let outbox_rows = Family::<StateLabels, Gauge>::default();
        registry.register(
            "webhook_backlog",
            "Webhook deliveries acknowledged and not yet processed",
            delivery_backlog.clone(),
        );
        registry.register(
            "webhook_quarantined",
            "Webhook deliveries that could not be processed (kept, retried, shown on the WhatsApp page)",
            deliveries_quarantined.clone(),
        );
        registry.register("outbox_rows", "Outbox rows by state", outbox_rows.clone());
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        registry.register(
            "login_failures",
            "Failed sign-in attempts (password or MFA)",
            login_failures.clone(),
        );
        registry.register(
            "webhook_deliveries",
            "Signed webhook deliveries stored",
            webhook_received.clone(),
        );
        registry.register(
            "webhook_refused",
            "Webhook deliveries refused (missing or wrong signature)",
            webhook_refused.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Open database connections in the read pool",
            pool_connections.clone(),
        );
        registry.register(
            "db_pool_idle_connections",
            "Idle database connections in the read pool",
            pool_idle.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            requests,
            latency,
            login_failures,
            webhook_received,
            webhook_refused,
            pool_connections,
            pool_idle,
            delivery_backlog,
            deliveries_quarantined,
            outbox_rows,
        }
    }

    pub fn observe_request(&self, route: &str, method: &str, status: u16, secs: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_string(),
                method: method.to_string(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_string(),
            })
            .observe(secs);
    }

    pub fn encode(&self, pool: (u32, u32), queues: &QueueGauges) -> Result<String, String> {
        self.pool_connections.set(i64::from(pool.0));
        self.pool_idle.set(i64::from(pool.1));
        self.delivery_backlog.set(queues.delivery_backlog);
        self.deliveries_quarantined.set(queues.deliveries_quarantined);
        // The caller lists every state, 0 included, so a drained queue shows as 0, not as gone.
        for (state, n) in &queues.outbox {
            self.outbox_rows
                .get_or_create(&StateLabels { state: state.clone() })
                .set(*n);
        }
        let mut out = String::new();
        let registry = self
            .registry
            .lock()
            .map_err(|_| "metrics registry poisoned".to_string())?;
        prometheus_client::encoding::text::encode(&mut out, &registry).map_err(|e| e.to_string())?;
        Ok(out)
    }
}
