#!/usr/bin/env python3
"""Where a FCOS / FCOS-RFLA config puts its positives on real SIRST-V2 images, before any
training: positives per image, the share lying inside their GT box, their centerness targets
and the share of each level.

    python projects/FCOS/positives.py --config-file projects/FCOS/configs/fcos_rfla_R18_FPN_cpu.yaml

A positive outside its GT box gets negative distance targets (which the ReLU regression cannot
reach) and a centerness target near the clamp (0.01), so at test time its score p x c is near
0: a config whose positives mostly lie outside the GT boxes cannot rank targets. The images are
taken at the config's training scale as whole images (no crop); images without targets are
skipped. The assignment runs image by image (RFLA's "faithful" batch shrink does not apply).
"""
from __future__ import annotations

import argparse
import math
import sys
from typing import Dict, List

import numpy as np
import torch
from detectron2.data import DatasetCatalog
from detectron2.modeling import build_model

import deepinfrared_d2  # noqa: F401  (registers the datasets)
from deepinfrared_d2.config import get_cfg
from deepinfrared_d2.modeling.postprocess import grid_points
from sirst.cli import ArgumentParser, count, input_file


def positives_summary(model, records: List[Dict]) -> Dict[str, float]:
    """Positives of ``model.assign`` on the GT boxes of ``records`` (XYXY_ABS pixels, whole
    images at native size): per-image mean count, share inside the GT box, median centerness
    target, share with centerness target > 0.3, share per level (list)."""
    div = model.backbone.size_divisibility or 1
    counts, inside, ctr, levels = [], [], [], np.zeros(len(model.strides))
    for r in records:
        h, w = (math.ceil(v / div) * div for v in (r["height"], r["width"]))
        points = [grid_points(math.ceil(h / s), math.ceil(w / s), s) for s in model.strides]
        boxes = torch.tensor([a["bbox"] for a in r["annotations"]], dtype=torch.float32)
        (matched,), (dists,), (centerness,) = model.assign_targets(points, [boxes])
        counts.append(len(dists))
        inside += (dists.min(dim=1).values > 0).tolist()
        ctr += centerness.tolist()
        level = model.per_point(points, range(len(points))).long()
        levels += np.bincount(level[matched >= 0].numpy(), minlength=len(points))
    ctr_arr = np.asarray(ctr)
    return {"images": len(records), "positives_per_image": float(np.mean(counts)),
            "inside_gt": float(np.mean(inside)), "centerness_median": float(np.median(ctr_arr)),
            "centerness_above_0.3": float((ctr_arr > 0.3).mean()),
            "level_shares": (levels / max(levels.sum(), 1)).round(3).tolist()}


def main(argv=None) -> int:
    ap = ArgumentParser(description=__doc__.split("\n\n")[0],
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config-file", required=True, type=input_file)
    ap.add_argument("--dataset", default=None, help="default: the config's DATASETS.TRAIN[0]")
    ap.add_argument("--images", type=count, default=300, help="first N images with targets")
    ap.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ...")
    args = ap.parse_args(argv)
    cfg = get_cfg(args.config_file, args.opts + ["MODEL.DEVICE", "cpu"])
    if cfg.MODEL.META_ARCHITECTURE != "FCOS":
        ap.error(f"{args.config_file}: MODEL.META_ARCHITECTURE is "
                 f"{cfg.MODEL.META_ARCHITECTURE!r}, not 'FCOS'")
    if cfg.INPUT.RESIZE_MODE_TRAIN != "none":
        ap.error(f"{args.config_file}: INPUT.RESIZE_MODE_TRAIN is {cfg.INPUT.RESIZE_MODE_TRAIN!r};"
                 " this tool takes the images at native size (the CPU recipes' setting)")
    dataset = args.dataset or cfg.DATASETS.TRAIN[0]
    records = [r for r in DatasetCatalog.get(dataset) if r["annotations"]][: args.images]
    model = build_model(cfg)
    summary = positives_summary(model, records)
    print(f"{args.config_file} ({' '.join(args.opts) or 'as is'}) on {dataset}, "
          f"{summary['images']} images with targets, native size; levels "
          f"{cfg.MODEL.FCOS.IN_FEATURES}, assigner {cfg.MODEL.FCOS.ASSIGNER}")
    for key, value in summary.items():
        print(f"  {key:22s} {value if isinstance(value, list) else round(value, 3)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
