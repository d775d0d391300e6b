"""ONNX export of Detectron2's own dense meta-architecture, RetinaNet, which has no
``export_forward``: an adapter with the export interface of ``onnx_export``.

The graph holds the dense part and Detectron2's per-level candidate selection (the
``TOPK_CANDIDATES_TEST`` best (anchor, class) pairs per level; the score threshold is applied
by ``cell_detections``, which gives the same set), decoded boxes and sigmoid scores as a
(1, ., 1, N) grid; ``cell_detections(..., clip_after_nms=True)`` then does what
``RetinaNet.inference_single_image`` + ``detector_postprocess`` do (class-wise NMS on unclipped
boxes, rescale, clip, drop empty boxes). ``tools/export_model.py --check-dataset`` compares
the two on a split.
"""
from __future__ import annotations

from typing import Dict, Tuple

import torch
from detectron2.modeling.meta_arch.retinanet import RetinaNet, permute_to_N_HWA_K
from torch import nn

from ..modeling.postprocess import top_count

__all__ = ["RetinaNetExport"]


class RetinaNetExport(nn.Module):
    """Detectron2's ``RetinaNet`` (its weights and settings) behind the export interface."""

    def __init__(self, model: RetinaNet):
        super().__init__()
        self.model = model

    @property
    def backbone(self) -> nn.Module:
        return self.model.backbone

    @property
    def pixel_mean(self) -> torch.Tensor:
        return self.model.pixel_mean

    @property
    def pixel_std(self) -> torch.Tensor:
        return self.model.pixel_std

    def export_forward(self, images: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """One normalised, padded image (1, 3, H, W) -> boxes (1, 4, 1, N) XYXY in input
        pixels, scores (1, K, 1, N) (each candidate's class, zero elsewhere), ones (1, K, 1, N)."""
        m = self.model
        features = m.backbone(images)
        features = [features[f] for f in m.head_in_features]
        logits, deltas = m.head(features)
        classes = torch.arange(m.num_classes, device=images.device)
        boxes, scores = [], []
        for logit, delta, anchors in zip(logits, deltas, m.anchor_generator(features)):
            prob = permute_to_N_HWA_K(logit, m.num_classes)[0].sigmoid().flatten()  # (HWA*K,)
            top, idx = prob.topk(top_count(prob, m.test_topk_candidates))
            anchor, cls = idx // m.num_classes, idx % m.num_classes
            boxes.append(m.box2box_transform.apply_deltas(
                permute_to_N_HWA_K(delta, 4)[0][anchor], anchors.tensor[anchor]))
            scores.append((cls[:, None] == classes[None]).to(top.dtype) * top[:, None])
        score = torch.cat(scores).t()[None, :, None]
        return torch.cat(boxes).t()[None, :, None], score, torch.ones_like(score)

    def postprocess_params(self) -> Dict[str, float]:
        """``cell_detections`` keywords: RetinaNet's test settings (candidates already cut per
        level, so ``nms_pre`` keeps them all) and Detectron2's clipping order."""
        m = self.model
        return {"score_thresh": m.test_score_thresh,
                "nms_pre": m.test_topk_candidates * len(m.head_in_features),
                "nms_thresh": m.test_nms_thresh, "max_per_image": m.max_detections_per_image,
                "clip_after_nms": True}
