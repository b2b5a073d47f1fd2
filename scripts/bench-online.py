#!/usr/bin/env python3
"""Online NMF: `nmf fit --online` (CPU engine) against scikit-learn's MiniBatchNMF.

Generates a nonnegative low-rank-plus-noise matrix V (features x samples), saves it as .npy,
and fits both for the same number of epochs with the same batch size, rank and tolerance 0
(no early stopping), then reports wall time of the fit and the relative error
||V - W H|| / ||V|| with H the encodings of every sample under the final W.

    python3 scripts/bench-online.py [--features 1024] [--samples 20000] [--rank 32]
                                    [--batch-size 1024] [--epochs 2] [--nmf target/release/nmf]

Needs numpy and scikit-learn (the repository's .venv has them).
"""
import argparse
import json
import os
import subprocess
import tempfile
import time

import numpy as np
from sklearn.decomposition import MiniBatchNMF


def rel_err(v, w, h):
    return float(np.linalg.norm(v - w @ h) / np.linalg.norm(v))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--features", type=int, default=1024)
    ap.add_argument("--samples", type=int, default=20000)
    ap.add_argument("--rank", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--nmf", default="target/release/nmf")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    m, n, r = a.features, a.samples, a.rank
    v = (rng.random((m, r)) @ rng.random((r, n)) + 0.1 * rng.random((m, n))).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "v.npy")
        np.save(path, v)
        out = os.path.join(tmp, "out")
        t = time.perf_counter()
        run = subprocess.run(
            [a.nmf, "fit", "--online", "-i", path, "-o", out, "-r", str(r),
             "--batch-size", str(a.batch_size), "--epochs", str(a.epochs), "--tol", "0",
             "--max-no-improvement", "0", "--backend", "cpu", "--json"],
            check=True, capture_output=True, text=True)
        ours_total = time.perf_counter() - t
        summary = json.loads(run.stdout)
        w = np.load(os.path.join(out, "W.npy"))
        h = np.load(os.path.join(out, "H.npy"))
        ours = {"fit_seconds": summary["seconds"], "h_seconds": summary["h_seconds"],
                "total_seconds": ours_total, "relative_error": rel_err(v, w, h),
                "epochs": summary["epochs"]}
    x = v.T.copy()  # scikit-learn's orientation: samples x features
    model = MiniBatchNMF(n_components=r, batch_size=a.batch_size, max_iter=a.epochs, tol=0.0,
                         max_no_improvement=None, init="nndsvda", random_state=0)
    t = time.perf_counter()
    model.fit(x)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    enc = model.transform(x)
    tr_s = time.perf_counter() - t
    sk = {"fit_seconds": fit_s, "transform_seconds": tr_s,
          "relative_error": rel_err(x, enc, model.components_), "epochs": model.n_iter_}
    print(json.dumps({"shape": [m, n], "rank": r, "batch_size": a.batch_size,
                      "epochs": a.epochs, "nmf_online": ours, "sklearn_minibatchnmf": sk},
                     indent=2))
    print(f"fit time: sklearn / nmf = {sk['fit_seconds'] / ours['fit_seconds']:.1f}x; "
          f"relative error nmf {ours['relative_error']:.4f}, sklearn {sk['relative_error']:.4f}")


if __name__ == "__main__":
    main()
