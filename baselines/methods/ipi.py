"""IPI - infrared patch-image model, Gao's APG solver (spec 3.5), fast implementation.

Speed-ups over the straightforward port (``baselines.methods.reference``), same algorithm:
the patch-image is built transposed (patches x p^2) as one copy of a strided view; the
dense updates reuse preallocated buffers (no page faults from fresh temporaries); singular
value thresholding uses a warm-started randomised partial SVD (low ranks) or the Gram-matrix eigendecomposition
restricted to eigenvalues above thr^2 (high ranks), both returning every singular value above
the threshold; the last iteration before the rank-cap stop skips the SVD vectors (only the
rank is needed); the stopping criterion uses
||S_A||^2 + ||S_E||^2 = 2 ||(A_new - Y_A) - (E_new - Y_E)||^2 (valid for tau = 2).
"""
from __future__ import annotations

from typing import Dict, Optional

import time

import numpy as np

from ..registry import register
from .patches import extract_patches, patch_grid, reconstruct_median
from .svd import PartialSVD, low_rank, top_singular_values

TAU = 2.0  # Lipschitz constant of the RPCA problem (fixed in Gao's code)


def apg_rpca(d: np.ndarray, lam: float, tol: float = 1e-6, max_iter: int = 1000,
             info: Optional[Dict] = None) -> np.ndarray:
    """Sparse part E of D = A + E by Gao's APG (continuation mu <- max(0.9 mu, 0.005 s4),
    mu0 = s2, rank-stability and 0.3 min(m, n) stops). ``d``: (m, n) float64, not modified.
    Returns E (m, n); ``info`` receives iterations, rank, card and the stop reason."""
    m, n = d.shape
    sv = top_singular_values(d, 4)
    sv = np.concatenate([sv, np.zeros(4 - len(sv))])
    mu, mu_bar = float(sv[1]), 0.005 * float(sv[3])
    e = np.zeros_like(d)
    e_prev = np.zeros_like(d)
    a_cur = np.zeros_like(d)
    a_prev = np.zeros_like(d)
    h = np.empty_like(d)
    g = np.empty_like(d)
    t_k = t_km1 = 1.0
    svd = PartialSVD()
    cap = int(np.floor(0.3 * min(m, n)))  # rank_a > 0.3 min(m, n) stops the solver
    pre_rank, pre_card, counter = 0, 0, 0
    reason, it, card, rank_a = "max_iter", 0, 0, 0
    t0 = time.perf_counter()
    for it in range(1, max_iter + 1):
        beta = (t_km1 - 1.0) / t_k
        # H = D - Y_E, with Y_E = E + beta (E - E_prev)
        np.subtract(e, e_prev, out=h)
        h *= -beta
        h -= e
        h += d
        # G_A = Y_A - (Y_A + Y_E - D) / 2 = (Y_A + H) / 2, with Y_A = A + beta (A - A_prev)
        np.subtract(a_cur, a_prev, out=g)
        g *= beta
        g += a_cur
        g += h
        g *= 0.5
        thr_a = mu / TAU
        trip, rank_a = svd.triplets(g, thr_a, max_rank=cap)
        # G_E = Y_E - (Y_A + Y_E - D) / 2 = D - G_A; E_new = soft(G_E, lam mu / 2)
        np.subtract(d, g, out=g)
        thr_e = lam * mu / TAU
        np.clip(g, -thr_e, thr_e, out=e_prev)
        np.subtract(g, e_prev, out=e_prev)
        e_new = e_prev
        card = int(np.count_nonzero(e_new))
        if info is not None:
            info.setdefault("trace", []).append((rank_a, card, round(time.perf_counter() - t0, 2)))
        if trip is None:  # rank cap reached: E_new is final and A_new would never be used
            e = e_new
            reason = "rank_cap"
            break
        a_new = low_rank(trip[0], trip[1] - thr_a, trip[2], out=a_prev)
        # stopping criterion, tau = 2: ||S_A||^2 + ||S_E||^2 = 2 ||W||^2 with
        # W = (A_new - Y_A) - (E_new - Y_E) = A_new - E_new + 2 G_E - D
        np.subtract(a_new, e_new, out=h)
        h += g
        h += g
        h -= d
        num = np.sqrt(2.0 * float(np.dot(h.ravel(), h.ravel())))
        fro = np.sqrt(float(np.sum((trip[1] - thr_a) ** 2))
                      + float(np.dot(e_new.ravel(), e_new.ravel())))
        converged = num / (TAU * max(1.0, fro)) <= tol
        if converged:
            reason = "tol"
        mu = max(0.9 * mu, mu_bar)
        t_km1, t_k = t_k, 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t_k * t_k))
        a_prev, a_cur = a_cur, a_new
        e_prev, e = e, e_new
        if pre_rank == rank_a:
            counter += 1
            if counter > 10 and abs(card - pre_card) < 20 and not converged:
                converged, reason = True, "rank_stable"
        else:
            counter = 0
            pre_card = card
        pre_rank = rank_a
        if converged:
            break
    if info is not None:
        info.update(iterations=it, rank=rank_a, card=card, stop=reason)
    return e


def ipi_target(image: np.ndarray, patch: int = 50, step: int = 10, lam: Optional[float] = None,
               tol: float = 1e-6, max_iter: int = 1000, info: Optional[Dict] = None
               ) -> np.ndarray:
    """Signed target image E (H, W) of IPI (median reconstruction, Gao grid)."""
    h, w = image.shape
    rows, cols = patch_grid((h, w), patch, step, "gao")
    if len(rows) == 0 or len(cols) == 0:
        return np.zeros((h, w))
    d = extract_patches(image, rows, cols, patch).reshape(-1, patch * patch)
    lo, hi = float(d.min()), float(d.max())
    if hi <= lo:
        return np.zeros((h, w))
    d -= lo
    d *= 1.0 / (hi - lo)
    if lam is None:
        lam = 1.0 / np.sqrt(max(h, w))
    e = apg_rpca(d, lam, tol, max_iter, info)
    return reconstruct_median(e.reshape(-1, patch, patch), (h, w), rows, cols, step)


@register("ipi", citation="C. Gao, D. Meng, Y. Yang, Y. Wang, X. Zhou, A. G. Hauptmann, "
          "\"Infrared Patch-Image Model for Small Target Detection in a Single Image,\" IEEE "
          "Trans. Image Process., 22(12):4996-5009, 2013.", min_size="patch",
          patch=50, step=10, lam=None, tol=1e-6, max_iter=1000)
def ipi(image: np.ndarray, patch: int = 50, step: int = 10, lam: Optional[float] = None,
        tol: float = 1e-6, max_iter: int = 1000) -> np.ndarray:
    """IPI: max(E, 0), E the APG sparse part of the [0, 1]-normalised patch-image.

    Patch 50, step 10 (Gao grid, uncovered border stays 0), lam = 1/sqrt(max(H, W)) when
    None, median reconstruction.
    """
    return np.maximum(ipi_target(image, patch, step, lam, tol, max_iter), 0.0)
