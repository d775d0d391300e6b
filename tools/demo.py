#!/usr/bin/env python3
"""Run a trained detector on image files and write pictures plus a results file.

Detectron2's ``demo.py`` for SIRST images: every input image goes through the config's test
transforms (``NoCoDatasetMapper``), the model and, with ``TEST.AMP.ENABLED``, autocast. For each
image a PNG shows the detections (red boxes, centres and scores) on the whole image and in
magnified crops around the best ones; ``results.json`` holds every detection in the format
``tools/eval_detections.py`` reads (``image_id`` = file stem, ``bbox`` XYWH in original pixels).

    python tools/demo.py --config-file projects/OSCAR/configs/oscar_R18_FPN_P2_cpu.yaml \
        --input datasets/sirst_v2/mixed/Misc_1.png more_images/ --output out/demo \
        MODEL.WEIGHTS output/oscar_R18_FPN_P2_cpu/model_final.pth

``--onnx FILE`` runs a model exported by ``tools/export_model.py`` with ONNX Runtime instead
(no config, no PyTorch in the loop: OpenCV pre-processing, the graph, NumPy post-processing):

    python tools/demo.py --onnx out/oscar_cpu.onnx --input images/ --output out/demo_onnx

Exit codes: 0 success, 2 bad input (missing weights or ONNX file, no images, unreadable
images: those are named and skipped, the others are still processed and written).
"""
from __future__ import annotations

import argparse
import glob
import os
import sys
from typing import Callable, List

import cv2
import numpy as np
import torch
from tqdm import tqdm

from deepinfrared_d2.data.mapper import NoCoDatasetMapper
from deepinfrared_d2.engine import CheckpointError, SIRSTCheckpointer, SIRSTTrainer, setup_cfg
from deepinfrared_d2.engine.trainer import with_test_precision
from deepinfrared_d2.evaluation.evaluator import instances_to_detections
from deepinfrared_d2.utils.visualize import draw_sirst_picture
from sirst.image_io import DatasetFileError, read_image_bgr
from sirst.results import Detections, detections_to_records, write_results_file

IMAGE_EXTS = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff")


def list_images(inputs: List[str]) -> List[str]:
    """Image paths from files, folders (their images, sorted) and glob patterns, in order."""
    paths: List[str] = []
    for item in inputs:
        if os.path.isdir(item):
            paths += sorted(os.path.join(item, f) for f in os.listdir(item)
                            if f.lower().endswith(IMAGE_EXTS))
        elif os.path.isfile(item):
            paths.append(item)
        else:
            matched = sorted(glob.glob(item))
            if not matched:
                raise FileNotFoundError(f"{item}: no such file, folder or matching pattern")
            paths += matched
    return paths


def build_predictor(cfg) -> torch.nn.Module:
    """The config's model in eval mode with ``MODEL.WEIGHTS`` loaded (autocast-wrapped when
    ``TEST.AMP.ENABLED`` resolves to a reduced precision on this device)."""
    weights = cfg.MODEL.WEIGHTS
    if not (weights and os.path.isfile(weights)):
        raise FileNotFoundError("the demo needs MODEL.WEIGHTS pointing at a trained checkpoint; "
                                f"got {weights!r}" + (" (no such file)" if weights else ""))
    model = SIRSTTrainer.build_model(cfg)
    SIRSTCheckpointer(model, require_all=True).load(weights)
    model.eval()
    return with_test_precision(cfg, model)


def torch_predictor(cfg) -> Callable[[str, np.ndarray], Detections]:
    """(path, BGR image) -> the PyTorch model's ``Detections`` in original pixels."""
    model = build_predictor(cfg)
    mapper = NoCoDatasetMapper(cfg, is_train=False)

    def predict(path: str, bgr: np.ndarray) -> Detections:
        inputs = mapper({"file_name": path, "image_id": os.path.basename(path),
                         "height": bgr.shape[0], "width": bgr.shape[1]})
        with torch.no_grad():
            return instances_to_detections(model([inputs])[0]["instances"])
    return predict


def onnx_predictor(path: str) -> Callable[[str, np.ndarray], Detections]:
    """The same for a model exported by tools/export_model.py, on ONNX Runtime."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such ONNX file")
    from deepinfrared_d2.deploy.onnx_runtime import OnnxDetector

    detector = OnnxDetector(path)

    def predict(_path: str, bgr: np.ndarray) -> Detections:
        boxes, scores, _classes = detector(bgr)
        return Detections(scores.astype(np.float64), boxes.astype(np.float64), None)
    return predict


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config-file", help="the model's config (not with --onnx)")
    ap.add_argument("--onnx", help="run this exported model with ONNX Runtime instead")
    ap.add_argument("--input", nargs="+", required=True, help="image files, folders or globs")
    ap.add_argument("--output", required=True, help="folder for the pictures and results.json")
    ap.add_argument("--confidence-threshold", type=float, default=0.0,
                    help="drop detections scoring below this (results file and pictures)")
    ap.add_argument("--top-k", type=int, default=5, help="detections drawn per picture")
    ap.add_argument("--no-pictures", action="store_true", help="only write results.json")
    ap.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ...")
    args = ap.parse_args(argv)

    if bool(args.config_file) == bool(args.onnx):
        print("error: give either --config-file (PyTorch) or --onnx (ONNX Runtime)",
              file=sys.stderr)
        return 2
    try:
        paths = list_images(args.input)
        if not paths:
            raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTS)}) in {args.input}")
        if args.onnx:
            predict = onnx_predictor(args.onnx)
        else:
            predict = torch_predictor(setup_cfg(args, output=False))
    except (FileNotFoundError, CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    os.makedirs(args.output, exist_ok=True)
    records, failed = [], []
    for path in tqdm(paths, desc="demo", unit="img"):
        image_id = os.path.splitext(os.path.basename(path))[0]
        try:
            bgr = read_image_bgr(path)
        except DatasetFileError as e:
            failed.append(str(e))
            tqdm.write(f"error: {e} (skipped)")
            continue
        det = predict(path, bgr)
        keep = np.flatnonzero(det.scores >= args.confidence_threshold)
        keep = keep[np.argsort(-det.scores[keep], kind="stable")]
        det = Detections(*(None if a is None else a[keep] for a in det))
        records += detections_to_records(image_id, det.scores, det.boxes, det.points)
        if not args.no_pictures:
            k = args.top_k
            pic = draw_sirst_picture(bgr, np.zeros((0, 4)), points=det.centres()[:k],
                                     scores=det.scores[:k], crops="detections",
                                     boxes=None if det.boxes is None else det.boxes[:k])
            cv2.imwrite(os.path.join(args.output, f"{image_id}.png"), pic)
    write_results_file(os.path.join(args.output, "results.json"), records)
    print(f"{len(paths) - len(failed)} images, {len(records)} detections -> "
          f"{os.path.join(args.output, 'results.json')}")
    if failed:
        print(f"error: {len(failed)} image(s) could not be read:\n  " + "\n  ".join(failed),
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
