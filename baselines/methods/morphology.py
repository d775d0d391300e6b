"""Morphological / order-statistic filters: white Top-Hat, Max-Median, Max-Mean
(spec 3.9, 3.10)."""
from __future__ import annotations

from typing import Callable, List

import numpy as np
from scipy import ndimage as ndi

from ..registry import register


@register("tophat", citation="V. T. Tom, T. Peli, M. Leung, J. E. Bondaryk, \"Morphology-based "
          "algorithm for point target detection in infrared backgrounds,\" Proc. SPIE 1954, "
          "1993.")
def tophat(image: np.ndarray, size: int = 5) -> np.ndarray:
    """White top-hat: image - opening(image, size x size square), >= 0 (MATLAB imtophat)."""
    opened = ndi.maximum_filter(ndi.minimum_filter(image, size=size, mode="nearest"),
                                size=size, mode="nearest")
    return np.maximum(image - opened, 0.0)


def _line_footprints(n: int) -> List[np.ndarray]:
    """Horizontal, vertical, diagonal and anti-diagonal n-pixel lines through the centre."""
    eye = np.eye(n, dtype=bool)
    return [np.ones((1, n), bool), np.ones((n, 1), bool), eye, eye[:, ::-1].copy()]


def _max_directional(image: np.ndarray, n: int,
                     stat: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    background = None
    for fp in _line_footprints(n):
        b = stat(image, fp)
        background = b if background is None else np.maximum(background, b, out=background)
    return np.maximum(image - background, 0.0)


_DESHPANDE = ("S. D. Deshpande, M. H. Er, R. Venkateswarlu, P. Chan, \"Max-mean and max-median "
              "filters for detection of small targets,\" Proc. SPIE 3809, 1999.")


@register("maxmedian", citation=_DESHPANDE)
def maxmedian(image: np.ndarray, size: int = 5) -> np.ndarray:
    """Max-Median: image - max of the 4 directional line medians (symmetric border), >= 0."""
    return _max_directional(image, size, lambda a, fp: ndi.median_filter(
        a, footprint=fp, mode="reflect"))


@register("maxmean", citation=_DESHPANDE)
def maxmean(image: np.ndarray, size: int = 5) -> np.ndarray:
    """Max-Mean (extra): image - max of the 4 directional line means (symmetric border), >= 0."""
    return _max_directional(image, size, lambda a, fp: ndi.correlate(
        a, fp / fp.sum(), mode="reflect"))
