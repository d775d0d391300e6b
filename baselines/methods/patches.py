"""Patch grids, strided patch extraction and patch-to-image reconstruction (spec 1.4).

Patch stacks are arrays (n, p, p) (one patch per row of the patch matrix once reshaped to
(n, p*p)): the transposed patch-image, built directly as a C-contiguous copy of a strided view.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np


def gao_corners(size: int, p: int, s: int) -> np.ndarray:
    """Top-left corners 0, s, 2s, ... while corner + p <= size (IPI; border may stay uncovered)."""
    if size < p:
        return np.zeros(0, np.int64)
    return np.arange(0, size - p + 1, s, dtype=np.int64)


def dai_corners(size: int, p: int, s: int) -> np.ndarray:
    """ceil((size - p) / s) + 1 corners 0, s, ..., plus a last one forced to size - p."""
    if size < p:
        return np.zeros(0, np.int64)
    n = -(-(size - p) // s) + 1
    c = np.arange(n, dtype=np.int64) * s
    c[-1] = size - p
    return c


def patch_grid(shape: Tuple[int, int], p: int, s: int, convention: str
               ) -> Tuple[np.ndarray, np.ndarray]:
    """(row corners, column corners) of the 'gao' or 'dai' patch grid."""
    f = {"gao": gao_corners, "dai": dai_corners}[convention]
    return f(shape[0], p, s), f(shape[1], p, s)


def extract_patches(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, p: int,
                    order: str = "row") -> np.ndarray:
    """Patches (n, p, p), n = len(rows) * len(cols), as a C-contiguous copy.

    ``order="row"``: row-major over (row, col) corners; ``"col"``: column-major (rows vary
    fastest; Dai's MATLAB order).
    """
    view = np.lib.stride_tricks.sliding_window_view(image, (p, p))
    if order == "col":
        picked = view[rows[None, :], cols[:, None]]  # (n_cols, n_rows, p, p), one copy
    else:
        picked = view[rows[:, None], cols[None, :]]
    return picked.reshape(-1, p, p)


def _corner_pairs(rows: np.ndarray, cols: np.ndarray, order: str):
    if order == "col":
        return [(r, c) for c in cols for r in rows]
    return [(r, c) for r in rows for c in cols]


def reconstruct_mean(patches: np.ndarray, shape: Tuple[int, int], rows: np.ndarray,
                     cols: np.ndarray, order: str = "row") -> np.ndarray:
    """Image (H, W): mean of all patch values covering each pixel; uncovered pixels 0."""
    p = patches.shape[-1]
    acc = np.zeros(shape, np.float64)
    cnt = np.zeros(shape, np.float64)
    for patch, (r, c) in zip(patches, _corner_pairs(rows, cols, order)):
        acc[r:r + p, c:c + p] += patch
        cnt[r:r + p, c:c + p] += 1.0
    np.divide(acc, cnt, out=acc, where=cnt > 0)
    return acc


def reconstruct_median(patches: np.ndarray, shape: Tuple[int, int], rows: np.ndarray,
                       cols: np.ndarray, step: int, order: str = "row") -> np.ndarray:
    """Image (H, W): median of all patch values covering each pixel; uncovered pixels 0.

    Corners must lie on a regular grid of pitch ``step`` (Gao's grid). Patches whose corner
    indices agree modulo ceil(p / step) never overlap, so each such class writes one layer of a
    NaN-filled (K, H, W) stack; the median ignores NaN (sort, then pick by count).
    """
    p = patches.shape[-1]
    q = -(-p // step)
    h, w = shape
    stack = np.full((q * q, h, w), np.nan)
    pairs = _corner_pairs(rows, cols, order)
    for patch, (r, c) in zip(patches, pairs):
        layer = ((r // step) % q) * q + (c // step) % q
        stack[layer, r:r + p, c:c + p] = patch
    count = np.sum(~np.isnan(stack), axis=0)
    stack.sort(axis=0)  # NaN last
    lo = np.maximum((count - 1) // 2, 0)
    hi = count // 2
    a = np.take_along_axis(stack, lo[None], axis=0)[0]
    b = np.take_along_axis(stack, np.minimum(hi, q * q - 1)[None], axis=0)[0]
    out = 0.5 * (a + b)
    out[count == 0] = 0.0
    return out
