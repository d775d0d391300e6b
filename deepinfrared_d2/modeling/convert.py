"""torchvision ResNet checkpoints -> Detectron2 ResNet keys (under an FPN backbone).

torchvision's ``conv1``/``bn1`` stem, ``layerK.B.{convN,bnN,downsample.{0,1}}`` become
``backbone.bottom_up.{stem.conv1{,.norm}, res{K+1}.B.{convN,convN.norm,shortcut{,.norm}}}``,
the rules of Detectron2's ``tools/convert-torchvision-to-d2.py``; ``fc.*`` and the BN
counters ``num_batches_tracked`` are dropped.
torchvision weights are "pytorch style" (stride in the 3x3 conv): use them with
``MODEL.RESNETS.STRIDE_IN_1X1 False``.
"""
from __future__ import annotations

import re
from typing import Dict, List, Mapping, Tuple

import torch

__all__ = ["convert_torchvision_to_d2_resnet"]

_PREFIX = "backbone.bottom_up."


def _d2_key(key: str) -> str:
    if not key.startswith("layer"):
        key = "stem." + key
    key = re.sub(r"layer(\d)", lambda m: f"res{int(m.group(1)) + 1}", key)
    key = re.sub(r"bn(\d)", r"conv\1.norm", key)
    return key.replace("downsample.0", "shortcut").replace("downsample.1", "shortcut.norm")


def convert_torchvision_to_d2_resnet(state_dict: Mapping[str, torch.Tensor]
                                     ) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """torchvision ResNet keys -> Detectron2 model keys. Returns (converted, skipped)."""
    out: Dict[str, torch.Tensor] = {}
    skipped: List[str] = []
    for key, value in state_dict.items():
        if key.startswith(("conv1.", "bn1.", "layer")) and not key.endswith("num_batches_tracked"):
            out[_PREFIX + _d2_key(key)] = value
        else:
            skipped.append(key)
    return out, skipped
