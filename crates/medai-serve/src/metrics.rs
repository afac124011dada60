//! `/metrics`: request counts, latency and batch-size histograms, errors, in-flight requests,
//! in the Prometheus text format (prometheus-client).

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: String,
    model: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: String,
    model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    model: String,
}

/// The service's metrics.
pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<EndpointLabels, Histogram>,
    batch: Family<ModelLabels, Histogram>,
    errors: Family<ModelLabels, Counter>,
    /// Requests being handled now.
    pub inflight: Gauge,
}

impl Metrics {
    /// Register every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("medai");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<EndpointLabels, Histogram>::new_with_constructor(|| {
            // 0.1 ms … ~6.5 s.
            Histogram::new(exponential_buckets(0.0001, 2.0, 17))
        });
        let batch = Family::<ModelLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(1.0, 2.0, 9))
        });
        let errors = Family::<ModelLabels, Counter>::default();
        let inflight = Gauge::default();
        registry.register("requests", "HTTP requests handled", requests.clone());
        registry.register(
            "request_duration_seconds",
            "Time from request to response",
            latency.clone(),
        );
        registry.register("batch_size", "Inputs per forward pass", batch.clone());
        registry.register(
            "inference_errors",
            "Forward passes that failed",
            errors.clone(),
        );
        registry.register(
            "inflight_requests",
            "Requests in progress",
            inflight.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            requests,
            latency,
            batch,
            errors,
            inflight,
        }
    }

    /// Count one finished request.
    pub fn request(&self, endpoint: &str, model: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                endpoint: endpoint.to_string(),
                model: model.to_string(),
                status: status.to_string(),
            })
            .inc();
        self.latency
            .get_or_create(&EndpointLabels {
                endpoint: endpoint.to_string(),
                model: model.to_string(),
            })
            .observe(seconds);
    }

    /// Record one forward pass of `n` inputs.
    pub fn batch(&self, model: &str, n: usize) {
        self.batch
            .get_or_create(&ModelLabels {
                model: model.to_string(),
            })
            .observe(n as f64);
    }

    /// Count one failed forward pass.
    pub fn error(&self, model: &str) {
        self.errors
            .get_or_create(&ModelLabels {
                model: model.to_string(),
            })
            .inc();
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let reg = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        prometheus_client::encoding::text::encode(&mut out, &reg).expect("writing to a String");
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
