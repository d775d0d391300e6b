"""OSCAR inference (spec 7.2): dense box decoding and scores per refine cell in PyTorch (the
part that ONNX export keeps in the graph), then candidate selection, clip, rescale and NMS by
the NumPy ``deepinfrared_d2.deploy.cell_detections`` shared with the exported models."""
from __future__ import annotations

from typing import Tuple

import torch
from detectron2.structures import Instances

from deepinfrared_d2.deploy.postprocess import cell_detections
from deepinfrared_d2.modeling.postprocess import detections_to_instances

__all__ = ["upsample_to_refine", "dense_cells", "oscar_detections"]


def upsample_to_refine(coarse_map: torch.Tensor, refine_size: Tuple[int, int]) -> torch.Tensor:
    """(B, C, Hc, Wc) -> (B, C, Hr, Wr) with nearest-exact resizing (the parent coarse cell of
    refine cell (i, j) is (floor((i + 0.5) Hc / Hr), floor((j + 0.5) Wc / Wr))).

    Computed as an exact integer gather (= ``F.interpolate(mode="nearest-exact")``), which
    ONNX export supports."""
    hc, wc = coarse_map.shape[-2:]
    hr, wr = refine_size
    device = coarse_map.device
    rows = (torch.arange(hr, device=device) * 2 + 1) * hc // (2 * hr)
    cols = (torch.arange(wr, device=device) * 2 + 1) * wc // (2 * wr)
    return coarse_map.index_select(-2, rows).index_select(-1, cols)


def oscar_detections(refine_logits: torch.Tensor, refine_deltas: torch.Tensor,
                     noco_logits: torch.Tensor, coarse_logits_up: torch.Tensor,
                     anchors: torch.Tensor, refine_stride: float,
                     image_size: Tuple[int, int], original_size: Tuple[int, int],
                     score_thresh: float, nms_pre: int, nms_thresh: float,
                     max_per_image: int) -> Instances:
    """Detections of one image in original-image pixels (spec 7.2).

    Args:
        refine_logits: (K, Hr, Wr) modulated refine logits z_r'.
        refine_deltas: (4, Hr, Wr) corner offsets in units of ``refine_stride``.
        noco_logits: (1, Hr, Wr) NoCo logits q.
        coarse_logits_up: (K, Hr, Wr) coarse logits z_c' of each refine cell's parent cell.
        anchors: (4, Hr, Wr) decoded coarse boxes of each refine cell's parent cell (pixels).
        image_size, original_size, score_thresh, nms_pre, nms_thresh, max_per_image: as in
            ``deepinfrared_d2.deploy.cell_detections``.
    Returns:
        ``Instances(image_size=original_size)`` with ``pred_boxes`` (Boxes, XYXY_ABS, original
        pixels), ``scores`` (float32 in [0, 1], the fused score p_r * p_c * p_noco) and
        ``pred_classes``, sorted by decreasing score. As in the reference, an offset can give
        x2 < x1 and NMS uses such boxes as given; the output boxes have sorted corners.
    """
    cells = dense_cells(refine_logits[None], refine_deltas[None], noco_logits[None],
                        coarse_logits_up[None], anchors[None], refine_stride)
    return detections_to_instances(*cell_detections(
        *(t[0].numpy() for t in cells), image_size=image_size, original_size=original_size,
        score_thresh=score_thresh, nms_pre=nms_pre, nms_thresh=nms_thresh,
        max_per_image=max_per_image), original_size=original_size)


def dense_cells(refine_logits: torch.Tensor, refine_deltas: torch.Tensor,
                noco_logits: torch.Tensor, coarse_logits_up: torch.Tensor,
                anchors: torch.Tensor, refine_stride: float
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per refine cell (spec 7.2 steps 1-3, 5, 7), float32, batched (B leading):
    boxes a + s_r * delta (B, 4, Hr, Wr) in input pixels, refine probability p_r (B, K, Hr, Wr)
    and score factor sigmoid(z_c' of the parent cell) * sigmoid(q) (B, K, Hr, Wr)."""
    boxes = anchors.float() + refine_stride * refine_deltas.float()
    factor = coarse_logits_up.float().sigmoid() * noco_logits.float().sigmoid()
    return boxes, refine_logits.float().sigmoid(), factor
