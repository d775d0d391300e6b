"""Comparing two detection lists of one image (exported model vs PyTorch)."""
from __future__ import annotations

from typing import Tuple

import numpy as np

__all__ = ["matched_differences"]


def matched_differences(boxes: np.ndarray, scores: np.ndarray, ref_boxes: np.ndarray,
                        ref_scores: np.ndarray, score_tol: float = 1e-5) -> Tuple[float, float]:
    """Largest box and score differences between two detection lists of one image, each
    detection paired with the closest box among the other list's detections of (nearly, up to
    ``score_tol``) the same score: near-tied scores may come out in either order."""
    score_diff = float(np.abs(np.sort(scores) - np.sort(ref_scores)).max())
    near = np.abs(scores[:, None] - ref_scores[None, :]) <= score_tol
    dist = np.abs(boxes[:, None, :] - ref_boxes[None, :, :]).max(axis=2)
    dist = np.where(near, dist, np.inf)
    return float(max(dist.min(axis=1).max(), dist.min(axis=0).max())), score_diff
