"""PyTorch reference for `medai train forecast` (issue #8): the same network (GRU encoder over 72
hours, week-slot and step embeddings, covariates, weekly lags, the last three values and level in the decoder, negative
binomial output), the same windows and scaling, the same training schedule (Adam 3e-3 with cosine
decay, batch 256, up to 12 epochs, early stopping after 4 on the latest 5% of the windows).
Prints seconds per epoch and the 2017 R² / coverage one step and 24 hours ahead.

usage: python3 bench/forecast_reference.py ../shared/data/timeseries/ed_arrivals_hourly.csv [SEED [SAVE_PREFIX]]
"""

import csv
import datetime as dt
import math
import sys
import time

import numpy as np
import torch
import torch.nn as nn
from scipy import stats

SEED = int(sys.argv[2]) if len(sys.argv) > 2 else 42
torch.manual_seed(SEED)
np.random.seed(SEED)
torch.set_num_threads(max(1, torch.get_num_threads()))

COV = ["temp", "xmas", "xmas2", "nye", "nyd", "thx", "thx1", "ind", "game_day"]
L, H, P, HID, EPOCHS, BATCH, LR, PATIENCE, VAL = 72, 24, 168, 32, 12, 256, 3e-3, 4, 0.05

rows = list(csv.DictReader(open(sys.argv[1])))
y = np.array([float(r["Arrivals"]) for r in rows])
dates = [dt.date.fromisoformat(r["Date"]) for r in rows]
hour = np.array([int(r["Hour"]) for r in rows])
dow = np.array([d.weekday() for d in dates])
cov = np.array([[float(r[c]) for c in COV] for r in rows])
end = sum(d < dt.date(2017, 1, 1) for d in dates)

lm, ls = np.log1p(y[:end]).mean(), np.log1p(y[:end]).std()
mean = y[:end].mean()
cm, cs = cov[:end].mean(0), cov[:end].std(0)
cs[cs == 0] = 1
covs = (cov - cm) / cs
scaled = (np.log1p(y) - lm) / ls
slot = dow * 24 + hour
day = hour / 24.0
week = slot / 168.0
enc_all = np.stack(
    [scaled, np.sin(2 * math.pi * day), np.cos(2 * math.pi * day),
     np.sin(2 * math.pi * week), np.cos(2 * math.pi * week)], 1).astype(np.float32)
csum = np.concatenate([[0.0], np.cumsum(y)])


def windows(origins):
    o = np.asarray(origins)
    e = np.stack([enc_all[i - L + 1:i + 1] for i in o])
    tg = o[:, None] + np.arange(1, H + 1)[None]
    tgc = np.minimum(tg, len(y) - 1)
    lvl = lambda k: np.log((csum[o + 1] - csum[o + 1 - k]) / k + 0.5) - np.log(mean + 0.5)
    lev = np.stack([lvl(4 * P), lvl(P)], 1)
    recent = np.stack([scaled[o], scaled[o - 1], scaled[o - 2]], 1)
    d = np.concatenate([covs[tgc], scaled[tg - P][..., None], scaled[tg - 2 * P][..., None],
                        np.repeat(recent[:, None, :], H, 1), np.repeat(lev[:, None, :], H, 1)],
                       -1).astype(np.float32)
    return (torch.tensor(e), torch.tensor(slot[tgc]), torch.tensor(d),
            torch.tensor(y[tgc].astype(np.float32)))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        nd = len(COV) + 7
        self.gru = nn.GRU(5, HID, batch_first=True)
        self.slot = nn.Embedding(P, 16)
        self.slot_direct = nn.Embedding(P, 2)
        nn.init.zeros_(self.slot_direct.weight)
        self.step = nn.Embedding(H, 8)
        self.direct = nn.Linear(nd, 2)
        self.hidden = nn.Linear(HID + 16 + 8 + nd, 64)
        self.out = nn.Linear(64, 2)
        self.bias = nn.Parameter(torch.tensor([math.log(mean), -3.0]))

    def forward(self, e, s, d):
        b = e.shape[0]
        _, h = self.gru(e)
        z = torch.cat([h[0][:, None].expand(b, H, -1), self.slot(s),
                       self.step.weight[None].expand(b, -1, -1), d], -1)
        return (self.out(torch.relu(self.hidden(z))) + self.slot_direct(s) + self.direct(d)
                + self.bias)


def nll(o, t):
    a = o[..., 0].clamp(-20, 20)
    alpha = nn.functional.softplus(o[..., 1]) + 1e-4
    r = 1 / alpha
    ll = (torch.lgamma(t + r) - torch.lgamma(r) - torch.lgamma(t + 1)
          - r * torch.log1p(alpha * a.exp()) + t * (alpha.log() + a - torch.log1p(alpha * a.exp())))
    return -ll.mean()


first = max(L, 4 * P) - 1
origins = np.arange(first, end - H)
n_val = round(len(origins) * VAL)
tr, va = windows(origins[:-n_val]), windows(origins[-n_val:])
net = Net()
opt = torch.optim.Adam(net.parameters(), LR, eps=1e-7)
steps = EPOCHS * math.ceil(len(tr[0]) / BATCH)
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
best, best_state, best_epoch, times = 1e9, None, 0, []
for epoch in range(EPOCHS):
    t0 = time.time()
    net.train()
    perm = torch.randperm(len(tr[0]))
    for k in range(0, len(perm), BATCH):
        j = perm[k:k + BATCH]
        loss = nll(net(tr[0][j], tr[1][j], tr[2][j]), tr[3][j])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    times.append(time.time() - t0)
    net.eval()
    with torch.no_grad():
        v = nll(net(*va[:3]), va[3]).item()
    if v < best:
        best, best_epoch = v, epoch
        best_state = {k: x.clone() for k, x in net.state_dict().items()}
    print(f"epoch {epoch + 1} val_nll {v:.4f} {times[-1]:.1f}s", flush=True)
    if epoch - best_epoch >= PATIENCE:
        break
net.load_state_dict(best_state)
print(f"pytorch seconds_per_epoch={np.mean(times):.2f} windows={len(tr[0])}")
for h in (1, 24):
    idx = np.arange(end, len(y))
    e, s, d, _ = windows(idx - h)
    with torch.no_grad():
        o = net(e, s, d)[:, h - 1]
    mu = o[:, 0].clamp(-20, 20).exp().numpy().astype(np.float64)
    if len(sys.argv) > 3:
        np.save(f"{sys.argv[3]}_h{h}.npy", mu)
    r = 1 / (nn.functional.softplus(o[:, 1]).numpy().astype(np.float64) + 1e-4)
    t = y[idx]
    dist = stats.nbinom(r, r / (r + mu))
    cov = lambda p: np.mean((t >= dist.ppf((1 - p) / 2)) & (t <= dist.ppf((1 + p) / 2)))
    r2 = 1 - ((t - mu) ** 2).sum() / ((t - t.mean()) ** 2).sum()
    print(f"pytorch h={h} r2={r2:.4f} mae={np.abs(t - mu).mean():.3f} "
          f"coverage80={cov(0.8):.3f} coverage95={cov(0.95):.3f}")
