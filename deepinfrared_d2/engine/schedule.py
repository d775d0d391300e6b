"""Learning-rate schedules (fvcore ``ParamScheduler`` wrapped by Detectron2's ``LRMultiplier``).

Both schedules here follow mmcv: the warmup multiplies the *current* regular value (Detectron2's
``WarmupParamScheduler`` scales the value at iteration 0, so it ignores a decay step taken
during the warmup).
"""
from __future__ import annotations

from typing import Sequence

import torch
from detectron2.config import CfgNode
from detectron2.solver import build_lr_scheduler as d2_build_lr_scheduler
from detectron2.solver.lr_scheduler import LRMultiplier
from fvcore.common.param_scheduler import ParamScheduler

WARMUP_METHODS = ("linear", "constant")


def warmup_multiplier(t: int, warmup_iters: int, warmup_factor: float, method: str) -> float:
    """mmcv's warmup at 0-based iteration ``t``: 1 from ``warmup_iters`` on; before, "linear"
    ``1 - (1 - t / warmup_iters) (1 - warmup_factor)``, "constant" ``warmup_factor``."""
    if t >= warmup_iters:
        return 1.0
    if method == "constant":
        return warmup_factor
    return 1.0 - (1.0 - t / warmup_iters) * (1.0 - warmup_factor)


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
        return value * warmup_multiplier(t, self.warmup_iters, self.warmup_factor, "linear")

    def __call__(self, where: float) -> float:
        return self.value_at_iter(int(round(where * self.max_iter)))


class MultiStepWarmupScheduler(ParamScheduler):
    """``gamma ** (number of steps <= t)`` times mmcv's warmup (OSCAR spec 8.2, 8.3).

    E.g. FCOS-RFLA: steps (4616, 6347), gamma 0.1, constant warmup 1/3 over 5000 iterations:
    1/3 until 4615, 0.1/3 from 4616 to 4999 (the warmup spills into epoch 9), 0.1 until 6346,
    then 0.01.
    """

    def __init__(self, max_iter: int, steps: Sequence[int], gamma: float, warmup_iters: int = 0,
                 warmup_factor: float = 1.0, warmup_method: str = "linear"):
        if max_iter <= 0:
            raise ValueError(f"max_iter must be > 0, got {max_iter}")
        if warmup_method not in WARMUP_METHODS:
            raise ValueError(f"WARMUP_METHOD must be one of {WARMUP_METHODS}, got "
                             f"{warmup_method!r}")
        self.max_iter = max_iter
        self.steps = sorted(int(s) for s in steps)
        self.gamma = gamma
        self.warmup_iters = warmup_iters
        self.warmup_factor = warmup_factor
        self.warmup_method = warmup_method

    def value_at_iter(self, t: int) -> float:
        """Multiplier of the base LR at 0-based iteration ``t``."""
        value = self.gamma ** sum(t >= s for s in self.steps)
        return value * warmup_multiplier(t, self.warmup_iters, self.warmup_factor,
                                         self.warmup_method)

    def __call__(self, where: float) -> float:
        return self.value_at_iter(int(round(where * self.max_iter)))


def build_lr_scheduler(cfg: CfgNode, optimizer: torch.optim.Optimizer):
    """Detectron2's schedulers plus ``SOLVER.LR_SCHEDULER_NAME`` "EpochPolyWarmup" and
    "MultiStepWarmup"."""
    s = cfg.SOLVER
    if s.LR_SCHEDULER_NAME == "MultiStepWarmup":
        sched = MultiStepWarmupScheduler(
            max_iter=s.MAX_ITER, steps=s.STEPS, gamma=s.GAMMA, warmup_iters=s.WARMUP_ITERS,
            warmup_factor=s.WARMUP_FACTOR, warmup_method=s.WARMUP_METHOD)
        return LRMultiplier(optimizer, multiplier=sched, max_iter=s.MAX_ITER)
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
