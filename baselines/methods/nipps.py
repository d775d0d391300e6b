"""NIPPS - non-negative IPI with partial sum minimisation of singular values (spec 3.6)."""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import scipy.linalg as sla

from ..registry import register
from .patches import extract_patches, patch_grid, reconstruct_mean
from .svd import PartialSVD, low_rank, top_singular_values


def energy_rank(d: np.ndarray, ratio: float) -> int:
    """Count of leading singular values with s_i / s_1 >= ratio (at least 1; min(shape) when
    none falls below), from the exact spectrum (Gram eigenvalues)."""
    small = d.T @ d if d.shape[1] <= d.shape[0] else d @ d.T
    w = sla.eigh(small, eigvals_only=True, driver="evr", check_finite=False)[::-1]
    s = np.sqrt(np.maximum(w, 0.0))
    if s[0] <= 0:
        return 1
    below = np.nonzero(s / s[0] < ratio)[0]
    if len(below) == 0:
        return len(s)
    return max(int(below[0]), 1)


def ialm_pssv(d: np.ndarray, lam: float, n_keep: int, tol: float = 1e-7, max_iter: int = 1000,
              rho: float = 1.5, info: Optional[Dict] = None) -> np.ndarray:
    """Non-negative sparse part E of D = A + E by inexact ALM with PSSV (keep the ``n_keep``
    largest singular values). ``d``: (m, n) float64. Returns E (m, n) >= 0."""
    norm2 = float(top_singular_values(d, 1)[0])
    norm_inf = float(np.abs(d).max()) / lam
    y = d / max(norm2, norm_inf)
    a = np.zeros_like(d)
    e = np.empty_like(d)
    work = np.empty_like(d)
    mu = 1.25 / norm2
    mu_bar = mu * 1e7
    d_norm = float(np.linalg.norm(d))
    svd = PartialSVD()
    it = 0
    for it in range(1, max_iter + 1):
        # E = max(D - A + Y/mu - lam/mu, 0)
        np.multiply(y, 1.0 / mu, out=work)
        work += d
        np.subtract(work, a, out=e)
        e -= lam / mu
        np.maximum(e, 0.0, out=e)
        # A = PSSV_N(D - E + Y/mu, 1/mu)
        work -= e
        u, s, vt = svd.svt(work, 1.0 / mu, keep=n_keep)
        low_rank(u, s, vt, out=a)
        # Z = D - A - E; Y += mu Z
        np.subtract(d, a, out=work)
        work -= e
        err = float(np.linalg.norm(work)) / d_norm
        work *= mu
        y += work
        mu = min(rho * mu, mu_bar)
        if info is not None:
            info.setdefault("trace", []).append((len(s), err))
        if err < tol:
            break
    if info is not None:
        info.update(iterations=it)
    return e


@register("nipps", citation="Y. Dai, Y. Wu, Y. Song, J. Guo, \"Non-negative infrared patch-image "
          "model: Robust target-background separation via partial sum minimization of singular "
          "values,\" Infrared Physics & Technology, 81:182-194, 2017.", min_size="patch",
          patch=50, step=10, lam_l=2.0, ratio=0.005, tol=1e-7, max_iter=1000)
def nipps(image: np.ndarray, patch: int = 50, step: int = 10, lam_l: float = 2.0,
          ratio: float = 0.005, tol: float = 1e-7, max_iter: int = 1000) -> np.ndarray:
    """NIPPS: non-negative target image, IALM + PSSV on the 0-255 patch-image.

    Patch 50, step 10 (Dai grid with forced border patches), lam = lam_l / sqrt(min(m, n)),
    N = number of singular values with s_i / s_1 >= ratio, mean reconstruction.
    """
    h, w = image.shape
    rows, cols = patch_grid((h, w), patch, step, "dai")
    d = extract_patches(image, rows, cols, patch, order="col").reshape(-1, patch * patch)
    lam = lam_l / np.sqrt(min(d.shape))
    n_keep = energy_rank(d, ratio)
    e = ialm_pssv(d, lam, n_keep, tol, max_iter)
    return reconstruct_mean(e.reshape(-1, patch, patch), (h, w), rows, cols, order="col")
