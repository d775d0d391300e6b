"""RIPT - reweighted infrared patch-tensor model (spec 3.7), fast implementation.

Patch tensors are stored as (n3, p, p) arrays (frontal slice k = patch k). The three mode
unfoldings are transposes/reshapes of that array; each SVT is exact, through the
eigendecomposition of the unfolding's small Gram matrix (30 x 30 for modes 1-2, 900 x 900 for
mode 3) instead of a full SVD of the long matrix.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional

import numpy as np

from ..registry import register
from .filters import mat2gray, structure_tensor_eigs
from .patches import extract_patches, patch_grid, reconstruct_mean
from .svd import gram_triplets, low_rank

# mode i -> axes order of the (n3, p, p) array putting MATLAB mode i first
_MODE_AXES = {0: (1, 2, 0), 1: (2, 1, 0), 2: (0, 1, 2)}


def _inverse(axes):
    return tuple(np.argsort(axes))


def svt_mode(x: np.ndarray, mode: int, thr: float) -> np.ndarray:
    """fold_i(SVT(unfold_i(x), thr)) for a (n3, p, p) tensor; any consistent unfold/fold."""
    axes = _MODE_AXES[mode]
    xt = np.ascontiguousarray(x.transpose(axes))
    mat = xt.reshape(xt.shape[0], -1)
    (u, s, vt), _ = gram_triplets(mat, thr, expected_rank=min(mat.shape))
    out = low_rank(u, np.maximum(s - thr, 0.0), vt).reshape(xt.shape)
    return out.transpose(_inverse(axes))


def ript_prior(image: np.ndarray, h: float = 1.0) -> np.ndarray:
    """W_s = exp(h * mat2gray(l1 - l2)) from the structure tensor (sigma 1.2 / 2, 3x3)."""
    l1, l2 = structure_tensor_eigs(image, 1.2, 2.0)
    return np.exp(h * mat2gray(l1 - l2))


def ript_solver(f: np.ndarray, w_s: np.ndarray, lam: float, mu: float, rho: float = 1.5,
                tol: float = 1e-7, max_iter: int = 1000, info: Optional[Dict] = None
                ) -> np.ndarray:
    """Non-negative target tensor T of the reweighted higher-order RPCA (three unfoldings).
    ``f``, ``w_s``: (n3, p, p). Stops on tol or an unchanged count of positive entries."""
    t = np.zeros_like(f)
    lams = [np.zeros_like(f) for _ in range(3)]
    bs = [None, None, None]
    wt = w_s.copy()
    prev = f.size
    f_norm = float(np.linalg.norm(f))
    it = 0
    for it in range(1, max_iter + 1):
        for i in range(3):
            bs[i] = svt_mode(f + mu * lams[i] - t, i, mu)
        acc = sum(f + mu * lams[i] - bs[i] for i in range(3)) / 3.0
        t = np.maximum(acc - wt * (mu * lam / 3.0), 0.0)
        wt = w_s / (np.abs(t) + 0.01)
        for i in range(3):
            lams[i] -= (bs[i] + t - f) / mu
        mu /= rho
        b = (bs[0] + bs[1] + bs[2]) / 3.0
        err = float(np.linalg.norm(f - b - t)) / f_norm
        count = int(np.count_nonzero(t > 0))
        if info is not None:
            info.setdefault("trace", []).append((count, err))
        if err < tol or count == prev:
            break
        prev = count
    if info is not None:
        info.update(iterations=it)
    return t


@register("ript", citation="Y. Dai, Y. Wu, \"Reweighted Infrared Patch-Tensor Model With Both "
          "Nonlocal and Local Priors for Single-Frame Small Target Detection,\" IEEE J. Sel. "
          "Topics Appl. Earth Observ. Remote Sens., 10(8):3752-3767, 2017.", min_size="patch",
          torch_impl="baselines.torch_solvers.ript:ript")
def ript(image: np.ndarray, patch: int = 30, step: int = 10, lam_l: float = 0.7,
         mu_factor: float = 5.0, h: float = 1.0, rho: float = 1.5, tol: float = 1e-7,
         max_iter: int = 1000, *, solver: Optional[Callable[..., np.ndarray]] = None
         ) -> np.ndarray:
    """RIPT: non-negative target image (0-255 input; scale matters), mean reconstruction.

    Patch 30, step 10 (Dai grid), lam = lam_l / sqrt(min(n1, n2, n3)), mu0 = mu_factor *
    std(tensor), structure-tensor prior exp(h * mat2gray(l1 - l2)), reweighting eps 0.01.
    ``solver``: a function with the signature of :func:`ript_solver` (the default; the
    PyTorch path passes its own).
    """
    shape = image.shape
    rows, cols = patch_grid(shape, patch, step, "dai")
    f = extract_patches(image, rows, cols, patch, order="col")
    w_s = extract_patches(ript_prior(image, h), rows, cols, patch, order="col")
    lam = lam_l / np.sqrt(min(patch, patch, f.shape[0]))
    mu = mu_factor * float(np.std(f, ddof=1))
    if mu <= 0:
        return np.zeros(shape)
    t = (solver or ript_solver)(f, w_s, lam, mu, rho, tol, max_iter)
    return reconstruct_mean(t, shape, rows, cols, order="col")
