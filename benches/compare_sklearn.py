#!/usr/bin/env python3
"""Run scikit-learn's NMF and nmf-gpu on the same matrix from the same start and compare.

Usage (in a throwaway virtualenv with numpy and scikit-learn; the script drops
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for itself):
    python benches/compare_sklearn.py \
        [--shape 361,2429,49 | --faces DIR --rank 49] [--iterations 200] [--threads 2] \
        [--repeats 3] [--only mu_frobenius,hals] [--time-to-error] [--blas-haswell]

For each case (MU with the Frobenius, KL, Itakura–Saito and β = 1.5 losses; HALS vs
scikit-learn's CD) it prints the final relative
error ||V - WH|| / ||V|| of both and their gap, and the milliseconds per iteration of both:
the best of --repeats fits, taken in turns (scikit-learn's fit of each case, then ours), so that
both sides see the same load on a shared machine. --only keeps some of the cases
(mu_frobenius, mu_kl, mu_is, mu_beta1.5, hals; the default leaves out the last two MU ones). NMF_PARITY=PATH runs that parity binary instead of
`cargo run --example parity`.

With --time-to-error it runs scikit-learn's CD for --iterations (tol 0) and takes the relative
error E it reaches; then it times how long nmf-gpu's HALS and accelerated HALS take (from the
same start, the loss checked after every iteration) until their error first reaches E, within
10x the iterations, against scikit-learn CD's time. Both sides time one fit after a
warm-up.

--faces DIR reads every binary PGM (P5) under DIR in natural file order (the ORL faces of
shared/data) as the columns of V (pixels x images), scaled to [0, 1].
Orientation: V (m x n) is given to scikit-learn as X directly, so W (m x r) and H (r x n) mean
the same thing in both libraries and the update order (W, then H) is the same.
"""
import argparse
import json
import os
import re
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
    ap.add_argument("--faces", help="a directory of PGM images: V = pixels x images")
    ap.add_argument("--rank", type=int, default=49, help="the rank with --faces")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", default="mu_frobenius,mu_kl,hals",
                    help="cases: mu_frobenius, mu_kl, mu_is, mu_beta1.5, hals")
    ap.add_argument("--time-to-error", action="store_true")
    ap.add_argument("--blas-haswell", action="store_true",
                    help="run scikit-learn on OpenBLAS's AVX2 (Haswell) kernels")
    args = ap.parse_args()
    # OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE may force slow OpenBLAS kernels on these machines:
    # restart once without them, before numpy loads OpenBLAS; with --blas-haswell, with
    # OPENBLAS_CORETYPE=Haswell alone (OpenBLAS's AVX2 kernels, to compare with NMF_SIMD=avx2
    # as an AVX2 machine would).
    want = {"OPENBLAS_CORETYPE": "Haswell"} if args.blas_haswell else {}
    have = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    if have != want:
        env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
        env.update(want)
        os.execve(sys.executable, [sys.executable] + sys.argv, env)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)
    from sklearn.decomposition import NMF  # after the thread settings

    rng = np.random.default_rng(args.seed)
    if args.faces:
        v = read_pgm_dir(args.faces)
        (m, n), r = v.shape, args.rank
    else:
        m, n, r = (int(x) for x in args.shape.split(","))
        v = rng.random((m, n), dtype=np.float32)
    avg = np.sqrt(v.mean() / r)
    w0 = (avg * np.abs(rng.standard_normal((m, r)))).astype(np.float32)
    h0 = (avg * np.abs(rng.standard_normal((r, n)))).astype(np.float32)

    if args.time_to_error:
        return time_to_error(args, v, w0, h0, NMF)
    cases = [("mu_frobenius", "mu", "frobenius"), ("mu_kl", "mu", "kullback-leibler"),
             ("mu_is", "mu", "itakura-saito"), ("mu_beta1.5", "mu", 1.5), ("hals", "cd", "frobenius")]
    cases = [c for c in cases if c[0] in args.only.split(",")]
    keys = ",".join(c[0] for c in cases)
    sk_best = {key: (float("inf"), None) for key, _, _ in cases}
    ours_best = {key: {"ms_per_iter": float("inf")} for key, _, _ in cases}
    for _ in range(args.repeats):
        for key, solver, loss in cases:
            model = NMF(n_components=r, init="custom", solver=solver, beta_loss=loss,
                        max_iter=args.iterations, tol=0.0, shuffle=False)
            t = time.perf_counter()
            w = model.fit_transform(v, W=w0.copy(), H=h0.copy())
            ms = (time.perf_counter() - t) * 1e3 / args.iterations
            if ms < sk_best[key][0]:
                sk_best[key] = (ms, (w, model.components_))
        let_blas_rest()
        ours = run_parity(v, w0, h0, [str(args.iterations), "--only", keys])
        for key in ours:
            if ours[key]["ms_per_iter"] < ours_best[key]["ms_per_iter"]:
                ours_best[key] = ours[key]

    vn = np.linalg.norm(v)
    print(f"V {m}x{n}, r={r}, {args.iterations} iterations, tol=0, same W0/H0, {args.threads} threads, "
          f"best of {args.repeats} fits taken in turns")
    print(f"{'case':<14}{'sklearn err':>14}{'nmf-gpu err':>14}{'gap %':>9}{'sk ms/it':>10}{'ours ms/it':>11}{'speedup':>9}")
    for key, _, _ in cases:
        sk_ms, (w, h) = sk_best[key]
        sk_err = np.linalg.norm(v - w @ h) / vn
        our_err = ours_best[key]["rel_error"]
        our_ms = ours_best[key]["ms_per_iter"]
        gap = 100.0 * (our_err - sk_err) / sk_err
        print(f"{key:<14}{sk_err:>14.6f}{our_err:>14.6f}{gap:>9.4f}{sk_ms:>10.2f}{our_ms:>11.2f}{sk_ms / our_ms:>8.2f}x")


def let_blas_rest():
    """Wait until OpenBLAS's threads have stopped spinning after scikit-learn's last call (they
    busy-wait before they sleep), so that they do not take the cores from our fit, which runs
    in another process right after: at 361 x 2429 our MU fit measured 1.17 ms per iteration
    half a second after scikit-learn's and 1.06 three seconds after."""
    time.sleep(1.0)


def run_parity(v, w0, h0, extra):
    """Run the parity example on (V, W0, H0) with these arguments; its JSON line."""
    with tempfile.TemporaryDirectory() as d:
        for name, a in (("V", v), ("W0", w0), ("H0", h0)):
            np.save(os.path.join(d, f"{name}.npy"), a)
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        # NMF_PARITY: a parity binary built beforehand (the tree may change while this runs).
        cmd = os.environ.get("NMF_PARITY")
        cmd = [cmd] if cmd else ["cargo", "run", "--quiet", "--release", "--example", "parity", "--"]
        out = subprocess.run(
            cmd + [d] + extra,
            cwd=root, check=True, capture_output=True, text=True,
        ).stdout
        return json.loads(out.strip().splitlines()[-1])


def time_to_error(args, v, w0, h0, NMF):
    """scikit-learn CD's error after --iterations, and the time each of our solvers takes to it."""
    m, n = v.shape
    r = w0.shape[1]
    vn = np.linalg.norm(v)
    times = []
    for _ in range(2):  # a warm-up, then the timed fit
        model = NMF(n_components=r, init="custom", solver="cd", max_iter=args.iterations,
                    tol=0.0, shuffle=False)
        t = time.perf_counter()
        w = model.fit_transform(v, W=w0.copy(), H=h0.copy())
        times.append((time.perf_counter() - t) * 1e3)
    sk_ms = times[-1]
    target = float(np.linalg.norm(v - w @ model.components_) / vn)
    let_blas_rest()
    ours = run_parity(v, w0, h0, [str(10 * args.iterations), "--time-to-error", repr(target)])
    print(f"V {m}x{n}, r={r}: time to scikit-learn CD's relative error after {args.iterations} "
          f"iterations, E = {target:.6f}; same W0/H0, {args.threads} threads")
    print(f"{'solver':<22}{'iterations':>11}{'ms':>10}{'vs sklearn CD':>15}")
    print(f"{'sklearn cd':<22}{args.iterations:>11}{sk_ms:>10.1f}{1.0:>14.2f}x")
    for key, name in (("hals", "nmf-gpu hals"), ("ahals", "nmf-gpu ahals")):
        o = ours[key]
        if o["reached"]:
            print(f"{name:<22}{o['iterations']:>11}{o['ms']:>10.1f}{sk_ms / o['ms']:>14.2f}x")
        else:
            print(f"{name:<22}{'not reached':>11}  (best {o['best_rel_error']:.6f} in {10 * args.iterations} iterations)")


def read_pgm_dir(root):
    """Every binary PGM under root, in natural file order, as columns of V scaled to [0, 1]."""
    def natural(p):
        return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p)]
    paths = []
    for d, _, files in os.walk(root):
        paths += [os.path.join(d, f) for f in files if f.lower().endswith(".pgm")]
    paths.sort(key=lambda p: natural(os.path.relpath(p, root)))
    cols = []
    for p in paths:
        with open(p, "rb") as f:
            data = f.read()
        fields, pos = [], 0
        while len(fields) < 4:  # magic, width, height, maxval; comments start with '#'
            while data[pos:pos + 1].isspace():
                pos += 1
            if data[pos:pos + 1] == b"#":
                pos = data.index(b"\n", pos)
                continue
            end = pos
            while not data[end:end + 1].isspace():
                end += 1
            fields.append(data[pos:end])
            pos = end
        if fields[0] != b"P5" or int(fields[3]) > 255:
            raise SystemExit(f"{p}: not an 8-bit binary PGM")
        w, h = int(fields[1]), int(fields[2])
        pix = np.frombuffer(data[pos + 1:pos + 1 + w * h], dtype=np.uint8)
        cols.append(pix.astype(np.float32) / 255.0)
    if not cols:
        raise SystemExit(f"{root}: no PGM images")
    return np.stack(cols, axis=1)


if __name__ == "__main__":
    main()
