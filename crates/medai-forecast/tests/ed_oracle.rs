//! The baselines' rolling-origin backtest on the real ED arrivals (2017 as the test year,
//! monthly refits) against an independent NumPy implementation
//! (`tests/fixtures/forecast/make_backtest_oracle.py` → `backtest_oracle.json`).

use std::path::Path;

use medai_data::{TsColumns, parse_datetime, read_timeseries_csv};
use medai_forecast::{BacktestConfig, Forecaster, Linear, MovingAverage, SeasonalNaive, backtest};

#[test]
fn baselines_match_the_numpy_reference_on_ed_arrivals() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let data = root.join("../shared/data/timeseries/ed_arrivals_hourly.csv");
    let oracle: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("tests/fixtures/forecast/backtest_oracle.json"))
            .unwrap(),
    )
    .unwrap();
    let covariates: Vec<String> = oracle["covariates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    let ts = read_timeseries_csv(
        &data,
        &TsColumns {
            date: Some("Date".into()),
            hour: Some("Hour".into()),
            target: "Arrivals".into(),
            covariates,
            ..TsColumns::default()
        },
    )
    .unwrap();
    assert_eq!(ts.len(), 39_480);
    assert!(ts.gaps.is_empty());
    for h in [1usize, 24] {
        let cfg = BacktestConfig {
            train_until: parse_datetime("2017-01-01").unwrap(),
            test_until: parse_datetime("2018-01-01").unwrap(),
            horizon: h,
            refit_every: oracle["refit_every"].as_u64().unwrap() as usize,
        };
        let mut models: Vec<Box<dyn Forecaster>> = vec![
            Box::new(SeasonalNaive::default()),
            Box::new(MovingAverage::new(24)),
            Box::new(Linear::default()),
        ];
        for (score, f) in backtest(&ts, &mut models, &cfg).unwrap() {
            let want = oracle["scores"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["model"] == score.model.as_str() && s["horizon"] == h)
                .unwrap_or_else(|| panic!("no oracle for {} h={h}", score.model));
            assert_eq!(score.n as u64, want["n"].as_u64().unwrap());
            assert_eq!(f.point.len(), score.n);
            for (k, got, tol) in [
                ("r2", score.r2, 1e-6),
                ("mae", score.mae, 1e-6),
                ("rmse", score.rmse, 1e-6),
                ("mase", score.mase, 1e-6),
                ("coverage80", score.coverage80, 2.5e-4),
                ("coverage95", score.coverage95, 2.5e-4),
            ] {
                let w = want[k].as_f64().unwrap();
                assert!(
                    (got - w).abs() <= tol,
                    "{} h={h} {k}: medai {got}, NumPy {w}",
                    score.model
                );
            }
        }
    }
}
