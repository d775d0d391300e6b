#!/usr/bin/env python3
"""GFLOPs of the heads of Detectron2's R-CNN and RetinaNet, which ``tools/benchmark_models.py``
leaves out (without a ``forward_dense`` it counts the backbone: ResNet + FPN).

    python projects/Detectron2Baselines/head_gflops.py \
        --config-file projects/Detectron2Baselines/configs/faster_rcnn_R50_FPN_1x.yaml

mmcv conventions (``deepinfrared_d2.utils.flops``) on a zero image of ``--input-size``:
RetinaNet: its head on every level; Faster R-CNN: the RPN head on every level and the RoI box
head (pooling not counted, FC layers and predictors) on ``--proposals`` boxes, 1000 as mmdet's
``forward_dummy`` counts it.
"""
from __future__ import annotations

import argparse
import sys

import torch
from detectron2.modeling import build_model
from detectron2.structures import Boxes
from torch import nn

import deepinfrared_d2  # noqa: F401  (registers the datasets)
from deepinfrared_d2.config import get_cfg
from deepinfrared_d2.utils.flops import count_gflops


class Flat(nn.Module):
    """Runs ``fn(*inputs)`` and returns its tensors as one flat tuple (traceable)."""

    def __init__(self, model: nn.Module, fn):
        super().__init__()
        self.model = model
        self.fn = fn

    def forward(self, *inputs):
        def flatten(x):
            if isinstance(x, torch.Tensor):
                return [x]
            return [t for item in x for t in flatten(item)]

        return tuple(flatten(self.fn(*inputs)))


def head_gflops(model: nn.Module, size, proposals: int) -> dict:
    """{"backbone": ..., head parts ...} GFLOPs of ``model`` (eval) at input ``size`` (H, W)."""
    image = torch.zeros((1, 3) + tuple(size))
    features = model.backbone(image)
    out = {"backbone": count_gflops(Flat(model, lambda x: model.backbone(x).values()), (image,))}
    if hasattr(model, "head"):  # RetinaNet
        feats = [features[f] for f in model.head_in_features]
        out["head"] = count_gflops(Flat(model, lambda *f: model.head(list(f))), tuple(feats))
        return out
    rpn = model.proposal_generator
    feats = [features[f] for f in rpn.in_features]
    out["rpn_head"] = count_gflops(Flat(model, lambda *f: rpn.rpn_head(list(f))), tuple(feats))
    heads = model.roi_heads
    feats = [features[f] for f in heads.box_in_features]
    h, w = size
    xy = torch.rand(proposals, 2) * torch.tensor([w / 2, h / 2])
    boxes = torch.cat([xy, xy + torch.tensor([w / 2, h / 2])], dim=1)

    def box_head(*f):
        pooled = heads.box_pooler(list(f), [Boxes(boxes)])
        return heads.box_predictor(heads.box_head(pooled))

    out["roi_box_head"] = count_gflops(Flat(model, box_head), tuple(feats))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--input-size", nargs=2, type=int, default=(512, 512),
                        metavar=("H", "W"))
    parser.add_argument("--proposals", type=int, default=1000)
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ...")
    args = parser.parse_args(argv)
    cfg = get_cfg(args.config_file, args.opts + ["MODEL.DEVICE", "cpu"])
    model = build_model(cfg).eval()
    with torch.no_grad():
        parts = head_gflops(model, args.input_size, args.proposals)
    for name, value in {**parts, "total": sum(parts.values())}.items():
        print(f"{name:16s} {value:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
