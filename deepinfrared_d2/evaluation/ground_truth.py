"""Evaluation ground truth of a dataset: GT boxes and sparse NoCo maps, cached (spec 2.3).

The evaluation NoCo map of an image is built from the OpenCV grey decode of the original PNG
and the dataset's boxes (annotation order, unclipped) at original resolution. Maps are zero
outside the target windows, so they are stored sparsely (flat pixel index -> value), which
makes a whole split a few kilobytes. They are cached in memory and on disk
(``$DEEPIR_CACHE_DIR``, default ``~/.cache/deepinfrared_d2``), keyed by a fingerprint of every
image file (path, size, mtime) and every box: editing an image or an annotation invalidates it.
"""
from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
from detectron2.structures import BoxMode
from tqdm import tqdm

from sirst.image_io import DatasetFileError, read_gray
from sirst.noco_map import noco_map

logger = logging.getLogger(__name__)

CACHE_VERSION = "noco-gt-v1"  # bump when the map or box semantics change
_MEMORY_CACHE: Dict[str, "NoCoGroundTruth"] = {}


@dataclass
class NoCoGroundTruth:
    """GT boxes and sparse NoCo maps of a dataset, in dataset order.

    Attributes:
        image_ids: N image ids.
        shapes: int64 (N, 2) original (height, width) in pixels.
        box_offsets: int64 (N + 1,); image i's boxes are ``boxes[box_offsets[i]:box_offsets[i+1]]``.
        boxes: float32 (B, 4) XYXY_ABS GT boxes, annotation order within each image.
        map_keys: int64 (K,) sorted keys ``pixel_offsets[i] + row * width + col`` of the
            non-zero NoCo pixels of all images.
        map_values: float64 (K,) the NoCo values at those keys, in [0, 1).
    """

    image_ids: List[str]
    shapes: np.ndarray
    box_offsets: np.ndarray
    boxes: np.ndarray
    map_keys: np.ndarray
    map_values: np.ndarray

    def __post_init__(self):
        self.index = {image_id: i for i, image_id in enumerate(self.image_ids)}
        sizes = self.shapes[:, 0] * self.shapes[:, 1]
        self.pixel_offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)

    def __len__(self) -> int:
        return len(self.image_ids)

    @property
    def num_gts(self) -> int:
        return int(self.boxes.shape[0])

    def image_boxes(self, i: int) -> np.ndarray:
        """float32 (n, 4) GT boxes of image ``i``."""
        return self.boxes[self.box_offsets[i]:self.box_offsets[i + 1]]

    def lookup(self, image_index: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """NoCo values at integer pixels (row, col) of images ``image_index`` (float64)."""
        keys = (self.pixel_offsets[image_index]
                + rows.astype(np.int64) * self.shapes[image_index, 1] + cols)
        if len(self.map_keys) == 0:
            return np.zeros(len(keys), dtype=np.float64)
        pos = np.minimum(np.searchsorted(self.map_keys, keys), len(self.map_keys) - 1)
        return np.where(self.map_keys[pos] == keys, self.map_values[pos], 0.0)

    def dense_map(self, i: int) -> np.ndarray:
        """The full float64 (H, W) NoCo map of image ``i`` (for visualisation)."""
        h, w = (int(v) for v in self.shapes[i])
        start = self.pixel_offsets[i]
        lo, hi = np.searchsorted(self.map_keys, [start, start + h * w])
        out = np.zeros(h * w, dtype=np.float64)
        out[self.map_keys[lo:hi] - self.pixel_offsets[i]] = self.map_values[lo:hi]
        return out.reshape(h, w)

    def to_npz(self, path: str) -> None:
        tmp = path + ".tmp.npz"
        np.savez(tmp, image_ids=np.array(self.image_ids), shapes=self.shapes,
                 box_offsets=self.box_offsets, boxes=self.boxes, map_keys=self.map_keys,
                 map_values=self.map_values)
        os.replace(tmp, path)

    @classmethod
    def from_npz(cls, path: str) -> "NoCoGroundTruth":
        with np.load(path) as z:
            return cls([str(s) for s in z["image_ids"]], z["shapes"], z["box_offsets"], z["boxes"],
                       z["map_keys"], z["map_values"])


def record_boxes(record: Dict) -> np.ndarray:
    """float32 (n, 4) XYXY_ABS boxes of a Detectron2 dataset record, in annotation order."""
    boxes = [BoxMode.convert(a["bbox"], a["bbox_mode"], BoxMode.XYXY_ABS)
             for a in record.get("annotations", [])]
    return np.asarray(boxes, dtype=np.float32).reshape(-1, 4)


def fingerprint(records: Sequence[Dict]) -> str:
    """Hash of every image file's (path, size, mtime) and every box of the records."""
    h = hashlib.sha1(CACHE_VERSION.encode())
    for r in records:
        st = os.stat(r["file_name"])
        h.update(f"{r['image_id']}|{os.path.abspath(r['file_name'])}|{st.st_size}|{st.st_mtime_ns}|"
                 .encode())
        h.update(record_boxes(r).tobytes())
    return h.hexdigest()


def build_noco_ground_truth(records: Sequence[Dict], progress: bool = True) -> NoCoGroundTruth:
    """Decode every image with boxes (grey) and build its NoCo map (spec 2.3)."""

    def maps():
        for r in tqdm(records, desc="NoCo ground truth", disable=not progress, leave=False):
            h, w = int(r["height"]), int(r["width"])
            boxes = record_boxes(r)
            if not len(boxes):
                yield (h, w)  # background image: all-zero map
                continue
            gray = read_gray(r["file_name"])
            if gray.shape != (h, w):
                raise DatasetFileError(r["file_name"], f"image is {gray.shape[1]}x{gray.shape[0]} "
                                                       f"but its record says {w}x{h}")
            yield noco_map(gray, boxes)

    return ground_truth_from_maps([r["image_id"] for r in records], maps(),
                                  [record_boxes(r) for r in records])


def ground_truth_from_maps(image_ids: Sequence[str],
                           maps: Iterable[Union[np.ndarray, Tuple[int, int]]],
                           boxes: Sequence[np.ndarray]) -> NoCoGroundTruth:
    """Sparse GT from dense float64 (H, W) maps (or an (H, W) shape for an all-zero map)."""
    shapes, keys, values = [], [], []
    pixel_offset = 0
    for m in maps:
        if isinstance(m, tuple):
            shape = m
        else:
            shape = m.shape
            flat = np.asarray(m, dtype=np.float64).ravel()
            nz = np.flatnonzero(flat)
            keys.append(nz + pixel_offset)
            values.append(flat[nz])
        shapes.append(shape)
        pixel_offset += shape[0] * shape[1]
    boxes = [np.asarray(b, dtype=np.float32).reshape(-1, 4) for b in boxes]
    if not (len(image_ids) == len(shapes) == len(boxes)):
        raise ValueError(f"{len(image_ids)} image ids, {len(shapes)} maps, {len(boxes)} box arrays")
    return NoCoGroundTruth(
        image_ids=list(image_ids),
        shapes=np.asarray(shapes, dtype=np.int64).reshape(-1, 2),
        box_offsets=np.concatenate([[0], np.cumsum([len(b) for b in boxes])]).astype(np.int64),
        boxes=np.concatenate(boxes) if boxes else np.zeros((0, 4), np.float32),
        map_keys=np.concatenate(keys).astype(np.int64) if keys else np.zeros(0, np.int64),
        map_values=np.concatenate(values) if values else np.zeros(0, np.float64),
    )


def cache_dir() -> str:
    """Folder of the on-disk GT cache: ``$DEEPIR_CACHE_DIR`` or ``~/.cache/deepinfrared_d2``."""
    return os.path.expanduser(os.environ.get("DEEPIR_CACHE_DIR", "~/.cache/deepinfrared_d2"))


def load_noco_ground_truth(records: Sequence[Dict], name: str = "dataset",
                           use_cache: bool = True, progress: bool = True) -> NoCoGroundTruth:
    """GT of ``records``, from the memory or disk cache when the files are unchanged."""
    if not use_cache:
        return build_noco_ground_truth(records, progress)
    key = fingerprint(records)
    if key in _MEMORY_CACHE:
        return _MEMORY_CACHE[key]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    path = os.path.join(cache_dir(), f"{safe}-{key[:16]}.npz")
    gt: Optional[NoCoGroundTruth] = None
    if os.path.isfile(path):
        try:
            gt = NoCoGroundTruth.from_npz(path)
        except (OSError, ValueError, KeyError) as e:  # a damaged cache is rebuilt, not trusted
            logger.warning("ignoring unreadable NoCo cache %s (%s)", path, e)
    if gt is None:
        gt = build_noco_ground_truth(records, progress)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            gt.to_npz(path)
        except OSError as e:
            logger.warning("could not write the NoCo cache %s (%s)", path, e)
    _MEMORY_CACHE[key] = gt
    return gt
