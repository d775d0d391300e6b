"""``NoCoDatasetMapper``: dataset dict -> model input with the NoCo training target.

Training (OSCAR spec 8.1, 2.3, 11): OpenCV colour decode -> keep-ratio resize (or native
resolution) -> optional target-centred crop -> horizontal flip -> optional gamma correction ->
NoCo map of the transformed uint8 image (channel mean) and boxes (annotation order). Testing:
resize (or native resolution), nothing else. Works for any catalog dataset whose records have
``file_name`` and XYXY/XYWH ``annotations``.

Output dict: the input record plus ``image`` ((3, H, W) uint8 tensor in ``INPUT.FORMAT``),
``height``/``width`` (original size, used to rescale detections), and for training
``instances`` (``gt_boxes`` XYXY_ABS in input pixels, ``gt_classes``) and ``noco_map``
((H, W) float32 tensor); the model pads image and map together.
"""
from __future__ import annotations

import copy
import logging
from typing import Dict, List, Union

import numpy as np
import torch
from detectron2.config import CfgNode, configurable
from detectron2.config import CfgNode as CN
from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T
from detectron2.structures import Boxes, BoxMode, Instances

from sirst.image_io import read_image_bgr
from sirst.noco_map import noco_map

from .transforms import KeepRatioResize, RandomGammaCorrection, TargetCentredCrop

__all__ = ["NoCoDatasetMapper", "add_noco_mapper_config", "build_noco_augmentations"]

RESIZE_MODES = ("keep_ratio", "none")


def add_noco_mapper_config(cfg: CfgNode) -> None:
    """Add the ``INPUT`` keys read by ``NoCoDatasetMapper``."""
    i = cfg.INPUT
    i.RESIZE_MODE_TRAIN = "keep_ratio"  # "keep_ratio" (spec 8.1) or "none" (native resolution)
    i.RESIZE_MODE_TEST = "keep_ratio"  # the same choice at test time
    i.KEEP_RATIO_SCALE = (1000, 600)  # (long-edge max, short-edge max)
    i.FLIP_PROB = 0.5  # horizontal flip in training (INPUT.RANDOM_FLIP="none" disables it)
    i.GAMMA_CORRECTION = CN()
    i.GAMMA_CORRECTION.ENABLED = False  # random gamma in training (spec 8.1)
    i.GAMMA_CORRECTION.LOWER_BOUND = 0.5  # gamma ~ U(LOWER_BOUND, 1), inverted with prob 0.5
    i.TARGET_CROP = CN()
    i.TARGET_CROP.ENABLED = False  # random crops of SIZE in training (CPU recipes)
    i.TARGET_CROP.SIZE = (256, 256)  # (h, w) in pixels after the resize step
    i.TARGET_CROP.TARGET_PROB = 0.75  # probability that the crop is centred on a random target
    # A box cut by the crop is dropped when it keeps less than this fraction of its area.
    i.MIN_BOX_AREA_RATIO = 0.5
    i.NOCO_TARGET = True  # attach "noco_map" in training


def _resize_augmentation(mode: str, scale) -> List[T.Augmentation]:
    if mode not in RESIZE_MODES:
        raise ValueError(f"INPUT.RESIZE_MODE_* must be one of {RESIZE_MODES}, got {mode!r}")
    return [KeepRatioResize(float(scale[0]), float(scale[1]))] if mode == "keep_ratio" else []


def build_noco_augmentations(cfg: CfgNode, is_train: bool) -> List[T.Augmentation]:
    """Resize [+ crop + flip + gamma] augmentations from ``cfg.INPUT``."""
    i = cfg.INPUT
    augs = _resize_augmentation(i.RESIZE_MODE_TRAIN if is_train else i.RESIZE_MODE_TEST,
                                i.KEEP_RATIO_SCALE)
    if not is_train:
        return augs
    if i.TARGET_CROP.ENABLED:
        augs.append(TargetCentredCrop(tuple(i.TARGET_CROP.SIZE), i.TARGET_CROP.TARGET_PROB))
    if i.RANDOM_FLIP not in ("none", "horizontal"):
        raise ValueError(f"NoCoDatasetMapper supports INPUT.RANDOM_FLIP 'horizontal' or 'none', "
                         f"got {i.RANDOM_FLIP!r}")
    if i.RANDOM_FLIP == "horizontal" and i.FLIP_PROB > 0:
        augs.append(T.RandomFlip(prob=i.FLIP_PROB, horizontal=True, vertical=False))
    if i.GAMMA_CORRECTION.ENABLED:
        augs.append(RandomGammaCorrection(i.GAMMA_CORRECTION.LOWER_BOUND))
    return augs


class NoCoDatasetMapper:
    """Detectron2 mapper for SIRST detectors trained with a NoCo target (see module doc)."""

    @configurable
    def __init__(self, is_train: bool, *, augmentations: List[Union[T.Augmentation, T.Transform]],
                 image_format: str = "RGB", noco_target: bool = True,
                 min_box_area_ratio: float = 0.5):
        if image_format not in ("RGB", "BGR"):
            raise ValueError(f"NoCoDatasetMapper supports INPUT.FORMAT 'RGB' or 'BGR', got "
                             f"{image_format!r}")
        self.is_train = is_train
        self.augmentations = T.AugmentationList(augmentations)
        self.image_format = image_format
        self.noco_target = noco_target
        self.min_box_area_ratio = min_box_area_ratio
        mode = "training" if is_train else "inference"
        logging.getLogger(__name__).info(f"[NoCoDatasetMapper] augmentations in {mode}: "
                                         f"{augmentations}")

    @classmethod
    def from_config(cls, cfg: CfgNode, is_train: bool = True) -> Dict:
        return {
            "is_train": is_train,
            "augmentations": build_noco_augmentations(cfg, is_train),
            "image_format": cfg.INPUT.FORMAT,
            "noco_target": cfg.INPUT.NOCO_TARGET,
            "min_box_area_ratio": cfg.INPUT.MIN_BOX_AREA_RATIO,
        }

    def __call__(self, dataset_dict: Dict) -> Dict:
        d = copy.deepcopy(dataset_dict)
        image = read_image_bgr(d["file_name"])
        utils.check_image_size(d, image)  # also fills in missing height/width
        annos = [a for a in d.pop("annotations", []) if a.get("iscrowd", 0) == 0]
        d.pop("sem_seg_file_name", None)
        boxes = np.array([BoxMode.convert(a["bbox"], a["bbox_mode"], BoxMode.XYXY_ABS)
                          for a in annos], dtype=np.float32).reshape(-1, 4)
        classes = np.array([a["category_id"] for a in annos], dtype=np.int64)

        aug_input = T.AugInput(image, boxes=boxes if self.is_train else None)
        self.augmentations(aug_input)
        image = aug_input.image
        h, w = image.shape[:2]
        if self.is_train:
            boxes, keep = _clip_and_filter(aug_input.boxes, h, w, self.min_box_area_ratio)
            boxes, classes = boxes[keep], classes[keep]
            inst = Instances((h, w))
            inst.gt_boxes = Boxes(torch.as_tensor(boxes, dtype=torch.float32))
            inst.gt_classes = torch.as_tensor(classes, dtype=torch.int64)
            d["instances"] = inst
            if self.noco_target:
                d["noco_map"] = torch.as_tensor(noco_target(image, boxes), dtype=torch.float32)

        if self.image_format == "RGB":
            image = image[:, :, ::-1]
        d["image"] = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
        return d


def _clip_and_filter(boxes: np.ndarray, height: int, width: int, min_area_ratio: float):
    """Clip (n, 4) float32 boxes to the image; keep those with positive clipped area that keep at
    least ``min_area_ratio`` of their unclipped area (only crops cut boxes)."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    clipped = boxes.copy()
    clipped[:, 0::2] = np.clip(clipped[:, 0::2], 0, width)
    clipped[:, 1::2] = np.clip(clipped[:, 1::2], 0, height)
    clipped_area = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    keep = (clipped_area > 0) & (clipped_area >= min_area_ratio * area)
    return clipped, keep


def noco_target(image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """NoCo training target (spec 2.3): ``noco_map`` of the uint8 image (channel mean) and the
    boxes in order, float64 (H, W).

    Boxes whose truncated pixel cell is empty (int(x2) == int(x1) or int(y2) == int(y1), only
    possible after strong down-scaling or cropping) are left out of the map; the reference
    would fail on them.
    """
    cells = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).astype(np.int64)
    usable = (cells[:, 2] > cells[:, 0]) & (cells[:, 3] > cells[:, 1])
    return noco_map(image, np.asarray(boxes, dtype=np.float32).reshape(-1, 4)[usable])
