"""The OSCAR dense head: coarse branch on P3, refine branch on P2, mutual modulation (spec 4.3).

Module names follow the reference checkpoints (``{coarse,refine}_{cls,reg}_convs``,
``refine_noco_convs``, ``{coarse,refine}_conv_{cls,reg,mod}``, ``refine_conv_noco``,
``scales.0`` (refine) / ``scales.1`` (coarse)); tower layers are ``.conv`` + ``.gn``.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from deepinfrared_d2.modeling.dense_head import Scale, conv_tower, init_head_, predictor

__all__ = ["OSCARHead", "OSCARHeadOutputs"]


class OSCARHeadOutputs(NamedTuple):
    """Raw head outputs for a batch (logits are the modulated ones, z' in the spec).

    refine_logits:  (B, K, Hr, Wr) refine classification logits z_r'.
    refine_deltas:  (B, 4, Hr, Wr) float32 corner offsets (dx1, dy1, dx2, dy2) in units of s_r.
    noco_logits:    (B, 1, Hr, Wr) NoCo logits q.
    coarse_logits:  (B, K, Hc, Wc) coarse classification logits z_c'.
    coarse_dists:   (B, 4, Hc, Wc) float32 exp-distances (l, t, r, b) >= 0 in input pixels.
    """

    refine_logits: torch.Tensor
    refine_deltas: torch.Tensor
    noco_logits: torch.Tensor
    coarse_logits: torch.Tensor
    coarse_dists: torch.Tensor


class OSCARHead(nn.Module):
    """Two-level cascade head.

    Args:
        in_channels: C, the FPN width (both levels).
        feat_channels: F, the tower width; the refine regression tower takes C + F channels
            (P2 concatenated with the upsampled coarse regression features).
        num_classes: K sigmoid classes (1 for SIRST).
        stacked_convs: convs per tower.
        norm / gn_groups: tower norm ("GN" with ``gn_groups`` groups in the paper).
        init_std: every conv ~ N(0, init_std^2), bias 0 (no prior-probability bias).
        scale_init: initial value of the two regression scales.
    """

    def __init__(self, in_channels: int, feat_channels: int, num_classes: int = 1,
                 stacked_convs: int = 4, norm: str = "GN", gn_groups: int = 32,
                 init_std: float = 0.01, scale_init: float = 1.0):
        super().__init__()
        self.num_classes = num_classes

        def tower(c_in: int) -> nn.Sequential:
            return conv_tower(c_in, feat_channels, stacked_convs, norm, gn_groups)

        self.coarse_cls_convs = tower(in_channels)
        self.coarse_reg_convs = tower(in_channels)
        self.refine_cls_convs = tower(in_channels)
        self.refine_reg_convs = tower(in_channels + feat_channels)
        self.refine_noco_convs = tower(in_channels)
        self.coarse_conv_cls = predictor(feat_channels, num_classes)
        self.coarse_conv_reg = predictor(feat_channels, 4)
        self.coarse_conv_mod = predictor(feat_channels, num_classes)
        self.refine_conv_cls = predictor(feat_channels, num_classes)
        self.refine_conv_reg = predictor(feat_channels, 4)
        self.refine_conv_noco = predictor(feat_channels, 1)
        self.refine_conv_mod = predictor(feat_channels, num_classes)
        self.scales = nn.ModuleList([Scale(scale_init), Scale(scale_init)])  # refine, coarse
        init_head_(self, init_std)

    def forward(self, refine_feat: torch.Tensor, coarse_feat: torch.Tensor) -> OSCARHeadOutputs:
        """refine_feat: P2 (B, C, Hr, Wr); coarse_feat: P3 (B, C, Hc, Wc)."""
        refine_size = refine_feat.shape[-2:]
        coarse_size = coarse_feat.shape[-2:]

        coarse_cls_feat = self.coarse_cls_convs(coarse_feat)
        coarse_reg_feat = self.coarse_reg_convs(coarse_feat)
        coarse_logits = self.coarse_conv_cls(coarse_cls_feat)
        coarse_dists = self.scales[1](self.coarse_conv_reg(coarse_reg_feat)).float().exp()

        up_coarse_reg = F.interpolate(coarse_reg_feat, size=refine_size, mode="bilinear",
                                      align_corners=False)
        refine_cls_feat = self.refine_cls_convs(refine_feat)
        refine_reg_feat = self.refine_reg_convs(torch.cat([refine_feat, up_coarse_reg], dim=1))
        refine_noco_feat = self.refine_noco_convs(refine_feat)
        refine_logits = self.refine_conv_cls(refine_cls_feat)
        refine_deltas = self.scales[0](self.refine_conv_reg(refine_reg_feat)).float()
        noco_logits = self.refine_conv_noco(refine_noco_feat)

        # Mutual modulation: each level's logits are scaled by the other level's sigmoid weight.
        coarse_weight = F.interpolate(self.coarse_conv_mod(coarse_cls_feat), size=refine_size,
                                      mode="bilinear", align_corners=False).sigmoid()
        refine_weight = F.interpolate(self.refine_conv_mod(refine_cls_feat), size=coarse_size,
                                      mode="bilinear", align_corners=False).sigmoid()
        return OSCARHeadOutputs(refine_logits=refine_logits * coarse_weight,
                                refine_deltas=refine_deltas, noco_logits=noco_logits,
                                coarse_logits=coarse_logits * refine_weight,
                                coarse_dists=coarse_dists)
