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

Image ids are file stems; inputs sharing a stem are told apart by their parent folders
(``a/normal.png``, ``b/normal.png`` -> ids ``a/normal`` and ``b/normal``, pictures
``a/normal.png`` and ``b/normal.png`` under ``--output``). Each image's detections are appended
to ``detections.jsonl`` as soon as it is done (one JSON line per image), so a crash loses only
the image it crashed on; ``results.json`` is assembled from that file at the end.

Exit codes: 0 success; 2 bad input: bad arguments, missing or unfit weights or ONNX file, no
images, or some images unreadable or above ``--max-pixels`` (those are named and skipped, the
others are still processed and written); 1 an image failed inside the model (traceback
printed, skipped).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import traceback
from collections import Counter
from typing import Callable, Dict, List, Sequence

import cv2
import numpy as np
import torch
from tqdm import tqdm

from deepinfrared_d2.data.mapper import NoCoDatasetMapper
from deepinfrared_d2.engine import CheckpointError, build_predictor, setup_cfg
from deepinfrared_d2.evaluation.evaluator import instances_to_detections
from deepinfrared_d2.utils.visualize import draw_sirst_picture
from sirst.annotations import image_size
from sirst.cli import ArgumentParser, count, finite_float, input_file, output_dir
from sirst.image_io import DatasetFileError, read_image_bgr
from sirst.results import Detections, detections_to_records, write_results_file

IMAGE_EXTS = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff")
MAX_PIXELS = 4096 * 4096  # default --max-pixels: larger images are refused, not run out of memory


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
    return list(dict.fromkeys(os.path.abspath(p) for p in paths))  # each file once


def image_ids(paths: Sequence[str]) -> List[str]:
    """Unique ids of the inputs, deterministic: the file stem, with as many parent folders
    as it takes to tell apart inputs sharing it (``a/normal``, ``b/normal``); inputs differing
    only in the extension keep it (``normal.png``, ``normal.jpg``)."""
    parts = [os.path.abspath(p).split(os.sep) for p in paths]

    def name(i: int, depth: int, ext: bool) -> str:
        comps = parts[i][-depth:]
        return "/".join(comps if ext else comps[:-1] + [os.path.splitext(comps[-1])[0]])

    ids = [name(i, 1, False) for i in range(len(paths))]
    for shared in [n for n, c in Counter(ids).items() if c > 1]:
        group = [i for i, n in enumerate(ids) if n == shared]
        longest = max(len(parts[i]) for i in group)
        for depth, ext in [(d, False) for d in range(2, longest + 1)] + [(1, True)] + [
                (d, True) for d in range(2, longest + 1)]:
            names = [name(i, depth, ext) for i in group]
            if len(set(names)) == len(names):
                for i, n in zip(group, names):
                    ids[i] = n
                break
    return ids


def append_line(path: str, obj: Dict) -> None:
    """Append one JSON line and push it to disk (it survives a crash of this process)."""
    with open(path, "a") as f:
        f.write(json.dumps(obj) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_lines(path: str) -> List[Dict]:
    """The complete JSON lines of ``append_line`` (a line torn by a crash is left out)."""
    out = []
    with open(path) as f:
        for line in f:
            if line.endswith("\n"):
                out.append(json.loads(line))
    return out


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


class ImageTooLarge(ValueError):
    """An input image has more pixels than ``--max-pixels``."""


def detect(predict: Callable[[str, np.ndarray], Detections], path: str, image_id: str,
           args) -> Dict:
    """One image: its detections (best first) as results records and, unless
    ``--no-pictures``, its picture under ``args.output``. Raises ``DatasetFileError`` /
    ``ImageTooLarge`` for bad input."""
    w, h = image_size(path)  # the header only: a huge image is refused before decoding
    if w * h > args.max_pixels:
        raise ImageTooLarge(f"{path}: {w}x{h} = {w * h} pixels is more than --max-pixels "
                            f"{args.max_pixels}; downscale or crop it, or raise --max-pixels")
    bgr = read_image_bgr(path)
    det = predict(path, bgr)
    keep = np.flatnonzero(det.scores >= args.confidence_threshold)
    keep = keep[np.argsort(-det.scores[keep], kind="stable")]
    det = Detections(*(None if a is None else a[keep] for a in det))
    if not args.no_pictures:
        k = args.top_k
        pic = draw_sirst_picture(bgr, np.zeros((0, 4)), points=det.centres()[:k],
                                 scores=det.scores[:k], crops="detections",
                                 boxes=None if det.boxes is None else det.boxes[:k])
        out = os.path.join(args.output, f"{image_id}.png")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        cv2.imwrite(out, pic)
    return {"image_id": image_id, "file": path,
            "records": detections_to_records(image_id, det.scores, det.boxes, det.points)}


def main(argv=None) -> int:
    ap = ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config-file", type=input_file, help="the model's config (not with --onnx)")
    ap.add_argument("--onnx", help="run this exported model with ONNX Runtime instead")
    ap.add_argument("--input", nargs="+", required=True, help="image files, folders or globs")
    ap.add_argument("--output", required=True, type=output_dir,
                    help="folder for the pictures, detections.jsonl and results.json")
    ap.add_argument("--confidence-threshold", type=finite_float, default=0.0,
                    help="drop detections scoring below this (results file and pictures)")
    ap.add_argument("--top-k", type=count, default=5, help="detections drawn per picture")
    ap.add_argument("--max-pixels", type=count, default=MAX_PIXELS,
                    help=f"refuse images with more pixels (default {MAX_PIXELS} = 4096x4096)")
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
            cfg = setup_cfg(args, output=False)  # ValueError: a bad config or override
            predict = torch_predictor(cfg)
    except (FileNotFoundError, CheckpointError, ValueError) as e:  # ValueError: the config
        print(f"error: {e}", file=sys.stderr)
        return 2

    lines = os.path.join(args.output, "detections.jsonl")
    open(lines, "w").close()  # this run's detections, one line per finished image
    bad_input, crashed = [], []
    for path, image_id in tqdm(list(zip(paths, image_ids(paths))), desc="demo", unit="img"):
        try:
            append_line(lines, detect(predict, path, image_id, args))
        except (DatasetFileError, ImageTooLarge) as e:
            bad_input.append(str(e))
            tqdm.write(f"error: {e} (skipped)", file=sys.stderr)
        except Exception:  # e.g. out of memory: reported with its traceback, the others go on
            crashed.append(path)
            tqdm.write(f"error: {path} failed (skipped):\n{traceback.format_exc()}",
                       file=sys.stderr)
    done = read_lines(lines)
    records = [r for line in done for r in line["records"]]
    write_results_file(os.path.join(args.output, "results.json"), records,
                       [line["image_id"] for line in done])
    print(f"{len(done)} images, {len(records)} detections -> "
          f"{os.path.join(args.output, 'results.json')}")
    if bad_input or crashed:
        print(f"error: {len(bad_input) + len(crashed)} of {len(paths)} image(s) skipped: "
              + "; ".join(bad_input + [f"{p} failed" for p in crashed]), file=sys.stderr)
        return 1 if crashed else 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
