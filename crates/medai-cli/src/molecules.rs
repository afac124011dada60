//! `medai train molecules`, and `eval`/`predict` on molecule bundles: SMILES tables → D-MPNN
//! (an ensemble, optionally over cross-validation folds) → test metrics → bundle.

use anyhow::{Result, anyhow, bail};
use clap::Args;
use medai_chem::{MolDataset, ReadOptions, Split, SplitKind};
use medai_nn::Device;
use medai_nn::molecule::{
    Aggregation, MolObjective, MolSource, MolTask, MpnnConfig, MpnnEnsemble, TargetScaler,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::{Path, PathBuf};

/// The bundle task name.
pub const TASK: &str = "molecule-property";

/// Options of `medai train molecules`.
#[derive(Args, Debug, Clone)]
pub struct TrainMoleculesArgs {
    /// CSV with a SMILES column and target columns.
    #[arg(long)]
    pub data: PathBuf,
    /// The SMILES column.
    #[arg(long, default_value = "smiles")]
    pub smiles_column: String,
    /// Target columns, comma-separated (blank cells are missing labels).
    #[arg(long, value_delimiter = ',', required = true)]
    pub target_columns: Vec<String>,
    /// Extra molecule-level feature columns, comma-separated (standardised on training rows).
    #[arg(long, value_delimiter = ',')]
    pub feature_columns: Vec<String>,
    /// regression, classification, or auto (classification when every label is 0 or 1).
    #[arg(long, default_value = "auto", value_parser = ["auto", "regression", "classification"])]
    pub task: String,
    /// random or scaffold (balanced Bemis–Murcko groups, as chemprop).
    #[arg(long, default_value = "random")]
    pub split: String,
    /// Train / validation / test fractions.
    #[arg(long, default_value = "0.8,0.1,0.1", value_delimiter = ',')]
    pub sizes: Vec<f64>,
    /// K-fold cross-validation instead of one split: fold k tests on part k, validates on part
    /// k + 1; the bundle holds every fold's models.
    #[arg(long)]
    pub folds: Option<usize>,
    /// Members of the ensemble per split (the spread is the uncertainty).
    #[arg(long, default_value_t = 1)]
    pub ensemble: usize,
    /// Seed of the split and the initialisation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Epochs.
    #[arg(long, default_value_t = 50)]
    pub epochs: usize,
    /// Batch size.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Peak learning rate (Noam schedule: 2 warm-up epochs from lr/10, decay to lr/10).
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Hidden size of the messages.
    #[arg(long, default_value_t = 300)]
    pub hidden: usize,
    /// Message-passing depth.
    #[arg(long, default_value_t = 3)]
    pub depth: usize,
    /// Width of the feed-forward head.
    #[arg(long, default_value_t = 300)]
    pub ffn_hidden: usize,
    /// Hidden layers of the head.
    #[arg(long, default_value_t = 1)]
    pub ffn_layers: usize,
    /// Atom → molecule aggregation: mean, sum or norm (sum / 100).
    #[arg(long, default_value = "norm", value_parser = ["mean", "sum", "norm"])]
    pub aggregation: String,
    /// Stop after this many epochs without validation improvement (0: never).
    #[arg(long, default_value_t = 0)]
    pub patience: usize,
    /// Keep an exponential moving average of the weights with this momentum (e.g. 0.99, as
    /// Keras' `use_ema=True`); the averaged weights are validated and exported.
    #[arg(long)]
    pub ema: Option<f64>,
    /// Skip rows with invalid SMILES or values (listed on stderr and in the bundle) instead of
    /// failing.
    #[arg(long)]
    pub skip_invalid: bool,
    /// The bundle to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Model name (default: the bundle's file name).
    #[arg(long)]
    pub name: Option<String>,
    /// Compute device, or a comma-separated list (`cuda:0,cuda:1`) to split each batch between
    /// several devices (data-parallel training).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

/// What a member needs besides its weights: target and extra-feature scaling.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MemberPrep {
    /// Target standardisation (identity for classification).
    pub targets: TargetScaler,
    /// Extra-feature standardisation.
    pub features: TargetScaler,
}

/// The preprocessing stored in the bundle.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MolPreprocessing {
    /// Task kind.
    pub task: MolTask,
    /// SMILES column of the training file.
    pub smiles_column: String,
    /// Target columns.
    pub target_columns: Vec<String>,
    /// Extra feature columns.
    pub feature_columns: Vec<String>,
    /// Scaling per member, in member order.
    pub members: Vec<MemberPrep>,
}

fn file_sha256(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(path).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok(format!("{:x}", Sha256::digest(&bytes)))
}

fn scaled_extra(features: &[Vec<f64>], s: &TargetScaler) -> Vec<Vec<f32>> {
    features
        .iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .map(|(j, v)| ((v - s.mean[j]) / s.std[j]) as f32)
                .collect()
        })
        .collect()
}

fn detect_task(ds: &MolDataset, asked: &str) -> Result<MolTask> {
    let binary = ds
        .targets
        .iter()
        .flatten()
        .flatten()
        .all(|&v| v == 0.0 || v == 1.0);
    match asked {
        "regression" => Ok(MolTask::Regression),
        "classification" if binary => Ok(MolTask::Classification),
        "classification" => {
            let (row, v) = ds
                .targets
                .iter()
                .enumerate()
                .find_map(|(i, r)| {
                    r.iter()
                        .flatten()
                        .find(|&&v| v != 0.0 && v != 1.0)
                        .map(|v| (i, *v))
                })
                .unwrap_or((0, f64::NAN));
            bail!(
                "line {}: label {v} is not 0 or 1 (classification needs binary labels)",
                ds.lines[row]
            )
        }
        _ if binary => Ok(MolTask::Classification),
        _ => Ok(MolTask::Regression),
    }
}

/// Test metrics of predictions `pred[row][task]` against `ds` rows `rows`.
pub fn metrics(
    ds: &MolDataset,
    rows: &[usize],
    pred: &[Vec<f64>],
    task: MolTask,
) -> Result<serde_json::Value> {
    let tasks = ds.task_names.len();
    let mut per = Vec::new();
    for t in 0..tasks {
        let (y, p): (Vec<f64>, Vec<f64>) = rows
            .iter()
            .zip(pred)
            .filter_map(|(&r, p)| ds.targets[r][t].map(|y| (y, p[t])))
            .unzip();
        if y.is_empty() {
            per.push(json!({"task": ds.task_names[t], "n": 0}));
            continue;
        }
        match task {
            MolTask::Regression => {
                let r = medai_metrics::regression_report(&y, &p)?;
                per.push(json!({"task": ds.task_names[t], "n": r.n, "rmse": r.rmse, "mae": r.mae, "r2": r.r2}));
            }
            MolTask::Classification => {
                let labels: Vec<usize> = y.iter().map(|&v| v as usize).collect();
                let auc = medai_metrics::roc_auc(&labels, &p).ok();
                let acc = labels
                    .iter()
                    .zip(&p)
                    .filter(|&(&l, &q)| (q >= 0.5) as usize == l)
                    .count() as f64
                    / labels.len() as f64;
                per.push(json!({"task": ds.task_names[t], "n": labels.len(), "auc": auc, "accuracy": acc}));
            }
        }
    }
    let mean_of = |k: &str| -> Option<f64> {
        let v: Vec<f64> = per.iter().filter_map(|m| m[k].as_f64()).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let mut out = json!({"n": rows.len(), "tasks": per});
    let o = out.as_object_mut().unwrap();
    let keys: &[&str] = match task {
        MolTask::Regression => &["rmse", "mae", "r2"],
        MolTask::Classification => &["auc", "accuracy"],
    };
    for k in keys {
        o.insert((*k).into(), json!(mean_of(k)));
    }
    Ok(out)
}

/// `medai train molecules`.
pub fn train_molecules(a: TrainMoleculesArgs) -> Result<()> {
    use medai_nn::training::{OptimizerKind, Schedule, TrainConfig, TrainIo};
    let t0 = std::time::Instant::now();
    let ds = MolDataset::read_csv(
        &a.data,
        &ReadOptions {
            smiles_column: a.smiles_column.clone(),
            target_columns: a.target_columns.clone(),
            feature_columns: a.feature_columns.clone(),
            skip_invalid: a.skip_invalid,
        },
    )?;
    let featurize_s = t0.elapsed().as_secs_f64();
    if !ds.invalid.is_empty() {
        eprintln!(
            "Skipped {} invalid row(s) of {}:",
            ds.invalid.len(),
            a.data.display()
        );
        for r in &ds.invalid {
            eprintln!("  line {}: {}", r.line, r.reason);
        }
    }
    let task = detect_task(&ds, &a.task)?;
    if a.sizes.len() != 3
        || a.sizes.iter().any(|&f| !(0.0..=1.0).contains(&f))
        || (a.sizes.iter().sum::<f64>() - 1.0).abs() > 1e-6
        || a.sizes[0] == 0.0
        || a.sizes[1] == 0.0
    {
        bail!(
            "--sizes {:?}: expected three fractions (train,val,test) summing to 1, train and val > 0",
            a.sizes
        );
    }
    let fractions = (a.sizes[0], a.sizes[1], a.sizes[2]);
    let kind = SplitKind::parse(&a.split)
        .ok_or_else(|| anyhow!("--split {:?}: expected random or scaffold", a.split))?;
    let scaffolds: Vec<String> = if kind == SplitKind::Scaffold {
        ds.mols
            .iter()
            .map(medai_chem::murcko_scaffold)
            .collect::<Result<_, _>>()?
    } else {
        Vec::new()
    };
    let splits: Vec<Split> = match a.folds {
        Some(k) if k < 3 => bail!("--folds {k}: expected at least 3"),
        Some(k) => (0..k)
            .map(|f| medai_chem::kfold_split(ds.len(), k, f, a.seed))
            .collect(),
        None => vec![match kind {
            SplitKind::Random => medai_chem::random_split(ds.len(), fractions, a.seed),
            SplitKind::Scaffold => medai_chem::scaffold_split(&scaffolds, fractions, a.seed),
        }],
    };
    let aggregation = match a.aggregation.as_str() {
        "mean" => Aggregation::Mean,
        "sum" => Aggregation::Sum,
        _ => Aggregation::Norm,
    };
    let mut net = MpnnConfig::new(ds.task_names.len(), ds.feature_names.len());
    net.hidden = a.hidden;
    net.depth = a.depth.max(1);
    net.ffn_hidden = a.ffn_hidden;
    net.ffn_layers = a.ffn_layers;
    net.aggregation = aggregation;
    net.ensemble = a.ensemble.max(1) * splits.len();
    let cfg = TrainConfig {
        epochs: a.epochs,
        batch_size: a.batch_size,
        lr: a.lr,
        optimizer: OptimizerKind::Adam,
        epsilon: 1e-8,
        schedule: Schedule::Noam {
            warmup_epochs: 2,
            start: 0.1,
            end: 0.1,
        },
        patience: a.patience,
        seed: a.seed,
        ema: crate::commands::ema_momentum(a.ema)?,
        ..TrainConfig::default()
    };
    let (device, devices) = crate::commands::train_devices(&a.device)?;
    let cfg = TrainConfig { devices, ..cfg };
    let ad = device.clone().autodiff();
    if let Some(parent) = a.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| anyhow!("{}: {e}", parent.display()))?;
    }
    eprintln!(
        "Training a D-MPNN ({:?}, {} task(s), {} split{}, {} member(s) per split) on {} molecules",
        task,
        ds.task_names.len(),
        a.split,
        a.folds.map(|k| format!(", {k} folds")).unwrap_or_default(),
        a.ensemble.max(1),
        ds.len()
    );
    let mut members = Vec::new();
    let mut preps = Vec::new();
    let mut fold_metrics = Vec::new();
    let mut histories = Vec::new();
    let mut train_samples_per_s = Vec::new();
    for (f, split) in splits.iter().enumerate() {
        if split.train.is_empty() || split.val.is_empty() {
            bail!(
                "split {f}: {} training and {} validation molecules; need at least one of each",
                split.train.len(),
                split.val.len()
            );
        }
        let train_targets: Vec<Vec<Option<f64>>> =
            split.train.iter().map(|&r| ds.targets[r].clone()).collect();
        let scaler = match task {
            MolTask::Regression => TargetScaler::fit(&train_targets, ds.task_names.len()),
            MolTask::Classification => TargetScaler::identity(ds.task_names.len()),
        };
        let feat_rows: Vec<Vec<Option<f64>>> = split
            .train
            .iter()
            .map(|&r| ds.features[r].iter().map(|&v| Some(v)).collect())
            .collect();
        let fscaler = TargetScaler::fit(&feat_rows, ds.feature_names.len());
        let extra = scaled_extra(&ds.features, &fscaler);
        let extra_f64: Vec<Vec<f64>> = extra
            .iter()
            .map(|r| r.iter().map(|&v| v as f64).collect())
            .collect();
        let source = MolSource::new(
            &ds.graphs,
            &ds.targets,
            &extra_f64,
            &scaler,
            split.train.clone(),
            split.val.clone(),
        );
        let objective = MolObjective {
            task,
            scaler: scaler.clone(),
        };
        let mut fold_members = Vec::new();
        for k in 0..a.ensemble.max(1) {
            let seed = a.seed.wrapping_mul(1000).wrapping_add((f * 100 + k) as u64);
            device.seed(seed);
            let model = net.init(&ad);
            let io = TrainIo {
                log: None,
                checkpoint_dir: None,
                resume: false,
                progress: !a.quiet,
            };
            let cfg = TrainConfig {
                seed,
                ..cfg.clone()
            };
            let outcome =
                medai_nn::training::fit_objective(model, &source, &objective, &cfg, &ad, &io)?;
            let speed: Vec<f64> = outcome
                .history
                .iter()
                .map(|h| h.train_samples_per_s)
                .collect();
            train_samples_per_s.extend(speed);
            histories.push(json!({"fold": f, "member": k, "best_epoch": outcome.best_epoch, "best_val_score": outcome.best_val_score, "history": outcome.history}));
            let m = outcome.model;
            fold_members.push(m.clone());
            members.push(m);
            preps.push(MemberPrep {
                targets: scaler.clone(),
                features: fscaler.clone(),
            });
        }
        if !split.test.is_empty() {
            let all: Vec<Vec<Vec<f64>>> = fold_members
                .iter()
                .map(|m| {
                    medai_nn::molecule::predict(
                        m,
                        &ds.graphs,
                        &extra,
                        &split.test,
                        task,
                        &scaler,
                        &device,
                    )
                })
                .collect();
            let (mean, _) = medai_nn::molecule::mean_and_spread(&all);
            let m = metrics(&ds, &split.test, &mean, task)?;
            eprintln!("split {f}: test {}", summary_line(&m, task));
            fold_metrics.push(m);
        }
    }
    let test_metrics = if fold_metrics.is_empty() {
        serde_json::Value::Null
    } else if fold_metrics.len() == 1 {
        fold_metrics[0].clone()
    } else {
        let keys: &[&str] = match task {
            MolTask::Regression => &["rmse", "mae", "r2"],
            MolTask::Classification => &["auc", "accuracy"],
        };
        let mut o = serde_json::Map::new();
        for k in keys {
            let v: Vec<f64> = fold_metrics.iter().filter_map(|m| m[*k].as_f64()).collect();
            let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
            let sd =
                (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len().max(1) as f64).sqrt();
            o.insert((*k).into(), json!(mean));
            o.insert(format!("{k}_sd"), json!(sd));
        }
        o.insert("folds".into(), json!(fold_metrics));
        serde_json::Value::Object(o)
    };

    let ensemble = MpnnEnsemble { members };
    let lines = |rows: &[usize]| -> Vec<usize> { rows.iter().map(|&r| ds.lines[r]).collect() };
    let name = a.name.clone().unwrap_or_else(|| {
        a.out
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "molecules".into())
    });
    let label_mode = match task {
        MolTask::Regression => "regression",
        MolTask::Classification => "binary-multitask",
    };
    let mut manifest = medai_bundle::Manifest::new(&name, TASK, label_mode, ds.task_names.clone());
    manifest.architecture = serde_json::to_value(&net)?;
    manifest.preprocessing = serde_json::to_value(MolPreprocessing {
        task,
        smiles_column: a.smiles_column.clone(),
        target_columns: ds.task_names.clone(),
        feature_columns: ds.feature_names.clone(),
        members: preps,
    })?;
    let mean_speed =
        train_samples_per_s.iter().sum::<f64>() / train_samples_per_s.len().max(1) as f64;
    manifest.training = json!({
        "config": cfg,
        "split": a.split,
        "sizes": a.sizes,
        "folds": a.folds,
        "seed": a.seed,
        "ensemble_per_split": a.ensemble.max(1),
        "splits": splits.iter().map(|s| json!({"train": lines(&s.train), "val": lines(&s.val), "test": lines(&s.test)})).collect::<Vec<_>>(),
        "members": histories,
        "seconds": t0.elapsed().as_secs_f64(),
        "featurize_seconds": featurize_s,
        "train_molecules_per_s": mean_speed,
        "parameters": ensemble.parameters(),
        "device": a.device,
    });
    manifest.dataset = medai_bundle::DatasetInfo {
        source: "csv-molecules".into(),
        path: a.data.display().to_string(),
        fingerprint: file_sha256(&a.data)?,
        counts: [
            ("molecules".to_string(), json!(ds.len())),
            ("invalid_skipped".to_string(), json!(ds.invalid)),
        ]
        .into_iter()
        .collect(),
    };
    manifest.metrics = json!({"test": test_metrics});
    let weights = medai_nn::weights::save_safetensors(&ensemble)
        .map_err(|e| anyhow!("saving weights: {e}"))?;
    let card = molecule_card(&manifest, &a, task, &test_metrics, ds.invalid.len());
    medai_bundle::Bundle {
        manifest,
        weights,
        model_card: card,
        files: Default::default(),
    }
    .write(&a.out)?;
    eprintln!(
        "Wrote bundle {} ({:.1} s; test {})",
        a.out.display(),
        t0.elapsed().as_secs_f64(),
        summary_line(&test_metrics, task)
    );
    Ok(())
}

fn molecule_card(
    m: &medai_bundle::Manifest,
    a: &TrainMoleculesArgs,
    task: MolTask,
    test: &serde_json::Value,
    invalid: usize,
) -> String {
    let mut o = format!("# Model card: {}\n\n", m.name);
    o.push_str(&format!(
        "medai {} bundle, created {}. Task: molecular property {} of {} from SMILES.\n\n",
        m.medai_version,
        m.created,
        match task {
            MolTask::Regression => "regression",
            MolTask::Classification => "classification",
        },
        m.classes.join(", ")
    ));
    o.push_str("## Intended use\n\nResearch support in drug discovery: ranking and triaging candidate molecules for experiments. Not for decisions about patients or doses. Predictions for molecules unlike the training set (new scaffolds, elements, sizes) are less reliable; the ensemble spread (`predict`, `*_uncertainty`) flags some of them but is not a calibrated interval.\n\n");
    o.push_str(&format!(
        "## Data\n\n- `{}` (SHA-256 `{}`), {} molecules; {} invalid row(s) skipped (listed in `manifest.json`).\n- Split: {}, seed {}.\n- Extra features: {}.\n\n",
        a.data.display(),
        m.dataset.fingerprint,
        m.dataset.counts.get("molecules").cloned().unwrap_or_default(),
        invalid,
        match a.folds {
            Some(k) => format!("{k}-fold cross-validation"),
            None => format!("{} {:?}", a.split, a.sizes),
        },
        a.seed,
        if a.feature_columns.is_empty() {
            "none".to_string()
        } else {
            a.feature_columns.join(", ")
        }
    ));
    o.push_str(&format!(
        "## Model\n\nDirected message-passing network (chemprop's D-MPNN): hidden {}, depth {}, {} aggregation, {} FFN layer(s) of {}; {} member(s) per split. SMILES are sanitised with RDKit's rules (COSMolKit); atom and bond features are chemprop's.\n\n",
        a.hidden, a.depth, a.aggregation, a.ffn_layers, a.ffn_hidden, a.ensemble.max(1)
    ));
    o.push_str("## Evaluation (held-out test split)\n\n");
    o.push_str(&match test {
        serde_json::Value::Null => "No test split.\n".to_string(),
        t => format!(
            "{}\n\n```json\n{}\n```\n",
            summary_line(t, task),
            serde_json::to_string_pretty(t).unwrap_or_default()
        ),
    });
    o.push_str("\n## Limitations\n\n- A random split measures interpolation; a scaffold split is closer to new chemistry. Report the one that matches the use.\n- Labels come from the training file; assay noise bounds the achievable error.\n");
    o
}

fn summary_line(m: &serde_json::Value, task: MolTask) -> String {
    let f = |k: &str| {
        m[k].as_f64()
            .map(|v| format!("{v:.4}"))
            .unwrap_or("-".into())
    };
    match task {
        MolTask::Regression => format!("RMSE {}  MAE {}  R² {}", f("rmse"), f("mae"), f("r2")),
        MolTask::Classification => format!("ROC-AUC {}  accuracy {}", f("auc"), f("accuracy")),
    }
}

/// A molecule bundle, loaded.
pub struct LoadedMol {
    /// The manifest.
    pub manifest: medai_bundle::Manifest,
    /// Preprocessing.
    pub prep: MolPreprocessing,
    /// The members.
    pub ensemble: MpnnEnsemble,
    /// Device.
    pub device: Device,
}

/// Load a molecule bundle.
pub fn load(path: &Path, device_name: &str) -> Result<LoadedMol> {
    from_bundle(medai_bundle::Bundle::read(path)?, path, device_name)
}

/// Rebuild a molecule model from a bundle already read from `path` (named in errors).
pub fn from_bundle(
    bundle: medai_bundle::Bundle,
    path: &Path,
    device_name: &str,
) -> Result<LoadedMol> {
    let m = bundle.manifest;
    if m.task != TASK {
        bail!(
            "{}: task {:?} is not a molecule model",
            path.display(),
            m.task
        );
    }
    let net: MpnnConfig = serde_json::from_value(m.architecture.clone())
        .map_err(|e| anyhow!("{}: manifest field `architecture`: {e}", path.display()))?;
    let prep: MolPreprocessing = serde_json::from_value(m.preprocessing.clone())
        .map_err(|e| anyhow!("{}: manifest field `preprocessing`: {e}", path.display()))?;
    if prep.members.len() != net.ensemble {
        bail!(
            "{}: {} member preprocessings for {} members",
            path.display(),
            prep.members.len(),
            net.ensemble
        );
    }
    let device = medai_nn::backend::device(device_name).map_err(|e| anyhow!(e))?;
    let ensemble = medai_nn::weights::load_safetensors(net.init_ensemble(&device), &bundle.weights)
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok(LoadedMol {
        manifest: m,
        prep,
        ensemble,
        device,
    })
}

impl LoadedMol {
    /// Ensemble mean and spread for rows `rows` of `ds`.
    pub fn predict(&self, ds: &MolDataset, rows: &[usize]) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
        self.predict_graphs(&ds.graphs, &ds.features, rows)
    }

    /// Ensemble mean and spread for rows `rows` of featurised molecules `graphs` with their
    /// extra feature columns `features` (unscaled; empty rows when the model has none).
    pub fn predict_graphs(
        &self,
        graphs: &[medai_chem::MolGraph],
        features: &[Vec<f64>],
        rows: &[usize],
    ) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
        let all: Vec<Vec<Vec<f64>>> = self
            .ensemble
            .members
            .iter()
            .zip(&self.prep.members)
            .map(|(m, p)| {
                let extra = scaled_extra(features, &p.features);
                medai_nn::molecule::predict(
                    m,
                    graphs,
                    &extra,
                    rows,
                    self.prep.task,
                    &p.targets,
                    &self.device,
                )
            })
            .collect();
        medai_nn::molecule::mean_and_spread(&all)
    }
}

/// `medai eval` on a molecule bundle: the bundle's own split when `data` is its training file,
/// else every row.
pub fn eval(a: &crate::commands::EvalArgs) -> Result<()> {
    let loaded = load(&a.model, &a.device)?;
    let p = &loaded.prep;
    let ds = MolDataset::read_csv(
        &a.data,
        &ReadOptions {
            smiles_column: p.smiles_column.clone(),
            target_columns: p.target_columns.clone(),
            feature_columns: p.feature_columns.clone(),
            skip_invalid: true,
        },
    )?;
    let same_file = file_sha256(&a.data)? == loaded.manifest.dataset.fingerprint;
    let (rows, split_name) = if same_file {
        let splits = loaded.manifest.training["splits"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if splits.len() != 1 {
            bail!(
                "{}: a cross-validation bundle has {} test folds; evaluate it on another file",
                a.model.display(),
                splits.len()
            );
        }
        let want: std::collections::BTreeSet<usize> = splits[0][a.split.as_str()]
            .as_array()
            .ok_or_else(|| anyhow!("--split {:?}: expected train, val or test", a.split))?
            .iter()
            .filter_map(|v| v.as_u64().map(|v| v as usize))
            .collect();
        let rows: Vec<usize> = (0..ds.len())
            .filter(|&r| want.contains(&ds.lines[r]))
            .collect();
        (rows, a.split.clone())
    } else {
        ((0..ds.len()).collect(), "all".to_string())
    };
    if rows.is_empty() {
        bail!(
            "{}: no rows to evaluate in split {split_name:?}",
            a.data.display()
        );
    }
    let (mean, _) = loaded.predict(&ds, &rows);
    let mut m = metrics(&ds, &rows, &mean, p.task)?;
    let o = m.as_object_mut().unwrap();
    o.insert("split".into(), json!(split_name));
    o.insert("model".into(), json!(a.model.display().to_string()));
    o.insert("invalid_skipped".into(), json!(ds.invalid.len()));
    match a.format {
        crate::commands::Format::Json => println!("{}", serde_json::to_string_pretty(&m)?),
        _ => {
            println!("split {split_name}: {} molecules", rows.len());
            println!("{}", summary_line(&m, p.task));
            for t in m["tasks"].as_array().into_iter().flatten() {
                println!("  {}", t);
            }
        }
    }
    Ok(())
}

/// `medai predict --model B --data F --out P.csv` on a molecule bundle: one row per input row
/// with the prediction and the ensemble spread per task; invalid SMILES get an `error` cell.
pub fn predict(
    model: &Path,
    data: &Path,
    smiles_column: Option<&str>,
    out: &Path,
    device: &str,
) -> Result<()> {
    let loaded = load(model, device)?;
    let p = &loaded.prep;
    let t_start = std::time::Instant::now();
    let ds = MolDataset::read_csv(
        data,
        &ReadOptions {
            smiles_column: smiles_column.unwrap_or(&p.smiles_column).to_string(),
            target_columns: Vec::new(),
            feature_columns: p.feature_columns.clone(),
            skip_invalid: true,
        },
    )?;
    let rows: Vec<usize> = (0..ds.len()).collect();
    let t0 = std::time::Instant::now();
    let (mean, sd) = loaded.predict(&ds, &rows);
    let secs = t0.elapsed().as_secs_f64();
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["line".to_string(), "smiles".to_string()];
    for t in &p.target_columns {
        header.push(t.clone());
        header.push(format!("{t}_uncertainty"));
    }
    header.push("error".into());
    w.write_record(&header)?;
    let mut k = 0;
    let mut invalid = ds.invalid.iter().peekable();
    // Rows in file order: valid predictions and invalid rows interleaved by line.
    loop {
        let next_valid = (k < ds.len()).then(|| ds.lines[k]);
        let next_invalid = invalid.peek().map(|r| r.line);
        match (next_valid, next_invalid) {
            (None, None) => break,
            (Some(v), i) if i.is_none_or(|i| v < i) => {
                let mut rec = vec![v.to_string(), ds.smiles[k].clone()];
                for t in 0..p.target_columns.len() {
                    rec.push(format!("{}", mean[k][t]));
                    rec.push(format!("{}", sd[k][t]));
                }
                rec.push(String::new());
                w.write_record(&rec)?;
                k += 1;
            }
            _ => {
                let r = invalid.next().unwrap();
                let mut rec = vec![r.line.to_string(), r.smiles.clone()];
                rec.extend(std::iter::repeat_n(
                    String::new(),
                    2 * p.target_columns.len(),
                ));
                rec.push(r.reason.clone());
                w.write_record(&rec)?;
            }
        }
    }
    let bytes = w.into_inner().map_err(|e| anyhow!("{e}"))?;
    medai_nn::weights::write_atomic(out, &bytes).map_err(|e| anyhow!("{}: {e}", out.display()))?;
    let total = t_start.elapsed().as_secs_f64();
    eprintln!(
        "Wrote {} ({} molecules, {} invalid; model {:.3} s; {:.0} molecules/s end to end from SMILES)",
        out.display(),
        ds.len(),
        ds.invalid.len(),
        secs,
        ds.len() as f64 / total.max(1e-9),
    );
    Ok(())
}
