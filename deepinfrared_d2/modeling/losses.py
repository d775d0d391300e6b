"""Loss functions shared by the dense detectors (OSCAR spec 6.1, mmdet 2.x semantics), all
evaluated in float32, and the positive-count normaliser.

- ``sigmoid_focal_loss``: mmdet's focal loss (per element, unreduced).
- ``diou_loss``: 1 - (IoU - rho^2 / c^2) per box pair.
- ``reduce_mean`` / ``num_pos_normaliser``: averages over the processes of a distributed run.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F

__all__ = ["sigmoid_focal_loss", "diou_loss", "reduce_mean", "num_pos_normaliser",
           "LOG_FLT_MIN"]

# log(FLT_MIN): the reference clamps the probabilities of log(p), log(1 - p) at FLT_MIN.
LOG_FLT_MIN = float(torch.log(torch.tensor(torch.finfo(torch.float32).tiny)))


def sigmoid_focal_loss(logits: torch.Tensor, targets: torch.Tensor, gamma: float,
                       alpha: float) -> torch.Tensor:
    """Per-element sigmoid focal loss.

    target 1: -alpha (1 - p)^gamma log p;  target 0: -(1 - alpha) p^gamma log(1 - p),
    p = sigmoid(x),
    with log arguments clamped at FLT_MIN (computed stably via log-sigmoid).

    Args:
        logits: (...,) any float dtype (cast to float32).
        targets: same shape, 0/1 floats.
    Returns:
        float32 tensor of the same shape.
    """
    x = logits.float()
    t = targets.float()
    p = torch.sigmoid(x)
    log_p = F.logsigmoid(x).clamp(min=LOG_FLT_MIN)
    log_not_p = F.logsigmoid(-x).clamp(min=LOG_FLT_MIN)
    pos = -alpha * (1 - p).pow(gamma) * log_p
    neg = -(1 - alpha) * p.pow(gamma) * log_not_p
    return t * pos + (1 - t) * neg


def diou_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Distance-IoU loss per box pair.

    Args:
        pred, target: (N, 4) XYXY boxes in pixels.
    Returns:
        (N,) float32 losses, 1 - (IoU - rho^2 / c^2), in [0, 2).
    """
    p = pred.float()
    t = target.float()
    lt = torch.max(p[:, :2], t[:, :2])
    rb = torch.min(p[:, 2:], t[:, 2:])
    inter_wh = (rb - lt).clamp(min=0)
    inter = inter_wh[:, 0] * inter_wh[:, 1]
    area_p = (p[:, 2] - p[:, 0]) * (p[:, 3] - p[:, 1])
    area_t = (t[:, 2] - t[:, 0]) * (t[:, 3] - t[:, 1])
    iou = inter / (area_p + area_t - inter + eps)
    enclose_wh = (torch.max(p[:, 2:], t[:, 2:]) - torch.min(p[:, :2], t[:, :2])).clamp(min=0)
    c2 = enclose_wh[:, 0] ** 2 + enclose_wh[:, 1] ** 2 + eps
    rho2 = (((t[:, 0] + t[:, 2]) - (p[:, 0] + p[:, 2])) ** 2 / 4
            + ((t[:, 1] + t[:, 3]) - (p[:, 1] + p[:, 3])) ** 2 / 4)
    return 1 - (iou - rho2 / c2)


def reduce_mean(value: torch.Tensor) -> torch.Tensor:
    """A scalar tensor averaged over the processes of a distributed run (itself otherwise)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        value = value.clone()
        dist.all_reduce(value)
        value = value / dist.get_world_size()
    return value


def num_pos_normaliser(positive: torch.Tensor) -> float:
    """max(number of positives in the batch, averaged over processes, 1.0)."""
    return max(float(reduce_mean(positive.sum().float())), 1.0)
