"""Local-contrast methods: LCM, MPCM, TLLCM and the extras RLCM, ADMD, AAGD (spec 3.1-3.2,
3.11-3.12). All dense (stride 1), vectorised with shifted reads of filtered images."""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np
from scipy import ndimage as ndi

from ..registry import register
from .filters import CELL_OFFSETS, CellReader, box, top_k_mean


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den where den > 0, else 0."""
    out = np.zeros_like(num)
    np.divide(num, den, out=out, where=den > 0)
    return out


@register("lcm", citation="C. L. P. Chen, H. Li, Y. Wei, T. Xia, Y. Y. Tang, \"A Local Contrast "
          "Method for Small Infrared Target Detection,\" IEEE Trans. Geosci. Remote Sens., "
          "52(1):574-581, 2014.")
def lcm(image: np.ndarray, scales: Sequence[int] = (3, 5, 7, 9)) -> np.ndarray:
    """LCM: max over scales of L^2 / max_i m_i (L = max of the centre cell, m_i = cell means).

    Cell means use MATLAB 'symmetric' borders; where every surrounding mean is 0 the map is 0.
    """
    out = np.zeros_like(image)
    for s in scales:
        centre_max = ndi.maximum_filter(image, size=s, mode="nearest")
        cells = CellReader(image, s, box(s), pad_mode="symmetric")
        mmax = np.full_like(image, -np.inf)
        for dy, dx in CELL_OFFSETS:
            np.maximum(mmax, cells.read(dy, dx), out=mmax)
        np.maximum(out, _safe_div(centre_max * centre_max, mmax), out=out)
    return out


@register("mpcm", citation="Y. Wei, X. You, H. Li, \"Multiscale patch-based contrast measure "
          "for small infrared target detection,\" Pattern Recognition, 58:216-226, 2016.")
def mpcm(image: np.ndarray, scales: Sequence[int] = (3, 5, 7, 9)) -> np.ndarray:
    """MPCM: max over scales of min over the 4 opposite cell pairs of d_i * d_(i+4).

    d_i = centre-cell mean - cell i mean (replicate border); a pair counts only when both
    differences are positive (bright target), else 0. Output clipped at 0.
    """
    out = np.zeros_like(image)
    for s in scales:
        cells = CellReader(image, s, box(s), pad_mode="edge")
        centre = cells.read(0, 0)
        pcm = None
        for i in range(4):
            d1 = centre - cells.read(*CELL_OFFSETS[i])
            d2 = centre - cells.read(*CELL_OFFSETS[i + 4])
            p = np.where((d1 > 0) & (d2 > 0), d1 * d2, 0.0)
            pcm = p if pcm is None else np.minimum(pcm, p, out=pcm)
        np.maximum(out, pcm, out=out)
    return out


def _top_k_filter(s: int, ks: Tuple[int, ...], which: int):
    def filt(padded: np.ndarray) -> np.ndarray:
        valid = top_k_mean(padded, s, ks)[which]
        return np.pad(valid, s // 2)
    return filt


@register("tllcm", citation="J. Han, S. Moradi, I. Faramarzi, C. Liu, H. Zhang, Q. Zhao, \"A "
          "Local Contrast Method for Infrared Small-Target Detection Utilizing a Tri-Layer "
          "Window,\" IEEE Geosci. Remote Sens. Lett., 17(10):1822-1826, 2020.")
def tllcm(image: np.ndarray, cell: int = 9, top_k: int = 9) -> np.ndarray:
    """TLLCM (single scale, co-author code): Ic^2 / Ib - Ic, clipped at 0.

    Ic = image * [1 2 1; 2 4 2; 1 2 1] / 16 (replicate border); Ib = max over the 8
    surrounding ``cell`` x ``cell`` cells of the mean of their ``top_k`` largest values
    (zero padding, as MATLAB ordfilt2).
    """
    k = np.array([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16.0
    ic = ndi.correlate(image, k, mode="nearest")
    cells = CellReader(image, cell, _top_k_filter(cell, (top_k,), 0), pad_mode="constant")
    ib = np.full_like(image, -np.inf)
    for dy, dx in CELL_OFFSETS:
        np.maximum(ib, cells.read(dy, dx), out=ib)
    return np.maximum(_safe_div(ic * ic, ib) - ic, 0.0)


@register("rlcm", citation="J. Han, K. Liang, B. Zhou, X. Zhu, J. Zhao, L. Zhao, \"Infrared "
          "Small Target Detection Utilizing the Multiscale Relative Local Contrast Measure,\" "
          "IEEE Geosci. Remote Sens. Lett., 15(4):612-616, 2018.")
def rlcm(image: np.ndarray, cell: int = 9,
         k_pairs: Sequence[Tuple[int, int]] = ((2, 4), (5, 9), (9, 16))) -> np.ndarray:
    """RLCM (extra): max over (K1, K2) of I0^2 / max_i I_i - I0, clipped at 0.

    I0 = mean of the K1 largest values of the centre cell, I_i = mean of the K2 largest of
    surrounding cell i (zero padding, as ordfilt2). Pairs from the co-author code.
    """
    ks = tuple(sorted({k for pair in k_pairs for k in pair}))
    r = cell + cell // 2
    padded = np.pad(image, r)
    tops = {k: np.pad(t, cell // 2) for k, t in zip(ks, top_k_mean(padded, cell, ks))}
    h, w = image.shape

    def read(k: int, dy: int, dx: int) -> np.ndarray:
        y0, x0 = r + dy * cell, r + dx * cell
        return tops[k][y0:y0 + h, x0:x0 + w]

    out = np.zeros_like(image)
    for k1, k2 in k_pairs:
        i0 = read(k1, 0, 0)
        imax = np.full_like(image, -np.inf)
        for dy, dx in CELL_OFFSETS:
            np.maximum(imax, read(k2, dy, dx), out=imax)
        np.maximum(out, _safe_div(i0 * i0, imax) - i0, out=out)
    return out


@register("admd", citation="S. Moradi, P. Moallem, M. F. Sabahi, \"Fast and robust small "
          "infrared target detection using absolute directional mean difference algorithm,\" "
          "Signal Processing, 177:107727, 2020.")
def admd(image: np.ndarray, scales: Sequence[int] = (3, 5, 7, 9)) -> np.ndarray:
    """ADMD (extra): max over scales of (M - Mb)^2 where M > Mb, else 0.

    M = s x s mean (symmetric border), Mb = max of M at the 8 surrounding cell centres.
    """
    out = np.zeros_like(image)
    for s in scales:
        cells = CellReader(image, s, box(s), pad_mode="symmetric")
        m = cells.read(0, 0)
        mb = np.full_like(image, -np.inf)
        for dy, dx in CELL_OFFSETS:
            np.maximum(mb, cells.read(dy, dx), out=mb)
        d = np.maximum(m - mb, 0.0)
        np.maximum(out, d * d, out=out)
    return out


@register("aagd", citation="M. Aghaziyarati, S. Moradi, H. Talebi, \"Small infrared target "
          "detection using absolute average difference weighted by cumulative directional "
          "derivatives,\" Infrared Phys. Technol., 101:78-87, 2019.")
def aagd(image: np.ndarray, inner: Sequence[int] = (3, 5, 7, 9), outer: int = 19) -> np.ndarray:
    """MS-AAGD (extra, public multi-scale form): max over scales of (mu_i - mu_r)^2.

    mu_i = inner-window mean, mu_r = mean of the ring between it and the ``outer`` window
    (replicate border). Only brighter-than-ring windows count (bright-target sign test).
    """
    no = float(outer * outer)
    mo = ndi.uniform_filter(image, size=outer, mode="nearest")
    out = np.zeros_like(image)
    for s in inner:
        ni = float(s * s)
        mi = ndi.uniform_filter(image, size=s, mode="nearest")
        mr = (no * mo - ni * mi) / (no - ni)
        d = np.maximum(mi - mr, 0.0)
        np.maximum(out, d * d, out=out)
    return out
