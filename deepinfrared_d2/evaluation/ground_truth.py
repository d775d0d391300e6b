"""Evaluation ground truth of a dataset: GT boxes and sparse NoCo maps, cached (spec 2.3).

The evaluation NoCo map of an image is built from the OpenCV grey decode of the original PNG
and the dataset's boxes (annotation order, unclipped) at original resolution. Maps are zero
outside the target windows, so they are stored sparsely (flat pixel index -> value), which
makes a whole split a few kilobytes. They are cached in memory and on disk
(``$DEEPIR_CACHE_DIR``, default ``~/.cache/deepinfrared_d2``), keyed by a fingerprint of every
image and mask file (path, size, mtime) and every box: editing a file invalidates it.

When the records name masks (``sem_seg_file_name``), the build also cross-checks them with the
boxes: an image whose mask has target pixels but no box, or boxes but an empty mask, is an
error naming the image (``$DEEPIR_MASK_BOX_CHECK=warn`` turns it into a warning). Every image
of SIRST-V2 passes.
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

from sirst.image_io import DatasetFileError, read_gray, read_mask
from sirst.noco_map import noco_map

logger = logging.getLogger(__name__)

CACHE_VERSION = "noco-gt-v2"  # bump when the map or box semantics change
MASK_BOX_CHECK_ENV = "DEEPIR_MASK_BOX_CHECK"  # "error" (default) or "warn"
# mask_mismatch codes of NoCoGroundTruth (0: agree, or no mask)
MASK_WITHOUT_BOX, BOX_WITHOUT_MASK = 1, 2
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
        mask_mismatch: int8 (N,) 0, or ``MASK_WITHOUT_BOX`` / ``BOX_WITHOUT_MASK`` when the
            image's mask and boxes disagree (see ``check_mask_boxes``).
    """

    image_ids: List[str]
    shapes: np.ndarray
    box_offsets: np.ndarray
    boxes: np.ndarray
    map_keys: np.ndarray
    map_values: np.ndarray
    mask_mismatch: Optional[np.ndarray] = None

    def __post_init__(self):
        if self.mask_mismatch is None:
            self.mask_mismatch = np.zeros(len(self.image_ids), np.int8)
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
                 map_values=self.map_values, mask_mismatch=self.mask_mismatch)
        os.replace(tmp, path)

    @classmethod
    def from_npz(cls, path: str) -> "NoCoGroundTruth":
        with np.load(path) as z:
            return cls([str(s) for s in z["image_ids"]], z["shapes"], z["box_offsets"], z["boxes"],
                       z["map_keys"], z["map_values"], z["mask_mismatch"])


def record_boxes(record: Dict) -> np.ndarray:
    """float32 (n, 4) XYXY_ABS boxes of a Detectron2 dataset record, in annotation order."""
    boxes = [BoxMode.convert(a["bbox"], a["bbox_mode"], BoxMode.XYXY_ABS)
             for a in record.get("annotations", [])]
    return np.asarray(boxes, dtype=np.float32).reshape(-1, 4)


def fingerprint(records: Sequence[Dict]) -> str:
    """Hash of every image and mask file's (path, size, mtime) and every box of the records."""
    h = hashlib.sha1(CACHE_VERSION.encode())
    for r in records:
        h.update(f"{r['image_id']}|".encode())
        for path in (r["file_name"], r.get("sem_seg_file_name")):
            if path and os.path.exists(path):
                st = os.stat(path)
                h.update(f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}|".encode())
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

    gt = ground_truth_from_maps([r["image_id"] for r in records], maps(),
                                [record_boxes(r) for r in records])
    gt.mask_mismatch = mask_box_mismatch(records)
    return gt


def mask_box_mismatch(records: Sequence[Dict]) -> np.ndarray:
    """int8 (N,): per record, ``MASK_WITHOUT_BOX`` if its mask has target pixels but it has no
    box, ``BOX_WITHOUT_MASK`` if it has boxes but an empty mask, else 0 (also without a mask)."""
    out = np.zeros(len(records), np.int8)
    for k, r in enumerate(records):
        if r.get("sem_seg_file_name"):
            has_target = bool(read_mask(r["sem_seg_file_name"]).any())
            has_box = bool(r.get("annotations"))
            if has_target != has_box:
                out[k] = MASK_WITHOUT_BOX if has_target else BOX_WITHOUT_MASK
    return out


def check_mask_boxes(gt: NoCoGroundTruth, records: Sequence[Dict], policy: Optional[str] = None
                     ) -> None:
    """Raise (``policy="error"``) or log a warning (``"warn"``) for images whose mask and boxes
    disagree. ``policy=None`` reads ``$DEEPIR_MASK_BOX_CHECK`` (default "error")."""
    policy = policy or os.environ.get(MASK_BOX_CHECK_ENV) or "error"
    if policy not in ("error", "warn"):
        raise ValueError(f"{MASK_BOX_CHECK_ENV}={policy!r}: use 'error' or 'warn'")
    bad = np.flatnonzero(gt.mask_mismatch)
    if not len(bad):
        return
    k = int(bad[0])
    r = records[k]
    what = ("has target pixels but the annotation has no box"
            if gt.mask_mismatch[k] == MASK_WITHOUT_BOX else
            f"is empty but the annotation has {len(r['annotations'])} box(es)")
    others = f" ({len(bad) - 1} more image(s) disagree: {[gt.image_ids[i] for i in bad[1:6]]})" \
        if len(bad) > 1 else ""
    if policy == "warn":
        logger.warning("image %s: its mask %s %s%s", r["file_name"], r["sem_seg_file_name"], what,
                       others)
        return
    raise DatasetFileError(r["file_name"], f"its mask {r['sem_seg_file_name']} {what}{others}; "
                           f"fix the annotation or set {MASK_BOX_CHECK_ENV}=warn")


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
                           use_cache: bool = True, progress: bool = True,
                           mask_box_check: Optional[str] = None) -> NoCoGroundTruth:
    """GT of ``records``, from the memory or disk cache when the files are unchanged.

    ``mask_box_check``: "error" or "warn" for images whose mask and boxes disagree (None:
    ``$DEEPIR_MASK_BOX_CHECK``, default "error"); see ``check_mask_boxes``.
    """
    gt = _load_noco_ground_truth(records, name, use_cache, progress)
    check_mask_boxes(gt, records, mask_box_check)
    return gt


def _load_noco_ground_truth(records: Sequence[Dict], name: str, use_cache: bool,
                            progress: bool) -> NoCoGroundTruth:
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
