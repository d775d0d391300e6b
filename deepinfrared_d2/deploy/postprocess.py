"""Post-processing of dense per-cell detector outputs in NumPy, for one image.

Used by the PyTorch models (OSCAR's ``inference``) and by the exported ONNX models alike, so
both give the same detections from the same dense outputs. The network gives, per cell of
its output grid, a box (already decoded, in network-input pixels), a selection probability
per class and a score factor per class; here: candidate selection on the probability, clip,
rescale to the original image, fused score = probability x factor, per-class NMS
(torchvision's semantics: float32 IoU without +1, suppression when IoU > threshold).
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

__all__ = ["nms", "cell_detections", "CLIP_MODES"]

CLIP_MODES = ("before_nms", "after_nms", "both")


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float,
        max_keep: int = -1) -> np.ndarray:
    """Greedy NMS: indices of kept boxes, highest score first.

    Args:
        boxes: (N, 4) float32 XYXY; inverted boxes (x2 < x1) are used as given, like
            torchvision (negative area).
        scores: (N,) float32; ties keep the earlier box first (stable order).
        max_keep: stop after this many kept boxes (-1: all); the kept prefix is unchanged.
    """
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = (np.ascontiguousarray(boxes[order, j], dtype=np.float32) for j in range(4))
    areas = (x2 - x1) * (y2 - y1)
    suppressed = np.zeros(len(order), dtype=bool)
    keep = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(len(order)):
            if suppressed[i]:
                continue
            keep.append(i)
            if len(keep) == max_keep:
                break
            rest = slice(i + 1, None)
            w = np.maximum(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0)
            h = np.maximum(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0)
            inter = w * h
            suppressed[rest] |= inter / (areas[i] + areas[rest] - inter) > iou_threshold
    return order[np.asarray(keep, dtype=np.int64)]


def cell_detections(boxes: np.ndarray, select_prob: np.ndarray, score_factor: np.ndarray,
                    image_size: Tuple[int, int], original_size: Tuple[int, int],
                    score_thresh: float, nms_pre: int, nms_thresh: float,
                    max_per_image: int, clip: str = "before_nms"
                    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detections of one image in original-image pixels.

    Args:
        boxes: (4, H, W) float32 XYXY box of every cell, in network-input pixels.
        select_prob: (K, H, W) float32 probability of each class, used to select candidates.
        score_factor: (K, H, W) float32; final score = select_prob x score_factor.
        image_size: (h, w) of the resized, unpadded network input (boxes are clipped to it).
        original_size: (h, w) of the image on disk (boxes are divided by the float32 scale).
        score_thresh: candidates need select_prob > score_thresh (strict).
        nms_pre: candidates kept (highest select_prob first, stable) before NMS.
        nms_thresh: IoU above which a lower-scored box of the same class is suppressed.
        max_per_image: detections kept after NMS.
        clip: where boxes are clipped. "before_nms" (OSCAR, FCOS; mmdet's order): clip to the
            input, divide by the float32 scale, NMS. "after_nms" (Detectron2's dense
            detectors, RetinaNet): NMS on the unclipped boxes, then ``detector_postprocess``:
            multiply by the float32 scale, clip to the original image, drop boxes with a side
            <= 0. "both" (Detectron2's R-CNN, ``fast_rcnn_inference``): clip to the input,
            NMS, then ``detector_postprocess``.
    Returns:
        boxes (n, 4) float32 XYXY with x1 <= x2, y1 <= y2, scores (n,) float32, classes (n,)
        int64, by decreasing score.
    """
    if clip not in CLIP_MODES:
        raise ValueError(f"clip must be one of {CLIP_MODES}, not {clip!r}")
    num_classes = select_prob.shape[0]
    prob = np.asarray(select_prob, dtype=np.float32).transpose(1, 2, 0).reshape(-1)
    factor = np.asarray(score_factor, dtype=np.float32).transpose(1, 2, 0).reshape(-1)
    keep = np.flatnonzero(prob > score_thresh)
    keep = keep[np.argsort(-prob[keep], kind="stable")[:nms_pre]]
    cells, classes = keep // num_classes, keep % num_classes
    flat = np.asarray(boxes, dtype=np.float32).transpose(1, 2, 0).reshape(-1, 4)[cells]
    h, w = int(image_size[0]), int(image_size[1])
    orig_h, orig_w = int(original_size[0]), int(original_size[1])
    if clip != "after_nms":
        flat = _clip(flat, h, w)
    if clip == "before_nms":
        flat = flat / np.array([w / orig_w, h / orig_h, w / orig_w, h / orig_h], dtype=np.float32)
    scores = prob[keep] * factor[keep]

    kept = [idx[nms(flat[idx], scores[idx], nms_thresh, max_per_image)]
            for idx in (np.flatnonzero(classes == c) for c in np.unique(classes))]
    kept = np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)
    kept = kept[np.argsort(-scores[kept], kind="stable")][:max_per_image]
    out = flat[kept]
    if clip != "before_nms":
        out = _clip(out * np.array([orig_w / w, orig_h / h] * 2, dtype=np.float32), orig_h, orig_w)
        nonempty = (out[:, 2] > out[:, 0]) & (out[:, 3] > out[:, 1])
        out, kept = out[nonempty], kept[nonempty]
    # An offset can invert a box (x2 < x1), as in the reference; NMS above uses it as given,
    # the output has sorted corners (same centre, so the same NoCo match; a valid XYWH box).
    out = np.concatenate([np.minimum(out[:, :2], out[:, 2:]), np.maximum(out[:, :2], out[:, 2:])],
                         axis=1)
    return out, scores[kept], classes[kept].astype(np.int64)


def _clip(boxes: np.ndarray, h: int, w: int) -> np.ndarray:
    """(N, 4) XYXY boxes clipped to [0, w] x [0, h]."""
    boxes = boxes.copy()
    boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, w)
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, h)
    return boxes
