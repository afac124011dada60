"""Context for the issue #8 R² target on the 2017 ED arrivals.

1. The Poisson bound: if arrivals are Poisson given their rate, no forecast removes that noise, so
   R² ≤ 1 − mean/variance of the test counts.
2. A Poisson GLM (log link, scikit-learn) on the linear baseline's features (hour-of-week
   indicators, lags 1–3 and 168, covariates), fitted on 2013-07 … 2016-12: one-step R² on 2017.
3. Optional: the R² of the mean of saved PyTorch forecasts, e.g. of three seeds of
   `python3 bench/forecast_reference.py DATA SEED /tmp/t$SEED` (files /tmp/t$SEED_h1.npy).

usage: python3 bench/forecast_bounds.py DATA [PREFIX ...]     (pip install numpy scikit-learn)
"""

import csv
import datetime as dt
import sys

import numpy as np
from sklearn.linear_model import PoissonRegressor

COV = ["temp", "xmas", "xmas2", "nye", "nyd", "thx", "thx1", "ind", "game_day"]
rows = list(csv.DictReader(open(sys.argv[1])))
y = np.array([float(r["Arrivals"]) for r in rows])
dates = [dt.date.fromisoformat(r["Date"]) for r in rows]
slot = np.array([d.weekday() * 24 + int(r["Hour"]) for d, r in zip(dates, rows)])
cov = np.array([[float(r[c]) for c in COV] for r in rows])
cov = (cov - cov.mean(0)) / cov.std(0)
end = sum(d < dt.date(2017, 1, 1) for d in dates)
te = np.arange(end, len(y))
t = y[te]


def r2(p):
    return 1 - ((t - p) ** 2).sum() / ((t - t.mean()) ** 2).sum()


print(f"2017: mean {t.mean():.3f}, variance {t.var():.3f}, "
      f"Poisson bound R² ≤ {1 - t.mean() / t.var():.4f}")


def features(ix):
    lags = [np.log1p(y[ix - k])[:, None] for k in (1, 2, 3, 168)]
    return np.concatenate([np.eye(168)[slot[ix]], *lags, cov[ix]], 1)


tr = np.arange(170, end)
glm = PoissonRegressor(alpha=1e-6, max_iter=3000).fit(features(tr), y[tr])
print(f"Poisson GLM on the linear baseline's features: h=1 R² {r2(glm.predict(features(te))):.4f}")
if len(sys.argv) > 2:
    mean = np.mean([np.load(f"{p}_h1.npy") for p in sys.argv[2:]], 0)
    print(f"mean of {len(sys.argv) - 2} saved forecasts: h=1 R² {r2(mean):.4f}")
