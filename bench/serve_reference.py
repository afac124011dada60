#!/usr/bin/env python3
"""The reference Python inference server for bench/serve_load.sh: FastAPI + uvicorn + PyTorch,
serving a medai small-cnn bundle the way a typical Python deployment would.

usage: python3 bench/serve_reference.py BUNDLE_DIR [--port 8081] [--host 127.0.0.1]
           [--workers 1] [--threads T] [--name NAME]
       python3 bench/serve_reference.py BUNDLE_DIR --self-check [--npz DATA.npz]
needs: pip install fastapi 'uvicorn[standard]' safetensors torch numpy

It loads the same network as `medai serve` from the bundle's weights.safetensors (conv3x3
without bias + BatchNorm(eps 1e-5) + ReLU per block, 2×2 max-pool between stages, global
average pool, linear head; dropout is inactive at inference) with the same calibration
(p = sigmoid(logit / T) for a binary model, softmax(logits / T) otherwise, T from the manifest)
and the same label rule (binary: class 1 when p(class 1) >= the bundle threshold).

Endpoints (Open Inference Protocol v2, JSON tensors only, a subset of crates/medai-serve/API.md):
  GET  /v2/health/live, /v2/health/ready, /v2/models/{name}
  POST /v2/models/{name}/infer (and /versions/1/infer): one FP32 [N, C, H, W] input holding the
       preprocessed image (pixel / 255), flat or nested `data` → outputs `probabilities` FP32
       [N, K] and `label` BYTES [N] (`outputs` may select a subset; `id` is echoed).
There is NO authentication (bind it to loopback only); no binary tensors, no UINT8 input.

Each worker process uses `--threads` intra-op threads (default 1), one inter-op thread, eval
mode and torch.inference_mode. One request holds one small image, so intra-op parallelism
only adds synchronisation (on a busy 2-core machine 2 threads made one forward ~20x slower than
1): scale with `--workers` (one process each, e.g. as many as the cores given to medai) instead.

--self-check compares the PyTorch forward (and the request handler) with an independent NumPy
reimplementation on a few deterministic inputs, prints the max abs differences and exits
non-zero when they exceed 1e-5; with --npz (a MedMNIST-style file with test_images and
test_labels) it also prints the test accuracy and confusion next to the manifest's.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
from torch import nn

try:
    import orjson

    def dumps(obj):
        return orjson.dumps(obj)

    loads = orjson.loads
except ImportError:  # pragma: no cover
    def dumps(obj):
        return json.dumps(obj).encode()

    loads = json.loads

BN_EPS = 1e-5
PREFIX = "SmallCnn."


class BadRequest(Exception):
    pass


# ---------------------------------------------------------------- model


class SmallCnn(nn.Module):
    def __init__(self, in_channels, widths, per_stage, outputs):
        super().__init__()
        blocks, cin = [], in_channels
        for w in widths:
            for _ in range(max(1, per_stage)):
                blocks.append(nn.Sequential(nn.Conv2d(cin, w, 3, padding=1, bias=False),
                                            nn.BatchNorm2d(w, eps=BN_EPS), nn.ReLU()))
                cin = w
        self.blocks = nn.ModuleList(blocks)
        self.per_stage = max(1, per_stage)
        self.pool = nn.MaxPool2d(2, 2)
        self.head = nn.Linear(cin, outputs)

    def forward(self, x):
        stages = len(self.blocks) // self.per_stage
        for i, block in enumerate(self.blocks):
            x = block(x)
            if (i + 1) % self.per_stage == 0 and (i + 1) // self.per_stage < stages:
                x = self.pool(x)
        return self.head(x.mean(dim=(2, 3)))  # global average pool; dropout is a no-op in eval


class Bundle:
    """The manifest facts the server needs, the raw weights and the PyTorch model."""

    def __init__(self, bundle_dir, name=None):
        from safetensors.numpy import load_file

        with open(os.path.join(bundle_dir, "manifest.json")) as f:
            m = json.load(f)
        arch = m["architecture"]
        if arch.get("arch") != "small-cnn" or arch.get("small_stem"):
            sys.exit(f"serve_reference: {bundle_dir}: only the small-cnn architecture is supported, "
                     f"got {arch.get('arch')!r}")
        if m["preprocessing"]["normalization"]["kind"] != "rescale":
            sys.exit(f"serve_reference: {bundle_dir}: only 'rescale' normalisation is supported")
        self.name = name or m["name"]
        self.classes = list(m["classes"])
        pre = m["preprocessing"]
        self.chw = (pre["channels"], pre["height"], pre["width"])
        self.temperature = float((m.get("calibration") or {}).get("temperature") or 1.0)
        self.threshold = float(m["training"]["threshold"])
        self.metrics = m.get("metrics", {})
        self.dataset = m.get("dataset", {})
        self.w = load_file(os.path.join(bundle_dir, "weights.safetensors"))
        self.widths = list(arch["widths"])
        self.per_stage = int(arch.get("convs_per_stage", 1))
        self.outputs = int(arch["outputs"])
        self.model = SmallCnn(arch["in_channels"], self.widths, self.per_stage, self.outputs)
        self._load_weights()
        self.model.eval()

    def _load_weights(self):
        t = {k: torch.from_numpy(v.copy()) for k, v in self.w.items()}
        state = {}
        for i in range(len(self.model.blocks)):
            p = f"{PREFIX}blocks.{i}."
            state[f"blocks.{i}.0.weight"] = t[p + "conv.weight"]
            state[f"blocks.{i}.1.weight"] = t[p + "bn.gamma"]
            state[f"blocks.{i}.1.bias"] = t[p + "bn.beta"]
            state[f"blocks.{i}.1.running_mean"] = t[p + "bn.running_mean"]
            state[f"blocks.{i}.1.running_var"] = t[p + "bn.running_var"]
            state[f"blocks.{i}.1.num_batches_tracked"] = torch.tensor(0)
        state["head.weight"] = t[PREFIX + "head.weight"].T.contiguous()  # stored [in, out]
        state["head.bias"] = t[PREFIX + "head.bias"]
        self.model.load_state_dict(state, strict=True)
        used = set(self.w)
        expected = {f"{PREFIX}blocks.{i}.{s}" for i in range(len(self.model.blocks))
                    for s in ("conv.weight", "bn.gamma", "bn.beta", "bn.running_mean", "bn.running_var")}
        expected |= {PREFIX + "head.weight", PREFIX + "head.bias"}
        if used != expected:
            sys.exit(f"serve_reference: unexpected weights: {sorted(used ^ expected)}")

    def probabilities(self, x):
        """x: float32 array [N, C, H, W] → (float32 probabilities [N, K], labels)."""
        with torch.inference_mode():
            logits = self.model(torch.from_numpy(x)) / self.temperature
            if self.outputs == 1:
                p1 = torch.sigmoid(logits[:, 0])
                probs = torch.stack([1.0 - p1, p1], dim=1)
            else:
                probs = torch.softmax(logits, dim=1)
        probs = probs.numpy()
        if self.outputs == 1:
            labels = [self.classes[1] if p >= self.threshold else self.classes[0] for p in probs[:, 1]]
        else:
            labels = [self.classes[i] for i in probs.argmax(axis=1)]
        return probs, labels

    def metadata(self):
        c, h, w = self.chw
        return {"name": self.name, "versions": ["1"], "platform": "pytorch",
                "inputs": [{"name": "image", "datatype": "FP32", "shape": [-1, c, h, w]}],
                "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, len(self.classes)]},
                            {"name": "label", "datatype": "BYTES", "shape": [-1]}],
                "parameters": {"classes": self.classes, "threshold": self.threshold,
                               "temperature": self.temperature}}


def _flatten(v, out):
    if isinstance(v, list):
        for e in v:
            _flatten(e, out)
    else:
        out.append(v)
    return out


def infer_json(bundle, body):
    """One OIP v2 JSON inference request (bytes) → response object (dict)."""
    try:
        req = loads(body)
    except ValueError as e:
        raise BadRequest(f"request JSON is invalid: {e}")
    inputs = req.get("inputs") if isinstance(req, dict) else None
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise BadRequest("'inputs' must hold exactly one input")
    inp = inputs[0]
    name, shape, c_h_w = inp.get("name", "?"), inp.get("shape"), list(bundle.chw)
    if inp.get("datatype") != "FP32":
        raise BadRequest(f"input '{name}': datatype must be FP32 (this reference server has no UINT8)")
    if not isinstance(shape, list) or len(shape) != 4 or shape[1:] != c_h_w or not isinstance(shape[0], int) \
            or shape[0] < 1:
        raise BadRequest(f"input '{name}': shape must be [N, {c_h_w[0]}, {c_h_w[1]}, {c_h_w[2]}], got {shape}")
    data = inp.get("data")
    if data is None:
        raise BadRequest(f"input '{name}': needs 'data' (no binary tensors here)")
    if data and isinstance(data[0], list):
        data = _flatten(data, [])
    try:
        x = np.asarray(data, dtype=np.float32)
    except (TypeError, ValueError):
        raise BadRequest(f"input '{name}': 'data' must hold numbers")
    if x.ndim != 1 or x.size != int(np.prod(shape)):
        raise BadRequest(f"input '{name}': {x.size} values for shape {shape}")
    probs, labels = bundle.probabilities(x.reshape(shape))
    wanted = req.get("outputs") or [{"name": "probabilities"}, {"name": "label"}]
    outs = []
    for o in wanted:
        oname = o.get("name") if isinstance(o, dict) else None
        if oname == "probabilities":
            outs.append({"name": oname, "datatype": "FP32", "shape": list(probs.shape),
                         "data": probs.reshape(-1).tolist()})
        elif oname == "label":
            outs.append({"name": oname, "datatype": "BYTES", "shape": [len(labels)], "data": labels})
        else:
            raise BadRequest(f"unknown output {oname!r}: expected 'probabilities' or 'label'")
    resp = {"model_name": bundle.name, "model_version": "1"}
    if "id" in req:
        resp["id"] = req["id"]
    resp["outputs"] = outs
    return resp


# ---------------------------------------------------------------- NumPy reimplementation


def numpy_forward(bundle, x):
    """Independent float64 NumPy forward → probabilities [N, K] (for --self-check)."""
    from numpy.lib.stride_tricks import sliding_window_view

    w = {k[len(PREFIX):]: v.astype(np.float64) for k, v in bundle.w.items()}
    h = x.astype(np.float64)
    n_blocks = len(bundle.widths) * max(1, bundle.per_stage)
    stages = len(bundle.widths)
    for i in range(n_blocks):
        k = w[f"blocks.{i}.conv.weight"]  # OIHW
        win = sliding_window_view(np.pad(h, ((0, 0), (0, 0), (1, 1), (1, 1))), (3, 3), axis=(2, 3))
        h = np.einsum("nchwij,ocij->nohw", win, k, optimize=True)
        g, b = w[f"blocks.{i}.bn.gamma"], w[f"blocks.{i}.bn.beta"]
        mu, var = w[f"blocks.{i}.bn.running_mean"], w[f"blocks.{i}.bn.running_var"]
        h = (h - mu[:, None, None]) / np.sqrt(var[:, None, None] + BN_EPS) * g[:, None, None] + b[:, None, None]
        h = np.maximum(h, 0.0)
        if (i + 1) % bundle.per_stage == 0 and (i + 1) // bundle.per_stage < stages:
            n, c, hh, ww = h.shape
            h = h[:, :, :hh // 2 * 2, :ww // 2 * 2].reshape(n, c, hh // 2, 2, ww // 2, 2).max(axis=(3, 5))
    logits = h.mean(axis=(2, 3)) @ w["head.weight"] + w["head.bias"]  # head.weight is [in, out]
    z = logits / bundle.temperature
    if bundle.outputs == 1:
        p1 = 1.0 / (1.0 + np.exp(-z[:, 0]))
        return np.stack([1.0 - p1, p1], axis=1)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def self_check(bundle, npz):
    c, h, w = bundle.chw
    i = np.arange(8 * c * h * w, dtype=np.int64)
    rng = np.random.default_rng(7)
    xs = [np.zeros((1, c, h, w)), np.ones((1, c, h, w)),
          (((i * 7919) % 255) / 255.0).reshape(8, c, h, w), rng.random((4, c, h, w))]
    if npz:
        d = np.load(npz)
        xs.append(d["test_images"][:16].reshape(16, c, h, w) / 255.0)
    x = np.concatenate(xs).astype(np.float32)
    p_torch, labels = bundle.probabilities(x)
    p_np = numpy_forward(bundle, x)
    d_fwd = float(np.max(np.abs(p_torch - p_np)))
    body = dumps({"id": "self-check", "inputs": [{"name": "image", "shape": list(x.shape),
                                                  "datatype": "FP32", "data": x.reshape(-1).tolist()}]})
    resp = infer_json(bundle, body)
    p_http = np.asarray(resp["outputs"][0]["data"], dtype=np.float64).reshape(p_np.shape)
    d_http = float(np.max(np.abs(p_http - p_np)))
    want = [bundle.classes[1] if p >= bundle.threshold else bundle.classes[0] for p in p_np[:, 1]] \
        if bundle.outputs == 1 else [bundle.classes[j] for j in p_np.argmax(axis=1)]
    near = np.abs(p_np[:, -1] - bundle.threshold) < 1e-5 if bundle.outputs == 1 else np.zeros(len(x), bool)
    labels_ok = all(a == b or nr for a, b, nr in zip(resp["outputs"][1]["data"], want, near))
    report = {"inputs": len(x), "max_abs_diff_torch_vs_numpy": d_fwd,
              "max_abs_diff_handler_vs_numpy": d_http, "labels_match": labels_ok,
              "temperature": bundle.temperature, "threshold": bundle.threshold,
              "torch_threads": torch.get_num_threads()}
    if npz:
        d = np.load(npz)
        xt = (d["test_images"].reshape(-1, c, h, w) / 255.0).astype(np.float32)
        yt = d["test_labels"].reshape(-1)
        pt, _ = bundle.probabilities(xt)
        pred = (pt[:, 1] >= bundle.threshold).astype(int) if bundle.outputs == 1 else pt.argmax(axis=1)
        report["npz_test_accuracy"] = float((pred == yt).mean())
        if bundle.outputs == 1:
            report["npz_test_confusion"] = {
                "tp": int(((pred == 1) & (yt == 1)).sum()), "fn": int(((pred == 0) & (yt == 1)).sum()),
                "fp": int(((pred == 1) & (yt == 0)).sum()), "tn": int(((pred == 0) & (yt == 0)).sum())}
        mt = bundle.metrics.get("test", {})
        report["manifest_test_accuracy"] = mt.get("accuracy")
        report["manifest_test_confusion"] = mt.get("confusion")
    print(json.dumps(report))
    return d_fwd <= 1e-5 and d_http <= 1e-5 and labels_ok


# ---------------------------------------------------------------- server


def create_app():
    from fastapi import FastAPI, Request
    from fastapi.responses import Response
    from contextlib import asynccontextmanager

    state = {}

    @asynccontextmanager
    async def lifespan(_app):
        torch.set_num_threads(int(os.environ.get("MEDAI_REF_THREADS", "1")))
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass
        b = Bundle(os.environ["MEDAI_REF_BUNDLE"], os.environ.get("MEDAI_REF_NAME") or None)
        b.probabilities(np.zeros((1, *b.chw), np.float32))  # warm up
        state["bundle"] = b
        yield

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    def answer(status, obj):
        return Response(content=dumps(obj), status_code=status, media_type="application/json")

    def model_or_none(name):
        b = state.get("bundle")
        return b if b is not None and name == b.name else None

    @app.get("/v2/health/live")
    async def live():
        return answer(200, {"live": True})

    @app.get("/v2/health/ready")
    async def ready():
        return answer(200 if "bundle" in state else 503, {"ready": "bundle" in state})

    @app.get("/v2/models/{name}")
    async def metadata(name: str):
        b = model_or_none(name)
        return answer(200, b.metadata()) if b else answer(404, {"error": f"unknown model '{name}'"})

    async def do_infer(name, request):
        b = model_or_none(name)
        if b is None:
            return answer(404, {"error": f"unknown model '{name}'"})
        try:
            return answer(200, infer_json(b, await request.body()))
        except BadRequest as e:
            return answer(400, {"error": str(e)})

    @app.post("/v2/models/{name}/infer")
    async def infer(name: str, request: Request):
        return await do_infer(name, request)

    @app.post("/v2/models/{name}/versions/{version}/infer")
    async def infer_v(name: str, version: str, request: Request):
        if version != "1":
            return answer(404, {"error": f"model '{name}' has no version '{version}'"})
        return await do_infer(name, request)

    return app


if os.environ.get("MEDAI_REF_BUNDLE"):  # imported by uvicorn (in each worker)
    app = create_app()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bundle_dir")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8081)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads per worker (default 1)")
    ap.add_argument("--name", default="", help="serve under this model name (default: the manifest's)")
    ap.add_argument("--self-check", action="store_true")
    ap.add_argument("--npz", default="", help="with --self-check: MedMNIST-style .npz to evaluate")
    a = ap.parse_args()
    threads = max(1, a.threads)
    if a.self_check:
        torch.set_num_threads(threads)
        sys.exit(0 if self_check(Bundle(a.bundle_dir, a.name or None), a.npz) else 1)
    os.environ["MEDAI_REF_BUNDLE"] = os.path.abspath(a.bundle_dir)
    os.environ["MEDAI_REF_THREADS"] = str(threads)
    os.environ["MEDAI_REF_NAME"] = a.name
    import uvicorn

    print(f"serve_reference: http://{a.host}:{a.port} workers={a.workers} threads/worker={threads} "
          f"(no authentication)", flush=True)
    uvicorn.run("serve_reference:app", app_dir=os.path.dirname(os.path.abspath(__file__)),
                host=a.host, port=a.port, workers=a.workers, log_level="warning", access_log=False,
                backlog=2048)


if __name__ == "__main__":
    main()
