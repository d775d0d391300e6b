"""Checkpoint key conversion into OSCAR's Detectron2 model keys.

Target keys (``build_model`` of an OSCAR config):
``backbone.bottom_up.{stem.N, layerK.B.{conv1,bn1,...,downsample.{0,1}}}.*`` (FlexResNet),
``backbone.{lateral_convs,fpn_convs}.I.{weight,bias}`` (FlexFPN), ``head.*`` (OSCARHead).

Sources:
- torchvision ResNet state dicts (``resnet18/34/50...``): ``layer*`` keys map one to one;
  the 7x7 ``conv1``/``bn1`` stem maps to ``stem.0``/``stem.1`` only for a 7x7 stem
  (``DEEP_STEM=False``). With the deep stem (the paper's setting) the torchvision stem has no
  counterpart and the deep stem stays randomly initialised; ``fc.*`` is dropped.
- the reference mmdet checkpoints (spec 4.5): ``backbone.*`` -> ``backbone.bottom_up.*``,
  ``neck.{lateral,fpn}_convs.I.conv.*`` -> ``backbone.{lateral,fpn}_convs.I.*``,
  ``bbox_head.*`` -> ``head.*`` (tower ``.conv``/``.gn`` and predictor names are identical).
"""
from __future__ import annotations

import re
from typing import Dict, List, Mapping, Tuple

import torch

__all__ = ["convert_torchvision_resnet", "convert_mmdet_oscar", "detect_source"]

BOTTOM_UP = "backbone.bottom_up."


def detect_source(state_dict: Mapping[str, torch.Tensor]) -> str:
    """'mmdet' if the keys carry the reference prefixes (backbone./neck./bbox_head.), else
    'torchvision'."""
    prefixes = ("backbone.", "neck.", "bbox_head.")
    return "mmdet" if any(k.startswith(prefixes) for k in state_dict) else "torchvision"


def convert_torchvision_resnet(state_dict: Mapping[str, torch.Tensor], deep_stem: bool = True
                               ) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """torchvision ResNet keys -> FlexResNet keys. Returns (converted, skipped source keys)."""
    out: Dict[str, torch.Tensor] = {}
    skipped: List[str] = []
    for key, value in state_dict.items():
        if key.startswith("layer"):
            out[BOTTOM_UP + key] = value
        elif key.startswith(("conv1.", "bn1.")) and not deep_stem:
            index = "0" if key.startswith("conv1.") else "1"
            out[BOTTOM_UP + "stem." + index + key[key.index("."):]] = value
        else:  # fc.*, or the 7x7 stem when the model has a deep stem
            skipped.append(key)
    return out, skipped


_MMDET_RULES = [
    (re.compile(r"^neck\.(lateral_convs|fpn_convs)\.(\d+)\.conv\.(.+)$"), r"backbone.\1.\2.\3"),
    (re.compile(r"^backbone\.conv1\.(.+)$"), BOTTOM_UP + r"stem.0.\1"),
    (re.compile(r"^backbone\.(?:bn1|norm1)\.(.+)$"), BOTTOM_UP + r"stem.1.\1"),
    (re.compile(r"^backbone\.(.+)$"), BOTTOM_UP + r"\1"),
    (re.compile(r"^bbox_head\.(.+)$"), r"head.\1"),
]


def convert_mmdet_oscar(state_dict: Mapping[str, torch.Tensor]
                        ) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """Reference (mmdet) OSCAR keys -> Detectron2 OSCAR keys. Returns (converted, skipped)."""
    out: Dict[str, torch.Tensor] = {}
    skipped: List[str] = []
    for key, value in state_dict.items():
        for pattern, repl in _MMDET_RULES:
            if pattern.match(key):
                out[pattern.sub(repl, key)] = value
                break
        else:
            skipped.append(key)
    return out, skipped
