//! Routes, middleware (limits, timeout, metrics, audit) and the serving loop.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Cursor;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Path as UrlPath, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use medai_data::RawImage;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::ServeError;
use crate::audit::{AuditEvent, AuditLog, AuditTarget, now_rfc3339};
use crate::auth::{AuthFile, Caller, Role};
use crate::batch::{BatchConfig, Batcher, SubmitError};
use crate::metrics::Metrics;
use crate::oip::{self, JsonBytes, OutputData, TensorData};
use crate::predictor::{InputKind, Inputs, ModelMeta, OutputKind, Predictor};

/// Service limits and batching.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Largest request body in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Largest image, in pixels (height × width), accepted for upload or UINT8 input.
    pub max_pixels: usize,
    /// Requests handled at once; more get 503 with `Retry-After`.
    pub max_concurrency: usize,
    /// Longest a request may take (503 beyond).
    pub timeout: Duration,
    /// Dynamic batching.
    pub batch: BatchConfig,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            max_body_bytes: 32 << 20,
            max_pixels: 50_000_000,
            max_concurrency: 256,
            timeout: Duration::from_secs(30),
            batch: BatchConfig::default(),
        }
    }
}

struct Served {
    model: Arc<dyn Predictor>,
    batcher: Batcher,
}

/// Everything the handlers share.
pub struct Service {
    models: BTreeMap<String, Served>,
    auth: AuthFile,
    audit: Option<AuditLog>,
    metrics: Arc<Metrics>,
    limit: Arc<Semaphore>,
    cfg: ServeConfig,
}

impl Service {
    /// A service for `models` (served under their [`crate::ModelMeta::name`]).
    pub fn new(
        models: Vec<Arc<dyn Predictor>>,
        auth: AuthFile,
        audit: Option<AuditTarget>,
        cfg: ServeConfig,
    ) -> Result<Service, ServeError> {
        let metrics = Arc::new(Metrics::new());
        let mut map = BTreeMap::new();
        for m in models {
            let name = m.meta().name.clone();
            if map.contains_key(&name) {
                return Err(ServeError::Config(format!(
                    "two models are named {name:?}: give one another name with --model NAME=BUNDLE"
                )));
            }
            let (mt, n2) = (metrics.clone(), name.clone());
            let batcher = Batcher::start(m.clone(), cfg.batch, Arc::new(move |n| mt.batch(&n2, n)));
            map.insert(name, Served { model: m, batcher });
        }
        if map.is_empty() {
            return Err(ServeError::Config("no model to serve".into()));
        }
        let audit = audit.map(AuditLog::open).transpose()?;
        Ok(Service {
            models: map,
            auth,
            audit,
            metrics,
            limit: Arc::new(Semaphore::new(cfg.max_concurrency.max(1))),
            cfg,
        })
    }

    /// The routes with their middleware.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/", get(page))
            .route("/v2", get(server_meta))
            .route(
                "/v2/health/live",
                get(|| async { Json(json!({"live": true})) }),
            )
            .route("/v2/health/ready", get(server_ready))
            .route("/v2/models/{name}", get(model_meta))
            .route("/v2/models/{name}/versions/{version}", get(model_meta_v))
            .route("/v2/models/{name}/ready", get(model_ready))
            .route(
                "/v2/models/{name}/versions/{version}/ready",
                get(model_ready_v),
            )
            .route("/v2/models/{name}/infer", post(infer))
            .route("/v2/models/{name}/versions/{version}/infer", post(infer_v))
            .route("/v1/models", get(list_models))
            .route("/v1/models/{name}/card", get(card))
            .route("/v1/models/{name}/predict", post(predict))
            .route("/metrics", get(metrics))
            .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
            .layer(middleware::from_fn_with_state(self.clone(), around))
            .with_state(self.clone())
    }

    /// Serve on `listener` until `shutdown` resolves, then finish the requests in flight and
    /// flush the audit log.
    pub async fn run(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let addr = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let app = self.router();
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| ServeError::Io {
            addr,
            reason: e.to_string(),
        })?;
        Ok(())
    }

    /// Like [`Service::run`], over TLS (rustls) with the certificate chain and private key read
    /// from PEM files. `shutdown` starts a graceful shutdown: no new connections, requests in
    /// flight finish.
    pub async fn run_tls(
        self: Arc<Self>,
        listener: std::net::TcpListener,
        cert: &Path,
        key: &Path,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        // The process-wide crypto provider; a second call (another server) keeps the first.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
            .await
            .map_err(|e| ServeError::Tls {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
                reason: e.to_string(),
            })?;
        let addr = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        listener.set_nonblocking(true).map_err(|e| ServeError::Io {
            addr: addr.clone(),
            reason: e.to_string(),
        })?;
        let handle = axum_server::Handle::new();
        let h2 = handle.clone();
        tokio::spawn(async move {
            shutdown.await;
            h2.graceful_shutdown(None);
        });
        axum_server::tls_rustls::from_tcp_rustls(listener, config)
            .handle(handle)
            .serve(
                self.router()
                    .into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .map_err(|e| ServeError::Io {
                addr,
                reason: e.to_string(),
            })
    }

    /// Flush and close the audit log (call after [`Service::run`] returns).
    pub fn close_audit(self: Arc<Self>) {
        if let Ok(mut s) = Arc::try_unwrap(self)
            && let Some(a) = s.audit.take()
        {
            a.close();
        }
    }

    fn model(&self, name: &str) -> Result<&Served, ApiError> {
        self.models.get(name).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "no model named {name:?} (served: {})",
                    self.models.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        })
    }

    /// A model request: the caller (predict role) and the model, with the audit row started.
    fn begin(&self, h: &HeaderMap, name: &str) -> Result<(Audit, &Served), ApiError> {
        let mut a = Audit::caller(&self.authorize(h, Role::Predict)?);
        let served = self.model(name).map_err(|e| e.audit(a.clone()))?;
        a.bundle_sha256 = served.model.meta().bundle_sha256.clone();
        Ok((a, served))
    }

    fn authorize(&self, headers: &HeaderMap, needed: Role) -> Result<Caller, ApiError> {
        let Some(v) = headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::unauthorized(
                "missing Authorization: Bearer <token>",
            ));
        };
        let v = v.to_str().unwrap_or("");
        let token = match v.split_once(' ') {
            Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => t.trim(),
            _ => {
                return Err(ApiError::unauthorized(
                    "expected Authorization: Bearer <token>",
                ));
            }
        };
        let caller = self
            .auth
            .check(token)
            .ok_or_else(|| ApiError::unauthorized("invalid token"))?;
        if !caller.role.allows(needed) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "this token's role does not allow this endpoint",
            )
            .audit(Audit::caller(&caller)));
        }
        Ok(caller)
    }
}

/// What a handler tells the audit middleware about its request.
#[derive(Clone, Debug, Default)]
struct Audit {
    token_id: String,
    bundle_sha256: String,
    input_sha256: String,
    output: String,
}

impl Audit {
    fn caller(c: &Caller) -> Audit {
        Audit {
            token_id: c.token_id.clone(),
            ..Audit::default()
        }
    }
}

/// A JSON error `{"error": …}` with its status.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
    audit: Option<Box<Audit>>,
    retry_after: bool,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            audit: None,
            retry_after: false,
        }
    }
    fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
    fn unauthorized(message: &str) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }
    fn saturated(message: &str) -> ApiError {
        ApiError {
            retry_after: true,
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
        }
    }
    fn audit(mut self, a: Audit) -> ApiError {
        self.audit = Some(Box::new(a));
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(json!({"error": self.message}))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        let mut a = self.audit.map(|b| *b).unwrap_or_default();
        if a.output.is_empty() {
            a.output = json!({"error": self.message}).to_string();
        }
        r.extensions_mut().insert(a);
        r
    }
}

/// JSON response helper (serde_json::Value, compact).
struct Json(Value);

impl IntoResponse for Json {
    fn into_response(self) -> Response {
        (
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_vec(&self.0).expect("JSON"),
        )
            .into_response()
    }
}

fn ok_json(v: Value, a: Audit) -> Response {
    let mut r = Json(v).into_response();
    r.extensions_mut().insert(a);
    r
}

/// The model name in a `/v1/models/{name}/…` or `/v2/models/{name}/…` path.
fn model_in_path(path: &str) -> String {
    let mut it = path.split('/').skip(1);
    match (it.next(), it.next(), it.next()) {
        (Some("v1" | "v2"), Some("models"), Some(name)) => name.to_string(),
        _ => String::new(),
    }
}

/// Concurrency limit, timeout, in-flight gauge, metrics and the audit row of every request.
async fn around(State(s): State<Arc<Service>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let endpoint = format!(
        "{} {}",
        req.method(),
        req.extensions()
            .get::<MatchedPath>()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "(unmatched)".into())
    );
    let model = model_in_path(req.uri().path());
    let quiet = matches!(
        endpoint.as_str(),
        "GET /" | "GET /v2/health/live" | "GET /v2/health/ready"
    ) || endpoint.ends_with("/ready");
    let response = match s.limit.clone().try_acquire_owned() {
        Err(_) => ApiError::saturated("the service is saturated; retry shortly").into_response(),
        Ok(permit) => {
            s.metrics.inflight.inc();
            let r = match tokio::time::timeout(s.cfg.timeout, next.run(req)).await {
                Ok(r) => r,
                Err(_) => ApiError::saturated(&format!(
                    "the request took longer than {} s",
                    s.cfg.timeout.as_secs_f64()
                ))
                .into_response(),
            };
            s.metrics.inflight.dec();
            drop(permit);
            r
        }
    };
    let secs = start.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    s.metrics.request(&endpoint, &model, status, secs);
    if !quiet && let Some(log) = &s.audit {
        let a = response
            .extensions()
            .get::<Audit>()
            .cloned()
            .unwrap_or_default();
        log.record(AuditEvent {
            time: now_rfc3339(),
            token_id: a.token_id,
            endpoint,
            model,
            bundle_sha256: a.bundle_sha256,
            input_sha256: a.input_sha256,
            output: a.output,
            status,
            latency_ms: secs * 1e3,
        });
    }
    response
}

const PAGE: &str = include_str!("../assets/index.html");

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        PAGE,
    )
        .into_response()
}

async fn server_meta(State(s): State<Arc<Service>>, h: HeaderMap) -> Result<Response, ApiError> {
    let c = s.authorize(&h, Role::Predict)?;
    Ok(ok_json(
        json!({"name": "medai", "version": env!("CARGO_PKG_VERSION"),
               "extensions": ["binary_tensor_data"]}),
        Audit::caller(&c),
    ))
}

fn check_version(v: &str) -> Result<(), ApiError> {
    if v == "1" {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no version {v:?} (served: \"1\")"),
        ))
    }
}

async fn model_meta(
    State(s): State<Arc<Service>>,
    UrlPath(name): UrlPath<String>,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    let c = s.authorize(&h, Role::Predict)?;
    let m = s.model(&name)?.model.meta();
    let k = m.classes.len() as i64;
    let input = match m.input {
        InputKind::Image => json!({"name": "image", "datatype": "FP32",
            "shape": [-1, m.channels as i64, m.height as i64, m.width as i64]}),
        kind => json!({"name": kind.name(), "datatype": "BYTES", "shape": [-1]}),
    };
    let outputs = match m.output {
        OutputKind::Values => json!([
            {"name": "prediction", "datatype": "FP32", "shape": [-1, k]},
            {"name": "uncertainty", "datatype": "FP32", "shape": [-1, k]}]),
        _ => json!([
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, k]},
            {"name": "label", "datatype": "BYTES", "shape": [-1]}]),
    };
    Ok(ok_json(
        json!({
            "name": name, "versions": ["1"], "platform": "medai",
            "inputs": [input],
            "outputs": outputs,
            "parameters": {"classes": m.classes, "task": m.task, "bundle_sha256": m.bundle_sha256,
                           "threshold": m.threshold, "temperature": m.temperature,
                           "output_kind": output_kind_name(m.output)}
        }),
        Audit::caller(&c),
    ))
}

fn output_kind_name(o: OutputKind) -> &'static str {
    match o {
        OutputKind::Classes => "classes",
        OutputKind::Labels => "labels",
        OutputKind::Values => "values",
    }
}

/// The names of a model's outputs in the v2 API.
fn output_names(m: &ModelMeta) -> [&'static str; 2] {
    match m.output {
        OutputKind::Values => ["prediction", "uncertainty"],
        _ => ["probabilities", "label"],
    }
}

async fn model_meta_v(
    st: State<Arc<Service>>,
    UrlPath((name, v)): UrlPath<(String, String)>,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    check_version(&v)?;
    model_meta(st, UrlPath(name), h).await
}

/// Ready unless the audit log's last write failed: a replica that cannot audit is taken out of
/// a load balancer's rotation (503) until its writer catches up.
async fn server_ready(State(s): State<Arc<Service>>) -> Response {
    match &s.audit {
        Some(a) if !a.healthy() => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"ready": false, "reason": "the audit log cannot be written"})),
        )
            .into_response(),
        _ => Json(json!({"ready": true})).into_response(),
    }
}

async fn model_ready(
    State(s): State<Arc<Service>>,
    UrlPath(name): UrlPath<String>,
) -> Result<Response, ApiError> {
    s.model(&name)?;
    Ok(Json(json!({"name": name, "ready": true})).into_response())
}

async fn model_ready_v(
    st: State<Arc<Service>>,
    UrlPath((name, v)): UrlPath<(String, String)>,
) -> Result<Response, ApiError> {
    check_version(&v)?;
    model_ready(st, UrlPath(name)).await
}

async fn read_body(s: &Service, body: Body, a: &Audit) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, s.cfg.max_body_bytes)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the request body exceeds the {} byte limit (or was cut off)",
                    s.cfg.max_body_bytes
                ),
            )
            .audit(a.clone())
        })
}

fn content_type(h: &HeaderMap) -> String {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Run the batch for `inputs` and map queue errors to HTTP.
async fn run_batch(
    s: &Service,
    served: &Served,
    inputs: Inputs,
    a: &Audit,
) -> Result<Vec<Vec<f64>>, ApiError> {
    let rx = served.batcher.submit(inputs).map_err(|e| {
        match e {
            SubmitError::Saturated => {
                ApiError::saturated("the model's queue is full; retry shortly")
            }
            SubmitError::Stopped => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the model's worker has stopped",
            ),
        }
        .audit(a.clone())
    })?;
    match rx.await {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(e)) => {
            s.metrics.error(&served.model.meta().name);
            tracing::error!("model {}: {e}", served.model.meta().name);
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("inference failed: {e}"),
            )
            .audit(a.clone()))
        }
        Err(_) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the model's worker dropped the request",
        )
        .audit(a.clone())),
    }
}

/// Check one string input (document or SMILES): UTF-8, not blank, accepted by the model.
fn string_input(model: &dyn Predictor, bytes: &[u8]) -> Result<String, String> {
    let what = model.meta().input.name();
    let text = std::str::from_utf8(bytes).map_err(|e| {
        format!(
            "the {what} is not UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        )
    })?;
    if text.trim().is_empty() {
        return Err(format!("the {what} is empty"));
    }
    model.check(text)?;
    Ok(text.to_string())
}

/// Decode an infer request's single input into network inputs.
fn to_network_input(
    s: &Service,
    model: &dyn Predictor,
    t: &oip::InputTensor,
) -> Result<Inputs, String> {
    let m = model.meta();
    let at = format!("input {:?}", t.name);
    if m.input.is_string() {
        return match (&t.data, t.shape.as_slice()) {
            (TensorData::Bytes(items), [_] | [_, 1]) => {
                if items.is_empty() {
                    return Err(format!("{at}: the batch is empty"));
                }
                let mut out = Vec::with_capacity(items.len());
                for (i, b) in items.iter().enumerate() {
                    out.push(string_input(model, b).map_err(|e| format!("{at}[{i}]: {e}"))?);
                }
                Ok(Inputs::Strings(out))
            }
            (TensorData::Bytes(_), _) => Err(format!(
                "{at}: BYTES input must have shape [N] or [N, 1], got {:?}",
                t.shape
            )),
            _ => Err(format!(
                "{at}: this model takes {} strings as BYTES, shape [N]",
                m.input.name()
            )),
        };
    }
    match (&t.data, t.shape.as_slice()) {
        (TensorData::F32(v), [n, c, h, w]) => {
            if (*c, *h, *w) != (m.channels, m.height, m.width) {
                return Err(format!(
                    "{at}: FP32 shape {:?} does not match the model's [-1, {}, {}, {}]",
                    t.shape, m.channels, m.height, m.width
                ));
            }
            if *n == 0 {
                return Err(format!("{at}: the batch is empty"));
            }
            Ok(Inputs::Tensor {
                values: v.clone(),
                n: *n,
            })
        }
        (TensorData::F32(_), _) => Err(format!(
            "{at}: FP32 input must have shape [N, {}, {}, {}], got {:?}",
            m.channels, m.height, m.width, t.shape
        )),
        (TensorData::U8(v), shape @ ([_, _, _] | [_, _, _, _])) => {
            let (n, h, w) = (shape[0], shape[1], shape[2]);
            let c = shape.get(3).copied().unwrap_or(1);
            if !matches!(c, 1 | 3 | 4) {
                return Err(format!(
                    "{at}: UINT8 images need 1, 3 or 4 channels, got {c}"
                ));
            }
            if n == 0 || h == 0 || w == 0 {
                return Err(format!("{at}: UINT8 shape {:?} has a zero size", t.shape));
            }
            if h * w > s.cfg.max_pixels {
                return Err(format!(
                    "{at}: {h}×{w} images exceed the {} pixel limit",
                    s.cfg.max_pixels
                ));
            }
            let mut out = Vec::with_capacity(n * m.input_len());
            for img in v.chunks_exact(h * w * c) {
                let keep = if c == 4 { 3 } else { c };
                let pixels: Vec<f32> = img
                    .chunks_exact(c)
                    .flat_map(|px| px[..keep].iter().map(|&x| f32::from(x)))
                    .collect();
                let raw = RawImage {
                    width: w,
                    height: h,
                    channels: keep,
                    pixels,
                };
                out.extend(model.preprocess(&raw));
            }
            Ok(Inputs::Tensor { values: out, n })
        }
        (TensorData::U8(_), _) => Err(format!(
            "{at}: UINT8 input must have shape [N, H, W] or [N, H, W, C], got {:?}",
            t.shape
        )),
        (TensorData::Bytes(files), [n]) => {
            let mut out = Vec::with_capacity(n * m.input_len());
            for (i, f) in files.iter().enumerate() {
                let img =
                    decode_upload(f, s.cfg.max_pixels).map_err(|e| format!("{at}[{i}]: {e}"))?;
                out.extend(model.preprocess(&img));
            }
            Ok(Inputs::Tensor { values: out, n: *n })
        }
        (TensorData::Bytes(_), _) => Err(format!(
            "{at}: BYTES input (encoded image files) must have shape [N], got {:?}",
            t.shape
        )),
    }
}

async fn infer_v(
    st: State<Arc<Service>>,
    UrlPath((name, v)): UrlPath<(String, String)>,
    h: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    check_version(&v)?;
    infer(st, UrlPath(name), h, body).await
}

async fn infer(
    State(s): State<Arc<Service>>,
    UrlPath(name): UrlPath<String>,
    h: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (mut a, served) = s.begin(&h, &name)?;
    let model = served.model.clone();
    let ct = content_type(&h);
    if !(ct.is_empty() || ct.contains("json") || ct == "application/octet-stream") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type {ct} (expected application/json, or application/octet-stream with Inference-Header-Content-Length)"),
        )
        .audit(a));
    }
    let body = read_body(&s, body, &a).await?;
    let hl = h
        .get("inference-header-content-length")
        .map(|v| v.to_str().unwrap_or("?"));
    let (head, bin) = oip::split_body(&body, hl).map_err(|e| ApiError::bad(e).audit(a.clone()))?;
    let max_elements = s.cfg.max_pixels.saturating_mul(4);
    let meta = model.meta();
    let json_bytes = if meta.input.is_string() {
        JsonBytes::Utf8
    } else {
        JsonBytes::Base64
    };
    let req = oip::parse_request(head, bin, max_elements, json_bytes)
        .map_err(|e| ApiError::bad(e).audit(a.clone()))?;
    if req.inputs.len() != 1 {
        return Err(ApiError::bad(format!(
            "the model takes exactly one input ({:?}), got {}",
            meta.input.name(),
            req.inputs.len()
        ))
        .audit(a));
    }
    let k = meta.classes.len();
    let names = output_names(meta);
    for (o, _) in &req.outputs {
        if !names.contains(&o.as_str()) {
            return Err(ApiError::bad(format!(
                "unknown output {o:?} (outputs: {})",
                names.join(", ")
            ))
            .audit(a));
        }
    }
    let t = &req.inputs[0];
    a.input_sha256 = sha256_hex(&t.data.le_bytes());
    let x = if matches!(t.data, TensorData::Bytes(_)) {
        // Image decoding and SMILES parsing are CPU work: keep them off the async workers.
        let (s2, m2, t2) = (s.clone(), model.clone(), t.clone());
        tokio::task::spawn_blocking(move || to_network_input(&s2, m2.as_ref(), &t2))
            .await
            .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "decoder failed"))?
    } else {
        to_network_input(&s, model.as_ref(), t)
    }
    .map_err(|e| ApiError::bad(e).audit(a.clone()))?;
    let n = x.len();
    let rows = run_batch(&s, served, x, &a).await?;
    let wanted: Vec<(String, bool)> = if req.outputs.is_empty() {
        names
            .iter()
            .map(|o| (o.to_string(), req.binary_output))
            .collect()
    } else {
        req.outputs.clone()
    };
    let outs: Vec<_> = if meta.output == OutputKind::Values {
        let pred: Vec<f32> = rows
            .iter()
            .flat_map(|r| &r[..k])
            .map(|&v| v as f32)
            .collect();
        let sd: Vec<f32> = rows
            .iter()
            .flat_map(|r| &r[k..])
            .map(|&v| v as f32)
            .collect();
        a.output = json!({"prediction": pred, "uncertainty": sd}).to_string();
        wanted
            .into_iter()
            .map(|(name, bin)| {
                let v = if name == "prediction" { &pred } else { &sd };
                (name, vec![n, k], OutputData::F32(v.clone()), bin)
            })
            .collect()
    } else {
        let labels: Vec<String> = rows.iter().filter_map(|p| meta.label(p)).collect();
        a.output = json!({"label": labels, "probabilities": rows}).to_string();
        let flat: Vec<f32> = rows.iter().flatten().map(|&p| p as f32).collect();
        wanted
            .into_iter()
            .map(|(name, bin)| {
                if name == "probabilities" {
                    (name, vec![n, k], OutputData::F32(flat.clone()), bin)
                } else {
                    (name, vec![n], OutputData::Bytes(labels.clone()), bin)
                }
            })
            .collect()
    };
    let (json_part, bin_part) = oip::encode_response(&name, req.id.as_deref(), &outs);
    let mut r = if bin_part.is_empty() {
        ([(header::CONTENT_TYPE, "application/json")], json_part).into_response()
    } else {
        let len = json_part.len();
        let mut all = json_part;
        all.extend_from_slice(&bin_part);
        let mut r = ([(header::CONTENT_TYPE, "application/octet-stream")], all).into_response();
        r.headers_mut().insert(
            "inference-header-content-length",
            HeaderValue::from_str(&len.to_string()).expect("digits"),
        );
        r
    };
    r.extensions_mut().insert(a);
    Ok(r)
}

async fn list_models(State(s): State<Arc<Service>>, h: HeaderMap) -> Result<Response, ApiError> {
    let c = s.authorize(&h, Role::Predict)?;
    let models: Vec<Value> = s
        .models
        .iter()
        .map(|(name, sv)| {
            let m = sv.model.meta();
            let input = match m.input {
                InputKind::Image => json!({"kind": "image", "channels": m.channels,
                                           "height": m.height, "width": m.width}),
                kind => json!({"kind": kind.name()}),
            };
            json!({"name": name, "version": "1", "task": m.task, "classes": m.classes,
                   "input": input, "output": output_kind_name(m.output),
                   "bundle_sha256": m.bundle_sha256})
        })
        .collect();
    Ok(ok_json(json!({"models": models}), Audit::caller(&c)))
}

async fn card(
    State(s): State<Arc<Service>>,
    UrlPath(name): UrlPath<String>,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    let c = s.authorize(&h, Role::Predict)?;
    let mut a = Audit::caller(&c);
    let m = s.model(&name).map_err(|e| e.audit(a.clone()))?.model.meta();
    a.bundle_sha256 = m.bundle_sha256.clone();
    let mut r = (
        [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
        m.card_markdown.clone(),
    )
        .into_response();
    r.extensions_mut().insert(a);
    Ok(r)
}

/// Decode an upload (PNG, JPEG, BMP, TIFF or DICOM), refusing images over the pixel limit
/// before their pixels are allocated.
fn decode_upload(bytes: &[u8], max_pixels: usize) -> Result<RawImage, String> {
    let name = Path::new("upload");
    let is_dicom = bytes.get(128..132) == Some(b"DICM");
    if is_dicom {
        let d = medai_data::read_dicom_bytes(bytes, name)
            .map_err(|e| format!("the upload is not a readable DICOM file: {e}"))?;
        if d.rows * d.cols > max_pixels {
            return Err(format!(
                "the DICOM image is {}×{}, over the {max_pixels} pixel limit",
                d.rows, d.cols
            ));
        }
        return d
            .to_raw_image(0, medai_data::WindowChoice::FromFile)
            .map_err(|e| format!("the DICOM pixel data cannot be shown as an image: {e}"));
    }
    let reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    if reader.format().is_none() {
        return Err(
            "the upload is not an image (expected PNG, JPEG, BMP, TIFF or DICOM)".to_string(),
        );
    }
    let (w, h) = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?
        .into_dimensions()
        .map_err(|e| format!("the image header cannot be read: {e}"))?;
    if (w as usize) * (h as usize) > max_pixels {
        return Err(format!(
            "the image is {w}×{h}, over the {max_pixels} pixel limit"
        ));
    }
    medai_data::decode_image_bytes(bytes, name)
        .map_err(|e| format!("the image cannot be decoded: {e}"))
}

/// Run an explanation on the blocking pool; its failure is a 500 naming the reason.
async fn explanation<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
    a: &Audit,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "explanation failed"))?
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("explanation failed: {e}"),
            )
            .audit(a.clone())
        })
}

#[derive(serde::Deserialize)]
struct PredictQuery {
    explain: Option<String>,
}

async fn predict(
    State(s): State<Arc<Service>>,
    UrlPath(name): UrlPath<String>,
    Query(q): Query<PredictQuery>,
    h: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (mut a, served) = s.begin(&h, &name)?;
    let model = served.model.clone();
    let meta = model.meta();
    if meta.input.is_string() {
        return predict_string(&s, served, &name, q, &h, body, a).await;
    }
    let method = match q.explain.as_deref() {
        None | Some("" | "false" | "none") => None,
        Some("true" | "gradcam") => Some("gradcam"),
        Some("occlusion") => Some("occlusion"),
        Some(other) => {
            return Err(
                ApiError::bad(format!("explain={other} (expected gradcam or occlusion)")).audit(a),
            );
        }
    };
    let ct = content_type(&h);
    if !(ct.is_empty()
        || ct.starts_with("image/")
        || ct == "application/dicom"
        || ct == "application/octet-stream")
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type {ct} (expected the image file itself: image/png, image/jpeg, application/dicom or application/octet-stream)"),
        )
        .audit(a));
    }
    let body = read_body(&s, body, &a).await?;
    if body.is_empty() {
        return Err(ApiError::bad("the request body is empty (expected an image file)").audit(a));
    }
    let max_pixels = s.cfg.max_pixels;
    let img = tokio::task::spawn_blocking(move || decode_upload(&body, max_pixels))
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "decoder failed"))?
        .map_err(|e| ApiError::bad(e).audit(a.clone()))?;
    // The hash is over decoded pixels only: no DICOM header value reaches the audit log.
    a.input_sha256 = sha256_hex(
        &img.pixels
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect::<Vec<u8>>(),
    );
    let x = Inputs::Tensor {
        values: model.preprocess(&img),
        n: 1,
    };
    let probs = run_batch(&s, served, x, &a).await?.remove(0);
    let li = meta.label_index(&probs);
    let label = meta.classes[li].clone();
    let mut out = json!({
        "model": name, "model_version": "1", "bundle_sha256": meta.bundle_sha256,
        "input_sha256": a.input_sha256, "classes": meta.classes,
        "probabilities": meta.classes.iter().zip(&probs).map(|(c, p)| (c.clone(), json!(p))).collect::<serde_json::Map<_, _>>(),
        "label": label, "threshold": meta.threshold,
    });
    if probs.len() == 2 {
        out["positive_class"] = json!(meta.classes[1]);
        out["decision"] = json!(if li == 1 { "positive" } else { "negative" });
    }
    a.output = json!({"label": label, "probabilities": probs}).to_string();
    if let Some(method) = method {
        let m2 = model.clone();
        let png = explanation(move || m2.explain(&img, li, method), &a).await?;
        out["explanation"] = json!({"method": method, "target": label,
            "overlay_png_base64": base64::engine::general_purpose::STANDARD.encode(png)});
    }
    Ok(ok_json(out, a))
}

/// `/v1/models/{name}/predict` for a text or SMILES model: the body is the document or the
/// SMILES itself (UTF-8).
async fn predict_string(
    s: &Arc<Service>,
    served: &Served,
    name: &str,
    q: PredictQuery,
    h: &HeaderMap,
    body: Body,
    mut a: Audit,
) -> Result<Response, ApiError> {
    let model = served.model.clone();
    let meta = model.meta();
    let what = meta.input.name();
    let explain = match q.explain.as_deref() {
        None | Some("" | "false" | "none") => false,
        Some("true") if meta.input == InputKind::Text => true,
        Some(other) if meta.input == InputKind::Text => {
            return Err(ApiError::bad(format!("explain={other} (expected true)")).audit(a));
        }
        Some(_) => {
            return Err(
                ApiError::bad(format!("explanations are not available for {what} models")).audit(a),
            );
        }
    };
    let ct = content_type(h);
    if !(ct.is_empty() || ct == "text/plain" || ct == "application/octet-stream") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type {ct} (expected the {what} itself as text/plain)"),
        )
        .audit(a));
    }
    let body = read_body(s, body, &a).await?;
    a.input_sha256 = sha256_hex(&body);
    let m2 = model.clone();
    let text = tokio::task::spawn_blocking(move || string_input(m2.as_ref(), &body))
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "input check failed"))?
        .map_err(|e| ApiError::bad(e).audit(a.clone()))?;
    let row = run_batch(s, served, Inputs::Strings(vec![text.clone()]), &a)
        .await?
        .remove(0);
    let k = meta.classes.len();
    let named = |v: &[f64]| -> serde_json::Map<String, Value> {
        meta.classes
            .iter()
            .zip(v)
            .map(|(c, p)| (c.clone(), json!(p)))
            .collect()
    };
    let mut out = json!({
        "model": name, "model_version": "1", "bundle_sha256": meta.bundle_sha256,
        "input_sha256": a.input_sha256, "input": what, "classes": meta.classes,
    });
    match meta.output {
        OutputKind::Values => {
            out["prediction"] = json!(named(&row[..k]));
            out["uncertainty"] = json!(named(&row[k..]));
            a.output = json!({"prediction": &row[..k], "uncertainty": &row[k..]}).to_string();
        }
        OutputKind::Labels => {
            let present: Vec<&String> = meta
                .classes
                .iter()
                .zip(&row)
                .filter(|(_, p)| **p >= meta.threshold)
                .map(|(c, _)| c)
                .collect();
            out["probabilities"] = json!(named(&row));
            out["labels"] = json!(present);
            out["threshold"] = json!(meta.threshold);
            a.output = json!({"labels": present, "probabilities": row}).to_string();
        }
        OutputKind::Classes => {
            let li = meta.label_index(&row);
            out["probabilities"] = json!(named(&row));
            out["label"] = json!(meta.classes[li]);
            out["threshold"] = json!(meta.threshold);
            if row.len() == 2 {
                out["positive_class"] = json!(meta.classes[1]);
                out["decision"] = json!(if li == 1 { "positive" } else { "negative" });
            }
            a.output = json!({"label": meta.classes[li], "probabilities": row}).to_string();
        }
    }
    if explain {
        // The class explained: the label, or for a multi-label model its most probable label.
        let target = match meta.output {
            OutputKind::Classes => meta.label_index(&row),
            _ => crate::predictor::argmax(&row[..k]),
        };
        let m2 = model.clone();
        let e = explanation(move || m2.explain_text(&text, target), &a).await?;
        out["explanation"] = json!({"method": e.method, "target": meta.classes[target],
                                    "tokens": e.tokens});
    }
    Ok(ok_json(out, a))
}

async fn metrics(State(s): State<Arc<Service>>, h: HeaderMap) -> Result<Response, ApiError> {
    let c = s.authorize(&h, Role::Admin)?;
    let mut r = (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
        .into_response();
    r.extensions_mut().insert(Audit::caller(&c));
    Ok(r)
}
