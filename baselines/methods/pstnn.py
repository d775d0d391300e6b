"""PSTNN - partial sum of the tensor nuclear norm (spec 3.8): t-SVD by one real FFT along the
patch axis and one batched SVD of the ceil((n3+1)/2) frequency slices."""
from __future__ import annotations

from typing import Callable, Dict, Optional

import numpy as np

from ..registry import register
from .filters import mat2gray, structure_tensor_eigs
from .patches import extract_patches, patch_grid, reconstruct_mean


def pstnn_prior(image: np.ndarray) -> np.ndarray:
    """mat2gray(cs * max(l1, l2)), cs = l1 l2 / (l1 + l2) (0 where l1 + l2 = 0)."""
    l1, l2 = structure_tensor_eigs(image, 2.0, 9.0)
    den = l1 + l2
    cs = np.zeros_like(den)
    np.divide(l1 * l2, den, out=cs, where=den != 0)
    return mat2gray(cs * np.fmax(l1, l2))


def prox_pstnn(x: np.ndarray, n_keep: int, mu: float) -> np.ndarray:
    """PSTNN proximal operator of a (n3, p, p) tensor: in every Fourier slice keep the
    ``n_keep`` largest singular values, soft-threshold the others by 1/mu."""
    n3 = x.shape[0]
    xf = np.fft.rfft(x, axis=0)
    u, s, vh = np.linalg.svd(xf, full_matrices=False)
    s[:, n_keep:] = np.maximum(s[:, n_keep:] - 1.0 / mu, 0.0)
    return np.fft.irfft((u * s[:, None, :]) @ vh, n=n3, axis=0)


def pstnn_rank(d: np.ndarray, ratio: float) -> int:
    """N from the singular values of MATLAB's reshape(D, n3, []) of the (p, p, n3) tensor."""
    n3 = d.shape[0]
    v = d.transpose(0, 2, 1).ravel()  # MATLAB column-major order of the (p, p, n3) tensor
    mat = v.reshape(-1, n3).T
    small = mat @ mat.T if mat.shape[0] <= mat.shape[1] else mat.T @ mat
    s = np.sqrt(np.maximum(np.linalg.eigvalsh(small)[::-1], 0.0))
    if s[0] <= 0:
        return 1
    return max(int(np.count_nonzero(s / s[0] >= ratio)), 1)


def pstnn_solver(d: np.ndarray, w_p: np.ndarray, lam: float, n_keep: int, mu: float = 2e-3,
                 rho: float = 1.05, mu_max: float = 1e10, tol: float = 1e-3,
                 max_iter: int = 500, info: Optional[Dict] = None) -> np.ndarray:
    """Non-negative sparse tensor S of the PSTNN ADMM (stops on tol or unchanged |S>0|)."""
    low = np.zeros_like(d)
    sp = np.zeros_like(d)
    y = np.zeros_like(d)
    wt = np.ones_like(d)
    d_norm = float(np.linalg.norm(d))
    inv_w = np.full_like(w_p, np.inf)
    np.divide(1.0, w_p, out=inv_w, where=w_p > 0)
    it = 0
    for it in range(1, max_iter + 1):
        pre = int(np.count_nonzero(sp > 0))
        low = prox_pstnn(d - sp - y / mu, n_keep, mu)
        sp = np.maximum(d - low - y / mu - wt * (lam / mu), 0.0)
        with np.errstate(invalid="ignore"):
            wt = n_keep / (np.abs(sp) + 0.01) * inv_w
        dy = low + sp - d
        err = float(np.linalg.norm(dy)) / d_norm
        cur = int(np.count_nonzero(sp > 0))
        if err < tol or (pre > 0 and cur > 0 and pre == cur):
            break
        y += mu * dy
        mu = min(rho * mu, mu_max)
    if info is not None:
        info.update(iterations=it)
    return sp


@register("pstnn", citation="L. Zhang, Z. Peng, \"Infrared Small Target Detection Based on "
          "Partial Sum of the Tensor Nuclear Norm,\" Remote Sensing, 11(4):382, 2019.",
          min_size="patch", torch_impl="baselines.torch_solvers.pstnn:pstnn")
def pstnn(image: np.ndarray, patch: int = 40, step: int = 40, lam_l: float = 0.7,
          ratio: float = 0.1, mu: float = 2e-3, rho: float = 1.05, tol: float = 1e-3,
          max_iter: int = 500, *, solver: Optional[Callable[..., np.ndarray]] = None
          ) -> np.ndarray:
    """PSTNN: non-negative target image (0-255 input; scale matters), mean reconstruction.

    Patch 40, step 40 (Dai grid), lam = lam_l / sqrt(max(n1, n2) n3), corner-strength
    prior, N from the energy ratio, ADMM (mu0 2e-3, rho 1.05, tol 1e-3, <= 500 it.).
    ``solver``: a function with the signature of :func:`pstnn_solver` (the default; the
    PyTorch path passes its own).
    """
    shape = image.shape
    rows, cols = patch_grid(shape, patch, step, "dai")
    d = extract_patches(image, rows, cols, patch, order="col")
    w_p = extract_patches(pstnn_prior(image), rows, cols, patch, order="col")
    lam = lam_l / np.sqrt(patch * d.shape[0])
    n_keep = pstnn_rank(d, ratio)
    sp = (solver or pstnn_solver)(d, w_p, lam, n_keep, mu, rho, 1e10, tol, max_iter)
    return reconstruct_mean(sp, shape, rows, cols, order="col")
