#!/usr/bin/env python
"""Cost floor of one exact singular value thresholding (SVT) step of IPI / NIPPS, one core.

    python tools/benchmark_svt_floor.py [--shapes 1024x1280,512x640] [--repeat 2]

For each image size (H x W) it builds a random patch-image of the size NIPPS's 50/10 grid gives
(D: n patches x 2500; IPI's grid has up to one patch row and column fewer), and times, on one
BLAS thread (as each benchmark worker runs), the steps of the cheapest exact SVT route for such
tall iterates (the Gram matrix of the 2500 columns, as ``baselines.methods.svd`` uses; a QR or a
direct SVD of the n x 2500 matrix costs more), whatever the code around them: the float32 Gram
matrix D^T D, the float64 tridiagonalisation of the 2500 x 2500 Gram matrix (``dsytrd``, the
part paid once the rank is too high for block Krylov), its full eigendecomposition (``syevd``,
the full-rank iterations of NIPPS) and the float32 product D @ M that forms the low-rank part.
"full-rank SVT" = Gram + eigh + product: the least one such iteration can cost; multiply by the
solver's iteration counts for a lower bound.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy is imported

import sys  # noqa: E402
import time  # noqa: E402
from typing import Callable, Tuple  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from scipy.linalg import lapack  # noqa: E402

from baselines.methods.patches import patch_grid  # noqa: E402
from sirst.cli import ArgumentParser, count, fail  # noqa: E402

PATCH, STEP = 50, 10


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """Fastest of ``repeat`` wall-clock timings of fn(), seconds."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def parse_shape(text: str) -> Tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        fail(f"--shapes: {text!r} is not HxW (e.g. 1024x1280)")
    if min(h, w) < PATCH:
        fail(f"--shapes: {text!r} is smaller than one {PATCH}x{PATCH} patch")
    return h, w


def main() -> int:
    ap = ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default="1024x1280,512x640", help="comma-separated HxW")
    ap.add_argument("--repeat", type=count, default=2, help="timings per step (best is kept)")
    args = ap.parse_args()
    shapes = [parse_shape(s) for s in args.shapes.split(",") if s.strip()]
    print("| image | D (patches x p^2) | Gram f32 (s) | dsytrd (s) | eigh f64 (s) "
          "| D @ M f32 (s) | full-rank SVT >= (s) |")
    print("|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for h, w in shapes:
        rows, cols = patch_grid((h, w), PATCH, STEP, "dai")
        n, m = len(rows) * len(cols), PATCH * PATCH
        d = rng.standard_normal((max(n, m), m)).astype(np.float32)  # tall, as the solvers see it
        k = (d.T @ d).astype(np.float64)
        lwork = int(lapack.dsytrd_lwork(m, lower=1)[0])
        mat = rng.standard_normal((m, m)).astype(np.float32)
        t_gram = best_of(lambda: d.T @ d, args.repeat)
        t_tri = best_of(lambda: lapack.dsytrd(k, lower=1, lwork=lwork), args.repeat)
        t_eig = best_of(lambda: np.linalg.eigh(k), args.repeat)
        t_prod = best_of(lambda: d @ mat, args.repeat)
        print(f"| {h}x{w} | {n} x {m} | {t_gram:.2f} | {t_tri:.2f} | {t_eig:.2f} | {t_prod:.2f} "
              f"| {t_gram + t_eig + t_prod:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
