"""NIPPS on torch: the IALM with PSSV (``baselines.methods.nipps.ialm_pssv``), dense
iterates, exact PSSV."""
from __future__ import annotations

import time
from functools import partial
from typing import Any, Dict, Optional

import numpy as np
import torch

from ..methods import nipps as numpy_nipps
from .common import gram_spectrum, shrink_product, to_numpy, to_tensor, torch_device


def energy_rank(s: torch.Tensor, ratio: float) -> int:
    """Count of leading singular values (``s`` descending) with s_i / s_1 >= ratio, at
    least 1 (``numpy_nipps.energy_rank``)."""
    if float(s[0]) <= 0:
        return 1
    return max(int(torch.count_nonzero(s / s[0] >= ratio)), 1)


def ialm_pssv(d: np.ndarray, lam: float, n_keep: Optional[int] = None, tol: float = 1e-7,
              max_iter: int = 1000, rho: float = 1.5, info: Optional[Dict] = None,
              ratio: float = 0.005, lowp: Optional[bool] = None,
              e_tol: Optional[float] = None, device: str = "cuda") -> np.ndarray:
    """Non-negative sparse part E (n, m) of D = A + E, as ``numpy_nipps.ialm_pssv`` (same
    initialisation, E -> PSSV -> multiplier order, mu schedule, tolerance and optional
    ``e_tol`` stops; ``info`` gets the same keys). ``d``: (n, m) float64, n >= m. ``lowp``
    is ignored (float64)."""
    n, m = d.shape
    if n < m:
        raise ValueError("ialm_pssv expects a tall matrix (transpose it)")
    dev = torch_device(device)
    dm = to_tensor(d, dev)
    s_d, _ = gram_spectrum(dm)
    if n_keep is None:
        n_keep = energy_rank(s_d, ratio)
    norm2 = float(s_d[0])
    norm_inf = float(dm.abs().max()) / lam
    mu = 1.25 / norm2
    mu_bar = mu * 1e7
    d_norm = float(torch.linalg.vector_norm(dm))
    y = dm / max(norm2, norm_inf)
    a = torch.zeros_like(dm)
    e = torch.zeros_like(dm)
    reason, it = "max_iter", 0
    t0 = time.perf_counter()
    for it in range(1, max_iter + 1):
        thr = 1.0 / mu
        e_new = torch.clamp(dm - a + y / mu - lam / mu, min=0.0)
        e_norm = float(torch.linalg.vector_norm(e_new))
        e_change = float(torch.linalg.vector_norm(e_new - e)) / e_norm if e_norm > 0 else 1.0
        e = e_new
        x = dm - e + y / mu
        s, v = gram_spectrum(x)
        scale = torch.ones_like(s)
        tail = s[n_keep:]
        scale[n_keep:] = torch.where(tail > 0, torch.clamp(tail - thr, min=0.0)
                                     / torch.where(tail > 0, tail, 1.0), 0.0)
        nz = (scale > 0) & (s > 0)
        rank = int(nz.sum())
        a = shrink_product(x, v[:, nz], scale[nz])
        del x
        z = dm - a - e
        err = float(torch.linalg.vector_norm(z)) / d_norm
        y += mu * z
        del z
        mu = min(rho * mu, mu_bar)
        if info is not None:
            info.setdefault("trace", []).append(
                (rank, float(f"{err:.3g}"), round(time.perf_counter() - t0, 2),
                 float(f"{e_change:.3g}")))
        if err < tol:
            reason = "tol"
            break
        if e_tol is not None and e_change <= e_tol:
            reason = "e_tol"
            break
    if info is not None:
        info.update(iterations=it, n_keep=n_keep, stop=reason)
    return to_numpy(e)


def nipps(image: np.ndarray, device: str = "cuda", **params: Any) -> np.ndarray:
    """NIPPS map (``baselines.methods.nipps.nipps``) with the IALM on ``device``."""
    return numpy_nipps.nipps(image, solver=partial(ialm_pssv, device=device), **params)
