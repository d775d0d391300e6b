"""The detection results file: COCO-style JSON records, read and written with strict checks.

A results file is a JSON list of records, one per detection::

    {"image_id": "<file stem>", "bbox": [x, y, w, h], "score": s}    # box (XYWH_ABS, pixels)
    {"image_id": "<file stem>", "point": [x, y], "score": s}         # point (x = column)

A record may carry both: the point is then the centroid used by mNoCoAP and Pd/Fa (classical
methods report their peak pixel), the box is used for box AP.
"""
from __future__ import annotations

import json
import math
import os
from typing import Dict, Iterable, List, Optional

import numpy as np


class ResultsFileError(ValueError):
    """A results file or record is malformed; the message names the file and the record."""


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_record(rec, where: str) -> None:
    """Raise ``ResultsFileError`` unless ``rec`` is a well-formed detection record."""
    if not isinstance(rec, dict):
        raise ResultsFileError(f"{where}: expected an object, got {type(rec).__name__}")
    if "image_id" not in rec or not isinstance(rec["image_id"], (str, int)):
        raise ResultsFileError(f"{where}: missing or non-string 'image_id'")
    if "score" not in rec:
        raise ResultsFileError(f"{where}: missing 'score'")
    if not _number(rec["score"]):
        raise ResultsFileError(f"{where}: score {rec['score']!r} is not a finite number")
    if "bbox" not in rec and "point" not in rec:
        raise ResultsFileError(f"{where}: needs 'bbox' [x, y, w, h] or 'point' [x, y]")
    if "bbox" in rec:
        b = rec["bbox"]
        if not (isinstance(b, list) and len(b) == 4 and all(_number(v) for v in b)):
            raise ResultsFileError(f"{where}: 'bbox' must be 4 finite numbers [x, y, w, h], got {b!r}")
        if b[2] < 0 or b[3] < 0:
            raise ResultsFileError(f"{where}: 'bbox' {b!r} has a negative width or height")
    if "point" in rec:
        p = rec["point"]
        if not (isinstance(p, list) and len(p) == 2 and all(_number(v) for v in p)):
            raise ResultsFileError(f"{where}: 'point' must be 2 finite numbers [x, y], got {p!r}")


def load_results_file(path: str) -> List[Dict]:
    """Read and check a results file; raises ``ResultsFileError`` naming the file."""
    if not os.path.isfile(path):
        raise ResultsFileError(f"{path}: results file not found")
    try:
        with open(path) as f:
            records = json.load(f, parse_constant=lambda c: float(c))  # NaN -> caught below
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ResultsFileError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(records, list):
        raise ResultsFileError(f"{path}: expected a JSON list of detection records")
    for i, rec in enumerate(records):
        check_record(rec, f"{path}: record {i}")
    return records


def write_results_file(path: str, records: Iterable[Dict]) -> None:
    """Write records atomically (a temporary file renamed into place)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(list(records), f)
    os.replace(tmp, path)


def predictions_to_records(image_id: str, scores: np.ndarray, boxes: Optional[np.ndarray] = None,
                           points: Optional[np.ndarray] = None) -> List[Dict]:
    """Records of one image from XYXY_ABS boxes (m, 4) and/or points (m, 2) and scores (m,)."""
    recs = []
    for k, s in enumerate(np.asarray(scores, dtype=np.float64).tolist()):
        rec = {"image_id": image_id, "score": s}
        if boxes is not None:
            x1, y1, x2, y2 = np.asarray(boxes[k], dtype=np.float64).tolist()
            rec["bbox"] = [x1, y1, x2 - x1, y2 - y1]
        if points is not None:
            rec["point"] = np.asarray(points[k], dtype=np.float64).tolist()
        recs.append(rec)
    return recs
