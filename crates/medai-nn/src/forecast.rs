//! The sequence forecaster: a GRU or LSTM encoder over the last `lookback` steps and a decoder
//! that reads, for each of the next `horizon` steps, the encoder state, an embedding of the
//! step's slot in the week, an embedding of the step number and the step's known-in-advance
//! features (covariates, weekly lags, level). It outputs two raw values per step that a count
//! likelihood ([`medai_forecast::Likelihood`]) turns into a mean and a dispersion, so its
//! intervals are the predictive distribution's quantiles.
//!
//! Training goes through the one trainer ([`crate::training::fit_objective`]) with
//! [`ForecastSource`] and [`CountObjective`]; [`NeuralForecaster`] plugs a trained network into
//! `medai-forecast`'s backtest and forecasts.

use crate::TrainError;
use crate::training::{BatchFn, BatchSource, Network, Objective, Split, Validation};
use burn::module::Param;
use burn::nn::{
    Embedding, EmbeddingConfig, Gru, GruConfig, Linear, LinearConfig, Lstm, LstmConfig,
};
use burn::prelude::*;
use burn::tensor::activation::{relu, softplus};
use medai_data::TimeSeries;
use medai_forecast::dist::{LOG_MEAN_CLAMP, MIN_ALPHA};
use medai_forecast::window::ENCODER_FEATURES;
use medai_forecast::{CountDist, ForecastError, Forecaster, Likelihood, Prediction, WindowSpec};
use serde::{Deserialize, Serialize};

/// The recurrent cell of the encoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cell {
    /// Gated recurrent unit.
    Gru,
    /// Long short-term memory.
    Lstm,
}

/// Everything needed to rebuild a forecasting network (stored in the bundle).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForecastNetConfig {
    /// Encoder cell.
    pub cell: Cell,
    /// Hidden size of the encoder.
    pub hidden: usize,
    /// Steps forecast at once.
    pub horizon: usize,
    /// Week slots (168 hourly, 7 daily).
    pub period: usize,
    /// Decoder features per step.
    pub decoder_features: usize,
    /// Width of the week-slot embedding.
    pub slot_dim: usize,
    /// Width of the step embedding.
    pub step_dim: usize,
    /// Width of the decoder's hidden layer.
    pub mlp: usize,
    /// Initial log-mean (the log of the training mean), so training starts at the right level.
    pub init_log_mean: f64,
}

impl ForecastNetConfig {
    /// Defaults for a window spec: GRU, hidden 32.
    pub fn for_spec(spec: &WindowSpec, cell: Cell, hidden: usize) -> Self {
        ForecastNetConfig {
            cell,
            hidden,
            horizon: spec.horizon,
            period: spec.period,
            decoder_features: spec.decoder_features(),
            slot_dim: 16,
            step_dim: 8,
            mlp: 64,
            init_log_mean: spec.mean.max(1e-3).ln(),
        }
    }

    /// Build the network with random weights.
    pub fn init(&self, device: &Device) -> ForecastNet {
        let (gru, lstm) = match self.cell {
            Cell::Gru => (
                Some(GruConfig::new(ENCODER_FEATURES, self.hidden, true).init(device)),
                None,
            ),
            Cell::Lstm => (
                None,
                Some(LstmConfig::new(ENCODER_FEATURES, self.hidden, true).init(device)),
            ),
        };
        // Zero-initialised but trained (`from_tensor` makes the parameter require gradients; a
        // `zeros_like` mapped into an existing one would not).
        let zero_slot = Embedding {
            weight: Param::from_tensor(Tensor::<2>::zeros([self.period, 2], device)),
        };
        ForecastNet {
            gru,
            lstm,
            slot: EmbeddingConfig::new(self.period, self.slot_dim).init(device),
            slot_direct: zero_slot,
            step: EmbeddingConfig::new(self.horizon, self.step_dim).init(device),
            direct: LinearConfig::new(self.decoder_features, 2).init(device),
            hidden: LinearConfig::new(
                self.hidden + self.slot_dim + self.step_dim + self.decoder_features,
                self.mlp,
            )
            .init(device),
            out: LinearConfig::new(self.mlp, 2).init(device),
            bias: Param::from_tensor(Tensor::<1>::from_data(
                TensorData::new(vec![self.init_log_mean as f32, -3.0], [2]),
                device,
            )),
            horizon: self.horizon,
        }
    }
}

/// The forecasting network (see the module docs).
#[derive(Module, Debug)]
pub struct ForecastNet {
    gru: Option<Gru>,
    lstm: Option<Lstm>,
    slot: Embedding,
    slot_direct: Embedding,
    step: Embedding,
    direct: Linear,
    hidden: Linear,
    out: Linear,
    bias: Param<Tensor<1>>,
    horizon: usize,
}

/// A batch of windows on the device.
#[derive(Clone, Debug)]
pub struct ForecastInput {
    /// `[b, lookback, ENCODER_FEATURES]`.
    pub encoder: Tensor<3>,
    /// `[b, horizon]` week slots.
    pub slots: Tensor<2, Int>,
    /// `[b, horizon, decoder_features]`.
    pub decoder: Tensor<3>,
}

impl ForecastInput {
    /// Rows `rows` of `w` as tensors on `device`.
    pub fn from_windows(
        w: &medai_forecast::Windows,
        spec: &WindowSpec,
        rows: &[usize],
        device: &Device,
    ) -> ForecastInput {
        let (l, h, nd) = (spec.lookback, spec.horizon, spec.decoder_features());
        let b = rows.len();
        let gather = |v: &[f32], per: usize| -> Vec<f32> {
            let mut out = Vec::with_capacity(b * per);
            for &r in rows {
                out.extend_from_slice(&v[r * per..(r + 1) * per]);
            }
            out
        };
        let mut slots = Vec::with_capacity(b * h);
        for &r in rows {
            slots.extend_from_slice(&w.slots[r * h..(r + 1) * h]);
        }
        ForecastInput {
            encoder: Tensor::from_data(
                TensorData::new(
                    gather(&w.encoder, l * ENCODER_FEATURES),
                    [b, l, ENCODER_FEATURES],
                ),
                device,
            ),
            slots: Tensor::from_data(TensorData::new(slots, [b, h]), device),
            decoder: Tensor::from_data(
                TensorData::new(gather(&w.decoder, h * nd), [b, h, nd]),
                device,
            ),
        }
    }
}

impl ForecastNet {
    /// Number of trainable values.
    pub fn parameters(&self) -> usize {
        self.num_params()
    }

    /// Raw outputs `[b, horizon, 2]`: log-mean and dispersion parameter per step.
    pub fn forward(&self, x: ForecastInput) -> Tensor<3> {
        let [b, l, _] = x.encoder.dims();
        let h = self.horizon;
        let state = match (&self.gru, &self.lstm) {
            (Some(g), _) => {
                let seq = g.forward(x.encoder, None);
                let d = seq.dims()[2];
                seq.slice([0..b, l - 1..l, 0..d])
            }
            (None, Some(m)) => m.forward(x.encoder, None).1.hidden.unsqueeze_dim(1),
            (None, None) => unreachable!("a forecast network has an encoder"),
        };
        let d = state.dims()[2];
        let state = state.expand([b, h, d]);
        let steps =
            self.step
                .weight
                .val()
                .unsqueeze_dim::<3>(0)
                .expand([b, h, self.step.weight.dims()[1]]);
        let slot_emb = self.slot.forward(x.slots.clone());
        let z = Tensor::cat(vec![state, slot_emb, steps, x.decoder.clone()], 2);
        let mlp = self.out.forward(relu(self.hidden.forward(z)));
        let bias = self.bias.val().unsqueeze_dim::<2>(0).unsqueeze_dim::<3>(0);
        mlp + self.slot_direct.forward(x.slots) + self.direct.forward(x.decoder) + bias
    }
}

impl Network for ForecastNet {
    type Input = ForecastInput;
    fn outputs(&self, input: ForecastInput) -> Tensor<2> {
        let o = self.forward(input);
        let [b, h, _] = o.dims();
        o.reshape([b, h * 2])
    }
}

/// Training and validation windows of a series, as the trainer sees them.
pub struct ForecastSource {
    /// The scaling and window shape.
    pub spec: WindowSpec,
    /// Windows at the training origins.
    pub train: medai_forecast::Windows,
    /// Windows at the validation origins.
    pub val: medai_forecast::Windows,
}

impl ForecastSource {
    /// Split the origins whose targets lie in `[0, end)` chronologically: the last
    /// `val_fraction` of them validate (pick the epoch), the rest train.
    pub fn new(
        ts: &TimeSeries,
        spec: WindowSpec,
        end: usize,
        val_fraction: f64,
    ) -> Result<ForecastSource, TrainError> {
        let first = spec.first_origin();
        let last = end
            .checked_sub(spec.horizon + 1)
            .filter(|&l| l >= first)
            .ok_or_else(|| {
                TrainError::Config(format!(
                    "{} values before the end of training; a window needs {} (lookback / 4 weeks of level plus the horizon)",
                    end,
                    spec.context() + spec.horizon
                ))
            })?;
        let origins: Vec<usize> = (first..=last).collect();
        let n_val = ((origins.len() as f64 * val_fraction).round() as usize)
            .clamp(1, origins.len().saturating_sub(1).max(1));
        if origins.len() < 2 {
            return Err(TrainError::Config(
                "too few training windows to hold some out for validation".into(),
            ));
        }
        let (tr, va) = origins.split_at(origins.len() - n_val);
        let w = |o: &[usize]| {
            spec.windows(ts, o)
                .map_err(|e| TrainError::Config(e.to_string()))
        };
        Ok(ForecastSource {
            train: w(tr)?,
            val: w(va)?,
            spec,
        })
    }
}

impl BatchSource for ForecastSource {
    type Input = ForecastInput;
    type Target = Vec<f32>;
    fn targets(&self, split: Split) -> Vec<Vec<f32>> {
        let w = match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
        };
        w.targets
            .chunks(self.spec.horizon)
            .map(|c| c.to_vec())
            .collect()
    }
    fn for_each_batch(
        &self,
        split: Split,
        order: &[usize],
        batch_size: usize,
        _epoch: u64,
        device: &Device,
        f: &mut BatchFn<'_, ForecastInput, Vec<f32>>,
    ) -> Result<(), TrainError> {
        let w = match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
        };
        let h = self.spec.horizon;
        for rows in order.chunks(batch_size.max(1)) {
            let x = ForecastInput::from_windows(w, &self.spec, rows, device);
            let y: Vec<Vec<f32>> = rows
                .iter()
                .map(|&r| w.targets[r * h..(r + 1) * h].to_vec())
                .collect();
            f(x, &y)?;
        }
        Ok(())
    }
    fn shard(
        &self,
        input: &ForecastInput,
        rows: std::ops::Range<usize>,
        device: &Device,
    ) -> Option<ForecastInput> {
        use crate::training::{shard_int_rows, shard_rows};
        Some(ForecastInput {
            encoder: shard_rows(&input.encoder, rows.clone(), device),
            slots: shard_int_rows(&input.slots, rows.clone(), device),
            decoder: shard_rows(&input.decoder, rows, device),
        })
    }
}

/// The count likelihood objective: mean negative log-likelihood over every step of every
/// window (Poisson or negative binomial); validation score is minus that mean.
#[derive(Clone, Copy, Debug)]
pub struct CountObjective {
    /// The likelihood.
    pub likelihood: Likelihood,
}

impl Objective for CountObjective {
    type Target = Vec<f32>;
    fn loss(&self, outputs: Tensor<2>, targets: &[Vec<f32>]) -> Tensor<1> {
        let device = outputs.device();
        let [b, k] = outputs.dims();
        let h = k / 2;
        let o = outputs.reshape([b, h, 2]);
        let a: Tensor<2> = o
            .clone()
            .slice([0..b, 0..h, 0..1])
            .reshape([b, h])
            .clamp(-LOG_MEAN_CLAMP, LOG_MEAN_CLAMP);
        let flat: Vec<f32> = targets.iter().flatten().copied().collect();
        let ln_fact: Vec<f32> = flat
            .iter()
            .map(|&y| medai_forecast::dist::ln_factorial(y.round().max(0.0) as u64) as f32)
            .collect();
        let y = Tensor::<2>::from_data(TensorData::new(flat.clone(), [b, h]), &device);
        let ln_fact = Tensor::<2>::from_data(TensorData::new(ln_fact, [b, h]), &device);
        let mu = a.clone().exp();
        let ll = match self.likelihood {
            Likelihood::Poisson => y * a - mu - ln_fact,
            Likelihood::Negbin => {
                let raw_b = o.slice([0..b, 0..h, 1..2]).reshape([b, h]);
                let alpha = softplus(raw_b, 1.0).add_scalar(MIN_ALPHA);
                let r = alpha.clone().recip();
                // Σ_{j<y} ln(r + j) = ln Γ(y + r) − ln Γ(r) for integer counts.
                let jmax = flat.iter().fold(0.0f32, |m, &v| m.max(v)).round() as usize;
                let ratio = if jmax == 0 {
                    r.zeros_like()
                } else {
                    let js: Vec<f32> = (0..jmax).map(|j| j as f32).collect();
                    let js = Tensor::<1>::from_data(TensorData::new(js, [jmax]), &device)
                        .reshape([1, 1, jmax]);
                    let mask: Vec<f32> = flat
                        .iter()
                        .flat_map(|&v| {
                            (0..jmax).map(move |j| ((j as f32) < v.round()) as u8 as f32)
                        })
                        .collect();
                    let mask = Tensor::<3>::from_data(TensorData::new(mask, [b, h, jmax]), &device);
                    (r.clone().unsqueeze_dim::<3>(2) + js)
                        .log()
                        .mul(mask)
                        .sum_dim(2)
                        .reshape([b, h])
                };
                let l1 = (alpha.clone() * mu).log1p();
                ratio - ln_fact - r * l1.clone() + y * (alpha.log() + a - l1)
            }
        };
        ll.neg().mean()
    }

    fn validate(&self, outputs: &[Vec<f32>], targets: &[Vec<f32>]) -> Validation {
        let mut sum = 0.0;
        let mut n = 0usize;
        for (o, t) in outputs.iter().zip(targets) {
            for (k, &y) in t.iter().enumerate() {
                let d = CountDist::from_raw(self.likelihood, o[2 * k] as f64, o[2 * k + 1] as f64);
                sum -= d.log_pmf(y as f64);
                n += 1;
            }
        }
        let nll = sum / n.max(1) as f64;
        Validation {
            score: -nll,
            loss: nll,
            accuracy: None,
        }
    }
}

/// Predictive distributions of every step from each origin: `origins.len()` rows of `horizon`.
pub fn predict_distributions(
    model: &ForecastNet,
    spec: &WindowSpec,
    likelihood: Likelihood,
    ts: &TimeSeries,
    origins: &[usize],
    device: &Device,
) -> Result<Vec<Vec<CountDist>>, ForecastError> {
    let mut out = Vec::with_capacity(origins.len());
    for chunk in origins.chunks(512) {
        let w = spec.windows(ts, chunk)?;
        let rows: Vec<usize> = (0..chunk.len()).collect();
        let o = model.forward(ForecastInput::from_windows(&w, spec, &rows, device));
        let v: Vec<f32> = o
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap_or_default();
        let h = spec.horizon;
        for i in 0..chunk.len() {
            out.push(
                (0..h)
                    .map(|k| {
                        let j = (i * h + k) * 2;
                        CountDist::from_raw(likelihood, v[j] as f64, v[j + 1] as f64)
                    })
                    .collect(),
            );
        }
    }
    Ok(out)
}

/// A trained network as a [`Forecaster`]: it is not refitted in a backtest (it refuses a backtest
/// whose test period starts before the end of its training data), and its 80/95% intervals come
/// from its predictive distribution ([`CountDist::interval`]: tail masses nearest the nominal).
pub struct NeuralForecaster {
    /// Name in reports.
    pub name: String,
    /// The network (inference mode).
    pub model: ForecastNet,
    /// Its windows.
    pub spec: WindowSpec,
    /// Its likelihood.
    pub likelihood: Likelihood,
    /// The device it runs on.
    pub device: Device,
    h: usize,
}

impl NeuralForecaster {
    /// Wrap a trained network.
    pub fn new(
        name: &str,
        model: ForecastNet,
        spec: WindowSpec,
        likelihood: Likelihood,
        device: Device,
    ) -> Self {
        NeuralForecaster {
            name: name.into(),
            model,
            spec,
            likelihood,
            device,
            h: 1,
        }
    }

    /// Forecast `h` steps ahead from now on (`1 ≤ h ≤ horizon`).
    pub fn set_horizon(&mut self, h: usize) -> Result<(), ForecastError> {
        if h == 0 || h > self.spec.horizon {
            return Err(ForecastError::Config(format!(
                "{} forecasts 1 … {} steps ahead, not {h}",
                self.name, self.spec.horizon
            )));
        }
        self.h = h;
        Ok(())
    }
}

impl Forecaster for NeuralForecaster {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn fit(&mut self, ts: &TimeSeries, end: usize, h: usize) -> Result<(), ForecastError> {
        self.spec.check_series(ts)?;
        self.set_horizon(h)?;
        // The first value forecast from these origins; the network must not have seen it.
        let first = (end + h).saturating_sub(1).min(ts.len().saturating_sub(1));
        if ts.is_empty() || ts.times[first] <= self.spec.train_end {
            return Err(ForecastError::Config(format!(
                "{} was trained on values up to {}, inside the test period (from {}): train it with an earlier --train-until",
                self.name,
                medai_data::format_datetime(self.spec.train_end),
                medai_data::format_datetime(ts.times.get(first).copied().unwrap_or_default())
            )));
        }
        Ok(())
    }
    fn predict(&self, ts: &TimeSeries, t: usize) -> f64 {
        self.predict_batch(ts, &[t])
            .ok()
            .and_then(|p| p.first().map(|p| p.point))
            .unwrap_or(f64::NAN)
    }
    fn first_index(&self, _ts: &TimeSeries, h: usize) -> usize {
        self.spec.first_origin() + h
    }
    fn predict_batch(
        &self,
        ts: &TimeSeries,
        ts_idx: &[usize],
    ) -> Result<Vec<Prediction>, ForecastError> {
        let h = self.h;
        let origins: Vec<usize> = ts_idx.iter().map(|&t| t - h).collect();
        let dists = predict_distributions(
            &self.model,
            &self.spec,
            self.likelihood,
            ts,
            &origins,
            &self.device,
        )?;
        Ok(dists
            .iter()
            .map(|d| {
                let d = d[h - 1];
                let (lo95, hi95) = d.interval(0.95);
                let (lo80, hi80) = d.interval(0.8);
                Prediction {
                    point: d.mean,
                    quantiles: Some([lo95, lo80, hi80, hi95]),
                }
            })
            .collect())
    }
}
