"""``MMDetRPN``: Detectron2's RPN whose low-quality matches need a minimum IoU, as mmdet's
``MaxIoUAssigner(min_pos_iou=...)`` of the Faster R-CNN baseline (OSCAR spec 8.3).

Detectron2's RPN makes the best anchors of *every* GT positive, however low their IoU; mmdet
does so only when that IoU reaches ``min_pos_iou`` (0.3 = the negative threshold in mmdet's
Faster R-CNN config). The difference matters for infrared targets of a few pixels, whose best
IoU with a 32-pixel anchor is far below 0.3: mmdet's RPN gets no positive for them (the RoI
head still learns them from the GT boxes appended to the proposals).
"""
from __future__ import annotations

import torch
from detectron2.layers import nonzero_tuple
from detectron2.modeling import PROPOSAL_GENERATOR_REGISTRY
from detectron2.modeling.matcher import Matcher
from detectron2.modeling.proposal_generator import RPN

__all__ = ["MinIoULowQualityMatcher", "MMDetRPN"]


class MinIoULowQualityMatcher(Matcher):
    """``Matcher`` whose low-quality matches (the best predictions of each GT, ties included)
    are made only for GTs whose best quality is >= ``low_quality_min``."""

    def __init__(self, thresholds, labels, low_quality_min: float):
        super().__init__(thresholds, labels, allow_low_quality_matches=True)
        self.low_quality_min = float(low_quality_min)

    def set_low_quality_matches_(self, match_labels: torch.Tensor,
                                 match_quality_matrix: torch.Tensor) -> None:
        highest, _ = match_quality_matrix.max(dim=1)
        best = (match_quality_matrix == highest[:, None]) & (
            highest[:, None] >= self.low_quality_min)
        _, pred_inds = nonzero_tuple(best)
        match_labels[pred_inds] = 1


@PROPOSAL_GENERATOR_REGISTRY.register()
class MMDetRPN(RPN):
    """``MODEL.PROPOSAL_GENERATOR.NAME = "MMDetRPN"``: low-quality matches need
    IoU >= ``MODEL.RPN.IOU_THRESHOLDS[0]`` (mmdet's ``min_pos_iou`` = ``neg_iou_thr``)."""

    @classmethod
    def from_config(cls, cfg, input_shape):
        ret = super().from_config(cfg, input_shape)
        ret["anchor_matcher"] = MinIoULowQualityMatcher(
            cfg.MODEL.RPN.IOU_THRESHOLDS, cfg.MODEL.RPN.IOU_LABELS,
            low_quality_min=cfg.MODEL.RPN.IOU_THRESHOLDS[0])
        return ret
