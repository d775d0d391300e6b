"""PSTNN on torch: the ADMM of ``baselines.methods.pstnn.pstnn_solver``, t-SVD by one real
FFT along the patch axis and one batched SVD of the frequency slices."""
from __future__ import annotations

from functools import partial
from typing import Any, Dict, Optional

import numpy as np
import torch

from ..methods import pstnn as numpy_pstnn
from .common import to_numpy, to_tensor, torch_device


def prox_pstnn(x: torch.Tensor, n_keep: int, mu: float) -> torch.Tensor:
    """PSTNN proximal operator of a (n3, p, p) tensor (``numpy_pstnn.prox_pstnn``)."""
    n3 = x.shape[0]
    xf = torch.fft.rfft(x, dim=0)
    u, s, vh = torch.linalg.svd(xf, full_matrices=False)
    s = s.clone()
    s[:, n_keep:] = torch.clamp(s[:, n_keep:] - 1.0 / mu, min=0.0)
    return torch.fft.irfft((u * s[:, None, :].to(u.dtype)) @ vh, n=n3, dim=0)


def pstnn_solver(d: np.ndarray, w_p: np.ndarray, lam: float, n_keep: int, mu: float = 2e-3,
                 rho: float = 1.05, mu_max: float = 1e10, tol: float = 1e-3,
                 max_iter: int = 500, info: Optional[Dict] = None, device: str = "cuda"
                 ) -> np.ndarray:
    """Non-negative sparse tensor S (n3, p, p), as ``numpy_pstnn.pstnn_solver`` (stops on
    tol or an unchanged count of positive entries)."""
    dev = torch_device(device)
    dt, wp = to_tensor(d, dev), to_tensor(w_p, dev)
    sp = torch.zeros_like(dt)
    y = torch.zeros_like(dt)
    wt = torch.ones_like(dt)
    d_norm = float(torch.linalg.vector_norm(dt))
    inv_w = torch.where(wp > 0, 1.0 / torch.where(wp > 0, wp, 1.0), torch.inf)
    it = 0
    for it in range(1, max_iter + 1):
        pre = int(torch.count_nonzero(sp > 0))
        low = prox_pstnn(dt - sp - y / mu, n_keep, mu)
        sp = torch.clamp(dt - low - y / mu - wt * (lam / mu), min=0.0)
        wt = n_keep / (sp.abs() + 0.01) * inv_w
        dy = low + sp - dt
        err = float(torch.linalg.vector_norm(dy)) / d_norm
        cur = int(torch.count_nonzero(sp > 0))
        if err < tol or (pre > 0 and cur > 0 and pre == cur):
            break
        y += mu * dy
        mu = min(rho * mu, mu_max)
    if info is not None:
        info.update(iterations=it)
    return to_numpy(sp)


def pstnn(image: np.ndarray, device: str = "cuda", **params: Any) -> np.ndarray:
    """PSTNN map (``baselines.methods.pstnn.pstnn``) with the ADMM on ``device``."""
    return numpy_pstnn.pstnn(image, solver=partial(pstnn_solver, device=device), **params)
