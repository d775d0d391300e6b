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
- ms/image: median over ``--runs`` full inferences (pre-processing, dense part, decoding and
  NMS) of a random uint8 image, batch 1, after one warm-up run, on MODEL.DEVICE.

Input size: ``--input-size H W`` is used as the network input as is; otherwise the test-time
resize rule of the config (INPUT.RESIZE_MODE_TEST) is applied to an ``--image-size`` image
(default 512 x 640, SIRST-V2's most frequent size): 600 x 750 for the paper configs.
On shared CPUs set ``OMP_WAIT_POLICY=PASSIVE`` (OpenMP spin-waiting inflates timings).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Dict, Tuple

import torch
from detectron2.modeling import build_model
from torch import nn

import deepinfrared_d2  # noqa: F401  (registers the datasets)
from deepinfrared_d2.data.transforms import keep_ratio_size
from deepinfrared_d2.engine import setup_cfg
from deepinfrared_d2.utils.flops import count_gflops


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


@torch.no_grad()
def time_inference(model: nn.Module, size: Tuple[int, int], runs: int) -> float:
    """Median milliseconds per image of the full inference path."""
    h, w = size
    image = torch.randint(0, 256, (3, h, w), dtype=torch.uint8)
    inputs = [{"image": image, "height": h, "width": w}]
    model(inputs)  # warm-up
    times = []
    for _ in range(runs):
        if model.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        model(inputs)
        if model.device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--input-size", nargs=2, type=int, metavar=("H", "W"),
                        help="network input size (default: the test resize of --image-size)")
    parser.add_argument("--image-size", nargs=2, type=int, metavar=("H", "W"),
                        default=(512, 640), help="original image size for the test resize")
    parser.add_argument("--runs", type=int, default=5, help="timed inference runs (median)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--no-timing", action="store_true")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ...")
    args = parser.parse_args(argv)

    cfg = setup_cfg(args, output=False)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = build_model(cfg).eval()

    size = network_input_size(cfg, args.input_size, args.image_size)
    pad = padded(size, getattr(model.backbone, "size_divisibility", 1))
    result = {"config": args.config_file, "input_size": list(size), "padded_size": list(pad),
              **parameter_counts(model)}
    dummy = torch.zeros((1, 3) + pad, device=model.device)
    result["gflops"] = round(count_gflops(DenseOnly(model), (dummy,)), 4)
    if not args.no_timing:
        result["ms_per_image"] = round(time_inference(model, size, args.runs), 1)
        result["device"] = str(model.device)
        result["threads"] = torch.get_num_threads()
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:32s} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
