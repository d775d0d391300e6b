"""FCOS and FCOS-RFLA (OSCAR spec 5.2, 6.3, 7.5, 8.2) for Detectron2.

Importing the package registers ``FCOS`` in ``META_ARCH_REGISTRY`` (Detectron2 v0.6 ships an
FCOS class for its LazyConfig system only, unregistered); ``add_fcos_config(cfg)`` adds the
``MODEL.FCOS`` keys and ``deepinfrared_d2.config.get_cfg`` applies it to FCOS configs. The
towers, focal and DIoU losses and box decoding are shared with OSCAR
(``deepinfrared_d2.modeling``), and so is the NMS post-processor
(``deepinfrared_d2.deploy.cell_detections``).
"""
from .assignment import fcos_assign, hierarchical_assign, kld_similarity, rfla_assign
from .config import add_fcos_config
from .head import FCOSHead, FCOSHeadOutputs
from .meta_arch import FCOS

__all__ = [
    "add_fcos_config",
    "fcos_assign",
    "hierarchical_assign",
    "kld_similarity",
    "rfla_assign",
    "FCOS",
    "FCOSHead",
    "FCOSHeadOutputs",
]
