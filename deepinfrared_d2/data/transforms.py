"""Detectron2 augmentations for SIRST training and testing (OSCAR spec 8.1).

- ``KeepRatioResize``: the reference's keep-ratio rule (fit inside (1000, 600)), OpenCV
  bilinear resampling, boxes scaled and clipped in float32.
- ``RandomGammaCorrection``: LUT gamma correction with gamma ~ U(lower, 1) or its inverse.
- ``TargetCentredCrop``: fixed-size crops at native resolution, centred on a random target
  with some probability (fast CPU recipe); boxes are shifted, not clipped (the mapper clips
  and drops boxes that lose most of their area).
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import cv2
import numpy as np
from detectron2.data.transforms import Augmentation
from fvcore.transforms.transform import CropTransform, NoOpTransform, Transform

__all__ = [
    "keep_ratio_size",
    "KeepRatioResizeTransform",
    "KeepRatioResize",
    "GammaLUTTransform",
    "RandomGammaCorrection",
    "TargetCentredCrop",
]


def keep_ratio_size(height: int, width: int, long_max: float, short_max: float) -> Tuple[int, int]:
    """(new_h, new_w) for the reference rule: s = min(long_max / max(h, w), short_max / min(h, w)),
    new size = (int(w s + 0.5), int(h s + 0.5)). E.g. 640x512 -> 750x600 (w x h)."""
    scale = min(long_max / max(height, width), short_max / min(height, width))
    return int(height * float(scale) + 0.5), int(width * float(scale) + 0.5)


class KeepRatioResizeTransform(Transform):
    """Resize (h, w) -> (new_h, new_w) with ``cv2.resize``; boxes x (new_w / w, new_h / h) in
    float32 and clipped to [0, new_w] x [0, new_h] (spec 8.1 step 2)."""

    def __init__(self, h: int, w: int, new_h: int, new_w: int,
                 interp: int = cv2.INTER_LINEAR):
        super().__init__()
        self._set_attributes(locals())

    def _scale(self) -> np.ndarray:
        # Python-double quotients cast to float32, as the reference's scale_factor array.
        return np.array([self.new_w / self.w, self.new_h / self.h], dtype=np.float32)

    def apply_image(self, img: np.ndarray, interp: Optional[int] = None) -> np.ndarray:
        if img.shape[:2] != (self.h, self.w):
            raise ValueError(f"KeepRatioResizeTransform expects a {self.h}x{self.w} image, got "
                             f"{img.shape[:2]}")
        out = cv2.resize(img, (self.new_w, self.new_h),
                         interpolation=self.interp if interp is None else interp)
        if img.ndim == 3 and out.ndim == 2:  # cv2 drops a single channel axis
            out = out[:, :, None]
        return out

    def apply_coords(self, coords: np.ndarray) -> np.ndarray:
        return np.asarray(coords, dtype=np.float32) * self._scale()

    def apply_box(self, box: np.ndarray) -> np.ndarray:
        boxes = np.asarray(box, dtype=np.float32).reshape(-1, 4) * np.tile(self._scale(), 2)
        boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, self.new_w)
        boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, self.new_h)
        return boxes

    def apply_segmentation(self, segmentation: np.ndarray) -> np.ndarray:
        return self.apply_image(segmentation, interp=cv2.INTER_NEAREST)

    def inverse(self) -> Transform:
        return KeepRatioResizeTransform(self.new_h, self.new_w, self.h, self.w, self.interp)


class KeepRatioResize(Augmentation):
    """Keep-ratio resize to fit inside ``long_max`` x ``short_max`` (up- or down-scaling)."""

    def __init__(self, long_max: float = 1000, short_max: float = 600,
                 interp: int = cv2.INTER_LINEAR):
        super().__init__()
        self._init(locals())

    def get_transform(self, image: np.ndarray) -> Transform:
        h, w = image.shape[:2]
        new_h, new_w = keep_ratio_size(h, w, self.long_max, self.short_max)
        return KeepRatioResizeTransform(h, w, new_h, new_w, self.interp)


class GammaLUTTransform(Transform):
    """Apply a 256-entry uint8 look-up table to a uint8 image; geometry unchanged."""

    def __init__(self, table: np.ndarray):
        super().__init__()
        table = np.asarray(table, dtype=np.uint8)
        if table.shape != (256,):
            raise ValueError(f"a LUT needs 256 entries, got shape {table.shape}")
        self._set_attributes(locals())

    def apply_image(self, img: np.ndarray) -> np.ndarray:
        if img.dtype != np.uint8:
            raise ValueError(f"GammaLUTTransform needs a uint8 image, got {img.dtype}")
        out = cv2.LUT(img, self.table)
        return out.reshape(img.shape)

    def apply_coords(self, coords: np.ndarray) -> np.ndarray:
        return coords

    def apply_segmentation(self, segmentation: np.ndarray) -> np.ndarray:
        return segmentation


def gamma_table(exponent: float) -> np.ndarray:
    """LUT of (i / 255) ** exponent * 255 cast (truncated) to uint8, i = 0..255."""
    return ((np.arange(256) / 255.0) ** exponent * 255).astype(np.uint8)


class RandomGammaCorrection(Augmentation):
    """gamma ~ U(lower_bound, 1); exponent = 1 / gamma with probability 0.5, else gamma."""

    def __init__(self, lower_bound: float = 0.5):
        super().__init__()
        if not 0 < lower_bound <= 1:
            raise ValueError(f"gamma lower bound must be in (0, 1], got {lower_bound}")
        self._init(locals())

    def get_transform(self, image: np.ndarray) -> Transform:
        gamma = np.random.uniform(self.lower_bound, 1.0)
        exponent = 1.0 / gamma if np.random.rand() < 0.5 else gamma
        return GammaLUTTransform(gamma_table(exponent))


class TargetCentredCrop(Augmentation):
    """Crop of ``size`` = (h, w) pixels (smaller if the image is smaller).

    With probability ``target_prob`` (and at least one box), a random box is placed inside the
    crop at a random offset (the whole box when it fits, otherwise its centre pixel);
    otherwise the crop position is uniform over the image.
    """

    def __init__(self, size: Sequence[int], target_prob: float = 0.75):
        super().__init__()
        if len(size) != 2 or min(size) <= 0:
            raise ValueError(f"crop size must be (h, w) > 0, got {size}")
        self._init(locals())

    def get_transform(self, image: np.ndarray, boxes: Optional[np.ndarray]) -> Transform:
        img_h, img_w = image.shape[:2]
        crop_h, crop_w = min(int(self.size[0]), img_h), min(int(self.size[1]), img_w)
        if (crop_h, crop_w) == (img_h, img_w):
            return NoOpTransform()
        if boxes is not None and len(boxes) > 0 and np.random.rand() < self.target_prob:
            box = np.asarray(boxes, dtype=np.float64)[np.random.randint(len(boxes))]
            x0 = _offset_containing(box[0], box[2], crop_w, img_w)
            y0 = _offset_containing(box[1], box[3], crop_h, img_h)
        else:
            x0 = np.random.randint(img_w - crop_w + 1)
            y0 = np.random.randint(img_h - crop_h + 1)
        return CropTransform(int(x0), int(y0), crop_w, crop_h)


def _offset_containing(lo: float, hi: float, crop: int, size: int) -> int:
    """Random integer offset o in [0, size - crop] with [lo, hi) inside [o, o + crop) when the
    interval fits, else with its centre pixel inside."""
    first = max(0, int(np.ceil(hi)) - crop)
    last = min(int(np.floor(lo)), size - crop)
    if first > last:
        centre = int((lo + hi) / 2)
        first, last = max(0, centre - crop + 1), min(centre, size - crop)
    first, last = min(first, size - crop), max(min(last, size - crop), 0)
    return int(np.random.randint(min(first, last), max(first, last) + 1))
