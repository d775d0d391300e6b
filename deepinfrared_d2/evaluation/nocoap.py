"""mNoCoAP: the normalized-contrast AP of SIRST-V2 (OSCAR spec 3), vectorised.

Reproduces the reference protocol bit for bit, quirks included, wherever the reference's order
is defined (no two detections with the same float32 score):

- a detection is reduced to its centroid (float32) and score;
- per image, detections are visited by descending score; the centroid is rounded half-to-even
  to a pixel, clamped only where it equals the image height/width;
- it is a TP at threshold t iff the NoCo value there is ``> t`` (strict), the *first* GT box
  (annotation order) containing the unrounded centroid (inclusive on all sides) exists, and
  that GT is not covered yet; otherwise an FP (other containing GTs are not tried);
- all detections of the dataset are pooled and sorted by score; AP is mmdet's "area" AP in
  float32; NoCoAPxx are the float32 APs (unrounded), mNoCoAP their mean.

Equal scores: the reference sorts with NumPy's unstable ``argsort``, so the order of tied
detections (and with it the AP) depends on the order of the input and on NumPy's sorting
kernel. Here every order is canonical (:func:`canonical_order`): per image by descending
score, then centroid row, then column (then box corners); across images by descending score,
then dataset order, then that per-image order (stable sorts). The result therefore depends
only on the set of detections of each image, never on the order in which they are given.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from .ground_truth import NoCoGroundTruth

# The 9 thresholds, exactly these doubles (0.30000000000000004 and 0.7000000000000001 included).
NOCO_THRESHOLDS = np.linspace(0.1, 0.9, 9)
_EPS = np.finfo(np.float32).eps


def threshold_key(t: float) -> str:
    """Result key of threshold ``t``: ``NoCoAP10`` ... ``NoCoAP90``."""
    return f"NoCoAP{int(t * 100):02d}"


def centroids_from_boxes(boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """float32 (m, 3) rows (cx, cy, score) from XYXY_ABS boxes (m, 4), computed in float32."""
    b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    s = np.asarray(scores, dtype=np.float32).reshape(-1, 1)
    return np.concatenate([(b[:, 0:1] + b[:, 2:3]) / 2, (b[:, 1:2] + b[:, 3:4]) / 2, s], axis=1)


def centroid_pixels(centroids: np.ndarray, heights, widths
                    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pixel (row, col) each centroid is read at, and where it is invalid.

    Args:
        centroids: float32 (m, 3) rows (cx, cy, score) in original-image pixels.
        heights, widths: image size in pixels, scalars or (m,) int arrays.
    Returns:
        rows, cols: int64 (m,), rounded half-to-even, clamped only where equal to the size;
        bad: bool (m,), True where a value is not finite or the pixel lies outside the image.
    """
    c = np.asarray(centroids, dtype=np.float32).reshape(-1, 3)
    finite = np.isfinite(c).all(1)
    with np.errstate(invalid="ignore"):
        rows = np.where(finite, np.round(c[:, 1]), -1).astype(np.int64)
        cols = np.where(finite, np.round(c[:, 0]), -1).astype(np.int64)
    rows[rows == heights] -= 1
    cols[cols == widths] -= 1
    bad = (rows < 0) | (rows >= heights) | (cols < 0) | (cols >= widths) | ~finite
    return rows, cols, bad


def canonical_order(dets: np.ndarray, boxes: Optional[np.ndarray] = None) -> np.ndarray:
    """Indices (m,) putting one image's detections in the metric's canonical order.

    ``dets``: (m, 3) rows (cx, cy, score); ``boxes``: optional (m, 4) XYXY. Order: score
    descending (as float32, the precision the metric compares), then cy, cx ascending, then
    x1, y1, x2, y2 ascending; rows equal in all of these are interchangeable.
    """
    d = np.asarray(dets, dtype=np.float32).reshape(-1, 3)
    keys = [d[:, 0], d[:, 1], -d[:, 2]]  # np.lexsort: the last key is the primary one
    if boxes is not None:
        b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        keys = [b[:, 3], b[:, 2], b[:, 1], b[:, 0]] + keys
    return np.lexsort(keys)


def area_average_precision(recall: np.ndarray, precision: np.ndarray) -> np.float32:
    """mmdet's ``average_precision(mode='area')`` for one class, in float32."""
    zero = np.zeros(1, dtype=recall.dtype)
    mrec = np.concatenate([zero, recall, np.ones(1, dtype=recall.dtype)])
    mpre = np.concatenate([zero, precision, zero])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    ind = np.where(mrec[1:] != mrec[:-1])[0]
    return np.float32(np.sum((mrec[ind + 1] - mrec[ind]) * mpre[ind + 1]))


def match_centroids(centroids: Sequence[np.ndarray], gt: NoCoGroundTruth,
                    thresholds: np.ndarray = NOCO_THRESHOLDS) -> Tuple[np.ndarray, np.ndarray]:
    """TP flags of every detection at every threshold (spec 3.2), vectorised over the dataset.

    Args:
        centroids: one float32 (m_i, 3) array (cx, cy, score) per image of ``gt``, in
            dataset order; coordinates in original-image pixels. Tied scores are visited in
            the given order (stable sort); :func:`evaluate_nocoap` canonicalises it first.
    Returns:
        tp: float32 (T, N) with N = sum m_i, detections concatenated in dataset order (each
            image's detections in their given order); ``fp = 1 - tp``.
        scores: float32 (N,).
    """
    if len(centroids) != len(gt):
        raise ValueError(f"{len(centroids)} centroid arrays for {len(gt)} images")
    dets = [np.asarray(c, dtype=np.float32).reshape(-1, 3) for c in centroids]
    counts = np.array([len(d) for d in dets], dtype=np.int64)
    n = int(counts.sum())
    tp = np.zeros((len(thresholds), n), dtype=np.float32)
    if n == 0:
        return tp, np.zeros(0, dtype=np.float32)
    allc = np.concatenate(dets)
    cx, cy, scores = allc[:, 0], allc[:, 1], allc[:, 2]
    img = np.repeat(np.arange(len(dets)), counts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    # Per-image visiting order: descending float32 score, ties in the given order.
    visit = np.concatenate([s + np.argsort(-d[:, 2], kind="stable")
                            for s, d in zip(starts, dets) if len(d)])

    heights, widths = gt.shapes[img, 0], gt.shapes[img, 1]
    rows, cols, bad = centroid_pixels(allc, heights, widths)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"detection (cx={cx[k]}, cy={cy[k]}, score={scores[k]}) on image "
            f"{gt.image_ids[img[k]]!r} ({widths[k]}x{heights[k]}) is not a finite point inside "
            "the image; detections must be in original-image pixels")
    value = gt.lookup(img, rows, cols)

    # First GT (annotation order) whose box contains the unrounded centroid; -1 if none.
    n_gt = np.diff(gt.box_offsets)
    width = max(int(n_gt.max()) if len(n_gt) else 0, 1)
    slot = np.arange(width)
    gidx = gt.box_offsets[img][:, None] + slot[None, :]  # (N, width) global GT index
    valid = slot[None, :] < n_gt[img][:, None]
    b = gt.boxes[np.where(valid, gidx, 0)] if gt.num_gts else np.zeros((n, width, 4), np.float32)
    inside = valid & (b[..., 0] <= cx[:, None]) & (cx[:, None] <= b[..., 2]) \
        & (b[..., 1] <= cy[:, None]) & (cy[:, None] <= b[..., 3])
    first = np.where(inside.any(1), gidx[np.arange(n), inside.argmax(1)], -1)

    value_v, first_v = value[visit], first[visit]
    for t, thr in enumerate(thresholds):
        hit = np.flatnonzero((value_v > thr) & (first_v >= 0))
        # The first visited hit of each GT covers it (TP); later hits of it are FPs.
        _, first_hit = np.unique(first_v[hit], return_index=True)
        tp[t, visit[hit[first_hit]]] = 1
    return tp, scores


def precision_recall(tp: np.ndarray, scores: np.ndarray, num_gts: int
                     ) -> Tuple[np.ndarray, np.ndarray]:
    """Recall and precision (float32 (T, N)) down the detections ranked by descending score
    (ties in the given order, stable sort), from TP flags (T, N) and scores (N,)."""
    order = np.argsort(-np.asarray(scores, dtype=np.float32), kind="stable")
    tps = tp[:, order]
    tpc = np.cumsum(tps, axis=1)
    fpc = np.cumsum(np.float32(1) - tps, axis=1)
    recall = tpc / np.maximum(num_gts, _EPS)
    precision = tpc / np.maximum(tpc + fpc, _EPS)
    return recall, precision


def nocoap_from_curves(recall: np.ndarray, precision: np.ndarray, num_gts: int) -> np.ndarray:
    """Per-threshold AP (float32 (T,)) from the curves of :func:`precision_recall` (spec 3.3)."""
    if num_gts == 0:
        return np.zeros(recall.shape[0], dtype=np.float32)
    return np.array([area_average_precision(r, p) for r, p in zip(recall, precision)],
                    dtype=np.float32)


def nocoap_summary(aps: np.ndarray, thresholds: np.ndarray = NOCO_THRESHOLDS) -> Dict[str, float]:
    """``NoCoAP10`` ... ``NoCoAP90`` then ``mNoCoAP`` (their mean), all unrounded floats."""
    values = [float(a) for a in aps]
    out = OrderedDict((threshold_key(t), v) for t, v in zip(thresholds, values))
    out["mNoCoAP"] = sum(values) / len(values)
    return out


def nocoap_with_curves(centroids: Sequence[np.ndarray], gt: NoCoGroundTruth,
                       thresholds: np.ndarray = NOCO_THRESHOLDS
                       ) -> Tuple[Dict[str, float], Tuple[np.ndarray, np.ndarray]]:
    """:func:`evaluate_nocoap`'s figures and the precision-recall curves behind them (recall,
    precision: float32 (T, N), one row per threshold, N = all detections ranked by score), from
    one matching."""
    dets = [np.asarray(c, dtype=np.float32).reshape(-1, 3) for c in centroids]
    tp, scores = match_centroids([d[canonical_order(d)] for d in dets], gt, thresholds)
    recall, precision = precision_recall(tp, scores, gt.num_gts)
    aps = nocoap_from_curves(recall, precision, gt.num_gts)
    return nocoap_summary(aps, thresholds), (recall, precision)


def evaluate_nocoap(centroids: Sequence[np.ndarray], gt: NoCoGroundTruth,
                    thresholds: np.ndarray = NOCO_THRESHOLDS) -> Dict[str, float]:
    """mNoCoAP and the per-threshold NoCoAPs of per-image centroids (see module docstring);
    independent of the order of each image's detections."""
    return nocoap_with_curves(centroids, gt, thresholds)[0]
