"""IRSTD detection figures Pd / Fa for point or box detections.

Object-level version of the community's Pd/Fa (BasicIRSTD's ``PD_FA`` after its January 2024
fix matches each GT component to at most one predicted component whose centroid lies closer
than 3 px): detections with ``score >= score_threshold`` are visited by descending score
(ties in the metric's canonical order, ``nocoap.canonical_order``) and
each takes the nearest not-yet-matched GT whose centre is closer than ``distance`` pixels
(strict). GT centre = box centre ((x1 + x2) / 2, (y1 + y2) / 2), the same convention as the
detection centroids.

- ``Pd`` = matched GT targets / all GT targets (0 when the split has no target);
- ``Fa_per_image`` = unmatched detections / images;
- ``Fa_per_MP`` = unmatched detections / megapixels of all images.

``mask_pd_fa`` is the pixel-level form for segmentation outputs (maps, not detections).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Dict, Iterable, Sequence

import numpy as np
from scipy import ndimage

from .ground_truth import NoCoGroundTruth
from .nocoap import canonical_order

PD_FA_SCORE_THRESHOLD = 0.5  # detections scoring at least this count for Pd/Fa

PD_DISTANCE = 3.0  # pixels, strict


def pd_fa(centroids: Sequence[np.ndarray], gt: NoCoGroundTruth,
          score_threshold: float = PD_FA_SCORE_THRESHOLD,
          distance: float = PD_DISTANCE) -> Dict[str, float]:
    """Pd and Fa of per-image centroids (float32 (m, 3) rows cx, cy, score), dataset order."""
    matched = false_alarms = 0
    for i, c in enumerate(centroids):
        c = np.asarray(c, dtype=np.float64).reshape(-1, 3)
        c = c[c[:, 2] >= score_threshold]
        if not len(c):
            continue
        b = gt.image_boxes(i).astype(np.float64)
        if not len(b):
            false_alarms += len(c)
            continue
        centres = np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], axis=1)
        dist = np.hypot(c[:, None, 0] - centres[None, :, 0], c[:, None, 1] - centres[None, :, 1])
        free = np.ones(len(b), dtype=bool)
        for k in canonical_order(c):
            d = np.where(free, dist[k], np.inf)
            j = int(np.argmin(d))
            if d[j] < distance:
                free[j] = False
                matched += 1
            else:
                false_alarms += 1
    megapixels = float((gt.shapes[:, 0] * gt.shapes[:, 1]).sum()) / 1e6
    return OrderedDict(
        Pd=matched / gt.num_gts if gt.num_gts else 0.0,
        Fa_per_image=false_alarms / max(len(gt), 1),
        Fa_per_MP=false_alarms / megapixels if megapixels else 0.0,
        score_threshold=float(score_threshold),
    )


def _components(mask: np.ndarray):
    """8-connected components of a bool mask: (areas (n,), centroids (n, 2) as (row, col)),
    in raster order of each component's first pixel (scikit-image's label order)."""
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return np.zeros(0, np.int64), np.zeros((0, 2))
    idx = np.arange(1, n + 1)
    areas = ndimage.sum_labels(np.ones(mask.shape), labels, idx).astype(np.int64)
    centroids = np.asarray(ndimage.center_of_mass(np.ones(mask.shape), labels, idx)).reshape(n, 2)
    return areas, centroids


def mask_pd_fa(pred_maps: Iterable[np.ndarray], gt_masks: Iterable[np.ndarray],
               threshold: float = 0.5, distance: float = PD_DISTANCE) -> Dict[str, float]:
    """Pixel-level Pd / Fa of segmentation outputs (BasicIRSTD ``PD_FA`` after its January
    2024 fix; identical to ``pyirstdmetrics.ProbabilityDetectionAndFalseAlarmRate``).

    Predicted components are the 8-connected components of ``pred > threshold``. Each GT
    component (label order) takes the first not-yet-matched predicted component (label order)
    whose centroid is closer than ``distance`` pixels. ``Pd`` = matched GT components / GT
    components; ``Fa`` = pixels of unmatched predicted components / all pixels.

    Args:
        pred_maps: per image, a float map in [0, 1] (H, W).
        gt_masks: per image, a bool (or non-zero = target) mask (H, W).
    """
    matched = targets = fa_pixels = pixels = 0
    for pred, gt in zip(pred_maps, gt_masks):
        pred, gt = np.asarray(pred), np.asarray(gt) != 0
        if pred.shape != gt.shape:
            raise ValueError(f"prediction {pred.shape} and mask {gt.shape} differ in size")
        p_area, p_cent = _components(pred > threshold)
        _, g_cent = _components(gt)
        free = np.ones(len(p_area), dtype=bool)
        for c in g_cent:
            d = np.linalg.norm(p_cent - c, axis=1)
            hits = np.flatnonzero(free & (d < distance))
            if len(hits):
                free[hits[0]] = False
                matched += 1
        targets += len(g_cent)
        fa_pixels += int(p_area[free].sum())
        pixels += gt.size
    return OrderedDict(Pd=matched / targets if targets else 0.0,
                       Fa=fa_pixels / pixels if pixels else 0.0)
