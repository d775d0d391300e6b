"""SIRST datasets for Detectron2: catalog registration and the NoCo mapper.

The file layer (decoding, annotations, loaders, errors naming the file) is the torch-free
:mod:`sirst` package, re-exported here. Importing this package registers every SIRST-V2 split
as ``sirst_v2_<split>`` (lazily).
"""
from sirst.annotations import mask_component_boxes, parse_voc_xml
from sirst.dataset import (
    SIRST_V2_PREFIX,
    SIRST_V2_SPLITS,
    datasets_root,
    load_irstd_mask_dataset,
    load_sirst_v2,
    load_split_ids,
    sirst_v2_root,
)
from sirst.image_io import DatasetFileError, read_gray, read_image, read_image_bgr, read_mask

from .catalog import register_irstd_mask_dataset, register_sirst_v2

register_sirst_v2()

__all__ = [
    "SIRST_V2_PREFIX",
    "SIRST_V2_SPLITS",
    "DatasetFileError",
    "datasets_root",
    "load_irstd_mask_dataset",
    "load_sirst_v2",
    "load_split_ids",
    "mask_component_boxes",
    "parse_voc_xml",
    "read_gray",
    "read_image",
    "read_image_bgr",
    "read_mask",
    "register_irstd_mask_dataset",
    "register_sirst_v2",
    "sirst_v2_root",
]
