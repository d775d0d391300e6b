"""SIRST-V2 and mask-only IRSTD datasets in Detectron2's DatasetCatalog / MetadataCatalog.

The loaders live in :mod:`sirst.dataset` (torch-free, shared with the classical baselines);
this module registers them. Importing :mod:`deepinfrared_d2.data` registers every SIRST-V2
split as ``sirst_v2_<split>``; a loader runs only when its dataset is requested (registration
reads no file but the split listing).
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional

from detectron2.data import DatasetCatalog, MetadataCatalog

from sirst.annotations import CLASS_NAME
from sirst.dataset import (
    IMAGE_DIR,
    SIRST_V2_PREFIX,
    SIRST_V2_SPLITS,
    load_irstd_mask_dataset,
    load_sirst_v2,
    sirst_v2_root,
    splits_on_disk,
)

__all__ = ["register_sirst_v2", "register_irstd_mask_dataset"]


def _metadata(**kw) -> Dict:
    return dict(thing_classes=[CLASS_NAME], evaluator_type="noco", **kw)


def register_sirst_v2(root: Optional[str] = None, prefix: str = SIRST_V2_PREFIX,
                      case_insensitive_names: bool = False) -> List[str]:
    """Register every SIRST-V2 split as ``<prefix>_<split>``; return the registered names.

    Lazy: only the split folder is listed. Already registered names are left alone, so
    calling it again (or importing the package twice) is harmless. With
    ``case_insensitive_names`` an object named e.g. ``target`` counts as ``Target`` (by
    default it is an error naming the XML file).
    """
    root = root or sirst_v2_root()
    names = []
    for split in dict.fromkeys(list(SIRST_V2_SPLITS) + splits_on_disk(root)):
        name = f"{prefix}_{split}"
        names.append(name)
        if name in DatasetCatalog.list():
            continue
        DatasetCatalog.register(
            name, lambda r=root, s=split: load_sirst_v2(r, s, case_insensitive_names))
        MetadataCatalog.get(name).set(**_metadata(root=root, split=split, image_root=os.path.join(
            root, IMAGE_DIR), box_source="voc_xml"))
    return names


def register_irstd_mask_dataset(name: str, root: str, split_file: str, image_dir: str = "images",
                                mask_dir: str = "masks", image_ext: str = ".png",
                                mask_ext: str = ".png", mask_suffix: str = "") -> None:
    """Register a mask-only IRSTD dataset (NUAA-SIRST, NUDT-SIRST, IRSTD-1k, ...).

    Example (BasicIRSTD layout ``<root>/images``, ``<root>/masks``, ``<root>/img_idx/*.txt``)::

        register_irstd_mask_dataset("nudt_sirst_test", "datasets/NUDT-SIRST",
                                    "img_idx/test_NUDT-SIRST.txt")

    The dataset then works with ``NoCoEvaluator`` and every model of this project.
    """
    if name in DatasetCatalog.list():
        raise ValueError(f"dataset {name!r} is already registered")
    kw = dict(image_dir=image_dir, mask_dir=mask_dir, image_ext=image_ext, mask_ext=mask_ext,
              mask_suffix=mask_suffix)
    DatasetCatalog.register(name, lambda: load_irstd_mask_dataset(root, split_file, **kw))
    MetadataCatalog.get(name).set(**_metadata(root=root, split=split_file, image_root=os.path.join(
        root, image_dir), box_source="mask_components"))
