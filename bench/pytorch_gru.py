#!/usr/bin/env python3
"""PyTorch reference for `crates/medai-nn/examples/bench_gru.rs`: the same BiGRU + attention text
classifier (bench/text_reference.py's BiGruAttn: vocabulary 20 000 and embedding 200 unless given, hidden 128 per
direction, attention 128, 23 classes) on the same synthetic token ids, Adam 1e-3, cross-entropy.

  python3 bench/pytorch_gru.py [SEQ] [BATCH] [SECONDS] [VOCAB] [EMBED] [gru|lstm]

prints one JSON object: training steps/s and batch inference documents/s. torch uses as many
threads as cores. All rows are full length, so by default the GRU runs unpacked (PyTorch's
fastest path, same values); PACKED=1 runs BiGruAttn.forward with pack_padded_sequence as
bench/text_reference.py does on real, ragged documents.
"""
import json
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from text_reference import BiGruAttn  # noqa: E402

torch.set_num_threads(os.cpu_count())
torch.manual_seed(0)
seq = int(sys.argv[1]) if len(sys.argv) > 1 else 64
batch = int(sys.argv[2]) if len(sys.argv) > 2 else 64
secs = float(sys.argv[3]) if len(sys.argv) > 3 else 5.0
packed = os.environ.get("PACKED") == "1"
vocab = int(sys.argv[4]) if len(sys.argv) > 4 else 20000
embed = int(sys.argv[5]) if len(sys.argv) > 5 else 200
lstm = len(sys.argv) > 6 and sys.argv[6] == "lstm"
classes = 23
ids = torch.tensor([[2 + (i * 7919 + j * 104729) % (vocab - 2) for j in range(seq)] for i in range(batch)])
mask = torch.ones(batch, seq)
lengths = torch.full((batch,), seq)
labels = torch.tensor([i % classes for i in range(batch)])
model = BiGruAttn(vocab, classes, embed=embed)
if lstm:  # the same network with a BiLSTM, as medai's bilstm-attn
    model.rnn = torch.nn.LSTM(embed, 128, batch_first=True, bidirectional=True)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)


def forward():
    # Every row is full length, so the unpacked nn.GRU computes exactly what BiGruAttn.forward's
    # packed sequence does, and faster: this is PyTorch's best case.
    if not packed:
        e = model.drop(model.emb(ids))
        h, _ = model.rnn(e)
        a = torch.softmax(model.v(torch.tanh(model.attn(h))).squeeze(-1), 1)
        return model.head(model.drop((h * a.unsqueeze(-1)).sum(1)))
    return model(ids, mask, lengths)


def step():
    opt.zero_grad()
    loss = F.cross_entropy(forward(), labels)
    loss.backward()
    opt.step()


model.train()
for _ in range(2):
    step()
t = time.perf_counter()
steps = 0
while time.perf_counter() - t < secs or steps < 3:
    step()
    steps += 1
train = steps / (time.perf_counter() - t)
model.eval()
with torch.no_grad():
    forward()
    t = time.perf_counter()
    n = 0
    while time.perf_counter() - t < secs / 2 or n < 3 * batch:
        forward()
        n += batch
    infer = n / (time.perf_counter() - t)
print(json.dumps({"seq": seq, "batch": batch, "vocab": vocab, "embed": embed, "lstm": lstm, "train_steps_s": round(train, 2), "infer_docs_s": round(infer, 1), "packed": packed,
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
