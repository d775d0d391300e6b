"""OSCAR's NoCo loss (spec 6.1, 6.2), evaluated in float32: ``reg_quality_focal_loss``,
BCE-with-logits times |sigmoid(q) - t|^beta (continuous target). The focal and DIoU losses are
shared with the other dense detectors (``deepinfrared_d2.modeling.losses``)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["reg_quality_focal_loss"]


def reg_quality_focal_loss(logits: torch.Tensor, targets: torch.Tensor,
                           beta: float) -> torch.Tensor:
    """"RegQualityFocalLoss" per element: BCEWithLogits(q, t) * |sigmoid(q) - t|^beta.

    The modulating factor is not detached (gradients flow through it).

    Args:
        logits: (...,) NoCo logits q.
        targets: same shape, continuous targets in [0, 1).
    Returns:
        float32 tensor of the same shape.
    """
    q = logits.float()
    t = targets.float()
    bce = F.binary_cross_entropy_with_logits(q, t, reduction="none")
    return bce * (torch.sigmoid(q) - t).abs().pow(beta)
