"""Small image-filter helpers shared by the methods (MATLAB equivalences of spec 1.2)."""
from __future__ import annotations

from typing import Callable, Tuple

import numpy as np
from scipy import ndimage as ndi

# The 8 surrounding cells, clockwise from the top-left (spec 3): cell i and i+4 are opposite.
CELL_OFFSETS: Tuple[Tuple[int, int], ...] = (
    (-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))


def fspecial_gaussian(size: int, sigma: float) -> np.ndarray:
    """MATLAB ``fspecial('gaussian', [size size], sigma)``: sampled, normalised to sum 1."""
    r = (size - 1) / 2.0
    x = np.arange(size) - r
    g = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2.0 * sigma * sigma))
    return g / g.sum()


def mat2gray(x: np.ndarray) -> np.ndarray:
    """MATLAB ``mat2gray``: (x - min) / (max - min); zeros when max == min."""
    lo, hi = float(np.min(x)), float(np.max(x))
    if hi <= lo:
        return np.zeros_like(x, dtype=np.float64)
    return (x - lo) / (hi - lo)


class CellReader:
    """Per-pixel statistics of the 3 x 3 grid of s x s cells around every pixel.

    ``filt`` (a function of the padded image) is applied once to the image padded by
    ``s + s // 2`` with ``np.pad`` mode ``pad_mode``; ``read(dy, dx)`` returns a view (H, W)
    with the statistic of the cell whose centre is offset by ``(dy * s, dx * s)``.
    """

    def __init__(self, image: np.ndarray, s: int, filt: Callable[[np.ndarray], np.ndarray],
                 pad_mode: str = "edge", **pad_kw):
        self.s = s
        self.r = s + s // 2
        self.h, self.w = image.shape
        self.f = filt(np.pad(image, self.r, mode=pad_mode, **pad_kw))

    def read(self, dy: int, dx: int) -> np.ndarray:
        y0 = self.r + dy * self.s
        x0 = self.r + dx * self.s
        return self.f[y0:y0 + self.h, x0:x0 + self.w]


def box(s: int) -> Callable[[np.ndarray], np.ndarray]:
    """s x s mean filter (used on already padded images)."""
    return lambda a: ndi.uniform_filter(a, size=s, mode="nearest")


def top_k_mean(image: np.ndarray, s: int, ks: Tuple[int, ...], pad: int = 0,
               rows_per_tile: int = 64) -> Tuple[np.ndarray, ...]:
    """Mean of the k largest values of every s x s window, for each k in ``ks``.

    ``image`` must already be padded; the outputs have shape
    ``(H - s + 1 - 2 * pad..., )`` i.e. 'valid' positions of the windows (centre-indexed).
    Windows are sorted in row tiles with ``sliding_window_view`` (no per-pixel loop).
    """
    h, w = image.shape
    oh, ow = h - s + 1, w - s + 1
    outs = [np.empty((oh, ow), np.float64) for _ in ks]
    kmax = max(ks)
    n = s * s
    for y0 in range(0, oh, rows_per_tile):
        y1 = min(oh, y0 + rows_per_tile)
        win = np.lib.stride_tricks.sliding_window_view(image[y0:y1 + s - 1], (s, s))
        flat = win.reshape(y1 - y0, ow, n)
        part = np.partition(flat, n - kmax, axis=-1)[..., n - kmax:]
        part.sort(axis=-1)
        csum = np.cumsum(part[..., ::-1], axis=-1)
        for o, k in zip(outs, ks):
            o[y0:y1] = csum[..., k - 1] / k
    return tuple(outs)


def structure_tensor_eigs(image: np.ndarray, sigma_pre: float, sigma_post: float
                          ) -> Tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (l1 >= l2) of the structure tensor of RIPT / PSTNN (spec 3.7, 3.8).

    ``u = I * G(3x3, sigma_pre)`` (symmetric border), central-difference gradients, products
    smoothed with ``G(3x3, sigma_post)`` (symmetric border).
    """
    u = ndi.correlate(image, fspecial_gaussian(3, sigma_pre), mode="reflect")
    gy, gx = np.gradient(u)
    k = fspecial_gaussian(3, sigma_post)
    j11 = ndi.correlate(gx * gx, k, mode="reflect")
    j12 = ndi.correlate(gx * gy, k, mode="reflect")
    j22 = ndi.correlate(gy * gy, k, mode="reflect")
    root = np.sqrt((j11 - j22) ** 2 + 4.0 * j12 ** 2)
    l1 = 0.5 * (j11 + j22 + root)
    l2 = 0.5 * (j11 + j22 - root)
    return l1, l2
