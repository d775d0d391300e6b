"""Image decoding for SIRST datasets (OSCAR spec 1.4).

SIRST-V2 mixes L, RGB, RGBA and palette PNGs. Two decodes are used, exactly as the reference:

- the network input: OpenCV colour decode (``IMREAD_COLOR``) -> uint8 BGR, H x W x 3
  (grey replicated, alpha dropped, palette expanded);
- the metric (evaluation NoCo map) and the classical baselines: OpenCV grey decode
  (``IMREAD_GRAYSCALE``, luma computed inside OpenCV's PNG reader) -> uint8, H x W.
"""
from __future__ import annotations

import os

import cv2
import numpy as np


class DatasetFileError(ValueError):
    """A dataset file is missing or malformed; the message names the file and the problem."""

    def __init__(self, path: str, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def _decode(path: str, flag: int) -> np.ndarray:
    if not os.path.isfile(path):
        raise DatasetFileError(path, "image file not found")
    img = cv2.imread(str(path), flag)
    if img is None or img.size == 0:
        raise DatasetFileError(path, "cannot be decoded as an image (corrupt or not an image)")
    return img


def read_image_bgr(path: str) -> np.ndarray:
    """Colour decode for the network input: uint8 array (H, W, 3) in BGR order."""
    return _decode(path, cv2.IMREAD_COLOR)


def read_image(path: str, fmt: str = "BGR") -> np.ndarray:
    """uint8 (H, W, 3) image in ``fmt`` ("BGR" or "RGB"), or (H, W, 1) for ``fmt="L"``."""
    if fmt == "L":
        return read_gray(path)[:, :, None]
    img = read_image_bgr(path)
    if fmt == "RGB":
        return np.ascontiguousarray(img[:, :, ::-1])
    if fmt != "BGR":
        raise ValueError(f"unsupported image format {fmt!r}: use 'BGR', 'RGB' or 'L'")
    return img


def read_gray(path: str) -> np.ndarray:
    """Grey decode used by the metric and the classical methods: uint8 array (H, W)."""
    return _decode(path, cv2.IMREAD_GRAYSCALE)


def read_mask(path: str) -> np.ndarray:
    """Binary target mask as a bool array (H, W): non-zero pixels are target.

    Masks are 0/255 mode-L PNGs; colour masks are reduced to "any channel non-zero".
    """
    m = _decode(path, cv2.IMREAD_UNCHANGED)
    if m.ndim == 3:
        m = m[:, :, :3].max(axis=2)
    return m > 0
