"""Pictures of SIRST images: GT boxes, the NoCo map and detections, with zoomed target crops.

Targets are a few pixels wide, so a picture is the whole image (boxes drawn, NoCo map blended
in) followed by a row of magnified crops centred on each GT target.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import cv2
import numpy as np

from sirst.image_io import read_gray, read_image_bgr
from sirst.noco_map import noco_map
from sirst.results import Detections

from ..evaluation.ground_truth import record_boxes

GT_COLOR = (0, 255, 0)  # BGR
DET_COLOR = (0, 0, 255)
CROP = 48  # crop side around a target, pixels
ZOOM = 5  # crop magnification


def _overlay_noco(bgr: np.ndarray, noco: Optional[np.ndarray], alpha: float = 0.6) -> np.ndarray:
    if noco is None or not np.any(noco > 0):
        return bgr.copy()
    heat = cv2.applyColorMap(np.clip(noco * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)
    a = (alpha * np.clip(noco, 0, 1))[..., None]  # transparent where the map is ~0
    return (bgr * (1 - a) + heat * a).astype(np.uint8)


def _draw(img: np.ndarray, gt_boxes, points, scores, boxes, scale: float, thickness: int) -> None:
    def p(x, y):
        return int(round(x * scale)), int(round(y * scale))

    for x1, y1, x2, y2 in gt_boxes:
        cv2.rectangle(img, p(x1, y1), p(x2, y2), GT_COLOR, thickness)
    if boxes is not None:
        for x1, y1, x2, y2 in boxes:
            cv2.rectangle(img, p(x1, y1), p(x2, y2), DET_COLOR, thickness)
    for (x, y), s in zip(points, scores):
        cv2.circle(img, p(x, y), max(2, int(2 * scale)), DET_COLOR, thickness)
        cv2.putText(img, f"{s:.2f}" if s >= 0.01 else f"{s:.1e}", p(x + 3, y - 3),
                    cv2.FONT_HERSHEY_SIMPLEX,
                    0.4 if scale < 2 else 0.5, DET_COLOR, 1, cv2.LINE_AA)


def draw_sirst_picture(bgr: np.ndarray, gt_boxes: np.ndarray, noco: Optional[np.ndarray] = None,
                       points: Optional[np.ndarray] = None,
                       scores: Optional[Sequence[float]] = None,
                       boxes: Optional[np.ndarray] = None, max_side: int = 1024,
                       crops: str = "gt") -> np.ndarray:
    """Picture of one image (uint8 BGR, H' x W' x 3).

    Args:
        bgr: uint8 (H, W, 3) image.
        gt_boxes: (n, 4) XYXY_ABS GT boxes (green).
        noco: optional float (H, W) NoCo map in [0, 1), blended in as a heat map.
        points, scores: optional (m, 2) detection centres (x, y) and their scores (red).
        boxes: optional (m, 4) XYXY_ABS detection boxes (red).
        max_side: the whole-image panel is shrunk to at most this many pixels.
        crops: magnified crops around every GT target ("gt") or every detection
            ("detections").
    """
    if crops not in ("gt", "detections"):
        raise ValueError(f"crops must be 'gt' or 'detections', got {crops!r}")
    gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    points = (np.zeros((0, 2)) if points is None
              else np.asarray(points, dtype=np.float64).reshape(-1, 2))
    scores = [] if scores is None else list(scores)
    base = _overlay_noco(bgr, noco)
    h, w = base.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    full = cv2.resize(base, (int(round(w * scale)), int(round(h * scale))),
                      interpolation=cv2.INTER_AREA)
    _draw(full, gt_boxes, points, scores, boxes, scale, 1)
    centres = ((gt_boxes[:, :2] + gt_boxes[:, 2:]) / 2) if crops == "gt" else points
    panels, windows = [], []
    for cx, cy in centres.astype(int):
        ox, oy = max(0, min(w - CROP, cx - CROP // 2)), max(0, min(h - CROP, cy - CROP // 2))
        if crops == "detections" and any(abs(ox - a) < CROP // 2 and abs(oy - b) < CROP // 2
                                          for a, b in windows):
            continue  # a detection already shown in an earlier crop
        windows.append((ox, oy))
        crop = base[oy:oy + CROP, ox:ox + CROP]
        crop = cv2.resize(crop, (crop.shape[1] * ZOOM, crop.shape[0] * ZOOM),
                          interpolation=cv2.INTER_NEAREST)
        shifted = gt_boxes - [ox, oy, ox, oy]
        sel = [i for i, (x, y) in enumerate(points) if ox <= x < ox + CROP and oy <= y < oy + CROP]
        _draw(crop, shifted, points[sel] - [ox, oy], [scores[i] for i in sel],
              None if boxes is None else np.asarray(boxes)[sel] - [ox, oy, ox, oy], ZOOM, 1)
        panels.append(crop)
    if not panels:
        return full
    strip = np.concatenate([np.pad(c, ((0, CROP * ZOOM - c.shape[0]), (0, 4), (0, 0)))
                            for c in panels], axis=1)
    width = max(full.shape[1], strip.shape[1])
    pad = lambda a: np.pad(a, ((0, 4), (0, width - a.shape[1]), (0, 0)))  # noqa: E731
    return np.concatenate([pad(full), pad(strip)], axis=0)


def render_record(record: Dict, detections: Optional[Detections] = None,
                  top_k: int = 10) -> np.ndarray:
    """Picture of one dataset record (GT, NoCo map) with its ``top_k`` best detections."""
    boxes = record_boxes(record)
    noco = noco_map(read_gray(record["file_name"]), boxes) if len(boxes) else None
    points = scores = det_boxes = None
    if detections is not None:
        points, scores = detections.centres()[:top_k], detections.scores[:top_k]
        det_boxes = None if detections.boxes is None else detections.boxes[:top_k]
    return draw_sirst_picture(read_image_bgr(record["file_name"]), boxes, noco, points, scores,
                              det_boxes)
