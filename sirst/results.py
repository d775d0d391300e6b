"""Detection results files: records from detections, one atomic writer, one validating loader.

A results file is a JSON list of records, one per detection::

    {"image_id": "<file stem>", "bbox": [x, y, w, h], "score": s}    # box (XYWH_ABS, pixels)
    {"image_id": "<file stem>", "point": [x, y], "score": s}         # point (x = column)

A record may carry both: the point is then the centroid used by mNoCoAP and Pd/Fa (classical
methods report their peak pixel), the box is used for box AP. Files are written in a canonical
order (dataset order of the images, then descending score, ties in detection order), so the
same detections give the same bytes whichever worker computed them first.
"""
from __future__ import annotations

import json
import math
import os
from typing import Any, Container, Dict, Iterable, List, NamedTuple, Optional, Sequence

import numpy as np

__all__ = [
    "Detections",
    "ResultsFileError",
    "check_image_ids",
    "check_record",
    "detections_to_records",
    "group_record_indices",
    "group_records",
    "load_results_file",
    "sort_records",
    "unknown_image_id_error",
    "write_json_atomic",
    "write_results_file",
]


class ResultsFileError(ValueError):
    """A results file or record is malformed; the message names the file and the record."""


class Detections(NamedTuple):
    """One image's detections, best score first.

    scores: float64 (m,); boxes: float64 (m, 4) XYXY_ABS pixels or None; points: float64 (m, 2)
    (x, y) pixels or None. With both, the point is the detection's centroid.
    """

    scores: np.ndarray
    boxes: Optional[np.ndarray]
    points: Optional[np.ndarray]

    def centres(self) -> np.ndarray:
        """(m, 2) points, or the box centres when there are no points."""
        if self.points is not None:
            return self.points
        return (self.boxes[:, :2] + self.boxes[:, 2:]) / 2


_FLOAT32_MAX = float(np.finfo(np.float32).max)  # detections are evaluated in float32


def _number(v) -> bool:
    """A finite int/float that float32 holds (1e39 would become inf)."""
    return (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            and abs(v) <= _FLOAT32_MAX)


def check_record(rec, where: str) -> None:
    """Raise ``ResultsFileError`` unless ``rec`` is a well-formed detection record."""
    if not isinstance(rec, dict):
        raise ResultsFileError(f"{where}: expected an object, got {type(rec).__name__}")
    if "image_id" not in rec or not isinstance(rec["image_id"], (str, int)):
        raise ResultsFileError(f"{where}: missing or non-string 'image_id'")
    if "score" not in rec:
        raise ResultsFileError(f"{where}: missing 'score'")
    if not _number(rec["score"]):
        raise ResultsFileError(
            f"{where}: score {rec['score']!r} is not a finite number in float32's range")
    if "bbox" not in rec and "point" not in rec:
        raise ResultsFileError(f"{where}: needs 'bbox' [x, y, w, h] or 'point' [x, y]")
    if "bbox" in rec:
        b = rec["bbox"]
        if not (isinstance(b, list) and len(b) == 4 and all(_number(v) for v in b)):
            raise ResultsFileError(
                f"{where}: 'bbox' must be 4 finite (float32) numbers [x, y, w, h], got {b!r}")
        if b[2] < 0 or b[3] < 0:
            raise ResultsFileError(f"{where}: 'bbox' {b!r} has a negative width or height")
    if "point" in rec:
        p = rec["point"]
        if not (isinstance(p, list) and len(p) == 2 and all(_number(v) for v in p)):
            raise ResultsFileError(
                f"{where}: 'point' must be 2 finite (float32) numbers [x, y], got {p!r}")


def detections_to_records(image_id: str, scores: np.ndarray,
                          boxes: Optional[np.ndarray] = None,
                          points: Optional[np.ndarray] = None) -> List[Dict[str, Any]]:
    """Records of one image from scores (m,), XYXY_ABS boxes (m, 4) and/or points (m, 2)."""
    if boxes is None and points is None:
        raise ValueError(f"image {image_id!r}: detections need boxes or points")
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    cols = {}
    if boxes is not None:
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        cols["bbox"] = np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1).tolist()
    if points is not None:
        cols["point"] = np.asarray(points, dtype=np.float64).reshape(-1, 2).tolist()
    records = []
    for k, s in enumerate(scores.tolist()):
        rec: Dict[str, Any] = {"image_id": image_id}
        if "point" in cols:
            rec["point"] = cols["point"][k]
        rec["score"] = s
        if "bbox" in cols:
            rec["bbox"] = cols["bbox"][k]
        records.append(rec)
    return records


def group_record_indices(records: Sequence[Dict]) -> Dict[str, List[int]]:
    """Indices of each image's records (images in first-appearance order), best score first;
    ties keep their order."""
    grouped: Dict[str, List[int]] = {}
    for i, r in enumerate(records):
        grouped.setdefault(str(r["image_id"]), []).append(i)
    for idx in grouped.values():
        idx.sort(key=lambda i: -records[i]["score"])  # stable: ties keep their order
    return grouped


def group_records(records: Sequence[Dict]) -> Dict[str, Detections]:
    """Records grouped per image (first-appearance order), each image best score first
    (the order of ``group_record_indices``).

    The records must be checked (``check_record``) and of one kind: all carry a box, or all a
    point (or all both).
    """
    out = {}
    for image_id, idx in group_record_indices(records).items():
        recs = [records[i] for i in idx]
        boxes = points = None
        if "bbox" in recs[0]:
            boxes = np.array([r["bbox"] for r in recs], dtype=np.float64).reshape(-1, 4)
            boxes[:, 2:] += boxes[:, :2]
        if "point" in recs[0]:
            points = np.array([r["point"] for r in recs], dtype=np.float64).reshape(-1, 2)
        out[image_id] = Detections(np.array([r["score"] for r in recs], np.float64), boxes,
                                   points)
    return out


def sort_records(records: Iterable[Dict], image_ids: Optional[Sequence[str]] = None
                 ) -> List[Dict]:
    """Canonical order: images in ``image_ids`` order (default: first appearance), then
    descending score; ties keep their given order."""
    records = list(records)
    rank: Dict[str, int] = {str(i): n for n, i in enumerate(image_ids or ())}
    for r in records:
        rank.setdefault(str(r["image_id"]), len(rank))
    return sorted(records, key=lambda r: (rank[str(r["image_id"])], -r["score"]))


def write_json_atomic(path: str, obj: Any, indent: Optional[int] = None) -> None:
    """Write JSON to ``path`` through a temporary file renamed into place (never torn)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=indent)
    os.replace(tmp, path)


def write_results_file(path: str, records: Iterable[Dict],
                       image_ids: Optional[Sequence[str]] = None) -> None:
    """Write records atomically in canonical order (see ``sort_records``)."""
    write_json_atomic(path, sort_records(records, image_ids))


def unknown_image_id_error(where: str, image_id: str, dataset: str, unknown: Iterable[str]
                           ) -> ResultsFileError:
    """The error for records whose image ids are not in ``dataset``; ``where`` names the first
    such record (e.g. "dets.json: record 3")."""
    unknown = sorted(set(unknown))
    return ResultsFileError(f"{where}: image id {image_id!r} is not in dataset {dataset!r} "
                            f"({len(unknown)} unknown image id(s), e.g. {unknown[:3]})")


def check_image_ids(records: Sequence[Dict], known: Container[str], dataset: str,
                    source: str = "results") -> None:
    """Raise ``ResultsFileError`` naming the first record whose image id is not ``known``."""
    bad = [i for i, r in enumerate(records) if str(r["image_id"]) not in known]
    if bad:
        raise unknown_image_id_error(f"{source}: record {bad[0]}", str(records[bad[0]]["image_id"]),
                                     dataset, (str(records[i]["image_id"]) for i in bad))


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
