"""The FCOS head shared over the FPN levels (mmdet's ``FCOSHead`` / RFLA's ``RFLA_FCOSHead``,
OSCAR spec 8.2). Module names follow mmdet: ``{cls,reg}_convs.N.conv[/.gn]``, ``conv_cls``,
``conv_reg``, ``conv_centerness``, ``scales.L.scale``."""
from __future__ import annotations

import math
from typing import List, NamedTuple, Sequence

import torch
from torch import nn

from deepinfrared_d2.modeling.dense_head import Scale, conv_tower, init_head_, predictor

__all__ = ["FCOSHead", "FCOSHeadOutputs"]


class FCOSHeadOutputs(NamedTuple):
    """Raw head outputs for a batch, one tensor per level (B = batch, K = classes).

    cls_logits: (B, K, H_l, W_l) classification logits.
    bbox_dists: (B, 4, H_l, W_l) float32 distances (l, t, r, b) >= 0, in units of the level
        stride (``norm_on_bbox``) or in pixels.
    centerness: (B, 1, H_l, W_l) centerness logits.
    """

    cls_logits: List[torch.Tensor]
    bbox_dists: List[torch.Tensor]
    centerness: List[torch.Tensor]


class FCOSHead(nn.Module):
    """cls and reg towers shared over the levels, three 3x3 predictors, one Scale per level.

    Args:
        in_channels: FPN width.
        num_levels: number of FPN levels (one learnable scale each).
        feat_channels, stacked_convs, norm, gn_groups: the towers (``conv_tower``).
        num_classes: K sigmoid classes.
        init_std: every conv ~ N(0, init_std^2), bias 0, except the cls bias
            -log((1 - prior_prob) / prior_prob).
        centerness_on_reg: centerness predicted from the reg tower (else the cls tower).
        norm_on_bbox: distances = ReLU(scale * raw) (stride units), else exp(scale * raw).
    """

    def __init__(self, in_channels: int, num_levels: int, feat_channels: int = 256,
                 num_classes: int = 1, stacked_convs: int = 4, norm: str = "",
                 gn_groups: int = 32, init_std: float = 0.01, prior_prob: float = 0.01,
                 centerness_on_reg: bool = True, norm_on_bbox: bool = True):
        super().__init__()
        self.centerness_on_reg = centerness_on_reg
        self.norm_on_bbox = norm_on_bbox
        self.cls_convs = conv_tower(in_channels, feat_channels, stacked_convs, norm, gn_groups)
        self.reg_convs = conv_tower(in_channels, feat_channels, stacked_convs, norm, gn_groups)
        self.conv_cls = predictor(feat_channels, num_classes)
        self.conv_reg = predictor(feat_channels, 4)
        self.conv_centerness = predictor(feat_channels, 1)
        self.scales = nn.ModuleList(Scale(1.0) for _ in range(num_levels))
        init_head_(self, init_std)
        nn.init.constant_(self.conv_cls.bias, -math.log((1 - prior_prob) / prior_prob))

    def forward(self, features: Sequence[torch.Tensor]) -> FCOSHeadOutputs:
        """features: one (B, C, H_l, W_l) map per level."""
        cls_logits, bbox_dists, centerness = [], [], []
        for feat, scale in zip(features, self.scales):
            cls_feat = self.cls_convs(feat)
            reg_feat = self.reg_convs(feat)
            cls_logits.append(self.conv_cls(cls_feat))
            centerness.append(self.conv_centerness(reg_feat if self.centerness_on_reg
                                                   else cls_feat))
            raw = scale(self.conv_reg(reg_feat)).float()
            bbox_dists.append(raw.clamp(min=0) if self.norm_on_bbox else raw.exp())
        return FCOSHeadOutputs(cls_logits, bbox_dists, centerness)
