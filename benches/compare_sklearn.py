#!/usr/bin/env python3
"""Run scikit-learn's NMF and nmf-gpu on the same matrix from the same start and compare.

Usage (in a throwaway virtualenv with numpy and scikit-learn; the script drops
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for itself):
    python benches/compare_sklearn.py \
        [--shape 361,2429,49] [--iterations 200] [--threads 2]

For each solver (MU Frobenius, MU KL, HALS vs scikit-learn's CD) it prints the final relative
error ||V - WH|| / ||V|| of both and their gap, and the milliseconds per iteration of both.
Orientation: V (m x n) is given to scikit-learn as X directly, so W (m x r) and H (r x n) mean
the same thing in both libraries and the update order (W, then H) is the same.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="361,2429,49")
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    # OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE may force slow OpenBLAS kernels on these machines:
    # restart once without them, before numpy loads OpenBLAS.
    if any(v in os.environ for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")):
        env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
        os.execve(sys.executable, [sys.executable] + sys.argv, env)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)
    from sklearn.decomposition import NMF  # after the thread settings

    m, n, r = (int(x) for x in args.shape.split(","))
    rng = np.random.default_rng(args.seed)
    v = rng.random((m, n), dtype=np.float32)
    avg = np.sqrt(v.mean() / r)
    w0 = (avg * np.abs(rng.standard_normal((m, r)))).astype(np.float32)
    h0 = (avg * np.abs(rng.standard_normal((r, n)))).astype(np.float32)

    with tempfile.TemporaryDirectory() as d:
        for name, a in (("V", v), ("W0", w0), ("H0", h0)):
            np.save(os.path.join(d, f"{name}.npy"), a)
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        out = subprocess.run(
            ["cargo", "run", "--quiet", "--release", "--example", "parity", "--", d, str(args.iterations)],
            cwd=root, check=True, capture_output=True, text=True,
        ).stdout
        ours = json.loads(out.strip().splitlines()[-1])

    cases = [("mu_frobenius", "mu", "frobenius"), ("mu_kl", "mu", "kullback-leibler"), ("hals", "cd", "frobenius")]
    vn = np.linalg.norm(v)
    print(f"V {m}x{n}, r={r}, {args.iterations} iterations, tol=0, same W0/H0, {args.threads} threads")
    print(f"{'case':<14}{'sklearn err':>14}{'nmf-gpu err':>14}{'gap %':>9}{'sk ms/it':>10}{'ours ms/it':>11}{'speedup':>9}")
    for key, solver, loss in cases:
        model = NMF(n_components=r, init="custom", solver=solver, beta_loss=loss,
                    max_iter=args.iterations, tol=0.0, shuffle=False)
        t = time.perf_counter()
        w = model.fit_transform(v, W=w0.copy(), H=h0.copy())
        sk_ms = (time.perf_counter() - t) * 1e3 / args.iterations
        sk_err = np.linalg.norm(v - w @ model.components_) / vn
        our_err = ours[key]["rel_error"]
        our_ms = ours[key]["ms_per_iter"]
        gap = 100.0 * (our_err - sk_err) / sk_err
        print(f"{key:<14}{sk_err:>14.6f}{our_err:>14.6f}{gap:>9.4f}{sk_ms:>10.2f}{our_ms:>11.2f}{sk_ms / our_ms:>8.2f}x")


if __name__ == "__main__":
    main()
