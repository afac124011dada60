"""PyTorch reference for bench/run: the same small CNN as medai's `bench_cnn` example
(conv3x3 32/64/128 without bias + BatchNorm + ReLU, 2x2 max-pool between stages, global average
pool, linear to 1 logit; BCE-with-logits; Adam lr 1e-3 eps 1e-7), on synthetic data.

usage: python3 bench/pytorch_cnn.py [SIZE] [TRAIN_BATCH] [SECONDS]   (prints one JSON object)
"""
import json
import os
import resource
import sys
import time

import torch
from torch import nn

size = int(sys.argv[1]) if len(sys.argv) > 1 else 28
batch = int(sys.argv[2]) if len(sys.argv) > 2 else 128
secs = float(sys.argv[3]) if len(sys.argv) > 3 else 5.0
torch.set_num_threads(os.cpu_count() or 1)
torch.manual_seed(0)


def block(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


model = nn.Sequential(
    *block(1, 32), nn.MaxPool2d(2),
    *block(32, 64), nn.MaxPool2d(2),
    *block(64, 128),
    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 1),
)
opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
loss_fn = nn.BCEWithLogitsLoss()


def mk(n):
    i = torch.arange(n * size * size)
    return (((i * 7919) % 255).float() / 255.0).reshape(n, 1, size, size)


x, y = mk(batch), (torch.arange(batch) % 2).float().reshape(batch, 1)
model.train()
for _ in range(3):
    opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()
t, steps = time.perf_counter(), 0
while time.perf_counter() - t < secs:
    opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step(); steps += 1
train = steps * batch / (time.perf_counter() - t)

model.eval()
with torch.inference_mode():
    x256 = mk(256); model(x256)
    t, n = time.perf_counter(), 0
    while time.perf_counter() - t < secs / 2:
        model(x256); n += 256
    infer = n / (time.perf_counter() - t)
    x1 = mk(1); lat = []
    t = time.perf_counter()
    while time.perf_counter() - t < secs / 2 or len(lat) < 20:
        s = time.perf_counter(); model(x1); lat.append((time.perf_counter() - s) * 1e3)
lat.sort()
print(json.dumps({"size": size, "batch": batch, "train_img_s": round(train, 1),
                  "infer256_img_s": round(infer, 1), "latency1_ms_p50": round(lat[len(lat) // 2], 4),
                  "torch": torch.__version__, "threads": torch.get_num_threads(),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
