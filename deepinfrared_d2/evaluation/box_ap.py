"""COCO box AP (pycocotools, pure-Python COCOeval) on the evaluation GT boxes."""
from __future__ import annotations

import contextlib
import io
from collections import OrderedDict
from typing import Dict, Sequence

import numpy as np

from .ground_truth import NoCoGroundTruth

COCO_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def coco_box_ap(boxes: Sequence[np.ndarray], scores: Sequence[np.ndarray],
                gt: NoCoGroundTruth) -> Dict[str, float]:
    """COCO bbox AP of per-image detections, as fractions in [0, 1] (not percent).

    Args:
        boxes: one float (m_i, 4) XYXY_ABS array per image of ``gt``, dataset order.
        scores: one (m_i,) array per image.
    Returns:
        ``AP`` (IoU .50:.95), ``AP50``, ``AP75``, ``APs``, ``APm``, ``APl``; -1 where COCO has no
        GT of that size; 0 for every key when there is no detection.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images = [{"id": i, "width": int(w), "height": int(h)} for i, (h, w) in enumerate(gt.shapes)]
    anns = []
    for i in range(len(gt)):
        for x1, y1, x2, y2 in gt.image_boxes(i).tolist():
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": 1, "iscrowd": 0,
                         "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1)})
    dets = []
    for i, (b, s) in enumerate(zip(boxes, scores)):
        b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
        for (x1, y1, x2, y2), sc in zip(b.tolist(), np.asarray(s, dtype=np.float64).tolist()):
            dets.append({"image_id": i, "category_id": 1, "bbox": [x1, y1, x2 - x1, y2 - y1],
                         "score": sc})
    if not dets or not anns:
        return OrderedDict((k, 0.0 if not dets else -1.0) for k in COCO_KEYS)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = {"images": images, "annotations": anns,
                           "categories": [{"id": 1, "name": "Target"}]}
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(dets)
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return OrderedDict((k, float(v)) for k, v in zip(COCO_KEYS, ev.stats[:6]))
