#!/usr/bin/env python3
"""The PyTorch fp32 anchor for the GPU engine: Lee–Seung multiplicative updates on one GPU.

Usage:
    python benches/torch_mu.py [--shape M,N,R ...] [--iterations 50] [--repeats 3] [--json FILE]

For every shape and both losses (Frobenius, KL) it runs the same loop as nmf-gpu's MU solver
(W first, then H, an epsilon floor on the denominators) in float32 with TF32 disabled, so
tensor cores do not change the arithmetic, and prints ms per iteration and GFLOP/s counted as
`nmf-bench` counts them: 4mnr + 4(m+n)r² per iteration for both losses (a count for comparing
times, not a kernel's own flops). The data and start follow nmf-bench: V uniform in [0, 1),
W0, H0 = sqrt(mean(V)/r)·|N(0,1)| (the generator differs, so the values do too).
"""
import argparse
import json
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", action="append", default=[])
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    shapes = args.shape or ["361,2429,49", "4096,4096,64", "10000,5000,128"]

    import torch

    if not torch.cuda.is_available():
        print("torch_mu: no CUDA device; nothing measured", file=sys.stderr)
        return 1
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    dev = torch.device("cuda")
    eps = torch.finfo(torch.float32).eps
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, TF32 off")

    def mu_frobenius(v, w, h, iters):
        for _ in range(iters):
            hht = h @ h.T
            w.mul_((v @ h.T) / torch.clamp(w @ hht, min=eps))
            wtw = w.T @ w
            h.mul_((w.T @ v) / torch.clamp(wtw @ h, min=eps))
        return w, h

    def mu_kl(v, w, h, iters):
        for _ in range(iters):
            ratio = v / torch.clamp(w @ h, min=eps)
            w.mul_((ratio @ h.T) / torch.clamp(h.sum(dim=1)[None, :], min=eps))
            ratio = v / torch.clamp(w @ h, min=eps)
            h.mul_((w.T @ ratio) / torch.clamp(w.sum(dim=0)[:, None], min=eps))
        return w, h

    records = []
    for s in shapes:
        m, n, r = (int(x) for x in s.split(","))
        g = torch.Generator(device=dev).manual_seed(0)
        v = torch.rand((m, n), generator=g, device=dev, dtype=torch.float32)
        avg = (v.mean() / r).sqrt()
        w0 = avg * torch.randn((m, r), generator=g, device=dev).abs()
        h0 = avg * torch.randn((r, n), generator=g, device=dev).abs()
        flops = 4.0 * m * n * r + 4.0 * (m + n) * r * r
        for loss, step in (("frobenius", mu_frobenius), ("kl", mu_kl)):
            step(v, w0.clone(), h0.clone(), 2)  # warm-up
            torch.cuda.synchronize()
            times = []
            for _ in range(args.repeats):
                w, h = w0.clone(), h0.clone()
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                step(v, w, h, args.iterations)
                torch.cuda.synchronize()
                times.append((time.perf_counter() - t0) * 1e3 / args.iterations)
            times.sort()
            ms = times[len(times) // 2]
            rel = float(torch.linalg.norm(v - w @ h) / torch.linalg.norm(v))
            rec = {"case": f"{m}x{n}r{r}", "m": m, "n": n, "r": r, "loss": loss,
                   "iterations": args.iterations, "ms_per_iter": ms, "ms_min": times[0],
                   "ms_max": times[-1], "gflops": flops / (ms * 1e-3) / 1e9, "rel_error": rel,
                   "device": torch.cuda.get_device_name(0), "torch": torch.__version__}
            records.append(rec)
            print(f"{rec['case']:>20} {loss:>9} {ms:9.3f} ms/iter {rec['gflops']:9.1f} GFLOP/s  rel error {rel:.5f}")
        del v, w0, h0
        torch.cuda.empty_cache()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(records, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
