"""Building blocks of the dense (per-location) heads of OSCAR and FCOS: conv towers, the
learnable per-level ``Scale`` and the head initialisation (mmdet conventions)."""
from __future__ import annotations

import torch
from detectron2.layers import get_norm
from torch import nn

__all__ = ["Scale", "ConvNormReLU", "conv_tower", "predictor", "init_head_"]


class Scale(nn.Module):
    """A learnable scalar multiplier (attribute ``scale`` as in the reference keys)."""

    def __init__(self, init_value: float = 1.0):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(init_value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class ConvNormReLU(nn.Module):
    """conv3x3 (pad 1) - norm - ReLU; attributes ``conv`` and ``gn`` (reference keys).

    ``norm``: "GN" (``gn_groups`` groups), any Detectron2 norm name, or "" for none. As in
    mmdet's ``ConvModule(bias="auto")`` the conv has a bias only without a norm.
    """

    def __init__(self, in_channels: int, out_channels: int, norm: str, gn_groups: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=not norm)
        self.gn = (nn.GroupNorm(gn_groups, out_channels) if norm == "GN"
                   else get_norm(norm, out_channels) or nn.Identity())
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.gn(self.conv(x)))


def conv_tower(in_channels: int, feat_channels: int, num_convs: int, norm: str,
               gn_groups: int) -> nn.Sequential:
    """``num_convs`` ``ConvNormReLU`` layers, in_channels -> feat_channels -> ... (indices 0..)."""
    return nn.Sequential(*[ConvNormReLU(in_channels if i == 0 else feat_channels, feat_channels,
                                        norm, gn_groups) for i in range(num_convs)])


def predictor(in_channels: int, out_channels: int) -> nn.Conv2d:
    """The 3x3 (pad 1) output conv of a tower, with bias."""
    return nn.Conv2d(in_channels, out_channels, 3, padding=1)


def init_head_(head: nn.Module, std: float) -> None:
    """Every conv of ``head`` ~ N(0, std^2) with bias 0; norm layers weight 1, bias 0."""
    for m in head.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, mean=0.0, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.GroupNorm, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
