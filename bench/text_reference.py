#!/usr/bin/env python3
"""PyTorch reference for medai's text classifiers (issue #5), same models and settings.

  python3 bench/text_reference.py speed DATA.tsv --model bigru [--max-len 256]
  python3 bench/text_reference.py speed DATA.tsv --model bert --pretrained DIR
  python3 bench/text_reference.py train DATA.tsv --model bert --pretrained DIR [--epochs 4]
  python3 bench/text_reference.py train DATA.tsv --model bigru [--epochs 30]

DATA is a TSV with columns `split` (training|test), `label` and `text` (Ohsumed in
../shared/data/text/ohsumed.tsv). `speed` times batch inference (documents/s) over the test
split, batch 64, documents sorted by length as medai does, after one warm-up pass. `train`
fine-tunes (BERT: AdamW 5e-5, weight decay 0.01, linear warm-up 10 %, batch 32; BiGRU: Adam 1e-3,
cosine, 30 epochs) on `training` minus a stratified 10 % validation part, keeps the best epoch by validation
accuracy and prints the test accuracy and the training time. torch uses as many threads as cores.
"""
import argparse
import collections
import csv
import math
import os
import random
import re
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

csv.field_size_limit(sys.maxsize)
torch.set_num_threads(os.cpu_count())


def read(path):
    rows = list(csv.DictReader(open(path, encoding="utf-8"), delimiter="\t"))
    train = [r for r in rows if r["split"] in ("train", "training")]
    test = [r for r in rows if r["split"] in ("test", "testing")]
    return train, test


WORD = re.compile(r"\w+", re.UNICODE)


def words(text):
    out = []
    for m in WORD.finditer(text.lower()):
        w = m.group(0)
        out.append("<num>" if any(c.isdigit() for c in w) else w)
    return out


class WordTok:
    def __init__(self, texts, min_freq=2, max_size=50000):
        c = collections.Counter(w for t in texts for w in words(t))
        kept = sorted([w for w, n in c.items() if n >= min_freq], key=lambda w: (-c[w], w))
        self.itos = ["<pad>", "<unk>"] + kept[: max_size - 2]
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    def encode(self, text, max_len):
        return [self.stoi.get(w, 1) for w in words(text)][:max_len] or [1]


class BiGruAttn(nn.Module):
    def __init__(self, vocab, k, embed=200, hidden=128, attn=128, dropout=0.5):
        super().__init__()
        self.emb = nn.Embedding(vocab, embed, padding_idx=0)
        self.rnn = nn.GRU(embed, hidden, batch_first=True, bidirectional=True)
        self.attn = nn.Linear(2 * hidden, attn)
        self.v = nn.Linear(attn, 1, bias=False)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden, k)

    def forward(self, ids, mask, lengths):
        e = self.drop(self.emb(ids))
        packed = nn.utils.rnn.pack_padded_sequence(e, lengths.cpu(), batch_first=True, enforce_sorted=False)
        h, _ = self.rnn(packed)
        h, _ = nn.utils.rnn.pad_packed_sequence(h, batch_first=True, total_length=ids.shape[1])
        z = self.v(torch.tanh(self.attn(h))).squeeze(-1).masked_fill(mask == 0, -1e9)
        a = torch.softmax(z, 1)
        ctx = (h * a.unsqueeze(-1)).sum(1)
        return self.head(self.drop(ctx))


class BertCls(nn.Module):
    def __init__(self, path, k, pooling="mean"):
        super().__init__()
        from transformers import AutoModel

        self.enc = AutoModel.from_pretrained(path)
        self.pooling = pooling
        self.drop = nn.Dropout(0.1)
        self.head = nn.Linear(self.enc.config.hidden_size, k)

    def forward(self, ids, mask, lengths):
        h = self.enc(input_ids=ids, attention_mask=mask).last_hidden_state
        if self.pooling == "mean":
            m = mask.unsqueeze(-1).float()
            v = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
        else:
            v = self.enc.pooler(h) if self.enc.pooler is not None else h[:, 0]
        return self.head(self.drop(v))


def batches(docs, order, bs):
    for i in range(0, len(order), bs):
        idx = order[i : i + bs]
        L = max(len(docs[j]) for j in idx)
        ids = torch.zeros(len(idx), L, dtype=torch.long)
        mask = torch.zeros(len(idx), L, dtype=torch.long)
        for r, j in enumerate(idx):
            ids[r, : len(docs[j])] = torch.tensor(docs[j])
            mask[r, : len(docs[j])] = 1
        yield idx, ids, mask, mask.sum(1)


def build(args, train, k):
    if args.model == "bert":
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(args.pretrained)
        enc = lambda t: tok(t, truncation=True, max_length=args.max_len)["input_ids"]
        pooling = "mean" if os.path.exists(os.path.join(args.pretrained, "1_Pooling")) else "cls"
        return enc, BertCls(args.pretrained, k, pooling)
    wt = WordTok([r["text"] for r in train])
    return (lambda t: wt.encode(t, args.max_len)), BiGruAttn(len(wt.itos), k)


def predict(model, docs, bs=64):
    model.eval()
    order = sorted(range(len(docs)), key=lambda i: -len(docs[i]))
    out = np.zeros(len(docs), dtype=np.int64)
    with torch.inference_mode():
        for idx, ids, mask, lens in batches(docs, order, bs):
            out[idx] = model(ids, mask, lens).argmax(1).numpy()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["speed", "train"])
    ap.add_argument("data")
    ap.add_argument("--model", choices=["bigru", "bert"], default="bigru")
    ap.add_argument("--pretrained")
    ap.add_argument("--max-len", type=int, default=256)
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--limit", type=int, default=0, help="speed: only the first N test documents")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    train, test = read(args.data)
    labels = sorted({r["label"] for r in train})
    li = {l: i for i, l in enumerate(labels)}
    enc, model = build(args, train, len(labels))
    t = time.time()
    test_docs = [enc(r["text"]) for r in test]
    print(f"tokenize test: {len(test_docs) / (time.time() - t):.0f} docs/s", file=sys.stderr)
    if args.mode == "speed":
        docs = test_docs[: args.limit] if args.limit else test_docs
        predict(model, docs[:128])
        t = time.time()
        predict(model, docs)
        s = time.time() - t
        n_params = sum(p.numel() for p in model.parameters())
        print(f"{args.model} inference: {len(docs) / s:.1f} docs/s ({len(docs)} docs, {s:.2f} s, {n_params} parameters, {torch.get_num_threads()} threads)")
        return
    by = collections.defaultdict(list)
    for i, r in enumerate(train):
        by[r["label"]].append(i)
    rng = random.Random(args.seed)
    val_idx = []
    for l in sorted(by):
        v = by[l][:]
        rng.shuffle(v)
        val_idx += v[: min(round(len(v) * 0.1), len(v) - 1)]
    vs = set(val_idx)
    tr_idx = [i for i in range(len(train)) if i not in vs]
    docs = [enc(r["text"]) for r in train]
    y = torch.tensor([li[r["label"]] for r in train])
    yt = np.array([li[r["label"]] for r in test])
    bert = args.model == "bert"
    epochs = args.epochs or (4 if bert else 30)
    lr = args.lr or (5e-5 if bert else 1e-3)
    if bert:
        decay = [p for n, p in model.named_parameters() if p.ndim > 1]
        other = [p for n, p in model.named_parameters() if p.ndim <= 1]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": other, "weight_decay": 0.0}], lr=lr, eps=1e-8)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=lr, eps=1e-7)
    steps = epochs * math.ceil(len(tr_idx) / args.batch)
    warm = round(0.1 * steps) if bert else 0
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        (lambda s: s / max(1, warm) if s < warm else max(0.0, (steps - s) / max(1, steps - warm)))
        if bert
        else (lambda s: 0.5 * (1 + math.cos(math.pi * s / steps))),
    )
    best, best_state = -1.0, None
    t0 = time.time()
    for ep in range(epochs):
        model.train()
        order = tr_idx[:]
        rng.shuffle(order)
        te = time.time()
        for idx, ids, mask, lens in batches(docs, order, args.batch):
            loss = F.cross_entropy(model(ids, mask, lens), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        pv = predict(model, [docs[i] for i in val_idx])
        acc = float((pv == y[val_idx].numpy()).mean())
        print(f"epoch {ep + 1}: val accuracy {acc:.4f} ({time.time() - te:.0f} s)", file=sys.stderr)
        if acc > best:
            best, best_state = acc, {k: v.clone() for k, v in model.state_dict().items()}
    train_s = time.time() - t0
    model.load_state_dict(best_state)
    pt = predict(model, test_docs)
    print(f"{args.model} test accuracy {float((pt == yt).mean()):.4f} (best val {best:.4f}; training {train_s:.0f} s, {epochs} epochs)")


if __name__ == "__main__":
    main()
