"""Learning-rate schedules (fvcore ``ParamScheduler`` wrapped by Detectron2's ``LRMultiplier``)."""
from __future__ import annotations

import torch
from detectron2.config import CfgNode
from detectron2.solver import build_lr_scheduler as d2_build_lr_scheduler
from detectron2.solver.lr_scheduler import LRMultiplier
from fvcore.common.param_scheduler import ParamScheduler


class EpochPolyWarmupScheduler(ParamScheduler):
    """Per-epoch poly decay times a per-iteration linear warmup (OSCAR spec 8.1).

    For 0-based iteration t and epoch e = t // epoch_iters (of ``num_epochs``):
    ``poly(e) = (1 - e / num_epochs) ** power * (1 - min_ratio) + min_ratio`` and, while
    t < warmup_iters, the multiplier is
    ``poly(e) * (1 - (1 - t / warmup_iters) * (1 - warmup_factor))``.
    The multiplier scales the base LR, so the paper's ``0.002 * (1 - e/12)`` is reproduced.
    """

    def __init__(self, max_iter: int, epoch_iters: int, power: float = 1.0,
                 warmup_iters: int = 0, warmup_factor: float = 1.0, min_ratio: float = 0.0):
        if max_iter <= 0 or epoch_iters <= 0:
            raise ValueError(f"max_iter ({max_iter}) and epoch_iters ({epoch_iters}) must be > 0")
        self.max_iter = max_iter
        self.epoch_iters = epoch_iters
        self.num_epochs = -(-max_iter // epoch_iters)  # ceil
        self.power = power
        self.warmup_iters = warmup_iters
        self.warmup_factor = warmup_factor
        self.min_ratio = min_ratio

    def value_at_iter(self, t: int) -> float:
        """Multiplier of the base LR at 0-based iteration ``t``."""
        epoch = min(t // self.epoch_iters, self.num_epochs - 1)
        value = (1.0 - epoch / self.num_epochs) ** self.power
        value = value * (1.0 - self.min_ratio) + self.min_ratio
        if t < self.warmup_iters:
            value *= 1.0 - (1.0 - t / self.warmup_iters) * (1.0 - self.warmup_factor)
        return value

    def __call__(self, where: float) -> float:
        return self.value_at_iter(int(round(where * self.max_iter)))


def build_lr_scheduler(cfg: CfgNode, optimizer: torch.optim.Optimizer):
    """Detectron2's schedulers plus ``SOLVER.LR_SCHEDULER_NAME = "EpochPolyWarmup"``."""
    s = cfg.SOLVER
    if s.LR_SCHEDULER_NAME != "EpochPolyWarmup":
        return d2_build_lr_scheduler(cfg, optimizer)
    if s.WARMUP_METHOD != "linear":
        raise ValueError("EpochPolyWarmup supports WARMUP_METHOD 'linear', got "
                         f"{s.WARMUP_METHOD!r}")
    sched = EpochPolyWarmupScheduler(
        max_iter=s.MAX_ITER,
        epoch_iters=s.EPOCH_ITERS or s.MAX_ITER,
        power=s.POLY_POWER,
        warmup_iters=s.WARMUP_ITERS,
        warmup_factor=s.WARMUP_FACTOR,
        min_ratio=s.POLY_MIN_LR / s.BASE_LR if s.BASE_LR > 0 else 0.0,
    )
    return LRMultiplier(optimizer, multiplier=sched, max_iter=s.MAX_ITER)
