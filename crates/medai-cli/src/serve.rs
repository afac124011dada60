//! `medai serve`, `medai token`, `medai audit`: the service commands, and the adapters that
//! show image, text and molecule bundles to `medai-serve` as [`Predictor`]s.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use medai_data::RawImage;
use medai_nn::data::ImageBatcher;
use medai_nn::vision::ImageModel;
use medai_serve::audit::AuditTarget;
use medai_serve::predictor::{InputKind, Inputs, OutputKind, TextExplanation, TokenWeight};
use medai_serve::{AuthFile, BatchConfig, ModelMeta, Predictor, Role, ServeConfig, Service};
use sha2::{Digest, Sha256};

/// An image-classification bundle behind the [`Predictor`] trait.
pub struct ImagePredictor {
    meta: ModelMeta,
    model: ImageModel,
    batcher: ImageBatcher,
    device: medai_nn::Device,
}

/// Load any servable bundle (image, text or molecule model) behind the [`Predictor`] trait;
/// `name` overrides the manifest's name. The bundle is read and verified once.
pub fn load_predictor(path: &Path, name: Option<&str>, device: &str) -> Result<Arc<dyn Predictor>> {
    let bundle = medai_bundle::Bundle::read(path)?;
    let meta = bundle_meta(&bundle, path, name)?;
    Ok(match bundle.manifest.task.as_str() {
        crate::text::TASK => Arc::new(TextPredictor::new(bundle, path, meta, device)?),
        crate::molecules::TASK => Arc::new(MolPredictor::new(bundle, path, meta, device)?),
        "image-classification" => Arc::new(ImagePredictor::new(bundle, path, meta, device)?),
        other => bail!(
            "{}: a {other:?} bundle cannot be served (servable: image-classification, {}, {})",
            path.display(),
            crate::text::TASK,
            crate::molecules::TASK
        ),
    })
}

/// The metadata every served bundle shares: name, task, classes, threshold, temperature, weights
/// hash, card. Input and output kinds default to an image classifier with zero geometry; each
/// adapter sets its own.
fn bundle_meta(
    bundle: &medai_bundle::Bundle,
    path: &Path,
    name: Option<&str>,
) -> Result<ModelMeta> {
    let m = &bundle.manifest;
    let card = if bundle.model_card.is_empty() {
        medai_bundle::render_model_card(m)
    } else {
        bundle.model_card.clone()
    };
    let meta = ModelMeta {
        name: name.unwrap_or(&m.name).to_string(),
        task: m.task.clone(),
        input: InputKind::Image,
        output: OutputKind::Classes,
        classes: m.classes.clone(),
        channels: 0,
        height: 0,
        width: 0,
        threshold: m
            .training
            .get("threshold")
            .and_then(|t| t.as_f64())
            .unwrap_or(0.5),
        temperature: crate::evaluate::temperature_of(m),
        bundle_sha256: hex::encode(Sha256::digest(&bundle.weights)),
        card_markdown: card,
    };
    if meta.name.is_empty() || meta.name.contains('/') {
        bail!(
            "{}: model name {:?} cannot be used in a URL path",
            path.display(),
            meta.name
        );
    }
    Ok(meta)
}

impl ImagePredictor {
    /// The image model of `bundle` (read from `path`) with its service metadata.
    pub fn new(
        bundle: medai_bundle::Bundle,
        path: &Path,
        mut meta: ModelMeta,
        device: &str,
    ) -> Result<ImagePredictor> {
        let loaded = crate::commands::image_from_bundle(bundle, path, device)?;
        let spec = &loaded.batcher.spec;
        (meta.channels, meta.height, meta.width) = (spec.channels, spec.height, spec.width);
        Ok(ImagePredictor {
            meta,
            model: loaded.model,
            batcher: loaded.batcher,
            device: loaded.device,
        })
    }
}

impl Predictor for ImagePredictor {
    fn meta(&self) -> &ModelMeta {
        &self.meta
    }

    fn preprocess(&self, image: &RawImage) -> Vec<f32> {
        self.batcher.spec.apply(image)
    }

    fn predict(&self, inputs: &Inputs) -> Result<Vec<Vec<f64>>, String> {
        let Inputs::Tensor { values, n } = inputs else {
            return Err("an image model takes image tensors".into());
        };
        let p = medai_nn::image::predict_prepared(
            &self.model,
            values.clone(),
            *n,
            &self.batcher.spec,
            &self.device,
        )?;
        Ok(crate::evaluate::calibrate(&p, self.meta.temperature))
    }

    fn explain(&self, image: &RawImage, target: usize, method: &str) -> Result<Vec<u8>, String> {
        let method = medai_nn::explain::Method::parse(method)
            .ok_or_else(|| format!("unknown explanation method {method:?}"))?;
        let maps = medai_nn::explain::explain_images(
            &self.model,
            std::slice::from_ref(image),
            &self.batcher,
            &self.device,
            &[target],
            method,
        )
        .map_err(|e| e.to_string())?;
        let heat = maps.first().ok_or("no heat map")?;
        crate::explain::overlay_png(image, heat).map_err(|e| e.to_string())
    }
}

/// A text-classification bundle behind the [`Predictor`] trait: documents in, calibrated
/// class probabilities (or per-label probabilities) out, explained by attention or
/// gradient × input.
pub struct TextPredictor {
    meta: ModelMeta,
    loaded: crate::text::LoadedText,
}

impl TextPredictor {
    /// The text model of `bundle` (read from `path`) with its service metadata.
    pub fn new(
        bundle: medai_bundle::Bundle,
        path: &Path,
        mut meta: ModelMeta,
        device: &str,
    ) -> Result<TextPredictor> {
        let loaded = crate::text::from_bundle(bundle, path, device)?;
        meta.input = InputKind::Text;
        if loaded.multi() {
            meta.output = OutputKind::Labels;
        }
        Ok(TextPredictor { meta, loaded })
    }

    fn encode(&self, text: &str) -> medai_text::Encoded {
        self.loaded.tokenizer.encode(text, self.loaded.prep.max_len)
    }
}

impl Predictor for TextPredictor {
    fn meta(&self) -> &ModelMeta {
        &self.meta
    }

    fn predict(&self, inputs: &Inputs) -> Result<Vec<Vec<f64>>, String> {
        let Inputs::Strings(docs) = inputs else {
            return Err("a text model takes documents".into());
        };
        let enc: Vec<medai_text::Encoded> = docs.iter().map(|d| self.encode(d)).collect();
        let refs: Vec<&medai_text::Encoded> = enc.iter().collect();
        Ok(self.loaded.probabilities(&refs).0)
    }

    fn explain_text(&self, text: &str, target: usize) -> Result<TextExplanation, String> {
        let e = self.encode(text);
        let (method, w) = self
            .loaded
            .explain(&[&e], &[target])
            .map_err(|e| e.to_string())?;
        let w = w.into_iter().next().ok_or("no explanation")?;
        let tokens = e
            .spans
            .iter()
            .zip(&e.tokens)
            .filter_map(|(s, t)| s.map(|s| (s, t)))
            .zip(crate::text::weighted_spans(&e, &w))
            .map(|(((start, end), token), (_, weight))| TokenWeight {
                token: token.clone(),
                start,
                end,
                weight,
            })
            .collect();
        Ok(TextExplanation {
            method: method.into(),
            tokens,
        })
    }
}

/// A molecule-property bundle behind the [`Predictor`] trait: SMILES in; the ensemble's mean
/// and spread per target (regression) or per-task probabilities (classification) out.
pub struct MolPredictor {
    meta: ModelMeta,
    loaded: crate::molecules::LoadedMol,
}

impl MolPredictor {
    /// The molecule model of `bundle` (read from `path`) with its service metadata. Bundles
    /// that need extra feature columns besides the SMILES cannot be served.
    pub fn new(
        bundle: medai_bundle::Bundle,
        path: &Path,
        mut meta: ModelMeta,
        device: &str,
    ) -> Result<MolPredictor> {
        let loaded = crate::molecules::from_bundle(bundle, path, device)?;
        if !loaded.prep.feature_columns.is_empty() {
            bail!(
                "{}: the model also needs the feature columns {}; the service takes SMILES only",
                path.display(),
                loaded.prep.feature_columns.join(", ")
            );
        }
        meta.input = InputKind::Smiles;
        meta.output = match loaded.prep.task {
            medai_nn::molecule::MolTask::Regression => OutputKind::Values,
            medai_nn::molecule::MolTask::Classification => OutputKind::Labels,
        };
        meta.classes = loaded.prep.target_columns.clone();
        meta.threshold = 0.5;
        Ok(MolPredictor { meta, loaded })
    }
}

/// Parse one SMILES for the service: the same rules as the molecule readers.
fn parse_smiles(smiles: &str) -> Result<medai_chem::Mol, String> {
    let s = smiles.trim();
    medai_chem::Mol::from_smiles(s).map_err(|e| format!("invalid SMILES {s:?}: {e}"))
}

impl Predictor for MolPredictor {
    fn meta(&self) -> &ModelMeta {
        &self.meta
    }

    fn check(&self, smiles: &str) -> Result<(), String> {
        parse_smiles(smiles).map(|_| ())
    }

    fn predict(&self, inputs: &Inputs) -> Result<Vec<Vec<f64>>, String> {
        let Inputs::Strings(smiles) = inputs else {
            return Err("a molecule model takes SMILES".into());
        };
        let graphs: Vec<medai_chem::MolGraph> = smiles
            .iter()
            .map(|s| parse_smiles(s).map(|m| medai_chem::MolGraph::new(&m)))
            .collect::<Result<_, _>>()?;
        let rows: Vec<usize> = (0..graphs.len()).collect();
        let features = vec![Vec::new(); graphs.len()];
        let (mean, sd) = self.loaded.predict_graphs(&graphs, &features, &rows);
        Ok(match self.meta.output {
            OutputKind::Values => mean
                .into_iter()
                .zip(sd)
                .map(|(mut m, s)| {
                    m.extend(s);
                    m
                })
                .collect(),
            _ => mean,
        })
    }
}

/// Options of `medai serve`.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// A bundle to serve, as `BUNDLE` (served under its manifest name) or `NAME=BUNDLE`.
    /// Repeat for several models.
    #[arg(long = "model", required = true, value_name = "[NAME=]BUNDLE")]
    pub models: Vec<String>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// The token file (`medai token create` makes it).
    #[arg(long)]
    pub auth: PathBuf,
    /// The audit log, created if missing: a SQLite file, or a PostgreSQL URL
    /// (`postgresql://USER:PASSWORD@HOST:5432/DB`) that several replicas share. Also read from
    /// the `MEDAI_AUDIT` environment variable, which keeps a password off the command line.
    #[arg(
        long,
        env = "MEDAI_AUDIT",
        default_value = "medai-audit.sqlite",
        hide_env_values = true
    )]
    pub audit: AuditTarget,
    /// Most images in one forward pass.
    #[arg(long, default_value_t = 32)]
    pub max_batch: usize,
    /// Longest a request waits for others to share its forward pass (milliseconds). 0 (the
    /// default): greedy — batches are what queued during the previous pass.
    #[arg(long, default_value_t = 0.0)]
    pub batch_delay_ms: f64,
    /// Largest request body (MiB).
    #[arg(long, default_value_t = 32)]
    pub max_body_mb: usize,
    /// Largest accepted image (height × width pixels).
    #[arg(long, default_value_t = 50_000_000)]
    pub max_pixels: usize,
    /// Requests handled at once; more are answered 503 with Retry-After.
    #[arg(long, default_value_t = 256)]
    pub max_concurrency: usize,
    /// Per-request time limit (seconds).
    #[arg(long, default_value_t = 30.0)]
    pub timeout_s: f64,
    /// TLS certificate chain (PEM); with --tls-key, serve HTTPS.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Compute device.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// `medai serve`.
pub fn serve(a: ServeArgs) -> Result<()> {
    let auth = AuthFile::read(&a.auth)?;
    if auth.tokens.is_empty() {
        bail!(
            "{}: no tokens; create one with `medai token create --auth {} --role predict --name NAME`",
            a.auth.display(),
            a.auth.display()
        );
    }
    let mut models: Vec<Arc<dyn Predictor>> = Vec::new();
    for spec in &a.models {
        let (name, path) = match spec.split_once('=') {
            Some((n, p)) if !n.is_empty() && !Path::new(spec).exists() => (Some(n), p),
            _ => (None, spec.as_str()),
        };
        let p = load_predictor(Path::new(path), name, &a.device)
            .with_context(|| format!("--model {spec}"))?;
        models.push(p);
    }
    if !(a.batch_delay_ms.is_finite() && a.batch_delay_ms >= 0.0) {
        bail!("--batch-delay-ms {} (expected ≥ 0)", a.batch_delay_ms);
    }
    if !(a.timeout_s.is_finite() && a.timeout_s > 0.0) {
        bail!("--timeout-s {} (expected > 0)", a.timeout_s);
    }
    let cfg = ServeConfig {
        max_body_bytes: a.max_body_mb.max(1) << 20,
        max_pixels: a.max_pixels.max(1),
        max_concurrency: a.max_concurrency.max(1),
        timeout: Duration::from_secs_f64(a.timeout_s),
        batch: BatchConfig {
            max_batch: a.max_batch.max(1),
            max_delay: Duration::from_secs_f64(a.batch_delay_ms / 1e3),
            queue: a.max_concurrency.max(1) * 4,
        },
    };
    let names: Vec<String> = models.iter().map(|m| m.meta().name.clone()).collect();
    let service = Arc::new(Service::new(models, auth, Some(a.audit.clone()), cfg)?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let listener =
            std::net::TcpListener::bind(&a.addr).map_err(|e| anyhow!("--addr {}: {e}", a.addr))?;
        let local = listener.local_addr()?;
        let scheme = if a.tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        eprintln!(
            "medai serve: listening on {scheme}://{local} (models: {}; audit: {})",
            names.join(", "),
            a.audit
        );
        match (&a.tls_cert, &a.tls_key) {
            (Some(cert), Some(key)) => {
                service
                    .clone()
                    .run_tls(listener, cert, key, shutdown_signal())
                    .await?
            }
            _ => {
                listener.set_nonblocking(true)?;
                let listener = tokio::net::TcpListener::from_std(listener)?;
                service.clone().run(listener, shutdown_signal()).await?
            }
        }
        eprintln!("medai serve: shut down (in-flight requests finished)");
        Ok::<(), anyhow::Error>(())
    })?;
    drop(rt);
    service.close_audit();
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// `medai token …`.
#[derive(Subcommand, Debug, Clone)]
pub enum TokenCommand {
    /// Add a token to the auth file (created if missing) and print it once.
    Create {
        /// The auth file.
        #[arg(long)]
        auth: PathBuf,
        /// predict (model endpoints) or admin (also /metrics).
        #[arg(long, value_parser = ["predict", "admin"])]
        role: String,
        /// Who or what the token is for.
        #[arg(long)]
        name: String,
    },
    /// List the tokens (ids, names, roles; never the tokens).
    List {
        /// The auth file.
        #[arg(long)]
        auth: PathBuf,
    },
}

/// Run a `token` subcommand.
pub fn token(c: TokenCommand) -> Result<()> {
    match c {
        TokenCommand::Create { auth, role, name } => {
            let role = Role::parse(&role).ok_or_else(|| anyhow!("--role {role}"))?;
            let mut f = AuthFile::read_or_new(&auth)?;
            let t = f.create_token(&name, role);
            f.write(&auth)?;
            let id = &f.tokens.last().expect("just added").id;
            eprintln!(
                "Added token {id} ({name}, {}) to {}. It is shown once; store it now.",
                if role == Role::Admin {
                    "admin"
                } else {
                    "predict"
                },
                auth.display()
            );
            println!("{t}");
        }
        TokenCommand::List { auth } => {
            let f = AuthFile::read(&auth)?;
            println!("id\trole\tname\tcreated");
            for t in &f.tokens {
                println!(
                    "{}\t{}\t{}\t{}",
                    t.id,
                    serde_json::to_value(t.role)?.as_str().unwrap_or("?"),
                    t.name,
                    t.created
                );
            }
        }
    }
    Ok(())
}

/// `medai audit …`.
#[derive(Subcommand, Debug, Clone)]
pub enum AuditCommand {
    /// Create the audit table (and its append-only triggers) if missing, then exit: run once as
    /// the database role that should own it, then grant the service's role only `SELECT` and
    /// `INSERT` on `audit`.
    Init {
        /// The audit log: a SQLite file or a PostgreSQL URL (also from `MEDAI_AUDIT`).
        #[arg(long, env = "MEDAI_AUDIT", hide_env_values = true)]
        audit: AuditTarget,
    },
    /// Check the audit log's hash chain; exits non-zero at the first broken row.
    Verify {
        /// The audit log: a SQLite file or a PostgreSQL URL (also from `MEDAI_AUDIT`).
        #[arg(
            long,
            env = "MEDAI_AUDIT",
            default_value = "medai-audit.sqlite",
            hide_env_values = true
        )]
        audit: AuditTarget,
    },
}

/// Run an `audit` subcommand.
pub fn audit(c: AuditCommand) -> Result<()> {
    match c {
        AuditCommand::Init { audit } => {
            medai_serve::audit::AuditLog::open(audit.clone())?.close();
            println!("{audit}: audit table ready");
        }
        AuditCommand::Verify { audit } => {
            let v = medai_serve::audit::verify(audit.clone())?;
            println!(
                "{}: audit chain intact: {} rows, head {}",
                audit, v.rows, v.head
            );
        }
    }
    Ok(())
}
