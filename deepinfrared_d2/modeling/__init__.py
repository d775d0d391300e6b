"""Model parts shared by the DeepInfrared-D2 detectors.

Importing the package registers ``build_flex_resnet_fpn_backbone`` and
``build_resnet_flex_fpn_backbone`` in ``BACKBONE_REGISTRY`` and ``MMDetRPN`` in
``PROPOSAL_GENERATOR_REGISTRY``; ``add_backbone_config`` adds their keys (every config has
them, see ``deepinfrared_d2.config``).
"""
from .config import add_backbone_config
from .dense_head import ConvNormReLU, Scale, conv_tower, init_head_
from .flex_fpn import (
    FlexFPN,
    build_flex_resnet_backbone,
    build_flex_resnet_fpn_backbone,
    build_resnet_flex_fpn_backbone,
)
from .flex_resnet import BasicBlock, Bottleneck, FlexResNet
from .losses import diou_loss, num_pos_normaliser, reduce_mean, sigmoid_focal_loss
from .norm import StatsFrozenBatchNorm2d, freeze_bn_statistics
from .postprocess import decode_distances, detections_to_instances, grid_points
from .rpn import MMDetRPN

__all__ = [
    "add_backbone_config",
    "BasicBlock",
    "Bottleneck",
    "ConvNormReLU",
    "FlexFPN",
    "FlexResNet",
    "MMDetRPN",
    "Scale",
    "StatsFrozenBatchNorm2d",
    "build_flex_resnet_backbone",
    "build_flex_resnet_fpn_backbone",
    "build_resnet_flex_fpn_backbone",
    "conv_tower",
    "decode_distances",
    "detections_to_instances",
    "diou_loss",
    "freeze_bn_statistics",
    "grid_points",
    "init_head_",
    "num_pos_normaliser",
    "reduce_mean",
    "sigmoid_focal_loss",
]
