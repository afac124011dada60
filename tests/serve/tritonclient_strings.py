#!/usr/bin/env python3
"""Check a text or SMILES model behind `medai serve` with NVIDIA's official Triton HTTP client.

usage: python3 tests/serve/tritonclient_strings.py URL TOKEN MODEL EXPECTED.json
       (URL: http://host:port or host:port; pip install 'tritonclient[http]')

EXPECTED.json holds {"inputs": [str, ...], "outputs": {NAME: [[...], ...] or [str, ...]}}: the
strings to send and what `medai predict` gave for them (e.g. "probabilities" and "label" for a
classifier, "prediction" and "uncertainty" for a regression model).

Checks the model metadata (one BYTES input), then sends the strings as a numpy object array of
shape [N, 1] in JSON mode and in binary mode (binary outputs too): both must return every
expected output, numbers within 1e-5 and labels equal. Prints one JSON line; exit status 0 on
success, 1 on failure.
"""
import json
import sys

import numpy as np

try:
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException
except ImportError:  # pragma: no cover
    sys.exit("tritonclient_strings: needs the Triton client: pip install 'tritonclient[http]'")


class CheckFailed(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise CheckFailed(msg)


def as_str(v):
    return v.decode("utf-8") if isinstance(v, (bytes, np.bytes_)) else str(v)


def run(url, token, model, expected):
    hostport = url.split("://", 1)[-1].rstrip("/")
    client = httpclient.InferenceServerClient(url=hostport, network_timeout=60.0)
    auth = {"Authorization": f"Bearer {token}"}
    meta = client.get_model_metadata(model, headers=auth)
    check(len(meta.get("inputs", [])) == 1, f"expected one input: {meta}")
    inp = meta["inputs"][0]
    check(inp["datatype"] == "BYTES", f"input datatype {inp['datatype']}, expected BYTES")
    names = list(expected["outputs"])
    meta_outs = {o["name"] for o in meta.get("outputs", [])}
    check(set(names) <= meta_outs, f"metadata outputs {sorted(meta_outs)} lack {names}")
    texts = expected["inputs"]
    x = np.array([t.encode("utf-8") for t in texts], dtype=np.object_).reshape(-1, 1)
    worst = 0.0
    for binary in (False, True):
        mode = "binary" if binary else "JSON"
        i = httpclient.InferInput(inp["name"], list(x.shape), "BYTES")
        i.set_data_from_numpy(x, binary_data=binary)
        outs = [httpclient.InferRequestedOutput(n, binary_data=binary) for n in names]
        res = client.infer(model, [i], outputs=outs, headers=auth)
        for n in names:
            got = res.as_numpy(n)
            check(got is not None, f"{mode}: output {n} missing")
            want = expected["outputs"][n]
            check(got.shape[0] == len(texts), f"{mode}: {n} has {got.shape[0]} rows, sent {len(texts)}")
            if got.dtype == np.object_:
                got = [as_str(v) for v in got.reshape(-1)]
                check(got == want, f"{mode}: {n} = {got}, expected {want}")
            else:
                d = float(np.max(np.abs(got.astype(np.float64) - np.array(want, dtype=np.float64))))
                check(d <= 1e-5, f"{mode}: {n} differs from medai predict by {d:.3g} (> 1e-5)")
                worst = max(worst, d)
    client.close()
    return {"model": model, "inputs": len(texts), "outputs": names, "max_abs_diff": worst}


def main():
    if len(sys.argv) != 5:
        sys.exit("usage: python3 tests/serve/tritonclient_strings.py URL TOKEN MODEL EXPECTED.json")
    url, token, model, path = sys.argv[1:]
    with open(path, encoding="utf-8") as f:
        expected = json.load(f)
    try:
        out = run(url, token, model, expected)
    except CheckFailed as e:
        print(f"tritonclient_strings: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    except InferenceServerException as e:
        print(f"tritonclient_strings: FAILED: server answered HTTP {e.status()}: {e.message()}",
              file=sys.stderr)
        sys.exit(1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
