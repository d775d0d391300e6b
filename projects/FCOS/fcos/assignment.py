"""FCOS label assignment: RFLA's receptive-field hierarchical assignment with KLD similarity
(OSCAR spec 5.2) and vanilla FCOS's inside-the-box rule, and the FCOS targets (5.2.4).

Points are the concatenated grid points of all levels, (P, 2) (x, y) in network-input pixels;
a GT is an XYXY_ABS box of the network input. Every assigner returns, per image, the (P,)
int64 index of the GT each point is positive for, -1 for background (RFLA's "negative" and
"ignore" states both end up as background in the head, spec 5.2.3 step 3).
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import torch

__all__ = ["receptive_field_boxes", "kld_similarity", "rank_assign", "shrink_boxes_",
           "hierarchical_assign", "rfla_assign", "fcos_assign", "fcos_targets", "RFLA_MODES"]

RFLA_MODES = ("faithful", "clean")


def receptive_field_boxes(points: torch.Tensor, sides: torch.Tensor) -> torch.Tensor:
    """The square "rf box" of each point: (P, 2) centres, (P,) sides -> (P, 4) XYXY."""
    half = sides[:, None] / 2
    return torch.cat([points - half, points + half], dim=1)


def kld_similarity(gt_boxes: torch.Tensor, boxes: torch.Tensor, eps: float = 1e-6
                   ) -> torch.Tensor:
    """1 / (1 + KL) between every GT and every box (spec 5.2.2): (n, 4), (P, 4) -> (n, P).

    KL = [(w2/w1)^2 + (h2/h1)^2 + 4 dx^2/w1^2 + 4 dy^2/h1^2 + ln(w1^2/w2^2) + ln(h1^2/h2^2) - 2]/2
    with (w1, h1) the GT's and (w2, h2) the box's size (``eps`` added to each), d the offset
    between their centres: the KL divergence from the box's Gaussian to the GT's.
    """
    g = gt_boxes.float()[:, None, :]
    b = boxes.float()[None, :, :]
    dx = (g[..., 0] + g[..., 2]) / 2 - (b[..., 0] + b[..., 2]) / 2
    dy = (g[..., 1] + g[..., 3]) / 2 - (b[..., 1] + b[..., 3]) / 2
    w1 = g[..., 2] - g[..., 0] + eps
    h1 = g[..., 3] - g[..., 1] + eps
    w2 = b[..., 2] - b[..., 0] + eps
    h2 = b[..., 3] - b[..., 1] + eps
    kl = (w2 ** 2 / w1 ** 2 + h2 ** 2 / h1 ** 2 + 4 * dx ** 2 / w1 ** 2 + 4 * dy ** 2 / h1 ** 2
          + torch.log(w1 ** 2 / w2 ** 2) + torch.log(h1 ** 2 / h2 ** 2) - 2) / 2
    return 1 / (1 + kl)


def rank_assign(similarity: torch.Tensor, k: int) -> torch.Tensor:
    """One ranking stage (spec 5.2.3 step 1): for each GT i in index order, every point whose
    similarity equals one of GT i's k largest values becomes positive for i (ties give more
    than k positives; a later GT overwrites an earlier one).

    Args:
        similarity: (n, P), n >= 1.
    Returns:
        (P,) int64 GT index, -1 where no GT claims the point.
    """
    n, num_points = similarity.shape
    kth = similarity.topk(min(k, num_points), dim=1).values[:, -1]  # k-th largest per GT
    claims = similarity >= kth[:, None]  # == "equals one of the top-k values"
    order = torch.arange(1, n + 1, device=similarity.device)[:, None]
    return (claims * order).max(dim=0).values - 1  # the last claiming GT wins


def shrink_boxes_(boxes: torch.Tensor, ratio: float) -> torch.Tensor:
    """Scale (P, 4) boxes about their centres by ``ratio``, in place, with the reference's
    arithmetic (centre and size recomputed from the current corners)."""
    cx = (boxes[:, 2] + boxes[:, 0]) / 2
    cy = (boxes[:, 3] + boxes[:, 1]) / 2
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    boxes[:, 0] = cx - w * ratio / 2
    boxes[:, 1] = cy - h * ratio / 2
    boxes[:, 2] = cx + w * ratio / 2
    boxes[:, 3] = cy + h * ratio / 2
    return boxes


def hierarchical_assign(gt_boxes: torch.Tensor, rf_boxes: torch.Tensor,
                        topk: Sequence[int], ratio: float) -> torch.Tensor:
    """RFLA's two stages for one image (spec 5.2.3): rank on ``rf_boxes`` with k1, shrink
    ``rf_boxes`` **in place** by ``ratio``, rank again with k2; stage 2 decides the points
    stage 1 left without a GT.

    Args:
        gt_boxes: (n, 4), n >= 1; rf_boxes: (P, 4), modified in place.
    Returns:
        (P,) int64 GT index or -1.
    """
    first = rank_assign(kld_similarity(gt_boxes, rf_boxes), topk[0])
    second = rank_assign(kld_similarity(gt_boxes, shrink_boxes_(rf_boxes, ratio)), topk[1])
    return torch.where(first >= 0, first, second)


def rfla_assign(points: torch.Tensor, sides: torch.Tensor, gt_boxes: Sequence[torch.Tensor],
                topk: Sequence[int], ratio: float, mode: str = "faithful"
                ) -> List[torch.Tensor]:
    """RFLA assignment of a batch.

    Args:
        points: (P, 2) points of all levels; sides: (P,) rf-box side of each point's level.
        gt_boxes: per image, (n_i, 4) GT boxes.
        mode: "faithful": the rf boxes are built once and shared by the batch, so every image
            with GT shrinks them further (the k-th such image ranks on sides x ratio^k, then
            ratio^(k+1)); images without GT are skipped. "clean": fresh rf boxes per image.
    Returns:
        per image, (P,) int64 GT index or -1.
    """
    if mode not in RFLA_MODES:
        raise ValueError(f"MODEL.FCOS.RFLA.MODE must be one of {RFLA_MODES}, got {mode!r}")
    shared = receptive_field_boxes(points, sides)
    matched = []
    for boxes in gt_boxes:
        if boxes.numel() == 0:
            matched.append(torch.full((points.shape[0],), -1, dtype=torch.long,
                                      device=points.device))
            continue
        rf = shared if mode == "faithful" else receptive_field_boxes(points, sides)
        matched.append(hierarchical_assign(boxes, rf, topk, ratio))
    return matched


def fcos_assign(points: torch.Tensor, regress_ranges: torch.Tensor, gt_boxes: torch.Tensor
                ) -> torch.Tensor:
    """Vanilla FCOS (mmdet, no centre sampling) for one image: a point is positive for the
    smallest-area GT (lowest index on ties) that contains it strictly and whose largest
    distance from it lies in the point's range [lo, hi] (pixels).

    Args:
        points: (P, 2); regress_ranges: (P, 2) (lo, hi) of each point's level;
        gt_boxes: (n, 4).
    Returns:
        (P,) int64 GT index or -1.
    """
    if gt_boxes.numel() == 0:
        return torch.full((points.shape[0],), -1, dtype=torch.long, device=points.device)
    g = gt_boxes.float()[None]
    x, y = points[:, 0:1], points[:, 1:2]
    dists = torch.stack([x - g[..., 0], y - g[..., 1], g[..., 2] - x, g[..., 3] - y], dim=2)
    inside = dists.min(dim=2).values > 0  # (P, n)
    largest = dists.max(dim=2).values
    in_range = (largest >= regress_ranges[:, 0:1]) & (largest <= regress_ranges[:, 1:2])
    area = ((g[..., 2] - g[..., 0]) * (g[..., 3] - g[..., 1])).expand_as(largest)
    area = torch.where(inside & in_range, area, torch.full_like(area, float("inf")))
    best_area, best = area.min(dim=1)
    return torch.where(torch.isinf(best_area), torch.full_like(best, -1), best)


def fcos_targets(points: torch.Tensor, strides: torch.Tensor, gt_boxes: torch.Tensor,
                 matched: torch.Tensor, norm_on_bbox: bool, centerness_clamp: float
                 ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Regression and centerness targets of the positive points (spec 5.2.4).

    Args:
        points: (P, 2); strides: (P,) each point's level stride; gt_boxes: (n, 4);
        matched: (P,) GT index or -1.
    Returns:
        distances (N_pos, 4) (l, t, r, b) to the matched GT's box, divided by the stride with
        ``norm_on_bbox`` (negative for a point outside its GT), and centerness (N_pos,)
        sqrt(max(min(l, r), c) / max(l, r) * max(min(t, b), c) / max(t, b)), c the clamp.
    """
    pos = matched >= 0
    p = points[pos]
    g = gt_boxes.float()[matched[pos]]
    dists = torch.stack([p[:, 0] - g[:, 0], p[:, 1] - g[:, 1], g[:, 2] - p[:, 0],
                         g[:, 3] - p[:, 1]], dim=1)
    if norm_on_bbox:
        dists = dists / strides[pos][:, None]
    lr, tb = dists[:, 0::2], dists[:, 1::2]
    centerness = ((lr.min(dim=1).values.clamp(min=centerness_clamp) / lr.max(dim=1).values)
                  * (tb.min(dim=1).values.clamp(min=centerness_clamp) / tb.max(dim=1).values))
    return dists, centerness.sqrt()
