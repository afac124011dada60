//! Text networks against PyTorch: the fused bidirectional GRU/LSTM layer reproduces
//! `nn.GRU`/`nn.LSTM(bidirectional=True)` over packed (variable-length) sequences, and the text
//! models' explanations behave (attention sums to 1 over real tokens, gradient × input is zero
//! at padding).

use burn::prelude::*;
use medai_nn::text::{BiRecurrent, TextArch, TextInput, TextModelConfig, reverse_index};
use serde_json::Value;

fn fixture() -> Value {
    let p = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/rnn/birnn.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    match v {
        Value::Array(a) => a.iter().flat_map(floats).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap() as f32],
        _ => panic!("not a number array"),
    }
}

#[test]
fn birecurrent_matches_pytorch_packed_bidirectional_rnns() {
    let device = Device::default();
    for kind in ["gru", "lstm"] {
        let f = &fixture()[kind];
        let (e, h) = (
            f["input"].as_u64().unwrap() as usize,
            f["hidden"].as_u64().unwrap() as usize,
        );
        let lengths: Vec<usize> = f["lengths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let w = |n: &str| floats(&f["weights"][n]);
        let (wi0, wi1, wh0, wh1) = (
            w("weight_ih_l0"),
            w("weight_ih_l0_reverse"),
            w("weight_hh_l0"),
            w("weight_hh_l0_reverse"),
        );
        let (bi0, bi1, bh0, bh1) = (
            w("bias_ih_l0"),
            w("bias_ih_l0_reverse"),
            w("bias_hh_l0"),
            w("bias_hh_l0_reverse"),
        );
        let layer = BiRecurrent::from_pytorch(
            e,
            h,
            kind == "lstm",
            [&wi0, &wi1],
            [&wh0, &wh1],
            [&bi0, &bi1],
            [&bh0, &bh1],
            &device,
        )
        .unwrap();
        let x = floats(&f["x"]);
        let b = lengths.len();
        let t = x.len() / (b * e);
        let xt = Tensor::<3>::from_data(TensorData::new(x, [b, t, e]), &device);
        let rev = Tensor::<1, Int>::from_data(
            TensorData::new(reverse_index(&lengths, t), [b * t]),
            &device,
        );
        let y: Vec<f32> = layer
            .forward(xt, rev, &lengths)
            .into_data()
            .convert::<f32>()
            .try_into_vec()
            .unwrap();
        let want = floats(&f["out"]);
        let mut max = 0f32;
        for (bi, &l) in lengths.iter().enumerate() {
            for ti in 0..l {
                for k in 0..2 * h {
                    let i = (bi * t + ti) * 2 * h + k;
                    max = max.max((y[i] - want[i]).abs());
                }
            }
        }
        assert!(max < 1e-5, "{kind}: max abs error {max}");
    }
}

#[test]
fn attention_and_gradient_explanations_ignore_padding() {
    let device = Device::default();
    for arch in [TextArch::BigruAttn, TextArch::Cnn] {
        let mut cfg = TextModelConfig::word(arch, 30, 3);
        cfg.embed_dim = 8;
        cfg.hidden = 6;
        cfg.attn_dim = 6;
        cfg.filters = 4;
        let model = medai_nn::text::inference(&cfg.init(&device).unwrap());
        let docs: Vec<medai_text::Encoded> = [vec![2u32, 5, 7, 9, 11, 3], vec![4, 6, 8]]
            .into_iter()
            .map(|ids| medai_text::Encoded {
                type_ids: vec![0; ids.len()],
                tokens: ids.iter().map(|i| i.to_string()).collect(),
                spans: vec![None; ids.len()],
                ids,
            })
            .collect();
        let refs: Vec<&medai_text::Encoded> = docs.iter().collect();
        // The short document alone and padded in a batch give the same logits.
        let alone = medai_nn::text::predict_logits(&model, &refs[1..], 0, &device);
        let batched = medai_nn::text::predict_logits(&model, &refs, 0, &device);
        for (a, b) in alone[0].iter().zip(&batched[1]) {
            assert!((a - b).abs() < 1e-5, "{arch:?}: {a} vs {b}");
        }
        if arch == TextArch::BigruAttn {
            let a = medai_nn::text::attention_weights(&model, &refs, 0, &device).unwrap();
            assert_eq!(a[1].len(), 3);
            for w in &a {
                assert!((w.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{w:?}");
            }
        }
        let g = medai_nn::text::grad_x_input(&model, &refs, &[0, 2], 0, &device).unwrap();
        assert_eq!((g[0].len(), g[1].len()), (6, 3));
        assert!(g.iter().flatten().any(|v| v.abs() > 0.0));
        // A single-document batch: no padding at all, same attributions as in the batch.
        let g1 = medai_nn::text::grad_x_input(&model, &refs[1..], &[2], 0, &device).unwrap();
        for (a, b) in g1[0].iter().zip(&g[1]) {
            assert!((a - b).abs() < 1e-4, "{arch:?}: {a} vs {b}");
        }
        let _ = TextInput::new(&refs, 0, 5, &device);
    }
}
