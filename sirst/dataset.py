"""SIRST-V2 and mask-only IRSTD datasets as plain dataset dicts (no torch, no Detectron2).

Layout of SIRST-V2 under ``$DETECTRON2_DATASETS/sirst_v2`` (default ``datasets/sirst_v2``)::

    mixed/<id>.png                      images (L, RGB, RGBA and P PNGs)
    annotations/bboxes/<id>.xml         VOC boxes (background images: a placeholder object)
    annotations/masks/<id>_pixels0.png  binary masks
    splits/<split>.txt                  one image id per line

``deepinfrared_d2.data`` registers these loaders in Detectron2's ``DatasetCatalog``; the
classical baselines call them directly. Records are Detectron2 dataset dicts::

    {"file_name", "image_id" (file stem), "height", "width", "sem_seg_file_name",
     "annotations": [{"bbox": [x1, y1, x2, y2], "bbox_mode": XYXY_ABS, "category_id": 0}]}

Boxes follow OSCAR spec 1.2 (``int(float(v)) - 1``, half-open pixel rectangles). Images
without targets keep an empty ``annotations`` list: they are part of the benchmark.
"""
from __future__ import annotations

import os
from typing import Dict, List

import numpy as np

from .annotations import check_boxes, image_size, mask_component_boxes, parse_voc_xml
from .image_io import DatasetFileError, read_mask

__all__ = [
    "datasets_root",
    "sirst_v2_root",
    "SIRST_V2_PREFIX",
    "SIRST_V2_SPLITS",
    "XYXY_ABS",
    "load_split_ids",
    "load_sirst_v2",
    "load_dataset",
    "splits_on_disk",
    "load_irstd_mask_dataset",
]

SIRST_V2_DIRNAME = "sirst_v2"
SIRST_V2_PREFIX = "sirst_v2"
# Split files shipped with SIRST-V2 (open-sirst-v2 ``splits/``). Files found on disk are
# registered too; these names are registered even when the dataset is missing, so that asking
# for one gives a clear "dataset not found" error instead of "not registered".
SIRST_V2_SPLITS = (
    "trainval_full", "test_full", "train_full", "val_full", "trainvaltest_full",
    "trainval_v1", "test_v1", "train_v1", "val_v1", "trainvaltest_v1",
    "trainval_v1fullv2target", "test_v1fullv2target", "val_v1fullv2target",
    "trainvaltest_v1fullv2target", "trainvaltest_v2target", "v2background",
    "mini_trainval", "mini_test", "mini-v2background",
)
IMAGE_DIR = "mixed"
BOX_DIR = os.path.join("annotations", "bboxes")
MASK_DIR = os.path.join("annotations", "masks")
SPLIT_DIR = "splits"
MASK_SUFFIX = "_pixels0.png"
XYXY_ABS = 0  # detectron2.structures.BoxMode.XYXY_ABS (an IntEnum equal to 0)


def datasets_root() -> str:
    """Detectron2's dataset root, absolute: ``$DETECTRON2_DATASETS``, default ``./datasets``."""
    return os.path.abspath(os.path.expanduser(os.environ.get("DETECTRON2_DATASETS", "datasets")))


def sirst_v2_root() -> str:
    """The SIRST-V2 folder: ``<datasets_root()>/sirst_v2``."""
    return os.path.join(datasets_root(), SIRST_V2_DIRNAME)


def load_split_ids(split_file: str) -> List[str]:
    """Image ids of a split file (one per line; blank lines ignored; duplicates refused)."""
    if not os.path.isfile(split_file):
        raise DatasetFileError(split_file, "split file not found")
    with open(split_file) as f:
        ids = [line.strip() for line in f if line.strip()]
    if not ids:
        raise DatasetFileError(split_file, "split file lists no image id")
    seen = set()
    for i in ids:
        if i in seen:
            raise DatasetFileError(split_file, f"image id {i!r} is listed twice")
        seen.add(i)
    return ids


def _check_root(root: str, name: str) -> None:
    if not os.path.isdir(root):
        raise DatasetFileError(
            root, f"dataset root of {name!r} not found. Put SIRST-V2 at $DETECTRON2_DATASETS/"
            f"{SIRST_V2_DIRNAME} (DETECTRON2_DATASETS={datasets_root()!r}), e.g. "
            f"`git clone https://github.com/YimianDai/open-sirst-v2 {sirst_v2_root()}`")


def _record(image_id: str, file_name: str, width: int, height: int, boxes: np.ndarray,
            mask_file: str) -> Dict:
    return {
        "file_name": file_name,
        "image_id": image_id,
        "height": int(height),
        "width": int(width),
        "sem_seg_file_name": mask_file,
        "annotations": [
            {"bbox": [float(v) for v in b], "bbox_mode": XYXY_ABS, "category_id": 0}
            for b in boxes
        ],
    }


def _checked_size(image_file: str, mask_file: str, xml_size, xml_file: str, size=None):
    width, height = size or image_size(image_file)
    if xml_size is not None and tuple(xml_size) != (width, height):
        raise DatasetFileError(xml_file, f"<size> says {xml_size[0]}x{xml_size[1]} but the image "
                                         f"{image_file} is {width}x{height}")
    mw, mh = image_size(mask_file)
    if (mw, mh) != (width, height):
        raise DatasetFileError(mask_file, f"mask is {mw}x{mh} but its image {image_file} is "
                                          f"{width}x{height}")
    return width, height


def load_sirst_v2(root: str, split: str, case_insensitive_names: bool = False) -> List[Dict]:
    """Dataset dicts of one SIRST-V2 split (every listed image, backgrounds included).

    Reads the split file, every XML and the image and mask headers (not the pixels), and
    raises :class:`DatasetFileError` naming the file for anything missing or malformed (an
    image listed by the split but absent is named before its annotation). An object whose
    class is not ``Target`` is an error unless ``case_insensitive_names`` (then ``target``
    and the like are accepted).
    """
    _check_root(root, f"{SIRST_V2_PREFIX}_{split}")
    split_file = os.path.join(root, SPLIT_DIR, f"{split}.txt")
    if not os.path.isfile(split_file):
        known = sorted(splits_on_disk(root))
        raise DatasetFileError(split_file, f"unknown split {split!r}; available: {known}")
    records = []
    for image_id in load_split_ids(split_file):
        image_file = os.path.join(root, IMAGE_DIR, f"{image_id}.png")
        xml_file = os.path.join(root, BOX_DIR, f"{image_id}.xml")
        mask_file = os.path.join(root, MASK_DIR, f"{image_id}{MASK_SUFFIX}")
        size = image_size(image_file)
        boxes, xml_size = parse_voc_xml(xml_file, case_insensitive_names)
        width, height = _checked_size(image_file, mask_file, xml_size, xml_file, size)
        check_boxes(boxes, width, height, xml_file)
        records.append(_record(image_id, image_file, width, height, boxes, mask_file))
    return records


def splits_on_disk(root: str) -> List[str]:
    d = os.path.join(root, SPLIT_DIR)
    if not os.path.isdir(d):
        return []
    return sorted(f[:-4] for f in os.listdir(d) if f.endswith(".txt"))


def load_irstd_mask_dataset(root: str, split_file: str, image_dir: str = "images",
                            mask_dir: str = "masks", image_ext: str = ".png",
                            mask_ext: str = ".png", mask_suffix: str = "") -> List[Dict]:
    """Dataset dicts of a mask-only IRSTD dataset (BasicIRSTD layout).

    Boxes are the 8-connected components of each mask (OSCAR spec 2.4, "seg2noco"): no -1
    shift, component order = raster order of the first pixel. Reads every mask.
    """
    _check_root(root, os.path.basename(os.path.normpath(root)))
    split_path = split_file if os.path.isabs(split_file) else os.path.join(root, split_file)
    records = []
    for image_id in load_split_ids(split_path):
        image_file = os.path.join(root, image_dir, image_id + image_ext)
        mask_file = os.path.join(root, mask_dir, image_id + mask_suffix + mask_ext)
        width, height = _checked_size(image_file, mask_file, None, "")
        boxes = mask_component_boxes(read_mask(mask_file))
        records.append(_record(image_id, image_file, width, height, boxes, mask_file))
    return records


def load_dataset(name: str) -> List[Dict]:
    """Dataset dicts of a dataset by name, in dataset order.

    ``sirst_v2_<split>`` is read here (no Detectron2 import); any other name is looked up in
    Detectron2's ``DatasetCatalog`` (importing ``deepinfrared_d2``, which registers the
    project's datasets). Raises ``KeyError`` for an unknown name.
    """
    prefix = SIRST_V2_PREFIX + "_"
    if name.startswith(prefix):
        return load_sirst_v2(sirst_v2_root(), name[len(prefix):])
    from detectron2.data import DatasetCatalog, MetadataCatalog

    import deepinfrared_d2  # noqa: F401  (registers datasets)

    if name not in DatasetCatalog.list():
        sirst = sorted(n for n in DatasetCatalog.list()
                       if MetadataCatalog.get(n).get("evaluator_type") == "noco")
        raise KeyError(f"unknown dataset {name!r}; registered SIRST datasets: {sirst}")
    return DatasetCatalog.get(name)
