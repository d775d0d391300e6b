"""FKRW - facet kernel and random walker (spec 3.4), after the authors' demo."""
from __future__ import annotations

from functools import lru_cache
from typing import Tuple

import numpy as np
from scipy import ndimage as ndi

from ..registry import register

FACET_KERNEL = np.array([[4.0 - r * r - c * c for c in range(-2, 3)] for r in range(-2, 3)])
# MATLAB strel('disk', 2): 5 x 5 square without its four corners (21 pixels; spec 3.4 choice).
DISK2 = np.ones((5, 5), bool)
DISK2[[0, 0, 4, 4], [0, 4, 0, 4]] = False


@lru_cache(maxsize=4)
def _lattice(size: int) -> Tuple[np.ndarray, np.ndarray]:
    """Edges (i, j) of the 4-connected size x size lattice (raster node indices)."""
    idx = np.arange(size * size).reshape(size, size)
    i = np.concatenate([idx[:, :-1].ravel(), idx[:-1, :].ravel()])
    j = np.concatenate([idx[:, 1:].ravel(), idx[1:, :].ravel()])
    return i, j


def random_walker_prob(patch: np.ndarray, beta: float, centre_only_border: bool = True
                       ) -> np.ndarray:
    """Target probability (size x size) of Grady's random walker on ``patch``.

    Seeds: centre = target; border pixels and interior pixels equal to 1.0 = background
    (the demo's quirk; the centre is never a background seed). Weights
    exp(-beta |P_i - P_j|) + 1e-5 on the 4-connected lattice; dense Dirichlet solve.
    """
    size = patch.shape[0]
    n = size * size
    c = n // 2
    ei, ej = _lattice(size)
    flat = patch.ravel()
    w = np.exp(-beta * np.abs(flat[ei] - flat[ej])) + 1e-5
    lap = np.zeros((n, n))
    lap[ei, ej] = -w
    lap[ej, ei] = -w
    lap[np.arange(n), np.arange(n)] = np.bincount(ei, w, n) + np.bincount(ej, w, n)
    marked = flat == 1.0
    border = np.ones((size, size), bool)
    border[1:-1, 1:-1] = False
    background = (border.ravel() | marked)
    background[c] = False
    seeded = background.copy()
    seeded[c] = True
    free = ~seeded
    x = np.zeros(n)
    x[c] = 1.0
    if free.any():
        rhs = -lap[np.ix_(free, [c])][:, 0]
        x[free] = np.linalg.solve(lap[np.ix_(free, free)], rhs)
    return x.reshape(size, size)


def facet_response(j: np.ndarray) -> np.ndarray:
    """F = J (x) facet kernel, 2-pixel mirror-without-edge padding, 'valid'."""
    padded = np.pad(j, 2, mode="reflect")
    return ndi.correlate(padded, FACET_KERNEL, mode="constant")[2:-2, 2:-2]


def fkrw_preprocess(image: np.ndarray) -> np.ndarray:
    """J: image / 255, single-pixel spikes clipped to their 8-neighbour max, 2x2 mean."""
    j = image / 255.0
    ring = np.ones((3, 3), bool)
    ring[1, 1] = False
    n8 = ndi.maximum_filter(j, footprint=ring, mode="constant", cval=0.0)
    j = np.where(j > n8, n8, j)
    p = np.pad(j, ((0, 1), (0, 1)), mode="edge")
    return 0.25 * (p[:-1, :-1] + p[1:, :-1] + p[:-1, 1:] + p[1:, 1:])


@register("fkrw", citation="Y. Qin, L. Bruzzone, C. Gao, B. Li, \"Infrared Small Target "
          "Detection Based on Facet Kernel and Random Walker,\" IEEE Trans. Geosci. Remote "
          "Sens., 57(9):7104-7118, 2019.", min_size=6)
def fkrw(image: np.ndarray, k: float = 4.0, window: int = 11, beta: float = 200.0,
         p: float = 6.0) -> np.ndarray:
    """FKRW: facet response x random-walker region contrast, max-normalised (0-255 input,
    divided by 255 inside). Non-zero only on the regions grown from candidates."""
    h, w = image.shape
    j = fkrw_preprocess(image)
    f = facet_response(j)
    th = f.mean() + k * f.std(ddof=1)
    cy, cx = np.nonzero((f >= th).T)  # column-major order, as MATLAB find()
    cy, cx = cx, cy
    order = np.argsort(-j[cy, cx], kind="stable")
    r = window // 2
    jp = np.pad(j, r, mode="reflect")
    flag = np.zeros(jp.shape, bool)
    out = np.zeros(jp.shape)
    win_idx = np.arange(window * window)
    centre = (window * window) // 2
    for o in order:
        py, px = cy[o] + r, cx[o] + r
        if flag[py, px]:
            continue
        patch = jp[py - r:py + r + 1, px - r:px + r + 1]
        x = random_walker_prob(patch, beta)
        region = x >= 1.0 - x
        if region.sum() <= 1:
            flag[py, px] = True
            continue
        rflat = region.ravel()
        others = rflat & (win_idx != centre)
        xf = x.ravel()
        prob_res = xf[others].mean() / xf[~others].mean()
        t_mean = patch[region].mean()
        r1 = ndi.binary_dilation(region, DISK2)
        r2 = ndi.binary_dilation(r1, DISK2)
        ring = r2 & ~r1
        ring_max = patch[ring].max() if ring.any() else 0.0
        if ring_max >= t_mean or ring_max <= 0:
            inten = 0.0
        else:
            inten = t_mean / ring_max
        value = prob_res * inten ** p
        sub_flag = flag[py - r:py + r + 1, px - r:px + r + 1]
        sub_out = out[py - r:py + r + 1, px - r:px + r + 1]
        new = region & ~sub_flag
        sub_out[new] = value
        sub_flag[new] = True
    prod = out[r:r + h, r:r + w] * f
    return prod / (prod.max() + 1e-6)
