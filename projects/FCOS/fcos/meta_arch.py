"""The FCOS meta-architecture: backbone + FPN (P3-P7) -> shared FCOS head, with RFLA or
vanilla FCOS assignment (OSCAR spec 5.2, 6.3, 7.5, 8.2)."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from detectron2.config import CfgNode, configurable
from detectron2.modeling import META_ARCH_REGISTRY, Backbone, build_backbone
from detectron2.structures import ImageList, Instances

from deepinfrared_d2.modeling.common import DenseDetector, log_scalars
from deepinfrared_d2.modeling.losses import (
    diou_loss,
    num_pos_normaliser,
    reduce_mean,
    sigmoid_focal_loss,
)
from deepinfrared_d2.modeling.postprocess import (
    decode_distances,
    grid_points,
    top_count,
)

from .assignment import RFLA_MODES, fcos_assign, fcos_targets, rfla_assign
from .head import FCOSHead, FCOSHeadOutputs

__all__ = ["FCOS"]

ASSIGNERS = ("rfla", "fcos")


@META_ARCH_REGISTRY.register()
class FCOS(DenseDetector):
    """FCOS / FCOS-RFLA (``MODEL.META_ARCHITECTURE = "FCOS"``), mmdet 2.x semantics.

    Input: Detectron2 batched inputs, each ``{"image": (3, H, W) uint8 tensor in INPUT.FORMAT,
    "height", "width" (original size), "instances" (training: gt_boxes XYXY_ABS in input
    pixels, gt_classes)}``. Output: training -> ``{"loss_cls", "loss_bbox",
    "loss_centerness"}``; inference -> ``[{"instances": Instances}]`` in original pixels.
    """

    @configurable
    def __init__(self, *, backbone: Backbone, head: FCOSHead, head_in_features: Sequence[str],
                 strides: Sequence[int], pixel_mean: Sequence[float],
                 pixel_std: Sequence[float], num_classes: int, assigner: str,
                 regress_ranges: Sequence[Sequence[float]], rf_sides: Sequence[float],
                 rfla_topk: Sequence[int], rfla_ratio: float, rfla_mode: str,
                 centerness_clamp: float, focal_gamma: float, focal_alpha: float,
                 cls_weight: float, bbox_weight: float, centerness_weight: float,
                 diou_eps: float, test_nms_pre: int, test_score_thresh: float,
                 test_nms_thresh: float, test_max_per_image: int):
        super().__init__(backbone, head, head_in_features, pixel_mean, pixel_std)
        if assigner not in ASSIGNERS:
            raise ValueError(f"MODEL.FCOS.ASSIGNER must be one of {ASSIGNERS}, got {assigner!r}")
        if rfla_mode not in RFLA_MODES:
            raise ValueError(f"MODEL.FCOS.RFLA.MODE must be one of {RFLA_MODES}, got "
                             f"{rfla_mode!r}")
        num_levels = len(head_in_features)
        for name, values in (("STRIDES", strides), ("REGRESS_RANGES", regress_ranges),
                             ("RFLA.TRF", rf_sides)):
            if len(values) != num_levels:
                raise ValueError(f"MODEL.FCOS.{name} needs one value per level of "
                                 f"IN_FEATURES {list(head_in_features)}, got {list(values)}")
        self.strides = [int(s) for s in strides]
        self.num_classes = num_classes
        self.assigner = assigner
        self.regress_ranges = [tuple(float(v) for v in r) for r in regress_ranges]
        self.rf_sides = [float(s) for s in rf_sides]
        self.rfla_topk = [int(k) for k in rfla_topk]
        self.rfla_ratio = rfla_ratio
        self.rfla_mode = rfla_mode
        self.centerness_clamp = centerness_clamp
        self.focal_gamma = focal_gamma
        self.focal_alpha = focal_alpha
        self.cls_weight = cls_weight
        self.bbox_weight = bbox_weight
        self.centerness_weight = centerness_weight
        self.diou_eps = diou_eps
        self.test_nms_pre = test_nms_pre
        self.test_score_thresh = test_score_thresh
        self.test_nms_thresh = test_nms_thresh
        self.test_max_per_image = test_max_per_image

    @classmethod
    def from_config(cls, cfg: CfgNode) -> Dict:
        f = cfg.MODEL.FCOS
        backbone = build_backbone(cfg)
        shapes = backbone.output_shape()
        missing = [name for name in f.IN_FEATURES if name not in shapes]
        if missing:
            raise ValueError(f"MODEL.FCOS.IN_FEATURES {missing} are not backbone outputs "
                             f"({list(shapes)})")
        channels = {shapes[name].channels for name in f.IN_FEATURES}
        if len(channels) != 1:
            raise ValueError("the FCOS head needs FPN levels of one width")
        head = FCOSHead(in_channels=channels.pop(), num_levels=len(f.IN_FEATURES),
                        feat_channels=f.FEAT_CHANNELS, num_classes=f.NUM_CLASSES,
                        stacked_convs=f.STACKED_CONVS, norm=f.NORM, gn_groups=f.GN_GROUPS,
                        init_std=f.HEAD_INIT_STD, prior_prob=f.PRIOR_PROB,
                        centerness_on_reg=f.CENTERNESS_ON_REG, norm_on_bbox=f.NORM_ON_BBOX)
        return {
            "backbone": backbone, "head": head, "head_in_features": f.IN_FEATURES,
            "strides": [shapes[name].stride for name in f.IN_FEATURES],
            "pixel_mean": cfg.MODEL.PIXEL_MEAN, "pixel_std": cfg.MODEL.PIXEL_STD,
            "num_classes": f.NUM_CLASSES, "assigner": f.ASSIGNER,
            "regress_ranges": f.REGRESS_RANGES,
            "rf_sides": [t * f.RFLA.FRACTION for t in f.RFLA.TRF],
            "rfla_topk": f.RFLA.TOPK, "rfla_ratio": f.RFLA.RATIO, "rfla_mode": f.RFLA.MODE,
            "centerness_clamp": f.CENTERNESS_CLAMP, "focal_gamma": f.FOCAL_LOSS_GAMMA,
            "focal_alpha": f.FOCAL_LOSS_ALPHA, "cls_weight": f.CLS_WEIGHT,
            "bbox_weight": f.BBOX_WEIGHT, "centerness_weight": f.CENTERNESS_WEIGHT,
            "diou_eps": f.DIOU_EPS, "test_nms_pre": f.TEST_NMS_PRE,
            "test_score_thresh": f.TEST_SCORE_THRESH, "test_nms_thresh": f.TEST_NMS_THRESH,
            "test_max_per_image": f.TEST_MAX_PER_IMAGE,
        }

    # ------------------------------------------------------------------ forward
    def forward_dense(self, images: torch.Tensor) -> FCOSHeadOutputs:
        """Dense part (backbone + FPN + head) on normalised, padded images (B, 3, H, W)."""
        features = self.backbone(images)
        return self.head([features[name] for name in self.head_in_features])

    def forward(self, batched_inputs: List[Dict]):
        images = self.preprocess_image(batched_inputs)
        outputs = self.forward_dense(images.tensor)
        if self.training:
            gt_instances = [x["instances"].to(self.device) for x in batched_inputs]
            return self.losses(outputs, gt_instances)
        return self.inference(outputs, images, batched_inputs)

    def level_points(self, outputs: FCOSHeadOutputs) -> List[torch.Tensor]:
        """Grid points of every level, [(H_l * W_l, 2)] (x, y) in input pixels."""
        return [grid_points(*logits.shape[-2:], stride, device=logits.device)
                for logits, stride in zip(outputs.cls_logits, self.strides)]

    # ------------------------------------------------------------------ training
    @staticmethod
    def per_point(points: List[torch.Tensor], values: Sequence) -> torch.Tensor:
        """One value (or row) per level, repeated for each of the level's points: (P, ...)."""
        sizes = torch.tensor([len(p) for p in points], device=points[0].device)
        return torch.repeat_interleave(points[0].new_tensor(values), sizes, dim=0)

    def assign(self, points: List[torch.Tensor], gt_boxes: List[torch.Tensor]
               ) -> List[torch.Tensor]:
        """Per image, the (P,) GT index of every point of all levels (-1: background)."""
        flat = torch.cat(points)
        if self.assigner == "rfla":
            return rfla_assign(flat, self.per_point(points, self.rf_sides), gt_boxes,
                               self.rfla_topk, self.rfla_ratio, self.rfla_mode)
        ranges = self.per_point(points, self.regress_ranges)
        return [fcos_assign(flat, ranges, boxes) for boxes in gt_boxes]

    def assign_targets(self, points: List[torch.Tensor], gt_boxes: List[torch.Tensor]
                       ) -> Tuple[List[torch.Tensor], List[torch.Tensor], List[torch.Tensor]]:
        """Per image: the GT index of every point (``assign``), then the positives' distance
        targets (M, 4) and centerness targets (M,) (``fcos_targets``)."""
        matched = self.assign(points, gt_boxes)
        flat, strides = torch.cat(points), self.per_point(points, self.strides)
        dists, ctrs = zip(*[fcos_targets(flat, strides, boxes, m, self.head.norm_on_bbox,
                                         self.centerness_clamp)
                            for boxes, m in zip(gt_boxes, matched)])
        return matched, list(dists), list(ctrs)

    def losses(self, outputs: FCOSHeadOutputs, gt_instances: List[Instances]
               ) -> Dict[str, torch.Tensor]:
        """Focal, centerness-weighted DIoU and centerness BCE losses (spec 6.3), float32."""
        points = self.level_points(outputs)
        flat_points = torch.cat(points)
        gt_boxes = [inst.gt_boxes.tensor.float() for inst in gt_instances]
        matched, dist_targets, ctr_targets = self.assign_targets(points, gt_boxes)

        def flatten(maps: List[torch.Tensor]) -> torch.Tensor:  # -> (B, P, C)
            return torch.cat([m.permute(0, 2, 3, 1).reshape(m.shape[0], -1, m.shape[1])
                              for m in maps], dim=1)

        cls_logits = flatten(outputs.cls_logits)
        bbox_dists = flatten(outputs.bbox_dists)
        centerness = flatten(outputs.centerness)[..., 0]
        labels = torch.stack([
            torch.where(m >= 0, inst.gt_classes[m.clamp(min=0)] if len(inst) else m,
                        torch.full_like(m, self.num_classes))
            for m, inst in zip(matched, gt_instances)])
        positive = labels != self.num_classes
        targets = F.one_hot(labels, self.num_classes + 1)[..., : self.num_classes]
        num_pos = num_pos_normaliser(positive)
        loss_cls = sigmoid_focal_loss(cls_logits, targets, self.focal_gamma,
                                      self.focal_alpha).sum() / num_pos

        dist_targets, ctr_targets = torch.cat(dist_targets), torch.cat(ctr_targets)
        pos_points = flat_points.expand(len(gt_instances), -1, -1)[positive]
        pos_dists = bbox_dists[positive]
        pos_centerness = centerness[positive].float()
        if pos_dists.shape[0] == 0:  # no positive: zero losses, still on the graph
            loss_bbox, loss_centerness = pos_dists.sum(), pos_centerness.sum()
        else:
            # mmdet's convention: stride-unit distances decoded around pixel points
            ious = diou_loss(decode_distances(pos_points, pos_dists),
                             decode_distances(pos_points, dist_targets), self.diou_eps)
            denorm = max(float(reduce_mean(ctr_targets.sum().detach())), 1e-6)
            loss_bbox = (ious * ctr_targets).sum() / denorm
            loss_centerness = F.binary_cross_entropy_with_logits(
                pos_centerness, ctr_targets, reduction="sum") / num_pos
        log_scalars("fcos", {"num_pos": float(positive.sum())})
        return {"loss_cls": self.cls_weight * loss_cls,
                "loss_bbox": self.bbox_weight * loss_bbox,
                "loss_centerness": self.centerness_weight * loss_centerness}

    # ------------------------------------------------------------------ inference
    def image_candidates(self, outputs: FCOSHeadOutputs, i: int
                         ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Image ``i``'s candidates (spec 7.5): per level the ``TEST_NMS_PRE`` best points by
        p * c (all of a smaller level), boxes point +- distances, as a (., 1, N) grid of cells
        for ``cell_detections``: boxes (4, 1, N) in padded-input pixels, probabilities
        (K, 1, N) and centerness (K, 1, N), float32 even when the network ran under autocast."""
        boxes, probs, ctrs = [], [], []
        for level, (pts, stride) in enumerate(zip(self.level_points(outputs), self.strides)):
            prob = outputs.cls_logits[level][i].float().sigmoid().flatten(1).t()  # (P, K)
            ctr = outputs.centerness[level][i].float().sigmoid().flatten()
            dists = outputs.bbox_dists[level][i].float().flatten(1).t()
            if self.head.norm_on_bbox:
                dists = dists * stride
            k = top_count(prob, self.test_nms_pre)
            top = (prob * ctr[:, None]).max(dim=1).values.topk(k).indices  # best first
            prob, ctr, dists, pts = prob[top], ctr[top], dists[top], pts[top]
            boxes.append(decode_distances(pts, dists))
            probs.append(prob)
            ctrs.append(ctr)
        prob = torch.cat(probs).t()[:, None]
        return (torch.cat(boxes).t()[:, None], prob,
                torch.cat(ctrs)[None, None].expand(prob.shape))

    def export_forward(self, images: torch.Tensor,
                       image_size: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, ...]:
        """Dense part + candidates of one normalised, padded image (1, 3, H, W): what ONNX
        export keeps in the graph (``deepinfrared_d2.deploy.onnx_export``); (1, ., 1, N).
        ``image_size`` is not needed (boxes are clipped in ``cell_detections``)."""
        return tuple(t[None] for t in self.image_candidates(self.forward_dense(images), 0))

    def postprocess_params(self) -> Dict[str, float]:
        """Keyword arguments of ``cell_detections`` besides the arrays and sizes: the
        candidates are already cut per level, so ``nms_pre`` keeps them all."""
        return {"score_thresh": self.test_score_thresh,
                "nms_pre": self.test_nms_pre * len(self.strides),
                "nms_thresh": self.test_nms_thresh, "max_per_image": self.test_max_per_image}

    def inference(self, outputs: FCOSHeadOutputs, images: ImageList,
                  batched_inputs: List[Dict]) -> List[Dict[str, Instances]]:
        """Per image: ``image_candidates``, then the NumPy post-processor OSCAR and exported
        models share (``cell_detections``): p > ``TEST_SCORE_THRESH``, score p * c, clip,
        rescale, NMS."""
        return self.detections(([t.cpu().numpy() for t in self.image_candidates(outputs, i)]
                                for i in range(len(batched_inputs))), images, batched_inputs)
