//! The `train`, `eval`, `predict` and `quickstart` commands.

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, ValueEnum};
use medai_bundle::{Bundle, DatasetInfo, Manifest};
use medai_data::{
    AugmentSpec, DatasetSplits, LabelMode, LabeledImages, Normalization, OnBadFile, OpenOptions,
    PreprocessSpec, ResizeFilter,
};
use medai_nn::Device;
use medai_nn::data::ImageBatcher;
use medai_nn::training::{ClassWeights, OptimizerKind, Schedule, TrainConfig, TrainIo};
use medai_nn::vision::{Arch, ArchConfig, ImageModel};
use medai_report::evaluation::Evaluation;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Label interpretation on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ModeArg {
    /// Two classes, one sigmoid output, binary cross-entropy.
    Binary,
    /// K classes, softmax, cross-entropy.
    Categorical,
    /// Ordered classes (trained as categorical; evaluated with quadratic kappa too).
    Ordinal,
}

/// Normalisation on the command line.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
pub enum NormArg {
    /// x/255 (Keras `ImageDataGenerator(rescale=1/255)`).
    Rescale,
    /// /255 then ImageNet mean/std (torchvision weights).
    ImagenetTorch,
    /// RGB→BGR minus the ImageNet BGR mean (Keras VGG16 ImageNet weights).
    ImagenetCaffe,
    /// Per-dataset channel mean/std computed on the training split.
    Standardize,
}

/// Resize filter on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ResizeArg {
    /// Bilinear (antialiased when shrinking).
    Bilinear,
    /// Area average.
    Area,
    /// Nearest neighbour (Keras' default).
    Nearest,
}

/// Output format.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
pub enum Format {
    /// Human-readable table.
    Table,
    /// JSON.
    Json,
    /// CSV (predict only).
    Csv,
}

/// Options of `medai train`.
#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// Image folder (one sub-folder per class, optional train/val/test), MedMNIST .npz, or CSV manifest (path,label[,split]).
    #[arg(long)]
    pub data: PathBuf,
    /// Where to write the model bundle (a directory).
    #[arg(long)]
    pub out: PathBuf,
    /// Architecture: small-cnn, resnet18, resnet50, vgg16, densenet121.
    #[arg(long, default_value = "small-cnn")]
    pub arch: String,
    /// Maximum epochs.
    #[arg(long, default_value_t = 15)]
    pub epochs: usize,
    /// Batch size.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Optimiser.
    #[arg(long, value_enum, default_value = "adam")]
    pub optimizer: OptArg,
    /// Weight decay.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f32,
    /// Learning-rate schedule: cosine, constant, or step:EVERY:GAMMA.
    #[arg(long, default_value = "cosine")]
    pub schedule: String,
    /// Class weights for imbalance: balanced or none.
    #[arg(long, default_value = "balanced")]
    pub class_weights: String,
    /// Early stopping patience in epochs on validation AUC (0 disables).
    #[arg(long, default_value_t = 8)]
    pub patience: usize,
    /// Seed for initialisation, splits, shuffling and augmentation.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Fraction of train held out for validation when the data has no val split.
    #[arg(long, default_value_t = 0.1)]
    pub val_split: f64,
    /// Label mode (default: binary for 2 classes, else categorical).
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Input size: N (square) or HxW. Default: the data's own size.
    #[arg(long)]
    pub img_size: Option<String>,
    /// Input channels (1 or 3). Default: 3 with --pretrained, else the data's own.
    #[arg(long)]
    pub channels: Option<usize>,
    /// Resize filter.
    #[arg(long, value_enum, default_value = "bilinear")]
    pub resize: ResizeArg,
    /// Normalisation. Default: imagenet-torch with --pretrained, else rescale.
    #[arg(long, value_enum)]
    pub normalize: Option<NormArg>,
    /// Augmentation: default (small rotation/shift/zoom, brightness/contrast), flips (default + horizontal flip), or none.
    #[arg(long, default_value = "default")]
    pub augment: String,
    /// Small-image stem for ResNet/DenseNet (3×3 stride-1 first conv, no max-pool).
    #[arg(long)]
    pub small_stem: bool,
    /// Base width of ResNet stages (torchvision: 64; smaller for tiny models).
    #[arg(long, default_value_t = 64)]
    pub base_width: usize,
    /// Widths of the small CNN stages, e.g. 32,64,128.
    #[arg(long, default_value = "32,64,128", value_delimiter = ',')]
    pub widths: Vec<usize>,
    /// Convolutions per stage of the small CNN.
    #[arg(long, default_value_t = 1)]
    pub convs_per_stage: usize,
    /// Dropout before the head of the small CNN.
    #[arg(long, default_value_t = 0.2)]
    pub dropout: f64,
    /// torchvision-format pretrained weights (.pth state dict or .safetensors).
    #[arg(long)]
    pub pretrained: Option<PathBuf>,
    /// Train only the new head for this many epochs first, then unfreeze everything.
    #[arg(long, default_value_t = 0)]
    pub freeze_backbone: usize,
    /// Keep an exponential moving average of the weights with this momentum (e.g. 0.99, as
    /// Keras' `use_ema=True`); the averaged weights are validated and exported.
    #[arg(long)]
    pub ema: Option<f64>,
    /// Label smoothing ε of the training loss (Keras' `label_smoothing`, e.g. 0.1): train
    /// against `one_hot·(1 − ε) + ε/k`; metrics use the true labels.
    #[arg(long, default_value_t = 0.0)]
    pub label_smoothing: f64,
    /// Compute device: cpu (default), wgpu, vulkan, cuda, libtorch, libtorch-cuda (all but cpu need
    /// their cargo feature). A comma-separated list (`cuda:0,cuda:1`, `NAME:INDEX` for numbered
    /// devices) trains data-parallel: each batch of --batch-size samples is split between the
    /// devices, the gradients are summed on the first, which keeps the model.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// JSON-lines training log (default: BUNDLE.train.jsonl next to the bundle).
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Continue an interrupted run from its checkpoint (BUNDLE.ckpt).
    #[arg(long)]
    pub resume: bool,
    /// What to do with unreadable images: error (default) or skip (with a warning listing them).
    #[arg(long, default_value = "error")]
    pub on_bad_file: String,
    /// Model name in the bundle (default: the bundle's file stem).
    #[arg(long)]
    pub name: Option<String>,
    /// Hide the progress bar and per-epoch lines.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Optimiser on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OptArg {
    /// Adam with Keras' defaults (β 0.9/0.999, ε 1e-7).
    Adam,
    /// AdamW.
    Adamw,
    /// SGD with momentum 0.9.
    Sgd,
}

fn parse_size(s: &str) -> Result<(usize, usize)> {
    let bad = || anyhow!("--img-size {s:?}: expected N or HxW, e.g. 64 or 224x224");
    let (h, w) = match s.split_once(['x', 'X']) {
        Some((h, w)) => (
            h.trim().parse().map_err(|_| bad())?,
            w.trim().parse().map_err(|_| bad())?,
        ),
        None => {
            let n = s.trim().parse().map_err(|_| bad())?;
            (n, n)
        }
    };
    if h == 0 || w == 0 || h > 4096 || w > 4096 {
        return Err(bad());
    }
    Ok((h, w))
}

fn parse_schedule(s: &str) -> Result<Schedule> {
    match s {
        "cosine" => Ok(Schedule::Cosine),
        "constant" => Ok(Schedule::Constant),
        _ => {
            let parts: Vec<&str> = s.split(':').collect();
            match parts.as_slice() {
                ["step", every, gamma] => Ok(Schedule::Step {
                    every: every
                        .parse()
                        .map_err(|_| anyhow!("--schedule {s:?}: EVERY must be an integer"))?,
                    gamma: gamma
                        .parse()
                        .map_err(|_| anyhow!("--schedule {s:?}: GAMMA must be a number"))?,
                }),
                _ => bail!("--schedule {s:?}: expected cosine, constant or step:EVERY:GAMMA"),
            }
        }
    }
}

fn parse_policy(s: &str) -> Result<OnBadFile> {
    match s {
        "error" => Ok(OnBadFile::Error),
        "skip" => Ok(OnBadFile::Skip),
        _ => bail!("--on-bad-file {s:?}: expected error or skip"),
    }
}

fn augment_spec(s: &str) -> Result<AugmentSpec> {
    match s {
        "default" => Ok(AugmentSpec::medical_default()),
        "flips" => Ok(AugmentSpec {
            hflip: true,
            ..AugmentSpec::medical_default()
        }),
        "none" | "off" => Ok(AugmentSpec::default()),
        _ => bail!("--augment {s:?}: expected default, flips or none"),
    }
}

fn open_data(
    path: &Path,
    mode: Option<LabelMode>,
    val_split: f64,
    seed: u64,
    policy: OnBadFile,
) -> Result<DatasetSplits> {
    let opts = OpenOptions {
        mode,
        val_split,
        seed,
        on_bad_file: policy,
    };
    let (mut splits, skipped) = medai_data::open_with_report(path, &opts)?;
    let mut skipped = skipped;
    skipped.extend(medai_data::validate(&mut splits, policy)?);
    if !skipped.is_empty() {
        eprintln!("warning: skipped {} unreadable file(s):", skipped.len());
        for (p, why) in &skipped {
            eprintln!("  {}: {why}", p.display());
        }
    }
    Ok(splits)
}

/// What `train` produced.
pub struct Trained {
    /// The bundle path.
    pub bundle: PathBuf,
    /// The written manifest.
    pub manifest: Manifest,
    /// Evaluations of val and (when present) test, calibrated.
    pub evaluations: Vec<Evaluation>,
    /// The trained model (inference mode).
    pub model: ImageModel,
    /// Its preprocessing.
    pub batcher: ImageBatcher,
    /// The device it ran on.
    pub device: Device,
    /// The data it was trained and evaluated on.
    pub splits: DatasetSplits,
}

/// `medai train`.
pub fn train(a: TrainArgs) -> Result<Trained> {
    let t0 = Instant::now();
    let arch = Arch::parse(&a.arch)
        .ok_or_else(|| anyhow!("--arch {:?}: expected one of {}", a.arch, Arch::NAMES))?;
    let policy = parse_policy(&a.on_bad_file)?;
    let size = a.img_size.as_deref().map(parse_size).transpose()?;
    let schedule = parse_schedule(&a.schedule)?;
    let augment = augment_spec(&a.augment)?;
    let (device, devices) = train_devices(&a.device)?;
    let mode = a.mode.map(|m| match m {
        ModeArg::Binary => LabelMode::Binary,
        ModeArg::Categorical => LabelMode::Categorical,
        ModeArg::Ordinal => LabelMode::Ordinal,
    });
    let splits = open_data(&a.data, mode, a.val_split, a.seed, policy)?;
    eprintln!("{}", splits.summary());
    if splits.val.is_empty() {
        bail!(
            "{}: the validation split is empty; use --val-split > 0 or add a val/ folder",
            a.data.display()
        );
    }
    let k = splits.classes.len();
    let label_mode = mode.unwrap_or(if k == 2 {
        LabelMode::Binary
    } else {
        LabelMode::Categorical
    });

    // Input spec: the data's own size and channels unless told otherwise.
    let first = splits
        .train
        .load(0)
        .with_context(|| splits.train.describe(0))?;
    let (height, width) = size.unwrap_or((first.height, first.width));
    let channels = a.channels.unwrap_or(if a.pretrained.is_some() {
        3
    } else {
        first.channels
    });
    if channels != 1 && channels != 3 {
        bail!("--channels {channels}: expected 1 or 3");
    }
    let norm_arg = a.normalize.unwrap_or(if a.pretrained.is_some() {
        NormArg::ImagenetTorch
    } else {
        NormArg::Rescale
    });
    if a.pretrained.is_some() && norm_arg != NormArg::ImagenetTorch {
        eprintln!(
            "warning: torchvision pretrained weights expect --normalize imagenet-torch; training with {norm_arg:?} is a known mismatch"
        );
    }
    let mut spec = PreprocessSpec {
        height,
        width,
        channels,
        resize: match a.resize {
            ResizeArg::Bilinear => ResizeFilter::Bilinear,
            ResizeArg::Area => ResizeFilter::Area,
            ResizeArg::Nearest => ResizeFilter::Nearest,
        },
        normalization: match norm_arg {
            NormArg::Rescale => Normalization::Rescale,
            NormArg::ImagenetTorch => Normalization::ImagenetTorch,
            NormArg::ImagenetCaffe => Normalization::ImagenetCaffe,
            NormArg::Standardize => Normalization::Rescale,
        },
    };
    if norm_arg == NormArg::Standardize {
        let (mean, std) = medai_data::channel_stats(&splits.train, &spec)?;
        spec.normalization = Normalization::Standardize { mean, std };
    }
    spec.check()?;

    let outputs = if label_mode == LabelMode::Binary {
        1
    } else {
        k
    };
    let mut arch_cfg = ArchConfig::new(arch, channels, outputs);
    arch_cfg.small_stem = a.small_stem;
    arch_cfg.base_width = a.base_width.max(1);
    arch_cfg.widths = a.widths.clone();
    arch_cfg.convs_per_stage = a.convs_per_stage;
    arch_cfg.dropout = a.dropout;

    let cfg = TrainConfig {
        epochs: a.epochs,
        batch_size: a.batch_size.max(1),
        lr: a.lr,
        optimizer: match a.optimizer {
            OptArg::Adam => OptimizerKind::Adam,
            OptArg::Adamw => OptimizerKind::Adamw,
            OptArg::Sgd => OptimizerKind::Sgd,
        },
        weight_decay: a.weight_decay,
        schedule,
        class_weights: match a.class_weights.as_str() {
            "balanced" => ClassWeights::Balanced,
            "none" => ClassWeights::None,
            s => bail!("--class-weights {s:?}: expected balanced or none"),
        },
        patience: a.patience,
        seed: a.seed,
        freeze_backbone_epochs: a.freeze_backbone,
        ema: crate::commands::ema_momentum(a.ema)?,
        label_smoothing: label_smoothing(a.label_smoothing, false)?,
        ..TrainConfig::default()
    };

    let cfg = TrainConfig { devices, ..cfg };
    device.seed(a.seed);
    let ad = device.clone().autodiff();
    let mut model = arch_cfg.init(&ad);
    if let Some(p) = &a.pretrained {
        let (m, rep) = medai_nn::weights::import_pretrained(model, p).map_err(|e| anyhow!(e))?;
        eprintln!(
            "Loaded {} tensors from {}; {} replaced for the new head, {} not in the checkpoint, {} unused",
            rep.applied,
            p.display(),
            rep.reshaped.len(),
            rep.missing.len(),
            rep.unused.len()
        );
        model = m;
    }
    let n_params = burn_params(&model);

    let source = medai_nn::image::ImageSource {
        train: &splits.train,
        val: &splits.val,
        train_batcher: ImageBatcher {
            spec: spec.clone(),
            augment: Some(augment.clone()),
            seed: a.seed,
        },
        eval_batcher: ImageBatcher::eval(spec.clone()),
    };
    let bundle_stem = a
        .out
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "model".into());
    let side = |ext: &str| a.out.with_file_name(format!("{bundle_stem}.{ext}"));
    let io = TrainIo {
        log: Some(a.log.clone().unwrap_or_else(|| side("train.jsonl"))),
        checkpoint_dir: Some(side("ckpt")),
        resume: a.resume,
        progress: !a.quiet,
    };
    if !a.resume {
        if let Some(l) = &io.log {
            let _ = std::fs::remove_file(l);
        }
        medai_nn::training::remove_checkpoint(&side("ckpt"));
    }
    if let Some(parent) = a.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| parent.display().to_string())?;
    }
    eprintln!(
        "Training {} ({} parameters) on {}×{}×{} inputs, {} epochs, batch {}, device {}",
        a.arch, n_params, channels, height, width, cfg.epochs, cfg.batch_size, a.device
    );
    let outcome = medai_nn::training::fit(model, &source, k, &cfg, &ad, &io)?;
    let model = outcome.model;
    let train_secs = t0.elapsed().as_secs_f64();

    // Calibrate on validation (temperature scaling), then evaluate val and (if present) test
    // with the served, calibrated probabilities; test thresholds are chosen on val.
    let batcher = ImageBatcher::eval(spec.clone());
    let val_raw = medai_nn::image::predict_set(&model, &splits.val, &batcher, 256, &device)?;
    let fit = medai_metrics::fit_temperature(&splits.val.labels(), &val_raw)
        .map_err(|e| anyhow!("temperature scaling on the validation split: {e}"))?;
    let temperature = fit.temperature;
    let val_scores = crate::evaluate::SplitScores {
        labels: splits.val.labels(),
        served: crate::evaluate::calibrate(&val_raw, temperature),
        raw: val_raw,
        temperature,
    };
    let opts = crate::evaluate::EvalFlags::default().options(0.5, a.seed)?;
    let mut evaluations = Vec::new();
    let val_eval = crate::evaluate::run(
        &splits.classes,
        mode_name(label_mode),
        "val",
        &val_scores,
        None,
        &splits.val,
        &opts,
    )?;
    let mut metrics = serde_json::Map::new();
    metrics.insert("val".into(), val_eval.summary());
    evaluations.push(val_eval);
    if let Some(test) = &splits.test {
        let scores = crate::evaluate::score(&model, test, &batcher, &device, temperature)?;
        let ev = crate::evaluate::run(
            &splits.classes,
            mode_name(label_mode),
            "test",
            &scores,
            Some(&val_scores),
            test,
            &opts,
        )?;
        metrics.insert("test".into(), ev.summary());
        evaluations.push(ev);
    }

    let name = a
        .name
        .clone()
        .unwrap_or_else(|| bundle_stem.trim_end_matches(".medai").to_string());
    let mut manifest = Manifest::new(
        &name,
        "image-classification",
        mode_name(label_mode),
        splits.classes.clone(),
    );
    manifest.architecture = serde_json::to_value(&arch_cfg)?;
    manifest.preprocessing = serde_json::to_value(&spec)?;
    manifest.training = json!({
        "config": cfg,
        "augment": augment,
        "pretrained": a.pretrained.as_ref().map(|p| p.display().to_string()),
        "epochs_run": outcome.history.len(),
        "best_epoch": outcome.best_epoch,
        "best_val_auc": outcome.best_val_score,
        "seconds": train_secs,
        "parameters": n_params,
        "device": a.device,
        "threshold": 0.5,
        "history": outcome.history,
    });
    manifest.dataset = DatasetInfo {
        source: splits.source.to_string(),
        path: a.data.display().to_string(),
        fingerprint: splits.fingerprint(),
        counts: splits
            .named_splits()
            .iter()
            .map(|(n, s)| (n.to_string(), json!(s.len())))
            .collect(),
    };
    manifest.metrics = Value::Object(metrics);
    manifest.calibration = json!({
        "method": "temperature",
        "temperature": temperature,
        "fitted_on": "val",
        "nll_before": fit.nll_before,
        "nll_after": fit.nll_after,
    });
    let weights =
        medai_nn::weights::save_safetensors(&model).map_err(|e| anyhow!("saving weights: {e}"))?;
    let card_evals: Vec<&Evaluation> = evaluations.iter().rev().collect();
    let bundle = Bundle {
        manifest: manifest.clone(),
        weights,
        model_card: medai_report::card::model_card(&manifest, &card_evals),
        files: Default::default(),
    };
    bundle.write(&a.out)?;
    // The run is complete: its resume checkpoint is no longer needed.
    medai_nn::training::remove_checkpoint(&side("ckpt"));
    eprintln!(
        "Wrote bundle {} ({:.1} s)",
        a.out.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(Trained {
        bundle: a.out.clone(),
        manifest,
        evaluations,
        model,
        batcher,
        device,
        splits,
    })
}

fn burn_params(m: &ImageModel) -> usize {
    m.param_count()
}

fn mode_name(m: LabelMode) -> &'static str {
    match m {
        LabelMode::Binary => "binary",
        LabelMode::Categorical => "categorical",
        LabelMode::Ordinal => "ordinal",
    }
}

fn parse_mode(s: &str) -> LabelMode {
    match s {
        "binary" => LabelMode::Binary,
        "ordinal" => LabelMode::Ordinal,
        _ => LabelMode::Categorical,
    }
}

/// A bundle loaded for inference.
pub struct Loaded {
    /// The bundle's manifest.
    pub manifest: Manifest,
    /// The model in inference mode.
    pub model: ImageModel,
    /// Its preprocessing.
    pub batcher: ImageBatcher,
    /// The device it runs on.
    pub device: Device,
}

/// The task a bundle was trained for (from its manifest).
pub fn bundle_task(path: &Path) -> Result<String> {
    Ok(Bundle::read(path)?.manifest.task)
}

/// Read and verify a bundle and rebuild its model.
pub fn load_bundle(path: &Path, device_name: &str) -> Result<Loaded> {
    image_from_bundle(Bundle::read(path)?, path, device_name)
}

/// Rebuild an image model from a bundle already read from `path` (named in errors).
pub fn image_from_bundle(bundle: Bundle, path: &Path, device_name: &str) -> Result<Loaded> {
    let m = bundle.manifest;
    if m.task != "image-classification" {
        bail!(
            "{}: task {:?} is not supported by this command",
            path.display(),
            m.task
        );
    }
    let arch: ArchConfig = serde_json::from_value(m.architecture.clone())
        .map_err(|e| anyhow!("{}: manifest field `architecture`: {e}", path.display()))?;
    let spec: PreprocessSpec = serde_json::from_value(m.preprocessing.clone())
        .map_err(|e| anyhow!("{}: manifest field `preprocessing`: {e}", path.display()))?;
    let device = medai_nn::backend::device(device_name).map_err(|e| anyhow!(e))?;
    let model = medai_nn::weights::load_safetensors(arch.init(&device), &bundle.weights)
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let model = model.inference();
    Ok(Loaded {
        manifest: m,
        model,
        batcher: ImageBatcher::eval(spec),
        device,
    })
}

/// Options of `medai eval`.
#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    /// The model bundle.
    #[arg(long)]
    pub model: PathBuf,
    /// Dataset (same kinds as `train --data`).
    #[arg(long)]
    pub data: PathBuf,
    /// Split to evaluate: test (default), val or train.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Decision threshold on the positive-class probability (binary).
    #[arg(long)]
    pub threshold: Option<f64>,
    /// Output format: table or json.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Write `DIR/report.html` (self-contained) and `DIR/metrics.json`.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Heat maps of the hardest errors in the report: gradcam, occlusion or none.
    #[arg(long, default_value = "gradcam", value_parser = ["gradcam", "occlusion", "none"])]
    pub explain_method: String,
    /// Evaluation options.
    #[command(flatten)]
    pub eval: crate::evaluate::EvalFlags,
    /// Seed of the val split when the data has none (use the training seed).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Validation fraction when the data has no val split (as in training).
    #[arg(long, default_value_t = 0.1)]
    pub val_split: f64,
    /// Compute device.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// `medai eval`.
pub fn eval(a: EvalArgs) -> Result<()> {
    match bundle_task(&a.model)?.as_str() {
        crate::molecules::TASK => return crate::molecules::eval(&a),
        crate::text::TASK => return crate::text::eval(&a),
        _ => {}
    }
    let loaded = load_bundle(&a.model, &a.device)?;
    let m = &loaded.manifest;
    let mode = parse_mode(&m.label_mode);
    let splits = open_data(&a.data, Some(mode), a.val_split, a.seed, OnBadFile::Error)?;
    if splits.classes != m.classes {
        bail!(
            "{}: classes {:?} differ from the model's {:?} ({})",
            a.data.display(),
            splits.classes,
            m.classes,
            a.model.display()
        );
    }
    let set: &LabeledImages = splits.split(&a.split)?;
    let threshold = a
        .threshold
        .or_else(|| m.training.get("threshold").and_then(|t| t.as_f64()))
        .unwrap_or(0.5);
    if !(0.0..=1.0).contains(&threshold) {
        bail!("--threshold {threshold}: expected a probability in [0, 1]");
    }
    let opts = a.eval.options(threshold, a.seed)?;
    let t = crate::evaluate::temperature_of(m);
    let scores = crate::evaluate::score(&loaded.model, set, &loaded.batcher, &loaded.device, t)?;
    // Thresholds are chosen on validation unless validation is what is evaluated.
    let val = if a.split != "val" && !splits.val.is_empty() {
        Some(crate::evaluate::score(
            &loaded.model,
            &splits.val,
            &loaded.batcher,
            &loaded.device,
            t,
        )?)
    } else {
        None
    };
    let ev = crate::evaluate::run(
        &m.classes,
        &m.label_mode,
        &a.split,
        &scores,
        val.as_ref(),
        set,
        &opts,
    )?;
    let mut v = ev.summary();
    if let Some(o) = v.as_object_mut() {
        o.insert("model".into(), json!(a.model.display().to_string()));
    }
    if let Some(dir) = &a.report {
        let cases = match medai_nn::explain::Method::parse(&a.explain_method) {
            Some(method) => crate::evaluate::case_images(
                &ev,
                &loaded.model,
                set,
                &loaded.batcher,
                &loaded.device,
                method,
            )?,
            None => Vec::new(),
        };
        let facts = data_facts(&splits);
        crate::evaluate::write_report(
            dir,
            &ev,
            m,
            &a.model,
            &a.data,
            facts,
            cases,
            json!({"command": "eval"}),
        )?;
        eprintln!(
            "Wrote {} and {}",
            dir.join("report.html").display(),
            dir.join("metrics.json").display()
        );
    }
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&v)?),
        _ => print!("{}", crate::report::metrics_table(&a.split, &v, &m.classes)),
    }
    Ok(())
}

/// Dataset facts for a report.
fn data_facts(splits: &DatasetSplits) -> Vec<(String, String)> {
    let mut kv = vec![
        ("Format".to_string(), splits.source.to_string()),
        ("Fingerprint".to_string(), splits.fingerprint()),
    ];
    for (name, set) in splits.named_splits() {
        let counts = set.class_counts();
        let per: Vec<String> = splits
            .classes
            .iter()
            .zip(&counts)
            .map(|(c, n)| format!("{c} {n}"))
            .collect();
        kv.push((
            format!("{name} split"),
            format!("{} ({})", set.len(), per.join(", ")),
        ));
    }
    kv
}

/// Options of `medai predict`.
#[derive(Args, Debug, Clone)]
pub struct PredictArgs {
    /// The model bundle.
    #[arg(long)]
    pub model: PathBuf,
    /// Image files (PNG, JPEG, BMP, TIFF); for a text bundle, UTF-8 text files (one document
    /// each).
    pub files: Vec<PathBuf>,
    /// Molecule and text bundles: a CSV (TSV by extension) with a SMILES or text column.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Molecule bundles: the SMILES column of `--data` (default: the training file's).
    #[arg(long)]
    pub smiles_column: Option<String>,
    /// The text column of `--data` (text bundles; default: the training file's).
    #[arg(long)]
    pub text_column: Option<String>,
    /// Molecule and text bundles: where the predictions CSV goes.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Refer to a human instead of answering: `LOW,HIGH` (binary band on p(positive)) or `MIN`
    /// (top-class probability below MIN). Referred cases get the label `refer`.
    #[arg(long, value_name = "BAND")]
    pub abstain: Option<String>,
    /// Write a heat map of each prediction (the predicted class) as a PNG overlay.
    #[arg(long)]
    pub explain: bool,
    /// Explanation method: gradcam or occlusion.
    #[arg(long, default_value = "gradcam", value_parser = ["gradcam", "occlusion"])]
    pub explain_method: String,
    /// Where the overlays go (`<file stem>.<method>.png`).
    #[arg(long, default_value = "explanations")]
    pub explain_dir: PathBuf,
    /// Compute device.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// The label shown for a referred case.
pub const REFER: &str = "refer";

/// `medai predict`.
pub fn predict(a: PredictArgs) -> Result<()> {
    if bundle_task(&a.model)? == crate::molecules::TASK {
        let (Some(data), Some(out)) = (&a.data, &a.out) else {
            bail!(
                "a molecule model predicts a CSV: give --data FILE.csv and --out PREDICTIONS.csv"
            );
        };
        return crate::molecules::predict(
            &a.model,
            data,
            a.smiles_column.as_deref(),
            out,
            &a.device,
        );
    }
    if bundle_task(&a.model)? == crate::text::TASK {
        return crate::text::predict(&a);
    }
    if a.files.is_empty() {
        bail!("give the image files to predict");
    }
    let loaded = load_bundle(&a.model, &a.device)?;
    let classes = &loaded.manifest.classes;
    let threshold = loaded
        .manifest
        .training
        .get("threshold")
        .and_then(|t| t.as_f64())
        .unwrap_or(0.5);
    let abstain = a
        .abstain
        .as_deref()
        .map(medai_report::evaluation::Abstain::parse)
        .transpose()
        .map_err(|e| anyhow!(e))?;
    let temperature = crate::evaluate::temperature_of(&loaded.manifest);
    let mut images = Vec::new();
    for f in &a.files {
        images.push(medai_data::load_image(f)?);
    }
    let mut probs = Vec::new();
    for chunk in images.chunks(64) {
        probs.extend(medai_nn::image::predict_images(
            &loaded.model,
            chunk,
            &loaded.batcher,
            &loaded.device,
        ));
    }
    let probs = crate::evaluate::calibrate(&probs, temperature);
    let class_of = |p: &Vec<f64>| -> usize {
        if p.len() == 2 {
            (p[1] >= threshold) as usize
        } else {
            medai_nn::training::argmax(p)
        }
    };
    let label_of = |p: &Vec<f64>| -> String {
        if abstain.is_some_and(|r| r.refers(p)) {
            REFER.to_string()
        } else {
            classes[class_of(p)].clone()
        }
    };
    let mut overlays: Vec<Option<PathBuf>> = vec![None; a.files.len()];
    if a.explain {
        let method = medai_nn::explain::Method::parse(&a.explain_method)
            .ok_or_else(|| anyhow!("--explain-method {:?}", a.explain_method))?;
        let targets: Vec<usize> = probs.iter().map(class_of).collect();
        let maps = medai_nn::explain::explain_images(
            &loaded.model,
            &images,
            &loaded.batcher,
            &loaded.device,
            &targets,
            method,
        )?;
        std::fs::create_dir_all(&a.explain_dir)
            .with_context(|| a.explain_dir.display().to_string())?;
        let mut used = std::collections::HashSet::new();
        for (i, ((f, img), heat)) in a.files.iter().zip(&images).zip(&maps).enumerate() {
            let stem = f
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_else(|| format!("image{i}"));
            let mut name = format!("{stem}.{}.png", method.name());
            if !used.insert(name.clone()) {
                name = format!("{stem}-{i}.{}.png", method.name());
                used.insert(name.clone());
            }
            let out = a.explain_dir.join(name);
            crate::report::write_atomic(&out, &crate::explain::overlay_png(img, heat)?)?;
            overlays[i] = Some(out);
        }
        eprintln!(
            "Wrote {} {} overlay(s) to {}",
            maps.len(),
            method.name(),
            a.explain_dir.display()
        );
    }
    match a.format {
        Format::Json => {
            let rows: Vec<Value> = a
                .files
                .iter()
                .zip(&probs)
                .zip(&overlays)
                .map(|((f, p), o)| {
                    let probs: serde_json::Map<String, Value> = classes.iter().zip(p).map(|(c, v)| (c.clone(), json!(v))).collect();
                    let mut row = json!({"file": f.display().to_string(), "label": label_of(p), "probabilities": probs});
                    if let Some(o) = o {
                        row["explanation"] = json!(o.display().to_string());
                    }
                    row
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&rows)?);
        }
        Format::Csv => {
            println!(
                "file,{},label{}",
                classes
                    .iter()
                    .map(|c| format!("p_{c}"))
                    .collect::<Vec<_>>()
                    .join(","),
                if a.explain { ",explanation" } else { "" }
            );
            for ((f, p), o) in a.files.iter().zip(&probs).zip(&overlays) {
                let ps: Vec<String> = p.iter().map(|v| format!("{v:.6}")).collect();
                let extra = o
                    .as_ref()
                    .map(|o| format!(",{}", csv_field(&o.display().to_string())))
                    .unwrap_or_default();
                println!(
                    "{},{},{}{extra}",
                    csv_field(&f.display().to_string()),
                    ps.join(","),
                    label_of(p)
                );
            }
        }
        Format::Table => {
            let w = a
                .files
                .iter()
                .map(|f| f.display().to_string().len())
                .max()
                .unwrap_or(4)
                .max(4);
            print!("{:<w$}", "file");
            for c in classes {
                print!("  {:>12}", format!("p({c})"));
            }
            println!("  label");
            for (f, p) in a.files.iter().zip(&probs) {
                print!("{:<w$}", f.display().to_string());
                for v in p {
                    print!("  {v:>12.4}");
                }
                println!("  {}", label_of(p));
            }
        }
    }
    Ok(())
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Options of `medai quickstart`.
#[derive(Args, Debug, Clone)]
pub struct QuickstartArgs {
    /// PneumoniaMNIST .npz (default: $MEDAI_DATA, ../shared/data/medmnist, or the medai cache).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Output directory for the bundle, metrics and report.
    #[arg(long, default_value = "runs/quickstart")]
    pub out: PathBuf,
    /// Download PneumoniaMNIST (checksummed) if it is not found locally.
    #[arg(long)]
    pub fetch: bool,
    /// Seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Maximum epochs.
    #[arg(long, default_value_t = 15)]
    pub epochs: usize,
}

/// `medai quickstart`: train → evaluate → bundle on PneumoniaMNIST.
pub fn quickstart(a: QuickstartArgs) -> Result<()> {
    let t0 = Instant::now();
    let data = match a.data {
        Some(p) => p,
        None => match crate::fetch::find_local("pneumoniamnist") {
            Some(p) => p,
            None if a.fetch => crate::fetch::fetch("pneumoniamnist", None)?,
            None => bail!(
                "pneumoniamnist.npz not found in $MEDAI_DATA, ../shared/data/medmnist or {}; run `medai datasets fetch pneumoniamnist` or pass --fetch or --data",
                crate::fetch::cache_dir().display()
            ),
        },
    };
    eprintln!("Data: {}", data.display());
    std::fs::create_dir_all(&a.out).with_context(|| a.out.display().to_string())?;
    // Exactly `medai train`'s defaults: parse them rather than restate them.
    #[derive(clap::Parser)]
    struct Defaults {
        #[command(flatten)]
        train: TrainArgs,
    }
    let out = a.out.join("pneumonia.medai");
    let seed = a.seed.to_string();
    let epochs = a.epochs.to_string();
    let args = <Defaults as clap::Parser>::try_parse_from([
        "quickstart".as_ref(),
        "--data".as_ref(),
        data.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "--seed".as_ref(),
        seed.as_ref(),
        "--epochs".as_ref(),
        epochs.as_ref(),
        "--name".as_ref(),
        "pneumonia".as_ref(),
    ] as [&std::ffi::OsStr; 11])?
    .train;
    let trained = train(args)?;
    let metrics = &trained.manifest.metrics;
    // The report describes the test split when there is one, else validation.
    let ev = trained
        .evaluations
        .last()
        .ok_or_else(|| anyhow!("no evaluation was produced"))?;
    let set = trained.splits.split(&ev.split)?;
    let cases = crate::evaluate::case_images(
        ev,
        &trained.model,
        set,
        &trained.batcher,
        &trained.device,
        medai_nn::explain::Method::GradCam,
    )?;
    crate::evaluate::write_report(
        &a.out,
        ev,
        &trained.manifest,
        &trained.bundle,
        &data,
        data_facts(&trained.splits),
        cases,
        json!({
            "bundle": trained.bundle.display().to_string(),
            "seconds": t0.elapsed().as_secs_f64(),
            "metrics": metrics,
        }),
    )?;
    for split in ["val", "test"] {
        if let Some(v) = metrics.get(split) {
            print!(
                "{}",
                crate::report::metrics_table(split, v, &trained.manifest.classes)
            );
        }
    }
    println!(
        "Bundle: {}\nReport: {}\nMetrics: {}\nTotal time: {:.1} s",
        trained.bundle.display(),
        a.out.join("report.html").display(),
        a.out.join("metrics.json").display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `--device` of a training command, parsed in one place: the main device (the first, where
/// the model lives and is validated) and the list for `TrainConfig::devices` (empty for one
/// device; all of them for a comma-separated list, which trains data-parallel).
pub fn train_devices(spec: &str) -> Result<(Device, Vec<Device>)> {
    let all = medai_nn::backend::devices(spec).map_err(|e| anyhow!(e))?;
    let main = all
        .first()
        .cloned()
        .ok_or_else(|| anyhow!("--device {spec:?}: no device"))?;
    Ok((main, if all.len() > 1 { all } else { Vec::new() }))
}

/// `--label-smoothing ε`, checked: in [0, 1), and only for single-label classifiers (a
/// multi-label model's per-label losses are not smoothed).
pub fn label_smoothing(epsilon: f64, multi_label: bool) -> Result<f64> {
    if !(0.0..1.0).contains(&epsilon) {
        bail!("--label-smoothing {epsilon}: expected a value in [0, 1), e.g. 0.1");
    }
    if multi_label && epsilon > 0.0 {
        bail!("--label-smoothing: only for single-label classifiers (this data is multi-label)");
    }
    Ok(epsilon)
}

/// `--ema M`, checked: a momentum in [0, 1).
pub fn ema_momentum(m: Option<f64>) -> Result<Option<f64>> {
    match m {
        Some(m) if !(0.0..1.0).contains(&m) => {
            bail!("--ema {m}: expected a momentum in [0, 1) (e.g. 0.99)")
        }
        m => Ok(m),
    }
}
