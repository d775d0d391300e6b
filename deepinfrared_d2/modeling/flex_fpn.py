"""FlexFPN: top-down FPN that outputs only the levels listed in ``out_inds`` (OSCAR spec 4.2),
optionally followed by Detectron2's extra-level blocks (P6 / P6-P7), and the backbone builders
that put it on a FlexResNet or on Detectron2's ResNet.

Lateral 1x1 convs (with bias) on every input level, nearest top-down upsampling to the exact
lower size, and 3x3 output convs (with bias) whose outputs are returned for ``out_inds`` only
(OSCAR: indices 0, 1 -> P2, P3). No norm, no activation; Xavier-uniform init (mmdet's FPN).
Inputs are padded to a multiple of the largest *input* stride (32), as mmdet pads; the
stride-2 extra levels round their sizes up.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from detectron2.config import CfgNode
from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, Backbone
from detectron2.modeling.backbone.fpn import LastLevelMaxPool, LastLevelP6P7
from detectron2.modeling.backbone.resnet import build_resnet_backbone
from torch import nn

from .flex_resnet import FlexResNet
from .norm import freeze_bn_statistics

__all__ = ["FlexFPN", "build_flex_resnet_backbone", "build_flex_resnet_fpn_backbone",
           "build_resnet_flex_fpn_backbone", "TOP_BLOCKS"]

TOP_BLOCKS = ("", "LastLevelMaxPool", "LastLevelP6P7")


class FlexFPN(Backbone):
    """FPN over ``bottom_up``'s ``in_features``; outputs ``p{log2(stride)}`` for ``out_inds``,
    then the levels of ``top_block`` (Detectron2's top-block interface: ``num_levels``,
    ``in_feature`` naming a bottom-up or FPN output, ``forward(x) -> list``), each at twice the
    previous stride.

    Attributes ``bottom_up``, ``lateral_convs`` and ``fpn_convs`` (index = input level) mirror
    the reference's ``backbone``/``neck.lateral_convs``/``neck.fpn_convs`` checkpoint keys.
    """

    def __init__(self, bottom_up: Backbone, in_features: Sequence[str], out_channels: int,
                 out_inds: Sequence[int], build_unused_output_convs: bool = True,
                 top_block: Optional[nn.Module] = None):
        super().__init__()
        shapes = bottom_up.output_shape()
        missing = [f for f in in_features if f not in shapes]
        if missing:
            raise ValueError(f"FlexFPN in_features {missing} are not produced by the bottom-up "
                             f"network (it gives {list(shapes)})")
        if not out_inds or any(not 0 <= i < len(in_features) for i in out_inds):
            raise ValueError(f"FlexFPN OUT_INDS {list(out_inds)} must index IN_FEATURES "
                             f"(0..{len(in_features) - 1})")
        self.bottom_up = bottom_up
        self.in_features = list(in_features)
        self.out_inds = [int(i) for i in out_inds]
        self.lateral_convs = nn.ModuleList(
            nn.Conv2d(shapes[f].channels, out_channels, 1) for f in self.in_features)
        self.fpn_convs = nn.ModuleList(
            nn.Conv2d(out_channels, out_channels, 3, padding=1)
            if (build_unused_output_convs or i in self.out_inds) else nn.Identity()
            for i in range(len(self.in_features)))
        strides = [shapes[f].stride for f in self.in_features]
        self._out_features: List[str] = []
        self._out_feature_strides: Dict[str, int] = {}
        self._out_feature_channels: Dict[str, int] = {}
        for i in self.out_inds:
            self._add_output(strides[i], out_channels)
        self.top_block = top_block
        if top_block is not None:
            source = top_block.in_feature
            if source in self._out_feature_strides:
                stride = self._out_feature_strides[source]
            elif source in shapes:
                stride = shapes[source].stride
            else:
                raise ValueError(f"the FPN top block reads {source!r}, which is neither a "
                                 f"bottom-up output ({list(shapes)}) nor an FPN output "
                                 f"({self._out_features})")
            for _ in range(top_block.num_levels):
                stride *= 2
                self._add_output(stride, out_channels)
        self._size_divisibility = max(strides)
        convs = list(self.lateral_convs) + list(self.fpn_convs)
        convs += list(top_block.modules()) if top_block is not None else []
        for m in convs:
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight, gain=1.0)
                nn.init.zeros_(m.bias)
        for i, m in enumerate(self.fpn_convs):
            if i not in self.out_inds:
                # Never used, never trained: frozen, so that optimizers skip them and
                # DistributedDataParallel does not wait for their gradients.
                m.requires_grad_(False)

    def _add_output(self, stride: int, channels: int) -> None:
        name = f"p{int(stride).bit_length() - 1}"
        self._out_features.append(name)
        self._out_feature_strides[name] = stride
        self._out_feature_channels[name] = channels

    @property
    def size_divisibility(self) -> int:
        return self._size_divisibility

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """x: (B, 3, H, W), H and W multiples of the largest input stride.

        Returns {"p2": (B, C, H/4, W/4), "p3": (B, C, H/8, W/8)} for OSCAR's settings; the top
        block's levels (e.g. "p6", "p7") follow, with sizes rounded up.
        """
        bottom_up = self.bottom_up(x)
        laterals: List[torch.Tensor] = [conv(bottom_up[f])
                                        for conv, f in zip(self.lateral_convs, self.in_features)]
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + F.interpolate(
                laterals[i], size=laterals[i - 1].shape[-2:], mode="nearest")
        outputs = {name: self.fpn_convs[i](laterals[i])
                   for name, i in zip(self._out_features, self.out_inds)}
        if self.top_block is not None:
            source = self.top_block.in_feature
            extra = self.top_block(outputs[source] if source in outputs else bottom_up[source])
            outputs.update(zip(self._out_features[len(self.out_inds):], extra))
        return outputs


def build_top_block(cfg: CfgNode, bottom_up: Backbone) -> Optional[nn.Module]:
    """``MODEL.FLEX_FPN.TOP_BLOCK``: None, Detectron2's ``LastLevelMaxPool`` (P6 from P5) or
    ``LastLevelP6P7`` reading ``TOP_BLOCK_IN_FEATURE`` (an FPN output or a bottom-up stage)."""
    f = cfg.MODEL.FLEX_FPN
    if f.TOP_BLOCK not in TOP_BLOCKS:
        raise ValueError(f"MODEL.FLEX_FPN.TOP_BLOCK must be one of {TOP_BLOCKS}, got "
                         f"{f.TOP_BLOCK!r}")
    if not f.TOP_BLOCK:
        return None
    if f.TOP_BLOCK == "LastLevelMaxPool":
        return LastLevelMaxPool()
    source = f.TOP_BLOCK_IN_FEATURE
    shapes = bottom_up.output_shape()
    in_channels = shapes[source].channels if source in shapes else f.OUT_CHANNELS
    return LastLevelP6P7(in_channels, f.OUT_CHANNELS, in_feature=source)


def _flex_fpn(cfg: CfgNode, bottom_up: Backbone) -> FlexFPN:
    f = cfg.MODEL.FLEX_FPN
    return FlexFPN(bottom_up, in_features=f.IN_FEATURES, out_channels=f.OUT_CHANNELS,
                   out_inds=f.OUT_INDS, build_unused_output_convs=f.BUILD_UNUSED_OUTPUT_CONVS,
                   top_block=build_top_block(cfg, bottom_up))


def build_flex_resnet_backbone(cfg: CfgNode, input_shape: ShapeSpec) -> FlexResNet:
    """FlexResNet from ``cfg.MODEL.FLEX_RESNET`` (OSCAR spec 4.1)."""
    r = cfg.MODEL.FLEX_RESNET
    return FlexResNet(depth=r.DEPTH, deep_stem=r.DEEP_STEM, stem_channels=r.STEM_CHANNELS,
                      stem_stride=r.STEM_STRIDE, max_pooling=r.MAX_POOLING,
                      patch_stem=r.PATCH_STEM,
                      stage_strides=tuple(r.STAGE_STRIDES), base_channels=r.BASE_CHANNELS,
                      norm=r.NORM, zero_init_residual=r.ZERO_INIT_RESIDUAL,
                      out_features=tuple(r.OUT_FEATURES), in_channels=input_shape.channels)


@BACKBONE_REGISTRY.register()
def build_flex_resnet_fpn_backbone(cfg: CfgNode, input_shape: ShapeSpec) -> FlexFPN:
    """FlexResNet + FlexFPN (``MODEL.BACKBONE.NAME = "build_flex_resnet_fpn_backbone"``)."""
    return _flex_fpn(cfg, build_flex_resnet_backbone(cfg, input_shape))


@BACKBONE_REGISTRY.register()
def build_resnet_flex_fpn_backbone(cfg: CfgNode, input_shape: ShapeSpec) -> FlexFPN:
    """Detectron2's ResNet (``MODEL.RESNETS``: caffe or pytorch style, FrozenBN, frozen stages,
    ImageNet weights through ``MODEL.WEIGHTS``) + FlexFPN; with ``MODEL.RESNETS.NORM_EVAL`` its
    "BN" layers keep their running statistics in training (mmdet's ``norm_eval``)."""
    bottom_up = build_resnet_backbone(cfg, input_shape)
    if cfg.MODEL.RESNETS.NORM_EVAL:
        freeze_bn_statistics(bottom_up)
    return _flex_fpn(cfg, bottom_up)
