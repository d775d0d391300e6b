"""Optimizer builder: Detectron2's SGD, or AdamW on all parameters with uniform decay; gradient
clipping per parameter (Detectron2) or over the full model (mmcv)."""
from __future__ import annotations

from typing import Type

import torch
from detectron2.config import CfgNode
from detectron2.solver import get_default_optimizer_params
from detectron2.solver.build import (
    _generate_optimizer_class_with_gradient_clipping,
    maybe_add_gradient_clipping,
)

FULL_MODEL = "full_model"


def _with_clipping(cfg: CfgNode, optimizer: Type[torch.optim.Optimizer]
                   ) -> Type[torch.optim.Optimizer]:
    """``optimizer`` wrapped with ``SOLVER.CLIP_GRADIENTS`` (Detectron2's per-parameter types,
    or "full_model": one L2 norm over all gradients, clipped at ``CLIP_VALUE``)."""
    clip = cfg.SOLVER.CLIP_GRADIENTS
    if not (clip.ENABLED and clip.CLIP_TYPE == FULL_MODEL):
        return maybe_add_gradient_clipping(cfg, optimizer)
    max_norm, norm_type = float(clip.CLIP_VALUE), float(clip.NORM_TYPE)

    def clip_full_model(params) -> None:
        torch.nn.utils.clip_grad_norm_(list(params), max_norm, norm_type)

    return _generate_optimizer_class_with_gradient_clipping(optimizer,
                                                           global_clipper=clip_full_model)


def build_optimizer(cfg: CfgNode, model: torch.nn.Module) -> torch.optim.Optimizer:
    """``SOLVER.OPTIMIZER``: "SGD" or "AdamW", clipped as ``SOLVER.CLIP_GRADIENTS`` says.

    SGD is Detectron2's: parameter groups by ``BIAS_LR_FACTOR``, ``WEIGHT_DECAY_BIAS``,
    ``WEIGHT_DECAY_NORM``, with ``MOMENTUM`` and ``NESTEROV``. AdamW follows OSCAR spec 8.1:
    one parameter group (norm affine and biases included), decoupled weight decay
    ``SOLVER.WEIGHT_DECAY``, ``SOLVER.BETAS``, ``SOLVER.EPS``. ``CLIP_TYPE "full_model"`` is
    mmcv's ``grad_clip`` (FCOS-RFLA, spec 8.2).
    """
    s = cfg.SOLVER
    if s.OPTIMIZER == "SGD":
        params = get_default_optimizer_params(
            model, base_lr=s.BASE_LR, weight_decay_norm=s.WEIGHT_DECAY_NORM,
            bias_lr_factor=s.BIAS_LR_FACTOR, weight_decay_bias=s.WEIGHT_DECAY_BIAS)
        return _with_clipping(cfg, torch.optim.SGD)(
            params, lr=s.BASE_LR, momentum=s.MOMENTUM, nesterov=s.NESTEROV,
            weight_decay=s.WEIGHT_DECAY)
    if s.OPTIMIZER != "AdamW":
        raise ValueError(f"SOLVER.OPTIMIZER must be 'SGD' or 'AdamW', got {s.OPTIMIZER!r}")
    params = [p for p in model.parameters() if p.requires_grad]
    return _with_clipping(cfg, torch.optim.AdamW)(
        params, lr=s.BASE_LR, betas=tuple(s.BETAS), eps=s.EPS, weight_decay=s.WEIGHT_DECAY)
