#!/usr/bin/env python3
"""Online NMF at scale: a features x samples .npy larger than memory, one epoch of `nmf fit --online`.

Writes V (float32, Fortran order, so each sample is contiguous on disk) as a low-rank matrix
plus 10% uniform noise, chunk by chunk (never whole in memory), then runs

    nmf fit --online -i V.npy -r R --batch-size B --epochs 1 --max-no-improvement 0 --tol 0
        --no-h -o OUT

(every sample seen once: no early stop) under /usr/bin/time -v, and prints the wall time, the samples per second the CLI reports and
the peak resident memory (VmHWM of the nmf process).

    python3 scripts/bench-online-scale.py [--features 1024] [--samples 8000000] [--rank 64]
        [--batch-size 1024] [--dir /tmp] [--keep] [--nmf target/release/nmf]

The default is 1024 x 8 000 000: 32.8 GB of data. Needs numpy and about that much free disk.
"""
import argparse
import os
import re
import shutil
import subprocess
import tempfile
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--features", type=int, default=1024)
    ap.add_argument("--samples", type=int, default=8_000_000)
    ap.add_argument("--rank", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--dir", default=tempfile.gettempdir())
    ap.add_argument("--keep", action="store_true", help="keep V.npy (reused when present)")
    ap.add_argument("--nmf", default="target/release/nmf")
    a = ap.parse_args()
    m, n, r = a.features, a.samples, a.rank
    work = os.path.join(a.dir, f"nmf-online-{m}x{n}")
    os.makedirs(work, exist_ok=True)
    path = os.path.join(work, "V.npy")
    need = m * n * 4
    if not os.path.exists(path):
        free = shutil.disk_usage(a.dir).free
        if free < need + (1 << 30):
            raise SystemExit(f"need {need / 1e9:.1f} GB free in {a.dir}, have {free / 1e9:.1f} GB")
        t0 = time.perf_counter()
        rng = np.random.default_rng(0)
        w = rng.random((m, r), dtype=np.float32)
        v = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(m, n),
                                      fortran_order=True)
        chunk = 65536
        for j in range(0, n, chunk):
            c = min(chunk, n - j)
            h = rng.random((r, c), dtype=np.float32)
            block = w @ h
            block += 0.1 * r * 0.25 * rng.random((m, c), dtype=np.float32)
            v[:, j:j + c] = block
            if j // chunk % 16 == 0:
                v.flush()
        v.flush()
        del v
        print(f"wrote {path}: {m} x {n} float32, {need / 1e9:.1f} GB in {time.perf_counter() - t0:.0f} s")
    out = os.path.join(work, "model")
    cmd = ["/usr/bin/time", "-v", a.nmf, "fit", "--online", "-i", path, "-r", str(r),
           "--batch-size", str(a.batch_size), "--epochs", "1", "--max-no-improvement", "0",
           "--tol", "0", "--no-h", "-o", out]
    print("$", " ".join(cmd))
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    print(p.stdout)
    if p.returncode != 0:
        print(p.stderr)
        raise SystemExit(p.returncode)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    peak = f"peak RSS {int(rss.group(1)) / 1024:.0f} MiB" if rss else "peak RSS unknown"
    print(f"wall {wall:.1f} s for the whole epoch (start-up included), {n / wall:.0f} samples/s, {peak}")
    shutil.rmtree(out, ignore_errors=True)
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
