"""FlexResNet: a ResNet with a deep stem and configurable stem/stage strides (OSCAR spec 4.1);
OSCAR's backbone and the backbone of every CPU recipe.

Module names follow the reference (mmdet) checkpoints: ``stem.{0..8}`` (conv, BN, ReLU x3,
or conv, BN, ReLU for the 7x7 stem), ``layer{k}.{b}.{conv1,bn1,conv2,bn2[,conv3,bn3]}`` and
``layer{k}.0.downsample.{0,1}``. Every conv is bias-free; the network is trained from scratch.
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Type, Union

import torch
from detectron2.layers import ShapeSpec, get_norm
from detectron2.modeling import Backbone
from torch import nn

__all__ = ["BasicBlock", "Bottleneck", "FlexResNet", "RESNET_DEPTHS"]


class BasicBlock(nn.Module):
    """conv3x3(stride) - BN - ReLU - conv3x3 - BN - (+ identity / downsample) - ReLU."""

    expansion = 1

    def __init__(self, in_channels: int, planes: int, stride: int, norm: str):
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = nn.Conv2d(in_channels, planes, 3, stride, 1, bias=False)
        self.bn1 = get_norm(norm, planes)
        self.conv2 = nn.Conv2d(planes, out_channels, 3, 1, 1, bias=False)
        self.bn2 = get_norm(norm, out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(in_channels, out_channels, stride, norm)

    def last_norm(self) -> nn.Module:
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 - 3x3(stride, "pytorch" style) - 1x1 (x4 channels), each with BN; ReLU after the sum."""

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int, norm: str):
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = nn.Conv2d(in_channels, planes, 1, 1, 0, bias=False)
        self.bn1 = get_norm(norm, planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = get_norm(norm, planes)
        self.conv3 = nn.Conv2d(planes, out_channels, 1, 1, 0, bias=False)
        self.bn3 = get_norm(norm, out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(in_channels, out_channels, stride, norm)

    def last_norm(self) -> nn.Module:
        return self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _downsample(in_channels: int, out_channels: int, stride: int, norm: str):
    """conv1x1(stride) + norm when the shape changes, else None (identity shortcut)."""
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                         get_norm(norm, out_channels))


Block = Union[Type[BasicBlock], Type[Bottleneck]]
RESNET_DEPTHS: Dict[int, tuple] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}
STAGE_NAMES = ("res2", "res3", "res4", "res5")


class FlexResNet(Backbone):
    """ResNet whose outputs ``res2..res5`` are layer1..layer4 (C2..C5).

    Output strides: ``stem_stride * (2 if max_pooling) * prod(stage_strides[:k+1])`` for stage
    k; the paper's settings (stem stride 2, max-pool, strides (1, 2, 2, 2)) give 4, 8, 16, 32.
    """

    def __init__(self, depth: int = 18, deep_stem: bool = True, stem_channels: int = 64,
                 stem_stride: int = 2, max_pooling: bool = True, patch_stem: bool = False,
                 stage_strides: Sequence[int] = (1, 2, 2, 2), base_channels: int = 64,
                 norm: str = "BN", zero_init_residual: bool = True,
                 out_features: Sequence[str] = STAGE_NAMES, in_channels: int = 3):
        super().__init__()
        if depth not in RESNET_DEPTHS:
            raise ValueError(f"FlexResNet depth must be one of {sorted(RESNET_DEPTHS)}, "
                             f"got {depth}")
        if len(stage_strides) != 4:
            raise ValueError(f"STAGE_STRIDES needs 4 values (layer1..layer4), got {stage_strides}")
        unknown = [f for f in out_features if f not in STAGE_NAMES]
        if unknown:
            raise ValueError(f"unknown FlexResNet out_features {unknown}; "
                             f"choose from {STAGE_NAMES}")
        block, depths = RESNET_DEPTHS[depth]
        self.stem = _build_stem(in_channels, stem_channels, stem_stride, deep_stem, patch_stem,
                                norm)
        self.maxpool = nn.MaxPool2d(3, 2, 1) if max_pooling else nn.Identity()
        stride = stem_stride * (2 if max_pooling else 1)
        channels = stem_channels
        self._out_features = list(out_features)
        self._out_feature_strides: Dict[str, int] = {}
        self._out_feature_channels: Dict[str, int] = {}
        self.stage_names: List[str] = []
        for k, (num_blocks, s) in enumerate(zip(depths, stage_strides)):
            planes = base_channels * 2 ** k
            blocks = []
            for b in range(num_blocks):
                blocks.append(block(channels, planes, s if b == 0 else 1, norm))
                channels = planes * block.expansion
            layer_name = f"layer{k + 1}"
            self.add_module(layer_name, nn.Sequential(*blocks))
            self.stage_names.append(layer_name)
            stride *= s
            self._out_feature_strides[STAGE_NAMES[k]] = stride
            self._out_feature_channels[STAGE_NAMES[k]] = channels
        self.init_weights(zero_init_residual)

    def init_weights(self, zero_init_residual: bool) -> None:
        """Kaiming-normal (fan_out, ReLU) convs, norm weight 1 / bias 0, zero-init residual."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.SyncBatchNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    nn.init.zeros_(m.last_norm().weight)
                    nn.init.zeros_(m.last_norm().bias)

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """x: (B, 3, H, W) normalised images -> {"res2": (B, C2, H/4, W/4), ...}."""
        x = self.maxpool(self.stem(x))
        outputs = {}
        for stage_name, out_name in zip(self.stage_names, STAGE_NAMES):
            x = getattr(self, stage_name)(x)
            if out_name in self._out_features:
                outputs[out_name] = x
            if all(f in outputs for f in self._out_features):
                break
        return outputs

    def output_shape(self) -> Dict[str, ShapeSpec]:
        return {name: ShapeSpec(channels=self._out_feature_channels[name],
                                stride=self._out_feature_strides[name])
                for name in self._out_features}


def _build_stem(in_channels: int, stem_channels: int, stride: int, deep: bool, patch: bool,
                norm: str) -> nn.Sequential:
    """Patch stem: one conv in->c with kernel = stride (every pixel enters once, nothing is
    computed at full resolution) + BN + ReLU; deep stem: 3x3(stride) in->c/2, 3x3 c/2->c/2,
    3x3 c/2->c (BN + ReLU after each); otherwise one 7x7(stride) conv in->c + BN + ReLU (the
    torchvision stem)."""
    if patch:
        return nn.Sequential(nn.Conv2d(in_channels, stem_channels, stride, stride, bias=False),
                             get_norm(norm, stem_channels), nn.ReLU(inplace=True))
    if not deep:
        return nn.Sequential(nn.Conv2d(in_channels, stem_channels, 7, stride, 3, bias=False),
                             get_norm(norm, stem_channels), nn.ReLU(inplace=True))
    half = stem_channels // 2
    layers: List[nn.Module] = []
    for c_in, c_out, s in ((in_channels, half, stride), (half, half, 1), (half, stem_channels, 1)):
        layers += [nn.Conv2d(c_in, c_out, 3, s, 1, bias=False), get_norm(norm, c_out),
                   nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)
