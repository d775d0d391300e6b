"""Optimizer builder: Detectron2's SGD, or AdamW on all parameters with uniform decay."""
from __future__ import annotations

import torch
from detectron2.config import CfgNode
from detectron2.solver import build_optimizer as d2_build_optimizer
from detectron2.solver.build import maybe_add_gradient_clipping


def build_optimizer(cfg: CfgNode, model: torch.nn.Module) -> torch.optim.Optimizer:
    """``SOLVER.OPTIMIZER``: "SGD" (Detectron2's builder) or "AdamW".

    AdamW follows OSCAR spec 8.1: one parameter group (norm affine and biases included),
    decoupled weight decay ``SOLVER.WEIGHT_DECAY``, ``SOLVER.BETAS``, ``SOLVER.EPS``. Gradient
    clipping follows ``SOLVER.CLIP_GRADIENTS`` for either optimizer.
    """
    name = cfg.SOLVER.OPTIMIZER
    if name == "SGD":
        return d2_build_optimizer(cfg, model)
    if name != "AdamW":
        raise ValueError(f"SOLVER.OPTIMIZER must be 'SGD' or 'AdamW', got {name!r}")
    params = [p for p in model.parameters() if p.requires_grad]
    optim_cls = maybe_add_gradient_clipping(cfg, torch.optim.AdamW)
    return optim_cls(params, lr=cfg.SOLVER.BASE_LR, betas=tuple(cfg.SOLVER.BETAS),
                     eps=cfg.SOLVER.EPS, weight_decay=cfg.SOLVER.WEIGHT_DECAY)
