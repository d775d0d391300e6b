#!/usr/bin/env python3
"""How many SIRST-V2 targets can an anchor config match? Best anchor IoU of every GT box.

    python projects/Detectron2Baselines/anchor_coverage.py \
        --config-file projects/Detectron2Baselines/configs/faster_rcnn_R50_FPN_1x.yaml
    python projects/Detectron2Baselines/anchor_coverage.py --config-file CFG --resize none

For every GT box of ``--dataset`` (after the config's training resize: keep-ratio or native
resolution, ``--resize`` overrides it) the best IoU over all anchors of the config's anchor
generator on the padded image; prints the median and the share of GT boxes whose best IoU
reaches each IoU threshold of the config (RPN or RetinaNet) and 0.1. A GT whose best IoU is
below the positive threshold only gets a low-quality match (Detectron2 always makes one;
``MMDetRPN`` only from the negative threshold on), or none.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
from detectron2.data import DatasetCatalog
from detectron2.layers import ShapeSpec
from detectron2.modeling.anchor_generator import build_anchor_generator
from detectron2.structures import Boxes, pairwise_iou
from tqdm import tqdm

import deepinfrared_d2  # noqa: F401  (registers the datasets)
from deepinfrared_d2.config import get_cfg
from deepinfrared_d2.data.transforms import keep_ratio_size


def best_ious(cfg, dataset: str, resize: str) -> torch.Tensor:
    """Best anchor IoU of every GT box of ``dataset``: (num_gt,) float32."""
    head = cfg.MODEL.RETINANET if cfg.MODEL.META_ARCHITECTURE == "RetinaNet" else cfg.MODEL.RPN
    strides = [2 ** int(name[1:]) for name in head.IN_FEATURES]  # "p3" -> 8
    generator = build_anchor_generator(cfg, [ShapeSpec(stride=s) for s in strides])
    best = []
    for record in tqdm(DatasetCatalog.get(dataset), desc="anchors", leave=False):
        if not record["annotations"]:
            continue
        h, w = record["height"], record["width"]
        new_h, new_w = keep_ratio_size(h, w, *cfg.INPUT.KEEP_RATIO_SCALE) if (
            resize == "keep_ratio") else (h, w)
        scale = torch.tensor([new_w / w, new_h / h] * 2, dtype=torch.float32)
        gt = torch.tensor([a["bbox"] for a in record["annotations"]], dtype=torch.float32)
        pad_h, pad_w = (-(-s // 32) * 32 for s in (new_h, new_w))
        features = [torch.zeros(1, 1, -(-pad_h // s), -(-pad_w // s)) for s in strides]
        anchors = Boxes.cat(generator(features))
        best.append(pairwise_iou(Boxes(gt * scale), anchors).max(dim=1).values)
    return torch.cat(best)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--dataset", default="sirst_v2_trainval_full")
    parser.add_argument("--resize", choices=("keep_ratio", "none"),
                        help="default: the config's INPUT.RESIZE_MODE_TRAIN")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ...")
    args = parser.parse_args(argv)
    cfg = get_cfg(args.config_file, args.opts)
    resize = args.resize or cfg.INPUT.RESIZE_MODE_TRAIN
    head = cfg.MODEL.RETINANET if cfg.MODEL.META_ARCHITECTURE == "RetinaNet" else cfg.MODEL.RPN
    best = best_ious(cfg, args.dataset, resize)
    shares = ", ".join(f">= {t:g}: {float((best >= t).float().mean()):.3f}"
                       for t in sorted({0.1, *head.IOU_THRESHOLDS}))
    print(f"{args.config_file} on {args.dataset} ({resize}): {len(best)} GT boxes, best anchor "
          f"IoU median {float(np.median(best.numpy())):.3f}; share {shares}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
