"""The OSCAR meta-architecture: backbone + FlexFPN (P2, P3) -> cascade head (spec 4-7)."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from detectron2.config import CfgNode, configurable
from detectron2.modeling import META_ARCH_REGISTRY, Backbone, build_backbone
from detectron2.structures import ImageList, Instances

from deepinfrared_d2.modeling.common import DenseDetector, log_scalars
from deepinfrared_d2.modeling.losses import diou_loss, num_pos_normaliser, sigmoid_focal_loss
from deepinfrared_d2.modeling.postprocess import (
    decode_distances,
    grid_points,
)

from .assignment import assign_level, level_sides
from .head import OSCARHead, OSCARHeadOutputs
from .losses import reg_quality_focal_loss
from .postprocess import dense_cells, upsample_to_refine

__all__ = ["OSCAR"]


@META_ARCH_REGISTRY.register()
class OSCAR(DenseDetector):
    """One-stage cascade refinement network (``MODEL.META_ARCHITECTURE = "OSCAR"``).

    Input: Detectron2 batched inputs, each ``{"image": (3, H, W) uint8 tensor in INPUT.FORMAT,
    "height", "width" (original size), "instances" (training: gt_boxes XYXY_ABS in input
    pixels, gt_classes), "noco_map" (training: float32 (H, W) NoCo target)}``.
    Output: training -> dict of the five losses; inference -> ``[{"instances": Instances}]``
    with boxes in original-image pixels.
    """

    @configurable
    def __init__(self, *, backbone: Backbone, head: OSCARHead, head_in_features: Sequence[str],
                 refine_stride: int, coarse_stride: int, pixel_mean: Sequence[float],
                 pixel_std: Sequence[float], num_classes: int, stride_ratio: float,
                 coarse_side_ratio: float, focal_gamma: float, focal_alpha: float,
                 coarse_cls_weight: float, refine_cls_weight: float, coarse_bbox_weight: float,
                 refine_bbox_weight: float, diou_eps: float, noco_beta: float,
                 noco_weight: float, test_score_thresh: float, test_nms_pre: int,
                 test_nms_thresh: float, test_max_per_image: int):
        super().__init__(backbone, head, head_in_features, pixel_mean, pixel_std)
        if refine_stride > coarse_stride:
            raise ValueError(f"OSCAR needs refine stride <= coarse stride, got {refine_stride} > "
                             f"{coarse_stride}")
        self.refine_stride = refine_stride
        self.coarse_stride = coarse_stride
        self.num_classes = num_classes
        self.refine_side, self.coarse_side = level_sides(refine_stride, coarse_stride,
                                                         stride_ratio, coarse_side_ratio)
        self.focal_gamma = focal_gamma
        self.focal_alpha = focal_alpha
        self.coarse_cls_weight = coarse_cls_weight
        self.refine_cls_weight = refine_cls_weight
        self.coarse_bbox_weight = coarse_bbox_weight
        self.refine_bbox_weight = refine_bbox_weight
        self.diou_eps = diou_eps
        self.noco_beta = noco_beta
        self.noco_weight = noco_weight
        self.test_score_thresh = test_score_thresh
        self.test_nms_pre = test_nms_pre
        self.test_nms_thresh = test_nms_thresh
        self.test_max_per_image = test_max_per_image

    @classmethod
    def from_config(cls, cfg: CfgNode) -> Dict:
        o = cfg.MODEL.OSCAR
        backbone = build_backbone(cfg)
        shapes = backbone.output_shape()
        missing = [f for f in o.IN_FEATURES if f not in shapes]
        if len(o.IN_FEATURES) != 2 or missing:
            raise ValueError(f"MODEL.OSCAR.IN_FEATURES must name the (refine, coarse) backbone "
                             f"outputs, got {list(o.IN_FEATURES)}; the backbone gives "
                             f"{list(shapes)}")
        refine, coarse = (shapes[f] for f in o.IN_FEATURES)
        if [refine.stride, coarse.stride] != list(o.STRIDES):
            raise ValueError(f"MODEL.OSCAR.STRIDES={list(o.STRIDES)} but the backbone gives "
                             f"strides {[refine.stride, coarse.stride]} for {list(o.IN_FEATURES)}")
        if refine.channels != coarse.channels:
            raise ValueError("the refine and coarse features must have the same width")
        head = OSCARHead(in_channels=refine.channels, feat_channels=o.FEAT_CHANNELS,
                         num_classes=o.NUM_CLASSES, stacked_convs=o.STACKED_CONVS, norm=o.NORM,
                         gn_groups=o.GN_GROUPS, init_std=o.HEAD_INIT_STD,
                         scale_init=o.SCALE_INIT)
        return {
            "backbone": backbone, "head": head, "head_in_features": o.IN_FEATURES,
            "refine_stride": refine.stride, "coarse_stride": coarse.stride,
            "pixel_mean": cfg.MODEL.PIXEL_MEAN, "pixel_std": cfg.MODEL.PIXEL_STD,
            "num_classes": o.NUM_CLASSES, "stride_ratio": o.STRIDE_RATIO,
            "coarse_side_ratio": o.COARSE_SIDE_RATIO, "focal_gamma": o.FOCAL_LOSS_GAMMA,
            "focal_alpha": o.FOCAL_LOSS_ALPHA, "coarse_cls_weight": o.COARSE_CLS_WEIGHT,
            "refine_cls_weight": o.REFINE_CLS_WEIGHT, "coarse_bbox_weight": o.COARSE_BBOX_WEIGHT,
            "refine_bbox_weight": o.REFINE_BBOX_WEIGHT, "diou_eps": o.DIOU_EPS,
            "noco_beta": o.NOCO_LOSS_BETA, "noco_weight": o.NOCO_LOSS_WEIGHT,
            "test_score_thresh": o.TEST_SCORE_THRESH, "test_nms_pre": o.TEST_NMS_PRE,
            "test_nms_thresh": o.TEST_NMS_THRESH, "test_max_per_image": o.TEST_MAX_PER_IMAGE,
        }

    # ------------------------------------------------------------------ forward
    def forward_dense(self, images: torch.Tensor) -> OSCARHeadOutputs:
        """Dense part (backbone + neck + head) on normalised, padded images (B, 3, H, W)."""
        features = self.backbone(images)
        refine_feat, coarse_feat = (features[f] for f in self.head_in_features)
        return self.head(refine_feat, coarse_feat)

    def forward(self, batched_inputs: List[Dict]):
        images = self.preprocess_image(batched_inputs)
        outputs = self.forward_dense(images.tensor)
        if self.training:
            gt_instances = [x["instances"].to(self.device) for x in batched_inputs]
            noco = self.preprocess_noco_maps(batched_inputs, images)
            return self.losses(outputs, gt_instances, noco)
        return self.inference(outputs, images, batched_inputs)

    def preprocess_noco_maps(self, batched_inputs: List[Dict], images: ImageList) -> torch.Tensor:
        """NoCo targets padded with 0 like the images: (B, 1, Hpad, Wpad) float32."""
        maps = [x["noco_map"].to(self.device).float()[None] for x in batched_inputs]
        padded = ImageList.from_tensors(maps, self.backbone.size_divisibility, pad_value=0.0)
        if padded.tensor.shape[-2:] != images.tensor.shape[-2:]:
            raise ValueError(f"noco_map sizes {[m.shape[-2:] for m in maps]} do not match the "
                             f"image sizes {images.image_sizes}")
        return padded.tensor

    # ------------------------------------------------------------------ training
    def coarse_points(self, outputs: OSCARHeadOutputs) -> torch.Tensor:
        hc, wc = outputs.coarse_logits.shape[-2:]
        return grid_points(hc, wc, self.coarse_stride, device=outputs.coarse_logits.device)

    def refine_points(self, outputs: OSCARHeadOutputs) -> torch.Tensor:
        hr, wr = outputs.refine_logits.shape[-2:]
        return grid_points(hr, wr, self.refine_stride, device=outputs.refine_logits.device)

    def decoded_anchors(self, outputs: OSCARHeadOutputs) -> torch.Tensor:
        """Decoded coarse boxes of every refine cell's parent coarse cell: (B, 4, Hr, Wr)."""
        b, _, hc, wc = outputs.coarse_dists.shape
        dists = outputs.coarse_dists.permute(0, 2, 3, 1).reshape(b, hc * wc, 4)
        boxes = decode_distances(self.coarse_points(outputs), dists)
        boxes = boxes.reshape(b, hc, wc, 4).permute(0, 3, 1, 2)
        return upsample_to_refine(boxes, outputs.refine_logits.shape[-2:])

    def losses(self, outputs: OSCARHeadOutputs, gt_instances: List[Instances],
               noco_maps: torch.Tensor) -> Dict[str, torch.Tensor]:
        """The five OSCAR losses (spec 6.2), float32. noco_maps: (B, 1, Hpad, Wpad)."""
        gt_boxes = [inst.gt_boxes.tensor for inst in gt_instances]
        gt_classes = [inst.gt_classes for inst in gt_instances]
        b, k, hr, wr = outputs.refine_logits.shape
        num_classes = self.num_classes

        # ---- coarse level: focal loss on all points, DIoU to the pseudo box at positives
        coarse_points = self.coarse_points(outputs)
        coarse = assign_level(coarse_points, gt_boxes, gt_classes, self.coarse_side,
                              num_classes, regress_pseudo_box=True)
        coarse_logits = outputs.coarse_logits.permute(0, 2, 3, 1).reshape(b, -1, k)
        coarse_pos = coarse.labels != num_classes
        coarse_norm = num_pos_normaliser(coarse_pos)
        loss_coarse_cls = self._focal(coarse_logits, coarse.labels).sum() / coarse_norm
        coarse_dists = outputs.coarse_dists.permute(0, 2, 3, 1).reshape(b, -1, 4)
        coarse_boxes = decode_distances(coarse_points, coarse_dists)
        loss_coarse_bbox = self._diou_mean(coarse_boxes[coarse_pos], coarse.boxes[coarse_pos])

        # ---- refine level: anchors = parent coarse predictions (not detached)
        refine = assign_level(self.refine_points(outputs), gt_boxes, gt_classes,
                              self.refine_side, num_classes, regress_pseudo_box=False)
        refine_logits = outputs.refine_logits.permute(0, 2, 3, 1).reshape(b, -1, k)
        refine_pos = refine.labels != num_classes
        refine_norm = num_pos_normaliser(refine_pos)
        loss_refine_cls = self._focal(refine_logits, refine.labels).sum() / refine_norm
        anchors = self.decoded_anchors(outputs).permute(0, 2, 3, 1).reshape(b, -1, 4)
        deltas = outputs.refine_deltas.permute(0, 2, 3, 1).reshape(b, -1, 4)
        pos_anchors = anchors[refine_pos]
        refine_boxes = pos_anchors + self.refine_stride * deltas[refine_pos]
        # Target a + s_r (g - a) / s_r, as the reference encodes/decodes it (zero net gradient).
        fixed = pos_anchors.detach()
        refine_targets = fixed + self.refine_stride * (
            (refine.boxes[refine_pos] - fixed) / self.refine_stride)
        loss_refine_bbox = self._diou_mean(refine_boxes, refine_targets)

        # ---- NoCo: every refine cell, target sampled at the refine point (nearest-exact)
        noco_targets = F.interpolate(noco_maps.float(), size=(hr, wr), mode="nearest-exact")
        loss_noco = reg_quality_focal_loss(outputs.noco_logits, noco_targets,
                                           self.noco_beta).mean()

        log_scalars("oscar", {"coarse_num_pos": float(coarse_pos.sum()),
                              "refine_num_pos": float(refine_pos.sum())})
        return {
            "loss_coarse_cls": self.coarse_cls_weight * loss_coarse_cls,
            "loss_coarse_bbox": self.coarse_bbox_weight * loss_coarse_bbox,
            "loss_refine_cls": self.refine_cls_weight * loss_refine_cls,
            "loss_refine_bbox": self.refine_bbox_weight * loss_refine_bbox,
            "loss_refine_noco": self.noco_weight * loss_noco,
        }

    def _focal(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """logits (B, P, K), labels (B, P) with K = background -> per-element focal loss."""
        targets = F.one_hot(labels, self.num_classes + 1)[..., : self.num_classes]
        return sigmoid_focal_loss(logits, targets, self.focal_gamma, self.focal_alpha)

    def _diou_mean(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if pred.shape[0] == 0:
            return pred.float().sum()  # no positive: 0, still connected to the graph
        return diou_loss(pred, target, self.diou_eps).mean()

    # ------------------------------------------------------------------ inference
    def dense_detections(self, outputs: OSCARHeadOutputs) -> Tuple[torch.Tensor, ...]:
        """Per refine cell, float32: boxes (B, 4, Hr, Wr) in padded-input pixels, refine
        probability (B, K, Hr, Wr), score factor (B, K, Hr, Wr) (spec 7.2 steps 1-3, 5, 7)."""
        outputs = OSCARHeadOutputs(*(t.float() for t in outputs))
        coarse_up = upsample_to_refine(outputs.coarse_logits, outputs.refine_logits.shape[-2:])
        return dense_cells(outputs.refine_logits, outputs.refine_deltas, outputs.noco_logits,
                           coarse_up, self.decoded_anchors(outputs), self.refine_stride)

    def export_forward(self, images: torch.Tensor,
                       image_size: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, ...]:
        """Dense part + per-cell decoding on normalised, padded images (B, 3, H, W): what ONNX
        export keeps in the graph (``deepinfrared_d2.deploy.onnx_export``). ``image_size`` is
        not needed (boxes are clipped in ``cell_detections``)."""
        return self.dense_detections(self.forward_dense(images))

    def postprocess_params(self) -> Dict[str, float]:
        """Keyword arguments of ``cell_detections`` besides the arrays and sizes."""
        return {"score_thresh": self.test_score_thresh, "nms_pre": self.test_nms_pre,
                "nms_thresh": self.test_nms_thresh, "max_per_image": self.test_max_per_image}

    def inference(self, outputs: OSCARHeadOutputs, images: ImageList,
                  batched_inputs: List[Dict]) -> List[Dict[str, Instances]]:
        """Per image: candidates on refine probability, boxes a + s_r * delta clipped to the
        resized image and rescaled to the original size, fused score, NMS (spec 7.2), in the
        NumPy post-processor shared with exported models. Decoding runs in float32 even when
        the network ran under autocast (spec 7.4)."""
        cells = [t.cpu().numpy() for t in self.dense_detections(outputs)]
        return self.detections(([c[i] for c in cells] for i in range(len(batched_inputs))),
                               images, batched_inputs)
