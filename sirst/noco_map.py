"""Normalized-contrast (NoCo) ground-truth map (OSCAR spec 2.1).

For every box, in list order, a window three box widths wide and three box heights tall
around the box gets ``minmax(Gaussian * (I - min_window) / (max_box - min_window + 0.01))``;
later boxes overwrite earlier windows entirely. Values lie in [0, 1); outside all windows the
map is exactly 0.
"""
from __future__ import annotations

from typing import Sequence, Union

import numpy as np

NOCO_MU = 0.0
NOCO_SIGMA = 1.0
CONTRAST_EPS = 0.01  # added to the target-to-background range of the contrast term
MINMAX_EPS = 0.001  # added to the range of the window min-max normalisation


def _gaussian_template(h: int, w: int) -> np.ndarray:
    """(3h, 3w) template: exp(-(d - mu)^2 / (2 sigma^2)), d on a [-1.5, 1.5]^2 grid."""
    u = np.linspace(-1.5, 1.5, 3 * w)
    v = np.linspace(-1.5, 1.5, 3 * h)
    d = np.sqrt(u[None, :] * u[None, :] + v[:, None] * v[:, None])
    return np.exp(-((d - NOCO_MU) ** 2 / (2.0 * NOCO_SIGMA ** 2)))


def noco_map(image: np.ndarray, boxes: Union[np.ndarray, Sequence[Sequence[float]]]) -> np.ndarray:
    """NoCo map of one image.

    Args:
        image: (H, W) grey image (any numeric dtype) or (H, W, C), reduced to its channel mean.
        boxes: (n, 4) XYXY_ABS boxes in pixels; coordinates are truncated to integers (target
            cell = rows [y1, y2), cols [x1, x2)). Order matters: later boxes win.
    Returns:
        float64 (H, W) map with values in [0, 1).
    """
    img = np.asarray(image)
    if img.ndim == 3:
        img = img.mean(axis=-1)
    if img.ndim != 2:
        raise ValueError(f"noco_map expects an (H, W) or (H, W, C) image, got shape {img.shape}")
    out = np.zeros(img.shape, dtype=np.float64)
    img_h, img_w = img.shape
    for box in np.asarray(boxes, dtype=np.float64).reshape(-1, 4).tolist():
        # int() truncates toward zero, like the reference (coordinates are non-negative).
        c0, r0, c1, r1 = (int(v) for v in box)
        h, w = r1 - r0, c1 - c0
        if h <= 0 or w <= 0:
            raise ValueError(f"noco_map: degenerate box {box} (truncated cell {h}x{w} px)")
        rr0, rr1 = max(0, r0 - h), min(r1 + h, img_h)
        cc0, cc1 = max(0, c0 - w), min(c1 + w, img_w)
        gauss = _gaussian_template(h, w)[rr0 - (r0 - h): 3 * h - ((r1 + h) - rr1),
                                         cc0 - (c0 - w): 3 * w - ((c1 + w) - cc1)]
        peak = float(img[r0:r1, c0:c1].max())
        window = img[rr0:rr1, cc0:cc1]
        low = float(window.min())
        contrast = (window - low) / (peak - low + CONTRAST_EPS)
        noco = gauss * contrast
        hi, lo = noco.max(), noco.min()
        out[rr0:rr1, cc0:cc1] = (noco - lo) / (hi - lo + MINMAX_EPS)
    return out
