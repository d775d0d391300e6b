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
from .patches import dai_corners, gao_corners


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


def _ten2mat(x: np.ndarray, mode: int) -> np.ndarray:
    """MATLAB ten2mat: mode ``mode`` first, others ascending, column-major reshape."""
    order = [mode] + [i for i in range(x.ndim) if i != mode]
    return np.reshape(np.transpose(x, order), (x.shape[mode], -1), order="F")


def _mat2ten(m: np.ndarray, shape, mode: int) -> np.ndarray:
    order = [mode] + [i for i in range(len(shape)) if i != mode]
    t = np.reshape(m, [shape[i] for i in order], order="F")
    return np.transpose(t, np.argsort(order))


def _patch_tensor(image: np.ndarray, p: int, s: int):
    rows, cols = dai_corners(image.shape[0], p, s), dai_corners(image.shape[1], p, s)
    corners = [(r, c) for c in cols for r in rows]  # column-major, as Dai's gen_patch_ten
    t = np.zeros((p, p, len(corners)))
    for k, (r, c) in enumerate(corners):
        t[:, :, k] = image[r:r + p, c:c + p]
    return t, corners


def ript_reference(image: np.ndarray, patch: int = 30, step: int = 10, lam_l: float = 0.7,
                   mu_factor: float = 5.0, h: float = 1.0, rho: float = 1.5,
                   tol: float = 1e-7, max_iter: int = 1000, info: Optional[Dict] = None
                   ) -> np.ndarray:
    """RIPT target image, straightforward implementation: (p, p, n3) tensor built with a
    loop, full SVD of each of the three unfoldings per iteration, loop reconstruction."""
    image = np.asarray(image, np.float64)
    f, corners = _patch_tensor(image, patch, step)
    l1, l2 = structure_tensor_eigs(image, 1.2, 2.0)
    w_img = np.exp(h * mat2gray(l1 - l2))
    w_s, _ = _patch_tensor(w_img, patch, step)
    lam = lam_l / np.sqrt(min(f.shape))
    mu = mu_factor * np.std(f, ddof=1)
    t = np.zeros_like(f)
    lams = [np.zeros_like(f) for _ in range(3)]
    bs = [f.copy() for _ in range(3)]
    wt = w_s
    prev = f.size
    it = 0
    for it in range(1, max_iter + 1):
        for i in range(3):
            u, s, vt = np.linalg.svd(_ten2mat(f + mu * lams[i] - t, i), full_matrices=False)
            bs[i] = _mat2ten(u @ np.diag(np.maximum(s - mu, 0)) @ vt, f.shape, i)
        t = np.maximum(sum(f + mu * lams[i] - bs[i] for i in range(3)) / 3
                       - wt * mu * lam / 3, 0)
        wt = w_s / (np.abs(t) + 0.01)
        for i in range(3):
            lams[i] = lams[i] - (bs[i] + t - f) / mu
        mu = mu / rho
        b = sum(bs) / 3
        err = np.linalg.norm(f - b - t) / np.linalg.norm(f)
        count = int(np.sum(t > 0))
        if err < tol or count == prev:
            break
        prev = count
    if info is not None:
        info.update(iterations=it)
    acc = np.zeros(image.shape)
    cnt = np.zeros(image.shape)
    for k, (r, c) in enumerate(corners):
        acc[r:r + patch, c:c + patch] += t[:, :, k]
        cnt[r:r + patch, c:c + patch] += 1
    return acc / np.maximum(cnt, 1)
