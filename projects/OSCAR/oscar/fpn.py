"""FlexFPN: top-down FPN that outputs only the levels listed in ``out_inds`` (spec 4.2).

Lateral 1x1 convs (with bias) on every input level, nearest top-down upsampling to the exact
lower size, and 3x3 output convs (with bias) whose outputs are returned for ``out_inds`` only
(OSCAR: indices 0, 1 -> P2, P3). No extra levels, no norm, no activation; Xavier-uniform init.
"""
from __future__ import annotations

from typing import Dict, List, Sequence

import torch
import torch.nn.functional as F
from detectron2.config import CfgNode
from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, Backbone
from torch import nn

from .backbone import FlexResNet

__all__ = ["FlexFPN", "build_flex_resnet_backbone", "build_flex_resnet_fpn_backbone"]


class FlexFPN(Backbone):
    """FPN over ``bottom_up``'s ``in_features``; outputs ``p{log2(stride)}`` for ``out_inds``.

    Attributes ``bottom_up``, ``lateral_convs`` and ``fpn_convs`` (index = input level) mirror
    the reference's ``backbone``/``neck.lateral_convs``/``neck.fpn_convs`` checkpoint keys.
    """

    def __init__(self, bottom_up: Backbone, in_features: Sequence[str], out_channels: int,
                 out_inds: Sequence[int], build_unused_output_convs: bool = True):
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
            name = f"p{int(strides[i]).bit_length() - 1}"
            self._out_features.append(name)
            self._out_feature_strides[name] = strides[i]
            self._out_feature_channels[name] = out_channels
        self._size_divisibility = max(strides)
        for m in list(self.lateral_convs) + list(self.fpn_convs):
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight, gain=1.0)
                nn.init.zeros_(m.bias)
        for i, m in enumerate(self.fpn_convs):
            if i not in self.out_inds:
                # Never used, never trained: frozen, so that optimizers skip them and
                # DistributedDataParallel does not wait for their gradients.
                m.requires_grad_(False)

    @property
    def size_divisibility(self) -> int:
        return self._size_divisibility

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """x: (B, 3, H, W), H and W multiples of the largest input stride.

        Returns {"p2": (B, C, H/4, W/4), "p3": (B, C, H/8, W/8)} for the paper's settings.
        """
        bottom_up = self.bottom_up(x)
        laterals: List[torch.Tensor] = [conv(bottom_up[f])
                                        for conv, f in zip(self.lateral_convs, self.in_features)]
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + F.interpolate(
                laterals[i], size=laterals[i - 1].shape[-2:], mode="nearest")
        return {name: self.fpn_convs[i](laterals[i])
                for name, i in zip(self._out_features, self.out_inds)}


def build_flex_resnet_backbone(cfg: CfgNode, input_shape: ShapeSpec) -> FlexResNet:
    """FlexResNet from ``cfg.MODEL.FLEX_RESNET`` (spec 4.1)."""
    r = cfg.MODEL.FLEX_RESNET
    return FlexResNet(depth=r.DEPTH, deep_stem=r.DEEP_STEM, stem_channels=r.STEM_CHANNELS,
                      stem_stride=r.STEM_STRIDE, max_pooling=r.MAX_POOLING,
                      stage_strides=tuple(r.STAGE_STRIDES), base_channels=r.BASE_CHANNELS,
                      norm=r.NORM, zero_init_residual=r.ZERO_INIT_RESIDUAL,
                      out_features=tuple(r.OUT_FEATURES), in_channels=input_shape.channels)


@BACKBONE_REGISTRY.register()
def build_flex_resnet_fpn_backbone(cfg: CfgNode, input_shape: ShapeSpec) -> FlexFPN:
    """FlexResNet + FlexFPN (``MODEL.BACKBONE.NAME = "build_flex_resnet_fpn_backbone"``)."""
    f = cfg.MODEL.FLEX_FPN
    return FlexFPN(build_flex_resnet_backbone(cfg, input_shape), in_features=f.IN_FEATURES,
                   out_channels=f.OUT_CHANNELS, out_inds=f.OUT_INDS,
                   build_unused_output_convs=f.BUILD_UNUSED_OUTPUT_CONVS)
