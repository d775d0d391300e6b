"""Tensor helpers shared by the PyTorch solvers: device, conversion and exact SVT."""
from __future__ import annotations

from typing import Tuple

import numpy as np
import torch

DTYPE = torch.float64  # every solver runs in float64, as the NumPy path


def torch_device(device: str) -> torch.device:
    """``"cuda"`` -> the current CUDA device, ``"cpu-torch"`` -> the CPU."""
    if device == "cuda":
        return torch.device("cuda")
    if device == "cpu-torch":
        return torch.device("cpu")
    raise ValueError(f"the PyTorch solvers run on 'cuda' or 'cpu-torch', not {device!r}")


def to_tensor(a: np.ndarray, dev: torch.device) -> torch.Tensor:
    """float64 tensor on ``dev`` holding a copy of ``a``."""
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64)).to(dev, DTYPE)


def to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu").numpy()


def gram_spectrum(x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Singular values (descending) and right singular vectors (columns) of a tall x (n, m),
    n >= m, from the eigendecomposition of x^T x (m, m)."""
    w, v = torch.linalg.eigh(x.T @ x)
    s = torch.sqrt(torch.clamp(w, min=0.0))
    return s.flip(0), v.flip(1)


def singular_values(x: torch.Tensor) -> torch.Tensor:
    """All singular values of x (descending), from the Gram matrix of its smaller side."""
    small = x.T @ x if x.shape[0] >= x.shape[1] else x @ x.T
    return torch.sqrt(torch.clamp(torch.linalg.eigvalsh(small), min=0.0)).flip(0)


def shrink_product(x: torch.Tensor, v: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x V diag(scale) V^T (n, m) for V (m, r): as (x V) diag V^T or x (V diag V^T),
    whichever multiplies fewer numbers."""
    vs = v * scale
    if 2 * v.shape[1] > v.shape[0]:
        return x @ (vs @ v.T)
    return (x @ vs) @ v.T


def svt(x: torch.Tensor, thr: float) -> torch.Tensor:
    """Singular value soft-thresholding of any x (n, m), exact, through the eigenpairs of the
    Gram matrix of its smaller side (singular values <= thr are dropped)."""
    wide = x.shape[0] < x.shape[1]
    xt = x.T if wide else x
    s, v = gram_spectrum(xt)
    keep = s > thr
    s, v = s[keep], v[:, keep]
    out = shrink_product(xt, v, (s - thr) / s)
    return out.T if wide else out
