"""OSCAR: one-stage cascade refinement network (arXiv 2212.08472) for Detectron2.

Importing the package registers ``build_flex_resnet_fpn_backbone`` in ``BACKBONE_REGISTRY``
and ``OSCAR`` in ``META_ARCH_REGISTRY``; ``add_oscar_config(cfg)`` adds every OSCAR key;
``deepinfrared_d2.config.get_cfg`` applies it to configs of the OSCAR meta-architecture.
"""
from .backbone import FlexResNet
from .config import add_oscar_config
from .fpn import FlexFPN, build_flex_resnet_backbone, build_flex_resnet_fpn_backbone
from .head import OSCARHead, OSCARHeadOutputs
from .meta_arch import OSCAR

__all__ = [
    "add_oscar_config",
    "FlexResNet",
    "FlexFPN",
    "build_flex_resnet_backbone",
    "build_flex_resnet_fpn_backbone",
    "OSCARHead",
    "OSCARHeadOutputs",
    "OSCAR",
]
