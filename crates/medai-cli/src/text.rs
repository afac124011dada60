//! `medai train text`, and `eval`/`predict` on text bundles: a CSV/TSV of documents → word
//! vocabulary or WordPiece tokens → BiGRU/BiLSTM + attention, Kim CNN or a fine-tuned BERT-family
//! encoder → the one evaluator → a bundle that carries its tokenizer (`vocab.json` or
//! `tokenizer.json`).

use anyhow::{Result, anyhow, bail};
use clap::Args;
use medai_bundle::{Bundle, Manifest};
use medai_nn::Device;
use medai_nn::molecule::{MolObjective, MolTask, TargetScaler};
use medai_nn::text::{TextArch, TextModel, TextModelConfig, TextSource};
use medai_nn::training::{
    ClassObjective, OptimizerKind, Schedule, SelectBy, Selection, TrainConfig, TrainIo,
};
use medai_report::evaluation::{EvalInput, Evaluation, Scored, evaluate};
use medai_text::{
    Encoded, LabelSet, ReadOptions, SplitName, TextDataset, TextRecord, Tokenizer, VocabOptions,
    WordPiece, WordVocab,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The bundle task name.
pub const TASK: &str = "text-classification";

/// Options of `medai train text`.
#[derive(Args, Debug, Clone)]
pub struct TrainTextArgs {
    /// CSV or TSV (by extension) with a text column and a label column.
    #[arg(long)]
    pub data: PathBuf,
    /// The text column.
    #[arg(long, default_value = "text")]
    pub text_column: String,
    /// The label column.
    #[arg(long, default_value = "label")]
    pub label_column: String,
    /// A split column (`train`/`training`, `val`/`dev`, `test`); without it the rows are split
    /// at random (`--val-fraction`, `--test-fraction`).
    #[arg(long)]
    pub split_column: Option<String>,
    /// Multi-label: labels in a cell are separated by this character (e.g. `;`).
    #[arg(long)]
    pub label_separator: Option<char>,
    /// bigru-attn, bilstm-attn, cnn or bert (needs --pretrained).
    #[arg(long, default_value = "bigru-attn", value_parser = ["bigru-attn", "bilstm-attn", "cnn", "bert"])]
    pub arch: String,
    /// A Hugging Face checkpoint directory (config.json, model.safetensors or
    /// pytorch_model.bin, tokenizer.json or vocab.txt) for `--arch bert`.
    #[arg(long)]
    pub pretrained: Option<PathBuf>,
    /// BERT pooling: cls (pooler on [CLS]) or mean (sentence-transformers); default: what the
    /// checkpoint was trained with.
    #[arg(long, value_parser = ["cls", "mean"])]
    pub pooling: Option<String>,
    /// Tokens per document (longer documents are truncated).
    #[arg(long, default_value_t = 256)]
    pub max_len: usize,
    /// Word models: keep words seen at least this often in the training split.
    #[arg(long, default_value_t = 2)]
    pub min_freq: usize,
    /// Word models: at most this many words in the vocabulary.
    #[arg(long, default_value_t = 50_000)]
    pub max_vocab: usize,
    /// Word models: keep case.
    #[arg(long)]
    pub keep_case: bool,
    /// Word models: keep numbers (default: every token with a digit becomes `<num>`).
    #[arg(long)]
    pub keep_numbers: bool,
    /// Pretrained word vectors (GloVe or word2vec text format) for the embedding layer.
    #[arg(long)]
    pub word_vectors: Option<PathBuf>,
    /// Embedding width (word models; must match --word-vectors).
    #[arg(long, default_value_t = 200)]
    pub embed_dim: usize,
    /// Hidden size per direction (recurrent models).
    #[arg(long, default_value_t = 128)]
    pub hidden: usize,
    /// Dropout on embeddings and the pooled vector (word models; BERT keeps its config.json's).
    #[arg(long, default_value_t = 0.5)]
    pub dropout: f64,
    /// Word models: replace each training token by `<unk>` with this probability (word
    /// dropout; 0: off).
    #[arg(long, default_value_t = 0.0)]
    pub word_dropout: f64,
    /// Keep an exponential moving average of the weights with this momentum (e.g. 0.99, as
    /// Keras' `use_ema=True`); the averaged weights are validated and exported.
    #[arg(long)]
    pub ema: Option<f64>,
    /// Label smoothing ε of the training loss (Keras' `label_smoothing`, e.g. 0.1): train
    /// against `one_hot·(1 − ε) + ε/k`; metrics use the true labels. Single-label only.
    #[arg(long, default_value_t = 0.0)]
    pub label_smoothing: f64,
    /// Epochs (default: 30 for word models, 4 for bert).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Batch size.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Peak learning rate (default: 1e-3 for word models with Adam and cosine decay, 5e-5 for
    /// bert with AdamW, linear warm-up over 10% of the steps and linear decay).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Weight decay (default 0; 0.01 for bert, decoupled).
    #[arg(long)]
    pub weight_decay: Option<f32>,
    /// Warm-up fraction of the steps (bert).
    #[arg(long, default_value_t = 0.1)]
    pub warmup: f64,
    /// Stop after this many epochs without validation improvement (0: never).
    #[arg(long, default_value_t = 5)]
    pub patience: usize,
    /// What picks the best epoch (and drives early stopping) of a single-label model:
    /// validation accuracy, loss or (macro one-vs-rest) AUC. Multi-label models use mean AUC.
    #[arg(long, default_value = "accuracy", value_parser = ["accuracy", "loss", "auc"])]
    pub select: String,
    /// Class weights: none or balanced.
    #[arg(long, default_value = "none", value_parser = ["none", "balanced"])]
    pub class_weights: String,
    /// Validation fraction carved from the training rows (stratified by label).
    #[arg(long, default_value_t = 0.1)]
    pub val_fraction: f64,
    /// Test fraction when the data has no split column.
    #[arg(long, default_value_t = 0.1)]
    pub test_fraction: f64,
    /// Seed of the split, initialisation and shuffling.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The bundle to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Model name (default: the bundle's file name).
    #[arg(long)]
    pub name: Option<String>,
    /// Append one JSON line per epoch to this file.
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Continue an interrupted run from its checkpoint (kept next to --out).
    #[arg(long)]
    pub resume: bool,
    /// Compute device, or a comma-separated list (`cuda:0,cuda:1`) to split each batch between
    /// several devices (data-parallel training).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

/// The preprocessing stored in a text bundle.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TextPreprocessing {
    /// Text column of the training file.
    pub text_column: String,
    /// Label column.
    pub label_column: String,
    /// Split column, if any.
    pub split_column: Option<String>,
    /// Multi-label separator, if multi-label.
    pub label_separator: Option<char>,
    /// Tokens per document.
    pub max_len: usize,
    /// `word` (`vocab.json`) or `wordpiece` (`tokenizer.json`).
    pub tokenizer: String,
}

const VOCAB_FILE: &str = "vocab.json";
const TOKENIZER_FILE: &str = "tokenizer.json";

fn file_sha256(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(path).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok(format!("{:x}", Sha256::digest(&bytes)))
}

/// Training/validation/test rows of a dataset.
struct Rows {
    train: Vec<usize>,
    val: Vec<usize>,
    test: Vec<usize>,
}

/// Stratified split of `rows` (by first label): `fraction` of each class to the second part.
fn carve(rows: &[usize], key: &[String], fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    let mut by: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
    for (&r, k) in rows.iter().zip(key) {
        by.entry(k.as_str()).or_default().push(r);
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let (mut keep, mut out) = (Vec::new(), Vec::new());
    for (_, mut v) in by {
        v.shuffle(&mut rng);
        let n = ((v.len() as f64) * fraction).round() as usize;
        let n = n.min(v.len().saturating_sub(1));
        out.extend_from_slice(&v[..n]);
        keep.extend_from_slice(&v[n..]);
    }
    keep.sort_unstable();
    out.sort_unstable();
    (keep, out)
}

fn split_rows(ds: &TextDataset, a: &TrainTextArgs) -> Result<Rows> {
    let first = |r: usize| ds.records[r].labels.first().cloned().unwrap_or_default();
    if !(0.0..1.0).contains(&a.val_fraction) || a.val_fraction == 0.0 {
        bail!(
            "--val-fraction {}: expected a value in (0, 1)",
            a.val_fraction
        );
    }
    if a.split_column.is_some() {
        let idx = |s: SplitName| -> Vec<usize> {
            (0..ds.records.len())
                .filter(|&r| ds.records[r].split == Some(s))
                .collect()
        };
        let (mut train, mut val, test) = (
            idx(SplitName::Train),
            idx(SplitName::Val),
            idx(SplitName::Test),
        );
        if val.is_empty() {
            let keys: Vec<String> = train.iter().map(|&r| first(r)).collect();
            (train, val) = carve(&train, &keys, a.val_fraction, a.seed);
        }
        Ok(Rows { train, val, test })
    } else {
        if !(0.0..1.0).contains(&a.test_fraction) {
            bail!(
                "--test-fraction {}: expected a value in [0, 1)",
                a.test_fraction
            );
        }
        let all: Vec<usize> = (0..ds.records.len()).collect();
        let keys: Vec<String> = all.iter().map(|&r| first(r)).collect();
        let (rest, test) = carve(&all, &keys, a.test_fraction, a.seed);
        let keys: Vec<String> = rest.iter().map(|&r| first(r)).collect();
        let (train, val) = carve(
            &rest,
            &keys,
            a.val_fraction / (1.0 - a.test_fraction),
            a.seed + 1,
        );
        Ok(Rows { train, val, test })
    }
}

/// Per-row class index (single-label) after checking every row's labels against `labels`.
fn class_targets(ds: &TextDataset, labels: &LabelSet) -> Result<Vec<usize>> {
    ds.records
        .iter()
        .map(|r| Ok(labels.encode(r, &ds.path)?[0]))
        .collect()
}

/// Per-row multi-hot targets.
fn multi_hot(ds: &TextDataset, labels: &LabelSet) -> Result<Vec<Vec<f32>>> {
    ds.records
        .iter()
        .map(|r| {
            let mut v = vec![0f32; labels.names.len()];
            for i in labels.encode(r, &ds.path)? {
                v[i] = 1.0;
            }
            Ok(v)
        })
        .collect()
}

fn encode_all(tok: &Tokenizer, records: &[TextRecord], max_len: usize) -> Vec<Encoded> {
    use rayon::prelude::*;
    records
        .par_iter()
        .map(|r| tok.encode(&r.text, max_len))
        .collect()
}

fn softmax_rows(logits: &[Vec<f32>]) -> Vec<Vec<f64>> {
    logits
        .iter()
        .map(|o| medai_nn::training::softmax_row(o))
        .collect()
}

fn sigmoid_rows(logits: &[Vec<f32>]) -> Vec<Vec<f64>> {
    logits
        .iter()
        .map(|o| {
            o.iter()
                .map(|&z| 1.0 / (1.0 + (-(z as f64)).exp()))
                .collect()
        })
        .collect()
}

fn label_mode(classes: usize, multi: bool) -> &'static str {
    if multi {
        "multilabel"
    } else if classes == 2 {
        "binary"
    } else {
        "categorical"
    }
}

/// Evaluate single-label probabilities with the one evaluator.
fn evaluate_split(
    classes: &[String],
    split: &str,
    data: Scored,
    raw: Option<&[Vec<f64>]>,
    val: Option<Scored>,
    temperature: f64,
    opts: &medai_report::evaluation::EvalOptions,
) -> Result<Evaluation> {
    let input = EvalInput {
        classes,
        mode: label_mode(classes.len(), false),
        split,
        data,
        uncalibrated: raw,
        val,
        temperature,
        attributes: &[],
    };
    evaluate(&input, opts).map_err(|e| anyhow!("evaluating the {split} split: {e}"))
}

/// Keep a split's evaluation; when the evaluator cannot score it (e.g. a split with one class
/// has no AUC), keep its accuracy and the reason, so a long training run still yields a bundle.
fn record(
    metrics: &mut serde_json::Map<String, Value>,
    evaluations: &mut Vec<Evaluation>,
    split: &str,
    ev: Result<Evaluation>,
    labels: &[usize],
    probs: &[Vec<f64>],
) {
    match ev {
        Ok(ev) => {
            metrics.insert(split.into(), ev.summary());
            evaluations.push(ev);
        }
        Err(e) => {
            eprintln!("warning: {e}");
            let correct = labels
                .iter()
                .zip(probs)
                .filter(|(l, p)| medai_nn::training::argmax(p) == **l)
                .count();
            metrics.insert(
                split.into(),
                json!({"split": split, "n": labels.len(), "accuracy": correct as f64 / labels.len().max(1) as f64, "error": e.to_string()}),
            );
        }
    }
}

/// Multi-label figures: per-label and macro AUC, F1 at 0.5, subset accuracy.
fn multilabel_summary(
    classes: &[String],
    split: &str,
    y: &[Vec<f32>],
    probs: &[Vec<f64>],
) -> Result<Value> {
    let yb: Vec<Vec<u8>> = y
        .iter()
        .map(|r| r.iter().map(|&v| (v > 0.5) as u8).collect())
        .collect();
    let r = medai_metrics::multilabel_report(&yb, probs, classes, 0.5)
        .map_err(|e| anyhow!("evaluating the {split} split: {e}"))?;
    let mut v = serde_json::to_value(&r)?;
    if let Some(o) = v.as_object_mut() {
        o.insert("split".into(), json!(split));
        o.insert("n".into(), json!(y.len()));
    }
    Ok(v)
}

/// `medai train text`.
pub fn train_text(a: TrainTextArgs) -> Result<()> {
    let t0 = std::time::Instant::now();
    let arch = TextArch::parse(&a.arch).ok_or_else(|| anyhow!("--arch {:?}", a.arch))?;
    let multi = a.label_separator.is_some();
    let selection = match a.select.as_str() {
        "loss" => Selection::Loss,
        "auc" => Selection::Auc,
        _ => Selection::Accuracy,
    };
    if !(0.0..1.0).contains(&a.dropout) {
        bail!("--dropout {}: expected a value in [0, 1)", a.dropout);
    }
    crate::commands::ema_momentum(a.ema)?;
    crate::commands::label_smoothing(a.label_smoothing, multi)?;
    if !(0.0..1.0).contains(&a.word_dropout) {
        bail!(
            "--word-dropout {}: expected a value in [0, 1)",
            a.word_dropout
        );
    }
    if !(0.0..1.0).contains(&a.warmup) {
        bail!("--warmup {}: expected a fraction in [0, 1)", a.warmup);
    }
    if a.hidden == 0 || a.embed_dim == 0 {
        bail!("--hidden and --embed-dim must be at least 1");
    }
    let min_len = if arch == TextArch::Bert { 3 } else { 1 };
    if a.max_len < min_len {
        bail!("--max-len {}: expected at least {min_len}", a.max_len);
    }
    let ds = TextDataset::read(
        &a.data,
        &ReadOptions {
            text_column: a.text_column.clone(),
            label_column: Some(a.label_column.clone()),
            split_column: a.split_column.clone(),
            label_separator: a.label_separator,
            delimiter: None,
        },
    )?;
    let mut rows = split_rows(&ds, &a)?;
    if multi && a.split_column.is_none() {
        // Random splits stratify by first label; a row whose other labels never reach training
        // goes back to training rather than failing the run.
        let known = LabelSet::from_records(rows.train.iter().map(|&r| &ds.records[r]));
        let unseen = |r: &usize| {
            ds.records[*r]
                .labels
                .iter()
                .any(|l| known.index(l).is_none())
        };
        for part in [&mut rows.val, &mut rows.test] {
            let moved: Vec<usize> = part.iter().copied().filter(|r| unseen(r)).collect();
            part.retain(|r| !unseen(r));
            rows.train.extend(moved);
        }
        rows.train.sort_unstable();
    }
    if rows.train.is_empty() || rows.val.is_empty() {
        bail!(
            "{}: {} training and {} validation documents; need at least one of each",
            a.data.display(),
            rows.train.len(),
            rows.val.len()
        );
    }
    let labels = LabelSet::from_records(rows.train.iter().map(|&r| &ds.records[r]));
    if labels.names.len() < 2 && !multi {
        bail!(
            "{}: the training split has {} label(s) in column {:?}; need at least 2",
            a.data.display(),
            labels.names.len(),
            a.label_column
        );
    }
    // Every label of every split must be known (an unknown test label is an error, not a skip).
    let (class_y, multi_y) = if multi {
        (Vec::new(), multi_hot(&ds, &labels)?)
    } else {
        (class_targets(&ds, &labels)?, Vec::new())
    };
    let k = labels.names.len();

    // Tokenizer and network.
    let (device, devices) = crate::commands::train_devices(&a.device)?;
    let ad = device.clone().autodiff();
    device.seed(a.seed);
    let bert = arch == TextArch::Bert;
    let (tokenizer, mut net_cfg, model, load_note) = if bert {
        let dir = a.pretrained.as_ref().ok_or_else(|| {
            anyhow!("--arch bert needs --pretrained DIR (a Hugging Face checkpoint)")
        })?;
        let wp = WordPiece::from_dir(dir)?;
        let pooling = match a.pooling.as_deref() {
            Some("cls") => Some(medai_nn::bert::Pooling::Cls),
            Some("mean") => Some(medai_nn::bert::Pooling::Mean),
            _ => None,
        };
        let (cfg, m, report) =
            medai_nn::bert::load_pretrained(dir, k, pooling, &ad).map_err(|e| anyhow!("{e}"))?;
        if a.max_len > cfg.bert.max_position_embeddings {
            bail!(
                "--max-len {}: the checkpoint has {} positions",
                a.max_len,
                cfg.bert.max_position_embeddings
            );
        }
        let mut net = TextModelConfig::word(TextArch::Bert, cfg.bert.vocab_size, k);
        net.bert = Some(cfg);
        let note = format!(
            "{} pretrained tensors loaded, {} initialised ({})",
            report.loaded.len(),
            report.initialised.len(),
            report.initialised.join(", ")
        );
        (Tokenizer::WordPiece(wp), net, TextModel::Bert(m), note)
    } else {
        if a.pretrained.is_some() {
            bail!("--pretrained is for --arch bert; word models take --word-vectors");
        }
        let opts = VocabOptions {
            min_freq: a.min_freq.max(1),
            max_size: Some(a.max_vocab.max(2)),
            lowercase: !a.keep_case,
            normalize_numbers: !a.keep_numbers,
        };
        let vocab = WordVocab::build(
            rows.train.iter().map(|&r| ds.records[r].text.as_str()),
            &opts,
        );
        let mut net = TextModelConfig::word(arch, vocab.len(), k);
        net.embed_dim = a.embed_dim;
        net.hidden = a.hidden;
        net.attn_dim = a.hidden;
        net.dropout = a.dropout;
        let mut model = net.init(&ad)?;
        let mut note = format!("vocabulary of {} words", vocab.len());
        if let Some(p) = &a.word_vectors {
            let wv = medai_text::read_word_vectors(p, &vocab)?;
            if wv.dim != a.embed_dim {
                bail!(
                    "{}: vectors have {} dimensions but --embed-dim is {}",
                    p.display(),
                    wv.dim,
                    a.embed_dim
                );
            }
            model = model.set_word_vectors(wv.matrix, &ad)?;
            note.push_str(&format!(
                ", {} with pretrained vectors from {}",
                wv.found,
                p.display()
            ));
        }
        (Tokenizer::Word(vocab), net, model, note)
    };
    if !bert {
        net_cfg.dropout = a.dropout;
    }
    let t_tok = std::time::Instant::now();
    let docs = encode_all(&tokenizer, &ds.records, a.max_len);
    if let Some(b) = &net_cfg.bert {
        let vocab = b.bert.vocab_size;
        if let Some((r, id)) = docs.iter().enumerate().find_map(|(r, d)| {
            d.ids
                .iter()
                .find(|&&i| i as usize >= vocab)
                .map(|&i| (r, i))
        }) {
            bail!(
                "line {}: the tokenizer gives id {id} but the checkpoint's config.json has vocab_size {vocab} ({})",
                ds.records[r].line,
                a.pretrained.as_deref().unwrap_or(Path::new("")).display()
            );
        }
    }
    let tokenize_s = t_tok.elapsed().as_secs_f64();
    let pad = tokenizer.pad_id();
    let min_len = model.min_len();

    let epochs = a.epochs.unwrap_or(if bert { 4 } else { 30 });
    let cfg = TrainConfig {
        epochs,
        batch_size: a.batch_size.max(1),
        lr: a.lr.unwrap_or(if bert { 5e-5 } else { 1e-3 }),
        optimizer: if bert {
            OptimizerKind::Adamw
        } else {
            OptimizerKind::Adam
        },
        epsilon: if bert { 1e-8 } else { 1e-7 },
        weight_decay: a.weight_decay.unwrap_or(if bert { 0.01 } else { 0.0 }),
        schedule: if bert {
            Schedule::Linear { warmup: a.warmup }
        } else {
            Schedule::Cosine
        },
        class_weights: if a.class_weights == "balanced" {
            medai_nn::training::ClassWeights::Balanced
        } else {
            medai_nn::training::ClassWeights::None
        },
        patience: a.patience,
        seed: a.seed,
        ema: crate::commands::ema_momentum(a.ema)?,
        label_smoothing: crate::commands::label_smoothing(a.label_smoothing, multi)?,
        devices,
        ..TrainConfig::default()
    };
    if let Some(parent) = a.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| anyhow!("{}: {e}", parent.display()))?;
    }
    let stem = a
        .out
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "text".into());
    let ckpt = a.out.with_file_name(format!("{stem}.ckpt"));
    let io = TrainIo {
        log: a.log.clone(),
        checkpoint_dir: Some(ckpt.clone()),
        resume: a.resume,
        progress: !a.quiet,
    };
    eprintln!(
        "Training {} on {} documents ({} train / {} val / {} test, {} {}; {load_note}; {} parameters)",
        arch.name(),
        ds.records.len(),
        rows.train.len(),
        rows.val.len(),
        rows.test.len(),
        k,
        if multi { "labels" } else { "classes" },
        model.parameters()
    );
    // Word dropout applies to word vocabularies only (a WordPiece model has its own [UNK]).
    let word_dropout = if arch == TextArch::Bert {
        0.0
    } else {
        a.word_dropout
    };
    let t_train = std::time::Instant::now();
    let outcome = if multi {
        let source = TextSource::new(
            &docs,
            &multi_y,
            pad,
            min_len,
            rows.train.clone(),
            rows.val.clone(),
        )
        .with_word_dropout(word_dropout, medai_text::vocab::UNK_ID, a.seed);
        let objective = MolObjective {
            task: MolTask::Classification,
            scaler: TargetScaler::identity(k),
        };
        medai_nn::training::fit_objective(model, &source, &objective, &cfg, &ad, &io)?
    } else {
        let source = TextSource::new(
            &docs,
            &class_y,
            pad,
            min_len,
            rows.train.clone(),
            rows.val.clone(),
        )
        .with_word_dropout(word_dropout, medai_text::vocab::UNK_ID, a.seed);
        let objective = SelectBy {
            inner: ClassObjective::new(
                cfg.class_weights,
                &rows.train.iter().map(|&r| class_y[r]).collect::<Vec<_>>(),
                k,
            )
            .with_label_smoothing(cfg.label_smoothing),
            score: selection,
        };
        medai_nn::training::fit_objective(model, &source, &objective, &cfg, &ad, &io)?
    };
    let train_s = t_train.elapsed().as_secs_f64();
    // Evaluate with an inference copy on the plain device.
    let model = outcome.model;
    let pick = |rs: &[usize]| -> Vec<&Encoded> { rs.iter().map(|&r| &docs[r]).collect() };
    let t_inf = std::time::Instant::now();
    let val_logits = medai_nn::text::predict_logits(&model, &pick(&rows.val), pad, &device);
    let test_logits = medai_nn::text::predict_logits(&model, &pick(&rows.test), pad, &device);
    let inf_s = t_inf.elapsed().as_secs_f64();
    let docs_per_s = (rows.val.len() + rows.test.len()) as f64 / inf_s.max(1e-9);
    let mut metrics = serde_json::Map::new();
    let mut evaluations = Vec::new();
    let mut calibration = Value::Null;
    if multi {
        let yv: Vec<Vec<f32>> = rows.val.iter().map(|&r| multi_y[r].clone()).collect();
        metrics.insert(
            "val".into(),
            multilabel_summary(&labels.names, "val", &yv, &sigmoid_rows(&val_logits))
                .unwrap_or_else(|e| json!({"split": "val", "n": yv.len(), "error": e.to_string()})),
        );
        if !rows.test.is_empty() {
            let yt: Vec<Vec<f32>> = rows.test.iter().map(|&r| multi_y[r].clone()).collect();
            metrics.insert(
                "test".into(),
                multilabel_summary(&labels.names, "test", &yt, &sigmoid_rows(&test_logits))
                    .unwrap_or_else(
                        |e| json!({"split": "test", "n": yt.len(), "error": e.to_string()}),
                    ),
            );
        }
    } else {
        let yv: Vec<usize> = rows.val.iter().map(|&r| class_y[r]).collect();
        let val_raw = softmax_rows(&val_logits);
        let fit = medai_metrics::fit_temperature(&yv, &val_raw).ok();
        if fit.is_none() {
            eprintln!("warning: no temperature scaling (the validation split cannot fit one)");
        }
        let t = fit.as_ref().map(|f| f.temperature).unwrap_or(1.0);
        let val_served = crate::evaluate::calibrate(&val_raw, t);
        let eval_opts = crate::evaluate::EvalFlags::default().options(0.5, a.seed)?;
        let ev = evaluate_split(
            &labels.names,
            "val",
            Scored {
                labels: &yv,
                probs: &val_served,
            },
            Some(&val_raw),
            None,
            t,
            &eval_opts,
        );
        record(&mut metrics, &mut evaluations, "val", ev, &yv, &val_served);
        if !rows.test.is_empty() {
            let yt: Vec<usize> = rows.test.iter().map(|&r| class_y[r]).collect();
            let raw = softmax_rows(&test_logits);
            let served = crate::evaluate::calibrate(&raw, t);
            let ev = evaluate_split(
                &labels.names,
                "test",
                Scored {
                    labels: &yt,
                    probs: &served,
                },
                Some(&raw),
                Some(Scored {
                    labels: &yv,
                    probs: &val_served,
                }),
                t,
                &eval_opts,
            );
            record(&mut metrics, &mut evaluations, "test", ev, &yt, &served);
        }
        calibration = json!({
            "method": "temperature",
            "temperature": t,
            "fitted_on": "val",
            "nll_before": fit.as_ref().map(|f| f.nll_before),
            "nll_after": fit.as_ref().map(|f| f.nll_after),
        });
    }

    let name = a.name.clone().unwrap_or_else(|| {
        a.out
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "text".into())
    });
    let mut manifest = Manifest::new(&name, TASK, label_mode(k, multi), labels.names.clone());
    manifest.architecture = serde_json::to_value(&net_cfg)?;
    manifest.preprocessing = serde_json::to_value(TextPreprocessing {
        text_column: a.text_column.clone(),
        label_column: a.label_column.clone(),
        split_column: a.split_column.clone(),
        label_separator: a.label_separator,
        max_len: a.max_len,
        tokenizer: if bert {
            "wordpiece".into()
        } else {
            "word".into()
        },
    })?;
    let lines = |rs: &[usize]| -> Vec<u64> { rs.iter().map(|&r| ds.records[r].line).collect() };
    manifest.training = json!({
        "config": cfg,
        "arch": arch.name(),
        "select": if multi { "auc" } else { a.select.as_str() },
        "pretrained": a.pretrained.as_ref().map(|p| p.display().to_string()),
        "word_vectors": a.word_vectors.as_ref().map(|p| p.display().to_string()),
        "word_dropout": word_dropout,
        "load": load_note,
        "epochs_run": outcome.history.len(),
        "best_epoch": outcome.best_epoch,
        "best_val_score": outcome.best_val_score,
        "seconds": t0.elapsed().as_secs_f64(),
        "train_seconds": train_s,
        "tokenize_seconds": tokenize_s,
        "inference_docs_per_s": docs_per_s,
        "parameters": model.parameters(),
        "device": a.device,
        "threshold": 0.5,
        "seed": a.seed,
        "splits": {"val": lines(&rows.val), "test": lines(&rows.test)},
        "history": outcome.history,
    });
    manifest.dataset = medai_bundle::DatasetInfo {
        source: "csv-text".into(),
        path: a.data.display().to_string(),
        fingerprint: file_sha256(&a.data)?,
        counts: [
            ("train".to_string(), json!(rows.train.len())),
            ("val".to_string(), json!(rows.val.len())),
            ("test".to_string(), json!(rows.test.len())),
        ]
        .into_iter()
        .collect(),
    };
    manifest.metrics = Value::Object(metrics);
    manifest.calibration = calibration;
    let weights =
        medai_nn::weights::save_safetensors(&model).map_err(|e| anyhow!("saving weights: {e}"))?;
    let mut files = std::collections::BTreeMap::new();
    match &tokenizer {
        Tokenizer::Word(v) => {
            files.insert(VOCAB_FILE.to_string(), serde_json::to_vec(v)?);
        }
        Tokenizer::WordPiece(w) => {
            files.insert(TOKENIZER_FILE.to_string(), w.to_json()?.into_bytes());
        }
    }
    let card_evals: Vec<&Evaluation> = evaluations.iter().rev().collect();
    let card = text_card(&manifest, &card_evals, arch, &a);
    Bundle {
        manifest: manifest.clone(),
        weights,
        model_card: card,
        files,
    }
    .write(&a.out)?;
    medai_nn::training::remove_checkpoint(&ckpt);
    let test = manifest.metrics.get("test").cloned().unwrap_or(Value::Null);
    eprintln!(
        "Wrote bundle {} ({:.1} s; test accuracy {}, macro-F1 {})",
        a.out.display(),
        t0.elapsed().as_secs_f64(),
        fmt(&test["accuracy"]),
        fmt(&test["macro_f1"]),
    );
    Ok(())
}

fn fmt(v: &Value) -> String {
    v.as_f64()
        .map(|x| format!("{x:.4}"))
        .unwrap_or_else(|| "-".into())
}

fn text_card(m: &Manifest, evals: &[&Evaluation], arch: TextArch, a: &TrainTextArgs) -> String {
    let mut card = medai_report::card::model_card(m, evals);
    card.push_str(&format!(
        "\n## Text model\n\n- Architecture: {}{}\n- Tokens per document: {} (longer documents are truncated)\n- Intended use: decision support for triage and coding of clinical or biomedical text; \
a clinician reviews every output. Not a diagnosis.\n- Limitations: trained on {} only; language, \
institution and note style outside it are untested. Explanations (`medai predict --explain`) \
show which tokens drove a prediction, not why the label is right.\n",
        arch.name(),
        a.pretrained
            .as_ref()
            .map(|p| format!(", fine-tuned from {}", p.display()))
            .unwrap_or_default(),
        a.max_len,
        a.data.display(),
    ));
    card
}

/// A text bundle ready to predict.
pub struct LoadedText {
    /// The manifest.
    pub manifest: Manifest,
    /// Preprocessing.
    pub prep: TextPreprocessing,
    /// Tokenizer.
    pub tokenizer: Tokenizer,
    /// Network (inference mode).
    pub model: TextModel,
    /// Device.
    pub device: Device,
}

/// Load a text bundle.
pub fn load(path: &Path, device_name: &str) -> Result<LoadedText> {
    from_bundle(Bundle::read(path)?, path, device_name)
}

/// Rebuild a text model from a bundle already read from `path` (named in errors).
pub fn from_bundle(bundle: Bundle, path: &Path, device_name: &str) -> Result<LoadedText> {
    let m = bundle.manifest;
    if m.task != TASK {
        bail!("{}: task {:?} is not a text model", path.display(), m.task);
    }
    let net: TextModelConfig = serde_json::from_value(m.architecture.clone())
        .map_err(|e| anyhow!("{}: manifest field `architecture`: {e}", path.display()))?;
    let prep: TextPreprocessing = serde_json::from_value(m.preprocessing.clone())
        .map_err(|e| anyhow!("{}: manifest field `preprocessing`: {e}", path.display()))?;
    let file = |name: &str| {
        bundle
            .files
            .get(name)
            .ok_or_else(|| anyhow!("{}: the bundle has no {name}", path.display()))
    };
    let tokenizer = if prep.tokenizer == "wordpiece" {
        let json = String::from_utf8(file(TOKENIZER_FILE)?.clone())
            .map_err(|_| anyhow!("{}: {TOKENIZER_FILE} is not UTF-8", path.display()))?;
        Tokenizer::WordPiece(WordPiece::from_json(&json)?)
    } else {
        let v: WordVocab = serde_json::from_slice(file(VOCAB_FILE)?)
            .map_err(|e| anyhow!("{}: {VOCAB_FILE}: {e}", path.display()))?;
        Tokenizer::Word(v)
    };
    let device = medai_nn::backend::device(device_name).map_err(|e| anyhow!(e))?;
    let model = medai_nn::weights::load_safetensors(net.init(&device)?, &bundle.weights)
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok(LoadedText {
        manifest: m,
        prep,
        tokenizer,
        model: burn_valid(model),
        device,
    })
}

fn burn_valid(m: TextModel) -> TextModel {
    medai_nn::text::inference(&m)
}

impl LoadedText {
    /// True for a multi-label model (independent sigmoid outputs).
    pub fn multi(&self) -> bool {
        self.prep.label_separator.is_some()
    }

    /// Token weights explaining class `targets[i]` for document `i`: attention for recurrent
    /// models (the same whatever the class), gradient × input otherwise. Returns the method's
    /// name and one weight per token.
    pub fn explain(
        &self,
        docs: &[&Encoded],
        targets: &[usize],
    ) -> Result<(&'static str, Vec<Vec<f32>>)> {
        let pad = self.tokenizer.pad_id();
        Ok(
            match medai_nn::text::attention_weights(&self.model, docs, pad, &self.device) {
                Some(w) => ("attention", w),
                None => (
                    "gradient × input",
                    medai_nn::text::grad_x_input(&self.model, docs, targets, pad, &self.device)?,
                ),
            },
        )
    }
    /// Served probabilities (temperature-scaled softmax, or per-label sigmoid) and raw ones.
    pub fn probabilities(&self, docs: &[&Encoded]) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
        let logits = medai_nn::text::predict_logits(
            &self.model,
            docs,
            self.tokenizer.pad_id(),
            &self.device,
        );
        if self.multi() {
            let p = sigmoid_rows(&logits);
            (p.clone(), p)
        } else {
            let raw = softmax_rows(&logits);
            let t = crate::evaluate::temperature_of(&self.manifest);
            (crate::evaluate::calibrate(&raw, t), raw)
        }
    }
}

/// `medai eval` on a text bundle: the bundle's own split when `data` is its training file, else
/// the file's split column, else every row (reported as split `all`). Binary thresholds are
/// chosen on the validation rows, as at training time.
pub fn eval(a: &crate::commands::EvalArgs) -> Result<()> {
    let loaded = load(&a.model, &a.device)?;
    let p = &loaded.prep;
    let m = &loaded.manifest;
    let opts = ReadOptions {
        text_column: p.text_column.clone(),
        label_column: Some(p.label_column.clone()),
        split_column: p.split_column.clone(),
        label_separator: p.label_separator,
        delimiter: None,
    };
    // Another file may lack the split column: then every row is scored.
    let ds = match TextDataset::read(&a.data, &opts) {
        Err(medai_text::TextError::MissingColumn { column, .. })
            if Some(&column) == p.split_column.as_ref() =>
        {
            TextDataset::read(
                &a.data,
                &ReadOptions {
                    split_column: None,
                    ..opts.clone()
                },
            )?
        }
        other => other?,
    };
    let labels = LabelSet {
        names: m.classes.clone(),
    };
    let same_file = file_sha256(&a.data)? == m.dataset.fingerprint;
    let recorded = |s: &str| -> BTreeSet<u64> {
        m.training["splits"][s]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_u64())
            .collect()
    };
    let (test_lines, val_lines) = (recorded("test"), recorded("val"));
    let split_of = |r: &TextRecord| -> &'static str {
        if same_file {
            if test_lines.contains(&r.line) {
                "test"
            } else if val_lines.contains(&r.line) {
                "val"
            } else {
                "train"
            }
        } else {
            match r.split {
                Some(SplitName::Test) => "test",
                Some(SplitName::Val) => "val",
                Some(SplitName::Train) => "train",
                None => "all",
            }
        }
    };
    let want = a.split.as_str();
    if !["test", "val", "train", "all"].contains(&want) {
        bail!("--split {want:?}: expected test, val, train or all");
    }
    let splits: Vec<&str> = ds.records.iter().map(split_of).collect();
    let unsplit = splits.iter().all(|s| *s == "all");
    let rows: Vec<usize> = (0..ds.records.len())
        .filter(|&r| want == "all" || unsplit || splits[r] == want)
        .collect();
    if rows.is_empty() {
        bail!("{}: no rows in split {want:?}", a.data.display());
    }
    let split_name = if unsplit { "all" } else { want };
    let encode = |rows: &[usize]| -> Vec<Encoded> {
        rows.iter()
            .map(|&r| loaded.tokenizer.encode(&ds.records[r].text, p.max_len))
            .collect()
    };
    let docs = encode(&rows);
    let refs: Vec<&Encoded> = docs.iter().collect();
    let t0 = std::time::Instant::now();
    let (served, raw) = loaded.probabilities(&refs);
    let secs = t0.elapsed().as_secs_f64();
    let mut v = if loaded.multi() {
        let mut y = Vec::new();
        for &r in &rows {
            let mut h = vec![0f32; labels.names.len()];
            for i in labels.encode(&ds.records[r], &ds.path)? {
                h[i] = 1.0;
            }
            y.push(h);
        }
        multilabel_summary(&labels.names, split_name, &y, &served)?
    } else {
        let class_of = |rows: &[usize]| -> Result<Vec<usize>> {
            rows.iter()
                .map(|&r| Ok(labels.encode(&ds.records[r], &ds.path)?[0]))
                .collect()
        };
        let y = class_of(&rows)?;
        // Thresholds come from the validation rows unless validation is what is evaluated.
        let val_rows: Vec<usize> = if split_name == "val" || unsplit {
            Vec::new()
        } else {
            (0..ds.records.len())
                .filter(|&r| splits[r] == "val")
                .collect()
        };
        let val = if val_rows.is_empty() {
            None
        } else {
            let vd = encode(&val_rows);
            let vr: Vec<&Encoded> = vd.iter().collect();
            Some((class_of(&val_rows)?, loaded.probabilities(&vr).0))
        };
        let t = crate::evaluate::temperature_of(m);
        let threshold = a
            .threshold
            .or_else(|| m.training.get("threshold").and_then(|t| t.as_f64()))
            .unwrap_or(0.5);
        let seed = m.training["seed"].as_u64().unwrap_or(a.seed);
        let ev = evaluate_split(
            &labels.names,
            split_name,
            Scored {
                labels: &y,
                probs: &served,
            },
            Some(&raw),
            val.as_ref().map(|(labels, probs)| Scored { labels, probs }),
            t,
            &a.eval.options(threshold, seed)?,
        )?;
        if let Some(dir) = &a.report {
            crate::evaluate::write_report(
                dir,
                &ev,
                m,
                &a.model,
                &a.data,
                vec![("Documents".into(), rows.len().to_string())],
                Vec::new(),
                json!({"command": "eval"}),
            )?;
            eprintln!("Wrote {}", dir.join("report.html").display());
        }
        ev.summary()
    };
    if let Some(o) = v.as_object_mut() {
        o.insert("model".into(), json!(a.model.display().to_string()));
        o.insert(
            "docs_per_s".into(),
            json!(rows.len() as f64 / secs.max(1e-9)),
        );
    }
    match a.format {
        crate::commands::Format::Json => println!("{}", serde_json::to_string_pretty(&v)?),
        _ => print!(
            "{}",
            crate::report::metrics_table(split_name, &v, &m.classes)
        ),
    }
    Ok(())
}

/// The documents of `medai predict` on a text bundle: `--data` rows or whole text files.
fn predict_inputs(
    loaded: &LoadedText,
    files: &[PathBuf],
    data: Option<&Path>,
    text_column: Option<&str>,
) -> Result<Vec<(String, String)>> {
    if let Some(d) = data {
        let ds = TextDataset::read(
            d,
            &ReadOptions {
                text_column: text_column.unwrap_or(&loaded.prep.text_column).to_string(),
                label_column: None,
                split_column: None,
                label_separator: None,
                delimiter: None,
            },
        )?;
        Ok(ds
            .records
            .into_iter()
            .map(|r| (format!("line {}", r.line), r.text))
            .collect())
    } else if files.is_empty() {
        bail!("give text files, or --data F with a text column");
    } else {
        files
            .iter()
            .map(|f| {
                let bytes = std::fs::read(f).map_err(|e| anyhow!("{}: {e}", f.display()))?;
                let text = String::from_utf8(bytes).map_err(|e| {
                    anyhow!(
                        "{}: not UTF-8 text (invalid byte at offset {})",
                        f.display(),
                        e.utf8_error().valid_up_to()
                    )
                })?;
                if text.trim().is_empty() {
                    bail!("{}: the file has no text", f.display());
                }
                Ok((f.display().to_string(), text))
            })
            .collect()
    }
}

/// `medai predict` on a text bundle: one row per document with the label and every class's
/// probability; `--explain` adds the most important tokens (terminal and HTML).
pub fn predict(a: &crate::commands::PredictArgs) -> Result<()> {
    let loaded = load(&a.model, &a.device)?;
    let inputs = predict_inputs(
        &loaded,
        &a.files,
        a.data.as_deref(),
        a.text_column.as_deref(),
    )?;
    let docs: Vec<Encoded> = inputs
        .iter()
        .map(|(_, t)| loaded.tokenizer.encode(t, loaded.prep.max_len))
        .collect();
    let refs: Vec<&Encoded> = docs.iter().collect();
    let t0 = std::time::Instant::now();
    let (probs, _) = loaded.probabilities(&refs);
    let secs = t0.elapsed().as_secs_f64();
    let classes = &loaded.manifest.classes;
    let multi = loaded.multi();
    // The class each document is explained for: the most probable one; with a single sigmoid
    // output, 1 when the label is predicted present.
    let predicted: Vec<usize> = probs
        .iter()
        .map(|p| {
            if p.len() == 1 {
                (p[0] >= 0.5) as usize
            } else {
                medai_nn::training::argmax(p)
            }
        })
        .collect();
    let p_of = |i: usize| probs[i][predicted[i].min(probs[i].len() - 1)];
    let label_of = |i: usize| -> String {
        if multi {
            let v: Vec<&str> = probs[i]
                .iter()
                .enumerate()
                .filter(|(_, p)| **p >= 0.5)
                .map(|(c, _)| classes[c].as_str())
                .collect();
            v.join(";")
        } else {
            classes[predicted[i]].clone()
        }
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["input".to_string(), "label".to_string()];
    header.extend(classes.iter().map(|c| format!("p_{c}")));
    w.write_record(&header)?;
    for (i, (src, _)) in inputs.iter().enumerate() {
        let mut rec = vec![src.clone(), label_of(i)];
        rec.extend(probs[i].iter().map(|p| format!("{p:.6}")));
        w.write_record(&rec)?;
    }
    let bytes = w.into_inner().map_err(|e| anyhow!("{e}"))?;
    match &a.out {
        Some(out) => {
            medai_nn::weights::write_atomic(out, &bytes)
                .map_err(|e| anyhow!("{}: {e}", out.display()))?;
            eprintln!(
                "Wrote {} ({} documents, {:.1} documents/s)",
                out.display(),
                inputs.len(),
                inputs.len() as f64 / secs.max(1e-9)
            );
        }
        None if !a.explain => print!("{}", String::from_utf8_lossy(&bytes)),
        None => {}
    }
    if a.explain {
        let (method, weights) = loaded.explain(&refs, &predicted)?;
        let mut html = String::new();
        for (i, (src, text)) in inputs.iter().enumerate() {
            let e = &docs[i];
            println!(
                "{src}: {} (p = {:.3}); top tokens by {method}: {}",
                label_of(i),
                p_of(i),
                top_tokens(e, &weights[i], 8)
            );
            println!("  {}", highlight_terminal(text, e, &weights[i]));
            html.push_str(&format!(
                "<section><h2>{}</h2><p class=\"pred\">{} — p = {:.3}</p><p class=\"doc\">{}</p></section>\n",
                escape(src),
                escape(&label_of(i)),
                p_of(i),
                highlight_html(text, e, &weights[i])
            ));
        }
        std::fs::create_dir_all(&a.explain_dir)
            .map_err(|e| anyhow!("{}: {e}", a.explain_dir.display()))?;
        let page = format!(
            "<!doctype html><meta charset=\"utf-8\"><title>medai text explanations</title>\
<style>body{{font:15px/1.6 system-ui,sans-serif;max-width:60em;margin:2em auto;color:#222}}\
mark{{padding:0 .1em;border-radius:.2em}}.pred{{font-weight:600}}</style>\
<h1>Explanations — {}</h1><p>Token importance by {method}: darker = more weight toward the predicted label.</p>\n{html}",
            escape(&loaded.manifest.name)
        );
        let out = a.explain_dir.join("explanations.html");
        crate::report::write_atomic(&out, page.as_bytes())?;
        eprintln!("Wrote {}", out.display());
    }
    Ok(())
}

/// Normalised positive weights (0..1) per token.
fn normalised(w: &[f32]) -> Vec<f32> {
    let m = w.iter().fold(0f32, |a, &b| a.max(b));
    w.iter()
        .map(|&x| if m > 0.0 { (x / m).max(0.0) } else { 0.0 })
        .collect()
}

fn top_tokens(e: &Encoded, w: &[f32], n: usize) -> String {
    let mut idx: Vec<usize> = (0..w.len().min(e.tokens.len()))
        .filter(|&i| e.spans.get(i).is_some_and(|s| s.is_some()))
        .collect();
    idx.sort_by(|&a, &b| w[b].total_cmp(&w[a]));
    idx.iter()
        .take(n)
        .map(|&i| format!("{} ({:.3})", e.tokens[i], w[i]))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Byte spans of `text` with a weight each (the tokens' spans; WordPiece pieces of one word
/// stay separate).
pub(crate) fn weighted_spans(e: &Encoded, w: &[f32]) -> Vec<((usize, usize), f32)> {
    let n = normalised(w);
    e.spans
        .iter()
        .zip(n)
        .filter_map(|(s, x)| s.map(|s| (s, x)))
        .collect()
}

fn highlight_terminal(text: &str, e: &Encoded, w: &[f32]) -> String {
    let mut out = String::new();
    let mut pos = 0;
    for ((s, t), x) in weighted_spans(e, w) {
        if s < pos || t > text.len() || !text.is_char_boundary(s) || !text.is_char_boundary(t) {
            continue;
        }
        out.push_str(&text[pos..s]);
        if x >= 0.5 {
            out.push_str(&format!("\x1b[1;30;43m{}\x1b[0m", &text[s..t]));
        } else if x >= 0.2 {
            out.push_str(&format!("\x1b[4m{}\x1b[0m", &text[s..t]));
        } else {
            out.push_str(&text[s..t]);
        }
        pos = t;
    }
    // Only the encoded (possibly truncated) part is shown.
    out
}

fn highlight_html(text: &str, e: &Encoded, w: &[f32]) -> String {
    let mut out = String::new();
    let mut pos = 0;
    for ((s, t), x) in weighted_spans(e, w) {
        if s < pos || t > text.len() || !text.is_char_boundary(s) || !text.is_char_boundary(t) {
            continue;
        }
        out.push_str(&escape(&text[pos..s]));
        if x > 0.05 {
            out.push_str(&format!(
                "<mark style=\"background:rgba(230,120,0,{:.2})\" title=\"{:.3}\">{}</mark>",
                x,
                x,
                escape(&text[s..t])
            ));
        } else {
            out.push_str(&escape(&text[s..t]));
        }
        pos = t;
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
