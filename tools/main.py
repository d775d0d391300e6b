#!/usr/bin/env python3
"""The main job: the benchmark in miniature, a trained detector beside classical methods.

With no arguments it evaluates, on every image of ``sirst_v2_test_full`` at native
resolution, OSCAR's CPU recipe and three fast classical methods (Top-Hat, Max-Median, MPCM;
protocol P1), all judged by the same ``NoCoEvaluator``. OSCAR's weights are the CPU recipe's
own (``output/oscar_R18_FPN_P2_cpu/model_final.pth``, where its training writes them) when
they exist; otherwise the main job trains it for ``--train-iters`` iterations first (160x160
crops, a few minutes on 2 cores; far from the full recipe). It prints one comparison table
and writes under ``output/main/``:

    <method>/results.json   each method's detections (tools/eval_detections.py reads them);
    <method>/run.json       parameters, timings, what the run was keyed on (the detector's
                            folder is named after its config; its short training, if any,
                            is in <config name>/train/)
    metrics.json            every method's metrics, unrounded
    pr_curves.png           precision-recall at NoCo threshold 0.5 per method, and the
                            detector's curve at every threshold 0.1 ... 0.9
    pictures/<method>/<id>.png   a few images: GT boxes (green), NoCo map, detections (red)

A second run reuses every method's detections (classical runs resume per image; the detector's
are kept while its config, weights and dataset are unchanged; a short training is not
repeated) and only re-evaluates. Example::

    python tools/main.py --methods tophat wldm --dataset sirst_v2_test_v1 --no-detector
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np
from tabulate import tabulate

import baselines
import deepinfrared_d2  # noqa: F401  (registers sirst_v2_*)
from baselines.devices import CHOICES as DEVICE_CHOICES
from baselines.devices import DeviceError
from baselines.runner import OutputInUse, image_fingerprint, run_method
from deepinfrared_d2.engine import CheckpointError
from deepinfrared_d2.evaluation import NoCoEvaluator
from deepinfrared_d2.evaluation.ground_truth import fingerprint
from deepinfrared_d2.evaluation.nocoap import NOCO_THRESHOLDS
from deepinfrared_d2.evaluation.pd_fa import PD_FA_SCORE_THRESHOLD
from deepinfrared_d2.utils.visualize import render_record
from sirst.cli import EXIT_USAGE, ArgumentParser, count, count_or_zero, output_dir, workers
from sirst.dataset import load_dataset
from sirst.image_io import DatasetFileError
from sirst.results import (
    ResultsFileError,
    group_records,
    load_results_file,
    write_json_atomic,
    write_results_file,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DETECTOR_CONFIG = os.path.join(ROOT, "projects/OSCAR/configs/oscar_R18_FPN_P2_cpu.yaml")
TRAIN_ITERS = 600  # the short training without the recipe's weights: ~5 min on 2 cores
CLASSICAL = ("tophat", "maxmedian", "mpcm")  # the fastest methods (baselines/README.md)
PR_THRESHOLD = 0.5  # the NoCo threshold of the per-method precision-recall curves


def parse_args(argv=None):
    ap = ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="*", default=list(CLASSICAL),
                    choices=baselines.list_methods(), metavar="METHOD",
                    help=f"classical methods (default: {' '.join(CLASSICAL)}; "
                    "`python -m baselines list` names them all)")
    ap.add_argument("--detector-config", default=DETECTOR_CONFIG,
                    help="config of the trained detector (default: OSCAR's CPU recipe)")
    ap.add_argument("--detector-weights",
                    help="its weights (default: the config's OUTPUT_DIR/model_final.pth, i.e. "
                    "the trained CPU recipe, if it exists; else a short training)")
    ap.add_argument("--train-iters", type=count, default=TRAIN_ITERS,
                    help=f"iterations of that short training (default {TRAIN_ITERS})")
    ap.add_argument("--no-detector", action="store_true", help="classical methods only")
    ap.add_argument("--dataset", default="sirst_v2_test_full")
    ap.add_argument("--output", default="output/main", type=output_dir)
    ap.add_argument("--workers", type=workers, default=0,
                    help="worker processes of the classical methods (default 0 = all cores)")
    ap.add_argument("--device", default="auto", choices=DEVICE_CHOICES,
                    help="where IPI, NIPPS, RIPT, PSTNN run (default auto: cuda when available)")
    ap.add_argument("--pictures", type=count_or_zero, default=4,
                    help="pictures per method: two thirds with targets, the rest backgrounds "
                    "(0: none)")
    args = ap.parse_args(argv)
    if not args.methods and args.no_detector:
        ap.error("nothing to run: give --methods or drop --no-detector")
    if not args.no_detector:
        for flag, path in (("--detector-config", args.detector_config),
                           ("--detector-weights", args.detector_weights)):
            if path is not None and not os.path.isfile(path):
                ap.error(f"{flag} {path}: no such file")
    return args


def detector_weights(cfg, config_file: str, run_dir: str, train_iters: int) -> str:
    """The trained ``cfg.OUTPUT_DIR/model_final.pth`` (``cfg``: ``config_file``'s) if it exists;
    else the weights of a short training (``train_iters`` iterations of 160x160 crops, no test)
    in ``run_dir/train``, trained now unless an earlier run left them there."""
    trained = os.path.join(cfg.OUTPUT_DIR, "model_final.pth")
    if os.path.isfile(trained):
        return trained
    out = os.path.join(run_dir, "train")
    weights = os.path.join(out, "model_final.pth")
    if not os.path.isfile(weights):
        print(f"[main] no {trained}: training the detector for {train_iters} iterations "
              f"into {out} (the full recipe: tools/train_net.py --config-file {config_file})",
              flush=True)
        subprocess.run([sys.executable, os.path.join(ROOT, "tools", "train_net.py"),
                        "--config-file", config_file, "SOLVER.MAX_ITER", str(train_iters),
                        "SOLVER.EPOCH_ITERS", str(max(train_iters // 10, 1)),
                        "SOLVER.WARMUP_ITERS", str(train_iters // 6),
                        "SOLVER.CHECKPOINT_PERIOD", str(train_iters),
                        "INPUT.TARGET_CROP.SIZE", "(160, 160)", "DATASETS.TEST", "()",
                        "OUTPUT_DIR", out], check=True)
    return weights


def run_detector(cfg, config_file: str, weights: str, dataset: str, records: List[Dict],
                 run_dir: str) -> Tuple[List[Dict], Dict]:
    """The detector's results records on ``dataset`` (its dataset ``records``) and its run
    summary; reused from ``run_dir`` when config, weights and dataset files are those of the
    stored run. ``cfg``: ``config_file``'s config."""
    from deepinfrared_d2.engine import build_predictor, predict_dataset
    from deepinfrared_d2.engine.precision import describe_cpu

    cfg = cfg.clone()
    cfg.merge_from_list(["MODEL.WEIGHTS", weights, "MODEL.DEVICE", "cpu"])
    cfg.freeze()
    key = {"config": hashlib.sha1(cfg.dump().encode()).hexdigest(),
           "weights_sha1": image_fingerprint(weights), "dataset": dataset,
           "dataset_files": fingerprint(records)}
    run_file, results_file = (os.path.join(run_dir, f) for f in ("run.json", "results.json"))
    if os.path.isfile(run_file) and os.path.isfile(results_file):
        with open(run_file) as f:
            summary = json.load(f)
        if summary.get("key") == key:
            print(f"[main] reusing {results_file}", flush=True)
            return load_results_file(results_file), summary
    model = build_predictor(cfg)
    found, seconds = predict_dataset(cfg, model, dataset)
    summary = {"key": key,
               "config_file": config_file, "weights": weights, "n_images": len(seconds),
               "seconds_per_image_median": float(np.median(seconds)),
               "seconds_total": float(seconds.sum()), "cpu": describe_cpu()}
    write_results_file(results_file, found, [str(r["image_id"]) for r in records])
    write_json_atomic(run_file, summary, indent=2)
    return found, summary


def evaluate(dataset: str, records: List[Dict], source: str):
    """(metrics, (recall, precision) float32 (9, N)) of results records."""
    ev = NoCoEvaluator(dataset, distributed=False, box_ap=False)
    ev.add_records(records, source)
    return ev.evaluate(), ev.precision_recall()


def comparison_table(rows: Dict[str, Dict]) -> str:
    """One row per method: mNoCoAP, NoCoAP50, Pd, Fa/image, ms/image (median)."""
    table = [(m, r["noco"]["mNoCoAP"], r["noco"]["NoCoAP50"], r["irstd"]["Pd"],
              r["irstd"]["Fa_per_image"], 1000 * r["seconds_per_image_median"])
             for m, r in rows.items()]
    return tabulate(table, headers=["method", "mNoCoAP", "NoCoAP50", "Pd", "Fa/image",
                                    "ms/image"],
                    tablefmt="pipe", floatfmt=(".4f", ".4f", ".4f", ".3f", ".3f", ".1f"))


def plot_pr_curves(curves: Dict[str, Tuple[np.ndarray, np.ndarray]], detector: Optional[str],
                   path: str) -> None:
    """PNG: per method at NoCo threshold 0.5 (left); the detector at every threshold (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t50 = int(np.argmin(np.abs(NOCO_THRESHOLDS - PR_THRESHOLD)))
    panels = 2 if detector else 1
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 5), squeeze=False)
    ax = axes[0, 0]
    for name, (recall, precision) in curves.items():
        ax.plot(recall[t50], precision[t50], label=name)
    ax.set_title(f"NoCo threshold {PR_THRESHOLD}")
    if detector:
        ax = axes[0, 1]
        recall, precision = curves[detector]
        colours = plt.cm.viridis(np.linspace(0, 1, len(NOCO_THRESHOLDS)))
        for t, (thr, c) in enumerate(zip(NOCO_THRESHOLDS, colours)):
            ax.plot(recall[t], precision[t], color=c, label=f"{thr:.1f}")
        ax.set_title(f"{detector}, every NoCo threshold")
    for ax in axes[0]:
        ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def pick_pictures(records, n: int):
    """The first images with targets and the first backgrounds, about 2:1."""
    with_targets = [r for r in records if r["annotations"]]
    backgrounds = [r for r in records if not r["annotations"]]
    n_bg = min(len(backgrounds), n // 3)
    return with_targets[: n - n_bg] + backgrounds[:n_bg]


def main(argv=None) -> int:
    args = parse_args(argv)
    t0 = time.time()
    rows: Dict[str, Dict] = {}
    curves: Dict[str, Tuple[np.ndarray, np.ndarray]] = {}
    detections: Dict[str, List[Dict]] = {}
    detector = None
    try:
        records = load_dataset(args.dataset)
        print(f"[main] {args.dataset}: {len(records)} images, "
              f"{sum(not r['annotations'] for r in records)} without target", flush=True)
        if not args.no_detector:
            from deepinfrared_d2.config import get_cfg

            detector = os.path.splitext(os.path.basename(args.detector_config))[0]
            run_dir = os.path.join(args.output, detector)
            cfg = get_cfg(args.detector_config)
            weights = args.detector_weights or detector_weights(
                cfg, args.detector_config, run_dir, args.train_iters)
            dets, summary = run_detector(cfg, args.detector_config, weights, args.dataset,
                                         records, run_dir)
            detections[detector] = dets
            rows[detector] = {"seconds_per_image_median": summary["seconds_per_image_median"]}
        for method in args.methods:
            print(f"[main] {method} (protocol P1)", flush=True)
            dets, summary = run_method(method, args.dataset, os.path.join(args.output, method),
                                       workers=args.workers, device=args.device)
            detections[method] = dets
            rows[method] = {"seconds_per_image_median": summary["seconds_per_image_median"]}
        for name, dets in detections.items():
            metrics, curves[name] = evaluate(args.dataset, dets, f"{name} results")
            rows[name].update(metrics)
    except subprocess.CalledProcessError as e:
        print(f"error: the detector's training failed (exit code {e.returncode}); its output is "
              "above", file=sys.stderr)
        return 1
    except (DatasetFileError, ResultsFileError, OutputInUse, DeviceError, CheckpointError,
            ValueError, KeyError) as e:  # ValueError: a bad detector config
        print(f"error: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
        return EXIT_USAGE
    print(comparison_table(rows))
    print(f"Pd / Fa count detections scoring >= {PD_FA_SCORE_THRESHOLD}; ms/image: median "
          "time of the method (detector: the model's forward, pre-processing excluded)")
    write_json_atomic(os.path.join(args.output, "metrics.json"),
                      {"dataset": args.dataset, "methods": rows}, indent=2)
    plot = os.path.join(args.output, "pr_curves.png")
    plot_pr_curves(curves, detector, plot)

    for name, dets in detections.items():
        pic_dir = os.path.join(args.output, "pictures", name)
        os.makedirs(pic_dir, exist_ok=True)
        by_image = group_records(dets)
        for r in pick_pictures(records, args.pictures):
            pic = render_record(r, by_image.get(r["image_id"]), top_k=5)
            cv2.imwrite(os.path.join(pic_dir, f"{r['image_id']}.png"), pic)
    print(f"[main] {os.path.join(args.output, 'metrics.json')}, {plot}, "
          f"{os.path.join(args.output, 'pictures')}/; {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
