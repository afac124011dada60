//! Molecular property prediction: chemprop's directed message-passing network (D-MPNN).
//!
//! Hidden states live on directed bonds. With `x_v` the atom features and `e_vw` the bond
//! features:
//!
//! - `h⁰_vw = W_i [x_v ; e_vw]`, `h_vw = ReLU(h⁰_vw)`;
//! - `depth − 1` times: `m_vw = Σ_{k→v} h_kv − h_wv`, `h_vw = ReLU(h⁰_vw + W_h m_vw)`;
//! - atoms: `h_v = ReLU(W_o [x_v ; Σ_{k→v} h_kv])`; molecule: mean, sum or sum/norm of `h_v`;
//! - a feed-forward head (optionally after extra molecule-level features) gives one output per
//!   task: a standardised value (regression) or a logit (classification).
//!
//! Training goes through the one trainer with [`MolSource`] and [`MolObjective`] (masked MSE or
//! masked binary cross-entropy: blank labels do not count). [`MpnnEnsemble`] holds several
//! members; its spread is the uncertainty estimate.

use crate::TrainError;
use crate::training::{BatchFn, BatchSource, Network, Objective, Split, Validation};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::IndexingUpdateOp;
use burn::tensor::activation::relu;
use medai_chem::{ATOM_FDIM, BOND_FDIM, MolGraph};
use serde::{Deserialize, Serialize};

/// How atom states become a molecule state.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregation {
    /// Mean over atoms.
    Mean,
    /// Sum over atoms.
    Sum,
    /// Sum divided by a constant (chemprop's `norm`, 100).
    Norm,
}

/// The task kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MolTask {
    /// Real-valued targets, standardised for training.
    Regression,
    /// Binary labels (0/1) per task.
    Classification,
}

/// Everything needed to rebuild the network (stored in the bundle).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MpnnConfig {
    /// Hidden size of the bond messages.
    pub hidden: usize,
    /// Message-passing depth.
    pub depth: usize,
    /// Hidden size of the feed-forward head.
    pub ffn_hidden: usize,
    /// Hidden layers of the head.
    pub ffn_layers: usize,
    /// Outputs (tasks).
    pub tasks: usize,
    /// Extra molecule-level features fed to the head.
    pub extra_features: usize,
    /// Atom → molecule aggregation.
    pub aggregation: Aggregation,
    /// Members of the ensemble.
    pub ensemble: usize,
}

impl MpnnConfig {
    /// chemprop's defaults (hidden 300, depth 3, one 300-wide head layer, norm aggregation).
    pub fn new(tasks: usize, extra_features: usize) -> MpnnConfig {
        MpnnConfig {
            hidden: 300,
            depth: 3,
            ffn_hidden: 300,
            ffn_layers: 1,
            tasks,
            extra_features,
            aggregation: Aggregation::Norm,
            ensemble: 1,
        }
    }

    /// One member with random weights.
    pub fn init(&self, device: &Device) -> Mpnn {
        let mut ffn = Vec::new();
        let mut width = self.hidden + self.extra_features;
        for _ in 0..self.ffn_layers {
            ffn.push(LinearConfig::new(width, self.ffn_hidden).init(device));
            width = self.ffn_hidden;
        }
        ffn.push(LinearConfig::new(width, self.tasks).init(device));
        Mpnn {
            w_i: LinearConfig::new(ATOM_FDIM + BOND_FDIM, self.hidden)
                .with_bias(false)
                .init(device),
            w_h: LinearConfig::new(self.hidden, self.hidden)
                .with_bias(false)
                .init(device),
            w_o: LinearConfig::new(ATOM_FDIM + self.hidden, self.hidden).init(device),
            ffn,
            depth: self.depth,
            hidden: self.hidden,
            aggregation: match self.aggregation {
                Aggregation::Mean => 0,
                Aggregation::Sum => 1,
                Aggregation::Norm => 2,
            },
        }
    }

    /// The ensemble with random weights (member `k` is initialised after `k` others).
    pub fn init_ensemble(&self, device: &Device) -> MpnnEnsemble {
        MpnnEnsemble {
            members: (0..self.ensemble.max(1))
                .map(|_| self.init(device))
                .collect(),
        }
    }
}

/// One D-MPNN (see the module docs).
#[derive(Module, Debug)]
pub struct Mpnn {
    w_i: Linear,
    w_h: Linear,
    w_o: Linear,
    ffn: Vec<Linear>,
    depth: usize,
    hidden: usize,
    aggregation: usize,
}

/// A batch of molecules as tensors.
#[derive(Clone, Debug)]
pub struct MolInput {
    atoms: Tensor<2>,
    bonds: Tensor<2>,
    src: Tensor<1, Int>,
    dst: Tensor<1, Int>,
    rev: Tensor<1, Int>,
    atom_mol: Tensor<1, Int>,
    /// `[molecules, 1]`: 1 / atoms per molecule (mean) or 1 / 100 (norm) or 1 (sum), per mode.
    inv_atoms: Tensor<2>,
    extra: Option<Tensor<2>>,
    n_mols: usize,
    /// First atom of each molecule, then the atom count (`n_mols + 1` entries).
    atom_start: Vec<usize>,
    /// First directed bond of each molecule, then the bond count.
    edge_start: Vec<usize>,
}

impl MolInput {
    /// Pack graphs (and their extra features, if any) into one disconnected graph.
    pub fn new(graphs: &[&MolGraph], extra: &[&[f32]], device: &Device) -> MolInput {
        let n_atoms: usize = graphs.iter().map(|g| g.n_atoms).sum();
        let n_edges: usize = graphs.iter().map(|g| g.n_edges()).sum();
        let mut atoms = Vec::with_capacity(n_atoms * ATOM_FDIM);
        let mut bonds = Vec::with_capacity(n_edges * BOND_FDIM);
        let (mut src, mut dst, mut rev) = (
            Vec::with_capacity(n_edges),
            Vec::with_capacity(n_edges),
            Vec::with_capacity(n_edges),
        );
        let mut atom_mol = Vec::with_capacity(n_atoms);
        let mut inv = Vec::with_capacity(graphs.len());
        let mut atom_start = Vec::with_capacity(graphs.len() + 1);
        let mut edge_start = Vec::with_capacity(graphs.len() + 1);
        let (mut a0, mut e0) = (0i64, 0i64);
        for (m, g) in graphs.iter().enumerate() {
            atom_start.push(a0 as usize);
            edge_start.push(e0 as usize);
            atoms.extend_from_slice(&g.atom_features);
            bonds.extend_from_slice(&g.bond_features);
            for e in 0..g.n_edges() {
                src.push(a0 + g.src[e] as i64);
                dst.push(a0 + g.dst[e] as i64);
                rev.push(e0 + (e ^ 1) as i64);
            }
            atom_mol.extend(std::iter::repeat_n(m as i64, g.n_atoms));
            inv.push(1.0 / g.n_atoms.max(1) as f32);
            a0 += g.n_atoms as i64;
            e0 += g.n_edges() as i64;
        }
        atom_start.push(a0 as usize);
        edge_start.push(e0 as usize);
        let ints = |v: Vec<i64>| {
            let n = v.len();
            Tensor::<1, Int>::from_data(TensorData::new(v, [n]), device)
        };
        let n = graphs.len();
        let extra = if extra.is_empty() || extra[0].is_empty() {
            None
        } else {
            let f = extra[0].len();
            let flat: Vec<f32> = extra.iter().flat_map(|r| r.iter().copied()).collect();
            Some(Tensor::<2>::from_data(
                TensorData::new(flat, [n, f]),
                device,
            ))
        };
        MolInput {
            atoms: Tensor::from_data(TensorData::new(atoms, [n_atoms, ATOM_FDIM]), device),
            bonds: Tensor::from_data(TensorData::new(bonds, [n_edges, BOND_FDIM]), device),
            src: ints(src),
            dst: ints(dst),
            rev: ints(rev),
            atom_mol: ints(atom_mol),
            inv_atoms: Tensor::from_data(TensorData::new(inv, [n, 1]), device),
            extra,
            n_mols: n,
            atom_start,
            edge_start,
        }
    }

    /// Molecules `rows` (a non-empty range of this batch) as a disconnected graph of their own
    /// on `device`, with atom, bond and molecule indices renumbered from 0: one shard of a
    /// data-parallel step.
    pub fn shard(&self, rows: std::ops::Range<usize>, device: &Device) -> MolInput {
        use crate::training::{shard_int_rows, shard_rows};
        let (a0, a1) = (self.atom_start[rows.start], self.atom_start[rows.end]);
        let (e0, e1) = (self.edge_start[rows.start], self.edge_start[rows.end]);
        let float = |t: &Tensor<2>, r: std::ops::Range<usize>| {
            if r.is_empty() {
                let f = t.dims()[1];
                Tensor::from_data(TensorData::new(Vec::<f32>::new(), [0, f]), device)
            } else {
                shard_rows(t, r, device)
            }
        };
        let int = |t: &Tensor<1, Int>, r: std::ops::Range<usize>, base: usize| {
            if r.is_empty() {
                Tensor::from_data(TensorData::new(Vec::<i64>::new(), [0]), device)
            } else {
                shard_int_rows(t, r, device).sub_scalar(base as i64)
            }
        };
        let starts = |v: &[usize], base: usize| -> Vec<usize> {
            v[rows.start..=rows.end].iter().map(|s| s - base).collect()
        };
        MolInput {
            atoms: float(&self.atoms, a0..a1),
            bonds: float(&self.bonds, e0..e1),
            src: int(&self.src, e0..e1, a0),
            dst: int(&self.dst, e0..e1, a0),
            rev: int(&self.rev, e0..e1, e0),
            atom_mol: int(&self.atom_mol, a0..a1, rows.start),
            inv_atoms: shard_rows(&self.inv_atoms, rows.clone(), device),
            extra: self
                .extra
                .as_ref()
                .map(|e| shard_rows(e, rows.clone(), device)),
            n_mols: rows.len(),
            atom_start: starts(&self.atom_start, a0),
            edge_start: starts(&self.edge_start, e0),
        }
    }
}

impl Mpnn {
    /// Molecule embeddings `[molecules, hidden]`.
    pub fn embed(&self, x: &MolInput) -> Tensor<2> {
        let device = x.atoms.device();
        let n_atoms = x.atoms.dims()[0];
        let n_edges = x.bonds.dims()[0];
        let mut atom_sum = Tensor::<2>::zeros([n_atoms, self.hidden], &device);
        if n_edges > 0 {
            let h0 = self.w_i.forward(Tensor::cat(
                vec![x.atoms.clone().select(0, x.src.clone()), x.bonds.clone()],
                1,
            ));
            let mut h = relu(h0.clone());
            let incoming = |h: &Tensor<2>| {
                Tensor::<2>::zeros([n_atoms, self.hidden], &device).select_assign(
                    0,
                    x.dst.clone(),
                    h.clone(),
                    IndexingUpdateOp::Add,
                )
            };
            for _ in 1..self.depth {
                let m = incoming(&h).select(0, x.src.clone()) - h.clone().select(0, x.rev.clone());
                h = relu(h0.clone() + self.w_h.forward(m));
            }
            atom_sum = incoming(&h);
        }
        let hv = relu(
            self.w_o
                .forward(Tensor::cat(vec![x.atoms.clone(), atom_sum], 1)),
        );
        let mols = Tensor::<2>::zeros([x.n_mols, self.hidden], &device).select_assign(
            0,
            x.atom_mol.clone(),
            hv,
            IndexingUpdateOp::Add,
        );
        match self.aggregation {
            0 => mols * x.inv_atoms.clone(),
            1 => mols,
            _ => mols.div_scalar(100.0),
        }
    }

    /// Raw outputs `[molecules, tasks]`.
    pub fn forward(&self, x: &MolInput) -> Tensor<2> {
        let mut z = self.embed(x);
        if let Some(e) = &x.extra {
            z = Tensor::cat(vec![z, e.clone()], 1);
        }
        let last = self.ffn.len() - 1;
        for (k, l) in self.ffn.iter().enumerate() {
            z = l.forward(z);
            if k < last {
                z = relu(z);
            }
        }
        z
    }
}

impl Network for Mpnn {
    type Input = MolInput;
    fn outputs(&self, input: MolInput) -> Tensor<2> {
        self.forward(&input)
    }
}

/// Several independently initialised and trained members.
#[derive(Module, Debug)]
pub struct MpnnEnsemble {
    /// The members.
    pub members: Vec<Mpnn>,
}

impl MpnnEnsemble {
    /// Trainable parameters of all members.
    pub fn parameters(&self) -> usize {
        self.num_params()
    }
}

/// Per-task standardisation of regression targets (fitted on the training rows).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetScaler {
    /// Mean per task.
    pub mean: Vec<f64>,
    /// Standard deviation per task (1 where undefined).
    pub std: Vec<f64>,
}

impl TargetScaler {
    /// Fit on the present values of each task.
    pub fn fit(targets: &[Vec<Option<f64>>], tasks: usize) -> TargetScaler {
        let mut mean = vec![0.0; tasks];
        let mut std = vec![1.0; tasks];
        for t in 0..tasks {
            let v: Vec<f64> = targets.iter().filter_map(|r| r[t]).collect();
            if v.is_empty() {
                continue;
            }
            let m = v.iter().sum::<f64>() / v.len() as f64;
            let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64;
            mean[t] = m;
            std[t] = if var > 0.0 { var.sqrt() } else { 1.0 };
        }
        TargetScaler { mean, std }
    }

    /// Identity (classification).
    pub fn identity(tasks: usize) -> TargetScaler {
        TargetScaler {
            mean: vec![0.0; tasks],
            std: vec![1.0; tasks],
        }
    }
}

/// Graphs, extra features and (scaled) targets of the training and validation rows.
pub struct MolSource<'a> {
    graphs: &'a [MolGraph],
    extra: Vec<Vec<f32>>,
    /// Scaled targets per row (NaN: missing).
    targets: Vec<Vec<f32>>,
    train: Vec<usize>,
    val: Vec<usize>,
}

impl<'a> MolSource<'a> {
    /// `targets[row][task]` (`None`: missing) are scaled with `scaler`; `extra` are the
    /// molecule-level features (already standardised, or empty).
    pub fn new(
        graphs: &'a [MolGraph],
        targets: &[Vec<Option<f64>>],
        extra: &[Vec<f64>],
        scaler: &TargetScaler,
        train: Vec<usize>,
        val: Vec<usize>,
    ) -> MolSource<'a> {
        let targets = targets
            .iter()
            .map(|r| {
                r.iter()
                    .enumerate()
                    .map(|(t, v)| match v {
                        Some(v) => ((v - scaler.mean[t]) / scaler.std[t]) as f32,
                        None => f32::NAN,
                    })
                    .collect()
            })
            .collect();
        MolSource {
            graphs,
            extra: extra
                .iter()
                .map(|r| r.iter().map(|&v| v as f32).collect())
                .collect(),
            targets,
            train,
            val,
        }
    }

    fn rows(&self, split: Split) -> &[usize] {
        match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
        }
    }
}

/// Build the input of rows `rows` of `graphs` (with `extra` features when non-empty).
pub fn batch_input(
    graphs: &[MolGraph],
    extra: &[Vec<f32>],
    rows: &[usize],
    device: &Device,
) -> MolInput {
    let g: Vec<&MolGraph> = rows.iter().map(|&r| &graphs[r]).collect();
    let e: Vec<&[f32]> = if extra.is_empty() {
        Vec::new()
    } else {
        rows.iter().map(|&r| extra[r].as_slice()).collect()
    };
    MolInput::new(&g, &e, device)
}

impl BatchSource for MolSource<'_> {
    type Input = MolInput;
    type Target = Vec<f32>;
    fn targets(&self, split: Split) -> Vec<Vec<f32>> {
        self.rows(split)
            .iter()
            .map(|&r| self.targets[r].clone())
            .collect()
    }
    fn for_each_batch(
        &self,
        split: Split,
        order: &[usize],
        batch_size: usize,
        _epoch: u64,
        device: &Device,
        f: &mut BatchFn<'_, MolInput, Vec<f32>>,
    ) -> Result<(), TrainError> {
        let rows = self.rows(split);
        for chunk in order.chunks(batch_size.max(1)) {
            let r: Vec<usize> = chunk.iter().map(|&i| rows[i]).collect();
            let x = batch_input(self.graphs, &self.extra, &r, device);
            let y: Vec<Vec<f32>> = r.iter().map(|&i| self.targets[i].clone()).collect();
            f(x, &y)?;
        }
        Ok(())
    }
    fn shard(
        &self,
        input: &MolInput,
        rows: std::ops::Range<usize>,
        device: &Device,
    ) -> Option<MolInput> {
        Some(input.shard(rows, device))
    }
}

/// Masked loss over tasks: MSE on standardised values (regression) or binary cross-entropy on
/// logits (classification). Validation score: minus the RMSE in target units averaged over
/// tasks (regression), or the mean ROC-AUC over tasks with both classes (classification).
#[derive(Clone, Debug)]
pub struct MolObjective {
    /// Regression or classification.
    pub task: MolTask,
    /// Target scales (to report RMSE in target units).
    pub scaler: TargetScaler,
}

impl Objective for MolObjective {
    type Target = Vec<f32>;
    fn loss(&self, outputs: Tensor<2>, targets: &[Vec<f32>]) -> Tensor<1> {
        let device = outputs.device();
        let [b, t] = outputs.dims();
        let mask: Vec<f32> = targets
            .iter()
            .flatten()
            .map(|v| (!v.is_nan()) as u8 as f32)
            .collect();
        let y: Vec<f32> = targets
            .iter()
            .flatten()
            .map(|v| if v.is_nan() { 0.0 } else { *v })
            .collect();
        let count = mask.iter().sum::<f32>().max(1.0);
        let mask = Tensor::<2>::from_data(TensorData::new(mask, [b, t]), &device);
        let y = Tensor::<2>::from_data(TensorData::new(y, [b, t]), &device);
        let per = match self.task {
            MolTask::Regression => (outputs - y).powi_scalar(2),
            MolTask::Classification => {
                // log(1 + e^z) − y z, computed stably as relu(z) − y z + log(1 + e^−|z|).
                let z = outputs;
                relu(z.clone()) - z.clone() * y + z.abs().neg().exp().log1p()
            }
        };
        (per * mask).sum().div_scalar(count)
    }

    /// The loss is a mean over the present (non-missing) target values.
    fn shard_weight(&self, targets: &[Vec<f32>]) -> f64 {
        targets.iter().flatten().filter(|v| !v.is_nan()).count() as f64
    }

    fn validate(&self, outputs: &[Vec<f32>], targets: &[Vec<f32>]) -> Validation {
        let tasks = self.scaler.mean.len();
        let mut loss = 0.0;
        let mut count = 0usize;
        let mut scores = Vec::new();
        for t in 0..tasks {
            let pairs: Vec<(f64, f64)> = outputs
                .iter()
                .zip(targets)
                .filter(|(_, y)| !y[t].is_nan())
                .map(|(o, y)| (o[t] as f64, y[t] as f64))
                .collect();
            if pairs.is_empty() {
                continue;
            }
            match self.task {
                MolTask::Regression => {
                    let mse = pairs.iter().map(|(o, y)| (o - y).powi(2)).sum::<f64>()
                        / pairs.len() as f64;
                    loss += mse * pairs.len() as f64;
                    scores.push(-mse.sqrt() * self.scaler.std[t]);
                }
                MolTask::Classification => {
                    for (z, y) in &pairs {
                        loss += z.max(0.0) - z * y + (-z.abs()).exp().ln_1p();
                    }
                    let labels: Vec<usize> = pairs.iter().map(|(_, y)| *y as usize).collect();
                    let s: Vec<f64> = pairs.iter().map(|(z, _)| *z).collect();
                    if let Ok(auc) = medai_metrics::roc_auc(&labels, &s) {
                        scores.push(auc);
                    }
                }
            }
            count += pairs.len();
        }
        let score = if scores.is_empty() {
            f64::NEG_INFINITY
        } else {
            scores.iter().sum::<f64>() / scores.len() as f64
        };
        Validation {
            score,
            loss: loss / count.max(1) as f64,
            accuracy: None,
        }
    }
}

/// Molecules per forward pass when predicting.
pub const PREDICT_BATCH: usize = 256;

/// Predictions of one member for `rows` in target units: values (regression) or probabilities
/// (classification), `[row][task]`.
pub fn predict(
    model: &Mpnn,
    graphs: &[MolGraph],
    extra: &[Vec<f32>],
    rows: &[usize],
    task: MolTask,
    scaler: &TargetScaler,
    device: &Device,
) -> Vec<Vec<f64>> {
    let mut out = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(PREDICT_BATCH) {
        let x = batch_input(graphs, extra, chunk, device);
        let o = model.forward(&x);
        let [b, t] = o.dims();
        let v: Vec<f32> = o
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap_or_default();
        for i in 0..b {
            out.push(
                (0..t)
                    .map(|k| {
                        let z = v[i * t + k] as f64;
                        match task {
                            MolTask::Regression => z * scaler.std[k] + scaler.mean[k],
                            MolTask::Classification => 1.0 / (1.0 + (-z).exp()),
                        }
                    })
                    .collect(),
            );
        }
    }
    out
}

/// Mean and spread (population standard deviation) over members' predictions
/// (`[member][row][task]`), per row and task.
pub fn mean_and_spread(all: &[Vec<Vec<f64>>]) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let k = all.len().max(1) as f64;
    let mut mean = all[0].clone();
    let mut sd = all[0].clone();
    for (i, row) in mean.iter_mut().enumerate() {
        for (t, v) in row.iter_mut().enumerate() {
            let m = all.iter().map(|p| p[i][t]).sum::<f64>() / k;
            *v = m;
            sd[i][t] = (all.iter().map(|p| (p[i][t] - m).powi(2)).sum::<f64>() / k).sqrt();
        }
    }
    (mean, sd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use medai_chem::Mol;

    fn graphs(smiles: &[&str]) -> Vec<MolGraph> {
        smiles
            .iter()
            .map(|s| MolGraph::new(&Mol::from_smiles(s).unwrap()))
            .collect()
    }

    #[test]
    fn a_shard_is_the_packed_graph_of_its_molecules() {
        let device = Device::default();
        let mut cfg = MpnnConfig::new(2, 2);
        cfg.hidden = 8;
        cfg.ffn_hidden = 5;
        let m = cfg.init(&device);
        // Methane has no bonds: a shard of it alone has an empty bond list.
        let g = graphs(&["CCO", "C", "c1ccccc1", "CC(=O)N", "OC(=O)C(N)Cc1ccccc1"]);
        let extra: Vec<Vec<f32>> = (0..g.len())
            .map(|i| vec![i as f32, 1.0 - i as f32])
            .collect();
        let all: Vec<usize> = (0..g.len()).collect();
        let full = batch_input(&g, &extra, &all, &device);
        let ints = |t: &Tensor<1, Int>| t.clone().into_data().convert::<i64>().try_to_vec::<i64>();
        for rows in [0..2, 1..2, 2..5, 0..5] {
            let got = full.shard(rows.clone(), &device);
            let want = batch_input(&g, &extra, &rows.clone().collect::<Vec<_>>(), &device);
            for (a, b) in [
                (&got.src, &want.src),
                (&got.dst, &want.dst),
                (&got.rev, &want.rev),
                (&got.atom_mol, &want.atom_mol),
            ] {
                assert_eq!(ints(a).unwrap(), ints(b).unwrap(), "{rows:?}");
            }
            assert_eq!(
                (got.atom_start.clone(), got.edge_start.clone(), got.n_mols),
                (
                    want.atom_start.clone(),
                    want.edge_start.clone(),
                    want.n_mols
                )
            );
            let out = |x: &MolInput| m.forward(x).into_data().try_to_vec::<f32>().unwrap();
            assert_eq!(out(&got), out(&want), "{rows:?}");
        }
    }

    #[test]
    fn shard_weights_count_present_targets() {
        let o = MolObjective {
            task: MolTask::Classification,
            scaler: TargetScaler {
                mean: vec![0.0; 2],
                std: vec![1.0; 2],
            },
        };
        assert_eq!(o.shard_weight(&[vec![1.0, f32::NAN], vec![0.0, 1.0]]), 3.0);
    }

    #[test]
    fn messages_follow_the_dmpnn_equations() {
        // A host computation of the equations on a branched molecule against the tensor code.
        let device = Device::default();
        let mut cfg = MpnnConfig::new(1, 0);
        cfg.hidden = 4;
        cfg.ffn_hidden = 3;
        cfg.aggregation = Aggregation::Sum;
        let m = cfg.init(&device);
        let g = graphs(&["CC(O)C#N"]);
        let x = batch_input(&g, &[], &[0], &device);
        let got: Vec<f32> = m.embed(&x).into_data().try_into_vec().unwrap();
        // Reference on the host.
        let w = |l: &Linear| -> (Vec<f32>, usize, usize) {
            let [i, o] = l.weight.val().dims();
            (l.weight.val().into_data().try_into_vec().unwrap(), i, o)
        };
        let mv = |(w, i, o): &(Vec<f32>, usize, usize), x: &[f32]| -> Vec<f32> {
            (0..*o)
                .map(|c| (0..*i).map(|r| x[r] * w[r * o + c]).sum())
                .collect()
        };
        let r = |v: Vec<f32>| -> Vec<f32> { v.into_iter().map(|a| a.max(0.0)).collect() };
        let add =
            |a: &[f32], b: &[f32]| -> Vec<f32> { a.iter().zip(b).map(|(x, y)| x + y).collect() };
        let (wi, wh, wo) = (w(&m.w_i), w(&m.w_h), w(&m.w_o));
        let bo: Vec<f32> = m
            .w_o
            .bias
            .as_ref()
            .unwrap()
            .val()
            .into_data()
            .try_into_vec()
            .unwrap();
        let g = &g[0];
        let atom = |a: usize| g.atom_features[a * ATOM_FDIM..(a + 1) * ATOM_FDIM].to_vec();
        let bond = |e: usize| g.bond_features[e * BOND_FDIM..(e + 1) * BOND_FDIM].to_vec();
        let ne = g.n_edges();
        let h0: Vec<Vec<f32>> = (0..ne)
            .map(|e| mv(&wi, &[atom(g.src[e] as usize), bond(e)].concat()))
            .collect();
        let incoming = |h: &[Vec<f32>]| -> Vec<Vec<f32>> {
            let mut inc = vec![vec![0.0f32; 4]; g.n_atoms];
            for e in 0..ne {
                inc[g.dst[e] as usize] = add(&inc[g.dst[e] as usize], &h[e]);
            }
            inc
        };
        let mut h: Vec<Vec<f32>> = h0.iter().map(|v| r(v.clone())).collect();
        for _ in 1..cfg.depth {
            let inc = incoming(&h);
            h = (0..ne)
                .map(|e| {
                    let m: Vec<f32> = inc[g.src[e] as usize]
                        .iter()
                        .zip(&h[e ^ 1])
                        .map(|(a, b)| a - b)
                        .collect();
                    r(add(&h0[e], &mv(&wh, &m)))
                })
                .collect();
        }
        let inc = incoming(&h);
        let mut mol = vec![0.0f32; 4];
        for (a, inc_a) in inc.iter().enumerate() {
            let hv = r(add(&mv(&wo, &[atom(a), inc_a.clone()].concat()), &bo));
            mol = add(&mol, &hv);
        }
        for (a, b) in got.iter().zip(&mol) {
            assert!((a - b).abs() < 1e-5, "{got:?} vs {mol:?}");
        }
    }

    #[test]
    fn batching_does_not_mix_molecules() {
        let device = Device::default();
        let m = MpnnConfig::new(2, 0).init(&device);
        let g = graphs(&["CCO", "c1ccccc1O", "[Na+].[Cl-]", "C"]);
        let all: Vec<f32> = m
            .forward(&batch_input(&g, &[], &[0, 1, 2, 3], &device))
            .into_data()
            .try_into_vec()
            .unwrap();
        for i in 0..4 {
            let one: Vec<f32> = m
                .forward(&batch_input(&g, &[], &[i], &device))
                .into_data()
                .try_into_vec()
                .unwrap();
            for t in 0..2 {
                assert!((one[t] - all[i * 2 + t]).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn masked_labels_do_not_count() {
        let device = Device::default();
        let obj = MolObjective {
            task: MolTask::Classification,
            scaler: TargetScaler::identity(2),
        };
        let z = Tensor::<2>::from_data(
            TensorData::new(vec![2.0f32, -1.0, 0.5, 3.0], [2, 2]),
            &device,
        );
        let y = vec![vec![1.0, f32::NAN], vec![0.0, f32::NAN]];
        let got: f32 = obj.loss(z, &y).into_scalar();
        let bce = |z: f32, y: f32| z.max(0.0) - z * y + (-z.abs()).exp().ln_1p();
        let want = (bce(2.0, 1.0) + bce(0.5, 0.0)) / 2.0;
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }
}
