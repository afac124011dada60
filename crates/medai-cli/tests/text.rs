//! End-to-end tests of `medai train text`, `eval` and `predict` on text bundles: a synthetic
//! corpus whose label is carried by one keyword (so attention must find it), multi-label, a tiny
//! BERT checkpoint, and bad input that must give one clear error naming the row or field.

use serde_json::Value;
use std::path::{Path, PathBuf};

mod common;
use common::{err, http, ok, python_check, serve_start};

const FILLER: &[&str] = &[
    "patient",
    "presented",
    "with",
    "history",
    "of",
    "the",
    "and",
    "was",
    "admitted",
    "for",
    "evaluation",
    "after",
    "days",
    "noted",
    "on",
    "exam",
    "stable",
    "reports",
    "mild",
    "since",
];
const KEYS: &[(&str, &str)] = &[
    ("infection", "pneumonia"),
    ("cardiac", "infarction"),
    ("trauma", "fracture"),
];

/// A TSV corpus: each document is 12–30 filler words with its class keyword at a random place.
fn corpus(path: &Path, n_train: usize, n_test: usize, seed: u64) {
    let mut s = seed;
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 33) as usize
    };
    let mut out = String::from("doc_id\tsplit\tlabel\ttext\n");
    for i in 0..n_train + n_test {
        let (label, key) = KEYS[i % KEYS.len()];
        let len = 12 + next() % 19;
        let at = next() % len;
        let words: Vec<&str> = (0..len)
            .map(|j| {
                if j == at {
                    key
                } else {
                    FILLER[next() % FILLER.len()]
                }
            })
            .collect();
        let split = if i < n_train { "training" } else { "test" };
        out.push_str(&format!("{i}\t{split}\t{label}\t{}\n", words.join(" ")));
    }
    std::fs::write(path, out).unwrap();
}

/// `eval`'s summary equals the training-time one (apart from where the model is and its speed).
fn assert_same_summary(eval: &Value, train: &Value) {
    let strip = |v: &Value| {
        let mut o = v.as_object().unwrap().clone();
        o.remove("model");
        o.remove("docs_per_s");
        o
    };
    assert_eq!(strip(eval), strip(train));
}

fn word_args<'a>(data: &'a str, out: &'a str, arch: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "text",
        "--data",
        data,
        "--split-column",
        "split",
        "--arch",
        arch,
        "--epochs",
        "6",
        "--embed-dim",
        "16",
        "--hidden",
        "16",
        "--dropout",
        "0.1",
        "--batch-size",
        "16",
        "--lr",
        "0.01",
        "--min-freq",
        "1",
        "--quiet",
        "--out",
        out,
    ]
}

#[test]
fn train_text_eval_predict_explain() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("notes.tsv");
    corpus(&data, 240, 90, 7);
    let data = data.to_str().unwrap();
    let b = dir.path().join("notes.medai");
    let b = b.to_str().unwrap();
    ok(&word_args(data, b, "bigru-attn"));
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(Path::new(b).join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["task"], "text-classification");
    assert!(Path::new(b).join("vocab.json").is_file());
    let test = &manifest["metrics"]["test"];
    assert_eq!(test["n"], 90);
    assert!(test["accuracy"].as_f64().unwrap() > 0.9, "{test}");

    // eval on the test split reproduces the training-time figures.
    let v: Value = serde_json::from_str(&ok(&[
        "eval", "--model", b, "--data", data, "--split", "test", "--format", "json",
    ]))
    .unwrap();
    assert_eq!(v["n"], 90);
    assert_same_summary(&v, test);
    assert_eq!(v["confusion"].as_array().unwrap().len(), 3, "{v}");

    // predict --explain: the keyword carries the most attention.
    let doc = dir.path().join("doc.txt");
    std::fs::write(
        &doc,
        "patient was admitted for evaluation of a fracture after days",
    )
    .unwrap();
    let expl = dir.path().join("expl");
    let out = ok(&[
        "predict",
        "--model",
        b,
        doc.to_str().unwrap(),
        "--explain",
        "--explain-dir",
        expl.to_str().unwrap(),
    ]);
    assert!(out.contains("trauma"), "{out}");
    let top = out.split("top tokens by attention: ").nth(1).unwrap_or("");
    assert!(top.starts_with("fracture"), "{out}");
    let html = std::fs::read_to_string(expl.join("explanations.html")).unwrap();
    assert!(
        html.contains("<mark") && html.contains("fracture"),
        "{html}"
    );

    // A CSV of documents → predictions CSV with one probability column per class.
    let csv_in = dir.path().join("in.csv");
    std::fs::write(
        &csv_in,
        "text\nthe patient has pneumonia\n\"cardiac infarction, stable\"\n",
    )
    .unwrap();
    let pred = dir.path().join("pred.csv");
    ok(&[
        "predict",
        "--model",
        b,
        "--data",
        csv_in.to_str().unwrap(),
        "--out",
        pred.to_str().unwrap(),
    ]);
    let p = std::fs::read_to_string(&pred).unwrap();
    let lines: Vec<&str> = p.lines().collect();
    assert_eq!(lines[0], "input,label,p_cardiac,p_infection,p_trauma");
    assert!(lines[1].starts_with("line 2,infection,"), "{p}");
    assert!(lines[2].starts_with("line 3,cardiac,"), "{p}");

    // Served: the documents themselves in, the same probabilities as `medai predict`, over /v1
    // (with attention on the keyword) and through the Triton client (JSON and binary).
    let prob_rows: Vec<Vec<f64>> = lines[1..]
        .iter()
        .map(|l| {
            let cells: Vec<&str> = l.rsplitn(4, ',').collect();
            cells[..3]
                .iter()
                .rev()
                .map(|c| c.parse().unwrap())
                .collect()
        })
        .collect();
    let srv = serve_start(dir.path(), &[&format!("notes={b}")]);
    let auth = srv.bearer();
    let th = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "text/plain"),
    ];
    let (status, body) = http(
        &srv.addr,
        "POST",
        "/v1/models/notes/predict?explain=true",
        &th,
        b"the patient has pneumonia",
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["label"], "infection");
    for (c, want) in ["cardiac", "infection", "trauma"].iter().zip(&prob_rows[0]) {
        let got = v["probabilities"][c].as_f64().unwrap();
        assert!(
            (got - want).abs() < 1e-5,
            "{c}: served {got}, predict {want}"
        );
    }
    assert_eq!(v["explanation"]["method"], "attention");
    let tokens = v["explanation"]["tokens"].as_array().unwrap();
    let top = tokens
        .iter()
        .max_by(|a, b| {
            a["weight"]
                .as_f64()
                .partial_cmp(&b["weight"].as_f64())
                .unwrap()
        })
        .unwrap();
    assert_eq!(top["token"], "pneumonia", "{tokens:?}");
    assert_eq!(
        (top["start"].as_u64(), top["end"].as_u64()),
        (Some(16), Some(25))
    );
    srv.triton_strings_check(
        dir.path(),
        "notes",
        serde_json::json!({"inputs": ["the patient has pneumonia", "cardiac infarction, stable"],
            "outputs": {"probabilities": prob_rows, "label": ["infection", "cardiac"]}}),
    );
    python_check(
        "selenium",
        &[
            "tests/serve/page_check.py",
            &format!("http://{}", srv.addr),
            &srv.token,
            "text:the patient was admitted with a fracture",
        ],
    );
    srv.stop();

    // A binary model: eval chooses its operating points on the recorded validation rows, as
    // training did, so every figure matches.
    let two = dir.path().join("two.tsv");
    let kept: String = std::fs::read_to_string(data)
        .unwrap()
        .lines()
        .filter(|l| !l.contains("\ttrauma\t"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&two, kept).unwrap();
    let b2 = dir.path().join("two.medai");
    ok(&word_args(
        two.to_str().unwrap(),
        b2.to_str().unwrap(),
        "bigru-attn",
    ));
    let m2: Value =
        serde_json::from_str(&std::fs::read_to_string(b2.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m2["label_mode"], "binary");
    let v2: Value = serde_json::from_str(&ok(&[
        "eval",
        "--model",
        b2.to_str().unwrap(),
        "--data",
        two.to_str().unwrap(),
        "--split",
        "test",
        "--format",
        "json",
    ]))
    .unwrap();
    assert_same_summary(&v2, &m2["metrics"]["test"]);

    // The CNN (here with label smoothing) and the LSTM train through the same command.
    for arch in ["cnn", "bilstm-attn"] {
        let o = dir.path().join(format!("{arch}.medai"));
        let mut args = word_args(data, o.to_str().unwrap(), arch);
        if arch == "cnn" {
            args.extend(["--label-smoothing", "0.1"]);
        }
        ok(&args);
        let m: Value =
            serde_json::from_str(&std::fs::read_to_string(o.join("manifest.json")).unwrap())
                .unwrap();
        let smoothing = &m["training"]["config"]["label_smoothing"];
        if arch == "cnn" {
            assert_eq!(smoothing, 0.1);
        } else {
            assert!(smoothing.is_null(), "{smoothing}");
        }
        assert!(
            m["metrics"]["test"]["accuracy"].as_f64().unwrap() > 0.8,
            "{arch}: {}",
            m["metrics"]["test"]
        );
    }
}

#[test]
fn multilabel_text() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = String::from("text,labels\n");
    for i in 0..200 {
        let a = i % 2 == 0;
        let c = i % 3 == 0;
        let mut words = vec!["note", "of", "the", "day"];
        let mut labels = Vec::new();
        if a {
            words.push("asthma");
            labels.push("respiratory");
        }
        if c {
            words.push("diabetes");
            labels.push("endocrine");
        }
        if labels.is_empty() {
            words.push("routine");
            labels.push("other");
        }
        words.rotate_left(i % 4);
        s.push_str(&format!("{},{}\n", words.join(" "), labels.join(";")));
    }
    let data = dir.path().join("ml.csv");
    std::fs::write(&data, s).unwrap();
    // GloVe-format vectors for part of the vocabulary initialise the embedding layer.
    let glove = dir.path().join("glove.txt");
    let vec16 = |seed: usize| -> String {
        (0..16)
            .map(|k| format!("{:.3}", ((seed * 31 + k * 7) % 13) as f32 / 13.0 - 0.5))
            .collect::<Vec<_>>()
            .join(" ")
    };
    std::fs::write(
        &glove,
        format!(
            "asthma {}\ndiabetes {}\nunrelated {}\n",
            vec16(1),
            vec16(2),
            vec16(3)
        ),
    )
    .unwrap();
    let b = dir.path().join("ml.medai");
    ok(&[
        "train",
        "text",
        "--data",
        data.to_str().unwrap(),
        "--label-column",
        "labels",
        "--label-separator",
        ";",
        "--arch",
        "cnn",
        "--epochs",
        "1",
        "--embed-dim",
        "16",
        "--word-vectors",
        glove.to_str().unwrap(),
        "--min-freq",
        "1",
        "--quiet",
        "--out",
        b.to_str().unwrap(),
    ]);
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(b.join("manifest.json")).unwrap()).unwrap();
    assert!(
        m["training"]["load"]
            .as_str()
            .unwrap()
            .contains("2 with pretrained vectors"),
        "{}",
        m["training"]["load"]
    );
    let e = err(&[
        "train",
        "text",
        "--data",
        data.to_str().unwrap(),
        "--label-column",
        "labels",
        "--label-separator",
        ";",
        "--word-vectors",
        glove.to_str().unwrap(),
        "--embed-dim",
        "8",
        "--quiet",
        "--out",
        dir.path().join("x.medai").to_str().unwrap(),
    ]);
    assert!(
        e.contains("glove.txt") && e.contains("16") && e.contains("8"),
        "{e}"
    );
    ok(&[
        "train",
        "text",
        "--data",
        data.to_str().unwrap(),
        "--label-column",
        "labels",
        "--label-separator",
        ";",
        "--arch",
        "cnn",
        "--epochs",
        "8",
        "--embed-dim",
        "16",
        "--dropout",
        "0.1",
        "--batch-size",
        "16",
        "--lr",
        "0.01",
        "--min-freq",
        "1",
        "--ema",
        "0.9",
        "--quiet",
        "--out",
        b.to_str().unwrap(),
    ]);
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(b.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["label_mode"], "multilabel");
    // The weight average is what was validated and exported.
    assert_eq!(m["training"]["config"]["ema"], 0.9);
    let t = &m["metrics"]["test"];
    assert!(t["auc_macro"].as_f64().unwrap() > 0.95, "{t}");
}

fn tiny_bert() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../medai-nn/tests/fixtures/tiny_bert")
}

#[test]
fn bert_fine_tunes_from_a_checkpoint_and_explains_by_gradient() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("notes.tsv");
    corpus(&data, 120, 30, 11);
    let b = dir.path().join("bert.medai");
    let ckpt = tiny_bert();
    ok(&[
        "train",
        "text",
        "--data",
        data.to_str().unwrap(),
        "--split-column",
        "split",
        "--arch",
        "bert",
        "--pretrained",
        ckpt.to_str().unwrap(),
        "--max-len",
        "48",
        "--epochs",
        "2",
        "--lr",
        "0.001",
        "--batch-size",
        "16",
        "--quiet",
        "--out",
        b.to_str().unwrap(),
    ]);
    assert!(b.join("tokenizer.json").is_file());
    let doc = dir.path().join("doc.txt");
    std::fs::write(&doc, "patient presented with pneumonia").unwrap();
    let out = ok(&[
        "predict",
        "--model",
        b.to_str().unwrap(),
        doc.to_str().unwrap(),
        "--explain",
        "--explain-dir",
        dir.path().join("e").to_str().unwrap(),
    ]);
    assert!(out.contains("top tokens by gradient × input"), "{out}");

    // A checkpoint whose shapes do not match its config names the tensor.
    let bad = dir.path().join("bad_ckpt");
    std::fs::create_dir(&bad).unwrap();
    for f in std::fs::read_dir(&ckpt).unwrap() {
        let f = f.unwrap().path();
        if f.is_file() {
            std::fs::copy(&f, bad.join(f.file_name().unwrap())).unwrap();
        }
    }
    let cfg = std::fs::read_to_string(bad.join("config.json")).unwrap();
    let cfg = cfg.replace("\"intermediate_size\": 37", "\"intermediate_size\": 40");
    std::fs::write(bad.join("config.json"), cfg).unwrap();
    let e = err(&[
        "train",
        "text",
        "--data",
        data.to_str().unwrap(),
        "--split-column",
        "split",
        "--arch",
        "bert",
        "--pretrained",
        bad.to_str().unwrap(),
        "--quiet",
        "--out",
        dir.path().join("x.medai").to_str().unwrap(),
    ]);
    assert!(
        e.contains("intermediate.dense.weight") && e.contains("37"),
        "{e}"
    );
}

#[test]
fn bad_text_input_gives_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let w = |name: &str, bytes: &[u8]| -> String {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_str().unwrap().to_string()
    };
    let out = dir.path().join("o.medai");
    let out = out.to_str().unwrap();
    let train = |data: &str| -> String {
        err(&[
            "train",
            "text",
            "--data",
            data,
            "--split-column",
            "split",
            "--epochs",
            "1",
            "--val-fraction",
            "0.5",
            "--quiet",
            "--out",
            out,
        ])
    };
    let good = "split\tlabel\ttext\ntraining\ta\tone two\ntraining\tb\tthree four\ntraining\ta\tone five\ntraining\tb\tthree six\n";
    // Empty text.
    let e = train(&w("empty.tsv", format!("{good}test\ta\t   \n").as_bytes()));
    assert!(
        e.contains("empty.tsv") && e.contains("line 6") && e.contains("text"),
        "{e}"
    );
    // A label in the test split that training never saw.
    let e = train(&w(
        "unknown.tsv",
        format!("{good}test\tzebra\tone two\n").as_bytes(),
    ));
    assert!(e.contains("line 6") && e.contains("zebra"), "{e}");
    // Non-UTF-8 bytes.
    let mut bytes = good.as_bytes().to_vec();
    bytes.extend_from_slice(b"test\ta\tcaf\xe9 au lait\n");
    let e = train(&w("latin1.tsv", &bytes));
    assert!(e.contains("line 6") && e.contains("UTF-8"), "{e}");
    // Missing column.
    let e = err(&[
        "train",
        "text",
        "--data",
        &w("ok.tsv", good.as_bytes()),
        "--text-column",
        "note",
        "--quiet",
        "--out",
        out,
    ]);
    assert!(e.contains("note") && e.contains("ok.tsv"), "{e}");
    // A weight-average momentum outside [0, 1).
    let e = err(&[
        "train",
        "text",
        "--data",
        &w("ok.tsv", good.as_bytes()),
        "--ema",
        "1.5",
        "--quiet",
        "--out",
        out,
    ]);
    assert!(e.contains("--ema 1.5") && e.contains("[0, 1)"), "{e}");
    // Label smoothing outside [0, 1), or on multi-label data.
    let e = err(&[
        "train",
        "text",
        "--data",
        &w("ok.tsv", good.as_bytes()),
        "--label-smoothing",
        "1.5",
        "--quiet",
        "--out",
        out,
    ]);
    assert!(
        e.contains("--label-smoothing 1.5") && e.contains("[0, 1)"),
        "{e}"
    );
    let e = err(&[
        "train",
        "text",
        "--data",
        &w("ok.tsv", good.as_bytes()),
        "--label-separator",
        ";",
        "--label-smoothing",
        "0.1",
        "--quiet",
        "--out",
        out,
    ]);
    assert!(e.contains("single-label"), "{e}");
    assert!(!Path::new(out).exists());
}
