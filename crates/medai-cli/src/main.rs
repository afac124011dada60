//! `medai`: train, evaluate, bundle and predict for medical AI from one binary.
//!
//! A thin layer over the library crates: argument parsing ([`clap`]), wiring of
//! data → model → metrics → bundle, and one clear error line on failure.

mod commands;
mod evaluate;
mod explain;
mod fetch;
mod forecast;
mod formats;
mod molecules;
mod report;
mod serve;
mod text;

use clap::{Parser, Subcommand};

/// medai — medical AI from data to a deployable model bundle.
#[derive(Parser, Debug)]
#[command(name = "medai", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train a model and write a bundle: an image classifier (`medai train --data …` on an image
    /// folder, a MedMNIST .npz or a CSV manifest), `medai train forecast …` on a time series, or
    /// `medai train molecules …` on a CSV of SMILES.
    Train(Box<TrainCommand>),
    /// Evaluate a bundle on a dataset split: metrics with confidence intervals, operating
    /// points, calibration, subgroups; `--report DIR` writes report.html and metrics.json.
    Eval(commands::EvalArgs),
    /// Predict class probabilities for image files (`--explain` writes heat-map overlays), or
    /// molecular properties for a CSV of SMILES (`--data F --out P.csv`).
    Predict(commands::PredictArgs),
    /// Train → evaluate → bundle on PneumoniaMNIST with default settings.
    Quickstart(commands::QuickstartArgs),
    /// DICOM files: `info`, `to-png`, `to-npy`.
    Dicom {
        #[command(subcommand)]
        command: formats::DicomCommand,
    },
    /// NIfTI volumes: `info`, `to-png` (2-D slices).
    Nifti {
        #[command(subcommand)]
        command: formats::NiftiCommand,
    },
    /// De-identification: `deid dicom IN OUT`.
    Deid {
        #[command(subcommand)]
        command: formats::DeidCommand,
    },
    /// Rolling-origin backtest of forecasting models on a CSV time series (R², MAE, RMSE, MASE,
    /// 80/95% interval coverage).
    Backtest(forecast::BacktestArgs),
    /// Forecast the values after the end of a CSV time series, with 80/95% intervals, a chart
    /// and (`--plan staff`) a staffing table per shift.
    Forecast(forecast::ForecastArgs),
    /// Serve bundles over HTTP: Open Inference Protocol v2, a web page, auth, audit, metrics.
    Serve(serve::ServeArgs),
    /// Service tokens: `token create`, `token list`.
    Token {
        #[command(subcommand)]
        command: serve::TokenCommand,
    },
    /// The service's audit log: `audit init` (create the table), `audit verify` (check the chain).
    Audit {
        #[command(subcommand)]
        command: serve::AuditCommand,
    },
    /// Dataset utilities.
    Datasets {
        #[command(subcommand)]
        command: fetch::DatasetsCommand,
    },
}

/// `medai train`: images by default, or a task subcommand.
#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct TrainCommand {
    #[command(subcommand)]
    task: Option<TrainTask>,
    #[command(flatten)]
    image: Option<commands::TrainArgs>,
}

#[derive(Subcommand, Debug)]
enum TrainTask {
    /// Train a sequence forecaster (GRU/LSTM encoder, Poisson or negative binomial output) on a
    /// CSV time series with the shared trainer, and write a bundle.
    Forecast(Box<forecast::TrainForecastArgs>),
    /// Train a molecular property predictor (chemprop-style D-MPNN) on a CSV of SMILES:
    /// regression or multi-task classification, random/scaffold/k-fold splits, ensembles.
    Molecules(Box<molecules::TrainMoleculesArgs>),
    /// Train a text classifier (BiGRU/BiLSTM + attention, Kim CNN, or a fine-tuned BERT-family
    /// encoder) on a CSV/TSV of documents: multi-class or multi-label.
    Text(Box<text::TrainTextArgs>),
}

fn main() {
    medai_nn::backend::tune_allocator();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MEDAI_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(t) => match (t.task, t.image) {
            (Some(TrainTask::Forecast(a)), _) => forecast::train_forecast(*a),
            (Some(TrainTask::Molecules(a)), _) => molecules::train_molecules(*a),
            (Some(TrainTask::Text(a)), _) => text::train_text(*a),
            (None, Some(a)) => commands::train(a).map(|_| ()),
            (None, None) => Err(anyhow::anyhow!(
                "medai train needs --data and --out (images) or a task subcommand (`forecast`, `molecules`, `text`)"
            )),
        },
        Command::Eval(a) => commands::eval(a),
        Command::Predict(a) => commands::predict(a),
        Command::Quickstart(a) => commands::quickstart(a),
        Command::Dicom { command } => formats::dicom(command),
        Command::Nifti { command } => formats::nifti(command),
        Command::Deid { command } => formats::deid(command),
        Command::Backtest(a) => forecast::backtest(a),
        Command::Forecast(a) => forecast::forecast(a),
        Command::Serve(a) => serve::serve(a),
        Command::Token { command } => serve::token(command),
        Command::Audit { command } => serve::audit(command),
        Command::Datasets { command } => fetch::run(command),
    };
    if let Err(e) = result {
        // One line: the error and its causes.
        let mut msg = format!("{e}");
        for cause in e.chain().skip(1) {
            let c = cause.to_string();
            if !msg.contains(&c) {
                msg.push_str(": ");
                msg.push_str(&c);
            }
        }
        eprintln!("error: {msg}");
        std::process::exit(1);
    }
}
