#!/usr/bin/env python3
"""scikit-learn's MU on a random sparse V beside `nmf-bench --sparse` on the same kind of V.

Usage (numpy, scipy and scikit-learn installed; build `nmf-bench` first with
`cargo build --release --bin nmf-bench`):
    python benches/compare_sklearn_sparse.py [--case 20000,50000,0.005,20] [--iterations 21]
        [--loss frobenius|kullback-leibler] [--threads 2] [--bench target/release/nmf-bench]

V is m x n with round(d·m·n) entries at uniform random positions (repeats summed), values uniform
in [0, 1), as `nmf-bench --sparse M,N,D,R` draws it (a different generator: the same size,
density and value law, not the same entries). scikit-learn gets V's transpose as X (CSR),
`init='random'`, `solver='mu'`, `tol=0`; its time per iteration is the difference of the
fastest `--iterations` fit and the fastest 1-iteration fit (`--repeats` of each, interleaved)
over `iterations − 1`, as nmf-bench measures its own (set-up excluded on both sides). Then nmf-bench runs the same case and the ratio is printed.
"""
import argparse
import os
import subprocess
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", default="20000,50000,0.005,20", help="M,N,D,R")
    ap.add_argument("--iterations", type=int, default=21)
    ap.add_argument("--loss", default="frobenius", choices=["frobenius", "kullback-leibler"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--bench", default="target/release/nmf-bench")
    args = ap.parse_args()
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "RAYON_NUM_THREADS"):
        os.environ[k] = str(args.threads)
    import numpy as np
    import scipy.sparse as sp
    from sklearn.decomposition import NMF

    m, n, d, r = args.case.split(",")
    m, n, d, r = int(m), int(n), float(d), int(r)
    rng = np.random.default_rng(0)
    count = int(round(d * m * n))
    rows = rng.integers(0, m, count)
    cols = rng.integers(0, n, count)
    vals = rng.random(count, dtype=np.float32)
    v = sp.coo_matrix((vals, (rows, cols)), shape=(m, n)).tocsr()
    v.sum_duplicates()
    x = v.T.tocsr()  # samples x features
    print(f"V {m} x {n}, {v.nnz} stored entries ({100.0 * v.nnz / (m * n):.3f}%), r {r}")

    def fit(iters):
        model = NMF(n_components=r, init="random", solver="mu", beta_loss=args.loss,
                    tol=0.0, max_iter=iters, random_state=0)
        t = time.perf_counter()
        model.fit_transform(x)
        return (time.perf_counter() - t) * 1e3

    import warnings
    warnings.simplefilter("ignore")
    # Interleaved 1- and N-iteration fits; the minimum of each over the repeats (the machine
    # may be shared), then the difference per iteration.
    t1, tn = [], []
    for _ in range(args.repeats):
        t1.append(fit(1))
        tn.append(fit(args.iterations))
    sk = (min(tn) - min(t1)) / (args.iterations - 1)
    print(f"scikit-learn MU {args.loss}: {sk:.1f} ms/iter (1-iteration fits "
          + ", ".join(f"{t:.0f}" for t in t1) + f" ms; {args.iterations}-iteration fits "
          + ", ".join(f"{t:.0f}" for t in tn) + " ms)")

    if not os.path.exists(args.bench):
        print(f"{args.bench} not found: build it to compare", file=sys.stderr)
        return
    out = subprocess.run(
        [args.bench, "--backend", "cpu", "--sparse", args.case, "--solver", "mu", "--loss",
         {"frobenius": "frobenius", "kullback-leibler": "kl"}[args.loss], "--iterations", str(args.iterations), "--repeats", "3"],
        capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if "ms/iter" in line and " mu " in f" {line} ":
            ours = float(line.split(":")[1].split("ms/iter")[0])
            print(line.strip())
            print(f"scikit-learn / nmf-gpu: {sk / ours:.1f}x")


if __name__ == "__main__":
    main()
