#!/usr/bin/env python3
"""The main job: a classical detector on SIRST-V2, judged by the mNoCoAP evaluator.

With no arguments it runs the white Top-Hat baseline (5x5, protocol P1) on every image of
``sirst_v2_test_full`` at native resolution, evaluates the detections with ``NoCoEvaluator``
(mNoCoAP, the nine NoCoAPs, Pd/Fa, box AP), prints the table and writes under ``output/main/``:

    <method>/results.json   the detections (results-file format of tools/eval_detections.py)
    <method>/run.json       parameters, timings and the metrics
    metrics.json            the metrics table as JSON
    pictures/<id>.png       a few images with GT boxes, NoCo map and the detections (red)

Re-running resumes: finished images are not recomputed. Example::

    python tools/main.py --method mpcm --dataset sirst_v2_test_v1 --workers 2
"""
from __future__ import annotations

import os
import sys
import time

import cv2

import baselines
import deepinfrared_d2  # noqa: F401  (registers sirst_v2_*)
from baselines.devices import CHOICES as DEVICE_CHOICES
from baselines.devices import DeviceError
from baselines.runner import OutputInUse, run_method
from deepinfrared_d2.evaluation import evaluate_records, format_metrics_table
from deepinfrared_d2.utils.visualize import render_record
from sirst.cli import EXIT_USAGE, ArgumentParser, count_or_zero, output_dir, workers
from sirst.dataset import load_dataset
from sirst.image_io import DatasetFileError
from sirst.results import ResultsFileError, group_records, write_json_atomic


def parse_args(argv=None):
    ap = ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="tophat", choices=baselines.list_methods())
    ap.add_argument("--dataset", default="sirst_v2_test_full")
    ap.add_argument("--output", default="output/main", type=output_dir)
    ap.add_argument("--workers", type=workers, default=1,
                    help="worker processes (default 1; 0 = all cores; capped at the core count)")
    ap.add_argument("--device", default="auto", choices=DEVICE_CHOICES,
                    help="where IPI, NIPPS, RIPT, PSTNN run (default auto: cuda when available, "
                    "else NumPy on the CPU); other methods always run NumPy")
    ap.add_argument("--pictures", type=count_or_zero, default=6,
                    help="pictures to draw: two thirds with targets, the rest backgrounds "
                    "(0: none)")
    return ap.parse_args(argv)


def pick_pictures(records, n: int):
    """The first images with targets and the first backgrounds, about 2:1."""
    with_targets = [r for r in records if r["annotations"]]
    backgrounds = [r for r in records if not r["annotations"]]
    n_bg = min(len(backgrounds), n // 3)
    return with_targets[: n - n_bg] + backgrounds[:n_bg]


def main(argv=None) -> int:
    args = parse_args(argv)
    t0 = time.time()
    run_dir = os.path.join(args.output, args.method)
    try:
        records = load_dataset(args.dataset)
        print(f"[main] {args.method} on {args.dataset} ({len(records)} images, "
              f"{sum(not r['annotations'] for r in records)} without target)", flush=True)
        detections, summary = run_method(args.method, args.dataset, run_dir,
                                         workers=args.workers, device=args.device)
        metrics = evaluate_records(args.dataset, detections)
    except (DatasetFileError, ResultsFileError, OutputInUse, DeviceError, KeyError) as e:
        print(f"error: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
        return EXIT_USAGE
    print(format_metrics_table(metrics))
    print(f"[main] {summary['seconds_per_image_median']:.3f} s/image (median), "
          f"{len(detections)} detections, protocol {summary['protocol']}, "
          f"device {summary['device']}")
    write_json_atomic(os.path.join(args.output, "metrics.json"),
                      {"method": args.method, "dataset": args.dataset, **metrics}, indent=2)

    pic_dir = os.path.join(args.output, "pictures")
    os.makedirs(pic_dir, exist_ok=True)
    by_image = group_records(detections)
    for r in pick_pictures(records, args.pictures):
        pic = render_record(r, by_image.get(r["image_id"]), top_k=5)
        cv2.imwrite(os.path.join(pic_dir, f"{r['image_id']}.png"), pic)
    print(f"[main] metrics: {os.path.join(args.output, 'metrics.json')}; pictures: {pic_dir}; "
          f"{time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
