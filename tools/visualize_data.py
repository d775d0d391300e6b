#!/usr/bin/env python3
"""Write PNGs of a dataset's images with GT boxes and the NoCo map (Detectron2-style tool).

Optionally overlays the detections of a results file (the format ``tools/eval_detections.py``
reads). Each PNG shows the whole image and magnified crops around every target. Example::

    python tools/visualize_data.py --dataset sirst_v2_test_full --num 8 --output-dir out/vis
    python tools/visualize_data.py --dataset sirst_v2_test_full --results out/ipi/results.json \
        --ids Misc_111 --output-dir out/vis
"""
from __future__ import annotations

import argparse
import os
import sys
from collections import defaultdict

import cv2
import numpy as np
from tqdm import tqdm

import deepinfrared_d2  # noqa: F401
from detectron2.data import DatasetCatalog
from deepinfrared_d2.data import DatasetFileError, read_gray, read_image_bgr
from deepinfrared_d2.evaluation import ResultsFileError, load_results_file, noco_map
from deepinfrared_d2.evaluation.ground_truth import record_boxes
from deepinfrared_d2.utils.visualize import draw_sirst_picture


def detections_by_image(records):
    """image_id -> (points (m, 2), scores (m,), boxes (m, 4) or None), best first."""
    grouped = defaultdict(list)
    for r in records:
        grouped[str(r["image_id"])].append(r)
    out = {}
    for image_id, recs in grouped.items():
        recs.sort(key=lambda r: -r["score"])
        boxes = None
        if all("bbox" in r for r in recs):
            boxes = np.array([r["bbox"] for r in recs], dtype=np.float64)
            boxes[:, 2:] += boxes[:, :2]
        if all("point" in r for r in recs):
            points = np.array([r["point"] for r in recs], dtype=np.float64)
        else:
            points = (boxes[:, :2] + boxes[:, 2:]) / 2
        out[image_id] = (points, [r["score"] for r in recs], boxes)
    return out


def render(record, detections=None, top_k: int = 10) -> np.ndarray:
    """Picture of one dataset record, with up to ``top_k`` detections."""
    boxes = record_boxes(record)
    noco = noco_map(read_gray(record["file_name"]), boxes) if len(boxes) else None
    points = scores = det_boxes = None
    if detections is not None:
        points, scores, det_boxes = (d[:top_k] if d is not None else None for d in detections)
    return draw_sirst_picture(read_image_bgr(record["file_name"]), boxes, noco, points, scores, det_boxes)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="sirst_v2_test_full")
    ap.add_argument("--output-dir", required=True)
    ap.add_argument("--results", help="results JSON whose detections are drawn (red)")
    ap.add_argument("--ids", nargs="*", help="only these image ids")
    ap.add_argument("--num", type=int, default=8, help="at most this many images (0 = all)")
    ap.add_argument("--targets-only", action="store_true", help="skip images without targets")
    ap.add_argument("--top-k", type=int, default=10, help="detections drawn per image")
    args = ap.parse_args(argv)
    try:
        records = DatasetCatalog.get(args.dataset)
        dets = detections_by_image(load_results_file(args.results)) if args.results else {}
    except (KeyError, DatasetFileError, ResultsFileError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.ids:
        known = {r["image_id"] for r in records}
        missing = [i for i in args.ids if i not in known]
        if missing:
            print(f"error: image ids not in {args.dataset}: {missing}", file=sys.stderr)
            return 2
        records = [r for r in records if r["image_id"] in set(args.ids)]
    if args.targets_only:
        records = [r for r in records if r["annotations"]]
    if args.num:
        records = records[: args.num]
    os.makedirs(args.output_dir, exist_ok=True)
    for r in tqdm(records, desc="pictures"):
        pic = render(r, dets.get(r["image_id"], (np.zeros((0, 2)), [], None)) if args.results else None,
                     args.top_k)
        cv2.imwrite(os.path.join(args.output_dir, f"{r['image_id']}.png"), pic)
    print(f"wrote {len(records)} pictures to {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
