"""All-scale pseudo-box label assignment of OSCAR (spec 5.1).

Every GT box is assigned at both levels. A point is positive for a GT when it lies strictly
inside the GT's *pseudo box* (the GT itself if its area exceeds side^2, else the side x side
square centred on it); among several such GTs the one with the smallest original area wins
(ties: lowest index). Coordinates are XYXY_ABS pixels of the network input (after resize/flip).
"""
from __future__ import annotations

from typing import List, NamedTuple, Sequence, Tuple

import torch

__all__ = ["pseudo_boxes", "assign_points", "assign_level", "LevelTargets"]


def pseudo_boxes(gt_boxes: torch.Tensor, side: float) -> torch.Tensor:
    """(n, 4) GT boxes -> (n, 4) pseudo boxes: the GT if area > side^2 (strict), otherwise the
    side x side square centred on the GT centre."""
    wh = gt_boxes[:, 2:] - gt_boxes[:, :2]
    area = wh[:, 0] * wh[:, 1]
    centre = (gt_boxes[:, :2] + gt_boxes[:, 2:]) / 2
    half = side / 2
    square = torch.cat([centre - half, centre + half], dim=1)
    return torch.where((area > side * side)[:, None], gt_boxes, square)


def assign_points(points: torch.Tensor, gt_boxes: torch.Tensor, side: float) -> torch.Tensor:
    """Index of the GT each point is assigned to, -1 for background.

    Args:
        points: (P, 2) point coordinates (x, y) in pixels.
        gt_boxes: (n, 4) XYXY_ABS GT boxes in pixels (annotation order).
        side: pseudo-box side length L in pixels.
    Returns:
        (P,) int64 in [-1, n).
    """
    num_points = points.shape[0]
    if gt_boxes.numel() == 0:
        return torch.full((num_points,), -1, dtype=torch.long, device=points.device)
    boxes = pseudo_boxes(gt_boxes, side)
    x, y = points[:, 0:1], points[:, 1:2]  # (P, 1)
    inside = ((x - boxes[None, :, 0] > 0) & (y - boxes[None, :, 1] > 0)
              & (boxes[None, :, 2] - x > 0) & (boxes[None, :, 3] - y > 0))  # (P, n)
    wh = gt_boxes[:, 2:] - gt_boxes[:, :2]
    area = (wh[:, 0] * wh[:, 1])[None, :].expand(num_points, -1)
    area = torch.where(inside, area, torch.full_like(area, float("inf")))
    best_area, best = area.min(dim=1)  # first minimum on ties -> lowest GT index
    return torch.where(torch.isinf(best_area), torch.full_like(best, -1), best)


class LevelTargets(NamedTuple):
    """Targets of one level for a batch.

    labels: (B, P) int64, class index for positives, ``num_classes`` for background.
    matched: (B, P) int64, the assigned GT index within its image, -1 for background.
    boxes: (B, P, 4) float32 regression target box per point (zeros for background): the
        pseudo box (coarse level) or the GT box (refine level).
    """

    labels: torch.Tensor
    matched: torch.Tensor
    boxes: torch.Tensor


def assign_level(points: torch.Tensor, gt_boxes: Sequence[torch.Tensor],
                 gt_classes: Sequence[torch.Tensor], side: float, num_classes: int,
                 regress_pseudo_box: bool) -> LevelTargets:
    """Assign one level's points for every image of a batch.

    Args:
        points: (P, 2) grid points of the (padded) feature map.
        gt_boxes / gt_classes: per image, (n_i, 4) float boxes and (n_i,) int64 classes.
        side: pseudo-box side L (coarse: s_c, refine: s_r * stride_ratio).
        regress_pseudo_box: regression target = pseudo box (coarse) instead of GT (refine).
    """
    labels: List[torch.Tensor] = []
    matched: List[torch.Tensor] = []
    boxes: List[torch.Tensor] = []
    for img_boxes, img_classes in zip(gt_boxes, gt_classes):
        img_boxes = img_boxes.to(device=points.device, dtype=torch.float32)
        idx = assign_points(points, img_boxes, side)
        pos = idx >= 0
        safe = idx.clamp(min=0)
        if img_boxes.numel() == 0:
            target_boxes = torch.zeros((points.shape[0], 4), device=points.device)
            lab = torch.full_like(idx, num_classes)
        else:
            source = pseudo_boxes(img_boxes, side) if regress_pseudo_box else img_boxes
            target_boxes = torch.where(pos[:, None], source[safe], torch.zeros_like(source[safe]))
            lab = torch.where(pos, img_classes.to(points.device)[safe],
                              torch.full_like(idx, num_classes))
        labels.append(lab)
        matched.append(idx)
        boxes.append(target_boxes)
    return LevelTargets(torch.stack(labels), torch.stack(matched), torch.stack(boxes))


def level_sides(refine_stride: float, coarse_stride: float, stride_ratio: float,
                coarse_side_ratio: float = 1.0) -> Tuple[float, float]:
    """Pseudo-box sides (refine L = s_r * stride_ratio, coarse L = s_c * coarse_side_ratio)."""
    return refine_stride * stride_ratio, coarse_stride * coarse_side_ratio
