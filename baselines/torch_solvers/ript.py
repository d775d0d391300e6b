"""RIPT on torch: the reweighted higher-order RPCA (``baselines.methods.ript.ript_solver``)
with exact SVTs of the three mode unfoldings."""
from __future__ import annotations

from functools import partial
from typing import Any, Dict, Optional

import numpy as np
import torch

from ..methods import ript as numpy_ript
from .common import svt, to_numpy, to_tensor, torch_device


def svt_mode(x: torch.Tensor, mode: int, thr: float) -> torch.Tensor:
    """fold_i(SVT(unfold_i(x), thr)) of a (n3, p, p) tensor (``numpy_ript.svt_mode``)."""
    axes = numpy_ript._MODE_AXES[mode]
    xt = x.permute(axes).contiguous()
    out = svt(xt.reshape(xt.shape[0], -1), thr).reshape(xt.shape)
    return out.permute(numpy_ript._inverse(axes))


def ript_solver(f: np.ndarray, w_s: np.ndarray, lam: float, mu: float, rho: float = 1.5,
                tol: float = 1e-7, max_iter: int = 1000, info: Optional[Dict] = None,
                device: str = "cuda") -> np.ndarray:
    """Non-negative target tensor T (n3, p, p), as ``numpy_ript.ript_solver`` (stops on tol
    or an unchanged count of positive entries)."""
    dev = torch_device(device)
    ft, ws = to_tensor(f, dev), to_tensor(w_s, dev)
    t = torch.zeros_like(ft)
    lams = [torch.zeros_like(ft) for _ in range(3)]
    bs = [ft, ft, ft]
    wt = ws.clone()
    prev = ft.numel()
    f_norm = float(torch.linalg.vector_norm(ft))
    it = 0
    for it in range(1, max_iter + 1):
        for i in range(3):
            bs[i] = svt_mode(ft + mu * lams[i] - t, i, mu)
        acc = sum(ft + mu * lams[i] - bs[i] for i in range(3)) / 3.0
        t = torch.clamp(acc - wt * (mu * lam / 3.0), min=0.0)
        wt = ws / (t.abs() + 0.01)
        for i in range(3):
            lams[i] -= (bs[i] + t - ft) / mu
        mu /= rho
        b = (bs[0] + bs[1] + bs[2]) / 3.0
        err = float(torch.linalg.vector_norm(ft - b - t)) / f_norm
        count = int(torch.count_nonzero(t > 0))
        if info is not None:
            info.setdefault("trace", []).append((count, err))
        if err < tol or count == prev:
            break
        prev = count
    if info is not None:
        info.update(iterations=it)
    return to_numpy(t)


def ript(image: np.ndarray, device: str = "cuda", **params: Any) -> np.ndarray:
    """RIPT map (``baselines.methods.ript.ript``) with the solver on ``device``."""
    return numpy_ript.ript(image, solver=partial(ript_solver, device=device), **params)
