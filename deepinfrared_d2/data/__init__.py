"""SIRST datasets for Detectron2: catalog, decoding, annotations (and the NoCo mapper).

Importing this package registers every SIRST-V2 split as ``sirst_v2_<split>`` (lazily).
"""
from .annotations import mask_component_boxes, parse_voc_xml
from .catalog import (
    SIRST_V2_PREFIX,
    SIRST_V2_SPLITS,
    datasets_root,
    load_irstd_mask_dataset,
    load_sirst_v2,
    load_split_ids,
    register_irstd_mask_dataset,
    register_sirst_v2,
    sirst_v2_root,
)
from .image_io import DatasetFileError, read_gray, read_image, read_image_bgr, read_mask

register_sirst_v2()
