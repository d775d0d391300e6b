#!/usr/bin/env python3
"""Write PNGs of a dataset's images with GT boxes and the NoCo map (Detectron2-style tool).

Optionally overlays the detections of a results file (the format ``tools/eval_detections.py``
reads). Each PNG shows the whole image and magnified crops around every target. Example::

    python tools/visualize_data.py --dataset sirst_v2_test_full --num 8 --output-dir out/vis
    python tools/visualize_data.py --dataset sirst_v2_test_full --results out/ipi/results.json \
        --ids Misc_111 --output-dir out/vis
"""
from __future__ import annotations

import os
import sys

import cv2
from tqdm import tqdm

import deepinfrared_d2  # noqa: F401
from deepinfrared_d2.utils.visualize import render_record
from sirst.cli import ArgumentParser, count, count_or_zero, output_dir
from sirst.dataset import load_dataset
from sirst.image_io import DatasetFileError
from sirst.results import ResultsFileError, check_image_ids, group_records, load_results_file


def main(argv=None) -> int:
    ap = ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="sirst_v2_test_full")
    ap.add_argument("--output-dir", required=True, type=output_dir)
    ap.add_argument("--results", help="results JSON whose detections are drawn (red)")
    ap.add_argument("--ids", nargs="*", help="only these image ids")
    ap.add_argument("--num", type=count_or_zero, default=8,
                    help="at most this many images (0 = all)")
    ap.add_argument("--targets-only", action="store_true", help="skip images without targets")
    ap.add_argument("--top-k", type=count, default=10, help="detections drawn per image")
    args = ap.parse_args(argv)
    try:
        records = load_dataset(args.dataset)
        dets = {}
        if args.results:
            results = load_results_file(args.results)
            check_image_ids(results, {r["image_id"] for r in records}, args.dataset, args.results)
            dets = group_records(results)
    except (KeyError, DatasetFileError, ResultsFileError) as e:
        print(f"error: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
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
    failed = []
    for r in tqdm(records, desc="pictures"):
        try:
            pic = render_record(r, dets.get(r["image_id"]), args.top_k)
        except DatasetFileError as e:  # e.g. a truncated PNG: named, skipped, exit code 2
            failed.append(str(e))
            tqdm.write(f"error: {e} (skipped)", file=sys.stderr)
            continue
        cv2.imwrite(os.path.join(args.output_dir, f"{r['image_id']}.png"), pic)
    print(f"wrote {len(records) - len(failed)} pictures to {args.output_dir}")
    if failed:
        print(f"error: {len(failed)} image(s) skipped: {failed[0]}"
              + (f" and {len(failed) - 1} more" if len(failed) > 1 else ""), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
