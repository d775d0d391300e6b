"""OSCAR: one-stage cascade refinement network (arXiv 2212.08472) for Detectron2.

Importing the package registers ``OSCAR`` in ``META_ARCH_REGISTRY``; ``add_oscar_config(cfg)``
adds every OSCAR key; ``deepinfrared_d2.config.get_cfg`` applies it to configs of the OSCAR
meta-architecture. Its backbone (FlexResNet + FlexFPN, ``build_flex_resnet_fpn_backbone``) is
shared with the other detectors' CPU recipes and lives in ``deepinfrared_d2.modeling``.
"""
from .config import add_oscar_config
from .head import OSCARHead, OSCARHeadOutputs
from .meta_arch import OSCAR

__all__ = [
    "add_oscar_config",
    "OSCARHead",
    "OSCARHeadOutputs",
    "OSCAR",
]
