#!/usr/bin/env python3
"""Export a trained detector to ONNX and check it against PyTorch with ONNX Runtime.

    python tools/export_model.py --config-file projects/OSCAR/configs/oscar_R18_FPN_P2_cpu.yaml \
        --output out/oscar_cpu.onnx MODEL.WEIGHTS output/oscar_R18_FPN_P2_cpu/model_final.pth

The graph holds normalisation, padding, the dense network and the per-cell box decoding
(``deepinfrared_d2.deploy.onnx_export``); candidate selection and NMS run in NumPy
(``cell_detections``, the same code as the PyTorch model's inference; for Detectron2's
RetinaNet and Faster R-CNN, with Detectron2's order of NMS and clipping; Faster R-CNN's RPN,
RoIAlign and box head are in the graph). Run the file with
``tools/demo.py --onnx FILE`` or ``deepinfrared_d2.deploy.onnx_runtime.OnnxDetector``.
After writing, the dense outputs of ONNX Runtime and PyTorch are compared on the ``--check``
images (``--check A.png --check B.png``; default: one random image of ``--sample-size``) and
the largest differences printed.

``--check-dataset sirst_v2_test_full`` also runs both on every image of a registered split
(PyTorch in float32, as exported) and compares the detections (same count, scores within
1e-4, each box within 1e-3 px of the other side's box of the same score, up to 1e-4, since
near-tied scores may come out in either order) and the mNoCoAP of each (equal to 1e-6).

``--int8 FILE`` also writes an int8 version (``deepinfrared_d2.deploy.quantize``: every
convolution but the predictors in int8, calibrated on ``--calibration-images`` images of
``--calibration-dataset``, by default the config's first training split); with
``--check-dataset`` its detections are scored too, and it must keep the float model's
mNoCoAP within 0.005 (it is not expected to equal it).

Exit codes: 0 written and checked, 1 the check failed (outputs differ beyond tolerance),
2 bad input (bad arguments, missing weights or a checkpoint that leaves model weights
unloaded, unreadable image, unknown or malformed dataset, a model that cannot be exported,
e.g. a Mask R-CNN).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict, List, Optional

import numpy as np
import torch
from detectron2.data import DatasetCatalog
from tqdm import tqdm

import deepinfrared_d2  # noqa: F401  (registers the datasets)
from deepinfrared_d2.data.mapper import NoCoDatasetMapper
from deepinfrared_d2.deploy.compare import candidate_differences, matched_differences
from deepinfrared_d2.deploy.onnx_export import ExportGraph, export_onnx, exportable
from deepinfrared_d2.deploy.onnx_runtime import OnnxDetector
from deepinfrared_d2.deploy.quantize import quantize_int8
from deepinfrared_d2.engine import CheckpointError, load_trained_model, setup_cfg
from deepinfrared_d2.evaluation import evaluate_records
from deepinfrared_d2.evaluation.evaluator import instances_to_detections
from sirst.cli import ArgumentParser, count, input_file, output_file
from sirst.dataset import load_dataset
from sirst.image_io import DatasetFileError, read_image_bgr
from sirst.results import detections_to_records

# Largest accepted |ONNX Runtime - PyTorch| of the dense outputs and detections: boxes in
# pixels, probabilities and scores.
BOX_TOL_PX = 1e-3
PROB_TOL = 1e-4
NOCOAP_TOL = 1e-6  # largest accepted |mNoCoAP(ONNX Runtime) - mNoCoAP(PyTorch)| on a split
INT8_NOCOAP_LOSS = 0.005  # largest accepted mNoCoAP(PyTorch) - mNoCoAP(int8 model) on a split


def compare(detector: OnnxDetector, model: torch.nn.Module, image: np.ndarray) -> dict:
    """Max |ORT - PyTorch| per dense output on one float32 (1, 3, h, w) network input
    (``candidate_differences``)."""
    with torch.no_grad():
        ref = [t.numpy() for t in ExportGraph(model).eval()(torch.from_numpy(image))]
    diffs = candidate_differences(detector.dense(image), ref,
                                  detector.meta["postprocess_params"]["score_thresh"])
    return dict(zip(("boxes", "select_prob", "score_factor"), diffs))


def check_dataset(detector: OnnxDetector, model: torch.nn.Module, cfg, name: str,
                  int8: Optional[OnnxDetector] = None) -> Dict:
    """Detections of PyTorch (float32) and ONNX Runtime on every image of split ``name``:
    count mismatches, largest box / score differences, and the mNoCoAP of each (and of the
    ``int8`` model, when given)."""
    mapper = NoCoDatasetMapper(cfg, is_train=False)
    records = {"pytorch": [], "onnxruntime": [], **({"onnxruntime_int8": []} if int8 else {})}
    out = {"images": 0, "count_mismatches": 0, "max_box_diff_px": 0.0, "max_score_diff": 0.0}
    for rec in tqdm(DatasetCatalog.get(name), desc=f"check {name}", unit="img"):
        with torch.no_grad():
            ref = instances_to_detections(model([mapper(rec)])[0]["instances"])
        bgr = read_image_bgr(rec["file_name"])
        boxes, scores, _ = detector(bgr)
        out["images"] += 1
        if len(scores) != len(ref.scores):
            out["count_mismatches"] += 1
        elif len(scores):
            box_diff, score_diff = matched_differences(boxes, scores, ref.boxes, ref.scores,
                                                       score_tol=PROB_TOL)
            out["max_box_diff_px"] = max(out["max_box_diff_px"], box_diff)
            out["max_score_diff"] = max(out["max_score_diff"], score_diff)
        records["pytorch"] += detections_to_records(rec["image_id"], ref.scores, ref.boxes)
        records["onnxruntime"] += detections_to_records(rec["image_id"], scores, boxes)
        if int8:
            boxes, scores, _ = int8(bgr)
            records["onnxruntime_int8"] += detections_to_records(rec["image_id"], scores, boxes)
    for backend, recs in records.items():
        out[f"mNoCoAP_{backend}"] = evaluate_records(name, recs, box_ap=False)["noco"]["mNoCoAP"]
    return out


def calibration_files(name: str, n: int) -> List[str]:
    """``n`` image files of split ``name`` (all if it has fewer), drawn with a fixed seed."""
    files = [rec["file_name"] for rec in load_dataset(name)]
    pick = np.random.default_rng(0).choice(len(files), min(n, len(files)), replace=False)
    return [files[i] for i in sorted(pick)]


def main(argv=None) -> int:
    ap = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config-file", required=True, type=input_file)
    ap.add_argument("--output", required=True, type=output_file, help="the .onnx file to write")
    ap.add_argument("--sample-size", nargs=2, type=count, default=(512, 640), metavar=("H", "W"),
                    help="tracing input size (the graph accepts any size)")
    ap.add_argument("--check", action="append", default=[], metavar="IMAGE",
                    help="an image to compare ONNX Runtime with PyTorch on (repeatable)")
    ap.add_argument("--check-dataset", metavar="NAME",
                    help="also compare detections and mNoCoAP on this registered split")
    ap.add_argument("--int8", type=output_file, metavar="FILE",
                    help="also write an int8 version of the model to FILE")
    ap.add_argument("--calibration-dataset", metavar="NAME",
                    help="registered split whose images calibrate --int8 (default: the "
                         "config's first DATASETS.TRAIN)")
    ap.add_argument("--calibration-images", type=count, default=32,
                    help="images of it to calibrate on, drawn with a fixed seed (default 32)")
    ap.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ...")
    args = ap.parse_args(argv)

    if args.int8 and os.path.abspath(args.int8) == os.path.abspath(args.output):
        ap.error("--int8 must name another file than --output")
    args.opts = [*args.opts, "MODEL.DEVICE", "cpu"]
    try:
        cfg = setup_cfg(args, output=False)  # ValueError: a bad config or override
        images = [read_image_bgr(p) for p in args.check]
        if args.check_dataset:
            load_dataset(args.check_dataset)  # checked before the export, not after it
        if args.int8:
            calibration = calibration_files(args.calibration_dataset or cfg.DATASETS.TRAIN[0],
                                            args.calibration_images)
        model = load_trained_model(cfg)  # float32: the export is never autocast
        exportable(model)  # TypeError: e.g. Detectron2's Faster R-CNN
    except TypeError as e:
        print(f"error: {args.config_file}: {e}", file=sys.stderr)
        return 2
    except (FileNotFoundError, DatasetFileError, CheckpointError, ValueError, KeyError) as e:
        print(f"error: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
        return 2
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    export_onnx(cfg, model, args.output, tuple(args.sample_size))
    print(f"wrote {args.output} ({os.path.getsize(args.output) / 1e6:.1f} MB)")

    detector = OnnxDetector(args.output)
    if not images:
        rng = np.random.default_rng(0)
        images = [rng.integers(0, 256, tuple(args.sample_size) + (3,), dtype=np.uint8)]
    worst = {}
    for image in images:
        for name, diff in compare(detector, model, detector.preprocess(image)).items():
            worst[name] = max(worst.get(name, 0.0), diff)
    print("max |ONNX Runtime - PyTorch| over {} image(s): {}".format(
        len(images), ", ".join(f"{k} {v:.2e}" for k, v in worst.items())))
    ok = (worst["boxes"] <= BOX_TOL_PX
          and max(worst["select_prob"], worst["score_factor"]) <= PROB_TOL)
    if not ok:
        print(f"error: ONNX Runtime differs from PyTorch beyond {BOX_TOL_PX} px / {PROB_TOL}",
              file=sys.stderr)
    int8 = None
    if args.int8:
        quantize_int8(args.output, args.int8, (read_image_bgr(f) for f in calibration))
        print(f"wrote {args.int8} ({os.path.getsize(args.int8) / 1e6:.1f} MB, int8, "
              f"calibrated on {len(calibration)} images)")
        int8 = OnnxDetector(args.int8)
    if args.check_dataset:
        found = check_dataset(detector, model, cfg, args.check_dataset, int8)
        print(json.dumps({"dataset": args.check_dataset, **found}))
        if int8 and found["mNoCoAP_pytorch"] - found["mNoCoAP_onnxruntime_int8"] > INT8_NOCOAP_LOSS:
            print(f"error: the int8 model loses more than {INT8_NOCOAP_LOSS} mNoCoAP on "
                  f"{args.check_dataset}", file=sys.stderr)
            ok = False
        same = (found["count_mismatches"] == 0 and found["max_box_diff_px"] <= BOX_TOL_PX
                and found["max_score_diff"] <= PROB_TOL
                and abs(found["mNoCoAP_onnxruntime"] - found["mNoCoAP_pytorch"]) <= NOCOAP_TOL)
        if not same:
            print(f"error: the detections on {args.check_dataset} differ beyond {BOX_TOL_PX} px, "
                  f"score {PROB_TOL} or mNoCoAP {NOCOAP_TOL}", file=sys.stderr)
        ok = ok and same
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
