#!/usr/bin/env python3
"""Check `medai serve` with NVIDIA's official Triton HTTP client, unchanged.

usage: python3 tests/serve/tritonclient_check.py URL TOKEN MODEL
       (URL: http://host:port, https://host:port or host:port; pip install 'tritonclient[http]')

Checks liveness/readiness, server metadata (binary_tensor_data extension), model metadata, and
inference of a deterministic batch of 3 images in four forms: (a) JSON tensors, (b) binary
tensors (input and outputs), (c) UINT8 raw pixels, (d) BYTES holding PNG files (binary
extension). (a) and (b) must agree to 1e-6, (c) to 1e-2, (d) equals (c);
probability rows must sum to 1, labels must be class names (and follow the threshold for a
binary model). A request without the token and one with a wrong token must fail with 401.
Prints one JSON line with the probabilities of (a); exit status 0 on success, 1 on failure.
"""
import json
import struct
import sys
import zlib

import numpy as np

try:
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException
except ImportError:  # pragma: no cover
    sys.exit("tritonclient_check: needs the Triton client: pip install 'tritonclient[http]'")


class CheckFailed(Exception):
    pass


def png_bytes(px):
    """A PNG file (8-bit grey or RGB, no filter) of an [H, W] or [H, W, 3] uint8 array."""
    h, w = px.shape[:2]
    colour = 0 if px.ndim == 2 else 2
    raw = b"".join(b"\x00" + px[y].tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def check(cond, msg):
    if not cond:
        raise CheckFailed(msg)


def as_str(v):
    return v.decode("utf-8") if isinstance(v, (bytes, np.bytes_)) else str(v)


def images(shape, n=3):
    """n deterministic FP32 images in [0, 1] of shape [C, H, W], with different brightness."""
    c, h, w = shape
    yy, xx = np.meshgrid(np.linspace(0.0, 1.0, h), np.linspace(0.0, 1.0, w), indexing="ij")
    rng = np.random.default_rng(20261129)
    out = []
    for i in range(n):
        base = 0.5 + 0.5 * np.sin(6.0 * xx + 4.0 * yy + i)  # smooth pattern
        noise = rng.random((c, h, w))
        img = (0.3, 0.9, 1.6)[i % 3] * (0.7 * base[None] + 0.3 * noise)
        out.append(np.clip(img, 0.0, 1.0))
    return np.stack(out).astype(np.float32)


def expect_401(what, call):
    try:
        call()
    except InferenceServerException as e:
        check(e.status() == "401", f"{what}: expected HTTP 401, got status {e.status()}: {e.message()}")
        return
    raise CheckFailed(f"{what}: the request succeeded, expected HTTP 401")


def run(url, token, model):
    ssl = url.startswith("https://")
    hostport = url.split("://", 1)[-1].rstrip("/")
    client = httpclient.InferenceServerClient(url=hostport, ssl=ssl, network_timeout=60.0,
                                              connection_timeout=10.0)
    auth = {"Authorization": f"Bearer {token}"}

    check(client.is_server_live(headers=auth), "is_server_live is false")
    check(client.is_server_ready(headers=auth), "is_server_ready is false")
    check(client.is_model_ready(model, headers=auth), f"is_model_ready({model!r}) is false")

    smeta = client.get_server_metadata(headers=auth)
    check("binary_tensor_data" in smeta.get("extensions", []),
          f"server metadata lacks the binary_tensor_data extension: {smeta}")

    meta = client.get_model_metadata(model, headers=auth)
    check(meta.get("name") == model, f"model metadata names {meta.get('name')!r}, not {model!r}")
    check(len(meta.get("inputs", [])) == 1, f"expected exactly one input in the metadata: {meta}")
    inp = meta["inputs"][0]
    in_name, in_dtype, in_shape = inp["name"], inp["datatype"], list(inp["shape"])
    check(in_dtype == "FP32", f"input datatype {in_dtype}, expected FP32")
    check(len(in_shape) == 4 and in_shape[0] == -1 and all(d > 0 for d in in_shape[1:]),
          f"input shape {in_shape}, expected [-1, C, H, W]")
    params = meta.get("parameters", {})
    classes = [as_str(c) for c in params.get("classes", [])]
    check(len(classes) >= 2, f"metadata parameters.classes missing or too short: {params}")
    k = len(classes)
    out_names = {o["name"] for o in meta.get("outputs", [])}
    check({"probabilities", "label"} <= out_names, f"metadata outputs {sorted(out_names)} lack probabilities/label")

    n = 3
    c, h, w = in_shape[1:]
    x = images((c, h, w), n)

    def infer(tensor, dtype, binary_in, binary_out, request_id=""):
        i = httpclient.InferInput(in_name, list(tensor.shape), dtype)
        i.set_data_from_numpy(tensor, binary_data=binary_in)
        outs = [httpclient.InferRequestedOutput("probabilities", binary_data=binary_out),
                httpclient.InferRequestedOutput("label", binary_data=binary_out)]
        res = client.infer(model, [i], outputs=outs, headers=auth, request_id=request_id)
        probs = res.as_numpy("probabilities")
        labels = res.as_numpy("label")
        check(probs is not None and labels is not None, f"{dtype} binary={binary_out}: outputs missing")
        return res, probs.astype(np.float64), [as_str(v) for v in labels.reshape(-1)], labels.shape

    def validate(mode, probs, labels, lshape):
        check(list(probs.shape) == [n, k], f"{mode}: probabilities shape {list(probs.shape)}, expected {[n, k]}")
        check(list(lshape) == [n], f"{mode}: label shape {list(lshape)}, expected {[n]}")
        check(np.all(np.isfinite(probs)) and np.all(probs >= 0) and np.all(probs <= 1),
              f"{mode}: probabilities outside [0, 1]: {probs.tolist()}")
        sums = probs.sum(axis=1)
        check(np.all(np.abs(sums - 1.0) <= 1e-5), f"{mode}: probability rows do not sum to 1: {sums.tolist()}")
        check(all(lb in classes for lb in labels), f"{mode}: labels {labels} are not class names {classes}")
        thr = params.get("threshold")
        for row, lb in zip(probs, labels):
            if k == 2 and thr is not None:
                if abs(row[1] - thr) > 1e-6:
                    want = classes[1] if row[1] >= thr else classes[0]
                    check(lb == want, f"{mode}: label {lb!r} for p={row.tolist()} (threshold {thr}), expected {want!r}")
            elif k > 2:
                check(lb == classes[int(np.argmax(row))], f"{mode}: label {lb!r} is not the argmax of {row.tolist()}")

    # (a) JSON tensors in and out; the request id must come back.
    res_a, p_a, l_a, s_a = infer(x, "FP32", False, False, request_id="tritonclient-check-a")
    validate("JSON", p_a, l_a, s_a)
    check(res_a.get_response().get("id") == "tritonclient-check-a",
          f"JSON: request id not echoed: {res_a.get_response().get('id')!r}")
    # (b) binary tensor data extension, both ways.
    _, p_b, l_b, s_b = infer(x, "FP32", True, True)
    validate("binary", p_b, l_b, s_b)
    check(np.max(np.abs(p_a - p_b)) <= 1e-6,
          f"JSON and binary probabilities differ by {np.max(np.abs(p_a - p_b)):.3g} (> 1e-6)")
    check(l_a == l_b, f"JSON labels {l_a} differ from binary labels {l_b}")
    # (c) raw UINT8 pixels, preprocessed by the server.
    px = np.round(x * 255.0).astype(np.uint8)
    px = px[:, 0] if c == 1 else np.transpose(px, (0, 2, 3, 1))  # [N, H, W] or [N, H, W, C]
    _, p_c, l_c, s_c = infer(px, "UINT8", True, False)
    validate("UINT8", p_c, l_c, s_c)
    d = np.max(np.abs(p_a - p_c))
    check(d <= 1e-2, f"UINT8 probabilities differ from FP32 by {d:.3g} (> 1e-2)")
    # (d) BYTES: the same pixels as PNG files, decoded and preprocessed by the server.
    files = np.array([png_bytes(im) for im in px], dtype=np.object_)
    _, p_d, l_d, s_d = infer(files, "BYTES", True, True)
    validate("BYTES", p_d, l_d, s_d)
    dd = np.max(np.abs(p_c - p_d))
    check(dd <= 1e-6, f"BYTES (PNG) probabilities differ from UINT8 by {dd:.3g} (> 1e-6)")

    # Authentication: no token, and a wrong one.
    expect_401("get_model_metadata without token", lambda: client.get_model_metadata(model))
    wrong = {"Authorization": "Bearer mdai_" + "A" * 43}
    i = httpclient.InferInput(in_name, list(x.shape), "FP32")
    i.set_data_from_numpy(x)
    expect_401("infer without token", lambda: client.infer(model, [i]))
    expect_401("infer with a wrong token", lambda: client.infer(model, [i], headers=wrong))

    client.close()
    return {"model": model, "classes": classes, "probabilities": p_a.tolist(), "labels": l_a,
            "max_abs_diff_json_binary": float(np.max(np.abs(p_a - p_b))),
            "max_abs_diff_uint8_fp32": float(d), "max_abs_diff_png_uint8": float(dd)}


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: python3 tests/serve/tritonclient_check.py URL TOKEN MODEL")
    url, token, model = sys.argv[1:]
    try:
        out = run(url, token, model)
    except CheckFailed as e:
        print(f"tritonclient_check: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    except InferenceServerException as e:
        print(f"tritonclient_check: FAILED: server answered HTTP {e.status()}: {e.message()}"
              + (" (is TOKEN right?)" if e.status() == "401" else ""), file=sys.stderr)
        sys.exit(1)
    except (ConnectionError, OSError) as e:
        print(f"tritonclient_check: FAILED: cannot reach {url}: {e}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
