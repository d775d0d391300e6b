"""Batch norm with frozen statistics and a trainable affine part (mmdet's ``norm_eval=True``
with ``requires_grad=True``), as opposed to Detectron2's ``FrozenBN`` (affine frozen too)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["StatsFrozenBatchNorm2d", "freeze_bn_statistics"]


class StatsFrozenBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` that always normalises with its running statistics (never updates
    them); ``weight`` and ``bias`` stay trainable parameters."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            training=False, momentum=0.0, eps=self.eps)


def freeze_bn_statistics(module: nn.Module) -> nn.Module:
    """Replace every ``nn.BatchNorm2d`` below ``module`` (in place) by a
    ``StatsFrozenBatchNorm2d`` holding the same parameters and buffers; returns ``module``."""
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            frozen = StatsFrozenBatchNorm2d(child.num_features, eps=child.eps,
                                            affine=child.affine)
            frozen.load_state_dict(child.state_dict())
            setattr(module, name, frozen)
        else:
            freeze_bn_statistics(child)
    return module
