"""scikit-learn's NMF and nmf_gpu.NMF on the same data, from Python.

For each case (361 x 2429 r 49, 4096 x 4096 r 64; uniform random data, NNDSVDa start, tol 0 so
both run exactly the same iterations) it prints the end-to-end ``fit_transform`` time of each
package, the milliseconds per iteration, and the overhead of the Python call over the Rust
engine's own time (``fit_seconds_``): validation, the one float32 conversion, the call.

    python python/bench/compare_sklearn.py [--iters 50] [--backend cpu] [--skip-sklearn]
"""

import argparse
import time

import numpy as np

import nmf_gpu

CASES = [(361, 2429, 49), (4096, 4096, 64)]


def timed(f):
    t = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--solver", default="mu")
    ap.add_argument("--skip-sklearn", action="store_true")
    ap.add_argument("--dtype", default="float32")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"solver {args.solver}, {args.iters} iterations, tol 0, init nndsvda, "
          f"backend {args.backend}, X {args.dtype}")
    print(f"{'case':>20} {'package':>14} {'fit_transform s':>16} {'ms/iter':>9} "
          f"{'engine s':>9} {'overhead':>9}")
    for n_samples, n_features, r in CASES:
        X = rng.random((n_samples, n_features), dtype=np.float32).astype(args.dtype)
        case = f"{n_samples}x{n_features} r{r}"
        kw = dict(n_components=r, init="nndsvda", solver=args.solver, tol=0.0,
                  max_iter=args.iters)
        ours = nmf_gpu.NMF(backend=args.backend, **kw)
        _, t = timed(lambda: ours.fit_transform(X))
        over = (t - ours.fit_seconds_) / ours.fit_seconds_
        print(f"{case:>20} {'nmf_gpu':>14} {t:16.3f} {1e3 * t / ours.n_iter_:9.2f} "
              f"{ours.fit_seconds_:9.3f} {100 * over:8.2f}%   ({ours.engine_})")
        if not args.skip_sklearn:
            from sklearn.decomposition import NMF

            sk = NMF(**kw)
            _, t_sk = timed(lambda: sk.fit_transform(X))
            print(f"{case:>20} {'scikit-learn':>14} {t_sk:16.3f} "
                  f"{1e3 * t_sk / sk.n_iter_:9.2f}   relative error: sklearn "
                  f"{sk.reconstruction_err_ / np.linalg.norm(X):.6f}, nmf_gpu "
                  f"{ours.reconstruction_err_ / np.linalg.norm(X):.6f}")


if __name__ == "__main__":
    main()
