"""Comparing two detection lists of one image (exported model vs PyTorch)."""
from __future__ import annotations

from typing import Tuple

import numpy as np

__all__ = ["candidate_differences", "matched_differences"]


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


def candidate_differences(got, ref, score_thresh: float) -> Tuple[float, float, float]:
    """Largest (box, select_prob, score_factor) differences between two sets of dense outputs
    (boxes (1, 4, h, w), select_prob and score_factor (1, K, h, w)) of one image. Grids of
    cells are compared cell by cell; candidate lists (h = 1: the per-level top-k of FCOS and
    RetinaNet), whose order may differ between near-tied scores, by their sorted values, and
    their boxes by ``matched_differences`` among the candidates above ``score_thresh``."""
    if got[0].shape != ref[0].shape or got[0].shape[2] > 1:
        return tuple(float(np.abs(g - r).max()) if g.shape == r.shape else float("inf")
                     for g, r in zip(got, ref))
    prob_diff, factor_diff = (float(np.abs(np.sort(g.ravel()) - np.sort(r.ravel())).max())
                              for g, r in zip(got[1:], ref[1:]))
    lists = []
    for boxes, prob, factor in (got, ref):
        score = prob[0, :, 0].max(axis=0)
        keep = score > score_thresh
        lists.append((boxes[0, :, 0].T[keep], score[keep] * factor[0, :, 0].max(axis=0)[keep]))
    (b, s), (rb, rs) = lists
    box_diff = (0.0 if len(s) == len(rs) == 0 else float("inf") if len(s) != len(rs)
                else matched_differences(b, s, rb, rs)[0])
    return box_diff, prob_diff, factor_diff
