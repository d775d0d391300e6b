"""IRSTD detection figures Pd / Fa for point or box detections.

Object-level version of the community's Pd/Fa (BasicIRSTD's ``PD_FA`` after its January 2024
fix matches each GT component to at most one predicted component whose centroid lies closer
than 3 px): detections with ``score >= score_threshold`` are visited by descending score and
each takes the nearest not-yet-matched GT whose centre is closer than ``distance`` pixels
(strict). GT centre = box centre ((x1 + x2) / 2, (y1 + y2) / 2), the same convention as the
detection centroids.

- ``Pd`` = matched GT targets / all GT targets (0 when the split has no target);
- ``Fa_per_image`` = unmatched detections / images;
- ``Fa_per_MP`` = unmatched detections / megapixels of all images.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Dict, Sequence

import numpy as np

from .ground_truth import NoCoGroundTruth

PD_DISTANCE = 3.0  # pixels, strict


def pd_fa(centroids: Sequence[np.ndarray], gt: NoCoGroundTruth, score_threshold: float = 0.5,
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
        for k in np.argsort(-c[:, 2], kind="stable"):
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
