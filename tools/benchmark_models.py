#!/usr/bin/env python3
"""Parameters, GFLOPs and inference time of a DeepInfrared-D2 model config.

    python tools/benchmark_models.py \
        --config-file projects/OSCAR/configs/oscar_R18_FPN_P2_256_1x.yaml
    python tools/benchmark_models.py --config-file CFG --input-size 512 512   # paper GFLOPs

Works for any registered model (the config names it, see ``deepinfrared_d2.config``):

- params: every parameter of the model (for OSCAR also without the unused FPN output convs);
- GFLOPs: mmcv conventions (``deepinfrared_d2.utils.flops.count_gflops``: conv MACs + bias,
  2x affine norm, ReLU/pool elements; interpolation, sigmoid, products, exp not counted) of
  the dense part on one zero image of the network input size, padded to the size
  divisibility like the model pads. The dense part is the model's ``forward_dense(images)``
  (backbone + neck + head) when it has one, else its backbone;
- ms/image: median and min over ``--runs`` full inferences (normalisation, padding, dense
  part, decoding and NMS) of a random uint8 image, batch 1, after one warm-up run, on
  MODEL.DEVICE, for each of ``--backends``, timed in turns (a change of load hits them
  alike): ``eager`` PyTorch (memory format of ``MODEL.CHANNELS_LAST``), ``channels_last``
  (eager, NHWC), ``compiled`` (the dense part under ``torch.compile``, inductor; compile time
  noted apart), ``onnxruntime`` (the model exported by ``deepinfrared_d2.deploy.onnx_export``
  on ONNX Runtime's CPU provider, same NumPy post-processing; CPU only), ``onnxruntime_int8``
  (the same, quantized by ``deepinfrared_d2.deploy.quantize``);
- ``--breakdown``: eager milliseconds per part (each backbone/neck/head sub-module, decoding,
  post-processing) of one image, median over the runs.

Native resolution of SIRST-V2's large images: ``--input-size 1024 1280``. The CPU model,
torch's capability and the load average are printed with the timings.

Input size: ``--input-size H W`` is used as the network input as is; otherwise the test-time
resize rule of the config (INPUT.RESIZE_MODE_TEST) is applied to an ``--image-size`` image
(default 512 x 640, SIRST-V2's most frequent size): 600 x 750 for the paper configs.
On shared CPUs set ``OMP_WAIT_POLICY=PASSIVE`` (OpenMP spin-waiting inflates timings).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from typing import Callable, Dict, Tuple

import numpy as np
import torch
from torch import nn

import deepinfrared_d2  # noqa: F401  (registers the datasets)
from deepinfrared_d2.data.transforms import keep_ratio_size
from deepinfrared_d2.deploy.postprocess import cell_detections
from deepinfrared_d2.engine import SIRSTTrainer, setup_cfg
from deepinfrared_d2.engine.precision import describe_cpu
from deepinfrared_d2.utils.flops import count_gflops
from sirst.cli import ArgumentParser, count, count_or_zero, input_file


class DenseOnly(nn.Module):
    """Traceable wrapper running only the dense part (mmdet's ``forward_dummy``): the
    model's ``forward_dense`` if it has one, else its backbone."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor):
        if hasattr(self.model, "forward_dense"):
            return tuple(self.model.forward_dense(images))
        return tuple(self.model.backbone(images).values())


def network_input_size(cfg, input_size, image_size) -> Tuple[int, int]:
    """(H, W) of the resized, unpadded network input."""
    if input_size:
        return int(input_size[0]), int(input_size[1])
    h, w = int(image_size[0]), int(image_size[1])
    if cfg.INPUT.RESIZE_MODE_TEST == "keep_ratio":
        return keep_ratio_size(h, w, *cfg.INPUT.KEEP_RATIO_SCALE)
    return h, w


def parameter_counts(model: nn.Module) -> Dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    counts = {"params": total}
    fpn = getattr(model.backbone, "fpn_convs", None)
    out_inds = getattr(model.backbone, "out_inds", None)
    if fpn is not None and out_inds is not None:
        unused = sum(p.numel() for i, conv in enumerate(fpn) if i not in out_inds
                     for p in conv.parameters())
        counts["params_without_unused_fpn_convs"] = total - unused
    return counts


def padded(size: Tuple[int, int], divisibility: int) -> Tuple[int, int]:
    d = max(int(divisibility), 1)
    return tuple(-(-s // d) * d for s in size)


def pytorch_runner(model: nn.Module, size: Tuple[int, int]) -> Callable[[], object]:
    """One full inference of a random uint8 image (batch 1) through ``model``."""
    h, w = size
    image = torch.randint(0, 256, (3, h, w), dtype=torch.uint8)
    inputs = [{"image": image, "height": h, "width": w}]
    sync = model.device.type == "cuda"

    @torch.no_grad()
    def run():
        model(inputs)
        if sync:
            torch.cuda.synchronize()
    return run


def onnxruntime_runner(cfg, model: nn.Module, size: Tuple[int, int],
                       int8: bool = False) -> Callable[[], object]:
    """The same on ONNX Runtime: ``model`` exported (``export_onnx``; with ``int8``, then
    quantized, calibrated on the timing image: the time does not depend on the ranges),
    graph + the NumPy post-processing, with as many threads as torch."""
    from deepinfrared_d2.deploy.onnx_export import export_onnx
    from deepinfrared_d2.deploy.onnx_runtime import OnnxDetector
    from deepinfrared_d2.deploy.quantize import quantize_int8

    h, w = size
    bgr = torch.randint(0, 256, (h, w, 3), dtype=torch.uint8).numpy()
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(cfg, copy.deepcopy(model), os.path.join(tmp, "model.onnx"), size)
        if int8:
            path = quantize_int8(path, os.path.join(tmp, "model.int8.onnx"), [bgr])
        spin = os.environ.get("OMP_WAIT_POLICY", "").upper() != "PASSIVE"
        detector = OnnxDetector(path, threads=torch.get_num_threads(), spin=spin)
    image = bgr.transpose(2, 0, 1)[None].astype(np.float32)  # already the network input size
    params = detector.meta["postprocess_params"]

    def run():
        outputs = detector.dense(image)
        cell_detections(*(o[0] for o in outputs), image_size=(h, w), original_size=(h, w),
                        **params)
    return run


def backend_runner(cfg, model: nn.Module, backend: str, size: Tuple[int, int]):
    """(run, note) for one back-end; the first call of ``run`` is a warm-up."""
    if backend == "eager":
        return pytorch_runner(model, size), None
    if backend == "channels_last":
        nhwc = copy.deepcopy(model).to(memory_format=torch.channels_last)
        return pytorch_runner(nhwc, size), None
    if backend == "compiled":
        compiled = copy.deepcopy(model)
        target = "forward_dense" if hasattr(compiled, "forward_dense") else None
        if target:
            compiled.forward_dense = torch.compile(compiled.forward_dense)
        else:
            compiled.backbone = torch.compile(compiled.backbone)
        run = pytorch_runner(compiled, size)
        start = time.perf_counter()
        run()  # compiles
        return run, f"compile {time.perf_counter() - start:.1f} s"
    return onnxruntime_runner(cfg, model, size, int8=backend == "onnxruntime_int8"), None


def time_backends(cfg, model: nn.Module, backends, size: Tuple[int, int],
                  runs: int) -> Dict[str, Dict]:
    """Milliseconds per image of each back-end (median, min over ``runs`` after a warm-up),
    timed round-robin so that a change of the machine's load hits them alike."""
    runners = {b: backend_runner(cfg, model, b, size) for b in backends}
    times = defaultdict(list)
    for run, _ in runners.values():
        run()
    for _ in range(runs):
        for backend, (run, _) in runners.items():
            start = time.perf_counter()
            run()
            times[backend].append((time.perf_counter() - start) * 1000)
    out = {}
    for backend, (_, note) in runners.items():
        out[backend] = {"ms_median": round(statistics.median(times[backend]), 1),
                        "ms_min": round(min(times[backend]), 1)}
        if note:
            out[backend]["note"] = note
    return out


@torch.no_grad()
def breakdown(model: nn.Module, size: Tuple[int, int], runs: int) -> Dict[str, float]:
    """Median eager milliseconds per part of one inference: each sub-module two levels deep
    (``backbone.bottom_up``, ``backbone.lateral_convs``, ``head.refine_cls_convs``, ...; the
    members of a module list summed), then the model's decoding (``dense_detections``) and
    post-processing (``cell_detections``) where it has them."""
    h, w = size
    hooked = {n: m for n, m in model.named_modules() if 1 <= n.count(".") <= 2}
    clock: Dict[str, float] = {}
    calls = []  # (name, ms) of every hooked call of the current run
    handles = []
    for name, module in hooked.items():
        handles.append(module.register_forward_pre_hook(
            lambda m, a, n=name: clock.__setitem__(n, time.perf_counter())))
        handles.append(module.register_forward_hook(
            lambda m, a, o, n=name: calls.append((n, (time.perf_counter() - clock[n]) * 1000))))
    image = torch.randint(0, 256, (3, h, w), dtype=torch.uint8)
    images = model.preprocess_image([{"image": image, "height": h, "width": w}])
    per_run = []
    for _ in range(runs + 1):
        calls.clear()
        outputs = model.forward_dense(images.tensor)
        fired = {n for n, _ in calls}
        totals: Dict[str, float] = defaultdict(float)
        for name, ms in calls:  # outermost hooked calls, grouped two levels deep
            if not any(name.startswith(f + ".") for f in fired):
                totals[".".join(name.split(".")[:2])] += ms
        if hasattr(model, "dense_detections"):
            start = time.perf_counter()
            cells = [t.numpy() for t in model.dense_detections(outputs)]
            totals["decoding (dense_detections)"] = (time.perf_counter() - start) * 1000
            start = time.perf_counter()
            cell_detections(*(c[0] for c in cells), image_size=(h, w), original_size=(h, w),
                            **model.postprocess_params())
            totals["post-processing (cell_detections)"] = (time.perf_counter() - start) * 1000
        per_run.append(totals)
    for handle in handles:
        handle.remove()
    return {n: round(statistics.median(r[n] for r in per_run[1:]), 1) for n in per_run[0]}


def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, type=input_file)
    parser.add_argument("--input-size", nargs=2, type=count, metavar=("H", "W"),
                        help="network input size (default: the test resize of --image-size)")
    parser.add_argument("--image-size", nargs=2, type=count, metavar=("H", "W"),
                        default=(512, 640), help="original image size for the test resize")
    parser.add_argument("--runs", type=count, default=5, help="timed inference runs (median)")
    parser.add_argument("--threads", type=count_or_zero, default=0,
                        help="torch CPU threads (0: default)")
    parser.add_argument("--no-timing", action="store_true")
    parser.add_argument("--backends", nargs="+", default=["eager"],
                        choices=["eager", "channels_last", "compiled", "onnxruntime",
                                 "onnxruntime_int8"],
                        help="inference back-ends to time (default: eager)")
    parser.add_argument("--breakdown", action="store_true",
                        help="also print eager ms per part of the model")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("opts", nargs=argparse.REMAINDER,
                        help="config overrides KEY VALUE (after --backends A B: -- KEY VALUE)")
    args = parser.parse_args(argv)
    if args.opts[:1] == ["--"]:  # "--backends a b -- KEY VALUE": the list ends at "--"
        args.opts = args.opts[1:]

    cfg = setup_cfg(args, output=False)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = SIRSTTrainer.build_model(cfg).eval()  # channels_last when MODEL.CHANNELS_LAST

    size = network_input_size(cfg, args.input_size, args.image_size)
    pad = padded(size, getattr(model.backbone, "size_divisibility", 1))
    result = {"config": args.config_file, "input_size": list(size), "padded_size": list(pad),
              **parameter_counts(model)}
    dummy = torch.zeros((1, 3) + pad, device=model.device)
    result["gflops"] = round(count_gflops(DenseOnly(model), (dummy,)), 4)
    if not args.no_timing:
        if model.device.type == "cpu":
            result["cpu"] = describe_cpu()
        result["ms_per_image"] = time_backends(cfg, model, args.backends, size, args.runs)
        result["device"] = str(model.device)
        result["threads"] = torch.get_num_threads()
        if args.breakdown:
            result["breakdown_ms"] = breakdown(model, size, args.runs)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            if isinstance(value, dict):
                print(f"{key}:")
                for part, ms in value.items():
                    if isinstance(ms, dict):
                        ms = "  ".join(f"{k} {v}" for k, v in ms.items())
                    print(f"  {part:40s} {ms}")
            else:
                print(f"{key:32s} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
