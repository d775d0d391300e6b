"""OSCAR inference: box decoding, fused scoring and NMS for one image (spec 7.2)."""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from detectron2.layers import batched_nms
from detectron2.structures import Boxes, Instances

__all__ = ["decode_distances", "upsample_to_refine", "oscar_detections"]


def decode_distances(points: torch.Tensor, dists: torch.Tensor) -> torch.Tensor:
    """Points (P, 2) (x, y) and distances (..., P, 4) (l, t, r, b) -> boxes (..., P, 4) XYXY:
    (x - l, y - t, x + r, y + b), no clipping."""
    return torch.cat([points - dists[..., :2], points + dists[..., 2:]], dim=-1)


def upsample_to_refine(coarse_map: torch.Tensor, refine_size: Tuple[int, int]) -> torch.Tensor:
    """(B, C, Hc, Wc) -> (B, C, Hr, Wr) with nearest-exact resizing (the parent coarse cell of
    refine cell (i, j) is (floor((i + 0.5) Hc / Hr), floor((j + 0.5) Wc / Wr)))."""
    return F.interpolate(coarse_map, size=tuple(refine_size), mode="nearest-exact")


def oscar_detections(refine_logits: torch.Tensor, refine_deltas: torch.Tensor,
                     noco_logits: torch.Tensor, coarse_logits_up: torch.Tensor,
                     anchors: torch.Tensor, refine_stride: float,
                     image_size: Tuple[int, int], original_size: Tuple[int, int],
                     score_thresh: float, nms_pre: int, nms_thresh: float,
                     max_per_image: int) -> Instances:
    """Detections of one image in original-image pixels.

    Args:
        refine_logits: (K, Hr, Wr) modulated refine logits z_r'.
        refine_deltas: (4, Hr, Wr) corner offsets in units of ``refine_stride``.
        noco_logits: (1, Hr, Wr) NoCo logits q.
        coarse_logits_up: (K, Hr, Wr) coarse logits z_c' of each refine cell's parent cell.
        anchors: (4, Hr, Wr) decoded coarse boxes of each refine cell's parent cell (pixels).
        image_size: (h, w) of the resized, unpadded network input.
        original_size: (h, w) of the image as stored on disk.
        score_thresh: candidates need refine probability > score_thresh (strict).
        nms_pre: candidates kept (highest refine probability first) before NMS.
        nms_thresh: IoU above which a lower-scored box is suppressed.
        max_per_image: detections kept after NMS.
    Returns:
        ``Instances(image_size=original_size)`` with ``pred_boxes`` (Boxes, XYXY_ABS, original
        pixels), ``scores`` (float32 in [0, 1], the fused score p_r * p_c * p_noco) and
        ``pred_classes``, sorted by decreasing score. As in the reference, boxes are only
        clipped: an (untrained) offset can give x2 < x1; the metric uses box centres.
    """
    num_classes = refine_logits.shape[0]
    refine_prob = refine_logits.float().sigmoid().permute(1, 2, 0).reshape(-1)  # (Hr*Wr*K,)
    factor = (coarse_logits_up.float().sigmoid() * noco_logits.float().sigmoid())
    factor = factor.permute(1, 2, 0).reshape(-1)
    keep = torch.nonzero(refine_prob > score_thresh).squeeze(1)
    cand_prob = refine_prob[keep]
    order = torch.argsort(cand_prob, descending=True)[:nms_pre]
    keep, cand_prob = keep[order], cand_prob[order]
    cells = torch.div(keep, num_classes, rounding_mode="floor")
    classes = keep % num_classes

    flat_anchors = anchors.float().permute(1, 2, 0).reshape(-1, 4)[cells]
    flat_deltas = refine_deltas.float().permute(1, 2, 0).reshape(-1, 4)[cells]
    boxes = flat_anchors + refine_stride * flat_deltas
    h, w = int(image_size[0]), int(image_size[1])
    boxes[:, 0::2] = boxes[:, 0::2].clamp(min=0, max=w)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(min=0, max=h)
    orig_h, orig_w = int(original_size[0]), int(original_size[1])
    scale = torch.tensor([w / orig_w, h / orig_h, w / orig_w, h / orig_h], dtype=torch.float32,
                         device=boxes.device)
    boxes = boxes / scale
    scores = cand_prob * factor[keep]

    kept = batched_nms(boxes, scores, classes, nms_thresh)[:max_per_image]
    result = Instances((orig_h, orig_w))
    result.pred_boxes = Boxes(boxes[kept])
    result.scores = scores[kept]
    result.pred_classes = classes[kept]
    return result
