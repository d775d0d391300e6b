"""IPI on torch: Gao's APG (``baselines.methods.ipi.apg_rpca``), dense iterates, exact SVT."""
from __future__ import annotations

import math
import time
from functools import partial
from typing import Any, Dict, Optional

import numpy as np
import torch

from ..methods import ipi as numpy_ipi
from .common import (
    gram_spectrum,
    shrink_product,
    singular_values,
    to_numpy,
    to_tensor,
    torch_device,
)

TAU = numpy_ipi.TAU


def _relative_change(new: torch.Tensor, old: torch.Tensor) -> float:
    """||new - old||_F / ||new||_F (1.0 when new = 0), as the NumPy solver."""
    n = float(torch.linalg.vector_norm(new))
    return float(torch.linalg.vector_norm(new - old)) / n if n > 0 else 1.0


def apg_rpca(d: np.ndarray, lam: float, tol: float = 1e-6, max_iter: int = 1000,
             info: Optional[Dict] = None, lowp: Optional[bool] = None,
             e_tol: Optional[float] = None, device: str = "cuda") -> np.ndarray:
    """Sparse part E (n, m) of D = A + E by Gao's APG, as ``numpy_ipi.apg_rpca`` (same
    continuation, rank-stability, rank-cap, tolerance and optional ``e_tol`` stops; ``info``
    gets the same keys). ``d``: (n, m) float64, n >= m. ``lowp`` is ignored (float64)."""
    n, m = d.shape
    if n < m:
        raise ValueError("apg_rpca expects a tall matrix (transpose it)")
    dev = torch_device(device)
    dm = to_tensor(d, dev)
    sv = singular_values(dm)[:4]
    sv = torch.cat([sv, sv.new_zeros(max(0, 4 - len(sv)))])
    mu, mu_bar = float(sv[1]), 0.005 * float(sv[3])
    cap = int(math.floor(0.3 * min(m, n)))
    a_k, a_km1 = torch.zeros_like(dm), torch.zeros_like(dm)
    e_k, e_km1 = torch.zeros_like(dm), torch.zeros_like(dm)
    t_k = t_km1 = 1.0
    pre_rank, pre_card, counter = 0, 0, 0
    reason, it, rank_a, card = "max_iter", 0, 0, 0
    t0 = time.perf_counter()
    for it in range(1, max_iter + 1):
        beta = (t_km1 - 1.0) / t_k
        thr_a, thr_e = mu / TAU, lam * mu / TAU
        y_a = a_k + beta * (a_k - a_km1)
        y_e = e_k + beta * (e_k - e_km1)
        r = (y_a + y_e - dm) / TAU
        g_a, g_e = y_a - r, y_e - r
        del r
        s, v = gram_spectrum(g_a)
        keep = s > thr_a
        rank_a = int(keep.sum())
        s, v = s[keep], v[:, keep]
        a_new = shrink_product(g_a, v, (s - thr_a) / s)
        e_new = torch.sign(g_e) * torch.clamp(g_e.abs() - thr_e, min=0.0)
        del g_a, g_e
        card = int(torch.count_nonzero(e_new))
        e_change = _relative_change(e_new, e_k)
        temp = a_new + e_new - y_a - y_e
        crit2 = float(torch.sum((TAU * (y_a - a_new) + temp) ** 2)
                      + torch.sum((TAU * (y_e - e_new) + temp) ** 2))
        fro2 = float(torch.sum(a_new ** 2) + torch.sum(e_new ** 2))
        del temp, y_a, y_e
        if info is not None:
            info.setdefault("trace", []).append(
                (rank_a, card, round(time.perf_counter() - t0, 2), float(f"{e_change:.3g}")))
        converged = math.sqrt(crit2) / (TAU * max(1.0, math.sqrt(fro2))) <= tol
        if converged:
            reason = "tol"
        elif e_tol is not None and e_change <= e_tol:
            converged, reason = True, "e_tol"
        mu = max(0.9 * mu, mu_bar)
        t_km1, t_k = t_k, 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t_k * t_k))
        a_km1, a_k = a_k, a_new
        e_km1, e_k = e_k, e_new
        if pre_rank == rank_a:
            counter += 1
            if counter > 10 and abs(card - pre_card) < 20 and not converged:
                converged, reason = True, "rank_stable"
        else:
            counter = 0
            pre_card = card
        pre_rank = rank_a
        if rank_a > cap and not converged:
            converged, reason = True, "rank_cap"
        if converged:
            break
    if info is not None:
        info.update(iterations=it, rank=rank_a, card=card, stop=reason)
    return to_numpy(e_k)


def ipi(image: np.ndarray, device: str = "cuda", **params: Any) -> np.ndarray:
    """IPI map (``baselines.methods.ipi.ipi``) with the APG on ``device``."""
    return numpy_ipi.ipi(image, solver=partial(apg_rpca, device=device), **params)
