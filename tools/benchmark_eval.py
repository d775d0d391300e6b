#!/usr/bin/env python3
"""Time the evaluator: N detections per image on a split, GT maps included.

Prints the cold time (NoCo GT built from the images), then the warm time (GT from the
cache), with and without COCO box AP. Example::

    python tools/benchmark_eval.py --dataset sirst_v2_test_full --per-image 100
"""
from __future__ import annotations

import os
import tempfile
import time

import numpy as np
from detectron2.data import DatasetCatalog

import deepinfrared_d2  # noqa: F401
from deepinfrared_d2.evaluation import evaluate_records
from deepinfrared_d2.evaluation.ground_truth import _MEMORY_CACHE
from sirst.cli import ArgumentParser, count


def synthetic_records(dataset: str, per_image: int, seed: int = 0):
    """Per image: each GT box jittered (high scores) plus random boxes up to ``per_image``."""
    rng = np.random.default_rng(seed)
    out = []
    for r in DatasetCatalog.get(dataset):
        n = 0
        for a in r["annotations"]:
            x1, y1, x2, y2 = a["bbox"]
            dx, dy = rng.normal(0, 1, 2)
            out.append({"image_id": r["image_id"], "bbox": [x1 + dx, y1 + dy, x2 - x1, y2 - y1],
                        "score": float(rng.uniform(0.3, 1))})
            n += 1
        for _ in range(per_image - n):
            x, y = rng.uniform(0, r["width"] - 8), rng.uniform(0, r["height"] - 8)
            out.append({"image_id": r["image_id"], "bbox": [x, y, 6.0, 5.0],
                        "score": float(rng.uniform(0, 0.9))})
    return out

def timed(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))

def main() -> None:
    ap = ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="sirst_v2_test_full")
    ap.add_argument("--per-image", type=count, default=100)
    args = ap.parse_args()
    records = synthetic_records(args.dataset, args.per_image)
    n_img = len(DatasetCatalog.get(args.dataset))
    print(f"{args.dataset}: {n_img} images x {args.per_image} detections = {len(records)} records")

    with tempfile.TemporaryDirectory() as cache:
        os.environ["DEEPIR_CACHE_DIR"] = cache
        _MEMORY_CACHE.clear()
        cold = timed(lambda: evaluate_records(args.dataset, records, box_ap=False), repeat=1)
        _MEMORY_CACHE.clear()
        disk = timed(lambda: (_MEMORY_CACHE.clear(),
                              evaluate_records(args.dataset, records, box_ap=False)))
        warm = timed(lambda: evaluate_records(args.dataset, records, box_ap=False))
        warm_box = timed(lambda: evaluate_records(args.dataset, records))
    print(f"cold, GT maps built from {n_img} images:   {cold:6.2f} s")
    print(f"warm, GT from the disk cache:           {disk:6.2f} s")
    print(f"warm, GT in memory:                     {warm:6.2f} s")
    print(f"warm, GT in memory, + COCO box AP:      {warm_box:6.2f} s")

if __name__ == "__main__":
    main()
