#!/usr/bin/env python3
"""Evaluate a detection results file with mNoCoAP, Pd/Fa and (for boxes) COCO box AP.

The results file is a JSON list of records, one per detection::

    {"image_id": "<file stem>", "bbox": [x, y, w, h], "score": s}
    {"image_id": "<file stem>", "point": [x, y], "score": s}

Example::

    python tools/eval_detections.py --dataset sirst_v2_test_full --results dets.json \
        --output metrics.json

Prints one table (9 NoCoAPs, mNoCoAP, Pd, Fa, box AP) and writes the same as JSON. A malformed
file, an unknown image id or a NaN/missing score is reported with the record at fault and
exit code 2.
"""
from __future__ import annotations

import sys

import deepinfrared_d2  # noqa: F401  (registers sirst_v2_*)
from deepinfrared_d2.evaluation import PD_FA_SCORE_THRESHOLD, evaluate_records, format_metrics_table
from sirst.cli import ArgumentParser, finite_float, output_file
from sirst.dataset import load_dataset
from sirst.image_io import DatasetFileError
from sirst.results import ResultsFileError, load_results_file, write_json_atomic


def parse_args(argv=None):
    ap = ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="sirst_v2_test_full", help="registered dataset name")
    ap.add_argument("--results", required=True, help="results JSON (list of detection records)")
    ap.add_argument("--output", type=output_file, help="write the metrics as JSON here")
    ap.add_argument("--score-threshold", type=finite_float, default=PD_FA_SCORE_THRESHOLD,
                    help="detections scoring at least this count for Pd/Fa "
                    f"(default {PD_FA_SCORE_THRESHOLD})")
    ap.add_argument("--no-box-ap", action="store_true", help="skip COCO box AP")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        load_dataset(args.dataset)  # the dataset is checked before the results
        records = load_results_file(args.results)
        metrics = evaluate_records(args.dataset, records, score_threshold=args.score_threshold,
                                   box_ap=not args.no_box_ap, source=args.results)
    except (ResultsFileError, DatasetFileError, KeyError, ValueError) as e:
        print(f"error: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
        return 2
    print(f"{args.dataset}: {len(records)} detections from {args.results}")
    print(format_metrics_table(metrics))
    if args.output:
        write_json_atomic(args.output, {"dataset": args.dataset, "results": args.results,
                                        **metrics}, indent=2)
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
