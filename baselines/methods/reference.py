"""REFERENCE (slow) implementations of IPI and RIPT - for the speed-up benchmark and tests.

Straightforward ports of the published MATLAB algorithms: patch matrices built with a Python
loop over patches, a full dense SVD in every iteration, every update as a fresh NumPy array.
Not registered as methods; ``tools/benchmark_lowrank_speedup.py`` runs them side by side with
the fast versions (``baselines.methods.ipi``, ``baselines.methods.ript``).
"""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from .filters import mat2gray, structure_tensor_eigs
from .patches import gao_corners, dai_corners


def _ipi_patch_image(image: np.ndarray, p: int, s: int):
    rows, cols = gao_corners(image.shape[0], p, s), gao_corners(image.shape[1], p, s)
    columns, corners = [], []
    for r in rows:
        for c in cols:
            columns.append(image[r:r + p, c:c + p].flatten(order="F"))
            corners.append((r, c))
    return np.stack(columns, axis=1), corners


def apg_rpca_reference(d: np.ndarray, lam: float, tol: float = 1e-6, max_iter: int = 1000,
                       info: Optional[Dict] = None) -> np.ndarray:
    """Gao's APG exactly as written: full SVD of G_A each iteration (d: p^2 x n)."""
    m, n = d.shape
    tau = 2.0
    a_k = np.zeros_like(d)
    a_km1 = np.zeros_like(d)
    e_k = np.zeros_like(d)
    e_km1 = np.zeros_like(d)
    s = np.linalg.svd(d, compute_uv=False)
    mu, mu_bar = s[1], 0.005 * s[3]
    t_k = t_km1 = 1.0
    pre_rank, pre_card, counter, it = 0, 0, 0, 0
    while True:
        y_a = a_k + ((t_km1 - 1) / t_k) * (a_k - a_km1)
        y_e = e_k + ((t_km1 - 1) / t_k) * (e_k - e_km1)
        g_a = y_a - (1 / tau) * (y_a + y_e - d)
        g_e = y_e - (1 / tau) * (y_a + y_e - d)
        u, sg, vt = np.linalg.svd(g_a, full_matrices=False)
        a_new = u @ np.diag(np.maximum(sg - mu / tau, 0)) @ vt
        e_new = np.sign(g_e) * np.maximum(np.abs(g_e) - lam * mu / tau, 0)
        rank_a = int(np.sum(sg > mu / tau))
        card = int(np.sum(np.abs(e_new) > 0))
        t_kp1 = 0.5 * (1 + np.sqrt(1 + 4 * t_k * t_k))
        temp = a_new + e_new - y_a - y_e
        s_a = tau * (y_a - a_new) + temp
        s_e = tau * (y_e - e_new) + temp
        crit = np.linalg.norm(np.hstack([s_a, s_e])) / (
            tau * max(1, np.linalg.norm(np.hstack([a_new, e_new]))))
        converged = crit <= tol
        mu = max(0.9 * mu, mu_bar)
        t_km1, t_k = t_k, t_kp1
        a_km1, e_km1, a_k, e_k = a_k, e_k, a_new, e_new
        it += 1
        if pre_rank == rank_a:
            counter += 1
            if counter > 10 and abs(card - pre_card) < 20:
                converged = True
        else:
            counter = 0
            pre_card = card
        pre_rank = rank_a
        if rank_a > 0.3 * min(m, n):
            converged = True
        if not converged and it >= max_iter:
            converged = True
        if converged:
            break
    if info is not None:
        info.update(iterations=it, rank=pre_rank, card=card)
    return e_k


def ipi_reference(image: np.ndarray, patch: int = 50, step: int = 10,
                  lam: Optional[float] = None, tol: float = 1e-6, max_iter: int = 1000,
                  info: Optional[Dict] = None) -> np.ndarray:
    """IPI target map max(E, 0), straightforward implementation (median reconstruction)."""
    image = np.asarray(image, np.float64)
    h, w = image.shape
    d, corners = _ipi_patch_image(image, patch, step)
    d = mat2gray(d)
    if lam is None:
        lam = 1.0 / np.sqrt(max(h, w))
    e = apg_rpca_reference(d, lam, tol, max_iter, info)
    values = [[[] for _ in range(w)] for _ in range(h)]
    for j, (r, c) in enumerate(corners):
        block = e[:, j].reshape(patch, patch, order="F")
        for y in range(patch):
            for x in range(patch):
                values[r + y][c + x].append(block[y, x])
    out = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            if values[y][x]:
                out[y, x] = np.median(values[y][x])
    return np.maximum(out, 0.0)
