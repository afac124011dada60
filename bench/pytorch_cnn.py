"""PyTorch reference for bench/run and bench/gpu.sh: the same networks as medai's `bench_cnn`
example, on synthetic data, BCE-with-logits, Adam lr 1e-3 eps 1e-7:
- small-cnn: conv3x3 32/64/128 without bias + BatchNorm + ReLU, 2x2 max-pool between stages,
  global average pool, linear to 1 logit;
- resnet18: torchvision's ResNet-18 layout (7x7/2 stem, 3x3/2 max-pool, BasicBlocks 64-512,
  1x1/2 projection shortcuts) with one grey input channel and one logit, written out here so
  that torchvision is not needed.

usage: python3 bench/pytorch_cnn.py [SIZE] [TRAIN_BATCH] [SECONDS] [ARCH] [DEVICE]
(prints one JSON object; DEVICE cpu (default) or cuda)
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
arch = sys.argv[4] if len(sys.argv) > 4 else "small-cnn"
dev = torch.device(sys.argv[5] if len(sys.argv) > 5 else "cpu")
torch.set_num_threads(os.cpu_count() or 1)
torch.manual_seed(0)
torch.backends.cudnn.benchmark = True


def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize()


def block(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


class Basic(nn.Module):
    """torchvision's BasicBlock."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + (x if self.down is None else self.down(x)))


def resnet18():
    layers, cin = [], 64
    for i, c in enumerate([64, 128, 256, 512]):
        for j in range(2):
            layers.append(Basic(cin, c, 2 if i > 0 and j == 0 else 1))
            cin = c
    return nn.Sequential(
        nn.Conv2d(1, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1),
        *layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 1),
    )


if arch == "resnet18":
    model = resnet18()
elif arch == "small-cnn":
    model = nn.Sequential(
        *block(1, 32), nn.MaxPool2d(2),
        *block(32, 64), nn.MaxPool2d(2),
        *block(64, 128),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 1),
    )
else:
    sys.exit(f"unknown ARCH {arch!r}")
model = model.to(dev)
opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
loss_fn = nn.BCEWithLogitsLoss()


def mk(n):
    i = torch.arange(n * size * size)
    return (((i * 7919) % 255).float() / 255.0).reshape(n, 1, size, size).to(dev)


x, y = mk(batch), (torch.arange(batch) % 2).float().reshape(batch, 1).to(dev)
model.train()
# FLOPs of one training step (forward + backward) per image, by PyTorch's own counter.
from torch.utils.flop_counter import FlopCounterMode
with FlopCounterMode(display=False) as fc:
    opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()
step_flops = fc.get_total_flops() / batch
for _ in range(3):
    opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()
sync()
t, steps = time.perf_counter(), 0
while time.perf_counter() - t < secs:
    opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step(); steps += 1
sync()
train = steps * batch / (time.perf_counter() - t)

model.eval()
with torch.inference_mode():
    x256 = mk(256); model(x256).cpu()
    t, n = time.perf_counter(), 0
    while time.perf_counter() - t < secs / 2:
        model(x256).cpu(); n += 256
    infer = n / (time.perf_counter() - t)
    x1 = mk(1); lat = []
    t = time.perf_counter()
    while time.perf_counter() - t < secs / 2 or len(lat) < 20:
        s = time.perf_counter(); model(x1).cpu(); lat.append((time.perf_counter() - s) * 1e3)
lat.sort()
print(json.dumps({"arch": arch, "device": str(dev), "size": size, "batch": batch,
                  "train_img_s": round(train, 1), "train_flop_per_img": round(step_flops),
                  "infer256_img_s": round(infer, 1), "latency1_ms_p50": round(lat[len(lat) // 2], 4),
                  "torch": torch.__version__, "threads": torch.get_num_threads(),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
