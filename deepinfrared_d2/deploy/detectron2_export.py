"""ONNX export of Detectron2's own meta-architectures, which have no ``export_forward``:
adapters with the export interface of ``onnx_export`` for RetinaNet and Faster R-CNN.

Each graph ends in a list of candidates, a (1, ., 1, N) grid of decoded boxes and class
probabilities; ``cell_detections`` then does the rest of Detectron2's test-time
post-processing (score threshold, class-wise NMS, ``detector_postprocess``'s rescale, clip and
dropping of empty boxes) in Detectron2's order (``clip="after_nms"`` for RetinaNet, ``"both"``
for Faster R-CNN). ``tools/export_model.py --check-dataset`` compares the two on a split.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from detectron2.modeling.meta_arch.rcnn import GeneralizedRCNN
from detectron2.modeling.meta_arch.retinanet import permute_to_N_HWA_K
from detectron2.modeling.proposal_generator import RPN
from detectron2.modeling.roi_heads import StandardROIHeads
from detectron2.structures import Boxes
from torch import nn
from torchvision.ops import nms

from ..modeling.postprocess import top_count

__all__ = ["RCNNExport", "RetinaNetExport"]


class _Detectron2Export(nn.Module):
    """A Detectron2 model (its weights and settings) with the attributes ``ExportGraph`` reads."""

    def __init__(self, model: nn.Module):
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


class RetinaNetExport(_Detectron2Export):
    """Detectron2's ``RetinaNet`` behind the export interface."""

    def export_forward(self, images: torch.Tensor, image_size: Optional[torch.Tensor] = None
                       ) -> Tuple[torch.Tensor, ...]:
        """One normalised, padded image (1, 3, H, W) -> boxes (1, 4, 1, N) XYXY in input
        pixels (unclipped: ``image_size`` is not needed), scores (1, K, 1, N) (each candidate's
        class, zero elsewhere), ones (1, K, 1, N)."""
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
                "clip": "after_nms"}


class RCNNExport(_Detectron2Export):
    """Detectron2's Faster R-CNN (``GeneralizedRCNN`` with an ``RPN`` and
    ``StandardROIHeads``, no mask or keypoint head) behind the export interface.

    The graph holds what ``RPN.forward`` + ``find_top_rpn_proposals`` and
    ``StandardROIHeads._forward_box`` do at test time: per-level top-``PRE_NMS_TOPK_TEST``
    objectness, decoding, clipping to the image, dropping empty boxes, NMS per level (one
    ``torchvision.ops.nms`` per level: Detectron2's ``batched_nms`` on the CPU), the best
    ``POST_NMS_TOPK_TEST`` proposals, multi-level RoIAlign (Detectron2's ``ROIPooler``), the box
    head, softmax and box decoding. Each (proposal, class) pair is one output cell;
    ``cell_detections(..., clip="both")`` does ``fast_rcnn_inference`` + ``detector_postprocess``.
    """

    def __init__(self, model: GeneralizedRCNN):
        problems = [what for what, bad in (
            ("a proposal generator other than Detectron2's RPN",
             not isinstance(model.proposal_generator, RPN)),
            ("RoI heads other than StandardROIHeads",
             type(model.roi_heads) is not StandardROIHeads),
            ("a mask or keypoint head", getattr(model.roi_heads, "mask_on", False)
             or getattr(model.roi_heads, "keypoint_on", False))) if bad]
        if problems:
            raise TypeError(f"{type(model).__name__} cannot be exported to ONNX: it has "
                            + " and ".join(problems) + " (only Faster R-CNN is supported)")
        super().__init__(model)

    def export_forward(self, images: torch.Tensor, image_size: torch.Tensor
                       ) -> Tuple[torch.Tensor, ...]:
        """One normalised, padded image (1, 3, H, W) and its unpadded (h, w) -> boxes
        (1, 4, 1, R*K) XYXY in input pixels (unclipped), scores (1, K, 1, R*K) (each cell's
        class probability, zero for the other classes), ones (1, K, 1, R*K)."""
        features = self.model.backbone(images)
        proposals = self.proposals(features, image_size)
        heads = self.model.roi_heads
        box_features = heads.box_pooler([features[f] for f in heads.box_in_features],
                                        [Boxes(proposals)])
        logits, deltas = heads.box_predictor(heads.box_head(box_features))
        prob = F.softmax(logits, dim=-1)[:, :-1]  # (R, K): the last column is background
        boxes = heads.box_predictor.box2box_transform.apply_deltas(deltas, proposals)
        num_classes = prob.shape[1]
        boxes = boxes.view(-1, boxes.shape[1] // 4, 4).expand(-1, num_classes, 4)
        one_hot = torch.eye(num_classes, dtype=prob.dtype, device=prob.device)
        score = (prob[:, :, None] * one_hot).reshape(-1, num_classes).t()[None, :, None]
        return boxes.reshape(-1, 4).t()[None, :, None], score, torch.ones_like(score)

    def proposals(self, features: Dict[str, torch.Tensor], image_size: torch.Tensor
                  ) -> torch.Tensor:
        """The RPN's test-time proposals of one image: (R, 4) XYXY, by decreasing objectness."""
        rpn = self.model.proposal_generator
        features = [features[f] for f in rpn.in_features]
        logits, deltas = rpn.rpn_head(features)
        limit = torch.stack([image_size[1], image_size[0]] * 2).to(features[0].dtype)
        boxes, scores = [], []
        for logit, delta, anchors in zip(logits, deltas, rpn.anchor_generator(features)):
            logit = logit[0].permute(1, 2, 0).flatten()  # (H*W*A,), RPN.forward's order
            delta = delta[0].view(-1, 4, *delta.shape[-2:]).permute(2, 3, 0, 1).reshape(-1, 4)
            top, idx = logit.topk(top_count(logit, rpn.pre_nms_topk[False]))
            box = rpn.box2box_transform.apply_deltas(delta[idx], anchors.tensor[idx])
            box = torch.minimum(torch.clamp(box, min=0), limit)
            side = box[:, 2:] - box[:, :2]
            nonempty = (side > rpn.min_box_size).all(dim=1)
            box, top = box[nonempty], top[nonempty]
            keep = nms(box, top, rpn.nms_thresh)
            boxes.append(box[keep])
            scores.append(top[keep])
        scores = torch.cat(scores)
        _, order = scores.topk(top_count(scores, rpn.post_nms_topk[False]))
        return torch.cat(boxes)[order]

    def postprocess_params(self) -> Dict[str, float]:
        """``cell_detections`` keywords: ``fast_rcnn_inference``'s test settings (every cell a
        candidate) and Detectron2's clipping (before NMS to the input, after it to the
        original image)."""
        predictor = self.model.roi_heads.box_predictor
        cells = self.model.proposal_generator.post_nms_topk[False] * predictor.num_classes
        return {"score_thresh": predictor.test_score_thresh, "nms_pre": cells,
                "nms_thresh": predictor.test_nms_thresh,
                "max_per_image": predictor.test_topk_per_image, "clip": "both"}
