"""Image reading and dataset resolution for the runner (no torch / detectron2 import for
SIRST-V2 splits)."""
from __future__ import annotations

import os
from typing import List, Tuple

import cv2
import numpy as np


class ImageFileError(ValueError):
    """An image or split file is missing or malformed; the message names the file.

    Same signature as ``deepinfrared_d2.data.DatasetFileError`` (kept separate so that
    importing ``baselines`` does not import detectron2).
    """

    def __init__(self, path: str, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def read_gray(path: str) -> np.ndarray:
    """uint8 (H, W) grey image exactly as ``deepinfrared_d2.data.read_gray`` (OpenCV
    IMREAD_GRAYSCALE: luma of colour/palette PNGs, alpha dropped)."""
    if not os.path.isfile(path):
        raise ImageFileError(path, "image file not found")
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None or img.size == 0:
        raise ImageFileError(path, "cannot be decoded as an image (corrupt or not an image)")
    return img


def sirst_v2_root() -> str:
    """``$DETECTRON2_DATASETS/sirst_v2`` (default ``datasets/sirst_v2``), as the catalog."""
    return os.path.join(os.path.expanduser(os.environ.get("DETECTRON2_DATASETS", "datasets")),
                        "sirst_v2")


def dataset_images(dataset: str) -> List[Tuple[str, str]]:
    """(image_id, image path) of every image of a dataset, in split order.

    ``sirst_v2_<split>`` is resolved from the split file directly; any other name is looked
    up in Detectron2's DatasetCatalog (this imports ``deepinfrared_d2``).
    """
    prefix = "sirst_v2_"
    if dataset.startswith(prefix):
        root = sirst_v2_root()
        split_file = os.path.join(root, "splits", dataset[len(prefix):] + ".txt")
        if not os.path.isfile(split_file):
            raise ImageFileError(split_file, f"split file of dataset {dataset!r} not found "
                                 f"(SIRST-V2 root {root!r})")
        with open(split_file) as f:
            ids = [line.strip() for line in f if line.strip()]
        if not ids:
            raise ImageFileError(split_file, "split file lists no image id")
        return [(i, os.path.join(root, "mixed", f"{i}.png")) for i in ids]
    import deepinfrared_d2  # noqa: F401  (registers datasets)
    from detectron2.data import DatasetCatalog
    return [(str(r["image_id"]), r["file_name"]) for r in DatasetCatalog.get(dataset)]
