"""OSCAR: one-stage cascade refinement network (arXiv 2212.08472) for Detectron2.

Importing the package registers ``build_flex_resnet_fpn_backbone`` in ``BACKBONE_REGISTRY``
and ``OSCAR`` in ``META_ARCH_REGISTRY``; ``add_oscar_config(cfg)`` adds every OSCAR key;
``get_oscar_cfg(config_file, opts)`` builds a whole config.
"""
from .backbone import FlexResNet
from .config import add_oscar_config, get_oscar_cfg
from .fpn import FlexFPN, build_flex_resnet_backbone, build_flex_resnet_fpn_backbone
from .head import OSCARHead, OSCARHeadOutputs
from .meta_arch import OSCAR

__all__ = [
    "add_oscar_config",
    "get_oscar_cfg",
    "FlexResNet",
    "FlexFPN",
    "build_flex_resnet_backbone",
    "build_flex_resnet_fpn_backbone",
    "OSCARHead",
    "OSCARHeadOutputs",
    "OSCAR",
]
